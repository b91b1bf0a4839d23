//! Posting one command effectively once ([`post_command`]) and the retry/backoff it runs under
//! ([`RetryPolicy`], [`with_retry`]).

use crate::commands::ErpCommand;
use crate::connector::ErpConnector;
use crate::error::ErpError;
use ledgerbridge_core::ids::ErpDocumentId;
use std::future::Future;
use std::time::Duration;

/// What posting one command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostOutcome {
    pub erp_id: ErpDocumentId,
    /// `false` when the document already existed (found by reference) and was not created again.
    pub created: bool,
    /// An existing customer was updated.
    pub updated: bool,
    /// Number of attempts made (1 when the first try succeeded).
    pub attempts: u32,
}

/// Backoff settings.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total attempts, including the first.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A `Retry-After` longer than this is not waited for in-process: the error is returned so
    /// the queue can redeliver later.
    pub max_retry_after: Duration,
    /// The ERP's search lag to allow for: after a failure that may have committed, a document
    /// is created again only after a search made at least this long after that failure missed
    /// it (see [`post_command`]). Deployments set it (`LEDGERBRIDGE_ERP_SEARCH_LAG_SECS`); no
    /// vendor publishes a figure, so the default is an assumption.
    pub settle_after_ambiguous: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
            // Assumption: no ERP vendor publishes its search lag; 45 s covers the 30 s lag of
            // RELIABILITY E5 with a margin. Configurable per deployment.
            settle_after_ambiguous: Duration::from_secs(45),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// Exponential backoff with "equal jitter": half fixed, half random, capped at `max_delay`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let capped = exp.min(self.max_delay);
        let half = capped / 2;
        let jitter_ms = half.as_millis() as u64;
        let r = if jitter_ms == 0 {
            0
        } else {
            (uuid::Uuid::new_v4().as_u128() % u128::from(jitter_ms + 1)) as u64
        };
        half + Duration::from_millis(r)
    }

    /// How long to wait before the next attempt after `err`, or `None` to give up.
    pub fn delay_after(&self, attempt: u32, err: &ErpError) -> Option<Duration> {
        if !err.is_retriable() || attempt >= self.max_attempts {
            return None;
        }
        let mut delay = self.backoff(attempt);
        if let Some(ra) = err.retry_after() {
            if ra > self.max_retry_after {
                return None;
            }
            delay = delay.max(ra);
        }
        Some(delay)
    }
}

/// Run `op` until it succeeds, fails with a non-retryable error, or attempts run out. `op`
/// receives the 1-based attempt number.
pub async fn with_retry<T, F, Fut>(policy: &RetryPolicy, mut op: F) -> Result<T, ErpError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, ErpError>>,
{
    let mut attempt = 1;
    loop {
        match op(attempt).await {
            Ok(v) => return Ok(v),
            Err(e) => match policy.delay_after(attempt, &e) {
                Some(d) => {
                    tracing::warn!(attempt, delay_ms = d.as_millis() as u64, error = %e, "ERP call failed; retrying");
                    tokio::time::sleep(d).await;
                    attempt += 1;
                }
                None => return Err(e),
            },
        }
    }
}

/// Post one command effectively once: validate, search by reference, create only when absent
/// (update when it is a customer that exists), and on every retry search again first — so a
/// create whose response was lost is found rather than duplicated.
///
/// An ERP's search may lag behind its commits (RELIABILITY E5). After a failure that may have
/// committed, the document is never created again before
/// [`RetryPolicy::settle_after_ambiguous`] has passed since that failure, whatever the backoff
/// says: the search that decides is made after the window. When the rest of the window is
/// longer than [`RetryPolicy::max_retry_after`] (too long to wait in-process), or attempts run
/// out while in doubt, an error that [`ErpError::may_have_committed`] is returned, and the
/// caller must keep its intent record held (not released) so no other worker creates before
/// the window has passed either.
///
/// This is the unit of work the posting function and the on-premises agent call; intent
/// records and cross-references around it belong to the caller.
pub async fn post_command<C: ErpConnector>(
    connector: &C,
    command: &ErpCommand,
    policy: &RetryPolicy,
) -> Result<PostOutcome, ErpError> {
    command.validate()?;
    let reference = command.reference();
    // When the last failure that may have committed happened.
    let mut in_doubt_since: Option<tokio::time::Instant> = None;
    let mut attempt = 1;
    loop {
        let err = match step(connector, command, policy, in_doubt_since, attempt).await {
            Ok(Step::Done(outcome)) => return Ok(outcome),
            Ok(Step::WaitForSearch(rest)) => {
                if rest > policy.max_retry_after {
                    return Err(in_doubt(connector.erp(), reference, rest));
                }
                tracing::warn!(
                    erp = connector.erp(),
                    reference = %reference,
                    wait_ms = rest.as_millis() as u64,
                    "not found after a failure that may have committed; searching again once the search lag has passed"
                );
                tokio::time::sleep(rest).await;
                continue;
            }
            Err(e) => e,
        };
        if err.may_have_committed() {
            in_doubt_since = Some(tokio::time::Instant::now());
        }
        match policy.delay_after(attempt, &err) {
            Some(d) => {
                tracing::warn!(attempt, delay_ms = d.as_millis() as u64, error = %err, "ERP call failed; retrying");
                tokio::time::sleep(d).await;
                attempt += 1;
            }
            None if in_doubt_since.is_some() && err.is_retriable() && !err.may_have_committed() => {
                // An earlier attempt may have created the document: the caller must not let
                // anyone create it before the search window has passed.
                return Err(ErpError::Retryable {
                    erp: connector.erp(),
                    status: None,
                    message: format!("{err} (an earlier attempt may have created {reference})"),
                    retry_after: None,
                    may_have_committed: true,
                });
            }
            None => return Err(err),
        }
    }
}

/// What one attempt of [`post_command`] ended with.
enum Step {
    Done(PostOutcome),
    /// Not found, but a failure that may have committed is more recent than the search window:
    /// search again after this long rather than create.
    WaitForSearch(Duration),
}

async fn step<C: ErpConnector>(
    connector: &C,
    command: &ErpCommand,
    policy: &RetryPolicy,
    in_doubt_since: Option<tokio::time::Instant>,
    attempt: u32,
) -> Result<Step, ErpError> {
    let reference = command.reference();
    if let Some(existing) = connector.find_by_reference(reference).await? {
        let updated = if let ErpCommand::UpsertCustomer(c) = command {
            connector.update_customer(&existing, c).await?;
            true
        } else {
            false
        };
        tracing::info!(erp = connector.erp(), reference = %reference, erp_id = %existing, attempt, "document already in the ERP");
        return Ok(Step::Done(PostOutcome {
            erp_id: existing,
            created: false,
            updated,
            attempts: attempt,
        }));
    }
    if let Some(since) = in_doubt_since {
        let rest = policy
            .settle_after_ambiguous
            .saturating_sub(since.elapsed());
        if !rest.is_zero() {
            return Ok(Step::WaitForSearch(rest));
        }
    }
    let erp_id = connector.create(command).await?;
    tracing::info!(erp = connector.erp(), reference = %reference, erp_id = %erp_id, attempt, "document created");
    Ok(Step::Done(PostOutcome {
        erp_id,
        created: true,
        updated: false,
        attempts: attempt,
    }))
}

fn in_doubt(
    erp: &'static str,
    reference: &crate::commands::ExternalRef,
    rest: Duration,
) -> ErpError {
    ErpError::Retryable {
        erp,
        status: None,
        message: format!(
            "{reference} may have been created and is not found yet; searching again in {} s at the earliest (the ERP's search lag)",
            rest.as_secs().max(1)
        ),
        retry_after: Some(rest),
        may_have_committed: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErpErrorKind;

    fn retryable(ra: Option<Duration>, committed: bool) -> ErpError {
        ErpError::Retryable {
            erp: "x",
            status: Some(503),
            message: "down".into(),
            retry_after: ra,
            may_have_committed: committed,
        }
    }

    #[test]
    fn delays_honour_retry_after_and_limits() {
        let p = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
            max_retry_after: Duration::from_secs(5),
            settle_after_ambiguous: Duration::from_millis(50),
        };
        let d = p
            .delay_after(1, &retryable(Some(Duration::from_secs(2)), false))
            .unwrap();
        assert_eq!(d, Duration::from_secs(2));
        assert!(p
            .delay_after(1, &retryable(Some(Duration::from_secs(60)), false))
            .is_none());
        assert!(p.delay_after(3, &retryable(None, false)).is_none());
        // The search window after an in-doubt failure is `post_command`'s, not the backoff's.
        assert!(p.delay_after(1, &retryable(None, true)).unwrap() <= Duration::from_millis(100));
        let perm = ErpError::permanent("x", "Customer not found");
        assert!(p.delay_after(1, &perm).is_none());
        for a in 1..10 {
            assert!(p.backoff(a) <= Duration::from_millis(100));
            assert!(p.backoff(a) >= Duration::from_millis(5));
        }
    }

    #[tokio::test]
    async fn with_retry_stops_on_permanent() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(1),
            settle_after_ambiguous: Duration::ZERO,
            ..RetryPolicy::default()
        };
        let mut calls = 0;
        let r: Result<(), _> = with_retry(&p, |_| {
            calls += 1;
            let n = calls;
            async move {
                if n == 1 {
                    Err(retryable(None, false))
                } else {
                    Err(ErpError::permanent("x", "closed period"))
                }
            }
        })
        .await;
        assert_eq!(calls, 2);
        assert_eq!(r.unwrap_err().kind(), ErpErrorKind::Permanent);
    }

    /// An ERP whose search lags `lag` behind its commits and whose next `drop` creates commit
    /// and then lose the answer (RELIABILITY E5 = E1 + search lag).
    struct LaggingErp {
        lag: Duration,
        drop: std::sync::Mutex<u32>,
        docs: std::sync::Mutex<Vec<(String, tokio::time::Instant)>>,
    }

    impl LaggingErp {
        fn new(lag: Duration, drop: u32) -> Self {
            LaggingErp {
                lag,
                drop: std::sync::Mutex::new(drop),
                docs: std::sync::Mutex::new(Vec::new()),
            }
        }
        fn count(&self, reference: &str) -> usize {
            let docs = self.docs.lock().unwrap();
            docs.iter().filter(|(r, _)| r == reference).count()
        }
    }

    impl ErpConnector for LaggingErp {
        fn erp(&self) -> &'static str {
            "lagging"
        }
        async fn find_by_reference(
            &self,
            reference: &crate::commands::ExternalRef,
        ) -> Result<Option<ErpDocumentId>, ErpError> {
            let now = tokio::time::Instant::now();
            let docs = self.docs.lock().unwrap();
            Ok(docs
                .iter()
                .position(|(r, at)| *r == reference.full() && *at + self.lag <= now)
                .map(|i| ErpDocumentId::new(format!("D{i}"))))
        }
        async fn create(&self, command: &ErpCommand) -> Result<ErpDocumentId, ErpError> {
            let mut docs = self.docs.lock().unwrap();
            docs.push((command.reference().full(), tokio::time::Instant::now()));
            let id = ErpDocumentId::new(format!("D{}", docs.len() - 1));
            let mut drop = self.drop.lock().unwrap();
            if *drop > 0 {
                *drop -= 1;
                return Err(ErpError::Retryable {
                    erp: "lagging",
                    status: None,
                    message: "connection reset after commit".into(),
                    retry_after: None,
                    may_have_committed: true,
                });
            }
            Ok(id)
        }
        async fn update_customer(
            &self,
            _: &ErpDocumentId,
            _: &crate::commands::CustomerUpsert,
        ) -> Result<(), ErpError> {
            Ok(())
        }
        async fn find_customer_by_email(
            &self,
            _: &str,
        ) -> Result<Option<crate::connector::ErpCustomerMatch>, ErpError> {
            Ok(None)
        }
        async fn set_customer_fields(
            &self,
            _: &str,
            _: &std::collections::BTreeMap<String, String>,
        ) -> Result<crate::fields::FieldsOutcome, ErpError> {
            Ok(crate::fields::FieldsOutcome::default())
        }
        async fn customers_changed_since(
            &self,
            _: i64,
            _: usize,
        ) -> Result<Vec<crate::connector::ErpCustomerRecord>, ErpError> {
            Ok(vec![])
        }
    }

    fn journal(txn: &str) -> ErpCommand {
        use crate::commands::{DocKind, ErpDate, ExternalRef, JournalEntry, JournalLine, Side};
        use ledgerbridge_core::currency::Currency;
        use ledgerbridge_core::ids::StripeObjectId;
        use ledgerbridge_core::money::Money;
        let usd = Currency::parse("usd").unwrap();
        let line = |side, account: &str| JournalLine {
            gl_account: account.into(),
            side,
            amount: Money {
                minor: 500,
                currency: usd,
            },
            memo: None,
        };
        ErpCommand::PostJournalEntry(JournalEntry {
            reference: ExternalRef::new(&StripeObjectId::new(txn), DocKind::JournalEntry).unwrap(),
            posting_date: ErpDate::parse("2026-11-01").unwrap(),
            currency: usd,
            description: "test".into(),
            lines: vec![line(Side::Debit, "1000"), line(Side::Credit, "2000")],
        })
    }

    fn policy(window: Duration, max_wait: Duration) -> RetryPolicy {
        RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_retry_after: max_wait,
            settle_after_ambiguous: window,
        }
    }

    /// E5 at its figure on a paused clock: a 30 s search lag and lost answers. With the
    /// default window (45 s) nothing is created twice; the old fixed 2 s wait duplicates.
    #[tokio::test(start_paused = true)]
    async fn a_lost_answer_with_a_30_s_search_lag_is_never_created_twice() {
        let lag = Duration::from_secs(30);
        let window = RetryPolicy::default().settle_after_ambiguous;
        assert!(window > lag);
        // Waiting in-process (the agent's case): found after the window, never re-created.
        let erp = LaggingErp::new(lag, 1);
        let cmd = journal("txn_1");
        let r = cmd.reference().full();
        let out = post_command(&erp, &cmd, &policy(window, Duration::from_secs(60)))
            .await
            .unwrap();
        assert!(!out.created, "the lost create was found, not repeated");
        assert_eq!(erp.count(&r), 1);
        // Too long to wait in-process (the function's case): an in-doubt error, nothing re-sent.
        let erp = LaggingErp::new(lag, 1);
        let err = post_command(&erp, &cmd, &RetryPolicy::default())
            .await
            .unwrap_err();
        assert!(err.may_have_committed(), "{err}");
        assert_eq!(erp.count(&r), 1);
        // The old fixed 2 s wait re-creates: the test can fail.
        let erp = LaggingErp::new(lag, 1);
        post_command(
            &erp,
            &cmd,
            &policy(Duration::from_secs(2), Duration::from_secs(30)),
        )
        .await
        .unwrap();
        assert!(erp.count(&r) > 1);
    }

    /// Attempts running out while in doubt hand the caller an in-doubt error even when the
    /// last failure itself (a 503 before commit) could not have committed.
    #[tokio::test(start_paused = true)]
    async fn giving_up_after_an_in_doubt_failure_stays_in_doubt() {
        let erp = LaggingErp::new(Duration::from_secs(30), 10);
        let p = RetryPolicy {
            max_attempts: 2,
            ..policy(Duration::from_secs(1), Duration::from_secs(30))
        };
        let err = post_command(&erp, &journal("txn_2"), &p).await.unwrap_err();
        assert!(err.may_have_committed());
        let (ok, in_doubt) = (
            retryable(None, false),
            ErpError::permanent("x", "closed period"),
        );
        assert!(!ok.may_have_committed() && !in_doubt.may_have_committed());
    }
}
