//! `ledgerbridge quarantine list|show`: the validly signed webhook deliveries the intake kept
//! instead of queueing (a body that does not parse, no usable event id, or an event id already
//! seen with another payload; docs/fault-matrix.md, rows I7 and D5). Each is an idempotency
//! record `intake#quarantine#{sha256 of the body}` with status `PARKED`, whose result holds
//! the reason, the event id when there is one, when it arrived, and the exact bytes (base64).
//!
//! Locally the records are in the data directory's SQLite store; with `--stack-outputs` they
//! are read from the stack's state table (partition key `idem#intake#quarantine#{sha256}`)
//! with the caller's AWS credentials. `list` never prints a body (a delivery may carry payment
//! data); `show ID` prints one delivery's body, and `--raw` writes exactly its bytes and
//! nothing else (to keep, diff, or re-sign for a replay through the webhook endpoint).

use base64::Engine as _;
use ledgerbridge_core::keys::table;
use ledgerbridge_intake::QuarantinedDelivery;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The key prefix of quarantine records (`IntakeKey::quarantine` without the hash).
pub const KEY_PREFIX: &str = "intake#quarantine#";

#[derive(clap::Args)]
pub struct QuarantineArgs {
    /// The data directory of `ledgerbridge local` or `serve`.
    #[arg(long, default_value = ".local", global = true)]
    pub data_dir: PathBuf,
    /// Read the AWS deployment instead: the stack's outputs as `aws cloudformation
    /// describe-stacks --stack-name NAME` prints them (saved to a file); the state table is
    /// read with the caller's AWS credentials (`AWS_ENDPOINT_URL` overrides the endpoint).
    #[arg(long, global = true)]
    pub stack_outputs: Option<PathBuf>,
    #[command(subcommand)]
    pub action: QuarantineAction,
}

#[derive(clap::Subcommand)]
pub enum QuarantineAction {
    /// Every quarantined delivery: id, reason, event id, when, size. Never a body.
    List,
    /// One delivery, with its body.
    Show {
        /// The id `list` prints (the body's SHA-256), or a unique prefix of at least 8 digits.
        id: String,
        /// Write exactly the stored bytes to standard output, nothing else.
        #[arg(long)]
        raw: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum QuarantineError {
    #[error("cannot open the local store {path}: {message}")]
    Local { path: PathBuf, message: String },
    #[error("the state table could not be read: {0}")]
    Aws(String),
    #[error("{0}")]
    Config(String),
    #[error("no quarantined delivery {0}")]
    NotFound(String),
    #[error("{0} matches more than one delivery; give more digits")]
    Ambiguous(String),
    #[error("a quarantine id is at least 8 hex digits: {0}")]
    ShortId(String),
    #[error("cannot write the output: {0}")]
    Write(#[from] std::io::Error),
}

/// One quarantined delivery as stored.
#[derive(Debug, PartialEq, Eq)]
pub struct Quarantined {
    /// The SHA-256 of the body (hex): the record's id.
    pub id: String,
    /// `PARKED` when kept; `INPROGRESS` while the intake is still storing it.
    pub status: String,
    /// `None` while in progress, or when the stored result cannot be read.
    pub delivery: Option<QuarantinedDelivery>,
}

impl Quarantined {
    /// The exact bytes received, when stored.
    pub fn body(&self) -> Option<Vec<u8>> {
        self.delivery.as_ref().and_then(|d| {
            base64::engine::general_purpose::STANDARD
                .decode(&d.body_base64)
                .ok()
        })
    }
}

fn from_stored(key: &str, status: String, result: Option<String>) -> Option<Quarantined> {
    let id = key.strip_prefix(KEY_PREFIX)?.to_owned();
    Some(Quarantined {
        id,
        status,
        delivery: result.and_then(|r| serde_json::from_str(&r).ok()),
    })
}

/// The quarantine records of a local data directory (`ledgerbridge.sqlite`), read-only.
pub fn local(data_dir: &Path) -> Result<Vec<Quarantined>, QuarantineError> {
    let path = data_dir.join(crate::console::embedded::STATE_FILE);
    let err = |e: rusqlite::Error| QuarantineError::Local {
        path: path.clone(),
        message: e.to_string(),
    };
    if !path.exists() {
        return Err(QuarantineError::Local {
            path: path.clone(),
            message: "no such file (is this the data directory of `local` or `serve`?)".into(),
        });
    }
    let conn =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(err)?;
    let mut stmt = conn
        .prepare(
            "SELECT key, status, result FROM idempotency WHERE substr(key, 1, ?1) = ?2 ORDER BY key",
        )
        .map_err(err)?;
    let rows = stmt
        .query_map(
            rusqlite::params![KEY_PREFIX.len() as i64, KEY_PREFIX],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            },
        )
        .map_err(err)?;
    let mut out = Vec::new();
    for row in rows {
        let (key, status, result) = row.map_err(err)?;
        out.extend(from_stored(&key, status, result));
    }
    Ok(out)
}

/// The quarantine records of a deployed stack's state table (a filtered scan: quarantine
/// records are few, and the table has no index on the key prefix).
pub async fn aws(
    client: &aws_sdk_dynamodb::Client,
    table_name: &str,
) -> Result<Vec<Quarantined>, QuarantineError> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let prefix = table::idempotency(KEY_PREFIX);
    let mut pages = client
        .scan()
        .table_name(table_name)
        .filter_expression("begins_with(pk, :p)")
        .expression_attribute_values(":p", AttributeValue::S(prefix.clone()))
        .into_paginator()
        .items()
        .send();
    let mut out = Vec::new();
    while let Some(item) = pages.next().await {
        let item = item.map_err(|e| {
            QuarantineError::Aws(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())
        })?;
        let s = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        let Some(pk) = s("pk") else { continue };
        let Some(key) = pk.strip_prefix("idem#") else {
            continue;
        };
        out.extend(from_stored(key, s("status").unwrap_or_default(), s("data")));
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// `YYYY-MM-DD HH:MM:SS UTC` of epoch milliseconds.
fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The `list` output: one line per delivery, never a body.
pub fn render_list(items: &[Quarantined]) -> String {
    if items.is_empty() {
        return "no quarantined deliveries\n".into();
    }
    let mut out = format!(
        "{} quarantined deliver{}\n",
        items.len(),
        if items.len() == 1 { "y" } else { "ies" }
    );
    for q in items {
        match &q.delivery {
            Some(d) => out.push_str(&format!(
                "{}  {:<18} {:<32} {}  {} bytes\n",
                q.id,
                d.reason,
                d.event_id.as_deref().unwrap_or("-"),
                utc(d.received_at_ms),
                q.body().map_or(0, |b| b.len()),
            )),
            None => out.push_str(&format!(
                "{}  ({} — not stored yet, or unreadable)\n",
                q.id, q.status
            )),
        }
    }
    out
}

/// The `show` output: the record, then the body as text (as received, when it is UTF-8) or
/// base64.
pub fn render_show(q: &Quarantined) -> Vec<u8> {
    let mut out = format!("id          {}\nstatus      {}\n", q.id, q.status).into_bytes();
    let Some(d) = &q.delivery else {
        out.extend_from_slice(b"(no stored delivery)\n");
        return out;
    };
    let body = q.body().unwrap_or_default();
    out.extend_from_slice(
        format!(
            "reason      {}\nevent id    {}\nreceived at {}\nbytes       {}\n\n",
            d.reason,
            d.event_id.as_deref().unwrap_or("-"),
            utc(d.received_at_ms),
            body.len()
        )
        .as_bytes(),
    );
    if std::str::from_utf8(&body).is_ok() {
        out.extend_from_slice(&body);
        if !body.ends_with(b"\n") {
            out.push(b'\n');
        }
    } else {
        out.extend_from_slice(b"(not UTF-8; base64 of the exact bytes)\n");
        out.extend_from_slice(d.body_base64.as_bytes());
        out.push(b'\n');
    }
    out
}

/// The delivery `id` names: the full SHA-256 or a unique prefix of at least 8 digits.
pub fn find<'a>(items: &'a [Quarantined], id: &str) -> Result<&'a Quarantined, QuarantineError> {
    let id = id.trim().to_ascii_lowercase();
    let id = id.strip_prefix(KEY_PREFIX).unwrap_or(&id).to_owned();
    if id.len() < 8 {
        return Err(QuarantineError::ShortId(id));
    }
    let mut matching = items.iter().filter(|q| q.id.starts_with(&id));
    match (matching.next(), matching.next()) {
        (Some(q), None) => Ok(q),
        (None, _) => Err(QuarantineError::NotFound(id)),
        (Some(_), Some(_)) => Err(QuarantineError::Ambiguous(id)),
    }
}

pub async fn run(args: QuarantineArgs) -> Result<(), QuarantineError> {
    let items = match &args.stack_outputs {
        Some(path) => {
            let stack = crate::parked_aws::load(path)
                .map_err(|e| QuarantineError::Config(e.to_string()))?;
            let table_name = stack.state_table.ok_or_else(|| {
                QuarantineError::Config("the stack outputs name no StateTableName".into())
            })?;
            let env = ledgerbridge_core::config::Env::from_process();
            let sdk =
                ledgerbridge_adapters::aws::sdk_config(env.plain("AWS_ENDPOINT_URL").as_deref())
                    .await;
            aws(&aws_sdk_dynamodb::Client::new(&sdk), &table_name).await?
        }
        None => local(&args.data_dir)?,
    };
    let mut stdout = std::io::stdout().lock();
    match args.action {
        QuarantineAction::List => stdout.write_all(render_list(&items).as_bytes())?,
        QuarantineAction::Show { id, raw } => {
            let q = find(&items, &id)?;
            if raw {
                let body = q.body().ok_or_else(|| {
                    QuarantineError::NotFound(format!("{} (no stored body)", q.id))
                })?;
                stdout.write_all(&body)?;
            } else {
                stdout.write_all(&render_show(q))?;
            }
        }
    }
    stdout.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledgerbridge_adapters::embedded::{MemoryQueue, SqliteStore};
    use ledgerbridge_core::webhook::sign_header;
    use ledgerbridge_core::FixedClock;
    use ledgerbridge_intake::{handle_webhook, Deps, RotatingVerifier};
    use std::time::Duration;

    const SECRET: &str = "whsec_quarantine_cli_test";
    const T0: i64 = 1_785_000_000;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "ledgerbridge-quarantine-{tag}-{}",
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn utc_formats_epoch_milliseconds() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_785_000_000_000), "2026-07-25 17:20:00 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
    }

    /// GIVEN a data directory whose intake quarantined two deliveries (one with card details)
    /// WHEN the quarantine is listed THEN both appear with id, reason and size, and no body;
    /// `show` prints one body exactly, and a prefix finds it.
    #[tokio::test]
    async fn lists_without_bodies_and_shows_the_exact_bytes() {
        let dir = temp_dir("local");
        let store = SqliteStore::open(&dir.join(crate::console::embedded::STATE_FILE)).unwrap();
        let deps = Deps {
            queue: MemoryQueue::new(262_144),
            store,
            verifier: RotatingVerifier::fixed(&[SECRET]),
            clock: FixedClock::at_secs(T0),
            handled: ["customer.created".to_owned()].into_iter().collect(),
            dedupe_for_secs: 86_400,
            lease_ms: 15_000,
            wait_for_peer: Duration::from_millis(100),
        };
        let secret_bearing = br#"{"id": "evt_q1", "type": "charge.succeeded", "data": {"object": {"card": "4242424242424242""#.to_vec();
        let binary = vec![0xffu8, 0x00, 0x7b, 0xfe];
        for body in [&secret_bearing, &binary] {
            let out = handle_webhook(&deps, Some(&sign_header(&[SECRET], T0, body)), body).await;
            assert_eq!(out.status, 200);
            assert!(out.body.contains("quarantined"));
        }
        let items = local(&dir).unwrap();
        assert_eq!(items.len(), 2);
        let list = render_list(&items);
        assert!(list.starts_with("2 quarantined deliveries"), "{list}");
        assert!(list.contains("unparseable_event"), "{list}");
        assert!(!list.contains("4242"), "a body reached the list: {list}");
        let hash = |b: &[u8]| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b));
        let id = hash(&secret_bearing);
        assert!(list.contains(&id));
        let q = find(&items, &id[..10]).unwrap();
        assert_eq!(q.body().unwrap(), secret_bearing);
        let shown = String::from_utf8(render_show(q)).unwrap();
        assert!(shown.contains("4242424242424242"), "{shown}");
        assert!(
            shown.contains("received at 2026-07-25 17:20:00 UTC"),
            "{shown}"
        );
        let b = find(&items, &hash(&binary)).unwrap();
        assert_eq!(b.body().unwrap(), binary);
        assert!(String::from_utf8_lossy(&render_show(b)).contains("not UTF-8"));
        assert!(matches!(
            find(&items, "abc"),
            Err(QuarantineError::ShortId(_))
        ));
        assert!(matches!(
            find(&items, "0000000000"),
            Err(QuarantineError::NotFound(_))
        ));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn an_empty_or_missing_store_says_so() {
        let dir = temp_dir("empty");
        assert!(matches!(local(&dir), Err(QuarantineError::Local { .. })));
        SqliteStore::open(&dir.join(crate::console::embedded::STATE_FILE)).unwrap();
        let items = local(&dir).unwrap();
        assert!(items.is_empty());
        assert_eq!(render_list(&items), "no quarantined deliveries\n");
        std::fs::remove_dir_all(&dir).ok();
    }
}
