//! The console's embedded adapter: reads the data directory of `ledgerbridge local` or `serve`
//! (the state store, the durable queues, the report store and the console's own file) and
//! replays parked messages and dead letters onto the durable queues. It opens its own
//! connections, so it runs inside the process or beside it (`ledgerbridge console
//! --data-dir`): SQLite serialises the writes and the workers pick replayed messages up on
//! their next poll.

use super::assemble::{self, XrefRow};
use super::ledger::{now_ms, AuditEntry, ConsoleDb};
use super::model::*;
use crate::local::{QUEUES, REPORTS_FILE};
use ledgerbridge_adapters::embedded::{DeadLetter, DurableQueueSettings, SqliteQueue};
use ledgerbridge_core::ids::MessageId;
use ledgerbridge_core::ports::{EventQueue, StoreError};
use ledgerbridge_messages::{CommandMessage, IntakeMessage, ParkedV1};
use ledgerbridge_recon::report_store::ReportRecord;
use ledgerbridge_recon::ReconMapping;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The state store's file in the data directory.
pub const STATE_FILE: &str = "ledgerbridge.sqlite";

/// The console over a data directory.
pub struct Embedded {
    dir: PathBuf,
    state: Mutex<Connection>,
    reports: Mutex<Connection>,
    queues: Vec<(&'static str, SqliteQueue)>,
    db: ConsoleDb,
    recon: Option<Arc<ReconMapping>>,
    erp: Option<Arc<ledgerbridge_erp::AnyConnector>>,
}

fn st(e: rusqlite::Error) -> ConsoleError {
    ConsoleError::Store(StoreError::Unavailable(e.to_string()))
}

fn lock<T>(m: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>, ConsoleError> {
    m.lock()
        .map_err(|_| ConsoleError::Store(StoreError::Unavailable("console lock poisoned".into())))
}

impl Embedded {
    /// Open the data directory's files. `recon` (the reconciliation mapping) names the bank,
    /// variance and fee accounts of the payout view; without it those figures are not shown.
    pub fn open(dir: &Path, recon: Option<ReconMapping>) -> Result<Self, ConsoleError> {
        if !dir.join(STATE_FILE).is_file() {
            return Err(ConsoleError::NoData(dir.to_path_buf()));
        }
        let open = |p: PathBuf| -> Result<Connection, ConsoleError> {
            let c = Connection::open(p).map_err(st)?;
            c.execute_batch("PRAGMA busy_timeout=5000;").map_err(st)?;
            Ok(c)
        };
        let state = open(dir.join(STATE_FILE))?;
        let reports = open(dir.join(REPORTS_FILE))?;
        reports
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS payout_reports (
                     key TEXT PRIMARY KEY, payout TEXT NOT NULL, status TEXT NOT NULL,
                     updated_at_ms INTEGER NOT NULL, record TEXT NOT NULL, csv TEXT NOT NULL);",
            )
            .map_err(st)?;
        let mut queues = Vec::new();
        for name in QUEUES {
            // Settings matter only to receiving, which the console never does.
            let q = SqliteQueue::open(
                &dir.join(format!("queue-{name}.sqlite")),
                DurableQueueSettings::default(),
            )?;
            queues.push((name, q));
        }
        Ok(Embedded {
            dir: dir.to_path_buf(),
            state: Mutex::new(state),
            reports: Mutex::new(reports),
            queues,
            db: ConsoleDb::open(dir)?,
            recon: recon.map(Arc::new),
            erp: None,
        })
    }

    /// Read payout journals' posting state from the ERP through `erp`.
    pub fn with_erp(mut self, erp: ledgerbridge_erp::AnyConnector) -> Self {
        self.erp = Some(Arc::new(erp));
        self
    }

    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    fn queue(&self, name: &str) -> Option<&SqliteQueue> {
        self.queues.iter().find(|(n, _)| *n == name).map(|(_, q)| q)
    }

    /// Every cross-reference.
    fn xrefs(&self) -> Result<Vec<XrefRow>, ConsoleError> {
        let c = lock(&self.state)?;
        let mut stmt = c
            .prepare("SELECT stripe_id, doc_kind, erp, erp_id, created_at_ms FROM xref")
            .map_err(st)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(XrefRow {
                    stripe_id: r.get(0)?,
                    kind: r.get(1)?,
                    erp: r.get(2)?,
                    erp_id: r.get(3)?,
                    at_ms: r.get(4)?,
                    amount: None,
                })
            })
            .map_err(st)?;
        rows.collect::<Result<_, _>>().map_err(st)
    }

    /// (key, status, result) of the idempotency records whose key starts with `prefix`.
    fn intents(&self, prefix: &str) -> Result<Vec<(String, String, Option<String>)>, ConsoleError> {
        let c = lock(&self.state)?;
        let mut stmt = c
            .prepare("SELECT key, status, result FROM idempotency WHERE key LIKE ?1 || '%'")
            .map_err(st)?;
        let rows = stmt
            .query_map([prefix], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(st)?;
        rows.collect::<Result<_, _>>().map_err(st)
    }

    fn report_records(&self) -> Result<Vec<ReportRecord>, ConsoleError> {
        let c = lock(&self.reports)?;
        let mut stmt = c
            .prepare("SELECT key, record FROM payout_reports ORDER BY updated_at_ms DESC")
            .map_err(st)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(st)?;
        let mut out = Vec::new();
        for row in rows {
            let (key, json) = row.map_err(st)?;
            match serde_json::from_str::<ReportRecord>(&json) {
                Ok(r) => out.push(r),
                Err(e) => tracing::warn!(key = %key, error = %e, "Unreadable report skipped"),
            }
        }
        Ok(out)
    }

    /// Every parked message and dead letter, oldest first.
    fn parked_items(&self) -> Result<Vec<ParkedView>, ConsoleError> {
        let mut out = Vec::new();
        for (name, q) in &self.queues {
            for d in q.dead_letters()? {
                out.push(parked_view(name, &d));
            }
        }
        out.sort_by_key(|p| p.at_ms);
        Ok(out)
    }

    fn documents(&self) -> Result<(Vec<DocumentView>, Vec<assemble::WriteBackRow>), ConsoleError> {
        // Waiting on the commands queue.
        let mut waiting = Vec::new();
        if let Some(q) = self.queue("commands") {
            for p in q.pending(10_000)? {
                if let Ok(CommandMessage::ErpCommandV1(msg)) = CommandMessage::decode(&p.body) {
                    let reason = p
                        .last_error
                        .clone()
                        .unwrap_or_else(|| "queued for the ERP".into());
                    waiting.push(assemble::command_doc(
                        &msg,
                        DocState::Waiting(reason),
                        p.sent_ms,
                    ));
                }
            }
        }
        Ok(assemble::documents(
            self.db.activity()?,
            &self.xrefs()?,
            &self.intents("post#")?,
            waiting,
            &self.parked_items()?,
        ))
    }

    fn mapping(&self) -> Option<&ReconMapping> {
        self.recon.as_deref()
    }
}

/// What a dead letter is, and where a replay sends it.
fn parked_view(queue: &str, d: &DeadLetter) -> ParkedView {
    describe(
        queue,
        d.id.as_str(),
        &d.body,
        &d.reason,
        d.dead_at_ms,
        d.receive_count,
    )
}

/// A parked message (`queue == "parked"`) or a dead letter of `queue`: its stage, reason,
/// subject, and the queue a replay sends it to (for the embedded and the AWS adapters).
pub(crate) fn describe(
    queue: &str,
    id: &str,
    raw: &str,
    dead_reason: &str,
    at_ms: i64,
    receive_count: u32,
) -> ParkedView {
    let strip = |r: &str| r.strip_prefix("parked: ").unwrap_or(r).to_owned();
    let (stage, reason, body, target, subject) = if queue == "parked" {
        match serde_json::from_str::<ParkedV1>(raw) {
            Ok(p) => {
                let target = match p.stage.as_str() {
                    "transform" => Some("events"),
                    "erp-post" => Some("commands"),
                    "erp-sync" => Some("erp-events"),
                    _ => None,
                };
                let subject = subject_of(&p.body);
                (
                    p.stage,
                    p.reason,
                    Some(p.body),
                    target.map(str::to_owned),
                    subject,
                )
            }
            Err(_) => {
                // The local reconciliation's note: {"reason", "payout"}; the sweep retries
                // the payout, there is no message to send back.
                let v: serde_json::Value = serde_json::from_str(raw).unwrap_or_default();
                (
                    "reconciliation".to_owned(),
                    v["reason"]
                        .as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| strip(dead_reason)),
                    None,
                    None,
                    v["payout"].as_str().unwrap_or("").to_owned(),
                )
            }
        }
    } else {
        (
            "dead letter".to_owned(),
            strip(dead_reason),
            Some(raw.to_owned()),
            Some(queue.to_owned()),
            subject_of(raw),
        )
    };
    ParkedView {
        id: format!("{queue}:{id}"),
        queue: queue.to_owned(),
        group: format!("{stage}: {}", reason_group(&reason)),
        stage,
        reason,
        body,
        target,
        at_ms,
        receive_count,
        subject,
    }
}

/// The reference or object a message is about.
fn subject_of(body: &str) -> String {
    if let Ok(CommandMessage::ErpCommandV1(m)) = CommandMessage::decode(body) {
        return m.command.reference().full();
    }
    if let Ok(CommandMessage::CustomerFieldsV1(m)) = CommandMessage::decode(body) {
        return m.object_id;
    }
    match IntakeMessage::decode(body) {
        Ok(IntakeMessage::StripeEventV1(m)) => m.event_id.to_string(),
        Ok(IntakeMessage::StripeEventRefV1(r)) => r.event_id.to_string(),
        Err(_) => String::new(),
    }
}

/// Check `body` is a message of `queue`, and its FIFO group.
pub(crate) fn validate_for(queue: &str, body: &str) -> Result<Option<String>, ConsoleError> {
    let invalid = |reason: String| ConsoleError::InvalidEdit {
        queue: queue.to_owned(),
        reason,
    };
    match queue {
        "commands" => CommandMessage::decode(body)
            .map(|m| Some(m.group()))
            .map_err(|e| invalid(e.to_string())),
        // The intake's group: the object, else the event.
        "events" | "reconciliation" => match IntakeMessage::decode(body) {
            Ok(IntakeMessage::StripeEventV1(m)) => {
                Ok(Some(m.object_id.unwrap_or_else(|| m.event_id.to_string())))
            }
            Ok(IntakeMessage::StripeEventRefV1(r)) => {
                Ok(Some(r.object_id.unwrap_or_else(|| r.event_id.to_string())))
            }
            Err(e) => Err(invalid(e.to_string())),
        },
        "erp-events" => ledgerbridge_messages::ErpMessage::decode(body)
            .map(|m| Some(m.group()))
            .map_err(invalid),
        other => Err(invalid(format!("no replay onto {other}"))),
    }
}

/// Mark a message sent back to the events or commands queue as an operator's replay (the
/// `replay` attribute), so erp-post checks that a cross-referenced document still exists before
/// it answers from the cross-reference. Other queues' messages are sent as they are.
pub(crate) fn mark_replayed(queue: &str, body: String) -> String {
    match queue {
        "commands" | "events" => ledgerbridge_messages::mark_replay(&body),
        _ => body,
    }
}

impl ReadModel for Embedded {
    async fn records(&self) -> Result<Vec<RecordView>, ConsoleError> {
        let (docs, write_backs) = self.documents()?;
        Ok(assemble::records(docs, write_backs))
    }

    async fn ignored(&self) -> Result<Vec<IgnoredEvent>, ConsoleError> {
        Ok(self
            .intents("intake#")?
            .into_iter()
            .filter(|(_, status, _)| status == "IGNORED")
            .map(|(key, _, _)| IgnoredEvent {
                event_id: key.trim_start_matches("intake#").to_owned(),
            })
            .collect())
    }

    async fn parked(&self) -> Result<Vec<ParkedView>, ConsoleError> {
        self.parked_items()
    }

    async fn payouts(&self) -> Result<Vec<PayoutView>, ConsoleError> {
        let (docs, _) = self.documents()?;
        let mut payouts = assemble::payouts(self.report_records()?, &docs, self.mapping());
        assemble::read_ledger(&mut payouts, self.erp.as_deref()).await;
        Ok(payouts)
    }

    async fn health(&self) -> Result<HealthView, ConsoleError> {
        let now = now_ms();
        let mut queues = Vec::new();
        let mut parked = 0;
        for (name, q) in &self.queues {
            let dead = q.dead_letters()?;
            if *name == "parked" {
                parked = dead.len();
            }
            queues.push(QueueHealth {
                name: (*name).to_owned(),
                depth: q.len()?,
                dead_letters: if *name == "parked" { 0 } else { dead.len() },
                oldest_age_ms: q.pending(1)?.first().map(|p| now - p.sent_ms),
            });
        }
        let activity = self.db.activity()?;
        let (posted, failed) = assemble::outcome_times(&activity, &self.parked_items()?);
        Ok(HealthView {
            queues,
            parked,
            last_hour: assemble::error_rate(&posted, &failed, now, assemble::HOUR_MS),
            last_day: assemble::error_rate(&posted, &failed, now, assemble::DAY_MS),
            last_post: assemble::last_post(&activity, &self.xrefs()?),
            notes: Vec::new(),
        })
    }

    async fn daily(&self) -> Result<Vec<DayTotals>, ConsoleError> {
        Ok(assemble::daily(
            &self.db.activity()?,
            &self.payouts().await?,
        ))
    }

    async fn replay(
        &self,
        id: &str,
        edited: Option<String>,
        who: &str,
    ) -> Result<Replayed, ConsoleError> {
        let (queue_name, msg_id) = id
            .split_once(':')
            .ok_or_else(|| ConsoleError::NotFound(id.to_owned()))?;
        let queue = self
            .queue(queue_name)
            .ok_or_else(|| ConsoleError::NotFound(id.to_owned()))?;
        let dead = queue
            .dead_letters()?
            .into_iter()
            .find(|d| d.id.as_str() == msg_id)
            .ok_or_else(|| ConsoleError::NotFound(id.to_owned()))?;
        let view = parked_view(queue_name, &dead);
        let target = view.target.clone().ok_or_else(|| {
            ConsoleError::NotReplayable(
                id.to_owned(),
                "it carries no message (the payout sweep reconsiders the payout)".into(),
            )
        })?;
        let original = view.body.clone().unwrap_or_default();
        let edited_body = edited.filter(|e| e.trim() != original.trim());
        let body = edited_body.clone().unwrap_or(original);
        let group = validate_for(&target, &body)?;
        let body = mark_replayed(&target, body);
        let target_queue = self
            .queue(&target)
            .ok_or_else(|| ConsoleError::NotFound(target.clone()))?;
        // Send first, then remove: a crash in between leaves a duplicate the stages absorb.
        target_queue.send(body, group.as_deref()).await?;
        let removed = queue.remove_dead_letter(&MessageId::new(msg_id))?;
        let action = if edited_body.is_some() {
            "edit and replay"
        } else {
            "replay"
        };
        self.db.audit(
            who,
            action,
            id,
            &format!(
                "{} → {target} queue; reason was: {}{}",
                view.subject,
                view.reason,
                if removed {
                    ""
                } else {
                    " (already removed by another replay)"
                }
            ),
        )?;
        Ok(Replayed {
            id: id.to_owned(),
            queue: target,
            edited: edited_body.is_some(),
        })
    }

    async fn audit_log(&self) -> Result<Vec<AuditEntry>, ConsoleError> {
        Ok(self.db.audit_log(200)?)
    }

    async fn audit(&self, who: &str, action: &str, target: &str) -> Result<(), ConsoleError> {
        Ok(self.db.audit(who, action, target, "")?)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::assemble::parse_reference;
    use super::*;
    use ledgerbridge_adapters::embedded::SqliteStore;
    use ledgerbridge_core::ids::StripeObjectId;
    use ledgerbridge_core::{Currency, Money};
    use ledgerbridge_erp::DocKind;
    use ledgerbridge_erp::{CashReceipt, ErpDate, ExternalRef};
    use ledgerbridge_messages::ErpCommandV1;
    use ledgerbridge_messages::Source;

    fn receipt(stripe_id: &str, minor: i64) -> ErpCommandV1 {
        ErpCommandV1 {
            command: ErpCommand::CreateCashReceipt(CashReceipt {
                reference: ExternalRef::new(&StripeObjectId::new(stripe_id), DocKind::CashReceipt)
                    .unwrap(),
                customer_id: "NW0042".into(),
                receipt_date: ErpDate::parse("2026-05-01").unwrap(),
                amount: Money::new(minor, Currency::USD),
                payment_method: "STRIPE".into(),
                applies_to: None,
            }),
            customer: None,
            depends_on: vec![],
            version: None,
            write_back: None,
            source: Source {
                event_id: "evt_1".into(),
                event_type: "payment_intent.succeeded".into(),
                created: 0,
            },
        }
    }

    use ledgerbridge_erp::ErpCommand;

    async fn data_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "lb-console-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        SqliteStore::open(&dir.join(STATE_FILE)).unwrap();
        dir
    }

    /// Park `msg` the way the local runner does: erp-post writes `parked.v1` to the parked
    /// queue, which keeps it among its dead letters.
    async fn park(dir: &Path, msg: &ErpCommandV1, reason: &str) {
        let q = SqliteQueue::open(
            &dir.join("queue-parked.sqlite"),
            DurableQueueSettings::default(),
        )
        .unwrap();
        let body = CommandMessage::ErpCommandV1(Box::new(msg.clone()))
            .encode()
            .unwrap();
        ledgerbridge_pipeline::outcome::park(&q, "erp-post", reason.to_owned(), &body).await;
        let got = q.try_receive(1).unwrap();
        assert!(q
            .dead_letter(&got[0], &format!("parked: {reason}"))
            .unwrap());
    }

    #[tokio::test]
    async fn a_parked_document_shows_its_reason_and_amount_and_replays_once_with_an_audit() {
        let dir = data_dir().await;
        let posted = receipt("pi_ok", 500);
        ConsoleDb::open(&dir)
            .unwrap()
            .posted(&posted, "epicor", "STRIPECR/1", "created");
        park(
            &dir,
            &receipt("pi_bad", 1234),
            "ERP rejected: payment method STRIPE unknown",
        )
        .await;
        let model = Embedded::open(&dir, None).unwrap();

        let records = model.records().await.unwrap();
        let bad = records.iter().find(|r| r.stripe_id == "pi_bad").unwrap();
        assert_eq!(bad.state().label(), "parked");
        assert_eq!(
            bad.state().reason(),
            Some("ERP rejected: payment method STRIPE unknown")
        );
        assert_eq!(
            bad.documents[0].amount,
            Some(Money::new(1234, Currency::USD))
        );
        assert_eq!(
            bad.events(),
            vec![("evt_1".into(), "payment_intent.succeeded".into())]
        );
        let ok = records.iter().find(|r| r.stripe_id == "pi_ok").unwrap();
        assert_eq!(ok.state(), DocState::Posted);
        assert_eq!(ok.documents[0].erp_id.as_deref(), Some("STRIPECR/1"));

        let parked = model.parked().await.unwrap();
        assert_eq!(parked.len(), 1);
        assert_eq!(parked[0].target.as_deref(), Some("commands"));
        assert_eq!(parked[0].subject, "LB-pi_bad-CR");

        // An edit that is not a command message is refused, and nothing moves.
        let refused = model
            .replay(
                &parked[0].id,
                Some("{\"type\":\"nonsense\"}".into()),
                "test",
            )
            .await;
        assert!(
            matches!(refused, Err(ConsoleError::InvalidEdit { .. })),
            "{refused:?}"
        );
        assert_eq!(model.parked().await.unwrap().len(), 1);

        let r = model.replay(&parked[0].id, None, "alice").await.unwrap();
        assert_eq!(r.queue, "commands");
        assert!(model.parked().await.unwrap().is_empty());
        let commands = model.queue("commands").unwrap().pending(10).unwrap();
        assert_eq!(commands.len(), 1);
        assert!(matches!(
            CommandMessage::decode(&commands[0].body).unwrap(),
            CommandMessage::ErpCommandV1(m) if m.command.reference().full() == "LB-pi_bad-CR"
        ));
        // Now waiting on the queue, no longer parked.
        let records = model.records().await.unwrap();
        let bad = records.iter().find(|r| r.stripe_id == "pi_bad").unwrap();
        assert_eq!(bad.state().label(), "waiting");
        // A second replay of the same id finds nothing: no double send.
        assert!(matches!(
            model.replay(&parked[0].id, None, "alice").await,
            Err(ConsoleError::NotFound(_))
        ));
        let audit = model.audit_log().await.unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].who, "alice");
        assert_eq!(audit[0].action, "replay");
        assert!(
            audit[0].detail.contains("payment method STRIPE unknown"),
            "{audit:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn an_edited_message_is_sent_instead_of_the_original() {
        let dir = data_dir().await;
        park(
            &dir,
            &receipt("pi_edit", 700),
            "ERP rejected: payment method STRIPE unknown",
        )
        .await;
        let model = Embedded::open(&dir, None).unwrap();
        let id = model.parked().await.unwrap()[0].id.clone();
        let mut fixed = receipt("pi_edit", 700);
        if let ErpCommand::CreateCashReceipt(c) = &mut fixed.command {
            c.payment_method = "CARD".into();
        }
        let body = CommandMessage::ErpCommandV1(Box::new(fixed))
            .encode()
            .unwrap();
        let r = model.replay(&id, Some(body), "bob").await.unwrap();
        assert!(r.edited);
        let sent = &model.queue("commands").unwrap().pending(10).unwrap()[0].body;
        assert!(sent.contains("\"CARD\""), "{sent}");
        assert_eq!(
            model.audit_log().await.unwrap()[0].action,
            "edit and replay"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn references_name_their_object_and_kind() {
        assert_eq!(
            parse_reference("LB-txn_1lyV-JE"),
            Some(("txn_1lyV".into(), DocKind::JournalEntry))
        );
        assert_eq!(parse_reference("NW0042"), None);
    }
}
