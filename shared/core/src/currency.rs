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

/// Every code the table names explicitly (the rest default to two decimals).
pub fn listed_codes() -> impl Iterator<Item = &'static str> {
    ZERO_DECIMAL
        .iter()
        .chain(THREE_DECIMAL.iter())
        .chain(SPECIAL.iter())
        .copied()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid currency code {0:?}: expected three ASCII letters")]
pub struct InvalidCurrency(pub String);

impl Currency {
    pub const USD: Currency = Currency(*b"USD");
    pub const EUR: Currency = Currency(*b"EUR");
    pub const JPY: Currency = Currency(*b"JPY");
    pub const KWD: Currency = Currency(*b"KWD");

    pub fn parse(code: &str) -> Result<Self, InvalidCurrency> {
        let bytes = code.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return Err(InvalidCurrency(code.chars().take(16).collect()));
        }
        Ok(Currency([
            bytes[0].to_ascii_uppercase(),
            bytes[1].to_ascii_uppercase(),
            bytes[2].to_ascii_uppercase(),
        ]))
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
        let c: Currency = serde_json::from_str("\"jpy\"").unwrap();
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"jpy\"");
    }
}
