#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark: failing loudly is the point
//! Payout reconciliation at scale: a local fake Stripe API serves a payout of 100,000
//! balance transactions page by page (generated deterministically, never held in memory as a
//! whole); the real client and the streaming aggregation reconcile it.
//!
//! Prints peak RSS (`VmHWM`), CPU per balance transaction for parse + aggregation measured on
//! this thread without the network (`/proc/thread-self/schedstat`), and the wall time of the
//! full run over HTTP. Targets: peak RSS ≤ 64 MB, ≤ 2 µs CPU per transaction.
//!
//! `cargo bench -p ledgerbridge-recon --bench payout` (optional argument: transaction count).

use axum::extract::Query;
use axum::routing::get;
use axum::Router;
use ledgerbridge_core::currency::Currency;
use ledgerbridge_core::ids::PayoutId;
use ledgerbridge_core::money::Rounding;
use ledgerbridge_core::secrets::Secret;
use ledgerbridge_recon::{
    reconcile, DetailLevel, FailedPayoutPolicy, JournalKind, NoBookedRates, NoSyncCheck,
    PayoutAggregator, ReconMapping,
};
use ledgerbridge_stripe::{StripeBalanceTransaction, StripeClient, StripeClientConfig, StripeList};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::Instant;

static COUNT: OnceLock<usize> = OnceLock::new();
const PAYOUT: &str = "po_bench";

/// Transaction `i` (0 = the payout's own entry), in Stripe's pretty-printed shape.
fn write_bt(out: &mut String, i: usize, n: usize) {
    let created = 1_786_000_000 + i;
    let (amount, fee, category, kind, fee_json) = if i == 0 {
        (-payout_amount(n), 0, "payout", "payout", String::new())
    } else {
        let (a, f, c, k) = component(i);
        let fj = if f == 0 {
            String::new()
        } else {
            format!(
                "\n    {{\n      \"amount\": {f},\n      \"application\": null,\n      \"currency\": \"usd\",\n      \"description\": \"Stripe processing fees\",\n      \"type\": \"stripe_fee\"\n    }}\n  "
            )
        };
        (a, f, c, k, fj)
    };
    write!(
        out,
        "{{\n  \"id\": \"txn_{i:010}\",\n  \"object\": \"balance_transaction\",\n  \"amount\": {amount},\n  \"available_on\": {created},\n  \"balance_type\": \"payments\",\n  \"created\": {created},\n  \"currency\": \"usd\",\n  \"description\": \"Order SO-{i}\",\n  \"exchange_rate\": null,\n  \"fee\": {fee},\n  \"fee_details\": [{fee_json}],\n  \"net\": {net},\n  \"reporting_category\": \"{category}\",\n  \"source\": \"ch_{i:024}\",\n  \"status\": \"available\",\n  \"type\": \"{kind}\"\n}}",
        net = amount - fee
    )
    .expect("write to a String");
}

fn component(i: usize) -> (i64, i64, &'static str, &'static str) {
    let base = (i % 9_973) as i64 * 7 + 500;
    match i % 50 {
        0 => (-base, 0, "refund", "refund"),
        1 => (-2_000, 1_500, "dispute", "adjustment"),
        2 => (-34, 0, "fee", "stripe_fee"),
        3 => (250, 0, "other_adjustment", "adjustment"),
        4 => (111, 0, "brand_new_category", "brand_new_type"),
        _ => (base, base * 29 / 1000 + 30, "charge", "charge"),
    }
}

fn payout_amount(n: usize) -> i64 {
    (1..=n)
        .map(|i| {
            let (a, f, _, _) = component(i);
            a - f
        })
        .sum()
}

/// Page JSON for the entries after `start` (exclusive cursor index), `limit` of them.
fn page(start: usize, limit: usize, n: usize) -> String {
    let end = (start + limit).min(n + 1);
    let mut s = String::with_capacity((end - start) * 600 + 100);
    s.push_str("{\n  \"object\": \"list\",\n  \"data\": [\n");
    for i in start..end {
        if i > start {
            s.push_str(",\n");
        }
        write_bt(&mut s, i, n);
    }
    write!(
        s,
        "\n  ],\n  \"has_more\": {},\n  \"url\": \"/v1/balance_transactions\"\n}}",
        end < n + 1
    )
    .expect("write to a String");
    s
}

async fn list(
    Query(q): Query<HashMap<String, String>>,
) -> ([(&'static str, &'static str); 1], String) {
    let n = *COUNT.get().unwrap_or(&100_000);
    let limit = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(10usize)
        .clamp(1, 100);
    let start = q
        .get("starting_after")
        .and_then(|c| c.trim_start_matches("txn_").parse::<usize>().ok())
        .map_or(0, |i| i + 1);
    (
        [("content-type", "application/json")],
        page(start, limit, n),
    )
}

async fn payout() -> ([(&'static str, &'static str); 1], String) {
    let n = *COUNT.get().unwrap_or(&100_000);
    let body = format!(
        "{{\"id\":\"{PAYOUT}\",\"object\":\"payout\",\"amount\":{},\"currency\":\"usd\",\"automatic\":true,\"arrival_date\":1786500000,\"status\":\"paid\",\"reconciliation_status\":\"completed\",\"metadata\":{{}}}}",
        payout_amount(n)
    );
    ([("content-type", "application/json")], body)
}

fn mapping() -> ReconMapping {
    let cats = [
        ("charge", "1150"),
        ("refund", "4900"),
        ("dispute", "4950"),
        ("dispute_reversal", "4950"),
        ("fee", "6100"),
        ("other_adjustment", "7900"),
    ];
    ReconMapping {
        bank_account: "1010".into(),
        category_accounts: cats
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        fee_accounts: BTreeMap::from([("stripe_fee".into(), "6100".into())]),
        default_fee_account: "6100".into(),
        suspense_account: "1999".into(),
        variance_account: "6990".into(),
        fx_account: "7800".into(),
        failed_payout_account: "1160".into(),
        rounding: Rounding::HalfEven,
        detail: DetailLevel::Summary,
        failed_payout: FailedPayoutPolicy::Reverse,
        manual_payout: Default::default(),
    }
}

fn vm_hwm_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time of the calling thread in nanoseconds.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    COUNT.set(n).expect("set once");
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            std::process::exit(1);
        }
    };
    let m = mapping();

    // 1. the full run over HTTP: fake API + real client + streaming aggregation
    let (wall, calls, journal_lines, report_entries) = rt.block_on(async {
        let app = Router::new()
            .route("/v1/balance_transactions", get(list))
            .route("/v1/payouts/{id}", get(payout));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        let mut cfg = StripeClientConfig::new(Secret::new("sk_test_bench".into()))
            .with_base_url(format!("http://{addr}"));
        // a local fake has no rate limit; the client-side limiter would only add sleeps
        cfg.requests_per_second = 0;
        let client = StripeClient::new(cfg).expect("client");
        let p = client
            .retrieve_payout(&PayoutId::new(PAYOUT))
            .await
            .expect("payout");
        let started = Instant::now();
        let out = reconcile(&client, &p, &m, &NoBookedRates, &NoSyncCheck)
            .await
            .expect("reconcile");
        let wall = started.elapsed();
        let j = out.journal.expect("journal");
        assert_eq!(j.transaction_count as usize, n);
        assert_eq!(
            j.total_debits().expect("sum"),
            j.total_credits().expect("sum")
        );
        (
            wall,
            out.stripe_calls,
            j.lines().len(),
            out.report.entries.len(),
        )
    });

    // 2. parse + aggregate of the same pages on this thread, without the network
    let mut agg = PayoutAggregator::new(&m, &NoBookedRates, PayoutId::new(PAYOUT), Currency::USD);
    let mut cpu_ns: u64 = 0;
    let mut wall_ns: u128 = 0;
    let mut start = 0;
    while start <= n {
        let body = page(start, 100, n);
        let (c0, w0) = (thread_cpu_ns(), Instant::now());
        let parsed: StripeList<StripeBalanceTransaction> =
            serde_json::from_str(&body).expect("page parses");
        for bt in &parsed.data {
            agg.push(bt).expect("push");
        }
        let (c1, w1) = (thread_cpu_ns(), w0.elapsed());
        cpu_ns += c1.zip(c0).map_or(0, |(a, b)| a.saturating_sub(b));
        wall_ns += w1.as_nanos();
        start += 100;
    }
    let (j, _) = agg
        .finish(
            ledgerbridge_core::money::Money::new(payout_amount(n), Currency::USD),
            0,
            JournalKind::Payout,
        )
        .expect("finish");
    assert_eq!(j.transaction_count as usize, n);

    // integer arithmetic only: nanoseconds per transaction with three decimals
    let per = |total_ns: u128| {
        let milli_ns = total_ns * 1000 / n.max(1) as u128;
        format!("{}.{:03} ns", milli_ns / 1000, milli_ns % 1000)
    };
    let hwm = vm_hwm_kb().map_or("unknown".to_owned(), |kb| {
        format!("{}.{} MB", kb / 1024, kb % 1024 * 10 / 1024)
    });
    println!("payout reconciliation bench: {n} balance transactions");
    println!(
        "  HTTP run: {calls} Stripe calls, wall {} ms, {journal_lines} journal lines, {report_entries} report entries",
        wall.as_millis()
    );
    println!(
        "  parse + aggregate CPU per transaction: {} (thread CPU; wall {})  target ≤ 2000 ns",
        per(u128::from(cpu_ns)),
        per(wall_ns)
    );
    println!("  peak RSS (VmHWM): {hwm}  target ≤ 64 MB");
}
