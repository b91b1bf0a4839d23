//! A minimal client-side rate limiter: requests are spaced at least `1/rate` apart.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct RateLimiter {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    pub(crate) fn new(requests_per_second: u32) -> Self {
        let interval = if requests_per_second == 0 {
            Duration::ZERO
        } else {
            Duration::from_secs(1) / requests_per_second
        };
        RateLimiter {
            interval,
            next: Mutex::new(None),
        }
    }

    /// Reserve the next slot and sleep until it. The lock is never held across the sleep.
    pub(crate) async fn acquire(&self) {
        if self.interval.is_zero() {
            return;
        }
        let wait = {
            let now = Instant::now();
            let mut next = match self.next.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            let slot = match *next {
                Some(at) if at > now => at,
                _ => now,
            };
            *next = Some(slot + self.interval);
            slot.saturating_duration_since(now)
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn spaces_requests() {
        let l = RateLimiter::new(50); // 20 ms apart
        let start = Instant::now();
        for _ in 0..6 {
            l.acquire().await;
        }
        // first is immediate, five more are spaced 20 ms apart
        assert!(
            start.elapsed() >= Duration::from_millis(95),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test]
    async fn zero_means_unlimited() {
        let l = RateLimiter::new(0);
        let start = Instant::now();
        for _ in 0..1000 {
            l.acquire().await;
        }
        assert!(start.elapsed() < Duration::from_millis(50));
    }
}
