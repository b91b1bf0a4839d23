//! Fail-points in the code path, as wrappers the tests put around real components, so the
//! production build carries none of them: [`CrashAfterCommit`] stops the worker after the ERP
//! committed a document and before anything else happens (the cross-reference, the intent, the
//! delete) — the invocation hangs until the event source's timeout kills it, as a Lambda dies.
//! "After send, before delete" is the simulator's `skip_delete_per_mille`.

use ledgerbridge_core::ids::ErpDocumentId;
use ledgerbridge_erp::{
    CustomerUpsert, ErpCommand, ErpConnector, ErpCustomerMatch, ErpCustomerRecord, ErpError,
    ExternalRef, FieldsOutcome,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

tokio::task_local! {
    /// The invocation a record runs in, when the handler tracks one ([`Invocation`]).
    pub static INVOCATION: std::sync::Arc<Invocation>;
}

/// What the fail-point did inside one invocation: a handler that runs its batch in
/// [`INVOCATION`]'s scope can end the invocation as soon as every record has finished or died
/// (the whole batch then comes back, as after Lambda's kill), instead of waiting for the
/// invocation timeout.
#[derive(Debug, Default)]
pub struct Invocation {
    pub crashed: AtomicUsize,
}

pub struct CrashAfterCommit<C> {
    pub inner: C,
    /// Share of successful creates after which the worker dies (per mille).
    pub per_mille: u32,
    state: AtomicU64,
    pub fired: AtomicUsize,
}

impl<C> CrashAfterCommit<C> {
    pub fn new(inner: C, per_mille: u32, seed: u64) -> Self {
        CrashAfterCommit {
            inner,
            per_mille,
            state: AtomicU64::new(seed.max(1)),
            fired: AtomicUsize::new(0),
        }
    }

    fn roll(&self) -> bool {
        let x = self
            .state
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::SeqCst)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        z % 1000 < u64::from(self.per_mille)
    }
}

impl<C: ErpConnector> ErpConnector for CrashAfterCommit<C> {
    fn erp(&self) -> &'static str {
        self.inner.erp()
    }
    async fn find_by_reference(
        &self,
        reference: &ExternalRef,
    ) -> Result<Option<ErpDocumentId>, ErpError> {
        self.inner.find_by_reference(reference).await
    }
    async fn create(&self, command: &ErpCommand) -> Result<ErpDocumentId, ErpError> {
        let id = self.inner.create(command).await?;
        if self.roll() {
            self.fired.fetch_add(1, Ordering::SeqCst);
            // Outside a tracked invocation there is nobody to tell.
            if let Ok(n) = INVOCATION.try_with(|i| i.crashed.fetch_add(1, Ordering::SeqCst)) {
                tracing::trace!(
                    crashed = n + 1,
                    "fail-point: worker dies after the ERP commit"
                );
            }
            // The worker dies here: nothing after the ERP's commit runs.
            std::future::pending::<()>().await;
        }
        Ok(id)
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
