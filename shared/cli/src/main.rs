//! `ledgerbridge`: run the pipeline locally on embedded defaults, and replay signed events.

mod local;
mod replay;

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
    /// Start the local pipeline: the webhook endpoint on localhost, an embedded queue and a
    /// SQLite store.
    Local(local::LocalArgs),
    /// One command to see it work: start the local pipeline on a free port, deliver every
    /// sample event twice, print what happened, and stop.
    Demo(DemoArgs),
    /// Sign sample Stripe events with the endpoint secret and POST them to a webhook endpoint.
    Replay(replay::ReplayArgs),
}

#[derive(clap::Args)]
struct DemoArgs {
    /// A directory of Stripe event JSON files.
    #[arg(long, default_value = "tests/fixtures/stripe/events")]
    events: std::path::PathBuf,
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Local(#[from] local::LocalError),
    #[error(transparent)]
    Replay(#[from] replay::ReplayError),
}

async fn demo(args: DemoArgs) -> Result<(), CliError> {
    let db = std::env::temp_dir().join(format!("ledgerbridge-demo-{}.db", std::process::id()));
    let running = local::start(0, &db).await?;
    println!("local pipeline listening on {}", running.webhook_url());
    let summary = replay::replay(
        &running.webhook_url(),
        &args.events,
        &[local::DEV_SECRET.to_owned()],
        2,
    )
    .await?;
    // Let the queue consumer print the last messages.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    println!(
        "\n{} deliveries: {} events queued once, {} duplicate deliveries answered 200 and queued nothing, {} ignored, {} rejected",
        summary.delivered, summary.accepted, summary.duplicates, summary.ignored, summary.rejected
    );
    if let Err(e) = std::fs::remove_file(&db) {
        tracing::debug!(error = %e, "Demo store not removed");
    }
    if summary.rejected > 0 {
        return Err(replay::ReplayError::Rejected(summary.rejected).into());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    ledgerbridge_core::telemetry::init_text_logging();
    let cli = Cli::parse();
    let result: Result<(), CliError> = match cli.command {
        Command::Local(args) => local::run(args).await.map_err(CliError::from),
        Command::Replay(args) => replay::run(args).await.map_err(CliError::from),
        Command::Demo(args) => demo(args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
