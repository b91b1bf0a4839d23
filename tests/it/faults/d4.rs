//! D4 — the idempotency record has expired when a late duplicate arrives (Stripe retries for
//! three days, an operator resends within 30, the DLQ keeps 14; the intent records count for
//! `intent_days`). moto does not run TTL, so the expired records are still there: the claim's
//! condition compares `expiration` itself and would take them over. The permanent
//! cross-reference is what keeps the late duplicate from making a second document.
//!
//! Figure (at figure): expiry 1 s (`intent_days = 0`: `expiration` is the claim's second, so the
//! record lapses within a second), redelivery after 2 s → 0 duplicates: no second document, and
//! not even an ERP search (the cross-reference answers; the search by reference would be the
//! next guard). 200 commands.

use super::esm::{queue_with_dlq, send_all, Esm};
use super::guard::{post_handler, Guarded};
use super::{assert_each_once, journal, journal_messages, post_stage};
use crate::support::moto;
use ledgerbridge_core::ids::IdempotencyKey;
use ledgerbridge_core::keys::IntentKey;
use ledgerbridge_core::ports::{Claim, ClaimRequest, IdempotencyStore, RecordStatus};
use ledgerbridge_core::{Clock, SystemClock};
use ledgerbridge_erp_sandbox::ErpKind;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

const MESSAGES: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d4_a_late_duplicate_after_the_intent_expired_makes_no_second_document() {
    let sb = crate::pipeline::sandbox(ErpKind::SagePro).await;
    let conf = moto::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let (mut stage, _, parked) = post_stage(
        Guarded::new(crate::pipeline::sagepro(&sb)),
        aws_sdk_dynamodb::Client::new(&conf),
        10_000,
        super::fast_policy(),
    )
    .await;
    stage.poster.intent_days = 0;
    let stage = Arc::new(stage);
    let q = queue_with_dlq(&sqs, &moto::unique("d4-commands"), 5, 2).await;
    let bodies = journal_messages(MESSAGES, "d4x");
    let commands: Vec<_> = (0..MESSAGES).map(|i| journal(&format!("d4x{i}"))).collect();
    let esm = Esm::default();
    let idle = Duration::from_secs(3);
    let deadline = Duration::from_secs(120);

    send_all(&sqs, &q, &bodies, |_| String::new()).await;
    let first = esm
        .run(&sqs, &q, post_handler(stage.clone()), idle, deadline)
        .await;
    assert!(first.deleted.load(Ordering::SeqCst) >= MESSAGES);
    assert_each_once(&sb, ErpKind::SagePro, &commands);

    tokio::time::sleep(Duration::from_secs(2)).await;
    // The records are still stored (no TTL here) but expired by their `expiration`.
    let store = &stage.poster.store;
    let now_secs = SystemClock.now_secs();
    for c in &commands {
        let key: IdempotencyKey = IntentKey::post("sagepro", c.reference()).into();
        let rec = store.get(&key).await.unwrap().expect("still stored");
        assert_eq!(rec.status, RecordStatus::Completed);
        assert!(
            rec.expiration < now_secs,
            "expired: {} < {now_secs}",
            rec.expiration
        );
    }
    // The claim does compare `expiration`: an expired record is taken over (a key of its own
    // here, so the commands' records stay as the late duplicates will find them).
    let probe: IdempotencyKey = IntentKey::post("sagepro", "LB-d4probe-JE").into();
    let now_ms = SystemClock.now_millis();
    let req = ClaimRequest {
        key: probe.clone(),
        payload_hash: String::new(),
        now_ms,
        lease_ms: 10_000,
        expiration: now_ms / 1000,
    };
    assert_eq!(store.claim(&req).await.unwrap(), Claim::Acquired);
    store
        .complete(&probe, RecordStatus::Completed, Some("1".into()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = ClaimRequest {
        now_ms: SystemClock.now_millis(),
        ..req
    };
    assert_eq!(
        store.claim(&later).await.unwrap(),
        Claim::Acquired,
        "a completed record past its expiration is taken over"
    );

    // The late duplicates.
    let guard = &stage.poster.connector;
    let calls_before = guard.erp_calls.load(Ordering::SeqCst);
    send_all(&sqs, &q, &bodies, |_| String::new()).await;
    let late = esm
        .run(&sqs, &q, post_handler(stage.clone()), idle, deadline)
        .await;
    assert!(late.deleted.load(Ordering::SeqCst) >= MESSAGES);
    assert_eq!(
        guard.erp_calls.load(Ordering::SeqCst),
        calls_before,
        "the late duplicates were answered from the cross-reference: no ERP call at all"
    );
    assert_eq!(guard.created_twice(), vec![], "no second create call");
    for c in &commands {
        assert_eq!(guard.creates_of(c.reference()), 1, "{}", c.reference());
    }
    assert_each_once(&sb, ErpKind::SagePro, &commands);
    assert!(super::esm::drain(&sqs, &q.dlq_url).await.is_empty());
    assert!(super::esm::drain(&sqs, &parked).await.is_empty());
    sb.shutdown().await;
}
