//! Sage Pro connector for a site-built HTTP facade (`/api/v1/customers`, `salesorders`,
//! `invoices`, `cashreceipts`, `creditmemos`, `journalentries`, API-key authenticated). Sage Pro
//! itself ships no web API that any public source shows; the resource names come from a
//! third-party integration page, and everything the connector relies on (fields, widths, errors,
//! search by reference, e-mail lookup, changed-since paging, 409 on a duplicate reference) is the
//! published OpenAPI 3.1 contract `tools/erp-sandbox/contracts/sagepro/facade.openapi.json`,
//! which the sandbox enforces. Verified only against that sandbox.

pub mod client;
pub mod config;
pub mod mapping;
pub mod retry;

pub use client::SageProConnector;
pub use config::{SageProConfig, SageProCredentials};
