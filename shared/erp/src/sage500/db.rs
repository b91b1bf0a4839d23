//! The staging-table contract behind a small trait, and its HTTP adapter.

use super::config::{Sage500ApiCall, Sage500EmailLookup};
use super::mapping::{BatchOutcome, StagingRow, ERP};
use super::retry::classify;
use crate::connector::Credentials;
use crate::error::ErpError;
use crate::http;
use ledgerbridge_core::secrets::Secret;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::future::Future;
use std::time::Duration;

/// Staging rows in, outcome out; and a lookup of a migrated document by reference column.
pub trait Sage500Db: Send + Sync {
    /// Register a migration session, stage `rows` under it, run `procedure` for it in the
    /// vendor's call loop, and report `@_oRetVal`, the counters, each row's outcome and the
    /// migration log.
    fn run_batch(
        &self,
        procedure: &str,
        rows: &[StagingRow],
    ) -> impl Future<Output = Result<BatchOutcome, ErpError>> + Send;

    /// `SELECT TOP 1 {key} FROM {table} WHERE {column} = @value AND CompanyID = @company`.
    fn lookup(
        &self,
        table: &str,
        column: &str,
        value: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<String>, ErpError>> + Send;

    /// Customers of the company whose e-mail (reached as `customer.lookup` says) equals `email`
    /// (already trimmed and lower-cased), compared trimmed and case-insensitively: at most 3
    /// `(key, customer id)`.
    fn customers_by_email(
        &self,
        customer: &CustomerTable<'_>,
        email: &str,
    ) -> impl Future<Output = Result<Vec<(String, String)>, ErpError>> + Send;

    /// Customers of the company whose `changed_column` is at or after `since` (`YYYY-MM-DD
    /// HH:MM:SS`), oldest first, `limit` rows from `offset`: each row with the customer code
    /// (`CustID`), `CustName`, `EMailAddr` (through the contact join), the reference column
    /// and `changed_column`.
    fn customers_changed(
        &self,
        customer: &CustomerTable<'_>,
        changes: &ChangedCustomers<'_>,
    ) -> impl Future<Output = Result<Vec<Map<String, Value>>, ErpError>> + Send;
}

/// What [`Sage500Db::customers_changed`] reads.
#[derive(Debug, Clone, Copy)]
pub struct ChangedCustomers<'a> {
    pub changed_column: &'a str,
    pub reference_column: &'a str,
    pub since: &'a str,
    pub offset: usize,
    pub limit: usize,
}

/// The customer table and how its e-mail address is reached.
#[derive(Debug, Clone, Copy)]
pub struct CustomerTable<'a> {
    pub table: &'a str,
    pub key_column: &'a str,
    pub lookup: &'a Sage500EmailLookup,
}

impl CustomerTable<'_> {
    pub(super) fn check(&self) -> Result<(), ErpError> {
        let l = self.lookup;
        for n in [
            self.table,
            self.key_column,
            &l.contact_table,
            &l.contact_key_column,
            &l.customer_contact_column,
            &l.email_column,
            &l.customer_id_column,
        ] {
            check_identifier(n)?;
        }
        Ok(())
    }
}

fn key_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Table and column names come from configuration, never from commands; they are still
/// restricted so they can be placed in a URL or a bracket-quoted SQL identifier.
pub(super) fn check_identifier(name: &str) -> Result<(), ErpError> {
    let body = name.strip_prefix('#').unwrap_or(name);
    let ok = !body.is_empty()
        && name.len() <= 128
        && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ErpError::Config {
            erp: ERP,
            message: format!("{name:?} is not a valid table, column or procedure name"),
        })
    }
}

/// The HTTP staging facade (`POST {base}/sage500/{company}/batches`,
/// `GET {base}/sage500/{company}/lookup`), authenticated with `x-api-key`.
///
/// A batch asks the facade to run the vendor's calling sequence next to the database (the
/// same steps [`super::tsql`] sends as T-SQL): register a session (`spGetNextSurrogateKey
/// 'tsmMigrateSession'`, a `tsmMigrateSession` row with `session.setup_step_key`, and for
/// updates a `tdiDataTrnsfrJobExecute` row for `session.dim_job_def_key`), stage the
/// rows with that `SessionKey` and `ProcessStatus = 0` (no `CompanyID`: the company is in the
/// path and passed as `@iCompanyID`), call the procedure with the 11 parameters of `call`
/// while `@oContinue = 1`, then answer `@_oRetVal` (`ret_val`), the counters (`failed`,
/// `total`, `recs_processed`), the number of `calls`, the rows still in staging with their
/// `ProcessStatus` (`rows`; migrated rows are deleted by Sage) and the session's
/// `tdmMigrationLogWrk` entries (`log`: `comment`, `column_id`, `column_value`, `status`).
pub struct HttpDb {
    root: String,
    http: reqwest::Client,
    api_key: Credentials<Secret<String>>,
    api: Sage500ApiCall,
    steps: Vec<(String, i64)>,
    dim_job: Option<i64>,
    /// Breaker, `Retry-After` hold and request rate of every request this client sends.
    gate: crate::gate::Gate,
}

impl std::fmt::Debug for HttpDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpDb")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct BatchAnswer {
    ret_val: i64,
    failed: i64,
    total: i64,
    #[serde(default)]
    rows: Vec<RowAnswer>,
    #[serde(default)]
    log: Vec<LogAnswer>,
    #[serde(default)]
    document: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
struct LogAnswer {
    #[serde(default)]
    comment: Option<String>,
}

#[derive(Deserialize)]
struct RowAnswer {
    process_status: i64,
}

impl HttpDb {
    pub fn new(
        base_url: &str,
        company: &str,
        api_key: Credentials<Secret<String>>,
        timeout: Duration,
    ) -> Result<Self, ErpError> {
        if !company
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            || company.is_empty()
        {
            return Err(ErpError::Config {
                erp: ERP,
                message: format!("{company:?} is not a valid company id"),
            });
        }
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(crate::http::shared_tls(ERP)?)
            .timeout(timeout)
            .build()
            .map_err(|e| ErpError::Config {
                erp: ERP,
                message: e.to_string(),
            })?;
        Ok(HttpDb {
            root: format!("{}/sage500/{company}", base_url.trim_end_matches('/')),
            http,
            api_key,
            api: Sage500ApiCall::default(),
            steps: Vec::new(),
            dim_job: None,
            gate: crate::gate::Gate::new(ERP, crate::gate::GateConfig::default()),
        })
    }

    /// How procedures are called, and the `SetupStepKey` of each procedure's sessions.
    pub fn with_calls(mut self, api: Sage500ApiCall, steps: Vec<(String, i64)>) -> Self {
        self.api = api;
        self.steps = steps;
        self
    }

    /// The gate's settings (`gate` of the settings; the defaults otherwise).
    pub fn with_gate(mut self, cfg: crate::gate::GateConfig) -> Self {
        self.gate = crate::gate::Gate::new(ERP, cfg);
        self
    }

    /// The Data Import Manager job tied to update sessions (`customer_update_dim_job`).
    pub fn with_dim_job(mut self, job: Option<i64>) -> Self {
        self.dim_job = job;
        self
    }

    async fn call(
        &self,
        build: impl Fn(&Secret<String>) -> reqwest::RequestBuilder,
    ) -> Result<Value, ErpError> {
        let (_, body) = http::send(ERP, &self.gate, &self.api_key, build, classify).await?;
        serde_json::from_slice(&body).map_err(|e| ErpError::Retryable {
            erp: ERP,
            status: None,
            message: format!("unreadable answer: {e}"),
            retry_after: None,
            // The batch may have been processed; the answer just cannot be read.
            may_have_committed: true,
        })
    }
}

impl HttpDb {
    /// `POST {base}/sage500/{company}/catalog` with the request → the [`Catalog`] (what
    /// `ledgerbridge erp check` reads; see `sage500/check.rs`).
    pub async fn catalog(
        &self,
        req: &super::check::CatalogRequest,
    ) -> Result<super::check::Catalog, ErpError> {
        let url = format!("{}/catalog", self.root);
        let v = self
            .call(|k| {
                self.http
                    .post(&url)
                    .header("x-api-key", k.expose().as_str())
                    .json(req)
            })
            .await?;
        serde_json::from_value(v)
            .map_err(|e| ErpError::permanent(ERP, format!("unreadable catalog answer: {e}")))
    }
}

impl Sage500Db for HttpDb {
    async fn run_batch(
        &self,
        procedure: &str,
        rows: &[StagingRow],
    ) -> Result<BatchOutcome, ErpError> {
        check_identifier(procedure)?;
        let rows_json: Vec<Value> = rows
            .iter()
            .map(|r| {
                check_identifier(&r.table)?;
                let mut cols = Map::new();
                for (c, v) in &r.columns {
                    check_identifier(c)?;
                    cols.insert(c.clone(), v.to_json());
                }
                Ok(json!({"table": r.table, "columns": cols}))
            })
            .collect::<Result<_, ErpError>>()?;
        let step = self
            .steps
            .iter()
            .find(|(p, _)| p == procedure)
            .map(|(_, k)| *k);
        let body = json!({
            "procedure": procedure,
            "session": {
                "setup_step_key": step,
                "user_id": self.api.user_id,
                "dim_job_def_key": self.dim_job.filter(|_| super::mapping::has_updates(rows)),
            },
            "call": {
                "cancel": 0,
                "rpt_option": self.api.rpt_option,
                "print_warnings": self.api.print_warnings,
                "use_stage_table": 1,
                "max_calls": self.api.max_calls,
            },
            "rows": rows_json,
        })
        .to_string();
        let url = format!("{}/batches", self.root);
        let v = self
            .call(|k| {
                self.http
                    .post(&url)
                    .header("x-api-key", k.expose().as_str())
                    .header("Content-Type", "application/json")
                    .body(body.clone())
            })
            .await?;
        let a: BatchAnswer = serde_json::from_value(v).map_err(|e| ErpError::Retryable {
            erp: ERP,
            status: None,
            message: format!("unexpected batch answer: {e}"),
            retry_after: None,
            may_have_committed: true,
        })?;
        let migrated = rows.len().saturating_sub(a.rows.len());
        let mut process_status = vec![1; migrated];
        process_status.extend(a.rows.iter().map(|r| r.process_status));
        Ok(BatchOutcome {
            return_code: a.ret_val,
            failed: Some(a.failed),
            total: Some(a.total),
            process_status,
            log: a.log.into_iter().filter_map(|l| l.comment).collect(),
            document: a.document,
        })
    }

    async fn lookup(
        &self,
        table: &str,
        column: &str,
        value: &str,
        key: &str,
    ) -> Result<Option<String>, ErpError> {
        for n in [table, column, key] {
            check_identifier(n)?;
        }
        let url = format!("{}/lookup", self.root);
        let query = [
            ("table", table),
            ("column", column),
            ("value", value),
            ("key", key),
        ];
        let v = self
            .call(|k| {
                self.http
                    .get(&url)
                    .header("x-api-key", k.expose().as_str())
                    .query(&query)
            })
            .await?;
        match v.get("key") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(ErpError::permanent(
                ERP,
                "lookup answer has an unusable \"key\"",
            )),
        }
    }

    /// `GET {base}/sage500/{company}/customer-email?email=…` → `{"customers": [{"key": …,
    /// "customer_id": …}]}`; the facade runs the query [`CustomerTable`] describes.
    async fn customers_by_email(
        &self,
        customer: &CustomerTable<'_>,
        email: &str,
    ) -> Result<Vec<(String, String)>, ErpError> {
        customer.check()?;
        let url = format!("{}/customer-email", self.root);
        let query = [("email", email)];
        let v = self
            .call(|k| {
                self.http
                    .get(&url)
                    .header("x-api-key", k.expose().as_str())
                    .query(&query)
            })
            .await?;
        let Some(rows) = v.get("customers").and_then(Value::as_array) else {
            return Err(ErpError::permanent(
                ERP,
                "e-mail lookup answer has no \"customers\" array",
            ));
        };
        rows.iter()
            .map(
                |r| match (key_text(r.get("key")), key_text(r.get("customer_id"))) {
                    (Some(k), Some(c)) => Ok((k, c)),
                    _ => Err(ErpError::permanent(
                        ERP,
                        "e-mail lookup answer has a customer without \"key\" or \"customer_id\"",
                    )),
                },
            )
            .collect()
    }

    /// `GET {base}/sage500/{company}/customers-changed?since=…&offset=…&limit=…` →
    /// `{"customers": [row, …]}`.
    async fn customers_changed(
        &self,
        customer: &CustomerTable<'_>,
        changes: &ChangedCustomers<'_>,
    ) -> Result<Vec<Map<String, Value>>, ErpError> {
        customer.check()?;
        let url = format!("{}/customers-changed", self.root);
        let query = [
            ("since", changes.since.to_owned()),
            ("offset", changes.offset.to_string()),
            ("limit", changes.limit.to_string()),
        ];
        let v = self
            .call(|k| {
                self.http
                    .get(&url)
                    .header("x-api-key", k.expose().as_str())
                    .query(&query)
            })
            .await?;
        let Some(rows) = v.get("customers").and_then(Value::as_array) else {
            return Err(ErpError::permanent(
                ERP,
                "changed-customers answer has no \"customers\" array",
            ));
        };
        Ok(rows.iter().filter_map(|r| r.as_object().cloned()).collect())
    }
}
