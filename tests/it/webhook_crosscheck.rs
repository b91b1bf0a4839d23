//! Our verifier against the official Stripe libraries: headers signed by stripe-node verify
//! with ours (including a two-secret rotation in both orders), and headers we sign verify with
//! stripe-python.

use crate::support::fixtures::{deliveries, event_body, SAMPLE_SECRET};
use crate::support::stripe_libs::{node_sign, python_verify};
use ledgerbridge_core::secrets::Secret;
use ledgerbridge_core::webhook::{sign_header, Verifier, WebhookError};
use std::time::{SystemTime, UNIX_EPOCH};

fn verifier(secrets: &[&str]) -> Verifier {
    let list: Vec<Secret<String>> = secrets
        .iter()
        .map(|s| Secret::new((*s).to_owned()))
        .collect();
    Verifier::new(&list).unwrap()
}

fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

#[test]
fn recorded_sample_signatures_verify_at_their_delivery_time() {
    let v = verifier(&[SAMPLE_SECRET]);
    for d in deliveries() {
        assert!(
            v.verify(Some(&d.signature), &d.body, d.received_at).is_ok(),
            "{}",
            d.file
        );
        assert!(matches!(
            v.verify(Some(&d.signature), &d.body, d.received_at + 400),
            Err(WebhookError::Stale { .. })
        ));
    }
}

#[test]
fn headers_from_stripe_node_verify_including_rotation_in_both_orders() {
    let old = "whsec_rotation_old_0001";
    let new = "whsec_rotation_new_0002";
    let t = now();
    let payloads: Vec<String> = [
        "charge.succeeded.json",
        "invoice.paid.json",
        "customer.created.json",
    ]
    .iter()
    .map(|f| String::from_utf8(event_body(f)).unwrap())
    .collect();
    let mut requests = Vec::new();
    for p in &payloads {
        requests.push((p.clone(), vec![old.to_owned()], t));
        requests.push((p.clone(), vec![old.to_owned(), new.to_owned()], t));
        requests.push((p.clone(), vec![new.to_owned(), old.to_owned()], t));
    }
    let headers = node_sign(&requests);
    assert_eq!(headers.len(), requests.len());
    for ((payload, secrets, _), header) in requests.iter().zip(&headers) {
        assert_eq!(header.matches("v1=").count(), secrets.len(), "{header}");
        // A deployment that knows only one of the active secrets, or both in either order.
        for configured in [&[old][..], &[new], &[old, new], &[new, old]] {
            let expect_ok = configured.iter().any(|c| secrets.iter().any(|s| s == c));
            let got = verifier(configured).verify(Some(header), payload.as_bytes(), t);
            assert_eq!(
                got.is_ok(),
                expect_ok,
                "secrets {secrets:?}, configured {configured:?}: {got:?}"
            );
        }
        // A body that differs by one byte is rejected.
        let mut tampered = payload.clone().into_bytes();
        tampered[20] ^= 1;
        assert_eq!(
            verifier(&[old, new]).verify(Some(header), &tampered, t),
            Err(WebhookError::Mismatch)
        );
    }
}

#[test]
fn headers_we_sign_verify_with_stripe_python() {
    let t = now();
    let body = String::from_utf8(event_body("payment_intent.succeeded.json")).unwrap();
    let ours = sign_header(&["whsec_py_a", "whsec_py_b"], t, body.as_bytes());
    let stale = sign_header(&["whsec_py_a"], t - 400, body.as_bytes());
    let results = python_verify(&[
        (body.clone(), ours.clone(), "whsec_py_a".into()),
        (body.clone(), ours.clone(), "whsec_py_b".into()),
        (body.clone(), ours.clone(), "whsec_py_c".into()),
        (
            body.replace("succeeded", "failed"),
            ours,
            "whsec_py_a".into(),
        ),
        (body.clone(), stale, "whsec_py_a".into()),
    ]);
    assert_eq!(results[0], "ok");
    assert_eq!(results[1], "ok");
    assert!(results[2].starts_with("error"), "{results:?}");
    assert!(results[3].starts_with("error"), "{results:?}");
    assert!(results[4].starts_with("error"), "{results:?}");
}
