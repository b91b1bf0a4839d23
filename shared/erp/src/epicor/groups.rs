//! The day's groups: cash receipts, AR invoices and GL journals live in dated groups
//! (`CashGrp`, `InvcGrp`, `GLJrnGrp`) that carry the date and fiscal period, are locked to the
//! user working in them and are posted as a unit. Pure request building and answer reading; the
//! client runs find → `GetNew{Grp}` → `Update`.

use super::config::EpicorConfig;
use super::mapping::{EpicorRequest, Method, ERP};
use crate::commands::ErpDate;
use crate::error::ErpError;
use serde_json::{json, Value};

/// Which kind of group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKind {
    Cash,
    Invoice,
    Journal,
}

impl GroupKind {
    pub fn service(self) -> &'static str {
        match self {
            GroupKind::Cash => "Erp.BO.CashGrpSvc",
            GroupKind::Invoice => "Erp.BO.InvcGrpSvc",
            GroupKind::Journal => "Erp.BO.GLJrnGrpSvc",
        }
    }
    fn set(self) -> &'static str {
        match self {
            GroupKind::Cash => "CashGrps",
            GroupKind::Invoice => "InvcGrps",
            GroupKind::Journal => "GLJrnGrps",
        }
    }
    /// The table (row type) of the group.
    pub fn table(self) -> &'static str {
        match self {
            GroupKind::Cash => "CashGrp",
            GroupKind::Invoice => "InvcGrp",
            GroupKind::Journal => "GLJrnGrp",
        }
    }
    /// The group's date field.
    fn date_field(self) -> &'static str {
        match self {
            GroupKind::Cash => "TranDate",
            GroupKind::Invoice => "InvoiceDate",
            GroupKind::Journal => "JEDate",
        }
    }
    fn prefix(self, cfg: &EpicorConfig) -> &str {
        match self {
            GroupKind::Cash => &cfg.cash_group_id,
            GroupKind::Invoice => &cfg.invoice_group_id,
            GroupKind::Journal => &cfg.journal.group_id,
        }
    }
}

/// The id of the group for `date`, from the configured pattern.
pub fn group_id(cfg: &EpicorConfig, kind: GroupKind, date: &ErpDate) -> String {
    let d = date.as_str();
    let part = |r: std::ops::Range<usize>| d.get(r).unwrap_or("");
    cfg.groups
        .pattern
        .replace("{prefix}", kind.prefix(cfg))
        .replace("{yyyy}", part(0..4))
        .replace("{yy}", part(2..4))
        .replace("{mm}", part(5..7))
        .replace("{dd}", part(8..10))
}

/// `GET {Svc}/{Grps}?$filter=GroupID eq '{id}'`: the group, if it exists.
pub fn find_request(kind: GroupKind, id: &str) -> EpicorRequest {
    EpicorRequest {
        method: Method::Get,
        path: format!("{}/{}", kind.service(), kind.set()),
        query: vec![
            (
                "$filter".into(),
                format!("GroupID eq '{}'", id.replace('\'', "''")),
            ),
            ("$top".into(), "1".into()),
        ],
        body: None,
    }
}

/// `POST {Svc}/GetNew{Grp}` with an empty dataset.
pub fn get_new_request(kind: GroupKind) -> EpicorRequest {
    EpicorRequest {
        method: Method::Post,
        path: format!("{}/GetNew{}", kind.service(), kind.table()),
        query: vec![],
        body: Some(json!({"ds": {kind.table(): []}})),
    }
}

/// `POST {Svc}/Update` with the new group row of `new_answer` (a `GetNew{Grp}` answer) given
/// its id, date and the kind's settings; the period comes back from Epicor.
pub fn update_request(
    cfg: &EpicorConfig,
    kind: GroupKind,
    id: &str,
    date: &ErpDate,
    new_answer: &Value,
) -> Result<EpicorRequest, ErpError> {
    let mut ds = new_answer
        .pointer("/parameters/ds")
        .cloned()
        .ok_or_else(|| ErpError::permanent(ERP, "GetNew group answer lacks parameters.ds"))?;
    let row = ds
        .get_mut(kind.table())
        .and_then(Value::as_array_mut)
        .and_then(|rows| rows.last_mut())
        .and_then(Value::as_object_mut)
        .ok_or_else(|| {
            ErpError::permanent(ERP, format!("GetNew answer lacks a {} row", kind.table()))
        })?;
    row.insert("GroupID".into(), json!(id));
    row.insert(kind.date_field().into(), json!(date.as_str()));
    match kind {
        GroupKind::Cash => {
            if let Some(bank) = &cfg.groups.bank_acct_id {
                row.insert("BankAcctID".into(), json!(bank));
            }
        }
        GroupKind::Invoice => {}
        GroupKind::Journal => {
            row.insert("BookID".into(), json!(cfg.journal.book_id));
            row.insert("JournalCode".into(), json!(cfg.journal.journal_code));
        }
    }
    Ok(EpicorRequest {
        method: Method::Post,
        path: format!("{}/Update", kind.service()),
        query: vec![],
        body: Some(json!({ "ds": ds })),
    })
}

/// The group row of a lookup answer (`value[0]`) or of an `Update` answer
/// (`parameters.ds.{Grp}[0]`).
pub fn row_of(kind: GroupKind, body: &Value) -> Option<Value> {
    body.pointer("/value/0")
        .or_else(|| body.pointer(&format!("/parameters/ds/{}/0", kind.table())))
        .cloned()
}

/// Whether the group can take documents for `user`: a group held by another user
/// (`ActiveUserID`) is locked; that is transient, so it is a retryable error.
pub fn check_usable(kind: GroupKind, row: &Value, user: Option<&str>) -> Result<(), ErpError> {
    let holder = row
        .get("ActiveUserID")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or("");
    let id = row.get("GroupID").and_then(Value::as_str).unwrap_or("");
    match user {
        Some(u) if !holder.is_empty() && !holder.eq_ignore_ascii_case(u) => {
            Err(ErpError::Retryable {
                erp: ERP,
                status: None,
                message: format!("{} {id} is in use by {holder}", kind.table()),
                retry_after: None,
                may_have_committed: false,
            })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids_follow_the_pattern() {
        let mut cfg: EpicorConfig = serde_json::from_value(json!({
            "base_url": "https://x", "company": "C", "invoice_group_id": "STRIPE",
            "cash_group_id": "STRIPECR",
            "journal": {"book_id": "MAIN", "journal_code": "GJ", "group_id": "STRIPEGL"}}))
        .unwrap();
        let d = ErpDate::parse("2024-05-14").unwrap();
        assert_eq!(group_id(&cfg, GroupKind::Cash, &d), "STRIPECR240514");
        cfg.groups.pattern = "{prefix}-{yyyy}{mm}".into();
        assert_eq!(group_id(&cfg, GroupKind::Journal, &d), "STRIPEGL-202405");
        let req = find_request(GroupKind::Invoice, "O'X");
        assert_eq!(req.query[0].1, "GroupID eq 'O''X'");
        assert_eq!(req.path, "Erp.BO.InvcGrpSvc/InvcGrps");
        let locked = json!({"GroupID": "G", "ActiveUserID": "someone"});
        assert!(check_usable(GroupKind::Cash, &locked, Some("manager")).is_err());
        assert!(check_usable(GroupKind::Cash, &locked, Some("SOMEONE")).is_ok());
    }
}
