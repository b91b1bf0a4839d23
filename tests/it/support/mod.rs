//! Shared helpers for the integration tests.

pub mod fake_stripe;
pub mod fixtures;
pub mod moto;
pub mod stripe_libs;
