//! I4 — secret rotation: while an endpoint secret is rolled, Stripe sends one `v1` per active
//! secret; a `v0` (test-mode scheme) may ride along. Every order of {`v1` old, `v1` new, `v0`}
//! is accepted whether the endpoint holds the old secret, the new one, or both; a header with
//! only a `v0` (however validly computed) is rejected. Figure (at figure): **6/6 permutations
//! accepted, only-v0 rejected** (for each of the three endpoint configurations). A regression
//! guard: verifiers that take the first `v1` only fail the permutations where it is the other
//! secret's.

use crate::intake::{deps, Backend, Embedded, TestQueue};
use crate::support::fixtures::event_body;
use ledgerbridge_core::webhook::compute_v1;
use ledgerbridge_core::FixedClock;
use ledgerbridge_intake::{handle_webhook, RotatingVerifier};

const T0: i64 = 1_785_000_000;
const OLD: &str = "whsec_i4_old_secret_0000000000000000";
const NEW: &str = "whsec_i4_new_secret_1111111111111111";

fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out = Vec::new();
    for i in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(i);
        for mut p in permutations(&rest) {
            p.insert(0, first.clone());
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn i4_every_rotation_order_is_accepted_and_v0_alone_is_not() {
    let base = String::from_utf8(event_body("customer.created.json")).unwrap();
    for (config, secrets) in [
        ("old secret", &[OLD][..]),
        ("new secret", &[NEW]),
        ("both secrets", &[NEW, OLD]),
    ] {
        let (q, s) = Embedded::fresh(ledgerbridge_core::message::SQS_MAX_MESSAGE_BYTES).await;
        let mut d = deps(q, s, FixedClock::at_secs(T0));
        d.verifier = RotatingVerifier::fixed(secrets);
        let mut accepted = 0;
        let perms = permutations(&["v1 old", "v1 new", "v0"]);
        assert_eq!(perms.len(), 6);
        for (n, order) in perms.iter().enumerate() {
            let body = base
                .replace("evt_", &format!("evt_i4{}p{n}x", config.len()))
                .into_bytes();
            let mut header = format!("t={T0}");
            for element in order {
                let (scheme, secret) = match *element {
                    "v1 old" => ("v1", OLD),
                    "v1 new" => ("v1", NEW),
                    _ => ("v0", NEW),
                };
                header.push_str(&format!(",{scheme}={}", compute_v1(secret, T0, &body)));
            }
            let out = handle_webhook(&d, Some(&header), &body).await;
            assert_eq!(out.status, 200, "{config}, order {order:?}: {}", out.body);
            assert!(!out.body.contains("duplicate"));
            accepted += 1;
        }
        assert_eq!(accepted, 6, "{config}: 6/6 permutations accepted");
        // Only a v0, computed with each configured secret: rejected.
        for secret in secrets {
            let body = base.replace("evt_", "evt_i4v0only").into_bytes();
            let header = format!("t={T0},v0={}", compute_v1(secret, T0, &body));
            let out = handle_webhook(&d, Some(&header), &body).await;
            assert_eq!((out.status, out.body), (400, "no v1 signature"), "{config}");
        }
        assert_eq!(d.queue.take_all().await.len(), 6, "{config}");
    }
}
