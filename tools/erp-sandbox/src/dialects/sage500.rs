//! Sage 500 emulation: staging tables and the effects of the API procedures on them.
//!
//! `POST /sage500/{company}/batches` takes `{session_key, procedure, rows:[{table, columns}]}`:
//! the rows are inserted into the emulated staging tables with `ProcessStatus = 0`, then the
//! named procedure is emulated: on success the document is written to its `t…` table and every
//! row is set to 1; on failure nothing is written, rows are set to 2 and the reasons go to the
//! migration log. The answer carries the procedure's return code (1 success, 2 failure,
//! 3 parameter error), the rows' `ProcessStatus` and the log.

use super::{decimal, error, safe_field};
use crate::store::{FilterValue, Store};
use crate::{dropped_response, gate, header, AppState, ErpKind, Gate};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Map, Value};

const ERP: &str = ErpKind::Sage500.as_str();

#[derive(Deserialize)]
pub struct Row {
    pub table: String,
    pub columns: Map<String, Value>,
}

#[derive(Deserialize)]
pub struct Batch {
    pub session_key: i64,
    pub procedure: String,
    pub rows: Vec<Row>,
}

/// What an emulated procedure does: header/line staging tables, target table and key column.
struct Proc {
    header: &'static str,
    lines: Option<&'static str>,
    target: &'static str,
    key: &'static str,
}

fn proc_of(name: &str) -> Option<Proc> {
    Some(match name {
        "spARapiCustomerIns" => Proc {
            header: "StgCustomer",
            lines: None,
            target: "tarCustomer",
            key: "CustKey",
        },
        "spSOapiSalesOrdIns" => Proc {
            header: "StgSalesOrder",
            lines: Some("StgSOLine"),
            target: "tsoSalesOrder",
            key: "SOKey",
        },
        "spARapiInvoiceIns" => Proc {
            header: "StgInvoice",
            lines: Some("StgInvoiceLine"),
            target: "tarInvoice",
            key: "InvcKey",
        },
        "spARapiCustPmtIns" => Proc {
            header: "StgCustPmt",
            lines: Some("StgCustPmtAppl"),
            target: "tarCustPmt",
            key: "CustPmtKey",
        },
        "spglAPIPostBatchlessGLPosting" => Proc {
            header: "#tciTransToPost",
            lines: None,
            target: "tglTransaction",
            key: "BatchKey",
        },
        _ => return None,
    })
}

fn authenticate(s: &AppState, h: &HeaderMap) -> Result<(), Response> {
    let key = s
        .keys
        .lock()
        .map(|k| k.sage500_api_key.clone())
        .unwrap_or_default();
    match header(h, "x-api-key") {
        Some(k) if k == key => Ok(()),
        _ => Err(error(
            ErpKind::Sage500,
            StatusCode::UNAUTHORIZED,
            "login_failed",
            "Login failed for user 'ledgerbridge'.",
        )),
    }
}

pub async fn batch(
    State(s): State<AppState>,
    Path(company): Path<String>,
    h: HeaderMap,
    Json(b): Json<Batch>,
) -> Response {
    if let Err(r) = authenticate(&s, &h) {
        return r;
    }
    let drop = match gate(&s, true, ErpKind::Sage500).await {
        Gate::Respond(r) => return r,
        Gate::Proceed { drop_after_commit } => drop_after_commit,
    };
    let lag = s.faults.lock().map(|f| f.search_lag_ms).unwrap_or(0);
    let r = match s.store.lock() {
        Ok(st) => run(&st, &company, &b, lag),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    match r {
        Ok(_) if drop => dropped_response(),
        Ok(v) => Json(v).into_response(),
        Err(e) => error(
            ErpKind::Sage500,
            StatusCode::INTERNAL_SERVER_ERROR,
            "sql",
            &e.to_string(),
        ),
    }
}

fn run(st: &Store, company: &str, b: &Batch, lag: u64) -> Result<Value, crate::StoreError> {
    let Some(p) = proc_of(&b.procedure) else {
        return Ok(
            json!({"return_code": 3, "rows": [], "log": [format!("Could not find stored procedure '{}'.", b.procedure)]}),
        );
    };
    let mut keys = Vec::new();
    for r in &b.rows {
        let mut cols = r.columns.clone();
        cols.insert("CompanyID".into(), json!(company));
        keys.push((
            r.table.clone(),
            st.insert_staging(company, &r.table, b.session_key, &Value::Object(cols))?,
        ));
    }
    let header: Vec<&Row> = b.rows.iter().filter(|r| r.table == p.header).collect();
    let lines: Vec<&Row> = b
        .rows
        .iter()
        .filter(|r| Some(r.table.as_str()) == p.lines)
        .collect();
    let outcome = if header.is_empty() {
        Err(format!("No rows in {} for this session.", p.header))
    } else if b
        .rows
        .iter()
        .any(|r| r.table != p.header && Some(r.table.as_str()) != p.lines)
    {
        Err(format!("Unexpected staging table for {}.", b.procedure))
    } else {
        validate(st, company, &b.procedure, &header, &lines)
    };
    let mut document = Value::Null;
    let (code, status) = match &outcome {
        Ok(()) if is_customer_update(&b.procedure, &header) => {
            // Action 2 (update): merge the staged columns into the existing customer.
            // `validate` found the customer under the same store lock, so it is still there.
            let existing = find_customer(st, company, &header[0].columns)?;
            let mut doc = existing
                .and_then(|d| d.as_object().cloned())
                .unwrap_or_default();
            for (k, v) in &header[0].columns {
                if k != "Action" {
                    doc.insert(k.clone(), v.clone());
                }
            }
            let key = doc.get(p.key).map(|k| match k {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            st.update_doc(
                ERP,
                p.target,
                &key.unwrap_or_default(),
                &Value::Object(doc.clone()),
            )?;
            document = Value::Object(doc);
            (1, 1)
        }
        Ok(()) => {
            let key = st.next(&format!("sage500.{}", p.key), 1)?;
            let mut doc = header[0].columns.clone();
            doc.insert(p.key.into(), json!(key));
            doc.insert("CompanyID".into(), json!(company));
            doc.insert("TranNo".into(), json!(format!("{key:010}")));
            if p.lines.is_some() {
                doc.insert(
                    "Lines".into(),
                    Value::Array(
                        lines
                            .iter()
                            .map(|l| Value::Object(l.columns.clone()))
                            .collect(),
                    ),
                );
            }
            if header.len() > 1 {
                doc.insert(
                    "Lines".into(),
                    Value::Array(
                        header
                            .iter()
                            .map(|l| Value::Object(l.columns.clone()))
                            .collect(),
                    ),
                );
            }
            document = Value::Object(doc.clone());
            st.insert_doc(ERP, p.target, &key.to_string(), &Value::Object(doc), lag)?;
            (1, 1)
        }
        Err(msg) => {
            st.log(b.session_key, keys.first().map(|k| k.1), msg)?;
            (2, 2)
        }
    };
    for (_, k) in &keys {
        st.set_process_status(*k, status)?;
    }
    let rows: Vec<Value> = st
        .staging_rows(b.session_key)?
        .into_iter()
        .map(|(t, k, s)| json!({"table": t, "row_key": k, "process_status": s}))
        .collect();
    Ok(
        json!({"return_code": code, "rows": rows, "log": st.logs(b.session_key)?, "document": document}),
    )
}

fn db(e: crate::StoreError) -> String {
    e.to_string()
}

fn req<'a>(v: &'a Map<String, Value>, f: &str, table: &str) -> Result<&'a str, String> {
    v.get(f)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| format!("{table}.{f} is required."))
}

/// The staged `Action` (0 auto, 1 insert, 2 update, 3 delete); absent means 0.
fn action(h: &Map<String, Value>) -> i64 {
    h.get("Action").and_then(Value::as_i64).unwrap_or(0)
}

fn is_customer_update(procedure: &str, header: &[&Row]) -> bool {
    procedure == "spARapiCustomerIns" && header.first().is_some_and(|r| action(&r.columns) == 2)
}

/// The company's customer with the row's `CustID` (ignoring search lag: the procedure reads
/// the table, not a search index).
fn find_customer(
    st: &Store,
    company: &str,
    h: &Map<String, Value>,
) -> Result<Option<Value>, crate::StoreError> {
    let Some(c) = h.get("CustID").and_then(Value::as_str) else {
        return Ok(None);
    };
    Ok(st
        .find_committed(
            ERP,
            "tarCustomer",
            &[
                ("CustID".into(), FilterValue::Text(c.into())),
                ("CompanyID".into(), FilterValue::Text(company.into())),
            ],
        )?
        .into_iter()
        .next())
}

fn customer_exists(
    st: &Store,
    company: &str,
    h: &Map<String, Value>,
    table: &str,
) -> Result<(), String> {
    let c = req(h, "CustID", table)?;
    if find_customer(st, company, h).map_err(db)?.is_none() {
        return Err(format!("Customer ID '{c}' is not valid."));
    }
    Ok(())
}

fn open_period(st: &Store, h: &Map<String, Value>, f: &str, table: &str) -> Result<(), String> {
    let d = req(h, f, table)?;
    if st.period_closed(ERP, d).map_err(db)? {
        return Err(format!("The fiscal period for {d} is closed."));
    }
    Ok(())
}

fn dec(v: &Map<String, Value>, f: &str) -> Result<Decimal, String> {
    decimal(&Value::Object(v.clone()), f)?.ok_or_else(|| format!("{f} is required."))
}

fn validate(
    st: &Store,
    company: &str,
    procedure: &str,
    header: &[&Row],
    lines: &[&Row],
) -> Result<(), String> {
    let h = &header[0].columns;
    let t = header[0].table.as_str();
    match procedure {
        "spARapiCustomerIns" => {
            let id = req(h, "CustID", t)?;
            // An update (Action 2) changes the columns it stages; an insert needs a name.
            if action(h) != 2 {
                req(h, "CustName", t)?;
            }
            if id.len() > 12 {
                return Err("CustID exceeds 12 characters.".into());
            }
            let existing = find_customer(st, company, h).map_err(db)?;
            match (action(h), existing) {
                (2, None) => return Err(format!("Customer ID '{id}' does not exist.")),
                (2, Some(_)) => {}
                (_, Some(_)) => return Err(format!("Customer ID '{id}' already exists.")),
                (_, None) => {}
            }
        }
        "spSOapiSalesOrdIns" | "spARapiInvoiceIns" => {
            customer_exists(st, company, h, t)?;
            req(h, "CurrID", t)?;
            open_period(st, h, "TranDate", t)?;
            if lines.is_empty() {
                return Err("At least one line is required.".into());
            }
            for l in lines {
                let item = req(&l.columns, "ItemID", &l.table)?;
                if !st.has_master(ERP, "item", item).map_err(db)? {
                    return Err(format!("Item ID '{item}' is not valid."));
                }
                let qty_field = if procedure == "spSOapiSalesOrdIns" {
                    "QtyOrd"
                } else {
                    "Qty"
                };
                if dec(&l.columns, qty_field)? <= Decimal::ZERO {
                    return Err(format!("{qty_field} must be greater than zero."));
                }
                dec(&l.columns, "UnitPrice")?;
            }
        }
        "spARapiCustPmtIns" => {
            customer_exists(st, company, h, t)?;
            open_period(st, h, "TranDate", t)?;
            if dec(h, "TranAmt")? <= Decimal::ZERO {
                return Err("TranAmt must be greater than zero.".into());
            }
            for l in lines {
                let inv = req(&l.columns, "ApplyToTranNo", &l.table)?;
                let found = st
                    .find_committed(
                        ERP,
                        "tarInvoice",
                        &[
                            ("TranNo".into(), FilterValue::Text(inv.into())),
                            ("CompanyID".into(), FilterValue::Text(company.into())),
                        ],
                    )
                    .map_err(db)?;
                if found.is_empty() {
                    return Err(format!("Invoice '{inv}' is not valid for application."));
                }
                dec(&l.columns, "ApplyAmt")?;
            }
        }
        "spglAPIPostBatchlessGLPosting" => {
            if header.len() < 2 {
                return Err("A GL posting needs at least two rows.".into());
            }
            let mut sum = Decimal::ZERO;
            for r in header {
                let acct = req(&r.columns, "GLAcctNo", t)?;
                if !st.has_master(ERP, "account", acct).map_err(db)? {
                    return Err(format!(
                        "Invalid GL account '{acct}' (spglAPIValidateAccount)."
                    ));
                }
                open_period(st, &r.columns, "PostDate", t)?;
                sum += dec(&r.columns, "PostAmtHC")?;
            }
            if !sum.is_zero() {
                return Err(format!("Debits do not equal credits (difference {sum})."));
            }
        }
        _ => return Err(format!("Procedure {procedure} is not emulated.")),
    }
    Ok(())
}

#[derive(Deserialize)]
pub struct LookupQuery {
    table: String,
    column: String,
    value: String,
    key: String,
}

/// `SELECT TOP 1 {key} FROM {table} WHERE {column} = @value AND CompanyID = @company`.
pub async fn lookup(
    State(s): State<AppState>,
    Path(company): Path<String>,
    Query(q): Query<LookupQuery>,
    h: HeaderMap,
) -> Response {
    if let Err(r) = authenticate(&s, &h) {
        return r;
    }
    if let Gate::Respond(r) = gate(&s, false, ErpKind::Sage500).await {
        return r;
    }
    if ![&q.table, &q.column, &q.key].iter().all(|f| safe_field(f)) {
        return error(
            ErpKind::Sage500,
            StatusCode::BAD_REQUEST,
            "sql",
            "Invalid object name.",
        );
    }
    let filters = [
        (q.column.clone(), FilterValue::Text(q.value.clone())),
        ("CompanyID".to_owned(), FilterValue::Text(company)),
    ];
    let found = match s.store.lock() {
        Ok(st) => st.find(ERP, &q.table, &filters, 1),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    match found {
        Ok(v) => {
            let key = v.first().and_then(|d| d.get(&q.key)).map(|k| match k {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            Json(json!({"key": key})).into_response()
        }
        Err(e) => error(
            ErpKind::Sage500,
            StatusCode::INTERNAL_SERVER_ERROR,
            "sql",
            &e.to_string(),
        ),
    }
}

#[derive(Deserialize)]
pub struct EmailQuery {
    email: String,
}

/// Customers by e-mail, as the facade's query over `tarCustomer` joined to its primary
/// contact's `EMailAddr` would answer (the sandbox keeps the address on the customer row):
/// trimmed, case-insensitive, at most 3, search lag applies.
pub async fn customer_email(
    State(s): State<AppState>,
    Path(company): Path<String>,
    Query(q): Query<EmailQuery>,
    h: HeaderMap,
) -> Response {
    if let Err(r) = authenticate(&s, &h) {
        return r;
    }
    if let Gate::Respond(r) = gate(&s, false, ErpKind::Sage500).await {
        return r;
    }
    let filters = [
        ("EMailAddr".to_owned(), FilterValue::TextNoCase(q.email)),
        ("CompanyID".to_owned(), FilterValue::Text(company)),
    ];
    let found = match s.store.lock() {
        Ok(st) => st.find(ERP, "tarCustomer", &filters, 3),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    match found {
        Ok(v) => {
            let customers: Vec<Value> = v
                .iter()
                .map(|d| json!({"key": d.get("CustKey"), "customer_id": d.get("CustID")}))
                .collect();
            Json(json!({ "customers": customers })).into_response()
        }
        Err(e) => error(
            ErpKind::Sage500,
            StatusCode::INTERNAL_SERVER_ERROR,
            "sql",
            &e.to_string(),
        ),
    }
}

#[derive(Deserialize)]
pub struct ChangedQuery {
    since: String,
    #[serde(default)]
    offset: usize,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    100
}

/// `GET /sage500/{company}/customers-changed?since={datetime}&offset&limit`: the facade's query
/// over `tarCustomer` by its `UpdateDate` (UTC here), oldest change first, each row with
/// `UpdateDate` and the e-mail address the contact join would give.
pub async fn customers_changed(
    State(s): State<AppState>,
    Path(company): Path<String>,
    Query(q): Query<ChangedQuery>,
    h: HeaderMap,
) -> Response {
    if let Err(r) = authenticate(&s, &h) {
        return r;
    }
    if let Gate::Respond(r) = gate(&s, false, ErpKind::Sage500).await {
        return r;
    }
    let Ok(st) = s.store.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let Ok(Some(since_ms)) = st.parse_time_ms(&q.since) else {
        return error(
            ErpKind::Sage500,
            StatusCode::BAD_REQUEST,
            "sql",
            "Conversion failed when converting date and/or time from character string.",
        );
    };
    match st.changed_since(ERP, "tarCustomer", since_ms, "%Y-%m-%d %H:%M:%S") {
        Ok(rows) => {
            let customers: Vec<Value> = rows
                .into_iter()
                .filter(|(d, _, _)| d.get("CompanyID").and_then(Value::as_str) == Some(&company))
                .skip(q.offset)
                .take(q.limit)
                .map(|(mut d, _, at)| {
                    if let Some(o) = d.as_object_mut() {
                        o.insert("UpdateDate".into(), json!(at));
                    }
                    d
                })
                .collect();
            Json(json!({ "customers": customers })).into_response()
        }
        Err(e) => error(
            ErpKind::Sage500,
            StatusCode::INTERNAL_SERVER_ERROR,
            "sql",
            &e.to_string(),
        ),
    }
}

#[derive(Deserialize)]
pub struct StagingQuery {
    session_key: i64,
}

/// Staging rows and migration log of one session (what an operator would query).
pub async fn staging(
    State(s): State<AppState>,
    Query(q): Query<StagingQuery>,
    h: HeaderMap,
) -> Response {
    if let Err(r) = authenticate(&s, &h) {
        return r;
    }
    let Ok(st) = s.store.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let r = st
        .staging_rows(q.session_key)
        .and_then(|rows| Ok((rows, st.logs(q.session_key)?)));
    match r {
        Ok((rows, log)) => Json(json!({
            "rows": rows.into_iter().map(|(t, k, s)| json!({"table": t, "row_key": k, "process_status": s})).collect::<Vec<_>>(),
            "log": log,
        }))
        .into_response(),
        Err(e) => error(ErpKind::Sage500, StatusCode::INTERNAL_SERVER_ERROR, "sql", &e.to_string()),
    }
}
