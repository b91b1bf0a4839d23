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
    /// After a failure that may have committed, wait at least this long before searching by
    /// reference, so an ERP whose search index lags behind its commits is not asked too early.
    pub settle_after_ambiguous: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
            settle_after_ambiguous: Duration::from_secs(2),
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
        if err.may_have_committed() {
            delay = delay.max(self.settle_after_ambiguous);
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
/// This is the unit of work the posting function and the on-premises agent call; intent
/// records and cross-references around it belong to the caller.
pub async fn post_command<C: ErpConnector>(
    connector: &C,
    command: &ErpCommand,
    policy: &RetryPolicy,
) -> Result<PostOutcome, ErpError> {
    command.validate()?;
    let reference = command.reference();
    with_retry(policy, |attempt| async move {
        if let Some(existing) = connector.find_by_reference(reference).await? {
            let updated = if let ErpCommand::UpsertCustomer(c) = command {
                connector.update_customer(&existing, c).await?;
                true
            } else {
                false
            };
            tracing::info!(erp = connector.erp(), reference = %reference, erp_id = %existing, attempt, "document already in the ERP");
            return Ok(PostOutcome {
                erp_id: existing,
                created: false,
                updated,
                attempts: attempt,
            });
        }
        let erp_id = connector.create(command).await?;
        tracing::info!(erp = connector.erp(), reference = %reference, erp_id = %erp_id, attempt, "document created");
        Ok(PostOutcome {
            erp_id,
            created: true,
            updated: false,
            attempts: attempt,
        })
    })
    .await
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
        assert!(p.delay_after(1, &retryable(None, true)).unwrap() >= Duration::from_millis(50));
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
}
