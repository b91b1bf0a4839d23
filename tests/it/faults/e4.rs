//! E4 — the ERP refuses some documents with a validation error (unknown customer, closed
//! period, bad account): not retryable, so each is parked with the ERP's reason after one
//! attempt, and the others carry on.
//!
//! Figure: the ERP refuses 100 specific references → 100 parked after 1 attempt (not 5), 0
//! blocking. **At figure** (Sage Pro, 300 journal messages of which 100 are refused with a 422;
//! the retry policy allows 5 attempts, and the queue's redrive limit is 5).

use super::erp_rig::Rig;
use super::esm::Esm;
use ledgerbridge_erp::{ErpCommand, RetryPolicy};
use ledgerbridge_erp_sandbox::{ErpKind, Faults};
use std::collections::HashMap;
use std::time::Duration;

const DOCS: usize = 300;
const REFUSED: usize = 100;

/// Every form the ERP may hold `c`'s reference in: the full one, and the hash-and-kind tail
/// every shortened form ends with.
fn forms(c: &ErpCommand) -> Vec<String> {
    let r = c.reference();
    let full = r.full();
    let short = r.render(full.len() - 1).unwrap();
    let tail = short[short.find('~').unwrap()..].to_owned();
    vec![full, tail]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e4_refused_documents_park_after_one_attempt_and_block_nothing() {
    let sb = crate::pipeline::sandbox(ErpKind::SagePro).await;
    let rig = Rig {
        docs: DOCS,
        tag: "e4v",
        policy: RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            max_retry_after: Duration::from_secs(5),
            settle_after_ambiguous: Duration::from_millis(50),
        },
        esm: Esm {
            visibility_timeout_secs: 20,
            invocation_timeout: Duration::from_secs(15),
            ..Esm::default()
        },
        max_receives: 5,
        per_invocation: 10,
        idle: Duration::from_secs(5),
        deadline: Duration::from_secs(120),
    };
    let commands = rig.commands();
    let (refused, accepted): (Vec<_>, Vec<_>) = commands
        .iter()
        .cloned()
        .enumerate()
        .partition(|(i, _)| i % (DOCS / REFUSED) == 0);
    let refused: Vec<ErpCommand> = refused.into_iter().map(|(_, c)| c).collect();
    let accepted: Vec<ErpCommand> = accepted.into_iter().map(|(_, c)| c).collect();
    assert_eq!(refused.len(), REFUSED);
    sb.set_faults(Faults {
        reject_references: refused.iter().flat_map(forms).collect(),
        ..Faults::default()
    });
    let run = rig.run(crate::pipeline::sagepro(&sb), async {}).await;

    // 0 blocking: every other document is in the ERP once.
    super::assert_each_once(&sb, ErpKind::SagePro, &accepted);
    // 100 parked, each naming its reference and the ERP's reason.
    assert_eq!(run.parked.len(), REFUSED, "parked");
    for c in &refused {
        let stripe_id = c.reference().stripe_id().to_string();
        let hit = run
            .parked
            .iter()
            .find(|p| p.contains(&format!("\"{stripe_id}")) || p.contains(&c.reference().full()))
            .unwrap_or_else(|| panic!("{stripe_id} not parked"));
        assert!(
            hit.contains("customer does not exist"),
            "reason kept: {hit}"
        );
    }
    // After 1 attempt: one create request per refused document, in all.
    let mut creates: HashMap<String, usize> = HashMap::new();
    for req in sb.requests(Some(ErpKind::SagePro)) {
        if req.method != "POST" {
            continue;
        }
        let body = req.body.to_string();
        for c in &refused {
            if forms(c).iter().any(|f| body.contains(f.as_str())) {
                *creates.entry(c.reference().full()).or_default() += 1;
            }
        }
    }
    assert_eq!(creates.len(), REFUSED, "every refused document was tried");
    let retried: Vec<_> = creates.iter().filter(|(_, n)| **n != 1).collect();
    assert!(retried.is_empty(), "tried more than once: {retried:?}");
    assert_eq!(sb.faults().rejected as usize, REFUSED);
    // Nothing came back from the queue either: every message was received once.
    let counts = run.stats.receive_counts.lock().unwrap().clone();
    assert_eq!(counts.len(), DOCS);
    assert!(
        counts.values().all(|n| *n == 1),
        "received more than once: {:?}",
        counts.values().filter(|n| **n > 1).count()
    );
    assert!(run.dlq.is_empty() && run.left.is_empty());
    sb.shutdown().await;
}
