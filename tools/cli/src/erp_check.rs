//! `ledgerbridge erp check`: verify a real ERP installation before the first document.
//!
//! Reads the ERP settings (the same JSON the deployment keeps in its secret), and optionally
//! the mapping and reconciliation files, collects every GL account, item, payment method and
//! reason code they name, runs the read-only check of `ledgerbridge_erp::check` and prints the
//! table. Exits non-zero when any line fails. With `--write` it then runs one full document
//! cycle in the (test) company and records every request and response (see
//! `ledgerbridge_erp::check::write`).

mod recorder;

use ledgerbridge_core::secrets::Secret;
use ledgerbridge_erp::check::cycle::{self, CycleInputs};
use ledgerbridge_erp::check::recording::{self, RecordingHeader};
use ledgerbridge_erp::check::{self, CheckReport, Expectations, Named};
use ledgerbridge_erp::{AnyConnector, ErpDate, ErpSettings};
use ledgerbridge_pipeline::mapping::Mapping;
use ledgerbridge_recon::service::config::ReconFile;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ErpArgs {
    #[command(subcommand)]
    pub command: ErpCommand,
}

#[derive(clap::Subcommand)]
pub enum ErpCommand {
    /// Check an ERP installation against the configuration before the first document:
    /// authentication, services or procedures, reference columns and widths, GL accounts,
    /// open period. Read-only unless --write. Exits non-zero on any failure.
    Check(CheckArgs),
}

#[derive(clap::Args)]
pub struct CheckArgs {
    /// ERP settings JSON (the value of the deployment's ERP settings secret).
    #[arg(long)]
    pub erp_settings: PathBuf,
    /// Mapping configuration (TOML): its GL accounts, items, payment methods and reason codes
    /// are checked.
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// Reconciliation configuration (TOML): its GL accounts are checked.
    #[arg(long)]
    pub reconciliation: Option<PathBuf>,
    /// Posting date whose fiscal period must be open (`YYYY-MM-DD`; default today, UTC).
    #[arg(long)]
    pub date: Option<String>,
    /// After the read-only checks pass, create one document of each kind in the company (use
    /// the customer's TEST company), find each again by reference, and record every request
    /// and response to --record.
    #[arg(long)]
    pub write: bool,
    /// Where --write records the exchange (JSON Lines; credentials and personal data
    /// redacted).
    #[arg(long, default_value = "erp-check-recording.jsonl")]
    pub record: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ErpCheckError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
    #[error("{0} check(s) failed")]
    Failed(usize),
    #[error("write cycle: {0}")]
    Write(String),
}

fn read(path: &PathBuf) -> Result<String, ErpCheckError> {
    std::fs::read_to_string(path).map_err(|source| ErpCheckError::Read {
        path: path.clone(),
        source,
    })
}

/// Every name the mapping and reconciliation files give the ERP.
pub fn expectations(
    date: ErpDate,
    mapping: Option<&Mapping>,
    recon: Option<&ReconFile>,
) -> Expectations {
    let mut e = Expectations::new(date);
    if let Some(m) = mapping {
        e.gl_accounts.extend(m.gl_accounts());
        e.items.push(Named::new("payments.item", &m.payments.item));
        e.items.push(Named::new("refunds.item", &m.refunds.item));
        for (k, v) in &m.products {
            e.items.push(Named::new(format!("products.{k}"), v));
        }
        e.payment_methods.push(Named::new(
            "payments.default_method",
            &m.payments.default_method,
        ));
        for (k, v) in &m.payments.methods {
            e.payment_methods
                .push(Named::new(format!("payments.methods.{k}"), v));
        }
        e.reason_codes.push(Named::new(
            "refunds.default_reason",
            &m.refunds.default_reason,
        ));
        for (k, v) in &m.refunds.reasons {
            e.reason_codes
                .push(Named::new(format!("refunds.reasons.{k}"), v));
        }
        for r in &m.rules {
            if let Some(i) = &r.then.item {
                e.items
                    .push(Named::new(format!("rules[{}].then.item", r.name), i));
            }
            if let Some(p) = &r.then.payment_method {
                e.payment_methods.push(Named::new(
                    format!("rules[{}].then.payment_method", r.name),
                    p,
                ));
            }
        }
        if let Some(i) = &m.invoices {
            e.items.push(Named::new("invoices.item", &i.item));
            e.items.push(Named::new("invoices.tax_item", &i.tax_item));
            if let Some(u) = &i.uncollectible_item {
                e.items.push(Named::new("invoices.uncollectible_item", u));
            }
            e.reason_codes
                .push(Named::new("invoices.void_reason", &i.void_reason));
            e.reason_codes.push(Named::new(
                "invoices.credit_note_reason",
                &i.credit_note_reason,
            ));
            e.reason_codes.push(Named::new(
                "invoices.uncollectible_reason",
                &i.uncollectible_reason,
            ));
        }
    }
    if let Some(r) = recon {
        e.gl_accounts.extend(r.mapping.gl_accounts());
    }
    e
}

fn today() -> Result<ErpDate, ErpCheckError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| ErpCheckError::Config(e.to_string()))?;
    let secs = i64::try_from(now.as_secs()).map_err(|e| ErpCheckError::Config(e.to_string()))?;
    ErpDate::from_unix(secs).map_err(|e| ErpCheckError::Config(e.to_string()))
}

pub async fn run(args: ErpArgs) -> Result<(), ErpCheckError> {
    match args.command {
        ErpCommand::Check(a) => check(a).await,
    }
}

async fn check(args: CheckArgs) -> Result<(), ErpCheckError> {
    let settings_text = read(&args.erp_settings)?;
    let settings = ErpSettings::from_json(&Secret::new(settings_text.clone()))
        .map_err(|e| ErpCheckError::Config(e.to_string()))?;
    let mapping = match &args.mapping {
        Some(p) => Some(
            Mapping::from_toml(&read(p)?)
                .map_err(|e| ErpCheckError::Config(format!("mapping {}: {e}", p.display())))?,
        ),
        None => None,
    };
    let recon =
        match &args.reconciliation {
            Some(p) => Some(ReconFile::from_toml(&read(p)?).map_err(|e| {
                ErpCheckError::Config(format!("reconciliation {}: {e}", p.display()))
            })?),
            None => None,
        };
    let date = match &args.date {
        Some(d) => ErpDate::parse(d).map_err(|e| ErpCheckError::Config(e.to_string()))?,
        None => today()?,
    };
    // Refuse a --write that cannot run before reading anything from the ERP.
    let cycle_inputs = if args.write {
        Some(cycle_inputs(&date, mapping.as_ref(), recon.as_ref())?)
    } else {
        None
    };
    let exp = expectations(date.clone(), mapping.as_ref(), recon.as_ref());
    let kind = settings.kind();
    let connector =
        AnyConnector::from_settings(settings).map_err(|e| ErpCheckError::Config(e.to_string()))?;
    let report = check::run(&connector, &exp).await;
    print!("{}", report.table());
    let failed = report.failures().count();
    if failed > 0 {
        return Err(ErpCheckError::Failed(failed));
    }
    let Some(inputs) = cycle_inputs else {
        return Ok(());
    };
    println!(
        "\nwrite cycle (references LB-{}-…, customer {}):",
        inputs.stripe_id(),
        inputs.customer_id()
    );
    let mut settings_json: serde_json::Value = serde_json::from_str(&settings_text)
        .map_err(|e| ErpCheckError::Config(format!("ERP settings: {e}")))?;
    let upstream = settings_json
        .get("base_url")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            ErpCheckError::Write(
                "--write records HTTP exchanges: the settings need an HTTP transport with \"base_url\""
                    .to_owned(),
            )
        })?;
    if settings_json
        .get("transport")
        .and_then(serde_json::Value::as_str)
        == Some("sqlserver")
    {
        return Err(ErpCheckError::Write(
            "--write records HTTP exchanges; the sqlserver transport is not recorded".to_owned(),
        ));
    }
    let rec = recorder::Recorder::start(&upstream)
        .await
        .map_err(|e| ErpCheckError::Write(format!("recorder: {e}")))?;
    if let Some(o) = settings_json.as_object_mut() {
        o.insert(
            "base_url".into(),
            serde_json::Value::String(rec.base_url.clone()),
        );
    }
    let proxied = ErpSettings::from_json(&Secret::new(settings_json.to_string()))
        .and_then(AnyConnector::from_settings)
        .map_err(|e| ErpCheckError::Config(e.to_string()))?;
    let lines = cycle::run(&proxied, &inputs, &ledgerbridge_erp::RetryPolicy::default()).await;
    let exchanges = rec.finish().await;
    let cycle_report = CheckReport { erp: kind, lines };
    print!("{}", cycle_report.table());
    let original: serde_json::Value = serde_json::from_str(&settings_text)
        .map_err(|e| ErpCheckError::Config(format!("ERP settings: {e}")))?;
    let header = RecordingHeader {
        format: recording::FORMAT.to_owned(),
        version: recording::VERSION,
        erp: kind,
        run_id: inputs.run_id.clone(),
        date: inputs.date.clone(),
        base_path: recording::base_path(&upstream),
        settings: recording::settings_for_recording(&original),
        cycle: serde_json::to_value(&inputs).map_err(|e| ErpCheckError::Write(e.to_string()))?,
    };
    let text =
        recording::render(&header, &exchanges).map_err(|e| ErpCheckError::Write(e.to_string()))?;
    std::fs::write(&args.record, text).map_err(|e| {
        ErpCheckError::Write(format!("cannot write {}: {e}", args.record.display()))
    })?;
    println!(
        "recorded {} exchange(s) to {}",
        exchanges.len(),
        args.record.display()
    );
    let failed = cycle_report.failures().count();
    if failed > 0 {
        return Err(ErpCheckError::Failed(failed));
    }
    Ok(())
}

/// The cycle's documents from the mapping and reconciliation files (both needed).
fn cycle_inputs(
    date: &ErpDate,
    mapping: Option<&Mapping>,
    recon: Option<&ReconFile>,
) -> Result<CycleInputs, ErpCheckError> {
    let (Some(m), Some(r)) = (mapping, recon) else {
        return Err(ErpCheckError::Config(
            "--write needs --mapping and --reconciliation (the item, payment method, reason and accounts of the test documents)".to_owned(),
        ));
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Ok(CycleInputs {
        run_id: cycle::run_id_from(now),
        date: date.as_str().to_owned(),
        currency: m.defaults.currency.to_ascii_lowercase(),
        item: m.payments.item.clone(),
        revenue_account: m.payments.revenue_account.clone(),
        payment_method: m.payments.default_method.clone(),
        reason: m.refunds.default_reason.clone(),
        debit_account: r.mapping.bank_account.clone(),
        credit_account: r.mapping.suspense_account.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_files_name_every_account_item_method_and_reason_with_its_origin() {
        let m = Mapping::from_toml(include_str!("../../../config/mapping.example.toml")).unwrap();
        let r = ReconFile::from_toml(include_str!("../../../config/reconciliation.example.toml"))
            .unwrap();
        let e = expectations(ErpDate::parse("2026-03-16").unwrap(), Some(&m), Some(&r));
        let has = |list: &[Named], origin: &str, value: &str| {
            list.iter().any(|n| n.origin == origin && n.value == value)
        };
        assert!(has(&e.gl_accounts, "payments.revenue_account", "4000"));
        assert!(has(&e.gl_accounts, "disputes.clearing_account", "1150"));
        assert!(has(&e.gl_accounts, "mapping.bank_account", "1010"));
        assert!(has(
            &e.gl_accounts,
            "mapping.category_accounts.charge",
            "1150"
        ));
        assert!(has(&e.gl_accounts, "mapping.fee_accounts.tax", "2200"));
        assert!(has(&e.items, "payments.item", "STRIPE-SALE"));
        assert!(has(&e.items, "products.prod_seats", "SEAT-SUB"));
        assert!(has(&e.payment_methods, "payments.methods.card", "CC"));
        assert!(has(&e.reason_codes, "refunds.reasons.duplicate", "DUP"));
        // Without files, nothing is expected but the date.
        let none = expectations(ErpDate::parse("2026-03-16").unwrap(), None, None);
        assert!(none.gl_accounts.is_empty() && none.items.is_empty());
        // --write needs both files.
        assert!(cycle_inputs(&ErpDate::parse("2026-03-16").unwrap(), Some(&m), None).is_err());
        let c = cycle_inputs(&ErpDate::parse("2026-03-16").unwrap(), Some(&m), Some(&r)).unwrap();
        assert_eq!(c.item, "STRIPE-SALE");
        assert_eq!(c.debit_account, "1010");
        assert_eq!(c.credit_account, "1999");
    }
}
