//! Streaming aggregation: one balance transaction at a time, constant memory in summary mode.

use crate::error::ReconError;
use crate::journal::{CategorySummary, JournalKind, JournalLine, LineKind, PayoutJournal};
use crate::mapping::{DetailLevel, ReconMapping};
use crate::report::{Discrepancy, DiscrepancyKind, DiscrepancyReport};
use ledgerbridge_core::currency::Currency;
use ledgerbridge_core::ids::PayoutId;
use ledgerbridge_core::money::Money;
use ledgerbridge_stripe::{
    StripeBalanceTransaction, StripeBalanceTransactionType, StripeFeeType, StripeReportingCategory,
};
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// The FX rate the ERP used when it booked a foreign-currency receipt, so the FX line carries
/// the real gain or loss. Without one, Stripe's own `exchange_rate` is used and the FX line
/// holds only the rounding difference (usually none).
pub trait FxRateLookup: Send + Sync {
    /// Rate from `from` to `to` (major units) at `at` (Unix seconds).
    fn booked_rate(&self, from: Currency, to: Currency, at: i64) -> Option<Decimal>;
}

/// No booked rates: Stripe's `exchange_rate` applies.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBookedRates;

impl FxRateLookup for NoBookedRates {
    fn booked_rate(&self, _: Currency, _: Currency, _: i64) -> Option<Decimal> {
        None
    }
}

/// Running totals of one `reporting_category`, in minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryTotals {
    pub category: StripeReportingCategory,
    pub known: bool,
    pub count: u64,
    pub amount: i128,
    pub fee: i128,
    pub net: i128,
    /// Part of `amount` moved to the FX line.
    pub fx: i128,
    /// A few transaction ids (unknown categories only), for the report.
    samples: Vec<String>,
}

const UNKNOWN_SAMPLES: usize = 20;
const UNEXPLAINED_FEE: &str = "unexplained";

/// Folds a payout's balance transactions into a journal. Feed every entry of the listing
/// (including the payout's own entry) to [`push`](Self::push), then call
/// [`finish`](Self::finish).
pub struct PayoutAggregator<'a> {
    mapping: &'a ReconMapping,
    fx_rates: &'a dyn FxRateLookup,
    payout: PayoutId,
    currency: Currency,
    cats: Vec<CategoryTotals>,
    fees: Vec<(StripeFeeType, i128)>,
    unexplained_fee: i128,
    payout_entries_net: i128,
    payout_entries: u64,
    count: u64,
    details: Vec<JournalLine>,
    report: DiscrepancyReport,
}

impl<'a> PayoutAggregator<'a> {
    pub fn new(
        mapping: &'a ReconMapping,
        fx_rates: &'a dyn FxRateLookup,
        payout: PayoutId,
        currency: Currency,
    ) -> Self {
        PayoutAggregator {
            mapping,
            fx_rates,
            report: DiscrepancyReport::new(payout.clone()),
            payout,
            currency,
            cats: Vec::new(),
            fees: Vec::new(),
            unexplained_fee: 0,
            payout_entries_net: 0,
            payout_entries: 0,
            count: 0,
            details: Vec::new(),
        }
    }

    /// Transactions folded in so far (excluding the payout's own entry).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The report so far (the caller adds unsynced sources to it).
    pub fn report_mut(&mut self) -> &mut DiscrepancyReport {
        &mut self.report
    }

    pub fn push(&mut self, bt: &StripeBalanceTransaction) -> Result<(), ReconError> {
        if bt.currency != self.currency {
            return Err(ReconError::CurrencyMismatch {
                transaction: bt.id.clone(),
                expected: self.currency,
                found: bt.currency,
            });
        }
        if bt.kind == StripeBalanceTransactionType::Payout {
            self.payout_entries += 1;
            self.payout_entries_net += i128::from(bt.net);
            return Ok(());
        }
        self.count += 1;
        let (amount, fee, net) = (
            i128::from(bt.amount),
            i128::from(bt.fee),
            i128::from(bt.net),
        );
        if net != amount - fee {
            self.report.push(self.entry(
                DiscrepancyKind::NetMismatch,
                bt,
                Some(bt.net_money()),
                format!("net {} ≠ amount {} − fee {}", bt.net, bt.amount, bt.fee),
            ));
        }

        // fees by type
        let mut explained: i128 = 0;
        for fd in &bt.fee_details {
            if fd.currency != self.currency {
                continue; // counted as unexplained below
            }
            explained += i128::from(fd.amount);
            match self.fees.iter_mut().find(|(t, _)| *t == fd.fee_type) {
                Some((_, sum)) => *sum += i128::from(fd.amount),
                None => self.fees.push((fd.fee_type.clone(), i128::from(fd.amount))),
            }
        }
        let unexplained = fee - explained;
        if unexplained != 0 {
            self.unexplained_fee += unexplained;
            self.report.push(self.entry(
                DiscrepancyKind::FeeDetailMismatch,
                bt,
                Some(bt.fee_money()),
                format!("fee {} ≠ Σ fee_details {explained}", bt.fee),
            ));
        }

        // FX: the part of the amount that is not the booked value of the presentment amount
        let fx = self.fx_part(bt)?;

        let idx = match self
            .cats
            .iter()
            .position(|c| c.category == bt.reporting_category)
        {
            Some(i) => i,
            None => {
                let known = self
                    .mapping
                    .category_account(bt.reporting_category.as_str())
                    .is_some();
                self.cats.push(CategoryTotals {
                    category: bt.reporting_category.clone(),
                    known,
                    count: 0,
                    amount: 0,
                    fee: 0,
                    net: 0,
                    fx: 0,
                    samples: Vec::new(),
                });
                self.cats.len() - 1
            }
        };
        let cat = &mut self.cats[idx];
        cat.count += 1;
        cat.amount += amount;
        cat.fee += fee;
        cat.net += net;
        cat.fx += fx;
        let known = cat.known;
        if !known && cat.samples.len() < UNKNOWN_SAMPLES {
            cat.samples.push(bt.id.clone());
        }

        if self.mapping.detail == DetailLevel::PerTransaction {
            self.detail_lines(bt, known, fx, unexplained)?;
        }
        Ok(())
    }

    fn fx_part(&mut self, bt: &StripeBalanceTransaction) -> Result<i128, ReconError> {
        let Some(rate) = bt.exchange_rate else {
            return Ok(0);
        };
        let source = bt.source.as_ref().and_then(|s| s.object());
        let (Some(src_amount), Some(src_currency)) = (
            source.and_then(|s| s.amount),
            source.and_then(|s| s.currency),
        ) else {
            self.report.push(self.entry(
                DiscrepancyKind::FxSourceUnknown,
                bt,
                Some(bt.amount_money()),
                format!("exchange_rate {rate} but the source was not expanded; no FX split"),
            ));
            return Ok(0);
        };
        if src_currency == self.currency {
            return Ok(0);
        }
        let rate = self
            .fx_rates
            .booked_rate(src_currency, self.currency, bt.created)
            .unwrap_or(rate);
        // the source amount is unsigned (a refund of 10 EUR); the transaction carries the sign
        let presentment = Money::new(src_amount.abs(), src_currency).to_decimal();
        let presentment = if bt.amount < 0 {
            -presentment
        } else {
            presentment
        };
        let value = presentment.checked_mul(rate).ok_or(ReconError::Money(
            ledgerbridge_core::money::MoneyError::Overflow(self.currency),
        ))?;
        let booked = Money::from_decimal_rounded(value, self.currency, self.mapping.rounding)?;
        Ok(i128::from(bt.amount) - i128::from(booked.minor))
    }

    fn detail_lines(
        &mut self,
        bt: &StripeBalanceTransaction,
        known: bool,
        fx: i128,
        unexplained: i128,
    ) -> Result<(), ReconError> {
        let cat = bt.reporting_category.as_str();
        let memo = format!(
            "{} {} {}",
            bt.id,
            bt.source_id().unwrap_or("-"),
            bt.description.as_deref().unwrap_or("")
        );
        let memo = memo.trim_end().to_owned();
        let (account, kind) = match self.mapping.category_account(cat) {
            Some(a) if known => (a.to_owned(), LineKind::Category(cat.to_owned())),
            _ => (
                self.mapping.suspense_account.clone(),
                LineKind::Suspense(cat.to_owned()),
            ),
        };
        let cur = self.currency;
        let mut push = |account: &str, debit: i128, kind: LineKind, memo: String| {
            let m = money(debit, cur)?;
            if let Some(mut l) = JournalLine::from_signed(account, m, memo, kind)? {
                l.balance_transaction = Some(bt.id.clone());
                self.details.push(l);
            }
            Ok::<(), ReconError>(())
        };
        push(&account, -(i128::from(bt.amount) - fx), kind, memo.clone())?;
        if fx != 0 {
            push(
                &self.mapping.fx_account,
                -fx,
                LineKind::Fx,
                format!("FX {memo}"),
            )?;
        }
        for fd in bt.fee_details.iter().filter(|fd| fd.currency == cur) {
            let t = fd.fee_type.as_str();
            push(
                self.mapping.fee_account(t),
                i128::from(fd.amount),
                LineKind::Fee(t.into()),
                format!("{t} {memo}"),
            )?;
        }
        if unexplained != 0 {
            push(
                &self.mapping.default_fee_account,
                unexplained,
                LineKind::Fee(UNEXPLAINED_FEE.into()),
                format!("fee without detail {memo}"),
            )?;
        }
        Ok(())
    }

    fn entry(
        &self,
        kind: DiscrepancyKind,
        bt: &StripeBalanceTransaction,
        amount: Option<Money>,
        detail: String,
    ) -> Discrepancy {
        Discrepancy {
            kind,
            balance_transaction: Some(bt.id.clone()),
            source: bt.source_id().map(str::to_owned),
            category: Some(bt.reporting_category.as_str().to_owned()),
            amount,
            detail,
        }
    }

    /// Close the journal. `payout_amount` is the payout object's amount (what the bank
    /// receives); `date` the posting date (the arrival date). Lines that do not sum to it get a
    /// variance line and a report entry.
    pub fn finish(
        mut self,
        payout_amount: Money,
        date: i64,
        kind: JournalKind,
    ) -> Result<(PayoutJournal, DiscrepancyReport), ReconError> {
        let cur = self.currency;
        if payout_amount.currency != cur {
            return Err(ReconError::CurrencyMismatch {
                transaction: self.payout.to_string(),
                expected: cur,
                found: payout_amount.currency,
            });
        }
        let payout = i128::from(payout_amount.minor);
        if self.payout_entries > 0 && -self.payout_entries_net != payout {
            self.report.push(Discrepancy {
                kind: DiscrepancyKind::PayoutAmountMismatch,
                balance_transaction: None,
                source: Some(self.payout.to_string()),
                category: Some("payout".into()),
                amount: Some(money(-self.payout_entries_net, cur)?),
                detail: format!(
                    "payout entries total {} but the payout amount is {}",
                    money(-self.payout_entries_net, cur)?,
                    payout_amount
                ),
            });
        }

        let mut lines = Vec::new();
        let id = self.payout.to_string();
        let mut add = |account: &str, debit: i128, kind: LineKind, memo: String| {
            if let Some(l) = JournalLine::from_signed(account, money(debit, cur)?, memo, kind)? {
                lines.push(l);
            }
            Ok::<(), ReconError>(())
        };
        add(
            &self.mapping.bank_account,
            payout,
            LineKind::Bank,
            format!("Stripe payout {id}"),
        )?;

        self.cats
            .sort_by(|a, b| a.category.as_str().cmp(b.category.as_str()));
        let mut total_fx: i128 = 0;
        let mut sum_amount_less_fee: i128 = 0;
        let mut by_category = BTreeMap::new();
        for c in &self.cats {
            let name = c.category.as_str();
            total_fx += c.fx;
            sum_amount_less_fee += c.amount - c.fee;
            by_category.insert(
                name.to_owned(),
                CategorySummary {
                    count: c.count,
                    amount: money(c.amount, cur)?,
                    fee: money(c.fee, cur)?,
                    net: money(c.net, cur)?,
                },
            );
            if self.mapping.detail == DetailLevel::Summary {
                let memo = format!("{id} {name} ({} transactions)", c.count);
                match self.mapping.category_account(name) {
                    Some(account) if c.known => add(
                        account,
                        -(c.amount - c.fx),
                        LineKind::Category(name.into()),
                        memo,
                    )?,
                    _ => add(
                        &self.mapping.suspense_account,
                        -(c.amount - c.fx),
                        LineKind::Suspense(name.into()),
                        memo,
                    )?,
                }
            }
            if !c.known {
                self.report.push(Discrepancy {
                    kind: DiscrepancyKind::UnknownCategory,
                    balance_transaction: c.samples.first().cloned(),
                    source: None,
                    category: Some(name.to_owned()),
                    amount: Some(money(c.net, cur)?),
                    detail: format!(
                        "{} transaction(s) of unmapped category {name:?} posted to suspense account {}; e.g. {}",
                        c.count,
                        self.mapping.suspense_account,
                        c.samples.join(" ")
                    ),
                });
            }
        }

        let mut by_fee_type = BTreeMap::new();
        self.fees.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        for (t, sum) in &self.fees {
            by_fee_type.insert(t.as_str().to_owned(), money(*sum, cur)?);
        }
        if self.unexplained_fee != 0 {
            by_fee_type.insert(
                UNEXPLAINED_FEE.to_owned(),
                money(self.unexplained_fee, cur)?,
            );
        }
        if self.mapping.detail == DetailLevel::Summary {
            if total_fx != 0 {
                add(
                    &self.mapping.fx_account,
                    -total_fx,
                    LineKind::Fx,
                    format!("{id} FX"),
                )?;
            }
            for (t, sum) in &self.fees {
                let t = t.as_str();
                add(
                    self.mapping.fee_account(t),
                    *sum,
                    LineKind::Fee(t.into()),
                    format!("{id} fees {t}"),
                )?;
            }
            if self.unexplained_fee != 0 {
                add(
                    &self.mapping.default_fee_account,
                    self.unexplained_fee,
                    LineKind::Fee(UNEXPLAINED_FEE.into()),
                    format!("{id} fees without detail"),
                )?;
            }
        }

        // variance: the lines credit Σ(amount − fee); the bank is debited the payout amount
        let variance = sum_amount_less_fee - payout;
        if variance != 0 {
            add(
                &self.mapping.variance_account,
                variance,
                LineKind::Variance,
                format!("{id} reconciliation variance"),
            )?;
            self.report.push(Discrepancy {
                kind: DiscrepancyKind::TotalMismatch,
                balance_transaction: None,
                source: Some(id.clone()),
                category: None,
                amount: Some(money(variance, cur)?),
                detail: format!(
                    "transactions sum to {} but the payout is {}; difference posted to variance account {}",
                    money(sum_amount_less_fee, cur)?,
                    payout_amount,
                    self.mapping.variance_account
                ),
            });
        }
        let mut all = lines;
        all.append(&mut self.details);
        let journal = PayoutJournal::new(
            self.payout,
            kind,
            cur,
            payout_amount,
            date,
            all,
            by_category,
            by_fee_type,
            self.count,
        )?;
        Ok((journal, self.report))
    }
}

fn money(v: i128, currency: Currency) -> Result<Money, ReconError> {
    i64::try_from(v)
        .map(|m| Money::new(m, currency))
        .map_err(|_| ReconError::Money(ledgerbridge_core::money::MoneyError::Overflow(currency)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Side;
    use crate::mapping::FailedPayoutPolicy;
    use ledgerbridge_core::money::Rounding;
    use ledgerbridge_stripe::{StripeExpandable, StripeFeeDetail};
    use proptest::prelude::*;

    fn mapping(detail: DetailLevel) -> ReconMapping {
        ReconMapping {
            bank_account: "bank".into(),
            category_accounts: [
                ("charge", "clearing"),
                ("refund", "refunds"),
                ("fee", "fees"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            fee_accounts: BTreeMap::from([("stripe_fee".into(), "fees".into())]),
            default_fee_account: "other_fees".into(),
            suspense_account: "suspense".into(),
            variance_account: "variance".into(),
            fx_account: "fx".into(),
            failed_payout_account: "receivable".into(),
            rounding: Rounding::HalfEven,
            detail,
            failed_payout: FailedPayoutPolicy::Reverse,
            manual_payout: Default::default(),
        }
    }

    fn bt(
        i: usize,
        amount: i64,
        fees: &[(u8, i64)],
        cat: u8,
        net_skew: i64,
    ) -> StripeBalanceTransaction {
        let cats = ["charge", "refund", "fee", "mystery", "dispute"];
        let fee_types = ["stripe_fee", "application_fee", "tax"];
        let fee_details: Vec<StripeFeeDetail> = fees
            .iter()
            .map(|(t, a)| StripeFeeDetail {
                amount: *a,
                currency: Currency::USD,
                description: None,
                fee_type: StripeFeeType::parse(fee_types[usize::from(*t) % 3]),
            })
            .collect();
        let fee: i64 = fee_details.iter().map(|f| f.amount).sum::<i64>() + net_skew;
        StripeBalanceTransaction {
            id: format!("txn_{i}"),
            amount,
            currency: Currency::USD,
            fee,
            net: amount - fee,
            fee_details,
            exchange_rate: None,
            kind: StripeBalanceTransactionType::parse("charge"),
            reporting_category: StripeReportingCategory::parse(cats[usize::from(cat) % 5]),
            source: Some(StripeExpandable::Id(format!("ch_{i}"))),
            description: None,
            created: 0,
            available_on: 0,
            status: None,
        }
    }

    proptest! {
        /// Whatever the transactions and the payout amount, the journal balances; the variance
        /// line is exactly the payout amount minus Σ(amount − fee); unknown categories are
        /// reported, and summary and detail agree per account.
        #[test]
        fn journal_always_balances(
            txns in proptest::collection::vec(
                (-1_000_000i64..1_000_000, proptest::collection::vec((0u8..3, -500i64..5_000), 0..3), 0u8..5, -3i64..3),
                0..60),
            payout_delta in -1000i64..1000,
        ) {
            let bts: Vec<_> = txns.iter().enumerate().map(|(i, (a, f, c, s))| bt(i, *a, f, *c, *s)).collect();
            let sum: i64 = bts.iter().map(|t| t.amount - t.fee).sum();
            let payout = Money::new(sum + payout_delta, Currency::USD);
            let mut per_account = Vec::new();
            for detail in [DetailLevel::Summary, DetailLevel::PerTransaction] {
                let m = mapping(detail);
                let mut agg = PayoutAggregator::new(&m, &NoBookedRates, PayoutId::new("po"), Currency::USD);
                for t in &bts {
                    agg.push(t).unwrap();
                }
                let (j, report) = agg.finish(payout, 0, JournalKind::Payout).unwrap();
                prop_assert_eq!(j.total_debits().unwrap(), j.total_credits().unwrap());
                let variance: i64 = j.lines().iter().filter(|l| l.kind == LineKind::Variance).map(|l| l.signed_minor()).sum();
                prop_assert_eq!(variance, -payout_delta);
                prop_assert_eq!(report.count(DiscrepancyKind::TotalMismatch), usize::from(payout_delta != 0));
                let unknown = bts.iter().any(|t| matches!(t.reporting_category.as_str(), "mystery" | "dispute"));
                prop_assert_eq!(report.count(DiscrepancyKind::UnknownCategory) > 0, unknown);
                prop_assert!(j.lines().iter().all(|l| l.amount.minor > 0));
                let mut acc: BTreeMap<String, i64> = BTreeMap::new();
                for l in j.lines() {
                    *acc.entry(l.account.clone()).or_default() += l.signed_minor();
                }
                acc.retain(|_, v| *v != 0);
                per_account.push(acc);
            }
            prop_assert_eq!(&per_account[0], &per_account[1]);
        }
    }

    #[test]
    fn other_currency_is_a_typed_error() {
        let m = mapping(DetailLevel::Summary);
        let mut agg = PayoutAggregator::new(&m, &NoBookedRates, PayoutId::new("po"), Currency::USD);
        let mut t = bt(1, 100, &[], 0, 0);
        t.currency = Currency::EUR;
        assert!(matches!(
            agg.push(&t),
            Err(ReconError::CurrencyMismatch { .. })
        ));
        let _ = Side::Debit;
    }
}
