//! Stripe events → ERP commands. Pure mapping plus, where an event lacks data, a Stripe read
//! through [`StripeApi`]. No ERP access here: customers are resolved at posting time.
//!
//! [`EVENT_TABLE`] is the one list of the event types ledgerbridge acts on, each with the
//! handler of its Stripe family; the intake's default list of handled types derives from it
//! ([`handled_event_types`]). A new Stripe event is one row here plus its handler.
//!
//! One payment reported by both `payment_intent.succeeded` and `charge.succeeded`, and one
//! refund reported by `charge.refunded` and `refund.created`, produce commands with the same
//! external references, so erp-post books each once.

mod common;
mod credit_notes;
mod customers;
mod disputes;
mod documents;
mod invoices;
mod payments;
mod refunds;
pub mod subscriptions;

#[cfg(test)]
mod silent_paths_tests;
#[cfg(test)]
mod table_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod time_zone_tests;

use crate::mapping::Mapping;
use crate::outcome::{Outcome, StageError};
use common::source_of;
use ledgerbridge_core::event::Event;
use ledgerbridge_core::{Clock, SystemClock};
use ledgerbridge_stripe::api::StripeApi;
use serde::Deserialize;
use serde_json::Value;

pub use payments::invoice_of_payment;

/// The handler family of an event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    Customers,
    Payments,
    Refunds,
    Invoices,
    CreditNotes,
    Disputes,
    Subscriptions,
    /// Payout events: forwarded to payout reconciliation (when it is configured), not booked
    /// as commands.
    Reconciliation,
}

/// Every event type ledgerbridge acts on, with its handler.
///
/// `customer.deleted` is deliberately absent: the ERP keeps customer master data and history,
/// and a deletion in Stripe must neither delete nor block the ERP customer, so the intake does
/// not accept it.
pub const EVENT_TABLE: &[(&str, Handler)] = &[
    ("customer.created", Handler::Customers),
    ("customer.updated", Handler::Customers),
    ("payment_intent.succeeded", Handler::Payments),
    ("charge.succeeded", Handler::Payments),
    ("charge.captured", Handler::Payments),
    ("refund.created", Handler::Refunds),
    ("refund.updated", Handler::Refunds),
    ("charge.refund.updated", Handler::Refunds),
    ("charge.refunded", Handler::Refunds),
    // Parked with the ERP document to reverse (the money is back in the Stripe balance).
    ("refund.failed", Handler::Refunds),
    ("invoice.finalized", Handler::Invoices),
    ("invoice.paid", Handler::Invoices),
    ("invoice.payment_failed", Handler::Invoices),
    ("invoice.voided", Handler::Invoices),
    ("invoice.marked_uncollectible", Handler::Invoices),
    ("credit_note.created", Handler::CreditNotes),
    ("credit_note.voided", Handler::CreditNotes),
    ("charge.dispute.created", Handler::Disputes),
    ("charge.dispute.updated", Handler::Disputes),
    ("charge.dispute.funds_withdrawn", Handler::Disputes),
    ("charge.dispute.funds_reinstated", Handler::Disputes),
    ("charge.dispute.closed", Handler::Disputes),
    ("customer.subscription.created", Handler::Subscriptions),
    ("customer.subscription.updated", Handler::Subscriptions),
    ("customer.subscription.deleted", Handler::Subscriptions),
    ("payout.paid", Handler::Reconciliation),
    ("payout.failed", Handler::Reconciliation),
    ("payout.reconciliation_completed", Handler::Reconciliation),
];

/// The handler of an event type; `None` when ledgerbridge does not act on it.
pub fn handler_of(event_type: &str) -> Option<Handler> {
    EVENT_TABLE
        .iter()
        .find(|(t, _)| *t == event_type)
        .map(|(_, h)| *h)
}

/// The event types the intake accepts by default: every type in [`EVENT_TABLE`].
pub fn handled_event_types() -> Vec<String> {
    EVENT_TABLE.iter().map(|(t, _)| (*t).to_owned()).collect()
}

/// What the mapping's rules test on the object of any event, before its family is known: its
/// `currency` (as Stripe writes it) and `metadata`.
#[derive(Debug, Default, Deserialize)]
struct RuleFields {
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    metadata: Value,
}

/// Turn one event into commands, now.
pub async fn transform<A: StripeApi>(
    mapping: &Mapping,
    stripe: &A,
    event: &Event,
) -> Result<Outcome, StageError> {
    transform_at(mapping, stripe, event, SystemClock.now_secs()).await
}

/// Turn one event into commands at `now_secs` (epoch seconds): what waits for Stripe to catch
/// up (a refund its list does not show yet) is retried until a deadline measured from the
/// event's `created`, then parked.
pub async fn transform_at<A: StripeApi>(
    mapping: &Mapping,
    stripe: &A,
    event: &Event,
    now_secs: i64,
) -> Result<Outcome, StageError> {
    let object = &event.data.object;
    let source = source_of(event);
    let rule_fields = RuleFields::deserialize(object).unwrap_or_default();
    let currency = rule_fields.currency.as_deref().filter(|c| !c.is_empty());
    let eff = mapping.effective(&event.event_type, currency, &rule_fields.metadata);
    if eff.skip {
        return Ok(Outcome::Skipped(format!(
            "skipped by rule {:?}",
            eff.matched_rules
        )));
    }
    let not_booked = || {
        Ok(Outcome::Skipped(format!(
            "{} is not booked by this version",
            event.event_type
        )))
    };
    match handler_of(&event.event_type) {
        Some(Handler::Customers) => customers::handle(mapping, event, source),
        Some(Handler::Payments) => payments::handle(mapping, stripe, event, source, &eff).await,
        Some(Handler::Refunds) => refunds::handle(mapping, stripe, event, source, now_secs).await,
        Some(Handler::Invoices) => invoices::handle(mapping, stripe, event, source).await,
        Some(Handler::CreditNotes) => credit_notes::handle(mapping, event, source),
        Some(Handler::Disputes) => disputes::handle(mapping, event, source),
        Some(Handler::Subscriptions) => subscriptions::subscription_event(mapping, event),
        Some(Handler::Reconciliation) | None => not_booked(),
    }
}
