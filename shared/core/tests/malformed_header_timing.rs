//! The time `Verifier::verify` takes to reject a malformed `Stripe-Signature` header (fault
//! matrix row I5: p99 < 50 µs). Ignored by default: the figure means something only in an
//! optimised build. Run with
//! `cargo test --release -p ledgerbridge-core --test malformed_header_timing -- --ignored --nocapture`.
//! The panic and rejection counts over 100,000 seeded headers are asserted by the integration
//! test `faults::i5`; here every header must be rejected too, and the percentiles are printed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ledgerbridge_core::secrets::Secret;
use ledgerbridge_core::webhook::{Verifier, MAX_HEADER_BYTES};
use std::time::Instant;

const BODY: &[u8] = include_bytes!("../../../tests/fixtures/stripe/events/customer.created.json");
const T0: i64 = 1_785_000_000;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn hex64(&mut self) -> String {
        (0..4).map(|_| format!("{:016x}", self.next())).collect()
    }
}

fn header(rng: &mut Rng) -> Option<String> {
    let t = T0 - rng.below(200) as i64;
    Some(match rng.below(9) {
        0 => return None,
        1 => String::new(),
        2 => format!("v1={}", rng.hex64()),
        3 => format!("t={t},v1={},t={t}", rng.hex64()),
        4 => format!("t=x{t},v1={}", rng.hex64()),
        5 => {
            let target = MAX_HEADER_BYTES - 200 + rng.below(400);
            let mut h = format!("t={t}");
            while h.len() < target {
                h.push_str(",v1=");
                h.push_str(&rng.hex64());
            }
            h
        }
        6 => format!("t={t}é,v1={}😀", rng.hex64()),
        7 => format!("t={t},v1={},v0={}", rng.hex64(), rng.hex64()),
        _ => format!("t={t},v1={}", &rng.hex64()[..63]),
    })
}

#[test]
#[ignore = "a timing figure: run in an optimised build with --ignored"]
fn malformed_headers_are_rejected_quickly() {
    let verifier = Verifier::new(&[Secret::new("whsec_timing".to_owned())]).unwrap();
    let mut rng = Rng(0x15);
    let headers: Vec<Option<String>> = (0..100_000).map(|_| header(&mut rng)).collect();
    let mut times = Vec::with_capacity(headers.len());
    for h in &headers {
        let started = Instant::now();
        let out = verifier.verify(h.as_deref(), BODY, T0);
        times.push(started.elapsed());
        assert!(out.is_err(), "{h:?}");
    }
    times.sort_unstable();
    let pct = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
    println!(
        "verify of {} malformed headers: p50 {:?} p99 {:?} max {:?} ({} build)",
        times.len(),
        pct(50),
        pct(99),
        times[times.len() - 1],
        if cfg!(debug_assertions) {
            "unoptimised"
        } else {
            "optimised"
        }
    );
}
