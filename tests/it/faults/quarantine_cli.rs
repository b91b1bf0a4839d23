//! `ledgerbridge quarantine … --stack-outputs`: the quarantine of a deployed stack, read from
//! its state table (moto here), as the intake on AWS stores it (I7 and D5 write it).

use crate::intake::{deps, MotoQueue};
use crate::support::fixtures::{event_body, SAMPLE_SECRET};
use crate::support::moto;
use ledgerbridge_adapters::aws::DynamoStore;
use ledgerbridge_cli::quarantine::{aws, find, render_list, render_show};
use ledgerbridge_core::message::SQS_MAX_MESSAGE_BYTES;
use ledgerbridge_core::webhook::sign_header;
use ledgerbridge_core::FixedClock;
use ledgerbridge_intake::handle_webhook;

const T0: i64 = 1_785_000_000;

#[tokio::test]
async fn quarantine_lists_and_shows_the_stacks_kept_deliveries() {
    let conf = moto::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let ddb = aws_sdk_dynamodb::Client::new(&conf);
    let url = moto::create_queue(&sqs, &moto::unique("qcli-events")).await;
    let table = moto::unique("qcli-state");
    moto::create_state_table(&ddb, &table).await;
    let d = deps(
        MotoQueue::new(sqs.clone(), &url, SQS_MAX_MESSAGE_BYTES),
        DynamoStore::new(ddb.clone(), &table),
        FixedClock::at_secs(T0),
    );
    // An unparseable body that carries a card number, and a changed copy of a queued event.
    let unparseable =
        br#"{"id": "evt_qcli", "data": {"object": {"card": "4000056655665556""#.to_vec();
    let original = String::from_utf8(event_body("charge.succeeded.json"))
        .unwrap()
        .replace("evt_", "evt_qcli");
    let changed = original.replacen("\"amount\": ", "\"amount\": 9", 1);
    for body in [
        unparseable.clone(),
        original.clone().into_bytes(),
        changed.clone().into_bytes(),
    ] {
        let out = handle_webhook(&d, Some(&sign_header(&[SAMPLE_SECRET], T0, &body)), &body).await;
        assert_eq!(out.status, 200, "{}", out.body);
    }
    // Other items of the table (the queued event's record) are not listed.
    let items = aws(&ddb, &table).await.unwrap();
    assert_eq!(items.len(), 2, "{items:?}");
    let list = render_list(&items);
    assert!(list.contains("unparseable_event"), "{list}");
    assert!(list.contains("payload_mismatch"), "{list}");
    assert!(
        !list.contains("4000056655665556"),
        "a body reached the list"
    );
    assert!(!list.contains("\"amount\""), "a body reached the list");
    let hash = |b: &[u8]| {
        <sha2::Sha256 as sha2::Digest>::digest(b)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
    };
    let kept = find(&items, &hash(changed.as_bytes())).unwrap();
    assert_eq!(kept.body().unwrap(), changed.as_bytes(), "the exact bytes");
    assert_eq!(
        kept.delivery.as_ref().unwrap().event_id.as_deref(),
        Some(
            serde_json::from_str::<serde_json::Value>(&original).unwrap()["id"]
                .as_str()
                .unwrap()
        )
    );
    let shown = String::from_utf8(render_show(
        find(&items, &hash(&unparseable)[..12]).unwrap(),
    ))
    .unwrap();
    assert!(shown.contains("4000056655665556"), "{shown}");
}
