//! Cross-references with what was posted: stored, listed by posting time, replaced only while
//! they point where the caller expects, and stores older than the columns upgraded in place.

use super::*;
use ledgerbridge_core::ports::{XrefAudit, XrefStore};
use ledgerbridge_core::{Currency, Money};

fn rec(id: &str, at: i64, erp_id: &str) -> XrefRecord {
    XrefRecord {
        stripe_id: StripeObjectId::new(id),
        doc_kind: "cash_receipt".into(),
        erp: "epicor".into(),
        erp_id: ErpDocumentId::new(erp_id),
        created_at_ms: at,
        posted: Some(Money::new(1050, Currency::parse("KWD").unwrap())),
        command: Some("{}".into()),
    }
}

#[tokio::test]
async fn posted_amounts_are_stored_listed_by_time_and_replaced_conditionally() {
    let s = SqliteStore::in_memory().unwrap();
    for (id, at) in [("pi_b", 2_000), ("pi_a", 1_000), ("pi_c", 3_000)] {
        assert!(s
            .put_xref_if_absent(&rec(id, at, "CR-1"))
            .await
            .unwrap()
            .is_none());
    }
    let got = s
        .get_xref(&StripeObjectId::new("pi_a"), "cash_receipt")
        .await
        .unwrap();
    assert_eq!(got, Some(rec("pi_a", 1_000, "CR-1")));
    let listed = s.list_xrefs_posted_between(1_000, 3_000).await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|x| x.stripe_id.as_str()).collect();
    assert_eq!(ids, ["pi_a", "pi_b"]);
    // Replaced only while it still points at the expected document.
    let moved = rec("pi_a", 1_000, "CR-9");
    assert!(!s
        .replace_xref(&moved, &ErpDocumentId::new("CR-7"))
        .await
        .unwrap());
    assert!(s
        .replace_xref(&moved, &ErpDocumentId::new("CR-1"))
        .await
        .unwrap());
    let got = s
        .get_xref(&StripeObjectId::new("pi_a"), "cash_receipt")
        .await
        .unwrap();
    assert_eq!(got.unwrap().erp_id.as_str(), "CR-9");
}

#[tokio::test]
async fn a_store_from_before_the_posted_columns_is_upgraded_and_its_rows_have_no_amount() {
    let path = std::env::temp_dir().join(format!(
        "lb-xref-upgrade-{}-{}.sqlite",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE xref (stripe_id TEXT NOT NULL, doc_kind TEXT NOT NULL, erp TEXT NOT NULL,
               erp_id TEXT NOT NULL, created_at_ms INTEGER NOT NULL, PRIMARY KEY (stripe_id, doc_kind));
             INSERT INTO xref VALUES ('pi_old', 'cash_receipt', 'epicor', 'CR-1', 5);",
        )
        .unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    let old = s
        .get_xref(&StripeObjectId::new("pi_old"), "cash_receipt")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((old.posted, old.command), (None, None));
    s.put_xref_if_absent(&rec("pi_new", 6, "CR-2"))
        .await
        .unwrap();
    assert_eq!(s.list_xrefs_posted_between(0, 10).await.unwrap().len(), 2);
    drop(s);
    // Opening again leaves the upgraded store as it is.
    assert!(SqliteStore::open(&path).is_ok());
    for suffix in ["", "-wal", "-shm"] {
        std::fs::remove_file(format!("{}{suffix}", path.display())).ok();
    }
}
