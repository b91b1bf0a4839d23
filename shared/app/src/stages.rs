//! The stages, built once for every runtime: the Lambda builders pass AWS adapters, the local
//! runner embedded ones, the on-premises agent a mix. What a stage needs besides its adapters
//! (leases, retention, retry policy) comes from [`DEFAULTS`] here, so a default changes in one
//! place.

use crate::DEFAULTS;
use ledgerbridge_erp::RetryPolicy;
use ledgerbridge_pipeline::mapping::Mapping;
use ledgerbridge_pipeline::posting::Poster;
use ledgerbridge_pipeline::stages::{PostStage, TransformStage};
use ledgerbridge_pipeline::to_stripe::sync::ErpSyncStage;

/// How long a claim may stay in progress before another worker takes it over. The Lambda
/// functions and the agent run with the longer lease (a function may be frozen mid-call); the
/// local runner, one process, with the shorter one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    Deployed,
    Local,
}

/// Stripe events → ERP commands (and payout events → the reconciliation queue, when given).
pub fn transform<Q, R, P, A>(
    mapping: Mapping,
    stripe: A,
    commands: Q,
    reconciliation: Option<R>,
    parked: P,
) -> TransformStage<Q, R, P, A> {
    TransformStage {
        mapping,
        stripe,
        commands,
        reconciliation,
        parked,
    }
}

/// ERP commands → ERP documents, effectively once; `stripe: None` turns write-back and Stripe
/// look-ups off.
pub fn post<C, S, A, K, P>(
    connector: C,
    store: S,
    stripe: Option<A>,
    mapping: Mapping,
    clock: K,
    parked: P,
    lease: Lease,
) -> PostStage<C, S, A, K, P> {
    PostStage {
        poster: Poster {
            connector,
            store,
            stripe,
            mapping,
            policy: RetryPolicy::default(),
            clock,
            lease_ms: match lease {
                Lease::Deployed => DEFAULTS.post_lease_ms,
                Lease::Local => DEFAULTS.local_post_lease_ms,
            },
            intent_days: DEFAULTS.post_intent_days,
        },
        parked,
    }
}

/// ERP customer changes → Stripe customers, once per change.
pub fn erp_sync<S, A, K, P>(
    store: S,
    stripe: A,
    clock: K,
    parked: P,
    lease_ms: i64,
    intent_days: i64,
) -> ErpSyncStage<S, A, K, P> {
    ErpSyncStage {
        store,
        stripe,
        clock,
        parked,
        lease_ms,
        intent_days,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ledgerbridge_pipeline::mapping::EXAMPLE;

    #[test]
    fn the_post_stage_takes_its_lease_and_retention_from_the_defaults() {
        let mapping = Mapping::from_toml(EXAMPLE).unwrap();
        let deployed = post((), (), None::<()>, mapping.clone(), (), (), Lease::Deployed);
        let local = post((), (), None::<()>, mapping, (), (), Lease::Local);
        assert_eq!(deployed.poster.lease_ms, DEFAULTS.post_lease_ms);
        assert_eq!(local.poster.lease_ms, DEFAULTS.local_post_lease_ms);
        assert_eq!(deployed.poster.intent_days, DEFAULTS.post_intent_days);
        assert_eq!(
            format!("{:?}", deployed.poster.policy),
            format!("{:?}", RetryPolicy::default())
        );
    }
}
