//! The webhook-intake handler, driven in-process, on both adapter sets: real AWS SDK clients
//! against moto (SQS + DynamoDB) and the embedded ones (in-process queue + SQLite).

use crate::support::fixtures::{deliveries, event_body, SAMPLE_SECRET};
use crate::support::moto;
use ledgerbridge_adapters::embedded::{MemoryQueue, SqliteStore};
use ledgerbridge_core::ids::{IdempotencyKey, MessageId};
use ledgerbridge_core::message::SQS_MAX_MESSAGE_BYTES;
use ledgerbridge_core::ports::{
    Claim, ClaimRequest, EventQueue, IdempotencyStore, QueueError, RecordStatus,
};
use ledgerbridge_core::webhook::sign_header;
use ledgerbridge_core::FixedClock;
use ledgerbridge_intake::{handle_webhook, Deps, RotatingVerifier};
use ledgerbridge_messages::{IntakeMessage, RefReason};
use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A queue the test can also read back.
pub trait TestQueue: EventQueue {
    fn take_all(&self) -> impl Future<Output = Vec<String>> + Send;
}

impl TestQueue for MemoryQueue {
    async fn take_all(&self) -> Vec<String> {
        self.try_receive(usize::MAX)
            .into_iter()
            .map(|m| m.body)
            .collect()
    }
}

pub struct MotoQueue {
    inner: ledgerbridge_adapters::aws::SqsQueue,
    client: aws_sdk_sqs::Client,
    url: String,
}

impl MotoQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: &str, max_bytes: usize) -> Self {
        MotoQueue {
            inner: ledgerbridge_adapters::aws::SqsQueue::new(client.clone(), url, max_bytes),
            client,
            url: url.to_owned(),
        }
    }
}

impl EventQueue for MotoQueue {
    async fn send(&self, body: String, group: Option<&str>) -> Result<MessageId, QueueError> {
        self.inner.send(body, group).await
    }
    fn max_message_bytes(&self) -> usize {
        self.inner.max_message_bytes()
    }
}

impl TestQueue for MotoQueue {
    async fn take_all(&self) -> Vec<String> {
        moto::drain(&self.client, &self.url).await
    }
}

/// Fails the first `n` sends with a retryable error, then delegates.
pub struct Flaky<Q> {
    inner: Q,
    failures_left: AtomicUsize,
}

impl<Q: EventQueue> EventQueue for Flaky<Q> {
    async fn send(&self, body: String, group: Option<&str>) -> Result<MessageId, QueueError> {
        if self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(QueueError::Unavailable("injected outage".into()));
        }
        self.inner.send(body, group).await
    }
    fn max_message_bytes(&self) -> usize {
        self.inner.max_message_bytes()
    }
}

impl<Q: TestQueue> TestQueue for Flaky<Q> {
    async fn take_all(&self) -> Vec<String> {
        self.inner.take_all().await
    }
}

pub trait Backend {
    type Q: TestQueue + 'static;
    type S: ledgerbridge_pipeline::posting::StateStore + Clone + 'static;
    fn fresh(max_bytes: usize) -> impl Future<Output = (Self::Q, Self::S)>;
}

pub struct Embedded;
impl Backend for Embedded {
    type Q = MemoryQueue;
    type S = SqliteStore;
    async fn fresh(max_bytes: usize) -> (MemoryQueue, SqliteStore) {
        (
            MemoryQueue::new(max_bytes),
            SqliteStore::in_memory().unwrap(),
        )
    }
}

pub struct Aws;
impl Backend for Aws {
    type Q = MotoQueue;
    type S = ledgerbridge_adapters::aws::DynamoStore;
    async fn fresh(max_bytes: usize) -> (MotoQueue, ledgerbridge_adapters::aws::DynamoStore) {
        let conf = moto::sdk_config().await;
        let sqs = aws_sdk_sqs::Client::new(&conf);
        let ddb = aws_sdk_dynamodb::Client::new(&conf);
        let url = moto::create_queue(&sqs, &moto::unique("events")).await;
        let table = moto::unique("state");
        moto::create_state_table(&ddb, &table).await;
        let inner = ledgerbridge_adapters::aws::SqsQueue::new(sqs.clone(), &url, max_bytes);
        (
            MotoQueue {
                inner,
                client: sqs,
                url,
            },
            ledgerbridge_adapters::aws::DynamoStore::new(ddb, table),
        )
    }
}

pub fn deps<Q: EventQueue, S: IdempotencyStore>(
    queue: Q,
    store: S,
    clock: FixedClock,
) -> Deps<Q, S, FixedClock> {
    Deps {
        queue,
        store,
        verifier: RotatingVerifier::fixed(&[SAMPLE_SECRET]),
        clock,
        handled: ledgerbridge_intake::default_handled_event_types()
            .into_iter()
            .collect(),
        dedupe_for_secs: 35 * 86_400,
        lease_ms: 15_000,
        wait_for_peer: Duration::from_secs(3),
    }
}

const T0: i64 = 1_785_000_000;

fn signed(body: &[u8], t: i64) -> String {
    sign_header(&[SAMPLE_SECRET], t, body)
}

/// GIVEN the 15 sample deliveries with Stripe's recorded signatures WHEN each arrives at its
/// recorded time THEN each is answered 200 and queued once, with its exact bytes.
async fn accepts_every_sample_delivery<B: Backend>() {
    let (q, s) = B::fresh(SQS_MAX_MESSAGE_BYTES).await;
    let clock = FixedClock::at_secs(0);
    let d = deps(q, s, clock.clone());
    let all = deliveries();
    assert_eq!(all.len(), 15);
    for delivery in &all {
        clock.set_secs(delivery.received_at);
        let out = handle_webhook(&d, Some(&delivery.signature), &delivery.body).await;
        assert_eq!(out.status, 200, "{}", delivery.file);
        assert!(!out.body.contains("duplicate"), "{}", delivery.file);
    }
    let queued = d.queue.take_all().await;
    assert_eq!(queued.len(), all.len());
    let mut seen = HashSet::new();
    for text in queued {
        match IntakeMessage::decode(&text).unwrap() {
            IntakeMessage::StripeEventV1(m) => {
                let delivery = all
                    .iter()
                    .find(|x| x.event_id == m.event_id.as_str())
                    .unwrap();
                // The event JSON travels untouched (serde_json's RawValue drops only trailing whitespace).
                assert!(
                    m.event.get().as_bytes() == delivery.body.trim_ascii_end(),
                    "{} changed in transit",
                    delivery.file
                );
                assert_eq!(m.event_type, delivery.event_type);
                assert!(seen.insert(m.event_id.to_string()));
            }
            other => panic!("unexpected message {other:?}"),
        }
    }
}

/// GIVEN one event WHEN it is delivered once, then 5 times in sequence, then 10 times at the
/// same moment THEN every delivery gets 200 and exactly one message is queued.
async fn duplicates_enqueue_nothing_new<B: Backend>() {
    let (q, s) = B::fresh(SQS_MAX_MESSAGE_BYTES).await;
    let d = deps(q, s, FixedClock::at_secs(T0));
    let body = event_body("charge.succeeded.json");
    let header = signed(&body, T0);
    assert_eq!(handle_webhook(&d, Some(&header), &body).await.status, 200);
    for _ in 0..5 {
        let out = handle_webhook(&d, Some(&header), &body).await;
        assert_eq!(out.status, 200);
        assert!(out.body.contains("duplicate"));
    }
    assert_eq!(d.queue.take_all().await.len(), 1);

    // A new event, 10 copies at once.
    let body2 = String::from_utf8(body.clone())
        .unwrap()
        .replace("evt_", "evt_concurrent")
        .into_bytes();
    let header2 = signed(&body2, T0);
    let results =
        futures::future::join_all((0..10).map(|_| handle_webhook(&d, Some(&header2), &body2)))
            .await;
    assert!(results.iter().all(|r| r.status == 200), "{results:?}");
    assert_eq!(
        results
            .iter()
            .filter(|r| !r.body.contains("duplicate"))
            .count(),
        1
    );
    assert_eq!(d.queue.take_all().await.len(), 1);
}

/// GIVEN bad signatures, stale timestamps and malformed headers THEN 400, nothing queued, no
/// claim left behind (the genuine delivery afterwards is accepted).
async fn rejects_bad_input_and_queues_nothing<B: Backend>() {
    let (q, s) = B::fresh(SQS_MAX_MESSAGE_BYTES).await;
    let clock = FixedClock::at_secs(T0);
    let d = deps(q, s, clock.clone());
    let body = event_body("customer.created.json");
    let good = signed(&body, T0);
    let mut tampered = body.clone();
    tampered[40] ^= 0x01;
    let cases: Vec<(Option<String>, Vec<u8>, &str)> = vec![
        (Some(good.clone()), tampered, "tampered body"),
        (
            Some(sign_header(&["whsec_wrong"], T0, &body)),
            body.clone(),
            "wrong secret",
        ),
        (Some(signed(&body, T0 - 301)), body.clone(), "stale"),
        (Some(signed(&body, T0 + 120)), body.clone(), "future"),
        (None, body.clone(), "missing header"),
        (Some("t=abc,v1=00".into()), body.clone(), "malformed"),
        (Some(good.replace("v1=", "v0=")), body.clone(), "v0 only"),
        (Some(format!("{good}garbage")), body.clone(), "bad hex"),
        // A validly signed body that does not parse is no longer rejected: it is kept in
        // quarantine and answered 2xx (RELIABILITY I7, see faults::i7).
    ];
    for (header, b, what) in cases {
        let out = handle_webhook(&d, header.as_deref(), &b).await;
        assert_eq!(out.status, 400, "{what}");
    }
    assert!(d.queue.take_all().await.is_empty());
    assert_eq!(handle_webhook(&d, Some(&good), &body).await.status, 200);
    assert_eq!(d.queue.take_all().await.len(), 1);
}

/// GIVEN an event type the deployment does not handle THEN 200, recorded as ignored, nothing queued.
async fn unhandled_types_are_recorded_as_ignored<B: Backend>() {
    let (q, s) = B::fresh(SQS_MAX_MESSAGE_BYTES).await;
    let d = deps(q, s.clone(), FixedClock::at_secs(T0));
    let body = String::from_utf8(event_body("customer.created.json"))
        .unwrap()
        .replace("\"customer.created\"", "\"customer.tax_id.created\"")
        .into_bytes();
    let header = signed(&body, T0);
    let out = handle_webhook(&d, Some(&header), &body).await;
    assert_eq!((out.status, out.body.contains("ignored")), (200, true));
    assert!(d.queue.take_all().await.is_empty());
    let id = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rec = s
        .get(&IdempotencyKey::from(
            ledgerbridge_core::keys::IntakeKey::event(id),
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.status, RecordStatus::Ignored);
    assert!(handle_webhook(&d, Some(&header), &body)
        .await
        .body
        .contains("duplicate"));
}

/// GIVEN an event larger than the queue limit THEN it is queued by reference for re-fetch.
async fn oversized_events_are_queued_by_reference<B: Backend>() {
    let (q, s) = B::fresh(4096).await;
    let d = deps(q, s, FixedClock::at_secs(T0));
    let body = event_body("invoice.paid.json");
    assert!(body.len() > 4096);
    assert_eq!(
        handle_webhook(&d, Some(&signed(&body, T0)), &body)
            .await
            .status,
        200
    );
    let queued = d.queue.take_all().await;
    assert_eq!(queued.len(), 1);
    match IntakeMessage::decode(&queued[0]).unwrap() {
        IntakeMessage::StripeEventRefV1(r) => {
            assert_eq!(r.reason, RefReason::Oversized);
            assert_eq!(r.event_type, "invoice.paid");
            assert_eq!(r.body_bytes, body.len());
        }
        other => panic!("expected a reference, got {other:?}"),
    }
}

/// GIVEN the queue is down THEN 5xx (Stripe retries), nothing queued, the claim released, and
/// the retry after recovery is queued exactly once.
async fn queue_outage_answers_5xx_and_retry_succeeds<B: Backend>() {
    let (q, s) = B::fresh(SQS_MAX_MESSAGE_BYTES).await;
    let flaky = Flaky {
        inner: q,
        failures_left: AtomicUsize::new(2),
    };
    let d = deps(flaky, s, FixedClock::at_secs(T0));
    let body = event_body("refund.created.json");
    let header = signed(&body, T0);
    assert!(handle_webhook(&d, Some(&header), &body).await.status >= 500);
    assert!(handle_webhook(&d, Some(&header), &body).await.status >= 500);
    assert!(d.queue.take_all().await.is_empty());
    let out = handle_webhook(&d, Some(&header), &body).await;
    assert_eq!(out.status, 200);
    assert!(!out.body.contains("duplicate"));
    assert_eq!(d.queue.take_all().await.len(), 1);
}

/// GIVEN an invocation crashed after claiming (record stuck INPROGRESS) THEN a redelivery waits
/// (503) while the lease runs, and takes the claim over once it has lapsed.
async fn crashed_claims_are_recovered_after_the_lease<B: Backend>() {
    let (q, s) = B::fresh(SQS_MAX_MESSAGE_BYTES).await;
    let clock = FixedClock::at_secs(T0);
    let mut d = deps(q, s.clone(), clock.clone());
    d.wait_for_peer = Duration::from_millis(100);
    let body = event_body("payout.paid.json");
    let id = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The crashed holder was a copy of the same delivery (same payload hash): a record with
    // another hash is a different payload and is quarantined (RELIABILITY D5, faults::d5).
    let same_hash: String = <sha2::Sha256 as sha2::Digest>::digest(&body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let crashed = ClaimRequest {
        key: IdempotencyKey::from(ledgerbridge_core::keys::IntakeKey::event(id)),
        payload_hash: same_hash,
        now_ms: T0 * 1000,
        lease_ms: 10_000,
        expiration: T0 + 86_400,
    };
    assert_eq!(s.claim(&crashed).await.unwrap(), Claim::Acquired);
    assert_eq!(
        handle_webhook(&d, Some(&signed(&body, T0)), &body)
            .await
            .status,
        503
    );
    assert!(d.queue.take_all().await.is_empty());
    clock.set_secs(T0 + 11);
    assert_eq!(
        handle_webhook(&d, Some(&signed(&body, T0 + 11)), &body)
            .await
            .status,
        200
    );
    assert_eq!(d.queue.take_all().await.len(), 1);
}

/// The store compares `expiration` itself (never relying on TTL) and validates payload hashes.
async fn store_claim_semantics<B: Backend>() {
    let (_, s) = B::fresh(SQS_MAX_MESSAGE_BYTES).await;
    let key = IdempotencyKey::new(moto::unique("k"));
    let req = |now_ms: i64, hash: &str| ClaimRequest {
        key: key.clone(),
        payload_hash: hash.into(),
        now_ms,
        lease_ms: 1_000,
        expiration: now_ms / 1000 + 60,
    };
    assert_eq!(
        s.claim(&req(1_000_000, "h1")).await.unwrap(),
        Claim::Acquired
    );
    s.complete(&key, RecordStatus::Completed, Some("m1".into()))
        .await
        .unwrap();
    match s.claim(&req(1_030_000, "h2")).await.unwrap() {
        Claim::Existing(r) => {
            assert_eq!(r.status, RecordStatus::Completed);
            assert_eq!(
                r.payload_hash, "h1",
                "the loser sees the stored hash (optimistic path)"
            );
            assert_eq!(r.result.as_deref(), Some("m1"));
        }
        Claim::Acquired => panic!("completed record must block"),
    }
    // A lapsed lease does not free a COMPLETED record; expiry does.
    assert!(matches!(
        s.claim(&req(1_050_000, "h1")).await.unwrap(),
        Claim::Existing(_)
    ));
    assert_eq!(
        s.claim(&req(1_061_000 + 1_000, "h1")).await.unwrap(),
        Claim::Acquired
    );
    // release only removes in-progress records
    s.release(&key).await.unwrap();
    assert!(s.get(&key).await.unwrap().is_none());
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $( #[tokio::test] async fn $name() { super::$name::<super::Embedded>().await } )*
        }
        mod aws_moto {
            $( #[tokio::test] async fn $name() { super::$name::<super::Aws>().await } )*
        }
    };
}

on_both_backends!(
    accepts_every_sample_delivery,
    duplicates_enqueue_nothing_new,
    rejects_bad_input_and_queues_nothing,
    unhandled_types_are_recorded_as_ignored,
    oversized_events_are_queued_by_reference,
    queue_outage_answers_5xx_and_retry_succeeds,
    crashed_claims_are_recovered_after_the_lease,
    store_claim_semantics,
);

/// Real SDK errors (queue or table missing) answer 5xx so Stripe retries, and queue nothing.
#[tokio::test]
async fn aws_dependency_errors_answer_5xx() {
    let (q, s) = Aws::fresh(SQS_MAX_MESSAGE_BYTES).await;
    let conf = moto::sdk_config().await;
    let missing_table = ledgerbridge_adapters::aws::DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&conf),
        moto::unique("missing"),
    );
    let body = event_body("customer.updated.json");
    let header = signed(&body, T0);
    let d = deps(q, missing_table, FixedClock::at_secs(T0));
    assert!(handle_webhook(&d, Some(&header), &body).await.status >= 500);
    assert!(d.queue.take_all().await.is_empty());

    let missing_queue = ledgerbridge_adapters::aws::SqsQueue::new(
        aws_sdk_sqs::Client::new(&conf),
        format!(
            "{}/123456789012/{}",
            moto::moto().endpoint,
            moto::unique("nope")
        ),
        SQS_MAX_MESSAGE_BYTES,
    );
    let d = deps(missing_queue, s.clone(), FixedClock::at_secs(T0));
    assert!(handle_webhook(&d, Some(&header), &body).await.status >= 500);
    // The claim was released: a retry with a working queue goes through.
    let (q2, _) = Aws::fresh(SQS_MAX_MESSAGE_BYTES).await;
    let d = deps(q2, s, FixedClock::at_secs(T0));
    assert_eq!(handle_webhook(&d, Some(&header), &body).await.status, 200);
    assert_eq!(d.queue.take_all().await.len(), 1);
}

/// API Gateway HTTP API (payload v2) with a base64-encoded body: verified on the decoded bytes.
#[tokio::test]
async fn lambda_adapter_decodes_base64_bodies() {
    use base64::Engine as _;
    let (q, s) = Embedded::fresh(SQS_MAX_MESSAGE_BYTES).await;
    let d = deps(q, s, FixedClock::at_secs(T0));
    let body = event_body("charge.refunded.partial.json");
    let header = signed(&body, T0);
    let event = serde_json::json!({
        "version": "2.0",
        "routeKey": "POST /webhook",
        "rawPath": "/webhook",
        "rawQueryString": "",
        "headers": {"stripe-signature": header, "content-type": "application/json"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "x.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "x", "http": {"method": "POST", "path": "/webhook", "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1", "userAgent": "Stripe/1.0"}, "requestId": "r", "routeKey": "POST /webhook",
            "stage": "$default", "time": "24/Nov/2026:12:00:00 +0000", "timeEpoch": 1_785_000_000_000i64
        },
        "body": base64::engine::general_purpose::STANDARD.encode(&body),
        "isBase64Encoded": true
    });
    let req = lambda_http::request::from_str(&event.to_string()).unwrap();
    let resp = ledgerbridge_intake::lambda_adapter(&d, req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(d.queue.take_all().await.len(), 1);

    // The same request with one byte of the decoded body changed is rejected.
    let mut bad = body.clone();
    bad[10] ^= 1;
    let mut event = event;
    event["body"] = base64::engine::general_purpose::STANDARD
        .encode(&bad)
        .into();
    let req = lambda_http::request::from_str(&event.to_string()).unwrap();
    assert_eq!(
        ledgerbridge_intake::lambda_adapter(&d, req)
            .await
            .unwrap()
            .status(),
        400
    );
}
