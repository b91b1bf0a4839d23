//! I3 — the signed timestamp at the edges of the tolerance, on a fixed clock, through the
//! intake handler. Figure (at figure): **the boundary table exact**.
//!
//! The policy the code implements (`ledgerbridge_core::webhook`): a timestamp up to
//! `DEFAULT_TOLERANCE_SECS` = 300 s old is accepted, 301 s is rejected (Stripe's libraries'
//! default); one up to `DEFAULT_FUTURE_SKEW_SECS` = 60 s in the future is accepted (clock skew
//! between Stripe and us), 61 s is rejected. Both rejections answer 400 `timestamp outside
//! tolerance` and queue nothing.

use crate::intake::{deps, Backend, Embedded, TestQueue};
use crate::support::fixtures::{event_body, SAMPLE_SECRET};
use ledgerbridge_core::webhook::{sign_header, DEFAULT_FUTURE_SKEW_SECS, DEFAULT_TOLERANCE_SECS};
use ledgerbridge_core::FixedClock;
use ledgerbridge_intake::handle_webhook;

const NOW: i64 = 1_785_000_000;

/// (seconds the signed timestamp lies before now — negative: in the future, accepted)
const TABLE: [(i64, bool); 12] = [
    (0, true),
    (1, true),
    (299, true),
    (300, true),
    (301, false),
    (302, false),
    (86_400, false),
    (-1, true),
    (-60, true),
    (-61, false),
    (-62, false),
    (-86_400, false),
];

#[tokio::test]
async fn i3_the_timestamp_boundary_table_is_exact() {
    assert_eq!(DEFAULT_TOLERANCE_SECS, 300, "the table states this policy");
    assert_eq!(DEFAULT_FUTURE_SKEW_SECS, 60, "the table states this policy");
    let (q, s) = Embedded::fresh(ledgerbridge_core::message::SQS_MAX_MESSAGE_BYTES).await;
    let d = deps(q, s, FixedClock::at_secs(NOW));
    let base = String::from_utf8(event_body("customer.created.json")).unwrap();
    let mut accepted = 0;
    for (row, (age, accept)) in TABLE.iter().enumerate() {
        // A new event id per row, so no row is answered as another's duplicate.
        let body = base.replace("evt_", &format!("evt_i3r{row}x")).into_bytes();
        let header = sign_header(&[SAMPLE_SECRET], NOW - age, &body);
        let out = handle_webhook(&d, Some(&header), &body).await;
        if *accept {
            assert_eq!(out.status, 200, "age {age} s: {}", out.body);
            accepted += 1;
        } else {
            assert_eq!(
                (out.status, out.body),
                (400, "timestamp outside tolerance"),
                "age {age} s"
            );
        }
    }
    assert_eq!(
        d.queue.take_all().await.len(),
        accepted,
        "exactly the accepted rows are queued"
    );
}
