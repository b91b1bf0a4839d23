//! Crash safety of the embedded pipeline (`ledgerbridge serve` on its durable queues).
//!
//! The pipeline runs in a real child process (this test binary, re-executed to run the
//! `ledgerbridge serve` command), posting into the ERP sandbox in this process, with Stripe's API
//! faked here too. The test delivers signed events, kills the child with SIGKILL at random
//! points (after some acknowledgements, after the ERP committed some documents, at a random
//! moment of processing), restarts it on the same data directory, and redelivers what Stripe
//! would: every event it did not acknowledge, plus some it did (Stripe delivers at least once).
//! At the end every document exists exactly once and every event was acknowledged.

use crate::pipeline::{assert_each_once, creates, sagepro, sandbox, synthetic};
use ledgerbridge_core::webhook::sign_header;
use ledgerbridge_erp_sandbox::{ErpKind, SandboxHandle};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The child's arguments travel in this variable (one per line).
const CHILD_ARGS: &str = "LEDGERBRIDGE_TEST_CHILD_ARGS";
const SECRET: &str = "whsec_crash_test_secret";

/// Entry point of the child process, not a test of its own: the crash test starts this binary
/// with `--ignored --exact crash::child_process` and the command line in [`CHILD_ARGS`].
#[test]
#[ignore = "the crash test's child process; run by crash::killed_*"]
fn child_process() {
    let Some(args) = ledgerbridge_core::config::Env::from_process().plain(CHILD_ARGS) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let code = rt.block_on(ledgerbridge_cli::run_cli(
        std::iter::once("ledgerbridge".to_owned()).chain(args.lines().map(str::to_owned)),
    ));
    // The exit code of the command is the child's (a test harness would print its own).
    std::process::exit(if code == std::process::ExitCode::SUCCESS {
        0
    } else {
        1
    });
}

/// A small deterministic generator (xorshift), seeded from the clock; the seed is printed so a
/// failing run can be repeated with `LEDGERBRIDGE_CRASH_SEED`.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Serve {
    child: Child,
    url: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(dir: &Path, stripe_base: &str, round: usize) -> Serve {
    let port = free_port();
    let args = [
        "serve".to_owned(),
        format!("--listen=127.0.0.1:{port}"),
        format!("--data-dir={}", dir.join("data").display()),
        format!("--erp-settings-file={}", dir.join("erp.json").display()),
        format!("--mapping={}", dir.join("mapping.toml").display()),
        format!(
            "--reconciliation={}",
            dir.join("reconciliation.toml").display()
        ),
        "--sweep-secs=0".to_owned(),
        "--erp-poll-secs=0".to_owned(),
        "--shutdown-grace-secs=20".to_owned(),
    ];
    let log = std::fs::File::create(dir.join(format!("serve-{round}.log"))).unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "crash::child_process",
            "--nocapture",
        ])
        .env(CHILD_ARGS, args.join("\n"))
        .env("STRIPE_API_KEY", "sk_test_crash")
        .env("LEDGERBRIDGE_STRIPE_API_BASE", stripe_base)
        .env("LEDGERBRIDGE_WEBHOOK_SECRETS", SECRET)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    Serve {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

async fn health(http: &reqwest::Client, url: &str) -> Option<serde_json::Value> {
    let r = http.get(format!("{url}/health")).send().await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

async fn wait_healthy(http: &reqwest::Client, serve: &mut Serve, dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if health(http, &serve.url).await.is_some() {
            return;
        }
        if let Some(status) = serve.child.try_wait().unwrap() {
            panic!(
                "serve exited with {status} at start; log in {}",
                dir.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("serve did not become healthy; log in {}", dir.display());
}

/// Deliver `which` events (8 at a time, as Stripe delivers concurrently); record each one
/// answered 2xx in `acked`.
async fn deliver(
    http: &reqwest::Client,
    url: &str,
    events: &Arc<Vec<Vec<u8>>>,
    which: Vec<usize>,
    acked: &Arc<Mutex<HashSet<usize>>>,
    acks_this_round: &Arc<AtomicUsize>,
) {
    use futures::StreamExt;
    futures::stream::iter(which)
        .for_each_concurrent(8, |i| {
            let (http, events, acked, acks) = (
                http.clone(),
                events.clone(),
                acked.clone(),
                acks_this_round.clone(),
            );
            let url = format!("{url}/webhook");
            async move {
                let body = events[i].clone();
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs() as i64;
                let header = sign_header(&[SECRET], now, &body);
                let sent = http
                    .post(url)
                    .header("stripe-signature", header)
                    .header("content-type", "application/json")
                    .body(body)
                    .timeout(Duration::from_secs(20))
                    .send()
                    .await;
                if let Ok(resp) = sent {
                    if resp.status().is_success() {
                        acked.lock().unwrap().insert(i);
                        acks.fetch_add(1, Ordering::SeqCst);
                    } else {
                        // A 4xx would be a bug (nothing here is malformed); 5xx is retried.
                        assert!(
                            resp.status().is_server_error(),
                            "event {i} answered {}",
                            resp.status()
                        );
                    }
                }
            }
        })
        .await;
}

#[derive(Debug, Clone, Copy)]
enum KillPoint {
    /// Once this many deliveries of the round were acknowledged.
    AfterAcks(usize),
    /// Once the ERP has committed this many more documents.
    AfterErpCommits(usize),
    /// This long after the round's first delivery, wherever the pipeline is.
    After(Duration),
}

async fn kill_when(point: KillPoint, serve: &mut Serve, sb: &SandboxHandle, acks: &AtomicUsize) {
    let base = creates(sb, ErpKind::SagePro);
    let started = Instant::now();
    // If the point is never reached (the round ran out of work first), kill after 30 s anyway:
    // still a kill with whatever is left in flight.
    while started.elapsed() < Duration::from_secs(30) {
        let reached = match point {
            KillPoint::AfterAcks(n) => acks.load(Ordering::SeqCst) >= n,
            KillPoint::AfterErpCommits(n) => creates(sb, ErpKind::SagePro) >= base + n,
            KillPoint::After(d) => started.elapsed() >= d,
        };
        if reached {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    serve.child.kill().unwrap(); // SIGKILL
    serve.child.wait().unwrap();
}

fn write_config(dir: &Path, sb: &SandboxHandle) {
    let settings = serde_json::json!({"kind": "sagepro", "base_url": sb.base_url(),
        "timeout_ms": 5000, "api_key": sb.keys().sagepro_api_key});
    std::fs::write(dir.join("erp.json"), settings.to_string()).unwrap();
    std::fs::write(
        dir.join("mapping.toml"),
        ledgerbridge_pipeline::mapping::EXAMPLE,
    )
    .unwrap();
    std::fs::write(
        dir.join("reconciliation.toml"),
        ledgerbridge_recon::service::config::EXAMPLE,
    )
    .unwrap();
}

/// GIVEN ~200 signed events (customers, payments reported twice, refunds) WHEN `serve` is
/// killed with SIGKILL four times at random points (after acknowledgements, after ERP commits,
/// at random moments), restarted on the same data directory each time, and Stripe redelivers
/// what was not acknowledged (and some of what was) THEN every ERP document exists exactly once,
/// every event was acknowledged, nothing was dead-lettered or parked, and a final SIGTERM stops
/// the process cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_points_serve_loses_and_doubles_nothing() {
    let seed = ledgerbridge_core::config::Env::from_process()
        .optional("CRASH_SEED")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("crash test seed {seed} (LEDGERBRIDGE_CRASH_SEED to repeat)");
    let mut rng = Rng(seed);
    let (events, expected, fake) = synthetic(60);
    let n = events.len();
    let events = Arc::new(events);
    let stripe_base = fake.serve().await;
    let sb = sandbox(ErpKind::SagePro).await;
    let dir: PathBuf =
        std::env::temp_dir().join(format!("lb-crash-{}-{}", std::process::id(), seed));
    std::fs::create_dir_all(&dir).unwrap();
    write_config(&dir, &sb);
    let http = reqwest::Client::new();
    let acked: Arc<Mutex<HashSet<usize>>> = Arc::default();

    // Four kills, one per round: after acknowledgements (events durable, not yet processed),
    // after ERP commits (twice: mid-posting, with write-backs and cross-references pending),
    // and at a random moment (anywhere, transform included). Each point is drawn from the
    // round's own work, so it falls inside it.
    let kinds = ["acks", "commits", "timer", "commits"];
    for (round, kind) in kinds.iter().enumerate() {
        let mut serve = start(&dir, &stripe_base, round);
        wait_healthy(&http, &mut serve, &dir).await;
        // What Stripe would deliver now: everything not acknowledged, and, after a crash, a
        // few acknowledged events again.
        let done = acked.lock().unwrap().clone();
        let mut which: Vec<usize> = (0..n).filter(|i| !done.contains(i)).collect();
        which.extend(done.iter().filter(|_| rng.below(10) == 0));
        let docs_left = expected
            .len()
            .saturating_sub(creates(&sb, ErpKind::SagePro));
        let point = match *kind {
            "acks" => KillPoint::AfterAcks(1 + rng.below(which.len() as u64 / 2) as usize),
            "commits" => KillPoint::AfterErpCommits(1 + rng.below(docs_left as u64 / 3) as usize),
            _ => KillPoint::After(Duration::from_millis(50 + rng.below(1500))),
        };
        let acks = Arc::new(AtomicUsize::new(0));
        let delivery = tokio::spawn({
            let (http, url, events, acked, acks) = (
                http.clone(),
                serve.url.clone(),
                events.clone(),
                acked.clone(),
                acks.clone(),
            );
            async move { deliver(&http, &url, &events, which, &acked, &acks).await }
        });
        kill_when(point, &mut serve, &sb, &acks).await;
        delivery.await.unwrap();
        println!(
            "round {round}: killed at {point:?}; {} of {n} events acknowledged, {} documents in the ERP",
            acked.lock().unwrap().len(),
            creates(&sb, ErpKind::SagePro)
        );
    }

    // The last start: Stripe retries the rest and redelivers some acknowledged events again.
    let mut serve = start(&dir, &stripe_base, kinds.len());
    wait_healthy(&http, &mut serve, &dir).await;
    let done = acked.lock().unwrap().clone();
    let mut which: Vec<usize> = (0..n).filter(|i| !done.contains(i)).collect();
    which.extend(done.iter().filter(|_| rng.below(5) == 0));
    let acks = Arc::new(AtomicUsize::new(0));
    deliver(&http, &serve.url, &events, which, &acked, &acks).await;
    assert_eq!(
        acked.lock().unwrap().len(),
        n,
        "every event is acknowledged once the process runs"
    );

    // Wait until the queues are empty and the ERP has every document.
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut last = serde_json::Value::Null;
    loop {
        if let Some(h) = health(&http, &serve.url).await {
            let empty = [
                "events",
                "commands",
                "reconciliation",
                "erp-events",
                "parked",
            ]
            .iter()
            .all(|q| h["queues"][q]["depth"] == 0);
            if empty && h["in_flight"] == 0 && creates(&sb, ErpKind::SagePro) >= expected.len() {
                last = h;
                break;
            }
            last = h;
        }
        assert!(
            Instant::now() < deadline,
            "not settled: {last}; {} of {} documents; log in {}",
            creates(&sb, ErpKind::SagePro),
            expected.len(),
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for q in [
        "events",
        "commands",
        "reconciliation",
        "erp-events",
        "parked",
    ] {
        assert_eq!(
            last["queues"][q]["dead_letters"], 0,
            "{q} dead letters: {last}"
        );
    }
    assert_each_once(&sb, ErpKind::SagePro, &sagepro(&sb), &expected).await;

    // Graceful shutdown on SIGTERM: the process exits by itself, successfully.
    let pid = serve.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let stopped = Instant::now();
    let status = loop {
        if let Some(s) = serve.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(30),
            "no exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit after SIGTERM: {status}");
    std::fs::remove_dir_all(&dir).ok();
}
