//! ISO 4217 currency codes with Stripe's own minor-unit exponents.
//!
//! Stripe sends every amount as an integer in the currency's minor unit, and the number of
//! decimals is Stripe's, not always ISO 4217's (source: <https://docs.stripe.com/currencies>).
//! The rules are kept as a table, not as an `is_zero_decimal` flag, because several currencies
//! carry extra constraints on top of their exponent.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A three-letter ISO 4217 code, stored upper case.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

/// Stripe's rules for one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrencyRule {
    /// Decimal places of the minor unit as Stripe counts them (0, 2 or 3).
    pub exponent: u32,
    /// Amounts of payments, refunds and disputes must be a multiple of this (in minor units).
    pub charge_multiple: i64,
    /// Payout amounts must be a multiple of this (in minor units).
    pub payout_multiple: i64,
}

/// Stripe's zero-decimal currencies (docs.stripe.com/currencies#zero-decimal).
pub const ZERO_DECIMAL: [&str; 16] = [
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
];

/// Stripe's three-decimal currencies; charge amounts must end in 0.
pub const THREE_DECIMAL: [&str; 5] = ["BHD", "JOD", "KWD", "OMR", "TND"];

/// Special cases (docs.stripe.com/currencies#special-cases):
/// ISK is sent as a two-decimal amount divisible by 100 (whole krónur);
/// HUF and TWD charges may carry decimals but payouts are whole units (divisible by 100);
/// UGX is zero-decimal in the API (listed with the special cases by Stripe; kept zero-decimal here).
pub const SPECIAL: [&str; 4] = ["ISK", "HUF", "TWD", "UGX"];

/// Stripe's two-decimal currencies: every other currency Stripe supports for payments
/// (docs.stripe.com/currencies, cross-checked against the currency list of the `stripe-rust`
/// crate; codes withdrawn since — EEK, LTL, LVL, SVC, VEF — left out; BYN and MMK from the
/// newer `async-stripe` crate's currency list).
///
/// A code in none of these tables is not guessed to have two decimals: [`Currency::parse`]
/// rejects it, so an event in such a currency is parked with the reason instead of being booked
/// with a made-up exponent. A currency Stripe adds is one line here.
pub const TWO_DECIMAL: [&str; 117] = [
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BMD", "BND", "BOB", "BRL", "BSD", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF", "CNY",
    "COP", "CRC", "CVE", "CZK", "DKK", "DOP", "DZD", "EGP", "ETB", "EUR", "FJD", "FKP", "GBP",
    "GEL", "GIP", "GMD", "GTQ", "GYD", "HKD", "HNL", "HRK", "HTG", "IDR", "ILS", "INR", "JMD",
    "KES", "KGS", "KHR", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "MAD", "MDL", "MKD",
    "MMK", "MNT", "MOP", "MRO", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO",
    "NOK", "NPR", "NZD", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "QAR", "RON", "RSD", "RUB",
    "SAR", "SBD", "SCR", "SEK", "SGD", "SHP", "SLL", "SOS", "SRD", "STD", "SZL", "THB", "TJS",
    "TOP", "TRY", "TTD", "TZS", "UAH", "USD", "UYU", "UZS", "WST", "XCD", "YER", "ZAR", "ZMW",
];

/// Every code with a rule of its own (zero-, three-decimal and special cases).
pub fn listed_codes() -> impl Iterator<Item = &'static str> {
    ZERO_DECIMAL
        .iter()
        .chain(THREE_DECIMAL.iter())
        .chain(SPECIAL.iter())
        .copied()
}

/// Whether Stripe's currency table names `code` (upper case).
pub fn is_known(code: &str) -> bool {
    listed_codes().any(|c| c == code) || TWO_DECIMAL.contains(&code)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidCurrency {
    #[error("invalid currency code {0:?}: expected three ASCII letters")]
    Malformed(String),
    /// Three letters, but not a currency in Stripe's table: its decimals are unknown, and
    /// guessing them would book amounts 10, 100 or 1000 times off.
    #[error(
        "currency {0} is not in the exponent table (Stripe's supported currencies): its number of decimals is unknown, so it is not booked; add it to shared/core/src/currency.rs"
    )]
    Unknown(String),
}

impl Currency {
    pub const USD: Currency = Currency(*b"USD");
    pub const EUR: Currency = Currency(*b"EUR");
    pub const JPY: Currency = Currency(*b"JPY");
    pub const KWD: Currency = Currency(*b"KWD");

    pub fn parse(code: &str) -> Result<Self, InvalidCurrency> {
        let bytes = code.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return Err(InvalidCurrency::Malformed(code.chars().take(16).collect()));
        }
        let currency = Currency([
            bytes[0].to_ascii_uppercase(),
            bytes[1].to_ascii_uppercase(),
            bytes[2].to_ascii_uppercase(),
        ]);
        if !is_known(currency.code()) {
            return Err(InvalidCurrency::Unknown(currency.code().to_owned()));
        }
        Ok(currency)
    }

    /// Upper-case code, e.g. `"USD"`.
    pub fn code(&self) -> &str {
        // The bytes are always ASCII letters (checked in `parse`).
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Lower-case code as Stripe writes it, e.g. `"usd"`.
    pub fn stripe_code(&self) -> String {
        self.code().to_ascii_lowercase()
    }

    pub fn rule(&self) -> CurrencyRule {
        let code = self.code();
        if ZERO_DECIMAL.contains(&code) {
            return CurrencyRule {
                exponent: 0,
                charge_multiple: 1,
                payout_multiple: 1,
            };
        }
        if THREE_DECIMAL.contains(&code) {
            return CurrencyRule {
                exponent: 3,
                charge_multiple: 10,
                payout_multiple: 10,
            };
        }
        match code {
            "ISK" => CurrencyRule {
                exponent: 2,
                charge_multiple: 100,
                payout_multiple: 100,
            },
            "HUF" | "TWD" => CurrencyRule {
                exponent: 2,
                charge_multiple: 1,
                payout_multiple: 100,
            },
            // Two-decimal: `parse` admits only codes in the tables, and every code not matched
            // above is in `TWO_DECIMAL`.
            _ => CurrencyRule {
                exponent: 2,
                charge_multiple: 1,
                payout_multiple: 1,
            },
        }
    }

    pub fn exponent(&self) -> u32 {
        self.rule().exponent
    }
}

impl FromStr for Currency {
    type Err = InvalidCurrency;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::parse(s)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.stripe_code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Currency::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponents_follow_stripe_table() {
        for c in ZERO_DECIMAL {
            assert_eq!(Currency::parse(c).unwrap().exponent(), 0, "{c}");
        }
        for c in THREE_DECIMAL {
            assert_eq!(Currency::parse(c).unwrap().exponent(), 3, "{c}");
        }
        for c in ["USD", "EUR", "ISK", "HUF", "TWD", "GBP"] {
            assert_eq!(Currency::parse(c).unwrap().exponent(), 2, "{c}");
        }
        assert_eq!(Currency::parse("isk").unwrap().rule().charge_multiple, 100);
        assert_eq!(Currency::parse("huf").unwrap().rule().payout_multiple, 100);
        assert_eq!(Currency::parse("huf").unwrap().rule().charge_multiple, 1);
        assert_eq!(Currency::parse("kwd").unwrap().rule().charge_multiple, 10);
    }

    #[test]
    fn parse_rejects_garbage_and_normalises_case() {
        assert_eq!(Currency::parse("usd").unwrap(), Currency::USD);
        assert!(Currency::parse("us").is_err());
        assert!(Currency::parse("usdd").is_err());
        assert!(Currency::parse("u$d").is_err());
        assert!(Currency::parse("ü").is_err());
        assert!(matches!(
            Currency::parse("us"),
            Err(InvalidCurrency::Malformed(_))
        ));
    }

    #[test]
    fn a_currency_missing_from_the_table_is_rejected_not_given_two_decimals() {
        // XTS is ISO 4217's code reserved for testing; XBT and ABC are no currency at all.
        for code in ["xts", "XBT", "abc"] {
            let err = Currency::parse(code).unwrap_err();
            assert_eq!(err, InvalidCurrency::Unknown(code.to_ascii_uppercase()));
            assert!(
                err.to_string().contains("not in the exponent table"),
                "{err}"
            );
        }
        let err = serde_json::from_str::<Currency>("\"xts\"").unwrap_err();
        assert!(err
            .to_string()
            .contains("currency XTS is not in the exponent table"));
        // Every two-decimal code is known, and none is also in another table.
        for c in TWO_DECIMAL {
            assert_eq!(Currency::parse(c).unwrap().exponent(), 2, "{c}");
            assert!(!listed_codes().any(|l| l == c), "{c} listed twice");
        }
        let c: Currency = serde_json::from_str("\"jpy\"").unwrap();
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"jpy\"");
    }
}
