#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark: failing loudly is the point
//! Throughput of the durable embedded pipeline (`ledgerbridge local` / `serve` on SQLite queues).
//!
//! 1. The durable queue alone: messages/s for 64 concurrent senders (group commit: one synced
//!    transaction per group) and for one sender at a time (one synced transaction each), then
//!    receive + delete.
//! 2. The whole local pipeline: `customer.created` events signed and POSTed to the webhook
//!    endpoint by 32 concurrent clients; intake acknowledgements/s (every one durable before its
//!    2xx), and events/s end to end until every customer is in the ERP sandbox.
//!
//! `cargo bench -p ledgerbridge-cli --bench pipeline` (optional argument: event count, default
//! 2,000).

use ledgerbridge_adapters::embedded::{DurableQueueSettings, SqliteQueue};
use ledgerbridge_cli::local::{self, ErpSource, Options, QueueArgs, StripeSource};
use ledgerbridge_core::ports::EventQueue;
use ledgerbridge_core::secrets::EnvSecrets;
use ledgerbridge_erp::ErpKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Integer rate (no floats in this workspace).
fn per_sec(count: usize, elapsed: Duration) -> u128 {
    (count as u128).saturating_mul(1_000_000) / elapsed.as_micros().max(1)
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("lb-bench-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn queue_bench() {
    let dir = temp_dir("queue");
    let q = SqliteQueue::open(&dir.join("q.sqlite"), DurableQueueSettings::default()).unwrap();
    let body = "x".repeat(2_000);
    let n = 5_000;
    let t = Instant::now();
    let sends = (0..n).map(|_| {
        let (q, b) = (q.clone(), body.clone());
        tokio::spawn(async move { q.send(b, None).await.unwrap() })
    });
    futures::future::join_all(sends).await;
    let concurrent = per_sec(n, t.elapsed());
    let m = 300;
    let t = Instant::now();
    for _ in 0..m {
        q.send(body.clone(), None).await.unwrap();
    }
    let sequential = per_sec(m, t.elapsed());
    let t = Instant::now();
    let mut done = 0;
    while done < n + m {
        for d in q.try_receive(10).unwrap() {
            q.delete(&d).unwrap();
            done += 1;
        }
    }
    let consume = per_sec(done, t.elapsed());
    println!("durable queue, 2,000-byte messages:");
    println!("  send, 64 concurrent senders (group commit) : {concurrent:>9} messages/s");
    println!("  send, one at a time (one sync each)        : {sequential:>9} messages/s");
    println!("  receive + delete                           : {consume:>9} messages/s");
    std::fs::remove_dir_all(&dir).ok();
}

async fn pipeline_bench(n: usize) {
    let dir = temp_dir("pipeline");
    let samples =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/stripe");
    let opts = Options {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: dir.join("data"),
        erp: ErpSource::Sandbox(ErpKind::SagePro),
        mapping_toml: ledgerbridge_pipeline::mapping::EXAMPLE.to_owned(),
        reconciliation_toml: ledgerbridge_recon::service::config::EXAMPLE.to_owned(),
        stripe: StripeSource::Samples(samples),
        webhook_secrets: EnvSecrets::from_pairs([(
            local::WEBHOOK_SECRETS.to_owned(),
            local::DEV_SECRET.to_owned(),
        )]),
        erp_event_secrets: None,
        sweep_secs: 0,
        erp_poll_secs: 0,
        queues: QueueArgs {
            visibility_timeout_secs: 120,
            max_receives: 10,
        },
    };
    let running = local::start_with(opts).await.unwrap();
    let url = running.webhook_url();
    let events: Vec<Vec<u8>> = (0..n)
        .map(|k| {
            serde_json::to_vec(&serde_json::json!({
                "id": format!("evt_bench{k:06}"), "object": "event", "type": "customer.created",
                "created": 1_786_000_000, "livemode": false, "api_version": "2026-07-29.dahlia",
                "data": {"object": {"id": format!("cus_bench{k:06}"), "object": "customer",
                    "name": format!("Bench customer {k}"), "email": format!("b{k}@example.com"),
                    "currency": "usd", "address": {"line1": "1 Main St", "city": "Springfield", "country": "us"},
                    "metadata": {}}}
            }))
            .unwrap()
        })
        .collect();
    let http = reqwest::Client::new();
    let t = Instant::now();
    {
        use futures::StreamExt;
        futures::stream::iter(events.iter())
            .for_each_concurrent(32, |body| {
                let (http, url) = (http.clone(), url.clone());
                async move {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_secs() as i64;
                    let sig =
                        ledgerbridge_core::webhook::sign_header(&[local::DEV_SECRET], now, body);
                    let r = http
                        .post(url)
                        .header("stripe-signature", sig)
                        .body(body.clone())
                        .send()
                        .await
                        .unwrap();
                    assert!(r.status().is_success(), "{}", r.status());
                }
            })
            .await;
    }
    let acked = t.elapsed();
    assert!(
        running.idle(Duration::from_secs(600)).await,
        "did not settle"
    );
    let done = t.elapsed();
    let sandbox = running.sandbox.as_ref().unwrap();
    let created = sandbox
        .audit(Some(ErpKind::SagePro))
        .unwrap()
        .iter()
        .filter(|a| a.action == "create")
        .count();
    assert!(created >= n, "{created} of {n} customers created");
    println!("durable local pipeline, {n} customer.created events, 32 concurrent deliveries:");
    println!(
        "  intake (verify, dedupe, durable queue, 2xx)  : {:>7} events/s ({} ms)",
        per_sec(n, acked),
        acked.as_millis()
    );
    println!(
        "  end to end (intake → transform → ERP sandbox): {:>7} events/s ({} ms)",
        per_sec(n, done),
        done.as_millis()
    );
    std::fs::remove_dir_all(&dir).ok();
}

fn main() {
    let n = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(2_000);
    // The pipeline's progress lines go to the (absent) log, not between the figures.
    local::log_progress_as_json();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        queue_bench().await;
        pipeline_bench(n).await;
    });
}
