//! ledgerbridge's integration tests: one binary, one module per area.
//! AWS APIs come from moto in server mode (started by `support::moto`), the ERP side from the
//! project's ERP sandbox.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod backfill;
mod billing;
mod config_parameters;
mod console;
mod console_stack;
mod crash;
mod erp_check;
mod erp_contract;
mod erp_stack;
mod erp_sync;
mod faults;
mod intake;
mod lazy_secrets;
mod logs;
mod payout_pipeline;
mod pipeline;
mod recon;
mod silent_recon;
mod stack;
mod subscriptions;
mod support;
mod webhook_crosscheck;
