//! Epicor Kinetic REST API v2 connector:
//! `{base}/api/v2/odata/{Company}/Erp.BO.{Service}/{EntitySet}` with `x-api-key` plus Basic
//! auth or a bearer token.

pub mod check;
pub mod client;
pub mod config;
pub mod groups;
pub mod mapping;
pub mod retry;

pub use client::EpicorConnector;
pub use config::{
    EpicorAuth, EpicorConfig, EpicorCredentials, EpicorErrorSettings, EpicorGlAccounts,
    EpicorGroupSettings, EpicorPosting, EpicorRefFields, GlAccountResolve, RefField,
};
