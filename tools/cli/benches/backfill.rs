#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark: failing loudly is the point
//! Throughput of `ledgerbridge backfill` against a local Stripe stand-in.
//!
//! The stand-in here serves `GET /v1/customers` over generated customers the way Stripe's list
//! API does: `created[gte]`/`created[lte]`, newest first, `limit` (100) and `starting_after`
//! paging. The Stripe client runs unthrottled (`--rate 0`; against Stripe the rate limit of
//! 100 or 25 requests/s, one request per 100 objects, bounds reads at 10,000 or 2,500
//! objects/s).
//!
//! 1. Dry run: list, convert and print nothing — objects/s read and converted.
//! 2. Real run into the local pipeline (`ledgerbridge local`'s code, Sage Pro sandbox): every
//!    object signed and delivered to the webhook endpoint, one at a time, each acknowledged
//!    only after it is durably queued — objects/s delivered; then the time until every
//!    customer is in the ERP sandbox.
//!
//! `cargo bench -p ledgerbridge-cli --bench backfill` (optional argument: object count,
//! default 2,000).

use axum::extract::{RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use ledgerbridge_cli::backfill::{self, Kind, Plan, Webhook};
use ledgerbridge_cli::local::{self, ErpSource, Options, QueueArgs, StripeSource};
use ledgerbridge_core::secrets::{EnvSecrets, Secret};
use ledgerbridge_erp::ErpKind;
use ledgerbridge_stripe::{StripeClient, StripeClientConfig};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const FIRST_CREATED: i64 = 1_780_000_000;

fn per_sec(count: u64, elapsed: Duration) -> u128 {
    u128::from(count).saturating_mul(1_000_000) / elapsed.as_micros().max(1)
}

/// Customers newest first.
async fn list(State(all): State<Arc<Vec<Value>>>, RawQuery(q): RawQuery) -> Json<Value> {
    let q = q.unwrap_or_default();
    let param = |name: &str| {
        q.split('&')
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.replace("%5B", "[").replace("%5D", "]") == name)
            .map(|(_, v)| v.to_owned())
    };
    let num = |name: &str| param(name).and_then(|v| v.parse::<i64>().ok());
    let (gte, lte) = (
        num("created[gte]").unwrap_or(0),
        num("created[lte]").unwrap_or(i64::MAX),
    );
    let limit = usize::try_from(num("limit").unwrap_or(10)).unwrap();
    let in_range = all
        .iter()
        .filter(|c| (gte..=lte).contains(&c["created"].as_i64().unwrap()));
    let rest: Vec<&Value> = match param("starting_after") {
        Some(after) => in_range
            .skip_while(|c| c["id"] != after.as_str())
            .skip(1)
            .collect(),
        None => in_range.collect(),
    };
    let page: Vec<Value> = rest.iter().take(limit).map(|v| (*v).clone()).collect();
    Json(
        json!({"object": "list", "url": "/v1/customers", "has_more": rest.len() > limit, "data": page}),
    )
}

async fn stand_in(n: usize) -> String {
    let all: Vec<Value> = (0..n)
        .rev()
        .map(|k| {
            json!({"id": format!("cus_bf{k:07}"), "object": "customer",
                "created": FIRST_CREATED + i64::try_from(k).unwrap(),
                "livemode": false, "name": format!("Backfill customer {k}"),
                "email": format!("bf{k}@example.com"), "currency": "usd",
                "address": {"line1": "1 Main St", "city": "Springfield", "country": "us"},
                "metadata": {}})
        })
        .collect();
    let app = Router::new()
        .route("/v1/customers", get(list))
        .with_state(Arc::new(all));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn plan(dry_run: bool) -> Plan {
    Plan {
        range: (FIRST_CREATED, FIRST_CREATED + 10_000_000),
        kinds: vec![Kind::Customers],
        dry_run,
        max_objects: None,
        expand: Vec::new(),
        concurrency: 8,
    }
}

async fn bench(n: usize) {
    let dir = std::env::temp_dir().join(format!("lb-bench-backfill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cfg = StripeClientConfig::new(Secret::new("sk_test_bench".into()))
        .with_base_url(stand_in(n).await);
    cfg.requests_per_second = 0;
    let stripe = StripeClient::new(cfg).unwrap();
    let samples =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/stripe");
    let running = local::start_with(Options {
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
    })
    .await
    .unwrap();
    let webhook = Webhook::new(&running.webhook_url(), &[local::DEV_SECRET.to_owned()]);
    let quiet = backfill::quiet_progress();
    let cursors = dir.join("cursors.json");

    let dry = backfill::backfill(&stripe, &plan(true), &webhook, &cursors, &quiet)
        .await
        .unwrap();
    assert_eq!(dry.total(|k| k.read), n as u64);
    let t = Instant::now();
    let real = backfill::backfill(&stripe, &plan(false), &webhook, &cursors, &quiet)
        .await
        .unwrap();
    let delivered = t.elapsed();
    assert_eq!(real.total(|k| k.queued), n as u64);
    assert!(running.idle(Duration::from_secs(600)).await);
    let booked = t.elapsed();
    println!(
        "backfill of {n} customers from a local Stripe stand-in (pages of 100, no rate limit):"
    );
    println!(
        "  dry run: list + convert               : {:>7} objects/s ({} Stripe requests)",
        per_sec(dry.total(|k| k.read), dry.elapsed),
        dry.stripe_calls
    );
    println!(
        "  delivered to the local pipeline       : {:>7} objects/s (8 in flight, each durably queued before its 2xx)",
        per_sec(n as u64, delivered)
    );
    println!(
        "  until every customer is in the ERP    : {:>7} objects/s ({:.1?})",
        per_sec(n as u64, booked),
        booked
    );
    running.shutdown(Duration::from_secs(10)).await;
    std::fs::remove_dir_all(&dir).ok();
}

fn main() {
    let n = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(2_000);
    local::log_progress_as_json();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(bench(n));
}
