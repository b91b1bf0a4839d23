//! Configuration documents kept in SSM Parameter Store: versioned (every `PutParameter` makes a
//! new version, and a name may be pinned as `name:version`), up to 8 KB in the Advanced tier
//! (4 KB in Standard), String or SecureString. Used for the mapping and the reconciliation
//! file, which outgrow Lambda's 4 KB environment.

use aws_sdk_ssm::error::ProvideErrorMetadata as _;

/// Why a parameter could not be read. The value never appears in an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParameterError {
    #[error("SSM parameter {name} not found")]
    NotFound { name: String },
    #[error("SSM parameter {name}: version {version} not found")]
    VersionNotFound { name: String, version: String },
    #[error("SSM parameter {name} is empty")]
    Empty { name: String },
    #[error(
        "SSM parameter {name}: {reference:?} is not a parameter name, optionally with :version"
    )]
    BadReference { name: String, reference: String },
    #[error("SSM parameter {name} could not be read: {code}")]
    Backend { name: String, code: String },
}

/// A parameter name, optionally pinned to one version (`/ledgerbridge/prod/mapping:3`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterRef {
    pub name: String,
    pub version: Option<u64>,
}

impl ParameterRef {
    /// Parse `name` or `name:version`. SSM's own selector syntax is used, so the reference is
    /// sent as it is; a selector that is not a version number (a label) is refused, because a
    /// label can be moved to another version without a deployment.
    pub fn parse(reference: &str) -> Result<Self, ParameterError> {
        let reference = reference.trim();
        let bad = || ParameterError::BadReference {
            name: reference.to_owned(),
            reference: reference.to_owned(),
        };
        let (name, version) = match reference.rsplit_once(':') {
            Some((name, v)) => (name, Some(v.parse::<u64>().map_err(|_| bad())?)),
            None => (reference, None),
        };
        // SSM parameter names: letters, digits, `_ . - /`; at most 2048 characters.
        let valid_name = !name.is_empty()
            && name.len() <= 2048
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'));
        if !valid_name || version == Some(0) {
            return Err(bad());
        }
        Ok(ParameterRef {
            name: name.to_owned(),
            version,
        })
    }

    /// The `Name` of `GetParameter`: `name` or `name:version`.
    pub fn selector(&self) -> String {
        match self.version {
            Some(v) => format!("{}:{v}", self.name),
            None => self.name.clone(),
        }
    }
}

impl std::fmt::Display for ParameterRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.selector())
    }
}

/// What was read: the value and the version it came from (logged, so an operator sees which
/// version a container runs).
#[derive(Clone, PartialEq, Eq)]
pub struct ParameterValue {
    pub value: String,
    pub version: i64,
}

impl std::fmt::Debug for ParameterValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParameterValue")
            .field("bytes", &self.value.len())
            .field("version", &self.version)
            .finish()
    }
}

/// SSM Parameter Store, read with decryption (SecureString values are decrypted by SSM with
/// the parameter's KMS key; the caller needs `kms:Decrypt` on a customer managed key).
#[derive(Clone, Debug)]
pub struct ParameterStore {
    client: aws_sdk_ssm::Client,
}

impl ParameterStore {
    pub fn new(client: aws_sdk_ssm::Client) -> Self {
        ParameterStore { client }
    }

    /// Read one parameter (`name` or `name:version`).
    pub async fn get(&self, reference: &ParameterRef) -> Result<ParameterValue, ParameterError> {
        let name = reference.name.clone();
        let out = self
            .client
            .get_parameter()
            .name(reference.selector())
            .with_decryption(true)
            .send()
            .await;
        match out {
            Ok(out) => {
                let p = out.parameter();
                let value = p.and_then(|p| p.value()).unwrap_or_default();
                if value.trim().is_empty() {
                    return Err(ParameterError::Empty { name });
                }
                Ok(ParameterValue {
                    value: value.to_owned(),
                    version: p.map(|p| p.version()).unwrap_or_default(),
                })
            }
            Err(e) => match (e.code(), reference.version) {
                (Some("ParameterVersionNotFound"), Some(v)) => {
                    Err(ParameterError::VersionNotFound {
                        name,
                        version: v.to_string(),
                    })
                }
                (Some("ParameterNotFound"), _) => Err(ParameterError::NotFound { name }),
                (code, _) => Err(ParameterError::Backend {
                    name,
                    code: code.unwrap_or("unknown").to_owned(),
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_name_may_be_pinned_to_a_version_but_not_to_a_label() {
        let r = ParameterRef::parse("/ledgerbridge/prod/mapping").unwrap();
        assert_eq!(
            (r.name.as_str(), r.version),
            ("/ledgerbridge/prod/mapping", None)
        );
        let r = ParameterRef::parse(" /ledgerbridge/prod/mapping:12 ").unwrap();
        assert_eq!(r.version, Some(12));
        assert_eq!(r.selector(), "/ledgerbridge/prod/mapping:12");
        for bad in ["", ":3", "/a:live", "/a:0", "/a b", "/a:3:4"] {
            assert!(
                matches!(
                    ParameterRef::parse(bad),
                    Err(ParameterError::BadReference { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_value_is_not_printed_in_debug() {
        let v = ParameterValue {
            value: "[payments]\nrevenue_account = \"4000\"".into(),
            version: 3,
        };
        let shown = format!("{v:?}");
        assert!(
            !shown.contains("4000") && shown.contains("version: 3"),
            "{shown}"
        );
    }
}
