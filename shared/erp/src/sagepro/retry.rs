//! The one place Sage Pro answers are classified.

use super::mapping::ERP;
use crate::error::ErpError;
use crate::http::{classify_status, clip};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::Value;

/// The API's message from `{"error":{"code":"…","message":"…"}}` (or `{"message":"…"}`).
pub fn erp_message(body: &[u8]) -> String {
    let v: Option<Value> = serde_json::from_slice(body).ok();
    let msg = v.as_ref().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("message"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    clip(&msg.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned()))
}

pub fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ErpError {
    classify_status(ERP, status, headers, erp_message(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErpErrorKind;

    #[test]
    fn classification_table() {
        let h = HeaderMap::new();
        let e = classify(
            StatusCode::UNPROCESSABLE_ENTITY,
            &h,
            br#"{"error":{"code":"customer_not_found","message":"Customer STR9 does not exist"}}"#,
        );
        assert_eq!(e.kind(), ErpErrorKind::Permanent);
        assert!(e.to_string().contains("Customer STR9 does not exist"));
        assert!(classify(StatusCode::UNAUTHORIZED, &h, b"").is_auth());
        assert!(classify(StatusCode::SERVICE_UNAVAILABLE, &h, b"").is_retriable());
        assert!(!classify(StatusCode::SERVICE_UNAVAILABLE, &h, b"").may_have_committed());
        assert!(classify(StatusCode::REQUEST_TIMEOUT, &h, b"").is_retriable());
    }
}
