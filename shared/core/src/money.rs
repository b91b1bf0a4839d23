//! Exact money: integer minor units plus currency, converted to decimals with the currency's
//! own exponent. No binary floating point anywhere.

use crate::currency::Currency;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount overflow in {0}")]
    Overflow(Currency),
    #[error("currency mismatch: {0} vs {1}")]
    CurrencyMismatch(Currency, Currency),
    #[error("{value} has more decimals than {currency} allows ({exponent})")]
    TooPrecise {
        value: Decimal,
        currency: Currency,
        exponent: u32,
    },
    #[error("{minor} minor units of {currency} must be a multiple of {multiple}")]
    NotAMultiple {
        minor: i64,
        currency: Currency,
        multiple: i64,
    },
}

/// How to round a computed value (an FX conversion, a proration) to the currency's minor unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// Banker's rounding: half to even (the default for accounting aggregates).
    #[default]
    HalfEven,
    /// Half away from zero (commercial rounding).
    HalfUp,
}

impl From<Rounding> for RoundingStrategy {
    fn from(r: Rounding) -> Self {
        match r {
            Rounding::HalfEven => RoundingStrategy::MidpointNearestEven,
            Rounding::HalfUp => RoundingStrategy::MidpointAwayFromZero,
        }
    }
}

/// An amount in a currency's minor unit (cents, yen, fils).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// Integer minor units, as Stripe sends them.
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub const fn new(minor: i64, currency: Currency) -> Self {
        Money { minor, currency }
    }

    pub const fn zero(currency: Currency) -> Self {
        Money { minor: 0, currency }
    }

    /// The exact decimal value in major units, with the currency's scale
    /// (e.g. `1234 USD` → `12.34`, `1000 JPY` → `1000`, `5120 KWD` → `5.120`).
    pub fn to_decimal(&self) -> Decimal {
        Decimal::new(self.minor, self.currency.exponent())
    }

    /// Parse a decimal in major units. Rejects values with more decimals than the currency has
    /// (never truncates) and values that do not fit in `i64` minor units.
    pub fn from_decimal(value: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        let exponent = currency.exponent();
        let normalized = value.normalize();
        if normalized.scale() > exponent {
            return Err(MoneyError::TooPrecise {
                value,
                currency,
                exponent,
            });
        }
        Self::scale_integral(normalized, currency)
    }

    /// Round a computed decimal (in major units) to the currency's minor unit with a named rule.
    pub fn from_decimal_rounded(
        value: Decimal,
        currency: Currency,
        rounding: Rounding,
    ) -> Result<Self, MoneyError> {
        let rounded = value.round_dp_with_strategy(currency.exponent(), rounding.into());
        Self::scale_integral(rounded, currency)
    }

    fn scale_integral(value: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        let factor = Decimal::from(10_i64.pow(currency.exponent()));
        let minor = value
            .checked_mul(factor)
            .ok_or(MoneyError::Overflow(currency))?;
        // `minor` is integral here (scale ≤ exponent), so to_i64 cannot truncate.
        if !minor.fract().is_zero() {
            return Err(MoneyError::TooPrecise {
                value,
                currency,
                exponent: currency.exponent(),
            });
        }
        minor
            .to_i64()
            .map(|m| Money::new(m, currency))
            .ok_or(MoneyError::Overflow(currency))
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        self.minor
            .checked_add(other.minor)
            .map(|m| Money::new(m, self.currency))
            .ok_or(MoneyError::Overflow(self.currency))
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        self.minor
            .checked_sub(other.minor)
            .map(|m| Money::new(m, self.currency))
            .ok_or(MoneyError::Overflow(self.currency))
    }

    pub fn checked_neg(self) -> Result<Money, MoneyError> {
        self.minor
            .checked_neg()
            .map(|m| Money::new(m, self.currency))
            .ok_or(MoneyError::Overflow(self.currency))
    }

    pub fn is_zero(&self) -> bool {
        self.minor == 0
    }

    fn same_currency(&self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch(self.currency, other.currency))
        }
    }

    /// Stripe's constraint on payment, refund and dispute amounts (e.g. three-decimal amounts
    /// end in 0, ISK amounts are whole krónur).
    pub fn check_charge_amount(&self) -> Result<(), MoneyError> {
        self.check_multiple(self.currency.rule().charge_multiple)
    }

    /// Stripe's constraint on payout amounts (HUF, TWD and ISK payouts are whole units).
    pub fn check_payout_amount(&self) -> Result<(), MoneyError> {
        self.check_multiple(self.currency.rule().payout_multiple)
    }

    fn check_multiple(&self, multiple: i64) -> Result<(), MoneyError> {
        if self.minor % multiple == 0 {
            Ok(())
        } else {
            Err(MoneyError::NotAMultiple {
                minor: self.minor,
                currency: self.currency,
                multiple,
            })
        }
    }
}

/// Sum an iterator of amounts in one currency, overflow-checked.
pub fn checked_sum(
    currency: Currency,
    items: impl IntoIterator<Item = Money>,
) -> Result<Money, MoneyError> {
    items
        .into_iter()
        .try_fold(Money::zero(currency), Money::checked_add)
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal(), self.currency)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Money({} {})", self.to_decimal(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::currency::listed_codes;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn c(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    #[test]
    fn converts_with_the_currency_exponent() {
        assert_eq!(Money::new(1234, c("usd")).to_decimal().to_string(), "12.34");
        assert_eq!(Money::new(1000, c("jpy")).to_decimal().to_string(), "1000");
        assert_eq!(Money::new(1000, c("kwd")).to_decimal().to_string(), "1.000");
        assert_eq!(Money::new(5120, c("bhd")).to_decimal().to_string(), "5.120");
        assert_eq!(
            Money::new(-30084, c("usd")).to_decimal().to_string(),
            "-300.84"
        );
        assert_eq!(
            Money::new(50000, c("isk")).to_decimal().to_string(),
            "500.00"
        );
        // 12-digit Stripe amounts stay exact.
        assert_eq!(
            Money::new(999_999_999_999, c("usd"))
                .to_decimal()
                .to_string(),
            "9999999999.99"
        );
    }

    #[test]
    fn rejects_excess_precision_instead_of_truncating() {
        let err = Money::from_decimal(Decimal::from_str("12.345").unwrap(), c("usd")).unwrap_err();
        assert!(matches!(err, MoneyError::TooPrecise { .. }));
        let err = Money::from_decimal(Decimal::from_str("1.5").unwrap(), c("jpy")).unwrap_err();
        assert!(matches!(err, MoneyError::TooPrecise { .. }));
        // trailing zeros are not extra precision
        let m = Money::from_decimal(Decimal::from_str("12.3400").unwrap(), c("usd")).unwrap();
        assert_eq!(m.minor, 1234);
        let m = Money::from_decimal(Decimal::from_str("5.124").unwrap(), c("kwd")).unwrap();
        assert_eq!(m.minor, 5124);
        assert!(
            m.check_charge_amount().is_err(),
            "three-decimal charges must end in 0"
        );
    }

    #[test]
    fn named_rounding_rules() {
        let v = Decimal::from_str("108.705").unwrap();
        assert_eq!(
            Money::from_decimal_rounded(v, c("usd"), Rounding::HalfEven)
                .unwrap()
                .minor,
            10870
        );
        assert_eq!(
            Money::from_decimal_rounded(v, c("usd"), Rounding::HalfUp)
                .unwrap()
                .minor,
            10871
        );
        let v = Decimal::from_str("-0.5").unwrap();
        assert_eq!(
            Money::from_decimal_rounded(v, c("jpy"), Rounding::HalfUp)
                .unwrap()
                .minor,
            -1
        );
    }

    #[test]
    fn arithmetic_is_checked() {
        let usd = c("usd");
        assert!(Money::new(i64::MAX, usd)
            .checked_add(Money::new(1, usd))
            .is_err());
        assert!(Money::new(i64::MIN, usd).checked_neg().is_err());
        assert!(Money::new(1, usd)
            .checked_add(Money::new(1, c("eur")))
            .is_err());
        assert_eq!(
            checked_sum(usd, [Money::new(100, usd), Money::new(-30, usd)])
                .unwrap()
                .minor,
            70
        );
        let huge = Decimal::from_str("99999999999999999999.99").unwrap();
        assert!(matches!(
            Money::from_decimal(huge, usd),
            Err(MoneyError::Overflow(_))
        ));
    }

    #[test]
    fn payout_rules_for_special_currencies() {
        assert!(Money::new(12345, c("huf")).check_charge_amount().is_ok());
        assert!(Money::new(12345, c("huf")).check_payout_amount().is_err());
        assert!(Money::new(12300, c("twd")).check_payout_amount().is_ok());
        assert!(Money::new(12345, c("isk")).check_charge_amount().is_err());
    }

    fn any_currency() -> impl Strategy<Value = Currency> {
        let mut codes: Vec<&'static str> = listed_codes().collect();
        codes.extend(["USD", "EUR", "GBP", "CAD", "MXN", "CHF"]);
        proptest::sample::select(codes).prop_map(|s| Currency::parse(s).unwrap())
    }

    proptest! {
        #[test]
        fn decimal_round_trip_is_exact(minor in -999_999_999_999_999i64..=999_999_999_999_999i64, cur in any_currency()) {
            let m = Money::new(minor, cur);
            let d = m.to_decimal();
            prop_assert_eq!(d.scale(), cur.exponent());
            prop_assert_eq!(Money::from_decimal(d, cur).unwrap(), m);
            // the textual form has exactly `exponent` decimals
            let text = d.to_string();
            let decimals = text.split('.').nth(1).map_or(0, str::len) as u32;
            prop_assert_eq!(decimals, cur.exponent());
        }

        #[test]
        fn sums_match_integer_sums(a in -10_000_000_000i64..10_000_000_000, b in -10_000_000_000i64..10_000_000_000, cur in any_currency()) {
            let s = Money::new(a, cur).checked_add(Money::new(b, cur)).unwrap();
            prop_assert_eq!(s.to_decimal(), Money::new(a, cur).to_decimal() + Money::new(b, cur).to_decimal());
            prop_assert_eq!(s.minor, a + b);
        }

        #[test]
        fn rounding_never_exceeds_half_a_minor_unit(minor in -1_000_000_000i64..1_000_000_000, extra in 0u32..1000, cur in any_currency()) {
            // value = minor units plus a sub-minor fraction extra/1000
            let exp = cur.exponent();
            let v = Decimal::new(minor, exp) + Decimal::new(i64::from(extra), exp + 3);
            let r = Money::from_decimal_rounded(v, cur, Rounding::HalfEven).unwrap();
            let diff = (r.to_decimal() - v).abs();
            prop_assert!(diff <= Decimal::new(5, exp + 1));
        }
    }
}
