//! The Stripe customer as an ERP customer: the upsert built from a Stripe customer object, the
//! hints commands carry to name their customer, and the reverse link (ERP customer → Stripe
//! customer) the ERP → Stripe sync follows.

use crate::convert::{normalise_email, normalise_name, reference, s};
use crate::mapping::Mapping;
use crate::messages::CustomerHint;
use crate::outcome::{permanent, StageError};
use ledgerbridge_core::ids::{ErpDocumentId, StripeObjectId};
use ledgerbridge_core::ports::XrefRecord;
use ledgerbridge_core::Currency;
use ledgerbridge_erp::{Address, CustomerUpsert, DocKind};
use serde_json::Value;

/// The customer upsert for a Stripe customer object.
pub fn customer_upsert(mapping: &Mapping, customer: &Value) -> Result<CustomerUpsert, StageError> {
    let id = s(customer, "id").ok_or_else(|| permanent("customer without id"))?;
    let erp_no = customer
        .get("metadata")
        .and_then(|m| s(m, "erp_customer_no"));
    let name = s(customer, "name")
        .map(normalise_name)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| mapping.defaults.customer_name.clone());
    let currency = match s(customer, "currency") {
        Some(c) => Currency::parse(c).map_err(|e| permanent(e.to_string()))?,
        None => {
            Currency::parse(&mapping.defaults.currency).map_err(|e| permanent(e.to_string()))?
        }
    };
    let a = customer.get("address").cloned().unwrap_or(Value::Null);
    let field = |k: &str| s(&a, k).map(normalise_name).filter(|x| !x.is_empty());
    Ok(CustomerUpsert {
        reference: reference(id, DocKind::Customer)?,
        customer_id: erp_no
            .map(str::to_owned)
            .unwrap_or_else(|| mapping.customer_code(id)),
        name,
        email: s(customer, "email").and_then(normalise_email),
        currency,
        address: Address {
            line1: field("line1"),
            line2: field("line2"),
            city: field("city"),
            state: field("state"),
            postal_code: field("postal_code"),
            country: field("country").map(|c| c.to_ascii_uppercase()),
        },
    })
}

pub(crate) fn hint_for_customer(
    mapping: &Mapping,
    customer: &Value,
) -> Result<CustomerHint, StageError> {
    let create = customer_upsert(mapping, customer)?;
    Ok(CustomerHint {
        stripe_customer: create.reference.stripe_id().to_string(),
        erp_customer_no: customer
            .get("metadata")
            .and_then(|m| s(m, "erp_customer_no"))
            .map(str::to_owned),
        email: create.email.clone(),
        create: Some(create),
    })
}

/// A hint that only names the Stripe customer: erp-post resolves it from the cross-reference,
/// and reads the customer from Stripe only when it is not known yet.
pub(crate) fn hint_by_id(stripe_customer: &str) -> CustomerHint {
    CustomerHint {
        stripe_customer: stripe_customer.to_owned(),
        erp_customer_no: None,
        email: None,
        create: None,
    }
}

/// Cross-reference kind of the ERP customer → Stripe customer link.
pub const REVERSE_KIND: &str = "stripe_customer";

/// Where the reverse cross-reference of an ERP customer is stored.
pub fn reverse_xref_id(erp: &str, customer_code: &str) -> StripeObjectId {
    StripeObjectId::new(format!("erp_{erp}_{customer_code}"))
}

/// The reverse cross-reference record (ERP customer code → `cus_…`).
pub fn reverse_xref(
    erp: &str,
    customer_code: &str,
    stripe_customer: &str,
    now_ms: i64,
) -> XrefRecord {
    XrefRecord {
        stripe_id: reverse_xref_id(erp, customer_code),
        doc_kind: REVERSE_KIND.to_owned(),
        erp: erp.to_owned(),
        erp_id: ErpDocumentId::new(stripe_customer),
        created_at_ms: now_ms,
    }
}
