//! Stripe subscriptions → the ERP customer's user-defined fields, per ERP: the sample
//! `customer.subscription.created/updated/deleted` events through intake → transform →
//! erp-post, in order and out of order. An older update arriving after a newer one must not
//! overwrite it. The sample customer is linked to the existing ERP customer NW0042
//! (`metadata.erp_customer_no`), so the fields land on that customer and none is created.

use crate::intake::Aws;
use crate::pipeline::{epicor, rig, sage500, sagepro, sandbox, seeded_fake};
use crate::support::fixtures::event_body;
use ledgerbridge_erp::{AnyConnector, CustomerFieldMap};
use ledgerbridge_erp_sandbox::{ErpKind, SandboxHandle};
use serde_json::Value;

const CREATED: &str = "customer.subscription.created.json";
const UPDATED: &str = "customer.subscription.updated.json";
const DELETED: &str = "customer.subscription.deleted.json";

fn customer_entity(erp: ErpKind) -> &'static str {
    match erp {
        ErpKind::Epicor => "Customers",
        ErpKind::SagePro => "customers",
        ErpKind::Sage500 => "tarCustomer",
    }
}

fn field_map(erp: ErpKind) -> CustomerFieldMap {
    match erp {
        ErpKind::Epicor => ledgerbridge_erp::epicor::config::default_customer_fields(),
        ErpKind::SagePro => ledgerbridge_erp::sagepro::config::default_customer_fields(),
        ErpKind::Sage500 => ledgerbridge_erp::sage500::config::default_customer_fields(),
    }
}

/// The customer's record as the ERP holds it now (its latest committed body).
fn customer_record(sb: &SandboxHandle, erp: ErpKind) -> Value {
    sb.audit(Some(erp))
        .unwrap()
        .into_iter()
        .rev()
        .find(|a| a.entity == customer_entity(erp))
        .expect("the customer exists")
        .body
}

/// The value of a logical field on the ERP customer (through the ERP's default field map).
fn field(sb: &SandboxHandle, erp: ErpKind, logical: &str) -> Option<String> {
    let target = field_map(erp).get(logical).cloned()?;
    customer_record(sb, erp)
        .get(&target.name)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// How many times the ERP customer's subscription status was written.
fn status_writes(sb: &SandboxHandle, erp: ErpKind) -> usize {
    let name = field_map(erp)["subscription_status"].name.clone();
    let mut last = None;
    let mut n = 0;
    for a in sb.audit(Some(erp)).unwrap() {
        if a.entity != customer_entity(erp) {
            continue;
        }
        let v = a.body.get(&name).cloned();
        if v.is_some() && v != last {
            n += 1;
        }
        last = v;
    }
    n
}

/// The ERP customer the sample Stripe customer names in `metadata.erp_customer_no`.
async fn seed_linked_customer(c: &AnyConnector) {
    use ledgerbridge_core::ids::StripeObjectId;
    use ledgerbridge_erp::{post_command, CustomerUpsert, DocKind, ErpCommand, ExternalRef};
    let cmd = ErpCommand::UpsertCustomer(CustomerUpsert {
        reference: ExternalRef::new(&StripeObjectId::new("erp_master_NW0042"), DocKind::Customer)
            .unwrap(),
        customer_id: "NW0042".into(),
        name: "Northwind Traders LLC".into(),
        email: Some("ap@northwind-traders.example".into()),
        currency: ledgerbridge_core::Currency::USD,
        address: Default::default(),
        phone: None,
    });
    post_command(c, &cmd, &ledgerbridge_erp::RetryPolicy::default())
        .await
        .unwrap();
}

async fn lifecycle(
    erp: ErpKind,
    make: fn(&SandboxHandle) -> AnyConnector,
    order: [&str; 3],
) -> usize {
    let sb = sandbox(erp).await;
    let fake = seeded_fake();
    let base = fake.serve().await;
    let rig = rig::<Aws, AnyConnector>(make(&sb), &base, 1_786_000_000).await;
    seed_linked_customer(&make(&sb)).await;
    for f in order {
        rig.deliver(&event_body(f)).await;
        rig.deliver(&event_body(f)).await; // a duplicate delivery
        rig.run(4).await;
    }
    let parked = rig.parked().await;
    assert!(parked.is_empty(), "parked: {parked:?}");
    // Whatever the order, the ERP shows the newest state: cancelled, 5 seats, period end.
    assert_eq!(
        field(&sb, erp, "subscription_status").as_deref(),
        Some("CANCELLED"),
        "{erp:?} after {order:?}"
    );
    assert_eq!(
        field(&sb, erp, "subscription_quantity").as_deref(),
        Some("5")
    );
    assert_eq!(
        field(&sb, erp, "subscription_period_end").as_deref(),
        Some("2026-09-04")
    );
    if field_map(erp).contains_key("subscription_plan") {
        assert_eq!(
            field(&sb, erp, "subscription_plan").as_deref(),
            Some("price_16Sl3KNq7LbKx2Rz4kLoiN25")
        );
    }
    // The fields went to the linked customer: no customer was created besides it.
    let customers = sb
        .audit(Some(erp))
        .unwrap()
        .iter()
        .filter(|a| a.entity == customer_entity(erp) && a.action == "create")
        .count();
    assert_eq!(customers, 1, "{erp:?}");
    let writes = status_writes(&sb, erp);
    sb.shutdown().await;
    writes
}

async fn subscription_lifecycle(erp: ErpKind, make: fn(&SandboxHandle) -> AnyConnector) {
    // In order: each state is written (ACTIVE, then CANCELLED).
    let in_order = lifecycle(erp, make, [CREATED, UPDATED, DELETED]).await;
    assert_eq!(in_order, 2, "{erp:?}: ACTIVE then CANCELLED");
    // Newest first: the older created/updated events arrive late and are not applied.
    let reversed = lifecycle(erp, make, [DELETED, UPDATED, CREATED]).await;
    assert_eq!(reversed, 1, "{erp:?}: only CANCELLED was ever written");
}

#[tokio::test]
async fn subscription_lifecycle_epicor() {
    subscription_lifecycle(ErpKind::Epicor, epicor).await;
}

#[tokio::test]
async fn subscription_lifecycle_sagepro() {
    subscription_lifecycle(ErpKind::SagePro, sagepro).await;
}

#[tokio::test]
async fn subscription_lifecycle_sage500() {
    subscription_lifecycle(ErpKind::Sage500, sage500).await;
}
