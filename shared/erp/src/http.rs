//! Shared plumbing of the HTTP connectors (Epicor, Sage Pro, the Sage 500 sandbox facade):
//! pass the connector's [`Gate`] (circuit breaker, `Retry-After` hold, request rate), send a
//! request, refresh credentials once on 401/403, read the body, and hand any non-2xx answer to
//! the connector's own classifier.

use crate::connector::Credentials;
use crate::error::{classify_transport, parse_retry_after, ErpError};
use crate::gate::{Gate, Outcome};
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};

/// The process-wide TLS configuration (one load of the system roots), for a connector's client.
pub(crate) fn shared_tls(
    erp: &'static str,
) -> Result<ledgerbridge_core::tls::ClientConfig, ErpError> {
    ledgerbridge_core::tls::client_config().map_err(|e| ErpError::Config {
        erp,
        message: e.to_string(),
    })
}

/// A connector's classifier of a non-success HTTP answer (its `retry.rs`).
pub(crate) type Classifier = fn(StatusCode, &HeaderMap, &[u8]) -> ErpError;

/// Send the request built by `build` with the current credentials, through `gate` (a refusal
/// is retryable and sent nothing). On 401/403 refresh the credentials once and resend; a
/// second 401/403 (or no refresher) is an authentication error. Returns the status and body of
/// a 2xx answer.
pub(crate) async fn send<C, B>(
    erp: &'static str,
    gate: &Gate,
    creds: &Credentials<C>,
    build: B,
    classify: Classifier,
) -> Result<(StatusCode, Vec<u8>), ErpError>
where
    C: Clone + Send + Sync + 'static,
    B: Fn(&C) -> RequestBuilder,
{
    creds.refresh_if_stale().await;
    let mut refreshed = false;
    loop {
        let current = creds.current();
        let permit = gate.admit().await.map_err(|e| e.into_erp(erp))?;
        let resp = match build(&current).send().await {
            Ok(r) => r,
            Err(e) => {
                permit.record(Outcome::NoAnswer);
                return Err(classify_transport(erp, &e));
            }
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => {
                permit.record(Outcome::NoAnswer);
                return Err(classify_transport(erp, &e));
            }
        };
        let retry_after = parse_retry_after(&headers);
        if status.is_success() {
            permit.record(Outcome::Answer {
                status: status.as_u16(),
                retry_after,
                retryable: false,
            });
            return Ok((status, body.to_vec()));
        }
        // The outcome is recorded after the connector's classifier has run: a 5xx it calls
        // permanent (a business error, e.g. Epicor's 500 with `ErrorMessage`) is not a failure
        // for the breaker.
        let err = classify(status, &headers, &body);
        permit.record(Outcome::Answer {
            status: status.as_u16(),
            retry_after,
            retryable: err.is_retriable(),
        });
        if err.is_auth() && !refreshed {
            refreshed = true;
            if creds.refresh().await? {
                tracing::warn!(
                    erp,
                    status = status.as_u16(),
                    "credentials rejected; refreshed once and retrying"
                );
                continue;
            }
        }
        return Err(err);
    }
}

/// Shorten an ERP message for an error value (ERP messages can be long HTML pages).
pub(crate) fn clip(s: &str) -> String {
    const MAX: usize = 500;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The status table all three connectors share: 401/403 → authentication (one refresh, then
/// fail loudly); 408/429 → retryable, honouring `Retry-After`, nothing committed; 5xx →
/// retryable and possibly committed (the ERP may fail after its transaction, e.g. in a BPM or the
/// response writer), except 503, which a server sends before doing the work; anything else →
/// permanent, with the ERP's own `message`.
pub(crate) fn classify_status(
    erp: &'static str,
    status: StatusCode,
    headers: &HeaderMap,
    message: String,
) -> ErpError {
    let code = status.as_u16();
    match code {
        401 | 403 => ErpError::Authentication {
            erp,
            status: Some(code),
            message,
        },
        408 | 429 => ErpError::Retryable {
            erp,
            status: Some(code),
            message,
            retry_after: crate::error::parse_retry_after(headers),
            may_have_committed: false,
        },
        500..=599 => ErpError::Retryable {
            erp,
            status: Some(code),
            message,
            retry_after: crate::error::parse_retry_after(headers),
            may_have_committed: code != 503,
        },
        _ => ErpError::Permanent {
            erp,
            status: Some(code),
            message,
        },
    }
}
