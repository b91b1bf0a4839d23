//! Lambda entry point: logging, config, clients once; then one SQS batch per invocation.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, LambdaEvent};
use ledgerbridge_adapters::aws::{sdk_config, SecretsManagerSource, SqsQueue};
use ledgerbridge_adapters::lambda::process_batch;
use ledgerbridge_core::config::Env;
use ledgerbridge_core::secrets::SecretSource;
use ledgerbridge_pipeline::stages::TransformStage;
use ledgerbridge_stripe::{StripeClient, StripeClientConfig};
use transform::TransformConfig;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    ledgerbridge_core::telemetry::init_json_logging();
    let cfg = TransformConfig::from_env(Env::from_process())?;
    let sdk = sdk_config(cfg.endpoint_url.as_deref()).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let key = SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(&sdk))
        .fetch(&cfg.stripe_key_secret_id)
        .await?;
    let mut stripe_cfg = StripeClientConfig::new(key);
    if let Some(base) = &cfg.stripe_api_base {
        stripe_cfg = stripe_cfg.with_base_url(base);
    }
    let stage = TransformStage {
        mapping: cfg.mapping.clone(),
        stripe: StripeClient::new(stripe_cfg)?,
        commands: SqsQueue::new(sqs.clone(), &cfg.commands_queue_url, cfg.max_message_bytes),
        reconciliation: cfg
            .reconciliation_queue_url
            .as_ref()
            .map(|url| SqsQueue::new(sqs.clone(), url, cfg.max_message_bytes)),
        parked: SqsQueue::new(sqs.clone(), &cfg.parked_queue_url, cfg.max_message_bytes),
    };
    let concurrency = cfg.concurrency;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let stage = &stage;
        async move {
            let out: SqsBatchResponse =
                process_batch(event.payload, concurrency, |body| async move {
                    stage.process(&body).await
                })
                .await?;
            Ok::<_, lambda_runtime::Error>(out)
        }
    }))
    .await
}
