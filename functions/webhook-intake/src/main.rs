//! Lambda entry point: logging, config, clients once; then one handler call per request
//! (`POST /webhook` from Stripe, `POST /erp/customers` from the ERP side).

use ledgerbridge_core::aws::sdk_config;
use ledgerbridge_core::config::Env;
use ledgerbridge_core::telemetry::init_json_logging;
use ledgerbridge_core::SystemClock;
use webhook_intake::routes::{aws::build, handle_request, ErpRouteConfig};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_json_logging();
    let cfg = webhook_intake::config_from_env(Env::from_process())?;
    let erp = ErpRouteConfig::from_env(Env::from_process())?;
    if erp.is_none() {
        tracing::info!("ERP events route not configured: POST /erp/customers answers 404");
    }
    let sdk = sdk_config(cfg.endpoint_url.as_deref()).await;
    let app = build(&sdk, &cfg, erp.as_ref(), SystemClock);
    lambda_http::run(lambda_http::service_fn(|req| handle_request(&app, req))).await
}
