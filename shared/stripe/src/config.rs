//! Client configuration: where Stripe is, the key, and how hard to retry.

use ledgerbridge_core::secrets::Secret;
use std::time::Duration;

/// Stripe's production API.
pub const DEFAULT_BASE_URL: &str = "https://api.stripe.com";

/// How the client talks to Stripe. Build with [`StripeClientConfig::new`] and adjust fields.
#[derive(Debug, Clone)]
pub struct StripeClientConfig {
    /// Scheme, host and optional port, without a trailing `/v1` (a local fake in tests).
    pub base_url: String,
    /// The secret key (`sk_…` / `rk_…`). Printed as `[redacted]`.
    pub api_key: Secret<String>,
    /// Pins `Stripe-Version` when set; otherwise the account default applies.
    pub api_version: Option<String>,
    /// Retries after the first attempt for retriable failures (429, 5xx, timeouts, connection).
    pub max_retries: u32,
    /// First back-off step; doubles per attempt, with full jitter.
    pub base_backoff: Duration,
    /// Upper bound of one computed back-off step.
    pub max_backoff: Duration,
    /// Upper bound of a server-provided `Retry-After` the client is willing to sleep.
    pub max_retry_after: Duration,
    /// Client-side request rate (Stripe's default per-endpoint limit is 25 req/s).
    pub requests_per_second: u32,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
    /// Page size of list calls (Stripe accepts 1–100).
    pub page_limit: u8,
}

impl StripeClientConfig {
    pub fn new(api_key: Secret<String>) -> Self {
        StripeClientConfig {
            base_url: DEFAULT_BASE_URL.to_owned(),
            api_key,
            api_version: None,
            max_retries: 5,
            base_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
            requests_per_second: 20,
            request_timeout: Duration::from_secs(30),
            page_limit: 100,
        }
    }

    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }
}
