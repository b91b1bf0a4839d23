//! The mapping and the reconciliation file read from SSM Parameter Store (moto, through the
//! real SDK with the endpoint override): beyond Lambda's 4 KB environment, pinned to a
//! version, and a missing parameter refused at start by name.

use crate::support::moto;
use aws_sdk_ssm::types::{ParameterTier, ParameterType};
use ledgerbridge_app::parameters;
use ledgerbridge_app::transform::TransformConfig;
use ledgerbridge_core::config::Env;
use ledgerbridge_pipeline::mapping::EXAMPLE;
use ledgerbridge_recon::service::config::{ReconConfig, EXAMPLE as RECON_EXAMPLE};

fn env(pairs: &[(&str, &str)]) -> Env {
    Env::from_map(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

const TRANSFORM: [(&str, &str); 3] = [
    ("LEDGERBRIDGE_COMMANDS_QUEUE_URL", "http://q/commands"),
    ("LEDGERBRIDGE_PARKED_QUEUE_URL", "http://q/parked"),
    ("LEDGERBRIDGE_STRIPE_API_KEY_SECRET_ID", "stripe-key"),
];

/// A company's own mapping, larger than Lambda's whole 4 KB environment: the example with its
/// revenue account changed and 150 products.
fn big_mapping(revenue_account: &str) -> String {
    let mut m = EXAMPLE.replace(
        "revenue_account = \"4000\"\ndefault_method",
        &format!("revenue_account = \"{revenue_account}\"\ndefault_method"),
    );
    assert_ne!(m, EXAMPLE);
    let products: String = (0..150)
        .map(|i| format!("prod_catalogue_{i:04} = \"PART-{i:05}\"\n"))
        .collect();
    m = m.replacen("\n[products]", &format!("\n[products]\n{products}"), 1);
    assert!(m.len() > 4096, "{} bytes", m.len());
    m
}

async fn put(ssm: &aws_sdk_ssm::Client, name: &str, value: &str, kind: ParameterType) {
    ssm.put_parameter()
        .name(name)
        .value(value)
        .r#type(kind)
        .tier(ParameterTier::Advanced)
        .overwrite(true)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_mapping_beyond_4_kb_is_read_from_a_parameter_latest_or_pinned() {
    // GIVEN a SecureString parameter with two versions of a mapping over 4 KB
    let conf = moto::sdk_config().await;
    let ssm = aws_sdk_ssm::Client::new(&conf);
    let name = format!("/ledgerbridge/{}/mapping", moto::unique("it"));
    put(
        &ssm,
        &name,
        &big_mapping("4010"),
        ParameterType::SecureString,
    )
    .await;
    put(
        &ssm,
        &name,
        &big_mapping("4020"),
        ParameterType::SecureString,
    )
    .await;

    // WHEN the transform starts naming the parameter
    let store = ledgerbridge_adapters::aws::ParameterStore::new(ssm.clone());
    let mut vars = TRANSFORM.to_vec();
    vars.push(("LEDGERBRIDGE_MAPPING_PARAMETER", &name));
    let cfg = TransformConfig::from_env(parameters::load_from(env(&vars), &store).await).unwrap();

    // THEN the latest version is in force, every product of it
    assert_eq!(
        cfg.mapping.payments.revenue_account.as_deref(),
        Some("4020")
    );
    assert_eq!(cfg.mapping.products.len(), 152);
    assert_eq!(
        cfg.mapping
            .products
            .get("prod_catalogue_0149")
            .map(String::as_str),
        Some("PART-00149")
    );

    // AND a name pinned to version 1 reads version 1
    let pinned = format!("{name}:1");
    vars.pop();
    vars.push(("LEDGERBRIDGE_MAPPING_PARAMETER", &pinned));
    let cfg = TransformConfig::from_env(parameters::load_from(env(&vars), &store).await).unwrap();
    assert_eq!(
        cfg.mapping.payments.revenue_account.as_deref(),
        Some("4010")
    );

    // AND a version that does not exist is refused by name and version
    let missing_version = format!("{name}:9");
    vars.pop();
    vars.push(("LEDGERBRIDGE_MAPPING_PARAMETER", &missing_version));
    let err =
        TransformConfig::from_env(parameters::load_from(env(&vars), &store).await).unwrap_err();
    assert_eq!(err.problems.len(), 1, "{err}");
    assert!(err.to_string().contains(&name), "{err}");
    assert!(err.to_string().contains("version 9"), "{err}");
}

#[tokio::test]
async fn a_missing_parameter_is_refused_at_start_by_name_with_every_other_problem() {
    let conf = moto::sdk_config().await;
    let store = ledgerbridge_adapters::aws::ParameterStore::new(aws_sdk_ssm::Client::new(&conf));
    let name = format!("/ledgerbridge/{}/mapping", moto::unique("absent"));

    // GIVEN a transform naming a parameter that does not exist, and missing its queue URL
    let vars = [
        ("LEDGERBRIDGE_PARKED_QUEUE_URL", "http://q/parked"),
        ("LEDGERBRIDGE_STRIPE_API_KEY_SECRET_ID", "stripe-key"),
        ("LEDGERBRIDGE_MAPPING_PARAMETER", name.as_str()),
    ];
    let err =
        TransformConfig::from_env(parameters::load_from(env(&vars), &store).await).unwrap_err();

    // THEN both problems are listed: the parameter by name (not again as an unset mapping)
    let text = err.to_string();
    assert_eq!(err.problems.len(), 2, "{text}");
    assert!(
        text.contains(&format!(
            "LEDGERBRIDGE_MAPPING_PARAMETER: SSM parameter {name} not found"
        )),
        "{text}"
    );
    assert!(text.contains("COMMANDS_QUEUE_URL"), "{text}");

    // AND an inline mapping and a parameter together are refused
    let both = [
        TRANSFORM[0],
        TRANSFORM[1],
        TRANSFORM[2],
        ("LEDGERBRIDGE_MAPPING_PARAMETER", name.as_str()),
        ("LEDGERBRIDGE_MAPPING", "[payments]"),
    ];
    let err =
        TransformConfig::from_env(parameters::load_from(env(&both), &store).await).unwrap_err();
    assert!(err.to_string().contains("are both set"), "{err}");
}

#[tokio::test]
async fn the_reconciliation_file_is_read_from_a_string_parameter() {
    let conf = moto::sdk_config().await;
    let ssm = aws_sdk_ssm::Client::new(&conf);
    let store = ledgerbridge_adapters::aws::ParameterStore::new(ssm.clone());
    let name = format!("/ledgerbridge/{}/reconciliation", moto::unique("it"));
    let own = RECON_EXAMPLE.replacen("bank_account = \"1010\"", "bank_account = \"1011\"", 1);
    put(&ssm, &name, &own, ParameterType::String).await;
    let vars = [
        ("LEDGERBRIDGE_COMMANDS_QUEUE_URL", "http://q/commands"),
        ("LEDGERBRIDGE_STATE_TABLE", "state"),
        ("LEDGERBRIDGE_STRIPE_API_KEY_SECRET_ID", "stripe-key"),
        ("LEDGERBRIDGE_ERP_KIND", "sage500"),
        ("LEDGERBRIDGE_RECONCILIATION_PARAMETER", name.as_str()),
    ];
    let cfg = ReconConfig::from_env(parameters::load_from(env(&vars), &store).await).unwrap();
    assert!(!cfg.file_is_example);
    assert_eq!(cfg.file.mapping.bank_account, "1011");
}
