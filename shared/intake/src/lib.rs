//! The webhook-intake handler: verify → record the event id → queue a versioned message → 2xx.
//!
//! The handler is generic over the queue, the idempotency store and the clock, so the same code
//! runs in Lambda (SQS + DynamoDB), in the local runner and in tests (embedded adapters).
//!
//! The function also serves the ERP events route (`POST /erp/customers`); [`routes`] dispatches
//! on the request path.

pub mod routes;

use ledgerbridge_core::config::{ConfigError, Env, IntakeConfig};
use ledgerbridge_core::event::EnvelopeHead;
use ledgerbridge_core::ids::{IdempotencyKey, StripeEventId};
use ledgerbridge_core::keys::IntakeKey;
use ledgerbridge_core::ports::{Claim, ClaimRequest, EventQueue, IdempotencyStore, RecordStatus};
use ledgerbridge_core::secrets::{
    parse_secret_list, CachedSecrets, EnvSecrets, Secret, SecretError,
};
use ledgerbridge_core::telemetry::{
    EventIgnored, EventOversized, EventQuarantined, IntakeFailed, WebhookAccepted,
    WebhookDuplicate, WebhookRejected,
};
use ledgerbridge_core::webhook::{Verifier, WebhookError};
use ledgerbridge_core::Clock;
use ledgerbridge_messages::stripe_event::{
    encode_event_v1, IntakeMessage, RefReason, StripeEventRefV1,
};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The event types the intake accepts unless `LEDGERBRIDGE_HANDLED_EVENT_TYPES` says otherwise:
/// those of the pipeline's event table, so the intake never queues an event the transform has no
/// handler for.
pub fn default_handled_event_types() -> Vec<String> {
    ledgerbridge_pipeline::to_erp::handled_event_types()
}

/// The intake's settings, with [`default_handled_event_types`] as the default list.
pub fn config_from_env(env: Env) -> Result<IntakeConfig, ConfigError> {
    IntakeConfig::from_env(env, default_handled_event_types())
}

/// What the intake answers. Bodies are fixed strings: nothing internal leaks to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntakeResponse {
    pub status: u16,
    pub body: &'static str,
}

impl IntakeResponse {
    const ACCEPTED: IntakeResponse = IntakeResponse {
        status: 200,
        body: r#"{"received":true}"#,
    };
    const DUPLICATE: IntakeResponse = IntakeResponse {
        status: 200,
        body: r#"{"received":true,"duplicate":true}"#,
    };
    const IGNORED: IntakeResponse = IntakeResponse {
        status: 200,
        body: r#"{"received":true,"ignored":true}"#,
    };
    const QUARANTINED: IntakeResponse = IntakeResponse {
        status: 200,
        body: r#"{"received":true,"quarantined":true}"#,
    };
    const UNAVAILABLE: IntakeResponse = IntakeResponse {
        status: 503,
        body: "",
    };
    const FAILED: IntakeResponse = IntakeResponse {
        status: 500,
        body: "",
    };

    fn bad_request(reason: &'static str) -> IntakeResponse {
        IntakeResponse {
            status: 400,
            body: reason,
        }
    }
}

/// Where the signing secrets live; the verifier is rebuilt when the secret value changes.
pub enum SecretsBackend {
    #[cfg(feature = "aws")]
    Aws(
        CachedSecrets<ledgerbridge_adapters::aws::SecretsManagerSource>,
        String,
    ),
    Env(CachedSecrets<EnvSecrets>, String),
    Static(Vec<Secret<String>>),
}

/// A verifier that follows secret rotation (through the TTL cache of the secret source).
pub struct RotatingVerifier {
    backend: SecretsBackend,
    tolerance_secs: i64,
    current: Mutex<Option<(Secret<String>, Arc<Verifier>)>>,
}

impl RotatingVerifier {
    pub fn new(backend: SecretsBackend, tolerance_secs: i64) -> Self {
        RotatingVerifier {
            backend,
            tolerance_secs,
            current: Mutex::new(None),
        }
    }

    pub fn fixed(secrets: &[&str]) -> Self {
        Self::new(
            SecretsBackend::Static(
                secrets
                    .iter()
                    .map(|s| Secret::new((*s).to_owned()))
                    .collect(),
            ),
            ledgerbridge_core::webhook::DEFAULT_TOLERANCE_SECS,
        )
    }

    async fn raw(&self) -> Result<(String, Secret<String>), SecretError> {
        match &self.backend {
            #[cfg(feature = "aws")]
            SecretsBackend::Aws(cache, id) => Ok((id.clone(), cache.get(id).await?)),
            SecretsBackend::Env(cache, name) => Ok((name.clone(), cache.get(name).await?)),
            SecretsBackend::Static(list) => {
                let joined = list
                    .iter()
                    .map(|s| s.expose().as_str())
                    .collect::<Vec<_>>()
                    .join(",");
                Ok(("static".into(), Secret::new(joined)))
            }
        }
    }

    pub async fn verifier(&self) -> Result<Arc<Verifier>, SecretError> {
        let (name, raw) = self.raw().await?;
        if let Ok(guard) = self.current.lock() {
            if let Some((seen, v)) = guard.as_ref() {
                if seen == &raw {
                    return Ok(v.clone());
                }
            }
        }
        let secrets = parse_secret_list(&name, &raw)?;
        let verifier = Verifier::new(&secrets)
            .map_err(|_| SecretError::Empty { name: name.clone() })?
            .with_tolerance(
                self.tolerance_secs,
                ledgerbridge_core::webhook::DEFAULT_FUTURE_SKEW_SECS,
            );
        let verifier = Arc::new(verifier);
        if let Ok(mut guard) = self.current.lock() {
            *guard = Some((raw, verifier.clone()));
        }
        Ok(verifier)
    }
}

/// Everything the handler needs, built once per container.
pub struct Deps<Q, S, C> {
    pub queue: Q,
    pub store: S,
    pub verifier: RotatingVerifier,
    pub clock: C,
    pub handled: HashSet<String>,
    pub dedupe_for_secs: i64,
    /// How long a claim may stay in progress before another delivery may take it over.
    pub lease_ms: i64,
    /// How long a concurrent duplicate waits for the first copy before answering 503.
    pub wait_for_peer: Duration,
}

impl<Q: EventQueue, S: IdempotencyStore, C: Clock> Deps<Q, S, C> {
    pub fn new(
        queue: Q,
        store: S,
        verifier: RotatingVerifier,
        clock: C,
        cfg: &IntakeConfig,
    ) -> Self {
        Deps {
            queue,
            store,
            verifier,
            clock,
            handled: cfg.handled_event_types.iter().cloned().collect(),
            dedupe_for_secs: i64::try_from(cfg.dedupe_for.as_secs()).unwrap_or(35 * 86_400),
            lease_ms: 15_000,
            wait_for_peer: Duration::from_secs(3),
        }
    }
}

/// The scheme prefix of the payload fingerprint the dedupe record keeps.
pub const PAYLOAD_HASH_SCHEME: &str = "xxh3-128:";

/// The body's fingerprint in the event's dedupe record: a 128-bit XXH3 of the exact bytes,
/// prefixed with its scheme. The HMAC has already authenticated the body (only the holder of
/// the signing secret can produce a body that gets here), so the fingerprint only has to tell
/// two genuine payloads apart (RELIABILITY D5), not resist a forger: a non-cryptographic
/// 128-bit hash does that at a fraction of SHA-256's cost, so the hot path hashes the body
/// once (the HMAC) plus this.
pub fn payload_hash(body: &[u8]) -> String {
    format!(
        "{PAYLOAD_HASH_SCHEME}{:032x}",
        xxhash_rust::xxh3::xxh3_128(body)
    )
}

/// The SHA-256 of the body, hex: the quarantine record's key and fingerprint (unchanged, so
/// keys stored by earlier versions still match), and the dedupe fingerprint of records
/// written before [`PAYLOAD_HASH_SCHEME`] (64 hex digits, no prefix).
fn sha256_hex(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// Whether a stored dedupe fingerprint is that of this body: compared directly when it has
/// this version's scheme; a record written by an earlier version (a bare SHA-256) is compared
/// with the body's SHA-256, computed only then (a duplicate within the dedupe window of an
/// upgrade).
fn same_payload(stored: &str, body: &[u8], hash: &str) -> bool {
    if stored.starts_with(PAYLOAD_HASH_SCHEME) {
        stored == hash
    } else {
        stored == sha256_hex(body)
    }
}

/// Handle one webhook delivery: the exact body bytes and the `Stripe-Signature` header.
pub async fn handle_webhook<Q, S, C>(
    deps: &Deps<Q, S, C>,
    signature: Option<&str>,
    body: &[u8],
) -> IntakeResponse
where
    Q: EventQueue,
    S: IdempotencyStore,
    C: Clock,
{
    let verifier = match deps.verifier.verifier().await {
        Ok(v) => v,
        Err(e) => {
            IntakeFailed {
                event_id: "-",
                stage: "load_secrets",
                error: &e,
            }
            .emit();
            return IntakeResponse::FAILED;
        }
    };
    if let Err(e) = verifier.verify(signature, body, deps.clock.now_secs()) {
        WebhookRejected { reason: e.reason() }.emit();
        return IntakeResponse::bad_request(reject_body(&e));
    }
    // Signed by Stripe but not an event we can read: a 4xx would make Stripe retry for three
    // days and then drop it. Keep it for a person instead (RELIABILITY I7).
    let hash = payload_hash(body);
    let head = match EnvelopeHead::parse(body) {
        Ok(h) => h,
        Err(_) => return quarantine(deps, "unparseable_event", None, body).await,
    };
    let Some(event_id) = StripeEventId::parse(&head.id) else {
        return quarantine(deps, "invalid_event_id", None, body).await;
    };
    let key = IdempotencyKey::from(IntakeKey::event(&event_id));
    let handled = deps.handled.contains(head.event_type.as_ref());

    let deadline = tokio::time::Instant::now() + deps.wait_for_peer;
    loop {
        let now_ms = deps.clock.now_millis();
        let req = ClaimRequest {
            key: key.clone(),
            payload_hash: hash.clone(),
            now_ms,
            lease_ms: deps.lease_ms,
            expiration: now_ms.div_euclid(1000).saturating_add(deps.dedupe_for_secs),
        };
        match deps.store.claim(&req).await {
            Ok(Claim::Acquired) => {
                return if handled {
                    enqueue(deps, &head, &event_id, &key, body, now_ms).await
                } else {
                    record_ignored(deps, &event_id, &head, &key).await
                };
            }
            // The same event id with another payload (tampering, or a changed object): the
            // stored record, whether returned by the conditional write or read after it, is
            // compared before anything else, and the differing copy is kept (RELIABILITY D5).
            Ok(Claim::Existing(rec)) if !same_payload(&rec.payload_hash, body, &hash) => {
                WebhookDuplicate {
                    event_id: event_id.as_str(),
                    payload_differs: true,
                }
                .emit();
                return quarantine(deps, "payload_mismatch", Some(event_id.as_str()), body).await;
            }
            Ok(Claim::Existing(rec)) if rec.status != RecordStatus::InProgress => {
                WebhookDuplicate {
                    event_id: event_id.as_str(),
                    payload_differs: false,
                }
                .emit();
                return IntakeResponse::DUPLICATE;
            }
            Ok(Claim::Existing(_)) => {
                // Another copy is being queued right now. Wait for it: answering 2xx before the
                // event is durably queued could lose it if that copy then fails.
                if tokio::time::Instant::now() >= deadline {
                    return IntakeResponse::UNAVAILABLE;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            Err(e) => {
                IntakeFailed {
                    event_id: event_id.as_str(),
                    stage: "claim",
                    error: &e,
                }
                .emit();
                return if e.is_retriable() {
                    IntakeResponse::UNAVAILABLE
                } else {
                    IntakeResponse::FAILED
                };
            }
        }
    }
}

/// Largest body kept in quarantine: the record holds it base64-encoded, and a DynamoDB item
/// is at most 400 KB. A larger one is answered 500 with the alarm, so Stripe keeps retrying
/// it while a person looks.
pub const QUARANTINE_MAX_BODY_BYTES: usize = 256 * 1024;

/// How long a quarantine record counts (it is the only copy ledgerbridge keeps).
const QUARANTINE_DAYS: i64 = 400;

/// What a quarantine record's `result` holds (JSON).
#[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct QuarantinedDelivery {
    /// `unparseable_event`, `invalid_event_id` or `payload_mismatch`.
    pub reason: String,
    pub event_id: Option<String>,
    pub received_at_ms: i64,
    /// The body exactly as received, base64 (standard alphabet).
    pub body_base64: String,
}

/// Keep a validly signed delivery that cannot be queued in the idempotency store under
/// [`IntakeKey::quarantine`] (status `PARKED`, the body in the result), log the alarm, and
/// answer 2xx so Stripe stops retrying. Nothing is queued. When the store fails the answer is
/// 5xx and Stripe retries.
async fn quarantine<Q, S, C>(
    deps: &Deps<Q, S, C>,
    reason: &'static str,
    event_id: Option<&str>,
    body: &[u8],
) -> IntakeResponse
where
    Q: EventQueue,
    S: IdempotencyStore,
    C: Clock,
{
    use base64::Engine as _;
    // A rare path: the SHA-256 keeps the quarantine keys of earlier versions.
    let hash = sha256_hex(body);
    let hash = hash.as_str();
    let key = IdempotencyKey::from(IntakeKey::quarantine(hash));
    let event = EventQuarantined {
        event_id,
        reason,
        key: key.as_str(),
        body_bytes: body.len(),
    };
    if body.len() > QUARANTINE_MAX_BODY_BYTES {
        event.emit();
        IntakeFailed {
            event_id: event_id.unwrap_or("-"),
            stage: "quarantine",
            error: &format_args!(
                "a body of {} bytes is larger than the quarantine keeps ({QUARANTINE_MAX_BODY_BYTES})",
                body.len()
            ),
        }
        .emit();
        return IntakeResponse::FAILED;
    }
    let now_ms = deps.clock.now_millis();
    let req = ClaimRequest {
        key: key.clone(),
        payload_hash: hash.to_owned(),
        now_ms,
        lease_ms: deps.lease_ms,
        expiration: now_ms
            .div_euclid(1000)
            .saturating_add(QUARANTINE_DAYS * 86_400),
    };
    match deps.store.claim(&req).await {
        Ok(Claim::Acquired) => {}
        // The same bytes are already kept (a redelivery): nothing more to store.
        Ok(Claim::Existing(rec)) if rec.status != RecordStatus::InProgress => {
            return IntakeResponse::QUARANTINED;
        }
        // Another copy is being stored right now; let Stripe retry rather than answer 2xx
        // before it is kept.
        Ok(Claim::Existing(_)) => return IntakeResponse::UNAVAILABLE,
        Err(e) => {
            IntakeFailed {
                event_id: event_id.unwrap_or("-"),
                stage: "quarantine",
                error: &e,
            }
            .emit();
            return IntakeResponse::UNAVAILABLE;
        }
    }
    let kept = QuarantinedDelivery {
        reason: reason.to_owned(),
        event_id: event_id.map(str::to_owned),
        received_at_ms: now_ms,
        body_base64: base64::engine::general_purpose::STANDARD.encode(body),
    };
    let stored = match serde_json::to_string(&kept) {
        Ok(json) => deps
            .store
            .complete(&key, RecordStatus::Parked, Some(json))
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match stored {
        Ok(()) => {
            event.emit();
            IntakeResponse::QUARANTINED
        }
        Err(e) => {
            IntakeFailed {
                event_id: event_id.unwrap_or("-"),
                stage: "quarantine",
                error: &e,
            }
            .emit();
            release(deps, &key).await;
            IntakeResponse::UNAVAILABLE
        }
    }
}

fn reject_body(e: &WebhookError) -> &'static str {
    match e {
        WebhookError::Stale { .. } | WebhookError::FromTheFuture { .. } => {
            "timestamp outside tolerance"
        }
        WebhookError::Mismatch => "signature mismatch",
        WebhookError::MissingHeader => "missing Stripe-Signature",
        WebhookError::NoV1Signature => "no v1 signature",
        WebhookError::Malformed(_) => "malformed Stripe-Signature",
        WebhookError::NoSecrets => "signature mismatch",
    }
}

async fn record_ignored<Q, S, C>(
    deps: &Deps<Q, S, C>,
    event_id: &StripeEventId,
    head: &EnvelopeHead<'_>,
    key: &IdempotencyKey,
) -> IntakeResponse
where
    Q: EventQueue,
    S: IdempotencyStore,
    C: Clock,
{
    match deps.store.complete(key, RecordStatus::Ignored, None).await {
        Ok(()) => {
            EventIgnored {
                event_id: event_id.as_str(),
                event_type: &head.event_type,
            }
            .emit();
            IntakeResponse::IGNORED
        }
        Err(e) => {
            IntakeFailed {
                event_id: event_id.as_str(),
                stage: "record_ignored",
                error: &e,
            }
            .emit();
            release(deps, key).await;
            IntakeResponse::UNAVAILABLE
        }
    }
}

async fn enqueue<Q, S, C>(
    deps: &Deps<Q, S, C>,
    head: &EnvelopeHead<'_>,
    event_id: &StripeEventId,
    key: &IdempotencyKey,
    body: &[u8],
    now_ms: i64,
) -> IntakeResponse
where
    Q: EventQueue,
    S: IdempotencyStore,
    C: Clock,
{
    let limit = deps.queue.max_message_bytes();
    let full = if head.is_thin() {
        None
    } else {
        encode_event_v1(head, body, now_ms).ok()
    };
    let (message, by_reference) = match full {
        Some(m) if m.len() <= limit => (m, false),
        other => {
            let reason = if other.is_some() {
                EventOversized {
                    event_id: event_id.as_str(),
                    body_bytes: body.len(),
                    limit,
                }
                .emit();
                RefReason::Oversized
            } else {
                RefReason::ThinEvent
            };
            let reference = IntakeMessage::StripeEventRefV1(StripeEventRefV1 {
                event_id: event_id.clone(),
                event_type: head.event_type.to_string(),
                created: head.created,
                object_id: head.object_id().map(str::to_owned),
                received_at_ms: now_ms,
                reason,
                body_bytes: body.len(),
            });
            match serde_json::to_string(&reference) {
                Ok(m) => (m, true),
                Err(e) => {
                    IntakeFailed {
                        event_id: event_id.as_str(),
                        stage: "encode",
                        error: &e,
                    }
                    .emit();
                    release(deps, key).await;
                    return IntakeResponse::FAILED;
                }
            }
        }
    };
    // Group by the Stripe object so a FIFO queue keeps one object's events in order.
    let group = head.object_id().unwrap_or(event_id.as_str()).to_owned();
    match deps.queue.send(message, Some(&group)).await {
        Ok(message_id) => {
            if let Err(e) = deps
                .store
                .complete(key, RecordStatus::Completed, Some(message_id.to_string()))
                .await
            {
                // The event is durably queued; a later duplicate may queue it again after the
                // lease, which downstream deduplication absorbs. Answer 2xx.
                IntakeFailed {
                    event_id: event_id.as_str(),
                    stage: "complete",
                    error: &e,
                }
                .emit();
            }
            WebhookAccepted {
                event_id: event_id.as_str(),
                event_type: &head.event_type,
                message_id: message_id.as_str(),
                by_reference,
            }
            .emit();
            IntakeResponse::ACCEPTED
        }
        Err(e) => {
            IntakeFailed {
                event_id: event_id.as_str(),
                stage: "enqueue",
                error: &e,
            }
            .emit();
            release(deps, key).await;
            if e.is_retriable() {
                IntakeResponse::UNAVAILABLE
            } else {
                IntakeResponse::FAILED
            }
        }
    }
}

async fn release<Q, S: IdempotencyStore, C>(deps: &Deps<Q, S, C>, key: &IdempotencyKey) {
    if let Err(e) = deps.store.release(key).await {
        // The lease lapses on its own; a retry can take the claim over after it.
        IntakeFailed {
            event_id: key.as_str(),
            stage: "release",
            error: &e,
        }
        .emit();
    }
}

/// API Gateway HTTP API (payload v2) adapter. `lambda_http` has already decoded a base64 body,
/// so the bytes verified are exactly the bytes Stripe sent.
pub async fn lambda_adapter<Q, S, C>(
    deps: &Deps<Q, S, C>,
    req: lambda_http::Request,
) -> Result<lambda_http::Response<lambda_http::Body>, std::convert::Infallible>
where
    Q: EventQueue,
    S: IdempotencyStore,
    C: Clock,
{
    let signature = req
        .headers()
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let out = handle_webhook(deps, signature, req.body().as_ref()).await;
    Ok(to_http(out))
}

pub fn to_http(out: IntakeResponse) -> lambda_http::Response<lambda_http::Body> {
    let mut resp = lambda_http::Response::new(lambda_http::Body::from(out.body));
    *resp.status_mut() = lambda_http::http::StatusCode::from_u16(out.status)
        .unwrap_or(lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR);
    if out.status == 200 {
        resp.headers_mut().insert(
            lambda_http::http::header::CONTENT_TYPE,
            lambda_http::http::HeaderValue::from_static("application/json"),
        );
    }
    resp
}

#[cfg(test)]
mod handled_types_tests {
    use super::*;
    use ledgerbridge_pipeline::to_erp::{handler_of, EVENT_TABLE};

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_map(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    const REQUIRED: [(&str, &str); 3] = [
        ("LEDGERBRIDGE_EVENTS_QUEUE_URL", "memory"),
        ("LEDGERBRIDGE_STATE_TABLE", "memory"),
        ("LEDGERBRIDGE_WEBHOOK_SECRETS", "whsec_x"),
    ];

    #[test]
    fn the_default_list_is_what_the_dispatcher_handles() {
        let cfg = config_from_env(env(&REQUIRED)).unwrap();
        // Every accepted type dispatches to a handler…
        for t in &cfg.handled_event_types {
            assert!(
                handler_of(t).is_some(),
                "{t} is accepted but has no handler"
            );
        }
        // …and nothing the dispatcher handles is missing from the list.
        for (t, _) in EVENT_TABLE {
            assert!(
                cfg.handled_event_types.iter().any(|h| h == t),
                "{t} has a handler but the intake does not accept it"
            );
        }
        assert_eq!(cfg.handled_event_types.len(), EVENT_TABLE.len());
        assert!(!cfg
            .handled_event_types
            .iter()
            .any(|t| t == "customer.deleted"));
        assert!(cfg.handled_event_types.iter().any(|t| t == "refund.failed"));
    }

    #[test]
    fn the_setting_overrides_the_default() {
        let mut pairs = REQUIRED.to_vec();
        pairs.push(("LEDGERBRIDGE_HANDLED_EVENT_TYPES", "charge.succeeded"));
        let cfg = config_from_env(env(&pairs)).unwrap();
        assert_eq!(cfg.handled_event_types, vec!["charge.succeeded"]);
    }
}

#[cfg(test)]
mod payload_hash_tests {
    use super::*;

    #[test]
    fn the_fingerprint_tells_payloads_apart_and_reads_records_of_earlier_versions() {
        let body = br#"{"id":"evt_1","type":"charge.succeeded","data":{"object":{"amount":100}}}"#;
        let other = br#"{"id":"evt_1","type":"charge.succeeded","data":{"object":{"amount":101}}}"#;
        let hash = payload_hash(body);
        // the scheme and 32 hex digits (128 bits), stable for the same bytes
        assert!(hash.starts_with(PAYLOAD_HASH_SCHEME), "{hash}");
        assert_eq!(hash.len(), PAYLOAD_HASH_SCHEME.len() + 32);
        assert_eq!(hash, payload_hash(body));
        // a record of this version: the same bytes match, other bytes do not
        assert!(same_payload(&hash, body, &hash));
        assert!(!same_payload(&payload_hash(other), body, &hash));
        // a record written before (a bare SHA-256 of the body) still matches its own body
        // and not another one
        let legacy = sha256_hex(body);
        assert_eq!(legacy.len(), 64);
        assert!(same_payload(&legacy, body, &hash));
        assert!(!same_payload(&sha256_hex(other), body, &hash));
    }
}
