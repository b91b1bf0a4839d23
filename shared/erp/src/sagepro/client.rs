//! Sage Pro HTTP client and [`ErpConnector`] implementation.

use super::config::{SageProConfig, SageProCredentials};
use super::mapping::{self, Method, SageProRequest, ERP};
use super::retry::classify;
use crate::commands::{CustomerUpsert, ErpCommand, ExternalRef};
use crate::connector::{
    collect_changed, normalize_email, single_email_match, Credentials, ErpConnector,
    ErpCustomerMatch, ErpCustomerRecord,
};
use crate::error::ErpError;
use crate::fields::{self, FieldsOutcome};
use crate::http;
use ledgerbridge_core::ids::ErpDocumentId;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

pub struct SageProConnector {
    cfg: SageProConfig,
    creds: Credentials<SageProCredentials>,
    http: reqwest::Client,
    /// Breaker, `Retry-After` hold and request rate of every request this connector sends.
    gate: crate::gate::Gate,
}

impl std::fmt::Debug for SageProConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SageProConnector")
            .field("base_url", &self.cfg.base_url)
            .finish_non_exhaustive()
    }
}

impl SageProConnector {
    pub fn new(
        cfg: SageProConfig,
        creds: Credentials<SageProCredentials>,
    ) -> Result<Self, ErpError> {
        fields::check_field_map(ERP, &cfg.customer_fields)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(crate::http::shared_tls(ERP)?)
            .timeout(Duration::from_millis(cfg.timeout_ms))
            .build()
            .map_err(|e| ErpError::Config {
                erp: ERP,
                message: e.to_string(),
            })?;
        Ok(SageProConnector {
            gate: crate::gate::Gate::new(ERP, cfg.gate.clone()),
            cfg,
            creds,
            http,
        })
    }

    async fn call(&self, req: &SageProRequest) -> Result<Value, ErpError> {
        let url = format!("{}{}", self.cfg.base_url.trim_end_matches('/'), req.path);
        let build = |c: &SageProCredentials| {
            let mut b = match req.method {
                Method::Get => self.http.get(&url),
                Method::Post => self.http.post(&url),
                Method::Put => self.http.put(&url),
            };
            b = b
                .header(
                    self.cfg.api_key_header.as_str(),
                    c.api_key.expose().as_str(),
                )
                .header("Accept", "application/json");
            if !req.query.is_empty() {
                b = b.query(&req.query);
            }
            if let Some(body) = &req.body {
                b = b
                    .header("Content-Type", "application/json")
                    .body(body.to_string());
            }
            b
        };
        let (_, body) = http::send(ERP, &self.gate, &self.creds, build, classify).await?;
        if body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&body)
            .map_err(|e| ErpError::permanent(ERP, format!("unreadable answer: {e}")))
    }
}

impl ErpConnector for SageProConnector {
    fn erp(&self) -> &'static str {
        ERP
    }

    async fn find_by_reference(
        &self,
        reference: &ExternalRef,
    ) -> Result<Option<ErpDocumentId>, ErpError> {
        let req = mapping::find_request(&self.cfg, reference)?;
        mapping::first_match(&self.call(&req).await?)
    }

    async fn read_back(
        &self,
        reference: &ExternalRef,
        _erp_id: &ErpDocumentId,
    ) -> Result<crate::connector::DocumentReadBack, ErpError> {
        let req = mapping::find_request(&self.cfg, reference)?;
        mapping::read_back_of(reference.kind(), &self.call(&req).await?)
    }

    async fn create(&self, command: &ErpCommand) -> Result<ErpDocumentId, ErpError> {
        command.validate()?;
        let req = mapping::create_request(&self.cfg, command)?;
        mapping::created_id(&self.call(&req).await?)
    }

    async fn update_customer(
        &self,
        id: &ErpDocumentId,
        customer: &CustomerUpsert,
    ) -> Result<(), ErpError> {
        let req = mapping::update_customer_request(&self.cfg, id, customer)?;
        self.call(&req).await.map(drop)
    }

    async fn set_customer_fields(
        &self,
        customer_id: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<FieldsOutcome, ErpError> {
        let (fields, unmapped) = fields::resolve(ERP, &self.cfg.customer_fields, values)?;
        if !fields.is_empty() {
            let id = ErpDocumentId::new(customer_id);
            self.call(&mapping::customer_fields_request(&id, &fields)?)
                .await?;
        }
        Ok(FieldsOutcome::written(fields, unmapped))
    }

    async fn find_customer_by_email(
        &self,
        email: &str,
    ) -> Result<Option<ErpCustomerMatch>, ErpError> {
        let email = normalize_email(ERP, email)?;
        let body = self.call(&mapping::customer_email_request(&email)).await?;
        single_email_match(ERP, mapping::customers_by_email_of(&body, &email)?)
    }

    async fn customers_changed_since(
        &self,
        since: i64,
        limit: usize,
    ) -> Result<Vec<ErpCustomerRecord>, ErpError> {
        collect_changed(since, limit, |offset, page| async move {
            let req = mapping::changed_customers_request(since, offset, page);
            mapping::changed_customers_of(&self.cfg, &self.call(&req).await?)
        })
        .await
    }
}
