use super::{
    by_kind, changed_customers_contract, customer_fields_contract, email_customer,
    email_lookup_contract, fixture_commands, policy, sandbox,
};
use ledgerbridge_core::secrets::Secret;
use ledgerbridge_erp::commands::*;
use ledgerbridge_erp::sagepro::{SageProConfig, SageProConnector, SageProCredentials};
use ledgerbridge_erp::{post_command, Credentials, ErpConnector, ErpErrorKind};
use ledgerbridge_erp_sandbox::sagepro_contract::FacadeContract;
use ledgerbridge_erp_sandbox::{ErpKind, Faults, SandboxHandle};
use serde_json::{json, Value};

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

/// Every request the connector sent to the Sage Pro sandbox, checked against the published
/// facade contract (the sandbox also checks each one as it arrives and each answer before it
/// leaves; this checks the recorded requests independently of the sandbox's handlers).
fn assert_requests_follow_the_contract(sb: &SandboxHandle) -> usize {
    let c = FacadeContract::embedded().unwrap();
    let reqs = sb.requests(Some(ErpKind::SagePro));
    for r in &reqs {
        c.check_request(&r.method, &r.path, &r.query, &r.body)
            .unwrap_or_else(|v| panic!("{} {} {:?}: {v:?}", r.method, r.path, r.query));
    }
    reqs.len()
}

#[tokio::test]
async fn erp_sagepro_every_request_the_connector_sends_follows_the_published_contract() {
    let sb = sandbox().await;
    let c = connector(&sb);
    let mut cmds = fixture_commands("d");
    with_masters(&c, &mut cmds).await;
    for cmd in &cmds {
        post_command(&c, cmd, &policy()).await.unwrap();
    }
    // Posting the customer again updates it (PUT with the full body).
    let again = post_command(&c, &by_kind(&cmds, DocKind::Customer), &policy())
        .await
        .unwrap();
    assert!(again.updated);
    email_lookup_contract(&c, &sb).await;
    customer_fields_contract(
        &c,
        &sb,
        ErpKind::SagePro,
        "customers",
        &ledgerbridge_erp::sagepro::config::default_customer_fields(),
    )
    .await;
    changed_customers_contract(&c, &sb, ErpKind::SagePro, "name").await;
    let reqs = sb.requests(Some(ErpKind::SagePro));
    for (m, p) in [
        ("GET", "/api/v1/customers"),
        ("POST", "/api/v1/customers"),
        ("PUT", "/api/v1/customers/"),
        ("POST", "/api/v1/salesorders"),
        ("POST", "/api/v1/invoices"),
        ("POST", "/api/v1/cashreceipts"),
        ("POST", "/api/v1/creditmemos"),
        ("POST", "/api/v1/journalentries"),
        ("GET", "/api/v1/journalentries"),
    ] {
        assert!(
            reqs.iter().any(|r| r.method == m && r.path.starts_with(p)),
            "no {m} {p} was sent"
        );
    }
    for q in ["reference", "email", "updatedSince"] {
        assert!(
            reqs.iter().any(|r| r.query.iter().any(|(k, _)| k == q)),
            "no search by {q}"
        );
    }
    assert!(assert_requests_follow_the_contract(&sb) >= 20);
    sb.shutdown().await;
}

async fn raw(
    sb: &SandboxHandle,
    method: reqwest::Method,
    path_and_query: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut b = reqwest::Client::new()
        .request(method, format!("{}{path_and_query}", sb.base_url()))
        .header("X-API-Key", sb.keys().sagepro_api_key);
    if let Some(body) = body {
        b = b.json(&body);
    }
    let resp = b.send().await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, v)
}

#[tokio::test]
async fn erp_sagepro_sandbox_answers_the_documented_errors_for_requests_outside_the_contract() {
    let sb = sandbox().await;
    let contract = FacadeContract::embedded().unwrap();
    let customer =
        json!({"customerId": "C100", "name": "Strict Ltd", "reference": "LB-cus_strict-CU"});
    let post = reqwest::Method::POST;
    let cases = [
        (
            "unknown field",
            {
                let mut b = customer.clone();
                b["fax"] = json!("555-0100");
                b
            },
            422,
            "unknown_field",
        ),
        (
            "over-length customer number",
            {
                let mut b = customer.clone();
                b["customerId"] = json!("C1234567890");
                b
            },
            422,
            "too_long",
        ),
        (
            "over-length name (the xBASE ceiling)",
            {
                let mut b = customer.clone();
                b["name"] = json!("N".repeat(255));
                b
            },
            422,
            "too_long",
        ),
        (
            "missing name",
            {
                let mut b = customer.clone();
                b.as_object_mut().unwrap().remove("name");
                b
            },
            422,
            "missing_field",
        ),
        (
            "amount as a JSON number",
            json!({"customerId": "C100", "transactionDate": "2026-03-01",
            "amount": 10.5, "currency": "USD", "reference": "LB-ch_strict-CR"}),
            422,
            "invalid_field",
        ),
    ];
    for (what, body, status, code) in cases {
        let path = if body.get("amount").is_some() {
            "/api/v1/cashreceipts"
        } else {
            "/api/v1/customers"
        };
        let (st, v) = raw(&sb, post.clone(), path, Some(body)).await;
        assert_eq!(
            (st, v["error"]["code"].as_str()),
            (status, Some(code)),
            "{what}: {v}"
        );
        contract.check_response("POST", path, st, &v).unwrap();
    }
    let (st, v) = raw(
        &sb,
        reqwest::Method::GET,
        "/api/v1/invoices?customerId=C100",
        None,
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("invalid_filter")),
        "{v}"
    );
    let (st, v) = raw(
        &sb,
        reqwest::Method::GET,
        "/api/v1/customers?updatedSince=2026-01-01T00:00:00Z&limit=0",
        None,
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("invalid_filter")),
        "{v}"
    );
    // Nothing was written by any rejected request; a conforming one is accepted.
    assert_eq!(sb.count(ErpKind::SagePro, "customers").unwrap(), 0);
    let (st, v) = raw(
        &sb,
        post.clone(),
        "/api/v1/customers",
        Some(customer.clone()),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    contract
        .check_response("POST", "/api/v1/customers", st, &v)
        .unwrap();
    // The same reference again: 409 duplicate_reference, nothing written.
    let mut other = customer.clone();
    other["customerId"] = json!("C101");
    let (st, v) = raw(&sb, post.clone(), "/api/v1/customers", Some(other)).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (409, Some("duplicate_reference")),
        "{v}"
    );
    assert_eq!(sb.count(ErpKind::SagePro, "customers").unwrap(), 1);
    // An update may not renumber the customer.
    let (st, v) = raw(
        &sb,
        reqwest::Method::PUT,
        "/api/v1/customers/C100",
        Some(json!({"customerId": "C999"})),
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (422, Some("invalid_field")),
        "{v}"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn erp_sagepro_sandbox_refuses_to_answer_outside_the_contract() {
    // GIVEN a customer a person gave a field the contract does not describe
    let sb = sandbox().await;
    let c = connector(&sb);
    post_command(&c, &email_customer(7, "odd@example.com"), &policy())
        .await
        .unwrap();
    let mut patch = serde_json::Map::new();
    patch.insert("faxNumber".into(), json!("555-0100"));
    assert!(sb.edit_customer(ErpKind::SagePro, "EM7", &patch).unwrap());
    // WHEN the connector looks the customer up
    let err = c
        .find_customer_by_email("odd@example.com")
        .await
        .unwrap_err();
    // THEN the sandbox answers 500 naming the violation instead of an undocumented answer
    assert!(
        err.to_string().contains("breaks the published contract")
            && err.to_string().contains("faxNumber"),
        "{err}"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn erp_sagepro_duplicate_reference_while_the_search_lags_is_linked_not_doubled() {
    let sb = sandbox().await;
    let c = connector(&sb);
    let mut cmds = fixture_commands("e");
    with_masters(&c, &mut cmds).await;
    let order = by_kind(&cmds, DocKind::SalesOrder);
    sb.set_faults(Faults {
        search_lag_ms: 150,
        ..Faults::default()
    });
    let first = post_command(&c, &order, &policy()).await.unwrap();
    assert!(first.created);
    // The search does not see the order yet: the create answers 409 duplicate_reference, and the
    // retry finds the stored order once the search catches up.
    let p = ledgerbridge_erp::RetryPolicy {
        settle_after_ambiguous: std::time::Duration::from_millis(300),
        ..policy()
    };
    let second = post_command(&c, &order, &p).await.unwrap();
    assert!(!second.created);
    assert_eq!(second.erp_id, first.erp_id);
    assert_eq!(sb.count(ErpKind::SagePro, "salesorders").unwrap(), 1);
    let posts = sb
        .requests(Some(ErpKind::SagePro))
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/api/v1/salesorders")
        .count();
    assert_eq!(
        posts, 2,
        "the second create must have reached the sandbox and been refused"
    );
    sb.shutdown().await;
}
