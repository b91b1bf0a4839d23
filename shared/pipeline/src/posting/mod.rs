//! erp-post: each command reaches the ERP effectively once (RELIABILITY A4: intent record →
//! find by reference → create only if absent → cross-reference → write-back).
//!
//! Transport is at-least-once and the ERPs have no idempotency keys, so every step is safe to
//! repeat: a document already cross-referenced is not posted again; a crash or a lost response
//! after the ERP committed is resolved by `post_command`, which searches by the deterministic
//! external reference before it creates.

mod customers;
mod poster;
mod write_back;

pub use crate::store::StateStore;
pub use poster::{apply_resolution, Poster};

use crate::outcome::StageError;
use ledgerbridge_core::ids::ErpDocumentId;
use ledgerbridge_erp::ErpError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostResult {
    Posted {
        erp_id: ErpDocumentId,
        created: bool,
    },
    /// Already in the ERP (cross-referenced earlier); nothing was sent to the ERP.
    AlreadyPosted { erp_id: ErpDocumentId },
    /// A customer update older than one already applied.
    Stale,
}

/// What writing customer field values did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldsResult {
    Written {
        erp_id: ErpDocumentId,
        customer_code: String,
        /// ERP fields written.
        written: Vec<String>,
        /// Values the ERP settings map to no field (not written).
        unmapped: Vec<String>,
    },
    /// Older than values already written for the same Stripe object.
    Stale,
}

/// An ERP failure: retried when transient (and on rejected credentials, with an alarm), else
/// parked with the ERP's message.
fn erp_error(e: ErpError) -> StageError {
    if e.is_auth() {
        tracing::error!(alarm = "erp_auth_failed", error = %e, "ERP rejected the credentials after a refresh");
        return StageError::retry(e);
    }
    if e.is_retriable() {
        StageError::retry(e)
    } else {
        StageError::park_with(e.to_string(), e)
    }
}

fn stripe_error(e: ledgerbridge_stripe::StripeError) -> StageError {
    if e.is_retriable() {
        StageError::retry(e)
    } else {
        StageError::park_with(format!("Stripe: {e}"), e)
    }
}

#[cfg(test)]
mod tests;
