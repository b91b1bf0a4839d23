//! Lambda entry point: logging, config, clients once; then one handler call per request.

use ledgerbridge_core::aws::{sdk_config, DynamoStore, SecretsManagerSource, SqsQueue};
use ledgerbridge_core::config::{Env, IntakeConfig, SecretLocation};
use ledgerbridge_core::secrets::{CachedSecrets, EnvSecrets};
use ledgerbridge_core::telemetry::init_json_logging;
use ledgerbridge_core::SystemClock;
use webhook_intake::{lambda_adapter, Deps, RotatingVerifier, SecretsBackend};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_json_logging();
    let cfg = IntakeConfig::from_env(Env::from_process())?;
    let sdk = sdk_config(cfg.endpoint_url.as_deref()).await;
    let backend = match &cfg.webhook_secrets {
        SecretLocation::SecretsManager(id) => SecretsBackend::Aws(
            CachedSecrets::new(
                SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(&sdk)),
                cfg.secret_ttl,
            ),
            id.clone(),
        ),
        SecretLocation::Environment => SecretsBackend::Env(
            CachedSecrets::new(EnvSecrets::from_process_env(), cfg.secret_ttl),
            "LEDGERBRIDGE_WEBHOOK_SECRETS".to_owned(),
        ),
    };
    let deps = Deps::new(
        SqsQueue::new(
            aws_sdk_sqs::Client::new(&sdk),
            &cfg.queue_url,
            cfg.max_message_bytes,
        ),
        DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &cfg.state_table),
        RotatingVerifier::new(backend, cfg.tolerance_secs),
        SystemClock,
        &cfg,
    );
    lambda_http::run(lambda_http::service_fn(|req| lambda_adapter(&deps, req))).await
}
