//! Conversions from Stripe data to ERP values shared by every stage: field readers, the ERP
//! date of a Stripe time, external references, currencies, names and e-mail addresses.

use crate::outcome::{permanent, StageError};
use ledgerbridge_core::ids::StripeObjectId;
use ledgerbridge_erp::{CompanyTimeZone, DocKind, ErpDate, ExternalRef};
use ledgerbridge_stripe::objects::Metadata;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Metadata keys ledgerbridge writes into Stripe objects start with this prefix; an update event
/// that changes nothing else is our own echo and is skipped.
pub const METADATA_PREFIX: &str = "ledgerbridge_";

/// Metadata key the ERP → Stripe customer sync sets with each update it makes (the ERP change's
/// time); an update that changed it came from the ERP and is not sent back there.
pub const ERP_SYNC_KEY: &str = "ledgerbridge_erp_sync";

/// The event's object (or an object read from Stripe) as its typed Stripe object; a payload
/// that does not read as one is parked with the reason.
pub(crate) fn object_of<T: DeserializeOwned>(value: &Value, what: &str) -> Result<T, StageError> {
    T::deserialize(value).map_err(|e| permanent(format!("unreadable Stripe {what}: {e}")))
}

/// An optional text field, with an empty string read as missing (as Stripe sends unset text
/// in some API versions).
pub(crate) fn text(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|x| !x.is_empty())
}

/// A metadata value, with an empty string read as missing.
pub(crate) fn meta<'a>(metadata: &'a Metadata, key: &str) -> Option<&'a str> {
    metadata
        .get(key)
        .map(String::as_str)
        .filter(|x| !x.is_empty())
}

/// An object's `created`, or the event's time when the object has none (`0`).
pub(crate) fn created_or(created: i64, fallback: i64) -> i64 {
    if created == 0 {
        fallback
    } else {
        created
    }
}

/// A Unix timestamp as the calendar date in the company's time zone (the mapping's
/// `[defaults] time_zone`).
pub fn date_of(zone: &CompanyTimeZone, unix_secs: i64) -> Result<ErpDate, StageError> {
    ErpDate::from_unix_in(unix_secs, zone).map_err(|e| permanent(e.to_string()))
}

pub(crate) fn reference(id: &str, kind: DocKind) -> Result<ExternalRef, StageError> {
    ExternalRef::new(&StripeObjectId::new(id), kind).map_err(|e| permanent(e.to_string()))
}

/// Normalise a name: trim and collapse inner whitespace.
pub fn normalise_name(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub fn normalise_email(email: &str) -> Option<String> {
    let e = email.trim().to_ascii_lowercase();
    (e.contains('@') && !e.contains(char::is_whitespace)).then_some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_calendar_days() {
        let utc = CompanyTimeZone::utc();
        assert_eq!(date_of(&utc, 0).unwrap().as_str(), "1970-01-01");
        assert_eq!(date_of(&utc, 1_784_538_764).unwrap().as_str(), "2026-07-20");
        assert_eq!(date_of(&utc, 951_782_400).unwrap().as_str(), "2000-02-29");
        assert_eq!(date_of(&utc, 1_709_251_199).unwrap().as_str(), "2024-02-29");
    }

    #[test]
    fn dates_are_company_local_days() {
        // 2026-03-01T03:30Z books on 28 February in Chicago.
        let chicago = CompanyTimeZone::parse("America/Chicago").unwrap();
        assert_eq!(
            date_of(&chicago, 1_772_335_800).unwrap().as_str(),
            "2026-02-28"
        );
        assert!(date_of(&chicago, -10_000_000_000).is_err(), "before 1900");
    }

    #[test]
    fn names_and_emails_are_normalised() {
        assert_eq!(
            normalise_name("  Northwind   Traders  LLC "),
            "Northwind Traders LLC"
        );
        assert_eq!(
            normalise_email(" AP@Northwind.Example ").as_deref(),
            Some("ap@northwind.example")
        );
        assert_eq!(normalise_email("not an email"), None);
    }
}
