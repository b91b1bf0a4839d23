//! Epicor business-object methods: `POST {Service}/{Method}` with the method's inputs as a JSON
//! object (datasets as `{"Table": [rows…]}`), answered as `{"returnObj", "parameters"}`.
//!
//! The request has already passed the contract check (method exists, inputs known, row fields
//! known with their types). Business-rule failures come back the way Epicor sends them:
//! `UpdateExt` answers HTTP 200 with `errorsOccurred` and `BOUpdError` rows; other methods
//! fail with HTTP 500 and an `ErrorMessage` (an `Err` here with status 400, turned into that
//! shape by the dialect).

use super::epicor::{check_part_lines, customer_exists, db, open_period};
use super::{bad, text, Reject};
use crate::store::Store;
use crate::ErpKind;
use serde_json::{json, Map, Value};

const ERP: &str = ErpKind::Epicor.as_str();

/// Run `method` of `service` on `body`; the answer on success.
pub fn call(
    st: &Store,
    company: &str,
    service: &str,
    method: &str,
    body: &Value,
    lag: u64,
) -> Result<Value, Reject> {
    match (service, method) {
        ("Erp.BO.SalesOrderSvc", "UpdateExt") => sales_order_update_ext(st, company, body, lag),
        _ => Err(bad(format!(
            "{service}.{method} is not available in this sandbox."
        ))),
    }
}

/// One `BOUpdError` row.
fn upd_error(table: &str, text: &str) -> Value {
    json!({
        "TableName": table,
        "ErrorLevel": "Error",
        "ErrorType": "Exception",
        "ErrorText": text,
        "ErrorSysRowID": "00000000-0000-0000-0000-000000000000",
        "SysRowID": "00000000-0000-0000-0000-000000000000",
        "RowMod": "",
    })
}

fn update_ext_answer(ds: Value, errors: Vec<Value>) -> Value {
    json!({
        "returnObj": {"BOUpdError": errors},
        "parameters": {"ds": ds, "errorsOccurred": !errors.is_empty()},
    })
}

fn rows<'a>(ds: &'a Value, table: &str) -> Vec<&'a Map<String, Value>> {
    ds.get(table)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .collect()
}

/// `SalesOrderSvc/UpdateExt` creating one order: one `OrderHed` row and its `OrderDtl` rows, all
/// with `RowMod` "A" and `OrderNum` 0 (or the header's). Header and lines commit together or,
/// with `rollbackParentOnChildError`, not at all.
fn sales_order_update_ext(
    st: &Store,
    company: &str,
    body: &Value,
    lag: u64,
) -> Result<Value, Reject> {
    let ds = body.get("ds").cloned().unwrap_or_else(|| json!({}));
    let fail =
        |table: &str, msg: String| Ok(update_ext_answer(ds.clone(), vec![upd_error(table, &msg)]));
    let heads = rows(&ds, "OrderHed");
    let [head] = heads.as_slice() else {
        return fail(
            "OrderHed",
            "The sandbox takes exactly one OrderHed row per UpdateExt call.".into(),
        );
    };
    let hv = Value::Object((*head).clone());
    if text(&hv, "RowMod") != Some("A") {
        return fail(
            "OrderHed",
            "Only new orders (RowMod \"A\") are supported.".into(),
        );
    }
    if text(&hv, "Company") != Some(company) {
        return fail(
            "OrderHed",
            format!("Company is required and must be {company}."),
        );
    }
    if hv.get("OrderNum").and_then(Value::as_i64).unwrap_or(0) != 0 {
        return fail("OrderHed", "A new order is sent with OrderNum 0.".into());
    }
    let checked = customer_exists(st, hv.get("CustNum").and_then(Value::as_i64)).and_then(|_| {
        let date = text(&hv, "OrderDate").ok_or_else(|| bad("Order Date is required."))?;
        open_period(st, date, "Order")
    });
    if let Err((_, msg)) = checked {
        return fail("OrderHed", msg);
    }
    let lines = rows(&ds, "OrderDtl");
    let line_values: Vec<Value> = lines.iter().map(|l| Value::Object((*l).clone())).collect();
    for l in &line_values {
        if text(l, "RowMod") != Some("A") {
            return fail(
                "OrderDtl",
                "Only new lines (RowMod \"A\") are supported.".into(),
            );
        }
        if l.get("OrderNum").and_then(Value::as_i64).unwrap_or(0) != 0 {
            return fail("OrderDtl", "Lines of a new order carry OrderNum 0.".into());
        }
    }
    let refs: Vec<&Value> = line_values.iter().collect();
    if let Err((_, msg)) = check_part_lines(st, &refs, "SellingQuantity") {
        return fail("OrderDtl", msg);
    }
    let n = st.next("epicor.OrderNum", 5001).map_err(db)?;
    let mut head_out = (*head).clone();
    head_out.insert("OrderNum".into(), json!(n));
    head_out.insert("RowMod".into(), json!(""));
    let mut lines_out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let mut l = (*l).clone();
        let line = l
            .get("OrderLine")
            .and_then(Value::as_i64)
            .filter(|x| *x > 0)
            .unwrap_or(i as i64 + 1);
        l.insert("OrderNum".into(), json!(n));
        l.insert("OrderLine".into(), json!(line));
        l.insert("RowMod".into(), json!(""));
        lines_out.push(Value::Object(l));
    }
    // The lines are kept inside the order's document under the navigation property
    // (`OrderDtls`, what `$expand` would show): one document, one audit entry per order.
    let mut stored = head_out.clone();
    stored.insert("OrderDtls".into(), Value::Array(lines_out.clone()));
    st.insert_doc(
        ERP,
        "SalesOrders",
        &n.to_string(),
        &Value::Object(stored),
        lag,
    )
    .map_err(db)?;
    Ok(update_ext_answer(
        json!({"OrderHed": [head_out], "OrderDtl": lines_out}),
        vec![],
    ))
}
