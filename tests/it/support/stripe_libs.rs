//! Independent checks with the official Stripe libraries (Node signs, Python verifies).

use std::io::Write;
use std::process::{Command, Stdio};

fn run(cmd: &mut Command, input: &str) -> String {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{cmd:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

fn ensure_setup() {
    let root = super::moto::repo_root();
    let node_ok = root
        .join("tests/support/node/node_modules/stripe/package.json")
        .exists();
    let py_ok = root.join(".venv/bin/python").exists()
        && Command::new(root.join(".venv/bin/python"))
            .args(["-c", "import stripe"])
            .status()
            .is_ok_and(|s| s.success());
    if !node_ok || !py_ok {
        let status = Command::new("bash")
            .arg(root.join("tests/setup.sh"))
            .status()
            .expect("setup");
        assert!(status.success(), "tests/setup.sh failed");
    }
}

/// `Stripe-Signature` headers from stripe-node's `generateTestHeaderString`, one per request
/// `(payload, secrets, timestamp)`.
pub fn node_sign(requests: &[(String, Vec<String>, i64)]) -> Vec<String> {
    ensure_setup();
    let root = super::moto::repo_root();
    let input: String = requests
        .iter()
        .map(|(p, s, t)| {
            serde_json::json!({"payload": p, "secrets": s, "timestamp": t}).to_string() + "\n"
        })
        .collect();
    let out = run(
        Command::new("node")
            .arg(root.join("tests/support/node/sign.js"))
            .current_dir(root.join("tests/support/node")),
        &input,
    );
    out.lines().map(str::to_owned).collect()
}

/// Results of stripe-python's `Webhook.construct_event` for `(payload, header, secret)`.
pub fn python_verify(requests: &[(String, String, String)]) -> Vec<String> {
    ensure_setup();
    let root = super::moto::repo_root();
    let input: String = requests
        .iter()
        .map(|(p, h, s)| {
            serde_json::json!({"payload": p, "header": h, "secret": s}).to_string() + "\n"
        })
        .collect();
    let out = run(
        Command::new(root.join(".venv/bin/python")).arg(root.join("tests/support/verify.py")),
        &input,
    );
    out.lines().map(str::to_owned).collect()
}
