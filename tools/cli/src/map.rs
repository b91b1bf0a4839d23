//! `ledgerbridge map`: preview the ERP commands an event file would produce with a mapping
//! configuration, without posting anything.

use crate::sample_stripe::SampleStripe;
use ledgerbridge_core::event::Event;
use ledgerbridge_core::secrets::Secret;
use ledgerbridge_pipeline::mapping::Mapping;
use ledgerbridge_pipeline::outcome::Outcome;
use ledgerbridge_pipeline::to_erp::transform;
use ledgerbridge_stripe::{StripeClient, StripeClientConfig};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct MapArgs {
    /// A Stripe event JSON file (as Stripe sends it).
    event: PathBuf,
    /// Mapping configuration (TOML); the shipped example when not given.
    #[arg(long)]
    mapping: Option<PathBuf>,
    /// Sample Stripe data answering the reads some events need, when `STRIPE_API_KEY` is not set.
    #[arg(long, default_value = "tests/fixtures/stripe")]
    samples: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a Stripe event: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Mapping(#[from] ledgerbridge_pipeline::mapping::MappingError),
    #[error(transparent)]
    Stripe(#[from] ledgerbridge_stripe::StripeError),
    #[error("the event cannot be booked: {0}")]
    Transform(String),
    #[error("cannot start the sample Stripe API: {0}")]
    Serve(std::io::Error),
}

pub async fn run(args: MapArgs) -> Result<(), MapError> {
    let text = std::fs::read(&args.event).map_err(|source| MapError::Read {
        path: args.event.clone(),
        source,
    })?;
    let event: Event = serde_json::from_slice(&text).map_err(|source| MapError::Parse {
        path: args.event.clone(),
        source,
    })?;
    let mapping = match &args.mapping {
        Some(p) => Mapping::from_file(p)?,
        None => Mapping::from_toml(ledgerbridge_pipeline::mapping::EXAMPLE)?,
    };
    let env = ledgerbridge_core::config::Env::from_process();
    let stripe = match env.plain("STRIPE_API_KEY") {
        Some(key) => StripeClient::new(StripeClientConfig::new(Secret::new(key)))?,
        None => {
            let base = SampleStripe::load(&args.samples)
                .serve()
                .await
                .map_err(MapError::Serve)?;
            StripeClient::new(
                StripeClientConfig::new(Secret::new("sk_test_local_samples".to_owned()))
                    .with_base_url(base),
            )?
        }
    };
    match transform(&mapping, &stripe, &event)
        .await
        .map_err(|e| MapError::Transform(e.to_string()))?
    {
        Outcome::Commands(cmds) => {
            println!(
                "{} ({}) → {} ERP command(s):",
                event.id,
                event.event_type,
                cmds.len()
            );
            for c in cmds {
                let text = serde_json::to_string_pretty(&c).unwrap_or_default();
                println!("{text}");
            }
        }
        Outcome::CustomerFields(f) => {
            println!(
                "{} ({}) → values for the ERP customer of {}:",
                event.id, event.event_type, f.customer.stripe_customer
            );
            println!("{}", serde_json::to_string_pretty(&f).unwrap_or_default());
        }
        Outcome::Skipped(reason) => println!(
            "{} ({}) → nothing to book: {reason}",
            event.id, event.event_type
        ),
    }
    Ok(())
}
