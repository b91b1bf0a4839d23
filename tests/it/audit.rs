//! `ledgerbridge audit` (RELIABILITY row E7): documents deleted or changed by hand in the ERP
//! after ledgerbridge cross-referenced them are flagged in one run, and `--repost` re-creates
//! the missing ones once.

use crate::pipeline::{epicor, sagepro, sandbox};
use ledgerbridge_adapters::embedded::SqliteStore;
use ledgerbridge_cli::audit::{audit, run, AuditArgs, AuditError, Repost, Status};
use ledgerbridge_core::ids::StripeObjectId;
use ledgerbridge_core::ports::XrefAudit;
use ledgerbridge_core::{Currency, Money, SystemClock};
use ledgerbridge_erp::{
    AnyConnector, CashReceipt, CustomerUpsert, DocKind, DocumentLine, ErpCommand, ErpConnector,
    ErpDate, ExternalRef, RetryPolicy, SalesOrder,
};
use ledgerbridge_erp_sandbox::{ErpKind, SandboxHandle};
use ledgerbridge_messages::{ErpCommandV1, Source};
use ledgerbridge_pipeline::mapping::{Mapping, EXAMPLE};
use ledgerbridge_pipeline::posting::{PostResult, Poster};
use ledgerbridge_stripe::StripeClient;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::time::Duration;

const RECEIPTS: usize = 60;
const ORDERS: usize = 6;

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::parse("usd").unwrap())
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(1),
        settle_after_ambiguous: Duration::from_millis(20),
    }
}

fn message(command: ErpCommand) -> ErpCommandV1 {
    ErpCommandV1 {
        command,
        customer: None,
        depends_on: Vec::new(),
        version: None,
        write_back: None,
        source: Source {
            event_id: "evt_audit".into(),
            event_type: "test.event".into(),
            created: 0,
        },
    }
}

fn reference(id: &str, kind: DocKind) -> ExternalRef {
    ExternalRef::new(&StripeObjectId::new(id), kind).unwrap()
}

fn today() -> ErpDate {
    ErpDate::from_unix(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    )
    .unwrap()
}

/// Post one customer, `RECEIPTS` receipts and `ORDERS` orders through the poster into the
/// sandbox; returns the poster's store.
async fn posted(conn: AnyConnector, item: &str) -> SqliteStore {
    conn.create(&ErpCommand::UpsertCustomer(CustomerUpsert {
        reference: reference("cus_audit", DocKind::Customer),
        customer_id: "AUDIT1".into(),
        name: "Audit Customer".into(),
        email: Some("audit@example.com".into()),
        currency: Currency::parse("usd").unwrap(),
        address: Default::default(),
        phone: None,
    }))
    .await
    .unwrap();
    let store = SqliteStore::in_memory().unwrap();
    let poster: Poster<_, _, StripeClient, _> = Poster {
        connector: conn,
        store: store.clone(),
        stripe: None,
        mapping: Mapping::from_toml(EXAMPLE).unwrap(),
        policy: policy(),
        clock: SystemClock,
        lease_ms: 30_000,
        intent_days: 90,
    };
    for i in 0..RECEIPTS {
        let cmd = ErpCommand::CreateCashReceipt(CashReceipt {
            reference: reference(&format!("pi_audit{i:03}"), DocKind::CashReceipt),
            customer_id: "AUDIT1".into(),
            receipt_date: today(),
            amount: usd(1000 + i as i64),
            payment_method: "STRIPE".into(),
            applies_to: None,
        });
        let out = poster.handle(&message(cmd)).await.unwrap();
        assert!(matches!(out, PostResult::Posted { created: true, .. }));
    }
    for i in 0..ORDERS {
        let cmd = ErpCommand::CreateSalesOrder(SalesOrder {
            reference: reference(&format!("pi_order{i:03}"), DocKind::SalesOrder),
            customer_id: "AUDIT1".into(),
            order_date: today(),
            currency: Currency::parse("usd").unwrap(),
            lines: vec![DocumentLine {
                item_id: item.into(),
                description: "Stripe payment".into(),
                quantity: Decimal::from(2),
                unit_price: usd(2500 + i as i64),
                gl_account: None,
            }],
        });
        let out = poster.handle(&message(cmd)).await.unwrap();
        assert!(matches!(out, PostResult::Posted { created: true, .. }));
    }
    store
}

/// A change made by hand in the ERP (the sandbox's admin knob).
async fn edit(sb: &SandboxHandle, erp: ErpKind, entity: &str, id: &str, change: Value) {
    let mut body = json!({"erp": erp.as_str(), "entity": entity, "id": id});
    if let (Some(b), Some(c)) = (body.as_object_mut(), change.as_object()) {
        b.extend(c.clone());
    }
    let status = reqwest::Client::new()
        .post(format!("{}/_admin/documents/edit", sb.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 204, "{entity} {id}");
}

fn whole_range() -> (i64, i64) {
    (0, i64::MAX)
}

#[tokio::test]
async fn audit_flags_every_deleted_and_changed_epicor_document_and_reposts_the_missing_once() {
    // GIVEN 60 receipts and 6 orders posted into Epicor, with their cross-references
    let sb = sandbox(ErpKind::Epicor).await;
    let item = Mapping::from_toml(EXAMPLE).unwrap().payments.item;
    let store = posted(epicor(&sb), &item).await;
    let conn = epicor(&sb);
    let xrefs = store.list_xrefs_posted_between(0, i64::MAX).await.unwrap();
    let receipts: Vec<_> = xrefs
        .iter()
        .filter(|x| x.doc_kind == "cash_receipt")
        .collect();
    let orders: Vec<_> = xrefs
        .iter()
        .filter(|x| x.doc_kind == "sales_order")
        .collect();
    assert_eq!((receipts.len(), orders.len()), (RECEIPTS, ORDERS));
    assert!(receipts
        .iter()
        .all(|x| x.posted.is_some() && x.command.is_some()));
    assert_eq!(receipts[7].posted, Some(usd(1007)));
    assert_eq!(orders[1].posted, Some(usd(2 * 2501)));
    let (from, to) = whole_range();
    let clean = audit(&store, &conn, from, to, false, &policy())
        .await
        .unwrap();
    assert_eq!(clean.count(&Status::Ok), RECEIPTS + ORDERS, "{clean:?}");

    // WHEN 50 receipts are deleted by hand, 5 receipts' and 3 orders' amounts changed
    for x in &receipts[..50] {
        edit(
            &sb,
            ErpKind::Epicor,
            "CashRecs",
            x.erp_id.as_str(),
            json!({"delete": true}),
        )
        .await;
    }
    for x in &receipts[50..55] {
        edit(
            &sb,
            ErpKind::Epicor,
            "CashRecs",
            x.erp_id.as_str(),
            json!({"set": {"/DocTranAmt": 1.23}}),
        )
        .await;
    }
    for x in &orders[..3] {
        edit(
            &sb,
            ErpKind::Epicor,
            "SalesOrders",
            x.erp_id.as_str(),
            json!({"set": {"/OrderDtls/0/DocUnitPrice": "99.99"}}),
        )
        .await;
    }

    // THEN one audit run flags 50/50 deleted and all 8 changed, and nothing else
    let report = audit(&store, &conn, from, to, false, &policy())
        .await
        .unwrap();
    assert_eq!(report.count(&Status::Missing), 50);
    assert_eq!(report.count(&Status::Different), 8);
    assert_eq!(report.count(&Status::Ok), RECEIPTS + ORDERS - 58);
    let missing: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.status == Status::Missing)
        .map(|f| f.xref.stripe_id.clone())
        .collect();
    let deleted: Vec<_> = receipts[..50].iter().map(|x| x.stripe_id.clone()).collect();
    assert_eq!(missing, deleted);
    let changed = report
        .findings
        .iter()
        .find(|f| f.xref.stripe_id == receipts[50].stripe_id)
        .unwrap();
    assert_eq!(changed.status, Status::Different);
    assert_eq!(changed.erp_amount.as_deref(), Some("1.23"));

    // AND the command reports it on the console and in CSV, and exits non-zero
    let dir = std::env::temp_dir().join(crate::support::moto::unique("lb-audit"));
    std::fs::create_dir_all(&dir).unwrap();
    let on_disk = SqliteStore::open(&dir.join("ledgerbridge.sqlite")).unwrap();
    for x in &xrefs {
        use ledgerbridge_core::ports::XrefStore;
        on_disk.put_xref_if_absent(x).await.unwrap();
    }
    let keys = sb.keys();
    let settings = json!({
        "kind": "epicor", "base_url": format!("{}/KineticTest", sb.base_url()), "company": "EPIC06",
        "invoice_group_id": "STRIPE", "cash_group_id": "STRIPECR",
        "journal": {"book_id": "MAIN", "journal_code": "GJ", "group_id": "STRIPEGL"},
        "timeout_ms": 5000, "api_key": keys.epicor_api_key, "user": keys.epicor_user, "password": keys.epicor_password
    });
    std::fs::write(dir.join("erp.json"), settings.to_string()).unwrap();
    let csv = dir.join("audit.csv");
    let today = {
        let d = today();
        d.as_str().to_owned()
    };
    let err = run(AuditArgs {
        from: today.clone(),
        to: today,
        erp_settings_file: dir.join("erp.json"),
        data_dir: dir.clone(),
        state_table: None,
        csv: Some(csv.clone()),
        repost: false,
    })
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            AuditError::Flagged {
                missing: 50,
                different: 8,
                unreadable: 0,
                ..
            }
        ),
        "{err}"
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 1 + RECEIPTS + ORDERS);
    assert_eq!(
        text.lines().filter(|l| l.starts_with("missing,")).count(),
        50
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("different,")).count(),
        8
    );
    std::fs::remove_dir_all(&dir).ok();

    // WHEN --repost runs, THEN the 50 are created once and re-pointed; changed ones are left
    let before = sb.count(ErpKind::Epicor, "CashRecs").unwrap();
    assert_eq!(before, (RECEIPTS - 50) as i64);
    let first = audit(&store, &conn, from, to, true, &policy())
        .await
        .unwrap();
    assert_eq!(first.created(), 50);
    assert!(first
        .findings
        .iter()
        .filter(|f| f.status == Status::Missing)
        .all(|f| matches!(f.repost, Some(Repost::Created(_)))));
    assert_eq!(
        sb.count(ErpKind::Epicor, "CashRecs").unwrap(),
        RECEIPTS as i64
    );

    // AND a second --repost creates none: every document is there again
    let second = audit(&store, &conn, from, to, true, &policy())
        .await
        .unwrap();
    assert_eq!(second.created(), 0);
    assert_eq!(second.count(&Status::Missing), 0);
    assert_eq!(second.count(&Status::Different), 8);
    assert_eq!(second.count(&Status::Ok), RECEIPTS + ORDERS - 8);
    assert_eq!(
        sb.count(ErpKind::Epicor, "CashRecs").unwrap(),
        RECEIPTS as i64
    );
    // the re-posted receipt carries what was posted
    let again = second
        .findings
        .iter()
        .find(|f| f.xref.stripe_id == receipts[7].stripe_id)
        .unwrap();
    assert_eq!(again.erp_amount.as_deref(), Some("10.07"));
}

#[tokio::test]
async fn audit_reads_sage_pro_amounts_and_flags_a_deleted_and_a_changed_document() {
    let sb = sandbox(ErpKind::SagePro).await;
    let item = Mapping::from_toml(EXAMPLE).unwrap().payments.item;
    let store = posted(sagepro(&sb), &item).await;
    let conn = sagepro(&sb);
    let xrefs = store.list_xrefs_posted_between(0, i64::MAX).await.unwrap();
    let (from, to) = whole_range();
    let clean = audit(&store, &conn, from, to, false, &policy())
        .await
        .unwrap();
    assert_eq!(clean.count(&Status::Ok), RECEIPTS + ORDERS, "{clean:?}");
    let receipt = xrefs.iter().find(|x| x.doc_kind == "cash_receipt").unwrap();
    let order = xrefs.iter().find(|x| x.doc_kind == "sales_order").unwrap();
    edit(
        &sb,
        ErpKind::SagePro,
        "cashreceipts",
        receipt.erp_id.as_str(),
        json!({"delete": true}),
    )
    .await;
    edit(
        &sb,
        ErpKind::SagePro,
        "salesorders",
        order.erp_id.as_str(),
        json!({"set": {"/lines/0/quantity": "3"}}),
    )
    .await;
    let report = audit(&store, &conn, from, to, false, &policy())
        .await
        .unwrap();
    assert_eq!(report.count(&Status::Missing), 1);
    assert_eq!(report.count(&Status::Different), 1);
}

/// The DynamoDB adapter on moto: posted amounts and commands stored with the cross-reference,
/// listed by posting time through a filtered scan, replaced conditionally; and an
/// Epicor audit over it flags a deleted document.
#[tokio::test]
async fn dynamodb_cross_references_list_by_posting_time_and_feed_the_audit() {
    use crate::support::moto;
    use ledgerbridge_adapters::aws::DynamoStore;
    use ledgerbridge_core::ids::ErpDocumentId;
    use ledgerbridge_core::ports::{XrefRecord, XrefStore};
    let conf = moto::sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&conf);
    let table = moto::unique("audit-state");
    moto::create_state_table(&ddb, &table).await;
    let store = DynamoStore::new(ddb, &table);
    let rec = |i: i64, erp_id: &str| XrefRecord {
        stripe_id: StripeObjectId::new(format!("pi_dyn{i:03}")),
        doc_kind: "cash_receipt".into(),
        erp: "epicor".into(),
        erp_id: ErpDocumentId::new(erp_id),
        created_at_ms: 1_000 + i,
        posted: Some(usd(100 + i)),
        command: Some(format!("{{\"n\":{i}}}")),
    };
    for i in 0..30 {
        store.put_xref_if_absent(&rec(i, "CR-1")).await.unwrap();
    }
    // A record without an amount (written before amounts were stored) reads back without one.
    let mut old = rec(99, "CR-1");
    (old.posted, old.command) = (None, None);
    store.put_xref_if_absent(&old).await.unwrap();
    let listed = store.list_xrefs_posted_between(1_010, 1_020).await.unwrap();
    let ids: Vec<i64> = listed.iter().map(|x| x.created_at_ms - 1_000).collect();
    assert_eq!(ids, (10..20).collect::<Vec<_>>());
    assert_eq!(listed[0], rec(10, "CR-1"));
    let all = store.list_xrefs_posted_between(0, i64::MAX).await.unwrap();
    assert_eq!(all.len(), 31);
    assert_eq!(all.last().unwrap().posted, None);
    assert!(!store
        .replace_xref(&rec(3, "CR-9"), &ErpDocumentId::new("CR-7"))
        .await
        .unwrap());
    assert!(store
        .replace_xref(&rec(3, "CR-9"), &ErpDocumentId::new("CR-1"))
        .await
        .unwrap());
    let got = store
        .get_xref(&StripeObjectId::new("pi_dyn003"), "cash_receipt")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, rec(3, "CR-9"));

    // The audit over the DynamoDB store: a document posted and then deleted is flagged.
    let sb = sandbox(ErpKind::Epicor).await;
    let item = Mapping::from_toml(EXAMPLE).unwrap().payments.item;
    let local = posted(epicor(&sb), &item).await;
    let first = local
        .list_xrefs_posted_between(0, i64::MAX)
        .await
        .unwrap()
        .into_iter()
        .find(|x| x.doc_kind == "cash_receipt")
        .unwrap();
    let mut moved = first.clone();
    moved.created_at_ms = 5_000;
    store.put_xref_if_absent(&moved).await.unwrap();
    edit(
        &sb,
        ErpKind::Epicor,
        "CashRecs",
        first.erp_id.as_str(),
        json!({"delete": true}),
    )
    .await;
    let report = audit(&store, &epicor(&sb), 5_000, 5_001, false, &policy())
        .await
        .unwrap();
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.count(&Status::Missing), 1);
}

/// The payment in the samples that becomes a sales order and a receipt applied to it.
const REPLAYED_PAYMENT: &str = "pi_3JitFDNq7LbKx2RzWVv0OUYJ";

/// An operator's replay (`ledgerbridge parked replay`, the console) of a command whose
/// cross-referenced document was deleted by hand in the ERP is not answered from the
/// cross-reference: erp-post reads the document back, finds it gone and parks the message with
/// a reason naming it and the re-post command; nothing is created. A replayed command whose
/// document exists is answered from the cross-reference and parks nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replayed_command_whose_document_was_deleted_is_parked_naming_the_document() {
    use ledgerbridge_adapters::embedded::SqliteQueue;
    use ledgerbridge_cli::console::embedded::{Embedded, STATE_FILE};
    use ledgerbridge_cli::console::model::ReadModel;
    use ledgerbridge_cli::local::{self, LocalArgs, QueueArgs};
    use ledgerbridge_core::ports::{EventQueue, XrefRecord, XrefStore};
    use ledgerbridge_messages::CommandMessage;

    // GIVEN the local pipeline has posted every sample event into the Epicor sandbox
    let dir = std::env::temp_dir().join(format!(
        "lb-replay-missing-it-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let mut running = local::start(&LocalArgs {
        port: 0,
        erp: ErpKind::Epicor,
        data_dir: dir.clone(),
        mapping: None,
        samples: crate::support::fixtures::fixtures_dir().join("stripe"),
        reconciliation: None,
        sweep_secs: 0,
        erp_poll_secs: 0,
        stop_after: None,
        queues: QueueArgs {
            visibility_timeout_secs: 120,
            max_receives: 10,
        },
        console: Default::default(),
    })
    .await
    .unwrap();
    let events = crate::support::fixtures::fixtures_dir().join("stripe/events");
    let s = ledgerbridge_cli::replay::replay(
        &running.webhook_url(),
        &events,
        &[local::DEV_SECRET.to_owned()],
        1,
    )
    .await
    .unwrap();
    assert_eq!(s.rejected, 0);
    assert!(running.idle(Duration::from_secs(90)).await, "not settled");
    let store = SqliteStore::open(&dir.join(STATE_FILE)).unwrap();
    let xref = |kind: &'static str| {
        let store = store.clone();
        async move {
            store
                .get_xref(&StripeObjectId::new(REPLAYED_PAYMENT), kind)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{kind} of {REPLAYED_PAYMENT} not posted"))
        }
    };
    let order = xref("sales_order").await;
    let receipt = xref("cash_receipt").await;
    let sb = running.sandbox.as_ref().unwrap();
    let orders_of = |sb: &SandboxHandle| {
        sb.documents(Some(ErpKind::Epicor))
            .unwrap()
            .iter()
            .filter(|d| {
                d.kind == "sales_order"
                    && d.reference
                        .as_deref()
                        .is_some_and(|r| r.contains(REPLAYED_PAYMENT))
            })
            .count()
    };
    assert_eq!(orders_of(sb), 1);
    let model = Embedded::open(&dir, None).unwrap();
    let parked_before = model.parked().await.unwrap();

    // WHEN the order is deleted by hand, and both commands, parked earlier, are replayed by an
    // operator
    edit(
        sb,
        ErpKind::Epicor,
        "SalesOrders",
        order.erp_id.as_str(),
        json!({"delete": true}),
    )
    .await;
    assert_eq!(orders_of(sb), 0);
    let parked_queue =
        SqliteQueue::open(&dir.join("queue-parked.sqlite"), Default::default()).unwrap();
    let body_of = |x: &XrefRecord| {
        let command: ErpCommand = serde_json::from_str(x.command.as_deref().unwrap()).unwrap();
        CommandMessage::ErpCommandV1(Box::new(message(command)))
            .encode()
            .unwrap()
    };
    for x in [&order, &receipt] {
        let parked = json!({
            "type": "parked.v1", "stage": "erp-post",
            "reason": "ERP unavailable past the retry budget", "body": body_of(x),
        });
        parked_queue.send(parked.to_string(), None).await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let to_replay = loop {
        let now: Vec<_> = model
            .parked()
            .await
            .unwrap()
            .into_iter()
            .filter(|p| !parked_before.iter().any(|b| b.id == p.id))
            .collect();
        if now.len() == 2 {
            break now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not parked: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for p in &to_replay {
        let r = model.replay(&p.id, None, "cli: ops").await.unwrap();
        assert_eq!(r.queue, "commands");
    }
    assert!(running.idle(Duration::from_secs(60)).await, "not settled");

    // THEN the order's command is parked again with a reason naming the document, its ERP id
    // and the re-post command; the receipt's (its document exists) is not; nothing is created
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let again = loop {
        let now: Vec<_> = model
            .parked()
            .await
            .unwrap()
            .into_iter()
            .filter(|p| {
                !parked_before.iter().any(|b| b.id == p.id)
                    && !to_replay.iter().any(|b| b.id == p.id)
            })
            .collect();
        if !now.is_empty() || tokio::time::Instant::now() >= deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(again.len(), 1, "{again:?}");
    let reason = &again[0].reason;
    assert!(reason.contains("sales_order"), "{reason}");
    assert!(reason.contains(REPLAYED_PAYMENT), "{reason}");
    assert!(
        reason.contains(&format!("document {}", order.erp_id)),
        "{reason}"
    );
    assert!(reason.contains("ledgerbridge audit --from"), "{reason}");
    assert!(reason.contains("--repost"), "{reason}");
    let body = again[0].body.as_deref().unwrap();
    assert!(
        body.contains(REPLAYED_PAYMENT) && body.contains("create_sales_order"),
        "{body}"
    );
    // Still marked as a replay: replaying it again (after the re-post) checks again.
    assert!(ledgerbridge_messages::is_replay(body), "{body}");
    assert_eq!(orders_of(sb), 0, "a replay must not re-create the order");
    // The cross-references are unchanged.
    assert_eq!(xref("sales_order").await.erp_id, order.erp_id);
    assert_eq!(xref("cash_receipt").await.erp_id, receipt.erp_id);

    let sandbox = running.sandbox.take().unwrap();
    assert!(running.shutdown(Duration::from_secs(10)).await);
    sandbox.shutdown().await;
    std::fs::remove_dir_all(&dir).ok();
}
