use crate::support::moto;
use ledgerbridge_adapters::sqs_agent::{poll_once, run, AgentConfig};
use ledgerbridge_erp::ErpError;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn handler(
    seen: Arc<Mutex<Vec<String>>>,
) -> impl Fn(String) -> std::future::Ready<Result<(), ErpError>> {
    move |body: String| {
        seen.lock().unwrap().push(body.clone());
        std::future::ready(if body.starts_with("ok") {
            Ok(())
        } else {
            Err(ErpError::Retryable {
                erp: "sage500",
                status: None,
                message: "SQL Server unreachable".into(),
                retry_after: None,
                may_have_committed: false,
            })
        })
    }
}

#[tokio::test]
async fn erp_agent_deletes_handled_messages_and_leaves_failures_for_redelivery() {
    let sqs = aws_sdk_sqs::Client::new(&moto::sdk_config().await);
    let url = sqs
        .create_queue()
        .queue_name(moto::unique("agent"))
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "1",
        )
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap_or_default()
        .to_owned();
    for body in ["ok-1", "fail-1", "ok-2"] {
        sqs.send_message()
            .queue_url(&url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    let mut cfg = AgentConfig::new(&url);
    cfg.wait_time_seconds = 1;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let h = handler(seen.clone());
    let mut total = 0;
    for _ in 0..5 {
        let stats = poll_once(&sqs, &cfg, &h).await.unwrap();
        total += stats.received;
        if total >= 3 {
            break;
        }
    }
    let mut handled = seen.lock().unwrap().clone();
    handled.sort();
    assert_eq!(handled, ["fail-1", "ok-1", "ok-2"]);
    // The failed message comes back after the queue's visibility timeout (1 s here).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(moto::drain(&sqs, &url).await, ["fail-1"]);
}

#[tokio::test]
async fn erp_agent_run_stops_on_shutdown() {
    let sqs = aws_sdk_sqs::Client::new(&moto::sdk_config().await);
    let url = moto::create_queue(&sqs, &moto::unique("agent-run")).await;
    sqs.send_message()
        .queue_url(&url)
        .message_body("ok-run")
        .send()
        .await
        .unwrap();
    let mut cfg = AgentConfig::new(&url);
    cfg.wait_time_seconds = 1;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let s2 = seen.clone();
    let task = tokio::spawn(async move {
        run(&sqs, &cfg, handler(s2), async {
            rx.await.ok();
        })
        .await;
    });
    for _ in 0..50 {
        if !seen.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("agent stopped")
        .unwrap();
    assert_eq!(*seen.lock().unwrap(), ["ok-run"]);
}
