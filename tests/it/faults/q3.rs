//! Q3 — a poison message: one command whose ERP create fails every time (a transient error, so
//! erp-post never parks it and reports it failed on every receive). The other records of its
//! batches are not held back (standard queue, partial batch responses), and after
//! `maxReceiveCount` receives the queue's redrive policy moves the poison to the DLQ.
//!
//! Figure (at figure): 1,000 commands, one of them poison, `maxReceiveCount` = 5 (the lowest the
//! template allows for `ErpMaxReceiveCount`, whose default is 10) → the poison is in the DLQ
//! after exactly 5 receives (the simulator's receive count, and 5 × the in-process attempts of
//! create calls), 999/999 others posted once, and the alarm fires: the template's
//! `CommandsDeadLetterAlarm` reads the DLQ's `ApproximateNumberOfMessagesVisible` (Maximum over
//! 60 s, breaching above 0); the test reads the same depth from the queue (0 before, 1 after)
//! and evaluates that alarm's threshold and comparison, taken from the template, against it.

use super::esm::{queue_with_dlq, send_all, Esm};
use super::guard::{post_handler, Guarded};
use super::{assert_each_once, journal, journal_messages, post_stage};
use crate::support::moto;
use aws_sdk_sqs::types::QueueAttributeName;
use ledgerbridge_erp_sandbox::ErpKind;
use std::sync::Arc;
use std::time::Duration;

const MESSAGES: usize = 1_000;
const POISON: usize = 500;
const MAX_RECEIVES: u32 = 5;

/// The commands DLQ alarm in the template: (metric, threshold), checked to breach above it.
fn dlq_alarm() -> (String, i64) {
    let yaml = std::fs::read_to_string(moto::repo_root().join("infra/template.yaml")).unwrap();
    let start = yaml
        .find("\n  CommandsDeadLetterAlarm:\n")
        .expect("the commands DLQ alarm");
    let block: Vec<&str> = yaml[start + 1..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("    "))
        .map(str::trim)
        .collect();
    let field = |name: &str| {
        block
            .iter()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("{name} in {block:?}"))
            .to_owned()
    };
    assert_eq!(field("Namespace:"), "AWS/SQS");
    assert!(
        field("Dimensions:").contains("!GetAtt CommandsDeadLetterQueue.QueueName"),
        "the alarm watches the commands DLQ"
    );
    assert_eq!(field("ComparisonOperator:"), "GreaterThanThreshold");
    (field("MetricName:"), field("Threshold:").parse().unwrap())
}

async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> i64 {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap()
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q3_a_poison_message_reaches_the_dlq_after_five_receives_and_the_rest_complete() {
    let (metric, threshold) = dlq_alarm();
    // SQS's ApproximateNumberOfMessages is what CloudWatch publishes as this metric.
    assert_eq!(metric, "ApproximateNumberOfMessagesVisible");
    let sb = crate::pipeline::sandbox(ErpKind::SagePro).await;
    let conf = moto::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let poison = journal(&format!("q3x{POISON}"));
    let mut connector = Guarded::new(crate::pipeline::sagepro(&sb));
    connector.poison.insert(poison.reference().full());
    let policy = super::fast_policy();
    let attempts = policy.max_attempts as usize;
    let (stage, _, parked) = post_stage(
        connector,
        aws_sdk_dynamodb::Client::new(&conf),
        10_000,
        policy,
    )
    .await;
    let stage = Arc::new(stage);
    let q = queue_with_dlq(&sqs, &moto::unique("q3-commands"), MAX_RECEIVES, 2).await;
    let bodies = journal_messages(MESSAGES, "q3x");
    send_all(&sqs, &q, &bodies, |_| String::new()).await;
    assert!(
        depth(&sqs, &q.dlq_url).await <= threshold,
        "no alarm before"
    );

    let stats = Esm::default()
        .run(
            &sqs,
            &q,
            post_handler(stage.clone()),
            Duration::from_secs(5),
            Duration::from_secs(180),
        )
        .await;

    let dlq_depth = depth(&sqs, &q.dlq_url).await;
    assert_eq!(dlq_depth, 1, "the poison, alone, in the DLQ");
    assert!(dlq_depth > threshold, "the DLQ alarm fires");
    let counts = stats.receive_counts.lock().unwrap().clone();
    let at_limit: Vec<u32> = counts
        .values()
        .copied()
        .filter(|c| *c >= MAX_RECEIVES)
        .collect();
    assert_eq!(
        at_limit,
        vec![MAX_RECEIVES],
        "one message, received exactly 5 times"
    );
    let guard = &stage.poster.connector;
    assert_eq!(
        guard.creates_of(poison.reference()),
        MAX_RECEIVES as usize * attempts,
        "5 receives × {attempts} attempts each"
    );
    assert_eq!(
        super::esm::drain(&sqs, &q.dlq_url).await,
        vec![bodies[POISON].clone()]
    );
    let others: Vec<_> = (0..MESSAGES)
        .filter(|i| *i != POISON)
        .map(|i| journal(&format!("q3x{i}")))
        .collect();
    assert_eq!(others.len(), 999);
    for c in &others {
        assert_eq!(guard.creates_of(c.reference()), 1, "{}", c.reference());
    }
    assert_each_once(&sb, ErpKind::SagePro, &others);
    assert!(
        super::esm::drain(&sqs, &parked).await.is_empty(),
        "nothing parked"
    );
    assert!(
        super::esm::drain(&sqs, &q.url).await.is_empty(),
        "nothing left"
    );
    sb.shutdown().await;
}
