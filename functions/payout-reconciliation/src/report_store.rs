//! Where discrepancy reports are kept so an operator can query them: one record per payout
//! journal (`report#po_…`, and `report#po_…#failed` for a failed payout's reversal or flag),
//! holding the report as JSON and as CSV. DynamoDB (the state table) in AWS, SQLite locally.
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

use aws_sdk_dynamodb::types::AttributeValue;
use ledgerbridge_core::ports::StoreError;
use ledgerbridge_recon::DiscrepancyReport;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::path::Path;
use std::sync::Mutex;

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

fn corrupt(key: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        key: key.to_owned(),
        message: e.to_string(),
    }
}

/// Reports in the DynamoDB state table (partition key `pk`): `status`, `payout`, `updated_at`
/// and `report` (the record as JSON) and `csv` attributes.
#[derive(Clone, Debug)]
pub struct DynamoReportStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoReportStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoReportStore {
            client,
            table: table.into(),
        }
    }
}

fn dynamo_error<E: std::fmt::Debug>(e: E) -> StoreError {
    // The SDK's Display is terse ("service error"); the Debug form carries the code.
    let text = format!("{e:?}");
    if text.contains("Throttl") || text.contains("ProvisionedThroughputExceeded") {
        StoreError::Throttled("DynamoDB throttled".into())
    } else {
        StoreError::Unavailable(text.chars().take(300).collect())
    }
}

impl ReportStore for DynamoReportStore {
    async fn put_report(&self, record: &ReportRecord) -> Result<(), StoreError> {
        let json = serde_json::to_string(record).map_err(|e| corrupt(&record.key, e))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(record.key.clone()))
            .item("payout", AttributeValue::S(record.payout.clone()))
            .item(
                "status",
                AttributeValue::S(
                    serde_json::to_value(record.status)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                ),
            )
            .item(
                "updated_at",
                AttributeValue::N(record.updated_at_ms.to_string()),
            )
            .item("report", AttributeValue::S(json))
            .send()
            .await
            .map_err(dynamo_error)?;
        Ok(())
    }

    async fn get_report(&self, key: &str) -> Result<Option<ReportRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(dynamo_error)?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let json = item
            .get("report")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| corrupt(key, "no report attribute"))?;
        serde_json::from_str(json)
            .map(Some)
            .map_err(|e| corrupt(key, e))
    }
}

/// Reports in a SQLite file (the local store; table `payout_reports`).
pub struct SqliteReportStore {
    conn: Mutex<rusqlite::Connection>,
}

impl SqliteReportStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn =
            rusqlite::Connection::open(path).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Self::init(conn)
    }

    pub fn in_memory() -> Result<Self, StoreError> {
        let conn = rusqlite::Connection::open_in_memory()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Self::init(conn)
    }

    fn init(conn: rusqlite::Connection) -> Result<Self, StoreError> {
        conn.execute_batch(
            "PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS payout_reports (
                 key TEXT PRIMARY KEY,
                 payout TEXT NOT NULL,
                 status TEXT NOT NULL,
                 updated_at_ms INTEGER NOT NULL,
                 record TEXT NOT NULL,
                 csv TEXT NOT NULL
             );",
        )
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(SqliteReportStore {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| StoreError::Unavailable("report store lock poisoned".into()))?;
        f(&conn).map_err(|e| StoreError::Unavailable(e.to_string()))
    }
}

impl ReportStore for SqliteReportStore {
    async fn put_report(&self, record: &ReportRecord) -> Result<(), StoreError> {
        let json = serde_json::to_string(record).map_err(|e| corrupt(&record.key, e))?;
        let status = serde_json::to_value(record.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        self.with(|c| {
            c.execute(
                "INSERT INTO payout_reports (key, payout, status, updated_at_ms, record, csv)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(key) DO UPDATE SET payout = excluded.payout,
                   status = excluded.status, updated_at_ms = excluded.updated_at_ms,
                   record = excluded.record, csv = excluded.csv",
                rusqlite::params![
                    record.key,
                    record.payout,
                    status,
                    record.updated_at_ms,
                    json,
                    record.csv
                ],
            )
            .map(drop)
        })
    }

    async fn get_report(&self, key: &str) -> Result<Option<ReportRecord>, StoreError> {
        let json: Option<String> = self.with(|c| {
            let mut stmt = c.prepare("SELECT record FROM payout_reports WHERE key = ?1")?;
            let mut rows = stmt.query([key])?;
            match rows.next()? {
                Some(row) => row.get(0).map(Some),
                None => Ok(None),
            }
        })?;
        match json {
            Some(j) => serde_json::from_str(&j)
                .map(Some)
                .map_err(|e| corrupt(key, e)),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ledgerbridge_core::currency::Currency;
    use ledgerbridge_core::ids::PayoutId;
    use ledgerbridge_core::money::Money;
    use ledgerbridge_recon::{Discrepancy, DiscrepancyKind};

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
            report,
        }
    }

    #[tokio::test]
    async fn sqlite_round_trip_and_overwrite() {
        let store = SqliteReportStore::in_memory().unwrap();
        assert_eq!(store.get_report("report#po_1").await.unwrap(), None);
        let mut r = record(2);
        store.put_report(&r).await.unwrap();
        assert_eq!(
            store.get_report("report#po_1").await.unwrap(),
            Some(r.clone())
        );
        r.status = ReportStatus::NeedsReview;
        store.put_report(&r).await.unwrap();
        let got = store.get_report("report#po_1").await.unwrap().unwrap();
        assert_eq!(got.status, ReportStatus::NeedsReview);
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
