//! The variance threshold of `[posting]`: parsed from the reconciliation file, validated, and
//! deciding which journals are held for review.

use super::config::{Posting, ReconFile, EXAMPLE};
use ledgerbridge_core::{Currency, Money};
use rust_decimal::Decimal;

#[test]
fn the_example_file_sets_both_limits_and_they_parse_as_decimals() {
    let file = ReconFile::from_toml(EXAMPLE).unwrap();
    assert_eq!(file.posting.hold_variance_above, Decimal::new(100, 2));
    assert_eq!(file.posting.hold_variance_ratio_above, Decimal::new(1, 3));
    assert_eq!(file.posting, Posting::default());
}

#[test]
fn negative_limits_are_rejected_with_their_names() {
    let text = EXAMPLE.replace(
        "hold_variance_above = \"1.00\"",
        "hold_variance_above = \"-1\"",
    );
    let err = ReconFile::from_toml(&text).unwrap_err().to_string();
    assert!(err.contains("posting.hold_variance_above"), "{err}");
}

#[test]
fn a_variance_is_held_above_either_limit_in_the_payout_currency() {
    let p = Posting::default();
    let usd = |minor| Money::new(minor, Currency::USD);
    assert_eq!(p.variance_hold(0, usd(100)), None);
    // 0.50 of 10,000.00: under both limits.
    assert_eq!(p.variance_hold(-50, usd(1_000_000)), None);
    // 1.01 of 10,000.00: above 1.00.
    assert!(p
        .variance_hold(101, usd(1_000_000))
        .unwrap()
        .contains("hold_variance_above"));
    // 0.50 of 100.00: above 0.1 % (0.10).
    assert!(p
        .variance_hold(50, usd(10_000))
        .unwrap()
        .contains("hold_variance_ratio_above"));
    // Zero-decimal: 2 yen is above 1 (major units), whatever the payout.
    let jpy = Currency::JPY;
    assert!(p
        .variance_hold(2, Money::new(100_000_000, jpy))
        .unwrap()
        .contains("variance 2 JPY"));
}
