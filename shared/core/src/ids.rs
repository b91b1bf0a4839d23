//! Typed identifiers, so a Stripe event id can never be passed where an ERP id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                $name(value.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_owned())
            }
        }
    };
}

id_type!(
    /// `evt_…`
    StripeEventId
);
id_type!(
    /// Any Stripe object id (`ch_…`, `pi_…`, `re_…`, `cus_…`, `in_…`, `po_…`, `txn_…`).
    StripeObjectId
);
id_type!(
    /// `po_…`
    PayoutId
);
id_type!(
    /// The ERP's own key of a document it created (order number, invoice number, journal key).
    ErpDocumentId
);
id_type!(
    /// A key under which a piece of work is claimed exactly once.
    IdempotencyKey
);
id_type!(
    /// The queue's id of an enqueued message.
    MessageId
);

impl StripeEventId {
    /// Stripe event ids look like `evt_…` and contain only `[A-Za-z0-9_]`; anything else is
    /// rejected before it becomes a storage key.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = !s.is_empty()
            && s.len() <= 255
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        ok.then(|| StripeEventId(s.to_owned()))
    }
}
