//! A bounded, single-flight memo with a time to live, for look-ups whose answer does not change
//! within the window (the invoice a succeeded PaymentIntent pays): concurrent callers for one
//! key share one call, later callers within the window get its answer, and failures are not
//! remembered (the next caller tries again).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

type Slot<V> = Arc<OnceCell<V>>;

pub(crate) struct Memo<V> {
    ttl: Duration,
    capacity: usize,
    inner: Mutex<Entries<V>>,
}

struct Entries<V> {
    map: HashMap<String, (Instant, Slot<V>)>,
    /// Keys in insertion order, with their insertion time (stale pairs are skipped).
    order: VecDeque<(String, Instant)>,
}

impl<V: Clone> Memo<V> {
    /// `capacity == 0` or a zero `ttl` turns the memo off.
    pub(crate) fn new(ttl: Duration, capacity: usize) -> Self {
        Memo {
            ttl,
            capacity,
            inner: Mutex::new(Entries {
                map: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    /// The remembered answer for `key`, else `init`'s (remembered when it succeeds).
    pub(crate) async fn get_or_try_init<E, F, Fut>(&self, key: &str, init: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        if self.capacity == 0 || self.ttl.is_zero() {
            return init().await;
        }
        let slot = self.slot(key);
        slot.get_or_try_init(init).await.cloned()
    }

    fn slot(&self, key: &str) -> Slot<V> {
        let mut e = match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let now = Instant::now();
        while let Some((front, at)) = e.order.front() {
            let expired = now.saturating_duration_since(*at) >= self.ttl;
            if !expired && e.map.len() < self.capacity {
                break;
            }
            let (front, at) = (front.clone(), *at);
            if e.map.get(&front).is_some_and(|(t, _)| *t == at) {
                e.map.remove(&front);
            }
            e.order.pop_front();
        }
        if let Some((at, slot)) = e.map.get(key) {
            if now.saturating_duration_since(*at) < self.ttl {
                return slot.clone();
            }
        }
        let slot: Slot<V> = Arc::new(OnceCell::new());
        e.map.insert(key.to_owned(), (now, slot.clone()));
        e.order.push_back((key.to_owned(), now));
        slot
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().map(|e| e.map.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    async fn counted(calls: &AtomicUsize, value: u32) -> Result<u32, String> {
        calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok(value)
    }

    #[tokio::test]
    async fn one_call_per_key_also_when_callers_overlap() {
        let memo = Memo::new(Duration::from_secs(60), 100);
        let calls = AtomicUsize::new(0);
        let (a, b) = tokio::join!(
            memo.get_or_try_init("pi_1", || counted(&calls, 1)),
            memo.get_or_try_init("pi_1", || counted(&calls, 2)),
        );
        assert_eq!((a.unwrap(), b.unwrap()), (1, 1));
        assert_eq!(
            memo.get_or_try_init("pi_1", || counted(&calls, 3))
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            memo.get_or_try_init("pi_2", || counted(&calls, 4))
                .await
                .unwrap(),
            4
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn failures_are_not_remembered() {
        let memo: Memo<u32> = Memo::new(Duration::from_secs(60), 100);
        let failed: Result<u32, String> = memo
            .get_or_try_init("pi_1", || async { Err("503".to_owned()) })
            .await;
        assert!(failed.is_err());
        let calls = AtomicUsize::new(0);
        assert_eq!(
            memo.get_or_try_init("pi_1", || counted(&calls, 7))
                .await
                .unwrap(),
            7
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn answers_expire_and_the_memo_stays_bounded() {
        let memo = Memo::new(Duration::from_millis(50), 3);
        let calls = AtomicUsize::new(0);
        for k in 0..10 {
            memo.get_or_try_init(&format!("pi_{k}"), || counted(&calls, k))
                .await
                .unwrap();
            assert!(memo.len() <= 3, "{}", memo.len());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 10);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(
            memo.get_or_try_init("pi_9", || counted(&calls, 99))
                .await
                .unwrap(),
            99
        );
        let off = Memo::new(Duration::ZERO, 3);
        off.get_or_try_init("pi_1", || counted(&calls, 1))
            .await
            .unwrap();
        off.get_or_try_init("pi_1", || counted(&calls, 1))
            .await
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 13);
    }
}
