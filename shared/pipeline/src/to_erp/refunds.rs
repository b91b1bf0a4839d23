//! Refunds → credit memos. One refund reported by `charge.refunded` and `refund.created` gives
//! commands with the same external reference, so erp-post books it once.

use super::common::one_line;
use crate::convert::{currency, date_of, i, id_of, reference, s, METADATA_PREFIX};
use crate::customer::hint_by_id;
use crate::mapping::Mapping;
use crate::messages::{ErpCommandV1, Source, WriteBack};
use crate::outcome::{permanent, stripe_err, Outcome, StageError};
use crate::stripe_api::StripeApi;
use ledgerbridge_core::event::Event;
use ledgerbridge_core::Money;
use ledgerbridge_erp::{CreditMemo, DocKind, ErpCommand};
use serde_json::Value;

/// `refund.created`, `refund.updated`, `charge.refund.updated`, `charge.refunded`,
/// `refund.failed`.
pub(super) async fn handle<A: StripeApi>(
    mapping: &Mapping,
    stripe: &A,
    event: &Event,
    source: Source,
) -> Result<Outcome, StageError> {
    let object = &event.data.object;
    match event.event_type.as_str() {
        "refund.created" | "refund.updated" | "charge.refund.updated" => {
            let cmds = refund_commands(mapping, stripe, object, &source).await?;
            Ok(if cmds.is_empty() {
                Outcome::Skipped(format!(
                    "refund status {:?}: nothing to book",
                    s(object, "status").unwrap_or("?")
                ))
            } else {
                Outcome::Commands(cmds)
            })
        }
        "charge.refunded" => {
            // The event carries no refund ids (since API version 2022-11-15): list the charge's
            // refunds and book each by its own id, exactly as refund.* events do.
            let charge = s(object, "id").ok_or_else(|| permanent("charge without id"))?;
            let list = stripe
                .get("refunds", &[("charge", charge), ("limit", "100")])
                .await
                .map_err(stripe_err)?;
            let mut cmds = Vec::new();
            for refund in list
                .get("data")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let mut refund = refund.clone();
                if refund.get("customer").is_none_or(Value::is_null) {
                    if let (Some(o), Some(c)) = (refund.as_object_mut(), id_of(object, "customer"))
                    {
                        o.insert("customer".into(), Value::String(c.to_owned()));
                    }
                }
                cmds.extend(refund_commands(mapping, stripe, &refund, &source).await?);
            }
            Ok(if cmds.is_empty() {
                Outcome::Skipped("no succeeded refund on the charge".into())
            } else {
                Outcome::Commands(cmds)
            })
        }
        "refund.failed" => Err(permanent(failed_refund_reason(object)?)),
        other => Ok(Outcome::Skipped(format!(
            "{other} is not booked by this version"
        ))),
    }
}

async fn refund_commands<A: StripeApi>(
    mapping: &Mapping,
    stripe: &A,
    refund: &Value,
    source: &Source,
) -> Result<Vec<ErpCommandV1>, StageError> {
    if s(refund, "status") != Some("succeeded") {
        // pending: booked when it succeeds; failed / canceled: nothing was refunded.
        return Ok(Vec::new());
    }
    let id = s(refund, "id").ok_or_else(|| permanent("refund without id"))?;
    let cur = currency(refund)?;
    let minor = i(refund, "amount").ok_or_else(|| permanent("refund without amount"))?;
    let amount = Money::new(minor, cur);
    if minor <= 0 {
        return Ok(Vec::new());
    }
    let customer = match id_of(refund, "customer") {
        Some(c) => c.to_owned(),
        None => {
            let charge =
                id_of(refund, "charge").ok_or_else(|| permanent("refund without charge"))?;
            let ch = stripe
                .get(&format!("charges/{charge}"), &[])
                .await
                .map_err(stripe_err)?;
            id_of(&ch, "customer")
                .map(str::to_owned)
                .or_else(|| mapping.defaults.guest_customer.clone())
                .ok_or_else(|| {
                    permanent(
                        "refunded charge has no customer and defaults.guest_customer is not set",
                    )
                })?
        }
    };
    let reason_text = refund
        .get("metadata")
        .and_then(|m| s(m, "credit_memo_reason"));
    let description = match reason_text {
        Some(t) => format!("Stripe refund {id}: {t}"),
        None => format!("Stripe refund {id}"),
    };
    let (customer_id, hint) = if customer.starts_with("cus_") {
        (String::new(), Some(hint_by_id(&customer)))
    } else {
        (customer, None)
    };
    let memo = CreditMemo {
        reference: reference(id, DocKind::CreditMemo)?,
        customer_id,
        memo_date: date_of(i(refund, "created").unwrap_or(source.created))?,
        currency: cur,
        lines: vec![one_line(&mapping.refunds.item, description, amount, None)],
        reason: Some(mapping.refund_reason(s(refund, "reason"))),
        applies_to_invoice: None,
    };
    Ok(vec![ErpCommandV1 {
        command: ErpCommand::CreateCreditMemo(memo),
        customer: hint,
        depends_on: Vec::new(),
        version: None,
        write_back: Some(WriteBack {
            object_path: "refunds".into(),
            object_id: id.to_owned(),
            key: format!("{METADATA_PREFIX}credit_memo"),
        }),
        source: source.clone(),
    }])
}

/// Why a failed refund is parked. A refund fails after it succeeded (the card could not take
/// it back): the money is back in the Stripe balance while the credit memo ledgerbridge booked
/// for it stands in the ERP, and only a person can reverse that document there.
fn failed_refund_reason(refund: &Value) -> Result<String, StageError> {
    let id = s(refund, "id").ok_or_else(|| permanent("refund without id"))?;
    let charge = id_of(refund, "charge").unwrap_or("?");
    let amount = match (i(refund, "amount"), currency(refund)) {
        (Some(minor), Ok(cur)) => Money::new(minor, cur).to_string(),
        _ => "amount unknown".to_owned(),
    };
    let document = reference(id, DocKind::CreditMemo)?;
    let erp_id = refund
        .get("metadata")
        .and_then(|m| s(m, &format!("{METADATA_PREFIX}credit_memo")))
        .map(|e| format!(", ERP id {e}"))
        .unwrap_or_default();
    Ok(format!(
        "refund {id} of charge {charge} ({amount}) failed at Stripe after it was booked; reverse ERP document {document}{erp_id}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::EXAMPLE;

    #[tokio::test]
    async fn a_failed_refund_is_parked_with_what_to_reverse() {
        let m = Mapping::from_toml(EXAMPLE).unwrap();
        let event: Event = serde_json::from_value(serde_json::json!({
            "id": "evt_1", "object": "event", "type": "refund.failed", "created": 1_784_538_764,
            "data": {"object": {
                "id": "re_1", "object": "refund", "amount": 1200, "currency": "usd",
                "charge": "ch_1", "status": "failed",
                "metadata": {"ledgerbridge_credit_memo": "CM-42"}
            }}
        }))
        .unwrap();
        let err = handle(
            &m,
            &NoStripe,
            &event,
            super::super::common::source_of(&event),
        )
        .await
        .unwrap_err();
        assert!(!err.is_retriable());
        assert_eq!(
            err.to_string(),
            "refund re_1 of charge ch_1 (12.00 USD) failed at Stripe after it was booked; reverse ERP document LB-re_1-CM, ERP id CM-42"
        );
    }

    /// The failed refund is decided from the event alone.
    struct NoStripe;

    impl StripeApi for NoStripe {
        async fn get(
            &self,
            path: &str,
            _: &[(&str, &str)],
        ) -> Result<Value, ledgerbridge_stripe::StripeError> {
            panic!("unexpected Stripe read {path}")
        }

        async fn set_metadata(
            &self,
            _: &str,
            _: &str,
            _: &str,
            _: &str,
        ) -> Result<(), ledgerbridge_stripe::StripeError> {
            Ok(())
        }

        async fn update_customer(
            &self,
            _: &str,
            _: &[(String, String)],
            _: &str,
        ) -> Result<(), ledgerbridge_stripe::StripeError> {
            Ok(())
        }

        fn calls(&self) -> u64 {
            0
        }
    }
}
