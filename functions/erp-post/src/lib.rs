//! erp-post function configuration and trigger; the posting itself is
//! `ledgerbridge_pipeline::posting`, the scheduled ERP poll `ledgerbridge_pipeline::to_stripe::poll::ErpPoll`
//! (run here because this function is the one that reaches the ERP).

use aws_lambda_events::event::sqs::SqsEvent;
use ledgerbridge_core::config::{ConfigError, Env};
use serde_json::Value;

/// What invoked the function.
#[derive(Debug)]
pub enum Trigger {
    /// A batch of the commands queue.
    Sqs(SqsEvent),
    /// The EventBridge schedule of the ERP poll.
    Schedule,
}

/// An SQS batch has a `Records` array; a scheduled event has `"source": "aws.events"` and
/// `"detail-type": "Scheduled Event"`.
pub fn parse_trigger(payload: Value) -> Result<Trigger, String> {
    if payload.get("Records").is_some_and(Value::is_array) {
        return serde_json::from_value(payload)
            .map(Trigger::Sqs)
            .map_err(|e| format!("SQS batch: {e}"));
    }
    if payload.get("source").and_then(Value::as_str) == Some("aws.events")
        && payload.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
    {
        return Ok(Trigger::Schedule);
    }
    Err("unrecognised invocation payload (neither an SQS batch nor a scheduled event)".into())
}

/// Settings of the erp-post function.
#[derive(Debug, Clone)]
pub struct PostConfig {
    pub state_table: String,
    pub parked_queue_url: String,
    /// Secrets Manager id of the ERP settings and credentials (one JSON document).
    pub erp_secret_id: String,
    /// Secrets Manager id of the Stripe API key; without it there is no write-back to Stripe.
    pub stripe_key_secret_id: Option<String>,
    pub stripe_api_base: Option<String>,
    pub mapping_source: Option<String>,
    pub concurrency: usize,
    pub lease_ms: i64,
    /// The ERP events queue the scheduled poll sends changed customers to; without it the
    /// schedule is refused.
    pub erp_events_queue_url: Option<String>,
    /// Seconds re-read before the poll's cursor.
    pub poll_overlap_secs: i64,
    /// How far back the first poll looks.
    pub poll_first_run_secs: i64,
    /// Most customers read per poll.
    pub poll_limit: usize,
    pub endpoint_url: Option<String>,
}

impl PostConfig {
    pub fn from_env(mut env: Env) -> Result<Self, ConfigError> {
        let cfg = PostConfig {
            state_table: env.required(
                "STATE_TABLE",
                "DynamoDB table for intents and cross-references",
            ),
            parked_queue_url: env.required(
                "PARKED_QUEUE_URL",
                "URL of the queue for commands that failed permanently",
            ),
            erp_secret_id: env.required(
                "ERP_SECRET_ID",
                "Secrets Manager id of the ERP settings and credentials",
            ),
            stripe_key_secret_id: env.optional("STRIPE_API_KEY_SECRET_ID"),
            stripe_api_base: env.optional("STRIPE_API_BASE"),
            mapping_source: env.optional("MAPPING"),
            concurrency: usize::try_from(env.number("CONCURRENCY", 4, 1, 64)).unwrap_or(4),
            lease_ms: env.number("LEASE_MS", 120_000, 1_000, 900_000),
            erp_events_queue_url: env.optional("ERP_EVENTS_QUEUE_URL"),
            poll_overlap_secs: env.number("ERP_POLL_OVERLAP_SECS", 120, 0, 86_400),
            poll_first_run_secs: env.number("ERP_POLL_FIRST_RUN_SECS", 3_600, 0, 31 * 86_400),
            poll_limit: usize::try_from(env.number("ERP_POLL_LIMIT", 1_000, 1, 10_000))
                .unwrap_or(1_000),
            endpoint_url: env.plain("AWS_ENDPOINT_URL"),
        };
        env.finish(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_missing_setting() {
        let err = PostConfig::from_env(Env::from_map(Default::default())).unwrap_err();
        assert_eq!(err.problems.len(), 3, "{err}");
    }

    #[test]
    fn tells_the_schedule_from_an_sqs_batch() {
        let sqs = serde_json::json!({"Records": [{"messageId": "m1", "body": "{}"}]});
        assert!(matches!(parse_trigger(sqs), Ok(Trigger::Sqs(b)) if b.records.len() == 1));
        let scheduled = serde_json::json!({
            "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
            "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": "2026-11-24T16:00:00Z", "region": "eu-west-1",
            "resources": ["arn:aws:events:eu-west-1:123456789012:rule/erp-poll"], "detail": {}
        });
        assert!(matches!(parse_trigger(scheduled), Ok(Trigger::Schedule)));
        for other in [
            serde_json::json!({}),
            serde_json::json!({"source": "aws.events", "detail-type": "Something"}),
            serde_json::json!({"Records": "x"}),
        ] {
            assert!(parse_trigger(other).is_err());
        }
    }
}
