//! The payout journal: balanced by construction (checked, typed error otherwise).

use ledgerbridge_core::currency::Currency;
use ledgerbridge_core::ids::PayoutId;
use ledgerbridge_core::money::{Money, MoneyError};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Debit,
    Credit,
}

/// What a line stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum LineKind {
    /// The payout into the bank account.
    Bank,
    /// Gross amounts of a mapped `reporting_category`.
    Category(String),
    /// Fees of one `fee_details[].type` (or `unexplained` for fee without details).
    Fee(String),
    /// FX difference on charges in another currency.
    Fx,
    /// An unmapped `reporting_category`, parked in suspense.
    Suspense(String),
    /// The difference between the lines and the payout amount.
    Variance,
    /// The bank/clearing pair of a failed payout.
    FailedPayout,
}

impl LineKind {
    /// Short label, e.g. `category:charge`, `fee:stripe_fee`, `bank`.
    pub fn label(&self) -> String {
        match self {
            LineKind::Bank => "bank".into(),
            LineKind::Category(c) => format!("category:{c}"),
            LineKind::Fee(t) => format!("fee:{t}"),
            LineKind::Fx => "fx".into(),
            LineKind::Suspense(c) => format!("suspense:{c}"),
            LineKind::Variance => "variance".into(),
            LineKind::FailedPayout => "failed_payout".into(),
        }
    }
}

/// One journal line: a non-negative amount on one side of one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalLine {
    pub account: String,
    pub side: Side,
    /// Never negative.
    pub amount: Money,
    pub memo: String,
    pub kind: LineKind,
    /// The balance transaction of a per-transaction detail line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance_transaction: Option<String>,
}

impl JournalLine {
    /// A line from a signed amount: positive = debit, negative = credit. `None` for zero.
    pub fn from_signed(
        account: &str,
        debit_positive: Money,
        memo: String,
        kind: LineKind,
    ) -> Result<Option<JournalLine>, MoneyError> {
        if debit_positive.is_zero() {
            return Ok(None);
        }
        let (side, amount) = if debit_positive.minor > 0 {
            (Side::Debit, debit_positive)
        } else {
            (Side::Credit, debit_positive.checked_neg()?)
        };
        Ok(Some(JournalLine {
            account: account.to_owned(),
            side,
            amount,
            memo,
            kind,
            balance_transaction: None,
        }))
    }

    /// Debit positive, credit negative, in minor units.
    pub fn signed_minor(&self) -> i64 {
        match self.side {
            Side::Debit => self.amount.minor,
            Side::Credit => -self.amount.minor,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalKind {
    Payout,
    FailedPayoutReversal,
    ManualPayoutReconstruction,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    #[error("journal does not balance: debits {debits} ≠ credits {credits}")]
    Unbalanced { debits: Money, credits: Money },
    #[error("line {index} is in {found}, the journal is in {expected}")]
    CurrencyMismatch {
        index: usize,
        expected: Currency,
        found: Currency,
    },
    #[error("line {index} has a negative amount")]
    NegativeAmount { index: usize },
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// Totals of one `reporting_category`, in the settlement currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategorySummary {
    pub count: u64,
    pub amount: Money,
    pub fee: Money,
    pub net: Money,
}

/// One balanced journal per payout, in the settlement currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutJournal {
    pub payout: PayoutId,
    pub kind: JournalKind,
    pub currency: Currency,
    /// What reached (or, for a failed payout, left) the bank.
    pub payout_amount: Money,
    /// Posting date (Unix seconds): the payout's arrival date.
    pub date: i64,
    lines: Vec<JournalLine>,
    /// Per `reporting_category` (excluding the payout's own entry).
    pub by_category: std::collections::BTreeMap<String, CategorySummary>,
    /// Per `fee_details[].type`.
    pub by_fee_type: std::collections::BTreeMap<String, Money>,
    /// Balance transactions folded in (excluding the payout's own entry).
    pub transaction_count: u64,
}

impl PayoutJournal {
    /// Build a journal; fails unless Σ debits = Σ credits to the minor unit, every line is in
    /// `currency` and no amount is negative.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        payout: PayoutId,
        kind: JournalKind,
        currency: Currency,
        payout_amount: Money,
        date: i64,
        lines: Vec<JournalLine>,
        by_category: std::collections::BTreeMap<String, CategorySummary>,
        by_fee_type: std::collections::BTreeMap<String, Money>,
        transaction_count: u64,
    ) -> Result<Self, JournalError> {
        check_balanced(currency, &lines)?;
        Ok(PayoutJournal {
            payout,
            kind,
            currency,
            payout_amount,
            date,
            lines,
            by_category,
            by_fee_type,
            transaction_count,
        })
    }

    pub fn lines(&self) -> &[JournalLine] {
        &self.lines
    }

    pub fn total_debits(&self) -> Result<Money, MoneyError> {
        side_total(self.currency, &self.lines, Side::Debit)
    }

    pub fn total_credits(&self) -> Result<Money, MoneyError> {
        side_total(self.currency, &self.lines, Side::Credit)
    }

    /// The lines merged per account and side-netted (one line per account), in first-seen
    /// order. Useful for ERPs that post one line per GL account.
    pub fn consolidated_by_account(&self) -> Result<Vec<JournalLine>, JournalError> {
        let mut order: Vec<(String, i64, Vec<String>)> = Vec::new();
        for line in &self.lines {
            let signed = line.signed_minor();
            match order.iter_mut().find(|(a, _, _)| *a == line.account) {
                Some((_, sum, labels)) => {
                    *sum = sum
                        .checked_add(signed)
                        .ok_or(MoneyError::Overflow(self.currency))?;
                    labels.push(line.kind.label());
                }
                None => order.push((line.account.clone(), signed, vec![line.kind.label()])),
            }
        }
        let mut out = Vec::new();
        for (account, sum, labels) in order {
            let kind = match self.lines.iter().find(|l| l.account == account) {
                Some(l) if labels.len() == 1 => l.kind.clone(),
                _ => LineKind::Category(labels.join("+")),
            };
            let memo = format!("{} {}", self.payout, labels.join(", "));
            if let Some(line) =
                JournalLine::from_signed(&account, Money::new(sum, self.currency), memo, kind)?
            {
                out.push(line);
            }
        }
        check_balanced(self.currency, &out)?;
        Ok(out)
    }

    /// Plain lines for the ERP connectors to map: account, debit/credit as exact decimals in
    /// major units and as minor units, ISO currency, memo, category label.
    pub fn plain_lines(&self) -> Vec<PlainJournalLine> {
        self.lines
            .iter()
            .map(|l| PlainJournalLine::from_line(l, &self.payout))
            .collect()
    }
}

/// A journal line with no project types in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlainJournalLine {
    pub account: String,
    /// Major units with the currency's scale (`300.84`), zero on the other side.
    pub debit: Decimal,
    pub credit: Decimal,
    pub debit_minor: i64,
    pub credit_minor: i64,
    /// ISO 4217, upper case.
    pub currency: String,
    pub memo: String,
    /// `bank`, `category:charge`, `fee:stripe_fee`, `fx`, `suspense:…`, `variance`, …
    pub category: String,
    /// A reference for the ERP document (the payout id).
    pub reference: String,
    pub balance_transaction: Option<String>,
}

impl PlainJournalLine {
    fn from_line(l: &JournalLine, payout: &PayoutId) -> Self {
        let zero = Money::zero(l.amount.currency);
        let (debit, credit) = match l.side {
            Side::Debit => (l.amount, zero),
            Side::Credit => (zero, l.amount),
        };
        PlainJournalLine {
            account: l.account.clone(),
            debit: debit.to_decimal(),
            credit: credit.to_decimal(),
            debit_minor: debit.minor,
            credit_minor: credit.minor,
            currency: l.amount.currency.code().to_owned(),
            memo: l.memo.clone(),
            category: l.kind.label(),
            reference: payout.to_string(),
            balance_transaction: l.balance_transaction.clone(),
        }
    }
}

fn side_total(currency: Currency, lines: &[JournalLine], side: Side) -> Result<Money, MoneyError> {
    ledgerbridge_core::money::checked_sum(
        currency,
        lines.iter().filter(|l| l.side == side).map(|l| l.amount),
    )
}

/// Σ debits = Σ credits to the minor unit, one currency, no negative amounts.
pub fn check_balanced(currency: Currency, lines: &[JournalLine]) -> Result<(), JournalError> {
    for (index, l) in lines.iter().enumerate() {
        if l.amount.currency != currency {
            return Err(JournalError::CurrencyMismatch {
                index,
                expected: currency,
                found: l.amount.currency,
            });
        }
        if l.amount.minor < 0 {
            return Err(JournalError::NegativeAmount { index });
        }
    }
    let debits = side_total(currency, lines, Side::Debit)?;
    let credits = side_total(currency, lines, Side::Credit)?;
    if debits != credits {
        return Err(JournalError::Unbalanced { debits, credits });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn line(account: &str, side: Side, minor: i64) -> JournalLine {
        JournalLine {
            account: account.into(),
            side,
            amount: Money::new(minor, Currency::USD),
            memo: String::new(),
            kind: LineKind::Bank,
            balance_transaction: None,
        }
    }

    fn journal(lines: Vec<JournalLine>) -> Result<PayoutJournal, JournalError> {
        PayoutJournal::new(
            PayoutId::new("po_1"),
            JournalKind::Payout,
            Currency::USD,
            Money::new(0, Currency::USD),
            0,
            lines,
            BTreeMap::new(),
            BTreeMap::new(),
            0,
        )
    }

    #[test]
    fn rejects_unbalanced_mixed_and_negative() {
        let err = journal(vec![
            line("a", Side::Debit, 100),
            line("b", Side::Credit, 99),
        ]);
        assert!(matches!(err, Err(JournalError::Unbalanced { .. })));
        let mut eur = line("b", Side::Credit, 100);
        eur.amount.currency = Currency::EUR;
        assert!(matches!(
            journal(vec![line("a", Side::Debit, 100), eur]),
            Err(JournalError::CurrencyMismatch { index: 1, .. })
        ));
        assert!(matches!(
            journal(vec![
                line("a", Side::Debit, -1),
                line("b", Side::Credit, -1)
            ]),
            Err(JournalError::NegativeAmount { index: 0 })
        ));
        assert!(journal(vec![
            line("a", Side::Debit, 100),
            line("b", Side::Credit, 100)
        ])
        .is_ok());
    }

    #[test]
    fn consolidation_nets_per_account() {
        let j = journal(vec![
            line("bank", Side::Debit, 1000),
            line("fees", Side::Debit, 30),
            line("fees", Side::Debit, 4),
            line("clearing", Side::Credit, 1034),
        ])
        .unwrap();
        let c = j.consolidated_by_account().unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(c[1].account, "fees");
        assert_eq!(c[1].amount.minor, 34);
        let plain = j.plain_lines();
        assert_eq!(plain[0].debit.to_string(), "10.00");
        assert_eq!(plain[3].credit.to_string(), "10.34");
        assert_eq!(plain[3].debit_minor, 0);
    }

    proptest! {
        /// Any set of lines is accepted exactly when its sides are equal.
        #[test]
        fn accepted_iff_balanced(amounts in proptest::collection::vec((any::<bool>(), 0i64..1_000_000_000), 0..30)) {
            let lines: Vec<_> = amounts.iter().enumerate().map(|(i, (d, m))| {
                line(&format!("a{i}"), if *d { Side::Debit } else { Side::Credit }, *m)
            }).collect();
            let debits: i64 = amounts.iter().filter(|(d, _)| *d).map(|(_, m)| m).sum();
            let credits: i64 = amounts.iter().filter(|(d, _)| !*d).map(|(_, m)| m).sum();
            prop_assert_eq!(journal(lines).is_ok(), debits == credits);
        }
    }
}
