//! A durable embedded queue: one SQLite file in WAL mode per queue, for the local runner and
//! `ledgerbridge serve` on one machine.
//!
//! Semantics follow the SQS setup of the AWS template, so the stages cannot tell the two apart:
//! - `send` returns only once the message is committed and synced to disk (`synchronous=FULL`
//!   for the send transaction). Concurrent senders share one transaction (group commit), so
//!   a burst of webhook deliveries costs one sync, not one each.
//! - `receive` hands out visible messages and hides them for a visibility timeout; a message
//!   that is neither deleted nor released in that time is delivered again. Each delivery
//!   increments the message's receive count.
//! - `delete` removes a message after success; `retry` makes it visible again after a delay and
//!   remembers the reason.
//! - A message received `max_receives` times without success is moved to the `dead_letters`
//!   table with the last reason instead of being delivered again (the template's redrive
//!   policy, `maxReceiveCount`).
//! - Messages of one group are delivered one at a time, in the order sent (FIFO message
//!   groups); messages without a group are delivered in send order with no such limit.
//!
//! Receives, deletes and releases are committed with `synchronous=NORMAL`: a process crash never
//! loses them, a power failure may, and then a message is delivered once more, which every
//! stage tolerates (the pipeline is effectively-once downstream of an at-least-once queue).

use ledgerbridge_core::ids::MessageId;
use ledgerbridge_core::ports::{EventQueue, QueueError};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{oneshot, Notify};

/// Settings of one durable queue.
#[derive(Debug, Clone)]
pub struct DurableQueueSettings {
    /// Largest message body accepted, in bytes.
    pub max_message_bytes: usize,
    /// How long a received message stays hidden before it is delivered again.
    pub visibility_timeout: Duration,
    /// Deliveries without success before the message is dead-lettered (`maxReceiveCount`).
    pub max_receives: u32,
}

impl Default for DurableQueueSettings {
    fn default() -> Self {
        DurableQueueSettings {
            max_message_bytes: super::DEFAULT_MAX_MESSAGE_BYTES,
            visibility_timeout: Duration::from_secs(120),
            max_receives: 5,
        }
    }
}

/// One delivery of a message.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: MessageId,
    pub body: String,
    pub group: Option<String>,
    /// How many times the message has been delivered, this delivery included.
    pub receive_count: u32,
    receipt: String,
}

/// A message still in the queue, as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub id: MessageId,
    pub body: String,
    pub receive_count: u32,
    /// Why the last delivery did not succeed (the stage's retry reason).
    pub last_error: Option<String>,
    pub sent_ms: i64,
}

/// A message moved to the dead-letter table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub id: MessageId,
    pub body: String,
    pub group: Option<String>,
    pub receive_count: u32,
    pub reason: String,
    pub dead_at_ms: i64,
}

struct Outgoing {
    id: String,
    body: String,
    group: Option<String>,
    done: oneshot::Sender<Result<(), String>>,
}

#[derive(Default)]
struct Outbox {
    pending: Vec<Outgoing>,
    flushing: bool,
}

struct Inner {
    conn: Mutex<Connection>,
    outbox: Mutex<Outbox>,
    notify: Notify,
    settings: DurableQueueSettings,
}

/// The durable embedded queue. Cheap to clone; clones share the file.
#[derive(Clone)]
pub struct SqliteQueue {
    inner: Arc<Inner>,
}

/// seq, id, body, group, receive count, last error.
type Row = (i64, String, String, Option<String>, u32, Option<String>);

fn q_err(e: rusqlite::Error) -> QueueError {
    QueueError::Unavailable(format!("embedded queue: {e}"))
}

fn lock_err<T>(_: T) -> QueueError {
    QueueError::Unavailable("embedded queue lock poisoned".into())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl SqliteQueue {
    /// Open (or create) the queue file.
    pub fn open(path: &Path, settings: DurableQueueSettings) -> Result<Self, QueueError> {
        let conn = Connection::open(path).map_err(q_err)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=NORMAL;
             PRAGMA busy_timeout=5000;
             CREATE TABLE IF NOT EXISTS messages (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 id TEXT NOT NULL UNIQUE,
                 body TEXT NOT NULL,
                 grp TEXT,
                 sent_ms INTEGER NOT NULL,
                 visible_at_ms INTEGER NOT NULL,
                 receive_count INTEGER NOT NULL DEFAULT 0,
                 receipt TEXT,
                 last_error TEXT
             );
             CREATE INDEX IF NOT EXISTS messages_visible ON messages (visible_at_ms, seq);
             CREATE INDEX IF NOT EXISTS messages_group ON messages (grp, seq);
             -- what a receive reads of the rows it passes over (in flight, waiting for a retry
             -- or behind their group's head): without it each such row's body, stored before
             -- visible_at_ms, is read from the table, overflow pages included
             CREATE INDEX IF NOT EXISTS messages_ready ON messages (seq, visible_at_ms, grp);
             CREATE TABLE IF NOT EXISTS dead_letters (
                 seq INTEGER PRIMARY KEY,
                 id TEXT NOT NULL,
                 body TEXT NOT NULL,
                 grp TEXT,
                 receive_count INTEGER NOT NULL,
                 reason TEXT NOT NULL,
                 dead_at_ms INTEGER NOT NULL
             );",
        )
        .map_err(q_err)?;
        Ok(SqliteQueue {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                outbox: Mutex::new(Outbox::default()),
                notify: Notify::new(),
                settings,
            }),
        })
    }

    pub fn settings(&self) -> &DurableQueueSettings {
        &self.inner.settings
    }

    /// Make every message that is hidden for a delivery visible now. Call it only at start,
    /// while holding the data directory's lock: the process that received them is gone, so
    /// waiting out their visibility timeout would only delay them. Their receive counts stay.
    pub fn recover_in_flight(&self) -> Result<usize, QueueError> {
        let conn = self.inner.conn.lock().map_err(lock_err)?;
        let n = conn
            .execute(
                "UPDATE messages SET visible_at_ms = 0, receipt = NULL WHERE receipt IS NOT NULL",
                [],
            )
            .map_err(q_err)?;
        Ok(n)
    }

    /// Write every pending send in one transaction, until none is left.
    fn flush(inner: &Inner) {
        loop {
            let batch = match inner.outbox.lock() {
                Ok(mut o) => {
                    if o.pending.is_empty() {
                        o.flushing = false;
                        return;
                    }
                    std::mem::take(&mut o.pending)
                }
                Err(_) => return,
            };
            let result = Self::write_batch(inner, &batch).map_err(|e| e.to_string());
            if result.is_ok() {
                inner.notify.notify_waiters();
            }
            for p in batch {
                // The sender may have gone away (its request was cancelled): nothing to tell.
                if p.done.send(result.clone()).is_err() {
                    tracing::debug!("A sender stopped waiting for its group commit");
                }
            }
        }
    }

    fn write_batch(inner: &Inner, batch: &[Outgoing]) -> Result<(), QueueError> {
        let mut conn = inner.conn.lock().map_err(lock_err)?;
        conn.execute_batch("PRAGMA synchronous=FULL")
            .map_err(q_err)?;
        let result = (|| {
            let tx = conn.transaction().map_err(q_err)?;
            {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO messages (id, body, grp, sent_ms, visible_at_ms)
                         VALUES (?1, ?2, ?3, ?4, 0)",
                    )
                    .map_err(q_err)?;
                let now = now_ms();
                for p in batch {
                    stmt.execute(params![p.id, p.body, p.group, now])
                        .map_err(q_err)?;
                }
            }
            tx.commit().map_err(q_err)
        })();
        conn.execute_batch("PRAGMA synchronous=NORMAL")
            .map_err(q_err)?;
        result
    }

    /// Take up to `max` visible messages without waiting, hiding each for the visibility
    /// timeout. Messages past their last allowed delivery are dead-lettered instead.
    pub fn try_receive(&self, max: usize) -> Result<Vec<Delivery>, QueueError> {
        let settings = &self.inner.settings;
        let mut conn = self.inner.conn.lock().map_err(lock_err)?;
        let tx = conn.transaction().map_err(q_err)?;
        let now = now_ms();
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let rows: Vec<Row> = {
            // The oldest message of each group only, and only when it is visible: a group's
            // next message waits until the one in flight is deleted. The choice reads the
            // covering index only, so a row passed over costs an index entry, not its body;
            // the chosen rows are then read whole.
            let chosen: Vec<i64> = {
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT seq FROM messages m INDEXED BY messages_ready
                         WHERE visible_at_ms <= ?1
                           AND (grp IS NULL OR seq = (SELECT MIN(seq) FROM messages g WHERE g.grp = m.grp))
                         ORDER BY seq LIMIT ?2",
                    )
                    .map_err(q_err)?;
                let mapped = stmt
                    .query_map(params![now, limit], |r| r.get(0))
                    .map_err(q_err)?;
                mapped.collect::<Result<_, _>>().map_err(q_err)?
            };
            let mut stmt = tx
                .prepare_cached(
                    "SELECT seq, id, body, grp, receive_count, last_error FROM messages
                     WHERE seq = ?1",
                )
                .map_err(q_err)?;
            let mut rows = Vec::with_capacity(chosen.len());
            for seq in chosen {
                rows.push(
                    stmt.query_row(params![seq], |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                        ))
                    })
                    .map_err(q_err)?,
                );
            }
            rows
        };
        let mut out = Vec::with_capacity(rows.len());
        for (seq, id, body, group, count, last_error) in rows {
            if count >= settings.max_receives {
                let reason = format!(
                    "not processed after {count} deliveries; last reason: {}",
                    last_error
                        .as_deref()
                        .unwrap_or("none recorded (visibility timeout)")
                );
                tx.execute(
                    "INSERT INTO dead_letters (seq, id, body, grp, receive_count, reason, dead_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![seq, id, body, group, count, reason, now],
                )
                .map_err(q_err)?;
                tx.execute("DELETE FROM messages WHERE seq = ?1", params![seq])
                    .map_err(q_err)?;
                tracing::error!(
                    queue_message_id = %id,
                    receive_count = count,
                    alarm = "dead_letter",
                    "Message moved to the dead-letter table"
                );
                continue;
            }
            let receipt = uuid::Uuid::new_v4().to_string();
            let count = count.saturating_add(1);
            tx.execute(
                "UPDATE messages SET visible_at_ms = ?1, receive_count = ?2, receipt = ?3
                 WHERE seq = ?4",
                params![
                    now.saturating_add(ms(settings.visibility_timeout)),
                    count,
                    receipt,
                    seq
                ],
            )
            .map_err(q_err)?;
            out.push(Delivery {
                id: MessageId::new(id),
                body,
                group,
                receive_count: count,
                receipt,
            });
        }
        tx.commit().map_err(q_err)?;
        Ok(out)
    }

    /// Wait until at least one message is visible, then take up to `max`. Wakes on every
    /// send and at least every `poll` (messages whose visibility timeout or retry delay ends).
    pub async fn receive(&self, max: usize, poll: Duration) -> Result<Vec<Delivery>, QueueError> {
        loop {
            let notified = self.inner.notify.notified();
            let batch = self.try_receive(max)?;
            if !batch.is_empty() {
                return Ok(batch);
            }
            // Either a send or the poll interval ends the wait; both just mean "look again".
            if tokio::time::timeout(poll, notified).await.is_err() {
                tracing::trace!("No send within the poll interval");
            }
        }
    }

    /// Delete a delivered message after success. `false` when this delivery no longer owns
    /// the message (its visibility timeout ended and it was delivered again).
    pub fn delete(&self, delivery: &Delivery) -> Result<bool, QueueError> {
        let conn = self.inner.conn.lock().map_err(lock_err)?;
        let n = conn
            .execute(
                "DELETE FROM messages WHERE id = ?1 AND receipt = ?2",
                params![delivery.id.as_str(), delivery.receipt],
            )
            .map_err(q_err)?;
        Ok(n == 1)
    }

    /// Deliver the message again after `delay`, remembering why it failed.
    pub fn retry(
        &self,
        delivery: &Delivery,
        delay: Duration,
        reason: &str,
    ) -> Result<bool, QueueError> {
        let conn = self.inner.conn.lock().map_err(lock_err)?;
        let n = conn
            .execute(
                "UPDATE messages SET visible_at_ms = ?1, receipt = NULL, last_error = ?2
                 WHERE id = ?3 AND receipt = ?4",
                params![
                    now_ms().saturating_add(ms(delay)),
                    reason,
                    delivery.id.as_str(),
                    delivery.receipt
                ],
            )
            .map_err(q_err)?;
        Ok(n == 1)
    }

    /// Move a delivered message to the dead-letter table with a reason a person can act on
    /// (used for the parked queue, whose messages are kept, not consumed).
    pub fn dead_letter(&self, delivery: &Delivery, reason: &str) -> Result<bool, QueueError> {
        let mut conn = self.inner.conn.lock().map_err(lock_err)?;
        let tx = conn.transaction().map_err(q_err)?;
        let n = tx
            .execute(
                "INSERT INTO dead_letters (seq, id, body, grp, receive_count, reason, dead_at_ms)
                 SELECT seq, id, body, grp, receive_count, ?1, ?2 FROM messages
                 WHERE id = ?3 AND receipt = ?4",
                params![reason, now_ms(), delivery.id.as_str(), delivery.receipt],
            )
            .map_err(q_err)?;
        tx.execute(
            "DELETE FROM messages WHERE id = ?1 AND receipt = ?2",
            params![delivery.id.as_str(), delivery.receipt],
        )
        .map_err(q_err)?;
        tx.commit().map_err(q_err)?;
        Ok(n == 1)
    }

    /// Messages in the queue, in flight or waiting (dead letters not counted).
    pub fn len(&self) -> Result<usize, QueueError> {
        let conn = self.inner.conn.lock().map_err(lock_err)?;
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
            .map_err(q_err)?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    pub fn is_empty(&self) -> Result<bool, QueueError> {
        Ok(self.len()? == 0)
    }

    /// Every dead letter, oldest first.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, QueueError> {
        let conn = self.inner.conn.lock().map_err(lock_err)?;
        let mut stmt = conn
            .prepare(
                "SELECT id, body, grp, receive_count, reason, dead_at_ms FROM dead_letters
                 ORDER BY seq",
            )
            .map_err(q_err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(DeadLetter {
                    id: MessageId::new(r.get::<_, String>(0)?),
                    body: r.get(1)?,
                    group: r.get(2)?,
                    receive_count: r.get(3)?,
                    reason: r.get(4)?,
                    dead_at_ms: r.get(5)?,
                })
            })
            .map_err(q_err)?;
        rows.collect::<Result<_, _>>().map_err(q_err)
    }

    /// Remove one dead letter (once it has been sent again): `true` when it was there. Send the
    /// copy first, then remove: a crash in between leaves a duplicate, which every stage
    /// absorbs, never a loss.
    pub fn remove_dead_letter(&self, id: &MessageId) -> Result<bool, QueueError> {
        let conn = self.inner.conn.lock().map_err(lock_err)?;
        let n = conn
            .execute(
                "DELETE FROM dead_letters WHERE id = ?1",
                params![id.as_str()],
            )
            .map_err(q_err)?;
        Ok(n > 0)
    }

    /// Up to `limit` messages in the queue (waiting or in flight), oldest first, with their
    /// receive count and last error: what an operator sees as "waiting".
    pub fn pending(&self, limit: usize) -> Result<Vec<Pending>, QueueError> {
        let conn = self.inner.conn.lock().map_err(lock_err)?;
        let mut stmt = conn
            .prepare(
                "SELECT id, body, receive_count, last_error, sent_ms FROM messages
                 ORDER BY seq LIMIT ?1",
            )
            .map_err(q_err)?;
        let rows = stmt
            .query_map(params![i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                Ok(Pending {
                    id: MessageId::new(r.get::<_, String>(0)?),
                    body: r.get(1)?,
                    receive_count: r.get(2)?,
                    last_error: r.get(3)?,
                    sent_ms: r.get(4)?,
                })
            })
            .map_err(q_err)?;
        rows.collect::<Result<_, _>>().map_err(q_err)
    }

    /// The number of dead letters.
    pub fn dead_letter_count(&self) -> Result<usize, QueueError> {
        let conn = self.inner.conn.lock().map_err(lock_err)?;
        let n: Option<i64> = conn
            .query_row("SELECT COUNT(*) FROM dead_letters", [], |r| r.get(0))
            .optional()
            .map_err(q_err)?;
        Ok(usize::try_from(n.unwrap_or(0)).unwrap_or(0))
    }
}

/// An exclusive lock on a data directory, held while the value lives (and released by the
/// operating system when the process dies): one process per set of queue and store files, so
/// that process may recover what a previous one left in flight.
pub struct DataDirLock {
    _conn: Connection,
}

impl DataDirLock {
    /// Lock `path` (a SQLite file used only as the lock). `Ok(None)` when another process
    /// holds it.
    pub fn acquire(path: &Path) -> Result<Option<DataDirLock>, QueueError> {
        let conn = Connection::open(path).map_err(q_err)?;
        conn.busy_timeout(Duration::ZERO).map_err(q_err)?;
        match conn.execute_batch(
            "PRAGMA journal_mode=DELETE;
             PRAGMA locking_mode=EXCLUSIVE;
             BEGIN EXCLUSIVE;",
        ) {
            Ok(()) => Ok(Some(DataDirLock { _conn: conn })),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(q_err(e)),
        }
    }
}

impl EventQueue for SqliteQueue {
    async fn send(&self, body: String, group: Option<&str>) -> Result<MessageId, QueueError> {
        let limit = self.inner.settings.max_message_bytes;
        if body.len() > limit {
            return Err(QueueError::TooLarge {
                size: body.len(),
                limit,
            });
        }
        let id = uuid::Uuid::new_v4().to_string();
        let (done, rx) = oneshot::channel();
        let start_flush = {
            let mut o = self.inner.outbox.lock().map_err(lock_err)?;
            o.pending.push(Outgoing {
                id: id.clone(),
                body,
                group: group.map(str::to_owned),
                done,
            });
            !std::mem::replace(&mut o.flushing, true)
        };
        if start_flush {
            let inner = self.inner.clone();
            // The flush runs to completion even if this sender is cancelled, so the other
            // senders in its group are always answered.
            tokio::task::spawn_blocking(move || Self::flush(&inner));
        }
        rx.await
            .map_err(|_| QueueError::Unavailable("embedded queue writer stopped".into()))?
            .map_err(QueueError::Unavailable)?;
        Ok(MessageId::new(id))
    }

    fn max_message_bytes(&self) -> usize {
        self.inner.settings.max_message_bytes
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn settings(visibility_ms: u64, max_receives: u32) -> DurableQueueSettings {
        DurableQueueSettings {
            max_message_bytes: 1024,
            visibility_timeout: Duration::from_millis(visibility_ms),
            max_receives,
        }
    }

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "lb-durable-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("queue.sqlite")
    }

    #[tokio::test]
    async fn a_sent_message_survives_a_reopen_and_a_delete_removes_it() {
        let path = temp("reopen");
        let q = SqliteQueue::open(&path, settings(60_000, 5)).unwrap();
        let id = q.send("one".into(), None).await.unwrap();
        drop(q);
        let q = SqliteQueue::open(&path, settings(60_000, 5)).unwrap();
        let got = q.try_receive(10).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].id, id);
        assert_eq!(got[0].body, "one");
        assert_eq!(got[0].receive_count, 1);
        assert!(
            q.try_receive(10).unwrap().is_empty(),
            "hidden while in flight"
        );
        assert!(q.delete(&got[0]).unwrap());
        assert!(q.is_empty().unwrap());
    }

    #[tokio::test]
    async fn pending_lists_the_last_error_and_a_removed_dead_letter_is_gone() {
        let q = SqliteQueue::open(&temp("pending"), settings(60_000, 5)).unwrap();
        q.send("waits".into(), None).await.unwrap();
        let got = q.try_receive(1).unwrap();
        assert!(q
            .retry(&got[0], Duration::from_secs(60), "parent not there yet")
            .unwrap());
        let pending = q.pending(10).unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].body, "waits");
        assert_eq!(pending[0].receive_count, 1);
        assert_eq!(
            pending[0].last_error.as_deref(),
            Some("parent not there yet")
        );

        q.send("bad".into(), None).await.unwrap();
        let got = q.try_receive(10).unwrap();
        let bad = got.iter().find(|d| d.body == "bad").unwrap();
        assert!(q.dead_letter(bad, "parked: no such item").unwrap());
        let dead = q.dead_letters().unwrap();
        assert_eq!(dead.len(), 1);
        assert!(q.remove_dead_letter(&dead[0].id).unwrap());
        assert!(!q.remove_dead_letter(&dead[0].id).unwrap(), "only once");
        assert_eq!(q.dead_letter_count().unwrap(), 0);
    }

    #[tokio::test]
    async fn an_undeleted_message_is_delivered_again_after_the_visibility_timeout() {
        let q = SqliteQueue::open(&temp("visibility"), settings(150, 5)).unwrap();
        q.send("m".into(), None).await.unwrap();
        let first = q.try_receive(1).unwrap();
        assert_eq!(first.len(), 1);
        assert!(q.try_receive(1).unwrap().is_empty());
        tokio::time::sleep(Duration::from_millis(200)).await;
        let again = q.try_receive(1).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].receive_count, 2);
        assert!(
            !q.delete(&first[0]).unwrap(),
            "an old delivery no longer owns the message"
        );
        assert!(q.delete(&again[0]).unwrap());
        assert!(q.is_empty().unwrap());
    }

    #[tokio::test]
    async fn in_flight_messages_of_a_dead_process_are_recovered_at_start() {
        let path = temp("recover");
        let q = SqliteQueue::open(&path, settings(3_600_000, 5)).unwrap();
        q.send("m".into(), None).await.unwrap();
        assert_eq!(q.try_receive(1).unwrap().len(), 1);
        drop(q); // the process dies with the message in flight
        let q = SqliteQueue::open(&path, settings(3_600_000, 5)).unwrap();
        assert!(q.try_receive(1).unwrap().is_empty(), "still hidden");
        assert_eq!(q.recover_in_flight().unwrap(), 1);
        let got = q.try_receive(1).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].receive_count, 2, "the lost delivery still counts");
    }

    #[tokio::test]
    async fn a_message_is_dead_lettered_after_max_receives_with_its_last_reason() {
        let q = SqliteQueue::open(&temp("dlq"), settings(60_000, 3)).unwrap();
        q.send("poison".into(), None).await.unwrap();
        for n in 1..=3 {
            let d = q.try_receive(1).unwrap();
            assert_eq!(d.len(), 1, "delivery {n}");
            assert!(q
                .retry(&d[0], Duration::ZERO, &format!("failure {n}"))
                .unwrap());
        }
        assert!(q.try_receive(1).unwrap().is_empty());
        assert!(q.is_empty().unwrap());
        let dead = q.dead_letters().unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].body, "poison");
        assert_eq!(dead[0].receive_count, 3);
        assert!(dead[0].reason.contains("failure 3"), "{}", dead[0].reason);
    }

    #[tokio::test]
    async fn a_retry_waits_for_its_delay() {
        let q = SqliteQueue::open(&temp("delay"), settings(60_000, 5)).unwrap();
        q.send("m".into(), None).await.unwrap();
        let d = q.try_receive(1).unwrap();
        q.retry(&d[0], Duration::from_millis(150), "later").unwrap();
        assert!(q.try_receive(1).unwrap().is_empty());
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(q.try_receive(1).unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_group_is_delivered_one_message_at_a_time_in_order() {
        let q = SqliteQueue::open(&temp("groups"), settings(60_000, 5)).unwrap();
        for body in ["a1", "a2", "b1", "free"] {
            let group = if body == "free" {
                None
            } else {
                Some(&body[..1])
            };
            q.send(body.into(), group).await.unwrap();
        }
        let first: Vec<String> = q
            .try_receive(10)
            .unwrap()
            .into_iter()
            .map(|d| d.body)
            .collect();
        assert_eq!(first, ["a1", "b1", "free"]);
        assert!(q.try_receive(10).unwrap().is_empty(), "a2 waits for a1");
    }

    #[tokio::test]
    async fn a_group_moves_on_once_its_head_is_deleted() {
        let q = SqliteQueue::open(&temp("groups2"), settings(60_000, 5)).unwrap();
        q.send("a1".into(), Some("a")).await.unwrap();
        q.send("a2".into(), Some("a")).await.unwrap();
        let head = q.try_receive(10).unwrap();
        assert_eq!(head.len(), 1);
        q.delete(&head[0]).unwrap();
        let next = q.try_receive(10).unwrap();
        assert_eq!(next[0].body, "a2");
    }

    #[tokio::test]
    async fn concurrent_sends_are_all_kept_and_an_oversized_one_is_refused() {
        let path = temp("concurrent");
        let q = SqliteQueue::open(&path, settings(60_000, 5)).unwrap();
        let sends = (0..200).map(|i| {
            let q = q.clone();
            tokio::spawn(async move { q.send(format!("m{i}"), None).await })
        });
        for s in futures::future::join_all(sends).await {
            s.unwrap().unwrap();
        }
        assert!(matches!(
            q.send("x".repeat(2000), None).await,
            Err(QueueError::TooLarge {
                size: 2000,
                limit: 1024
            })
        ));
        drop(q);
        let q = SqliteQueue::open(&path, settings(60_000, 5)).unwrap();
        assert_eq!(q.len().unwrap(), 200);
    }

    #[test]
    fn a_data_directory_is_locked_by_one_holder_at_a_time() {
        let path = temp("lock").with_file_name("ledgerbridge.lock");
        let first = DataDirLock::acquire(&path).unwrap();
        assert!(first.is_some());
        assert!(DataDirLock::acquire(&path).unwrap().is_none(), "held");
        drop(first);
        assert!(DataDirLock::acquire(&path).unwrap().is_some(), "released");
    }

    #[tokio::test]
    async fn receive_wakes_on_a_send() {
        let q = SqliteQueue::open(&temp("wake"), settings(60_000, 5)).unwrap();
        let r = {
            let q = q.clone();
            tokio::spawn(async move { q.receive(10, Duration::from_secs(30)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        q.send("m".into(), None).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), r)
            .await
            .expect("woken by the send")
            .unwrap()
            .unwrap();
        assert_eq!(got[0].body, "m");
    }
}
