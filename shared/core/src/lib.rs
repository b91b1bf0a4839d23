//! ledgerbridge's shared core: exact money, Stripe webhook verification, the tolerant event
//! envelope, versioned queue messages and the ports every function talks to. Their AWS and
//! embedded adapters are in `ledgerbridge-adapters`.

pub mod clock;
pub mod config;
pub mod currency;
pub mod event;
pub mod ids;
pub mod keys;
pub mod message;
pub mod metrics;
pub mod money;
pub mod ports;
pub mod secrets;
pub mod telemetry;
pub mod tls;
pub mod webhook;

pub use clock::{Clock, FixedClock, SystemClock};
pub use currency::Currency;
pub use money::{Money, MoneyError};
