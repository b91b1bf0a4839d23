use super::{
    by_kind, changed_customers_contract, customer_fields_contract, email_lookup_contract,
    fixture_commands, policy, sandbox,
};
use ledgerbridge_core::ids::ErpDocumentId;
use ledgerbridge_core::secrets::Secret;
use ledgerbridge_erp::commands::*;
use ledgerbridge_erp::epicor::config::EpicorJournalConfig;
use ledgerbridge_erp::epicor::{EpicorAuth, EpicorConfig, EpicorConnector, EpicorCredentials};
use ledgerbridge_erp::{post_command, Credentials, ErpConnector, ErpErrorKind};
use ledgerbridge_erp_sandbox::{ErpKind, Faults, SandboxHandle, SandboxKeys, Seed};

fn config(sb: &SandboxHandle) -> EpicorConfig {
    EpicorConfig {
        base_url: format!("{}/KineticTest", sb.base_url()),
        company: "EPIC06".into(),
        invoice_group_id: "STRIPE".into(),
        cash_group_id: "STRIPECR".into(),
        journal: EpicorJournalConfig {
            book_id: "MAIN".into(),
            journal_code: "GJ".into(),
            group_id: "STRIPEGL".into(),
        },
        ref_fields: Default::default(),
        customer_text: Default::default(),
        customer_fields: ledgerbridge_erp::epicor::config::default_customer_fields(),
        timeout_ms: 2_000,
        errors: Default::default(),
        groups: Default::default(),
        posting: Default::default(),
        payment_methods: ledgerbridge_erp::epicor::config::default_payment_methods(),
        gl_accounts: Default::default(),
        gate: Default::default(),
    }
}

fn creds(keys: &SandboxKeys) -> EpicorCredentials {
    EpicorCredentials {
        api_key: Secret::new(keys.epicor_api_key.clone()),
        auth: EpicorAuth::Basic {
            user: keys.epicor_user.clone(),
            password: Secret::new(keys.epicor_password.clone()),
        },
    }
}

fn connector(sb: &SandboxHandle) -> EpicorConnector {
    EpicorConnector::new(config(sb), Credentials::fixed(creds(&sb.keys()))).unwrap()
}

/// Create the customer and an invoice, and point the receipt and credit memo at that invoice.
async fn with_masters(c: &EpicorConnector, cmds: &mut [ErpCommand]) -> ErpDocumentId {
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
    inv.erp_id
}

#[tokio::test]
async fn erp_epicor_posts_every_document_kind_and_finds_it_by_reference() {
    let sb = sandbox().await;
    let c = connector(&sb);
    let mut cmds = fixture_commands("a");
    with_masters(&c, &mut cmds).await;
    for cmd in &cmds {
        let out = post_command(&c, cmd, &policy()).await.unwrap();
        let found = c.find_by_reference(cmd.reference()).await.unwrap();
        assert_eq!(found.as_ref(), Some(&out.erp_id), "{:?}", cmd.kind());
    }
    // Posting everything again creates nothing new (customer is updated instead).
    let before = sb
        .audit(Some(ErpKind::Epicor))
        .unwrap()
        .iter()
        .filter(|a| a.action == "create")
        .count();
    for cmd in &cmds {
        let out = post_command(&c, cmd, &policy()).await.unwrap();
        assert!(!out.created);
    }
    let after = sb.audit(Some(ErpKind::Epicor)).unwrap();
    assert_eq!(
        after.iter().filter(|a| a.action == "create").count(),
        before
    );
    assert!(after
        .iter()
        .any(|a| a.action == "update" && a.entity == "Customers"));
    // Amounts arrived as exact decimal strings with the currency's scale.
    let inv = after
        .iter()
        .find(|a| a.entity == "ARInvoices" && a.body["CreditMemo"] == false)
        .unwrap();
    assert_eq!(inv.body["InvcDtls"][0]["DocUnitPrice"], "12.340");
    sb.shutdown().await;
}

#[tokio::test]
async fn erp_epicor_lost_response_after_commit_is_found_on_retry() {
    let sb = sandbox().await;
    let c = connector(&sb);
    let mut cmds = fixture_commands("b");
    with_masters(&c, &mut cmds).await;
    let order = by_kind(&cmds, DocKind::SalesOrder);
    sb.set_faults(Faults {
        drop_after_commit: 1,
        search_lag_ms: 20,
        ..Faults::default()
    });
    // The bare create commits but the client sees a transport failure.
    let err = c.create(&order).await.unwrap_err();
    assert_eq!(err.kind(), ErpErrorKind::Retryable);
    assert!(err.may_have_committed(), "{err}");
    assert_eq!(sb.count(ErpKind::Epicor, "SalesOrders").unwrap(), 1);
    // A retry through post_command finds it instead of creating a duplicate.
    let journal = by_kind(&cmds, DocKind::JournalEntry);
    sb.set_faults(Faults {
        drop_after_commit: 1,
        search_lag_ms: 20,
        ..Faults::default()
    });
    let out = post_command(&c, &journal, &policy()).await.unwrap();
    assert!(
        !out.created,
        "the lost journal must be found, not re-created"
    );
    assert_eq!(out.attempts, 2);
    assert_eq!(sb.count(ErpKind::Epicor, "GLJournalEntries").unwrap(), 1);
    let again = post_command(&c, &order, &policy()).await.unwrap();
    assert!(!again.created);
    assert_eq!(sb.count(ErpKind::Epicor, "SalesOrders").unwrap(), 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn erp_epicor_validation_errors_are_permanent_with_epicor_message() {
    let sb = sandbox().await;
    let c = connector(&sb);
    let mut cmds = fixture_commands("c");
    with_masters(&c, &mut cmds).await;
    // Unknown customer.
    let mut order = by_kind(&cmds, DocKind::SalesOrder);
    if let ErpCommand::CreateSalesOrder(o) = &mut order {
        o.customer_id = "NOPE".into();
    }
    let err = post_command(&c, &order, &policy()).await.unwrap_err();
    assert_eq!(err.kind(), ErpErrorKind::Permanent);
    assert!(err.to_string().contains("Customer NOPE not found"), "{err}");
    // Unknown part: the sandbox's own message comes back.
    let mut order = by_kind(&cmds, DocKind::SalesOrder);
    if let ErpCommand::CreateSalesOrder(o) = &mut order {
        o.lines[0].item_id = "NO-SUCH-PART".into();
    }
    let err = post_command(&c, &order, &policy()).await.unwrap_err();
    assert!(
        err.to_string().contains("Part NO-SUCH-PART not found."),
        "{err}"
    );
    // Closed period.
    sb.seed(&Seed {
        erp: Some(ErpKind::Epicor),
        closed_periods: vec!["2024-05".into()],
        ..Seed::default()
    })
    .unwrap();
    let err = post_command(&c, &by_kind(&cmds, DocKind::JournalEntry), &policy())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErpErrorKind::Permanent);
    assert!(err.to_string().contains("closed fiscal period"), "{err}");
    sb.shutdown().await;
}

#[tokio::test]
async fn erp_epicor_sandbox_rejects_nested_journals_unbalanced_lines_and_float_amounts() {
    let sb = sandbox().await;
    let http = reqwest::Client::new();
    let keys = sb.keys();
    let root = format!("{}/KineticTest/api/v2/odata/EPIC06", sb.base_url());
    let send = |path: &str, b: &serde_json::Value| {
        http.post(format!("{root}/{path}"))
            .header("x-api-key", &keys.epicor_api_key)
            .basic_auth(&keys.epicor_user, Some(&keys.epicor_password))
            .json(b)
            .send()
    };
    // A journal with its lines nested in one entity-set POST is not what Epicor's OData layer
    // binds: GLJrnDtlMnls is no field of the GLJrnHed row.
    let nested = serde_json::json!({
        "Company": "EPIC06", "BookID": "MAIN", "FiscalYear": 2024, "JournalCode": "GJ",
        "GroupID": "G", "JEDate": "2024-05-01", "Description": "x",
        "GLJrnDtlMnls": [{"Company": "EPIC06", "GLAccount": "1010|00", "TotDebit": "10.00"}]});
    let r = send("Erp.BO.GLJournalEntrySvc/GLJournalEntries", &nested)
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let t = r.text().await.unwrap();
    assert!(t.contains("GLJrnDtlMnls"), "{t}");

    // The business-object route: the connector's own journal, in an unposted group, is taken;
    // the same dataset made unbalanced by one cent, or with an amount sent as a JSON float, is
    // refused the way UpdateExt refuses (200 with errorsOccurred and a BOUpdError row).
    let mut cfg = config(&sb);
    cfg.posting = ledgerbridge_erp::epicor::config::EpicorPosting::None;
    let c = EpicorConnector::new(cfg, Credentials::fixed(creds(&sb.keys()))).unwrap();
    let cmds = fixture_commands("j");
    post_command(&c, &by_kind(&cmds, DocKind::JournalEntry), &policy())
        .await
        .unwrap();
    assert_eq!(sb.count(ErpKind::Epicor, "GLJournalEntries").unwrap(), 1);
    let sent = sb
        .requests(Some(ErpKind::Epicor))
        .into_iter()
        .rev()
        .find(|r| r.path.ends_with("GLJournalEntrySvc/UpdateExt"))
        .unwrap();
    let line_field = |body: &mut serde_json::Value, field: &str, v: serde_json::Value| {
        let line = body["ds"]["GLJrnDtlMnl"]
            .as_array_mut()
            .and_then(|ls| {
                ls.iter_mut()
                    .find(|l| l.get(field).is_some_and(|x| x != "0" && x != "0.00"))
            })
            .unwrap();
        line[field] = v;
    };
    let refused = |t: &str, what: &str| {
        let v: serde_json::Value = serde_json::from_str(t).unwrap();
        assert_eq!(v["parameters"]["errorsOccurred"], true, "{t}");
        assert!(t.contains("BOUpdError") && t.contains(what), "{t}");
    };
    let mut unbalanced = sent.body.clone();
    let debit = unbalanced["ds"]["GLJrnDtlMnl"]
        .as_array()
        .and_then(|ls| {
            ls.iter()
                .find_map(|l| l["TotDebit"].as_str().filter(|d| *d != "0" && *d != "0.00"))
        })
        .unwrap()
        .parse::<rust_decimal::Decimal>()
        .unwrap();
    line_field(
        &mut unbalanced,
        "TotDebit",
        (debit + rust_decimal::Decimal::new(1, 2))
            .to_string()
            .into(),
    );
    let r = send("Erp.BO.GLJournalEntrySvc/UpdateExt", &unbalanced)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    refused(&r.text().await.unwrap(), "out of balance");
    let mut float = sent.body.clone();
    line_field(&mut float, "TotDebit", serde_json::json!(10.5));
    let r = send("Erp.BO.GLJournalEntrySvc/UpdateExt", &float)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    refused(&r.text().await.unwrap(), "Edm.Decimal");
    assert_eq!(sb.count(ErpKind::Epicor, "GLJournalEntries").unwrap(), 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn erp_epicor_auth_refreshes_once_then_fails() {
    let sb = sandbox().await;
    let old = sb.keys();
    let mut rotated = old.clone();
    rotated.epicor_api_key = "rotated-key".into();
    sb.set_keys(rotated.clone());
    let cmd = by_kind(&fixture_commands("d"), DocKind::Customer);
    // No refresher: 401 → authentication error.
    let fixed = EpicorConnector::new(config(&sb), Credentials::fixed(creds(&old))).unwrap();
    let err = post_command(&fixed, &cmd, &policy()).await.unwrap_err();
    assert_eq!(err.kind(), ErpErrorKind::Authentication);
    // A refresher that returns the rotated key: one refresh, then success.
    let fresh = creds(&rotated);
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let n = calls.clone();
    let c = EpicorConnector::new(
        config(&sb),
        Credentials::refreshable(creds(&old), move || {
            n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let f = fresh.clone();
            async move { Ok(f) }
        }),
    )
    .unwrap();
    post_command(&c, &cmd, &policy()).await.unwrap();
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    // A refresher that still returns a bad key: exactly one refresh, then a loud failure.
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let n = calls.clone();
    let stale = creds(&old);
    let c = EpicorConnector::new(
        config(&sb),
        Credentials::refreshable(creds(&old), move || {
            n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let f = stale.clone();
            async move { Ok(f) }
        }),
    )
    .unwrap();
    let err = c.find_by_reference(cmd.reference()).await.unwrap_err();
    assert!(err.is_auth());
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn erp_epicor_honours_retry_after_and_retries_5xx() {
    let sb = sandbox().await;
    let c = connector(&sb);
    let cmd = by_kind(&fixture_commands("e"), DocKind::Customer);
    sb.set_faults(Faults {
        rate_limit: 1,
        retry_after_secs: 1,
        ..Faults::default()
    });
    let t = std::time::Instant::now();
    let out = post_command(&c, &cmd, &policy()).await.unwrap();
    assert!(
        t.elapsed() >= std::time::Duration::from_secs(1),
        "Retry-After was not honoured"
    );
    assert_eq!(out.attempts, 2);
    let cmd2 = by_kind(&fixture_commands("f"), DocKind::Customer);
    let mut cmd2 = cmd2;
    if let ErpCommand::UpsertCustomer(x) = &mut cmd2 {
        x.customer_id = "STR0002".into();
    }
    sb.set_faults(Faults {
        fail_before_commit: 2,
        ..Faults::default()
    });
    let out = post_command(&c, &cmd2, &policy()).await.unwrap();
    assert!(out.created);
    assert_eq!(out.attempts, 3);
    assert_eq!(sb.count(ErpKind::Epicor, "Customers").unwrap(), 2);
    sb.shutdown().await;
}

#[tokio::test]
async fn erp_epicor_finds_customers_by_email() {
    let sb = sandbox().await;
    let c = connector(&sb);
    email_lookup_contract(&c, &sb).await;
    sb.shutdown().await;
}

#[tokio::test]
async fn erp_epicor_writes_customer_fields() {
    let sb = sandbox().await;
    let c = connector(&sb);
    customer_fields_contract(
        &c,
        &sb,
        ledgerbridge_erp_sandbox::ErpKind::Epicor,
        "Customers",
        &ledgerbridge_erp::epicor::config::default_customer_fields(),
    )
    .await;
    sb.shutdown().await;
}

#[tokio::test]
async fn erp_epicor_lists_changed_customers() {
    let sb = sandbox().await;
    let c = connector(&sb);
    changed_customers_contract(&c, &sb, ledgerbridge_erp_sandbox::ErpKind::Epicor, "Name").await;
    sb.shutdown().await;
}

#[tokio::test]
async fn erp_epicor_sandbox_exports_requests_and_documents() {
    let sb = sandbox().await;
    let c = connector(&sb);
    let cmds = fixture_commands("exp");
    let customer = by_kind(&cmds, DocKind::Customer);
    let order = by_kind(&cmds, DocKind::SalesOrder);
    post_command(&c, &customer, &policy()).await.unwrap();
    let out = post_command(&c, &order, &policy()).await.unwrap();

    // Every request as received, over the admin route and the handle alike.
    let http = reqwest::Client::new();
    let recorded: Vec<ledgerbridge_erp_sandbox::RecordedRequest> = http
        .get(format!("{}/_admin/requests?erp=epicor", sb.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(recorded, sb.requests(Some(ErpKind::Epicor)));
    assert!(recorded.iter().all(|r| r.erp == Some(ErpKind::Epicor)));
    assert!(recorded
        .iter()
        .all(|r| r.path.starts_with("/KineticTest/api/v2/odata/EPIC06/")));
    let seqs: Vec<u64> = recorded.iter().map(|r| r.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let lookup = recorded
        .iter()
        .find(|r| r.method == "GET" && r.path.ends_with("/SalesOrders"))
        .unwrap();
    assert!(lookup
        .query
        .iter()
        .any(|(k, v)| k == "$filter" && v.starts_with("PONum eq 'LB-")));
    let create = recorded
        .iter()
        .find(|r| r.method == "POST" && r.path.ends_with(".SalesOrderSvc/UpdateExt"))
        .unwrap();
    let head = &create.body["ds"]["OrderHed"][0];
    assert_eq!(head["Company"], "EPIC06");

    // Documents in ERP-neutral form, amounts as decimal strings.
    let docs: Vec<ledgerbridge_erp_sandbox::ExportedDocument> = http
        .get(format!("{}/_admin/documents?erp=epicor", sb.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(docs, sb.documents(Some(ErpKind::Epicor)).unwrap());
    let so = docs.iter().find(|d| d.kind == "sales_order").unwrap();
    assert_eq!(so.erp_id, out.erp_id.as_str());
    assert_eq!(
        so.reference.as_deref(),
        Some(head["PONum"].as_str().unwrap())
    );
    let ErpCommand::CreateSalesOrder(o) = &order else {
        panic!("not an order")
    };
    assert_eq!(so.customer.as_deref(), Some(o.customer_id.as_str()));
    assert_eq!(so.currency.as_deref(), Some(o.currency.code()));
    assert_eq!(so.lines.len(), o.lines.len());
    let total: rust_decimal::Decimal = so.amount.as_deref().unwrap().parse().unwrap();
    assert!(total > rust_decimal::Decimal::ZERO);
    assert_eq!(so.state, ledgerbridge_erp_sandbox::DocState::Entered);
    assert!(docs.iter().any(|d| d.kind == "customer"));

    // The log can be cleared; admin calls themselves are never recorded.
    let status = http
        .delete(format!("{}/_admin/requests", sb.base_url()))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 204);
    assert!(sb.requests(None).is_empty());
    sb.shutdown().await;
}

/// The services the connector calls; every request it sends to them is checked.
pub(crate) const CONTRACT_SERVICES: [&str; 10] = [
    "Erp.BO.CustomerSvc",
    "Erp.BO.ApplyCreditMemoSvc",
    "Erp.BO.GLJrnGrpSvc",
    "Erp.BO.GLJournalEntrySvc",
    "Erp.BO.InvcGrpSvc",
    "Erp.BO.ARInvoiceSvc",
    "Erp.BO.SalesOrderSvc",
    "Erp.BO.CashGrpSvc",
    "Erp.BO.CashRecSvc",
    "Erp.PROC.CashRecPostSvc",
];

#[tokio::test]
async fn erp_epicor_requests_match_the_contract_facts() {
    let sb = sandbox().await;
    let c = connector(&sb);
    let mut cmds = fixture_commands("k");
    with_masters(&c, &mut cmds).await;
    for cmd in &cmds {
        post_command(&c, cmd, &policy()).await.unwrap();
        c.find_by_reference(cmd.reference()).await.unwrap();
    }
    customer_fields_contract(
        &c,
        &sb,
        ErpKind::Epicor,
        "Customers",
        &ledgerbridge_erp::epicor::config::default_customer_fields(),
    )
    .await;
    c.find_customer_by_email("nobody@example.com")
        .await
        .unwrap();
    let contract = ledgerbridge_erp_sandbox::contract::EpicorContract::load().unwrap();
    let requests = sb.requests(Some(ErpKind::Epicor));
    let checked: Vec<_> = requests
        .iter()
        .filter(|r| {
            CONTRACT_SERVICES
                .iter()
                .any(|s| r.path.contains(&format!("/{s}/")))
        })
        .collect();
    // Customers, order lookups and the order itself were all sent.
    assert!(checked
        .iter()
        .any(|r| r.path.ends_with(".SalesOrderSvc/UpdateExt")));
    assert!(checked.iter().any(|r| r.method == "PATCH"));
    assert!(checked
        .iter()
        .any(|r| r.path.ends_with(".CashRecSvc/GetNewCashHeadType")));
    assert!(checked
        .iter()
        .any(|r| r.path.ends_with(".CashRecSvc/UpdateExt")));
    assert!(checked
        .iter()
        .any(|r| r.path.ends_with(".CashGrpSvc/Update")));
    assert!(checked
        .iter()
        .any(|r| r.path.ends_with(".ARInvoiceSvc/GetNewInvcHeadType")));
    assert!(checked
        .iter()
        .any(|r| r.path.ends_with(".InvcGrpSvc/PostInvoices")));
    assert!(checked
        .iter()
        .any(|r| r.path.ends_with(".GLJournalEntrySvc/UpdateExt")));
    assert!(checked
        .iter()
        .any(|r| r.path.ends_with(".GLJrnGrpSvc/PostGroupJournals")));
    assert!(checked
        .iter()
        .any(|r| r.path.ends_with(".ApplyCreditMemoSvc/UpdateExt")));
    // The credit memo was applied to its invoice.
    assert_eq!(
        sb.count(ErpKind::Epicor, "CreditMemoApplications").unwrap(),
        1
    );
    assert!(checked
        .iter()
        .any(|r| r.method == "POST" && r.path.ends_with("/Customers")));
    let mut violations = Vec::new();
    for r in &checked {
        let body = (!r.body.is_null()).then_some(&r.body);
        for v in contract.check_request(&r.method, &r.path, &r.query, body) {
            violations.push(format!("{} {}: {v}", r.method, r.path));
        }
    }
    assert!(violations.is_empty(), "{violations:#?}");
    sb.shutdown().await;
}

#[tokio::test]
async fn erp_epicor_sandbox_is_strict_about_rows_and_update_ext_errors() {
    let sb = sandbox().await;
    let http = reqwest::Client::new();
    let keys = sb.keys();
    let root = format!("{}/KineticTest/api/v2/odata/EPIC06", sb.base_url());
    let send = |path: &str, b: serde_json::Value| {
        http.post(format!("{root}/{path}"))
            .header("x-api-key", &keys.epicor_api_key)
            .basic_auth(&keys.epicor_user, Some(&keys.epicor_password))
            .json(&b)
            .send()
    };
    // An entity-set POST takes one row: nested children and unknown fields are refused.
    let r = send(
        "Erp.BO.SalesOrderSvc/SalesOrders",
        serde_json::json!({"Company": "EPIC06", "CustNum": 1, "OrderDate": "2024-05-01",
            "OrderDtls": [{"PartNum": "WIDGET-01"}]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let t = r.text().await.unwrap();
    assert!(t.contains("OrderDtls") && t.contains("ErrorMessage"), "{t}");
    let r = send(
        "Erp.BO.CustomerSvc/Customers",
        serde_json::json!({"Company": "EPIC06", "CustID": "X1", "Name": "X", "PayMethod": "card"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("PayMethod"));
    // A method that does not exist, or an input it does not take, is refused.
    let r = send("Erp.BO.SalesOrderSvc/CreateOrder", serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // UpdateExt reports business errors with HTTP 200, errorsOccurred and BOUpdError rows.
    let r = send(
        "Erp.BO.SalesOrderSvc/UpdateExt",
        serde_json::json!({"ds": {"OrderHed": [{"Company": "EPIC06", "OrderNum": 0, "CustNum": 999,
            "OrderDate": "2024-05-01", "RowMod": "A"}], "OrderDtl": []},
            "continueProcessingOnError": false, "rollbackParentOnChildError": true}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["parameters"]["errorsOccurred"], true, "{v}");
    assert_eq!(v["returnObj"]["BOUpdError"][0]["TableName"], "OrderHed");
    assert!(v["returnObj"]["BOUpdError"][0]["ErrorText"]
        .as_str()
        .unwrap()
        .contains("Customer 999 not found."));
    assert_eq!(sb.count(ErpKind::Epicor, "SalesOrders").unwrap(), 0);
    sb.shutdown().await;
}

#[tokio::test]
async fn erp_epicor_cash_receipts_use_the_day_group_and_post_when_asked() {
    let sb = sandbox().await;
    let mut cfg = config(&sb);
    cfg.posting = ledgerbridge_erp::epicor::EpicorPosting::AfterCreate;
    let c = EpicorConnector::new(cfg, Credentials::fixed(creds(&sb.keys()))).unwrap();
    let mut cmds = fixture_commands("p");
    let invoice = with_masters(&c, &mut cmds).await;
    let receipt = by_kind(&cmds, DocKind::CashReceipt);
    let out = post_command(&c, &receipt, &policy()).await.unwrap();
    let ErpCommand::CreateCashReceipt(r) = &receipt else {
        panic!("not a receipt")
    };
    let d = r.receipt_date.as_str();
    let group = format!("STRIPECR{}{}{}", &d[2..4], &d[5..7], &d[8..10]);
    assert!(
        out.erp_id.as_str().starts_with(&format!("{group}/")),
        "{}",
        out.erp_id
    );
    let docs = sb.documents(Some(ErpKind::Epicor)).unwrap();
    let cash = docs.iter().find(|d| d.kind == "cash_receipt").unwrap();
    assert_eq!(cash.state, ledgerbridge_erp_sandbox::DocState::Posted);
    assert_eq!(cash.lines.len(), 1);
    // The stored type is PayInv (from GetNewCashHeadType), the method a PMUID.
    let stored = sb
        .audit(Some(ErpKind::Epicor))
        .unwrap()
        .into_iter()
        .find(|a| a.entity == "CashRecs")
        .unwrap();
    assert_eq!(stored.body["TranType"], "PayInv");
    assert_eq!(stored.body["PMUID"], 1);
    assert!(stored.body.get("PayMethod").is_none());
    // An unknown payment method is a permanent error naming the setting.
    let mut receipt = by_kind(&fixture_commands("q"), DocKind::CashReceipt);
    if let ErpCommand::CreateCashReceipt(r) = &mut receipt {
        r.payment_method = "BARTER".into();
        r.applies_to = Some(Application::Invoice(invoice));
    }
    let err = post_command(&c, &receipt, &policy()).await.unwrap_err();
    assert_eq!(err.kind(), ErpErrorKind::Permanent);
    assert!(err.to_string().contains("payment_methods"), "{err}");
    sb.shutdown().await;
}

/// With `posting = after_create`, a worker posts (and so deletes) the day's cash group right
/// after its receipt, while another worker may already have found that group for its own
/// receipt. Epicor refuses a document for a vanished group; the connector must then add it to a
/// new group, not park it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn erp_epicor_receipts_posted_concurrently_survive_a_group_posted_meanwhile() {
    // One connector shared by all tasks (one process: the group lock keeps them apart).
    concurrent_receipts(false).await;
    // One connector per task (concurrent Lambdas: a refused document moves to a new group).
    concurrent_receipts(true).await;
}

async fn concurrent_receipts(connector_per_task: bool) {
    let sb = sandbox().await;
    let mut cfg = config(&sb);
    cfg.posting = ledgerbridge_erp::epicor::EpicorPosting::AfterCreate;
    let c = std::sync::Arc::new(
        EpicorConnector::new(cfg, Credentials::fixed(creds(&sb.keys()))).unwrap(),
    );
    let mut receipts = Vec::new();
    for i in 0..12 {
        let mut cmds = fixture_commands(&format!("g{i}"));
        if i == 0 {
            with_masters(&c, &mut cmds).await;
        } else {
            // The customer exists; each receipt gets an invoice of its own to pay.
            let inv = post_command(&*c, &by_kind(&cmds, DocKind::Invoice), &policy())
                .await
                .unwrap();
            for cmd in cmds.iter_mut() {
                if let ErpCommand::CreateCashReceipt(r) = cmd {
                    r.applies_to = Some(Application::Invoice(inv.erp_id.clone()));
                }
            }
        }
        receipts.push(by_kind(&cmds, DocKind::CashReceipt));
    }
    let posts = receipts.into_iter().map(|r| {
        let c = if connector_per_task {
            let mut cfg = config(&sb);
            cfg.posting = ledgerbridge_erp::epicor::EpicorPosting::AfterCreate;
            std::sync::Arc::new(
                EpicorConnector::new(cfg, Credentials::fixed(creds(&sb.keys()))).unwrap(),
            )
        } else {
            c.clone()
        };
        tokio::spawn(async move { post_command(&*c, &r, &policy()).await })
    });
    let results = futures::future::join_all(posts).await;
    for r in results {
        let out = r.unwrap();
        assert!(
            out.is_ok(),
            "a receipt failed (connector per task: {connector_per_task}): {:?}",
            out.err()
        );
    }
    let docs = sb.documents(Some(ErpKind::Epicor)).unwrap();
    let cash: Vec<_> = docs.iter().filter(|d| d.kind == "cash_receipt").collect();
    assert_eq!(cash.len(), 12, "every receipt exactly once");
    assert!(cash
        .iter()
        .all(|d| d.state == ledgerbridge_erp_sandbox::DocState::Posted));
    sb.shutdown().await;
}

#[tokio::test]
async fn erp_epicor_groups_held_by_another_user_are_retried_and_bo_errors_are_500() {
    let sb = sandbox().await;
    let c = connector(&sb);
    let mut cmds = fixture_commands("g");
    with_masters(&c, &mut cmds).await;
    let receipt = by_kind(&cmds, DocKind::CashReceipt);
    let ErpCommand::CreateCashReceipt(r) = &receipt else {
        panic!("not a receipt")
    };
    let d = r.receipt_date.as_str().to_owned();
    let group = format!("STRIPECR{}{}{}", &d[2..4], &d[5..7], &d[8..10]);
    // Another user (the bearer identity) creates and so holds the day's cash group.
    let http = reqwest::Client::new();
    let keys = sb.keys();
    let root = format!("{}/KineticTest/api/v2/odata/EPIC06", sb.base_url());
    let call = |path: &str, b: serde_json::Value| {
        http.post(format!("{root}/{path}"))
            .header("x-api-key", &keys.epicor_api_key)
            .bearer_auth(&keys.epicor_bearer)
            .json(&b)
            .send()
    };
    let new: serde_json::Value = call(
        "Erp.BO.CashGrpSvc/GetNewCashGrp",
        serde_json::json!({"ds": {"CashGrp": []}}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let mut ds = new["parameters"]["ds"].clone();
    ds["CashGrp"][0]["GroupID"] = group.clone().into();
    ds["CashGrp"][0]["TranDate"] = d.clone().into();
    let r = call("Erp.BO.CashGrpSvc/Update", serde_json::json!({ "ds": ds }))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let err = c.create(&receipt).await.unwrap_err();
    assert_eq!(err.kind(), ErpErrorKind::Retryable, "{err}");
    assert!(err.to_string().contains("in use by"), "{err}");
    assert_eq!(sb.count(ErpKind::Epicor, "CashRecs").unwrap(), 0);
    // A business error of a BO method comes back as 500 with Epicor's ErrorMessage, and the
    // connector treats it as permanent.
    let r = call(
        "Erp.BO.ARInvoiceSvc/GetNewInvcHeadType",
        serde_json::json!({"ds": {}, "GroupID": "NOSUCH", "InvoiceType": "MISC-BILL"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 500);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["ErrorMessage"], "Group NOSUCH not found.");
    sb.seed(&Seed {
        erp: Some(ErpKind::Epicor),
        closed_periods: vec![d[..7].to_owned()],
        ..Seed::default()
    })
    .unwrap();
    let mut invoice = by_kind(&fixture_commands("h"), DocKind::Invoice);
    if let ErpCommand::CreateInvoice(i) = &mut invoice {
        i.invoice_date = ErpDate::parse(&d).unwrap();
    }
    let err = post_command(&c, &invoice, &policy()).await.unwrap_err();
    assert_eq!(err.kind(), ErpErrorKind::Permanent, "{err}");
    assert!(err.to_string().contains("closed fiscal period"), "{err}");
    sb.shutdown().await;
}
