//! The payout-reconciliation function end to end: payout events from the reconciliation queue
//! and the scheduled sweep, against moto (SQS commands queue, DynamoDB state table) and the
//! local fake Stripe API of the reconciliation tests; then the queued journal posted through
//! the erp-post stage to the ERP sandbox for each of the three ERPs.

use crate::recon::{
    add_payout, bt, fixture, mapping, sample_fake, start_fake, Shared, FAILED_PAYOUT, SAMPLE_PAYOUT,
};
use crate::support::moto;
use ledgerbridge_adapters::aws::DynamoReportStore;
use ledgerbridge_adapters::aws::{DynamoStore, SqsQueue};
use ledgerbridge_adapters::embedded::{MemoryQueue, SqliteStore};
use ledgerbridge_adapters::lambda::RecordOutcome;
use ledgerbridge_core::event::EnvelopeHead;
use ledgerbridge_core::message::SQS_MAX_MESSAGE_BYTES;
use ledgerbridge_core::secrets::Secret;
use ledgerbridge_core::FixedClock;
use ledgerbridge_erp::{ErpCommand, JournalEntry, Side};
use ledgerbridge_erp_sandbox::{ErpKind, SandboxConfig, Seed};
use ledgerbridge_messages::stripe_event::encode_event_v1;
use ledgerbridge_messages::{CommandMessage, ErpCommandV1};
use ledgerbridge_recon::report_store::{ReportRecord, ReportStatus, ReportStore};
use ledgerbridge_recon::service::config::{Posting, ReconFile, Sweep};
use ledgerbridge_recon::service::{Deps, SweepSummary};
use ledgerbridge_recon::{FailedPayoutPolicy, ReconMapping};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

/// Between the sample payout's arrival and the failed one's: both inside the 3-day window.
const NOW: i64 = 1_786_100_000;

type Rig = Deps<SqsQueue, DynamoStore, DynamoReportStore, FixedClock>;

struct Env {
    deps: Arc<Rig>,
    sqs: aws_sdk_sqs::Client,
    commands_url: String,
}

fn file(m: ReconMapping) -> ReconFile {
    ReconFile {
        mapping: m,
        posting: Posting::default(),
        sync_check: BTreeMap::new(),
        sweep: Sweep::default(),
    }
}

async fn env(fake: Shared, file: ReconFile) -> Env {
    let sdk = moto::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = moto::unique("payout-state");
    moto::create_state_table(&ddb, &table).await;
    let commands_url = moto::create_queue(&sqs, &moto::unique("payout-commands")).await;
    let deps = Deps {
        stripe: start_fake(fake).await,
        commands: SqsQueue::new(sqs.clone(), &commands_url, SQS_MAX_MESSAGE_BYTES),
        store: DynamoStore::new(ddb.clone(), &table),
        reports: DynamoReportStore::new(ddb, &table),
        clock: FixedClock::at_secs(NOW),
        file,
        lease_ms: 60_000,
        claim_secs: 400 * 86_400,
        concurrency: 2,
    };
    Env {
        deps: Arc::new(deps),
        sqs,
        commands_url,
    }
}

impl Env {
    async fn commands(&self) -> Vec<ErpCommandV1> {
        moto::drain(&self.sqs, &self.commands_url)
            .await
            .iter()
            .map(|b| match CommandMessage::decode(b).unwrap() {
                CommandMessage::ErpCommandV1(c) => *c,
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    /// An SQS batch of one payout event; returns the ids of records to redeliver.
    async fn deliver(&self, event: &Value) -> Vec<String> {
        let body = serde_json::to_vec(event).unwrap();
        let head = EnvelopeHead::parse(&body).unwrap();
        let msg = encode_event_v1(&head, &body, NOW * 1000).unwrap();
        let batch = json!({"Records": [{"messageId": "m-1", "body": msg,
            "eventSource": "aws:sqs"}]});
        let out = ledgerbridge_app::payout_reconciliation::handle(&self.deps, batch)
            .await
            .unwrap();
        out["batchItemFailures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn sweep(&self) -> SweepSummary {
        let payload = json!({"version": "0", "id": moto::unique("run"),
            "detail-type": "Scheduled Event", "source": "aws.events",
            "time": "2026-08-07T23:33:20Z", "resources": [], "detail": {}});
        let out = ledgerbridge_app::payout_reconciliation::handle(&self.deps, payload)
            .await
            .unwrap();
        SweepSummary {
            listed: out["listed"].as_u64().unwrap(),
            queued: out["queued"].as_u64().unwrap(),
            needs_review: out["needs_review"].as_u64().unwrap(),
            already_done: out["already_done"].as_u64().unwrap(),
            busy: out["busy"].as_u64().unwrap(),
            not_ready: out["not_ready"].as_u64().unwrap(),
            skipped: out["skipped"].as_u64().unwrap(),
            retry: out["retry"].as_u64().unwrap(),
            failed: out["failed"].as_u64().unwrap(),
            stopped_early: out["stopped_early"].as_bool().unwrap(),
            list_error: out["list_error"].as_str().map(str::to_owned),
        }
    }
}

fn paid_event() -> Value {
    serde_json::from_str(include_str!("../fixtures/stripe/events/payout.paid.json")).unwrap()
}

fn failed_event() -> Value {
    serde_json::from_str(include_str!("../fixtures/stripe/events/payout.failed.json")).unwrap()
}

/// A `payout.paid` event for any payout id.
fn paid_event_for(id: &str) -> Value {
    let mut e = paid_event();
    e["id"] = json!(format!("evt_{id}"));
    e["data"]["object"]["id"] = json!(id);
    e
}

fn journal(c: &ErpCommandV1) -> &JournalEntry {
    match &c.command {
        ErpCommand::PostJournalEntry(j) => j,
        other => panic!("not a journal: {other:?}"),
    }
}

fn for_payout<'a>(cmds: &'a [ErpCommandV1], id: &str) -> Vec<&'a ErpCommandV1> {
    cmds.iter()
        .filter(|c| c.command.reference().stripe_id().as_str() == id)
        .collect()
}

/// Σ debits = Σ credits in minor units, and the total.
fn balanced_total(j: &JournalEntry) -> i64 {
    let (d, c) = j.totals().unwrap();
    assert_eq!(d, c, "journal balances to the minor unit");
    let dm: i64 = j
        .lines
        .iter()
        .filter(|l| l.side == Side::Debit)
        .map(|l| l.amount.minor)
        .sum();
    let cm: i64 = j
        .lines
        .iter()
        .filter(|l| l.side == Side::Credit)
        .map(|l| l.amount.minor)
        .sum();
    assert_eq!(dm, cm);
    dm
}

fn csv_rows(csv: &str) -> Vec<csv::StringRecord> {
    let mut rd = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(
        rd.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "payout",
            "kind",
            "balance_transaction",
            "source",
            "category",
            "currency",
            "amount",
            "detail"
        ]
    );
    rd.records().collect::<Result<_, _>>().unwrap()
}

#[tokio::test]
async fn payout_paid_event_queues_one_journal_equal_to_the_sample() {
    let e = env(sample_fake(), file(mapping())).await;
    assert!(e.deliver(&paid_event()).await.is_empty());
    let cmds = e.commands().await;
    assert_eq!(cmds.len(), 1);
    let cmd = &cmds[0];
    let j = journal(cmd);
    assert_eq!(
        cmd.command.reference().full(),
        format!("LB-{SAMPLE_PAYOUT}-JE")
    );
    assert_eq!(j.posting_date.as_str(), "2026-08-07");
    assert_eq!(j.currency.code(), "USD");
    assert_eq!(balanced_total(j), 41_670, "416.70 on each side");
    let got: BTreeMap<String, (Side, Decimal)> = j
        .lines
        .iter()
        .map(|l| (l.gl_account.clone(), (l.side, l.amount.to_decimal())))
        .collect();
    let want: BTreeMap<String, (Side, Decimal)> = fixture("expected")["payout_reconciliation"]
        ["gl_journal_example"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let (side, v) = match (l.get("debit"), l.get("credit")) {
                (Some(d), _) => (Side::Debit, d),
                (_, Some(c)) => (Side::Credit, c),
                _ => panic!("line without amount"),
            };
            let amount = Decimal::from_str(v.as_str().unwrap()).unwrap();
            (l["account"].as_str().unwrap().to_owned(), (side, amount))
        })
        .collect();
    assert_eq!(got, want, "lines equal expected.json's sample journal");
    let wb = cmd.write_back.as_ref().unwrap();
    assert_eq!(
        (
            wb.object_path.as_str(),
            wb.object_id.as_str(),
            wb.key.as_str()
        ),
        ("payouts", SAMPLE_PAYOUT, "ledgerbridge_journal")
    );
    assert_eq!(cmd.source.event_type, "payout.paid");

    // the report record an operator can query
    let rec = e
        .deps
        .reports
        .get_report(&ReportRecord::key_for(SAMPLE_PAYOUT, false))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.status, ReportStatus::JournalQueued);
    assert_eq!(
        rec.journal_reference.as_deref(),
        Some(format!("LB-{SAMPLE_PAYOUT}-JE").as_str())
    );
    let totals = rec.totals.unwrap();
    assert_eq!(totals.debit_minor, totals.credit_minor);
    assert!(rec.report.is_clean());
    assert!(csv_rows(&rec.csv).is_empty());

    // a redelivered event queues nothing more
    assert!(e.deliver(&paid_event()).await.is_empty());
    assert!(e.commands().await.is_empty());
}

#[tokio::test]
async fn schedule_and_event_post_one_journal_in_either_order() {
    // sweep first, then the event
    let e = env(sample_fake(), file(mapping())).await;
    let first = e.sweep().await;
    assert_eq!(first.list_error, None);
    assert_eq!(first.listed, 2, "the paid sample and the failed payout");
    assert_eq!(first.queued, 2, "a journal and a reversal");
    assert!(e.deliver(&paid_event()).await.is_empty());
    let again = e.sweep().await;
    assert_eq!((again.queued, again.already_done), (0, 2));
    let cmds = e.commands().await;
    assert_eq!(for_payout(&cmds, SAMPLE_PAYOUT).len(), 1);
    assert_eq!(cmds.len(), 2);

    // the event first, then the sweep (twice)
    let e = env(sample_fake(), file(mapping())).await;
    assert!(e.deliver(&paid_event()).await.is_empty());
    e.sweep().await;
    e.sweep().await;
    let cmds = e.commands().await;
    assert_eq!(for_payout(&cmds, SAMPLE_PAYOUT).len(), 1);
    assert_eq!(cmds.len(), 2);

    // both at once
    let e = env(sample_fake(), file(mapping())).await;
    let event = paid_event();
    let (failures, _) = tokio::join!(e.deliver(&event), e.sweep());
    if !failures.is_empty() {
        // the sweep held the claim: the redelivery finds the journal queued
        assert!(e.deliver(&event).await.is_empty());
    }
    let cmds = e.commands().await;
    assert_eq!(for_payout(&cmds, SAMPLE_PAYOUT).len(), 1);
}

#[tokio::test]
async fn a_429_mid_pagination_still_posts_one_journal() {
    let fake = Arc::new(std::sync::Mutex::new(crate::recon::FakeStripe::default()));
    let entries: Vec<Value> = (0..250)
        .map(|i| {
            if i % 10 == 0 {
                bt(&format!("txn_r{i}"), -500, &[], "refund", "refund", "usd")
            } else {
                bt(
                    &format!("txn_c{i}"),
                    1000 + i,
                    &[("stripe_fee", 59)],
                    "charge",
                    "charge",
                    "usd",
                )
            }
        })
        .collect();
    let amount = add_payout(&fake, "po_paged", "usd", entries, 0);
    let cursor = fake.lock().unwrap().lists["po_paged"][99]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    fake.lock().unwrap().throttle_once_after.insert(cursor);
    let e = env(fake.clone(), file(mapping())).await;
    let event = paid_event_for("po_paged");
    let (failures, sweep) = tokio::join!(e.deliver(&event), e.sweep());
    if !failures.is_empty() {
        assert!(e.deliver(&event).await.is_empty());
    }
    assert_eq!(sweep.list_error, None);
    let cmds = e.commands().await;
    assert_eq!(cmds.len(), 1, "one journal");
    let j = journal(&cmds[0]);
    balanced_total(j);
    let bank = j
        .lines
        .iter()
        .find(|l| l.gl_account == "Bank - operating")
        .unwrap();
    assert_eq!((bank.side, bank.amount.minor), (Side::Debit, amount));
    assert!(
        fake.lock().unwrap().throttle_once_after.is_empty(),
        "the 429 was served"
    );
}

#[tokio::test]
async fn failed_payout_is_reversed_or_flagged_per_configuration() {
    let failure_txn = fixture("failure_txn")["id"].as_str().unwrap().to_owned();

    let e = env(sample_fake(), file(mapping())).await;
    assert!(e.deliver(&failed_event()).await.is_empty());
    let cmds = e.commands().await;
    assert_eq!(cmds.len(), 1);
    assert_eq!(
        cmds[0].command.reference().full(),
        format!("LB-{failure_txn}-JE"),
        "the reversal has its own reference"
    );
    let j = journal(&cmds[0]);
    let lines: Vec<_> = j
        .lines
        .iter()
        .map(|l| (l.gl_account.as_str(), l.side, l.amount.minor))
        .collect();
    assert_eq!(
        lines,
        [
            ("Stripe balance receivable", Side::Debit, 18_990),
            ("Bank - operating", Side::Credit, 18_990)
        ]
    );
    assert_eq!(
        cmds[0].write_back.as_ref().unwrap().key,
        "ledgerbridge_reversal_journal"
    );
    let rec = e
        .deps
        .reports
        .get_report(&ReportRecord::key_for(FAILED_PAYOUT, true))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.status, ReportStatus::JournalQueued);

    let mut flag = mapping();
    flag.failed_payout = FailedPayoutPolicy::Flag;
    let e = env(sample_fake(), file(flag)).await;
    assert!(e.deliver(&failed_event()).await.is_empty());
    assert!(e.commands().await.is_empty(), "flagged, nothing posted");
    let rec = e
        .deps
        .reports
        .get_report(&ReportRecord::key_for(FAILED_PAYOUT, true))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.status, ReportStatus::NeedsReview);
    let rows = csv_rows(&rec.csv);
    assert_eq!(rows.len(), 1);
    assert_eq!(&rows[0][0], FAILED_PAYOUT);
    assert_eq!(&rows[0][1], "failed_payout");
    assert_eq!(&rows[0][5], "USD");
    assert_eq!(&rows[0][6], "189.90");
}

#[tokio::test]
async fn a_payout_stripe_has_not_reconciled_is_retried_and_never_journaled_early() {
    let fake = sample_fake();
    fake.lock()
        .unwrap()
        .objects
        .get_mut(&format!("payouts/{SAMPLE_PAYOUT}"))
        .unwrap()["reconciliation_status"] = json!("in_progress");
    let e = env(fake.clone(), file(mapping())).await;
    assert_eq!(e.deliver(&paid_event()).await, ["m-1"], "redelivered later");
    let sweep = e.sweep().await;
    assert_eq!(sweep.not_ready, 1);
    assert!(for_payout(&e.commands().await, SAMPLE_PAYOUT).is_empty());
    assert!(e
        .deps
        .reports
        .get_report(&ReportRecord::key_for(SAMPLE_PAYOUT, false))
        .await
        .unwrap()
        .is_none());

    // Stripe finishes: the redelivery posts it
    fake.lock()
        .unwrap()
        .objects
        .get_mut(&format!("payouts/{SAMPLE_PAYOUT}"))
        .unwrap()["reconciliation_status"] = json!("completed");
    assert!(e.deliver(&paid_event()).await.is_empty());
    assert_eq!(for_payout(&e.commands().await, SAMPLE_PAYOUT).len(), 1);
}

#[tokio::test]
async fn discrepancies_are_stored_and_export_as_csv() {
    let fake = Arc::new(std::sync::Mutex::new(crate::recon::FakeStripe::default()));
    let entries = vec![
        bt(
            "txn_c1",
            10_000,
            &[("stripe_fee", 320)],
            "charge",
            "charge",
            "usd",
        ),
        bt("txn_x1", -1_234, &[], "space_fee", "adjustment", "usd"),
    ];
    add_payout(&fake, "po_odd", "usd", entries, 0);
    let e = env(fake, file(mapping())).await;
    assert!(e.deliver(&paid_event_for("po_odd")).await.is_empty());
    let cmds = e.commands().await;
    assert_eq!(cmds.len(), 1);
    let j = journal(&cmds[0]);
    balanced_total(j);
    assert!(j
        .lines
        .iter()
        .any(|l| l.gl_account == "Suspense" && l.amount.minor == 1_234));
    let rec = e
        .deps
        .reports
        .get_report("report#po_odd")
        .await
        .unwrap()
        .unwrap();
    let rows = csv_rows(&rec.csv);
    assert_eq!(rows.len(), 1);
    assert_eq!(&rows[0][1], "unknown_category");
    assert_eq!(&rows[0][2], "txn_x1");
    assert_eq!(&rows[0][4], "space_fee");
    assert_eq!(&rows[0][6], "-12.34");
}

// ---- through erp-post to the ERP sandbox ---------------------------------------------------

/// Short GL codes the sandbox knows (seeded below).
fn coded_mapping() -> ReconMapping {
    let mut m = mapping();
    let code = |name: &str| -> String {
        match name {
            "Bank - operating" => "1010-00",
            "Stripe processing & dispute fees (expense)" => "6150-00",
            "Refunds / returns" => "4900-00",
            "Chargebacks" => "4950-00",
            "Other income (adjustments)" => "4990-00",
            "Stripe clearing (gross card receipts)" => "1015-00",
            "Stripe balance receivable" => "1200-00",
            _ => "1999-00",
        }
        .to_owned()
    };
    m.bank_account = code(&m.bank_account);
    m.default_fee_account = code(&m.default_fee_account);
    m.failed_payout_account = code(&m.failed_payout_account);
    for v in m
        .category_accounts
        .values_mut()
        .chain(m.fee_accounts.values_mut())
    {
        *v = code(v);
    }
    m.suspense_account = "1999-00".into();
    m.variance_account = "6990-00".into();
    m.fx_account = "7800-00".into();
    m
}

fn erp_settings(sb: &ledgerbridge_erp_sandbox::SandboxHandle, erp: ErpKind) -> Value {
    let keys = sb.keys();
    match erp {
        ErpKind::Epicor => {
            json!({"kind": "epicor", "base_url": format!("{}/KineticTest", sb.base_url()),
            "company": "EPIC06", "invoice_group_id": "STRIPE", "cash_group_id": "STRIPECR",
            "journal": {"book_id": "MAIN", "journal_code": "GJ", "group_id": "STRIPEGL"},
            "timeout_ms": 2000, "api_key": keys.epicor_api_key, "user": keys.epicor_user,
            "password": keys.epicor_password})
        }
        ErpKind::SagePro => {
            json!({"kind": "sagepro", "base_url": sb.base_url(), "timeout_ms": 2000,
            "api_key": keys.sagepro_api_key})
        }
        ErpKind::Sage500 => {
            json!({"kind": "sage500", "transport": "http", "base_url": sb.base_url(),
            "company": "SOA", "site_procedures": true, "customer_update_dim_job": 1, "timeout_ms": 2000, "api_key": keys.sage500_api_key})
        }
    }
}

/// Sum every `*debit*` / `*credit*` number or decimal string in an audit body (and Sage 500's
/// signed `PostAmtHC`).
fn audit_sides(v: &Value, key: &str, dr: &mut Decimal, cr: &mut Decimal) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                audit_sides(x, k, dr, cr);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| audit_sides(x, key, dr, cr)),
        Value::Number(_) | Value::String(_) => {
            let k = key.to_ascii_lowercase();
            let n = match v {
                Value::Number(n) => Decimal::from_str(&n.to_string()).ok(),
                Value::String(s) => Decimal::from_str(s).ok(),
                _ => None,
            };
            if let Some(n) = n {
                if k == "postamthc" {
                    // Sage 500 staging rows: signed, debit positive
                    if n.is_sign_negative() {
                        *cr -= n;
                    } else {
                        *dr += n;
                    }
                } else if k.contains("debit") && !k.contains("credit") {
                    *dr += n;
                } else if k.contains("credit") && !k.contains("debit") {
                    *cr += n;
                }
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn the_queued_journal_posts_once_and_balances_in_each_erp() {
    use ledgerbridge_erp::{AnyConnector, ErpSettings, RetryPolicy};
    use ledgerbridge_pipeline::posting::Poster;
    use ledgerbridge_pipeline::stages::PostStage;
    use std::time::Duration;

    let e = env(sample_fake(), file(coded_mapping())).await;
    assert!(e.deliver(&paid_event()).await.is_empty());
    let bodies = moto::drain(&e.sqs, &e.commands_url).await;
    assert_eq!(bodies.len(), 1);
    let expected_total = match CommandMessage::decode(&bodies[0]).unwrap() {
        CommandMessage::ErpCommandV1(c) => balanced_total(journal(&c)),
        other => panic!("unexpected {other:?}"),
    };

    for erp in [ErpKind::Epicor, ErpKind::SagePro, ErpKind::Sage500] {
        let (_, sb) = ledgerbridge_erp_sandbox::spawn(SandboxConfig::default())
            .await
            .unwrap();
        sb.seed(&Seed {
            erp: Some(erp),
            items: vec![],
            gl_accounts: [
                "1010-00", "1015-00", "1200-00", "1999-00", "4900-00", "4950-00", "4990-00",
                "6150-00", "6990-00", "7800-00",
            ]
            .map(String::from)
            .to_vec(),
            closed_periods: vec![],
        })
        .unwrap();
        let settings =
            ErpSettings::from_json(&Secret::new(erp_settings(&sb, erp).to_string())).unwrap();
        let stage = PostStage {
            poster: Poster {
                connector: AnyConnector::from_settings(settings).unwrap(),
                store: SqliteStore::in_memory().unwrap(),
                stripe: None::<ledgerbridge_stripe::StripeClient>,
                mapping: ledgerbridge_pipeline::mapping::Mapping::from_toml(
                    ledgerbridge_pipeline::mapping::EXAMPLE,
                )
                .unwrap(),
                policy: RetryPolicy {
                    max_attempts: 4,
                    base_delay: Duration::from_millis(20),
                    max_delay: Duration::from_millis(200),
                    max_retry_after: Duration::from_secs(5),
                    settle_after_ambiguous: Duration::from_millis(50),
                },
                clock: FixedClock::at_secs(NOW),
                lease_ms: 60_000,
                intent_days: 30,
            },
            parked: MemoryQueue::default(),
        };
        // delivered twice (at-least-once transport): committed once
        for _ in 0..2 {
            let out = stage.process(&bodies[0]).await;
            let parked: Vec<_> = stage
                .parked
                .try_receive(10)
                .into_iter()
                .map(|m| m.body)
                .collect();
            assert_eq!(out, RecordOutcome::Done, "{erp:?}: {parked:?}");
            assert!(parked.is_empty(), "{erp:?}: {parked:?}");
        }
        let audit = sb.audit(Some(erp)).unwrap();
        let creates: Vec<_> = audit.iter().filter(|a| a.action == "create").collect();
        assert_eq!(
            creates.len(),
            1,
            "{erp:?}: one journal committed: {audit:?}"
        );
        let (mut dr, mut cr) = (Decimal::ZERO, Decimal::ZERO);
        // Sage 500's audit body repeats its first staging row at the top: sum the rows only
        let body = &creates[0].body;
        audit_sides(body.get("Lines").unwrap_or(body), "", &mut dr, &mut cr);
        assert_eq!(
            dr, cr,
            "{erp:?}: balanced in the ERP: {:?}",
            creates[0].body
        );
        let total = Decimal::new(expected_total, 2);
        assert!(
            dr > Decimal::ZERO && (dr % total).is_zero(),
            "{erp:?}: debits {dr} are the journal's {total} (per line or with a header total)"
        );
        sb.shutdown().await;
    }
}
