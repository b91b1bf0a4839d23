//! I7 — validly signed bodies the intake cannot queue as they are: unparseable, no usable
//! event id, a thin `v2.core.event`, a type the deployment does not handle, a newer
//! `api_version`. Every delivery is answered 2xx (no Stripe retry storm) and accounted for:
//! queued, recorded as ignored, or kept in quarantine (bytes intact) with the
//! `event_quarantined` alarm. Figure (at figure): 0 retry storms, 100 % accounted.

use crate::intake::{deps, Aws, Backend, Embedded, TestQueue};
use crate::support::fixtures::{event_body, SAMPLE_SECRET};
use base64::Engine as _;
use ledgerbridge_core::ids::IdempotencyKey;
use ledgerbridge_core::keys::IntakeKey;
use ledgerbridge_core::ports::{IdempotencyStore, RecordStatus};
use ledgerbridge_core::webhook::sign_header;
use ledgerbridge_core::FixedClock;
use ledgerbridge_intake::{handle_webhook, QuarantinedDelivery};
use sha2::Digest;

const T0: i64 = 1_785_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Queued,
    Ignored,
    Quarantined,
}

fn crafted() -> Vec<(&'static str, Vec<u8>, Expect)> {
    let customer = String::from_utf8(event_body("customer.created.json")).unwrap();
    let mut truncated = customer.clone().into_bytes();
    truncated.truncate(truncated.len() / 2);
    vec![
        ("not JSON", b"not json at all".to_vec(), Expect::Quarantined),
        ("truncated JSON", truncated, Expect::Quarantined),
        ("binary", vec![0xff, 0xfe, 0x00, 0x7b, 0x22], Expect::Quarantined),
        ("JSON array", b"[1,2,3]".to_vec(), Expect::Quarantined),
        ("no id", br#"{"object":"event","type":"charge.succeeded"}"#.to_vec(), Expect::Quarantined),
        (
            "an id that is not an event id",
            customer.replacen("\"id\": \"evt_", "\"id\": \"not an id evt_", 1).into_bytes(),
            Expect::Quarantined,
        ),
        (
            "an unknown type",
            customer
                .replace("evt_", "evt_i7unknown")
                .replace("\"customer.created\"", "\"customer.brand_new_thing\"")
                .into_bytes(),
            Expect::Ignored,
        ),
        (
            "a newer api_version",
            customer
                .replace("evt_", "evt_i7newer")
                .replace("\"api_version\": \"", "\"api_version\": \"2099-01-01.")
                .into_bytes(),
            Expect::Queued,
        ),
        (
            "a thin v2 event",
            br#"{"id":"evt_test_65R9Ijk8xoNI16RdBdz16RdBdR2ZA","object":"v2.core.event","type":"v1.billing.meter.error_report_triggered","livemode":false,"created":"2026-11-01T10:00:00.000Z","related_object":{"id":"mtr_test_61R9","type":"billing.meter","url":"/v1/billing/meters/mtr_test_61R9"}}"#.to_vec(),
            Expect::Ignored,
        ),
    ]
}

async fn every_signed_delivery_is_answered_2xx_and_accounted<B: Backend>() {
    let (q, s) = B::fresh(ledgerbridge_core::message::SQS_MAX_MESSAGE_BYTES).await;
    let d = deps(q, s.clone(), FixedClock::at_secs(T0));
    let mut queued_expected = 0;
    for (what, body, expect) in crafted() {
        let header = sign_header(&[SAMPLE_SECRET], T0, &body);
        // Stripe retries whatever is not 2xx: three deliveries of each must all be 2xx.
        for copy in 0..3 {
            let out = handle_webhook(&d, Some(&header), &body).await;
            assert_eq!(out.status, 200, "{what} (copy {copy}): {}", out.body);
            if copy == 0 {
                let flag = match expect {
                    Expect::Queued => None,
                    Expect::Ignored => Some("ignored"),
                    Expect::Quarantined => Some("quarantined"),
                };
                if let Some(f) = flag {
                    assert!(out.body.contains(f), "{what}: {}", out.body);
                }
            }
        }
        match expect {
            Expect::Queued => queued_expected += 1,
            Expect::Ignored => {}
            Expect::Quarantined => {
                let key = IdempotencyKey::from(IntakeKey::quarantine(hex(&body)));
                let rec = s
                    .get(&key)
                    .await
                    .unwrap()
                    .unwrap_or_else(|| panic!("{what}: not kept"));
                assert_eq!(rec.status, RecordStatus::Parked, "{what}");
                let kept: QuarantinedDelivery =
                    serde_json::from_str(rec.result.as_deref().unwrap()).unwrap();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(kept.body_base64)
                    .unwrap();
                assert_eq!(bytes, body, "{what}: the exact bytes are kept");
            }
        }
    }
    assert_eq!(
        d.queue.take_all().await.len(),
        queued_expected,
        "only parseable handled events are queued, once each"
    );
}

fn hex(body: &[u8]) -> String {
    sha2::Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn i7_embedded() {
    every_signed_delivery_is_answered_2xx_and_accounted::<Embedded>().await;
}

#[tokio::test]
async fn i7_on_moto() {
    every_signed_delivery_is_answered_2xx_and_accounted::<Aws>().await;
}

/// The quarantine logs its alarm kind and never the body.
#[tokio::test]
async fn i7_quarantine_raises_the_alarm_without_the_body() {
    let capture = crate::faults::d5::Capture::default();
    let _guard = capture.install();
    let (q, s) = Embedded::fresh(4096).await;
    let d = deps(q, s, FixedClock::at_secs(T0));
    let body = br#"{"id": "evt_secretive", "type": "charge.succeeded", "data": {"object": {"email": "jane@example.com""#.to_vec();
    let out = handle_webhook(&d, Some(&sign_header(&[SAMPLE_SECRET], T0, &body)), &body).await;
    assert_eq!(out.status, 200);
    let log = capture.text();
    assert!(log.contains(r#""alarm":"event_quarantined""#), "{log}");
    assert!(!log.contains("jane@example.com"), "{log}");
}
