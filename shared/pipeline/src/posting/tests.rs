//! The poster against the in-memory store and a fake ERP: claim, cross-reference short-circuit,
//! dependency wait, stale update, park, and a create whose response was lost.

use super::{PostResult, Poster};
use crate::mapping::{Mapping, EXAMPLE};
use crate::outcome::StageError;
use ledgerbridge_adapters::embedded::SqliteStore;
use ledgerbridge_core::ids::{ErpDocumentId, IdempotencyKey, StripeObjectId};
use ledgerbridge_core::keys::IntentKey;
use ledgerbridge_core::ports::{
    Claim, ClaimRequest, IdempotencyStore, RecordStatus, XrefRecord, XrefStore,
};
use ledgerbridge_core::{Currency, FixedClock, Money};
use ledgerbridge_erp::fields::FieldsOutcome;
use ledgerbridge_erp::{
    Address, Application, CashReceipt, CustomerUpsert, DocKind, DocumentLine, ErpCommand,
    ErpConnector, ErpCustomerMatch, ErpCustomerRecord, ErpDate, ErpError, ExternalRef, Invoice,
    RetryPolicy,
};
use ledgerbridge_messages::{CustomerHint, ErpCommandV1, Source};
use ledgerbridge_stripe::fake::FakeStripe;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

const NOW_SECS: i64 = 1_786_000_000;

/// How the fake ERP answers `create`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CreateMode {
    Ok,
    /// The ERP rejects the document (validation).
    Reject,
    /// The ERP commits the document, but the response is lost (a timeout after sending).
    LoseResponse,
}

#[derive(Default)]
struct ErpState {
    /// Documents by full external reference.
    docs: BTreeMap<String, ErpDocumentId>,
    created: Vec<ErpCommand>,
    creates: u32,
    finds: u32,
    updates: u32,
}

struct FakeErp {
    mode: Mutex<CreateMode>,
    state: Mutex<ErpState>,
}

impl FakeErp {
    fn new(mode: CreateMode) -> Self {
        FakeErp {
            mode: Mutex::new(mode),
            state: Mutex::new(ErpState::default()),
        }
    }

    fn set_mode(&self, mode: CreateMode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn creates(&self) -> u32 {
        self.state.lock().unwrap().creates
    }

    fn finds(&self) -> u32 {
        self.state.lock().unwrap().finds
    }

    fn documents(&self) -> usize {
        self.state.lock().unwrap().docs.len()
    }
}

impl ErpConnector for FakeErp {
    fn erp(&self) -> &'static str {
        "epicor"
    }

    async fn find_by_reference(
        &self,
        reference: &ExternalRef,
    ) -> Result<Option<ErpDocumentId>, ErpError> {
        let mut s = self.state.lock().unwrap();
        s.finds += 1;
        Ok(s.docs.get(&reference.to_string()).cloned())
    }

    async fn create(&self, command: &ErpCommand) -> Result<ErpDocumentId, ErpError> {
        let mode = *self.mode.lock().unwrap();
        let mut s = self.state.lock().unwrap();
        s.creates += 1;
        if mode == CreateMode::Reject {
            return Err(ErpError::permanent("epicor", "customer GUEST is on hold"));
        }
        let id = ErpDocumentId::new(format!("DOC-{}", s.docs.len() + 1));
        s.docs.insert(command.reference().to_string(), id.clone());
        s.created.push(command.clone());
        if mode == CreateMode::LoseResponse {
            return Err(ErpError::Retryable {
                erp: "epicor",
                status: None,
                message: "timed out after sending".into(),
                retry_after: None,
                may_have_committed: true,
            });
        }
        Ok(id)
    }

    async fn update_customer(&self, _: &ErpDocumentId, _: &CustomerUpsert) -> Result<(), ErpError> {
        self.state.lock().unwrap().updates += 1;
        Ok(())
    }

    async fn find_customer_by_email(&self, _: &str) -> Result<Option<ErpCustomerMatch>, ErpError> {
        Ok(None)
    }

    async fn set_customer_fields(
        &self,
        _: &str,
        _: &BTreeMap<String, String>,
    ) -> Result<FieldsOutcome, ErpError> {
        Ok(FieldsOutcome::default())
    }

    async fn customers_changed_since(
        &self,
        _: i64,
        _: usize,
    ) -> Result<Vec<ErpCustomerRecord>, ErpError> {
        Ok(Vec::new())
    }
}

fn poster(mode: CreateMode) -> Poster<FakeErp, SqliteStore, FakeStripe, FixedClock> {
    Poster {
        connector: FakeErp::new(mode),
        store: SqliteStore::in_memory().unwrap(),
        stripe: None,
        mapping: Mapping::from_toml(EXAMPLE).unwrap(),
        policy: RetryPolicy {
            max_attempts: 1,
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            max_retry_after: Duration::ZERO,
            settle_after_ambiguous: Duration::ZERO,
        },
        clock: FixedClock::at_secs(NOW_SECS),
        lease_ms: 60_000,
        intent_days: 30,
    }
}

fn reference(id: &str, kind: DocKind) -> ExternalRef {
    ExternalRef::new(&StripeObjectId::new(id), kind).unwrap()
}

fn source(event_id: &str, created: i64) -> Source {
    Source {
        event_id: event_id.into(),
        event_type: "test.event".into(),
        created,
    }
}

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::parse("usd").unwrap())
}

fn date() -> ErpDate {
    ErpDate::from_unix(NOW_SECS).unwrap()
}

/// A receipt for the guest customer (no customer resolution), applied to `depends_on`.
fn receipt(id: &str, depends_on: Vec<ExternalRef>) -> ErpCommandV1 {
    ErpCommandV1 {
        command: ErpCommand::CreateCashReceipt(CashReceipt {
            reference: reference(id, DocKind::CashReceipt),
            customer_id: "GUEST".into(),
            receipt_date: date(),
            amount: usd(1200),
            payment_method: "STRIPE".into(),
            applies_to: None,
        }),
        customer: None,
        depends_on,
        version: None,
        write_back: None,
        source: source("evt_receipt", NOW_SECS),
    }
}

fn invoice(id: &str) -> ErpCommandV1 {
    ErpCommandV1 {
        command: ErpCommand::CreateInvoice(Invoice {
            reference: reference(id, DocKind::Invoice),
            customer_id: "GUEST".into(),
            invoice_date: date(),
            due_date: None,
            currency: Currency::parse("usd").unwrap(),
            lines: vec![DocumentLine {
                item_id: "ITEM".into(),
                description: "Stripe payment".into(),
                quantity: Decimal::ONE,
                unit_price: usd(1200),
                gl_account: None,
            }],
            sales_order: None,
        }),
        customer: None,
        depends_on: Vec::new(),
        version: None,
        write_back: None,
        source: source("evt_invoice", NOW_SECS),
    }
}

fn customer_upsert(event_id: &str, version: i64) -> ErpCommandV1 {
    let upsert = CustomerUpsert {
        reference: reference("cus_1", DocKind::Customer),
        customer_id: "C0001".into(),
        name: "Northwind Traders".into(),
        email: None,
        currency: Currency::parse("usd").unwrap(),
        address: Address::default(),
        phone: None,
    };
    ErpCommandV1 {
        command: ErpCommand::UpsertCustomer(upsert.clone()),
        customer: Some(CustomerHint {
            stripe_customer: "cus_1".into(),
            erp_customer_no: None,
            email: None,
            create: Some(upsert),
        }),
        depends_on: Vec::new(),
        version: Some(version),
        write_back: None,
        source: source(event_id, version),
    }
}

fn is_retry(e: &StageError) -> bool {
    matches!(e, StageError::Retry { .. })
}

#[tokio::test]
async fn a_document_is_posted_and_cross_referenced() {
    let p = poster(CreateMode::Ok);
    let msg = receipt("pi_1", Vec::new());
    let out = p.handle(&msg).await.unwrap();
    assert_eq!(
        out,
        PostResult::Posted {
            erp_id: ErpDocumentId::new("DOC-1"),
            created: true
        }
    );
    let x = p
        .store
        .get_xref(&StripeObjectId::new("pi_1"), DocKind::CashReceipt.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(x.erp_id, ErpDocumentId::new("DOC-1"));
    let key: IdempotencyKey =
        IntentKey::post("epicor", reference("pi_1", DocKind::CashReceipt)).into();
    let intent = p.store.get(&key).await.unwrap().unwrap();
    assert_eq!(intent.status, RecordStatus::Completed);
    assert_eq!(intent.result.as_deref(), Some("DOC-1"));
}

#[tokio::test]
async fn a_claim_held_by_another_worker_is_retried_without_touching_the_erp() {
    let p = poster(CreateMode::Ok);
    let msg = receipt("pi_2", Vec::new());
    let key: IdempotencyKey =
        IntentKey::post("epicor", reference("pi_2", DocKind::CashReceipt)).into();
    let now_ms = NOW_SECS * 1000;
    let claim = p
        .store
        .claim(&ClaimRequest {
            key,
            payload_hash: String::new(),
            now_ms,
            lease_ms: 60_000,
            expiration: NOW_SECS + 86_400,
        })
        .await
        .unwrap();
    assert_eq!(claim, Claim::Acquired);
    let err = p.handle(&msg).await.unwrap_err();
    assert!(is_retry(&err), "{err}");
    assert!(
        err.to_string().contains("being posted by another worker"),
        "{err}"
    );
    assert_eq!(p.connector.creates(), 0);
    assert_eq!(p.connector.finds(), 0);
}

#[tokio::test]
async fn a_cross_referenced_document_is_not_sent_to_the_erp_again() {
    let p = poster(CreateMode::Ok);
    p.store
        .put_xref_if_absent(&XrefRecord {
            stripe_id: StripeObjectId::new("pi_3"),
            doc_kind: DocKind::CashReceipt.as_str().to_owned(),
            erp: "epicor".into(),
            erp_id: ErpDocumentId::new("CR-9"),
            created_at_ms: NOW_SECS * 1000,
            posted: None,
            command: None,
        })
        .await
        .unwrap();
    let out = p.handle(&receipt("pi_3", Vec::new())).await.unwrap();
    assert_eq!(
        out,
        PostResult::AlreadyPosted {
            erp_id: ErpDocumentId::new("CR-9")
        }
    );
    assert_eq!(p.connector.finds(), 0);
    assert_eq!(p.connector.creates(), 0);
    // A redelivery of a posted document is answered from the cross-reference too.
    let p = poster(CreateMode::Ok);
    let msg = receipt("pi_4", Vec::new());
    p.handle(&msg).await.unwrap();
    let again = p.handle(&msg).await.unwrap();
    assert_eq!(
        again,
        PostResult::AlreadyPosted {
            erp_id: ErpDocumentId::new("DOC-1")
        }
    );
    assert_eq!(p.connector.creates(), 1);
}

#[tokio::test]
async fn a_dependent_waits_for_its_parent_then_applies_to_it() {
    let p = poster(CreateMode::Ok);
    let inv = invoice("in_1");
    let rcpt = receipt("pi_5", vec![inv.command.reference().clone()]);
    let err = p.handle(&rcpt).await.unwrap_err();
    assert!(is_retry(&err), "{err}");
    assert!(err.to_string().contains("waiting for"), "{err}");
    assert_eq!(p.connector.creates(), 0);

    p.handle(&inv).await.unwrap();
    let out = p.handle(&rcpt).await.unwrap();
    assert!(matches!(out, PostResult::Posted { created: true, .. }));
    let state = p.connector.state.lock().unwrap();
    match state.created.last() {
        Some(ErpCommand::CreateCashReceipt(r)) => {
            assert_eq!(
                r.applies_to,
                Some(Application::Invoice(ErpDocumentId::new("DOC-1")))
            );
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn an_older_customer_update_is_skipped() {
    let p = poster(CreateMode::Ok);
    let newer = p
        .handle(&customer_upsert("evt_new", NOW_SECS))
        .await
        .unwrap();
    assert!(
        matches!(newer, PostResult::Posted { created: true, .. }),
        "{newer:?}"
    );
    let older = p
        .handle(&customer_upsert("evt_old", NOW_SECS - 60))
        .await
        .unwrap();
    assert_eq!(older, PostResult::Stale);
    assert_eq!(p.connector.creates(), 1);
    assert_eq!(p.connector.state.lock().unwrap().updates, 0);
}

#[tokio::test]
async fn a_permanent_erp_error_parks_the_message_and_its_dependents() {
    let p = poster(CreateMode::Reject);
    let inv = invoice("in_2");
    let err = p.handle(&inv).await.unwrap_err();
    match &err {
        StageError::Park { reason, source } => {
            assert_eq!(
                reason,
                "epicor rejected the request: customer GUEST is on hold"
            );
            assert!(source.is_some());
        }
        other => panic!("expected park, got {other:?}"),
    }
    // The intent records the park and its reason (a replay after the fix claims it again).
    let key: IdempotencyKey = IntentKey::post("epicor", reference("in_2", DocKind::Invoice)).into();
    let intent = p.store.get(&key).await.unwrap().unwrap();
    assert_eq!(intent.status, RecordStatus::Parked);
    assert_eq!(
        intent.result.as_deref(),
        Some("epicor rejected the request: customer GUEST is on hold")
    );
    assert_eq!(p.connector.creates(), 1);
    // A receipt for the parked invoice is parked with it, naming the reason.
    let rcpt = receipt("pi_6", vec![inv.command.reference().clone()]);
    match p.handle(&rcpt).await.unwrap_err() {
        StageError::Park { reason, .. } => {
            assert!(
                reason.starts_with("depends on LB-in_2-IN, which is parked"),
                "{reason}"
            );
        }
        other => panic!("expected park, got {other:?}"),
    }
}

#[tokio::test]
async fn a_lost_create_response_is_found_by_reference_not_posted_twice() {
    let p = poster(CreateMode::LoseResponse);
    let msg = receipt("pi_7", Vec::new());
    // The ERP committed, the answer was lost: retried, and the intent stays held until its
    // lease lapses (an ERP's search may lag behind its commits, RELIABILITY E5).
    let err = p.handle(&msg).await.unwrap_err();
    assert!(is_retry(&err), "{err}");
    assert_eq!(p.connector.documents(), 1);
    p.connector.set_mode(CreateMode::Ok);
    let early = p.handle(&msg).await.unwrap_err();
    assert!(is_retry(&early), "{early}");
    assert_eq!(
        p.connector.creates(),
        1,
        "nothing sent while the intent is held"
    );
    // After the lease, the redelivery searches by reference first and finds the document.
    p.clock.set_secs(NOW_SECS + 61);
    let out = p.handle(&msg).await.unwrap();
    assert_eq!(
        out,
        PostResult::Posted {
            erp_id: ErpDocumentId::new("DOC-1"),
            created: false
        }
    );
    assert_eq!(p.connector.creates(), 1);
    assert_eq!(p.connector.documents(), 1);
    let x = p
        .store
        .get_xref(&StripeObjectId::new("pi_7"), DocKind::CashReceipt.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(x.erp_id, ErpDocumentId::new("DOC-1"));
}

#[tokio::test]
async fn a_posted_document_is_counted_once_with_its_latency_and_a_rejected_one_as_parked() {
    ledgerbridge_core::metrics::start_recording();
    let p = poster(CreateMode::Ok);
    let mut msg = receipt("pi_m1", Vec::new());
    msg.source.created = NOW_SECS - 90;
    p.handle(&msg).await.unwrap();
    // A redelivery is answered from the cross-reference: not a second document.
    p.handle(&msg).await.unwrap();
    let rejecting = poster(CreateMode::Reject);
    rejecting.handle(&invoice("in_m1")).await.unwrap_err();
    let seen = ledgerbridge_core::metrics::take_recorded();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0]["DocumentsPosted"], 1);
    assert_eq!(seen[0]["erp"], "epicor");
    assert_eq!(seen[0]["kind"], "cash_receipt");
    assert_eq!(seen[0]["EventToDocumentLatency"], 90_000);
    assert_eq!(seen[1]["DocumentsParked"], 1);
    assert_eq!(seen[1]["kind"], "invoice");
    assert!(seen[1].get("DocumentsPosted").is_none());
}

#[tokio::test]
async fn a_replayed_command_whose_document_is_gone_is_parked_with_the_document_named() {
    // GIVEN a receipt posted and cross-referenced, then deleted by hand in the ERP
    let p = poster(CreateMode::Ok);
    let msg = receipt("pi_gone", Vec::new());
    p.handle(&msg).await.unwrap();
    let finds_after_post = p.connector.finds();
    p.connector.state.lock().unwrap().docs.clear();
    // WHEN it is delivered again live THEN it is answered from the cross-reference, no ERP call
    let live = p.handle_marked(&msg, false).await.unwrap();
    assert_eq!(
        live,
        PostResult::AlreadyPosted {
            erp_id: ErpDocumentId::new("DOC-1")
        }
    );
    assert_eq!(p.connector.finds(), finds_after_post);
    // WHEN an operator replays it THEN the ERP is asked once and the message is parked with a
    // reason naming the document and the re-post command; nothing is created
    let err = p.handle_marked(&msg, true).await.unwrap_err();
    assert_eq!(p.connector.finds(), finds_after_post + 1);
    assert_eq!(p.connector.creates(), 1);
    let StageError::Park { reason, .. } = err else {
        panic!("expected park, got {err:?}")
    };
    assert!(reason.contains("DOC-1"), "{reason}");
    assert!(reason.contains("cash_receipt"), "{reason}");
    assert!(reason.contains("ledgerbridge audit --from"), "{reason}");
    assert!(reason.contains("--repost"), "{reason}");
}

#[tokio::test]
async fn a_replayed_command_whose_document_exists_is_answered_from_the_cross_reference() {
    let p = poster(CreateMode::Ok);
    let msg = receipt("pi_here", Vec::new());
    p.handle(&msg).await.unwrap();
    let finds = p.connector.finds();
    let out = p.handle_marked(&msg, true).await.unwrap();
    assert_eq!(
        out,
        PostResult::AlreadyPosted {
            erp_id: ErpDocumentId::new("DOC-1")
        }
    );
    assert_eq!(p.connector.finds(), finds + 1);
    assert_eq!(p.connector.creates(), 1);
}

/// A credit memo for a refund of `payment`, waiting for that payment's receipt (what the
/// refund transform produces with `refunds.wait_for_payment`).
fn refund_memo(refund: &str, payment: &str) -> ErpCommandV1 {
    ErpCommandV1 {
        command: ErpCommand::CreateCreditMemo(ledgerbridge_erp::CreditMemo {
            reference: reference(refund, DocKind::CreditMemo),
            customer_id: "GUEST".into(),
            memo_date: date(),
            currency: Currency::parse("usd").unwrap(),
            lines: vec![DocumentLine {
                item_id: "ITEM".into(),
                description: format!("Stripe refund {refund}"),
                quantity: Decimal::ONE,
                unit_price: usd(500),
                gl_account: None,
            }],
            reason: None,
            applies_to_invoice: None,
        }),
        customer: None,
        depends_on: vec![reference(payment, DocKind::CashReceipt)],
        version: None,
        write_back: None,
        source: source("evt_refund", NOW_SECS),
    }
}

#[tokio::test]
async fn a_refund_of_a_payment_not_booked_yet_waits_for_its_receipt_then_books() {
    let p = poster(CreateMode::Ok);
    let memo = refund_memo("re_w1", "pi_w1");
    let err = p.handle(&memo).await.unwrap_err();
    assert!(is_retry(&err), "{err}");
    assert_eq!(
        p.connector.creates(),
        0,
        "no credit memo before the payment"
    );

    p.handle(&receipt("pi_w1", vec![])).await.unwrap();
    let out = p.handle(&memo).await.unwrap();
    assert!(matches!(out, PostResult::Posted { created: true, .. }));
    assert_eq!(p.connector.creates(), 2);
}

#[tokio::test]
async fn a_parent_that_never_comes_parks_its_child_after_the_wait_limit_naming_the_payment() {
    let p = poster(CreateMode::Ok);
    let limit = i64::from(p.mapping.defaults.parent_wait_minutes) * 60_000;
    assert!(limit > 0);
    let memo = refund_memo("re_w2", "ch_w2");
    // Waits while the limit has not passed since the first wait (the event's own age does not
    // count: a backlog of old events must not park on its first wait).
    assert!(is_retry(&p.handle(&memo).await.unwrap_err()));
    p.clock.advance_millis(limit - 1_000);
    assert!(is_retry(&p.handle(&memo).await.unwrap_err()));
    p.clock.advance_millis(1_000);
    let err = p.handle(&memo).await.unwrap_err();
    assert!(!err.is_retriable(), "parked: {err}");
    let reason = err.to_string();
    assert!(
        reason.contains("Stripe payment ch_w2") && reason.contains("LB-ch_w2-CR"),
        "{reason}"
    );
    assert!(reason.contains("replay"), "says what to do: {reason}");
    assert_eq!(p.connector.creates(), 0);
}

#[tokio::test]
async fn a_receipt_waiting_for_its_sales_order_is_limited_too() {
    let p = poster(CreateMode::Ok);
    let so = reference("pi_w3", DocKind::SalesOrder);
    let rcpt = receipt("pi_w3", vec![so]);
    assert!(is_retry(&p.handle(&rcpt).await.unwrap_err()));
    p.clock
        .advance_millis(i64::from(p.mapping.defaults.parent_wait_minutes) * 60_000);
    let err = p.handle(&rcpt).await.unwrap_err();
    assert!(!err.is_retriable(), "{err}");
    assert!(err.to_string().contains("LB-pi_w3-SO"), "{err}");
}
