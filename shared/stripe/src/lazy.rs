//! A Stripe client built on first use: the API key is read (from Secrets Manager, say) when the
//! first request needs it, not while a Lambda container starts, and the built client is kept
//! for the container's life. A failed read leaves nothing cached and is a retriable
//! [`StripeError::KeyUnavailable`], so the message that needed Stripe is retried, never parked.

use crate::api::{BalanceTransactionQuery, PayoutListQuery, StripeApi};
use crate::client::{StripeClient, StripeObjectKind};
use crate::error::StripeError;
use crate::objects::{
    StripeBalanceTransaction, StripeCharge, StripeCustomer, StripeInvoicePayment, StripeList,
    StripePayout, StripeRefund,
};
use ledgerbridge_core::event::Event;
use ledgerbridge_core::ids::{IdempotencyKey, PayoutId, StripeEventId};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What builds the client: reads the key and calls [`StripeClient::new`].
pub type StripeClientInit = Arc<
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<StripeClient, StripeError>> + Send>>
        + Send
        + Sync,
>;

/// A [`StripeClient`] built by `init` on the first call that needs one.
#[derive(Clone)]
pub struct LazyStripe {
    cell: Arc<tokio::sync::OnceCell<StripeClient>>,
    init: StripeClientInit,
}

impl std::fmt::Debug for LazyStripe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyStripe")
            .field("client", &self.cell.get())
            .finish()
    }
}

impl LazyStripe {
    pub fn new(init: StripeClientInit) -> Self {
        LazyStripe {
            cell: Arc::new(tokio::sync::OnceCell::new()),
            init,
        }
    }

    /// The client, built now if this is the first use (concurrent first uses build it once).
    pub async fn client(&self) -> Result<&StripeClient, StripeError> {
        self.cell.get_or_try_init(|| (self.init)()).await
    }

    /// Whether the client has been built (the key read).
    pub fn is_built(&self) -> bool {
        self.cell.initialized()
    }
}

impl StripeApi for LazyStripe {
    async fn retrieve_customer(&self, id: &str) -> Result<StripeCustomer, StripeError> {
        self.client().await?.retrieve_customer(id).await
    }
    async fn retrieve_charge(&self, id: &str) -> Result<StripeCharge, StripeError> {
        StripeApi::retrieve_charge(self.client().await?, id).await
    }
    async fn list_refunds_of_charge(
        &self,
        charge: &str,
    ) -> Result<StripeList<StripeRefund>, StripeError> {
        StripeApi::list_refunds_of_charge(self.client().await?, charge).await
    }
    async fn list_invoice_payments(
        &self,
        invoice: &str,
    ) -> Result<StripeList<StripeInvoicePayment>, StripeError> {
        StripeApi::list_invoice_payments(self.client().await?, invoice).await
    }
    async fn invoice_payments_of_payment_intent(
        &self,
        payment_intent: &str,
    ) -> Result<StripeList<StripeInvoicePayment>, StripeError> {
        StripeApi::invoice_payments_of_payment_intent(self.client().await?, payment_intent).await
    }
    async fn set_metadata(
        &self,
        object: StripeObjectKind,
        id: &str,
        key: &str,
        value: &str,
    ) -> Result<(), StripeError> {
        StripeApi::set_metadata(self.client().await?, object, id, key, value).await
    }
    async fn update_customer(
        &self,
        id: &str,
        fields: &[(String, String)],
        idempotency_key: &IdempotencyKey,
    ) -> Result<(), StripeError> {
        StripeApi::update_customer(self.client().await?, id, fields, idempotency_key).await
    }
    async fn retrieve_payout(&self, id: &PayoutId) -> Result<StripePayout, StripeError> {
        StripeApi::retrieve_payout(self.client().await?, id).await
    }
    async fn retrieve_balance_transaction(
        &self,
        id: &str,
    ) -> Result<StripeBalanceTransaction, StripeError> {
        StripeApi::retrieve_balance_transaction(self.client().await?, id).await
    }
    async fn list_balance_transactions(
        &self,
        query: &BalanceTransactionQuery,
        starting_after: Option<&str>,
    ) -> Result<StripeList<StripeBalanceTransaction>, StripeError> {
        StripeApi::list_balance_transactions(self.client().await?, query, starting_after).await
    }
    async fn list_payouts(
        &self,
        query: &PayoutListQuery,
        starting_after: Option<&str>,
    ) -> Result<StripeList<StripePayout>, StripeError> {
        StripeApi::list_payouts(self.client().await?, query, starting_after).await
    }
    async fn retrieve_event(&self, id: &StripeEventId) -> Result<Event, StripeError> {
        StripeApi::retrieve_event(self.client().await?, id).await
    }
    fn calls(&self) -> u64 {
        self.cell.get().map_or(0, StripeApi::calls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StripeClientConfig;
    use ledgerbridge_core::secrets::Secret;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Fails the first `failures` reads with an unavailable key, then builds a client.
    fn flaky(failures: u32, reads: Arc<AtomicU32>) -> LazyStripe {
        LazyStripe::new(Arc::new(move || {
            let reads = reads.clone();
            Box::pin(async move {
                let n = reads.fetch_add(1, Ordering::SeqCst);
                if n < failures {
                    return Err(StripeError::KeyUnavailable(
                        "secret stripe-key could not be read: throttled".into(),
                    ));
                }
                StripeClient::new(
                    StripeClientConfig::new(Secret::new("sk_test_lazy".into()))
                        .with_base_url("http://127.0.0.1:9"),
                )
            })
        }))
    }

    #[tokio::test]
    async fn nothing_is_read_until_first_use_and_a_failed_read_is_retried_then_kept() {
        let reads = Arc::new(AtomicU32::new(0));
        let lazy = flaky(1, reads.clone());
        assert_eq!(reads.load(Ordering::SeqCst), 0, "no read at construction");
        assert!(!lazy.is_built());

        let err = lazy.retrieve_customer("cus_1").await.unwrap_err();
        assert!(err.is_retriable(), "{err}");
        assert!(matches!(err, StripeError::KeyUnavailable(_)), "{err}");
        assert!(!lazy.is_built(), "a failed read caches nothing");

        assert!(lazy.client().await.is_ok());
        assert!(
            lazy.clone().client().await.is_ok(),
            "clones share the client"
        );
        assert_eq!(
            reads.load(Ordering::SeqCst),
            2,
            "read again once, then kept"
        );
        assert!(lazy.is_built());
        assert_eq!(lazy.calls(), 0);
    }
}
