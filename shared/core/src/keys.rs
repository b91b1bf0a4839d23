//! Storage keys: one constructor per kind of record, so a key is built in one place and the
//! type says which store it belongs to (svix's `kv_def!` idea). The text of each key is the
//! layout already stored, so existing records stay readable.
//!
//! | kind | text | store |
//! | --- | --- | --- |
//! | [`IntentKey`] | `post#{erp}#{reference}`, `…#{event_id}` (customer upserts), `…#resolve` | idempotency |
//! | [`IntakeKey`] | `intake#{event_id}`, `intake#quarantine#{sha256 of the body}` | idempotency |
//! | [`ChangeKey`] | `erp_sync#{erp}#{customer_code}#{changed_at}#{digest}` | idempotency |
//! | [`LockKey`] | `fields#{erp}#{object}#lock` | idempotency (a lease) |
//! | [`VersionKey`] | `customer#{erp}#{cus}`, `subscription#{erp}#{sub}`, `subscription#{sub}`, `erp_customer#{erp}#{code}` | version |
//! | [`CursorKey`] | `erp_poll#{erp}` | version |
//! | [`ReportKey`] | `report#{payout}`, `report#{payout}#failed` | reports |
//! | [`XrefKind`] | `writeback#{metadata_key}` | cross-reference kind |
//! | [`PayoutJournalKey`] | `payout:{payout}:journal`, `payout:{payout}:failure-reversal` | idempotency |
//! | [`table`] | `idem#{key}`, `xref#{stripe_id}#{kind}`, `ver#{key}` | the DynamoDB table's partition keys |

use crate::ids::IdempotencyKey;
use std::fmt;

macro_rules! key_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// Keys of idempotency records convert into the store's [`IdempotencyKey`].
macro_rules! idempotency_key {
    ($name:ident) => {
        impl From<$name> for IdempotencyKey {
            fn from(k: $name) -> Self {
                IdempotencyKey::new(k.0)
            }
        }
    };
}

key_type!(
    /// The intent record of one ERP document (erp-post).
    IntentKey
);
idempotency_key!(IntentKey);

impl IntentKey {
    /// A document: posted once per ERP and reference.
    pub fn post(erp: &str, reference: impl fmt::Display) -> Self {
        IntentKey(format!("post#{erp}#{reference}"))
    }

    /// A customer upsert: once per event (later updates of the customer are posted too).
    pub fn post_for_event(erp: &str, reference: impl fmt::Display, event_id: &str) -> Self {
        IntentKey(format!("post#{erp}#{reference}#{event_id}"))
    }

    /// When a document first waited for a document it depends on (the posting stage's time
    /// limit on that wait).
    pub fn parent_wait(erp: &str, reference: impl fmt::Display) -> Self {
        IntentKey(format!("wait#{erp}#{reference}"))
    }

    /// Resolution of a Stripe customer to an ERP customer.
    pub fn resolve(erp: &str, reference: impl fmt::Display) -> Self {
        IntentKey(format!("post#{erp}#{reference}#resolve"))
    }
}

key_type!(
    /// The intake's record of one Stripe event id.
    IntakeKey
);
idempotency_key!(IntakeKey);

impl IntakeKey {
    pub fn event(event_id: impl fmt::Display) -> Self {
        IntakeKey(format!("intake#{event_id}"))
    }

    /// A validly signed delivery kept for a person (unparseable, or an event id already seen
    /// with another payload), by the SHA-256 of its body, so a redelivery of the same bytes
    /// lands on the same record.
    pub fn quarantine(body_sha256: impl fmt::Display) -> Self {
        IntakeKey(format!("intake#quarantine#{body_sha256}"))
    }
}

key_type!(
    /// The claim of one ERP customer change applied to Stripe.
    ChangeKey
);
idempotency_key!(ChangeKey);

impl ChangeKey {
    pub fn erp_customer(erp: &str, customer_code: &str, changed_at: i64, digest: &str) -> Self {
        ChangeKey(format!(
            "erp_sync#{erp}#{customer_code}#{changed_at}#{digest}"
        ))
    }
}

key_type!(
    /// A lease held while one worker writes (released after).
    LockKey
);
idempotency_key!(LockKey);

impl LockKey {
    /// Writing the customer field values of one Stripe object.
    pub fn customer_fields(erp: &str, object_id: &str) -> Self {
        LockKey(format!("fields#{erp}#{object_id}#lock"))
    }

    /// Upserting one Stripe customer's master data (version check and write, together).
    pub fn customer_upsert(erp: &str, stripe_customer: impl fmt::Display) -> Self {
        LockKey(format!("customer#{erp}#{stripe_customer}#lock"))
    }
}

key_type!(
    /// The last applied version of an object, so an older update never wins.
    VersionKey
);

impl VersionKey {
    /// Customer upserts of one Stripe customer in one ERP.
    pub fn customer(erp: &str, stripe_customer: impl fmt::Display) -> Self {
        VersionKey(format!("customer#{erp}#{stripe_customer}"))
    }

    /// Customer field values from one subscription written to one ERP.
    pub fn subscription_fields(erp: &str, subscription: &str) -> Self {
        VersionKey(format!("subscription#{erp}#{subscription}"))
    }

    /// A subscription's state, independent of the ERP.
    pub fn subscription(subscription: &str) -> Self {
        VersionKey(format!("subscription#{subscription}"))
    }

    /// Changes of one ERP customer applied to Stripe.
    pub fn erp_customer(erp: &str, customer_code: &str) -> Self {
        VersionKey(format!("erp_customer#{erp}#{customer_code}"))
    }
}

key_type!(
    /// A poll's cursor (kept in the version store).
    CursorKey
);

impl CursorKey {
    /// The scheduled poll of one ERP's changed customers.
    pub fn erp_poll(erp: &str) -> Self {
        CursorKey(format!("erp_poll#{erp}"))
    }
}

key_type!(
    /// A payout's discrepancy report.
    ReportKey
);

impl ReportKey {
    /// The report of the payout's journal, or of a failed payout's reversal or flag.
    pub fn payout(payout: &str, failed: bool) -> Self {
        if failed {
            ReportKey(format!("report#{payout}#failed"))
        } else {
            ReportKey(format!("report#{payout}"))
        }
    }
}

key_type!(
    /// A cross-reference kind that is not an ERP document kind.
    XrefKind
);

impl XrefKind {
    /// The metadata write-back of one key to a Stripe object is done.
    pub fn write_back(metadata_key: &str) -> Self {
        XrefKind(format!("writeback#{metadata_key}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_the_stored_layout() {
        assert_eq!(
            IntentKey::post("epicor", "LB-re_1-CM").as_str(),
            "post#epicor#LB-re_1-CM"
        );
        assert_eq!(
            IntentKey::post_for_event("sage500", "LB-cus_1-CU", "evt_1").as_str(),
            "post#sage500#LB-cus_1-CU#evt_1"
        );
        assert_eq!(
            IntentKey::resolve("sagepro", "LB-cus_1-CU").as_str(),
            "post#sagepro#LB-cus_1-CU#resolve"
        );
        assert_eq!(IntakeKey::event("evt_1").as_str(), "intake#evt_1");
        assert_eq!(
            ChangeKey::erp_customer("epicor", "C1", 5, "ab").as_str(),
            "erp_sync#epicor#C1#5#ab"
        );
        assert_eq!(
            LockKey::customer_fields("epicor", "sub_1").as_str(),
            "fields#epicor#sub_1#lock"
        );
        assert_eq!(
            VersionKey::customer("epicor", "cus_1").as_str(),
            "customer#epicor#cus_1"
        );
        assert_eq!(
            VersionKey::subscription_fields("epicor", "sub_1").as_str(),
            "subscription#epicor#sub_1"
        );
        assert_eq!(
            VersionKey::subscription("sub_1").as_str(),
            "subscription#sub_1"
        );
        assert_eq!(
            VersionKey::erp_customer("epicor", "C1").as_str(),
            "erp_customer#epicor#C1"
        );
        assert_eq!(CursorKey::erp_poll("epicor").as_str(), "erp_poll#epicor");
        assert_eq!(ReportKey::payout("po_1", false).as_str(), "report#po_1");
        assert_eq!(
            ReportKey::payout("po_1", true).as_str(),
            "report#po_1#failed"
        );
        assert_eq!(
            XrefKind::write_back("ledgerbridge_invoice").as_str(),
            "writeback#ledgerbridge_invoice"
        );
        let idem: IdempotencyKey = IntakeKey::event("evt_2").into();
        assert_eq!(idem, IdempotencyKey::new("intake#evt_2"));
    }
}

key_type!(
    /// The claim of one payout's journal (reconciliation), whatever triggered it.
    PayoutJournalKey
);
idempotency_key!(PayoutJournalKey);

impl PayoutJournalKey {
    /// The journal of a paid payout (or its manual reconstruction).
    pub fn journal(payout: impl fmt::Display) -> Self {
        PayoutJournalKey(format!("payout:{payout}:journal"))
    }

    /// The reversal of a payout that failed after it was booked.
    pub fn failure_reversal(payout: impl fmt::Display) -> Self {
        PayoutJournalKey(format!("payout:{payout}:failure-reversal"))
    }
}

/// Partition keys of the single DynamoDB state table: each store keeps its records under its own
/// prefix, so idempotency, cross-reference and version records never collide.
pub mod table {
    use std::fmt;

    /// An idempotency record's partition key.
    pub fn idempotency(key: impl fmt::Display) -> String {
        format!("idem#{key}")
    }

    /// A cross-reference record's partition key.
    pub fn xref(stripe_id: impl fmt::Display, doc_kind: impl fmt::Display) -> String {
        format!("xref#{stripe_id}#{doc_kind}")
    }

    /// A version record's partition key.
    pub fn version(key: impl fmt::Display) -> String {
        format!("ver#{key}")
    }
}

#[cfg(test)]
mod payout_and_table_tests {
    use super::*;

    #[test]
    fn payout_and_table_keys_keep_their_stored_layout() {
        assert_eq!(
            PayoutJournalKey::journal("po_1").as_str(),
            "payout:po_1:journal"
        );
        assert_eq!(
            PayoutJournalKey::failure_reversal("po_1").as_str(),
            "payout:po_1:failure-reversal"
        );
        assert_eq!(
            table::idempotency("post#epicor#LB-x"),
            "idem#post#epicor#LB-x"
        );
        assert_eq!(table::xref("ch_1", "SO"), "xref#ch_1#SO");
        assert_eq!(
            table::version("customer#epicor#cus_1"),
            "ver#customer#epicor#cus_1"
        );
    }
}
