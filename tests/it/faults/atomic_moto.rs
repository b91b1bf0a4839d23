//! A moto server of its own whose DynamoDB item operations and SQS message operations run one
//! at a time.
//!
//! moto's server handles requests on many threads and its backends take no lock:
//! - two conditional `PutItem`s on the same key arriving at the same instant can both pass the
//!   condition (measured: 204 acquisitions for 200 keys with 50 racing workers), where DynamoDB
//!   applies conditional writes to one item atomically — a lock race against plain moto tests
//!   the emulator, not the claim;
//! - ten pollers receiving from one queue with a redrive policy make moto fail with a 500
//!   (`list.remove(x): x not in list` in its receive).
//!
//! This instance wraps those backend operations in one lock (HTTP is still served on many
//! threads; no call here long-polls, which would hold the lock); everything else is the same
//! moto. Rows that need many concurrent pollers or racing claims use it.

use crate::support::moto::repo_root;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const LAUNCHER: &str = r#"
import functools, sys, threading
from moto.dynamodb.models import DynamoDBBackend
from moto.sqs.models import SQSBackend
lock = threading.RLock()
def atomic(f):
    @functools.wraps(f)
    def g(*a, **k):
        with lock:
            return f(*a, **k)
    return g
for name in ("put_item", "get_item", "update_item", "delete_item", "transact_write_items"):
    setattr(DynamoDBBackend, name, atomic(getattr(DynamoDBBackend, name)))
for name in ("send_message", "send_message_batch", "receive_message", "delete_message",
             "delete_message_batch", "change_message_visibility", "change_message_visibility_batch",
             "get_queue_attributes"):
    setattr(SQSBackend, name, atomic(getattr(SQSBackend, name)))
from moto.server import main
main(["-H", "127.0.0.1", "-p", sys.argv[1]])
"#;

fn endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| {
        // The shared instance installs moto when it is missing.
        let _ = crate::support::moto::moto();
        let python = repo_root().join(".venv/bin/python");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let log = std::env::temp_dir().join(format!("ledgerbridge-moto-atomic-{port}.log"));
        let launcher = std::env::temp_dir().join(format!("ledgerbridge-moto-atomic-{port}.py"));
        std::fs::write(&launcher, LAUNCHER).expect("write the launcher");
        // As for the shared instance: a watchdog shell stops moto when the test process exits.
        let script = format!(
            "parent=$PPID; \"{python}\" \"{launcher}\" {port} >\"{log}\" 2>&1 & m=$!; \
             while kill -0 $parent 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 1; done; kill $m 2>/dev/null",
            python = python.display(),
            launcher = launcher.display(),
            log = log.display()
        );
        #[allow(clippy::zombie_processes)]
        let _watchdog = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto did not start; see {}",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        format!("http://127.0.0.1:{port}")
    })
}

pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .load()
        .await
}
