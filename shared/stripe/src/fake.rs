//! [`FakeStripe`]: an in-memory [`StripeApi`] for tests (feature `test-util`). It serves the
//! objects it was given, filters and pages lists the way Stripe does, records writes, counts
//! calls, and can be told to fail the next calls.

use crate::api::{BalanceTransactionFilter, BalanceTransactionQuery, PayoutListQuery, StripeApi};
use crate::client::StripeObjectKind;
use crate::error::{StripeApiError, StripeError};
use crate::objects::{
    StripeBalanceTransaction, StripeCharge, StripeCustomer, StripeInvoicePayment, StripeList,
    StripePayout, StripeRefund,
};
use ledgerbridge_core::event::Event;
use ledgerbridge_core::ids::{IdempotencyKey, PayoutId, StripeEventId};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

/// What a [`FakeStripe`] holds and has recorded. Reach it with [`FakeStripe::data`].
#[derive(Debug, Default)]
pub struct FakeStripeData {
    pub customers: BTreeMap<String, StripeCustomer>,
    pub charges: BTreeMap<String, StripeCharge>,
    pub refunds: Vec<StripeRefund>,
    pub invoice_payments: Vec<StripeInvoicePayment>,
    pub payouts: Vec<StripePayout>,
    /// Retrievable by id, and listed by creation window (newest first).
    pub balance_transactions: BTreeMap<String, StripeBalanceTransaction>,
    /// The listing of each automatic payout, in Stripe's order (newest first).
    pub payout_transactions: BTreeMap<String, Vec<StripeBalanceTransaction>>,
    pub events: BTreeMap<String, Event>,
    /// `(object, id, key, value)` of each metadata write.
    pub metadata_writes: Vec<(StripeObjectKind, String, String, String)>,
    /// Each customer update.
    pub customer_updates: Vec<CustomerUpdate>,
    /// Errors returned by the next calls, one per call, before any data is read.
    pub failures: VecDeque<StripeError>,
    /// Calls so far (failed ones included).
    pub calls: u64,
    /// Page size of the balance-transaction and payout listings (default 100).
    pub page_size: Option<usize>,
}

/// `(customer id, form fields, idempotency key)` of a recorded customer update.
pub type CustomerUpdate = (String, Vec<(String, String)>, String);

/// An in-memory Stripe.
#[derive(Debug, Default)]
pub struct FakeStripe {
    data: Mutex<FakeStripeData>,
}

/// A 404 as Stripe sends it.
pub fn not_found(what: &str, id: &str) -> StripeError {
    StripeError::Api {
        status: 404,
        error: StripeApiError {
            kind: Some("invalid_request_error".into()),
            code: Some("resource_missing".into()),
            message: Some(format!("No such {what}: '{id}'")),
            param: Some("id".into()),
        },
        should_retry: None,
        request_id: None,
    }
}

impl FakeStripe {
    pub fn new() -> Self {
        FakeStripe::default()
    }

    /// The data, to add objects or read what was recorded. Do not hold it across `.await`.
    pub fn data(&self) -> MutexGuard<'_, FakeStripeData> {
        match self.data.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub fn with_page_size(self, size: usize) -> Self {
        self.data().page_size = Some(size.max(1));
        self
    }

    pub fn with_customer(self, c: StripeCustomer) -> Self {
        self.data().customers.insert(c.id.clone(), c);
        self
    }

    pub fn with_charge(self, c: StripeCharge) -> Self {
        self.data().charges.insert(c.id.clone(), c);
        self
    }

    pub fn with_refund(self, r: StripeRefund) -> Self {
        self.data().refunds.push(r);
        self
    }

    pub fn with_invoice_payment(self, p: StripeInvoicePayment) -> Self {
        self.data().invoice_payments.push(p);
        self
    }

    pub fn with_payout(self, p: StripePayout) -> Self {
        self.data().payouts.push(p);
        self
    }

    /// A balance transaction, retrievable by id and listed by creation time.
    pub fn with_balance_transaction(self, bt: StripeBalanceTransaction) -> Self {
        self.data().balance_transactions.insert(bt.id.clone(), bt);
        self
    }

    /// The listing of an automatic payout (`GET /v1/balance_transactions?payout=…`), in the
    /// order given (Stripe's: newest first, the payout's own entry included). The entries are
    /// retrievable by id too.
    pub fn with_payout_transactions(
        self,
        payout: &str,
        entries: Vec<StripeBalanceTransaction>,
    ) -> Self {
        {
            let mut d = self.data();
            for bt in &entries {
                d.balance_transactions.insert(bt.id.clone(), bt.clone());
            }
            d.payout_transactions.insert(payout.to_owned(), entries);
        }
        self
    }

    pub fn with_event(self, e: Event) -> Self {
        self.data().events.insert(e.id.clone(), e);
        self
    }

    /// The next call fails with `err` (queue several for several calls).
    pub fn fail_next(&self, err: StripeError) {
        self.data().failures.push_back(err);
    }

    /// Count the call and pop an injected failure, if any.
    fn call(&self) -> Result<MutexGuard<'_, FakeStripeData>, StripeError> {
        let mut d = self.data();
        d.calls += 1;
        match d.failures.pop_front() {
            Some(e) => Err(e),
            None => Ok(d),
        }
    }
}

fn page<T: Clone>(
    all: Vec<T>,
    size: usize,
    starting_after: Option<&str>,
    id: impl Fn(&T) -> &str,
) -> StripeList<T> {
    let start = match starting_after {
        Some(after) => all
            .iter()
            .position(|x| id(x) == after)
            .map_or(all.len(), |i| i + 1),
        None => 0,
    };
    let end = start.saturating_add(size).min(all.len());
    StripeList {
        has_more: end < all.len(),
        data: all.get(start..end).map(<[T]>::to_vec).unwrap_or_default(),
        url: None,
    }
}

fn list<T>(data: Vec<T>) -> StripeList<T> {
    StripeList {
        data,
        has_more: false,
        url: None,
    }
}

impl StripeApi for FakeStripe {
    async fn retrieve_customer(&self, id: &str) -> Result<StripeCustomer, StripeError> {
        let d = self.call()?;
        d.customers
            .get(id)
            .cloned()
            .ok_or_else(|| not_found("customer", id))
    }

    async fn retrieve_charge(&self, id: &str) -> Result<StripeCharge, StripeError> {
        let d = self.call()?;
        d.charges
            .get(id)
            .cloned()
            .ok_or_else(|| not_found("charge", id))
    }

    async fn list_refunds_of_charge(
        &self,
        charge: &str,
    ) -> Result<StripeList<StripeRefund>, StripeError> {
        let d = self.call()?;
        Ok(list(
            d.refunds
                .iter()
                .filter(|r| r.charge_id() == Some(charge))
                .cloned()
                .collect(),
        ))
    }

    async fn list_invoice_payments(
        &self,
        invoice: &str,
    ) -> Result<StripeList<StripeInvoicePayment>, StripeError> {
        let d = self.call()?;
        Ok(list(
            d.invoice_payments
                .iter()
                .filter(|p| p.invoice_id() == Some(invoice))
                .cloned()
                .collect(),
        ))
    }

    async fn invoice_payments_of_payment_intent(
        &self,
        payment_intent: &str,
    ) -> Result<StripeList<StripeInvoicePayment>, StripeError> {
        let d = self.call()?;
        let all: Vec<StripeInvoicePayment> = d
            .invoice_payments
            .iter()
            .filter(|p| {
                p.payment.as_ref().is_some_and(|r| {
                    r.kind.as_deref() == Some("payment_intent")
                        && r.payment_id() == Some(payment_intent)
                })
            })
            .cloned()
            .collect();
        Ok(page(all, 1, None, |p| p.id.as_str()))
    }

    async fn set_metadata(
        &self,
        object: StripeObjectKind,
        id: &str,
        key: &str,
        value: &str,
    ) -> Result<(), StripeError> {
        let mut d = self.call()?;
        d.metadata_writes
            .push((object, id.to_owned(), key.to_owned(), value.to_owned()));
        Ok(())
    }

    async fn update_customer(
        &self,
        id: &str,
        fields: &[(String, String)],
        idempotency_key: &IdempotencyKey,
    ) -> Result<(), StripeError> {
        let mut d = self.call()?;
        if !d.customers.contains_key(id) {
            return Err(not_found("customer", id));
        }
        d.customer_updates.push((
            id.to_owned(),
            fields.to_vec(),
            idempotency_key.as_str().to_owned(),
        ));
        Ok(())
    }

    async fn retrieve_payout(&self, id: &PayoutId) -> Result<StripePayout, StripeError> {
        let d = self.call()?;
        d.payouts
            .iter()
            .find(|p| p.id == id.as_str())
            .cloned()
            .ok_or_else(|| not_found("payout", id.as_str()))
    }

    async fn retrieve_balance_transaction(
        &self,
        id: &str,
    ) -> Result<StripeBalanceTransaction, StripeError> {
        let d = self.call()?;
        d.balance_transactions
            .get(id)
            .cloned()
            .ok_or_else(|| not_found("balance_transaction", id))
    }

    async fn list_balance_transactions(
        &self,
        query: &BalanceTransactionQuery,
        starting_after: Option<&str>,
    ) -> Result<StripeList<StripeBalanceTransaction>, StripeError> {
        let d = self.call()?;
        let all = match &query.filter {
            BalanceTransactionFilter::Payout(p) => d
                .payout_transactions
                .get(p.as_str())
                .cloned()
                .unwrap_or_default(),
            BalanceTransactionFilter::CreatedBetween { from, to } => {
                let mut v: Vec<StripeBalanceTransaction> = d
                    .balance_transactions
                    .values()
                    .filter(|bt| bt.created >= *from && bt.created < *to)
                    .cloned()
                    .collect();
                v.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.id.cmp(&a.id)));
                v
            }
        };
        Ok(page(
            all,
            d.page_size.unwrap_or(100),
            starting_after,
            |bt| bt.id.as_str(),
        ))
    }

    async fn list_payouts(
        &self,
        query: &PayoutListQuery,
        starting_after: Option<&str>,
    ) -> Result<StripeList<StripePayout>, StripeError> {
        let d = self.call()?;
        let all: Vec<StripePayout> = d
            .payouts
            .iter()
            .filter(|p| query.status.as_deref().is_none_or(|s| p.status == s))
            .filter(|p| query.arrival_date_gte.is_none_or(|t| p.arrival_date >= t))
            .cloned()
            .collect();
        let size = query
            .limit
            .map(usize::from)
            .or(d.page_size)
            .unwrap_or(100)
            .max(1);
        Ok(page(all, size, starting_after, |p| p.id.as_str()))
    }

    async fn retrieve_event(&self, id: &StripeEventId) -> Result<Event, StripeError> {
        let d = self.call()?;
        d.events
            .get(id.as_str())
            .cloned()
            .ok_or_else(|| not_found("event", id.as_str()))
    }

    fn calls(&self) -> u64 {
        self.data().calls
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::BalanceTransactionPages;

    fn bt(id: &str, created: i64) -> StripeBalanceTransaction {
        serde_json::from_value(
            serde_json::json!({"id": id, "amount": 100, "currency": "usd",
            "fee": 0, "net": 100, "type": "charge", "reporting_category": "charge",
            "source": "ch_1", "created": created}),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn pages_filters_records_and_fails_on_request() {
        let fake = FakeStripe::new()
            .with_page_size(2)
            .with_payout_transactions(
                "po_1",
                (1..=5).map(|i| bt(&format!("txn_{i}"), i)).collect(),
            )
            .with_customer(serde_json::from_str(r#"{"id":"cus_1","object":"customer"}"#).unwrap());
        let mut pages = BalanceTransactionPages::new(
            &fake,
            BalanceTransactionQuery::payout(PayoutId::new("po_1")),
        );
        let mut ids = Vec::new();
        while let Some(p) = pages.next_page().await.unwrap() {
            ids.extend(p.into_iter().map(|t| t.id));
        }
        assert_eq!(ids, ["txn_1", "txn_2", "txn_3", "txn_4", "txn_5"]);
        assert_eq!(fake.calls(), 3);

        let window = fake
            .list_balance_transactions(&BalanceTransactionQuery::created_between(2, 4), None)
            .await
            .unwrap();
        let ids: Vec<_> = window.data.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["txn_3", "txn_2"], "newest first");

        fake.fail_next(StripeError::RateLimited { retry_after: None });
        assert!(fake
            .retrieve_customer("cus_1")
            .await
            .unwrap_err()
            .is_retriable());
        assert_eq!(fake.retrieve_customer("cus_1").await.unwrap().id, "cus_1");
        assert!(fake
            .retrieve_customer("cus_2")
            .await
            .unwrap_err()
            .is_not_found());
        fake.update_customer(
            "cus_1",
            &[("name".into(), "N".into())],
            &IdempotencyKey::new("k"),
        )
        .await
        .unwrap();
        assert_eq!(fake.data().customer_updates[0].2, "k");
    }
}
