//! The Stripe API key is read from Secrets Manager on first use, not while a function starts,
//! and a key that cannot be read makes the message wait (retried), never parks it.

use crate::support::fake_stripe::FakeStripe;
use crate::support::fixtures::event_body;
use crate::support::moto;
use ledgerbridge_adapters::aws::{SecretsManagerSource, SqsQueue};
use ledgerbridge_adapters::lambda::RecordOutcome;
use ledgerbridge_core::ids::StripeEventId;
use ledgerbridge_core::message::SQS_MAX_MESSAGE_BYTES;
use ledgerbridge_messages::{IntakeMessage, RefReason, StripeEventRefV1};
use ledgerbridge_pipeline::mapping::{Mapping, EXAMPLE};
use ledgerbridge_pipeline::stages::TransformStage;
use ledgerbridge_stripe::StripeApi;
use serde_json::Value;

#[tokio::test]
async fn an_unreadable_stripe_key_is_retried_then_the_message_is_processed() {
    // GIVEN a Stripe stand-in that serves one event, and a transform whose Stripe key secret
    // does not exist yet in Secrets Manager (moto)
    let conf = moto::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let sm = aws_sdk_secretsmanager::Client::new(&conf);
    let fake = FakeStripe::default();
    let event: Value = serde_json::from_slice(&event_body("customer.created.json")).unwrap();
    fake.put("events", event.clone());
    let stripe_base = fake.serve().await;

    let secret_id = moto::unique("lb-stripe-key");
    let stripe = ledgerbridge_app::stripe_on_first_use(
        &SecretsManagerSource::new(sm.clone()),
        &secret_id,
        Some(&stripe_base),
    );
    let commands = moto::create_queue(&sqs, &moto::unique("lb-lazy-commands")).await;
    let parked = moto::create_queue(&sqs, &moto::unique("lb-lazy-parked")).await;
    let stage = TransformStage {
        mapping: Mapping::from_toml(EXAMPLE).unwrap(),
        stripe: stripe.clone(),
        commands: SqsQueue::new(sqs.clone(), &commands, SQS_MAX_MESSAGE_BYTES),
        reconciliation: None::<SqsQueue>,
        parked: SqsQueue::new(sqs.clone(), &parked, SQS_MAX_MESSAGE_BYTES),
    };
    assert!(!stripe.is_built(), "nothing read while building the stage");

    // An intake message that carries only the event's id: the transform must read the event
    // from Stripe, so it needs the key.
    let body = serde_json::to_string(&IntakeMessage::StripeEventRefV1(StripeEventRefV1 {
        event_id: StripeEventId::new(event["id"].as_str().unwrap()),
        event_type: event["type"].as_str().unwrap().to_owned(),
        created: event["created"].as_i64(),
        object_id: event["data"]["object"]["id"].as_str().map(str::to_owned),
        received_at_ms: 0,
        reason: RefReason::Oversized,
        body_bytes: 300_000,
    }))
    .unwrap();

    // WHEN the message arrives before the secret exists
    let first = stage.process(&body).await;

    // THEN it is retried with the reason, nothing is parked or queued, and Stripe was not called
    match &first {
        RecordOutcome::Retry(why) => {
            assert!(why.contains("Stripe API key unavailable"), "{why}");
            assert!(why.contains(&secret_id), "names the secret: {why}");
        }
        other => panic!("expected a retry, got {other:?}"),
    }
    assert!(!stripe.is_built());
    assert_eq!(stripe.calls(), 0);
    assert!(moto::drain(&sqs, &parked).await.is_empty(), "not parked");
    assert!(moto::drain(&sqs, &commands).await.is_empty());

    // WHEN the secret exists and the message is redelivered
    sm.create_secret()
        .name(&secret_id)
        .secret_string("sk_test_read_on_first_use")
        .send()
        .await
        .unwrap();
    let second = stage.process(&body).await;

    // THEN it is processed: the event read from Stripe, its command queued, nothing parked
    assert_eq!(second, RecordOutcome::Done);
    assert!(stripe.is_built());
    assert!(stripe.calls() >= 1);
    let queued = moto::drain(&sqs, &commands).await;
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert!(queued[0].contains("upsert_customer"), "{}", queued[0]);
    assert!(moto::drain(&sqs, &parked).await.is_empty());

    // AND the key, once read, is kept: a deleted secret does not stop the next message
    sm.delete_secret()
        .secret_id(&secret_id)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    assert_eq!(stage.process(&body).await, RecordOutcome::Done);
}

/// erp-post: the ERP settings secret is read when the first command needs the ERP, not while
/// the function starts; a secret that cannot be read makes the command wait (retried), never
/// parks it, and once readable the command is posted.
#[tokio::test]
async fn an_unreadable_erp_settings_secret_is_retried_then_the_command_is_posted() {
    use ledgerbridge_app::erp_post::{build, PostConfig};
    use ledgerbridge_core::config::Env;
    use ledgerbridge_erp::ErpConnector as _;
    use ledgerbridge_erp_sandbox::{spawn, SandboxConfig};

    // GIVEN the ERP sandbox, and an erp-post built from its deployed settings whose ERP
    // settings secret does not exist yet
    let conf = moto::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let ddb = aws_sdk_dynamodb::Client::new(&conf);
    let sm = aws_sdk_secretsmanager::Client::new(&conf);
    let (_, sandbox) = spawn(SandboxConfig::default()).await.unwrap();
    let table = moto::unique("lb-lazy-erp-state");
    moto::create_state_table(&ddb, &table).await;
    let parked = moto::create_queue(&sqs, &moto::unique("lb-lazy-erp-parked")).await;
    let secret_id = moto::unique("lb-erp-settings");
    let env = Env::from_map(
        [
            ("LEDGERBRIDGE_STATE_TABLE", table.as_str()),
            ("LEDGERBRIDGE_PARKED_QUEUE_URL", parked.as_str()),
            ("LEDGERBRIDGE_ERP_SECRET_ID", secret_id.as_str()),
            ("LEDGERBRIDGE_ERP_KIND", "sagepro"),
            ("LEDGERBRIDGE_ALLOW_EXAMPLE_CONFIG", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
    );
    let cfg = PostConfig::from_env(env).unwrap();
    let mut app = build(&conf, &cfg)
        .await
        .expect("built without reading the secret");
    app.stage.poster.policy = crate::faults::fast_policy();
    assert!(
        !app.stage.poster.connector.is_built(),
        "nothing read at start"
    );
    assert_eq!(app.stage.poster.connector.erp(), "sagepro");
    let body =
        crate::faults::journal_messages(1, &moto::unique("lazyerp").replace('-', "")).remove(0);

    // WHEN the command arrives before the secret exists
    let first = app.stage.process(&body).await;

    // THEN it is retried with a reason naming the secret, nothing is parked, nothing built
    match &first {
        RecordOutcome::Retry(why) => {
            assert!(why.contains("ERP settings unavailable"), "{why}");
            assert!(why.contains(&secret_id), "names the secret: {why}");
        }
        other => panic!("expected a retry, got {other:?}"),
    }
    assert!(!app.stage.poster.connector.is_built());
    assert!(moto::drain(&sqs, &parked).await.is_empty(), "not parked");

    // WHEN the secret exists and the command is redelivered
    let keys = sandbox.keys();
    let settings = serde_json::json!({
        "kind": "sagepro", "base_url": sandbox.base_url(), "timeout_ms": 5000,
        "api_key": keys.sagepro_api_key,
    });
    sm.create_secret()
        .name(&secret_id)
        .secret_string(settings.to_string())
        .send()
        .await
        .unwrap();
    let second = app.stage.process(&body).await;

    // THEN the journal is posted, once, and nothing is parked
    assert_eq!(second, RecordOutcome::Done);
    assert!(app.stage.poster.connector.is_built());
    assert!(moto::drain(&sqs, &parked).await.is_empty());
    assert_eq!(
        app.stage.process(&body).await,
        RecordOutcome::Done,
        "a redelivery is a no-op"
    );
}
