//! Lambda entry point: logging, config, clients once; then one handler call per invocation
//! (an SQS batch from the reconciliation queue, or a scheduled sweep).

use lambda_runtime::{service_fn, LambdaEvent};
use ledgerbridge_app::payout_reconciliation::{build, handle};
use ledgerbridge_core::config::Env;
use ledgerbridge_recon::service::config::ReconConfig;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    ledgerbridge_core::telemetry::init_json_logging();
    let cfg = ReconConfig::from_env(ledgerbridge_app::parameters::load(Env::from_process()).await)?;
    let sdk = ledgerbridge_app::sdk_config(cfg.endpoint_url.as_deref()).await;
    let deps = build(&sdk, cfg).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let deps = &deps;
        async move { Ok::<_, lambda_runtime::Error>(handle(deps, event.payload).await?) }
    }))
    .await
}
