//! The sample Stripe events (copied from Stripe's published fixtures shapes; ids and amounts are
//! invented) and their recorded signatures.

use serde_json::Value;
use std::path::PathBuf;

pub const SAMPLE_SECRET: &str = "whsec_devset_0000_not_a_real_secret_0000";

pub fn fixtures_dir() -> PathBuf {
    super::moto::repo_root().join("tests/fixtures")
}

pub struct Delivery {
    pub file: String,
    pub event_id: String,
    pub event_type: String,
    pub received_at: i64,
    pub signature: String,
    pub body: Vec<u8>,
}

pub fn deliveries() -> Vec<Delivery> {
    let dir = fixtures_dir().join("stripe");
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("webhook_deliveries.json")).unwrap())
            .unwrap();
    index["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let file = d["file"].as_str().unwrap().to_owned();
            Delivery {
                body: std::fs::read(dir.join(&file)).unwrap(),
                file,
                event_id: d["event_id"].as_str().unwrap().to_owned(),
                event_type: d["type"].as_str().unwrap().to_owned(),
                received_at: d["received_at"].as_i64().unwrap(),
                signature: d["stripe_signature"].as_str().unwrap().to_owned(),
            }
        })
        .collect()
}

pub fn event_body(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join("stripe/events").join(name)).unwrap()
}
