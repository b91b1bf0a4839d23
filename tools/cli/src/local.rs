//! The whole pipeline in one process on embedded defaults: the webhook endpoint on localhost
//! (the same intake handler as the Lambda), durable queues and a store in SQLite files in the
//! data directory, the transform and erp-post stages, payout reconciliation (payout events from
//! transform, and a sweep on a timer) with its discrepancy reports in SQLite, and the ERP
//! sandbox speaking the chosen ERP's API. `ledgerbridge serve` runs the same process against a
//! real ERP ([`start_with`] with [`ErpSource::Settings`]).

use crate::sample_stripe::SampleStripe;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use clap::builder::TypedValueParser as _;
use ledgerbridge_adapters::embedded::SqliteReportStore;
use ledgerbridge_adapters::embedded::{
    DataDirLock, Delivery, DurableQueueSettings, SqliteQueue, SqliteStore,
    DEFAULT_MAX_MESSAGE_BYTES,
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
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Set by `serve`: progress lines go to the JSON log instead of stdout as text.
static JSON_OUTPUT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Send progress lines to the JSON log (`serve`) instead of printing them.
pub fn log_progress_as_json() {
    JSON_OUTPUT.store(true, Ordering::SeqCst);
}

/// A progress line: printed for `local` and `demo`, one JSON log record for `serve`.
macro_rules! say {
    ($($t:tt)*) => {{
        let line = format!($($t)*);
        if JSON_OUTPUT.load(Ordering::Relaxed) {
            tracing::info!("{}", line.split_whitespace().collect::<Vec<_>>().join(" "));
        } else {
            println!("{line}");
        }
    }};
}

/// The development signing secret used when `LEDGERBRIDGE_WEBHOOK_SECRETS` is not set. It is a
/// published constant for local runs only, never a production secret.
pub const DEV_SECRET: &str = "whsec_ledgerbridge_local_development_only";

/// The development secret ERP-side events are signed with when
/// `LEDGERBRIDGE_ERP_EVENT_SECRETS` is not set: a published constant for local runs only.
pub const DEV_ERP_SECRET: &str = "lbsec_ledgerbridge_local_erp_development_only";

/// The SQLite file of the payout discrepancy reports, in the data directory.
pub const REPORTS_FILE: &str = "payout-reports.sqlite";

/// Attempts at a reconciliation message before it is parked; the sweep reconsiders the payout
/// later. Below the reconciliation queue's own dead-letter limit, so the reason is recorded.
const RECON_ATTEMPTS: u32 = 20;

/// The lock file that keeps a second process off the same data directory.
pub const LOCK_FILE: &str = "ledgerbridge.lock";

/// The queue files in the data directory, by queue.
pub const QUEUES: [&str; 5] = [
    "events",
    "commands",
    "reconciliation",
    "erp-events",
    "parked",
];

/// Commands posted at once into the in-process ERP sandbox (a real ERP gets the deployment's
/// `post_concurrency`); one reference is still posted by one worker at a time (its message
/// group and its intent claim).
const SANDBOX_POST_CONCURRENCY: usize = 64;

/// Events transformed at once by the local runner. A transform waits on Stripe reads (the
/// Stripe client's own rate limit bounds them against real Stripe) and on the synced send of
/// its commands, which concurrent transforms share (group commit): more in flight means fewer
/// syncs per event, not more load on Stripe.
const LOCAL_TRANSFORM_CONCURRENCY: usize = 32;

/// How often an idle worker looks for messages whose retry delay or visibility timeout ended.
const QUEUE_POLL: Duration = Duration::from_millis(200);

/// The first retry of a message waits this long; each further one twice as long, up to
/// [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(500);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

/// The durable queues' settings for the local runner and `serve`.
#[derive(clap::Args, Clone, Debug)]
pub struct QueueArgs {
    /// Seconds a received message stays hidden before it is delivered again (SQS visibility
    /// timeout); longer than any one message's processing.
    #[arg(long, default_value_t = 120)]
    pub visibility_timeout_secs: u64,
    /// Deliveries without success before a message is moved to its queue's dead letters
    /// (the template's `maxReceiveCount`); retries wait 0.5 s, 1 s, 2 s, … up to 60 s.
    #[arg(long, default_value_t = 10)]
    pub max_receives: u32,
}

impl QueueArgs {
    fn settings(&self, queue: &str) -> DurableQueueSettings {
        DurableQueueSettings {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            visibility_timeout: Duration::from_secs(self.visibility_timeout_secs.max(1)),
            // Reconciliation parks by itself after RECON_ATTEMPTS, with the payout named.
            max_receives: if queue == "reconciliation" {
                self.max_receives.max(RECON_ATTEMPTS.saturating_add(5))
            } else {
                self.max_receives.max(1)
            },
        }
    }
}

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
    #[command(flatten)]
    pub queues: QueueArgs,
    #[command(flatten)]
    pub console: crate::console::ConsoleArgs,
}

/// Where the ERP is.
pub enum ErpSource {
    /// The ERP sandbox, in this process, with its database in the data directory.
    Sandbox(ErpKind),
    /// A real ERP (or a sandbox elsewhere), from an ERP settings document.
    Settings(Secret<String>),
}

/// Where Stripe is.
pub enum StripeSource {
    /// Stripe's API (or `base_url`, a Stripe-compatible endpoint) with this key.
    Api {
        key: Secret<String>,
        base_url: Option<String>,
    },
    /// The sample data in this directory, served on a loopback port.
    Samples(PathBuf),
}

/// Everything the process needs, whichever command started it.
pub struct Options {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub erp: ErpSource,
    pub mapping_toml: String,
    pub reconciliation_toml: String,
    pub stripe: StripeSource,
    /// The webhook signing secrets, under [`WEBHOOK_SECRETS`].
    pub webhook_secrets: EnvSecrets,
    /// The secrets ERP-side events are signed with; `None`: no `POST /erp/customers`.
    pub erp_event_secrets: Option<Vec<Secret<String>>>,
    pub sweep_secs: u64,
    pub erp_poll_secs: u64,
    pub queues: QueueArgs,
}

/// The secret name the intake reads its signing secrets under.
pub const WEBHOOK_SECRETS: &str = "LEDGERBRIDGE_WEBHOOK_SECRETS";

impl Options {
    /// `ledgerbridge local`: the sandbox, the examples unless files are given, the sample
    /// Stripe data unless `STRIPE_API_KEY` is set, development secrets unless set.
    pub fn local(args: &LocalArgs) -> Result<Options, LocalError> {
        let read = |p: &PathBuf| {
            std::fs::read_to_string(p).map_err(|source| LocalError::Dir {
                path: p.clone(),
                source,
            })
        };
        let mapping_toml = match &args.mapping {
            Some(p) => read(p)?,
            None => ledgerbridge_pipeline::mapping::EXAMPLE.to_owned(),
        };
        let reconciliation_toml = match &args.reconciliation {
            Some(p) => read(p)?,
            None => ledgerbridge_recon::service::config::EXAMPLE.to_owned(),
        };
        let env = ledgerbridge_core::config::Env::from_process();
        let stripe = match env.plain("STRIPE_API_KEY") {
            Some(key) => StripeSource::Api {
                key: Secret::new(key),
                base_url: None,
            },
            None => StripeSource::Samples(args.samples.clone()),
        };
        let webhook_secrets = if custom_secret() {
            EnvSecrets::from_process_env()
        } else {
            EnvSecrets::from_pairs([(WEBHOOK_SECRETS.to_owned(), DEV_SECRET.to_owned())])
        };
        let erp_event_secrets = env
            .optional("ERP_EVENT_SECRETS")
            .map(|v| split_secrets(&v))
            .unwrap_or_else(|| vec![Secret::new(DEV_ERP_SECRET.to_owned())]);
        Ok(Options {
            listen: SocketAddr::from(([127, 0, 0, 1], args.port)),
            data_dir: args.data_dir.clone(),
            erp: ErpSource::Sandbox(args.erp),
            mapping_toml,
            reconciliation_toml,
            stripe,
            webhook_secrets,
            erp_event_secrets: Some(erp_event_secrets),
            sweep_secs: args.sweep_secs,
            erp_poll_secs: args.erp_poll_secs,
            queues: args.queues.clone(),
        })
    }
}

/// A comma-separated list of secrets (or a JSON array of strings).
pub(crate) fn split_secrets(v: &str) -> Vec<Secret<String>> {
    if let Ok(list) = serde_json::from_str::<Vec<String>>(v.trim()) {
        return list
            .into_iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| Secret::new(s.trim().to_owned()))
            .collect();
    }
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| Secret::new(s.to_owned()))
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("cannot open the local store: {0}")]
    Store(#[from] ledgerbridge_core::ports::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("embedded queue: {0}")]
    Queue(#[from] ledgerbridge_core::ports::QueueError),
    #[error(
        "the data directory {0} is in use by another ledgerbridge process (its lock file is held)"
    )]
    Locked(PathBuf),
    #[error("ERP event signing secrets: {0}")]
    ErpSecrets(String),
    #[error("server failed: {0}")]
    Serve(std::io::Error),
    #[error("cannot create {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("ERP sandbox: {0}")]
    Sandbox(String),
    #[error("console: {0}")]
    Console(String),
    #[error("ERP connector: {0}")]
    Erp(#[from] ledgerbridge_erp::ErpError),
    #[error("Stripe client: {0}")]
    Stripe(Box<ledgerbridge_stripe::StripeError>),
    #[error(transparent)]
    Mapping(#[from] ledgerbridge_pipeline::mapping::MappingError),
    #[error("reconciliation configuration: {0}")]
    Reconciliation(#[from] ledgerbridge_recon::service::config::ReconFileError),
}

type Transform = TransformStage<SqliteQueue, SqliteQueue, SqliteQueue, StripeClient>;
type PostS = PostStage<AnyConnector, SqliteStore, StripeClient, SystemClock, SqliteQueue>;
type LocalDeps = Deps<SqliteQueue, SqliteStore, SystemClock>;
type ErpSync = ErpSyncStage<SqliteStore, StripeClient, SystemClock, SqliteQueue>;

impl From<ledgerbridge_stripe::StripeError> for LocalError {
    fn from(e: ledgerbridge_stripe::StripeError) -> Self {
        LocalError::Stripe(Box::new(e))
    }
}

/// What the `POST /erp/customers` endpoint needs.
struct ErpIntake {
    verifier: ledgerbridge_core::webhook::Verifier,
    queue: SqliteQueue,
}

type Recon =
    ledgerbridge_recon::service::Deps<SqliteQueue, SqliteStore, SqliteReportStore, SystemClock>;

/// A running local pipeline.
pub struct Running {
    pub addr: std::net::SocketAddr,
    /// The in-process ERP sandbox (`ErpSource::Sandbox` only).
    pub sandbox: Option<SandboxHandle>,
    pub erp: ErpKind,
    pub stripe_writes: Option<SampleStripe>,
    /// A connector to the same ERP for the console (a payout journal's ledger state).
    pub console_connector: Option<AnyConnector>,
    queues: Queues,
    in_flight: Arc<AtomicUsize>,
    stop: tokio::sync::watch::Sender<bool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
    server: tokio::task::JoinHandle<Result<(), std::io::Error>>,
    /// Held for the life of the process: one process per data directory.
    _lock: DataDirLock,
}

/// The durable queues, by name (the order of [`QUEUES`]).
#[derive(Clone)]
struct Queues {
    events: SqliteQueue,
    commands: SqliteQueue,
    reconciliation: SqliteQueue,
    erp_events: SqliteQueue,
    parked: SqliteQueue,
}

impl Queues {
    fn all(&self) -> [(&'static str, &SqliteQueue); 5] {
        [
            (QUEUES[0], &self.events),
            (QUEUES[1], &self.commands),
            (QUEUES[2], &self.reconciliation),
            (QUEUES[3], &self.erp_events),
            (QUEUES[4], &self.parked),
        ]
    }
}

/// What `GET /health` answers.
struct Health {
    queues: Queues,
    in_flight: Arc<AtomicUsize>,
    stopping: tokio::sync::watch::Receiver<bool>,
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
            let q = &self.queues;
            let busy = [&q.events, &q.commands, &q.erp_events, &q.reconciliation]
                .iter()
                .any(|q| !q.is_empty().unwrap_or(false))
                || self.in_flight.load(Ordering::SeqCst) > 0;
            quiet = if busy { 0 } else { quiet + 1 };
            if quiet >= 5 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// Messages parked so far (waiting in the parked queue or kept in its dead letters).
    pub fn parked_count(&self) -> Result<usize, ledgerbridge_core::ports::QueueError> {
        let parked = &self.queues.parked;
        Ok(parked.len()? + parked.dead_letter_count()?)
    }

    /// Graceful shutdown: stop taking webhooks and messages, let the messages in hand finish
    /// (at most `grace`), and return. Whatever is still queued stays on disk for the next
    /// start.
    pub async fn shutdown(self, grace: Duration) -> bool {
        if self.stop.send(true).is_err() {
            tracing::debug!("Every worker had already stopped");
        }
        let deadline = tokio::time::Instant::now() + grace;
        let mut finished = true;
        for w in self.workers {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if tokio::time::timeout(left, w).await.is_err() {
                finished = false;
            }
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if tokio::time::timeout(left, self.server).await.is_err() {
            finished = false;
        }
        finished && self.in_flight.load(Ordering::SeqCst) == 0
    }
}

/// Whether a base URL names this machine (`localhost` or a loopback address).
fn is_loopback(base_url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(base_url) else {
        return false;
    };
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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

/// Start the pipeline on the sandbox (`ledgerbridge local`, `demo`).
pub async fn start(args: &LocalArgs) -> Result<Running, LocalError> {
    start_with(Options::local(args)?).await
}

/// Take the data directory's lock, so a second process on the same files fails at start.
fn lock_data_dir(data_dir: &std::path::Path) -> Result<DataDirLock, LocalError> {
    DataDirLock::acquire(&data_dir.join(LOCK_FILE))?
        .ok_or_else(|| LocalError::Locked(data_dir.to_path_buf()))
}

/// Start the pipeline from [`Options`].
pub async fn start_with(opts: Options) -> Result<Running, LocalError> {
    std::fs::create_dir_all(&opts.data_dir).map_err(|source| LocalError::Dir {
        path: opts.data_dir.clone(),
        source,
    })?;
    let lock = lock_data_dir(&opts.data_dir)?;
    let mapping = Mapping::from_toml(&opts.mapping_toml)?;
    let recon_file = ReconFile::from_toml(&opts.reconciliation_toml)?;

    // The in-process sandbox takes more documents at once than a real ERP is offered.
    let post_concurrency = match &opts.erp {
        ErpSource::Sandbox(_) => SANDBOX_POST_CONCURRENCY,
        ErpSource::Settings(_) => DEFAULTS.post_concurrency,
    };
    let (erp, settings_json, sandbox) = match opts.erp {
        ErpSource::Sandbox(erp) => {
            // The ERP sandbox, seeded with the items and accounts the mapping and the
            // reconciliation configuration name.
            let (_, sandbox) = ledgerbridge_erp_sandbox::spawn(SandboxConfig {
                db: Some(
                    opts.data_dir
                        .join(format!("sandbox-{}.sqlite", erp.as_str())),
                ),
                erps: vec![erp],
                ..SandboxConfig::default()
            })
            .await
            .map_err(|e| LocalError::Sandbox(e.to_string()))?;
            let (mut gl_accounts, items) = names_in(&opts.mapping_toml);
            gl_accounts.extend(names_in(&opts.reconciliation_toml).0);
            gl_accounts.sort();
            gl_accounts.dedup();
            sandbox
                .seed(&Seed {
                    erp: Some(erp),
                    items,
                    gl_accounts,
                    closed_periods: vec![],
                })
                .map_err(|e| LocalError::Sandbox(e.to_string()))?;
            let json = Secret::new(settings_for(erp, &sandbox).to_string());
            (erp, json, Some(sandbox))
        }
        ErpSource::Settings(json) => {
            let erp = ErpSettings::from_json(&json)?.kind();
            (erp, json, None)
        }
    };
    let connector = AnyConnector::from_settings(ErpSettings::from_json(&settings_json)?)?;
    let poll_connector = AnyConnector::from_settings(ErpSettings::from_json(&settings_json)?)?;
    // The console's own connector: it reads a payout journal's state in the ERP's ledger.
    let console_connector = AnyConnector::from_settings(ErpSettings::from_json(&settings_json)?)?;

    // Stripe: the real API (a test-mode key locally), or the sample data served locally.
    let (stripe, sample) = match opts.stripe {
        StripeSource::Api { key, base_url } => {
            let mut cfg = StripeClientConfig::new(key);
            if let Some(base) = base_url {
                // A Stripe-compatible endpoint on this machine (a stand-in, stripe-mock) has no
                // account rate limit; Stripe itself keeps the limit of the key's mode.
                if is_loopback(&base) {
                    cfg.requests_per_second = 0;
                }
                cfg = cfg.with_base_url(base);
            }
            (StripeClient::new(cfg)?, None)
        }
        StripeSource::Samples(dir) => {
            let sample = SampleStripe::load(&dir);
            let base = sample.serve().await.map_err(LocalError::Serve)?;
            let mut cfg = StripeClientConfig::new(Secret::new("sk_test_local_samples".to_owned()))
                .with_base_url(base);
            // The sample server is on this machine: Stripe's rate limit does not apply to it.
            cfg.requests_per_second = 0;
            (StripeClient::new(cfg)?, Some(sample))
        }
    };

    if sample.is_some() && sandbox.is_some() {
        seed_sample_customer(&connector).await?;
    }
    let store = SqliteStore::open(&opts.data_dir.join("ledgerbridge.sqlite"))?;
    let reports = SqliteReportStore::open(&opts.data_dir.join(REPORTS_FILE))?;
    let activity = crate::console::ledger::ConsoleDb::open(&opts.data_dir)?;
    let open = |name: &str| {
        SqliteQueue::open(
            &opts.data_dir.join(format!("queue-{name}.sqlite")),
            opts.queues.settings(name),
        )
    };
    let queues = Queues {
        events: open(QUEUES[0])?,
        commands: open(QUEUES[1])?,
        reconciliation: open(QUEUES[2])?,
        erp_events: open(QUEUES[3])?,
        parked: open(QUEUES[4])?,
    };
    // This process holds the data directory's lock, so whatever a previous process left in
    // flight (leases, hidden messages) belongs to no one: recover it now.
    let expired = store.expire_leases()?;
    let mut recovered = 0;
    for (_, q) in queues.all() {
        recovered += q.recover_in_flight()?;
    }
    if expired > 0 || recovered > 0 {
        tracing::warn!(
            leases = expired,
            messages = recovered,
            "Recovered the work of a process that stopped without finishing it"
        );
    }
    let Queues {
        events,
        commands,
        reconciliation,
        erp_events,
        parked,
    } = queues.clone();
    let deps: Arc<LocalDeps> = Arc::new(Deps {
        queue: events.clone(),
        store: store.clone(),
        verifier: RotatingVerifier::new(
            SecretsBackend::Env(
                CachedSecrets::new(opts.webhook_secrets, DEFAULTS.secret_ttl),
                WEBHOOK_SECRETS.to_owned(),
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
    let erp_intake = match &opts.erp_event_secrets {
        Some(secrets) => Some(Arc::new(ErpIntake {
            verifier: ledgerbridge_core::webhook::Verifier::new(secrets)
                .map_err(|e| LocalError::ErpSecrets(e.to_string()))?,
            queue: erp_events.clone(),
        })),
        None => None,
    };
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
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let mut workers = Vec::new();
    {
        let (q, t, n) = (events.clone(), transform.clone(), in_flight.clone());
        workers.push(tokio::spawn(worker(
            q,
            n,
            stop_rx.clone(),
            LOCAL_TRANSFORM_CONCURRENCY,
            move |m| {
                let t = t.clone();
                async move { t.process(&m).await }
            },
        )));
    }
    {
        let (q, p, n, erp) = (commands.clone(), poster.clone(), in_flight.clone(), erp);
        workers.push(tokio::spawn(worker(
            q,
            n,
            stop_rx.clone(),
            post_concurrency,
            move |m| {
                let (p, activity) = (p.clone(), activity.clone());
                async move {
                    let (outcome, posted) = p.process_detailed(&m).await;
                    match posted {
                        Some(Posted::Command(msg, result)) => {
                            activity.record(&msg, erp.as_str(), &result);
                            let reference = msg.command.reference();
                            match result {
                                PostResult::Posted { erp_id, created } => say!(
                                    "erp     {:<8} {:<13} {:<46} → {} ({})",
                                    erp.as_str(),
                                    msg.command.kind().as_str(),
                                    reference.to_string(),
                                    erp_id,
                                    if created { "created" } else { "updated" }
                                ),
                                PostResult::AlreadyPosted { .. } => {}
                                PostResult::Stale => {
                                    say!("erp     skipped an older update of {reference}")
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
                                say!(
                                    "erp     {:<8} {:<13} {:<46} → {} ({} field(s): {})",
                                    erp.as_str(),
                                    "fields",
                                    msg.object_id,
                                    customer_code,
                                    written.len(),
                                    values.join(", ")
                                );
                                if !unmapped.is_empty() {
                                    say!(
                                        "erp     not written (no field in the ERP settings): {}",
                                        unmapped.join(", ")
                                    );
                                }
                            }
                            FieldsResult::Stale => {
                                say!("erp     skipped older values of {}", msg.object_id)
                            }
                        },
                        // Done without a result: the stage parked the message.
                        None if outcome == RecordOutcome::Done => activity.parked(&m, erp.as_str()),
                        None => {}
                    }
                    outcome
                }
            },
        )));
    }
    {
        let (q, r, n, parked) = (
            reconciliation.clone(),
            recon.clone(),
            in_flight.clone(),
            parked.clone(),
        );
        let attempts: Arc<std::sync::Mutex<HashMap<String, u32>>> = Arc::default();
        workers.push(tokio::spawn(worker(
            q,
            n,
            stop_rx.clone(),
            DEFAULTS.local_recon_concurrency,
            move |m| {
                let (r, parked, attempts) = (r.clone(), parked.clone(), attempts.clone());
                async move {
                    let result = r.process_message(&m).await;
                    reconciled(&m, &result, &attempts, &parked).await
                }
            },
        )));
    }
    if opts.erp_poll_secs > 0 {
        tokio::spawn(erp_poll_timer(
            erp_poll,
            Duration::from_secs(opts.erp_poll_secs),
        ));
    }
    if opts.sweep_secs > 0 {
        tokio::spawn(sweep_timer(
            recon,
            Duration::from_secs(opts.sweep_secs),
            in_flight.clone(),
        ));
    }
    {
        let (q, st, n) = (erp_events.clone(), erp_sync.clone(), in_flight.clone());
        workers.push(tokio::spawn(worker(
            q,
            n,
            stop_rx.clone(),
            DEFAULTS.sync_concurrency,
            move |m| {
                let st = st.clone();
                async move {
                    let report = st.process_detailed(&m).await;
                    match report {
                        ledgerbridge_pipeline::to_stripe::sync::SyncReport::Outcome(o) => o,
                        ledgerbridge_pipeline::to_stripe::sync::SyncReport::Updated {
                            stripe_customer,
                        } => {
                            say!("stripe  customer {stripe_customer} updated from the ERP");
                            RecordOutcome::Done
                        }
                        ledgerbridge_pipeline::to_stripe::sync::SyncReport::Unchanged {
                            stripe_customer,
                        } => {
                            say!(
                                "stripe  customer {stripe_customer} already shows the ERP's values"
                            );
                            RecordOutcome::Done
                        }
                        _ => RecordOutcome::Done,
                    }
                }
            },
        )));
    }
    workers.push(tokio::spawn(report_parked(parked, stop_rx.clone())));

    let health = Arc::new(Health {
        queues: queues.clone(),
        in_flight: in_flight.clone(),
        stopping: stop_rx.clone(),
    });
    let mut app = Router::new()
        .route("/webhook", post(webhook))
        .with_state(deps)
        .merge(
            Router::new()
                .route("/health", get(health_check))
                .with_state(health),
        );
    if let Some(erp_intake) = erp_intake {
        app = app.merge(
            Router::new()
                .route("/erp/customers", post(erp_event))
                .with_state(erp_intake),
        );
    }
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|source| LocalError::Listen {
            addr: opts.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| LocalError::Listen {
        addr: opts.listen,
        source,
    })?;
    let mut server_stop = stop_rx;
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                stopped(&mut server_stop).await;
            })
            .await
    });
    Ok(Running {
        addr,
        sandbox,
        erp,
        stripe_writes: sample,
        console_connector: Some(console_connector),
        queues,
        in_flight,
        stop,
        workers,
        server,
        _lock: lock,
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
    parked: &SqliteQueue,
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
            say!("recon   {payout:<30} not posted: {reason}");
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
            say!("recon   {payout:<30} journal {reference} queued");
            outcome
        }
        (PayoutResult::NeedsReview, None) => {
            say!(
                "recon   {payout:<30} not posted: needs review (ledgerbridge report --payout {payout})"
            );
            outcome
        }
        (PayoutResult::AlreadyDone, None) => {
            say!("recon   {payout:<30} already reconciled");
            outcome
        }
        (PayoutResult::Skipped { reason }, None) => {
            say!("recon   {payout:<30} not posted: {reason}");
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
            Ok(r) if r.queued > 0 || r.relinked > 0 => say!(
                "erp     poll: {} changed customer(s), {} sent on to Stripe, {} not linked to Stripe",
                r.listed, r.queued, r.not_linked
            ),
            Ok(_) => {}
            Err(e) => say!("erp     poll failed: {e}"),
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
        say!(
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
        phone: None,
    });
    post_command(connector, &cmd, &RetryPolicy::default()).await?;
    Ok(())
}

/// Resolves once a stop is requested (or the sender is gone).
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        tracing::debug!("The stop signal's sender is gone");
    }
}

/// The delay before the `n`th delivery's retry: 0.5 s, 1 s, 2 s, … up to a minute.
fn retry_delay(receive_count: u32) -> Duration {
    let doublings = receive_count.saturating_sub(1).min(16);
    FIRST_RETRY_DELAY
        .saturating_mul(1u32 << doublings)
        .min(MAX_RETRY_DELAY)
}

/// Receive from a durable queue and run `stage` on up to `concurrency` messages at a time
/// (messages of one group are never in flight together): delete on success (or a permanent
/// outcome the stage has already parked), release for a later delivery on a retryable
/// failure. A slot freed by a finished message is refilled at once (a slow message holds only
/// its own slot). Stops taking messages once `stop` is set, after the messages in hand.
async fn worker<F, Fut>(
    queue: SqliteQueue,
    in_flight: Arc<AtomicUsize>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    concurrency: usize,
    stage: F,
) where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = RecordOutcome>,
{
    use futures::stream::{FuturesUnordered, StreamExt};
    let concurrency = concurrency.max(1);
    let settle = |msg: Delivery| {
        let run = stage(msg.body.clone());
        let (queue, in_flight) = (&queue, &in_flight);
        async move {
            let settled = match run.await {
                RecordOutcome::Retry(reason) => {
                    tracing::info!(
                        reason = %reason,
                        receive_count = msg.receive_count,
                        "Message will be retried"
                    );
                    queue.retry(&msg, retry_delay(msg.receive_count), &reason)
                }
                _ => queue.delete(&msg),
            };
            match settled {
                Ok(true) => {}
                // The visibility timeout ended first and the message went out again; that
                // delivery settles it (every stage is idempotent).
                Ok(false) => tracing::warn!(
                    queue_message_id = %msg.id.as_str(),
                    "Message was redelivered before this delivery finished"
                ),
                Err(e) => tracing::error!(
                    error = %e,
                    "Settling a message failed; it will be delivered again"
                ),
            }
            in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    };
    let mut running = FuturesUnordered::new();
    loop {
        if *stop.borrow() {
            break;
        }
        let free = concurrency.saturating_sub(running.len());
        if free == 0 {
            running.next().await;
            continue;
        }
        tokio::select! {
            batch = queue.receive(free, QUEUE_POLL) => match batch {
                Ok(batch) => {
                    in_flight.fetch_add(batch.len(), Ordering::SeqCst);
                    running.extend(batch.into_iter().map(settle));
                }
                Err(e) => {
                    tracing::error!(error = %e, "Receiving from the embedded queue failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            },
            // A slot freed: receive for it (receiving is cancel-safe: a receive cut short
            // has taken nothing).
            Some(()) = running.next(), if !running.is_empty() => {}
            () = stopped(&mut stop) => break,
        }
    }
    while running.next().await.is_some() {}
}

/// Print each parked message's reason and keep it in the parked queue's dead letters, where a
/// person finds it (`docs/serve.md`, "Parked messages").
async fn report_parked(parked: SqliteQueue, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        let batch = tokio::select! {
            batch = parked.receive(10, QUEUE_POLL) => batch,
            () = stopped(&mut stop) => return,
        };
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "Receiving parked messages failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for msg in batch {
            let reason = serde_json::from_str::<serde_json::Value>(&msg.body)
                .ok()
                .and_then(|v| v["reason"].as_str().map(str::to_owned))
                .unwrap_or_default();
            say!("parked  {reason}");
            tracing::warn!(alarm = "parked", reason = %reason, "Message parked");
            if let Err(e) = parked.dead_letter(&msg, &format!("parked: {reason}")) {
                tracing::error!(error = %e, "Keeping a parked message failed; it will be reported again");
            }
        }
    }
}

/// `GET /health`: 200 with the queue depths while running, 503 once shutting down or when a
/// queue file cannot be read.
async fn health_check(State(h): State<Arc<Health>>) -> (StatusCode, axum::Json<serde_json::Value>) {
    let mut queues = serde_json::Map::new();
    let mut ok = !*h.stopping.borrow();
    for (name, q) in h.queues.all() {
        match (q.len(), q.dead_letter_count()) {
            (Ok(depth), Ok(dead)) => {
                queues.insert(
                    name.to_owned(),
                    serde_json::json!({"depth": depth, "dead_letters": dead}),
                );
            }
            _ => ok = false,
        }
    }
    let body = serde_json::json!({
        "status": if ok { "ok" } else if *h.stopping.borrow() { "stopping" } else { "degraded" },
        "in_flight": h.in_flight.load(Ordering::SeqCst),
        "queues": queues,
    });
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body))
}

pub async fn run(args: LocalArgs) -> Result<(), LocalError> {
    let mut running = start(&args).await?;
    say!("ledgerbridge local pipeline");
    say!("  webhook endpoint : {}", running.webhook_url());
    say!(
        "  signing secret   : {}",
        if custom_secret() {
            "from LEDGERBRIDGE_WEBHOOK_SECRETS"
        } else {
            "built-in development secret (see README)"
        }
    );
    if let Some(sandbox) = &running.sandbox {
        say!(
            "  ERP sandbox      : {} at {} (audit log: {}/_admin/audit)",
            running.erp.as_str(),
            sandbox.base_url(),
            sandbox.base_url()
        );
    }
    say!(
        "  Stripe API       : {}",
        if running.stripe_writes.is_some() {
            "sample data served locally (set STRIPE_API_KEY for test mode)"
        } else {
            "Stripe, with STRIPE_API_KEY"
        }
    );
    say!("  data             : {}", args.data_dir.display());
    let recon_toml = match &args.reconciliation {
        Some(p) => std::fs::read_to_string(p).map_err(|source| LocalError::Dir {
            path: p.clone(),
            source,
        })?,
        None => ledgerbridge_recon::service::config::EXAMPLE.to_owned(),
    };
    if let Some(addr) = crate::console::start_for(
        &args.console,
        &args.data_dir,
        &recon_toml,
        running.console_connector.take(),
    )
    .await
    .map_err(|e| LocalError::Console(e.to_string()))?
    {
        say!("  console          : http://{addr}/");
    }
    say!(
        "  replay samples   : cargo run -p ledgerbridge-cli -- replay --url {}",
        running.webhook_url()
    );
    run_until_stopped(running, args.stop_after, Duration::from_secs(30)).await
}

/// Wait for SIGTERM or SIGINT (or `stop_after` seconds), then shut down gracefully: no new
/// webhooks or messages, the messages in hand finish within `grace`.
pub async fn run_until_stopped(
    mut running: Running,
    stop_after: Option<u64>,
    grace: Duration,
) -> Result<(), LocalError> {
    let wait = async {
        match stop_after {
            Some(secs) => tokio::time::sleep(Duration::from_secs(secs)).await,
            None => shutdown_signal().await,
        }
    };
    tokio::select! {
        () = wait => {}
        res = &mut running.server => return match res {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(LocalError::Serve(e)),
            Err(e) => Err(LocalError::Serve(std::io::Error::other(e))),
        },
    }
    tracing::info!("Shutting down: finishing the messages in hand");
    if running.shutdown(grace).await {
        tracing::info!("Stopped; nothing in flight");
    } else {
        tracing::warn!(
            grace_secs = grace.as_secs(),
            "Stopped with work in flight; it is delivered again at the next start"
        );
    }
    Ok(())
}

/// SIGTERM (systemd, `kill`) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                if tokio::signal::ctrl_c().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
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
    let Some(sandbox) = &running.sandbox else {
        return;
    };
    let audit = sandbox.audit(Some(running.erp)).unwrap_or_default();
    let mut counts: std::collections::BTreeMap<(String, String), usize> = Default::default();
    for a in &audit {
        *counts
            .entry((a.entity.clone(), a.action.clone()))
            .or_default() += 1;
    }
    say!(
        "\nERP sandbox ({}) audit log: {} entries",
        running.erp.as_str(),
        audit.len()
    );
    for ((entity, action), n) in counts {
        say!("  {n:>3} × {action:<6} {entity}");
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

    #[test]
    fn only_an_endpoint_on_this_machine_goes_without_the_rate_limit() {
        for local in [
            "http://127.0.0.1:12111",
            "http://localhost:8080",
            "http://[::1]:9000",
            "http://127.9.9.9",
        ] {
            assert!(is_loopback(local), "{local}");
        }
        for remote in [
            "https://api.stripe.com",
            "http://10.0.0.5:12111",
            "http://localhost.example.com",
            "not a url",
        ] {
            assert!(!is_loopback(remote), "{remote}");
        }
    }
}
