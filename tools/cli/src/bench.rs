//! `ledgerbridge bench`: throughput and latency of the local pipeline on the order-to-cash mix.
//!
//! It generates N distinct signed events — per order a `customer.created`, the payment's
//! `payment_intent.succeeded` and `charge.succeeded`, and for every fourth order a refund
//! (`refund.created` and `charge.refunded`) — from the sample events in
//! `tests/fixtures/stripe/events`, with every id made unique. A Stripe stand-in on a loopback
//! port serves the generated objects (so the pipeline's reads and write-backs are real HTTP
//! calls, counted, without a rate limit) and the pipeline posts into the ERP sandbox in this
//! process. It prints events/s (intake and end to end), documents/s, Stripe calls per event,
//! ERP requests per document, delivery → ERP document latency (p50/p99) and peak RSS.
//!
//! The figures are measurements, not assertions: that every document is posted exactly once is
//! asserted by the pipeline tests. The bench prints how many documents it expected and found.

use crate::local::{self, ErpSource, Options, QueueArgs, StripeSource};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use ledgerbridge_core::secrets::{EnvSecrets, Secret};
use ledgerbridge_erp::ErpKind;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Events to deliver (whole orders of the mix, so the count run may be a few more).
    #[arg(long, default_value_t = 10_000)]
    pub events: usize,
    /// Deliveries in flight at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Offer the events at this many per second (open loop) instead of as fast as the
    /// endpoint answers.
    #[arg(long)]
    pub rate: Option<u32>,
    /// Which ERP the sandbox plays.
    #[arg(long, value_parser = local::erp_kind_parser(), default_value_t = ErpKind::Epicor)]
    pub erp: ErpKind,
    /// Give up waiting for the pipeline to settle after this many seconds.
    #[arg(long, default_value_t = 900)]
    pub timeout_secs: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Local(#[from] local::LocalError),
    #[error("Stripe stand-in: {0}")]
    Serve(std::io::Error),
    #[error("sample event {0} is not JSON: {1}")]
    Template(&'static str, serde_json::Error),
    #[error("delivery failed: {0}")]
    Delivery(String),
    #[error("the pipeline did not settle within {0} s")]
    NotIdle(u64),
    #[error("ERP sandbox: {0}")]
    Sandbox(String),
}

// ---- the order-to-cash mix ----------------------------------------------------------------

const CUSTOMER: &str = include_str!("../../../tests/fixtures/stripe/events/customer.created.json");
const INTENT: &str =
    include_str!("../../../tests/fixtures/stripe/events/payment_intent.succeeded.json");
const CHARGE: &str = include_str!("../../../tests/fixtures/stripe/events/charge.succeeded.json");
const REFUND: &str = include_str!("../../../tests/fixtures/stripe/events/refund.created.json");
const REFUNDED: &str =
    include_str!("../../../tests/fixtures/stripe/events/charge.refunded.full.json");

/// The ids of the sample events and the stem of the generated id each becomes. Every sample
/// customer, payment intent, charge and refund of an order becomes that order's one customer,
/// payment intent, charge and refund (so the refund refunds the order's charge); a generated id
/// keeps the sample id's length (ERP reference fields are sized for real ids), its last ten
/// characters being the order number.
const IDS: &[(&str, &str, Role)] = &[
    ("cus_NHQM1cjewvnnbv", CUS, Role::Order),
    ("cus_v2hTtpvHRTXjHs", CUS, Role::Order),
    ("pi_3JitFDNq7LbKx2RzWVv0OUYJ", PI, Role::Order),
    ("pi_3p9S8HNq7LbKx2Rzsq8BMGwq", PI, Role::Order),
    ("pi_3EBKTgNq7LbKx2RzDxxtp3x0", PI, Role::Order),
    ("ch_3j9VrENq7LbKx2RzhpXmNvkB", CH, Role::Order),
    ("ch_3gsksVNq7LbKx2Rz34NNmfST", CH, Role::Order),
    ("ch_3hs3meNq7LbKx2RznLMjFbzF", CH, Role::Order),
    ("re_30DCl0Nq7LbKx2Rzr5ZHG8yn", RE, Role::Order),
    (
        "txn_3Hk1ihNq7LbKx2RzGKCpXDgf",
        "txn_3Hk1ihNq7LbKx2Rz",
        Role::Event,
    ),
    (
        "txn_3am1eDNq7LbKx2RzyiHSOk90",
        "txn_3am1eDNq7LbKx2Rz",
        Role::Event,
    ),
    (
        "txn_3mtXxxNq7LbKx2Rz5zNevf1z",
        "txn_3mtXxxNq7LbKx2Rz",
        Role::Event,
    ),
    (
        "evt_19suxhNq7LbKx2RzMSGBf73V",
        "evt_19suxhNq7LbKx2Rz",
        Role::Event,
    ),
    (
        "evt_3uOEAqNq7LbKx2RzTinBcUdZ",
        "evt_3uOEAqNq7LbKx2Rz",
        Role::Event,
    ),
    (
        "evt_3Nj9p5Nq7LbKx2Rze1Iue0DE",
        "evt_3Nj9p5Nq7LbKx2Rz",
        Role::Event,
    ),
    (
        "evt_3frtZsNq7LbKx2RzWgLSGFd5",
        "evt_3frtZsNq7LbKx2Rz",
        Role::Event,
    ),
    (
        "evt_3Fk1c4Nq7LbKx2RzVObk6cYT",
        "evt_3Fk1c4Nq7LbKx2Rz",
        Role::Event,
    ),
];
const CUS: &str = "cus_NHQM";
const PI: &str = "pi_3JitFDNq7LbKx2Rz";
const CH: &str = "ch_3j9VrENq7LbKx2Rz";
const RE: &str = "re_30DCl0Nq7LbKx2Rz";

#[derive(Clone, Copy)]
enum Role {
    /// One per order (the customer, the payment, its charge, its refund).
    Order,
    /// One per event (event ids, balance transactions).
    Event,
}

/// The marker in a generated customer's name and e-mail address.
const MARK: &str = "lbk";

/// One generated event: its order, whether it is the customer's, and the signed body.
struct Delivery {
    order: usize,
    customer: bool,
    body: Vec<u8>,
}

fn generated_id(stem: &str, role: Role, order: usize, variant: usize) -> String {
    match role {
        Role::Order => format!("{stem}{order:010}"),
        // nine digits of order and one of the event's place in it
        Role::Event => format!("{stem}{order:09}{variant}"),
    }
}

fn instantiate(template: &str, order: usize, variant: usize) -> String {
    let mut text = template.to_owned();
    for (sample, stem, role) in IDS {
        if text.contains(sample) {
            text = text.replace(sample, &generated_id(stem, *role, order, variant));
        }
    }
    text.replace(
        "ap@northwind-traders.example",
        &format!("ap.{MARK}{order:010}@example.com"),
    )
    .replace("Northwind Traders LLC", &format!("Bench {MARK}{order:010}"))
}

/// The events of `orders` orders in delivery order: each customer is delivered `lead` orders
/// ahead of its payment (customers exist before they pay), then the payment's events, then any
/// refund's. Returns the deliveries and the documents they should produce.
fn the_mix(orders: usize, lead: usize) -> (Vec<Delivery>, usize) {
    let mut out = Vec::new();
    let mut documents = 0;
    for step in 0..orders + lead {
        if step < orders {
            out.push(Delivery {
                order: step,
                customer: true,
                body: instantiate(CUSTOMER, step, 0).into_bytes(),
            });
            documents += 1; // the ERP customer
        }
        let Some(k) = step.checked_sub(lead) else {
            continue;
        };
        for (variant, t) in [(1, INTENT), (2, CHARGE)] {
            out.push(Delivery {
                order: k,
                customer: false,
                body: instantiate(t, k, variant).into_bytes(),
            });
        }
        documents += 2; // sales order and cash receipt (the example mapping's payment mode)
        if k % 4 == 3 {
            let refund = instantiate(REFUND, k, 3);
            let refunded = refunded_charge(&instantiate(CHARGE, k, 2), &refund, k);
            for body in [refund, refunded] {
                out.push(Delivery {
                    order: k,
                    customer: false,
                    body: body.into_bytes(),
                });
            }
            documents += 1; // the credit memo
        }
    }
    (out, documents)
}

/// The order's `charge.refunded`, agreeing with its `charge.succeeded` and `refund.created` as
/// Stripe's would: the sample event's envelope (id, type, previous attributes) around the
/// order's charge as it is after the refund (its amounts, `amount_refunded` = the refund's
/// amount, `refunded` only when that is all of it). The samples come from different payments
/// (a 159.00 charge, a 25.00 refund of it, a 42.00 charge refunded in full); taken as they
/// are, an order's charge would count 42.00 refunded while its refund list shows 25.00.
fn refunded_charge(charge_event: &str, refund_event: &str, order: usize) -> String {
    let template = instantiate(REFUNDED, order, 4);
    let (Ok(mut event), Ok(charge), Ok(refund)) = (
        serde_json::from_str::<Value>(&template),
        serde_json::from_str::<Value>(charge_event),
        serde_json::from_str::<Value>(refund_event),
    ) else {
        // The samples are JSON (`the_mix_is_distinct_valid_and_traceable` checks it).
        return template;
    };
    let mut object = charge["data"]["object"].clone();
    let amount = object["amount"].as_i64().unwrap_or(0);
    let refunded = refund["data"]["object"]["amount"].as_i64().unwrap_or(0);
    object["amount_refunded"] = json!(refunded);
    object["refunded"] = json!(refunded >= amount);
    event["data"]["object"] = object;
    event["data"]["previous_attributes"] = json!({ "amount_refunded": 0, "refunded": false });
    event.to_string()
}

// ---- the Stripe stand-in ------------------------------------------------------------------

/// Serves the generated objects by id and the refunds of a charge, accepts metadata
/// write-backs, and counts every request.
#[derive(Default)]
struct StandIn {
    objects: HashMap<String, Value>,
    refunds_of_charge: HashMap<String, Vec<Value>>,
    calls: AtomicU64,
}

fn collection(object_type: &str) -> String {
    match object_type {
        "payment_intent" => "payment_intents".into(),
        other => format!("{other}s"),
    }
}

impl StandIn {
    fn load(mix: &[Delivery]) -> Result<Self, BenchError> {
        let mut s = StandIn::default();
        for d in mix {
            let event: Value = serde_json::from_slice(&d.body)
                .map_err(|e| BenchError::Template("generated event", e))?;
            let object = &event["data"]["object"];
            let (Some(id), Some(kind)) = (object["id"].as_str(), object["object"].as_str()) else {
                continue;
            };
            if kind == "refund" {
                if let Some(charge) = object["charge"].as_str() {
                    s.refunds_of_charge
                        .entry(charge.to_owned())
                        .or_default()
                        .push(object.clone());
                }
            }
            s.objects
                .insert(format!("{}/{id}", collection(kind)), object.clone());
        }
        Ok(s)
    }

    async fn serve(self: Arc<Self>) -> Result<String, BenchError> {
        let app = Router::new()
            .route("/v1/{collection}", get(list))
            .route("/v1/{collection}/{id}", get(retrieve).post(write_back))
            .with_state(self);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(BenchError::Serve)?;
        let addr = listener.local_addr().map_err(BenchError::Serve)?;
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "Stripe stand-in stopped");
            }
        });
        Ok(format!("http://{addr}"))
    }
}

async fn retrieve(
    State(s): State<Arc<StandIn>>,
    Path((c, id)): Path<(String, String)>,
) -> (StatusCode, Json<Value>) {
    s.calls.fetch_add(1, Ordering::Relaxed);
    match s.objects.get(&format!("{c}/{id}")) {
        Some(v) => (StatusCode::OK, Json(v.clone())),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"type": "invalid_request_error", "code": "resource_missing"}})),
        ),
    }
}

async fn list(
    State(s): State<Arc<StandIn>>,
    Path(c): Path<String>,
    RawQuery(q): RawQuery,
) -> Json<Value> {
    s.calls.fetch_add(1, Ordering::Relaxed);
    let q = q.unwrap_or_default();
    let charge = q.split('&').find_map(|p| p.strip_prefix("charge="));
    let data = match (c.as_str(), charge) {
        ("refunds", Some(ch)) => s.refunds_of_charge.get(ch).cloned().unwrap_or_default(),
        // no generated payment pays an invoice
        _ => Vec::new(),
    };
    Json(json!({"object": "list", "url": format!("/v1/{c}"), "has_more": false, "data": data}))
}

async fn write_back(
    State(s): State<Arc<StandIn>>,
    Path((_, id)): Path<(String, String)>,
) -> Json<Value> {
    s.calls.fetch_add(1, Ordering::Relaxed);
    Json(json!({ "id": id }))
}

// ---- the run ------------------------------------------------------------------------------

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Integer rate (no floats in this workspace).
fn per_sec(count: usize, elapsed_ms: i64) -> i64 {
    (count as i64).saturating_mul(1000) / elapsed_ms.max(1)
}

/// `count / per` with two decimals, in integers.
fn ratio(count: u64, per: usize) -> String {
    let hundredths = count.saturating_mul(100) / (per.max(1) as u64);
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

/// The process's peak resident set (Linux `VmHWM`), in MB.
fn peak_rss_mb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024)
}

/// The order number in a document generated from order `k` (the ten digits after one of the
/// generated ids' stems or the customer marker), and whether it is the customer's document.
fn order_of(text: &str) -> Option<(usize, bool)> {
    for (stem, customer) in [(PI, false), (CH, false), (RE, false), (MARK, true)] {
        let mut from = 0;
        while let Some(at) = text[from..].find(stem) {
            let start = from + at + stem.len();
            let digits = text.get(start..start + 10);
            if let Some(n) = digits
                .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|d| d.parse().ok())
            {
                return Some((n, customer));
            }
            from = start;
        }
    }
    None
}

fn percentile(sorted: &[i64], pct: usize) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (sorted.len() * pct).div_ceil(100).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// What one run measured.
pub struct Figures {
    pub events: usize,
    pub orders: usize,
    pub acked_ms: i64,
    pub end_to_end_ms: i64,
    pub created: usize,
    pub expected_docs: usize,
    /// Documents created more than once for one (entity, reference): must be empty.
    pub doubled: Vec<String>,
    pub stripe_calls: u64,
    pub erp_requests: u64,
    /// Delivery → ERP document, ms, sorted.
    pub latencies: Vec<i64>,
    /// Messages parked (the mix's events agree with each other, so none should be).
    pub parked: usize,
}

pub async fn run(args: BenchArgs) -> Result<(), BenchError> {
    // progress lines would interleave with the figures
    local::log_progress_as_json();
    println!(
        "ledgerbridge bench: {} events of the order-to-cash mix (customer, payment intent + charge, a refund in every fourth order), ERP sandbox {}, {}",
        args.events,
        args.erp.as_str(),
        match args.rate {
            Some(r) => format!("offered at {r} events/s"),
            None => format!("{} deliveries in flight", args.concurrency),
        }
    );
    let f = measure(&args).await?;
    let events = f.events;
    println!("  {events} events delivered, {} orders", f.orders);
    println!(
        "  intake (verify, dedupe, durable queue, 2xx) : {:>7} events/s ({} ms)",
        per_sec(events, f.acked_ms),
        f.acked_ms
    );
    println!(
        "  end to end (delivery → last ERP document)   : {:>7} events/s ({} ms)",
        per_sec(events, f.end_to_end_ms),
        f.end_to_end_ms
    );
    println!(
        "  ERP documents                               : {:>7} documents/s ({} created, {} expected)",
        per_sec(f.created, f.end_to_end_ms),
        f.created,
        f.expected_docs
    );
    println!(
        "  Stripe calls per event                      : {:>7} ({} calls)",
        ratio(f.stripe_calls, events),
        f.stripe_calls
    );
    println!(
        "  ERP requests per document                   : {:>7} ({} requests)",
        ratio(f.erp_requests, f.created),
        f.erp_requests
    );
    println!(
        "  delivery → ERP document latency             : p50 {} ms, p99 {} ms, max {} ms ({} documents traced)",
        percentile(&f.latencies, 50),
        percentile(&f.latencies, 99),
        f.latencies.last().copied().unwrap_or(0),
        f.latencies.len()
    );
    match peak_rss_mb() {
        Some(mb) => println!("  peak RSS (whole process)                    : {mb:>7} MB"),
        None => {
            println!("  peak RSS                                    : not available on this system")
        }
    }
    println!(
        "  messages parked                             : {:>7}",
        f.parked
    );
    if f.created != f.expected_docs || !f.doubled.is_empty() {
        println!(
            "  note: {} documents created, {} expected, doubled: {:?}",
            f.created, f.expected_docs, f.doubled
        );
    }
    Ok(())
}

/// Run the mix through a fresh local pipeline (its files in a temporary directory, removed
/// afterwards unless something is missing) and measure it.
pub async fn measure(args: &BenchArgs) -> Result<Figures, BenchError> {
    let orders = (args.events.saturating_mul(4)).div_ceil(14).max(1); // 3.5 events per order
    let (mix, expected_docs) = the_mix(orders, 200.min(orders));
    let stand_in = Arc::new(StandIn::load(&mix)?);
    let stripe_base = stand_in.clone().serve().await?;
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ledgerbridge-bench-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    ));
    let opts = Options {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: dir.clone(),
        erp: ErpSource::Sandbox(args.erp),
        mapping_toml: ledgerbridge_pipeline::mapping::EXAMPLE.to_owned(),
        reconciliation_toml: ledgerbridge_recon::service::config::EXAMPLE.to_owned(),
        stripe: StripeSource::Api {
            key: Secret::new("sk_test_bench_stand_in".to_owned()),
            base_url: Some(stripe_base),
        },
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
    let running = local::start_with(opts).await?;
    let url = running.webhook_url();
    let events = mix.len();

    // order → when its customer event and its first payment event were sent (ms)
    let sent: Arc<Vec<[AtomicU64; 2]>> = Arc::new(
        (0..orders)
            .map(|_| [AtomicU64::new(0), AtomicU64::new(0)])
            .collect(),
    );
    let http = reqwest::Client::new();
    let start_ms = now_ms();
    let started = Instant::now();
    let deliver = |i: usize| {
        let (http, url, sent) = (http.clone(), url.clone(), sent.clone());
        let d = &mix[i];
        async move {
            let now = now_ms();
            let slot = &sent[d.order][usize::from(!d.customer)];
            // the first event of the group starts its clock
            if slot.load(Ordering::Relaxed) == 0 {
                slot.store(now as u64, Ordering::Relaxed);
            }
            let sig = ledgerbridge_core::webhook::sign_header(
                &[local::DEV_SECRET],
                now.div_euclid(1000),
                &d.body,
            );
            let r = http
                .post(url)
                .header("stripe-signature", sig)
                .body(d.body.clone())
                .send()
                .await
                .map_err(|e| BenchError::Delivery(e.to_string()))?;
            if r.status().is_success() {
                Ok(())
            } else {
                Err(BenchError::Delivery(format!("answered {}", r.status())))
            }
        }
    };
    {
        use futures::StreamExt;
        let results: Vec<Result<(), BenchError>> = match args.rate {
            None => {
                futures::stream::iter(0..events)
                    .map(deliver)
                    .buffer_unordered(args.concurrency.max(1))
                    .collect()
                    .await
            }
            Some(rate) => {
                let interval = Duration::from_secs(1) / rate.max(1);
                let t0 = tokio::time::Instant::now();
                futures::stream::iter(0..events)
                    .map(|i| {
                        let at = t0 + interval * u32::try_from(i).unwrap_or(u32::MAX);
                        let run = deliver(i);
                        async move {
                            tokio::time::sleep_until(at).await;
                            run.await
                        }
                    })
                    // open loop: enough in flight that a slow answer does not hold back the
                    // next offer
                    .buffer_unordered(4096)
                    .collect()
                    .await
            }
        };
        if let Some(e) = results.into_iter().find_map(Result::err) {
            return Err(e);
        }
    }
    let acked = started.elapsed();
    if !running.idle(Duration::from_secs(args.timeout_secs)).await {
        return Err(BenchError::NotIdle(args.timeout_secs));
    }
    let sandbox = running
        .sandbox
        .as_ref()
        .ok_or_else(|| BenchError::Sandbox("no sandbox".into()))?;
    let audit = sandbox
        .audit(Some(args.erp))
        .map_err(|e| BenchError::Sandbox(e.to_string()))?;
    let created: Vec<_> = audit.iter().filter(|a| a.action == "create").collect();
    let last_ms = created.iter().map(|a| a.at_ms).max().unwrap_or(start_ms);
    let mut latencies: Vec<i64> = created
        .iter()
        .filter_map(|a| {
            let (k, customer) = order_of(&a.body.to_string())?;
            let t0 = sent.get(k)?[usize::from(!customer)].load(Ordering::Relaxed) as i64;
            (t0 > 0).then(|| a.at_ms - t0)
        })
        .collect();
    latencies.sort_unstable();
    let mut seen = std::collections::HashSet::new();
    let doubled: Vec<String> = created
        .iter()
        .filter(|a| !seen.insert((a.entity.clone(), reference_of(&a.body))))
        .map(|a| format!("{} {}", a.entity, reference_of(&a.body)))
        .collect();
    let figures = Figures {
        events,
        orders,
        acked_ms: acked.as_millis() as i64,
        end_to_end_ms: last_ms - start_ms,
        created: created.len(),
        expected_docs,
        doubled,
        stripe_calls: stand_in.calls.load(Ordering::Relaxed),
        erp_requests: sandbox.requests(Some(args.erp)).len() as u64,
        latencies,
        parked: running
            .parked_count()
            .map_err(|e| BenchError::Sandbox(format!("parked queue: {e}")))?,
    };
    if figures.created == expected_docs && figures.doubled.is_empty() && figures.parked == 0 {
        running.shutdown(Duration::from_secs(10)).await;
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            tracing::debug!(error = %e, "Bench data not removed");
        }
    } else {
        println!("  the run's files are kept in {}", dir.display());
    }
    Ok(figures)
}

/// A document's identity for the doubling check: its whole body without the ERP's own
/// numbering is too loose, so the generated order number and the document's kind of source
/// (customer, or the Stripe object it names) stand for it.
fn reference_of(body: &Value) -> String {
    let text = body.to_string();
    for stem in [RE, PI, CH, MARK] {
        if let Some(at) = text.find(stem) {
            return text[at..(at + stem.len() + 10).min(text.len())].to_owned();
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_is_distinct_valid_and_traceable() {
        // GIVEN 40 orders with a lead of 5
        let (mix, docs) = the_mix(40, 5);
        // THEN 3 events per order plus 2 for every fourth, each with its own id
        assert_eq!(mix.len(), 40 * 3 + 10 * 2);
        assert_eq!(docs, 40 * 3 + 10);
        let mut ids = std::collections::HashSet::new();
        for d in &mix {
            let v: Value = serde_json::from_slice(&d.body).unwrap();
            assert!(
                ids.insert(v["id"].as_str().unwrap().to_owned()),
                "{}",
                v["id"]
            );
            let text = std::str::from_utf8(&d.body).unwrap();
            // no sample id is left
            for (sample, _, _) in IDS {
                assert!(!text.contains(sample), "{sample} left in {}", v["type"]);
            }
            // and the event names its order
            let (k, customer) = order_of(&v["data"]["object"].to_string()).unwrap();
            assert_eq!((k, customer), (d.order, d.customer), "{}", v["type"]);
        }
        // a customer is delivered before its payment
        let first = |order: usize, customer: bool| {
            mix.iter()
                .position(|d| d.order == order && d.customer == customer)
                .unwrap()
        };
        assert!(first(7, true) < first(7, false));
        // the stand-in finds the refund of an order's charge
        let s = StandIn::load(&mix).unwrap();
        let charge = generated_id(CH, Role::Order, 3, 0);
        assert_eq!(s.refunds_of_charge.get(&charge).map(Vec::len), Some(1));
        assert!(s.objects.contains_key(&format!("charges/{charge}")));
        assert!(s.objects.contains_key(&format!(
            "customers/{}",
            generated_id(CUS, Role::Order, 3, 0)
        )));
        assert!(!s
            .refunds_of_charge
            .contains_key(&generated_id(CH, Role::Order, 2, 0)));
    }

    #[test]
    fn the_events_of_a_refunded_order_agree_with_each_other() {
        // GIVEN a refunded order of the mix (every fourth)
        let (mix, _) = the_mix(8, 0);
        let of = |kind: &str| -> Value {
            mix.iter()
                .filter(|d| d.order == 3)
                .map(|d| serde_json::from_slice::<Value>(&d.body).unwrap())
                .find(|v| v["type"] == kind)
                .unwrap()
        };
        let (charge, refund, refunded) = (
            of("charge.succeeded"),
            of("refund.created"),
            of("charge.refunded"),
        );
        let (charge, refund, after) = (
            &charge["data"]["object"],
            &refund["data"]["object"],
            &refunded["data"]["object"],
        );
        // THEN charge.refunded shows the order's charge with the refund's amount refunded
        assert_eq!(after["id"], charge["id"]);
        assert_eq!(refund["charge"], charge["id"]);
        assert_eq!(after["payment_intent"], charge["payment_intent"]);
        assert_eq!(after["amount"], charge["amount"]);
        assert_eq!(after["currency"], refund["currency"]);
        assert_eq!(after["amount_refunded"], refund["amount"]);
        assert_eq!(after["refunded"], json!(false), "a partial refund");
        assert_eq!(
            refunded["data"]["previous_attributes"]["amount_refunded"],
            json!(0)
        );
        // AND it is a new event of its own
        assert_ne!(refunded["id"], of("charge.succeeded")["id"]);
        assert_eq!(refunded["type"], "charge.refunded");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn under_concurrent_delivery_every_document_is_posted_once_within_the_call_budget() {
        // GIVEN the mix of 58 orders delivered 32 at a time into the Sage Pro sandbox
        let args = BenchArgs {
            events: 200,
            concurrency: 32,
            rate: None,
            erp: ErpKind::SagePro,
            timeout_secs: 120,
        };
        // WHEN it has settled
        let f = measure(&args).await.unwrap();
        // THEN every expected document is there once
        assert_eq!(f.orders, 58);
        assert_eq!(f.created, f.expected_docs, "{:?}", f.doubled);
        assert!(f.doubled.is_empty(), "{:?}", f.doubled);
        // AND no message was parked (an order's charge.refunded agrees with its refund)
        assert_eq!(f.parked, 0);
        // AND Stripe was asked once per event: a write-back per customer, order and credit
        // memo, one invoice look-up per payment (not per event), one refund list per refunded
        // charge; at most one customer read per order more, when a payment is posted before its
        // customer's own event
        assert!(f.stripe_calls >= f.events as u64, "{}", f.stripe_calls);
        assert!(
            f.stripe_calls <= (f.events + f.orders) as u64,
            "{} calls for {} events",
            f.stripe_calls,
            f.events
        );
        // every order, receipt and credit memo is traced to its delivery (a customer only when
        // the ERP keeps its name or e-mail address in the document)
        assert!(
            f.latencies.len() >= f.created - f.orders,
            "{} of {} documents traced",
            f.latencies.len(),
            f.created
        );
    }

    #[test]
    fn percentiles_and_ratios() {
        let v: Vec<i64> = (1..=200).collect();
        assert_eq!(percentile(&v, 50), 100);
        assert_eq!(percentile(&v, 99), 198);
        assert_eq!(percentile(&[], 99), 0);
        assert_eq!(ratio(141, 100), "1.41");
        assert_eq!(ratio(1, 3), "0.33");
    }
}
