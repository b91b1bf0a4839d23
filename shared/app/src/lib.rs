//! Wiring: one builder per stage and one [`Defaults`] holding the figures they share.
//!
//! Every Lambda `main` is logging, `Config::from_env`, `app::<stage>::build(&sdk, &cfg)` and
//! `run`; the local runner and the on-premises agent build the same stages from the same
//! defaults.

pub mod defaults;
pub mod erp_poll;
pub mod erp_post;
pub mod erp_sync;
pub mod intake;
pub mod payout_reconciliation;
pub mod stages;
pub mod transform;

pub use defaults::{Defaults, DEFAULTS};

use ledgerbridge_adapters::aws::SecretsManagerSource;
use ledgerbridge_core::secrets::SecretSource;
use ledgerbridge_stripe::{StripeClient, StripeClientConfig};

/// What a builder or a handler can fail with at the Lambda boundary.
pub type Error = lambda_runtime::Error;

/// The SDK configuration of a function (`endpoint` overrides every service endpoint, for moto).
pub use ledgerbridge_adapters::aws::sdk_config;

/// The Stripe client, its key read from Secrets Manager (`secret_id`), its base URL overridden
/// when `api_base` is set (tests, stripe-mock).
pub async fn stripe_client(
    secrets: &SecretsManagerSource,
    secret_id: &str,
    api_base: Option<&str>,
) -> Result<StripeClient, Error> {
    let mut cfg = StripeClientConfig::new(secrets.fetch(secret_id).await?);
    if let Some(base) = api_base {
        cfg = cfg.with_base_url(base);
    }
    Ok(StripeClient::new(cfg)?)
}

/// Secrets Manager on the function's SDK configuration.
pub fn secrets_manager(sdk: &aws_config::SdkConfig) -> SecretsManagerSource {
    SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(sdk))
}
