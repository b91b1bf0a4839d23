use super::{
    by_kind, changed_customers_contract, customer_fields_contract, email_lookup_contract,
    fixture_commands, policy, sandbox,
};
use ledgerbridge_core::secrets::Secret;
use ledgerbridge_erp::commands::*;
use ledgerbridge_erp::sage500::{
    HttpDb, Sage500Config, Sage500Connector, Sage500Credentials, Sage500Db, SqlValue, StagingRow,
};
use ledgerbridge_erp::{
    post_command, AnyConnector, Credentials, ErpConnector, ErpError, ErpErrorKind, ErpSettings,
};
use ledgerbridge_erp_sandbox::{ErpKind, Faults, SandboxHandle};
use std::time::Duration;

// Sage 500 company IDs are varchar(3).
const COMPANY: &str = "SOA";

fn config(sb: &SandboxHandle) -> Sage500Config {
    let mut cfg = Sage500Config::http(sb.base_url(), COMPANY);
    cfg.timeout_ms = 2_000;
    cfg
}

fn connector_with_key(sb: &SandboxHandle, key: &str) -> Sage500Connector {
    Sage500Connector::new(
        config(sb),
        Credentials::fixed(Sage500Credentials {
            api_key: Some(Secret::new(key.into())),
            ..Sage500Credentials::default()
        }),
    )
    .unwrap()
}

fn connector(sb: &SandboxHandle) -> Sage500Connector {
    connector_with_key(sb, &sb.keys().sage500_api_key)
}

fn creates(sb: &SandboxHandle, entity: Option<&str>) -> usize {
    sb.audit(Some(ErpKind::Sage500))
        .unwrap()
        .iter()
        .filter(|a| a.action == "create" && entity.is_none_or(|e| a.entity == e))
        .count()
}

/// Customer and invoice first; receipts and credit memos are applied to that invoice.
async fn with_masters<C: ErpConnector>(c: &C, cmds: &mut [ErpCommand]) {
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
async fn erp_sage500_posts_every_document_kind_and_finds_it_by_reference() {
    let sb = sandbox().await;
    let c = connector(&sb);
    let mut cmds = fixture_commands("a");
    with_masters(&c, &mut cmds).await;
    for cmd in &cmds {
        let out = post_command(&c, cmd, &policy()).await.unwrap();
        assert_eq!(
            c.find_by_reference(cmd.reference()).await.unwrap(),
            Some(out.erp_id),
            "{}",
            cmd.reference()
        );
    }
    assert_eq!(creates(&sb, None), 6);
    for (entity, n) in [
        ("tarCustomer", 1),
        ("tsoSalesOrder", 1),
        ("tarInvoice", 2),
        ("tarCustPmt", 1),
        ("tglTransaction", 1),
    ] {
        assert_eq!(sb.count(ErpKind::Sage500, entity).unwrap(), n, "{entity}");
    }
    // Re-posting creates nothing; the customer is updated in place (Action 2).
    for cmd in &cmds {
        let out = post_command(&c, cmd, &policy()).await.unwrap();
        assert!(!out.created, "{}", cmd.reference());
        assert_eq!(out.updated, cmd.kind() == DocKind::Customer);
    }
    assert_eq!(creates(&sb, None), 6);
    let updates = sb
        .audit(Some(ErpKind::Sage500))
        .unwrap()
        .into_iter()
        .filter(|a| a.action == "update")
        .collect::<Vec<_>>();
    // The customer was posted three times (masters, first round, second round): two updates.
    assert_eq!(updates.len(), 2);
    assert!(updates.iter().all(|u| u.entity == "tarCustomer"));
    assert_eq!(sb.count(ErpKind::Sage500, "tarCustomer").unwrap(), 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn erp_sage500_lost_response_after_commit_is_found_on_retry() {
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
    // Without retries the caller sees a retryable failure that may have committed.
    let err = post_command(&c, &receipt, &ledgerbridge_erp::RetryPolicy::none())
        .await
        .unwrap_err();
    assert!(err.is_retriable() && err.may_have_committed(), "{err}");
    assert_eq!(sb.count(ErpKind::Sage500, "tarCustPmt").unwrap(), 1);
    // The redelivery (after the queue's visibility timeout, here longer than the search lag)
    // searches first and finds the committed receipt.
    tokio::time::sleep(Duration::from_millis(60)).await;
    let out = post_command(&c, &receipt, &policy()).await.unwrap();
    assert!(!out.created);
    assert_eq!(sb.count(ErpKind::Sage500, "tarCustPmt").unwrap(), 1);

    // And within one post: the create's answer is lost, the retry finds the document.
    let order = by_kind(&cmds, DocKind::SalesOrder);
    sb.set_faults(Faults {
        drop_after_commit: 1,
        search_lag_ms: 20,
        ..Faults::default()
    });
    let out = post_command(&c, &order, &policy()).await.unwrap();
    assert!(!out.created);
    assert_eq!(out.attempts, 2);
    assert_eq!(sb.count(ErpKind::Sage500, "tsoSalesOrder").unwrap(), 1);
    assert_eq!(
        c.find_by_reference(order.reference()).await.unwrap(),
        Some(out.erp_id)
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn erp_sage500_unknown_customer_or_item_is_permanent_with_the_logged_reason() {
    let sb = sandbox().await;
    let c = connector(&sb);
    let mut cmds = fixture_commands("c");
    with_masters(&c, &mut cmds).await;
    let mut order = by_kind(&cmds, DocKind::SalesOrder);
    if let ErpCommand::CreateSalesOrder(o) = &mut order {
        o.customer_id = "NOSUCH".into();
    }
    let err = post_command(&c, &order, &policy()).await.unwrap_err();
    assert_eq!(err.kind(), ErpErrorKind::Permanent);
    assert!(
        err.to_string()
            .contains("Customer ID 'NOSUCH' is not valid."),
        "{err}"
    );
    let mut order = by_kind(&cmds, DocKind::SalesOrder);
    if let ErpCommand::CreateSalesOrder(o) = &mut order {
        o.lines[0].item_id = "GHOST-99".into();
    }
    let err = post_command(&c, &order, &policy()).await.unwrap_err();
    assert_eq!(err.kind(), ErpErrorKind::Permanent);
    assert!(
        err.to_string().contains("Item ID 'GHOST-99' is not valid."),
        "{err}"
    );
    assert_eq!(sb.count(ErpKind::Sage500, "tsoSalesOrder").unwrap(), 0);
    // A receipt applied to an invoice that does not exist.
    let mut receipt = by_kind(&cmds, DocKind::CashReceipt);
    if let ErpCommand::CreateCashReceipt(r) = &mut receipt {
        r.applies_to = Some(Application::Invoice("9999999999".into()));
    }
    let err = post_command(&c, &receipt, &policy()).await.unwrap_err();
    assert_eq!(err.kind(), ErpErrorKind::Permanent);
    assert!(err.to_string().contains("Invoice '9999999999'"), "{err}");
    sb.shutdown().await;
}

#[tokio::test]
async fn erp_sage500_unbalanced_journal_is_rejected() {
    let sb = sandbox().await;
    let c = connector(&sb);
    let mut je = by_kind(&fixture_commands("d"), DocKind::JournalEntry);
    if let ErpCommand::PostJournalEntry(j) = &mut je {
        j.lines[0].amount.minor += 1;
    }
    // Rejected before anything is sent...
    let err = post_command(&c, &je, &policy()).await.unwrap_err();
    assert!(matches!(err, ErpError::InvalidCommand(_)), "{err}");
    // ...and by the procedure when unbalanced rows reach it anyway.
    let db = HttpDb::new(
        &sb.base_url(),
        COMPANY,
        Credentials::fixed(Secret::new(sb.keys().sage500_api_key)),
        Duration::from_secs(2),
    )
    .unwrap();
    let row = |acct: &str, amt: &str| StagingRow {
        table: "#tciTransToPost".into(),
        columns: vec![
            ("GLAcctNo".into(), SqlValue::Text(acct.into())),
            ("PostAmtHC".into(), SqlValue::Decimal(amt.into())),
            ("PostDate".into(), SqlValue::Text("2024-05-16".into())),
            (
                "TranDesc".into(),
                SqlValue::Text("LB-po_unbalanced-JE".into()),
            ),
        ],
    };
    let out = db
        .run_batch(
            "spglAPIPostBatchlessGLPosting",
            &[row("1010-00", "100.00"), row("1015-00", "-99.99")],
        )
        .await
        .unwrap();
    // @_oRetVal 1: the call ran; the rows failed (vendor interface, TYL).
    assert_eq!(out.return_code, 1);
    assert_eq!(out.failed, Some(1));
    assert!(out.process_status.iter().all(|s| *s == 2));
    assert!(
        out.log
            .iter()
            .any(|l| l.contains("Debits do not equal credits")),
        "{:?}",
        out.log
    );
    let err =
        ledgerbridge_erp::sage500::retry::check_outcome("spglAPIPostBatchlessGLPosting", &out)
            .unwrap_err();
    assert_eq!(err.kind(), ErpErrorKind::Permanent);
    assert_eq!(sb.count(ErpKind::Sage500, "tglTransaction").unwrap(), 0);
    sb.shutdown().await;
}

#[tokio::test]
async fn erp_sage500_wrong_key_is_an_authentication_error() {
    let sb = sandbox().await;
    let c = connector_with_key(&sb, "not-the-key");
    let cmd = by_kind(&fixture_commands("e"), DocKind::Customer);
    let err = post_command(&c, &cmd, &policy()).await.unwrap_err();
    assert_eq!(err.kind(), ErpErrorKind::Authentication, "{err}");
    assert!(!err.to_string().contains("not-the-key"));
    assert_eq!(creates(&sb, None), 0);
    sb.shutdown().await;
}

#[tokio::test]
async fn erp_sage500_any_connector_from_settings_json_posts() {
    let sb = sandbox().await;
    let json = serde_json::json!({
        "kind": "sage500",
        "company": COMPANY,
        "base_url": sb.base_url(),
        "api_key": sb.keys().sage500_api_key,
        "timeout_ms": 2000,
    })
    .to_string();
    let settings = ErpSettings::from_json(&Secret::new(json)).unwrap();
    let connector = AnyConnector::from_settings(settings).unwrap();
    assert_eq!(connector.erp(), "sage500");
    let cmd = by_kind(&fixture_commands("f"), DocKind::Customer);
    let out = post_command(&connector, &cmd, &policy()).await.unwrap();
    assert!(out.created);
    assert_eq!(
        connector.find_by_reference(cmd.reference()).await.unwrap(),
        Some(out.erp_id)
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn erp_sage500_finds_customers_by_email() {
    let sb = sandbox().await;
    let c = connector(&sb);
    email_lookup_contract(&c, &sb).await;
    sb.shutdown().await;
}

#[tokio::test]
async fn erp_sage500_writes_customer_fields() {
    let sb = sandbox().await;
    let c = connector(&sb);
    customer_fields_contract(
        &c,
        &sb,
        ledgerbridge_erp_sandbox::ErpKind::Sage500,
        "tarCustomer",
        &ledgerbridge_erp::sage500::config::default_customer_fields(),
    )
    .await;
    sb.shutdown().await;
}

#[tokio::test]
async fn erp_sage500_lists_changed_customers() {
    let sb = sandbox().await;
    let c = connector(&sb);
    changed_customers_contract(
        &c,
        &sb,
        ledgerbridge_erp_sandbox::ErpKind::Sage500,
        "CustName",
    )
    .await;
    sb.shutdown().await;
}
