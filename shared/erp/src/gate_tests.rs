//! The gate under tokio's paused clock.

use super::*;
use std::sync::Arc;

fn cfg() -> GateConfig {
    GateConfig {
        breaker_failures: 3,
        breaker_cooldown_ms: 1_000,
        breaker_max_cooldown_ms: 3_000,
        max_hold_ms: 5_000,
        ..GateConfig::default()
    }
}

fn answer(status: u16) -> Outcome {
    Outcome::Answer {
        status,
        retry_after: None,
    }
}

async fn fail(gate: &Gate, outcome: Outcome) {
    gate.admit().await.unwrap().record(outcome);
}

#[tokio::test(start_paused = true)]
async fn the_breaker_opens_after_n_consecutive_failures_and_then_fails_fast() {
    let gate = Gate::new("x", cfg());
    fail(&gate, answer(503)).await;
    fail(&gate, Outcome::NoAnswer).await;
    assert!(!gate.is_open(), "two failures of three");
    fail(&gate, answer(500)).await;
    assert!(gate.is_open());
    let t0 = Instant::now();
    let err = gate.admit().await.unwrap_err();
    assert_eq!(
        err,
        GateError::BreakerOpen {
            failures: 3,
            retry_after: Duration::from_secs(1)
        }
    );
    assert_eq!(Instant::now(), t0, "failed fast, no wait");
    let erp = err.into_erp("x");
    assert!(erp.is_retriable());
    assert!(!erp.may_have_committed(), "no request was sent");
    assert_eq!(erp.retry_after(), Some(Duration::from_secs(1)));
    assert!(erp.to_string().contains("circuit breaker open"), "{erp}");
}

#[tokio::test(start_paused = true)]
async fn an_answer_that_is_not_a_5xx_resets_the_count() {
    let gate = Gate::new("x", cfg());
    fail(&gate, answer(503)).await;
    fail(&gate, answer(502)).await;
    fail(&gate, answer(422)).await;
    fail(&gate, answer(503)).await;
    fail(&gate, answer(503)).await;
    assert!(!gate.is_open(), "the 422 broke the run of failures");
    fail(&gate, answer(503)).await;
    assert!(gate.is_open());
}

#[tokio::test(start_paused = true)]
async fn after_the_cool_down_one_probe_goes_and_its_failure_doubles_the_cool_down() {
    let gate = Arc::new(Gate::new("x", cfg()));
    for _ in 0..3 {
        fail(&gate, answer(503)).await;
    }
    tokio::time::advance(Duration::from_millis(1_000)).await;
    let probe = gate.admit().await.unwrap();
    // A second caller waits for the probe's outcome instead of sending.
    let other = tokio::spawn({
        let gate = gate.clone();
        async move { gate.admit().await.map(|p| p.probe) }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!other.is_finished(), "held while the probe is in flight");
    probe.record(answer(503));
    assert_eq!(
        other.await.unwrap().unwrap_err(),
        GateError::BreakerOpen {
            failures: 4,
            retry_after: Duration::from_secs(2)
        }
    );
    // Doubling stops at the maximum.
    tokio::time::advance(Duration::from_secs(2)).await;
    fail(&gate, Outcome::NoAnswer).await;
    match gate.admit().await.unwrap_err() {
        GateError::BreakerOpen { retry_after, .. } => {
            assert_eq!(retry_after, Duration::from_secs(3))
        }
        e => panic!("{e:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_successful_probe_closes_the_breaker_and_releases_the_waiting_callers() {
    let gate = Arc::new(Gate::new("x", cfg()));
    for _ in 0..3 {
        fail(&gate, answer(503)).await;
    }
    tokio::time::advance(Duration::from_millis(1_000)).await;
    let probe = gate.admit().await.unwrap();
    assert!(probe.probe);
    let waiting: Vec<_> = (0..3)
        .map(|_| {
            let gate = gate.clone();
            tokio::spawn(async move { gate.admit().await.map(|p| p.probe) })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(10)).await;
    probe.record(answer(201));
    for w in waiting {
        assert_eq!(w.await.unwrap(), Ok(false), "sent normally once closed");
    }
    assert!(!gate.is_open());
}

#[tokio::test(start_paused = true)]
async fn a_probe_dropped_without_an_outcome_lets_the_next_caller_probe() {
    let gate = Gate::new("x", cfg());
    for _ in 0..3 {
        fail(&gate, answer(503)).await;
    }
    tokio::time::advance(Duration::from_millis(1_000)).await;
    drop(gate.admit().await.unwrap());
    let next = gate.admit().await.unwrap();
    assert!(next.probe, "the next caller is the probe, at once");
}

#[tokio::test(start_paused = true)]
async fn a_429_holds_every_caller_until_retry_after() {
    let gate = Arc::new(Gate::new("x", cfg()));
    gate.admit().await.unwrap().record(Outcome::Answer {
        status: 429,
        retry_after: Some(Duration::from_secs(2)),
    });
    let t0 = Instant::now();
    let callers: Vec<_> = (0..5)
        .map(|_| {
            let gate = gate.clone();
            tokio::spawn(async move {
                let p = gate.admit().await.unwrap();
                p.record(answer(200));
                Instant::now()
            })
        })
        .collect();
    for c in callers {
        assert_eq!(c.await.unwrap() - t0, Duration::from_secs(2));
    }
    assert!(!gate.is_open(), "a 429 is an answer, not a failure");
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_longer_than_the_hold_fails_fast_and_a_503_with_one_holds_too() {
    let gate = Gate::new("x", cfg());
    gate.admit().await.unwrap().record(Outcome::Answer {
        status: 503,
        retry_after: Some(Duration::from_secs(8)),
    });
    assert_eq!(
        gate.admit().await.unwrap_err(),
        GateError::RetryAfter {
            retry_after: Duration::from_secs(8)
        }
    );
    tokio::time::advance(Duration::from_secs(4)).await;
    let t0 = Instant::now();
    gate.admit().await.unwrap().record(answer(200));
    assert_eq!(Instant::now() - t0, Duration::from_secs(4), "held the rest");
}

#[tokio::test(start_paused = true)]
async fn a_429_without_retry_after_holds_for_the_default() {
    let gate = Gate::new("x", cfg());
    gate.admit().await.unwrap().record(answer(429));
    let t0 = Instant::now();
    gate.admit().await.unwrap().record(answer(200));
    assert_eq!(Instant::now() - t0, Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn the_request_rate_paces_sends() {
    let gate = Arc::new(Gate::new(
        "x",
        GateConfig {
            requests_per_second: Some(10),
            ..cfg()
        },
    ));
    let t0 = Instant::now();
    let sends: Vec<_> = (0..20)
        .map(|_| {
            let gate = gate.clone();
            tokio::spawn(async move {
                gate.admit().await.unwrap().record(answer(200));
                Instant::now() - t0
            })
        })
        .collect();
    let mut at = Vec::new();
    for s in sends {
        at.push(s.await.unwrap());
    }
    at.sort();
    let expected: Vec<_> = (0..20u64).map(|i| Duration::from_millis(100 * i)).collect();
    assert_eq!(at, expected, "one request every 100 ms");
}

#[tokio::test(start_paused = true)]
async fn a_burst_goes_at_once_and_a_slot_beyond_the_hold_is_refused() {
    let gate = Gate::new(
        "x",
        GateConfig {
            requests_per_second: Some(2),
            burst: 3,
            max_hold_ms: 1_000,
            ..cfg()
        },
    );
    let t0 = Instant::now();
    for _ in 0..3 {
        gate.admit().await.unwrap().record(answer(200));
    }
    assert_eq!(Instant::now(), t0, "the burst is not paced");
    // The burst is spent: the next request waits for its slot.
    gate.admit().await.unwrap().record(answer(200));
    assert_eq!(Instant::now() - t0, Duration::from_millis(500));
    // Slots reserved ahead: the third from now is 1.5 s away, beyond the 1 s hold.
    let a = gate.rate_slot(Duration::from_secs(1)).unwrap();
    let b = gate.rate_slot(Duration::from_secs(1)).unwrap();
    assert_eq!(a.map(|t| t - t0), Some(Duration::from_millis(1_000)));
    assert_eq!(b.map(|t| t - t0), Some(Duration::from_millis(1_500)));
    assert_eq!(
        gate.rate_slot(Duration::from_secs(1)).unwrap_err(),
        GateError::RateSlot {
            rps: 2,
            retry_after: Duration::from_millis(1_500)
        }
    );
}

#[tokio::test(start_paused = true)]
async fn no_breaker_when_the_threshold_is_zero() {
    let gate = Gate::new(
        "x",
        GateConfig {
            breaker_failures: 0,
            ..cfg()
        },
    );
    for _ in 0..20 {
        fail(&gate, answer(503)).await;
    }
    assert!(!gate.is_open());
}

#[test]
fn the_settings_object_parses_with_defaults() {
    let c: GateConfig = serde_json::from_str(r#"{"requests_per_second": 10}"#).unwrap();
    assert_eq!(c.requests_per_second, Some(10));
    assert_eq!(c.breaker_failures, 5);
    assert!(serde_json::from_str::<GateConfig>(r#"{"rps": 10}"#).is_err());
}
