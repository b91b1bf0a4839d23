//! Ports: the small capabilities the functions need, each with an AWS adapter
//! (`ledgerbridge_adapters::aws`) and an embedded adapter (`ledgerbridge_adapters::embedded`).

use crate::ids::{ErpDocumentId, IdempotencyKey, MessageId, StripeObjectId};
use serde::{Deserialize, Serialize};
use std::future::Future;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    #[error("message of {size} bytes exceeds the queue limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("queue rejected the message: {0}")]
    Rejected(String),
}

impl QueueError {
    pub fn is_retriable(&self) -> bool {
        matches!(self, QueueError::Unavailable(_))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store throttled: {0}")]
    Throttled(String),
    #[error("stored record {key} is unreadable: {message}")]
    Corrupt { key: String, message: String },
}

impl StoreError {
    pub fn is_retriable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Throttled(_))
    }
}

/// Sends messages to a work queue.
pub trait EventQueue: Send + Sync {
    /// Send one message body. `group` orders messages on FIFO queues and is ignored elsewhere.
    /// Returns only once the queue has durably accepted the message.
    fn send(
        &self,
        body: String,
        group: Option<&str>,
    ) -> impl Future<Output = Result<MessageId, QueueError>> + Send;

    /// Largest message body this queue accepts, in bytes.
    fn max_message_bytes(&self) -> usize;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecordStatus {
    InProgress,
    Completed,
    /// Verified and recorded, but not an event type this deployment handles.
    Ignored,
    /// Failed permanently (validation, mapping); the reason is in `result`. Replayable.
    Parked,
}

impl RecordStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            RecordStatus::InProgress => "INPROGRESS",
            RecordStatus::Completed => "COMPLETED",
            RecordStatus::Ignored => "IGNORED",
            RecordStatus::Parked => "PARKED",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "INPROGRESS" => Some(RecordStatus::InProgress),
            "COMPLETED" => Some(RecordStatus::Completed),
            "IGNORED" => Some(RecordStatus::Ignored),
            "PARKED" => Some(RecordStatus::Parked),
            _ => None,
        }
    }
}

/// An idempotency record (AWS Lambda Powertools' design: `expiration` in seconds,
/// `in_progress_expiration` in milliseconds, a payload hash for validation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub key: IdempotencyKey,
    pub status: RecordStatus,
    pub payload_hash: String,
    /// Epoch seconds after which the record no longer counts (checked by us, never by TTL).
    pub expiration: i64,
    /// Epoch milliseconds after which an `INPROGRESS` record may be taken over (crash recovery).
    pub in_progress_expiration: i64,
    /// Optional result of the work (a message id, an ERP id).
    pub result: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub key: IdempotencyKey,
    pub payload_hash: String,
    pub now_ms: i64,
    /// How long the claimant may hold the record in progress before others may take it over.
    pub lease_ms: i64,
    /// Epoch seconds until which the record counts once written.
    pub expiration: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The caller now holds the record `INPROGRESS` and must `complete` or `release` it.
    Acquired,
    /// Someone else holds or finished it; here is what is stored.
    Existing(IdempotencyRecord),
}

/// Claims a piece of work exactly once.
pub trait IdempotencyStore: Send + Sync {
    /// One conditional write: succeeds when the key is absent, expired (by our own clock, not
    /// TTL), or `INPROGRESS` with a lapsed lease (a crashed holder).
    fn claim(&self, req: &ClaimRequest) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    fn complete(
        &self,
        key: &IdempotencyKey,
        status: RecordStatus,
        result: Option<String>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Give a claim back after a failure so a retry can run the work again.
    fn release(&self, key: &IdempotencyKey) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Record a posted document's cross-reference (unless one exists) and complete its
    /// intent. A store that can does both in one durable write (both or neither: one synced
    /// commit instead of two in turn); this default writes the cross-reference first, then
    /// the completion, as two writes. Returns the cross-reference already stored, if any (the
    /// new one is then not written; the intent is completed all the same).
    fn complete_with_xref(
        &self,
        xref: &XrefRecord,
        key: &IdempotencyKey,
        status: RecordStatus,
        result: Option<String>,
    ) -> impl Future<Output = Result<Option<XrefRecord>, StoreError>> + Send
    where
        Self: XrefStore,
    {
        async move {
            let existing = self.put_xref_if_absent(xref).await?;
            self.complete(key, status, result).await?;
            Ok(existing)
        }
    }

    fn get(
        &self,
        key: &IdempotencyKey,
    ) -> impl Future<Output = Result<Option<IdempotencyRecord>, StoreError>> + Send;
}

/// The permanent link between a Stripe object and the ERP document made from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct XrefRecord {
    pub stripe_id: StripeObjectId,
    /// What the ERP document is (`customer`, `sales_order`, `cash_receipt`, `credit_memo`, …).
    pub doc_kind: String,
    /// Which ERP (`epicor`, `sage500`, `sagepro`).
    pub erp: String,
    pub erp_id: ErpDocumentId,
    /// When the document was posted (the record was written).
    pub created_at_ms: i64,
    /// The amount and currency posted, for the audit. `None` for customers and for records
    /// written before the amount was stored (reported as "amount not recorded", never guessed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub posted: Option<crate::Money>,
    /// The command as posted (`ErpCommand` JSON, customer and application resolved), so the
    /// audit can re-post a document deleted in the ERP without asking Stripe again. `None`
    /// for customers and older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

/// What the audit (`ledgerbridge audit`) needs of the cross-references beyond posting.
pub trait XrefAudit: Send + Sync {
    /// Every cross-reference whose `created_at_ms` is in `[from_ms, to_ms)`, oldest first.
    fn list_xrefs_posted_between(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> impl Future<Output = Result<Vec<XrefRecord>, StoreError>> + Send;

    /// Point a cross-reference at a re-posted (or re-found) document: replaces the stored
    /// record only while it still points at `expected_erp_id` (a conditional write). Returns
    /// `false` when it no longer does.
    fn replace_xref(
        &self,
        record: &XrefRecord,
        expected_erp_id: &ErpDocumentId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

pub trait XrefStore: Send + Sync {
    fn get_xref(
        &self,
        stripe_id: &StripeObjectId,
        doc_kind: &str,
    ) -> impl Future<Output = Result<Option<XrefRecord>, StoreError>> + Send;

    /// Write the record unless one exists; returns the existing one when it does.
    fn put_xref_if_absent(
        &self,
        record: &XrefRecord,
    ) -> impl Future<Output = Result<Option<XrefRecord>, StoreError>> + Send;
}

/// Monotonic versions per key, so an older update arriving after a newer one cannot win.
pub trait VersionStore: Send + Sync {
    /// Record `version` for `key` unless a newer one is stored. Returns `true` when it is not
    /// older than what was seen (the caller may apply it; re-applying the same version is
    /// allowed, so a redelivery is not lost), `false` when a newer version was already applied.
    fn advance_version(
        &self,
        key: &str,
        version: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The version stored for `key` (a cursor, for example), if any.
    fn current_version(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;
}

/// What happened to one queue record: done, or redeliver later (the queue's visibility timeout
/// and redrive policy apply). The Lambda batch glue (`ledgerbridge_adapters::lambda`) turns the
/// retries into partial batch failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    Done,
    /// Redeliver later (the queue's visibility timeout and redrive policy apply).
    Retry(String),
}

/// The link from an ERP customer to its Stripe customer, which ERP → Stripe changes follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReverseLink {
    /// Which ERP (`epicor`, `sage500`, `sagepro`).
    pub erp: String,
    /// The ERP's customer code.
    pub customer_code: String,
    pub stripe_customer: StripeObjectId,
    pub created_at_ms: i64,
}

impl ReverseLink {
    /// The cross-reference kind the link is stored under.
    pub const XREF_KIND: &'static str = "stripe_customer";

    /// The cross-reference id the link is stored under (`erp_{erp}_{customer_code}`).
    pub fn xref_id(erp: &str, customer_code: &str) -> StripeObjectId {
        StripeObjectId::new(format!("erp_{erp}_{customer_code}"))
    }

    /// The stored layout: a cross-reference record whose ERP id field holds the Stripe
    /// customer (the layout links have always had, so stored links stay readable).
    pub fn to_xref(&self) -> XrefRecord {
        XrefRecord {
            stripe_id: Self::xref_id(&self.erp, &self.customer_code),
            doc_kind: Self::XREF_KIND.to_owned(),
            erp: self.erp.clone(),
            erp_id: ErpDocumentId::new(self.stripe_customer.as_str()),
            created_at_ms: self.created_at_ms,
            posted: None,
            command: None,
        }
    }

    /// The link read back from its cross-reference record.
    pub fn from_xref(customer_code: &str, record: XrefRecord) -> Self {
        ReverseLink {
            erp: record.erp,
            customer_code: customer_code.to_owned(),
            stripe_customer: StripeObjectId::new(record.erp_id.as_str()),
            created_at_ms: record.created_at_ms,
        }
    }
}

/// ERP customer → Stripe customer links.
pub trait ReverseLinkStore: Send + Sync {
    fn get_reverse_link(
        &self,
        erp: &str,
        customer_code: &str,
    ) -> impl Future<Output = Result<Option<ReverseLink>, StoreError>> + Send;

    /// Write the link unless one exists; returns the existing one when it does.
    fn put_reverse_link_if_absent(
        &self,
        link: &ReverseLink,
    ) -> impl Future<Output = Result<Option<ReverseLink>, StoreError>> + Send;
}
