//! Credit notes → credit memos for the part not refunded through Stripe (refunds are booked by
//! the refund events); a voided credit note that was posted → the reversing invoice.

use super::documents::{customer_of, document_lines, fmt_money, posted_id};
use crate::convert::{created_or, date_of, object_of, reference, text, METADATA_PREFIX};
use crate::customer::hint_by_id;
use crate::mapping::{Invoices, Mapping};
use crate::outcome::{permanent, Outcome, StageError};
use ledgerbridge_core::event::Event;
use ledgerbridge_core::{Currency, Money};
use ledgerbridge_erp::{CreditMemo, DocKind, DocumentLine, ErpCommand, Invoice};
use ledgerbridge_messages::{ErpCommandV1, Source, WriteBack};
use ledgerbridge_stripe::objects::StripeCreditNote;
use rust_decimal::Decimal;

/// `credit_note.created`, `credit_note.voided`.
pub(super) fn handle(
    mapping: &Mapping,
    event: &Event,
    source: Source,
) -> Result<Outcome, StageError> {
    let Some(cfg) = &mapping.invoices else {
        return Ok(Outcome::Skipped(
            "no [invoices] section in the mapping: invoices and credit notes are not booked (their payments are booked as payments)".into(),
        ));
    };
    let doc: StripeCreditNote = object_of(&event.data.object, "credit note")?;
    let doc = &doc;
    let id = Some(doc.id.as_str())
        .filter(|id| !id.is_empty())
        .ok_or_else(|| permanent("object without id"))?;
    match event.event_type.as_str() {
        "credit_note.created" => credit_note_created(mapping, cfg, doc, &source),
        "credit_note.voided" => {
            let Some(_) = posted_id(&doc.metadata, "credit_memo") else {
                return Ok(Outcome::Skipped(format!(
                    "credit note {id} voided before ledgerbridge posted it: nothing to reverse"
                )));
            };
            let cur = doc.currency;
            let lines = credit_note_lines(mapping, cfg, doc, cur)?;
            let Some(lines) = lines else {
                return Ok(Outcome::Skipped(format!(
                    "credit note {id} was refunded through Stripe: the refund stands, nothing to reverse here"
                )));
            };
            let date = doc.voided_at.unwrap_or(source.created);
            Ok(Outcome::Commands(vec![ErpCommandV1 {
                command: ErpCommand::CreateInvoice(Invoice {
                    reference: reference(id, DocKind::Invoice)?,
                    customer_id: String::new(),
                    invoice_date: date_of(&mapping.defaults.time_zone, date)?,
                    due_date: None,
                    currency: cur,
                    lines,
                    sales_order: None,
                }),
                customer: Some(hint_by_id(customer_of(&doc.customer)?)),
                depends_on: vec![reference(id, DocKind::CreditMemo)?],
                version: None,
                write_back: None,
                source,
            }]))
        }
        other => Ok(Outcome::Skipped(format!(
            "{other} is not booked by this version"
        ))),
    }
}

/// Lines of the part of a credit note not refunded through Stripe; `None` when all of it was.
fn credit_note_lines(
    mapping: &Mapping,
    cfg: &Invoices,
    note: &StripeCreditNote,
    cur: Currency,
) -> Result<Option<Vec<DocumentLine>>, StageError> {
    let id = Some(note.id.as_str())
        .filter(|id| !id.is_empty())
        .unwrap_or("?");
    let total = note
        .total
        .ok_or_else(|| permanent("credit note without total"))?;
    let refunded = note
        .refunded_amount()
        .ok_or_else(|| permanent("amount overflow"))?;
    let credited = total
        .checked_sub(refunded)
        .ok_or_else(|| permanent("amount overflow"))?;
    if credited <= 0 {
        return Ok(None);
    }
    if refunded == 0 {
        return document_lines(mapping, cfg, &note.id, &note.lines, note.total, cur).map(Some);
    }
    Ok(Some(vec![DocumentLine {
        item_id: cfg.item.clone(),
        description: format!(
            "Stripe credit note {id}: {} credited, {} refunded (booked with the refund)",
            fmt_money(credited, cur),
            fmt_money(refunded, cur)
        ),
        quantity: Decimal::ONE,
        unit_price: Money::new(credited, cur),
        gl_account: cfg.revenue_account.clone(),
    }]))
}

fn credit_note_created(
    mapping: &Mapping,
    cfg: &Invoices,
    note: &StripeCreditNote,
    source: &Source,
) -> Result<Outcome, StageError> {
    let id = Some(note.id.as_str())
        .filter(|id| !id.is_empty())
        .ok_or_else(|| permanent("credit note without id"))?;
    let cur = note.currency;
    let Some(lines) = credit_note_lines(mapping, cfg, note, cur)? else {
        return Ok(Outcome::Skipped(format!(
            "credit note {id} is refunded in full through Stripe: booked by the refund events"
        )));
    };
    let invoice = note.invoice_id();
    Ok(Outcome::Commands(vec![ErpCommandV1 {
        command: ErpCommand::CreateCreditMemo(CreditMemo {
            reference: reference(id, DocKind::CreditMemo)?,
            customer_id: String::new(),
            memo_date: date_of(
                &mapping.defaults.time_zone,
                note.effective_at
                    .unwrap_or_else(|| created_or(note.created, source.created)),
            )?,
            currency: cur,
            lines,
            reason: Some(
                text(&note.reason)
                    .and_then(|r| mapping.refunds.reasons.get(r).cloned())
                    .unwrap_or_else(|| cfg.credit_note_reason.clone()),
            ),
            applies_to_invoice: None,
        }),
        customer: Some(hint_by_id(customer_of(&note.customer)?)),
        // The invoice must be in the ERP first; erp-post waits for it.
        depends_on: invoice
            .map(|i| reference(i, DocKind::Invoice))
            .transpose()?
            .into_iter()
            .collect(),
        version: None,
        write_back: Some(WriteBack {
            object_path: "credit_notes".into(),
            object_id: id.to_owned(),
            key: format!("{METADATA_PREFIX}credit_memo"),
        }),
        source: source.clone(),
    }]))
}
