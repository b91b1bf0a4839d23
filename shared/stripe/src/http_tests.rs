//! The client against a local fake Stripe (axum on 127.0.0.1:0).

use crate::client::StripeObjectKind;
use crate::{StripeClient, StripeClientConfig, StripeError};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ledgerbridge_core::ids::{IdempotencyKey, PayoutId};
use ledgerbridge_core::secrets::Secret;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Failures = HashMap<String, Vec<(u16, Option<&'static str>)>>;
/// (id, Idempotency-Key, body, content type) of each POST.
type Post = (String, Option<String>, String, Option<String>);

#[derive(Default)]
struct Fake {
    /// Status codes to answer before succeeding, per path.
    fail_first: Mutex<Failures>,
    seen: Mutex<Vec<String>>,
    posts: Mutex<Vec<Post>>,
}

fn bt(id: &str, amount: i64) -> serde_json::Value {
    serde_json::json!({"id": id, "object": "balance_transaction", "amount": amount,
        "currency": "usd", "fee": 0, "net": amount, "fee_details": [], "exchange_rate": null,
        "type": "charge", "reporting_category": "charge", "source": "ch_x"})
}

async fn maybe_fail(fake: &Fake, key: &str) -> Option<Response> {
    let mut map = fake.fail_first.lock().unwrap();
    let list = map.get_mut(key)?;
    if list.is_empty() {
        return None;
    }
    let (status, retry_after) = list.remove(0);
    let mut headers = HeaderMap::new();
    if let Some(ra) = retry_after {
        headers.insert("Retry-After", ra.parse().unwrap());
    }
    let body = serde_json::json!({"error": {"type": "api_error", "message": "try later"}});
    Some(
        (
            StatusCode::from_u16(status).unwrap(),
            headers,
            axum::Json(body),
        )
            .into_response(),
    )
}

async fn list_bts(
    State(fake): State<Arc<Fake>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let after = q.get("starting_after").cloned().unwrap_or_default();
    fake.seen
        .lock()
        .unwrap()
        .push(format!("list after={after} limit={}", q["limit"]));
    if let Some(r) = maybe_fail(&fake, &format!("list:{after}")).await {
        return r;
    }
    // 5 transactions, pages of 2
    let all: Vec<_> = (1..=5).map(|i| bt(&format!("txn_{i}"), i * 100)).collect();
    let start = if after.is_empty() {
        0
    } else {
        after.trim_start_matches("txn_").parse::<usize>().unwrap()
    };
    let end = (start + 2).min(all.len());
    let body = serde_json::json!({"object": "list", "data": all[start..end],
        "has_more": end < all.len(), "url": "/v1/balance_transactions"});
    axum::Json(body).into_response()
}

async fn get_charge(State(fake): State<Arc<Fake>>, Path(id): Path<String>) -> Response {
    if let Some(r) = maybe_fail(&fake, &format!("charge:{id}")).await {
        return r;
    }
    if id == "ch_missing" {
        let body = serde_json::json!({"error": {"type": "invalid_request_error",
            "code": "resource_missing", "message": "No such charge"}});
        return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    }
    axum::Json(
        serde_json::json!({"id": id, "object": "charge", "amount": 15900,
        "currency": "usd", "metadata": {"order_id": "SO-1"}, "brand_new_field": 1}),
    )
    .into_response()
}

async fn post_charge(
    State(fake): State<Arc<Fake>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let key = headers
        .get("Idempotency-Key")
        .map(|v| v.to_str().unwrap().to_owned());
    let ctype = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    fake.posts
        .lock()
        .unwrap()
        .push((id.clone(), key, body, ctype));
    if let Some(r) = maybe_fail(&fake, &format!("post:{id}")).await {
        return r;
    }
    axum::Json(serde_json::json!({"id": id, "object": "charge", "metadata": {"erp": "1"}}))
        .into_response()
}

/// Records `path?query` of a list call and answers an empty page.
async fn list_any(State(fake): State<Arc<Fake>>, uri: axum::http::Uri) -> Response {
    fake.seen.lock().unwrap().push(uri.to_string());
    axum::Json(serde_json::json!({"object": "list", "data": [], "has_more": false})).into_response()
}

async fn start(fake: Arc<Fake>) -> String {
    let app = Router::new()
        .route("/v1/balance_transactions", get(list_bts))
        .route("/v1/refunds", get(list_any))
        .route("/v1/invoice_payments", get(list_any))
        .route("/v1/payouts", get(list_any))
        .route("/v1/customers", get(list_any))
        .route("/v1/charges/{id}", get(get_charge).post(post_charge))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn client(base: &str) -> StripeClient {
    let mut cfg = StripeClientConfig::new(Secret::new("sk_test_123".into())).with_base_url(base);
    cfg.base_backoff = Duration::from_millis(5);
    cfg.max_backoff = Duration::from_millis(20);
    cfg.max_retries = 3;
    cfg.requests_per_second = 0;
    cfg.page_limit = 2;
    StripeClient::new(cfg).unwrap()
}

#[tokio::test]
async fn pages_until_has_more_is_false_and_counts_calls() {
    let fake = Arc::new(Fake::default());
    let c = client(&start(fake.clone()).await);
    let mut pages = c.payout_balance_transactions(&PayoutId::new("po_1"));
    let mut ids = Vec::new();
    while let Some(page) = pages.next_page().await.unwrap() {
        ids.extend(page.into_iter().map(|t| t.id));
    }
    assert_eq!(ids, ["txn_1", "txn_2", "txn_3", "txn_4", "txn_5"]);
    assert_eq!(pages.pages(), 3);
    assert_eq!(c.calls(), 3);
    assert_eq!(
        *fake.seen.lock().unwrap(),
        [
            "list after= limit=2",
            "list after=txn_2 limit=2",
            "list after=txn_4 limit=2"
        ]
    );
    assert!(pages.next_page().await.unwrap().is_none(), "stays finished");
    assert_eq!(c.take_calls(), 3);
    assert_eq!(c.calls(), 0);
}

#[tokio::test]
async fn a_429_mid_pagination_is_retried_after_retry_after() {
    let fake = Arc::new(Fake::default());
    fake.fail_first
        .lock()
        .unwrap()
        .insert("list:txn_2".into(), vec![(429, Some("1"))]);
    let c = client(&start(fake.clone()).await);
    let started = Instant::now();
    use futures::TryStreamExt;
    let all: Vec<_> = c
        .payout_balance_transactions(&PayoutId::new("po_1"))
        .into_stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 5);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "honoured Retry-After"
    );
    assert_eq!(c.calls(), 4, "3 pages + 1 retried");
}

#[tokio::test]
async fn retries_are_bounded_and_permanent_errors_are_not_retried() {
    let fake = Arc::new(Fake::default());
    fake.fail_first
        .lock()
        .unwrap()
        .insert("charge:ch_down".into(), vec![(503, None); 10]);
    fake.fail_first
        .lock()
        .unwrap()
        .insert("charge:ch_flaky".into(), vec![(500, None), (502, None)]);
    let c = client(&start(fake.clone()).await);

    let err = c.retrieve_charge("ch_down").await.unwrap_err();
    assert!(
        matches!(err, StripeError::Exhausted { attempts: 4, .. }),
        "{err}"
    );
    assert!(err.is_retriable());
    assert_eq!(c.take_calls(), 4);

    let ch = c.retrieve_charge("ch_flaky").await.unwrap();
    assert_eq!(ch.amount, 15900);
    assert_eq!(ch.metadata["order_id"], "SO-1");
    assert!(ch.other.contains_key("brand_new_field"));
    assert_eq!(c.take_calls(), 3);

    let err = c.retrieve_charge("ch_missing").await.unwrap_err();
    assert!(err.is_not_found() && !err.is_retriable(), "{err}");
    assert_eq!(c.take_calls(), 1, "404 is not retried");

    let err = c.retrieve_charge("../secret").await.unwrap_err();
    assert!(matches!(err, StripeError::InvalidRequest(_)));
    assert_eq!(c.calls(), 0, "rejected before sending");
}

#[tokio::test]
async fn metadata_update_is_form_encoded_with_a_stable_idempotency_key() {
    let fake = Arc::new(Fake::default());
    fake.fail_first
        .lock()
        .unwrap()
        .insert("post:ch_1".into(), vec![(500, None)]);
    let c = client(&start(fake.clone()).await);
    let key = IdempotencyKey::new("erp-sync-ch_1-v1");
    let out = c
        .update_metadata(
            StripeObjectKind::Charge,
            "ch_1",
            &[("erp_receipt", "CR 1/2&3"), ("erp", "epicor")],
            &key,
        )
        .await
        .unwrap();
    assert_eq!(out["metadata"]["erp"], "1");
    let posts = fake.posts.lock().unwrap();
    assert_eq!(posts.len(), 2, "one retry");
    for (id, k, body, ctype) in posts.iter() {
        assert_eq!(id, "ch_1");
        assert_eq!(
            k.as_deref(),
            Some("erp-sync-ch_1-v1"),
            "same key on the retry"
        );
        assert_eq!(ctype.as_deref(), Some("application/x-www-form-urlencoded"));
        assert_eq!(
            body,
            "metadata%5Berp_receipt%5D=CR+1%2F2%263&metadata%5Berp%5D=epicor"
        );
    }
}

#[tokio::test]
async fn rate_limiter_spaces_calls() {
    let fake = Arc::new(Fake::default());
    let base = start(fake).await;
    let mut cfg = StripeClientConfig::new(Secret::new("sk".into())).with_base_url(&base);
    cfg.requests_per_second = 20;
    let c = StripeClient::new(cfg).unwrap();
    let started = Instant::now();
    for _ in 0..5 {
        c.retrieve_charge("ch_1").await.unwrap();
    }
    // 5 calls at 20/s: at least 4 intervals of 50 ms
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn the_port_builds_the_pipeline_queries_of_today() {
    use crate::api::{PayoutListQuery, StripeApi};
    let fake = Arc::new(Fake::default());
    let c = client(&start(fake.clone()).await);
    let port = &c;
    assert!(StripeApi::list_refunds_of_charge(port, "ch_1")
        .await
        .unwrap()
        .data
        .is_empty());
    StripeApi::list_invoice_payments(port, "in_1")
        .await
        .unwrap();
    StripeApi::invoice_payments_of_payment_intent(port, "pi_1")
        .await
        .unwrap();
    let q = PayoutListQuery {
        status: Some("paid".into()),
        arrival_date_gte: Some(1_700_000_000),
        limit: Some(100),
    };
    StripeApi::list_payouts(port, &q, Some("po_9"))
        .await
        .unwrap();
    StripeApi::list_payouts(port, &PayoutListQuery::default(), None)
        .await
        .unwrap();
    assert_eq!(
        *fake.seen.lock().unwrap(),
        [
            "/v1/refunds?charge=ch_1&limit=100",
            "/v1/invoice_payments?invoice=in_1&limit=100",
            "/v1/invoice_payments?payment%5Btype%5D=payment_intent&payment%5Bpayment_intent%5D=pi_1&limit=1",
            "/v1/payouts?status=paid&arrival_date%5Bgte%5D=1700000000&limit=100&starting_after=po_9",
            "/v1/payouts?limit=2",
        ]
    );
    assert_eq!(StripeApi::calls(port), 5);
    assert!(StripeApi::list_refunds_of_charge(port, "ch_1&x=1")
        .await
        .is_err());
}

#[tokio::test]
async fn the_port_pages_through_a_borrowed_client_and_writes_metadata_idempotently() {
    use crate::api::{BalanceTransactionPages, BalanceTransactionQuery, StripeApi};
    let fake = Arc::new(Fake::default());
    let c = client(&start(fake.clone()).await);
    let mut pages =
        BalanceTransactionPages::new(&c, BalanceTransactionQuery::payout(PayoutId::new("po_1")));
    let mut ids = Vec::new();
    while let Some(page) = pages.next_page().await.unwrap() {
        ids.extend(page.into_iter().map(|t| t.id));
    }
    assert_eq!(ids.len(), 5);
    assert_eq!(pages.pages(), 3);

    let kind = StripeObjectKind::from_path("charges").unwrap();
    StripeApi::set_metadata(&c, kind, "ch_1", "ledgerbridge_cash_receipt", "CR-1")
        .await
        .unwrap();
    let posts = fake.posts.lock().unwrap();
    assert_eq!(
        posts[0].1.as_deref(),
        Some("ledgerbridge-charges-ch_1-ledgerbridge_cash_receipt-CR-1"),
        "the pipeline's deterministic key"
    );
    assert_eq!(posts[0].2, "metadata%5Bledgerbridge_cash_receipt%5D=CR-1");
    assert_eq!(
        StripeObjectKind::from_path("payment_intents"),
        Some(StripeObjectKind::PaymentIntent)
    );
    assert_eq!(StripeObjectKind::from_path("widgets"), None);
}

#[tokio::test]
async fn lists_by_creation_time_with_paging_and_expansions() {
    use crate::query::{CreatedListKind, CreatedListQuery};
    let fake = Arc::new(Fake::default());
    let c = client(&start(fake.clone()).await);
    let mut q = CreatedListQuery {
        kind: CreatedListKind::Customers,
        gte: 1_700_000_000,
        lte: 1_700_086_399,
        expand: vec!["data.default_source".into()],
    };
    let page = c.list_created(&q, Some("cus_9")).await.unwrap();
    assert!(page.data.is_empty() && !page.has_more);
    q.expand.clear();
    c.list_created(&q, None).await.unwrap();
    assert_eq!(
        *fake.seen.lock().unwrap(),
        [
            "/v1/customers?created%5Bgte%5D=1700000000&created%5Blte%5D=1700086399&limit=2&expand%5B%5D=data.default_source&starting_after=cus_9",
            "/v1/customers?created%5Bgte%5D=1700000000&created%5Blte%5D=1700086399&limit=2",
        ]
    );
    q.expand = vec!["default_source&x=1".into()];
    assert!(c.list_created(&q, None).await.is_err());
    q.expand.clear();
    assert!(c.list_created(&q, Some("cus_1&limit=1")).await.is_err());
    assert_eq!(c.calls(), 2, "invalid requests are refused before any call");
}

#[tokio::test]
async fn the_invoice_of_a_payment_intent_is_looked_up_once() {
    use crate::api::StripeApi;
    // GIVEN a client and a PaymentIntent reported by two events handled at once, then again
    let fake = Arc::new(Fake::default());
    let c = client(&start(fake.clone()).await);
    let port = &c;
    let (a, b) = tokio::join!(
        StripeApi::invoice_payments_of_payment_intent(port, "pi_1"),
        StripeApi::invoice_payments_of_payment_intent(port, "pi_1"),
    );
    assert_eq!(a.unwrap(), b.unwrap());
    StripeApi::invoice_payments_of_payment_intent(port, "pi_1")
        .await
        .unwrap();
    StripeApi::invoice_payments_of_payment_intent(port, "pi_2")
        .await
        .unwrap();
    // THEN Stripe is asked once per PaymentIntent
    assert_eq!(StripeApi::calls(port), 2);
    // AND with the memo off, once per look-up
    let mut cfg = StripeClientConfig::new(Secret::new("sk_test_123".into()))
        .with_base_url(start(Arc::new(Fake::default())).await);
    cfg.requests_per_second = 0;
    cfg.payment_lookup_ttl = Duration::ZERO;
    let off = StripeClient::new(cfg).unwrap();
    for _ in 0..3 {
        StripeApi::invoice_payments_of_payment_intent(&off, "pi_1")
            .await
            .unwrap();
    }
    assert_eq!(StripeApi::calls(&off), 3);
}
