//! Paths that used to end an event without booking it and without a reason a person could act
//! on: a `charge.refunded` whose refund list does not show the refund, an event in a currency
//! missing from the exponent table, and invoices in an older API version's shape.

use super::{transform_at, Handler};
use crate::mapping::{Mapping, EXAMPLE};
use crate::outcome::{Outcome, StageError};
use ledgerbridge_core::event::Event;
use ledgerbridge_erp::{commands::lines_total, ErpCommand};
use ledgerbridge_stripe::fake::FakeStripe;
use ledgerbridge_stripe::objects::StripeRefund;
use serde_json::json;

const CREATED: i64 = 1_784_538_764;

fn mapping() -> Mapping {
    Mapping::from_toml(EXAMPLE).unwrap()
}

fn event(value: serde_json::Value) -> Event {
    serde_json::from_value(value).unwrap()
}

/// `charge.refunded` for 20.00 of a 50.00 charge, up from 0.
fn charge_refunded() -> Event {
    event(json!({
        "id": "evt_refunded", "object": "event", "type": "charge.refunded", "created": CREATED,
        "data": {
            "object": {
                "id": "ch_1", "object": "charge", "amount": 5000, "amount_refunded": 2000,
                "currency": "usd", "customer": "cus_1", "refunded": false, "status": "succeeded"
            },
            "previous_attributes": {"amount_refunded": 0}
        }
    }))
}

fn refund(id: &str, amount: i64, status: &str) -> StripeRefund {
    serde_json::from_value(json!({
        "id": id, "object": "refund", "amount": amount, "currency": "usd", "charge": "ch_1",
        "status": status, "created": CREATED
    }))
    .unwrap()
}

fn retry_reason(r: Result<Outcome, StageError>) -> String {
    match r {
        Err(e @ StageError::Retry { .. }) => e.to_string(),
        other => panic!("expected a retry, got {other:?}"),
    }
}

fn park_reason(r: Result<Outcome, StageError>) -> String {
    match r {
        Err(StageError::Park { reason, .. }) => reason,
        other => panic!("expected a park, got {other:?}"),
    }
}

#[tokio::test]
async fn charge_refunded_with_an_empty_refund_list_waits_then_parks() {
    let m = mapping();
    let stripe = FakeStripe::new();
    let ev = charge_refunded();
    // GIVEN Stripe's list does not show the refund yet, WHEN the event is fresh, THEN it is
    // retried (never acknowledged as "nothing to book").
    let reason = retry_reason(transform_at(&m, &stripe, &ev, CREATED + 60).await);
    assert!(
        reason.contains("charge ch_1 reports 20.00 USD refunded (up from 0.00 USD) but Stripe lists 0 refund(s)"),
        "{reason}"
    );
    // Still retried just before the wait ends.
    let wait = i64::from(m.defaults.refund_wait_minutes) * 60;
    assert!(wait > 0);
    retry_reason(transform_at(&m, &stripe, &ev, CREATED + wait - 1).await);
    // THEN, once the wait is over, parked with what to do.
    let reason = park_reason(transform_at(&m, &stripe, &ev, CREATED + wait).await);
    assert!(reason.contains("Stripe lists 0 refund(s)"), "{reason}");
    assert!(reason.contains("replay this event"), "{reason}");
}

#[tokio::test]
async fn charge_refunded_with_a_short_refund_list_waits_for_the_missing_refund() {
    let m = mapping();
    // An earlier 5.00 refund is listed; the new 15.00 one is not (amount_refunded 20.00).
    let stripe = FakeStripe::new().with_refund(refund("re_old", 500, "succeeded"));
    let mut ev = charge_refunded();
    ev.data.previous_attributes = Some(json!({"amount_refunded": 500}));
    let reason = retry_reason(transform_at(&m, &stripe, &ev, CREATED).await);
    assert!(
        reason.contains("reports 20.00 USD refunded (up from 5.00 USD) but Stripe lists 1 refund(s) totalling 5.00 USD"),
        "{reason}"
    );
    // A failed refund does not count towards what the charge says was refunded.
    let stripe = FakeStripe::new()
        .with_refund(refund("re_old", 500, "succeeded"))
        .with_refund(refund("re_failed", 1500, "failed"));
    retry_reason(transform_at(&m, &stripe, &ev, CREATED).await);
    // WHEN the refund shows up, THEN both refunds are booked (the earlier one again by its own
    // reference, which erp-post books once).
    let stripe = FakeStripe::new()
        .with_refund(refund("re_old", 500, "succeeded"))
        .with_refund(refund("re_new", 1500, "succeeded"));
    match transform_at(&m, &stripe, &ev, CREATED).await.unwrap() {
        Outcome::Commands(c) => {
            let refs: Vec<String> = c
                .iter()
                .map(|c| c.command.reference().full().to_owned())
                .collect();
            assert_eq!(refs, ["LB-re_old-CM", "LB-re_new-CM"]);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn charge_refunded_with_an_unavailable_refund_list_is_retried() {
    let m = mapping();
    let stripe = FakeStripe::new();
    stripe.fail_next(ledgerbridge_stripe::StripeError::RateLimited { retry_after: None });
    let r = transform_at(&m, &stripe, &charge_refunded(), CREATED).await;
    assert!(matches!(r, Err(StageError::Retry { .. })), "{r:?}");
}

#[tokio::test]
async fn charge_refunded_whose_refund_is_pending_is_left_to_refund_updated() {
    // The pending refund is listed and counted: nothing is missing, and the credit memo is
    // booked by the refund.updated that reports it succeeded.
    let m = mapping();
    let stripe = FakeStripe::new().with_refund(refund("re_1", 2000, "pending"));
    let out = transform_at(&m, &stripe, &charge_refunded(), CREATED)
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Skipped(_)), "{out:?}");
}

#[tokio::test]
async fn an_event_in_a_currency_missing_from_the_exponent_table_is_parked_not_guessed() {
    let m = mapping();
    let stripe = FakeStripe::new();
    // XTS (ISO 4217's testing code) is no Stripe currency: its decimals are unknown.
    let payment = event(json!({
        "id": "evt_xts", "object": "event", "type": "payment_intent.succeeded", "created": CREATED,
        "data": {"object": {
            "id": "pi_xts", "object": "payment_intent", "amount": 12345, "amount_received": 12345,
            "currency": "xts", "customer": "cus_1", "status": "succeeded"
        }}
    }));
    assert_eq!(
        super::handler_of(&payment.event_type),
        Some(Handler::Payments)
    );
    let reason = park_reason(transform_at(&m, &stripe, &payment, CREATED).await);
    assert!(
        reason.contains("currency XTS is not in the exponent table"),
        "{reason}"
    );
    let refund = event(json!({
        "id": "evt_xts_re", "object": "event", "type": "refund.created", "created": CREATED,
        "data": {"object": {
            "id": "re_xts", "object": "refund", "amount": 100, "currency": "xts",
            "charge": "ch_1", "customer": "cus_1", "status": "succeeded"
        }}
    }));
    let reason = park_reason(transform_at(&m, &stripe, &refund, CREATED).await);
    assert!(reason.contains("currency XTS"), "{reason}");
}

/// An invoice as API versions before 2020-08-27 send it: tax per line in `tax_amounts`, the
/// invoice's tax in `total_tax_amounts` and `tax`, a discount (if any) in `discount`.
fn old_invoice(total: i64, tax: i64, discount: Option<serde_json::Value>) -> Event {
    let mut invoice = json!({
        "id": "in_old", "object": "invoice", "currency": "usd", "customer": "cus_1",
        "status": "open", "subtotal": 1000, "total": total, "tax": tax,
        "created": CREATED, "status_transitions": {"finalized_at": CREATED},
        "total_tax_amounts": [{"amount": tax, "inclusive": false, "tax_rate": "txr_1"}],
        "lines": {"object": "list", "has_more": false, "data": [{
            "id": "ii_1", "object": "line_item", "amount": 1000, "currency": "usd",
            "description": "Widget", "quantity": 2, "type": "invoiceitem",
            "tax_amounts": [{"amount": tax, "inclusive": false, "tax_rate": "txr_1"}]
        }]}
    });
    if let Some(d) = discount {
        invoice["discount"] = d;
    }
    event(json!({
        "id": "evt_old_in", "object": "event", "type": "invoice.finalized", "created": CREATED,
        "api_version": "2019-12-03", "data": {"object": invoice}
    }))
}

#[tokio::test]
async fn an_invoice_with_tax_in_the_older_tax_amounts_shape_is_booked_with_its_tax() {
    let m = mapping();
    let out = transform_at(
        &m,
        &FakeStripe::new(),
        &old_invoice(1100, 100, None),
        CREATED,
    )
    .await
    .unwrap();
    let Outcome::Commands(cmds) = out else {
        panic!("{out:?}")
    };
    let ErpCommand::CreateInvoice(inv) = &cmds[0].command else {
        panic!("{:?}", cmds[0])
    };
    assert_eq!(inv.lines.len(), 2, "{:?}", inv.lines);
    assert_eq!(inv.lines[1].description, "Sales tax (txr_1)");
    assert_eq!(inv.lines[1].unit_price.minor, 100);
    assert_eq!(lines_total(inv.currency, &inv.lines).unwrap().minor, 1100);
}

#[tokio::test]
async fn an_invoice_with_an_invoice_level_discount_is_parked_naming_the_older_shape() {
    let m = mapping();
    let discount = json!({"object": "discount", "coupon": {"id": "TENOFF", "percent_off": 10}});
    let reason = park_reason(
        transform_at(
            &m,
            &FakeStripe::new(),
            &old_invoice(990, 90, Some(discount)),
            CREATED,
        )
        .await,
    );
    assert!(reason.contains("older API version's shape"), "{reason}");
    assert!(reason.contains("coupon TENOFF"), "{reason}");
    assert!(!reason.starts_with("in_old: lines add up"), "{reason}");
}

#[tokio::test]
async fn the_example_mapping_books_a_guest_payment_to_its_default_customer() {
    // Guest checkout: no Stripe customer, no e-mail.
    let m = mapping();
    assert_eq!(m.defaults.guest_customer.as_deref(), Some("GUEST"));
    let guest = event(json!({
        "id": "evt_guest", "object": "event", "type": "payment_intent.succeeded", "created": CREATED,
        "data": {"object": {
            "id": "pi_guest", "object": "payment_intent", "amount": 2500, "amount_received": 2500,
            "currency": "usd", "customer": null, "receipt_email": null, "status": "succeeded",
            "payment_method_types": ["card"]
        }}
    }));
    let Outcome::Commands(cmds) = transform_at(&m, &FakeStripe::new(), &guest, CREATED)
        .await
        .unwrap()
    else {
        panic!("a guest payment is booked")
    };
    assert!(!cmds.is_empty());
    for c in &cmds {
        assert!(c.customer.is_none(), "no customer to resolve: {c:?}");
        let customer = match &c.command {
            ErpCommand::CreateSalesOrder(o) => &o.customer_id,
            ErpCommand::CreateCashReceipt(r) => &r.customer_id,
            ErpCommand::CreateInvoice(i) => &i.customer_id,
            other => panic!("{other:?}"),
        };
        assert_eq!(customer, "GUEST");
    }
}
