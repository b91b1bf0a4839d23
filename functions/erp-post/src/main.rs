//! Lambda entry point: logging, config, ERP connector and clients once; then per invocation
//! one SQS batch of commands (the event source caps concurrency at the ERP's rate limit) or,
//! on the schedule, one poll of the ERP for customers changed since the last one.

use erp_post::{parse_trigger, Trigger};
use lambda_runtime::{service_fn, LambdaEvent};
use ledgerbridge_core::aws::{sdk_config, DynamoStore, SecretsManagerSource, SqsQueue};
use ledgerbridge_core::config::Env;
use ledgerbridge_core::secrets::SecretSource;
use ledgerbridge_core::SystemClock;
use ledgerbridge_erp::{AnyConnector, ErpSettings, RetryPolicy};
use ledgerbridge_pipeline::mapping::Mapping;
use ledgerbridge_pipeline::posting::Poster;
use ledgerbridge_pipeline::sqs::process_batch;
use ledgerbridge_pipeline::stages::PostStage;
use ledgerbridge_pipeline::to_stripe::poll::ErpPoll;
use ledgerbridge_stripe::{StripeClient, StripeClientConfig};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    ledgerbridge_core::telemetry::init_json_logging();
    let cfg = erp_post::PostConfig::from_env(Env::from_process())?;
    let sdk = sdk_config(cfg.endpoint_url.as_deref()).await;
    let secrets = SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(&sdk));
    let settings_json = secrets.fetch(&cfg.erp_secret_id).await?;
    let connector = AnyConnector::from_settings(ErpSettings::from_json(&settings_json)?)?;
    let stripe = match &cfg.stripe_key_secret_id {
        Some(id) => {
            let mut c = StripeClientConfig::new(secrets.fetch(id).await?);
            if let Some(base) = &cfg.stripe_api_base {
                c = c.with_base_url(base);
            }
            Some(StripeClient::new(c)?)
        }
        None => None,
    };
    let mapping = match &cfg.mapping_source {
        Some(m) if m.contains('[') => Mapping::from_toml(m)?,
        Some(path) => Mapping::from_file(std::path::Path::new(path))?,
        None => Mapping::from_toml(ledgerbridge_pipeline::mapping::EXAMPLE)?,
    };
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &cfg.state_table);
    let poll = match &cfg.erp_events_queue_url {
        Some(url) => Some(ErpPoll {
            connector: AnyConnector::from_settings(ErpSettings::from_json(&settings_json)?)?,
            store: store.clone(),
            queue: SqsQueue::new(sqs.clone(), url, 262_144),
            overlap_secs: cfg.poll_overlap_secs,
            first_run_secs: cfg.poll_first_run_secs,
            limit: cfg.poll_limit,
        }),
        None => None,
    };
    let stage = PostStage {
        poster: Poster {
            connector,
            store,
            stripe,
            mapping,
            policy: RetryPolicy::default(),
            clock: SystemClock,
            lease_ms: cfg.lease_ms,
            intent_days: 400,
        },
        parked: SqsQueue::new(sqs, &cfg.parked_queue_url, 262_144),
    };
    let concurrency = cfg.concurrency;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let (stage, poll) = (&stage, &poll);
        async move {
            match parse_trigger(event.payload)? {
                Trigger::Sqs(batch) => {
                    let out = process_batch(batch, concurrency, |body| async move {
                        stage.process(&body).await
                    })
                    .await?;
                    Ok::<_, lambda_runtime::Error>(serde_json::to_value(out)?)
                }
                Trigger::Schedule => {
                    let poll = poll
                        .as_ref()
                        .ok_or("scheduled ERP poll without LEDGERBRIDGE_ERP_EVENTS_QUEUE_URL")?;
                    let now = ledgerbridge_core::Clock::now_secs(&SystemClock);
                    let report = poll.poll(now).await?;
                    Ok(serde_json::json!({
                        "listed": report.listed, "queued": report.queued,
                        "not_linked": report.not_linked, "relinked": report.relinked,
                        "invalid": report.invalid, "cursor": report.cursor
                    }))
                }
            }
        }
    }))
    .await
}
