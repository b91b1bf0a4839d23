//! Lambda entry point: logging, config, clients once; then one handler call per request
//! (`POST /webhook` from Stripe, `POST /erp/customers` from the ERP side).

use ledgerbridge_app::intake::{build, handle_request, Config};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    ledgerbridge_core::telemetry::init_json_logging();
    let cfg = Config::from_env()?;
    let sdk = ledgerbridge_app::sdk_config(cfg.intake.endpoint_url.as_deref()).await;
    let app = build(&sdk, &cfg);
    lambda_http::run(lambda_http::service_fn(|req| handle_request(&app, req))).await
}
