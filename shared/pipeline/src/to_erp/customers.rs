//! `customer.created` / `customer.updated` → the ERP customer upsert. Updates that only echo
//! ledgerbridge's own metadata write-back, or a change that came from the ERP, are skipped.

use crate::convert::{object_of, ERP_SYNC_KEY, METADATA_PREFIX};
use crate::customer::hint_for_customer;
use crate::mapping::Mapping;
use crate::outcome::{permanent, Outcome, StageError};
use ledgerbridge_core::event::Event;
use ledgerbridge_erp::ErpCommand;
use ledgerbridge_messages::{ErpCommandV1, Source, WriteBack};
use ledgerbridge_stripe::objects::StripeCustomer;
use serde_json::Value;

/// True when an update changed only metadata keys ledgerbridge writes (Stripe lists the changed
/// keys' old values in `previous_attributes.metadata`).
fn is_own_echo(previous: Option<&Value>) -> bool {
    let Some(prev) = previous.and_then(Value::as_object) else {
        return false;
    };
    if prev.len() != 1 {
        return false;
    }
    prev.get("metadata")
        .and_then(Value::as_object)
        .is_some_and(|m| !m.is_empty() && m.keys().all(|k| k.starts_with(METADATA_PREFIX)))
}

/// True when an update was made by the ERP → Stripe customer sync: Stripe applies one API call
/// as one update, and only the sync changes [`ERP_SYNC_KEY`], so its old value (or `null` the
/// first time) in `previous_attributes.metadata` marks the whole update as the ERP's.
fn is_erp_sync_echo(previous: Option<&Value>) -> bool {
    previous
        .and_then(|p| p.get("metadata"))
        .and_then(Value::as_object)
        .is_some_and(|m| m.contains_key(ERP_SYNC_KEY))
}

pub(super) fn handle(
    mapping: &Mapping,
    event: &Event,
    source: Source,
) -> Result<Outcome, StageError> {
    let object = &event.data.object;
    if event.event_type == "customer.updated"
        && is_own_echo(event.data.previous_attributes.as_ref())
    {
        return Ok(Outcome::Skipped(
            "echo of ledgerbridge's own metadata write-back".into(),
        ));
    }
    if event.event_type == "customer.updated"
        && is_erp_sync_echo(event.data.previous_attributes.as_ref())
    {
        return Ok(Outcome::Skipped(
            "echo of a change that came from the ERP".into(),
        ));
    }
    let customer: StripeCustomer = object_of(object, "customer")?;
    let hint = hint_for_customer(mapping, &customer)?;
    let upsert = hint
        .create
        .clone()
        .ok_or_else(|| permanent("customer without data"))?;
    let id = hint.stripe_customer.clone();
    Ok(Outcome::Commands(vec![ErpCommandV1 {
        command: ErpCommand::UpsertCustomer(upsert),
        customer: Some(hint),
        depends_on: Vec::new(),
        version: Some(event.created),
        write_back: Some(WriteBack {
            object_path: "customers".into(),
            object_id: id,
            key: format!("{METADATA_PREFIX}customer"),
        }),
        source,
    }]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_metadata_echo_is_recognised() {
        let ours = serde_json::json!({"metadata": {"ledgerbridge_customer": null}});
        let theirs = serde_json::json!({"metadata": {"erp_customer_no": "X"}});
        let mixed =
            serde_json::json!({"metadata": {"ledgerbridge_customer": null}, "email": "a@b.c"});
        assert!(is_own_echo(Some(&ours)));
        assert!(!is_own_echo(Some(&theirs)));
        assert!(!is_own_echo(Some(&mixed)));
        assert!(!is_own_echo(None));
    }

    #[test]
    fn erp_sync_echo_is_recognised() {
        let first = serde_json::json!({"name": "Old", "metadata": {"ledgerbridge_erp_sync": null}});
        let later =
            serde_json::json!({"email": "a@b.c", "metadata": {"ledgerbridge_erp_sync": "1"}});
        let user = serde_json::json!({"name": "Old", "metadata": {"erp_customer_no": "X"}});
        let plain = serde_json::json!({"name": "Old"});
        assert!(is_erp_sync_echo(Some(&first)));
        assert!(is_erp_sync_echo(Some(&later)));
        assert!(!is_erp_sync_echo(Some(&user)));
        assert!(!is_erp_sync_echo(Some(&plain)));
        assert!(!is_erp_sync_echo(None));
    }
}
