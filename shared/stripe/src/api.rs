//! [`StripeApi`]: the one typed port through which ledgerbridge reads and writes Stripe, shared by
//! the pipeline and the reconciliation. [`StripeClient`] implements it (every API path is built
//! in the client); a test double implements it over fixtures.
//!
//! The methods return the typed [`objects`](crate::objects) and keep the client's error type,
//! so callers classify failures with [`StripeError::is_retriable`]. Like the pipeline's port
//! before it, the trait uses `impl Future + Send` returns (no boxing; not object-safe): take it
//! as a generic parameter `A: StripeApi`. `&A` implements it too.

use crate::client::{StripeClient, StripeObjectKind};
use crate::error::StripeError;
use crate::objects::{
    StripeBalanceTransaction, StripeCharge, StripeCustomer, StripeInvoicePayment, StripeList,
    StripePayout, StripeRefund,
};
use futures::Stream;
use ledgerbridge_core::event::Event;
use ledgerbridge_core::ids::{IdempotencyKey, PayoutId, StripeEventId};
use std::future::Future;

pub use crate::query::{BalanceTransactionFilter, BalanceTransactionQuery, PayoutListQuery};

/// Everything ledgerbridge asks of Stripe, typed.
///
/// Replaces the pipeline's former port (`ledgerbridge_pipeline::stripe_api`, removed), whose
/// untyped `get(path, query)` is split into one method per call the pipeline makes:
///
/// | pipeline port call | this port |
/// | --- | --- |
/// | `get("customers/{id}", &[])` | [`retrieve_customer`](Self::retrieve_customer) |
/// | `get("charges/{id}", &[])` | [`retrieve_charge`](Self::retrieve_charge) |
/// | `get("refunds", &[("charge", ch), ("limit", "100")])` | [`list_refunds_of_charge`](Self::list_refunds_of_charge) |
/// | `get("invoice_payments", &[("invoice", id), ("limit", "100")])` | [`list_invoice_payments`](Self::list_invoice_payments) |
/// | `get("invoice_payments", &[("payment[type]", "payment_intent"), ("payment[payment_intent]", pi), ("limit", "1")])` | [`invoice_payments_of_payment_intent`](Self::invoice_payments_of_payment_intent) |
/// | `set_metadata(object_path, id, key, value)` | [`set_metadata`](Self::set_metadata) with [`StripeObjectKind::from_path`] |
/// | `update_customer(id, fields, idempotency_key: &str)` | [`update_customer`](Self::update_customer) with `&IdempotencyKey::new(key)` |
/// | `calls()` | [`calls`](Self::calls) |
///
/// The reconciliation (and the payout-reconciliation function) use
/// [`retrieve_payout`](Self::retrieve_payout),
/// [`retrieve_balance_transaction`](Self::retrieve_balance_transaction),
/// [`list_balance_transactions`](Self::list_balance_transactions) (one page; page through with
/// [`BalanceTransactionPages`]), [`list_payouts`](Self::list_payouts) and
/// [`retrieve_event`](Self::retrieve_event).
pub trait StripeApi: Send + Sync {
    /// `GET /v1/customers/{id}` (a deleted customer reads with `deleted: true`).
    fn retrieve_customer(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<StripeCustomer, StripeError>> + Send;

    /// `GET /v1/charges/{id}`.
    fn retrieve_charge(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<StripeCharge, StripeError>> + Send;

    /// `GET /v1/refunds?charge={charge}&limit=100`: the refunds of a charge (the most one page
    /// holds; `has_more` tells whether there are more).
    fn list_refunds_of_charge(
        &self,
        charge: &str,
    ) -> impl Future<Output = Result<StripeList<StripeRefund>, StripeError>> + Send;

    /// `GET /v1/invoice_payments?invoice={invoice}&limit=100`: the payments of an invoice (the
    /// most one page holds; `has_more` tells whether there are more).
    fn list_invoice_payments(
        &self,
        invoice: &str,
    ) -> impl Future<Output = Result<StripeList<StripeInvoicePayment>, StripeError>> + Send;

    /// `GET /v1/invoice_payments?payment[type]=payment_intent&payment[payment_intent]={pi}&limit=1`:
    /// the invoice payment made by a PaymentIntent, if any (since API version 2025-03-31 the
    /// only link from a payment to its invoice).
    fn invoice_payments_of_payment_intent(
        &self,
        payment_intent: &str,
    ) -> impl Future<Output = Result<StripeList<StripeInvoicePayment>, StripeError>> + Send;

    /// `POST /v1/{object}/{id}` with `metadata[key]=value` and a deterministic
    /// `Idempotency-Key` (`ledgerbridge-{path}-{id}-{key}-{value}`), so a retried write-back of
    /// the same value is one write in Stripe.
    fn set_metadata(
        &self,
        object: StripeObjectKind,
        id: &str,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<(), StripeError>> + Send;

    /// `POST /v1/customers/{id}` with form fields (`name`, `email`, `address[line1]`,
    /// `metadata[key]`, …) and the given `Idempotency-Key` (ERP → Stripe customer sync).
    fn update_customer(
        &self,
        id: &str,
        fields: &[(String, String)],
        idempotency_key: &IdempotencyKey,
    ) -> impl Future<Output = Result<(), StripeError>> + Send;

    /// `GET /v1/payouts/{id}`.
    fn retrieve_payout(
        &self,
        id: &PayoutId,
    ) -> impl Future<Output = Result<StripePayout, StripeError>> + Send;

    /// `GET /v1/balance_transactions/{id}`.
    fn retrieve_balance_transaction(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<StripeBalanceTransaction, StripeError>> + Send;

    /// One page of `GET /v1/balance_transactions?{filter}&limit=…[&expand[]=data.source]
    /// [&starting_after={id}]`.
    fn list_balance_transactions(
        &self,
        query: &BalanceTransactionQuery,
        starting_after: Option<&str>,
    ) -> impl Future<Output = Result<StripeList<StripeBalanceTransaction>, StripeError>> + Send;

    /// One page of `GET /v1/payouts?[status=…][&arrival_date[gte]=…]&limit=…
    /// [&starting_after={id}]`.
    fn list_payouts(
        &self,
        query: &PayoutListQuery,
        starting_after: Option<&str>,
    ) -> impl Future<Output = Result<StripeList<StripePayout>, StripeError>> + Send;

    /// `GET /v1/events/{id}`.
    fn retrieve_event(
        &self,
        id: &StripeEventId,
    ) -> impl Future<Output = Result<Event, StripeError>> + Send;

    /// HTTP requests made so far, retries included (for "Stripe calls per event").
    fn calls(&self) -> u64;
}

impl StripeApi for StripeClient {
    async fn retrieve_customer(&self, id: &str) -> Result<StripeCustomer, StripeError> {
        StripeClient::retrieve_customer(self, id).await
    }

    async fn retrieve_charge(&self, id: &str) -> Result<StripeCharge, StripeError> {
        StripeClient::retrieve_charge(self, id).await
    }

    async fn list_refunds_of_charge(
        &self,
        charge: &str,
    ) -> Result<StripeList<StripeRefund>, StripeError> {
        StripeClient::list_refunds_of_charge(self, charge).await
    }

    async fn list_invoice_payments(
        &self,
        invoice: &str,
    ) -> Result<StripeList<StripeInvoicePayment>, StripeError> {
        StripeClient::list_invoice_payments(self, invoice).await
    }

    async fn invoice_payments_of_payment_intent(
        &self,
        payment_intent: &str,
    ) -> Result<StripeList<StripeInvoicePayment>, StripeError> {
        StripeClient::invoice_payments_of_payment_intent(self, payment_intent).await
    }

    async fn set_metadata(
        &self,
        object: StripeObjectKind,
        id: &str,
        key: &str,
        value: &str,
    ) -> Result<(), StripeError> {
        StripeClient::set_metadata(self, object, id, key, value).await
    }

    async fn update_customer(
        &self,
        id: &str,
        fields: &[(String, String)],
        idempotency_key: &IdempotencyKey,
    ) -> Result<(), StripeError> {
        StripeClient::update_customer(self, id, fields, idempotency_key)
            .await
            .map(drop)
    }

    async fn retrieve_payout(&self, id: &PayoutId) -> Result<StripePayout, StripeError> {
        StripeClient::retrieve_payout(self, id).await
    }

    async fn retrieve_balance_transaction(
        &self,
        id: &str,
    ) -> Result<StripeBalanceTransaction, StripeError> {
        StripeClient::retrieve_balance_transaction(self, id).await
    }

    async fn list_balance_transactions(
        &self,
        query: &BalanceTransactionQuery,
        starting_after: Option<&str>,
    ) -> Result<StripeList<StripeBalanceTransaction>, StripeError> {
        StripeClient::list_balance_transactions(self, query, starting_after).await
    }

    async fn list_payouts(
        &self,
        query: &PayoutListQuery,
        starting_after: Option<&str>,
    ) -> Result<StripeList<StripePayout>, StripeError> {
        StripeClient::list_payouts(self, query, starting_after).await
    }

    async fn retrieve_event(&self, id: &StripeEventId) -> Result<Event, StripeError> {
        StripeClient::retrieve_event(self, id).await
    }

    fn calls(&self) -> u64 {
        StripeClient::calls(self)
    }
}

impl<T: StripeApi> StripeApi for &T {
    fn retrieve_customer(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<StripeCustomer, StripeError>> + Send {
        (**self).retrieve_customer(id)
    }

    fn retrieve_charge(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<StripeCharge, StripeError>> + Send {
        (**self).retrieve_charge(id)
    }

    fn list_refunds_of_charge(
        &self,
        charge: &str,
    ) -> impl Future<Output = Result<StripeList<StripeRefund>, StripeError>> + Send {
        (**self).list_refunds_of_charge(charge)
    }

    fn list_invoice_payments(
        &self,
        invoice: &str,
    ) -> impl Future<Output = Result<StripeList<StripeInvoicePayment>, StripeError>> + Send {
        (**self).list_invoice_payments(invoice)
    }

    fn invoice_payments_of_payment_intent(
        &self,
        payment_intent: &str,
    ) -> impl Future<Output = Result<StripeList<StripeInvoicePayment>, StripeError>> + Send {
        (**self).invoice_payments_of_payment_intent(payment_intent)
    }

    fn set_metadata(
        &self,
        object: StripeObjectKind,
        id: &str,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<(), StripeError>> + Send {
        (**self).set_metadata(object, id, key, value)
    }

    fn update_customer(
        &self,
        id: &str,
        fields: &[(String, String)],
        idempotency_key: &IdempotencyKey,
    ) -> impl Future<Output = Result<(), StripeError>> + Send {
        (**self).update_customer(id, fields, idempotency_key)
    }

    fn retrieve_payout(
        &self,
        id: &PayoutId,
    ) -> impl Future<Output = Result<StripePayout, StripeError>> + Send {
        (**self).retrieve_payout(id)
    }

    fn retrieve_balance_transaction(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<StripeBalanceTransaction, StripeError>> + Send {
        (**self).retrieve_balance_transaction(id)
    }

    fn list_balance_transactions(
        &self,
        query: &BalanceTransactionQuery,
        starting_after: Option<&str>,
    ) -> impl Future<Output = Result<StripeList<StripeBalanceTransaction>, StripeError>> + Send
    {
        (**self).list_balance_transactions(query, starting_after)
    }

    fn list_payouts(
        &self,
        query: &PayoutListQuery,
        starting_after: Option<&str>,
    ) -> impl Future<Output = Result<StripeList<StripePayout>, StripeError>> + Send {
        (**self).list_payouts(query, starting_after)
    }

    fn retrieve_event(
        &self,
        id: &StripeEventId,
    ) -> impl Future<Output = Result<Event, StripeError>> + Send {
        (**self).retrieve_event(id)
    }

    fn calls(&self) -> u64 {
        (**self).calls()
    }
}

/// Pages of balance transactions through any [`StripeApi`]: `starting_after` the last id while
/// `has_more`.
pub struct BalanceTransactionPages<A = StripeClient> {
    api: A,
    query: BalanceTransactionQuery,
    starting_after: Option<String>,
    done: bool,
    pages: u64,
}

impl<A: StripeApi> BalanceTransactionPages<A> {
    /// Pages of `query` read through `api` (pass `&api` to borrow it).
    pub fn new(api: A, query: BalanceTransactionQuery) -> Self {
        BalanceTransactionPages {
            api,
            query,
            starting_after: None,
            done: false,
            pages: 0,
        }
    }

    /// Ask for `expand[]=data.source`, so a foreign-currency charge's presentment currency
    /// and amount are known (needed for FX lines; makes pages larger).
    pub fn expand_source(mut self, yes: bool) -> Self {
        self.query.expand_source = yes;
        self
    }

    /// Pages fetched so far.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// The next page, or `None` after the last. A failed page can be retried by calling again.
    pub async fn next_page(
        &mut self,
    ) -> Result<Option<Vec<StripeBalanceTransaction>>, StripeError> {
        if self.done {
            return Ok(None);
        }
        let page = self
            .api
            .list_balance_transactions(&self.query, self.starting_after.as_deref())
            .await?;
        self.pages += 1;
        if let Some(cursor) = self.starting_after.as_deref() {
            // The page after `cursor` holding `cursor` itself did not advance: paging on would
            // read the same page forever (and count its transactions again).
            if page.data.iter().any(|t| t.id == cursor) {
                return Err(StripeError::Decode {
                    what: "balance_transactions".into(),
                    message: format!(
                        "the page after {cursor} holds {cursor} again: the page cursor did not advance"
                    ),
                });
            }
        }
        match page.data.last() {
            Some(last) => self.starting_after = Some(last.id.clone()),
            None if page.has_more => {
                return Err(StripeError::Decode {
                    what: "balance_transactions".into(),
                    message: "has_more with an empty page".into(),
                })
            }
            None => {}
        }
        self.done = !page.has_more;
        Ok(Some(page.data))
    }

    /// The transactions one by one, fetched a page at a time.
    pub fn into_stream(
        self,
    ) -> impl Stream<Item = Result<StripeBalanceTransaction, StripeError>> + Send {
        use futures::StreamExt;
        futures::stream::try_unfold(self, |mut pages| async move {
            Ok(pages.next_page().await?.map(|page| (page, pages)))
        })
        .map(|page: Result<Vec<_>, StripeError>| match page {
            Ok(items) => futures::stream::iter(items.into_iter().map(Ok)).left_stream(),
            Err(e) => futures::stream::iter([Err(e)]).right_stream(),
        })
        .flatten()
    }
}

/// Page iterators of the client (they drive the port, so they live beside it).
impl StripeClient {
    /// The balance transactions of an automatic payout, newest first, including the payout's
    /// own entry: `GET /v1/balance_transactions?payout=…&limit=…[&starting_after=…]`.
    pub fn payout_balance_transactions(&self, payout: &PayoutId) -> BalanceTransactionPages {
        BalanceTransactionPages::new(
            self.clone(),
            BalanceTransactionQuery::payout(payout.clone()),
        )
    }

    /// Balance transactions created in `[from, to)` (Unix seconds), for reconstructing a
    /// manual payout, whose transactions Stripe cannot list by payout.
    pub fn balance_transactions_created_between(
        &self,
        from: i64,
        to: i64,
    ) -> BalanceTransactionPages {
        BalanceTransactionPages::new(
            self.clone(),
            BalanceTransactionQuery::created_between(from, to),
        )
    }
}
