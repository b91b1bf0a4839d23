//! Contract tests of the ERP connectors against the project's ERP sandbox (in process).

mod agent;
mod epicor;
mod sage500;
mod sagepro;

use ledgerbridge_core::ids::StripeObjectId;
use ledgerbridge_erp::commands::*;
use ledgerbridge_erp::RetryPolicy;
use ledgerbridge_erp_sandbox::{spawn, SandboxConfig, SandboxHandle};
use std::time::Duration;

pub async fn sandbox() -> SandboxHandle {
    spawn(SandboxConfig::default()).await.unwrap().1
}

/// Fast retries for tests; the ambiguous-settle wait stays above any search lag a test sets.
pub fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        max_retry_after: Duration::from_secs(5),
        settle_after_ambiguous: Duration::from_millis(50),
    }
}

/// The shared command fixtures (the same file the mapping unit tests use), with a unique Stripe
/// id suffix so tests do not see each other's documents.
pub fn fixture_commands(suffix: &str) -> Vec<ErpCommand> {
    let text = include_str!("../../shared/erp/tests/fixtures/commands.json");
    let mut cmds: Vec<ErpCommand> = serde_json::from_str(text).unwrap();
    for c in &mut cmds {
        let r = c.reference().clone();
        let new = ExternalRef::new(
            &StripeObjectId::new(format!("{}{suffix}", r.stripe_id())),
            r.kind(),
        )
        .unwrap();
        match c {
            ErpCommand::UpsertCustomer(x) => x.reference = new,
            ErpCommand::CreateSalesOrder(x) => x.reference = new,
            ErpCommand::CreateInvoice(x) => x.reference = new,
            ErpCommand::CreateCashReceipt(x) => x.reference = new,
            ErpCommand::CreateCreditMemo(x) => x.reference = new,
            ErpCommand::PostJournalEntry(x) => x.reference = new,
        }
    }
    cmds
}

pub fn by_kind(cmds: &[ErpCommand], kind: DocKind) -> ErpCommand {
    cmds.iter().find(|c| c.kind() == kind).cloned().unwrap()
}
