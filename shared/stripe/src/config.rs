//! Client configuration: where Stripe is, the key, and how hard to retry.

use ledgerbridge_core::secrets::Secret;
use std::time::Duration;

/// Stripe's production API.
pub const DEFAULT_BASE_URL: &str = "https://api.stripe.com";

/// Stripe's global rate limit in live mode: 100 operations per second per account
/// (Stripe's rate-limit documentation; individual endpoints may be lower, and a 429 is then
/// retried with back-off).
pub const LIVE_REQUESTS_PER_SECOND: u32 = 100;

/// Stripe's global rate limit in test mode (sandboxes): 25 operations per second.
pub const TEST_REQUESTS_PER_SECOND: u32 = 25;

/// Whether a key reaches live or test data, from its documented prefix (`sk_live_`,
/// `rk_live_`, `sk_test_`, `rk_test_`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMode {
    Live,
    Test,
    /// Any other shape (a local stand-in's placeholder): treated as test mode, the lower limit.
    Unknown,
}

impl KeyMode {
    pub fn of(key: &str) -> KeyMode {
        let mode = key.split('_').nth(1);
        match (key.split('_').next(), mode) {
            (Some("sk" | "rk"), Some("live")) => KeyMode::Live,
            (Some("sk" | "rk"), Some("test")) => KeyMode::Test,
            _ => KeyMode::Unknown,
        }
    }

    /// The client-side rate that keeps one client under Stripe's limit for this mode.
    pub fn requests_per_second(self) -> u32 {
        match self {
            KeyMode::Live => LIVE_REQUESTS_PER_SECOND,
            KeyMode::Test | KeyMode::Unknown => TEST_REQUESTS_PER_SECOND,
        }
    }
}

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
    /// Client-side request rate; `0` turns the limiter off (a local stand-in, not Stripe).
    /// Defaults by the key's mode ([`KeyMode::requests_per_second`]: live 100/s, test 25/s);
    /// lower it when several processes share one account's limit.
    pub requests_per_second: u32,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
    /// Page size of list calls (Stripe accepts 1–100).
    pub page_limit: u8,
    /// How long the invoice payments of a PaymentIntent are remembered, so the events of one
    /// payment (`payment_intent.succeeded`, `charge.succeeded`) cost one look-up; zero turns
    /// the memo off. Default 10 minutes.
    pub payment_lookup_ttl: Duration,
    /// The most PaymentIntents remembered at once (oldest forgotten first). Default 10,000.
    pub payment_lookup_capacity: usize,
}

impl StripeClientConfig {
    pub fn new(api_key: Secret<String>) -> Self {
        let requests_per_second = KeyMode::of(api_key.expose()).requests_per_second();
        StripeClientConfig {
            base_url: DEFAULT_BASE_URL.to_owned(),
            api_key,
            api_version: None,
            max_retries: 5,
            base_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
            requests_per_second,
            request_timeout: Duration::from_secs(30),
            page_limit: 100,
            payment_lookup_ttl: Duration::from_secs(600),
            payment_lookup_capacity: 10_000,
        }
    }

    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// Override the client-side rate (`0`: no limiter, for a local stand-in only).
    pub fn with_requests_per_second(mut self, requests_per_second: u32) -> Self {
        self.requests_per_second = requests_per_second;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(key: &str) -> u32 {
        StripeClientConfig::new(Secret::new(key.to_owned())).requests_per_second
    }

    #[test]
    fn the_rate_follows_the_key_mode() {
        assert_eq!(rate("sk_live_abc"), 100);
        assert_eq!(rate("rk_live_abc"), 100);
        assert_eq!(rate("sk_test_abc"), 25);
        assert_eq!(rate("rk_test_abc"), 25);
        // unknown shapes get the lower limit, never none
        assert_eq!(rate("pk_live_abc"), 25);
        assert_eq!(rate("live"), 25);
        assert_eq!(rate(""), 25);
        assert_eq!(
            StripeClientConfig::new(Secret::new("sk_live_x".into()))
                .with_requests_per_second(0)
                .requests_per_second,
            0
        );
    }
}
