//! The discrepancy report: what an operator must look at for one payout. Serialisable (to
//! store and query), logged in structured form, exported as CSV for finance.

use ledgerbridge_core::ids::PayoutId;
use ledgerbridge_core::money::Money;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscrepancyKind {
    /// A transaction's source (charge, refund, dispute) was never synced to the ERP.
    UnsyncedSource,
    /// The lines did not sum to the payout amount; a variance line was posted.
    TotalMismatch,
    /// The payout's own entry disagrees with the payout object.
    PayoutAmountMismatch,
    /// A `reporting_category` without an account; posted to suspense.
    UnknownCategory,
    /// `net ≠ amount − fee` on a transaction.
    NetMismatch,
    /// `fee ≠ Σ fee_details.amount`; the rest went to the default fee account.
    FeeDetailMismatch,
    /// A foreign-currency transaction whose source was not expanded: no FX split.
    FxSourceUnknown,
    /// A failed payout that was flagged, not reversed.
    FailedPayout,
    /// A manual payout: Stripe cannot list its transactions.
    ManualPayoutNeedsReview,
    /// Entries beyond the report's cap were counted, not listed.
    Truncated,
    /// The variance is above the configured threshold: the journal was held, not posted.
    VarianceHeld,
}

impl DiscrepancyKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            DiscrepancyKind::UnsyncedSource => "unsynced_source",
            DiscrepancyKind::TotalMismatch => "total_mismatch",
            DiscrepancyKind::PayoutAmountMismatch => "payout_amount_mismatch",
            DiscrepancyKind::UnknownCategory => "unknown_category",
            DiscrepancyKind::NetMismatch => "net_mismatch",
            DiscrepancyKind::FeeDetailMismatch => "fee_detail_mismatch",
            DiscrepancyKind::FxSourceUnknown => "fx_source_unknown",
            DiscrepancyKind::FailedPayout => "failed_payout",
            DiscrepancyKind::ManualPayoutNeedsReview => "manual_payout_needs_review",
            DiscrepancyKind::Truncated => "truncated",
            DiscrepancyKind::VarianceHeld => "variance_held",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discrepancy {
    pub kind: DiscrepancyKind,
    #[serde(default)]
    pub balance_transaction: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    /// The amount concerned (the variance, the unknown category's net, …).
    #[serde(default)]
    pub amount: Option<Money>,
    pub detail: String,
}

/// Entries listed per report before the rest are only counted (memory stays bounded).
pub const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscrepancyReport {
    pub payout: PayoutId,
    pub entries: Vec<Discrepancy>,
    /// Entries not listed because of [`MAX_ENTRIES`].
    #[serde(default)]
    pub omitted: u64,
}

impl DiscrepancyReport {
    pub fn new(payout: PayoutId) -> Self {
        DiscrepancyReport {
            payout,
            entries: Vec::new(),
            omitted: 0,
        }
    }

    pub fn push(&mut self, d: Discrepancy) {
        if self.entries.len() < MAX_ENTRIES {
            self.entries.push(d);
        } else {
            self.omitted += 1;
        }
    }

    pub fn is_clean(&self) -> bool {
        self.entries.is_empty() && self.omitted == 0
    }

    pub fn count(&self, kind: DiscrepancyKind) -> usize {
        self.entries.iter().filter(|d| d.kind == kind).count()
    }

    /// One structured log event per entry (payout, kind, ids, amount), at `warn`.
    pub fn log(&self) {
        for d in &self.entries {
            tracing::warn!(
                payout = %self.payout,
                kind = d.kind.as_str(),
                balance_transaction = d.balance_transaction.as_deref().unwrap_or(""),
                source = d.source.as_deref().unwrap_or(""),
                category = d.category.as_deref().unwrap_or(""),
                amount = %d.amount.map(|m| m.to_decimal().to_string()).unwrap_or_default(),
                currency = d.amount.map(|m| m.currency.code().to_owned()).unwrap_or_default(),
                detail = %d.detail,
                "payout discrepancy"
            );
        }
        if self.omitted > 0 {
            tracing::warn!(payout = %self.payout, omitted = self.omitted, "more discrepancies omitted");
        }
    }

    /// RFC 4180 CSV with a header row; amounts as exact decimals in major units.
    pub fn to_csv(&self) -> Result<String, csv::Error> {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::new());
        w.write_record([
            "payout",
            "kind",
            "balance_transaction",
            "source",
            "category",
            "currency",
            "amount",
            "detail",
        ])?;
        for d in &self.entries {
            let amount = d
                .amount
                .map(|m| m.to_decimal().to_string())
                .unwrap_or_default();
            let currency = d
                .amount
                .map(|m| m.currency.code().to_owned())
                .unwrap_or_default();
            w.write_record([
                self.payout.as_str(),
                d.kind.as_str(),
                d.balance_transaction.as_deref().unwrap_or(""),
                d.source.as_deref().unwrap_or(""),
                d.category.as_deref().unwrap_or(""),
                &currency,
                &amount,
                &csv_safe(&d.detail),
            ])?;
        }
        if self.omitted > 0 {
            w.write_record([
                self.payout.as_str(),
                DiscrepancyKind::Truncated.as_str(),
                "",
                "",
                "",
                "",
                "",
                &format!("{} more entries not listed", self.omitted),
            ])?;
        }
        let bytes = w.into_inner().map_err(|e| e.into_error())?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// Neutralise spreadsheet formula injection in free text (a description from Stripe).
fn csv_safe(s: &str) -> String {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledgerbridge_core::currency::Currency;

    #[test]
    fn csv_quotes_and_escapes() {
        let mut r = DiscrepancyReport::new(PayoutId::new("po_1"));
        r.push(Discrepancy {
            kind: DiscrepancyKind::UnknownCategory,
            balance_transaction: Some("txn_1".into()),
            source: None,
            category: Some("space_fee".into()),
            amount: Some(Money::new(-1234, Currency::USD)),
            detail: "said \"hi\", then\nleft".into(),
        });
        r.push(Discrepancy {
            kind: DiscrepancyKind::TotalMismatch,
            balance_transaction: None,
            source: None,
            category: None,
            amount: Some(Money::new(5, Currency::JPY)),
            detail: "=HYPERLINK(\"x\")".into(),
        });
        let csv = r.to_csv().unwrap();
        let expected = "payout,kind,balance_transaction,source,category,currency,amount,detail\r\n\
            po_1,unknown_category,txn_1,,space_fee,USD,-12.34,\"said \"\"hi\"\", then\nleft\"\r\n\
            po_1,total_mismatch,,,,JPY,5,\"'=HYPERLINK(\"\"x\"\")\"\r\n";
        assert_eq!(csv, expected);
        // and it reads back
        let mut rd = csv::Reader::from_reader(csv.as_bytes());
        let rows: Vec<csv::StringRecord> = rd.records().collect::<Result<_, _>>().unwrap();
        assert_eq!(&rows[0][7], "said \"hi\", then\nleft");
    }

    #[test]
    fn report_is_bounded() {
        let mut r = DiscrepancyReport::new(PayoutId::new("po_1"));
        for _ in 0..MAX_ENTRIES + 5 {
            r.push(Discrepancy {
                kind: DiscrepancyKind::NetMismatch,
                balance_transaction: None,
                source: None,
                category: None,
                amount: None,
                detail: String::new(),
            });
        }
        assert_eq!(r.entries.len(), MAX_ENTRIES);
        assert_eq!(r.omitted, 5);
        assert!(r
            .to_csv()
            .unwrap()
            .ends_with("5 more entries not listed\r\n"));
    }
}
