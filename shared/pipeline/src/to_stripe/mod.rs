//! ERP → Stripe: ERP customer changes, pushed by the ERP side ([`sync::handle_erp_event`]) or
//! found by the scheduled poll ([`poll::ErpPoll`]), applied to the Stripe customer once
//! ([`sync::ErpSyncStage`]).

pub mod poll;
pub mod sync;
