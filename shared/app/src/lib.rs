//! Wiring: one builder per stage and one [`Defaults`] holding the figures they share.
//!
//! Every Lambda `main` is logging, `Config::from_env`, `app::<stage>::build(&sdk, &cfg)` and
//! `run`; the local runner and the on-premises agent build the same stages from the same
//! defaults.

pub mod activity;
pub mod defaults;
pub mod erp_poll;
pub mod erp_post;
pub mod erp_sync;
pub mod intake;
pub mod parameters;
pub mod payout_reconciliation;
pub mod stages;
pub mod transform;

pub use defaults::{Defaults, DEFAULTS};

use ledgerbridge_adapters::aws::SecretsManagerSource;
use ledgerbridge_core::secrets::SecretSource;
use ledgerbridge_stripe::{LazyStripe, StripeClient, StripeClientConfig, StripeError};

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

/// The Stripe client built on first use: the key is read from Secrets Manager (`secret_id`)
/// when the first request needs it, not during a cold start, and kept for the container's
/// life. A failed read (Secrets Manager unreachable or throttled, the secret missing or
/// unusable) is [`StripeError::KeyUnavailable`](ledgerbridge_stripe::StripeError), which is
/// retriable: the message is retried, never parked.
pub fn stripe_on_first_use(
    secrets: &SecretsManagerSource,
    secret_id: &str,
    api_base: Option<&str>,
) -> LazyStripe {
    let secrets = secrets.clone();
    let secret_id = secret_id.to_owned();
    let api_base = api_base.map(str::to_owned);
    LazyStripe::new(std::sync::Arc::new(move || {
        let secrets = secrets.clone();
        let secret_id = secret_id.clone();
        let api_base = api_base.clone();
        Box::pin(async move {
            let key = secrets
                .fetch(&secret_id)
                .await
                .map_err(|e| StripeError::KeyUnavailable(e.to_string()))?;
            let mut cfg = StripeClientConfig::new(key);
            if let Some(base) = api_base {
                cfg = cfg.with_base_url(base);
            }
            StripeClient::new(cfg).map_err(|e| StripeError::KeyUnavailable(e.to_string()))
        })
    }))
}

/// Secrets Manager on the function's SDK configuration.
pub fn secrets_manager(sdk: &aws_config::SdkConfig) -> SecretsManagerSource {
    SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(sdk))
}
