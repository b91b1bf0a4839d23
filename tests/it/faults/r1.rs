//! R1 — payout reconciliation: a payout with far more than 100 balance transactions, a Stripe
//! 429 in the middle of the pagination, and the scheduler firing twice at once.
//!
//! Figure: 10,000 balance transactions → 10,000 matched; two runs → identical output, 0
//! duplicate journals. **At figure**: 10,000 balance transactions (100 list pages plus the
//! payout's own entry) served by the local fake Stripe API with `starting_after` paging and a
//! 429 (`Retry-After: 1`) once on page 51, reconciled twice concurrently (the payout event
//! and the sweep). Both runs see every transaction, balance to the minor unit, agree to the
//! line, and claim one journal idempotency key: the second trigger finds the first's claim.

use crate::recon::{add_payout, assert_balanced, bt, mapping, start_fake, FakeStripe};
use ledgerbridge_adapters::embedded::SqliteStore;
use ledgerbridge_core::ids::PayoutId;
use ledgerbridge_core::ports::{Claim, ClaimRequest, IdempotencyStore};
use ledgerbridge_recon::{journal_idempotency_key, reconcile, NoBookedRates, NoSyncCheck};
use std::sync::{Arc, Mutex};

const TRANSACTIONS: usize = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r1_ten_thousand_transactions_a_429_and_a_double_schedule_give_one_journal() {
    let fake = Arc::new(Mutex::new(FakeStripe::default()));
    let entries: Vec<_> = (0..TRANSACTIONS)
        .map(|i| match i % 20 {
            0 => bt(&format!("txn_r1r{i}"), -700, &[], "refund", "refund", "usd"),
            1 => bt(
                &format!("txn_r1d{i}"),
                -2_500,
                &[("stripe_fee", 1_500)],
                "dispute",
                "adjustment",
                "usd",
            ),
            _ => bt(
                &format!("txn_r1c{i}"),
                1_000 + i as i64,
                &[("stripe_fee", 59)],
                "charge",
                "charge",
                "usd",
            ),
        })
        .collect();
    let amount = add_payout(&fake, "po_r1", "usd", entries, 0);
    // A 429 once, in the middle: the page after the 5,000th entry of the list (the payout entry
    // first; pages of 100 end at entries 100, 200, …).
    let cursor = fake.lock().unwrap().lists["po_r1"][4_999]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    fake.lock()
        .unwrap()
        .throttle_once_after
        .insert(cursor.clone());
    let client = start_fake(fake.clone()).await;
    let payout = client
        .retrieve_payout(&PayoutId::new("po_r1"))
        .await
        .unwrap();
    let m = mapping();
    // The payout event and the sweep fire together.
    let (a, b) = tokio::join!(
        reconcile(&client, &payout, &m, &NoBookedRates, &NoSyncCheck),
        reconcile(&client, &payout, &m, &NoBookedRates, &NoSyncCheck)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.report, b.report, "identical reports");
    let (ja, jb) = (a.journal.unwrap(), b.journal.unwrap());
    assert_eq!(ja, jb, "identical journals");
    for j in [&ja, &jb] {
        assert_balanced(j);
        assert_eq!(j.payout_amount.minor, amount);
        assert_eq!(
            j.transaction_count, TRANSACTIONS as u64,
            "every transaction matched"
        );
        let counted: u64 = j.by_category.values().map(|c| c.count).sum();
        assert_eq!(counted, TRANSACTIONS as u64);
    }
    assert!(a.report.is_clean(), "{:?}", a.report);
    assert_eq!(ja.by_category["refund"].count, TRANSACTIONS as u64 / 20);
    assert_eq!(ja.by_category["dispute"].count, TRANSACTIONS as u64 / 20);
    // The 429 was met once and waited out, and no page was read more than once per run plus
    // that retry (the client may share one answer between the two runs).
    let requests = fake.lock().unwrap().list_requests.clone();
    let pages = TRANSACTIONS / 100 + 1;
    assert!(
        requests.len() > pages && requests.len() <= 2 * pages + 1,
        "{} list requests for two runs of {pages} pages",
        requests.len()
    );
    let throttled = requests.iter().filter(|c| **c == cursor).count();
    assert!(
        (2..=3).contains(&throttled),
        "the throttled page was asked for {throttled} times (once answered 429)"
    );
    // 0 duplicate journals: both runs claim the same key; the second finds the first's claim.
    let (ka, kb) = (
        journal_idempotency_key(&ja.payout, &ja.kind),
        journal_idempotency_key(&jb.payout, &jb.kind),
    );
    assert_eq!(ka, kb);
    let store = SqliteStore::in_memory().unwrap();
    let claim = |key| ClaimRequest {
        key,
        payload_hash: "h".into(),
        now_ms: 1_000,
        lease_ms: 60_000,
        expiration: 10_000_000,
    };
    assert_eq!(store.claim(&claim(ka)).await.unwrap(), Claim::Acquired);
    assert!(matches!(
        store.claim(&claim(kb)).await.unwrap(),
        Claim::Existing(_)
    ));
}
