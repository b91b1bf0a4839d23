//! `customer` (and the deleted-customer stub `{id, object, deleted: true}`).

use super::{de_opt_currency_or_empty, null_default, stripe_object, Metadata};
use ledgerbridge_core::currency::Currency;
use serde::{Deserialize, Serialize};

/// `customer`: id, the fields every ERP mapping reads, the rest in `other`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StripeCustomer {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// The customer's default currency; `None` until the first charge or invoice.
    /// `null` or an empty string when the customer has no currency yet.
    #[serde(default, deserialize_with = "de_opt_currency_or_empty")]
    pub currency: Option<Currency>,
    #[serde(default)]
    pub address: Option<StripeAddress>,
    /// Present (`true`) only on a deleted customer.
    #[serde(default, deserialize_with = "null_default")]
    pub deleted: bool,
    #[serde(default)]
    pub created: Option<i64>,
    #[serde(default, deserialize_with = "null_default")]
    pub metadata: Metadata,
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// A postal address; every part may be `null`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeAddress {
    #[serde(default)]
    pub line1: Option<String>,
    #[serde(default)]
    pub line2: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[serde(default)]
    pub country: Option<String>,
}

stripe_object!(StripeCustomer => "customer",);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::fixtures::*;

    #[test]
    fn customer_events_and_api_response() {
        let created: StripeCustomer = event_object(repo_fixture!("events/customer.created.json"));
        assert!(created.id.starts_with("cus_"));
        let updated: StripeCustomer = event_object(repo_fixture!("events/customer.updated.json"));
        assert_eq!(updated.id, "cus_NHQM1cjewvnnbv");
        assert_eq!(updated.name.as_deref(), Some("Northwind Traders LLC"));
        assert_eq!(
            updated.email.as_deref(),
            Some("payables@northwind-traders.example")
        );
        assert_eq!(updated.currency, Some(Currency::USD));
        assert_eq!(updated.metadata["erp_customer_no"], "NW0042");
        let a = updated.address.as_ref().unwrap();
        assert_eq!(a.line1.as_deref(), Some("88 Embarcadero Center"));
        assert_eq!(a.line2.as_deref(), Some("Floor 12"));
        assert_eq!(a.city.as_deref(), Some("San Francisco"));
        assert_eq!(a.state.as_deref(), Some("CA"));
        assert_eq!(a.postal_code.as_deref(), Some("94111"));
        assert_eq!(a.country.as_deref(), Some("US"));
        assert!(!updated.deleted);
        let prev = previous(repo_fixture!("events/customer.updated.json"));
        assert!(prev["metadata"]["erp_customer_no"].is_null());

        let fetched: StripeCustomer = parse(repo_fixture!("api/customer_cus_v2hTtpvHRTXjHs.json"));
        assert_eq!(fetched.name.as_deref(), Some("Contoso Retail Inc."));
        assert_eq!(fetched.address.and_then(|a| a.line2), None);
    }

    #[test]
    fn an_empty_or_null_currency_is_none_and_a_bad_one_fails() {
        let empty: StripeCustomer =
            serde_json::from_str(r#"{"id":"cus_1","currency":""}"#).unwrap();
        assert_eq!(empty.currency, None);
        let null: StripeCustomer =
            serde_json::from_str(r#"{"id":"cus_1","currency":null}"#).unwrap();
        assert_eq!(null.currency, None);
        let eur: StripeCustomer =
            serde_json::from_str(r#"{"id":"cus_1","currency":"eur"}"#).unwrap();
        assert_eq!(eur.currency, Some(Currency::EUR));
        assert!(
            serde_json::from_str::<StripeCustomer>(r#"{"id":"cus_1","currency":"e"}"#).is_err()
        );
    }

    #[test]
    fn older_and_deleted_customers() {
        let old: StripeCustomer = parse(old_fixture!("customer"));
        assert_eq!(old.id, "cus_Oaxlz8kB0PJWGa");
        let deleted: StripeCustomer =
            serde_json::from_str(r#"{"id":"cus_1","object":"customer","deleted":true}"#).unwrap();
        assert!(deleted.deleted);
        assert_eq!(deleted.name, None);
        assert!(deleted.metadata.is_empty());
    }
}
