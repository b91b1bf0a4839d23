//! The heart of ledgerbridge: Stripe events become ERP commands ([`to_erp`]) using the
//! customer's mapping configuration ([`mapping`]), travel as versioned messages
//! (`ledgerbridge_messages`), and are posted effectively once ([`posting`]); ERP customer changes go back
//! to Stripe ([`to_stripe`]). [`stages`] runs one queue message through a stage.
//!
//! Modules depend only downwards: `stages` → `to_erp`, `posting`, `to_stripe` → `customer` →
//! `convert` → `outcome`, `mapping`, `store` (and the `ledgerbridge_messages` crate).

pub mod convert;
pub mod customer;
pub mod mapping;

pub mod outcome;
pub mod posting;
pub mod stages;
pub mod store;
pub mod to_erp;
pub mod to_stripe;
