//! The local Stripe stand-in pages a list like Stripe: `limit`, `starting_after`, `has_more`.

use super::SampleStripe;
use serde_json::{json, Value};

/// A stand-in holding 25 payouts (created 1..=25), served on a loopback port.
async fn serve_payouts() -> String {
    let s = SampleStripe::default();
    if let Ok(mut d) = s.data.lock() {
        for i in 1..=25 {
            d.objects.insert(
                format!("payouts/po_{i:02}"),
                json!({"id": format!("po_{i:02}"), "object": "payout", "status": "paid",
                    "created": i, "arrival_date": i}),
            );
        }
    }
    s.serve().await.unwrap()
}

async fn get(url: &str) -> (u16, Value) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_multi_page_list_is_paged_with_starting_after_and_has_more() {
    let base = serve_payouts().await;
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let url = match &after {
            Some(a) => format!("{base}/v1/payouts?status=paid&limit=10&starting_after={a}"),
            None => format!("{base}/v1/payouts?status=paid&limit=10"),
        };
        let (status, page) = get(&url).await;
        assert_eq!(status, 200);
        pages += 1;
        assert!(pages <= 3, "paged past the end: {page}");
        let these = ids(&page);
        after = these.last().cloned();
        seen.extend(these);
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
    }
    assert_eq!(pages, 3);
    // Newest first, each payout once.
    let expected: Vec<String> = (1..=25).rev().map(|i| format!("po_{i:02}")).collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn the_default_page_is_ten_and_an_unknown_cursor_is_a_400() {
    let base = serve_payouts().await;
    let (_, page) = get(&format!("{base}/v1/payouts")).await;
    assert_eq!(ids(&page).len(), 10);
    assert_eq!(page["has_more"], json!(true));
    let (status, body) = get(&format!("{base}/v1/payouts?starting_after=po_nope")).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], json!("starting_after"));
}
