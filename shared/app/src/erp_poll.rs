//! The ERP poll: reads the customers the ERP changed since the last run and queues them for
//! erp-sync. Run on erp-post's schedule in AWS, by the agent on premises, and by the local
//! runner.

use crate::DEFAULTS;
use ledgerbridge_pipeline::to_stripe::poll::ErpPoll;

/// How far the poll reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollSettings {
    /// Seconds re-read before the cursor.
    pub overlap_secs: i64,
    /// How far back the first run looks.
    pub first_run_secs: i64,
    /// Most customers read per run.
    pub limit: usize,
}

impl Default for PollSettings {
    fn default() -> Self {
        PollSettings {
            overlap_secs: DEFAULTS.poll_overlap_secs,
            first_run_secs: DEFAULTS.poll_first_run_secs,
            limit: DEFAULTS.poll_limit,
        }
    }
}

/// The poll over `connector`, keeping its cursor in `store` and queueing changes on `queue`.
pub fn build<C, S, Q>(
    connector: C,
    store: S,
    queue: Q,
    settings: &PollSettings,
) -> ErpPoll<C, S, Q> {
    ErpPoll {
        connector,
        store,
        queue,
        overlap_secs: settings.overlap_secs,
        first_run_secs: settings.first_run_secs,
        limit: settings.limit,
    }
}
