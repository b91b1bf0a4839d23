//! erp-post: each command reaches the ERP effectively once (RELIABILITY A4: intent record →
//! find by reference → create only if absent → cross-reference → write-back).
//!
//! Transport is at-least-once and the ERPs have no idempotency keys, so every step is safe to
//! repeat: a document already cross-referenced is not posted again; a crash or a lost response
//! after the ERP committed is resolved by `post_command`, which searches by the deterministic
//! external reference before it creates.

use crate::mapping::Mapping;
use crate::messages::{CustomerFieldsV1, CustomerHint, ErpCommandV1};
use crate::stripe_api::StripeApi;
use crate::transform::customer_upsert;
use ledgerbridge_core::ids::{ErpDocumentId, IdempotencyKey, StripeObjectId};
use ledgerbridge_core::ports::{
    Claim, ClaimRequest, IdempotencyStore, RecordStatus, StoreError, VersionStore, XrefRecord,
    XrefStore,
};
use ledgerbridge_core::Clock;
use ledgerbridge_erp::{
    post_command, with_retry, CustomerUpsert, DocKind, ErpCommand, ErpConnector, ErpCustomerMatch,
    ErpError, ExternalRef, RetryPolicy,
};

/// The state the poster keeps: idempotency (intent) records, cross-references, versions.
pub trait StateStore: IdempotencyStore + XrefStore + VersionStore {}
impl<T: IdempotencyStore + XrefStore + VersionStore> StateStore for T {}

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

struct Resolved {
    code: String,
    erp_id: ErpDocumentId,
    created_now: bool,
    /// Linked by the user through `metadata.erp_customer_no`, or by e-mail: the ERP's own
    /// record, which ledgerbridge does not overwrite.
    linked: bool,
}

impl<C, S, A, K> Poster<C, S, A, K>
where
    C: ErpConnector,
    S: StateStore,
    A: StripeApi,
    K: Clock,
{
    pub async fn handle(&self, msg: &ErpCommandV1) -> Result<PostResult, PostError> {
        let reference = msg.command.reference().clone();
        let kind = msg.command.kind();
        let is_customer = kind == DocKind::Customer;
        if !is_customer {
            if let Some(x) = self
                .store
                .get_xref(reference.stripe_id(), kind.as_str())
                .await?
            {
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
                None => return Err(self.waiting_for(dep).await?),
            }
        }
        let key = if is_customer {
            IdempotencyKey::new(format!(
                "post#{}#{}#{}",
                self.connector.erp(),
                reference,
                msg.source.event_id
            ))
        } else {
            IdempotencyKey::new(format!("post#{}#{}", self.connector.erp(), reference))
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
                    RecordStatus::InProgress => Err(PostError::Deferred(format!(
                        "{reference} is being posted by another worker"
                    ))),
                    RecordStatus::Parked => Err(PostError::Parked(rec.result.unwrap_or_default())),
                };
            }
        }
        let outcome = self.post_claimed(msg, parent).await;
        match &outcome {
            Ok(PostResult::Posted { erp_id, .. } | PostResult::AlreadyPosted { erp_id }) => {
                self.store
                    .complete(&key, RecordStatus::Completed, Some(erp_id.to_string()))
                    .await?;
            }
            Ok(PostResult::Stale) => {
                self.store
                    .complete(&key, RecordStatus::Completed, None)
                    .await?
            }
            Err(PostError::Parked(reason)) => {
                self.store
                    .complete(&key, RecordStatus::Parked, Some(reason.clone()))
                    .await?;
            }
            Err(_) => {
                if let Err(e) = self.store.release(&key).await {
                    tracing::warn!(error = %e, "Intent not released; it lapses with its lease");
                }
            }
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
    pub async fn handle_fields(&self, msg: &CustomerFieldsV1) -> Result<FieldsResult, PostError> {
        let resolved = self.resolve_customer(&msg.customer).await?;
        let erp = self.connector.erp();
        let lock = IdempotencyKey::new(format!("fields#{erp}#{}#lock", msg.object_id));
        if let Claim::Existing(_) = self.claim(&lock).await? {
            return Err(PostError::Deferred(format!(
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
    ) -> Result<FieldsResult, PostError> {
        let vkey = format!("subscription#{}#{}", self.connector.erp(), msg.object_id);
        if !self.store.advance_version(&vkey, msg.version).await? {
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

    async fn post_claimed(
        &self,
        msg: &ErpCommandV1,
        parent: Option<(DocKind, ErpDocumentId)>,
    ) -> Result<PostResult, PostError> {
        let mut command = msg.command.clone();
        if let (Some(v), ErpCommand::UpsertCustomer(c)) = (msg.version, &command) {
            let vkey = format!(
                "customer#{}#{}",
                self.connector.erp(),
                c.reference.stripe_id()
            );
            if !self.store.advance_version(&vkey, v).await? {
                tracing::info!(reference = %c.reference, "Older customer update skipped");
                return Ok(PostResult::Stale);
            }
        }
        let resolved = match &msg.customer {
            Some(hint) => Some(self.resolve_customer(hint).await?),
            None => None,
        };
        if let ErpCommand::UpsertCustomer(upsert) = &command {
            let r = resolved
                .ok_or_else(|| PostError::Parked("customer upsert without customer hint".into()))?;
            if r.created_now {
                return Ok(PostResult::Posted {
                    erp_id: r.erp_id,
                    created: true,
                });
            }
            if r.linked {
                tracing::info!(reference = %upsert.reference, "Customer linked to an existing ERP customer; its master data is left to the ERP");
                return Ok(PostResult::AlreadyPosted { erp_id: r.erp_id });
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
            });
        }
        crate::transform::apply_resolution(
            &mut command,
            resolved.as_ref().map(|r| r.code.as_str()),
            parent.as_ref().map(|(k, id)| (*k, id)),
        );
        let out = post_command(&self.connector, &command, &self.policy)
            .await
            .map_err(erp_error)?;
        let reference = command.reference();
        self.record_xref(reference.stripe_id(), command.kind().as_str(), &out.erp_id)
            .await?;
        Ok(PostResult::Posted {
            erp_id: out.erp_id,
            created: out.created,
        })
    }

    async fn record_xref(
        &self,
        stripe_id: &StripeObjectId,
        kind: &str,
        erp_id: &ErpDocumentId,
    ) -> Result<(), PostError> {
        let rec = XrefRecord {
            stripe_id: stripe_id.clone(),
            doc_kind: kind.to_owned(),
            erp: self.connector.erp().to_owned(),
            erp_id: erp_id.clone(),
            created_at_ms: self.clock.now_millis(),
        };
        if let Some(existing) = self.store.put_xref_if_absent(&rec).await? {
            if &existing.erp_id != erp_id {
                tracing::error!(alarm = "xref_conflict", stripe_id = %stripe_id, kind, "Cross-reference already points at another ERP document");
            }
        }
        Ok(())
    }

    /// Cross-reference → Stripe metadata (`erp_customer_no`) → e-mail match in the ERP → create.
    /// Resolution is claimed per customer, so two events for the same new customer processed at
    /// once link or create one ERP customer. Several ERP customers with the e-mail park the
    /// message until a person chooses one through `metadata.erp_customer_no`.
    async fn resolve_customer(&self, hint: &CustomerHint) -> Result<Resolved, PostError> {
        let cus = StripeObjectId::new(&hint.stripe_customer);
        if let Some(r) = self.known_customer(&cus).await? {
            return Ok(r);
        }
        let (erp_no, create) = match (&hint.erp_customer_no, &hint.create) {
            (no, Some(c)) => (no.clone(), c.clone()),
            (_, None) => {
                let stripe = self.stripe.as_ref().ok_or_else(|| {
                    PostError::Parked(format!(
                        "customer {cus} is not in the ERP yet and no Stripe key is configured to read it"
                    ))
                })?;
                let obj = stripe
                    .get(&format!("customers/{cus}"), &[])
                    .await
                    .map_err(stripe_error)?;
                let upsert = customer_upsert(&self.mapping, &obj)
                    .map_err(|e| PostError::Parked(e.to_string()))?;
                let no = obj
                    .get("metadata")
                    .and_then(|m| m.get("erp_customer_no"))
                    .and_then(|v| v.as_str())
                    .map(str::to_owned);
                (no, upsert)
            }
        };
        let key = IdempotencyKey::new(format!(
            "post#{}#{}#resolve",
            self.connector.erp(),
            create.reference
        ));
        match self.claim(&key).await? {
            Claim::Acquired => {}
            Claim::Existing(_) => {
                // Someone resolved or is resolving it: use theirs, or wait for it.
                if let Some(r) = self.known_customer(&cus).await? {
                    return Ok(r);
                }
                return Err(PostError::Deferred(format!(
                    "customer {cus} is being resolved by another worker"
                )));
            }
        }
        let result = match erp_no {
            // An ERP customer chosen by the user in Stripe: link it, do not create one.
            Some(no) => {
                self.record_xref(&cus, "customer_link", &ErpDocumentId::new(&no))
                    .await?;
                Ok((no.clone(), ErpDocumentId::new(&no), false))
            }
            None => match self.match_by_email(&cus, &hint.email, &create).await {
                // An ERP customer with the same e-mail: link it like a chosen one.
                Ok(Some(m)) => Ok((m.customer_id, m.erp_id, false)),
                Ok(None) => {
                    let code = create.customer_id.clone();
                    post_command(
                        &self.connector,
                        &ErpCommand::UpsertCustomer(create),
                        &self.policy,
                    )
                    .await
                    .map(|out| (code, out.erp_id, out.created))
                    .map_err(erp_error)
                }
                Err(e) => Err(e),
            },
        };
        match result {
            Ok((code, erp_id, created_now)) => {
                self.record_xref(&cus, DocKind::Customer.as_str(), &erp_id)
                    .await?;
                self.record_xref(&cus, "customer_code", &ErpDocumentId::new(&code))
                    .await?;
                // ERP customer code → Stripe customer, for changes made in the ERP.
                let reverse = crate::erp_sync::reverse_xref(
                    self.connector.erp(),
                    &code,
                    cus.as_str(),
                    self.clock.now_millis(),
                );
                if let Some(existing) = self.store.put_xref_if_absent(&reverse).await? {
                    if existing.erp_id.as_str() != cus.as_str() {
                        tracing::error!(alarm = "xref_conflict", customer = %cus, "ERP customer already linked to another Stripe customer");
                    }
                }
                self.store
                    .complete(&key, RecordStatus::Completed, Some(erp_id.to_string()))
                    .await?;
                let linked =
                    !created_now && self.store.get_xref(&cus, "customer_link").await?.is_some();
                Ok(Resolved {
                    code,
                    erp_id,
                    created_now,
                    linked,
                })
            }
            Err(err) => {
                match &err {
                    PostError::Parked(reason) => {
                        self.store
                            .complete(&key, RecordStatus::Parked, Some(reason.clone()))
                            .await?
                    }
                    _ => self.store.release(&key).await?,
                }
                Err(err)
            }
        }
    }

    /// The ERP customer whose e-mail is this customer's, linked (`customer_link`) so its master
    /// data is left to the ERP. Skipped when the customer has no e-mail, and when the customer
    /// this integration creates is already in the ERP (created before a crash, not yet
    /// cross-referenced): that one is ours, found by reference on create, and kept updated.
    async fn match_by_email(
        &self,
        cus: &StripeObjectId,
        hint_email: &Option<String>,
        create: &CustomerUpsert,
    ) -> Result<Option<ErpCustomerMatch>, PostError> {
        let Some(email) = hint_email.as_deref().or(create.email.as_deref()) else {
            return Ok(None);
        };
        if email.trim().is_empty() {
            return Ok(None);
        }
        let own = with_retry(&self.policy, |_| {
            self.connector.find_by_reference(&create.reference)
        })
        .await
        .map_err(erp_error)?;
        if own.is_some() {
            return Ok(None);
        }
        let Some(m) = with_retry(&self.policy, |_| {
            self.connector.find_customer_by_email(email)
        })
        .await
        .map_err(erp_error)?
        else {
            return Ok(None);
        };
        self.record_xref(cus, "customer_link", &m.erp_id).await?;
        tracing::info!(customer = %cus, erp_id = %m.erp_id, "Customer linked to the ERP customer with the same e-mail");
        Ok(Some(m))
    }

    /// A parent that was parked will not appear by waiting: park the dependent too, with the
    /// reason, so both are replayed together once it is fixed.
    async fn waiting_for(&self, dep: &ExternalRef) -> Result<PostError, PostError> {
        let dep_key = IdempotencyKey::new(format!("post#{}#{}", self.connector.erp(), dep));
        if let Some(rec) = self.store.get(&dep_key).await? {
            if rec.status == RecordStatus::Parked {
                return Ok(PostError::Parked(format!(
                    "depends on {dep}, which is parked: {}",
                    rec.result.unwrap_or_default()
                )));
            }
        }
        Ok(PostError::Deferred(format!("waiting for {dep}")))
    }

    async fn known_customer(&self, cus: &StripeObjectId) -> Result<Option<Resolved>, PostError> {
        if let (Some(code), Some(id)) = (
            self.store.get_xref(cus, "customer_code").await?,
            self.store.get_xref(cus, DocKind::Customer.as_str()).await?,
        ) {
            let linked = self.store.get_xref(cus, "customer_link").await?.is_some();
            return Ok(Some(Resolved {
                code: code.erp_id.into_inner(),
                erp_id: id.erp_id,
                created_now: false,
                linked,
            }));
        }
        Ok(None)
    }

    /// Write the ERP id into the Stripe object's metadata once (`ledgerbridge_*` keys, which
    /// the transform recognises so the resulting `*.updated` event is not booked again).
    async fn write_back(
        &self,
        msg: &ErpCommandV1,
        erp_id: &ErpDocumentId,
    ) -> Result<(), PostError> {
        let (Some(wb), Some(stripe)) = (&msg.write_back, &self.stripe) else {
            return Ok(());
        };
        let done_kind = format!("writeback#{}", wb.key);
        let obj = StripeObjectId::new(&wb.object_id);
        if self.store.get_xref(&obj, &done_kind).await?.is_some() {
            return Ok(());
        }
        match stripe
            .set_metadata(&wb.object_path, &wb.object_id, &wb.key, erp_id.as_str())
            .await
        {
            Ok(()) => self.record_xref(&obj, &done_kind, erp_id).await,
            Err(e) if e.is_retriable() => Err(PostError::Retryable(format!("write-back: {e}"))),
            Err(e) => {
                tracing::warn!(error = %e, object = %wb.object_id, "Write-back to Stripe rejected; the cross-reference holds the link");
                Ok(())
            }
        }
    }
}
