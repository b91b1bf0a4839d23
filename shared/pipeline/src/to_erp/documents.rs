//! Lines of Stripe invoices and credit notes as ERP document lines (see [`super::invoices`] for
//! discounts and tax), and the small readers both families share.

use crate::convert::{meta, normalise_name, text, METADATA_PREFIX};
use crate::mapping::{Invoices, Mapping};
use crate::outcome::{permanent, StageError};
use ledgerbridge_core::ids::ErpDocumentId;
use ledgerbridge_core::{Currency, Money};
use ledgerbridge_erp::{commands::lines_total, DocumentLine};
use ledgerbridge_stripe::objects::{
    Expandable, Metadata, StripeCustomer, StripeLineItem, StripeList,
};
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// Discounts and other pre-tax credits of an invoice or credit note line.
pub(super) fn line_credits(line: &StripeLineItem) -> Result<i64, StageError> {
    line.credits().ok_or_else(|| permanent("amount overflow"))
}

pub(super) fn fmt_money(minor: i64, cur: Currency) -> String {
    format!("{} {}", Money::new(minor, cur).to_decimal(), cur.code())
}

/// The ERP item of an invoice line: its price, then its product, in `[products]`.
pub(super) fn item_of(mapping: &Mapping, cfg: &Invoices, line: &StripeLineItem) -> String {
    line.price_id()
        .and_then(|p| mapping.products.get(p))
        .or_else(|| line.product_id().and_then(|p| mapping.products.get(p)))
        .cloned()
        .unwrap_or_else(|| cfg.item.clone())
}

pub(super) fn quantity_of(line: &StripeLineItem) -> Decimal {
    if let Some(q) = line.quantity_decimal {
        return q;
    }
    line.quantity
        .filter(|q| *q > 0)
        .map(Decimal::from)
        .unwrap_or(Decimal::ONE)
}

/// Lines of an invoice or credit note (`doc_id`, its `lines` and `total`): product lines net of
/// discounts and inclusive tax, then one line per tax rate. The lines add up to the document's
/// `total` or the result is an error.
pub(super) fn document_lines(
    mapping: &Mapping,
    cfg: &Invoices,
    doc_id: &str,
    lines: &StripeList<StripeLineItem>,
    total: Option<i64>,
    cur: Currency,
) -> Result<Vec<DocumentLine>, StageError> {
    let doc_id = Some(doc_id).filter(|id| !id.is_empty()).unwrap_or("?");
    if lines.data.is_empty() {
        return Err(permanent(format!("{doc_id} has no lines")));
    }
    if lines.has_more {
        return Err(permanent(format!(
            "{doc_id} has more lines than the event carries; not booked partially"
        )));
    }
    let mut out = Vec::new();
    let mut taxes: BTreeMap<String, i64> = BTreeMap::new();
    for line in &lines.data {
        let line_id = Some(line.id.as_str())
            .filter(|id| !id.is_empty())
            .unwrap_or("?");
        let amount = line
            .amount
            .ok_or_else(|| permanent(format!("line {line_id} without amount")))?;
        let credits = line_credits(line)?;
        let mut inclusive = 0i64;
        // The line's tax in either shape: `taxes` (current API versions), else `tax_amounts`
        // (older versions, converted).
        for t in &line.taxes() {
            let rate = t
                .rate_id()
                .or_else(|| text(&t.kind))
                .unwrap_or("tax")
                .to_owned();
            let e = taxes.entry(rate).or_default();
            *e = e
                .checked_add(t.amount)
                .ok_or_else(|| permanent("tax overflow"))?;
            if t.is_inclusive() {
                inclusive = inclusive
                    .checked_add(t.amount)
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
        let quantity = quantity_of(line);
        let base = text(&line.description)
            .map(normalise_name)
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
    let total = total.ok_or_else(|| permanent(format!("{doc_id} has no total")))?;
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

/// The customer of an invoice or credit note.
pub(super) fn customer_of(
    customer: &Option<Expandable<StripeCustomer>>,
) -> Result<&str, StageError> {
    ledgerbridge_stripe::objects::expandable_id(customer)
        .ok_or_else(|| permanent("invoice or credit note without customer"))
}

/// The ERP id ledgerbridge wrote back into the document's metadata under `key`.
pub(super) fn posted_id(metadata: &Metadata, key: &str) -> Option<ErpDocumentId> {
    meta(metadata, &format!("{METADATA_PREFIX}{key}")).map(ErpDocumentId::new)
}
