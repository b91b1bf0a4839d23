//! Payout reconciliation.
//!
//! A payout's balance transactions are folded one at a time into a [`PayoutAggregator`]
//! (constant memory in summary mode), which produces one balanced [`PayoutJournal`] in the
//! settlement currency and a [`DiscrepancyReport`]. Settlement figures come only from balance
//! transactions. The accounts come from a [`ReconMapping`].
//!
//! [`reconcile`] drives the aggregation page by page from Stripe, read through the
//! [`StripeApi`](ledgerbridge_stripe::StripeApi) port (the client, or a test double), and
//! handles the other payout shapes: failed payouts (reversing journal or flag) and manual
//! payouts (needs review, or reconstruction from caller-supplied transactions).
//!
//! Module graph (no circles): `journal`, `mapping`, `report` ← `error` ← `aggregate` ←
//! `reconcile`.

pub mod aggregate;
pub mod error;
pub mod journal;
pub mod mapping;
pub mod reconcile;
pub mod report;
pub mod report_store;
pub mod service;

pub use aggregate::{CategoryTotals, FxRateLookup, NoBookedRates, PayoutAggregator};
pub use error::ReconError;
pub use journal::{
    JournalError, JournalKind, JournalLine, LineKind, PayoutJournal, PlainJournalLine, Side,
};
pub use mapping::{DetailLevel, FailedPayoutPolicy, ManualPayoutPolicy, ReconMapping};
pub use reconcile::{
    failed_payout, failed_payout_from, fold_page, journal_idempotency_key, manual_payout,
    reconcile, NoSyncCheck, ReconOutcome, ReconStatus, SyncCheck, XrefSyncCheck,
};
pub use report::{Discrepancy, DiscrepancyKind, DiscrepancyReport};
