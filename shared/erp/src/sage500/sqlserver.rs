//! SQL Server adapter of [`Sage500Db`] (cargo feature `sqlserver`), for the on-premises agent.
//!
//! One connection per call (the agent posts a few documents a minute; the staging rows, the
//! procedure call and the reads of `ProcessStatus` and the migration log must share one
//! connection anyway because the GL procedure reads a `#temporary` table). Every value is a
//! bound parameter; table, column and procedure names come from configuration and are checked
//! by [`check_identifier`] and bracket-quoted.

use super::config::Sage500SqlConfig;
use super::db::{check_identifier, new_session_key, ChangedCustomers, CustomerTable, Sage500Db};
use super::mapping::{BatchOutcome, SqlValue, StagingRow, ERP};
use crate::error::ErpError;
use crate::http::clip;
use ledgerbridge_core::secrets::Secret;
use std::time::Duration;
use tiberius::{AuthMethod, Client, Config, Query};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

type Conn = Client<Compat<TcpStream>>;

pub struct SqlServerDb {
    cfg: Sage500SqlConfig,
    company: String,
    user: String,
    password: Secret<String>,
    timeout: Duration,
}

impl std::fmt::Debug for SqlServerDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlServerDb")
            .field("host", &self.cfg.host)
            .field("database", &self.cfg.database)
            .finish_non_exhaustive()
    }
}

/// Which step failed: before the procedure call nothing but staging rows can exist; from the
/// call on, the document may have been committed.
#[derive(Clone, Copy)]
enum Step {
    BeforeCall,
    CallOrAfter,
}

fn bracket(name: &str) -> Result<String, ErpError> {
    check_identifier(name)?;
    Ok(format!("[{name}]"))
}

fn param_name(name: &str) -> Result<&str, ErpError> {
    match name.strip_prefix('@') {
        Some(rest) if check_identifier(rest).is_ok() && !rest.starts_with('#') => Ok(name),
        _ => Err(ErpError::Config {
            erp: ERP,
            message: format!("{name:?} is not a procedure parameter name"),
        }),
    }
}

fn classify(step: Step, e: tiberius::error::Error) -> ErpError {
    use tiberius::error::Error as E;
    let may_have_committed = matches!(step, Step::CallOrAfter);
    match e {
        // 18456: login failed; 18486/18487/18488: account locked, password expired.
        E::Server(t) if matches!(t.code(), 18456 | 18486 | 18487 | 18488) => {
            ErpError::Authentication {
                erp: ERP,
                status: None,
                message: clip(t.message()),
            }
        }
        // 1205 deadlock victim, -2 timeout, 40613/40501 database unavailable/busy.
        E::Server(t) if matches!(t.code(), 1205 | 40501 | 40613) => ErpError::Retryable {
            erp: ERP,
            status: None,
            message: clip(t.message()),
            retry_after: None,
            may_have_committed: false,
        },
        E::Server(t) => ErpError::Permanent {
            erp: ERP,
            status: None,
            message: clip(&format!("SQL Server error {}: {}", t.code(), t.message())),
        },
        other => ErpError::Retryable {
            erp: ERP,
            status: None,
            message: clip(&format!("SQL Server connection: {other}")),
            retry_after: None,
            may_have_committed,
        },
    }
}

fn io_err(step: Step, e: std::io::Error) -> ErpError {
    ErpError::Retryable {
        erp: ERP,
        status: None,
        message: format!("SQL Server connection: {e}"),
        retry_after: None,
        may_have_committed: matches!(step, Step::CallOrAfter),
    }
}

impl SqlServerDb {
    pub fn new(
        cfg: Sage500SqlConfig,
        company: &str,
        user: String,
        password: Secret<String>,
        timeout: Duration,
    ) -> Result<Self, ErpError> {
        param_name(&cfg.session_param)?;
        param_name(&cfg.company_param)?;
        check_identifier(&cfg.log_table)?;
        check_identifier(&cfg.log_message_column)?;
        Ok(SqlServerDb {
            cfg,
            company: company.to_owned(),
            user,
            password,
            timeout,
        })
    }

    async fn connect(&self) -> Result<Conn, ErpError> {
        let mut config = Config::new();
        config.host(&self.cfg.host);
        config.port(self.cfg.port);
        config.database(&self.cfg.database);
        config.application_name("ledgerbridge");
        config.authentication(AuthMethod::sql_server(
            &self.user,
            self.password.expose().as_str(),
        ));
        if self.cfg.trust_server_certificate {
            config.trust_cert();
        }
        let tcp = TcpStream::connect(config.get_addr())
            .await
            .map_err(|e| io_err(Step::BeforeCall, e))?;
        tcp.set_nodelay(true)
            .map_err(|e| io_err(Step::BeforeCall, e))?;
        Client::connect(config, tcp.compat_write())
            .await
            .map_err(|e| classify(Step::BeforeCall, e))
    }

    async fn batch_inner(
        &self,
        procedure: &str,
        rows: &[StagingRow],
    ) -> Result<BatchOutcome, ErpError> {
        let proc_name = bracket(procedure)?;
        let session_key = new_session_key();
        let mut conn = self.connect().await?;
        let before = |e| classify(Step::BeforeCall, e);
        let after = |e| classify(Step::CallOrAfter, e);

        if rows.iter().any(|r| r.table.starts_with('#')) {
            let Some(ddl) = &self.cfg.gl_temp_table_ddl else {
                return Err(ErpError::Config {
                    erp: ERP,
                    message: "posting through a #temporary staging table needs \
                              \"gl_temp_table_ddl\" (the installation's table definition)"
                        .into(),
                });
            };
            // Operator-supplied DDL from configuration; it carries no values.
            conn.simple_query(ddl.as_str())
                .await
                .map_err(before)?
                .into_results()
                .await
                .map_err(before)?;
        }

        let mut staging_tables: Vec<&str> = Vec::new();
        for r in rows {
            let temp = r.table.starts_with('#');
            let mut cols = Vec::new();
            let mut values: Vec<SqlValue> = Vec::new();
            if !temp {
                cols.push("[SessionKey]".to_owned());
                values.push(SqlValue::Int(session_key));
                cols.push("[ProcessStatus]".to_owned());
                values.push(SqlValue::Int(0));
                if !staging_tables.contains(&r.table.as_str()) {
                    staging_tables.push(&r.table);
                }
            }
            cols.push("[CompanyID]".to_owned());
            values.push(SqlValue::Text(self.company.clone()));
            for (c, v) in &r.columns {
                cols.push(bracket(c)?);
                values.push(v.clone());
            }
            let placeholders: Vec<String> = (1..=values.len()).map(|i| format!("@P{i}")).collect();
            let sql = format!(
                "INSERT INTO {} ({}) VALUES ({})",
                bracket(&r.table)?,
                cols.join(", "),
                placeholders.join(", ")
            );
            let mut q = Query::new(sql);
            for v in values {
                match v {
                    SqlValue::Text(s) | SqlValue::Decimal(s) => q.bind(s),
                    SqlValue::Int(i) => q.bind(i),
                }
            }
            q.execute(&mut conn).await.map_err(before)?;
        }

        let call = format!(
            "DECLARE @rc int; EXEC @rc = {proc_name} {} = @P1, {} = @P2; SELECT CAST(@rc AS bigint) AS rc;",
            self.cfg.session_param, self.cfg.company_param
        );
        let mut q = Query::new(call);
        q.bind(session_key);
        q.bind(self.company.clone());
        let results = q
            .query(&mut conn)
            .await
            .map_err(after)?
            .into_results()
            .await
            .map_err(after)?;
        // The procedure may return result sets of its own; the return code is the last one.
        let return_code = results
            .iter()
            .rev()
            .flat_map(|set| set.iter())
            .find_map(|row| row.try_get::<i64, _>("rc").ok().flatten())
            .unwrap_or(0);

        let mut process_status = Vec::new();
        for t in &staging_tables {
            let sql = format!(
                "SELECT CAST([ProcessStatus] AS bigint) FROM {} WHERE [SessionKey] = @P1",
                bracket(t)?
            );
            let rows = conn
                .query(sql, &[&session_key])
                .await
                .map_err(after)?
                .into_first_result()
                .await
                .map_err(after)?;
            for row in rows {
                process_status.push(row.try_get::<i64, _>(0).ok().flatten().unwrap_or(0));
            }
        }
        if staging_tables.is_empty() {
            // Batchless GL posting stages only into the #temporary table, which reports no
            // ProcessStatus: the return code decides.
            process_status.push(if return_code == 1 { 1 } else { 2 });
        }
        let sql = format!(
            "SELECT CAST({} AS nvarchar(4000)) FROM {} WHERE [SessionKey] = @P1",
            bracket(&self.cfg.log_message_column)?,
            bracket(&self.cfg.log_table)?
        );
        let log = conn
            .query(sql, &[&session_key])
            .await
            .map_err(after)?
            .into_first_result()
            .await
            .map_err(after)?
            .iter()
            .filter_map(|r| r.try_get::<&str, _>(0).ok().flatten().map(str::to_owned))
            .collect();
        Ok(BatchOutcome {
            return_code,
            process_status,
            log,
            document: None,
        })
    }

    async fn lookup_inner(
        &self,
        table: &str,
        column: &str,
        value: &str,
        key: &str,
    ) -> Result<Option<String>, ErpError> {
        let sql = format!(
            "SELECT TOP 1 CAST({} AS nvarchar(100)) FROM {} WHERE {} = @P1 AND [CompanyID] = @P2",
            bracket(key)?,
            bracket(table)?,
            bracket(column)?
        );
        let mut conn = self.connect().await?;
        let row = conn
            .query(sql, &[&value, &self.company.as_str()])
            .await
            .map_err(|e| classify(Step::BeforeCall, e))?
            .into_row()
            .await
            .map_err(|e| classify(Step::BeforeCall, e))?;
        Ok(row.and_then(|r| r.try_get::<&str, _>(0).ok().flatten().map(str::to_owned)))
    }

    async fn customers_by_email_inner(
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
        let mut conn = self.connect().await?;
        let rows = conn
            .query(sql, &[&email, &self.company.as_str()])
            .await
            .map_err(|e| classify(Step::BeforeCall, e))?
            .into_first_result()
            .await
            .map_err(|e| classify(Step::BeforeCall, e))?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let key = r.try_get::<&str, _>(0).ok().flatten()?;
                let id = r.try_get::<&str, _>(1).ok().flatten()?;
                Some((key.to_owned(), id.trim().to_owned()))
            })
            .collect())
    }

    async fn customers_changed_inner(
        &self,
        customer: &CustomerTable<'_>,
        changes: &ChangedCustomers<'_>,
    ) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, ErpError> {
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
        let mut conn = self.connect().await?;
        let rows = conn
            .query(
                sql,
                &[&self.company.as_str(), &changes.since, &offset, &limit],
            )
            .await
            .map_err(|e| classify(Step::BeforeCall, e))?
            .into_first_result()
            .await
            .map_err(|e| classify(Step::BeforeCall, e))?;
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
                    .enumerate()
                    .filter_map(|(i, n)| {
                        let v = r.try_get::<&str, _>(i).ok().flatten()?;
                        Some(((*n).to_owned(), serde_json::Value::from(v.trim())))
                    })
                    .collect()
            })
            .collect())
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
}

impl Sage500Db for SqlServerDb {
    async fn run_batch(
        &self,
        procedure: &str,
        rows: &[StagingRow],
    ) -> Result<BatchOutcome, ErpError> {
        tokio::time::timeout(self.timeout, self.batch_inner(procedure, rows))
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
        tokio::time::timeout(self.timeout, self.lookup_inner(table, column, value, key))
            .await
            .unwrap_or_else(|_| Err(self.timed_out(false)))
    }

    async fn customers_by_email(
        &self,
        customer: &CustomerTable<'_>,
        email: &str,
    ) -> Result<Vec<(String, String)>, ErpError> {
        tokio::time::timeout(self.timeout, self.customers_by_email_inner(customer, email))
            .await
            .unwrap_or_else(|_| Err(self.timed_out(false)))
    }

    async fn customers_changed(
        &self,
        customer: &CustomerTable<'_>,
        changes: &ChangedCustomers<'_>,
    ) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, ErpError> {
        tokio::time::timeout(
            self.timeout,
            self.customers_changed_inner(customer, changes),
        )
        .await
        .unwrap_or_else(|_| Err(self.timed_out(false)))
    }
}
