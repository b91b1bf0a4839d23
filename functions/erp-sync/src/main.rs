//! Lambda entry point: logging, config, clients once; then one handler call per invocation
//! (an SQS batch from the ERP events queue).

use erp_sync::ErpSyncConfig;
use lambda_runtime::{service_fn, LambdaEvent};
use ledgerbridge_adapters::aws::sdk_config;
use ledgerbridge_core::config::Env;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    ledgerbridge_core::telemetry::init_json_logging();
    let cfg = ErpSyncConfig::from_env(Env::from_process())?;
    let sdk = sdk_config(cfg.endpoint_url.as_deref()).await;
    let deps = erp_sync::aws::build(&sdk, &cfg).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let deps = &deps;
        async move { Ok::<_, lambda_runtime::Error>(deps.handle(event.payload).await?) }
    }))
    .await
}
