//! payout-reconciliation: one Lambda, two triggers. The SQS batch of the reconciliation queue
//! (payout events forwarded by transform) and the EventBridge schedule of the sweep; the
//! reconciliation itself is `ledgerbridge_recon::service`.

use crate::{secrets_manager, stripe_on_first_use, Error, DEFAULTS};
use aws_lambda_events::event::sqs::SqsEvent;
use ledgerbridge_adapters::aws::{DynamoReportStore, DynamoStore, SqsQueue};
use ledgerbridge_adapters::lambda::process_batch;
use ledgerbridge_core::ports::{EventQueue, IdempotencyStore, XrefStore};
use ledgerbridge_core::{Clock, SystemClock};
use ledgerbridge_recon::report_store::ReportStore;
use ledgerbridge_recon::service::config::ReconConfig;
use ledgerbridge_recon::service::Deps;
use ledgerbridge_stripe::{LazyStripe, StripeApi};
use serde_json::Value;

/// The two invocation shapes.
#[derive(Debug)]
pub enum Trigger {
    Sqs(SqsEvent),
    /// An EventBridge scheduled event (its id names the run).
    Schedule {
        id: String,
        time: Option<String>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("unrecognised invocation payload (neither an SQS batch nor a scheduled event)")]
    UnknownPayload,
    #[error("SQS batch: {0}")]
    Sqs(String),
}

/// Tell an SQS batch (`Records`) from an EventBridge scheduled event (`source: aws.events`).
pub fn parse_trigger(payload: Value) -> Result<Trigger, HandlerError> {
    if payload.get("Records").is_some_and(Value::is_array) {
        return serde_json::from_value(payload)
            .map(Trigger::Sqs)
            .map_err(|e| HandlerError::Sqs(e.to_string()));
    }
    let is_schedule = payload.get("source").and_then(Value::as_str) == Some("aws.events")
        || payload.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event");
    if is_schedule {
        let text = |k: &str| payload.get(k).and_then(Value::as_str).map(str::to_owned);
        return Ok(Trigger::Schedule {
            id: text("id").unwrap_or_else(|| "schedule".into()),
            time: text("time"),
        });
    }
    Err(HandlerError::UnknownPayload)
}

/// The service on AWS.
pub type AwsDeps = Deps<SqsQueue, DynamoStore, DynamoReportStore, SystemClock, LazyStripe>;

/// Build the service (once per container); the Stripe key is read on first use.
pub async fn build(sdk: &aws_config::SdkConfig, cfg: ReconConfig) -> Result<AwsDeps, Error> {
    if cfg.file_is_example {
        tracing::warn!("LEDGERBRIDGE_RECONCILIATION_CONFIG is not set: using the example reconciliation file (placeholder GL accounts)");
    }
    tracing::info!(stage = %cfg.stage, erp = %cfg.erp_kind, sweep_days = cfg.file.sweep.days, "payout-reconciliation starting");
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    let stripe = stripe_on_first_use(
        &secrets_manager(sdk),
        &cfg.stripe_key_secret_id,
        cfg.stripe_api_base.as_deref(),
    );
    Ok(Deps {
        stripe,
        commands: SqsQueue::new(sqs, &cfg.commands_queue_url, cfg.max_message_bytes),
        store: DynamoStore::new(ddb.clone(), &cfg.state_table),
        reports: DynamoReportStore::new(ddb, &cfg.state_table),
        clock: SystemClock,
        lease_ms: i64::try_from(cfg.lease.as_millis()).unwrap_or(DEFAULTS.recon_lease_ms),
        claim_secs: cfg.claim_days.saturating_mul(crate::defaults::DAY_SECS),
        concurrency: cfg.concurrency,
        file: cfg.file,
    })
}

/// One invocation: an SQS batch (returns the partial batch response) or a sweep (returns its
/// summary).
pub async fn handle<Q, S, R, K, A>(
    deps: &Deps<Q, S, R, K, A>,
    payload: Value,
) -> Result<Value, HandlerError>
where
    Q: EventQueue,
    S: IdempotencyStore + XrefStore,
    R: ReportStore,
    K: Clock,
    A: StripeApi,
{
    match parse_trigger(payload)? {
        Trigger::Sqs(event) => {
            let response = process_batch(event, deps.concurrency, |body| async move {
                deps.process_message(&body).await.record_outcome()
            })
            .await
            .map_err(|e| HandlerError::Sqs(e.to_string()))?;
            serde_json::to_value(response).map_err(|e| HandlerError::Sqs(e.to_string()))
        }
        Trigger::Schedule { id, time } => {
            tracing::info!(run = %id, time = time.as_deref().unwrap_or(""), "Payout sweep started");
            let summary = deps.sweep(&id).await;
            Ok(serde_json::to_value(summary).unwrap_or(Value::Null))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tells_the_triggers_apart() {
        let sqs = serde_json::json!({"Records": [{"messageId": "m1", "body": "{}",
            "eventSource": "aws:sqs"}]});
        assert!(matches!(parse_trigger(sqs).unwrap(), Trigger::Sqs(e) if e.records.len() == 1));
        let schedule = serde_json::json!({"version": "0", "id": "run-1",
            "detail-type": "Scheduled Event", "source": "aws.events",
            "time": "2026-08-07T10:00:00Z", "detail": {}});
        assert!(
            matches!(parse_trigger(schedule).unwrap(), Trigger::Schedule { id, .. } if id == "run-1")
        );
        assert!(matches!(
            parse_trigger(serde_json::json!({"hello": 1})),
            Err(HandlerError::UnknownPayload)
        ));
    }
}
