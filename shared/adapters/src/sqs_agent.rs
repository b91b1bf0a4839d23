//! On-premises agent mode: a long-running worker inside the customer's network that long-polls
//! an SQS queue over outbound HTTPS (`ReceiveMessage` with `WaitTimeSeconds` = 20), hands each
//! message body to a caller-supplied async function (typically the posting stage with a
//! `ledgerbridge_erp::sage500` connector over SQL Server), deletes the message on success and leaves it
//! for redelivery otherwise. No inbound connection to the ERP's network is needed.
//!
//! Failures are not deleted: retryable ones come back after the visibility timeout (or after
//! the ERP's `Retry-After`, when it is given), permanent and authentication failures too, until
//! the queue's redrive policy moves them to its dead-letter queue. Handlers that park permanent
//! failures themselves should return `Ok` for them.

use aws_sdk_sqs::Client;
use ledgerbridge_erp::ErpError;
use std::future::Future;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub queue_url: String,
    /// Long-poll wait, 1..=20 seconds (20 keeps idle cost lowest).
    pub wait_time_seconds: i32,
    /// Messages per receive, 1..=10; they are handled one after the other.
    pub max_messages: i32,
    /// Pause after a failed `ReceiveMessage` (network down, throttled) before polling again.
    pub error_backoff: Duration,
}

impl AgentConfig {
    pub fn new(queue_url: impl Into<String>) -> Self {
        AgentConfig {
            queue_url: queue_url.into(),
            wait_time_seconds: 20,
            max_messages: 10,
            error_backoff: Duration::from_secs(5),
        }
    }
}

/// What one poll did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollStats {
    pub received: usize,
    pub succeeded: usize,
    /// Left on the queue for redelivery.
    pub failed: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("SQS {operation} failed: {message}")]
    Sqs {
        operation: &'static str,
        message: String,
    },
}

fn sqs_err<E: std::fmt::Debug>(operation: &'static str, e: E) -> AgentError {
    AgentError::Sqs {
        operation,
        message: format!("{e:?}").chars().take(500).collect(),
    }
}

/// Receive once (long poll) and handle what arrived.
pub async fn poll_once<F, Fut>(
    sqs: &Client,
    cfg: &AgentConfig,
    handler: &F,
) -> Result<PollStats, AgentError>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<(), ErpError>>,
{
    let resp = sqs
        .receive_message()
        .queue_url(&cfg.queue_url)
        .wait_time_seconds(cfg.wait_time_seconds.clamp(0, 20))
        .max_number_of_messages(cfg.max_messages.clamp(1, 10))
        .send()
        .await
        .map_err(|e| sqs_err("ReceiveMessage", e))?;
    let mut stats = PollStats::default();
    for m in resp.messages() {
        stats.received += 1;
        let (Some(body), Some(handle)) = (m.body(), m.receipt_handle()) else {
            stats.failed += 1;
            continue;
        };
        match handler(body.to_owned()).await {
            Ok(()) => {
                sqs.delete_message()
                    .queue_url(&cfg.queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .map_err(|e| sqs_err("DeleteMessage", e))?;
                stats.succeeded += 1;
            }
            Err(e) => {
                stats.failed += 1;
                tracing::warn!(message_id = m.message_id().unwrap_or(""), retryable = e.is_retriable(), error = %e, "message left on the queue for redelivery");
                if let Some(ra) = e.retry_after() {
                    let secs = i32::try_from(ra.as_secs()).unwrap_or(i32::MAX).min(43_200);
                    // Best effort: without it the message returns after the queue's timeout.
                    if let Err(err) = sqs
                        .change_message_visibility()
                        .queue_url(&cfg.queue_url)
                        .receipt_handle(handle)
                        .visibility_timeout(secs)
                        .send()
                        .await
                    {
                        tracing::warn!(error = ?err, "could not apply Retry-After to the message");
                    }
                }
            }
        }
    }
    Ok(stats)
}

/// Poll until `shutdown` completes. Shutdown is checked between polls, so a message in hand is
/// always finished (and deleted or left) first; stopping can take up to one long-poll wait.
pub async fn run<F, Fut, S>(sqs: &Client, cfg: &AgentConfig, handler: F, shutdown: S)
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<(), ErpError>>,
    S: Future<Output = ()>,
{
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => return,
            _ = std::future::ready(()) => {}
        }
        match poll_once(sqs, cfg, &handler).await {
            Ok(stats) if stats.received > 0 => tracing::info!(?stats, "agent poll"),
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "agent cannot poll; backing off");
                tokio::time::sleep(cfg.error_backoff).await;
            }
        }
    }
}
