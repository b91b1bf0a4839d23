//! Sage 500 connector configuration. Names the project could not confirm against a Sage 500
//! installation (every staging table except `StgSalesOrder`/`StgSOLine`, every procedure
//! except `spSOapiSalesOrdIns`/`spglAPIPostBatchlessGLPosting`, the reference columns, the
//! migration log table and the procedures' parameter names) are configurable and documented
//! as unconfirmed in docs/erp-connectors.md.

use crate::commands::DocKind;
use crate::fields::CustomerFieldMap;
use ledgerbridge_core::secrets::Secret;
use serde::{Deserialize, Serialize};

/// How the connector reaches the Sage 500 database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sage500Transport {
    /// The HTTP staging facade (`{base_url}/sage500/{company}/batches`, `lookup`), as the
    /// project's sandbox implements it; authenticated with `x-api-key`.
    #[default]
    Http,
    /// SQL Server directly (cargo feature `sqlserver`), from an on-premises agent.
    Sqlserver,
}

/// Where one document kind is staged, which procedure migrates it, and how it is found again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sage500DocSpec {
    pub procedure: String,
    pub header_table: String,
    #[serde(default)]
    pub line_table: Option<String>,
    /// The `t…` table the procedure writes the document to.
    pub target_table: String,
    /// Column of `target_table` (and of the header staging row) holding the external reference.
    pub reference_column: String,
    /// Column of `target_table` returned as the ERP document id.
    pub key_column: String,
}

fn spec(
    procedure: &str,
    header: &str,
    lines: Option<&str>,
    target: &str,
    reference: &str,
    key: &str,
) -> Sage500DocSpec {
    Sage500DocSpec {
        procedure: procedure.into(),
        header_table: header.into(),
        line_table: lines.map(String::from),
        target_table: target.into(),
        reference_column: reference.into(),
        key_column: key.into(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sage500Docs {
    pub customer: Sage500DocSpec,
    pub sales_order: Sage500DocSpec,
    pub invoice: Sage500DocSpec,
    pub credit_memo: Sage500DocSpec,
    pub cash_receipt: Sage500DocSpec,
    pub journal_entry: Sage500DocSpec,
}

impl Default for Sage500Docs {
    fn default() -> Self {
        Sage500Docs {
            customer: spec(
                "spARapiCustomerIns",
                "StgCustomer",
                None,
                "tarCustomer",
                "UserFld1",
                "CustKey",
            ),
            sales_order: spec(
                "spSOapiSalesOrdIns",
                "StgSalesOrder",
                Some("StgSOLine"),
                "tsoSalesOrder",
                "CustPONo",
                "TranNo",
            ),
            invoice: spec(
                "spARapiInvoiceIns",
                "StgInvoice",
                Some("StgInvoiceLine"),
                "tarInvoice",
                "UserFld1",
                "TranNo",
            ),
            credit_memo: spec(
                "spARapiInvoiceIns",
                "StgInvoice",
                Some("StgInvoiceLine"),
                "tarInvoice",
                "UserFld1",
                "TranNo",
            ),
            cash_receipt: spec(
                "spARapiCustPmtIns",
                "StgCustPmt",
                Some("StgCustPmtAppl"),
                "tarCustPmt",
                "UserFld1",
                "TranNo",
            ),
            journal_entry: spec(
                "spglAPIPostBatchlessGLPosting",
                "#tciTransToPost",
                None,
                "tglTransaction",
                "TranDesc",
                "BatchKey",
            ),
        }
    }
}

impl Sage500Docs {
    pub fn for_kind(&self, kind: DocKind) -> &Sage500DocSpec {
        match kind {
            DocKind::Customer => &self.customer,
            DocKind::SalesOrder => &self.sales_order,
            DocKind::Invoice => &self.invoice,
            DocKind::CreditMemo => &self.credit_memo,
            DocKind::CashReceipt => &self.cash_receipt,
            DocKind::JournalEntry => &self.journal_entry,
        }
    }

    pub fn all(&self) -> [&Sage500DocSpec; 6] {
        [
            &self.customer,
            &self.sales_order,
            &self.invoice,
            &self.credit_memo,
            &self.cash_receipt,
            &self.journal_entry,
        ]
    }
}

/// SQL Server specifics (transport `sqlserver`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sage500SqlConfig {
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    pub database: String,
    /// Accept the server's certificate without validation (self-signed on-premises servers).
    #[serde(default)]
    pub trust_server_certificate: bool,
    /// Parameter names the API procedures take for the session key and the company
    /// (unconfirmed; the procedures are called as
    /// `EXEC @rc = [proc] {session_param} = @P1, {company_param} = @P2`).
    #[serde(default = "default_session_param")]
    pub session_param: String,
    #[serde(default = "default_company_param")]
    pub company_param: String,
    /// Migration log table and its columns (unconfirmed).
    #[serde(default = "default_log_table")]
    pub log_table: String,
    #[serde(default = "default_log_message_column")]
    pub log_message_column: String,
    /// `CREATE TABLE #tciTransToPost (…)` as the installation defines it; journals cannot be
    /// posted over SQL Server without it (the temporary table must exist on the connection
    /// that calls the procedure).
    #[serde(default)]
    pub gl_temp_table_ddl: Option<String>,
}

fn default_port() -> u16 {
    1433
}
fn default_session_param() -> String {
    "@iSessionKey".into()
}
fn default_company_param() -> String {
    "@iCompanyID".into()
}
fn default_log_table() -> String {
    "tdmMigrationLogWrk".into()
}
fn default_log_message_column() -> String {
    "Comment".into()
}

/// Where a customer's e-mail address is found (all names unconfirmed). A stock Sage 500 keeps
/// it on the customer's primary contact: `tarCustomer.PrimaryCntctKey` → `tciContact.CntctKey`,
/// column `tciContact.EMailAddr`. The customer table and key are those of `docs.customer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Sage500EmailLookup {
    /// Table with the e-mail column.
    pub contact_table: String,
    /// Its key, joined to `customer_contact_column`.
    pub contact_key_column: String,
    /// Customer-table column pointing at the contact.
    pub customer_contact_column: String,
    /// The e-mail column (compared trimmed and case-insensitively).
    pub email_column: String,
    /// Customer-table column with the user-facing customer code.
    pub customer_id_column: String,
}

impl Default for Sage500EmailLookup {
    fn default() -> Self {
        Sage500EmailLookup {
            contact_table: "tciContact".into(),
            contact_key_column: "CntctKey".into(),
            customer_contact_column: "PrimaryCntctKey".into(),
            email_column: "EMailAddr".into(),
            customer_id_column: "CustID".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sage500Config {
    /// Sage 500 `CompanyID`.
    pub company: String,
    #[serde(default)]
    pub transport: Sage500Transport,
    /// Root of the HTTP facade (transport `http`).
    #[serde(default)]
    pub base_url: Option<String>,
    /// SQL Server connection (transport `sqlserver`).
    #[serde(default)]
    pub sqlserver: Option<Sage500SqlConfig>,
    #[serde(default)]
    pub docs: Sage500Docs,
    /// How customers are found by e-mail (unconfirmed names).
    #[serde(default)]
    pub customer_email: Sage500EmailLookup,
    /// Longest reference the reference columns hold. Stock `UserFld1`-style columns may be
    /// shorter than a shortened reference (at least 21 characters); verify on the install.
    #[serde(default = "default_ref_len")]
    pub reference_max_len: usize,
    /// `TranType` staged for invoices and credit memos (unconfirmed values).
    #[serde(default = "default_invoice_type")]
    pub invoice_tran_type: String,
    #[serde(default = "default_credit_memo_type")]
    pub credit_memo_tran_type: String,
    /// Warehouse staged on sales order lines, when the installation needs one.
    #[serde(default)]
    pub warehouse_id: Option<String>,
    /// Where subscription values go on the customer (columns of the customer staging row and
    /// `tarCustomer`). The defaults use the `UserFld` columns the reference (`UserFld1`) leaves
    /// free; their 15-character length is an assumption to verify on the install.
    #[serde(default = "default_customer_fields")]
    pub customer_fields: CustomerFieldMap,
    /// Column of the customer table with the time of its last change (read as UTC; assumed
    /// name), for the scheduled ERP → Stripe sync.
    #[serde(default = "default_changed_column")]
    pub customer_changed_column: String,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

/// Status, seats and period end in `UserFld2`–`UserFld4`; the plan has no free user field by
/// default (map it to a column the installation adds).
pub fn default_customer_fields() -> CustomerFieldMap {
    use crate::fields::*;
    field_map(&[
        (SUBSCRIPTION_STATUS, "UserFld2", 15),
        (SUBSCRIPTION_QUANTITY, "UserFld3", 15),
        (SUBSCRIPTION_PERIOD_END, "UserFld4", 15),
    ])
}

fn default_changed_column() -> String {
    "UpdateDate".into()
}

fn default_ref_len() -> usize {
    30
}
fn default_invoice_type() -> String {
    "501".into()
}
fn default_credit_memo_type() -> String {
    "502".into()
}
fn default_timeout_ms() -> u64 {
    30_000
}

impl Sage500Config {
    /// HTTP facade configuration with every default.
    pub fn http(base_url: impl Into<String>, company: impl Into<String>) -> Self {
        Sage500Config {
            company: company.into(),
            transport: Sage500Transport::Http,
            base_url: Some(base_url.into()),
            sqlserver: None,
            docs: Sage500Docs::default(),
            customer_email: Sage500EmailLookup::default(),
            reference_max_len: default_ref_len(),
            invoice_tran_type: default_invoice_type(),
            credit_memo_tran_type: default_credit_memo_type(),
            warehouse_id: None,
            customer_fields: default_customer_fields(),
            customer_changed_column: default_changed_column(),
            timeout_ms: default_timeout_ms(),
        }
    }
}

/// `api_key` for the HTTP facade; `user` + `password` for a SQL Server login.
#[derive(Clone, Debug, Default)]
pub struct Sage500Credentials {
    pub api_key: Option<Secret<String>>,
    pub user: Option<String>,
    pub password: Option<Secret<String>>,
}
