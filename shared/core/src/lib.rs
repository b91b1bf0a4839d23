//! ledgerbridge's shared core: exact money, Stripe webhook verification, the tolerant event
//! envelope, versioned queue messages, the ports every function talks to, and their AWS and
//! embedded adapters.

pub mod clock;
pub mod config;
pub mod currency;
pub mod embedded;
pub mod event;
pub mod ids;
pub mod keys;
pub mod message;
pub mod money;
pub mod ports;
pub mod secrets;
pub mod telemetry;
pub mod webhook;

#[cfg(feature = "aws")]
pub mod aws;

pub use clock::{Clock, FixedClock, SystemClock};
pub use currency::Currency;
pub use money::{Money, MoneyError};
