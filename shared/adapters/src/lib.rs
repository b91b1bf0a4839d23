//! Adapters behind the ports of `ledgerbridge-core`, each behind a feature so a Lambda links
//! only what it uses:
//!
//! * `aws`: SQS queues, DynamoDB stores, Secrets Manager ([`aws`]);
//! * `embedded`: the in-process queue and the SQLite stores of local mode and tests
//!   ([`embedded`]);
//! * `lambda`: the SQS batch glue with partial batch failures ([`lambda`]);
//! * `sqs-agent`: the on-premises agent's long-poll loop ([`sqs_agent`]);
//! * `reports`: the payout discrepancy report stores (DynamoDB with `aws`, SQLite with
//!   `embedded`).

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "embedded")]
pub mod embedded;
#[cfg(feature = "lambda")]
pub mod lambda;
#[cfg(feature = "sqs-agent")]
pub mod sqs_agent;
#[cfg(feature = "lambda")]
pub mod xray;
