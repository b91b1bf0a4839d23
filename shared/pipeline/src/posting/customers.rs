//! Customer resolution at posting time: cross-reference, the ERP customer chosen in Stripe,
//! an e-mail match in the ERP, or a new ERP customer; and the reverse link for the ERP → Stripe
//! sync.

use super::Poster;
use super::{erp_error, stripe_error};
use crate::customer::customer_upsert;
use crate::outcome::StageError;
use crate::store::StateStore;
use ledgerbridge_core::ids::{ErpDocumentId, StripeObjectId};
use ledgerbridge_core::keys::IntentKey;
use ledgerbridge_core::ports::{Claim, RecordStatus, ReverseLink};
use ledgerbridge_core::Clock;
use ledgerbridge_erp::{
    post_command, with_retry, CustomerUpsert, DocKind, ErpCommand, ErpConnector, ErpCustomerMatch,
};
use ledgerbridge_messages::CustomerHint;
use ledgerbridge_stripe::api::StripeApi;

pub(super) struct Resolved {
    pub(super) code: String,
    pub(super) erp_id: ErpDocumentId,
    pub(super) created_now: bool,
    /// Linked by the user through `metadata.erp_customer_no`, or by e-mail: the ERP's own
    /// record, which ledgerbridge does not overwrite.
    pub(super) linked: bool,
}

impl<C, S, A, K> Poster<C, S, A, K>
where
    C: ErpConnector,
    S: StateStore,
    A: StripeApi,
    K: Clock,
{
    /// Cross-reference → Stripe metadata (`erp_customer_no`) → e-mail match in the ERP → create.
    /// Resolution is claimed per customer, so two events for the same new customer processed at
    /// once link or create one ERP customer. Several ERP customers with the e-mail park the
    /// message until a person chooses one through `metadata.erp_customer_no`.
    pub(super) async fn resolve_customer(
        &self,
        hint: &CustomerHint,
    ) -> Result<Resolved, StageError> {
        let cus = StripeObjectId::new(&hint.stripe_customer);
        if let Some(r) = self.known_customer(&cus).await? {
            return Ok(r);
        }
        let (erp_no, create) = match (&hint.erp_customer_no, &hint.create) {
            (no, Some(c)) => (no.clone(), c.clone()),
            (_, None) => {
                let stripe = self.stripe.as_ref().ok_or_else(|| {
                    StageError::park(format!(
                        "customer {cus} is not in the ERP yet and no Stripe key is configured to read it"
                    ))
                })?;
                let obj = stripe
                    .retrieve_customer(cus.as_str())
                    .await
                    .map_err(stripe_error)?;
                let upsert = customer_upsert(&self.mapping, &obj)?;
                let no = obj.metadata.get("erp_customer_no").cloned();
                (no, upsert)
            }
        };
        let key = IntentKey::resolve(self.connector.erp(), &create.reference).into();
        match self.claim(&key).await? {
            Claim::Acquired => {}
            Claim::Existing(_) => {
                // Someone resolved or is resolving it: use theirs, or wait for it.
                if let Some(r) = self.known_customer(&cus).await? {
                    return Ok(r);
                }
                return Err(StageError::pending(format!(
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
                let reverse = ReverseLink {
                    erp: self.connector.erp().to_owned(),
                    customer_code: code.clone(),
                    stripe_customer: cus.clone(),
                    created_at_ms: self.clock.now_millis(),
                };
                if let Some(existing) = self.store.put_reverse_link_if_absent(&reverse).await? {
                    if existing.stripe_customer != cus {
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
                    StageError::Park { reason, .. } => {
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
    pub(super) async fn match_by_email(
        &self,
        cus: &StripeObjectId,
        hint_email: &Option<String>,
        create: &CustomerUpsert,
    ) -> Result<Option<ErpCustomerMatch>, StageError> {
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

    async fn known_customer(&self, cus: &StripeObjectId) -> Result<Option<Resolved>, StageError> {
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
}
