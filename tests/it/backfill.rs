//! `ledgerbridge backfill` against the local pipeline (`ledgerbridge local`'s code, in this
//! process, posting into the Sage Pro sandbox), reading the sample data through the local Stripe
//! stand-in over HTTP with the real Stripe client.

use crate::support::fixtures::{event_body, fixtures_dir};
use ledgerbridge_cli::backfill::{self, Kind, Plan, Summary, Webhook};
use ledgerbridge_cli::local::{self, LocalArgs, QueueArgs, Running};
use ledgerbridge_core::webhook::sign_header;
use ledgerbridge_erp_sandbox::ErpKind;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const ERP: ErpKind = ErpKind::SagePro;

async fn start(dir: &Path) -> Running {
    local::start(&LocalArgs {
        port: 0,
        erp: ERP,
        data_dir: dir.join("data"),
        mapping: None,
        samples: fixtures_dir().join("stripe"),
        reconciliation: None,
        sweep_secs: 0,
        erp_poll_secs: 0,
        stop_after: None,
        queues: QueueArgs {
            visibility_timeout_secs: 120,
            max_receives: 10,
        },
    })
    .await
    .unwrap()
}

/// Every document the sandbox created, by the ledgerbridge reference its body carries (the
/// entity and ERP id when it carries none), and how many times it was created.
fn documents(running: &Running) -> BTreeMap<String, usize> {
    let sb = running.sandbox.as_ref().unwrap();
    let mut out = BTreeMap::new();
    for a in sb.audit(Some(ERP)).unwrap() {
        if a.action != "create" {
            continue;
        }
        let text = a.body.to_string();
        let key = match text.find("LB-") {
            Some(at) => format!(
                "{} {}",
                a.entity,
                text[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                    .collect::<String>()
            ),
            None => format!("{}:{}", a.entity, a.doc_id),
        };
        *out.entry(key).or_default() += 1;
    }
    out
}

fn creates(running: &Running) -> usize {
    crate::pipeline::creates(running.sandbox.as_ref().unwrap(), ERP)
}

async fn run(
    running: &Running,
    stripe: &ledgerbridge_stripe::StripeClient,
    plan: &Plan,
    cursors: &Path,
) -> Summary {
    let webhook = Webhook::new(&running.webhook_url(), &[local::DEV_SECRET.to_owned()]);
    let progress = backfill::quiet_progress();
    let s = backfill::backfill(stripe, plan, &webhook, cursors, &progress)
        .await
        .unwrap();
    assert!(running.idle(Duration::from_secs(60)).await, "not idle");
    s
}

fn plan(from: &str, to: &str, max_objects: Option<u64>, dry_run: bool) -> Plan {
    Plan {
        range: backfill::range_of(from, to).unwrap(),
        kinds: Kind::ALL.to_vec(),
        dry_run,
        max_objects,
        expand: Vec::new(),
        concurrency: 8,
    }
}

async fn deliver_webhook(running: &Running, file: &str) {
    let body = event_body(file);
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let resp = reqwest::Client::new()
        .post(running.webhook_url())
        .header(
            "stripe-signature",
            sign_header(&[local::DEV_SECRET], now, &body),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{file}: {}", resp.status());
}

/// GIVEN the sample data, with one payment and one refund of 2026-08-04 already delivered by
/// the live webhooks WHEN the backfill of that day runs as a dry run, then interrupted after two
/// objects, then resumed, then again THEN the dry run queues nothing, the interrupted run
/// continues from its cursor, the ERP holds exactly the documents of that day's objects, each
/// once, and the last run is all duplicates. A backfill of the whole year then adds the other
/// days' documents and doubles none.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backfill_books_exactly_the_range_once_resumes_and_never_doubles_the_webhooks() {
    let dir = std::env::temp_dir().join(format!("lb-backfill-{}", uuid::Uuid::new_v4()));
    let cursors = dir.join("cursors.json");
    let running = start(&dir).await;
    let stripe = backfill::stand_in_client(&fixtures_dir().join("stripe"), 0)
        .await
        .unwrap();

    // Dry run: what would be queued, nothing queued, no cursor. (The local pipeline seeds the
    // sample ERP customer at start.)
    let seeded = creates(&running);
    let dry = run(
        &running,
        &stripe,
        &plan("2026-08-04", "2026-08-04", None, true),
        &cursors,
    )
    .await;
    assert_eq!(dry.total(|k| k.queued), 3, "{dry:?}");
    assert_eq!(creates(&running), seeded);
    assert!(!cursors.exists());

    // The live webhooks delivered this payment and this refund already.
    deliver_webhook(&running, "payment_intent.succeeded.json").await;
    deliver_webhook(&running, "refund.created.json").await;
    assert!(running.idle(Duration::from_secs(60)).await);
    let from_webhooks = documents(&running);
    assert!(!from_webhooks.is_empty());

    // Interrupted after two objects, then resumed.
    let first = run(
        &running,
        &stripe,
        &plan("2026-08-04", "2026-08-04", Some(2), false),
        &cursors,
    )
    .await;
    assert_eq!(first.total(|k| k.queued), 2, "{first:?}");
    assert!(!first.complete, "{first:?}");
    assert!(cursors.exists());
    let second = run(
        &running,
        &stripe,
        &plan("2026-08-04", "2026-08-04", None, false),
        &cursors,
    )
    .await;
    assert_eq!(
        second.total(|k| k.queued) + second.total(|k| k.duplicates),
        1,
        "the resumed run delivers only what the first did not: {second:?}"
    );
    assert!(second.complete, "{second:?}");
    let day = documents(&running);
    // That day holds PaymentIntent pi_3JitF… (sales order and receipt), refund re_30DCl… (credit
    // memo) and paid invoice in_1gFOr… (invoice, and the receipt of its payment pi_3hs62F…);
    // the invoice's Stripe customer is created in the ERP because the invoice needs it, and
    // NW0042 is the customer the local pipeline seeds at start. (Sage Pro's reference fields
    // hold 16 characters.)
    let expected_day = vec![
        "cashreceipts LB-pi_3JitFDNq7L",
        "cashreceipts LB-pi_3hs62FNq7L",
        "creditmemos LB-re_30DCl0Nq7L",
        "customers LB-cus_v2hTtpvHRTXjHs-CU",
        "customers LB-erp_master_NW0042-CU",
        "invoices LB-in_1gFOr4Nq7L",
        "salesorders LB-pi_3JitFDNq7L",
    ];
    assert_eq!(
        day.keys().map(String::as_str).collect::<Vec<_>>(),
        expected_day,
        "{day:?}"
    );
    assert!(day.values().all(|n| *n == 1), "{day:?}");

    // Once more over the same day with a fresh cursor file: every event is a duplicate.
    let again = run(
        &running,
        &stripe,
        &plan("2026-08-04", "2026-08-04", None, false),
        &dir.join("other-cursors.json"),
    )
    .await;
    assert_eq!(again.total(|k| k.queued), 0, "{again:?}");
    assert_eq!(again.total(|k| k.duplicates), 3, "{again:?}");
    assert_eq!(documents(&running), day);

    // The whole year: the other days' objects are added, none of this day's doubled.
    let year = run(
        &running,
        &stripe,
        &plan("2026-01-01", "2026-12-31", None, false),
        &cursors,
    )
    .await;
    assert_eq!(year.total(|k| k.duplicates), 3, "{year:?}");
    let all = documents(&running);
    assert!(all.values().all(|n| *n == 1), "{all:?}");
    // The other days: refund re_3YTjQ… (credit memo), dispute dp_1vYN… (one journal per balance
    // transaction: the withdrawal and the reinstatement), the paid payout (its journal) and the
    // failed payout (the reversal journal, named by its balance transaction).
    let mut expected_year = expected_day.clone();
    expected_year.extend([
        "creditmemos LB-re_3YTjQYNq7L",
        "journalentries LB-po_1AlsD8Nq7L",
        "journalentries LB-txn_12xMwdNq7",
        "journalentries LB-txn_1ONFAcNq7",
        "journalentries LB-txn_1lyVshNq7",
    ]);
    expected_year.sort_unstable();
    assert_eq!(
        all.keys().map(String::as_str).collect::<Vec<_>>(),
        expected_year,
        "{all:?}"
    );
    running.shutdown(Duration::from_secs(10)).await;
    std::fs::remove_dir_all(&dir).ok();
}
