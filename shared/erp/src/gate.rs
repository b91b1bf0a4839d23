//! One gate per connector instance, in front of every HTTP request the connector sends
//! (`http::send`): a circuit breaker, a shared hold after a 429 (or a 503 with `Retry-After`),
//! and an optional request rate.
//!
//! - **Circuit breaker**: after [`GateConfig::breaker_failures`] consecutive failures (no answer
//!   at all — connection refused, DNS, timeout — or a 5xx the connector's classifier calls
//!   retryable) the breaker opens. A 5xx the classifier calls permanent (Epicor's business
//!   errors arrive as 500 with `ErrorMessage`) is an answer from a working ERP, not a failure. While it is open a call
//!   fails fast as retryable — no request is sent, nothing can have been committed — with
//!   `retry_after` = the rest of the cool-down. After the cool-down one probe is let through
//!   (the other callers wait for its outcome, at most [`GateConfig::max_hold_ms`]); a probe that
//!   fails doubles the cool-down (up to [`GateConfig::breaker_max_cooldown_ms`]), any answer
//!   that is not a failure closes the breaker.
//! - **Retry-After**: a 429 (or a 503 that carries `Retry-After`) sets a "not before" instant
//!   every caller of the connector waits for before sending, instead of each call retrying on
//!   its own.
//! - **Request rate** ([`GateConfig::requests_per_second`], off by default): requests are paced
//!   by a token bucket (GCRA) below a limit the ERP publishes or the installation sets.
//! - **Learned rate** ([`GateConfig::learn_rate`], on by default): a 429 says the ERP's
//!   bucket is empty. Between two such moments the ERP served what it refilled, so the 2xx
//!   answers to requests sent since the previous 429 divided by the time since it is the
//!   ERP's rate (at most: less when demand let the bucket fill up). A 429 for a request sent
//!   after the previous 429 sets the learned rate to that measure times
//!   [`GateConfig::learn_margin_percent`] (and, when a rate was already in force, at most that
//!   rate times [`GateConfig::learn_decrease_percent`]), never below
//!   [`GateConfig::learn_min_rps`]. The first 429 (or the first after the gate was idle for
//!   [`GateConfig::learn_idle_ms`]) only starts the measure and holds. While callers wait for
//!   rate slots and no 429 comes, the learned rate rises every
//!   [`GateConfig::learn_increase_every_ms`] by a step that starts at
//!   [`GateConfig::learn_increase_percent`] of the rate set at the last 429 and doubles after
//!   each rise (so a rate learned low from a slow sender is won back in a few steps, and the
//!   next 429 starts the small step again); reaching the configured rate drops it (the
//!   configured rate applies again). Rate changes are logged at debug, without payloads.
//!
//! The gate is per process: a Lambda container has one per connector, so with an event
//! source's `MaximumConcurrency` N there are N gates (N probes per cool-down at most during an
//! outage, N × the request rate at most). A wait longer than [`GateConfig::max_hold_ms`] is not
//! waited out in-process: the call fails fast as retryable with the rest as `retry_after`.
//!
//! Time is `tokio::time`, so tokio's paused test clock drives it.

use crate::error::ErpError;
use serde::{Deserialize, Serialize};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The gate's settings: the `gate` object of each kind's ERP settings (every field optional).
///
/// **Assumption**: no vendor fact gives a request limit for Epicor Kinetic, Sage Pro or the
/// Sage 500 facade, so `requests_per_second` is off unless the installation sets it; the breaker
/// figures and the rate-learning figures are this project's defaults, not vendor figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GateConfig {
    /// Requests per second the connector sends at most (`null` or 0: no pacing).
    pub requests_per_second: Option<u32>,
    /// Requests that may be sent back to back before pacing applies (at least 1).
    pub burst: u32,
    /// Consecutive 5xx or transport failures that open the breaker (0: no breaker).
    pub breaker_failures: u32,
    /// First cool-down of an open breaker before one probe is let through.
    pub breaker_cooldown_ms: u64,
    /// The cool-down doubles after each failed probe, up to this.
    pub breaker_max_cooldown_ms: u64,
    /// Longest a caller waits in-process (for `Retry-After`, a rate slot or a probe's outcome)
    /// before failing fast as retryable.
    pub max_hold_ms: u64,
    /// The hold after a 429 that carries no `Retry-After`.
    pub default_retry_after_ms: u64,
    /// Learn a request rate from the ERP's 429 answers (below the configured one, if any).
    pub learn_rate: bool,
    /// A gap without requests longer than this (outside a hold) means the gate was idle: the
    /// next 429 starts a new measure instead of ending one.
    pub learn_idle_ms: u64,
    /// The learned rate is the served rate times this (per cent, 1–100).
    pub learn_margin_percent: u32,
    /// A 429 while a rate is in force sets at most that rate times this (per cent, 1–100).
    pub learn_decrease_percent: u32,
    /// The learned rate never goes below this many requests per second (at least 1).
    pub learn_min_rps: u32,
    /// The first step the learned rate rises by: this per cent of the rate set at the last
    /// 429 (the step doubles after each rise until the next 429).
    pub learn_increase_percent: u32,
    /// How often the learned rate rises while callers wait for slots and no 429 comes.
    pub learn_increase_every_ms: u64,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            requests_per_second: None,
            burst: 1,
            breaker_failures: 5,
            breaker_cooldown_ms: 5_000,
            breaker_max_cooldown_ms: 60_000,
            max_hold_ms: 10_000,
            default_retry_after_ms: 1_000,
            learn_rate: true,
            learn_idle_ms: 2_000,
            learn_margin_percent: 95,
            learn_decrease_percent: 90,
            learn_min_rps: 1,
            learn_increase_percent: 5,
            learn_increase_every_ms: 5_000,
        }
    }
}

/// Why the gate refused to send a request (nothing was sent). Always retryable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    #[error("circuit breaker open after {failures} consecutive failures; no request sent, next probe in {} ms", retry_after.as_millis())]
    BreakerOpen {
        failures: u32,
        retry_after: Duration,
    },
    #[error("circuit breaker probe in flight for longer than the hold; no request sent")]
    ProbeInFlight { retry_after: Duration },
    #[error("held by the ERP's Retry-After; no request sent, {} ms left", retry_after.as_millis())]
    RetryAfter { retry_after: Duration },
    #[error("request rate of {rps}/s: no slot within the hold; no request sent, next slot in {} ms", retry_after.as_millis())]
    RateSlot { rps: u32, retry_after: Duration },
}

impl GateError {
    /// When the call may be tried again.
    pub fn retry_after(&self) -> Duration {
        match self {
            GateError::BreakerOpen { retry_after, .. }
            | GateError::ProbeInFlight { retry_after }
            | GateError::RetryAfter { retry_after }
            | GateError::RateSlot { retry_after, .. } => *retry_after,
        }
    }

    /// The connector's error: retryable, with `retry_after`, never "may have committed" (no
    /// request was sent).
    pub fn into_erp(self, erp: &'static str) -> ErpError {
        ErpError::Retryable {
            erp,
            status: None,
            retry_after: Some(self.retry_after()),
            message: self.to_string(),
            may_have_committed: false,
        }
    }
}

/// What the request a [`Permit`] let through ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No answer (connection refused, DNS, timeout, body lost).
    NoAnswer,
    /// An HTTP answer, with its `Retry-After` if any and whether the connector's classifier
    /// calls it retryable (for a 2xx: `false`). Only a retryable 5xx counts as a failure for
    /// the breaker: a permanent 5xx (a business error) comes from a working ERP.
    Answer {
        status: u16,
        retry_after: Option<Duration>,
        retryable: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Breaker {
    Closed,
    Open {
        until: Instant,
        cooldown: Duration,
    },
    /// One probe is in flight; the cool-down the breaker reopens with if it fails is twice this.
    Probing {
        cooldown: Duration,
    },
}

#[derive(Debug)]
struct State {
    /// Consecutive failures.
    failures: u32,
    breaker: Breaker,
    /// No request before this (the ERP's `Retry-After`).
    not_before: Option<Instant>,
    /// The rate's theoretical arrival time (GCRA).
    tat: Option<Instant>,
    /// The learned rate (thousandths of a request per second), when one is in force.
    learned: Option<u64>,
    /// The learned rate's additive step (thousandths of a request per second).
    step: u64,
    /// The 429 that started the current measure (a 429 for a request sent before it belongs
    /// to the same empty bucket and is not news).
    span_start: Option<Instant>,
    /// 2xx answers to requests sent since `span_start`.
    span_served: u64,
    /// The end of the latest hold (a gap in sends during a hold is not idleness).
    hold_end: Option<Instant>,
    /// When the learned rate last rose (or was set).
    raised: Option<Instant>,
    /// A caller waited for a rate slot since the last rise (the rate is what limits).
    waited: bool,
    /// Since when requests have been sent without an idle gap.
    busy_since: Option<Instant>,
    /// The last send.
    last_send: Option<Instant>,
}

/// What [`Gate::admit`] does next.
enum Step<'a> {
    Go { probe: bool },
    WaitUntil(Instant),
    WaitForProbe(std::pin::Pin<Box<tokio::sync::futures::Notified<'a>>>),
    Refuse(GateError),
}

/// The gate of one connector instance (see the module documentation).
#[derive(Debug)]
pub struct Gate {
    erp: &'static str,
    cfg: GateConfig,
    state: Mutex<State>,
    /// Woken when a probe ends.
    probe_done: Notify,
}

/// Rates are kept in thousandths of a request per second.
const MILLI: u64 = 1_000;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

impl Gate {
    pub fn new(erp: &'static str, cfg: GateConfig) -> Self {
        Gate {
            erp,
            cfg,
            state: Mutex::new(State {
                failures: 0,
                breaker: Breaker::Closed,
                not_before: None,
                tat: None,
                learned: None,
                step: 0,
                span_start: None,
                span_served: 0,
                hold_end: None,
                raised: None,
                waited: false,
                busy_since: None,
                last_send: None,
            }),
            probe_done: Notify::new(),
        }
    }

    pub fn config(&self) -> &GateConfig {
        &self.cfg
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The request rate in force, in thousandths of a request per second: the learned one,
    /// else the configured one, else `None` (no pacing).
    pub fn rate_milli(&self) -> Option<u64> {
        let st = self.lock();
        self.rate_in_force(&st)
    }

    fn configured_rate(&self) -> Option<u64> {
        match self.cfg.requests_per_second {
            Some(r) if r > 0 => Some(u64::from(r) * MILLI),
            _ => None,
        }
    }

    fn rate_in_force(&self, st: &State) -> Option<u64> {
        st.learned.or_else(|| self.configured_rate())
    }

    /// Whether the breaker is open or probing (for tests and diagnostics).
    pub fn is_open(&self) -> bool {
        !matches!(self.lock().breaker, Breaker::Closed)
    }

    fn step(&self) -> Step<'_> {
        let mut st = self.lock();
        let now = Instant::now();
        if let Some(nb) = st.not_before {
            if nb > now {
                return Step::WaitUntil(nb);
            }
            st.not_before = None;
        }
        match st.breaker {
            Breaker::Closed => Step::Go { probe: false },
            Breaker::Open { until, cooldown } if now >= until => {
                st.breaker = Breaker::Probing { cooldown };
                Step::Go { probe: true }
            }
            Breaker::Open { until, .. } => Step::Refuse(GateError::BreakerOpen {
                failures: st.failures,
                retry_after: until - now,
            }),
            Breaker::Probing { .. } => {
                let mut notified = Box::pin(self.probe_done.notified());
                // Registered before the lock is released, so the probe's end is not missed.
                notified.as_mut().enable();
                Step::WaitForProbe(notified)
            }
        }
    }

    /// Wait until a request may be sent, or refuse it (breaker open, or a wait longer than the
    /// hold). The permit must be given the request's [`Outcome`]; dropped without one (the
    /// request was not sent or its future was cancelled) it counts for nothing.
    pub async fn admit(&self) -> Result<Permit<'_>, GateError> {
        let hold = ms(self.cfg.max_hold_ms);
        let probe = loop {
            match self.step() {
                Step::Go { probe } => break probe,
                Step::Refuse(e) => return Err(e),
                Step::WaitUntil(t) => {
                    let rest = t.saturating_duration_since(Instant::now());
                    if rest > hold {
                        return Err(GateError::RetryAfter { retry_after: rest });
                    }
                    tokio::time::sleep_until(t).await;
                }
                Step::WaitForProbe(notified) => {
                    if tokio::time::timeout(hold, notified).await.is_err() {
                        return Err(GateError::ProbeInFlight {
                            retry_after: ms(self.cfg.breaker_cooldown_ms),
                        });
                    }
                }
            }
        };
        let mut permit = Permit {
            gate: self,
            probe,
            recorded: false,
            sent_at: Instant::now(),
        };
        loop {
            if let Some(send_at) = self.rate_slot(hold)? {
                tokio::time::sleep_until(send_at).await;
            }
            // A 429 that came while this caller waited for its slot holds it too: wait for
            // the hold and take a new slot (the 429 dropped the reserved ones).
            let held = self.lock().not_before.filter(|&nb| nb > Instant::now());
            let Some(nb) = held else { break };
            let rest = nb.saturating_duration_since(Instant::now());
            if rest > hold {
                return Err(GateError::RetryAfter { retry_after: rest });
            }
            tokio::time::sleep_until(nb).await;
        }
        permit.sent_at = Instant::now();
        self.note_send(permit.sent_at);
        Ok(permit)
    }

    /// Reserve the next send slot of the request rate, if one is set; refused when it is
    /// further away than `hold` (nothing is reserved then).
    fn rate_slot(&self, hold: Duration) -> Result<Option<Instant>, GateError> {
        let mut st = self.lock();
        let now = Instant::now();
        self.maybe_raise(&mut st, now);
        let milli = match self.rate_in_force(&st) {
            Some(r) if r > 0 => r,
            _ => return Ok(None),
        };
        let interval = Duration::from_nanos(1_000_000_000_000 / milli);
        let allowance = interval * self.cfg.burst.max(1).saturating_sub(1);
        let tat = st.tat.map_or(now, |t| t.max(now));
        let send_at = tat.checked_sub(allowance).map_or(now, |t| t.max(now));
        let wait = send_at - now;
        if wait > hold {
            return Err(GateError::RateSlot {
                rps: u32::try_from(milli.div_ceil(MILLI)).unwrap_or(u32::MAX),
                retry_after: wait,
            });
        }
        if !wait.is_zero() {
            st.waited = true;
        }
        st.tat = Some(tat + interval);
        Ok(Some(send_at))
    }

    /// Keep track of how long the gate has been busy (for the learning measure).
    fn note_send(&self, at: Instant) {
        let idle = ms(self.cfg.learn_idle_ms.max(1));
        let mut st = self.lock();
        let quiet_since = match (st.last_send, st.hold_end) {
            (Some(l), Some(h)) => Some(l.max(h)),
            (l, h) => l.or(h),
        };
        if quiet_since.is_none_or(|q| at.saturating_duration_since(q) > idle) {
            st.busy_since = Some(at);
        }
        st.last_send = Some(st.last_send.map_or(at, |l| l.max(at)));
    }

    /// Raise the learned rate by its step when the interval has passed without a 429 and
    /// callers waited for slots; at the configured rate the learned one is dropped.
    fn maybe_raise(&self, st: &mut State, now: Instant) {
        let Some(rate) = st.learned else { return };
        let every = ms(self.cfg.learn_increase_every_ms.max(1));
        let since = st.raised.unwrap_or(now);
        if now.saturating_duration_since(since) < every {
            return;
        }
        st.raised = Some(now);
        if !std::mem::take(&mut st.waited) {
            return;
        }
        let next = rate + st.step;
        match self.configured_rate() {
            Some(c) if next >= c => {
                st.learned = None;
                tracing::debug!(
                    erp = self.erp,
                    milli_rps = c,
                    "ERP request rate back at the configured rate"
                );
            }
            _ => {
                st.learned = Some(next);
                st.step = st.step.saturating_mul(2);
                tracing::debug!(erp = self.erp, milli_rps = next, "ERP request rate raised");
            }
        }
    }

    /// A 429 for a request sent at `sent_at`: set (or lower) the learned rate.
    fn learn_from_429(&self, st: &mut State, sent_at: Instant, now: Instant) {
        if !self.cfg.learn_rate {
            return;
        }
        if st.span_start.is_some_and(|c| sent_at <= c) {
            return; // the same empty bucket as the 429 that started the measure
        }
        let idle_since_start = match (st.span_start, st.busy_since) {
            (Some(start), Some(busy)) => busy > start,
            _ => true,
        };
        let measured = match st.span_start {
            Some(start) if !idle_since_start => {
                let span_ms = u64::try_from(now.saturating_duration_since(start).as_millis())
                    .unwrap_or(u64::MAX)
                    .max(1);
                let margin = u64::from(self.cfg.learn_margin_percent.clamp(1, 100));
                // Served per second in thousandths: n × 1000 (ms per s) × 1000 / span_ms.
                Some(
                    st.span_served
                        .saturating_mul(1_000_000)
                        .saturating_mul(margin)
                        / span_ms.saturating_mul(100),
                )
            }
            _ => None,
        };
        st.span_start = Some(now);
        st.span_served = 0;
        let decrease = u64::from(self.cfg.learn_decrease_percent.clamp(1, 100));
        let lowered = self
            .rate_in_force(st)
            .map(|r| r.saturating_mul(decrease) / 100);
        let next = match (measured, lowered) {
            (Some(m), Some(l)) => m.min(l),
            (Some(m), None) => m,
            (None, Some(l)) => l,
            (None, None) => return, // nothing measured yet: the hold alone
        };
        let next = next.max(u64::from(self.cfg.learn_min_rps.max(1)) * MILLI);
        st.learned = Some(next);
        st.step = next.saturating_mul(u64::from(self.cfg.learn_increase_percent)) / 100;
        st.raised = Some(now);
        st.waited = false;
        tracing::debug!(
            erp = self.erp,
            milli_rps = next,
            "ERP answered 429: request rate lowered to a learned rate"
        );
    }

    fn record(&self, probe: bool, sent_at: Instant, outcome: Outcome) {
        let now = Instant::now();
        let (failure, hold, status) = match outcome {
            Outcome::NoAnswer => (true, None, None),
            Outcome::Answer {
                status,
                retry_after,
                retryable,
            } => {
                let hold = match (status, retry_after) {
                    (429, ra) => Some(ra.unwrap_or(ms(self.cfg.default_retry_after_ms))),
                    (503, Some(ra)) => Some(ra),
                    _ => None,
                };
                (
                    retryable && (500..=599).contains(&status),
                    hold,
                    Some(status),
                )
            }
        };
        let mut st = self.lock();
        match status {
            Some(200..=299) if st.span_start.is_none_or(|start| sent_at > start) => {
                st.span_served = st.span_served.saturating_add(1);
            }
            Some(429) => self.learn_from_429(&mut st, sent_at, now),
            _ => {}
        }
        if let Some(h) = hold {
            let until = now + h;
            st.not_before = Some(st.not_before.map_or(until, |nb| nb.max(until)));
            // The slots reserved before the hold are void: pacing starts again after it.
            st.tat = None;
            st.hold_end = Some(st.hold_end.map_or(until, |e| e.max(until)));
        }
        let threshold = self.cfg.breaker_failures;
        let base = ms(self.cfg.breaker_cooldown_ms);
        let max = ms(self.cfg.breaker_max_cooldown_ms).max(base);
        let mut woke = false;
        if failure {
            st.failures = st.failures.saturating_add(1);
            match st.breaker {
                Breaker::Probing { cooldown } if probe => {
                    let cooldown = cooldown.saturating_mul(2).min(max);
                    st.breaker = Breaker::Open {
                        until: now + cooldown,
                        cooldown,
                    };
                    woke = true;
                    tracing::debug!(
                        erp = self.erp,
                        cooldown_ms = cooldown.as_millis() as u64,
                        "ERP circuit breaker probe failed; open again"
                    );
                }
                Breaker::Closed if threshold > 0 && st.failures >= threshold => {
                    st.breaker = Breaker::Open {
                        until: now + base,
                        cooldown: base,
                    };
                    tracing::warn!(
                        erp = self.erp,
                        failures = st.failures,
                        cooldown_ms = base.as_millis() as u64,
                        "ERP circuit breaker opened: calls fail fast (retried later) until a probe succeeds"
                    );
                }
                _ => {}
            }
        } else {
            st.failures = 0;
            if st.breaker != Breaker::Closed {
                st.breaker = Breaker::Closed;
                woke = true;
                tracing::warn!(
                    erp = self.erp,
                    "ERP circuit breaker closed: the ERP answers again"
                );
            }
        }
        drop(st);
        if woke {
            self.probe_done.notify_waiters();
        }
    }

    /// A probe that ended without an outcome: the next caller probes at once.
    fn abandon_probe(&self) {
        let mut st = self.lock();
        if let Breaker::Probing { cooldown } = st.breaker {
            st.breaker = Breaker::Open {
                until: Instant::now(),
                cooldown,
            };
        }
        drop(st);
        self.probe_done.notify_waiters();
    }
}

/// Leave to send one request; give it the request's [`Outcome`].
#[derive(Debug)]
pub struct Permit<'a> {
    gate: &'a Gate,
    probe: bool,
    recorded: bool,
    /// When the request was let through.
    sent_at: Instant,
}

impl Permit<'_> {
    pub fn record(mut self, outcome: Outcome) {
        self.recorded = true;
        self.gate.record(self.probe, self.sent_at, outcome);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.probe && !self.recorded {
            self.gate.abandon_probe();
        }
    }
}

#[cfg(test)]
#[path = "gate_tests.rs"]
mod tests;
