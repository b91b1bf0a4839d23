//! The poster: claim → cross-reference short-circuit → dependencies → post once → record the
//! cross-reference → write back.

use super::customers::Resolved;
use super::{erp_error, FieldsResult, PostResult, Poster};
use crate::outcome::StageError;
use crate::store::StateStore;
use ledgerbridge_core::ids::{ErpDocumentId, IdempotencyKey};
use ledgerbridge_core::keys::{IntentKey, LockKey, VersionKey};
use ledgerbridge_core::metrics;
use ledgerbridge_core::ports::{Claim, ClaimRequest, RecordStatus, XrefRecord};
use ledgerbridge_core::Clock;
use ledgerbridge_erp::{
    post_command, with_retry, Application, DocKind, DocumentReadBack, ErpCommand, ErpConnector,
    ExternalRef,
};
use ledgerbridge_messages::{CustomerFieldsV1, ErpCommandV1};
use ledgerbridge_stripe::api::StripeApi;

impl<C, S, A, K> Poster<C, S, A, K>
where
    C: ErpConnector,
    S: StateStore,
    A: StripeApi,
    K: Clock,
{
    pub async fn handle(&self, msg: &ErpCommandV1) -> Result<PostResult, StageError> {
        self.handle_marked(msg, false).await
    }

    /// [`Poster::handle`] for a message that may be an operator's replay (the `replay`
    /// attribute, [`ledgerbridge_messages::replay`]). A replayed command whose document is
    /// cross-referenced is checked in the ERP (one read-back) before it is answered from the
    /// cross-reference; a live one is not (no ERP call).
    pub async fn handle_marked(
        &self,
        msg: &ErpCommandV1,
        replay: bool,
    ) -> Result<PostResult, StageError> {
        let reference = msg.command.reference().clone();
        let kind = msg.command.kind();
        let is_customer = kind == DocKind::Customer;
        if !is_customer {
            if let Some(x) = self
                .store
                .get_xref(reference.stripe_id(), kind.as_str())
                .await?
            {
                if replay {
                    self.check_replayed(&reference, &x).await?;
                }
                self.write_back(msg, &x.erp_id).await?;
                return Ok(PostResult::AlreadyPosted { erp_id: x.erp_id });
            }
        }
        let mut parent = None;
        for dep in &msg.depends_on {
            match self
                .store
                .get_xref(dep.stripe_id(), dep.kind().as_str())
                .await?
            {
                Some(x) => parent = Some((dep.kind(), x.erp_id)),
                None => return Err(self.waiting_for(msg, dep).await?),
            }
        }
        let erp = self.connector.erp();
        let key: IdempotencyKey = if is_customer {
            IntentKey::post_for_event(erp, &reference, &msg.source.event_id).into()
        } else {
            IntentKey::post(erp, &reference).into()
        };
        match self.claim(&key).await? {
            Claim::Acquired => {}
            Claim::Existing(rec) => {
                return match rec.status {
                    RecordStatus::Completed | RecordStatus::Ignored => match rec.result {
                        Some(id) => Ok(PostResult::AlreadyPosted {
                            erp_id: ErpDocumentId::new(id),
                        }),
                        None => Ok(PostResult::Stale),
                    },
                    RecordStatus::InProgress => Err(StageError::pending(format!(
                        "{reference} is being posted by another worker"
                    ))),
                    RecordStatus::Parked => Err(StageError::park(rec.result.unwrap_or_default())),
                };
            }
        }
        let (outcome, xref) = match self.post_claimed(msg, parent).await {
            Ok(Claimed { result, xref }) => (Ok(result), xref),
            Err(e) => (Err(e), None),
        };
        match &outcome {
            Ok(PostResult::Posted { erp_id, .. } | PostResult::AlreadyPosted { erp_id }) => {
                let result = Some(erp_id.to_string());
                match xref {
                    // The document's cross-reference and its intent's completion: one write.
                    // A failed one leaves the intent held until its lease lapses (the ERP has
                    // the document; the next holder finds it by reference before it creates).
                    Some(rec) => {
                        self.complete_posted(&key, &rec, result).await?;
                    }
                    None => {
                        self.store
                            .complete(&key, RecordStatus::Completed, result)
                            .await?;
                    }
                }
            }
            Ok(PostResult::Stale) => {
                self.store
                    .complete(&key, RecordStatus::Completed, None)
                    .await?
            }
            Err(StageError::Park { reason, .. }) => {
                self.store
                    .complete(&key, RecordStatus::Parked, Some(reason.clone()))
                    .await?;
            }
            Err(e) if e.is_in_doubt() => {
                // The document may exist but is not found yet: keep the intent held until its
                // lease lapses (longer than the ERP's search lag), so no worker creates it again
                // before a search can see it; the next one searches first.
                tracing::warn!(reference = %reference, "ERP create in doubt; intent kept until its lease lapses");
            }
            Err(_) => {
                if let Err(e) = self.store.release(&key).await {
                    tracing::warn!(error = %e, "Intent not released; it lapses with its lease");
                }
            }
        }
        match &outcome {
            Ok(PostResult::Posted { .. }) => {
                let created_ms = msg.source.created.saturating_mul(1000);
                metrics::DocumentPosted {
                    erp,
                    kind: kind.as_str(),
                    latency_ms: (created_ms > 0)
                        .then(|| self.clock.now_millis().saturating_sub(created_ms)),
                }
                .emit();
            }
            Err(StageError::Park { .. }) => metrics::DocumentParked {
                erp,
                kind: kind.as_str(),
            }
            .emit(),
            _ => {}
        }
        let result = outcome?;
        if let PostResult::Posted { erp_id, .. } = &result {
            self.write_back(msg, erp_id).await?;
        }
        Ok(result)
    }

    /// Write the values of a `customer_fields.v1` message to the ERP customer's user-defined
    /// fields. Per Stripe object, one worker at a time (a lease claim, released after) checks
    /// the version and writes, so an older state never lands after a newer one: the version is
    /// advanced before the write, and a failed write is retried under the same version, which
    /// is still accepted.
    pub async fn handle_fields(&self, msg: &CustomerFieldsV1) -> Result<FieldsResult, StageError> {
        let resolved = self.resolve_customer(&msg.customer).await?;
        let erp = self.connector.erp();
        let lock: IdempotencyKey = LockKey::customer_fields(erp, &msg.object_id).into();
        if let Claim::Existing(_) = self.claim(&lock).await? {
            return Err(StageError::pending(format!(
                "fields of {} are being written by another worker",
                msg.object_id
            )));
        }
        let result = self.write_fields(msg, &resolved).await;
        if let Err(e) = self.store.release(&lock).await {
            tracing::warn!(error = %e, "Field lock not released; it lapses with its lease");
        }
        result
    }

    async fn write_fields(
        &self,
        msg: &CustomerFieldsV1,
        customer: &Resolved,
    ) -> Result<FieldsResult, StageError> {
        let vkey = VersionKey::subscription_fields(self.connector.erp(), &msg.object_id);
        if !self
            .store
            .advance_version(vkey.as_str(), msg.version)
            .await?
        {
            tracing::info!(object = %msg.object_id, "Older customer field values skipped");
            return Ok(FieldsResult::Stale);
        }
        let out = with_retry(&self.policy, |_| {
            self.connector
                .set_customer_fields(&customer.code, &msg.values)
        })
        .await
        .map_err(erp_error)?;
        if !out.unmapped.is_empty() {
            tracing::warn!(alarm = "customer_field_unmapped", unmapped = ?out.unmapped, "Values with no ERP field in the ERP settings (customer_fields) were not written");
        }
        Ok(FieldsResult::Written {
            erp_id: customer.erp_id.clone(),
            customer_code: customer.code.clone(),
            written: out.written,
            unmapped: out.unmapped,
        })
    }

    /// Post a claimed command. A versioned customer upsert holds its customer's lock (a lease
    /// claim, released after) across the version check and the write: without it, an older
    /// update that passed the check could land after a newer one (RELIABILITY E6).
    pub(super) async fn post_claimed(
        &self,
        msg: &ErpCommandV1,
        parent: Option<(DocKind, ErpDocumentId)>,
    ) -> Result<Claimed, StageError> {
        let ErpCommand::UpsertCustomer(c) = &msg.command else {
            return self.post_unlocked(msg, parent).await;
        };
        if msg.version.is_none() {
            return self.post_unlocked(msg, parent).await;
        }
        let lock: IdempotencyKey =
            LockKey::customer_upsert(self.connector.erp(), c.reference.stripe_id()).into();
        if let Claim::Existing(_) = self.claim(&lock).await? {
            return Err(StageError::pending(format!(
                "customer {} is being written by another worker",
                c.reference
            )));
        }
        let result = self.post_unlocked(msg, parent).await;
        if let Err(e) = self.store.release(&lock).await {
            tracing::warn!(error = %e, "Customer lock not released; it lapses with its lease");
        }
        result
    }

    async fn post_unlocked(
        &self,
        msg: &ErpCommandV1,
        parent: Option<(DocKind, ErpDocumentId)>,
    ) -> Result<Claimed, StageError> {
        let mut command = msg.command.clone();
        if let (Some(v), ErpCommand::UpsertCustomer(c)) = (msg.version, &command) {
            let vkey = VersionKey::customer(self.connector.erp(), c.reference.stripe_id());
            if !self.store.advance_version(vkey.as_str(), v).await? {
                tracing::info!(reference = %c.reference, "Older customer update skipped");
                return Ok(PostResult::Stale.into());
            }
        }
        let resolved = match &msg.customer {
            Some(hint) => Some(self.resolve_customer(hint).await?),
            None => None,
        };
        if let ErpCommand::UpsertCustomer(upsert) = &command {
            let r = resolved
                .ok_or_else(|| StageError::park("customer upsert without customer hint"))?;
            if r.created_now {
                return Ok(PostResult::Posted {
                    erp_id: r.erp_id,
                    created: true,
                }
                .into());
            }
            if r.linked {
                tracing::info!(reference = %upsert.reference, "Customer linked to an existing ERP customer; its master data is left to the ERP");
                return Ok(PostResult::AlreadyPosted { erp_id: r.erp_id }.into());
            }
            let mut upsert = upsert.clone();
            upsert.customer_id = r.code.clone();
            with_retry(&self.policy, |_| {
                self.connector.update_customer(&r.erp_id, &upsert)
            })
            .await
            .map_err(erp_error)?;
            return Ok(PostResult::Posted {
                erp_id: r.erp_id,
                created: false,
            }
            .into());
        }
        apply_resolution(
            &mut command,
            resolved.as_ref().map(|r| r.code.as_str()),
            parent.as_ref().map(|(k, id)| (*k, id)),
        );
        let out = post_command(&self.connector, &command, &self.policy)
            .await
            .map_err(erp_error)?;
        // The cross-reference is written with the intent's completion (one commit).
        let xref = self.xref_posted(
            command.reference().stripe_id(),
            command.kind().as_str(),
            &out.erp_id,
            command.posted_amount(),
            serde_json::to_string(&command).ok(),
        );
        Ok(Claimed {
            result: PostResult::Posted {
                erp_id: out.erp_id,
                created: out.created,
            },
            xref: Some(xref),
        })
    }

    /// A replayed command's document is cross-referenced: read it back once. Gone from the ERP
    /// (deleted by hand after it was posted) → parked with a reason naming the document and how
    /// to re-post it, and an alarm; never answered as already posted. Found (under any number;
    /// amounts are the audit's) → answered from the cross-reference as before.
    async fn check_replayed(
        &self,
        reference: &ExternalRef,
        x: &XrefRecord,
    ) -> Result<(), StageError> {
        match self
            .connector
            .read_back(reference, &x.erp_id)
            .await
            .map_err(erp_error)?
        {
            DocumentReadBack::Found { erp_id, .. } => {
                if erp_id != x.erp_id {
                    tracing::warn!(reference = %reference, xref_erp_id = %x.erp_id, erp_id = %erp_id, "Replayed document found under another ERP number than its cross-reference (ledgerbridge audit reports it)");
                }
                Ok(())
            }
            DocumentReadBack::Missing => {
                let day = ledgerbridge_erp::ErpDate::from_unix(x.created_at_ms.div_euclid(1000))
                    .map(|d| d.as_str().to_owned())
                    .unwrap_or_else(|_| "DATE".to_owned());
                let reason = format!(
                    "{kind} {reference} is cross-referenced to {erp} document {erp_id}, which the ERP no longer has (deleted by hand after it was posted); nothing was posted. Re-post it with `ledgerbridge audit --from {day} --to {day} --repost` (and this installation's --erp-settings-file and --data-dir or --state-table), then replay this message",
                    kind = x.doc_kind,
                    erp = x.erp,
                    erp_id = x.erp_id,
                );
                tracing::error!(alarm = "xref_document_missing", erp = %x.erp, kind = %x.doc_kind, reference = %reference, erp_id = %x.erp_id, "Replayed document is missing in the ERP; parked");
                metrics::DocumentParked {
                    erp: self.connector.erp(),
                    kind: reference.kind().as_str(),
                }
                .emit();
                Err(StageError::park(reason))
            }
        }
    }

    /// A parent that was parked will not appear by waiting: park the dependent too, with the
    /// reason, so both are replayed together once it is fixed.
    ///
    /// The wait itself is limited to `defaults.parent_wait_minutes`, counted from the first
    /// time this document waited (a record of its own in the state store): a parent that never
    /// comes (its event lost upstream, or a payment ledgerbridge never booked) must not leave
    /// the child to the dead-letter queue without a reason.
    async fn waiting_for(
        &self,
        msg: &ErpCommandV1,
        dep: &ExternalRef,
    ) -> Result<StageError, StageError> {
        let erp = self.connector.erp();
        let dep_key: IdempotencyKey = IntentKey::post(erp, dep).into();
        if let Some(rec) = self.store.get(&dep_key).await? {
            if rec.status == RecordStatus::Parked {
                return Ok(StageError::park(format!(
                    "depends on {dep}, which is parked: {}",
                    rec.result.unwrap_or_default()
                )));
            }
        }
        let reference = msg.command.reference();
        let limit_ms = i64::from(self.mapping.defaults.parent_wait_minutes).saturating_mul(60_000);
        let now = self.clock.now_millis();
        let wait_key: IdempotencyKey = IntentKey::parent_wait(erp, reference).into();
        match self.store.get(&wait_key).await? {
            Some(rec) if rec.in_progress_expiration <= now => {
                let waited_min = (now - (rec.in_progress_expiration - limit_ms)) / 60_000;
                return Ok(StageError::park(parent_missing(msg, dep, waited_min)));
            }
            Some(_) => {}
            None => {
                // The first wait: remember when it started (the lease runs out at the limit).
                let req = ClaimRequest {
                    key: wait_key,
                    payload_hash: String::new(),
                    now_ms: now,
                    lease_ms: limit_ms,
                    expiration: now / 1000 + limit_ms / 1000 + self.intent_days * 86_400,
                };
                self.store.claim(&req).await?;
            }
        }
        Ok(StageError::pending(format!("waiting for {dep}")))
    }
}

/// What posting a claimed command did, and the cross-reference it leaves to be recorded with
/// the intent's completion (a document created or found in the ERP by its reference).
pub(super) struct Claimed {
    pub(super) result: PostResult,
    pub(super) xref: Option<XrefRecord>,
}

impl From<PostResult> for Claimed {
    fn from(result: PostResult) -> Self {
        Claimed { result, xref: None }
    }
}

/// Why a document that waited its time for `dep` is parked, and what a person does about it.
fn parent_missing(msg: &ErpCommandV1, dep: &ExternalRef, waited_min: i64) -> String {
    let reference = msg.command.reference();
    let payment = dep.stripe_id();
    match (msg.command.kind(), dep.kind()) {
        (DocKind::CreditMemo, DocKind::CashReceipt) => format!(
            "credit memo {reference} is for a refund of Stripe payment {payment} (the refunded charge, or its PaymentIntent), whose receipt {dep} is not in the ERP after {waited_min} min of waiting: book that payment first (replay its charge.succeeded or payment_intent.succeeded event, or backfill it), then replay this message; or, if the payment was taken before ledgerbridge and will never be booked, set refunds.wait_for_payment = false and replay; nothing was booked"
        ),
        _ => format!(
            "{reference} depends on {dep} (Stripe {payment}), which is not in the ERP after {waited_min} min of waiting: post {dep} first (replay the event that books it, or backfill it), then replay this message; nothing was booked"
        ),
    }
}

/// Fill what only posting time knows: the resolved customer, and what a receipt applies to.
pub fn apply_resolution(
    command: &mut ErpCommand,
    customer_id: Option<&str>,
    parent: Option<(DocKind, &ledgerbridge_core::ids::ErpDocumentId)>,
) {
    if let Some(c) = customer_id {
        match command {
            ErpCommand::CreateSalesOrder(x) => x.customer_id = c.to_owned(),
            ErpCommand::CreateInvoice(x) => x.customer_id = c.to_owned(),
            ErpCommand::CreateCashReceipt(x) => x.customer_id = c.to_owned(),
            ErpCommand::CreateCreditMemo(x) => x.customer_id = c.to_owned(),
            ErpCommand::UpsertCustomer(_) | ErpCommand::PostJournalEntry(_) => {}
        }
    }
    if let (ErpCommand::CreateCashReceipt(r), Some((kind, id))) = (command, parent) {
        r.applies_to = match kind {
            DocKind::SalesOrder => Some(Application::SalesOrder(id.clone())),
            DocKind::Invoice => Some(Application::Invoice(id.clone())),
            _ => None,
        };
    }
}
