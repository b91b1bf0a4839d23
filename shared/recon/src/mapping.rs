//! Which GL account each part of a payout goes to. Deserialises from TOML or JSON.

use ledgerbridge_core::money::Rounding;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Summarised lines (one per category / fee type) or one line per balance transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetailLevel {
    #[default]
    Summary,
    PerTransaction,
}

/// What a failed payout produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailedPayoutPolicy {
    /// A journal moving the amount from the bank back to `failed_payout_account`.
    #[default]
    Reverse,
    /// No journal; a discrepancy entry for an operator.
    Flag,
}

/// What a manual payout (whose transactions Stripe cannot list) produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManualPayoutPolicy {
    /// No journal; a "needs review" entry.
    #[default]
    FlagForReview,
    /// Reconstruct from the balance transactions of a date window supplied by the caller.
    ReconstructByWindow,
}

/// GL accounts for a payout journal (all strings are the ERP's account codes).
///
/// ```toml
/// bank_account = "1010"
/// suspense_account = "1999"
/// variance_account = "6990"
/// fx_account = "7800"
/// default_fee_account = "6100"
/// failed_payout_account = "1150"
/// [category_accounts]
/// charge = "1150"
/// refund = "4900"
/// [fee_accounts]
/// stripe_fee = "6100"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconMapping {
    /// The bank account the payout lands in (debited with the payout amount).
    pub bank_account: String,
    /// `reporting_category` → account for the transactions' gross `amount`. A category without
    /// an entry is unknown: it goes to `suspense_account` and into the report.
    pub category_accounts: BTreeMap<String, String>,
    /// `fee_details[].type` → account for the fees.
    #[serde(default)]
    pub fee_accounts: BTreeMap<String, String>,
    /// Fees of a type not in `fee_accounts`, and fee not explained by `fee_details`.
    pub default_fee_account: String,
    /// Unknown categories.
    pub suspense_account: String,
    /// The difference when the lines do not sum to the payout amount.
    pub variance_account: String,
    /// FX gains and losses on charges in another currency than the settlement currency.
    pub fx_account: String,
    /// Debited when a payout fails (funds back on the Stripe balance).
    pub failed_payout_account: String,
    #[serde(default)]
    pub rounding: Rounding,
    #[serde(default)]
    pub detail: DetailLevel,
    #[serde(default)]
    pub failed_payout: FailedPayoutPolicy,
    #[serde(default)]
    pub manual_payout: ManualPayoutPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid reconciliation mapping: {0}")]
pub struct MappingError(pub String);

impl ReconMapping {
    /// Every account non-empty (every empty one listed).
    pub fn validate(&self) -> Result<(), MappingError> {
        let named = [
            ("bank_account", &self.bank_account),
            ("default_fee_account", &self.default_fee_account),
            ("suspense_account", &self.suspense_account),
            ("variance_account", &self.variance_account),
            ("fx_account", &self.fx_account),
            ("failed_payout_account", &self.failed_payout_account),
        ];
        let mut problems = Vec::new();
        for (name, value) in named {
            if value.trim().is_empty() {
                problems.push(format!("{name} is empty"));
            }
        }
        for (k, v) in self
            .category_accounts
            .iter()
            .chain(self.fee_accounts.iter())
        {
            if v.trim().is_empty() {
                problems.push(format!("account for {k} is empty"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(MappingError(problems.join("; ")))
        }
    }

    /// Every GL account the file names, with its key (`mapping.bank_account`, …).
    pub fn gl_accounts(&self) -> Vec<ledgerbridge_erp::check::Named> {
        use ledgerbridge_erp::check::Named;
        let mut out = vec![Named::new("mapping.bank_account", &self.bank_account)];
        for (k, v) in &self.category_accounts {
            out.push(Named::new(format!("mapping.category_accounts.{k}"), v));
        }
        for (k, v) in &self.fee_accounts {
            out.push(Named::new(format!("mapping.fee_accounts.{k}"), v));
        }
        for (origin, v) in [
            ("mapping.default_fee_account", &self.default_fee_account),
            ("mapping.suspense_account", &self.suspense_account),
            ("mapping.variance_account", &self.variance_account),
            ("mapping.fx_account", &self.fx_account),
            ("mapping.failed_payout_account", &self.failed_payout_account),
        ] {
            out.push(Named::new(origin, v));
        }
        out
    }

    pub fn category_account(&self, category: &str) -> Option<&str> {
        self.category_accounts.get(category).map(String::as_str)
    }

    pub fn fee_account(&self, fee_type: &str) -> &str {
        self.fee_accounts
            .get(fee_type)
            .map_or(self.default_fee_account.as_str(), String::as_str)
    }
}
