//! Lambda entry point: logging, config, clients once; then one handler call per invocation
//! (an SQS batch from the ERP events queue).

use lambda_runtime::{service_fn, LambdaEvent};
use ledgerbridge_app::erp_sync::{build, ErpSyncConfig};
use ledgerbridge_core::config::Env;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    ledgerbridge_core::telemetry::init_json_logging();
    let cfg = ErpSyncConfig::from_env(Env::from_process())?;
    let sdk = ledgerbridge_app::sdk_config(cfg.endpoint_url.as_deref()).await;
    let app = build(&sdk, &cfg).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let app = &app;
        async move { Ok::<_, lambda_runtime::Error>(app.handle(event.payload).await?) }
    }))
    .await
}
