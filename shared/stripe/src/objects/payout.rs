//! `payout`: an automatic payout's balance transactions can be listed by payout; a manual
//! one's cannot (`automatic: false`).

use super::{
    expandable_id, null_default, stripe_object, Expandable, Metadata, StripeBalanceTransaction,
};
use ledgerbridge_core::currency::Currency;
use ledgerbridge_core::money::Money;
use serde::{Deserialize, Serialize};

/// `payout`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripePayout {
    pub id: String,
    pub amount: i64,
    pub currency: Currency,
    #[serde(default)]
    pub arrival_date: i64,
    #[serde(default)]
    pub created: i64,
    /// `false` for manual payouts, whose transactions Stripe cannot list.
    #[serde(default = "default_true")]
    pub automatic: bool,
    #[serde(default)]
    pub balance_transaction: Option<Expandable<StripeBalanceTransaction>>,
    /// The entry that returned the money of a failed payout.
    #[serde(default)]
    pub failure_balance_transaction: Option<Expandable<StripeBalanceTransaction>>,
    #[serde(default)]
    pub failure_code: Option<String>,
    #[serde(default)]
    pub failure_message: Option<String>,
    #[serde(default)]
    pub method: Option<String>,
    /// `not_applicable`, `in_progress` or `completed`.
    #[serde(default)]
    pub reconciliation_status: Option<String>,
    /// `paid`, `pending`, `in_transit`, `canceled` or `failed`.
    #[serde(default, deserialize_with = "null_default")]
    pub status: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub destination: Option<String>,
    #[serde(default)]
    pub statement_descriptor: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub metadata: Metadata,
}

stripe_object!(StripePayout => "payout",);

fn default_true() -> bool {
    true
}

impl StripePayout {
    pub fn amount_money(&self) -> Money {
        Money::new(self.amount, self.currency)
    }

    pub fn balance_transaction_id(&self) -> Option<&str> {
        expandable_id(&self.balance_transaction)
    }

    pub fn failure_balance_transaction_id(&self) -> Option<&str> {
        expandable_id(&self.failure_balance_transaction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::fixtures::*;

    #[test]
    fn paid_and_failed_payouts_from_events_and_api() {
        let paid: StripePayout = event_object(repo_fixture!("events/payout.paid.json"));
        assert_eq!(paid.id, "po_1AlsD8Nq7LbKx2RzLQZWGamE");
        assert_eq!(paid.amount_money(), Money::new(30084, Currency::USD));
        assert!(paid.automatic);
        assert_eq!(paid.status, "paid");
        assert_eq!(paid.reconciliation_status.as_deref(), Some("completed"));
        let fetched: StripePayout =
            parse(repo_fixture!("api/payout_po_1AlsD8Nq7LbKx2RzLQZWGamE.json"));
        assert_eq!(fetched.id, paid.id);
        assert_eq!(fetched.amount, paid.amount);

        let failed: StripePayout = event_object(repo_fixture!("events/payout.failed.json"));
        assert_eq!(failed.status, "failed");
        assert_eq!(failed.amount, 18990);
        assert_eq!(failed.failure_code.as_deref(), Some("account_closed"));
        assert_eq!(
            failed.failure_balance_transaction_id(),
            Some("txn_12xMwdNq7LbKx2RzBq6kDB5I")
        );
        assert_eq!(
            failed.balance_transaction_id(),
            Some("txn_18rH80Nq7LbKx2RzmetiUo8h")
        );
    }

    #[test]
    fn older_version_and_expanded_balance_transaction() {
        let old: StripePayout = parse(old_fixture!("payout"));
        assert_eq!(old.id, "po_1NnmXDGPxmnHQRkJBs2u30y2");
        assert_eq!(old.currency, Currency::USD);
        let expanded: StripePayout = serde_json::from_str(
            r#"{"id":"po_1","amount":5,"currency":"usd","status":"paid","metadata":null,
            "balance_transaction":{"id":"txn_1","amount":-5,"currency":"usd","fee":0,"net":-5,
            "type":"payout","reporting_category":"payout","source":"po_1"}}"#,
        )
        .unwrap();
        assert_eq!(expanded.balance_transaction_id(), Some("txn_1"));
        assert!(expanded.automatic, "absent means automatic");
        assert_eq!(expanded.failure_balance_transaction_id(), None);
    }
}
