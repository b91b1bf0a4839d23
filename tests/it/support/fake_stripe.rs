//! A local fake of the parts of the Stripe API the pipeline reads and writes, served on a free
//! loopback port and reached through the project's real Stripe client.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct Data {
    /// `collection/id` → object
    pub objects: HashMap<String, Value>,
    /// charge id → refunds
    pub refunds_by_charge: HashMap<String, Vec<Value>>,
    /// Invoice payments (listed by `invoice` or by `payment[payment_intent]`).
    pub invoice_payments: Vec<Value>,
    /// (collection, id, key, value) of every metadata write
    pub metadata_writes: Vec<(String, String, String, String)>,
    /// (customer id, Idempotency-Key, form body) of every customer update request
    pub customer_updates: Vec<(String, String, String)>,
    pub calls: u64,
}

#[derive(Clone, Default)]
pub struct FakeStripe {
    pub data: Arc<Mutex<Data>>,
}

impl FakeStripe {
    pub fn put(&self, collection: &str, object: Value) {
        let id = object["id"].as_str().unwrap().to_owned();
        self.data
            .lock()
            .unwrap()
            .objects
            .insert(format!("{collection}/{id}"), object);
    }

    pub fn add_refund(&self, refund: Value) {
        let charge = refund["charge"].as_str().unwrap().to_owned();
        let mut d = self.data.lock().unwrap();
        let list = d.refunds_by_charge.entry(charge).or_default();
        if !list.iter().any(|r| r["id"] == refund["id"]) {
            list.push(refund);
        }
    }

    pub fn add_invoice_payment(&self, payment: Value) {
        self.data.lock().unwrap().invoice_payments.push(payment);
    }

    pub fn customer_updates(&self) -> Vec<(String, String, String)> {
        self.data.lock().unwrap().customer_updates.clone()
    }

    pub fn writes(&self) -> Vec<(String, String, String, String)> {
        self.data.lock().unwrap().metadata_writes.clone()
    }

    /// Start serving; returns the base URL.
    pub async fn serve(&self) -> String {
        let app = Router::new()
            .route("/v1/refunds", get(list_refunds))
            .route("/v1/invoice_payments", get(list_invoice_payments))
            .route("/v1/{collection}/{id}", get(retrieve).post(update))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }
}

fn not_found(what: &str) -> (StatusCode, Json<Value>) {
    (
        StatusCode::NOT_FOUND,
        Json(
            json!({"error": {"type": "invalid_request_error", "code": "resource_missing", "message": format!("No such object: {what}")}}),
        ),
    )
}

async fn retrieve(
    State(s): State<FakeStripe>,
    Path((collection, id)): Path<(String, String)>,
) -> (StatusCode, Json<Value>) {
    let mut d = s.data.lock().unwrap();
    d.calls += 1;
    match d.objects.get(&format!("{collection}/{id}")) {
        Some(v) => (StatusCode::OK, Json(v.clone())),
        None => not_found(&id),
    }
}

async fn list_refunds(
    State(s): State<FakeStripe>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    let mut d = s.data.lock().unwrap();
    d.calls += 1;
    let data = q
        .get("charge")
        .and_then(|c| d.refunds_by_charge.get(c))
        .cloned()
        .unwrap_or_default();
    Json(json!({"object": "list", "url": "/v1/refunds", "has_more": false, "data": data}))
}

/// The invoice payments added with [`FakeStripe::add_invoice_payment`], filtered as Stripe does.
async fn list_invoice_payments(
    State(s): State<FakeStripe>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    let mut d = s.data.lock().unwrap();
    d.calls += 1;
    let data: Vec<Value> = d
        .invoice_payments
        .iter()
        .filter(|p| q.get("invoice").is_none_or(|i| p["invoice"] == i.as_str()))
        .filter(|p| {
            q.get("payment[payment_intent]")
                .is_none_or(|pi| p["payment"]["payment_intent"] == pi.as_str())
        })
        .cloned()
        .collect();
    Json(json!({"object": "list", "url": "/v1/invoice_payments", "has_more": false, "data": data}))
}

async fn update(
    State(s): State<FakeStripe>,
    Path((collection, id)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    body: String,
) -> (StatusCode, Json<Value>) {
    let mut d = s.data.lock().unwrap();
    d.calls += 1;
    if collection == "customers" && !body.split('&').all(|p| p.starts_with("metadata%5B")) {
        let key = headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        d.customer_updates.push((id.clone(), key, body.clone()));
    }
    // Customer master data sent by the ERP → Stripe sync lands on the stored customer.
    if collection == "customers" {
        if let Some(obj) = d.objects.get_mut(&format!("customers/{id}")) {
            for (k, v) in form_urlencoded::parse(body.as_bytes()) {
                match k.strip_prefix("address[").and_then(|r| r.strip_suffix(']')) {
                    Some(part) => {
                        if !obj["address"].is_object() {
                            obj["address"] = json!({});
                        }
                        obj["address"][part] = json!(v);
                    }
                    None if k == "name" || k == "email" => obj[k.as_ref()] = json!(v),
                    None => {}
                }
            }
        }
    }
    let mut writes = Vec::new();
    for pair in body.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = k.replace("%5B", "[").replace("%5D", "]");
        if let Some(key) = k
            .strip_prefix("metadata[")
            .and_then(|x| x.strip_suffix(']'))
        {
            writes.push((
                collection.clone(),
                id.clone(),
                key.to_owned(),
                v.replace("%2D", "-"),
            ));
        }
    }
    d.metadata_writes.extend(writes);
    (
        StatusCode::OK,
        Json(json!({"id": id, "object": collection.trim_end_matches('s')})),
    )
}
