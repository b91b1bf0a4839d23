//! Stripe invoices and credit notes → ERP invoices, cash receipts and credit memos.
//!
//! * `invoice.finalized` / `invoice.payment_failed` → the invoice (one line per Stripe invoice
//!   line, one line per tax rate); `invoice.paid` → the same invoice (same reference, booked
//!   once by erp-post) plus one cash receipt per paid invoice payment, applied to it.
//! * `invoice.voided` → a credit memo for the invoice when ledgerbridge had posted it (the
//!   invoice carries the `ledgerbridge_invoice` metadata written back after posting), else
//!   skipped; `invoice.marked_uncollectible` → a write-off credit memo when
//!   `invoices.uncollectible_item` is set, else skipped.
//! * `credit_note.created` (in [`super::credit_notes`]) → a credit memo for the part not refunded through Stripe (refunds are
//!   booked by the refund events); `credit_note.voided` → the reversing invoice when the credit
//!   memo had been posted, else skipped.
//!
//! **Discounts.** The ERP command model rejects negative line prices, so a discount cannot be
//! a line of its own. Each line is booked net of its discounts (`pretax_credit_amounts`, or
//! `discount_amounts` on older shapes); the line description names the discount. The unit price
//! is the net amount divided by the quantity when that is exact, else the line is one unit of
//! the net amount with the quantity in the description.
//!
//! **Tax.** Sales tax is one line per Stripe tax rate on `invoices.tax_item` (account
//! `invoices.tax_account`). Tax included in a price (`tax_behavior: inclusive`) is taken out of
//! the product line, so revenue is always net of tax.
//!
//! The document's lines must add up to the invoice's `total` to the minor unit; otherwise the
//! event is parked (shipping and other amounts this module does not book end up there).
//!
//! **No double booking.** A payment that pays an invoice is booked by `invoice.paid` (invoice
//! and receipt). The payment events (`payment_intent.succeeded`, `charge.succeeded`) of such a
//! payment are recognised by [`super::payments::invoice_of_payment`]: since API version 2025-03-31 neither the
//! PaymentIntent nor the charge names its invoice, and the link is the InvoicePayment object,
//! so one `GET /v1/invoice_payments?payment[type]=payment_intent&payment[payment_intent]=pi_…`
//! per payment (only when `[invoices]` is configured and the payment has a PaymentIntent).

use super::documents::{customer_of, document_lines, posted_id};
use crate::convert::{created_or, date_of, object_of, reference, text, METADATA_PREFIX};
use crate::customer::hint_by_id;
use crate::mapping::{Invoices, Mapping};
use crate::outcome::{permanent, stripe_err, Outcome, StageError};
use ledgerbridge_core::event::Event;
use ledgerbridge_core::ids::ErpDocumentId;
use ledgerbridge_core::{Currency, Money};
use ledgerbridge_erp::{
    CashReceipt, CreditMemo, DocKind, DocumentLine, ErpCommand, ErpDate, Invoice,
};
use ledgerbridge_messages::{ErpCommandV1, Source, WriteBack};
use ledgerbridge_stripe::api::StripeApi;
use ledgerbridge_stripe::objects::StripeInvoice;
use rust_decimal::Decimal;

fn invoice_lines(
    mapping: &Mapping,
    cfg: &Invoices,
    invoice: &StripeInvoice,
) -> Result<Vec<DocumentLine>, StageError> {
    document_lines(
        mapping,
        cfg,
        &invoice.id,
        &invoice.lines,
        Some(invoice.total),
        invoice.currency,
    )
    .map_err(|e| match invoice_level_discount(invoice) {
        Some(coupon) => permanent(format!(
            "{}: the invoice is in an older API version's shape (before 2020-08-27): its discount (coupon {coupon}) is given only for the whole invoice (`discount`), with no amounts per line (`discount_amounts`), so its lines cannot be booked net of it; send this endpoint's events with API version 2020-08-27 or later, or book the invoice by hand ({e})",
            if invoice.id.is_empty() { "?" } else { invoice.id.as_str() }
        )),
        None => e,
    })
}

/// The coupon of an invoice-level discount in the older shape (`discount`: one object for the
/// whole invoice) when no line carries its share of it (`discount_amounts`,
/// `pretax_credit_amounts`): such an invoice cannot be booked net of its discount per line.
fn invoice_level_discount(invoice: &StripeInvoice) -> Option<String> {
    let discount = invoice.other.get("discount")?.as_object()?;
    let per_line = invoice
        .lines
        .data
        .iter()
        .any(|l| !l.discount_amounts.is_empty() || !l.pretax_credit_amounts.is_empty());
    if per_line || !invoice.total_discount_amounts.is_empty() {
        return None;
    }
    let coupon = discount.get("coupon").and_then(|c| {
        c.get("id")
            .and_then(serde_json::Value::as_str)
            .or_else(|| c.as_str())
    });
    Some(coupon.unwrap_or("?").to_owned())
}

fn invoice_command(
    mapping: &Mapping,
    cfg: &Invoices,
    invoice: &StripeInvoice,
    source: &Source,
) -> Result<ErpCommandV1, StageError> {
    let id = invoice_id(invoice)?;
    let cur = invoice.currency;
    let lines = invoice_lines(mapping, cfg, invoice)?;
    let date = invoice
        .status_transitions
        .finalized_at
        .or(invoice.effective_at)
        .unwrap_or_else(|| created_or(invoice.created, source.created));
    Ok(ErpCommandV1 {
        command: ErpCommand::CreateInvoice(Invoice {
            reference: reference(id, DocKind::Invoice)?,
            customer_id: String::new(),
            invoice_date: date_of(&mapping.defaults.time_zone, date)?,
            due_date: invoice
                .due_date
                .map(|t| date_of(&mapping.defaults.time_zone, t))
                .transpose()?,
            currency: cur,
            lines,
            sales_order: None,
        }),
        customer: Some(hint_by_id(customer_of(&invoice.customer)?)),
        depends_on: Vec::new(),
        version: None,
        write_back: Some(WriteBack {
            object_path: "invoices".into(),
            object_id: id.to_owned(),
            key: format!("{METADATA_PREFIX}invoice"),
        }),
        source: source.clone(),
    })
}

fn invoice_id(invoice: &StripeInvoice) -> Result<&str, StageError> {
    Some(invoice.id.as_str())
        .filter(|id| !id.is_empty())
        .ok_or_else(|| permanent("invoice without id"))
}

/// `invoice.finalized`, `invoice.payment_failed`, `invoice.paid`, `invoice.voided`,
/// `invoice.marked_uncollectible`.
pub(super) async fn handle<A: StripeApi>(
    mapping: &Mapping,
    stripe: &A,
    event: &Event,
    source: Source,
) -> Result<Outcome, StageError> {
    let Some(cfg) = &mapping.invoices else {
        return Ok(Outcome::Skipped(
            "no [invoices] section in the mapping: invoices and credit notes are not booked (their payments are booked as payments)".into(),
        ));
    };
    let doc: StripeInvoice = object_of(&event.data.object, "invoice")?;
    let doc = &doc;
    let id = Some(doc.id.as_str())
        .filter(|id| !id.is_empty())
        .ok_or_else(|| permanent("object without id"))?;
    match event.event_type.as_str() {
        "invoice.finalized" | "invoice.payment_failed" => {
            if doc.total == 0 {
                return Ok(Outcome::Skipped(format!("invoice {id} has a zero total")));
            }
            Ok(Outcome::Commands(vec![invoice_command(
                mapping, cfg, doc, &source,
            )?]))
        }
        "invoice.paid" => invoice_paid(mapping, cfg, stripe, doc, &source).await,
        "invoice.voided" => {
            let Some(erp_id) = posted_id(&doc.metadata, "invoice") else {
                return Ok(Outcome::Skipped(format!(
                    "invoice {id} voided before ledgerbridge posted it: nothing to reverse"
                )));
            };
            let cur = doc.currency;
            let lines = invoice_lines(mapping, cfg, doc)?;
            Ok(Outcome::Commands(vec![credit_memo(
                doc,
                id,
                cur,
                lines,
                cfg.void_reason.clone(),
                erp_id,
                &source,
                date_of(
                    &mapping.defaults.time_zone,
                    doc.status_transitions.voided_at.unwrap_or(source.created),
                )?,
            )?]))
        }
        "invoice.marked_uncollectible" => {
            let Some(item) = &cfg.uncollectible_item else {
                return Ok(Outcome::Skipped(format!(
                    "invoice {id} marked uncollectible: invoices.uncollectible_item is not set, the receivable stays open in the ERP"
                )));
            };
            let Some(erp_id) = posted_id(&doc.metadata, "invoice") else {
                return Ok(Outcome::Skipped(format!(
                    "invoice {id} marked uncollectible before ledgerbridge posted it: nothing to write off"
                )));
            };
            let cur = doc.currency;
            let remaining = doc.amount_remaining.unwrap_or(0);
            if remaining <= 0 {
                return Ok(Outcome::Skipped(format!(
                    "invoice {id} marked uncollectible with nothing remaining"
                )));
            }
            let line = DocumentLine {
                item_id: item.clone(),
                description: format!("Stripe invoice {id} uncollectible"),
                quantity: Decimal::ONE,
                unit_price: Money::new(remaining, cur),
                gl_account: None,
            };
            Ok(Outcome::Commands(vec![credit_memo(
                doc,
                id,
                cur,
                vec![line],
                cfg.uncollectible_reason.clone(),
                erp_id,
                &source,
                date_of(
                    &mapping.defaults.time_zone,
                    doc.status_transitions
                        .marked_uncollectible_at
                        .unwrap_or(source.created),
                )?,
            )?]))
        }
        other => Ok(Outcome::Skipped(format!(
            "{other} is not booked by this version"
        ))),
    }
}

#[allow(clippy::too_many_arguments)]
fn credit_memo(
    invoice: &StripeInvoice,
    invoice_id: &str,
    cur: Currency,
    lines: Vec<DocumentLine>,
    reason: String,
    erp_invoice: ErpDocumentId,
    source: &Source,
    date: ErpDate,
) -> Result<ErpCommandV1, StageError> {
    Ok(ErpCommandV1 {
        command: ErpCommand::CreateCreditMemo(CreditMemo {
            reference: reference(invoice_id, DocKind::CreditMemo)?,
            customer_id: String::new(),
            memo_date: date,
            currency: cur,
            lines,
            reason: Some(reason),
            applies_to_invoice: Some(erp_invoice),
        }),
        customer: Some(hint_by_id(customer_of(&invoice.customer)?)),
        depends_on: vec![reference(invoice_id, DocKind::Invoice)?],
        version: None,
        write_back: None,
        source: source.clone(),
    })
}

async fn invoice_paid<A: StripeApi>(
    mapping: &Mapping,
    cfg: &Invoices,
    stripe: &A,
    invoice: &StripeInvoice,
    source: &Source,
) -> Result<Outcome, StageError> {
    let id = invoice_id(invoice)?;
    if invoice.total == 0 {
        return Ok(Outcome::Skipped(format!("invoice {id} has a zero total")));
    }
    let inv = invoice_command(mapping, cfg, invoice, source)?;
    let inv_ref = inv.command.reference().clone();
    let customer = inv.customer.clone();
    let mut out = vec![inv];
    let list = stripe.list_invoice_payments(id).await.map_err(stripe_err)?;
    if list.has_more {
        return Err(permanent(format!(
            "invoice {id} has more than 100 payments; not booked partially"
        )));
    }
    for p in &list.data {
        if text(&p.status) != Some("paid") {
            continue;
        }
        // The receipt's key is the payment's own object (PaymentIntent, else charge), the same
        // key the payment events use, so one payment is one receipt whichever event books it.
        // Paid outside Stripe: the money did not go through the Stripe balance.
        let Some(key) = p.payment.as_ref().and_then(|r| r.payment_id()) else {
            tracing::info!(invoice = id, "invoice payment outside Stripe: no receipt");
            continue;
        };
        let amount = Money::new(
            p.amount_paid
                .ok_or_else(|| permanent("invoice payment without amount"))?,
            p.currency
                .ok_or_else(|| permanent("object has no currency"))?,
        );
        if amount.minor <= 0 {
            continue;
        }
        let paid_at = p.status_transitions.paid_at.unwrap_or(source.created);
        out.push(ErpCommandV1 {
            command: ErpCommand::CreateCashReceipt(CashReceipt {
                reference: reference(key, DocKind::CashReceipt)?,
                customer_id: String::new(),
                receipt_date: date_of(&mapping.defaults.time_zone, paid_at)?,
                amount,
                payment_method: mapping.payment_method(None),
                applies_to: None,
            }),
            customer: customer.clone(),
            depends_on: vec![inv_ref.clone()],
            version: None,
            write_back: None,
            source: source.clone(),
        });
    }
    Ok(Outcome::Commands(out))
}
