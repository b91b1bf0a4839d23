//! Driving the aggregation from Stripe, and the other payout shapes (failed, manual).

use crate::aggregate::{FxRateLookup, PayoutAggregator};
use crate::journal::{JournalKind, JournalLine, LineKind, PayoutJournal};
use crate::mapping::{FailedPayoutPolicy, ManualPayoutPolicy, ReconMapping};
use crate::report::{Discrepancy, DiscrepancyKind, DiscrepancyReport};
use ledgerbridge_core::ids::{IdempotencyKey, PayoutId, StripeObjectId};
use ledgerbridge_core::keys::PayoutJournalKey;
use ledgerbridge_core::ports::{StoreError, XrefStore};
use ledgerbridge_stripe::{
    BalanceTransactionPages, BalanceTransactionQuery, StripeApi, StripeBalanceTransaction,
    StripePayout, StripeReportingCategory,
};
use std::collections::BTreeMap;
use std::future::Future;

/// The reconciliation's error, defined below the aggregation (which raises it too).
pub use crate::error::ReconError;

/// The key under which a payout's journal is claimed and posted exactly once, whatever
/// triggered it (`payout.paid`, `payout.reconciliation_completed`, the sweep schedule).
pub fn journal_idempotency_key(payout: &PayoutId, kind: &JournalKind) -> IdempotencyKey {
    let key = match kind {
        JournalKind::Payout | JournalKind::ManualPayoutReconstruction => {
            PayoutJournalKey::journal(payout)
        }
        JournalKind::FailedPayoutReversal => PayoutJournalKey::failure_reversal(payout),
    };
    key.into()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReconStatus {
    /// A journal to post.
    Journal,
    /// No journal; an operator must look (manual payout, flagged failure).
    NeedsReview,
}

#[derive(Debug, Clone)]
pub struct ReconOutcome {
    pub status: ReconStatus,
    pub journal: Option<PayoutJournal>,
    pub report: DiscrepancyReport,
    /// Stripe API calls this reconciliation made.
    pub stripe_calls: u64,
}

/// Whether a balance transaction's source reached the ERP.
pub trait SyncCheck: Send + Sync {
    fn is_synced(
        &self,
        source: &str,
        category: &StripeReportingCategory,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// [`SyncCheck`] over the cross-reference store: a source counts as synced when an xref of
/// one of the document kinds configured for its category exists (in any ERP). Categories
/// without an entry are not checked.
pub struct XrefSyncCheck<'a, S> {
    pub store: &'a S,
    /// `reporting_category` → ERP document kinds, e.g. `charge` → `["cash_receipt"]`.
    pub doc_kinds: BTreeMap<String, Vec<String>>,
}

impl<S: XrefStore> SyncCheck for XrefSyncCheck<'_, S> {
    async fn is_synced(
        &self,
        source: &str,
        category: &StripeReportingCategory,
    ) -> Result<bool, StoreError> {
        let Some(kinds) = self.doc_kinds.get(category.as_str()) else {
            return Ok(true);
        };
        let id = StripeObjectId::new(source);
        for kind in kinds {
            if self.store.get_xref(&id, kind).await?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Does not check (every source counts as synced).
pub struct NoSyncCheck;

impl SyncCheck for NoSyncCheck {
    async fn is_synced(&self, _: &str, _: &StripeReportingCategory) -> Result<bool, StoreError> {
        Ok(true)
    }
}

/// Reconcile one payout: a journal for a paid automatic payout (streamed page by page), a
/// reversal or flag for a failed one, a review flag for a manual one. Stripe is read through
/// `stripe` (the client, or a test double).
pub async fn reconcile<A: StripeApi, C: SyncCheck>(
    stripe: &A,
    payout: &StripePayout,
    mapping: &ReconMapping,
    fx_rates: &dyn FxRateLookup,
    sync: &C,
) -> Result<ReconOutcome, ReconError> {
    mapping.validate()?;
    let start_calls = stripe.calls();
    let id = PayoutId::new(payout.id.clone());
    let mut outcome = match payout.status.as_str() {
        "failed" => failed_payout(stripe, payout, mapping).await?,
        "paid" if !payout.automatic => manual_payout(payout, mapping, None, fx_rates, sync).await?,
        "paid" => {
            if payout
                .reconciliation_status
                .as_deref()
                .is_some_and(|s| s != "completed")
            {
                return Err(not_ready(payout));
            }
            let mut pages =
                BalanceTransactionPages::new(stripe, BalanceTransactionQuery::payout(id.clone()));
            let mut agg = PayoutAggregator::new(mapping, fx_rates, id.clone(), payout.currency);
            while let Some(page) = pages.next_page().await? {
                fold_page(&mut agg, &page, sync).await?;
            }
            let (journal, report) = agg.finish(
                payout.amount_money(),
                payout.arrival_date,
                JournalKind::Payout,
            )?;
            ReconOutcome {
                status: ReconStatus::Journal,
                journal: Some(journal),
                report,
                stripe_calls: 0,
            }
        }
        _ => return Err(not_ready(payout)),
    };
    outcome.stripe_calls = stripe.calls().saturating_sub(start_calls);
    outcome.report.log();
    Ok(outcome)
}

fn not_ready(p: &StripePayout) -> ReconError {
    ReconError::NotReady {
        payout: p.id.clone(),
        status: p.status.clone(),
        reconciliation: p.reconciliation_status.clone().unwrap_or_default(),
    }
}

/// Fold one page, checking sources against the ERP.
pub async fn fold_page<C: SyncCheck>(
    agg: &mut PayoutAggregator<'_>,
    page: &[StripeBalanceTransaction],
    sync: &C,
) -> Result<(), ReconError> {
    for bt in page {
        agg.push(bt)?;
        if bt.kind == ledgerbridge_stripe::StripeBalanceTransactionType::Payout {
            continue;
        }
        if let Some(source) = bt.source_id() {
            if !sync.is_synced(source, &bt.reporting_category).await? {
                agg.report_mut().push(Discrepancy {
                    kind: DiscrepancyKind::UnsyncedSource,
                    balance_transaction: Some(bt.id.clone()),
                    source: Some(source.to_owned()),
                    category: Some(bt.reporting_category.as_str().to_owned()),
                    amount: Some(bt.amount_money()),
                    detail: format!("{source} was never synced to the ERP"),
                });
            }
        }
    }
    Ok(())
}

/// A failed payout: per policy, a journal moving the amount from the bank back to the Stripe
/// balance (`failed_payout_account`), or a flag. The amount comes from the failure balance
/// transaction.
pub async fn failed_payout<A: StripeApi>(
    stripe: &A,
    payout: &StripePayout,
    mapping: &ReconMapping,
) -> Result<ReconOutcome, ReconError> {
    let failure_id = payout
        .failure_balance_transaction_id()
        .ok_or_else(|| ReconError::MissingFailureTransaction(payout.id.clone()))?;
    let failure = stripe.retrieve_balance_transaction(failure_id).await?;
    failed_payout_from(payout, &failure, mapping)
}

/// [`failed_payout`] with the failure balance transaction already fetched (pure).
pub fn failed_payout_from(
    payout: &StripePayout,
    failure: &StripeBalanceTransaction,
    mapping: &ReconMapping,
) -> Result<ReconOutcome, ReconError> {
    let id = PayoutId::new(payout.id.clone());
    if failure.currency != payout.currency {
        return Err(ReconError::CurrencyMismatch {
            transaction: failure.id.clone(),
            expected: payout.currency,
            found: failure.currency,
        });
    }
    let mut report = DiscrepancyReport::new(id.clone());
    let returned = failure.net_money();
    if returned != payout.amount_money() {
        report.push(Discrepancy {
            kind: DiscrepancyKind::PayoutAmountMismatch,
            balance_transaction: Some(failure.id.clone()),
            source: Some(payout.id.clone()),
            category: Some(failure.reporting_category.as_str().to_owned()),
            amount: Some(returned),
            detail: format!(
                "failure returned {returned}, payout was {}",
                payout.amount_money()
            ),
        });
    }
    let reason = payout.failure_code.as_deref().unwrap_or("unknown");
    match mapping.failed_payout {
        FailedPayoutPolicy::Flag => {
            report.push(Discrepancy {
                kind: DiscrepancyKind::FailedPayout,
                balance_transaction: Some(failure.id.clone()),
                source: Some(payout.id.clone()),
                category: Some(failure.reporting_category.as_str().to_owned()),
                amount: Some(returned),
                detail: format!("payout failed ({reason}); flagged for review, nothing posted"),
            });
            Ok(ReconOutcome {
                status: ReconStatus::NeedsReview,
                journal: None,
                report,
                stripe_calls: 0,
            })
        }
        FailedPayoutPolicy::Reverse => {
            let memo = format!("Failed Stripe payout {} ({reason})", payout.id);
            let lines: Vec<JournalLine> = [
                JournalLine::from_signed(
                    &mapping.failed_payout_account,
                    returned,
                    memo.clone(),
                    LineKind::FailedPayout,
                )?,
                JournalLine::from_signed(
                    &mapping.bank_account,
                    returned.checked_neg()?,
                    memo,
                    LineKind::Bank,
                )?,
            ]
            .into_iter()
            .flatten()
            .collect();
            let journal = PayoutJournal::new(
                id,
                JournalKind::FailedPayoutReversal,
                payout.currency,
                returned,
                failure.created,
                lines,
                BTreeMap::new(),
                BTreeMap::new(),
                1,
            )?;
            Ok(ReconOutcome {
                status: ReconStatus::Journal,
                journal: Some(journal),
                report,
                stripe_calls: 0,
            })
        }
    }
}

/// A manual payout. Stripe cannot list its transactions: per policy it is flagged for
/// review, or — when the caller supplies the balance transactions of the date window it
/// covers (`StripeApi::list_balance_transactions` with `BalanceTransactionQuery::created_between`)
/// — reconstructed from
/// them, with a variance line for whatever the window does not explain.
pub async fn manual_payout<C: SyncCheck>(
    payout: &StripePayout,
    mapping: &ReconMapping,
    window: Option<&[StripeBalanceTransaction]>,
    fx_rates: &dyn FxRateLookup,
    sync: &C,
) -> Result<ReconOutcome, ReconError> {
    let id = PayoutId::new(payout.id.clone());
    match (mapping.manual_payout, window) {
        (ManualPayoutPolicy::ReconstructByWindow, Some(window)) => {
            let mut agg = PayoutAggregator::new(mapping, fx_rates, id, payout.currency);
            // entries of other payouts in the window are not part of this one
            let own: Vec<StripeBalanceTransaction> = window
                .iter()
                .filter(|bt| {
                    bt.kind != ledgerbridge_stripe::StripeBalanceTransactionType::Payout
                        || bt.source_id() == Some(payout.id.as_str())
                })
                .cloned()
                .collect();
            fold_page(&mut agg, &own, sync).await?;
            let (journal, mut report) = agg.finish(
                payout.amount_money(),
                payout.arrival_date,
                JournalKind::ManualPayoutReconstruction,
            )?;
            report.push(Discrepancy {
                kind: DiscrepancyKind::ManualPayoutNeedsReview,
                balance_transaction: None,
                source: Some(payout.id.clone()),
                category: None,
                amount: Some(payout.amount_money()),
                detail:
                    "manual payout reconstructed from a date window; review before relying on it"
                        .into(),
            });
            Ok(ReconOutcome {
                status: ReconStatus::Journal,
                journal: Some(journal),
                report,
                stripe_calls: 0,
            })
        }
        _ => {
            let mut report = DiscrepancyReport::new(id);
            report.push(Discrepancy {
                kind: DiscrepancyKind::ManualPayoutNeedsReview,
                balance_transaction: None,
                source: Some(payout.id.clone()),
                category: None,
                amount: Some(payout.amount_money()),
                detail: "manual payout: Stripe cannot list its transactions; needs review".into(),
            });
            Ok(ReconOutcome {
                status: ReconStatus::NeedsReview,
                journal: None,
                report,
                stripe_calls: 0,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    //! The reconciliation against an in-memory Stripe (the port's fake) fed with the
    //! repository's sample payouts and balance transactions.

    use super::*;
    use crate::aggregate::NoBookedRates;
    use crate::journal::Side;
    use crate::mapping::DetailLevel;
    use ledgerbridge_core::money::{Money, Rounding};
    use ledgerbridge_stripe::fake::FakeStripe;
    use ledgerbridge_stripe::{StripeError, StripeList};

    const PAID: &str =
        include_str!("../../../tests/fixtures/stripe/api/payout_po_1AlsD8Nq7LbKx2RzLQZWGamE.json");
    const PAID_LISTING: &str = include_str!(
        "../../../tests/fixtures/stripe/api/balance_transactions.payout_po_1AlsD8Nq7LbKx2RzLQZWGamE.json"
    );
    const FAILED: &str =
        include_str!("../../../tests/fixtures/stripe/api/payout_po_1czXvONq7LbKx2RzEcobW8uu.json");
    const FAILURE_TXN: &str = include_str!(
        "../../../tests/fixtures/stripe/api/balance_transaction_txn_12xMwdNq7LbKx2RzBq6kDB5I.json"
    );

    fn mapping() -> ReconMapping {
        let fees = "fees";
        let cats = [
            ("charge", "clearing"),
            ("refund", "refunds"),
            ("dispute", "chargebacks"),
            ("dispute_reversal", "chargebacks"),
            ("fee", fees),
            ("other_adjustment", "other_income"),
            ("payout_reversal", "receivable"),
        ];
        ReconMapping {
            bank_account: "bank".into(),
            category_accounts: cats
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            fee_accounts: BTreeMap::from([("stripe_fee".into(), fees.into())]),
            default_fee_account: fees.into(),
            suspense_account: "suspense".into(),
            variance_account: "variance".into(),
            fx_account: "fx".into(),
            failed_payout_account: "receivable".into(),
            rounding: Rounding::HalfEven,
            detail: DetailLevel::Summary,
            failed_payout: FailedPayoutPolicy::Reverse,
            manual_payout: Default::default(),
        }
    }

    fn paid_stripe(page_size: usize) -> (FakeStripe, StripePayout) {
        let payout: StripePayout = serde_json::from_str(PAID).unwrap();
        let listing: StripeList<StripeBalanceTransaction> =
            serde_json::from_str(PAID_LISTING).unwrap();
        let fake = FakeStripe::new()
            .with_page_size(page_size)
            .with_payout_transactions(&payout.id, listing.data)
            .with_payout(payout.clone());
        (fake, payout)
    }

    fn bank_debit(j: &PayoutJournal) -> Money {
        j.lines()
            .iter()
            .find(|l| l.kind == LineKind::Bank)
            .map(|l| {
                assert_eq!(l.side, Side::Debit);
                l.amount
            })
            .unwrap()
    }

    #[tokio::test]
    async fn a_paid_payout_is_read_page_by_page_through_the_port() {
        let (stripe, payout) = paid_stripe(4);
        let out = reconcile(&stripe, &payout, &mapping(), &NoBookedRates, &NoSyncCheck)
            .await
            .unwrap();
        assert_eq!(out.status, ReconStatus::Journal);
        let j = out.journal.unwrap();
        assert_eq!(j.kind, JournalKind::Payout);
        assert_eq!(j.total_debits().unwrap(), j.total_credits().unwrap());
        assert_eq!(bank_debit(&j), payout.amount_money());
        assert_eq!(
            j.transaction_count, 10,
            "the payout's own entry is not a transaction"
        );
        assert_eq!(out.stripe_calls, 3, "11 entries in pages of 4");
        assert!(out.report.is_clean(), "{:?}", out.report);
    }

    #[tokio::test]
    async fn a_failed_payout_reads_its_failure_transaction() {
        let payout: StripePayout = serde_json::from_str(FAILED).unwrap();
        let failure: StripeBalanceTransaction = serde_json::from_str(FAILURE_TXN).unwrap();
        let stripe = FakeStripe::new().with_balance_transaction(failure);
        let out = reconcile(&stripe, &payout, &mapping(), &NoBookedRates, &NoSyncCheck)
            .await
            .unwrap();
        let j = out.journal.unwrap();
        assert_eq!(j.kind, JournalKind::FailedPayoutReversal);
        assert_eq!(j.total_debits().unwrap(), payout.amount_money());
        assert_eq!(out.stripe_calls, 1);
    }

    #[tokio::test]
    async fn stripe_failures_keep_their_retry_class() {
        let (stripe, payout) = paid_stripe(4);
        stripe.fail_next(StripeError::RateLimited { retry_after: None });
        let err = reconcile(&stripe, &payout, &mapping(), &NoBookedRates, &NoSyncCheck)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ReconError::Stripe(_)) && err.is_retriable(),
            "{err}"
        );

        let failed: StripePayout = serde_json::from_str(FAILED).unwrap();
        let err = reconcile(
            &FakeStripe::new(),
            &failed,
            &mapping(),
            &NoBookedRates,
            &NoSyncCheck,
        )
        .await
        .unwrap_err();
        assert!(
            !err.is_retriable(),
            "a missing failure transaction is permanent: {err}"
        );
    }

    #[tokio::test]
    async fn unfinished_and_manual_payouts_make_no_listing_call() {
        let (stripe, mut payout) = paid_stripe(4);
        payout.reconciliation_status = Some("in_progress".into());
        let err = reconcile(&stripe, &payout, &mapping(), &NoBookedRates, &NoSyncCheck)
            .await
            .unwrap_err();
        assert!(matches!(err, ReconError::NotReady { .. }) && err.is_retriable());

        payout.reconciliation_status = None;
        payout.automatic = false;
        let out = reconcile(&stripe, &payout, &mapping(), &NoBookedRates, &NoSyncCheck)
            .await
            .unwrap();
        assert_eq!(out.status, ReconStatus::NeedsReview);
        assert_eq!(out.stripe_calls, 0);
        assert_eq!(stripe.calls(), 0);
    }
}
