//! ERP side of ledgerbridge: an ERP-neutral command model ([`commands`]), the [`ErpConnector`]
//! port with one error classification ([`connector`]), and connectors for Epicor Kinetic
//! ([`epicor`]), Sage Pro ([`sagepro`]) and Sage 500 ([`sage500`]), selected at run time through
//! [`AnyConnector`].

pub mod agent;
pub mod commands;
pub mod connector;
pub mod error;
pub mod fields;
pub mod kind;

pub use commands::{
    Address, Application, CashReceipt, CommandError, CreditMemo, CustomerUpsert, DocKind,
    DocumentLine, ErpCommand, ErpDate, ExternalRef, Invoice, JournalEntry, JournalLine, SalesOrder,
    Side,
};
pub use connector::{
    post_command, with_retry, Credentials, ErpConnector, ErpCustomerMatch, ErpCustomerRecord,
    PostOutcome, RetryPolicy,
};
pub use error::{ErpError, ErpErrorKind};

pub mod epicor;
pub(crate) mod http;
pub mod sage500;
pub mod sagepro;
pub mod settings;
pub mod time;

pub use fields::{CustomerFieldMap, FieldTarget, FieldsOutcome};
pub use kind::{ErpKind, UnknownErpKind};
pub use settings::{AnyConnector, ErpSettings};
