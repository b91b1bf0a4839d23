//! I2 — a tampered body or `Stripe-Signature` header: 1-bit flips, truncation, appended bytes,
//! in the body, the header, or both. Figure (at figure): **100,000 mutants → 0 enqueued, 0
//! panics**, every one answered 400, on the intake handler in-process (embedded queue and
//! store; verification happens before either is touched). The mutants come from a seeded
//! generator ([`super::seeded`]), so a run is reproducible from the seed and the index it
//! prints.
//!
//! What a header mutant is: a 1-bit flip anywhere in the header, a truncation, or bytes
//! appended to the signature value. A separator followed by a new element (`,v0=…`, `,x=y`, a
//! trailing comma) is not a tamper: Stripe's format lets a header carry schemes the receiver
//! ignores, so such a header still carries the untouched signature of the untouched body.
//! A header that is not a valid HTTP header value in visible ASCII (a control character, a
//! byte above 0x7f) reaches the handler as no header at all, as in the function's request
//! handler (`HeaderValue::to_str` fails); the conversion here is that same one.
//!
//! Found by this row and fixed: a `v1` written in upper-case hex (one flipped bit turns `a`
//! into `A`) decoded to the same bytes and was accepted; Stripe's libraries compare the
//! lower-case hex text and reject it, and so does the verifier now.

use super::seeded::Seeded;
use crate::intake::{deps, Backend, Embedded, TestQueue};
use crate::support::fixtures::{event_body, SAMPLE_SECRET};
use futures::FutureExt;
use ledgerbridge_core::webhook::sign_header;
use ledgerbridge_core::FixedClock;
use ledgerbridge_intake::handle_webhook;
use std::panic::AssertUnwindSafe;

const T0: i64 = 1_785_000_000;
const MUTANTS: usize = 100_000;
const SEED: u64 = 0x12_2024;

fn flip(bytes: &mut [u8], rng: &mut Seeded) {
    let at = rng.below(bytes.len());
    bytes[at] ^= 1 << rng.below(8);
}

fn truncate(bytes: &mut Vec<u8>, rng: &mut Seeded) {
    let keep = rng.below(bytes.len());
    bytes.truncate(keep);
}

fn append(bytes: &mut Vec<u8>, rng: &mut Seeded, header: bool) {
    let n = 1 + rng.below(64);
    for i in 0..n {
        let mut b = rng.byte();
        // The first byte joins the signature value (see the module documentation).
        while header && i == 0 && (b == b',' || b.is_ascii_whitespace() || b >= 0x80) {
            b = rng.byte();
        }
        bytes.push(b);
    }
}

/// One mutant of (header, body): `kind` names it for the failure message.
fn mutant(rng: &mut Seeded, header: &str, body: &[u8]) -> (&'static str, Vec<u8>, Vec<u8>) {
    let mut h = header.as_bytes().to_vec();
    let mut b = body.to_vec();
    let kind = match rng.below(7) {
        0 => {
            flip(&mut b, rng);
            "body bit flip"
        }
        1 => {
            truncate(&mut b, rng);
            "body truncated"
        }
        2 => {
            append(&mut b, rng, false);
            "body appended"
        }
        3 => {
            flip(&mut h, rng);
            "header bit flip"
        }
        4 => {
            truncate(&mut h, rng);
            "header truncated"
        }
        5 => {
            append(&mut h, rng, true);
            "header appended"
        }
        _ => {
            flip(&mut h, rng);
            flip(&mut b, rng);
            "header and body bit flips"
        }
    };
    (kind, h, b)
}

#[tokio::test]
async fn i2_hundred_thousand_tampered_deliveries_enqueue_nothing() {
    let (q, s) = Embedded::fresh(ledgerbridge_core::message::SQS_MAX_MESSAGE_BYTES).await;
    let d = deps(q, s, FixedClock::at_secs(T0));
    let bodies = [
        event_body("customer.created.json"),
        event_body("payout.paid.json"),
        event_body("refund.created.json"),
    ];
    let mut rng = Seeded::new(SEED);
    let mut panics = 0;
    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
    for i in 0..MUTANTS {
        let body = rng.pick(&bodies).clone();
        let header = sign_header(&[SAMPLE_SECRET], T0, &body);
        let (kind, h, b) = mutant(&mut rng, &header, &body);
        assert!(
            h != header.as_bytes() || b != body,
            "mutant {i} ({kind}) is the original"
        );
        *kinds.entry(kind).or_default() += 1;
        let h = lambda_http::http::HeaderValue::from_bytes(&h)
            .ok()
            .and_then(|v| v.to_str().ok().map(str::to_owned));
        let out = AssertUnwindSafe(handle_webhook(&d, h.as_deref(), &b))
            .catch_unwind()
            .await;
        match out {
            Ok(out) => assert_eq!(
                out.status, 400,
                "mutant {i} of seed {SEED:#x} ({kind}) was answered {} {}",
                out.status, out.body
            ),
            Err(_) => panics += 1,
        }
    }
    println!("I2: {MUTANTS} mutants (seed {SEED:#x}): {kinds:?}; {panics} panics");
    assert_eq!(panics, 0);
    assert!(
        d.queue.take_all().await.is_empty(),
        "a tampered delivery was queued"
    );
    // The rig accepts the untouched deliveries, so "nothing queued" is not an artefact of it.
    for body in &bodies {
        let header = sign_header(&[SAMPLE_SECRET], T0, body);
        assert_eq!(handle_webhook(&d, Some(&header), body).await.status, 200);
    }
    assert_eq!(d.queue.take_all().await.len(), bodies.len());
}

/// The flip that found the upper-case hex bug, on its own.
#[tokio::test]
async fn i2_an_upper_case_signature_is_rejected() {
    let (q, s) = Embedded::fresh(ledgerbridge_core::message::SQS_MAX_MESSAGE_BYTES).await;
    let d = deps(q, s, FixedClock::at_secs(T0));
    let body = event_body("customer.created.json");
    let header = sign_header(&[SAMPLE_SECRET], T0, &body);
    let (t, v1) = header.split_once(",v1=").unwrap();
    let upper = format!("{t},v1={}", v1.to_ascii_uppercase());
    assert_ne!(upper, header);
    let out = handle_webhook(&d, Some(&upper), &body).await;
    assert_eq!(out.status, 400, "{}", out.body);
    assert!(d.queue.take_all().await.is_empty());
}
