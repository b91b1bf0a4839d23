//! ERP → Stripe customer changes: an ERP-side event (`erp_customer_changed.v1`) is verified and
//! queued by [`handle_erp_event`], then [`ErpSyncStage`] finds the Stripe customer through the
//! reverse cross-reference the poster records and updates it once.
//!
//! Once: a duplicate ERP event (same customer, same `changed_at`) is claimed once, and the
//! Stripe call carries an `Idempotency-Key` derived from the same pair; an older `changed_at`
//! than the last applied one is skipped. No echo: the update sets
//! `metadata.ledgerbridge_erp_sync`, and the transform skips the `customer.updated` whose
//! `previous_attributes.metadata` names that key, so the change does not go back to the ERP.

use crate::convert::ERP_SYNC_KEY;
use crate::outcome::{park, StageError};
use crate::store::StateStore;
use ledgerbridge_core::ids::IdempotencyKey;
use ledgerbridge_core::keys::{ChangeKey, VersionKey};
use ledgerbridge_core::ports::RecordOutcome;
use ledgerbridge_core::ports::{Claim, ClaimRequest, EventQueue, RecordStatus};
use ledgerbridge_core::webhook::Verifier;
use ledgerbridge_core::Clock;
use ledgerbridge_stripe::api::StripeApi;
use ledgerbridge_stripe::objects::StripeCustomer;

/// The header the ERP side signs its events with: `t=<unix seconds>,v1=<hex HMAC-SHA256 of
/// "{t}.{body}">`, the same scheme as Stripe's.
pub const SIGNATURE_HEADER: &str = "X-Ledgerbridge-Signature";

pub use ledgerbridge_messages::erp_customer_changed::{
    validate, Address, ErpCustomerChangedV1, ErpMessage,
};

/// The Stripe form fields of the update: the changed fields and the sync marker.
pub fn stripe_fields(c: &ErpCustomerChangedV1) -> Vec<(String, String)> {
    let mut f = Vec::new();
    if let Some(n) = &c.name {
        f.push(("name".to_owned(), n.clone()));
    }
    if let Some(e) = &c.email {
        f.push(("email".to_owned(), e.clone()));
    }
    if let Some(a) = &c.address {
        for (k, v) in [
            ("line1", &a.line1),
            ("line2", &a.line2),
            ("city", &a.city),
            ("state", &a.state),
            ("postal_code", &a.postal_code),
            ("country", &a.country),
        ] {
            if let Some(v) = v {
                f.push((format!("address[{k}]"), v.clone()));
            }
        }
    }
    f.push((
        format!("metadata[{ERP_SYNC_KEY}]"),
        c.changed_at.to_string(),
    ));
    f
}

/// The fields of [`stripe_fields`] whose value differs from the Stripe customer `current`
/// (e-mail compared case-insensitively, text trimmed), plus the sync marker. Only the marker
/// left means Stripe already shows the change.
pub fn changed_fields(c: &ErpCustomerChangedV1, current: &StripeCustomer) -> Vec<(String, String)> {
    let address = current.address.clone().unwrap_or_default();
    let now = |field: &str| -> String {
        let value = match field {
            "name" => &current.name,
            "email" => &current.email,
            "address[line1]" => &address.line1,
            "address[line2]" => &address.line2,
            "address[city]" => &address.city,
            "address[state]" => &address.state,
            "address[postal_code]" => &address.postal_code,
            "address[country]" => &address.country,
            _ => &None,
        };
        value.as_deref().unwrap_or("").trim().to_owned()
    };
    stripe_fields(c)
        .into_iter()
        .filter(|(k, v)| {
            if k.starts_with("metadata[") {
                return true;
            }
            let stored = now(k);
            if k == "email" {
                !stored.eq_ignore_ascii_case(v.trim())
            } else {
                stored != v.trim()
            }
        })
        .collect()
}

/// The Stripe `Idempotency-Key` of one ERP change: the same change sent twice is one update.
pub fn idempotency_key(c: &ErpCustomerChangedV1, stripe_customer: &str) -> String {
    format!(
        "ledgerbridge-erp-sync-{}-{}-{}-{}-{}",
        c.erp,
        stripe_customer,
        c.customer_code,
        c.changed_at,
        change_digest(c)
    )
}

/// 16 hex digits of SHA-256 over the changed values: two different changes made within the
/// same second (ERP change times are seconds at best) are two changes, the same one twice is
/// one.
pub fn change_digest(c: &ErpCustomerChangedV1) -> String {
    use sha2::{Digest, Sha256};
    let text = serde_json::json!([c.name, c.email, c.address]).to_string();
    let h = hex::encode(Sha256::digest(text.as_bytes()));
    h.get(..16).unwrap_or(&h).to_owned()
}

/// What the inbound endpoint answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

fn answer(status: u16, body: serde_json::Value) -> Response {
    Response {
        status,
        body: body.to_string(),
    }
}

/// The inbound endpoint for ERP-side events: verify the signature on the exact bytes, validate
/// the message, queue it. Bad signature or invalid message → `400`, nothing queued.
pub async fn handle_erp_event<Q: EventQueue>(
    verifier: &Verifier,
    queue: &Q,
    signature: Option<&str>,
    body: &[u8],
    now_secs: i64,
) -> Response {
    if let Err(e) = verifier.verify(signature, body, now_secs) {
        tracing::warn!(reason = e.reason(), "ERP event rejected");
        return answer(400, serde_json::json!({"error": e.reason()}));
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return answer(400, serde_json::json!({"error": "body is not UTF-8"}));
    };
    let msg = match ErpMessage::decode(text) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(reason = %e, "ERP event rejected");
            return answer(400, serde_json::json!({"error": e}));
        }
    };
    let encoded = match msg.encode() {
        Ok(t) => t,
        Err(e) => return answer(500, serde_json::json!({"error": e.to_string()})),
    };
    match queue.send(encoded, Some(&msg.group())).await {
        Ok(_) => answer(200, serde_json::json!({"received": true})),
        Err(e) => {
            tracing::error!(error = %e, "ERP event not queued");
            answer(503, serde_json::json!({"error": "queue unavailable"}))
        }
    }
}

/// The stage that applies ERP customer changes to Stripe.
pub struct ErpSyncStage<S, A, K, P> {
    pub store: S,
    pub stripe: A,
    pub clock: K,
    pub parked: P,
    /// How long a claim may stay in progress before another worker may take it over.
    pub lease_ms: i64,
    /// How long the claim of one ERP change counts.
    pub intent_days: i64,
}

/// What the stage did with one message (for tests and the local runner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncReport {
    Updated {
        stripe_customer: String,
    },
    /// Already applied (a duplicate ERP event).
    Duplicate,
    /// Older than a change already applied.
    Stale,
    /// Stripe already shows these values: nothing was sent.
    Unchanged {
        stripe_customer: String,
    },
    Outcome(RecordOutcome),
}

impl<S: StateStore, A: StripeApi, K: Clock, P: EventQueue> ErpSyncStage<S, A, K, P> {
    pub async fn process(&self, body: &str) -> RecordOutcome {
        match self.process_detailed(body).await {
            SyncReport::Outcome(o) => o,
            _ => RecordOutcome::Done,
        }
    }

    pub async fn process_detailed(&self, body: &str) -> SyncReport {
        let c = match ErpMessage::decode(body) {
            Ok(ErpMessage::CustomerChangedV1(c)) => c,
            Err(e) => return SyncReport::Outcome(park(&self.parked, "erp-sync", e, body).await),
        };
        match self.apply(&c).await {
            Ok(r) => r,
            Err(e) => SyncReport::Outcome(e.settle(&self.parked, "erp-sync", body).await),
        }
    }

    async fn apply(&self, c: &ErpCustomerChangedV1) -> Result<SyncReport, StageError> {
        let link = self
            .store
            .get_reverse_link(&c.erp, &c.customer_code)
            .await
            .map_err(store)?;
        let Some(link) = link else {
            return Err(StageError::park(format!(
                "{} customer {} has no Stripe customer cross-reference",
                c.erp, c.customer_code
            )));
        };
        let cus = link.stripe_customer.as_str().to_owned();
        let vkey = VersionKey::erp_customer(&c.erp, &c.customer_code);
        if !self
            .store
            .advance_version(vkey.as_str(), c.changed_at)
            .await
            .map_err(store)?
        {
            tracing::info!(erp = %c.erp, changed_at = c.changed_at, "Older ERP customer change skipped");
            return Ok(SyncReport::Stale);
        }
        let key: IdempotencyKey =
            ChangeKey::erp_customer(&c.erp, &c.customer_code, c.changed_at, &change_digest(c))
                .into();
        let now_ms = self.clock.now_millis();
        let claim = self
            .store
            .claim(&ClaimRequest {
                key: key.clone(),
                payload_hash: String::new(),
                now_ms,
                lease_ms: self.lease_ms,
                expiration: now_ms / 1000 + self.intent_days * 86_400,
            })
            .await
            .map_err(store)?;
        if let Claim::Existing(rec) = claim {
            return match rec.status {
                RecordStatus::InProgress => Err(StageError::pending(
                    "ERP customer change is being applied by another worker",
                )),
                RecordStatus::Parked => Err(StageError::park(rec.result.unwrap_or_default())),
                RecordStatus::Completed | RecordStatus::Ignored => Ok(SyncReport::Duplicate),
            };
        }
        // Only what differs from the Stripe customer is sent: a change that Stripe already
        // shows (one that came from Stripe, or an ERP-side touch of other fields) sends nothing.
        let current = match self.stripe.retrieve_customer(&cus).await {
            Ok(v) => v,
            Err(e) if e.is_retriable() => {
                if let Err(e) = self.store.release(&key).await {
                    tracing::warn!(error = %e, "Claim not released; it lapses with its lease");
                }
                return Err(StageError::retry(e));
            }
            Err(e) => {
                let reason = format!("Stripe customer {cus} cannot be read: {e}");
                self.store
                    .complete(&key, RecordStatus::Parked, Some(reason.clone()))
                    .await
                    .map_err(store)?;
                return Err(StageError::park_with(reason, e));
            }
        };
        if current.deleted {
            let reason = format!("Stripe customer {cus} is deleted");
            self.store
                .complete(&key, RecordStatus::Parked, Some(reason.clone()))
                .await
                .map_err(store)?;
            return Err(StageError::park(reason));
        }
        let fields = changed_fields(c, &current);
        if fields.len() <= 1 {
            self.store
                .complete(&key, RecordStatus::Completed, Some(cus.clone()))
                .await
                .map_err(store)?;
            tracing::info!(customer = %cus, erp = %c.erp, "ERP customer change already in Stripe");
            return Ok(SyncReport::Unchanged {
                stripe_customer: cus,
            });
        }
        match self
            .stripe
            .update_customer(
                &cus,
                &fields,
                &IdempotencyKey::new(idempotency_key(c, &cus)),
            )
            .await
        {
            Ok(()) => {
                self.store
                    .complete(&key, RecordStatus::Completed, Some(cus.clone()))
                    .await
                    .map_err(store)?;
                tracing::info!(customer = %cus, erp = %c.erp, "ERP customer change applied to Stripe");
                Ok(SyncReport::Updated {
                    stripe_customer: cus,
                })
            }
            Err(e) if e.is_retriable() => {
                if let Err(e) = self.store.release(&key).await {
                    tracing::warn!(error = %e, "Claim not released; it lapses with its lease");
                }
                Err(StageError::retry(e))
            }
            Err(e) => {
                let reason = format!("Stripe rejected the customer update: {e}");
                self.store
                    .complete(&key, RecordStatus::Parked, Some(reason.clone()))
                    .await
                    .map_err(store)?;
                Err(StageError::park_with(reason, e))
            }
        }
    }
}

/// A store failure of the sync: retried when transient, else parked (an unreadable record).
fn store(e: ledgerbridge_core::ports::StoreError) -> StageError {
    if e.is_retriable() {
        StageError::retry(e)
    } else {
        StageError::park_with(e.to_string(), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change() -> ErpCustomerChangedV1 {
        ErpCustomerChangedV1 {
            erp: "epicor".into(),
            customer_code: "C042".into(),
            name: Some("Northwind Traders".into()),
            email: None,
            address: Some(Address {
                city: Some("Leeds".into()),
                ..Address::default()
            }),
            changed_at: 1_786_000_100,
        }
    }

    #[test]
    fn fields_carry_the_change_and_the_sync_marker() {
        let f = stripe_fields(&change());
        assert!(f.contains(&("name".into(), "Northwind Traders".into())));
        assert!(f.contains(&("address[city]".into(), "Leeds".into())));
        assert!(f.contains(&(
            "metadata[ledgerbridge_erp_sync]".into(),
            "1786000100".into()
        )));
        assert!(!f.iter().any(|(k, _)| k == "email"));
    }

    #[test]
    fn invalid_changes_are_rejected() {
        assert!(validate(&change()).is_ok());
        let mut c = change();
        c.erp = "sap".into();
        assert!(validate(&c).is_err());
        let mut c = change();
        c.customer_code = " C042".into();
        assert!(validate(&c).is_err());
        let mut c = change();
        c.changed_at = 0;
        assert!(validate(&c).is_err());
        let mut c = change();
        c.name = None;
        c.address = None;
        assert!(validate(&c).is_err());
        let mut c = change();
        c.email = Some("nope".into());
        assert!(validate(&c).is_err());
        assert!(ErpMessage::decode("{\"type\":\"erp_customer_changed.v1\"}").is_err());
        assert!(ErpMessage::decode("not json").is_err());
    }

    #[test]
    fn same_change_same_key() {
        let a = idempotency_key(&change(), "cus_1");
        assert_eq!(a, idempotency_key(&change(), "cus_1"));
        let mut later = change();
        later.changed_at += 1;
        assert_ne!(a, idempotency_key(&later, "cus_1"));
        let mut other = change();
        other.name = Some("Another Name".into());
        assert_ne!(a, idempotency_key(&other, "cus_1"));
        assert!(a.len() <= 255);
    }

    #[test]
    fn an_erp_address_maps_field_by_field_and_empty_is_none() {
        let erp = ledgerbridge_erp::Address {
            city: Some("Leeds".into()),
            country: Some("GB".into()),
            ..ledgerbridge_erp::Address::default()
        };
        assert_eq!(
            Address::from_erp(&erp),
            Some(Address {
                city: Some("Leeds".into()),
                country: Some("GB".into()),
                ..Address::default()
            })
        );
        assert_eq!(
            Address::from_erp(&ledgerbridge_erp::Address::default()),
            None
        );
    }
}
