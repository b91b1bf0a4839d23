//! ERP → Stripe customer changes: a signed ERP-side event updates the Stripe customer exactly
//! once (delivered twice), the `customer.updated` Stripe sends back is not posted to the ERP
//! again, a bad signature queues nothing, an unknown ERP customer is parked, an older change is
//! skipped.

use crate::intake::{Embedded, TestQueue};
use crate::pipeline::{epicor, pump, rig, sandbox, seeded_fake};
use crate::support::fixtures::event_body;
use ledgerbridge_adapters::embedded::MemoryQueue;
use ledgerbridge_core::ids::StripeObjectId;
use ledgerbridge_core::message::SQS_MAX_MESSAGE_BYTES;
use ledgerbridge_core::ports::XrefStore;
use ledgerbridge_core::secrets::Secret;
use ledgerbridge_core::webhook::{sign_header, Verifier};
use ledgerbridge_core::SystemClock;
use ledgerbridge_erp::{post_command, AnyConnector, DocKind, ExternalRef, RetryPolicy};
use ledgerbridge_erp_sandbox::{ErpKind, SandboxHandle};
use ledgerbridge_pipeline::to_stripe::poll::ErpPoll;
use ledgerbridge_pipeline::to_stripe::sync::{handle_erp_event, ErpSyncStage, SyncReport};
use serde_json::{json, Value};

const ERP_SECRET: &str = "lbsec_test_erp_events_0000";
const NOW: i64 = 1_786_000_000;
const CUS: &str = "cus_NHQM1cjewvnnbv";

fn change(code: &str, changed_at: i64) -> Vec<u8> {
    json!({
        "type": "erp_customer_changed.v1", "erp": "epicor", "customer_code": code,
        "name": "Northwind Traders (Leeds)", "email": "ledger@northwind-traders.example",
        "address": {"line1": "1 Wharf St", "city": "Leeds", "postal_code": "LS1 4AP", "country": "GB"},
        "changed_at": changed_at
    })
    .to_string()
    .into_bytes()
}

/// A `customer.updated` event as Stripe sends it after an update, with `previous`.
fn customer_updated(id: &str, created: i64, name: &str, previous: Value) -> Vec<u8> {
    let mut e: Value = serde_json::from_slice(&event_body("customer.updated.json")).unwrap();
    e["id"] = json!(id);
    e["created"] = json!(created);
    e["data"]["object"]["name"] = json!(name);
    e["data"]["previous_attributes"] = previous;
    e.to_string().into_bytes()
}

fn updates(sb: &ledgerbridge_erp_sandbox::SandboxHandle) -> usize {
    sb.audit(Some(ErpKind::Epicor))
        .unwrap()
        .iter()
        .filter(|a| a.action == "update")
        .count()
}

#[tokio::test]
async fn an_erp_customer_edit_reaches_stripe_exactly_once_without_echo() {
    let sb = sandbox(ErpKind::Epicor).await;
    let fake = seeded_fake();
    let base = fake.serve().await;
    let rig = rig::<Embedded, _>(epicor(&sb), &base, NOW).await;

    // The customer reaches the ERP from Stripe first: that records the cross-references.
    rig.deliver(&event_body("customer.created.json")).await;
    rig.run(2).await;
    assert!(rig.parked().await.is_empty());
    let store = rig.post.poster.store.clone();
    let code = store
        .get_xref(&StripeObjectId::new(CUS), "customer_code")
        .await
        .unwrap()
        .expect("customer code cross-referenced")
        .erp_id
        .into_inner();

    let verifier = Verifier::new(&[Secret::new(ERP_SECRET.to_owned())]).unwrap();
    let erp_events = MemoryQueue::new(SQS_MAX_MESSAGE_BYTES);
    let parked = MemoryQueue::new(SQS_MAX_MESSAGE_BYTES);
    let stage = ErpSyncStage {
        store: store.clone(),
        stripe: rig.stripe.clone(),
        clock: SystemClock,
        parked: parked.clone(),
        lease_ms: 30_000,
        intent_days: 90,
    };
    let send = |body: Vec<u8>, secret: &'static str| {
        let (verifier, erp_events) = (&verifier, &erp_events);
        async move {
            let header = sign_header(&[secret], NOW, &body);
            handle_erp_event(verifier, erp_events, Some(&header), &body, NOW).await
        }
    };

    // A bad signature (wrong secret), a missing one and a stale one: 400, nothing queued.
    let edit = change(&code, NOW - 60);
    assert_eq!(send(edit.clone(), "lbsec_wrong").await.status, 400);
    let none = handle_erp_event(&verifier, &erp_events, None, &edit, NOW).await;
    assert_eq!(none.status, 400);
    let stale = sign_header(&[ERP_SECRET], NOW - 301, &edit);
    let old = handle_erp_event(&verifier, &erp_events, Some(&stale), &edit, NOW).await;
    assert_eq!(old.status, 400);
    // A signed body that is not a valid change: 400, nothing queued.
    let invalid =
        br#"{"type":"erp_customer_changed.v1","erp":"epicor","customer_code":"","changed_at":1}"#;
    assert_eq!(send(invalid.to_vec(), ERP_SECRET).await.status, 400);
    assert!(erp_events.take_all().await.is_empty());

    // The same ERP edit delivered twice: one Stripe update.
    assert_eq!(send(edit.clone(), ERP_SECRET).await.status, 200);
    assert_eq!(send(edit.clone(), ERP_SECRET).await.status, 200);
    pump(&erp_events, 2, |m| {
        let stage = &stage;
        async move { stage.process(&m).await }
    })
    .await;
    assert!(parked.take_all().await.is_empty());
    let ups = fake.customer_updates();
    assert_eq!(ups.len(), 1, "customer updates sent to Stripe: {ups:?}");
    let (id, key, body) = &ups[0];
    assert_eq!(id, CUS);
    assert!(key.contains(&code) && key.contains(&(NOW - 60).to_string()));
    for field in [
        "name=Northwind",
        "email=ledger%40northwind-traders.example",
        "address%5Bcity%5D=Leeds",
        "metadata%5Bledgerbridge_erp_sync%5D=",
    ] {
        assert!(body.contains(field), "{field} not in {body}");
    }

    // An older change arriving late is skipped; Stripe is not called.
    assert_eq!(send(change(&code, NOW - 120), ERP_SECRET).await.status, 200);
    pump(&erp_events, 1, |m| {
        let stage = &stage;
        async move { stage.process(&m).await }
    })
    .await;
    assert_eq!(fake.customer_updates().len(), 1);

    // The update's echo from Stripe is not posted back to the ERP …
    let before = updates(&sb);
    let echo = customer_updated(
        "evt_erp_sync_echo_1",
        NOW - 50,
        "Northwind Traders (Leeds)",
        json!({"name": "Northwind Traders", "address": {"city": "San Francisco"},
               "metadata": {"ledgerbridge_erp_sync": null}}),
    );
    rig.deliver(&echo).await;
    rig.run(2).await;
    assert_eq!(
        updates(&sb),
        before,
        "the ERP's own change went back to the ERP"
    );
    // … while a change made in Stripe still is (the check above can fail).
    let user = customer_updated(
        "evt_user_edit_1",
        NOW - 40,
        "Northwind Traders Ltd",
        json!({"name": "Northwind Traders (Leeds)"}),
    );
    rig.deliver(&user).await;
    rig.run(2).await;
    assert_eq!(updates(&sb), before + 1);
    assert!(rig.parked().await.is_empty());

    // An ERP customer with no Stripe customer: accepted, then parked with the reason.
    assert_eq!(
        send(change("NOPE-1", NOW - 10), ERP_SECRET).await.status,
        200
    );
    pump(&erp_events, 1, |m| {
        let stage = &stage;
        async move { stage.process(&m).await }
    })
    .await;
    let p = parked.take_all().await;
    assert_eq!(p.len(), 1);
    assert!(
        p[0].contains("no Stripe customer cross-reference"),
        "parked: {p:?}"
    );
    assert_eq!(fake.customer_updates().len(), 1);
}

/// GIVEN a customer that reached the ERP from Stripe WHEN the scheduled poll lists ERP
/// customers changed since its cursor THEN ledgerbridge's own write (same values as Stripe)
/// sends nothing to Stripe; an edit made in the ERP reaches Stripe exactly once, also when the
/// next poll reads it again; an ERP-only customer is left alone; a customer ledgerbridge created
/// before the reverse cross-reference existed is relinked through its reference field.
async fn scheduled_poll(erp: ErpKind, make: fn(&SandboxHandle) -> AnyConnector) {
    let sb = sandbox(erp).await;
    let fake = seeded_fake();
    let base = fake.serve().await;
    let rig = rig::<Embedded, _>(make(&sb), &base, NOW).await;
    // Created, then updated in Stripe: the ERP holds what Stripe holds now.
    rig.deliver(&event_body("customer.created.json")).await;
    rig.run(2).await;
    rig.deliver(&event_body("customer.updated.json")).await;
    rig.run(2).await;
    assert!(rig.parked().await.is_empty());
    let store = rig.post.poster.store.clone();
    let code = store
        .get_xref(&StripeObjectId::new(CUS), "customer_code")
        .await
        .unwrap()
        .expect("customer code cross-referenced")
        .erp_id
        .into_inner();
    let erp_events = MemoryQueue::new(SQS_MAX_MESSAGE_BYTES);
    let parked = MemoryQueue::new(SQS_MAX_MESSAGE_BYTES);
    let poll = ErpPoll {
        connector: make(&sb),
        store: store.clone(),
        queue: erp_events.clone(),
        overlap_secs: 120,
        first_run_secs: 3_600,
        limit: 100,
    };
    let stage = ErpSyncStage {
        store: store.clone(),
        stripe: rig.stripe.clone(),
        clock: SystemClock,
        parked: parked.clone(),
        lease_ms: 30_000,
        intent_days: 90,
    };
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    };
    let run = || async {
        let report = poll.poll(now()).await.unwrap();
        let mut outcomes = Vec::new();
        for m in erp_events.take_all().await {
            outcomes.push(stage.process_detailed(&m).await);
        }
        (report, outcomes)
    };

    // 1. The customer ledgerbridge created is listed, but Stripe already shows its values.
    let (report, outcomes) = run().await;
    assert!(report.listed >= 1 && report.queued == 1, "{report:?}");
    assert!(
        matches!(outcomes[..], [SyncReport::Unchanged { .. }]),
        "{outcomes:?}"
    );
    assert!(fake.customer_updates().is_empty());

    // 2. A user renames the customer in the ERP: one Stripe update with the new name.
    let field = match erp {
        ErpKind::Epicor => "Name",
        ErpKind::SagePro => "name",
        ErpKind::Sage500 => "CustName",
    };
    let mut patch = serde_json::Map::new();
    patch.insert(field.into(), json!("Northwind Traders (ERP)"));
    assert!(sb.edit_customer(erp, &code, &patch).unwrap());
    let (report, outcomes) = run().await;
    assert_eq!(report.queued, 1, "{report:?}");
    assert!(
        matches!(&outcomes[..], [SyncReport::Updated { stripe_customer }] if stripe_customer == CUS),
        "{outcomes:?}"
    );
    let ups = fake.customer_updates();
    assert_eq!(ups.len(), 1, "{ups:?}");
    assert!(
        ups[0].2.contains("name=Northwind+Traders+%28ERP%29"),
        "{}",
        ups[0].2
    );

    // 3. The next run reads it again (overlap): no second update.
    let (report, outcomes) = run().await;
    assert!(report.queued >= 1);
    assert!(
        outcomes.iter().all(|o| matches!(o, SyncReport::Duplicate)),
        "{outcomes:?}"
    );
    assert_eq!(fake.customer_updates().len(), 1);

    // 4. An ERP-only customer edited in the ERP: left alone.
    let mut own = ledgerbridge_erp::ErpCommand::UpsertCustomer(ledgerbridge_erp::CustomerUpsert {
        reference: ExternalRef::new(&StripeObjectId::new("erp_only_E77"), DocKind::Customer)
            .unwrap(),
        customer_id: "E77".into(),
        name: "Walk-in Trade".into(),
        email: Some("walkin@example.com".into()),
        currency: ledgerbridge_core::Currency::USD,
        address: Default::default(),
        phone: None,
    });
    post_command(&make(&sb), &own, &RetryPolicy::default())
        .await
        .unwrap();
    let (report, _) = run().await;
    assert!(report.not_linked >= 1, "{report:?}");
    assert_eq!(fake.customer_updates().len(), 1);

    // 5. A customer created by ledgerbridge without a reverse cross-reference (an older
    //    version): relinked through its reference and updated once.
    if let ledgerbridge_erp::ErpCommand::UpsertCustomer(c) = &mut own {
        c.reference = ExternalRef::new(
            &StripeObjectId::new("cus_v2hTtpvHRTXjHs"),
            DocKind::Customer,
        )
        .unwrap();
        c.customer_id = "CONTOSO1".into();
        c.name = "Contoso Retail GmbH".into();
    }
    post_command(&make(&sb), &own, &RetryPolicy::default())
        .await
        .unwrap();
    let (report, _) = run().await;
    assert_eq!(report.relinked, 1, "{report:?}");
    let ups = fake.customer_updates();
    assert_eq!(ups.len(), 2, "{ups:?}");
    assert_eq!(ups[1].0, "cus_v2hTtpvHRTXjHs");
    assert!(parked.take_all().await.is_empty());
    sb.shutdown().await;
}

#[tokio::test]
async fn scheduled_poll_epicor() {
    scheduled_poll(ErpKind::Epicor, epicor).await;
}

#[tokio::test]
async fn scheduled_poll_sagepro() {
    scheduled_poll(ErpKind::SagePro, crate::pipeline::sagepro).await;
}

#[tokio::test]
async fn scheduled_poll_sage500() {
    scheduled_poll(ErpKind::Sage500, crate::pipeline::sage500).await;
}
