//! `ledgerbridge parked list|show|replay`: the console's parked-work actions from the command
//! line, over the data directory of `ledgerbridge local` or `serve` (parked messages and every
//! queue's dead letters). Replays are audited in the console's log under `--by`.

use crate::console::embedded::Embedded;
use crate::console::model::{ConsoleError, ReadModel};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ParkedArgs {
    /// The data directory of `ledgerbridge local` or `serve`.
    #[arg(long, default_value = ".local", global = true)]
    pub data_dir: PathBuf,
    /// Act on the AWS deployment instead (`--stack NAME` or `--stack-outputs FILE`).
    #[command(flatten)]
    pub stack: crate::parked_aws::StackArgs,
    #[command(subcommand)]
    pub action: ParkedAction,
}

#[derive(clap::Subcommand)]
pub enum ParkedAction {
    /// Every parked message and dead letter, grouped by reason.
    List,
    /// One message: where it came from, why it stopped, and its body.
    Show {
        /// The id `list` prints (`{queue}:{message id}`).
        id: String,
    },
    /// Send messages back to their queue after the cause is fixed: one id, or every message
    /// of a reason group (`--group`, as `list` prints it).
    Replay {
        /// The id `list` prints.
        id: Option<String>,
        /// Every replayable message of this reason group.
        #[arg(long, conflicts_with = "id")]
        group: Option<String>,
        /// A file with the corrected message (edit and retry); one id only.
        #[arg(long, requires = "id")]
        body_file: Option<PathBuf>,
        /// Who replays (written to the audit log).
        #[arg(long)]
        by: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ParkedError {
    #[error(transparent)]
    Console(#[from] ConsoleError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("give an id or --group")]
    NothingToReplay,
    #[error("{0} message(s) could not be replayed")]
    Failed(usize),
}

/// Where the parked work is.
enum Source {
    Local(Box<Embedded>),
    Aws(crate::parked_aws::AwsParked),
}

impl Source {
    async fn parked(&self) -> Result<Vec<crate::console::model::ParkedView>, ConsoleError> {
        match self {
            Source::Local(m) => m.parked().await,
            Source::Aws(a) => a.list().await,
        }
    }

    async fn replay(
        &self,
        id: &str,
        edited: Option<String>,
        who: &str,
    ) -> Result<crate::console::model::Replayed, ConsoleError> {
        match self {
            Source::Local(m) => m.replay(id, edited, who).await,
            Source::Aws(a) => a.replay(id, edited, who).await,
        }
    }

    async fn audit(&self, who: &str, action: &str, target: &str) -> Result<(), ConsoleError> {
        match self {
            Source::Local(m) => m.audit(who, action, target).await,
            Source::Aws(a) => a.audit(who, action, target, "").await,
        }
    }
}

pub async fn run(args: ParkedArgs) -> Result<(), ParkedError> {
    let model = match args.stack.connect().await? {
        Some((sdk, stack)) => Source::Aws(crate::parked_aws::AwsParked::new(
            aws_sdk_sqs::Client::new(&sdk),
            aws_sdk_dynamodb::Client::new(&sdk),
            stack,
        )),
        None => Source::Local(Box::new(Embedded::open(&args.data_dir, None)?)),
    };
    match args.action {
        ParkedAction::List => {
            let items = model.parked().await?;
            if items.is_empty() {
                println!("nothing parked, no dead letters");
            }
            let mut groups: Vec<&str> = items.iter().map(|p| p.group.as_str()).collect();
            groups.dedup();
            groups.sort_unstable();
            groups.dedup();
            for g in groups {
                let list: Vec<_> = items.iter().filter(|p| p.group == g).collect();
                println!("{g}  ({})", list.len());
                for p in list {
                    println!(
                        "  {:<52} {:<40} → {:<10} {}",
                        p.id,
                        p.subject,
                        p.target.as_deref().unwrap_or("(sweep)"),
                        p.reason
                    );
                }
            }
        }
        ParkedAction::Show { id } => {
            let items = model.parked().await?;
            let p = items
                .iter()
                .find(|p| p.id == id)
                .ok_or_else(|| ConsoleError::NotFound(id.clone()))?;
            model.audit("cli", "view message", &id).await?;
            println!("id        {}", p.id);
            println!("stage     {}", p.stage);
            println!("subject   {}", p.subject);
            println!("reason    {}", p.reason);
            println!(
                "replay to {}",
                p.target
                    .as_deref()
                    .unwrap_or("(not replayable; the payout sweep reconsiders it)")
            );
            println!("receives  {}", p.receive_count);
            if let Some(b) = &p.body {
                let pretty = serde_json::from_str::<serde_json::Value>(b)
                    .ok()
                    .and_then(|v| serde_json::to_string_pretty(&v).ok())
                    .unwrap_or_else(|| b.clone());
                println!("{pretty}");
            }
        }
        ParkedAction::Replay {
            id,
            group,
            body_file,
            by,
        } => {
            let ids: Vec<String> = match (id, group) {
                (Some(id), _) => vec![id],
                (None, Some(g)) => model
                    .parked()
                    .await?
                    .into_iter()
                    .filter(|p| p.group == g && p.target.is_some())
                    .map(|p| p.id)
                    .collect(),
                (None, None) => return Err(ParkedError::NothingToReplay),
            };
            let edited = match body_file {
                Some(path) => Some(
                    std::fs::read_to_string(&path)
                        .map_err(|source| ParkedError::Read { path, source })?,
                ),
                None => None,
            };
            let mut failed = 0;
            for id in ids {
                match model
                    .replay(&id, edited.clone(), &format!("cli: {by}"))
                    .await
                {
                    Ok(r) => println!(
                        "{} → {} queue{}",
                        r.id,
                        r.queue,
                        if r.edited { " (edited)" } else { "" }
                    ),
                    Err(e) => {
                        eprintln!("{id}: {e}");
                        failed += 1;
                    }
                }
            }
            if failed > 0 {
                return Err(ParkedError::Failed(failed));
            }
        }
    }
    Ok(())
}
