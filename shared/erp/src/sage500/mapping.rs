//! Pure mapping from canonical commands to Sage 500 staging rows. Amounts are decimal strings
//! in major units with the currency's scale; journal amounts are signed (`PostAmtHC` > 0 debit,
//! < 0 credit).

use super::config::{Sage500Config, Sage500DocSpec};
use crate::commands::{
    Application, CustomerUpsert, DocKind, DocumentLine, ErpCommand, ExternalRef, Side,
};
use crate::error::ErpError;
use crate::fit::{fit, Unit};
use serde_json::{json, Map, Value};

pub const ERP: &str = crate::kind::ErpKind::Sage500.as_str();

/// A value for one staging column. Decimals are carried as exact decimal strings (the HTTP
/// facade takes strings, SQL Server converts them to the column's `decimal` type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlValue {
    Text(String),
    Decimal(String),
    Int(i64),
    Null,
}

impl SqlValue {
    pub fn to_json(&self) -> Value {
        match self {
            SqlValue::Text(s) | SqlValue::Decimal(s) => json!(s),
            SqlValue::Int(i) => json!(i),
            SqlValue::Null => Value::Null,
        }
    }
}

/// One row to insert into a staging table (`SessionKey` and `ProcessStatus` = 0 are added by
/// the adapter; staging tables have no `CompanyID` column: the company is a procedure
/// parameter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagingRow {
    pub table: String,
    pub columns: Vec<(String, SqlValue)>,
}

/// What running an API procedure over one session's staging rows did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchOutcome {
    /// `@_oRetVal` of the last call (the OUTPUT parameter, not the RETURN value): 0 unknown
    /// error, 1 the call ran (rows may still have failed), 2 failure, 3 parameter error.
    pub return_code: i64,
    /// `@oFailedRecs` and `@oTotalRecs` after the last call, when the adapter reports them.
    pub failed: Option<i64>,
    pub total: Option<i64>,
    /// The outcome of every staged row: 1 migrated (Sage deletes migrated rows from staging),
    /// 2 failed (`ProcessStatus` 2, kept in staging), 0 not processed.
    pub process_status: Vec<i64>,
    /// `tdmMigrationLogWrk.Comment` of the session's failures and warnings.
    pub log: Vec<String>,
    /// The created document's columns when the adapter can return them (the HTTP facade does);
    /// otherwise the connector looks the document up by reference.
    pub document: Option<Map<String, Value>>,
}

/// `Action` column values of the staging tables.
pub const ACTION_INSERT: i64 = 1;
pub const ACTION_UPDATE: i64 = 2;

/// The procedure to run and the rows to stage for one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedCommand {
    pub procedure: String,
    pub rows: Vec<StagingRow>,
}

/// The procedure of `kind`, or a permanent error saying what to configure (the document is
/// parked with it).
pub fn doc_spec(cfg: &Sage500Config, kind: DocKind) -> Result<&Sage500DocSpec, ErpError> {
    cfg.docs
        .for_kind(kind)
        .ok_or_else(|| ErpError::permanent(ERP, super::config::unconfigured_reason(kind)))
}

pub fn reference_value(cfg: &Sage500Config, r: &ExternalRef) -> Result<String, ErpError> {
    Ok(r.render(cfg.reference_max_len)?)
}

/// The sales order's `TranNo`: `sales_order.tran_no_prefix` and base-36 digits of a SHA-256 of
/// the rendered reference, 10 characters in all (`StgSalesOrder.TranNo` is varchar(10), vendor
/// source TYL). The same reference always gives the same number, so a retry stages the same
/// order; a different reference colliding would be rejected by Sage as a duplicate number.
pub fn so_tran_no(cfg: &Sage500Config, r: &ExternalRef) -> Result<String, ErpError> {
    use sha2::{Digest, Sha256};
    let prefix = &cfg.sales_order.tran_no_prefix;
    if prefix.len() > 4 || !prefix.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ErpError::Config {
            erp: ERP,
            message: format!(
                "sales_order.tran_no_prefix {prefix:?} must be at most 4 letters or digits"
            ),
        });
    }
    let digest = Sha256::digest(reference_value(cfg, r)?.as_bytes());
    let mut n =
        u128::from_be_bytes(
            <[u8; 16]>::try_from(&digest[..16]).map_err(|_| ErpError::Config {
                erp: ERP,
                message: "hash too short".into(),
            })?,
        );
    let mut tran_no = prefix.to_ascii_uppercase();
    const DIGITS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    while tran_no.len() < TRAN_NO_LEN {
        tran_no.push(char::from(DIGITS[(n % 36) as usize]));
        n /= 36;
    }
    Ok(tran_no)
}

const TRAN_NO_LEN: usize = 10;

/// At most `max` characters of `s` (free text such as line descriptions, which Sage would
/// otherwise reject as too long).
fn clip_chars(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Check every row against the staging schema of the contract facts before anything is sent:
/// a column the staging table lacks is a configuration error, a value longer than its
/// `varchar(n)` column a permanent rejection naming the column (not the value). Tables the
/// facts do not describe (site-specific staging) are not checked here.
pub fn check_staging(rows: &[StagingRow]) -> Result<(), ErpError> {
    use super::schema::{column_type, is_known_table, ColumnType};
    for r in rows {
        if !is_known_table(&r.table) {
            continue;
        }
        for (c, v) in &r.columns {
            let Some(ty) = column_type(&r.table, c) else {
                return Err(ErpError::Config {
                    erp: ERP,
                    message: format!("{} has no column {c} (Sage 500 staging schema)", r.table),
                });
            };
            if let (ColumnType::Varchar(n), SqlValue::Text(t)) = (ty, v) {
                let len = t.chars().count();
                if len > n {
                    return Err(ErpError::permanent(
                        ERP,
                        format!(
                            "{}.{c} holds {n} characters; the value has {len}: shorten it at the \
                             source or map the value to a wider column",
                            r.table
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn text(s: &str) -> SqlValue {
    SqlValue::Text(s.to_owned())
}

struct Cols(Vec<(String, SqlValue)>);

impl Cols {
    fn new() -> Self {
        Cols(Vec::new())
    }
    fn put(mut self, name: &str, v: SqlValue) -> Self {
        self.0.push((name.to_owned(), v));
        self
    }
    fn opt(self, name: &str, v: Option<&str>) -> Self {
        match v {
            Some(s) => self.put(name, text(s)),
            None => self,
        }
    }
}

fn line_rows(
    spec: &Sage500DocSpec,
    qty_column: &str,
    warehouse: Option<&str>,
    lines: &[DocumentLine],
) -> Result<Vec<StagingRow>, ErpError> {
    let Some(table) = &spec.line_table else {
        return Err(ErpError::Config {
            erp: ERP,
            message: format!("{} needs a line table", spec.procedure),
        });
    };
    Ok(lines
        .iter()
        .enumerate()
        .map(|(i, l)| StagingRow {
            table: table.clone(),
            columns: Cols::new()
                .put("LineNo", SqlValue::Int(i as i64 + 1))
                .put("ItemID", text(&l.item_id))
                .put("Description", text(&l.description))
                .put(
                    qty_column,
                    SqlValue::Decimal(l.quantity.normalize().to_string()),
                )
                .put(
                    "UnitPrice",
                    SqlValue::Decimal(l.unit_price.to_decimal().to_string()),
                )
                .opt("GLAcctNo", l.gl_account.as_deref())
                .opt("WarehouseID", warehouse)
                .0,
        })
        .collect())
}

fn customer_row(
    cfg: &Sage500Config,
    c: &CustomerUpsert,
    action: i64,
) -> Result<StagingRow, ErpError> {
    let spec = &cfg.docs.customer;
    let a = &c.address;
    let table = spec.header_table.as_str();
    // Names and address lines longer than their staging column are cut to it at a grapheme
    // boundary (the staging `varchar(n)` columns hold n characters). The staging table has no
    // note column in the contract facts, so the whole values stay with the Stripe customer, which
    // the customer's cross-reference links to this ERP customer.
    let free = |column: &str, v: &str| -> String {
        match super::schema::column_type(table, column) {
            Some(super::schema::ColumnType::Varchar(n)) => {
                let f = fit(v, n, Unit::Chars);
                if f.cut {
                    tracing::warn!(
                        table,
                        column,
                        width = n,
                        "Customer text cut to the column's width; the whole value stays in Stripe"
                    );
                }
                f.text.into_owned()
            }
            _ => v.to_owned(),
        }
    };
    // A phone number is never cut (a shortened number is a wrong one): sent when it fits.
    let phone = c.phone.as_deref().filter(|p| {
        let fits = match super::schema::column_type(table, "Phone") {
            Some(super::schema::ColumnType::Varchar(n)) => p.chars().count() <= n,
            _ => true,
        };
        if !fits {
            tracing::warn!(
                table,
                "Customer phone number longer than the Phone column; not sent (it stays in Stripe)"
            );
        }
        fits
    });
    Ok(StagingRow {
        table: spec.header_table.clone(),
        columns: Cols::new()
            .put("Action", SqlValue::Int(action))
            .put("CustID", text(&c.customer_id))
            .put("CustName", text(&free("CustName", &c.name)))
            .put("CurrID", text(c.currency.code()))
            .opt("EMailAddr", c.email.as_deref())
            .opt(
                "AddrLine1",
                a.line1.as_deref().map(|v| free("AddrLine1", v)).as_deref(),
            )
            .opt(
                "AddrLine2",
                a.line2.as_deref().map(|v| free("AddrLine2", v)).as_deref(),
            )
            .opt(
                "City",
                a.city.as_deref().map(|v| free("City", v)).as_deref(),
            )
            .opt("StateID", a.state.as_deref())
            .opt("PostalCode", a.postal_code.as_deref())
            .opt("CountryID", a.country.as_deref())
            .opt("Phone", phone)
            .put(
                &spec.reference_column,
                text(&reference_value(cfg, &c.reference)?),
            )
            .0,
    })
}

/// Rows and procedure creating the document of `cmd`.
pub fn create_rows(cfg: &Sage500Config, cmd: &ErpCommand) -> Result<StagedCommand, ErpError> {
    let spec = doc_spec(cfg, cmd.kind())?;
    let reference = text(&reference_value(cfg, cmd.reference())?);
    let header = |cols: Cols| StagingRow {
        table: spec.header_table.clone(),
        columns: cols.put(&spec.reference_column, reference.clone()).0,
    };
    let rows = match cmd {
        ErpCommand::UpsertCustomer(c) => vec![customer_row(cfg, c, ACTION_INSERT)?],
        ErpCommand::CreateSalesOrder(o) => {
            // The caller's TranNo on the header and every line: lines attach by TranNo.
            let tran_no = so_tran_no(cfg, cmd.reference())?;
            let so = &cfg.sales_order;
            let mut rows = vec![header(
                Cols::new()
                    .put("Action", SqlValue::Int(ACTION_INSERT))
                    .put("TranNo", text(&tran_no))
                    .put("CustID", text(&o.customer_id))
                    .put("CurrID", text(o.currency.code()))
                    .put("TranDate", text(o.order_date.as_str()))
                    .put("Status", text(&so.status))
                    .put("Hold", text(&so.hold))
                    .put("RequireSOAck", text(&so.require_ack)),
            )];
            let Some(table) = &spec.line_table else {
                return Err(ErpError::Config {
                    erp: ERP,
                    message: format!("{} needs a line table", spec.procedure),
                });
            };
            for (i, l) in o.lines.iter().enumerate() {
                rows.push(StagingRow {
                    table: table.clone(),
                    columns: Cols::new()
                        .put("TranNo", text(&tran_no))
                        .put("SOLineNo", SqlValue::Int(i as i64 + 1))
                        .put("ItemID", text(&l.item_id))
                        .put("Description", text(&clip_chars(&l.description, 40)))
                        .put(
                            "QtyOrd",
                            SqlValue::Decimal(l.quantity.normalize().to_string()),
                        )
                        .put(
                            "UnitPrice",
                            SqlValue::Decimal(l.unit_price.to_decimal().to_string()),
                        )
                        .opt("GLAcctNo", l.gl_account.as_deref())
                        .opt("WarehouseID", cfg.warehouse_id.as_deref())
                        .0,
                });
            }
            rows
        }
        ErpCommand::CreateInvoice(i) => {
            let mut rows = vec![header(
                Cols::new()
                    .put("Action", SqlValue::Int(ACTION_INSERT))
                    .put("TranType", text(&cfg.invoice_tran_type))
                    .put("CustID", text(&i.customer_id))
                    .put("CurrID", text(i.currency.code()))
                    .put("TranDate", text(i.invoice_date.as_str()))
                    .opt("DueDate", i.due_date.as_ref().map(|d| d.as_str()))
                    .opt("SOTranNo", i.sales_order.as_ref().map(|s| s.as_str())),
            )];
            rows.extend(line_rows(spec, "Qty", None, &i.lines)?);
            rows
        }
        ErpCommand::CreateCreditMemo(m) => {
            let mut rows = vec![header(
                Cols::new()
                    .put("Action", SqlValue::Int(ACTION_INSERT))
                    .put("TranType", text(&cfg.credit_memo_tran_type))
                    .put("CustID", text(&m.customer_id))
                    .put("CurrID", text(m.currency.code()))
                    .put("TranDate", text(m.memo_date.as_str()))
                    .opt(
                        "ApplyToTranNo",
                        m.applies_to_invoice.as_ref().map(|s| s.as_str()),
                    )
                    .opt("TranCmnt", m.reason.as_deref()),
            )];
            rows.extend(line_rows(spec, "Qty", None, &m.lines)?);
            rows
        }
        ErpCommand::CreateCashReceipt(r) => {
            let amount = SqlValue::Decimal(r.amount.to_decimal().to_string());
            let so = match &r.applies_to {
                Some(Application::SalesOrder(n)) => Some(n.as_str()),
                _ => None,
            };
            let mut rows = vec![header(
                Cols::new()
                    .put("Action", SqlValue::Int(ACTION_INSERT))
                    .put("CustID", text(&r.customer_id))
                    .put("CurrID", text(r.amount.currency.code()))
                    .put("TranDate", text(r.receipt_date.as_str()))
                    .put("TranAmt", amount.clone())
                    .put("PmtMethID", text(&r.payment_method))
                    .opt("SOTranNo", so),
            )];
            if let Some(Application::Invoice(inv)) = &r.applies_to {
                let Some(table) = &spec.line_table else {
                    return Err(ErpError::Config {
                        erp: ERP,
                        message: "cash receipts need an application table".into(),
                    });
                };
                rows.push(StagingRow {
                    table: table.clone(),
                    columns: Cols::new()
                        .put("ApplyToTranNo", text(inv.as_str()))
                        .put("ApplyAmt", amount)
                        .0,
                });
            }
            rows
        }
        ErpCommand::PostJournalEntry(j) => j
            .lines
            .iter()
            .map(|l| {
                let amt = l.amount.to_decimal();
                let signed = match l.side {
                    Side::Debit => amt,
                    Side::Credit => -amt,
                };
                header(
                    Cols::new()
                        .put("GLAcctNo", text(&l.gl_account))
                        .put("PostAmtHC", SqlValue::Decimal(signed.to_string()))
                        .put("PostDate", text(j.posting_date.as_str()))
                        .put("CurrID", text(j.currency.code()))
                        .put("ExtCmnt", text(l.memo.as_deref().unwrap_or(&j.description))),
                )
            })
            .collect(),
    };
    Ok(StagedCommand {
        procedure: spec.procedure.clone(),
        rows,
    })
}

/// Updates need a Data Import Manager column map (see `customer_update_dim_job`).
fn check_updates_configured(cfg: &Sage500Config) -> Result<(), ErpError> {
    if cfg.customer_update_dim_job.is_some() {
        return Ok(());
    }
    Err(ErpError::permanent(
        ERP,
        "Sage 500 applies customer updates only through a Data Import Manager column map; \
         linked customers are read-only until a DIM job for StgCustomer is set up and \
         \"customer_update_dim_job\" is configured (docs/erp-connectors.md), then replay",
    ))
}

/// Does this batch update rows (`Action` = 2)?
pub fn has_updates(rows: &[StagingRow]) -> bool {
    rows.iter().any(|r| {
        r.columns
            .iter()
            .any(|(c, v)| c == "Action" && *v == SqlValue::Int(ACTION_UPDATE))
    })
}

/// Rows and procedure updating an existing customer's master data (`Action` = 2).
pub fn update_customer_rows(
    cfg: &Sage500Config,
    c: &CustomerUpsert,
) -> Result<StagedCommand, ErpError> {
    check_updates_configured(cfg)?;
    Ok(StagedCommand {
        procedure: cfg.docs.customer.procedure.clone(),
        rows: vec![customer_row(cfg, c, ACTION_UPDATE)?],
    })
}

/// An update (`Action` = 2) of the customer's user-defined columns only: `CustID` and the
/// columns named by [`crate::fields::resolve`].
pub fn customer_fields_rows(
    cfg: &Sage500Config,
    customer_id: &str,
    fields: &[(String, String)],
) -> Result<StagedCommand, ErpError> {
    check_updates_configured(cfg)?;
    let mut cols = Cols::new()
        .put("Action", SqlValue::Int(ACTION_UPDATE))
        .put("CustID", text(customer_id));
    for (k, v) in fields {
        if k == "CustID" || k == "Action" || k == &cfg.docs.customer.reference_column {
            return Err(ErpError::Config {
                erp: ERP,
                message: format!("customer_fields may not write {k}"),
            });
        }
        cols = cols.put(k, text(v));
    }
    Ok(StagedCommand {
        procedure: cfg.docs.customer.procedure.clone(),
        rows: vec![StagingRow {
            table: cfg.docs.customer.header_table.clone(),
            columns: cols.0,
        }],
    })
}

/// One row of the changed-customers query as an [`ErpCustomerRecord`](crate::connector::ErpCustomerRecord).
pub fn changed_customer(
    cfg: &Sage500Config,
    row: &serde_json::Map<String, serde_json::Value>,
) -> Result<crate::connector::ErpCustomerRecord, ErpError> {
    let t = |k: &str| crate::connector::trimmed_text(row.get(k));
    let customer_id = t(&cfg.customer_email.customer_id_column)
        .ok_or_else(|| ErpError::permanent(ERP, "changed customer row without a customer code"))?;
    let changed_at = t(&cfg.customer_changed_column)
        .and_then(|v| crate::time::parse_utc(&v))
        .ok_or_else(|| {
            ErpError::permanent(
                ERP,
                format!(
                    "changed customer {customer_id} has no readable {}",
                    cfg.customer_changed_column
                ),
            )
        })?;
    Ok(crate::connector::ErpCustomerRecord {
        customer_id,
        name: t("CustName"),
        email: t("EMailAddr"),
        address: crate::commands::Address {
            line1: t("AddrLine1"),
            line2: t("AddrLine2"),
            city: t("City"),
            state: t("StateID"),
            postal_code: t("PostalCode"),
            country: t("CountryID"),
        },
        changed_at,
        reference: t(&cfg.docs.customer.reference_column),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commands() -> Vec<ErpCommand> {
        serde_json::from_str(include_str!("../../tests/fixtures/commands.json")).unwrap()
    }

    fn col<'a>(r: &'a StagingRow, name: &str) -> Option<&'a SqlValue> {
        r.columns.iter().find(|(c, _)| c == name).map(|(_, v)| v)
    }

    #[test]
    fn maps_fixture_commands_to_staging_rows() {
        let mut cfg = Sage500Config::http("http://x", "SOA");
        // Invoices, receipts and journals go through site procedures, off by default.
        assert_eq!(
            create_rows(&cfg, &commands()[2]).unwrap_err().kind(),
            crate::error::ErpErrorKind::Permanent
        );
        cfg.docs = cfg.docs.with_site_procedures();
        let cmds = commands();
        let so = create_rows(&cfg, &cmds[1]).unwrap();
        assert_eq!(so.procedure, "spSOapiSalesOrdIns");
        assert_eq!(so.rows[0].table, "StgSalesOrder");
        // The reference goes to TranCmnt (varchar(50)); 33 characters do not fit the default
        // 30: shortened deterministically.
        assert_eq!(
            col(&so.rows[0], "TranCmnt"),
            Some(&SqlValue::Text("LB-pi_3MtwBwLkdI~50dfe0c763-SO".into()))
        );
        assert_eq!(col(&so.rows[0], "CustPONo"), None);
        let wide = Sage500Config {
            reference_max_len: 50,
            ..cfg.clone()
        };
        assert_eq!(
            col(&create_rows(&wide, &cmds[1]).unwrap().rows[0], "TranCmnt"),
            Some(&SqlValue::Text("LB-pi_3MtwBwLkdIwHu7ix28a3tqPa-SO".into()))
        );
        // TranNo: deterministic, 10 characters, on the header and every line; SOLineNo
        // numbers the lines; Status, Hold and RequireSOAck are explicit.
        let Some(SqlValue::Text(tran_no)) = col(&so.rows[0], "TranNo").cloned() else {
            panic!("no TranNo")
        };
        assert_eq!(tran_no.len(), 10);
        assert!(tran_no.starts_with("LB"), "{tran_no}");
        assert_eq!(
            so_tran_no(&cfg, cmds[1].reference()).unwrap(),
            tran_no,
            "same reference, same number"
        );
        assert_ne!(so_tran_no(&cfg, cmds[2].reference()).unwrap(), tran_no);
        for (i, line) in so.rows[1..].iter().enumerate() {
            assert_eq!(col(line, "TranNo"), Some(&SqlValue::Text(tran_no.clone())));
            assert_eq!(col(line, "SOLineNo"), Some(&SqlValue::Int(i as i64 + 1)));
            assert_eq!(col(line, "LineNo"), None);
        }
        for (c, v) in [("Status", "Open"), ("Hold", "0"), ("RequireSOAck", "0")] {
            assert_eq!(col(&so.rows[0], c), Some(&SqlValue::Text(v.into())), "{c}");
        }
        assert!(check_staging(&so.rows).is_ok());
        // KWD keeps three decimals.
        let inv = create_rows(&cfg, &cmds[2]).unwrap();
        assert_eq!(
            col(&inv.rows[1], "UnitPrice"),
            Some(&SqlValue::Decimal("12.340".into()))
        );
        // Credit memo: JPY has no decimals, type 502, applied invoice.
        let cm = create_rows(&cfg, &cmds[4]).unwrap();
        assert_eq!(
            col(&cm.rows[0], "TranType"),
            Some(&SqlValue::Text("502".into()))
        );
        assert_eq!(
            col(&cm.rows[0], "ApplyToTranNo"),
            Some(&SqlValue::Text("1001".into()))
        );
        assert_eq!(
            col(&cm.rows[1], "UnitPrice"),
            Some(&SqlValue::Decimal("1500".into()))
        );
        // Receipt: header plus one application.
        let cr = create_rows(&cfg, &cmds[3]).unwrap();
        assert_eq!(cr.rows.len(), 2);
        assert_eq!(
            col(&cr.rows[0], "TranAmt"),
            Some(&SqlValue::Decimal("64.97".into()))
        );
        assert_eq!(
            col(&cr.rows[1], "ApplyAmt"),
            Some(&SqlValue::Decimal("64.97".into()))
        );
        // Journal: one row per line, signed, summing to zero, reference on every row.
        let je = create_rows(&cfg, &cmds[5]).unwrap();
        assert_eq!(je.rows.len(), 3);
        let amounts: Vec<_> = je
            .rows
            .iter()
            .map(|r| col(r, "PostAmtHC").cloned())
            .collect();
        assert_eq!(
            amounts,
            vec![
                Some(SqlValue::Decimal("965.03".into())),
                Some(SqlValue::Decimal("34.97".into())),
                Some(SqlValue::Decimal("-1000.00".into())),
            ]
        );
        assert!(je.rows.iter().all(|r| col(r, "PostCmnt").is_some()));
        // Linked customers are read-only until a DIM column map is configured.
        let read_only = update_customer_rows(
            &cfg,
            match &cmds[0] {
                ErpCommand::UpsertCustomer(c) => c,
                _ => unreachable!(),
            },
        )
        .unwrap_err();
        assert!(read_only.to_string().contains("customer_update_dim_job"));
        assert!(customer_fields_rows(&cfg, "C1", &[]).is_err());
        cfg.customer_update_dim_job = Some(1);
        let cu = update_customer_rows(
            &cfg,
            match &cmds[0] {
                ErpCommand::UpsertCustomer(c) => c,
                _ => unreachable!(),
            },
        )
        .unwrap();
        assert_eq!(
            col(&cu.rows[0], "Action"),
            Some(&SqlValue::Int(ACTION_UPDATE))
        );
    }

    #[test]
    fn staging_columns_and_widths_are_checked_before_sending() {
        let row = |c: &str, v: SqlValue| StagingRow {
            table: "StgSalesOrder".into(),
            columns: vec![(c.into(), v)],
        };
        assert!(check_staging(&[row("CustPONo", SqlValue::Text("x".repeat(15)))]).is_ok());
        let e = check_staging(&[row("CustPONo", SqlValue::Text("x".repeat(16)))]).unwrap_err();
        assert_eq!(e.kind(), crate::error::ErpErrorKind::Permanent);
        assert!(e.to_string().contains("CustPONo holds 15"), "{e}");
        assert!(matches!(
            check_staging(&[row("CompanyID", SqlValue::Text("SOA".into()))]),
            Err(ErpError::Config { .. })
        ));
        assert!(matches!(
            check_staging(&[row("LineNo", SqlValue::Int(1))]),
            Err(ErpError::Config { .. })
        ));
        // A customer reference longer than CRMCustID's 32 characters is refused.
        let mut cfg = Sage500Config::http("http://x", "SOA");
        cfg.reference_max_len = 40;
        let cmds = commands();
        let mut cu = create_rows(&cfg, &cmds[0]).unwrap();
        if let Some((_, SqlValue::Text(v))) = cu.rows[0]
            .columns
            .iter_mut()
            .find(|(c, _)| c == "CRMCustID")
        {
            *v = "y".repeat(33);
        }
        assert!(check_staging(&cu.rows).is_err());
        cfg.sales_order.tran_no_prefix = "TOOLONG".into();
        assert!(matches!(
            create_rows(&cfg, &cmds[1]),
            Err(ErpError::Config { .. })
        ));
    }

    #[test]
    fn references_are_shortened_to_the_configured_length() {
        let mut cfg = Sage500Config::http("http://x", "SOA");
        cfg.docs = cfg.docs.with_site_procedures();
        cfg.reference_max_len = 24;
        let r = create_rows(&cfg, &commands()[3]).unwrap();
        let Some(SqlValue::Text(v)) = col(&r.rows[0], "TranCmnt") else {
            panic!("no reference")
        };
        assert!(v.len() <= 24 && v.ends_with("-CR"), "{v}");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "text_fit_tests.rs"]
mod text_fit_tests;
