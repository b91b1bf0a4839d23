//! erp-post function configuration and trigger; the posting itself is
//! `ledgerbridge_pipeline::posting`, the scheduled ERP poll `ledgerbridge_pipeline::to_stripe::poll::ErpPoll`
//! (run here because this function is the one that reaches the ERP).

use crate::{erp_poll, secrets_manager, stripe_on_first_use, Error, DEFAULTS};
use aws_lambda_events::event::sqs::SqsEvent;
use ledgerbridge_adapters::aws::SecretsManagerSource;
use ledgerbridge_adapters::aws::{DynamoStore, SqsQueue};
use ledgerbridge_adapters::lambda::process_batch;
use ledgerbridge_core::config::{ConfigError, Env, PREFIX};
use ledgerbridge_core::secrets::{Secret, SecretSource};
use ledgerbridge_core::{Clock, SystemClock};
use ledgerbridge_erp::{AnyConnector, ErpError, ErpKind, ErpSettings, LazyConnector};
use ledgerbridge_pipeline::mapping::Mapping;
use ledgerbridge_pipeline::stages::PostStage;
use ledgerbridge_pipeline::to_stripe::poll::ErpPoll;
use ledgerbridge_stripe::LazyStripe;
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
    /// The ERP the deployment names (`LEDGERBRIDGE_ERP_KIND`). With it the settings secret is
    /// read on first use; without it, at start (the kind keys cross-references before any
    /// request).
    pub erp_kind: Option<ErpKind>,
    /// Secrets Manager id of the Stripe API key; without it there is no write-back to Stripe.
    pub stripe_key_secret_id: Option<String>,
    pub stripe_api_base: Option<String>,
    pub mapping_source: Option<String>,
    pub concurrency: usize,
    pub lease_ms: i64,
    /// The ERP's search lag to allow for after a create that may have committed (see
    /// `ledgerbridge_erp::post_command`); the lease must outlast it plus the function's run.
    pub erp_search_lag_secs: i64,
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
    /// Days the console's activity items are kept (`crate::activity`).
    pub activity_days: i64,
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
            erp_kind: None,
            stripe_key_secret_id: env.optional("STRIPE_API_KEY_SECRET_ID"),
            stripe_api_base: env.optional("STRIPE_API_BASE"),
            mapping_source: env.optional("MAPPING"),
            concurrency: usize::try_from(env.number(
                "CONCURRENCY",
                DEFAULTS.post_concurrency as i64,
                1,
                64,
            ))
            .unwrap_or(DEFAULTS.post_concurrency),
            lease_ms: env.number("LEASE_MS", DEFAULTS.post_lease_ms, 1_000, 900_000),
            erp_search_lag_secs: env.number(
                "ERP_SEARCH_LAG_SECS",
                i64::try_from(
                    ledgerbridge_erp::RetryPolicy::default()
                        .settle_after_ambiguous
                        .as_secs(),
                )
                .unwrap_or(45),
                0,
                600,
            ),
            erp_events_queue_url: env.optional("ERP_EVENTS_QUEUE_URL"),
            poll_overlap_secs: env.number(
                "ERP_POLL_OVERLAP_SECS",
                DEFAULTS.poll_overlap_secs,
                0,
                86_400,
            ),
            poll_first_run_secs: env.number(
                "ERP_POLL_FIRST_RUN_SECS",
                DEFAULTS.poll_first_run_secs,
                0,
                31 * 86_400,
            ),
            poll_limit: usize::try_from(env.number(
                "ERP_POLL_LIMIT",
                DEFAULTS.poll_limit as i64,
                1,
                10_000,
            ))
            .unwrap_or(DEFAULTS.poll_limit),
            endpoint_url: env.plain("AWS_ENDPOINT_URL"),
            activity_days: env.number("ACTIVITY_DAYS", crate::activity::DEFAULT_DAYS, 1, 3650),
        };
        let mut cfg = cfg;
        cfg.erp_kind = match env.optional("ERP_KIND") {
            None => None,
            Some(k) => match k.parse::<ErpKind>() {
                Ok(kind) => Some(kind),
                Err(_) => {
                    env.problem(format!(
                        "{PREFIX}ERP_KIND={k:?} must be one of {}",
                        ErpKind::names()
                    ));
                    None
                }
            },
        };
        let is_example = cfg
            .mapping_source
            .as_deref()
            .is_none_or(|s| s.trim() == ledgerbridge_pipeline::mapping::EXAMPLE.trim());
        env.refuse_example("MAPPING", "mapping", is_example);
        // The mapping is parsed and checked now, so a bad one stops the start with every
        // problem listed (`build` parses it again from the same text).
        if !env.is_unavailable("MAPPING") {
            match load_mapping(cfg.mapping_source.as_deref()) {
                Ok(m) => crate::transform::check_mapping(&mut env, &m, is_example),
                Err(e) => env.problem(format!("{PREFIX}MAPPING: {e}")),
            }
        }
        // An in-doubt create keeps its intent held for the lease: a lease shorter than the
        // search lag plus one run of the function (at most 60 s) would let another worker
        // search too early and create a duplicate. The 60 s is the template's Timeout: Lambda
        // gives a function no variable with its timeout at start (only each invocation's
        // deadline), so the template's rule check (`check_claim_lease` in
        // infra/checks/rules.py) holds the lease against the Timeout actually deployed.
        if cfg.lease_ms
            < cfg
                .erp_search_lag_secs
                .saturating_mul(1000)
                .saturating_add(60_000)
        {
            env.problem(format!(
                "LEDGERBRIDGE_LEASE_MS ({} ms) must be at least LEDGERBRIDGE_ERP_SEARCH_LAG_SECS ({} s) + 60 s",
                cfg.lease_ms, cfg.erp_search_lag_secs
            ));
        }
        env.finish(cfg)
    }
}

/// The posting stage (and, when the ERP events queue is configured, the scheduled ERP poll) on
/// AWS.
pub struct ErpPost {
    pub stage: PostStage<LazyConnector, DynamoStore, LazyStripe, SystemClock, SqsQueue>,
    pub poll: Option<ErpPoll<LazyConnector, DynamoStore, SqsQueue>>,
    pub concurrency: usize,
    /// The console's record of each outcome (`crate::activity`).
    pub activity: Option<crate::activity::ActivityLog>,
}

/// The posting mapping: inline TOML, a file path, or the example.
pub fn load_mapping(source: Option<&str>) -> Result<Mapping, Error> {
    Ok(match source {
        Some(m) if m.contains('[') => Mapping::from_toml(m)?,
        Some(path) => Mapping::from_file(std::path::Path::new(path))?,
        None => Mapping::from_toml(ledgerbridge_pipeline::mapping::EXAMPLE)?,
    })
}

/// Build the stage and the poll (once per container). The ERP settings secret and the Stripe
/// key are read on first use when the deployment names the ERP kind (the template does);
/// otherwise the settings are read now.
pub async fn build(sdk: &aws_config::SdkConfig, cfg: &PostConfig) -> Result<ErpPost, Error> {
    let secrets = secrets_manager(sdk);
    let connector = match cfg.erp_kind {
        Some(kind) => erp_on_first_use(&secrets, &cfg.erp_secret_id, kind),
        None => {
            let settings_json = secrets.fetch(&cfg.erp_secret_id).await?;
            let built = refreshing_connector(&secrets, &cfg.erp_secret_id, &settings_json)?;
            let secrets = secrets.clone();
            let id = cfg.erp_secret_id.clone();
            LazyConnector::ready(
                built,
                std::sync::Arc::new(move || {
                    let secrets = secrets.clone();
                    let id = id.clone();
                    Box::pin(async move { read_connector(&secrets, &id).await })
                }),
            )
        }
    };
    let stripe = cfg
        .stripe_key_secret_id
        .as_deref()
        .map(|id| stripe_on_first_use(&secrets, id, cfg.stripe_api_base.as_deref()));
    let mapping = load_mapping(cfg.mapping_source.as_deref())?;
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), &cfg.state_table);
    let activity = crate::activity::ActivityLog::new(
        aws_sdk_dynamodb::Client::new(sdk),
        &cfg.state_table,
        cfg.activity_days,
    );
    let poll = cfg.erp_events_queue_url.as_ref().map(|url| {
        erp_poll::build(
            connector.clone(),
            store.clone(),
            SqsQueue::new(sqs.clone(), url, DEFAULTS.max_message_bytes),
            &erp_poll::PollSettings {
                overlap_secs: cfg.poll_overlap_secs,
                first_run_secs: cfg.poll_first_run_secs,
                limit: cfg.poll_limit,
            },
        )
    });
    let mut stage = crate::stages::post(
        connector,
        store,
        stripe,
        mapping,
        SystemClock,
        SqsQueue::new(sqs, &cfg.parked_queue_url, DEFAULTS.max_message_bytes),
        crate::stages::Lease::Deployed,
    );
    // The deployment may set its own lease (`LEASE_MS`) and the ERP's search lag.
    stage.poster.lease_ms = cfg.lease_ms;
    stage.poster.policy.settle_after_ambiguous =
        std::time::Duration::from_secs(u64::try_from(cfg.erp_search_lag_secs).unwrap_or(45));
    Ok(ErpPost {
        stage,
        poll,
        concurrency: cfg.concurrency,
        activity: Some(activity),
    })
}

/// The connector built on first use: the ERP settings secret is read when the first command or
/// poll needs the ERP, not during a cold start. A failed read (Secrets Manager unreachable or
/// throttled, the secret missing or unusable) is [`ErpError::Retryable`]: the message is
/// retried, never parked. Once built, its credentials follow the secret
/// ([`refreshing_connector`]).
pub fn erp_on_first_use(
    secrets: &SecretsManagerSource,
    secret_id: &str,
    kind: ErpKind,
) -> LazyConnector {
    let secrets = secrets.clone();
    let id = secret_id.to_owned();
    LazyConnector::new(
        kind,
        std::sync::Arc::new(move || {
            let secrets = secrets.clone();
            let id = id.clone();
            Box::pin(async move { read_connector(&secrets, &id).await })
        }),
    )
}

/// Read the ERP settings secret and build the refreshing connector; every failure retriable.
async fn read_connector(
    secrets: &SecretsManagerSource,
    secret_id: &str,
) -> Result<AnyConnector, ErpError> {
    let unavailable = |message: String| ErpError::Retryable {
        erp: "settings",
        status: None,
        message,
        retry_after: None,
        may_have_committed: false,
    };
    let json = secrets
        .fetch(secret_id)
        .await
        .map_err(|e| unavailable(format!("ERP settings unavailable: {e}")))?;
    refreshing_connector(secrets, secret_id, &json)
        .map_err(|e| unavailable(format!("ERP settings in {secret_id} unusable: {e}")))
}

/// A connector whose credentials follow the ERP secret: re-read from Secrets Manager when the
/// ERP answers 401/403 (then the request is sent once more) and before a request once they are
/// older than the secret TTL ([`DEFAULTS`]`.secret_ttl`, 300 s), so a rotation is picked up
/// without a cold start. The values never reach a log.
pub fn refreshing_connector(
    secrets: &SecretsManagerSource,
    secret_id: &str,
    settings_json: &Secret<String>,
) -> Result<AnyConnector, Error> {
    let source = secrets.clone();
    let id = secret_id.to_owned();
    Ok(AnyConnector::from_settings_refreshing(
        ErpSettings::from_json(settings_json)?,
        move || {
            let source = source.clone();
            let id = id.clone();
            async move {
                source.fetch(&id).await.map_err(|e| ErpError::Retryable {
                    erp: "settings",
                    status: None,
                    message: format!("ERP settings secret not re-read: {e}"),
                    retry_after: None,
                    may_have_committed: false,
                })
            }
        },
        DEFAULTS.secret_ttl,
    )?)
}

impl ErpPost {
    /// One invocation: an SQS batch of commands (the partial batch response) or, on the
    /// schedule, one poll of the ERP (its counts).
    pub async fn handle(&self, payload: Value) -> Result<Value, Error> {
        match parse_trigger(payload)? {
            Trigger::Sqs(batch) => {
                let (stage, activity) = (&self.stage, self.activity.as_ref());
                let out = process_batch(batch, self.concurrency, |body| async move {
                    let (outcome, posted) = stage.process_detailed(&body).await;
                    if let Some(log) = activity {
                        let erp = ledgerbridge_erp::ErpConnector::erp(&stage.poster.connector);
                        let at = SystemClock.now_millis();
                        if let Some(item) = crate::activity::ActivityItem::after(
                            &body,
                            &outcome,
                            posted.as_ref(),
                            erp,
                            at,
                        ) {
                            log.record(&item).await;
                        }
                    }
                    outcome
                })
                .await?;
                Ok(serde_json::to_value(out)?)
            }
            Trigger::Schedule => {
                let poll = self
                    .poll
                    .as_ref()
                    .ok_or("scheduled ERP poll without LEDGERBRIDGE_ERP_EVENTS_QUEUE_URL")?;
                let report = poll.poll(SystemClock.now_secs()).await?;
                Ok(serde_json::json!({
                    "listed": report.listed, "queued": report.queued,
                    "not_linked": report.not_linked, "relinked": report.relinked,
                    "invalid": report.invalid, "cursor": report.cursor
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_missing_setting() {
        let err = PostConfig::from_env(Env::from_map(Default::default())).unwrap_err();
        // The three required settings, and the mapping left to the example.
        assert_eq!(err.problems.len(), 4, "{err}");
        assert!(err
            .to_string()
            .contains("LEDGERBRIDGE_MAPPING is unset or the shipped example"));
    }

    #[test]
    fn the_example_mapping_is_refused_unless_a_trial_asks_for_it() {
        let vars = |extra: &[(&str, &str)]| {
            let mut v: std::collections::HashMap<String, String> = [
                ("LEDGERBRIDGE_STATE_TABLE", "t"),
                ("LEDGERBRIDGE_PARKED_QUEUE_URL", "http://q"),
                ("LEDGERBRIDGE_ERP_SECRET_ID", "erp"),
            ]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
            v.extend(
                extra
                    .iter()
                    .map(|(k, x)| ((*k).to_owned(), (*x).to_owned())),
            );
            Env::from_map(v)
        };
        let example = ledgerbridge_pipeline::mapping::EXAMPLE;
        for refused in [vec![], vec![("LEDGERBRIDGE_MAPPING", example)]] {
            let err = PostConfig::from_env(vars(&refused)).unwrap_err();
            assert_eq!(err.problems.len(), 1, "{err}");
        }
        assert!(
            PostConfig::from_env(vars(&[("LEDGERBRIDGE_ALLOW_EXAMPLE_CONFIG", "true")])).is_ok()
        );
        let own = example.replace("revenue_account = \"4000\"", "revenue_account = \"4010\"");
        assert!(PostConfig::from_env(vars(&[("LEDGERBRIDGE_MAPPING", &own)])).is_ok());
    }

    #[test]
    fn the_lease_must_outlast_the_erp_search_lag() {
        let env = |lag: &str| {
            Env::from_map(
                [
                    ("LEDGERBRIDGE_STATE_TABLE", "t"),
                    ("LEDGERBRIDGE_PARKED_QUEUE_URL", "q"),
                    ("LEDGERBRIDGE_ERP_SECRET_ID", "s"),
                    ("LEDGERBRIDGE_LEASE_MS", "120000"),
                    ("LEDGERBRIDGE_ERP_SEARCH_LAG_SECS", lag),
                    ("LEDGERBRIDGE_ALLOW_EXAMPLE_CONFIG", "true"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            )
        };
        assert_eq!(
            PostConfig::from_env(env("45")).unwrap().erp_search_lag_secs,
            45
        );
        let err = PostConfig::from_env(env("90")).unwrap_err();
        assert!(
            err.to_string().contains("LEDGERBRIDGE_ERP_SEARCH_LAG_SECS"),
            "{err}"
        );
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
