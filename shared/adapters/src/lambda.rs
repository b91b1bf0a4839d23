//! SQS batches with partial failures: each record is processed on its own (bounded
//! concurrency), inside its own tracing span carrying the message id; only the failed ones are
//! reported back for redelivery.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
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
/// Records of a FIFO queue (those with a `MessageGroupId` attribute) are processed one after
/// the other within their group, in order; after the first failure in a group the later
/// records of that group are not processed and are reported failed too, so the group's order
/// survives the redelivery (RELIABILITY Q5). Other groups carry on.
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
    // Each unit is processed in order; a FIFO group is one unit, any other record its own.
    let mut units: Vec<Vec<SqsMessage>> = Vec::new();
    let mut group_unit: std::collections::HashMap<String, usize> = Default::default();
    for record in event.records {
        match record.attributes.get("MessageGroupId").cloned() {
            Some(group) => match group_unit.get(&group) {
                Some(&i) => units[i].push(record),
                None => {
                    group_unit.insert(group, units.len());
                    units.push(vec![record]);
                }
            },
            None => units.push(vec![record]),
        }
    }
    let results: Vec<Vec<(Option<String>, RecordOutcome)>> = stream::iter(units)
        .map(|unit| async move {
            let mut out = Vec::with_capacity(unit.len());
            let mut failed = false;
            for record in unit {
                let id = record.message_id.clone();
                if failed {
                    out.push((
                        id,
                        RecordOutcome::Retry("an earlier message of its FIFO group failed".into()),
                    ));
                    continue;
                }
                let span =
                    tracing::info_span!("sqs_record", message_id = id.as_deref().unwrap_or(""));
                let outcome = async {
                    match record.body {
                        Some(body) => f(body).await,
                        None => RecordOutcome::Retry("record without body".into()),
                    }
                }
                .instrument(span)
                .await;
                failed = matches!(outcome, RecordOutcome::Retry(_));
                out.push((id, outcome));
            }
            out
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut response = SqsBatchResponse::default();
    for (id, outcome) in results.into_iter().flatten() {
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
