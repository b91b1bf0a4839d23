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
pub use poster::apply_resolution;

use crate::mapping::Mapping;
use crate::outcome::StageError;
use ledgerbridge_core::ids::{ErpDocumentId, IdempotencyKey, StripeObjectId};
use ledgerbridge_core::ports::{Claim, ClaimRequest, RecordStatus, StoreError, XrefRecord};
use ledgerbridge_core::Clock;
use ledgerbridge_erp::{ErpConnector, ErpError, RetryPolicy};
use ledgerbridge_stripe::api::StripeApi;

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

/// Everything erp-post needs, built once per container.
pub struct Poster<C, S, A, K> {
    pub connector: C,
    pub store: S,
    /// `None` disables write-back and Stripe lookups (e.g. no Stripe key configured locally).
    pub stripe: Option<A>,
    pub mapping: Mapping,
    pub policy: RetryPolicy,
    pub clock: K,
    /// How long an intent may stay in progress before another worker may take it over.
    pub lease_ms: i64,
    /// How long intent records count (they are a lock, the cross-reference is the record).
    pub intent_days: i64,
}

/// What every part of the poster uses: claims and cross-references.
impl<C, S, A, K> Poster<C, S, A, K>
where
    C: ErpConnector,
    S: StateStore,
    A: StripeApi,
    K: Clock,
{
    async fn claim(&self, key: &IdempotencyKey) -> Result<Claim, StoreError> {
        let now_ms = self.clock.now_millis();
        self.store
            .claim(&ClaimRequest {
                key: key.clone(),
                payload_hash: String::new(),
                now_ms,
                lease_ms: self.lease_ms,
                expiration: now_ms / 1000 + self.intent_days * 86_400,
            })
            .await
    }

    async fn record_xref(
        &self,
        stripe_id: &StripeObjectId,
        kind: &str,
        erp_id: &ErpDocumentId,
    ) -> Result<(), StageError> {
        self.record_xref_posted(stripe_id, kind, erp_id, None, None)
            .await
    }

    /// Record the cross-reference with the amount and currency posted (for the audit).
    async fn record_xref_posted(
        &self,
        stripe_id: &StripeObjectId,
        kind: &str,
        erp_id: &ErpDocumentId,
        posted: Option<ledgerbridge_core::Money>,
        command: Option<String>,
    ) -> Result<(), StageError> {
        let rec = self.xref_posted(stripe_id, kind, erp_id, posted, command);
        let existing = self.store.put_xref_if_absent(&rec).await?;
        xref_conflict(&rec, existing.as_ref());
        Ok(())
    }

    /// The cross-reference of a posted document, with the amount and currency posted.
    fn xref_posted(
        &self,
        stripe_id: &StripeObjectId,
        kind: &str,
        erp_id: &ErpDocumentId,
        posted: Option<ledgerbridge_core::Money>,
        command: Option<String>,
    ) -> XrefRecord {
        XrefRecord {
            stripe_id: stripe_id.clone(),
            doc_kind: kind.to_owned(),
            erp: self.connector.erp().to_owned(),
            erp_id: erp_id.clone(),
            created_at_ms: self.clock.now_millis(),
            posted,
            command,
        }
    }

    /// Record a posted document's cross-reference and complete its intent in one store
    /// write (`IdempotencyStore::complete_with_xref`).
    async fn complete_posted(
        &self,
        key: &IdempotencyKey,
        rec: &XrefRecord,
        result: Option<String>,
    ) -> Result<(), StoreError> {
        let existing = self
            .store
            .complete_with_xref(rec, key, RecordStatus::Completed, result)
            .await?;
        xref_conflict(rec, existing.as_ref());
        Ok(())
    }
}

/// Alarm when the cross-reference already stored points at another ERP document than `rec`.
fn xref_conflict(rec: &XrefRecord, existing: Option<&XrefRecord>) {
    if let Some(existing) = existing {
        if existing.erp_id != rec.erp_id {
            tracing::error!(alarm = "xref_conflict", stripe_id = %rec.stripe_id, kind = %rec.doc_kind, "Cross-reference already points at another ERP document");
        }
    }
}

#[cfg(test)]
mod tests;
