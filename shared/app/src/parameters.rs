//! Configuration documents from SSM Parameter Store, read once at start.
//!
//! Lambda's environment holds 4 KB in all; a mapping and a reconciliation file outgrow it. A
//! function may instead name an SSM parameter (`LEDGERBRIDGE_MAPPING_PARAMETER`,
//! `LEDGERBRIDGE_RECONCILIATION_PARAMETER`): a name, optionally pinned to a version
//! (`/ledgerbridge/prod/mapping:7`), String or SecureString, up to 8 KB in the Advanced tier.
//! [`load`] reads each named parameter before the function's `Config::from_env` and puts its
//! value where the inline setting would be, so the same validation runs on it and every
//! problem (a missing parameter included, by name) is listed together. The value is read once
//! per container and kept; a new version takes effect with the next deployment (pinned) or
//! the next cold start (unpinned).

use ledgerbridge_adapters::aws::{ParameterRef, ParameterStore};
use ledgerbridge_core::config::{Env, PREFIX};

/// `(parameter setting, the inline setting it replaces)`.
pub const FROM_PARAMETERS: [(&str, &str); 2] = [
    ("MAPPING_PARAMETER", "MAPPING"),
    ("RECONCILIATION_PARAMETER", "RECONCILIATION_CONFIG"),
];

/// Read the parameters `env` names (SSM on the function's SDK configuration, its endpoint
/// overridden by `AWS_ENDPOINT_URL`). Nothing is read, and no client built, when none is named.
pub async fn load(env: Env) -> Env {
    if FROM_PARAMETERS
        .iter()
        .all(|(param, _)| env.optional(param).is_none())
    {
        return env;
    }
    let sdk = crate::sdk_config(env.plain("AWS_ENDPOINT_URL").as_deref()).await;
    load_from(env, &ParameterStore::new(aws_sdk_ssm::Client::new(&sdk))).await
}

/// [`load`] with a given store.
pub async fn load_from(mut env: Env, store: &ParameterStore) -> Env {
    for (param, inline) in FROM_PARAMETERS {
        let Some(reference) = env.optional(param) else {
            continue;
        };
        if env.optional(inline).is_some() {
            env.problem(format!(
                "{PREFIX}{inline} and {PREFIX}{param} are both set: set one (the inline value or the SSM parameter)"
            ));
            continue;
        }
        let read = match ParameterRef::parse(&reference) {
            Ok(r) => store.get(&r).await.map(|v| (r, v)),
            Err(e) => Err(e),
        };
        match read {
            Ok((r, v)) => {
                tracing::info!(
                    setting = %format!("{PREFIX}{param}"),
                    parameter = %r.name,
                    version = v.version,
                    bytes = v.value.len(),
                    "configuration read from SSM Parameter Store"
                );
                env.set(inline, v.value);
            }
            Err(e) => {
                env.problem(format!("{PREFIX}{param}: {e}"));
                env.mark_unavailable(inline);
            }
        }
    }
    env
}
