//! `dispute`: the money it moves is in its `balance_transactions` (withdrawal when opened,
//! reinstatement when won), never in its own `amount`.

use super::{
    expandable_id, null_default, stripe_object, Expandable, Metadata, StripeBalanceTransaction,
    StripeCharge, StripePaymentIntent,
};
use ledgerbridge_core::currency::Currency;
use ledgerbridge_core::money::Money;
use serde::{Deserialize, Serialize};

/// `dispute`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StripeDispute {
    pub id: String,
    /// The disputed amount (presentment currency); book from the balance transactions.
    pub amount: i64,
    pub currency: Currency,
    /// `warning_needs_response`, `needs_response`, `under_review`, `won`, `lost`, ….
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub charge: Option<Expandable<StripeCharge>>,
    #[serde(default)]
    pub payment_intent: Option<Expandable<StripePaymentIntent>>,
    /// Every balance transaction of the dispute so far, oldest first.
    #[serde(default, deserialize_with = "null_default")]
    pub balance_transactions: Vec<StripeBalanceTransaction>,
    #[serde(default)]
    pub is_charge_refundable: Option<bool>,
    #[serde(default)]
    pub created: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub metadata: Metadata,
}

stripe_object!(StripeDispute => "dispute",);

impl StripeDispute {
    pub fn amount_money(&self) -> Money {
        Money::new(self.amount, self.currency)
    }
    pub fn charge_id(&self) -> Option<&str> {
        expandable_id(&self.charge)
    }
    pub fn payment_intent_id(&self) -> Option<&str> {
        expandable_id(&self.payment_intent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::fixtures::*;
    use crate::StripeReportingCategory;

    #[test]
    fn dispute_created_and_closed() {
        let opened: StripeDispute =
            event_object(repo_fixture!("events/charge.dispute.created.json"));
        assert_eq!(opened.id, "dp_1vYNVGNq7LbKx2RzwOAtu4kQ");
        assert_eq!(opened.charge_id(), Some("ch_37yIfqNq7LbKx2RzhS7nubvJ"));
        assert_eq!(opened.amount_money(), Money::new(2000, Currency::USD));
        let [withdrawal] = &opened.balance_transactions[..] else {
            panic!("one balance transaction when opened")
        };
        assert_eq!(
            (withdrawal.amount, withdrawal.fee, withdrawal.net),
            (-2000, 1500, -3500)
        );
        assert_eq!(
            withdrawal.reporting_category,
            StripeReportingCategory::Dispute
        );
        assert_eq!(withdrawal.fee_details[0].amount, 1500);

        let closed: StripeDispute =
            event_object(repo_fixture!("events/charge.dispute.closed.json"));
        assert_eq!(closed.status.as_deref(), Some("won"));
        assert_eq!(closed.reason.as_deref(), Some("fraudulent"));
        assert_eq!(closed.balance_transactions.len(), 2);
        let reinstated = &closed.balance_transactions[1];
        assert!(reinstated.amount > 0);
        assert_eq!(reinstated.net, reinstated.amount - reinstated.fee);
        // the event's previous attributes hold the earlier list, in the same shape
        let prev = previous(repo_fixture!("events/charge.dispute.closed.json"));
        let earlier: Vec<StripeBalanceTransaction> =
            serde_json::from_value(prev["balance_transactions"].clone()).unwrap();
        assert_eq!(earlier, closed.balance_transactions[..1]);
    }

    #[test]
    fn older_dispute() {
        let old: StripeDispute = parse(old_fixture!("dispute"));
        assert_eq!(old.id, "dp_1NnmX5GPxmnHQRkJhLm6FrCK");
        assert!(old.charge_id().is_some());
    }
}
