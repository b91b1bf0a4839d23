//! Q2 — the handler dies mid-batch (here: after the ERP committed a document, before its
//! cross-reference and intent are recorded and before any delete). Only unfinished work is
//! redone, and redoing is idempotent.
//!
//! Figure: 10,000 messages at a 5 % crash rate → 10,000 effects exactly once, 0 in the DLQ.
//! The default run is **scaled to 1,000 messages** (`q2_…_scaled`; same 5 % rate, about 50
//! crashes): 10,000 take many minutes of the shared CI machine through moto, and the mechanism
//! does not depend on the count. The figure is `q2_…_at_figure`, ignored by default, fed to
//! the queue in waves of [`WAVE`]; run it with
//! `cargo test -p ledgerbridge-tests -- --ignored faults::q2`.

use super::esm::{queue_with_dlq, send_all, Esm};
use super::failpoints::CrashAfterCommit;
use super::{assert_each_once, journal, journal_messages, post_stage};
use crate::support::moto;
use ledgerbridge_adapters::lambda::process_batch;
use ledgerbridge_erp_sandbox::ErpKind;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

const MAX_RECEIVES: u32 = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q2_crashes_mid_batch_redo_only_unfinished_work_exactly_once_scaled() {
    crashes_mid_batch_redo_only_unfinished_work(1_000, Duration::from_secs(300)).await;
}

/// Commands on the queue at a time: moto's receive slows down with the queue's depth (about
/// one call a second with 10,000 messages waiting, so the figure sent at once did not finish
/// in an hour), where SQS's does not. The figure is fed in waves of this many, each drained
/// before the next is sent; the mechanism per message is the same.
const WAVE: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the figure itself: 10,000 messages in 10 waves, about 15 minutes on a shared 2-core machine; run with --ignored"]
async fn q2_crashes_mid_batch_redo_only_unfinished_work_exactly_once_at_figure() {
    crashes_mid_batch_redo_only_unfinished_work(10_000, Duration::from_secs(3_000)).await;
}

/// `messages` journal commands, 5 % of create calls crashing after the commit; the simulator
/// gives up after `deadline`.
async fn crashes_mid_batch_redo_only_unfinished_work(messages: usize, deadline: Duration) {
    let started = std::time::Instant::now();
    let sb = crate::pipeline::sandbox(ErpKind::SagePro).await;
    let conf = moto::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let connector = CrashAfterCommit::new(crate::pipeline::sagepro(&sb), 50, 2);
    // Lease 1 s: a dead worker's intent is taken over at the first redelivery (VT 5 s).
    let (stage, _, parked) = post_stage(
        connector,
        aws_sdk_dynamodb::Client::new(&conf),
        1_000,
        super::fast_policy(),
    )
    .await;
    let stage = Arc::new(stage);
    // A crash kills the whole invocation, so every record of that batch comes back, and a
    // record can share a batch with crashing records several times in a row (about 40 % of
    // fresh batches of 10 hold one at 5 %). The redrive limit is therefore 10 here, not the
    // deployed 5: this row is about redoing unfinished work exactly once, not about the limit
    // (Q3 tests the limit); with 5 a run reached 5 receives on a loaded machine.
    let q = queue_with_dlq(&sqs, &moto::unique("q2-commands"), MAX_RECEIVES, 5).await;
    let bodies = journal_messages(messages, "q2x");
    let esm = Esm {
        batch_size: 10,
        visibility_timeout_secs: 5,
        max_concurrency: 4,
        invocation_timeout: Duration::from_secs(4),
        ..Esm::default()
    };
    let (mut killed, mut delivered, mut max_receives) = (0, 0, None::<u32>);
    for (n, wave) in bodies.chunks(WAVE).enumerate() {
        send_all(&sqs, &q, wave, |_| String::new()).await;
        let s = stage.clone();
        let stats = esm
            .run(
                &sqs,
                &q,
                move |event| {
                    let stage = s.clone();
                    async move {
                        process_batch(event, 10, |body| {
                            let stage = stage.clone();
                            async move { stage.process(&body).await }
                        })
                        .await
                        .unwrap()
                    }
                },
                Duration::from_secs(12),
                deadline,
            )
            .await;
        killed += stats.timed_out.load(Ordering::SeqCst);
        delivered += stats.records_delivered.load(Ordering::SeqCst);
        max_receives =
            max_receives.max(stats.receive_counts.lock().unwrap().values().copied().max());
        if messages > WAVE {
            println!(
                "Q2: wave {n}: {} messages, {} crashes so far, at {:?}",
                wave.len(),
                stage.poster.connector.fired.load(Ordering::SeqCst),
                started.elapsed()
            );
        }
    }

    let commands: Vec<_> = (0..messages).map(|i| journal(&format!("q2x{i}"))).collect();
    assert_each_once(&sb, ErpKind::SagePro, &commands);
    let crashes = stage.poster.connector.fired.load(Ordering::SeqCst);
    assert!(crashes >= 20, "the fail-point fired {crashes} times");
    // Several records of one batch may die in the same invocation.
    assert!(
        killed >= 1 && killed <= crashes,
        "{killed} invocations killed for {crashes} crashes"
    );
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
        "nothing left"
    );
    println!(
        "Q2: {messages} messages, {crashes} crashes after the commit, {killed} invocations killed, {delivered} records delivered, at most {max_receives:?} receives of one message, in {:?}",
        started.elapsed()
    );
    assert!(
        max_receives.unwrap_or(0) < MAX_RECEIVES,
        "no message at the redrive limit: {max_receives:?}"
    );
    sb.shutdown().await;
}
