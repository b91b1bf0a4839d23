//! `ledgerbridge backfill` against the local pipeline (`ledgerbridge local`'s code, in this
//! process, posting into the Sage Pro sandbox), reading the sample data through the local Stripe
//! stand-in over HTTP with the real Stripe client.

use crate::support::fixtures::{event_body, fixtures_dir};
use ledgerbridge_cli::backfill::{self, Kind, Plan, Summary, Webhook};
use ledgerbridge_cli::local::{self, LocalArgs, QueueArgs, Running};
use ledgerbridge_core::webhook::sign_header;
use ledgerbridge_erp_sandbox::ErpKind;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const ERP: ErpKind = ErpKind::SagePro;

async fn start(dir: &Path) -> Running {
    local::start(&LocalArgs {
        port: 0,
        erp: ERP,
        data_dir: dir.join("data"),
        mapping: None,
        samples: fixtures_dir().join("stripe"),
        reconciliation: None,
        sweep_secs: 0,
        erp_poll_secs: 0,
        stop_after: None,
        queues: QueueArgs {
            visibility_timeout_secs: 120,
            max_receives: 10,
        },
    })
    .await
    .unwrap()
}

/// Every document the sandbox created, by the ledgerbridge reference its body carries (the
/// entity and ERP id when it carries none), and how many times it was created.
fn documents(running: &Running) -> BTreeMap<String, usize> {
    let sb = running.sandbox.as_ref().unwrap();
    let mut out = BTreeMap::new();
    for a in sb.audit(Some(ERP)).unwrap() {
        if a.action != "create" {
            continue;
        }
        let text = a.body.to_string();
        let key = match text.find("LB-") {
            Some(at) => format!(
                "{} {}",
                a.entity,
                text[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                    .collect::<String>()
            ),
            None => format!("{}:{}", a.entity, a.doc_id),
        };
        *out.entry(key).or_default() += 1;
    }
    out
}

fn creates(running: &Running) -> usize {
    crate::pipeline::creates(running.sandbox.as_ref().unwrap(), ERP)
}

async fn run(
    running: &Running,
    stripe: &ledgerbridge_stripe::StripeClient,
    plan: &Plan,
    cursors: &Path,
) -> Summary {
    let webhook = Webhook::new(&running.webhook_url(), &[local::DEV_SECRET.to_owned()]);
    let progress = backfill::quiet_progress();
    let s = backfill::backfill(stripe, plan, &webhook, cursors, &progress)
        .await
        .unwrap();
    assert!(running.idle(Duration::from_secs(60)).await, "not idle");
    s
}

fn plan(from: &str, to: &str, max_objects: Option<u64>, dry_run: bool) -> Plan {
    Plan {
        range: backfill::range_of(from, to).unwrap(),
        kinds: Kind::ALL.to_vec(),
        dry_run,
        max_objects,
        expand: Vec::new(),
        concurrency: 8,
    }
}

async fn deliver_webhook(running: &Running, file: &str) {
    let body = event_body(file);
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let resp = reqwest::Client::new()
        .post(running.webhook_url())
        .header(
            "stripe-signature",
            sign_header(&[local::DEV_SECRET], now, &body),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{file}: {}", resp.status());
}

/// GIVEN the sample data, with one payment and one refund of 2026-08-04 already delivered by
/// the live webhooks WHEN the backfill of that day runs as a dry run, then interrupted after two
/// objects, then resumed, then again THEN the dry run queues nothing, the interrupted run
/// continues from its cursor, the ERP holds exactly the documents of that day's objects, each
/// once, and the last run is all duplicates. A backfill of the whole year then adds the other
/// days' documents and doubles none.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backfill_books_exactly_the_range_once_resumes_and_never_doubles_the_webhooks() {
    let dir = std::env::temp_dir().join(format!("lb-backfill-{}", uuid::Uuid::new_v4()));
    let cursors = dir.join("cursors.json");
    let running = start(&dir).await;
    let stripe = backfill::stand_in_client(&fixtures_dir().join("stripe"), 0)
        .await
        .unwrap();

    // Dry run: what would be queued, nothing queued, no cursor. (The local pipeline seeds the
    // sample ERP customer at start.)
    let seeded = creates(&running);
    let dry = run(
        &running,
        &stripe,
        &plan("2026-08-04", "2026-08-04", None, true),
        &cursors,
    )
    .await;
    assert_eq!(dry.total(|k| k.queued), 3, "{dry:?}");
    assert_eq!(creates(&running), seeded);
    assert!(!cursors.exists());

    // The live webhooks delivered this payment and this refund already.
    deliver_webhook(&running, "payment_intent.succeeded.json").await;
    deliver_webhook(&running, "refund.created.json").await;
    assert!(running.idle(Duration::from_secs(60)).await);
    let from_webhooks = documents(&running);
    assert!(!from_webhooks.is_empty());

    // Interrupted after two objects, then resumed.
    let first = run(
        &running,
        &stripe,
        &plan("2026-08-04", "2026-08-04", Some(2), false),
        &cursors,
    )
    .await;
    assert_eq!(first.total(|k| k.queued), 2, "{first:?}");
    assert!(!first.complete, "{first:?}");
    assert!(cursors.exists());
    let second = run(
        &running,
        &stripe,
        &plan("2026-08-04", "2026-08-04", None, false),
        &cursors,
    )
    .await;
    assert_eq!(
        second.total(|k| k.queued) + second.total(|k| k.duplicates),
        1,
        "the resumed run delivers only what the first did not: {second:?}"
    );
    assert!(second.complete, "{second:?}");
    let day = documents(&running);
    // That day holds PaymentIntent pi_3JitF… (sales order and receipt), refund re_30DCl… (credit
    // memo) and paid invoice in_1gFOr… (invoice, and the receipt of its payment pi_3hs62F…);
    // the invoice's Stripe customer is created in the ERP because the invoice needs it, and
    // NW0042 is the customer the local pipeline seeds at start. (Sage Pro's reference fields
    // hold 16 characters.)
    let expected_day = vec![
        "cashreceipts LB-pi_3JitFDNq7L",
        "cashreceipts LB-pi_3hs62FNq7L",
        "creditmemos LB-re_30DCl0Nq7L",
        "customers LB-cus_v2hTtpvHRTXjHs-CU",
        "customers LB-erp_master_NW0042-CU",
        "invoices LB-in_1gFOr4Nq7L",
        "salesorders LB-pi_3JitFDNq7L",
    ];
    assert_eq!(
        day.keys().map(String::as_str).collect::<Vec<_>>(),
        expected_day,
        "{day:?}"
    );
    assert!(day.values().all(|n| *n == 1), "{day:?}");

    // Once more over the same day with a fresh cursor file: every event is a duplicate.
    let again = run(
        &running,
        &stripe,
        &plan("2026-08-04", "2026-08-04", None, false),
        &dir.join("other-cursors.json"),
    )
    .await;
    assert_eq!(again.total(|k| k.queued), 0, "{again:?}");
    assert_eq!(again.total(|k| k.duplicates), 3, "{again:?}");
    assert_eq!(documents(&running), day);

    // The whole year: the other days' objects are added, none of this day's doubled.
    let year = run(
        &running,
        &stripe,
        &plan("2026-01-01", "2026-12-31", None, false),
        &cursors,
    )
    .await;
    assert_eq!(year.total(|k| k.duplicates), 3, "{year:?}");
    let all = documents(&running);
    assert!(all.values().all(|n| *n == 1), "{all:?}");
    // The other days: refund re_3YTjQ… (credit memo), dispute dp_1vYN… (one journal per balance
    // transaction: the withdrawal and the reinstatement), the paid payout (its journal) and the
    // failed payout (the reversal journal, named by its balance transaction).
    let mut expected_year = expected_day.clone();
    expected_year.extend([
        "creditmemos LB-re_3YTjQYNq7L",
        "journalentries LB-po_1AlsD8Nq7L",
        "journalentries LB-txn_12xMwdNq7",
        "journalentries LB-txn_1ONFAcNq7",
        "journalentries LB-txn_1lyVshNq7",
    ]);
    expected_year.sort_unstable();
    assert_eq!(
        all.keys().map(String::as_str).collect::<Vec<_>>(),
        expected_year,
        "{all:?}"
    );
    running.shutdown(Duration::from_secs(10)).await;
    std::fs::remove_dir_all(&dir).ok();
}

/// GIVEN the SAM template deployed into moto WHEN customers and payments are backfilled into the
/// stack's webhook endpoint (the intake function's handler, configured from the stack, behind a
/// local HTTP server standing in for API Gateway) THEN the stack's events queue holds the
/// synthetic event, the transform and erp-post functions' stages, configured from the stack,
/// book the sales order and the receipt, and a second backfill queues nothing.
#[tokio::test]
async fn backfill_into_the_aws_stack_queues_events_the_functions_process() {
    use crate::stack::{deploy_with_secrets, env_of};
    use crate::support::fake_stripe::FakeStripe;
    use crate::support::fixtures::SAMPLE_SECRET;
    use crate::support::moto;
    use ledgerbridge_adapters::aws::{DynamoStore, SecretsManagerSource, SqsQueue};
    use ledgerbridge_adapters::lambda::RecordOutcome;
    use ledgerbridge_app::erp_post::PostConfig;
    use ledgerbridge_app::transform::TransformConfig;
    use ledgerbridge_core::config::SecretLocation;
    use ledgerbridge_core::ids::StripeObjectId;
    use ledgerbridge_core::message::SQS_MAX_MESSAGE_BYTES;
    use ledgerbridge_core::secrets::{CachedSecrets, SecretSource};
    use ledgerbridge_core::SystemClock;
    use ledgerbridge_erp::{
        AnyConnector, DocKind, ErpConnector, ErpSettings, ExternalRef, RetryPolicy,
    };
    use ledgerbridge_erp_sandbox::{spawn, SandboxConfig, Seed};
    use ledgerbridge_intake::{handle_webhook, Deps, RotatingVerifier, SecretsBackend};
    use ledgerbridge_pipeline::posting::Poster;
    use ledgerbridge_pipeline::stages::{PostStage, TransformStage};
    use ledgerbridge_stripe::{StripeClient, StripeClientConfig};
    use std::sync::Arc;

    let sb = spawn(SandboxConfig::default()).await.unwrap().1;
    let m =
        ledgerbridge_pipeline::mapping::Mapping::from_toml(ledgerbridge_pipeline::mapping::EXAMPLE)
            .unwrap();
    let mut items: Vec<String> = m.products.values().cloned().collect();
    items.extend([m.payments.item.clone(), m.refunds.item.clone()]);
    sb.seed(&Seed {
        erp: Some(ErpKind::SagePro),
        items,
        gl_accounts: vec![],
        closed_periods: vec![],
    })
    .unwrap();
    let erp_settings = serde_json::json!({"kind": "sagepro", "base_url": sb.base_url(),
        "timeout_ms": 5000, "api_key": sb.keys().sagepro_api_key});
    let fake = FakeStripe::default();
    let customer: serde_json::Value =
        serde_json::from_slice(&event_body("customer.updated.json")).unwrap();
    fake.put("customers", customer["data"]["object"].clone());
    let stripe_base = fake.serve().await;

    let handoff = deploy_with_secrets(
        &moto::unique("lb-backfill"),
        &[
            ("WebhookSigningSecret", format!("[\"{SAMPLE_SECRET}\"]")),
            ("StripeApiKeySecret", "sk_test_stack".to_owned()),
            ("ErpCredentialsSecret", erp_settings.to_string()),
        ],
    );
    assert_eq!(handoff["stack_status"], "CREATE_COMPLETE");
    let conf = moto::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let secrets = SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(&conf));

    // webhook-intake from the stack's environment, behind a local HTTP endpoint.
    let intake_cfg =
        ledgerbridge_intake::config_from_env(env_of(&handoff, "webhook-intake", &[])).unwrap();
    let SecretLocation::SecretsManager(secret_id) = &intake_cfg.webhook_secrets else {
        panic!("intake secret")
    };
    let intake = Arc::new(Deps::new(
        SqsQueue::new(
            sqs.clone(),
            &intake_cfg.queue_url,
            intake_cfg.max_message_bytes,
        ),
        DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&conf),
            &intake_cfg.state_table,
        ),
        RotatingVerifier::new(
            SecretsBackend::Aws(
                CachedSecrets::new(secrets.clone(), Duration::from_secs(300)),
                secret_id.clone(),
            ),
            300,
        ),
        SystemClock,
        &intake_cfg,
    ));
    let app = axum::Router::new()
        .route(
            "/webhook",
            axum::routing::post(
                |axum::extract::State(deps): axum::extract::State<Arc<Deps<_, _, _>>>,
                 headers: axum::http::HeaderMap,
                 body: axum::body::Bytes| async move {
                    let sig = headers
                        .get("stripe-signature")
                        .and_then(|v| v.to_str().ok());
                    let out = handle_webhook(&deps, sig, &body).await;
                    (
                        axum::http::StatusCode::from_u16(out.status).unwrap(),
                        out.body,
                    )
                },
            ),
        )
        .with_state(intake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // transform and erp-post, configured from the stack.
    let tcfg = TransformConfig::from_env(env_of(
        &handoff,
        "transform",
        &[
            ("LEDGERBRIDGE_STRIPE_API_BASE", &stripe_base),
            ("LEDGERBRIDGE_ALLOW_EXAMPLE_CONFIG", "true"),
        ],
    ))
    .unwrap();
    let key = secrets.fetch(&tcfg.stripe_key_secret_id).await.unwrap();
    let mut scfg = StripeClientConfig::new(key).with_base_url(&stripe_base);
    scfg.requests_per_second = 0;
    let transform_stripe = StripeClient::new(scfg).unwrap();
    let transform = TransformStage {
        mapping: tcfg.mapping.clone(),
        stripe: transform_stripe.clone(),
        commands: SqsQueue::new(
            sqs.clone(),
            &tcfg.commands_queue_url,
            tcfg.max_message_bytes,
        ),
        reconciliation: tcfg
            .reconciliation_queue_url
            .as_ref()
            .map(|u| SqsQueue::new(sqs.clone(), u, SQS_MAX_MESSAGE_BYTES)),
        parked: SqsQueue::new(sqs.clone(), &tcfg.parked_queue_url, SQS_MAX_MESSAGE_BYTES),
    };
    let pcfg = PostConfig::from_env(env_of(
        &handoff,
        "erp-post",
        &[("LEDGERBRIDGE_ALLOW_EXAMPLE_CONFIG", "true")],
    ))
    .unwrap();
    let settings =
        ErpSettings::from_json(&secrets.fetch(&pcfg.erp_secret_id).await.unwrap()).unwrap();
    let post = PostStage {
        poster: Poster {
            connector: AnyConnector::from_settings(settings).unwrap(),
            store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&conf), &pcfg.state_table),
            stripe: Some(transform_stripe),
            mapping: tcfg.mapping.clone(),
            policy: RetryPolicy {
                settle_after_ambiguous: Duration::from_millis(50),
                ..RetryPolicy::default()
            },
            clock: SystemClock,
            lease_ms: pcfg.lease_ms,
            intent_days: 90,
        },
        parked: SqsQueue::new(sqs.clone(), &pcfg.parked_queue_url, SQS_MAX_MESSAGE_BYTES),
    };

    // The ERP customer the sample Stripe customer names (as `ledgerbridge local` seeds it).
    let seed = ledgerbridge_erp::ErpCommand::UpsertCustomer(ledgerbridge_erp::CustomerUpsert {
        reference: ExternalRef::new(&StripeObjectId::new("erp_master_NW0042"), DocKind::Customer)
            .unwrap(),
        customer_id: "NW0042".into(),
        name: "Northwind Traders LLC".into(),
        email: Some("ap@northwind-traders.example".into()),
        currency: ledgerbridge_core::Currency::USD,
        address: Default::default(),
        phone: None,
    });
    ledgerbridge_erp::post_command(&post.poster.connector, &seed, &RetryPolicy::default())
        .await
        .unwrap();
    let creates = || {
        sb.audit(Some(ErpKind::SagePro))
            .unwrap()
            .iter()
            .filter(|a| a.action == "create")
            .count()
    };
    let seeded = creates();

    // Backfill the customers and payments of 2026-07-01 .. 2026-08-04 from the sample data
    // into the stack: two customers (one of them names ERP customer NW0042) and one payment.
    let stripe = backfill::stand_in_client(&fixtures_dir().join("stripe"), 0)
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("lb-backfill-aws-{}", uuid::Uuid::new_v4()));
    let mut p = plan("2026-07-01", "2026-08-04", None, false);
    p.kinds = vec![Kind::Payments, Kind::Customers];
    let webhook = Webhook::new(&url, &[SAMPLE_SECRET.to_owned()]);
    let quiet = backfill::quiet_progress();
    let first = backfill::backfill(&stripe, &p, &webhook, &dir.join("c.json"), &quiet)
        .await
        .unwrap();
    assert_eq!(first.total(|k| k.queued), 3, "{first:?}");

    let events = moto::drain(&sqs, &tcfg_events_url(&handoff)).await;
    assert_eq!(events.len(), 3);
    let commands_url = tcfg.commands_queue_url.clone();
    // The customers were delivered first; each event is transformed and its commands posted
    // before the next, as the functions would (the sales order needs its customer).
    for event in &events {
        let msg: serde_json::Value = serde_json::from_str(event).unwrap();
        assert_eq!(msg["type"], "stripe_event.v1");
        assert!(msg["event_id"].as_str().unwrap().starts_with("evt_lbbf_"));
        assert_eq!(transform.process(event).await, RecordOutcome::Done);
        for _ in 0..5 {
            let commands = moto::drain(&sqs, &commands_url).await;
            if commands.is_empty() {
                break;
            }
            for c in &commands {
                if let RecordOutcome::Retry(_) = post.process(c).await {
                    sqs.send_message()
                        .queue_url(&commands_url)
                        .message_body(c)
                        .send()
                        .await
                        .unwrap();
                }
            }
        }
    }
    let parked = moto::drain(&sqs, handoff["queues"]["parked"]["url"].as_str().unwrap()).await;
    assert!(parked.is_empty(), "{parked:?}");
    for kind in [DocKind::SalesOrder, DocKind::CashReceipt] {
        let r =
            ExternalRef::new(&StripeObjectId::new("pi_3JitFDNq7LbKx2RzWVv0OUYJ"), kind).unwrap();
        assert!(
            post.poster
                .connector
                .find_by_reference(&r)
                .await
                .unwrap()
                .is_some(),
            "{r} not in the ERP"
        );
    }
    assert_eq!(
        creates() - seeded,
        3,
        "the new customer (the other is linked to NW0042), the sales order and the receipt, once each"
    );

    // Again, with a fresh cursor file: the stack's intake answers duplicate, nothing queued.
    let again = backfill::backfill(&stripe, &p, &webhook, &dir.join("c2.json"), &quiet)
        .await
        .unwrap();
    assert_eq!(
        (again.total(|k| k.queued), again.total(|k| k.duplicates)),
        (0, 3)
    );
    assert!(moto::drain(&sqs, &tcfg_events_url(&handoff))
        .await
        .is_empty());
    std::fs::remove_dir_all(&dir).ok();
}

/// The queue the transform function reads (its event source).
fn tcfg_events_url(handoff: &serde_json::Value) -> String {
    let arn = handoff["functions"]["transform"]["event_sources"][0]["queue_arn"]
        .as_str()
        .unwrap();
    handoff["queues"]
        .as_object()
        .unwrap()
        .values()
        .find(|q| q["arn"] == arn)
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned()
}
