//! The whole pipeline in one process on embedded defaults: the webhook endpoint on localhost
//! (the same intake handler as the Lambda), in-process queues, a SQLite store, the transform and
//! erp-post stages, payout reconciliation (payout events from transform, and a sweep on a
//! timer) with its discrepancy reports in SQLite, and the ERP sandbox speaking the chosen ERP's
//! API.

use crate::sample_stripe::SampleStripe;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use clap::builder::TypedValueParser as _;
use ledgerbridge_adapters::embedded::SqliteReportStore;
use ledgerbridge_adapters::embedded::{
    MemoryQueue, QueuedMessage, SqliteStore, DEFAULT_MAX_MESSAGE_BYTES,
};
use ledgerbridge_adapters::lambda::RecordOutcome;
use ledgerbridge_app::defaults::DAY_SECS;
use ledgerbridge_app::erp_poll::{self, PollSettings};
use ledgerbridge_app::stages;
use ledgerbridge_app::DEFAULTS;
use ledgerbridge_core::secrets::{CachedSecrets, EnvSecrets, Secret};
use ledgerbridge_core::SystemClock;
use ledgerbridge_erp::{AnyConnector, ErpKind, ErpSettings, RetryPolicy};
use ledgerbridge_erp_sandbox::{SandboxConfig, SandboxHandle, Seed};
use ledgerbridge_intake::{handle_webhook, Deps, RotatingVerifier, SecretsBackend};
use ledgerbridge_pipeline::mapping::Mapping;
use ledgerbridge_pipeline::posting::{FieldsResult, PostResult};
use ledgerbridge_pipeline::stages::{PostStage, Posted, TransformStage};
use ledgerbridge_pipeline::to_stripe::poll::ErpPoll;
use ledgerbridge_pipeline::to_stripe::sync::{handle_erp_event, ErpSyncStage, SIGNATURE_HEADER};
use ledgerbridge_recon::service::config::ReconFile;
use ledgerbridge_recon::service::PayoutResult;
use ledgerbridge_stripe::{StripeClient, StripeClientConfig};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The development signing secret used when `LEDGERBRIDGE_WEBHOOK_SECRETS` is not set. It is a
/// published constant for local runs only, never a production secret.
pub const DEV_SECRET: &str = "whsec_ledgerbridge_local_development_only";

/// The development secret ERP-side events are signed with when
/// `LEDGERBRIDGE_ERP_EVENT_SECRETS` is not set: a published constant for local runs only.
pub const DEV_ERP_SECRET: &str = "lbsec_ledgerbridge_local_erp_development_only";

/// The SQLite file of the payout discrepancy reports, in the data directory.
pub const REPORTS_FILE: &str = "payout-reports.sqlite";

/// Attempts at a reconciliation message before it is parked (there is no dead-letter queue
/// locally); the sweep reconsiders the payout later.
const RECON_ATTEMPTS: u32 = 20;

/// `--erp` takes the [`ErpKind`] names, listed in `--help`.
pub(crate) fn erp_kind_parser() -> impl clap::builder::TypedValueParser<Value = ErpKind> {
    clap::builder::PossibleValuesParser::new(ErpKind::ALL.map(ErpKind::as_str))
        .try_map(|name| name.parse::<ErpKind>())
}

#[derive(clap::Args, Clone)]
pub struct LocalArgs {
    /// Port of the webhook endpoint on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8787)]
    pub port: u16,
    /// Which ERP the sandbox plays.
    #[arg(long, value_parser = erp_kind_parser(), default_value_t = ErpKind::Epicor)]
    pub erp: ErpKind,
    /// Directory for the local SQLite files (state store and ERP sandbox).
    #[arg(long, default_value = ".local")]
    pub data_dir: PathBuf,
    /// Mapping configuration (TOML); the shipped example when not given.
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// Sample Stripe data served locally when `STRIPE_API_KEY` is not set.
    #[arg(long, default_value = "tests/fixtures/stripe")]
    pub samples: PathBuf,
    /// Payout reconciliation configuration (TOML); the shipped example when not given.
    #[arg(long)]
    pub reconciliation: Option<PathBuf>,
    /// Run the payout sweep every this many seconds (0: no sweep).
    #[arg(long, default_value_t = 300)]
    pub sweep_secs: u64,
    /// Poll the ERP for customers changed since the last poll every this many seconds and
    /// send their changes to Stripe (0: no poll).
    #[arg(long, default_value_t = 60)]
    pub erp_poll_secs: u64,
    /// Stop after this many seconds (for scripted runs); runs until Ctrl-C by default.
    #[arg(long)]
    pub stop_after: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("cannot open the local store: {0}")]
    Store(#[from] ledgerbridge_core::ports::StoreError),
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Listen { port: u16, source: std::io::Error },
    #[error("server failed: {0}")]
    Serve(std::io::Error),
    #[error("cannot create {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("ERP sandbox: {0}")]
    Sandbox(String),
    #[error("ERP connector: {0}")]
    Erp(#[from] ledgerbridge_erp::ErpError),
    #[error("Stripe client: {0}")]
    Stripe(#[from] ledgerbridge_stripe::StripeError),
    #[error(transparent)]
    Mapping(#[from] ledgerbridge_pipeline::mapping::MappingError),
    #[error("reconciliation configuration: {0}")]
    Reconciliation(#[from] ledgerbridge_recon::service::config::ReconFileError),
}

type Transform = TransformStage<MemoryQueue, MemoryQueue, MemoryQueue, StripeClient>;
type PostS = PostStage<AnyConnector, SqliteStore, StripeClient, SystemClock, MemoryQueue>;
type LocalDeps = Deps<MemoryQueue, SqliteStore, SystemClock>;
type ErpSync = ErpSyncStage<SqliteStore, StripeClient, SystemClock, MemoryQueue>;

/// What the `POST /erp/customers` endpoint needs.
struct ErpIntake {
    verifier: ledgerbridge_core::webhook::Verifier,
    queue: MemoryQueue,
}

type Recon =
    ledgerbridge_recon::service::Deps<MemoryQueue, SqliteStore, SqliteReportStore, SystemClock>;

/// A running local pipeline.
pub struct Running {
    pub addr: std::net::SocketAddr,
    pub sandbox: SandboxHandle,
    pub erp: ErpKind,
    pub stripe_writes: Option<SampleStripe>,
    events: MemoryQueue,
    commands: MemoryQueue,
    erp_events: MemoryQueue,
    reconciliation: MemoryQueue,
    in_flight: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<Result<(), std::io::Error>>,
}

impl Running {
    pub fn webhook_url(&self) -> String {
        format!("http://{}/webhook", self.addr)
    }

    /// Wait until the queues are empty and nothing is being processed (a running sweep
    /// counts).
    pub async fn idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut quiet = 0;
        while tokio::time::Instant::now() < deadline {
            let busy = !self.events.is_empty()
                || !self.commands.is_empty()
                || !self.erp_events.is_empty()
                || !self.reconciliation.is_empty()
                || self.in_flight.load(Ordering::SeqCst) > 0;
            quiet = if busy { 0 } else { quiet + 1 };
            if quiet >= 5 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }
}

fn custom_secret() -> bool {
    ledgerbridge_core::config::Env::from_process()
        .optional("WEBHOOK_SECRETS")
        .is_some()
}

fn settings_for(erp: ErpKind, sb: &SandboxHandle) -> serde_json::Value {
    let keys = sb.keys();
    match erp {
        ErpKind::Epicor => serde_json::json!({
            "kind": "epicor", "base_url": format!("{}/KineticLocal", sb.base_url()), "company": "EPIC06",
            "invoice_group_id": "STRIPE", "cash_group_id": "STRIPECR",
            "journal": {"book_id": "MAIN", "journal_code": "GJ", "group_id": "STRIPEGL"},
            "api_key": keys.epicor_api_key, "user": keys.epicor_user, "password": keys.epicor_password
        }),
        ErpKind::SagePro => {
            serde_json::json!({"kind": "sagepro", "base_url": sb.base_url(), "api_key": keys.sagepro_api_key})
        }
        ErpKind::Sage500 => {
            serde_json::json!({"kind": "sage500", "company": "SOA", "site_procedures": true, "customer_update_dim_job": 1, "base_url": sb.base_url(),
            "api_key": keys.sage500_api_key})
        }
    }
}

/// Start the pipeline.
pub async fn start(args: &LocalArgs) -> Result<Running, LocalError> {
    std::fs::create_dir_all(&args.data_dir).map_err(|source| LocalError::Dir {
        path: args.data_dir.clone(),
        source,
    })?;
    let mapping_text = match &args.mapping {
        Some(p) => std::fs::read_to_string(p).map_err(|source| LocalError::Dir {
            path: p.clone(),
            source,
        })?,
        None => ledgerbridge_pipeline::mapping::EXAMPLE.to_owned(),
    };
    let mapping = Mapping::from_toml(&mapping_text)?;
    let recon_text = match &args.reconciliation {
        Some(p) => std::fs::read_to_string(p).map_err(|source| LocalError::Dir {
            path: p.clone(),
            source,
        })?,
        None => ledgerbridge_recon::service::config::EXAMPLE.to_owned(),
    };
    let recon_file = ReconFile::from_toml(&recon_text)?;

    // The ERP sandbox, seeded with the items and accounts the mapping and the reconciliation
    // configuration name.
    let (_, sandbox) = ledgerbridge_erp_sandbox::spawn(SandboxConfig {
        db: Some(
            args.data_dir
                .join(format!("sandbox-{}.sqlite", args.erp.as_str())),
        ),
        erps: vec![args.erp],
        ..SandboxConfig::default()
    })
    .await
    .map_err(|e| LocalError::Sandbox(e.to_string()))?;
    let (mut gl_accounts, items) = names_in(&mapping_text);
    gl_accounts.extend(names_in(&recon_text).0);
    gl_accounts.sort();
    gl_accounts.dedup();
    sandbox
        .seed(&Seed {
            erp: Some(args.erp),
            items,
            gl_accounts,
            closed_periods: vec![],
        })
        .map_err(|e| LocalError::Sandbox(e.to_string()))?;
    let settings_json = Secret::new(settings_for(args.erp, &sandbox).to_string());
    let connector = AnyConnector::from_settings(ErpSettings::from_json(&settings_json)?)?;
    let poll_connector = AnyConnector::from_settings(ErpSettings::from_json(&settings_json)?)?;

    // Stripe: the real API with a test-mode key, or the sample data served locally.
    let env = ledgerbridge_core::config::Env::from_process();
    let (stripe, sample) = match env.plain("STRIPE_API_KEY") {
        Some(key) => (
            StripeClient::new(StripeClientConfig::new(Secret::new(key)))?,
            None,
        ),
        None => {
            let sample = SampleStripe::load(&args.samples);
            let base = sample.serve().await.map_err(LocalError::Serve)?;
            let cfg = StripeClientConfig::new(Secret::new("sk_test_local_samples".to_owned()))
                .with_base_url(base);
            (StripeClient::new(cfg)?, Some(sample))
        }
    };

    if sample.is_some() {
        seed_sample_customer(&connector).await?;
    }
    let store = SqliteStore::open(&args.data_dir.join("ledgerbridge.sqlite"))?;
    let reports = SqliteReportStore::open(&args.data_dir.join(REPORTS_FILE))?;
    let (events, commands, reconciliation, parked) = (
        MemoryQueue::new(DEFAULT_MAX_MESSAGE_BYTES),
        MemoryQueue::new(DEFAULT_MAX_MESSAGE_BYTES),
        MemoryQueue::new(DEFAULT_MAX_MESSAGE_BYTES),
        MemoryQueue::new(DEFAULT_MAX_MESSAGE_BYTES),
    );
    let secret_name = "LEDGERBRIDGE_WEBHOOK_SECRETS";
    let secrets = if custom_secret() {
        EnvSecrets::from_process_env()
    } else {
        EnvSecrets::from_pairs([(secret_name.to_owned(), DEV_SECRET.to_owned())])
    };
    let deps: Arc<LocalDeps> = Arc::new(Deps {
        queue: events.clone(),
        store: store.clone(),
        verifier: RotatingVerifier::new(
            SecretsBackend::Env(
                CachedSecrets::new(secrets, DEFAULTS.secret_ttl),
                secret_name.to_owned(),
            ),
            ledgerbridge_core::webhook::DEFAULT_TOLERANCE_SECS,
        ),
        clock: SystemClock,
        handled: ledgerbridge_intake::default_handled_event_types()
            .into_iter()
            .collect(),
        dedupe_for_secs: DEFAULTS.intake_dedupe_secs,
        lease_ms: DEFAULTS.local_intake_lease_ms,
        wait_for_peer: DEFAULTS.local_intake_wait_for_peer,
    });
    let transform: Arc<Transform> = Arc::new(stages::transform(
        mapping.clone(),
        stripe.clone(),
        commands.clone(),
        Some(reconciliation.clone()),
        parked.clone(),
    ));
    let recon: Arc<Recon> = Arc::new(ledgerbridge_recon::service::Deps {
        stripe: stripe.clone(),
        commands: commands.clone(),
        store: store.clone(),
        reports,
        clock: SystemClock,
        file: recon_file,
        lease_ms: DEFAULTS.recon_lease_ms,
        claim_secs: DEFAULTS.recon_claim_days * DAY_SECS,
        concurrency: DEFAULTS.local_recon_concurrency,
    });
    let erp_events = MemoryQueue::new(DEFAULT_MAX_MESSAGE_BYTES);
    let erp_secrets: Vec<Secret<String>> = ledgerbridge_core::config::Env::from_process()
        .optional("ERP_EVENT_SECRETS")
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Secret::new(s.to_owned()))
                .collect()
        })
        .unwrap_or_else(|| vec![Secret::new(DEV_ERP_SECRET.to_owned())]);
    let erp_intake = Arc::new(ErpIntake {
        verifier: ledgerbridge_core::webhook::Verifier::new(&erp_secrets)
            .map_err(|e| LocalError::Serve(std::io::Error::other(e.to_string())))?,
        queue: erp_events.clone(),
    });
    let erp_poll = Arc::new(erp_poll::build(
        poll_connector,
        store.clone(),
        erp_events.clone(),
        &PollSettings::default(),
    ));
    let erp_sync: Arc<ErpSync> = Arc::new(stages::erp_sync(
        store.clone(),
        stripe.clone(),
        SystemClock,
        parked.clone(),
        DEFAULTS.sync_lease_ms,
        DEFAULTS.sync_intent_days,
    ));
    let poster: Arc<PostS> = Arc::new(stages::post(
        connector,
        store,
        Some(stripe),
        mapping,
        SystemClock,
        parked.clone(),
        stages::Lease::Local,
    ));

    let in_flight = Arc::new(AtomicUsize::new(0));
    {
        let (q, t, n) = (events.clone(), transform.clone(), in_flight.clone());
        tokio::spawn(worker(q, n, move |m| {
            let t = t.clone();
            async move { t.process(&m).await }
        }));
    }
    {
        let (q, p, n, erp) = (
            commands.clone(),
            poster.clone(),
            in_flight.clone(),
            args.erp,
        );
        tokio::spawn(worker(q, n, move |m| {
            let p = p.clone();
            async move {
                let (outcome, posted) = p.process_detailed(&m).await;
                match posted {
                    Some(Posted::Command(msg, result)) => {
                        let reference = msg.command.reference();
                        match result {
                            PostResult::Posted { erp_id, created } => println!(
                                "erp     {:<8} {:<13} {:<46} → {} ({})",
                                erp.as_str(),
                                msg.command.kind().as_str(),
                                reference.to_string(),
                                erp_id,
                                if created { "created" } else { "updated" }
                            ),
                            PostResult::AlreadyPosted { .. } => {}
                            PostResult::Stale => {
                                println!("erp     skipped an older update of {reference}")
                            }
                        }
                    }
                    Some(Posted::Fields(msg, result)) => match result {
                        FieldsResult::Written {
                            customer_code,
                            written,
                            unmapped,
                            ..
                        } => {
                            let values: Vec<String> = msg
                                .values
                                .iter()
                                .filter(|(k, _)| !unmapped.contains(k))
                                .map(|(k, v)| format!("{k}={v}"))
                                .collect();
                            println!(
                                "erp     {:<8} {:<13} {:<46} → {} ({} field(s): {})",
                                erp.as_str(),
                                "fields",
                                msg.object_id,
                                customer_code,
                                written.len(),
                                values.join(", ")
                            );
                            if !unmapped.is_empty() {
                                println!(
                                    "erp     not written (no field in the ERP settings): {}",
                                    unmapped.join(", ")
                                );
                            }
                        }
                        FieldsResult::Stale => {
                            println!("erp     skipped older values of {}", msg.object_id)
                        }
                    },
                    None => {}
                }
                outcome
            }
        }));
    }
    {
        let (q, r, n, parked) = (
            reconciliation.clone(),
            recon.clone(),
            in_flight.clone(),
            parked.clone(),
        );
        let attempts: Arc<std::sync::Mutex<HashMap<String, u32>>> = Arc::default();
        tokio::spawn(worker(q, n, move |m| {
            let (r, parked, attempts) = (r.clone(), parked.clone(), attempts.clone());
            async move {
                let result = r.process_message(&m).await;
                reconciled(&m, &result, &attempts, &parked).await
            }
        }));
    }
    if args.erp_poll_secs > 0 {
        tokio::spawn(erp_poll_timer(
            erp_poll,
            Duration::from_secs(args.erp_poll_secs),
        ));
    }
    if args.sweep_secs > 0 {
        tokio::spawn(sweep_timer(
            recon,
            Duration::from_secs(args.sweep_secs),
            in_flight.clone(),
        ));
    }
    {
        let (q, st, n) = (erp_events.clone(), erp_sync.clone(), in_flight.clone());
        tokio::spawn(worker(q, n, move |m| {
            let st = st.clone();
            async move {
                let report = st.process_detailed(&m).await;
                match report {
                    ledgerbridge_pipeline::to_stripe::sync::SyncReport::Outcome(o) => o,
                    ledgerbridge_pipeline::to_stripe::sync::SyncReport::Updated {
                        stripe_customer,
                    } => {
                        println!("stripe  customer {stripe_customer} updated from the ERP");
                        RecordOutcome::Done
                    }
                    ledgerbridge_pipeline::to_stripe::sync::SyncReport::Unchanged {
                        stripe_customer,
                    } => {
                        println!(
                            "stripe  customer {stripe_customer} already shows the ERP's values"
                        );
                        RecordOutcome::Done
                    }
                    _ => RecordOutcome::Done,
                }
            }
        }));
    }
    tokio::spawn(report_parked(parked));

    let app = Router::new()
        .route("/webhook", post(webhook))
        .with_state(deps)
        .merge(
            Router::new()
                .route("/erp/customers", post(erp_event))
                .with_state(erp_intake),
        );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .map_err(|source| LocalError::Listen {
            port: args.port,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| LocalError::Listen {
        port: args.port,
        source,
    })?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(Running {
        addr,
        sandbox,
        erp: args.erp,
        stripe_writes: sample,
        events,
        commands,
        erp_events,
        reconciliation,
        in_flight,
        server,
    })
}

/// The payout a reconciliation message names (for the printed line), best effort.
fn payout_of(body: &str) -> String {
    use ledgerbridge_messages::IntakeMessage;
    let id = match IntakeMessage::decode(body) {
        Ok(IntakeMessage::StripeEventV1(m)) => m.object_id.or_else(|| {
            serde_json::from_str::<serde_json::Value>(m.event.get())
                .ok()
                .and_then(|e| e["data"]["object"]["id"].as_str().map(str::to_owned))
        }),
        Ok(IntakeMessage::StripeEventRefV1(r)) => r.object_id,
        Err(_) => None,
    };
    id.unwrap_or_else(|| "(unknown payout)".into())
}

/// Print what a reconciliation message came to, and decide its fate. A retryable result goes
/// back on the queue, at most [`RECON_ATTEMPTS`] times; then (and on a permanent failure, which
/// the Lambda's queue would send to the dead-letter queue) the message is parked.
async fn reconciled(
    body: &str,
    result: &PayoutResult,
    attempts: &std::sync::Mutex<HashMap<String, u32>>,
    parked: &MemoryQueue,
) -> RecordOutcome {
    use ledgerbridge_core::ports::EventQueue;
    let payout = payout_of(body);
    let outcome = result.record_outcome();
    let done = |attempts: &std::sync::Mutex<HashMap<String, u32>>| {
        if let Ok(mut a) = attempts.lock() {
            a.remove(body);
        }
    };
    let retry_reason = match (&outcome, result) {
        (_, PayoutResult::Failed { reason }) => {
            done(attempts);
            Some(format!("failed: {reason}"))
        }
        (RecordOutcome::Retry(reason), _) => {
            let n = attempts
                .lock()
                .map(|mut a| {
                    let n = a.entry(body.to_owned()).or_insert(0);
                    *n = n.saturating_add(1);
                    *n
                })
                .unwrap_or(RECON_ATTEMPTS);
            if n < RECON_ATTEMPTS {
                return outcome;
            }
            done(attempts);
            Some(format!(
                "not reconciled after {RECON_ATTEMPTS} attempts: {reason}"
            ))
        }
        _ => {
            done(attempts);
            None
        }
    };
    match (result, retry_reason) {
        (_, Some(reason)) => {
            println!("recon   {payout:<30} not posted: {reason}");
            let note = serde_json::json!({
                "reason": format!("payout reconciliation of {payout}: {reason}"),
                "payout": payout,
            });
            if let Err(e) = parked.send(note.to_string(), None).await {
                tracing::error!(error = %e, "Parking a reconciliation message failed");
            }
            RecordOutcome::Done
        }
        (PayoutResult::Queued { reference }, None) => {
            println!("recon   {payout:<30} journal {reference} queued");
            outcome
        }
        (PayoutResult::NeedsReview, None) => {
            println!(
                "recon   {payout:<30} not posted: needs review (ledgerbridge report --payout {payout})"
            );
            outcome
        }
        (PayoutResult::AlreadyDone, None) => {
            println!("recon   {payout:<30} already reconciled");
            outcome
        }
        (PayoutResult::Skipped { reason }, None) => {
            println!("recon   {payout:<30} not posted: {reason}");
            outcome
        }
        (_, None) => outcome,
    }
}

/// The scheduled sweep, locally: every `period` (the first one period after start).
/// The ERP poll on a timer: the local stand-in for the schedule, and the on-premises agent's.
pub(crate) async fn erp_poll_timer<C, S, Q>(poll: Arc<ErpPoll<C, S, Q>>, period: Duration)
where
    C: ledgerbridge_erp::ErpConnector,
    S: ledgerbridge_pipeline::posting::StateStore,
    Q: ledgerbridge_core::ports::EventQueue,
{
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let now = ledgerbridge_core::Clock::now_secs(&SystemClock);
        match poll.poll(now).await {
            Ok(r) if r.queued > 0 || r.relinked > 0 => println!(
                "erp     poll: {} changed customer(s), {} sent on to Stripe, {} not linked to Stripe",
                r.listed, r.queued, r.not_linked
            ),
            Ok(_) => {}
            Err(e) => println!("erp     poll failed: {e}"),
        }
    }
}

async fn sweep_timer(recon: Arc<Recon>, period: Duration, in_flight: Arc<AtomicUsize>) {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut run: u64 = 0;
    loop {
        ticker.tick().await;
        run = run.saturating_add(1);
        in_flight.fetch_add(1, Ordering::SeqCst);
        let s = recon.sweep(&format!("local-sweep-{run}")).await;
        in_flight.fetch_sub(1, Ordering::SeqCst);
        println!(
            "recon   sweep {run}: {} payouts listed, {} journals queued, {} need review, {} already done, {} not ready, {} to retry, {} failed{}",
            s.listed,
            s.queued,
            s.needs_review,
            s.already_done,
            s.not_ready,
            s.retry,
            s.failed,
            match &s.list_error {
                Some(e) => format!(" (listing failed: {e})"),
                None => String::new(),
            }
        );
    }
}

/// Every GL account and item the mapping names (values of keys containing `account` or `item`,
/// and the `[products]` table), so the sandbox accepts the documents that use them.
fn names_in(mapping_toml: &str) -> (Vec<String>, Vec<String>) {
    fn walk(v: &toml::Value, key: &str, out: &mut (Vec<String>, Vec<String>)) {
        match v {
            toml::Value::String(s) if key.contains("account") => out.0.push(s.clone()),
            toml::Value::String(s) if key.contains("item") || key.starts_with(".products.") => {
                out.1.push(s.clone())
            }
            toml::Value::Table(t) => t
                .iter()
                .for_each(|(k, v)| walk(v, &format!("{key}.{k}"), out)),
            toml::Value::Array(a) => a.iter().for_each(|v| walk(v, key, out)),
            _ => {}
        }
    }
    let mut out = (Vec::new(), Vec::new());
    if let Ok(table) = toml::from_str::<toml::Table>(mapping_toml) {
        walk(&toml::Value::Table(table), "", &mut out);
    }
    for list in [&mut out.0, &mut out.1] {
        list.sort();
        list.dedup();
    }
    out
}

/// The sample events link Stripe customer Northwind to ERP customer NW0042
/// (`metadata.erp_customer_no`), so the sandbox starts with that customer, as the ERP would.
async fn seed_sample_customer(connector: &AnyConnector) -> Result<(), LocalError> {
    use ledgerbridge_core::ids::StripeObjectId;
    use ledgerbridge_erp::{post_command, CustomerUpsert, DocKind, ErpCommand, ExternalRef};
    let reference = ExternalRef::new(&StripeObjectId::new("erp_master_NW0042"), DocKind::Customer)
        .map_err(|e| LocalError::Sandbox(e.to_string()))?;
    let cmd = ErpCommand::UpsertCustomer(CustomerUpsert {
        reference,
        customer_id: "NW0042".into(),
        name: "Northwind Traders LLC".into(),
        email: Some("ap@northwind-traders.example".into()),
        currency: ledgerbridge_core::Currency::USD,
        address: Default::default(),
    });
    post_command(connector, &cmd, &RetryPolicy::default()).await?;
    Ok(())
}

/// Receive from an embedded queue and run `stage` on each message; retryable failures go back
/// on the queue after a pause (the local stand-in for SQS visibility timeouts).
async fn worker<F, Fut>(queue: MemoryQueue, in_flight: Arc<AtomicUsize>, stage: F)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = RecordOutcome>,
{
    loop {
        let batch: Vec<QueuedMessage> = queue.receive(10).await;
        in_flight.fetch_add(batch.len(), Ordering::SeqCst);
        for msg in batch {
            if let RecordOutcome::Retry(reason) = stage(msg.body.clone()).await {
                tracing::info!(reason = %reason, "Message will be retried");
                let (q, n) = (queue.clone(), in_flight.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    q.requeue(msg);
                    n.fetch_sub(1, Ordering::SeqCst);
                });
            } else {
                in_flight.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

async fn report_parked(parked: MemoryQueue) {
    loop {
        for msg in parked.receive(10).await {
            let reason = serde_json::from_str::<serde_json::Value>(&msg.body)
                .ok()
                .and_then(|v| v["reason"].as_str().map(str::to_owned))
                .unwrap_or_default();
            println!("parked  {reason}");
        }
    }
}

pub async fn run(args: LocalArgs) -> Result<(), LocalError> {
    let running = start(&args).await?;
    println!("ledgerbridge local pipeline");
    println!("  webhook endpoint : {}", running.webhook_url());
    println!(
        "  signing secret   : {}",
        if custom_secret() {
            "from LEDGERBRIDGE_WEBHOOK_SECRETS"
        } else {
            "built-in development secret (see README)"
        }
    );
    println!(
        "  ERP sandbox      : {} at {} (audit log: {}/_admin/audit)",
        running.erp.as_str(),
        running.sandbox.base_url(),
        running.sandbox.base_url()
    );
    println!(
        "  Stripe API       : {}",
        if running.stripe_writes.is_some() {
            "sample data served locally (set STRIPE_API_KEY for test mode)"
        } else {
            "Stripe, with STRIPE_API_KEY"
        }
    );
    println!("  data             : {}", args.data_dir.display());
    println!(
        "  replay samples   : cargo run -p ledgerbridge-cli -- replay --url {}",
        running.webhook_url()
    );
    let wait = async {
        match args.stop_after {
            Some(secs) => tokio::time::sleep(Duration::from_secs(secs)).await,
            None => {
                if tokio::signal::ctrl_c().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    };
    tokio::select! {
        () = wait => Ok(()),
        res = running.server => match res {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(LocalError::Serve(e)),
            Err(e) => Err(LocalError::Serve(std::io::Error::other(e))),
        },
    }
}

async fn webhook(
    State(deps): State<Arc<LocalDeps>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let out = handle_webhook(&deps, signature, &body).await;
    (
        StatusCode::from_u16(out.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        out.body,
    )
}

/// `POST /erp/customers`: an ERP-side customer change, signed with `X-Ledgerbridge-Signature`.
async fn erp_event(
    State(intake): State<Arc<ErpIntake>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let now = ledgerbridge_core::Clock::now_secs(&SystemClock);
    let out = handle_erp_event(&intake.verifier, &intake.queue, signature, &body, now).await;
    (
        StatusCode::from_u16(out.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        out.body,
    )
}

/// Print what the ERP sandbox committed.
pub fn print_erp_summary(running: &Running) {
    let audit = running.sandbox.audit(Some(running.erp)).unwrap_or_default();
    let mut counts: std::collections::BTreeMap<(String, String), usize> = Default::default();
    for a in &audit {
        *counts
            .entry((a.entity.clone(), a.action.clone()))
            .or_default() += 1;
    }
    println!(
        "\nERP sandbox ({}) audit log: {} entries",
        running.erp.as_str(),
        audit.len()
    );
    for ((entity, action), n) in counts {
        println!("  {n:>3} × {action:<6} {entity}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reconciliation_accounts_are_seeded() {
        let (accounts, items) = names_in(ledgerbridge_recon::service::config::EXAMPLE);
        for a in [
            "1010", "1150", "1999", "2200", "6100", "6110", "6990", "7800",
        ] {
            assert!(accounts.iter().any(|x| x == a), "{a} in {accounts:?}");
        }
        assert!(items.is_empty(), "{items:?}");
    }
}
