//! Customer names, address lines and phone numbers against the Sage 500 staging widths.

use super::*;
use crate::commands::{Address, CustomerUpsert, ExternalRef};
use ledgerbridge_core::Currency;

fn row(name: &str, line1: &str, phone: &str) -> StagingRow {
    let cfg = Sage500Config::http("http://x", "SOA");
    let cmd = ErpCommand::UpsertCustomer(CustomerUpsert {
        reference: ExternalRef::new(
            &ledgerbridge_core::ids::StripeObjectId::new("cus_fit"),
            DocKind::Customer,
        )
        .unwrap(),
        customer_id: "SFIT".into(),
        name: name.into(),
        email: None,
        currency: Currency::USD,
        address: Address {
            line1: Some(line1.into()),
            ..Address::default()
        },
        phone: Some(phone.into()),
    });
    let staged = create_rows(&cfg, &cmd).unwrap();
    check_staging(&staged.rows).unwrap();
    staged.rows.into_iter().next().unwrap()
}

fn col<'a>(r: &'a StagingRow, name: &str) -> Option<&'a str> {
    r.columns
        .iter()
        .find(|(c, _)| c == name)
        .and_then(|(_, v)| match v {
            SqlValue::Text(t) => Some(t.as_str()),
            _ => None,
        })
}

#[test]
fn long_names_and_lines_are_cut_to_the_staging_width_at_a_grapheme_boundary() {
    // 39 letters, then "é" as e + combining accent (2 chars, 1 grapheme): 41 chars for 40.
    let name = format!("{}e\u{301}", "N".repeat(39));
    let line1 = "Apartment 1234, Building of the Very Long Address Name";
    let r = row(&name, line1, "555-0100");
    assert_eq!(col(&r, "CustName"), Some("N".repeat(39).as_str()));
    let sent = col(&r, "AddrLine1").unwrap();
    assert!(
        sent.chars().count() <= 40 && line1.starts_with(sent),
        "{sent}"
    );
    assert_eq!(col(&r, "Phone"), Some("555-0100"));
}

#[test]
fn a_phone_number_longer_than_the_column_is_not_sent_cut() {
    let r = row("Northwind", "1 Main St", "+1 (555) 010-0000 x123");
    assert_eq!(col(&r, "Phone"), None);
    assert_eq!(col(&r, "CustName"), Some("Northwind"));
}
