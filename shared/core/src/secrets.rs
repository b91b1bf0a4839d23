//! Secrets: a wrapper that never prints its value, a source port, and a TTL cache so a
//! rotated secret is picked up without a redeploy.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A value that must never reach a log. `Debug` and `Display` print `[redacted]`; the value is
/// read only through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret {name} not found")]
    NotFound { name: String },
    #[error("secret {name} could not be read: {message}")]
    Backend { name: String, message: String },
    #[error("secret {name} is empty or has no usable value")]
    Empty { name: String },
}

/// Where secret values come from (Secrets Manager in AWS, the environment locally).
pub trait SecretSource: Send + Sync {
    fn fetch(
        &self,
        name: &str,
    ) -> impl std::future::Future<Output = Result<Secret<String>, SecretError>> + Send;
}

/// Local mode: secret `name` is read from the environment variable of the same name.
#[derive(Debug, Clone, Default)]
pub struct EnvSecrets {
    vars: HashMap<String, Secret<String>>,
}

impl EnvSecrets {
    /// Snapshot the process environment (done once at start-up).
    pub fn from_process_env() -> Self {
        let vars = std::env::vars().map(|(k, v)| (k, Secret::new(v))).collect();
        EnvSecrets { vars }
    }
    pub fn from_pairs<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        EnvSecrets {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k, Secret::new(v)))
                .collect(),
        }
    }
}

impl SecretSource for EnvSecrets {
    async fn fetch(&self, name: &str) -> Result<Secret<String>, SecretError> {
        self.vars
            .get(name)
            .cloned()
            .ok_or_else(|| SecretError::NotFound {
                name: name.to_owned(),
            })
    }
}

/// Caches values from another source for `ttl`, so a Lambda container reads Secrets Manager
/// once per TTL rather than per request, and still sees a rotated value after at most `ttl`.
pub struct CachedSecrets<S> {
    inner: S,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, Secret<String>)>>,
}

impl<S: SecretSource> CachedSecrets<S> {
    pub fn new(inner: S, ttl: Duration) -> Self {
        CachedSecrets {
            inner,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub async fn get(&self, name: &str) -> Result<Secret<String>, SecretError> {
        if let Some(hit) = self.cached(name) {
            return Ok(hit);
        }
        let value = self.inner.fetch(name).await?;
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(name.to_owned(), (Instant::now(), value.clone()));
        }
        Ok(value)
    }

    /// Forget a cached value (after an authentication failure, say).
    pub fn invalidate(&self, name: &str) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(name);
        }
    }

    fn cached(&self, name: &str) -> Option<Secret<String>> {
        let cache = self.cache.lock().ok()?;
        let (at, value) = cache.get(name)?;
        (at.elapsed() < self.ttl).then(|| value.clone())
    }
}

/// Parse a list of webhook signing secrets from one secret value. Accepted shapes: a JSON array
/// of strings, a JSON object with a `signing_secrets` array (or `signing_secret` string), or
/// plain text separated by commas or newlines.
pub fn parse_secret_list(
    name: &str,
    raw: &Secret<String>,
) -> Result<Vec<Secret<String>>, SecretError> {
    let text = raw.expose().trim();
    let list: Vec<String> = if text.starts_with('[') {
        serde_json::from_str::<Vec<String>>(text).map_err(|_| SecretError::Empty {
            name: name.to_owned(),
        })?
    } else if text.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|_| SecretError::Empty {
            name: name.to_owned(),
        })?;
        match (v.get("signing_secrets"), v.get("signing_secret")) {
            (Some(serde_json::Value::Array(a)), _) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
            (_, Some(serde_json::Value::String(s))) => vec![s.clone()],
            _ => Vec::new(),
        }
    } else {
        text.split([',', '\n'])
            .map(|s| s.trim().to_owned())
            .collect()
    };
    let list: Vec<Secret<String>> = list
        .into_iter()
        .filter(|s| !s.trim().is_empty())
        .map(Secret::new)
        .collect();
    if list.is_empty() {
        return Err(SecretError::Empty {
            name: name.to_owned(),
        });
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("whsec_topsecret".to_string());
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Holder {
            key: Secret<String>,
        }
        assert!(!format!("{:?}", Holder { key: s }).contains("topsecret"));
    }

    #[test]
    fn secret_lists() {
        let one = |s: &str| parse_secret_list("x", &Secret::new(s.to_owned())).map(|v| v.len());
        assert_eq!(one("whsec_a").unwrap(), 1);
        assert_eq!(one("whsec_a, whsec_b").unwrap(), 2);
        assert_eq!(one(r#"["whsec_a","whsec_b"]"#).unwrap(), 2);
        assert_eq!(one(r#"{"signing_secrets":["whsec_a"]}"#).unwrap(), 1);
        assert_eq!(one(r#"{"signing_secret":"whsec_a"}"#).unwrap(), 1);
        assert!(one(" , ").is_err());
        assert!(one("{}").is_err());
    }

    #[tokio::test]
    async fn cache_respects_ttl() {
        struct Counting(std::sync::atomic::AtomicUsize);
        impl SecretSource for Counting {
            async fn fetch(&self, _: &str) -> Result<Secret<String>, SecretError> {
                let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(Secret::new(format!("v{n}")))
            }
        }
        let c = CachedSecrets::new(Counting(Default::default()), Duration::from_millis(50));
        assert_eq!(c.get("a").await.unwrap().expose(), "v0");
        assert_eq!(c.get("a").await.unwrap().expose(), "v0");
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(
            c.get("a").await.unwrap().expose(),
            "v1",
            "rotation picked up after TTL"
        );
        c.invalidate("a");
        assert_eq!(c.get("a").await.unwrap().expose(), "v2");
    }
}
