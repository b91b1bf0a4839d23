//! Business metrics as CloudWatch embedded metric format (EMF): one JSON line on stdout per
//! observation, which CloudWatch Logs turns into metrics without an API call or an agent.
//!
//! The namespace comes from `LEDGERBRIDGE_METRICS_NAMESPACE` (the template sets
//! `ledgerbridge/<stack name>`); without it nothing is written, so the local runner's output
//! stays as it is. Metric values are integers (counts, milliseconds, minor currency units):
//! nothing here is ever a float. Dimensions carry ERP names, document kinds, stage names and
//! currency codes only — never an identifier of a customer or a payment.

use std::io::Write;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// The environment variable naming the CloudWatch namespace (read through `config::Env`).
pub const NAMESPACE_VAR: &str = "LEDGERBRIDGE_METRICS_NAMESPACE";

/// Metric names, shared with the dashboard in `infra/template.yaml`.
pub mod names {
    pub const DOCUMENTS_POSTED: &str = "DocumentsPosted";
    pub const DOCUMENTS_PARKED: &str = "DocumentsParked";
    pub const EVENT_TO_DOCUMENT_LATENCY: &str = "EventToDocumentLatency";
    pub const MESSAGES_PARKED: &str = "MessagesParked";
    pub const PAYOUT_VARIANCE_MINOR: &str = "PayoutVarianceMinor";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    /// A plain number (here: minor currency units).
    None,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::None => "None",
        }
    }
}

/// One observation: values share the dimensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation<'a> {
    pub dimensions: Vec<(&'a str, &'a str)>,
    pub values: Vec<(&'a str, Unit, i64)>,
}

/// The EMF document for `obs` (one line, no trailing newline).
pub fn emf_line(namespace: &str, timestamp_ms: i64, obs: &Observation<'_>) -> String {
    let mut root = serde_json::Map::new();
    let dims: Vec<serde_json::Value> = obs
        .dimensions
        .iter()
        .map(|(k, _)| serde_json::Value::from(*k))
        .collect();
    let metrics: Vec<serde_json::Value> = obs
        .values
        .iter()
        .map(|(name, unit, _)| serde_json::json!({"Name": name, "Unit": unit.as_str()}))
        .collect();
    root.insert(
        "_aws".into(),
        serde_json::json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [dims],
                "Metrics": metrics,
            }],
        }),
    );
    for (k, v) in &obs.dimensions {
        root.insert((*k).to_owned(), serde_json::Value::from(*v));
    }
    for (name, _, value) in &obs.values {
        root.insert((*name).to_owned(), serde_json::Value::from(*value));
    }
    serde_json::Value::Object(root).to_string()
}

fn namespace() -> Option<&'static str> {
    static NS: OnceLock<Option<String>> = OnceLock::new();
    NS.get_or_init(|| {
        crate::config::Env::from_process()
            .optional("METRICS_NAMESPACE")
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    })
    .as_deref()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

thread_local! {
    static RECORDING: std::cell::RefCell<Option<Vec<String>>> = const { std::cell::RefCell::new(None) };
}

/// Tests: from now on, keep this thread's observations (as EMF lines, namespace `test` when
/// none is configured) for [`take_recorded`]. A current-thread async runtime (`#[tokio::test]`)
/// runs everything on the test's thread.
pub fn start_recording() {
    RECORDING.with(|r| *r.borrow_mut() = Some(Vec::new()));
}

/// Tests: the observations kept since [`start_recording`], as parsed EMF documents.
pub fn take_recorded() -> Vec<serde_json::Value> {
    RECORDING
        .with(|r| r.borrow_mut().take().unwrap_or_default())
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Write `obs` as one EMF line when a namespace is configured.
pub fn record(obs: &Observation<'_>) {
    RECORDING.with(|r| {
        if let Some(lines) = r.borrow_mut().as_mut() {
            lines.push(emf_line(namespace().unwrap_or("test"), now_ms(), obs));
        }
    });
    let Some(ns) = namespace() else { return };
    let line = emf_line(ns, now_ms(), obs);
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}") {
        tracing::debug!(error = %e, "Metric line not written");
    }
}

/// A document the ERP accepted (created now, or found already there).
pub struct DocumentPosted<'a> {
    pub erp: &'a str,
    pub kind: &'a str,
    /// From the Stripe event's `created` to now; `None` when the event time is unknown.
    pub latency_ms: Option<i64>,
}

impl<'a> DocumentPosted<'a> {
    pub fn observation(&self) -> Observation<'a> {
        let mut values = vec![(names::DOCUMENTS_POSTED, Unit::Count, 1)];
        if let Some(ms) = self.latency_ms.filter(|ms| *ms >= 0) {
            values.push((names::EVENT_TO_DOCUMENT_LATENCY, Unit::Milliseconds, ms));
        }
        Observation {
            dimensions: vec![("erp", self.erp), ("kind", self.kind)],
            values,
        }
    }

    pub fn emit(&self) {
        record(&self.observation());
    }
}

/// A document command parked (the ERP or the data refused it; a person must act).
pub struct DocumentParked<'a> {
    pub erp: &'a str,
    pub kind: &'a str,
}

impl<'a> DocumentParked<'a> {
    pub fn observation(&self) -> Observation<'a> {
        Observation {
            dimensions: vec![("erp", self.erp), ("kind", self.kind)],
            values: vec![(names::DOCUMENTS_PARKED, Unit::Count, 1)],
        }
    }

    pub fn emit(&self) {
        record(&self.observation());
    }
}

/// Any message parked, by the stage that parked it.
pub struct MessageParked<'a> {
    pub stage: &'a str,
}

impl<'a> MessageParked<'a> {
    pub fn observation(&self) -> Observation<'a> {
        Observation {
            dimensions: vec![("stage", self.stage)],
            values: vec![(names::MESSAGES_PARKED, Unit::Count, 1)],
        }
    }

    pub fn emit(&self) {
        record(&self.observation());
    }
}

/// The variance of one reconciled payout: what its journal booked to the variance account
/// (debit positive), in the currency's minor units.
pub struct PayoutVariance<'a> {
    pub currency: &'a str,
    pub variance_minor: i64,
}

impl<'a> PayoutVariance<'a> {
    pub fn observation(&self) -> Observation<'a> {
        Observation {
            dimensions: vec![("currency", self.currency)],
            values: vec![(
                names::PAYOUT_VARIANCE_MINOR,
                Unit::None,
                self.variance_minor,
            )],
        }
    }

    pub fn emit(&self) {
        record(&self.observation());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn a_posted_document_is_one_emf_document_with_count_and_latency() {
        let obs = DocumentPosted {
            erp: "epicor",
            kind: "invoice",
            latency_ms: Some(1_234),
        }
        .observation();
        let line = emf_line("ledgerbridge/prod", 1_700_000_000_000, &obs);
        assert!(!line.contains('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        let cw = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000_i64);
        assert_eq!(cw["Namespace"], "ledgerbridge/prod");
        assert_eq!(cw["Dimensions"], serde_json::json!([["erp", "kind"]]));
        assert_eq!(
            cw["Metrics"],
            serde_json::json!([
                {"Name": "DocumentsPosted", "Unit": "Count"},
                {"Name": "EventToDocumentLatency", "Unit": "Milliseconds"}
            ])
        );
        assert_eq!(v["erp"], "epicor");
        assert_eq!(v["kind"], "invoice");
        assert_eq!(v["DocumentsPosted"], 1);
        assert_eq!(v["EventToDocumentLatency"], 1_234);
    }

    #[test]
    fn unknown_or_negative_latency_is_left_out() {
        for latency_ms in [None, Some(-5)] {
            let obs = DocumentPosted {
                erp: "sage500",
                kind: "cash_receipt",
                latency_ms,
            }
            .observation();
            assert_eq!(obs.values, vec![(names::DOCUMENTS_POSTED, Unit::Count, 1)]);
        }
    }

    #[test]
    fn payout_variance_is_an_integer_in_minor_units() {
        let obs = PayoutVariance {
            currency: "jpy",
            variance_minor: -3,
        }
        .observation();
        let v: Value = serde_json::from_str(&emf_line("ns", 0, &obs)).unwrap();
        assert_eq!(v["PayoutVarianceMinor"], -3);
        assert!(v["PayoutVarianceMinor"].is_i64());
        assert_eq!(v["currency"], "jpy");
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
            "None"
        );
    }

    #[test]
    fn parked_counts_carry_their_dimensions() {
        let doc = DocumentParked {
            erp: "sagepro",
            kind: "journal_entry",
        }
        .observation();
        assert_eq!(
            doc.dimensions,
            vec![("erp", "sagepro"), ("kind", "journal_entry")]
        );
        assert_eq!(doc.values, vec![(names::DOCUMENTS_PARKED, Unit::Count, 1)]);
        let msg = MessageParked { stage: "transform" }.observation();
        assert_eq!(msg.dimensions, vec![("stage", "transform")]);
        assert_eq!(msg.values, vec![(names::MESSAGES_PARKED, Unit::Count, 1)]);
    }

    /// The dashboard in infra/template.yaml searches for these names.
    #[test]
    fn the_dashboard_names_every_metric() {
        let template = include_str!("../../../infra/template.yaml");
        for name in [
            names::DOCUMENTS_POSTED,
            names::DOCUMENTS_PARKED,
            names::EVENT_TO_DOCUMENT_LATENCY,
            names::MESSAGES_PARKED,
            names::PAYOUT_VARIANCE_MINOR,
        ] {
            assert!(
                template.contains(&format!("MetricName=\\\"{name}\\\"")),
                "{name} is not on the dashboard"
            );
        }
        assert!(template.contains(&format!(
            "{NAMESPACE_VAR}: !Sub \"ledgerbridge/${{AWS::StackName}}\""
        )));
    }
}
