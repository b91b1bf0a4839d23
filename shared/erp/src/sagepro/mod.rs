//! Sage Pro connector for the REST surface described in the Sage Pro integration product page
//! (`/api/v1/customers`, `salesorders`, `invoices`, `cashreceipts`, `creditmemos`,
//! `journalentries`, API-key authenticated). Sage Pro itself documents no web API; this surface
//! is the one that page describes and is verified only against the project's sandbox.

pub mod client;
pub mod config;
pub mod mapping;
pub mod retry;

pub use client::SageProConnector;
pub use config::{SageProConfig, SageProCredentials};
