//! The exact T-SQL the connector sends to a Sage 500 database, and the calling sequence of the
//! migration API (contract facts in `tools/erp-sandbox/contracts/sage500/`, sources TYL, QDT,
//! EBS), independent of the driver:
//!
//! 1. make sure `tsmCompanySetup` has the company (QDT);
//! 2. `EXEC spGetNextSurrogateKey 'tsmMigrateSession', @key OUTPUT` (QDT, EBS);
//! 3. insert the `tsmMigrateSession` row with the procedure's `SetupStepKey` (QDT);
//! 4. stage the rows with `SessionKey` and `ProcessStatus = 0`, no `CompanyID` (TYL, QDT);
//! 5. call the procedure with its 11 positional parameters, again while `@oContinue = 1`,
//!    carrying the three counters from call to call; the outcome is `@_oRetVal` (TYL, QDT);
//! 6. read what is left in staging (migrated rows are deleted; failed rows keep
//!    `ProcessStatus = 2`) and the session's `tdmMigrationLogWrk` comments (TYL);
//! 7. close the session (QDT).
//!
//! Every value is a bound parameter (`@P1`, …); table, column and procedure names come from
//! configuration, are checked by [`check_identifier`] and bracket-quoted. [`TsqlDb`] runs this
//! over any [`SqlConnect`]: the SQL Server driver (`sqlserver`, cargo feature) in production,
//! the sandbox's T-SQL emulation in tests.

use super::config::Sage500ApiCall;
use super::db::{check_identifier, ChangedCustomers, CustomerTable, Sage500Db};
use super::mapping::{BatchOutcome, SqlValue, StagingRow, ERP};
use crate::error::ErpError;
use serde_json::{Map, Value};
use std::future::Future;
use std::time::Duration;

/// One value of a result row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlCell {
    Null,
    Int(i64),
    Text(String),
}

impl SqlCell {
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            SqlCell::Int(i) => Some(*i),
            SqlCell::Text(s) => s.trim().parse().ok(),
            SqlCell::Null => None,
        }
    }

    pub fn as_text(&self) -> Option<String> {
        match self {
            SqlCell::Int(i) => Some(i.to_string()),
            SqlCell::Text(s) => Some(s.clone()),
            SqlCell::Null => None,
        }
    }
}

/// One open connection. Each `execute` is one batch; it answers the rows of the batch's last
/// result set. `after_call` says whether the procedure may already have committed a document
/// (it decides how a connection failure is classified).
pub trait SqlSession: Send {
    fn execute(
        &mut self,
        sql: &str,
        params: &[SqlValue],
        after_call: bool,
    ) -> impl Future<Output = Result<Vec<Vec<SqlCell>>, ErpError>> + Send;
}

/// Opens connections.
pub trait SqlConnect: Send + Sync {
    type Session: SqlSession;
    fn connect(&self) -> impl Future<Output = Result<Self::Session, ErpError>> + Send;
}

/// `tsmCompanySetup` row for the company when missing (QDT inserts `(CompanyID, 0, NULL,
/// 'Any')`). `@P1` company.
pub const SQL_COMPANY_SETUP: &str = "INSERT INTO [tsmCompanySetup] ([CompanyID], \
     [MigrateSourceSystem], [MigrateLinkKey], [MigrateSourceVersionNo]) SELECT @P1, 0, NULL, 'Any' \
     WHERE NOT EXISTS (SELECT 1 FROM [tsmCompanySetup] WHERE [CompanyID] = @P1)";

/// A new migration session key.
pub const SQL_NEXT_SESSION_KEY: &str = "DECLARE @key int; \
     EXEC [spGetNextSurrogateKey] 'tsmMigrateSession', @key OUTPUT; SELECT @key";

/// The session row. `@P1` key, `@P2` company, `@P3` `SetupStepKey` (NULL when unknown),
/// `@P4` user.
pub const SQL_REGISTER_SESSION: &str = "INSERT INTO [tsmMigrateSession] ([MigrateSessionKey], \
     [CompanyID], [LastCompProcessMode], [LastCompProcessNo], [LastCompProcessTime], \
     [SetupStepKey], [StartTime], [UserID]) VALUES (@P1, @P2, 1, 0, NULL, @P3, GETDATE(), @P4)";

/// Tie the session to the Data Import Manager job whose column map allows updates (TYL: the
/// procedures read `tdiDataTrnsfrJobExecute` by `SessionKey`). `@P1` job definition key,
/// `@P2` session key.
pub const SQL_TIE_DIM_JOB: &str = "INSERT INTO [tdiDataTrnsfrJobExecute] \
     ([DataTrnsfrJobDefKey], [SessionKey]) VALUES (@P1, @P2)";

/// The session's migration log. `@P1` key.
pub const SQL_READ_LOG: &str = "SELECT CAST([Comment] AS nvarchar(255)) FROM \
     [tdmMigrationLogWrk] WHERE [SessionKey] = @P1";

/// Close the session (QDT). `@P1` key.
pub const SQL_CLOSE_SESSION: &str = "UPDATE [tsmMigrateSession] SET [LastCompProcessMode] = 1, \
     [LastCompProcessNo] = 0, [LastCompProcessTime] = GETDATE() WHERE [MigrateSessionKey] = @P1";

fn bracket(name: &str) -> Result<String, ErpError> {
    check_identifier(name)?;
    if name.starts_with('#') {
        return Err(ErpError::Config {
            erp: ERP,
            message: format!("{name} is a #temporary table; the migration API reads Stg* tables"),
        });
    }
    Ok(format!("[{name}]"))
}

/// `INSERT` of one staging row: `@P1` session key, then the row's values in order.
pub fn insert_sql(row: &StagingRow) -> Result<String, ErpError> {
    let mut cols = vec!["[SessionKey]".to_owned(), "[ProcessStatus]".to_owned()];
    let mut vals = vec!["@P1".to_owned(), "0".to_owned()];
    for (i, (c, _)) in row.columns.iter().enumerate() {
        if c.eq_ignore_ascii_case("CompanyID")
            || c.eq_ignore_ascii_case("SessionKey")
            || c.eq_ignore_ascii_case("ProcessStatus")
        {
            return Err(ErpError::Config {
                erp: ERP,
                message: format!("{c} is set by the adapter, not by a staging row"),
            });
        }
        cols.push(bracket(c)?);
        vals.push(format!("@P{}", i + 2));
    }
    Ok(format!(
        "INSERT INTO {} ({}) VALUES ({})",
        bracket(&row.table)?,
        cols.join(", "),
        vals.join(", ")
    ))
}

/// One call of an API procedure with the 11 positional parameters (`@oContinue` OUTPUT,
/// `@iCancel` 0, `@iSessionKey`, `@iCompanyID`, `@iRptOption`, `@iPrintWarnings`,
/// `@iUseStageTable` 1, the three counters INPUT/OUTPUT, `@_oRetVal` OUTPUT), answering the
/// five outputs. `@P1` session key, `@P2` company, `@P3`-`@P5` the counters so far, `@P6`
/// report option, `@P7` print warnings.
pub fn call_sql(procedure: &str) -> Result<String, ErpError> {
    Ok(format!(
        "DECLARE @oContinue smallint, @oRecsProcessed int, @oFailedRecs int, @oTotalRecs int, \
         @_oRetVal int; SET @oContinue = 0; SET @oRecsProcessed = @P3; SET @oFailedRecs = @P4; \
         SET @oTotalRecs = @P5; SET @_oRetVal = 0; \
         EXEC {} @oContinue OUTPUT, 0, @P1, @P2, @P6, @P7, 1, @oRecsProcessed OUTPUT, \
         @oFailedRecs OUTPUT, @oTotalRecs OUTPUT, @_oRetVal OUTPUT; \
         SELECT @oContinue, @oRecsProcessed, @oFailedRecs, @oTotalRecs, @_oRetVal",
        bracket(procedure)?
    ))
}

/// What is left of the session in one staging table. `@P1` session key.
pub fn remaining_sql(table: &str) -> Result<String, ErpError> {
    Ok(format!(
        "SELECT [RowKey], [ProcessStatus] FROM {} WHERE [SessionKey] = @P1",
        bracket(table)?
    ))
}

fn int_at(row: Option<&Vec<SqlCell>>, i: usize) -> Option<i64> {
    row.and_then(|r| r.get(i)).and_then(SqlCell::as_i64)
}

/// Steps 1-7 of the module documentation on one connection.
pub async fn run_migration<S: SqlSession>(
    s: &mut S,
    company: &str,
    api: &Sage500ApiCall,
    setup_step_key: Option<i64>,
    procedure: &str,
    rows: &[StagingRow],
) -> Result<BatchOutcome, ErpError> {
    run_migration_with(s, company, api, setup_step_key, None, procedure, rows).await
}

/// [`run_migration`], with the Data Import Manager job tied to the session when the rows
/// update (`Action` = 2).
pub async fn run_migration_with<S: SqlSession>(
    s: &mut S,
    company: &str,
    api: &Sage500ApiCall,
    setup_step_key: Option<i64>,
    dim_job: Option<i64>,
    procedure: &str,
    rows: &[StagingRow],
) -> Result<BatchOutcome, ErpError> {
    let call = call_sql(procedure)?;
    let mut inserts = Vec::with_capacity(rows.len());
    let mut tables: Vec<&str> = Vec::new();
    for r in rows {
        inserts.push(insert_sql(r)?);
        if !tables.contains(&r.table.as_str()) {
            tables.push(&r.table);
        }
    }
    let co = SqlValue::Text(company.to_owned());
    s.execute(SQL_COMPANY_SETUP, std::slice::from_ref(&co), false)
        .await?;
    let answer = s.execute(SQL_NEXT_SESSION_KEY, &[], false).await?;
    let key = int_at(answer.first(), 0)
        .filter(|k| *k > 0)
        .ok_or_else(|| ErpError::permanent(ERP, "spGetNextSurrogateKey returned no session key"))?;
    let session = SqlValue::Int(key);
    s.execute(
        SQL_REGISTER_SESSION,
        &[
            session.clone(),
            co.clone(),
            setup_step_key.map_or(SqlValue::Null, SqlValue::Int),
            SqlValue::Text(api.user_id.clone()),
        ],
        false,
    )
    .await?;
    if let (Some(job), true) = (dim_job, super::mapping::has_updates(rows)) {
        s.execute(
            SQL_TIE_DIM_JOB,
            &[SqlValue::Int(job), session.clone()],
            false,
        )
        .await?;
    }
    for (sql, r) in inserts.iter().zip(rows) {
        let mut params = vec![session.clone()];
        params.extend(r.columns.iter().map(|(_, v)| v.clone()));
        s.execute(sql, &params, false).await?;
    }

    let (mut recs, mut failed, mut total) = (0, 0, 0);
    let mut calls = 0;
    let ret_val = loop {
        calls += 1;
        let out = s
            .execute(
                &call,
                &[
                    session.clone(),
                    co.clone(),
                    SqlValue::Int(recs),
                    SqlValue::Int(failed),
                    SqlValue::Int(total),
                    SqlValue::Int(api.rpt_option),
                    SqlValue::Int(api.print_warnings),
                ],
                true,
            )
            .await?;
        let row = out.last();
        let more = int_at(row, 0).unwrap_or(0);
        recs = int_at(row, 1).unwrap_or(recs);
        failed = int_at(row, 2).unwrap_or(failed);
        total = int_at(row, 3).unwrap_or(total);
        let ret_val = int_at(row, 4).unwrap_or(0);
        if more != 1 || ret_val != 1 || calls >= api.max_calls {
            break ret_val;
        }
    };

    let mut left = Vec::new();
    for t in &tables {
        for r in s
            .execute(&remaining_sql(t)?, std::slice::from_ref(&session), true)
            .await?
        {
            left.push(r.get(1).and_then(SqlCell::as_i64).unwrap_or(0));
        }
    }
    let log = s
        .execute(SQL_READ_LOG, std::slice::from_ref(&session), true)
        .await?
        .iter()
        .filter_map(|r| r.first().and_then(SqlCell::as_text))
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .collect();
    s.execute(SQL_CLOSE_SESSION, std::slice::from_ref(&session), true)
        .await?;
    let migrated = rows.len().saturating_sub(left.len());
    let mut process_status = vec![1; migrated];
    process_status.extend(left);
    Ok(BatchOutcome {
        return_code: ret_val,
        failed: Some(failed),
        total: Some(total),
        process_status,
        log,
        document: None,
    })
}

/// [`Sage500Db`] over T-SQL: one connection per operation, every operation time-boxed.
pub struct TsqlDb<C> {
    connect: C,
    company: String,
    api: Sage500ApiCall,
    /// `SetupStepKey` per procedure name.
    steps: Vec<(String, i64)>,
    dim_job: Option<i64>,
    timeout: Duration,
}

impl<C> std::fmt::Debug for TsqlDb<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsqlDb")
            .field("company", &self.company)
            .finish_non_exhaustive()
    }
}

impl<C: SqlConnect> TsqlDb<C> {
    pub fn new(
        connect: C,
        company: &str,
        api: Sage500ApiCall,
        steps: Vec<(String, i64)>,
        timeout: Duration,
    ) -> Self {
        TsqlDb {
            connect,
            company: company.to_owned(),
            api,
            steps,
            dim_job: None,
            timeout,
        }
    }

    /// The adapter for a connector configuration: its company, call settings, each
    /// procedure's `SetupStepKey`, the DIM job for updates and the timeout.
    pub fn from_config(connect: C, cfg: &super::config::Sage500Config) -> Self {
        let steps = cfg
            .docs
            .all()
            .iter()
            .filter_map(|d| d.setup_step_key.map(|k| (d.procedure.clone(), k)))
            .collect();
        TsqlDb::new(
            connect,
            &cfg.company,
            cfg.api.clone(),
            steps,
            Duration::from_millis(cfg.timeout_ms),
        )
        .with_dim_job(cfg.customer_update_dim_job)
    }

    /// The Data Import Manager job tied to update sessions (`customer_update_dim_job`).
    pub fn with_dim_job(mut self, job: Option<i64>) -> Self {
        self.dim_job = job;
        self
    }

    fn timed_out(&self, may_have_committed: bool) -> ErpError {
        ErpError::Retryable {
            erp: ERP,
            status: None,
            message: format!("SQL Server: no answer within {:?}", self.timeout),
            retry_after: None,
            may_have_committed,
        }
    }

    async fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlCell>>, ErpError> {
        let run = async {
            let mut s = self.connect.connect().await?;
            s.execute(sql, params, false).await
        };
        tokio::time::timeout(self.timeout, run)
            .await
            .unwrap_or_else(|_| Err(self.timed_out(false)))
    }
}

/// The catalog queries of `ledgerbridge erp check`: `(procedures, columns of @P1, company @P1,
/// account @P2 of company @P1, period of date @P2 in company @P1)`. The `tglAccount` and
/// `tglFiscalPeriod` column names are assumptions (see `sage500/check.rs`).
pub fn catalog_sql() -> [&'static str; 5] {
    [
        "SELECT CAST([name] AS nvarchar(128)) FROM sys.procedures",
        "SELECT CAST(COLUMN_NAME AS nvarchar(128)), CHARACTER_MAXIMUM_LENGTH FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_NAME = @P1",
        "SELECT CAST(CompanyID AS nvarchar(10)) FROM tsmCompany WHERE CompanyID = @P1",
        "SELECT CAST(GLAcctNo AS nvarchar(100)) FROM tglAccount WHERE CompanyID = @P1 AND GLAcctNo = @P2",
        "SELECT CAST(FiscYear AS nvarchar(10)), FiscPer, Status FROM tglFiscalPeriod WHERE CompanyID = @P1 AND StartDate <= @P2 AND EndDate >= @P2",
    ]
}

impl<C: SqlConnect> TsqlDb<C> {
    /// Read what `ledgerbridge erp check` asks with [`catalog_sql`].
    pub async fn catalog(
        &self,
        req: &super::check::CatalogRequest,
    ) -> Result<super::check::Catalog, ErpError> {
        use super::check::{Catalog, ColumnWidth, PeriodInfo};
        let [procs, cols, company, account, period] = catalog_sql();
        let text = |v: &str| SqlValue::Text(v.to_owned());
        let mut out = Catalog::default();
        let found: Vec<String> = self
            .query(procs, &[])
            .await?
            .iter()
            .filter_map(|r| r.first().and_then(SqlCell::as_text))
            .collect();
        out.procedures = req
            .procedures
            .iter()
            .filter(|p| found.iter().any(|f| f.eq_ignore_ascii_case(p)))
            .cloned()
            .collect();
        let mut tables: Vec<&str> = req.columns.iter().map(|c| c.table.as_str()).collect();
        tables.dedup();
        for t in tables {
            for row in self.query(cols, &[text(t)]).await? {
                let Some(name) = row.first().and_then(SqlCell::as_text) else {
                    continue;
                };
                if req
                    .columns
                    .iter()
                    .any(|c| c.table == t && c.column.eq_ignore_ascii_case(&name))
                {
                    out.columns.push(ColumnWidth {
                        table: t.to_owned(),
                        column: name,
                        max_len: row.get(1).and_then(SqlCell::as_i64),
                    });
                }
            }
        }
        out.company = !self
            .query(company, &[text(&self.company)])
            .await?
            .is_empty();
        for a in &req.accounts {
            if !self
                .query(account, &[text(&self.company), text(a)])
                .await?
                .is_empty()
            {
                out.accounts.push(a.clone());
            }
        }
        out.period = self
            .query(period, &[text(&self.company), text(&req.date)])
            .await?
            .first()
            .map(|r| PeriodInfo {
                fiscal_year: r.first().and_then(SqlCell::as_text).unwrap_or_default(),
                fiscal_period: r.get(1).and_then(SqlCell::as_i64).unwrap_or(0),
                closed: r.get(2).and_then(SqlCell::as_i64) == Some(2),
            });
        Ok(out)
    }
}

/// `SELECT TOP 1 {key} FROM {table} WHERE {column} = @P1 AND [CompanyID] = @P2`.
pub fn lookup_sql(table: &str, column: &str, key: &str) -> Result<String, ErpError> {
    Ok(format!(
        "SELECT TOP 1 CAST({} AS nvarchar(100)) FROM {} WHERE {} = @P1 AND [CompanyID] = @P2",
        bracket(key)?,
        bracket(table)?,
        bracket(column)?
    ))
}

impl<C: SqlConnect> Sage500Db for TsqlDb<C> {
    async fn run_batch(
        &self,
        procedure: &str,
        rows: &[StagingRow],
    ) -> Result<BatchOutcome, ErpError> {
        let step = self
            .steps
            .iter()
            .find(|(p, _)| p == procedure)
            .map(|(_, k)| *k);
        let run = async {
            let mut s = self.connect.connect().await?;
            run_migration_with(
                &mut s,
                &self.company,
                &self.api,
                step,
                self.dim_job,
                procedure,
                rows,
            )
            .await
        };
        tokio::time::timeout(self.timeout, run)
            .await
            .unwrap_or_else(|_| Err(self.timed_out(true)))
    }

    async fn lookup(
        &self,
        table: &str,
        column: &str,
        value: &str,
        key: &str,
    ) -> Result<Option<String>, ErpError> {
        let sql = lookup_sql(table, column, key)?;
        let rows = self
            .query(
                &sql,
                &[
                    SqlValue::Text(value.to_owned()),
                    SqlValue::Text(self.company.clone()),
                ],
            )
            .await?;
        Ok(rows
            .first()
            .and_then(|r| r.first())
            .and_then(SqlCell::as_text)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()))
    }

    async fn customers_by_email(
        &self,
        customer: &CustomerTable<'_>,
        email: &str,
    ) -> Result<Vec<(String, String)>, ErpError> {
        customer.check()?;
        let l = customer.lookup;
        let sql = format!(
            "SELECT TOP 3 CAST(c.{key} AS nvarchar(100)), CAST(c.{id} AS nvarchar(100)) \
             FROM {table} c JOIN {contacts} k ON k.{ckey} = c.{cref} \
             WHERE LOWER(LTRIM(RTRIM(k.{mail}))) = @P1 AND c.[CompanyID] = @P2",
            key = bracket(customer.key_column)?,
            id = bracket(&l.customer_id_column)?,
            table = bracket(customer.table)?,
            contacts = bracket(&l.contact_table)?,
            ckey = bracket(&l.contact_key_column)?,
            cref = bracket(&l.customer_contact_column)?,
            mail = bracket(&l.email_column)?,
        );
        let rows = self
            .query(
                &sql,
                &[
                    SqlValue::Text(email.to_owned()),
                    SqlValue::Text(self.company.clone()),
                ],
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let key = r.first().and_then(SqlCell::as_text)?;
                let id = r.get(1).and_then(SqlCell::as_text)?;
                Some((key.trim().to_owned(), id.trim().to_owned()))
            })
            .collect())
    }

    async fn customers_changed(
        &self,
        customer: &CustomerTable<'_>,
        changes: &ChangedCustomers<'_>,
    ) -> Result<Vec<Map<String, Value>>, ErpError> {
        customer.check()?;
        let l = customer.lookup;
        let sql = format!(
            "SELECT CAST(c.{id} AS nvarchar(100)), CAST(c.[CustName] AS nvarchar(200)), \
             CAST(k.{mail} AS nvarchar(256)), CAST(c.{reference} AS nvarchar(100)), \
             CONVERT(varchar(23), c.{changed}, 121) \
             FROM {table} c LEFT JOIN {contacts} k ON k.{ckey} = c.{cref} \
             WHERE c.[CompanyID] = @P1 AND c.{changed} >= CONVERT(datetime, @P2, 120) \
             ORDER BY c.{changed}, c.{id} OFFSET @P3 ROWS FETCH NEXT @P4 ROWS ONLY",
            id = bracket(&l.customer_id_column)?,
            mail = bracket(&l.email_column)?,
            reference = bracket(changes.reference_column)?,
            changed = bracket(changes.changed_column)?,
            table = bracket(customer.table)?,
            contacts = bracket(&l.contact_table)?,
            ckey = bracket(&l.contact_key_column)?,
            cref = bracket(&l.customer_contact_column)?,
        );
        let offset = i64::try_from(changes.offset).unwrap_or(i64::MAX);
        let limit = i64::try_from(changes.limit).unwrap_or(500);
        let rows = self
            .query(
                &sql,
                &[
                    SqlValue::Text(self.company.clone()),
                    SqlValue::Text(changes.since.to_owned()),
                    SqlValue::Int(offset),
                    SqlValue::Int(limit),
                ],
            )
            .await?;
        let names = [
            l.customer_id_column.as_str(),
            "CustName",
            l.email_column.as_str(),
            changes.reference_column,
            changes.changed_column,
        ];
        Ok(rows
            .iter()
            .map(|r| {
                names
                    .iter()
                    .zip(r)
                    .filter_map(|(n, v)| {
                        let v = v.as_text()?;
                        Some(((*n).to_owned(), Value::from(v.trim())))
                    })
                    .collect()
            })
            .collect())
    }
}
