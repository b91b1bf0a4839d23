//! Embedded adapters for local mode and tests: an in-process queue and a SQLite-backed store.

use ledgerbridge_core::ids::{ErpDocumentId, IdempotencyKey, MessageId, StripeObjectId};
use ledgerbridge_core::ports::{
    Claim, ClaimRequest, EventQueue, IdempotencyRecord, IdempotencyStore, QueueError, RecordStatus,
    StoreError, VersionStore, XrefRecord, XrefStore,
};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

mod durable;
pub use durable::{DataDirLock, DeadLetter, Delivery, DurableQueueSettings, Pending, SqliteQueue};
#[cfg(feature = "reports")]
mod reports;
#[cfg(feature = "reports")]
pub use reports::SqliteReportStore;

/// SQS's historical per-message limit (256 KiB). AWS raised it to 1 MiB in 2025; the embedded
/// queue keeps the smaller figure so local runs exercise the oversized-event path the same way.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = ledgerbridge_core::message::SQS_MAX_MESSAGE_BYTES;

#[derive(Debug, Clone)]
pub struct QueuedMessage {
    pub id: MessageId,
    pub body: String,
    pub group: Option<String>,
}

/// An in-process FIFO queue. `send` is durable for the life of the process only.
#[derive(Clone)]
pub struct MemoryQueue {
    inner: Arc<(Mutex<VecDeque<QueuedMessage>>, Notify)>,
    max_bytes: usize,
}

impl Default for MemoryQueue {
    fn default() -> Self {
        MemoryQueue::new(DEFAULT_MAX_MESSAGE_BYTES)
    }
}

impl MemoryQueue {
    pub fn new(max_bytes: usize) -> Self {
        MemoryQueue {
            inner: Arc::new((Mutex::new(VecDeque::new()), Notify::new())),
            max_bytes,
        }
    }

    /// Take up to `max` messages without waiting.
    pub fn try_receive(&self, max: usize) -> Vec<QueuedMessage> {
        let Ok(mut q) = self.inner.0.lock() else {
            return Vec::new();
        };
        let n = max.min(q.len());
        q.drain(..n).collect()
    }

    /// Wait until at least one message is present, then take up to `max`.
    pub async fn receive(&self, max: usize) -> Vec<QueuedMessage> {
        loop {
            let notified = self.inner.1.notified();
            let batch = self.try_receive(max);
            if !batch.is_empty() {
                return batch;
            }
            notified.await;
        }
    }

    pub fn len(&self) -> usize {
        self.inner.0.lock().map(|q| q.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Put a message back (a failed item of a batch).
    pub fn requeue(&self, msg: QueuedMessage) {
        if let Ok(mut q) = self.inner.0.lock() {
            q.push_back(msg);
        }
        self.inner.1.notify_one();
    }
}

impl EventQueue for MemoryQueue {
    async fn send(&self, body: String, group: Option<&str>) -> Result<MessageId, QueueError> {
        if body.len() > self.max_bytes {
            return Err(QueueError::TooLarge {
                size: body.len(),
                limit: self.max_bytes,
            });
        }
        let id = MessageId::new(uuid::Uuid::new_v4().to_string());
        let msg = QueuedMessage {
            id: id.clone(),
            body,
            group: group.map(str::to_owned),
        };
        self.inner
            .0
            .lock()
            .map_err(|_| QueueError::Unavailable("queue lock poisoned".into()))?
            .push_back(msg);
        self.inner.1.notify_one();
        Ok(id)
    }

    fn max_message_bytes(&self) -> usize {
        self.max_bytes
    }
}

/// A SQLite-backed idempotency and cross-reference store.
///
/// Writes go to one writer thread that owns the write connection and commits whatever writes
/// are waiting in one transaction (group commit): each write runs in its own savepoint (a
/// failed one is rolled back alone), and every writer is answered only after the shared commit
/// is synced to disk (`synchronous=FULL`), so a write that returned is durable, as with one
/// transaction per write, while concurrent writers share one sync. Reads use their own
/// connection (WAL readers do not wait for the writer); an in-memory store reads through the
/// writer.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<StoreInner>,
}

struct StoreInner {
    /// The read connection (a file store only).
    read: Option<Mutex<Connection>>,
    /// Jobs for the writer thread; the thread ends when the last clone is dropped.
    jobs: Mutex<std::sync::mpsc::Sender<WriteJob>>,
}

/// What a finished write tells its caller, once the batch's commit is known.
type Finish = Box<dyn FnOnce(Result<(), String>) + Send>;
/// One write: runs on the writer's connection inside the batch's transaction; says whether it
/// succeeded (a failed one's savepoint is rolled back) and how to answer its caller.
/// `None`: the job is not run (its transaction could not begin) and only answers its caller.
type WriteJob = Box<dyn FnOnce(Option<&Connection>) -> (bool, Finish) + Send>;

/// At most this many writes share one transaction.
const MAX_GROUP: usize = 256;

fn db_err(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS idempotency (
                 key TEXT PRIMARY KEY,
                 status TEXT NOT NULL,
                 payload_hash TEXT NOT NULL,
                 expiration INTEGER NOT NULL,
                 in_progress_expiration INTEGER NOT NULL,
                 result TEXT
             );
             CREATE TABLE IF NOT EXISTS versions (
                 key TEXT PRIMARY KEY,
                 version INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS xref (
                 stripe_id TEXT NOT NULL,
                 doc_kind TEXT NOT NULL,
                 erp TEXT NOT NULL,
                 erp_id TEXT NOT NULL,
                 created_at_ms INTEGER NOT NULL,
                 PRIMARY KEY (stripe_id, doc_kind)
             );";

impl SqliteStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let writer = Connection::open(path).map_err(db_err)?;
        Self::init(writer, |_| {
            // The schema exists now; the reader only reads.
            let r = Connection::open(path).map_err(db_err)?;
            r.execute_batch("PRAGMA busy_timeout=5000;")
                .map_err(db_err)?;
            Ok(Some(r))
        })
    }

    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory().map_err(db_err)?, |_| Ok(None))
    }

    fn init(
        conn: Connection,
        reader: impl FnOnce(&Connection) -> Result<Option<Connection>, StoreError>,
    ) -> Result<Self, StoreError> {
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             PRAGMA busy_timeout=5000;",
        )
        .map_err(db_err)?;
        conn.execute_batch(SCHEMA).map_err(db_err)?;
        add_posted_columns(&conn)?;
        let read = reader(&conn)?.map(Mutex::new);
        let (tx, rx) = std::sync::mpsc::channel::<WriteJob>();
        std::thread::Builder::new()
            .name("ledgerbridge-store-writer".into())
            .spawn(move || Self::writer(conn, rx))
            .map_err(|e| StoreError::Unavailable(format!("store writer thread: {e}")))?;
        Ok(SqliteStore {
            inner: Arc::new(StoreInner {
                read,
                jobs: Mutex::new(tx),
            }),
        })
    }

    /// The writer thread: take every waiting write (at most [`MAX_GROUP`]), run each in its
    /// own savepoint inside one transaction, commit (one sync), then answer them all.
    fn writer(conn: Connection, rx: std::sync::mpsc::Receiver<WriteJob>) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
                let e = e.to_string();
                for job in batch {
                    // Not run: answered with the failure to begin.
                    let (_, finish) = job(None);
                    finish(Err(e.clone()));
                }
                continue;
            }
            let mut finishes = Vec::with_capacity(batch.len());
            for job in batch {
                if let Err(e) = conn.execute_batch("SAVEPOINT write") {
                    let (_, finish) = job(None);
                    let e = e.to_string();
                    finishes.push(Box::new(move |_: Result<(), String>| finish(Err(e))) as Finish);
                    continue;
                }
                let (ok, finish) = job(Some(&conn));
                let close = if ok {
                    conn.execute_batch("RELEASE write")
                } else {
                    conn.execute_batch("ROLLBACK TO write; RELEASE write")
                };
                if let Err(e) = close {
                    tracing::error!(error = %e, "Store savepoint could not be closed");
                }
                finishes.push(finish);
            }
            let committed = conn.execute_batch("COMMIT").map_err(|e| e.to_string());
            if committed.is_err() && !conn.is_autocommit() {
                if let Err(e) = conn.execute_batch("ROLLBACK") {
                    tracing::error!(error = %e, "Store rollback after a failed commit failed");
                }
            }
            for finish in finishes {
                finish(committed.clone());
            }
        }
    }

    /// Run a write on the writer thread, in the next group commit; returns once that commit is
    /// on disk (or failed, and then nothing of this write is kept).
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let rx = self.submit(f)?;
        rx.await
            .map_err(|_| StoreError::Unavailable("store writer stopped".into()))?
    }

    fn submit<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<T, StoreError>>, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: WriteJob = Box::new(move |conn| {
            let out = conn.map(f);
            let ok = matches!(out, Some(Ok(_)));
            let finish: Finish = Box::new(move |committed| {
                let answer = match (out, committed) {
                    (Some(Ok(v)), Ok(())) => Ok(v),
                    (Some(Err(e)), _) => Err(e),
                    (_, Err(e)) => {
                        Err(StoreError::Unavailable(format!("store commit failed: {e}")))
                    }
                    (None, Ok(())) => Err(StoreError::Unavailable("store write not run".into())),
                };
                // The caller may have stopped waiting (its task was cancelled).
                if tx.send(answer).is_err() {
                    tracing::debug!("A store writer's caller stopped waiting");
                }
            });
            (ok, finish)
        });
        self.inner
            .jobs
            .lock()
            .map_err(|_| StoreError::Unavailable("store lock poisoned".into()))?
            .send(job)
            .map_err(|_| StoreError::Unavailable("store writer stopped".into()))?;
        Ok(rx)
    }

    /// A write from synchronous code (start-up): waits for its commit on this thread.
    fn write_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let rx = self.submit(f)?;
        let wait = move || {
            rx.blocking_recv()
                .map_err(|_| StoreError::Unavailable("store writer stopped".into()))?
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(wait)
            }
            // A current-thread runtime cannot block in place; wait on a helper thread.
            Ok(_) => std::thread::scope(|s| {
                s.spawn(wait)
                    .join()
                    .unwrap_or_else(|_| Err(StoreError::Unavailable("store wait failed".into())))
            }),
            Err(_) => wait(),
        }
    }

    /// End every in-progress lease now. Call it only at start, while holding the data
    /// directory's lock: the process that took the leases is gone, and waiting them out would
    /// only delay the retries (every holder re-checks the ERP by reference before it writes).
    pub fn expire_leases(&self) -> Result<usize, StoreError> {
        self.write_blocking(|conn| {
            conn.execute(
                "UPDATE idempotency SET in_progress_expiration = 0 WHERE status = 'INPROGRESS'",
                [],
            )
            .map_err(db_err)
        })
    }

    /// Run a read: on the read connection (on a multi-threaded runtime the worker thread hands
    /// its other tasks to another thread first), or through the writer for an in-memory store.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let Some(read) = &self.inner.read else {
            return self.write(f).await;
        };
        let run = || {
            let conn = read
                .lock()
                .map_err(|_| StoreError::Unavailable("store lock poisoned".into()))?;
            f(&conn)
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(run)
            }
            _ => run(),
        }
    }

    fn read_record(conn: &Connection, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        let row = conn
            .query_row(
                "SELECT status, payload_hash, expiration, in_progress_expiration, result
                 FROM idempotency WHERE key = ?1",
                params![key],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, Option<String>>(4)?,
                    ))
                },
            )
            .optional()
            .map_err(db_err)?;
        row.map(
            |(status, payload_hash, expiration, in_progress_expiration, result)| {
                let status = RecordStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
                    key: key.to_owned(),
                    message: format!("unknown status {status:?}"),
                })?;
                Ok(IdempotencyRecord {
                    key: IdempotencyKey::new(key),
                    status,
                    payload_hash,
                    expiration,
                    in_progress_expiration,
                    result,
                })
            },
        )
        .transpose()
    }
}

impl IdempotencyStore for SqliteStore {
    async fn claim(&self, req: &ClaimRequest) -> Result<Claim, StoreError> {
        let req = req.clone();
        self.write(move |tx| {
            let now_secs = req.now_ms.div_euclid(1000);
            // Same three clauses as the DynamoDB condition expression.
            let changed = tx
                .execute(
                    "INSERT INTO idempotency (key, status, payload_hash, expiration, in_progress_expiration, result)
                     VALUES (?1, 'INPROGRESS', ?2, ?3, ?4, NULL)
                     ON CONFLICT(key) DO UPDATE SET
                        status = 'INPROGRESS', payload_hash = excluded.payload_hash,
                        expiration = excluded.expiration,
                        in_progress_expiration = excluded.in_progress_expiration, result = NULL
                     WHERE idempotency.expiration < ?5
                        OR idempotency.status = 'PARKED'
                        OR (idempotency.status = 'INPROGRESS' AND idempotency.in_progress_expiration < ?6)",
                    params![
                        req.key.as_str(),
                        req.payload_hash,
                        req.expiration,
                        req.now_ms.saturating_add(req.lease_ms),
                        now_secs,
                        req.now_ms
                    ],
                )
                .map_err(db_err)?;
            let out = if changed == 1 {
                Claim::Acquired
            } else {
                let existing = Self::read_record(tx, req.key.as_str())?.ok_or_else(|| {
                    StoreError::Corrupt { key: req.key.to_string(), message: "vanished".into() }
                })?;
                Claim::Existing(existing)
            };
            Ok(out)
        })
        .await
    }

    async fn complete(
        &self,
        key: &IdempotencyKey,
        status: RecordStatus,
        result: Option<String>,
    ) -> Result<(), StoreError> {
        let key = key.clone();
        self.write(move |conn| {
            conn.execute(
                "UPDATE idempotency SET status = ?2, result = ?3 WHERE key = ?1",
                params![key.as_str(), status.as_str(), result],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn release(&self, key: &IdempotencyKey) -> Result<(), StoreError> {
        let key = key.clone();
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM idempotency WHERE key = ?1 AND status = 'INPROGRESS'",
                params![key.as_str()],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn get(&self, key: &IdempotencyKey) -> Result<Option<IdempotencyRecord>, StoreError> {
        let key = key.as_str().to_owned();
        self.read(move |conn| Self::read_record(conn, &key)).await
    }

    /// Both in one write (one savepoint of the next group commit): one sync, both or neither.
    async fn complete_with_xref(
        &self,
        xref: &XrefRecord,
        key: &IdempotencyKey,
        status: RecordStatus,
        result: Option<String>,
    ) -> Result<Option<XrefRecord>, StoreError> {
        let (record, key) = (xref.clone(), key.clone());
        self.write(move |conn| {
            let existing = insert_xref_if_absent(conn, &record)?;
            conn.execute(
                "UPDATE idempotency SET status = ?2, result = ?3 WHERE key = ?1",
                params![key.as_str(), status.as_str(), result],
            )
            .map_err(db_err)?;
            Ok(existing)
        })
        .await
    }
}

impl XrefStore for SqliteStore {
    async fn get_xref(
        &self,
        stripe_id: &StripeObjectId,
        doc_kind: &str,
    ) -> Result<Option<XrefRecord>, StoreError> {
        let (stripe_id, doc_kind) = (stripe_id.as_str().to_owned(), doc_kind.to_owned());
        self.read(move |conn| read_xref(conn, &stripe_id, &doc_kind))
            .await
    }

    async fn put_xref_if_absent(
        &self,
        record: &XrefRecord,
    ) -> Result<Option<XrefRecord>, StoreError> {
        let record = record.clone();
        self.write(move |conn| insert_xref_if_absent(conn, &record))
            .await
    }
}

/// Write `record` unless a cross-reference of its Stripe object and kind exists; returns the
/// existing one when it does.
fn insert_xref_if_absent(
    conn: &Connection,
    record: &XrefRecord,
) -> Result<Option<XrefRecord>, StoreError> {
    let changed = conn
        .execute(
            "INSERT OR IGNORE INTO xref
               (stripe_id, doc_kind, erp, erp_id, created_at_ms, amount_minor, currency, command)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                record.stripe_id.as_str(),
                record.doc_kind,
                record.erp,
                record.erp_id.as_str(),
                record.created_at_ms,
                record.posted.map(|m| m.minor),
                record.posted.map(|m| m.currency.code().to_owned()),
                record.command,
            ],
        )
        .map_err(db_err)?;
    if changed == 1 {
        Ok(None)
    } else {
        read_xref(conn, record.stripe_id.as_str(), &record.doc_kind)
    }
}

impl VersionStore for SqliteStore {
    async fn advance_version(&self, key: &str, version: i64) -> Result<bool, StoreError> {
        let key = key.to_owned();
        self.write(move |conn| {
            let changed = conn
                .execute(
                    "INSERT INTO versions (key, version) VALUES (?1, ?2)
                     ON CONFLICT(key) DO UPDATE SET version = excluded.version
                     WHERE versions.version <= excluded.version",
                    params![key, version],
                )
                .map_err(db_err)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn current_version(&self, key: &str) -> Result<Option<i64>, StoreError> {
        let key = key.to_owned();
        self.read(move |conn| {
            conn.query_row(
                "SELECT version FROM versions WHERE key = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err)
        })
        .await
    }
}

fn read_xref(
    conn: &Connection,
    stripe_id: &str,
    doc_kind: &str,
) -> Result<Option<XrefRecord>, StoreError> {
    conn.query_row(
        &format!("SELECT {XREF_COLUMNS} FROM xref WHERE stripe_id = ?1 AND doc_kind = ?2"),
        params![stripe_id, doc_kind],
        xref_row,
    )
    .optional()
    .map_err(db_err)
}

const XREF_COLUMNS: &str =
    "stripe_id, doc_kind, erp, erp_id, created_at_ms, amount_minor, currency, command";

/// One row selected with [`XREF_COLUMNS`]. A stored currency this build does not know leaves
/// the amount unrecorded rather than guessed.
fn xref_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<XrefRecord> {
    let minor: Option<i64> = r.get(5)?;
    let currency: Option<String> = r.get(6)?;
    let posted = match (minor, currency) {
        (Some(minor), Some(code)) => ledgerbridge_core::Currency::parse(&code)
            .ok()
            .map(|c| ledgerbridge_core::Money::new(minor, c)),
        _ => None,
    };
    Ok(XrefRecord {
        stripe_id: StripeObjectId::new(r.get::<_, String>(0)?),
        doc_kind: r.get(1)?,
        erp: r.get(2)?,
        erp_id: ErpDocumentId::new(r.get::<_, String>(3)?),
        created_at_ms: r.get(4)?,
        posted,
        command: r.get(7)?,
    })
}

/// The posted amount's columns, added to stores created before they existed (their rows keep
/// no amount: the audit reports them as "amount not recorded").
fn add_posted_columns(conn: &Connection) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare("SELECT name FROM pragma_table_info('xref')")
        .map_err(db_err)?;
    let names: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .map_err(db_err)?
        .collect::<Result<_, _>>()
        .map_err(db_err)?;
    for (col, ty) in [
        ("amount_minor", "INTEGER"),
        ("currency", "TEXT"),
        ("command", "TEXT"),
    ] {
        if !names.iter().any(|n| n == col) {
            conn.execute(&format!("ALTER TABLE xref ADD COLUMN {col} {ty}"), [])
                .map_err(db_err)?;
        }
    }
    conn.execute(
        "CREATE INDEX IF NOT EXISTS xref_created ON xref (created_at_ms)",
        [],
    )
    .map_err(db_err)?;
    Ok(())
}

impl ledgerbridge_core::ports::XrefAudit for SqliteStore {
    async fn list_xrefs_posted_between(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<XrefRecord>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {XREF_COLUMNS} FROM xref WHERE created_at_ms >= ?1 AND created_at_ms < ?2
                     ORDER BY created_at_ms, stripe_id, doc_kind"
                ))
                .map_err(db_err)?;
            let rows = stmt
                .query_map(params![from_ms, to_ms], xref_row)
                .map_err(db_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_err);
            rows
        })
        .await
    }

    async fn replace_xref(
        &self,
        record: &XrefRecord,
        expected_erp_id: &ErpDocumentId,
    ) -> Result<bool, StoreError> {
        let (record, expected_erp_id) = (record.clone(), expected_erp_id.clone());
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE xref SET erp = ?3, erp_id = ?4, created_at_ms = ?5, amount_minor = ?6,
                       currency = ?7, command = ?8
                     WHERE stripe_id = ?1 AND doc_kind = ?2 AND erp_id = ?9",
                    params![
                        record.stripe_id.as_str(),
                        record.doc_kind,
                        record.erp,
                        record.erp_id.as_str(),
                        record.created_at_ms,
                        record.posted.map(|m| m.minor),
                        record.posted.map(|m| m.currency.code().to_owned()),
                        record.command,
                        expected_erp_id.as_str(),
                    ],
                )
                .map_err(db_err)?;
            Ok(n == 1)
        })
        .await
    }
}

/// Reverse customer links, kept in the cross-reference table.
impl ledgerbridge_core::ports::ReverseLinkStore for SqliteStore {
    async fn get_reverse_link(
        &self,
        erp: &str,
        customer_code: &str,
    ) -> Result<Option<ledgerbridge_core::ports::ReverseLink>, StoreError> {
        use ledgerbridge_core::ports::{ReverseLink, XrefStore};
        let id = ReverseLink::xref_id(erp, customer_code);
        Ok(self
            .get_xref(&id, ReverseLink::XREF_KIND)
            .await?
            .map(|r| ReverseLink::from_xref(customer_code, r)))
    }

    async fn put_reverse_link_if_absent(
        &self,
        link: &ledgerbridge_core::ports::ReverseLink,
    ) -> Result<Option<ledgerbridge_core::ports::ReverseLink>, StoreError> {
        use ledgerbridge_core::ports::{ReverseLink, XrefStore};
        Ok(self
            .put_xref_if_absent(&link.to_xref())
            .await?
            .map(|r| ReverseLink::from_xref(&link.customer_code, r)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "embedded/xref_audit_tests.rs"]
mod xref_audit_tests;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod group_commit_tests {
    use super::*;

    fn claim(key: &str) -> ClaimRequest {
        ClaimRequest {
            key: IdempotencyKey::new(key),
            payload_hash: "h".into(),
            now_ms: 1_000_000,
            lease_ms: 60_000,
            expiration: 2_000,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_share_commits_and_each_is_durable_when_answered() {
        // GIVEN a store in a file
        let dir = std::env::temp_dir().join(format!("lb-store-group-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sqlite");
        let s = SqliteStore::open(&path).unwrap();
        // WHEN 200 claims run at once, and each key is claimed twice
        let runs = (0..400).map(|i| {
            let s = s.clone();
            async move { s.claim(&claim(&format!("k{}", i % 200))).await.unwrap() }
        });
        let out = futures::future::join_all(runs).await;
        // THEN each key was acquired exactly once
        let acquired = out.iter().filter(|c| **c == Claim::Acquired).count();
        assert_eq!(acquired, 200);
        // AND every answered write is on disk: a second connection (another process) sees it
        let other = Connection::open(&path).unwrap();
        let n: i64 = other
            .query_row("SELECT COUNT(*) FROM idempotency", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 200);
        drop(s);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_failed_write_is_undone_and_the_others_are_kept() {
        // GIVEN writes that share a commit, one of which fails after writing
        let s = SqliteStore::in_memory().unwrap();
        let failing = s.write(|conn| {
            conn.execute("INSERT INTO versions (key, version) VALUES ('bad', 1)", [])
                .map_err(db_err)?;
            Err::<(), _>(StoreError::Unavailable("fails after its insert".into()))
        });
        let good = s.advance_version("good", 1);
        let (failing, good) = tokio::join!(failing, good);
        // THEN the failure is reported, its insert is undone, and the other write is kept
        assert!(failing.is_err());
        assert!(good.unwrap());
        assert_eq!(s.current_version("bad").await.unwrap(), None);
        assert_eq!(s.current_version("good").await.unwrap(), Some(1));
    }

    fn xref(erp_id: &str) -> XrefRecord {
        XrefRecord {
            stripe_id: StripeObjectId::new("pi_1"),
            doc_kind: "sales_order".into(),
            erp: "sagepro".into(),
            erp_id: ErpDocumentId::new(erp_id),
            created_at_ms: 1,
            posted: None,
            command: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cross_reference_and_its_completion_are_one_durable_write() {
        // GIVEN a claimed intent in a file store
        let dir = std::env::temp_dir().join(format!("lb-store-xref-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sqlite");
        let s = SqliteStore::open(&path).unwrap();
        let key = IdempotencyKey::new("post#pi_1");
        assert_eq!(
            s.claim(&claim(key.as_str())).await.unwrap(),
            Claim::Acquired
        );
        // WHEN the document's cross-reference is recorded with the completion
        let existing = s
            .complete_with_xref(
                &xref("SO-1"),
                &key,
                RecordStatus::Completed,
                Some("SO-1".into()),
            )
            .await
            .unwrap();
        // THEN both are on disk when it returns (another connection sees them)
        assert_eq!(existing, None);
        let other = Connection::open(&path).unwrap();
        let (status, result): (String, Option<String>) = other
            .query_row(
                "SELECT status, result FROM idempotency WHERE key = ?1",
                params![key.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(status, RecordStatus::Completed.as_str());
        assert_eq!(result.as_deref(), Some("SO-1"));
        assert_eq!(
            read_xref(&other, "pi_1", "sales_order")
                .unwrap()
                .map(|x| x.erp_id),
            Some(ErpDocumentId::new("SO-1"))
        );
        // AND a second one keeps the first cross-reference, returns it, and still completes
        let key2 = IdempotencyKey::new("post#pi_1#again");
        s.claim(&claim(key2.as_str())).await.unwrap();
        let existing = s
            .complete_with_xref(
                &xref("SO-2"),
                &key2,
                RecordStatus::Completed,
                Some("SO-2".into()),
            )
            .await
            .unwrap();
        assert_eq!(existing.map(|x| x.erp_id), Some(ErpDocumentId::new("SO-1")));
        assert_eq!(
            s.get(&key2).await.unwrap().map(|r| r.status),
            Some(RecordStatus::Completed)
        );
        drop(s);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_failed_completion_keeps_neither_the_cross_reference_nor_the_completion() {
        // GIVEN a claimed intent whose completion cannot be written (the table is gone)
        let s = SqliteStore::in_memory().unwrap();
        let key = IdempotencyKey::new("post#pi_1");
        s.claim(&claim(key.as_str())).await.unwrap();
        s.write(|conn| {
            conn.execute_batch("ALTER TABLE idempotency RENAME TO idempotency_moved")
                .map_err(db_err)
        })
        .await
        .unwrap();
        // WHEN the cross-reference is recorded with the completion
        let out = s
            .complete_with_xref(
                &xref("SO-1"),
                &key,
                RecordStatus::Completed,
                Some("SO-1".into()),
            )
            .await;
        // THEN it fails, and the cross-reference was not kept either
        assert!(out.is_err());
        assert_eq!(
            s.get_xref(&StripeObjectId::new("pi_1"), "sales_order")
                .await
                .unwrap(),
            None
        );
    }
}
