//! The staging-table contract behind a small trait, and its HTTP adapter.

use super::config::Sage500EmailLookup;
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
    /// Insert `rows` under a new session key, run `procedure` for that session, and report the
    /// rows' `ProcessStatus` and the migration log.
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

/// A fresh session key (positive, fits SQL Server `int`).
pub(super) fn new_session_key() -> i64 {
    i64::from((uuid::Uuid::new_v4().as_u128() % (i32::MAX as u128 - 1)) as i32 + 1)
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
pub struct HttpDb {
    root: String,
    http: reqwest::Client,
    api_key: Credentials<Secret<String>>,
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
    return_code: i64,
    #[serde(default)]
    rows: Vec<RowAnswer>,
    #[serde(default)]
    log: Vec<String>,
    #[serde(default)]
    document: Option<Map<String, Value>>,
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
        })
    }

    async fn call(
        &self,
        build: impl Fn(&Secret<String>) -> reqwest::RequestBuilder,
    ) -> Result<Value, ErpError> {
        let (_, body) = http::send(ERP, &self.api_key, build, classify).await?;
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
        let body = json!({
            "session_key": new_session_key(),
            "procedure": procedure,
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
        Ok(BatchOutcome {
            return_code: a.return_code,
            process_status: a.rows.iter().map(|r| r.process_status).collect(),
            log: a.log,
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
