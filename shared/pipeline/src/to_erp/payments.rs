//! Payments (`payment_intent.succeeded`, `charge.succeeded` / `charge.captured`) → a cash receipt,
//! with a sales order or invoice first when the mapping asks for one. A payment that pays an
//! invoice is booked by `invoice.paid` instead ([`invoice_of_payment`]).

use super::common::one_line;
use crate::convert::{currency, date_of, i, id_of, reference, s, METADATA_PREFIX};
use crate::customer::hint_by_id;
use crate::mapping::{Effective, Mapping, PaymentMode};
use crate::messages::{ErpCommandV1, Source, WriteBack};
use crate::outcome::{permanent, stripe_err, Outcome, StageError};
use crate::stripe_api::StripeApi;
use ledgerbridge_core::event::Event;
use ledgerbridge_core::Money;
use ledgerbridge_erp::{CashReceipt, DocKind, ErpCommand, Invoice, SalesOrder};
use serde_json::Value;

/// `payment_intent.succeeded`, `charge.succeeded`, `charge.captured`.
pub(super) async fn handle<A: StripeApi>(
    mapping: &Mapping,
    stripe: &A,
    event: &Event,
    source: Source,
    eff: &Effective,
) -> Result<Outcome, StageError> {
    let object = &event.data.object;
    match event.event_type.as_str() {
        "payment_intent.succeeded" => {
            if let Some(inv) = invoice_of_payment(mapping, stripe, object, true).await? {
                return Ok(Outcome::Skipped(format!(
                    "pays invoice {inv}: booked by invoice.paid (invoice and receipt)"
                )));
            }
            payment(mapping, object, source, eff, true)
        }
        "charge.succeeded" | "charge.captured" => {
            if object.get("captured").and_then(Value::as_bool) == Some(false) {
                return Ok(Outcome::Skipped(
                    "charge authorised but not captured".into(),
                ));
            }
            if let Some(inv) = invoice_of_payment(mapping, stripe, object, false).await? {
                return Ok(Outcome::Skipped(format!(
                    "pays invoice {inv}: booked by invoice.paid (invoice and receipt)"
                )));
            }
            payment(mapping, object, source, eff, false)
        }
        other => Ok(Outcome::Skipped(format!(
            "{other} is not booked by this version"
        ))),
    }
}

fn payment(
    mapping: &Mapping,
    object: &Value,
    source: Source,
    eff: &Effective,
    is_intent: bool,
) -> Result<Outcome, StageError> {
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

/// The invoice a payment pays, if any (see the module documentation). `None` without an
/// `[invoices]` section (invoices are then not booked, so the payment must be) and for charges
/// without a PaymentIntent (invoices are always paid through one). At most one Stripe call.
pub async fn invoice_of_payment<A: StripeApi>(
    mapping: &Mapping,
    stripe: &A,
    object: &Value,
    is_intent: bool,
) -> Result<Option<String>, StageError> {
    if mapping.invoices.is_none() {
        return Ok(None);
    }
    let pi = if is_intent {
        s(object, "id")
    } else {
        id_of(object, "payment_intent")
    };
    let Some(pi) = pi else {
        return Ok(None);
    };
    let list = stripe
        .get(
            "invoice_payments",
            &[
                ("payment[type]", "payment_intent"),
                ("payment[payment_intent]", pi),
                ("limit", "1"),
            ],
        )
        .await
        .map_err(stripe_err)?;
    Ok(list
        .get("data")
        .and_then(Value::as_array)
        .and_then(|d| d.first())
        .and_then(|p| id_of(p, "invoice"))
        .map(str::to_owned))
}
