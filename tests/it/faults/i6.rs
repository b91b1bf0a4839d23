//! I6 — raw-body mangling on the way in: API Gateway hands the body to the function either as
//! text or base64 (`isBase64Encoded`), in the REST API (payload 1.0) or HTTP API (payload 2.0)
//! event shape. The signature must be checked on the exact bytes Stripe sent, whatever the
//! body holds: CRLF line ends, UTF-8 (é, emoji), pretty-printed or compact JSON, a trailing
//! newline. Each variant is wrapped in the event fixtures of `tests/fixtures/apigw` (AWS's
//! published example events), decoded by `lambda_http` exactly as the deployed function
//! decodes it, and answered by the function's own request handler
//! (`ledgerbridge_intake::routes::handle_request`). Figure (at figure): **100 % of the fixture
//! variants verify** (5 bodies × 2 shapes × text/base64 = 20), and the event queued is the
//! exact body. A control proves the check is on the exact bytes: the CRLF body with its line
//! ends normalised to LF is rejected.
//!
//! Found by this row and fixed: the workspace built `lambda_http` with the HTTP API shape only,
//! so a REST API (payload 1.0) event did not even deserialize; the `apigw_rest` feature is on
//! now, and the function accepts both shapes.

use crate::intake::{deps, Backend, Embedded, TestQueue};
use crate::support::fixtures::{event_body, fixtures_dir, SAMPLE_SECRET};
use base64::Engine as _;
use ledgerbridge_core::webhook::sign_header;
use ledgerbridge_core::FixedClock;
use ledgerbridge_intake::routes::{handle_request, App};
use ledgerbridge_messages::IntakeMessage;
use serde_json::Value;

const T0: i64 = 1_785_000_000;

/// The body variants, each a distinct event (its own id).
fn bodies() -> Vec<(&'static str, Vec<u8>)> {
    let pretty = String::from_utf8(event_body("customer.created.json")).unwrap();
    let v: Value = serde_json::from_str(&pretty).unwrap();
    let id = v["id"].as_str().unwrap().to_owned();
    let with_id = |text: &str, tag: &str| text.replace(&id, &format!("{id}i6{tag}"));
    let compact = serde_json::to_string(&v).unwrap();
    let utf8 = pretty.replacen(
        &format!("\"name\": {}", v["data"]["object"]["name"]),
        "\"name\": \"Renée Çelik-Øster 😀 Zürich Café ☕\"",
        1,
    );
    assert_ne!(utf8, pretty, "the fixture has a name to replace");
    vec![
        ("pretty-printed", with_id(&pretty, "pretty").into_bytes()),
        ("compact", with_id(&compact, "compact").into_bytes()),
        (
            "CRLF",
            with_id(&pretty, "crlf").replace('\n', "\r\n").into_bytes(),
        ),
        ("UTF-8 é and emoji", with_id(&utf8, "utf8").into_bytes()),
        (
            "tabs and a trailing newline",
            format!("{}\n", with_id(&pretty, "tabs").replace("  ", "\t")).into_bytes(),
        ),
    ]
}

/// `body` signed, wrapped in the `shape` fixture as text or base64.
fn event(shape: &str, body: &[u8], signature: &str, base64: bool) -> String {
    let mut ev: Value =
        serde_json::from_slice(&std::fs::read(fixtures_dir().join("apigw").join(shape)).unwrap())
            .unwrap();
    ev["body"] = if base64 {
        Value::String(base64::engine::general_purpose::STANDARD.encode(body))
    } else {
        Value::String(String::from_utf8(body.to_vec()).unwrap())
    };
    ev["isBase64Encoded"] = Value::Bool(base64);
    if shape == "rest-v1.json" {
        ev["headers"]["Stripe-Signature"] = Value::String(signature.to_owned());
        ev["multiValueHeaders"]["Stripe-Signature"] = serde_json::json!([signature]);
    } else {
        ev["headers"]["stripe-signature"] = Value::String(signature.to_owned());
    }
    ev.to_string()
}

#[tokio::test]
async fn i6_every_api_gateway_variant_verifies_on_the_exact_bytes() {
    let (q, s) = Embedded::fresh(ledgerbridge_core::message::SQS_MAX_MESSAGE_BYTES).await;
    let app = App {
        intake: deps(q, s, FixedClock::at_secs(T0)),
        erp: None,
    };
    let mut verified = 0;
    let mut variants = 0;
    for (what, body) in bodies() {
        let signature = sign_header(&[SAMPLE_SECRET], T0, &body);
        for shape in ["rest-v1.json", "http-v2.json"] {
            for base64 in [false, true] {
                variants += 1;
                let req = lambda_http::request::from_str(&event(shape, &body, &signature, base64))
                    .unwrap_or_else(|e| panic!("{shape} does not deserialize: {e}"));
                assert_eq!(req.body().as_ref(), &body[..], "{what} {shape} {base64}");
                let resp = handle_request(&app, req).await.unwrap();
                let status = resp.status().as_u16();
                assert_eq!(
                    status,
                    200,
                    "{what} in {shape} (base64: {base64}): {:?}",
                    resp.body()
                );
                verified += 1;
            }
        }
        // Four deliveries of one event: queued once, with the exact bytes.
        let queued = app.intake.queue.take_all().await;
        assert_eq!(queued.len(), 1, "{what}");
        match IntakeMessage::decode(&queued[0]).unwrap() {
            IntakeMessage::StripeEventV1(m) => assert!(
                m.event.get().as_bytes() == body.trim_ascii_end(),
                "{what}: the queued event is not the exact body"
            ),
            other => panic!("{what}: {other:?}"),
        }
    }
    println!("I6: {verified}/{variants} API Gateway variants verified");
    assert_eq!(verified, 20);

    // Control: the same CRLF event with its line ends normalised does not verify.
    let (_, crlf) = bodies().remove(2);
    let signature = sign_header(&[SAMPLE_SECRET], T0, &crlf);
    let normalised = String::from_utf8(crlf).unwrap().replace("\r\n", "\n");
    for shape in ["rest-v1.json", "http-v2.json"] {
        let req =
            lambda_http::request::from_str(&event(shape, normalised.as_bytes(), &signature, false))
                .unwrap();
        let resp = handle_request(&app, req).await.unwrap();
        assert_eq!(resp.status().as_u16(), 400, "{shape}");
    }
    assert!(app.intake.queue.take_all().await.is_empty());
}
