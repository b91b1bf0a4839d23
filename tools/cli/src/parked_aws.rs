//! `ledgerbridge parked … --stack-outputs FILE`: the parked-work actions against the AWS
//! deployment, with the caller's AWS credentials: the stack's parked queue and its four
//! dead-letter queues, found in the stack's outputs (the JSON that `aws cloudformation
//! describe-stacks --stack-name NAME` prints, or its `Stacks[0].Outputs`), so no `jq` is needed.
//!
//! SQS has no "peek": listing receives messages with a visibility timeout of zero, so they stay
//! available; a replay receives until it holds the message (others it meets are released at
//! once), sends the body to its queue, then deletes it. Each replay writes an audit item
//! (`audit#{ms}#{uuid}`) to the stack's state table.

use crate::console::embedded::{describe, validate_for};
use crate::console::model::{ConsoleError, ParkedView, Replayed};
use aws_sdk_sqs::types::MessageSystemAttributeName;
use ledgerbridge_adapters::aws::SqsQueue;
use ledgerbridge_core::ports::{EventQueue, QueueError, StoreError};
use std::collections::BTreeMap;
use std::path::Path;

/// The stack's queues and table, by the names the console uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackQueues {
    /// Queue name → URL of the queue (events, commands, reconciliation, erp-events, parked).
    pub queues: BTreeMap<String, String>,
    /// Queue name → URL of its dead-letter queue.
    pub dead_letters: BTreeMap<String, String>,
    pub state_table: Option<String>,
}

/// Output keys of `infra/template.yaml`.
const OUTPUTS: [(&str, &str, Option<&str>); 5] = [
    ("events", "EventsQueueUrl", Some("EventsDeadLetterQueueUrl")),
    (
        "commands",
        "CommandsQueueUrl",
        Some("CommandsDeadLetterQueueUrl"),
    ),
    (
        "reconciliation",
        "ReconciliationQueueUrl",
        Some("ReconciliationDeadLetterQueueUrl"),
    ),
    (
        "erp-events",
        "ErpEventsQueueUrl",
        Some("ErpEventsDeadLetterQueueUrl"),
    ),
    ("parked", "ParkedQueueUrl", None),
];

impl StackQueues {
    /// From `describe-stacks` output (whole, or the `Outputs` array).
    pub fn from_outputs_json(text: &str) -> Result<Self, ConsoleError> {
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| ConsoleError::Config(format!("stack outputs: {e}")))?;
        let outputs = if v.is_array() {
            v
        } else {
            v["Stacks"][0]["Outputs"].clone()
        };
        let mut by_key = BTreeMap::new();
        for o in outputs.as_array().into_iter().flatten() {
            if let (Some(k), Some(val)) = (o["OutputKey"].as_str(), o["OutputValue"].as_str()) {
                by_key.insert(k.to_owned(), val.to_owned());
            }
        }
        Self::from_outputs(&by_key)
    }

    /// From the stack's outputs, by output key.
    pub fn from_outputs(by_key: &BTreeMap<String, String>) -> Result<Self, ConsoleError> {
        let mut queues = BTreeMap::new();
        let mut dead_letters = BTreeMap::new();
        for (name, key, dlq) in OUTPUTS {
            if let Some(url) = by_key.get(key) {
                queues.insert(name.to_owned(), url.clone());
            }
            if let Some(url) = dlq.and_then(|k| by_key.get(k)) {
                dead_letters.insert(name.to_owned(), url.clone());
            }
        }
        if !queues.contains_key("parked") {
            return Err(ConsoleError::Config(
                "the stack outputs name no ParkedQueueUrl (is this a ledgerbridge stack?)".into(),
            ));
        }
        Ok(StackQueues {
            queues,
            dead_letters,
            state_table: by_key.get("StateTableName").cloned(),
        })
    }

    /// The outputs of the stack `name`, read with CloudFormation `DescribeStacks`.
    pub async fn from_stack(
        cfn: &aws_sdk_cloudformation::Client,
        name: &str,
    ) -> Result<Self, ConsoleError> {
        let out = cfn
            .describe_stacks()
            .stack_name(name)
            .send()
            .await
            .map_err(|e| {
                ConsoleError::Config(format!(
                    "stack {name}: {}",
                    aws_sdk_cloudformation::error::DisplayErrorContext(e)
                ))
            })?;
        let stack = out
            .stacks()
            .first()
            .ok_or_else(|| ConsoleError::Config(format!("no stack named {name}")))?;
        let by_key: BTreeMap<String, String> = stack
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
            .collect();
        Self::from_outputs(&by_key)
    }
}

/// Which deployed stack to act on, with the caller's AWS credentials (the default chain).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct StackArgs {
    /// Act on the AWS deployment: the CloudFormation stack's name (its outputs name the
    /// queues and the state table; needs `cloudformation:DescribeStacks`).
    #[arg(long, global = true, conflicts_with = "stack_outputs")]
    pub stack: Option<String>,
    /// Or the stack's outputs as `aws cloudformation describe-stacks --stack-name NAME` prints
    /// them, saved to a file.
    #[arg(long, global = true)]
    pub stack_outputs: Option<std::path::PathBuf>,
    /// The stack's AWS region (else the default chain's: `AWS_REGION`, the profile).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Another endpoint for every AWS service (a test double); also `AWS_ENDPOINT_URL`.
    #[arg(long, global = true)]
    pub endpoint_url: Option<String>,
}

impl StackArgs {
    /// The SDK configuration and the stack's resources; `None` when no stack is named.
    pub async fn connect(
        &self,
    ) -> Result<Option<(aws_config::SdkConfig, StackQueues)>, ConsoleError> {
        if self.stack.is_none() && self.stack_outputs.is_none() {
            return Ok(None);
        }
        let endpoint = self
            .endpoint_url
            .clone()
            .or_else(|| ledgerbridge_core::config::Env::from_process().plain("AWS_ENDPOINT_URL"));
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(url) = endpoint {
            loader = loader.endpoint_url(url);
        }
        if let Some(r) = &self.region {
            loader = loader.region(aws_config::Region::new(r.clone()));
        }
        let sdk = loader.load().await;
        let stack = match (&self.stack, &self.stack_outputs) {
            (Some(name), _) => {
                StackQueues::from_stack(&aws_sdk_cloudformation::Client::new(&sdk), name).await?
            }
            (None, Some(path)) => load(path)?,
            (None, None) => return Ok(None),
        };
        Ok(Some((sdk, stack)))
    }
}

/// The parked work of a deployed stack.
pub struct AwsParked {
    sqs: aws_sdk_sqs::Client,
    dynamo: aws_sdk_dynamodb::Client,
    stack: StackQueues,
}

fn q_err(e: impl std::fmt::Display) -> ConsoleError {
    ConsoleError::Queue(QueueError::Unavailable(e.to_string()))
}

struct Held {
    message_id: String,
    body: String,
    receipt: String,
    receive_count: u32,
    sent_ms: i64,
}

impl AwsParked {
    pub fn new(
        sqs: aws_sdk_sqs::Client,
        dynamo: aws_sdk_dynamodb::Client,
        stack: StackQueues,
    ) -> Self {
        AwsParked { sqs, dynamo, stack }
    }

    /// The sources of parked work: the parked queue, and each dead-letter queue, by the name
    /// of the queue they belong to.
    fn sources(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .stack
            .queues
            .get("parked")
            .map(|u| vec![("parked".to_owned(), u.clone())])
            .unwrap_or_default();
        out.extend(
            self.stack
                .dead_letters
                .iter()
                .map(|(n, u)| (n.clone(), u.clone())),
        );
        out
    }

    async fn receive(&self, url: &str, visibility: i32) -> Result<Vec<Held>, ConsoleError> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(visibility)
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| q_err(aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        Ok(out
            .messages()
            .iter()
            .map(|m| {
                let attr = |k: MessageSystemAttributeName| {
                    m.attributes()
                        .and_then(|a| a.get(&k))
                        .and_then(|v| v.parse::<i64>().ok())
                        .unwrap_or(0)
                };
                Held {
                    message_id: m.message_id().unwrap_or_default().to_owned(),
                    body: m.body().unwrap_or_default().to_owned(),
                    receipt: m.receipt_handle().unwrap_or_default().to_owned(),
                    receive_count: u32::try_from(attr(
                        MessageSystemAttributeName::ApproximateReceiveCount,
                    ))
                    .unwrap_or(0),
                    sent_ms: attr(MessageSystemAttributeName::SentTimestamp),
                }
            })
            .collect())
    }

    async fn release(&self, url: &str, held: &Held) {
        if let Err(e) = self
            .sqs
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(&held.receipt)
            .visibility_timeout(0)
            .send()
            .await
        {
            tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "Message not released; it reappears after its visibility timeout");
        }
    }

    /// Every parked message and dead letter (as SQS returns them: approximate for very large
    /// queues; a message another reader holds is not listed).
    pub async fn list(&self) -> Result<Vec<ParkedView>, ConsoleError> {
        let mut out = Vec::new();
        for (name, url) in self.sources() {
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..50 {
                let batch = self.receive(&url, 0).await?;
                let fresh: Vec<Held> = batch
                    .into_iter()
                    .filter(|h| seen.insert(h.message_id.clone()))
                    .collect();
                if fresh.is_empty() {
                    break;
                }
                for h in fresh {
                    let reason = format!(
                        "moved to the dead-letter queue after {} receives",
                        h.receive_count
                    );
                    out.push(describe(
                        &name,
                        &h.message_id,
                        &h.body,
                        &reason,
                        h.sent_ms,
                        h.receive_count,
                    ));
                }
            }
        }
        out.sort_by_key(|p| p.at_ms);
        Ok(out)
    }

    /// Send one message back to its queue (`edited`: a corrected body), delete it where it
    /// was, and write the audit item.
    pub async fn replay(
        &self,
        id: &str,
        edited: Option<String>,
        who: &str,
    ) -> Result<Replayed, ConsoleError> {
        let (name, message_id) = id
            .split_once(':')
            .ok_or_else(|| ConsoleError::NotFound(id.to_owned()))?;
        let source = self
            .sources()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, u)| u)
            .ok_or_else(|| ConsoleError::NotFound(id.to_owned()))?;
        // Receive until the message is in hand; release everything else at once.
        let mut held = None;
        for _ in 0..50 {
            let batch = self.receive(&source, 60).await?;
            if batch.is_empty() {
                break;
            }
            for h in batch {
                if h.message_id == message_id && held.is_none() {
                    held = Some(h);
                } else {
                    self.release(&source, &h).await;
                }
            }
            if held.is_some() {
                break;
            }
        }
        let held = held.ok_or_else(|| ConsoleError::NotFound(id.to_owned()))?;
        let view = describe(name, &held.message_id, &held.body, "", held.sent_ms, 0);
        let result = self.send_back(id, &view, edited).await;
        if result.is_err() {
            self.release(&source, &held).await;
        }
        let (target, was_edited) = result?;
        self.sqs
            .delete_message()
            .queue_url(&source)
            .receipt_handle(&held.receipt)
            .send()
            .await
            .map_err(|e| q_err(aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        self.audit(
            who,
            if was_edited {
                "edit and replay"
            } else {
                "replay"
            },
            id,
            &format!(
                "{} → {target} queue; reason was: {}",
                view.subject, view.reason
            ),
        )
        .await?;
        Ok(Replayed {
            id: id.to_owned(),
            queue: target,
            edited: was_edited,
        })
    }

    async fn send_back(
        &self,
        id: &str,
        view: &ParkedView,
        edited: Option<String>,
    ) -> Result<(String, bool), ConsoleError> {
        let target = view.target.clone().ok_or_else(|| {
            ConsoleError::NotReplayable(id.to_owned(), "it carries no message".into())
        })?;
        let original = view.body.clone().unwrap_or_default();
        let edited = edited.filter(|e| e.trim() != original.trim());
        let body = edited.clone().unwrap_or(original);
        let group = validate_for(&target, &body)?;
        let body = crate::console::embedded::mark_replayed(&target, body);
        let url = self.stack.queues.get(&target).ok_or_else(|| {
            ConsoleError::Config(format!("the stack outputs name no {target} queue"))
        })?;
        SqsQueue::new(
            self.sqs.clone(),
            url.clone(),
            ledgerbridge_core::message::SQS_MAX_MESSAGE_BYTES,
        )
        .send(body, group.as_deref())
        .await?;
        Ok((target, edited.is_some()))
    }

    /// Write an audit item `audit#{ms}#{uuid}` (who, action, target, detail) to the table.
    pub async fn audit(
        &self,
        who: &str,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<(), ConsoleError> {
        use aws_sdk_dynamodb::types::AttributeValue as A;
        let Some(table) = &self.stack.state_table else {
            tracing::warn!(
                "No StateTableName in the stack outputs: the replay is not audited in the table"
            );
            return Ok(());
        };
        let at = crate::console::ledger::now_ms();
        self.dynamo
            .put_item()
            .table_name(table)
            .item(
                "pk",
                A::S(format!("audit#{at}#{}", uuid::Uuid::new_v4().simple())),
            )
            .item("at_ms", A::N(at.to_string()))
            .item("who", A::S(who.to_owned()))
            .item("action", A::S(action.to_owned()))
            .item("target", A::S(target.to_owned()))
            .item("detail", A::S(detail.to_owned()))
            .send()
            .await
            .map_err(|e| {
                ConsoleError::Store(StoreError::Unavailable(
                    aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string(),
                ))
            })?;
        Ok(())
    }
}

/// Load the stack outputs file.
pub fn load(path: &Path) -> Result<StackQueues, ConsoleError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConsoleError::Config(format!("cannot read {}: {e}", path.display())))?;
    StackQueues::from_outputs_json(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queues_come_from_describe_stacks_output() {
        let text = r#"{"Stacks":[{"Outputs":[
            {"OutputKey":"ParkedQueueUrl","OutputValue":"https://sqs/parked"},
            {"OutputKey":"CommandsQueueUrl","OutputValue":"https://sqs/commands.fifo"},
            {"OutputKey":"CommandsDeadLetterQueueUrl","OutputValue":"https://sqs/commands-dlq.fifo"},
            {"OutputKey":"StateTableName","OutputValue":"state"}]}]}"#;
        let s = StackQueues::from_outputs_json(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.queues["commands"], "https://sqs/commands.fifo");
        assert_eq!(s.dead_letters["commands"], "https://sqs/commands-dlq.fifo");
        assert_eq!(s.state_table.as_deref(), Some("state"));
        assert!(
            StackQueues::from_outputs_json("[]").is_err(),
            "no parked queue"
        );
    }
}
