//! Lambda entry point: logging, config, clients once; then one SQS batch per invocation.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use ledgerbridge_app::transform::{build, TransformConfig};
use ledgerbridge_core::config::Env;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    ledgerbridge_core::telemetry::init_json_logging();
    let cfg =
        TransformConfig::from_env(ledgerbridge_app::parameters::load(Env::from_process()).await)?;
    let sdk = ledgerbridge_app::sdk_config(cfg.endpoint_url.as_deref()).await;
    let app = build(&sdk, &cfg).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let app = &app;
        async move { Ok::<_, lambda_runtime::Error>(app.handle(event.payload).await?) }
    }))
    .await
}
