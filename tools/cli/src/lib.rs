//! `ledgerbridge`: run the pipeline locally on embedded defaults or for production on one
//! machine (`serve`), and replay signed events. A library so the integration tests can run the
//! command in a child process of their own binary.

mod agent;
pub mod audit;
pub mod backfill;
mod bench;
mod config_check;
pub mod console;
mod erp_check;
pub mod local;
mod map;
mod parked;
pub mod parked_aws;
pub mod quarantine;
pub mod replay;
mod report;
mod sample_stripe;
pub mod serve;

use clap::{Parser, Subcommand};

/// Stripe → ERP integration, locally: no AWS account and no Docker needed.
#[derive(Parser)]
#[command(name = "ledgerbridge", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the local pipeline: the webhook endpoint on localhost, durable embedded queues
    /// and a SQLite store in the data directory, and the ERP sandbox.
    Local(local::LocalArgs),
    /// Run the pipeline for production on one machine next to the ERP: a real ERP from an ERP
    /// settings file, secrets from the environment or files, required mapping and
    /// reconciliation files, a health endpoint, JSON logs, graceful shutdown.
    Serve(serve::ServeArgs),
    /// On-premises agent: post commands from the cloud queue to an ERP on the local network
    /// (outbound HTTPS only).
    Agent(agent::AgentArgs),
    /// Preview the ERP commands an event file would produce with a mapping configuration.
    Map(map::MapArgs),
    /// One command to see it work: start the local pipeline on a free port, deliver every
    /// sample event twice, print what happened, and stop.
    Demo(DemoArgs),
    /// Sign sample Stripe events with the endpoint secret and POST them to a webhook endpoint.
    Replay(replay::ReplayArgs),
    /// Print a payout's stored discrepancy report from the local report store (and write it
    /// as CSV).
    Report(report::ReportArgs),
    /// Bring Stripe history (older than the events API's 30 days) into the ERP through the
    /// normal pipeline: list objects created in a date range, deliver each as a signed event to
    /// the webhook endpoint; idempotent and resumable.
    Backfill(backfill::BackfillArgs),
    /// ERP installation tools: `erp check` verifies an installation before the first document.
    Erp(erp_check::ErpArgs),
    /// Configuration tools: `config check` checks the mapping and reconciliation files before
    /// a deployment (every problem listed, non-zero exit on any).
    Config(config_check::ConfigArgs),
    /// The operator console on its own, over a data directory or a deployed stack (`--stack`):
    /// records, parked work, payouts, health.
    Console(console::ConsoleCmdArgs),
    /// Parked messages and dead letters: list them, show one, replay after the fix.
    Parked(parked::ParkedArgs),
    /// Validly signed deliveries the intake kept instead of queueing (unparseable, or an event
    /// id seen with another payload): list them (never a body), show one with its exact bytes.
    Quarantine(quarantine::QuarantineArgs),
    /// Measure the local pipeline on N generated events of the order-to-cash mix: events/s,
    /// documents/s, Stripe calls per event, ERP requests per document, latency, peak RSS.
    Bench(bench::BenchArgs),
    /// Confirm that every document cross-referenced in a date range still exists in the ERP
    /// with the amount and currency posted; report missing and different ones (console and
    /// CSV), re-post missing ones with --repost; exits non-zero when anything is flagged.
    Audit(audit::AuditArgs),
}

#[derive(clap::Args)]
struct DemoArgs {
    /// Which ERP the sandbox plays.
    #[arg(long, value_parser = local::erp_kind_parser(),
          default_value_t = ledgerbridge_erp::ErpKind::Epicor)]
    erp: ledgerbridge_erp::ErpKind,
    /// A directory of Stripe event JSON files.
    #[arg(long, default_value = "tests/fixtures/stripe/events")]
    events: std::path::PathBuf,
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Local(#[from] local::LocalError),
    #[error(transparent)]
    Serve(#[from] serve::ServeError),
    #[error(transparent)]
    Replay(#[from] replay::ReplayError),
    #[error(transparent)]
    Agent(#[from] agent::AgentRunError),
    #[error(transparent)]
    Map(#[from] map::MapError),
    #[error(transparent)]
    Report(#[from] report::ReportError),
    #[error(transparent)]
    Backfill(#[from] backfill::BackfillError),
    #[error(transparent)]
    ErpCheck(#[from] erp_check::ErpCheckError),
    #[error(transparent)]
    ConfigCheck(#[from] config_check::ConfigCheckError),
    #[error(transparent)]
    Console(#[from] console::ServeConsoleError),
    #[error(transparent)]
    Parked(#[from] parked::ParkedError),
    #[error(transparent)]
    Quarantine(#[from] quarantine::QuarantineError),
    #[error(transparent)]
    Bench(#[from] bench::BenchError),
    #[error(transparent)]
    Audit(#[from] audit::AuditError),
    #[error("the pipeline did not settle within {0} s")]
    NotIdle(u64),
}

async fn demo(args: DemoArgs) -> Result<(), CliError> {
    let data_dir = std::env::temp_dir().join(format!("ledgerbridge-demo-{}", std::process::id()));
    let local_args = local::LocalArgs {
        port: 0,
        erp: args.erp,
        data_dir: data_dir.clone(),
        mapping: None,
        samples: args
            .events
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default(),
        reconciliation: None,
        // The demo delivers the payout events; no scheduled sweep during its few seconds.
        sweep_secs: 0,
        erp_poll_secs: 0,
        stop_after: None,
        queues: local::QueueArgs {
            visibility_timeout_secs: 120,
            max_receives: 10,
        },
        console: Default::default(),
    };
    let running = local::start(&local_args).await?;
    println!(
        "local pipeline on {} → ERP sandbox ({})",
        running.webhook_url(),
        args.erp.as_str()
    );
    let summary = replay::replay(
        &running.webhook_url(),
        &args.events,
        &[local::DEV_SECRET.to_owned()],
        2,
    )
    .await?;
    if !running.idle(std::time::Duration::from_secs(60)).await {
        return Err(CliError::NotIdle(60));
    }
    println!(
        "\n{} deliveries: {} events queued once, {} duplicate deliveries answered 200 and queued nothing, {} ignored, {} rejected",
        summary.delivered, summary.accepted, summary.duplicates, summary.ignored, summary.rejected
    );
    local::print_erp_summary(&running);
    if let Some(sample) = &running.stripe_writes {
        println!("Stripe metadata write-backs: {}", sample.writes().len());
    }
    if let Err(e) = std::fs::remove_dir_all(&data_dir) {
        tracing::debug!(error = %e, "Demo data not removed");
    }
    if summary.rejected > 0 {
        return Err(replay::ReplayError::Rejected(summary.rejected).into());
    }
    Ok(())
}

/// The command with these arguments (the first one is the program name).
pub async fn run_cli<I, T>(args: I) -> std::process::ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = Cli::parse_from(args);
    match cli.command {
        Command::Serve(_) => ledgerbridge_core::telemetry::init_json_logging(),
        _ => ledgerbridge_core::telemetry::init_text_logging(),
    }
    let result: Result<(), CliError> = match cli.command {
        Command::Local(args) => local::run(args).await.map_err(CliError::from),
        Command::Serve(args) => serve::run(args).await.map_err(CliError::from),
        Command::Replay(args) => replay::run(args).await.map_err(CliError::from),
        Command::Demo(args) => demo(args).await,
        Command::Agent(args) => agent::run(args).await.map_err(CliError::from),
        Command::Map(args) => map::run(args).await.map_err(CliError::from),
        Command::Report(args) => report::run(args).await.map_err(CliError::from),
        Command::Backfill(args) => backfill::run(args).await.map_err(CliError::from),
        Command::Erp(args) => erp_check::run(args).await.map_err(CliError::from),
        Command::Config(args) => config_check::run(args).map_err(CliError::from),
        Command::Console(args) => console::run(args).await.map_err(CliError::from),
        Command::Parked(args) => parked::run(args).await.map_err(CliError::from),
        Command::Quarantine(args) => quarantine::run(args).await.map_err(CliError::from),
        Command::Bench(args) => bench::run(args).await.map_err(CliError::from),
        Command::Audit(args) => audit::run(args).await.map_err(CliError::from),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
