//! What a stage makes of one message: the successful [`Outcome`] of the transform, and the
//! errors that decide between retrying the message and parking it.

use crate::messages::ErpCommandV1;
use crate::sqs::RecordOutcome;
use ledgerbridge_core::ports::EventQueue;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Commands(Vec<ErpCommandV1>),
    /// Values for the ERP customer's user-defined fields (subscription state).
    CustomerFields(Box<crate::messages::CustomerFieldsV1>),
    /// Nothing to book, with the reason (recorded, not an error).
    Skipped(String),
}

#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    /// Stripe unreachable or rate-limited: retry later.
    #[error("retryable: {0}")]
    Retryable(String),
    /// The event cannot be booked as it is (missing data, invalid amounts): parked with reason.
    #[error("{0}")]
    Permanent(String),
}

impl TransformError {
    pub fn is_retriable(&self) -> bool {
        matches!(self, TransformError::Retryable(_))
    }
}

pub(crate) fn permanent(msg: impl Into<String>) -> TransformError {
    TransformError::Permanent(msg.into())
}

pub(crate) fn stripe_err(e: ledgerbridge_stripe::StripeError) -> TransformError {
    if e.is_retriable() {
        TransformError::Retryable(e.to_string())
    } else {
        TransformError::Permanent(e.to_string())
    }
}

/// A message that failed permanently, with the reason and the original body (replayable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "parked.v1")]
pub struct ParkedV1 {
    pub stage: String,
    pub reason: String,
    pub body: String,
}

pub async fn park<P: EventQueue>(
    parked: &P,
    stage: &str,
    reason: String,
    body: &str,
) -> RecordOutcome {
    tracing::error!(stage, reason = %reason, alarm = "message_parked", "Message parked; fix and replay it");
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
