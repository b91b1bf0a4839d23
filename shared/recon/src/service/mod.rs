//! The payout-reconciliation service (run by the payout-reconciliation Lambda through
//! `ledgerbridge_app::payout_reconciliation`, which tells its two triggers apart):
//!
//! * **SQS** (the reconciliation queue): intake messages of `payout.paid`, `payout.failed` and
//!   `payout.reconciliation_completed` forwarded by transform. Each names a payout.
//! * **EventBridge schedule**: a sweep lists the payouts that arrived in the last few days
//!   (`GET /v1/payouts?status=paid&arrival_date[gte]=…`, and failed ones), so a missed event is
//!   still reconciled.
//!
//! Per payout: the payout is read fresh from Stripe; its journal key
//! ([`journal_idempotency_key`]) is claimed in the idempotency store (a completed claim means
//! the journal was already queued: the event and the sweep, or two sweeps, post one journal);
//! [`reconcile`] folds the balance transactions into one balanced journal and a discrepancy
//! report; the journal goes to the commands queue as a `PostJournalEntry` command (erp-post
//! posts it effectively once and writes the ERP id back to the payout's metadata); the report
//! is stored ([`crate::report_store`]) and logged. A payout Stripe has not finished reconciling
//! is
//! retried later; no journal is built from partial data.

pub mod command;
pub mod config;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod hold_tests;

use crate::journal::LineKind;
use crate::report::{Discrepancy, DiscrepancyKind};
use crate::report_store::{fit, Deposit, JournalTotals, ReportRecord, ReportStatus, ReportStore};
use crate::{
    journal_idempotency_key, reconcile, DiscrepancyReport, JournalKind, NoBookedRates, ReconStatus,
    XrefSyncCheck,
};
use config::ReconFile;
use ledgerbridge_core::event::Event;
use ledgerbridge_core::ids::PayoutId;
use ledgerbridge_core::ports::{
    Claim, ClaimRequest, EventQueue, IdempotencyStore, QueueError, RecordOutcome, RecordStatus,
    XrefStore,
};
use ledgerbridge_core::Clock;
use ledgerbridge_core::Money;
use ledgerbridge_messages::IntakeMessage;
use ledgerbridge_messages::{CommandMessage, Source};
use ledgerbridge_stripe::{
    PayoutListQuery, StripeApi, StripeClient, StripeError, StripeList, StripePayout,
};
use serde::Serialize;
use serde_json::Value;
use std::time::{Duration, Instant};

/// The payout events this function acts on.
pub const PAYOUT_EVENTS: [&str; 3] = [
    "payout.paid",
    "payout.failed",
    "payout.reconciliation_completed",
];

/// What one payout came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum PayoutResult {
    /// The journal command is on the commands queue.
    Queued { reference: String },
    /// No journal; the report says why (manual payout, flagged failure).
    NeedsReview,
    /// This payout's journal was already queued (or reviewed) by an earlier run.
    AlreadyDone,
    /// Another run holds the claim right now.
    Busy,
    /// Not paid yet, or Stripe has not finished reconciling it: later.
    NotReady { reason: String },
    /// Nothing to book (a canceled payout).
    Skipped { reason: String },
    /// A transient failure (Stripe, store or queue): later.
    Retry { reason: String },
    /// A permanent failure: nothing posted, the report record holds the error.
    Failed { reason: String },
}

impl PayoutResult {
    /// How an SQS record ends: redelivered unless the payout is settled one way or another.
    /// A permanent failure is redelivered too, so it ends in the dead-letter queue (alarmed)
    /// rather than being dropped.
    pub fn record_outcome(&self) -> RecordOutcome {
        match self {
            PayoutResult::Queued { .. }
            | PayoutResult::NeedsReview
            | PayoutResult::AlreadyDone
            | PayoutResult::Skipped { .. } => RecordOutcome::Done,
            PayoutResult::Busy => RecordOutcome::Retry("another run holds the payout".into()),
            PayoutResult::NotReady { reason }
            | PayoutResult::Retry { reason }
            | PayoutResult::Failed { reason } => RecordOutcome::Retry(reason.clone()),
        }
    }
}

/// Counts of one scheduled sweep.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepSummary {
    pub listed: u64,
    pub queued: u64,
    pub needs_review: u64,
    pub already_done: u64,
    pub busy: u64,
    pub not_ready: u64,
    pub skipped: u64,
    pub retry: u64,
    pub failed: u64,
    /// The time budget ran out; the next run continues.
    pub stopped_early: bool,
    /// Listing failed (the payouts listed before the failure were processed).
    pub list_error: Option<String>,
}

impl SweepSummary {
    fn count(&mut self, r: &PayoutResult) {
        let slot = match r {
            PayoutResult::Queued { .. } => &mut self.queued,
            PayoutResult::NeedsReview => &mut self.needs_review,
            PayoutResult::AlreadyDone => &mut self.already_done,
            PayoutResult::Busy => &mut self.busy,
            PayoutResult::NotReady { .. } => &mut self.not_ready,
            PayoutResult::Skipped { .. } => &mut self.skipped,
            PayoutResult::Retry { .. } => &mut self.retry,
            PayoutResult::Failed { .. } => &mut self.failed,
        };
        *slot += 1;
    }
}

/// Everything the handler needs, built once per container.
pub struct Deps<Q, S, R, K, A = StripeClient> {
    /// Stripe, through the typed port (the client, or a test double).
    pub stripe: A,
    /// The commands queue (to erp-post).
    pub commands: Q,
    /// Claims (idempotency) and cross-references (sync check).
    pub store: S,
    pub reports: R,
    pub clock: K,
    pub file: ReconFile,
    /// Claim lease (a crashed run's claim may be taken over after it).
    pub lease_ms: i64,
    /// How long a completed claim counts, in seconds.
    pub claim_secs: i64,
    /// SQS records processed at once.
    pub concurrency: usize,
}

impl<Q, S, R, K, A> Deps<Q, S, R, K, A>
where
    Q: EventQueue,
    S: IdempotencyStore + XrefStore,
    R: ReportStore,
    K: Clock,
    A: StripeApi,
{
    /// One message of the reconciliation queue (an intake message of a payout event).
    pub async fn process_message(&self, body: &str) -> PayoutResult {
        let (source, payout_id) = match self.payout_of(body).await {
            Ok(Some(found)) => found,
            Ok(None) => {
                return PayoutResult::Skipped {
                    reason: "not a payout event".into(),
                }
            }
            Err(result) => return result,
        };
        let payout = match self
            .stripe
            .retrieve_payout(&PayoutId::new(payout_id.clone()))
            .await
        {
            Ok(p) => p,
            Err(e) => return stripe_failure(&e, "retrieve payout"),
        };
        self.reconcile_payout(&payout, source).await
    }

    /// The source event and payout id of an intake message; `Ok(None)` for other events.
    async fn payout_of(&self, body: &str) -> Result<Option<(Source, String)>, PayoutResult> {
        let unreadable = |what: String| {
            tracing::error!(alarm = "reconciliation_message_unreadable", reason = %what, "Reconciliation message cannot be read; it will reach the dead-letter queue");
            PayoutResult::Failed { reason: what }
        };
        let event = match IntakeMessage::decode(body) {
            Ok(IntakeMessage::StripeEventV1(m)) => {
                match serde_json::from_str::<Event>(m.event.get()) {
                    Ok(e) => e,
                    Err(e) => return Err(unreadable(format!("unreadable event: {e}"))),
                }
            }
            Ok(IntakeMessage::StripeEventRefV1(r)) => {
                if !PAYOUT_EVENTS.contains(&r.event_type.as_str()) {
                    return Ok(None);
                }
                let source = Source {
                    event_id: r.event_id.to_string(),
                    event_type: r.event_type.clone(),
                    created: r.created.unwrap_or(0),
                };
                if let Some(id) = r.object_id.as_deref().filter(|id| id.starts_with("po_")) {
                    return Ok(Some((source, id.to_owned())));
                }
                match self
                    .stripe
                    .retrieve_event(&r.event_id)
                    .await
                    .map_err(|e| stripe_failure(&e, "retrieve event"))
                {
                    Ok(e) => e,
                    Err(r) => return Err(r),
                }
            }
            Err(e) => return Err(unreadable(e.to_string())),
        };
        if !PAYOUT_EVENTS.contains(&event.event_type.as_str()) {
            tracing::info!(event_id = %event.id, event_type = %event.event_type, "Not a payout event; ignored");
            return Ok(None);
        }
        let object = &event.data.object;
        let id = object
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| id.starts_with("po_"));
        match id {
            Some(id) => Ok(Some((
                Source {
                    event_id: event.id.clone(),
                    event_type: event.event_type.clone(),
                    created: event.created,
                },
                id.to_owned(),
            ))),
            None => Err(unreadable(format!(
                "event {} carries no payout id",
                event.id
            ))),
        }
    }

    /// The scheduled sweep: every paid (and, per configuration, failed) payout that arrived in
    /// the window, reconciled unless already done.
    pub async fn sweep(&self, run_id: &str) -> SweepSummary {
        let started = Instant::now();
        let budget = Duration::from_secs(self.file.sweep.budget_secs);
        let now = self.clock.now_secs();
        let since = now.saturating_sub(self.file.sweep.days.saturating_mul(86_400));
        let mut summary = SweepSummary::default();
        let mut statuses = vec!["paid"];
        if self.file.sweep.include_failed {
            statuses.push("failed");
        }
        'statuses: for status in statuses {
            let mut after: Option<String> = None;
            for _ in 0..self.file.sweep.max_pages {
                let page = match self.list_payouts(status, since, after.as_deref()).await {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::error!(alarm = "payout_sweep_failed", status, error = %e, "Listing payouts failed; the next run retries");
                        summary.list_error = Some(e.to_string());
                        break 'statuses;
                    }
                };
                if let Some(cursor) = after.as_deref() {
                    if page.data.iter().any(|p| p.id == cursor) {
                        // The page after `cursor` holds `cursor` itself: the cursor did not
                        // advance, and paging on would list the same payouts forever.
                        let e = format!("Stripe answered the page after {cursor} with {cursor} in it again (the cursor did not advance)");
                        tracing::error!(alarm = "payout_sweep_failed", status, error = %e, "Listing payouts failed; the next run retries");
                        summary.list_error = Some(e);
                        break 'statuses;
                    }
                }
                for payout in &page.data {
                    if started.elapsed() >= budget {
                        summary.stopped_early = true;
                        break 'statuses;
                    }
                    summary.listed += 1;
                    let source = Source {
                        event_id: run_id.to_owned(),
                        event_type: "schedule.sweep".into(),
                        created: now,
                    };
                    let result = self.reconcile_payout(payout, source).await;
                    summary.count(&result);
                }
                match (page.has_more, page.data.last()) {
                    (true, Some(last)) => after = Some(last.id.clone()),
                    _ => continue 'statuses,
                }
            }
            tracing::warn!(
                status,
                pages = self.file.sweep.max_pages,
                "Sweep reached its page limit; older payouts wait for the next run"
            );
        }
        tracing::info!(
            run = %run_id,
            listed = summary.listed,
            queued = summary.queued,
            needs_review = summary.needs_review,
            already_done = summary.already_done,
            not_ready = summary.not_ready,
            retry = summary.retry,
            failed = summary.failed,
            stopped_early = summary.stopped_early,
            "Payout sweep finished"
        );
        summary
    }

    async fn list_payouts(
        &self,
        status: &str,
        since: i64,
        after: Option<&str>,
    ) -> Result<StripeList<StripePayout>, StripeError> {
        let query = PayoutListQuery {
            status: Some(status.to_owned()),
            arrival_date_gte: Some(since),
            limit: Some(100),
        };
        self.stripe.list_payouts(&query, after).await
    }

    /// Reconcile one payout at most once per journal kind and queue its journal.
    pub async fn reconcile_payout(&self, payout: &StripePayout, source: Source) -> PayoutResult {
        let result = self.reconcile_payout_inner(payout, &source).await;
        match &result {
            PayoutResult::Failed { reason } => {
                tracing::error!(alarm = "payout_reconciliation_failed", payout = %payout.id, trigger = %source.event_type, reason = %reason, "Payout reconciliation failed; nothing posted");
            }
            other => {
                tracing::info!(payout = %payout.id, trigger = %source.event_type, result = ?other, "Payout handled");
            }
        }
        result
    }

    async fn reconcile_payout_inner(&self, payout: &StripePayout, source: &Source) -> PayoutResult {
        let kind = match payout.status.as_str() {
            "paid" => JournalKind::Payout,
            "failed" => JournalKind::FailedPayoutReversal,
            "canceled" => {
                return PayoutResult::Skipped {
                    reason: "canceled payout: nothing reached the bank".into(),
                }
            }
            other => {
                return PayoutResult::NotReady {
                    reason: format!("payout is {other}"),
                }
            }
        };
        if payout.status == "paid"
            && payout.automatic
            && payout
                .reconciliation_status
                .as_deref()
                .is_some_and(|s| s != "completed")
        {
            return PayoutResult::NotReady {
                reason: format!(
                    "Stripe reconciliation {}",
                    payout.reconciliation_status.as_deref().unwrap_or_default()
                ),
            };
        }
        let id = PayoutId::new(payout.id.clone());
        let key = journal_idempotency_key(&id, &kind);
        let now_ms = self.clock.now_millis();
        let claim = ClaimRequest {
            key: key.clone(),
            payload_hash: payout.id.clone(),
            now_ms,
            lease_ms: self.lease_ms,
            expiration: now_ms.div_euclid(1000).saturating_add(self.claim_secs),
        };
        match self.store.claim(&claim).await {
            Ok(Claim::Acquired) => {}
            Ok(Claim::Existing(rec)) => {
                return match rec.status {
                    RecordStatus::Completed | RecordStatus::Ignored => PayoutResult::AlreadyDone,
                    RecordStatus::InProgress | RecordStatus::Parked => PayoutResult::Busy,
                }
            }
            Err(e) => {
                return PayoutResult::Retry {
                    reason: format!("claim: {e}"),
                }
            }
        }
        let result = self.reconcile_claimed(payout, &kind, source).await;
        let finish = match &result {
            PayoutResult::Queued { reference } => {
                Some((RecordStatus::Completed, reference.clone()))
            }
            PayoutResult::NeedsReview => Some((RecordStatus::Completed, "needs_review".into())),
            PayoutResult::Failed { reason } => Some((RecordStatus::Parked, reason.clone())),
            _ => None,
        };
        let done = match finish {
            Some((status, text)) => self.store.complete(&key, status, Some(text)).await,
            None => self.store.release(&key).await,
        };
        match done {
            Ok(()) => result,
            // The journal is queued but the claim could not be closed: a retry may queue it
            // again, which erp-post absorbs (the reference is cross-referenced once).
            Err(e) => PayoutResult::Retry {
                reason: format!("closing the claim: {e}"),
            },
        }
    }

    async fn reconcile_claimed(
        &self,
        payout: &StripePayout,
        kind: &JournalKind,
        source: &Source,
    ) -> PayoutResult {
        let failed = *kind == JournalKind::FailedPayoutReversal;
        let sync = XrefSyncCheck {
            store: &self.store,
            doc_kinds: self.file.sync_check.clone(),
        };
        let outcome = match reconcile(
            &self.stripe,
            payout,
            &self.file.mapping,
            &NoBookedRates,
            &sync,
        )
        .await
        {
            Ok(o) => o,
            Err(e) if e.is_retriable() => {
                return match e {
                    crate::ReconError::NotReady { .. } => PayoutResult::NotReady {
                        reason: e.to_string(),
                    },
                    other => PayoutResult::Retry {
                        reason: other.to_string(),
                    },
                }
            }
            Err(e) => {
                let reason = e.to_string();
                let report = DiscrepancyReport::new(PayoutId::new(payout.id.clone()));
                return self
                    .failed_with_report(payout, failed, source, report, reason)
                    .await;
            }
        };
        let mut report = outcome.report;
        let held = outcome.journal.as_ref().and_then(|journal| {
            let variance: i64 = journal
                .lines()
                .iter()
                .filter(|l| l.kind == LineKind::Variance)
                .fold(0i64, |acc, l| acc.saturating_add(l.signed_minor()));
            self.file
                .posting
                .variance_hold(variance, payout.amount_money())
                .map(|why| (why, variance))
        });
        if let Some((why, variance)) = held {
            // Held, not posted: the report names the variance, the journal is not queued.
            tracing::error!(alarm = "payout_variance_held", payout = %payout.id, reason = %why, "Payout journal held for review: its variance is above the threshold");
            report.push(Discrepancy {
                kind: DiscrepancyKind::VarianceHeld,
                balance_transaction: None,
                source: None,
                category: None,
                amount: Some(Money::new(variance, payout.currency)),
                detail: format!(
                    "journal held for review, not posted: {why}; find the difference, then post the journal by hand or raise the threshold and reconcile again"
                ),
            });
            let record = self.record(
                payout,
                failed,
                source,
                ReportStatus::NeedsReview,
                None,
                None,
                None,
                report,
            );
            return match self.put(record).await {
                Ok(()) => PayoutResult::NeedsReview,
                Err(r) => r,
            };
        }
        match (outcome.status, outcome.journal) {
            (ReconStatus::Journal, Some(journal)) => {
                ledgerbridge_core::metrics::PayoutVariance {
                    currency: journal.currency.code(),
                    variance_minor: journal
                        .lines()
                        .iter()
                        .filter(|l| l.kind == crate::journal::LineKind::Variance)
                        .fold(0_i64, |sum, l| sum.saturating_add(l.signed_minor())),
                }
                .emit();
                let cmd = match command::journal_command(
                    &journal,
                    payout,
                    &self.file.posting,
                    source.clone(),
                ) {
                    Ok(c) => c,
                    Err(e) => {
                        return self
                            .failed_with_report(payout, failed, source, report, e.to_string())
                            .await
                    }
                };
                let reference = cmd.command.reference().full();
                let totals = match &cmd.command {
                    ledgerbridge_erp::ErpCommand::PostJournalEntry(j) => {
                        j.totals().ok().map(|(d, c)| JournalTotals {
                            currency: j.currency.code().to_owned(),
                            debit_minor: d.minor,
                            credit_minor: c.minor,
                            lines: j.lines.len(),
                        })
                    }
                    _ => None,
                };
                let journal_lines = match &cmd.command {
                    ledgerbridge_erp::ErpCommand::PostJournalEntry(j) => j.lines.clone(),
                    _ => Vec::new(),
                };
                let msg = CommandMessage::ErpCommandV1(Box::new(cmd));
                let text = match msg.encode() {
                    Ok(t) => t,
                    Err(e) => {
                        return self
                            .failed_with_report(payout, failed, source, report, e.to_string())
                            .await
                    }
                };
                match self.commands.send(text, Some(&msg.group())).await {
                    Ok(_) => {}
                    Err(e @ QueueError::TooLarge { .. }) => {
                        let reason =
                            format!("{e}; use detail = \"summary\" or lines = \"per_account\"");
                        return self
                            .failed_with_report(payout, failed, source, report, reason)
                            .await;
                    }
                    Err(e) => {
                        return PayoutResult::Retry {
                            reason: format!("commands queue: {e}"),
                        }
                    }
                }
                let mut record = self.record(
                    payout,
                    failed,
                    source,
                    ReportStatus::JournalQueued,
                    Some(reference.clone()),
                    totals,
                    None,
                    report,
                );
                record.lines = journal_lines;
                match self.put(record).await {
                    Ok(()) => PayoutResult::Queued { reference },
                    Err(r) => r,
                }
            }
            (_, _) => {
                let record = self.record(
                    payout,
                    failed,
                    source,
                    ReportStatus::NeedsReview,
                    None,
                    None,
                    None,
                    report,
                );
                match self.put(record).await {
                    Ok(()) => PayoutResult::NeedsReview,
                    Err(r) => r,
                }
            }
        }
    }

    async fn failed_with_report(
        &self,
        payout: &StripePayout,
        failed: bool,
        source: &Source,
        report: DiscrepancyReport,
        reason: String,
    ) -> PayoutResult {
        let record = self.record(
            payout,
            failed,
            source,
            ReportStatus::Failed,
            None,
            None,
            Some(reason.clone()),
            report,
        );
        match self.put(record).await {
            Ok(()) => PayoutResult::Failed { reason },
            Err(r) => r,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        payout: &StripePayout,
        failed: bool,
        source: &Source,
        status: ReportStatus,
        journal_reference: Option<String>,
        totals: Option<JournalTotals>,
        error: Option<String>,
        report: DiscrepancyReport,
    ) -> ReportRecord {
        // `to_csv` writes to memory; it cannot fail on these strings, but never panic.
        let csv = report.to_csv().unwrap_or_default();
        ReportRecord {
            key: ReportRecord::key_for(&payout.id, failed),
            payout: payout.id.clone(),
            status,
            journal_reference,
            totals,
            trigger: source.event_type.clone(),
            error,
            updated_at_ms: self.clock.now_millis(),
            report,
            csv,
            deposit: Some(Deposit {
                currency: payout.currency.code().to_owned(),
                amount_minor: payout.amount,
                arrival_date: payout.arrival_date,
            }),
            lines: Vec::new(),
        }
    }

    async fn put(&self, record: ReportRecord) -> Result<(), PayoutResult> {
        let record = fit(record).map_err(|e| PayoutResult::Retry {
            reason: format!("report: {e}"),
        })?;
        tracing::info!(
            payout = %record.payout,
            report = %record.key,
            status = ?record.status,
            discrepancies = record.report.entries.len() as u64 + record.report.omitted,
            "Discrepancy report stored"
        );
        self.reports
            .put_report(&record)
            .await
            .map_err(|e| PayoutResult::Retry {
                reason: format!("report store: {e}"),
            })
    }
}

fn stripe_failure(e: &StripeError, what: &str) -> PayoutResult {
    if e.is_retriable() {
        PayoutResult::Retry {
            reason: format!("{what}: {e}"),
        }
    } else {
        PayoutResult::Failed {
            reason: format!("{what}: {e}"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_settled_payouts_leave_the_queue() {
        assert_eq!(
            PayoutResult::AlreadyDone.record_outcome(),
            RecordOutcome::Done
        );
        assert!(matches!(
            PayoutResult::NotReady { reason: "x".into() }.record_outcome(),
            RecordOutcome::Retry(_)
        ));
        assert!(matches!(
            PayoutResult::Failed { reason: "x".into() }.record_outcome(),
            RecordOutcome::Retry(_)
        ));
        assert!(matches!(
            PayoutResult::Busy.record_outcome(),
            RecordOutcome::Retry(_)
        ));
    }
}
