//! The published Sage Pro facade contract (`contracts/sagepro/facade.openapi.json`, an OpenAPI 3.1
//! document embedded at compile time) and a validator for the subset of OpenAPI and JSON Schema
//! it uses.
//!
//! The sandbox's Sage Pro dialect checks every request against the document (unknown fields,
//! over-length values and missing required fields are answered with the documented 422) and every
//! answer it gives (an answer the document does not describe becomes a 500 `internal` error, so a
//! test cannot pass on an undocumented answer). Tests use the same validator on the requests the
//! connector sends.
//!
//! Supported schema keywords: `$ref` (local), `type`, `properties`, `required`,
//! `additionalProperties`, `minProperties`, `items`, `minItems`, `maxItems`, `minLength`,
//! `maxLength` (characters), `pattern`, `enum`, `minimum`, `maximum`, `format` (`date` and
//! `date-time` are checked, `email` is an annotation). Annotations (`description`, `title`,
//! `examples`, `x-…`) are ignored. Any other keyword is reported as a violation, so the document
//! cannot use a rule the validator would silently skip.

use serde_json::{Map, Value};
use std::fmt;
use std::sync::OnceLock;

/// The document's text.
pub const DOCUMENT: &str = include_str!("../contracts/sagepro/facade.openapi.json");

/// What kind of rule a value broke; the sandbox maps it to the documented error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ViolationKind {
    /// A required property or parameter is absent (`missing_field`).
    Missing,
    /// A property or query parameter the document does not define (`unknown_field`).
    Unknown,
    /// A string longer than `maxLength` (`too_long`).
    TooLong,
    /// Wrong type, pattern, enum, range or format (`invalid_field`).
    Invalid,
    /// No operation for the method and path, or no documented answer for the status.
    Undocumented,
    /// The document itself uses something the validator does not support.
    Document,
}

/// One broken rule, at a JSON pointer (`/lines/0/itemId`) or a parameter name (`?email`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub kind: ViolationKind,
    pub at: String,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.at.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.at, self.message)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error("the Sage Pro facade document is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the Sage Pro facade document is not OpenAPI 3.1: {0}")]
    NotOpenApi(String),
}

/// A parsed facade document.
#[derive(Debug, Clone)]
pub struct FacadeContract {
    doc: Value,
}

static EMBEDDED: OnceLock<Result<FacadeContract, String>> = OnceLock::new();

const ANNOTATIONS: [&str; 5] = ["description", "title", "examples", "default", "deprecated"];

impl FacadeContract {
    pub fn parse(text: &str) -> Result<Self, ContractError> {
        let doc: Value = serde_json::from_str(text)?;
        match doc.get("openapi").and_then(Value::as_str) {
            Some(v) if v.starts_with("3.1") => {}
            _ => {
                return Err(ContractError::NotOpenApi(
                    "no \"openapi\": \"3.1.x\"".into(),
                ))
            }
        }
        if !doc.get("paths").is_some_and(Value::is_object) {
            return Err(ContractError::NotOpenApi("no \"paths\" object".into()));
        }
        Ok(FacadeContract { doc })
    }

    /// The embedded document, parsed once.
    pub fn embedded() -> Result<&'static FacadeContract, String> {
        EMBEDDED
            .get_or_init(|| FacadeContract::parse(DOCUMENT).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(Clone::clone)
    }

    pub fn document(&self) -> &Value {
        &self.doc
    }

    /// Every `(method, path template)` the document defines.
    pub fn operations(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(paths) = self.doc.get("paths").and_then(Value::as_object) {
            for (p, item) in paths {
                if let Some(item) = item.as_object() {
                    for m in item.keys() {
                        out.push((m.to_uppercase(), p.clone()));
                    }
                }
            }
        }
        out
    }

    /// The operation for a method and a concrete path, with the path parameters.
    fn operation(&self, method: &str, path: &str) -> Option<(&Value, Vec<(String, String)>)> {
        let paths = self.doc.get("paths")?.as_object()?;
        let segs: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        for (template, item) in paths {
            let tsegs: Vec<&str> = template.split('/').collect();
            if tsegs.len() != segs.len() {
                continue;
            }
            let mut params = Vec::new();
            let matched = tsegs.iter().zip(&segs).all(|(t, s)| {
                if let Some(name) = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                    params.push((name.to_owned(), (*s).to_owned()));
                    !s.is_empty()
                } else {
                    t == s
                }
            });
            if matched {
                return item
                    .get(method.to_ascii_lowercase())
                    .map(|op| (op, params.clone()));
            }
        }
        None
    }

    fn resolve<'a>(&'a self, v: &'a Value) -> Result<&'a Value, Violation> {
        let mut v = v;
        for _ in 0..8 {
            let Some(r) = v.get("$ref").and_then(Value::as_str) else {
                return Ok(v);
            };
            v = r
                .strip_prefix('#')
                .and_then(|p| self.doc.pointer(p))
                .ok_or_else(|| doc_violation(format!("unresolvable $ref {r}")))?;
        }
        Err(doc_violation("$ref chain too long".into()))
    }

    /// Check a request: the operation exists, every query parameter is defined and valid, the
    /// required ones are present, path parameters are valid, and the body matches the request
    /// schema (or is absent when the operation takes none).
    pub fn check_request(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        body: &Value,
    ) -> Result<(), Vec<Violation>> {
        let Some((op, path_params)) = self.operation(method, path) else {
            return Err(vec![undocumented(format!(
                "{method} {path} is not in the contract"
            ))]);
        };
        let mut out = Vec::new();
        let mut declared = Vec::new();
        for p in op
            .get("parameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let p = match self.resolve(p) {
                Ok(p) => p,
                Err(v) => return Err(vec![v]),
            };
            let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
            let place = p.get("in").and_then(Value::as_str).unwrap_or_default();
            let schema = p.get("schema").unwrap_or(&Value::Null);
            let required = p.get("required").and_then(Value::as_bool).unwrap_or(false);
            let values: Vec<&String> = match place {
                "query" => {
                    declared.push(name);
                    query
                        .iter()
                        .filter(|(k, _)| k == name)
                        .map(|(_, v)| v)
                        .collect()
                }
                "path" => path_params
                    .iter()
                    .filter(|(k, _)| k == name)
                    .map(|(_, v)| v)
                    .collect(),
                _ => continue,
            };
            if values.is_empty() && required {
                out.push(Violation {
                    kind: ViolationKind::Missing,
                    at: format!("?{name}"),
                    message: format!("parameter {name} is required"),
                });
            }
            if values.len() > 1 {
                out.push(invalid(format!("?{name}"), "given more than once".into()));
            }
            for v in values {
                let typed = parameter_value(self, schema, v);
                self.check(schema, &typed, &format!("?{name}"), &mut out);
            }
        }
        for (k, _) in query {
            if !declared.contains(&k.as_str()) {
                out.push(Violation {
                    kind: ViolationKind::Unknown,
                    at: format!("?{k}"),
                    message: format!("query parameter {k} is not in the contract"),
                });
            }
        }
        let body_schema = op
            .get("requestBody")
            .and_then(|b| b.pointer("/content/application~1json/schema"));
        match (body_schema, body) {
            (None, Value::Null) => {}
            (None, _) => out.push(undocumented(format!("{method} {path} takes no body"))),
            (Some(_), Value::Null) => out.push(Violation {
                kind: ViolationKind::Missing,
                at: String::new(),
                message: "a JSON body is required".into(),
            }),
            (Some(s), b) => self.check(s, b, "", &mut out),
        }
        done(out)
    }

    /// Check an answer: the status is documented for the operation and the body matches its
    /// schema (or is empty when the answer has no content).
    pub fn check_response(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: &Value,
    ) -> Result<(), Vec<Violation>> {
        let Some((op, _)) = self.operation(method, path) else {
            return Err(vec![undocumented(format!(
                "{method} {path} is not in the contract"
            ))]);
        };
        let Some(resp) = op
            .get("responses")
            .and_then(|r| r.get(status.to_string()).or_else(|| r.get("default")))
        else {
            return Err(vec![undocumented(format!(
                "{method} {path} has no documented {status} answer"
            ))]);
        };
        let resp = self.resolve(resp).map_err(|v| vec![v])?;
        let mut out = Vec::new();
        match (resp.pointer("/content/application~1json/schema"), body) {
            (None, Value::Null) => {}
            (None, _) => out.push(undocumented(format!("the {status} answer has no body"))),
            (Some(s), b) => self.check(s, b, "", &mut out),
        }
        done(out)
    }

    /// Validate `v` against `schema`, appending violations.
    pub fn check(&self, schema: &Value, v: &Value, at: &str, out: &mut Vec<Violation>) {
        let schema = match self.resolve(schema) {
            Ok(s) => s,
            Err(e) => return out.push(e),
        };
        let Some(s) = schema.as_object() else {
            return out.push(doc_violation(format!("schema at {at} is not an object")));
        };
        for k in s.keys() {
            if !KNOWN.contains(&k.as_str())
                && !ANNOTATIONS.contains(&k.as_str())
                && !k.starts_with("x-")
            {
                out.push(doc_violation(format!("unsupported keyword {k} at {at}")));
            }
        }
        if let Some(t) = s.get("type") {
            let types: Vec<&str> = match t {
                Value::String(t) => vec![t.as_str()],
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            if !types.iter().any(|t| type_matches(t, v)) {
                return out.push(invalid(
                    at.into(),
                    format!("must be {} (is {})", types.join(" or "), type_name(v)),
                ));
            }
        }
        if let Some(e) = s.get("enum").and_then(Value::as_array) {
            if !e.contains(v) {
                out.push(invalid(
                    at.into(),
                    format!("{v} is not one of {}", Value::from(e.clone())),
                ));
            }
        }
        match v {
            Value::String(t) => self.check_string(s, t, at, out),
            Value::Number(n) => {
                // Bounds are integers in the document; a fraction already failed `type`.
                if let Some(x) = n.as_i64() {
                    if let Some(min) = s.get("minimum").and_then(Value::as_i64) {
                        if x < min {
                            out.push(invalid(at.into(), format!("must be at least {min}")));
                        }
                    }
                    if let Some(max) = s.get("maximum").and_then(Value::as_i64) {
                        if x > max {
                            out.push(invalid(at.into(), format!("must be at most {max}")));
                        }
                    }
                }
            }
            Value::Array(items) => {
                let n = items.len() as u64;
                if let Some(min) = s.get("minItems").and_then(Value::as_u64) {
                    if n < min {
                        let kind = if n == 0 {
                            ViolationKind::Missing
                        } else {
                            ViolationKind::Invalid
                        };
                        out.push(Violation {
                            kind,
                            at: at.into(),
                            message: format!("needs at least {min} item(s)"),
                        });
                    }
                }
                if let Some(max) = s.get("maxItems").and_then(Value::as_u64) {
                    if n > max {
                        out.push(invalid(at.into(), format!("holds at most {max} item(s)")));
                    }
                }
                if let Some(is) = s.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.check(is, item, &format!("{at}/{i}"), out);
                    }
                }
            }
            Value::Object(m) => self.check_object(s, m, at, out),
            _ => {}
        }
    }

    fn check_string(&self, s: &Map<String, Value>, t: &str, at: &str, out: &mut Vec<Violation>) {
        let len = t.chars().count() as u64;
        if let Some(max) = s.get("maxLength").and_then(Value::as_u64) {
            if len > max {
                out.push(Violation {
                    kind: ViolationKind::TooLong,
                    at: at.into(),
                    message: format!("is {len} characters; at most {max} are allowed"),
                });
            }
        }
        if let Some(min) = s.get("minLength").and_then(Value::as_u64) {
            if len < min {
                let kind = if len == 0 {
                    ViolationKind::Missing
                } else {
                    ViolationKind::Invalid
                };
                out.push(Violation {
                    kind,
                    at: at.into(),
                    message: format!("needs at least {min} character(s)"),
                });
            }
        }
        if let Some(p) = s.get("pattern").and_then(Value::as_str) {
            match regex_lite::Regex::new(p) {
                Ok(re) if re.is_match(t) => {}
                Ok(_) => out.push(invalid(at.into(), format!("{t:?} does not match {p}"))),
                Err(e) => out.push(doc_violation(format!("bad pattern {p}: {e}"))),
            }
        }
        match s.get("format").and_then(Value::as_str) {
            None | Some("email") => {}
            Some("date") => {
                if !valid_date(t) {
                    out.push(invalid(
                        at.into(),
                        format!("{t:?} is not a date YYYY-MM-DD"),
                    ));
                }
            }
            Some("date-time") => {
                let ok = t.len() >= 20
                    && t.get(..10).is_some_and(valid_date)
                    && t.get(10..11) == Some("T")
                    && t.ends_with('Z');
                if !ok {
                    out.push(invalid(
                        at.into(),
                        format!("{t:?} is not an RFC 3339 UTC time"),
                    ));
                }
            }
            Some(f) => out.push(doc_violation(format!("unsupported format {f}"))),
        }
    }

    fn check_object(
        &self,
        s: &Map<String, Value>,
        m: &Map<String, Value>,
        at: &str,
        out: &mut Vec<Violation>,
    ) {
        let props = s.get("properties").and_then(Value::as_object);
        for r in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !m.contains_key(r) {
                out.push(Violation {
                    kind: ViolationKind::Missing,
                    at: format!("{at}/{r}"),
                    message: format!("{r} is required"),
                });
            }
        }
        if let Some(min) = s.get("minProperties").and_then(Value::as_u64) {
            if (m.len() as u64) < min {
                out.push(Violation {
                    kind: ViolationKind::Missing,
                    at: at.into(),
                    message: format!("needs at least {min} field(s)"),
                });
            }
        }
        for (k, v) in m {
            let here = format!("{at}/{k}");
            match props.and_then(|p| p.get(k)) {
                Some(ps) => self.check(ps, v, &here, out),
                None => match s.get("additionalProperties") {
                    Some(Value::Bool(false)) => out.push(Violation {
                        kind: ViolationKind::Unknown,
                        at: here,
                        message: format!("{k} is not a field of this record"),
                    }),
                    Some(extra @ Value::Object(_)) => self.check(extra, v, &here, out),
                    _ => {}
                },
            }
        }
    }
}

const KNOWN: [&str; 17] = [
    "$ref",
    "type",
    "properties",
    "required",
    "additionalProperties",
    "minProperties",
    "items",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "pattern",
    "enum",
    "minimum",
    "maximum",
    "format",
    "$comment",
];

/// A query or path parameter is text on the wire; integer parameters are read as numbers.
fn parameter_value(c: &FacadeContract, schema: &Value, text: &str) -> Value {
    let is_int = c
        .resolve(schema)
        .ok()
        .and_then(|s| s.get("type"))
        .and_then(Value::as_str)
        == Some("integer");
    if is_int {
        if let Ok(n) = text.parse::<i64>() {
            return Value::from(n);
        }
    }
    Value::String(text.to_owned())
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        "null" => v.is_null(),
        _ => false,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn valid_date(t: &str) -> bool {
    let b = t.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| t.get(r).and_then(|x| x.parse::<u32>().ok());
    match (num(0..4), num(5..7), num(8..10)) {
        (Some(y), Some(m), Some(d)) => {
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let days = match m {
                1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
                4 | 6 | 9 | 11 => 30,
                2 if leap => 29,
                2 => 28,
                _ => 0,
            };
            d >= 1 && d <= days
        }
        _ => false,
    }
}

fn invalid(at: String, message: String) -> Violation {
    Violation {
        kind: ViolationKind::Invalid,
        at,
        message,
    }
}

fn undocumented(message: String) -> Violation {
    Violation {
        kind: ViolationKind::Undocumented,
        at: String::new(),
        message,
    }
}

fn doc_violation(message: String) -> Violation {
    Violation {
        kind: ViolationKind::Document,
        at: String::new(),
        message,
    }
}

fn done(out: Vec<Violation>) -> Result<(), Vec<Violation>> {
    if out.is_empty() {
        Ok(())
    } else {
        Err(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledgerbridge_erp::commands::ErpCommand;
    use ledgerbridge_erp::sagepro::{mapping, SageProConfig};
    use serde_json::json;

    fn contract() -> &'static FacadeContract {
        FacadeContract::embedded().unwrap()
    }

    fn kinds(r: Result<(), Vec<Violation>>) -> Vec<(ViolationKind, String)> {
        r.err()
            .unwrap_or_default()
            .into_iter()
            .map(|v| (v.kind, v.at))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// The connector's fixture commands (copied from `shared/erp/tests/fixtures`).
    fn commands() -> Vec<ErpCommand> {
        serde_json::from_str(include_str!(
            "../../../shared/erp/tests/fixtures/commands.json"
        ))
        .unwrap()
    }

    fn customer() -> Value {
        json!({"customerId": "STR0001", "name": "Jenny Rosen", "reference": "LB-cus_1-CU"})
    }

    #[test]
    fn the_document_is_openapi_3_1_and_uses_only_supported_keywords() {
        let c = contract();
        let mut out = Vec::new();
        let schemas = c.doc.pointer("/components/schemas").unwrap();
        for (name, s) in schemas.as_object().unwrap() {
            // Walk each schema with a value of every JSON type: only document violations count.
            for v in [
                json!(null),
                json!("x"),
                json!(1),
                json!([1]),
                json!({"a": 1}),
            ] {
                c.check(s, &v, name, &mut out);
            }
        }
        let doc: Vec<_> = out
            .into_iter()
            .filter(|v| v.kind == ViolationKind::Document)
            .collect();
        assert!(doc.is_empty(), "{doc:?}");
        assert!(FacadeContract::parse(r#"{"openapi":"3.0.0","paths":{}}"#).is_err());
        // Every resource has search and create; customers also update.
        let ops = c.operations();
        for r in [
            "customers",
            "salesorders",
            "invoices",
            "cashreceipts",
            "creditmemos",
            "journalentries",
        ] {
            for m in ["GET", "POST"] {
                assert!(ops.contains(&(m.into(), format!("/api/v1/{r}"))), "{m} {r}");
            }
        }
        assert!(ops.contains(&("PUT".into(), "/api/v1/customers/{id}".into())));
    }

    #[test]
    fn every_request_the_connector_maps_conforms() {
        let c = contract();
        let cfg = SageProConfig::new("https://facade.example.com");
        let method = |m: mapping::Method| match m {
            mapping::Method::Get => "GET",
            mapping::Method::Post => "POST",
            mapping::Method::Put => "PUT",
        };
        let mut reqs = Vec::new();
        for cmd in commands() {
            reqs.push(mapping::create_request(&cfg, &cmd).unwrap());
            reqs.push(mapping::find_request(&cfg, cmd.reference()).unwrap());
            if let ErpCommand::UpsertCustomer(cu) = &cmd {
                let id = ledgerbridge_core::ids::ErpDocumentId::new(cu.customer_id.clone());
                reqs.push(mapping::update_customer_request(&cfg, &id, cu).unwrap());
                let fields: Vec<(String, String)> = vec![
                    ("lbSubStatus".into(), "ACTIVE".into()),
                    ("lbSubQty".into(), "3".into()),
                ];
                reqs.push(mapping::customer_fields_request(&id, &fields).unwrap());
            }
        }
        reqs.push(mapping::customer_email_request("jenny.rosen@example.com"));
        reqs.push(mapping::changed_customers_request(1_786_000_000_000, 0, 50));
        assert!(reqs.len() >= 16);
        for r in &reqs {
            let body = r.body.clone().unwrap_or(Value::Null);
            c.check_request(method(r.method), &r.path, &r.query, &body)
                .unwrap_or_else(|v| panic!("{} {}: {v:?}", method(r.method), r.path));
        }
    }

    #[test]
    fn requests_outside_the_contract_fail() {
        let c = contract();
        let post = |b: Value| kinds(c.check_request("POST", "/api/v1/customers", &[], &b));
        assert!(post(customer()).is_empty());
        let mut b = customer();
        b["fax"] = json!("555");
        assert_eq!(post(b), vec![(ViolationKind::Unknown, "/fax".into())]);
        let mut b = customer();
        b["customerId"] = json!("CUSTOMER-12345");
        assert_eq!(
            post(b),
            vec![(ViolationKind::TooLong, "/customerId".into())]
        );
        let mut b = customer();
        b.as_object_mut().unwrap().remove("name");
        assert_eq!(post(b), vec![(ViolationKind::Missing, "/name".into())]);
        let mut b = customer();
        b["currency"] = json!("usd");
        assert_eq!(post(b), vec![(ViolationKind::Invalid, "/currency".into())]);
        // Amounts are decimal strings, never JSON numbers.
        let receipt = json!({"customerId": "C1", "transactionDate": "2026-02-29",
            "amount": 12.5, "currency": "USD", "reference": "LB-ch_1-CR"});
        assert_eq!(
            kinds(c.check_request("POST", "/api/v1/cashreceipts", &[], &receipt)),
            vec![
                (ViolationKind::Invalid, "/amount".into()),
                (ViolationKind::Invalid, "/transactionDate".into())
            ]
        );
        // Nested lines are strict too.
        let so = json!({"customerId": "C1", "orderDate": "2026-01-31", "currency": "USD",
            "reference": "LB-pi_1-SO", "lines": [{"lineNumber": 1, "itemId": "W", "quantity": "1",
            "unitPrice": "1.00", "colour": "red"}]});
        assert_eq!(
            kinds(c.check_request("POST", "/api/v1/salesorders", &[], &so)),
            vec![(ViolationKind::Unknown, "/lines/0/colour".into())]
        );
        // Query parameters: only documented ones, typed.
        let q = |k: &str, v: &str| {
            kinds(c.check_request(
                "GET",
                "/api/v1/invoices",
                &[(k.into(), v.into())],
                &Value::Null,
            ))
        };
        assert!(q("reference", "LB-in_1-IN").is_empty());
        assert_eq!(
            q("email", "a@b.c"),
            vec![(ViolationKind::Unknown, "?email".into())]
        );
        assert_eq!(
            kinds(c.check_request(
                "GET",
                "/api/v1/customers",
                &[("limit".into(), "zero".into())],
                &Value::Null
            )),
            vec![(ViolationKind::Invalid, "?limit".into())]
        );
        assert_eq!(
            kinds(c.check_request("DELETE", "/api/v1/customers/C1", &[], &Value::Null)),
            vec![(ViolationKind::Undocumented, String::new())]
        );
        assert_eq!(
            kinds(c.check_request("PUT", "/api/v1/customers/C1", &[], &json!({}))),
            vec![(ViolationKind::Missing, String::new())]
        );
    }

    #[test]
    fn answers_outside_the_contract_fail() {
        let c = contract();
        let mut rec = customer();
        rec["id"] = json!("STR0001");
        let list = json!({"data": [rec.clone()]});
        assert!(c
            .check_response("GET", "/api/v1/customers", 200, &list)
            .is_ok());
        assert!(c
            .check_response("POST", "/api/v1/customers", 201, &rec)
            .is_ok());
        let mut extra = rec.clone();
        extra["internalFlag"] = json!(true);
        assert_eq!(
            kinds(c.check_response("POST", "/api/v1/customers", 201, &extra)),
            vec![(ViolationKind::Unknown, "/internalFlag".into())]
        );
        let err = json!({"error": {"code": "duplicate_reference", "message": "exists"}});
        assert!(c
            .check_response("POST", "/api/v1/invoices", 409, &err)
            .is_ok());
        let bad = json!({"error": {"code": "oops", "message": "x"}});
        assert_eq!(
            kinds(c.check_response("POST", "/api/v1/invoices", 409, &bad)),
            vec![(ViolationKind::Invalid, "/error/code".into())]
        );
        // A status the operation does not document.
        assert_eq!(
            kinds(c.check_response("GET", "/api/v1/invoices", 409, &err)),
            vec![(ViolationKind::Undocumented, String::new())]
        );
        assert!(!valid_date("2025-02-29") && valid_date("2024-02-29"));
    }
}
