//! SQS batches with partial failures: each record is processed on its own (bounded
//! concurrency); only the failed ones are reported back for redelivery.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use futures::stream::{self, StreamExt};
use std::future::Future;

/// What happened to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    Done,
    /// Redeliver later (the queue's visibility timeout and redrive policy apply).
    Retry(String),
}

#[derive(Debug, thiserror::Error)]
#[error("a failed record has no message id, so the whole batch must be retried")]
pub struct UnidentifiedFailure;

/// Process every record with `f(body)`, at most `concurrency` at a time, and report failed
/// records as batch item failures. A record that failed and has no id fails the invocation
/// (never acknowledged silently).
pub async fn process_batch<F, Fut>(
    event: SqsEvent,
    concurrency: usize,
    f: F,
) -> Result<SqsBatchResponse, UnidentifiedFailure>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = RecordOutcome>,
{
    let f = &f;
    let results: Vec<(Option<String>, RecordOutcome)> = stream::iter(event.records)
        .map(|record| async move {
            let id = record.message_id.clone();
            let outcome = match record.body {
                Some(body) => f(body).await,
                None => RecordOutcome::Retry("record without body".into()),
            };
            (id, outcome)
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut response = SqsBatchResponse::default();
    for (id, outcome) in results {
        if let RecordOutcome::Retry(reason) = outcome {
            let Some(id) = id else {
                return Err(UnidentifiedFailure);
            };
            tracing::warn!(message_id = %id, reason = %reason, "Record will be redelivered");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    Ok(response)
}
