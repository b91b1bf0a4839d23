//! The one place Epicor answers are classified.

use crate::error::ErpError;
use crate::http::{classify_status, clip};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::Value;

use super::mapping::ERP;

/// Epicor's own message from an error body: REST v2 answers
/// `{"HttpStatus":400,"ReasonPhrase":"REST API Exception","ErrorMessage":"…","ErrorType":"Ice.BLException"}`;
/// the OData layer answers `{"error":{"code":"…","message":"…"}}`.
pub fn erp_message(body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let msg = parsed.as_ref().and_then(|v| {
        v.get("ErrorMessage")
            .and_then(Value::as_str)
            .or_else(|| v.pointer("/error/message").and_then(Value::as_str))
            .map(str::to_owned)
    });
    clip(&msg.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned()))
}

/// Classify a non-2xx answer.
pub fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ErpError {
    classify_status(ERP, status, headers, erp_message(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErpErrorKind;
    use reqwest::header::{HeaderValue, RETRY_AFTER};

    #[test]
    fn classification_table() {
        let mut h = HeaderMap::new();
        let body = br#"{"HttpStatus":400,"ReasonPhrase":"REST API Exception","ErrorMessage":"Customer not found.","ErrorType":"Ice.BLException"}"#;
        let e = classify(StatusCode::BAD_REQUEST, &h, body);
        assert_eq!(e.kind(), ErpErrorKind::Permanent);
        assert!(e.to_string().contains("Customer not found."));
        assert!(classify(StatusCode::UNAUTHORIZED, &h, b"").is_auth());
        assert!(classify(StatusCode::FORBIDDEN, &h, b"").is_auth());
        assert!(classify(StatusCode::BAD_GATEWAY, &h, b"<html>").may_have_committed());
        h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        let e = classify(StatusCode::TOO_MANY_REQUESTS, &h, b"{}");
        assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(3)));
        assert!(!e.may_have_committed());
        let e = classify(
            StatusCode::NOT_FOUND,
            &HeaderMap::new(),
            br#"{"error":{"code":"404","message":"Resource not found for the segment 'Foo'."}}"#,
        );
        assert!(e.to_string().contains("Resource not found"));
    }
}
