//! The `ErpConnector` port and the helpers connectors share (credentials, e-mail lookups,
//! changed-customer paging). The one error type every connector returns is in
//! [`crate::error`]; retrying and posting a command once are in [`crate::posting`].

use crate::commands::{CustomerUpsert, ErpCommand, ExternalRef};
use crate::error::ErpError;
use crate::fields::FieldsOutcome;
use ledgerbridge_core::ids::ErpDocumentId;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// One ERP customer found by e-mail address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErpCustomerMatch {
    /// The id cross-references hold (what `find_by_reference` returns for a customer).
    pub erp_id: ErpDocumentId,
    /// The user-facing customer code documents are posted under.
    pub customer_id: String,
}

/// Longest e-mail address searched for (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// The e-mail address as searched: trimmed and lower-cased. Rejects (permanently) an empty or
/// over-long address and one with control characters, before it reaches a filter or a query.
/// The error never repeats the address (it is personal data).
pub fn normalize_email(erp: &'static str, email: &str) -> Result<String, ErpError> {
    let e = email.trim();
    if e.is_empty()
        || e.len() > MAX_EMAIL_LEN
        || e.chars().any(|c| c.is_control() || c.is_whitespace())
        || !e.contains('@')
    {
        return Err(ErpError::permanent(
            erp,
            format!("customer e-mail is not a searchable address (1–{MAX_EMAIL_LEN} characters, an '@', no spaces or control characters)"),
        ));
    }
    Ok(e.to_lowercase())
}

/// Whether a stored e-mail equals the (normalized) searched one: trimmed, case-insensitive.
pub fn email_matches(stored: Option<&str>, normalized: &str) -> bool {
    stored.is_some_and(|s| s.trim().to_lowercase() == normalized)
}

/// Exactly one match → `Some`; none → `None`; several → a permanent error, so the message is
/// parked until a person links the customer through `metadata.erp_customer_no`.
pub fn single_email_match(
    erp: &'static str,
    mut found: Vec<ErpCustomerMatch>,
) -> Result<Option<ErpCustomerMatch>, ErpError> {
    found.dedup_by(|a, b| a.erp_id == b.erp_id);
    if found.len() > 1 {
        let ids: Vec<&str> = found.iter().map(|m| m.customer_id.as_str()).collect();
        return Err(ErpError::permanent(
            erp,
            format!(
                "the customer's e-mail matches several ERP customers ({}); set metadata.erp_customer_no on the Stripe customer to choose one",
                ids.join(", ")
            ),
        ));
    }
    Ok(found.pop())
}

/// A posted document as the ERP holds it now, read back for the audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentReadBack {
    /// No document carries the reference (deleted, or its reference field was cleared).
    Missing,
    Found {
        /// The id the ERP holds the document under (the audit compares it with the
        /// cross-reference's).
        erp_id: ErpDocumentId,
        /// The document's total in major units as the ERP holds it; `None` when this connector
        /// does not read amounts back for this kind.
        amount: Option<rust_decimal::Decimal>,
        /// The document's currency code as the ERP holds it, when read.
        currency: Option<String>,
    },
}

/// A journal's posting state in the ERP's general ledger now, read back for the operator
/// console's payout view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerState {
    /// Posted to the ledger.
    Posted,
    /// In the ERP, entered but not posted yet.
    Entered,
    /// No journal carries the reference.
    Missing,
    /// Not read, and why (no contract fact says where this ERP keeps the state, or the answer
    /// did not carry it). Never a guess.
    NotRead(String),
}

/// The port every ERP connector implements. Implementations do no retrying of their own except
/// the single credential refresh on 401/403; retries are the caller's (see [`post_command`](crate::posting::post_command)).
pub trait ErpConnector: Send + Sync {
    /// `epicor`, `sage500` or `sagepro` (the value stored in cross-reference records).
    fn erp(&self) -> &'static str;

    /// Find a document this integration created earlier, by its external reference.
    fn find_by_reference(
        &self,
        reference: &ExternalRef,
    ) -> impl Future<Output = Result<Option<ErpDocumentId>, ErpError>> + Send;

    /// Read a posted document back (existence, amount, currency) for the audit: by its
    /// external reference, which every connector can search. The default reads existence only
    /// (through [`ErpConnector::find_by_reference`]); connectors that can read amounts override
    /// it. `erp_id` is the id the cross-reference holds.
    fn read_back(
        &self,
        reference: &ExternalRef,
        _erp_id: &ErpDocumentId,
    ) -> impl Future<Output = Result<DocumentReadBack, ErpError>> + Send {
        async move {
            Ok(match self.find_by_reference(reference).await? {
                Some(found) => DocumentReadBack::Found {
                    erp_id: found,
                    amount: None,
                    currency: None,
                },
                None => DocumentReadBack::Missing,
            })
        }
    }

    /// The posting state of a journal this integration posted (`reference` is a journal
    /// entry's). The default reads nothing: [`LedgerState::NotRead`] naming the ERP.
    fn journal_state(
        &self,
        reference: &ExternalRef,
        _erp_id: &ErpDocumentId,
    ) -> impl Future<Output = Result<LedgerState, ErpError>> + Send {
        let erp = self.erp();
        let _ = reference;
        async move {
            Ok(LedgerState::NotRead(format!(
                "{erp}: the connector does not read a journal's posting state (no contract fact \
                 names where this ERP keeps it for the journals ledgerbridge writes)"
            )))
        }
    }

    /// Create the document. Does not search first; see [`post_command`](crate::posting::post_command).
    fn create(
        &self,
        command: &ErpCommand,
    ) -> impl Future<Output = Result<ErpDocumentId, ErpError>> + Send;

    /// Update an existing customer's master data.
    fn update_customer(
        &self,
        id: &ErpDocumentId,
        customer: &CustomerUpsert,
    ) -> impl Future<Output = Result<(), ErpError>> + Send;

    /// Find an existing ERP customer by e-mail address (trimmed, case-insensitive). One match
    /// → `Some`; several → [`ErpError::Permanent`] naming the ambiguity.
    fn find_customer_by_email(
        &self,
        email: &str,
    ) -> impl Future<Output = Result<Option<ErpCustomerMatch>, ErpError>> + Send;

    /// Write user-defined fields of the existing customer with the code `customer_id` (the code
    /// documents are posted under; a customer linked by the user or by e-mail has no other id
    /// ledgerbridge can rely on). `values` are keyed by logical name
    /// ([`crate::fields`]); the connector's `customer_fields` settings say where each goes, and
    /// values they do not map are reported as unmapped, not written. Setting the same values
    /// again changes nothing, so a retry needs no search first.
    fn set_customer_fields(
        &self,
        customer_id: &str,
        values: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<FieldsOutcome, ErpError>> + Send;

    /// Customers whose ERP record changed at or after `since` (Unix seconds), oldest change
    /// first, at most about `limit` of them (the scheduled ERP → Stripe sync pages through them
    /// with a cursor and tolerates repeats).
    fn customers_changed_since(
        &self,
        since: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ErpCustomerRecord>, ErpError>> + Send;
}

/// An ERP customer's master data as the ERP holds it, with the time of its last change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErpCustomerRecord {
    /// The customer code.
    pub customer_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub address: crate::commands::Address,
    /// When the ERP last changed the record (Unix seconds, as precise as the ERP keeps it).
    pub changed_at: i64,
    /// The value of the customer's reference field (set when ledgerbridge created it).
    pub reference: Option<String>,
}

/// A JSON string value trimmed, `None` when absent or blank (fields of ERP answers).
pub(crate) fn trimmed_text(v: Option<&serde_json::Value>) -> Option<String> {
    v.and_then(serde_json::Value::as_str)
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Page through an ERP's changed-customer query: `fetch(offset, page)` returns one page; pages
/// are read until one is short, at least `limit` records at or after `since` are collected, or
/// 20 pages were read. The result is [`changed_records`].
pub async fn collect_changed<F, Fut>(
    since: i64,
    limit: usize,
    mut fetch: F,
) -> Result<Vec<ErpCustomerRecord>, ErpError>
where
    F: FnMut(usize, usize) -> Fut,
    Fut: Future<Output = Result<Vec<ErpCustomerRecord>, ErpError>>,
{
    let page = limit.clamp(1, 500);
    let mut out = Vec::new();
    for n in 0..20 {
        let rows = fetch(n * page, page).await?;
        let full = rows.len() == page;
        // ERPs that filter by day list that day's earlier changes first.
        out.extend(rows.into_iter().filter(|r| r.changed_at >= since));
        if !full || out.len() >= limit {
            break;
        }
    }
    Ok(changed_records(out, since))
}

/// Sort by change time and drop records before `since` (ERPs filter by day or by their own
/// precision).
pub fn changed_records(mut v: Vec<ErpCustomerRecord>, since: i64) -> Vec<ErpCustomerRecord> {
    v.retain(|r| r.changed_at >= since);
    v.sort_by(|a, b| (a.changed_at, &a.customer_id).cmp(&(b.changed_at, &b.customer_id)));
    v
}

type RefreshFuture<C> = Pin<Box<dyn Future<Output = Result<C, ErpError>> + Send>>;
type RefreshFn<C> = Arc<dyn Fn() -> RefreshFuture<C> + Send + Sync>;

/// Current credentials plus an optional way to fetch fresh ones (from Secrets Manager, say).
/// Connectors refresh at most once per request on 401/403, then fail with
/// [`ErpError::Authentication`].
pub struct Credentials<C> {
    current: RwLock<C>,
    refresh: Option<RefreshFn<C>>,
    /// Re-read the credentials before a request once they are older than this (a rotated
    /// secret is then picked up even before the ERP rejects the old one).
    max_age: Option<Duration>,
    fetched_at: RwLock<Instant>,
}

impl<C: Clone + Send + Sync + 'static> Credentials<C> {
    pub fn fixed(value: C) -> Self {
        Credentials {
            current: RwLock::new(value),
            refresh: None,
            max_age: None,
            fetched_at: RwLock::new(Instant::now()),
        }
    }

    pub fn refreshable<F, Fut>(value: C, refresh: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<C, ErpError>> + Send + 'static,
    {
        Credentials {
            current: RwLock::new(value),
            refresh: Some(Arc::new(move || Box::pin(refresh()))),
            max_age: None,
            fetched_at: RwLock::new(Instant::now()),
        }
    }

    /// Refresh before a request once the credentials are older than `max_age` (a secret
    /// cache TTL); without a refresher this changes nothing.
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Credentials of another shape that share this refresher: `project` turns fresh
    /// credentials into the derived ones (the Sage 500 facade key out of its settings).
    pub fn project<D, P>(&self, project: P) -> Result<Credentials<D>, ErpError>
    where
        D: Clone + Send + Sync + 'static,
        P: Fn(C) -> Result<D, ErpError> + Send + Sync + 'static,
    {
        let value = project(self.current())?;
        let Some(refresh) = self.refresh.clone() else {
            return Ok(Credentials::fixed(value));
        };
        let project = Arc::new(project);
        let out = Credentials::refreshable(value, move || {
            let refresh = refresh.clone();
            let project = project.clone();
            async move { project(refresh().await?) }
        });
        Ok(match self.max_age {
            Some(age) => out.with_max_age(age),
            None => out,
        })
    }

    /// Refresh now when the credentials are older than their `max_age`. A failed refresh is
    /// logged (without the value) and the current credentials are used: the ERP's answer
    /// decides whether they still work.
    pub async fn refresh_if_stale(&self) {
        let Some(max_age) = self.max_age else {
            return;
        };
        let fetched = match self.fetched_at.read() {
            Ok(g) => *g,
            Err(poisoned) => *poisoned.into_inner(),
        };
        if fetched.elapsed() < max_age {
            return;
        }
        if let Err(e) = self.refresh().await {
            tracing::warn!(error = %e, "credentials not re-read; using the current ones");
        }
    }

    pub fn current(&self) -> C {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Fetch fresh credentials; `false` when there is no refresher (the caller then fails).
    pub async fn refresh(&self) -> Result<bool, ErpError> {
        let Some(f) = self.refresh.clone() else {
            return Ok(false);
        };
        let fresh = f().await?;
        match self.current.write() {
            Ok(mut g) => *g = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        match self.fetched_at.write() {
            Ok(mut g) => *g = Instant::now(),
            Err(poisoned) => *poisoned.into_inner() = Instant::now(),
        }
        Ok(true)
    }
}

impl<C> std::fmt::Debug for Credentials<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErpErrorKind;

    #[test]
    fn emails_are_validated_and_compared_case_insensitively() {
        assert_eq!(
            normalize_email("x", "  Jane@Example.COM ").unwrap(),
            "jane@example.com"
        );
        for bad in [
            "",
            "   ",
            "no-at-sign",
            "a@b\u{0}c",
            "a@b\nc",
            "a b@example.com",
        ] {
            assert_eq!(
                normalize_email("x", bad).unwrap_err().kind(),
                ErpErrorKind::Permanent
            );
        }
        let long = format!("{}@example.com", "a".repeat(300));
        assert!(normalize_email("x", &long).is_err());
        assert!(email_matches(Some(" JANE@example.com"), "jane@example.com"));
        assert!(!email_matches(None, "jane@example.com"));
        let m = |id: &str| ErpCustomerMatch {
            erp_id: ErpDocumentId::new(id),
            customer_id: format!("C{id}"),
        };
        assert_eq!(single_email_match("x", vec![]).unwrap(), None);
        assert_eq!(single_email_match("x", vec![m("1")]).unwrap(), Some(m("1")));
        let err = single_email_match("x", vec![m("1"), m("2")]).unwrap_err();
        assert_eq!(err.kind(), ErpErrorKind::Permanent);
        assert!(err.to_string().contains("several"));
    }

    #[tokio::test]
    async fn credentials_refresh_replaces_value() {
        let c = Credentials::refreshable("old".to_string(), || async { Ok("new".to_string()) });
        assert_eq!(c.current(), "old");
        assert!(c.refresh().await.unwrap());
        assert_eq!(c.current(), "new");
        assert!(!Credentials::fixed(1).refresh().await.unwrap());
        assert_eq!(format!("{:?}", c), "Credentials([redacted])");
    }

    #[tokio::test]
    async fn stale_credentials_are_re_read_and_projections_share_the_refresher() {
        let n = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counter = n.clone();
        let c = Credentials::refreshable(0u32, move || {
            let v = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            async move { Ok(v) }
        })
        .with_max_age(Duration::from_millis(20));
        c.refresh_if_stale().await;
        assert_eq!(c.current(), 0, "fresh credentials are not re-read");
        tokio::time::sleep(Duration::from_millis(30)).await;
        c.refresh_if_stale().await;
        assert_eq!(c.current(), 1, "stale credentials are re-read");
        let key = c.project(|v| Ok(format!("key-{v}"))).unwrap();
        assert_eq!(key.current(), "key-1");
        assert!(key.refresh().await.unwrap());
        assert_eq!(key.current(), "key-2");
        assert!(!Credentials::fixed(1u8)
            .project(|v| Ok(v + 1))
            .unwrap()
            .refresh()
            .await
            .unwrap());
    }
}
