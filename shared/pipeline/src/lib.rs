//! The heart of ledgerbridge: Stripe events become ERP commands ([`transform`]) using the
//! customer's mapping configuration ([`mapping`]), travel as versioned messages
//! ([`messages`]), and are posted effectively once ([`post`]).

pub mod billing;
pub mod disputes;
pub mod erp_sync;
pub mod mapping;
pub mod messages;
pub mod post;
pub mod stages;
pub mod stripe_api;
pub mod subscriptions;
pub mod transform;
