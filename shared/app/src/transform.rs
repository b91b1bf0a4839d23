//! Transform function configuration and construction; the processing itself is
//! `ledgerbridge_pipeline::stages::TransformStage`.

use crate::{secrets_manager, stripe_on_first_use, Error, DEFAULTS};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use ledgerbridge_adapters::aws::SqsQueue;
use ledgerbridge_adapters::lambda::{process_batch, UnidentifiedFailure};
use ledgerbridge_core::config::{ConfigError, Env, PREFIX};
use ledgerbridge_core::message::SQS_MAX_MESSAGE_BYTES;
use ledgerbridge_pipeline::mapping::Mapping;
use ledgerbridge_pipeline::stages::TransformStage;
use ledgerbridge_stripe::LazyStripe;

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
        let source = env.optional("MAPPING");
        let is_example = source
            .as_deref()
            .is_none_or(|s| s.trim() == ledgerbridge_pipeline::mapping::EXAMPLE.trim());
        env.refuse_example("MAPPING", "mapping", is_example);
        let mapping = match source {
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
            Err(_) if env.is_unavailable("MAPPING") => None,
            Err(e) => {
                env.problem(format!("{PREFIX}MAPPING: {e}"));
                None
            }
        };
        if let Some(m) = &mapping {
            check_mapping(&mut env, m, is_example);
        }
        let max = env.number(
            "MAX_MESSAGE_BYTES",
            SQS_MAX_MESSAGE_BYTES as i64,
            1024,
            1_048_576,
        );
        let concurrency = env.number("CONCURRENCY", DEFAULTS.transform_concurrency as i64, 1, 64);
        let cfg = TransformConfig {
            commands_queue_url,
            reconciliation_queue_url: env.optional("RECONCILIATION_QUEUE_URL"),
            parked_queue_url,
            stripe_key_secret_id,
            stripe_api_base: env.optional("STRIPE_API_BASE"),
            mapping: mapping.clone().unwrap_or_else(placeholder_mapping),
            max_message_bytes: usize::try_from(max).unwrap_or(SQS_MAX_MESSAGE_BYTES),
            concurrency: usize::try_from(concurrency).unwrap_or(DEFAULTS.transform_concurrency),
            endpoint_url: env.plain("AWS_ENDPOINT_URL"),
        };
        env.finish(cfg)
    }
}

/// The transform stage on AWS: SQS queues, the Stripe key from Secrets Manager.
pub struct Transform {
    pub stage: TransformStage<SqsQueue, SqsQueue, SqsQueue, LazyStripe>,
    pub concurrency: usize,
}

/// Build the stage (once per container); the Stripe key is read on first use.
pub async fn build(sdk: &aws_config::SdkConfig, cfg: &TransformConfig) -> Result<Transform, Error> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let stripe = stripe_on_first_use(
        &secrets_manager(sdk),
        &cfg.stripe_key_secret_id,
        cfg.stripe_api_base.as_deref(),
    );
    let queue = |url: &str| SqsQueue::new(sqs.clone(), url, cfg.max_message_bytes);
    Ok(Transform {
        stage: crate::stages::transform(
            cfg.mapping.clone(),
            stripe,
            queue(&cfg.commands_queue_url),
            cfg.reconciliation_queue_url.as_deref().map(queue),
            queue(&cfg.parked_queue_url),
        ),
        concurrency: cfg.concurrency,
    })
}

impl Transform {
    /// One SQS batch; failed records are reported back for redelivery.
    pub async fn handle(&self, event: SqsEvent) -> Result<SqsBatchResponse, UnidentifiedFailure> {
        process_batch(event, self.concurrency, |body| async move {
            self.stage.process(&body).await
        })
        .await
    }
}

/// What the functions that book with the mapping (transform, erp-post) refuse at start besides
/// a syntax or key error: placeholder or empty GL accounts, accounts all left at the example's
/// numbers (unless the mapping is the example itself, refused or allowed on its own), and a
/// time zone other than the deployment's `LEDGERBRIDGE_TIME_ZONE`. Every problem is listed.
pub fn check_mapping(env: &mut Env, mapping: &Mapping, is_example: bool) {
    if !is_example {
        for p in mapping.account_problems(env.allows_example()) {
            env.problem(format!("{PREFIX}MAPPING: {p}"));
        }
    }
    if let Some(p) = ledgerbridge_erp::time_zone_problem(
        env.optional("TIME_ZONE").as_deref(),
        "defaults.time_zone",
        &mapping.defaults.time_zone,
    ) {
        env.problem(format!("{PREFIX}MAPPING: {p}"));
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
            wait_for_payment: true,
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
    use ledgerbridge_pipeline::mapping::EXAMPLE;

    fn env_with(mapping: &str, extra: &[(&str, &str)]) -> Env {
        let mut vars: std::collections::HashMap<String, String> = [
            ("LEDGERBRIDGE_COMMANDS_QUEUE_URL", "http://q/c"),
            ("LEDGERBRIDGE_PARKED_QUEUE_URL", "http://q/p"),
            ("LEDGERBRIDGE_STRIPE_API_KEY_SECRET_ID", "s"),
            ("LEDGERBRIDGE_MAPPING", mapping),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        vars.retain(|_, v| !v.is_empty());
        Env::from_map(vars)
    }

    #[test]
    fn placeholder_accounts_and_another_time_zone_are_refused_every_one_listed() {
        let own = EXAMPLE
            .replace(
                "revenue_account = \"4000\"\ndefault_method",
                "revenue_account = \"TODO\"\ndefault_method",
            )
            .replace("tax_account = \"2200\"", "tax_account = \"<sales tax>\"");
        let err = TransformConfig::from_env(env_with(
            &own,
            &[("LEDGERBRIDGE_TIME_ZONE", "America/Chicago")],
        ))
        .unwrap_err();
        let text = err.to_string();
        assert_eq!(err.problems.len(), 3, "{text}");
        assert!(
            text.contains("payments.revenue_account = \"TODO\" is a placeholder"),
            "{text}"
        );
        assert!(text.contains("invoices.tax_account"), "{text}");
        assert!(
            text.contains("defaults.time_zone = \"UTC\" differs from LEDGERBRIDGE_TIME_ZONE"),
            "{text}"
        );
    }

    #[test]
    fn a_copy_of_the_example_with_every_account_unchanged_is_refused_unless_a_trial() {
        let copy = EXAMPLE.replace("guest_customer = \"GUEST\"", "guest_customer = \"WALKIN\"");
        assert_ne!(copy, EXAMPLE);
        let err = TransformConfig::from_env(env_with(&copy, &[])).unwrap_err();
        assert_eq!(err.problems.len(), 1, "{err}");
        assert!(
            err.to_string()
                .contains("every GL account is still the shipped example's"),
            "{err}"
        );
        let trial = env_with(&copy, &[("LEDGERBRIDGE_ALLOW_EXAMPLE_CONFIG", "true")]);
        assert!(TransformConfig::from_env(trial).is_ok());
        // The company's zone, named alike in the mapping and the deployment.
        let chicago = copy
            .replace("\"4000\"", "\"4010\"")
            .replace("time_zone = \"UTC\"", "time_zone = \"America/Chicago\"");
        let ok = env_with(&chicago, &[("LEDGERBRIDGE_TIME_ZONE", "America/Chicago")]);
        assert!(TransformConfig::from_env(ok).is_ok());
    }

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
