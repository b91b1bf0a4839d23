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
/// `.instrument(span)` (no span guard is held across an `.await`), and, when the invocation is
/// traced (`Tracing: Active`), becomes an X-Ray subsegment ([`crate::xray`]).
pub async fn process_batch<F, Fut>(
    event: SqsEvent,
    concurrency: usize,
    f: F,
) -> Result<SqsBatchResponse, UnidentifiedFailure>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = RecordOutcome>,
{
    let tracer = crate::xray::Tracer::from_env();
    process_batch_traced(event, concurrency, tracer.as_ref(), f).await
}

/// [`process_batch`] with the X-Ray tracer given (`None`: no subsegments).
pub async fn process_batch_traced<F, Fut>(
    event: SqsEvent,
    concurrency: usize,
    tracer: Option<&crate::xray::Tracer>,
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
                let start = crate::xray::now_secs();
                let event_id = match (tracer, &record.body) {
                    (Some(_), Some(body)) => crate::xray::event_id_of(body),
                    _ => None,
                };
                let outcome = async {
                    match record.body {
                        Some(body) => f(body).await,
                        None => RecordOutcome::Retry("record without body".into()),
                    }
                }
                .instrument(span)
                .await;
                if let Some(t) = tracer {
                    t.record(&crate::xray::RecordTrace {
                        start,
                        end: crate::xray::now_secs(),
                        message_id: id.clone(),
                        event_id,
                        error: matches!(outcome, RecordOutcome::Retry(_)),
                    });
                }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::xray::{TraceHeader, Tracer, DAEMON_HEADER};

    #[tokio::test]
    async fn each_record_is_a_subsegment_sent_to_the_daemon_without_its_body() {
        // GIVEN a stand-in X-Ray daemon on loopback and a sampled invocation
        let daemon = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        daemon
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let header = TraceHeader::parse(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        )
        .unwrap();
        let tracer = Tracer::new(daemon.local_addr().unwrap(), header).unwrap();
        let event: SqsEvent = serde_json::from_value(serde_json::json!({"Records": [
            {"messageId": "m-ok", "body": "{\"type\":\"erp_command.v1\",\"source\":{\"event_id\":\"evt_ok\"},\"card\":\"4242424242424242\"}"},
            {"messageId": "m-retry", "body": "{\"event_id\":\"evt_retry\",\"secret\":\"sk_live_x\"}"}
        ]}))
        .unwrap();

        // WHEN the batch is processed, the second record failing
        let response = process_batch_traced(event, 1, Some(&tracer), |body| async move {
            if body.contains("evt_retry") {
                RecordOutcome::Retry("ERP down".into())
            } else {
                RecordOutcome::Done
            }
        })
        .await
        .unwrap();
        assert_eq!(response.batch_item_failures.len(), 1);

        // THEN the daemon received one subsegment per record, in the documented format
        let mut docs = Vec::new();
        for _ in 0..2 {
            let mut buf = [0u8; 65_536];
            let n = daemon.recv(&mut buf).unwrap();
            let text = std::str::from_utf8(&buf[..n]).unwrap().to_owned();
            let doc = text
                .strip_prefix(DAEMON_HEADER)
                .expect("daemon header first");
            assert!(!doc.contains("4242") && !doc.contains("sk_live"), "{doc}");
            docs.push(serde_json::from_str::<serde_json::Value>(doc).unwrap());
        }
        docs.sort_by_key(|d| d["annotations"]["message_id"].as_str().unwrap().to_owned());
        let (ok, retry) = (&docs[0], &docs[1]);
        for d in &docs {
            assert_eq!(d["type"], "subsegment");
            assert_eq!(d["name"], "sqs_record");
            assert_eq!(d["trace_id"], "1-5759e988-bd862e3fe1be46a994272793");
            assert_eq!(d["parent_id"], "53995c3f42cd8ad8");
            let id = d["id"].as_str().unwrap();
            assert!(
                id.len() == 16 && id.chars().all(|c| c.is_ascii_hexdigit()),
                "{id}"
            );
            let (start, end) = (
                d["start_time"].as_f64().unwrap(),
                d["end_time"].as_f64().unwrap(),
            );
            assert!(start > 1.7e9 && end >= start, "{d}");
        }
        assert_ne!(ok["id"], retry["id"]);
        assert_eq!(ok["annotations"]["message_id"], "m-ok");
        assert_eq!(ok["annotations"]["event_id"], "evt_ok");
        assert_eq!(ok["error"], false);
        assert_eq!(retry["annotations"]["event_id"], "evt_retry");
        assert_eq!(retry["error"], true);
    }
}
