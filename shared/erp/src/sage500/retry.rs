//! The one place Sage 500 answers are classified: HTTP facade statuses, and procedure outcomes
//! (return code, `ProcessStatus`, migration log).

use super::mapping::{BatchOutcome, ERP};
use crate::error::ErpError;
use crate::http::{classify_status, clip};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::Value;

/// The facade's message from `{"error":"…","code":"…"}`.
pub fn erp_message(body: &[u8]) -> String {
    let v: Option<Value> = serde_json::from_slice(body).ok();
    let msg = v
        .as_ref()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned));
    clip(&msg.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned()))
}

/// Classify a non-2xx answer of the HTTP facade.
pub fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ErpError {
    classify_status(ERP, status, headers, erp_message(body))
}

/// Turn a procedure outcome into success or an error. Success needs `@_oRetVal` 1, every
/// staged row migrated and no failed count; rows at 2 (or return code 2) are a permanent rejection
/// carrying the migration log's reason; return code 3 is a parameter error (a configuration
/// problem: wrong procedure name or parameters); rows left at 0 mean the procedure did not
/// process them, which is reported as retryable-without-commit.
pub fn check_outcome(procedure: &str, o: &BatchOutcome) -> Result<(), ErpError> {
    let reason = || {
        if o.log.is_empty() {
            "no reason in the migration log".to_owned()
        } else {
            clip(&o.log.join("; "))
        }
    };
    let all_processed = !o.process_status.is_empty()
        && o.process_status.iter().all(|s| *s == 1)
        && o.failed.unwrap_or(0) == 0;
    match o.return_code {
        1 if all_processed => Ok(()),
        3 => Err(ErpError::Config {
            erp: ERP,
            message: format!("{procedure} reported a parameter error: {}", reason()),
        }),
        _ if o.process_status.contains(&2) || o.return_code == 2 || o.failed.unwrap_or(0) > 0 => {
            Err(ErpError::Permanent {
                erp: ERP,
                status: None,
                message: format!("{procedure}: {}", reason()),
            })
        }
        1 | 0 if o.process_status.contains(&0) => Err(ErpError::Retryable {
            erp: ERP,
            status: None,
            message: format!("{procedure} left staging rows unprocessed: {}", reason()),
            retry_after: None,
            may_have_committed: false,
        }),
        rc => Err(ErpError::Permanent {
            erp: ERP,
            status: None,
            message: format!("{procedure} returned {rc}: {}", reason()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErpErrorKind;

    fn outcome(rc: i64, st: &[i64], log: &[&str]) -> BatchOutcome {
        BatchOutcome {
            return_code: rc,
            process_status: st.to_vec(),
            log: log.iter().map(|s| s.to_string()).collect(),
            ..BatchOutcome::default()
        }
    }

    #[test]
    fn outcomes() {
        assert!(check_outcome("p", &outcome(1, &[1, 1], &[])).is_ok());
        let e =
            check_outcome("p", &outcome(2, &[2, 2], &["Item ID 'X' is not valid."])).unwrap_err();
        assert_eq!(e.kind(), ErpErrorKind::Permanent);
        assert!(e.to_string().contains("Item ID 'X' is not valid."));
        // A success code with a failed row is still a rejection.
        assert_eq!(
            check_outcome("p", &outcome(1, &[1, 2], &["bad line"]))
                .unwrap_err()
                .kind(),
            ErpErrorKind::Permanent
        );
        assert!(matches!(
            check_outcome("p", &outcome(3, &[], &["Could not find"])),
            Err(ErpError::Config { .. })
        ));
        let e = check_outcome("p", &outcome(1, &[0], &[])).unwrap_err();
        assert!(e.is_retriable() && !e.may_have_committed());
        assert!(check_outcome("p", &outcome(1, &[], &[])).is_err());
        // @_oRetVal 1 means the call ran; a failed count is still a rejection.
        let failed = BatchOutcome {
            failed: Some(1),
            ..outcome(1, &[1], &["TranNo is null"])
        };
        assert_eq!(
            check_outcome("p", &failed).unwrap_err().kind(),
            ErpErrorKind::Permanent
        );
    }

    #[test]
    fn http_classification() {
        let h = HeaderMap::new();
        let e = classify(
            StatusCode::UNAUTHORIZED,
            &h,
            br#"{"error":"Login failed for user 'ledgerbridge'.","code":"login_failed"}"#,
        );
        assert!(e.is_auth());
        assert!(e.to_string().contains("Login failed"));
        assert!(classify(StatusCode::INTERNAL_SERVER_ERROR, &h, b"").may_have_committed());
        assert!(!classify(StatusCode::SERVICE_UNAVAILABLE, &h, b"").may_have_committed());
    }
}
