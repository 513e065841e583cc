//! The printed table and BENCHMARKS.md.

use std::fmt::Write;

use crate::run::{RunResult, SOURCE_CAP};

/// Text from this line on in BENCHMARKS.md is written by a person and kept across runs.
pub const ANALYSIS_MARK: &str = "<!-- analysis: kept across runs -->";

pub struct SizeSet {
    pub main: RunResult,
    pub zero: RunResult,
    pub serial: Option<RunResult>,
}

fn min_total(r: &RunResult) -> u64 {
    r.phases.iter().map(|p| p.min.dest()).sum()
}

pub fn print_run(label: &str, r: &RunResult) {
    println!(
        "\n{} tickets, {label}: latency {} ms, Zoho cap {}, engine concurrency {}",
        r.tickets, r.latency_ms, r.zoho_cap, r.concurrency
    );
    println!(
        "{:<16} {:>10} {:>10} {:>7} {:>9} {:>9} {:>9} {:>9}",
        "phase", "wall s", "ideal s", "ratio", "dest", "dest min", "source", "src min"
    );
    for p in &r.phases {
        println!(
            "{:<16} {:>10.2} {:>10.2} {:>7} {:>9} {:>9} {:>9} {:>9}",
            p.name,
            p.wall_ms / 1000.0,
            p.ideal_ms / 1000.0,
            ratio(p.wall_ms, p.ideal_ms),
            p.dest_calls,
            p.min.dest(),
            p.source_calls,
            p.min.source
        );
    }
    println!(
        "{:<16} {:>10.2} {:>10.2} {:>7} {:>9} {:>9} {:>9}",
        "total",
        r.wall_ms / 1000.0,
        r.ideal_ms / 1000.0,
        ratio(r.wall_ms, r.ideal_ms),
        r.dest_calls,
        min_total(r),
        r.source_calls
    );
    println!(
        "credits {} (estimate {}), peak in flight {}, 429 for concurrency {}, failed records {}, VmHWM {:.0} MB (sandboxes alone {:.0} MB), engine CPU {:.0} us/ticket",
        r.credits_used,
        r.credits_estimated,
        r.peak_in_flight,
        r.throttled_concurrency,
        r.failed_records,
        r.vm_hwm_kb as f64 / 1024.0,
        r.rss_after_sandboxes_kb as f64 / 1024.0,
        r.engine_cpu_ms * 1000.0 / r.tickets.max(1) as f64
    );
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "-".into()
    }
}

fn pct(a: u64, b: u64) -> String {
    if b > 0 {
        format!("{:+.1} %", (a as f64 / b as f64 - 1.0) * 100.0)
    } else {
        "-".into()
    }
}

pub fn markdown(sets: &[SizeSet], machine: &str, latency_ms: u64, cap: u32) -> String {
    let mut s = String::new();
    let date = deskshift_core::util::now_iso();
    let _ = writeln!(s, "# Benchmarks\n");
    let _ = writeln!(
        s,
        "Written by `cargo run -p deskshift-bench --release` (sizes: `-- --tickets 1000,10000`; `-- --long` adds 100,000).\n\
         Path: Ivinex -> Zoho Desk (REST). Sandboxes in-process, {latency_ms} ms added to every answer of both APIs, Zoho Desk \
         concurrency cap {cap} (enforced by the sandbox with 429), engine concurrency = the cap (load, attachments, Zoho client), \
         Ivinex client {SOURCE_CAP}. Each run is its own process.\n"
    );
    let _ = writeln!(s, "Machine: {machine}. Run at {date}.\n");
    let _ = writeln!(
        s,
        "## Formula\n\n\
         For each phase, the **minimum destination calls** = one create per record the destination gained during the phase \
         (accounts, contacts, tickets, comments, threads, tasks, custom fields, attachments, uploads; counted in the Zoho \
         sandbox, not from the engine) + one read per distinct GET endpoint the phase needs (for `validate`: one read-back per \
         validated record). The **minimum source calls** = one per page of every Ivinex tab (page size 200) plus discovery, for \
         `preflight` and `extract`; one download per uploaded file for `attachments`.\n\n\
         `ideal(phase) = max(ceil(dest_min / {cap}), ceil(source_min / {SOURCE_CAP})) x {latency_ms} ms`; ideal = sum over phases. \
         Ratio = wall / ideal. CPU per ticket is the engine's threads only (the sandboxes run on their own runtime), at zero \
         latency. Peak memory is the whole process's VmHWM, sandboxes included; \"sandboxes alone\" is the RSS after they started.\n"
    );
    let _ = writeln!(
        s,
        "## Summary\n\n| tickets | wall s | ideal s | wall / ideal | dest calls | minimum | over | credits | estimate | off | concurrency-1 wall s | speed-up | VmHWM MB | sandboxes MB | engine CPU us/ticket |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for set in sets {
        let r = &set.main;
        let (serial_wall, speedup) = match &set.serial {
            Some(x) => (
                format!("{:.1}", x.wall_ms / 1000.0),
                format!("{:.2}x", x.wall_ms / r.wall_ms),
            ),
            None => ("not run".into(), "-".into()),
        };
        let _ = writeln!(
            s,
            "| {} | {:.1} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {:.0} | {:.0} |",
            r.tickets,
            r.wall_ms / 1000.0,
            r.ideal_ms / 1000.0,
            ratio(r.wall_ms, r.ideal_ms),
            r.dest_calls,
            min_total(r),
            pct(r.dest_calls, min_total(r)),
            r.credits_used,
            r.credits_estimated,
            pct(r.credits_used, r.credits_estimated),
            serial_wall,
            speedup,
            r.vm_hwm_kb as f64 / 1024.0,
            r.rss_after_sandboxes_kb as f64 / 1024.0,
            set.zero.engine_cpu_ms * 1000.0 / set.zero.tickets.max(1) as f64,
        );
    }
    for set in sets {
        let runs = [Some(&set.main), set.serial.as_ref(), Some(&set.zero)];
        for r in runs.into_iter().flatten() {
            let _ = writeln!(
                s,
                "\n## {} tickets, latency {} ms, concurrency {}\n",
                r.tickets, r.latency_ms, r.concurrency
            );
            let _ = writeln!(
                s,
                "| phase | wall s | ideal s | wall / ideal | dest calls | dest min (creates + reads) | source calls | source min |\n|---|---|---|---|---|---|---|---|"
            );
            for p in &r.phases {
                let _ = writeln!(
                    s,
                    "| {} | {:.2} | {:.2} | {} | {} | {} ({} + {}) | {} | {} |",
                    p.name,
                    p.wall_ms / 1000.0,
                    p.ideal_ms / 1000.0,
                    ratio(p.wall_ms, p.ideal_ms),
                    p.dest_calls,
                    p.min.dest(),
                    p.min.dest_writes,
                    p.min.dest_reads,
                    p.source_calls,
                    p.min.source
                );
            }
            let _ = writeln!(
                s,
                "| **total** | {:.2} | {:.2} | {} | {} | {} | {} | |",
                r.wall_ms / 1000.0,
                r.ideal_ms / 1000.0,
                ratio(r.wall_ms, r.ideal_ms),
                r.dest_calls,
                min_total(r),
                r.source_calls
            );
            let _ = writeln!(
                s,
                "\nCredits {} (pre-flight estimate {}); peak in flight {}; 429 answers for concurrency {}; failed records {}; validated {}; \
                 VmHWM {:.0} MB (sandboxes alone {:.0} MB); engine CPU {:.0} ms ({:.0} us/ticket), whole process {:.0} ms.",
                r.credits_used,
                r.credits_estimated,
                r.peak_in_flight,
                r.throttled_concurrency,
                r.failed_records,
                r.validation_checked,
                r.vm_hwm_kb as f64 / 1024.0,
                r.rss_after_sandboxes_kb as f64 / 1024.0,
                r.engine_cpu_ms,
                r.engine_cpu_ms * 1000.0 / r.tickets.max(1) as f64,
                r.process_cpu_ms
            );
            if r.latency_ms > 0 && r.concurrency > 1 {
                let created: Vec<String> =
                    r.created.iter().map(|(k, v)| format!("{k} {v}")).collect();
                let _ = writeln!(s, "\nCreated in the destination: {}.\n", created.join(", "));
                let _ = writeln!(s, "| destination endpoint | calls |\n|---|---|");
                for (k, v) in &r.dest_endpoints {
                    let _ = writeln!(s, "| `{k}` | {v} |");
                }
            }
        }
    }
    s
}
