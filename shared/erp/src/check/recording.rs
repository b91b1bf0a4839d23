//! The golden recording of `ledgerbridge erp check --write`: every HTTP request the connector
//! sent during the document cycle and the ERP's response, with credentials and personal data
//! redacted, as JSON Lines (format documented in docs/erp-connectors.md, "Golden recordings").
//!
//! Line 1 is a [`RecordingHeader`]; every further line one [`Exchange`], in the order sent.
//! Redaction is the same function on the recording side and the replay side, so a replay can
//! compare what a connector sends now with what it sent against the real ERP.

use crate::kind::ErpKind;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The `format` of line 1.
pub const FORMAT: &str = "ledgerbridge-erp-recording";
/// The format version this build writes and reads.
pub const VERSION: u32 = 1;
/// What a redacted value becomes.
pub const REDACTED: &str = "[redacted]";

/// Line 1: what was recorded, and what a replay needs to send the same requests again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingHeader {
    pub format: String,
    pub version: u32,
    pub erp: ErpKind,
    /// The run id the cycle's references and customer code were made from.
    pub run_id: String,
    /// The documents' date.
    pub date: String,
    /// The path prefix of the ERP's base URL (e.g. Epicor's `/KineticLive`), without host.
    pub base_path: String,
    /// The ERP settings with credentials and the host removed (what a replay builds its
    /// connector from, with its own base URL and test credentials).
    pub settings: Value,
    /// The cycle's inputs (item, accounts, payment method, reason, currency).
    pub cycle: Value,
}

/// One request as sent (after redaction).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedHttpRequest {
    pub method: String,
    /// Path from the server root, including the base path.
    pub path: String,
    /// The query string as sent (percent-encoded), values with e-mail addresses redacted.
    #[serde(default)]
    pub query: Option<String>,
    /// Only content negotiation headers; credential headers appear with the value redacted.
    pub headers: BTreeMap<String, String>,
    /// JSON body (redacted), a string for a non-JSON body, `null` for none.
    pub body: Value,
}

/// The ERP's response (after redaction).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedHttpResponse {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Value,
}

/// One request and its response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    pub seq: u64,
    pub request: RecordedHttpRequest,
    pub response: RecordedHttpResponse,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("empty recording")]
    Empty,
    #[error("not a {FORMAT} file (format {found:?}, version {version})")]
    Format { found: String, version: u32 },
}

/// Headers kept as they are.
const KEPT_HEADERS: [&str; 3] = ["content-type", "accept", "retry-after"];

/// Is this header a credential (its value is never recorded)?
pub fn is_secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "authorization",
        "key",
        "token",
        "cookie",
        "secret",
        "password",
        "auth",
    ]
    .iter()
    .any(|p| n.contains(p))
}

/// The headers worth recording: content negotiation as is, credentials as [`REDACTED`],
/// everything else (host, length, user agent) left out.
pub fn redact_headers<'a>(
    headers: impl Iterator<Item = (&'a str, &'a str)>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, value) in headers {
        let n = name.to_ascii_lowercase();
        if is_secret_header(&n) {
            out.insert(n, REDACTED.to_owned());
        } else if KEPT_HEADERS.contains(&n.as_str()) {
            out.insert(n, value.to_owned());
        }
    }
    out
}

/// Keys whose values are personal data or credentials, matched case-insensitively as parts
/// of the key (`CustName`, `EMailAddress`, `AddrLine1`, `PhoneNum`, …).
const PERSONAL_KEYS: [&str; 14] = [
    "email", "name", "addr", "address", "city", "state", "zip", "postal", "phone", "fax",
    "contact", "password", "api_key", "token",
];

fn is_personal_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    PERSONAL_KEYS.iter().any(|p| k.contains(p))
}

/// Does this text carry an e-mail address?
fn has_email(s: &str) -> bool {
    s.split(|c: char| c.is_whitespace() || c == '\'' || c == '"' || c == '=' || c == '&')
        .any(|w| {
            w.split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        })
}

/// Redact a JSON value: values under personal keys become [`REDACTED`] (objects and arrays
/// under them too), strings carrying an e-mail address anywhere else likewise.
pub fn redact_json(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                if is_personal_key(k) && !x.is_null() {
                    out.insert(k.clone(), Value::String(REDACTED.to_owned()));
                } else {
                    out.insert(k.clone(), redact_json(x));
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(redact_json).collect()),
        Value::String(s) if has_email(s) => Value::String(REDACTED.to_owned()),
        other => other.clone(),
    }
}

/// A body as recorded: parsed and redacted JSON, text (redacted when it carries an e-mail
/// address), or `null` when empty.
pub fn redact_body(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => redact_json(&v),
        Err(_) => {
            let text = String::from_utf8_lossy(bytes);
            if has_email(&text) {
                Value::String(REDACTED.to_owned())
            } else {
                Value::String(text.into_owned())
            }
        }
    }
}

/// A query string with the values of personal keys and e-mail addresses redacted.
pub fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => {
                let decoded = v.replace("%40", "@").replace("%2540", "@");
                if is_personal_key(k) || has_email(&decoded) {
                    format!("{k}={REDACTED}")
                } else {
                    pair.to_owned()
                }
            }
            None => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The recording as JSON Lines.
pub fn render(
    header: &RecordingHeader,
    exchanges: &[Exchange],
) -> Result<String, serde_json::Error> {
    let mut out = serde_json::to_string(header)?;
    out.push('\n');
    for e in exchanges {
        out.push_str(&serde_json::to_string(e)?);
        out.push('\n');
    }
    Ok(out)
}

/// Read a recording.
pub fn parse(text: &str) -> Result<(RecordingHeader, Vec<Exchange>), RecordingError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, first) = lines.next().ok_or(RecordingError::Empty)?;
    let header: RecordingHeader =
        serde_json::from_str(first).map_err(|e| RecordingError::Line {
            line: 1,
            message: e.to_string(),
        })?;
    if header.format != FORMAT || header.version != VERSION {
        return Err(RecordingError::Format {
            found: header.format,
            version: header.version,
        });
    }
    let mut exchanges = Vec::new();
    for (i, l) in lines {
        exchanges.push(serde_json::from_str(l).map_err(|e| RecordingError::Line {
            line: i + 1,
            message: e.to_string(),
        })?);
    }
    Ok((header, exchanges))
}

/// Settings fit for a recording: credentials removed, the base URL cut to its path.
pub fn settings_for_recording(settings: &Value) -> Value {
    let mut v = settings.clone();
    if let Some(o) = v.as_object_mut() {
        for k in ["api_key", "user", "password", "bearer_token"] {
            o.remove(k);
        }
        if let Some(Value::String(url)) = o.get("base_url").cloned() {
            o.insert("base_url".into(), Value::String(base_path(&url)));
        }
        if let Some(Value::Object(sql)) = o.get_mut("sqlserver") {
            sql.insert("host".into(), Value::String(REDACTED.to_owned()));
        }
    }
    v
}

/// The path of a base URL (`https://erp.example.com/KineticLive/` → `/KineticLive`).
pub fn base_path(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("");
    path.trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn credentials_and_personal_data_are_redacted() {
        let h = redact_headers(
            [
                ("Authorization", "Basic c2VjcmV0"),
                ("x-api-key", "k-123"),
                ("X-API-Key", "k-123"),
                ("Content-Type", "application/json"),
                ("host", "erp.example.com"),
            ]
            .into_iter(),
        );
        assert_eq!(h.get("authorization").map(String::as_str), Some(REDACTED));
        assert_eq!(h.get("x-api-key").map(String::as_str), Some(REDACTED));
        assert_eq!(
            h.get("content-type").map(String::as_str),
            Some("application/json")
        );
        assert!(!h.contains_key("host"));
        let body = json!({"CustID": "LBCK01", "Name": "Ann Lee", "EMailAddress": "ann@example.com",
            "Address1": "1 Main St", "PhoneNum": 5551234, "Lines": [{"Memo": "to ann@example.com"}],
            "Amount": "1.00", "State": null});
        let r = redact_json(&body);
        assert_eq!(r["CustID"], "LBCK01");
        assert_eq!(r["Amount"], "1.00");
        for k in ["Name", "EMailAddress", "Address1", "PhoneNum"] {
            assert_eq!(r[k], REDACTED, "{k}");
        }
        assert_eq!(r["Lines"][0]["Memo"], REDACTED);
        assert!(r["State"].is_null());
        assert_eq!(
            redact_query("email=ann%40example.com&reference=LB-x-CU"),
            "email=[redacted]&reference=LB-x-CU"
        );
        assert_eq!(
            redact_query("%24filter=EMailAddress%20eq%20%27ann%40example.com%27"),
            "%24filter=[redacted]"
        );
        assert_eq!(redact_body(b""), Value::Null);
        assert_eq!(redact_body(b"plain"), json!("plain"));
    }

    #[test]
    fn a_recording_round_trips_and_other_files_are_refused() {
        let header = RecordingHeader {
            format: FORMAT.into(),
            version: VERSION,
            erp: ErpKind::SagePro,
            run_id: "abc123".into(),
            date: "2026-03-16".into(),
            base_path: String::new(),
            settings: settings_for_recording(
                &json!({"kind": "sagepro", "base_url": "https://sp.example.com/x/", "api_key": "k"}),
            ),
            cycle: json!({}),
        };
        assert_eq!(
            header.settings,
            json!({"kind": "sagepro", "base_url": "/x"})
        );
        let ex = Exchange {
            seq: 1,
            request: RecordedHttpRequest {
                method: "GET".into(),
                path: "/api/v1/customers".into(),
                query: Some("reference=LB-x-CU".into()),
                headers: BTreeMap::new(),
                body: Value::Null,
            },
            response: RecordedHttpResponse {
                status: 200,
                headers: BTreeMap::new(),
                body: json!({"data": []}),
            },
        };
        let text = render(&header, std::slice::from_ref(&ex)).unwrap();
        let (h, e) = parse(&text).unwrap();
        assert_eq!(h, header);
        assert_eq!(e, vec![ex]);
        assert!(matches!(parse(""), Err(RecordingError::Empty)));
        assert!(matches!(
            parse(
                r#"{"format":"other","version":1,"erp":"epicor","run_id":"","date":"","base_path":"","settings":{},"cycle":{}}"#
            ),
            Err(RecordingError::Format { .. })
        ));
        assert_eq!(
            base_path("https://erp.example.com/KineticLive/"),
            "/KineticLive"
        );
        assert_eq!(base_path("http://127.0.0.1:80"), "");
    }
}
