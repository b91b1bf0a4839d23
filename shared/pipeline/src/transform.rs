//! Stripe events → ERP commands. Pure mapping plus, where an event lacks data, a Stripe read
//! through [`StripeApi`]. No ERP access here: customers are resolved at posting time.
//!
//! One payment reported by both `payment_intent.succeeded` and `charge.succeeded`, and one
//! refund reported by `charge.refunded` and `refund.created`, produce commands with the same
//! external references, so erp-post books each once.

use crate::mapping::{Mapping, PaymentMode};
use crate::messages::{CustomerHint, ErpCommandV1, Source, WriteBack};
use crate::stripe_api::StripeApi;
use ledgerbridge_core::event::Event;
use ledgerbridge_core::ids::StripeObjectId;
use ledgerbridge_core::{Currency, Money};
use ledgerbridge_erp::{
    Address, Application, CashReceipt, CreditMemo, CustomerUpsert, DocKind, DocumentLine,
    ErpCommand, ErpDate, ExternalRef, Invoice, SalesOrder,
};
use rust_decimal::Decimal;
use serde_json::Value;

/// Metadata keys ledgerbridge writes into Stripe objects start with this prefix; an update event
/// that changes nothing else is our own echo and is skipped.
pub const METADATA_PREFIX: &str = "ledgerbridge_";

/// Metadata key the ERP → Stripe customer sync sets with each update it makes (the ERP change's
/// time); an update that changed it came from the ERP and is not sent back there.
pub const ERP_SYNC_KEY: &str = "ledgerbridge_erp_sync";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Commands(Vec<ErpCommandV1>),
    /// Values for the ERP customer's user-defined fields (subscription state).
    CustomerFields(Box<crate::messages::CustomerFieldsV1>),
    /// Nothing to book, with the reason (recorded, not an error).
    Skipped(String),
}

#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    /// Stripe unreachable or rate-limited: retry later.
    #[error("retryable: {0}")]
    Retryable(String),
    /// The event cannot be booked as it is (missing data, invalid amounts): parked with reason.
    #[error("{0}")]
    Permanent(String),
}

impl TransformError {
    pub fn is_retriable(&self) -> bool {
        matches!(self, TransformError::Retryable(_))
    }
}

pub(crate) fn permanent(msg: impl Into<String>) -> TransformError {
    TransformError::Permanent(msg.into())
}

pub(crate) fn stripe_err(e: ledgerbridge_stripe::StripeError) -> TransformError {
    if e.is_retriable() {
        TransformError::Retryable(e.to_string())
    } else {
        TransformError::Permanent(e.to_string())
    }
}

/// The Stripe API version-independent view of the fields we read.
pub(crate) fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|x| !x.is_empty())
}

pub(crate) fn i(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

/// An expandable field: either an id string or an object with an `id`.
pub(crate) fn id_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    match v.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s),
        Value::Object(o) => o.get("id").and_then(Value::as_str),
        _ => None,
    }
}

/// A Unix timestamp as the UTC calendar date.
pub fn date_of(unix_secs: i64) -> Result<ErpDate, TransformError> {
    ErpDate::from_unix(unix_secs).map_err(|e| permanent(e.to_string()))
}

pub(crate) fn reference(id: &str, kind: DocKind) -> Result<ExternalRef, TransformError> {
    ExternalRef::new(&StripeObjectId::new(id), kind).map_err(|e| permanent(e.to_string()))
}

pub(crate) fn currency(v: &Value) -> Result<Currency, TransformError> {
    let code = s(v, "currency").ok_or_else(|| permanent("object has no currency"))?;
    Currency::parse(code).map_err(|e| permanent(e.to_string()))
}

fn one_line(
    item: &str,
    description: String,
    amount: Money,
    account: Option<String>,
) -> DocumentLine {
    DocumentLine {
        item_id: item.to_owned(),
        description,
        quantity: Decimal::ONE,
        unit_price: amount,
        gl_account: account,
    }
}

/// Normalise a name: trim and collapse inner whitespace.
pub fn normalise_name(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub fn normalise_email(email: &str) -> Option<String> {
    let e = email.trim().to_ascii_lowercase();
    (e.contains('@') && !e.contains(char::is_whitespace)).then_some(e)
}

/// The customer upsert for a Stripe customer object.
pub fn customer_upsert(
    mapping: &Mapping,
    customer: &Value,
) -> Result<CustomerUpsert, TransformError> {
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

fn hint_for_customer(mapping: &Mapping, customer: &Value) -> Result<CustomerHint, TransformError> {
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

/// Turn one event into commands.
pub async fn transform<A: StripeApi>(
    mapping: &Mapping,
    stripe: &A,
    event: &Event,
) -> Result<Outcome, TransformError> {
    let object = &event.data.object;
    let source = Source {
        event_id: event.id.clone(),
        event_type: event.event_type.clone(),
        created: event.created,
    };
    let metadata = object.get("metadata").cloned().unwrap_or(Value::Null);
    let eff = mapping.effective(&event.event_type, s(object, "currency"), &metadata);
    if eff.skip {
        return Ok(Outcome::Skipped(format!(
            "skipped by rule {:?}",
            eff.matched_rules
        )));
    }
    match event.event_type.as_str() {
        "customer.created" | "customer.updated" => customer_event(mapping, event, source),
        "payment_intent.succeeded" => {
            if let Some(inv) =
                crate::billing::invoice_of_payment(mapping, stripe, object, true).await?
            {
                return Ok(Outcome::Skipped(format!(
                    "pays invoice {inv}: booked by invoice.paid (invoice and receipt)"
                )));
            }
            payment(mapping, object, source, &eff, true)
        }
        "charge.succeeded" | "charge.captured" => {
            if object.get("captured").and_then(Value::as_bool) == Some(false) {
                return Ok(Outcome::Skipped(
                    "charge authorised but not captured".into(),
                ));
            }
            if let Some(inv) =
                crate::billing::invoice_of_payment(mapping, stripe, object, false).await?
            {
                return Ok(Outcome::Skipped(format!(
                    "pays invoice {inv}: booked by invoice.paid (invoice and receipt)"
                )));
            }
            payment(mapping, object, source, &eff, false)
        }
        "refund.created" | "refund.updated" | "charge.refund.updated" => {
            let cmds = refund_commands(mapping, stripe, object, &source).await?;
            Ok(if cmds.is_empty() {
                Outcome::Skipped(format!(
                    "refund status {:?}: nothing to book",
                    s(object, "status").unwrap_or("?")
                ))
            } else {
                Outcome::Commands(cmds)
            })
        }
        "charge.refunded" => {
            // The event carries no refund ids (since API version 2022-11-15): list the charge's
            // refunds and book each by its own id, exactly as refund.* events do.
            let charge = s(object, "id").ok_or_else(|| permanent("charge without id"))?;
            let list = stripe
                .get("refunds", &[("charge", charge), ("limit", "100")])
                .await
                .map_err(stripe_err)?;
            let mut cmds = Vec::new();
            for refund in list
                .get("data")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let mut refund = refund.clone();
                if refund.get("customer").is_none_or(Value::is_null) {
                    if let (Some(o), Some(c)) = (refund.as_object_mut(), id_of(object, "customer"))
                    {
                        o.insert("customer".into(), Value::String(c.to_owned()));
                    }
                }
                cmds.extend(refund_commands(mapping, stripe, &refund, &source).await?);
            }
            Ok(if cmds.is_empty() {
                Outcome::Skipped("no succeeded refund on the charge".into())
            } else {
                Outcome::Commands(cmds)
            })
        }
        "invoice.finalized"
        | "invoice.paid"
        | "invoice.payment_failed"
        | "invoice.voided"
        | "invoice.marked_uncollectible"
        | "credit_note.created"
        | "credit_note.voided" => crate::billing::billing_event(mapping, stripe, event).await,
        "charge.dispute.created"
        | "charge.dispute.updated"
        | "charge.dispute.funds_withdrawn"
        | "charge.dispute.funds_reinstated"
        | "charge.dispute.closed" => crate::disputes::dispute_event(mapping, event),
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted" => {
            crate::subscriptions::subscription_event(mapping, event)
        }
        other => Ok(Outcome::Skipped(format!(
            "{other} is not booked by this version"
        ))),
    }
}

/// True when an update changed only metadata keys ledgerbridge writes (Stripe lists the changed
/// keys' old values in `previous_attributes.metadata`).
fn is_own_echo(previous: Option<&Value>) -> bool {
    let Some(prev) = previous.and_then(Value::as_object) else {
        return false;
    };
    if prev.len() != 1 {
        return false;
    }
    prev.get("metadata")
        .and_then(Value::as_object)
        .is_some_and(|m| !m.is_empty() && m.keys().all(|k| k.starts_with(METADATA_PREFIX)))
}

/// True when an update was made by the ERP → Stripe customer sync: Stripe applies one API call
/// as one update, and only the sync changes [`ERP_SYNC_KEY`], so its old value (or `null` the
/// first time) in `previous_attributes.metadata` marks the whole update as the ERP's.
fn is_erp_sync_echo(previous: Option<&Value>) -> bool {
    previous
        .and_then(|p| p.get("metadata"))
        .and_then(Value::as_object)
        .is_some_and(|m| m.contains_key(ERP_SYNC_KEY))
}

fn customer_event(
    mapping: &Mapping,
    event: &Event,
    source: Source,
) -> Result<Outcome, TransformError> {
    let object = &event.data.object;
    if event.event_type == "customer.updated"
        && is_own_echo(event.data.previous_attributes.as_ref())
    {
        return Ok(Outcome::Skipped(
            "echo of ledgerbridge's own metadata write-back".into(),
        ));
    }
    if event.event_type == "customer.updated"
        && is_erp_sync_echo(event.data.previous_attributes.as_ref())
    {
        return Ok(Outcome::Skipped(
            "echo of a change that came from the ERP".into(),
        ));
    }
    let hint = hint_for_customer(mapping, object)?;
    let upsert = hint
        .create
        .clone()
        .ok_or_else(|| permanent("customer without data"))?;
    let id = hint.stripe_customer.clone();
    Ok(Outcome::Commands(vec![ErpCommandV1 {
        command: ErpCommand::UpsertCustomer(upsert),
        customer: Some(hint),
        depends_on: Vec::new(),
        version: Some(event.created),
        write_back: Some(WriteBack {
            object_path: "customers".into(),
            object_id: id,
            key: format!("{METADATA_PREFIX}customer"),
        }),
        source,
    }]))
}

fn payment(
    mapping: &Mapping,
    object: &Value,
    source: Source,
    eff: &crate::mapping::Effective,
    is_intent: bool,
) -> Result<Outcome, TransformError> {
    // The payment's key is its PaymentIntent (both events name it), else the charge.
    let (key, path) = if is_intent {
        (
            s(object, "id").ok_or_else(|| permanent("payment intent without id"))?,
            "payment_intents",
        )
    } else {
        match id_of(object, "payment_intent") {
            Some(pi) => (pi, "payment_intents"),
            None => (
                s(object, "id").ok_or_else(|| permanent("charge without id"))?,
                "charges",
            ),
        }
    };
    let cur = currency(object)?;
    let minor = if is_intent {
        i(object, "amount_received").or_else(|| i(object, "amount"))
    } else {
        i(object, "amount_captured")
            .filter(|a| *a > 0)
            .or_else(|| i(object, "amount"))
    }
    .ok_or_else(|| permanent("payment without amount"))?;
    let amount = Money::new(minor, cur);
    amount
        .check_charge_amount()
        .map_err(|e| permanent(e.to_string()))?;
    if minor <= 0 {
        return Ok(Outcome::Skipped("zero-amount payment".into()));
    }
    let date = date_of(i(object, "created").unwrap_or(source.created))?;
    let method_type = if is_intent {
        object
            .get("payment_method_types")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
    } else {
        object
            .get("payment_method_details")
            .and_then(|d| s(d, "type"))
    };
    let method = eff
        .payment_method
        .clone()
        .unwrap_or_else(|| mapping.payment_method(method_type));
    let (customer_id, hint) = match id_of(object, "customer") {
        Some(c) => (String::new(), Some(hint_by_id(c))),
        None => match &mapping.defaults.guest_customer {
            Some(g) => (g.clone(), None),
            None => {
                return Err(permanent(
                    "payment has no Stripe customer and defaults.guest_customer is not set",
                ))
            }
        },
    };
    let order_ref = object.get("metadata").and_then(|m| s(m, "order_id"));
    let description = match order_ref {
        Some(o) => format!("Stripe payment {key} (order {o})"),
        None => format!("Stripe payment {key}"),
    };
    let line = one_line(
        &eff.item,
        description,
        amount,
        mapping.payments.revenue_account.clone(),
    );
    let write_back = |kind: &str| WriteBack {
        object_path: path.into(),
        object_id: key.to_owned(),
        key: format!("{METADATA_PREFIX}{kind}"),
    };
    let mut out = Vec::new();
    let mut applies = Vec::new();
    match eff.payment_mode {
        PaymentMode::CashReceipt => {}
        PaymentMode::SalesOrderAndReceipt => {
            let r = reference(key, DocKind::SalesOrder)?;
            applies.push(r.clone());
            out.push(ErpCommandV1 {
                command: ErpCommand::CreateSalesOrder(SalesOrder {
                    reference: r,
                    customer_id: customer_id.clone(),
                    order_date: date.clone(),
                    currency: cur,
                    lines: vec![line],
                }),
                customer: hint.clone(),
                depends_on: Vec::new(),
                version: None,
                write_back: Some(write_back("sales_order")),
                source: source.clone(),
            });
        }
        PaymentMode::InvoiceAndReceipt => {
            let r = reference(key, DocKind::Invoice)?;
            applies.push(r.clone());
            out.push(ErpCommandV1 {
                command: ErpCommand::CreateInvoice(Invoice {
                    reference: r,
                    customer_id: customer_id.clone(),
                    invoice_date: date.clone(),
                    due_date: None,
                    currency: cur,
                    lines: vec![line],
                    sales_order: None,
                }),
                customer: hint.clone(),
                depends_on: Vec::new(),
                version: None,
                write_back: Some(write_back("invoice")),
                source: source.clone(),
            });
        }
    }
    out.push(ErpCommandV1 {
        command: ErpCommand::CreateCashReceipt(CashReceipt {
            reference: reference(key, DocKind::CashReceipt)?,
            customer_id,
            receipt_date: date,
            amount,
            payment_method: method,
            applies_to: None,
        }),
        customer: hint,
        depends_on: applies,
        version: None,
        // One write-back per payment keeps Stripe calls low; the receipt's id is in the xref.
        write_back: if eff.payment_mode == PaymentMode::CashReceipt {
            Some(write_back("cash_receipt"))
        } else {
            None
        },
        source,
    });
    Ok(Outcome::Commands(out))
}

async fn refund_commands<A: StripeApi>(
    mapping: &Mapping,
    stripe: &A,
    refund: &Value,
    source: &Source,
) -> Result<Vec<ErpCommandV1>, TransformError> {
    if s(refund, "status") != Some("succeeded") {
        // pending: booked when it succeeds; failed / canceled: nothing was refunded.
        return Ok(Vec::new());
    }
    let id = s(refund, "id").ok_or_else(|| permanent("refund without id"))?;
    let cur = currency(refund)?;
    let minor = i(refund, "amount").ok_or_else(|| permanent("refund without amount"))?;
    let amount = Money::new(minor, cur);
    if minor <= 0 {
        return Ok(Vec::new());
    }
    let customer = match id_of(refund, "customer") {
        Some(c) => c.to_owned(),
        None => {
            let charge =
                id_of(refund, "charge").ok_or_else(|| permanent("refund without charge"))?;
            let ch = stripe
                .get(&format!("charges/{charge}"), &[])
                .await
                .map_err(stripe_err)?;
            id_of(&ch, "customer")
                .map(str::to_owned)
                .or_else(|| mapping.defaults.guest_customer.clone())
                .ok_or_else(|| {
                    permanent(
                        "refunded charge has no customer and defaults.guest_customer is not set",
                    )
                })?
        }
    };
    let reason_text = refund
        .get("metadata")
        .and_then(|m| s(m, "credit_memo_reason"));
    let description = match reason_text {
        Some(t) => format!("Stripe refund {id}: {t}"),
        None => format!("Stripe refund {id}"),
    };
    let (customer_id, hint) = if customer.starts_with("cus_") {
        (String::new(), Some(hint_by_id(&customer)))
    } else {
        (customer, None)
    };
    let memo = CreditMemo {
        reference: reference(id, DocKind::CreditMemo)?,
        customer_id,
        memo_date: date_of(i(refund, "created").unwrap_or(source.created))?,
        currency: cur,
        lines: vec![one_line(&mapping.refunds.item, description, amount, None)],
        reason: Some(mapping.refund_reason(s(refund, "reason"))),
        applies_to_invoice: None,
    };
    Ok(vec![ErpCommandV1 {
        command: ErpCommand::CreateCreditMemo(memo),
        customer: hint,
        depends_on: Vec::new(),
        version: None,
        write_back: Some(WriteBack {
            object_path: "refunds".into(),
            object_id: id.to_owned(),
            key: format!("{METADATA_PREFIX}credit_memo"),
        }),
        source: source.clone(),
    }])
}

/// Fill what only posting time knows: the resolved customer, and what a receipt applies to.
pub fn apply_resolution(
    command: &mut ErpCommand,
    customer_id: Option<&str>,
    parent: Option<(DocKind, &ledgerbridge_core::ids::ErpDocumentId)>,
) {
    if let Some(c) = customer_id {
        match command {
            ErpCommand::CreateSalesOrder(x) => x.customer_id = c.to_owned(),
            ErpCommand::CreateInvoice(x) => x.customer_id = c.to_owned(),
            ErpCommand::CreateCashReceipt(x) => x.customer_id = c.to_owned(),
            ErpCommand::CreateCreditMemo(x) => x.customer_id = c.to_owned(),
            ErpCommand::UpsertCustomer(_) | ErpCommand::PostJournalEntry(_) => {}
        }
    }
    if let (ErpCommand::CreateCashReceipt(r), Some((kind, id))) = (command, parent) {
        r.applies_to = match kind {
            DocKind::SalesOrder => Some(Application::SalesOrder(id.clone())),
            DocKind::Invoice => Some(Application::Invoice(id.clone())),
            _ => None,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_calendar_days() {
        assert_eq!(date_of(0).unwrap().as_str(), "1970-01-01");
        assert_eq!(date_of(1_784_538_764).unwrap().as_str(), "2026-07-20");
        assert_eq!(date_of(951_782_400).unwrap().as_str(), "2000-02-29");
        assert_eq!(date_of(1_709_251_199).unwrap().as_str(), "2024-02-29");
    }

    #[test]
    fn own_metadata_echo_is_recognised() {
        let ours = serde_json::json!({"metadata": {"ledgerbridge_customer": null}});
        let theirs = serde_json::json!({"metadata": {"erp_customer_no": "X"}});
        let mixed =
            serde_json::json!({"metadata": {"ledgerbridge_customer": null}, "email": "a@b.c"});
        assert!(is_own_echo(Some(&ours)));
        assert!(!is_own_echo(Some(&theirs)));
        assert!(!is_own_echo(Some(&mixed)));
        assert!(!is_own_echo(None));
    }

    #[test]
    fn erp_sync_echo_is_recognised() {
        let first = serde_json::json!({"name": "Old", "metadata": {"ledgerbridge_erp_sync": null}});
        let later =
            serde_json::json!({"email": "a@b.c", "metadata": {"ledgerbridge_erp_sync": "1"}});
        let user = serde_json::json!({"name": "Old", "metadata": {"erp_customer_no": "X"}});
        let plain = serde_json::json!({"name": "Old"});
        assert!(is_erp_sync_echo(Some(&first)));
        assert!(is_erp_sync_echo(Some(&later)));
        assert!(!is_erp_sync_echo(Some(&user)));
        assert!(!is_erp_sync_echo(Some(&plain)));
        assert!(!is_erp_sync_echo(None));
    }

    #[test]
    fn names_and_emails_are_normalised() {
        assert_eq!(
            normalise_name("  Northwind   Traders  LLC "),
            "Northwind Traders LLC"
        );
        assert_eq!(
            normalise_email(" AP@Northwind.Example ").as_deref(),
            Some("ap@northwind.example")
        );
        assert_eq!(normalise_email("not an email"), None);
    }
}
