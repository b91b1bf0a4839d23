//! Contract tests of the ERP connectors against the project's ERP sandbox (in process).

mod agent;
pub(crate) mod epicor;
mod sage500;
mod sagepro;

use ledgerbridge_core::ids::StripeObjectId;
use ledgerbridge_erp::commands::*;
use ledgerbridge_erp::{post_command, ErpConnector, ErpErrorKind, RetryPolicy};
use ledgerbridge_erp_sandbox::{spawn, Faults, SandboxConfig, SandboxHandle};
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

/// A customer command of its own (reference, code and e-mail), made from the fixture customer.
pub fn email_customer(n: u32, email: &str) -> ErpCommand {
    let ErpCommand::UpsertCustomer(mut c) = by_kind(&fixture_commands(""), DocKind::Customer)
    else {
        unreachable!("by_kind returns the kind asked for")
    };
    c.reference = ExternalRef::new(
        &StripeObjectId::new(format!("cus_EmailMatch{n}")),
        DocKind::Customer,
    )
    .unwrap();
    c.customer_id = format!("EM{n}");
    c.email = Some(email.to_owned());
    ErpCommand::UpsertCustomer(c)
}

/// The e-mail lookup contract every connector keeps: found (trimmed, case-insensitive), not
/// found, several → permanent, an invalid address → permanent, and search lag honoured.
pub async fn email_lookup_contract<C: ErpConnector>(c: &C, sb: &SandboxHandle) {
    let one = post_command(c, &email_customer(1, "Ann.Lee@Example.com"), &policy())
        .await
        .unwrap();
    let found = c
        .find_customer_by_email("  ann.lee@EXAMPLE.com ")
        .await
        .unwrap()
        .expect("the customer is found by e-mail");
    assert_eq!(found.erp_id, one.erp_id);
    assert_eq!(found.customer_id, "EM1");
    assert_eq!(
        c.find_customer_by_email("nobody@example.com")
            .await
            .unwrap(),
        None
    );
    for n in [2, 3] {
        post_command(c, &email_customer(n, "shared@example.com"), &policy())
            .await
            .unwrap();
    }
    let err = c
        .find_customer_by_email("Shared@Example.com")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErpErrorKind::Permanent);
    assert!(err.to_string().contains("several"), "{err}");
    assert!(!err.to_string().contains("shared@example.com"), "{err}");
    for bad in ["", "a\u{7}b@example.com", "x' or 1 eq 1 or 'a@b"] {
        assert_eq!(
            c.find_customer_by_email(bad).await.unwrap_err().kind(),
            ErpErrorKind::Permanent,
            "{bad:?}"
        );
    }
    assert_eq!(
        c.find_customer_by_email("o'brien@example.com")
            .await
            .unwrap(),
        None
    );
    sb.set_faults(Faults {
        search_lag_ms: 300,
        ..Faults::default()
    });
    let late = post_command(c, &email_customer(4, "late@example.com"), &policy())
        .await
        .unwrap();
    assert_eq!(
        c.find_customer_by_email("late@example.com").await.unwrap(),
        None,
        "not searchable before the lag has passed"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        c.find_customer_by_email("late@example.com")
            .await
            .unwrap()
            .map(|m| m.erp_id),
        Some(late.erp_id)
    );
    sb.set_faults(Faults::default());
}

/// The customer-fields contract every connector keeps: the values land in the ERP fields the
/// settings name (`expected`: logical → ERP field), the customer's master data stays as it
/// was, values without a field are reported and not written, a value longer than its field and
/// an unknown customer are refused permanently, and writing the same values again is harmless.
pub async fn customer_fields_contract<C: ErpConnector>(
    c: &C,
    sb: &SandboxHandle,
    erp: ledgerbridge_erp_sandbox::ErpKind,
    entity: &str,
    expected: &ledgerbridge_erp::CustomerFieldMap,
) {
    use ledgerbridge_erp::fields::*;
    use std::collections::BTreeMap;
    let cmd = email_customer(77, "fields@example.com");
    let ErpCommand::UpsertCustomer(upsert) = &cmd else {
        unreachable!()
    };
    post_command(c, &cmd, &policy()).await.unwrap();
    let values: BTreeMap<String, String> = [
        (SUBSCRIPTION_STATUS, "ACTIVE"),
        (SUBSCRIPTION_PLAN, "SEAT-SUB"),
        (SUBSCRIPTION_QUANTITY, "5"),
        (SUBSCRIPTION_PERIOD_END, "2026-09-04"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let out = c
        .set_customer_fields(&upsert.customer_id, &values)
        .await
        .unwrap();
    let last_update = || {
        sb.audit(Some(erp))
            .unwrap()
            .into_iter()
            .rev()
            .find(|a| a.entity == entity && a.action == "update")
            .expect("the customer was updated")
    };
    let doc = last_update().body;
    let mut written = Vec::new();
    for (logical, value) in &values {
        match expected.get(logical) {
            Some(target) => {
                assert_eq!(
                    doc.get(&target.name).and_then(|v| v.as_str()),
                    Some(value.as_str()),
                    "{logical} → {} in {doc}",
                    target.name
                );
                written.push(target.name.clone());
            }
            None => assert!(out.unmapped.contains(logical), "{logical} not reported"),
        }
    }
    written.sort();
    let mut got = out.written.clone();
    got.sort();
    assert_eq!(got, written);
    // master data untouched: the name and e-mail are still the customer's own
    let text = doc.to_string();
    assert!(text.contains(&upsert.name), "{text}");
    assert!(text.contains("fields@example.com"), "{text}");
    // the same values again: no error, same fields
    let again = c
        .set_customer_fields(&upsert.customer_id, &values)
        .await
        .unwrap();
    assert_eq!(again.written.len(), out.written.len());
    // a value longer than its field: permanent, nothing written
    let (logical, target) = expected.iter().next().unwrap();
    let before = sb.audit(Some(erp)).unwrap().len();
    let long: BTreeMap<String, String> = [(logical.clone(), "x".repeat(target.max_len + 1))].into();
    let err = c
        .set_customer_fields(&upsert.customer_id, &long)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErpErrorKind::Permanent, "{err}");
    assert_eq!(sb.audit(Some(erp)).unwrap().len(), before);
    // an unknown customer: permanent with the ERP's message
    let err = c.set_customer_fields("NOSUCH", &values).await.unwrap_err();
    assert_eq!(err.kind(), ErpErrorKind::Permanent, "{err}");
    assert!(err.to_string().contains("NOSUCH"), "{err}");
}

/// The changed-customers contract every connector keeps: customers created or edited at or
/// after `since` are listed oldest first with their master data, change time and reference;
/// nothing is listed for a later `since`; an edit made in the ERP lists the customer again
/// with the new values.
pub async fn changed_customers_contract<C: ErpConnector>(
    c: &C,
    sb: &SandboxHandle,
    erp: ledgerbridge_erp_sandbox::ErpKind,
    name_field: &str,
) {
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let a = email_customer(81, "changed.a@example.com");
    let b = email_customer(82, "changed.b@example.com");
    for cmd in [&a, &b] {
        post_command(c, cmd, &policy()).await.unwrap();
    }
    let listed = c.customers_changed_since(start, 100).await.unwrap();
    let codes: Vec<&str> = listed.iter().map(|r| r.customer_id.as_str()).collect();
    assert!(
        codes.contains(&"EM81") && codes.contains(&"EM82"),
        "{listed:?}"
    );
    let rec = listed.iter().find(|r| r.customer_id == "EM81").unwrap();
    assert_eq!(rec.email.as_deref(), Some("changed.a@example.com"));
    assert!(
        rec.changed_at >= start && rec.changed_at <= start + 60,
        "{rec:?}"
    );
    assert!(
        rec.reference
            .as_deref()
            .is_some_and(|r| r.starts_with("LB-cus_EmailMatch81")),
        "{rec:?}"
    );
    assert!(listed
        .windows(2)
        .all(|w| w[0].changed_at <= w[1].changed_at));
    assert!(c
        .customers_changed_since(start + 3_600, 100)
        .await
        .unwrap()
        .is_empty());
    // an edit in the ERP
    let mut patch = serde_json::Map::new();
    patch.insert(name_field.into(), serde_json::json!("Changed In ERP Ltd"));
    assert!(sb.edit_customer(erp, "EM81", &patch).unwrap());
    let again = c.customers_changed_since(start, 100).await.unwrap();
    let rec = again.iter().find(|r| r.customer_id == "EM81").unwrap();
    assert_eq!(rec.name.as_deref(), Some("Changed In ERP Ltd"));
    // page size 1: the connector pages past earlier changes of the day
    assert!(!c
        .customers_changed_since(start, 1)
        .await
        .unwrap()
        .is_empty());
}
