//! E8 — the ERP credentials are rotated mid-run (a new value in Secrets Manager; the ERP
//! rejects the old one). The connector erp-post builds re-reads the secret on the 401, sends
//! the request once more, and carries on; nothing in the log holds either value.
//! Figure (at figure): 0 failures beyond one retry each; 0 log lines containing the secret.

use super::journal;
use crate::faults::d5::Capture;
use crate::support::moto;
use ledgerbridge_adapters::aws::SecretsManagerSource;
use ledgerbridge_core::secrets::Secret;
use ledgerbridge_erp::{post_command, AnyConnector, ErpErrorKind, ErpSettings, RetryPolicy};
use ledgerbridge_erp_sandbox::{ErpKind, SandboxKeys};
use serde_json::json;

const DOCS: usize = 34;

#[tokio::test]
async fn e8_rotated_erp_credentials_are_refreshed_once_and_never_logged() {
    let capture = Capture::default();
    let _guard = capture.install();
    let sb = crate::pipeline::sandbox(ErpKind::SagePro).await;
    let conf = moto::sdk_config().await;
    let sm = aws_sdk_secretsmanager::Client::new(&conf);
    let name = moto::unique("e8-erp");
    let settings = |key: &str| {
        json!({"kind": "sagepro", "base_url": sb.base_url(), "timeout_ms": 5000, "api_key": key})
            .to_string()
    };
    let old_key = "e8-old-key-9f1c2d7a";
    let new_key = "e8-new-key-4b8e0a51";
    sb.set_keys(SandboxKeys {
        sagepro_api_key: old_key.into(),
        ..sb.keys()
    });
    sm.create_secret()
        .name(&name)
        .secret_string(settings(old_key))
        .send()
        .await
        .unwrap();
    let source = SecretsManagerSource::new(sm.clone());
    let initial = Secret::new(settings(old_key));
    let connector =
        ledgerbridge_app::erp_post::refreshing_connector(&source, &name, &initial).unwrap();
    let fixed = AnyConnector::from_settings(ErpSettings::from_json(&initial).unwrap()).unwrap();
    // No retries at all: the connector's own refresh-and-resend is the one retry allowed.
    let once = RetryPolicy::none();
    let commands: Vec<_> = (0..DOCS).map(|i| journal(&format!("e8x{i}"))).collect();
    for (i, cmd) in commands.iter().enumerate() {
        if i == 10 {
            // Rotation: the new value is stored, the ERP accepts only it from now on.
            sm.put_secret_value()
                .secret_id(&name)
                .secret_string(settings(new_key))
                .send()
                .await
                .unwrap();
            sb.set_keys(SandboxKeys {
                sagepro_api_key: new_key.into(),
                ..sb.keys()
            });
        }
        let out = post_command(&connector, cmd, &once).await;
        assert!(out.is_ok(), "document {i}: {:?}", out.err());
    }
    super::assert_each_once(&sb, ErpKind::SagePro, &commands);
    // A connector that read the secret once (the old behaviour) fails after the rotation.
    let err = post_command(&fixed, &journal("e8late"), &once)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErpErrorKind::Authentication);
    let log = capture.text();
    assert!(
        log.contains("refreshed once and retrying"),
        "the refresh happened"
    );
    for secret in [old_key, new_key] {
        assert!(!log.contains(secret), "a credential reached the log");
    }
    sb.shutdown().await;
}
