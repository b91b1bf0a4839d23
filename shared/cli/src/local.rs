//! The local pipeline: the same intake handler as the Lambda, behind an axum server, with the
//! embedded queue and SQLite store.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use ledgerbridge_core::embedded::{MemoryQueue, SqliteStore, DEFAULT_MAX_MESSAGE_BYTES};
use ledgerbridge_core::message::IntakeMessage;
use ledgerbridge_core::secrets::{CachedSecrets, EnvSecrets};
use ledgerbridge_core::SystemClock;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use webhook_intake::{handle_webhook, Deps, RotatingVerifier, SecretsBackend};

/// The development signing secret used when `LEDGERBRIDGE_WEBHOOK_SECRETS` is not set. It is a
/// published constant for local runs only, never a production secret.
pub const DEV_SECRET: &str = "whsec_ledgerbridge_local_development_only";

#[derive(clap::Args)]
pub struct LocalArgs {
    /// Port of the webhook endpoint on 127.0.0.1.
    #[arg(long, default_value_t = 8787)]
    port: u16,
    /// SQLite file for idempotency records and cross-references.
    #[arg(long, default_value = ".local/ledgerbridge.db")]
    db: PathBuf,
    /// Stop after this many seconds (for scripted runs); runs until Ctrl-C by default.
    #[arg(long)]
    stop_after: Option<u64>,
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
}

type LocalDeps = Deps<MemoryQueue, SqliteStore, SystemClock>;

/// A running local pipeline.
pub struct Running {
    pub addr: std::net::SocketAddr,
    server: tokio::task::JoinHandle<Result<(), std::io::Error>>,
}

impl Running {
    pub fn webhook_url(&self) -> String {
        format!("http://{}/webhook", self.addr)
    }
}

/// Start the pipeline on `127.0.0.1:port` (0 picks a free port) with its store at `db`.
pub async fn start(port: u16, db: &std::path::Path) -> Result<Running, LocalError> {
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| LocalError::Dir {
            path: dir.to_owned(),
            source,
        })?;
    }
    let store = SqliteStore::open(db)?;
    let queue = MemoryQueue::new(DEFAULT_MAX_MESSAGE_BYTES);
    let secret_name = "LEDGERBRIDGE_WEBHOOK_SECRETS";
    let env = if custom_secret() {
        EnvSecrets::from_process_env()
    } else {
        EnvSecrets::from_pairs([(secret_name.to_owned(), DEV_SECRET.to_owned())])
    };
    let verifier = RotatingVerifier::new(
        SecretsBackend::Env(
            CachedSecrets::new(env, Duration::from_secs(300)),
            secret_name.to_owned(),
        ),
        ledgerbridge_core::webhook::DEFAULT_TOLERANCE_SECS,
    );
    let deps = Arc::new(Deps {
        queue: queue.clone(),
        store,
        verifier,
        clock: SystemClock,
        handled: ledgerbridge_core::event::DEFAULT_HANDLED_TYPES
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        dedupe_for_secs: 35 * 86_400,
        lease_ms: 15_000,
        wait_for_peer: Duration::from_secs(3),
    });
    let app = Router::new()
        .route("/webhook", post(webhook))
        .with_state(deps);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|source| LocalError::Listen { port, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| LocalError::Listen { port, source })?;
    tokio::spawn(consume(queue));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(Running { addr, server })
}

fn custom_secret() -> bool {
    ledgerbridge_core::config::Env::from_process()
        .optional("WEBHOOK_SECRETS")
        .is_some()
}

pub async fn run(args: LocalArgs) -> Result<(), LocalError> {
    let running = start(args.port, &args.db).await?;
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
    println!("  store            : {}", args.db.display());
    println!(
        "  replay samples   : cargo run -p ledgerbridge-cli -- replay --url {}",
        running.webhook_url()
    );
    let wait = async {
        match args.stop_after {
            Some(secs) => tokio::time::sleep(Duration::from_secs(secs)).await,
            None => {
                if tokio::signal::ctrl_c().await.is_err() {
                    // No signal handling available: run until the process is stopped.
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

/// Reads the embedded queue and reports what would go to the transform stage.
async fn consume(queue: MemoryQueue) {
    loop {
        for msg in queue.receive(10).await {
            match IntakeMessage::decode(&msg.body) {
                Ok(IntakeMessage::StripeEventV1(e)) => println!(
                    "queued  {:<36} {:<32} object {}",
                    e.event_id,
                    e.event_type,
                    e.object_id.as_deref().unwrap_or("-")
                ),
                Ok(IntakeMessage::StripeEventRefV1(r)) => {
                    println!(
                        "queued  {:<36} {:<32} by reference ({:?})",
                        r.event_id, r.event_type, r.reason
                    )
                }
                Err(e) => tracing::error!(error = %e, "Unreadable message on the local queue"),
            }
        }
    }
}
