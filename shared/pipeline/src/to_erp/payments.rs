//! Payments (`payment_intent.succeeded`, `charge.succeeded` / `charge.captured`) → a cash receipt,
//! with a sales order or invoice first when the mapping asks for one. A payment that pays an
//! invoice is booked by `invoice.paid` instead ([`invoice_of_payment`]).

use super::common::one_line;
use crate::convert::{created_or, date_of, meta, object_of, reference, METADATA_PREFIX};
use crate::customer::hint_by_id;
use crate::mapping::{Effective, Mapping, PaymentMode};
use crate::outcome::{permanent, stripe_err, Outcome, StageError};
use ledgerbridge_core::event::Event;
use ledgerbridge_core::Money;
use ledgerbridge_erp::{CashReceipt, DocKind, ErpCommand, Invoice, SalesOrder};
use ledgerbridge_messages::{ErpCommandV1, Source, WriteBack};
use ledgerbridge_stripe::api::StripeApi;
use ledgerbridge_stripe::objects::{Metadata, StripeCharge, StripePaymentIntent};

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
            let intent: StripePaymentIntent = object_of(object, "payment intent")?;
            let pi = Some(intent.id.as_str()).filter(|id| !id.is_empty());
            if let Some(inv) = invoice_of_payment(mapping, stripe, pi).await? {
                return Ok(Outcome::Skipped(format!(
                    "pays invoice {inv}: booked by invoice.paid (invoice and receipt)"
                )));
            }
            payment(mapping, &Payment::Intent(&intent), source, eff)
        }
        "charge.succeeded" | "charge.captured" => {
            let charge: StripeCharge = object_of(object, "charge")?;
            if charge.captured == Some(false) {
                return Ok(Outcome::Skipped(
                    "charge authorised but not captured".into(),
                ));
            }
            if let Some(inv) =
                invoice_of_payment(mapping, stripe, charge.payment_intent_id()).await?
            {
                return Ok(Outcome::Skipped(format!(
                    "pays invoice {inv}: booked by invoice.paid (invoice and receipt)"
                )));
            }
            payment(mapping, &Payment::Charge(&charge), source, eff)
        }
        other => Ok(Outcome::Skipped(format!(
            "{other} is not booked by this version"
        ))),
    }
}

/// The object a payment event reports.
enum Payment<'a> {
    Intent(&'a StripePaymentIntent),
    Charge(&'a StripeCharge),
}

impl Payment<'_> {
    fn id(&self) -> &str {
        match self {
            Payment::Intent(pi) => &pi.id,
            Payment::Charge(ch) => &ch.id,
        }
    }

    fn created(&self) -> i64 {
        match self {
            Payment::Intent(pi) => pi.created,
            Payment::Charge(ch) => ch.created,
        }
    }

    fn customer_id(&self) -> Option<&str> {
        match self {
            Payment::Intent(pi) => pi.customer_id(),
            Payment::Charge(ch) => ch.customer_id(),
        }
    }

    fn metadata(&self) -> &Metadata {
        match self {
            Payment::Intent(pi) => &pi.metadata,
            Payment::Charge(ch) => &ch.metadata,
        }
    }
}

fn payment(
    mapping: &Mapping,
    object: &Payment<'_>,
    source: Source,
    eff: &Effective,
) -> Result<Outcome, StageError> {
    // The payment's key is its PaymentIntent (both events name it), else the charge.
    let id = Some(object.id()).filter(|id| !id.is_empty());
    let (key, path) = match object {
        Payment::Intent(_) => (
            id.ok_or_else(|| permanent("payment intent without id"))?,
            "payment_intents",
        ),
        Payment::Charge(ch) => match ch.payment_intent_id() {
            Some(pi) => (pi, "payment_intents"),
            None => (id.ok_or_else(|| permanent("charge without id"))?, "charges"),
        },
    };
    let (minor, cur) = match object {
        Payment::Intent(pi) => (pi.amount_received.unwrap_or(pi.amount), pi.currency),
        Payment::Charge(ch) => (
            ch.amount_captured.filter(|a| *a > 0).unwrap_or(ch.amount),
            ch.currency,
        ),
    };
    let amount = Money::new(minor, cur);
    amount
        .check_charge_amount()
        .map_err(|e| permanent(e.to_string()))?;
    if minor <= 0 {
        return Ok(Outcome::Skipped("zero-amount payment".into()));
    }
    let date = date_of(
        &mapping.defaults.time_zone,
        created_or(object.created(), source.created),
    )?;
    let method_type = match object {
        Payment::Intent(pi) => pi.payment_method_type(),
        Payment::Charge(ch) => ch.payment_method_type(),
    };
    let method = eff
        .payment_method
        .clone()
        .unwrap_or_else(|| mapping.payment_method(method_type));
    let (customer_id, hint) = match object.customer_id() {
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
    let order_ref = meta(object.metadata(), "order_id");
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
    payment_intent: Option<&str>,
) -> Result<Option<String>, StageError> {
    if mapping.invoices.is_none() {
        return Ok(None);
    }
    let Some(pi) = payment_intent else {
        return Ok(None);
    };
    let list = stripe
        .invoice_payments_of_payment_intent(pi)
        .await
        .map_err(stripe_err)?;
    Ok(list
        .data
        .first()
        .and_then(|p| p.invoice_id())
        .map(str::to_owned))
}
