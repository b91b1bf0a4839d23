//! Sage Pro connector configuration.

use crate::fields::CustomerFieldMap;
use ledgerbridge_core::secrets::Secret;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SageProConfig {
    /// Root of the site's facade, e.g. `https://sagepro.example.com` (paths start with `/api/v1/`;
    /// the facade implements `tools/erp-sandbox/contracts/sagepro/facade.openapi.json`).
    pub base_url: String,
    /// Header carrying the API key (the product page does not name it).
    #[serde(default = "default_key_header")]
    pub api_key_header: String,
    /// Body field that carries the external reference and the query parameter to search it.
    #[serde(default = "default_ref_field")]
    pub reference_field: String,
    /// Longest reference the field holds (assumed; verify on the installation).
    #[serde(default = "default_ref_len")]
    pub reference_max_len: usize,
    /// Longest customer number (`custno`) the installation accepts.
    #[serde(default = "default_custno_len")]
    pub customer_id_max_len: usize,
    /// Where subscription values go on the customer record (assumed user-defined fields of
    /// the installation's API; rename them here).
    #[serde(default = "default_customer_fields")]
    pub customer_fields: CustomerFieldMap,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// The connector's gate: circuit breaker, `Retry-After` hold and optional request rate
    /// (`crate::gate`; every field optional, the rate off unless set).
    #[serde(default)]
    pub gate: crate::gate::GateConfig,
}

pub fn default_customer_fields() -> CustomerFieldMap {
    use crate::fields::*;
    field_map(&[
        (SUBSCRIPTION_ID, "lbSubscription", 30),
        (SUBSCRIPTION_STATUS, "lbSubStatus", 20),
        (SUBSCRIPTION_PLAN, "lbSubPlan", 30),
        (SUBSCRIPTION_QUANTITY, "lbSubQty", 10),
        (SUBSCRIPTION_PERIOD_END, "lbSubPeriodEnd", 10),
    ])
}

fn default_key_header() -> String {
    "X-API-Key".into()
}
fn default_ref_field() -> String {
    "reference".into()
}
fn default_ref_len() -> usize {
    30
}
fn default_custno_len() -> usize {
    10
}
fn default_timeout_ms() -> u64 {
    10_000
}

impl SageProConfig {
    pub fn new(base_url: impl Into<String>) -> Self {
        SageProConfig {
            base_url: base_url.into(),
            api_key_header: default_key_header(),
            reference_field: default_ref_field(),
            reference_max_len: default_ref_len(),
            customer_id_max_len: default_custno_len(),
            customer_fields: default_customer_fields(),
            timeout_ms: default_timeout_ms(),
            gate: Default::default(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct SageProCredentials {
    pub api_key: Secret<String>,
}
