//! Sage 500 connector configuration. Customers and sales orders go through Sage's own API
//! procedures (`spARapiCustomerIns`, `spSOapiSalesOrdIns`, vendor source); AR invoices, credit
//! memos, customer payments and GL journals have no public vendor API and go through site
//! procedures, off until configured. Names no source confirms (reference columns, the customer
//! `SetupStepKey`, the site procedures) are configurable and listed as assumptions in
//! docs/erp-connectors.md.

use crate::commands::DocKind;
use crate::fields::CustomerFieldMap;
use ledgerbridge_core::secrets::Secret;
use serde::{Deserialize, Serialize};

/// `SetupStepKey` of sales order insertion, open orders (vendor source TYL, constant
/// `SOInsertion_OPEN`): a blank `Status` becomes Open and only Open is accepted.
pub const SETUP_STEP_SO_OPEN: i64 = 2_100_600;

/// How the API procedures are called (the 11-parameter migration interface, vendor source TYL;
/// the values are those of the production caller QDT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Sage500ApiCall {
    /// `tsmMigrateSession.UserID` of the sessions the connector registers.
    pub user_id: String,
    /// `@iRptOption`: 0 log all, 1 none, 2 good only, 3 bad only.
    pub rpt_option: i64,
    /// `@iPrintWarnings`: 1 log warnings, 0 not.
    pub print_warnings: i64,
    /// Most calls of the procedure per session while `@oContinue = 1` (each call is time-boxed
    /// by Sage to 2-3 seconds). Reaching it leaves rows unprocessed, reported as retryable.
    pub max_calls: u32,
}

impl Default for Sage500ApiCall {
    fn default() -> Self {
        Sage500ApiCall {
            user_id: "ledgerbridge".into(),
            rpt_option: 3,
            print_warnings: 0,
            max_calls: 50,
        }
    }
}

/// Sales order header values the procedure needs explicitly (vendor source TYL: `Hold` and
/// `RequireSOAck` must end up 0/1 and fail when NULL; a blank `Status` is Open only under
/// `SetupStepKey` 2100600). `TranNo` is the caller's: `tran_no_prefix` followed by a hash of
/// the reference, 10 characters in all (`StgSalesOrder.TranNo` is varchar(10)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Sage500SalesOrder {
    /// At most 4 characters, so 6 or more characters of hash remain.
    pub tran_no_prefix: String,
    /// `Status` (list text; assumption: the procedure's list replacement takes "Open").
    pub status: String,
    /// `Hold` (0/1).
    pub hold: String,
    /// `RequireSOAck` (0/1).
    pub require_ack: String,
}

impl Default for Sage500SalesOrder {
    fn default() -> Self {
        Sage500SalesOrder {
            tran_no_prefix: "LB".into(),
            status: "Open".into(),
            hold: "0".into(),
            require_ack: "0".into(),
        }
    }
}

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
    /// `SetupStepKey` of the migration session registered for this procedure
    /// (`tsmMigrateSession`). Sales orders: 2100600 (open orders, vendor source TYL); no public
    /// source names the customer step, so it is unset (NULL) unless configured.
    #[serde(default)]
    pub setup_step_key: Option<i64>,
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
        setup_step_key: None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sage500Docs {
    pub customer: Sage500DocSpec,
    pub sales_order: Sage500DocSpec,
    /// Site procedures (no vendor API is public); `None` parks these documents with a reason.
    #[serde(default)]
    pub invoice: Option<Sage500DocSpec>,
    #[serde(default)]
    pub credit_memo: Option<Sage500DocSpec>,
    #[serde(default)]
    pub cash_receipt: Option<Sage500DocSpec>,
    #[serde(default)]
    pub journal_entry: Option<Sage500DocSpec>,
}

impl Default for Sage500Docs {
    fn default() -> Self {
        Sage500Docs {
            // The reference goes to CRMCustID (varchar(32) in StgCustomer and a tarCustomer
            // column): the only customer column the facts list that holds a reference
            // (UserFld1-4 hold 15). Assumption: the installation does not use CRMCustID for a
            // CRM link; configure another column otherwise.
            customer: spec(
                "spARapiCustomerIns",
                "StgCustomer",
                None,
                "tarCustomer",
                "CRMCustID",
                "CustKey",
            ),
            // The reference goes to TranCmnt (varchar(50)); CustPONo holds only 15.
            sales_order: Sage500DocSpec {
                setup_step_key: Some(SETUP_STEP_SO_OPEN),
                ..spec(
                    "spSOapiSalesOrdIns",
                    "StgSalesOrder",
                    Some("StgSOLine"),
                    "tsoSalesOrder",
                    "TranCmnt",
                    "TranNo",
                )
            },
            // No public source shows a Sage 500 API procedure or staging table for AR
            // invoices, customer payments or GL journals: off until configured (see
            // `Sage500Config::site_procedures` and docs/erp-connectors.md).
            invoice: None,
            credit_memo: None,
            cash_receipt: None,
            journal_entry: None,
        }
    }
}

/// Site procedures: the procedures a Sage partner installs for the documents Sage 500 has no
/// public API for. Each follows the vendor's migration API contract (11 parameters, `@oContinue`
/// loop, `@_oRetVal`, `Stg*` staging with `SessionKey`/`ProcessStatus`, failures in
/// `tdmMigrationLogWrk`); the names, staging tables and reference columns below are this
/// project's contract for them (assumptions, documented in docs/erp-connectors.md), not Sage's.
/// The journal procedure is expected to write a GL batch (`tciBatchLog`) with `tglPosting` rows
/// and post it with Sage's posting engine `spglSetAPIGLPosting`, which needs a Sage partner's
/// confirmation on the installation.
pub fn site_procedure_defaults() -> [(DocKind, Sage500DocSpec); 4] {
    let invoice = spec(
        "spLBapiARInvoiceIns",
        "StgLBARInvoice",
        Some("StgLBARInvoiceLine"),
        "tarInvoice",
        "TranCmnt",
        "TranNo",
    );
    [
        (DocKind::Invoice, invoice.clone()),
        (DocKind::CreditMemo, invoice),
        (
            DocKind::CashReceipt,
            spec(
                "spLBapiARCustPmtIns",
                "StgLBCustPmt",
                Some("StgLBCustPmtAppl"),
                "tarCustPmt",
                "TranCmnt",
                "TranNo",
            ),
        ),
        (
            DocKind::JournalEntry,
            spec(
                "spLBapiGLJournalIns",
                "StgLBGLJournal",
                None,
                "tglTransaction",
                "PostCmnt",
                "BatchKey",
            ),
        ),
    ]
}

/// Why a document kind without a configured procedure is parked.
pub fn unconfigured_reason(kind: DocKind) -> String {
    let what = match kind {
        DocKind::Invoice | DocKind::CreditMemo => "AR invoices and credit memos",
        DocKind::CashReceipt => "customer payments",
        DocKind::JournalEntry => {
            "GL journals (spglAPIPostBatchlessGLPosting posts inventory transactions 810-814 only)"
        }
        DocKind::Customer | DocKind::SalesOrder => "this document",
    };
    format!(
        "Sage 500 has no public API procedure for {what}: install the site procedure described \
         in docs/erp-connectors.md and set \"site_procedures\": true (or docs.{}) in the Sage 500 \
         settings, then replay",
        kind_key(kind)
    )
}

fn kind_key(kind: DocKind) -> &'static str {
    match kind {
        DocKind::Customer => "customer",
        DocKind::SalesOrder => "sales_order",
        DocKind::Invoice => "invoice",
        DocKind::CreditMemo => "credit_memo",
        DocKind::CashReceipt => "cash_receipt",
        DocKind::JournalEntry => "journal_entry",
    }
}

impl Sage500Docs {
    /// The procedure of `kind`, or `None` when it is not configured.
    pub fn for_kind(&self, kind: DocKind) -> Option<&Sage500DocSpec> {
        match kind {
            DocKind::Customer => Some(&self.customer),
            DocKind::SalesOrder => Some(&self.sales_order),
            DocKind::Invoice => self.invoice.as_ref(),
            DocKind::CreditMemo => self.credit_memo.as_ref(),
            DocKind::CashReceipt => self.cash_receipt.as_ref(),
            DocKind::JournalEntry => self.journal_entry.as_ref(),
        }
    }

    /// Every configured procedure.
    pub fn all(&self) -> Vec<&Sage500DocSpec> {
        [
            Some(&self.customer),
            Some(&self.sales_order),
            self.invoice.as_ref(),
            self.credit_memo.as_ref(),
            self.cash_receipt.as_ref(),
            self.journal_entry.as_ref(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Fill the unconfigured kinds with the site procedure defaults.
    pub fn with_site_procedures(mut self) -> Self {
        for (kind, spec) in site_procedure_defaults() {
            let slot = match kind {
                DocKind::Invoice => &mut self.invoice,
                DocKind::CreditMemo => &mut self.credit_memo,
                DocKind::CashReceipt => &mut self.cash_receipt,
                DocKind::JournalEntry => &mut self.journal_entry,
                DocKind::Customer | DocKind::SalesOrder => continue,
            };
            if slot.is_none() {
                *slot = Some(spec);
            }
        }
        self
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
}

fn default_port() -> u16 {
    1433
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
    /// The installation has the site procedures of [`site_procedure_defaults`] for AR
    /// invoices, credit memos, customer payments and GL journals (kinds configured under
    /// `docs` keep their own). Off by default: those documents are parked with
    /// [`unconfigured_reason`].
    #[serde(default)]
    pub site_procedures: bool,
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
    /// Customer updates (`Action` = 2: master data and the subscription user fields) are
    /// applied by Sage only to the columns a Data Import Manager job's column map allows
    /// (`tdiDataTrnsfrColumnMap.AllowUpdate`, vendor source TYL), for a job execution tied to
    /// the session. This is that job's `DataTrnsfrJobDefKey`; the connector ties each update
    /// session to it with a `tdiDataTrnsfrJobExecute` row (assumption: no source shows the
    /// table's other columns). Unset: linked customers are read-only and updates are parked
    /// with a reason saying so.
    #[serde(default)]
    pub customer_update_dim_job: Option<i64>,
    /// How the API procedures are called.
    #[serde(default)]
    pub api: Sage500ApiCall,
    /// Sales order header values and `TranNo` shape.
    #[serde(default)]
    pub sales_order: Sage500SalesOrder,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// The HTTP facade's gate (not used over SQL Server): circuit breaker, `Retry-After` hold and optional request rate
    /// (`crate::gate`; every field optional, the rate off unless set).
    #[serde(default)]
    pub gate: crate::gate::GateConfig,
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
            site_procedures: false,
            customer_email: Sage500EmailLookup::default(),
            reference_max_len: default_ref_len(),
            invoice_tran_type: default_invoice_type(),
            credit_memo_tran_type: default_credit_memo_type(),
            warehouse_id: None,
            customer_fields: default_customer_fields(),
            customer_changed_column: default_changed_column(),
            customer_update_dim_job: None,
            api: Sage500ApiCall::default(),
            sales_order: Sage500SalesOrder::default(),
            timeout_ms: default_timeout_ms(),
            gate: Default::default(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_settings_parse_with_the_defaults() {
        let text = include_str!("../../../../config/erp-settings.sage500.example.json");
        let cfg: Sage500Config = serde_json::from_str(text).unwrap();
        assert_eq!(cfg.api, Sage500ApiCall::default());
        assert_eq!(cfg.sales_order, Sage500SalesOrder::default());
        assert_eq!(cfg.customer_fields, default_customer_fields());
        assert_eq!(cfg.docs, Sage500Docs::default());
        assert!(!cfg.site_procedures && cfg.customer_update_dim_job.is_none());
        assert_eq!(
            cfg.docs.sales_order.setup_step_key,
            Some(SETUP_STEP_SO_OPEN)
        );
        assert_eq!(cfg.docs.customer.reference_column, "CRMCustID");
        assert!(cfg.docs.invoice.is_none() && cfg.docs.journal_entry.is_none());
        let site = cfg.docs.clone().with_site_procedures();
        assert_eq!(site.all().len(), 6);
        assert_eq!(
            site.journal_entry.map(|j| j.procedure),
            Some("spLBapiGLJournalIns".to_owned())
        );
        assert!(
            crate::settings::ErpSettings::from_json(&ledgerbridge_core::secrets::Secret::new(
                text.to_owned()
            ))
            .is_ok()
        );
    }
}
