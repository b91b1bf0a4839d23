//! SQLite persistence of the sandbox: documents per ERP and entity (JSON bodies searched with
//! `json_extract`, each searched field indexed on first use, so a look-up by reference costs
//! the same at 400 documents as at 400,000), master data, closed periods, Sage 500 staging rows and migration log, and
//! the audit log of every committed document.

use crate::{ErpKind, Seed};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::Value;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored JSON unreadable: {0}")]
    Json(#[from] serde_json::Error),
    #[error("store lock poisoned")]
    Poisoned,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditEntry {
    pub seq: i64,
    pub at_ms: i64,
    pub erp: String,
    pub entity: String,
    pub doc_id: String,
    /// `create` or `update`.
    pub action: String,
    pub body: Value,
}

pub struct Store {
    conn: Connection,
    /// Index names created by [`Store::find`] so far (one per searched field and comparison).
    indexed: std::cell::RefCell<std::collections::HashSet<String>>,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS documents (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, erp TEXT NOT NULL, entity TEXT NOT NULL, doc_id TEXT NOT NULL,
  body TEXT NOT NULL, committed_ms INTEGER NOT NULL, visible_ms INTEGER NOT NULL,
  UNIQUE (erp, entity, doc_id));
CREATE TABLE IF NOT EXISTS master (erp TEXT NOT NULL, kind TEXT NOT NULL, code TEXT NOT NULL,
  PRIMARY KEY (erp, kind, code));
CREATE TABLE IF NOT EXISTS closed_periods (erp TEXT NOT NULL, period TEXT NOT NULL, PRIMARY KEY (erp, period));
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL, erp TEXT NOT NULL,
  entity TEXT NOT NULL, doc_id TEXT NOT NULL, action TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS staging (row_key INTEGER PRIMARY KEY AUTOINCREMENT, company TEXT NOT NULL, tbl TEXT NOT NULL,
  session_key INTEGER NOT NULL, columns TEXT NOT NULL, process_status INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS migration_log (id INTEGER PRIMARY KEY AUTOINCREMENT, session_key INTEGER NOT NULL,
  row_key INTEGER, severity INTEGER NOT NULL, message TEXT NOT NULL);
";

/// A filter value for [`Store::find`].
#[derive(Debug, Clone, PartialEq)]
pub enum FilterValue {
    Text(String),
    /// Text compared trimmed and case-insensitively (ASCII), as a case-insensitive SQL Server
    /// collation compares e-mail addresses.
    TextNoCase(String),
    Int(i64),
    Bool(bool),
}

impl Store {
    pub fn open(path: Option<&Path>) -> Result<Self, StoreError> {
        let conn = match path {
            Some(p) => {
                let conn = Connection::open(p)?;
                // The sandbox stands in for an ERP's database, not for its durability: a commit
                // goes to the write-ahead log without waiting for the disk (a crash of the
                // machine may lose the last documents; a crash of the process loses none).
                conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")?;
                conn
            }
            None => Connection::open_in_memory()?,
        };
        conn.execute_batch(SCHEMA)?;
        Ok(Store {
            conn,
            indexed: Default::default(),
        })
    }

    pub fn seed(&self, seed: &Seed) -> Result<(), StoreError> {
        let erps: Vec<&str> = match seed.erp {
            Some(e) => vec![e.as_str()],
            None => ErpKind::ALL.map(ErpKind::as_str).to_vec(),
        };
        for erp in erps {
            for i in &seed.items {
                self.conn.execute(
                    "INSERT OR IGNORE INTO master VALUES (?1, 'item', ?2)",
                    params![erp, i],
                )?;
            }
            for a in &seed.gl_accounts {
                self.conn.execute(
                    "INSERT OR IGNORE INTO master VALUES (?1, 'account', ?2)",
                    params![erp, a],
                )?;
                if erp == ErpKind::Epicor.as_str() {
                    self.put_record(
                        erp,
                        "GLAccounts",
                        &epicor_internal(a),
                        &epicor_gl_account(a),
                    )?;
                }
            }
            for p in &seed.closed_periods {
                self.conn.execute(
                    "INSERT OR IGNORE INTO closed_periods VALUES (?1, ?2)",
                    params![erp, p],
                )?;
            }
        }
        Ok(())
    }

    pub fn has_master(&self, erp: &str, kind: &str, code: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM master WHERE erp = ?1 AND kind = ?2 AND code = ?3",
                params![erp, kind, code],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Is the period (`YYYY-MM`, the first 7 characters of a date) closed?
    pub fn period_closed(&self, erp: &str, date: &str) -> Result<bool, StoreError> {
        let period = date.get(..7).unwrap_or(date);
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM closed_periods WHERE erp = ?1 AND period = ?2",
                params![erp, period],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    pub fn next(&self, name: &str, start: i64) -> Result<i64, StoreError> {
        self.conn.execute(
            "INSERT INTO counters VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET value = value + 1",
            params![name, start],
        )?;
        Ok(self
            .conn
            .query_row("SELECT value FROM counters WHERE name = ?1", [name], |r| {
                r.get(0)
            })?)
    }

    /// Commit a document and its audit entry atomically.
    pub fn insert_doc(
        &self,
        erp: &str,
        entity: &str,
        doc_id: &str,
        body: &Value,
        search_lag_ms: u64,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let text = body.to_string();
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "INSERT INTO documents (erp, entity, doc_id, body, committed_ms, visible_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![erp, entity, doc_id, text, now, now + search_lag_ms as i64],
        )?;
        tx.execute(
            "INSERT INTO audit (at_ms, erp, entity, doc_id, action, body) VALUES (?1, ?2, ?3, ?4, 'create', ?5)",
            params![now, erp, entity, doc_id, text],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn update_doc(
        &self,
        erp: &str,
        entity: &str,
        doc_id: &str,
        body: &Value,
    ) -> Result<bool, StoreError> {
        let text = body.to_string();
        let tx = self.conn.unchecked_transaction()?;
        let n = tx.execute(
            "UPDATE documents SET body = ?4 WHERE erp = ?1 AND entity = ?2 AND doc_id = ?3",
            params![erp, entity, doc_id, text],
        )?;
        if n > 0 {
            tx.execute(
                "INSERT INTO audit (at_ms, erp, entity, doc_id, action, body) VALUES (?1, ?2, ?3, ?4, 'update', ?5)",
                params![now_ms(), erp, entity, doc_id, text],
            )?;
        }
        tx.commit()?;
        Ok(n > 0)
    }

    pub fn get_doc(
        &self,
        erp: &str,
        entity: &str,
        doc_id: &str,
    ) -> Result<Option<Value>, StoreError> {
        let text: Option<String> = self
            .conn
            .query_row(
                "SELECT body FROM documents WHERE erp = ?1 AND entity = ?2 AND doc_id = ?3",
                params![erp, entity, doc_id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(text.map(|t| serde_json::from_str(&t)).transpose()?)
    }

    /// Documents of an entity last changed (created or updated, per the audit log) at or after
    /// `since_ms`, oldest change first, with the change time formatted by SQLite's `strftime`
    /// with `time_format` (in UTC).
    pub fn changed_since(
        &self,
        erp: &str,
        entity: &str,
        since_ms: i64,
        time_format: &str,
    ) -> Result<Vec<(Value, i64, String)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT d.body, MAX(a.at_ms) AS ch, strftime(?4, MAX(a.at_ms) / 1000, 'unixepoch')
             FROM documents d JOIN audit a
               ON a.erp = d.erp AND a.entity = d.entity AND a.doc_id = d.doc_id
             WHERE d.erp = ?1 AND d.entity = ?2
             GROUP BY d.seq HAVING ch >= ?3 ORDER BY ch, d.doc_id",
        )?;
        let rows = stmt.query_map(params![erp, entity, since_ms, time_format], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (body, ms, formatted) = row?;
            out.push((serde_json::from_str(&body)?, ms, formatted));
        }
        Ok(out)
    }

    /// A Unix time (ms) from an ISO 8601 / SQL date-time text, as SQLite reads it (UTC).
    pub fn parse_time_ms(&self, text: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.conn.query_row(
            "SELECT CAST(ROUND((julianday(?1) - 2440587.5) * 86400000) AS INTEGER)",
            params![text.trim_end_matches('Z')],
            |r| r.get::<_, Option<i64>>(0),
        )?)
    }

    /// Merge `patch` into the one document whose `field` equals `value` (an edit made by an
    /// ERP user); `false` when there is none.
    pub fn edit_where(
        &self,
        erp: &str,
        entity: &str,
        field: &str,
        value: &str,
        patch: &serde_json::Map<String, Value>,
    ) -> Result<bool, StoreError> {
        let found: Option<(String, String)> = self
            .conn
            .query_row(
                "SELECT doc_id, body FROM documents WHERE erp = ?1 AND entity = ?2
                 AND json_extract(body, '$.' || ?3) = ?4",
                params![erp, entity, field, value],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((doc_id, body)) = found else {
            return Ok(false);
        };
        let mut doc: Value = serde_json::from_str(&body)?;
        if let Some(obj) = doc.as_object_mut() {
            for (k, v) in patch {
                obj.insert(k.clone(), v.clone());
            }
        }
        self.update_doc(erp, entity, &doc_id, &doc)
    }

    /// Documents whose JSON fields equal the filters, visible now (search lag applies), oldest
    /// first. Field names are restricted to `[A-Za-z0-9_]` by the callers.
    pub fn find(
        &self,
        erp: &str,
        entity: &str,
        filters: &[(String, FilterValue)],
        limit: i64,
    ) -> Result<Vec<Value>, StoreError> {
        self.find_visible_at(erp, entity, filters, limit, now_ms())
    }

    /// Like [`Store::find`] but ignoring search lag: what a stored procedure reading the table
    /// itself sees (at most 2 rows).
    pub fn find_committed(
        &self,
        erp: &str,
        entity: &str,
        filters: &[(String, FilterValue)],
    ) -> Result<Vec<Value>, StoreError> {
        self.find_visible_at(erp, entity, filters, 2, i64::MAX)
    }

    fn find_visible_at(
        &self,
        erp: &str,
        entity: &str,
        filters: &[(String, FilterValue)],
        limit: i64,
        at_ms: i64,
    ) -> Result<Vec<Value>, StoreError> {
        let mut sql = String::from(
            "SELECT body FROM documents WHERE erp = ?1 AND entity = ?2 AND visible_ms <= ?3",
        );
        let mut args: Vec<rusqlite::types::Value> = vec![
            erp.to_owned().into(),
            entity.to_owned().into(),
            at_ms.into(),
        ];
        for (field, value) in filters {
            let nocase = matches!(value, FilterValue::TextNoCase(_));
            let column = match self.indexed_column(field, nocase)? {
                Some(column) => column,
                None => {
                    args.push(format!("$.{field}").into());
                    if nocase {
                        format!("lower(trim(json_extract(body, ?{})))", args.len())
                    } else {
                        format!("json_extract(body, ?{})", args.len())
                    }
                }
            };
            sql.push_str(&format!(" AND {column} = ?{}", args.len() + 1));
            args.push(match value {
                FilterValue::Text(s) => s.clone().into(),
                FilterValue::TextNoCase(s) => s.trim().to_ascii_lowercase().into(),
                FilterValue::Int(i) => (*i).into(),
                FilterValue::Bool(b) => i64::from(*b).into(),
            });
        }
        sql.push_str(&format!(" ORDER BY seq LIMIT {}", limit.clamp(1, 1000)));
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(serde_json::from_str(&row?)?);
        }
        Ok(out)
    }

    /// The expression of `field` that an index covers, the index created on first use; `None`
    /// for a name outside `[A-Za-z0-9_]` (searched unindexed, through a bound path). The
    /// expression must be spelled exactly as indexed for SQLite to use the index; the index name
    /// carries the field name in hex because SQLite compares index names case-insensitively
    /// while JSON field names are case-sensitive.
    fn indexed_column(&self, field: &str, nocase: bool) -> Result<Option<String>, StoreError> {
        if field.is_empty()
            || field.len() > 64
            || !field
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Ok(None);
        }
        let column = if nocase {
            format!("lower(trim(json_extract(body, '$.{field}')))")
        } else {
            format!("json_extract(body, '$.{field}')")
        };
        let name = format!(
            "doc_by_{}{}",
            hex_of(field),
            if nocase { "_nocase" } else { "" }
        );
        if !self.indexed.borrow().contains(&name) {
            self.conn.execute_batch(&format!(
                "CREATE INDEX IF NOT EXISTS {name} ON documents (erp, entity, {column})"
            ))?;
            self.indexed.borrow_mut().insert(name);
        }
        Ok(Some(column))
    }

    /// Insert or replace a record that is not a document (a group, a posting flag): searchable
    /// like documents, never audited.
    pub fn put_record(
        &self,
        erp: &str,
        entity: &str,
        id: &str,
        body: &Value,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let text = body.to_string();
        let n = self.conn.execute(
            "UPDATE documents SET body = ?4 WHERE erp = ?1 AND entity = ?2 AND doc_id = ?3",
            params![erp, entity, id, text],
        )?;
        if n == 0 {
            self.conn.execute(
                "INSERT INTO documents (erp, entity, doc_id, body, committed_ms, visible_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![erp, entity, id, text, now],
            )?;
        }
        Ok(())
    }

    /// Remove a record written by [`Store::put_record`].
    pub fn delete_record(&self, erp: &str, entity: &str, id: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "DELETE FROM documents WHERE erp = ?1 AND entity = ?2 AND doc_id = ?3",
            params![erp, entity, id],
        )?;
        Ok(())
    }

    /// Add one master-data code (`item`, `account`, `paymethod`, …).
    pub fn add_master(&self, erp: &str, kind: &str, code: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO master VALUES (?1, ?2, ?3)",
            params![erp, kind, code],
        )?;
        Ok(())
    }

    /// Remove one master-data code (the installation knobs).
    pub fn remove_master(&self, erp: &str, kind: &str, code: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "DELETE FROM master WHERE erp = ?1 AND kind = ?2 AND code = ?3",
            params![erp, kind, code],
        )?;
        Ok(())
    }

    /// Every document of an ERP, in commit order: `(entity, doc_id, body)`.
    pub fn documents(&self, erp: &str) -> Result<Vec<(String, String, Value)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT entity, doc_id, body FROM documents WHERE erp = ?1 ORDER BY seq")?;
        let rows = stmt.query_map([erp], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (entity, doc_id, body) = row?;
            out.push((entity, doc_id, serde_json::from_str(&body)?));
        }
        Ok(out)
    }

    pub fn count(&self, erp: &str, entity: &str) -> Result<i64, StoreError> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM documents WHERE erp = ?1 AND entity = ?2",
            params![erp, entity],
            |r| r.get(0),
        )?)
    }

    pub fn audit(&self, erp: Option<&str>) -> Result<Vec<AuditEntry>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, at_ms, erp, entity, doc_id, action, body FROM audit WHERE ?1 IS NULL OR erp = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([erp], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, at_ms, erp, entity, doc_id, action, body) = row?;
            out.push(AuditEntry {
                seq,
                at_ms,
                erp,
                entity,
                doc_id,
                action,
                body: serde_json::from_str(&body)?,
            });
        }
        Ok(out)
    }

    pub fn insert_staging(
        &self,
        company: &str,
        table: &str,
        session_key: i64,
        columns: &Value,
    ) -> Result<i64, StoreError> {
        self.conn.execute(
            "INSERT INTO staging (company, tbl, session_key, columns, process_status) VALUES (?1, ?2, ?3, ?4, 0)",
            params![company, table, session_key, columns.to_string()],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn set_process_status(&self, row_key: i64, status: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE staging SET process_status = ?2 WHERE row_key = ?1",
            params![row_key, status],
        )?;
        Ok(())
    }

    /// Sage deletes the staging rows it migrated.
    pub fn delete_staging(&self, row_key: i64) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM staging WHERE row_key = ?1", [row_key])?;
        Ok(())
    }

    /// Every staging row of a session with its columns: `(table, row_key, process_status,
    /// columns)`, in insertion order.
    pub fn staging_rows_full(
        &self,
        session_key: i64,
    ) -> Result<Vec<(String, i64, i64, Value)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT tbl, row_key, process_status, columns FROM staging WHERE session_key = ?1 ORDER BY row_key",
        )?;
        let rows = stmt.query_map([session_key], |r| {
            let cols: String = r.get(3)?;
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                serde_json::from_str(&cols).unwrap_or(Value::Null),
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn log(
        &self,
        session_key: i64,
        row_key: Option<i64>,
        message: &str,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO migration_log (session_key, row_key, severity, message) VALUES (?1, ?2, 2, ?3)",
            params![session_key, row_key, message],
        )?;
        Ok(())
    }

    /// `(table, RowKey, ProcessStatus)` of a session's staging rows.
    pub fn staging_rows(&self, session_key: i64) -> Result<Vec<(String, i64, i64)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT tbl, row_key, process_status FROM staging WHERE session_key = ?1 ORDER BY row_key",
        )?;
        let rows = stmt.query_map([session_key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn logs(&self, session_key: i64) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT message FROM migration_log WHERE session_key = ?1 ORDER BY id")?;
        let rows = stmt.query_map([session_key], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Epicor's internal account of a display account: segments joined by `|` (`1010-00` →
/// `1010|00`; the sandbox's chart separates segments with `-`).
fn hex_of(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

pub fn epicor_internal(display: &str) -> String {
    display.split('-').collect::<Vec<_>>().join("|")
}

/// The `GLAccountSvc` row of a display account.
fn epicor_gl_account(display: &str) -> Value {
    let internal = epicor_internal(display);
    let mut row = serde_json::Map::new();
    row.insert("GLAccount1".into(), Value::from(internal.clone()));
    for (i, seg) in internal.split('|').enumerate() {
        row.insert(format!("SegValue{}", i + 1), Value::from(seg));
    }
    row.insert("GLAcctDispGLAcctDisp".into(), Value::from(display));
    row.insert("Active".into(), Value::from(true));
    Value::Object(row)
}

#[cfg(test)]
mod index_tests {
    use super::*;
    use serde_json::json;

    fn plan(store: &Store, sql: &str) -> String {
        let mut stmt = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        rows.join("; ")
    }

    #[test]
    fn a_find_by_field_uses_an_index_and_finds_what_the_scan_found() {
        // GIVEN 2,000 orders and a customer whose e-mail differs only by case and spaces
        let store = Store::open(None).unwrap();
        for k in 0..2_000 {
            let body = json!({"OrderNum": k, "PONum": format!("LB-pi_{k}-SO"), "Open": k % 2 == 0});
            store
                .insert_doc("epicor", "SalesOrders", &k.to_string(), &body, 0)
                .unwrap();
        }
        store
            .insert_doc(
                "epicor",
                "Customers",
                "C1",
                &json!({"EMailAddress": " Ann@Example.com "}),
                0,
            )
            .unwrap();
        // WHEN each kind of filter is searched
        let text = store
            .find(
                "epicor",
                "SalesOrders",
                &[("PONum".into(), FilterValue::Text("LB-pi_1234-SO".into()))],
                10,
            )
            .unwrap();
        let int = store
            .find(
                "epicor",
                "SalesOrders",
                &[("OrderNum".into(), FilterValue::Int(7))],
                10,
            )
            .unwrap();
        let both = store
            .find(
                "epicor",
                "SalesOrders",
                &[
                    ("Open".into(), FilterValue::Bool(true)),
                    ("OrderNum".into(), FilterValue::Int(8)),
                ],
                10,
            )
            .unwrap();
        let nocase = store
            .find(
                "epicor",
                "Customers",
                &[(
                    "EMailAddress".into(),
                    FilterValue::TextNoCase("ann@example.COM".into()),
                )],
                10,
            )
            .unwrap();
        let other_case_field = store
            .find(
                "epicor",
                "SalesOrders",
                &[("ponum".into(), FilterValue::Text("LB-pi_1234-SO".into()))],
                10,
            )
            .unwrap();
        // THEN the answers are those of a scan, and the look-up by reference is an index search
        assert_eq!(text.len(), 1);
        assert_eq!(text[0]["OrderNum"], 1234);
        assert_eq!(int.len(), 1);
        assert_eq!(int[0]["PONum"], "LB-pi_7-SO");
        assert_eq!(both.len(), 1);
        assert_eq!(both[0]["OrderNum"], 8);
        assert_eq!(nocase.len(), 1);
        assert!(
            other_case_field.is_empty(),
            "JSON field names are case-sensitive"
        );
        let name = format!("doc_by_{}", hex_of("PONum"));
        let p = plan(
            &store,
            "SELECT body FROM documents WHERE erp = 'epicor' AND entity = 'SalesOrders' \
             AND visible_ms <= 0 AND json_extract(body, '$.PONum') = 'x' ORDER BY seq LIMIT 1",
        );
        assert!(p.contains(&name), "{p}");
    }

    #[test]
    fn a_field_name_outside_the_safe_set_is_searched_unindexed() {
        let store = Store::open(None).unwrap();
        store
            .insert_doc("sagepro", "orders", "1", &json!({"a": {"b": "x"}}), 0)
            .unwrap();
        let found = store
            .find(
                "sagepro",
                "orders",
                &[("a.b".into(), FilterValue::Text("x".into()))],
                10,
            )
            .unwrap();
        assert_eq!(found.len(), 1);
        assert!(store.indexed.borrow().is_empty());
    }
}
