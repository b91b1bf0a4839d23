//! SQS batches with partial failures: each record is processed on its own (bounded
//! concurrency), inside its own tracing span carrying the message id; only the failed ones are
//! reported back for redelivery.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use futures::stream::{self, StreamExt};
pub use ledgerbridge_core::ports::RecordOutcome;
use std::future::Future;
use tracing::Instrument;

#[derive(Debug, thiserror::Error)]
#[error("a failed record has no message id, so the whole batch must be retried")]
pub struct UnidentifiedFailure;

/// Process every record with `f(body)`, at most `concurrency` at a time, and report failed
/// records as batch item failures. A record that failed and has no id fails the invocation
/// (never acknowledged silently).
///
/// Each record runs in a `sqs_record` span with its `message_id`, attached with
/// `.instrument(span)` (no span guard is held across an `.await`).
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
        .map(|record| {
            let id = record.message_id.clone();
            let span = tracing::info_span!("sqs_record", message_id = id.as_deref().unwrap_or(""));
            async move {
                let outcome = match record.body {
                    Some(body) => f(body).await,
                    None => RecordOutcome::Retry("record without body".into()),
                };
                (id, outcome)
            }
            .instrument(span)
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
