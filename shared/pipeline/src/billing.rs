//! Stripe invoices and credit notes → ERP invoices, cash receipts and credit memos.
//!
//! * `invoice.finalized` / `invoice.payment_failed` → the invoice (one line per Stripe invoice
//!   line, one line per tax rate); `invoice.paid` → the same invoice (same reference, booked
//!   once by erp-post) plus one cash receipt per paid invoice payment, applied to it.
//! * `invoice.voided` → a credit memo for the invoice when ledgerbridge had posted it (the
//!   invoice carries the `ledgerbridge_invoice` metadata written back after posting), else
//!   skipped; `invoice.marked_uncollectible` → a write-off credit memo when
//!   `invoices.uncollectible_item` is set, else skipped.
//! * `credit_note.created` → a credit memo for the part not refunded through Stripe (refunds are
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
//! payment are recognised by [`invoice_of_payment`]: since API version 2025-03-31 neither the
//! PaymentIntent nor the charge names its invoice, and the link is the InvoicePayment object,
//! so one `GET /v1/invoice_payments?payment[type]=payment_intent&payment[payment_intent]=pi_…`
//! per payment (only when `[invoices]` is configured and the payment has a PaymentIntent).

use crate::mapping::{Invoices, Mapping};
use crate::messages::{ErpCommandV1, Source, WriteBack};
use crate::stripe_api::StripeApi;
use crate::transform::{date_of, Outcome, TransformError, METADATA_PREFIX};
use ledgerbridge_core::event::Event;
use ledgerbridge_core::ids::ErpDocumentId;
use ledgerbridge_core::{Currency, Money};
use ledgerbridge_erp::{
    commands::lines_total, CashReceipt, CreditMemo, DocKind, DocumentLine, ErpCommand, Invoice,
};
use rust_decimal::Decimal;
use serde_json::Value;
use std::collections::BTreeMap;

// The small readers are the transform module's; billing, disputes and subscriptions share them.
pub(crate) use crate::transform::{
    currency as currency_of, hint_by_id, i as int, id_of, permanent, reference, s, stripe_err,
};

fn sum_amounts(list: Option<&Value>) -> Result<i64, TransformError> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|x| int(x, "amount"))
        .try_fold(0i64, i64::checked_add)
        .ok_or_else(|| permanent("amount overflow"))
}

/// Discounts and other pre-tax credits of an invoice or credit note line.
fn line_credits(line: &Value) -> Result<i64, TransformError> {
    match line.get("pretax_credit_amounts") {
        Some(Value::Array(a)) if !a.is_empty() => sum_amounts(line.get("pretax_credit_amounts")),
        _ => match line.get("discount_amounts") {
            Some(Value::Array(a)) if !a.is_empty() => sum_amounts(line.get("discount_amounts")),
            _ => Ok(int(line, "discount_amount").unwrap_or(0)),
        },
    }
}

fn fmt_money(minor: i64, cur: Currency) -> String {
    format!("{} {}", Money::new(minor, cur).to_decimal(), cur.code())
}

/// The ERP item of an invoice line: its price, then its product, in `[products]`.
fn item_of(mapping: &Mapping, cfg: &Invoices, line: &Value) -> String {
    let details = line
        .get("pricing")
        .and_then(|p| p.get("price_details"))
        .or_else(|| line.get("price"));
    let price = details.and_then(|d| id_of(d, "price").or_else(|| s(d, "id")));
    let product = details.and_then(|d| id_of(d, "product"));
    price
        .and_then(|p| mapping.products.get(p))
        .or_else(|| product.and_then(|p| mapping.products.get(p)))
        .cloned()
        .unwrap_or_else(|| cfg.item.clone())
}

fn quantity_of(line: &Value) -> Result<Decimal, TransformError> {
    if let Some(q) = s(line, "quantity_decimal") {
        return q
            .parse::<Decimal>()
            .map_err(|_| permanent("line quantity_decimal is not a number"));
    }
    Ok(int(line, "quantity")
        .filter(|q| *q > 0)
        .map(Decimal::from)
        .unwrap_or(Decimal::ONE))
}

/// Lines of an invoice or credit note: product lines net of discounts and inclusive tax, then
/// one line per tax rate. The lines add up to the document's `total` or the result is an error.
fn document_lines(
    mapping: &Mapping,
    cfg: &Invoices,
    doc: &Value,
    cur: Currency,
) -> Result<Vec<DocumentLine>, TransformError> {
    let doc_id = s(doc, "id").unwrap_or("?");
    let lines = doc
        .get("lines")
        .and_then(|l| l.get("data"))
        .and_then(Value::as_array)
        .ok_or_else(|| permanent(format!("{doc_id} has no lines")))?;
    if doc
        .get("lines")
        .and_then(|l| l.get("has_more"))
        .and_then(Value::as_bool)
        == Some(true)
    {
        return Err(permanent(format!(
            "{doc_id} has more lines than the event carries; not booked partially"
        )));
    }
    let mut out = Vec::new();
    let mut taxes: BTreeMap<String, i64> = BTreeMap::new();
    for line in lines {
        let line_id = s(line, "id").unwrap_or("?");
        let amount = int(line, "amount")
            .ok_or_else(|| permanent(format!("line {line_id} without amount")))?;
        let credits = line_credits(line)?;
        let mut inclusive = 0i64;
        for t in line
            .get("taxes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let a = int(t, "amount").unwrap_or(0);
            let rate = t
                .get("tax_rate_details")
                .and_then(|d| s(d, "tax_rate"))
                .or_else(|| s(t, "type"))
                .unwrap_or("tax")
                .to_owned();
            let e = taxes.entry(rate).or_default();
            *e = e.checked_add(a).ok_or_else(|| permanent("tax overflow"))?;
            if s(t, "tax_behavior") == Some("inclusive") {
                inclusive = inclusive
                    .checked_add(a)
                    .ok_or_else(|| permanent("tax overflow"))?;
            }
        }
        let net = amount
            .checked_sub(credits)
            .and_then(|x| x.checked_sub(inclusive))
            .ok_or_else(|| permanent("amount overflow"))?;
        if net < 0 {
            return Err(permanent(format!(
                "line {line_id} of {doc_id} is negative ({}); the ERP command model has no negative lines (proration credit?)",
                fmt_money(net, cur)
            )));
        }
        let quantity = quantity_of(line)?;
        let base = s(line, "description")
            .map(crate::transform::normalise_name)
            .unwrap_or_else(|| format!("Stripe line {line_id}"));
        let net_money = Money::new(net, cur);
        let unit = net_money
            .to_decimal()
            .checked_div(quantity)
            .and_then(|u| Money::from_decimal(u, cur).ok())
            .filter(|u| u.to_decimal().checked_mul(quantity) == Some(net_money.to_decimal()));
        let (quantity, unit_price, mut description) = match unit {
            Some(u) => (quantity, u, base),
            None => (Decimal::ONE, net_money, format!("{quantity} × {base}")),
        };
        if credits > 0 {
            description.push_str(&format!(" (less discount {})", fmt_money(credits, cur)));
        }
        out.push(DocumentLine {
            item_id: item_of(mapping, cfg, line),
            description,
            quantity,
            unit_price,
            gl_account: cfg.revenue_account.clone(),
        });
    }
    for (rate, amount) in taxes {
        if amount < 0 {
            return Err(permanent(format!("{doc_id}: negative tax for {rate}")));
        }
        if amount == 0 {
            continue;
        }
        out.push(DocumentLine {
            item_id: cfg.tax_item.clone(),
            description: format!("Sales tax ({rate})"),
            quantity: Decimal::ONE,
            unit_price: Money::new(amount, cur),
            gl_account: cfg.tax_account.clone(),
        });
    }
    let total = int(doc, "total").ok_or_else(|| permanent(format!("{doc_id} has no total")))?;
    let sum = lines_total(cur, &out).map_err(|e| permanent(format!("{doc_id}: {e}")))?;
    if sum.minor != total {
        return Err(permanent(format!(
            "{doc_id}: lines add up to {} but the total is {} (shipping or another amount not booked by ledgerbridge?)",
            fmt_money(sum.minor, cur),
            fmt_money(total, cur)
        )));
    }
    Ok(out)
}

fn customer_of(doc: &Value) -> Result<&str, TransformError> {
    id_of(doc, "customer").ok_or_else(|| permanent("invoice or credit note without customer"))
}

fn posted_id(doc: &Value, key: &str) -> Option<ErpDocumentId> {
    doc.get("metadata")
        .and_then(|m| s(m, &format!("{METADATA_PREFIX}{key}")))
        .map(ErpDocumentId::new)
}

fn invoice_command(
    mapping: &Mapping,
    cfg: &Invoices,
    invoice: &Value,
    source: &Source,
) -> Result<ErpCommandV1, TransformError> {
    let id = s(invoice, "id").ok_or_else(|| permanent("invoice without id"))?;
    let cur = currency_of(invoice)?;
    let lines = document_lines(mapping, cfg, invoice, cur)?;
    let transitions = invoice.get("status_transitions");
    let date = transitions
        .and_then(|t| int(t, "finalized_at"))
        .or_else(|| int(invoice, "effective_at"))
        .or_else(|| int(invoice, "created"))
        .unwrap_or(source.created);
    Ok(ErpCommandV1 {
        command: ErpCommand::CreateInvoice(Invoice {
            reference: reference(id, DocKind::Invoice)?,
            customer_id: String::new(),
            invoice_date: date_of(date)?,
            due_date: int(invoice, "due_date").map(date_of).transpose()?,
            currency: cur,
            lines,
            sales_order: None,
        }),
        customer: Some(hint_by_id(customer_of(invoice)?)),
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

fn source_of(event: &Event) -> Source {
    Source {
        event_id: event.id.clone(),
        event_type: event.event_type.clone(),
        created: event.created,
    }
}

/// `invoice.*` and `credit_note.*` events.
pub async fn billing_event<A: StripeApi>(
    mapping: &Mapping,
    stripe: &A,
    event: &Event,
) -> Result<Outcome, TransformError> {
    let Some(cfg) = &mapping.invoices else {
        return Ok(Outcome::Skipped(
            "no [invoices] section in the mapping: invoices and credit notes are not booked (their payments are booked as payments)".into(),
        ));
    };
    let doc = &event.data.object;
    let source = source_of(event);
    let id = s(doc, "id").ok_or_else(|| permanent("object without id"))?;
    match event.event_type.as_str() {
        "invoice.finalized" | "invoice.payment_failed" => {
            if int(doc, "total").unwrap_or(0) == 0 {
                return Ok(Outcome::Skipped(format!("invoice {id} has a zero total")));
            }
            Ok(Outcome::Commands(vec![invoice_command(
                mapping, cfg, doc, &source,
            )?]))
        }
        "invoice.paid" => invoice_paid(mapping, cfg, stripe, doc, &source).await,
        "invoice.voided" => {
            let Some(erp_id) = posted_id(doc, "invoice") else {
                return Ok(Outcome::Skipped(format!(
                    "invoice {id} voided before ledgerbridge posted it: nothing to reverse"
                )));
            };
            let cur = currency_of(doc)?;
            let lines = document_lines(mapping, cfg, doc, cur)?;
            Ok(Outcome::Commands(vec![credit_memo(
                doc,
                id,
                cur,
                lines,
                cfg.void_reason.clone(),
                erp_id,
                &source,
                doc_date(doc, "voided_at", &source),
            )?]))
        }
        "invoice.marked_uncollectible" => {
            let Some(item) = &cfg.uncollectible_item else {
                return Ok(Outcome::Skipped(format!(
                    "invoice {id} marked uncollectible: invoices.uncollectible_item is not set, the receivable stays open in the ERP"
                )));
            };
            let Some(erp_id) = posted_id(doc, "invoice") else {
                return Ok(Outcome::Skipped(format!(
                    "invoice {id} marked uncollectible before ledgerbridge posted it: nothing to write off"
                )));
            };
            let cur = currency_of(doc)?;
            let remaining = int(doc, "amount_remaining").unwrap_or(0);
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
                doc_date(doc, "marked_uncollectible_at", &source),
            )?]))
        }
        "credit_note.created" => credit_note_created(mapping, cfg, doc, &source),
        "credit_note.voided" => {
            let Some(_) = posted_id(doc, "credit_memo") else {
                return Ok(Outcome::Skipped(format!(
                    "credit note {id} voided before ledgerbridge posted it: nothing to reverse"
                )));
            };
            let cur = currency_of(doc)?;
            let lines = credit_note_lines(mapping, cfg, doc, cur)?;
            let Some(lines) = lines else {
                return Ok(Outcome::Skipped(format!(
                    "credit note {id} was refunded through Stripe: the refund stands, nothing to reverse here"
                )));
            };
            let date = int(doc, "voided_at").unwrap_or(source.created);
            Ok(Outcome::Commands(vec![ErpCommandV1 {
                command: ErpCommand::CreateInvoice(Invoice {
                    reference: reference(id, DocKind::Invoice)?,
                    customer_id: String::new(),
                    invoice_date: date_of(date)?,
                    due_date: None,
                    currency: cur,
                    lines,
                    sales_order: None,
                }),
                customer: Some(hint_by_id(customer_of(doc)?)),
                depends_on: vec![reference(id, DocKind::CreditMemo)?],
                version: None,
                write_back: None,
                source,
            }]))
        }
        other => Ok(Outcome::Skipped(format!(
            "{other} is not booked by this version"
        ))),
    }
}

fn doc_date(doc: &Value, transition: &str, source: &Source) -> i64 {
    doc.get("status_transitions")
        .and_then(|t| int(t, transition))
        .unwrap_or(source.created)
}

#[allow(clippy::too_many_arguments)]
fn credit_memo(
    invoice: &Value,
    invoice_id: &str,
    cur: Currency,
    lines: Vec<DocumentLine>,
    reason: String,
    erp_invoice: ErpDocumentId,
    source: &Source,
    date: i64,
) -> Result<ErpCommandV1, TransformError> {
    Ok(ErpCommandV1 {
        command: ErpCommand::CreateCreditMemo(CreditMemo {
            reference: reference(invoice_id, DocKind::CreditMemo)?,
            customer_id: String::new(),
            memo_date: date_of(date)?,
            currency: cur,
            lines,
            reason: Some(reason),
            applies_to_invoice: Some(erp_invoice),
        }),
        customer: Some(hint_by_id(customer_of(invoice)?)),
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
    invoice: &Value,
    source: &Source,
) -> Result<Outcome, TransformError> {
    let id = s(invoice, "id").ok_or_else(|| permanent("invoice without id"))?;
    if int(invoice, "total").unwrap_or(0) == 0 {
        return Ok(Outcome::Skipped(format!("invoice {id} has a zero total")));
    }
    let inv = invoice_command(mapping, cfg, invoice, source)?;
    let inv_ref = inv.command.reference().clone();
    let customer = inv.customer.clone();
    let mut out = vec![inv];
    let list = stripe
        .get("invoice_payments", &[("invoice", id), ("limit", "100")])
        .await
        .map_err(stripe_err)?;
    if list.get("has_more").and_then(Value::as_bool) == Some(true) {
        return Err(permanent(format!(
            "invoice {id} has more than 100 payments; not booked partially"
        )));
    }
    for p in list
        .get("data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if s(p, "status") != Some("paid") {
            continue;
        }
        let payment = p.get("payment").cloned().unwrap_or(Value::Null);
        // The receipt's key is the payment's own object (PaymentIntent, else charge), the same
        // key the payment events use, so one payment is one receipt whichever event books it.
        let key = match s(&payment, "type") {
            Some("payment_intent") => id_of(&payment, "payment_intent"),
            Some("charge") => id_of(&payment, "charge"),
            // Paid outside Stripe: the money did not go through the Stripe balance.
            _ => None,
        };
        let Some(key) = key else {
            tracing::info!(invoice = id, "invoice payment outside Stripe: no receipt");
            continue;
        };
        let amount = Money::new(
            int(p, "amount_paid").ok_or_else(|| permanent("invoice payment without amount"))?,
            currency_of(p)?,
        );
        if amount.minor <= 0 {
            continue;
        }
        let paid_at = p
            .get("status_transitions")
            .and_then(|t| int(t, "paid_at"))
            .unwrap_or(source.created);
        out.push(ErpCommandV1 {
            command: ErpCommand::CreateCashReceipt(CashReceipt {
                reference: reference(key, DocKind::CashReceipt)?,
                customer_id: String::new(),
                receipt_date: date_of(paid_at)?,
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

/// Lines of the part of a credit note not refunded through Stripe; `None` when all of it was.
fn credit_note_lines(
    mapping: &Mapping,
    cfg: &Invoices,
    note: &Value,
    cur: Currency,
) -> Result<Option<Vec<DocumentLine>>, TransformError> {
    let id = s(note, "id").unwrap_or("?");
    let total = int(note, "total").ok_or_else(|| permanent("credit note without total"))?;
    let refunded = note
        .get("refunds")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| int(r, "amount_refunded"))
        .try_fold(0i64, i64::checked_add)
        .ok_or_else(|| permanent("amount overflow"))?
        .max(int(note, "refund_amount").unwrap_or(0));
    let credited = total
        .checked_sub(refunded)
        .ok_or_else(|| permanent("amount overflow"))?;
    if credited <= 0 {
        return Ok(None);
    }
    if refunded == 0 {
        return document_lines(mapping, cfg, note, cur).map(Some);
    }
    Ok(Some(vec![DocumentLine {
        item_id: cfg.item.clone(),
        description: format!(
            "Stripe credit note {id}: {} credited, {} refunded (booked with the refund)",
            fmt_money(credited, cur),
            fmt_money(refunded, cur)
        ),
        quantity: Decimal::ONE,
        unit_price: Money::new(credited, cur),
        gl_account: cfg.revenue_account.clone(),
    }]))
}

fn credit_note_created(
    mapping: &Mapping,
    cfg: &Invoices,
    note: &Value,
    source: &Source,
) -> Result<Outcome, TransformError> {
    let id = s(note, "id").ok_or_else(|| permanent("credit note without id"))?;
    let cur = currency_of(note)?;
    let Some(lines) = credit_note_lines(mapping, cfg, note, cur)? else {
        return Ok(Outcome::Skipped(format!(
            "credit note {id} is refunded in full through Stripe: booked by the refund events"
        )));
    };
    let invoice = id_of(note, "invoice");
    Ok(Outcome::Commands(vec![ErpCommandV1 {
        command: ErpCommand::CreateCreditMemo(CreditMemo {
            reference: reference(id, DocKind::CreditMemo)?,
            customer_id: String::new(),
            memo_date: date_of(
                int(note, "effective_at")
                    .or_else(|| int(note, "created"))
                    .unwrap_or(source.created),
            )?,
            currency: cur,
            lines,
            reason: Some(
                s(note, "reason")
                    .and_then(|r| mapping.refunds.reasons.get(r).cloned())
                    .unwrap_or_else(|| cfg.credit_note_reason.clone()),
            ),
            applies_to_invoice: None,
        }),
        customer: Some(hint_by_id(customer_of(note)?)),
        // The invoice must be in the ERP first; erp-post waits for it.
        depends_on: invoice
            .map(|i| reference(i, DocKind::Invoice))
            .transpose()?
            .into_iter()
            .collect(),
        version: None,
        write_back: Some(WriteBack {
            object_path: "credit_notes".into(),
            object_id: id.to_owned(),
            key: format!("{METADATA_PREFIX}credit_memo"),
        }),
        source: source.clone(),
    }]))
}

/// The invoice a payment pays, if any (see the module documentation). `None` without an
/// `[invoices]` section (invoices are then not booked, so the payment must be) and for charges
/// without a PaymentIntent (invoices are always paid through one). At most one Stripe call.
pub async fn invoice_of_payment<A: StripeApi>(
    mapping: &Mapping,
    stripe: &A,
    object: &Value,
    is_intent: bool,
) -> Result<Option<String>, TransformError> {
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::mapping::EXAMPLE;
    use ledgerbridge_stripe::StripeError;
    use std::sync::atomic::{AtomicU64, Ordering};

    const INVOICE_PAID: &str =
        include_str!("../../../tests/fixtures/stripe/events/invoice.paid.json");
    const INVOICE_PAYMENTS: &str = include_str!(
        "../../../tests/fixtures/stripe/api/invoice_payments.invoice_in_1gFOr4Nq7LbKx2Rzh2xikK5p.json"
    );
    const INVOICE_CHARGE: &str =
        include_str!("../../../tests/fixtures/stripe/api/charge_ch_3z6gSKNq7LbKx2RzlHN9nphV.json");
    const CHARGE_SUCCEEDED: &str =
        include_str!("../../../tests/fixtures/stripe/events/charge.succeeded.json");
    const PI_SUCCEEDED: &str =
        include_str!("../../../tests/fixtures/stripe/events/payment_intent.succeeded.json");

    /// Serves the recorded `invoice_payments` responses: by invoice, and filtered by
    /// PaymentIntent the way Stripe filters `payment[payment_intent]`.
    #[derive(Default)]
    pub(crate) struct FixtureStripe {
        calls: AtomicU64,
    }

    impl StripeApi for FixtureStripe {
        async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, StripeError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let q = |k: &str| query.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
            let all: Value = serde_json::from_str(INVOICE_PAYMENTS).unwrap();
            match path {
                "invoice_payments" => {
                    let keep = |p: &Value| {
                        q("invoice").is_none_or(|i| p["invoice"] == i)
                            && q("payment[payment_intent]")
                                .is_none_or(|pi| p["payment"]["payment_intent"] == pi)
                    };
                    let data: Vec<Value> = all["data"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|p| keep(p))
                        .cloned()
                        .collect();
                    Ok(serde_json::json!({"object": "list", "data": data, "has_more": false}))
                }
                other => Err(StripeError::InvalidRequest(format!(
                    "no fixture for {other}"
                ))),
            }
        }

        async fn set_metadata(
            &self,
            _: &str,
            _: &str,
            _: &str,
            _: &str,
        ) -> Result<(), StripeError> {
            Ok(())
        }

        async fn update_customer(
            &self,
            _: &str,
            _: &[(String, String)],
            _: &str,
        ) -> Result<(), StripeError> {
            Ok(())
        }

        fn calls(&self) -> u64 {
            self.calls.load(Ordering::SeqCst)
        }
    }

    fn event(text: &str) -> Event {
        serde_json::from_str(text).unwrap()
    }

    fn commands(o: Outcome) -> Vec<ErpCommandV1> {
        match o {
            Outcome::Commands(c) => {
                for cmd in &c {
                    // erp-post fills the customer; everything else must already be valid.
                    let mut filled = cmd.command.clone();
                    crate::transform::apply_resolution(&mut filled, Some("C1"), None);
                    filled.validate().unwrap();
                }
                c
            }
            Outcome::Skipped(why) => panic!("skipped: {why}"),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn invoice_of(cmd: &ErpCommandV1) -> &Invoice {
        match &cmd.command {
            ErpCommand::CreateInvoice(i) => i,
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn invoice_lines_discount_and_tax_add_up_to_the_total() {
        let m = Mapping::from_toml(EXAMPLE).unwrap();
        let mut ev = event(INVOICE_PAID);
        ev.event_type = "invoice.finalized".into();
        let cmds = commands(
            billing_event(&m, &FixtureStripe::default(), &ev)
                .await
                .unwrap(),
        );
        assert_eq!(cmds.len(), 1);
        let inv = invoice_of(&cmds[0]);
        assert_eq!(inv.reference.full(), "LB-in_1gFOr4Nq7LbKx2Rzh2xikK5p-IN");
        assert_eq!(
            lines_total(inv.currency, &inv.lines).unwrap().to_decimal(),
            Decimal::new(6820, 2)
        );
        // subscription line: 3 seats at 15.00 less 10 % = 3 × 13.50
        let seats = &inv.lines[0];
        assert_eq!(seats.quantity, Decimal::from(3));
        assert_eq!(seats.unit_price.to_decimal(), Decimal::new(1350, 2));
        assert!(
            seats.description.contains("less discount 4.50"),
            "{}",
            seats.description
        );
        // one-off line 25.00 less 2.50
        assert_eq!(inv.lines[1].unit_price.to_decimal(), Decimal::new(2250, 2));
        // one tax line of 5.20 on the tax item and account
        let cfg = m.invoices.as_ref().unwrap();
        let tax: Vec<_> = inv
            .lines
            .iter()
            .filter(|l| l.item_id == cfg.tax_item)
            .collect();
        assert_eq!(tax.len(), 1);
        assert_eq!(tax[0].unit_price.to_decimal(), Decimal::new(520, 2));
        assert_eq!(tax[0].gl_account, cfg.tax_account);
        assert_eq!(
            cmds[0].customer.as_ref().unwrap().stripe_customer,
            "cus_NHQM1cjewvnnbv"
        );
    }

    #[tokio::test]
    async fn products_map_to_items() {
        let mut m = Mapping::from_toml(EXAMPLE).unwrap();
        m.products
            .insert("prod_S7QVysxe43zvFE".into(), "SEAT-SUB".into());
        m.products
            .insert("price_1EVYsZNq7LbKx2RzF3BPCXn1".into(), "ONBOARD".into());
        let mut ev = event(INVOICE_PAID);
        ev.event_type = "invoice.finalized".into();
        let cmds = commands(
            billing_event(&m, &FixtureStripe::default(), &ev)
                .await
                .unwrap(),
        );
        let inv = invoice_of(&cmds[0]);
        assert_eq!(inv.lines[0].item_id, "SEAT-SUB");
        assert_eq!(inv.lines[1].item_id, "ONBOARD");
    }

    #[tokio::test]
    async fn a_total_mismatch_is_permanent() {
        let m = Mapping::from_toml(EXAMPLE).unwrap();
        let mut ev = event(INVOICE_PAID);
        ev.data.object["total"] = 6821.into();
        let err = billing_event(&m, &FixtureStripe::default(), &ev)
            .await
            .unwrap_err();
        assert!(
            matches!(err, TransformError::Permanent(ref e) if e.contains("68.21")),
            "{err}"
        );
        // a negative (proration credit) line is refused, not booked as something else
        let mut ev = event(INVOICE_PAID);
        ev.data.object["lines"]["data"][1]["amount"] = (-2500).into();
        assert!(matches!(
            billing_event(&m, &FixtureStripe::default(), &ev).await,
            Err(TransformError::Permanent(_))
        ));
    }

    #[tokio::test]
    async fn uneven_net_price_becomes_one_unit() {
        let m = Mapping::from_toml(EXAMPLE).unwrap();
        let mut ev = event(INVOICE_PAID);
        // 3 seats, discount 4.51 → 40.49 is not divisible by 3
        let o = &mut ev.data.object;
        o["lines"]["data"][0]["pretax_credit_amounts"][0]["amount"] = 451.into();
        o["total"] = 6819.into();
        let cmds = commands(
            billing_event(&m, &FixtureStripe::default(), &ev)
                .await
                .unwrap(),
        );
        let l = &invoice_of(&cmds[0]).lines[0];
        assert_eq!(l.quantity, Decimal::ONE);
        assert_eq!(l.unit_price.to_decimal(), Decimal::new(4049, 2));
        assert!(l.description.starts_with("3 × "), "{}", l.description);
    }

    #[tokio::test]
    async fn paid_invoice_gives_invoice_and_applied_receipt() {
        let m = Mapping::from_toml(EXAMPLE).unwrap();
        let stripe = FixtureStripe::default();
        let cmds = commands(
            billing_event(&m, &stripe, &event(INVOICE_PAID))
                .await
                .unwrap(),
        );
        assert_eq!(stripe.calls(), 1);
        assert_eq!(cmds.len(), 2);
        let inv = invoice_of(&cmds[0]);
        let ErpCommand::CreateCashReceipt(r) = &cmds[1].command else {
            panic!("{:?}", cmds[1].command)
        };
        assert_eq!(r.amount.to_decimal(), Decimal::new(6820, 2));
        // keyed on the PaymentIntent: the payment events of this payment give the same reference
        assert_eq!(r.reference.full(), "LB-pi_3hs62FNq7LbKx2RzUr2AYuOp-CR");
        assert_eq!(cmds[1].depends_on, vec![inv.reference.clone()]);
        // erp-post applies it to the invoice it depends on
        let mut applied = cmds[1].command.clone();
        let erp = ErpDocumentId::new("INV-1");
        crate::transform::apply_resolution(
            &mut applied,
            Some("C1"),
            Some((DocKind::Invoice, &erp)),
        );
        let ErpCommand::CreateCashReceipt(r) = applied else {
            unreachable!()
        };
        assert_eq!(
            r.applies_to,
            Some(ledgerbridge_erp::Application::Invoice(erp))
        );
    }

    fn charge_event_for_invoice() -> Event {
        let mut ev = event(CHARGE_SUCCEEDED);
        ev.data.object = serde_json::from_str(INVOICE_CHARGE).unwrap();
        ev
    }

    #[tokio::test]
    async fn the_payment_of_a_paid_invoice_is_not_booked_again() {
        let m = Mapping::from_toml(EXAMPLE).unwrap();
        let stripe = FixtureStripe::default();
        let out = crate::transform::transform(&m, &stripe, &charge_event_for_invoice())
            .await
            .unwrap();
        match out {
            Outcome::Skipped(why) => assert!(why.contains("in_1gFOr4Nq7LbKx2Rzh2xikK5p"), "{why}"),
            other => panic!("booked twice: {other:?}"),
        }
        assert_eq!(stripe.calls(), 1);
        let mut pi = event(PI_SUCCEEDED);
        pi.data.object["id"] = "pi_3hs62FNq7LbKx2RzUr2AYuOp".into();
        assert!(matches!(
            crate::transform::transform(&m, &stripe, &pi).await.unwrap(),
            Outcome::Skipped(_)
        ));
        // an ordinary payment is still booked (one call, nothing found)
        let stripe = FixtureStripe::default();
        let cmds = commands(
            crate::transform::transform(&m, &stripe, &event(CHARGE_SUCCEEDED))
                .await
                .unwrap(),
        );
        assert!(cmds
            .iter()
            .any(|c| matches!(c.command, ErpCommand::CreateCashReceipt(_))));
        assert_eq!(stripe.calls(), 1);
        // without [invoices] nothing is looked up and the invoice's payment is booked as a payment
        let mut plain = m.clone();
        plain.invoices = None;
        let stripe = FixtureStripe::default();
        let out = crate::transform::transform(&plain, &stripe, &charge_event_for_invoice())
            .await
            .unwrap();
        assert!(matches!(out, Outcome::Commands(_)));
        assert_eq!(stripe.calls(), 0);
    }

    #[tokio::test]
    async fn void_credits_a_posted_invoice_and_skips_an_unposted_one() {
        let m = Mapping::from_toml(EXAMPLE).unwrap();
        let mut ev = event(INVOICE_PAID);
        ev.event_type = "invoice.voided".into();
        ev.data.object["status"] = "void".into();
        let stripe = FixtureStripe::default();
        assert!(matches!(
            billing_event(&m, &stripe, &ev).await.unwrap(),
            Outcome::Skipped(ref w) if w.contains("before ledgerbridge posted")
        ));
        ev.data.object["metadata"]["ledgerbridge_invoice"] = "INV-77".into();
        let cmds = commands(billing_event(&m, &stripe, &ev).await.unwrap());
        let ErpCommand::CreateCreditMemo(cm) = &cmds[0].command else {
            panic!()
        };
        assert_eq!(cm.reference.full(), "LB-in_1gFOr4Nq7LbKx2Rzh2xikK5p-CM");
        assert_eq!(lines_total(cm.currency, &cm.lines).unwrap().minor, 6820);
        assert_eq!(cm.applies_to_invoice, Some(ErpDocumentId::new("INV-77")));
        assert_eq!(cm.reason.as_deref(), Some("VOID"));
        assert_eq!(stripe.calls(), 0);
    }

    #[tokio::test]
    async fn credit_notes_book_the_part_not_refunded() {
        let m = Mapping::from_toml(EXAMPLE).unwrap();
        let note = serde_json::json!({
            "id": "cn_1Pgc75Nq7LbKx2Rz", "object": "credit_note", "currency": "usd",
            "customer": "cus_NHQM1cjewvnnbv", "invoice": "in_1gFOr4Nq7LbKx2Rzh2xikK5p",
            "created": 1785900000, "total": 2436, "reason": "product_unsatisfactory",
            "lines": {"has_more": false, "data": [
                {"id": "cnli_1", "amount": 2500, "quantity": 1, "description": "Onboarding",
                 "discount_amounts": [{"amount": 250, "discount": "di_1"}],
                 "taxes": [{"amount": 186, "tax_behavior": "exclusive",
                            "tax_rate_details": {"tax_rate": "txr_1"}}]}]},
            "refunds": []
        });
        let mut ev = event(INVOICE_PAID);
        ev.event_type = "credit_note.created".into();
        ev.data.object = note.clone();
        let stripe = FixtureStripe::default();
        let cmds = commands(billing_event(&m, &stripe, &ev).await.unwrap());
        let ErpCommand::CreateCreditMemo(cm) = &cmds[0].command else {
            panic!()
        };
        assert_eq!(lines_total(cm.currency, &cm.lines).unwrap().minor, 2436);
        assert_eq!(cm.lines.len(), 2);
        assert_eq!(
            cmds[0].depends_on,
            vec![reference("in_1gFOr4Nq7LbKx2Rzh2xikK5p", DocKind::Invoice).unwrap()]
        );
        // partly refunded: only the rest is credited here
        ev.data.object["refunds"] =
            serde_json::json!([{"amount_refunded": 1000, "refund": "re_1"}]);
        let cmds = commands(billing_event(&m, &stripe, &ev).await.unwrap());
        let ErpCommand::CreateCreditMemo(cm) = &cmds[0].command else {
            panic!()
        };
        assert_eq!(lines_total(cm.currency, &cm.lines).unwrap().minor, 1436);
        // fully refunded: the refund events book it
        ev.data.object["refunds"] =
            serde_json::json!([{"amount_refunded": 2436, "refund": "re_1"}]);
        assert!(matches!(
            billing_event(&m, &stripe, &ev).await.unwrap(),
            Outcome::Skipped(_)
        ));
    }

    #[tokio::test]
    async fn without_invoices_section_nothing_is_booked() {
        let mut m = Mapping::from_toml(EXAMPLE).unwrap();
        m.invoices = None;
        assert!(matches!(
            billing_event(&m, &FixtureStripe::default(), &event(INVOICE_PAID))
                .await
                .unwrap(),
            Outcome::Skipped(_)
        ));
    }
}
