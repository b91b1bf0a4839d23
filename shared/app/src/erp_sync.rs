//! erp-sync: applies ERP customer changes to Stripe.
//!
//! Its trigger is the ERP events queue (SQS, partial batch failures): webhook-intake's
//! `POST /erp/customers` route verifies and queues `erp_customer_changed.v1` messages there, and
//! each record is run through [`ErpSyncStage`] (reverse cross-reference lookup, version check,
//! claim, Stripe customer update with an `Idempotency-Key`, park on a permanent failure).
//!
//! The handler takes the raw invocation payload and tells the trigger from it ([`Trigger`]), so
//! another trigger (a scheduled poll of the ERP, say) can be added as a variant beside the SQS
//! batch without changing how batches are handled.

use crate::DEFAULTS;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use ledgerbridge_adapters::lambda::{process_batch, UnidentifiedFailure};
use ledgerbridge_core::config::{ConfigError, Env};
use ledgerbridge_core::message::SQS_MAX_MESSAGE_BYTES;
use ledgerbridge_core::ports::EventQueue;
use ledgerbridge_core::Clock;
use ledgerbridge_pipeline::posting::StateStore;
use ledgerbridge_pipeline::to_stripe::sync::ErpSyncStage;
use ledgerbridge_stripe::api::StripeApi;
use serde_json::Value;

/// Settings of the erp-sync function.
#[derive(Debug, Clone)]
pub struct ErpSyncConfig {
    pub state_table: String,
    pub parked_queue_url: String,
    pub stripe_key_secret_id: String,
    pub stripe_api_base: Option<String>,
    pub max_message_bytes: usize,
    /// SQS records processed at once.
    pub concurrency: usize,
    /// How long a claim may stay in progress before another delivery may take it over.
    pub lease_ms: i64,
    /// How long the claim of one ERP change counts (days).
    pub intent_days: i64,
    pub endpoint_url: Option<String>,
}

impl ErpSyncConfig {
    pub fn from_env(mut env: Env) -> Result<Self, ConfigError> {
        let cfg = ErpSyncConfig {
            state_table: env.required(
                "STATE_TABLE",
                "DynamoDB table for cross-references, versions and claims",
            ),
            parked_queue_url: env.required(
                "PARKED_QUEUE_URL",
                "URL of the queue for changes that failed permanently",
            ),
            stripe_key_secret_id: env.required(
                "STRIPE_API_KEY_SECRET_ID",
                "Secrets Manager id of the Stripe API key",
            ),
            stripe_api_base: env.optional("STRIPE_API_BASE"),
            max_message_bytes: usize::try_from(env.number(
                "MAX_MESSAGE_BYTES",
                SQS_MAX_MESSAGE_BYTES as i64,
                1024,
                1_048_576,
            ))
            .unwrap_or(SQS_MAX_MESSAGE_BYTES),
            concurrency: usize::try_from(env.number(
                "CONCURRENCY",
                DEFAULTS.sync_concurrency as i64,
                1,
                64,
            ))
            .unwrap_or(DEFAULTS.sync_concurrency),
            lease_ms: env.number("LEASE_MS", DEFAULTS.sync_lease_ms, 1_000, 900_000),
            intent_days: env.number("INTENT_DAYS", DEFAULTS.sync_intent_days, 1, 3650),
            endpoint_url: env.plain("AWS_ENDPOINT_URL"),
        };
        env.finish(cfg)
    }
}

/// The invocation shapes this function answers. Today only the SQS batch of the ERP events
/// queue; a scheduled trigger would be a second variant, recognised in [`parse_trigger`].
#[derive(Debug)]
pub enum Trigger {
    Sqs(SqsEvent),
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("unrecognised invocation payload (not an SQS batch)")]
    UnknownPayload,
    #[error("SQS batch: {0}")]
    Sqs(#[source] serde_json::Error),
    #[error(transparent)]
    Unidentified(#[from] UnidentifiedFailure),
}

/// Tell the trigger from the payload: an SQS batch has a `Records` array.
pub fn parse_trigger(payload: Value) -> Result<Trigger, HandlerError> {
    if payload.get("Records").is_some_and(Value::is_array) {
        return serde_json::from_value(payload)
            .map(Trigger::Sqs)
            .map_err(HandlerError::Sqs);
    }
    Err(HandlerError::UnknownPayload)
}

pub use aws::build;

/// Everything the handler needs, built once per container.
pub struct Deps<S, A, K, P> {
    pub stage: ErpSyncStage<S, A, K, P>,
    /// SQS records processed at once.
    pub concurrency: usize,
}

impl<S, A, K, P> Deps<S, A, K, P>
where
    S: StateStore,
    A: StripeApi,
    K: Clock,
    P: EventQueue,
{
    /// One invocation, whatever its trigger.
    pub async fn handle(&self, payload: Value) -> Result<Value, HandlerError> {
        match parse_trigger(payload)? {
            Trigger::Sqs(event) => {
                let response = self.process_batch(event).await?;
                serde_json::to_value(response).map_err(HandlerError::Sqs)
            }
        }
    }

    /// One SQS batch of the ERP events queue; failed records (to be retried) are reported back
    /// as batch item failures, the others are deleted by the event source.
    pub async fn process_batch(
        &self,
        event: SqsEvent,
    ) -> Result<SqsBatchResponse, UnidentifiedFailure> {
        process_batch(event, self.concurrency, |body| async move {
            self.stage.process(&body).await
        })
        .await
    }
}

/// Construction on AWS (DynamoDB, SQS, Secrets Manager, Stripe), shared by `main` and the tests
/// that run against the deployed template.
pub mod aws {
    use super::{Deps, ErpSyncConfig};
    use ledgerbridge_adapters::aws::{DynamoStore, SqsQueue};
    use ledgerbridge_core::SystemClock;
    use ledgerbridge_stripe::LazyStripe;

    pub type AwsDeps = Deps<DynamoStore, LazyStripe, SystemClock, SqsQueue>;

    /// Build the stage; the Stripe key is read on first use.
    pub async fn build(
        sdk: &aws_config::SdkConfig,
        cfg: &ErpSyncConfig,
    ) -> Result<AwsDeps, lambda_runtime::Error> {
        let stripe = crate::stripe_on_first_use(
            &crate::secrets_manager(sdk),
            &cfg.stripe_key_secret_id,
            cfg.stripe_api_base.as_deref(),
        );
        Ok(Deps {
            stage: crate::stages::erp_sync(
                DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), &cfg.state_table),
                stripe,
                SystemClock,
                SqsQueue::new(
                    aws_sdk_sqs::Client::new(sdk),
                    &cfg.parked_queue_url,
                    cfg.max_message_bytes,
                ),
                cfg.lease_ms,
                cfg.intent_days,
            ),
            concurrency: cfg.concurrency,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ledgerbridge_adapters::embedded::{MemoryQueue, SqliteStore};
    use ledgerbridge_core::ids::StripeObjectId;
    use ledgerbridge_core::ports::{ReverseLink, ReverseLinkStore};
    use ledgerbridge_core::FixedClock;
    use ledgerbridge_stripe::fake::FakeStripe;
    use ledgerbridge_stripe::StripeError;
    use serde_json::json;

    const NOW_MS: i64 = 1_786_000_000_000;

    async fn deps() -> Deps<SqliteStore, FakeStripe, FixedClock, MemoryQueue> {
        let store = SqliteStore::in_memory().unwrap();
        store
            .put_reverse_link_if_absent(&ReverseLink {
                erp: "epicor".into(),
                customer_code: "C042".into(),
                stripe_customer: StripeObjectId::new("cus_sync_1"),
                created_at_ms: NOW_MS,
            })
            .await
            .unwrap();
        Deps {
            stage: ErpSyncStage {
                store,
                stripe: FakeStripe::new()
                    .with_customer(serde_json::from_value(json!({"id": "cus_sync_1"})).unwrap()),
                clock: FixedClock::at_secs(NOW_MS / 1000),
                parked: MemoryQueue::new(ledgerbridge_core::message::SQS_MAX_MESSAGE_BYTES),
                lease_ms: 30_000,
                intent_days: 30,
            },
            concurrency: 1,
        }
    }

    fn change(changed_at: i64) -> String {
        json!({"type": "erp_customer_changed.v1", "erp": "epicor", "customer_code": "C042",
               "name": "Northwind Traders", "changed_at": changed_at})
        .to_string()
    }

    fn batch(bodies: &[String]) -> Value {
        let records: Vec<Value> = bodies
            .iter()
            .enumerate()
            .map(
                |(i, b)| json!({"messageId": format!("m{i}"), "body": b, "eventSource": "aws:sqs"}),
            )
            .collect();
        json!({ "Records": records })
    }

    #[test]
    fn config_lists_every_missing_setting() {
        let err = ErpSyncConfig::from_env(Env::from_map(Default::default())).unwrap_err();
        assert_eq!(err.problems.len(), 3, "{err}");
    }

    #[test]
    fn only_sqs_batches_are_recognised() {
        assert!(matches!(
            parse_trigger(json!({"Records": []})),
            Ok(Trigger::Sqs(_))
        ));
        assert!(matches!(
            parse_trigger(json!({"source": "aws.events", "detail-type": "Scheduled Event"})),
            Err(HandlerError::UnknownPayload)
        ));
    }

    #[tokio::test]
    async fn a_duplicate_in_one_batch_is_one_stripe_update() {
        let d = deps().await;
        let out = d
            .handle(batch(&[change(1_785_999_000), change(1_785_999_000)]))
            .await
            .unwrap();
        assert_eq!(out["batchItemFailures"], json!([]));
        let ups = d.stage.stripe.data().customer_updates.clone();
        assert_eq!(ups.len(), 1, "{ups:?}");
        assert_eq!(ups[0].0, "cus_sync_1");
        assert!(d.stage.parked.is_empty());
    }

    #[tokio::test]
    async fn a_retriable_failure_is_reported_for_redelivery_and_an_unreadable_record_is_parked() {
        let d = deps().await;
        d.stage
            .stripe
            .fail_next(StripeError::RateLimited { retry_after: None });
        let out = d
            .handle(batch(&[change(1_785_999_000), "not json".to_owned()]))
            .await
            .unwrap();
        assert_eq!(out["batchItemFailures"], json!([{"itemIdentifier": "m0"}]));
        assert_eq!(d.stage.parked.len(), 1);
        // Redelivered once Stripe is back (the one failure is used up): applied.
        let out = d.handle(batch(&[change(1_785_999_000)])).await.unwrap();
        assert_eq!(out["batchItemFailures"], json!([]));
        assert_eq!(d.stage.stripe.data().customer_updates.len(), 1);
    }
}
