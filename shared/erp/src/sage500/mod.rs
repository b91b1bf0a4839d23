//! Sage 500 connector over the staging-table + API-procedure contract (DOMAIN.md §3.2): rows are
//! written to staging tables (`StgSalesOrder` + `StgSOLine`, …), the procedure
//! (`spSOapiSalesOrdIns`, …) migrates them, and each row ends at `ProcessStatus` 1 (processed)
//! or 2 (error, reason in the migration log). The database is reached through the
//! [`Sage500Db`] trait: [`HttpDb`] speaks the sandbox's `/sage500/...` facade (or an equivalent
//! on-premises facade), [`TsqlDb`] sends the vendor's calling sequence as T-SQL ([`tsql`]) over
//! SQL Server (`SqlServerDb`, cargo feature `sqlserver`).

pub mod check;
pub mod client;
pub mod config;
pub mod db;
pub mod mapping;
pub mod retry;
pub mod schema;
#[cfg(feature = "sqlserver")]
pub mod sqlserver;
pub mod tsql;

pub use client::Sage500Connector;
pub use config::{
    Sage500ApiCall, Sage500Config, Sage500Credentials, Sage500DocSpec, Sage500Docs,
    Sage500SalesOrder, Sage500Transport,
};
pub use db::{HttpDb, Sage500Db};
pub use mapping::{BatchOutcome, SqlValue, StagingRow};
pub use tsql::{SqlCell, SqlConnect, SqlSession, TsqlDb};
