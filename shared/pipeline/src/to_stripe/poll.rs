//! The scheduled ERP → Stripe sync.

use super::sync::{validate, Address, ErpCustomerChangedV1, ErpMessage};
use crate::store::StateStore;
use ledgerbridge_core::ids::StripeObjectId;
use ledgerbridge_core::keys::CursorKey;
use ledgerbridge_core::ports::{EventQueue, ReverseLink};

/// The scheduled ERP → Stripe sync: lists the ERP customers changed since the last run and
/// queues an `erp_customer_changed.v1` for each one linked to a Stripe customer (through the
/// reverse cross-reference, or the reference ledgerbridge wrote when it created the customer).
/// The cursor is the newest change seen, kept in the state store; each run re-reads
/// `overlap_secs` before it, and the repeats are absorbed by the sync stage's claim per change.
pub struct ErpPoll<C, S, Q> {
    pub connector: C,
    pub store: S,
    /// The ERP events queue (the same one the inbound endpoint feeds).
    pub queue: Q,
    pub overlap_secs: i64,
    /// How far back the first run looks.
    pub first_run_secs: i64,
    /// Most customers read per run.
    pub limit: usize,
}

/// What one poll did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollReport {
    /// Changed customers the ERP listed.
    pub listed: usize,
    /// Changes queued for Stripe.
    pub queued: usize,
    /// ERP customers without a Stripe customer (left alone).
    pub not_linked: usize,
    /// Reverse cross-references recovered from a customer's reference field.
    pub relinked: usize,
    /// Changes that cannot be sent (invalid values); logged, not queued.
    pub invalid: usize,
    /// The cursor after the run (Unix seconds).
    pub cursor: i64,
}

/// The Stripe customer of a reference `LB-cus_…-CU` (the unshortened form).
pub fn stripe_customer_of_reference(reference: &str) -> Option<&str> {
    let id = reference.strip_prefix("LB-")?.strip_suffix("-CU")?;
    (id.starts_with("cus_") && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .then_some(id)
}

impl<C: ledgerbridge_erp::ErpConnector, S: StateStore, Q: EventQueue> ErpPoll<C, S, Q> {
    pub fn cursor_key(&self) -> CursorKey {
        CursorKey::erp_poll(self.connector.erp())
    }

    pub async fn poll(&self, now_secs: i64) -> Result<PollReport, String> {
        let erp = self.connector.erp();
        let key = self.cursor_key();
        let cursor = self
            .store
            .current_version(key.as_str())
            .await
            .map_err(|e| e.to_string())?
            .unwrap_or(now_secs - self.first_run_secs);
        let records = self
            .connector
            .customers_changed_since(cursor - self.overlap_secs, self.limit)
            .await
            .map_err(|e| format!("{erp}: {e}"))?;
        let mut report = PollReport {
            cursor,
            ..PollReport::default()
        };
        for r in records {
            report.listed += 1;
            report.cursor = report.cursor.max(r.changed_at);
            let linked = self
                .store
                .get_reverse_link(erp, &r.customer_id)
                .await
                .map_err(|e| e.to_string())?;
            if linked.is_none() {
                match r
                    .reference
                    .as_deref()
                    .and_then(stripe_customer_of_reference)
                {
                    Some(cus) => {
                        let link = ReverseLink {
                            erp: erp.to_owned(),
                            customer_code: r.customer_id.clone(),
                            stripe_customer: StripeObjectId::new(cus),
                            created_at_ms: now_secs * 1000,
                        };
                        self.store
                            .put_reverse_link_if_absent(&link)
                            .await
                            .map_err(|e| e.to_string())?;
                        report.relinked += 1;
                    }
                    None => {
                        report.not_linked += 1;
                        continue;
                    }
                }
            }
            let change = ErpCustomerChangedV1 {
                erp: erp.to_owned(),
                customer_code: r.customer_id.clone(),
                name: r.name.clone(),
                email: r.email.clone(),
                address: Address::from_erp(&r.address),
                changed_at: r.changed_at,
            };
            if let Err(e) = validate(&change) {
                tracing::warn!(erp, reason = %e, "ERP customer change not sent to Stripe");
                report.invalid += 1;
                continue;
            }
            let msg = ErpMessage::CustomerChangedV1(change);
            let text = msg.encode().map_err(|e| e.to_string())?;
            self.queue
                .send(text, Some(&msg.group()))
                .await
                .map_err(|e| e.to_string())?;
            report.queued += 1;
        }
        // Advanced only after everything listed is queued: a failed run is read again.
        self.store
            .advance_version(key.as_str(), report.cursor)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(
            erp,
            listed = report.listed,
            queued = report.queued,
            not_linked = report.not_linked,
            relinked = report.relinked,
            "ERP customer poll"
        );
        Ok(report)
    }
}
