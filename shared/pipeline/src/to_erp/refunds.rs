//! Refunds → credit memos. One refund reported by `charge.refunded` and `refund.created` gives
//! commands with the same external reference, so erp-post books it once.

use super::common::one_line;
use crate::convert::{created_or, date_of, meta, object_of, reference, text, METADATA_PREFIX};
use crate::customer::hint_by_id;
use crate::mapping::Mapping;
use crate::outcome::{permanent, stripe_err, Outcome, StageError};
use ledgerbridge_core::event::Event;
use ledgerbridge_core::Money;
use ledgerbridge_erp::{CreditMemo, DocKind, ErpCommand};
use ledgerbridge_messages::{ErpCommandV1, Source, WriteBack};
use ledgerbridge_stripe::api::StripeApi;
use ledgerbridge_stripe::objects::{Expandable, StripeCharge, StripeList, StripeRefund};

/// `refund.created`, `refund.updated`, `charge.refund.updated`, `charge.refunded`,
/// `refund.failed`.
pub(super) async fn handle<A: StripeApi>(
    mapping: &Mapping,
    stripe: &A,
    event: &Event,
    source: Source,
    now_secs: i64,
) -> Result<Outcome, StageError> {
    let object = &event.data.object;
    match event.event_type.as_str() {
        "refund.created" | "refund.updated" | "charge.refund.updated" => {
            let refund: StripeRefund = object_of(object, "refund")?;
            let cmds = refund_commands(mapping, stripe, &refund, &source).await?;
            Ok(if cmds.is_empty() {
                Outcome::Skipped(format!(
                    "refund status {:?}: nothing to book",
                    text(&refund.status).unwrap_or("?")
                ))
            } else {
                Outcome::Commands(cmds)
            })
        }
        "charge.refunded" => {
            // The event carries no refund ids (since API version 2022-11-15): list the charge's
            // refunds and book each by its own id, exactly as refund.* events do. The charge's
            // `amount_refunded` (and its previous value) says what the list must show.
            let charge: StripeCharge = object_of(object, "charge")?;
            if charge.id.is_empty() {
                return Err(permanent("charge without id"));
            }
            let list = stripe
                .list_refunds_of_charge(&charge.id)
                .await
                .map_err(stripe_err)?;
            let previous = event
                .data
                .previous_attributes
                .as_ref()
                .and_then(|p| p.get("amount_refunded"))
                .and_then(serde_json::Value::as_i64);
            if let Some(gap) = refunds_missing_from(&charge, previous, &list)? {
                return Err(wait_or_park(mapping, event, now_secs, gap));
            }
            let mut cmds = Vec::new();
            for mut refund in list.data {
                if refund.customer.is_none() {
                    if let Some(c) = charge.customer_id() {
                        refund.customer = Some(Expandable::Id(c.to_owned()));
                    }
                }
                cmds.extend(refund_commands(mapping, stripe, &refund, &source).await?);
            }
            Ok(if cmds.is_empty() {
                // Every refund the charge counts is listed, and none has succeeded yet: each is
                // booked by its own refund.updated when it does.
                Outcome::Skipped("no succeeded refund on the charge yet".into())
            } else {
                Outcome::Commands(cmds)
            })
        }
        "refund.failed" => {
            let refund: StripeRefund = object_of(object, "refund")?;
            Err(permanent(failed_refund_reason(&refund)?))
        }
        other => Ok(Outcome::Skipped(format!(
            "{other} is not booked by this version"
        ))),
    }
}

/// Refund statuses Stripe counts in a charge's `amount_refunded`: a refund is deducted when
/// it is created, and given back only when it fails or is canceled.
fn counts_as_refunded(refund: &StripeRefund) -> bool {
    !matches!(text(&refund.status), Some("failed" | "canceled"))
}

/// What the refund list of a `charge.refunded` event lacks, if anything: the charge says
/// `amount_refunded` was refunded (up from `previous`), and the listed refunds must add up to
/// at least that. An empty list, or one short of it (not yet visible in Stripe's list, or
/// beyond its first page), is named here so the event is retried, then parked, never
/// acknowledged without its credit memo.
fn refunds_missing_from(
    charge: &StripeCharge,
    previous: Option<i64>,
    list: &StripeList<StripeRefund>,
) -> Result<Option<String>, StageError> {
    let listed = list
        .data
        .iter()
        .filter(|r| counts_as_refunded(r))
        .try_fold(0i64, |acc, r| acc.checked_add(r.amount))
        .ok_or_else(|| permanent("refund amounts overflow"))?;
    let refunded = charge.amount_refunded;
    if !list.data.is_empty() && listed >= refunded {
        return Ok(None);
    }
    let cur = charge.currency;
    let was = previous
        .map(|p| format!(" (up from {})", Money::new(p, cur)))
        .unwrap_or_default();
    let more = if list.has_more {
        ", and the list has more pages than the one read"
    } else {
        ""
    };
    Ok(Some(format!(
        "charge {} reports {} refunded{was} but Stripe lists {} refund(s) totalling {}{more}",
        charge.id,
        Money::new(refunded, cur),
        list.data.len(),
        Money::new(listed, cur),
    )))
}

/// Retry while the event is younger than `defaults.refund_wait_minutes` (Stripe's list may not
/// show a refund yet; the queue redelivers the event after its visibility timeout), then park
/// with the reason.
fn wait_or_park(mapping: &Mapping, event: &Event, now_secs: i64, gap: String) -> StageError {
    let wait = i64::from(mapping.defaults.refund_wait_minutes).saturating_mul(60);
    let age = now_secs.saturating_sub(event.created);
    if age < wait {
        StageError::pending(format!(
            "{gap}; waiting for Stripe's refund list ({age} s of {wait} s)"
        ))
    } else {
        permanent(format!(
            "{gap}, still {age} s after the event ({wait} s waited): find the missing refund(s) of the charge in Stripe, then replay this event; nothing was booked"
        ))
    }
}

async fn refund_commands<A: StripeApi>(
    mapping: &Mapping,
    stripe: &A,
    refund: &StripeRefund,
    source: &Source,
) -> Result<Vec<ErpCommandV1>, StageError> {
    if !refund.is_succeeded() {
        // pending: booked when it succeeds; failed / canceled: nothing was refunded.
        return Ok(Vec::new());
    }
    let id = refund.id.as_str();
    if id.is_empty() {
        return Err(permanent("refund without id"));
    }
    let cur = refund.currency;
    let amount = refund.amount_money();
    if refund.amount <= 0 {
        return Ok(Vec::new());
    }
    let customer = match refund.customer_id() {
        Some(c) => c.to_owned(),
        None => {
            let charge = refund
                .charge_id()
                .ok_or_else(|| permanent("refund without charge"))?;
            let ch = stripe.retrieve_charge(charge).await.map_err(stripe_err)?;
            ch.customer_id()
                .map(str::to_owned)
                .or_else(|| mapping.defaults.guest_customer.clone())
                .ok_or_else(|| {
                    permanent(
                        "refunded charge has no customer and defaults.guest_customer is not set",
                    )
                })?
        }
    };
    let description = match meta(&refund.metadata, "credit_memo_reason") {
        Some(t) => format!("Stripe refund {id}: {t}"),
        None => format!("Stripe refund {id}"),
    };
    // The refunded payment's receipt (booked under the PaymentIntent, else the charge, as
    // `payments` and `invoices` book it): the credit memo waits for it at posting time.
    let depends_on = if mapping.refunds.wait_for_payment {
        let payment = refund
            .payment_intent_id()
            .or_else(|| refund.charge_id())
            .ok_or_else(|| permanent(format!("refund {id} names no charge or payment")))?;
        vec![reference(payment, DocKind::CashReceipt)?]
    } else {
        Vec::new()
    };
    let (customer_id, hint) = if customer.starts_with("cus_") {
        (String::new(), Some(hint_by_id(&customer)))
    } else {
        (customer, None)
    };
    let memo = CreditMemo {
        reference: reference(id, DocKind::CreditMemo)?,
        customer_id,
        memo_date: date_of(
            &mapping.defaults.time_zone,
            created_or(refund.created, source.created),
        )?,
        currency: cur,
        lines: vec![one_line(&mapping.refunds.item, description, amount, None)],
        reason: Some(mapping.refund_reason(text(&refund.reason))),
        applies_to_invoice: None,
    };
    Ok(vec![ErpCommandV1 {
        command: ErpCommand::CreateCreditMemo(memo),
        customer: hint,
        depends_on,
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
fn failed_refund_reason(refund: &StripeRefund) -> Result<String, StageError> {
    let id = refund.id.as_str();
    if id.is_empty() {
        return Err(permanent("refund without id"));
    }
    let charge = refund.charge_id().unwrap_or("?");
    let amount = refund.amount_money();
    let document = reference(id, DocKind::CreditMemo)?;
    let erp_id = meta(&refund.metadata, &format!("{METADATA_PREFIX}credit_memo"))
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
    use ledgerbridge_stripe::fake::FakeStripe;

    fn refund_created(pi: Option<&str>) -> Event {
        serde_json::from_value(serde_json::json!({
            "id": "evt_2", "object": "event", "type": "refund.created", "created": 1_784_538_764,
            "data": {"object": {
                "id": "re_2", "object": "refund", "amount": 500, "currency": "usd",
                "charge": "ch_2", "payment_intent": pi, "customer": "cus_2",
                "status": "succeeded", "created": 1_784_538_760
            }}
        }))
        .unwrap()
    }

    /// A credit memo depends on the refunded payment's receipt (the key the payment is booked
    /// under), so posting waits for the payment instead of booking the memo unlinked.
    #[tokio::test]
    async fn a_refund_waits_for_the_receipt_of_its_payment() {
        let mut m = Mapping::from_toml(EXAMPLE).unwrap();
        m.refunds.wait_for_payment = true;
        let stripe = FakeStripe::new();
        for (pi, key) in [(Some("pi_2"), "pi_2"), (None, "ch_2")] {
            let event = refund_created(pi);
            let out = handle(
                &m,
                &stripe,
                &event,
                super::super::common::source_of(&event),
                0,
            )
            .await
            .unwrap();
            let Outcome::Commands(cmds) = out else {
                panic!("{out:?}")
            };
            assert_eq!(cmds.len(), 1);
            let deps: Vec<String> = cmds[0].depends_on.iter().map(|d| d.full()).collect();
            assert_eq!(deps, vec![format!("LB-{key}-CR")]);
        }
        // Off: booked without waiting (refunds of payments ledgerbridge never books).
        m.refunds.wait_for_payment = false;
        let event = refund_created(Some("pi_2"));
        let Outcome::Commands(cmds) = handle(
            &m,
            &stripe,
            &event,
            super::super::common::source_of(&event),
            0,
        )
        .await
        .unwrap() else {
            panic!()
        };
        assert!(cmds[0].depends_on.is_empty());
    }

    #[test]
    fn waiting_for_the_payment_is_the_default_when_the_key_is_absent() {
        let text = EXAMPLE.replace("wait_for_payment = false\n", "");
        assert_ne!(text, EXAMPLE);
        assert!(Mapping::from_toml(&text).unwrap().refunds.wait_for_payment);
    }

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
        // The failed refund is decided from the event alone.
        let stripe = FakeStripe::new();
        let err = handle(
            &m,
            &stripe,
            &event,
            super::super::common::source_of(&event),
            0,
        )
        .await
        .unwrap_err();
        assert!(!err.is_retriable());
        assert_eq!(stripe.calls(), 0);
        assert_eq!(
            err.to_string(),
            "refund re_1 of charge ch_1 (12.00 USD) failed at Stripe after it was booked; reverse ERP document LB-re_1-CM, ERP id CM-42"
        );
    }
}
