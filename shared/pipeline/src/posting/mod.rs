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

use ledgerbridge_core::ids::ErpDocumentId;
use ledgerbridge_core::ports::StoreError;
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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    /// A prerequisite (parent document, a concurrent claim) is not there yet: retry later.
    #[error("deferred: {0}")]
    Deferred(String),
    /// A transient failure (ERP, store or Stripe unavailable): retry later.
    #[error("retryable: {0}")]
    Retryable(String),
    /// A permanent failure (validation, master data, mapping): parked with the ERP's message,
    /// replayable once fixed.
    #[error("parked: {0}")]
    Parked(String),
}

impl PostError {
    pub fn is_retriable(&self) -> bool {
        !matches!(self, PostError::Parked(_))
    }
}

impl From<StoreError> for PostError {
    fn from(e: StoreError) -> Self {
        PostError::Retryable(e.to_string())
    }
}

fn erp_error(e: ErpError) -> PostError {
    if e.is_auth() {
        tracing::error!(alarm = "erp_auth_failed", error = %e, "ERP rejected the credentials after a refresh");
        return PostError::Retryable(e.to_string());
    }
    if e.is_retriable() {
        PostError::Retryable(e.to_string())
    } else {
        PostError::Parked(e.to_string())
    }
}

fn stripe_error(e: ledgerbridge_stripe::StripeError) -> PostError {
    if e.is_retriable() {
        PostError::Retryable(e.to_string())
    } else {
        PostError::Parked(format!("Stripe: {e}"))
    }
}
