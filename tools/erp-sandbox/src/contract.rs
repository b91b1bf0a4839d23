//! The Epicor contract facts (`contracts/epicor/*.json`, embedded at compile time) and a validator
//! that checks a request against them: row fields exist on the row type with the right JSON type
//! and stated length, methods exist and take exactly the inputs sent, enumerated values are
//! allowed, and entity-set POSTs carry one row without nested children.
//!
//! Where no source confirms a rule the validator says so: UD columns (`…_c`) are accepted on any
//! row because a customer may add them ([`ContractOptions::allow_ud_columns`], an assumption).

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// The embedded facts: `(file name, text)`.
const FILES: &[(&str, &str)] = &[
    (
        "Erp.BO.ARInvoiceSvc.json",
        include_str!("../contracts/epicor/Erp.BO.ARInvoiceSvc.json"),
    ),
    (
        "Erp.BO.ApplyCreditMemoSvc.json",
        include_str!("../contracts/epicor/Erp.BO.ApplyCreditMemoSvc.json"),
    ),
    (
        "Erp.BO.CashGrpSvc.json",
        include_str!("../contracts/epicor/Erp.BO.CashGrpSvc.json"),
    ),
    (
        "Erp.BO.CashRecSvc.json",
        include_str!("../contracts/epicor/Erp.BO.CashRecSvc.json"),
    ),
    (
        "Erp.BO.CustomerSvc.json",
        include_str!("../contracts/epicor/Erp.BO.CustomerSvc.json"),
    ),
    (
        "Erp.BO.GLAccountSvc.json",
        include_str!("../contracts/epicor/Erp.BO.GLAccountSvc.json"),
    ),
    (
        "Erp.BO.GLJournalEntrySvc.json",
        include_str!("../contracts/epicor/Erp.BO.GLJournalEntrySvc.json"),
    ),
    (
        "Erp.BO.GLJrnGrpSvc.json",
        include_str!("../contracts/epicor/Erp.BO.GLJrnGrpSvc.json"),
    ),
    (
        "Erp.BO.InvcGrpSvc.json",
        include_str!("../contracts/epicor/Erp.BO.InvcGrpSvc.json"),
    ),
    (
        "Erp.BO.SalesOrderSvc.json",
        include_str!("../contracts/epicor/Erp.BO.SalesOrderSvc.json"),
    ),
    (
        "Erp.PROC.ARInvoicePostSvc.json",
        include_str!("../contracts/epicor/Erp.PROC.ARInvoicePostSvc.json"),
    ),
    (
        "Erp.PROC.CashRecPostSvc.json",
        include_str!("../contracts/epicor/Erp.PROC.CashRecPostSvc.json"),
    ),
];

/// A contract file that does not parse or does not have the expected shape.
#[derive(Debug, thiserror::Error)]
#[error("contract file {file}: {message}")]
pub struct ContractError {
    pub file: String,
    pub message: String,
}

/// One way a request departs from the contract facts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// Where: `Service/Method ds.Table[0].Field`, `Service/Set.Field`, …
    pub at: String,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

/// Rules no source confirms, made explicit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContractOptions {
    /// Accept fields named `…_c` on any row: user-defined columns added in UD Column Maintenance
    /// are not in the vendor schema (assumption).
    pub allow_ud_columns: bool,
}

impl Default for ContractOptions {
    fn default() -> Self {
        ContractOptions {
            allow_ud_columns: true,
        }
    }
}

/// A field of a row type.
#[derive(Debug, Clone)]
pub struct FieldSpec {
    /// `string`, `integer`, `int64`, `decimal`, `number`, `boolean`, `date-time`, `guid`.
    pub ty: String,
    pub max_length: Option<usize>,
    /// Allowed stored values, when the schema enumerates them.
    pub allowed: Option<Vec<String>>,
}

/// An input of a method.
#[derive(Debug, Clone)]
pub struct InputSpec {
    pub name: String,
    /// `string`, `number`, `boolean` or `tableset:{Name}`.
    pub ty: String,
    pub required: bool,
    pub allowed: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default)]
struct ServiceSpec {
    /// Entity set → row type.
    entity_sets: BTreeMap<String, String>,
    methods: BTreeMap<String, Vec<InputSpec>>,
}

/// The Epicor contract: services, row types, tablesets.
#[derive(Debug, Clone, Default)]
pub struct EpicorContract {
    services: BTreeMap<String, ServiceSpec>,
    rows: BTreeMap<String, BTreeMap<String, FieldSpec>>,
    tablesets: BTreeMap<String, Vec<String>>,
    opts: ContractOptions,
}

fn err(file: &str, message: impl Into<String>) -> ContractError {
    ContractError {
        file: file.to_owned(),
        message: message.into(),
    }
}

fn allowed_of(v: Option<&Value>) -> Option<Vec<String>> {
    match v? {
        Value::Object(m) => Some(m.keys().cloned().collect()),
        Value::Array(a) => Some(
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        ),
        _ => None,
    }
}

fn fields_of(file: &str, row: &Value) -> Result<BTreeMap<String, FieldSpec>, ContractError> {
    let fields = row
        .get("fields")
        .and_then(Value::as_object)
        .ok_or_else(|| err(file, "row without fields"))?;
    fields
        .iter()
        .map(|(name, f)| {
            let ty = f
                .get("type")
                .and_then(Value::as_str)
                .ok_or_else(|| err(file, format!("field {name} without type")))?;
            Ok((
                name.clone(),
                FieldSpec {
                    ty: ty.to_owned(),
                    max_length: f
                        .get("max_length")
                        .and_then(Value::as_u64)
                        .and_then(|n| usize::try_from(n).ok()),
                    allowed: allowed_of(f.get("enum")),
                },
            ))
        })
        .collect()
}

impl EpicorContract {
    /// The embedded facts with the default options.
    pub fn load() -> Result<Self, ContractError> {
        Self::load_with(ContractOptions::default())
    }

    pub fn load_with(opts: ContractOptions) -> Result<Self, ContractError> {
        let mut c = EpicorContract {
            opts,
            ..Default::default()
        };
        // Rows given as `same_as` another file's row are resolved after every file is read.
        let mut same_as: Vec<(String, String, String)> = Vec::new();
        for (file, text) in FILES {
            let doc: Value =
                serde_json::from_str(text).map_err(|e| err(file, format!("not JSON: {e}")))?;
            let name = doc
                .get("service")
                .and_then(Value::as_str)
                .ok_or_else(|| err(file, "no service name"))?;
            let mut svc = ServiceSpec::default();
            for (set, spec) in doc
                .get("entity_sets")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                if let Some(row) = spec.get("row_type").and_then(Value::as_str) {
                    svc.entity_sets.insert(set.clone(), row.to_owned());
                }
            }
            for (ts, tables) in doc
                .get("tablesets")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let tables = allowed_of(Some(tables)).unwrap_or_default();
                c.tablesets.insert(ts.clone(), tables);
            }
            for (row, spec) in doc
                .get("rows")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                if let Some(other) = spec.get("same_as").and_then(Value::as_str) {
                    same_as.push((file.to_string(), row.clone(), other.to_owned()));
                } else {
                    c.rows.insert(row.clone(), fields_of(file, spec)?);
                }
            }
            for (m, spec) in doc
                .get("methods")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let inputs = spec
                    .get("inputs")
                    .and_then(Value::as_array)
                    .ok_or_else(|| err(file, format!("method {m} without inputs")))?;
                let inputs = inputs
                    .iter()
                    .map(|i| {
                        Ok(InputSpec {
                            name: i
                                .get("name")
                                .and_then(Value::as_str)
                                .ok_or_else(|| err(file, format!("{m}: input without name")))?
                                .to_owned(),
                            ty: i
                                .get("type")
                                .and_then(Value::as_str)
                                .unwrap_or("string")
                                .to_owned(),
                            required: i.get("required").and_then(Value::as_bool).unwrap_or(false),
                            allowed: allowed_of(i.get("enum")),
                        })
                    })
                    .collect::<Result<Vec<_>, ContractError>>()?;
                svc.methods.insert(m.clone(), inputs);
            }
            c.services.insert(name.to_owned(), svc);
        }
        for (file, row, other) in same_as {
            // `Erp.BO.CashRecSvc.json rows.CashHead`: the row type of the same name.
            let target = other.rsplit("rows.").next().unwrap_or(&row).to_owned();
            if !c.rows.contains_key(&target) {
                return Err(err(&file, format!("{row} is same_as unknown row {other}")));
            }
        }
        Ok(c)
    }

    pub fn options(&self) -> ContractOptions {
        self.opts
    }

    /// Row type of an entity set of a service.
    pub fn row_type(&self, service: &str, set: &str) -> Option<&str> {
        self.services
            .get(service)?
            .entity_sets
            .get(set)
            .map(String::as_str)
    }

    pub fn has_method(&self, service: &str, method: &str) -> bool {
        self.services
            .get(service)
            .is_some_and(|s| s.methods.contains_key(method))
    }

    pub fn field(&self, row: &str, field: &str) -> Option<&FieldSpec> {
        self.rows.get(row)?.get(field)
    }

    /// Allowed values of an enumerated field (`CashHead.TranType`), when the schema lists them.
    pub fn allowed_values(&self, row: &str, field: &str) -> Option<&[String]> {
        self.field(row, field)?.allowed.as_deref()
    }

    /// Check one row object against its row type. `RowMod` (and `SysRowID`) are allowed on every
    /// row as the BO contract defines them.
    pub fn check_row(&self, at: &str, row_type: &str, row: &Map<String, Value>) -> Vec<Violation> {
        let mut out = Vec::new();
        let Some(fields) = self.rows.get(row_type) else {
            // Tables whose row type was not captured are not checked field by field.
            return out;
        };
        for (name, value) in row {
            let here = format!("{at}.{name}");
            if name == "RowMod" {
                if !matches!(value.as_str(), Some("A" | "U" | "D" | "")) {
                    out.push(v(
                        &here,
                        format!("RowMod {value} is not one of A, U, D, ''"),
                    ));
                }
                continue;
            }
            let Some(spec) = fields.get(name) else {
                if !(self.opts.allow_ud_columns && name.ends_with("_c")) {
                    out.push(v(
                        &here,
                        format!("{row_type} has no field {name} in the vendor schema"),
                    ));
                }
                continue;
            };
            if let Some(m) = type_mismatch(&spec.ty, value) {
                out.push(v(&here, m));
                continue;
            }
            if let (Some(max), Some(s)) = (spec.max_length, value.as_str()) {
                if s.chars().count() > max {
                    out.push(v(&here, format!("longer than {max} characters")));
                }
            }
            if let (Some(allowed), Some(s)) = (&spec.allowed, value.as_str()) {
                if !allowed.iter().any(|a| a == s) {
                    out.push(v(&here, format!("value {s:?} is not one of {allowed:?}")));
                }
            }
        }
        out
    }

    /// An entity-set POST or PATCH body: one row of the set's row type, no nested children.
    pub fn check_entity_write(&self, service: &str, set: &str, body: &Value) -> Vec<Violation> {
        let at = format!("{service}/{set}");
        let Some(row_type) = self.row_type(service, set) else {
            return vec![v(&at, "no such entity set in the vendor schema")];
        };
        let Some(obj) = body.as_object() else {
            return vec![v(&at, "body is not a JSON object")];
        };
        let mut out = Vec::new();
        for (k, val) in obj {
            if val.is_array() || val.is_object() {
                out.push(v(
                    &format!("{at}.{k}"),
                    "nested child collections are not part of an entity-set row",
                ));
            }
        }
        let flat: Map<String, Value> = obj
            .iter()
            .filter(|(_, val)| !(val.is_array() || val.is_object()))
            .map(|(k, val)| (k.clone(), val.clone()))
            .collect();
        out.extend(self.check_row(&at, row_type, &flat));
        out
    }

    /// Fields named in `$select`, `$filter` and `$orderby` of a GET on an entity set.
    pub fn check_query(
        &self,
        service: &str,
        set: &str,
        query: &[(String, String)],
    ) -> Vec<Violation> {
        let at = format!("{service}/{set}");
        let Some(row_type) = self.row_type(service, set) else {
            return vec![v(&at, "no such entity set in the vendor schema")];
        };
        let mut names: Vec<String> = Vec::new();
        for (k, val) in query {
            match k.as_str() {
                "$select" | "$orderby" => names.extend(
                    val.split(',')
                        .filter_map(|f| f.split_whitespace().next())
                        .map(str::to_owned),
                ),
                "$filter" => names.extend(
                    val.split(" and ")
                        .filter_map(|clause| clause.split_whitespace().next().map(str::to_owned)),
                ),
                _ => {}
            }
        }
        names
            .into_iter()
            .filter(|n| {
                self.field(row_type, n).is_none()
                    && !(self.opts.allow_ud_columns && n.ends_with("_c"))
            })
            .map(|n| {
                v(
                    &format!("{at}?{n}"),
                    format!("{row_type} has no field {n} in the vendor schema"),
                )
            })
            .collect()
    }

    /// A method call `POST {service}/{method}` with its body of inputs.
    pub fn check_method(&self, service: &str, method: &str, body: &Value) -> Vec<Violation> {
        let at = format!("{service}/{method}");
        let Some(inputs) = self
            .services
            .get(service)
            .and_then(|s| s.methods.get(method))
        else {
            return vec![v(&at, "no such method in the vendor schema")];
        };
        let Some(obj) = body.as_object() else {
            return vec![v(&at, "body is not a JSON object of inputs")];
        };
        let mut out = Vec::new();
        for i in inputs {
            if i.required && !obj.contains_key(&i.name) {
                out.push(v(&at, format!("required input {} is missing", i.name)));
            }
        }
        for (k, val) in obj {
            let here = format!("{at} {k}");
            let Some(spec) = inputs.iter().find(|i| &i.name == k) else {
                out.push(v(&here, "the method has no such input"));
                continue;
            };
            if let Some(ts) = spec.ty.strip_prefix("tableset:") {
                out.extend(self.check_tableset(&here, ts, val));
                continue;
            }
            if let Some(m) = type_mismatch(&spec.ty, val) {
                out.push(v(&here, m));
                continue;
            }
            if let (Some(allowed), Some(s)) = (&spec.allowed, val.as_str()) {
                if !allowed.iter().any(|a| a == s) {
                    out.push(v(&here, format!("value {s:?} is not one of {allowed:?}")));
                }
            }
        }
        out
    }

    /// A dataset `{"Table": [rows…], …}` of a tableset.
    pub fn check_tableset(&self, at: &str, tableset: &str, ds: &Value) -> Vec<Violation> {
        let Some(tables) = self.tablesets.get(tableset) else {
            return vec![v(at, format!("unknown tableset {tableset}"))];
        };
        let Some(obj) = ds.as_object() else {
            return vec![v(at, "a dataset is a JSON object of tables")];
        };
        let mut out = Vec::new();
        for (table, rows) in obj {
            if !tables.iter().any(|t| t == table) {
                out.push(v(
                    &format!("{at}.{table}"),
                    format!("{tableset} has no table {table}"),
                ));
                continue;
            }
            let Some(rows) = rows.as_array() else {
                out.push(v(&format!("{at}.{table}"), "a table is an array of rows"));
                continue;
            };
            for (n, row) in rows.iter().enumerate() {
                let here = format!("{at}.{table}[{n}]");
                match row.as_object() {
                    Some(r) => out.extend(self.check_row(&here, table, r)),
                    None => out.push(v(&here, "a row is a JSON object")),
                }
            }
        }
        out
    }

    /// Any request as the sandbox received it: `path` is the full path
    /// (`/{instance}/api/v2/odata/{Company}/{Service}/{Set or Method}`). GETs are checked on their
    /// query fields, entity-set writes as one row, method calls on their inputs. Paths outside
    /// the Epicor REST v2 root give no violations.
    pub fn check_request(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Vec<Violation> {
        let Some((_, rest)) = path.split_once("/api/v2/odata/") else {
            return vec![];
        };
        let mut parts = rest.splitn(3, '/');
        let (Some(_company), Some(service), Some(target)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return vec![v(path, "not a service path")];
        };
        let set = target.split('(').next().unwrap_or(target);
        let null = Value::Null;
        let body = body.unwrap_or(&null);
        if self.row_type(service, set).is_some() {
            return match method {
                "GET" => self.check_query(service, set, query),
                "POST" | "PATCH" => self.check_entity_write(service, set, body),
                _ => vec![],
            };
        }
        if method == "POST" {
            self.check_method(service, target, body)
        } else {
            vec![v(
                &format!("{service}/{target}"),
                "no such entity set in the vendor schema",
            )]
        }
    }
}

fn v(at: &str, message: impl Into<String>) -> Violation {
    Violation {
        at: at.to_owned(),
        message: message.into(),
    }
}

/// Why `value` is not of the contract type `ty` (`None` when it is). Null is accepted for every
/// type. Decimals and 64-bit integers may come as strings (`IEEE754Compatible=true`).
fn type_mismatch(ty: &str, value: &Value) -> Option<String> {
    let ok = match (ty, value) {
        (_, Value::Null) => true,
        ("string" | "date-time" | "guid", Value::String(_)) => true,
        ("boolean", Value::Bool(_)) => true,
        ("integer", Value::Number(n)) => n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
        ("int64", Value::Number(n)) => n.is_i64(),
        ("int64", Value::String(s)) => s.parse::<i64>().is_ok(),
        ("decimal" | "number", Value::Number(_)) => true,
        ("decimal" | "number", Value::String(s)) => s.parse::<rust_decimal::Decimal>().is_ok(),
        _ => false,
    };
    if ok {
        None
    } else {
        Some(format!("{value} is not a valid {ty}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn c() -> EpicorContract {
        EpicorContract::load().unwrap()
    }

    #[test]
    fn every_embedded_file_loads() {
        let c = c();
        assert_eq!(
            c.row_type("Erp.BO.CashRecSvc", "CashRecs"),
            Some("CashHead")
        );
        assert_eq!(
            c.row_type("Erp.BO.SalesOrderSvc", "SalesOrders"),
            Some("OrderHed")
        );
        assert!(c.has_method("Erp.BO.CashRecSvc", "GetNewCashHeadType"));
        assert!(c.has_method("Erp.BO.GLJournalEntrySvc", "GetNewGLJrnDtlMnl"));
        assert!(!c.has_method("Erp.BO.CashRecSvc", "CreateReceipt"));
    }

    #[test]
    fn row_fields_must_exist_with_their_types() {
        let c = c();
        let row = json!({"Company": "EPIC06", "GroupID": "G1", "PayMethod": "card",
                          "TranType": "PayInv", "HeadNum": "7", "LBRef_c": "x"});
        let found = c.check_row("CashHead", "CashHead", row.as_object().unwrap());
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.iter().any(|x| x.at.ends_with(".PayMethod")));
        assert!(found.iter().any(|x| x.at.ends_with(".HeadNum")));
        let strict = EpicorContract::load_with(ContractOptions {
            allow_ud_columns: false,
        })
        .unwrap();
        let ud = json!({"LBRef_c": "x"});
        assert_eq!(
            strict
                .check_row("CashHead", "CashHead", ud.as_object().unwrap())
                .len(),
            1
        );
    }

    #[test]
    fn enumerated_values_are_checked() {
        let c = c();
        let bad = json!({"TranType": "DepPay"});
        let good = json!({"TranType": "PrePay"});
        assert_eq!(
            c.check_row("CashHead", "CashHead", bad.as_object().unwrap())
                .len(),
            1
        );
        assert!(c
            .check_row("CashHead", "CashHead", good.as_object().unwrap())
            .is_empty());
        let call = json!({"ds": {}, "groupID": "G1", "tranType": "DepPay"});
        let found = c.check_method("Erp.BO.CashRecSvc", "GetNewCashHeadType", &call);
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[test]
    fn stated_lengths_are_enforced() {
        let c = c();
        let (row, field, max) = c
            .rows
            .iter()
            .flat_map(|(r, fs)| fs.iter().map(move |(f, s)| (r, f, s)))
            .find_map(|(r, f, s)| s.max_length.map(|m| (r.clone(), f.clone(), m)))
            .unwrap();
        let long = json!({ field.clone(): "x".repeat(max + 1) });
        let ok = json!({ field: "x".repeat(max) });
        assert_eq!(c.check_row("t", &row, long.as_object().unwrap()).len(), 1);
        assert!(c.check_row("t", &row, ok.as_object().unwrap()).is_empty());
    }

    #[test]
    fn methods_exist_with_their_inputs() {
        let c = c();
        let ok = json!({"ds": {"CashHead": [{"Company": "EPIC06", "RowMod": "A"}]},
                        "groupID": "G1", "tranType": "PAYINV"});
        assert!(c
            .check_method("Erp.BO.CashRecSvc", "GetNewCashHeadType", &ok)
            .is_empty());
        let missing = json!({"ds": {}});
        assert_eq!(
            c.check_method("Erp.BO.CashRecSvc", "GetNewCashHeadType", &missing)
                .len(),
            2
        );
        let extra = json!({"ds": {"CashHead": [{"PayMethod": 1}], "Nope": []},
                           "groupID": "G1", "tranType": "PAYINV", "other": 1});
        let found = c.check_method("Erp.BO.CashRecSvc", "GetNewCashHeadType", &extra);
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(
            c.check_method("Erp.BO.CashRecSvc", "MakeReceipt", &json!({}))
                .len(),
            1
        );
    }

    #[test]
    fn entity_set_posts_take_one_flat_row() {
        let c = c();
        let found = c.check_request(
            "POST",
            "/Kinetic/api/v2/odata/EPIC06/Erp.BO.SalesOrderSvc/SalesOrders",
            &[],
            Some(&json!({"Company": "EPIC06", "CustNum": 1, "OrderDtls": [{"PartNum": "X"}]})),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].at.ends_with("OrderDtls"));
        let q = [
            ("$filter".to_owned(), "PONum eq 'x'".to_owned()),
            ("$select".to_owned(), "OrderNum,NoSuchField".to_owned()),
        ];
        let found = c.check_request(
            "GET",
            "/Kinetic/api/v2/odata/EPIC06/Erp.BO.SalesOrderSvc/SalesOrders",
            &q,
            None,
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(c
            .check_request("GET", "/_admin/health", &[], None)
            .is_empty());
    }
}
