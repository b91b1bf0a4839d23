//! `refund`. Since API version 2024-10-28 every refund emits `refund.*` events.

use super::{
    expandable_id, null_default, stripe_object, Expandable, Metadata, StripeBalanceTransaction,
    StripeCharge, StripeCustomer, StripePaymentIntent,
};
use ledgerbridge_core::currency::Currency;
use ledgerbridge_core::money::Money;
use serde::{Deserialize, Serialize};

/// `refund`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StripeRefund {
    pub id: String,
    pub amount: i64,
    pub currency: Currency,
    #[serde(default)]
    pub charge: Option<Expandable<StripeCharge>>,
    #[serde(default)]
    pub payment_intent: Option<Expandable<StripePaymentIntent>>,
    /// Present in current versions; older refunds name only the charge.
    #[serde(default)]
    pub customer: Option<Expandable<StripeCustomer>>,
    #[serde(default)]
    pub balance_transaction: Option<Expandable<StripeBalanceTransaction>>,
    /// `pending`, `requires_action`, `succeeded`, `failed` or `canceled`.
    #[serde(default)]
    pub status: Option<String>,
    /// `duplicate`, `fraudulent`, `requested_by_customer`, `expired_uncaptured_charge`, ….
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub created: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub metadata: Metadata,
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

stripe_object!(StripeRefund => "refund",);

impl StripeRefund {
    pub fn amount_money(&self) -> Money {
        Money::new(self.amount, self.currency)
    }
    pub fn charge_id(&self) -> Option<&str> {
        expandable_id(&self.charge)
    }
    pub fn payment_intent_id(&self) -> Option<&str> {
        expandable_id(&self.payment_intent)
    }
    pub fn customer_id(&self) -> Option<&str> {
        expandable_id(&self.customer)
    }
    pub fn balance_transaction_id(&self) -> Option<&str> {
        expandable_id(&self.balance_transaction)
    }
    pub fn is_succeeded(&self) -> bool {
        self.status.as_deref() == Some("succeeded")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::fixtures::*;

    #[test]
    fn refund_event_and_api_response() {
        let re: StripeRefund = event_object(repo_fixture!("events/refund.created.json"));
        assert_eq!(re.id, "re_30DCl0Nq7LbKx2Rzr5ZHG8yn");
        assert_eq!(re.amount_money(), Money::new(2500, Currency::USD));
        assert_eq!(re.charge_id(), Some("ch_3gsksVNq7LbKx2Rz34NNmfST"));
        assert_eq!(re.customer_id(), Some("cus_v2hTtpvHRTXjHs"));
        assert_eq!(re.payment_intent_id(), Some("pi_3p9S8HNq7LbKx2Rzsq8BMGwq"));
        assert!(re.is_succeeded());
        assert_eq!(re.reason.as_deref(), Some("requested_by_customer"));
        assert_eq!(re.metadata["credit_memo_reason"], "1 of 5 units damaged");
        assert_eq!(re.created, 1_785_838_840);

        let fetched: StripeRefund =
            parse(repo_fixture!("api/refund_re_3YTjQYNq7LbKx2RzpMuKD5Mx.json"));
        assert_eq!(fetched.amount, 4200);
        assert_eq!(
            fetched.balance_transaction_id(),
            Some("txn_3OrquMNq7LbKx2RzV0CEK4Hm")
        );
    }

    #[test]
    fn older_refund_without_customer() {
        let old: StripeRefund = parse(old_fixture!("refund"));
        assert_eq!(old.id, "re_1NnmX5GPxmnHQRkJzG1txqB9");
        assert_eq!(old.customer_id(), None);
        assert!(old.charge_id().is_some());
    }
}
