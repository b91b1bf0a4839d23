//! `balance_transaction`: settlement figures (`amount`, `fee`, `net` in the settlement
//! `currency`), the open sets `type` and `reporting_category` (unknown values parse into an
//! `Other` variant instead of failing), and the expandable `source`.

use super::{de_opt_decimal_exact, null_default, ser_opt_decimal, stripe_object, Expandable};
use ledgerbridge_core::currency::Currency;
use ledgerbridge_core::money::Money;
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

macro_rules! open_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
            /// A value this version of ledgerbridge does not know; kept verbatim.
            Other(String),
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)*
                    $name::Other(s) => s.as_str(),
                }
            }

            /// Never fails: unknown values become `Other`.
            pub fn parse(s: &str) -> Self {
                match s {
                    $($text => $name::$variant,)*
                    other => $name::Other(other.to_owned()),
                }
            }

            pub fn is_known(&self) -> bool {
                !matches!(self, $name::Other(_))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = std::convert::Infallible;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok($name::parse(s))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <Cow<'de, str>>::deserialize(d)?;
                Ok($name::parse(&s))
            }
        }
    };
}

open_enum!(
    /// `balance_transaction.type` (Stripe's list as of 2026, plus values seen in the wild).
    StripeBalanceTransactionType {
        Adjustment => "adjustment",
        Advance => "advance",
        AdvanceFunding => "advance_funding",
        AnticipationRepayment => "anticipation_repayment",
        ApplicationFee => "application_fee",
        ApplicationFeeRefund => "application_fee_refund",
        Charge => "charge",
        ConnectCollectionTransfer => "connect_collection_transfer",
        Contribution => "contribution",
        IssuingAuthorizationHold => "issuing_authorization_hold",
        IssuingAuthorizationRelease => "issuing_authorization_release",
        IssuingDispute => "issuing_dispute",
        IssuingTransaction => "issuing_transaction",
        Payment => "payment",
        PaymentFailureRefund => "payment_failure_refund",
        PaymentRefund => "payment_refund",
        Payout => "payout",
        PayoutCancel => "payout_cancel",
        PayoutFailure => "payout_failure",
        Refund => "refund",
        RefundFailure => "refund_failure",
        ReserveTransaction => "reserve_transaction",
        ReservedFunds => "reserved_funds",
        StripeFee => "stripe_fee",
        StripeFxFee => "stripe_fx_fee",
        TaxFee => "tax_fee",
        Topup => "topup",
        TopupReversal => "topup_reversal",
        Transfer => "transfer",
        TransferCancel => "transfer_cancel",
        TransferFailure => "transfer_failure",
        TransferRefund => "transfer_refund",
    }
);

open_enum!(
    /// `balance_transaction.reporting_category`: what to account by (Stripe's advice).
    StripeReportingCategory {
        Advance => "advance",
        AdvanceFunding => "advance_funding",
        Charge => "charge",
        ChargeFailure => "charge_failure",
        ConnectCollectionTransfer => "connect_collection_transfer",
        ConnectReservedFunds => "connect_reserved_funds",
        Dispute => "dispute",
        DisputeReversal => "dispute_reversal",
        Fee => "fee",
        IssuingAuthorizationHold => "issuing_authorization_hold",
        IssuingAuthorizationRelease => "issuing_authorization_release",
        IssuingTransaction => "issuing_transaction",
        OtherAdjustment => "other_adjustment",
        PartialCaptureReversal => "partial_capture_reversal",
        Payout => "payout",
        PayoutReversal => "payout_reversal",
        PlatformEarning => "platform_earning",
        PlatformEarningRefund => "platform_earning_refund",
        Refund => "refund",
        RefundFailure => "refund_failure",
        RiskReservedFunds => "risk_reserved_funds",
        Tax => "tax",
        Topup => "topup",
        TopupReversal => "topup_reversal",
        Transfer => "transfer",
        TransferReversal => "transfer_reversal",
    }
);

open_enum!(
    /// `fee_details[].type`.
    StripeFeeType {
        ApplicationFee => "application_fee",
        PaymentMethodPassthroughFee => "payment_method_passthrough_fee",
        StripeFee => "stripe_fee",
        Tax => "tax",
        WithheldTax => "withheld_tax",
    }
);

/// One component of a balance transaction's `fee`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeFeeDetail {
    pub amount: i64,
    pub currency: Currency,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub fee_type: StripeFeeType,
}

/// The expandable `source` of a balance transaction (a charge, refund, payout, …).
pub type StripeExpandable = Expandable<StripeSourceObject>;

/// The fields of an expanded source the reconciliation uses (its presentment currency).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeSourceObject {
    pub id: String,
    #[serde(default)]
    pub object: Option<String>,
    #[serde(default)]
    pub amount: Option<i64>,
    #[serde(default)]
    pub currency: Option<Currency>,
}

stripe_object!(
    StripeSourceObject => "source",
    StripeBalanceTransaction => "balance_transaction",
);

/// `balance_transaction`. `currency` is the settlement currency; `amount`, `fee` and `net` are
/// settlement figures in its minor unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeBalanceTransaction {
    pub id: String,
    pub amount: i64,
    pub currency: Currency,
    #[serde(default)]
    pub fee: i64,
    #[serde(default)]
    pub net: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub fee_details: Vec<StripeFeeDetail>,
    /// Presentment amount × rate = `amount`, when the source was in another currency.
    #[serde(
        default,
        deserialize_with = "de_opt_decimal_exact",
        serialize_with = "ser_opt_decimal"
    )]
    pub exchange_rate: Option<Decimal>,
    #[serde(rename = "type")]
    pub kind: StripeBalanceTransactionType,
    pub reporting_category: StripeReportingCategory,
    #[serde(default)]
    pub source: Option<StripeExpandable>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub created: i64,
    #[serde(default)]
    pub available_on: i64,
    #[serde(default)]
    pub status: Option<String>,
}

impl StripeBalanceTransaction {
    pub fn amount_money(&self) -> Money {
        Money::new(self.amount, self.currency)
    }
    pub fn fee_money(&self) -> Money {
        Money::new(self.fee, self.currency)
    }
    pub fn net_money(&self) -> Money {
        Money::new(self.net, self.currency)
    }
    pub fn source_id(&self) -> Option<&str> {
        self.source.as_ref().map(StripeExpandable::id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_sets_parse_unknown_values() {
        let json = r#"{"id":"txn_1","object":"balance_transaction","amount":5,"currency":"usd",
            "fee":0,"net":5,"fee_details":[{"amount":0,"currency":"usd","type":"brand_new_fee"}],
            "exchange_rate":null,"type":"quantum_settlement","reporting_category":"space_fee",
            "source":null}"#;
        let bt: StripeBalanceTransaction = serde_json::from_str(json).unwrap();
        assert_eq!(
            bt.kind,
            StripeBalanceTransactionType::Other("quantum_settlement".into())
        );
        assert_eq!(bt.reporting_category.as_str(), "space_fee");
        assert!(!bt.reporting_category.is_known());
        assert_eq!(bt.fee_details[0].fee_type.as_str(), "brand_new_fee");
        let back = serde_json::to_value(&bt).unwrap();
        assert_eq!(back["reporting_category"], "space_fee");
        assert_eq!(
            StripeReportingCategory::parse("dispute"),
            StripeReportingCategory::Dispute
        );
    }

    #[test]
    fn exchange_rate_is_exact() {
        let json = r#"{"id":"txn_1","amount":10870,"currency":"usd","fee":0,"net":10870,
            "exchange_rate":1.087,"type":"charge","reporting_category":"charge",
            "source":{"id":"ch_1","object":"charge","amount":10000,"currency":"eur"}}"#;
        let bt: StripeBalanceTransaction = serde_json::from_str(json).unwrap();
        assert_eq!(bt.exchange_rate, Some(Decimal::from_str("1.087").unwrap()));
        assert_eq!(bt.source_id(), Some("ch_1"));
        let src = bt
            .source
            .as_ref()
            .and_then(StripeExpandable::object)
            .unwrap();
        assert_eq!(src.currency, Some(Currency::EUR));
        // long rates survive digit for digit
        let json = json.replace("1.087", "0.00912345678901234567");
        let bt: StripeBalanceTransaction = serde_json::from_str(&json).unwrap();
        assert_eq!(
            bt.exchange_rate.unwrap().to_string(),
            "0.00912345678901234567"
        );
    }

    #[test]
    fn bad_values_are_errors_not_panics() {
        for bad in [
            r#"{"id":"t","amount":"x","currency":"usd","type":"charge","reporting_category":"charge"}"#,
            r#"{"id":"t","amount":1,"currency":"usdollar","type":"charge","reporting_category":"charge"}"#,
            r#"{"id":"t","amount":1,"currency":"usd","exchange_rate":"abc","type":"charge","reporting_category":"charge"}"#,
            r#"{"id":"t","amount":99999999999999999999,"currency":"usd","type":"charge","reporting_category":"charge"}"#,
        ] {
            assert!(
                serde_json::from_str::<StripeBalanceTransaction>(bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn payout_listing_and_single_transactions() {
        use crate::objects::fixtures::*;
        use crate::StripeList;
        let page: StripeList<StripeBalanceTransaction> = parse(repo_fixture!(
            "api/balance_transactions.payout_po_1AlsD8Nq7LbKx2RzLQZWGamE.json"
        ));
        assert!(!page.has_more);
        let payout_entries: Vec<_> = page
            .data
            .iter()
            .filter(|bt| bt.kind == StripeBalanceTransactionType::Payout)
            .collect();
        assert_eq!(payout_entries.len(), 1);
        assert_eq!(payout_entries[0].amount, -30084);
        let paid_out: i64 = page
            .data
            .iter()
            .filter(|bt| bt.kind != StripeBalanceTransactionType::Payout)
            .map(|bt| bt.net)
            .sum();
        assert_eq!(paid_out, 30084);
        for bt in &page.data {
            assert_eq!(bt.net, bt.amount - bt.fee, "{}", bt.id);
            assert_eq!(
                bt.fee,
                bt.fee_details.iter().map(|d| d.amount).sum::<i64>(),
                "{}",
                bt.id
            );
            // standalone fees and adjustments have no source
            let sourced = !matches!(
                bt.reporting_category,
                StripeReportingCategory::Fee | StripeReportingCategory::OtherAdjustment
            );
            assert_eq!(bt.source_id().is_some(), sourced, "{}", bt.id);
        }
        for text in [
            repo_fixture!("api/balance_transaction_txn_12xMwdNq7LbKx2RzBq6kDB5I.json"),
            repo_fixture!("api/balance_transaction_txn_18rH80Nq7LbKx2RzmetiUo8h.json"),
            repo_fixture!("api/balance_transaction_txn_1ONFAcNq7LbKx2RzBumZQdFL.json"),
        ] {
            let bt: StripeBalanceTransaction = parse(text);
            assert!(bt.id.starts_with("txn_"));
            assert!(bt.reporting_category.is_known(), "{}", bt.id);
        }
        let old: StripeBalanceTransaction = parse(old_fixture!("balance_transaction"));
        assert_eq!(old.id, "txn_1NnmMBGPxmnHQRkJNo4jmMSX");
    }
}
