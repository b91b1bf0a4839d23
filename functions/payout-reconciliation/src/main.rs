//! Lambda entry point: logging, config, clients once; then one handler call per invocation
//! (an SQS batch from the reconciliation queue, or a scheduled sweep).

use lambda_runtime::{service_fn, LambdaEvent};
use ledgerbridge_adapters::aws::DynamoReportStore;
use ledgerbridge_adapters::aws::{sdk_config, DynamoStore, SecretsManagerSource, SqsQueue};
use ledgerbridge_core::config::Env;
use ledgerbridge_core::secrets::SecretSource;
use ledgerbridge_core::SystemClock;
use ledgerbridge_stripe::{StripeClient, StripeClientConfig};
use payout_reconciliation::config::ReconConfig;
use payout_reconciliation::Deps;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    ledgerbridge_core::telemetry::init_json_logging();
    let cfg = ReconConfig::from_env(Env::from_process())?;
    if cfg.file_is_example {
        tracing::warn!("LEDGERBRIDGE_RECONCILIATION_CONFIG is not set: using the example reconciliation file (placeholder GL accounts)");
    }
    tracing::info!(stage = %cfg.stage, erp = %cfg.erp_kind, sweep_days = cfg.file.sweep.days, "payout-reconciliation starting");
    let sdk = sdk_config(cfg.endpoint_url.as_deref()).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let key = SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(&sdk))
        .fetch(&cfg.stripe_key_secret_id)
        .await?;
    let mut stripe_cfg = StripeClientConfig::new(key);
    if let Some(base) = &cfg.stripe_api_base {
        stripe_cfg = stripe_cfg.with_base_url(base);
    }
    let deps = Deps {
        stripe: StripeClient::new(stripe_cfg)?,
        commands: SqsQueue::new(sqs, &cfg.commands_queue_url, cfg.max_message_bytes),
        store: DynamoStore::new(ddb.clone(), &cfg.state_table),
        reports: DynamoReportStore::new(ddb, &cfg.state_table),
        clock: SystemClock,
        lease_ms: i64::try_from(cfg.lease.as_millis()).unwrap_or(300_000),
        claim_secs: cfg.claim_days.saturating_mul(86_400),
        concurrency: cfg.concurrency,
        file: cfg.file,
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let deps = &deps;
        async move { Ok::<_, lambda_runtime::Error>(deps.handle(event.payload).await?) }
    }))
    .await
}
