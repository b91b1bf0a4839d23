//! Pure mapping from canonical commands to Epicor Kinetic REST v2 requests and from Epicor
//! responses back to document ids. No I/O here.
//!
//! Decimals are sent as JSON strings, as OData v4 does with `IEEE754Compatible=true`, so no
//! amount ever passes through a binary float.

use super::config::EpicorConfig;
use crate::commands::{
    Address, Application, CashReceipt, CreditMemo, CustomerUpsert, DocKind, DocumentLine,
    ErpCommand, ErpDate, ExternalRef, Invoice, JournalEntry, SalesOrder, Side,
};
use crate::connector::{email_matches, ErpCustomerMatch, ErpCustomerRecord};
use crate::error::ErpError;
use crate::fit::{fit, Unit};
use crate::time::parse_utc;
use ledgerbridge_core::ids::ErpDocumentId;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

pub const ERP: &str = crate::kind::ErpKind::Epicor.as_str();

/// Entity set of each document kind (service / set, relative to the company root).
pub fn entity_set(kind: DocKind) -> &'static str {
    match kind {
        DocKind::Customer => "Erp.BO.CustomerSvc/Customers",
        DocKind::SalesOrder => "Erp.BO.SalesOrderSvc/SalesOrders",
        DocKind::Invoice | DocKind::CreditMemo => "Erp.BO.ARInvoiceSvc/ARInvoices",
        DocKind::CashReceipt => "Erp.BO.CashRecSvc/CashRecs",
        DocKind::JournalEntry => "Erp.BO.GLJournalEntrySvc/GLJournalEntries",
    }
}

/// Where a document is created: the entity set (one flat row) or a BO method.
///
/// Sales orders go through `SalesOrderSvc/UpdateExt` with a two-table dataset (`OrderHed` +
/// `OrderDtl`): the entity set's POST takes only an `OrderHedRow` (vendor schema), and the
/// method sequence production code uses (`GetNewOrderHed` → `Update` → `GetNewOrderDtl` →
/// `Update`) must save the header before its lines exist, so a lost or failed line call would
/// leave an order with its reference but without lines. `UpdateExt` commits header and lines in
/// one call (`rollbackParentOnChildError`), which effectively-once posting needs. That
/// `UpdateExt` links the new lines to the new header (both sent with `OrderNum` 0) and runs the
/// same defaults as `ChangeCustomer` is an assumption only a real Epicor can confirm.
///
/// Cash receipts start with `CashRecSvc/GetNewCashHeadType(groupID, PAYINV|DEPOSIT)` (vendor
/// schema), which gives the header its stored `TranType` and the group's date, fiscal period and
/// bank account; the edited header and its applications (`CashDtl`) are then committed by one
/// `UpdateExt` call, for the same reason as orders ([`get_new_request`]). AR invoices and credit
/// memos likewise start with `ARInvoiceSvc/GetNewInvcHeadType(GroupID, MISC-BILL |
/// CREDIT-MEMO)` (the only way `InvcHead.GroupID` is set) and commit header and `InvcDtl` lines
/// with one `UpdateExt`. GL journals start with `GLJournalEntrySvc/GetNewGlJrnHedTran(GroupID)`
/// (book, fiscal year and period, journal code and date from the group) and commit the header
/// and its `GLJrnDtlMnl` lines with one `UpdateExt`.
pub fn create_path(kind: DocKind) -> &'static str {
    match kind {
        DocKind::SalesOrder => "Erp.BO.SalesOrderSvc/UpdateExt",
        DocKind::CashReceipt => "Erp.BO.CashRecSvc/UpdateExt",
        DocKind::Invoice | DocKind::CreditMemo => "Erp.BO.ARInvoiceSvc/UpdateExt",
        DocKind::JournalEntry => "Erp.BO.GLJournalEntrySvc/UpdateExt",
        other => entity_set(other),
    }
}

/// The typed `GetNew…Type` call that starts a document in `group_id`, for the kinds created
/// that way (cash receipts); `None` for the others.
pub fn get_new_request(cmd: &ErpCommand, group_id: &str) -> Option<EpicorRequest> {
    match cmd {
        ErpCommand::CreateCashReceipt(r) => {
            let tran_type = match &r.applies_to {
                Some(Application::SalesOrder(_)) => "DEPOSIT",
                // Applied to an invoice, or left on account: a customer payment (PAYINV);
                // MISPAY is for receipts without a customer and carries no customer credit.
                Some(Application::Invoice(_)) | None => "PAYINV",
            };
            Some(EpicorRequest {
                method: Method::Post,
                path: "Erp.BO.CashRecSvc/GetNewCashHeadType".into(),
                query: vec![],
                body: Some(json!({
                    "ds": {"CashHead": []},
                    "groupID": group_id,
                    "tranType": tran_type,
                })),
            })
        }
        ErpCommand::CreateInvoice(_) | ErpCommand::CreateCreditMemo(_) => {
            let invoice_type = match cmd {
                ErpCommand::CreateCreditMemo(_) => "CREDIT-MEMO",
                _ => "MISC-BILL",
            };
            Some(EpicorRequest {
                method: Method::Post,
                path: "Erp.BO.ARInvoiceSvc/GetNewInvcHeadType".into(),
                query: vec![],
                body: Some(json!({
                    "ds": {"InvcHead": []},
                    "GroupID": group_id,
                    "InvoiceType": invoice_type,
                })),
            })
        }
        ErpCommand::PostJournalEntry(_) => Some(EpicorRequest {
            method: Method::Post,
            path: "Erp.BO.GLJournalEntrySvc/GetNewGlJrnHedTran".into(),
            query: vec![],
            body: Some(json!({"ds": {"GLJrnHed": []}, "GroupID": group_id})),
        }),
        _ => None,
    }
}

/// The document date a command's group is chosen by, and which group kind; `None` for
/// documents outside groups.
pub fn group_of(cmd: &ErpCommand) -> Option<(super::groups::GroupKind, &ErpDate)> {
    match cmd {
        ErpCommand::CreateCashReceipt(r) => Some((super::groups::GroupKind::Cash, &r.receipt_date)),
        ErpCommand::CreateInvoice(i) => Some((super::groups::GroupKind::Invoice, &i.invoice_date)),
        ErpCommand::CreateCreditMemo(m) => Some((super::groups::GroupKind::Invoice, &m.memo_date)),
        ErpCommand::PostJournalEntry(j) => {
            Some((super::groups::GroupKind::Journal, &j.posting_date))
        }
        _ => None,
    }
}

/// Key fields `$select`ed on lookups and read from create responses.
fn key_fields(kind: DocKind) -> &'static [&'static str] {
    match kind {
        DocKind::Customer => &["CustNum"],
        DocKind::SalesOrder => &["OrderNum"],
        DocKind::Invoice | DocKind::CreditMemo => &["InvoiceNum"],
        DocKind::CashReceipt => &["GroupID", "HeadNum"],
        DocKind::JournalEntry => &["BookID", "FiscalYear", "JournalCode", "JournalNum"],
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Patch,
}

/// One HTTP request, relative to `{base}/api/v2/odata/{Company}/`.
#[derive(Debug, Clone, PartialEq)]
pub struct EpicorRequest {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Option<Value>,
}

/// The rendered reference for a document kind, fitted to the configured field.
pub fn reference_value(cfg: &EpicorConfig, r: &ExternalRef) -> Result<String, ErpError> {
    let field = cfg.ref_fields.for_kind(r.kind());
    Ok(r.render(field.max_len)?)
}

/// Lookup by reference: `GET {set}?$filter={field} eq '{ref}'&$select={keys}&$top=2`.
/// References contain only `[A-Za-z0-9_~-]`, so no quote escaping is needed (and
/// `ExternalRef::new` guarantees that).
pub fn find_request(cfg: &EpicorConfig, r: &ExternalRef) -> Result<EpicorRequest, ErpError> {
    let field = &cfg.ref_fields.for_kind(r.kind()).name;
    let value = reference_value(cfg, r)?;
    let mut filter = format!("{field} eq '{value}'");
    match r.kind() {
        DocKind::Invoice => filter.push_str(" and CreditMemo eq false"),
        DocKind::CreditMemo => filter.push_str(" and CreditMemo eq true"),
        _ => {}
    }
    Ok(EpicorRequest {
        method: Method::Get,
        path: entity_set(r.kind()).to_owned(),
        query: vec![
            ("$filter".into(), filter),
            ("$select".into(), key_fields(r.kind()).join(",")),
            ("$top".into(), "2".into()),
        ],
        body: None,
    })
}

/// Read-back for the audit: the lookup by reference ([`find_request`]) without `$select`, with
/// the document's lines expanded (`GET {set}?$filter=…&$expand={lines}&$top=2`; the vendor
/// schema lists `$expand` on every entity set's GetRows). The amount is read from the same
/// fields ledgerbridge writes ([`read_back_of`]).
pub fn read_back_request(cfg: &EpicorConfig, r: &ExternalRef) -> Result<EpicorRequest, ErpError> {
    let mut req = find_request(cfg, r)?;
    req.query.retain(|(k, _)| k != "$select");
    if let Some(nav) = lines_of(r.kind()) {
        req.query.push(("$expand".into(), nav.into()));
    }
    Ok(req)
}

/// The child collection holding a document's lines.
fn lines_of(kind: DocKind) -> Option<&'static str> {
    match kind {
        DocKind::SalesOrder => Some("OrderDtls"),
        DocKind::Invoice | DocKind::CreditMemo => Some("InvcDtls"),
        DocKind::JournalEntry => Some("GLJrnDtlMnls"),
        DocKind::CashReceipt | DocKind::Customer => None,
    }
}

/// The document as Epicor holds it: id, currency (`CurrencyCode`) and total, computed from the
/// fields ledgerbridge writes: order and invoice lines `DocUnitPrice × SellingQuantity`
/// (`SellingShipQty` on invoice lines), the receipt's `DocTranAmt`, the sum of the journal
/// lines' `TotDebit`. Reading the lines rather than a header total (`InvcHead.DocInvoiceAmt`,
/// `GLJrnHed.TotDebit`) compares like with like; that a real Epicor's header totals agree is
/// not needed and not assumed.
pub fn read_back_of(
    kind: DocKind,
    body: &Value,
) -> Result<crate::connector::DocumentReadBack, ErpError> {
    use crate::connector::DocumentReadBack;
    let Some(first) = body
        .get("value")
        .and_then(Value::as_array)
        .map(|v| v.first())
    else {
        return Err(ErpError::permanent(
            ERP,
            "lookup answer has no \"value\" array",
        ));
    };
    let Some(row) = first else {
        return Ok(DocumentReadBack::Missing);
    };
    let erp_id = document_id(kind, row)?;
    let dec = |v: &Value, f: &str| -> Option<rust_decimal::Decimal> {
        match v.get(f)? {
            Value::String(s) => s.trim().parse().ok(),
            Value::Number(n) => n.to_string().parse().ok(),
            _ => None,
        }
    };
    let lines = |nav: &str| -> Vec<Value> {
        row.get(nav)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let product_sum = |nav: &str, qty: &str| -> Option<rust_decimal::Decimal> {
        let mut total = rust_decimal::Decimal::ZERO;
        for l in lines(nav) {
            total = total.checked_add(dec(&l, qty)?.checked_mul(dec(&l, "DocUnitPrice")?)?)?;
        }
        Some(total)
    };
    let amount = match kind {
        DocKind::SalesOrder => product_sum("OrderDtls", "SellingQuantity"),
        DocKind::Invoice | DocKind::CreditMemo => product_sum("InvcDtls", "SellingShipQty"),
        DocKind::CashReceipt => dec(row, "DocTranAmt"),
        DocKind::JournalEntry => {
            let mut total = rust_decimal::Decimal::ZERO;
            for l in lines("GLJrnDtlMnls") {
                if let Some(d) = dec(&l, "TotDebit") {
                    total += d;
                }
            }
            Some(total)
        }
        DocKind::Customer => None,
    };
    Ok(DocumentReadBack::Found {
        erp_id,
        amount,
        currency: row
            .get("CurrencyCode")
            .and_then(Value::as_str)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
    })
}

/// A journal's posting state from the journal header Epicor returns for its reference:
/// `GLJrnHed.Posted` ("True once posted", `Erp.BO.GLJournalEntrySvc`). An answer without the
/// flag is [`LedgerState::NotRead`](crate::connector::LedgerState), not a guess.
pub fn journal_state_of(body: &Value) -> Result<crate::connector::LedgerState, ErpError> {
    use crate::connector::LedgerState;
    let Some(rows) = body.get("value").and_then(Value::as_array) else {
        return Err(ErpError::permanent(
            ERP,
            "lookup answer has no \"value\" array",
        ));
    };
    let Some(row) = rows.first() else {
        return Ok(LedgerState::Missing);
    };
    Ok(match row.get("Posted").and_then(Value::as_bool) {
        Some(true) => LedgerState::Posted,
        Some(false) => LedgerState::Entered,
        None => LedgerState::NotRead("epicor: the journal header carries no Posted flag".into()),
    })
}

/// Resolve a user-facing `CustID` to the internal `CustNum` that documents need.
pub fn customer_lookup_request(customer_id: &str) -> Result<EpicorRequest, ErpError> {
    if customer_id.is_empty()
        || customer_id.len() > 10
        || !customer_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ErpError::permanent(
            ERP,
            format!("customer id {customer_id:?} is not a valid Epicor CustID (1–10 letters, digits, '-' or '_')"),
        ));
    }
    Ok(EpicorRequest {
        method: Method::Get,
        path: entity_set(DocKind::Customer).to_owned(),
        query: vec![
            ("$filter".into(), format!("CustID eq '{customer_id}'")),
            ("$select".into(), "CustNum".into()),
            ("$top".into(), "1".into()),
        ],
        body: None,
    })
}

/// Customers by e-mail: `GET Customers?$filter=EMailAddress eq '{email}'&$select=CustNum,CustID,EMailAddress&$top=3`.
/// `email` is the normalized address (see [`crate::connector::normalize_email`]); single quotes
/// are doubled as OData string literals require. The comparison's case-insensitivity is the
/// database collation's (SQL Server's default collation is case-insensitive); the answer is
/// checked again by [`customers_by_email_of`].
pub fn customer_email_request(email: &str) -> EpicorRequest {
    EpicorRequest {
        method: Method::Get,
        path: entity_set(DocKind::Customer).to_owned(),
        query: vec![
            (
                "$filter".into(),
                format!("EMailAddress eq '{}'", email.replace('\'', "''")),
            ),
            ("$select".into(), "CustNum,CustID,EMailAddress".into()),
            ("$top".into(), "3".into()),
        ],
        body: None,
    }
}

/// The customers of an e-mail lookup answer whose `EMailAddress` equals `email` (trimmed,
/// case-insensitive).
pub fn customers_by_email_of(body: &Value, email: &str) -> Result<Vec<ErpCustomerMatch>, ErpError> {
    let Some(values) = body.get("value").and_then(Value::as_array) else {
        return Err(ErpError::permanent(
            ERP,
            "lookup answer has no \"value\" array",
        ));
    };
    let mut out = Vec::new();
    for v in values {
        if !email_matches(v.get("EMailAddress").and_then(Value::as_str), email) {
            continue;
        }
        let erp_id = document_id(DocKind::Customer, v)?;
        let customer_id = v
            .get("CustID")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ErpError::permanent(ERP, "customer lookup answer lacks CustID"))?;
        out.push(ErpCustomerMatch {
            erp_id,
            customer_id: customer_id.to_owned(),
        });
    }
    Ok(out)
}

/// The create request for `cmd`. Documents other than customers need the customer's internal
/// `CustNum` (resolved by the client through [`customer_lookup_request`]).
pub fn create_request(
    cfg: &EpicorConfig,
    cmd: &ErpCommand,
    cust_num: Option<i64>,
    new_answer: Option<&Value>,
    accounts: &BTreeMap<String, String>,
) -> Result<EpicorRequest, ErpError> {
    let need_new =
        || new_answer.ok_or_else(|| ErpError::permanent(ERP, "internal: GetNew answer missing"));
    let need_cust = || {
        cust_num.ok_or_else(|| ErpError::permanent(ERP, "internal: customer number not resolved"))
    };
    let body = match cmd {
        ErpCommand::UpsertCustomer(c) => customer_body(cfg, c, None)?,
        ErpCommand::CreateSalesOrder(o) => sales_order_body(cfg, o, need_cust()?)?,
        ErpCommand::CreateInvoice(i) => invoice_body(cfg, i, need_cust()?, need_new()?)?,
        ErpCommand::CreateCreditMemo(m) => credit_memo_body(cfg, m, need_cust()?, need_new()?)?,
        ErpCommand::CreateCashReceipt(r) => cash_receipt_body(cfg, r, need_cust()?, need_new()?)?,
        ErpCommand::PostJournalEntry(j) => journal_body(cfg, j, need_new()?, accounts)?,
    };
    Ok(EpicorRequest {
        method: Method::Post,
        path: create_path(cmd.kind()).to_owned(),
        query: vec![],
        body: Some(body),
    })
}

/// `PATCH Customers('{Company}',{CustNum})` with the master-data fields.
pub fn update_customer_request(
    cfg: &EpicorConfig,
    id: &ErpDocumentId,
    c: &CustomerUpsert,
) -> Result<EpicorRequest, ErpError> {
    let cust_num: i64 = id
        .as_str()
        .parse()
        .map_err(|_| ErpError::permanent(ERP, format!("{id} is not an Epicor CustNum")))?;
    Ok(EpicorRequest {
        method: Method::Patch,
        path: format!(
            "{}('{}',{cust_num})",
            entity_set(DocKind::Customer),
            cfg.company
        ),
        query: vec![],
        body: Some(customer_body(cfg, c, Some(cust_num))?),
    })
}

/// Customers changed on or after the day of `since`:
/// `GET Customers?$filter=ChangeDate ge {day}T00:00:00Z&$orderby=ChangeDate,ChangeTime,CustNum`.
/// Epicor keeps the day of a change in `ChangeDate` and the seconds after midnight in
/// `ChangeTime` (Erp.Customer columns); the connector drops the earlier ones of that day.
pub fn changed_customers_request(
    cfg: &EpicorConfig,
    since: i64,
    skip: usize,
    top: usize,
) -> Result<EpicorRequest, ErpError> {
    let day = ErpDate::from_unix(since).map_err(|e| ErpError::permanent(ERP, e.to_string()))?;
    Ok(EpicorRequest {
        method: Method::Get,
        path: entity_set(DocKind::Customer).to_owned(),
        query: vec![
            (
                "$filter".into(),
                format!("ChangeDate ge {}T00:00:00Z", day.as_str()),
            ),
            ("$orderby".into(), "ChangeDate,ChangeTime,CustNum".into()),
            (
                "$select".into(),
                format!(
                    "CustID,Name,EMailAddress,Address1,Address2,City,State,Zip,Country,ChangeDate,ChangeTime,{}",
                    cfg.ref_fields.customer.name
                ),
            ),
            ("$skip".into(), skip.to_string()),
            ("$top".into(), top.to_string()),
        ],
        body: None,
    })
}

/// The customers of a [`changed_customers_request`] answer.
pub fn changed_customers_of(
    cfg: &EpicorConfig,
    body: &Value,
) -> Result<Vec<ErpCustomerRecord>, ErpError> {
    let rows = body
        .get("value")
        .and_then(Value::as_array)
        .ok_or_else(|| ErpError::permanent(ERP, "changed customers answer has no value array"))?;
    rows.iter()
        .map(|v| {
            let t = |k: &str| crate::connector::trimmed_text(v.get(k));
            let id = t("CustID")
                .ok_or_else(|| ErpError::permanent(ERP, "changed customer without CustID"))?;
            let day = t("ChangeDate").and_then(|d| parse_utc(d.get(..10).unwrap_or("")));
            let time = v.get("ChangeTime").and_then(Value::as_i64).unwrap_or(0);
            let changed_at = day.map(|d| d + time.clamp(0, 86_399)).ok_or_else(|| {
                ErpError::permanent(ERP, format!("customer {id} has no readable ChangeDate"))
            })?;
            Ok(ErpCustomerRecord {
                customer_id: id,
                name: t("Name"),
                email: t("EMailAddress"),
                address: Address {
                    line1: t("Address1"),
                    line2: t("Address2"),
                    city: t("City"),
                    state: t("State"),
                    postal_code: t("Zip"),
                    country: t("Country"),
                },
                changed_at,
                reference: t(&cfg.ref_fields.customer.name),
            })
        })
        .collect()
}

/// `PATCH Customers('{Company}',{CustNum})` with user-defined fields only (already resolved to
/// Epicor field names by [`crate::fields::resolve`]).
pub fn customer_fields_request(
    cfg: &EpicorConfig,
    id: &ErpDocumentId,
    fields: &[(String, String)],
) -> Result<EpicorRequest, ErpError> {
    let cust_num: i64 = id
        .as_str()
        .parse()
        .map_err(|_| ErpError::permanent(ERP, format!("{id} is not an Epicor CustNum")))?;
    let mut m = Map::new();
    m.insert("Company".into(), json!(cfg.company));
    m.insert("CustNum".into(), json!(cust_num));
    for (k, v) in fields {
        m.insert(k.clone(), json!(v));
    }
    Ok(EpicorRequest {
        method: Method::Patch,
        path: format!(
            "{}('{}',{cust_num})",
            entity_set(DocKind::Customer),
            cfg.company
        ),
        query: vec![],
        body: Some(Value::Object(m)),
    })
}

fn customer_body(
    cfg: &EpicorConfig,
    c: &CustomerUpsert,
    cust_num: Option<i64>,
) -> Result<Value, ErpError> {
    if c.customer_id.len() > 10 {
        return Err(ErpError::permanent(
            ERP,
            format!(
                "CustID {:?} is longer than Epicor's 10 characters",
                c.customer_id
            ),
        ));
    }
    let mut m = Map::new();
    m.insert("Company".into(), json!(cfg.company));
    if let Some(n) = cust_num {
        m.insert("CustNum".into(), json!(n));
    }
    m.insert("CustID".into(), json!(c.customer_id));
    m.insert("CurrencyCode".into(), json!(c.currency.code()));
    if let Some(v) = &c.email {
        m.insert("EMailAddress".into(), json!(v));
    }
    if let Some(v) = &c.address.country {
        m.insert("Country".into(), json!(v));
    }
    // Free text cut to its (assumed) width at a grapheme boundary; the whole values, when any
    // was cut, go to the comment field so nothing is lost.
    let widths = &cfg.customer_text;
    let mut whole = Vec::new();
    let mut put = |k: &str, v: Option<&str>, width: usize| {
        if let Some(v) = v {
            let f = fit(v, width, Unit::Utf16);
            if f.cut {
                whole.push(format!("{k}: {v}"));
            }
            m.insert(k.into(), json!(f.text));
        }
    };
    put("Name", Some(&c.name), widths.name);
    put("Address1", c.address.line1.as_deref(), widths.address);
    put("Address2", c.address.line2.as_deref(), widths.address);
    put("City", c.address.city.as_deref(), widths.city);
    put("State", c.address.state.as_deref(), widths.state);
    put("Zip", c.address.postal_code.as_deref(), widths.zip);
    // A phone number is not cut (a shortened number is a wrong one): it is sent when it fits,
    // and kept in the comment otherwise.
    if let Some(p) = c.phone.as_deref() {
        if Unit::Utf16.len(p) <= widths.phone {
            m.insert("PhoneNum".into(), json!(p));
        } else {
            whole.push(format!("PhoneNum: {p}"));
        }
    }
    if !whole.is_empty() && !widths.comment_field.is_empty() {
        m.insert(
            widths.comment_field.clone(),
            json!(format!(
                "Full values from Stripe (cut to fit): {}",
                whole.join("; ")
            )),
        );
    }
    m.insert(
        cfg.ref_fields.customer.name.clone(),
        json!(reference_value(cfg, &c.reference)?),
    );
    Ok(Value::Object(m))
}

fn line_json(cfg: &EpicorConfig, n: usize, l: &DocumentLine, qty_field: &str) -> Value {
    // A line's GL account is not a sales category (`SalesCatID` is a SalesCat code), so it is
    // not sent; the sales category comes from the part or Epicor's defaults.
    let _ = n;
    json!({
        "Company": cfg.company,
        "PartNum": l.item_id,
        "LineDesc": l.description,
        qty_field: l.quantity.normalize().to_string(),
        "DocUnitPrice": l.unit_price.to_decimal().to_string(),
    })
}

/// `SalesOrderSvc/UpdateExt` with `OrderHed` and its `OrderDtl` rows, all new (`RowMod` "A",
/// `OrderNum` 0: Epicor assigns the number); see [`create_path`].
fn sales_order_body(cfg: &EpicorConfig, o: &SalesOrder, cust: i64) -> Result<Value, ErpError> {
    let lines: Vec<Value> = o
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mut v = line_json(cfg, i, l, "SellingQuantity");
            if let Some(obj) = v.as_object_mut() {
                obj.insert("OrderNum".into(), json!(0));
                obj.insert("OrderLine".into(), json!(i + 1));
                obj.insert("RowMod".into(), json!("A"));
            }
            v
        })
        .collect();
    Ok(json!({
        "ds": {
            "OrderHed": [{
                "Company": cfg.company,
                "OrderNum": 0,
                "CustNum": cust,
                (cfg.ref_fields.sales_order.name.as_str()): reference_value(cfg, &o.reference)?,
                "OrderDate": o.order_date.as_str(),
                "NeedByDate": o.order_date.as_str(),
                "CurrencyCode": o.currency.code(),
                "RowMod": "A",
            }],
            "OrderDtl": lines,
        },
        "continueProcessingOnError": false,
        "rollbackParentOnChildError": true,
    }))
}

fn invoice_lines(cfg: &EpicorConfig, lines: &[DocumentLine]) -> Vec<Value> {
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mut v = line_json(cfg, i, l, "SellingShipQty");
            if let Some(obj) = v.as_object_mut() {
                obj.insert("InvoiceNum".into(), json!(0));
                obj.insert("InvoiceLine".into(), json!(i + 1));
                obj.insert("RowMod".into(), json!("A"));
            }
            v
        })
        .collect()
}

/// `ARInvoiceSvc/UpdateExt` with the header `GetNewInvcHeadType` returned (group, type, credit
/// flag, date and fiscal period kept) and its lines.
fn invoice_update_ext(head: Map<String, Value>, lines: Vec<Value>) -> Value {
    json!({
        "ds": {"InvcHead": [head], "InvcDtl": lines},
        "continueProcessingOnError": false,
        "rollbackParentOnChildError": true,
    })
}

/// A miscellaneous invoice. `OrderNum` is not sent: on an invoice the order would supply
/// `PONum`, the field that carries the invoice's own reference.
fn invoice_body(
    cfg: &EpicorConfig,
    inv: &Invoice,
    cust: i64,
    new_answer: &Value,
) -> Result<Value, ErpError> {
    let mut head = new_row(new_answer, "InvcHead")?;
    head.insert("Company".into(), json!(cfg.company));
    head.insert("CustNum".into(), json!(cust));
    head.insert(
        cfg.ref_fields.invoice.name.clone(),
        json!(reference_value(cfg, &inv.reference)?),
    );
    head.insert("InvoiceDate".into(), json!(inv.invoice_date.as_str()));
    head.insert("CurrencyCode".into(), json!(inv.currency.code()));
    if let Some(d) = &inv.due_date {
        head.insert("DueDate".into(), json!(d.as_str()));
    }
    head.insert("RowMod".into(), json!("A"));
    Ok(invoice_update_ext(head, invoice_lines(cfg, &inv.lines)))
}

/// A credit memo (amounts entered positive); `InvoiceRef` relates it to the invoice it credits.
fn credit_memo_body(
    cfg: &EpicorConfig,
    m: &CreditMemo,
    cust: i64,
    new_answer: &Value,
) -> Result<Value, ErpError> {
    let mut head = new_row(new_answer, "InvcHead")?;
    head.insert("Company".into(), json!(cfg.company));
    head.insert("CustNum".into(), json!(cust));
    head.insert(
        cfg.ref_fields.credit_memo.name.clone(),
        json!(reference_value(cfg, &m.reference)?),
    );
    head.insert("InvoiceDate".into(), json!(m.memo_date.as_str()));
    head.insert("CurrencyCode".into(), json!(m.currency.code()));
    if let Some(inv) = &m.applies_to_invoice {
        head.insert("InvoiceRef".into(), json!(parse_int(inv, "InvoiceNum")?));
    }
    if let Some(reason) = &m.reason {
        head.insert("InvoiceComment".into(), json!(reason));
    }
    head.insert("RowMod".into(), json!("A"));
    Ok(invoice_update_ext(head, invoice_lines(cfg, &m.lines)))
}

/// The header row a `GetNew…` answer added (`parameters.ds.{table}`, last row).
fn new_row(answer: &Value, table: &str) -> Result<Map<String, Value>, ErpError> {
    answer
        .pointer(&format!("/parameters/ds/{table}"))
        .and_then(Value::as_array)
        .and_then(|rows| rows.last())
        .and_then(Value::as_object)
        .cloned()
        .ok_or_else(|| ErpError::permanent(ERP, format!("GetNew answer lacks a {table} row")))
}

/// The `PMUID` of a payment method code, from the settings.
pub fn pmuid(cfg: &EpicorConfig, method: &str) -> Result<i64, ErpError> {
    cfg.payment_methods.get(method).copied().ok_or_else(|| {
        ErpError::permanent(
            ERP,
            format!(
                "payment method {method:?} has no Epicor PMUID in the settings (payment_methods)"
            ),
        )
    })
}

/// `CashRecSvc/UpdateExt` with the header `GetNewCashHeadType` returned (its `TranType`,
/// group, date and fiscal period kept) and, for a payment on an invoice, one application row.
fn cash_receipt_body(
    cfg: &EpicorConfig,
    r: &CashReceipt,
    cust: i64,
    new_answer: &Value,
) -> Result<Value, ErpError> {
    let amount = r.amount.to_decimal().to_string();
    let mut head = new_row(new_answer, "CashHead")?;
    let mut set = |k: &str, v: Value| {
        head.insert(k.into(), v);
    };
    set("Company", json!(cfg.company));
    set("CustNum", json!(cust));
    set("TranDate", json!(r.receipt_date.as_str()));
    set(
        &cfg.ref_fields.cash_receipt.name,
        json!(reference_value(cfg, &r.reference)?),
    );
    set("DocTranAmt", json!(amount));
    set("CurrencyCode", json!(r.amount.currency.code()));
    set("PMUID", json!(pmuid(cfg, &r.payment_method)?));
    set("RowMod", json!("A"));
    let mut details = Vec::new();
    match &r.applies_to {
        Some(Application::Invoice(inv)) => details.push(json!({
            "Company": cfg.company,
            "InvoiceNum": parse_int(inv, "InvoiceNum")?,
            "DocTranAmt": amount,
            "RowMod": "A",
        })),
        Some(Application::SalesOrder(so)) => set("OrderNum", json!(parse_int(so, "OrderNum")?)),
        None => set("OnAccount", json!(true)),
    }
    Ok(json!({
        "ds": {"CashHead": [head], "CashDtl": details},
        "continueProcessingOnError": false,
        "rollbackParentOnChildError": true,
    }))
}

/// The display accounts of a command whose internal form must be resolved (journal lines).
pub fn accounts_of(cmd: &ErpCommand) -> Vec<&str> {
    match cmd {
        ErpCommand::PostJournalEntry(j) => j.lines.iter().map(|l| l.gl_account.as_str()).collect(),
        _ => vec![],
    }
}

/// The internal account (`1010|00`) of a display account (`1010-00`) from its segments.
pub fn internal_account(cfg: &EpicorConfig, display: &str) -> String {
    let sep = cfg.gl_accounts.separator.as_str();
    if sep.is_empty() || display.contains('|') {
        return display.to_owned();
    }
    display.split(sep).collect::<Vec<_>>().join("|")
}

/// `GET GLAccountSvc/GLAccounts?$filter=GLAcctDispGLAcctDisp eq '{display}'&$select=GLAccount1`.
pub fn gl_account_lookup_request(display: &str) -> EpicorRequest {
    EpicorRequest {
        method: Method::Get,
        path: "Erp.BO.GLAccountSvc/GLAccounts".into(),
        query: vec![
            (
                "$filter".into(),
                format!("GLAcctDispGLAcctDisp eq '{}'", display.replace('\'', "''")),
            ),
            ("$select".into(), "GLAccount1".into()),
            ("$top".into(), "2".into()),
        ],
        body: None,
    }
}

/// The internal account of a [`gl_account_lookup_request`] answer.
pub fn gl_account_of(display: &str, body: &Value) -> Result<String, ErpError> {
    body.pointer("/value/0/GLAccount1")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            ErpError::permanent(ERP, format!("GL account {display} not found in Epicor"))
        })
}

/// `GLJournalEntrySvc/UpdateExt` with the header `GetNewGlJrnHedTran` returned (group, book,
/// fiscal year and period, journal code kept) and one `GLJrnDtlMnl` per line: the internal
/// account with its segments, `TransAmt` signed (debit positive) and `TotDebit`/`TotCredit`.
fn journal_body(
    cfg: &EpicorConfig,
    j: &JournalEntry,
    new_answer: &Value,
    accounts: &BTreeMap<String, String>,
) -> Result<Value, ErpError> {
    let zero = rust_decimal::Decimal::new(0, j.currency.exponent());
    let mut head = new_row(new_answer, "GLJrnHed")?;
    head.insert("Company".into(), json!(cfg.company));
    head.insert("JEDate".into(), json!(j.posting_date.as_str()));
    head.insert("CurrencyCode".into(), json!(j.currency.code()));
    head.insert(
        cfg.ref_fields.journal_entry.name.clone(),
        json!(reference_value(cfg, &j.reference)?),
    );
    head.insert("CommentText".into(), json!(j.description));
    head.insert("RowMod".into(), json!("A"));
    let mut lines = Vec::new();
    for (i, l) in j.lines.iter().enumerate() {
        let internal = accounts
            .get(&l.gl_account)
            .cloned()
            .unwrap_or_else(|| internal_account(cfg, &l.gl_account));
        let amount = l.amount.to_decimal();
        let (dr, cr, signed) = match l.side {
            Side::Debit => (amount, zero, amount),
            Side::Credit => (zero, amount, -amount),
        };
        let mut line = Map::new();
        line.insert("Company".into(), json!(cfg.company));
        line.insert("JournalNum".into(), json!(0));
        line.insert("JournalLine".into(), json!(i + 1));
        line.insert("GLAccount".into(), json!(internal));
        for (n, seg) in internal.split('|').enumerate().take(20) {
            line.insert(format!("SegValue{}", n + 1), json!(seg));
        }
        line.insert("TransAmt".into(), json!(signed.to_string()));
        line.insert("TotDebit".into(), json!(dr.to_string()));
        line.insert("TotCredit".into(), json!(cr.to_string()));
        line.insert(
            "Description".into(),
            json!(l.memo.clone().unwrap_or_else(|| j.description.clone())),
        );
        line.insert("RowMod".into(), json!("A"));
        lines.push(Value::Object(line));
    }
    Ok(json!({
        "ds": {"GLJrnHed": [head], "GLJrnDtlMnl": lines},
        "continueProcessingOnError": false,
        "rollbackParentOnChildError": true,
    }))
}

fn parse_int(id: &ErpDocumentId, what: &str) -> Result<i64, ErpError> {
    id.as_str()
        .parse()
        .map_err(|_| ErpError::permanent(ERP, format!("{id} is not an Epicor {what}")))
}

/// The document id from a created or found entity: the key fields joined with `/`
/// (`CustNum`; `OrderNum`; `InvoiceNum`; `GroupID/HeadNum`; `BookID/FiscalYear/JournalCode/JournalNum`).
pub fn document_id(kind: DocKind, entity: &Value) -> Result<ErpDocumentId, ErpError> {
    let mut parts = Vec::new();
    for k in key_fields(kind) {
        let part = match entity.get(*k) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                return Err(ErpError::permanent(
                    ERP,
                    format!("response lacks key field {k}"),
                ))
            }
        };
        parts.push(part);
    }
    Ok(ErpDocumentId::new(parts.join("/")))
}

/// The first call of a group's posting: `CashRecPostSvc/GetNewParameters` for cash groups;
/// `None` for invoice and journal groups, which post in one call
/// ([`invoice_posting_request`], [`journal_posting_request`]).
pub fn posting_parameters_request(kind: super::groups::GroupKind) -> Option<EpicorRequest> {
    match kind {
        super::groups::GroupKind::Invoice | super::groups::GroupKind::Journal => None,
        super::groups::GroupKind::Cash => Some(EpicorRequest {
            method: Method::Post,
            path: "Erp.PROC.CashRecPostSvc/GetNewParameters".into(),
            query: vec![],
            body: Some(json!({})),
        }),
    }
}

/// `CashRecPostSvc/RunDirect` with the parameters row of `params` set to the group.
pub fn cash_posting_run_request(group_id: &str, params: &Value) -> Result<EpicorRequest, ErpError> {
    let table = "CashRecPostParam";
    let mut row = new_row(params, table)?;
    row.insert("GroupID".into(), json!(group_id));
    row.insert("RowMod".into(), json!("U"));
    Ok(EpicorRequest {
        method: Method::Post,
        path: "Erp.PROC.CashRecPostSvc/RunDirect".into(),
        query: vec![],
        body: Some(json!({"ds": {table: [row]}})),
    })
}

/// `InvcGrpSvc/PostInvoices(groupID)`: posts every invoice of the group (they become open AR).
pub fn invoice_posting_request(group_id: &str) -> EpicorRequest {
    EpicorRequest {
        method: Method::Post,
        path: "Erp.BO.InvcGrpSvc/PostInvoices".into(),
        query: vec![],
        body: Some(json!({ "groupID": group_id })),
    }
}

/// `GLJrnGrpSvc/PostGroupJournals(postGroupID)`: posts the journals of the group.
pub fn journal_posting_request(group_id: &str) -> EpicorRequest {
    EpicorRequest {
        method: Method::Post,
        path: "Erp.BO.GLJrnGrpSvc/PostGroupJournals".into(),
        query: vec![],
        body: Some(json!({ "postGroupID": group_id })),
    }
}

/// The error text a `PostInvoices` answer carries (`parameters.errorMessage`), if any.
pub fn posting_error_of(answer: &Value) -> Option<String> {
    answer
        .pointer("/parameters/errorMessage")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
}

/// `ApplyCreditMemoSvc/GetNewCashHead(ds, groupID)`: a credit-memo transfer (`CMemo`) in the
/// cash group.
pub fn apply_memo_new_request(group_id: &str) -> EpicorRequest {
    EpicorRequest {
        method: Method::Post,
        path: "Erp.BO.ApplyCreditMemoSvc/GetNewCashHead".into(),
        query: vec![],
        body: Some(json!({"ds": {"CashHead": []}, "groupID": group_id})),
    }
}

/// `ApplyCreditMemoSvc/GetHdrDocumentInfo(documentNum, ds)`: the header defaulted from the
/// posted credit memo (customer, currency, amount).
pub fn apply_memo_document_request(
    memo: &ErpDocumentId,
    new_answer: &Value,
) -> Result<EpicorRequest, ErpError> {
    let ds = new_answer
        .pointer("/parameters/ds")
        .cloned()
        .ok_or_else(|| ErpError::permanent(ERP, "GetNewCashHead answer lacks parameters.ds"))?;
    Ok(EpicorRequest {
        method: Method::Post,
        path: "Erp.BO.ApplyCreditMemoSvc/GetHdrDocumentInfo".into(),
        query: vec![],
        body: Some(json!({"documentNum": parse_int(memo, "InvoiceNum")?, "ds": ds})),
    })
}

/// `ApplyCreditMemoSvc/UpdateExt`: the memo's header and one application row against the
/// invoice for the memo's amount, in one call.
pub fn apply_memo_update_request(
    cfg: &EpicorConfig,
    invoice: &ErpDocumentId,
    header_answer: &Value,
) -> Result<EpicorRequest, ErpError> {
    let head = new_row(header_answer, "CashHead")?;
    let amount = head
        .get("DocTranAmt")
        .cloned()
        .ok_or_else(|| ErpError::permanent(ERP, "credit memo header lacks DocTranAmt"))?;
    Ok(EpicorRequest {
        method: Method::Post,
        path: "Erp.BO.ApplyCreditMemoSvc/UpdateExt".into(),
        query: vec![],
        body: Some(json!({
            "ds": {"CashHead": [head], "CashDtl": [{
                "Company": cfg.company,
                "InvoiceNum": parse_int(invoice, "InvoiceNum")?,
                "DocTranAmt": amount,
                "RowMod": "A",
            }]},
            "continueProcessingOnError": false,
            "rollbackParentOnChildError": true,
        })),
    })
}

/// The id of a created document: from the created row of an entity-set POST, or from the
/// header row of the dataset a BO method returns (`parameters.ds`).
pub fn created_id(kind: DocKind, body: &Value) -> Result<ErpDocumentId, ErpError> {
    let header = match kind {
        DocKind::SalesOrder => Some("OrderHed"),
        DocKind::CashReceipt => Some("CashHead"),
        DocKind::Invoice | DocKind::CreditMemo => Some("InvcHead"),
        DocKind::JournalEntry => Some("GLJrnHed"),
        _ => None,
    };
    match header {
        Some(table) => {
            let row = body
                .pointer(&format!("/parameters/ds/{table}/0"))
                .ok_or_else(|| {
                    ErpError::permanent(ERP, format!("method answer lacks a {table} row"))
                })?;
            document_id(kind, row)
        }
        None => document_id(kind, body),
    }
}

/// First entity of an OData collection answer `{"value":[…]}`.
pub fn first_of_collection(kind: DocKind, body: &Value) -> Result<Option<ErpDocumentId>, ErpError> {
    let Some(values) = body.get("value").and_then(Value::as_array) else {
        return Err(ErpError::permanent(
            ERP,
            "lookup answer has no \"value\" array",
        ));
    };
    if values.len() > 1 {
        tracing::warn!(
            erp = ERP,
            count = values.len(),
            "several documents carry one reference; using the first"
        );
    }
    values.first().map(|v| document_id(kind, v)).transpose()
}

/// `CustNum` of the first customer in a lookup answer.
pub fn cust_num_of(body: &Value) -> Option<i64> {
    body.get("value")?
        .as_array()?
        .first()?
        .get("CustNum")?
        .as_i64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::epicor::config::EpicorJournalConfig;

    fn cfg() -> EpicorConfig {
        EpicorConfig {
            base_url: "https://erp.example.com/Kinetic".into(),
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
            customer_fields: crate::epicor::config::default_customer_fields(),
            timeout_ms: 1000,
            errors: Default::default(),
            groups: Default::default(),
            posting: Default::default(),
            payment_methods: crate::epicor::config::default_payment_methods(),
            gl_accounts: Default::default(),
            gate: Default::default(),
        }
    }

    fn commands() -> Vec<ErpCommand> {
        serde_json::from_str(include_str!("../../tests/fixtures/commands.json")).unwrap()
    }

    /// What the sandbox's `GetNewCashHeadType` answers for a PAYINV receipt in group G240514.
    fn new_cash_answer() -> Value {
        json!({"parameters": {"ds": {"CashHead": [{
            "Company": "EPIC06", "GroupID": "STRIPECR240514", "HeadNum": 0, "TranType": "PayInv",
            "TranDate": "2024-05-14", "FiscalYear": 2024, "FiscalPeriod": 5, "RowMod": "A"}]}}})
    }

    /// What the sandbox's `GetNewInvcHeadType` answers in group STRIPE240514.
    fn new_invoice_answer(credit: bool) -> Value {
        json!({"parameters": {"ds": {"InvcHead": [{
            "Company": "EPIC06", "GroupID": "STRIPE240514", "InvoiceNum": 0, "InvoiceType": "Mis",
            "CreditMemo": credit, "InvoiceDate": "2024-05-14", "FiscalYear": 2024,
            "FiscalPeriod": 5, "RowMod": "A"}]}}})
    }

    fn request_of(cmd: &ErpCommand) -> EpicorRequest {
        let new = match cmd.kind() {
            DocKind::Invoice => new_invoice_answer(false),
            DocKind::CreditMemo => new_invoice_answer(true),
            DocKind::JournalEntry => json!({"parameters": {"ds": {"GLJrnHed": [{
                "Company": "EPIC06", "GroupID": "STRIPEGL240514", "BookID": "MAIN",
                "FiscalYear": 2024, "FiscalPeriod": 5, "JournalCode": "GJ", "JournalNum": 0,
                "JEDate": "2024-05-14", "Posted": false, "RowMod": "A"}]}}}),
            _ => new_cash_answer(),
        };
        let new = get_new_request(cmd, "G").map(|_| &new);
        create_request(&cfg(), cmd, Some(42), new, &BTreeMap::new()).unwrap()
    }

    fn expected() -> Value {
        serde_json::from_str(include_str!("../../tests/fixtures/epicor_requests.json")).unwrap()
    }

    #[test]
    fn maps_every_fixture_command_to_the_expected_wire_request() {
        let exp = expected();
        for cmd in commands() {
            let key = cmd.reference().full();
            let req = request_of(&cmd);
            let got = json!({"path": req.path, "body": req.body});
            assert_eq!(got, exp[&key], "mapping of {key}");
        }
    }

    #[test]
    fn lookups_filter_on_the_reference_field() {
        for cmd in commands() {
            let req = find_request(&cfg(), cmd.reference()).unwrap();
            let filter = &req.query[0].1;
            let field = &cfg().ref_fields.for_kind(cmd.kind()).name.clone();
            assert!(filter.starts_with(&format!("{field} eq 'LB-")), "{filter}");
        }
    }

    #[test]
    fn email_lookup_escapes_quotes_and_rechecks_the_answer() {
        let req = customer_email_request("o'brien@example.com");
        assert_eq!(req.query[0].1, "EMailAddress eq 'o''brien@example.com'");
        let body = json!({"value": [
            {"CustNum": 7, "CustID": "OBRIEN", "EMailAddress": " O'Brien@Example.com"},
            {"CustNum": 8, "CustID": "OTHER", "EMailAddress": "other@example.com"}
        ]});
        let found = customers_by_email_of(&body, "o'brien@example.com").unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].erp_id.as_str(), "7");
        assert_eq!(found[0].customer_id, "OBRIEN");
    }

    #[test]
    fn cash_receipt_reference_fits_checkref() {
        let cmd = commands()
            .into_iter()
            .find(|c| c.kind() == DocKind::CashReceipt)
            .unwrap();
        let req = request_of(&cmd);
        let r = req.body.unwrap()["ds"]["CashHead"][0]["CheckRef"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(r.len() <= 30, "{r}");
    }

    #[test]
    fn gl_accounts_become_internal_accounts() {
        assert_eq!(internal_account(&cfg(), "1010-00"), "1010|00");
        assert_eq!(internal_account(&cfg(), "1010|00"), "1010|00");
        assert_eq!(internal_account(&cfg(), "4000"), "4000");
        let found = json!({"value": [{"GLAccount1": "4000|10"}]});
        assert_eq!(gl_account_of("4000-10", &found).unwrap(), "4000|10");
        assert!(gl_account_of("9", &json!({"value": []})).is_err());
    }

    #[test]
    fn ids_come_from_key_fields() {
        let id = document_id(DocKind::CashReceipt, &json!({"GroupID":"G1","HeadNum":7})).unwrap();
        assert_eq!(id.as_str(), "G1/7");
        assert!(document_id(DocKind::SalesOrder, &json!({})).is_err());
        assert!(customer_lookup_request("x' or 1 eq 1").is_err());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "text_fit_tests.rs"]
mod text_fit_tests;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "read_back_tests.rs"]
mod read_back_tests;
