//! Sage Pro REST dialect (`/api/v1/{resource}`), as described by the Sage Pro integration page.

use super::{decimal, error, safe_field, text, Reject};
use crate::store::{FilterValue, Store};
use crate::{dropped_response, gate, header, AppState, ErpKind, Gate};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

const ERP: &str = ErpKind::SagePro.as_str();
const RESOURCES: [&str; 6] = [
    "customers",
    "salesorders",
    "invoices",
    "cashreceipts",
    "creditmemos",
    "journalentries",
];

fn unprocessable(code: &str, msg: impl Into<String>) -> (StatusCode, String, String) {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        code.to_owned(),
        msg.into(),
    )
}

type Rej = (StatusCode, String, String);

fn db<E: std::fmt::Display>(e: E) -> Rej {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal".into(),
        e.to_string(),
    )
}

fn authenticate(s: &AppState, h: &HeaderMap) -> Result<(), Response> {
    let key = s
        .keys
        .lock()
        .map(|k| k.sagepro_api_key.clone())
        .unwrap_or_default();
    match header(h, "x-api-key") {
        Some(k) if k == key => Ok(()),
        _ => Err(error(
            ErpKind::SagePro,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Invalid or missing API key",
        )),
    }
}

fn check_resource(r: &str) -> Result<(), Response> {
    if RESOURCES.contains(&r) {
        Ok(())
    } else {
        Err(error(
            ErpKind::SagePro,
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("Unknown resource {r}"),
        ))
    }
}

pub async fn search(
    State(s): State<AppState>,
    Path(resource): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> Response {
    if let Err(r) = authenticate(&s, &h).and_then(|_| check_resource(&resource)) {
        return r;
    }
    if let Gate::Respond(r) = gate(&s, false, ErpKind::SagePro).await {
        return r;
    }
    if resource == "customers" {
        if let Some(since) = q.get("updatedSince") {
            return changed_customers(&s, since, &q);
        }
    }
    let mut filters = Vec::new();
    for (k, v) in q {
        if !safe_field(&k) {
            return error(
                ErpKind::SagePro,
                StatusCode::BAD_REQUEST,
                "invalid_filter",
                &format!("Unknown filter {k}"),
            );
        }
        // Customers are searched by e-mail case-insensitively.
        if resource == "customers" && k == "email" {
            filters.push((k, FilterValue::TextNoCase(v)));
        } else {
            filters.push((k, FilterValue::Text(v)));
        }
    }
    let found = match s.store.lock() {
        Ok(st) => st.find(ERP, &resource, &filters, 100),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    match found {
        Ok(v) => Json(json!({"data": v})).into_response(),
        Err(e) => error(
            ErpKind::SagePro,
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &e.to_string(),
        ),
    }
}

/// `GET /api/v1/customers?updatedSince={RFC 3339}&offset&limit`: customers changed since, oldest
/// change first, each with `updatedAt` (UTC, from the sandbox's audit log).
fn changed_customers(s: &AppState, since: &str, q: &HashMap<String, String>) -> Response {
    let Ok(st) = s.store.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let Ok(Some(since_ms)) = st.parse_time_ms(since) else {
        return error(
            ErpKind::SagePro,
            StatusCode::BAD_REQUEST,
            "invalid_filter",
            "updatedSince must be an RFC 3339 time",
        );
    };
    let offset = q.get("offset").and_then(|t| t.parse().ok()).unwrap_or(0);
    let limit = q.get("limit").and_then(|t| t.parse().ok()).unwrap_or(100);
    match st.changed_since(ERP, "customers", since_ms, "%Y-%m-%dT%H:%M:%SZ") {
        Ok(rows) => {
            let data: Vec<Value> = rows
                .into_iter()
                .skip(offset)
                .take(limit)
                .map(|(mut doc, _, at)| {
                    if let Some(o) = doc.as_object_mut() {
                        o.insert("updatedAt".into(), json!(at));
                    }
                    doc
                })
                .collect();
            Json(json!({"data": data})).into_response()
        }
        Err(e) => error(
            ErpKind::SagePro,
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &e.to_string(),
        ),
    }
}

pub async fn get_one(
    State(s): State<AppState>,
    Path((resource, id)): Path<(String, String)>,
    h: HeaderMap,
) -> Response {
    if let Err(r) = authenticate(&s, &h).and_then(|_| check_resource(&resource)) {
        return r;
    }
    let found = match s.store.lock() {
        Ok(st) => st.get_doc(ERP, &resource, &id),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    match found {
        Ok(Some(v)) => Json(v).into_response(),
        Ok(None) => error(
            ErpKind::SagePro,
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("Record {id} not found"),
        ),
        Err(e) => error(
            ErpKind::SagePro,
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &e.to_string(),
        ),
    }
}

pub async fn create(
    State(s): State<AppState>,
    Path(resource): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = authenticate(&s, &h).and_then(|_| check_resource(&resource)) {
        return r;
    }
    let drop = match gate(&s, true, ErpKind::SagePro).await {
        Gate::Respond(r) => return r,
        Gate::Proceed { drop_after_commit } => drop_after_commit,
    };
    let Ok(Value::Object(mut doc)) = serde_json::from_slice::<Value>(&body) else {
        return error(
            ErpKind::SagePro,
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "Request body must be a JSON object",
        );
    };
    let lag = s.faults.lock().map(|f| f.search_lag_ms).unwrap_or(0);
    let r = match s.store.lock() {
        Ok(st) => insert(&st, &resource, &mut doc, lag),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    match r {
        Ok(()) if drop => dropped_response(),
        Ok(()) => (StatusCode::CREATED, Json(Value::Object(doc))).into_response(),
        Err((st, code, m)) => error(ErpKind::SagePro, st, &code, &m),
    }
}

fn required<'a>(v: &'a Value, f: &str) -> Result<&'a str, Rej> {
    text(v, f).ok_or_else(|| unprocessable("missing_field", format!("{f} is required")))
}

fn dec(v: &Value, f: &str) -> Result<Option<Decimal>, Rej> {
    decimal(v, f).map_err(|m| unprocessable("invalid_amount", m))
}

fn customer_must_exist(st: &Store, v: &Value) -> Result<(), Rej> {
    let c = required(v, "customerId")?;
    if st.get_doc(ERP, "customers", c).map_err(db)?.is_none() {
        return Err(unprocessable(
            "customer_not_found",
            format!("Customer {c} does not exist"),
        ));
    }
    Ok(())
}

fn open_period(st: &Store, v: &Value, f: &str) -> Result<(), Rej> {
    let d = required(v, f)?;
    if st.period_closed(ERP, d).map_err(db)? {
        return Err(unprocessable(
            "period_closed",
            format!("Period {} is closed", d.get(..7).unwrap_or(d)),
        ));
    }
    Ok(())
}

fn item_lines(st: &Store, v: &Value) -> Result<(), Rej> {
    let Some(ls) = v
        .get("lines")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
    else {
        return Err(unprocessable("missing_field", "lines is required"));
    };
    for l in ls {
        let item = required(l, "itemId")?;
        if !st.has_master(ERP, "item", item).map_err(db)? {
            return Err(unprocessable(
                "item_not_found",
                format!("Item {item} does not exist"),
            ));
        }
        let q = dec(l, "quantity")?
            .ok_or_else(|| unprocessable("missing_field", "quantity is required"))?;
        dec(l, "unitPrice")?
            .ok_or_else(|| unprocessable("missing_field", "unitPrice is required"))?;
        if q <= Decimal::ZERO {
            return Err(unprocessable(
                "invalid_quantity",
                "quantity must be positive",
            ));
        }
    }
    Ok(())
}

fn insert(st: &Store, resource: &str, doc: &mut Map<String, Value>, lag: u64) -> Result<(), Rej> {
    let v = Value::Object(doc.clone());
    let id = match resource {
        "customers" => {
            let id = required(&v, "customerId")?.to_owned();
            required(&v, "name")?;
            if id.len() > 10 {
                return Err(unprocessable(
                    "invalid_field",
                    "customerId must be at most 10 characters",
                ));
            }
            if st.get_doc(ERP, resource, &id).map_err(db)?.is_some() {
                return Err((
                    StatusCode::CONFLICT,
                    "duplicate".into(),
                    format!("Customer {id} already exists"),
                ));
            }
            id
        }
        "salesorders" | "invoices" | "creditmemos" => {
            customer_must_exist(st, &v)?;
            let date = match resource {
                "salesorders" => "orderDate",
                "invoices" => "invoiceDate",
                _ => "memoDate",
            };
            open_period(st, &v, date)?;
            item_lines(st, &v)?;
            if let Some(inv) = text(&v, "invoiceNumber") {
                if st.get_doc(ERP, "invoices", inv).map_err(db)?.is_none() {
                    return Err(unprocessable(
                        "invoice_not_found",
                        format!("Invoice {inv} does not exist"),
                    ));
                }
            }
            let prefix = match resource {
                "salesorders" => "SO",
                "invoices" => "IN",
                _ => "CM",
            };
            format!(
                "{prefix}{:06}",
                st.next(&format!("sagepro.{resource}"), 1).map_err(db)?
            )
        }
        "cashreceipts" => {
            customer_must_exist(st, &v)?;
            open_period(st, &v, "transactionDate")?;
            let amt = dec(&v, "amount")?
                .ok_or_else(|| unprocessable("missing_field", "amount is required"))?;
            if amt <= Decimal::ZERO {
                return Err(unprocessable("invalid_amount", "amount must be positive"));
            }
            if let Some(inv) = text(&v, "invoiceNumber") {
                if st.get_doc(ERP, "invoices", inv).map_err(db)?.is_none() {
                    return Err(unprocessable(
                        "invoice_not_found",
                        format!("Invoice {inv} does not exist"),
                    ));
                }
            }
            format!("CR{:06}", st.next("sagepro.cashreceipts", 1).map_err(db)?)
        }
        "journalentries" => {
            open_period(st, &v, "postingDate")?;
            let ls = v
                .get("lines")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if ls.len() < 2 {
                return Err(unprocessable(
                    "missing_field",
                    "a journal entry needs at least two lines",
                ));
            }
            let (mut dr, mut cr) = (Decimal::ZERO, Decimal::ZERO);
            for l in &ls {
                let a = required(l, "glAccount")?;
                if !st.has_master(ERP, "account", a).map_err(db)? {
                    return Err(unprocessable(
                        "account_not_found",
                        format!("GL account {a} does not exist"),
                    ));
                }
                dr += dec(l, "debit")?.unwrap_or_default();
                cr += dec(l, "credit")?.unwrap_or_default();
            }
            if dr != cr {
                return Err(unprocessable(
                    "unbalanced",
                    format!("Journal entry is out of balance: debits {dr}, credits {cr}"),
                ));
            }
            format!("JE{:06}", st.next("sagepro.journalentries", 1).map_err(db)?)
        }
        _ => {
            return Err((
                StatusCode::NOT_FOUND,
                "not_found".into(),
                "Unknown resource".into(),
            ))
        }
    };
    doc.insert("id".into(), json!(id));
    st.insert_doc(ERP, resource, &id, &Value::Object(doc.clone()), lag)
        .map_err(db)
}

pub async fn update(
    State(s): State<AppState>,
    Path((resource, id)): Path<(String, String)>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = authenticate(&s, &h).and_then(|_| check_resource(&resource)) {
        return r;
    }
    if resource != "customers" {
        return error(
            ErpKind::SagePro,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "Only customers can be updated",
        );
    }
    if let Gate::Respond(r) = gate(&s, false, ErpKind::SagePro).await {
        return r;
    }
    let Ok(Value::Object(patch)) = serde_json::from_slice::<Value>(&body) else {
        return error(
            ErpKind::SagePro,
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "Request body must be a JSON object",
        );
    };
    let Ok(st) = s.store.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let r: Result<bool, Reject> = (|| {
        let Some(Value::Object(mut doc)) =
            st.get_doc(ERP, "customers", &id).map_err(super::bad_db)?
        else {
            return Ok(false);
        };
        for (k, v) in patch {
            if k != "id" && k != "customerId" {
                doc.insert(k, v);
            }
        }
        st.update_doc(ERP, "customers", &id, &Value::Object(doc))
            .map_err(super::bad_db)
    })();
    match r {
        Ok(true) => Json(json!({"id": id})).into_response(),
        Ok(false) => error(
            ErpKind::SagePro,
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("Customer {id} does not exist"),
        ),
        Err((st, m)) => error(ErpKind::SagePro, st, "internal", &m),
    }
}
