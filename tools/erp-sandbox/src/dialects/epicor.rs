//! Epicor Kinetic REST v2 dialect.

use super::{bad, decimal, error, safe_field, text, Reject};
use crate::export::{DocState, ExportedDocument, ExportedLine};
use crate::store::{FilterValue, Store};
use crate::{dropped_response, gate, header, AppState, ErpKind, Gate};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

const ERP: &str = ErpKind::Epicor.as_str();

fn service_of(set: &str) -> Option<&'static str> {
    Some(match set {
        "Customers" => "Erp.BO.CustomerSvc",
        "SalesOrders" => "Erp.BO.SalesOrderSvc",
        "ARInvoices" => "Erp.BO.ARInvoiceSvc",
        "CashRecs" => "Erp.BO.CashRecSvc",
        "GLJournalEntries" => "Erp.BO.GLJournalEntrySvc",
        "CashGrps" => "Erp.BO.CashGrpSvc",
        "InvcGrps" => "Erp.BO.InvcGrpSvc",
        "GLJrnGrps" => "Erp.BO.GLJrnGrpSvc",
        "GLAccounts" => "Erp.BO.GLAccountSvc",
        _ => return None,
    })
}

/// Entity sets whose POST/PATCH bodies and GET queries are checked against the contract facts
/// (one flat row of the set's row type, every field known).
const STRICT_SETS: [&str; 8] = [
    "Customers",
    "SalesOrders",
    "CashRecs",
    "CashGrps",
    "InvcGrps",
    "ARInvoices",
    "GLJournalEntries",
    "GLJrnGrps",
];

/// Child rows kept inside a document under their navigation property; a GET shows them only
/// with `$expand`.
fn navigation_of(set: &str) -> Option<&'static str> {
    match set {
        "SalesOrders" => Some("OrderDtls"),
        "CashRecs" => Some("CashDtls"),
        "ARInvoices" => Some("InvcDtls"),
        "GLJournalEntries" => Some("GLJrnDtlMnls"),
        _ => None,
    }
}

fn strict(set: &str) -> bool {
    let base = set.split('(').next().unwrap_or(set);
    STRICT_SETS.contains(&base)
}

/// A request that departs from the contract: Epicor's OData layer refuses to bind it.
fn contract_error(violations: &[crate::contract::Violation]) -> Response {
    let text: Vec<String> = violations.iter().map(ToString::to_string).collect();
    error(
        ErpKind::Epicor,
        StatusCode::BAD_REQUEST,
        "binding",
        &format!(
            "The request does not match the service contract: {}",
            text.join("; ")
        ),
    )
}

fn unauthorized(msg: &str) -> Response {
    error(ErpKind::Epicor, StatusCode::UNAUTHORIZED, "auth", msg)
}

/// `x-api-key` is required on every call, plus Basic or Bearer identity; the user name (Basic)
/// or `"token"` (Bearer) on success.
fn authenticate(s: &AppState, h: &HeaderMap) -> Result<String, Response> {
    let keys = s.keys.lock().map(|k| k.clone()).unwrap_or_default();
    match header(h, "x-api-key") {
        Some(k) if k == keys.epicor_api_key => {}
        Some(_) => return Err(unauthorized("Invalid API Key.")),
        None => return Err(unauthorized("API Key is required.")),
    }
    let auth = header(h, "authorization").unwrap_or("");
    let user = if let Some(b) = auth.strip_prefix("Basic ") {
        let expected = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", keys.epicor_user, keys.epicor_password));
        (b == expected).then(|| keys.epicor_user.clone())
    } else if let Some(t) = auth.strip_prefix("Bearer ") {
        (t == keys.epicor_bearer).then(|| "token".to_owned())
    } else {
        None
    };
    if let Some(user) = user {
        Ok(user)
    } else {
        Err(unauthorized(
            "Authentication failed: invalid user name, password or token.",
        ))
    }
}

/// A business-rule failure of a BO method: Epicor answers HTTP 500 with `ErrorMessage` (a
/// request the sandbox cannot parse stays a 400).
pub(crate) fn business_error(status: StatusCode, msg: &str) -> Response {
    if status == StatusCode::BAD_REQUEST {
        let body = json!({
            "HttpStatus": 500,
            "ReasonPhrase": "REST API Exception",
            "ErrorMessage": msg,
            "ErrorType": "Ice.Common.BusinessObjectException",
        });
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response();
    }
    error(ErpKind::Epicor, status, "bo", msg)
}

fn company_check(s: &AppState, company: &str) -> Result<(), Response> {
    if company != s.cfg.company {
        return Err(error(
            ErpKind::Epicor,
            StatusCode::BAD_REQUEST,
            "company",
            &format!("Invalid company: {company}."),
        ));
    }
    Ok(())
}

fn route_check(s: &AppState, company: &str, service: &str, set: &str) -> Result<(), Response> {
    let base = set.split('(').next().unwrap_or(set);
    if service_of(base) != Some(service) {
        return Err(error(
            ErpKind::Epicor,
            StatusCode::NOT_FOUND,
            "404",
            &format!("Resource not found for the segment '{service}/{set}'."),
        ));
    }
    if company != s.cfg.company {
        return Err(error(
            ErpKind::Epicor,
            StatusCode::BAD_REQUEST,
            "company",
            &format!("Invalid company: {company}."),
        ));
    }
    Ok(())
}

/// Parse `A eq 'x' and B eq 12 and C eq true`.
fn parse_filter(f: &str) -> Result<Vec<(String, FilterValue)>, String> {
    let mut out = Vec::new();
    for clause in f.split(" and ") {
        let mut parts = clause.trim().splitn(3, ' ');
        let (Some(field), Some("eq"), Some(lit)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("Syntax error in $filter clause '{clause}'."));
        };
        if !safe_field(field) {
            return Err(format!("Could not find a property named '{field}'."));
        }
        let v = if let Some(inner) = lit.strip_prefix('\'').and_then(|l| l.strip_suffix('\'')) {
            FilterValue::Text(inner.replace("''", "'"))
        } else if lit == "true" || lit == "false" {
            FilterValue::Bool(lit == "true")
        } else if let Ok(i) = lit.parse::<i64>() {
            FilterValue::Int(i)
        } else {
            return Err(format!("Syntax error: unrecognized literal '{lit}'."));
        };
        out.push((field.to_owned(), v));
    }
    Ok(out)
}

pub async fn get(
    State(s): State<AppState>,
    Path((_instance, company, service, set)): Path<(String, String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> Response {
    if let Some(master) = master_set(&service, &set) {
        if let Err(r) = authenticate(&s, &h).and_then(|_| company_check(&s, &company)) {
            return r;
        }
        return match master {
            MasterSet::FiscalPeriods => fiscal_periods(&s, &q),
            MasterSet::Codes {
                kind,
                field,
                numeric,
            } => master_codes(&s, &service, &set, &q, kind, field, numeric),
        };
    }
    if let Err(r) = authenticate(&s, &h).and_then(|_| route_check(&s, &company, &service, &set)) {
        return r;
    }
    if let Gate::Respond(r) = gate(&s, false, ErpKind::Epicor).await {
        return r;
    }
    // Every query names fields of the set's row type.
    {
        let pairs: Vec<(String, String)> = q.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let found = s.contract.check_query(&service, &set, &pairs);
        if !found.is_empty() {
            return contract_error(&found);
        }
    }
    if set == "Customers" {
        if let Some(lit) = q
            .get("$filter")
            .and_then(|f| f.strip_prefix("ChangeDate ge "))
        {
            return changed_customers(&s, &service, lit.trim(), &q);
        }
    }
    let mut filters = match q.get("$filter").map(|f| parse_filter(f)).transpose() {
        Ok(f) => f.unwrap_or_default(),
        Err(m) => return error(ErpKind::Epicor, StatusCode::BAD_REQUEST, "filter", &m),
    };
    // The database's default collation compares customer e-mail addresses case-insensitively.
    if set == "Customers" {
        for (field, value) in &mut filters {
            if let (true, FilterValue::Text(t)) = (field == "EMailAddress", &*value) {
                *value = FilterValue::TextNoCase(t.clone());
            }
        }
    }
    let top = q.get("$top").and_then(|t| t.parse().ok()).unwrap_or(100);
    let found = match s.store.lock() {
        Ok(st) => st.find(ERP, &set, &filters, top),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let mut values = match found {
        Ok(v) => v,
        Err(e) => {
            return error(
                ErpKind::Epicor,
                StatusCode::INTERNAL_SERVER_ERROR,
                "db",
                &e.to_string(),
            )
        }
    };
    // Order lines are a navigation property: only `$expand=OrderDtls` shows them.
    if let Some(nav) = navigation_of(&set) {
        if q.get("$expand").map(String::as_str) != Some(nav) {
            for v in &mut values {
                if let Some(o) = v.as_object_mut() {
                    o.remove(nav);
                }
            }
        }
    }
    if let Some(sel) = q.get("$select") {
        let fields: Vec<&str> = sel.split(',').map(str::trim).collect();
        values = values
            .into_iter()
            .map(|v| {
                let m: Map<String, Value> = fields
                    .iter()
                    .filter_map(|f| v.get(*f).map(|x| ((*f).to_owned(), x.clone())))
                    .collect();
                Value::Object(m)
            })
            .collect();
    }
    Json(json!({"@odata.context": format!("{service}/$metadata#{set}"), "value": values}))
        .into_response()
}

/// `Customers?$filter=ChangeDate ge {date}&$orderby=ChangeDate,ChangeTime&$skip&$top&$select`:
/// Epicor keeps the day of the last change in `ChangeDate` and the seconds after midnight in
/// `ChangeTime`; the sandbox derives both from its audit log (UTC).
fn changed_customers(
    s: &AppState,
    service: &str,
    literal: &str,
    q: &HashMap<String, String>,
) -> Response {
    let Ok(st) = s.store.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let since = match st.parse_time_ms(literal) {
        Ok(Some(ms)) => ms,
        _ => {
            return error(
                ErpKind::Epicor,
                StatusCode::BAD_REQUEST,
                "filter",
                &format!("Syntax error: unrecognized literal '{literal}'."),
            )
        }
    };
    let rows = match st.changed_since(ERP, "Customers", since, "%Y-%m-%dT00:00:00Z") {
        Ok(r) => r,
        Err(e) => {
            return error(
                ErpKind::Epicor,
                StatusCode::INTERNAL_SERVER_ERROR,
                "db",
                &e.to_string(),
            )
        }
    };
    let skip = q.get("$skip").and_then(|t| t.parse().ok()).unwrap_or(0);
    let top = q.get("$top").and_then(|t| t.parse().ok()).unwrap_or(100);
    let fields: Option<Vec<&str>> = q
        .get("$select")
        .map(|sel| sel.split(',').map(str::trim).collect());
    let values: Vec<Value> = rows
        .into_iter()
        .skip(skip)
        .take(top)
        .map(|(mut doc, ms, day)| {
            if let Some(o) = doc.as_object_mut() {
                o.insert("ChangeDate".into(), json!(day));
                o.insert("ChangeTime".into(), json!((ms / 1000).rem_euclid(86_400)));
            }
            match &fields {
                Some(f) => Value::Object(
                    f.iter()
                        .filter_map(|k| doc.get(*k).map(|x| ((*k).to_owned(), x.clone())))
                        .collect(),
                ),
                None => doc,
            }
        })
        .collect();
    Json(json!({"@odata.context": format!("{service}/$metadata#Customers"), "value": values}))
        .into_response()
}

pub async fn post(
    State(s): State<AppState>,
    Path((_instance, company, service, set)): Path<(String, String, String, String)>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    let is_method = s.contract.has_method(&service, &set);
    let checked = authenticate(&s, &h).and_then(|user| {
        if is_method {
            company_check(&s, &company)?;
        } else {
            route_check(&s, &company, &service, &set)?;
        }
        Ok(user)
    });
    let user = match checked {
        Ok(u) => u,
        Err(r) => return r,
    };
    // Method calls that commit a document (Update, UpdateExt of a document service, not of a
    // group) are the creating requests of the BO routes.
    let creating = !is_method || (set.starts_with("Update") && !service.ends_with("GrpSvc"));
    if creating {
        if let Some(r) = crate::refused_reference(&s, ErpKind::Epicor, &body) {
            return r;
        }
    }
    let drop = match gate(&s, creating, ErpKind::Epicor).await {
        Gate::Respond(r) => return r,
        Gate::Proceed { drop_after_commit } => drop_after_commit,
    };
    let Ok(Value::Object(mut entity)) = serde_json::from_slice::<Value>(&body) else {
        return error(
            ErpKind::Epicor,
            StatusCode::BAD_REQUEST,
            "body",
            "The request body is not a valid JSON object.",
        );
    };
    if is_method {
        let body = Value::Object(entity);
        let found = s.contract.check_method(&service, &set, &body);
        if !found.is_empty() {
            return contract_error(&found);
        }
        let lag = s.faults.lock().map(|f| f.search_lag_ms).unwrap_or(0);
        let result = match s.store.lock() {
            Ok(st) => {
                let ctx = super::epicor_bo::Ctx {
                    st: &st,
                    company: &s.cfg.company,
                    user: &user,
                    lag,
                };
                super::epicor_bo::call(&ctx, &service, &set, &body)
            }
            Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        };
        return match result {
            Ok(_) if drop => dropped_response(),
            Ok(answer) => (StatusCode::OK, Json(answer)).into_response(),
            Err((status, msg)) => business_error(status, &msg),
        };
    }
    if strict(&set) {
        let found = s
            .contract
            .check_entity_write(&service, &set, &Value::Object(entity.clone()));
        if !found.is_empty() {
            return contract_error(&found);
        }
    }
    let lag = s.faults.lock().map(|f| f.search_lag_ms).unwrap_or(0);
    let result = match s.store.lock() {
        Ok(st) => create(&st, &s.cfg.company, &set, &mut entity, lag),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    match result {
        Ok(()) if drop => dropped_response(),
        Ok(()) => (StatusCode::CREATED, Json(Value::Object(entity))).into_response(),
        Err((status, msg)) => error(ErpKind::Epicor, status, "validation", &msg),
    }
}

pub(crate) fn customer_exists(st: &Store, cust_num: Option<i64>) -> Result<i64, Reject> {
    let n = cust_num.ok_or_else(|| bad("CustNum is required."))?;
    let found = st
        .find(
            ERP,
            "Customers",
            &[("CustNum".into(), FilterValue::Int(n))],
            1,
        )
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    if found.is_empty() {
        return Err(bad(format!("Customer {n} not found.")));
    }
    Ok(n)
}

pub(crate) fn db<E: std::fmt::Display>(e: E) -> Reject {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

pub(crate) fn open_period(st: &Store, date: &str, what: &str) -> Result<(), Reject> {
    if st.period_closed(ERP, date).map_err(db)? {
        return Err(bad(format!(
            "{what} date {date} is in a closed fiscal period."
        )));
    }
    Ok(())
}

fn lines<'a>(
    e: &'a Map<String, Value>,
    field: &str,
    required: bool,
) -> Result<Vec<&'a Value>, Reject> {
    match e.get(field) {
        Some(Value::Array(a)) if !a.is_empty() => Ok(a.iter().collect()),
        _ if required => Err(bad(format!(
            "At least one detail line ({field}) is required."
        ))),
        _ => Ok(vec![]),
    }
}

pub(crate) fn check_part_lines(st: &Store, ls: &[&Value], qty: &str) -> Result<Decimal, Reject> {
    let mut total = Decimal::ZERO;
    for l in ls {
        let part = text(l, "PartNum").ok_or_else(|| bad("Part Number is required."))?;
        if !st.has_master(ERP, "item", part).map_err(db)? {
            return Err(bad(format!("Part {part} not found.")));
        }
        let q = decimal(l, qty)
            .map_err(bad)?
            .ok_or_else(|| bad(format!("{qty} is required.")))?;
        let p = decimal(l, "DocUnitPrice")
            .map_err(bad)?
            .ok_or_else(|| bad("DocUnitPrice is required."))?;
        if q <= Decimal::ZERO {
            return Err(bad("Quantity must be greater than zero."));
        }
        total += q * p;
    }
    Ok(total)
}

fn create(
    st: &Store,
    company: &str,
    set: &str,
    e: &mut Map<String, Value>,
    lag: u64,
) -> Result<(), Reject> {
    let v = Value::Object(e.clone());
    if text(&v, "Company") != Some(company) {
        return Err(bad(format!("Company is required and must be {company}.")));
    }
    let doc_id = match set {
        "Customers" => {
            let id = text(&v, "CustID").ok_or_else(|| bad("Customer ID is required."))?;
            if id.len() > 10 {
                return Err(bad("Customer ID exceeds 10 characters."));
            }
            text(&v, "Name").ok_or_else(|| bad("Name is required."))?;
            let dup = st
                .find(
                    ERP,
                    set,
                    &[("CustID".into(), FilterValue::Text(id.into()))],
                    1,
                )
                .map_err(db)?;
            if !dup.is_empty() {
                return Err(bad(format!("Customer ID {id} already exists.")));
            }
            let n = st.next("epicor.CustNum", 1).map_err(db)?;
            e.insert("CustNum".into(), json!(n));
            n.to_string()
        }
        "SalesOrders" => {
            customer_exists(st, v.get("CustNum").and_then(Value::as_i64))?;
            let date = text(&v, "OrderDate").ok_or_else(|| bad("Order Date is required."))?;
            open_period(st, date, "Order")?;
            let n = st.next("epicor.OrderNum", 5001).map_err(db)?;
            e.insert("OrderNum".into(), json!(n));
            n.to_string()
        }
        "ARInvoices" => {
            text(&v, "GroupID").ok_or_else(|| bad("Group ID is required."))?;
            customer_exists(st, v.get("CustNum").and_then(Value::as_i64))?;
            let date = text(&v, "InvoiceDate").ok_or_else(|| bad("Invoice Date is required."))?;
            open_period(st, date, "Invoice")?;
            check_part_lines(st, &lines(e, "InvcDtls", true)?, "SellingShipQty")?;
            if let Some(r) = v.get("InvoiceRef").and_then(Value::as_i64) {
                if st.get_doc(ERP, set, &r.to_string()).map_err(db)?.is_none() {
                    return Err(bad(format!("Invoice {r} not found.")));
                }
            }
            let n = st.next("epicor.InvoiceNum", 1001).map_err(db)?;
            e.insert("InvoiceNum".into(), json!(n));
            n.to_string()
        }
        "CashRecs" => {
            let group = text(&v, "GroupID")
                .ok_or_else(|| bad("Group ID is required."))?
                .to_owned();
            customer_exists(st, v.get("CustNum").and_then(Value::as_i64))?;
            let date = text(&v, "TranDate").ok_or_else(|| bad("Transaction Date is required."))?;
            open_period(st, date, "Transaction")?;
            let amt = decimal(&v, "DocTranAmt")
                .map_err(bad)?
                .ok_or_else(|| bad("DocTranAmt is required."))?;
            if amt <= Decimal::ZERO {
                return Err(bad("Receipt amount must be greater than zero."));
            }
            for d in lines(e, "CashDtls", false)? {
                let inv = d
                    .get("InvoiceNum")
                    .and_then(Value::as_i64)
                    .ok_or_else(|| bad("InvoiceNum is required."))?;
                if st
                    .get_doc(ERP, "ARInvoices", &inv.to_string())
                    .map_err(db)?
                    .is_none()
                {
                    return Err(bad(format!("Invoice {inv} not found.")));
                }
                decimal(d, "DocTranAmt").map_err(bad)?;
            }
            let n = st.next("epicor.HeadNum", 1).map_err(db)?;
            e.insert("HeadNum".into(), json!(n));
            format!("{group}/{n}")
        }
        "GLJournalEntries" => {
            let book = text(&v, "BookID")
                .ok_or_else(|| bad("Book ID is required."))?
                .to_owned();
            let code = text(&v, "JournalCode")
                .ok_or_else(|| bad("Journal Code is required."))?
                .to_owned();
            text(&v, "GroupID").ok_or_else(|| bad("Group ID is required."))?;
            let date = text(&v, "JEDate").ok_or_else(|| bad("Journal Date is required."))?;
            open_period(st, date, "Journal")?;
            let year = v
                .get("FiscalYear")
                .and_then(Value::as_i64)
                .ok_or_else(|| bad("Fiscal Year is required."))?;
            let (mut dr, mut cr) = (Decimal::ZERO, Decimal::ZERO);
            let ls = lines(e, "GLJrnDtlMnls", true)?;
            for l in &ls {
                let acct = text(l, "GLAccount").ok_or_else(|| bad("GL Account is required."))?;
                if !st.has_master(ERP, "account", acct).map_err(db)? {
                    return Err(bad(format!("GL Account {acct} is not valid.")));
                }
                dr += decimal(l, "TotDebit").map_err(bad)?.unwrap_or_default();
                cr += decimal(l, "TotCredit").map_err(bad)?.unwrap_or_default();
            }
            if dr != cr {
                return Err(bad(format!(
                    "Journal is out of balance. Debits {dr} Credits {cr}."
                )));
            }
            let n = st.next("epicor.JournalNum", 1).map_err(db)?;
            e.insert("JournalNum".into(), json!(n));
            format!("{book}/{year}/{code}/{n}")
        }
        _ => {
            return Err((
                StatusCode::NOT_FOUND,
                format!("Resource not found for the segment '{set}'."),
            ))
        }
    };
    st.insert_doc(ERP, set, &doc_id, &Value::Object(e.clone()), lag)
        .map_err(db)
}

/// `PATCH Customers('{Company}',{CustNum})`.
pub async fn patch(
    State(s): State<AppState>,
    Path((_instance, company, service, set)): Path<(String, String, String, String)>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = authenticate(&s, &h).and_then(|_| route_check(&s, &company, &service, &set)) {
        return r;
    }
    if let Gate::Respond(r) = gate(&s, false, ErpKind::Epicor).await {
        return r;
    }
    let key = set
        .strip_prefix("Customers(")
        .and_then(|k| k.strip_suffix(')'))
        .and_then(|k| k.rsplit(',').next())
        .and_then(|n| n.trim().parse::<i64>().ok());
    let Some(n) = key else {
        return error(
            ErpKind::Epicor,
            StatusCode::BAD_REQUEST,
            "key",
            "Only Customers('{Company}',{CustNum}) can be updated here.",
        );
    };
    let Ok(Value::Object(patch)) = serde_json::from_slice::<Value>(&body) else {
        return error(
            ErpKind::Epicor,
            StatusCode::BAD_REQUEST,
            "body",
            "The request body is not a valid JSON object.",
        );
    };
    let found = s
        .contract
        .check_entity_write(&service, "Customers", &Value::Object(patch.clone()));
    if !found.is_empty() {
        return contract_error(&found);
    }
    let Ok(st) = s.store.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let r = (|| -> Result<bool, Reject> {
        let Some(Value::Object(mut doc)) =
            st.get_doc(ERP, "Customers", &n.to_string()).map_err(db)?
        else {
            return Ok(false);
        };
        for (k, v) in patch {
            if k != "CustNum" && k != "Company" {
                doc.insert(k, v);
            }
        }
        st.update_doc(ERP, "Customers", &n.to_string(), &Value::Object(doc))
            .map_err(db)
    })();
    match r {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => error(
            ErpKind::Epicor,
            StatusCode::NOT_FOUND,
            "404",
            &format!("Customer {n} not found."),
        ),
        Err((status, m)) => error(ErpKind::Epicor, status, "validation", &m),
    }
}

/// Every Epicor document in ERP-neutral form (for `GET /_admin/documents`).
pub fn documents(st: &Store) -> Result<Vec<ExportedDocument>, crate::StoreError> {
    let docs = st.documents(ERP)?;
    let cust_ids: HashMap<i64, String> = docs
        .iter()
        .filter(|(entity, _, _)| entity == "Customers")
        .filter_map(|(_, _, b)| Some((b.get("CustNum")?.as_i64()?, text(b, "CustID")?.to_owned())))
        .collect();
    Ok(docs
        .iter()
        .map(|(entity, id, b)| export_document(entity, id, b, &cust_ids))
        .collect())
}

/// The reference fields the connector writes by default (see its `EpicorRefFields`).
const REFERENCE_FIELDS: [&str; 4] = ["LBStripeRef_c", "PONum", "CheckRef", "Description"];

fn export_document(
    entity: &str,
    id: &str,
    b: &Value,
    cust_ids: &HashMap<i64, String>,
) -> ExportedDocument {
    let dec = |v: &Value, f: &str| decimal(v, f).ok().flatten();
    let kind = match entity {
        "Customers" => "customer",
        "SalesOrders" => "sales_order",
        "ARInvoices" if b.get("CreditMemo").and_then(Value::as_bool) == Some(true) => "credit_memo",
        "ARInvoices" => "invoice",
        "CashRecs" => "cash_receipt",
        "GLJournalEntries" => "journal_entry",
        other => other,
    };
    let customer = match entity {
        "Customers" => text(b, "CustID").map(str::to_owned),
        _ => b
            .get("CustNum")
            .and_then(Value::as_i64)
            .map(|n| cust_ids.get(&n).cloned().unwrap_or_else(|| n.to_string())),
    };
    let part_line = |l: &Value, qty: &str| {
        let q = dec(l, qty);
        let p = dec(l, "DocUnitPrice");
        ExportedLine {
            description: text(l, "LineDesc").map(str::to_owned),
            item: text(l, "PartNum").map(str::to_owned),
            account: None,
            quantity: q.map(|d| d.to_string()),
            unit_price: p.map(|d| d.to_string()),
            amount: q.zip(p).map(|(q, p)| (q * p).to_string()),
        }
    };
    let array = |f: &str| -> Vec<Value> {
        b.get(f)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let lines: Vec<ExportedLine> = match entity {
        "SalesOrders" => array("OrderDtls")
            .iter()
            .map(|l| part_line(l, "SellingQuantity"))
            .collect(),
        "ARInvoices" => array("InvcDtls")
            .iter()
            .map(|l| part_line(l, "SellingShipQty"))
            .collect(),
        "CashRecs" => array("CashDtls")
            .iter()
            .map(|l| ExportedLine {
                description: l
                    .get("InvoiceNum")
                    .and_then(Value::as_i64)
                    .map(|n| format!("invoice {n}")),
                item: None,
                account: None,
                quantity: None,
                unit_price: None,
                amount: dec(l, "DocTranAmt").map(|d| d.to_string()),
            })
            .collect(),
        "GLJournalEntries" => array("GLJrnDtlMnls")
            .iter()
            .map(|l| {
                let amt = dec(l, "TotDebit").unwrap_or_default()
                    - dec(l, "TotCredit").unwrap_or_default();
                ExportedLine {
                    description: text(l, "Description").map(str::to_owned),
                    item: None,
                    account: text(l, "GLAccount").map(str::to_owned),
                    quantity: None,
                    unit_price: None,
                    amount: Some(amt.to_string()),
                }
            })
            .collect(),
        _ => vec![],
    };
    let amount = match entity {
        "CashRecs" => dec(b, "DocTranAmt"),
        "GLJournalEntries" => Some(
            array("GLJrnDtlMnls")
                .iter()
                .filter_map(|l| dec(l, "TotDebit"))
                .sum::<Decimal>(),
        ),
        "SalesOrders" | "ARInvoices" => Some(
            lines
                .iter()
                .filter_map(|l| l.amount.as_deref().and_then(|a| a.parse::<Decimal>().ok()))
                .sum::<Decimal>(),
        ),
        _ => None,
    };
    ExportedDocument {
        erp: ErpKind::Epicor,
        kind: kind.to_owned(),
        reference: REFERENCE_FIELDS
            .iter()
            .find_map(|f| text(b, f))
            .map(str::to_owned),
        erp_id: id.to_owned(),
        customer,
        currency: text(b, "CurrencyCode").map(str::to_owned),
        amount: amount.map(|d| d.to_string()),
        lines,
        state: if b.get("Posted").and_then(Value::as_bool) == Some(true) {
            DocState::Posted
        } else {
            DocState::Entered
        },
    }
}

/// `FiscalPerSvc/FiscalPers?$filter=FiscalYear eq {year}` (an assumed route, see
/// `ledgerbridge_erp::epicor::check`): the sandbox's calendar has one period per calendar month,
/// `ClosedPeriod` set for the periods closed by seed or installation knob.
fn fiscal_periods(s: &AppState, q: &HashMap<String, String>) -> Response {
    let filters = match q.get("$filter").map(|f| parse_filter(f)).transpose() {
        Ok(f) => f.unwrap_or_default(),
        Err(m) => return error(ErpKind::Epicor, StatusCode::BAD_REQUEST, "filter", &m),
    };
    let year = match filters.as_slice() {
        [(field, FilterValue::Int(y))] if field == "FiscalYear" => *y,
        _ => {
            return error(
                ErpKind::Epicor,
                StatusCode::BAD_REQUEST,
                "filter",
                "The sandbox answers FiscalPers only for $filter=FiscalYear eq <year>.",
            )
        }
    };
    let Ok(st) = s.store.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut rows = Vec::new();
    for m in 1..=12 {
        let start = format!("{year:04}-{m:02}-01");
        let end = format!(
            "{year:04}-{m:02}-{:02}",
            crate::installation::month_end(year, m)
        );
        let closed = match st.period_closed(ERP, &start) {
            Ok(c) => c,
            Err(e) => {
                return error(
                    ErpKind::Epicor,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "db",
                    &e.to_string(),
                )
            }
        };
        rows.push(json!({
            "Company": s.cfg.company, "FiscalYear": year, "FiscalPeriod": m,
            "StartDate": format!("{start}T00:00:00"), "EndDate": format!("{end}T00:00:00"),
            "ClosedPeriod": closed,
        }));
    }
    Json(json!({"@odata.context": "Erp.BO.FiscalPerSvc/$metadata#FiscalPers", "value": rows}))
        .into_response()
}

/// Master data read only by `ledgerbridge erp check` (assumed routes: the contract facts hold
/// no `FiscalPerSvc`, `PayMethodSvc` or `PartSvc`; see `ledgerbridge_erp::epicor::check`).
enum MasterSet {
    FiscalPeriods,
    /// Rows of one master-data kind, found by `{field} eq …`.
    Codes {
        kind: &'static str,
        field: &'static str,
        numeric: bool,
    },
}

fn master_set(service: &str, set: &str) -> Option<MasterSet> {
    Some(match (service, set) {
        ("Erp.BO.FiscalPerSvc", "FiscalPers") => MasterSet::FiscalPeriods,
        ("Erp.BO.PayMethodSvc", "PayMethods") => MasterSet::Codes {
            kind: "paymethod",
            field: "PMUID",
            numeric: true,
        },
        ("Erp.BO.PartSvc", "Parts") => MasterSet::Codes {
            kind: "item",
            field: "PartNum",
            numeric: false,
        },
        _ => return None,
    })
}

/// `{Svc}/{Set}?$filter={field} eq {value}`: the one row of that code, or none.
fn master_codes(
    s: &AppState,
    service: &str,
    set: &str,
    q: &HashMap<String, String>,
    kind: &str,
    field: &str,
    numeric: bool,
) -> Response {
    let filters = match q.get("$filter").map(|f| parse_filter(f)).transpose() {
        Ok(f) => f.unwrap_or_default(),
        Err(m) => return error(ErpKind::Epicor, StatusCode::BAD_REQUEST, "filter", &m),
    };
    let code = match filters.as_slice() {
        [(f, FilterValue::Int(i))] if f == field && numeric => i.to_string(),
        [(f, FilterValue::Text(t))] if f == field && !numeric => t.clone(),
        _ => {
            return error(
                ErpKind::Epicor,
                StatusCode::BAD_REQUEST,
                "filter",
                &format!("The sandbox answers {set} only for $filter={field} eq <value>."),
            )
        }
    };
    let found = match s.store.lock() {
        Ok(st) => st.has_master(ERP, kind, &code),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let rows = match found {
        Ok(true) if numeric => {
            vec![json!({"Company": s.cfg.company, field: code.parse::<i64>().unwrap_or(0)})]
        }
        Ok(true) => vec![json!({"Company": s.cfg.company, field: code})],
        Ok(false) => vec![],
        Err(e) => {
            return error(
                ErpKind::Epicor,
                StatusCode::INTERNAL_SERVER_ERROR,
                "db",
                &e.to_string(),
            )
        }
    };
    Json(json!({"@odata.context": format!("{service}/$metadata#{set}"), "value": rows}))
        .into_response()
}
