//! The console's own SQLite file in the data directory (`console.sqlite`): the activity
//! ledger (one row per ERP document posted, with the event that produced it and the amount the
//! ERP accepted) and the audit log of every operator action. The ledger is written by the
//! post stage of the local runner and `serve`; nothing in the pipeline reads it, so a failed
//! write is logged and never fails a message.

use ledgerbridge_core::ports::StoreError;
use ledgerbridge_core::Money;
use ledgerbridge_erp::ErpCommand;
use ledgerbridge_messages::ErpCommandV1;
use ledgerbridge_pipeline::posting::PostResult;
use rusqlite::{params, Connection};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The file name in the data directory.
pub const CONSOLE_FILE: &str = "console.sqlite";

/// One document posted (or found already posted) in the ERP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    pub at_ms: i64,
    pub event_id: String,
    pub event_type: String,
    pub stripe_id: String,
    pub kind: String,
    pub reference: String,
    pub erp: String,
    pub erp_id: String,
    /// The customer code in the ERP, or the Stripe customer when it was resolved at posting.
    pub customer: Option<String>,
    pub amount: Option<Money>,
    /// `created`, `updated` or `already posted`.
    pub outcome: String,
}

/// One operator action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at_ms: i64,
    pub who: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

/// The console's file. Cheap to clone.
#[derive(Clone)]
pub struct ConsoleDb {
    conn: Arc<Mutex<Connection>>,
}

fn db_err(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("console store: {e}"))
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The total of a command as sent to (and accepted by) the ERP: line totals for orders,
/// invoices and credit memos, the receipt amount, the journal's debits; none for customers.
pub fn command_amount(cmd: &ErpCommand) -> Option<Money> {
    cmd.posted_amount()
}

/// The ERP customer of a command, else the Stripe customer it is resolved from (the same rule
/// as the deployed post stage's activity items).
pub use ledgerbridge_app::activity::command_customer;

impl ConsoleDb {
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::init(Connection::open(data_dir.join(CONSOLE_FILE)).map_err(db_err)?)
    }

    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory().map_err(db_err)?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.execute_batch(
            // The activity log is what the console shows, not a durability boundary (the
            // state store and the queues are): a commit need not wait for a sync (WAL with
            // `synchronous=NORMAL` keeps it across a process crash; a power failure may lose
            // the last rows). A synced commit here cost every posted document a sync of its
            // own, one at a time under the lock. An operator's audit entry is still synced.
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=NORMAL;
             PRAGMA busy_timeout=5000;
             CREATE TABLE IF NOT EXISTS activity (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 at_ms INTEGER NOT NULL,
                 event_id TEXT NOT NULL,
                 event_type TEXT NOT NULL,
                 stripe_id TEXT NOT NULL,
                 kind TEXT NOT NULL,
                 reference TEXT NOT NULL,
                 erp TEXT NOT NULL,
                 erp_id TEXT NOT NULL,
                 customer TEXT,
                 amount_minor INTEGER,
                 currency TEXT,
                 outcome TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS activity_stripe ON activity (stripe_id, seq);
             CREATE TABLE IF NOT EXISTS audit (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 at_ms INTEGER NOT NULL,
                 who TEXT NOT NULL,
                 action TEXT NOT NULL,
                 target TEXT NOT NULL,
                 detail TEXT NOT NULL
             );",
        )
        .map_err(db_err)?;
        Ok(ConsoleDb {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| StoreError::Unavailable("console store lock poisoned".into()))?;
        f(&conn)
    }

    /// Record what the post stage did with a document (posted or found posted; a skipped
    /// older update is not a document). Never fails the caller: a write error is logged.
    pub fn record(&self, msg: &ErpCommandV1, erp: &str, result: &PostResult) {
        match result {
            PostResult::Posted { erp_id, created } => self.posted(
                msg,
                erp,
                erp_id.as_str(),
                if *created { "created" } else { "updated" },
            ),
            PostResult::AlreadyPosted { erp_id } => {
                self.posted(msg, erp, erp_id.as_str(), "already posted")
            }
            PostResult::Stale => {}
        }
    }

    /// Record a command the post stage parked (for the error rate; the parked queue keeps the
    /// message and its reason). Never fails the caller: a write error is logged.
    pub fn parked(&self, body: &str, erp: &str) {
        let Ok(ledgerbridge_messages::CommandMessage::ErpCommandV1(msg)) =
            ledgerbridge_messages::CommandMessage::decode(body)
        else {
            return;
        };
        self.posted(&msg, erp, "", ledgerbridge_app::activity::PARKED);
    }

    /// Record a document the post stage posted (or found posted). Never fails the caller:
    /// a write error is logged.
    pub fn posted(&self, msg: &ErpCommandV1, erp: &str, erp_id: &str, outcome: &str) {
        let amount = command_amount(&msg.command);
        let reference = msg.command.reference();
        let row = Activity {
            at_ms: now_ms(),
            event_id: msg.source.event_id.clone(),
            event_type: msg.source.event_type.clone(),
            stripe_id: reference.stripe_id().to_string(),
            kind: msg.command.kind().as_str().to_owned(),
            reference: reference.full(),
            erp: erp.to_owned(),
            erp_id: erp_id.to_owned(),
            customer: command_customer(msg),
            amount,
            outcome: outcome.to_owned(),
        };
        if let Err(e) = self.insert_activity(&row) {
            tracing::warn!(error = %e, "Console activity not recorded");
        }
    }

    pub fn insert_activity(&self, a: &Activity) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO activity (at_ms, event_id, event_type, stripe_id, kind, reference, erp,
                     erp_id, customer, amount_minor, currency, outcome)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    a.at_ms,
                    a.event_id,
                    a.event_type,
                    a.stripe_id,
                    a.kind,
                    a.reference,
                    a.erp,
                    a.erp_id,
                    a.customer,
                    a.amount.map(|m| m.minor),
                    a.amount.map(|m| m.currency.code().to_owned()),
                    a.outcome
                ],
            )
            .map(|_| ())
            .map_err(db_err)
        })
    }

    /// Every activity row, oldest first.
    pub fn activity(&self) -> Result<Vec<Activity>, StoreError> {
        self.with(|c| {
            let mut stmt = c
                .prepare(
                    "SELECT at_ms, event_id, event_type, stripe_id, kind, reference, erp, erp_id,
                            customer, amount_minor, currency, outcome
                     FROM activity ORDER BY seq",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map([], |r| {
                    let minor: Option<i64> = r.get(9)?;
                    let currency: Option<String> = r.get(10)?;
                    let amount = match (minor, currency) {
                        (Some(m), Some(c)) => ledgerbridge_core::Currency::parse(&c)
                            .ok()
                            .map(|c| Money::new(m, c)),
                        _ => None,
                    };
                    Ok(Activity {
                        at_ms: r.get(0)?,
                        event_id: r.get(1)?,
                        event_type: r.get(2)?,
                        stripe_id: r.get(3)?,
                        kind: r.get(4)?,
                        reference: r.get(5)?,
                        erp: r.get(6)?,
                        erp_id: r.get(7)?,
                        customer: r.get(8)?,
                        amount,
                        outcome: r.get(11)?,
                    })
                })
                .map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
    }

    pub fn audit(
        &self,
        who: &str,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        // An operator's action is kept synced, as before (the activity rows are not).
        self.with(|c| {
            c.execute_batch("PRAGMA synchronous=FULL").map_err(db_err)?;
            let written = c
                .execute(
                    "INSERT INTO audit (at_ms, who, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![now_ms(), who, action, target, detail],
                )
                .map(|_| ())
                .map_err(db_err);
            c.execute_batch("PRAGMA synchronous=NORMAL")
                .map_err(db_err)?;
            written
        })
    }

    /// The audit log, newest first.
    pub fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.with(|c| {
            let mut stmt = c
                .prepare(
                    "SELECT at_ms, who, action, target, detail FROM audit ORDER BY seq DESC LIMIT ?1",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map(params![i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                    Ok(AuditEntry {
                        at_ms: r.get(0)?,
                        who: r.get(1)?,
                        action: r.get(2)?,
                        target: r.get(3)?,
                        detail: r.get(4)?,
                    })
                })
                .map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
    }
}
