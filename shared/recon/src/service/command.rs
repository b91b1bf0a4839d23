//! A payout journal as an ERP command on the commands queue (posted by erp-post).

use super::config::{PostedLines, Posting};
use crate::{JournalError, JournalKind, PayoutJournal};
use ledgerbridge_core::ids::StripeObjectId;
use ledgerbridge_erp::{
    CommandError, CompanyTimeZone, DocKind, ErpCommand, ErpDate, ExternalRef, JournalEntry,
    JournalLine, Side,
};
use ledgerbridge_messages::{ErpCommandV1, Source, WriteBack};
use ledgerbridge_stripe::StripePayout;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("payout {0} failed but has no failure balance transaction to reference")]
    NoFailureTransaction(String),
    #[error("posting date: {0}")]
    Date(String),
}

/// `YYYY-MM-DD` of a Unix timestamp in the company's time zone: a journal's posting date.
pub fn local_date(secs: i64, zone: &CompanyTimeZone) -> Result<ErpDate, BuildError> {
    ErpDate::from_unix_in(secs, zone).map_err(|e| BuildError::Date(e.to_string()))
}

/// `YYYY-MM-DD` (UTC) of a Unix timestamp.
pub fn utc_date(secs: i64) -> Result<ErpDate, BuildError> {
    // Howard Hinnant's days-to-civil algorithm.
    let days = secs.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    ErpDate::parse(&format!("{y:04}-{m:02}-{d:02}")).map_err(|e| BuildError::Date(e.to_string()))
}

/// The Stripe object a journal's ERP reference is derived from: the payout for its journal,
/// the failure balance transaction (`txn_…`) for a failed payout's reversal, so the two never
/// share a reference.
pub fn reference_object(
    journal: &PayoutJournal,
    payout: &StripePayout,
) -> Result<StripeObjectId, BuildError> {
    match journal.kind {
        JournalKind::Payout | JournalKind::ManualPayoutReconstruction => {
            Ok(StripeObjectId::new(payout.id.clone()))
        }
        JournalKind::FailedPayoutReversal => payout
            .failure_balance_transaction_id()
            .map(StripeObjectId::new)
            .ok_or_else(|| BuildError::NoFailureTransaction(payout.id.clone())),
    }
}

/// The `PostJournalEntry` command of a payout journal, validated (balanced to the minor unit,
/// positive amounts, one currency), with a write-back of the ERP id to the payout's metadata.
pub fn journal_command(
    journal: &PayoutJournal,
    payout: &StripePayout,
    posting: &Posting,
    source: Source,
) -> Result<ErpCommandV1, BuildError> {
    let reference = ExternalRef::new(&reference_object(journal, payout)?, DocKind::JournalEntry)?;
    let built = match posting.lines {
        PostedLines::PerAccount => journal.consolidated_by_account()?,
        PostedLines::AsBuilt => journal.lines().to_vec(),
    };
    let lines = built
        .into_iter()
        .map(|l| JournalLine {
            gl_account: l.account,
            side: match l.side {
                crate::Side::Debit => Side::Debit,
                crate::Side::Credit => Side::Credit,
            },
            amount: l.amount,
            memo: Some(l.memo),
        })
        .collect();
    let (description, key) = match journal.kind {
        JournalKind::Payout => (
            format!(
                "Stripe payout {} ({} transactions)",
                payout.id, journal.transaction_count
            ),
            &posting.write_back_key,
        ),
        JournalKind::ManualPayoutReconstruction => (
            format!("Stripe manual payout {} (reconstructed)", payout.id),
            &posting.write_back_key,
        ),
        JournalKind::FailedPayoutReversal => (
            format!("Reversal of failed Stripe payout {}", payout.id),
            &posting.reversal_write_back_key,
        ),
    };
    let command = ErpCommand::PostJournalEntry(JournalEntry {
        reference,
        posting_date: local_date(journal.date, &posting.time_zone)?,
        currency: journal.currency,
        description,
        lines,
    });
    command.validate()?;
    let write_back = (!key.is_empty()).then(|| WriteBack {
        object_path: "payouts".into(),
        object_id: payout.id.clone(),
        key: key.clone(),
    });
    Ok(ErpCommandV1 {
        command,
        customer: None,
        depends_on: Vec::new(),
        version: None,
        write_back,
        source,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn local_dates_follow_the_company_time_zone() {
        let chicago = CompanyTimeZone::parse("America/Chicago").unwrap();
        // 2026-03-01T03:30Z is 28 February in Chicago (CST), 1 March in UTC.
        assert_eq!(
            local_date(1_772_335_800, &chicago).unwrap().as_str(),
            "2026-02-28"
        );
        assert_eq!(
            local_date(1_772_335_800, &CompanyTimeZone::utc())
                .unwrap()
                .as_str(),
            "2026-03-01"
        );
        // Summer (CDT, UTC-5): 04:59:59Z is still the day before, 05:00Z the new day.
        assert_eq!(
            local_date(1_782_881_999, &chicago).unwrap().as_str(),
            "2026-06-30"
        );
        assert_eq!(
            local_date(1_782_882_000, &chicago).unwrap().as_str(),
            "2026-07-01"
        );
        assert!(
            local_date(-10_000_000_000, &chicago).is_err(),
            "before 1900"
        );
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc_date(0).unwrap().as_str(), "1970-01-01");
        assert_eq!(utc_date(1_786_060_800).unwrap().as_str(), "2026-08-07");
        assert_eq!(utc_date(951_782_400).unwrap().as_str(), "2000-02-29");
        assert_eq!(utc_date(951_868_799).unwrap().as_str(), "2000-02-29");
        assert_eq!(utc_date(1_709_251_199).unwrap().as_str(), "2024-02-29");
        assert!(utc_date(-10_000_000_000).is_err(), "before 1900");
    }
}
