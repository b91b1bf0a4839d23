//! The Stripe customer as an ERP customer: the upsert built from a Stripe customer object, the
//! hints commands carry to name their customer, and the reverse link (ERP customer → Stripe
//! customer) ...

use crate::convert::{meta, normalise_email, normalise_name, reference, text};
use crate::mapping::Mapping;
use crate::outcome::{permanent, StageError};
use ledgerbridge_core::Currency;
use ledgerbridge_erp::{Address, CustomerUpsert, DocKind};
use ledgerbridge_messages::CustomerHint;
use ledgerbridge_stripe::objects::StripeCustomer;

/// The customer upsert for a Stripe customer object.
pub fn customer_upsert(
    mapping: &Mapping,
    customer: &StripeCustomer,
) -> Result<CustomerUpsert, StageError> {
    let id = customer.id.as_str();
    if id.is_empty() {
        return Err(permanent("customer without id"));
    }
    let erp_no = meta(&customer.metadata, "erp_customer_no");
    let name = text(&customer.name)
        .map(normalise_name)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| mapping.defaults.customer_name.clone());
    let currency = match customer.currency {
        Some(c) => c,
        None => {
            Currency::parse(&mapping.defaults.currency).map_err(|e| permanent(e.to_string()))?
        }
    };
    let a = customer.address.clone().unwrap_or_default();
    let field = |v: &Option<String>| text(v).map(normalise_name).filter(|x| !x.is_empty());
    Ok(CustomerUpsert {
        reference: reference(id, DocKind::Customer)?,
        customer_id: erp_no
            .map(str::to_owned)
            .unwrap_or_else(|| mapping.customer_code(id)),
        name,
        email: text(&customer.email).and_then(normalise_email),
        currency,
        address: Address {
            line1: field(&a.line1),
            line2: field(&a.line2),
            city: field(&a.city),
            state: field(&a.state),
            postal_code: field(&a.postal_code),
            country: field(&a.country).map(|c| c.to_ascii_uppercase()),
        },
        phone: text(&customer.phone).map(str::to_owned),
    })
}

pub(crate) fn hint_for_customer(
    mapping: &Mapping,
    customer: &StripeCustomer,
) -> Result<CustomerHint, StageError> {
    let create = customer_upsert(mapping, customer)?;
    Ok(CustomerHint {
        stripe_customer: create.reference.stripe_id().to_string(),
        erp_customer_no: meta(&customer.metadata, "erp_customer_no").map(str::to_owned),
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
