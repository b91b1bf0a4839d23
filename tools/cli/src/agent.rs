//! On-premises agent mode: the erp-post stage as a long-running worker beside the ERP (Sage 500
//! on SQL Server, say). It long-polls the commands queue over outbound HTTPS only, posts each
//! command with the same code as the erp-post Lambda, and keeps intents and cross-references in
//! the same DynamoDB table, so the cloud and the agent never disagree about what was posted.

use ledgerbridge_adapters::aws::{sdk_config, DynamoStore, SqsQueue};
use ledgerbridge_adapters::lambda::RecordOutcome;
use ledgerbridge_adapters::sqs_agent::{run as run_agent, AgentConfig};
use ledgerbridge_app::erp_poll::{self, PollSettings};
use ledgerbridge_app::DEFAULTS;
use ledgerbridge_core::secrets::Secret;
use ledgerbridge_core::SystemClock;
use ledgerbridge_erp::{AnyConnector, ErpError, ErpSettings};
use ledgerbridge_pipeline::mapping::Mapping;
use ledgerbridge_stripe::{StripeClient, StripeClientConfig};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct AgentArgs {
    /// URL of the commands queue (the erp-post Lambda's event source must be disabled or
    /// removed when the agent posts instead).
    #[arg(long, env = "LEDGERBRIDGE_COMMANDS_QUEUE_URL")]
    queue_url: String,
    /// URL of the parked queue.
    #[arg(long, env = "LEDGERBRIDGE_PARKED_QUEUE_URL")]
    parked_queue_url: String,
    /// The DynamoDB state table shared with the cloud functions.
    #[arg(long, env = "LEDGERBRIDGE_STATE_TABLE")]
    state_table: String,
    /// File holding the ERP settings JSON (docs/erp-connectors.md); keep it readable only by
    /// the agent's service account.
    #[arg(long, env = "LEDGERBRIDGE_ERP_SETTINGS_FILE")]
    erp_settings_file: PathBuf,
    /// Mapping configuration (TOML); the shipped example when not given.
    #[arg(long, env = "LEDGERBRIDGE_MAPPING")]
    mapping: Option<PathBuf>,
    /// URL of the ERP events queue: with it, the agent also polls the ERP for customers changed
    /// since its last poll and queues their changes for Stripe (the cloud's erp-post cannot
    /// reach an on-premises ERP to do it).
    #[arg(long, env = "LEDGERBRIDGE_ERP_EVENTS_QUEUE_URL")]
    erp_events_queue_url: Option<String>,
    /// Seconds between ERP polls.
    #[arg(long, env = "LEDGERBRIDGE_ERP_POLL_SECS", default_value_t = 300)]
    erp_poll_secs: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentRunError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Erp(#[from] ErpError),
    #[error(transparent)]
    Mapping(#[from] ledgerbridge_pipeline::mapping::MappingError),
    #[error(transparent)]
    Stripe(#[from] ledgerbridge_stripe::StripeError),
}

pub async fn run(args: AgentArgs) -> Result<(), AgentRunError> {
    let settings_text =
        std::fs::read_to_string(&args.erp_settings_file).map_err(|source| AgentRunError::Read {
            path: args.erp_settings_file.clone(),
            source,
        })?;
    let settings = Secret::new(settings_text);
    let connector = AnyConnector::from_settings(ErpSettings::from_json(&settings)?)?;
    let mapping = match &args.mapping {
        Some(p) => Mapping::from_file(p)?,
        None => Mapping::from_toml(ledgerbridge_pipeline::mapping::EXAMPLE)?,
    };
    let env = ledgerbridge_core::config::Env::from_process();
    let stripe = match env.plain("STRIPE_API_KEY") {
        Some(key) => Some(StripeClient::new(StripeClientConfig::new(Secret::new(
            key,
        )))?),
        None => None,
    };
    let sdk = sdk_config(env.plain("AWS_ENDPOINT_URL").as_deref()).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let stage = ledgerbridge_app::stages::post(
        connector,
        DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &args.state_table),
        stripe,
        mapping,
        SystemClock,
        SqsQueue::new(
            sqs.clone(),
            &args.parked_queue_url,
            DEFAULTS.max_message_bytes,
        ),
        ledgerbridge_app::stages::Lease::Deployed,
    );
    println!(
        "ledgerbridge agent: posting commands from {} to {}",
        args.queue_url,
        ledgerbridge_erp::ErpConnector::erp(&stage.poster.connector)
    );
    let handler = |body: String| {
        let stage = &stage;
        async move {
            match stage.process(&body).await {
                RecordOutcome::Done => Ok(()),
                RecordOutcome::Retry(message) => Err(ErpError::Retryable {
                    erp: "agent",
                    status: None,
                    message,
                    retry_after: None,
                    may_have_committed: false,
                }),
            }
        }
    };
    if let Some(url) = &args.erp_events_queue_url {
        let poll = std::sync::Arc::new(erp_poll::build(
            AnyConnector::from_settings(ErpSettings::from_json(&settings)?)?,
            DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &args.state_table),
            SqsQueue::new(sqs.clone(), url, DEFAULTS.max_message_bytes),
            &PollSettings::default(),
        ));
        println!(
            "ledgerbridge agent: polling the ERP for changed customers every {} s",
            args.erp_poll_secs
        );
        tokio::spawn(crate::local::erp_poll_timer(
            poll,
            std::time::Duration::from_secs(args.erp_poll_secs.max(1)),
        ));
    }
    let shutdown = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    run_agent(&sqs, &AgentConfig::new(&args.queue_url), handler, shutdown).await;
    Ok(())
}
