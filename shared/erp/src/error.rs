//! The one error type every connector returns ([`ErpError`]), its classification
//! ([`ErpErrorKind`]) and the classification of transport failures shared by the HTTP
//! connectors.

use crate::commands::CommandError;
use std::time::Duration;

/// How a failure should be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErpErrorKind {
    /// Timeouts, connection errors, 5xx, 429: try again (after `retry_after` when given).
    Retryable,
    /// The ERP rejected the document (validation, unknown customer, closed period, unbalanced
    /// journal) or the command itself is invalid: retrying cannot help.
    Permanent,
    /// 401/403 after one credential refresh: an operator must fix the credentials.
    Authentication,
}

#[derive(Debug, thiserror::Error)]
pub enum ErpError {
    #[error("{erp}: transient failure{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Retryable {
        erp: &'static str,
        status: Option<u16>,
        message: String,
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
        /// The request may have been applied before the failure (timeout or dropped connection
        /// after sending, 5xx): the document must be searched for by reference before retrying.
        may_have_committed: bool,
    },
    #[error("{erp} rejected the request{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Permanent {
        erp: &'static str,
        status: Option<u16>,
        /// The ERP's own message.
        message: String,
    },
    #[error("{erp}: authentication failed{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Authentication {
        erp: &'static str,
        status: Option<u16>,
        message: String,
    },
    #[error("invalid command: {0}")]
    InvalidCommand(#[from] CommandError),
    #[error("{erp}: configuration error: {message}")]
    Config { erp: &'static str, message: String },
}

impl ErpError {
    pub fn kind(&self) -> ErpErrorKind {
        match self {
            ErpError::Retryable { .. } => ErpErrorKind::Retryable,
            ErpError::Permanent { .. } | ErpError::InvalidCommand(_) | ErpError::Config { .. } => {
                ErpErrorKind::Permanent
            }
            ErpError::Authentication { .. } => ErpErrorKind::Authentication,
        }
    }

    pub fn is_retriable(&self) -> bool {
        self.kind() == ErpErrorKind::Retryable
    }

    pub fn is_auth(&self) -> bool {
        self.kind() == ErpErrorKind::Authentication
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ErpError::Retryable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub fn may_have_committed(&self) -> bool {
        matches!(
            self,
            ErpError::Retryable {
                may_have_committed: true,
                ..
            }
        )
    }

    /// A permanent error raised by the connector itself (an unreadable success response, a
    /// value the ERP cannot hold).
    pub fn permanent(erp: &'static str, message: impl Into<String>) -> Self {
        ErpError::Permanent {
            erp,
            status: None,
            message: message.into(),
        }
    }
}

/// Classify a transport-level failure of an HTTP call (no HTTP status was received).
/// `sent` is whether the request may have reached the server (anything but a failed connect).
pub fn classify_transport(erp: &'static str, err: &reqwest::Error) -> ErpError {
    let may_have_committed = !err.is_connect() && !err.is_builder();
    if err.is_builder() {
        return ErpError::Config {
            erp,
            message: format!("request could not be built: {err}"),
        };
    }
    let what = if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connection failed"
    } else if err.is_body() || err.is_decode() {
        "response body lost"
    } else {
        "transport error"
    };
    ErpError::Retryable {
        erp,
        status: None,
        message: format!("{what}: {}", without_url(err)),
        retry_after: None,
        may_have_committed,
    }
}

/// reqwest errors print the URL; keep only the error chain (URLs carry no secrets here, but
/// query strings might carry references we do not need in every log line).
fn without_url(err: &reqwest::Error) -> String {
    let mut s = String::new();
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(err);
    while let Some(e) = cur {
        if !s.is_empty() {
            s.push_str(": ");
        }
        s.push_str(&e.to_string());
        cur = e.source();
    }
    if s.is_empty() {
        s = "request failed".into();
    }
    s
}

/// Parse an HTTP `Retry-After` header given in whole seconds (RFC 9110 delay-seconds); the
/// HTTP-date form and absurd values are treated as absent.
pub fn parse_retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let secs: u64 = v.trim().parse().ok()?;
    (secs < 86_400).then(|| Duration::from_secs(secs))
}
