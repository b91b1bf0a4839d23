//! E2 — the ERP is down (every request answered 503 before anything is committed) for a while,
//! then recovers: bounded exponential backoff with jitter, the connector's circuit breaker
//! opens, no loss, and the backlog drains after recovery.
//!
//! Figure: ERP down 10 min → 0 lost; ≤ the event source's maximum concurrency in calls per
//! second during the outage; backlog drained ≤ 10 min after recovery. **Scaled 30× in time**:
//! a 20 s outage, drained ≤ 20 s after recovery, 100 journal messages (Sage Pro), 2 concurrent
//! invocations of 10 records each. The breaker opens after 5 consecutive failures and probes
//! after a cool-down of 1 s doubling to 4 s (not scaled: the bound is in calls per real
//! second, and one probe per gate per cool-down of at least 1 s keeps each gate at ≤ 1 call/s).
//! The ERP calls made during the outage are counted per second from the sandbox's request
//! log; every second after the first (in which the breaker opens) must have at most
//! `MAX_CONCURRENCY` calls. The rig's two concurrent invocations share one connector, so one
//! gate (one process); a deployment has one gate per Lambda container, so at most
//! `MaximumConcurrency` probes per cool-down.

use super::erp_rig::{sagepro_gated, Rig};
use super::esm::Esm;
use ledgerbridge_erp::RetryPolicy;
use ledgerbridge_erp_sandbox::{ErpKind, Faults};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DOCS: usize = 100;
const OUTAGE: Duration = Duration::from_secs(20);
const MAX_CONCURRENCY: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2_an_erp_outage_loses_nothing_and_drains_after_recovery() {
    let sb = Arc::new(crate::pipeline::sandbox(ErpKind::SagePro).await);
    sb.set_faults(Faults {
        unavailable: true,
        ..Faults::default()
    });
    let rig = Rig {
        docs: DOCS,
        tag: "e2o",
        // The deployed policy's shape (4 attempts, exponential with equal jitter), faster.
        policy: RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(5),
            settle_after_ambiguous: Duration::from_millis(50),
        },
        esm: Esm {
            visibility_timeout_secs: 3,
            max_concurrency: MAX_CONCURRENCY,
            invocation_timeout: Duration::from_secs(2),
            ..Esm::default()
        },
        // The outage outlasts several receives; the redrive limit is sized for it (a real
        // deployment sizes maxReceiveCount × visibility timeout past its longest outage).
        max_receives: 30,
        per_invocation: 10,
        idle: Duration::from_secs(8),
        deadline: Duration::from_secs(120),
    };
    // Calls per second during the outage, and when the backlog drained.
    let per_second = Arc::new(Mutex::new(Vec::new()));
    let recovered_at = Arc::new(Mutex::new(None));
    let during = {
        let sb = sb.clone();
        let per_second = per_second.clone();
        let recovered_at = recovered_at.clone();
        async move {
            let start = Instant::now();
            let mut seen = sb.requests(Some(ErpKind::SagePro)).len();
            while start.elapsed() < OUTAGE {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let now = sb.requests(Some(ErpKind::SagePro)).len();
                per_second.lock().unwrap().push(now - seen);
                seen = now;
            }
            let mut f = sb.faults();
            f.unavailable = false;
            sb.set_faults(f);
            *recovered_at.lock().unwrap() = Some(Instant::now());
        }
    };
    let gate = serde_json::json!({
        "breaker_failures": 5, "breaker_cooldown_ms": 1000, "breaker_max_cooldown_ms": 4000,
        // Shorter than an invocation (2 s): a caller waits at most this for a probe's outcome.
        "max_hold_ms": 1000,
    });
    let run = rig.run(sagepro_gated(&sb, gate), during).await;
    let done = Instant::now() - Duration::from_secs(8);
    let recovered = recovered_at.lock().unwrap().unwrap();
    let drained_in = done.saturating_duration_since(recovered);
    let rates = per_second.lock().unwrap().clone();
    let peak = rates.iter().copied().max().unwrap_or(0);
    let outage_calls: usize = rates.iter().sum();
    eprintln!(
        "E2: {DOCS} documents; calls per second during the outage {rates:?} (peak {peak}); drained {drained_in:?} after recovery"
    );
    super::assert_each_once(&sb, ErpKind::SagePro, &rig.commands());
    run.assert_clean();
    assert!(outage_calls > 0, "the outage was exercised");
    // The breaker opens within the first second (5 failures answered at once); from then on
    // the calls are the breaker's probes.
    assert!(rates.len() >= 2, "{rates:?}");
    assert!(
        rates[1..].iter().all(|&n| n <= MAX_CONCURRENCY),
        "calls per second during the outage after the breaker opened {:?} (figure: ≤ {MAX_CONCURRENCY})",
        &rates[1..]
    );
    assert!(
        drained_in <= OUTAGE,
        "drained {drained_in:?} after recovery (figure: within the outage's length)"
    );
    let sb = Arc::try_unwrap(sb).ok().unwrap();
    sb.shutdown().await;
}
