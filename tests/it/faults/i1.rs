//! I1 — the same event delivered 2–5 times, one after the other and at the same moment.
//! Everything runs on moto and the real code: the intake handler (SQS + DynamoDB), the events
//! queue read by the event-source-mapping simulator ([`super::esm`]) into the transform stage,
//! the commands queue read the same way into erp-post, and the Sage Pro sandbox.
//!
//! The sender simulator: N `customer.created` events (one ERP customer each); 30 % are
//! duplicated, each of those delivered 2–5 times (seeded); for half of them the copies go out
//! at the same moment (each after a random 0–10 ms), for the other half one after the other.
//! Stripe's retry rule applies to every delivery: a 5xx is sent again. That is about 1.75 N
//! deliveries; the guide's figure (1,000 events → 3,000 deliveries) does not follow from its
//! own 30 % × 2–5, so a late round (after the pipeline has posted everything: the duplicates
//! Stripe sends when our 2xx was lost) brings the total to exactly 3 N. Pass: exactly N ERP
//! documents, 0 missing, 0 doubled, 0 in either DLQ, 0 parked, every delivery answered 2xx
//! (after Stripe's retries), and the row's "one SQS message processed to effect": the intake
//! queued exactly one message per event id (counted at its queue), the transform and erp-post
//! were each handed exactly N records, none handed back, and the late round queued nothing.
//!
//! The pipeline runs on [`super::atomic_moto`]: plain moto's receive can hand one message to
//! two concurrent pollers, and its conditional `PutItem` is not atomic, where SQS and DynamoDB
//! are (an earlier run at the figure on plain moto saw 1,002 event messages for 1,000 events
//! and 4 records handed back by erp-post; a run here on plain moto, 1 command handed out
//! twice at once, the intake's queue counted exactly one message per event id).
//! [`i1_five_copies_at_once_of_each_of_three_hundred_events_are_queued_once_each`] races five
//! copies of every event at the intake alone.
//!
//! **Scaled in CI** to 300 events → 900 deliveries (`i1_…_scaled`, about a minute and a half
//! on the shared 2-core machine). The figure itself, 1,000 events → 3,000 deliveries, is
//! `i1_…_at_figure`, ignored by default because it takes about 5 minutes there (moto answers
//! every SQS and DynamoDB call from one Python process); run it with
//! `cargo test -p ledgerbridge-tests -- --ignored faults::i1`.

use super::esm::{queue_with_dlq, Esm, RedrivenQueue};
use super::seeded::Seeded;
use crate::intake::{deps, MotoQueue};
use crate::support::fake_stripe::FakeStripe;
use crate::support::fixtures::SAMPLE_SECRET;
use crate::support::moto;
use futures::StreamExt;
use ledgerbridge_adapters::aws::{DynamoStore, SqsQueue};
use ledgerbridge_adapters::lambda::process_batch;
use ledgerbridge_core::message::SQS_MAX_MESSAGE_BYTES;
use ledgerbridge_core::secrets::Secret;
use ledgerbridge_core::webhook::sign_header;
use ledgerbridge_core::{FixedClock, SystemClock};
use ledgerbridge_erp::ErpConnector;
use ledgerbridge_erp_sandbox::{ErpKind, SandboxHandle};
use ledgerbridge_intake::{handle_webhook, Deps};
use ledgerbridge_pipeline::mapping::{Mapping, EXAMPLE};
use ledgerbridge_pipeline::posting::Poster;
use ledgerbridge_pipeline::stages::{PostStage, TransformStage};
use ledgerbridge_stripe::{StripeClient, StripeClientConfig};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

const T0: i64 = 1_786_000_000;

/// The intake's queue, counting the messages it durably sent per event id.
pub struct CountingQueue {
    inner: MotoQueue,
    pub sent: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

impl CountingQueue {
    /// Event ids sent more than once, with their counts.
    pub fn sent_twice(&self) -> Vec<(String, usize)> {
        let mut out: Vec<_> = self
            .sent
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(id, n)| (id.clone(), *n))
            .collect();
        out.sort();
        out
    }
}

impl ledgerbridge_core::ports::EventQueue for CountingQueue {
    async fn send(
        &self,
        body: String,
        group: Option<&str>,
    ) -> Result<ledgerbridge_core::ids::MessageId, ledgerbridge_core::ports::QueueError> {
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let id = v["event"]["id"]
            .as_str()
            .or_else(|| v["event_id"].as_str())
            .unwrap()
            .to_owned();
        let out = self.inner.send(body, group).await;
        if out.is_ok() {
            *self.sent.lock().unwrap().entry(id).or_default() += 1;
        }
        out
    }
    fn max_message_bytes(&self) -> usize {
        ledgerbridge_core::ports::EventQueue::max_message_bytes(&self.inner)
    }
}

/// What the two event source mappings of [`MotoPipeline::run`] saw, over all its rounds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunTotals {
    /// Records handed to the transform.
    pub events_delivered: usize,
    /// Records handed to erp-post.
    pub commands_delivered: usize,
    /// Records either stage reported failed (handed back to the queue).
    pub reported_failed: usize,
    /// Messages the queue handed out while another worker was still handling them.
    pub handed_out_while_in_flight: usize,
}

/// intake → events queue → transform → commands queue → erp-post → ERP, on moto.
pub struct MotoPipeline<C: ErpConnector> {
    pub sqs: aws_sdk_sqs::Client,
    pub intake: Deps<CountingQueue, DynamoStore, FixedClock>,
    pub events: RedrivenQueue,
    pub commands: RedrivenQueue,
    pub parked: String,
    pub transform: Arc<TransformStage<SqsQueue, SqsQueue, SqsQueue, StripeClient>>,
    pub post: Arc<PostStage<C, DynamoStore, StripeClient, SystemClock, SqsQueue>>,
}

pub fn stripe_client(base: &str) -> StripeClient {
    let mut cfg =
        StripeClientConfig::new(Secret::new("sk_test_fake".to_owned())).with_base_url(base);
    cfg.requests_per_second = 0;
    cfg.max_retries = 2;
    StripeClient::new(cfg).unwrap()
}

impl<C: ErpConnector + 'static> MotoPipeline<C> {
    pub async fn new(connector: C, stripe_base: &str, now: i64, tag: &str) -> Self {
        Self::new_on(&moto::sdk_config().await, connector, stripe_base, now, tag).await
    }

    /// The pipeline on the moto instance `conf` points at.
    pub async fn new_on(
        conf: &aws_config::SdkConfig,
        connector: C,
        stripe_base: &str,
        now: i64,
        tag: &str,
    ) -> Self {
        let sqs = aws_sdk_sqs::Client::new(conf);
        let ddb = aws_sdk_dynamodb::Client::new(conf);
        let events = queue_with_dlq(&sqs, &moto::unique(&format!("{tag}-events")), 5, 5).await;
        let commands = queue_with_dlq(&sqs, &moto::unique(&format!("{tag}-commands")), 5, 5).await;
        let parked = moto::create_queue(&sqs, &moto::unique(&format!("{tag}-parked"))).await;
        let table = moto::unique(&format!("{tag}-state"));
        moto::create_state_table(&ddb, &table).await;
        let store = DynamoStore::new(ddb, &table);
        let mapping = Mapping::from_toml(EXAMPLE).unwrap();
        let stripe = stripe_client(stripe_base);
        let q = |url: &str| SqsQueue::new(sqs.clone(), url, SQS_MAX_MESSAGE_BYTES);
        MotoPipeline {
            intake: deps(
                CountingQueue {
                    inner: MotoQueue::new(sqs.clone(), &events.url, SQS_MAX_MESSAGE_BYTES),
                    sent: Default::default(),
                },
                store.clone(),
                FixedClock::at_secs(now),
            ),
            transform: Arc::new(TransformStage {
                mapping: mapping.clone(),
                stripe: stripe.clone(),
                commands: q(&commands.url),
                reconciliation: None,
                parked: q(&parked),
            }),
            post: Arc::new(PostStage {
                poster: Poster {
                    connector,
                    store,
                    stripe: Some(stripe),
                    mapping,
                    policy: super::fast_policy(),
                    clock: SystemClock,
                    lease_ms: 30_000,
                    intent_days: 90,
                },
                parked: q(&parked),
            }),
            events,
            commands,
            parked,
            sqs,
        }
    }

    /// One delivery as Stripe's sender makes it: sent again after every 5xx. Returns the
    /// attempts it took.
    pub async fn deliver(&self, body: &[u8]) -> usize {
        let t = ledgerbridge_core::Clock::now_secs(&self.intake.clock);
        let header = sign_header(&[SAMPLE_SECRET], t, body);
        for attempt in 1..=20 {
            let out = handle_webhook(&self.intake, Some(&header), body).await;
            if out.status == 200 {
                return attempt;
            }
            assert!(out.status >= 500, "{} {}", out.status, out.body);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("a delivery was never accepted");
    }

    /// Run the two event source mappings until both queues are empty, in flight included.
    ///
    /// The visibility timeout is far above a batch's handling time: the figure is about
    /// duplicates at the intake, and a timeout shorter than the handling (row Q4) would have
    /// moto hand a slow batch out again and, after `maxReceiveCount` receives, move it to the
    /// DLQ. The simulator stops once it has received nothing for its idle spell after its last
    /// batch. A record a stage reports failed comes back only after the visibility timeout
    /// (60 s, longer than the idle spell), so only then does another round run; a round in
    /// which nothing was reported failed must leave both queues empty, in flight included.
    pub async fn run(&self) -> RunTotals {
        let mut totals = RunTotals::default();
        let esm = Esm {
            visibility_timeout_secs: 60,
            max_concurrency: 4,
            ..Esm::default()
        };
        let mut last_handed_back: Option<std::time::Instant> = None;
        for round in 0..20 {
            let t = self.transform.clone();
            let stats = esm
                .run(
                    &self.sqs,
                    &self.events,
                    move |event| {
                        let t = t.clone();
                        async move {
                            process_batch(event, 10, |body| {
                                let t = t.clone();
                                async move { t.process(&body).await }
                            })
                            .await
                            .unwrap()
                        }
                    },
                    Duration::from_secs(5),
                    Duration::from_secs(600),
                )
                .await;
            assert_eq!(stats.timed_out.load(Ordering::SeqCst), 0);
            let events_failed = stats.reported_failed.load(Ordering::SeqCst);
            totals.events_delivered += stats.records_delivered.load(Ordering::SeqCst);
            totals.handed_out_while_in_flight +=
                stats.handed_out_while_in_flight.load(Ordering::SeqCst);
            println!(
                "round {round}: events: {} delivered, {} reported failed, {} deleted, {} handed out while in flight, {} received more than once",
                stats.records_delivered.load(Ordering::SeqCst),
                stats.reported_failed.load(Ordering::SeqCst),
                stats.deleted.load(Ordering::SeqCst),
                stats.handed_out_while_in_flight.load(Ordering::SeqCst),
                stats.deliveries.lock().unwrap().values().filter(|n| **n > 1).count()
            );
            let p = self.post.clone();
            let stats = esm
                .run(
                    &self.sqs,
                    &self.commands,
                    move |event| {
                        let p = p.clone();
                        async move {
                            process_batch(event, 10, |body| {
                                let p = p.clone();
                                async move { p.process(&body).await }
                            })
                            .await
                            .unwrap()
                        }
                    },
                    Duration::from_secs(5),
                    Duration::from_secs(600),
                )
                .await;
            assert_eq!(stats.timed_out.load(Ordering::SeqCst), 0);
            println!(
                "round {round}: commands: {} delivered, {} reported failed, {} deleted, {} handed out while in flight, {} received more than once",
                stats.records_delivered.load(Ordering::SeqCst),
                stats.reported_failed.load(Ordering::SeqCst),
                stats.deleted.load(Ordering::SeqCst),
                stats.handed_out_while_in_flight.load(Ordering::SeqCst),
                stats.deliveries.lock().unwrap().values().filter(|n| **n > 1).count()
            );
            let handed_back = events_failed + stats.reported_failed.load(Ordering::SeqCst);
            totals.commands_delivered += stats.records_delivered.load(Ordering::SeqCst);
            totals.reported_failed += handed_back;
            totals.handed_out_while_in_flight +=
                stats.handed_out_while_in_flight.load(Ordering::SeqCst);
            let left = (
                self.depth(&self.events.url).await,
                self.depth(&self.commands.url).await,
            );
            if left == (0, 0) {
                return totals;
            }
            if handed_back > 0 {
                last_handed_back = Some(std::time::Instant::now());
            }
            // What was handed back is visible again after the visibility timeout; anything
            // else left behind is a message the simulator failed to hand out.
            let vt = Duration::from_secs(esm.visibility_timeout_secs as u64 + 5);
            assert!(
                last_handed_back.is_some_and(|t| t.elapsed() < vt),
                "round {round}: nothing handed back within the visibility timeout, yet (events, commands) = {left:?} left on the queues"
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        panic!("the queues did not drain");
    }

    /// Messages on `url`: visible, in flight and delayed.
    pub async fn depth(&self, url: &str) -> u64 {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let attrs = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(A::All)
            .send()
            .await
            .unwrap();
        [
            A::ApproximateNumberOfMessages,
            A::ApproximateNumberOfMessagesNotVisible,
            A::ApproximateNumberOfMessagesDelayed,
        ]
        .iter()
        .map(|a| {
            attrs
                .attributes()
                .and_then(|m| m.get(a))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
    }

    /// Nothing in either DLQ, nothing parked.
    pub async fn assert_nothing_stranded(&self) {
        for (what, url) in [
            ("events DLQ", &self.events.dlq_url),
            ("commands DLQ", &self.commands.dlq_url),
            ("parked", &self.parked),
        ] {
            let left = super::esm::drain(&self.sqs, url).await;
            assert!(
                left.is_empty(),
                "{what}: {} message(s), the first: {}",
                left.len(),
                left[0]
            );
        }
    }
}

/// ERP documents created in the sandbox per number `n` found after `marker` in the request
/// body (the test's customers are named `{marker}{n}`).
pub fn created_by_marker(
    sb: &SandboxHandle,
    erp: ErpKind,
    marker: &str,
) -> std::collections::HashMap<usize, usize> {
    let mut out = std::collections::HashMap::new();
    for a in sb.audit(Some(erp)).unwrap() {
        if a.action != "create" {
            continue;
        }
        let text = a.body.to_string();
        if let Some(at) = text.find(marker) {
            let digits: String = text[at + marker.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(n) = digits.parse() {
                *out.entry(n).or_default() += 1;
            }
        }
    }
    out
}

fn customer_event(k: usize) -> Vec<u8> {
    let cus = format!("cus_i1x{k:05}");
    serde_json::to_vec(&json!({"id": format!("evt_i1x{k:05}"), "object": "event", "type": "customer.created",
        "created": T0 + k as i64, "livemode": false, "api_version": "2026-07-29.dahlia",
        "data": {"object": {"id": cus, "object": "customer", "name": format!("I1 Customer {k}"),
            "email": format!("i1-{k}@example.com"), "currency": "usd",
            "address": {"line1": "1 Main St", "city": "Springfield", "country": "US"}, "metadata": {}}}}))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i1_nine_hundred_deliveries_of_three_hundred_events_make_three_hundred_documents_scaled() {
    duplicated_deliveries_make_each_document_once(300, 900).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the figure itself: about 5 minutes on a shared 2-core machine; run with --ignored"]
async fn i1_three_thousand_deliveries_of_a_thousand_events_make_a_thousand_documents_at_figure() {
    duplicated_deliveries_make_each_document_once(1_000, 3_000).await;
}

async fn duplicated_deliveries_make_each_document_once(events_n: usize, deliveries_n: usize) {
    let started = std::time::Instant::now();
    let fake = FakeStripe::default();
    let base = fake.serve().await;
    let sb = crate::pipeline::sandbox(ErpKind::SagePro).await;
    // On the moto instance whose DynamoDB item operations and SQS receives are atomic, as
    // DynamoDB's conditional writes and SQS's receives are: plain moto may grant two racing
    // claims of one event id, and hands a message to two concurrent receivers now and then
    // (measured at the figure on plain moto: 1 of 1,000 commands handed out twice at once, the
    // copy reported "being posted by another worker"; an earlier run, 1,002 event messages
    // handed to the transform for 1,000 queued). Neither is the code under test.
    let conf = super::atomic_moto::sdk_config().await;
    let p = MotoPipeline::new_on(
        &conf,
        crate::pipeline::sagepro(&sb),
        &base,
        T0 + 10_000,
        "i1",
    )
    .await;
    let events: Vec<Vec<u8>> = (0..events_n).map(customer_event).collect();
    // The plan: copies per event, and whether the copies go out at once.
    let mut rng = Seeded::new(0x11);
    let plan: Vec<(usize, bool)> = (0..events_n)
        .map(|_| {
            if rng.below(100) < 30 {
                (2 + rng.below(4), rng.below(2) == 0)
            } else {
                (1, false)
            }
        })
        .collect();
    let duplicated = plan.iter().filter(|(n, _)| *n > 1).count();
    let concurrent = plan.iter().filter(|(n, c)| *n > 1 && *c).count();
    let p = &p;
    let events_ref = &events;
    let first_round: Vec<(usize, usize)> = futures::stream::iter(plan.iter().copied().enumerate())
        .map(|(k, (copies, at_once))| async move {
            let body = &events_ref[k];
            let mut attempts = 0;
            if at_once {
                let mut seed = Seeded::new(k as u64);
                let delays: Vec<u64> = (0..copies).map(|_| seed.below(11) as u64).collect();
                attempts += futures::future::join_all(delays.into_iter().map(|ms| async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    p.deliver(body).await
                }))
                .await
                .into_iter()
                .sum::<usize>();
            } else {
                for _ in 0..copies {
                    attempts += p.deliver(body).await;
                }
            }
            (copies, attempts)
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut deliveries: usize = first_round.iter().map(|(c, _)| c).sum();
    let attempts: usize = first_round.iter().map(|(_, a)| a).sum();
    println!(
        "I1: {events_n} events, {duplicated} duplicated ({concurrent} with copies at once), {deliveries} deliveries ({attempts} attempts with Stripe's retries) in {:?}",
        started.elapsed()
    );
    assert!(
        (events_n / 4..=events_n * 7 / 20).contains(&duplicated),
        "{duplicated} of {events_n} duplicated"
    );
    let first = p.run().await;
    println!("I1: pipeline drained at {:?}", started.elapsed());
    // The late round: redeliveries of already posted events, up to 3,000 deliveries in all.
    let late: Vec<usize> = (0..deliveries_n - deliveries)
        .map(|i| (i * 7) % events_n)
        .collect();
    futures::stream::iter(late.iter())
        .map(|&k| async move { p.deliver(&events_ref[k]).await })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    deliveries += late.len();
    assert_eq!(deliveries, deliveries_n);
    let late = p.run().await;
    p.assert_nothing_stranded().await;
    let sent_twice = p.intake.queue.sent_twice();
    let (sent, ids) = {
        let sent = p.intake.queue.sent.lock().unwrap();
        (sent.values().sum::<usize>(), sent.len())
    };
    println!(
        "I1: the intake queued {sent} messages for {ids} event ids; queued more than once: {sent_twice:?}; the stages: {first:?}, after the late round {late:?}"
    );
    // One SQS message per event id, processed to effect once.
    assert_eq!(
        sent_twice,
        vec![],
        "event ids the intake queued more than once"
    );
    assert_eq!((sent, ids), (events_n, events_n), "one message per event");
    assert_eq!(
        first.events_delivered, events_n,
        "event messages handed to the transform"
    );
    assert_eq!(
        first.commands_delivered, events_n,
        "commands handed to erp-post"
    );
    assert_eq!(first.handed_out_while_in_flight, 0);
    assert_eq!(first.reported_failed, 0, "records handed back");
    assert_eq!(late, RunTotals::default(), "the late round queued nothing");
    let created = created_by_marker(&sb, ErpKind::SagePro, "I1 Customer ");
    let missing: Vec<usize> = (0..events_n).filter(|k| !created.contains_key(k)).collect();
    let doubled: Vec<(&usize, &usize)> = created.iter().filter(|(_, n)| **n > 1).collect();
    println!(
        "I1: {deliveries} deliveries → {} ERP customers, {} missing, {} doubled, in {:?}",
        created.len(),
        missing.len(),
        doubled.len(),
        started.elapsed()
    );
    assert!(missing.is_empty(), "missing: {missing:?}");
    assert!(doubled.is_empty(), "created more than once: {doubled:?}");
    assert_eq!(created.len(), events_n);
    assert_eq!(crate::pipeline::creates(&sb, ErpKind::SagePro), events_n);
    sb.shutdown().await;
}

/// The intake alone, every event's copies delivered at the same moment: each event id is
/// queued exactly once (the row's "one SQS message processed to effect"), every copy answered
/// 2xx. On the moto instance whose DynamoDB item operations are atomic, as DynamoDB applies a
/// conditional write to one item ([`super::atomic_moto`]): plain moto lets two racing
/// conditional `PutItem`s both pass.
async fn concurrent_copies_are_queued_once(
    conf: &aws_config::SdkConfig,
    events_n: usize,
    copies: usize,
) -> Vec<(String, usize)> {
    let sqs = aws_sdk_sqs::Client::new(conf);
    let ddb = aws_sdk_dynamodb::Client::new(conf);
    let url = moto::create_queue(&sqs, &moto::unique("i1c-events")).await;
    let table = moto::unique("i1c-state");
    moto::create_state_table(&ddb, &table).await;
    let d = deps(
        CountingQueue {
            inner: MotoQueue::new(sqs.clone(), &url, SQS_MAX_MESSAGE_BYTES),
            sent: Default::default(),
        },
        DynamoStore::new(ddb, &table),
        FixedClock::at_secs(T0 + 10_000),
    );
    let d = &d;
    futures::stream::iter(0..events_n)
        .map(|k| async move {
            let body = customer_event(k);
            let header = sign_header(&[SAMPLE_SECRET], T0 + 10_000, &body);
            let body = &body;
            let header = &header;
            futures::future::join_all((0..copies).map(|c| async move {
                tokio::time::sleep(Duration::from_millis((c as u64 * 3) % 11)).await;
                for _ in 0..20 {
                    let out = handle_webhook(d, Some(header), body).await;
                    if out.status == 200 {
                        return;
                    }
                    assert!(out.status >= 500, "{} {}", out.status, out.body);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                panic!("a copy was never accepted");
            }))
            .await;
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    let sent = d.queue.sent.lock().unwrap().len();
    assert_eq!(sent, events_n, "every event queued");
    // The messages on the queue, not only the sends counted.
    let queued = super::esm::drain(&sqs, &url).await;
    println!("I1 concurrent copies: {events_n} events × {copies} copies at once → {} messages queued, {} event ids queued more than once", queued.len(), d.queue.sent_twice().len());
    assert_eq!(queued.len(), events_n, "messages on the queue");
    d.queue.sent_twice()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i1_five_copies_at_once_of_each_of_three_hundred_events_are_queued_once_each() {
    let twice =
        concurrent_copies_are_queued_once(&super::atomic_moto::sdk_config().await, 300, 5).await;
    assert_eq!(twice, vec![], "event ids queued more than once");
}
