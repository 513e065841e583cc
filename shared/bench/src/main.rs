//! `deskshift-bench`: migrates generated tenants (Ivinex -> Zoho Desk, Zoho Desk -> Jira Service
//! Management) between sandboxes with fixed latency and a fixed concurrency cap, and measures wall
//! time against the API ceiling, calls and credits against the minimum, peak memory, the engine's
//! CPU per ticket and the speed-up over one-call-at-a-time. Each run is a child process, and its
//! sandboxes run in a process of their own, so the run's peak memory and CPU are the engine's.

mod measure;
mod report;
mod run;
mod sandboxes;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};
use clap::Parser;

use crate::run::{RunResult, RunSpec};
use crate::sandboxes::{MigrationPath, ServeSpec};

#[derive(Parser, Debug)]
#[command(
    name = "deskshift-bench",
    about = "Benchmarks the migration paths against the APIs' ceiling"
)]
struct Args {
    /// Migration paths, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "ivinex-zoho,zoho-jsm"
    )]
    path: Vec<MigrationPath>,
    /// Tenant sizes (tickets), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    tickets: Vec<usize>,
    /// Adds a 100,000-ticket run.
    #[arg(long)]
    long: bool,
    /// Latency the sandboxes add to every answer.
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
    /// The Zoho Desk org's simultaneous-call cap.
    #[arg(long, default_value_t = 10)]
    cap: u32,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Run the concurrency-1 comparison only for sizes up to this many tickets (it runs about ten times longer).
    #[arg(long, default_value_t = 1_000)]
    serial_max: usize,
    /// Where the results go; default BENCHMARKS.md at the repository root.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print only; do not write the results file.
    #[arg(long)]
    no_write: bool,
    /// Start only the sandboxes of the first --path with the first --tickets size, print their
    /// addresses and sandbox credentials as one JSON line, answer `snapshot` lines on stdin, and
    /// stop them when stdin closes (or on SIGTERM).
    #[arg(long)]
    serve_sandboxes: bool,
    /// Internal: run one measurement (JSON spec) and print its result.
    #[arg(long, hide = true)]
    child: Option<String>,
}

const RESULT_PREFIX: &str = "DESKSHIFT-BENCH-RESULT ";

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.serve_sandboxes {
        return sandboxes::serve(&ServeSpec {
            path: args.path[0],
            tickets: args.tickets[0],
            seed: args.seed,
            latency_ms: args.latency_ms,
            zoho_cap: args.cap,
        });
    }
    if let Some(spec) = &args.child {
        let spec: RunSpec = serde_json::from_str(spec).context("--child spec is not valid JSON")?;
        let result = run::run(&spec)?;
        println!("{RESULT_PREFIX}{}", serde_json::to_string(&result)?);
        return Ok(());
    }
    let mut sizes = args.tickets.clone();
    if args.long && !sizes.contains(&100_000) {
        sizes.push(100_000);
    }
    let exe = std::env::current_exe().context("cannot find this program to start its runs")?;
    let mut sets = Vec::new();
    for &path in &args.path {
        for &tickets in &sizes {
            check_memory(tickets)?;
            let base = RunSpec {
                path,
                tickets,
                seed: args.seed,
                latency_ms: args.latency_ms,
                zoho_cap: args.cap,
                concurrency: args.cap as usize,
            };
            let main = child(&exe, &base)?;
            report::print_run("at the cap", &main);
            let zero = child(
                &exe,
                &RunSpec {
                    latency_ms: 0,
                    ..base.clone()
                },
            )?;
            report::print_run("zero latency (CPU)", &zero);
            let serial = if tickets <= args.serial_max {
                let s = child(
                    &exe,
                    &RunSpec {
                        concurrency: 1,
                        ..base.clone()
                    },
                )?;
                report::print_run("concurrency 1", &s);
                Some(s)
            } else {
                None
            };
            sets.push(report::SizeSet {
                path,
                main,
                zero,
                serial,
            });
        }
    }
    if !args.no_write {
        let out = args.out.clone().unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../BENCHMARKS.md")
        });
        // Every path's and size's latest figures stay: this run's replace their own rows only.
        let store = out.with_extension("json");
        let kept: Vec<report::SizeSet> = match std::fs::read(&store) {
            Ok(b) => serde_json::from_slice(&b).with_context(|| {
                format!(
                    "{} is not a results file of this harness; move it away to start afresh",
                    store.display()
                )
            })?,
            Err(_) => Vec::new(),
        };
        let sets = report::merge(kept, sets);
        std::fs::write(&store, serde_json::to_vec_pretty(&sets)?)
            .with_context(|| format!("cannot write {}", store.display()))?;
        let md = report::markdown(&sets, &measure::machine(), args.latency_ms, args.cap);
        let kept = std::fs::read_to_string(&out)
            .ok()
            .and_then(|old| {
                old.find(report::ANALYSIS_MARK)
                    .map(|i| old[i..].to_string())
            })
            .unwrap_or_else(|| format!("{}\n", report::ANALYSIS_MARK));
        std::fs::write(&out, format!("{md}\n{kept}"))
            .with_context(|| format!("cannot write {}", out.display()))?;
        println!("\nWrote {} and {}", out.display(), store.display());
    }
    Ok(())
}

/// Resident memory a run needs per ticket, measured at 10,000 tickets: the sandbox process (tenant,
/// attachments and the destination's copies, about 100 KB) plus the engine (about 55 KB).
const KB_PER_TICKET: u64 = 160;

/// Refuses a size the machine cannot hold, before the sandboxes start, rather than running it
/// into the out-of-memory killer next to other work.
fn check_memory(tickets: usize) -> anyhow::Result<()> {
    let need_kb = tickets as u64 * KB_PER_TICKET;
    let available_kb = measure::mem_available_kb();
    if available_kb > 0 && need_kb > available_kb {
        bail!(
            "{tickets} tickets need about {:.1} GiB of memory and {:.1} GiB are available; free \
             memory or run a smaller size (--tickets)",
            need_kb as f64 / 1048576.0,
            available_kb as f64 / 1048576.0
        );
    }
    Ok(())
}

fn child(exe: &PathBuf, spec: &RunSpec) -> anyhow::Result<RunResult> {
    eprintln!(
        "run: {}, {} tickets, latency {} ms, cap {}, concurrency {} ...",
        spec.path.label(),
        spec.tickets,
        spec.latency_ms,
        spec.zoho_cap,
        spec.concurrency
    );
    let out = Command::new(exe)
        .arg("--child")
        .arg(serde_json::to_string(spec)?)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("cannot start a benchmark run")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let Some(line) = stdout.lines().find_map(|l| l.strip_prefix(RESULT_PREFIX)) else {
        bail!(
            "the {} {}-ticket run (concurrency {}) failed ({}); its output is above",
            spec.path.label(),
            spec.tickets,
            spec.concurrency,
            out.status
        );
    };
    Ok(serde_json::from_str(line)?)
}
