//! Per-message X-Ray subsegments, sent to the X-Ray daemon over UDP.
//!
//! With `Tracing: Active`, Lambda starts a segment for each invocation and passes its header in
//! `_X_AMZN_TRACE_ID` (`Root=1-…;Parent=…;Sampled=1`; the Rust runtime sets the variable per
//! invocation, lambda_runtime `src/runtime.rs`), and runs the daemon at
//! `AWS_XRAY_DAEMON_ADDRESS`. Each SQS record processed then becomes one subsegment of that
//! segment: name `sqs_record`, start and end time, the message id and (when the body names
//! one) the Stripe event id as annotations, and the error flag when the record is to be
//! redelivered. Nothing of the body, and no secret, is sent.
//!
//! The document format is AWS's (X-Ray Developer Guide, "Sending trace data to AWS X-Ray" and
//! "AWS X-Ray segment documents"): a subsegment sent on its own carries `type: "subsegment"`,
//! `trace_id`, `parent_id`, a 64-bit `id` in 16 hex digits, and `start_time` / `end_time` in
//! epoch seconds; annotation keys are letters, digits and underscores. Each UDP datagram is the
//! daemon header `{"format": "json", "version": 1}`, a newline, and one document (the
//! aws-xray-daemon README, "Sending Segment Documents"). A maintained crate exists
//! (`opentelemetry-aws`'s X-Ray exporter) but brings the OpenTelemetry SDK and its tracing
//! bridge into every function; this is the part of it the functions need.

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{SystemTime, UNIX_EPOCH};

/// The daemon header of every datagram.
pub const DAEMON_HEADER: &str = "{\"format\": \"json\", \"version\": 1}\n";

/// The parts of `_X_AMZN_TRACE_ID` a subsegment needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceHeader {
    pub root: String,
    pub parent: String,
    pub sampled: bool,
}

impl TraceHeader {
    /// `Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1`.
    pub fn parse(header: &str) -> Option<TraceHeader> {
        let mut root = None;
        let mut parent = None;
        let mut sampled = false;
        for part in header.split(';') {
            match part.trim().split_once('=') {
                Some(("Root", v)) => root = Some(v.to_owned()),
                Some(("Parent", v)) => parent = Some(v.to_owned()),
                Some(("Sampled", v)) => sampled = v == "1",
                _ => {}
            }
        }
        Some(TraceHeader {
            root: root.filter(|r| r.starts_with("1-"))?,
            parent: parent.filter(|p| p.len() == 16)?,
            sampled,
        })
    }
}

/// The daemon's UDP address from `AWS_XRAY_DAEMON_ADDRESS`: `host:port`, or the two-protocol
/// form `tcp:host:port udp:host:port` (the UDP one is used).
pub fn daemon_address(value: &str) -> Option<SocketAddr> {
    let udp = value
        .split_whitespace()
        .find_map(|p| p.strip_prefix("udp:"))
        .unwrap_or(value.trim());
    udp.to_socket_addrs().ok()?.next()
}

/// Sends subsegments to the daemon; sending never fails the work it records (a lost datagram
/// is a lost trace, nothing more).
#[derive(Debug)]
pub struct Tracer {
    socket: UdpSocket,
    daemon: SocketAddr,
    header: TraceHeader,
}

impl Tracer {
    /// For the current invocation: `None` unless it is traced and sampled and a daemon address
    /// is set (outside Lambda, or with tracing off, nothing is sent).
    // Not configuration: the runtime sets `_X_AMZN_TRACE_ID` anew for every invocation, and
    // Lambda sets the daemon address; both are read where the invocation is handled.
    #[allow(clippy::disallowed_methods)]
    pub fn from_env() -> Option<Tracer> {
        let header = TraceHeader::parse(&std::env::var("_X_AMZN_TRACE_ID").ok()?)?;
        let daemon = daemon_address(&std::env::var("AWS_XRAY_DAEMON_ADDRESS").ok()?)?;
        Tracer::new(daemon, header)
    }

    /// To `daemon`, under `header` (unsampled: `None`).
    pub fn new(daemon: SocketAddr, header: TraceHeader) -> Option<Tracer> {
        if !header.sampled {
            return None;
        }
        let bind: SocketAddr = if daemon.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let socket = UdpSocket::bind(bind).ok()?;
        socket.set_nonblocking(true).ok()?;
        Some(Tracer {
            socket,
            daemon,
            header,
        })
    }

    /// Send one record's subsegment.
    pub fn record(&self, record: &RecordTrace) {
        let doc = record.document(&self.header);
        let datagram = format!("{DAEMON_HEADER}{doc}");
        if let Err(e) = self.socket.send_to(datagram.as_bytes(), self.daemon) {
            tracing::debug!(error = %e, "X-Ray subsegment not sent");
        }
    }
}

/// One processed record, as a subsegment.
#[derive(Debug, Clone)]
pub struct RecordTrace {
    pub start: f64,
    pub end: f64,
    pub message_id: Option<String>,
    pub event_id: Option<String>,
    /// The record is to be redelivered.
    pub error: bool,
}

impl RecordTrace {
    /// The subsegment document (JSON).
    pub fn document(&self, header: &TraceHeader) -> String {
        let mut annotations = serde_json::Map::new();
        if let Some(m) = &self.message_id {
            annotations.insert("message_id".into(), m.clone().into());
        }
        if let Some(e) = &self.event_id {
            annotations.insert("event_id".into(), e.clone().into());
        }
        serde_json::json!({
            "name": "sqs_record",
            "id": segment_id(),
            "trace_id": header.root,
            "parent_id": header.parent,
            "type": "subsegment",
            "start_time": self.start,
            "end_time": self.end,
            "error": self.error,
            "annotations": annotations,
        })
        .to_string()
    }
}

/// Seconds since the epoch, as X-Ray times are written.
pub fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// A fresh 64-bit id in 16 hex digits (random per process, counted within it).
fn segment_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static SEED: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let mut h = SEED
        .get_or_init(std::collections::hash_map::RandomState::new)
        .build_hasher();
    h.write_u64(COUNT.fetch_add(1, Ordering::Relaxed));
    format!("{:016x}", h.finish())
}

/// The Stripe event id a queue message names, if any: `event_id` at the top (intake
/// messages), `source.event_id` (ERP commands), or the `id` of a Stripe event (`evt_…`). The
/// body is read for this id only; nothing else of it leaves the function.
pub fn event_id_of(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let text = |v: Option<&serde_json::Value>| v.and_then(|x| x.as_str()).map(str::to_owned);
    text(v.get("event_id"))
        .or_else(|| text(v.get("source").and_then(|s| s.get("event_id"))))
        .or_else(|| text(v.get("id")).filter(|id| id.starts_with("evt_")))
        .filter(|id| id.len() <= 250)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_lambda_trace_header_and_daemon_address_are_read() {
        let h = TraceHeader::parse(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        )
        .unwrap();
        assert_eq!(h.root, "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(h.parent, "53995c3f42cd8ad8");
        assert!(h.sampled);
        assert!(TraceHeader::parse("Root=1-5759e988-bd86;Sampled=1").is_none());
        assert_eq!(
            daemon_address("169.254.79.129:2000"),
            Some("169.254.79.129:2000".parse().unwrap())
        );
        assert_eq!(
            daemon_address("tcp:127.0.0.1:2000 udp:127.0.0.1:2001"),
            Some("127.0.0.1:2001".parse().unwrap())
        );
        let unsampled = TraceHeader {
            sampled: false,
            ..h
        };
        assert!(Tracer::new("127.0.0.1:2000".parse().unwrap(), unsampled).is_none());
    }

    #[test]
    fn the_event_id_is_the_only_thing_read_from_a_body() {
        assert_eq!(
            event_id_of(r#"{"type":"stripe_event_ref.v1","event_id":"evt_1","x":"secret"}"#),
            Some("evt_1".into())
        );
        assert_eq!(
            event_id_of(r#"{"type":"erp_command.v1","source":{"event_id":"evt_2"}}"#),
            Some("evt_2".into())
        );
        assert_eq!(
            event_id_of(r#"{"id":"evt_3","object":"event"}"#),
            Some("evt_3".into())
        );
        assert_eq!(event_id_of(r#"{"id":"cus_1"}"#), None);
        assert_eq!(event_id_of("not json"), None);
    }
}
