//! `ledgerbridge`: the command; everything is in the library.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    ledgerbridge_cli::run_cli(std::env::args_os()).await
}
