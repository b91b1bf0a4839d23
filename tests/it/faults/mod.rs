//! The fault matrix of RELIABILITY A6 as tests (docs/fault-matrix.md lists every row, its pass
//! figure, and which test reaches it, scaled or not).
//!
//! The rig: [`esm`] — an SQS event-source-mapping simulator over moto (batch size, visibility
//! timeout, partial batch failures, receive counts, redrive to the DLQ, invocation timeouts);
//! [`interceptor`] — an AWS SDK interceptor that injects errors, throttling and stalls into
//! SQS and DynamoDB calls; [`failpoints`] — crash points in the code path (after the ERP
//! committed and before the cross-reference; after the handler finished and before the
//! delete), built from test wrappers so production code carries none of them.

pub mod atomic_moto;
pub mod esm;
pub mod failpoints;
pub mod guard;
pub mod interceptor;
pub mod seeded;

mod d1;
mod d2;
mod d3;
mod d4;
mod d5;
mod e1;
mod e2;
mod e3;
mod e4;
mod e5;
mod e6;
mod e8;
pub mod erp_rig;
mod i1;
mod i2;
mod i3;
mod i4;
mod i5;
mod i6;
mod i7;
mod i8;
mod q1;
mod q2;
mod q3;
mod q4;
mod q5;
mod q6;
mod quarantine_cli;
mod r1;
mod r2;

use crate::support::moto;
use ledgerbridge_adapters::aws::{DynamoStore, SqsQueue};
use ledgerbridge_core::message::SQS_MAX_MESSAGE_BYTES;
use ledgerbridge_core::SystemClock;
use ledgerbridge_erp::{DocKind, ErpCommand, ErpConnector, RetryPolicy};
use ledgerbridge_erp_sandbox::{ErpKind, SandboxHandle};
use ledgerbridge_messages::erp_command::CommandMessage;
use ledgerbridge_messages::erp_command::Source;
use ledgerbridge_messages::ErpCommandV1;
use ledgerbridge_pipeline::mapping::{Mapping, EXAMPLE};
use ledgerbridge_pipeline::posting::Poster;
use ledgerbridge_pipeline::stages::PostStage;
use ledgerbridge_stripe::StripeClient;
use std::collections::HashMap;
use std::time::Duration;

/// A journal entry command of its own (the shared fixture, with a unique Stripe id).
pub fn journal(tag: &str) -> ErpCommand {
    crate::erp_contract::by_kind(
        &crate::erp_contract::fixture_commands(tag),
        DocKind::JournalEntry,
    )
}

/// `n` `erp_command.v1` messages, each a journal entry of its own.
pub fn journal_messages(n: usize, tag: &str) -> Vec<String> {
    (0..n)
        .map(|i| {
            CommandMessage::ErpCommandV1(Box::new(ErpCommandV1 {
                command: journal(&format!("{tag}{i}")),
                customer: None,
                depends_on: vec![],
                version: None,
                write_back: None,
                source: Source {
                    event_id: format!("evt_{tag}{i}"),
                    event_type: "payout.paid".into(),
                    created: 1_785_000_000,
                },
            }))
            .encode()
            .unwrap()
        })
        .collect()
}

/// Fast retries; the search window stays above any search lag the sandbox is given here.
pub fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        max_retry_after: Duration::from_secs(5),
        settle_after_ambiguous: Duration::from_millis(50),
    }
}

/// The erp-post stage on moto (DynamoDB state, SQS parked queue) in front of `connector`.
pub type MotoPostStage<C> = PostStage<C, DynamoStore, StripeClient, SystemClock, SqsQueue>;

pub async fn post_stage<C: ErpConnector>(
    connector: C,
    ddb: aws_sdk_dynamodb::Client,
    lease_ms: i64,
    policy: RetryPolicy,
) -> (MotoPostStage<C>, String, String) {
    let conf = moto::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let table = moto::unique("faults-state");
    moto::create_state_table(&ddb, &table).await;
    let parked = moto::create_queue(&sqs, &moto::unique("faults-parked")).await;
    let stage = PostStage {
        poster: Poster {
            connector,
            store: DynamoStore::new(ddb, &table),
            stripe: None,
            mapping: Mapping::from_toml(EXAMPLE).unwrap(),
            policy,
            clock: SystemClock,
            lease_ms,
            intent_days: 30,
        },
        parked: SqsQueue::new(sqs, &parked, SQS_MAX_MESSAGE_BYTES),
    };
    (stage, table, parked)
}

/// Documents the ERP sandbox created, per external reference (`LB-…`) found in their bodies.
pub fn creates_by_reference(sb: &SandboxHandle, erp: ErpKind) -> HashMap<String, usize> {
    let mut out: HashMap<String, usize> = HashMap::new();
    for entry in sb.audit(Some(erp)).unwrap() {
        if entry.action != "create" {
            continue;
        }
        let text = entry.body.to_string();
        let mut refs: Vec<&str> = text
            .match_indices("LB-")
            .map(|(i, _)| {
                let rest = &text[i..];
                let end = rest.find(['"', ' ', '\\']).unwrap_or(rest.len());
                &rest[..end]
            })
            .collect();
        refs.sort_unstable();
        refs.dedup();
        for r in refs {
            *out.entry(r.to_owned()).or_default() += 1;
        }
    }
    out
}

/// The invariant checked after every row (A6): each expected reference is in the ERP exactly
/// once.
pub fn assert_each_once(sb: &SandboxHandle, erp: ErpKind, commands: &[ErpCommand]) {
    let created = creates_by_reference(sb, erp);
    let mut missing = 0;
    let mut doubled = Vec::new();
    for c in commands {
        // The ERP holds the reference as rendered for its field width (shortened
        // deterministically when the full one does not fit).
        let full = c.reference().full();
        let mut forms: Vec<String> = (8..=full.len())
            .filter_map(|n| c.reference().render(n).ok())
            .collect();
        forms.sort_unstable();
        forms.dedup();
        let r = full;
        match forms
            .iter()
            .map(|f| created.get(f).copied().unwrap_or(0))
            .sum::<usize>()
        {
            0 => missing += 1,
            1 => {}
            n => doubled.push((r, n)),
        }
    }
    assert_eq!(
        missing,
        0,
        "{missing} of {} documents missing",
        commands.len()
    );
    assert!(
        doubled.is_empty(),
        "documents created more than once: {doubled:?}"
    );
}
