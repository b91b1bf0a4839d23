//! The audit's read-back: the request (reference filter, lines expanded, no `$select`) and the
//! amount computed from the fields ledgerbridge writes.

use super::*;
use crate::connector::DocumentReadBack;
use ledgerbridge_core::ids::StripeObjectId;
use serde_json::json;

fn cfg() -> EpicorConfig {
    serde_json::from_value(json!({
        "base_url": "https://erp.example.com/Kinetic", "company": "EPIC06",
        "invoice_group_id": "STRIPE", "cash_group_id": "STRIPECR",
        "journal": {"book_id": "MAIN", "journal_code": "GJ", "group_id": "STRIPEGL"}
    }))
    .unwrap()
}

fn r(kind: DocKind) -> ExternalRef {
    ExternalRef::new(&StripeObjectId::new("pi_1"), kind).unwrap()
}

#[test]
fn read_back_searches_by_reference_with_the_lines_expanded() {
    let req = read_back_request(&cfg(), &r(DocKind::SalesOrder)).unwrap();
    assert_eq!(req.path, "Erp.BO.SalesOrderSvc/SalesOrders");
    assert!(req.query.iter().all(|(k, _)| k != "$select"));
    assert!(req
        .query
        .contains(&("$expand".to_owned(), "OrderDtls".to_owned())));
    assert!(req
        .query
        .iter()
        .any(|(k, v)| k == "$filter" && v.contains("'LB-pi_1-SO'")));
    let cash = read_back_request(&cfg(), &r(DocKind::CashReceipt)).unwrap();
    assert!(cash.query.iter().all(|(k, _)| k != "$expand"));
}

#[test]
fn read_back_computes_totals_from_what_was_written() {
    let order = json!({"value": [{"OrderNum": 5001, "CurrencyCode": "USD", "OrderDtls": [
        {"SellingQuantity": 2, "DocUnitPrice": "25.01"},
        {"SellingQuantity": "1", "DocUnitPrice": 0.5}]}]});
    assert_eq!(
        read_back_of(DocKind::SalesOrder, &order).unwrap(),
        DocumentReadBack::Found {
            erp_id: ErpDocumentId::new("5001"),
            amount: Some("50.52".parse().unwrap()),
            currency: Some("USD".into()),
        }
    );
    let cash = json!({"value": [{"GroupID": "STRIPECR", "HeadNum": 3, "DocTranAmt": 12.5, "CurrencyCode": "EUR"}]});
    let DocumentReadBack::Found { erp_id, amount, .. } =
        read_back_of(DocKind::CashReceipt, &cash).unwrap()
    else {
        panic!("found expected")
    };
    assert_eq!(erp_id.as_str(), "STRIPECR/3");
    assert_eq!(amount, Some("12.5".parse().unwrap()));
    let journal = json!({"value": [{"BookID": "MAIN", "FiscalYear": 2026, "JournalCode": "GJ", "JournalNum": 4,
        "GLJrnDtlMnls": [{"TotDebit": "10.00", "TotCredit": "0"}, {"TotDebit": "0", "TotCredit": "10.00"}]}]});
    let DocumentReadBack::Found { amount, .. } =
        read_back_of(DocKind::JournalEntry, &journal).unwrap()
    else {
        panic!("found expected")
    };
    assert_eq!(amount, Some("10.00".parse().unwrap()));
    // A line without a price gives no amount rather than a partial one.
    let partial = json!({"value": [{"InvoiceNum": 7, "InvcDtls": [{"SellingShipQty": 1}]}]});
    let DocumentReadBack::Found { amount, .. } = read_back_of(DocKind::Invoice, &partial).unwrap()
    else {
        panic!("found expected")
    };
    assert_eq!(amount, None);
    assert_eq!(
        read_back_of(DocKind::Invoice, &json!({"value": []})).unwrap(),
        DocumentReadBack::Missing
    );
    assert!(read_back_of(DocKind::Invoice, &json!({})).is_err());
}

#[test]
fn a_journals_posting_state_is_read_from_its_header_and_never_guessed() {
    use crate::connector::LedgerState;
    let head =
        |posted: Value| json!({"value": [{"BookID": "MAIN", "JournalNum": 4, "Posted": posted}]});
    assert_eq!(
        journal_state_of(&head(json!(true))).unwrap(),
        LedgerState::Posted
    );
    assert_eq!(
        journal_state_of(&head(json!(false))).unwrap(),
        LedgerState::Entered
    );
    assert!(matches!(
        journal_state_of(&head(json!(null))).unwrap(),
        LedgerState::NotRead(_)
    ));
    assert_eq!(
        journal_state_of(&json!({"value": []})).unwrap(),
        LedgerState::Missing
    );
    assert!(journal_state_of(&json!({})).is_err());
}
