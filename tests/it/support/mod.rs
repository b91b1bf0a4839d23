//! Shared helpers for the integration tests.

pub mod fixtures;
pub mod moto;
pub mod stripe_libs;
