//! Every versioned message that travels on a queue, in one place. Producers and consumers can be
//! deployed independently: each message carries its `type` with a version, a consumer reads every
//! version it knows and parks (never drops) one it does not.
//!
//! | queue | messages | module |
//! | --- | --- | --- |
//! | intake → transform (events) | `stripe_event.v1`, `stripe_event_ref.v1` | [`stripe_event`] |
//! | transform → erp-post (commands) | `erp_command.v1`, `customer_fields.v1` | [`erp_command`] |
//! | ERP side → erp-sync (ERP events) | `erp_customer_changed.v1` | [`erp_customer_changed`] |
//! | every stage → its parked queue | `parked.v1` | [`parked`] |
//!
//! An operator's replay marks a message with the optional `replay` attribute ([`replay`]).

pub mod erp_command;
pub mod erp_customer_changed;
pub mod parked;
pub mod replay;
pub mod stripe_event;

pub use erp_command::{
    CommandMessage, CustomerFieldsV1, CustomerHint, ErpCommandV1, Source, WriteBack,
};
pub use erp_customer_changed::{ErpCustomerChangedV1, ErpMessage};
pub use parked::ParkedV1;
pub use replay::{is_replay, mark_replay};
pub use stripe_event::{DecodeError, IntakeMessage, RefReason, StripeEventRefV1, StripeEventV1};
