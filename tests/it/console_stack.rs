//! `ledgerbridge console --stack NAME` in a real browser: the SAM template deployed into moto's
//! CloudFormation, the intake, transform and erp-post run against the queues and table that
//! stack created (erp-post as the Lambda runs it, so it writes its activity items), and the
//! console resolved from the stack's name (`DescribeStacks`) over the stack's table and queues.
//! The ERP (Epicor sandbox) first lacks the items, so the payment's sales order is refused and
//! parked; the items are then added and the parked order is replayed from the page: it must be
//! in the ERP exactly once. Screenshots (`stack-*.png`) go to `target/tmp/console-screenshots/`.

use crate::console::{browse, cells, chromium, trim_amount};
use crate::stack::{deploy_for, env_of};
use crate::support::fake_stripe::FakeStripe;
use crate::support::fixtures::{event_body, SAMPLE_SECRET};
use crate::support::moto;
use ledgerbridge_adapters::aws::{DynamoStore, SecretsManagerSource, SqsQueue};
use ledgerbridge_adapters::lambda::RecordOutcome;
use ledgerbridge_app::erp_post::{ErpPost, PostConfig};
use ledgerbridge_app::transform::TransformConfig;
use ledgerbridge_cli::console::aws::AwsConsole;
use ledgerbridge_cli::console::model::ReadModel;
use ledgerbridge_cli::parked_aws::StackQueues;
use ledgerbridge_core::config::SecretLocation;
use ledgerbridge_core::message::SQS_MAX_MESSAGE_BYTES;
use ledgerbridge_core::secrets::{CachedSecrets, SecretSource};
use ledgerbridge_core::webhook::sign_header;
use ledgerbridge_core::FixedClock;
use ledgerbridge_erp_sandbox::{spawn, ErpKind, SandboxConfig, Seed};
use ledgerbridge_intake::{handle_webhook, Deps, RotatingVerifier, SecretsBackend};
use ledgerbridge_pipeline::mapping::{Mapping, EXAMPLE};
use ledgerbridge_pipeline::stages::TransformStage;
use ledgerbridge_stripe::{StripeClient, StripeClientConfig};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

type Transform = TransformStage<SqsQueue, SqsQueue, SqsQueue, StripeClient>;

/// Run the events and commands queues dry: the transform, then erp-post through its Lambda
/// handler (a retried message is sent again, as SQS would redeliver it).
async fn settle(
    sqs: &aws_sdk_sqs::Client,
    transform: &Transform,
    post: &ErpPost,
    events_url: &str,
    commands_url: &str,
) {
    for round in 0..12 {
        let events = moto::drain(sqs, events_url).await;
        for m in &events {
            assert_eq!(transform.process(m).await, RecordOutcome::Done);
        }
        let commands = moto::drain(sqs, commands_url).await;
        for (i, m) in commands.iter().enumerate() {
            let out = post
                .handle(json!({"Records": [{"messageId": format!("r{round}-{i}"), "body": m}]}))
                .await
                .unwrap();
            if out["batchItemFailures"]
                .as_array()
                .is_some_and(|f| !f.is_empty())
            {
                sqs.send_message()
                    .queue_url(commands_url)
                    .message_body(m)
                    .send()
                    .await
                    .unwrap();
            }
        }
        if events.is_empty() && commands.is_empty() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn console_over_the_stack_shows_records_and_replays_parked_work_once() {
    let chromium = chromium();
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&out_dir).unwrap();
    let sb = spawn(SandboxConfig::default()).await.unwrap().1;
    let mapping = Mapping::from_toml(EXAMPLE).unwrap();
    let mut items: Vec<String> = mapping.products.values().cloned().collect();
    items.extend([mapping.payments.item.clone(), mapping.refunds.item.clone()]);
    sb.seed(&Seed {
        erp: Some(ErpKind::Epicor),
        items: vec![],
        gl_accounts: vec!["4000".into()],
        closed_periods: vec![],
    })
    .unwrap();
    let keys = sb.keys();
    let erp_settings = json!({
        "kind": "epicor", "base_url": format!("{}/KineticTest", sb.base_url()), "company": "EPIC06",
        "invoice_group_id": "STRIPE", "cash_group_id": "STRIPECR",
        "journal": {"book_id": "MAIN", "journal_code": "GJ", "group_id": "STRIPEGL"},
        "timeout_ms": 5000, "api_key": keys.epicor_api_key, "user": keys.epicor_user, "password": keys.epicor_password
    });
    let fake = FakeStripe::default();
    let updated: Value = serde_json::from_slice(&event_body("customer.updated.json")).unwrap();
    fake.put("customers", updated["data"]["object"].clone());
    let stripe_base = fake.serve().await;

    let stack_name = moto::unique("lb-console");
    let handoff = deploy_for(
        &stack_name,
        "epicor",
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

    // webhook-intake and transform configured from the stack's environment (as tests/it/stack.rs).
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
    let transform: Transform = TransformStage {
        mapping: tcfg.mapping.clone(),
        stripe: StripeClient::new(scfg).unwrap(),
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
    // erp-post exactly as the Lambda builds and runs it.
    let pcfg = PostConfig::from_env(env_of(
        &handoff,
        "erp-post",
        &[
            ("LEDGERBRIDGE_ALLOW_EXAMPLE_CONFIG", "true"),
            ("LEDGERBRIDGE_STRIPE_API_BASE", &stripe_base),
        ],
    ))
    .unwrap();
    let post = ledgerbridge_app::erp_post::build(&conf, &pcfg)
        .await
        .unwrap();
    // The stack's queues, resolved from its name as `console --stack` does.
    let cfn = aws_sdk_cloudformation::Client::new(&conf);
    let stack = StackQueues::from_stack(&cfn, &stack_name).await.unwrap();
    let events_url = stack.queues["events"].clone();
    let commands_url = stack.queues["commands"].clone();
    assert_eq!(commands_url, tcfg.commands_queue_url);

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
    settle(&sqs, &transform, &post, &events_url, &commands_url).await;

    // The console over the stack.
    let recon =
        ledgerbridge_cli::console::recon_mapping(ledgerbridge_recon::service::config::EXAMPLE)
            .unwrap();
    let model = AwsConsole::new(&conf, stack, Some(recon)).unwrap();
    let payment = "pi_3JitFDNq7LbKx2RzWVv0OUYJ";
    let order_ref = format!("LB-{payment}-SO");
    let parked = model.parked().await.unwrap();
    let order = parked
        .iter()
        .find(|p| p.subject == order_ref)
        .unwrap_or_else(|| panic!("the sales order is not parked: {parked:?}"));
    assert_eq!(order.queue, "parked");
    assert_eq!(order.stage, "erp-post");
    let replay_id = order.id.clone();
    let order_reason = order.reason.clone();
    // The run holds one payment: every sales order in the ERP is its order.
    let in_erp = |kind: &str| {
        sb.documents(Some(ErpKind::Epicor))
            .unwrap()
            .into_iter()
            .filter(|d| d.kind == kind)
            .count()
    };
    assert_eq!(in_erp("sales_order"), 0);

    // The data is fixed (the ERP gets its items); the page then replays the order.
    sb.seed(&Seed {
        erp: Some(ErpKind::Epicor),
        items,
        gl_accounts: vec![],
        closed_periods: vec![],
    })
    .unwrap();
    let console = ledgerbridge_cli::console::spawn(model, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = format!("http://{console}");
    let docs = sb.documents(Some(ErpKind::Epicor)).unwrap();
    let tour = browse(json!({
        "chromium": chromium, "base": base, "out": out_dir, "mode": "tour", "prefix": "stack-",
        "record": payment, "replay_id": replay_id,
    }));

    // Records: every document the ERP holds, with the ERP's id and amount; the order parked.
    let records = cells(&tour["records"]);
    for d in docs.iter().filter(|d| {
        d.reference.as_deref().is_some_and(|r| r.starts_with("LB-")) && d.kind != "customer"
    }) {
        let row = records
            .iter()
            .find(|r| r[2].lines().any(|l| l.ends_with(&format!(" {}", d.erp_id))))
            .unwrap_or_else(|| panic!("{} ({}) not on the page: {records:?}", d.erp_id, d.kind));
        let amount = d.amount.as_deref().unwrap();
        let currency = d.currency.as_deref().unwrap_or("USD").to_uppercase();
        assert!(
            row[4].contains(&format!("{} {currency}", trim_amount(amount))),
            "{} shows {:?}, the ERP holds {amount} {currency}",
            d.erp_id,
            row[4]
        );
    }
    let state_of = |id: &str| {
        tour["records"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["attrs"]["data-object"] == id)
            .unwrap_or_else(|| panic!("{id} not listed"))["states"][0]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(state_of(payment), "parked");
    assert_eq!(state_of("cus_NHQM1cjewvnnbv"), "posted");
    let path = cells(&tour["record_path"]);
    let order_row = path
        .iter()
        .find(|r| r[1] == "sales_order")
        .unwrap_or_else(|| panic!("{path:?}"));
    assert!(order_row[6].starts_with("parked"), "{order_row:?}");
    assert!(order_row[6].contains(&order_reason), "{order_row:?}");
    assert!(
        order_row[0].contains("payment_intent.succeeded"),
        "the event that made the order: {order_row:?}"
    );
    assert!(
        order_row[5].contains("USD"),
        "the order's amount: {order_row:?}"
    );

    // Health: the parked order is a failed outcome of the day.
    let failed_day: usize = tour["rates"]["failed-day"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let posted_day: usize = tour["rates"]["posted-day"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(failed_day >= 1, "{:?}", tour["rates"]);
    assert!(posted_day >= 1, "{:?}", tour["rates"]);
    assert_ne!(tour["rates"]["rate-day"], "—");
    assert_eq!(
        tour["parked_count"],
        parked
            .iter()
            .filter(|p| p.queue == "parked")
            .count()
            .to_string()
    );

    // Parked work: the order, replayed from the page, audited in the table.
    // Both events that reported the payment made the order's command, so it may be parked more
    // than once; the page replays one message, and only that one leaves the list.
    let copies = parked.iter().filter(|p| p.subject == order_ref).count();
    let rows_of_order = |rows: &[Vec<String>]| {
        rows.iter()
            .filter(|r| r.first() == Some(&order_ref))
            .count()
    };
    let parked_rows = cells(&tour["parked"]);
    assert_eq!(rows_of_order(&parked_rows), copies, "{parked_rows:?}");
    assert!(tour["notice"]
        .as_str()
        .unwrap()
        .contains("sent back to the commands queue"));
    let after_rows = cells(&tour["parked_after"]);
    assert_eq!(rows_of_order(&after_rows), copies - 1, "{after_rows:?}");
    let audit = cells(&tour["audit"]);
    assert!(
        audit
            .iter()
            .any(|a| a[2] == "replay" && a[4].contains(&order_ref)),
        "{audit:?}"
    );

    // erp-post takes the replayed order: in the ERP once, and the page shows it posted.
    settle(&sqs, &transform, &post, &events_url, &commands_url).await;
    assert_eq!(
        in_erp("sales_order"),
        1,
        "the replayed order is in the ERP once: {:?}; parked now: {:?}",
        sb.documents(Some(ErpKind::Epicor)).unwrap(),
        AwsConsole::new(
            &conf,
            StackQueues::from_stack(&cfn, &stack_name).await.unwrap(),
            None
        )
        .unwrap()
        .parked()
        .await
        .unwrap()
    );
    let after = browse(json!({
        "chromium": chromium, "base": base, "out": out_dir, "mode": "record", "prefix": "stack-",
        "record": payment,
    }));
    let path = cells(&after["record_path"]);
    let order_row = path.iter().find(|r| r[1] == "sales_order").unwrap();
    assert_eq!(order_row[6], "posted", "{path:?}");
    // The ERP's id and amount of the order, as the ERP holds them.
    let order_doc = sb
        .documents(Some(ErpKind::Epicor))
        .unwrap()
        .into_iter()
        .find(|d| d.kind == "sales_order")
        .unwrap();
    assert_eq!(order_row[4], order_doc.erp_id, "{path:?}");
    let currency = order_doc
        .currency
        .as_deref()
        .unwrap_or("USD")
        .to_uppercase();
    assert_eq!(
        order_row[5],
        format!(
            "{} {currency}",
            trim_amount(order_doc.amount.as_deref().unwrap())
        ),
        "{path:?}"
    );
    for shot in [
        "records",
        "record",
        "payouts",
        "health",
        "parked-before",
        "parked-after",
        "audit",
        "record-after-replay",
    ] {
        assert!(
            out_dir.join(format!("stack-{shot}.png")).is_file(),
            "stack-{shot}.png"
        );
    }
    sb.shutdown().await;
}
