//! `charge`. Since API version 2022-11-15 a charge no longer carries its `refunds` list, and
//! since 2025-03-31 no `invoice`: both are `Option` here and absent in current payloads.

use super::{
    expandable_id, null_default, stripe_object, Expandable, Metadata, StripeBalanceTransaction,
    StripeCustomer, StripeInvoice, StripeList, StripePaymentIntent, StripeRefund,
};
use ledgerbridge_core::currency::Currency;
use ledgerbridge_core::money::Money;
use serde::{Deserialize, Serialize};

/// `charge` (the fields the pipeline reads; everything else is in `other`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StripeCharge {
    pub id: String,
    pub amount: i64,
    pub currency: Currency,
    /// What was captured (`0` or absent on an uncaptured authorisation).
    #[serde(default)]
    pub amount_captured: Option<i64>,
    #[serde(default)]
    pub amount_refunded: i64,
    /// `false` for an authorisation not captured yet.
    #[serde(default)]
    pub captured: Option<bool>,
    #[serde(default)]
    pub paid: Option<bool>,
    #[serde(default)]
    pub refunded: Option<bool>,
    #[serde(default)]
    pub disputed: Option<bool>,
    #[serde(default)]
    pub balance_transaction: Option<Expandable<StripeBalanceTransaction>>,
    #[serde(default)]
    pub customer: Option<Expandable<StripeCustomer>>,
    #[serde(default)]
    pub payment_intent: Option<Expandable<StripePaymentIntent>>,
    /// Older API versions only (removed in 2025-03-31); the link is now the invoice payment.
    #[serde(default)]
    pub invoice: Option<Expandable<StripeInvoice>>,
    /// Older API versions only (not included since 2022-11-15); list refunds by charge.
    #[serde(default)]
    pub refunds: Option<StripeList<StripeRefund>>,
    #[serde(default)]
    pub payment_method_details: Option<StripePaymentMethodDetails>,
    /// `succeeded`, `pending` or `failed`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub failure_code: Option<String>,
    #[serde(default)]
    pub failure_message: Option<String>,
    #[serde(default)]
    pub created: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub metadata: Metadata,
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// `payment_method_details`: only its `type` (`card`, `us_bank_account`, …) is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripePaymentMethodDetails {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

stripe_object!(StripeCharge => "charge",);

impl StripeCharge {
    pub fn amount_money(&self) -> Money {
        Money::new(self.amount, self.currency)
    }
    pub fn customer_id(&self) -> Option<&str> {
        expandable_id(&self.customer)
    }
    pub fn payment_intent_id(&self) -> Option<&str> {
        expandable_id(&self.payment_intent)
    }
    pub fn balance_transaction_id(&self) -> Option<&str> {
        expandable_id(&self.balance_transaction)
    }
    /// The invoice named by the charge (older API versions only).
    pub fn invoice_id(&self) -> Option<&str> {
        expandable_id(&self.invoice)
    }
    /// `payment_method_details.type`.
    pub fn payment_method_type(&self) -> Option<&str> {
        self.payment_method_details
            .as_ref()
            .and_then(|d| d.kind.as_deref())
            .filter(|t| !t.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::fixtures::*;

    #[test]
    fn current_charge_events() {
        let ch: StripeCharge = event_object(repo_fixture!("events/charge.succeeded.json"));
        assert_eq!(ch.id, "ch_3j9VrENq7LbKx2RzhpXmNvkB");
        assert_eq!(ch.amount_money(), Money::new(15900, Currency::USD));
        assert_eq!(ch.amount_captured, Some(15900));
        assert_eq!(ch.captured, Some(true));
        assert_eq!(ch.customer_id(), Some("cus_NHQM1cjewvnnbv"));
        assert_eq!(ch.payment_intent_id(), Some("pi_3JitFDNq7LbKx2RzWVv0OUYJ"));
        assert_eq!(
            ch.balance_transaction_id(),
            Some("txn_3Hk1ihNq7LbKx2RzGKCpXDgf")
        );
        assert_eq!(ch.payment_method_type(), Some("card"));
        assert_eq!(ch.metadata["order_id"], "SO-100482");
        assert_eq!(ch.status.as_deref(), Some("succeeded"));
        assert_eq!(ch.created, 1_785_861_909);
        assert_eq!(ch.invoice_id(), None, "current versions name no invoice");
        assert!(ch.refunds.is_none(), "current versions carry no refunds");

        let partial: StripeCharge =
            event_object(repo_fixture!("events/charge.refunded.partial.json"));
        assert_eq!((partial.amount, partial.amount_refunded), (12500, 2500));
        let prev = previous(repo_fixture!("events/charge.refunded.partial.json"));
        assert_eq!(prev["amount_refunded"], 0);
        let full: StripeCharge = event_object(repo_fixture!("events/charge.refunded.full.json"));
        assert_eq!(full.amount, full.amount_refunded);

        for text in [
            repo_fixture!("api/charge_ch_37yIfqNq7LbKx2RzhS7nubvJ.json"),
            repo_fixture!("api/charge_ch_3z6gSKNq7LbKx2RzlHN9nphV.json"),
        ] {
            let ch: StripeCharge = parse(text);
            assert!(ch.id.starts_with("ch_") && ch.amount > 0);
        }
    }

    #[test]
    fn older_charge_with_invoice_and_refunds_list() {
        let old: StripeCharge = parse(old_fixture!("charge"));
        assert_eq!(old.id, "ch_1NnlpSGPxmnHQRkJcYsK19E8");
        assert_eq!(
            old.refunds.map(|r| r.data.len()),
            Some(0),
            "2023 shape lists refunds"
        );
        let json = r#"{"id":"ch_1","object":"charge","amount":1000,"currency":"usd",
            "invoice":"in_1","captured":false,"customer":{"id":"cus_1","object":"customer"},
            "refunds":{"object":"list","data":[{"id":"re_1","amount":100,"currency":"usd",
            "charge":"ch_1","status":"succeeded"}],"has_more":false}}"#;
        let ch: StripeCharge = serde_json::from_str(json).unwrap();
        assert_eq!(ch.invoice_id(), Some("in_1"));
        assert_eq!(ch.captured, Some(false));
        assert_eq!(ch.customer_id(), Some("cus_1"));
        let refunds = ch.refunds.unwrap();
        assert_eq!(refunds.data[0].charge_id(), Some("ch_1"));
    }
}
