//! Epicor connector configuration.

use crate::commands::DocKind;
use crate::fields::CustomerFieldMap;
use ledgerbridge_core::secrets::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Widths of the customer text fields ledgerbridge writes, in UTF-16 code units (SQL Server
/// `nvarchar`). **Assumption**: the contract facts give these fields' types but not their widths;
/// the defaults are the widths commonly seen in Epicor 10 databases (`Name`, address lines,
/// `City`, `State` 50, `Zip` 10, `PhoneNum` 20) and must be checked against the installation
/// (`docs/erp-connectors.md`). A longer value is cut at a grapheme boundary and the whole values
/// go to `comment_field`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EpicorCustomerText {
    pub name: usize,
    pub address: usize,
    pub city: usize,
    pub state: usize,
    pub zip: usize,
    pub phone: usize,
    /// Field that receives the full values when any was cut (`Comment`, a standard Customer
    /// field in the contract facts; its width is not given there and is assumed to hold them).
    pub comment_field: String,
}

impl Default for EpicorCustomerText {
    fn default() -> Self {
        EpicorCustomerText {
            name: 50,
            address: 50,
            city: 50,
            state: 50,
            zip: 10,
            phone: 20,
            comment_field: "Comment".into(),
        }
    }
}

/// Which ERP field carries the external reference, and how long it may be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefField {
    pub name: String,
    pub max_len: usize,
}

impl RefField {
    pub fn new(name: &str, max_len: usize) -> Self {
        RefField {
            name: name.to_owned(),
            max_len,
        }
    }
}

/// Reference fields per document kind. The defaults are standard header fields that OData
/// `$filter` can search; the lengths are assumptions to verify against the customer's schema
/// (see docs/erp-connectors.md). Customers have no free standard field, so the default is a
/// user-defined column that must be added in UD Column Maintenance (or pointed elsewhere).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpicorRefFields {
    pub customer: RefField,
    pub sales_order: RefField,
    pub invoice: RefField,
    pub credit_memo: RefField,
    pub cash_receipt: RefField,
    pub journal_entry: RefField,
}

impl Default for EpicorRefFields {
    fn default() -> Self {
        EpicorRefFields {
            customer: RefField::new("LBStripeRef_c", 50),
            sales_order: RefField::new("PONum", 50),
            invoice: RefField::new("PONum", 50),
            credit_memo: RefField::new("PONum", 50),
            cash_receipt: RefField::new("CheckRef", 30),
            journal_entry: RefField::new("Description", 30),
        }
    }
}

impl EpicorRefFields {
    pub fn for_kind(&self, kind: DocKind) -> &RefField {
        match kind {
            DocKind::Customer => &self.customer,
            DocKind::SalesOrder => &self.sales_order,
            DocKind::Invoice => &self.invoice,
            DocKind::CreditMemo => &self.credit_memo,
            DocKind::CashReceipt => &self.cash_receipt,
            DocKind::JournalEntry => &self.journal_entry,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpicorJournalConfig {
    pub book_id: String,
    pub journal_code: String,
    /// Journal group (`GLJrnGrpSvc`) the entries are added to.
    pub group_id: String,
}

/// Non-secret settings (from the deployment's configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpicorConfig {
    /// Server and instance, e.g. `https://erp.example.com/KineticLive` (no trailing slash needed).
    pub base_url: String,
    pub company: String,
    /// AR invoice group the invoices and credit memos are created in.
    pub invoice_group_id: String,
    /// Cash receipt group the receipts are created in.
    pub cash_group_id: String,
    pub journal: EpicorJournalConfig,
    #[serde(default)]
    pub ref_fields: EpicorRefFields,
    /// Widths of the customer's name, address and phone fields (assumed; see the type).
    #[serde(default)]
    pub customer_text: EpicorCustomerText,
    /// Where subscription values go on the customer: UD columns (`…_c`) to be added in UD
    /// Column Maintenance as character fields, or other fields named here.
    #[serde(default = "default_customer_fields")]
    pub customer_fields: CustomerFieldMap,
    /// Per-request timeout.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// How Epicor's error answers are read.
    #[serde(default)]
    pub errors: EpicorErrorSettings,
    /// How the day's cash, invoice and journal groups are named.
    #[serde(default)]
    pub groups: EpicorGroupSettings,
    /// Whether a group is posted after each document is created in it.
    #[serde(default)]
    pub posting: EpicorPosting,
    /// Payment method code of the mapping (e.g. `CC`, `STRIPE`) → Epicor `PMUID` (the internal
    /// id of a PayMethod row; `CashHead` has no text payment-method field). The default ids are
    /// an assumption: set them to the ids of the company's PayMethod rows.
    #[serde(default = "default_payment_methods")]
    pub payment_methods: BTreeMap<String, i64>,
    /// How the mapping's GL accounts become Epicor's internal `GLAccount`.
    #[serde(default)]
    pub gl_accounts: EpicorGlAccounts,
    /// The connector's gate: circuit breaker, `Retry-After` hold and optional request rate
    /// (`crate::gate`; every field optional, the rate off unless set).
    #[serde(default)]
    pub gate: crate::gate::GateConfig,
}

/// Epicor's `GLAccount` is the internal account, segment values joined by `|` (e.g. `1010|00`);
/// the mapping holds display accounts (`1010-00`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EpicorGlAccounts {
    pub resolve: GlAccountResolve,
    /// The display separator of the chart of accounts, which splits the mapping's accounts into
    /// segments (`segments`), and which an account already in internal form does not contain.
    pub separator: String,
}

impl Default for EpicorGlAccounts {
    fn default() -> Self {
        EpicorGlAccounts {
            resolve: GlAccountResolve::Segments,
            separator: "-".into(),
        }
    }
}

/// `segments`: split the display account on the separator and join with `|` (production code
/// builds the account from segment values); `lookup`: ask `GLAccountSvc/GLAccounts` for the
/// account whose display form (`GLAcctDispGLAcctDisp`) is the mapping's account (that this
/// joined column can be filtered on is an assumption).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GlAccountResolve {
    Segments,
    Lookup,
}

/// The default payment-method ids (an assumption; see [`EpicorConfig::payment_methods`]).
pub fn default_payment_methods() -> BTreeMap<String, i64> {
    [("STRIPE", 1), ("CC", 2), ("ACH", 3), ("SEPA", 4)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

/// The group of a day: `pattern` with `{prefix}` (the configured group id: `cash_group_id`,
/// `invoice_group_id`, `journal.group_id`), `{yyyy}`, `{yy}`, `{mm}`, `{dd}` of the document date.
/// Epicor's `GroupID` length is not in any captured schema; the default pattern's 14 characters
/// for an 8-character prefix are an assumption, which is why the pattern is a setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EpicorGroupSettings {
    pub pattern: String,
    /// Bank account of new cash groups (`CashGrp.BankAcctID`); Epicor's default when unset.
    pub bank_acct_id: Option<String>,
}

impl Default for EpicorGroupSettings {
    fn default() -> Self {
        EpicorGroupSettings {
            pattern: "{prefix}{yy}{mm}{dd}".into(),
            bank_acct_id: None,
        }
    }
}

/// `after_create` (the default): the group is posted after each document (cash:
/// `CashRecPostSvc`; invoices and credit memos: `InvcGrpSvc/PostInvoices`), so an invoice is
/// open AR and takes cash as soon as it is booked, as before groups existed in the connector;
/// `none`: documents stay entered in their group for an accountant to post (Epicor then refuses
/// to apply cash to the unposted invoices, and those receipts are parked with its message).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EpicorPosting {
    None,
    #[default]
    AfterCreate,
}

/// Epicor answers many business-rule failures with HTTP 500 and an `ErrorMessage`; those are
/// permanent (the document is parked with Epicor's words) unless the message contains one of
/// `transient_markers` (case-insensitive). The default markers are an assumption: no source
/// lists the messages of Epicor's transient failures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpicorErrorSettings {
    pub transient_markers: Vec<String>,
}

impl Default for EpicorErrorSettings {
    fn default() -> Self {
        EpicorErrorSettings {
            transient_markers: [
                "deadlock",
                "timeout",
                "timed out",
                "temporarily",
                "try again",
                "unavailable",
                "being used by another user",
                "an unexpected internal problem",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

fn default_timeout_ms() -> u64 {
    10_000
}

/// UD columns on `Customer` (assumed names: they must exist or be renamed here).
pub fn default_customer_fields() -> CustomerFieldMap {
    use crate::fields::*;
    field_map(&[
        (SUBSCRIPTION_ID, "LBSubscription_c", 50),
        (SUBSCRIPTION_STATUS, "LBSubStatus_c", 20),
        (SUBSCRIPTION_PLAN, "LBSubPlan_c", 50),
        (SUBSCRIPTION_QUANTITY, "LBSubQty_c", 10),
        (SUBSCRIPTION_PERIOD_END, "LBSubPeriodEnd_c", 10),
    ])
}

/// The user identity sent alongside the API key.
#[derive(Clone, Debug)]
pub enum EpicorAuth {
    Basic {
        user: String,
        password: Secret<String>,
    },
    /// A token from `TokenResource.svc` or the identity provider.
    Bearer(Secret<String>),
}

#[derive(Clone, Debug)]
pub struct EpicorCredentials {
    pub api_key: Secret<String>,
    pub auth: EpicorAuth,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_settings_parse_with_every_epicor_setting() {
        let text = include_str!("../../../../config/erp-settings.epicor.example.json");
        let cfg: EpicorConfig = serde_json::from_str(text).unwrap();
        assert_eq!(cfg.posting, EpicorPosting::AfterCreate);
        assert_eq!(cfg.payment_methods, default_payment_methods());
        assert_eq!(cfg.groups, EpicorGroupSettings::default());
        assert_eq!(cfg.gl_accounts, EpicorGlAccounts::default());
        assert_eq!(cfg.errors, EpicorErrorSettings::default());
        assert_eq!(cfg.ref_fields, EpicorRefFields::default());
        let settings = crate::settings::ErpSettings::from_json(
            &ledgerbridge_core::secrets::Secret::new(text.to_owned()),
        );
        assert!(settings.is_ok());
        // Settings without the new fields keep the defaults.
        let old: EpicorConfig = serde_json::from_str(
            r#"{"base_url":"https://x","company":"C","invoice_group_id":"I","cash_group_id":"C",
                "journal":{"book_id":"MAIN","journal_code":"GJ","group_id":"G"}}"#,
        )
        .unwrap();
        assert_eq!(old.posting, EpicorPosting::AfterCreate);
        assert_eq!(old.gl_accounts.resolve, GlAccountResolve::Segments);
    }
}
