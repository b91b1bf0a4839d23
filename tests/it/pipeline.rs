//! Stripe events through intake → transform → erp-post into each ERP's sandbox: the sample
//! stream on moto-backed queues and tables, and 1,000-event runs with duplicated deliveries,
//! lost ERP responses and shuffled order on the embedded adapters.

use crate::intake::{Aws, Backend, Embedded, TestQueue};
use crate::support::fake_stripe::FakeStripe;
use crate::support::fixtures::{event_body, SAMPLE_SECRET};
use ledgerbridge_adapters::lambda::RecordOutcome;
use ledgerbridge_core::ids::StripeObjectId;
use ledgerbridge_core::message::SQS_MAX_MESSAGE_BYTES;
use ledgerbridge_core::ports::IdempotencyStore;
use ledgerbridge_core::secrets::Secret;
use ledgerbridge_core::webhook::sign_header;
use ledgerbridge_core::{FixedClock, SystemClock};
use ledgerbridge_erp::{
    post_command, AnyConnector, DocKind, ErpCommand, ErpConnector, ErpSettings, ExternalRef,
    RetryPolicy,
};
use ledgerbridge_erp_sandbox::{spawn, ErpKind, Faults, SandboxConfig, SandboxHandle, Seed};
use ledgerbridge_intake::handle_webhook;
use ledgerbridge_pipeline::mapping::{Mapping, EXAMPLE};
use ledgerbridge_pipeline::posting::{Poster, StateStore};
use ledgerbridge_pipeline::stages::{PostStage, TransformStage};
use ledgerbridge_stripe::{StripeClient, StripeClientConfig};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
        max_retry_after: Duration::from_secs(5),
        settle_after_ambiguous: Duration::from_millis(30),
    }
}

pub(crate) async fn sandbox(erp: ErpKind) -> SandboxHandle {
    let sb = spawn(SandboxConfig::default()).await.unwrap().1;
    let m = Mapping::from_toml(EXAMPLE).unwrap();
    let mut items: Vec<String> = m.products.values().cloned().collect();
    items.extend([m.payments.item.clone(), m.refunds.item.clone()]);
    sb.seed(&Seed {
        erp: Some(erp),
        items,
        gl_accounts: vec!["4000".into()],
        closed_periods: vec![],
    })
    .unwrap();
    sb
}

/// Connectors are built the way the erp-post function builds them: from the one JSON settings
/// secret, through `AnyConnector`.
fn connector(settings: Value) -> AnyConnector {
    AnyConnector::from_settings(ErpSettings::from_json(&Secret::new(settings.to_string())).unwrap())
        .unwrap()
}

pub(crate) fn epicor(sb: &SandboxHandle) -> AnyConnector {
    let keys = sb.keys();
    connector(json!({
        "kind": "epicor", "base_url": format!("{}/KineticTest", sb.base_url()), "company": "EPIC06",
        "invoice_group_id": "STRIPE", "cash_group_id": "STRIPECR",
        "journal": {"book_id": "MAIN", "journal_code": "GJ", "group_id": "STRIPEGL"},
        "timeout_ms": 5000, "api_key": keys.epicor_api_key, "user": keys.epicor_user, "password": keys.epicor_password
    }))
}

pub(crate) fn sagepro(sb: &SandboxHandle) -> AnyConnector {
    connector(
        json!({"kind": "sagepro", "base_url": sb.base_url(), "timeout_ms": 5000, "api_key": sb.keys().sagepro_api_key}),
    )
}

pub(crate) fn sage500(sb: &SandboxHandle) -> AnyConnector {
    connector(
        json!({"kind": "sage500", "company": "SOA", "site_procedures": true, "customer_update_dim_job": 1, "base_url": sb.base_url(), "timeout_ms": 5000,
        "api_key": sb.keys().sage500_api_key}),
    )
}

fn stripe_client(base: &str) -> StripeClient {
    let mut cfg =
        StripeClientConfig::new(Secret::new("sk_test_fake".to_owned())).with_base_url(base);
    cfg.requests_per_second = 0;
    cfg.max_retries = 2;
    StripeClient::new(cfg).unwrap()
}

/// The fake Stripe API seeded with what the sample events refer to.
pub(crate) fn seeded_fake() -> FakeStripe {
    let fake = FakeStripe::default();
    let updated: Value = serde_json::from_slice(&event_body("customer.updated.json")).unwrap();
    fake.put("customers", updated["data"]["object"].clone());
    let refund: Value = serde_json::from_slice(&event_body("refund.created.json")).unwrap();
    fake.add_refund(refund["data"]["object"].clone());
    let full: Value = serde_json::from_str(
        &std::fs::read_to_string(
            crate::support::fixtures::fixtures_dir()
                .join("stripe/api/refund_re_3YTjQYNq7LbKx2RzpMuKD5Mx.json"),
        )
        .unwrap(),
    )
    .unwrap();
    fake.add_refund(full);
    // The partially refunded charge's customer has no customer event in the samples.
    fake.put(
        "customers",
        json!({"id": "cus_v2hTtpvHRTXjHs", "object": "customer", "name": "Contoso  Retail", "email": "AP@contoso.example",
               "currency": "usd", "address": null, "metadata": {}}),
    );
    fake
}

/// Move every message through `stage` until the queue stays empty; retried messages go back on
/// the queue. Returns how many times a message was retried.
pub(crate) async fn pump<Q, F, Fut>(queue: &Q, concurrency: usize, stage: F) -> usize
where
    Q: TestQueue,
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = RecordOutcome>,
{
    let mut retries = 0;
    let mut last_reason = String::new();
    for _ in 0..60 {
        let batch = queue.take_all().await;
        if batch.is_empty() {
            return retries;
        }
        let mut again = Vec::new();
        for chunk in batch.chunks(concurrency.max(1)) {
            let outcomes = futures::future::join_all(chunk.iter().map(|m| stage(m.clone()))).await;
            for (m, o) in chunk.iter().zip(outcomes) {
                if let RecordOutcome::Retry(reason) = o {
                    if !last_reason.contains(&reason) {
                        last_reason.push_str(&reason);
                        last_reason.push_str(" | ");
                    }
                    again.push(m.clone());
                }
            }
        }
        retries += again.len();
        for m in again {
            queue.send(m, None).await.unwrap();
        }
    }
    panic!("queue did not drain in 60 rounds; last retry: {last_reason}");
}

pub(crate) struct Rig<Q, S, C> {
    pub(crate) intake: ledgerbridge_intake::Deps<Q, S, FixedClock>,
    pub(crate) transform: TransformStage<Q, Q, Q, StripeClient>,
    pub(crate) post: PostStage<C, S, StripeClient, SystemClock, Q>,
    pub(crate) stripe: StripeClient,
}

pub(crate) async fn rig<B: Backend, C: ErpConnector>(
    connector: C,
    stripe_base: &str,
    now: i64,
) -> Rig<B::Q, B::S, C> {
    let (events, store) = B::fresh(SQS_MAX_MESSAGE_BYTES).await;
    let (commands, _) = B::fresh(SQS_MAX_MESSAGE_BYTES).await;
    let (parked, _) = B::fresh(SQS_MAX_MESSAGE_BYTES).await;
    let (parked2, _) = B::fresh(SQS_MAX_MESSAGE_BYTES).await;
    let mapping = Mapping::from_toml(EXAMPLE).unwrap();
    let stripe = stripe_client(stripe_base);
    Rig {
        intake: crate::intake::deps(events, store.clone(), FixedClock::at_secs(now)),
        transform: TransformStage {
            mapping: mapping.clone(),
            stripe: stripe.clone(),
            commands,
            reconciliation: None,
            parked,
        },
        post: PostStage {
            poster: Poster {
                connector,
                store,
                stripe: Some(stripe.clone()),
                mapping,
                policy: policy(),
                clock: SystemClock,
                lease_ms: 30_000,
                intent_days: 90,
            },
            parked: parked2,
        },
        stripe,
    }
}

impl<Q: TestQueue, S: IdempotencyStore + StateStore + Clone, C: ErpConnector> Rig<Q, S, C> {
    pub(crate) async fn deliver(&self, body: &[u8]) {
        let t = ledgerbridge_core::Clock::now_secs(&self.intake.clock);
        let out = handle_webhook(
            &self.intake,
            Some(&sign_header(&[SAMPLE_SECRET], t, body)),
            body,
        )
        .await;
        assert_eq!(out.status, 200);
    }

    pub(crate) async fn run(&self, concurrency: usize) {
        pump(&self.intake.queue, concurrency, |m| async move {
            self.transform.process(&m).await
        })
        .await;
        pump(&self.transform.commands, concurrency, |m| async move {
            self.post.process(&m).await
        })
        .await;
    }

    pub(crate) async fn parked(&self) -> Vec<String> {
        let mut all = self.transform.parked.take_all().await;
        all.extend(self.post.parked.take_all().await);
        all
    }
}

fn r(id: &str, kind: DocKind) -> ExternalRef {
    ExternalRef::new(&StripeObjectId::new(id), kind).unwrap()
}

pub(crate) fn creates(sb: &SandboxHandle, erp: ErpKind) -> usize {
    sb.audit(Some(erp))
        .unwrap()
        .iter()
        .filter(|a| a.action == "create")
        .count()
}

pub(crate) async fn assert_each_once<C: ErpConnector>(
    sb: &SandboxHandle,
    erp: ErpKind,
    c: &C,
    expected: &[ExternalRef],
) {
    for reference in expected {
        assert!(
            c.find_by_reference(reference).await.unwrap().is_some(),
            "{reference} missing in {erp:?}"
        );
    }
    assert_eq!(
        creates(sb, erp),
        expected.len(),
        "documents created in {erp:?}"
    );
}

/// GIVEN the sample events WHEN they pass intake → transform → erp-post on moto-backed queues
/// and tables THEN each Stripe object becomes exactly its ERP documents, once, and the ERP ids
/// are written back to Stripe; one payment reported by two events and one refund reported by
/// two events are booked once.
async fn samples_through_the_pipeline<C: ErpConnector>(
    erp: ErpKind,
    make: fn(&SandboxHandle) -> C,
) {
    let sb = sandbox(erp).await;
    let fake = seeded_fake();
    let base = fake.serve().await;
    let rig = rig::<Aws, C>(make(&sb), &base, 1_786_000_000).await;
    let files = [
        "customer.created.json",
        "customer.updated.json",
        "payment_intent.succeeded.json",
        "charge.succeeded.json",
        "charge.refunded.partial.json",
        "refund.created.json",
        "charge.refunded.full.json",
        "customer.subscription.created.json",
        "payout.paid.json",
    ];
    // The customer exists before it pays (as in the samples); the rest arrives together.
    let (first, rest) = files.split_at(1);
    for batch in [first, rest] {
        for f in batch {
            rig.deliver(&event_body(f)).await;
            rig.deliver(&event_body(f)).await; // a duplicate delivery
        }
        rig.run(4).await;
    }
    let parked = rig.parked().await;
    assert!(parked.is_empty(), "parked: {parked:?}");
    let expected = vec![
        r("cus_NHQM1cjewvnnbv", DocKind::Customer),
        r("cus_v2hTtpvHRTXjHs", DocKind::Customer),
        r("pi_3JitFDNq7LbKx2RzWVv0OUYJ", DocKind::SalesOrder),
        r("pi_3JitFDNq7LbKx2RzWVv0OUYJ", DocKind::CashReceipt),
        r("re_30DCl0Nq7LbKx2Rzr5ZHG8yn", DocKind::CreditMemo),
        r("re_3YTjQYNq7LbKx2RzpMuKD5Mx", DocKind::CreditMemo),
    ];
    let c = make(&sb);
    assert_each_once(&sb, erp, &c, &expected).await;
    // customer.updated after customer.created updated the one customer.
    assert!(sb
        .audit(Some(erp))
        .unwrap()
        .iter()
        .any(|a| a.action == "update"));
    // Amounts: 159.00 order and receipt, 25.00 and 42.00 credit memos, exact decimals.
    let bodies: String = sb
        .audit(Some(erp))
        .unwrap()
        .iter()
        .map(|a| a.body.to_string())
        .collect();
    for amount in ["159.00", "25.00", "42.00"] {
        assert!(bodies.contains(amount), "{amount} not posted in {erp:?}");
    }
    // Write-back: customers, the order and both credit memos, once each.
    let writes = fake.writes();
    let keys: BTreeSet<(String, String)> =
        writes.iter().map(|w| (w.1.clone(), w.2.clone())).collect();
    assert_eq!(
        keys.len(),
        writes.len(),
        "a write-back was repeated: {writes:?}"
    );
    for (id, key) in [
        ("cus_NHQM1cjewvnnbv", "ledgerbridge_customer"),
        ("pi_3JitFDNq7LbKx2RzWVv0OUYJ", "ledgerbridge_sales_order"),
        ("re_30DCl0Nq7LbKx2Rzr5ZHG8yn", "ledgerbridge_credit_memo"),
        ("re_3YTjQYNq7LbKx2RzpMuKD5Mx", "ledgerbridge_credit_memo"),
    ] {
        assert!(
            keys.contains(&(id.to_owned(), key.to_owned())),
            "no write-back {key} on {id}: {writes:?}"
        );
    }
    if erp == ErpKind::Epicor {
        epicor_requests_match_the_contract(&sb);
    }
    // Stripe calls per sample event (enrichment + write-back); printed for the record, bounded
    // so a regression (e.g. a fetch per duplicate delivery) fails.
    let calls = rig.stripe.calls();
    println!("{erp:?}: {calls} Stripe calls for {} events", files.len());
    assert!(
        calls <= 2 * files.len() as u64,
        "{calls} Stripe calls for {} events",
        files.len()
    );
    sb.shutdown().await;
}

/// Every request the pipeline sent to the Epicor business objects, checked against the vendor
/// contract facts (fields exist on their row types, methods take those inputs, enumerated values
/// allowed): the sample stream replayed as a contract test.
fn epicor_requests_match_the_contract(sb: &SandboxHandle) {
    let contract = ledgerbridge_erp_sandbox::contract::EpicorContract::load().unwrap();
    let requests = sb.requests(Some(ErpKind::Epicor));
    let mut checked = 0;
    let mut violations = Vec::new();
    for r in &requests {
        let known = crate::erp_contract::epicor::CONTRACT_SERVICES
            .iter()
            .any(|s| r.path.contains(&format!("/{s}/")));
        if !known {
            continue;
        }
        checked += 1;
        let body = (!r.body.is_null()).then_some(&r.body);
        for v in contract.check_request(&r.method, &r.path, &r.query, body) {
            violations.push(format!("{} {}: {v}", r.method, r.path));
        }
    }
    // Customers, the order, the receipt and both credit memos went through the contract's services.
    for method in [
        "SalesOrderSvc/UpdateExt",
        "CashRecSvc/GetNewCashHeadType",
        "CashRecSvc/UpdateExt",
        "ARInvoiceSvc/GetNewInvcHeadType",
    ] {
        assert!(
            requests.iter().any(|r| r.path.ends_with(method)),
            "the pipeline sent no {method}"
        );
    }
    assert!(checked >= 10, "only {checked} requests checked");
    assert!(violations.is_empty(), "{violations:#?}");
}

#[tokio::test]
async fn samples_through_the_pipeline_epicor() {
    samples_through_the_pipeline(ErpKind::Epicor, epicor).await;
}

#[tokio::test]
async fn samples_through_the_pipeline_sagepro() {
    samples_through_the_pipeline(ErpKind::SagePro, sagepro).await;
}

#[tokio::test]
async fn samples_through_the_pipeline_sage500() {
    samples_through_the_pipeline(ErpKind::Sage500, sage500).await;
}

/// Synthetic stream: `n` customers, each with a payment (reported by both payment events) and
/// every third with a partial refund; currencies rotate through USD, JPY (zero-decimal) and KWD
/// (three-decimal).
pub(crate) fn synthetic(n: usize) -> (Vec<Vec<u8>>, Vec<ExternalRef>, FakeStripe) {
    let fake = FakeStripe::default();
    let mut events = Vec::new();
    let mut expected = Vec::new();
    let currencies = [("usd", 15_900i64), ("jpy", 1_500), ("kwd", 12_340)];
    for k in 0..n {
        let cus = format!("cus_syn{k:05}");
        let pi = format!("pi_syn{k:05}");
        let ch = format!("ch_syn{k:05}");
        let (cur, amount) = currencies[k % 3];
        let customer = json!({"id": cus, "object": "customer", "name": format!("Customer {k}"), "email": format!("c{k}@example.com"),
            "currency": cur, "address": {"line1": "1 Main St", "city": "Springfield", "country": "us"}, "metadata": {}});
        fake.put("customers", customer.clone());
        let created = 1_786_000_000 + k as i64;
        let ev = |id: String, ty: &str, obj: Value| {
            serde_json::to_vec(&json!({"id": id, "object": "event", "type": ty, "created": created, "livemode": false,
                "api_version": "2026-07-29.dahlia", "data": {"object": obj}})).unwrap()
        };
        events.push(ev(format!("evt_c{k:05}"), "customer.created", customer));
        events.push(ev(format!("evt_p{k:05}"), "payment_intent.succeeded", json!({"id": pi, "object": "payment_intent",
            "amount": amount, "amount_received": amount, "currency": cur, "customer": cus, "latest_charge": ch,
            "payment_method_types": ["card"], "created": created, "metadata": {"order_id": format!("SO-{k}")}})));
        let charge = json!({"id": ch, "object": "charge", "amount": amount,
            "amount_captured": amount, "captured": true, "currency": cur, "customer": cus, "payment_intent": pi,
            "payment_method_details": {"type": "card"}, "created": created, "metadata": {"order_id": format!("SO-{k}")}});
        fake.put("charges", charge.clone());
        events.push(ev(format!("evt_h{k:05}"), "charge.succeeded", charge));
        expected.push(r(&cus, DocKind::Customer));
        expected.push(r(&pi, DocKind::SalesOrder));
        expected.push(r(&pi, DocKind::CashReceipt));
        if k % 3 == 0 {
            let re = format!("re_syn{k:05}");
            let refund = json!({"id": re, "object": "refund", "amount": amount / 10 * 2 / 2, "currency": cur, "charge": ch,
                "payment_intent": pi, "status": "succeeded", "reason": "requested_by_customer", "created": created, "metadata": {}});
            fake.add_refund(refund.clone());
            events.push(ev(format!("evt_r{k:05}"), "refund.created", refund));
            expected.push(r(&re, DocKind::CreditMemo));
        }
    }
    (events, expected, fake)
}

/// Deliver `events` with 30 % duplicated (half of the copies at the same moment as the first).
async fn deliver_with_duplicates<
    Q: TestQueue,
    S: IdempotencyStore + StateStore + Clone,
    C: ErpConnector,
>(
    rig: &Rig<Q, S, C>,
    events: &[Vec<u8>],
) -> usize {
    let mut deliveries = 0;
    for (i, body) in events.iter().enumerate() {
        match i % 10 {
            0 | 3 | 6 => {
                // duplicated: 0 and 6 concurrently, 3 one after the other
                if i % 10 == 3 {
                    rig.deliver(body).await;
                    rig.deliver(body).await;
                } else {
                    futures::future::join(rig.deliver(body), rig.deliver(body)).await;
                }
                deliveries += 2;
            }
            _ => {
                rig.deliver(body).await;
                deliveries += 1;
            }
        }
    }
    deliveries
}

/// GIVEN 1,000 events, 30 % delivered twice (some at the same moment) WHEN they run through the
/// pipeline into the Sage Pro sandbox THEN exactly one ERP document per Stripe object and
/// document kind, none missing, amounts exact in zero-, two- and three-decimal currencies.
#[tokio::test]
async fn thousand_events_with_duplicates_post_each_document_once() {
    let (events, expected, fake) = synthetic(300);
    assert!(events.len() >= 1_000, "{} events", events.len());
    let base = fake.serve().await;
    let sb = sandbox(ErpKind::SagePro).await;
    let rig = rig::<Embedded, _>(sagepro(&sb), &base, 1_786_000_000).await;
    let deliveries = deliver_with_duplicates(&rig, &events).await;
    assert!(deliveries >= 1_300);
    rig.run(8).await;
    let parked = rig.parked().await;
    assert!(parked.is_empty(), "parked: {parked:?}");
    assert_each_once(&sb, ErpKind::SagePro, &sagepro(&sb), &expected).await;
    let bodies: String = sb
        .audit(Some(ErpKind::SagePro))
        .unwrap()
        .iter()
        .map(|a| a.body.to_string())
        .collect();
    for amount in ["159.00", "1500", "12.340"] {
        assert!(bodies.contains(amount), "{amount} not posted exactly");
    }
    assert!(
        !bodies.contains("15.9\"") && !bodies.contains("12.34\""),
        "an amount lost its currency scale"
    );
}

/// GIVEN 30 % of ERP creates commit but lose their response THEN no document is duplicated
/// and none is missing (each retry finds the committed document by reference).
#[tokio::test]
async fn lost_responses_after_commit_create_no_duplicates() {
    let (events, expected, fake) = synthetic(120);
    let base = fake.serve().await;
    let sb = sandbox(ErpKind::Epicor).await;
    let rig = rig::<Embedded, _>(epicor(&sb), &base, 1_786_000_000).await;
    for body in &events {
        rig.deliver(body).await;
    }
    // Transform everything, then post with the fault knob set before 30 % of the messages.
    let transform = &rig.transform;
    pump(&rig.intake.queue, 4, |m| async move {
        transform.process(&m).await
    })
    .await;
    let dropped = std::sync::atomic::AtomicUsize::new(0);
    let seen = std::sync::Mutex::new(BTreeSet::new());
    pump(&rig.transform.commands, 1, |m| {
        let (sb, rig, dropped, seen) = (&sb, &rig, &dropped, &seen);
        async move {
            // Arm the fault for a deterministic 30 % of the documents, on the first command
            // that names each one (the one that creates it).
            let reference = match ledgerbridge_messages::CommandMessage::decode(&m).unwrap() {
                ledgerbridge_messages::CommandMessage::ErpCommandV1(c) => {
                    c.command.reference().to_string()
                }
                other => panic!("unexpected {other:?}"),
            };
            let first = seen.lock().unwrap().insert(reference.clone());
            let pick = reference.bytes().map(u32::from).sum::<u32>() % 10 < 3;
            let armed = first && pick;
            sb.set_faults(Faults {
                drop_after_commit: u32::from(armed),
                ..Faults::default()
            });
            let out = rig.post.process(&m).await;
            if armed && sb.faults().drop_after_commit == 0 {
                dropped.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            out
        }
    })
    .await;
    let dropped = dropped.into_inner();
    assert!(
        dropped * 100 >= expected.len() * 20,
        "only {dropped} of {} responses were dropped",
        expected.len()
    );
    println!(
        "{dropped} of {} documents lost their create response",
        expected.len()
    );
    sb.set_faults(Faults::default());
    rig.run(4).await;
    let parked = rig.parked().await;
    assert!(parked.is_empty(), "parked: {parked:?}");
    assert_each_once(&sb, ErpKind::Epicor, &epicor(&sb), &expected).await;
}

/// GIVEN the same events in order and shuffled THEN the ERP holds the same documents.
#[tokio::test]
async fn shuffled_delivery_reaches_the_same_end_state() {
    let (events, expected, fake) = synthetic(60);
    let base = fake.serve().await;
    let mut states = Vec::new();
    for shuffled in [false, true] {
        let sb = sandbox(ErpKind::SagePro).await;
        let rig = rig::<Embedded, _>(sagepro(&sb), &base, 1_786_000_000).await;
        let mut order: Vec<&Vec<u8>> = events.iter().collect();
        if shuffled {
            // A fixed permutation: reverse, then interleave halves (refunds before charges,
            // payments before customers).
            order.reverse();
            let (a, b) = order.split_at(order.len() / 2);
            order = b
                .iter()
                .zip(a.iter())
                .flat_map(|(x, y)| [*x, *y])
                .chain(a.iter().skip(b.len()).copied())
                .collect();
        }
        for body in order {
            rig.deliver(body).await;
        }
        rig.run(4).await;
        let parked = rig.parked().await;
        assert!(parked.is_empty(), "parked: {parked:?}");
        let c = sagepro(&sb);
        assert_each_once(&sb, ErpKind::SagePro, &c, &expected).await;
        let mut state = BTreeSet::new();
        for reference in &expected {
            state.insert((
                reference.to_string(),
                c.find_by_reference(reference).await.unwrap().is_some(),
            ));
        }
        let amounts: BTreeSet<String> = sb
            .audit(Some(ErpKind::SagePro))
            .unwrap()
            .iter()
            .filter(|a| a.action == "create")
            .map(|a| {
                format!(
                    "{}:{}",
                    a.entity,
                    a.body
                        .get("total")
                        .or(a.body.get("amount"))
                        .map(Value::to_string)
                        .unwrap_or_default()
                )
            })
            .collect();
        states.push((state, amounts));
        sb.shutdown().await;
    }
    assert_eq!(states[0], states[1]);
}

/// GIVEN an ERP customer created directly in the ERP with the e-mail (other case, spaces) of a
/// new Stripe customer WHEN that customer's events pass the pipeline THEN the customer is linked
/// to the existing ERP customer: its payment is posted to it, no customer is created and the
/// ERP's record is not updated.
async fn email_match_links_the_existing_customer<C: ErpConnector>(
    erp: ErpKind,
    make: fn(&SandboxHandle) -> C,
    customer_of: fn(&Value) -> Option<String>,
) {
    let (events, expected, fake) = synthetic(1);
    let base = fake.serve().await;
    let sb = sandbox(erp).await;
    let c = make(&sb);
    let ErpCommand::UpsertCustomer(mut existing) =
        crate::erp_contract::email_customer(9, " C0@Example.COM")
    else {
        unreachable!("email_customer builds a customer")
    };
    existing.customer_id = "ERPOWN".into();
    let existing = ErpCommand::UpsertCustomer(existing);
    let erp_id = post_command(&c, &existing, &policy()).await.unwrap().erp_id;
    let rig = rig::<Embedded, _>(make(&sb), &base, 1_786_000_000).await;
    for body in &events {
        rig.deliver(body).await;
    }
    rig.run(2).await;
    let parked = rig.parked().await;
    assert!(parked.is_empty(), "parked: {parked:?}");
    let (customers, documents): (Vec<_>, Vec<_>) =
        expected.iter().partition(|r| r.kind() == DocKind::Customer);
    for reference in &customers {
        assert_eq!(
            c.find_by_reference(reference).await.unwrap(),
            None,
            "no customer is created for {reference}"
        );
    }
    for reference in &documents {
        assert!(c.find_by_reference(reference).await.unwrap().is_some());
    }
    let audit = sb.audit(Some(erp)).unwrap();
    assert_eq!(
        audit.iter().filter(|a| a.action == "create").count(),
        1 + documents.len(),
        "{audit:?}"
    );
    assert!(
        audit.iter().all(|a| a.action != "update"),
        "the ERP's customer is not overwritten: {audit:?}"
    );
    let want = [erp_id.to_string(), "ERPOWN".to_owned()];
    for a in audit.iter().skip(1) {
        let got = customer_of(&a.body);
        assert!(
            got.as_ref().is_some_and(|g| want.contains(g)),
            "{} posted to {got:?}, not the existing customer",
            a.entity
        );
    }
}

#[tokio::test]
async fn email_match_links_the_existing_customer_epicor() {
    email_match_links_the_existing_customer(ErpKind::Epicor, epicor, |b| {
        b.get("CustNum").map(|v| v.to_string())
    })
    .await;
}

#[tokio::test]
async fn email_match_links_the_existing_customer_sagepro() {
    email_match_links_the_existing_customer(ErpKind::SagePro, sagepro, |b| {
        b.get("customerId")
            .and_then(Value::as_str)
            .map(str::to_owned)
    })
    .await;
}

#[tokio::test]
async fn email_match_links_the_existing_customer_sage500() {
    email_match_links_the_existing_customer(ErpKind::Sage500, sage500, |b| {
        b.get("CustID").and_then(Value::as_str).map(str::to_owned)
    })
    .await;
}
