//! The document cycle of `ledgerbridge erp check --write`: in the (test) company, create a
//! customer, a sales order, an invoice, a cash receipt applied to the invoice, a credit memo
//! applied to the invoice and a balanced journal, each through the poster every deployment
//! uses ([`post_command`]); then take the lost-response path for each (search by reference
//! finds what was created, and posting the same command again creates nothing).
//!
//! Every reference starts `LB-lbcheck_{run id}`, and the customer code `LBCK{RUN ID}`, so the
//! documents are recognisable in the ERP and can be removed after the check.

use super::{describe, CheckLine};
use crate::commands::{DocKind, ErpCommand, ErpDate};
use crate::connector::ErpConnector;
use crate::posting::{post_command, RetryPolicy};
use ledgerbridge_core::ids::ErpDocumentId;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// What the cycle's documents are made of (from the mapping and reconciliation files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CycleInputs {
    /// 1 to 6 lower-case letters or digits; makes the references and the customer code.
    pub run_id: String,
    pub date: String,
    /// ISO currency, lower-case (`usd`).
    pub currency: String,
    /// Item / part of the order, invoice and credit memo line.
    pub item: String,
    /// Revenue account on the lines, where the mapping names one.
    #[serde(default)]
    pub revenue_account: Option<String>,
    pub payment_method: String,
    /// Credit memo reason code.
    pub reason: String,
    /// Journal: the account debited and the account credited.
    pub debit_account: String,
    pub credit_account: String,
}

impl CycleInputs {
    /// The probe id of the references: `lbcheck_{run id}`.
    pub fn stripe_id(&self) -> String {
        format!("lbcheck_{}", self.run_id)
    }

    /// The customer code: `LBCK` and the run id, upper-case (at most 10 characters).
    pub fn customer_id(&self) -> String {
        format!("LBCK{}", self.run_id.to_ascii_uppercase())
    }

    fn check(&self) -> Result<(), String> {
        let ok = (1..=6).contains(&self.run_id.len())
            && self
                .run_id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !ok {
            return Err(format!(
                "run id {:?} must be 1 to 6 lower-case letters or digits",
                self.run_id
            ));
        }
        ErpDate::parse(&self.date).map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// A run id from a number (e.g. the clock): six base-36 digits.
pub fn run_id_from(n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut n = n;
    let mut out = String::new();
    for _ in 0..6 {
        out.push(char::from(DIGITS[(n % 36) as usize]));
        n /= 36;
    }
    out
}

fn command(v: serde_json::Value) -> Result<ErpCommand, String> {
    serde_json::from_value(v).map_err(|e| format!("cycle command: {e}"))
}

fn reference(inp: &CycleInputs, kind: DocKind) -> serde_json::Value {
    json!({"stripe_id": inp.stripe_id(), "kind": kind.as_str()})
}

fn line(inp: &CycleInputs, desc: &str) -> serde_json::Value {
    json!({"item_id": inp.item, "description": desc, "quantity": "1",
           "unit_price": {"minor": 100, "currency": inp.currency},
           "gl_account": inp.revenue_account})
}

/// Post one command and take its lost-response path; the lines of both, and the id.
async fn step<C: ErpConnector>(
    c: &C,
    cmd: &ErpCommand,
    policy: &RetryPolicy,
    out: &mut Vec<CheckLine>,
) -> Option<ErpDocumentId> {
    let kind = cmd.kind();
    let reference = cmd.reference().full();
    let what = format!("write {} {reference}", kind.as_str());
    let first = match post_command(c, cmd, policy).await {
        Ok(o) => {
            out.push(CheckLine::pass(
                what,
                "created",
                format!(
                    "{} {}",
                    if o.created {
                        "created"
                    } else {
                        "already there"
                    },
                    o.erp_id
                ),
            ));
            o.erp_id
        }
        Err(e) => {
            out.push(CheckLine::fail(
                what,
                "created",
                describe(&e),
                "fix what the ERP names (see the read-only lines above), then run again",
            ));
            return None;
        }
    };
    let what = format!("lost response: {} found by reference", kind.as_str());
    match c.find_by_reference(cmd.reference()).await {
        Ok(Some(id)) if id == first => out.push(CheckLine::pass(what, first.to_string(), id.to_string())),
        Ok(found) => out.push(CheckLine::fail(
            what,
            first.to_string(),
            found.map(|i| i.to_string()).unwrap_or_else(|| "nothing".into()),
            "the reference field is not searchable as configured: check the reference field / column settings",
        )),
        Err(e) => out.push(CheckLine::fail(what, first.to_string(), describe(&e), "check the search route")),
    }
    let what = format!("lost response: {} posted again", kind.as_str());
    match post_command(c, cmd, policy).await {
        Ok(o) if !o.created && o.erp_id == first => {
            out.push(CheckLine::pass(what, "not created twice", format!("found {}", o.erp_id)))
        }
        Ok(o) => out.push(CheckLine::fail(
            what,
            "not created twice",
            format!("created {} again", o.erp_id),
            "a document would be doubled after a lost response: the reference search does not find new documents",
        )),
        Err(e) => out.push(CheckLine::fail(
            what,
            "not created twice",
            describe(&e),
            "a repeated delivery would be refused the same way: fix what the ERP names (Sage 500 customers: set customer_update_dim_job)",
        )),
    }
    Some(first)
}

/// Run the cycle; one line per document and per lost-response check.
pub async fn run<C: ErpConnector>(
    c: &C,
    inp: &CycleInputs,
    policy: &RetryPolicy,
) -> Vec<CheckLine> {
    let mut out = Vec::new();
    if let Err(m) = inp.check() {
        out.push(CheckLine::fail(
            "write cycle inputs",
            "valid",
            m,
            "report this as a bug",
        ));
        return out;
    }
    let cust = inp.customer_id();
    let build = |v: serde_json::Value, out: &mut Vec<CheckLine>| match command(v) {
        Ok(c) => Some(c),
        Err(m) => {
            out.push(CheckLine::fail(
                "write cycle command",
                "valid",
                m,
                "check the mapping's values",
            ));
            None
        }
    };
    let Some(customer) = build(
        json!({"type": "upsert_customer", "reference": reference(inp, DocKind::Customer),
               "customer_id": cust, "name": "ledgerbridge check customer",
               "email": null, "currency": inp.currency}),
        &mut out,
    ) else {
        return out;
    };
    if step(c, &customer, policy, &mut out).await.is_none() {
        return out;
    }
    if let Some(order) = build(
        json!({"type": "create_sales_order", "reference": reference(inp, DocKind::SalesOrder),
               "customer_id": cust, "order_date": inp.date, "currency": inp.currency,
               "lines": [line(inp, "ledgerbridge check order")]}),
        &mut out,
    ) {
        step(c, &order, policy, &mut out).await;
    }
    let Some(invoice) = build(
        json!({"type": "create_invoice", "reference": reference(inp, DocKind::Invoice),
               "customer_id": cust, "invoice_date": inp.date, "due_date": inp.date,
               "currency": inp.currency, "lines": [line(inp, "ledgerbridge check invoice")],
               "sales_order": null}),
        &mut out,
    ) else {
        return out;
    };
    let invoice_id = step(c, &invoice, policy, &mut out).await;
    match &invoice_id {
        Some(inv) => {
            let receipt = build(
                json!({"type": "create_cash_receipt", "reference": reference(inp, DocKind::CashReceipt),
                       "customer_id": cust, "receipt_date": inp.date,
                       "amount": {"minor": 100, "currency": inp.currency},
                       "payment_method": inp.payment_method,
                       "applies_to": {"kind": "invoice", "erp_id": inv.to_string()}}),
                &mut out,
            );
            if let Some(r) = receipt {
                step(c, &r, policy, &mut out).await;
            }
            let memo = build(
                json!({"type": "create_credit_memo", "reference": reference(inp, DocKind::CreditMemo),
                       "customer_id": cust, "memo_date": inp.date, "currency": inp.currency,
                       "lines": [line(inp, "ledgerbridge check credit")], "reason": inp.reason,
                       "applies_to_invoice": inv.to_string()}),
                &mut out,
            );
            if let Some(m) = memo {
                step(c, &m, policy, &mut out).await;
            }
        }
        None => out.push(CheckLine::fail(
            "write cash_receipt and credit_memo",
            "applied to the invoice",
            "skipped: no invoice",
            "fix the invoice first",
        )),
    }
    if let Some(journal) = build(
        json!({"type": "post_journal_entry", "reference": reference(inp, DocKind::JournalEntry),
               "posting_date": inp.date, "currency": inp.currency,
               "description": format!("ledgerbridge check {}", inp.run_id),
               "lines": [
                   {"gl_account": inp.debit_account, "side": "debit",
                    "amount": {"minor": 100, "currency": inp.currency}, "memo": "ledgerbridge check"},
                   {"gl_account": inp.credit_account, "side": "credit",
                    "amount": {"minor": 100, "currency": inp.currency}, "memo": "ledgerbridge check"}]}),
        &mut out,
    ) {
        step(c, &journal, policy, &mut out).await;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_and_codes_are_short_and_recognisable() {
        assert_eq!(run_id_from(0), "000000");
        assert_eq!(run_id_from(35), "z00000");
        let inp = CycleInputs {
            run_id: run_id_from(1_764_480_000),
            date: "2026-03-16".into(),
            currency: "usd".into(),
            item: "WIDGET-01".into(),
            revenue_account: None,
            payment_method: "STRIPE".into(),
            reason: "RETURN".into(),
            debit_account: "1010-00".into(),
            credit_account: "1015-00".into(),
        };
        assert!(inp.check().is_ok());
        assert_eq!(inp.customer_id().len(), 10);
        assert!(inp.customer_id().starts_with("LBCK"));
        assert!(inp.stripe_id().starts_with("lbcheck_"));
        let bad = CycleInputs {
            run_id: "UPPER".into(),
            ..inp
        };
        assert!(bad.check().is_err());
    }
}
