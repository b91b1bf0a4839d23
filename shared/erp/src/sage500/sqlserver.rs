//! SQL Server driver of the Sage 500 T-SQL ([`super::tsql`]) (cargo feature `sqlserver`), for
//! the on-premises agent.
//!
//! One connection per operation (the agent posts a few documents a minute; the session
//! registration, the staging rows, the procedure calls and the reads of what is left in staging
//! and the migration log share that connection). Every value is a bound parameter.

use super::config::{Sage500Config, Sage500SqlConfig};
use super::mapping::{SqlValue, ERP};
use super::tsql::{SqlCell, SqlConnect, SqlSession, TsqlDb};
use crate::error::ErpError;
use crate::http::clip;
use ledgerbridge_core::secrets::Secret;
use tiberius::{AuthMethod, Client, ColumnData, Config, Query};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

type Conn = Client<Compat<TcpStream>>;

/// The Sage 500 database over SQL Server.
pub type SqlServerDb = TsqlDb<SqlServerConnect>;

/// Build the adapter from the connector configuration and a SQL Server login.
pub fn sql_server_db(
    sql: Sage500SqlConfig,
    cfg: &Sage500Config,
    user: String,
    password: Secret<String>,
) -> SqlServerDb {
    TsqlDb::from_config(
        SqlServerConnect {
            cfg: sql,
            user,
            password,
        },
        cfg,
    )
}

/// Opens a TDS connection per operation.
pub struct SqlServerConnect {
    cfg: Sage500SqlConfig,
    user: String,
    password: Secret<String>,
}

impl std::fmt::Debug for SqlServerConnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlServerConnect")
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

impl SqlConnect for SqlServerConnect {
    type Session = TdsSession;

    async fn connect(&self) -> Result<TdsSession, ErpError> {
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
            .map(TdsSession)
            .map_err(|e| classify(Step::BeforeCall, e))
    }
}

/// One TDS connection.
pub struct TdsSession(Conn);

fn cell(data: &ColumnData<'_>) -> SqlCell {
    match data {
        ColumnData::U8(Some(v)) => SqlCell::Int(i64::from(*v)),
        ColumnData::I16(Some(v)) => SqlCell::Int(i64::from(*v)),
        ColumnData::I32(Some(v)) => SqlCell::Int(i64::from(*v)),
        ColumnData::I64(Some(v)) => SqlCell::Int(*v),
        ColumnData::String(Some(v)) => SqlCell::Text(v.to_string()),
        ColumnData::Numeric(Some(v)) => SqlCell::Text(v.to_string()),
        _ => SqlCell::Null,
    }
}

impl SqlSession for TdsSession {
    async fn execute(
        &mut self,
        sql: &str,
        params: &[SqlValue],
        after_call: bool,
    ) -> Result<Vec<Vec<SqlCell>>, ErpError> {
        let step = if after_call {
            Step::CallOrAfter
        } else {
            Step::BeforeCall
        };
        let mut q = Query::new(sql.to_owned());
        for v in params {
            match v {
                SqlValue::Text(s) | SqlValue::Decimal(s) => q.bind(s.clone()),
                SqlValue::Int(i) => q.bind(*i),
                SqlValue::Null => q.bind(Option::<i32>::None),
            }
        }
        let sets = q
            .query(&mut self.0)
            .await
            .map_err(|e| classify(step, e))?
            .into_results()
            .await
            .map_err(|e| classify(step, e))?;
        // The procedure may return result sets of its own; the batch's answer is the last one.
        Ok(sets
            .iter()
            .rev()
            .find(|set| !set.is_empty())
            .map(|set| {
                set.iter()
                    .map(|row| row.cells().map(|(_, d)| cell(d)).collect())
                    .collect()
            })
            .unwrap_or_default())
    }
}
