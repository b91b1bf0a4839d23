//! ledgerbridge's Stripe API client.
//!
//! * [`StripeClient`]: retrieval of the objects the pipeline needs, the balance transactions of a
//!   payout as a page iterator ([`BalanceTransactionPages`]), metadata updates with an
//!   `Idempotency-Key`, bounded retries on 429/5xx honouring `Retry-After`, a client-side rate
//!   limiter and a per-client call counter.
//! * [`types`]: tolerant wire types (`Stripe…`); balance-transaction `type` and
//!   `reporting_category` are open sets.
//! * [`StripeError`] with one retry classifier, [`StripeError::is_retriable`].

pub mod client;
pub mod config;
pub mod error;
mod limiter;
pub mod types;

pub use client::{BalanceTransactionPages, StripeClient};
pub use config::StripeClientConfig;
pub use error::StripeError;
pub use types::*;

#[cfg(test)]
mod http_tests;
