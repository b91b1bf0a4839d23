//! D3 — the worker is killed after the ERP committed a document and before anything else: no
//! cross-reference, the intent left `INPROGRESS`, the message not deleted. Once the intent's
//! lease has lapsed, the redelivered message takes the intent over, finds the document by its
//! reference, records the cross-reference, and creates nothing.
//!
//! Figure: the fail-point fires at 100 % (every create call of the run — so a retry that
//! created again would hang and never complete); 1,000 messages → 1,000 documents, 0
//! duplicates, every message resolved within 2 retries (the document found and cross-referenced
//! by the first or second retry; later receives, when a batch-mate's crash killed the batch,
//! make no ERP call). The default run is **scaled to 300 messages** (`d3_…_scaled`); the
//! rate, the kill and the retry bound are the row's. The figure, 1,000 messages, is
//! `d3_…_at_figure`, ignored by default (see [`SCALED`]); run it with
//! `cargo test -p ledgerbridge-tests -- --ignored faults::d3`.
//!
//! Remaining time = 0 (Powertools #4759: the remaining time read 0 near the hard kill, no
//! `in_progress_expiration` was written, and the record blocked every retry): erp-post does not
//! read the invocation's remaining time at all. The lease is `LEDGERBRIDGE_LEASE_MS` from the
//! claim, so every intent carries its takeover time whatever the remaining time was.
//! [`d3_a_worker_killed_with_no_time_left_leaves_an_intent_with_its_takeover_time`] kills the
//! worker at the instant the ERP commits (no time left at all) and checks the stuck records.

use super::esm::{queue_with_dlq, send_all, Esm};
use super::failpoints::{CrashAfterCommit, Invocation, INVOCATION};
use super::guard::Guarded;
use super::{assert_each_once, journal, journal_messages, post_stage};
use crate::support::moto;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use ledgerbridge_adapters::aws::DynamoStore;
use ledgerbridge_adapters::lambda::process_batch;
use ledgerbridge_core::ids::IdempotencyKey;
use ledgerbridge_core::keys::IntentKey;
use ledgerbridge_core::ports::{IdempotencyStore, RecordOutcome, RecordStatus, XrefStore};
use ledgerbridge_core::{Clock, SystemClock};
use ledgerbridge_erp_sandbox::ErpKind;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// The default run's count, scaled from the row's 1,000: every message is received at least
/// twice (about ten moto calls each), so the figure takes minutes of the shared 2-core machine.
const SCALED: usize = 300;
const LEASE_MS: i64 = 2_000;

type Stage = super::MotoPostStage<Guarded<CrashAfterCommit<ledgerbridge_erp::AnyConnector>>>;

/// erp-post's batch handler, killed the moment every record of the batch has finished or died
/// at the fail-point: the invocation then reports every record failed, so nothing is deleted
/// and the whole batch comes back after the visibility timeout — what Lambda's kill does,
/// without waiting out an invocation timeout per crash.
fn dying_handler(
    stage: Arc<Stage>,
) -> impl Fn(SqsEvent) -> Pin<Box<dyn Future<Output = SqsBatchResponse> + Send>> + Send + Sync + 'static
{
    move |event: SqsEvent| {
        let stage = stage.clone();
        Box::pin(async move {
            let ids: Vec<String> = event
                .records
                .iter()
                .filter_map(|r| r.message_id.clone())
                .collect();
            let inv = Arc::new(Invocation::default());
            let done = Arc::new(AtomicUsize::new(0));
            let batch = {
                let done = done.clone();
                process_batch(event, 10, move |body| {
                    let (stage, done) = (stage.clone(), done.clone());
                    async move {
                        let out = stage.process(&body).await;
                        done.fetch_add(1, Ordering::SeqCst);
                        out
                    }
                })
            };
            let killed = {
                let inv = inv.clone();
                async move {
                    loop {
                        let crashed = inv.crashed.load(Ordering::SeqCst);
                        if crashed > 0 && crashed + done.load(Ordering::SeqCst) >= ids.len() {
                            return ids;
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            };
            INVOCATION
                .scope(inv, async move {
                    tokio::select! {
                        r = batch => r.unwrap(),
                        ids = killed => {
                            let mut resp = SqsBatchResponse::default();
                            for id in ids {
                                let mut f = BatchItemFailure::default();
                                f.item_identifier = id;
                                resp.batch_item_failures.push(f);
                            }
                            resp
                        }
                    }
                })
                .await
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d3_killed_after_every_first_commit_every_document_once_within_two_retries_scaled() {
    killed_after_every_first_commit(SCALED, Duration::from_secs(240)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the figure itself: 1,000 messages, minutes on a shared 2-core machine; run with --ignored"]
async fn d3_killed_after_every_first_commit_every_document_once_within_two_retries_at_figure() {
    killed_after_every_first_commit(1_000, Duration::from_secs(900)).await;
}

/// `messages` commands, every first create killed after the commit; the simulator gives up
/// after `deadline`.
async fn killed_after_every_first_commit(messages: usize, deadline: Duration) {
    let sb = crate::pipeline::sandbox(ErpKind::SagePro).await;
    // Four pollers on one redriven queue for a minute or more: plain moto's receive fails now
    // and then under that (see `atomic_moto`).
    let conf = super::atomic_moto::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let connector = Guarded::new(CrashAfterCommit::new(
        crate::pipeline::sagepro(&sb),
        1000,
        3,
    ));
    // The lease (2 s) is well below the visibility timeout (8 s, so a slow first attempt on a
    // loaded machine is not redelivered while it runs): the redelivery finds the lease lapsed
    // (the deployment's lease, 120 s, is likewise below its 360 s visibility timeout).
    let (stage, _, parked) = post_stage(
        connector,
        aws_sdk_dynamodb::Client::new(&conf),
        LEASE_MS,
        super::fast_policy(),
    )
    .await;
    let stage = Arc::new(stage);
    // Every first attempt kills its whole batch, so a message that shares batches with first
    // attempts loses its acknowledgement more than once (as in Q2): redrive limit 10 here.
    let q = queue_with_dlq(&sqs, &moto::unique("d3-commands"), 10, 8).await;
    send_all(&sqs, &q, &journal_messages(messages, "d3x"), |_| {
        String::new()
    })
    .await;

    let started = std::time::Instant::now();
    let esm = Esm {
        batch_size: 10,
        visibility_timeout_secs: 8,
        max_concurrency: 4,
        // A safety net only: the handler ends an invocation as soon as its batch has died.
        invocation_timeout: Duration::from_secs(20),
        ..Esm::default()
    };
    let stats = esm
        .run(
            &sqs,
            &q,
            dying_handler(stage.clone()),
            Duration::from_secs(10),
            deadline,
        )
        .await;

    let guard = &stage.poster.connector;
    let crashes = guard.inner.fired.load(Ordering::SeqCst);
    assert_eq!(
        crashes, messages,
        "every message's first attempt was killed"
    );
    assert_eq!(guard.created_twice(), vec![], "create calls per reference");
    let commands: Vec<_> = (0..messages).map(|i| journal(&format!("d3x{i}"))).collect();
    for c in &commands {
        assert_eq!(guard.creates_of(c.reference()), 1, "{}", c.reference());
    }
    assert_each_once(&sb, ErpKind::SagePro, &commands);
    assert_eq!(
        stats.timed_out.load(Ordering::SeqCst),
        0,
        "no invocation needed the timeout"
    );
    assert!(stats.reported_failed.load(Ordering::SeqCst) >= messages);
    let counts = stats.receive_counts.lock().unwrap().clone();
    let mut histogram = std::collections::BTreeMap::<u32, usize>::new();
    for c in counts.values() {
        *histogram.entry(*c).or_default() += 1;
    }
    eprintln!(
        "D3: {messages} messages in {:?}, {} invocations, {} records delivered, {} reported failed; receives per message: {histogram:?}",
        started.elapsed(),
        stats.invocations.load(Ordering::SeqCst),
        stats.records_delivered.load(Ordering::SeqCst),
        stats.reported_failed.load(Ordering::SeqCst),
    );
    assert_eq!(counts.len(), messages);
    // Resolved within 2 retries: the poster's work (a search by reference) ran at most three
    // times per message — the first attempt, killed, and the retry that found the document and
    // recorded its cross-reference. A message whose retry finished in a batch killed by a
    // batch-mate's crash is received once more, as under Lambda, and answered from the
    // cross-reference without any ERP call.
    let searches = guard.searches.lock().unwrap().clone();
    for c in &commands {
        let n = searches.get(&c.reference().full()).copied().unwrap_or(0);
        assert!(
            (2..=3).contains(&n),
            "{}: resolved within 2 retries, searched {n} times",
            c.reference()
        );
    }
    assert!(
        super::esm::drain(&sqs, &q.dlq_url).await.is_empty(),
        "nothing in the DLQ"
    );
    // The parked queue is on the shared moto (`post_stage`).
    let shared_sqs = aws_sdk_sqs::Client::new(&moto::sdk_config().await);
    assert!(
        super::esm::drain(&shared_sqs, &parked).await.is_empty(),
        "nothing parked"
    );
    assert!(
        super::esm::drain(&sqs, &q.url).await.is_empty(),
        "nothing left"
    );
    // Every intent ended COMPLETED and every document is cross-referenced.
    let store = &stage.poster.store;
    for c in &commands {
        let key: IdempotencyKey = IntentKey::post("sagepro", c.reference()).into();
        let rec = store.get(&key).await.unwrap().expect("intent record");
        assert_eq!(rec.status, RecordStatus::Completed, "{}", c.reference());
        assert!(store
            .get_xref(c.reference().stripe_id(), c.kind().as_str())
            .await
            .unwrap()
            .is_some());
    }
    sb.shutdown().await;
}

/// Killed with no time left: the invocation is dropped at the instant the ERP commits. Every
/// intent it leaves is `INPROGRESS` with `in_progress_expiration` = claim time + lease (never
/// missing, never 0), so after the lease a retry takes it over — once, without creating.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d3_a_worker_killed_with_no_time_left_leaves_an_intent_with_its_takeover_time() {
    const N: usize = 50;
    let sb = crate::pipeline::sandbox(ErpKind::SagePro).await;
    let conf = moto::sdk_config().await;
    let connector = Guarded::new(CrashAfterCommit::new(
        crate::pipeline::sagepro(&sb),
        1000,
        5,
    ));
    let (stage, table, parked) = post_stage(
        connector,
        aws_sdk_dynamodb::Client::new(&conf),
        LEASE_MS,
        super::fast_policy(),
    )
    .await;
    let bodies = journal_messages(N, "d3z");
    let raw = DynamoStore::new(aws_sdk_dynamodb::Client::new(&conf), &table);
    // The kill: each worker's future is dropped once it stops making progress, which it does
    // right after the ERP's commit (the fail-point never returns).
    let before = SystemClock.now_millis();
    let killed = futures::future::join_all(
        bodies
            .iter()
            .map(|body| tokio::time::timeout(Duration::from_secs(5), stage.process(body))),
    )
    .await;
    let after = SystemClock.now_millis();
    assert!(killed.iter().all(Result::is_err), "no worker finished");
    assert_eq!(
        stage.poster.connector.inner.fired.load(Ordering::SeqCst),
        N,
        "every worker was killed right after its ERP commit"
    );
    for i in 0..N {
        let c = journal(&format!("d3z{i}"));
        let key: IdempotencyKey = IntentKey::post("sagepro", c.reference()).into();
        let rec = raw.get(&key).await.unwrap().expect("the intent is stored");
        assert_eq!(rec.status, RecordStatus::InProgress);
        assert!(
            rec.in_progress_expiration >= before + LEASE_MS
                && rec.in_progress_expiration <= after + LEASE_MS,
            "takeover time = claim + lease: {} not in [{}, {}]",
            rec.in_progress_expiration,
            before + LEASE_MS,
            after + LEASE_MS
        );
    }
    tokio::time::sleep(Duration::from_millis(LEASE_MS as u64 + 200)).await;
    for (i, body) in bodies.iter().enumerate() {
        let Ok(out) = tokio::time::timeout(Duration::from_secs(60), stage.process(body)).await
        else {
            let g = &stage.poster.connector;
            panic!(
                "retry {i} hung: {} fail-point hits, {} ERP calls, twice {:?}",
                g.inner.fired.load(Ordering::SeqCst),
                g.erp_calls.load(Ordering::SeqCst),
                g.created_twice()
            );
        };
        assert_eq!(out, RecordOutcome::Done, "retry {i}");
    }
    let guard = &stage.poster.connector;
    assert_eq!(
        guard.inner.fired.load(Ordering::SeqCst),
        N,
        "no retry created"
    );
    assert_eq!(guard.created_twice(), vec![]);
    let commands: Vec<_> = (0..N).map(|i| journal(&format!("d3z{i}"))).collect();
    assert_each_once(&sb, ErpKind::SagePro, &commands);
    let sqs = aws_sdk_sqs::Client::new(&conf);
    assert!(super::esm::drain(&sqs, &parked).await.is_empty());
    sb.shutdown().await;
}
