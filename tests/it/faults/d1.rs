//! D1 — DynamoDB throttling and 5xx on the lock write, the cross-reference or the final update.
//! Every DynamoDB call erp-post makes goes through the fault interceptor: 20 % are answered with
//! `ProvisionedThroughputExceededException` and 5 % with a 500, each *after* moto applied the
//! request (the harder case: the write happened, the answer says it did not). The SDK's own
//! retries (the deployment's defaults) and the queue's redelivery do the rest.
//!
//! Figure (at figure): 0 ERP calls without an acquired lock (every search and create is checked
//! against the intent record, read from the table by a client without faults, at the moment of
//! the call), 0 duplicates (ERP create calls per reference, and the sandbox's audit log), all
//! complete (nothing in the DLQ at the deployed `maxReceiveCount` of 5, nothing parked). The row
//! names no count: 300 commands.

use super::esm::{queue_with_dlq, send_all, Esm};
use super::guard::{post_handler, Guarded};
use super::interceptor::{FaultInterceptor, FaultPlan};
use super::{assert_each_once, journal, journal_messages, post_stage};
use crate::support::moto;
use ledgerbridge_adapters::aws::DynamoStore;
use ledgerbridge_erp_sandbox::ErpKind;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

const MESSAGES: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d1_throttling_and_5xx_on_every_dynamodb_call_lose_and_double_nothing() {
    let sb = crate::pipeline::sandbox(ErpKind::SagePro).await;
    let conf = moto::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&conf);
    // 5 % 500s are drawn first, then throttling on what is left: 211 ‰ of 95 % ≈ 20 %.
    let faults = FaultInterceptor::new(FaultPlan {
        error_500_per_mille: 50,
        throttle_per_mille: 211,
        seed: 18,
        ..FaultPlan::default()
    });
    let started = std::time::Instant::now();
    // A lease well above the time one message takes even on a loaded machine, and below the
    // visibility timeout (as the deployment's 120 s are below its 360 s).
    let (stage, table, parked) = post_stage(
        Guarded::new(crate::pipeline::sagepro(&sb)),
        faults.dynamodb(&conf),
        8_000,
        super::fast_policy(),
    )
    .await;
    stage
        .poster
        .connector
        .lock_store
        .set(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&conf),
            &table,
        ))
        .unwrap_or_else(|_| unreachable!("set once"));
    let stage = Arc::new(stage);
    let q = queue_with_dlq(&sqs, &moto::unique("d1-commands"), 5, 10).await;
    send_all(&sqs, &q, &journal_messages(MESSAGES, "d1x"), |_| {
        String::new()
    })
    .await;

    let esm = Esm {
        visibility_timeout_secs: 10,
        ..Esm::default()
    };
    let stats = esm
        .run(
            &sqs,
            &q,
            post_handler(stage.clone()),
            Duration::from_secs(12),
            Duration::from_secs(240),
        )
        .await;

    let guard = &stage.poster.connector;
    let c = &faults.counters;
    let (throttled, errors) = (
        c.throttled.load(Ordering::SeqCst),
        c.errors_500.load(Ordering::SeqCst),
    );
    let calls = c.calls.load(Ordering::SeqCst);
    eprintln!(
        "D1: {calls} DynamoDB calls, {throttled} throttled, {errors} × 500; {} ERP calls under the lock, {} after its lease lapsed; {} invocations, {} records delivered, {} reported failed; {:?}",
        guard.locked_calls.load(Ordering::SeqCst),
        guard.lapsed_calls.load(Ordering::SeqCst),
        stats.invocations.load(Ordering::SeqCst),
        stats.records_delivered.load(Ordering::SeqCst),
        stats.reported_failed.load(Ordering::SeqCst),
        started.elapsed(),
    );
    // The faults were there at about the rates asked for.
    assert!(
        throttled * 100 >= calls * 15,
        "{throttled} of {calls} throttled"
    );
    assert!(
        errors * 100 >= calls * 3,
        "{errors} of {calls} answered 500"
    );
    assert_eq!(
        guard.unlocked_calls.load(Ordering::SeqCst),
        0,
        "ERP calls without an acquired lock"
    );
    assert_eq!(
        guard.lapsed_calls.load(Ordering::SeqCst),
        0,
        "ERP calls after the lease lapsed"
    );
    assert!(guard.locked_calls.load(Ordering::SeqCst) >= 2 * MESSAGES);
    assert_eq!(guard.created_twice(), vec![], "create calls per reference");
    let commands: Vec<_> = (0..MESSAGES).map(|i| journal(&format!("d1x{i}"))).collect();
    for cmd in &commands {
        assert_eq!(guard.creates_of(cmd.reference()), 1, "{}", cmd.reference());
    }
    assert_each_once(&sb, ErpKind::SagePro, &commands);
    assert!(
        super::esm::drain(&sqs, &q.dlq_url).await.is_empty(),
        "nothing in the DLQ"
    );
    assert!(
        super::esm::drain(&sqs, &parked).await.is_empty(),
        "nothing parked"
    );
    assert!(
        super::esm::drain(&sqs, &q.url).await.is_empty(),
        "all complete"
    );
    sb.shutdown().await;
}

/// The lock write applied, its answer a 500 or a throttling error: the SDK resends the claim,
/// and the resend fails its condition on the claimant's own record. That claim is still the
/// claimant's — before, it was reported as "being posted by another worker", which cost the
/// message a receive and the intent's whole lease (120 s deployed) with nobody posting it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d1_a_claim_whose_answer_was_lost_after_the_write_is_still_acquired() {
    const KEYS: usize = 100;
    let conf = moto::sdk_config().await;
    let plain = aws_sdk_dynamodb::Client::new(&conf);
    let table = moto::unique("d1-claims");
    moto::create_state_table(&plain, &table).await;
    let faults = FaultInterceptor::new(FaultPlan {
        operations: vec!["PutItem".into()],
        error_500_per_mille: 250,
        throttle_per_mille: 334,
        seed: 7,
        ..FaultPlan::default()
    });
    // The SDK's standard retries (3 attempts), with a short backoff to keep the test quick.
    let ddb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&conf)
            .interceptor(faults.clone())
            .retry_config(
                aws_sdk_dynamodb::config::retry::RetryConfig::standard()
                    .with_initial_backoff(Duration::from_millis(10)),
            )
            .build(),
    );
    let store = DynamoStore::new(ddb, &table);
    let now_ms = ledgerbridge_core::Clock::now_millis(&ledgerbridge_core::SystemClock);
    let claims = futures::future::join_all((0..KEYS).map(|k| {
        let store = store.clone();
        async move {
            let key: ledgerbridge_core::ids::IdempotencyKey =
                ledgerbridge_core::keys::IntentKey::post("sagepro", format!("LB-d1c{k}-JE")).into();
            ledgerbridge_core::ports::IdempotencyStore::claim(
                &store,
                &ledgerbridge_core::ports::ClaimRequest {
                    key,
                    payload_hash: String::new(),
                    now_ms,
                    lease_ms: 120_000,
                    expiration: now_ms / 1000 + 86_400,
                },
            )
            .await
        }
    }))
    .await;
    let faulted = faults.counters.errors_500.load(Ordering::SeqCst)
        + faults.counters.throttled.load(Ordering::SeqCst);
    assert!(faulted >= KEYS / 3, "{faulted} answers replaced");
    let (mut acquired, mut failed) = (0, 0);
    for (k, c) in claims.into_iter().enumerate() {
        match c {
            Ok(ledgerbridge_core::ports::Claim::Acquired) => acquired += 1,
            // All three attempts' answers replaced (about 1 in 8): reported failed, retried by
            // the queue once the lease lapses.
            Err(_) => failed += 1,
            Ok(ledgerbridge_core::ports::Claim::Existing(rec)) => {
                panic!("key {k}: the claim took its own record for another worker's: {rec:?}")
            }
        }
    }
    assert_eq!(acquired + failed, KEYS);
    // Before the fix about 3 in 8 claims came back as `Existing` (a first answer replaced, a
    // later one not); now those are acquired.
    assert!(acquired >= KEYS * 3 / 4, "{acquired} of {KEYS} acquired");
}
