//! HTTP I/O with Stripe: retries, rate limiting, call counting. No domain logic.

use crate::config::StripeClientConfig;
use crate::error::{StripeApiError, StripeError};
use crate::limiter::RateLimiter;
use crate::memo::Memo;
use crate::objects::{
    StripeBalanceTransaction, StripeCharge, StripeCreditNote, StripeCustomer, StripeDispute,
    StripeInvoice, StripeInvoicePayment, StripeList, StripePaymentIntent, StripePayout,
    StripeRefund, StripeSubscription,
};
use crate::query::{
    BalanceTransactionFilter, BalanceTransactionQuery, CreatedListQuery, PayoutListQuery,
};
use ledgerbridge_core::event::Event;
use ledgerbridge_core::ids::{IdempotencyKey, PayoutId, StripeEventId};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Stripe's metadata limits.
pub const METADATA_MAX_KEYS: usize = 50;
pub const METADATA_MAX_KEY_CHARS: usize = 40;
pub const METADATA_MAX_VALUE_CHARS: usize = 500;

/// The objects whose metadata the pipeline writes back (`POST /v1/{path}/{id}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StripeObjectKind {
    Customer,
    Charge,
    Refund,
    Invoice,
    Payout,
    PaymentIntent,
    Subscription,
    CreditNote,
}

impl StripeObjectKind {
    pub fn path(&self) -> &'static str {
        match self {
            StripeObjectKind::Customer => "customers",
            StripeObjectKind::Charge => "charges",
            StripeObjectKind::Refund => "refunds",
            StripeObjectKind::Invoice => "invoices",
            StripeObjectKind::Payout => "payouts",
            StripeObjectKind::PaymentIntent => "payment_intents",
            StripeObjectKind::Subscription => "subscriptions",
            StripeObjectKind::CreditNote => "credit_notes",
        }
    }

    /// The kind whose collection path is `path` (`"customers"`, `"payment_intents"`, …).
    pub fn from_path(path: &str) -> Option<Self> {
        [
            StripeObjectKind::Customer,
            StripeObjectKind::Charge,
            StripeObjectKind::Refund,
            StripeObjectKind::Invoice,
            StripeObjectKind::Payout,
            StripeObjectKind::PaymentIntent,
            StripeObjectKind::Subscription,
            StripeObjectKind::CreditNote,
        ]
        .into_iter()
        .find(|k| k.path() == path)
    }
}

/// The most entries Stripe returns in one page.
const MAX_PAGE: &str = "100";

/// A Stripe API client. Cheap to clone (shared connection pool, limiter and call counter).
#[derive(Clone)]
pub struct StripeClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    cfg: StripeClientConfig,
    base: Url,
    limiter: RateLimiter,
    /// `invoice_payments_of_payment_intent` answers, by PaymentIntent.
    payment_invoices: Memo<StripeList<StripeInvoicePayment>>,
    calls: AtomicU64,
    jitter: AtomicU64,
}

impl std::fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeClient")
            .field("base_url", &self.inner.base.as_str())
            .field("api_key", &self.inner.cfg.api_key)
            .field("calls", &self.calls())
            .finish()
    }
}

impl StripeClient {
    pub fn new(cfg: StripeClientConfig) -> Result<Self, StripeError> {
        let base = Url::parse(cfg.base_url.trim_end_matches('/'))
            .map_err(|e| StripeError::Config(format!("base URL: {e}")))?;
        if base.cannot_be_a_base() {
            return Err(StripeError::Config("base URL cannot be a base".into()));
        }
        let mut headers = HeaderMap::new();
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", cfg.api_key.expose()))
            .map_err(|_| StripeError::Config("API key is not a valid header value".into()))?;
        auth.set_sensitive(true);
        headers.insert(AUTHORIZATION, auth);
        if let Some(v) = &cfg.api_version {
            let v = HeaderValue::from_str(v).map_err(|_| {
                StripeError::Config("api_version is not a valid header value".into())
            })?;
            headers.insert("Stripe-Version", v);
        }
        let tls = ledgerbridge_core::tls::client_config()
            .map_err(|e| StripeError::Config(e.to_string()))?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .default_headers(headers)
            .timeout(cfg.request_timeout)
            .user_agent(concat!("ledgerbridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| StripeError::Config(format!("HTTP client: {e}")))?;
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64 ^ d.as_secs())
            .unwrap_or(0x9E37_79B9_7F4A_7C15)
            | 1;
        Ok(StripeClient {
            inner: Arc::new(Inner {
                http,
                limiter: RateLimiter::new(cfg.requests_per_second),
                payment_invoices: Memo::new(cfg.payment_lookup_ttl, cfg.payment_lookup_capacity),
                base,
                cfg,
                calls: AtomicU64::new(0),
                jitter: AtomicU64::new(seed),
            }),
        })
    }

    /// HTTP requests sent by this client (and its clones) so far, retries included.
    pub fn calls(&self) -> u64 {
        self.inner.calls.load(Ordering::Relaxed)
    }

    /// Reset the call counter, returning the value it had (to measure calls per event).
    pub fn take_calls(&self) -> u64 {
        self.inner.calls.swap(0, Ordering::Relaxed)
    }

    pub fn config(&self) -> &StripeClientConfig {
        &self.inner.cfg
    }

    // ---- retrieval -------------------------------------------------------------------------

    /// `GET /v1/events/{id}`.
    pub async fn retrieve_event(&self, id: &StripeEventId) -> Result<Event, StripeError> {
        self.retrieve("events", id.as_str()).await
    }
    /// `GET /v1/customers/{id}`.
    pub async fn retrieve_customer(&self, id: &str) -> Result<StripeCustomer, StripeError> {
        self.retrieve("customers", id).await
    }
    /// `GET /v1/charges/{id}`.
    pub async fn retrieve_charge(&self, id: &str) -> Result<StripeCharge, StripeError> {
        self.retrieve("charges", id).await
    }
    /// `GET /v1/refunds/{id}`.
    pub async fn retrieve_refund(&self, id: &str) -> Result<StripeRefund, StripeError> {
        self.retrieve("refunds", id).await
    }
    /// `GET /v1/invoices/{id}`.
    pub async fn retrieve_invoice(&self, id: &str) -> Result<StripeInvoice, StripeError> {
        self.retrieve("invoices", id).await
    }
    /// `GET /v1/balance_transactions/{id}`.
    pub async fn retrieve_balance_transaction(
        &self,
        id: &str,
    ) -> Result<StripeBalanceTransaction, StripeError> {
        self.retrieve("balance_transactions", id).await
    }
    /// `GET /v1/payouts/{id}`.
    pub async fn retrieve_payout(&self, id: &PayoutId) -> Result<StripePayout, StripeError> {
        self.retrieve("payouts", id.as_str()).await
    }

    /// `GET /v1/payment_intents/{id}`.
    pub async fn retrieve_payment_intent(
        &self,
        id: &str,
    ) -> Result<StripePaymentIntent, StripeError> {
        self.retrieve("payment_intents", id).await
    }
    /// `GET /v1/credit_notes/{id}`.
    pub async fn retrieve_credit_note(&self, id: &str) -> Result<StripeCreditNote, StripeError> {
        self.retrieve("credit_notes", id).await
    }
    /// `GET /v1/disputes/{id}`.
    pub async fn retrieve_dispute(&self, id: &str) -> Result<StripeDispute, StripeError> {
        self.retrieve("disputes", id).await
    }
    /// `GET /v1/subscriptions/{id}`.
    pub async fn retrieve_subscription(&self, id: &str) -> Result<StripeSubscription, StripeError> {
        self.retrieve("subscriptions", id).await
    }

    /// `GET /v1/refunds?charge={id}&limit=100`: the refunds of a charge, one page of the most
    /// Stripe returns (a charge rarely has more; `has_more` says so).
    pub async fn list_refunds_of_charge(
        &self,
        charge: &str,
    ) -> Result<StripeList<StripeRefund>, StripeError> {
        check_id(charge)?;
        self.get_json("v1/refunds", &[("charge", charge), ("limit", MAX_PAGE)])
            .await
    }

    /// `GET /v1/invoice_payments?invoice={id}&limit=100`: one page of the most Stripe returns
    /// (an invoice rarely has more than a handful of payments; `has_more` says so).
    pub async fn list_invoice_payments(
        &self,
        invoice: &str,
    ) -> Result<StripeList<StripeInvoicePayment>, StripeError> {
        check_id(invoice)?;
        self.get_json(
            "v1/invoice_payments",
            &[("invoice", invoice), ("limit", MAX_PAGE)],
        )
        .await
    }

    /// `GET /v1/invoice_payments?payment[type]=payment_intent&payment[payment_intent]={id}&limit=1`,
    /// remembered per PaymentIntent for [`payment_lookup_ttl`](StripeClientConfig::payment_lookup_ttl):
    /// the two events of one payment cost one call, also when they are handled at the same
    /// moment (they share it); a failure is not remembered. The answer can only change when a
    /// PaymentIntent is attached to an invoice after the fact, and within the window both
    /// events then see the same answer, so they book the payment the same way.
    pub async fn invoice_payments_of_payment_intent(
        &self,
        payment_intent: &str,
    ) -> Result<StripeList<StripeInvoicePayment>, StripeError> {
        check_id(payment_intent)?;
        self.inner
            .payment_invoices
            .get_or_try_init(payment_intent, || async move {
                self.get_json(
                    "v1/invoice_payments",
                    &[
                        ("payment[type]", "payment_intent"),
                        ("payment[payment_intent]", payment_intent),
                        ("limit", "1"),
                    ],
                )
                .await
            })
            .await
    }

    /// `GET /v1/{collection}/{id}` into any type (for objects without a dedicated method).
    pub async fn retrieve<T: DeserializeOwned>(
        &self,
        collection: &str,
        id: &str,
    ) -> Result<T, StripeError> {
        check_id(id)?;
        check_id(collection)?;
        self.get_json(&format!("v1/{collection}/{id}"), &[]).await
    }

    /// `GET {path}?{query}` with retries, parsed as `T`.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, StripeError> {
        let url = self.url(path, query)?;
        let body = self.execute(Method::GET, url, None, None).await?;
        serde_json::from_slice(&body).map_err(|e| StripeError::Decode {
            what: path.to_owned(),
            message: e.to_string(),
        })
    }

    // ---- listing ---------------------------------------------------------------------------

    /// One page of `GET /v1/balance_transactions?{filter}&limit={page_limit}
    /// [&expand[]=data.source][&starting_after={id}]`.
    pub async fn list_balance_transactions(
        &self,
        query: &BalanceTransactionQuery,
        starting_after: Option<&str>,
    ) -> Result<StripeList<StripeBalanceTransaction>, StripeError> {
        let mut filter: Vec<(&str, String)> = match &query.filter {
            BalanceTransactionFilter::Payout(p) => vec![("payout", p.to_string())],
            BalanceTransactionFilter::CreatedBetween { from, to } => vec![
                ("created[gte]", from.to_string()),
                ("created[lt]", to.to_string()),
            ],
        };
        filter.push(("limit", self.page_limit()));
        if query.expand_source {
            filter.push(("expand[]", "data.source".to_owned()));
        }
        if let Some(after) = starting_after {
            filter.push(("starting_after", after.to_owned()));
        }
        let pairs: Vec<(&str, &str)> = filter.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.get_json("v1/balance_transactions", &pairs).await
    }

    /// One page of `GET /v1/payouts?[status=…][&arrival_date[gte]=…]&limit=…
    /// [&starting_after={id}]`.
    pub async fn list_payouts(
        &self,
        query: &PayoutListQuery,
        starting_after: Option<&str>,
    ) -> Result<StripeList<StripePayout>, StripeError> {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(status) = &query.status {
            pairs.push(("status", status.clone()));
        }
        if let Some(since) = query.arrival_date_gte {
            pairs.push(("arrival_date[gte]", since.to_string()));
        }
        let limit = match query.limit {
            Some(l) => l.clamp(1, 100).to_string(),
            None => self.page_limit(),
        };
        pairs.push(("limit", limit));
        if let Some(after) = starting_after {
            pairs.push(("starting_after", after.to_owned()));
        }
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.get_json("v1/payouts", &pairs).await
    }

    /// One page of `GET /v1/{collection}?created[gte]=…&created[lte]=…&limit={page_limit}
    /// [&expand[]=…][&starting_after={id}]`, each object as the JSON Stripe sent (the same
    /// shape a webhook event's `data.object` carries, so callers can wrap it unchanged).
    pub async fn list_created(
        &self,
        query: &CreatedListQuery,
        starting_after: Option<&str>,
    ) -> Result<StripeList<serde_json::Value>, StripeError> {
        let mut pairs: Vec<(&str, String)> = vec![
            ("created[gte]", query.gte.to_string()),
            ("created[lte]", query.lte.to_string()),
            ("limit", self.page_limit()),
        ];
        for path in &query.expand {
            check_expand(path)?;
            pairs.push(("expand[]", path.clone()));
        }
        if let Some(after) = starting_after {
            check_id(after)?;
            pairs.push(("starting_after", after.to_owned()));
        }
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let path = format!("v1/{}", query.kind.collection());
        self.get_json(&path, &pairs).await
    }

    fn page_limit(&self) -> String {
        self.inner.cfg.page_limit.clamp(1, 100).to_string()
    }

    // ---- writes ----------------------------------------------------------------------------

    /// `POST /v1/{object}/{id}` with `metadata[key]=value` pairs (an empty value deletes the
    /// key) and an `Idempotency-Key`, reused across this call's retries. Returns the updated
    /// object as JSON.
    pub async fn update_metadata(
        &self,
        kind: StripeObjectKind,
        id: &str,
        metadata: &[(&str, &str)],
        idempotency_key: &IdempotencyKey,
    ) -> Result<serde_json::Value, StripeError> {
        check_id(id)?;
        check_metadata(metadata)?;
        let key = idempotency_key.as_str();
        if key.is_empty() || key.len() > 255 {
            return Err(StripeError::InvalidRequest(
                "Idempotency-Key must be 1–255 chars".into(),
            ));
        }
        let form: Vec<(String, &str)> = metadata
            .iter()
            .map(|(k, v)| (format!("metadata[{k}]"), *v))
            .collect();
        let url = self.url(&format!("v1/{}/{id}", kind.path()), &[])?;
        let body = self
            .execute(Method::POST, url, Some(&form), Some(key))
            .await?;
        serde_json::from_slice(&body).map_err(|e| StripeError::Decode {
            what: kind.path().to_owned(),
            message: e.to_string(),
        })
    }

    /// [`update_metadata`](Self::update_metadata) of one key with a deterministic
    /// `Idempotency-Key` (`ledgerbridge-{path}-{id}-{key}-{value}`): a retried write-back of
    /// the same value is one write in Stripe.
    pub async fn set_metadata(
        &self,
        kind: StripeObjectKind,
        id: &str,
        key: &str,
        value: &str,
    ) -> Result<(), StripeError> {
        let idem = IdempotencyKey::new(format!("ledgerbridge-{}-{id}-{key}-{value}", kind.path()));
        self.update_metadata(kind, id, &[(key, value)], &idem)
            .await
            .map(drop)
    }

    /// `POST /v1/customers/{id}` with form fields (`name`, `email`, `address[line1]`,
    /// `metadata[key]`, …) and an `Idempotency-Key`, reused across this call's retries: a
    /// repeated update with the same key is applied once by Stripe. Returns the customer.
    pub async fn update_customer(
        &self,
        id: &str,
        fields: &[(String, String)],
        idempotency_key: &IdempotencyKey,
    ) -> Result<serde_json::Value, StripeError> {
        check_id(id)?;
        let key = idempotency_key.as_str();
        if key.is_empty() || key.len() > 255 {
            return Err(StripeError::InvalidRequest(
                "Idempotency-Key must be 1–255 chars".into(),
            ));
        }
        if fields.is_empty() {
            return Err(StripeError::InvalidRequest(
                "customer update without fields".into(),
            ));
        }
        let form: Vec<(String, &str)> = fields
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str()))
            .collect();
        let url = self.url(&format!("v1/customers/{id}"), &[])?;
        let body = self
            .execute(Method::POST, url, Some(&form), Some(key))
            .await?;
        serde_json::from_slice(&body).map_err(|e| StripeError::Decode {
            what: "customers".to_owned(),
            message: e.to_string(),
        })
    }

    // ---- plumbing --------------------------------------------------------------------------

    fn url(&self, path: &str, query: &[(&str, &str)]) -> Result<Url, StripeError> {
        let mut url = self
            .inner
            .base
            .join(&format!(
                "{}/{}",
                self.inner.base.path().trim_end_matches('/'),
                path
            ))
            .map_err(|e| StripeError::InvalidRequest(format!("path {path:?}: {e}")))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query.iter());
        }
        Ok(url)
    }

    /// Send with rate limiting and bounded retries; returns the body of a 2xx response.
    async fn execute(
        &self,
        method: Method,
        url: Url,
        form: Option<&[(String, &str)]>,
        idempotency_key: Option<&str>,
    ) -> Result<Vec<u8>, StripeError> {
        let cfg = &self.inner.cfg;
        let mut attempt: u32 = 0;
        loop {
            self.inner.limiter.acquire().await;
            self.inner.calls.fetch_add(1, Ordering::Relaxed);
            let mut req = self.inner.http.request(method.clone(), url.clone());
            if let Some(form) = form {
                req = req.form(form);
            }
            if let Some(key) = idempotency_key {
                req = req.header("Idempotency-Key", key);
            }
            let (err, retry_after) = match req.send().await {
                Err(e) => (StripeError::Transport(e), None),
                Ok(resp) => {
                    let status = resp.status();
                    if status.is_success() {
                        match resp.bytes().await {
                            Ok(b) => return Ok(Vec::from(b)),
                            Err(e) => (StripeError::Transport(e), None),
                        }
                    } else {
                        error_from_response(status, resp).await
                    }
                }
            };
            attempt += 1;
            if !err.is_retriable() {
                return Err(err);
            }
            if attempt > cfg.max_retries {
                return Err(StripeError::Exhausted {
                    attempts: attempt,
                    last: Box::new(err),
                });
            }
            let delay = match retry_after {
                Some(d) => d.min(cfg.max_retry_after) + self.jitter(cfg.base_backoff / 4),
                None => self.backoff(attempt),
            };
            tracing::warn!(
                path = url.path(),
                attempt,
                delay_ms = delay.as_millis() as u64,
                error = %err,
                "Stripe request failed, retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// Exponential back-off with full jitter: uniform in `[0, min(max, base·2^(n-1))]`.
    fn backoff(&self, attempt: u32) -> Duration {
        let cfg = &self.inner.cfg;
        let exp = cfg
            .base_backoff
            .checked_mul(1u32 << attempt.saturating_sub(1).min(16))
            .unwrap_or(cfg.max_backoff)
            .min(cfg.max_backoff);
        // at least a small floor so a retry never spins
        self.jitter(exp).max(Duration::from_millis(1))
    }

    /// Uniform in `[0, max]` from a xorshift generator (jitter needs no cryptographic quality).
    fn jitter(&self, max: Duration) -> Duration {
        let mut x = self.inner.jitter.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.inner.jitter.store(x, Ordering::Relaxed);
        let nanos = max.as_nanos() as u64;
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(x % (nanos + 1))
    }
}

async fn error_from_response(
    status: StatusCode,
    resp: reqwest::Response,
) -> (StripeError, Option<Duration>) {
    let headers = resp.headers();
    let retry_after = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let should_retry = headers
        .get("Stripe-Should-Retry")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| match v.trim() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        });
    let request_id = headers
        .get("Request-Id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        error: StripeApiError,
    }
    let error = match resp.bytes().await {
        Ok(b) => serde_json::from_slice::<Body>(&b)
            .map(|b| b.error)
            .unwrap_or_default(),
        Err(_) => StripeApiError::default(),
    };
    let err = if status == StatusCode::TOO_MANY_REQUESTS && should_retry != Some(false) {
        StripeError::RateLimited { retry_after }
    } else {
        StripeError::Api {
            status: status.as_u16(),
            error,
            should_retry,
            request_id,
        }
    };
    (err, retry_after)
}

/// `Retry-After` in (possibly fractional) seconds. HTTP dates fall back to computed back-off.
fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let (whole, frac) = v.split_once('.')?;
    let whole: u64 = whole.parse().ok()?;
    let digits: String = frac.chars().take(3).collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let millis: u64 = format!("{digits:0<3}").parse().ok()?;
    Some(Duration::from_secs(whole) + Duration::from_millis(millis))
}

/// Stripe ids and collection names: `[A-Za-z0-9_]`, 1–255 chars (never a path fragment).
fn check_id(id: &str) -> Result<(), StripeError> {
    let ok = !id.is_empty()
        && id.len() <= 255
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(StripeError::InvalidRequest(format!(
            "not a Stripe id: {:?}",
            id.chars().take(64).collect::<String>()
        )))
    }
}

/// An `expand[]` path of a list call: `data.` followed by dotted field names.
fn check_expand(path: &str) -> Result<(), StripeError> {
    let ok = path.len() <= 200
        && path.strip_prefix("data.").is_some_and(|rest| {
            rest.split('.')
                .all(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        });
    if ok {
        Ok(())
    } else {
        Err(StripeError::InvalidRequest(format!(
            "not a list expansion: {:?}",
            path.chars().take(64).collect::<String>()
        )))
    }
}

fn check_metadata(metadata: &[(&str, &str)]) -> Result<(), StripeError> {
    if metadata.is_empty() || metadata.len() > METADATA_MAX_KEYS {
        return Err(StripeError::InvalidRequest(format!(
            "metadata needs 1–{METADATA_MAX_KEYS} keys, got {}",
            metadata.len()
        )));
    }
    for (k, v) in metadata {
        if k.is_empty() || k.chars().count() > METADATA_MAX_KEY_CHARS || k.contains(['[', ']']) {
            return Err(StripeError::InvalidRequest(format!(
                "invalid metadata key {k:?}"
            )));
        }
        if v.chars().count() > METADATA_MAX_VALUE_CHARS {
            return Err(StripeError::InvalidRequest(format!(
                "metadata value of {k:?} exceeds {METADATA_MAX_VALUE_CHARS} chars"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_parsing() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("0.25"), Some(Duration::from_millis(250)));
        assert_eq!(parse_retry_after("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn ids_and_metadata_are_checked() {
        assert!(check_id("ch_3z6gSKNq7LbKx2RzlHN9nphV").is_ok());
        assert!(check_id("../v1/charges").is_err());
        assert!(check_id("ch_1?x=1").is_err());
        assert!(check_id("").is_err());
        assert!(check_metadata(&[("erp_id", "SO-1")]).is_ok());
        assert!(check_metadata(&[]).is_err());
        assert!(check_metadata(&[("a[b]", "x")]).is_err());
        let long_key = "k".repeat(41);
        assert!(check_metadata(&[(&long_key, "x")]).is_err());
        let long_value = "v".repeat(501);
        assert!(check_metadata(&[("k", &long_value)]).is_err());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let cfg = StripeClientConfig::new(ledgerbridge_core::secrets::Secret::new(
            "sk_test_supersecret".to_owned(),
        ));
        let c = StripeClient::new(cfg).unwrap();
        let text = format!("{c:?} {:?}", c.config());
        assert!(!text.contains("supersecret"), "{text}");
    }

    #[test]
    fn backoff_is_bounded() {
        let mut cfg = StripeClientConfig::new(ledgerbridge_core::secrets::Secret::new("k".into()));
        cfg.base_backoff = Duration::from_millis(100);
        cfg.max_backoff = Duration::from_millis(800);
        let c = StripeClient::new(cfg).unwrap();
        for attempt in 1..40 {
            let d = c.backoff(attempt);
            assert!(
                d <= Duration::from_millis(800) && d >= Duration::from_millis(1),
                "{d:?}"
            );
        }
    }
}
