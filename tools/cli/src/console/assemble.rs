//! The console's views assembled from what an adapter read (activity, cross-references,
//! intent records, waiting and parked messages, payout reports): the same rules for the
//! embedded adapter (the data directory) and the AWS one (the stack's table and queues).

use super::ledger::{command_amount, command_customer, Activity};
use super::model::*;
use ledgerbridge_core::{Currency, Money};
use ledgerbridge_erp::{DocKind, ErpConnector, ExternalRef, LedgerState, Side};
use ledgerbridge_messages::{CommandMessage, ErpCommandV1};
use ledgerbridge_recon::report_store::{ReportRecord, ReportStatus};
use ledgerbridge_recon::ReconMapping;
use std::collections::BTreeMap;

/// One cross-reference: a document in the ERP, a write-back (`writeback#{key}`) or a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XrefRow {
    pub stripe_id: String,
    pub kind: String,
    pub erp: String,
    pub erp_id: String,
    pub at_ms: i64,
    /// The amount posted, when the record keeps it.
    pub amount: Option<Money>,
}

/// One intent record: (key without the table's prefix, status, result).
pub type IntentRow = (String, String, Option<String>);

/// (stripe id, metadata key, value): one write-back.
pub type WriteBackRow = (String, String, String);

/// `LB-{stripe id}-{code}` → (stripe id, kind).
pub fn parse_reference(reference: &str) -> Option<(String, DocKind)> {
    let rest = reference.strip_prefix("LB-")?;
    let (id, code) = rest.rsplit_once('-')?;
    let kind = DocKind::ALL.into_iter().find(|k| k.code() == code)?;
    Some((id.to_owned(), kind))
}

/// Whether an activity row is a posted (or found posted) document, not a parked outcome.
pub fn is_posted(a: &Activity) -> bool {
    a.outcome != ledgerbridge_app::activity::PARKED
}

/// Every document: posted (activity, then cross-references the activity does not know),
/// parked or in progress (intent records), waiting (`waiting`, already as documents), and
/// parked or dead-lettered commands (`parked`).
pub fn documents(
    activity: Vec<Activity>,
    xrefs: &[XrefRow],
    intents: &[IntentRow],
    waiting: Vec<DocumentView>,
    parked: &[ParkedView],
) -> (Vec<DocumentView>, Vec<WriteBackRow>) {
    let mut docs: Vec<DocumentView> = Vec::new();
    let mut write_backs = Vec::new();
    // Posted, from the activity (event, amount).
    for a in activity.into_iter().filter(is_posted) {
        // The same document found posted by a later event (a payment reported by two
        // events): one document, both events.
        if let Some(d) = docs.iter_mut().find(|d| {
            d.reference == a.reference
                && d.erp_id.as_deref() == Some(a.erp_id.as_str())
                && d.kind != "customer"
        }) {
            if d.event_id.as_deref() != Some(a.event_id.as_str())
                && !d.also.iter().any(|(id, _)| *id == a.event_id)
            {
                d.also.push((a.event_id, a.event_type));
            }
            continue;
        }
        docs.push(DocumentView {
            kind: a.kind,
            reference: a.reference,
            erp: Some(a.erp),
            erp_id: Some(a.erp_id),
            amount: a.amount,
            customer: a.customer,
            state: DocState::Posted,
            event_id: Some(a.event_id),
            event_type: Some(a.event_type),
            also: Vec::new(),
            at_ms: a.at_ms,
        });
    }
    // Posted before the activity knew it (or linked): the cross-references.
    for x in xrefs {
        if let Some(key) = x.kind.strip_prefix("writeback#") {
            write_backs.push((x.stripe_id.clone(), key.to_owned(), x.erp_id.clone()));
            continue;
        }
        // Other cross-references (customer links, reverse links) are not documents.
        let Some(kind) = DocKind::ALL.into_iter().find(|k| k.as_str() == x.kind) else {
            continue;
        };
        let known = docs.iter().any(|d| {
            d.kind == x.kind
                && parse_reference(&d.reference).is_some_and(|(id, _)| id == x.stripe_id)
        });
        if !known {
            docs.push(DocumentView {
                kind: x.kind.clone(),
                reference: format!("LB-{}-{}", x.stripe_id, kind.code()),
                erp: Some(x.erp.clone()),
                erp_id: Some(x.erp_id.clone()),
                amount: x.amount,
                customer: None,
                state: DocState::Posted,
                event_id: None,
                event_type: None,
                also: Vec::new(),
                at_ms: x.at_ms,
            });
        }
    }
    // Parked or in progress, from the intent records (`post#{erp}#{reference}`).
    for (key, status, result) in intents {
        let Some(rest) = key.strip_prefix("post#") else {
            continue;
        };
        let (erp, rest) = rest.split_once('#').unwrap_or((rest, ""));
        if rest.ends_with("#resolve") {
            continue;
        }
        let reference = rest.split('#').next().unwrap_or(rest).to_owned();
        let state = match status.as_str() {
            "PARKED" => DocState::Parked(result.clone().unwrap_or_default()),
            "INPROGRESS" => DocState::InProgress,
            _ => continue,
        };
        if docs
            .iter()
            .any(|d| d.reference == reference && d.state == DocState::Posted)
        {
            continue;
        }
        let kind = parse_reference(&reference)
            .map(|(_, k)| k.as_str().to_owned())
            .unwrap_or_default();
        docs.push(DocumentView {
            kind,
            reference,
            erp: Some(erp.to_owned()),
            erp_id: None,
            amount: None,
            customer: None,
            state,
            event_id: None,
            event_type: None,
            also: Vec::new(),
            at_ms: 0,
        });
    }
    for w in waiting {
        upsert(&mut docs, w);
    }
    // Parked by erp-post, or dead-lettered on the commands queue: the message says what.
    for p in parked {
        let Some(body) = &p.body else { continue };
        if p.target.as_deref() != Some("commands") {
            continue;
        }
        if let Ok(CommandMessage::ErpCommandV1(msg)) = CommandMessage::decode(body) {
            let state = if p.queue == "parked" {
                DocState::Parked(p.reason.clone())
            } else {
                DocState::DeadLetter(p.reason.clone())
            };
            upsert(&mut docs, command_doc(&msg, state, p.at_ms));
        }
    }
    (docs, write_backs)
}

/// Add `doc`, or fill in what an entry for the same reference lacks (a parked intent gets
/// the message's amount and event).
fn upsert(docs: &mut Vec<DocumentView>, doc: DocumentView) {
    if let Some(d) = docs.iter_mut().find(|d| d.reference == doc.reference) {
        if d.state == DocState::Posted {
            return;
        }
        d.amount = d.amount.or(doc.amount);
        d.customer = d.customer.take().or(doc.customer);
        d.event_id = d.event_id.take().or(doc.event_id);
        d.event_type = d.event_type.take().or(doc.event_type);
        if d.at_ms == 0 {
            d.at_ms = doc.at_ms;
        }
        if matches!(d.state, DocState::InProgress) || doc.state > d.state {
            d.state = doc.state;
        }
        return;
    }
    docs.push(doc);
}

/// A command message as a document in `state`.
pub fn command_doc(msg: &ErpCommandV1, state: DocState, at_ms: i64) -> DocumentView {
    DocumentView {
        kind: msg.command.kind().as_str().to_owned(),
        reference: msg.command.reference().full(),
        erp: None,
        erp_id: None,
        amount: command_amount(&msg.command),
        customer: command_customer(msg),
        state,
        event_id: Some(msg.source.event_id.clone()),
        event_type: Some(msg.source.event_type.clone()),
        also: Vec::new(),
        at_ms,
    }
}

/// Documents grouped by their Stripe object, newest first.
pub fn records(docs: Vec<DocumentView>, write_backs: Vec<WriteBackRow>) -> Vec<RecordView> {
    let mut by_object: BTreeMap<String, RecordView> = BTreeMap::new();
    for d in docs {
        let id = parse_reference(&d.reference)
            .map(|(id, _)| id)
            .unwrap_or_else(|| d.reference.clone());
        let r = by_object.entry(id.clone()).or_insert_with(|| RecordView {
            stripe_id: id,
            documents: Vec::new(),
            write_backs: Vec::new(),
            at_ms: 0,
        });
        r.at_ms = r.at_ms.max(d.at_ms);
        r.documents.push(d);
    }
    for (stripe_id, key, value) in write_backs {
        if let Some(r) = by_object.get_mut(&stripe_id) {
            r.write_backs.push((key, value));
        }
    }
    let mut out: Vec<RecordView> = by_object.into_values().collect();
    out.sort_by(|a, b| b.at_ms.cmp(&a.at_ms).then(a.stripe_id.cmp(&b.stripe_id)));
    out
}

/// Each payout report against its journal's document and the bank deposit.
pub fn payouts(
    reports: Vec<ReportRecord>,
    docs: &[DocumentView],
    mapping: Option<&ReconMapping>,
) -> Vec<PayoutView> {
    let mut out = Vec::new();
    for r in reports {
        let currency = r
            .deposit
            .as_ref()
            .and_then(|d| Currency::parse(&d.currency).ok())
            .or_else(|| {
                r.totals
                    .as_ref()
                    .and_then(|t| Currency::parse(&t.currency).ok())
            });
        let deposit = match (&r.deposit, currency) {
            (Some(d), Some(c)) => Some(Money::new(d.amount_minor, c)),
            _ => None,
        };
        let journal = r
            .journal_reference
            .as_ref()
            .and_then(|j| docs.iter().find(|d| &d.reference == j));
        let journal_state = match (&r.journal_reference, journal) {
            (Some(_), Some(d)) => Some(d.state.clone()),
            (Some(_), None) => Some(DocState::Waiting(
                "queued; not yet taken by the post stage".into(),
            )),
            (None, _) => None,
        };
        let lines: Vec<LineView> = r
            .lines
            .iter()
            .map(|l| LineView {
                account: l.gl_account.clone(),
                debit: (l.side == Side::Debit).then_some(l.amount),
                credit: (l.side == Side::Credit).then_some(l.amount),
                memo: l.memo.clone(),
            })
            .collect();
        let net = |accounts: &[&str]| -> Option<Money> {
            let c = currency?;
            let mut total = Money::new(0, c);
            for l in &r.lines {
                if accounts.contains(&l.gl_account.as_str()) {
                    total = match l.side {
                        Side::Debit => total.checked_add(l.amount).ok()?,
                        Side::Credit => total.checked_sub(l.amount).ok()?,
                    };
                }
            }
            Some(total)
        };
        let (bank_line, variance_booked, fees) = match (mapping, r.lines.is_empty()) {
            (Some(m), false) => {
                let mut fee_accounts: Vec<&str> =
                    m.fee_accounts.values().map(String::as_str).collect();
                fee_accounts.push(&m.default_fee_account);
                (
                    net(&[&m.bank_account]),
                    net(&[&m.variance_account]),
                    net(&fee_accounts),
                )
            }
            _ => (None, None, None),
        };
        let variance = match (deposit, bank_line, r.status) {
            (Some(d), Some(b), ReportStatus::JournalQueued) if !r.key.ends_with("#failed") => {
                d.checked_sub(b).ok()
            }
            _ => None,
        };
        out.push(PayoutView {
            payout: r.payout.clone(),
            report_key: r.key.clone(),
            reconciliation: match r.status {
                ReportStatus::JournalQueued => "journal queued",
                ReportStatus::NeedsReview => "needs review (no journal)",
                ReportStatus::Failed => "failed (nothing posted)",
            }
            .to_owned(),
            deposit,
            arrival_date: r.deposit.as_ref().map(|d| d.arrival_date).unwrap_or(0),
            journal_reference: r.journal_reference.clone(),
            journal_erp_id: journal.and_then(|d| d.erp_id.clone()),
            journal_state,
            journal_ledger: None,
            lines,
            bank_line,
            variance,
            variance_booked,
            fees,
            discrepancies: r.report.entries.clone(),
            omitted: r.report.omitted,
            error: r.error.clone(),
            csv: r.csv.clone(),
            updated_at_ms: r.updated_at_ms,
        });
    }
    out
}

/// Read each posted payout journal's state in the ERP's ledger (`erp`: a connector built from
/// the ERP settings the console was given), as the page's label. Nothing is guessed: without a
/// connector, or when the connector cannot say, the label is "not read" with the reason.
pub async fn read_ledger<C: ErpConnector>(payouts: &mut [PayoutView], erp: Option<&C>) {
    for p in payouts.iter_mut() {
        let (Some(reference), Some(erp_id)) = (&p.journal_reference, &p.journal_erp_id) else {
            continue;
        };
        let Some(c) = erp else {
            p.journal_ledger = Some(
                "not read: the console was not given the ERP's settings (--erp-settings)".into(),
            );
            continue;
        };
        let Some(external) = parse_reference(reference).and_then(|(id, kind)| {
            ExternalRef::new(&ledgerbridge_core::ids::StripeObjectId::new(id), kind).ok()
        }) else {
            p.journal_ledger = Some(format!("not read: {reference} is not a journal reference"));
            continue;
        };
        let erp_id = ledgerbridge_core::ids::ErpDocumentId::new(erp_id.clone());
        p.journal_ledger = Some(match c.journal_state(&external, &erp_id).await {
            Ok(LedgerState::Posted) => "posted to the ledger".into(),
            Ok(LedgerState::Entered) => "entered, not posted".into(),
            Ok(LedgerState::Missing) => "not in the ERP".into(),
            Ok(LedgerState::NotRead(why)) => format!("not read: {why}"),
            Err(e) => format!("not read: {e}"),
        });
    }
}

fn day_of(ms: i64) -> String {
    ledgerbridge_erp::ErpDate::from_unix(ms.div_euclid(1000))
        .map(|d| d.as_str().to_owned())
        .unwrap_or_default()
}

/// Volume (cash receipts), refunds (credit memos), disputes (dispute journals) per day from
/// the posted activity, and fees from the payout journals.
pub fn daily(activity: &[Activity], payouts: &[PayoutView]) -> Vec<DayTotals> {
    let mut days: BTreeMap<(String, String), DayTotals> = BTreeMap::new();
    let mut add = |day: String, m: Money, field: fn(&mut DayTotals) -> &mut i64| {
        let key = (day.clone(), m.currency.code().to_owned());
        let t = days.entry(key).or_insert_with(|| DayTotals {
            day,
            currency: m.currency.code().to_owned(),
            ..DayTotals::default()
        });
        let slot = field(t);
        *slot = slot.saturating_add(m.minor);
    };
    for a in activity.iter().filter(|a| is_posted(a)) {
        let Some(m) = a.amount else { continue };
        let day = day_of(a.at_ms);
        match a.kind.as_str() {
            "cash_receipt" => add(day, m, |t| &mut t.volume_minor),
            "credit_memo" => add(day, m, |t| &mut t.refunds_minor),
            "journal_entry" if a.event_type.starts_with("charge.dispute") => {
                add(day, m, |t| &mut t.disputes_minor)
            }
            _ => {}
        }
    }
    for p in payouts {
        if let Some(f) = p.fees {
            let day = if p.arrival_date > 0 {
                day_of(p.arrival_date.saturating_mul(1000))
            } else {
                day_of(p.updated_at_ms)
            };
            add(day, f, |t| &mut t.fees_minor);
        }
    }
    days.into_values().collect()
}

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// Outcomes over the window ending at `now`: `posted` (documents posted or found posted) and
/// `failed` (parked or dead-lettered), by the time each happened.
pub fn error_rate(posted_ms: &[i64], failed_ms: &[i64], now_ms: i64, window_ms: i64) -> ErrorRate {
    let within = |t: &&i64| **t <= now_ms && now_ms - **t < window_ms;
    let posted = posted_ms.iter().filter(within).count();
    let failed = failed_ms.iter().filter(within).count();
    let total = posted + failed;
    ErrorRate {
        window_ms,
        posted,
        failed,
        permille: (total > 0).then(|| (failed as u64).saturating_mul(1000) / total as u64),
    }
}

/// When each outcome happened: posted documents (activity) and failures (parked outcomes of
/// erp-post from the activity; dead letters, and parked messages of the other stages, from
/// the queues — erp-post's parked messages are in the activity already).
pub fn outcome_times(activity: &[Activity], parked: &[ParkedView]) -> (Vec<i64>, Vec<i64>) {
    let posted = activity
        .iter()
        .filter(|a| is_posted(a))
        .map(|a| a.at_ms)
        .collect();
    let mut failed: Vec<i64> = activity
        .iter()
        .filter(|a| !is_posted(a))
        .map(|a| a.at_ms)
        .collect();
    failed.extend(
        parked
            .iter()
            .filter(|p| p.queue != "parked" || p.stage != "erp-post")
            .map(|p| p.at_ms),
    );
    (posted, failed)
}

/// The last successful post per ERP.
pub fn last_post(activity: &[Activity], xrefs: &[XrefRow]) -> Vec<(String, i64)> {
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    for a in activity.iter().filter(|a| is_posted(a)) {
        let e = last.entry(a.erp.clone()).or_insert(0);
        *e = (*e).max(a.at_ms);
    }
    for x in xrefs {
        let e = last.entry(x.erp.clone()).or_insert(0);
        *e = (*e).max(x.at_ms);
    }
    last.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_rate_counts_failures_among_all_outcomes_of_the_window() {
        let now = 10 * DAY_MS;
        let posted = [
            now - 1_000,
            now - 2 * HOUR_MS,
            now - 3 * HOUR_MS,
            now - 2 * DAY_MS,
        ];
        let failed = [now - 5_000, now - 5 * HOUR_MS];
        let hour = error_rate(&posted, &failed, now, HOUR_MS);
        assert_eq!((hour.posted, hour.failed), (1, 1));
        assert_eq!(hour.permille, Some(500));
        let day = error_rate(&posted, &failed, now, DAY_MS);
        assert_eq!((day.posted, day.failed), (3, 2));
        assert_eq!(day.permille, Some(400));
        // Nothing happened: no rate, not 0 %.
        assert_eq!(error_rate(&[], &[], now, HOUR_MS).permille, None);
        // Only failures: 100 %. Outcomes stamped after `now` (a clock ahead) are not counted.
        assert_eq!(
            error_rate(&[now + 10], &failed, now, HOUR_MS).permille,
            Some(1000)
        );
    }

    fn act(outcome: &str, at_ms: i64) -> Activity {
        Activity {
            at_ms,
            event_id: "evt_1".into(),
            event_type: "payment_intent.succeeded".into(),
            stripe_id: "pi_1".into(),
            kind: "cash_receipt".into(),
            reference: "LB-pi_1-CR".into(),
            erp: "epicor".into(),
            erp_id: String::new(),
            customer: None,
            amount: None,
            outcome: outcome.into(),
        }
    }

    fn parked(queue: &str, stage: &str, at_ms: i64) -> ParkedView {
        ParkedView {
            id: format!("{queue}:m"),
            queue: queue.into(),
            stage: stage.into(),
            reason: "r".into(),
            group: "g".into(),
            body: None,
            target: None,
            at_ms,
            receive_count: 0,
            subject: String::new(),
        }
    }

    #[test]
    fn erp_post_parks_are_counted_once_and_other_failures_from_the_queues() {
        let activity = [
            act("created", 1),
            act("already posted", 2),
            act("parked", 3),
        ];
        let queued = [
            parked("parked", "erp-post", 3),
            parked("parked", "transform", 4),
            parked("commands", "dead letter", 5),
        ];
        let (posted, failed) = outcome_times(&activity, &queued);
        assert_eq!(posted, vec![1, 2]);
        assert_eq!(failed, vec![3, 4, 5]);
        let r = error_rate(&posted, &failed, 10, HOUR_MS);
        assert_eq!(r.permille, Some(600));
    }
}
