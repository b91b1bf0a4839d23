//! `ledgerbridge serve`: the local runner's process, configured for production on one machine
//! next to the ERP. A real ERP from an ERP settings file (any connector), the Stripe key and
//! webhook signing secrets from the environment or files, the mapping and reconciliation
//! files required, the payout sweep and the ERP poll on their schedules, the durable queues and
//! store in the data directory, `GET /health`, graceful shutdown on SIGTERM/SIGINT, JSON logs.

use crate::local::{self, ErpSource, LocalError, Options, QueueArgs, StripeSource};
use ledgerbridge_core::secrets::{EnvSecrets, Secret};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(clap::Args, Clone)]
pub struct ServeArgs {
    /// Address of the HTTP endpoint (`POST /webhook`, `POST /erp/customers`, `GET /health`).
    /// Put a TLS-terminating reverse proxy in front of it for Stripe.
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,
    /// Directory of the queues, the state store and the report store (SQLite files).
    #[arg(long, default_value = "/var/lib/ledgerbridge")]
    pub data_dir: PathBuf,
    /// ERP settings (JSON, one of the three connectors; `docs/erp-connectors.md`).
    #[arg(long)]
    pub erp_settings_file: PathBuf,
    /// Mapping configuration (TOML; `docs/mapping.md`). Required: no example is used.
    #[arg(long)]
    pub mapping: PathBuf,
    /// Payout reconciliation configuration (TOML). Required: no example is used.
    #[arg(long)]
    pub reconciliation: PathBuf,
    /// File holding the Stripe secret or restricted key; else `STRIPE_API_KEY`.
    #[arg(long)]
    pub stripe_key_file: Option<PathBuf>,
    /// File holding the webhook signing secrets (comma-separated or a JSON array); else
    /// `LEDGERBRIDGE_WEBHOOK_SECRETS`.
    #[arg(long)]
    pub webhook_secrets_file: Option<PathBuf>,
    /// File holding the ERP event signing secrets; else `LEDGERBRIDGE_ERP_EVENT_SECRETS`.
    /// Without either, `POST /erp/customers` is not served (the ERP poll still runs).
    #[arg(long)]
    pub erp_event_secrets_file: Option<PathBuf>,
    /// Run the payout sweep every this many seconds (0: no sweep).
    #[arg(long, default_value_t = 3600)]
    pub sweep_secs: u64,
    /// Poll the ERP for changed customers every this many seconds (0: no poll).
    #[arg(long, default_value_t = 300)]
    pub erp_poll_secs: u64,
    /// On SIGTERM/SIGINT, wait at most this long for the messages in hand.
    #[arg(long, default_value_t = 30)]
    pub shutdown_grace_secs: u64,
    #[command(flatten)]
    pub queues: QueueArgs,
    #[command(flatten)]
    pub console: crate::console::ConsoleArgs,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot start:\n  - {}", .0.join("\n  - "))]
    Config(Vec<String>),
    #[error(transparent)]
    Local(#[from] LocalError),
}

/// A file's contents, or an environment variable's, trimmed; `None` when neither is set.
fn from_file_or_env(
    file: Option<&Path>,
    var: &str,
    problems: &mut Vec<String>,
) -> Option<Secret<String>> {
    match file {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(v) if !v.trim().is_empty() => Some(Secret::new(v.trim().to_owned())),
            Ok(_) => {
                problems.push(format!("{} is empty", path.display()));
                None
            }
            Err(e) => {
                problems.push(format!("cannot read {}: {e}", path.display()));
                None
            }
        },
        None => ledgerbridge_core::config::Env::from_process()
            .plain(var)
            .map(Secret::new),
    }
}

fn read(path: &Path, what: &str, problems: &mut Vec<String>) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(v) => Some(v),
        Err(e) => {
            problems.push(format!("{what} {}: {e}", path.display()));
            None
        }
    }
}

/// Check everything and list every problem at once.
pub fn options(args: &ServeArgs) -> Result<Options, ServeError> {
    let mut problems = Vec::new();
    let settings = read(&args.erp_settings_file, "ERP settings", &mut problems);
    let mapping = read(&args.mapping, "mapping configuration", &mut problems);
    let recon = read(
        &args.reconciliation,
        "reconciliation configuration",
        &mut problems,
    );
    let key = from_file_or_env(
        args.stripe_key_file.as_deref(),
        "STRIPE_API_KEY",
        &mut problems,
    );
    if key.is_none() && args.stripe_key_file.is_none() {
        problems.push("no Stripe key: set STRIPE_API_KEY or --stripe-key-file".into());
    }
    let webhook = from_file_or_env(
        args.webhook_secrets_file.as_deref(),
        local::WEBHOOK_SECRETS,
        &mut problems,
    );
    if webhook.is_none() && args.webhook_secrets_file.is_none() {
        problems.push(format!(
            "no webhook signing secret: set {} or --webhook-secrets-file",
            local::WEBHOOK_SECRETS
        ));
    }
    let webhook_list = webhook.as_ref().map(|w| local::split_secrets(w.expose()));
    if webhook_list.as_ref().is_some_and(|l| l.is_empty()) {
        problems.push("the webhook signing secrets list is empty".into());
    }
    let erp_events = from_file_or_env(
        args.erp_event_secrets_file.as_deref(),
        "LEDGERBRIDGE_ERP_EVENT_SECRETS",
        &mut problems,
    )
    .map(|s| local::split_secrets(s.expose()));
    if let Some(json) = &settings {
        if let Err(e) = ledgerbridge_erp::ErpSettings::from_json(&Secret::new(json.clone())) {
            problems.push(format!(
                "ERP settings {}: {e}",
                args.erp_settings_file.display()
            ));
        }
    }
    if let Some(m) = &mapping {
        if let Err(e) = ledgerbridge_pipeline::mapping::Mapping::from_toml(m) {
            problems.push(format!("mapping {}: {e}", args.mapping.display()));
        }
    }
    if let Some(r) = &recon {
        if let Err(e) = ledgerbridge_recon::service::config::ReconFile::from_toml(r) {
            problems.push(format!(
                "reconciliation {}: {e}",
                args.reconciliation.display()
            ));
        }
    }
    match (settings, mapping, recon, key, webhook_list) {
        (Some(settings), Some(mapping_toml), Some(reconciliation_toml), Some(key), Some(hooks))
            if problems.is_empty() =>
        {
            // The intake reads its secrets by name; the joined list is what it parses.
            let joined: Vec<&str> = hooks
                .iter()
                .map(Secret::expose)
                .map(String::as_str)
                .collect();
            Ok(Options {
                listen: args.listen,
                data_dir: args.data_dir.clone(),
                erp: ErpSource::Settings(Secret::new(settings)),
                mapping_toml,
                reconciliation_toml,
                stripe: StripeSource::Api {
                    key,
                    // The same setting the Lambdas read: a Stripe-compatible endpoint (a
                    // proxy, or a test double); Stripe's API when unset.
                    base_url: ledgerbridge_core::config::Env::from_process()
                        .optional("STRIPE_API_BASE"),
                },
                webhook_secrets: EnvSecrets::from_pairs([(
                    local::WEBHOOK_SECRETS.to_owned(),
                    joined.join(","),
                )]),
                erp_event_secrets: erp_events,
                sweep_secs: args.sweep_secs,
                erp_poll_secs: args.erp_poll_secs,
                queues: args.queues.clone(),
            })
        }
        _ => Err(ServeError::Config(problems)),
    }
}

pub async fn run(args: ServeArgs) -> Result<(), ServeError> {
    let opts = options(&args)?;
    local::log_progress_as_json();
    let erp_events = opts.erp_event_secrets.is_some();
    let recon_toml = opts.reconciliation_toml.clone();
    let mut running = local::start_with(opts).await?;
    if let Some(addr) = crate::console::start_for(
        &args.console,
        &args.data_dir,
        &recon_toml,
        running.console_connector.take(),
    )
    .await
    .map_err(|e| LocalError::Console(e.to_string()))?
    {
        tracing::info!(console = %addr, "Operator console serving");
    }
    tracing::info!(
        listen = %running.addr,
        erp = running.erp.as_str(),
        data_dir = %args.data_dir.display(),
        erp_events_endpoint = erp_events,
        sweep_secs = args.sweep_secs,
        erp_poll_secs = args.erp_poll_secs,
        "ledgerbridge serving"
    );
    local::run_until_stopped(running, None, Duration::from_secs(args.shutdown_grace_secs)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn serve_refuses_to_start_and_lists_every_missing_file() {
        let dir = std::env::temp_dir().join(format!("lb-serve-args-{}", std::process::id()));
        let missing = |name: &str| dir.join(name).display().to_string();
        let cmd = Cmd::parse_from([
            "serve".to_owned(),
            format!("--erp-settings-file={}", missing("erp.json")),
            format!("--mapping={}", missing("mapping.toml")),
            format!("--reconciliation={}", missing("reconciliation.toml")),
            format!("--stripe-key-file={}", missing("stripe-key")),
            format!("--webhook-secrets-file={}", missing("webhook-secrets")),
        ]);
        let Err(ServeError::Config(problems)) = options(&cmd.serve) else {
            panic!("serve started without its files");
        };
        for file in [
            "erp.json",
            "mapping.toml",
            "reconciliation.toml",
            "stripe-key",
            "webhook-secrets",
        ] {
            assert!(
                problems.iter().any(|p| p.contains(file)),
                "{file} not named in {problems:?}"
            );
        }
    }

    #[test]
    fn the_mapping_and_reconciliation_files_are_required_arguments() {
        let parsed = Cmd::try_parse_from(["serve", "--erp-settings-file=/x/erp.json"]);
        let err = parsed.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("--mapping"), "{err}");
        assert!(err.contains("--reconciliation"), "{err}");
    }
}
