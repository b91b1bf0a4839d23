//! Messages on the transform → erp-post queue, versioned so the two functions can be deployed
//! independently.

use ledgerbridge_erp::{ErpCommand, ExternalRef};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How erp-post finds the ERP customer of a document whose `customer_id` is not yet known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerHint {
    /// `cus_…`
    pub stripe_customer: String,
    /// An ERP customer number from the Stripe customer's metadata, if any.
    pub erp_customer_no: Option<String>,
    pub email: Option<String>,
    /// The customer to create when no existing one is found (`customer_id` already chosen).
    pub create: Option<ledgerbridge_erp::CustomerUpsert>,
}

/// Where to write the ERP id back in Stripe (object metadata).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteBack {
    /// API path segment: `customers`, `charges`, `payment_intents`, `refunds`, `invoices`, `payouts`.
    pub object_path: String,
    pub object_id: String,
    /// Metadata key, e.g. `ledgerbridge_sales_order`.
    pub key: String,
}

/// Which Stripe event produced the command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub event_id: String,
    pub event_type: String,
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErpCommandV1 {
    pub command: ErpCommand,
    /// Set when `command`'s customer is to be resolved at posting time.
    pub customer: Option<CustomerHint>,
    /// Documents that must exist in the ERP first (e.g. the order a receipt applies to).
    #[serde(default)]
    pub depends_on: Vec<ExternalRef>,
    /// For customer upserts: apply only if this version is newer than the last applied one.
    pub version: Option<i64>,
    pub write_back: Option<WriteBack>,
    pub source: Source,
}

/// Values for the user-defined fields of a Stripe customer's ERP customer (the state of one of
/// its subscriptions). Not a document: writing the same values twice changes nothing, and
/// `version` keeps an older state from overwriting a newer one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerFieldsV1 {
    /// Whose ERP customer (resolved, or created, like a document's customer).
    pub customer: CustomerHint,
    /// The Stripe object the values describe (`sub_…`): versions are kept per object.
    pub object_id: String,
    /// Logical field name → value (`ledgerbridge_erp::fields`).
    pub values: BTreeMap<String, String>,
    /// The event's `created`: a lower version than one already written is skipped.
    pub version: i64,
    pub source: Source,
}

/// Messages on the commands queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum CommandMessage {
    #[serde(rename = "erp_command.v1")]
    ErpCommandV1(Box<ErpCommandV1>),
    #[serde(rename = "customer_fields.v1")]
    CustomerFieldsV1(Box<CustomerFieldsV1>),
}

impl CommandMessage {
    pub fn encode(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    pub fn decode(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The message group on a FIFO queue: all documents of one Stripe object stay in order.
    pub fn group(&self) -> String {
        match self {
            CommandMessage::ErpCommandV1(c) => c.command.reference().stripe_id().to_string(),
            CommandMessage::CustomerFieldsV1(f) => f.object_id.clone(),
        }
    }
}
