//! Epicor discovery for `ledgerbridge erp check` (read-only): every GL account the mapping
//! names (`GLAccountSvc`, the connector's own lookup), the fiscal period of the posting date,
//! the day's cash, invoice and journal groups, and what no read-only route confirms.
//!
//! **Assumption** (no contract fact confirms them): payment methods are read from
//! [`PAYMETHOD_SERVICE`] by `PMUID` and parts from [`PART_SERVICE`] by `PartNum`; fiscal periods are read from
//! `Erp.BO.FiscalPerSvc/FiscalPers` filtered by `FiscalYear`, each row with `StartDate`,
//! `EndDate` and `ClosedPeriod`; the service path and field names are [`PERIOD_SERVICE`] and
//! [`PERIOD_CLOSED_FIELD`]. A real installation whose calendar lives elsewhere answers 404, which
//! the check reports as a failure to confirm by hand.

use super::client::EpicorConnector;
use super::groups::{self, GroupKind};
use super::mapping::{self, EpicorRequest, Method};
use crate::check::{describe, CheckLine, Expectations, Named};
use serde_json::Value;

/// Service and entity set of the fiscal periods (assumption, see the module documentation).
pub const PERIOD_SERVICE: &str = "Erp.BO.FiscalPerSvc/FiscalPers";
/// Field telling a closed period (assumption).
pub const PERIOD_CLOSED_FIELD: &str = "ClosedPeriod";
/// Payment methods by `PMUID` (assumption: route not in the contract facts).
pub const PAYMETHOD_SERVICE: &str = "Erp.BO.PayMethodSvc/PayMethods";
/// Parts by `PartNum` (assumption: route not in the contract facts).
pub const PART_SERVICE: &str = "Erp.BO.PartSvc/Parts";

pub(crate) async fn lines(
    c: &EpicorConnector,
    exp: &Expectations,
    accounts: &[&Named],
) -> Vec<CheckLine> {
    let mut out = Vec::new();
    for a in accounts {
        out.push(gl_account(c, a).await);
    }
    out.push(period(c, exp).await);
    for kind in [GroupKind::Cash, GroupKind::Invoice, GroupKind::Journal] {
        out.push(group(c, kind, exp).await);
    }
    for (code, pmuid) in &c.config().payment_methods {
        out.push(
            master(
                c,
                PAYMETHOD_SERVICE,
                format!("PMUID eq {pmuid}"),
                format!("payment method {code} → PMUID {pmuid} (payment_methods)"),
                format!("a PayMethod row with PMUID {pmuid}"),
                format!("set payment_methods.{code} to the PMUID of the method in Payment Method Maintenance"),
            )
            .await,
        );
    }
    for m in &exp.payment_methods {
        if !c.config().payment_methods.contains_key(&m.value) {
            out.push(CheckLine::fail(
                format!("payment method {} ({})", m.value, m.origin),
                "a PMUID in the Epicor settings' payment_methods",
                "no entry",
                format!(
                    "add \"{}\": <PMUID> to payment_methods in the Epicor settings",
                    m.value
                ),
            ));
        }
    }
    let mut parts_seen = Vec::new();
    for i in &exp.items {
        if parts_seen.contains(&&i.value) {
            continue;
        }
        parts_seen.push(&i.value);
        out.push(
            master(
                c,
                PART_SERVICE,
                format!("PartNum eq '{}'", i.value.replace('\'', "''")),
                format!("part {} ({})", i.value, i.origin),
                "a part in Part Maintenance".to_owned(),
                format!("create part {} or correct {}", i.value, i.origin),
            )
            .await,
        );
    }
    for (kind, field) in [
        ("customer", &c.config().ref_fields.customer),
        ("sales_order", &c.config().ref_fields.sales_order),
        ("invoice", &c.config().ref_fields.invoice),
        ("credit_memo", &c.config().ref_fields.credit_memo),
        ("cash_receipt", &c.config().ref_fields.cash_receipt),
        ("journal_entry", &c.config().ref_fields.journal_entry),
    ] {
        out.push(CheckLine::manual(
            format!("reference field {} length (ref_fields.{kind})", field.name),
            format!("at least {} characters", field.max_len),
            "the search above shows the field exists; confirm its length in the Data Dictionary (or the service's $metadata) and lower max_len if shorter",
        ));
    }
    for r in &exp.reason_codes {
        out.push(CheckLine::manual(
            format!("reason code {} ({})", r.value, r.origin),
            "a reason code",
            "confirm the reason code exists in Reason Maintenance",
        ));
    }
    out
}

async fn gl_account(c: &EpicorConnector, a: &Named) -> CheckLine {
    let what = format!("GL account {} ({})", a.value, a.origin);
    let answer = c.call(&mapping::gl_account_lookup_request(&a.value)).await;
    match answer.and_then(|body| mapping::gl_account_of(&a.value, &body)) {
        Ok(internal) => CheckLine::pass(
            what,
            "an account of the chart",
            format!("GLAccount {internal}"),
        ),
        Err(e) => CheckLine::fail(
            what,
            "an account of the chart",
            describe(&e),
            format!(
                "create {} in GL Account Maintenance or correct {}",
                a.value, a.origin
            ),
        ),
    }
}

async fn period(c: &EpicorConnector, exp: &Expectations) -> CheckLine {
    let date = exp.posting_date.as_str();
    let what = format!("fiscal period of {date}");
    let req = EpicorRequest {
        method: Method::Get,
        path: PERIOD_SERVICE.into(),
        query: vec![(
            "$filter".into(),
            format!("FiscalYear eq {}", exp.posting_date.year()),
        )],
        body: None,
    };
    let body = match c.call(&req).await {
        Ok(b) => b,
        Err(e) => {
            return CheckLine::fail(
                what,
                "open",
                describe(&e),
                format!("{PERIOD_SERVICE} could not be read (an assumed route): confirm the period is open in Fiscal Calendar Maintenance"),
            )
        }
    };
    let rows = body
        .get("value")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let day = |v: &Value, f: &str| {
        v.get(f)
            .and_then(Value::as_str)
            .and_then(|s| s.get(..10))
            .map(str::to_owned)
    };
    let row = rows.iter().find(|r| {
        matches!((day(r, "StartDate"), day(r, "EndDate")), (Some(s), Some(e)) if s.as_str() <= date && date <= e.as_str())
    });
    let Some(row) = row else {
        return CheckLine::fail(
            what,
            "open",
            "no fiscal period contains the date",
            "set up the fiscal year in Fiscal Calendar Maintenance",
        );
    };
    let label = format!(
        "period {}/{}",
        row.get("FiscalYear")
            .map(Value::to_string)
            .unwrap_or_default(),
        row.get("FiscalPeriod")
            .map(Value::to_string)
            .unwrap_or_default()
    );
    if row.get(PERIOD_CLOSED_FIELD).and_then(Value::as_bool) == Some(true) {
        CheckLine::fail(
            what,
            "open",
            format!("{label} closed"),
            "reopen the period, or expect every document dated in it to be parked",
        )
    } else {
        CheckLine::pass(what, "open", format!("{label} open"))
    }
}

async fn group(c: &EpicorConnector, kind: GroupKind, exp: &Expectations) -> CheckLine {
    let id = groups::group_id(c.config(), kind, &exp.posting_date);
    let what = format!("{} group {id}", kind.table());
    match c.call(&groups::find_request(kind, &id)).await {
        Ok(body) => match groups::row_of(kind, &body) {
            None => CheckLine::pass(what, "usable", "absent; created with the first document"),
            Some(row) => match groups::check_usable(kind, &row, c.user().as_deref()) {
                Ok(()) => CheckLine::pass(what, "usable", "present, not locked by another user"),
                Err(e) => CheckLine::fail(
                    what,
                    "usable",
                    describe(&e),
                    "release the group in its entry program, or change groups.pattern",
                ),
            },
        },
        Err(e) => CheckLine::fail(
            what,
            "usable",
            describe(&e),
            format!("give the integration user access to {}", kind.service()),
        ),
    }
}

/// One master-data row found by a filter (any row → pass).
async fn master(
    c: &EpicorConnector,
    path: &str,
    filter: String,
    what: String,
    expected: String,
    action: String,
) -> CheckLine {
    let req = EpicorRequest {
        method: Method::Get,
        path: path.to_owned(),
        query: vec![("$filter".into(), filter), ("$top".into(), "1".into())],
        body: None,
    };
    match c.call(&req).await {
        Ok(body) => match body.pointer("/value/0") {
            Some(_) => CheckLine::pass(what, expected, "present"),
            None => CheckLine::fail(what, expected, "absent", action),
        },
        Err(e) => CheckLine::fail(
            what,
            expected,
            describe(&e),
            format!("{path} could not be read (an assumed route): {action}, or confirm by hand"),
        ),
    }
}
