//! Configuration: environment variables (resource names, secrets' ids) and the reconciliation
//! file (GL accounts, posting options, sweep window), both validated at start with every
//! problem listed at once.

use crate::ReconMapping;
use ledgerbridge_core::config::{ConfigError, Env, PREFIX};
use ledgerbridge_core::message::SQS_MAX_MESSAGE_BYTES;
use ledgerbridge_core::Money;
use ledgerbridge_erp::{CompanyTimeZone, DocKind};
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// The example reconciliation file, used when `LEDGERBRIDGE_RECONCILIATION_CONFIG` is unset.
pub const EXAMPLE: &str = include_str!("../../../../config/reconciliation.example.toml");

/// How the journal's lines reach the ERP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PostedLines {
    /// One line per GL account, netted (what most ERPs expect of a summary journal).
    #[default]
    PerAccount,
    /// The journal's own lines (per category and fee type, or per transaction in
    /// `per_transaction` detail).
    AsBuilt,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Posting {
    #[serde(default)]
    pub lines: PostedLines,
    /// Stripe metadata key on the payout that receives the journal's ERP id (empty: none).
    #[serde(default = "default_write_back_key")]
    pub write_back_key: String,
    /// The same for a failed payout's reversal journal.
    #[serde(default = "default_reversal_write_back_key")]
    pub reversal_write_back_key: String,
    /// A journal whose variance line (transactions that do not sum to the payout) is larger
    /// than this amount, in the payout currency's major units (`"1.00"`: one dollar, one yen),
    /// is held for review in the report instead of posted.
    #[serde(default = "default_hold_variance_above")]
    pub hold_variance_above: Decimal,
    /// … or larger than this fraction of the payout amount (`"0.001"`: 0.1 %).
    #[serde(default = "default_hold_variance_ratio_above")]
    pub hold_variance_ratio_above: Decimal,
    /// The company's time zone (IANA name): a journal's posting date is the company-local day
    /// of the payout's arrival. Name the same zone as the mapping's `[defaults] time_zone`.
    /// Default `UTC`; an unknown name stops the start.
    #[serde(default)]
    pub time_zone: CompanyTimeZone,
}

impl Default for Posting {
    fn default() -> Self {
        Posting {
            lines: PostedLines::default(),
            write_back_key: default_write_back_key(),
            reversal_write_back_key: default_reversal_write_back_key(),
            hold_variance_above: default_hold_variance_above(),
            hold_variance_ratio_above: default_hold_variance_ratio_above(),
            time_zone: CompanyTimeZone::default(),
        }
    }
}

fn default_hold_variance_above() -> Decimal {
    Decimal::ONE
}

fn default_hold_variance_ratio_above() -> Decimal {
    Decimal::new(1, 3)
}

impl Posting {
    /// Why a journal with this variance (minor units of `payout`'s currency) must be held for
    /// review rather than posted, if it must.
    pub fn variance_hold(&self, variance_minor: i64, payout: Money) -> Option<String> {
        if variance_minor == 0 {
            return None;
        }
        let variance = Money::new(variance_minor, payout.currency)
            .to_decimal()
            .abs();
        let amount = payout.to_decimal().abs();
        if variance > self.hold_variance_above {
            return Some(format!(
                "variance {variance} {} is above posting.hold_variance_above = {}",
                payout.currency, self.hold_variance_above
            ));
        }
        let limit = amount.checked_mul(self.hold_variance_ratio_above);
        if limit.is_none_or(|l| variance > l) {
            return Some(format!(
                "variance {variance} {} is above posting.hold_variance_ratio_above = {} of the payout amount {amount}",
                payout.currency, self.hold_variance_ratio_above
            ));
        }
        None
    }
}

fn default_write_back_key() -> String {
    "ledgerbridge_journal".into()
}

fn default_reversal_write_back_key() -> String {
    "ledgerbridge_reversal_journal".into()
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    /// Payouts that arrived in the last `days` days are (re)considered on every scheduled run.
    #[serde(default = "default_days")]
    pub days: i64,
    /// Also sweep failed payouts (their reversal or flag), not only paid ones.
    #[serde(default = "default_true")]
    pub include_failed: bool,
    /// Stop starting new payouts after this many seconds of a run (the next run continues).
    #[serde(default = "default_budget")]
    pub budget_secs: u64,
    /// Upper bound of list pages per status and run.
    #[serde(default = "default_max_pages")]
    pub max_pages: u32,
}

impl Default for Sweep {
    fn default() -> Self {
        Sweep {
            days: default_days(),
            include_failed: true,
            budget_secs: default_budget(),
            max_pages: default_max_pages(),
        }
    }
}

fn default_days() -> i64 {
    3
}
fn default_true() -> bool {
    true
}
fn default_budget() -> u64 {
    90
}
fn default_max_pages() -> u32 {
    20
}

/// The reconciliation file (TOML); see `config/reconciliation.example.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconFile {
    pub mapping: ReconMapping,
    #[serde(default)]
    pub posting: Posting,
    /// `reporting_category` → ERP document kinds whose cross-reference proves a source reached
    /// the ERP (e.g. `charge = ["cash_receipt", "invoice"]`). Categories not listed are not
    /// checked.
    #[serde(default)]
    pub sync_check: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub sweep: Sweep,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReconFileError(pub String);

impl ReconFile {
    /// Parse and validate (every problem listed, with the TOML line of a syntax error).
    pub fn from_toml(text: &str) -> Result<Self, ReconFileError> {
        let file: ReconFile = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text.get(..s.start).unwrap_or("").lines().count().max(1));
            match line {
                Some(l) => ReconFileError(format!("line {l}: {}", e.message())),
                None => ReconFileError(e.message().to_owned()),
            }
        })?;
        file.validate()?;
        Ok(file)
    }

    pub fn from_file(path: &std::path::Path) -> Result<Self, ReconFileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ReconFileError(format!("cannot read {}: {e}", path.display())))?;
        Self::from_toml(&text)
    }

    /// GL accounts that would be booked as placeholders (see
    /// [`ledgerbridge_erp::check::account_problems`]), compared with the shipped example.
    pub fn account_problems(&self, allow_example: bool) -> Vec<String> {
        let example = ReconFile::from_toml(EXAMPLE)
            .map(|f| f.mapping.gl_accounts())
            .unwrap_or_default();
        ledgerbridge_erp::check::account_problems(
            &self.mapping.gl_accounts(),
            &example,
            allow_example,
        )
    }

    pub fn validate(&self) -> Result<(), ReconFileError> {
        let mut problems = Vec::new();
        if let Err(e) = self.mapping.validate() {
            problems.push(e.to_string());
        }
        if !(1..=31).contains(&self.sweep.days) {
            problems.push(format!(
                "sweep.days = {} must be in 1..=31",
                self.sweep.days
            ));
        }
        if !(1..=900).contains(&self.sweep.budget_secs) {
            problems.push(format!(
                "sweep.budget_secs = {} must be in 1..=900",
                self.sweep.budget_secs
            ));
        }
        if !(1..=1000).contains(&self.sweep.max_pages) {
            problems.push(format!(
                "sweep.max_pages = {} must be in 1..=1000",
                self.sweep.max_pages
            ));
        }
        if self.posting.hold_variance_above.is_sign_negative() {
            problems.push("posting.hold_variance_above must not be negative".into());
        }
        if self.posting.hold_variance_ratio_above.is_sign_negative() {
            problems.push("posting.hold_variance_ratio_above must not be negative".into());
        }
        for key in [
            &self.posting.write_back_key,
            &self.posting.reversal_write_back_key,
        ] {
            // Stripe metadata keys: at most 40 characters, no square brackets.
            if key.len() > 40 || key.contains(['[', ']']) {
                problems.push(format!(
                    "posting write-back key {key:?} is not a valid Stripe metadata key"
                ));
            }
        }
        for (category, kinds) in &self.sync_check {
            for kind in kinds {
                if !DocKind::ALL.iter().any(|k| k.as_str() == kind) {
                    problems.push(format!(
                        "sync_check.{category}: unknown document kind {kind:?}"
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ReconFileError(problems.join("; ")))
        }
    }
}

/// Settings of the payout-reconciliation function.
#[derive(Debug, Clone)]
pub struct ReconConfig {
    pub commands_queue_url: String,
    pub state_table: String,
    pub stripe_key_secret_id: String,
    pub stripe_api_base: Option<String>,
    pub erp_kind: String,
    pub stage: String,
    pub file: ReconFile,
    /// Whether `file` is the built-in example (no `RECONCILIATION_CONFIG` given).
    pub file_is_example: bool,
    pub max_message_bytes: usize,
    pub concurrency: usize,
    /// How long a claim on a payout's journal may stay in progress before another run may
    /// take it over (a crashed invocation).
    pub lease: Duration,
    /// How long a completed claim counts.
    pub claim_days: i64,
    pub endpoint_url: Option<String>,
}

impl ReconConfig {
    pub fn from_env(mut env: Env) -> Result<Self, ConfigError> {
        let commands_queue_url = env.required(
            "COMMANDS_QUEUE_URL",
            "URL of the queue ERP commands go to (erp-post)",
        );
        let state_table = env.required(
            "STATE_TABLE",
            "DynamoDB table for claims, cross-references and reports",
        );
        let stripe_key_secret_id = env.required(
            "STRIPE_API_KEY_SECRET_ID",
            "Secrets Manager id of the Stripe API key",
        );
        let erp_kind = env.required("ERP_KIND", "epicor, sage500 or sagepro");
        if !erp_kind.is_empty() && erp_kind.parse::<ledgerbridge_erp::ErpKind>().is_err() {
            env.problem(format!(
                "{PREFIX}ERP_KIND={erp_kind:?} must be epicor, sage500 or sagepro"
            ));
        }
        let source = env.optional("RECONCILIATION_CONFIG");
        env.refuse_example(
            "RECONCILIATION_CONFIG",
            "reconciliation configuration",
            source.as_deref().is_none_or(|s| s.trim() == EXAMPLE.trim()),
        );
        let (file, file_is_example) = match source {
            // A path to a TOML file, or the TOML itself.
            Some(v) if v.trim() == EXAMPLE.trim() => (ReconFile::from_toml(&v), true),
            Some(v) if v.contains('\n') || v.contains('[') => (ReconFile::from_toml(&v), false),
            Some(path) => (ReconFile::from_file(std::path::Path::new(&path)), false),
            None => (ReconFile::from_toml(EXAMPLE), true),
        };
        let file = match file {
            Ok(f) => Some(f),
            Err(_) if env.is_unavailable("RECONCILIATION_CONFIG") => None,
            Err(e) => {
                env.problem(format!("{PREFIX}RECONCILIATION_CONFIG: {e}"));
                None
            }
        };
        if let Some(f) = file.as_ref().filter(|_| !file_is_example) {
            for p in f.account_problems(env.allows_example()) {
                env.problem(format!("{PREFIX}RECONCILIATION_CONFIG: {p}"));
            }
        }
        if let Some(p) = file.as_ref().and_then(|f| {
            ledgerbridge_erp::time_zone_problem(
                env.optional("TIME_ZONE").as_deref(),
                "posting.time_zone",
                &f.posting.time_zone,
            )
        }) {
            env.problem(format!("{PREFIX}RECONCILIATION_CONFIG: {p}"));
        }
        let max = env.number(
            "MAX_MESSAGE_BYTES",
            SQS_MAX_MESSAGE_BYTES as i64,
            1024,
            1_048_576,
        );
        let concurrency = env.number("CONCURRENCY", 2, 1, 16);
        let lease = env.number("CLAIM_LEASE_SECS", 300, 30, 3600);
        let claim_days = env.number("CLAIM_DAYS", 400, 1, 3650);
        let cfg = file.map(|file| ReconConfig {
            commands_queue_url,
            state_table,
            stripe_key_secret_id,
            stripe_api_base: env.optional("STRIPE_API_BASE"),
            erp_kind,
            stage: env.optional("STAGE").unwrap_or_else(|| "dev".into()),
            file,
            file_is_example,
            max_message_bytes: usize::try_from(max).unwrap_or(SQS_MAX_MESSAGE_BYTES),
            concurrency: usize::try_from(concurrency).unwrap_or(2),
            lease: Duration::from_secs(u64::try_from(lease).unwrap_or(300)),
            claim_days,
            endpoint_url: env.plain("AWS_ENDPOINT_URL"),
        });
        match cfg {
            Some(cfg) => env.finish(cfg),
            None => {
                // `finish` fails: a problem was recorded above.
                let err = env.finish(());
                Err(err.err().unwrap_or_else(|| ConfigError {
                    problems: vec!["invalid reconciliation configuration".into()],
                }))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
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
    /// The two examples are used together (`ledgerbridge demo`, `local`, a first deployment):
    /// a dispute's amount is booked once, by the dispute journal against the clearing account
    /// that the payout journal then clears, and its fee once, by the payout journal.
    fn example_files_book_a_dispute_once_with_one_clearing_account() {
        let recon = ReconFile::from_toml(EXAMPLE).unwrap();
        let mapping: toml::Value =
            toml::from_str(include_str!("../../../../config/mapping.example.toml")).unwrap();
        let disputes = &mapping["disputes"];
        let clearing = disputes["clearing_account"].as_str().unwrap();
        let categories = &recon.mapping.category_accounts;
        assert_eq!(
            categories.get("dispute").map(String::as_str),
            Some(clearing)
        );
        assert_eq!(
            categories.get("dispute_reversal").map(String::as_str),
            Some(clearing)
        );
        // The reconciliation's own clearing account (charges, failed payouts) is the same one.
        assert_eq!(categories.get("charge").map(String::as_str), Some(clearing));
        assert_eq!(recon.mapping.failed_payout_account, clearing);
        // The reconciliation books every fee from fee_details, so the dispute journal must not.
        assert!(disputes.get("dispute_fee_account").is_none());
        assert_ne!(
            disputes["dispute_loss_account"].as_str(),
            categories.get("dispute").map(String::as_str)
        );
    }

    #[test]
    fn example_file_is_valid() {
        let f = ReconFile::from_toml(EXAMPLE).unwrap();
        assert_eq!(f.sweep.days, 3);
        assert_eq!(f.posting.lines, PostedLines::PerAccount);
    }

    #[test]
    fn lists_every_problem() {
        let err = ReconConfig::from_env(env(&[
            ("LEDGERBRIDGE_ERP_KIND", "quickbooks"),
            ("LEDGERBRIDGE_CONCURRENCY", "0"),
        ]))
        .unwrap_err();
        let text = err.to_string();
        for needle in [
            "COMMANDS_QUEUE_URL",
            "STATE_TABLE",
            "STRIPE_API_KEY_SECRET_ID",
            "ERP_KIND",
            "CONCURRENCY",
        ] {
            assert!(text.contains(needle), "{needle} in {text}");
        }
    }

    #[test]
    fn the_time_zone_is_read_and_an_unknown_one_refused_with_its_line() {
        let f = ReconFile::from_toml(EXAMPLE).unwrap();
        assert_eq!(f.posting.time_zone.name(), "UTC");
        let chicago = EXAMPLE.replacen("time_zone = \"UTC\"", "time_zone = \"America/Chicago\"", 1);
        assert_ne!(chicago, EXAMPLE);
        let f = ReconFile::from_toml(&chicago).unwrap();
        assert_eq!(f.posting.time_zone.name(), "America/Chicago");
        let bad = EXAMPLE.replacen("time_zone = \"UTC\"", "time_zone = \"Central\"", 1);
        let err = ReconFile::from_toml(&bad).unwrap_err().to_string();
        assert!(err.starts_with("line "), "{err}");
        assert!(
            err.contains("\"Central\" is not an IANA time zone"),
            "{err}"
        );
    }

    #[test]
    fn bad_file_is_reported_with_its_line() {
        let text = EXAMPLE.replace("days = 3", "days = \"three\"");
        let err = ReconFile::from_toml(&text).unwrap_err().to_string();
        assert!(err.starts_with("line "), "{err}");
        let empty_bank = EXAMPLE.replacen("bank_account = \"1010\"", "bank_account = \"\"", 1);
        let err = ReconFile::from_toml(&empty_bank).unwrap_err().to_string();
        assert!(err.contains("bank_account"), "{err}");
        let bad_kind = format!("{EXAMPLE}\n[sync_check]\ncharge = [\"receipt\"]\n");
        let err = ReconFile::from_toml(&bad_kind).unwrap_err().to_string();
        assert!(err.contains("unknown document kind"), "{err}");
    }

    #[test]
    fn the_example_is_refused_at_start_unless_a_trial_asks_for_it() {
        let base = [
            ("LEDGERBRIDGE_COMMANDS_QUEUE_URL", "http://q"),
            ("LEDGERBRIDGE_STATE_TABLE", "t"),
            ("LEDGERBRIDGE_STRIPE_API_KEY_SECRET_ID", "arn:stripe"),
            ("LEDGERBRIDGE_ERP_KIND", "sage500"),
        ];
        let with = |value: &str| -> Env {
            let mut vars = base.to_vec();
            vars.push(("LEDGERBRIDGE_RECONCILIATION_CONFIG", value));
            env(&vars)
        };
        for refused in [env(&base), with(EXAMPLE)] {
            let err = ReconConfig::from_env(refused).unwrap_err();
            assert_eq!(err.problems.len(), 1, "{err}");
            assert!(
                err.to_string()
                    .contains("LEDGERBRIDGE_RECONCILIATION_CONFIG is unset or the shipped example"),
                "{err}"
            );
        }
        let own = EXAMPLE.replacen("bank_account = \"1010\"", "bank_account = \"1011\"", 1);
        let cfg = ReconConfig::from_env(with(&own)).unwrap();
        assert!(!cfg.file_is_example);
        assert_eq!(cfg.file.mapping.bank_account, "1011");
    }

    #[test]
    fn every_placeholder_account_and_another_time_zone_are_refused_at_start() {
        let mut vars = vec![
            ("LEDGERBRIDGE_COMMANDS_QUEUE_URL", "http://q"),
            ("LEDGERBRIDGE_STATE_TABLE", "t"),
            ("LEDGERBRIDGE_STRIPE_API_KEY_SECRET_ID", "arn:stripe"),
            ("LEDGERBRIDGE_ERP_KIND", "sage500"),
            ("LEDGERBRIDGE_TIME_ZONE", "Europe/Berlin"),
        ];
        let file = EXAMPLE
            .replacen("bank_account = \"1010\"", "bank_account = \"TODO\"", 1)
            .replacen("fx_account = \"7800\"", "fx_account = \"XXXX\"", 1);
        vars.push(("LEDGERBRIDGE_RECONCILIATION_CONFIG", &file));
        let err = ReconConfig::from_env(env(&vars)).unwrap_err();
        let text = err.to_string();
        assert_eq!(err.problems.len(), 3, "{text}");
        assert!(text.contains("mapping.bank_account = \"TODO\""), "{text}");
        assert!(text.contains("mapping.fx_account = \"XXXX\""), "{text}");
        assert!(
            text.contains("posting.time_zone = \"UTC\" differs from LEDGERBRIDGE_TIME_ZONE = \"Europe/Berlin\""),
            "{text}"
        );
        // Empty accounts: every one listed, not only the first.
        let empty = EXAMPLE
            .replacen("bank_account = \"1010\"", "bank_account = \"\"", 1)
            .replacen("fx_account = \"7800\"", "fx_account = \"\"", 1);
        let err = ReconFile::from_toml(&empty).unwrap_err().to_string();
        assert!(
            err.contains("bank_account is empty") && err.contains("fx_account is empty"),
            "{err}"
        );
    }

    #[test]
    fn a_valid_environment_loads() {
        let cfg = ReconConfig::from_env(env(&[
            ("LEDGERBRIDGE_COMMANDS_QUEUE_URL", "http://q"),
            ("LEDGERBRIDGE_STATE_TABLE", "t"),
            ("LEDGERBRIDGE_STRIPE_API_KEY_SECRET_ID", "arn:stripe"),
            ("LEDGERBRIDGE_ERP_KIND", "sage500"),
            ("LEDGERBRIDGE_ALLOW_EXAMPLE_CONFIG", "true"),
        ]))
        .unwrap();
        assert!(cfg.file_is_example);
        assert_eq!(cfg.lease, Duration::from_secs(300));
    }
}
