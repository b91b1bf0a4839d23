//! An SQS event-source-mapping simulator over moto (RELIABILITY A6's rig): polls
//! `ReceiveMessage` (batch size ≤ 10, a visibility timeout), invokes a handler in-process with
//! a Lambda SQS event, honours `batchItemFailures`, deletes what succeeded, and leaves the rest
//! to come back after the visibility timeout — where moto's redrive policy moves a message to
//! the DLQ after `maxReceiveCount` receives. An invocation that exceeds its timeout is killed
//! (dropped mid-flight: nothing is deleted), as Lambda does.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A queue with a DLQ and a redrive policy, created on moto.
pub struct RedrivenQueue {
    pub url: String,
    pub arn: String,
    pub dlq_url: String,
    pub fifo: bool,
}

/// Create `name` (FIFO when it ends in `.fifo`) with a DLQ after `max_receive_count` receives.
pub async fn queue_with_dlq(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    max_receive_count: u32,
    visibility_timeout_secs: u32,
) -> RedrivenQueue {
    let fifo = name.ends_with(".fifo");
    let dlq_name = if fifo {
        format!("{}-dlq.fifo", name.trim_end_matches(".fifo"))
    } else {
        format!("{name}-dlq")
    };
    let mut dlq = sqs.create_queue().queue_name(&dlq_name);
    if fifo {
        dlq = dlq.attributes(QueueAttributeName::FifoQueue, "true");
    }
    let dlq_url = dlq.send().await.unwrap().queue_url().unwrap().to_owned();
    let dlq_arn = arn_of(sqs, &dlq_url).await;
    let mut q = sqs
        .create_queue()
        .queue_name(name)
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility_timeout_secs.to_string(),
        )
        .attributes(
            QueueAttributeName::RedrivePolicy,
            serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count})
                .to_string(),
        );
    if fifo {
        q = q.attributes(QueueAttributeName::FifoQueue, "true");
    }
    let url = q.send().await.unwrap().queue_url().unwrap().to_owned();
    let arn = arn_of(sqs, &url).await;
    RedrivenQueue {
        url,
        arn,
        dlq_url,
        fifo,
    }
}

async fn arn_of(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .unwrap()
}

/// Send bodies in batches of 10 (FIFO: `group_of(i)` names the group, dedup by index).
pub async fn send_all(
    sqs: &aws_sdk_sqs::Client,
    q: &RedrivenQueue,
    bodies: &[String],
    group_of: impl Fn(usize) -> String,
) {
    use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
    if q.fifo {
        // One by one, so the emulator's sequence is the send order.
        for (i, b) in bodies.iter().enumerate() {
            sqs.send_message()
                .queue_url(&q.url)
                .message_body(b)
                .message_group_id(group_of(i))
                .message_deduplication_id(format!("d{i}"))
                .message_attributes(
                    "lb_seq",
                    aws_sdk_sqs::types::MessageAttributeValue::builder()
                        .data_type("Number")
                        .string_value(i.to_string())
                        .build()
                        .unwrap(),
                )
                .send()
                .await
                .unwrap();
        }
        return;
    }
    for (chunk_no, chunk) in bodies.chunks(10).enumerate() {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(j, b)| {
                let i = chunk_no * 10 + j;
                let mut e = SendMessageBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .message_body(b);
                if q.fifo {
                    e = e
                        .message_group_id(group_of(i))
                        .message_deduplication_id(format!("d{i}"));
                }
                e.build().unwrap()
            })
            .collect::<Vec<_>>();
        let out = sqs
            .send_message_batch()
            .queue_url(&q.url)
            .set_entries(Some(entries))
            .send()
            .await
            .unwrap();
        assert!(out.failed().is_empty(), "{:?}", out.failed());
    }
}

/// The simulated event source mapping.
#[derive(Debug, Clone)]
pub struct Esm {
    pub batch_size: i32,
    pub visibility_timeout_secs: i32,
    /// Invocations running at once (`ScalingConfig.MaximumConcurrency`).
    pub max_concurrency: usize,
    /// Lambda's timeout: an invocation still running after it is dropped (nothing deleted).
    pub invocation_timeout: Duration,
    /// Fail-point "after the handler succeeded, before the delete": the share (per mille) of
    /// finished invocations whose deletes are skipped, as if the poller died.
    pub skip_delete_per_mille: u32,
    /// Wait between empty receives.
    pub poll_interval: Duration,
}

impl Default for Esm {
    fn default() -> Self {
        Esm {
            batch_size: 10,
            visibility_timeout_secs: 2,
            max_concurrency: 4,
            invocation_timeout: Duration::from_secs(30),
            skip_delete_per_mille: 0,
            poll_interval: Duration::from_millis(50),
        }
    }
}

/// What the simulator saw.
#[derive(Debug, Default)]
pub struct EsmStats {
    pub invocations: AtomicUsize,
    pub records_delivered: AtomicUsize,
    pub deleted: AtomicUsize,
    pub reported_failed: AtomicUsize,
    pub timed_out: AtomicUsize,
    pub deletes_skipped: AtomicUsize,
    pub delete_failed: AtomicUsize,
    /// Largest `ApproximateReceiveCount` seen per message id.
    pub receive_counts: std::sync::Mutex<HashMap<String, u32>>,
    /// Times each message id was handed to the handler.
    pub deliveries: std::sync::Mutex<HashMap<String, u32>>,
    /// Messages received while the same message was still being handled by another worker of
    /// this run (the queue handed one message out twice at once; on SQS only after its
    /// visibility timeout).
    pub handed_out_while_in_flight: AtomicUsize,
}

impl Esm {
    /// Poll `q` and invoke `handler` until `deadline` passed or each worker has received
    /// nothing for `idle`, counted from the end of its last batch (so a batch slower than
    /// `idle` does not end its worker; messages reported failed or left undeleted come back
    /// after the visibility timeout, so `idle` must exceed it for the run to see them again).
    /// Returns the statistics.
    pub async fn run<H, Fut>(
        &self,
        sqs: &aws_sdk_sqs::Client,
        q: &RedrivenQueue,
        handler: H,
        idle: Duration,
        deadline: Duration,
    ) -> Arc<EsmStats>
    where
        H: Fn(SqsEvent) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = SqsBatchResponse> + Send + 'static,
    {
        let stats = Arc::new(EsmStats::default());
        let handler = Arc::new(handler);
        // FIFO: message ids reported failed, per group, not yet received again. moto does not
        // hold a group back while one of its messages is in flight, as SQS does; the simulator
        // does, by handing such messages back for another visibility timeout.
        let blocked: Arc<std::sync::Mutex<HashMap<String, std::collections::HashSet<String>>>> =
            Arc::default();
        // Message ids being handled by a worker of this run right now.
        let in_flight: Arc<std::sync::Mutex<std::collections::HashSet<String>>> = Arc::default();
        let started = Instant::now();
        let workers = (0..self.max_concurrency.max(1)).map(|w| {
            let sqs = sqs.clone();
            let url = q.url.clone();
            let arn = q.arn.clone();
            let handler = handler.clone();
            let stats = stats.clone();
            let esm = self.clone();
            let blocked = blocked.clone();
            let in_flight = in_flight.clone();
            async move {
                let mut last_seen = Instant::now();
                let mut rolls = w as u64 * 7919 + 17;
                while started.elapsed() < deadline && last_seen.elapsed() < idle {
                    let resp = sqs
                        .receive_message()
                        .queue_url(&url)
                        .max_number_of_messages(esm.batch_size)
                        .visibility_timeout(esm.visibility_timeout_secs)
                        .message_system_attribute_names(MessageSystemAttributeName::All)
                        .message_attribute_names("All")
                        .send()
                        .await
                        .unwrap();
                    let mut msgs = resp.messages().to_vec();
                    // moto hands a FIFO group out in no particular order; SQS keeps the send
                    // order, which `send_all` stamps on each FIFO message (`lb_seq`).
                    msgs.sort_by_key(|m| {
                        m.message_attributes()
                            .and_then(|a| a.get("lb_seq"))
                            .and_then(|v| v.string_value())
                            .and_then(|n| n.parse::<u64>().ok())
                            .unwrap_or(0)
                    });
                    if msgs.is_empty() {
                        tokio::time::sleep(esm.poll_interval).await;
                        continue;
                    }
                    last_seen = Instant::now();
                    let mut event = SqsEvent::default();
                    let mut handles = HashMap::new();
                    let mut groups = HashMap::new();
                    let mut held_back = Vec::new();
                    let msgs: Vec<_> = {
                        let mut blocked = blocked.lock().unwrap();
                        msgs.into_iter()
                            .filter(|m| {
                                let group = m
                                    .attributes()
                                    .and_then(|a| {
                                        a.get(&MessageSystemAttributeName::MessageGroupId)
                                    })
                                    .cloned();
                                let Some(group) = group else { return true };
                                let id = m.message_id().unwrap_or_default().to_owned();
                                let waiting = blocked.entry(group.clone()).or_default();
                                if waiting.remove(&id) || waiting.is_empty() {
                                    groups.insert(id, group);
                                    true
                                } else {
                                    held_back
                                        .push(m.receipt_handle().unwrap_or_default().to_owned());
                                    false
                                }
                            })
                            .collect()
                    };
                    for handle in held_back {
                        sqs.change_message_visibility()
                            .queue_url(&url)
                            .receipt_handle(handle)
                            .visibility_timeout(esm.visibility_timeout_secs)
                            .send()
                            .await
                            .unwrap();
                    }
                    if msgs.is_empty() {
                        continue;
                    }
                    for m in &msgs {
                        let mut r = SqsMessage::default();
                        r.message_id = m.message_id().map(str::to_owned);
                        r.receipt_handle = m.receipt_handle().map(str::to_owned);
                        r.body = m.body().map(str::to_owned);
                        r.event_source = Some("aws:sqs".into());
                        r.event_source_arn = Some(arn.clone());
                        if let Some(attrs) = m.attributes() {
                            for (k, v) in attrs {
                                r.attributes.insert(k.as_str().to_owned(), v.clone());
                            }
                        }
                        let id = r.message_id.clone().unwrap_or_default();
                        let count = r
                            .attributes
                            .get("ApproximateReceiveCount")
                            .and_then(|c| c.parse().ok())
                            .unwrap_or(0u32);
                        {
                            let mut rc = stats.receive_counts.lock().unwrap();
                            let e = rc.entry(id.clone()).or_default();
                            *e = (*e).max(count);
                        }
                        *stats
                            .deliveries
                            .lock()
                            .unwrap()
                            .entry(id.clone())
                            .or_default() += 1;
                        if !in_flight.lock().unwrap().insert(id.clone()) {
                            stats
                                .handed_out_while_in_flight
                                .fetch_add(1, Ordering::SeqCst);
                        }
                        handles.insert(id, m.receipt_handle().unwrap_or_default().to_owned());
                        event.records.push(r);
                    }
                    stats.invocations.fetch_add(1, Ordering::SeqCst);
                    stats
                        .records_delivered
                        .fetch_add(msgs.len(), Ordering::SeqCst);
                    let batch_ids: Vec<String> = handles.keys().cloned().collect();
                    let fut = handler(event);
                    let outcome = tokio::time::timeout(esm.invocation_timeout, fut).await;
                    {
                        let mut in_flight = in_flight.lock().unwrap();
                        for id in &batch_ids {
                            in_flight.remove(id);
                        }
                    }
                    // The idle spell counts from the end of the last batch.
                    last_seen = Instant::now();
                    let Ok(response) = outcome else {
                        // Killed: every record of the batch comes back after the timeout.
                        stats.timed_out.fetch_add(1, Ordering::SeqCst);
                        continue;
                    };
                    rolls = rolls
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    if (rolls >> 33) % 1000 < u64::from(esm.skip_delete_per_mille) {
                        stats.deletes_skipped.fetch_add(1, Ordering::SeqCst);
                        continue;
                    }
                    let failed: std::collections::HashSet<String> = response
                        .batch_item_failures
                        .iter()
                        .map(|f| f.item_identifier.clone())
                        .collect();
                    stats
                        .reported_failed
                        .fetch_add(failed.len(), Ordering::SeqCst);
                    for (id, handle) in handles {
                        if failed.contains(&id) {
                            if let Some(group) = groups.get(&id) {
                                blocked
                                    .lock()
                                    .unwrap()
                                    .entry(group.clone())
                                    .or_default()
                                    .insert(id.clone());
                            }
                            continue;
                        }
                        // A handle goes stale when the invocation outlived the visibility
                        // timeout (the message was handed out again): like Lambda, the
                        // message then simply comes back.
                        match sqs
                            .delete_message()
                            .queue_url(&url)
                            .receipt_handle(handle)
                            .send()
                            .await
                        {
                            Ok(_) => {
                                stats.deleted.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(_) => {
                                stats.delete_failed.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }
                }
            }
        });
        futures::future::join_all(workers).await;
        stats
    }
}

/// Every message on `url` now (bodies), removed — however many there are. Deletes go in
/// batches of 10 (one call per receive): moto's cost per call grows with the queue's depth.
pub async fn drain(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
    let mut out = Vec::new();
    loop {
        let resp = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        let msgs = resp.messages();
        if msgs.is_empty() {
            return out;
        }
        let mut entries = Vec::new();
        for (i, m) in msgs.iter().enumerate() {
            out.push(m.body().unwrap_or_default().to_owned());
            if let Some(h) = m.receipt_handle() {
                entries.push(
                    DeleteMessageBatchRequestEntry::builder()
                        .id(format!("m{i}"))
                        .receipt_handle(h)
                        .build()
                        .unwrap(),
                );
            }
        }
        let deleted = sqs
            .delete_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .expect("delete");
        assert!(deleted.failed().is_empty(), "{:?}", deleted.failed());
    }
}
