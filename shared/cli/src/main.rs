//! `deskshift`: helpdesk migrations on one machine, with embedded storage.

mod jobfile;
mod progress;
mod report;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};
use deskshift_core::job::{NoProgress, Progress, Settings};
use deskshift_core::phases;
use deskshift_core::runner::{RunOptions, run_flow};
use deskshift_core::util::Secret;
use deskshift_sandbox::{SandboxOptions, start_all};

use crate::jobfile::{CredentialRef, DestinationSection, JobFile, SourceSection};

#[derive(Parser)]
#[command(
    name = "deskshift",
    version,
    about = "Helpdesk migrations you can prove: every record moved, reconciled and validated."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log level (error, warn, info, debug); logs go to stderr.
    #[arg(long, global = true, default_value = "warn", env = "DESKSHIFT_LOG")]
    log: String,
    /// No progress bars.
    #[arg(long, global = true)]
    quiet: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Starts seeded sandboxes in-process and runs a whole Ivinex -> Zoho Desk migration on them.
    Demo {
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long, default_value_t = 500)]
        tickets: usize,
        /// Job directory for the demo's state and reports.
        #[arg(long, default_value = "deskshift-demo")]
        job_dir: PathBuf,
        /// Start from an empty job directory (deletes an earlier demo's).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        fresh: bool,
        /// Which migration path: ivinex-zoho (Ivinex -> Zoho Desk) or zoho-jsm (Zoho Desk -> Jira Service Management).
        #[arg(long, default_value = "ivinex-zoho")]
        path: String,
    },
    /// Starts the Ivinex, Zoho Desk and JSM sandboxes, prints their URLs and credentials, runs until Ctrl-C.
    Sandbox {
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long, default_value_t = 1000)]
        tickets: usize,
        #[arg(long, default_value_t = 0)]
        ivinex_port: u16,
        #[arg(long, default_value_t = 0)]
        zoho_port: u16,
        #[arg(long, default_value_t = 0)]
        jira_port: u16,
    },
    /// Scoping: schema and permission check of every collection, counts, attachments, cost estimate.
    Preflight {
        #[arg(long)]
        job: PathBuf,
    },
    /// The field map: propose, show, approve.
    Mapping {
        #[command(subcommand)]
        action: MappingAction,
    },
    /// Runs (or resumes) the migration flow; stops at the approval if the map is not approved.
    Run {
        #[arg(long)]
        job: PathBuf,
    },
    /// Migrates a representative sample of tickets (spread over statuses, departments and ages, with
    /// attachments, inline images and custom fields) with what they need, and validates all of it.
    Sample {
        #[arg(long)]
        job: PathBuf,
        #[arg(long, default_value_t = 500)]
        tickets: usize,
    },
    /// Migrates what was created or modified in the source since the last completed sync.
    Delta {
        #[arg(long)]
        job: PathBuf,
    },
    /// With the source frozen: a final delta, a confirming one, and the job marked complete.
    Cutover {
        #[arg(long)]
        job: PathBuf,
    },
    /// Removes what the migration created, newest dependencies first; records changed in the
    /// destination since are listed, not deleted.
    Rollback {
        #[arg(long)]
        job: PathBuf,
        /// Also delete records changed in the destination after the migration wrote them.
        #[arg(long)]
        include_changed: bool,
    },
    /// Re-runs the records that could not move, from the staged payloads (after a fix).
    RetryFailed {
        #[arg(long)]
        job: PathBuf,
    },
    /// Writes the migration package (inventories, access mapping, reports, the HTML report); with
    /// a range, also the source's change history inside it.
    Report {
        #[arg(long)]
        job: PathBuf,
        /// Export change history from this date or UTC time (opt-in).
        #[arg(long)]
        history_from: Option<String>,
        #[arg(long)]
        history_to: Option<String>,
    },
    /// Where the job stands: phases done, crosswalk counts, failures.
    Status {
        #[arg(long)]
        job: PathBuf,
    },
    /// Reads a random sample (or everything) back from the destination and compares field by field.
    Validate {
        #[arg(long)]
        job: PathBuf,
        #[arg(long)]
        sample: Option<usize>,
        #[arg(long)]
        all: bool,
    },
}

#[derive(Subcommand)]
enum MappingAction {
    /// Proposes a map from the live schema and sample values (writes mapping/field-map.json).
    Propose {
        #[arg(long)]
        job: PathBuf,
    },
    /// Prints the map with confidence and reasons.
    Show {
        #[arg(long)]
        job: PathBuf,
    },
    /// Approves exactly the current map (edit stage/mapping/field-map.json first if needed).
    Approve {
        #[arg(long)]
        job: PathBuf,
        /// Who approves (recorded with the map's hash).
        #[arg(long)]
        by: String,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.log))
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(cli).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn progress(quiet: bool) -> Arc<dyn Progress> {
    if quiet {
        Arc::new(NoProgress)
    } else {
        Arc::new(progress::Bars::new())
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let bars = progress(cli.quiet);
    match cli.command {
        Command::Demo {
            seed,
            tickets,
            job_dir,
            fresh,
            path,
        } => demo(seed, tickets, job_dir, fresh, &path, bars).await,
        Command::Sandbox {
            seed,
            tickets,
            ivinex_port,
            zoho_port,
            jira_port,
        } => {
            let started = Instant::now();
            let sb = start_all(&SandboxOptions {
                seed,
                tickets,
                ivinex_port,
                zoho_port,
                jira_port,
                ..Default::default()
            })
            .await?;
            println!(
                "sandboxes seeded with {tickets} tickets (seed {seed}) in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            println!("{}", serde_json::to_string_pretty(&sb.info())?);
            println!(
                "sandbox credentials above are for these local servers only. Ctrl-C stops them."
            );
            tokio::signal::ctrl_c().await?;
            sb.stop().await;
            Ok(())
        }
        Command::Preflight { job } => {
            let job = jobfile::load(&job)?.job(bars).await?;
            let s = phases::preflight(&job).await?;
            report::print_scoping(&s);
            Ok(())
        }
        Command::Mapping { action } => match action {
            MappingAction::Propose { job } => {
                let job = jobfile::load(&job)?.job(bars).await?;
                let map = phases::propose_mapping(&job).await?;
                report::print_map(&map);
                println!(
                    "\nReview and edit stage/mapping/field-map.json, then `deskshift mapping approve`."
                );
                Ok(())
            }
            MappingAction::Show { job } => {
                let job = jobfile::load(&job)?.job(bars).await?;
                report::print_map(&phases::field_map(&job).await?);
                Ok(())
            }
            MappingAction::Approve { job, by } => {
                let job = jobfile::load(&job)?.job(bars).await?;
                let a = phases::approve(&job, &by, false).await?;
                println!(
                    "approved by {} at {}; map hash {}",
                    a.approved_by, a.approved_at, a.map_digest
                );
                Ok(())
            }
        },
        Command::Run { job } => {
            let loaded = jobfile::load(&job)?;
            let job = loaded.job(bars).await?;
            let summary = run_flow(&job, &RunOptions::default()).await?;
            report::write_all(&job, &loaded.job_dir).await?;
            report::print_summary(&summary);
            Ok(())
        }
        Command::Sample { job, tickets } => {
            let loaded = jobfile::load(&job)?;
            let job = loaded.job(bars).await?;
            let summary = run_flow(
                &job,
                &RunOptions {
                    sample: Some(tickets),
                    ..Default::default()
                },
            )
            .await?;
            report::write_all(&job, &loaded.job_dir).await?;
            report::print_summary(&summary);
            println!(
                "\nSample migrated. Review it in the destination, then either keep it or `deskshift rollback`, and run the full migration with `deskshift run`."
            );
            Ok(())
        }
        Command::Delta { job } => {
            let loaded = jobfile::load(&job)?;
            let job = loaded.job(bars).await?;
            let d = deskshift_core::lifecycle::delta(&job).await?;
            report::write_all(&job, &loaded.job_dir).await?;
            report::print_delta(&d);
            Ok(())
        }
        Command::Cutover { job } => {
            let loaded = jobfile::load(&job)?;
            let job = loaded.job(bars).await?;
            let c = deskshift_core::lifecycle::cutover(&job).await?;
            report::write_all(&job, &loaded.job_dir).await?;
            report::print_delta(&c.final_delta);
            println!(
                "Cut over at {}: the confirming delta found nothing to write. Later deltas will refuse to run.",
                c.completed_at
            );
            Ok(())
        }
        Command::Rollback {
            job,
            include_changed,
        } => {
            let loaded = jobfile::load(&job)?;
            let job = loaded.job(bars).await?;
            let r = deskshift_core::lifecycle::rollback(&job, include_changed).await?;
            report::write_all(&job, &loaded.job_dir).await?;
            println!(
                "Rollback: deleted {:?}; removed with their ticket {:?}; {} already rolled back",
                r.deleted, r.removed_with_parent, r.already_rolled_back
            );
            for k in &r.kept_changed {
                println!(
                    "  kept {} {} ({}): {}",
                    k.kind, k.source_id, k.dest_id, k.reason
                );
            }
            for f in &r.failed {
                println!(
                    "  NOT deleted {} {} ({}): {}",
                    f.kind, f.source_id, f.dest_id, f.reason
                );
            }
            for n in &r.not_removed {
                println!("  note: {n}");
            }
            if !r.failed.is_empty() {
                anyhow::bail!(
                    "{} records could not be deleted; run `deskshift rollback` again once the cause is fixed",
                    r.failed.len()
                );
            }
            Ok(())
        }
        Command::RetryFailed { job } => {
            let loaded = jobfile::load(&job)?;
            let job = loaded.job(bars).await?;
            let r = deskshift_core::lifecycle::retry_failed(&job).await?;
            report::write_all(&job, &loaded.job_dir).await?;
            println!(
                "Retry: {} failed records before, {} after",
                r.failed_before, r.failed_after
            );
            println!("{}", report::reconciliation_table(&r.loads));
            Ok(())
        }
        Command::Report {
            job,
            history_from,
            history_to,
        } => {
            let loaded = jobfile::load(&job)?;
            let job = loaded.job(bars).await?;
            let change_history = if history_from.is_some() || history_to.is_some() {
                Some(deskshift_reports::DateRange::parse(
                    history_from.as_deref(),
                    history_to.as_deref(),
                )?)
            } else {
                None
            };
            let options = deskshift_reports::PackageOptions {
                change_history,
                ..Default::default()
            };
            let index = report::write_package(&job, &loaded.job_dir, &options).await?;
            println!(
                "Migration package written to {} ({} documents). Open {} in a browser.",
                index.dir.display(),
                index.documents.len(),
                index.html.display()
            );
            for n in &index.notes {
                println!("  note: {n}");
            }
            Ok(())
        }
        Command::Status { job } => {
            let loaded = jobfile::load(&job)?;
            let job = loaded.job(bars).await?;
            report::print_status(&job).await
        }
        Command::Validate { job, sample, all } => {
            let loaded = jobfile::load(&job)?;
            let mut job = loaded.job(bars).await?;
            if let Some(n) = sample {
                job.settings.validation_sample = n;
            }
            job.settings.validation_all = all;
            let v = phases::validate(&job).await?;
            report::print_validation(&v);
            Ok(())
        }
    }
}

async fn demo(
    seed: u64,
    tickets: usize,
    job_dir: PathBuf,
    fresh: bool,
    path: &str,
    bars: Arc<dyn Progress>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    if fresh && job_dir.exists() {
        std::fs::remove_dir_all(&job_dir)
            .with_context(|| format!("cannot clear {}", job_dir.display()))?;
    }
    let s = |v: &serde_json::Value, k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let inline = |v: String| CredentialRef {
        env: None,
        file: None,
        inline: Some(Secret::new(v)),
    };
    let options = SandboxOptions {
        seed,
        tickets,
        ..Default::default()
    };
    // The sandboxes of the chosen path, and the job file pointing at them (credentials in memory only).
    let (file, stop): (
        JobFile,
        std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    ) = match path {
        "ivinex-zoho" => {
            println!(
                "Starting sandboxes (Ivinex source with {tickets} tickets, seed {seed}; Zoho Desk destination) ..."
            );
            let sb = start_all(&options).await?;
            let info = sb.info();
            let file = JobFile {
                job_dir: PathBuf::from("."),
                source: SourceSection::Ivinex {
                    base_url: s(&info.ivinex, "base_url"),
                    user: s(&info.ivinex, "user"),
                    password: inline(s(&info.ivinex, "password")),
                    timezone: s(&info.ivinex, "timezone"),
                    attachment_hosts: vec![],
                    max_concurrency: Some(8),
                },
                destination: DestinationSection::Zohodesk {
                    mode: "rest".into(),
                    dc: None,
                    api_base: Some(s(&info.zoho, "api_base")),
                    accounts_base: Some(s(&info.zoho, "accounts_base")),
                    org_id: s(&info.zoho, "org_id"),
                    client_id: s(&info.zoho, "client_id"),
                    client_secret: inline(s(&info.zoho, "client_secret")),
                    refresh_token: inline(s(&info.zoho, "refresh_token")),
                    concurrency_cap: None,
                    default_department: None,
                    package_dir: None,
                    retry: None,
                },
                settings: Settings::default(),
            };
            (file, Box::pin(sb.stop()))
        }
        "zoho-jsm" => {
            println!(
                "Starting sandboxes (Zoho Desk source with {tickets} tickets, seed {seed}; Jira Service Management destination) ..."
            );
            let sb = deskshift_sandbox::start_zoho_jsm(&options).await?;
            let info = sb.info();
            let file = JobFile {
                job_dir: PathBuf::from("."),
                source: SourceSection::Zohodesk {
                    zoho: jobfile::ZohoConnection {
                        dc: None,
                        api_base: Some(s(&info.zoho, "api_base")),
                        accounts_base: Some(s(&info.zoho, "accounts_base")),
                        org_id: s(&info.zoho, "org_id"),
                        client_id: s(&info.zoho, "client_id"),
                        client_secret: inline(s(&info.zoho, "client_secret")),
                        refresh_token: inline(s(&info.zoho, "refresh_token")),
                        concurrency_cap: None,
                        retry: None,
                    },
                },
                destination: DestinationSection::jsm(
                    s(&info.jira, "base_url"),
                    s(&info.jira, "email"),
                    inline(s(&info.jira, "api_token")),
                    None,
                ),
                settings: Settings::default(),
            };
            (file, Box::pin(sb.stop()))
        }
        other => anyhow::bail!("--path {other:?}: use ivinex-zoho or zoho-jsm"),
    };
    std::fs::create_dir_all(&job_dir)?;
    let loaded = jobfile::from_file(file, job_dir.clone());
    let result = async {
        let job = loaded.job(bars).await?;
        println!("Mapping approval: AUTOMATIC (demo only; a real run waits for `deskshift mapping approve`).");
        let summary = run_flow(
            &job,
            &RunOptions {
                auto_approve: Some("deskshift demo (automatic approval, no person reviewed the map)".into()),
                ..Default::default()
            },
        )
        .await?;
        // The demo shows every document of the package, the opt-in change-history export included.
        let options = deskshift_reports::PackageOptions {
            change_history: Some(deskshift_reports::DateRange::parse(None, None)?),
            ..Default::default()
        };
        report::write_package(&job, &job_dir, &options).await?;
        report::print_summary(&summary);
        anyhow::Ok(())
    }
    .await;
    stop.await;
    result?;
    println!(
        "\nReports: {}/reports/ (open report.html; summary.md, scoping, field map, reconciliation, validation, failed records, inventories)",
        job_dir.display()
    );
    println!("Demo finished in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
