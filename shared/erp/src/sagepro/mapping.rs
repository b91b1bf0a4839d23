//! Pure mapping from canonical commands to Sage Pro REST requests. Amounts are decimal strings
//! in major units with the currency's scale.

use super::config::SageProConfig;
use crate::commands::{Application, DocKind, DocumentLine, ErpCommand, ExternalRef, Side};
use crate::connector::{email_matches, ErpCustomerMatch};
use crate::error::ErpError;
use ledgerbridge_core::ids::ErpDocumentId;
use serde_json::{json, Map, Value};

pub const ERP: &str = crate::kind::ErpKind::SagePro.as_str();

pub fn resource(kind: DocKind) -> &'static str {
    match kind {
        DocKind::Customer => "customers",
        DocKind::SalesOrder => "salesorders",
        DocKind::Invoice => "invoices",
        DocKind::CashReceipt => "cashreceipts",
        DocKind::CreditMemo => "creditmemos",
        DocKind::JournalEntry => "journalentries",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SageProRequest {
    pub method: Method,
    /// Path below the base URL, e.g. `/api/v1/invoices`.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Option<Value>,
}

pub fn reference_value(cfg: &SageProConfig, r: &ExternalRef) -> Result<String, ErpError> {
    Ok(r.render(cfg.reference_max_len)?)
}

/// `GET /api/v1/{resource}?{reference_field}={ref}`. The product page lists GET only for
/// customers, sales orders and invoices; searching receipts, credit memos and journal entries
/// the same way is an assumption (see docs/erp-connectors.md).
pub fn find_request(cfg: &SageProConfig, r: &ExternalRef) -> Result<SageProRequest, ErpError> {
    Ok(SageProRequest {
        method: Method::Get,
        path: format!("/api/v1/{}", resource(r.kind())),
        query: vec![(cfg.reference_field.clone(), reference_value(cfg, r)?)],
        body: None,
    })
}

fn check_custno(cfg: &SageProConfig, id: &str) -> Result<(), ErpError> {
    if id.len() > cfg.customer_id_max_len {
        return Err(ErpError::permanent(
            ERP,
            format!(
                "customer number {id:?} is longer than {} characters",
                cfg.customer_id_max_len
            ),
        ));
    }
    Ok(())
}

fn lines(ls: &[DocumentLine]) -> Vec<Value> {
    ls.iter()
        .enumerate()
        .map(|(i, l)| {
            let mut v = json!({
                "lineNumber": i + 1,
                "itemId": l.item_id,
                "description": l.description,
                "quantity": l.quantity.normalize().to_string(),
                "unitPrice": l.unit_price.to_decimal().to_string(),
            });
            if let (Some(o), Some(a)) = (v.as_object_mut(), &l.gl_account) {
                o.insert("glAccount".into(), json!(a));
            }
            v
        })
        .collect()
}

fn customer_body(
    cfg: &SageProConfig,
    c: &crate::commands::CustomerUpsert,
) -> Result<Value, ErpError> {
    check_custno(cfg, &c.customer_id)?;
    let a = &c.address;
    Ok(json!({
        "customerId": c.customer_id,
        "name": c.name,
        "email": c.email,
        "currency": c.currency.code(),
        "address1": a.line1, "address2": a.line2, "city": a.city,
        "state": a.state, "zip": a.postal_code, "country": a.country,
        (cfg.reference_field.as_str()): reference_value(cfg, &c.reference)?,
    }))
}

pub fn create_request(cfg: &SageProConfig, cmd: &ErpCommand) -> Result<SageProRequest, ErpError> {
    let reference = reference_value(cfg, cmd.reference())?;
    let rf = cfg.reference_field.as_str();
    let body = match cmd {
        ErpCommand::UpsertCustomer(c) => customer_body(cfg, c)?,
        ErpCommand::CreateSalesOrder(o) => {
            check_custno(cfg, &o.customer_id)?;
            json!({
                "customerId": o.customer_id, "orderDate": o.order_date.as_str(),
                "currency": o.currency.code(), rf: reference, "lines": lines(&o.lines),
            })
        }
        ErpCommand::CreateInvoice(i) => {
            check_custno(cfg, &i.customer_id)?;
            json!({
                "customerId": i.customer_id, "invoiceDate": i.invoice_date.as_str(),
                "dueDate": i.due_date.as_ref().map(|d| d.as_str()),
                "salesOrderNumber": i.sales_order.as_ref().map(ErpDocumentId::as_str),
                "currency": i.currency.code(), rf: reference, "lines": lines(&i.lines),
            })
        }
        ErpCommand::CreateCreditMemo(m) => {
            check_custno(cfg, &m.customer_id)?;
            json!({
                "customerId": m.customer_id, "memoDate": m.memo_date.as_str(),
                "invoiceNumber": m.applies_to_invoice.as_ref().map(ErpDocumentId::as_str),
                "reason": m.reason, "currency": m.currency.code(), rf: reference,
                "lines": lines(&m.lines),
            })
        }
        ErpCommand::CreateCashReceipt(r) => {
            check_custno(cfg, &r.customer_id)?;
            let mut v = json!({
                "customerId": r.customer_id, "transactionDate": r.receipt_date.as_str(),
                "amount": r.amount.to_decimal().to_string(), "currency": r.amount.currency.code(),
                "paymentMethod": r.payment_method, rf: reference,
            });
            if let Some(o) = v.as_object_mut() {
                match &r.applies_to {
                    Some(Application::Invoice(n)) => {
                        o.insert("invoiceNumber".into(), json!(n.as_str()));
                    }
                    Some(Application::SalesOrder(n)) => {
                        o.insert("salesOrderNumber".into(), json!(n.as_str()));
                    }
                    None => {}
                }
            }
            v
        }
        ErpCommand::PostJournalEntry(j) => {
            let zero = rust_decimal::Decimal::new(0, j.currency.exponent()).to_string();
            let ls: Vec<Value> = j
                .lines
                .iter()
                .map(|l| {
                    let amt = l.amount.to_decimal().to_string();
                    let (debit, credit) = match l.side {
                        Side::Debit => (amt, zero.clone()),
                        Side::Credit => (zero.clone(), amt),
                    };
                    json!({"glAccount": l.gl_account, "debit": debit, "credit": credit, "memo": l.memo})
                })
                .collect();
            json!({
                "postingDate": j.posting_date.as_str(), "currency": j.currency.code(),
                "description": j.description, rf: reference, "lines": ls,
            })
        }
    };
    Ok(SageProRequest {
        method: Method::Post,
        path: format!("/api/v1/{}", resource(cmd.kind())),
        query: vec![],
        body: Some(strip_nulls(body)),
    })
}

pub fn update_customer_request(
    cfg: &SageProConfig,
    id: &ErpDocumentId,
    c: &crate::commands::CustomerUpsert,
) -> Result<SageProRequest, ErpError> {
    check_customer_path_id(id)?;
    Ok(SageProRequest {
        method: Method::Put,
        path: format!("/api/v1/customers/{id}"),
        query: vec![],
        body: Some(strip_nulls(customer_body(cfg, c)?)),
    })
}

/// Customers changed since: `GET /api/v1/customers?updatedSince={RFC 3339}&offset&limit`, each
/// with `updatedAt` (assumed names, like the rest of this API).
pub fn changed_customers_request(since: i64, offset: usize, limit: usize) -> SageProRequest {
    SageProRequest {
        method: Method::Get,
        path: "/api/v1/customers".into(),
        query: vec![
            (
                "updatedSince".into(),
                format!("{}Z", crate::time::format_utc(since, 'T')),
            ),
            ("offset".into(), offset.to_string()),
            ("limit".into(), limit.to_string()),
        ],
        body: None,
    }
}

/// The customers of a [`changed_customers_request`] answer.
pub fn changed_customers_of(
    cfg: &SageProConfig,
    body: &Value,
) -> Result<Vec<crate::connector::ErpCustomerRecord>, ErpError> {
    let rows = body
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| ErpError::permanent(ERP, "changed customers answer has no data array"))?;
    rows.iter()
        .map(|v| {
            let t = |k: &str| crate::connector::trimmed_text(v.get(k));
            let id = t("customerId")
                .ok_or_else(|| ErpError::permanent(ERP, "changed customer without customerId"))?;
            let changed_at = t("updatedAt")
                .and_then(|u| crate::time::parse_utc(&u))
                .ok_or_else(|| {
                    ErpError::permanent(ERP, format!("customer {id} has no readable updatedAt"))
                })?;
            Ok(crate::connector::ErpCustomerRecord {
                customer_id: id,
                name: t("name"),
                email: t("email"),
                address: crate::commands::Address {
                    line1: t("address1"),
                    line2: t("address2"),
                    city: t("city"),
                    state: t("state"),
                    postal_code: t("zip"),
                    country: t("country"),
                },
                changed_at,
                reference: t(&cfg.reference_field),
            })
        })
        .collect()
}

/// `PUT /api/v1/customers/{id}` with user-defined fields only (Sage Pro field names).
pub fn customer_fields_request(
    id: &ErpDocumentId,
    fields: &[(String, String)],
) -> Result<SageProRequest, ErpError> {
    check_customer_path_id(id)?;
    let body: serde_json::Map<String, Value> =
        fields.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    Ok(SageProRequest {
        method: Method::Put,
        path: format!("/api/v1/customers/{id}"),
        query: vec![],
        body: Some(Value::Object(body)),
    })
}

fn check_customer_path_id(id: &ErpDocumentId) -> Result<(), ErpError> {
    if id.as_str().is_empty()
        || !id
            .as_str()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ErpError::permanent(
            ERP,
            format!("{id} is not a Sage Pro customer id"),
        ));
    }
    Ok(())
}

fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

/// Id of a created document (`{"id": "…"}`).
pub fn created_id(body: &Value) -> Result<ErpDocumentId, ErpError> {
    id_of(body).ok_or_else(|| ErpError::permanent(ERP, "create answer has no \"id\""))
}

fn id_of(v: &Value) -> Option<ErpDocumentId> {
    match v.get("id")? {
        Value::String(s) if !s.is_empty() => Some(ErpDocumentId::new(s.clone())),
        Value::Number(n) => Some(ErpDocumentId::new(n.to_string())),
        _ => None,
    }
}

/// Customers by e-mail: `GET /api/v1/customers?email={email}` (the same search the references
/// use, on the `email` field the customer is created with; assumed, as the product page shows
/// no search parameters). `email` is the normalized address.
pub fn customer_email_request(email: &str) -> SageProRequest {
    SageProRequest {
        method: Method::Get,
        path: format!("/api/v1/{}", resource(DocKind::Customer)),
        query: vec![("email".into(), email.to_owned())],
        body: None,
    }
}

/// The customers of a search answer whose `email` equals `email` (trimmed, case-insensitive).
pub fn customers_by_email_of(body: &Value, email: &str) -> Result<Vec<ErpCustomerMatch>, ErpError> {
    let Some(items) = body.get("data").and_then(Value::as_array) else {
        return Err(ErpError::permanent(
            ERP,
            "search answer has no \"data\" array",
        ));
    };
    let mut out = Vec::new();
    for v in items {
        if !email_matches(v.get("email").and_then(Value::as_str), email) {
            continue;
        }
        let erp_id =
            id_of(v).ok_or_else(|| ErpError::permanent(ERP, "search result has no \"id\""))?;
        let customer_id = v
            .get("customerId")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ErpError::permanent(ERP, "customer search result lacks customerId"))?;
        out.push(ErpCustomerMatch {
            erp_id,
            customer_id: customer_id.to_owned(),
        });
    }
    Ok(out)
}

/// First match of a search answer `{"data":[{"id":…}, …]}`.
pub fn first_match(body: &Value) -> Result<Option<ErpDocumentId>, ErpError> {
    let Some(items) = body.get("data").and_then(Value::as_array) else {
        return Err(ErpError::permanent(
            ERP,
            "search answer has no \"data\" array",
        ));
    };
    match items.first() {
        None => Ok(None),
        Some(v) => id_of(v)
            .map(Some)
            .ok_or_else(|| ErpError::permanent(ERP, "search result has no \"id\"")),
    }
}

/// The document as Sage Pro holds it, from the search answer ([`find_request`]): the facade's
/// list schemas (`SalesOrderList`, `InvoiceList`, …) carry whole documents, so the total is
/// the lines' `quantity × unitPrice`, the receipt's `amount`, or the journal lines' `debit`,
/// with the document's `currency`.
pub fn read_back_of(
    kind: DocKind,
    body: &Value,
) -> Result<crate::connector::DocumentReadBack, ErpError> {
    use crate::connector::DocumentReadBack;
    let Some(items) = body.get("data").and_then(Value::as_array) else {
        return Err(ErpError::permanent(
            ERP,
            "search answer has no \"data\" array",
        ));
    };
    let Some(doc) = items.first() else {
        return Ok(DocumentReadBack::Missing);
    };
    let erp_id =
        id_of(doc).ok_or_else(|| ErpError::permanent(ERP, "search result has no \"id\""))?;
    let dec = |v: &Value, f: &str| -> Option<rust_decimal::Decimal> {
        match v.get(f)? {
            Value::String(s) => s.trim().parse().ok(),
            Value::Number(n) => n.to_string().parse().ok(),
            _ => None,
        }
    };
    let lines: Vec<Value> = doc
        .get("lines")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let amount = match kind {
        DocKind::SalesOrder | DocKind::Invoice | DocKind::CreditMemo => {
            let mut total = rust_decimal::Decimal::ZERO;
            let mut ok = true;
            for l in &lines {
                match dec(l, "quantity")
                    .zip(dec(l, "unitPrice"))
                    .and_then(|(q, p)| q.checked_mul(p))
                    .and_then(|x| total.checked_add(x))
                {
                    Some(t) => total = t,
                    None => ok = false,
                }
            }
            ok.then_some(total)
        }
        DocKind::CashReceipt => dec(doc, "amount"),
        DocKind::JournalEntry => Some(
            lines
                .iter()
                .filter_map(|l| dec(l, "debit"))
                .sum::<rust_decimal::Decimal>(),
        ),
        DocKind::Customer => None,
    };
    Ok(DocumentReadBack::Found {
        erp_id,
        amount,
        currency: doc
            .get("currency")
            .and_then(Value::as_str)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commands() -> Vec<ErpCommand> {
        serde_json::from_str(include_str!("../../tests/fixtures/commands.json")).unwrap()
    }

    #[test]
    fn maps_every_fixture_command_to_the_expected_wire_request() {
        let exp: Value =
            serde_json::from_str(include_str!("../../tests/fixtures/sagepro_requests.json"))
                .unwrap();
        let cfg = SageProConfig::new("https://sagepro.example.com");
        for cmd in commands() {
            let key = cmd.reference().full();
            let req = create_request(&cfg, &cmd).unwrap();
            assert_eq!(
                json!({"path": req.path, "body": req.body}),
                exp[&key],
                "mapping of {key}"
            );
        }
    }

    #[test]
    fn long_customer_numbers_are_rejected_before_sending() {
        let mut cmds = commands();
        if let ErpCommand::UpsertCustomer(c) = &mut cmds[0] {
            c.customer_id = "CUSTOMER-NUMBER-TOO-LONG".into();
        }
        let cfg = SageProConfig::new("x");
        let err = create_request(&cfg, &cmds[0]).unwrap_err();
        assert!(!err.is_retriable());
    }

    #[test]
    fn search_answers() {
        assert_eq!(first_match(&json!({"data":[]})).unwrap(), None);
        assert_eq!(
            first_match(&json!({"data":[{"id":"SO-7"}]}))
                .unwrap()
                .unwrap()
                .as_str(),
            "SO-7"
        );
        assert!(first_match(&json!({})).is_err());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod read_back_tests {
    use super::*;
    use crate::connector::DocumentReadBack;

    #[test]
    fn read_back_totals_lines_receipts_and_journals_from_the_search_answer() {
        let order = json!({"data": [{"id": "SO-7", "currency": "JPY",
            "lines": [{"quantity": "3", "unitPrice": "1000"}, {"quantity": 1, "unitPrice": 5}]}]});
        assert_eq!(
            read_back_of(DocKind::SalesOrder, &order).unwrap(),
            DocumentReadBack::Found {
                erp_id: ErpDocumentId::new("SO-7"),
                amount: Some("3005".parse().unwrap()),
                currency: Some("JPY".into()),
            }
        );
        let receipt = json!({"data": [{"id": "CR-1", "currency": "USD", "amount": "12.34"}]});
        let DocumentReadBack::Found { amount, .. } =
            read_back_of(DocKind::CashReceipt, &receipt).unwrap()
        else {
            panic!("found expected")
        };
        assert_eq!(amount, Some("12.34".parse().unwrap()));
        let journal = json!({"data": [{"id": "JE-1", "currency": "USD",
            "lines": [{"debit": "7.00"}, {"credit": "7.00"}]}]});
        let DocumentReadBack::Found { amount, .. } =
            read_back_of(DocKind::JournalEntry, &journal).unwrap()
        else {
            panic!("found expected")
        };
        assert_eq!(amount, Some("7.00".parse().unwrap()));
        let broken = json!({"data": [{"id": "IN-1", "lines": [{"quantity": "1"}]}]});
        let DocumentReadBack::Found { amount, .. } =
            read_back_of(DocKind::Invoice, &broken).unwrap()
        else {
            panic!("found expected")
        };
        assert_eq!(amount, None);
        assert_eq!(
            read_back_of(DocKind::Invoice, &json!({"data": []})).unwrap(),
            DocumentReadBack::Missing
        );
        assert!(read_back_of(DocKind::Invoice, &json!({"value": []})).is_err());
    }
}
