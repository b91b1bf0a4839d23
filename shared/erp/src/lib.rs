//! ERP side of ledgerbridge: the list of ERPs ([`ErpKind`]), an ERP-neutral command model
//! ([`commands`]) with its date conversions ([`time`]), the [`ErpConnector`] port
//! ([`connector`]) with one error classification ([`error`]), posting a command once under a
//! retry policy ([`posting`]), and connectors for Epicor Kinetic ([`epicor`]), Sage Pro
//! ([`sagepro`]) and Sage 500 ([`sage500`]), selected at run time through [`AnyConnector`].

pub mod check;
pub mod commands;
pub mod connector;
pub mod error;
pub mod fields;
pub mod fit;
pub mod gate;
pub mod kind;
pub mod lazy;
pub mod posting;

pub use commands::{
    Address, Application, CashReceipt, CommandError, CreditMemo, CustomerUpsert, DocKind,
    DocumentLine, ErpCommand, ErpDate, ExternalRef, Invoice, JournalEntry, JournalLine, SalesOrder,
    Side,
};
pub use connector::{
    Credentials, DocumentReadBack, ErpConnector, ErpCustomerMatch, ErpCustomerRecord, LedgerState,
};
pub use error::{ErpError, ErpErrorKind};
pub use gate::{Gate, GateConfig, GateError};
pub use posting::{post_command, with_retry, PostOutcome, RetryPolicy};

pub mod epicor;
pub(crate) mod http;
pub mod sage500;
pub mod sagepro;
pub mod settings;
pub mod time;
pub use time::{time_zone_problem, CompanyTimeZone, UnknownTimeZone};

pub use fields::{CustomerFieldMap, FieldTarget, FieldsOutcome};
pub use kind::{ErpKind, UnknownErpKind};
pub use lazy::LazyConnector;
pub use settings::{AnyConnector, ErpSettings};
