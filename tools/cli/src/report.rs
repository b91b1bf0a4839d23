//! `ledgerbridge report`: a payout's stored discrepancy report, from the local SQLite report
//! store that `ledgerbridge local` writes (the same record the Lambda keeps in DynamoDB).

use crate::local::REPORTS_FILE;
use ledgerbridge_adapters::embedded::SqliteReportStore;
use ledgerbridge_core::{Currency, Money};
use ledgerbridge_recon::report_store::{ReportRecord, ReportStatus, ReportStore};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ReportArgs {
    /// The payout (`po_…`).
    #[arg(long)]
    pub payout: String,
    /// The failed payout's reversal (or flag) report instead of the payout journal's.
    #[arg(long)]
    pub failed: bool,
    /// Directory of the local SQLite files (as given to `ledgerbridge local`).
    #[arg(long, default_value = ".local")]
    pub data_dir: PathBuf,
    /// Also write the report as CSV to this file.
    #[arg(long)]
    pub csv: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{0:?} is not a payout id (po_…)")]
    NotAPayout(String),
    #[error("no report store at {0} (reports are written by `ledgerbridge local`)")]
    NoStore(PathBuf),
    #[error("report store: {0}")]
    Store(#[from] ledgerbridge_core::ports::StoreError),
    #[error("no stored report for {0}")]
    NotFound(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The record for the payout: the journal's report, or the failed payout's with `--failed`
/// (also when it is the only one stored).
pub async fn find(
    store: &impl ReportStore,
    payout: &str,
    failed: bool,
) -> Result<ReportRecord, ReportError> {
    let own = ReportRecord::key_for(payout, failed);
    if let Some(r) = store.get_report(&own).await? {
        return Ok(r);
    }
    if !failed {
        if let Some(r) = store
            .get_report(&ReportRecord::key_for(payout, true))
            .await?
        {
            return Ok(r);
        }
    }
    Err(ReportError::NotFound(payout.to_owned()))
}

fn minor(amount: i64, currency: &str) -> String {
    match Currency::parse(currency) {
        Ok(c) => Money::new(amount, c).to_string(),
        Err(_) => format!("{amount} (minor units, {currency})"),
    }
}

/// The record as text: a summary, then one line per discrepancy.
pub fn render(r: &ReportRecord) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: &str| out.push_str(&format!("{k:<14}{v}\n"));
    line("payout", &r.payout);
    line("report", &r.key);
    line(
        "status",
        match r.status {
            ReportStatus::JournalQueued => "journal queued",
            ReportStatus::NeedsReview => "needs review (no journal)",
            ReportStatus::Failed => "failed (nothing posted)",
        },
    );
    if let Some(d) = &r.deposit {
        line("bank deposit", &minor(d.amount_minor, &d.currency));
    }
    if let Some(j) = &r.journal_reference {
        line("journal", j);
    }
    if let Some(t) = &r.totals {
        line(
            "totals",
            &format!(
                "debit {} credit {} ({} lines)",
                minor(t.debit_minor, &t.currency),
                minor(t.credit_minor, &t.currency),
                t.lines
            ),
        );
    }
    if !r.lines.is_empty() {
        line("lines", "");
        for l in &r.lines {
            let side = match l.side {
                ledgerbridge_erp::Side::Debit => "debit ",
                ledgerbridge_erp::Side::Credit => "credit",
            };
            line(
                "",
                &format!(
                    "{:<10} {side} {:>16}  {}",
                    l.gl_account,
                    l.amount.to_string(),
                    l.memo.as_deref().unwrap_or("")
                ),
            );
        }
    }
    line("trigger", &r.trigger);
    if let Some(e) = &r.error {
        line("error", e);
    }
    line("updated (ms)", &r.updated_at_ms.to_string());
    let listed = r.report.entries.len();
    line(
        "discrepancies",
        &if r.report.omitted > 0 {
            format!("{listed} listed, {} more not listed", r.report.omitted)
        } else {
            listed.to_string()
        },
    );
    for d in &r.report.entries {
        let kind = serde_json::to_value(d.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("{:?}", d.kind));
        let amount = d.amount.map(|m| m.to_string()).unwrap_or_default();
        out.push_str(&format!(
            "  - {kind:<22} {:<30} {amount:>14}  {}\n",
            d.balance_transaction.as_deref().unwrap_or("-"),
            d.detail
        ));
    }
    out
}

/// The journal's state now: posted with its ERP id, waiting, parked with the reason.
async fn live_state(data_dir: &std::path::Path, key: &str) -> Option<String> {
    use crate::console::model::ReadModel;
    let model = crate::console::embedded::Embedded::open(data_dir, None).ok()?;
    let payouts = model.payouts().await.ok()?;
    let p = payouts.into_iter().find(|p| p.report_key == key)?;
    let state = p.journal_state?;
    Some(match (&p.journal_erp_id, state.reason()) {
        (Some(id), _) => format!("{} in the ERP as {id}", state.label()),
        (None, Some(reason)) => format!("{}: {reason}", state.label()),
        (None, None) => state.label().to_owned(),
    })
}

pub async fn run(args: ReportArgs) -> Result<(), ReportError> {
    if !args.payout.starts_with("po_") || args.payout.contains(['#', ' ']) {
        return Err(ReportError::NotAPayout(args.payout));
    }
    let path = args.data_dir.join(REPORTS_FILE);
    if !path.is_file() {
        return Err(ReportError::NoStore(path));
    }
    let store = SqliteReportStore::open(&path)?;
    let record = find(&store, &args.payout, args.failed).await?;
    print!("{}", render(&record));
    // The journal's state now, from the state store and the queues (the stored report says
    // only what the reconciliation did).
    match live_state(&args.data_dir, &record.key).await {
        Some(state) => println!("{:<14}{state}", "journal now"),
        None => println!(
            "{:<14}unknown (no state store in {})",
            "journal now",
            args.data_dir.display()
        ),
    }
    if let Some(csv) = &args.csv {
        std::fs::write(csv, &record.csv).map_err(|source| ReportError::Write {
            path: csv.clone(),
            source,
        })?;
        println!("csv           {}", csv.display());
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ledgerbridge_core::ids::PayoutId;
    use ledgerbridge_recon::{Discrepancy, DiscrepancyKind, DiscrepancyReport};

    fn record(failed: bool) -> ReportRecord {
        let mut report = DiscrepancyReport::new(PayoutId::new("po_1"));
        report.push(Discrepancy {
            kind: DiscrepancyKind::UnsyncedSource,
            balance_transaction: Some("txn_1".into()),
            source: Some("ch_1".into()),
            category: Some("charge".into()),
            amount: Some(Money::new(1000, Currency::USD)),
            detail: "ch_1 was never synced to the ERP".into(),
        });
        ReportRecord {
            key: ReportRecord::key_for("po_1", failed),
            payout: "po_1".into(),
            status: ReportStatus::JournalQueued,
            journal_reference: Some("LB-po_1-JE".into()),
            totals: None,
            trigger: "payout.paid".into(),
            error: None,
            updated_at_ms: 1,
            csv: report.to_csv().unwrap(),
            deposit: Some(ledgerbridge_recon::report_store::Deposit {
                currency: "USD".into(),
                amount_minor: 9_710,
                arrival_date: 0,
            }),
            lines: vec![ledgerbridge_erp::JournalLine {
                gl_account: "1010".into(),
                side: ledgerbridge_erp::Side::Debit,
                amount: Money::new(9_710, Currency::USD),
                memo: Some("bank".into()),
            }],
            report,
        }
    }

    #[tokio::test]
    async fn finds_and_renders_a_stored_report() {
        let store = SqliteReportStore::in_memory().unwrap();
        assert!(matches!(
            find(&store, "po_1", false).await,
            Err(ReportError::NotFound(_))
        ));
        store.put_report(&record(true)).await.unwrap();
        // Only the failed payout's report is stored: found without --failed too.
        assert_eq!(
            find(&store, "po_1", false).await.unwrap().key,
            "report#po_1#failed"
        );
        store.put_report(&record(false)).await.unwrap();
        let r = find(&store, "po_1", false).await.unwrap();
        assert_eq!(r.key, "report#po_1");
        let text = render(&r);
        assert!(text.contains("LB-po_1-JE"), "{text}");
        assert!(text.contains("txn_1"), "{text}");
        assert!(text.contains("discrepancies 1"), "{text}");
        assert!(text.contains("bank deposit  97.10 USD"), "{text}");
        assert!(
            text.contains("1010       debit         97.10 USD  bank"),
            "{text}"
        );
    }
}
