//! The one place Epicor answers are classified.
//!
//! - 401/403 → authentication; 408/429 → retryable; 503 and other 5xx without an Epicor
//!   message → retryable (possibly committed).
//! - 500 with an Epicor `ErrorMessage` (a business-rule exception) → permanent, with Epicor's
//!   words, unless the message marks it transient ([`reclassify`], configured markers).
//! - 200 from `UpdateExt` with `errorsOccurred = true` → permanent, with the `BOUpdError` texts
//!   ([`update_ext_failure`]).

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

/// Whether the body is Epicor's business-exception shape (`ErrorMessage`, not a gateway page).
fn business_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let msg = v.get("ErrorMessage").and_then(Value::as_str)?;
    let kind = v.get("ErrorType").and_then(Value::as_str).unwrap_or("");
    if msg.trim().is_empty() || kind.contains("ServiceUnavailable") {
        return None;
    }
    Some(clip(msg))
}

/// Classify a non-2xx answer.
pub fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ErpError {
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        if let Some(message) = business_message(body) {
            return ErpError::Permanent {
                erp: ERP,
                status: Some(500),
                message,
            };
        }
    }
    classify_status(ERP, status, headers, erp_message(body))
}

/// A permanent HTTP 500 whose message contains one of `transient_markers` (case-insensitive)
/// becomes retryable, possibly committed; everything else is returned unchanged.
pub fn reclassify(err: ErpError, transient_markers: &[String]) -> ErpError {
    match err {
        ErpError::Permanent {
            erp,
            status: Some(500),
            message,
        } => {
            let lower = message.to_lowercase();
            if transient_markers
                .iter()
                .any(|m| !m.is_empty() && lower.contains(&m.to_lowercase()))
            {
                ErpError::Retryable {
                    erp,
                    status: Some(500),
                    message,
                    retry_after: None,
                    may_have_committed: true,
                }
            } else {
                ErpError::Permanent {
                    erp,
                    status: Some(500),
                    message,
                }
            }
        }
        other => other,
    }
}

/// An `UpdateExt` answer (HTTP 200) that reports business errors: `parameters.errorsOccurred`
/// is true and `returnObj.BOUpdError` lists them. Permanent, with Epicor's texts.
pub fn update_ext_failure(body: &Value) -> Option<ErpError> {
    let failed = body
        .pointer("/parameters/errorsOccurred")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if !failed {
        return None;
    }
    let texts: Vec<String> = body
        .pointer("/returnObj/BOUpdError")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let text = r.get("ErrorText").and_then(Value::as_str)?;
            Some(match r.get("TableName").and_then(Value::as_str) {
                Some(t) if !t.is_empty() => format!("{t}: {text}"),
                _ => text.to_owned(),
            })
        })
        .collect();
    let message = if texts.is_empty() {
        "UpdateExt reported errors without BOUpdError rows".to_owned()
    } else {
        texts.join("; ")
    };
    Some(ErpError::Permanent {
        erp: ERP,
        status: Some(200),
        message: clip(&message),
    })
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

    #[test]
    fn business_500_is_permanent_unless_marked_transient() {
        let h = HeaderMap::new();
        let body = br#"{"HttpStatus":500,"ReasonPhrase":"REST API Exception","ErrorMessage":"Invalid Payment Method.","ErrorType":"Ice.Common.BusinessObjectException"}"#;
        let markers = crate::epicor::EpicorErrorSettings::default().transient_markers;
        let e = reclassify(
            classify(StatusCode::INTERNAL_SERVER_ERROR, &h, body),
            &markers,
        );
        assert_eq!(e.kind(), ErpErrorKind::Permanent);
        assert!(e.to_string().contains("Invalid Payment Method."), "{e}");
        let body = br#"{"ErrorMessage":"Transaction (Process ID 61) was deadlocked on lock resources.","ErrorType":"Ice.Common.BusinessObjectException"}"#;
        let e = reclassify(
            classify(StatusCode::INTERNAL_SERVER_ERROR, &h, body),
            &markers,
        );
        assert_eq!(e.kind(), ErpErrorKind::Retryable);
        assert!(e.may_have_committed());
        // A 500 without Epicor's message (a gateway or crash page) stays retryable.
        let e = classify(StatusCode::INTERNAL_SERVER_ERROR, &h, b"<html>oops</html>");
        assert_eq!(e.kind(), ErpErrorKind::Retryable);
        // 503 from the service-unavailable shape stays retryable, nothing committed.
        let body = br#"{"ErrorMessage":"The service is temporarily unavailable.","ErrorType":"Ice.Common.ServiceUnavailable"}"#;
        let e = classify(StatusCode::SERVICE_UNAVAILABLE, &h, body);
        assert_eq!(e.kind(), ErpErrorKind::Retryable);
        assert!(!e.may_have_committed());
    }

    #[test]
    fn update_ext_errors_are_permanent_with_their_texts() {
        let ok = serde_json::json!({"returnObj": {"BOUpdError": []}, "parameters": {"errorsOccurred": false}});
        assert!(update_ext_failure(&ok).is_none());
        assert!(update_ext_failure(&serde_json::json!({"value": []})).is_none());
        let failed = serde_json::json!({
            "returnObj": {"BOUpdError": [{"TableName": "OrderDtl", "ErrorLevel": "Error",
                "ErrorType": "Exception", "ErrorText": "Part X not found."}]},
            "parameters": {"errorsOccurred": true}});
        let e = update_ext_failure(&failed).unwrap();
        assert_eq!(e.kind(), ErpErrorKind::Permanent);
        assert!(e.to_string().contains("OrderDtl: Part X not found."), "{e}");
    }
}
