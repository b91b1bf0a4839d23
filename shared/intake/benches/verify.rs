//! Intake CPU cost per event: `Stripe-Signature` verification plus envelope parsing, on one
//! core. Run with `cargo bench -p ledgerbridge-intake --bench verify`.
//!
//! Prints ns/event and events/s for the sample events (best of 5 runs), so the figure in the
//! README can be re-checked on any machine.
#![allow(clippy::float_arithmetic)] // timing figures, not money
#![allow(clippy::expect_used)] // a bench aborts loudly on broken fixtures

use ledgerbridge_core::event::EnvelopeHead;
use ledgerbridge_core::secrets::Secret;
use ledgerbridge_core::webhook::{sign_header, Verifier};
use ledgerbridge_messages::stripe_event::encode_event_v1;
use std::hint::black_box;
use std::time::Instant;

const ITERATIONS: u32 = 200_000;
const RUNS: usize = 5;

fn best_ns_per_op(mut f: impl FnMut()) -> f64 {
    (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..ITERATIONS {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(ITERATIONS)
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let secret = "whsec_bench_secret_0000";
    let verifier = Verifier::new(&[Secret::new(secret.to_owned())]).expect("verifier");
    let rotating = Verifier::new(&[
        Secret::new("whsec_old".to_owned()),
        Secret::new(secret.to_owned()),
    ])
    .expect("verifier");
    let samples: [(&str, &[u8]); 2] = [
        (
            "payment_intent.succeeded",
            include_bytes!("../../../tests/fixtures/stripe/events/payment_intent.succeeded.json"),
        ),
        (
            "charge.succeeded",
            include_bytes!("../../../tests/fixtures/stripe/events/charge.succeeded.json"),
        ),
    ];
    let t = 1_785_000_000;
    println!("intake verify+parse, one core, best of {RUNS} x {ITERATIONS}");
    for (name, body) in samples {
        let header = sign_header(&[secret], t, body);
        let verify_parse = best_ns_per_op(|| {
            let ok = verifier
                .verify(Some(black_box(&header)), black_box(body), t)
                .is_ok();
            let head = EnvelopeHead::parse(black_box(body)).expect("parse");
            black_box((ok, head.id.len()));
        });
        let rotation = best_ns_per_op(|| {
            let ok = rotating
                .verify(Some(black_box(&header)), black_box(body), t)
                .is_ok();
            let head = EnvelopeHead::parse(black_box(body)).expect("parse");
            black_box((ok, head.id.len()));
        });
        let with_message = best_ns_per_op(|| {
            let ok = verifier
                .verify(Some(black_box(&header)), black_box(body), t)
                .is_ok();
            let head = EnvelopeHead::parse(black_box(body)).expect("parse");
            let msg = encode_event_v1(&head, body, 0).expect("encode");
            black_box((ok, msg.len()));
        });
        // The handler's whole CPU work per event: verify (the HMAC), parse the envelope once,
        // the payload fingerprint the dedupe record keeps, and the queue message.
        let handler = best_ns_per_op(|| {
            let ok = verifier
                .verify(Some(black_box(&header)), black_box(body), t)
                .is_ok();
            let head = EnvelopeHead::parse(black_box(body)).expect("parse");
            let hash = ledgerbridge_intake::payload_hash(black_box(body));
            let msg = encode_event_v1(&head, body, 0).expect("encode");
            black_box((ok, msg.len(), hash.len()));
        });
        // The same with the earlier fingerprint (a SHA-256 of the body: a second hash).
        let handler_sha256 = best_ns_per_op(|| {
            let ok = verifier
                .verify(Some(black_box(&header)), black_box(body), t)
                .is_ok();
            let head = EnvelopeHead::parse(black_box(body)).expect("parse");
            let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(black_box(body)));
            let msg = encode_event_v1(&head, body, 0).expect("encode");
            black_box((ok, msg.len(), hash.len()));
        });
        println!(
            "{name} ({} B): verify+parse {:.0} ns/event ({:.0} events/s); with two secrets configured {:.0} ns; plus queue message encoding {:.0} ns; the handler's CPU (plus the XXH3-128 payload fingerprint) {:.0} ns; with a SHA-256 fingerprint instead {:.0} ns",
            body.len(),
            verify_parse,
            1e9 / verify_parse,
            rotation,
            with_message,
            handler,
            handler_sha256
        );
    }
}
