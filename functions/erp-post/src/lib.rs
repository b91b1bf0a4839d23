//! erp-post function configuration; the posting itself is `ledgerbridge_pipeline::post`.

use ledgerbridge_core::config::{ConfigError, Env};

/// Settings of the erp-post function.
#[derive(Debug, Clone)]
pub struct PostConfig {
    pub state_table: String,
    pub parked_queue_url: String,
    /// Secrets Manager id of the ERP settings and credentials (one JSON document).
    pub erp_secret_id: String,
    /// Secrets Manager id of the Stripe API key; without it there is no write-back to Stripe.
    pub stripe_key_secret_id: Option<String>,
    pub stripe_api_base: Option<String>,
    pub mapping_source: Option<String>,
    pub concurrency: usize,
    pub lease_ms: i64,
    pub endpoint_url: Option<String>,
}

impl PostConfig {
    pub fn from_env(mut env: Env) -> Result<Self, ConfigError> {
        let cfg = PostConfig {
            state_table: env.required(
                "STATE_TABLE",
                "DynamoDB table for intents and cross-references",
            ),
            parked_queue_url: env.required(
                "PARKED_QUEUE_URL",
                "URL of the queue for commands that failed permanently",
            ),
            erp_secret_id: env.required(
                "ERP_SECRET_ID",
                "Secrets Manager id of the ERP settings and credentials",
            ),
            stripe_key_secret_id: env.optional("STRIPE_API_KEY_SECRET_ID"),
            stripe_api_base: env.optional("STRIPE_API_BASE"),
            mapping_source: env.optional("MAPPING"),
            concurrency: usize::try_from(env.number("CONCURRENCY", 4, 1, 64)).unwrap_or(4),
            lease_ms: env.number("LEASE_MS", 120_000, 1_000, 900_000),
            endpoint_url: env.plain("AWS_ENDPOINT_URL"),
        };
        env.finish(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_missing_setting() {
        let err = PostConfig::from_env(Env::from_map(Default::default())).unwrap_err();
        assert_eq!(err.problems.len(), 3, "{err}");
    }
}
