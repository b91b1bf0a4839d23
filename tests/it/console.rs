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

fn chromium() -> PathBuf {
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

fn browse(input: Value) -> Value {
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

fn cells(rows: &Value) -> Vec<Vec<String>> {
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
    let console = ledgerbridge_cli::console::spawn(
        Embedded::open(
            &dir,
            Some(ledgerbridge_cli::console::recon_mapping(&recon).unwrap()),
        )
        .unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let base = format!("http://{console}");
    let docs = sb.documents(Some(ErpKind::Epicor)).unwrap();
    let payout_json: Value =
        serde_json::from_slice(&std::fs::read(events.join("payout.paid.json")).unwrap()).unwrap();
    let tour = browse(serde_json::json!({
        "chromium": chromium, "base": base, "out": out_dir, "mode": "tour",
        "record": "pi_3JitFDNq7LbKx2RzWVv0OUYJ",
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
    assert_eq!(state_of("pi_3JitFDNq7LbKx2RzWVv0OUYJ"), "posted");
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
    assert!(path
        .iter()
        .any(|r| r[1] == "sales_order" && r[6] == "posted"));
    assert!(path
        .iter()
        .any(|r| r[1] == "cash_receipt" && r[6] == "posted"));

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
    assert!(tour["lines_csv"]
        .as_str()
        .unwrap()
        .starts_with("payout,account,side,amount"));
    assert!(!tour["chart_bars"].as_array().unwrap().is_empty());
    assert_eq!(tour["parked_count"], "0");
    let queues = cells(&tour["queues"]);
    let commands = queues.iter().find(|q| q[0] == "commands").unwrap();
    assert_eq!(commands[2], "1", "one dead letter: {queues:?}");

    // Parked work: the dead letter, replayed from the page.
    let parked_rows = cells(&tour["parked"]);
    assert_eq!(parked_rows.len(), 1, "{parked_rows:?}");
    assert!(parked_rows[0][0] == journal_ref, "{parked_rows:?}");
    assert!(tour["notice"]
        .as_str()
        .unwrap()
        .contains("sent back to the commands queue"));
    assert!(cells(&tour["parked_after"]).is_empty());
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
    assert!(Embedded::open(&dir, None)
        .unwrap()
        .parked()
        .await
        .unwrap()
        .is_empty());
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
fn trim_amount(a: &str) -> String {
    let d: rust_decimal::Decimal = a.parse().unwrap();
    format!("{:.2}", d)
}
