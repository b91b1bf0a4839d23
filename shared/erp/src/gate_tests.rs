//! The gate under tokio's paused clock.

use super::*;
use std::sync::{Arc, Mutex};

fn cfg() -> GateConfig {
    GateConfig {
        breaker_failures: 3,
        breaker_cooldown_ms: 1_000,
        breaker_max_cooldown_ms: 3_000,
        max_hold_ms: 5_000,
        ..GateConfig::default()
    }
}

/// An answer as the shared status table classifies it (408, 429 and 5xx retryable).
fn answer(status: u16) -> Outcome {
    Outcome::Answer {
        status,
        retry_after: None,
        retryable: matches!(status, 408 | 429 | 500..=599),
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
        retryable: true,
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
        retryable: true,
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

// --- What counts as a failure for the breaker: the connector's classifier decides. ---

/// Epicor's business-rule failure: HTTP 500 with `ErrorMessage` (contract fact: "Other business
/// errors often arrive as 500 with ErrorMessage", epicor/common.json).
const EPICOR_BUSINESS_500: &[u8] = br#"{"HttpStatus":500,"ReasonPhrase":"REST API Exception","ErrorMessage":"Invalid Payment Method.","ErrorType":"Ice.Common.BusinessObjectException"}"#;

/// The outcome `http::send` records for an Epicor answer: the Epicor classifier's verdict.
fn epicor_answer(status: u16, body: &[u8]) -> Outcome {
    let code = reqwest::StatusCode::from_u16(status).unwrap();
    let err = crate::epicor::retry::classify(code, &reqwest::header::HeaderMap::new(), body);
    Outcome::Answer {
        status,
        retry_after: None,
        retryable: err.is_retriable(),
    }
}

#[tokio::test(start_paused = true)]
async fn epicor_business_500s_in_a_row_do_not_open_the_breaker() {
    let gate = Gate::new("x", cfg());
    for _ in 0..10 {
        fail(&gate, epicor_answer(500, EPICOR_BUSINESS_500)).await;
    }
    assert!(!gate.is_open(), "ten bad documents are not an ERP outage");
    // A business 500 between failures breaks their run, as any answer does.
    fail(&gate, epicor_answer(502, b"<html>Bad Gateway</html>")).await;
    fail(&gate, epicor_answer(500, b"<html>crash</html>")).await;
    fail(&gate, epicor_answer(500, EPICOR_BUSINESS_500)).await;
    fail(&gate, epicor_answer(504, b"")).await;
    fail(&gate, Outcome::NoAnswer).await;
    assert!(!gate.is_open(), "the business 500 reset the count");
    fail(&gate, epicor_answer(503, b"")).await;
    assert!(gate.is_open(), "three retryable failures in a row");
}

#[tokio::test(start_paused = true)]
async fn gateway_errors_and_transport_failures_still_open_the_breaker() {
    for failure in [
        epicor_answer(502, b"<html>Bad Gateway</html>"),
        epicor_answer(503, b""),
        epicor_answer(504, b"<html>Gateway Timeout</html>"),
        Outcome::NoAnswer,
    ] {
        let gate = Gate::new("x", cfg());
        for _ in 0..3 {
            fail(&gate, failure).await;
        }
        assert!(gate.is_open(), "{failure:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_business_500_answering_a_probe_closes_the_breaker() {
    let gate = Gate::new("x", cfg());
    for _ in 0..3 {
        fail(&gate, answer(503)).await;
    }
    tokio::time::advance(Duration::from_millis(1_000)).await;
    let probe = gate.admit().await.unwrap();
    assert!(probe.probe);
    probe.record(epicor_answer(500, EPICOR_BUSINESS_500));
    assert!(!gate.is_open(), "the ERP answered");
}

/// An HTTP server on a thread that answers every request with `status` and `body`.
fn canned_server(status: &'static str, body: &'static [u8]) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            if let Err(e) = s
                .write_all(head.as_bytes())
                .and_then(|()| s.write_all(body))
            {
                eprintln!("canned server: {e}");
            }
        }
    });
    format!("http://{addr}/")
}

async fn send_epicor(gate: &Gate, url: &str) -> ErpError {
    let client = reqwest::Client::new();
    let creds = crate::connector::Credentials::fixed(());
    crate::http::send(
        "epicor",
        gate,
        &creds,
        |_| client.get(url),
        crate::epicor::retry::classify,
    )
    .await
    .unwrap_err()
}

#[tokio::test]
async fn through_http_send_epicor_business_500s_keep_the_breaker_closed_and_502s_open_it() {
    let gate = Gate::new("epicor", cfg());
    let url = canned_server("500 Internal Server Error", EPICOR_BUSINESS_500);
    for _ in 0..6 {
        let e = send_epicor(&gate, &url).await;
        assert!(!e.is_retriable(), "{e}");
    }
    assert!(!gate.is_open(), "six business 500s sent, breaker closed");

    let gate = Gate::new("epicor", cfg());
    let url = canned_server("502 Bad Gateway", b"<html>Bad Gateway</html>");
    for _ in 0..3 {
        assert!(send_epicor(&gate, &url).await.is_retriable());
    }
    assert!(gate.is_open(), "three 502s open it");
    let e = send_epicor(&gate, &url).await;
    assert!(e.to_string().contains("circuit breaker open"), "{e}");
}

// --- The learned rate, against a simulated ERP token bucket on the paused clock. ---

/// The sandbox's bucket: `rps` tokens a second, one second's worth of burst; a request beyond
/// it answers 429 with `Retry-After` in whole seconds (at least 1).
struct Bucket {
    rps: u128,
    /// Tokens in billionths.
    nano_tokens: u128,
    at: Instant,
}

const TOKEN: u128 = 1_000_000_000;

impl Bucket {
    fn new(rps: u128) -> Self {
        Bucket {
            rps,
            nano_tokens: rps * TOKEN,
            at: Instant::now(),
        }
    }

    fn take(&mut self) -> Result<(), Duration> {
        let now = Instant::now();
        let refill = (now - self.at).as_nanos() * self.rps;
        self.nano_tokens = (self.nano_tokens + refill).min(self.rps * TOKEN);
        self.at = now;
        if self.nano_tokens >= TOKEN {
            self.nano_tokens -= TOKEN;
            Ok(())
        } else {
            let secs = (TOKEN - self.nano_tokens).div_ceil(self.rps * TOKEN).max(1);
            Err(Duration::from_secs(u64::try_from(secs).unwrap()))
        }
    }
}

/// Answers (send offset from `t0`, status) of `workers` callers sending through `gate` to
/// `bucket` until `until` after `t0`, each request taking 5 ms.
async fn simulate(
    gate: Arc<Gate>,
    bucket: Arc<Mutex<Bucket>>,
    workers: usize,
    t0: Instant,
    until: Duration,
) -> Vec<(Duration, u16)> {
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let gate = gate.clone();
            let bucket = bucket.clone();
            tokio::spawn(async move {
                let mut log = Vec::new();
                while Instant::now() - t0 < until {
                    let permit = match gate.admit().await {
                        Ok(p) => p,
                        Err(e) => {
                            tokio::time::sleep(e.retry_after()).await;
                            continue;
                        }
                    };
                    let sent = Instant::now() - t0;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    let taken = bucket.lock().unwrap().take();
                    let (status, retry_after) = match taken {
                        Ok(()) => (201, None),
                        Err(ra) => (429, Some(ra)),
                    };
                    permit.record(Outcome::Answer {
                        status,
                        retry_after,
                        retryable: status == 429,
                    });
                    log.push((sent, status));
                }
                log
            })
        })
        .collect();
    let mut log = Vec::new();
    for t in tasks {
        log.extend(t.await.unwrap());
    }
    log.sort();
    log
}

fn count(log: &[(Duration, u16)], from: u64, to: u64, status: Option<u16>) -> usize {
    log.iter()
        .filter(|(t, s)| {
            *t >= Duration::from_secs(from)
                && *t < Duration::from_secs(to)
                && status.is_none_or(|st| st == *s)
        })
        .count()
}

#[tokio::test(start_paused = true)]
async fn without_a_configured_rate_the_gate_learns_the_erps_limit_and_recovers_upward() {
    let gate = Arc::new(Gate::new("x", GateConfig::default()));
    let bucket = Arc::new(Mutex::new(Bucket::new(10)));
    let t0 = Instant::now();
    let log = simulate(
        gate.clone(),
        bucket.clone(),
        20,
        t0,
        Duration::from_secs(60),
    )
    .await;
    let learned = gate.rate_milli().expect("a rate was learned");
    let first = count(&log, 0, 5, Some(429));
    let (after, limited) = (count(&log, 5, 60, None), count(&log, 5, 60, Some(429)));
    let served = count(&log, 5, 60, Some(201));
    eprintln!(
        "learning: {first} × 429 in the first 5 s; after: {limited} of {after} answered 429, \
         {served} served in 55 s; rate now {learned} thousandths/s"
    );
    // Learned within a few 429 episodes: 20 callers in flight, 3 holds at most.
    assert!(
        first <= 3 * 20,
        "{first} answers 429 before the rate was learned"
    );
    assert!(
        limited * 100 < after,
        "{limited} of {after} answered 429 after 5 s"
    );
    assert!(
        (495..=560).contains(&served),
        "{served} served in 55 s at a 10/s limit (± 10 %)"
    );
    assert!((8_000..=12_000).contains(&learned), "{learned}");

    // The limit is lifted to 30/s: the learned rate climbs (its doubling step may overshoot
    // the new limit once or twice: still under 1 % 429).
    *bucket.lock().unwrap() = Bucket::new(30);
    let log = simulate(gate.clone(), bucket, 20, t0, Duration::from_secs(180)).await;
    let raised = gate.rate_milli().unwrap();
    let limited = count(&log, 60, 180, Some(429));
    let sent = count(&log, 60, 180, None);
    let late = count(&log, 150, 180, Some(201));
    eprintln!(
        "after the lift: rate {raised} thousandths/s, {limited} × 429, {late} served in the last 30 s"
    );
    assert!(
        limited * 100 < sent,
        "{limited} of {sent} answered 429 after the lift"
    );
    assert!(raised > learned + 5_000, "{learned} → {raised}");
    assert!(
        late as u64 * 1_000 > 30 * (learned + 4_000),
        "{late} served in 30 s"
    );
}

#[tokio::test(start_paused = true)]
async fn a_configured_rate_above_the_limit_is_lowered_and_comes_back_when_the_limit_lifts() {
    let gate = Arc::new(Gate::new(
        "x",
        GateConfig {
            requests_per_second: Some(15),
            ..GateConfig::default()
        },
    ));
    let bucket = Arc::new(Mutex::new(Bucket::new(10)));
    let t0 = Instant::now();
    let log = simulate(
        gate.clone(),
        bucket.clone(),
        20,
        t0,
        Duration::from_secs(40),
    )
    .await;
    let learned = gate.rate_milli().unwrap();
    assert!(
        learned < 15_000,
        "lowered below the configured 15/s: {learned}"
    );
    let (after, limited) = (count(&log, 5, 40, None), count(&log, 5, 40, Some(429)));
    assert!(limited * 100 < after, "{limited} of {after}");
    *bucket.lock().unwrap() = Bucket::new(100);
    simulate(gate.clone(), bucket, 20, t0, Duration::from_secs(300)).await;
    assert_eq!(
        gate.rate_milli(),
        Some(15_000),
        "back at the configured rate"
    );
}

#[tokio::test(start_paused = true)]
async fn with_learning_off_a_429_only_holds() {
    let gate = Arc::new(Gate::new(
        "x",
        GateConfig {
            learn_rate: false,
            ..GateConfig::default()
        },
    ));
    let bucket = Arc::new(Mutex::new(Bucket::new(10)));
    let log = simulate(
        gate.clone(),
        bucket,
        20,
        Instant::now(),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(gate.rate_milli(), None);
    assert!(
        count(&log, 5, 10, Some(429)) > 10,
        "the storm the learning prevents"
    );
}

#[tokio::test(start_paused = true)]
async fn a_429_after_an_idle_gap_restarts_the_measure_instead_of_learning_a_trickle() {
    let gate = Gate::new("x", GateConfig::default());
    for _ in 0..5 {
        fail(&gate, answer(201)).await;
    }
    fail(&gate, answer(429)).await; // the first 429: holds, starts the measure
    assert_eq!(gate.rate_milli(), None);
    tokio::time::advance(Duration::from_secs(30)).await; // idle
    for _ in 0..3 {
        fail(&gate, answer(201)).await;
    }
    fail(&gate, answer(429)).await;
    assert_eq!(
        gate.rate_milli(),
        None,
        "3 served over 30 idle seconds says nothing about the ERP's rate"
    );
    // One busy round: 10 served in the second after the hold, then the bucket is empty.
    for _ in 0..10 {
        fail(&gate, answer(201)).await;
        tokio::time::advance(Duration::from_millis(100)).await;
    }
    fail(&gate, answer(429)).await;
    let learned = gate.rate_milli().unwrap();
    // 10 served in 2 s (the 1 s hold, then 10 × 100 ms) × 95 %.
    assert_eq!(learned, 4_750);
}
