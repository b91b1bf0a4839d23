//! Configuration: read once from the environment, validated in one place, with a typed error
//! that lists every problem at once. Handlers never read the environment themselves.

use std::collections::HashMap;
use std::time::Duration;

pub const PREFIX: &str = "LEDGERBRIDGE_";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .problems.join("\n  - "))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

/// A snapshot of environment variables plus helpers that collect problems instead of failing on
/// the first one.
pub struct Env {
    vars: HashMap<String, String>,
    problems: Vec<String>,
    /// Settings whose value was to come from elsewhere (an SSM parameter) and could not be
    /// read: their problem is already listed, so they are not reported again as unset.
    unavailable: Vec<String>,
}

impl Env {
    pub fn from_process() -> Self {
        Self::from_map(std::env::vars().collect())
    }

    pub fn from_map(vars: HashMap<String, String>) -> Self {
        Env {
            vars,
            problems: Vec::new(),
            unavailable: Vec::new(),
        }
    }

    /// Set `LEDGERBRIDGE_<name>` (a value read from elsewhere at start, e.g. an SSM parameter).
    pub fn set(&mut self, name: &str, value: String) {
        self.vars.insert(format!("{PREFIX}{name}"), value);
    }

    /// `LEDGERBRIDGE_<name>` was to be read from elsewhere and could not be (the reason is
    /// already a problem): it is not reported again as unset.
    pub fn mark_unavailable(&mut self, name: &str) {
        self.unavailable.push(name.to_owned());
    }

    /// Whether [`Env::mark_unavailable`] was called for `name`.
    pub fn is_unavailable(&self, name: &str) -> bool {
        self.unavailable.iter().any(|n| n == name)
    }

    fn raw(&self, name: &str) -> Option<&str> {
        self.vars
            .get(&format!("{PREFIX}{name}"))
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }

    pub fn optional(&self, name: &str) -> Option<String> {
        self.raw(name).map(str::to_owned)
    }

    /// An unprefixed variable (`AWS_ENDPOINT_URL`, `AWS_REGION`).
    pub fn plain(&self, name: &str) -> Option<String> {
        self.vars
            .get(name)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    }

    pub fn required(&mut self, name: &str, what: &str) -> String {
        match self.raw(name) {
            Some(v) => v.to_owned(),
            None => {
                self.problems
                    .push(format!("{PREFIX}{name} is missing ({what})"));
                String::new()
            }
        }
    }

    pub fn number(&mut self, name: &str, default: i64, min: i64, max: i64) -> i64 {
        match self.raw(name) {
            None => default,
            Some(v) => match v.parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => n,
                _ => {
                    self.problems.push(format!(
                        "{PREFIX}{name}={v:?} must be an integer in {min}..={max}"
                    ));
                    default
                }
            },
        }
    }

    pub fn list(&self, name: &str) -> Option<Vec<String>> {
        self.raw(name).map(|v| {
            v.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
    }

    /// A configuration that falls back to, or is, a shipped example: refused (its GL accounts
    /// and items are placeholders) unless `LEDGERBRIDGE_ALLOW_EXAMPLE_CONFIG=true` asks for a
    /// trial run. `name` is the variable (`MAPPING`), `what` the document, `uses_example` whether
    /// the value is unset or the example itself.
    pub fn refuse_example(&mut self, name: &str, what: &str, uses_example: bool) -> bool {
        if !uses_example || self.is_unavailable(name) {
            return false;
        }
        if self.allows_example() {
            return false;
        }
        self.problems.push(format!(
            "{PREFIX}{name} is unset or the shipped example: the example {what}'s GL accounts and items are placeholders and would be booked. Set it to your own {what}, or set {PREFIX}ALLOW_EXAMPLE_CONFIG=true for a trial"
        ));
        true
    }

    /// `LEDGERBRIDGE_ALLOW_EXAMPLE_CONFIG=true` (or `1`): a trial run on the shipped examples.
    pub fn allows_example(&self) -> bool {
        self.raw("ALLOW_EXAMPLE_CONFIG")
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
    }

    pub fn problem(&mut self, message: impl Into<String>) {
        self.problems.push(message.into());
    }

    pub fn finish<T>(self, value: T) -> Result<T, ConfigError> {
        if self.problems.is_empty() {
            Ok(value)
        } else {
            Err(ConfigError {
                problems: self.problems,
            })
        }
    }
}

/// Where the webhook signing secrets come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretLocation {
    /// A Secrets Manager secret id or ARN.
    SecretsManager(String),
    /// Local mode: comma-separated secrets in `LEDGERBRIDGE_WEBHOOK_SECRETS`.
    Environment,
}

/// Settings of the webhook-intake function.
#[derive(Debug, Clone)]
pub struct IntakeConfig {
    pub queue_url: String,
    pub state_table: String,
    pub webhook_secrets: SecretLocation,
    pub handled_event_types: Vec<String>,
    pub tolerance_secs: i64,
    pub max_message_bytes: usize,
    /// How long an event id stays deduplicated (Stripe resends for up to 30 days).
    pub dedupe_for: Duration,
    pub secret_ttl: Duration,
    pub endpoint_url: Option<String>,
}

impl IntakeConfig {
    /// `default_handled_event_types` applies unless `LEDGERBRIDGE_HANDLED_EVENT_TYPES` is set
    /// (the intake passes the event types the pipeline's event table handles).
    pub fn from_env(
        mut env: Env,
        default_handled_event_types: Vec<String>,
    ) -> Result<Self, ConfigError> {
        let queue_url = env.required("EVENTS_QUEUE_URL", "URL of the SQS queue events go to");
        let state_table = env.required("STATE_TABLE", "DynamoDB table for idempotency records");
        let webhook_secrets = match env.optional("WEBHOOK_SECRET_ID") {
            Some(id) => SecretLocation::SecretsManager(id),
            None if env.optional("WEBHOOK_SECRETS").is_some() => SecretLocation::Environment,
            None => {
                env.problem(format!(
                    "{PREFIX}WEBHOOK_SECRET_ID (Secrets Manager id of the signing secrets) or {PREFIX}WEBHOOK_SECRETS (local mode) must be set"
                ));
                SecretLocation::Environment
            }
        };
        let handled_event_types = env
            .list("HANDLED_EVENT_TYPES")
            .unwrap_or(default_handled_event_types);
        let tolerance_secs = env.number("SIGNATURE_TOLERANCE_SECS", 300, 1, 3600);
        let max_message_bytes = env.number(
            "MAX_MESSAGE_BYTES",
            crate::message::SQS_MAX_MESSAGE_BYTES as i64,
            1024,
            1_048_576,
        );
        let dedupe_days = env.number("DEDUPE_DAYS", 35, 1, 365);
        let secret_ttl = env.number("SECRET_TTL_SECS", 300, 0, 86_400);
        let endpoint_url = env.plain("AWS_ENDPOINT_URL");
        let cfg = IntakeConfig {
            queue_url,
            state_table,
            webhook_secrets,
            handled_event_types,
            tolerance_secs,
            max_message_bytes: usize::try_from(max_message_bytes)
                .unwrap_or(crate::message::SQS_MAX_MESSAGE_BYTES),
            dedupe_for: Duration::from_secs(u64::try_from(dedupe_days).unwrap_or(35) * 86_400),
            secret_ttl: Duration::from_secs(u64::try_from(secret_ttl).unwrap_or(300)),
            endpoint_url,
        };
        env.finish(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_map(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn lists_every_missing_setting() {
        let err = IntakeConfig::from_env(
            env(&[("LEDGERBRIDGE_SIGNATURE_TOLERANCE_SECS", "x")]),
            Vec::new(),
        )
        .unwrap_err();
        let text = err.to_string();
        assert_eq!(err.problems.len(), 4, "{text}");
        assert!(text.contains("EVENTS_QUEUE_URL"));
        assert!(text.contains("STATE_TABLE"));
        assert!(text.contains("WEBHOOK_SECRET_ID"));
        assert!(text.contains("SIGNATURE_TOLERANCE_SECS"));
    }

    #[test]
    fn valid_config_loads_with_defaults() {
        let cfg = IntakeConfig::from_env(
            env(&[
                ("LEDGERBRIDGE_EVENTS_QUEUE_URL", "http://q"),
                ("LEDGERBRIDGE_STATE_TABLE", "t"),
                ("LEDGERBRIDGE_WEBHOOK_SECRET_ID", "arn:secret"),
                (
                    "LEDGERBRIDGE_HANDLED_EVENT_TYPES",
                    "charge.succeeded, payout.paid",
                ),
            ]),
            vec!["customer.created".to_owned()],
        )
        .unwrap();
        assert_eq!(cfg.tolerance_secs, 300);
        assert_eq!(
            cfg.handled_event_types,
            vec!["charge.succeeded", "payout.paid"]
        );
        assert_eq!(
            cfg.webhook_secrets,
            SecretLocation::SecretsManager("arn:secret".into())
        );
    }
}
