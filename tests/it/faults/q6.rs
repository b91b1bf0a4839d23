//! Q6 — a DLQ redriven back to its source with a mixed set: some messages were fully done
//! before they reached the DLQ (document and cross-reference), some half done (the ERP
//! committed, nothing else was recorded), some not started. moto has no
//! `StartMessageMoveTask`, so the redrive is the receive → send → delete loop the operator
//! guide describes. Figure (at figure): 1,000 redriven → 1,000 effects, 0 duplicates.

use super::esm::{queue_with_dlq, send_all, Esm};
use super::{assert_each_once, journal, journal_messages, post_stage};
use crate::support::moto;
use ledgerbridge_adapters::lambda::process_batch;
use ledgerbridge_erp::ErpConnector;
use ledgerbridge_erp_sandbox::ErpKind;
use std::sync::Arc;
use std::time::Duration;

const MESSAGES: usize = 1_000;

/// Move everything from `from` to `to` (receive, send, delete), as the operator's redrive does.
async fn redrive(sqs: &aws_sdk_sqs::Client, from: &str, to: &str) -> usize {
    let mut moved = 0;
    loop {
        let got = sqs
            .receive_message()
            .queue_url(from)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        if got.messages().is_empty() {
            return moved;
        }
        for m in got.messages() {
            sqs.send_message()
                .queue_url(to)
                .message_body(m.body().unwrap())
                .send()
                .await
                .unwrap();
            sqs.delete_message()
                .queue_url(from)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
            moved += 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q6_a_redriven_mixed_dlq_completes_without_duplicates() {
    let sb = crate::pipeline::sandbox(ErpKind::SagePro).await;
    let conf = moto::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let (stage, _, parked) = post_stage(
        crate::pipeline::sagepro(&sb),
        aws_sdk_dynamodb::Client::new(&conf),
        10_000,
        super::fast_policy(),
    )
    .await;
    let stage = Arc::new(stage);
    let q = queue_with_dlq(&sqs, &moto::unique("q6-commands"), 5, 2).await;
    let bodies = journal_messages(MESSAGES, "q6x");
    // Before the redrive: a third fully done, a third half done (ERP only), a third untouched.
    for (i, body) in bodies.iter().enumerate() {
        match i % 3 {
            0 => assert_eq!(
                stage.process(body).await,
                ledgerbridge_adapters::lambda::RecordOutcome::Done
            ),
            1 => {
                stage
                    .poster
                    .connector
                    .create(&journal(&format!("q6x{i}")))
                    .await
                    .unwrap();
            }
            _ => {}
        }
    }
    let dlq = super::esm::RedrivenQueue {
        url: q.dlq_url.clone(),
        arn: String::new(),
        dlq_url: String::new(),
        fifo: false,
    };
    send_all(&sqs, &dlq, &bodies, |_| String::new()).await;
    assert_eq!(redrive(&sqs, &q.dlq_url, &q.url).await, MESSAGES);

    let s = stage.clone();
    let stats = Esm::default()
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
            Duration::from_secs(4),
            Duration::from_secs(240),
        )
        .await;
    // A message whose handling outlived its visibility timeout is handled (idempotently) and
    // deleted twice; every one is deleted at least once.
    assert!(
        stats.deleted.load(std::sync::atomic::Ordering::SeqCst) >= MESSAGES,
        "every redriven message completed"
    );
    let commands: Vec<_> = (0..MESSAGES).map(|i| journal(&format!("q6x{i}"))).collect();
    assert_each_once(&sb, ErpKind::SagePro, &commands);
    assert!(super::esm::drain(&sqs, &q.dlq_url).await.is_empty());
    assert!(super::esm::drain(&sqs, &parked).await.is_empty());
    sb.shutdown().await;
}
