//! The figures every deployment shape shares (Lambda mains, the local runner, the agent), in
//! one place. Environment variables override some of them in the functions' configs; these
//! are the values used when nothing is set.

use ledgerbridge_core::message::SQS_MAX_MESSAGE_BYTES;
use std::time::Duration;

/// Timeouts, batch sizes, leases and retention shared by the stage builders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defaults {
    /// Largest queue message (SQS's per-message limit).
    pub max_message_bytes: usize,
    /// SQS records the transform processes at once.
    pub transform_concurrency: usize,
    /// SQS records erp-post processes at once.
    pub post_concurrency: usize,
    /// SQS records erp-sync processes at once.
    pub sync_concurrency: usize,
    /// How long a posting intent may stay in progress (erp-post and the agent).
    pub post_lease_ms: i64,
    /// The same lease in the local runner (one process, shorter).
    pub local_post_lease_ms: i64,
    /// How long posting intents count (days).
    pub post_intent_days: i64,
    /// How long an erp-sync claim may stay in progress.
    pub sync_lease_ms: i64,
    /// How long the claim of one ERP change counts (days).
    pub sync_intent_days: i64,
    /// Seconds the ERP poll re-reads before its cursor.
    pub poll_overlap_secs: i64,
    /// How far back the first ERP poll looks.
    pub poll_first_run_secs: i64,
    /// Most customers one ERP poll reads.
    pub poll_limit: usize,
    /// Claim lease of a payout reconciliation (used if the configured one does not fit).
    pub recon_lease_ms: i64,
    /// How long a payout's completed claim counts (days).
    pub recon_claim_days: i64,
    /// SQS records the local reconciliation processes at once.
    pub local_recon_concurrency: usize,
    /// How long the intake remembers a Stripe event id.
    pub intake_dedupe_secs: i64,
    /// The local intake's claim lease.
    pub local_intake_lease_ms: i64,
    /// How long the local intake waits for a peer handling the same event.
    pub local_intake_wait_for_peer: Duration,
    /// How long a secret read from the store is cached.
    pub secret_ttl: Duration,
}

/// Seconds in a day.
pub const DAY_SECS: i64 = 86_400;

/// The values in force.
pub const DEFAULTS: Defaults = Defaults {
    max_message_bytes: SQS_MAX_MESSAGE_BYTES,
    transform_concurrency: 8,
    post_concurrency: 4,
    sync_concurrency: 4,
    post_lease_ms: 120_000,
    local_post_lease_ms: 60_000,
    post_intent_days: 400,
    sync_lease_ms: 60_000,
    sync_intent_days: 400,
    poll_overlap_secs: 120,
    poll_first_run_secs: 3_600,
    poll_limit: 1_000,
    recon_lease_ms: 300_000,
    recon_claim_days: 400,
    local_recon_concurrency: 1,
    intake_dedupe_secs: 35 * DAY_SECS,
    local_intake_lease_ms: 15_000,
    local_intake_wait_for_peer: Duration::from_secs(3),
    secret_ttl: Duration::from_secs(300),
};

impl Default for Defaults {
    fn default() -> Self {
        DEFAULTS
    }
}
