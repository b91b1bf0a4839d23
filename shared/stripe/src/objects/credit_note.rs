//! `credit_note`. Current versions list the refunds (`refunds[]` with `amount_refunded`);
//! older ones name at most one (`refund`). Lines share [`StripeLineItem`] with invoices.

use super::{
    expandable_id, null_default, stripe_object, Expandable, Metadata, StripeCustomer,
    StripeDiscountAmount, StripeInvoice, StripeLineItem, StripeList, StripePretaxCreditAmount,
    StripeRefund, StripeTax, StripeTaxAmount,
};
use ledgerbridge_core::currency::Currency;
use ledgerbridge_core::money::Money;
use serde::{Deserialize, Serialize};

/// `credit_note`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StripeCreditNote {
    pub id: String,
    pub currency: Currency,
    #[serde(default)]
    pub customer: Option<Expandable<StripeCustomer>>,
    #[serde(default)]
    pub invoice: Option<Expandable<StripeInvoice>>,
    #[serde(default)]
    pub number: Option<String>,
    /// `issued` or `void`.
    #[serde(default)]
    pub status: Option<String>,
    /// `pre_payment`, `post_payment` or `mixed`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// `duplicate`, `fraudulent`, `order_change`, `product_unsatisfactory` or `null`.
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub memo: Option<String>,
    /// Total including tax and after discounts.
    #[serde(default)]
    pub total: Option<i64>,
    #[serde(default)]
    pub amount: Option<i64>,
    #[serde(default)]
    pub subtotal: Option<i64>,
    #[serde(default)]
    pub out_of_band_amount: Option<i64>,
    /// Current versions: the refunds that paid out the credit.
    #[serde(default, deserialize_with = "null_default")]
    pub refunds: Vec<StripeCreditNoteRefund>,
    /// Older versions: the one refund.
    #[serde(default)]
    pub refund: Option<Expandable<StripeRefund>>,
    /// Refunded amount, where present.
    #[serde(default)]
    pub refund_amount: Option<i64>,
    #[serde(default, deserialize_with = "null_default")]
    pub lines: StripeList<StripeLineItem>,
    /// Current versions.
    #[serde(default)]
    pub total_taxes: Option<Vec<StripeTax>>,
    /// Older versions.
    #[serde(default)]
    pub tax_amounts: Option<Vec<StripeTaxAmount>>,
    #[serde(default, deserialize_with = "null_default")]
    pub discount_amounts: Vec<StripeDiscountAmount>,
    #[serde(default, deserialize_with = "null_default")]
    pub pretax_credit_amounts: Vec<StripePretaxCreditAmount>,
    #[serde(default)]
    pub created: i64,
    #[serde(default)]
    pub effective_at: Option<i64>,
    #[serde(default)]
    pub voided_at: Option<i64>,
    #[serde(default, deserialize_with = "null_default")]
    pub metadata: Metadata,
}

/// `credit_note.refunds[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StripeCreditNoteRefund {
    #[serde(default)]
    pub amount_refunded: Option<i64>,
    #[serde(default)]
    pub refund: Option<Expandable<StripeRefund>>,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

stripe_object!(StripeCreditNote => "credit_note",);

impl StripeCreditNote {
    pub fn total_money(&self) -> Option<Money> {
        self.total.map(|t| Money::new(t, self.currency))
    }
    pub fn customer_id(&self) -> Option<&str> {
        expandable_id(&self.customer)
    }
    pub fn invoice_id(&self) -> Option<&str> {
        expandable_id(&self.invoice)
    }
    /// Refunded through Stripe: Σ `refunds[].amount_refunded`, at least `refund_amount`.
    /// `None` on overflow.
    pub fn refunded_amount(&self) -> Option<i64> {
        let sum = self
            .refunds
            .iter()
            .filter_map(|r| r.amount_refunded)
            .try_fold(0i64, i64::checked_add)?;
        Some(sum.max(self.refund_amount.unwrap_or(0)))
    }
    /// The refunds, from either shape (`refunds[].refund`, else the older `refund`).
    pub fn refund_ids(&self) -> Vec<&str> {
        let ids: Vec<&str> = self
            .refunds
            .iter()
            .filter_map(|r| expandable_id(&r.refund))
            .collect();
        if ids.is_empty() {
            expandable_id(&self.refund).into_iter().collect()
        } else {
            ids
        }
    }
    /// Tax per rate in the current shape: `total_taxes`, else converted `tax_amounts`.
    pub fn taxes(&self) -> Vec<StripeTax> {
        match (&self.total_taxes, &self.tax_amounts) {
            (Some(t), _) => t.clone(),
            (None, Some(old)) => old.iter().map(StripeTaxAmount::to_tax).collect(),
            (None, None) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::fixtures::*;

    #[test]
    fn older_credit_note_with_tax_amounts() {
        let cn: StripeCreditNote = parse(old_fixture!("credit_note"));
        assert_eq!(cn.id, "cn_1NnmXIGPxmnHQRkJwtCFye2k");
        assert_eq!(cn.total_money(), Some(Money::new(1690, Currency::USD)));
        assert_eq!(cn.invoice_id(), Some("in_1NnmXIGPxmnHQRkJBEpNb8RN"));
        assert_eq!(cn.customer_id(), Some("cus_Oaxlz8kB0PJWGa"));
        assert_eq!(cn.refunded_amount(), Some(0));
        assert!(cn.refund_ids().is_empty());
        assert_eq!(cn.taxes()[0].amount, 190);
        assert_eq!(
            cn.taxes()[0].rate_id(),
            Some("txr_1NnmXIGPxmnHQRkJVWzpYNVR")
        );
        let first = &cn.lines.data[0];
        assert_eq!(first.amount, Some(1190));
        assert_eq!(first.taxes()[0].amount, 190);
        assert_eq!(
            first.invoice_line_item.as_deref(),
            Some("il_1NnmXIGPxmnHQRkJF3nMkplm")
        );
        assert_eq!(cn.lines.data[1].unit_amount, Some(500));
        assert_eq!(cn.voided_at, Some(1_234_567_890));
    }

    #[test]
    fn current_credit_note_with_refunds_list() {
        // Stripe's current published example (placeholder amounts), unchanged.
        let cn: StripeCreditNote = parse(include_str!(
            "../../tests/fixtures/openapi-current/credit_note.json"
        ));
        assert_eq!(cn.id, "cn_1Pgc75B7WZ01zgkWJMPt5riP");
        assert_eq!(cn.refund_ids(), ["refund"]);
        assert_eq!(cn.refunds[0].amount_refunded, Some(1_387_154_914));
        assert_eq!(cn.refunded_amount(), Some(1_387_154_914));
        assert_eq!(cn.lines.data[0].credits(), Some(1_413_853_096));
        let json = r#"{"id":"cn_1","currency":"usd","total":300,"refund":"re_old",
            "refunds":null,"lines":null,"metadata":null}"#;
        let old: StripeCreditNote = serde_json::from_str(json).unwrap();
        assert_eq!(old.refund_ids(), ["re_old"]);
        assert!(old.lines.data.is_empty());
    }
}
