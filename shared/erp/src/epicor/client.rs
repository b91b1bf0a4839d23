//! Epicor HTTP client: authentication headers, the customer-number lookup documents need, and
//! the [`ErpConnector`] implementation.

use super::config::{EpicorAuth, EpicorConfig, EpicorCredentials};
use super::mapping::{self, EpicorRequest, Method, ERP};
use super::retry::{classify, reclassify, update_ext_failure};
use crate::commands::{CustomerUpsert, DocKind, ErpCommand, ExternalRef};
use crate::connector::{
    collect_changed, normalize_email, single_email_match, Credentials, ErpConnector,
    ErpCustomerMatch, ErpCustomerRecord,
};
use crate::error::ErpError;
use crate::fields::{self, FieldsOutcome};
use crate::http;
use base64::Engine;
use ledgerbridge_core::ids::ErpDocumentId;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

pub struct EpicorConnector {
    cfg: EpicorConfig,
    creds: Credentials<EpicorCredentials>,
    http: reqwest::Client,
    root: String,
}

impl std::fmt::Debug for EpicorConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EpicorConnector")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl EpicorConnector {
    pub fn new(cfg: EpicorConfig, creds: Credentials<EpicorCredentials>) -> Result<Self, ErpError> {
        fields::check_field_map(ERP, &cfg.customer_fields)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.timeout_ms))
            .build()
            .map_err(|e| ErpError::Config {
                erp: ERP,
                message: e.to_string(),
            })?;
        let root = format!(
            "{}/api/v2/odata/{}/",
            cfg.base_url.trim_end_matches('/'),
            cfg.company
        );
        Ok(EpicorConnector {
            cfg,
            creds,
            http,
            root,
        })
    }

    pub fn config(&self) -> &EpicorConfig {
        &self.cfg
    }

    async fn call(&self, req: &EpicorRequest) -> Result<Value, ErpError> {
        let url = format!("{}{}", self.root, req.path);
        let build = |c: &EpicorCredentials| {
            let mut b = match req.method {
                Method::Get => self.http.get(&url),
                Method::Post => self.http.post(&url),
                Method::Patch => self.http.patch(&url),
            };
            b = b
                .header("x-api-key", c.api_key.expose().as_str())
                .header("Accept", "application/json");
            b = match &c.auth {
                EpicorAuth::Basic { user, password } => {
                    let token = base64::engine::general_purpose::STANDARD
                        .encode(format!("{user}:{}", password.expose()));
                    b.header("Authorization", format!("Basic {token}"))
                }
                EpicorAuth::Bearer(t) => {
                    b.header("Authorization", format!("Bearer {}", t.expose()))
                }
            };
            if !req.query.is_empty() {
                b = b.query(&req.query);
            }
            if let Some(body) = &req.body {
                b = b
                    .header(
                        "Content-Type",
                        "application/json;odata.metadata=minimal;IEEE754Compatible=true",
                    )
                    .body(body.to_string());
            }
            b
        };
        let (_, body) = http::send(ERP, &self.creds, build, classify)
            .await
            .map_err(|e| reclassify(e, &self.cfg.errors.transient_markers))?;
        if body.is_empty() {
            return Ok(Value::Null);
        }
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| ErpError::permanent(ERP, format!("unreadable answer: {e}")))?;
        // UpdateExt reports business errors with HTTP 200.
        match update_ext_failure(&v) {
            Some(e) => Err(e),
            None => Ok(v),
        }
    }

    async fn cust_num(&self, customer_id: &str) -> Result<i64, ErpError> {
        let req = mapping::customer_lookup_request(customer_id)?;
        let body = self.call(&req).await?;
        mapping::cust_num_of(&body).ok_or_else(|| ErpError::Permanent {
            erp: ERP,
            status: None,
            message: format!("Customer {customer_id} not found."),
        })
    }
}

fn customer_of(cmd: &ErpCommand) -> Option<&str> {
    match cmd {
        ErpCommand::UpsertCustomer(_) | ErpCommand::PostJournalEntry(_) => None,
        ErpCommand::CreateSalesOrder(c) => Some(&c.customer_id),
        ErpCommand::CreateInvoice(c) => Some(&c.customer_id),
        ErpCommand::CreateCashReceipt(c) => Some(&c.customer_id),
        ErpCommand::CreateCreditMemo(c) => Some(&c.customer_id),
    }
}

impl ErpConnector for EpicorConnector {
    fn erp(&self) -> &'static str {
        ERP
    }

    async fn find_by_reference(
        &self,
        reference: &ExternalRef,
    ) -> Result<Option<ErpDocumentId>, ErpError> {
        let req = mapping::find_request(&self.cfg, reference)?;
        let body = self.call(&req).await?;
        mapping::first_of_collection(reference.kind(), &body)
    }

    async fn create(&self, command: &ErpCommand) -> Result<ErpDocumentId, ErpError> {
        command.validate()?;
        let cust = match customer_of(command) {
            Some(id) => Some(self.cust_num(id).await?),
            None => None,
        };
        let req = mapping::create_request(&self.cfg, command, cust)?;
        let body = self.call(&req).await?;
        let kind: DocKind = command.kind();
        mapping::created_id(kind, &body)
    }

    async fn update_customer(
        &self,
        id: &ErpDocumentId,
        customer: &CustomerUpsert,
    ) -> Result<(), ErpError> {
        let req = mapping::update_customer_request(&self.cfg, id, customer)?;
        self.call(&req).await.map(drop)
    }

    async fn find_customer_by_email(
        &self,
        email: &str,
    ) -> Result<Option<ErpCustomerMatch>, ErpError> {
        let email = normalize_email(ERP, email)?;
        let body = self.call(&mapping::customer_email_request(&email)).await?;
        single_email_match(ERP, mapping::customers_by_email_of(&body, &email)?)
    }

    async fn set_customer_fields(
        &self,
        customer_id: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<FieldsOutcome, ErpError> {
        let (fields, unmapped) = fields::resolve(ERP, &self.cfg.customer_fields, values)?;
        if !fields.is_empty() {
            // The code is what every link holds; the PATCH needs the internal CustNum.
            let id = ErpDocumentId::new(self.cust_num(customer_id).await?.to_string());
            self.call(&mapping::customer_fields_request(&self.cfg, &id, &fields)?)
                .await?;
        }
        Ok(FieldsOutcome::written(fields, unmapped))
    }
    async fn customers_changed_since(
        &self,
        since: i64,
        limit: usize,
    ) -> Result<Vec<ErpCustomerRecord>, ErpError> {
        collect_changed(since, limit, |offset, page| async move {
            let req = mapping::changed_customers_request(&self.cfg, since, offset, page)?;
            mapping::changed_customers_of(&self.cfg, &self.call(&req).await?)
        })
        .await
    }
}
