//! Subscriptions → the state the ERP customer should show (status, plan → item, quantity,
//! current period, selected metadata), with version ordering so an older update never wins.
//!
//! [`subscription_event`] turns the state into a `customer_fields.v1` message: the values the
//! mapping's `[subscriptions] fields` asks for, written by erp-post to the ERP customer's
//! user-defined fields, with `version = event.created` so an older update arriving late does
//! not overwrite a newer one ([`accept_if_newer`], the same [`VersionStore`] pattern as
//! customer upserts).
//!
//! Since API version 2025-03-31 the current period is on each subscription item
//! (`items.data[].current_period_start/end`), not on the subscription.

use crate::convert::{date_of, meta, object_of, text};
use crate::mapping::Mapping;
use crate::outcome::{permanent, Outcome, StageError};
use ledgerbridge_core::event::Event;
use ledgerbridge_core::keys::VersionKey;
use ledgerbridge_core::ports::{StoreError, VersionStore};
use ledgerbridge_erp::ErpDate;
use ledgerbridge_messages::{CustomerFieldsV1, CustomerHint, Source};
use ledgerbridge_stripe::objects::StripeSubscription;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionItemState {
    /// ERP item for the price / product (`[products]`), if mapped.
    pub item: Option<String>,
    pub price: Option<String>,
    pub product: Option<String>,
    pub quantity: i64,
    pub current_period_start: Option<ErpDate>,
    pub current_period_end: Option<ErpDate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionState {
    pub subscription: String,
    pub customer: String,
    /// Stripe status (`active`, `past_due`, `canceled`, …).
    pub stripe_status: String,
    /// The status for the ERP (`[subscriptions.statuses]`, else the Stripe status).
    pub status: String,
    pub cancel_at_period_end: bool,
    pub items: Vec<SubscriptionItemState>,
    /// `[subscriptions] metadata_keys` found on the subscription.
    pub metadata: BTreeMap<String, String>,
    /// The event's `created`: newer state wins.
    pub version: i64,
}

impl SubscriptionState {
    /// Total quantity over the items (seats).
    pub fn quantity(&self) -> i64 {
        self.items.iter().map(|i| i.quantity).sum()
    }

    /// The key under which the poster keeps this subscription's last applied version.
    pub fn version_key(&self) -> VersionKey {
        VersionKey::subscription(&self.subscription)
    }
}

/// The state carried by a `customer.subscription.*` event.
pub fn subscription_state(
    mapping: &Mapping,
    event: &Event,
) -> Result<SubscriptionState, StageError> {
    let sub: StripeSubscription = object_of(&event.data.object, "subscription")?;
    let id = Some(sub.id.as_str())
        .filter(|id| !id.is_empty())
        .ok_or_else(|| permanent("subscription without id"))?;
    let customer = sub
        .customer_id()
        .ok_or_else(|| permanent("subscription without customer"))?;
    let stripe_status = text(&sub.status)
        .ok_or_else(|| permanent("subscription without status"))?
        .to_owned();
    let cfg = mapping.subscriptions.clone().unwrap_or_default();
    let status = cfg
        .statuses
        .get(&stripe_status)
        .cloned()
        .unwrap_or_else(|| stripe_status.clone());
    let mut items = Vec::new();
    for it in &sub.items.data {
        let price = it.price_id().map(str::to_owned);
        let product = it.product_id().map(str::to_owned);
        let item = price
            .as_deref()
            .and_then(|p| mapping.products.get(p))
            .or_else(|| product.as_deref().and_then(|p| mapping.products.get(p)))
            .cloned();
        let quantity = it.quantity.unwrap_or(1);
        if quantity < 0 {
            return Err(permanent("subscription item with a negative quantity"));
        }
        items.push(SubscriptionItemState {
            item,
            price,
            product,
            quantity,
            current_period_start: it
                .current_period_start
                .map(|t| date_of(&mapping.defaults.time_zone, t))
                .transpose()?,
            current_period_end: it
                .current_period_end
                .map(|t| date_of(&mapping.defaults.time_zone, t))
                .transpose()?,
        });
    }
    let metadata = cfg
        .metadata_keys
        .iter()
        .filter_map(|k| meta(&sub.metadata, k).map(|v| (k.clone(), v.to_owned())))
        .collect();
    Ok(SubscriptionState {
        subscription: id.to_owned(),
        customer: customer.to_owned(),
        stripe_status,
        status,
        cancel_at_period_end: sub.cancel_at_period_end,
        items,
        metadata,
        version: event.created,
    })
}

/// Record `state`'s version; `false` when a newer state of the subscription was already
/// accepted (the older update must not be applied).
pub async fn accept_if_newer<V: VersionStore>(
    store: &V,
    state: &SubscriptionState,
) -> Result<bool, StoreError> {
    store
        .advance_version(state.version_key().as_str(), state.version)
        .await
}

impl SubscriptionState {
    /// The value of one logical field (`ledgerbridge_erp::fields`), `None` when the state has
    /// none (no period on the items, an absent metadata key).
    pub fn value(&self, field: &str) -> Option<String> {
        use ledgerbridge_erp::fields::*;
        match field {
            SUBSCRIPTION_ID => Some(self.subscription.clone()),
            SUBSCRIPTION_STATUS => Some(self.status.clone()),
            SUBSCRIPTION_PLAN => {
                let plans: Vec<&str> = self
                    .items
                    .iter()
                    .filter_map(|i| {
                        i.item
                            .as_deref()
                            .or(i.price.as_deref())
                            .or(i.product.as_deref())
                    })
                    .collect();
                (!plans.is_empty()).then(|| plans.join(","))
            }
            SUBSCRIPTION_QUANTITY => Some(self.quantity().to_string()),
            SUBSCRIPTION_PERIOD_START => self
                .items
                .iter()
                .filter_map(|i| i.current_period_start.as_ref())
                .min()
                .map(|d| d.as_str().to_owned()),
            SUBSCRIPTION_PERIOD_END => self
                .items
                .iter()
                .filter_map(|i| i.current_period_end.as_ref())
                .max()
                .map(|d| d.as_str().to_owned()),
            SUBSCRIPTION_CANCEL_AT_PERIOD_END => Some(self.cancel_at_period_end.to_string()),
            other => other
                .strip_prefix("metadata.")
                .and_then(|k| self.metadata.get(k).cloned()),
        }
    }
}

/// `customer.subscription.created|updated|deleted` → the configured values for the ERP
/// customer's user-defined fields, versioned by the event's `created` (the poster applies
/// [`accept_if_newer`] with the key `subscription#{erp}#{sub}`).
pub fn subscription_event(mapping: &Mapping, event: &Event) -> Result<Outcome, StageError> {
    let Some(cfg) = &mapping.subscriptions else {
        return Ok(Outcome::Skipped(
            "no [subscriptions] section in the mapping: subscriptions are not evaluated".into(),
        ));
    };
    if cfg.fields.is_empty() {
        return Ok(Outcome::Skipped(
            "[subscriptions] fields is empty: nothing is written to the ERP".into(),
        ));
    }
    let st = subscription_state(mapping, event)?;
    let values: BTreeMap<String, String> = cfg
        .fields
        .iter()
        .filter_map(|f| st.value(f).map(|v| (f.clone(), v)))
        .collect();
    Ok(Outcome::CustomerFields(Box::new(CustomerFieldsV1 {
        customer: CustomerHint {
            stripe_customer: st.customer.clone(),
            erp_customer_no: None,
            email: None,
            create: None,
        },
        object_id: st.subscription.clone(),
        values,
        version: st.version,
        source: Source {
            event_id: event.id.to_string(),
            event_type: event.event_type.clone(),
            created: event.created,
        },
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::EXAMPLE;
    use ledgerbridge_adapters::embedded::SqliteStore;

    const CREATED: &str =
        include_str!("../../../../tests/fixtures/stripe/events/customer.subscription.created.json");
    const UPDATED: &str =
        include_str!("../../../../tests/fixtures/stripe/events/customer.subscription.updated.json");
    const DELETED: &str =
        include_str!("../../../../tests/fixtures/stripe/events/customer.subscription.deleted.json");

    fn state(text: &str) -> SubscriptionState {
        let mut m = Mapping::from_toml(EXAMPLE).unwrap();
        m.products
            .insert("prod_S7QVysxe43zvFE".into(), "SEAT-SUB".into());
        subscription_state(&m, &serde_json::from_str(text).unwrap()).unwrap()
    }

    #[test]
    fn lifecycle_states_from_the_sample_events() {
        let c = state(CREATED);
        assert_eq!(c.subscription, "sub_15gzAzNq7LbKx2Rz4teNGDDf");
        assert_eq!(c.customer, "cus_NHQM1cjewvnnbv");
        assert_eq!(c.quantity(), 3);
        assert_eq!(c.items[0].item.as_deref(), Some("SEAT-SUB"));
        assert_eq!(
            c.items[0]
                .current_period_start
                .as_ref()
                .map(ErpDate::as_str),
            Some("2026-08-04")
        );
        let u = state(UPDATED);
        assert_eq!(u.quantity(), 5);
        assert_eq!(u.status, "ACTIVE");
        let d = state(DELETED);
        assert_eq!(d.stripe_status, "canceled");
        assert_eq!(d.status, "CANCELLED");
        assert!(c.version < u.version && u.version < d.version);
    }

    #[tokio::test]
    async fn an_older_update_arriving_late_loses() {
        let store = SqliteStore::in_memory().unwrap();
        let created = state(CREATED);
        let updated = state(UPDATED);
        let deleted = state(DELETED);
        // delivered out of order: deleted, then the update, then the creation
        assert!(accept_if_newer(&store, &deleted).await.unwrap());
        assert!(!accept_if_newer(&store, &updated).await.unwrap());
        assert!(!accept_if_newer(&store, &created).await.unwrap());
        // a redelivery of the newest is still accepted
        assert!(accept_if_newer(&store, &deleted).await.unwrap());
        // in order, each one is accepted
        let store = SqliteStore::in_memory().unwrap();
        for s in [&created, &updated, &deleted] {
            assert!(accept_if_newer(&store, s).await.unwrap());
        }
    }

    #[test]
    fn the_event_becomes_versioned_customer_field_values() {
        let mut m = Mapping::from_toml(EXAMPLE).unwrap();
        m.products
            .insert("prod_S7QVysxe43zvFE".into(), "SEAT-SUB".into());
        let out = subscription_event(&m, &serde_json::from_str(UPDATED).unwrap()).unwrap();
        let Outcome::CustomerFields(f) = out else {
            panic!("{out:?}")
        };
        assert_eq!(f.customer.stripe_customer, "cus_NHQM1cjewvnnbv");
        assert_eq!(f.object_id, "sub_15gzAzNq7LbKx2Rz4teNGDDf");
        let v = |k: &str| f.values.get(k).map(String::as_str);
        assert_eq!(v("subscription_status"), Some("ACTIVE"));
        assert_eq!(v("subscription_quantity"), Some("5"));
        assert_eq!(v("subscription_plan"), Some("SEAT-SUB"));
        assert!(v("subscription_period_end").is_some());
        assert_eq!(f.version, state(UPDATED).version);
        // only what `fields` asks for
        let mut only_status = m.clone();
        if let Some(s) = only_status.subscriptions.as_mut() {
            s.fields = vec!["subscription_status".into()];
        }
        let Outcome::CustomerFields(f) =
            subscription_event(&only_status, &serde_json::from_str(DELETED).unwrap()).unwrap()
        else {
            panic!()
        };
        assert_eq!(f.values.len(), 1);
        assert_eq!(f.values["subscription_status"], "CANCELLED");
        // no fields → nothing to write
        if let Some(s) = only_status.subscriptions.as_mut() {
            s.fields.clear();
        }
        assert!(matches!(
            subscription_event(&only_status, &serde_json::from_str(CREATED).unwrap()).unwrap(),
            Outcome::Skipped(_)
        ));
    }
}
