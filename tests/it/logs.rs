//! Webhook bodies and secrets never reach the logs.

use crate::intake::{deps, Backend, Embedded, TestQueue};
use crate::support::fixtures::{event_body, SAMPLE_SECRET};
use ledgerbridge_core::webhook::sign_header;
use ledgerbridge_core::FixedClock;
use ledgerbridge_intake::handle_webhook;
use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// GIVEN JSON logging at TRACE level WHEN deliveries are accepted, duplicated, rejected,
/// oversized and ignored THEN the log names the outcomes but holds no secret, no signature and
/// no byte of payment or customer data.
#[tokio::test]
async fn intake_logs_never_contain_bodies_or_secrets() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (q, s) = Embedded::fresh(4096).await;
    let t = 1_785_000_000;
    let d = deps(q, s, FixedClock::at_secs(t));
    let customer = event_body("customer.created.json");
    let charge = event_body("charge.succeeded.json");
    let invoice = event_body("invoice.paid.json");
    let charge_header = sign_header(&[SAMPLE_SECRET], t, &charge);
    handle_webhook(
        &d,
        Some(&sign_header(&[SAMPLE_SECRET], t, &customer)),
        &customer,
    )
    .await;
    handle_webhook(&d, Some(&charge_header), &charge).await;
    handle_webhook(&d, Some(&charge_header), &charge).await; // duplicate
    let mut tampered = charge.clone();
    tampered[100] ^= 1;
    handle_webhook(&d, Some(&charge_header), &tampered).await; // rejected
    handle_webhook(
        &d,
        Some(&sign_header(&[SAMPLE_SECRET], t, &invoice)),
        &invoice,
    )
    .await; // oversized
    let ignored = String::from_utf8(customer.clone())
        .unwrap()
        .replace("\"customer.created\"", "\"x.y\"")
        .replace("evt_", "evt_ignored")
        .into_bytes();
    handle_webhook(
        &d,
        Some(&sign_header(&[SAMPLE_SECRET], t, &ignored)),
        &ignored,
    )
    .await;
    assert_eq!(d.queue.take_all().await.len(), 3);

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    for expected in [
        "accepted",
        "duplicate",
        "signature_mismatch",
        "event_oversized",
        "ignored",
    ] {
        assert!(logs.contains(expected), "log lacks {expected}: {logs}");
    }
    let signature_hex = charge_header.split("v1=").nth(1).unwrap();
    for forbidden in [
        SAMPLE_SECRET,
        "whsec_",
        signature_hex,
        "northwind",
        "Northwind",
        "Harbor Blvd",
        "SO-100482",
        "\"amount\"",
        "4242",
    ] {
        assert!(!logs.contains(forbidden), "log leaks {forbidden:?}");
    }
}
