//! `subscription`. Since API version 2025-03-31 the current period is on each item
//! (`items.data[].current_period_start/end`); older versions have it on the subscription.
//! Items carry `price` (and the legacy `plan`, same id and product).

use super::{
    expandable_id, null_default, stripe_object, Expandable, Metadata, StripeCustomer,
    StripeInvoice, StripeList, StripePrice,
};
use ledgerbridge_core::currency::Currency;
use serde::{Deserialize, Serialize};

/// `subscription`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StripeSubscription {
    pub id: String,
    #[serde(default)]
    pub customer: Option<Expandable<StripeCustomer>>,
    /// `incomplete`, `trialing`, `active`, `past_due`, `canceled`, `unpaid`, `paused`, ….
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub currency: Option<Currency>,
    #[serde(default, deserialize_with = "null_default")]
    pub cancel_at_period_end: bool,
    #[serde(default)]
    pub cancel_at: Option<i64>,
    #[serde(default)]
    pub canceled_at: Option<i64>,
    #[serde(default)]
    pub ended_at: Option<i64>,
    #[serde(default)]
    pub start_date: Option<i64>,
    /// Older versions only: use the items' periods.
    #[serde(default)]
    pub current_period_start: Option<i64>,
    /// Older versions only: use the items' periods.
    #[serde(default)]
    pub current_period_end: Option<i64>,
    #[serde(default, deserialize_with = "null_default")]
    pub items: StripeList<StripeSubscriptionItem>,
    #[serde(default)]
    pub latest_invoice: Option<Expandable<StripeInvoice>>,
    #[serde(default)]
    pub created: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub metadata: Metadata,
}

/// `subscription_item`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StripeSubscriptionItem {
    pub id: String,
    #[serde(default)]
    pub price: Option<StripePrice>,
    /// The legacy view of the price.
    #[serde(default)]
    pub plan: Option<StripePrice>,
    #[serde(default)]
    pub quantity: Option<i64>,
    /// Current versions.
    #[serde(default)]
    pub current_period_start: Option<i64>,
    /// Current versions.
    #[serde(default)]
    pub current_period_end: Option<i64>,
    #[serde(default)]
    pub created: Option<i64>,
    #[serde(default, deserialize_with = "null_default")]
    pub metadata: Metadata,
}

stripe_object!(
    StripeSubscription => "subscription",
    StripeSubscriptionItem => "subscription_item",
);

impl StripeSubscription {
    pub fn customer_id(&self) -> Option<&str> {
        expandable_id(&self.customer)
    }
    pub fn latest_invoice_id(&self) -> Option<&str> {
        expandable_id(&self.latest_invoice)
    }
}

impl StripeSubscriptionItem {
    /// `price`, else the legacy `plan`.
    pub fn price_or_plan(&self) -> Option<&StripePrice> {
        self.price.as_ref().or(self.plan.as_ref())
    }
    pub fn price_id(&self) -> Option<&str> {
        self.price_or_plan()
            .map(|p| p.id.as_str())
            .filter(|id| !id.is_empty())
    }
    pub fn product_id(&self) -> Option<&str> {
        self.price_or_plan().and_then(StripePrice::product_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::fixtures::*;

    #[test]
    fn subscription_lifecycle_events() {
        let created: StripeSubscription =
            event_object(repo_fixture!("events/customer.subscription.created.json"));
        let updated: StripeSubscription =
            event_object(repo_fixture!("events/customer.subscription.updated.json"));
        let deleted: StripeSubscription =
            event_object(repo_fixture!("events/customer.subscription.deleted.json"));
        for s in [&created, &updated, &deleted] {
            assert_eq!(s.id, "sub_15gzAzNq7LbKx2Rz4teNGDDf");
            assert_eq!(s.customer_id(), Some("cus_NHQM1cjewvnnbv"));
            assert_eq!(
                s.current_period_start, None,
                "on the items since 2025-03-31"
            );
        }
        assert_eq!(updated.status.as_deref(), Some("active"));
        assert!(!updated.cancel_at_period_end);
        assert_eq!(updated.metadata["erp_contract"], "CTR-2026-0815");
        assert_eq!(deleted.status.as_deref(), Some("canceled"));
        let item = &updated.items.data[0];
        assert_eq!(item.id, "si_5QSOZcQo5X7XoC");
        assert_eq!(item.price_id(), Some("price_16Sl3KNq7LbKx2Rz4kLoiN25"));
        assert_eq!(item.product_id(), Some("prod_S7QVysxe43zvFE"));
        let seats: i64 = updated.items.data.iter().filter_map(|i| i.quantity).sum();
        assert_eq!(seats, 5);
        assert_eq!(
            created
                .items
                .data
                .iter()
                .filter_map(|i| i.quantity)
                .sum::<i64>(),
            3
        );
        assert!(item.current_period_start.is_some() && item.current_period_end.is_some());
        // the previous item list is in the same shape
        let prev = previous(repo_fixture!("events/customer.subscription.updated.json"));
        let old_items: StripeList<StripeSubscriptionItem> =
            serde_json::from_value(prev["items"].clone()).unwrap();
        assert_eq!(old_items.data[0].quantity, Some(3));
    }

    #[test]
    fn older_subscription_with_period_on_the_subscription() {
        let old: StripeSubscription = parse(old_fixture!("subscription"));
        assert_eq!(old.id, "sub_1NnmX4GPxmnHQRkJrhGrFloA");
        assert!(old.current_period_start.is_some() && old.current_period_end.is_some());
        let plan_only: StripeSubscriptionItem = serde_json::from_str(
            r#"{"id":"si_1","plan":{"id":"plan_1","object":"plan","product":"prod_9"},
            "price":null,"quantity":2}"#,
        )
        .unwrap();
        assert_eq!(plan_only.price_id(), Some("plan_1"));
        assert_eq!(plan_only.product_id(), Some("prod_9"));
    }
}
