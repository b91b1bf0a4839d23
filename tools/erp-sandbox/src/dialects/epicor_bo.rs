//! Epicor business-object methods: `POST {Service}/{Method}` with the method's inputs as a JSON
//! object (datasets as `{"Table": [rows…]}`), answered as `{"returnObj", "parameters"}`.
//!
//! The request has already passed the contract check (method exists, inputs known, row fields
//! known with their types). Business-rule failures come back the way Epicor sends them:
//! `UpdateExt` answers HTTP 200 with `errorsOccurred` and `BOUpdError` rows; other methods
//! fail with HTTP 500 and an `ErrorMessage` (an `Err` here with status 400, turned into that
//! shape by the dialect).

use super::epicor::{check_part_lines, customer_exists, db, open_period};
use super::{bad, text, Reject};
use crate::store::Store;
use crate::ErpKind;
use serde_json::{json, Map, Value};

const ERP: &str = ErpKind::Epicor.as_str();

/// What a method call runs with.
pub struct Ctx<'a> {
    pub st: &'a Store,
    pub company: &'a str,
    /// The authenticated user (groups are locked to their creator).
    pub user: &'a str,
    /// Search lag of new documents.
    pub lag: u64,
}

/// Run `method` of `service` on `body`; the answer on success.
pub fn call(ctx: &Ctx<'_>, service: &str, method: &str, body: &Value) -> Result<Value, Reject> {
    let (st, company, lag) = (ctx.st, ctx.company, ctx.lag);
    match (service, method) {
        ("Erp.BO.SalesOrderSvc", "UpdateExt") => sales_order_update_ext(st, company, body, lag),
        ("Erp.BO.CashGrpSvc", "GetNewCashGrp") => Ok(get_new_group(ctx, body, "CashGrp")),
        ("Erp.BO.CashGrpSvc", "Update") => update_group(ctx, body, CASH_GROUP),
        ("Erp.BO.CashRecSvc", "GetNewCashHeadType") => get_new_cash_head(ctx, body),
        ("Erp.BO.CashRecSvc", "UpdateExt") => cash_update_ext(ctx, body),
        ("Erp.PROC.CashRecPostSvc", "GetNewParameters") => Ok(method_answer(
            json!({"CashRecPostParam": [{"GroupID": "", "AutoAction": "", "AgentID": "", "RowMod": "A"}]}),
        )),
        ("Erp.PROC.CashRecPostSvc", "RunDirect") => post_cash_group(ctx, body),
        ("Erp.BO.InvcGrpSvc", "GetNewInvcGrp") => Ok(get_new_group(ctx, body, "InvcGrp")),
        ("Erp.BO.InvcGrpSvc", "Update") => update_group(ctx, body, INVOICE_GROUP),
        ("Erp.BO.InvcGrpSvc", "PostInvoices") => post_invoice_group(ctx, body),
        ("Erp.BO.ARInvoiceSvc", "GetNewInvcHeadType") => get_new_invoice_head(ctx, body),
        ("Erp.BO.ARInvoiceSvc", "UpdateExt") => invoice_update_ext(ctx, body),
        ("Erp.BO.GLJrnGrpSvc", "GetNewGLJrnGrp") => Ok(get_new_group(ctx, body, "GLJrnGrp")),
        ("Erp.BO.GLJrnGrpSvc", "Update") => update_group(ctx, body, JOURNAL_GROUP),
        ("Erp.BO.GLJrnGrpSvc", "PostGroupJournals") => post_journal_group(ctx, body),
        ("Erp.BO.GLJournalEntrySvc", "GetNewGlJrnHedTran") => get_new_journal_head(ctx, body),
        ("Erp.BO.GLJournalEntrySvc", "UpdateExt") => journal_update_ext(ctx, body),
        ("Erp.BO.ApplyCreditMemoSvc", "GetNewCashHead") => apply_memo_new(ctx, body),
        ("Erp.BO.ApplyCreditMemoSvc", "GetHdrDocumentInfo") => apply_memo_document(ctx, body),
        ("Erp.BO.ApplyCreditMemoSvc", "UpdateExt") => apply_memo_update_ext(ctx, body),
        _ => Err(bad(format!(
            "{service}.{method} is not available in this sandbox."
        ))),
    }
}

/// `{"returnObj": null, "parameters": {"ds": ds}}`.
fn method_answer(ds: Value) -> Value {
    json!({"returnObj": null, "parameters": {"ds": ds}})
}

/// A kind of group: its record entity and date field.
pub(crate) struct GroupSpec {
    pub table: &'static str,
    pub entity: &'static str,
    pub date_field: &'static str,
}

pub(crate) const CASH_GROUP: GroupSpec = GroupSpec {
    table: "CashGrp",
    entity: "CashGrps",
    date_field: "TranDate",
};

pub(crate) const INVOICE_GROUP: GroupSpec = GroupSpec {
    table: "InvcGrp",
    entity: "InvcGrps",
    date_field: "InvoiceDate",
};

pub(crate) const JOURNAL_GROUP: GroupSpec = GroupSpec {
    table: "GLJrnGrp",
    entity: "GLJrnGrps",
    date_field: "JEDate",
};

/// The sandbox's fiscal calendar: one period per calendar month.
fn fiscal_of(date: &str) -> Option<(i64, i64)> {
    let y = date.get(0..4)?.parse().ok()?;
    let m = date.get(5..7)?.parse().ok()?;
    Some((y, m))
}

/// `GetNew{Grp}`: the dataset with one defaulted group row added.
fn get_new_group(ctx: &Ctx<'_>, body: &Value, table: &str) -> Value {
    let mut ds = body.get("ds").cloned().unwrap_or_else(|| json!({}));
    let row = json!({"Company": ctx.company, "GroupID": "", "ActiveUserID": "", "RowMod": "A"});
    if let Some(o) = ds.as_object_mut() {
        match o.get_mut(table).and_then(Value::as_array_mut) {
            Some(rows) => rows.push(row),
            None => {
                o.insert(table.into(), json!([row]));
            }
        }
    }
    method_answer(ds)
}

/// `{Grp}Svc/Update` of a new group: id unique, date in an open period; the period is filled
/// from the date and the group is locked to the caller.
fn update_group(ctx: &Ctx<'_>, body: &Value, spec: GroupSpec) -> Result<Value, Reject> {
    let ds = body.get("ds").cloned().unwrap_or_else(|| json!({}));
    let rows = rows(&ds, spec.table);
    let [row] = rows.as_slice() else {
        return Err(bad(format!("Exactly one {} row is expected.", spec.table)));
    };
    let mut row = (*row).clone();
    let v = Value::Object(row.clone());
    if text(&v, "RowMod") != Some("A") {
        return Err(bad("Only new groups can be saved in this sandbox."));
    }
    let id = text(&v, "GroupID").ok_or_else(|| bad("Group ID is required."))?;
    if ctx.st.get_doc(ERP, spec.entity, id).map_err(db)?.is_some() {
        return Err(bad(format!("Group {id} already exists.")));
    }
    let date = text(&v, spec.date_field)
        .ok_or_else(|| bad(format!("{} is required.", spec.date_field)))?;
    open_period(ctx.st, date, "Group")?;
    if spec.table == "GLJrnGrp" {
        text(&v, "BookID").ok_or_else(|| bad("Book ID is required."))?;
        text(&v, "JournalCode").ok_or_else(|| bad("Journal Code is required."))?;
    }
    let (year, period) =
        fiscal_of(date).ok_or_else(|| bad(format!("{date} is not a valid date.")))?;
    row.insert("Company".into(), json!(ctx.company));
    row.insert("FiscalYear".into(), json!(year));
    row.insert("FiscalPeriod".into(), json!(period));
    row.insert("ActiveUserID".into(), json!(ctx.user));
    row.insert("CreatedBy".into(), json!(ctx.user));
    // Every Epicor row carries a `SysRowID` (guid; CashGrpSvc/InvcGrpSvc/GLJrnGrpSvc schemas):
    // a group deleted by posting and created again under the same id is a different row.
    row.insert("SysRowID".into(), json!(uuid::Uuid::new_v4().to_string()));
    row.insert("RowMod".into(), json!(""));
    let id = id.to_owned();
    ctx.st
        .put_record(ERP, spec.entity, &id, &Value::Object(row.clone()))
        .map_err(db)?;
    Ok(method_answer(json!({ spec.table: [row] })))
}

/// The group `id`, usable by the caller: it exists and is not held by another user.
fn usable_group(ctx: &Ctx<'_>, spec: &GroupSpec, id: &str) -> Result<Value, String> {
    let g = ctx
        .st
        .get_doc(ERP, spec.entity, id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("Group {id} not found."))?;
    match text(&g, "ActiveUserID") {
        Some(holder) if !holder.eq_ignore_ascii_case(ctx.user) => {
            Err(format!("Group {id} is in use by {holder}."))
        }
        _ => Ok(g),
    }
}

/// `CashRecSvc/GetNewCashHeadType(ds, groupID, tranType)`: a new receipt header of the type,
/// with the group's date, fiscal period and bank account.
fn get_new_cash_head(ctx: &Ctx<'_>, body: &Value) -> Result<Value, Reject> {
    let group_id = text(body, "groupID").ok_or_else(|| bad("Group ID is required."))?;
    let group = usable_group(ctx, &CASH_GROUP, group_id).map_err(bad)?;
    let tran_type = match text(body, "tranType") {
        Some("PAYINV") => "PayInv",
        Some("DEPOSIT") => "PrePay",
        Some("MISPAY") => "MisPay",
        other => return Err(bad(format!("Invalid transaction type {other:?}."))),
    };
    let mut ds = body.get("ds").cloned().unwrap_or_else(|| json!({}));
    let mut head = json!({
        "Company": ctx.company, "GroupID": group_id, "HeadNum": 0, "TranType": tran_type,
        "TranDate": group.get("TranDate"), "FiscalYear": group.get("FiscalYear"),
        "FiscalPeriod": group.get("FiscalPeriod"), "Posted": false, "RowMod": "A",
    });
    if let (Some(bank), Some(o)) = (text(&group, "BankAcctID"), head.as_object_mut()) {
        o.insert("BankAcctID".into(), json!(bank));
    }
    if let Some(o) = ds.as_object_mut() {
        match o.get_mut("CashHead").and_then(Value::as_array_mut) {
            Some(rows) => rows.push(head),
            None => {
                o.insert("CashHead".into(), json!([head]));
            }
        }
    }
    Ok(method_answer(ds))
}

/// `CashRecSvc/UpdateExt` creating one receipt (`CashHead`) with its applications (`CashDtl`).
fn cash_update_ext(ctx: &Ctx<'_>, body: &Value) -> Result<Value, Reject> {
    let st = ctx.st;
    let ds = body.get("ds").cloned().unwrap_or_else(|| json!({}));
    let fail =
        |table: &str, msg: String| Ok(update_ext_answer(ds.clone(), vec![upd_error(table, &msg)]));
    let heads = rows(&ds, "CashHead");
    let [head] = heads.as_slice() else {
        return fail(
            "CashHead",
            "The sandbox takes exactly one CashHead row per UpdateExt call.".into(),
        );
    };
    let hv = Value::Object((*head).clone());
    if text(&hv, "RowMod") != Some("A")
        || hv.get("HeadNum").and_then(Value::as_i64).unwrap_or(0) != 0
    {
        return fail(
            "CashHead",
            "Only new receipts (RowMod \"A\", HeadNum 0) are supported.".into(),
        );
    }
    if text(&hv, "Company") != Some(ctx.company) {
        return fail(
            "CashHead",
            format!("Company is required and must be {}.", ctx.company),
        );
    }
    let Some(group_id) = text(&hv, "GroupID") else {
        return fail("CashHead", "Group ID is required.".into());
    };
    let group = match usable_group(ctx, &CASH_GROUP, group_id) {
        Ok(g) => g,
        Err(m) => return fail("CashHead", m),
    };
    let tran_type = text(&hv, "TranType").unwrap_or("");
    let date = text(&hv, "TranDate").unwrap_or("");
    let group_date = text(&group, "TranDate").unwrap_or("");
    if fiscal_of(date).is_none() || fiscal_of(date) != fiscal_of(group_date) {
        return fail(
            "CashHead",
            format!("Transaction date {date} is not in the period of group {group_id}."),
        );
    }
    for f in ["FiscalYear", "FiscalPeriod"] {
        if let Some(x) = hv.get(f).filter(|x| !x.is_null()) {
            if Some(x) != group.get(f) {
                return fail("CashHead", format!("{f} must be the group's."));
            }
        }
    }
    if text(&hv, "CheckRef").is_none() {
        return fail("CashHead", "Reference (CheckRef) is required.".into());
    }
    let amount = match super::decimal(&hv, "DocTranAmt") {
        Ok(Some(a)) if a > rust_decimal::Decimal::ZERO => a,
        Ok(_) => {
            return fail(
                "CashHead",
                "Receipt amount must be greater than zero.".into(),
            )
        }
        Err(m) => return fail("CashHead", m),
    };
    let details = rows(&ds, "CashDtl");
    match tran_type {
        "PayInv" | "PrePay" => {
            if let Err((_, m)) = customer_exists(st, hv.get("CustNum").and_then(Value::as_i64)) {
                return fail("CashHead", m);
            }
            let pm = hv.get("PMUID").and_then(Value::as_i64).unwrap_or(0);
            if !st
                .has_master(ERP, "paymethod", &pm.to_string())
                .map_err(db)?
            {
                return fail("CashHead", format!("Invalid Payment Method {pm}."));
            }
        }
        "MisPay" if details.is_empty() => {}
        "MisPay" => {
            return fail(
                "CashDtl",
                "Miscellaneous receipts are not applied to invoices.".into(),
            )
        }
        other => {
            return fail(
                "CashHead",
                format!("Receipt type {other} cannot be entered here."),
            )
        }
    }
    if tran_type == "PrePay" {
        let order = hv.get("OrderNum").and_then(Value::as_i64).unwrap_or(0);
        if st
            .get_doc(ERP, "SalesOrders", &order.to_string())
            .map_err(db)?
            .is_none()
        {
            return fail("CashHead", format!("Sales order {order} not found."));
        }
        if !details.is_empty() {
            return fail("CashDtl", "Deposits are not applied to invoices.".into());
        }
    }
    let mut applied = rust_decimal::Decimal::ZERO;
    for d in &details {
        let dv = Value::Object((*d).clone());
        let inv = dv.get("InvoiceNum").and_then(Value::as_i64).unwrap_or(0);
        let Some(invoice) = st
            .get_doc(ERP, "ARInvoices", &inv.to_string())
            .map_err(db)?
        else {
            return fail("CashDtl", format!("Invoice {inv} not found."));
        };
        if invoice.get("CreditMemo").and_then(Value::as_bool) == Some(true) {
            return fail("CashDtl", format!("Invoice {inv} is a credit memo."));
        }
        // Only posted invoices are open receivables.
        if invoice.get("Posted").and_then(Value::as_bool) != Some(true) {
            return fail("CashDtl", format!("Invoice {inv} is not posted."));
        }
        match super::decimal(&dv, "DocTranAmt") {
            Ok(Some(a)) if a > rust_decimal::Decimal::ZERO => applied += a,
            Ok(_) => {
                return fail(
                    "CashDtl",
                    "Applied amount must be greater than zero.".into(),
                )
            }
            Err(m) => return fail("CashDtl", m),
        }
    }
    if applied > amount {
        return fail(
            "CashDtl",
            format!("Applied {applied} exceeds the receipt amount {amount}."),
        );
    }
    let n = st.next("epicor.HeadNum", 1).map_err(db)?;
    let mut head_out = (*head).clone();
    head_out.insert("HeadNum".into(), json!(n));
    head_out.insert("Posted".into(), json!(false));
    head_out.insert("RowMod".into(), json!(""));
    let lines_out: Vec<Value> = details
        .iter()
        .map(|d| {
            let mut d = (*d).clone();
            d.insert("GroupID".into(), json!(group_id));
            d.insert("HeadNum".into(), json!(n));
            d.insert("TranType".into(), json!(tran_type));
            d.insert("RowMod".into(), json!(""));
            Value::Object(d)
        })
        .collect();
    let mut stored = head_out.clone();
    stored.insert("CashDtls".into(), Value::Array(lines_out.clone()));
    st.insert_doc(
        ERP,
        "CashRecs",
        &format!("{group_id}/{n}"),
        &Value::Object(stored),
        ctx.lag,
    )
    .map_err(db)?;
    Ok(update_ext_answer(
        json!({"CashHead": [head_out], "CashDtl": lines_out}),
        vec![],
    ))
}

/// `CashRecPostSvc/RunDirect`: post every receipt of the group and remove the group (Epicor
/// deletes a cash group once it is posted).
fn post_cash_group(ctx: &Ctx<'_>, body: &Value) -> Result<Value, Reject> {
    let ds = body.get("ds").cloned().unwrap_or_else(|| json!({}));
    let params = rows(&ds, "CashRecPostParam");
    let group_id = params
        .first()
        .and_then(|p| p.get("GroupID"))
        .and_then(Value::as_str)
        .filter(|g| !g.is_empty())
        .ok_or_else(|| bad("Group ID is required."))?
        .to_owned();
    usable_group(ctx, &CASH_GROUP, &group_id).map_err(bad)?;
    for (entity, id, mut doc) in ctx.st.documents(ERP).map_err(db)? {
        if entity == "CashRecs" && text(&doc, "GroupID") == Some(group_id.as_str()) {
            if let Some(o) = doc.as_object_mut() {
                o.insert("Posted".into(), json!(true));
            }
            ctx.st.put_record(ERP, &entity, &id, &doc).map_err(db)?;
        }
    }
    ctx.st
        .delete_record(ERP, CASH_GROUP.entity, &group_id)
        .map_err(db)?;
    Ok(method_answer(ds))
}

/// One `BOUpdError` row.
fn upd_error(table: &str, text: &str) -> Value {
    json!({
        "TableName": table,
        "ErrorLevel": "Error",
        "ErrorType": "Exception",
        "ErrorText": text,
        "ErrorSysRowID": "00000000-0000-0000-0000-000000000000",
        "SysRowID": "00000000-0000-0000-0000-000000000000",
        "RowMod": "",
    })
}

fn update_ext_answer(ds: Value, errors: Vec<Value>) -> Value {
    json!({
        "returnObj": {"BOUpdError": errors},
        "parameters": {"ds": ds, "errorsOccurred": !errors.is_empty()},
    })
}

fn rows<'a>(ds: &'a Value, table: &str) -> Vec<&'a Map<String, Value>> {
    ds.get(table)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .collect()
}

/// `SalesOrderSvc/UpdateExt` creating one order: one `OrderHed` row and its `OrderDtl` rows, all
/// with `RowMod` "A" and `OrderNum` 0 (or the header's). Header and lines commit together or,
/// with `rollbackParentOnChildError`, not at all.
fn sales_order_update_ext(
    st: &Store,
    company: &str,
    body: &Value,
    lag: u64,
) -> Result<Value, Reject> {
    let ds = body.get("ds").cloned().unwrap_or_else(|| json!({}));
    let fail =
        |table: &str, msg: String| Ok(update_ext_answer(ds.clone(), vec![upd_error(table, &msg)]));
    let heads = rows(&ds, "OrderHed");
    let [head] = heads.as_slice() else {
        return fail(
            "OrderHed",
            "The sandbox takes exactly one OrderHed row per UpdateExt call.".into(),
        );
    };
    let hv = Value::Object((*head).clone());
    if text(&hv, "RowMod") != Some("A") {
        return fail(
            "OrderHed",
            "Only new orders (RowMod \"A\") are supported.".into(),
        );
    }
    if text(&hv, "Company") != Some(company) {
        return fail(
            "OrderHed",
            format!("Company is required and must be {company}."),
        );
    }
    if hv.get("OrderNum").and_then(Value::as_i64).unwrap_or(0) != 0 {
        return fail("OrderHed", "A new order is sent with OrderNum 0.".into());
    }
    let checked = customer_exists(st, hv.get("CustNum").and_then(Value::as_i64)).and_then(|_| {
        let date = text(&hv, "OrderDate").ok_or_else(|| bad("Order Date is required."))?;
        open_period(st, date, "Order")
    });
    if let Err((_, msg)) = checked {
        return fail("OrderHed", msg);
    }
    let lines = rows(&ds, "OrderDtl");
    let line_values: Vec<Value> = lines.iter().map(|l| Value::Object((*l).clone())).collect();
    for l in &line_values {
        if text(l, "RowMod") != Some("A") {
            return fail(
                "OrderDtl",
                "Only new lines (RowMod \"A\") are supported.".into(),
            );
        }
        if l.get("OrderNum").and_then(Value::as_i64).unwrap_or(0) != 0 {
            return fail("OrderDtl", "Lines of a new order carry OrderNum 0.".into());
        }
    }
    let refs: Vec<&Value> = line_values.iter().collect();
    if let Err((_, msg)) = check_part_lines(st, &refs, "SellingQuantity") {
        return fail("OrderDtl", msg);
    }
    let n = st.next("epicor.OrderNum", 5001).map_err(db)?;
    let mut head_out = (*head).clone();
    head_out.insert("OrderNum".into(), json!(n));
    head_out.insert("RowMod".into(), json!(""));
    let mut lines_out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let mut l = (*l).clone();
        let line = l
            .get("OrderLine")
            .and_then(Value::as_i64)
            .filter(|x| *x > 0)
            .unwrap_or(i as i64 + 1);
        l.insert("OrderNum".into(), json!(n));
        l.insert("OrderLine".into(), json!(line));
        l.insert("RowMod".into(), json!(""));
        lines_out.push(Value::Object(l));
    }
    // The lines are kept inside the order's document under the navigation property
    // (`OrderDtls`, what `$expand` would show): one document, one audit entry per order.
    let mut stored = head_out.clone();
    stored.insert("OrderDtls".into(), Value::Array(lines_out.clone()));
    st.insert_doc(
        ERP,
        "SalesOrders",
        &n.to_string(),
        &Value::Object(stored),
        lag,
    )
    .map_err(db)?;
    Ok(update_ext_answer(
        json!({"OrderHed": [head_out], "OrderDtl": lines_out}),
        vec![],
    ))
}

/// Append `row` to table `table` of dataset `ds`.
fn push_row(ds: &mut Value, table: &str, row: Value) {
    if let Some(o) = ds.as_object_mut() {
        match o.get_mut(table).and_then(Value::as_array_mut) {
            Some(rows) => rows.push(row),
            None => {
                o.insert(table.into(), json!([row]));
            }
        }
    }
}

/// `ARInvoiceSvc/GetNewInvcHeadType(GroupID, InvoiceType, ds)`: a new miscellaneous invoice or
/// credit memo in the group, with the group's date and fiscal period.
fn get_new_invoice_head(ctx: &Ctx<'_>, body: &Value) -> Result<Value, Reject> {
    let group_id = text(body, "GroupID").ok_or_else(|| bad("Group ID is required."))?;
    let group = usable_group(ctx, &INVOICE_GROUP, group_id).map_err(bad)?;
    let credit = match text(body, "InvoiceType") {
        Some("MISC-BILL") => false,
        Some("CREDIT-MEMO") => true,
        other => {
            return Err(bad(format!(
                "Invoice type {other:?} is not available in this sandbox."
            )))
        }
    };
    let mut ds = body.get("ds").cloned().unwrap_or_else(|| json!({}));
    push_row(
        &mut ds,
        "InvcHead",
        json!({
            "Company": ctx.company, "GroupID": group_id, "InvoiceNum": 0, "InvoiceType": "Mis",
            "CreditMemo": credit, "InvoiceDate": group.get("InvoiceDate"),
            "FiscalYear": group.get("FiscalYear"), "FiscalPeriod": group.get("FiscalPeriod"),
            "Posted": false, "RowMod": "A",
        }),
    );
    Ok(method_answer(ds))
}

/// `ARInvoiceSvc/UpdateExt` creating one invoice or credit memo with its lines.
fn invoice_update_ext(ctx: &Ctx<'_>, body: &Value) -> Result<Value, Reject> {
    let st = ctx.st;
    let ds = body.get("ds").cloned().unwrap_or_else(|| json!({}));
    let fail =
        |table: &str, msg: String| Ok(update_ext_answer(ds.clone(), vec![upd_error(table, &msg)]));
    let heads = rows(&ds, "InvcHead");
    let [head] = heads.as_slice() else {
        return fail(
            "InvcHead",
            "The sandbox takes exactly one InvcHead row per UpdateExt call.".into(),
        );
    };
    let hv = Value::Object((*head).clone());
    if text(&hv, "RowMod") != Some("A")
        || hv.get("InvoiceNum").and_then(Value::as_i64).unwrap_or(0) != 0
    {
        return fail(
            "InvcHead",
            "Only new invoices (RowMod \"A\", InvoiceNum 0) are supported.".into(),
        );
    }
    if text(&hv, "Company") != Some(ctx.company) {
        return fail(
            "InvcHead",
            format!("Company is required and must be {}.", ctx.company),
        );
    }
    // The group is set by GetNewInvcHeadType; an invoice without one was not created that way.
    let Some(group_id) = text(&hv, "GroupID") else {
        return fail(
            "InvcHead",
            "Group ID is required (create the invoice with GetNewInvcHeadType).".into(),
        );
    };
    let group = match usable_group(ctx, &INVOICE_GROUP, group_id) {
        Ok(g) => g,
        Err(m) => return fail("InvcHead", m),
    };
    let date = text(&hv, "InvoiceDate").unwrap_or("");
    if fiscal_of(date).is_none()
        || fiscal_of(date) != fiscal_of(text(&group, "InvoiceDate").unwrap_or(""))
    {
        return fail(
            "InvcHead",
            format!("Invoice date {date} is not in the period of group {group_id}."),
        );
    }
    if let Err((_, m)) = open_period(st, date, "Invoice") {
        return fail("InvcHead", m);
    }
    for f in ["FiscalYear", "FiscalPeriod"] {
        if hv.get(f).filter(|x| !x.is_null()) != group.get(f).filter(|x| !x.is_null()) {
            return fail("InvcHead", format!("{f} must be the group's."));
        }
    }
    if text(&hv, "InvoiceType") != Some("Mis") {
        return fail(
            "InvcHead",
            "Only miscellaneous invoices can be entered here.".into(),
        );
    }
    if let Err((_, m)) = customer_exists(st, hv.get("CustNum").and_then(Value::as_i64)) {
        return fail("InvcHead", m);
    }
    let credit = hv
        .get("CreditMemo")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if let Some(r) = hv.get("InvoiceRef").and_then(Value::as_i64) {
        if !credit {
            return fail(
                "InvcHead",
                "Only credit memos relate to another invoice.".into(),
            );
        }
        match st.get_doc(ERP, "ARInvoices", &r.to_string()).map_err(db)? {
            Some(orig) if orig.get("CreditMemo").and_then(Value::as_bool) != Some(true) => {}
            _ => return fail("InvcHead", format!("Invoice {r} not found.")),
        }
    }
    let lines = rows(&ds, "InvcDtl");
    let line_values: Vec<Value> = lines.iter().map(|l| Value::Object((*l).clone())).collect();
    if line_values.is_empty() {
        return fail("InvcDtl", "At least one invoice line is required.".into());
    }
    for l in &line_values {
        if text(l, "RowMod") != Some("A")
            || l.get("InvoiceNum").and_then(Value::as_i64).unwrap_or(0) != 0
        {
            return fail(
                "InvcDtl",
                "Lines of a new invoice carry RowMod \"A\" and InvoiceNum 0.".into(),
            );
        }
    }
    let refs: Vec<&Value> = line_values.iter().collect();
    if let Err((_, m)) = check_part_lines(st, &refs, "SellingShipQty") {
        return fail("InvcDtl", m);
    }
    let n = st.next("epicor.InvoiceNum", 1001).map_err(db)?;
    let mut head_out = (*head).clone();
    head_out.insert("InvoiceNum".into(), json!(n));
    head_out.insert("Posted".into(), json!(false));
    head_out.insert("RowMod".into(), json!(""));
    let lines_out: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mut l = (*l).clone();
            let line = l
                .get("InvoiceLine")
                .and_then(Value::as_i64)
                .filter(|x| *x > 0)
                .unwrap_or(i as i64 + 1);
            l.insert("InvoiceNum".into(), json!(n));
            l.insert("InvoiceLine".into(), json!(line));
            l.insert("RowMod".into(), json!(""));
            Value::Object(l)
        })
        .collect();
    let mut stored = head_out.clone();
    stored.insert("InvcDtls".into(), Value::Array(lines_out.clone()));
    st.insert_doc(
        ERP,
        "ARInvoices",
        &n.to_string(),
        &Value::Object(stored),
        ctx.lag,
    )
    .map_err(db)?;
    Ok(update_ext_answer(
        json!({"InvcHead": [head_out], "InvcDtl": lines_out}),
        vec![],
    ))
}

/// `InvcGrpSvc/PostInvoices(groupID)`: post the group's invoices (they become open AR) and
/// remove the group.
fn post_invoice_group(ctx: &Ctx<'_>, body: &Value) -> Result<Value, Reject> {
    let group_id = text(body, "groupID").ok_or_else(|| bad("Group ID is required."))?;
    usable_group(ctx, &INVOICE_GROUP, group_id).map_err(bad)?;
    let mut posted = Vec::new();
    for (entity, id, mut doc) in ctx.st.documents(ERP).map_err(db)? {
        if entity == "ARInvoices" && text(&doc, "GroupID") == Some(group_id) {
            let credit = doc.get("CreditMemo").and_then(Value::as_bool) == Some(true);
            if let Some(o) = doc.as_object_mut() {
                o.insert("Posted".into(), json!(true));
                o.insert("OpenInvoice".into(), json!(!credit));
            }
            ctx.st.put_record(ERP, &entity, &id, &doc).map_err(db)?;
            posted.push(id);
        }
    }
    ctx.st
        .delete_record(ERP, INVOICE_GROUP.entity, group_id)
        .map_err(db)?;
    Ok(json!({"returnObj": null, "parameters": {
        "invoicesGenerated": posted.join(","), "errorMessage": "", "legalNumberMessage": ""}}))
}

/// `GLJournalEntrySvc/GetNewGlJrnHedTran(ds, GroupID)`: a new journal header defaulted from the
/// group (book, fiscal year and period, journal code, date).
fn get_new_journal_head(ctx: &Ctx<'_>, body: &Value) -> Result<Value, Reject> {
    let group_id = text(body, "GroupID").ok_or_else(|| bad("Group ID is required."))?;
    let group = usable_group(ctx, &JOURNAL_GROUP, group_id).map_err(bad)?;
    let mut ds = body.get("ds").cloned().unwrap_or_else(|| json!({}));
    push_row(
        &mut ds,
        "GLJrnHed",
        json!({
            "Company": ctx.company, "GroupID": group_id, "BookID": group.get("BookID"),
            "FiscalYear": group.get("FiscalYear"), "FiscalPeriod": group.get("FiscalPeriod"),
            "JournalCode": group.get("JournalCode"), "JournalNum": 0,
            "JEDate": group.get("JEDate"), "Posted": false, "RowMod": "A",
        }),
    );
    Ok(method_answer(ds))
}

/// `GLJournalEntrySvc/UpdateExt` creating one journal with its manual lines.
fn journal_update_ext(ctx: &Ctx<'_>, body: &Value) -> Result<Value, Reject> {
    let st = ctx.st;
    let ds = body.get("ds").cloned().unwrap_or_else(|| json!({}));
    let fail =
        |table: &str, msg: String| Ok(update_ext_answer(ds.clone(), vec![upd_error(table, &msg)]));
    let heads = rows(&ds, "GLJrnHed");
    let [head] = heads.as_slice() else {
        return fail(
            "GLJrnHed",
            "The sandbox takes exactly one GLJrnHed row per UpdateExt call.".into(),
        );
    };
    let hv = Value::Object((*head).clone());
    if text(&hv, "RowMod") != Some("A")
        || hv.get("JournalNum").and_then(Value::as_i64).unwrap_or(0) != 0
    {
        return fail(
            "GLJrnHed",
            "Only new journals (RowMod \"A\", JournalNum 0) are supported.".into(),
        );
    }
    if text(&hv, "Company") != Some(ctx.company) {
        return fail(
            "GLJrnHed",
            format!("Company is required and must be {}.", ctx.company),
        );
    }
    let Some(group_id) = text(&hv, "GroupID") else {
        return fail(
            "GLJrnHed",
            "Group ID is required (create the journal with GetNewGlJrnHedTran).".into(),
        );
    };
    let group = match usable_group(ctx, &JOURNAL_GROUP, group_id) {
        Ok(g) => g,
        Err(m) => return fail("GLJrnHed", m),
    };
    let date = text(&hv, "JEDate").unwrap_or("");
    if fiscal_of(date).is_none()
        || fiscal_of(date) != fiscal_of(text(&group, "JEDate").unwrap_or(""))
    {
        return fail(
            "GLJrnHed",
            format!("Journal date {date} is not in the period of group {group_id}."),
        );
    }
    if let Err((_, m)) = open_period(st, date, "Journal") {
        return fail("GLJrnHed", m);
    }
    for f in ["BookID", "FiscalYear", "FiscalPeriod", "JournalCode"] {
        if hv.get(f) != group.get(f) {
            return fail("GLJrnHed", format!("{f} must be the group's."));
        }
    }
    let lines = rows(&ds, "GLJrnDtlMnl");
    if lines.is_empty() {
        return fail(
            "GLJrnDtlMnl",
            "At least one journal line is required.".into(),
        );
    }
    let (mut dr, mut cr, mut net) = (
        rust_decimal::Decimal::ZERO,
        rust_decimal::Decimal::ZERO,
        rust_decimal::Decimal::ZERO,
    );
    for l in &lines {
        let lv = Value::Object((*l).clone());
        if text(&lv, "RowMod") != Some("A") {
            return fail(
                "GLJrnDtlMnl",
                "Only new lines (RowMod \"A\") are supported.".into(),
            );
        }
        let acct = text(&lv, "GLAccount").unwrap_or("");
        if !acct.contains('|') && acct.contains('-') {
            return fail(
                "GLJrnDtlMnl",
                format!("GL Account {acct} is not valid: GLAccount takes the internal account (segments joined by '|'), not the display format."),
            );
        }
        if st.get_doc(ERP, "GLAccounts", acct).map_err(db)?.is_none() {
            return fail("GLJrnDtlMnl", format!("GL Account {acct} is not valid."));
        }
        for (f, total) in [
            ("TotDebit", &mut dr),
            ("TotCredit", &mut cr),
            ("TransAmt", &mut net),
        ] {
            match super::decimal(&lv, f) {
                Ok(v) => *total += v.unwrap_or_default(),
                Err(m) => return fail("GLJrnDtlMnl", m),
            }
        }
    }
    if dr != cr || !net.is_zero() {
        return fail(
            "GLJrnDtlMnl",
            format!("Journal is out of balance. Debits {dr} Credits {cr}."),
        );
    }
    let n = st.next("epicor.JournalNum", 1).map_err(db)?;
    let mut head_out = (*head).clone();
    head_out.insert("JournalNum".into(), json!(n));
    head_out.insert("Posted".into(), json!(false));
    head_out.insert("RowMod".into(), json!(""));
    let lines_out: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mut l = (*l).clone();
            l.insert("JournalNum".into(), json!(n));
            l.insert("JournalLine".into(), json!(i + 1));
            for f in [
                "GroupID",
                "BookID",
                "FiscalYear",
                "FiscalPeriod",
                "JournalCode",
                "JEDate",
            ] {
                if let Some(x) = head_out.get(f) {
                    l.insert(f.into(), x.clone());
                }
            }
            l.insert("RowMod".into(), json!(""));
            Value::Object(l)
        })
        .collect();
    let id = format!(
        "{}/{}/{}/{n}",
        text(&hv, "BookID").unwrap_or(""),
        hv.get("FiscalYear").and_then(Value::as_i64).unwrap_or(0),
        text(&hv, "JournalCode").unwrap_or("")
    );
    let mut stored = head_out.clone();
    stored.insert("GLJrnDtlMnls".into(), Value::Array(lines_out.clone()));
    st.insert_doc(
        ERP,
        "GLJournalEntries",
        &id,
        &Value::Object(stored),
        ctx.lag,
    )
    .map_err(db)?;
    Ok(update_ext_answer(
        json!({"GLJrnHed": [head_out], "GLJrnDtlMnl": lines_out}),
        vec![],
    ))
}

/// `GLJrnGrpSvc/PostGroupJournals(postGroupID)`: post the group's journals and remove the group
/// (Epicor deletes the group when all its journals post).
fn post_journal_group(ctx: &Ctx<'_>, body: &Value) -> Result<Value, Reject> {
    let group_id = text(body, "postGroupID").ok_or_else(|| bad("Group ID is required."))?;
    usable_group(ctx, &JOURNAL_GROUP, group_id).map_err(bad)?;
    for (entity, id, mut doc) in ctx.st.documents(ERP).map_err(db)? {
        if entity == "GLJournalEntries" && text(&doc, "GroupID") == Some(group_id) {
            if let Some(o) = doc.as_object_mut() {
                o.insert("Posted".into(), json!(true));
            }
            ctx.st.put_record(ERP, &entity, &id, &doc).map_err(db)?;
        }
    }
    ctx.st
        .delete_record(ERP, JOURNAL_GROUP.entity, group_id)
        .map_err(db)?;
    Ok(json!({"returnObj": null, "parameters": {"NotAllPostedMessage": ""}}))
}

/// `ApplyCreditMemoSvc/GetNewCashHead(ds, groupID)`: a `CMemo` header in the cash group.
fn apply_memo_new(ctx: &Ctx<'_>, body: &Value) -> Result<Value, Reject> {
    let group_id = text(body, "groupID").ok_or_else(|| bad("Group ID is required."))?;
    let group = usable_group(ctx, &CASH_GROUP, group_id).map_err(bad)?;
    let mut ds = body.get("ds").cloned().unwrap_or_else(|| json!({}));
    push_row(
        &mut ds,
        "CashHead",
        json!({
            "Company": ctx.company, "GroupID": group_id, "HeadNum": 0, "TranType": "CMemo",
            "TranDate": group.get("TranDate"), "FiscalYear": group.get("FiscalYear"),
            "FiscalPeriod": group.get("FiscalPeriod"), "RowMod": "A",
        }),
    );
    Ok(method_answer(ds))
}

/// The total of an invoice or memo document (its lines' quantity × price).
fn document_total(doc: &Value) -> rust_decimal::Decimal {
    doc.get("InvcDtls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|l| {
            let q = super::decimal(l, "SellingShipQty").ok().flatten()?;
            let p = super::decimal(l, "DocUnitPrice").ok().flatten()?;
            Some(q * p)
        })
        .sum()
}

/// `ApplyCreditMemoSvc/GetHdrDocumentInfo(documentNum, ds)`: the header defaulted from a posted
/// credit memo.
fn apply_memo_document(ctx: &Ctx<'_>, body: &Value) -> Result<Value, Reject> {
    let n = body
        .get("documentNum")
        .and_then(Value::as_i64)
        .ok_or_else(|| bad("Document number is required."))?;
    let memo = ctx
        .st
        .get_doc(ERP, "ARInvoices", &n.to_string())
        .map_err(db)?
        .filter(|d| d.get("CreditMemo").and_then(Value::as_bool) == Some(true))
        .ok_or_else(|| bad(format!("Credit memo {n} not found.")))?;
    if memo.get("Posted").and_then(Value::as_bool) != Some(true) {
        return Err(bad(format!("Credit memo {n} is not posted.")));
    }
    let mut ds = body.get("ds").cloned().unwrap_or_else(|| json!({}));
    let head = ds
        .get_mut("CashHead")
        .and_then(Value::as_array_mut)
        .and_then(|r| r.last_mut())
        .and_then(Value::as_object_mut)
        .ok_or_else(|| bad("Call GetNewCashHead first."))?;
    head.insert("CreditMemoNum".into(), json!(n));
    head.insert(
        "CustNum".into(),
        memo.get("CustNum").cloned().unwrap_or(Value::Null),
    );
    head.insert(
        "CurrencyCode".into(),
        memo.get("CurrencyCode").cloned().unwrap_or(Value::Null),
    );
    head.insert(
        "DocTranAmt".into(),
        json!(document_total(&memo).to_string()),
    );
    Ok(method_answer(ds))
}

/// `ApplyCreditMemoSvc/UpdateExt`: apply a posted memo to a posted invoice of the same customer,
/// for at most the memo's amount. Kept as a record (not a new document in the audit log).
fn apply_memo_update_ext(ctx: &Ctx<'_>, body: &Value) -> Result<Value, Reject> {
    let st = ctx.st;
    let ds = body.get("ds").cloned().unwrap_or_else(|| json!({}));
    let fail =
        |table: &str, msg: String| Ok(update_ext_answer(ds.clone(), vec![upd_error(table, &msg)]));
    let heads = rows(&ds, "CashHead");
    let [head] = heads.as_slice() else {
        return fail("CashHead", "Exactly one CashHead row is expected.".into());
    };
    let hv = Value::Object((*head).clone());
    if text(&hv, "TranType") != Some("CMemo") {
        return fail(
            "CashHead",
            "Credit memo applications have TranType CMemo.".into(),
        );
    }
    let Some(group_id) = text(&hv, "GroupID") else {
        return fail("CashHead", "Group ID is required.".into());
    };
    if let Err(m) = usable_group(ctx, &CASH_GROUP, group_id) {
        return fail("CashHead", m);
    }
    let memo_num = hv.get("CreditMemoNum").and_then(Value::as_i64).unwrap_or(0);
    let Some(memo) = st
        .get_doc(ERP, "ARInvoices", &memo_num.to_string())
        .map_err(db)?
        .filter(|d| d.get("Posted").and_then(Value::as_bool) == Some(true))
    else {
        return fail("CashHead", format!("Credit memo {memo_num} is not posted."));
    };
    let available = document_total(&memo);
    let mut applied = rust_decimal::Decimal::ZERO;
    let details = rows(&ds, "CashDtl");
    for d in &details {
        let dv = Value::Object((*d).clone());
        let inv = dv.get("InvoiceNum").and_then(Value::as_i64).unwrap_or(0);
        let Some(invoice) = st
            .get_doc(ERP, "ARInvoices", &inv.to_string())
            .map_err(db)?
        else {
            return fail("CashDtl", format!("Invoice {inv} not found."));
        };
        if invoice.get("CreditMemo").and_then(Value::as_bool) == Some(true)
            || invoice.get("Posted").and_then(Value::as_bool) != Some(true)
        {
            return fail("CashDtl", format!("Invoice {inv} is not a posted invoice."));
        }
        if invoice.get("CustNum") != memo.get("CustNum") {
            return fail(
                "CashDtl",
                format!("Invoice {inv} belongs to another customer."),
            );
        }
        match super::decimal(&dv, "DocTranAmt") {
            Ok(Some(a)) if a > rust_decimal::Decimal::ZERO => applied += a,
            Ok(_) => {
                return fail(
                    "CashDtl",
                    "Applied amount must be greater than zero.".into(),
                )
            }
            Err(m) => return fail("CashDtl", m),
        }
    }
    if details.is_empty() || applied > available {
        return fail(
            "CashDtl",
            format!("Applied {applied} must be positive and at most the memo's {available}."),
        );
    }
    let n = st.next("epicor.HeadNum", 1).map_err(db)?;
    let mut stored = (*head).clone();
    stored.insert("HeadNum".into(), json!(n));
    stored.insert("RowMod".into(), json!(""));
    stored.insert(
        "CashDtls".into(),
        Value::Array(
            details
                .iter()
                .map(|d| Value::Object((*d).clone()))
                .collect(),
        ),
    );
    st.put_record(
        ERP,
        "CreditMemoApplications",
        &format!("{group_id}/{n}"),
        &Value::Object(stored.clone()),
    )
    .map_err(db)?;
    Ok(update_ext_answer(
        json!({"CashHead": [stored], "CashDtl": details.iter().map(|d| Value::Object((*d).clone())).collect::<Vec<_>>()}),
        vec![],
    ))
}
