//! The reconciliation's error type. It sits below [`aggregate`](crate::aggregate) and
//! [`reconcile`](crate::reconcile), which both raise it, so neither imports the other for it.

use crate::journal::JournalError;
use crate::mapping::MappingError;
use ledgerbridge_core::currency::Currency;
use ledgerbridge_core::money::MoneyError;
use ledgerbridge_core::ports::StoreError;
use ledgerbridge_stripe::StripeError;

#[derive(Debug, thiserror::Error)]
pub enum ReconError {
    #[error(transparent)]
    Stripe(Box<StripeError>),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error(transparent)]
    Mapping(#[from] MappingError),
    #[error("sync check failed: {0}")]
    SyncCheck(#[from] StoreError),
    #[error("{transaction} is in {found}, the payout settles in {expected}")]
    CurrencyMismatch {
        transaction: String,
        expected: Currency,
        found: Currency,
    },
    /// The payout is not paid yet, or Stripe has not finished reconciling it.
    #[error("payout {payout} not ready: status {status}, reconciliation {reconciliation}")]
    NotReady {
        payout: String,
        status: String,
        reconciliation: String,
    },
    #[error("payout {0} failed but has no failure balance transaction")]
    MissingFailureTransaction(String),
}

impl From<StripeError> for ReconError {
    fn from(e: StripeError) -> Self {
        ReconError::Stripe(Box::new(e))
    }
}

impl ReconError {
    /// Retry later: Stripe transient errors, store outages, a payout not yet reconciled.
    pub fn is_retriable(&self) -> bool {
        match self {
            ReconError::Stripe(e) => e.is_retriable(),
            ReconError::SyncCheck(e) => e.is_retriable(),
            ReconError::NotReady { .. } => true,
            _ => false,
        }
    }
}
