//! The operator console in a real browser: Debian's Chromium, headless, driven through
//! playwright-core (`tests/support/node/console.js`). The sample pipeline runs on the local
//! runner; one dispute journal is first sent while the ERP answers 503, so it ends in the
//! commands queue's dead letters (parked work). The browser then reads the records, states,
//! amounts and a payout's deposit, and replays the dead letter from the page; the journal
//! must then be in the ERP exactly once. Screenshots of every page are written under
//! `target/tmp/console-screenshots/`.

use ledgerbridge_cli::console::embedded::Embedded;
use ledgerbridge_cli::console::model::ReadModel;
use ledgerbridge_cli::local::{self, LocalArgs, QueueArgs};
use ledgerbridge_erp::ErpKind;
use ledgerbridge_erp_sandbox::Faults;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

pub(crate) fn chromium() -> PathBuf {
    let root = crate::support::moto::repo_root();
    let find = || {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|d| d.join("chromium"))
            .find(|p| p.is_file())
    };
    let pw = root.join("tests/support/node/node_modules/playwright-core/package.json");
    if find().is_none() || !pw.exists() {
        let status = Command::new("bash")
            .arg(root.join("tests/setup.sh"))
            .status()
            .expect("setup");
        assert!(status.success(), "tests/setup.sh failed");
    }
    find().expect("chromium is installed by tests/setup.sh (Debian package `chromium`)")
}

pub(crate) fn browse(input: Value) -> Value {
    let root = crate::support::moto::repo_root();
    let mut child = Command::new("node")
        .arg(root.join("tests/support/node/console.js"))
        .current_dir(root.join("tests/support/node"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the browser run failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn args(dir: &Path, max_receives: u32) -> LocalArgs {
    LocalArgs {
        port: 0,
        erp: ErpKind::Epicor,
        data_dir: dir.to_path_buf(),
        mapping: None,
        samples: crate::support::fixtures::fixtures_dir().join("stripe"),
        reconciliation: None,
        sweep_secs: 0,
        erp_poll_secs: 0,
        stop_after: None,
        queues: QueueArgs {
            visibility_timeout_secs: 120,
            max_receives,
        },
        console: Default::default(),
    }
}

pub(crate) fn cells(rows: &Value) -> Vec<Vec<String>> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["cells"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_owned())
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn console_in_a_browser_shows_the_pipeline_and_replays_parked_work_once() {
    let chromium = chromium();
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&out_dir).unwrap();
    let dir = std::env::temp_dir().join(format!(
        "lb-console-it-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let events = crate::support::fixtures::fixtures_dir().join("stripe/events");
    let secrets = [local::DEV_SECRET.to_owned()];

    // 1. The ERP is down while the dispute is delivered: its journal is retried until it
    //    reaches the commands queue's dead letters.
    let first = tempdir_with(&dir.join("first"), &events, "charge.dispute.created.json");
    let mut running = local::start(&args(&dir, 2)).await.unwrap();
    running.sandbox.as_ref().unwrap().set_faults(Faults {
        fail_before_commit: 100_000,
        ..Faults::default()
    });
    let s = ledgerbridge_cli::replay::replay(&running.webhook_url(), &first, &secrets, 1)
        .await
        .unwrap();
    assert_eq!(s.accepted, 1);
    let model = Embedded::open(&dir, None).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let parked = loop {
        let p = model.parked().await.unwrap();
        if !p.is_empty() && running.idle(Duration::from_secs(1)).await {
            break p;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(parked[0].queue, "commands");
    let journal_ref = parked[0].subject.clone();
    assert!(journal_ref.ends_with("-JE"), "{journal_ref}");
    let stripe_id = journal_ref
        .trim_start_matches("LB-")
        .trim_end_matches("-JE")
        .to_owned();
    let sandbox = running.sandbox.take().unwrap();
    assert!(running.shutdown(Duration::from_secs(10)).await);
    sandbox.shutdown().await;

    // 2. The ERP is back: every sample event, twice.
    let running = local::start(&args(&dir, 10)).await.unwrap();
    let s = ledgerbridge_cli::replay::replay(&running.webhook_url(), &events, &secrets, 2)
        .await
        .unwrap();
    assert_eq!(s.rejected, 0);
    assert!(
        running.idle(Duration::from_secs(90)).await,
        "pipeline did not settle"
    );
    let sb = running.sandbox.as_ref().unwrap();
    // The ERP holds references shortened to its field's width (`LB-txn_1lyVshNq7~…-JE`): match
    // on the kept head and the kind.
    let head: String = journal_ref.chars().take(16).collect();
    let count = || {
        sb.documents(Some(ErpKind::Epicor))
            .unwrap()
            .iter()
            .filter(|d| {
                d.kind == "journal_entry"
                    && d.reference
                        .as_deref()
                        .is_some_and(|r| r.starts_with(&head) && r.ends_with("-JE"))
            })
            .count()
    };
    assert_eq!(count(), 0, "dead-lettered, not posted yet");

    // 3. The console, served in process over the data directory, in the browser.
    let recon = local::Options::local(&args(&dir, 10))
        .unwrap()
        .reconciliation_toml;
    // The console reads the payout journal's posting state from the ERP, with the settings
    // the local runner gives its connector.
    let keys = sb.keys();
    let erp_settings = serde_json::json!({
        "kind": "epicor", "base_url": format!("{}/KineticLocal", sb.base_url()), "company": "EPIC06",
        "invoice_group_id": "STRIPE", "cash_group_id": "STRIPECR",
        "journal": {"book_id": "MAIN", "journal_code": "GJ", "group_id": "STRIPEGL"},
        "api_key": keys.epicor_api_key, "user": keys.epicor_user, "password": keys.epicor_password
    });
    let erp = ledgerbridge_erp::AnyConnector::from_settings(
        ledgerbridge_erp::ErpSettings::from_json(&ledgerbridge_core::secrets::Secret::new(
            erp_settings.to_string(),
        ))
        .unwrap(),
    )
    .unwrap();
    let console = ledgerbridge_cli::console::spawn(
        Embedded::open(
            &dir,
            Some(ledgerbridge_cli::console::recon_mapping(&recon).unwrap()),
        )
        .unwrap()
        .with_erp(erp),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let base = format!("http://{console}");
    let docs = sb.documents(Some(ErpKind::Epicor)).unwrap();
    let payout_json: Value =
        serde_json::from_slice(&std::fs::read(events.join("payout.paid.json")).unwrap()).unwrap();
    // Whatever else the run parked (the ERP may reject a document) is listed too: read the
    // queue files directly for what the page must show.
    let parked_queue = ledgerbridge_adapters::embedded::SqliteQueue::open(
        &dir.join("queue-parked.sqlite"),
        Default::default(),
    )
    .unwrap();
    let parked_bodies: Vec<String> = parked_queue
        .dead_letters()
        .unwrap()
        .into_iter()
        .map(|d| d.body)
        .collect();
    let commands_queue = ledgerbridge_adapters::embedded::SqliteQueue::open(
        &dir.join("queue-commands.sqlite"),
        Default::default(),
    )
    .unwrap();
    let dead = commands_queue.dead_letters().unwrap();
    assert_eq!(dead.len(), 1);
    let replay_id = format!("commands:{}", dead[0].id.as_str());
    let tour = browse(serde_json::json!({
        "chromium": chromium, "base": base, "out": out_dir, "mode": "tour",
        "record": "pi_3JitFDNq7LbKx2RzWVv0OUYJ", "replay_id": replay_id,
        "payout": payout_json["data"]["object"]["id"],
    }));

    // Records: every document the ERP holds is listed, posted, with the ERP's id and amount.
    let records = cells(&tour["records"]);
    for d in docs.iter().filter(|d| {
        d.reference.as_deref().is_some_and(|r| r.starts_with("LB-")) && d.kind != "customer"
    }) {
        let row = records
            .iter()
            .find(|r| r[2].lines().any(|l| l.ends_with(&format!(" {}", d.erp_id))))
            .unwrap_or_else(|| {
                panic!(
                    "{} ({}) not on the records page: {records:?}",
                    d.erp_id, d.kind
                )
            });
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
    let payment_parked = parked_bodies
        .iter()
        .any(|b| b.contains("pi_3JitFDNq7LbKx2RzWVv0OUYJ"));
    assert_eq!(
        state_of("pi_3JitFDNq7LbKx2RzWVv0OUYJ"),
        if payment_parked { "parked" } else { "posted" }
    );
    assert_eq!(state_of(&stripe_id), "dead letter");
    // The filter keeps only the posted credit memos (two refunds in the samples).
    let filtered = cells(&tour["filtered"]);
    assert!(!filtered.is_empty());
    assert!(
        filtered.iter().all(|r| r[2].contains("credit_memo")),
        "{filtered:?}"
    );
    // One payment's path: two events (payment_intent.succeeded, charge.succeeded) → order + receipt.
    let path = cells(&tour["record_path"]);
    assert_eq!(path.len(), 2, "{path:?}");
    let order = path.iter().find(|r| r[1] == "sales_order").unwrap();
    assert_eq!(order[6], "posted", "{path:?}");
    assert!(
        order[0].contains("payment_intent.succeeded") && order[0].contains("charge.succeeded"),
        "both events that reported the payment: {order:?}"
    );
    assert!(path.iter().any(|r| r[1] == "cash_receipt"
        && r[6].starts_with(if payment_parked { "parked" } else { "posted" })));

    // Payouts: the paid payout's deposit is Stripe's payout amount and the journal ties to it.
    let amount = payout_json["data"]["object"]["amount"].as_i64().unwrap();
    let expected = format!("{}.{:02} USD", amount / 100, amount % 100);
    let deposits: Vec<String> = cells(&tour["payouts"])
        .iter()
        .map(|r| r[1].clone())
        .collect();
    assert!(
        deposits.contains(&expected),
        "{expected} not in {deposits:?}"
    );
    assert_eq!(tour["deposit"].as_str().unwrap(), expected);
    assert_eq!(tour["tie"], "yes", "{:?}", tour["payout_summary"]);
    // The journal's posting state in the ERP's ledger, as the ERP holds it.
    let journal_id = tour["journal_id"].as_str().unwrap();
    let in_erp = docs
        .iter()
        .find(|d| d.kind == "journal_entry" && d.erp_id == journal_id)
        .unwrap_or_else(|| panic!("journal {journal_id} not in the ERP"));
    assert_eq!(
        tour["journal_ledger"].as_str().unwrap(),
        match in_erp.state {
            ledgerbridge_erp_sandbox::DocState::Posted => "posted to the ledger",
            ledgerbridge_erp_sandbox::DocState::Entered => "entered, not posted",
        }
    );
    assert!(tour["lines_csv"]
        .as_str()
        .unwrap()
        .starts_with("payout,account,side,amount"));
    assert!(!tour["chart_bars"].as_array().unwrap().is_empty());
    assert_eq!(tour["parked_count"], parked_bodies.len().to_string());
    let queues = cells(&tour["queues"]);
    let commands = queues.iter().find(|q| q[0] == "commands").unwrap();
    assert_eq!(commands[2], "1", "one dead letter: {queues:?}");

    // Parked work: the dead letter, replayed from the page.
    let parked_rows = cells(&tour["parked"]);
    assert_eq!(
        parked_rows.len(),
        parked_bodies.len() + 1,
        "{parked_rows:?}"
    );
    assert!(
        parked_rows.iter().any(|r| r[0] == journal_ref),
        "{parked_rows:?}"
    );
    assert!(tour["notice"]
        .as_str()
        .unwrap()
        .contains("sent back to the commands queue"));
    let after_rows = cells(&tour["parked_after"]);
    assert_eq!(after_rows.len(), parked_bodies.len(), "{after_rows:?}");
    assert!(
        after_rows.iter().all(|r| r[0] != journal_ref),
        "{after_rows:?}"
    );
    let audit = cells(&tour["audit"]);
    assert!(
        audit
            .iter()
            .any(|a| a[2] == "replay" && a[4].contains(&journal_ref)),
        "{audit:?}"
    );

    assert!(running.idle(Duration::from_secs(60)).await);
    assert_eq!(count(), 1, "the replayed journal is in the ERP once");
    let after = browse(serde_json::json!({
        "chromium": chromium, "base": base, "out": out_dir, "mode": "record", "record": stripe_id,
    }));
    let path = cells(&after["record_path"]);
    assert!(path.iter().all(|r| r[6] == "posted"), "{path:?}");
    assert!(commands_queue.dead_letters().unwrap().is_empty());
    for shot in [
        "records",
        "record",
        "payouts",
        "payout",
        "health",
        "parked-before",
        "parked-after",
        "audit",
        "record-after-replay",
    ] {
        assert!(out_dir.join(format!("{shot}.png")).is_file(), "{shot}.png");
    }

    running.shutdown(Duration::from_secs(10)).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A directory holding only `file` from `events`.
fn tempdir_with(dir: &Path, events: &Path, file: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(events.join(file), dir.join(file)).unwrap();
    dir.to_path_buf()
}

/// "12.3400" → "12.34": the ERP's decimals, trimmed to the currency's two.
pub(crate) fn trim_amount(a: &str) -> String {
    let d: rust_decimal::Decimal = a.parse().unwrap();
    format!("{:.2}", d)
}

/// `ledgerbridge parked --stack-outputs`: the stack's parked queue and a dead-letter queue in
/// moto, listed and replayed through the real AWS SDK; the replay is audited in the table.
#[tokio::test]
async fn parked_work_on_the_stack_is_listed_and_replayed_with_an_audit_item() {
    use crate::support::moto;
    use ledgerbridge_cli::parked_aws::{AwsParked, StackQueues};
    let sdk = moto::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let parked_url = moto::create_queue(&sqs, &moto::unique("parked")).await;
    let commands_url = moto::create_queue(&sqs, &moto::unique("commands")).await;
    let dlq_url = moto::create_queue(&sqs, &moto::unique("commands-dlq")).await;
    let table = moto::unique("state");
    moto::create_state_table(&ddb, &table).await;
    let outputs = serde_json::json!({"Stacks": [{"Outputs": [
        {"OutputKey": "ParkedQueueUrl", "OutputValue": parked_url},
        {"OutputKey": "CommandsQueueUrl", "OutputValue": commands_url},
        {"OutputKey": "CommandsDeadLetterQueueUrl", "OutputValue": dlq_url},
        {"OutputKey": "StateTableName", "OutputValue": table},
    ]}]});
    let stack = StackQueues::from_outputs_json(&outputs.to_string()).unwrap();

    // A command erp-post parked (as `parked.v1`), and a command in the commands DLQ.
    let command = |pi: &str| {
        use ledgerbridge_erp::{CashReceipt, DocKind, ErpCommand, ErpDate, ExternalRef};
        let msg = ledgerbridge_messages::ErpCommandV1 {
            command: ErpCommand::CreateCashReceipt(CashReceipt {
                reference: ExternalRef::new(
                    &ledgerbridge_core::ids::StripeObjectId::new(pi),
                    DocKind::CashReceipt,
                )
                .unwrap(),
                customer_id: "NW0042".into(),
                receipt_date: ErpDate::parse("2026-05-01").unwrap(),
                amount: ledgerbridge_core::Money::new(1234, ledgerbridge_core::Currency::USD),
                payment_method: "CC".into(),
                applies_to: None,
            }),
            customer: None,
            depends_on: vec![],
            version: None,
            write_back: None,
            source: ledgerbridge_messages::Source {
                event_id: "evt_1".into(),
                event_type: "payment_intent.succeeded".into(),
                created: 0,
            },
        };
        ledgerbridge_messages::CommandMessage::ErpCommandV1(Box::new(msg))
            .encode()
            .unwrap()
    };
    let parked_body = serde_json::json!({
        "type": "parked.v1", "stage": "erp-post",
        "reason": "ERP rejected: payment method CC unknown", "body": command("pi_parked"),
    })
    .to_string();
    sqs.send_message()
        .queue_url(&parked_url)
        .message_body(&parked_body)
        .send()
        .await
        .unwrap();
    sqs.send_message()
        .queue_url(&dlq_url)
        .message_body(command("pi_dead"))
        .send()
        .await
        .unwrap();

    let aws = AwsParked::new(sqs.clone(), ddb.clone(), stack);
    let listed = aws.list().await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let parked = listed.iter().find(|p| p.queue == "parked").unwrap();
    assert_eq!(parked.reason, "ERP rejected: payment method CC unknown");
    assert_eq!(parked.subject, "LB-pi_parked-CR");
    assert_eq!(parked.target.as_deref(), Some("commands"));
    let dead = listed.iter().find(|p| p.queue == "commands").unwrap();
    assert_eq!(dead.subject, "LB-pi_dead-CR");
    // Listing held nothing back: both are still there to list again.
    assert_eq!(aws.list().await.unwrap().len(), 2);

    let r = aws.replay(&parked.id, None, "cli: ops").await.unwrap();
    assert_eq!(r.queue, "commands");
    let on_commands = moto::drain(&sqs, &commands_url).await;
    // Sent back as it was parked, marked as an operator's replay (docs/audit.md).
    assert_eq!(
        on_commands,
        vec![ledgerbridge_messages::mark_replay(&command("pi_parked"))]
    );
    assert!(ledgerbridge_messages::is_replay(&on_commands[0]));
    let left = aws.list().await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, dead.id);
    assert!(matches!(
        aws.replay(&parked.id, None, "cli: ops").await,
        Err(ledgerbridge_cli::console::model::ConsoleError::NotFound(_))
    ));

    let items = ddb.scan().table_name(&table).send().await.unwrap();
    let audits: Vec<_> = items
        .items()
        .iter()
        .filter(|i| i["pk"].as_s().is_ok_and(|pk| pk.starts_with("audit#")))
        .collect();
    assert_eq!(audits.len(), 1);
    assert_eq!(audits[0]["who"].as_s().unwrap(), "cli: ops");
    assert_eq!(audits[0]["action"].as_s().unwrap(), "replay");
    assert!(audits[0]["detail"]
        .as_s()
        .unwrap()
        .contains("LB-pi_parked-CR"));
}
