//! Small builders the event handlers share.

use ledgerbridge_core::event::Event;
use ledgerbridge_core::Money;
use ledgerbridge_erp::DocumentLine;
use ledgerbridge_messages::Source;
use rust_decimal::Decimal;

pub(super) fn one_line(
    item: &str,
    description: String,
    amount: Money,
    account: Option<String>,
) -> DocumentLine {
    DocumentLine {
        item_id: item.to_owned(),
        description,
        quantity: Decimal::ONE,
        unit_price: amount,
        gl_account: account,
    }
}

/// Where a command came from: the event.
pub(super) fn source_of(event: &Event) -> Source {
    Source {
        event_id: event.id.clone(),
        event_type: event.event_type.clone(),
        created: event.created,
    }
}
