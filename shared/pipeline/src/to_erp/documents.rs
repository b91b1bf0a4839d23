//! Lines of Stripe invoices and credit notes as ERP document lines (see [`super::invoices`] for
//! discounts and tax), and the small readers both families share.

use crate::convert::{i as int, id_of, s, METADATA_PREFIX};
use crate::mapping::{Invoices, Mapping};
use crate::messages::Source;
use crate::outcome::{permanent, StageError};
use ledgerbridge_core::ids::ErpDocumentId;
use ledgerbridge_core::{Currency, Money};
use ledgerbridge_erp::{commands::lines_total, DocumentLine};
use rust_decimal::Decimal;
use serde_json::Value;
use std::collections::BTreeMap;

pub(super) fn sum_amounts(list: Option<&Value>) -> Result<i64, StageError> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|x| int(x, "amount"))
        .try_fold(0i64, i64::checked_add)
        .ok_or_else(|| permanent("amount overflow"))
}

/// Discounts and other pre-tax credits of an invoice or credit note line.
pub(super) fn line_credits(line: &Value) -> Result<i64, StageError> {
    match line.get("pretax_credit_amounts") {
        Some(Value::Array(a)) if !a.is_empty() => sum_amounts(line.get("pretax_credit_amounts")),
        _ => match line.get("discount_amounts") {
            Some(Value::Array(a)) if !a.is_empty() => sum_amounts(line.get("discount_amounts")),
            _ => Ok(int(line, "discount_amount").unwrap_or(0)),
        },
    }
}

pub(super) fn fmt_money(minor: i64, cur: Currency) -> String {
    format!("{} {}", Money::new(minor, cur).to_decimal(), cur.code())
}

/// The ERP item of an invoice line: its price, then its product, in `[products]`.
pub(super) fn item_of(mapping: &Mapping, cfg: &Invoices, line: &Value) -> String {
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

pub(super) fn quantity_of(line: &Value) -> Result<Decimal, StageError> {
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
pub(super) fn document_lines(
    mapping: &Mapping,
    cfg: &Invoices,
    doc: &Value,
    cur: Currency,
) -> Result<Vec<DocumentLine>, StageError> {
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
            .map(crate::convert::normalise_name)
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

pub(super) fn customer_of(doc: &Value) -> Result<&str, StageError> {
    id_of(doc, "customer").ok_or_else(|| permanent("invoice or credit note without customer"))
}

pub(super) fn posted_id(doc: &Value, key: &str) -> Option<ErpDocumentId> {
    doc.get("metadata")
        .and_then(|m| s(m, &format!("{METADATA_PREFIX}{key}")))
        .map(ErpDocumentId::new)
}

pub(super) fn doc_date(doc: &Value, transition: &str, source: &Source) -> i64 {
    doc.get("status_transitions")
        .and_then(|t| int(t, transition))
        .unwrap_or(source.created)
}
