use super::{
    by_kind, changed_customers_contract, customer_fields_contract, email_lookup_contract,
    fixture_commands, policy, sandbox,
};
use ledgerbridge_core::secrets::Secret;
use ledgerbridge_erp::commands::*;
use ledgerbridge_erp::sagepro::{SageProConfig, SageProConnector, SageProCredentials};
use ledgerbridge_erp::{post_command, Credentials, ErpConnector, ErpErrorKind};
use ledgerbridge_erp_sandbox::{ErpKind, Faults, SandboxHandle};

fn connector_with_key(sb: &SandboxHandle, key: &str) -> SageProConnector {
    let mut cfg = SageProConfig::new(sb.base_url());
    cfg.timeout_ms = 2_000;
    SageProConnector::new(
        cfg,
        Credentials::fixed(SageProCredentials {
            api_key: Secret::new(key.into()),
        }),
    )
    .unwrap()
}

fn connector(sb: &SandboxHandle) -> SageProConnector {
    connector_with_key(sb, &sb.keys().sagepro_api_key)
}

async fn with_masters(c: &SageProConnector, cmds: &mut [ErpCommand]) {
    post_command(c, &by_kind(cmds, DocKind::Customer), &policy())
        .await
        .unwrap();
    let inv = post_command(c, &by_kind(cmds, DocKind::Invoice), &policy())
        .await
        .unwrap();
    for cmd in cmds.iter_mut() {
        match cmd {
            ErpCommand::CreateCashReceipt(r) => {
                r.applies_to = Some(Application::Invoice(inv.erp_id.clone()))
            }
            ErpCommand::CreateCreditMemo(m) => m.applies_to_invoice = Some(inv.erp_id.clone()),
            _ => {}
        }
    }
}

#[tokio::test]
async fn erp_sagepro_posts_every_document_kind_and_finds_it_by_reference() {
    let sb = sandbox().await;
    let c = connector(&sb);
    let mut cmds = fixture_commands("a");
    with_masters(&c, &mut cmds).await;
    for cmd in &cmds {
        let out = post_command(&c, cmd, &policy()).await.unwrap();
        assert_eq!(
            c.find_by_reference(cmd.reference()).await.unwrap(),
            Some(out.erp_id)
        );
    }
    let creates = |sb: &SandboxHandle| {
        sb.audit(Some(ErpKind::SagePro))
            .unwrap()
            .iter()
            .filter(|a| a.action == "create")
            .count()
    };
    let before = creates(&sb);
    assert_eq!(before, 6);
    for cmd in &cmds {
        assert!(!post_command(&c, cmd, &policy()).await.unwrap().created);
    }
    assert_eq!(creates(&sb), before);
    sb.shutdown().await;
}

#[tokio::test]
async fn erp_sagepro_lost_response_after_commit_is_found_on_retry() {
    let sb = sandbox().await;
    let c = connector(&sb);
    let mut cmds = fixture_commands("b");
    with_masters(&c, &mut cmds).await;
    let receipt = by_kind(&cmds, DocKind::CashReceipt);
    sb.set_faults(Faults {
        drop_after_commit: 1,
        search_lag_ms: 20,
        ..Faults::default()
    });
    let out = post_command(&c, &receipt, &policy()).await.unwrap();
    assert!(
        !out.created,
        "the committed receipt must be found, not re-created"
    );
    assert_eq!(out.attempts, 2);
    assert_eq!(sb.count(ErpKind::SagePro, "cashreceipts").unwrap(), 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn erp_sagepro_errors_are_classified() {
    let sb = sandbox().await;
    let c = connector(&sb);
    let cmds = fixture_commands("c");
    // Unknown customer: the API's 422 message.
    let err = post_command(&c, &by_kind(&cmds, DocKind::SalesOrder), &policy())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErpErrorKind::Permanent);
    assert!(
        err.to_string().contains("Customer STR0001 does not exist"),
        "{err}"
    );
    // Wrong key: 401 → authentication error, and nothing was written.
    let bad = connector_with_key(&sb, "wrong");
    let err = post_command(&bad, &by_kind(&cmds, DocKind::Customer), &policy())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErpErrorKind::Authentication);
    assert_eq!(sb.count(ErpKind::SagePro, "customers").unwrap(), 0);
    sb.shutdown().await;
}

#[tokio::test]
async fn erp_sagepro_finds_customers_by_email() {
    let sb = sandbox().await;
    let c = connector(&sb);
    email_lookup_contract(&c, &sb).await;
    sb.shutdown().await;
}

#[tokio::test]
async fn erp_sagepro_writes_customer_fields() {
    let sb = sandbox().await;
    let c = connector(&sb);
    customer_fields_contract(
        &c,
        &sb,
        ledgerbridge_erp_sandbox::ErpKind::SagePro,
        "customers",
        &ledgerbridge_erp::sagepro::config::default_customer_fields(),
    )
    .await;
    sb.shutdown().await;
}

#[tokio::test]
async fn erp_sagepro_lists_changed_customers() {
    let sb = sandbox().await;
    let c = connector(&sb);
    changed_customers_contract(&c, &sb, ledgerbridge_erp_sandbox::ErpKind::SagePro, "name").await;
    sb.shutdown().await;
}
