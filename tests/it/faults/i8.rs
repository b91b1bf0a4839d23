//! I8 — an event larger than an SQS message (256 KiB). The intake's documented path
//! (docs/fault-matrix.md, `ledgerbridge_intake`'s `enqueue`): the event is queued by reference
//! (`stripe_event_ref.v1`, reason `oversized`, with its id, type and size), the intake logs
//! `alarm = "event_oversized"`, answers 2xx, and the transform fetches the event again from
//! Stripe (`GET /v1/events/{id}`) before it maps it. Figure (at figure): a **300 KB event → 0
//! lost (its ERP document exists, once), the reference path taken, the alarm emitted**, end
//! to end on moto (intake → SQS → transform → SQS → erp-post → the Sage Pro sandbox), and the
//! payload never in the log.
//!
//! The fixture is the sample `customer.created` event grown to 300 KB by a large field the
//! mapping does not read; size is all this row is about (Stripe events that large in practice
//! are invoices with long line lists).

use super::i1::MotoPipeline;
use crate::support::fake_stripe::FakeStripe;
use crate::support::fixtures::event_body;
use ledgerbridge_core::message::SQS_MAX_MESSAGE_BYTES;
use ledgerbridge_erp_sandbox::ErpKind;
use ledgerbridge_messages::{IntakeMessage, RefReason};
use serde_json::Value;

const T0: i64 = 1_785_000_000;
const PADDING: &str = "i8-padding-";

fn oversized_event() -> (Vec<u8>, Value) {
    let mut ev: Value = serde_json::from_slice(&event_body("customer.created.json")).unwrap();
    ev["id"] = Value::String("evt_i8oversized300kb".into());
    let obj = &mut ev["data"]["object"];
    obj["id"] = Value::String("cus_i8oversized".into());
    obj["name"] = Value::String("I8 Oversized Customer".into());
    obj["email"] = Value::String("i8-oversized@example.com".into());
    obj["metadata"] = serde_json::json!({});
    obj["x_large_unmapped_field"] = Value::String(PADDING.repeat(300 * 1024 / PADDING.len()));
    let body = serde_json::to_vec_pretty(&ev).unwrap();
    (body, ev)
}

#[tokio::test]
async fn i8_a_300_kb_event_is_queued_by_reference_refetched_and_posted_once() {
    let capture = super::d5::Capture::default();
    let _guard = capture.install();
    let (body, ev) = oversized_event();
    assert!(
        body.len() >= 300 * 1024 && body.len() > SQS_MAX_MESSAGE_BYTES,
        "{} bytes",
        body.len()
    );
    let fake = FakeStripe::default();
    fake.put("events", ev.clone());
    fake.put("customers", ev["data"]["object"].clone());
    let base = fake.serve().await;
    let sb = crate::pipeline::sandbox(ErpKind::SagePro).await;
    let p = MotoPipeline::new(crate::pipeline::sagepro(&sb), &base, T0, "i8").await;

    // Delivered twice (Stripe's retry after a lost 2xx): both answered 2xx, queued once.
    assert_eq!(p.deliver(&body).await, 1);
    assert_eq!(p.deliver(&body).await, 1);
    let peek = p
        .sqs
        .receive_message()
        .queue_url(&p.events.url)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    assert_eq!(peek.messages().len(), 1, "queued once");
    let queued = peek.messages()[0].body().unwrap();
    assert!(queued.len() < 4096, "a reference, not the event");
    match IntakeMessage::decode(queued).unwrap() {
        IntakeMessage::StripeEventRefV1(r) => {
            assert_eq!(r.reason, RefReason::Oversized);
            assert_eq!(r.event_id.as_str(), "evt_i8oversized300kb");
            assert_eq!(r.event_type, "customer.created");
            assert_eq!(r.body_bytes, body.len());
        }
        other => panic!("expected a reference, got {other:?}"),
    }

    p.run().await;
    let with_name = sb
        .audit(Some(ErpKind::SagePro))
        .unwrap()
        .iter()
        .filter(|a| a.action == "create" && a.body.to_string().contains("I8 Oversized Customer"))
        .count();
    assert_eq!(with_name, 1, "the oversized event's customer exists once");
    p.assert_nothing_stranded().await;

    let log = capture.text();
    let alarm = log
        .lines()
        .find(|l| l.contains(r#""alarm":"event_oversized""#))
        .unwrap_or_else(|| panic!("no event_oversized alarm in the log"));
    assert!(alarm.contains("evt_i8oversized300kb"), "{alarm}");
    assert!(
        alarm.contains(&format!(r#""body_bytes":{}"#, body.len())),
        "{alarm}"
    );
    assert!(!log.contains(PADDING), "the payload reached the log");
    sb.shutdown().await;
}
