//! Where discrepancy reports are kept so an operator can query them: one record per payout
//! journal (`report#po_…`, and `report#po_…#failed` for a failed payout's reversal or flag),
//! holding the report as JSON and as CSV. The adapters (DynamoDB, the state table, in AWS;
//! SQLite locally) are in `ledgerbridge-adapters`.
//!
//! Reading a report (until the `ledgerbridge` command has an export subcommand):
//!
//! ```text
//! # AWS: the state table's item; `report` is the record as JSON, its `csv` field the export
//! aws dynamodb get-item --table-name "$STATE_TABLE" --consistent-read \
//!   --key '{"pk": {"S": "report#po_123"}}' \
//!   | jq -r '.Item.report.S | fromjson | .csv' > po_123.csv
//! # Local SQLite store
//! sqlite3 state.db "SELECT csv FROM payout_reports WHERE key = 'report#po_123'" > po_123.csv
//! ```
//!
//! A failed payout's reversal or flag is under `report#po_123#failed`.

use crate::DiscrepancyReport;
use ledgerbridge_core::ports::StoreError;
use serde::{Deserialize, Serialize};
use std::future::Future;

/// What happened to the payout when the report was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportStatus {
    /// A journal was queued for the ERP (`journal_reference`).
    JournalQueued,
    /// No journal: an operator must look (manual payout, flagged failure).
    NeedsReview,
    /// Reconciliation failed permanently (the reason is in `error`); nothing was posted.
    Failed,
}

/// Totals of the queued journal, in minor units of `currency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalTotals {
    pub currency: String,
    pub debit_minor: i64,
    pub credit_minor: i64,
    pub lines: usize,
}

/// A stored discrepancy report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRecord {
    /// `report#po_…` or `report#po_…#failed`.
    pub key: String,
    pub payout: String,
    pub status: ReportStatus,
    /// The ERP reference of the queued journal (`LB-po_…-JE`).
    pub journal_reference: Option<String>,
    pub totals: Option<JournalTotals>,
    /// What triggered this run (`payout.paid`, `schedule`, …).
    pub trigger: String,
    pub error: Option<String>,
    pub updated_at_ms: i64,
    pub report: DiscrepancyReport,
    /// `report.to_csv()`, for finance (RFC 4180, header row).
    pub csv: String,
    /// What the bank receives: the payout's amount, currency and arrival date as Stripe
    /// reports them (absent in records written before this field existed).
    #[serde(default)]
    pub deposit: Option<Deposit>,
    /// The queued journal's lines (empty when no journal was queued, and in older records).
    #[serde(default)]
    pub lines: Vec<ledgerbridge_erp::JournalLine>,
}

/// The bank deposit of a payout, in minor units of `currency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deposit {
    pub currency: String,
    pub amount_minor: i64,
    /// Unix seconds; 0 when Stripe did not say.
    pub arrival_date: i64,
}

impl ReportRecord {
    pub fn key_for(payout: &str, failed: bool) -> String {
        ledgerbridge_core::keys::ReportKey::payout(payout, failed).to_string()
    }
}

/// Largest record written: a DynamoDB item holds at most 400 KB.
pub const MAX_RECORD_BYTES: usize = 350_000;

/// Shrink the listed entries (counting the rest in `omitted`) until the record fits
/// [`MAX_RECORD_BYTES`]; the CSV is regenerated from what is kept.
pub fn fit(mut record: ReportRecord) -> Result<ReportRecord, StoreError> {
    loop {
        let size = serde_json::to_vec(&record).map(|v| v.len()).unwrap_or(0);
        if size <= MAX_RECORD_BYTES || record.report.entries.is_empty() {
            return Ok(record);
        }
        let keep = record.report.entries.len() / 2;
        let dropped = record.report.entries.len() - keep;
        record.report.entries.truncate(keep);
        record.report.omitted = record.report.omitted.saturating_add(dropped as u64);
        record.csv = record.report.to_csv().map_err(|e| StoreError::Corrupt {
            key: record.key.clone(),
            message: e.to_string(),
        })?;
    }
}

/// Keeps discrepancy reports.
pub trait ReportStore: Send + Sync {
    /// Write (or overwrite) the record under its key.
    fn put_report(
        &self,
        record: &ReportRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The record under `key` (see [`ReportRecord::key_for`]).
    fn get_report(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<ReportRecord>, StoreError>> + Send;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{Discrepancy, DiscrepancyKind};
    use ledgerbridge_core::currency::Currency;
    use ledgerbridge_core::ids::PayoutId;
    use ledgerbridge_core::money::Money;

    fn record(entries: usize) -> ReportRecord {
        let mut report = DiscrepancyReport::new(PayoutId::new("po_1"));
        for i in 0..entries {
            report.push(Discrepancy {
                kind: DiscrepancyKind::UnsyncedSource,
                balance_transaction: Some(format!("txn_{i:08}")),
                source: Some(format!("ch_{i:08}")),
                category: Some("charge".into()),
                amount: Some(Money::new(1000, Currency::USD)),
                detail: format!("ch_{i:08} was never synced to the ERP"),
            });
        }
        ReportRecord {
            key: ReportRecord::key_for("po_1", false),
            payout: "po_1".into(),
            status: ReportStatus::JournalQueued,
            journal_reference: Some("LB-po_1-JE".into()),
            totals: None,
            trigger: "schedule".into(),
            error: None,
            updated_at_ms: 1,
            csv: report.to_csv().unwrap(),
            deposit: None,
            lines: Vec::new(),
            report,
        }
    }

    #[test]
    fn oversized_reports_are_cut_and_counted() {
        let r = fit(record(5000)).unwrap();
        assert!(serde_json::to_vec(&r).unwrap().len() <= MAX_RECORD_BYTES);
        assert_eq!(r.report.entries.len() as u64 + r.report.omitted, 5000);
        assert!(r.csv.contains("more entries not listed"));
        let small = fit(record(3)).unwrap();
        assert_eq!(small.report.omitted, 0);
    }
}
