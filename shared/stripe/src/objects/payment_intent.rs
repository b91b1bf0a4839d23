//! `payment_intent`. Before API version 2025-03-31 it could name its `invoice`; now the link
//! is the invoice payment.

use super::{
    expandable_id, null_default, stripe_object, Expandable, Metadata, StripeCharge, StripeCustomer,
    StripeInvoice,
};
use ledgerbridge_core::currency::Currency;
use ledgerbridge_core::money::Money;
use serde::{Deserialize, Serialize};

/// `payment_intent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StripePaymentIntent {
    pub id: String,
    pub amount: i64,
    pub currency: Currency,
    /// What was received (the booked amount of a succeeded intent).
    #[serde(default)]
    pub amount_received: Option<i64>,
    #[serde(default)]
    pub amount_capturable: Option<i64>,
    #[serde(default)]
    pub customer: Option<Expandable<StripeCustomer>>,
    #[serde(default)]
    pub latest_charge: Option<Expandable<StripeCharge>>,
    /// Older API versions only (removed in 2025-03-31).
    #[serde(default)]
    pub invoice: Option<Expandable<StripeInvoice>>,
    #[serde(default, deserialize_with = "null_default")]
    pub payment_method_types: Vec<String>,
    /// `succeeded`, `processing`, `requires_payment_method`, `canceled`, ….
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub created: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub metadata: Metadata,
}

stripe_object!(StripePaymentIntent => "payment_intent",);

impl StripePaymentIntent {
    pub fn amount_money(&self) -> Money {
        Money::new(self.amount, self.currency)
    }
    pub fn customer_id(&self) -> Option<&str> {
        expandable_id(&self.customer)
    }
    pub fn latest_charge_id(&self) -> Option<&str> {
        expandable_id(&self.latest_charge)
    }
    /// The invoice named by the intent (older API versions only).
    pub fn invoice_id(&self) -> Option<&str> {
        expandable_id(&self.invoice)
    }
    /// The first of `payment_method_types`.
    pub fn payment_method_type(&self) -> Option<&str> {
        self.payment_method_types.first().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::fixtures::*;

    #[test]
    fn succeeded_intent_event() {
        let pi: StripePaymentIntent =
            event_object(repo_fixture!("events/payment_intent.succeeded.json"));
        assert_eq!(pi.id, "pi_3JitFDNq7LbKx2RzWVv0OUYJ");
        assert_eq!(pi.amount_money(), Money::new(15900, Currency::USD));
        assert_eq!(pi.amount_received, Some(15900));
        assert_eq!(pi.customer_id(), Some("cus_NHQM1cjewvnnbv"));
        assert_eq!(pi.latest_charge_id(), Some("ch_3j9VrENq7LbKx2RzhpXmNvkB"));
        assert_eq!(pi.payment_method_type(), Some("card"));
        assert_eq!(pi.metadata["order_id"], "SO-100482");
        assert_eq!(pi.created, 1_785_861_878);
        assert_eq!(pi.invoice_id(), None);
    }

    #[test]
    fn older_intent_with_invoice() {
        let old: StripePaymentIntent = parse(old_fixture!("payment_intent"));
        assert_eq!(old.id, "pi_1NnlpVGPxmnHQRkJNuz3w9tH");
        let json = r#"{"id":"pi_1","amount":500,"currency":"eur","invoice":"in_9",
            "payment_method_types":null,"customer":null}"#;
        let pi: StripePaymentIntent = serde_json::from_str(json).unwrap();
        assert_eq!(pi.invoice_id(), Some("in_9"));
        assert_eq!(pi.payment_method_type(), None);
        assert_eq!(pi.customer_id(), None);
        assert_eq!(pi.amount_received, None);
    }
}
