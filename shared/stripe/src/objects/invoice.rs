//! `invoice`, its `line_item`s (shared with credit notes), and `invoice_payment`.
//!
//! Shapes of two API eras are accepted:
//!
//! | what | older versions | current versions |
//! | --- | --- | --- |
//! | tax per line | `tax_amounts[]` (`inclusive`, `tax_rate`) | `taxes[]` (`tax_behavior`, `tax_rate_details.tax_rate`) |
//! | tax per invoice | `total_tax_amounts[]`, `tax` | `total_taxes[]` |
//! | discounts per line | `discount_amounts[]` | `pretax_credit_amounts[]` (and `discount_amounts[]`) |
//! | price of a line | `price` (object) | `pricing.price_details.{price, product}` |
//! | subscription | `invoice.subscription`, `line.subscription` | `parent.subscription_details.subscription`, line `parent` |
//! | what paid it | `invoice.charge`, `invoice.payment_intent` | `payments` (expand) or `GET /v1/invoice_payments?invoice=…` |
//!
//! The helpers ([`StripeInvoice::taxes`], [`StripeLineItem::taxes`],
//! [`StripeLineItem::credits`], [`StripeInvoice::subscription_id`],
//! [`StripeInvoice::payment_refs`], …) give one view of both.

use super::{de_opt_decimal_or_empty, StripeObject};
use super::{
    expandable_id, null_default, ser_opt_decimal, stripe_object, Expandable, Metadata,
    StripeCharge, StripeCustomer, StripeDiscount, StripeDiscountAmount, StripeList,
    StripePaymentIntent, StripePrice, StripeSubscription, StripeTaxRate,
};
use ledgerbridge_core::currency::Currency;
use ledgerbridge_core::money::Money;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// `invoice`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StripeInvoice {
    pub id: String,
    pub currency: Currency,
    #[serde(default)]
    pub customer: Option<Expandable<StripeCustomer>>,
    #[serde(default)]
    pub number: Option<String>,
    /// `draft`, `open`, `paid`, `uncollectible` or `void`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub billing_reason: Option<String>,
    #[serde(default)]
    pub collection_method: Option<String>,
    #[serde(default)]
    pub total: i64,
    #[serde(default)]
    pub subtotal: Option<i64>,
    #[serde(default)]
    pub amount_due: Option<i64>,
    #[serde(default)]
    pub amount_paid: i64,
    #[serde(default)]
    pub amount_remaining: Option<i64>,
    #[serde(default)]
    pub created: i64,
    #[serde(default)]
    pub effective_at: Option<i64>,
    #[serde(default)]
    pub due_date: Option<i64>,
    #[serde(default)]
    pub period_start: Option<i64>,
    #[serde(default)]
    pub period_end: Option<i64>,
    #[serde(default, deserialize_with = "null_default")]
    pub status_transitions: StripeInvoiceStatusTransitions,
    /// The first page of lines (check `has_more`).
    #[serde(default, deserialize_with = "null_default")]
    pub lines: StripeList<StripeLineItem>,
    /// Current versions: tax per rate.
    #[serde(default)]
    pub total_taxes: Option<Vec<StripeTax>>,
    /// Older versions: tax per rate.
    #[serde(default)]
    pub total_tax_amounts: Option<Vec<StripeTaxAmount>>,
    /// Older versions: the tax total.
    #[serde(default)]
    pub tax: Option<i64>,
    #[serde(default, deserialize_with = "null_default")]
    pub total_discount_amounts: Vec<StripeDiscountAmount>,
    #[serde(default, deserialize_with = "null_default")]
    pub total_pretax_credit_amounts: Vec<StripePretaxCreditAmount>,
    /// Older versions (kept, but `null`, in current payloads): use [`Self::subscription_id`].
    #[serde(default)]
    pub subscription: Option<Expandable<StripeSubscription>>,
    /// Current versions: what the invoice was created for (a subscription, a quote).
    #[serde(default)]
    pub parent: Option<StripeInvoiceParent>,
    /// Older versions: the charge that paid the invoice.
    #[serde(default)]
    pub charge: Option<Expandable<StripeCharge>>,
    /// Older versions: the PaymentIntent that paid the invoice.
    #[serde(default)]
    pub payment_intent: Option<Expandable<StripePaymentIntent>>,
    /// Current versions, only with `expand[]=payments`: the invoice payments.
    #[serde(default)]
    pub payments: Option<StripeList<StripeInvoicePayment>>,
    /// Older versions (removed in 2025): whether it is paid; use `status`.
    #[serde(default)]
    pub paid: Option<bool>,
    #[serde(default, deserialize_with = "null_default")]
    pub metadata: Metadata,
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// `invoice.status_transitions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeInvoiceStatusTransitions {
    #[serde(default)]
    pub finalized_at: Option<i64>,
    #[serde(default)]
    pub paid_at: Option<i64>,
    #[serde(default)]
    pub voided_at: Option<i64>,
    #[serde(default)]
    pub marked_uncollectible_at: Option<i64>,
}

/// `invoice.parent` (current versions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StripeInvoiceParent {
    /// `subscription_details` or `quote_details`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub subscription_details: Option<StripeSubscriptionDetails>,
}

/// `invoice.parent.subscription_details`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StripeSubscriptionDetails {
    #[serde(default)]
    pub subscription: Option<Expandable<StripeSubscription>>,
    /// The subscription's metadata when the invoice was created.
    #[serde(default, deserialize_with = "null_default")]
    pub metadata: Metadata,
}

stripe_object!(
    StripeInvoice => "invoice",
    StripeLineItem => "line_item",
    StripeInvoicePayment => "invoice_payment",
);

impl StripeInvoice {
    pub fn total_money(&self) -> Money {
        Money::new(self.total, self.currency)
    }
    pub fn customer_id(&self) -> Option<&str> {
        expandable_id(&self.customer)
    }
    /// `parent.subscription_details.subscription` (current), else `subscription` (older).
    pub fn subscription_id(&self) -> Option<&str> {
        self.parent
            .as_ref()
            .and_then(|p| p.subscription_details.as_ref())
            .and_then(|d| expandable_id(&d.subscription))
            .or_else(|| expandable_id(&self.subscription))
    }
    /// The charge named by the invoice (older versions only).
    pub fn charge_id(&self) -> Option<&str> {
        expandable_id(&self.charge)
    }
    /// The PaymentIntent named by the invoice (older versions only).
    pub fn payment_intent_id(&self) -> Option<&str> {
        expandable_id(&self.payment_intent)
    }
    /// Tax per rate in the current shape: `total_taxes`, else converted `total_tax_amounts`.
    pub fn taxes(&self) -> Vec<StripeTax> {
        match (&self.total_taxes, &self.total_tax_amounts) {
            (Some(t), _) => t.clone(),
            (None, Some(old)) => old.iter().map(StripeTaxAmount::to_tax).collect(),
            (None, None) => Vec::new(),
        }
    }
    /// The tax total: the sum of [`Self::taxes`], else the older `tax`; `None` on overflow.
    pub fn total_tax(&self) -> Option<i64> {
        let taxes = self.taxes();
        if taxes.is_empty() {
            if let Some(t) = self.tax {
                return Some(t);
            }
        }
        taxes
            .iter()
            .try_fold(0i64, |acc, t| acc.checked_add(t.amount))
    }
    /// What paid the invoice, as far as the invoice itself tells: the expanded `payments`
    /// (current versions), else the older `payment_intent` / `charge`. Empty when neither is
    /// present (current versions without expansion: list the invoice payments).
    pub fn payment_refs(&self) -> Vec<StripeInvoicePaymentRef> {
        if let Some(list) = &self.payments {
            return list.data.iter().filter_map(|p| p.payment.clone()).collect();
        }
        if let Some(pi) = &self.payment_intent {
            return vec![StripeInvoicePaymentRef {
                kind: Some("payment_intent".into()),
                charge: self.charge.clone(),
                payment_intent: Some(pi.clone()),
            }];
        }
        if let Some(ch) = &self.charge {
            return vec![StripeInvoicePaymentRef {
                kind: Some("charge".into()),
                charge: Some(ch.clone()),
                payment_intent: None,
            }];
        }
        Vec::new()
    }
}

/// A line of an invoice (`line_item`) or of a credit note (`credit_note_line_item`): the
/// fields both share, in both API eras.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StripeLineItem {
    pub id: String,
    /// Gross amount of the line, before discounts and exclusive tax.
    #[serde(default)]
    pub amount: Option<i64>,
    #[serde(default)]
    pub currency: Option<Currency>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub quantity: Option<i64>,
    /// Current versions: a decimal quantity (exact; an empty string reads as `None`).
    #[serde(
        default,
        deserialize_with = "de_opt_decimal_or_empty",
        serialize_with = "ser_opt_decimal"
    )]
    pub quantity_decimal: Option<Decimal>,
    /// Credit note lines: the unit amount.
    #[serde(default)]
    pub unit_amount: Option<i64>,
    #[serde(default, deserialize_with = "null_default")]
    pub discount_amounts: Vec<StripeDiscountAmount>,
    /// Current versions: discounts and other pre-tax credits.
    #[serde(default, deserialize_with = "null_default")]
    pub pretax_credit_amounts: Vec<StripePretaxCreditAmount>,
    /// Credit note lines: the total discount.
    #[serde(default)]
    pub discount_amount: Option<i64>,
    /// Current versions.
    #[serde(default)]
    pub taxes: Option<Vec<StripeTax>>,
    /// Older versions.
    #[serde(default)]
    pub tax_amounts: Option<Vec<StripeTaxAmount>>,
    /// Current versions: `pricing.price_details.{price, product}`.
    #[serde(default)]
    pub pricing: Option<StripeLinePricing>,
    /// Older versions: the price object.
    #[serde(default)]
    pub price: Option<StripePrice>,
    #[serde(default)]
    pub period: Option<StripePeriod>,
    /// Older versions: the subscription of a subscription line.
    #[serde(default)]
    pub subscription: Option<Expandable<StripeSubscription>>,
    /// Current versions: `subscription_item_details` / `invoice_item_details`.
    #[serde(default)]
    pub parent: Option<StripeLineItemParent>,
    /// Older versions: `subscription` / `invoiceitem` (credit notes: `invoice_line_item` /
    /// `custom_line_item`, in all versions).
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Older versions.
    #[serde(default)]
    pub proration: Option<bool>,
    /// Credit note lines: the invoice line credited.
    #[serde(default)]
    pub invoice_line_item: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub metadata: Metadata,
}

/// `line_item.pricing` (current versions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StripeLinePricing {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub price_details: Option<StripePriceDetails>,
    #[serde(
        default,
        deserialize_with = "de_opt_decimal_or_empty",
        serialize_with = "ser_opt_decimal"
    )]
    pub unit_amount_decimal: Option<Decimal>,
}

/// `line_item.pricing.price_details`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StripePriceDetails {
    #[serde(default)]
    pub price: Option<Expandable<StripePrice>>,
    #[serde(default)]
    pub product: Option<String>,
}

/// `line_item.period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripePeriod {
    #[serde(default)]
    pub start: Option<i64>,
    #[serde(default)]
    pub end: Option<i64>,
}

/// `line_item.parent` (current versions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeLineItemParent {
    /// `subscription_item_details` or `invoice_item_details`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub subscription_item_details: Option<StripeLineParentDetails>,
    #[serde(default)]
    pub invoice_item_details: Option<StripeLineParentDetails>,
}

/// `line_item.parent.{subscription_item_details, invoice_item_details}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeLineParentDetails {
    #[serde(default)]
    pub subscription: Option<String>,
    #[serde(default)]
    pub subscription_item: Option<String>,
    #[serde(default)]
    pub invoice_item: Option<String>,
    #[serde(default)]
    pub proration: Option<bool>,
}

impl StripeLineItem {
    /// Discounts and other pre-tax credits: `pretax_credit_amounts` when non-empty, else
    /// `discount_amounts` when non-empty, else `discount_amount` (0 when absent). `None` on
    /// overflow.
    pub fn credits(&self) -> Option<i64> {
        if !self.pretax_credit_amounts.is_empty() {
            return self
                .pretax_credit_amounts
                .iter()
                .try_fold(0i64, |acc, c| acc.checked_add(c.amount));
        }
        if !self.discount_amounts.is_empty() {
            return self
                .discount_amounts
                .iter()
                .try_fold(0i64, |acc, c| acc.checked_add(c.amount));
        }
        Some(self.discount_amount.unwrap_or(0))
    }

    /// Tax per rate in the current shape: `taxes`, else converted `tax_amounts`.
    pub fn taxes(&self) -> Vec<StripeTax> {
        match (&self.taxes, &self.tax_amounts) {
            (Some(t), _) => t.clone(),
            (None, Some(old)) => old.iter().map(StripeTaxAmount::to_tax).collect(),
            (None, None) => Vec::new(),
        }
    }

    /// The price: `pricing.price_details.price` when the line has `price_details` (current
    /// versions), else `price.id` (older versions).
    pub fn price_id(&self) -> Option<&str> {
        match self.price_details() {
            Some(d) => expandable_id(&d.price),
            None => self.price.as_ref().map(|p| p.id()),
        }
        .filter(|id| !id.is_empty())
    }

    /// The product: `pricing.price_details.product` when the line has `price_details`
    /// (current versions), else `price.product` (older versions).
    pub fn product_id(&self) -> Option<&str> {
        match self.price_details() {
            Some(d) => d.product.as_deref().filter(|p| !p.is_empty()),
            None => self.price.as_ref().and_then(StripePrice::product_id),
        }
    }

    fn price_details(&self) -> Option<&StripePriceDetails> {
        self.pricing.as_ref().and_then(|p| p.price_details.as_ref())
    }

    /// The subscription of a subscription line: `parent` (current), else `subscription`.
    pub fn subscription_id(&self) -> Option<&str> {
        self.parent
            .as_ref()
            .and_then(|p| {
                p.subscription_item_details
                    .as_ref()
                    .or(p.invoice_item_details.as_ref())
            })
            .and_then(|d| d.subscription.as_deref())
            .or_else(|| expandable_id(&self.subscription))
    }
}

/// One entry of `taxes` / `total_taxes` (current versions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeTax {
    pub amount: i64,
    /// `exclusive` or `inclusive`.
    #[serde(default)]
    pub tax_behavior: Option<String>,
    #[serde(default)]
    pub tax_rate_details: Option<StripeTaxRateDetails>,
    #[serde(default)]
    pub taxability_reason: Option<String>,
    #[serde(default)]
    pub taxable_amount: Option<i64>,
    /// `tax_rate_details` (the only kind so far).
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

/// `taxes[].tax_rate_details`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeTaxRateDetails {
    #[serde(default)]
    pub tax_rate: Option<String>,
}

impl StripeTax {
    /// `tax_rate_details.tax_rate`.
    pub fn rate_id(&self) -> Option<&str> {
        self.tax_rate_details
            .as_ref()
            .and_then(|d| d.tax_rate.as_deref())
            .filter(|r| !r.is_empty())
    }
    pub fn is_inclusive(&self) -> bool {
        self.tax_behavior.as_deref() == Some("inclusive")
    }
}

/// One entry of `tax_amounts` / `total_tax_amounts` (older versions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StripeTaxAmount {
    pub amount: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub inclusive: bool,
    #[serde(default)]
    pub tax_rate: Option<Expandable<StripeTaxRate>>,
    #[serde(default)]
    pub taxability_reason: Option<String>,
    #[serde(default)]
    pub taxable_amount: Option<i64>,
}

impl StripeTaxAmount {
    /// The same tax in the current shape.
    pub fn to_tax(&self) -> StripeTax {
        StripeTax {
            amount: self.amount,
            tax_behavior: Some(
                if self.inclusive {
                    "inclusive"
                } else {
                    "exclusive"
                }
                .into(),
            ),
            tax_rate_details: expandable_id(&self.tax_rate).map(|r| StripeTaxRateDetails {
                tax_rate: Some(r.to_owned()),
            }),
            taxability_reason: self.taxability_reason.clone(),
            taxable_amount: self.taxable_amount,
            kind: Some("tax_rate_details".into()),
        }
    }
}

/// One entry of `pretax_credit_amounts` (`type`: `discount` or `credit_balance_transaction`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripePretaxCreditAmount {
    pub amount: i64,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub discount: Option<Expandable<StripeDiscount>>,
    #[serde(default)]
    pub credit_balance_transaction: Option<String>,
}

/// `invoice_payment`: the link from an invoice to the charge or PaymentIntent that paid it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StripeInvoicePayment {
    pub id: String,
    #[serde(default)]
    pub invoice: Option<Expandable<StripeInvoice>>,
    #[serde(default)]
    pub amount_paid: Option<i64>,
    #[serde(default)]
    pub amount_requested: Option<i64>,
    #[serde(default)]
    pub currency: Option<Currency>,
    /// `open`, `paid` or `canceled`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub payment: Option<StripeInvoicePaymentRef>,
    #[serde(default, deserialize_with = "null_default")]
    pub status_transitions: StripeInvoicePaymentStatusTransitions,
    #[serde(default)]
    pub is_default: Option<bool>,
    #[serde(default)]
    pub created: Option<i64>,
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// `invoice_payment.status_transitions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeInvoicePaymentStatusTransitions {
    #[serde(default)]
    pub paid_at: Option<i64>,
    #[serde(default)]
    pub canceled_at: Option<i64>,
}

impl StripeInvoicePayment {
    pub fn invoice_id(&self) -> Option<&str> {
        expandable_id(&self.invoice)
    }
    pub fn is_paid(&self) -> bool {
        self.status.as_deref() == Some("paid")
    }
}

/// `invoice_payment.payment`: `{ type: "charge" | "payment_intent" | "out_of_band_payment",
/// charge | payment_intent }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StripeInvoicePaymentRef {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub charge: Option<Expandable<StripeCharge>>,
    #[serde(default)]
    pub payment_intent: Option<Expandable<StripePaymentIntent>>,
}

impl StripeInvoicePaymentRef {
    /// The paying object by `type`: the PaymentIntent, or the charge; `None` for a payment
    /// outside Stripe (or an unknown type).
    pub fn payment_id(&self) -> Option<&str> {
        match self.kind.as_deref() {
            Some("payment_intent") => expandable_id(&self.payment_intent),
            Some("charge") => expandable_id(&self.charge),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::fixtures::*;

    #[test]
    fn current_invoice_from_the_paid_event() {
        let inv: StripeInvoice = event_object(repo_fixture!("events/invoice.paid.json"));
        assert_eq!(inv.id, "in_1gFOr4Nq7LbKx2Rzh2xikK5p");
        assert_eq!(inv.total_money(), Money::new(6820, Currency::USD));
        assert_eq!(inv.amount_paid, 6820);
        assert_eq!(inv.amount_remaining, Some(0));
        assert_eq!(inv.customer_id(), Some("cus_NHQM1cjewvnnbv"));
        assert_eq!(inv.status.as_deref(), Some("paid"));
        assert_eq!(inv.status_transitions.finalized_at, Some(1_785_844_802));
        assert_eq!(inv.status_transitions.paid_at, Some(1_785_844_805));
        assert_eq!(inv.status_transitions.voided_at, None);
        assert_eq!(inv.effective_at, Some(1_785_844_802));
        assert_eq!(inv.due_date, None);
        assert_eq!(inv.subscription_id(), Some("sub_15gzAzNq7LbKx2Rz4teNGDDf"));
        assert!(
            inv.subscription.is_none(),
            "kept as null in current payloads"
        );
        assert_eq!(inv.total_tax(), Some(520));
        assert_eq!(inv.charge_id(), None);
        assert!(
            inv.payment_refs().is_empty(),
            "current versions: list payments"
        );

        assert!(!inv.lines.has_more);
        let [seats, onboarding] = &inv.lines.data[..] else {
            panic!("two lines")
        };
        assert_eq!(seats.amount, Some(4500));
        assert_eq!(seats.quantity, Some(3));
        assert_eq!(seats.quantity_decimal, None);
        assert_eq!(seats.credits(), Some(450));
        assert_eq!(seats.price_id(), Some("price_16Sl3KNq7LbKx2Rz4kLoiN25"));
        assert_eq!(seats.product_id(), Some("prod_S7QVysxe43zvFE"));
        assert_eq!(
            seats.subscription_id(),
            Some("sub_15gzAzNq7LbKx2Rz4teNGDDf")
        );
        let taxes = seats.taxes();
        assert_eq!(taxes.len(), 1);
        assert_eq!(taxes[0].amount, 334);
        assert_eq!(taxes[0].rate_id(), Some("txr_1PBTUGNq7LbKx2RzJiCzi2IF"));
        assert!(!taxes[0].is_inclusive());
        assert_eq!(onboarding.amount, Some(2500));
        assert_eq!(onboarding.taxes()[0].amount, 186);
        // a one-off item on a subscription invoice names the subscription too
        assert_eq!(
            onboarding.subscription_id(),
            Some("sub_15gzAzNq7LbKx2Rz4teNGDDf")
        );
        // lines net of credits plus tax add up to the total
        let sum: i64 = inv
            .lines
            .data
            .iter()
            .map(|l| l.amount.unwrap() - l.credits().unwrap())
            .sum::<i64>()
            + inv.total_tax().unwrap();
        assert_eq!(sum, inv.total);
    }

    #[test]
    fn older_invoice_shape_is_accepted() {
        // Stripe's published example of API version 2023-08-16, unchanged.
        let old: StripeInvoice = parse(old_fixture!("invoice"));
        assert_eq!(old.id, "in_1NnmX4GPxmnHQRkJyyhHiHYa");
        assert_eq!(old.total, 1000);
        assert_eq!(old.paid, Some(false));
        assert_eq!(old.total_tax_amounts.as_deref().map(<[_]>::len), Some(0));
        assert_eq!(old.total_taxes, None);
        let line = &old.lines.data[0];
        assert_eq!(line.price_id(), Some("price_1NnlpWGPxmnHQRkJl3IsxEZx"));
        assert_eq!(line.product_id(), Some("prod_Oaxlh23kWPWslc"));
        assert_eq!(line.kind.as_deref(), Some("invoiceitem"));
        assert_eq!(line.proration, Some(false));
        assert_eq!(line.credits(), Some(0));
        assert!(line.taxes().is_empty());

        // The same era with what the example leaves empty: tax_amounts, subscription,
        // and the charge / PaymentIntent that paid it on the invoice itself.
        let json = r#"{"id":"in_old","object":"invoice","currency":"usd","customer":"cus_1",
            "total":1190,"amount_paid":1190,"status":"paid","paid":true,
            "charge":"ch_old","payment_intent":"pi_old","subscription":"sub_old","tax":190,
            "total_tax_amounts":[{"amount":190,"inclusive":false,"tax_rate":"txr_1",
                "taxability_reason":null,"taxable_amount":1000}],
            "lines":{"object":"list","has_more":false,"data":[{"id":"il_1","object":"line_item",
                "amount":1000,"currency":"usd","quantity":1,"subscription":"sub_old",
                "type":"subscription","proration":false,
                "price":{"id":"price_1","object":"price","product":"prod_1"},
                "discount_amounts":[],
                "tax_amounts":[{"amount":190,"inclusive":false,"tax_rate":"txr_1"}]}]}}"#;
        let inv: StripeInvoice = serde_json::from_str(json).unwrap();
        assert_eq!(inv.charge_id(), Some("ch_old"));
        assert_eq!(inv.payment_intent_id(), Some("pi_old"));
        assert_eq!(inv.subscription_id(), Some("sub_old"));
        assert_eq!(inv.total_tax(), Some(190));
        let t = &inv.taxes()[0];
        assert_eq!(
            (t.amount, t.rate_id(), t.is_inclusive()),
            (190, Some("txr_1"), false)
        );
        let refs = inv.payment_refs();
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].payment_id(), Some("pi_old"));
        let line = &inv.lines.data[0];
        assert_eq!(line.taxes()[0].rate_id(), Some("txr_1"));
        assert_eq!(line.subscription_id(), Some("sub_old"));
        assert_eq!(line.price_id(), Some("price_1"));
        assert_eq!(line.product_id(), Some("prod_1"));
    }

    #[test]
    fn newer_invoice_with_expanded_payments_and_decimal_quantity() {
        let json = r#"{"id":"in_new","currency":"usd","total":500,
            "payments":{"object":"list","data":[{"id":"inpay_1","status":"paid",
                "payment":{"type":"charge","charge":"ch_9"}}]},
            "lines":{"data":[{"id":"il_1","amount":500,"quantity_decimal":"2.5",
                "pretax_credit_amounts":null,"taxes":[{"amount":0,"tax_behavior":"inclusive",
                "type":"tax_rate_details","tax_rate_details":null}]}]}}"#;
        let inv: StripeInvoice = serde_json::from_str(json).unwrap();
        assert_eq!(inv.payment_refs()[0].payment_id(), Some("ch_9"));
        let line = &inv.lines.data[0];
        assert_eq!(line.quantity_decimal, Some(Decimal::new(25, 1)));
        assert!(line.taxes()[0].is_inclusive());
        assert_eq!(line.taxes()[0].rate_id(), None);
        let empty: StripeLineItem =
            serde_json::from_str(r#"{"id":"il_2","quantity_decimal":""}"#).unwrap();
        assert_eq!(empty.quantity_decimal, None);
        assert!(
            serde_json::from_str::<StripeLineItem>(r#"{"id":"x","quantity_decimal":"a"}"#).is_err()
        );
    }

    #[test]
    fn invoice_payments_list() {
        let list: StripeList<StripeInvoicePayment> = parse(repo_fixture!(
            "api/invoice_payments.invoice_in_1gFOr4Nq7LbKx2Rzh2xikK5p.json"
        ));
        assert!(!list.has_more);
        let p = &list.data[0];
        assert!(p.is_paid());
        assert_eq!(p.invoice_id(), Some("in_1gFOr4Nq7LbKx2Rzh2xikK5p"));
        assert_eq!(p.amount_paid, Some(6820));
        assert_eq!(p.currency, Some(Currency::USD));
        assert_eq!(p.status_transitions.paid_at, Some(1_785_844_805));
        let payment = p.payment.as_ref().unwrap();
        assert_eq!(payment.payment_id(), Some("pi_3hs62FNq7LbKx2RzUr2AYuOp"));
        let outside: StripeInvoicePaymentRef =
            serde_json::from_str(r#"{"type":"out_of_band_payment"}"#).unwrap();
        assert_eq!(outside.payment_id(), None);
    }
}
