//! The rig the ERP rows (E1–E4) share: journal-entry commands on a moto queue with a DLQ,
//! drained by the event-source-mapping simulator into the real erp-post stage (moto DynamoDB
//! state, moto parked queue) in front of a connector to the ERP sandbox, whose fault knobs the
//! row sets.

use super::esm::{drain, queue_with_dlq, send_all, Esm, EsmStats};
use super::{journal_messages, post_stage};
use crate::support::moto;
use ledgerbridge_adapters::lambda::process_batch;
use ledgerbridge_core::secrets::Secret;
use ledgerbridge_erp::{AnyConnector, ErpConnector, ErpSettings, RetryPolicy};
use ledgerbridge_erp_sandbox::SandboxHandle;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The Sage Pro connector of `crate::pipeline::sagepro` (built from the JSON settings, as the
/// erp-post function builds it) with the settings' `gate` object set to `gate`.
pub fn sagepro_gated(sb: &SandboxHandle, gate: serde_json::Value) -> AnyConnector {
    let settings = serde_json::json!({
        "kind": "sagepro", "base_url": sb.base_url(), "timeout_ms": 5000,
        "api_key": sb.keys().sagepro_api_key, "gate": gate,
    });
    AnyConnector::from_settings(ErpSettings::from_json(&Secret::new(settings.to_string())).unwrap())
        .unwrap()
}

/// What a run left behind.
pub struct Run {
    pub stats: Arc<EsmStats>,
    /// From the first poll until the queue stayed empty (the idle wait not included).
    pub elapsed: Duration,
    pub parked: Vec<String>,
    pub dlq: Vec<String>,
    pub left: Vec<String>,
}

pub struct Rig {
    pub docs: usize,
    pub tag: &'static str,
    pub policy: RetryPolicy,
    pub esm: Esm,
    pub max_receives: u32,
    /// Records one invocation posts at once (`process_batch`'s bound).
    pub per_invocation: usize,
    pub idle: Duration,
    pub deadline: Duration,
}

impl Rig {
    /// Send `docs` journal messages and run the simulator until the queue stays empty.
    /// `during` runs alongside the simulator (to change the sandbox's knobs mid-run).
    pub async fn run<C, F>(&self, connector: C, during: F) -> Run
    where
        C: ErpConnector + 'static,
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let conf = moto::sdk_config().await;
        let sqs = aws_sdk_sqs::Client::new(&conf);
        let lease_ms = i64::try_from(self.esm.invocation_timeout.as_millis()).unwrap_or(i64::MAX);
        let (stage, _, parked) = post_stage(
            connector,
            aws_sdk_dynamodb::Client::new(&conf),
            lease_ms,
            self.policy.clone(),
        )
        .await;
        let stage = Arc::new(stage);
        let q = queue_with_dlq(
            &sqs,
            &moto::unique(&format!("{}-commands", self.tag)),
            self.max_receives,
            u32::try_from(self.esm.visibility_timeout_secs).unwrap(),
        )
        .await;
        send_all(&sqs, &q, &journal_messages(self.docs, self.tag), |_| {
            String::new()
        })
        .await;
        let side = tokio::spawn(during);
        let s = stage.clone();
        let per = self.per_invocation;
        let started = Instant::now();
        let stats = self
            .esm
            .run(
                &sqs,
                &q,
                move |event| {
                    let stage = s.clone();
                    async move {
                        process_batch(event, per, |body| {
                            let stage = stage.clone();
                            async move { stage.process(&body).await }
                        })
                        .await
                        .unwrap()
                    }
                },
                self.idle,
                self.deadline,
            )
            .await;
        let elapsed = started.elapsed().saturating_sub(self.idle);
        side.await.unwrap();
        Run {
            stats,
            elapsed,
            parked: drain(&sqs, &parked).await,
            dlq: drain(&sqs, &q.dlq_url).await,
            left: drain(&sqs, &q.url).await,
        }
    }

    /// The commands the run's messages carry.
    pub fn commands(&self) -> Vec<ledgerbridge_erp::ErpCommand> {
        (0..self.docs)
            .map(|i| super::journal(&format!("{}{i}", self.tag)))
            .collect()
    }
}

impl Run {
    /// Nothing parked, nothing in the DLQ, nothing left on the queue.
    pub fn assert_clean(&self) {
        assert!(self.parked.is_empty(), "parked: {:?}", self.parked.first());
        assert!(self.dlq.is_empty(), "{} in the DLQ", self.dlq.len());
        assert!(
            self.left.is_empty(),
            "{} left on the queue",
            self.left.len()
        );
    }
}
