//! D5 — the same event id with a different payload (tampering, or the Stripe object changed):
//! detected against the stored record whether the store returns it from the failed
//! conditional write (the optimistic-write path: `ReturnValuesOnConditionCheckFailure`) or has
//! to read it afterwards (the read path: an API or emulator that answers the failed condition
//! without the item), and the differing copy is kept in quarantine with the
//! `event_payload_mismatch` alarm — never silently dropped, never queued, never overwriting.
//! Figure (at figure): 100 % detected on both paths (100 pairs per path, plus the embedded
//! store), and an identical redelivery is still a plain duplicate.

use super::interceptor::{FaultInterceptor, FaultPlan};
use crate::intake::{deps, Embedded, MotoQueue, TestQueue};
use crate::support::fixtures::{event_body, SAMPLE_SECRET};
use crate::support::moto;
use ledgerbridge_core::ids::IdempotencyKey;
use ledgerbridge_core::keys::IntakeKey;
use ledgerbridge_core::ports::{IdempotencyStore, RecordStatus};
use ledgerbridge_core::webhook::sign_header;
use ledgerbridge_core::FixedClock;
use ledgerbridge_intake::{handle_webhook, QuarantinedDelivery};
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

const T0: i64 = 1_785_000_000;
const PAIRS: usize = 100;

/// Captures JSON logs of the current thread (use with a current-thread runtime).
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// `PAIRS` events, each delivered as signed, then again identically, then with the same id
/// and one amount changed. Returns how many changed copies were detected.
async fn pairs<Q: TestQueue, S: IdempotencyStore + Clone>(q: Q, s: S, tag: &str) -> usize {
    let d = deps(q, s.clone(), FixedClock::at_secs(T0));
    let base = String::from_utf8(event_body("charge.succeeded.json")).unwrap();
    let mut detected = 0;
    for i in 0..PAIRS {
        let original = base.replace("evt_", &format!("evt_{tag}{i}x"));
        let changed = original.replacen("\"amount\": ", "\"amount\": 1", 1);
        assert_ne!(original, changed);
        let (o, c) = (original.into_bytes(), changed.into_bytes());
        let first = handle_webhook(&d, Some(&sign_header(&[SAMPLE_SECRET], T0, &o)), &o).await;
        assert_eq!(first.status, 200);
        let again = handle_webhook(&d, Some(&sign_header(&[SAMPLE_SECRET], T0, &o)), &o).await;
        assert!(
            again.body.contains("duplicate") && !again.body.contains("quarantined"),
            "identical copy: {}",
            again.body
        );
        let out = handle_webhook(&d, Some(&sign_header(&[SAMPLE_SECRET], T0, &c)), &c).await;
        assert_eq!(out.status, 200, "{}", out.body);
        if out.body.contains("quarantined") {
            let sha = sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(&c));
            let hex: String = sha.iter().map(|b| format!("{b:02x}")).collect();
            let rec = s
                .get(&IdempotencyKey::from(IntakeKey::quarantine(hex)))
                .await
                .unwrap()
                .expect("the changed copy is kept");
            assert_eq!(rec.status, RecordStatus::Parked);
            let kept: QuarantinedDelivery =
                serde_json::from_str(rec.result.as_deref().unwrap()).unwrap();
            assert_eq!(kept.reason, "payload_mismatch");
            assert!(kept
                .event_id
                .unwrap()
                .starts_with(&format!("evt_{tag}{i}x")));
            detected += 1;
        }
    }
    assert_eq!(
        d.queue.take_all().await.len(),
        PAIRS,
        "only the originals are queued; the changed copies are not"
    );
    detected
}

async fn moto_backend(
    plan: FaultPlan,
) -> (
    MotoQueue,
    ledgerbridge_adapters::aws::DynamoStore,
    FaultInterceptor,
) {
    let conf = moto::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let url = moto::create_queue(&sqs, &moto::unique("d5-events")).await;
    let table = moto::unique("d5-state");
    let plain = aws_sdk_dynamodb::Client::new(&conf);
    moto::create_state_table(&plain, &table).await;
    let faults = FaultInterceptor::new(plan);
    let ddb = faults.dynamodb(&conf);
    let q = MotoQueue::new(sqs, &url, ledgerbridge_core::message::SQS_MAX_MESSAGE_BYTES);
    (
        q,
        ledgerbridge_adapters::aws::DynamoStore::new(ddb, table),
        faults,
    )
}

#[tokio::test]
async fn d5_detected_on_the_optimistic_write_path() {
    let (q, s, faults) = moto_backend(FaultPlan::default()).await;
    assert_eq!(pairs(q, s, "d5w").await, PAIRS);
    // The stored record came back with the failed conditional write: the only reads are the
    // test's own look at each quarantine record.
    assert_eq!(faults.counters.of("GetItem"), PAIRS, "write path only");
}

/// The mismatch logs its alarm kind, and never the body.
#[tokio::test]
async fn d5_mismatch_raises_the_alarm_without_the_body() {
    let capture = Capture::default();
    let _guard = capture.install();
    let (q, s) = <Embedded as crate::intake::Backend>::fresh(
        ledgerbridge_core::message::SQS_MAX_MESSAGE_BYTES,
    )
    .await;
    let d = deps(q, s, FixedClock::at_secs(T0));
    let o = String::from_utf8(event_body("charge.succeeded.json")).unwrap();
    let c = o.replacen("\"amount\": ", "\"amount\": 1", 1);
    for body in [o.as_bytes(), c.as_bytes()] {
        let out = handle_webhook(&d, Some(&sign_header(&[SAMPLE_SECRET], T0, body)), body).await;
        assert_eq!(out.status, 200);
    }
    let log = capture.text();
    assert!(log.contains(r#""alarm":"event_payload_mismatch""#), "{log}");
    assert!(!log.contains("15900"), "no payload in the log");
}

#[tokio::test]
async fn d5_detected_on_the_read_path() {
    let (q, s, faults) = moto_backend(FaultPlan {
        strip_condition_item: true,
        ..FaultPlan::default()
    })
    .await;
    assert_eq!(pairs(q, s, "d5r").await, PAIRS);
    // Every failed condition came back without the item, so the store read it.
    // (the identical copy and the changed copy of each pair), plus the test's own look.
    assert_eq!(faults.counters.stripped.load(Ordering::SeqCst), 4 * PAIRS);
    assert_eq!(faults.counters.of("GetItem"), 3 * PAIRS, "read path taken");
}

#[tokio::test]
async fn d5_detected_on_the_embedded_store() {
    let (q, s) = <Embedded as crate::intake::Backend>::fresh(
        ledgerbridge_core::message::SQS_MAX_MESSAGE_BYTES,
    )
    .await;
    assert_eq!(pairs(q, s, "d5e").await, PAIRS);
}
