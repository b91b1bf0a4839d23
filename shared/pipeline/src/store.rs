//! The state the stages keep.

use ledgerbridge_core::ports::{IdempotencyStore, ReverseLinkStore, VersionStore, XrefStore};

/// The state the stages keep: idempotency (intent) records, cross-references, versions and
/// the ERP customer → Stripe customer links.
pub trait StateStore: IdempotencyStore + XrefStore + VersionStore + ReverseLinkStore {}
impl<T: IdempotencyStore + XrefStore + VersionStore + ReverseLinkStore> StateStore for T {}
