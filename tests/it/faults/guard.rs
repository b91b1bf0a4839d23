//! A connector wrapper for the Q3, Q4 and D1–D4 rows: it counts every ERP create *call* per
//! reference (a second call is a locking failure even where the ERP itself refuses a second
//! document with the same reference, as the Sage Pro facade does), and can
//! - check, at every ERP call, that the caller holds the document's intent lock in the state
//!   table (read with a client of its own, without injected faults): D1's "no ERP call without
//!   an acquired lock";
//! - make the create of chosen references fail every time with a transient error (a poison
//!   message, Q3);
//! - make every create slow (a handler that outlives the visibility timeout, Q4).

use ledgerbridge_adapters::aws::DynamoStore;
use ledgerbridge_core::ids::{ErpDocumentId, IdempotencyKey};
use ledgerbridge_core::keys::IntentKey;
use ledgerbridge_core::ports::{IdempotencyStore, RecordStatus};
use ledgerbridge_core::{Clock, SystemClock};
use ledgerbridge_erp::{
    CustomerUpsert, ErpCommand, ErpConnector, ErpCustomerMatch, ErpCustomerRecord, ErpError,
    ExternalRef, FieldsOutcome,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::MotoPostStage;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use ledgerbridge_adapters::lambda::process_batch;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub struct Guarded<C> {
    pub inner: C,
    /// References (`ExternalRef::full`) whose create always fails with a transient error.
    pub poison: HashSet<String>,
    /// Waited before every create is sent.
    pub create_delay: Duration,
    /// The state table the poster claims its intents in; once set, the lock check is on.
    pub lock_store: std::sync::OnceLock<DynamoStore>,
    /// Create calls per reference (poisoned ones included; a call counts when it is made).
    pub creates: Mutex<HashMap<String, usize>>,
    /// Searches by reference, per reference.
    pub searches: Mutex<HashMap<String, usize>>,
    /// ERP calls (search or create) made while the intent was not `INPROGRESS`.
    pub unlocked_calls: AtomicUsize,
    /// ERP calls made while the intent was `INPROGRESS` but its lease had lapsed (the worker
    /// outlived its lease: another could have taken the intent over).
    pub lapsed_calls: AtomicUsize,
    /// ERP calls whose lock was checked.
    pub locked_calls: AtomicUsize,
    /// Every search and create call.
    pub erp_calls: AtomicUsize,
}

impl<C> Guarded<C> {
    pub fn new(inner: C) -> Self {
        Guarded {
            inner,
            poison: HashSet::new(),
            create_delay: Duration::ZERO,
            lock_store: std::sync::OnceLock::new(),
            creates: Mutex::default(),
            searches: Mutex::default(),
            unlocked_calls: AtomicUsize::new(0),
            lapsed_calls: AtomicUsize::new(0),
            locked_calls: AtomicUsize::new(0),
            erp_calls: AtomicUsize::new(0),
        }
    }

    /// Create calls for `reference`.
    pub fn creates_of(&self, reference: &ExternalRef) -> usize {
        self.creates
            .lock()
            .unwrap()
            .get(&reference.full())
            .copied()
            .unwrap_or(0)
    }

    /// References created more than once (create calls, whatever the ERP answered).
    pub fn created_twice(&self) -> Vec<(String, usize)> {
        let mut v: Vec<_> = self
            .creates
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(r, n)| (r.clone(), *n))
            .collect();
        v.sort();
        v
    }
}

impl<C: ErpConnector> Guarded<C> {
    async fn check_lock(&self, reference: &ExternalRef) {
        self.erp_calls.fetch_add(1, Ordering::SeqCst);
        let Some(store) = self.lock_store.get() else {
            return;
        };
        let key: IdempotencyKey = IntentKey::post(self.inner.erp(), reference).into();
        let counter = match store.get(&key).await {
            Ok(Some(rec)) if rec.status == RecordStatus::InProgress => {
                if rec.in_progress_expiration > SystemClock.now_millis() {
                    &self.locked_calls
                } else {
                    &self.lapsed_calls
                }
            }
            Ok(_) => &self.unlocked_calls,
            // The checker's own client has no faults injected; a failure here is moto's.
            Err(e) => panic!("lock check: {e}"),
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

impl<C: ErpConnector> ErpConnector for Guarded<C> {
    fn erp(&self) -> &'static str {
        self.inner.erp()
    }
    async fn find_by_reference(
        &self,
        reference: &ExternalRef,
    ) -> Result<Option<ErpDocumentId>, ErpError> {
        self.check_lock(reference).await;
        *self
            .searches
            .lock()
            .unwrap()
            .entry(reference.full())
            .or_default() += 1;
        self.inner.find_by_reference(reference).await
    }
    async fn create(&self, command: &ErpCommand) -> Result<ErpDocumentId, ErpError> {
        let reference = command.reference();
        self.check_lock(reference).await;
        *self
            .creates
            .lock()
            .unwrap()
            .entry(reference.full())
            .or_default() += 1;
        if self.poison.contains(&reference.full()) {
            return Err(ErpError::Retryable {
                erp: self.inner.erp(),
                status: Some(503),
                message: "poison: this document always fails".into(),
                retry_after: None,
                may_have_committed: false,
            });
        }
        if !self.create_delay.is_zero() {
            tokio::time::sleep(self.create_delay).await;
        }
        self.inner.create(command).await
    }
    async fn update_customer(
        &self,
        id: &ErpDocumentId,
        customer: &CustomerUpsert,
    ) -> Result<(), ErpError> {
        self.inner.update_customer(id, customer).await
    }
    async fn find_customer_by_email(
        &self,
        email: &str,
    ) -> Result<Option<ErpCustomerMatch>, ErpError> {
        self.inner.find_customer_by_email(email).await
    }
    async fn set_customer_fields(
        &self,
        customer_id: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<FieldsOutcome, ErpError> {
        self.inner.set_customer_fields(customer_id, values).await
    }
    async fn customers_changed_since(
        &self,
        since: i64,
        limit: usize,
    ) -> Result<Vec<ErpCustomerRecord>, ErpError> {
        self.inner.customers_changed_since(since, limit).await
    }
}

/// The erp-post handler as an event-source-mapping callback (`process_batch` over the stage,
/// ten records at a time, as `ErpPost::handle` runs it).
pub fn post_handler<C: ErpConnector + 'static>(
    stage: Arc<MotoPostStage<C>>,
) -> impl Fn(SqsEvent) -> Pin<Box<dyn Future<Output = SqsBatchResponse> + Send>> + Send + Sync + 'static
{
    move |event| {
        let stage = stage.clone();
        Box::pin(async move {
            process_batch(event, 10, |body| {
                let stage = stage.clone();
                async move { stage.process(&body).await }
            })
            .await
            .unwrap()
        })
    }
}
