//! Booking dates are the company's local days (`[defaults] time_zone`), not UTC days.

use super::tests::fixture_stripe;
use super::transform_at;
use crate::mapping::{Mapping, EXAMPLE};
use crate::outcome::Outcome;
use ledgerbridge_core::event::Event;
use ledgerbridge_stripe::fake::FakeStripe;
use ledgerbridge_stripe::objects::{StripeInvoicePayment, StripeList};
use serde_json::Value;

const PI_SUCCEEDED: &str =
    include_str!("../../../../tests/fixtures/stripe/events/payment_intent.succeeded.json");
const INVOICE_PAID: &str =
    include_str!("../../../../tests/fixtures/stripe/events/invoice.paid.json");
const INVOICE_PAYMENTS: &str = include_str!(
    "../../../../tests/fixtures/stripe/api/invoice_payments.invoice_in_1gFOr4Nq7LbKx2Rzh2xikK5p.json"
);

/// The recorded invoice payments, paid at `at`.
fn invoice_payments_paid_at(at: i64) -> FakeStripe {
    let mut v: Value = serde_json::from_str(INVOICE_PAYMENTS).unwrap();
    for p in v["data"].as_array_mut().unwrap() {
        p["status_transitions"]["paid_at"] = at.into();
    }
    let all: StripeList<StripeInvoicePayment> = serde_json::from_value(v).unwrap();
    all.data
        .into_iter()
        .fold(FakeStripe::new(), FakeStripe::with_invoice_payment)
}

/// 2026-03-01T03:30:00Z: 28 February 21:30 in Chicago (CST, UTC-6).
const EARLY_MARCH_UTC: i64 = 1_772_335_800;

fn mapping_in(zone: &str) -> Mapping {
    let text = EXAMPLE.replace("time_zone = \"UTC\"", &format!("time_zone = \"{zone}\""));
    assert!(
        EXAMPLE.contains("\ntime_zone = \"UTC\""),
        "the example mapping names its time zone"
    );
    Mapping::from_toml(&text).unwrap()
}

/// The event with its object's and its own times set to `at`.
fn event_at(text: &str, at: i64) -> Event {
    let mut v: Value = serde_json::from_str(text).unwrap();
    v["created"] = at.into();
    v["data"]["object"]["created"] = at.into();
    if v["data"]["object"].get("status_transitions").is_some() {
        v["data"]["object"]["status_transitions"]["paid_at"] = at.into();
        v["data"]["object"]["status_transitions"]["finalized_at"] = at.into();
    }
    serde_json::from_value(v).unwrap()
}

/// Every `*_date` of the commands of an outcome, as `key=value`.
fn dates(o: Outcome) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    match (k.ends_with("_date"), x) {
                        (true, Value::String(d)) => out.push(format!("{k}={d}")),
                        _ => walk(x, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let Outcome::Commands(cmds) = o else {
        panic!("expected commands, got {o:?}");
    };
    let mut out = Vec::new();
    for c in cmds {
        walk(&serde_json::to_value(&c.command).unwrap(), &mut out);
    }
    out
}

#[tokio::test]
async fn a_payment_books_on_the_company_local_day() {
    let ev = event_at(PI_SUCCEEDED, EARLY_MARCH_UTC);
    let stripe = fixture_stripe();

    let utc = dates(
        transform_at(&mapping_in("UTC"), &stripe, &ev, EARLY_MARCH_UTC)
            .await
            .unwrap(),
    );
    assert!(!utc.is_empty());
    assert!(utc.iter().all(|d| d.ends_with("=2026-03-01")), "{utc:?}");

    let chicago = dates(
        transform_at(
            &mapping_in("America/Chicago"),
            &stripe,
            &ev,
            EARLY_MARCH_UTC,
        )
        .await
        .unwrap(),
    );
    assert_eq!(chicago.len(), utc.len());
    assert!(
        chicago.iter().all(|d| d.ends_with("=2026-02-28")),
        "{chicago:?}"
    );
}

#[tokio::test]
async fn a_paid_invoice_and_its_receipt_book_on_the_company_local_day() {
    let ev = event_at(INVOICE_PAID, EARLY_MARCH_UTC);
    let got = dates(
        transform_at(
            &mapping_in("America/Chicago"),
            &invoice_payments_paid_at(EARLY_MARCH_UTC),
            &ev,
            EARLY_MARCH_UTC,
        )
        .await
        .unwrap(),
    );
    assert!(got.len() >= 2, "invoice and receipt dates: {got:?}");
    assert!(got.iter().all(|d| d.ends_with("=2026-02-28")), "{got:?}");
}

#[test]
fn an_unknown_time_zone_stops_the_start_with_the_problem_named() {
    let text = EXAMPLE.replace("time_zone = \"UTC\"", "time_zone = \"America/Chikago\"");
    let err = Mapping::from_toml(&text).unwrap_err();
    let all = err.to_string();
    assert!(all.contains("America/Chikago"), "{all}");
    assert!(all.contains("not an IANA time zone"), "{all}");
    assert!(all.contains("line"), "names the line: {all}");
}

#[test]
fn without_a_time_zone_dates_are_utc_days() {
    let text = EXAMPLE
        .lines()
        .filter(|l| !l.starts_with("time_zone"))
        .collect::<Vec<_>>()
        .join("\n");
    let m = Mapping::from_toml(&text).unwrap();
    assert_eq!(m.defaults.time_zone.name(), "UTC");
}
