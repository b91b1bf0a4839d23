//! `ledgerbridge audit --from DATE --to DATE [--csv FILE] [--repost]`: confirm that every
//! document ledgerbridge cross-referenced in a date range still exists in the ERP with the
//! amount and currency it posted (RELIABILITY row E7: a document deleted or changed by hand in
//! the ERP after its cross-reference was recorded).
//!
//! For each cross-reference of a document kind posted in the range (by the time it was
//! recorded), the connector reads the document back by its external reference
//! ([`ErpConnector::read_back`]). Findings:
//!
//! - **missing**: no document carries the reference;
//! - **different**: found under another number than the cross-reference holds, or with
//!   another amount or currency than was posted;
//! - **amount not recorded**: found, but the cross-reference was written before ledgerbridge
//!   stored amounts (not compared, never guessed);
//! - **amount not read**: found, but the connector does not read amounts back for this ERP
//!   (Sage 500);
//! - **unreadable**: the ERP answered with an error.
//!
//! Missing, different and unreadable documents are flagged, and the command then exits
//! non-zero. With `--repost`, a missing document is searched for by reference first (a
//! document found under another number is linked, never duplicated) and otherwise created
//! again from the command ledgerbridge stored with the cross-reference, through the same
//! search-then-create posting every command goes through ([`post_command`]); the
//! cross-reference then points at the new document (a conditional write: only while it
//! still points at the missing one).

use crate::backfill::{range_of, BackfillError};
use ledgerbridge_adapters::embedded::SqliteStore;
use ledgerbridge_core::ids::ErpDocumentId;
use ledgerbridge_core::ports::{StoreError, XrefAudit, XrefRecord};
use ledgerbridge_core::secrets::Secret;
use ledgerbridge_core::Money;
use ledgerbridge_erp::{
    post_command, AnyConnector, Application, DocKind, DocumentReadBack, ErpCommand, ErpConnector,
    ErpError, ErpSettings, ExternalRef, RetryPolicy,
};
use std::collections::HashMap;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct AuditArgs {
    /// First day posted (UTC, `YYYY-MM-DD`).
    #[arg(long)]
    pub from: String,
    /// Last day posted (UTC, `YYYY-MM-DD`, inclusive).
    #[arg(long)]
    pub to: String,
    /// The ERP's settings (the same JSON as `ledgerbridge serve --erp-settings-file`).
    #[arg(long)]
    pub erp_settings_file: PathBuf,
    /// Directory of the local SQLite files (as given to `ledgerbridge local` or `serve`).
    #[arg(long, default_value = ".local")]
    pub data_dir: PathBuf,
    /// Audit the AWS stack instead: its DynamoDB state table (AWS credentials, region and any
    /// endpoint from the environment, as the SDK reads them). `--data-dir` is then not used.
    #[arg(long)]
    pub state_table: Option<String>,
    /// Also write every finding as CSV to this file.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Re-post missing documents (after a search by reference).
    #[arg(long)]
    pub repost: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Range(#[from] BackfillError),
    #[error("no ledgerbridge store at {0}")]
    NoStore(PathBuf),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("ERP settings {path}: {source}")]
    Settings {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("ERP: {0}")]
    Erp(#[from] ErpError),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{flagged} document(s) flagged: {missing} missing, {different} different, {unreadable} unreadable")]
    Flagged {
        flagged: usize,
        missing: usize,
        different: usize,
        unreadable: usize,
    },
}

/// What the audit found for one cross-referenced document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Ok,
    Missing,
    Different,
    AmountNotRecorded,
    AmountNotRead,
    Unreadable,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Missing => "missing",
            Status::Different => "different",
            Status::AmountNotRecorded => "amount not recorded",
            Status::AmountNotRead => "amount not read",
            Status::Unreadable => "unreadable",
        }
    }

    pub fn flagged(&self) -> bool {
        matches!(
            self,
            Status::Missing | Status::Different | Status::Unreadable
        )
    }
}

/// What `--repost` did with a missing document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repost {
    /// Created again; the cross-reference points at the new document.
    Created(ErpDocumentId),
    /// Found by reference under another number; linked, nothing created.
    Linked(ErpDocumentId),
    /// Not re-posted, with the reason a person can act on.
    NotReposted(String),
}

#[derive(Debug, Clone)]
pub struct Finding {
    pub xref: XrefRecord,
    pub status: Status,
    /// The id the ERP holds the document under, when found.
    pub erp_found: Option<ErpDocumentId>,
    /// Amount and currency as the ERP holds them (major units, as read).
    pub erp_amount: Option<String>,
    pub erp_currency: Option<String>,
    pub detail: String,
    pub repost: Option<Repost>,
}

#[derive(Debug, Default)]
pub struct AuditReport {
    pub findings: Vec<Finding>,
}

impl AuditReport {
    pub fn count(&self, s: &Status) -> usize {
        self.findings.iter().filter(|f| &f.status == s).count()
    }

    pub fn flagged(&self) -> usize {
        self.findings.iter().filter(|f| f.status.flagged()).count()
    }

    pub fn created(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| matches!(f.repost, Some(Repost::Created(_))))
            .count()
    }
}

/// The document kinds the audit reads back (customers and links are not documents with an
/// amount; their cross-references are skipped).
fn document_kind(doc_kind: &str) -> Option<DocKind> {
    DocKind::ALL
        .into_iter()
        .find(|k| *k != DocKind::Customer && k.as_str() == doc_kind)
}

fn minor_text(m: &Money) -> String {
    format!("{} {}", m.to_decimal(), m.currency.code())
}

/// Compare what the ERP holds with what was posted.
fn judge(xref: &XrefRecord, read: DocumentReadBack) -> Finding {
    let mut f = Finding {
        xref: xref.clone(),
        status: Status::Ok,
        erp_found: None,
        erp_amount: None,
        erp_currency: None,
        detail: String::new(),
        repost: None,
    };
    let (erp_id, amount, currency) = match read {
        DocumentReadBack::Missing => {
            f.status = Status::Missing;
            f.detail = format!(
                "no document in the ERP carries the reference; the cross-reference points at {}",
                xref.erp_id
            );
            return f;
        }
        DocumentReadBack::Found {
            erp_id,
            amount,
            currency,
        } => (erp_id, amount, currency),
    };
    f.erp_found = Some(erp_id.clone());
    f.erp_amount = amount.map(|a| a.normalize().to_string());
    f.erp_currency = currency.clone();
    if erp_id != xref.erp_id {
        f.status = Status::Different;
        f.detail = format!(
            "found under {erp_id}, the cross-reference points at {}",
            xref.erp_id
        );
        return f;
    }
    let Some(posted) = xref.posted else {
        f.status = Status::AmountNotRecorded;
        f.detail = "posted before ledgerbridge recorded amounts; not compared".into();
        return f;
    };
    let Some(amount) = amount else {
        f.status = Status::AmountNotRead;
        f.detail = format!(
            "the {} connector does not read amounts back; exists",
            xref.erp
        );
        return f;
    };
    if let Some(c) = &currency {
        if !c.eq_ignore_ascii_case(posted.currency.code()) {
            f.status = Status::Different;
            f.detail = format!("currency {c} in the ERP, posted {}", minor_text(&posted));
            return f;
        }
    }
    // Exact comparison in the posted currency's minor unit: an ERP amount with more decimals
    // than the currency has is a difference, never rounded away.
    match Money::from_decimal(amount, posted.currency) {
        Ok(m) if m == posted => {}
        _ => {
            f.status = Status::Different;
            f.detail = format!(
                "amount {} in the ERP, posted {}",
                amount.normalize(),
                minor_text(&posted)
            );
        }
    }
    f
}

/// Audit every document cross-referenced in `[from_ms, to_ms)`; with `repost`, re-post the
/// missing ones. The connector must be the ERP the cross-references were posted to (records
/// of another ERP are skipped).
pub async fn audit<S: XrefAudit, C: ErpConnector>(
    store: &S,
    connector: &C,
    from_ms: i64,
    to_ms: i64,
    repost: bool,
    policy: &RetryPolicy,
) -> Result<AuditReport, AuditError> {
    let mut report = AuditReport::default();
    // Old id → new id of documents re-posted in this run, so a receipt applied to a re-posted
    // order is applied to the new one (records are listed oldest first, parents first).
    let mut moved: HashMap<String, ErpDocumentId> = HashMap::new();
    for xref in store.list_xrefs_posted_between(from_ms, to_ms).await? {
        let Some(kind) = document_kind(&xref.doc_kind) else {
            continue;
        };
        if xref.erp != connector.erp() {
            continue;
        }
        let reference = match ExternalRef::new(&xref.stripe_id, kind) {
            Ok(r) => r,
            Err(e) => {
                report.findings.push(unreadable(&xref, e.to_string()));
                continue;
            }
        };
        let mut finding = match connector.read_back(&reference, &xref.erp_id).await {
            Ok(read) => judge(&xref, read),
            Err(e) => unreadable(&xref, e.to_string()),
        };
        if repost && finding.status == Status::Missing {
            let r = repost_missing(store, connector, &xref, &reference, &moved, policy).await?;
            if let Repost::Created(id) | Repost::Linked(id) = &r {
                moved.insert(xref.erp_id.to_string(), id.clone());
            }
            finding.repost = Some(r);
        }
        report.findings.push(finding);
    }
    Ok(report)
}

fn unreadable(xref: &XrefRecord, detail: String) -> Finding {
    Finding {
        xref: xref.clone(),
        status: Status::Unreadable,
        erp_found: None,
        erp_amount: None,
        erp_currency: None,
        detail,
        repost: None,
    }
}

async fn repost_missing<S: XrefAudit, C: ErpConnector>(
    store: &S,
    connector: &C,
    xref: &XrefRecord,
    reference: &ExternalRef,
    moved: &HashMap<String, ErpDocumentId>,
    policy: &RetryPolicy,
) -> Result<Repost, AuditError> {
    // A document that exists under another number is linked, never posted again.
    if let Some(found) = connector.find_by_reference(reference).await? {
        return relink(store, xref, found, Repost::Linked).await;
    }
    let Some(text) = &xref.command else {
        return Ok(Repost::NotReposted(
            "the cross-reference predates stored commands; post the document by hand".into(),
        ));
    };
    let mut command: ErpCommand = match serde_json::from_str(text) {
        Ok(c) => c,
        Err(e) => {
            return Ok(Repost::NotReposted(format!(
                "stored command unreadable: {e}"
            )))
        }
    };
    redirect(&mut command, moved);
    match post_command(connector, &command, policy).await {
        Ok(out) => {
            let mut fresh = xref.clone();
            fresh.command = serde_json::to_string(&command).ok();
            let status = relink_record(store, xref, fresh, out.erp_id.clone()).await?;
            Ok(match status {
                true => Repost::Created(out.erp_id),
                false => Repost::NotReposted(format!(
                    "created {} but the cross-reference changed meanwhile; run the audit again",
                    out.erp_id
                )),
            })
        }
        Err(e) => Ok(Repost::NotReposted(format!("the ERP refused it: {e}"))),
    }
}

async fn relink<S: XrefAudit>(
    store: &S,
    xref: &XrefRecord,
    found: ErpDocumentId,
    done: fn(ErpDocumentId) -> Repost,
) -> Result<Repost, AuditError> {
    if relink_record(store, xref, xref.clone(), found.clone()).await? {
        Ok(done(found))
    } else {
        Ok(Repost::NotReposted(format!(
            "found as {found} but the cross-reference changed meanwhile; run the audit again"
        )))
    }
}

/// Point the cross-reference at `erp_id`, keeping what was posted and when.
async fn relink_record<S: XrefAudit>(
    store: &S,
    old: &XrefRecord,
    mut fresh: XrefRecord,
    erp_id: ErpDocumentId,
) -> Result<bool, AuditError> {
    fresh.erp_id = erp_id;
    Ok(store.replace_xref(&fresh, &old.erp_id).await?)
}

/// Follow documents re-posted earlier in the run: what a command applies to or bills.
fn redirect(command: &mut ErpCommand, moved: &HashMap<String, ErpDocumentId>) {
    let swap = |id: &mut ErpDocumentId| {
        if let Some(new) = moved.get(id.as_str()) {
            *id = new.clone();
        }
    };
    match command {
        ErpCommand::CreateCashReceipt(r) => match &mut r.applies_to {
            Some(Application::Invoice(id) | Application::SalesOrder(id)) => swap(id),
            None => {}
        },
        ErpCommand::CreateInvoice(i) => {
            if let Some(id) = &mut i.sales_order {
                swap(id);
            }
        }
        ErpCommand::CreateCreditMemo(m) => {
            if let Some(id) = &mut m.applies_to_invoice {
                swap(id);
            }
        }
        ErpCommand::UpsertCustomer(_)
        | ErpCommand::CreateSalesOrder(_)
        | ErpCommand::PostJournalEntry(_) => {}
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Every finding as CSV (one header line).
pub fn to_csv(report: &AuditReport) -> String {
    let mut out = String::from(
        "status,doc_kind,stripe_id,erp,xref_erp_id,erp_found,posted_amount,posted_currency,erp_amount,erp_currency,posted_at_ms,detail,repost\n",
    );
    for f in &report.findings {
        let repost = match &f.repost {
            None => String::new(),
            Some(Repost::Created(id)) => format!("created {id}"),
            Some(Repost::Linked(id)) => format!("linked {id}"),
            Some(Repost::NotReposted(why)) => format!("not re-posted: {why}"),
        };
        let row = [
            f.status.as_str().to_owned(),
            f.xref.doc_kind.clone(),
            f.xref.stripe_id.to_string(),
            f.xref.erp.clone(),
            f.xref.erp_id.to_string(),
            f.erp_found
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            f.xref
                .posted
                .map(|m| m.to_decimal().to_string())
                .unwrap_or_default(),
            f.xref
                .posted
                .map(|m| m.currency.code().to_owned())
                .unwrap_or_default(),
            f.erp_amount.clone().unwrap_or_default(),
            f.erp_currency.clone().unwrap_or_default(),
            f.xref.created_at_ms.to_string(),
            f.detail.clone(),
            repost,
        ];
        let cells: Vec<String> = row.iter().map(|c| csv_field(c)).collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

/// The console report: flagged documents one per line, then the counts.
pub fn render(report: &AuditReport) -> String {
    let mut out = String::new();
    for f in report
        .findings
        .iter()
        .filter(|f| f.status.flagged() || f.repost.is_some())
    {
        out.push_str(&format!(
            "{:<10} {:<13} {:<32} {:<22} {}",
            f.status.as_str(),
            f.xref.doc_kind,
            f.xref.stripe_id.as_str(),
            f.xref.erp_id.as_str(),
            f.detail
        ));
        match &f.repost {
            Some(Repost::Created(id)) => out.push_str(&format!(" → re-posted as {id}")),
            Some(Repost::Linked(id)) => out.push_str(&format!(" → linked to {id}")),
            Some(Repost::NotReposted(why)) => out.push_str(&format!(" → not re-posted: {why}")),
            None => {}
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "\n{} document(s) checked: {} ok, {} missing, {} different, {} unreadable, {} amount not recorded, {} amount not read; {} re-posted\n",
        report.findings.len(),
        report.count(&Status::Ok),
        report.count(&Status::Missing),
        report.count(&Status::Different),
        report.count(&Status::Unreadable),
        report.count(&Status::AmountNotRecorded),
        report.count(&Status::AmountNotRead),
        report.created(),
    ));
    out
}

/// `[from 00:00, to 24:00)` UTC in epoch milliseconds.
pub fn range_ms(from: &str, to: &str) -> Result<(i64, i64), AuditError> {
    let (gte, lte) = range_of(from, to)?;
    Ok((gte.saturating_mul(1000), (lte + 1).saturating_mul(1000)))
}

pub async fn run(args: AuditArgs) -> Result<(), AuditError> {
    let (from_ms, to_ms) = range_ms(&args.from, &args.to)?;
    let text = std::fs::read_to_string(&args.erp_settings_file).map_err(|source| {
        AuditError::Settings {
            path: args.erp_settings_file.clone(),
            source,
        }
    })?;
    let connector = AnyConnector::from_settings(ErpSettings::from_json(&Secret::new(text))?)?;
    let policy = RetryPolicy::default();
    let report = match &args.state_table {
        Some(table) => {
            let sdk = ledgerbridge_adapters::aws::sdk_config(None).await;
            let store = ledgerbridge_adapters::aws::DynamoStore::new(
                aws_sdk_dynamodb::Client::new(&sdk),
                table,
            );
            audit(&store, &connector, from_ms, to_ms, args.repost, &policy).await?
        }
        None => {
            let path = args.data_dir.join("ledgerbridge.sqlite");
            if !path.is_file() {
                return Err(AuditError::NoStore(path));
            }
            let store = SqliteStore::open(&path)?;
            audit(&store, &connector, from_ms, to_ms, args.repost, &policy).await?
        }
    };
    print!("{}", render(&report));
    if let Some(csv) = &args.csv {
        std::fs::write(csv, to_csv(&report)).map_err(|source| AuditError::Write {
            path: csv.clone(),
            source,
        })?;
        println!("csv  {}", csv.display());
    }
    let flagged = report.flagged();
    if flagged > 0 {
        return Err(AuditError::Flagged {
            flagged,
            missing: report.count(&Status::Missing),
            different: report.count(&Status::Different),
            unreadable: report.count(&Status::Unreadable),
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ledgerbridge_core::ids::StripeObjectId;
    use ledgerbridge_core::Currency;
    use rust_decimal::Decimal;

    fn xref(posted: Option<Money>) -> XrefRecord {
        XrefRecord {
            stripe_id: StripeObjectId::new("pi_1"),
            doc_kind: "cash_receipt".into(),
            erp: "epicor".into(),
            erp_id: ErpDocumentId::new("STRIPECR/1"),
            created_at_ms: 0,
            posted,
            command: None,
        }
    }

    fn found(id: &str, amount: Option<&str>, currency: &str) -> DocumentReadBack {
        DocumentReadBack::Found {
            erp_id: ErpDocumentId::new(id),
            amount: amount.map(|a| a.parse::<Decimal>().unwrap()),
            currency: Some(currency.into()),
        }
    }

    #[test]
    fn judges_missing_changed_moved_and_unrecorded_documents() {
        let usd = Currency::parse("USD").unwrap();
        let posted = Some(Money::new(1999, usd));
        let x = xref(posted);
        assert_eq!(judge(&x, DocumentReadBack::Missing).status, Status::Missing);
        assert_eq!(
            judge(&x, found("STRIPECR/1", Some("19.99"), "USD")).status,
            Status::Ok
        );
        assert_eq!(
            judge(&x, found("STRIPECR/1", Some("19.990"), "usd")).status,
            Status::Ok
        );
        let changed = judge(&x, found("STRIPECR/1", Some("20.00"), "USD"));
        assert_eq!(changed.status, Status::Different);
        assert!(changed.detail.contains("20"), "{}", changed.detail);
        // More decimals than the currency has is a difference, not rounded away.
        assert_eq!(
            judge(&x, found("STRIPECR/1", Some("19.991"), "USD")).status,
            Status::Different
        );
        assert_eq!(
            judge(&x, found("STRIPECR/1", Some("19.99"), "EUR")).status,
            Status::Different
        );
        assert_eq!(
            judge(&x, found("STRIPECR/7", Some("19.99"), "USD")).status,
            Status::Different
        );
        assert_eq!(
            judge(&x, found("STRIPECR/1", None, "USD")).status,
            Status::AmountNotRead
        );
        assert_eq!(
            judge(&xref(None), found("STRIPECR/1", Some("1"), "USD")).status,
            Status::AmountNotRecorded
        );
        assert!(!Status::AmountNotRecorded.flagged());
        assert!(Status::Missing.flagged() && Status::Unreadable.flagged());
    }

    #[test]
    fn csv_quotes_fields_and_has_one_row_per_finding() {
        let mut r = AuditReport::default();
        let mut f = judge(&xref(None), DocumentReadBack::Missing);
        f.detail = "a, \"b\"".into();
        r.findings.push(f);
        let csv = to_csv(&r);
        assert_eq!(csv.lines().count(), 2);
        assert!(csv.contains("\"a, \"\"b\"\"\""), "{csv}");
        assert!(csv
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("missing,cash_receipt,pi_1,"));
    }

    #[test]
    fn only_document_kinds_are_audited() {
        assert_eq!(document_kind("cash_receipt"), Some(DocKind::CashReceipt));
        assert_eq!(document_kind("customer"), None);
        assert_eq!(document_kind("customer_link"), None);
        assert_eq!(document_kind("writeback#ledgerbridge_invoice"), None);
    }
}
