//! A local stand-in for the Stripe API, for runs without a Stripe key: it serves the objects of
//! the sample events and the recorded API responses (`tests/fixtures/stripe`), answers metadata
//! write-backs, and prints them. With `STRIPE_API_KEY` set, the local pipeline talks to Stripe
//! itself instead.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path as FsPath;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Data {
    /// `collection/id` → object
    objects: HashMap<String, Value>,
    /// `path?query` → recorded response
    recorded: HashMap<String, Value>,
    writes: Vec<String>,
}

#[derive(Clone, Default)]
pub struct SampleStripe {
    data: Arc<Mutex<Data>>,
}

fn collection(object_type: &str) -> String {
    match object_type {
        "charge" => "charges".into(),
        "refund" => "refunds".into(),
        "customer" => "customers".into(),
        "invoice" => "invoices".into(),
        "payout" => "payouts".into(),
        "dispute" => "disputes".into(),
        "payment_intent" => "payment_intents".into(),
        "subscription" => "subscriptions".into(),
        "balance_transaction" => "balance_transactions".into(),
        other => format!("{other}s"),
    }
}

impl SampleStripe {
    /// Load `<dir>/events/*.json` (latest snapshot of each object wins) and
    /// `<dir>/api/index.json` (recorded responses).
    pub fn load(dir: &FsPath) -> Self {
        let mut data = Data::default();
        let mut events: Vec<Value> = read_dir_json(&dir.join("events"));
        events.sort_by_key(|e| e.get("created").and_then(Value::as_i64).unwrap_or(0));
        for e in events {
            let obj = &e["data"]["object"];
            if let (Some(id), Some(ty)) = (obj["id"].as_str(), obj["object"].as_str()) {
                data.objects
                    .insert(format!("{}/{id}", collection(ty)), obj.clone());
            }
            if let Some(id) = e["id"].as_str() {
                data.objects.insert(format!("events/{id}"), e.clone());
            }
        }
        let index: Value = std::fs::read(dir.join("api/index.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        if let Some(map) = index["responses"].as_object() {
            for (req, file) in map {
                let Some(file) = file.as_str() else { continue };
                let Some(body) = std::fs::read(dir.join(file))
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                else {
                    continue;
                };
                let path = req.trim_start_matches("GET /v1/").to_owned();
                if let (Some(id), Some(ty)) = (body["id"].as_str(), body["object"].as_str()) {
                    data.objects
                        .insert(format!("{}/{id}", collection(ty)), body.clone());
                }
                data.recorded.insert(path, body);
            }
        }
        SampleStripe {
            data: Arc::new(Mutex::new(data)),
        }
    }

    pub fn writes(&self) -> Vec<String> {
        self.data
            .lock()
            .map(|d| d.writes.clone())
            .unwrap_or_default()
    }

    /// Serve on a free loopback port; returns the base URL.
    pub async fn serve(&self) -> std::io::Result<String> {
        let app = Router::new()
            .route("/v1/{collection}", get(list))
            .route("/v1/{collection}/{id}", get(retrieve).post(update))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "Sample Stripe API stopped");
            }
        });
        Ok(format!("http://{addr}"))
    }
}

fn read_dir_json(dir: &FsPath) -> Vec<Value> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|b| serde_json::from_slice(&b).ok())
        .collect()
}

fn missing(what: &str) -> (StatusCode, Json<Value>) {
    (
        StatusCode::NOT_FOUND,
        Json(
            json!({"error": {"type": "invalid_request_error", "code": "resource_missing", "message": format!("No such object: {what}")}}),
        ),
    )
}

async fn retrieve(
    State(s): State<SampleStripe>,
    Path((c, id)): Path<(String, String)>,
) -> (StatusCode, Json<Value>) {
    let found = s
        .data
        .lock()
        .ok()
        .and_then(|d| d.objects.get(&format!("{c}/{id}")).cloned());
    match found {
        Some(v) => (StatusCode::OK, Json(v)),
        None => missing(&id),
    }
}

/// Recorded list responses by exact query; otherwise a list of the known objects of that
/// collection filtered by the query's `key=value` pairs (e.g. refunds of a charge) and numeric
/// ranges (e.g. the payouts that arrived since a date).
/// `path` plus its query parameters without the paging ones, sorted.
fn filter_key(path: &str, query: &str) -> String {
    let mut params: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| !p.starts_with("limit=") && !p.starts_with("starting_after="))
        .collect();
    params.sort_unstable();
    format!("{path}?{}", params.join("&"))
}

async fn list(
    State(s): State<SampleStripe>,
    Path(c): Path<String>,
    RawQuery(q): RawQuery,
) -> (StatusCode, Json<Value>) {
    let q = q.unwrap_or_default();
    let Ok(d) = s.data.lock() else {
        return (
            StatusCode::OK,
            Json(json!({"object": "list", "data": [], "has_more": false})),
        );
    };
    // A recorded response answers the same filters, whatever the paging parameters; its data
    // is paged like any list (it is already in Stripe's order).
    let wanted = filter_key(&c, &q);
    if let Some(v) = d.recorded.iter().find(|(k, _)| {
        let (path, query) = k.split_once('?').unwrap_or((k.as_str(), ""));
        filter_key(path, query) == wanted
    }) {
        let recorded = v.1;
        return match recorded["data"].as_array() {
            Some(data) => page_of(&c, data.clone(), &q),
            None => (StatusCode::OK, Json(recorded.clone())),
        };
    }
    let filters: Vec<(String, String)> = q
        .split('&')
        .filter_map(|p| p.split_once('='))
        .filter(|(k, _)| !matches!(*k, "limit" | "starting_after"))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let prefix = format!("{c}/");
    let mut data: Vec<Value> = d
        .objects
        .iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .map(|(_, v)| v)
        .filter(|v| filters.iter().all(|(k, val)| matches_filter(v, k, val)))
        .cloned()
        .collect();
    // Stripe lists newest first; ties by id, so pages are stable.
    data.sort_by(|a, b| {
        let key = |v: &Value| {
            (
                v.get("created").and_then(Value::as_i64).unwrap_or(0),
                v.get("id").and_then(Value::as_str).unwrap_or("").to_owned(),
            )
        };
        key(b).cmp(&key(a))
    });
    page_of(&c, data, &q)
}

/// One page of `data` as Stripe pages a list: `limit` objects (default 10, at most 100) after
/// the object named by `starting_after`, and `has_more` when more follow. An unknown
/// `starting_after` is answered 400, as Stripe does.
fn page_of(collection: &str, data: Vec<Value>, query: &str) -> (StatusCode, Json<Value>) {
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    };
    let limit = param("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(10)
        .clamp(1, 100);
    let start = match param("starting_after") {
        None => 0,
        Some(after) => match data
            .iter()
            .position(|v| v.get("id").and_then(Value::as_str) == Some(after.as_str()))
        {
            Some(i) => i + 1,
            None => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"error": {"type": "invalid_request_error",
                        "param": "starting_after",
                        "message": format!("Invalid starting_after id: {after}")}})),
                )
            }
        },
    };
    let end = start.saturating_add(limit).min(data.len());
    let page = data.get(start..end).unwrap_or_default().to_vec();
    (
        StatusCode::OK,
        Json(json!({
            "object": "list",
            "url": format!("/v1/{collection}"),
            "has_more": end < data.len(),
            "data": page
        })),
    )
}

/// One list filter: `key=value` on a string field, or a range on a numeric one
/// (`arrival_date[gte]=…`, brackets raw or percent-encoded).
fn matches_filter(object: &Value, key: &str, value: &str) -> bool {
    let key = key.replace("%5B", "[").replace("%5D", "]");
    let range = key
        .strip_suffix(']')
        .and_then(|k| k.split_once('['))
        .filter(|(_, op)| matches!(*op, "gt" | "gte" | "lt" | "lte"));
    match range {
        Some((field, op)) => {
            let (Some(have), Ok(bound)) = (
                object.get(field).and_then(Value::as_i64),
                value.parse::<i64>(),
            ) else {
                return false;
            };
            match op {
                "gt" => have > bound,
                "gte" => have >= bound,
                "lt" => have < bound,
                _ => have <= bound,
            }
        }
        None => object.get(&key).and_then(Value::as_str) == Some(value),
    }
}

async fn update(
    State(s): State<SampleStripe>,
    Path((c, id)): Path<(String, String)>,
    body: Bytes,
) -> Json<Value> {
    let text = String::from_utf8_lossy(&body);
    for pair in text.split('&') {
        if let Some((k, v)) = pair.split_once('=') {
            let k = k.replace("%5B", "[").replace("%5D", "]");
            if let Some(key) = k
                .strip_prefix("metadata[")
                .and_then(|x| x.strip_suffix(']'))
            {
                let line = format!("{c}/{id} metadata.{key} = {v}");
                println!("stripe  write-back {line}");
                if let Ok(mut d) = s.data.lock() {
                    d.writes.push(line);
                }
            }
        }
    }
    Json(json!({"id": id}))
}

#[cfg(test)]
#[path = "sample_stripe_paging_tests.rs"]
mod paging_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_filters_by_value_and_range() {
        let payout = json!({"id": "po_1", "status": "paid", "arrival_date": 100});
        assert!(matches_filter(&payout, "status", "paid"));
        assert!(!matches_filter(&payout, "status", "failed"));
        assert!(matches_filter(&payout, "arrival_date%5Bgte%5D", "100"));
        assert!(matches_filter(&payout, "arrival_date[lt]", "101"));
        assert!(!matches_filter(&payout, "arrival_date[gt]", "100"));
        assert!(!matches_filter(&payout, "arrival_date[gte]", "soon"));
    }
}
