//! One TLS client configuration per process. Building an HTTP client normally loads the
//! system's root certificates again (a directory scan and parse on every cold start, once per
//! client: Stripe, the ERP, the OAuth token endpoint); every client here shares this one,
//! built on first use.

use std::sync::{Arc, OnceLock};

/// The configuration type reqwest accepts as a preconfigured TLS backend.
pub use rustls::ClientConfig;

#[derive(Debug, Clone, thiserror::Error)]
#[error("TLS client configuration: {0}")]
pub struct TlsError(String);

/// The shared configuration (a cheap clone: the verifier and its root store are shared).
/// Pass it to `reqwest::ClientBuilder::tls_backend_preconfigured`.
pub fn client_config() -> Result<rustls::ClientConfig, TlsError> {
    static CONFIG: OnceLock<Result<rustls::ClientConfig, TlsError>> = OnceLock::new();
    CONFIG.get_or_init(build).clone()
}

/// What reqwest builds by default (platform verifier, aws-lc-rs, TLS 1.2 and 1.3, HTTP/1.1),
/// once.
fn build() -> Result<rustls::ClientConfig, TlsError> {
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
        .map_err(|e| TlsError(format!("system root certificates: {e}")))?;
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_is_built_once_and_shared() {
        let a = client_config().unwrap();
        let b = client_config().unwrap();
        // Clones of one build: a second build would hold a provider of its own.
        assert!(Arc::ptr_eq(a.crypto_provider(), b.crypto_provider()));
        assert_eq!(a.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }
}
