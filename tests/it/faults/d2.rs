//! D2 — the lock race: many workers claim the same intent at the same instant. The claim is one
//! conditional `PutItem` (Powertools' condition), so exactly one of them acquires it; the others
//! get the stored record back (`INPROGRESS`) and back off (erp-post reports the record failed,
//! "being posted by another worker").
//!
//! Figure (at figure): 50 workers × 200 keys against moto, all 50 claims of a key released at
//! once by a barrier → exactly 200 acquisitions, one per key, and no claim fails. The moto here
//! is an instance whose DynamoDB item operations are atomic, as DynamoDB's are
//! ([`super::atomic_moto`]): plain moto let 204 of 200 through in the same race.

use crate::support::moto;
use ledgerbridge_adapters::aws::DynamoStore;
use ledgerbridge_core::ids::IdempotencyKey;
use ledgerbridge_core::keys::IntentKey;
use ledgerbridge_core::ports::{Claim, ClaimRequest, IdempotencyStore, RecordStatus};
use ledgerbridge_core::{Clock, SystemClock};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const WORKERS: usize = 50;
const KEYS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn d2_fifty_workers_race_for_two_hundred_keys_and_each_key_is_acquired_once() {
    let conf = super::atomic_moto::sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&conf);
    let table = moto::unique("d2-state");
    moto::create_state_table(&ddb, &table).await;
    let store = DynamoStore::new(ddb, &table);
    let keys: Arc<Vec<IdempotencyKey>> = Arc::new(
        (0..KEYS)
            .map(|k| IntentKey::post("sagepro", format!("LB-d2x{k}-JE")).into())
            .collect(),
    );
    let barrier = Arc::new(tokio::sync::Barrier::new(WORKERS));
    // Per key: acquisitions, and the status the losers were shown.
    let acquired: Arc<Mutex<HashMap<usize, usize>>> = Arc::default();
    let lost: Arc<Mutex<HashMap<usize, Vec<RecordStatus>>>> = Arc::default();
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (store, keys, barrier) = (store.clone(), keys.clone(), barrier.clone());
            let (acquired, lost, errors) = (acquired.clone(), lost.clone(), errors.clone());
            tokio::spawn(async move {
                for (k, key) in keys.iter().enumerate() {
                    barrier.wait().await;
                    let now_ms = SystemClock.now_millis();
                    let claim = store
                        .claim(&ClaimRequest {
                            key: key.clone(),
                            payload_hash: String::new(),
                            now_ms,
                            lease_ms: 120_000,
                            expiration: now_ms / 1000 + 86_400,
                        })
                        .await;
                    match claim {
                        Ok(Claim::Acquired) => *acquired.lock().unwrap().entry(k).or_default() += 1,
                        Ok(Claim::Existing(rec)) => {
                            lost.lock().unwrap().entry(k).or_default().push(rec.status)
                        }
                        Err(e) => errors.lock().unwrap().push(format!("key {k}: {e}")),
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let errors = errors.lock().unwrap();
    assert!(
        errors.is_empty(),
        "{} claims failed: {errors:?}",
        errors.len()
    );
    let acquired = acquired.lock().unwrap();
    assert_eq!(
        acquired.values().sum::<usize>(),
        KEYS,
        "exactly {KEYS} acquisitions"
    );
    assert!(
        (0..KEYS).all(|k| acquired.get(&k) == Some(&1)),
        "one acquisition per key: {acquired:?}"
    );
    let lost = lost.lock().unwrap();
    for k in 0..KEYS {
        let seen = &lost[&k];
        assert_eq!(seen.len(), WORKERS - 1, "key {k}: every other worker lost");
        assert!(
            seen.iter().all(|s| *s == RecordStatus::InProgress),
            "key {k}: the losers see the winner's record in progress: {seen:?}"
        );
    }
}
