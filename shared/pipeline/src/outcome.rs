//! What a stage makes of one message: the successful [`Outcome`] of the transform, and the
//! errors that decide between retrying the message and parking it.

use ledgerbridge_core::ports::RecordOutcome;
use ledgerbridge_core::ports::{EventQueue, QueueError, StoreError};
use ledgerbridge_erp::ErpError;
use ledgerbridge_messages::ErpCommandV1;
pub use ledgerbridge_messages::ParkedV1;
use ledgerbridge_stripe::StripeError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Commands(Vec<ErpCommandV1>),
    /// Values for the ERP customer's user-defined fields (subscription state).
    CustomerFields(Box<ledgerbridge_messages::CustomerFieldsV1>),
    /// Nothing to book, with the reason (recorded, not an error).
    Skipped(String),
}

/// Why a step could not finish: the typed error underneath a [`StageError`].
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    #[error(transparent)]
    Stripe(#[from] StripeError),
    #[error(transparent)]
    Erp(#[from] ErpError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A prerequisite is not there yet (a parent document, a concurrent worker's claim).
    #[error("{0}")]
    Pending(String),
}

/// The one error of every stage: retry the message later, or park it with a reason a person
/// can act on (replayable once fixed).
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// Transient (Stripe, the ERP or the store unavailable) or waiting for a prerequisite.
    #[error("retryable: {source}")]
    Retry {
        #[source]
        source: Box<Cause>,
    },
    /// Cannot succeed as it is (missing data, invalid amounts, an ERP validation error).
    #[error("{reason}")]
    Park {
        reason: String,
        #[source]
        source: Option<Box<Cause>>,
    },
}

impl StageError {
    pub fn retry(source: impl Into<Cause>) -> Self {
        StageError::Retry {
            source: Box::new(source.into()),
        }
    }

    /// Retry once `what` is there.
    pub fn pending(what: impl Into<String>) -> Self {
        StageError::Retry {
            source: Box::new(Cause::Pending(what.into())),
        }
    }

    /// An ERP call that may have created the document failed and the document is not found
    /// yet: the intent must stay held until the ERP's search has caught up (RELIABILITY E5).
    pub fn is_in_doubt(&self) -> bool {
        matches!(self, StageError::Retry { source } if matches!(source.as_ref(), Cause::Erp(e) if e.may_have_committed()))
    }

    pub fn park(reason: impl Into<String>) -> Self {
        StageError::Park {
            reason: reason.into(),
            source: None,
        }
    }

    pub fn park_with(reason: impl Into<String>, source: impl Into<Cause>) -> Self {
        StageError::Park {
            reason: reason.into(),
            source: Some(Box::new(source.into())),
        }
    }

    pub fn is_retriable(&self) -> bool {
        matches!(self, StageError::Retry { .. })
    }

    /// The edge: a retry is redelivered, a park goes to the parked queue with its reason.
    pub async fn settle<P: EventQueue>(self, parked: &P, stage: &str, body: &str) -> RecordOutcome {
        match self {
            StageError::Retry { source } => RecordOutcome::Retry(source.to_string()),
            StageError::Park { reason, .. } => park(parked, stage, reason, body).await,
        }
    }
}

/// Store failures are transient for the stages that use this (the message is retried; the
/// queue's redrive policy bounds it).
impl From<StoreError> for StageError {
    fn from(e: StoreError) -> Self {
        StageError::retry(e)
    }
}

pub(crate) fn permanent(msg: impl Into<String>) -> StageError {
    StageError::park(msg)
}

/// A failed Stripe read: retried when Stripe may answer later, else parked with its message.
pub(crate) fn stripe_err(e: StripeError) -> StageError {
    if e.is_retriable() {
        StageError::retry(e)
    } else {
        StageError::park_with(e.to_string(), e)
    }
}

pub async fn park<P: EventQueue>(
    parked: &P,
    stage: &str,
    reason: String,
    body: &str,
) -> RecordOutcome {
    tracing::error!(stage, reason = %reason, alarm = "message_parked", "Message parked; fix and replay it");
    ledgerbridge_core::metrics::MessageParked { stage }.emit();
    let msg = ParkedV1 {
        stage: stage.to_owned(),
        reason,
        body: body.to_owned(),
    };
    match serde_json::to_string(&msg) {
        Ok(text) => match parked.send(text, None).await {
            Ok(_) => RecordOutcome::Done,
            Err(e) => RecordOutcome::Retry(format!("parked queue unavailable: {e}")),
        },
        Err(e) => RecordOutcome::Retry(format!("cannot encode parked message: {e}")),
    }
}
