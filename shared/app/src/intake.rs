//! webhook-intake: `POST /webhook` from Stripe and `POST /erp/customers` from the ERP side; the
//! handling itself is `ledgerbridge_intake`.

use crate::Error;
use ledgerbridge_adapters::aws::{DynamoStore, SqsQueue};
use ledgerbridge_core::config::{Env, IntakeConfig};
use ledgerbridge_core::SystemClock;
use ledgerbridge_intake::routes::{App, ErpRouteConfig};

pub use ledgerbridge_intake::routes::handle_request;

/// Both routes' settings: the Stripe webhook route's, and the ERP events route's (if on).
#[derive(Debug, Clone)]
pub struct Config {
    pub intake: IntakeConfig,
    pub erp: Option<ErpRouteConfig>,
}

impl Config {
    pub fn from_env() -> Result<Self, Error> {
        let intake = ledgerbridge_intake::config_from_env(Env::from_process())?;
        let erp = ErpRouteConfig::from_env(Env::from_process())?;
        if erp.is_none() {
            tracing::info!("ERP events route not configured: POST /erp/customers answers 404");
        }
        Ok(Config { intake, erp })
    }
}

/// Both routes on AWS (SQS, DynamoDB, Secrets Manager).
pub fn build(sdk: &aws_config::SdkConfig, cfg: &Config) -> App<SqsQueue, DynamoStore, SystemClock> {
    ledgerbridge_intake::routes::aws::build(sdk, &cfg.intake, cfg.erp.as_ref(), SystemClock)
}
