//! Starts moto in server mode on a free loopback port, once per test binary, and builds real
//! AWS SDK clients pointed at it. moto is installed by `tests/setup.sh` when it is missing.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub struct Moto {
    pub endpoint: String,
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn moto_binary() -> PathBuf {
    let venv = repo_root().join(".venv/bin/moto_server");
    if !venv.exists() {
        let status = Command::new("bash")
            .arg(repo_root().join("tests/setup.sh"))
            .status()
            .expect("run tests/setup.sh");
        assert!(
            status.success(),
            "tests/setup.sh failed: cannot install moto"
        );
    }
    venv
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The shared moto server (started on first use).
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| {
        let bin = moto_binary();
        let port = free_port();
        let log = std::env::temp_dir().join(format!("ledgerbridge-moto-{port}.log"));
        // A watchdog shell owns moto and kills it when this test process exits, whatever way.
        let script = format!(
            "parent=$PPID; \"{bin}\" -H 127.0.0.1 -p {port} >\"{log}\" 2>&1 & m=$!; \
             while kill -0 $parent 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 1; done; kill $m 2>/dev/null",
            bin = bin.display(),
            log = log.display()
        );
        // The watchdog shell outlives this handle on purpose: it reaps moto itself when the
        // test process exits, so nothing here waits on it.
        #[allow(clippy::zombie_processes)]
        let _watchdog = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
        let endpoint = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "moto did not start; see {}", log.display());
            std::thread::sleep(Duration::from_millis(50));
        }
        Moto { endpoint }
    })
}

pub async fn sdk_config() -> aws_config::SdkConfig {
    let m = moto();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&m.endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .load()
        .await
}

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

pub async fn create_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> String {
    sqs.create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("create queue")
        .queue_url()
        .unwrap_or_default()
        .to_owned()
}

/// Receive everything currently on the queue (several polls, no long wait).
pub async fn drain(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..20 {
        let resp = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        let msgs = resp.messages();
        if msgs.is_empty() {
            break;
        }
        for m in msgs {
            out.push(m.body().unwrap_or_default().to_owned());
            if let Some(h) = m.receipt_handle() {
                sqs.delete_message()
                    .queue_url(url)
                    .receipt_handle(h)
                    .send()
                    .await
                    .expect("delete");
            }
        }
    }
    out
}

pub async fn create_state_table(ddb: &aws_sdk_dynamodb::Client, name: &str) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    ddb.create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attr"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .send()
        .await
        .expect("create table");
}
