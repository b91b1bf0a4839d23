//! Lambda entry point: logging, config, ERP connector and clients once; then per invocation
//! one SQS batch of commands (the event source caps concurrency at the ERP's rate limit) or,
//! on the schedule, one poll of the ERP for customers changed since the last one.

use lambda_runtime::{service_fn, LambdaEvent};
use ledgerbridge_app::erp_post::{build, PostConfig};
use ledgerbridge_core::config::Env;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    ledgerbridge_core::telemetry::init_json_logging();
    let cfg = PostConfig::from_env(ledgerbridge_app::parameters::load(Env::from_process()).await)?;
    let sdk = ledgerbridge_app::sdk_config(cfg.endpoint_url.as_deref()).await;
    let app = build(&sdk, &cfg).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let app = &app;
        async move { app.handle(event.payload).await }
    }))
    .await
}
