//! Queue limits shared by every queue adapter. The versioned messages themselves are in the
//! `ledgerbridge-messages` crate.

/// SQS's historical per-message limit (256 KiB), the default size limit of every queue. AWS
/// raised it to 1 MiB in 2025; ledgerbridge keeps the smaller figure (configurable where the
/// functions read `MAX_MESSAGE_BYTES`).
pub const SQS_MAX_MESSAGE_BYTES: usize = 262_144;
