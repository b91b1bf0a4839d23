//! Sign Stripe event files with an endpoint secret and POST them to a webhook endpoint, as
//! Stripe would (fresh timestamp, `Stripe-Signature: t=…,v1=…`).

use ledgerbridge_core::webhook::sign_header;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// The webhook endpoint.
    #[arg(long, default_value = "http://127.0.0.1:8787/webhook")]
    url: String,
    /// A directory of event JSON files, or one file.
    #[arg(long, default_value = "tests/fixtures/stripe/events")]
    events: PathBuf,
    /// Signing secret(s); more than one signs with each, as Stripe does during a secret roll.
    #[arg(long = "secret", env = "LEDGERBRIDGE_REPLAY_SECRET", default_value = crate::local::DEV_SECRET)]
    secrets: Vec<String>,
    /// Deliver every event this many times (Stripe delivers at least once).
    #[arg(long, default_value_t = 1)]
    copies: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no .json event files in {0}")]
    Empty(PathBuf),
    #[error("HTTP client error: {0}")]
    Http(#[from] reqwest::Error),
    #[error("{0} deliveries were not accepted")]
    Rejected(usize),
}

/// What a replay did.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReplaySummary {
    pub delivered: usize,
    pub accepted: usize,
    pub duplicates: usize,
    pub ignored: usize,
    pub rejected: usize,
}

pub async fn run(args: ReplayArgs) -> Result<(), ReplayError> {
    let summary = replay(&args.url, &args.events, &args.secrets, args.copies).await?;
    println!(
        "{} deliveries: {} queued, {} duplicates answered 200 without queueing, {} ignored, {} rejected",
        summary.delivered, summary.accepted, summary.duplicates, summary.ignored, summary.rejected
    );
    if summary.rejected > 0 {
        return Err(ReplayError::Rejected(summary.rejected));
    }
    Ok(())
}

/// Deliver every event file `copies` times, signed now with `secrets`.
pub async fn replay(
    url: &str,
    events: &PathBuf,
    secrets: &[String],
    copies: u32,
) -> Result<ReplaySummary, ReplayError> {
    let files = event_files(events)?;
    let client = reqwest::Client::new();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let mut summary = ReplaySummary::default();
    for file in &files {
        let body = std::fs::read(file).map_err(|source| ReplayError::Read {
            path: file.clone(),
            source,
        })?;
        for copy in 0..copies {
            let t = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let header = sign_header(&secrets, i64::try_from(t).unwrap_or(i64::MAX), &body);
            let resp = client
                .post(url)
                .header("content-type", "application/json")
                .header("stripe-signature", header)
                .body(body.clone())
                .send()
                .await?;
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            println!(
                "{:<40} copy {} → {} {}",
                name,
                copy + 1,
                status.as_u16(),
                text
            );
            summary.delivered += 1;
            if !status.is_success() {
                summary.rejected += 1;
            } else if text.contains("duplicate") {
                summary.duplicates += 1;
            } else if text.contains("ignored") {
                summary.ignored += 1;
            } else {
                summary.accepted += 1;
            }
        }
    }
    Ok(summary)
}

fn event_files(path: &PathBuf) -> Result<Vec<PathBuf>, ReplayError> {
    if path.is_file() {
        return Ok(vec![path.clone()]);
    }
    let read = std::fs::read_dir(path).map_err(|source| ReplayError::Read {
        path: path.clone(),
        source,
    })?;
    let mut files: Vec<PathBuf> = read
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    // Deliver in the order Stripe created the events (file names do not say it).
    files.sort_by_key(|p| {
        let created = std::fs::read(p)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["created"].as_i64())
            .unwrap_or(i64::MAX);
        (created, p.clone())
    });
    if files.is_empty() {
        return Err(ReplayError::Empty(path.clone()));
    }
    Ok(files)
}
