//! Stripe webhook signature verification.
//!
//! `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…][,v0=<hex>]`. The signed payload is
//! `"{t}.{raw body bytes}"`, HMAC-SHA256 keyed with the endpoint secret. A request passes when
//! any `v1` matches any configured secret (Stripe sends one `v1` per active secret while a
//! secret is being rolled); `v0` and unknown schemes are ignored (downgrade protection).
//! Source: docs.stripe.com/webhooks#verify-manually.

use crate::secrets::Secret;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Stripe's libraries default to 300 s between the signed timestamp and now.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;
/// Timestamps further than this in the future are rejected (clock skew allowance).
pub const DEFAULT_FUTURE_SKEW_SECS: i64 = 60;
/// Longest header we look at; a real one with three signatures is under 300 bytes.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("missing Stripe-Signature header")]
    MissingHeader,
    #[error("malformed Stripe-Signature header: {0}")]
    Malformed(&'static str),
    #[error("Stripe-Signature header has no v1 signature")]
    NoV1Signature,
    #[error("signed timestamp is {age_secs} s old, beyond the {tolerance_secs} s tolerance")]
    Stale { age_secs: i64, tolerance_secs: i64 },
    #[error("signed timestamp is {ahead_secs} s in the future")]
    FromTheFuture { ahead_secs: i64 },
    #[error("no v1 signature matches a configured endpoint secret")]
    Mismatch,
    #[error("no endpoint secret is configured")]
    NoSecrets,
}

impl WebhookError {
    /// A short stable label for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            WebhookError::MissingHeader => "missing_header",
            WebhookError::Malformed(_) => "malformed_header",
            WebhookError::NoV1Signature => "no_v1_signature",
            WebhookError::Stale { .. } => "stale_timestamp",
            WebhookError::FromTheFuture { .. } => "future_timestamp",
            WebhookError::Mismatch => "signature_mismatch",
            WebhookError::NoSecrets => "no_secrets_configured",
        }
    }
}

/// A parsed `Stripe-Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    pub timestamp: i64,
    pub v1: Vec<[u8; 32]>,
}

impl SignatureHeader {
    pub fn parse(header: &str) -> Result<Self, WebhookError> {
        if header.len() > MAX_HEADER_BYTES {
            return Err(WebhookError::Malformed("header too long"));
        }
        let mut timestamp = None;
        let mut v1 = Vec::new();
        for item in header.split(',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let (key, value) = item
                .split_once('=')
                .ok_or(WebhookError::Malformed("element without '='"))?;
            match key {
                "t" => {
                    if timestamp.is_some() {
                        return Err(WebhookError::Malformed("more than one timestamp"));
                    }
                    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(WebhookError::Malformed("timestamp is not a number"));
                    }
                    timestamp = Some(
                        value
                            .parse::<i64>()
                            .map_err(|_| WebhookError::Malformed("timestamp out of range"))?,
                    );
                }
                "v1" => {
                    // Stripe writes lower-case hex and its libraries compare the text, so an
                    // upper-case digit is a changed header even though it decodes the same.
                    if value.bytes().any(|b| b.is_ascii_uppercase()) {
                        return Err(WebhookError::Malformed("v1 is not lower-case hex"));
                    }
                    let mut sig = [0u8; 32];
                    hex::decode_to_slice(value, &mut sig)
                        .map_err(|_| WebhookError::Malformed("v1 is not 64 hex digits"))?;
                    v1.push(sig);
                }
                // v0 is a test-mode scheme and any other scheme is unknown: ignored on purpose.
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(WebhookError::Malformed("no timestamp"))?;
        if v1.is_empty() {
            return Err(WebhookError::NoV1Signature);
        }
        Ok(SignatureHeader { timestamp, v1 })
    }
}

/// Verifies webhook requests against one or more endpoint secrets.
#[derive(Clone)]
pub struct Verifier {
    keys: Vec<HmacSha256>,
    tolerance_secs: i64,
    future_skew_secs: i64,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("secrets", &self.keys.len())
            .field("tolerance_secs", &self.tolerance_secs)
            .finish()
    }
}

impl Verifier {
    pub fn new(secrets: &[Secret<String>]) -> Result<Self, WebhookError> {
        if secrets.is_empty() {
            return Err(WebhookError::NoSecrets);
        }
        let keys = secrets
            .iter()
            .map(|s| hmac_key(s.expose().as_bytes()))
            .collect();
        Ok(Verifier {
            keys,
            tolerance_secs: DEFAULT_TOLERANCE_SECS,
            future_skew_secs: DEFAULT_FUTURE_SKEW_SECS,
        })
    }

    pub fn with_tolerance(mut self, tolerance_secs: i64, future_skew_secs: i64) -> Self {
        self.tolerance_secs = tolerance_secs;
        self.future_skew_secs = future_skew_secs;
        self
    }

    /// Verify `body` (the exact bytes received) against the header, at `now_secs`.
    pub fn verify(
        &self,
        header: Option<&str>,
        body: &[u8],
        now_secs: i64,
    ) -> Result<SignatureHeader, WebhookError> {
        let header = header.ok_or(WebhookError::MissingHeader)?;
        let parsed = SignatureHeader::parse(header)?;
        let mut ts_buf = itoa_buf(parsed.timestamp);
        ts_buf.push(b'.');
        let matched = self.keys.iter().any(|key| {
            let mut mac = key.clone();
            mac.update(&ts_buf);
            mac.update(body);
            let expected = mac.finalize().into_bytes();
            // Constant-time comparison of every candidate; `any` may stop early only on
            // success, which reveals nothing an attacker does not already know.
            parsed.v1.iter().any(|sig| constant_time_eq(&expected, sig))
        });
        if !matched {
            return Err(WebhookError::Mismatch);
        }
        let age = now_secs.saturating_sub(parsed.timestamp);
        if age > self.tolerance_secs {
            return Err(WebhookError::Stale {
                age_secs: age,
                tolerance_secs: self.tolerance_secs,
            });
        }
        if -age > self.future_skew_secs {
            return Err(WebhookError::FromTheFuture { ahead_secs: -age });
        }
        Ok(parsed)
    }
}

fn itoa_buf(n: i64) -> Vec<u8> {
    let mut v = Vec::with_capacity(24);
    v.extend_from_slice(n.to_string().as_bytes());
    v
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    // black_box keeps the optimiser from short-circuiting the fold.
    std::hint::black_box(diff) == 0
}

/// Compute the `v1` signature (hex) of a payload, as Stripe does.
pub fn compute_v1(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = hmac_key(secret.as_bytes());
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[allow(clippy::expect_used)]
fn hmac_key(key: &[u8]) -> HmacSha256 {
    // HMAC is defined for keys of every length (long keys are hashed), so this never fails.
    HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length")
}

/// Build a `Stripe-Signature` header signed with each secret in turn (used by the replay command
/// and tests; Stripe itself does the same while a secret is being rolled).
pub fn sign_header(secrets: &[&str], timestamp: i64, body: &[u8]) -> String {
    let mut header = format!("t={timestamp}");
    for s in secrets {
        header.push_str(",v1=");
        header.push_str(&compute_v1(s, timestamp, body));
    }
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"id":"evt_1","object":"event","type":"charge.succeeded"}"#;

    fn verifier(secrets: &[&str]) -> Verifier {
        let s: Vec<Secret<String>> = secrets.iter().map(|s| Secret::new(s.to_string())).collect();
        Verifier::new(&s).unwrap()
    }

    #[test]
    fn boundary_table() {
        let v = verifier(&["whsec_a"]);
        let t = 1_700_000_000;
        let h = sign_header(&["whsec_a"], t, BODY);
        for (now, ok) in [
            (t + 299, true),
            (t + 300, true),
            (t + 301, false),
            (t, true),
            (t - 60, true),
            (t - 61, false),
        ] {
            assert_eq!(
                v.verify(Some(&h), BODY, now).is_ok(),
                ok,
                "now = t{:+}",
                now - t
            );
        }
        assert!(matches!(
            v.verify(Some(&h), BODY, t + 301),
            Err(WebhookError::Stale { age_secs: 301, .. })
        ));
    }

    #[test]
    fn rotation_any_order_and_v0_ignored() {
        let t = 1_700_000_000;
        let old_new = sign_header(&["whsec_old", "whsec_new"], t, BODY);
        let new_old = sign_header(&["whsec_new", "whsec_old"], t, BODY);
        for secrets in [
            &["whsec_old"][..],
            &["whsec_new"],
            &["whsec_new", "whsec_old"],
            &["whsec_other", "whsec_old"],
        ] {
            let v = verifier(secrets);
            assert!(v.verify(Some(&old_new), BODY, t).is_ok(), "{secrets:?}");
            assert!(v.verify(Some(&new_old), BODY, t).is_ok(), "{secrets:?}");
        }
        let v0_only = format!("t={t},v0={}", compute_v1("whsec_a", t, BODY));
        assert_eq!(
            verifier(&["whsec_a"]).verify(Some(&v0_only), BODY, t),
            Err(WebhookError::NoV1Signature)
        );
        let with_v0 = format!("{},v0=deadbeef", sign_header(&["whsec_a"], t, BODY));
        assert!(verifier(&["whsec_a"])
            .verify(Some(&with_v0), BODY, t)
            .is_ok());
    }

    #[test]
    fn typed_errors() {
        let v = verifier(&["whsec_a"]);
        let t = 1_700_000_000;
        assert_eq!(v.verify(None, BODY, t), Err(WebhookError::MissingHeader));
        assert!(matches!(
            v.verify(Some(""), BODY, t),
            Err(WebhookError::Malformed(_))
        ));
        assert!(matches!(
            v.verify(Some("t=abc,v1=00"), BODY, t),
            Err(WebhookError::Malformed(_))
        ));
        assert!(matches!(
            v.verify(Some("t=1,t=2,v1=00"), BODY, t),
            Err(WebhookError::Malformed(_))
        ));
        assert!(matches!(
            v.verify(Some("v1=zz"), BODY, t),
            Err(WebhookError::Malformed(_))
        ));
        assert_eq!(
            v.verify(Some(&format!("t={t}")), BODY, t),
            Err(WebhookError::NoV1Signature)
        );
        let h = sign_header(&["whsec_b"], t, BODY);
        assert_eq!(v.verify(Some(&h), BODY, t), Err(WebhookError::Mismatch));
        let h = sign_header(&["whsec_a"], t, BODY);
        let mut tampered = BODY.to_vec();
        tampered[5] ^= 1;
        assert_eq!(
            v.verify(Some(&h), &tampered, t),
            Err(WebhookError::Mismatch)
        );
        let upper = sign_header(&["whsec_a"], t, BODY)
            .to_ascii_uppercase()
            .replace("T=", "t=")
            .replace("V1=", "v1=");
        assert_eq!(
            v.verify(Some(&upper), BODY, t),
            Err(WebhookError::Malformed("v1 is not lower-case hex"))
        );
        let long = "x".repeat(MAX_HEADER_BYTES + 1);
        assert!(matches!(
            v.verify(Some(&long), BODY, t),
            Err(WebhookError::Malformed(_))
        ));
        assert!(Verifier::new(&[]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_headers_never_panic(header in ".{0,400}", body in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let v = verifier(&["whsec_a"]);
            proptest::prop_assert!(v.verify(Some(&header), &body, 1_700_000_000).is_err());
        }

        #[test]
        fn any_single_bit_flip_is_rejected(pos in 0usize..BODY.len(), bit in 0u8..8) {
            let v = verifier(&["whsec_a"]);
            let t = 1_700_000_000;
            let h = sign_header(&["whsec_a"], t, BODY);
            let mut body = BODY.to_vec();
            body[pos] ^= 1 << bit;
            proptest::prop_assert_eq!(v.verify(Some(&h), &body, t), Err(WebhookError::Mismatch));
        }
    }
}
