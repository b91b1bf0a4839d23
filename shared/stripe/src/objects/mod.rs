//! Typed Stripe objects, tolerant of API-version drift.
//!
//! Rules every object here follows:
//! * unknown fields are ignored (the objects that already had one keep them in `other`);
//! * every field Stripe may omit or send as `null` is an `Option` or has a default (`null`
//!   lists and maps read as empty);
//! * expandable references (`customer`, `charge`, `payment_intent`, `invoice`,
//!   `balance_transaction`, …) are an [`Expandable`]: the id, or the object when expanded,
//!   with [`Expandable::id`] either way;
//! * shapes of older API versions are accepted next to the current ones (documented on each
//!   field), with helpers that give one view of both;
//! * amounts are Stripe's integer minor units (`i64`) with the object's `currency`; decimals
//!   (`exchange_rate`, `quantity_decimal`) are parsed from the JSON text exactly, never
//!   through binary floating point.

pub mod balance_transaction;
pub mod charge;
pub mod credit_note;
pub mod customer;
pub mod dispute;
pub mod invoice;
pub mod payment_intent;
pub mod payout;
pub mod refund;
pub mod subscription;

pub use balance_transaction::{
    StripeBalanceTransaction, StripeBalanceTransactionType, StripeExpandable, StripeFeeDetail,
    StripeFeeType, StripeReportingCategory, StripeSourceObject,
};
pub use charge::{StripeCharge, StripePaymentMethodDetails};
pub use credit_note::{StripeCreditNote, StripeCreditNoteRefund};
pub use customer::{StripeAddress, StripeCustomer};
pub use dispute::StripeDispute;
pub use invoice::{
    StripeInvoice, StripeInvoiceParent, StripeInvoicePayment, StripeInvoicePaymentRef,
    StripeInvoicePaymentStatusTransitions, StripeInvoiceStatusTransitions, StripeLineItem,
    StripeLinePricing, StripePretaxCreditAmount, StripePriceDetails, StripeSubscriptionDetails,
    StripeTax, StripeTaxAmount, StripeTaxRateDetails,
};
pub use payment_intent::StripePaymentIntent;
pub use payout::StripePayout;
pub use refund::StripeRefund;
pub use subscription::{StripeSubscription, StripeSubscriptionItem};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::str::FromStr;

/// A Stripe object with an id.
pub trait StripeObject {
    /// The value of the object's `object` field (`"charge"`, `"invoice"`, …).
    const OBJECT: &'static str;
    fn id(&self) -> &str;
}

macro_rules! stripe_object {
    ($($ty:ty => $name:literal,)*) => {
        $(impl $crate::objects::StripeObject for $ty {
            const OBJECT: &'static str = $name;
            fn id(&self) -> &str {
                &self.id
            }
        })*
    };
}
pub(crate) use stripe_object;

/// An expandable reference: the id, or (with `expand[]`) the object itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Expandable<T> {
    Id(String),
    Object(Box<T>),
}

impl<T: StripeObject> Expandable<T> {
    /// The referenced object's id, expanded or not.
    pub fn id(&self) -> &str {
        match self {
            Expandable::Id(id) => id,
            Expandable::Object(o) => o.id(),
        }
    }
}

impl<T> Expandable<T> {
    /// The object, when it was expanded.
    pub fn object(&self) -> Option<&T> {
        match self {
            Expandable::Id(_) => None,
            Expandable::Object(o) => Some(o),
        }
    }

    pub fn into_object(self) -> Option<T> {
        match self {
            Expandable::Id(_) => None,
            Expandable::Object(o) => Some(*o),
        }
    }

    pub fn is_expanded(&self) -> bool {
        matches!(self, Expandable::Object(_))
    }
}

/// The id of an optional expandable field (Stripe sends `null` or omits unset references).
pub fn expandable_id<T: StripeObject>(e: &Option<Expandable<T>>) -> Option<&str> {
    e.as_ref().map(Expandable::id).filter(|id| !id.is_empty())
}

/// A page of a list endpoint (and the embedded lists: `lines`, `items`, `refunds`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct StripeList<T> {
    #[serde(default = "Vec::new", deserialize_with = "null_default")]
    pub data: Vec<T>,
    #[serde(default)]
    pub has_more: bool,
    #[serde(default)]
    pub url: Option<String>,
}

impl<T> Default for StripeList<T> {
    fn default() -> Self {
        StripeList {
            data: Vec::new(),
            has_more: false,
            url: None,
        }
    }
}

/// `metadata`: string keys and values (`null` reads as empty).
pub type Metadata = BTreeMap<String, String>;

/// `price` (the fields the mappings read: id and product).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripePrice {
    pub id: String,
    #[serde(default)]
    pub product: Option<Expandable<StripeProduct>>,
    #[serde(default)]
    pub currency: Option<ledgerbridge_core::currency::Currency>,
    #[serde(default)]
    pub unit_amount: Option<i64>,
    #[serde(default)]
    pub nickname: Option<String>,
    #[serde(default)]
    pub lookup_key: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub metadata: Metadata,
}

impl StripePrice {
    pub fn product_id(&self) -> Option<&str> {
        expandable_id(&self.product)
    }
}

/// `product`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeProduct {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub metadata: Metadata,
}

/// `discount` (referenced by discount amounts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeDiscount {
    pub id: String,
}

/// `tax_rate` (referenced by the older `tax_amounts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StripeTaxRate {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub inclusive: Option<bool>,
    #[serde(default)]
    pub jurisdiction: Option<String>,
}

stripe_object!(
    StripePrice => "price",
    StripeProduct => "product",
    StripeDiscount => "discount",
    StripeTaxRate => "tax_rate",
);

/// `{ amount, discount }` of `discount_amounts` / `total_discount_amounts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeDiscountAmount {
    pub amount: i64,
    #[serde(default)]
    pub discount: Option<Expandable<StripeDiscount>>,
}

/// Deserialize `T`, reading `null` as `T::default()` (lists, maps, flags).
pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// An optional currency, reading `null` and an empty string as `None` (an unset currency, as
/// some API versions send it on customers).
pub(crate) fn de_opt_currency_or_empty<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<ledgerbridge_core::currency::Currency>, D::Error> {
    match Option::<std::borrow::Cow<'de, str>>::deserialize(d)? {
        None => Ok(None),
        Some(code) if code.is_empty() => Ok(None),
        Some(code) => ledgerbridge_core::currency::Currency::parse(&code)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

/// Parse an optional decimal from the JSON text exactly (a number or a string), never via f64.
pub(crate) fn de_opt_decimal_exact<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<rust_decimal::Decimal>, D::Error> {
    let raw = Option::<Box<serde_json::value::RawValue>>::deserialize(d)?;
    let Some(raw) = raw else { return Ok(None) };
    let text = raw.get().trim();
    if text == "null" {
        return Ok(None);
    }
    let text = text.trim_matches('"');
    parse_decimal(text)
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("invalid decimal {text:?}: {e}")))
}

/// [`de_opt_decimal_exact`], reading an empty string as `None` (Stripe's `quantity_decimal`).
pub(crate) fn de_opt_decimal_or_empty<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<rust_decimal::Decimal>, D::Error> {
    let raw = Option::<Box<serde_json::value::RawValue>>::deserialize(d)?;
    let Some(raw) = raw else { return Ok(None) };
    let text = raw.get().trim();
    let text = if text == "null" {
        ""
    } else {
        text.trim_matches('"')
    };
    if text.is_empty() {
        return Ok(None);
    }
    parse_decimal(text)
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("invalid decimal {text:?}: {e}")))
}

fn parse_decimal(text: &str) -> Result<rust_decimal::Decimal, rust_decimal::Error> {
    rust_decimal::Decimal::from_str(text).or_else(|_| rust_decimal::Decimal::from_scientific(text))
}

pub(crate) fn ser_opt_decimal<S: Serializer>(
    v: &Option<rust_decimal::Decimal>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        None => s.serialize_none(),
        Some(d) => s.serialize_str(&d.to_string()),
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! The repository's sample events and API responses, and Stripe's published example
    //! objects of API version 2023-08-16 (copied unchanged to `tests/fixtures/`).

    use serde::de::DeserializeOwned;

    macro_rules! repo_fixture {
        ($path:literal) => {
            include_str!(concat!("../../../../tests/fixtures/stripe/", $path))
        };
    }
    macro_rules! old_fixture {
        ($name:literal) => {
            include_str!(concat!(
                "../../tests/fixtures/openapi-2023-08-16/",
                $name,
                ".json"
            ))
        };
    }
    pub(crate) use {old_fixture, repo_fixture};

    /// `data.object` of an event file, as `T`.
    pub(crate) fn event_object<T: DeserializeOwned>(text: &str) -> T {
        let event: serde_json::Value = serde_json::from_str(text).unwrap();
        serde_json::from_value(event["data"]["object"].clone()).unwrap()
    }

    /// `data.previous_attributes` of an event file.
    pub(crate) fn previous(text: &str) -> serde_json::Value {
        let event: serde_json::Value = serde_json::from_str(text).unwrap();
        event["data"]["previous_attributes"].clone()
    }

    pub(crate) fn parse<T: DeserializeOwned>(text: &str) -> T {
        serde_json::from_str(text).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expandable_is_an_id_or_an_object() {
        let id: Expandable<StripeProduct> = serde_json::from_str(r#""prod_1""#).unwrap();
        assert_eq!(id.id(), "prod_1");
        assert!(!id.is_expanded());
        let obj: Expandable<StripeProduct> =
            serde_json::from_str(r#"{"id":"prod_2","object":"product","name":"Seat","x":1}"#)
                .unwrap();
        assert_eq!(obj.id(), "prod_2");
        assert_eq!(obj.object().and_then(|p| p.name.as_deref()), Some("Seat"));
        let none: Option<Expandable<StripeProduct>> = serde_json::from_str("null").unwrap();
        assert_eq!(expandable_id(&none), None);
    }

    #[test]
    fn null_lists_and_maps_read_as_empty() {
        let list: StripeList<StripeProduct> =
            serde_json::from_str(r#"{"object":"list","data":null}"#).unwrap();
        assert!(list.data.is_empty() && !list.has_more);
        let p: StripePrice = serde_json::from_str(r#"{"id":"price_1","metadata":null}"#).unwrap();
        assert!(p.metadata.is_empty());
        assert_eq!(p.product_id(), None);
    }
}
