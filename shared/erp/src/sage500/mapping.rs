//! Pure mapping from canonical commands to Sage 500 staging rows. Amounts are decimal strings
//! in major units with the currency's scale; journal amounts are signed (`PostAmtHC` > 0 debit,
//! < 0 credit).

use super::config::{Sage500Config, Sage500DocSpec};
use crate::commands::{Application, CustomerUpsert, DocumentLine, ErpCommand, ExternalRef, Side};
use crate::error::ErpError;
use serde_json::{json, Map, Value};

pub const ERP: &str = crate::kind::ErpKind::Sage500.as_str();

/// A value for one staging column. Decimals are carried as exact decimal strings (the HTTP
/// facade takes strings, SQL Server converts them to the column's `decimal` type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlValue {
    Text(String),
    Decimal(String),
    Int(i64),
}

impl SqlValue {
    pub fn to_json(&self) -> Value {
        match self {
            SqlValue::Text(s) | SqlValue::Decimal(s) => json!(s),
            SqlValue::Int(i) => json!(i),
        }
    }
}

/// One row to insert into a staging table (`SessionKey`, `ProcessStatus` = 0 and `CompanyID`
/// are added by the adapter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagingRow {
    pub table: String,
    pub columns: Vec<(String, SqlValue)>,
}

/// What running an API procedure over one session's staging rows did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    /// The procedure's return code: 0 unknown error, 1 success, 2 failure, 3 parameter error.
    pub return_code: i64,
    /// `ProcessStatus` of every staging row of the session (0 not processed, 1 processed,
    /// 2 error).
    pub process_status: Vec<i64>,
    /// Migration-log messages of the session.
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

pub fn reference_value(cfg: &Sage500Config, r: &ExternalRef) -> Result<String, ErpError> {
    Ok(r.render(cfg.reference_max_len)?)
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
    Ok(StagingRow {
        table: spec.header_table.clone(),
        columns: Cols::new()
            .put("Action", SqlValue::Int(action))
            .put("CustID", text(&c.customer_id))
            .put("CustName", text(&c.name))
            .put("CurrID", text(c.currency.code()))
            .opt("EMailAddr", c.email.as_deref())
            .opt("AddrLine1", a.line1.as_deref())
            .opt("AddrLine2", a.line2.as_deref())
            .opt("City", a.city.as_deref())
            .opt("StateID", a.state.as_deref())
            .opt("PostalCode", a.postal_code.as_deref())
            .opt("CountryID", a.country.as_deref())
            .put(
                &spec.reference_column,
                text(&reference_value(cfg, &c.reference)?),
            )
            .0,
    })
}

/// Rows and procedure creating the document of `cmd`.
pub fn create_rows(cfg: &Sage500Config, cmd: &ErpCommand) -> Result<StagedCommand, ErpError> {
    let spec = cfg.docs.for_kind(cmd.kind());
    let reference = text(&reference_value(cfg, cmd.reference())?);
    let header = |cols: Cols| StagingRow {
        table: spec.header_table.clone(),
        columns: cols.put(&spec.reference_column, reference.clone()).0,
    };
    let rows = match cmd {
        ErpCommand::UpsertCustomer(c) => vec![customer_row(cfg, c, ACTION_INSERT)?],
        ErpCommand::CreateSalesOrder(o) => {
            let mut rows = vec![header(
                Cols::new()
                    .put("Action", SqlValue::Int(ACTION_INSERT))
                    .put("CustID", text(&o.customer_id))
                    .put("CurrID", text(o.currency.code()))
                    .put("TranDate", text(o.order_date.as_str())),
            )];
            rows.extend(line_rows(
                spec,
                "QtyOrd",
                cfg.warehouse_id.as_deref(),
                &o.lines,
            )?);
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

/// Rows and procedure updating an existing customer's master data (`Action` = 2).
pub fn update_customer_rows(
    cfg: &Sage500Config,
    c: &CustomerUpsert,
) -> Result<StagedCommand, ErpError> {
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
        let cfg = Sage500Config::http("http://x", "SOA");
        let cmds = commands();
        let so = create_rows(&cfg, &cmds[1]).unwrap();
        assert_eq!(so.procedure, "spSOapiSalesOrdIns");
        assert_eq!(so.rows[0].table, "StgSalesOrder");
        // 33 characters do not fit the default 30: shortened deterministically.
        assert_eq!(
            col(&so.rows[0], "CustPONo"),
            Some(&SqlValue::Text("LB-pi_3MtwBwLkdI~50dfe0c763-SO".into()))
        );
        let wide = Sage500Config {
            reference_max_len: 50,
            ..cfg.clone()
        };
        assert_eq!(
            col(&create_rows(&wide, &cmds[1]).unwrap().rows[0], "CustPONo"),
            Some(&SqlValue::Text("LB-pi_3MtwBwLkdIwHu7ix28a3tqPa-SO".into()))
        );
        assert_eq!(so.rows.len(), 3);
        assert_eq!(
            col(&so.rows[1], "QtyOrd"),
            Some(&SqlValue::Decimal("3".into()))
        );
        assert_eq!(
            col(&so.rows[1], "UnitPrice"),
            Some(&SqlValue::Decimal("19.99".into()))
        );
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
        assert!(je.rows.iter().all(|r| col(r, "TranDesc").is_some()));
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
    fn references_are_shortened_to_the_configured_length() {
        let mut cfg = Sage500Config::http("http://x", "SOA");
        cfg.reference_max_len = 24;
        let r = create_rows(&cfg, &commands()[3]).unwrap();
        let Some(SqlValue::Text(v)) = col(&r.rows[0], "UserFld1") else {
            panic!("no reference")
        };
        assert!(v.len() <= 24 && v.ends_with("-CR"), "{v}");
    }
}
