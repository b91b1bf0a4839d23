//! What the sandbox exports for tests and demos: every request as received
//! (`GET /_admin/requests`) and every document in ERP-neutral form (`GET /_admin/documents`).

use crate::{AppState, ErpKind};
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Largest request body recorded (and accepted) by the sandbox.
const MAX_BODY: usize = 8 * 1024 * 1024;

/// One request as the sandbox received it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// 1, 2, … in arrival order.
    pub seq: u64,
    /// The dialect the path belongs to.
    pub erp: Option<ErpKind>,
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Query parameters, decoded, in order.
    pub query: Vec<(String, String)>,
    /// The body: JSON when it parses, else the text; `null` when empty.
    pub body: Value,
}

/// Whether a document is only entered or already posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocState {
    Entered,
    Posted,
}

/// One line of an exported document; amounts are decimal strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedLine {
    pub description: Option<String>,
    pub item: Option<String>,
    pub account: Option<String>,
    pub quantity: Option<String>,
    pub unit_price: Option<String>,
    /// Debit positive, credit negative for journal lines; quantity × price otherwise.
    pub amount: Option<String>,
}

/// A document in ERP-neutral form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedDocument {
    pub erp: ErpKind,
    /// `customer`, `sales_order`, `invoice`, `credit_memo`, `cash_receipt`, `journal_entry`, or
    /// the ERP's entity name for other records.
    pub kind: String,
    /// The external reference the connector stored, when the document carries one.
    pub reference: Option<String>,
    pub erp_id: String,
    /// The customer code (`CustID`) the document belongs to.
    pub customer: Option<String>,
    pub currency: Option<String>,
    /// Document total as a decimal string.
    pub amount: Option<String>,
    pub lines: Vec<ExportedLine>,
    pub state: DocState,
}

pub(crate) fn erp_of_path(path: &str) -> Option<ErpKind> {
    if path.starts_with("/_admin") {
        None
    } else if path.contains("/api/v2/odata/") {
        Some(ErpKind::Epicor)
    } else if path.starts_with("/api/v1/") {
        Some(ErpKind::SagePro)
    } else if path.starts_with("/sage500/") {
        Some(ErpKind::Sage500)
    } else {
        None
    }
}

/// Middleware: record every request outside `/_admin` before it is handled.
pub(crate) async fn record(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if path.starts_with("/_admin") {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
    };
    let query: Vec<(String, String)> = parts.uri.query().map(url_decode_pairs).unwrap_or_default();
    let body_value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    if let Ok(mut log) = s.requests.lock() {
        let seq = log.len() as u64 + 1;
        log.push(RecordedRequest {
            seq,
            erp: erp_of_path(&path),
            method: parts.method.as_str().to_owned(),
            path,
            query,
            body: body_value,
        });
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// `a=b&c=d` with `+` and `%XX` decoded.
fn url_decode_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

pub(crate) fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(x) => {
                        out.push(x);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_are_decoded() {
        assert_eq!(
            url_decode_pairs("%24filter=PONum+eq+%27LB-1%27&%24top=2&x=%zz"),
            vec![
                ("$filter".to_owned(), "PONum eq 'LB-1'".to_owned()),
                ("$top".to_owned(), "2".to_owned()),
                ("x".to_owned(), "%zz".to_owned()),
            ]
        );
        assert_eq!(erp_of_path("/K/api/v2/odata/C/S/X"), Some(ErpKind::Epicor));
        assert_eq!(erp_of_path("/_admin/requests"), None);
    }
}
