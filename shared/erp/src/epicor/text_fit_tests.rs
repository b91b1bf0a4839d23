//! Customer names, address lines and phone numbers against the Epicor fields' widths.

use super::*;
use crate::commands::{Address, CustomerUpsert, ExternalRef};
use ledgerbridge_core::Currency;

fn cfg() -> EpicorConfig {
    serde_json::from_value(serde_json::json!({
        "base_url": "https://erp.example.com/Kinetic", "company": "EPIC06",
        "invoice_group_id": "STRIPE", "cash_group_id": "STRIPECR",
        "journal": {"book_id": "MAIN", "journal_code": "GJ", "group_id": "STRIPEGL"}
    }))
    .unwrap()
}

fn customer(name: &str, line1: &str, phone: &str) -> CustomerUpsert {
    CustomerUpsert {
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
            city: Some("Zürich".into()),
            ..Address::default()
        },
        phone: Some(phone.into()),
    }
}

#[test]
fn long_names_and_lines_are_cut_in_utf16_units_and_kept_whole_in_the_comment() {
    // 45 letters then 3 emoji (2 UTF-16 units each): 51 units, one over Name's 50.
    let name = format!("{}\u{1F600}\u{1F600}\u{1F600}", "N".repeat(45));
    let line1 = format!("{} Strasse 1", "Lange".repeat(10));
    let body = customer_body(&cfg(), &customer(&name, &line1, "+41 44 123 45 67"), None).unwrap();
    let sent_name = body["Name"].as_str().unwrap();
    assert_eq!(sent_name, format!("{}\u{1F600}\u{1F600}", "N".repeat(45)));
    assert!(sent_name.encode_utf16().count() <= 50);
    let sent_line = body["Address1"].as_str().unwrap();
    assert!(sent_line.encode_utf16().count() <= 50, "{sent_line}");
    assert!(line1.starts_with(sent_line));
    assert_eq!(body["City"], "Zürich");
    assert_eq!(body["PhoneNum"], "+41 44 123 45 67");
    let comment = body["Comment"].as_str().unwrap();
    assert!(comment.contains(&format!("Name: {name}")), "{comment}");
    assert!(comment.contains(&format!("Address1: {line1}")), "{comment}");
    assert!(!comment.contains("City"), "{comment}");
}

#[test]
fn values_that_fit_are_sent_whole_without_a_comment() {
    let body = customer_body(
        &cfg(),
        &customer("Northwind", "1 Main St", "555-0100"),
        None,
    )
    .unwrap();
    assert_eq!(body["Name"], "Northwind");
    assert_eq!(body["PhoneNum"], "555-0100");
    assert!(body.get("Comment").is_none());
}

#[test]
fn a_phone_number_too_long_for_its_field_is_kept_in_the_comment_not_cut() {
    let phone = "+1 (555) 010-0000 ext. 12345";
    let body = customer_body(&cfg(), &customer("Northwind", "1 Main St", phone), None).unwrap();
    assert!(body.get("PhoneNum").is_none());
    assert!(body["Comment"]
        .as_str()
        .unwrap()
        .contains(&format!("PhoneNum: {phone}")));
}
