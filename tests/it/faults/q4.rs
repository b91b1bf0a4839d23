//! Q4 — a visibility timeout shorter than the processing: the message comes back while its
//! first worker is still posting it. The intent lock (a lease longer than any invocation) makes
//! the second, third… worker report it failed ("being posted by another worker") instead of
//! posting it again; once the first has finished, the next receive answers from the
//! cross-reference and deletes it. The misconfiguration itself is refused by the template's
//! rule check (`infra/checks/rules.py`: VisibilityTimeout ≥ 6 × the consumer's Timeout +
//! batching window), run here on the template and on broken copies.
//!
//! Figure (at figure): ESM simulator with VT = 2 s, every ERP create taking 5 s → 0 duplicate
//! ERP documents (create calls per reference and the sandbox's audit), with the deployed lease
//! (120 s); the rule check fails on a broken copy. The row names no count: 100 commands. A
//! control run with a lease (1 s) shorter than the processing shows the same rig catching
//! double creates when the lock does not hold.

use super::esm::{queue_with_dlq, send_all, Esm};
use super::guard::{post_handler, Guarded};
use super::{assert_each_once, journal, journal_messages, post_stage};
use crate::support::moto;
use ledgerbridge_erp_sandbox::ErpKind;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

const HANDLER: Duration = Duration::from_secs(5);
const VT_SECS: u32 = 2;

/// Post `n` commands with every create taking [`HANDLER`], under `lease_ms`; returns the
/// references created more than once (create calls) and the sandbox.
async fn run(
    n: usize,
    tag: &str,
    lease_ms: i64,
) -> (
    Vec<(String, usize)>,
    ledgerbridge_erp_sandbox::SandboxHandle,
    Vec<ledgerbridge_erp::ErpCommand>,
    u32,
) {
    let sb = crate::pipeline::sandbox(ErpKind::SagePro).await;
    let conf = moto::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let mut connector = Guarded::new(crate::pipeline::sagepro(&sb));
    connector.create_delay = HANDLER;
    let (stage, _, parked) = post_stage(
        connector,
        aws_sdk_dynamodb::Client::new(&conf),
        lease_ms,
        super::fast_policy(),
    )
    .await;
    let stage = Arc::new(stage);
    // Each blocked redelivery costs a receive (5 s of processing at VT 2 s: up to 5 receives,
    // measured), so the redrive limit here is 10; Q3 tests the limit.
    let q = queue_with_dlq(&sqs, &moto::unique(&format!("{tag}-commands")), 10, VT_SECS).await;
    send_all(&sqs, &q, &journal_messages(n, tag), |_| String::new()).await;
    let esm = Esm {
        visibility_timeout_secs: VT_SECS as i32,
        max_concurrency: 12,
        ..Esm::default()
    };
    let stats = esm
        .run(
            &sqs,
            &q,
            post_handler(stage.clone()),
            Duration::from_secs(8),
            Duration::from_secs(180),
        )
        .await;
    let max_receives = stats
        .receive_counts
        .lock()
        .unwrap()
        .values()
        .copied()
        .max()
        .unwrap_or(0);
    eprintln!(
        "Q4 {tag}: lease {lease_ms} ms, {} invocations, {} records delivered, {} reported failed, {} stale deletes, max receives {max_receives}",
        stats.invocations.load(Ordering::SeqCst),
        stats.records_delivered.load(Ordering::SeqCst),
        stats.reported_failed.load(Ordering::SeqCst),
        stats.delete_failed.load(Ordering::SeqCst),
    );
    assert!(
        stats.records_delivered.load(Ordering::SeqCst) > n,
        "messages came back while they were being posted"
    );
    assert!(
        super::esm::drain(&sqs, &q.dlq_url).await.is_empty(),
        "nothing in the DLQ"
    );
    assert!(
        super::esm::drain(&sqs, &parked).await.is_empty(),
        "nothing parked"
    );
    assert!(
        super::esm::drain(&sqs, &q.url).await.is_empty(),
        "nothing left"
    );
    let commands = (0..n).map(|i| journal(&format!("{tag}{i}"))).collect();
    (
        stage.poster.connector.created_twice(),
        sb,
        commands,
        max_receives,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q4_a_visibility_timeout_shorter_than_processing_makes_no_duplicate() {
    let (twice, sb, commands, _) = run(100, "q4x", 120_000).await;
    assert_eq!(twice, vec![], "0 duplicate create calls");
    assert_each_once(&sb, ErpKind::SagePro, &commands);
    sb.shutdown().await;
}

/// The control: with a lease shorter than the processing the lock lapses while the first
/// worker is still posting, and the redelivery creates again (the Sage Pro facade refuses the
/// second document, as its contract requires, so the count is of create calls).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q4_control_a_lease_shorter_than_processing_is_caught_creating_twice() {
    let (twice, sb, _, _) = run(20, "q4c", 1_000).await;
    assert!(!twice.is_empty(), "the rig sees double creates");
    sb.shutdown().await;
}

/// `rules.py` on the translated template: clean as shipped; a broken copy — erp-post's timeout
/// raised to 300 s without the commands queue's visibility timeout (360 s), or the queue's
/// visibility timeout cut to 120 s — fails with the offending resource named.
#[test]
fn q4_the_rule_check_fails_on_a_visibility_timeout_shorter_than_processing() {
    let root = moto::repo_root();
    let _ = moto::moto(); // installs the Python environment when it is missing
    let python = root.join(".venv/bin/python");
    let dir = std::env::temp_dir().join(moto::unique("q4-rules"));
    std::fs::create_dir_all(&dir).unwrap();
    let cfn_path = dir.join("cfn.json");
    let out = Command::new(&python)
        .current_dir(&root)
        .arg("infra/checks/sam_to_cfn.py")
        .arg("infra/template.yaml")
        .arg(&cfn_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rules = |path: &Path| {
        let out = Command::new(&python)
            .current_dir(&root)
            .arg("infra/checks/rules.py")
            .arg(path)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, text) = rules(&cfn_path);
    assert_eq!(code, Some(0), "the shipped template passes: {text}");
    let cfn: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfn_path).unwrap()).unwrap();
    let broken = [
        (
            "/Resources/ErpPostFunction/Properties/Timeout",
            300,
            "CommandsQueue: VisibilityTimeout 360 s is below 6 x ErpPostFunction Timeout 300 s",
        ),
        (
            "/Resources/CommandsQueue/Properties/VisibilityTimeout",
            120,
            "CommandsQueue: VisibilityTimeout 120 s is below 6 x ErpPostFunction Timeout 60 s",
        ),
    ];
    for (i, (pointer, value, expected)) in broken.into_iter().enumerate() {
        let mut copy = cfn.clone();
        *copy.pointer_mut(pointer).expect(pointer) = serde_json::json!(value);
        let path = dir.join(format!("cfn-broken-{i}.json"));
        std::fs::write(&path, copy.to_string()).unwrap();
        let (code, text) = rules(&path);
        assert_eq!(code, Some(1), "{pointer} = {value}: {text}");
        assert!(text.contains(expected), "{expected} in {text}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
