//! The event table and the handlers agree: every type in the table reaches its family's handler,
//! and nothing outside the table is booked.

use super::{handled_event_types, handler_of, transform, Handler, EVENT_TABLE};
use crate::mapping::{Mapping, EXAMPLE};
use crate::outcome::Outcome;
use ledgerbridge_core::event::Event;
use ledgerbridge_stripe::fake::FakeStripe;
use std::collections::BTreeSet;

/// Every read fails (an empty Stripe): the handlers are reached with an empty object and give
/// up early.
fn unreachable() -> FakeStripe {
    FakeStripe::new()
}

fn event(event_type: &str) -> Event {
    serde_json::from_value(serde_json::json!({
        "id": "evt_table", "object": "event", "type": event_type, "created": 1_784_538_764,
        "data": {"object": {}}
    }))
    .unwrap()
}

fn not_booked(outcome: &Result<Outcome, crate::outcome::StageError>) -> bool {
    matches!(outcome, Ok(Outcome::Skipped(why)) if why.ends_with("is not booked by this version"))
}

#[tokio::test]
async fn every_type_in_the_table_reaches_its_handler() {
    let m = Mapping::from_toml(EXAMPLE).unwrap();
    for (event_type, handler) in EVENT_TABLE {
        let out = transform(&m, &unreachable(), &event(event_type)).await;
        if *handler == Handler::Reconciliation {
            // Forwarded to reconciliation by the stage, never booked as commands.
            assert!(not_booked(&out), "{event_type}: {out:?}");
        } else {
            assert!(!not_booked(&out), "{event_type} has no handler: {out:?}");
        }
    }
}

#[tokio::test]
async fn types_outside_the_table_are_not_booked() {
    let m = Mapping::from_toml(EXAMPLE).unwrap();
    for event_type in ["customer.deleted", "payment_intent.created", "future.thing"] {
        assert_eq!(handler_of(event_type), None);
        let out = transform(&m, &unreachable(), &event(event_type)).await;
        assert!(not_booked(&out), "{event_type}: {out:?}");
    }
}

#[test]
fn the_handled_list_is_the_table() {
    let listed = handled_event_types();
    let unique: BTreeSet<&String> = listed.iter().collect();
    assert_eq!(unique.len(), listed.len(), "duplicate rows in the table");
    assert_eq!(listed.len(), EVENT_TABLE.len());
    assert!(listed.iter().all(|t| handler_of(t).is_some()));
    assert!(listed.iter().any(|t| t == "refund.failed"));
    assert!(!listed.iter().any(|t| t == "customer.deleted"));
}
