//! The SAM template deployed into moto's CloudFormation (translated offline), and the pipeline
//! run against exactly the queues, table and secrets that stack created, with each function
//! configured from the environment the template gives it.

use crate::support::fake_stripe::FakeStripe;
use crate::support::fixtures::{event_body, SAMPLE_SECRET};
use crate::support::moto::{self, repo_root};
use ledgerbridge_adapters::aws::{DynamoStore, SecretsManagerSource, SqsQueue};
use ledgerbridge_adapters::lambda::RecordOutcome;
use ledgerbridge_app::erp_post::PostConfig;
use ledgerbridge_app::transform::TransformConfig;
use ledgerbridge_core::config::{Env, SecretLocation};
use ledgerbridge_core::ids::StripeObjectId;
use ledgerbridge_core::message::SQS_MAX_MESSAGE_BYTES;
use ledgerbridge_core::secrets::{CachedSecrets, SecretSource};
use ledgerbridge_core::webhook::sign_header;
use ledgerbridge_core::{FixedClock, SystemClock};
use ledgerbridge_erp::{
    AnyConnector, DocKind, ErpConnector, ErpSettings, ExternalRef, RetryPolicy,
};
use ledgerbridge_erp_sandbox::{spawn, ErpKind, SandboxConfig, Seed};
use ledgerbridge_intake::{handle_webhook, Deps, RotatingVerifier, SecretsBackend};
use ledgerbridge_pipeline::mapping::EXAMPLE;
use ledgerbridge_pipeline::posting::Poster;
use ledgerbridge_pipeline::stages::{PostStage, TransformStage};
use ledgerbridge_stripe::{StripeClient, StripeClientConfig};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

/// Deploy the template into the shared moto server; returns the hand-off document.
fn deploy(stack: &str, erp_settings: &Value) -> Value {
    deploy_with_secrets(
        stack,
        &[
            ("WebhookSigningSecret", format!("[\"{SAMPLE_SECRET}\"]")),
            ("StripeApiKeySecret", "sk_test_stack".to_owned()),
            ("ErpCredentialsSecret", erp_settings.to_string()),
        ],
    )
}

/// Deploy the template with the given initial secret values (logical id, value), for Sage Pro.
pub(crate) fn deploy_with_secrets(stack: &str, secrets: &[(&str, String)]) -> Value {
    deploy_for(stack, "sagepro", secrets)
}

/// Deploy the template for one ERP kind (its `ErpKind` parameter) with the given initial secret
/// values (logical id, value).
pub(crate) fn deploy_for(stack: &str, erp_kind: &str, secrets: &[(&str, String)]) -> Value {
    let root = repo_root();
    let python = root.join(".venv/bin/python");
    let has_translator = Command::new(&python)
        .args(["-c", "import samtranslator"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_translator {
        let ok = Command::new("bash")
            .arg(root.join("tests/setup.sh"))
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "tests/setup.sh failed");
    }
    let out = std::env::temp_dir().join(format!("{stack}.json"));
    let status = Command::new(&python)
        .arg(root.join("infra/checks/moto_stack.py"))
        .args(["--endpoint", &moto::moto().endpoint, "--out"])
        .arg(&out)
        .args([
            "--stack-name",
            stack,
            "--stage",
            "e2e",
            "--erp-kind",
            erp_kind,
        ])
        .args(
            secrets
                .iter()
                .map(|(id, value)| format!("--secret={id}={value}")),
        )
        .status()
        .expect("run moto_stack.py");
    assert!(status.success(), "deploying the template into moto failed");
    serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap()
}

/// The environment a function gets from the stack, plus what the SDK needs to reach moto.
pub(crate) fn env_of(handoff: &Value, function: &str, extra: &[(&str, &str)]) -> Env {
    let mut vars: HashMap<String, String> = handoff["functions"][function]["environment"]
        .as_object()
        .unwrap_or_else(|| panic!("no environment for {function}"))
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    vars.insert("AWS_ENDPOINT_URL".into(), moto::moto().endpoint.clone());
    for (k, v) in extra {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    Env::from_map(vars)
}

async fn drain(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    moto::drain(sqs, url).await
}

#[tokio::test]
async fn pipeline_runs_on_the_resources_the_template_creates() {
    let sb = spawn(SandboxConfig::default()).await.unwrap().1;
    let m = ledgerbridge_pipeline::mapping::Mapping::from_toml(EXAMPLE).unwrap();
    let mut items: Vec<String> = m.products.values().cloned().collect();
    items.extend([m.payments.item.clone(), m.refunds.item.clone()]);
    sb.seed(&Seed {
        erp: Some(ErpKind::SagePro),
        items,
        gl_accounts: vec![],
        closed_periods: vec![],
    })
    .unwrap();
    let erp_settings = json!({"kind": "sagepro", "base_url": sb.base_url(), "timeout_ms": 5000, "api_key": sb.keys().sagepro_api_key});
    let fake = FakeStripe::default();
    let updated: Value = serde_json::from_slice(&event_body("customer.updated.json")).unwrap();
    fake.put("customers", updated["data"]["object"].clone());
    let stripe_base = fake.serve().await;

    let stack = moto::unique("lb-e2e");
    let handoff = deploy(&stack, &erp_settings);
    assert_eq!(handoff["stack_status"], "CREATE_COMPLETE");
    let conf = moto::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let secrets = SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(&conf));

    // webhook-intake, configured only from the stack's environment.
    let intake_cfg =
        ledgerbridge_intake::config_from_env(env_of(&handoff, "webhook-intake", &[])).unwrap();
    let SecretLocation::SecretsManager(secret_id) = &intake_cfg.webhook_secrets else {
        panic!("intake secret")
    };
    let t = 1_786_000_000;
    let intake = Deps::new(
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
        FixedClock::at_secs(t),
        &intake_cfg,
    );

    // transform and erp-post, the same way.
    let tcfg = TransformConfig::from_env(env_of(
        &handoff,
        "transform",
        &[
            ("LEDGERBRIDGE_STRIPE_API_BASE", &stripe_base),
            // The deployed stack is given no mapping here: a trial on the example one.
            ("LEDGERBRIDGE_ALLOW_EXAMPLE_CONFIG", "true"),
        ],
    ))
    .unwrap();
    let key = secrets.fetch(&tcfg.stripe_key_secret_id).await.unwrap();
    let mut scfg = StripeClientConfig::new(key).with_base_url(&stripe_base);
    scfg.requests_per_second = 0;
    let stripe = StripeClient::new(scfg).unwrap();
    let transform = TransformStage {
        mapping: tcfg.mapping.clone(),
        stripe: stripe.clone(),
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
    let connector = AnyConnector::from_settings(settings).unwrap();
    let post = PostStage {
        poster: Poster {
            connector,
            store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&conf), &pcfg.state_table),
            stripe: Some(stripe),
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

    // The queues the functions read are the ones their event sources name.
    let source_url = |function: &str| {
        let arn = handoff["functions"][function]["event_sources"][0]["queue_arn"]
            .as_str()
            .unwrap()
            .to_owned();
        handoff["queues"]
            .as_object()
            .unwrap()
            .values()
            .find(|q| q["arn"] == arn.as_str())
            .unwrap()["url"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (events_url, commands_url) = (source_url("transform"), source_url("erp-post"));

    for f in [
        "customer.created.json",
        "payment_intent.succeeded.json",
        "charge.succeeded.json",
    ] {
        let body = event_body(f);
        for _ in 0..2 {
            let out = handle_webhook(
                &intake,
                Some(&sign_header(&[SAMPLE_SECRET], t, &body)),
                &body,
            )
            .await;
            assert_eq!(out.status, 200, "{f}");
        }
    }
    for _ in 0..10 {
        let events = drain(&sqs, &events_url).await;
        for m in &events {
            assert_eq!(transform.process(m).await, RecordOutcome::Done);
        }
        let commands = drain(&sqs, &commands_url).await;
        for m in &commands {
            if let RecordOutcome::Retry(_) = post.process(m).await {
                sqs.send_message()
                    .queue_url(&commands_url)
                    .message_body(m)
                    .send()
                    .await
                    .unwrap();
            }
        }
        if events.is_empty() && commands.is_empty() {
            break;
        }
    }
    assert!(
        drain(&sqs, handoff["queues"]["parked"]["url"].as_str().unwrap())
            .await
            .is_empty()
    );
    let c = &post.poster.connector;
    for (id, kind) in [
        ("cus_NHQM1cjewvnnbv", DocKind::Customer),
        ("pi_3JitFDNq7LbKx2RzWVv0OUYJ", DocKind::SalesOrder),
        ("pi_3JitFDNq7LbKx2RzWVv0OUYJ", DocKind::CashReceipt),
    ] {
        let r = ExternalRef::new(&StripeObjectId::new(id), kind).unwrap();
        assert!(
            c.find_by_reference(&r).await.unwrap().is_some(),
            "{r} not in the ERP"
        );
    }
    let creates = sb
        .audit(Some(ErpKind::SagePro))
        .unwrap()
        .iter()
        .filter(|a| a.action == "create")
        .count();
    assert_eq!(creates, 3);

    // The scheduled ERP poll as erp-post runs it, configured from the stack: the customer the
    // pipeline created is listed and its (unchanged) values go to the ERP events queue.
    let events_url = pcfg
        .erp_events_queue_url
        .clone()
        .expect("erp-post is given the ERP events queue");
    let poll = ledgerbridge_pipeline::to_stripe::poll::ErpPoll {
        connector: AnyConnector::from_settings(
            ErpSettings::from_json(&secrets.fetch(&pcfg.erp_secret_id).await.unwrap()).unwrap(),
        )
        .unwrap(),
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&conf), &pcfg.state_table),
        queue: SqsQueue::new(sqs.clone(), &events_url, SQS_MAX_MESSAGE_BYTES),
        overlap_secs: pcfg.poll_overlap_secs,
        first_run_secs: pcfg.poll_first_run_secs,
        limit: pcfg.poll_limit,
    };
    let now = ledgerbridge_core::Clock::now_secs(&SystemClock);
    let report = poll.poll(now).await.unwrap();
    assert_eq!((report.listed, report.queued), (1, 1), "{report:?}");
    let queued = drain(&sqs, &events_url).await;
    assert_eq!(queued.len(), 1);
    assert!(
        queued[0].contains("erp_customer_changed.v1"),
        "{}",
        queued[0]
    );
    sb.shutdown().await;
}

/// The template's Stripe → EventBridge rule writes, for each event, the same versioned message
/// the webhook intake writes: substitute an event into its input template the way EventBridge does
/// (JSON values in place of `<id>`, `<type>`, `<detail>`) and the transform reads it.
#[test]
fn eventbridge_input_template_yields_an_intake_message() {
    let yaml = std::fs::read_to_string(repo_root().join("infra/template.yaml")).unwrap();
    let start = yaml
        .find("InputTemplate: >-")
        .expect("input template in the template");
    let template: String = yaml[start..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("              "))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    let event: Value = serde_json::from_slice(&event_body("charge.succeeded.json")).unwrap();
    let text = template
        .replace("<id>", &event["id"].to_string())
        .replace("<type>", &event["type"].to_string())
        .replace("<detail>", &event.to_string());
    match ledgerbridge_messages::IntakeMessage::decode(&text).unwrap() {
        ledgerbridge_messages::IntakeMessage::StripeEventV1(m) => {
            assert_eq!(m.event_id.as_str(), event["id"].as_str().unwrap());
            assert_eq!(m.event_type, "charge.succeeded");
            let parsed: ledgerbridge_core::event::Event =
                serde_json::from_str(m.event.get()).unwrap();
            assert_eq!(parsed.data.object["id"], event["data"]["object"]["id"]);
        }
        other => panic!("unexpected message {other:?}"),
    }
}
