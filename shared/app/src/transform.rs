//! Transform function configuration and construction; the processing itself is
//! `ledgerbridge_pipeline::stages::TransformStage`.

use ledgerbridge_core::config::{ConfigError, Env, PREFIX};
use ledgerbridge_pipeline::mapping::Mapping;

/// Settings of the transform function.
#[derive(Debug, Clone)]
pub struct TransformConfig {
    pub commands_queue_url: String,
    pub reconciliation_queue_url: Option<String>,
    pub parked_queue_url: String,
    pub stripe_key_secret_id: String,
    pub stripe_api_base: Option<String>,
    pub mapping: Mapping,
    pub max_message_bytes: usize,
    pub concurrency: usize,
    pub endpoint_url: Option<String>,
}

impl TransformConfig {
    pub fn from_env(mut env: Env) -> Result<Self, ConfigError> {
        let commands_queue_url =
            env.required("COMMANDS_QUEUE_URL", "URL of the queue ERP commands go to");
        let parked_queue_url = env.required(
            "PARKED_QUEUE_URL",
            "URL of the queue for messages that failed permanently",
        );
        let stripe_key_secret_id = env.required(
            "STRIPE_API_KEY_SECRET_ID",
            "Secrets Manager id of the Stripe API key",
        );
        let mapping = match env.optional("MAPPING") {
            // A path to a TOML file, or the TOML itself (as a deployment parameter).
            Some(m) if m.contains('\n') || m.contains('[') => {
                Mapping::from_toml(&m).map_err(|e| e.to_string())
            }
            Some(path) => {
                Mapping::from_file(std::path::Path::new(&path)).map_err(|e| e.to_string())
            }
            None => Mapping::from_toml(ledgerbridge_pipeline::mapping::EXAMPLE)
                .map_err(|e| e.to_string()),
        };
        let mapping = match mapping {
            Ok(m) => Some(m),
            Err(e) => {
                env.problem(format!("{PREFIX}MAPPING: {e}"));
                None
            }
        };
        let max = env.number("MAX_MESSAGE_BYTES", 262_144, 1024, 1_048_576);
        let concurrency = env.number("CONCURRENCY", 8, 1, 64);
        let cfg = TransformConfig {
            commands_queue_url,
            reconciliation_queue_url: env.optional("RECONCILIATION_QUEUE_URL"),
            parked_queue_url,
            stripe_key_secret_id,
            stripe_api_base: env.optional("STRIPE_API_BASE"),
            mapping: mapping.clone().unwrap_or_else(placeholder_mapping),
            max_message_bytes: usize::try_from(max).unwrap_or(262_144),
            concurrency: usize::try_from(concurrency).unwrap_or(8),
            endpoint_url: env.plain("AWS_ENDPOINT_URL"),
        };
        env.finish(cfg)
    }
}

/// Only used to fill the struct while problems are collected; `finish` then fails.
fn placeholder_mapping() -> Mapping {
    // The example always parses (a unit test guards it); fall back to an error-free minimum.
    Mapping::from_toml(ledgerbridge_pipeline::mapping::EXAMPLE).unwrap_or_else(|_| Mapping {
        defaults: Default::default(),
        payments: ledgerbridge_pipeline::mapping::Payments {
            mode: Default::default(),
            item: String::new(),
            revenue_account: None,
            default_method: String::new(),
            methods: Default::default(),
        },
        refunds: ledgerbridge_pipeline::mapping::Refunds {
            item: String::new(),
            default_reason: String::new(),
            reasons: Default::default(),
        },
        products: Default::default(),
        rules: Vec::new(),
        invoices: None,
        disputes: None,
        subscriptions: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_missing_setting_and_a_bad_mapping() {
        let env = Env::from_map(
            [(
                "LEDGERBRIDGE_MAPPING".to_owned(),
                "[payments]\nitem = 1\n".to_owned(),
            )]
            .into_iter()
            .collect(),
        );
        let err = TransformConfig::from_env(env).unwrap_err();
        let text = err.to_string();
        assert_eq!(err.problems.len(), 4, "{text}");
        assert!(
            text.contains("COMMANDS_QUEUE_URL")
                && text.contains("MAPPING")
                && text.contains("line"),
            "{text}"
        );
    }
}
