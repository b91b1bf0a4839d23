//! Typed errors of the Stripe boundary, with retryability decided in one place.

use std::time::Duration;

/// The `error` object of a Stripe error response.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct StripeApiError {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub param: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    /// The configuration cannot produce a request (bad base URL, header value).
    #[error("invalid Stripe client configuration: {0}")]
    Config(String),
    /// An argument was rejected before sending (an id with characters a path cannot hold).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The API key could not be read (a secret store unavailable or throttled, the secret
    /// missing or unusable). Retriable: the message that needed Stripe waits for the key and
    /// is never parked for it.
    #[error("Stripe API key unavailable: {0}")]
    KeyUnavailable(String),
    /// The request timed out or the connection failed.
    #[error("Stripe unreachable: {0}")]
    Transport(#[source] reqwest::Error),
    /// Stripe answered 429.
    #[error("Stripe rate limit (429){}", retry_after_text(*.retry_after))]
    RateLimited { retry_after: Option<Duration> },
    /// Stripe answered with an error status.
    #[error("Stripe returned {status}: {}", .error.message.as_deref().unwrap_or("no message"))]
    Api {
        status: u16,
        error: StripeApiError,
        /// `Stripe-Should-Retry`, when Stripe sent it.
        should_retry: Option<bool>,
        request_id: Option<String>,
    },
    /// A 2xx body that does not parse as the expected object.
    #[error("unexpected Stripe response for {what}: {message}")]
    Decode { what: String, message: String },
    /// Retries exhausted; the last error is kept.
    #[error("gave up after {attempts} attempts: {last}")]
    Exhausted {
        attempts: u32,
        last: Box<StripeError>,
    },
}

fn retry_after_text(d: Option<Duration>) -> String {
    d.map(|d| format!(", retry after {} ms", d.as_millis()))
        .unwrap_or_default()
}

impl StripeError {
    /// The single retry classifier: timeouts, connection failures, 429, 409 lock conflicts and
    /// 5xx are retriable (unless Stripe says `Stripe-Should-Retry: false`); validation,
    /// authentication, not-found and decoding errors are permanent.
    pub fn is_retriable(&self) -> bool {
        match self {
            StripeError::Config(_)
            | StripeError::InvalidRequest(_)
            | StripeError::Decode { .. } => false,
            StripeError::Transport(e) => !e.is_builder() && !e.is_decode(),
            StripeError::RateLimited { .. } | StripeError::KeyUnavailable(_) => true,
            StripeError::Api {
                status,
                should_retry,
                ..
            } => match should_retry {
                Some(flag) => *flag,
                None => *status == 429 || *status == 409 || *status >= 500,
            },
            StripeError::Exhausted { last, .. } => last.is_retriable(),
        }
    }

    /// HTTP status of an API error, if any.
    pub fn status(&self) -> Option<u16> {
        match self {
            StripeError::Api { status, .. } => Some(*status),
            StripeError::RateLimited { .. } => Some(429),
            StripeError::Exhausted { last, .. } => last.status(),
            _ => None,
        }
    }

    /// True for a 404 (`resource_missing`).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, should_retry: Option<bool>) -> StripeError {
        StripeError::Api {
            status,
            error: StripeApiError::default(),
            should_retry,
            request_id: None,
        }
    }

    #[test]
    fn classification() {
        assert!(api(500, None).is_retriable());
        assert!(api(503, None).is_retriable());
        assert!(api(429, None).is_retriable());
        assert!(api(409, None).is_retriable());
        assert!(!api(400, None).is_retriable());
        assert!(!api(401, None).is_retriable());
        assert!(!api(404, None).is_retriable());
        assert!(
            !api(500, Some(false)).is_retriable(),
            "Stripe-Should-Retry: false wins"
        );
        assert!(
            api(400, Some(true)).is_retriable(),
            "Stripe-Should-Retry: true wins"
        );
        assert!(StripeError::RateLimited { retry_after: None }.is_retriable());
        assert!(!StripeError::Decode {
            what: "x".into(),
            message: "y".into()
        }
        .is_retriable());
        assert!(!StripeError::Config("x".into()).is_retriable());
        let ex = StripeError::Exhausted {
            attempts: 3,
            last: Box::new(api(503, None)),
        };
        assert!(ex.is_retriable());
        assert_eq!(ex.status(), Some(503));
        assert!(api(404, None).is_not_found());
    }
}
