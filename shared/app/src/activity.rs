//! The activity items erp-post writes to the state table for the operator console
//! (`ledgerbridge console --stack`): one item per outcome of a command message, posted (created,
//! updated, found already posted) or parked, with the event that produced it, the ERP document's
//! kind, reference, ERP id, and total as sent to the ERP. Nothing in the pipeline reads them, so
//! a failed write is logged and never fails the message.
//!
//! Key `act#{ms, 13 digits}#{reference}#{event id}`: sorted by time, unique per outcome of one
//! message (a redelivery in the same millisecond overwrites its own item). The table's TTL
//! attribute `expiration` removes them after [`DEFAULT_DAYS`] (`LEDGERBRIDGE_ACTIVITY_DAYS`).
//! The table has a partition key only, so the console reads them with a scan filtered on the
//! prefix (see `docs/console.md` for the cost and the index a larger installation adds).

use aws_sdk_dynamodb::types::AttributeValue;
use ledgerbridge_core::ports::RecordOutcome;
use ledgerbridge_core::{Currency, Money};
use ledgerbridge_erp::ErpCommand;
use ledgerbridge_messages::{CommandMessage, ErpCommandV1};
use ledgerbridge_pipeline::posting::PostResult;
use ledgerbridge_pipeline::stages::Posted;
use std::collections::HashMap;

/// The key prefix of activity items (the only items erp-post writes for the console).
pub const PREFIX: &str = "act#";

/// How long activity items are kept (days), unless `LEDGERBRIDGE_ACTIVITY_DAYS` says otherwise.
pub const DEFAULT_DAYS: i64 = 90;

/// The outcome of a parked message.
pub const PARKED: &str = "parked";

/// One outcome of one command message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityItem {
    pub at_ms: i64,
    pub event_id: String,
    pub event_type: String,
    pub stripe_id: String,
    pub kind: String,
    pub reference: String,
    pub erp: String,
    /// The ERP's id of the document; `None` when parked.
    pub erp_id: Option<String>,
    /// The ERP customer of the document, else the Stripe customer it is resolved from.
    pub customer: Option<String>,
    /// The document's total as sent to (and accepted by) the ERP.
    pub amount: Option<Money>,
    /// `created`, `updated`, `already posted` or `parked`.
    pub outcome: String,
}

/// The ERP customer of a command, else the Stripe customer it is resolved from.
pub fn command_customer(msg: &ErpCommandV1) -> Option<String> {
    let code = match &msg.command {
        ErpCommand::UpsertCustomer(c) => Some(c.customer_id.clone()),
        ErpCommand::CreateSalesOrder(c) => Some(c.customer_id.clone()),
        ErpCommand::CreateInvoice(c) => Some(c.customer_id.clone()),
        ErpCommand::CreateCreditMemo(c) => Some(c.customer_id.clone()),
        ErpCommand::CreateCashReceipt(c) => Some(c.customer_id.clone()),
        ErpCommand::PostJournalEntry(_) => None,
    }
    .filter(|c| !c.trim().is_empty());
    code.or_else(|| msg.customer.as_ref().map(|h| h.stripe_customer.clone()))
}

impl ActivityItem {
    fn of(
        msg: &ErpCommandV1,
        erp: &str,
        erp_id: Option<String>,
        outcome: &str,
        at_ms: i64,
    ) -> Self {
        let reference = msg.command.reference();
        ActivityItem {
            at_ms,
            event_id: msg.source.event_id.clone(),
            event_type: msg.source.event_type.clone(),
            stripe_id: reference.stripe_id().to_string(),
            kind: msg.command.kind().as_str().to_owned(),
            reference: reference.full(),
            erp: erp.to_owned(),
            erp_id,
            customer: command_customer(msg),
            amount: msg.command.posted_amount(),
            outcome: outcome.to_owned(),
        }
    }

    /// What erp-post did with one message body: a posted (or found posted) document, a parked
    /// command, or nothing to record (a retry, a skipped older update, customer fields, an
    /// unreadable message parked before it named a document).
    pub fn after(
        body: &str,
        outcome: &RecordOutcome,
        posted: Option<&Posted>,
        erp: &str,
        at_ms: i64,
    ) -> Option<Self> {
        match (outcome, posted) {
            (_, Some(Posted::Command(msg, result))) => {
                let (erp_id, what) = match result {
                    PostResult::Posted { erp_id, created } => (
                        erp_id.as_str().to_owned(),
                        if *created { "created" } else { "updated" },
                    ),
                    PostResult::AlreadyPosted { erp_id } => {
                        (erp_id.as_str().to_owned(), "already posted")
                    }
                    PostResult::Stale => return None,
                };
                Some(Self::of(msg, erp, Some(erp_id), what, at_ms))
            }
            // `Done` without a result: the stage parked the message.
            (RecordOutcome::Done, None) => match CommandMessage::decode(body) {
                Ok(CommandMessage::ErpCommandV1(msg)) => {
                    Some(Self::of(&msg, erp, None, PARKED, at_ms))
                }
                _ => None,
            },
            _ => None,
        }
    }

    pub fn key(&self) -> String {
        format!(
            "{PREFIX}{:013}#{}#{}",
            self.at_ms.max(0),
            self.reference,
            self.event_id
        )
    }

    /// The item as stored; `days` sets its expiry.
    pub fn to_item(&self, days: i64) -> HashMap<String, AttributeValue> {
        let mut item = HashMap::from([
            ("pk".to_owned(), AttributeValue::S(self.key())),
            (
                "at_ms".to_owned(),
                AttributeValue::N(self.at_ms.to_string()),
            ),
            (
                "expiration".to_owned(),
                AttributeValue::N(
                    (self.at_ms.div_euclid(1000) + days.saturating_mul(86_400)).to_string(),
                ),
            ),
            (
                "event_id".to_owned(),
                AttributeValue::S(self.event_id.clone()),
            ),
            (
                "event_type".to_owned(),
                AttributeValue::S(self.event_type.clone()),
            ),
            (
                "stripe_id".to_owned(),
                AttributeValue::S(self.stripe_id.clone()),
            ),
            ("doc_kind".to_owned(), AttributeValue::S(self.kind.clone())),
            (
                "reference".to_owned(),
                AttributeValue::S(self.reference.clone()),
            ),
            ("erp".to_owned(), AttributeValue::S(self.erp.clone())),
            (
                "outcome".to_owned(),
                AttributeValue::S(self.outcome.clone()),
            ),
        ]);
        if let Some(id) = &self.erp_id {
            item.insert("erp_id".into(), AttributeValue::S(id.clone()));
        }
        if let Some(c) = &self.customer {
            item.insert("customer".into(), AttributeValue::S(c.clone()));
        }
        if let Some(m) = self.amount {
            item.insert(
                "amount_minor".into(),
                AttributeValue::N(m.minor.to_string()),
            );
            item.insert(
                "currency".into(),
                AttributeValue::S(m.currency.code().to_owned()),
            );
        }
        item
    }

    /// An item read back; `None` when it is not an activity item.
    pub fn from_item(item: &HashMap<String, AttributeValue>) -> Option<Self> {
        let s = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
        let n = |k: &str| {
            item.get(k)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
        };
        if !s("pk")?.starts_with(PREFIX) {
            return None;
        }
        let amount = match (n("amount_minor"), s("currency")) {
            (Some(minor), Some(c)) => Currency::parse(&c).ok().map(|c| Money::new(minor, c)),
            _ => None,
        };
        Some(ActivityItem {
            at_ms: n("at_ms")?,
            event_id: s("event_id").unwrap_or_default(),
            event_type: s("event_type").unwrap_or_default(),
            stripe_id: s("stripe_id").unwrap_or_default(),
            kind: s("doc_kind").unwrap_or_default(),
            reference: s("reference")?,
            erp: s("erp").unwrap_or_default(),
            erp_id: s("erp_id"),
            customer: s("customer"),
            amount,
            outcome: s("outcome")?,
        })
    }
}

/// Writes activity items to the state table.
#[derive(Clone, Debug)]
pub struct ActivityLog {
    client: aws_sdk_dynamodb::Client,
    table: String,
    days: i64,
}

impl ActivityLog {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>, days: i64) -> Self {
        ActivityLog {
            client,
            table: table.into(),
            days,
        }
    }

    /// Write one item; a failure is logged (the message's outcome stands).
    pub async fn record(&self, item: &ActivityItem) {
        if let Err(e) = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item.to_item(self.days)))
            .send()
            .await
        {
            tracing::warn!(
                error = %aws_sdk_dynamodb::error::DisplayErrorContext(e),
                reference = %item.reference,
                "Console activity item not written"
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ledgerbridge_core::ids::{ErpDocumentId, StripeObjectId};
    use ledgerbridge_erp::{CashReceipt, DocKind, ErpDate, ExternalRef};
    use ledgerbridge_messages::Source;

    fn receipt() -> ErpCommandV1 {
        ErpCommandV1 {
            command: ErpCommand::CreateCashReceipt(CashReceipt {
                reference: ExternalRef::new(&StripeObjectId::new("pi_1"), DocKind::CashReceipt)
                    .unwrap(),
                customer_id: "NW0042".into(),
                receipt_date: ErpDate::parse("2026-05-01").unwrap(),
                amount: Money::new(1050, Currency::USD),
                payment_method: "STRIPE".into(),
                applies_to: None,
            }),
            customer: None,
            depends_on: vec![],
            version: None,
            write_back: None,
            source: Source {
                event_id: "evt_9".into(),
                event_type: "payment_intent.succeeded".into(),
                created: 0,
            },
        }
    }

    #[test]
    fn a_posted_document_and_a_parked_one_round_trip_through_the_item() {
        let msg = receipt();
        let posted = Posted::Command(
            Box::new(msg.clone()),
            PostResult::Posted {
                erp_id: ErpDocumentId::new("CR/7"),
                created: true,
            },
        );
        let body = CommandMessage::ErpCommandV1(Box::new(msg))
            .encode()
            .unwrap();
        let a = ActivityItem::after(&body, &RecordOutcome::Done, Some(&posted), "epicor", 1_000)
            .unwrap();
        assert_eq!(a.outcome, "created");
        assert_eq!(a.erp_id.as_deref(), Some("CR/7"));
        assert_eq!(a.amount, Some(Money::new(1050, Currency::USD)));
        assert_eq!(a.customer.as_deref(), Some("NW0042"));
        assert!(a.key().starts_with("act#0000000001000#LB-pi_1-CR#evt_9"));
        let item = a.to_item(90);
        assert_eq!(ActivityItem::from_item(&item), Some(a));
        assert_eq!(
            item["expiration"].as_n().unwrap(),
            &(1 + 90 * 86_400).to_string()
        );

        let p = ActivityItem::after(&body, &RecordOutcome::Done, None, "epicor", 2_000).unwrap();
        assert_eq!((p.outcome.as_str(), p.erp_id.as_deref()), (PARKED, None));
        // A retry is not an outcome.
        assert!(ActivityItem::after(
            &body,
            &RecordOutcome::Retry("503".into()),
            None,
            "epicor",
            3
        )
        .is_none());
        // Other items are not activity.
        let mut other = item.clone();
        other.insert(
            "pk".into(),
            AttributeValue::S("xref#pi_1#cash_receipt".into()),
        );
        assert_eq!(ActivityItem::from_item(&other), None);
    }
}
