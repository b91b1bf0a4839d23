//! `ledgerbridge config check`: the deploy-time check of the configuration files, run by a
//! pipeline before `sam deploy`. The same checks the functions run at start, on the files
//! themselves: syntax and keys (every problem with its line), GL accounts that are empty,
//! placeholder-like or all still the example's numbers, the shipped examples themselves, and
//! the company time zone named alike in both files (and as the deployment's `--time-zone`).
//! Prints every problem; exits non-zero when there is one.

use ledgerbridge_erp::CompanyTimeZone;
use ledgerbridge_pipeline::mapping::{self, Mapping};
use ledgerbridge_recon::service::config::{self as recon_config, ReconFile};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(clap::Subcommand)]
pub enum ConfigCommand {
    /// Check the mapping and reconciliation files before a deployment: every problem listed,
    /// non-zero exit on any.
    Check(CheckArgs),
}

#[derive(clap::Args)]
pub struct CheckArgs {
    /// The mapping (TOML) the deployment gives transform and erp-post.
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// The reconciliation file (TOML) the deployment gives payout-reconciliation.
    #[arg(long)]
    pub reconciliation: Option<PathBuf>,
    /// The deployment's company time zone (the template's CompanyTimeZone): both files must
    /// name it.
    #[arg(long)]
    pub time_zone: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigCheckError {
    #[error("name at least one file: --mapping and/or --reconciliation")]
    NothingToCheck,
    #[error("{0} configuration problem(s)")]
    Failed(usize),
}

pub fn run(args: ConfigArgs) -> Result<(), ConfigCheckError> {
    match args.command {
        ConfigCommand::Check(a) => {
            let problems = check(&a)?;
            for p in &problems {
                println!("PROBLEM  {p}");
            }
            if problems.is_empty() {
                println!("configuration OK");
                Ok(())
            } else {
                Err(ConfigCheckError::Failed(problems.len()))
            }
        }
    }
}

/// Every problem of the files `args` names.
pub fn check(args: &CheckArgs) -> Result<Vec<String>, ConfigCheckError> {
    if args.mapping.is_none() && args.reconciliation.is_none() {
        return Err(ConfigCheckError::NothingToCheck);
    }
    let mut problems = Vec::new();
    let read = |path: &PathBuf, problems: &mut Vec<String>| match std::fs::read_to_string(path) {
        Ok(t) => Some(t),
        Err(e) => {
            problems.push(format!("{}: cannot read: {e}", path.display()));
            None
        }
    };
    let mut zones: Vec<(String, CompanyTimeZone)> = Vec::new();
    if let Some(path) = &args.mapping {
        let shown = path.display().to_string();
        if let Some(text) = read(path, &mut problems) {
            if text.trim() == mapping::EXAMPLE.trim() {
                problems.push(format!(
                    "{shown}: is the shipped example mapping (placeholder items and GL accounts)"
                ));
            } else {
                match Mapping::from_toml(&text) {
                    Ok(m) => {
                        problems.extend(
                            m.account_problems(false)
                                .into_iter()
                                .map(|p| format!("{shown}: {p}")),
                        );
                        zones.push((
                            format!("{shown} defaults.time_zone"),
                            m.defaults.time_zone.clone(),
                        ));
                    }
                    Err(e) => problems.extend(e.problems.iter().map(|p| format!("{shown}: {p}"))),
                }
            }
        }
    }
    if let Some(path) = &args.reconciliation {
        let shown = path.display().to_string();
        if let Some(text) = read(path, &mut problems) {
            if text.trim() == recon_config::EXAMPLE.trim() {
                problems.push(format!(
                    "{shown}: is the shipped example reconciliation file (placeholder GL accounts)"
                ));
            } else {
                match ReconFile::from_toml(&text) {
                    Ok(f) => {
                        problems.extend(
                            f.account_problems(false)
                                .into_iter()
                                .map(|p| format!("{shown}: {p}")),
                        );
                        zones.push((
                            format!("{shown} posting.time_zone"),
                            f.posting.time_zone.clone(),
                        ));
                    }
                    Err(e) => problems.push(format!("{shown}: {e}")),
                }
            }
        }
    }
    match args.time_zone.as_deref().map(CompanyTimeZone::parse) {
        Some(Ok(deployment)) => {
            for (key, zone) in &zones {
                if *zone != deployment {
                    problems.push(format!(
                        "{key} = {:?} differs from --time-zone {:?} (the deployment's CompanyTimeZone)",
                        zone.name(),
                        deployment.name()
                    ));
                }
            }
        }
        Some(Err(e)) => problems.push(format!("--time-zone: {e}")),
        None => {
            if let [(a_key, a), (b_key, b)] = zones.as_slice() {
                if a != b {
                    problems.push(format!(
                        "{a_key} = {:?} and {b_key} = {:?} differ: name the company's time zone in both",
                        a.name(),
                        b.name()
                    ));
                }
            }
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A directory of its own per test (removed first if left by an earlier run).
    fn dir(test: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lb-config-check-{}-{test}", std::process::id()));
        if d.exists() {
            std::fs::remove_dir_all(&d).unwrap();
        }
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn file(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn args(m: Option<PathBuf>, r: Option<PathBuf>, tz: Option<&str>) -> CheckArgs {
        CheckArgs {
            mapping: m,
            reconciliation: r,
            time_zone: tz.map(str::to_owned),
        }
    }

    #[test]
    fn own_files_that_agree_pass() {
        let dir = dir("agree");
        let m = file(
            &dir,
            "m.toml",
            &mapping::EXAMPLE.replace("\"4000\"", "\"4010\""),
        );
        let r = file(
            &dir,
            "r.toml",
            &recon_config::EXAMPLE.replacen(
                "bank_account = \"1010\"",
                "bank_account = \"1011\"",
                1,
            ),
        );
        assert_eq!(
            check(&args(Some(m.clone()), Some(r.clone()), None)).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            check(&args(Some(m), Some(r), Some("UTC"))).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn every_problem_of_both_files_is_listed() {
        let dir = dir("every");
        // The mapping: two placeholders and Chicago; the reconciliation file: the example's
        // accounts unchanged, an empty fee account, and UTC.
        let m = mapping::EXAMPLE
            .replace(
                "revenue_account = \"4000\"\ndefault_method",
                "revenue_account = \"TODO\"\ndefault_method",
            )
            .replace("tax_account = \"2200\"", "tax_account = \"<sales tax>\"")
            .replace("time_zone = \"UTC\"", "time_zone = \"America/Chicago\"");
        let m = file(&dir, "m.toml", &m);
        let r = recon_config::EXAMPLE.replace("days = 3", "days = 4");
        let r = file(&dir, "r.toml", &r);
        let problems = check(&args(Some(m.clone()), Some(r.clone()), None)).unwrap();
        let text = problems.join("\n");
        assert_eq!(problems.len(), 4, "{text}");
        assert!(
            text.contains("payments.revenue_account = \"TODO\" is a placeholder"),
            "{text}"
        );
        assert!(
            text.contains("invoices.tax_account = \"<sales tax>\" is a placeholder"),
            "{text}"
        );
        assert!(
            text.contains("every GL account is still the shipped example's"),
            "{text}"
        );
        assert!(text.contains("\"America/Chicago\" and"), "{text}");
        // The deployment's zone named: each file is compared with it.
        let problems = check(&args(Some(m), Some(r), Some("Europe/Berlin"))).unwrap();
        assert_eq!(
            problems
                .iter()
                .filter(|p| p.contains("differs from --time-zone"))
                .count(),
            2,
            "{problems:?}"
        );
    }

    #[test]
    fn the_examples_and_a_syntax_error_are_refused() {
        let dir = dir("examples");
        let m = file(&dir, "m.toml", mapping::EXAMPLE);
        let r = file(&dir, "r.toml", "[mapping]\nbank_account = 1\n");
        let problems = check(&args(Some(m), Some(r), None)).unwrap();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains("shipped example mapping"),
            "{problems:?}"
        );
        assert!(problems[1].contains("line 2"), "{problems:?}");
        assert!(matches!(
            check(&args(None, None, None)),
            Err(ConfigCheckError::NothingToCheck)
        ));
    }
}
