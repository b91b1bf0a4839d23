//! One gate per connector instance, in front of every HTTP request the connector sends
//! (`http::send`): a circuit breaker, a shared hold after a 429 (or a 503 with `Retry-After`),
//! and an optional request rate.
//!
//! - **Circuit breaker**: after [`GateConfig::breaker_failures`] consecutive failures (5xx or no
//!   answer at all: connection refused, DNS, timeout) the breaker opens. While it is open a call
//!   fails fast as retryable — no request is sent, nothing can have been committed — with
//!   `retry_after` = the rest of the cool-down. After the cool-down one probe is let through
//!   (the other callers wait for its outcome, at most [`GateConfig::max_hold_ms`]); a probe that
//!   fails doubles the cool-down (up to [`GateConfig::breaker_max_cooldown_ms`]), any answer
//!   that is not a 5xx closes the breaker.
//! - **Retry-After**: a 429 (or a 503 that carries `Retry-After`) sets a "not before" instant
//!   every caller of the connector waits for before sending, instead of each call retrying on
//!   its own.
//! - **Request rate** ([`GateConfig::requests_per_second`], off by default): requests are paced
//!   by a token bucket (GCRA) below a limit the ERP publishes or the installation sets.
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
/// figures are this project's defaults, not vendor figures.
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
    /// An HTTP answer, with its `Retry-After` if any.
    Answer {
        status: u16,
        retry_after: Option<Duration>,
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
        let permit = Permit {
            gate: self,
            probe,
            recorded: false,
        };
        if let Some(send_at) = self.rate_slot(hold)? {
            tokio::time::sleep_until(send_at).await;
        }
        Ok(permit)
    }

    /// Reserve the next send slot of the request rate, if one is set; refused when it is
    /// further away than `hold` (nothing is reserved then).
    fn rate_slot(&self, hold: Duration) -> Result<Option<Instant>, GateError> {
        let rps = match self.cfg.requests_per_second {
            Some(r) if r > 0 => r,
            _ => return Ok(None),
        };
        let interval = Duration::from_secs(1) / rps;
        let allowance = interval * self.cfg.burst.max(1).saturating_sub(1);
        let mut st = self.lock();
        let now = Instant::now();
        let tat = st.tat.map_or(now, |t| t.max(now));
        let send_at = tat.checked_sub(allowance).map_or(now, |t| t.max(now));
        let wait = send_at - now;
        if wait > hold {
            return Err(GateError::RateSlot {
                rps,
                retry_after: wait,
            });
        }
        st.tat = Some(tat + interval);
        Ok(Some(send_at))
    }

    fn record(&self, probe: bool, outcome: Outcome) {
        let now = Instant::now();
        let (failure, hold) = match outcome {
            Outcome::NoAnswer => (true, None),
            Outcome::Answer {
                status,
                retry_after,
            } => {
                let hold = match (status, retry_after) {
                    (429, ra) => Some(ra.unwrap_or(ms(self.cfg.default_retry_after_ms))),
                    (503, Some(ra)) => Some(ra),
                    _ => None,
                };
                ((500..=599).contains(&status), hold)
            }
        };
        let mut st = self.lock();
        if let Some(h) = hold {
            let until = now + h;
            st.not_before = Some(st.not_before.map_or(until, |nb| nb.max(until)));
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
}

impl Permit<'_> {
    pub fn record(mut self, outcome: Outcome) {
        self.recorded = true;
        self.gate.record(self.probe, outcome);
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
