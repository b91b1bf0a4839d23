//! Sage 500 emulation: the migration API over staging tables, as the vendor's procedures behave
//! (contract facts in `contracts/sage500/`).
//!
//! The engine ([`register_session`], [`stage`], [`call`]) is shared by both ways in:
//! - `POST /sage500/{company}/batches`, the HTTP facade: `{procedure, session: {setup_step_key,
//!   user_id}, call: {cancel, rpt_option, print_warnings, use_stage_table, max_calls}, rows:
//!   [{table, columns}]}`. The facade registers a session, stages the rows, calls the procedure
//!   while `@oContinue = 1` and answers `{session_key, calls, ret_val, recs_processed, failed,
//!   total, rows (still in staging, with process_status), log, document}`;
//! - the T-SQL emulation (`sage500_tsql`), which parses the statements a SQL Server client sends.
//!
//! Strict as Sage is: staging rows are checked against the real schemas (unknown column,
//! over-width value, `CompanyID` → SQL errors); the procedure needs a registered
//! `tsmMigrateSession` of the same company; it migrates one document per call (each call is
//! time-boxed by Sage), so `@oContinue` stays 1 until the caller has looped over every
//! document; `@_oRetVal` is 1 whenever the call ran, even when rows failed; migrated rows are
//! deleted from staging, failed rows keep `ProcessStatus = 2` with a `tdmMigrationLogWrk`
//! comment; AR invoices, customer payments and GL journals are emulated as the site procedures
//! the connector documents (`spLBapi…`, `StgLB…` staging; no vendor API is public for them); sales order lines attach to their header by `TranNo`, which is required, and
//! `Status`/`Hold`/`RequireSOAck` follow the session's `SetupStepKey`.

use super::sage500_schema::{self as schema, SqlError};
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

/// Where the emulation keeps `tsmMigrateSession` rows (in the staging store, under the session
/// key, never returned as staging rows of a procedure).
const SESSION_TABLE: &str = "tsmMigrateSession";

/// Where the emulation keeps `tdiDataTrnsfrJobExecute` rows (by session).
const DIM_EXECUTE_TABLE: &str = "tdiDataTrnsfrJobExecute";

/// The Data Import Manager job the sandbox's installation has set up for customer updates:
/// `DataTrnsfrJobDefKey` 1, a step for `StgCustomer` whose column map allows updating these
/// columns (`tdiDataTrnsfrColumnMap.AllowUpdate = 1`). A real installation defines its own in
/// the Data Import Manager; the connector's `customer_update_dim_job` names it.
pub const DIM_CUSTOMER_JOB: i64 = 1;
const DIM_CUSTOMER_COLUMNS: [&str; 14] = [
    "CustName",
    "EMailAddr",
    "AddrLine1",
    "AddrLine2",
    "City",
    "StateID",
    "PostalCode",
    "CountryID",
    "CurrID",
    "CRMCustID",
    "UserFld1",
    "UserFld2",
    "UserFld3",
    "UserFld4",
];

/// `INSERT INTO tdiDataTrnsfrJobExecute (DataTrnsfrJobDefKey, SessionKey)`.
pub fn tie_dim_job(st: &Store, session: i64, job: i64) -> Result<(), SqlError> {
    st.insert_staging(
        "",
        DIM_EXECUTE_TABLE,
        session,
        &json!({"DataTrnsfrJobDefKey": job, "SessionKey": session}),
    )
    .map_err(store_err)?;
    Ok(())
}

/// The columns of `table` the session's DIM job lets an update change (none without a job).
fn updatable_columns(st: &Store, session: i64, table: &str) -> Result<Vec<&'static str>, SqlError> {
    let job = st
        .staging_rows_full(session)
        .map_err(store_err)?
        .into_iter()
        .find(|(t, ..)| t == DIM_EXECUTE_TABLE)
        .and_then(|(.., c)| c.get("DataTrnsfrJobDefKey").and_then(Value::as_i64));
    Ok(match job {
        Some(DIM_CUSTOMER_JOB) if table == "StgCustomer" => DIM_CUSTOMER_COLUMNS.to_vec(),
        _ => Vec::new(),
    })
}

/// `SetupStepKey` of open sales order insertion (vendor source TYL).
pub const SO_OPEN: i64 = 2_100_600;
/// `SetupStepKey` of closed (history) sales order insertion.
pub const SO_CLOSED: i64 = 2_400_350;

/// One staging row.
#[derive(Debug, Clone, Deserialize)]
pub struct Row {
    pub table: String,
    pub columns: Map<String, Value>,
}

#[derive(Deserialize, Default)]
pub struct SessionSpec {
    #[serde(default)]
    pub setup_step_key: Option<i64>,
    #[serde(default)]
    pub dim_job_def_key: Option<i64>,
    #[serde(default)]
    pub user_id: Option<String>,
}

#[derive(Deserialize)]
pub struct CallSpec {
    #[serde(default)]
    pub cancel: i64,
    #[serde(default = "one")]
    pub rpt_option: i64,
    #[serde(default = "one")]
    pub print_warnings: i64,
    #[serde(default = "one")]
    pub use_stage_table: i64,
    #[serde(default = "max_calls")]
    pub max_calls: u32,
}

fn one() -> i64 {
    1
}
fn max_calls() -> u32 {
    50
}

#[derive(Deserialize)]
pub struct Batch {
    pub procedure: String,
    pub session: SessionSpec,
    pub call: CallSpec,
    pub rows: Vec<Row>,
}

/// What an emulated procedure does: header/line staging tables, target table and key column.
pub(super) struct Proc {
    header: &'static str,
    lines: Option<&'static str>,
    target: &'static str,
    key: &'static str,
}

pub(super) fn proc_of(name: &str) -> Option<Proc> {
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
        "spLBapiARInvoiceIns" => Proc {
            header: "StgLBARInvoice",
            lines: Some("StgLBARInvoiceLine"),
            target: "tarInvoice",
            key: "InvcKey",
        },
        "spLBapiARCustPmtIns" => Proc {
            header: "StgLBCustPmt",
            lines: Some("StgLBCustPmtAppl"),
            target: "tarCustPmt",
            key: "CustPmtKey",
        },
        "spLBapiGLJournalIns" => Proc {
            header: "StgLBGLJournal",
            lines: None,
            target: "tglTransaction",
            key: "BatchKey",
        },
        _ => return None,
    })
}

/// The parameters of one API procedure call (the 11-parameter interface, vendor source TYL).
#[derive(Debug, Clone)]
pub struct CallArgs {
    pub cancel: i64,
    pub session: i64,
    pub company: String,
    pub rpt_option: i64,
    pub print_warnings: i64,
    pub use_stage_table: i64,
    pub recs: i64,
    pub failed: i64,
    pub total: i64,
}

/// The OUTPUT parameters after one call, and the document it committed (for the facade).
#[derive(Debug, Clone, Default)]
pub struct CallOut {
    pub cont: i64,
    pub recs: i64,
    pub failed: i64,
    pub total: i64,
    pub ret_val: i64,
    pub document: Option<Value>,
}

fn store_err(e: crate::StoreError) -> SqlError {
    SqlError::new(50000, e.to_string())
}

/// `EXEC spGetNextSurrogateKey 'tsmMigrateSession', @key OUTPUT`.
pub fn next_session_key(st: &Store) -> Result<i64, SqlError> {
    st.next("sage500.tsmMigrateSession", 1).map_err(store_err)
}

/// The `tsmMigrateSession` row of a session.
fn session_row(st: &Store, key: i64) -> Result<Option<Map<String, Value>>, SqlError> {
    Ok(st
        .staging_rows_full(key)
        .map_err(store_err)?
        .into_iter()
        .find(|(t, ..)| t == SESSION_TABLE)
        .and_then(|(.., c)| c.as_object().cloned()))
}

/// `INSERT INTO tsmMigrateSession (…)` (the key comes from `spGetNextSurrogateKey`).
pub fn register_session(
    st: &Store,
    key: i64,
    company: &str,
    setup_step_key: Option<i64>,
    user: &str,
) -> Result<(), SqlError> {
    if session_row(st, key)?.is_some() {
        return Err(SqlError::new(
            2627,
            format!("Violation of PRIMARY KEY constraint 'PK_tsmMigrateSession'. The duplicate key value is ({key})."),
        ));
    }
    if company.is_empty() || company.chars().count() > 3 {
        return Err(SqlError::new(
            2628,
            "String or binary data would be truncated in table 'tsmMigrateSession', column 'CompanyID'.",
        ));
    }
    st.insert_staging(
        company,
        SESSION_TABLE,
        key,
        &json!({"MigrateSessionKey": key, "CompanyID": company, "SetupStepKey": setup_step_key,
                "UserID": user, "LastCompProcessMode": 1, "LastCompProcessNo": 0}),
    )
    .map_err(store_err)?;
    Ok(())
}

/// `INSERT INTO Stg… (SessionKey, ProcessStatus, …)`, checked against the real schema.
pub fn stage(
    st: &Store,
    session: i64,
    table: &str,
    columns: &Map<String, Value>,
) -> Result<i64, SqlError> {
    let known_site_table = table.starts_with("Stg") || table.starts_with('#');
    if !schema::is_known(table) && !known_site_table {
        return Err(SqlError::new(
            208,
            format!("Invalid object name '{table}'."),
        ));
    }
    schema::check_row(table, columns)?;
    st.insert_staging("", table, session, &Value::Object(columns.clone()))
        .map_err(store_err)
}

fn text_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// One call of an API procedure: migrates the next pending document of the session.
pub fn call(st: &Store, procedure: &str, a: &CallArgs, lag: u64) -> Result<CallOut, SqlError> {
    let Some(p) = proc_of(procedure) else {
        return Err(SqlError::new(
            2812,
            format!("Could not find stored procedure '{procedure}'."),
        ));
    };
    let mut out = CallOut {
        cont: 0,
        recs: a.recs,
        failed: a.failed,
        total: a.total,
        ret_val: 1,
        document: None,
    };
    let log = |msg: &str| st.log(a.session, None, msg).map_err(store_err);
    if a.cancel == 1 {
        log("Migration cancelled by the caller.")?;
        return Ok(out);
    }
    if !(0..=3).contains(&a.rpt_option) || !(0..=1).contains(&a.print_warnings) {
        log("Invalid @iRptOption or @iPrintWarnings.")?;
        out.ret_val = 3;
        return Ok(out);
    }
    if a.use_stage_table != 1 {
        log("The emulation reads the permanent Stg tables only (@iUseStageTable = 1).")?;
        out.ret_val = 3;
        return Ok(out);
    }
    let session = session_row(st, a.session)?;
    let Some(session) =
        session.filter(|s| s.get("CompanyID").and_then(Value::as_str) == Some(a.company.as_str()))
    else {
        log(&format!(
            "Migration session {} is not registered for company {} (tsmMigrateSession).",
            a.session, a.company
        ))?;
        out.ret_val = 3;
        return Ok(out);
    };
    let step = session.get("SetupStepKey").and_then(Value::as_i64);
    let pending: Vec<(String, i64, Row)> = st
        .staging_rows_full(a.session)
        .map_err(store_err)?
        .into_iter()
        .filter(|(t, _, status, _)| *status == 0 && (t == p.header || Some(t.as_str()) == p.lines))
        .filter_map(|(t, k, _, c)| {
            Some((
                t.clone(),
                k,
                Row {
                    table: t,
                    columns: c.as_object().cloned()?,
                },
            ))
        })
        .collect();
    let headers: Vec<&(String, i64, Row)> =
        pending.iter().filter(|(t, ..)| t == p.header).collect();
    if out.total == 0 {
        out.total = headers.len() as i64;
    }
    // @iRptOption: 0 log all, 1 none, 2 good only, 3 bad only; failures are logged under 0
    // and 3 only, so a caller choosing 1 or 2 gets no reason for a failed row.
    let log_failures = matches!(a.rpt_option, 0 | 3);
    let fail = |keys: &[i64], msg: &str| -> Result<(), SqlError> {
        for k in keys {
            st.set_process_status(*k, 2).map_err(store_err)?;
        }
        if log_failures {
            st.log(a.session, keys.first().copied(), msg)
                .map_err(store_err)?;
        }
        Ok(())
    };
    let Some(first) = headers.first() else {
        // Lines without a header in this session.
        let orphans: Vec<i64> = pending.iter().map(|(_, k, _)| *k).collect();
        if !orphans.is_empty() {
            fail(
                &orphans,
                "Sales order header record missing for the line's TranNo.",
            )?;
            out.failed += orphans.len() as i64;
        }
        return Ok(out);
    };
    // The document: one header (all pending rows for a GL journal), and its lines
    // (by TranNo for sales orders).
    let journal = procedure == "spLBapiGLJournalIns";
    let doc_headers: Vec<&(String, i64, Row)> = if journal {
        headers.clone()
    } else {
        vec![*first]
    };
    let tran_no = text_of(first.2.columns.get("TranNo"));
    let doc_lines: Vec<&(String, i64, Row)> = pending
        .iter()
        .filter(|(t, ..)| Some(t.as_str()) == p.lines)
        .filter(|(_, _, r)| {
            procedure != "spSOapiSalesOrdIns"
                || (tran_no.is_some() && text_of(r.columns.get("TranNo")) == tran_no)
        })
        .collect();
    let keys: Vec<i64> = doc_headers
        .iter()
        .chain(&doc_lines)
        .map(|(_, k, _)| *k)
        .collect();
    let header_rows: Vec<&Row> = doc_headers.iter().map(|(.., r)| r).collect();
    let line_rows: Vec<&Row> = doc_lines.iter().map(|(.., r)| r).collect();
    out.recs += 1;
    let updatable = updatable_columns(st, a.session, p.header)?;
    let checked = if procedure == "spSOapiSalesOrdIns" {
        validate_so(st, &a.company, header_rows[0], &line_rows, step)
    } else if is_customer_update(procedure, &header_rows) && updatable.is_empty() {
        // TYL: with no updatable column in a DIM column map tied to the session, update rows
        // are failed.
        Err("Action 2 (update) needs a Data Import Manager job whose column map allows updating StgCustomer columns, tied to the session.".to_owned())
    } else {
        Ok(())
    }
    .and_then(|()| validate(st, &a.company, procedure, &header_rows, &line_rows));
    match checked {
        Ok(()) => {
            out.document = Some(
                commit(
                    st,
                    &a.company,
                    procedure,
                    &p,
                    (&header_rows, &line_rows),
                    &updatable,
                    lag,
                )
                .map_err(store_err)?,
            );
            for k in &keys {
                st.delete_staging(*k).map_err(store_err)?;
            }
        }
        Err(msg) => {
            fail(&keys, &msg)?;
            out.failed += 1;
        }
    }
    let remaining = headers.len() - doc_headers.len();
    out.cont = i64::from(remaining > 0);
    Ok(out)
}

/// The sales order rules of `spSOapiSalesOrdIns` (vendor source TYL).
fn validate_so(
    st: &Store,
    company: &str,
    h: &Row,
    lines: &[&Row],
    step: Option<i64>,
) -> Result<(), String> {
    let c = &h.columns;
    let tran_no = req(c, "TranNo", &h.table).map_err(|_| "TranNo is null".to_owned())?;
    for f in ["Hold", "RequireSOAck"] {
        match c.get(f).and_then(|v| text_of(Some(v))).as_deref() {
            Some("0" | "1" | "Yes" | "No") => {}
            Some(other) => return Err(format!("{f} '{other}' is not 0/1 (Yes/No).")),
            None => return Err(format!("{f} is null.")),
        }
    }
    let status = text_of(c.get("Status")).unwrap_or_default();
    let open = matches!(status.as_str(), "Open" | "1");
    let closed = matches!(status.as_str(), "Closed" | "4");
    match (status.is_empty(), step) {
        (true, Some(SO_OPEN)) => {}
        (true, _) => {
            return Err("Status is blank and the session's SetupStepKey is not 2100600: the order would be Closed.".into())
        }
        (false, Some(SO_OPEN)) if !open => {
            return Err(format!("Status '{status}' is not accepted for open order insertion (SetupStepKey 2100600)."))
        }
        (false, Some(SO_CLOSED)) if !closed => {
            return Err(format!("Status '{status}' is not accepted for closed order insertion (SetupStepKey 2400350)."))
        }
        (false, _) if !open && !closed => return Err(format!("Status '{status}' is not valid.")),
        _ => {}
    }
    let dup = st
        .find_committed(
            ERP,
            "tsoSalesOrder",
            &[
                ("TranNo".into(), FilterValue::Text(tran_no.into())),
                ("CompanyID".into(), FilterValue::Text(company.into())),
            ],
        )
        .map_err(db)?;
    if !dup.is_empty() {
        return Err(format!("Sales order TranNo '{tran_no}' already exists."));
    }
    let mut seen = Vec::new();
    for l in lines {
        let n = l
            .columns
            .get("SOLineNo")
            .and_then(Value::as_i64)
            .ok_or_else(|| format!("SOLineNo is required on the lines of TranNo '{tran_no}'."))?;
        if seen.contains(&n) {
            return Err(format!("Duplicate SOLineNo {n} on TranNo '{tran_no}'."));
        }
        seen.push(n);
    }
    Ok(())
}

/// Write the migrated document (or apply a customer update) and answer it.
fn commit(
    st: &Store,
    company: &str,
    procedure: &str,
    p: &Proc,
    (header, lines): (&[&Row], &[&Row]),
    updatable: &[&str],
    lag: u64,
) -> Result<Value, crate::StoreError> {
    if is_customer_update(procedure, header) {
        // Action 2 (update): merge the staged columns into the existing customer.
        // `validate` found the customer under the same store lock, so it is still there.
        let existing = find_customer(st, company, &header[0].columns)?;
        let mut doc = existing
            .and_then(|d| d.as_object().cloned())
            .unwrap_or_default();
        // Only the columns the DIM column map allows are updated; others are ignored.
        for (k, v) in &header[0].columns {
            if updatable.contains(&k.as_str()) {
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
        return Ok(Value::Object(doc));
    }
    let key = st.next(&format!("sage500.{}", p.key), 1)?;
    let mut doc = header[0].columns.clone();
    doc.insert(p.key.into(), json!(key));
    doc.insert("CompanyID".into(), json!(company));
    if !doc.contains_key("TranNo") {
        doc.insert("TranNo".into(), json!(format!("{key:010}")));
    }
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
    st.insert_doc(
        ERP,
        p.target,
        &key.to_string(),
        &Value::Object(doc.clone()),
        lag,
    )?;
    Ok(Value::Object(doc))
}

pub(super) fn authenticate(s: &AppState, h: &HeaderMap) -> Result<(), Response> {
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
    if let Err(e) = super::sage500_catalog::check_batch(&s, &b) {
        return error(
            ErpKind::Sage500,
            StatusCode::BAD_REQUEST,
            "sql",
            &e.to_string(),
        );
    }
    let r = match s.store.lock() {
        Ok(st) => facade(&st, &company, &b, lag),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    match r {
        Ok(_) if drop => dropped_response(),
        Ok(v) => Json(v).into_response(),
        // A statement SQL Server refuses (unknown column, truncation, unknown procedure) is
        // the caller's to fix: 400. Anything else is the database's trouble: 500.
        Err(e) if e.number != 50000 => error(
            ErpKind::Sage500,
            StatusCode::BAD_REQUEST,
            "sql",
            &e.to_string(),
        ),
        Err(e) => error(
            ErpKind::Sage500,
            StatusCode::INTERNAL_SERVER_ERROR,
            "sql",
            &e.to_string(),
        ),
    }
}

/// The facade's calling sequence next to the database (what `ledgerbridge_erp::sage500::tsql`
/// sends as T-SQL), in one store transaction's worth of locking.
fn facade(st: &Store, company: &str, b: &Batch, lag: u64) -> Result<Value, SqlError> {
    if proc_of(&b.procedure).is_none() {
        return Err(SqlError::new(
            2812,
            format!("Could not find stored procedure '{}'.", b.procedure),
        ));
    }
    let key = next_session_key(st)?;
    register_session(
        st,
        key,
        company,
        b.session.setup_step_key,
        b.session.user_id.as_deref().unwrap_or("ledgerbridge"),
    )?;
    if let Some(job) = b.session.dim_job_def_key {
        tie_dim_job(st, key, job)?;
    }
    for r in &b.rows {
        stage(st, key, &r.table, &r.columns)?;
    }
    let mut args = CallArgs {
        cancel: b.call.cancel,
        session: key,
        company: company.to_owned(),
        rpt_option: b.call.rpt_option,
        print_warnings: b.call.print_warnings,
        use_stage_table: b.call.use_stage_table,
        recs: 0,
        failed: 0,
        total: 0,
    };
    let mut calls = 0;
    let mut document = None;
    let out = loop {
        calls += 1;
        let out = call(st, &b.procedure, &args, lag)?;
        args.recs = out.recs;
        args.failed = out.failed;
        args.total = out.total;
        if out.document.is_some() {
            document.clone_from(&out.document);
        }
        if out.cont != 1 || out.ret_val != 1 || calls >= b.call.max_calls {
            break out;
        }
    };
    let rows: Vec<Value> = st
        .staging_rows(key)
        .map_err(store_err)?
        .into_iter()
        .filter(|(t, ..)| t != SESSION_TABLE && t != DIM_EXECUTE_TABLE)
        .map(|(t, k, s)| json!({"table": t, "row_key": k, "process_status": s}))
        .collect();
    let log: Vec<Value> = st
        .logs(key)
        .map_err(store_err)?
        .into_iter()
        .map(|m| json!({"comment": m, "status": 1}))
        .collect();
    Ok(json!({
        "session_key": key, "calls": calls, "ret_val": out.ret_val, "recs_processed": out.recs,
        "failed": out.failed, "total": out.total, "rows": rows, "log": log,
        "document": document,
    }))
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
        "spSOapiSalesOrdIns" | "spLBapiARInvoiceIns" => {
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
        "spLBapiARCustPmtIns" => {
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
        "spLBapiGLJournalIns" => {
            if header.len() < 2 {
                return Err("A GL posting needs at least two rows.".into());
            }
            let mut sum = Decimal::ZERO;
            for r in header {
                let acct = req(&r.columns, "GLAcctNo", t)?;
                if !st.has_master(ERP, "account", acct).map_err(db)? {
                    return Err(format!(
                        "Invalid GL account '{acct}' (spglSetAPIValidateAccount)."
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
