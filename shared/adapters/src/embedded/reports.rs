//! Payout discrepancy reports in a local SQLite file.

use ledgerbridge_core::ports::StoreError;
use ledgerbridge_recon::report_store::{ReportRecord, ReportStore};
use std::path::Path;
use std::sync::Mutex;

fn corrupt(key: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        key: key.to_owned(),
        message: e.to_string(),
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
    use ledgerbridge_recon::report_store::ReportStatus;
    use ledgerbridge_recon::{Discrepancy, DiscrepancyKind, DiscrepancyReport};

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
}
