//! The ERP → Stripe customer path on the stack the template creates (deployed into moto):
//! webhook-intake's `POST /erp/customers` route and the erp-sync function, each built the way its
//! `main` builds it, from the environment the template gives it. The SQS event source is played
//! by the test (moto does not invoke functions).

use crate::stack::{deploy_with_secrets, env_of};
use crate::support::fake_stripe::FakeStripe;
use crate::support::fixtures::{event_body, SAMPLE_SECRET};
use crate::support::moto;
use ledgerbridge_adapters::aws::DynamoStore;
use ledgerbridge_app::erp_sync::ErpSyncConfig;
use ledgerbridge_core::config::SecretLocation;
use ledgerbridge_core::ids::StripeObjectId;
use ledgerbridge_core::ports::{ReverseLink, ReverseLinkStore};
use ledgerbridge_core::webhook::sign_header;
use ledgerbridge_core::{Clock, SystemClock};
use ledgerbridge_intake::routes::{aws::build, handle_request, ErpRouteConfig, ERP_CUSTOMERS_PATH};
use ledgerbridge_pipeline::to_stripe::sync::{ErpMessage, SIGNATURE_HEADER};
use serde_json::{json, Value};

const ERP_SECRET: &str = "lbsec_stack_erp_events_new";
const ERP_SECRET_OLD: &str = "lbsec_stack_erp_events_old";
const CUS: &str = "cus_NHQM1cjewvnnbv";

/// An API Gateway HTTP API (payload v2) request as the `$default` stage delivers it.
fn request(path: &str, header: (&str, &str), body: &[u8]) -> lambda_http::Request {
    let event = json!({
        "version": "2.0",
        "routeKey": format!("POST {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": {header.0: header.1, "content-type": "application/json"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "x.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "x", "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1", "userAgent": "test"}, "requestId": "r", "routeKey": format!("POST {path}"),
            "stage": "$default", "time": "24/Nov/2026:12:00:00 +0000", "timeEpoch": 1_785_000_000_000i64
        },
        "body": String::from_utf8(body.to_vec()).unwrap(),
        "isBase64Encoded": false
    });
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

fn change(changed_at: i64) -> Vec<u8> {
    json!({
        "type": "erp_customer_changed.v1", "erp": "epicor", "customer_code": "C042",
        "name": "Northwind Traders (Leeds)", "email": "ledger@northwind-traders.example",
        "address": {"line1": "1 Wharf St", "city": "Leeds", "postal_code": "LS1 4AP", "country": "GB"},
        "changed_at": changed_at
    })
    .to_string()
    .into_bytes()
}

/// An SQS batch as the event source hands it to the function.
fn batch(bodies: &[(String, String)]) -> Value {
    let records: Vec<Value> = bodies
        .iter()
        .map(|(id, body)| json!({"messageId": id, "body": body, "eventSource": "aws:sqs"}))
        .collect();
    json!({ "Records": records })
}

#[tokio::test]
async fn erp_events_reach_stripe_once_through_the_stack_resources() {
    let fake = FakeStripe::default();
    // The Stripe customer as it is before the ERP-side change (the sync compares with it).
    fake.put(
        "customers",
        json!({"id": CUS, "object": "customer", "name": "Northwind Traders",
               "email": "ap@northwind-traders.example", "address": null, "metadata": {}}),
    );
    let stripe_base = fake.serve().await;
    let stack = moto::unique("lb-erp");
    let handoff = deploy_with_secrets(
        &stack,
        &[
            ("WebhookSigningSecret", format!("[\"{SAMPLE_SECRET}\"]")),
            (
                "ErpEventSigningSecret",
                format!("[\"{ERP_SECRET}\", \"{ERP_SECRET_OLD}\"]"),
            ),
            ("StripeApiKeySecret", "sk_test_stack".to_owned()),
        ],
    );
    assert_eq!(handoff["stack_status"], "CREATE_COMPLETE");
    let conf = moto::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let erp_url = handoff["queues"]["erp_events"]["url"]
        .as_str()
        .expect("ERP events queue in the hand-off")
        .to_owned();
    let events_url = handoff["queues"]["events"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let parked_url = handoff["queues"]["parked"]["url"]
        .as_str()
        .unwrap()
        .to_owned();

    // webhook-intake, configured only from the stack's environment, built as main builds it.
    let intake_cfg =
        ledgerbridge_intake::config_from_env(env_of(&handoff, "webhook-intake", &[])).unwrap();
    let erp_cfg = ErpRouteConfig::from_env(env_of(&handoff, "webhook-intake", &[]))
        .unwrap()
        .expect("the template configures the ERP route");
    assert_eq!(erp_cfg.queue_url, erp_url);
    assert_eq!(
        erp_cfg.secrets,
        SecretLocation::SecretsManager(
            handoff["secrets"]["erp_event_signing"]
                .as_str()
                .unwrap()
                .to_owned()
        )
    );
    let app = build(&conf, &intake_cfg, Some(&erp_cfg), SystemClock);
    let post = |path: &'static str, header: &'static str, secret: &'static str, body: Vec<u8>| {
        let app = &app;
        async move {
            let sig = sign_header(&[secret], SystemClock.now_secs(), &body);
            handle_request(app, request(path, (header, &sig), &body))
                .await
                .unwrap()
                .status()
        }
    };

    // A bad signature (a secret that is not in the stack's secret): 400, nothing queued.
    let edit = change(SystemClock.now_secs() - 60);
    let status = post(
        ERP_CUSTOMERS_PATH,
        SIGNATURE_HEADER,
        "lbsec_wrong",
        edit.clone(),
    )
    .await;
    assert_eq!(status, 400);
    // Signed with the Stripe secret: not accepted on the ERP route either.
    let status = post(
        ERP_CUSTOMERS_PATH,
        SIGNATURE_HEADER,
        SAMPLE_SECRET,
        edit.clone(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(moto::drain(&sqs, &erp_url).await.is_empty());

    // Signed with the secret stored in the stack: 200 and exactly one message on the ERP queue.
    let status = post(
        ERP_CUSTOMERS_PATH,
        SIGNATURE_HEADER,
        ERP_SECRET,
        edit.clone(),
    )
    .await;
    assert_eq!(status, 200);
    let first = moto::drain(&sqs, &erp_url).await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(ErpMessage::decode(&first[0]).is_ok());
    assert!(moto::drain(&sqs, &events_url).await.is_empty());
    // The older secret of the list is still accepted (rotation): the same event again.
    let status = post(
        ERP_CUSTOMERS_PATH,
        SIGNATURE_HEADER,
        ERP_SECRET_OLD,
        edit.clone(),
    )
    .await;
    assert_eq!(status, 200);
    let second = moto::drain(&sqs, &erp_url).await;
    assert_eq!(second.len(), 1, "{second:?}");

    // erp-sync, configured from the stack's environment; its event source is the ERP queue.
    assert_eq!(
        handoff["functions"]["erp-sync"]["event_sources"][0]["queue_arn"],
        handoff["queues"]["erp_events"]["arn"]
    );
    let sync_cfg = ErpSyncConfig::from_env(env_of(
        &handoff,
        "erp-sync",
        &[("LEDGERBRIDGE_STRIPE_API_BASE", &stripe_base)],
    ))
    .unwrap();
    let sync = ledgerbridge_app::erp_sync::aws::build(&conf, &sync_cfg)
        .await
        .unwrap();
    // The reverse cross-reference erp-post records when it resolves the customer.
    DynamoStore::new(aws_sdk_dynamodb::Client::new(&conf), &sync_cfg.state_table)
        .put_reverse_link_if_absent(&ReverseLink {
            erp: "epicor".into(),
            customer_code: "C042".into(),
            stripe_customer: StripeObjectId::new(CUS),
            created_at_ms: SystemClock.now_millis(),
        })
        .await
        .unwrap();

    // The same event twice in one batch: one Stripe update. Records reported as failed (a
    // concurrent duplicate still holding the claim) are redelivered, as the event source would.
    let mut pending = vec![
        ("m1".to_owned(), first[0].clone()),
        ("m2".to_owned(), second[0].clone()),
    ];
    for _ in 0..10 {
        if pending.is_empty() {
            break;
        }
        let out = sync.handle(batch(&pending)).await.unwrap();
        let failed: Vec<String> = out["batchItemFailures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
            .collect();
        pending.retain(|(id, _)| failed.contains(id));
        if !pending.is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    assert!(pending.is_empty(), "records never succeeded: {pending:?}");
    let ups = fake.customer_updates();
    assert_eq!(ups.len(), 1, "customer updates sent to Stripe: {ups:?}");
    assert_eq!(ups[0].0, CUS);
    assert!(ups[0].1.contains("C042"), "Idempotency-Key {}", ups[0].1);
    assert!(ups[0].2.contains("name=Northwind"), "{}", ups[0].2);
    // A third delivery, later: still the one update.
    let out = sync
        .handle(batch(&[("m3".to_owned(), first[0].clone())]))
        .await
        .unwrap();
    assert_eq!(out["batchItemFailures"], json!([]));
    assert_eq!(fake.customer_updates().len(), 1);
    assert!(moto::drain(&sqs, &parked_url).await.is_empty());

    // The Stripe webhook route of the same function still works, onto the events queue.
    let status = post(
        "/webhook",
        "stripe-signature",
        SAMPLE_SECRET,
        event_body("customer.created.json"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(moto::drain(&sqs, &events_url).await.len(), 1);
    assert!(moto::drain(&sqs, &erp_url).await.is_empty());

    // Without the ERP settings the route answers 404 and queues nothing.
    let no_erp = build(&conf, &intake_cfg, None, SystemClock);
    let body = change(SystemClock.now_secs() - 30);
    let sig = sign_header(&[ERP_SECRET], SystemClock.now_secs(), &body);
    let resp = handle_request(
        &no_erp,
        request(ERP_CUSTOMERS_PATH, (SIGNATURE_HEADER, &sig), &body),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 404);
    assert!(moto::drain(&sqs, &erp_url).await.is_empty());
}
