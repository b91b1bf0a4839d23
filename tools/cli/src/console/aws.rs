//! The console's AWS adapter (`ledgerbridge console --stack NAME`): the deployed stack's state
//! table and queues, read with the caller's AWS credentials; replays go through
//! [`crate::parked_aws::AwsParked`] and are audited in the table as the CLI's are.
//!
//! What it reads:
//! - the state table, scanned for the items the console shows: activity (`act#`, written by
//!   erp-post for each outcome), cross-references (`xref#`: ERP ids, amounts, write-backs),
//!   intent records (`idem#post#`: parked and in-progress documents; `idem#intake#`: events
//!   ignored by type), payout reports (`report#`) and audit items (`audit#`). The table has a
//!   partition key only, so this is a scan (paged), not a query by date;
//! - the parked queue and the dead-letter queues (as `ledgerbridge parked` lists them);
//! - each queue's depth (`GetQueueAttributes`).
//!
//! Not read: documents waiting on the commands queue one by one (SQS has no peek; receiving them
//! would count towards their redrive), and the age of a queue's oldest message (a CloudWatch
//! metric, on the stack's dashboard).

use super::assemble::{self, IntentRow, XrefRow};
use super::ledger::{now_ms, Activity, AuditEntry};
use super::model::*;
use crate::parked_aws::{AwsParked, StackQueues};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::QueueAttributeName;
use ledgerbridge_app::activity::ActivityItem;
use ledgerbridge_core::ports::{QueueError, StoreError};
use ledgerbridge_core::{Currency, Money};
use ledgerbridge_recon::report_store::ReportRecord;
use ledgerbridge_recon::ReconMapping;
use std::collections::HashMap;

/// The key prefixes the console reads.
const PREFIXES: [&str; 6] = [
    "act#",
    "xref#",
    "idem#post#",
    "idem#intake#",
    "report#",
    "audit#",
];

/// The console over a deployed stack.
pub struct AwsConsole {
    sqs: aws_sdk_sqs::Client,
    dynamo: aws_sdk_dynamodb::Client,
    stack: StackQueues,
    table: String,
    parked: AwsParked,
    recon: Option<ReconMapping>,
    erp: Option<ledgerbridge_erp::AnyConnector>,
}

/// What one scan of the table found.
#[derive(Default)]
struct TableItems {
    activity: Vec<Activity>,
    xrefs: Vec<XrefRow>,
    intents: Vec<IntentRow>,
    reports: Vec<ReportRecord>,
    audit: Vec<AuditEntry>,
}

fn store_err(e: impl std::fmt::Display) -> ConsoleError {
    ConsoleError::Store(StoreError::Unavailable(e.to_string()))
}

fn s(item: &HashMap<String, AttributeValue>, k: &str) -> Option<String> {
    item.get(k).and_then(|v| v.as_s().ok()).cloned()
}

fn n(item: &HashMap<String, AttributeValue>, k: &str) -> Option<i64> {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

impl AwsConsole {
    /// The console over `stack`, with the clients of `sdk`. `recon` (the reconciliation
    /// mapping) names the bank, variance and fee accounts of the payout view.
    pub fn new(
        sdk: &aws_config::SdkConfig,
        stack: StackQueues,
        recon: Option<ReconMapping>,
    ) -> Result<Self, ConsoleError> {
        let table = stack.state_table.clone().ok_or_else(|| {
            ConsoleError::Config("the stack outputs name no StateTableName".into())
        })?;
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let dynamo = aws_sdk_dynamodb::Client::new(sdk);
        Ok(AwsConsole {
            parked: AwsParked::new(sqs.clone(), dynamo.clone(), stack.clone()),
            sqs,
            dynamo,
            stack,
            table,
            recon,
            erp: None,
        })
    }

    /// Read payout journals' posting state from the ERP through `erp` (the operator's machine
    /// must reach the ERP).
    pub fn with_erp(mut self, erp: ledgerbridge_erp::AnyConnector) -> Self {
        self.erp = Some(erp);
        self
    }

    async fn scan(&self) -> Result<TableItems, ConsoleError> {
        let mut out = TableItems::default();
        let filter = (0..PREFIXES.len())
            .map(|i| format!("begins_with(pk, :p{i})"))
            .collect::<Vec<_>>()
            .join(" OR ");
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let mut req = self
                .dynamo
                .scan()
                .table_name(&self.table)
                .filter_expression(&filter)
                .set_exclusive_start_key(start.take());
            for (i, p) in PREFIXES.iter().enumerate() {
                req = req
                    .expression_attribute_values(format!(":p{i}"), AttributeValue::S((*p).into()));
            }
            let page = req
                .send()
                .await
                .map_err(|e| store_err(aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
            for item in page.items() {
                out.add(item);
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        out.activity.sort_by_key(|a| a.at_ms);
        out.audit.sort_by_key(|a| std::cmp::Reverse(a.at_ms));
        out.reports
            .sort_by_key(|r| std::cmp::Reverse(r.updated_at_ms));
        Ok(out)
    }

    /// A queue's messages: visible, in flight and delayed.
    async fn depth(&self, url: &str) -> Result<usize, ConsoleError> {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| {
                ConsoleError::Queue(QueueError::Unavailable(
                    aws_sdk_sqs::error::DisplayErrorContext(e).to_string(),
                ))
            })?;
        Ok(out
            .attributes()
            .map(|a| {
                a.values()
                    .filter_map(|v| v.parse::<usize>().ok())
                    .sum::<usize>()
            })
            .unwrap_or(0))
    }
}

impl TableItems {
    fn add(&mut self, item: &HashMap<String, AttributeValue>) {
        let Some(pk) = s(item, "pk") else { return };
        if pk.starts_with("act#") {
            if let Some(a) = ActivityItem::from_item(item) {
                self.activity.push(Activity {
                    at_ms: a.at_ms,
                    event_id: a.event_id,
                    event_type: a.event_type,
                    stripe_id: a.stripe_id,
                    kind: a.kind,
                    reference: a.reference,
                    erp: a.erp,
                    erp_id: a.erp_id.unwrap_or_default(),
                    customer: a.customer,
                    amount: a.amount,
                    outcome: a.outcome,
                });
            }
        } else if pk.starts_with("xref#") {
            let (Some(stripe_id), Some(kind), Some(erp), Some(erp_id)) = (
                s(item, "stripe_id"),
                s(item, "doc_kind"),
                s(item, "erp"),
                s(item, "erp_id"),
            ) else {
                return;
            };
            let amount = match (n(item, "amount_minor"), s(item, "currency")) {
                (Some(m), Some(c)) => Currency::parse(&c).ok().map(|c| Money::new(m, c)),
                _ => None,
            };
            self.xrefs.push(XrefRow {
                stripe_id,
                kind,
                erp,
                erp_id,
                at_ms: n(item, "created_at_ms").unwrap_or(0),
                amount,
            });
        } else if let Some(key) = pk.strip_prefix("idem#") {
            if let Some(status) = s(item, "status") {
                self.intents.push((key.to_owned(), status, s(item, "data")));
            }
        } else if pk.starts_with("report#") {
            match s(item, "report").map(|j| serde_json::from_str::<ReportRecord>(&j)) {
                Some(Ok(r)) => self.reports.push(r),
                Some(Err(e)) => tracing::warn!(key = %pk, error = %e, "Unreadable report skipped"),
                None => {}
            }
        } else if pk.starts_with("audit#") {
            self.audit.push(AuditEntry {
                at_ms: n(item, "at_ms").unwrap_or(0),
                who: s(item, "who").unwrap_or_default(),
                action: s(item, "action").unwrap_or_default(),
                target: s(item, "target").unwrap_or_default(),
                detail: s(item, "detail").unwrap_or_default(),
            });
        }
    }
}

impl AwsConsole {
    async fn documents(
        &self,
        t: &TableItems,
    ) -> Result<(Vec<DocumentView>, Vec<assemble::WriteBackRow>), ConsoleError> {
        let parked = self.parked.list().await?;
        Ok(assemble::documents(
            t.activity.clone(),
            &t.xrefs,
            &t.intents,
            Vec::new(),
            &parked,
        ))
    }
}

impl ReadModel for AwsConsole {
    async fn records(&self) -> Result<Vec<RecordView>, ConsoleError> {
        let t = self.scan().await?;
        let (docs, write_backs) = self.documents(&t).await?;
        Ok(assemble::records(docs, write_backs))
    }

    async fn ignored(&self) -> Result<Vec<IgnoredEvent>, ConsoleError> {
        Ok(self
            .scan()
            .await?
            .intents
            .into_iter()
            .filter(|(key, status, _)| status == "IGNORED" && key.starts_with("intake#"))
            .map(|(key, _, _)| IgnoredEvent {
                event_id: key.trim_start_matches("intake#").to_owned(),
            })
            .collect())
    }

    async fn parked(&self) -> Result<Vec<ParkedView>, ConsoleError> {
        self.parked.list().await
    }

    async fn payouts(&self) -> Result<Vec<PayoutView>, ConsoleError> {
        let t = self.scan().await?;
        let (docs, _) = self.documents(&t).await?;
        let mut payouts = assemble::payouts(t.reports, &docs, self.recon.as_ref());
        assemble::read_ledger(&mut payouts, self.erp.as_ref()).await;
        Ok(payouts)
    }

    async fn health(&self) -> Result<HealthView, ConsoleError> {
        let now = now_ms();
        let mut queues = Vec::new();
        for (name, url) in &self.stack.queues {
            let dead_letters = match self.stack.dead_letters.get(name) {
                Some(dlq) => self.depth(dlq).await?,
                None => 0,
            };
            queues.push(QueueHealth {
                name: name.clone(),
                depth: self.depth(url).await?,
                dead_letters,
                oldest_age_ms: None,
            });
        }
        let parked = queues
            .iter()
            .find(|q| q.name == "parked")
            .map(|q| q.depth)
            .unwrap_or(0);
        let t = self.scan().await?;
        let (posted, failed) = assemble::outcome_times(&t.activity, &self.parked.list().await?);
        Ok(HealthView {
            queues,
            parked,
            last_hour: assemble::error_rate(&posted, &failed, now, assemble::HOUR_MS),
            last_day: assemble::error_rate(&posted, &failed, now, assemble::DAY_MS),
            last_post: assemble::last_post(&t.activity, &t.xrefs),
            notes: vec![
                "The age of each queue's oldest message is CloudWatch's ApproximateAgeOfOldestMessage (the stack's dashboard); SQS does not report it to a reader.".into(),
                "Dead letters are counted by when their message was first sent (SQS keeps no time of the move to the dead-letter queue).".into(),
            ],
        })
    }

    async fn daily(&self) -> Result<Vec<DayTotals>, ConsoleError> {
        let t = self.scan().await?;
        let (docs, _) = self.documents(&t).await?;
        let payouts = assemble::payouts(t.reports, &docs, self.recon.as_ref());
        Ok(assemble::daily(&t.activity, &payouts))
    }

    async fn replay(
        &self,
        id: &str,
        edited: Option<String>,
        who: &str,
    ) -> Result<Replayed, ConsoleError> {
        self.parked.replay(id, edited, who).await
    }

    async fn audit_log(&self) -> Result<Vec<AuditEntry>, ConsoleError> {
        let mut a = self.scan().await?.audit;
        a.truncate(200);
        Ok(a)
    }

    async fn audit(&self, who: &str, action: &str, target: &str) -> Result<(), ConsoleError> {
        self.parked.audit(who, action, target, "").await
    }
}
