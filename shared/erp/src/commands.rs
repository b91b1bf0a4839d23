//! The ERP-neutral command model. Every command carries an [`ExternalRef`] derived from a Stripe
//! object id and a document kind; connectors write it into a searchable ERP field so that a
//! retry can find what an earlier attempt created.
//!
//! Amounts are [`Money`] (integer minor units) and reach an ERP only as exact decimals with the
//! currency's scale ([`Money::to_decimal`]).

use ledgerbridge_core::ids::{ErpDocumentId, StripeObjectId};
use ledgerbridge_core::money::checked_sum;
use ledgerbridge_core::{Currency, Money};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("invalid Stripe object id {0:?}")]
    InvalidStripeId(String),
    #[error("field {field} is required")]
    Missing { field: &'static str },
    #[error("field {field} is invalid: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("amount {0} is in a different currency than the document ({1})")]
    CurrencyMismatch(Money, Currency),
    #[error("journal is unbalanced: debits {debits} ≠ credits {credits}")]
    Unbalanced { debits: Money, credits: Money },
    #[error("amount overflow")]
    Overflow,
    #[error("reference field of {max_len} characters is too short for a unique reference")]
    ReferenceFieldTooShort { max_len: usize },
}

/// What kind of ERP document a command makes. The code is part of the external reference, so
/// one Stripe object can safely give rise to several documents (an order and its receipt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocKind {
    Customer,
    SalesOrder,
    Invoice,
    CashReceipt,
    CreditMemo,
    JournalEntry,
}

impl DocKind {
    pub const ALL: [DocKind; 6] = [
        DocKind::Customer,
        DocKind::SalesOrder,
        DocKind::Invoice,
        DocKind::CashReceipt,
        DocKind::CreditMemo,
        DocKind::JournalEntry,
    ];

    /// Two-letter code used in the external reference.
    pub fn code(self) -> &'static str {
        match self {
            DocKind::Customer => "CU",
            DocKind::SalesOrder => "SO",
            DocKind::Invoice => "IN",
            DocKind::CashReceipt => "CR",
            DocKind::CreditMemo => "CM",
            DocKind::JournalEntry => "JE",
        }
    }

    /// Name as stored in cross-reference records (`XrefRecord::doc_kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Customer => "customer",
            DocKind::SalesOrder => "sales_order",
            DocKind::Invoice => "invoice",
            DocKind::CashReceipt => "cash_receipt",
            DocKind::CreditMemo => "credit_memo",
            DocKind::JournalEntry => "journal_entry",
        }
    }
}

impl fmt::Display for DocKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Length of the hash suffix used when a reference has to be shortened.
const HASH_CHARS: usize = 10;
/// `LB-` + `~` + hash + `-XX`.
const SHORT_OVERHEAD: usize = 3 + 1 + HASH_CHARS + 3;

/// A deterministic external reference: `LB-{stripe object id}-{doc kind code}`, for example
/// `LB-ch_3MqL1r2eZvKYlo2C1k0bK5tY-CR`.
///
/// ERP fields have length limits, so [`ExternalRef::render`] shortens a reference that does not
/// fit to `LB-{id prefix}~{10 hex of SHA-256 of the full reference}-{code}`, which is still
/// deterministic (every retry computes the same string) and still starts with a readable id.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExternalRef {
    stripe_id: StripeObjectId,
    kind: DocKind,
}

impl ExternalRef {
    /// Stripe ids contain only `[A-Za-z0-9_]` and are at most 255 characters; anything else is
    /// rejected so a reference can be embedded in an OData filter or SQL parameter verbatim.
    pub fn new(stripe_id: &StripeObjectId, kind: DocKind) -> Result<Self, CommandError> {
        let s = stripe_id.as_str();
        let ok = !s.is_empty()
            && s.len() <= 255
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !ok {
            return Err(CommandError::InvalidStripeId(s.chars().take(64).collect()));
        }
        Ok(ExternalRef {
            stripe_id: stripe_id.clone(),
            kind,
        })
    }

    pub fn stripe_id(&self) -> &StripeObjectId {
        &self.stripe_id
    }

    pub fn kind(&self) -> DocKind {
        self.kind
    }

    /// The unshortened form `LB-{id}-{code}`.
    pub fn full(&self) -> String {
        format!("LB-{}-{}", self.stripe_id, self.kind.code())
    }

    /// The form that fits a field of `max_len` characters (see the type's documentation).
    pub fn render(&self, max_len: usize) -> Result<String, CommandError> {
        let full = self.full();
        if full.len() <= max_len {
            return Ok(full);
        }
        if max_len < SHORT_OVERHEAD + 4 {
            return Err(CommandError::ReferenceFieldTooShort { max_len });
        }
        let digest = Sha256::digest(full.as_bytes());
        let hash = hex::encode(digest);
        let hash = hash.get(..HASH_CHARS).unwrap_or(&hash);
        let keep = max_len - SHORT_OVERHEAD;
        let prefix = self.stripe_id.as_str().get(..keep).unwrap_or("");
        Ok(format!("LB-{prefix}~{hash}-{}", self.kind.code()))
    }
}

impl fmt::Display for ExternalRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full())
    }
}

impl fmt::Debug for ExternalRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExternalRef({})", self.full())
    }
}

/// A calendar date `YYYY-MM-DD` (the ERP's company-local posting date, chosen by the caller).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ErpDate(String);

impl ErpDate {
    pub fn parse(s: &str) -> Result<Self, CommandError> {
        let invalid = || CommandError::Invalid {
            field: "date",
            reason: format!(
                "{:?} is not YYYY-MM-DD",
                s.chars().take(32).collect::<String>()
            ),
        };
        crate::time::parse_ymd(s).ok_or_else(invalid)?;
        Ok(ErpDate(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The UTC calendar date of a Unix time (see [`crate::time`]). Booking dates use
    /// [`ErpDate::from_unix_in`] with the company's time zone; this one is for UTC days
    /// (query windows, reports).
    pub fn from_unix(unix_secs: i64) -> Result<Self, CommandError> {
        ErpDate::parse(&crate::time::ymd_of_unix(unix_secs))
    }

    /// The company-local calendar date of a Unix time: the date every booking takes (see
    /// [`crate::time::CompanyTimeZone`]).
    pub fn from_unix_in(
        unix_secs: i64,
        zone: &crate::time::CompanyTimeZone,
    ) -> Result<Self, CommandError> {
        ErpDate::parse(&zone.ymd_of_unix(unix_secs))
    }

    /// The Unix time of the date's midnight UTC (the inverse of [`ErpDate::from_unix`]).
    pub fn unix_midnight(&self) -> i64 {
        let num = |r: std::ops::Range<usize>| -> i64 {
            self.0.get(r).and_then(|v| v.parse().ok()).unwrap_or(0)
        };
        crate::time::unix_midnight(num(0..4), num(5..7), num(8..10))
    }

    /// `YYYY-MM` — the fiscal period key the sandbox uses for closed periods.
    pub fn period(&self) -> &str {
        self.0.get(..7).unwrap_or(&self.0)
    }
    pub fn year(&self) -> i32 {
        self.0.get(..4).and_then(|y| y.parse().ok()).unwrap_or(0)
    }
}

impl TryFrom<String> for ErpDate {
    type Error = CommandError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        ErpDate::parse(&s)
    }
}

impl From<ErpDate> for String {
    fn from(d: ErpDate) -> String {
        d.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Address {
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
}

/// Create a customer, or update it when one with the same reference exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerUpsert {
    pub reference: ExternalRef,
    /// The ERP's user-facing customer code (chosen by the mapping layer; ERPs limit its length).
    pub customer_id: String,
    pub name: String,
    pub email: Option<String>,
    pub currency: Currency,
    #[serde(default)]
    pub address: Address,
    /// Main phone number, as the customer gave it (carried where the ERP has a phone field).
    #[serde(default)]
    pub phone: Option<String>,
}

/// One goods or service line of an order, invoice or credit memo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentLine {
    /// ERP item / part number.
    pub item_id: String,
    pub description: String,
    pub quantity: Decimal,
    pub unit_price: Money,
    /// Revenue account override, where the ERP takes one on the line.
    pub gl_account: Option<String>,
}

impl DocumentLine {
    /// `quantity × unit_price`, exact in the currency's minor unit (an inexact product is an
    /// error, never silently rounded).
    pub fn extended(&self) -> Result<Money, CommandError> {
        let v = self
            .unit_price
            .to_decimal()
            .checked_mul(self.quantity)
            .ok_or(CommandError::Overflow)?;
        Money::from_decimal(v, self.unit_price.currency).map_err(|e| CommandError::Invalid {
            field: "lines",
            reason: e.to_string(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalesOrder {
    pub reference: ExternalRef,
    pub customer_id: String,
    pub order_date: ErpDate,
    pub currency: Currency,
    pub lines: Vec<DocumentLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    pub reference: ExternalRef,
    pub customer_id: String,
    pub invoice_date: ErpDate,
    pub due_date: Option<ErpDate>,
    pub currency: Currency,
    pub lines: Vec<DocumentLine>,
    /// The ERP order this invoice bills, when known.
    pub sales_order: Option<ErpDocumentId>,
}

/// What a cash receipt is applied to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "erp_id", rename_all = "snake_case")]
pub enum Application {
    Invoice(ErpDocumentId),
    SalesOrder(ErpDocumentId),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CashReceipt {
    pub reference: ExternalRef,
    pub customer_id: String,
    pub receipt_date: ErpDate,
    pub amount: Money,
    /// ERP payment method / tender code (e.g. `STRIPE`).
    pub payment_method: String,
    /// Where the receipt is applied; `None` posts it on account (unapplied).
    pub applies_to: Option<Application>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditMemo {
    pub reference: ExternalRef,
    pub customer_id: String,
    pub memo_date: ErpDate,
    pub currency: Currency,
    pub lines: Vec<DocumentLine>,
    pub reason: Option<String>,
    /// The invoice being credited, when known.
    pub applies_to_invoice: Option<ErpDocumentId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Debit,
    Credit,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalLine {
    pub gl_account: String,
    pub side: Side,
    /// Positive amount on `side`.
    pub amount: Money,
    pub memo: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub reference: ExternalRef,
    pub posting_date: ErpDate,
    pub currency: Currency,
    pub description: String,
    pub lines: Vec<JournalLine>,
}

impl JournalEntry {
    /// (debits, credits), overflow-checked.
    pub fn totals(&self) -> Result<(Money, Money), CommandError> {
        let sum = |side: Side| {
            checked_sum(
                self.currency,
                self.lines
                    .iter()
                    .filter(|l| l.side == side)
                    .map(|l| l.amount),
            )
            .map_err(|_| CommandError::Overflow)
        };
        Ok((sum(Side::Debit)?, sum(Side::Credit)?))
    }
}

/// One thing to do in the ERP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ErpCommand {
    UpsertCustomer(CustomerUpsert),
    CreateSalesOrder(SalesOrder),
    CreateInvoice(Invoice),
    CreateCashReceipt(CashReceipt),
    CreateCreditMemo(CreditMemo),
    PostJournalEntry(JournalEntry),
}

impl ErpCommand {
    pub fn reference(&self) -> &ExternalRef {
        match self {
            ErpCommand::UpsertCustomer(c) => &c.reference,
            ErpCommand::CreateSalesOrder(c) => &c.reference,
            ErpCommand::CreateInvoice(c) => &c.reference,
            ErpCommand::CreateCashReceipt(c) => &c.reference,
            ErpCommand::CreateCreditMemo(c) => &c.reference,
            ErpCommand::PostJournalEntry(c) => &c.reference,
        }
    }

    /// The document kind this command produces.
    pub fn kind(&self) -> DocKind {
        match self {
            ErpCommand::UpsertCustomer(_) => DocKind::Customer,
            ErpCommand::CreateSalesOrder(_) => DocKind::SalesOrder,
            ErpCommand::CreateInvoice(_) => DocKind::Invoice,
            ErpCommand::CreateCashReceipt(_) => DocKind::CashReceipt,
            ErpCommand::CreateCreditMemo(_) => DocKind::CreditMemo,
            ErpCommand::PostJournalEntry(_) => DocKind::JournalEntry,
        }
    }

    /// The document's amount as posted (line total; receipt amount; a journal's debits),
    /// recorded with the cross-reference for the audit. `None` for customers and for a
    /// document whose total cannot be computed (it would not pass [`ErpCommand::validate`]).
    pub fn posted_amount(&self) -> Option<Money> {
        match self {
            ErpCommand::UpsertCustomer(_) => None,
            ErpCommand::CreateSalesOrder(c) => lines_total(c.currency, &c.lines).ok(),
            ErpCommand::CreateInvoice(c) => lines_total(c.currency, &c.lines).ok(),
            ErpCommand::CreateCreditMemo(c) => lines_total(c.currency, &c.lines).ok(),
            ErpCommand::CreateCashReceipt(c) => Some(c.amount),
            ErpCommand::PostJournalEntry(j) => j.totals().ok().map(|(debits, _)| debits),
        }
    }

    /// ERP-independent checks: required fields, one currency per document, positive amounts,
    /// exact line totals, balanced journals, and that the reference's kind matches the command.
    pub fn validate(&self) -> Result<(), CommandError> {
        if self.reference().kind() != self.kind() {
            return Err(CommandError::Invalid {
                field: "reference",
                reason: format!(
                    "reference kind {} does not match command kind {}",
                    self.reference().kind(),
                    self.kind()
                ),
            });
        }
        match self {
            ErpCommand::UpsertCustomer(c) => {
                required("customer_id", &c.customer_id)?;
                required("name", &c.name)
            }
            ErpCommand::CreateSalesOrder(c) => {
                required("customer_id", &c.customer_id)?;
                lines_total(c.currency, &c.lines).map(drop)
            }
            ErpCommand::CreateInvoice(c) => {
                required("customer_id", &c.customer_id)?;
                lines_total(c.currency, &c.lines).map(drop)
            }
            ErpCommand::CreateCreditMemo(c) => {
                required("customer_id", &c.customer_id)?;
                lines_total(c.currency, &c.lines).map(drop)
            }
            ErpCommand::CreateCashReceipt(c) => {
                required("customer_id", &c.customer_id)?;
                required("payment_method", &c.payment_method)?;
                if c.amount.minor <= 0 {
                    return Err(CommandError::Invalid {
                        field: "amount",
                        reason: "must be positive".into(),
                    });
                }
                Ok(())
            }
            ErpCommand::PostJournalEntry(j) => {
                required("description", &j.description)?;
                if j.lines.len() < 2 {
                    return Err(CommandError::Invalid {
                        field: "lines",
                        reason: "a journal needs at least two lines".into(),
                    });
                }
                for l in &j.lines {
                    required("gl_account", &l.gl_account)?;
                    if l.amount.currency != j.currency {
                        return Err(CommandError::CurrencyMismatch(l.amount, j.currency));
                    }
                    if l.amount.minor <= 0 {
                        return Err(CommandError::Invalid {
                            field: "lines.amount",
                            reason: "journal line amounts must be positive".into(),
                        });
                    }
                }
                let (debits, credits) = j.totals()?;
                if debits != credits {
                    return Err(CommandError::Unbalanced { debits, credits });
                }
                Ok(())
            }
        }
    }
}

fn required(field: &'static str, value: &str) -> Result<(), CommandError> {
    if value.trim().is_empty() {
        Err(CommandError::Missing { field })
    } else {
        Ok(())
    }
}

/// Total of document lines in `currency`; rejects empty documents, foreign-currency lines,
/// non-positive quantities or prices and inexact extensions.
pub fn lines_total(currency: Currency, lines: &[DocumentLine]) -> Result<Money, CommandError> {
    if lines.is_empty() {
        return Err(CommandError::Missing { field: "lines" });
    }
    let mut total = Money::zero(currency);
    for l in lines {
        required("item_id", &l.item_id)?;
        if l.unit_price.currency != currency {
            return Err(CommandError::CurrencyMismatch(l.unit_price, currency));
        }
        if l.quantity <= Decimal::ZERO || l.unit_price.minor < 0 {
            return Err(CommandError::Invalid {
                field: "lines",
                reason: "quantity must be positive and price not negative".into(),
            });
        }
        total = total
            .checked_add(l.extended()?)
            .map_err(|_| CommandError::Overflow)?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn r(id: &str, kind: DocKind) -> ExternalRef {
        ExternalRef::new(&StripeObjectId::new(id), kind).unwrap()
    }

    #[test]
    fn reference_is_deterministic_and_kind_specific() {
        let a = r("ch_3MqL1r2eZvKYlo2C1k0bK5tY", DocKind::CashReceipt);
        assert_eq!(a.full(), "LB-ch_3MqL1r2eZvKYlo2C1k0bK5tY-CR");
        assert_eq!(a.render(50).unwrap(), a.full());
        let b = r("ch_3MqL1r2eZvKYlo2C1k0bK5tY", DocKind::SalesOrder);
        assert_ne!(a.full(), b.full());
    }

    #[test]
    fn long_references_are_shortened_deterministically() {
        let a = r("ch_3MqL1r2eZvKYlo2C1k0bK5tY", DocKind::CashReceipt);
        let short = a.render(30).unwrap();
        assert_eq!(short.len(), 30);
        assert!(short.starts_with("LB-ch_3MqL1r2eZv~"), "{short}");
        assert!(short.ends_with("-CR"));
        assert_eq!(short, a.render(30).unwrap());
        // a different id with the same prefix gets a different reference
        let b = r("ch_3MqL1r2eZvKYlo2C1k0bK5tZ", DocKind::CashReceipt);
        assert_ne!(short, b.render(30).unwrap());
        assert!(a.render(10).is_err());
    }

    #[test]
    fn rejects_ids_that_could_break_filters() {
        for bad in ["", "ch_1' or 1 eq 1", "ch-1", "ch_1;DROP"] {
            assert!(ExternalRef::new(&StripeObjectId::new(bad), DocKind::Invoice).is_err());
        }
    }

    #[test]
    fn dates_convert_to_and_from_unix_time() {
        for (secs, day) in [
            (0, "1970-01-01"),
            (951_782_400, "2000-02-29"),
            (1_788_523_200, "2026-09-04"),
            (4_107_542_399, "2100-02-28"),
        ] {
            let d = ErpDate::from_unix(secs).unwrap();
            assert_eq!(d.as_str(), day);
            assert_eq!(d.unix_midnight(), secs - secs.rem_euclid(86_400));
        }
    }

    #[test]
    fn dates_are_checked() {
        assert!(ErpDate::parse("2024-02-29").is_ok());
        assert!(ErpDate::parse("2023-02-29").is_err());
        assert!(ErpDate::parse("2024-13-01").is_err());
        assert!(ErpDate::parse("2024-1-01").is_err());
        assert_eq!(ErpDate::parse("2024-05-31").unwrap().period(), "2024-05");
    }

    proptest! {
        #[test]
        fn rendered_reference_always_fits(id in "[a-z]{2,4}_[A-Za-z0-9]{1,200}", max in 21usize..120) {
            let er = ExternalRef::new(&StripeObjectId::new(id), DocKind::JournalEntry).unwrap();
            let s = er.render(max).unwrap();
            prop_assert!(s.len() <= max);
            prop_assert!(s.starts_with("LB-") && s.ends_with("-JE"));
        }
    }
}
