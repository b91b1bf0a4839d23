//! Payout reconciliation end to end: the Stripe client against a local fake Stripe API
//! (axum on 127.0.0.1:0) serving the shared sample responses and generated payouts, folded
//! into journals that must balance and match `expected.json`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ledgerbridge_adapters::embedded::SqliteStore;
use ledgerbridge_core::currency::Currency;
use ledgerbridge_core::ids::{ErpDocumentId, PayoutId, StripeObjectId};
use ledgerbridge_core::money::{Money, Rounding};
use ledgerbridge_core::ports::{Claim, ClaimRequest, IdempotencyStore, XrefRecord, XrefStore};
use ledgerbridge_core::secrets::Secret;
use ledgerbridge_recon::{
    journal_idempotency_key, reconcile, DetailLevel, DiscrepancyKind, FailedPayoutPolicy,
    FxRateLookup, JournalKind, LineKind, NoBookedRates, NoSyncCheck, PayoutAggregator,
    ReconMapping, ReconStatus, Side, XrefSyncCheck,
};
use ledgerbridge_stripe::{StripeBalanceTransaction, StripeClient, StripeClientConfig};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) const SAMPLE_PAYOUT: &str = "po_1AlsD8Nq7LbKx2RzLQZWGamE";
pub(crate) const FAILED_PAYOUT: &str = "po_1czXvONq7LbKx2RzEcobW8uu";

pub(crate) fn fixture(name: &str) -> Value {
    let text = match name {
        "expected" => include_str!("../fixtures/stripe/expected.json"),
        "sample_list" => include_str!(
            "../fixtures/stripe/api/balance_transactions.payout_po_1AlsD8Nq7LbKx2RzLQZWGamE.json"
        ),
        "sample_payout" => {
            include_str!("../fixtures/stripe/api/payout_po_1AlsD8Nq7LbKx2RzLQZWGamE.json")
        }
        "failed_payout" => {
            include_str!("../fixtures/stripe/api/payout_po_1czXvONq7LbKx2RzEcobW8uu.json")
        }
        "failure_txn" => {
            include_str!(
                "../fixtures/stripe/api/balance_transaction_txn_12xMwdNq7LbKx2RzBq6kDB5I.json"
            )
        }
        other => panic!("no fixture {other}"),
    };
    serde_json::from_str(text).unwrap()
}

// ---- the fake Stripe API ---------------------------------------------------------------

#[derive(Default)]
pub(crate) struct FakeStripe {
    /// `collection/id` → object.
    pub(crate) objects: HashMap<String, Value>,
    /// payout id → its balance transactions, newest first (payout entry included).
    pub(crate) lists: HashMap<String, Vec<Value>>,
    /// Answer 429 (Retry-After: 1) once to the list request with this `starting_after`.
    pub(crate) throttle_once_after: HashSet<String>,
    pub(crate) list_requests: Vec<String>,
}

pub(crate) type Shared = Arc<Mutex<FakeStripe>>;

async fn list_balance_transactions(
    State(fake): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut f = fake.lock().unwrap();
    let after = q.get("starting_after").cloned().unwrap_or_default();
    f.list_requests.push(after.clone());
    if f.throttle_once_after.remove(&after) {
        let body = json!({"error": {"type": "rate_limit_error", "message": "Too many requests"}});
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("Retry-After", "1")],
            axum::Json(body),
        )
            .into_response();
    }
    let Some(payout) = q.get("payout") else {
        return (StatusCode::BAD_REQUEST, "payout filter required").into_response();
    };
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(10)
        .clamp(1, 100);
    let all = f.lists.get(payout).cloned().unwrap_or_default();
    let start = if after.is_empty() {
        0
    } else {
        match all.iter().position(|t| t["id"] == after.as_str()) {
            Some(i) => i + 1,
            None => return (StatusCode::BAD_REQUEST, "unknown cursor").into_response(),
        }
    };
    let end = (start + limit).min(all.len());
    axum::Json(
        json!({"object": "list", "data": &all[start..end], "has_more": end < all.len(),
        "url": "/v1/balance_transactions"}),
    )
    .into_response()
}

/// `GET /v1/payouts?status=…&arrival_date[gte]=…&limit=…[&starting_after=…]` over the
/// registered payouts, newest arrival first (the payout sweep).
async fn list_payouts(
    State(fake): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let f = fake.lock().unwrap();
    let since: i64 = q
        .get("arrival_date[gte]")
        .and_then(|v| v.parse().ok())
        .unwrap_or(i64::MIN);
    let mut all: Vec<&Value> = f
        .objects
        .iter()
        .filter(|(k, _)| k.starts_with("payouts/"))
        .map(|(_, v)| v)
        .filter(|p| q.get("status").is_none_or(|s| p["status"] == s.as_str()))
        .filter(|p| p["arrival_date"].as_i64().unwrap_or(0) >= since)
        .collect();
    all.sort_by_key(|p| {
        (
            -p["arrival_date"].as_i64().unwrap_or(0),
            p["id"].to_string(),
        )
    });
    let start = match q.get("starting_after") {
        Some(after) => match all.iter().position(|p| p["id"] == after.as_str()) {
            Some(i) => i + 1,
            None => return (StatusCode::BAD_REQUEST, "unknown cursor").into_response(),
        },
        None => 0,
    };
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(10)
        .clamp(1, 100);
    let end = (start + limit).min(all.len());
    axum::Json(
        json!({"object": "list", "data": &all[start..end], "has_more": end < all.len(),
        "url": "/v1/payouts"}),
    )
    .into_response()
}

async fn retrieve(
    State(fake): State<Shared>,
    Path((collection, id)): Path<(String, String)>,
) -> Response {
    let f = fake.lock().unwrap();
    match f.objects.get(&format!("{collection}/{id}")) {
        Some(v) => axum::Json(v.clone()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(
                json!({"error": {"type": "invalid_request_error", "code": "resource_missing"}}),
            ),
        )
            .into_response(),
    }
}

pub(crate) async fn start_fake(fake: Shared) -> StripeClient {
    let app = Router::new()
        .route("/v1/balance_transactions", get(list_balance_transactions))
        .route("/v1/payouts", get(list_payouts))
        .route("/v1/{collection}/{id}", get(retrieve))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut cfg = StripeClientConfig::new(Secret::new("sk_test_recon".into()))
        .with_base_url(format!("http://{addr}"));
    cfg.requests_per_second = 0;
    StripeClient::new(cfg).unwrap()
}

pub(crate) fn sample_fake() -> Shared {
    let mut f = FakeStripe::default();
    let list = fixture("sample_list");
    f.lists.insert(
        SAMPLE_PAYOUT.into(),
        list["data"].as_array().unwrap().clone(),
    );
    f.objects
        .insert(format!("payouts/{SAMPLE_PAYOUT}"), fixture("sample_payout"));
    f.objects
        .insert(format!("payouts/{FAILED_PAYOUT}"), fixture("failed_payout"));
    let failure = fixture("failure_txn");
    f.objects.insert(
        format!("balance_transactions/{}", failure["id"].as_str().unwrap()),
        failure,
    );
    Arc::new(Mutex::new(f))
}

/// The account names of `expected.json`'s sample journal.
pub(crate) fn mapping() -> ReconMapping {
    let fees = "Stripe processing & dispute fees (expense)";
    let cats = [
        ("charge", "Stripe clearing (gross card receipts)"),
        ("refund", "Refunds / returns"),
        ("dispute", "Chargebacks"),
        ("dispute_reversal", "Chargebacks"),
        ("fee", fees),
        ("other_adjustment", "Other income (adjustments)"),
        ("payout_reversal", "Stripe balance receivable"),
    ];
    ReconMapping {
        bank_account: "Bank - operating".into(),
        category_accounts: cats
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        fee_accounts: BTreeMap::from([("stripe_fee".into(), fees.into())]),
        default_fee_account: fees.into(),
        suspense_account: "Suspense".into(),
        variance_account: "Reconciliation variance".into(),
        fx_account: "FX gain/loss".into(),
        failed_payout_account: "Stripe balance receivable".into(),
        rounding: Rounding::HalfEven,
        detail: DetailLevel::Summary,
        failed_payout: FailedPayoutPolicy::Reverse,
        manual_payout: Default::default(),
    }
}

pub(crate) fn bt(
    id: &str,
    amount: i64,
    fees: &[(&str, i64)],
    category: &str,
    kind: &str,
    cur: &str,
) -> Value {
    let fee: i64 = fees.iter().map(|(_, a)| a).sum();
    json!({"id": id, "object": "balance_transaction", "amount": amount, "currency": cur,
        "fee": fee, "net": amount - fee, "exchange_rate": null,
        "fee_details": fees.iter().map(|(t, a)| json!({"amount": a, "currency": cur, "type": t,
            "application": null, "description": null})).collect::<Vec<_>>(),
        "reporting_category": category, "type": kind, "source": format!("src_{id}"),
        "created": 1_786_000_000, "available_on": 1_786_000_000, "status": "available"})
}

fn payout_obj(id: &str, amount: i64, cur: &str) -> Value {
    json!({"id": id, "object": "payout", "amount": amount, "currency": cur, "automatic": true,
        "arrival_date": 1_786_100_000, "status": "paid", "reconciliation_status": "completed",
        "balance_transaction": format!("txn_{id}"), "failure_balance_transaction": null,
        "metadata": {}})
}

/// Registers a payout whose entries are `entries` plus its own entry (amount = −Σ net).
pub(crate) fn add_payout(
    fake: &Shared,
    id: &str,
    cur: &str,
    entries: Vec<Value>,
    payout_delta: i64,
) -> i64 {
    let sum: i64 = entries.iter().map(|e| e["net"].as_i64().unwrap()).sum();
    let amount = sum + payout_delta;
    let mut list = vec![bt(
        &format!("txn_{id}"),
        -amount,
        &[],
        "payout",
        "payout",
        cur,
    )];
    list.extend(entries);
    let mut f = fake.lock().unwrap();
    f.lists.insert(id.into(), list);
    f.objects
        .insert(format!("payouts/{id}"), payout_obj(id, amount, cur));
    amount
}

fn minor(v: &Value) -> i64 {
    v["minor"].as_i64().unwrap()
}

pub(crate) fn assert_balanced(j: &ledgerbridge_recon::PayoutJournal) {
    let d = j.total_debits().unwrap();
    let c = j.total_credits().unwrap();
    assert_eq!(d, c, "journal balances to the minor unit");
    let plain = j.plain_lines();
    let pd: i64 = plain.iter().map(|l| l.debit_minor).sum();
    let pc: i64 = plain.iter().map(|l| l.credit_minor).sum();
    assert_eq!(pd, pc);
    let dd: Decimal = plain.iter().map(|l| l.debit).sum();
    let cd: Decimal = plain.iter().map(|l| l.credit).sum();
    assert_eq!(dd, cd);
}

// ---- tests -----------------------------------------------------------------------------

#[tokio::test]
async fn sample_payout_matches_expected_totals_and_journal() {
    let client = start_fake(sample_fake()).await;
    let expected = fixture("expected")["payout_reconciliation"].clone();
    let payout = client
        .retrieve_payout(&PayoutId::new(SAMPLE_PAYOUT))
        .await
        .unwrap();
    let out = reconcile(&client, &payout, &mapping(), &NoBookedRates, &NoSyncCheck)
        .await
        .unwrap();
    assert_eq!(out.status, ReconStatus::Journal);
    assert!(out.report.is_clean(), "{:?}", out.report);
    assert_eq!(out.stripe_calls, 1, "one page");
    let j = out.journal.unwrap();
    assert_balanced(&j);
    assert_eq!(j.payout_amount.minor, minor(&expected["payout_amount"]));
    assert_eq!(
        j.transaction_count,
        expected["component_count"].as_u64().unwrap()
    );

    // totals per reporting_category
    let exp = expected["by_reporting_category"].as_object().unwrap();
    assert_eq!(j.by_category.len(), exp.len());
    for (cat, e) in exp {
        let got = &j.by_category[cat];
        assert_eq!(got.count, e["count"].as_u64().unwrap(), "{cat} count");
        assert_eq!(got.amount.minor, minor(&e["amount"]), "{cat} amount");
        assert_eq!(got.fee.minor, minor(&e["fee"]), "{cat} fee");
        assert_eq!(got.net.minor, minor(&e["net"]), "{cat} net");
        assert_eq!(
            got.net.to_decimal().to_string(),
            e["net"]["decimal"].as_str().unwrap()
        );
    }
    let fee_column: i64 = j.by_fee_type.values().map(|m| m.minor).sum();
    assert_eq!(fee_column, minor(&expected["fees_in_fee_column"]));

    // the sample journal, one line per account
    let consolidated = j.consolidated_by_account().unwrap();
    let got: BTreeMap<String, (Side, String)> = consolidated
        .iter()
        .map(|l| {
            (
                l.account.clone(),
                (l.side, l.amount.to_decimal().to_string()),
            )
        })
        .collect();
    let want: BTreeMap<String, (Side, String)> = expected["gl_journal_example"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let (side, v) = match (l.get("debit"), l.get("credit")) {
                (Some(d), _) => (Side::Debit, d),
                (_, Some(c)) => (Side::Credit, c),
                _ => panic!("line without amount"),
            };
            (
                l["account"].as_str().unwrap().to_owned(),
                (side, v.as_str().unwrap().to_owned()),
            )
        })
        .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn per_transaction_detail_lines_balance_and_cover_every_transaction() {
    let client = start_fake(sample_fake()).await;
    let payout = client
        .retrieve_payout(&PayoutId::new(SAMPLE_PAYOUT))
        .await
        .unwrap();
    let mut m = mapping();
    m.detail = DetailLevel::PerTransaction;
    let out = reconcile(&client, &payout, &m, &NoBookedRates, &NoSyncCheck)
        .await
        .unwrap();
    let j = out.journal.unwrap();
    assert_balanced(&j);
    let ids: HashSet<_> = j
        .lines()
        .iter()
        .filter_map(|l| l.balance_transaction.clone())
        .collect();
    assert_eq!(ids.len(), 10);
    // summarised and detailed journals agree per account
    let summary = reconcile(&client, &payout, &mapping(), &NoBookedRates, &NoSyncCheck)
        .await
        .unwrap()
        .journal
        .unwrap();
    let per_account = |j: &ledgerbridge_recon::PayoutJournal| {
        j.consolidated_by_account()
            .unwrap()
            .into_iter()
            .map(|l| (l.account.clone(), l.signed_minor()))
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(per_account(&j), per_account(&summary));
}

#[tokio::test]
async fn multi_page_payout_with_a_429_in_the_middle() {
    let fake = Arc::new(Mutex::new(FakeStripe::default()));
    let entries: Vec<Value> = (0..250)
        .map(|i| {
            if i % 10 == 0 {
                bt(&format!("txn_r{i}"), -500, &[], "refund", "refund", "usd")
            } else {
                bt(
                    &format!("txn_c{i}"),
                    1000 + i,
                    &[("stripe_fee", 59)],
                    "charge",
                    "charge",
                    "usd",
                )
            }
        })
        .collect();
    let amount = add_payout(&fake, "po_multi", "usd", entries, 0);
    // page 2 starts after the 100th entry of the list (the payout entry is first)
    let cursor_of = |i: usize| {
        fake.lock().unwrap().lists["po_multi"][i]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (cursor, cursor3) = (cursor_of(99), cursor_of(199));
    fake.lock()
        .unwrap()
        .throttle_once_after
        .insert(cursor.clone());
    let client = start_fake(fake.clone()).await;
    let payout = client
        .retrieve_payout(&PayoutId::new("po_multi"))
        .await
        .unwrap();
    client.take_calls();
    let started = Instant::now();
    let out = reconcile(&client, &payout, &mapping(), &NoBookedRates, &NoSyncCheck)
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert_eq!(out.stripe_calls, 4, "3 pages + 1 retry after the 429");
    assert_eq!(
        fake.lock().unwrap().list_requests,
        ["", cursor.as_str(), cursor.as_str(), cursor3.as_str()]
    );
    let j = out.journal.unwrap();
    assert_balanced(&j);
    assert!(out.report.is_clean(), "{:?}", out.report);
    assert_eq!(j.payout_amount.minor, amount);
    assert_eq!(j.transaction_count, 250);
    assert_eq!(j.by_category["refund"].count, 25);
    assert_eq!(j.by_category["charge"].count, 225);
    assert_eq!(j.by_fee_type["stripe_fee"].minor, 225 * 59);
}

#[tokio::test]
async fn dispute_fee_adjustment_and_unknown_category() {
    let fake = Arc::new(Mutex::new(FakeStripe::default()));
    let entries = vec![
        bt(
            "txn_unk",
            777,
            &[],
            "crypto_settlement",
            "brand_new_type",
            "usd",
        ),
        bt("txn_adj", 250, &[], "other_adjustment", "adjustment", "usd"),
        bt("txn_fee", -34, &[], "fee", "stripe_fee", "usd"),
        bt(
            "txn_dsp",
            -2000,
            &[("stripe_fee", 1500)],
            "dispute",
            "adjustment",
            "usd",
        ),
        bt(
            "txn_ch",
            10000,
            &[("stripe_fee", 320), ("tax", 27)],
            "charge",
            "charge",
            "usd",
        ),
    ];
    let amount = add_payout(&fake, "po_mixed", "usd", entries, 0);
    assert_eq!(amount, 777 + 250 - 34 - 3500 + 10000 - 347);
    let client = start_fake(fake).await;
    let payout = client
        .retrieve_payout(&PayoutId::new("po_mixed"))
        .await
        .unwrap();
    let mut m = mapping();
    m.fee_accounts.insert("tax".into(), "Tax on fees".into());
    let out = reconcile(&client, &payout, &m, &NoBookedRates, &NoSyncCheck)
        .await
        .unwrap();
    let j = out.journal.unwrap();
    assert_balanced(&j);
    let line = |kind: LineKind| j.lines().iter().find(|l| l.kind == kind).cloned().unwrap();
    let unk = line(LineKind::Suspense("crypto_settlement".into()));
    assert_eq!(
        (unk.account.as_str(), unk.side, unk.amount.minor),
        ("Suspense", Side::Credit, 777)
    );
    let dsp = line(LineKind::Category("dispute".into()));
    assert_eq!((dsp.side, dsp.amount.minor), (Side::Debit, 2000));
    let adj = line(LineKind::Category("other_adjustment".into()));
    assert_eq!((adj.side, adj.amount.minor), (Side::Credit, 250));
    let fee = line(LineKind::Fee("stripe_fee".into()));
    assert_eq!((fee.side, fee.amount.minor), (Side::Debit, 1820));
    let tax = line(LineKind::Fee("tax".into()));
    assert_eq!(
        (tax.account.as_str(), tax.amount.minor),
        ("Tax on fees", 27)
    );
    assert!(j.lines().iter().all(|l| l.kind != LineKind::Variance));
    // reported, never dropped
    assert_eq!(out.report.count(DiscrepancyKind::UnknownCategory), 1);
    let e = &out.report.entries[0];
    assert_eq!(e.category.as_deref(), Some("crypto_settlement"));
    assert_eq!(e.amount, Some(Money::new(777, Currency::USD)));
    let csv = out.report.to_csv().unwrap();
    assert!(csv.starts_with("payout,kind,"));
    assert!(
        csv.contains("po_mixed,unknown_category,txn_unk,,crypto_settlement,USD,7.77,"),
        "{csv}"
    );
}

#[tokio::test]
async fn a_mismatch_goes_to_a_variance_line_and_the_report() {
    let fake = Arc::new(Mutex::new(FakeStripe::default()));
    let entries = vec![bt(
        "txn_a",
        5000,
        &[("stripe_fee", 175)],
        "charge",
        "charge",
        "usd",
    )];
    // the payout object says 3 cents more than its transactions
    add_payout(&fake, "po_var", "usd", entries, 3);
    // and its own entry agrees with the transactions, not the payout object
    fake.lock().unwrap().lists.get_mut("po_var").unwrap()[0] =
        bt("txn_po_var", -4825, &[], "payout", "payout", "usd");
    let client = start_fake(fake).await;
    let payout = client
        .retrieve_payout(&PayoutId::new("po_var"))
        .await
        .unwrap();
    let out = reconcile(&client, &payout, &mapping(), &NoBookedRates, &NoSyncCheck)
        .await
        .unwrap();
    let j = out.journal.unwrap();
    assert_balanced(&j);
    let v = j
        .lines()
        .iter()
        .find(|l| l.kind == LineKind::Variance)
        .unwrap();
    assert_eq!(
        (v.account.as_str(), v.side, v.amount.minor),
        ("Reconciliation variance", Side::Credit, 3) // bank 48.28 = 48.25 + 0.03
    );
    assert_eq!(out.report.count(DiscrepancyKind::TotalMismatch), 1);
    assert_eq!(out.report.count(DiscrepancyKind::PayoutAmountMismatch), 1);
}

#[tokio::test]
async fn zero_decimal_settlement_currency() {
    let fake = Arc::new(Mutex::new(FakeStripe::default()));
    let entries = vec![
        bt(
            "txn_j1",
            12000,
            &[("stripe_fee", 432)],
            "charge",
            "charge",
            "jpy",
        ),
        bt(
            "txn_j2",
            999,
            &[("stripe_fee", 36)],
            "charge",
            "charge",
            "jpy",
        ),
        bt("txn_j3", -3000, &[], "refund", "refund", "jpy"),
    ];
    let amount = add_payout(&fake, "po_jpy", "jpy", entries, 0);
    assert_eq!(amount, 9531);
    let client = start_fake(fake).await;
    let payout = client
        .retrieve_payout(&PayoutId::new("po_jpy"))
        .await
        .unwrap();
    let out = reconcile(&client, &payout, &mapping(), &NoBookedRates, &NoSyncCheck)
        .await
        .unwrap();
    let j = out.journal.unwrap();
    assert_balanced(&j);
    assert_eq!(j.currency, Currency::JPY);
    let plain = j.plain_lines();
    let bank = plain.iter().find(|l| l.category == "bank").unwrap();
    assert_eq!(bank.debit.to_string(), "9531", "yen have no decimals");
    assert_eq!(bank.currency, "JPY");
    let fees = plain
        .iter()
        .find(|l| l.category == "fee:stripe_fee")
        .unwrap();
    assert_eq!(fees.debit.to_string(), "468");
    assert!(plain
        .iter()
        .all(|l| l.debit.scale() == 0 && l.credit.scale() == 0));
}

#[tokio::test]
async fn failed_payout_is_reversed_or_flagged_per_configuration() {
    let client = start_fake(sample_fake()).await;
    let payout = client
        .retrieve_payout(&PayoutId::new(FAILED_PAYOUT))
        .await
        .unwrap();
    let out = reconcile(&client, &payout, &mapping(), &NoBookedRates, &NoSyncCheck)
        .await
        .unwrap();
    assert_eq!(out.status, ReconStatus::Journal);
    let j = out.journal.unwrap();
    assert_eq!(j.kind, JournalKind::FailedPayoutReversal);
    assert_balanced(&j);
    let lines: Vec<_> = j
        .lines()
        .iter()
        .map(|l| (l.account.as_str(), l.side, l.amount.minor))
        .collect();
    assert_eq!(
        lines,
        [
            ("Stripe balance receivable", Side::Debit, 18990),
            ("Bank - operating", Side::Credit, 18990)
        ]
    );
    assert_ne!(
        journal_idempotency_key(&j.payout, &j.kind),
        journal_idempotency_key(&j.payout, &JournalKind::Payout),
        "the reversal does not collide with the payout's own journal"
    );

    let mut flag = mapping();
    flag.failed_payout = FailedPayoutPolicy::Flag;
    let out = reconcile(&client, &payout, &flag, &NoBookedRates, &NoSyncCheck)
        .await
        .unwrap();
    assert_eq!(out.status, ReconStatus::NeedsReview);
    assert!(out.journal.is_none());
    assert_eq!(out.report.count(DiscrepancyKind::FailedPayout), 1);
}

#[tokio::test]
async fn manual_payout_is_flagged_for_review() {
    let fake = sample_fake();
    let mut manual = fixture("sample_payout");
    manual["automatic"] = json!(false);
    manual["id"] = json!("po_manual");
    fake.lock()
        .unwrap()
        .objects
        .insert("payouts/po_manual".into(), manual);
    let client = start_fake(fake.clone()).await;
    let payout = client
        .retrieve_payout(&PayoutId::new("po_manual"))
        .await
        .unwrap();
    client.take_calls();
    let out = reconcile(&client, &payout, &mapping(), &NoBookedRates, &NoSyncCheck)
        .await
        .unwrap();
    assert_eq!(out.status, ReconStatus::NeedsReview);
    assert!(out.journal.is_none());
    assert_eq!(
        out.report.count(DiscrepancyKind::ManualPayoutNeedsReview),
        1
    );
    assert_eq!(
        out.stripe_calls, 0,
        "no listing by payout for a manual payout"
    );
}

#[tokio::test]
async fn double_trigger_posts_one_journal() {
    let client = start_fake(sample_fake()).await;
    let payout = client
        .retrieve_payout(&PayoutId::new(SAMPLE_PAYOUT))
        .await
        .unwrap();
    let m = mapping();
    // the event and the sweep fire together
    let (a, b) = tokio::join!(
        reconcile(&client, &payout, &m, &NoBookedRates, &NoSyncCheck),
        reconcile(&client, &payout, &m, &NoBookedRates, &NoSyncCheck)
    );
    let (a, b) = (a.unwrap().journal.unwrap(), b.unwrap().journal.unwrap());
    assert_eq!(a, b, "deterministic journal");
    let key_a = journal_idempotency_key(&a.payout, &a.kind);
    let key_b = journal_idempotency_key(&b.payout, &b.kind);
    assert_eq!(key_a, key_b);
    let store = SqliteStore::in_memory().unwrap();
    let claim = |key| ClaimRequest {
        key,
        payload_hash: "h".into(),
        now_ms: 1_000,
        lease_ms: 60_000,
        expiration: 10_000_000,
    };
    let first = store.claim(&claim(key_a)).await.unwrap();
    let second = store.claim(&claim(key_b)).await.unwrap();
    assert_eq!(first, Claim::Acquired);
    assert!(
        matches!(second, Claim::Existing(_)),
        "second trigger finds the claim"
    );
}

#[tokio::test]
async fn sources_never_synced_to_the_erp_are_reported() {
    let client = start_fake(sample_fake()).await;
    let payout = client
        .retrieve_payout(&PayoutId::new(SAMPLE_PAYOUT))
        .await
        .unwrap();
    let store = SqliteStore::in_memory().unwrap();
    // only the 159.00 charge has a cash receipt in the ERP
    store
        .put_xref_if_absent(&XrefRecord {
            stripe_id: StripeObjectId::new("ch_3j9VrENq7LbKx2RzhpXmNvkB"),
            doc_kind: "cash_receipt".into(),
            erp: "epicor".into(),
            erp_id: ErpDocumentId::new("CR-1"),
            created_at_ms: 0,
            posted: None,
            command: None,
        })
        .await
        .unwrap();
    let sync = XrefSyncCheck {
        store: &store,
        doc_kinds: BTreeMap::from([("charge".into(), vec!["cash_receipt".into()])]),
    };
    let out = reconcile(&client, &payout, &mapping(), &NoBookedRates, &sync)
        .await
        .unwrap();
    let unsynced: Vec<_> = out
        .report
        .entries
        .iter()
        .filter(|d| d.kind == DiscrepancyKind::UnsyncedSource)
        .map(|d| d.source.clone().unwrap())
        .collect();
    assert_eq!(unsynced.len(), 4, "5 charges, 1 synced: {unsynced:?}");
    assert!(!unsynced.contains(&"ch_3j9VrENq7LbKx2RzhpXmNvkB".to_owned()));
    assert_balanced(&out.journal.unwrap());
}

/// A booked EUR rate of 1.08 against Stripe's 1.087: the clearing account is relieved at the
/// booked value and the difference is an FX line.
#[test]
fn fx_line_for_a_charge_in_another_currency() {
    struct Booked;
    impl FxRateLookup for Booked {
        fn booked_rate(&self, from: Currency, to: Currency, _: i64) -> Option<Decimal> {
            (from == Currency::EUR && to == Currency::USD)
                .then(|| Decimal::from_str("1.08").unwrap())
        }
    }
    let mut charge = bt(
        "txn_fx",
        10870,
        &[("stripe_fee", 345)],
        "charge",
        "charge",
        "usd",
    );
    charge["exchange_rate"] = json!(1.087);
    charge["source"] =
        json!({"id": "ch_eur", "object": "charge", "amount": 10000, "currency": "eur"});
    let payout_entry = bt("txn_po", -(10870 - 345), &[], "payout", "payout", "usd");
    let m = mapping();
    for (rates, fx_credit) in [(&Booked as &dyn FxRateLookup, 70), (&NoBookedRates, 0)] {
        let mut agg = PayoutAggregator::new(&m, rates, PayoutId::new("po_fx"), Currency::USD);
        for v in [&payout_entry, &charge] {
            let t: StripeBalanceTransaction = serde_json::from_value(v.clone()).unwrap();
            agg.push(&t).unwrap();
        }
        let (j, report) = agg
            .finish(
                Money::new(10870 - 345, Currency::USD),
                0,
                JournalKind::Payout,
            )
            .unwrap();
        assert_balanced(&j);
        assert!(report.is_clean(), "{report:?}");
        let clearing = j
            .lines()
            .iter()
            .find(|l| l.kind == LineKind::Category("charge".into()))
            .unwrap();
        assert_eq!(clearing.amount.minor, 10870 - fx_credit);
        let fx = j.lines().iter().find(|l| l.kind == LineKind::Fx);
        match fx_credit {
            0 => assert!(fx.is_none()),
            n => assert_eq!(
                fx.map(|l| (l.side, l.amount.minor)),
                Some((Side::Credit, n))
            ),
        }
    }
}
