//! The invoice and credit note handlers against recorded Stripe data.

use super::{credit_notes, invoices};
use crate::convert::reference;
use crate::mapping::{Mapping, EXAMPLE};
use crate::outcome::{Outcome, StageError};
use crate::posting::apply_resolution;
use crate::to_erp::common::source_of;
use ledgerbridge_core::event::Event;
use ledgerbridge_core::ids::ErpDocumentId;
use ledgerbridge_erp::{commands::lines_total, DocKind, ErpCommand, Invoice};
use ledgerbridge_messages::ErpCommandV1;
use ledgerbridge_stripe::api::StripeApi;
use ledgerbridge_stripe::fake::FakeStripe;
use ledgerbridge_stripe::objects::{StripeInvoicePayment, StripeList};
use rust_decimal::Decimal;

const INVOICE_PAID: &str =
    include_str!("../../../../tests/fixtures/stripe/events/invoice.paid.json");
const INVOICE_PAYMENTS: &str = include_str!(
        "../../../../tests/fixtures/stripe/api/invoice_payments.invoice_in_1gFOr4Nq7LbKx2Rzh2xikK5p.json"
    );
const INVOICE_CHARGE: &str =
    include_str!("../../../../tests/fixtures/stripe/api/charge_ch_3z6gSKNq7LbKx2RzlHN9nphV.json");
const CHARGE_SUCCEEDED: &str =
    include_str!("../../../../tests/fixtures/stripe/events/charge.succeeded.json");
const PI_SUCCEEDED: &str =
    include_str!("../../../../tests/fixtures/stripe/events/payment_intent.succeeded.json");

/// Serves the recorded `invoice_payments` responses: by invoice, and filtered by
/// PaymentIntent the way Stripe filters `payment[payment_intent]`.
pub(crate) fn fixture_stripe() -> FakeStripe {
    let all: StripeList<StripeInvoicePayment> = serde_json::from_str(INVOICE_PAYMENTS).unwrap();
    all.data
        .into_iter()
        .fold(FakeStripe::new(), FakeStripe::with_invoice_payment)
}

fn event(text: &str) -> Event {
    serde_json::from_str(text).unwrap()
}

fn commands(o: Outcome) -> Vec<ErpCommandV1> {
    match o {
        Outcome::Commands(c) => {
            for cmd in &c {
                // erp-post fills the customer; everything else must already be valid.
                let mut filled = cmd.command.clone();
                apply_resolution(&mut filled, Some("C1"), None);
                filled.validate().unwrap();
            }
            c
        }
        Outcome::Skipped(why) => panic!("skipped: {why}"),
        other => panic!("unexpected {other:?}"),
    }
}

fn invoice_of(cmd: &ErpCommandV1) -> &Invoice {
    match &cmd.command {
        ErpCommand::CreateInvoice(i) => i,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn invoice_lines_discount_and_tax_add_up_to_the_total() {
    let m = Mapping::from_toml(EXAMPLE).unwrap();
    let mut ev = event(INVOICE_PAID);
    ev.event_type = "invoice.finalized".into();
    let cmds = commands(billing_event(&m, &fixture_stripe(), &ev).await.unwrap());
    assert_eq!(cmds.len(), 1);
    let inv = invoice_of(&cmds[0]);
    assert_eq!(inv.reference.full(), "LB-in_1gFOr4Nq7LbKx2Rzh2xikK5p-IN");
    assert_eq!(
        lines_total(inv.currency, &inv.lines).unwrap().to_decimal(),
        Decimal::new(6820, 2)
    );
    // subscription line: 3 seats at 15.00 less 10 % = 3 × 13.50
    let seats = &inv.lines[0];
    assert_eq!(seats.quantity, Decimal::from(3));
    assert_eq!(seats.unit_price.to_decimal(), Decimal::new(1350, 2));
    assert!(
        seats.description.contains("less discount 4.50"),
        "{}",
        seats.description
    );
    // one-off line 25.00 less 2.50
    assert_eq!(inv.lines[1].unit_price.to_decimal(), Decimal::new(2250, 2));
    // one tax line of 5.20 on the tax item and account
    let cfg = m.invoices.as_ref().unwrap();
    let tax: Vec<_> = inv
        .lines
        .iter()
        .filter(|l| l.item_id == cfg.tax_item)
        .collect();
    assert_eq!(tax.len(), 1);
    assert_eq!(tax[0].unit_price.to_decimal(), Decimal::new(520, 2));
    assert_eq!(tax[0].gl_account, cfg.tax_account);
    assert_eq!(
        cmds[0].customer.as_ref().unwrap().stripe_customer,
        "cus_NHQM1cjewvnnbv"
    );
}

#[tokio::test]
async fn products_map_to_items() {
    let mut m = Mapping::from_toml(EXAMPLE).unwrap();
    m.products
        .insert("prod_S7QVysxe43zvFE".into(), "SEAT-SUB".into());
    m.products
        .insert("price_1EVYsZNq7LbKx2RzF3BPCXn1".into(), "ONBOARD".into());
    let mut ev = event(INVOICE_PAID);
    ev.event_type = "invoice.finalized".into();
    let cmds = commands(billing_event(&m, &fixture_stripe(), &ev).await.unwrap());
    let inv = invoice_of(&cmds[0]);
    assert_eq!(inv.lines[0].item_id, "SEAT-SUB");
    assert_eq!(inv.lines[1].item_id, "ONBOARD");
}

#[tokio::test]
async fn a_total_mismatch_is_permanent() {
    let m = Mapping::from_toml(EXAMPLE).unwrap();
    let mut ev = event(INVOICE_PAID);
    ev.data.object["total"] = 6821.into();
    let err = billing_event(&m, &fixture_stripe(), &ev).await.unwrap_err();
    assert!(
        matches!(err, StageError::Park { ref reason, .. } if reason.contains("68.21")),
        "{err}"
    );
    // a negative (proration credit) line is refused, not booked as something else
    let mut ev = event(INVOICE_PAID);
    ev.data.object["lines"]["data"][1]["amount"] = (-2500).into();
    assert!(matches!(
        billing_event(&m, &fixture_stripe(), &ev).await,
        Err(StageError::Park { .. })
    ));
}

#[tokio::test]
async fn uneven_net_price_becomes_one_unit() {
    let m = Mapping::from_toml(EXAMPLE).unwrap();
    let mut ev = event(INVOICE_PAID);
    // 3 seats, discount 4.51 → 40.49 is not divisible by 3
    let o = &mut ev.data.object;
    o["lines"]["data"][0]["pretax_credit_amounts"][0]["amount"] = 451.into();
    o["total"] = 6819.into();
    let cmds = commands(billing_event(&m, &fixture_stripe(), &ev).await.unwrap());
    let l = &invoice_of(&cmds[0]).lines[0];
    assert_eq!(l.quantity, Decimal::ONE);
    assert_eq!(l.unit_price.to_decimal(), Decimal::new(4049, 2));
    assert!(l.description.starts_with("3 × "), "{}", l.description);
}

#[tokio::test]
async fn paid_invoice_gives_invoice_and_applied_receipt() {
    let m = Mapping::from_toml(EXAMPLE).unwrap();
    let stripe = fixture_stripe();
    let cmds = commands(
        billing_event(&m, &stripe, &event(INVOICE_PAID))
            .await
            .unwrap(),
    );
    assert_eq!(stripe.calls(), 1);
    assert_eq!(cmds.len(), 2);
    let inv = invoice_of(&cmds[0]);
    let ErpCommand::CreateCashReceipt(r) = &cmds[1].command else {
        panic!("{:?}", cmds[1].command)
    };
    assert_eq!(r.amount.to_decimal(), Decimal::new(6820, 2));
    // keyed on the PaymentIntent: the payment events of this payment give the same reference
    assert_eq!(r.reference.full(), "LB-pi_3hs62FNq7LbKx2RzUr2AYuOp-CR");
    assert_eq!(cmds[1].depends_on, vec![inv.reference.clone()]);
    // erp-post applies it to the invoice it depends on
    let mut applied = cmds[1].command.clone();
    let erp = ErpDocumentId::new("INV-1");
    apply_resolution(&mut applied, Some("C1"), Some((DocKind::Invoice, &erp)));
    let ErpCommand::CreateCashReceipt(r) = applied else {
        unreachable!()
    };
    assert_eq!(
        r.applies_to,
        Some(ledgerbridge_erp::Application::Invoice(erp))
    );
}

fn charge_event_for_invoice() -> Event {
    let mut ev = event(CHARGE_SUCCEEDED);
    ev.data.object = serde_json::from_str(INVOICE_CHARGE).unwrap();
    ev
}

#[tokio::test]
async fn the_payment_of_a_paid_invoice_is_not_booked_again() {
    let m = Mapping::from_toml(EXAMPLE).unwrap();
    let stripe = fixture_stripe();
    let out = super::transform(&m, &stripe, &charge_event_for_invoice())
        .await
        .unwrap();
    match out {
        Outcome::Skipped(why) => assert!(why.contains("in_1gFOr4Nq7LbKx2Rzh2xikK5p"), "{why}"),
        other => panic!("booked twice: {other:?}"),
    }
    assert_eq!(stripe.calls(), 1);
    let mut pi = event(PI_SUCCEEDED);
    pi.data.object["id"] = "pi_3hs62FNq7LbKx2RzUr2AYuOp".into();
    assert!(matches!(
        super::transform(&m, &stripe, &pi).await.unwrap(),
        Outcome::Skipped(_)
    ));
    // an ordinary payment is still booked (one call, nothing found)
    let stripe = fixture_stripe();
    let cmds = commands(
        super::transform(&m, &stripe, &event(CHARGE_SUCCEEDED))
            .await
            .unwrap(),
    );
    assert!(cmds
        .iter()
        .any(|c| matches!(c.command, ErpCommand::CreateCashReceipt(_))));
    assert_eq!(stripe.calls(), 1);
    // without [invoices] nothing is looked up and the invoice's payment is booked as a payment
    let mut plain = m.clone();
    plain.invoices = None;
    let stripe = fixture_stripe();
    let out = super::transform(&plain, &stripe, &charge_event_for_invoice())
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Commands(_)));
    assert_eq!(stripe.calls(), 0);
}

#[tokio::test]
async fn void_credits_a_posted_invoice_and_skips_an_unposted_one() {
    let m = Mapping::from_toml(EXAMPLE).unwrap();
    let mut ev = event(INVOICE_PAID);
    ev.event_type = "invoice.voided".into();
    ev.data.object["status"] = "void".into();
    let stripe = fixture_stripe();
    assert!(matches!(
        billing_event(&m, &stripe, &ev).await.unwrap(),
        Outcome::Skipped(ref w) if w.contains("before ledgerbridge posted")
    ));
    ev.data.object["metadata"]["ledgerbridge_invoice"] = "INV-77".into();
    let cmds = commands(billing_event(&m, &stripe, &ev).await.unwrap());
    let ErpCommand::CreateCreditMemo(cm) = &cmds[0].command else {
        panic!()
    };
    assert_eq!(cm.reference.full(), "LB-in_1gFOr4Nq7LbKx2Rzh2xikK5p-CM");
    assert_eq!(lines_total(cm.currency, &cm.lines).unwrap().minor, 6820);
    assert_eq!(cm.applies_to_invoice, Some(ErpDocumentId::new("INV-77")));
    assert_eq!(cm.reason.as_deref(), Some("VOID"));
    assert_eq!(stripe.calls(), 0);
}

#[tokio::test]
async fn credit_notes_book_the_part_not_refunded() {
    let m = Mapping::from_toml(EXAMPLE).unwrap();
    let note = serde_json::json!({
        "id": "cn_1Pgc75Nq7LbKx2Rz", "object": "credit_note", "currency": "usd",
        "customer": "cus_NHQM1cjewvnnbv", "invoice": "in_1gFOr4Nq7LbKx2Rzh2xikK5p",
        "created": 1785900000, "total": 2436, "reason": "product_unsatisfactory",
        "lines": {"has_more": false, "data": [
            {"id": "cnli_1", "amount": 2500, "quantity": 1, "description": "Onboarding",
             "discount_amounts": [{"amount": 250, "discount": "di_1"}],
             "taxes": [{"amount": 186, "tax_behavior": "exclusive",
                        "tax_rate_details": {"tax_rate": "txr_1"}}]}]},
        "refunds": []
    });
    let mut ev = event(INVOICE_PAID);
    ev.event_type = "credit_note.created".into();
    ev.data.object = note.clone();
    let stripe = fixture_stripe();
    let cmds = commands(billing_event(&m, &stripe, &ev).await.unwrap());
    let ErpCommand::CreateCreditMemo(cm) = &cmds[0].command else {
        panic!()
    };
    assert_eq!(lines_total(cm.currency, &cm.lines).unwrap().minor, 2436);
    assert_eq!(cm.lines.len(), 2);
    assert_eq!(
        cmds[0].depends_on,
        vec![reference("in_1gFOr4Nq7LbKx2Rzh2xikK5p", DocKind::Invoice).unwrap()]
    );
    // partly refunded: only the rest is credited here
    ev.data.object["refunds"] = serde_json::json!([{"amount_refunded": 1000, "refund": "re_1"}]);
    let cmds = commands(billing_event(&m, &stripe, &ev).await.unwrap());
    let ErpCommand::CreateCreditMemo(cm) = &cmds[0].command else {
        panic!()
    };
    assert_eq!(lines_total(cm.currency, &cm.lines).unwrap().minor, 1436);
    // fully refunded: the refund events book it
    ev.data.object["refunds"] = serde_json::json!([{"amount_refunded": 2436, "refund": "re_1"}]);
    assert!(matches!(
        billing_event(&m, &stripe, &ev).await.unwrap(),
        Outcome::Skipped(_)
    ));
}

#[tokio::test]
async fn without_invoices_section_nothing_is_booked() {
    let mut m = Mapping::from_toml(EXAMPLE).unwrap();
    m.invoices = None;
    assert!(matches!(
        billing_event(&m, &fixture_stripe(), &event(INVOICE_PAID))
            .await
            .unwrap(),
        Outcome::Skipped(_)
    ));
}

/// The invoice or credit note handler of the event, as the dispatcher calls it.
async fn billing_event<A: StripeApi>(
    mapping: &Mapping,
    stripe: &A,
    event: &Event,
) -> Result<Outcome, StageError> {
    if event.event_type.starts_with("credit_note.") {
        credit_notes::handle(mapping, event, source_of(event))
    } else {
        invoices::handle(mapping, stripe, event, source_of(event)).await
    }
}
