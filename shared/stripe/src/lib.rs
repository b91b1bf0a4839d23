//! ledgerbridge's Stripe API client.
//!
//! * [`StripeApi`]: the one typed port to Stripe (retrievals, the list calls the pipeline and
//!   the reconciliation need, metadata and customer writes); [`StripeClient`] implements it,
//!   test doubles can too.
//! * [`StripeClient`]: retrieval of the objects the pipeline needs, the balance transactions of a
//!   payout as a page iterator ([`BalanceTransactionPages`]), metadata updates with an
//!   `Idempotency-Key`, bounded retries on 429/5xx honouring `Retry-After`, a client-side rate
//!   limiter and a per-client call counter. Every API path is built here.
//! * [`objects`]: tolerant typed objects (`Stripe…`, one file per resource) with
//!   [`Expandable`] references; balance-transaction `type` and `reporting_category` are open
//!   sets. [`types`] is their former path.
//! * `fake::FakeStripe` (feature `test-util`): an in-memory [`StripeApi`] for tests.
//! * [`StripeError`] with one retry classifier, [`StripeError::is_retriable`].

pub mod api;
pub mod client;
pub mod config;
pub mod error;
#[cfg(any(test, feature = "test-util"))]
pub mod fake;
pub mod lazy;
mod limiter;
mod memo;
pub mod objects;
pub mod query;
pub mod types;

pub use api::BalanceTransactionPages;
pub use api::{BalanceTransactionFilter, BalanceTransactionQuery, PayoutListQuery, StripeApi};
pub use client::{StripeClient, StripeObjectKind};
pub use config::{KeyMode, StripeClientConfig};
pub use error::StripeError;
pub use lazy::{LazyStripe, StripeClientInit};
pub use objects::*;
pub use query::{CreatedListKind, CreatedListQuery};

#[cfg(test)]
mod http_tests;
