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

/// The API's error code (`error.code`), when the answer carries one.
pub fn erp_code(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.pointer("/error/code")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The contract's `409 duplicate_reference` says a record with the reference is already stored
/// (a concurrent poster, or a create whose answer was lost while the search index lagged): the
/// document may be there, so the call is retried as one that may have committed, and the retry
/// searches by reference first and links the stored record. Any other 409 (`duplicate`: a
/// customer number taken under another reference) is permanent and needs a person.
pub fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ErpError {
    if status == StatusCode::CONFLICT && erp_code(body).as_deref() == Some("duplicate_reference") {
        return ErpError::Retryable {
            erp: ERP,
            status: Some(status.as_u16()),
            message: erp_message(body),
            retry_after: None,
            may_have_committed: true,
        };
    }
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
        let dup_ref = classify(
            StatusCode::CONFLICT,
            &h,
            br#"{"error":{"code":"duplicate_reference","message":"invoices IN000001 already has reference LB-in_1-IN"}}"#,
        );
        assert!(dup_ref.is_retriable() && dup_ref.may_have_committed());
        let dup_cust = classify(
            StatusCode::CONFLICT,
            &h,
            br#"{"error":{"code":"duplicate","message":"Customer C1 already exists"}}"#,
        );
        assert_eq!(dup_cust.kind(), ErpErrorKind::Permanent);
    }
}
