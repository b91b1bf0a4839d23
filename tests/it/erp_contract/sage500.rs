use super::{
    by_kind, changed_customers_contract, customer_fields_contract, email_lookup_contract,
    fixture_commands, policy, sandbox,
};
use ledgerbridge_core::secrets::Secret;
use ledgerbridge_erp::commands::*;
use ledgerbridge_erp::sage500::{
    HttpDb, Sage500Config, Sage500Connector, Sage500Credentials, Sage500Db, SqlValue, StagingRow,
    TsqlDb,
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
    // The sandbox emulates the documented site procedures for invoices, receipts and journals.
    cfg.site_procedures = true;
    // ...and a Data Import Manager job whose column map allows customer updates.
    cfg.customer_update_dim_job = Some(ledgerbridge_erp_sandbox::SAGE500_DIM_CUSTOMER_JOB);
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
        table: "StgLBGLJournal".into(),
        columns: vec![
            ("GLAcctNo".into(), SqlValue::Text(acct.into())),
            ("PostAmtHC".into(), SqlValue::Decimal(amt.into())),
            ("PostDate".into(), SqlValue::Text("2024-05-16".into())),
            (
                "PostCmnt".into(),
                SqlValue::Text("LB-po_unbalanced-JE".into()),
            ),
        ],
    };
    let out = db
        .run_batch(
            "spLBapiGLJournalIns",
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
        ledgerbridge_erp::sage500::retry::check_outcome("spLBapiGLJournalIns", &out).unwrap_err();
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

/// The connector over the sandbox's T-SQL emulation: every statement the SQL Server adapter
/// would send is parsed (sqlparser, SQL Server dialect) and run against the strict emulation.
fn tsql_connector(
    sb: &SandboxHandle,
) -> (
    Sage500Connector<TsqlDb<ledgerbridge_erp_sandbox::Sage500Tsql>>,
    ledgerbridge_erp_sandbox::Sage500Tsql,
) {
    let mut cfg = config(sb);
    cfg.docs = cfg.docs.with_site_procedures();
    let emulator = sb.sage500_tsql();
    let db = TsqlDb::from_config(emulator.clone(), &cfg);
    (Sage500Connector::with_db(cfg, db), emulator)
}

fn upper(sql: &str) -> String {
    sql.to_ascii_uppercase()
}

#[tokio::test]
async fn erp_sage500_tsql_sequence_runs_on_the_strict_emulation() {
    let sb = sandbox().await;
    let (c, emu) = tsql_connector(&sb);
    let cmds = fixture_commands("t");
    let customer = post_command(&c, &by_kind(&cmds, DocKind::Customer), &policy())
        .await
        .unwrap();
    assert!(customer.created);
    let order_cmd = by_kind(&cmds, DocKind::SalesOrder);
    let order = post_command(&c, &order_cmd, &policy()).await.unwrap();
    assert!(order.created);
    // Found again by reference through the T-SQL lookup; the key is the caller's TranNo.
    let tran_no =
        ledgerbridge_erp::sage500::mapping::so_tran_no(c.config(), order_cmd.reference()).unwrap();
    assert_eq!(order.erp_id.as_str(), tran_no);
    assert_eq!(
        c.find_by_reference(order_cmd.reference()).await.unwrap(),
        Some(order.erp_id.clone())
    );
    let audit = sb.audit(Some(ErpKind::Sage500)).unwrap();
    let so = audit
        .iter()
        .find(|d| d.entity == "tsoSalesOrder" && d.action == "create")
        .expect("order committed");
    assert_eq!(so.body["TranNo"], tran_no.as_str());
    assert!(so.body.get("CompanyID").is_some());
    let lines = so.body["Lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["TranNo"], tran_no.as_str());
        assert_eq!(l["SOLineNo"], i as i64 + 1);
    }

    // The order's batches, in order: the vendor's calling sequence.
    let executed = emu.executed();
    let start = executed
        .iter()
        .rposition(|(sql, _)| upper(sql).contains("TSMCOMPANYSETUP"))
        .unwrap();
    let seq: Vec<String> = executed[start..]
        .iter()
        .map(|(sql, _)| upper(sql))
        .collect();
    assert!(seq[1].contains("EXEC [SPGETNEXTSURROGATEKEY] 'TSMMIGRATESESSION', @KEY OUTPUT"));
    assert!(seq[2].starts_with("INSERT INTO [TSMMIGRATESESSION]"));
    assert_eq!(
        executed[start + 2].1[2],
        SqlValue::Int(2_100_600),
        "SetupStepKey of open sales order insertion"
    );
    assert!(seq[3].starts_with("INSERT INTO [STGSALESORDER]"));
    assert!(seq[4].starts_with("INSERT INTO [STGSOLINE]"));
    assert!(seq[5].starts_with("INSERT INTO [STGSOLINE]"));
    assert!(seq
        .iter()
        .all(|s| !s.contains("COMPANYID]") || s.contains("TSM") || s.contains("SELECT TOP 1")));
    let calls: Vec<&String> = seq
        .iter()
        .filter(|s| s.contains("EXEC [SPSOAPISALESORDINS]"))
        .collect();
    assert_eq!(calls.len(), 1, "one order: one call, @oContinue 0");
    assert!(calls[0].contains(
        "@OCONTINUE OUTPUT, 0, @P1, @P2, @P6, @P7, 1, @ORECSPROCESSED OUTPUT, @OFAILEDRECS OUTPUT, @OTOTALRECS OUTPUT, @_ORETVAL OUTPUT"
    ));
    assert!(seq
        .iter()
        .any(|s| s.contains("SELECT [ROWKEY], [PROCESSSTATUS] FROM [STGSOLINE]")));
    assert!(seq.iter().any(|s| s.contains("FROM [TDMMIGRATIONLOGWRK]")));
    assert!(seq
        .iter()
        .any(|s| s.starts_with("UPDATE [TSMMIGRATESESSION]")));
    sb.shutdown().await;
}

#[tokio::test]
async fn erp_sage500_tsql_loops_while_ocontinue_and_reports_failures_from_the_log() {
    use ledgerbridge_erp::sage500::{mapping, tsql, Sage500ApiCall};
    let sb = sandbox().await;
    let (c, emu) = tsql_connector(&sb);
    let cmds = fixture_commands("u");
    post_command(&c, &by_kind(&cmds, DocKind::Customer), &policy())
        .await
        .unwrap();
    // Two orders in one session: Sage migrates one per call, so the caller must loop.
    let mut rows = Vec::new();
    for suffix in ["u1", "u2"] {
        let cmd = by_kind(&fixture_commands(suffix), DocKind::SalesOrder);
        let mut cmd = cmd;
        if let ErpCommand::CreateSalesOrder(o) = &mut cmd {
            o.customer_id = match by_kind(&cmds, DocKind::Customer) {
                ErpCommand::UpsertCustomer(cu) => cu.customer_id,
                _ => unreachable!(),
            };
        }
        rows.extend(mapping::create_rows(c.config(), &cmd).unwrap().rows);
    }
    let mut conn = ledgerbridge_erp::sage500::SqlConnect::connect(&emu)
        .await
        .unwrap();
    let api = Sage500ApiCall::default();
    let out = tsql::run_migration(
        &mut conn,
        COMPANY,
        &api,
        Some(2_100_600),
        "spSOapiSalesOrdIns",
        &rows,
    )
    .await
    .unwrap();
    assert_eq!(out.return_code, 1);
    assert_eq!((out.failed, out.total), (Some(0), Some(2)));
    assert!(out.process_status.iter().all(|s| *s == 1));
    let calls = emu
        .executed()
        .iter()
        .filter(|(s, _)| s.contains("EXEC [spSOapiSalesOrdIns]"))
        .count();
    assert_eq!(calls, 2, "called again while @oContinue = 1");
    assert_eq!(sb.count(ErpKind::Sage500, "tsoSalesOrder").unwrap(), 2);

    // A caller that does not loop leaves the second order unprocessed: not success.
    let mut rows = Vec::new();
    for suffix in ["u3", "u4"] {
        let mut cmd = by_kind(&fixture_commands(suffix), DocKind::SalesOrder);
        if let ErpCommand::CreateSalesOrder(o) = &mut cmd {
            o.customer_id = match by_kind(&cmds, DocKind::Customer) {
                ErpCommand::UpsertCustomer(cu) => cu.customer_id,
                _ => unreachable!(),
            };
        }
        rows.extend(mapping::create_rows(c.config(), &cmd).unwrap().rows);
    }
    let once = Sage500ApiCall {
        max_calls: 1,
        ..api.clone()
    };
    let out = tsql::run_migration(
        &mut conn,
        COMPANY,
        &once,
        Some(2_100_600),
        "spSOapiSalesOrdIns",
        &rows,
    )
    .await
    .unwrap();
    assert!(out.process_status.contains(&0), "{out:?}");
    let err =
        ledgerbridge_erp::sage500::retry::check_outcome("spSOapiSalesOrdIns", &out).unwrap_err();
    assert!(err.is_retriable());

    // Without SetupStepKey 2100600 a blank Status would make the order Closed: rejected.
    let mut cmd = by_kind(&fixture_commands("u5"), DocKind::SalesOrder);
    if let ErpCommand::CreateSalesOrder(o) = &mut cmd {
        o.customer_id = match by_kind(&cmds, DocKind::Customer) {
            ErpCommand::UpsertCustomer(cu) => cu.customer_id,
            _ => unreachable!(),
        };
    }
    let mut rows = mapping::create_rows(c.config(), &cmd).unwrap().rows;
    rows[0].columns.retain(|(c, _)| c != "Status");
    let out = tsql::run_migration(&mut conn, COMPANY, &api, None, "spSOapiSalesOrdIns", &rows)
        .await
        .unwrap();
    assert_eq!(out.return_code, 1, "the call ran");
    assert_eq!(out.failed, Some(1));
    assert!(out.process_status.iter().all(|s| *s == 2));
    assert!(
        out.log.iter().any(|l| l.contains("would be Closed")),
        "{:?}",
        out.log
    );

    // An unknown item fails the order with the logged reason, through the connector.
    let mut order = by_kind(&fixture_commands("u6"), DocKind::SalesOrder);
    if let ErpCommand::CreateSalesOrder(o) = &mut order {
        o.customer_id = match by_kind(&cmds, DocKind::Customer) {
            ErpCommand::UpsertCustomer(cu) => cu.customer_id,
            _ => unreachable!(),
        };
        o.lines[0].item_id = "GHOST-99".into();
    }
    let err = post_command(&c, &order, &policy()).await.unwrap_err();
    assert_eq!(err.kind(), ErpErrorKind::Permanent);
    assert!(
        err.to_string().contains("Item ID 'GHOST-99' is not valid."),
        "{err}"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn erp_sage500_tsql_emulation_rejects_what_sql_server_and_sage_would() {
    let sb = sandbox().await;
    let emu = sb.sage500_tsql();
    let run = |sql: &str, params: &[SqlValue]| emu.run(sql, params).map_err(|e| e.number);
    let key = run(ledgerbridge_erp::sage500::tsql::SQL_NEXT_SESSION_KEY, &[]).unwrap()[0][0]
        .as_i64()
        .unwrap();
    let k = SqlValue::Int(key);
    // Staging tables have no CompanyID; widths are the real ones; LineNo is not a column.
    assert_eq!(
        run(
            "INSERT INTO [StgSalesOrder] ([SessionKey], [ProcessStatus], [CompanyID]) VALUES (@P1, 0, @P2)",
            &[k.clone(), SqlValue::Text(COMPANY.into())]
        ),
        Err(207)
    );
    assert_eq!(
        run(
            "INSERT INTO [StgSalesOrder] ([SessionKey], [ProcessStatus], [CustPONo]) VALUES (@P1, 0, @P2)",
            &[k.clone(), SqlValue::Text("LB-pi_3MtwBwLkdI-SO".into())]
        ),
        Err(2628)
    );
    assert_eq!(
        run(
            "INSERT INTO [StgSOLine] ([SessionKey], [ProcessStatus], [LineNo]) VALUES (@P1, 0, 1)",
            std::slice::from_ref(&k)
        ),
        Err(207)
    );
    // The 11 parameters, OUTPUT only where declared.
    let decl = "DECLARE @c smallint, @r int, @f int, @t int, @v int; ";
    assert_eq!(
        run(
            &format!("{decl}EXEC [spSOapiSalesOrdIns] @c OUTPUT, 0, @P1, @P2, 3, 0, 1, @r OUTPUT, @f OUTPUT, @t OUTPUT"),
            &[k.clone(), SqlValue::Text(COMPANY.into())]
        ),
        Err(201)
    );
    assert_eq!(
        run(
            &format!("{decl}EXEC [spSOapiSalesOrdIns] @c OUTPUT, @c OUTPUT, @P1, @P2, 3, 0, 1, @r OUTPUT, @f OUTPUT, @t OUTPUT, @v OUTPUT"),
            &[k.clone(), SqlValue::Text(COMPANY.into())]
        ),
        Err(8162)
    );
    // A session that was never registered: @_oRetVal 3 (parameter error).
    let out = run(
        &format!("{decl}EXEC [spSOapiSalesOrdIns] @c OUTPUT, 0, @P1, @P2, 3, 0, 1, @r OUTPUT, @f OUTPUT, @t OUTPUT, @v OUTPUT; SELECT @c, @r, @f, @t, @v"),
        &[k.clone(), SqlValue::Text(COMPANY.into())],
    )
    .unwrap();
    assert_eq!(out[0][4].as_i64(), Some(3));
    // Procedures that do not exist.
    assert_eq!(
        run(
            &format!("{decl}EXEC [spARapiNoSuchIns] @c OUTPUT, 0, @P1, @P2, 3, 0, 1, @r OUTPUT, @f OUTPUT, @t OUTPUT, @v OUTPUT"),
            &[k, SqlValue::Text(COMPANY.into())]
        ),
        Err(2812)
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn erp_sage500_unconfigured_documents_and_updates_are_refused_with_what_to_configure() {
    let sb = sandbox().await;
    let mut cfg = Sage500Config::http(sb.base_url(), COMPANY);
    cfg.timeout_ms = 2_000;
    let c = Sage500Connector::new(
        cfg,
        Credentials::fixed(Sage500Credentials {
            api_key: Some(Secret::new(sb.keys().sage500_api_key)),
            ..Sage500Credentials::default()
        }),
    )
    .unwrap();
    let cmds = fixture_commands("v");
    // Customers and sales orders use Sage's own procedures...
    let cu = by_kind(&cmds, DocKind::Customer);
    assert!(post_command(&c, &cu, &policy()).await.unwrap().created);
    // ...a linked customer is read-only without a DIM column map...
    let err = post_command(&c, &cu, &policy()).await.unwrap_err();
    assert_eq!(err.kind(), ErpErrorKind::Permanent);
    assert!(err.to_string().contains("customer_update_dim_job"), "{err}");
    // ...and invoices, receipts and journals wait for the site procedures.
    for kind in [
        DocKind::Invoice,
        DocKind::CreditMemo,
        DocKind::CashReceipt,
        DocKind::JournalEntry,
    ] {
        let err = post_command(&c, &by_kind(&cmds, kind), &policy())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErpErrorKind::Permanent, "{kind:?}");
        assert!(err.to_string().contains("site_procedures"), "{err}");
    }
    assert_eq!(creates(&sb, None), 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn erp_sage500_tsql_customer_update_applies_only_the_dim_column_map() {
    let sb = sandbox().await;
    let (c, emu) = tsql_connector(&sb);
    let ErpCommand::UpsertCustomer(mut cu) = by_kind(&fixture_commands("w"), DocKind::Customer)
    else {
        unreachable!()
    };
    let first = post_command(&c, &ErpCommand::UpsertCustomer(cu.clone()), &policy())
        .await
        .unwrap();
    cu.name = "Renamed Customer".into();
    let second = post_command(&c, &ErpCommand::UpsertCustomer(cu.clone()), &policy())
        .await
        .unwrap();
    assert!(second.updated && !second.created);
    assert_eq!(first.erp_id, second.erp_id);
    assert!(emu.executed().iter().any(|(s, p)| s
        .starts_with("INSERT INTO [tdiDataTrnsfrJobExecute]")
        && p[0] == SqlValue::Int(ledgerbridge_erp_sandbox::SAGE500_DIM_CUSTOMER_JOB)));
    let audit = sb.audit(Some(ErpKind::Sage500)).unwrap();
    let update = audit
        .iter()
        .find(|a| a.entity == "tarCustomer" && a.action == "update")
        .unwrap();
    assert_eq!(update.body["CustName"], "Renamed Customer");
    // Without a job tied to the session, Sage fails update rows.
    let mut conn = ledgerbridge_erp::sage500::SqlConnect::connect(&emu)
        .await
        .unwrap();
    let rows = ledgerbridge_erp::sage500::mapping::update_customer_rows(c.config(), &cu)
        .unwrap()
        .rows;
    let out = ledgerbridge_erp::sage500::tsql::run_migration(
        &mut conn,
        COMPANY,
        &c.config().api,
        None,
        "spARapiCustomerIns",
        &rows,
    )
    .await
    .unwrap();
    assert_eq!(out.failed, Some(1));
    assert!(
        out.log.iter().any(|l| l.contains("Data Import Manager")),
        "{:?}",
        out.log
    );
    sb.shutdown().await;
}
