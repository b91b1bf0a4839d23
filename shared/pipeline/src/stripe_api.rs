//! What the pipeline needs from Stripe, as a small port: the real client implements it, and so
//! can a test double.

use ledgerbridge_core::ids::IdempotencyKey;
use ledgerbridge_stripe::client::StripeObjectKind;
use ledgerbridge_stripe::{StripeClient, StripeError};
use serde_json::Value;
use std::future::Future;

pub trait StripeApi: Send + Sync {
    /// `GET /v1/{path}?{query}` as JSON (e.g. `customers/cus_1`; `refunds` with `charge=ch_1`).
    fn get(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> impl Future<Output = Result<Value, StripeError>> + Send;

    /// `POST /v1/{object_path}/{id}` with `metadata[key]=value` and an `Idempotency-Key`.
    fn set_metadata(
        &self,
        object_path: &str,
        id: &str,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<(), StripeError>> + Send;

    /// `POST /v1/customers/{id}` with form fields and the given `Idempotency-Key` (ERP → Stripe
    /// customer sync).
    fn update_customer(
        &self,
        id: &str,
        fields: &[(String, String)],
        idempotency_key: &str,
    ) -> impl Future<Output = Result<(), StripeError>> + Send;

    /// Calls made so far (for "Stripe calls per event").
    fn calls(&self) -> u64;
}

impl StripeApi for StripeClient {
    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, StripeError> {
        self.get_json(&format!("v1/{path}"), query).await
    }

    async fn set_metadata(
        &self,
        object_path: &str,
        id: &str,
        key: &str,
        value: &str,
    ) -> Result<(), StripeError> {
        let kind = match object_path {
            "customers" => StripeObjectKind::Customer,
            "charges" => StripeObjectKind::Charge,
            "refunds" => StripeObjectKind::Refund,
            "invoices" => StripeObjectKind::Invoice,
            "payouts" => StripeObjectKind::Payout,
            "payment_intents" => StripeObjectKind::PaymentIntent,
            "subscriptions" => StripeObjectKind::Subscription,
            "credit_notes" => StripeObjectKind::CreditNote,
            other => {
                return Err(StripeError::InvalidRequest(format!(
                    "no metadata write-back for {other}"
                )))
            }
        };
        // Deterministic key: a retried write-back of the same value is one write in Stripe.
        let idem = IdempotencyKey::new(format!("ledgerbridge-{object_path}-{id}-{key}-{value}"));
        self.update_metadata(kind, id, &[(key, value)], &idem)
            .await
            .map(drop)
    }

    async fn update_customer(
        &self,
        id: &str,
        fields: &[(String, String)],
        idempotency_key: &str,
    ) -> Result<(), StripeError> {
        let idem = IdempotencyKey::new(idempotency_key);
        StripeClient::update_customer(self, id, fields, &idem)
            .await
            .map(drop)
    }

    fn calls(&self) -> u64 {
        StripeClient::calls(self)
    }
}
