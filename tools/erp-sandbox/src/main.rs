//! `erp-sandbox`: run the ERP sandbox as a standalone server.

use clap::builder::TypedValueParser as _;
use clap::Parser;
use ledgerbridge_erp_sandbox::{spawn, ErpKind, SandboxConfig};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "erp-sandbox",
    about = "ERP sandbox speaking the Epicor Kinetic, Sage Pro and Sage 500 dialects"
)]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8089, env = "ERP_SANDBOX_PORT")]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// SQLite database file (in memory when omitted).
    #[arg(long, env = "ERP_SANDBOX_DB")]
    db: Option<PathBuf>,
    /// Dialects to serve (repeatable); all when omitted.
    #[arg(long = "erp", value_parser = erp_kind_parser())]
    erps: Vec<ErpKind>,
    /// Company (Epicor path segment, Sage 500 CompanyID).
    #[arg(long, default_value = "EPIC06")]
    company: String,
    /// Do not seed demo items and GL accounts.
    #[arg(long)]
    no_seed: bool,
}

/// `--erp` takes the [`ErpKind`] names, listed in `--help`.
fn erp_kind_parser() -> impl clap::builder::TypedValueParser<Value = ErpKind> {
    clap::builder::PossibleValuesParser::new(ErpKind::ALL.map(ErpKind::as_str))
        .try_map(|name| name.parse::<ErpKind>())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let cfg = SandboxConfig {
        bind: SocketAddr::new(args.bind, args.port),
        db: args.db,
        erps: args.erps,
        company: args.company,
        seed_demo: !args.no_seed,
        ..SandboxConfig::default()
    };
    let (addr, handle) = spawn(cfg).await?;
    println!("erp-sandbox listening on http://{addr}");
    tokio::signal::ctrl_c().await?;
    handle.shutdown().await;
    Ok(())
}
