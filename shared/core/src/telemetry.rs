//! Logging setup and typed telemetry events. Each observable outcome is one struct with one
//! `emit()`, so field names stay stable for alarms and dashboards. Nothing here ever takes a
//! webhook body or a secret.

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// The JSON log format: one object per line, event fields under `fields`. The alarm metric
/// filters in infra/template.yaml select `$.fields.alarm` (and intake's `$.fields.outcome`).
fn json_subscriber<W>(filter: EnvFilter, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .with_writer(writer)
        .finish()
}

/// JSON logs on stdout (CloudWatch parses them), level from `RUST_LOG` (default `info`).
pub fn init_json_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A second init (tests, local runner) is harmless: the first subscriber stays.
    if tracing::subscriber::set_global_default(json_subscriber(filter, std::io::stdout)).is_err() {
        tracing::debug!("Logging was already initialised");
    }
}

/// Human-readable logs for the local runner: warnings and errors unless `RUST_LOG` says more,
/// so the runner's own summary lines stay readable.
pub fn init_text_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    if tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init()
        .is_err()
    {
        tracing::debug!("Logging was already initialised");
    }
}

pub struct WebhookAccepted<'a> {
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub message_id: &'a str,
    pub by_reference: bool,
}

impl WebhookAccepted<'_> {
    pub fn emit(&self) {
        tracing::info!(
            event_id = self.event_id,
            event_type = self.event_type,
            message_id = self.message_id,
            by_reference = self.by_reference,
            outcome = "accepted",
            "Webhook event queued"
        );
    }
}

pub struct WebhookRejected<'a> {
    pub reason: &'a str,
}

impl WebhookRejected<'_> {
    pub fn emit(&self) {
        tracing::warn!(
            reason = self.reason,
            outcome = "rejected",
            "Webhook rejected"
        );
    }
}

pub struct WebhookDuplicate<'a> {
    pub event_id: &'a str,
    pub payload_differs: bool,
}

impl WebhookDuplicate<'_> {
    pub fn emit(&self) {
        if self.payload_differs {
            tracing::warn!(
                event_id = self.event_id,
                outcome = "duplicate",
                payload_differs = true,
                "Duplicate event id with a different payload; the first copy was kept"
            );
        } else {
            tracing::info!(
                event_id = self.event_id,
                outcome = "duplicate",
                "Duplicate webhook delivery"
            );
        }
    }
}

/// Logged at ERROR (a person must look): a validly signed delivery was kept in quarantine
/// instead of being queued. Never carries the body.
pub struct EventQuarantined<'a> {
    /// The event id when the body has one.
    pub event_id: Option<&'a str>,
    /// `unparseable_event`, `invalid_event_id` or `payload_mismatch`.
    pub reason: &'a str,
    /// The quarantine record's key (`intake#quarantine#{sha256}`).
    pub key: &'a str,
    pub body_bytes: usize,
}

impl EventQuarantined<'_> {
    /// The alarm kinds this event logs: `event_quarantined` (a body that does not parse as an
    /// event, RELIABILITY I7) and `event_payload_mismatch` (an event id already recorded with
    /// another payload, D5).
    pub const ALARMS: [&'static str; 2] = ["event_quarantined", "event_payload_mismatch"];

    pub fn emit(&self) {
        // Each kind is written out literally so the template's check finds its alarm.
        if self.reason == "payload_mismatch" {
            tracing::error!(
                event_id = self.event_id.unwrap_or("-"),
                reason = self.reason,
                quarantine_key = self.key,
                body_bytes = self.body_bytes,
                outcome = "quarantined",
                alarm = "event_payload_mismatch",
                "Signed delivery kept in quarantine for review; answered 2xx"
            );
        } else {
            tracing::error!(
                event_id = self.event_id.unwrap_or("-"),
                reason = self.reason,
                quarantine_key = self.key,
                body_bytes = self.body_bytes,
                outcome = "quarantined",
                alarm = "event_quarantined",
                "Signed delivery kept in quarantine for review; answered 2xx"
            );
        }
    }
}

pub struct EventIgnored<'a> {
    pub event_id: &'a str,
    pub event_type: &'a str,
}

impl EventIgnored<'_> {
    pub fn emit(&self) {
        tracing::info!(
            event_id = self.event_id,
            event_type = self.event_type,
            outcome = "ignored",
            "Event type not handled by this deployment; recorded as ignored"
        );
    }
}

/// Logged at ERROR: an operator alarm matches `alarm = "event_oversized"`.
pub struct EventOversized<'a> {
    pub event_id: &'a str,
    pub body_bytes: usize,
    pub limit: usize,
}

impl EventOversized<'_> {
    pub fn emit(&self) {
        tracing::error!(
            event_id = self.event_id,
            body_bytes = self.body_bytes,
            limit = self.limit,
            alarm = "event_oversized",
            "Event exceeds the queue limit; queued by reference for re-fetch"
        );
    }
}

/// Logged at ERROR: the dependency failed and Stripe will retry the delivery.
pub struct IntakeFailed<'a> {
    pub event_id: &'a str,
    pub stage: &'a str,
    pub error: &'a dyn std::fmt::Display,
}

impl IntakeFailed<'_> {
    pub fn emit(&self) {
        tracing::error!(event_id = self.event_id, stage = self.stage, error = %self.error,
            alarm = "intake_failed", "Webhook intake failed; answering 5xx so Stripe retries");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn lines_of(emit: impl FnOnce()) -> Vec<serde_json::Value> {
        let buf = Captured::default();
        let writer = buf.clone();
        let sub = json_subscriber(EnvFilter::new("info"), move || writer.clone());
        tracing::subscriber::with_default(sub, emit);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// infra/template.yaml's metric filters select `$.fields.alarm` and `$.fields.outcome`.
    #[test]
    fn json_log_lines_carry_alarm_under_fields() {
        let lines = lines_of(|| {
            IntakeFailed {
                event_id: "evt_1",
                stage: "queue",
                error: &"boom",
            }
            .emit();
            WebhookRejected {
                reason: "signature",
            }
            .emit();
        });
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["fields"]["alarm"], "intake_failed");
        assert_eq!(lines[0]["level"], "ERROR");
        assert_eq!(lines[1]["fields"]["outcome"], "rejected");
        assert!(lines[1]["fields"].get("alarm").is_none());
        let template = include_str!("../../../infra/template.yaml");
        assert!(template.contains(r#"FilterPattern: '{ $.fields.alarm = "*" }'"#));
        assert!(template.contains(r#"FilterPattern: '{ $.fields.outcome = "*" }'"#));
    }
}
