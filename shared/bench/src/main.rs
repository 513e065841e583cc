//! `deskshift-bench`: migrates seeded Ivinex tenants into a Zoho Desk sandbox with fixed latency and
//! a fixed concurrency cap, and measures wall time against the API ceiling, calls and credits
//! against the minimum, peak memory, the engine's CPU per ticket and the speed-up over
//! one-call-at-a-time. Each run is a child process so its peak memory is its own.

mod measure;
mod report;
mod run;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};
use clap::Parser;

use crate::run::{RunResult, RunSpec};

#[derive(Parser, Debug)]
#[command(
    name = "deskshift-bench",
    about = "Benchmarks the Ivinex -> Zoho Desk migration against the APIs' ceiling"
)]
struct Args {
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
    /// Internal: run one measurement (JSON spec) and print its result.
    #[arg(long, hide = true)]
    child: Option<String>,
}

const RESULT_PREFIX: &str = "DESKSHIFT-BENCH-RESULT ";

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
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
    for &tickets in &sizes {
        let base = RunSpec {
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
        sets.push(report::SizeSet { main, zero, serial });
    }
    let md = report::markdown(&sets, &measure::machine(), args.latency_ms, args.cap);
    if !args.no_write {
        let out = args.out.clone().unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../BENCHMARKS.md")
        });
        let kept = std::fs::read_to_string(&out)
            .ok()
            .and_then(|old| {
                old.find(report::ANALYSIS_MARK)
                    .map(|i| old[i..].to_string())
            })
            .unwrap_or_else(|| format!("{}\n", report::ANALYSIS_MARK));
        std::fs::write(&out, format!("{md}\n{kept}"))
            .with_context(|| format!("cannot write {}", out.display()))?;
        println!("\nWrote {}", out.display());
    }
    Ok(())
}

fn child(exe: &PathBuf, spec: &RunSpec) -> anyhow::Result<RunResult> {
    eprintln!(
        "run: {} tickets, latency {} ms, cap {}, concurrency {} ...",
        spec.tickets, spec.latency_ms, spec.zoho_cap, spec.concurrency
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
            "the {}-ticket run (concurrency {}) failed ({}); its output is above",
            spec.tickets,
            spec.concurrency,
            out.status
        );
    };
    Ok(serde_json::from_str(line)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny run: each phase's minimum is what the destination gained, and its ideal follows the formula.
    #[test]
    fn tiny_run_computes_the_ideal_from_the_destination() {
        let r = run::run(&RunSpec {
            tickets: 12,
            seed: 3,
            latency_ms: 2,
            zoho_cap: 10,
            concurrency: 10,
        })
        .expect("tiny run");
        let writes: u64 = r.phases.iter().map(|p| p.min.dest_writes).sum();
        assert_eq!(writes, r.created.values().sum::<u64>());
        let load_ticket = r.phases.iter().find(|p| p.name == "load-ticket").unwrap();
        assert!(load_ticket.min.dest_writes >= r.created["tickets"]);
        assert!(r.created["tickets"] > 0);
        for p in &r.phases {
            let expect = measure::phase_ideal_ms(&p.min, 10, run::SOURCE_CAP, 2);
            assert_eq!(p.ideal_ms, expect, "{}", p.name);
        }
        assert_eq!(r.ideal_ms, r.phases.iter().map(|p| p.ideal_ms).sum::<f64>());
        assert!(r.dest_calls >= r.phases.iter().map(|p| p.min.dest()).sum::<u64>());
    }
}
