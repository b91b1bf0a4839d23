//! Sage Pro facade dialect (`/api/v1/{resource}`), strict to the published contract
//! (`contracts/sagepro/facade.openapi.json`, see [`crate::sagepro_contract`]): every request is
//! checked against the document before anything else than authentication (unknown fields,
//! over-length values and missing required fields answer the documented 422; undocumented query
//! parameters the documented 400), and every answer is checked against the document before it
//! leaves (an answer the document does not describe becomes a 500 naming the violation, so no test
//! passes on an undocumented answer). References are unique per resource (409
//! `duplicate_reference`), as the contract requires of a facade.

use super::{decimal, error, text, Reject};
use crate::sagepro_contract::{FacadeContract, Violation, ViolationKind};
use crate::store::{FilterValue, Store};
use crate::{dropped_response, gate, header, AppState, ErpKind, Gate};
use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
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

/// Query parameters as sent, in order (duplicates kept, so the contract can refuse them).
fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    uri.query()
        .map(|q| {
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (crate::export::decode(k), crate::export::decode(v))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn contract() -> Result<&'static FacadeContract, Response> {
    FacadeContract::embedded().map_err(|e| {
        error(
            ErpKind::SagePro,
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &e,
        )
    })
}

fn joined(vs: &[Violation]) -> String {
    vs.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The documented answer to a request that breaks the contract.
fn rejection(resource: &str, vs: &[Violation]) -> Response {
    let first = vs.first().map(|v| (v.kind, v.at.starts_with('?')));
    let (status, code) = match first {
        Some((_, true)) => (StatusCode::BAD_REQUEST, "invalid_filter"),
        Some((ViolationKind::Missing, _)) => (StatusCode::UNPROCESSABLE_ENTITY, "missing_field"),
        Some((ViolationKind::Unknown, _)) => (StatusCode::UNPROCESSABLE_ENTITY, "unknown_field"),
        Some((ViolationKind::TooLong, _)) => (StatusCode::UNPROCESSABLE_ENTITY, "too_long"),
        _ => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
    };
    error(
        ErpKind::SagePro,
        status,
        code,
        &format!("{resource}: {}", joined(vs)),
    )
}

/// Check the request against the contract: `Err` is the answer to give instead.
fn admit(method: &Method, uri: &Uri, resource: &str, body: &Value) -> Result<(), Response> {
    let c = contract()?;
    c.check_request(method.as_str(), uri.path(), &query_pairs(uri), body)
        .map_err(|vs| rejection(resource, &vs))
}

/// Check an answer against the contract before it leaves. An answer whose body cannot be read
/// is a connection dropped on purpose (a fault knob) and stays one.
async fn conform(method: &Method, uri: &Uri, resp: Response) -> Response {
    let (parts, body) = resp.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        return dropped_response();
    };
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    let checked = contract().and_then(|c| {
        c.check_response(method.as_str(), uri.path(), parts.status.as_u16(), &value)
            .map_err(|vs| {
                error(
                    ErpKind::SagePro,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    &format!(
                        "sandbox answer {} to {method} {} breaks the published contract: {}",
                        parts.status.as_u16(),
                        uri.path(),
                        joined(&vs)
                    ),
                )
            })
    });
    match checked {
        Ok(()) => Response::from_parts(parts, Body::from(bytes)),
        Err(r) => r,
    }
}

pub async fn search(
    State(s): State<AppState>,
    Path(resource): Path<String>,
    method: Method,
    uri: Uri,
    h: HeaderMap,
) -> Response {
    let r = search_checked(&s, &resource, &method, &uri, &h).await;
    conform(&method, &uri, r).await
}

async fn search_checked(
    s: &AppState,
    resource: &str,
    method: &Method,
    uri: &Uri,
    h: &HeaderMap,
) -> Response {
    if let Err(r) = authenticate(s, h)
        .and_then(|_| check_resource(resource))
        .and_then(|_| admit(method, uri, resource, &Value::Null))
    {
        return r;
    }
    if let Gate::Respond(r) = gate(s, false, ErpKind::SagePro).await {
        return r;
    }
    let q: HashMap<String, String> = query_pairs(uri).into_iter().collect();
    if resource == "customers" {
        if let Some(since) = q.get("updatedSince") {
            return changed_customers(s, since, &q);
        }
    }
    let mut filters = Vec::new();
    for (k, v) in q {
        // Customers are searched by e-mail case-insensitively (and trimmed, as the contract
        // requires of a facade).
        if resource == "customers" && k == "email" {
            filters.push((k, FilterValue::TextNoCase(v.trim().to_owned())));
        } else {
            filters.push((k, FilterValue::Text(v)));
        }
    }
    let found = match s.store.lock() {
        Ok(st) => st.find(ERP, resource, &filters, 100),
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
    method: Method,
    uri: Uri,
    h: HeaderMap,
) -> Response {
    if let Err(r) = authenticate(&s, &h)
        .and_then(|_| check_resource(&resource))
        .and_then(|_| admit(&method, &uri, &resource, &Value::Null))
    {
        return conform(&method, &uri, r).await;
    }
    let found = match s.store.lock() {
        Ok(st) => st.get_doc(ERP, &resource, &id),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let r = match found {
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
    };
    conform(&method, &uri, r).await
}

pub async fn create(
    State(s): State<AppState>,
    Path(resource): Path<String>,
    method: Method,
    uri: Uri,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    let r = create_checked(&s, &resource, &method, &uri, &h, &body).await;
    conform(&method, &uri, r).await
}

async fn create_checked(
    s: &AppState,
    resource: &str,
    method: &Method,
    uri: &Uri,
    h: &HeaderMap,
    body: &[u8],
) -> Response {
    if let Err(r) = authenticate(s, h).and_then(|_| check_resource(resource)) {
        return r;
    }
    let Ok(Value::Object(mut doc)) = serde_json::from_slice::<Value>(body) else {
        return error(
            ErpKind::SagePro,
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "Request body must be a JSON object",
        );
    };
    if let Err(r) = admit(method, uri, resource, &Value::Object(doc.clone())) {
        return r;
    }
    if let Some(r) = crate::refused_reference(s, ErpKind::SagePro, body) {
        return r;
    }
    let drop = match gate(s, true, ErpKind::SagePro).await {
        Gate::Respond(r) => return r,
        Gate::Proceed { drop_after_commit } => drop_after_commit,
    };
    let lag = s.faults.lock().map(|f| f.search_lag_ms).unwrap_or(0);
    let r = match s.store.lock() {
        Ok(st) => insert(&st, resource, &mut doc, lag),
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

/// A stored record of `resource` with this reference, committed (search lag does not hide it:
/// uniqueness is the database's rule, not the search index's).
fn reference_taken(st: &Store, resource: &str, v: &Value) -> Result<Option<String>, Rej> {
    let Some(reference) = text(v, "reference") else {
        return Ok(None);
    };
    let found = st
        .find_committed(
            ERP,
            resource,
            &[("reference".into(), FilterValue::Text(reference.to_owned()))],
        )
        .map_err(db)?;
    Ok(found
        .first()
        .map(|d| text(d, "id").unwrap_or_default().to_owned()))
}

fn insert(st: &Store, resource: &str, doc: &mut Map<String, Value>, lag: u64) -> Result<(), Rej> {
    let v = Value::Object(doc.clone());
    if let Some(existing) = reference_taken(st, resource, &v)? {
        return Err((
            StatusCode::CONFLICT,
            "duplicate_reference".into(),
            format!(
                "{resource} {existing} already has reference {}",
                text(&v, "reference").unwrap_or_default()
            ),
        ));
    }
    let id = match resource {
        "customers" => {
            let id = required(&v, "customerId")?.to_owned();
            required(&v, "name")?;
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
    method: Method,
    uri: Uri,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    let r = update_checked(&s, &resource, &id, &method, &uri, &h, &body).await;
    if resource == "customers" {
        conform(&method, &uri, r).await
    } else {
        // Not an operation of the contract: the answer is still the contract's error shape.
        r
    }
}

async fn update_checked(
    s: &AppState,
    resource: &str,
    id: &str,
    method: &Method,
    uri: &Uri,
    h: &HeaderMap,
    body: &[u8],
) -> Response {
    if let Err(r) = authenticate(s, h).and_then(|_| check_resource(resource)) {
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
    let Ok(Value::Object(patch)) = serde_json::from_slice::<Value>(body) else {
        return error(
            ErpKind::SagePro,
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "Request body must be a JSON object",
        );
    };
    if let Err(r) = admit(method, uri, resource, &Value::Object(patch.clone())) {
        return r;
    }
    if let Some(other) = patch.get("customerId").and_then(Value::as_str) {
        if other != id {
            return error(
                ErpKind::SagePro,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                &format!("customerId {other} does not match customer {id}; customer numbers are never changed"),
            );
        }
    }
    if let Gate::Respond(r) = gate(s, false, ErpKind::SagePro).await {
        return r;
    }
    let Ok(st) = s.store.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let r: Result<bool, Reject> = (|| {
        let Some(Value::Object(mut doc)) =
            st.get_doc(ERP, "customers", id).map_err(super::bad_db)?
        else {
            return Ok(false);
        };
        for (k, v) in patch {
            if k != "id" && k != "customerId" {
                doc.insert(k, v);
            }
        }
        st.update_doc(ERP, "customers", id, &Value::Object(doc))
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
