//! What the console shows, independent of where it is read from, and the port its adapters
//! implement ([`ReadModel`]). The embedded adapter (the data directory's SQLite files) is in
//! [`super::embedded`].

use ledgerbridge_core::ports::{QueueError, StoreError};
use ledgerbridge_core::Money;
use std::future::Future;

/// Where a document stands.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum DocState {
    /// In the ERP under `erp_id`.
    Posted,
    /// Claimed by a worker right now.
    InProgress,
    /// On the queue, waiting (its parent document, or a retry after a transient failure).
    Waiting(String),
    /// Moved to a dead-letter queue after its last delivery failed.
    DeadLetter(String),
    /// Parked: it cannot succeed as it is; the reason says what to fix.
    Parked(String),
}

impl DocState {
    pub fn label(&self) -> &'static str {
        match self {
            DocState::Posted => "posted",
            DocState::InProgress => "in progress",
            DocState::Waiting(_) => "waiting",
            DocState::DeadLetter(_) => "dead letter",
            DocState::Parked(_) => "parked",
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            DocState::Waiting(r) | DocState::DeadLetter(r) | DocState::Parked(r) => Some(r),
            DocState::Posted | DocState::InProgress => None,
        }
    }
}

/// One ERP document of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentView {
    pub kind: String,
    pub reference: String,
    pub erp: Option<String>,
    pub erp_id: Option<String>,
    /// The amount as sent to the ERP and accepted by it (the command's total).
    pub amount: Option<Money>,
    pub customer: Option<String>,
    pub state: DocState,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    /// Later events that found the document already posted: (event id, event type).
    pub also: Vec<(String, String)>,
    pub at_ms: i64,
}

/// One Stripe object and everything ledgerbridge did with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordView {
    pub stripe_id: String,
    pub documents: Vec<DocumentView>,
    /// Metadata written back to the Stripe object: (key, value).
    pub write_backs: Vec<(String, String)>,
    pub at_ms: i64,
}

impl RecordView {
    /// The record's state: its least advanced document's.
    pub fn state(&self) -> DocState {
        self.documents
            .iter()
            .map(|d| d.state.clone())
            .max()
            .unwrap_or(DocState::Posted)
    }

    pub fn events(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for d in &self.documents {
            let first = d.event_id.clone().zip(d.event_type.clone());
            for (id, t) in first.into_iter().chain(d.also.iter().cloned()) {
                if !out.iter().any(|(i, _)| *i == id) {
                    out.push((id, t));
                }
            }
        }
        out
    }

    pub fn customer(&self) -> Option<&str> {
        self.documents.iter().find_map(|d| d.customer.as_deref())
    }

    pub fn kinds(&self) -> Vec<&str> {
        let mut k: Vec<&str> = self.documents.iter().map(|d| d.kind.as_str()).collect();
        k.dedup();
        k
    }
}

/// A Stripe event recorded as ignored by type at intake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredEvent {
    pub event_id: String,
}

/// A parked message or a dead letter: something a person must look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedView {
    /// `{queue}:{message id}`.
    pub id: String,
    /// The queue holding it (`parked`, or the queue whose dead letter it is).
    pub queue: String,
    /// The stage that parked it (`transform`, `erp-post`, `erp-sync`, `reconciliation`), or
    /// `dead letter`.
    pub stage: String,
    pub reason: String,
    /// The reason with ids and numbers blanked, to group alike messages.
    pub group: String,
    /// The message to replay (the parked one's original body).
    pub body: Option<String>,
    /// The queue a replay sends it to; `None` when it cannot be replayed as it is.
    pub target: Option<String>,
    pub at_ms: i64,
    pub receive_count: u32,
    /// What it is about (a reference, an object id), best effort.
    pub subject: String,
}

/// A journal line by account, in minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineView {
    pub account: String,
    pub debit: Option<Money>,
    pub credit: Option<Money>,
    pub memo: Option<String>,
}

/// A payout against its journal and the bank.
#[derive(Debug, Clone, PartialEq)]
pub struct PayoutView {
    pub payout: String,
    pub report_key: String,
    /// What the reconciliation did (`journal queued`, `needs review`, `failed`).
    pub reconciliation: String,
    pub deposit: Option<Money>,
    pub arrival_date: i64,
    pub journal_reference: Option<String>,
    pub journal_erp_id: Option<String>,
    /// The journal's state now (posted, waiting, parked with the reason, …).
    pub journal_state: Option<DocState>,
    /// The journal's posting state inside the ERP's ledger, read from the ERP ("posted to the
    /// ledger", "entered, not posted", "not in the ERP", or "not read: why").
    pub journal_ledger: Option<String>,
    pub lines: Vec<LineView>,
    /// Net debit on the bank account.
    pub bank_line: Option<Money>,
    /// Deposit − bank line (zero when the journal ties to the bank).
    pub variance: Option<Money>,
    /// Lines on the variance account (what the journal could not explain).
    pub variance_booked: Option<Money>,
    pub fees: Option<Money>,
    pub discrepancies: Vec<ledgerbridge_recon::Discrepancy>,
    pub omitted: u64,
    pub error: Option<String>,
    pub csv: String,
    pub updated_at_ms: i64,
}

/// One queue's numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueHealth {
    pub name: String,
    pub depth: usize,
    pub dead_letters: usize,
    pub oldest_age_ms: Option<i64>,
}

/// Outcomes over a window: documents posted (or found posted) and messages that failed
/// (parked or dead-lettered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRate {
    pub window_ms: i64,
    pub posted: usize,
    pub failed: usize,
    /// failed / (posted + failed), in tenths of a percent; `None` when nothing happened.
    pub permille: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthView {
    pub queues: Vec<QueueHealth>,
    pub parked: usize,
    /// The last hour's outcomes.
    pub last_hour: ErrorRate,
    /// The last day's outcomes.
    pub last_day: ErrorRate,
    /// (ERP, last successful post, ms).
    pub last_post: Vec<(String, i64)>,
    /// What the adapter could not read (e.g. the age of the oldest message without CloudWatch).
    pub notes: Vec<String>,
}

/// The amounts per day for the chart.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DayTotals {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub currency: String,
    pub volume_minor: i64,
    pub fees_minor: i64,
    pub refunds_minor: i64,
    pub disputes_minor: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
    #[error("no ledgerbridge data in {0} (start `ledgerbridge local` or `serve` with it first)")]
    NoData(std::path::PathBuf),
    #[error("no parked message or dead letter {0}")]
    NotFound(String),
    #[error("{0} cannot be replayed: {1}")]
    NotReplayable(String, String),
    #[error("the edited message is not a valid {queue} message: {reason}")]
    InvalidEdit { queue: String, reason: String },
    /// The console's configuration (stack outputs, ERP settings).
    #[error("configuration: {0}")]
    Config(String),
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    pub id: String,
    pub queue: String,
    pub edited: bool,
}

/// The console's port: every page reads through it, every action goes through it.
pub trait ReadModel: Send + Sync + 'static {
    fn records(&self) -> impl Future<Output = Result<Vec<RecordView>, ConsoleError>> + Send;
    fn ignored(&self) -> impl Future<Output = Result<Vec<IgnoredEvent>, ConsoleError>> + Send;
    fn parked(&self) -> impl Future<Output = Result<Vec<ParkedView>, ConsoleError>> + Send;
    fn payouts(&self) -> impl Future<Output = Result<Vec<PayoutView>, ConsoleError>> + Send;
    fn health(&self) -> impl Future<Output = Result<HealthView, ConsoleError>> + Send;
    fn daily(&self) -> impl Future<Output = Result<Vec<DayTotals>, ConsoleError>> + Send;
    /// Send a parked message or dead letter back to its queue (`edited`: a corrected body),
    /// remove it from where it was, and audit it under `who`.
    fn replay(
        &self,
        id: &str,
        edited: Option<String>,
        who: &str,
    ) -> impl Future<Output = Result<Replayed, ConsoleError>> + Send;
    fn audit_log(
        &self,
    ) -> impl Future<Output = Result<Vec<super::ledger::AuditEntry>, ConsoleError>> + Send;
    /// Record an operator action that is not a replay (viewing a parked body, an export).
    fn audit(
        &self,
        who: &str,
        action: &str,
        target: &str,
    ) -> impl Future<Output = Result<(), ConsoleError>> + Send;
}

/// A reason with ids and numbers blanked: `"LB-pi_1-SO: item X9 not found"` and
/// `"LB-pi_2-SO: item X9 not found"` group together.
pub fn reason_group(reason: &str) -> String {
    reason
        .split_whitespace()
        .map(|w| {
            if w.chars().any(|c| c.is_ascii_digit()) || w.contains('_') {
                "…"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alike_reasons_group_together_and_different_ones_do_not() {
        let a = reason_group("LB-pi_1-SO: ERP rejected: item WIDGET9 not found");
        let b = reason_group("LB-pi_2-SO: ERP rejected: item WIDGET7 not found");
        let c = reason_group("LB-pi_2-SO: ERP rejected: period 2026-05 closed");
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn a_record_is_as_far_as_its_least_advanced_document() {
        let doc = |state| DocumentView {
            kind: "sales_order".into(),
            reference: "LB-pi_1-SO".into(),
            erp: None,
            erp_id: None,
            amount: None,
            customer: None,
            state,
            event_id: None,
            event_type: None,
            also: vec![],
            at_ms: 0,
        };
        let r = RecordView {
            stripe_id: "pi_1".into(),
            documents: vec![doc(DocState::Posted), doc(DocState::Parked("x".into()))],
            write_backs: vec![],
            at_ms: 0,
        };
        assert_eq!(r.state().label(), "parked");
    }
}
