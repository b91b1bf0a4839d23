//! The state the stages keep.

use ledgerbridge_core::ports::{IdempotencyStore, VersionStore, XrefStore};

/// The state the poster keeps: idempotency (intent) records, cross-references, versions.
pub trait StateStore: IdempotencyStore + XrefStore + VersionStore {}
impl<T: IdempotencyStore + XrefStore + VersionStore> StateStore for T {}
