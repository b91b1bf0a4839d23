//! Sage 500 [`ErpConnector`]: stage, run the API procedure, check `ProcessStatus` and the
//! migration log, and find documents by their reference column.

use super::config::{Sage500Config, Sage500Credentials, Sage500Transport};
use super::db::{check_identifier, ChangedCustomers, CustomerTable, HttpDb, Sage500Db};
use super::mapping::{self, StagedCommand, ERP};
use super::retry::check_outcome;
use crate::commands::{CustomerUpsert, ErpCommand, ExternalRef};
use crate::connector::{
    collect_changed, normalize_email, single_email_match, Credentials, ErpConnector,
    ErpCustomerMatch, ErpCustomerRecord,
};
use crate::error::ErpError;
use crate::fields::{self, FieldsOutcome};
use crate::time::format_utc;
use ledgerbridge_core::ids::ErpDocumentId;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// The database adapter in use.
#[derive(Debug)]
pub enum Sage500Backend {
    Http(HttpDb),
    #[cfg(feature = "sqlserver")]
    SqlServer(super::sqlserver::SqlServerDb),
}

impl Sage500Db for Sage500Backend {
    async fn run_batch(
        &self,
        procedure: &str,
        rows: &[super::mapping::StagingRow],
    ) -> Result<super::mapping::BatchOutcome, ErpError> {
        match self {
            Sage500Backend::Http(d) => d.run_batch(procedure, rows).await,
            #[cfg(feature = "sqlserver")]
            Sage500Backend::SqlServer(d) => d.run_batch(procedure, rows).await,
        }
    }

    async fn lookup(
        &self,
        table: &str,
        column: &str,
        value: &str,
        key: &str,
    ) -> Result<Option<String>, ErpError> {
        match self {
            Sage500Backend::Http(d) => d.lookup(table, column, value, key).await,
            #[cfg(feature = "sqlserver")]
            Sage500Backend::SqlServer(d) => d.lookup(table, column, value, key).await,
        }
    }

    async fn customers_by_email(
        &self,
        customer: &CustomerTable<'_>,
        email: &str,
    ) -> Result<Vec<(String, String)>, ErpError> {
        match self {
            Sage500Backend::Http(d) => d.customers_by_email(customer, email).await,
            #[cfg(feature = "sqlserver")]
            Sage500Backend::SqlServer(d) => d.customers_by_email(customer, email).await,
        }
    }

    async fn customers_changed(
        &self,
        customer: &CustomerTable<'_>,
        changes: &ChangedCustomers<'_>,
    ) -> Result<Vec<serde_json::Map<String, Value>>, ErpError> {
        match self {
            Sage500Backend::Http(d) => d.customers_changed(customer, changes).await,
            #[cfg(feature = "sqlserver")]
            Sage500Backend::SqlServer(d) => d.customers_changed(customer, changes).await,
        }
    }
}

pub struct Sage500Connector<D: Sage500Db = Sage500Backend> {
    cfg: Sage500Config,
    db: D,
}

impl<D: Sage500Db> std::fmt::Debug for Sage500Connector<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sage500Connector")
            .field("company", &self.cfg.company)
            .field("transport", &self.cfg.transport)
            .finish_non_exhaustive()
    }
}

fn config_err(message: &str) -> ErpError {
    ErpError::Config {
        erp: ERP,
        message: message.to_owned(),
    }
}

impl Sage500Connector<Sage500Backend> {
    /// Build the adapter the configuration names. The HTTP facade key follows `creds` (refreshed
    /// on 401/403 and when stale, when it has a refresher); a SQL Server login is read once.
    pub fn new(
        mut cfg: Sage500Config,
        creds: Credentials<Sage500Credentials>,
    ) -> Result<Self, ErpError> {
        if cfg.site_procedures {
            cfg.docs = cfg.docs.with_site_procedures();
        }
        fields::check_field_map(ERP, &cfg.customer_fields)?;
        for spec in cfg.docs.all() {
            for name in [
                &spec.procedure,
                &spec.header_table,
                &spec.target_table,
                &spec.reference_column,
                &spec.key_column,
            ]
            .into_iter()
            .chain(spec.line_table.as_ref())
            {
                check_identifier(name)?;
            }
        }
        let timeout = Duration::from_millis(cfg.timeout_ms);
        let db =
            match cfg.transport {
                Sage500Transport::Http => {
                    let base = cfg
                        .base_url
                        .as_deref()
                        .ok_or_else(|| config_err("transport \"http\" needs \"base_url\""))?;
                    let key = creds.project(|c: Sage500Credentials| {
                        c.api_key
                            .ok_or_else(|| config_err("transport \"http\" needs \"api_key\""))
                    })?;
                    let steps = cfg
                        .docs
                        .all()
                        .iter()
                        .filter_map(|d| d.setup_step_key.map(|k| (d.procedure.clone(), k)))
                        .collect();
                    Sage500Backend::Http(
                        HttpDb::new(base, &cfg.company, key, timeout)?
                            .with_calls(cfg.api.clone(), steps)
                            .with_dim_job(cfg.customer_update_dim_job)
                            .with_gate(cfg.gate.clone()),
                    )
                }
                #[cfg(feature = "sqlserver")]
                Sage500Transport::Sqlserver => {
                    let sql = cfg.sqlserver.clone().ok_or_else(|| {
                        config_err("transport \"sqlserver\" needs a \"sqlserver\" section")
                    })?;
                    let current = creds.current();
                    let (Some(user), Some(password)) = (current.user, current.password) else {
                        return Err(config_err(
                            "transport \"sqlserver\" needs \"user\" and \"password\"",
                        ));
                    };
                    Sage500Backend::SqlServer(super::sqlserver::sql_server_db(
                        sql, &cfg, user, password,
                    ))
                }
                #[cfg(not(feature = "sqlserver"))]
                Sage500Transport::Sqlserver => return Err(config_err(
                    "transport \"sqlserver\" needs a build with the cargo feature \"sqlserver\"",
                )),
            };
        Ok(Sage500Connector { cfg, db })
    }
}

impl Sage500Connector<Sage500Backend> {
    /// What the company database has of what `ledgerbridge erp check` asks (read-only).
    pub(crate) async fn catalog(
        &self,
        req: &super::check::CatalogRequest,
    ) -> Result<super::check::Catalog, ErpError> {
        match &self.db {
            Sage500Backend::Http(d) => d.catalog(req).await,
            #[cfg(feature = "sqlserver")]
            Sage500Backend::SqlServer(d) => d.catalog(req).await,
        }
    }
}

impl<D: Sage500Db> Sage500Connector<D> {
    /// A connector over any adapter (tests, other transports).
    pub fn with_db(mut cfg: Sage500Config, db: D) -> Self {
        if cfg.site_procedures {
            cfg.docs = cfg.docs.with_site_procedures();
        }
        Sage500Connector { cfg, db }
    }

    pub fn config(&self) -> &Sage500Config {
        &self.cfg
    }

    async fn run(&self, staged: &StagedCommand) -> Result<super::mapping::BatchOutcome, ErpError> {
        mapping::check_staging(&staged.rows)?;
        let outcome = self.db.run_batch(&staged.procedure, &staged.rows).await?;
        check_outcome(&staged.procedure, &outcome)?;
        Ok(outcome)
    }
}

fn key_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl<D: Sage500Db> ErpConnector for Sage500Connector<D> {
    fn erp(&self) -> &'static str {
        ERP
    }

    async fn find_by_reference(
        &self,
        reference: &ExternalRef,
    ) -> Result<Option<ErpDocumentId>, ErpError> {
        let spec = mapping::doc_spec(&self.cfg, reference.kind())?;
        let value = mapping::reference_value(&self.cfg, reference)?;
        Ok(self
            .db
            .lookup(
                &spec.target_table,
                &spec.reference_column,
                &value,
                &spec.key_column,
            )
            .await?
            .map(ErpDocumentId::new))
    }

    async fn create(&self, command: &ErpCommand) -> Result<ErpDocumentId, ErpError> {
        command.validate()?;
        let staged = mapping::create_rows(&self.cfg, command)?;
        let outcome = self.run(&staged).await?;
        let spec = mapping::doc_spec(&self.cfg, command.kind())?;
        if let Some(id) = outcome
            .document
            .as_ref()
            .and_then(|d| d.get(&spec.key_column))
            .and_then(key_of)
        {
            return Ok(ErpDocumentId::new(id));
        }
        // The adapter did not return the key: read it back by reference. The document is
        // committed, so when it cannot be found yet the failure is retryable and the retry
        // finds it by reference instead of creating it again.
        match self.find_by_reference(command.reference()).await? {
            Some(id) => Ok(id),
            None => Err(ErpError::Retryable {
                erp: ERP,
                status: None,
                message: format!(
                    "{} succeeded but {} has no row with {} = reference yet",
                    staged.procedure, spec.target_table, spec.reference_column
                ),
                retry_after: None,
                may_have_committed: true,
            }),
        }
    }

    async fn update_customer(
        &self,
        _id: &ErpDocumentId,
        customer: &CustomerUpsert,
    ) -> Result<(), ErpError> {
        let staged = mapping::update_customer_rows(&self.cfg, customer)?;
        self.run(&staged).await.map(drop)
    }

    async fn set_customer_fields(
        &self,
        customer_id: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<FieldsOutcome, ErpError> {
        let (fields, unmapped) = fields::resolve(ERP, &self.cfg.customer_fields, values)?;
        if !fields.is_empty() {
            let staged = mapping::customer_fields_rows(&self.cfg, customer_id, &fields)?;
            self.run(&staged).await?;
        }
        Ok(FieldsOutcome::written(fields, unmapped))
    }

    async fn find_customer_by_email(
        &self,
        email: &str,
    ) -> Result<Option<ErpCustomerMatch>, ErpError> {
        let email = normalize_email(ERP, email)?;
        let spec = &self.cfg.docs.customer;
        let table = CustomerTable {
            table: &spec.target_table,
            key_column: &spec.key_column,
            lookup: &self.cfg.customer_email,
        };
        let found = self
            .db
            .customers_by_email(&table, &email)
            .await?
            .into_iter()
            .map(|(key, customer_id)| ErpCustomerMatch {
                erp_id: ErpDocumentId::new(key),
                customer_id,
            })
            .collect();
        single_email_match(ERP, found)
    }

    async fn customers_changed_since(
        &self,
        since: i64,
        limit: usize,
    ) -> Result<Vec<ErpCustomerRecord>, ErpError> {
        let spec = &self.cfg.docs.customer;
        let table = CustomerTable {
            table: &spec.target_table,
            key_column: &spec.key_column,
            lookup: &self.cfg.customer_email,
        };
        check_identifier(&self.cfg.customer_changed_column)?;
        let since_text = format_utc(since, ' ');
        let (table, since_text) = (&table, &since_text);
        collect_changed(since, limit, |offset, page| async move {
            let rows = self
                .db
                .customers_changed(
                    table,
                    &ChangedCustomers {
                        changed_column: &self.cfg.customer_changed_column,
                        reference_column: &spec.reference_column,
                        since: since_text,
                        offset,
                        limit: page,
                    },
                )
                .await?;
            rows.iter()
                .map(|r| mapping::changed_customer(&self.cfg, r))
                .collect()
        })
        .await
    }
}
