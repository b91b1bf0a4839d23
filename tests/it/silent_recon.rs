//! Payout reconciliation's guards: a journal whose variance is above the configured threshold
//! is held for review in the report, not posted; a Stripe list whose page cursor does not
//! advance (the same page answered again) stops the run with an error instead of paging
//! forever. The reconciliation service runs on the embedded adapters (SQLite store and report
//! store, in-process commands queue) against local stand-ins of the Stripe API.

use crate::recon::{add_payout, bt, mapping, start_fake, FakeStripe as ReconFake, Shared};
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use ledgerbridge_adapters::embedded::{MemoryQueue, SqliteReportStore, SqliteStore};
use ledgerbridge_core::ids::PayoutId;
use ledgerbridge_core::secrets::Secret;
use ledgerbridge_core::FixedClock;
use ledgerbridge_messages::Source;
use ledgerbridge_recon::report_store::{ReportRecord, ReportStatus, ReportStore};
use ledgerbridge_recon::service::config::{Posting, ReconFile, Sweep};
use ledgerbridge_recon::service::{Deps, PayoutResult};
use ledgerbridge_recon::DiscrepancyKind;
use ledgerbridge_stripe::{StripeApi, StripeClient, StripeClientConfig};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const NOW: i64 = 1_786_100_000;

type Rig<A> = Deps<MemoryQueue, SqliteStore, SqliteReportStore, FixedClock, A>;

fn deps<A: StripeApi>(stripe: A, posting: Posting) -> Rig<A> {
    Deps {
        stripe,
        commands: MemoryQueue::default(),
        store: SqliteStore::in_memory().unwrap(),
        reports: SqliteReportStore::in_memory().unwrap(),
        clock: FixedClock::at_secs(NOW),
        file: ReconFile {
            mapping: mapping(),
            posting,
            sync_check: BTreeMap::new(),
            sweep: Sweep::default(),
        },
        lease_ms: 60_000,
        claim_secs: 400 * 86_400,
        concurrency: 2,
    }
}

fn source() -> Source {
    Source {
        event_id: "evt_silent".into(),
        event_type: "payout.paid".into(),
        created: NOW,
    }
}

/// A payout of 100 charges of 100.00 USD (net of a 3.20 fee each) whose amount differs from
/// their sum by `delta` minor units.
fn payout_with_variance(fake: &Shared, id: &str, delta: i64) -> i64 {
    let entries: Vec<Value> = (0..100)
        .map(|i| {
            bt(
                &format!("txn_{id}_{i}"),
                10_000,
                &[("stripe_fee", 320)],
                "charge",
                "charge",
                "usd",
            )
        })
        .collect();
    add_payout(fake, id, "usd", entries, delta)
}

async fn report(deps: &Rig<impl StripeApi>, payout: &str) -> ReportRecord {
    deps.reports
        .get_report(&ReportRecord::key_for(payout, false))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn a_variance_above_the_absolute_threshold_holds_the_journal_for_review() {
    let fake: Shared = Arc::new(Mutex::new(ReconFake::default()));
    // 9,680.00 net, the payout 5.00 more: above the default 1.00.
    payout_with_variance(&fake, "po_var_abs", 500);
    let stripe = start_fake(fake).await;
    let payout = stripe
        .retrieve_payout(&PayoutId::new("po_var_abs"))
        .await
        .unwrap();
    let d = deps(stripe, Posting::default());
    assert_eq!(
        d.reconcile_payout(&payout, source()).await,
        PayoutResult::NeedsReview
    );
    assert!(
        d.commands.try_receive(10).is_empty(),
        "no journal is queued"
    );
    let r = report(&d, "po_var_abs").await;
    assert_eq!(r.status, ReportStatus::NeedsReview);
    assert_eq!(r.report.count(DiscrepancyKind::VarianceHeld), 1);
    let held = r
        .report
        .entries
        .iter()
        .find(|e| e.kind == DiscrepancyKind::VarianceHeld)
        .unwrap();
    assert!(
        held.detail
            .contains("variance 5.00 USD is above posting.hold_variance_above = 1"),
        "{}",
        held.detail
    );
    assert!(r.csv.contains("variance_held"), "{}", r.csv);
}

#[tokio::test]
async fn a_variance_above_the_relative_threshold_holds_the_journal_and_a_small_one_posts() {
    let fake: Shared = Arc::new(Mutex::new(ReconFake::default()));
    payout_with_variance(&fake, "po_var_small", 3);
    let stripe = start_fake(fake).await;
    let payout = stripe
        .retrieve_payout(&PayoutId::new("po_var_small"))
        .await
        .unwrap();
    // 0.03 on 9,680.03: under 1.00 and under 0.1 % — posted, with its variance line.
    let d = deps(stripe.clone(), Posting::default());
    assert!(matches!(
        d.reconcile_payout(&payout, source()).await,
        PayoutResult::Queued { .. }
    ));
    assert_eq!(d.commands.try_receive(10).len(), 1);
    // The same payout with a relative limit of 0.0001 % (and no absolute one to speak of):
    // 0.03 is above 0.0097, so it is held.
    let strict = Posting {
        hold_variance_above: Decimal::new(1_000_000, 0),
        hold_variance_ratio_above: Decimal::new(1, 6),
        ..Posting::default()
    };
    let d = deps(stripe, strict);
    assert_eq!(
        d.reconcile_payout(&payout, source()).await,
        PayoutResult::NeedsReview
    );
    assert!(d.commands.try_receive(10).is_empty());
    let r = report(&d, "po_var_small").await;
    let held = r
        .report
        .entries
        .iter()
        .find(|e| e.kind == DiscrepancyKind::VarianceHeld)
        .unwrap();
    assert!(
        held.detail.contains("hold_variance_ratio_above"),
        "{}",
        held.detail
    );
}

/// A Stripe stand-in that ignores `starting_after`: every list call answers the same first
/// page with `has_more: true` (the flaw the local stand-in had).
#[derive(Clone)]
struct Stuck {
    payouts: Vec<Value>,
    transactions: Vec<Value>,
    list_calls: Arc<Mutex<u32>>,
}

async fn stuck_payouts(State(s): State<Stuck>) -> Json<Value> {
    *s.list_calls.lock().unwrap() += 1;
    Json(json!({"object": "list", "url": "/v1/payouts", "has_more": true, "data": s.payouts}))
}

async fn stuck_transactions(State(s): State<Stuck>) -> Json<Value> {
    *s.list_calls.lock().unwrap() += 1;
    Json(
        json!({"object": "list", "url": "/v1/balance_transactions", "has_more": true,
        "data": s.transactions}),
    )
}

async fn stuck_payout(State(s): State<Stuck>, Path(id): Path<String>) -> Json<Value> {
    Json(
        s.payouts
            .iter()
            .find(|p| p["id"] == id.as_str())
            .cloned()
            .unwrap_or(Value::Null),
    )
}

async fn start_stuck(s: Stuck) -> StripeClient {
    let app = Router::new()
        .route("/v1/payouts", get(stuck_payouts))
        .route("/v1/payouts/{id}", get(stuck_payout))
        .route("/v1/balance_transactions", get(stuck_transactions))
        .with_state(s);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut cfg = StripeClientConfig::new(Secret::new("sk_test_stuck".into()))
        .with_base_url(format!("http://{addr}"));
    cfg.requests_per_second = 0;
    StripeClient::new(cfg).unwrap()
}

fn stuck() -> Stuck {
    let payout = json!({"id": "po_stuck", "object": "payout", "amount": 9680, "currency": "usd",
        "automatic": true, "arrival_date": NOW, "status": "paid",
        "reconciliation_status": "completed", "balance_transaction": "txn_po_stuck",
        "failure_balance_transaction": null, "metadata": {}});
    Stuck {
        payouts: vec![payout],
        transactions: vec![
            bt("txn_po_stuck", -9680, &[], "payout", "payout", "usd"),
            bt(
                "txn_stuck_1",
                10_000,
                &[("stripe_fee", 320)],
                "charge",
                "charge",
                "usd",
            ),
        ],
        list_calls: Arc::new(Mutex::new(0)),
    }
}

#[tokio::test]
async fn balance_transactions_whose_cursor_does_not_advance_fail_the_payout_instead_of_paging_forever(
) {
    let s = stuck();
    let calls = s.list_calls.clone();
    let stripe = start_stuck(s).await;
    let payout = stripe
        .retrieve_payout(&PayoutId::new("po_stuck"))
        .await
        .unwrap();
    let d = deps(stripe, Posting::default());
    let result = tokio::time::timeout(
        Duration::from_secs(20),
        d.reconcile_payout(&payout, source()),
    )
    .await
    .expect("the reconciliation ends instead of paging forever");
    match result {
        PayoutResult::Failed { reason } => {
            assert!(reason.contains("cursor did not advance"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(*calls.lock().unwrap(), 2, "the repeated page is read once");
    assert!(d.commands.try_receive(10).is_empty(), "nothing posted");
}

#[tokio::test]
async fn a_payout_list_whose_cursor_does_not_advance_stops_the_sweep_with_an_error() {
    let mut s = stuck();
    // Nothing to reconcile in the payout itself: the sweep's own paging is under test.
    s.payouts[0]["status"] = json!("canceled");
    let calls = s.list_calls.clone();
    let stripe = start_stuck(s).await;
    let mut d = deps(stripe, Posting::default());
    d.file.sweep.include_failed = false;
    let summary = d.sweep("run-stuck").await;
    assert_eq!(summary.listed, 1, "{summary:?}");
    assert!(
        summary
            .list_error
            .as_deref()
            .is_some_and(|e| e.contains("cursor did not advance")),
        "{summary:?}"
    );
    assert_eq!(*calls.lock().unwrap(), 2);
}
