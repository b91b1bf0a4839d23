//! Disputes → balanced journals, one per balance transaction of the dispute.
//!
//! A dispute moves money through its `balance_transactions[]`: the withdrawal when it opens
//! (amount −, dispute fee +) and, when it is won, the reinstatement (amount +, and the fee
//! returned where the account's pricing does so: fee −). Each balance transaction becomes one
//! journal whose external reference is the transaction id (`txn_…`, kind journal entry), so every
//! event that carries the same transaction (`created` and `funds_withdrawn`; `funds_reinstated`
//! and `closed`) yields the same journal and erp-post books it once, in whatever order the
//! events arrive. Amounts come only from the balance transactions (settlement currency, fee and
//! net), never from the dispute's own `amount`.
//!
//! Journal of one balance transaction with amount `a`, fee `f`, net `n = a − f`:
//!
//! | account | withdrawal (a < 0) | reinstatement (a > 0) |
//! | --- | --- | --- |
//! | `dispute_loss_account` | debit −a | credit a |
//! | `dispute_fee_account` | debit f (f > 0) | credit −f (f < 0) |
//! | `clearing_account` | credit −n | debit n |
//!
//! Without `dispute_fee_account` the fee is left to the payout reconciliation and the journal
//! carries the amount only (loss account against clearing).

use crate::convert::{date_of, object_of, reference, text};
use crate::mapping::{Disputes, Mapping};
use crate::outcome::{permanent, Outcome, StageError};
use ledgerbridge_core::event::Event;
use ledgerbridge_core::Money;
use ledgerbridge_erp::{CompanyTimeZone, DocKind, ErpCommand, JournalEntry, JournalLine, Side};
use ledgerbridge_messages::{ErpCommandV1, Source};
use ledgerbridge_stripe::objects::{Expandable, StripeBalanceTransaction, StripeDispute};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeSet;

/// A balance transaction of `previous_attributes.balance_transactions`: only its id is read.
#[derive(Deserialize)]
struct PreviousTxn {
    #[serde(default)]
    id: Option<String>,
}

/// `charge.dispute.*` → journals.
pub(super) fn handle(
    mapping: &Mapping,
    event: &Event,
    source: Source,
) -> Result<Outcome, StageError> {
    let Some(accounts) = &mapping.disputes else {
        return Ok(Outcome::Skipped(
            "no [disputes] section in the mapping: disputes are not booked".into(),
        ));
    };
    let raw = &event.data.object;
    let dispute: StripeDispute = object_of(raw, "dispute")?;
    let id = Some(dispute.id.as_str())
        .filter(|id| !id.is_empty())
        .ok_or_else(|| permanent("dispute without id"))?;
    let status = text(&dispute.status).unwrap_or("unknown");
    // Each typed balance transaction with its payload, to tell a missing figure from a zero.
    let raw_txns: &[Value] = raw
        .get("balance_transactions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let all: Vec<(&StripeBalanceTransaction, Option<&Value>)> = dispute
        .balance_transactions
        .iter()
        .enumerate()
        .map(|(n, t)| (t, raw_txns.get(n)))
        .collect();
    // `updated` and `closed` book only balance transactions this event added; the others
    // (created, funds_withdrawn, funds_reinstated) book every transaction they carry, which
    // erp-post deduplicates by reference.
    let only_new = matches!(
        event.event_type.as_str(),
        "charge.dispute.closed" | "charge.dispute.updated"
    );
    let txns: Vec<(&StripeBalanceTransaction, Option<&Value>)> = if only_new {
        let previous = event
            .data
            .previous_attributes
            .as_ref()
            .and_then(|p| p.get("balance_transactions"))
            .and_then(|b| Vec::<PreviousTxn>::deserialize(b).ok());
        match previous {
            Some(prev) => {
                let seen: BTreeSet<&str> = prev.iter().filter_map(|t| text(&t.id)).collect();
                all.into_iter()
                    .filter(|(t, _)| t.id.is_empty() || !seen.contains(t.id.as_str()))
                    .collect()
            }
            None => Vec::new(),
        }
    } else {
        all
    };
    if txns.is_empty() {
        let why = if only_new {
            format!(
                "dispute {id} is {status}: no money moved with this event (earlier balance transactions were booked by the events that carried them)"
            )
        } else {
            format!("dispute {id} is {status}: no balance transaction yet (inquiry or no funds withdrawn)")
        };
        return Ok(Outcome::Skipped(why));
    }
    let charge = match &dispute.charge {
        Some(Expandable::Id(c)) if !c.is_empty() => c.as_str(),
        _ => "?",
    };
    let mut out = Vec::new();
    for (txn, raw_txn) in txns {
        if let Some(j) = journal_for(
            accounts,
            &mapping.defaults.time_zone,
            id,
            charge,
            status,
            txn,
            raw_txn,
        )? {
            out.push(ErpCommandV1 {
                command: ErpCommand::PostJournalEntry(j),
                customer: None,
                depends_on: Vec::new(),
                version: None,
                write_back: None,
                source: source.clone(),
            });
        }
    }
    Ok(if out.is_empty() {
        Outcome::Skipped(format!(
            "dispute {id}: its balance transactions move no money"
        ))
    } else {
        Outcome::Commands(out)
    })
}

/// The typed balance transaction reads a missing `fee`, `net` or `created` as 0; a dispute's
/// must carry each of them, or the event is parked (never booked with a zero figure).
fn require(raw: Option<&Value>, key: &str) -> Result<(), StageError> {
    match raw.and_then(|t| t.get(key)).and_then(Value::as_i64) {
        Some(_) => Ok(()),
        None => Err(permanent(format!(
            "dispute balance transaction without {key}"
        ))),
    }
}

/// The journal of one balance transaction, `None` when it moves nothing.
#[allow(clippy::too_many_arguments)]
fn journal_for(
    accounts: &Disputes,
    zone: &CompanyTimeZone,
    dispute: &str,
    charge: &str,
    status: &str,
    txn: &StripeBalanceTransaction,
    raw: Option<&Value>,
) -> Result<Option<JournalEntry>, StageError> {
    let txn_id = Some(txn.id.as_str())
        .filter(|id| !id.is_empty())
        .ok_or_else(|| permanent("dispute balance transaction without id"))?;
    let cur = txn.currency;
    let amount = txn.amount;
    require(raw, "fee")?;
    let fee = txn.fee;
    require(raw, "net")?;
    let net = txn.net;
    if amount.checked_sub(fee) != Some(net) {
        return Err(permanent(format!(
            "balance transaction {txn_id}: net {net} ≠ amount {amount} − fee {fee}"
        )));
    }
    let details = &txn.fee_details;
    let sum = details
        .iter()
        .map(|d| d.amount)
        .try_fold(0i64, i64::checked_add);
    if !details.is_empty() && sum != Some(fee) {
        return Err(permanent(format!(
            "balance transaction {txn_id}: fee {fee} ≠ sum of its fee details"
        )));
    }
    if amount == 0 && fee == 0 {
        return Ok(None);
    }
    let category = Some(txn.reporting_category.as_str())
        .filter(|c| !c.is_empty())
        .unwrap_or("dispute");
    let what = if amount < 0 || (amount == 0 && fee > 0) {
        "funds withdrawn"
    } else {
        "funds reinstated"
    };
    let memo = Some(format!("{txn_id} {category}"));
    let mut lines = Vec::new();
    let mut push = |account: &str, signed_debit: i64| -> Result<(), StageError> {
        if signed_debit == 0 {
            return Ok(());
        }
        let (side, abs) = if signed_debit > 0 {
            (Side::Debit, signed_debit)
        } else {
            (
                Side::Credit,
                signed_debit
                    .checked_neg()
                    .ok_or_else(|| permanent("amount overflow"))?,
            )
        };
        lines.push(JournalLine {
            gl_account: account.to_owned(),
            side,
            amount: Money::new(abs, cur),
            memo: memo.clone(),
        });
        Ok(())
    };
    let neg = |x: i64| {
        x.checked_neg()
            .ok_or_else(|| permanent("amount overflow in dispute balance transaction"))
    };
    // Debit the loss / receivable by what left the balance, the fee by what Stripe kept, and
    // the clearing account by the net effect on the balance.
    push(&accounts.dispute_loss_account, neg(amount)?)?;
    match &accounts.dispute_fee_account {
        Some(fee_account) => {
            push(fee_account, fee)?;
            push(&accounts.clearing_account, net)?;
        }
        None => push(&accounts.clearing_account, amount)?,
    }
    if lines.len() < 2 {
        return Ok(None);
    }
    Ok(Some(JournalEntry {
        reference: reference(txn_id, DocKind::JournalEntry)?,
        posting_date: date_of(zone, {
            require(raw, "created")?;
            txn.created
        })?,
        currency: cur,
        description: format!("Stripe dispute {dispute} on {charge} ({status}): {what}"),
        lines,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::EXAMPLE;
    use rust_decimal::Decimal;

    const CREATED: &str =
        include_str!("../../../../tests/fixtures/stripe/events/charge.dispute.created.json");
    const CLOSED: &str =
        include_str!("../../../../tests/fixtures/stripe/events/charge.dispute.closed.json");

    fn dispute_event(mapping: &Mapping, event: &Event) -> Result<Outcome, StageError> {
        handle(mapping, event, crate::to_erp::common::source_of(event))
    }

    fn event(text: &str) -> Event {
        serde_json::from_str(text).unwrap()
    }

    fn journals(outcome: Outcome) -> Vec<JournalEntry> {
        match outcome {
            Outcome::Commands(cmds) => cmds
                .into_iter()
                .map(|c| {
                    c.command.validate().unwrap();
                    match c.command {
                        ErpCommand::PostJournalEntry(j) => j,
                        other => panic!("unexpected {other:?}"),
                    }
                })
                .collect(),
            Outcome::Skipped(why) => panic!("skipped: {why}"),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn amount_on(j: &JournalEntry, account: &str, side: Side) -> Decimal {
        j.lines
            .iter()
            .filter(|l| l.gl_account == account && l.side == side)
            .map(|l| l.amount.to_decimal())
            .sum()
    }

    /// The example mapping leaves dispute fees to the payout reconciliation; without it (no
    /// reconciliation), `dispute_fee_account` books them in the dispute journal.
    fn example_with_fee_account() -> Mapping {
        let mut m = Mapping::from_toml(EXAMPLE).unwrap();
        m.disputes.as_mut().unwrap().dispute_fee_account = Some("6150".into());
        m
    }

    #[test]
    fn created_books_the_withdrawal_and_the_fee() {
        let m = example_with_fee_account();
        let js = journals(dispute_event(&m, &event(CREATED)).unwrap());
        assert_eq!(js.len(), 1);
        let j = &js[0];
        assert_eq!(j.reference.full(), "LB-txn_1lyVshNq7LbKx2RzsEEHBOuZ-JE");
        assert_eq!(j.posting_date.as_str(), "2026-08-05");
        let d = m.disputes.as_ref().unwrap();
        let fee = d.dispute_fee_account.as_deref().unwrap();
        assert_eq!(
            amount_on(j, &d.dispute_loss_account, Side::Debit),
            Decimal::new(2000, 2)
        );
        assert_eq!(amount_on(j, fee, Side::Debit), Decimal::new(1500, 2));
        assert_eq!(
            amount_on(j, &d.clearing_account, Side::Credit),
            Decimal::new(3500, 2)
        );
        let (dr, cr) = j.totals().unwrap();
        assert_eq!(dr, cr);
    }

    #[test]
    fn closed_won_books_only_the_reinstatement() {
        let m = example_with_fee_account();
        let js = journals(dispute_event(&m, &event(CLOSED)).unwrap());
        assert_eq!(
            js.len(),
            1,
            "the withdrawal was booked by the created event"
        );
        let j = &js[0];
        assert_eq!(j.reference.full(), "LB-txn_1ONFAcNq7LbKx2RzBumZQdFL-JE");
        let d = m.disputes.as_ref().unwrap();
        let fee = d.dispute_fee_account.as_deref().unwrap();
        assert_eq!(
            amount_on(j, &d.clearing_account, Side::Debit),
            Decimal::new(3500, 2)
        );
        assert_eq!(
            amount_on(j, &d.dispute_loss_account, Side::Credit),
            Decimal::new(2000, 2)
        );
        assert_eq!(amount_on(j, fee, Side::Credit), Decimal::new(1500, 2));
        assert!(j.description.contains("won"), "{}", j.description);
    }

    #[test]
    fn withdrawal_and_reinstatement_cancel_out_per_account() {
        // Over the whole lifecycle of a won dispute with the fee returned, every account nets
        // to zero: the same transaction arriving with several events keeps its reference.
        let m = example_with_fee_account();
        let mut won = event(CLOSED);
        won.event_type = "charge.dispute.funds_reinstated".into();
        let all = journals(dispute_event(&m, &won).unwrap());
        assert_eq!(all.len(), 2);
        let created = journals(dispute_event(&m, &event(CREATED)).unwrap());
        assert_eq!(created[0].reference, all[0].reference);
        let mut per_account = std::collections::BTreeMap::<String, i64>::new();
        for l in all.iter().flat_map(|j| &j.lines) {
            let signed = if l.side == Side::Debit {
                l.amount.minor
            } else {
                -l.amount.minor
            };
            *per_account.entry(l.gl_account.clone()).or_default() += signed;
        }
        assert!(per_account.values().all(|v| *v == 0), "{per_account:?}");
    }

    #[test]
    fn closed_without_new_money_is_skipped_with_reason() {
        let m = Mapping::from_toml(EXAMPLE).unwrap();
        let mut lost = event(CLOSED);
        lost.data.object["status"] = "lost".into();
        lost.data.object["balance_transactions"]
            .as_array_mut()
            .unwrap()
            .truncate(1);
        lost.data.previous_attributes = Some(serde_json::json!({"status": "under_review"}));
        match dispute_event(&m, &lost).unwrap() {
            Outcome::Skipped(why) => assert!(why.contains("lost"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn without_fee_account_only_the_amount_is_journaled() {
        let mut m = Mapping::from_toml(EXAMPLE).unwrap();
        m.disputes.as_mut().unwrap().dispute_fee_account = None;
        let js = journals(dispute_event(&m, &event(CREATED)).unwrap());
        let j = &js[0];
        assert_eq!(j.lines.len(), 2);
        assert_eq!(j.totals().unwrap().0.minor, 2000);
    }

    #[test]
    fn a_balance_transaction_without_fee_or_net_is_parked_not_booked_as_zero() {
        let m = Mapping::from_toml(EXAMPLE).unwrap();
        for key in ["fee", "net", "created"] {
            let mut bad = event(CREATED);
            bad.data.object["balance_transactions"][0]
                .as_object_mut()
                .unwrap()
                .remove(key);
            match dispute_event(&m, &bad) {
                Err(e @ StageError::Park { .. }) => assert_eq!(
                    e.to_string(),
                    format!("dispute balance transaction without {key}")
                ),
                other => panic!("{key}: {other:?}"),
            }
        }
        let mut unreadable = event(CREATED);
        unreadable.data.object["amount"] = "lots".into();
        assert!(matches!(
            dispute_event(&m, &unreadable),
            Err(StageError::Park { .. })
        ));
    }

    #[test]
    fn inconsistent_balance_transaction_is_permanent() {
        let m = Mapping::from_toml(EXAMPLE).unwrap();
        let mut bad = event(CREATED);
        bad.data.object["balance_transactions"][0]["net"] = (-3400).into();
        assert!(matches!(
            dispute_event(&m, &bad),
            Err(StageError::Park { .. })
        ));
        let mut no_section = m.clone();
        no_section.disputes = None;
        assert!(matches!(
            dispute_event(&no_section, &event(CREATED)).unwrap(),
            Outcome::Skipped(_)
        ));
    }
}
