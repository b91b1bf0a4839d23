//! Q1 — `SendMessage` fails or stalls in the intake. The intake answers 5xx so Stripe retries,
//! and never 2xx before the message is durably queued.
//!
//! Figure: 1,000 events (sender retries) → 1,000 enqueued, 0 lost, every 2xx has a message;
//! faults 30 % 500s + 5 % 10 s stalls. **Scaled to 300 events** (1,000 through the faulty
//! client and moto take minutes of the shared CI machine) with 30 % of `SendMessage` calls
//! refused before reaching SQS and 30 % answered 500 after SQS stored the message (so a
//! retried delivery may queue a second copy, which downstream deduplication absorbs); stalls
//! **scaled to 5 % × 100 ms** (10 s stalls would make the run minutes long without testing
//! anything more: the SDK call simply takes longer).

use super::interceptor::{FaultInterceptor, FaultPlan};
use crate::intake::{deps, MotoQueue};
use crate::support::fixtures::{event_body, SAMPLE_SECRET};
use crate::support::moto;
use futures::StreamExt;
use ledgerbridge_core::webhook::sign_header;
use ledgerbridge_core::FixedClock;
use ledgerbridge_intake::handle_webhook;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

const T0: i64 = 1_785_000_000;
const EVENTS: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q1_queue_faults_answer_5xx_and_lose_nothing() {
    let conf = moto::sdk_config().await;
    let faults = FaultInterceptor::new(FaultPlan {
        operations: vec!["SendMessage".into()],
        refuse_per_mille: 300,
        error_500_per_mille: 300,
        stall: Some((50, Duration::from_millis(100))),
        seed: 7,
        ..FaultPlan::default()
    });
    let plain = aws_sdk_sqs::Client::new(&conf);
    let url = moto::create_queue(&plain, &moto::unique("q1-events")).await;
    let table = moto::unique("q1-state");
    let ddb = aws_sdk_dynamodb::Client::new(&conf);
    moto::create_state_table(&ddb, &table).await;
    let q = MotoQueue::new(
        faults.sqs(&conf),
        &url,
        ledgerbridge_core::message::SQS_MAX_MESSAGE_BYTES,
    );
    let d = deps(
        q,
        ledgerbridge_adapters::aws::DynamoStore::new(ddb, table),
        FixedClock::at_secs(T0),
    );
    let base = String::from_utf8(event_body("customer.created.json")).unwrap();
    let d = &d;
    let base = &base;
    let attempts: Vec<usize> = futures::stream::iter(0..EVENTS)
        .map(|i| async move {
            let body = base.replace("evt_", &format!("evt_q1x{i}x")).into_bytes();
            let header = sign_header(&[SAMPLE_SECRET], T0, &body);
            // Stripe's sender: retry until 2xx.
            for attempt in 1..=20 {
                let out = handle_webhook(d, Some(&header), &body).await;
                if out.status == 200 {
                    return attempt;
                }
                assert!(out.status >= 500, "{}", out.status);
            }
            panic!("event {i} never accepted");
        })
        .buffer_unordered(10)
        .collect()
        .await;
    assert!(faults.counters.refused.load(Ordering::SeqCst) > 30);
    assert!(faults.counters.errors_500.load(Ordering::SeqCst) > 30);
    assert!(
        attempts.iter().any(|&a| a > 1),
        "some deliveries were answered 5xx first"
    );
    faults.set_plan(FaultPlan::default());
    let queued = super::esm::drain(&plain, &url).await;
    let ids: HashSet<String> = queued
        .iter()
        .map(|m| {
            let v: serde_json::Value = serde_json::from_str(m).unwrap();
            v["event"]["id"]
                .as_str()
                .or_else(|| v["event_id"].as_str())
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let expected: HashSet<String> = (0..EVENTS)
        .map(|i| {
            let v: serde_json::Value =
                serde_json::from_str(&base.replace("evt_", &format!("evt_q1x{i}x"))).unwrap();
            v["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        ids.intersection(&expected).count(),
        EVENTS,
        "every accepted event is queued"
    );
}
