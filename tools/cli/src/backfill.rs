//! `ledgerbridge backfill`: bring Stripe history older than the events API's 30 days into the
//! ERP through the normal pipeline.
//!
//! It lists Stripe objects by creation time (`created[gte]`/`created[lte]`, `starting_after`
//! paging, `limit=100`), turns each object into the Stripe event a webhook would have carried
//! (a *synthetic event*), signs it with the endpoint's signing secret and delivers it to the
//! webhook endpoint — `ledgerbridge local`, `ledgerbridge serve` or the AWS stack's API — so the
//! intake's deduplication, the events queue, the transform, exactly-once posting, parking and
//! write-back are the same code as for live events.
//!
//! **Synthetic event ids.** `evt_lbbf_` followed by the first 32 hex digits of
//! SHA-256(`ledgerbridge-backfill`, event type, object id), newline-separated: deterministic per
//! object and event type, so a second run (or an overlapping range) is answered "duplicate" by
//! the intake and queues nothing. Live webhook events have Stripe's own ids, so the intake
//! cannot match them with a backfilled copy; the ERP documents can: every command carries an
//! external reference built from the Stripe object id (`LB-pi_…-SO`, `LB-re_…-CM`, …), and
//! erp-post books one document per reference, so an object delivered by both the webhooks and
//! a backfill is booked once. An object whose status changed between runs (an invoice `open`,
//! later `paid`) gets a new event type and so a new id, as a live webhook would.
//!
//! **Cursors.** Per range and kind, the id of the last object delivered is written to the
//! cursor file after every page and when the run stops; a later run over the same range
//! continues `starting_after` it, and skips kinds already finished. A run killed mid-page
//! redelivers at most that page, which the intake answers as duplicates.
//!
//! **Rate.** The Stripe client spaces requests (`--rate`, requests per second; the client's
//! default when not given) and retries 429 and 5xx answers with back-off, honouring
//! `Retry-After`. Webhook deliveries answered 5xx or 503 are retried with back-off too.

use crate::sample_stripe::SampleStripe;
use futures::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use ledgerbridge_core::secrets::Secret;
use ledgerbridge_core::webhook::sign_header;
use ledgerbridge_stripe::{
    CreatedListKind, CreatedListQuery, StripeClient, StripeClientConfig, StripeError,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What `--kinds` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Kind {
    Customers,
    Payments,
    Refunds,
    Invoices,
    #[value(name = "credit_notes")]
    CreditNotes,
    Disputes,
    Payouts,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Customers,
        Kind::Payments,
        Kind::Refunds,
        Kind::Invoices,
        Kind::CreditNotes,
        Kind::Disputes,
        Kind::Payouts,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Kind::Customers => "customers",
            Kind::Payments => "payments",
            Kind::Refunds => "refunds",
            Kind::Invoices => "invoices",
            Kind::CreditNotes => "credit_notes",
            Kind::Disputes => "disputes",
            Kind::Payouts => "payouts",
        }
    }

    /// The Stripe list this kind reads (payments are PaymentIntents).
    pub fn list(&self) -> CreatedListKind {
        match self {
            Kind::Customers => CreatedListKind::Customers,
            Kind::Payments => CreatedListKind::PaymentIntents,
            Kind::Refunds => CreatedListKind::Refunds,
            Kind::Invoices => CreatedListKind::Invoices,
            Kind::CreditNotes => CreatedListKind::CreditNotes,
            Kind::Disputes => CreatedListKind::Disputes,
            Kind::Payouts => CreatedListKind::Payouts,
        }
    }
}

#[derive(clap::Args)]
pub struct BackfillArgs {
    /// First day (UTC, inclusive), `YYYY-MM-DD`.
    #[arg(long)]
    from: String,
    /// Last day (UTC, inclusive), `YYYY-MM-DD`.
    #[arg(long)]
    to: String,
    /// Which objects to read (comma-separated); all of them by default.
    #[arg(long, value_enum, value_delimiter = ',')]
    kinds: Vec<Kind>,
    /// Print what would be queued, queue nothing and leave the cursors alone.
    #[arg(long)]
    dry_run: bool,
    /// The webhook endpoint the events are delivered to.
    #[arg(long, default_value = "http://127.0.0.1:8787/webhook")]
    url: String,
    /// The endpoint's signing secret(s).
    #[arg(long = "secret", env = "LEDGERBRIDGE_BACKFILL_SECRET", default_value = crate::local::DEV_SECRET)]
    secrets: Vec<String>,
    /// Read the local sample data (a directory like `tests/fixtures/stripe`) through the local
    /// Stripe stand-in instead of Stripe.
    #[arg(long)]
    samples: Option<PathBuf>,
    /// Stripe's API base URL (with `STRIPE_API_KEY`).
    #[arg(long, env = "LEDGERBRIDGE_STRIPE_BASE_URL", default_value = ledgerbridge_stripe::config::DEFAULT_BASE_URL)]
    stripe_base_url: String,
    /// Stripe requests per second (Stripe allows 100 in live mode and 25 in test mode); the
    /// client's default when not given.
    #[arg(long)]
    rate: Option<u32>,
    /// Where the per-kind cursors are kept.
    #[arg(long, default_value = ".local/backfill-cursors.json")]
    cursor_file: PathBuf,
    /// Events delivered to the webhook endpoint at once (within one page of 100).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Stop after delivering this many objects (run again to continue from the cursor).
    #[arg(long)]
    max_objects: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("--{which} {value:?} is not a date (YYYY-MM-DD)")]
    BadDate { which: &'static str, value: String },
    #[error("--from is after --to")]
    EmptyRange,
    #[error("no Stripe key: set STRIPE_API_KEY, or read the sample data with --samples")]
    NoKey,
    #[error("local Stripe stand-in: {0}")]
    StandIn(std::io::Error),
    #[error("Stripe: {0}")]
    Stripe(Box<StripeError>),
    #[error("cursor file {path}: {source}")]
    CursorIo {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cursor file {path} is not valid: {source}")]
    CursorJson {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("a {kind} object without an id in Stripe's answer")]
    NoId { kind: &'static str },
    #[error("the webhook endpoint refused a backfilled event ({status} {body}); check that --secret is the endpoint's signing secret")]
    Refused { status: u16, body: String },
    #[error("the webhook endpoint is unavailable after {attempts} attempts ({last}); run again to continue from the cursor")]
    Unavailable { attempts: u32, last: String },
    #[error("could not encode a synthetic event: {0}")]
    Encode(serde_json::Error),
}

impl From<StripeError> for BackfillError {
    fn from(e: StripeError) -> Self {
        BackfillError::Stripe(Box::new(e))
    }
}

/// Unix seconds of `YYYY-MM-DD` 00:00:00 UTC.
pub fn day_start(which: &'static str, date: &str) -> Result<i64, BackfillError> {
    let bad = || BackfillError::BadDate {
        which,
        value: date.to_owned(),
    };
    let mut parts = date.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let (Ok(y), Ok(m), Ok(d)) = (y.parse::<i64>(), m.parse::<i64>(), d.parse::<i64>()) else {
        return Err(bad());
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if !(1..=days_in_month).contains(&d) {
        return Err(bad());
    }
    // Days from the civil date (H. Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Ok((era * 146_097 + doe - 719_468) * 86_400)
}

/// `[from 00:00:00, to 23:59:59]` UTC in Unix seconds.
pub fn range_of(from: &str, to: &str) -> Result<(i64, i64), BackfillError> {
    let gte = day_start("from", from)?;
    let lte = day_start("to", to)? + 86_399;
    if gte > lte {
        return Err(BackfillError::EmptyRange);
    }
    Ok((gte, lte))
}

/// The event a webhook would have carried for this object in its current state, or `None` when
/// ledgerbridge books nothing for an object in that state (a PaymentIntent not succeeded, a
/// draft or void invoice, a canceled or failed refund, a void credit note, a payout not yet
/// paid or failed, a deleted customer).
pub fn event_type_for(kind: Kind, object: &Value) -> Option<&'static str> {
    let status = object.get("status").and_then(Value::as_str).unwrap_or("");
    match kind {
        Kind::Customers => (object.get("deleted").and_then(Value::as_bool) != Some(true))
            .then_some("customer.created"),
        Kind::Payments => (status == "succeeded").then_some("payment_intent.succeeded"),
        Kind::Refunds => matches!(status, "succeeded" | "pending" | "requires_action")
            .then_some("refund.created"),
        Kind::Invoices => match status {
            "paid" => Some("invoice.paid"),
            "open" => Some("invoice.finalized"),
            _ => None,
        },
        Kind::CreditNotes => (status == "issued").then_some("credit_note.created"),
        // `charge.dispute.created` books every balance transaction the dispute carries (one
        // journal each, by transaction id): the withdrawal and, for a closed dispute, the
        // reinstatement. `closed` would book only the transactions its own event added.
        Kind::Disputes => (!status.is_empty()).then_some("charge.dispute.created"),
        Kind::Payouts => match status {
            "paid" => Some("payout.paid"),
            "failed" => Some("payout.failed"),
            _ => None,
        },
    }
}

/// The synthetic event id of an object and event type (see the module documentation).
pub fn synthetic_event_id(event_type: &str, object_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"ledgerbridge-backfill\n");
    h.update(event_type.as_bytes());
    h.update(b"\n");
    h.update(object_id.as_bytes());
    let hex = hex::encode(h.finalize());
    format!("evt_lbbf_{}", &hex[..32])
}

/// The synthetic event for `object`: Stripe's event envelope with the object as `data.object`,
/// exactly as listed.
pub fn synthetic_event(event_type: &str, object: &Value) -> Option<(String, Value)> {
    let id = object.get("id").and_then(Value::as_str)?;
    let event_id = synthetic_event_id(event_type, id);
    let event = json!({
        "id": event_id,
        "object": "event",
        "api_version": null,
        "created": object.get("created").cloned().unwrap_or(Value::Null),
        "livemode": object.get("livemode").cloned().unwrap_or(Value::Bool(false)),
        "pending_webhooks": 0,
        "request": {"id": null, "idempotency_key": null},
        "type": event_type,
        "data": {"object": object},
    });
    Some((event_id, event))
}

/// Per range and kind: where the last run stopped.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Cursor {
    /// The id of the last object delivered (`starting_after` for the next page).
    pub after: Option<String>,
    /// Every page of this kind in this range was delivered.
    pub done: bool,
    /// Objects delivered over all runs.
    pub delivered: u64,
}

/// The cursor file: `{"<gte>..<lte>": {"<kind>": Cursor}}`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Cursors {
    ranges: BTreeMap<String, BTreeMap<String, Cursor>>,
}

impl Cursors {
    pub fn load(path: &Path) -> Result<Cursors, BackfillError> {
        match std::fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| BackfillError::CursorJson {
                    path: path.to_path_buf(),
                    source,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Cursors::default()),
            Err(source) => Err(BackfillError::CursorIo {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Write to a temporary file and rename it over the old one, so a crash leaves the old or
    /// the new file, never half of one.
    pub fn save(&self, path: &Path) -> Result<(), BackfillError> {
        let io = |source| BackfillError::CursorIo {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let text = serde_json::to_vec_pretty(self).map_err(|source| BackfillError::CursorJson {
            path: path.to_path_buf(),
            source,
        })?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    pub fn get(&self, range: (i64, i64), kind: Kind) -> Cursor {
        self.ranges
            .get(&range_key(range))
            .and_then(|m| m.get(kind.name()))
            .cloned()
            .unwrap_or_default()
    }

    fn set(&mut self, range: (i64, i64), kind: Kind, cursor: Cursor) {
        self.ranges
            .entry(range_key(range))
            .or_default()
            .insert(kind.name().to_owned(), cursor);
    }
}

fn range_key((gte, lte): (i64, i64)) -> String {
    format!("{gte}..{lte}")
}

/// Where the synthetic events go.
pub struct Webhook {
    pub url: String,
    pub secrets: Vec<String>,
    pub http: reqwest::Client,
    /// Attempts per event when the endpoint answers 5xx or cannot be reached.
    pub attempts: u32,
}

/// How the intake answered one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    Queued,
    Duplicate,
    Ignored,
}

impl Webhook {
    pub fn new(url: &str, secrets: &[String]) -> Self {
        Webhook {
            url: url.to_owned(),
            secrets: secrets.to_vec(),
            http: reqwest::Client::new(),
            attempts: 6,
        }
    }

    async fn deliver(&self, body: &[u8]) -> Result<Delivered, BackfillError> {
        let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        let mut last = String::new();
        for attempt in 0..self.attempts {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100) * 2u32.pow(attempt.min(6))).await;
            }
            let header = sign_header(&secrets, now_secs(), body);
            let sent = self
                .http
                .post(&self.url)
                .header("content-type", "application/json")
                .header("stripe-signature", header)
                .body(body.to_vec())
                .send()
                .await;
            let resp = match sent {
                Ok(r) => r,
                Err(e) => {
                    last = e.without_url().to_string();
                    continue;
                }
            };
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            if status.is_success() {
                return Ok(if text.contains("\"duplicate\":true") {
                    Delivered::Duplicate
                } else if text.contains("\"ignored\":true") {
                    Delivered::Ignored
                } else {
                    Delivered::Queued
                });
            }
            if status.is_server_error() || status.as_u16() == 429 {
                last = format!("HTTP {}", status.as_u16());
                continue;
            }
            return Err(BackfillError::Refused {
                status: status.as_u16(),
                body: text.chars().take(200).collect(),
            });
        }
        Err(BackfillError::Unavailable {
            attempts: self.attempts,
            last,
        })
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// One run's plan.
pub struct Plan {
    pub range: (i64, i64),
    pub kinds: Vec<Kind>,
    pub dry_run: bool,
    pub max_objects: Option<u64>,
    pub expand: Vec<String>,
    /// Events in flight to the webhook endpoint at once.
    pub concurrency: usize,
}

/// What one kind did in this run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KindSummary {
    /// Objects read from Stripe.
    pub read: u64,
    /// Delivered and queued by the intake (in a dry run: would be queued).
    pub queued: u64,
    /// Delivered and answered "duplicate" (already delivered by an earlier run).
    pub duplicates: u64,
    /// Delivered and answered "ignored" (the endpoint does not handle that event type).
    pub ignored: u64,
    /// Read, but nothing is booked for an object in its state.
    pub not_booked: u64,
    /// Stripe list pages read.
    pub pages: u64,
    /// Every page was read (false when `--max-objects` stopped the run).
    pub finished: bool,
}

/// What a run did.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub kinds: Vec<(Kind, KindSummary)>,
    pub elapsed: Duration,
    pub stripe_calls: u64,
    /// Every kind of the plan was read to its end (false when `--max-objects` stopped the run).
    pub complete: bool,
}

impl Summary {
    pub fn total(&self, f: impl Fn(&KindSummary) -> u64) -> u64 {
        self.kinds.iter().map(|(_, k)| f(k)).sum()
    }

    /// Objects read per second over the run.
    pub fn objects_per_sec(&self) -> u64 {
        let ms = u64::try_from(self.elapsed.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        self.total(|k| k.read).saturating_mul(1000) / ms
    }
}

/// Read, convert and deliver every object of the plan, with cursors in `cursor_file`.
pub async fn backfill(
    stripe: &StripeClient,
    plan: &Plan,
    webhook: &Webhook,
    cursor_file: &Path,
    progress: &MultiProgress,
) -> Result<Summary, BackfillError> {
    let started = Instant::now();
    let calls_before = stripe.calls();
    let mut cursors = Cursors::load(cursor_file)?;
    let mut summary = Summary::default();
    let mut budget = plan.max_objects;
    let mut kinds = plan.kinds.clone();
    kinds.sort_unstable();
    kinds.dedup();
    for &kind in &kinds {
        let mut cursor = if plan.dry_run {
            Cursor::default()
        } else {
            cursors.get(plan.range, kind)
        };
        let mut ks = KindSummary::default();
        if cursor.done {
            ks.finished = true;
            progress.suspend(|| println!("{:<13} finished in an earlier run", kind.name()));
            summary.kinds.push((kind, ks));
            continue;
        }
        let bar = progress.add(ProgressBar::new(span_of(plan.range)));
        bar.set_style(
            ProgressStyle::with_template("{prefix:<13} [{bar:24}] {msg} {per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(kind.name());
        let query = CreatedListQuery {
            kind: kind.list(),
            gte: plan.range.0,
            lte: plan.range.1,
            expand: plan.expand.clone(),
        };
        let outcome = run_kind(
            stripe,
            plan,
            webhook,
            &query,
            kind,
            &mut cursor,
            &mut ks,
            &mut budget,
            &bar,
            &mut cursors,
            cursor_file,
        )
        .await;
        bar.finish();
        if !plan.dry_run {
            cursors.set(plan.range, kind, cursor.clone());
            cursors.save(cursor_file)?;
        }
        summary.kinds.push((kind, ks));
        outcome?;
        if budget == Some(0) {
            break;
        }
    }
    summary.complete =
        summary.kinds.len() == kinds.len() && summary.kinds.iter().all(|(_, k)| k.finished);
    summary.elapsed = started.elapsed();
    summary.stripe_calls = stripe.calls().saturating_sub(calls_before);
    Ok(summary)
}

/// Seconds in the range: the progress bars advance by how far back in time the listing is
/// (Stripe lists newest first and gives no total), which is what the ETA is computed from.
fn span_of((gte, lte): (i64, i64)) -> u64 {
    u64::try_from(lte - gte + 1).unwrap_or(1)
}

#[allow(clippy::too_many_arguments)]
async fn run_kind(
    stripe: &StripeClient,
    plan: &Plan,
    webhook: &Webhook,
    query: &CreatedListQuery,
    kind: Kind,
    cursor: &mut Cursor,
    ks: &mut KindSummary,
    budget: &mut Option<u64>,
    bar: &ProgressBar,
    cursors: &mut Cursors,
    cursor_file: &Path,
) -> Result<(), BackfillError> {
    loop {
        if *budget == Some(0) {
            return Ok(());
        }
        let page = stripe.list_created(query, cursor.after.as_deref()).await?;
        ks.pages += 1;
        if page.data.is_empty() && page.has_more {
            return Err(StripeError::Decode {
                what: kind.list().collection().to_owned(),
                message: "has_more with an empty page".into(),
            }
            .into());
        }
        // Convert the page (up to the --max-objects budget), then deliver its events with
        // bounded concurrency. The cursor moves past the page only when every event of it was
        // acknowledged; a failure leaves it at the page's start (a rerun's redeliveries are
        // answered as duplicates).
        let mut bodies: Vec<Vec<u8>> = Vec::new();
        let mut last_id: Option<String> = None;
        let mut stopped = false;
        for object in &page.data {
            if *budget == Some(0) {
                stopped = true;
                break;
            }
            let id = object
                .get("id")
                .and_then(Value::as_str)
                .ok_or(BackfillError::NoId { kind: kind.name() })?;
            ks.read += 1;
            if let Some(created) = object.get("created").and_then(Value::as_i64) {
                bar.set_position(u64::try_from(plan.range.1 - created).unwrap_or(0));
            }
            match event_type_for(kind, object)
                .and_then(|t| synthetic_event(t, object).map(|e| (t, e)))
            {
                None => ks.not_booked += 1,
                Some((event_type, (event_id, event))) => {
                    if plan.dry_run {
                        // On stdout whether or not the progress bars are drawn.
                        bar.suspend(|| {
                            println!(
                                "would queue {:<13} {id:<32} {event_type:<26} {event_id}",
                                kind.name()
                            );
                        });
                        ks.queued += 1;
                    } else {
                        bodies.push(serde_json::to_vec(&event).map_err(BackfillError::Encode)?);
                    }
                    if let Some(b) = budget.as_mut() {
                        *b = b.saturating_sub(1);
                    }
                }
            }
            last_id = Some(id.to_owned());
        }
        let delivered = futures::stream::iter(bodies.iter())
            .map(|body| webhook.deliver(body))
            .buffered(plan.concurrency.max(1))
            .collect::<Vec<_>>()
            .await;
        for answer in delivered {
            match answer? {
                Delivered::Queued => ks.queued += 1,
                Delivered::Duplicate => ks.duplicates += 1,
                Delivered::Ignored => ks.ignored += 1,
            }
            cursor.delivered += 1;
        }
        if last_id.is_some() {
            cursor.after = last_id;
        }
        bar.set_message(format!(
            "read {} queued {} dup {} not booked {}",
            ks.read, ks.queued, ks.duplicates, ks.not_booked
        ));
        if stopped || (*budget == Some(0) && page.has_more) {
            return Ok(());
        }
        if !page.has_more {
            cursor.done = true;
            ks.finished = true;
            bar.set_position(span_of(plan.range));
            return Ok(());
        }
        if !plan.dry_run {
            cursors.set(plan.range, kind, cursor.clone());
            cursors.save(cursor_file)?;
        }
    }
}

/// Progress that draws nowhere (for scripted runs and tests).
pub fn quiet_progress() -> MultiProgress {
    MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
}

/// Print the end-of-run table.
pub fn print_summary(summary: &Summary, dry_run: bool) {
    println!(
        "\n{:<13} {:>8} {:>8} {:>10} {:>8} {:>10} {:>6}  state",
        "kind",
        "read",
        if dry_run { "would q." } else { "queued" },
        "duplicate",
        "ignored",
        "not booked",
        "pages"
    );
    for (kind, k) in &summary.kinds {
        println!(
            "{:<13} {:>8} {:>8} {:>10} {:>8} {:>10} {:>6}  {}",
            kind.name(),
            k.read,
            k.queued,
            k.duplicates,
            k.ignored,
            k.not_booked,
            k.pages,
            if k.finished {
                "finished"
            } else {
                "stopped (run again to continue)"
            }
        );
    }
    println!(
        "{} objects read in {:.1?} ({} objects/s, {} Stripe requests)",
        summary.total(|k| k.read),
        summary.elapsed,
        summary.objects_per_sec(),
        summary.stripe_calls
    );
    if !summary.complete {
        println!("stopped after --max-objects: run the same command again to continue");
    }
}

/// A client of the local Stripe stand-in serving the sample data in `dir` (on a loopback
/// port, for the life of the process), at `rate` requests per second (0: unlimited).
pub async fn stand_in_client(dir: &Path, rate: u32) -> Result<StripeClient, BackfillError> {
    let stand_in = SampleStripe::load(dir);
    let url = stand_in.serve().await.map_err(BackfillError::StandIn)?;
    let mut cfg = StripeClientConfig::new(Secret::new("sk_test_local_stand_in".to_owned()))
        .with_base_url(url);
    cfg.requests_per_second = rate;
    Ok(StripeClient::new(cfg)?)
}

pub async fn run(args: BackfillArgs) -> Result<(), BackfillError> {
    let range = range_of(&args.from, &args.to)?;
    let stripe = match &args.samples {
        Some(dir) => stand_in_client(dir, args.rate.unwrap_or(0)).await?,
        None => {
            let key = ledgerbridge_core::config::Env::from_process()
                .plain("STRIPE_API_KEY")
                .filter(|k| !k.is_empty())
                .ok_or(BackfillError::NoKey)?;
            let mut cfg =
                StripeClientConfig::new(Secret::new(key)).with_base_url(&args.stripe_base_url);
            if let Some(rate) = args.rate {
                cfg.requests_per_second = rate;
            }
            StripeClient::new(cfg)?
        }
    };
    let plan = Plan {
        range,
        kinds: if args.kinds.is_empty() {
            Kind::ALL.to_vec()
        } else {
            args.kinds.clone()
        },
        dry_run: args.dry_run,
        max_objects: args.max_objects,
        expand: Vec::new(),
        concurrency: args.concurrency,
    };
    let progress = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let webhook = Webhook::new(&args.url, &args.secrets);
    println!(
        "backfill {} .. {} (UTC) from {} → {}{}",
        args.from,
        args.to,
        if args.samples.is_some() {
            "the local Stripe stand-in"
        } else {
            "Stripe"
        },
        args.url,
        if args.dry_run {
            " (dry run: nothing is queued)"
        } else {
            ""
        }
    );
    let summary = backfill(&stripe, &plan, &webhook, &args.cursor_file, &progress).await?;
    print_summary(&summary, args.dry_run);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_days() {
        assert_eq!(day_start("from", "1970-01-01").unwrap(), 0);
        assert_eq!(day_start("from", "2026-08-04").unwrap(), 1_785_801_600);
        assert_eq!(day_start("from", "2024-02-29").unwrap(), 1_709_164_800);
        for bad in [
            "2023-02-29",
            "2026-13-01",
            "2026-1-01",
            "20260801",
            "2026-08-01x",
            "",
        ] {
            assert!(day_start("from", bad).is_err(), "{bad}");
        }
        assert_eq!(
            range_of("2026-08-04", "2026-08-04").unwrap(),
            (1_785_801_600, 1_785_887_999)
        );
        assert!(matches!(
            range_of("2026-08-05", "2026-08-04"),
            Err(BackfillError::EmptyRange)
        ));
    }

    #[test]
    fn synthetic_ids_are_deterministic_per_object_and_type() {
        let a = synthetic_event_id("payment_intent.succeeded", "pi_1");
        assert_eq!(a, synthetic_event_id("payment_intent.succeeded", "pi_1"));
        assert_ne!(a, synthetic_event_id("payment_intent.succeeded", "pi_2"));
        assert_ne!(a, synthetic_event_id("charge.succeeded", "pi_1"));
        assert!(a.starts_with("evt_lbbf_") && a.len() == 41);
        assert!(ledgerbridge_core::ids::StripeEventId::parse(&a).is_some());
    }

    #[test]
    fn the_event_carries_the_object_unchanged() {
        let pi = json!({"id": "pi_1", "object": "payment_intent", "status": "succeeded",
            "created": 1_785_861_878, "livemode": false, "amount": 15900, "currency": "usd"});
        let t = event_type_for(Kind::Payments, &pi).unwrap();
        let (id, e) = synthetic_event(t, &pi).unwrap();
        assert_eq!(e["id"], id);
        assert_eq!(e["type"], "payment_intent.succeeded");
        assert_eq!(e["created"], 1_785_861_878);
        assert_eq!(e["data"]["object"], pi);
        let parsed: ledgerbridge_core::event::Event = serde_json::from_value(e).unwrap();
        assert_eq!(parsed.event_type, "payment_intent.succeeded");
    }

    #[test]
    fn only_states_that_are_booked_become_events() {
        let o = |status: &str| json!({"id": "x_1", "status": status});
        assert_eq!(
            event_type_for(Kind::Payments, &o("requires_payment_method")),
            None
        );
        assert_eq!(event_type_for(Kind::Invoices, &o("draft")), None);
        assert_eq!(event_type_for(Kind::Invoices, &o("void")), None);
        assert_eq!(
            event_type_for(Kind::Invoices, &o("paid")),
            Some("invoice.paid")
        );
        assert_eq!(
            event_type_for(Kind::Invoices, &o("open")),
            Some("invoice.finalized")
        );
        assert_eq!(event_type_for(Kind::Refunds, &o("canceled")), None);
        assert_eq!(event_type_for(Kind::Refunds, &o("failed")), None);
        assert_eq!(
            event_type_for(Kind::Refunds, &o("succeeded")),
            Some("refund.created")
        );
        assert_eq!(event_type_for(Kind::CreditNotes, &o("void")), None);
        assert_eq!(
            event_type_for(Kind::Disputes, &o("won")),
            Some("charge.dispute.created")
        );
        assert_eq!(
            event_type_for(Kind::Disputes, &o("needs_response")),
            Some("charge.dispute.created")
        );
        assert_eq!(event_type_for(Kind::Payouts, &o("in_transit")), None);
        assert_eq!(
            event_type_for(Kind::Payouts, &o("failed")),
            Some("payout.failed")
        );
        assert_eq!(
            event_type_for(Kind::Customers, &json!({"id": "cus_1", "deleted": true})),
            None
        );
    }

    #[test]
    fn every_synthetic_event_type_has_a_handler() {
        let states = [
            "succeeded",
            "paid",
            "open",
            "issued",
            "won",
            "needs_response",
            "failed",
            "pending",
        ];
        for kind in Kind::ALL {
            for s in states {
                let o = json!({"id": "x_1", "status": s});
                if let Some(t) = event_type_for(kind, &o) {
                    assert!(
                        ledgerbridge_pipeline::to_erp::handler_of(t).is_some(),
                        "{t} has no handler"
                    );
                }
            }
        }
    }

    #[test]
    fn cursors_round_trip_per_range_and_kind() {
        let dir = std::env::temp_dir().join(format!("lb-cursors-{}", std::process::id()));
        let path = dir.join("c.json");
        let mut c = Cursors::load(&path).unwrap();
        let cur = Cursor {
            after: Some("pi_9".into()),
            done: false,
            delivered: 3,
        };
        c.set((1, 2), Kind::Payments, cur.clone());
        c.save(&path).unwrap();
        let back = Cursors::load(&path).unwrap();
        assert_eq!(back.get((1, 2), Kind::Payments), cur);
        assert_eq!(back.get((1, 3), Kind::Payments), Cursor::default());
        assert_eq!(back.get((1, 2), Kind::Refunds), Cursor::default());
        std::fs::write(&path, "not json").unwrap();
        assert!(matches!(
            Cursors::load(&path),
            Err(BackfillError::CursorJson { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
