//! The three dialects and helpers they share.

pub mod epicor;
pub mod epicor_bo;
pub mod sage500;
pub mod sage500_catalog;
pub mod sage500_schema;
pub mod sage500_tsql;
pub mod sagepro;

use crate::ErpKind;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::str::FromStr;

/// An error answer in the ERP's own style.
pub fn error(erp: ErpKind, status: StatusCode, code: &str, message: &str) -> Response {
    let body = match erp {
        ErpKind::Epicor => json!({
            "HttpStatus": status.as_u16(),
            "ReasonPhrase": if status == StatusCode::UNAUTHORIZED { "Unauthorized" } else { "REST API Exception" },
            "ErrorMessage": message,
            "ErrorType": if status.is_client_error() { "Ice.BLException" } else { "Ice.Common.ServiceUnavailable" },
            "CorrelationId": code,
        }),
        ErpKind::SagePro => json!({"error": {"code": code, "message": message}}),
        ErpKind::Sage500 => json!({"error": message, "code": code}),
    };
    (status, Json(body)).into_response()
}

/// A validation failure: status and message.
pub type Reject = (StatusCode, String);

pub fn bad(msg: impl Into<String>) -> Reject {
    (StatusCode::BAD_REQUEST, msg.into())
}

pub fn text<'a>(v: &'a Value, field: &str) -> Option<&'a str> {
    v.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

/// A decimal sent as a JSON string (OData `IEEE754Compatible=true` / exact JSON). A JSON number
/// is rejected: it would have passed through a binary float somewhere.
pub fn decimal(v: &Value, field: &str) -> Result<Option<Decimal>, String> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Decimal::from_str(s)
            .map(Some)
            .map_err(|_| format!("'{s}' is not a valid Edm.Decimal value for {field}.")),
        Some(other) => Err(format!(
            "Cannot convert the literal '{other}' to the expected type 'Edm.Decimal' for {field}: decimals must be sent as strings (IEEE754Compatible=true)."
        )),
    }
}

pub fn safe_field(f: &str) -> bool {
    !f.is_empty() && f.len() <= 64 && f.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

pub fn bad_db<E: std::fmt::Display>(e: E) -> Reject {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}
