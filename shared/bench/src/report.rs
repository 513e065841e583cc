//! The printed table and BENCHMARKS.md.

use std::fmt::Write;

use crate::run::{RunResult, SOURCE_CAP};
use crate::sandboxes::MigrationPath;

/// Text from this line on in BENCHMARKS.md is written by a person and kept across runs.
pub const ANALYSIS_MARK: &str = "<!-- analysis: kept across runs -->";

#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct SizeSet {
    pub path: MigrationPath,
    pub main: RunResult,
    pub zero: RunResult,
    pub serial: Option<RunResult>,
}

/// The sets of an earlier results file that this run did not measure again (another path or
/// size), followed by this run's, in path and size order: the file keeps every path's latest.
pub fn merge(kept: Vec<SizeSet>, new: Vec<SizeSet>) -> Vec<SizeSet> {
    let mut all: Vec<SizeSet> = kept
        .into_iter()
        .filter(|k| {
            !new.iter()
                .any(|n| n.path == k.path && n.main.tickets == k.main.tickets)
        })
        .collect();
    all.extend(new);
    all.sort_by_key(|s| (s.path as u8, s.main.tickets));
    all
}

/// CPU per ticket that the run's calls cost at the bare-exchange price (zero-latency run).
fn floor_per_ticket(r: &RunResult) -> f64 {
    (r.dest_calls + r.source_calls) as f64 * r.call_floor_us / r.tickets.max(1) as f64
}

fn min_total(r: &RunResult) -> u64 {
    r.phases.iter().map(|p| p.min.dest()).sum()
}

pub fn print_run(label: &str, r: &RunResult) {
    println!(
        "\n{}, {} tickets, {label}: latency {} ms, cap {}, engine concurrency {}",
        path_label(r),
        r.tickets,
        r.latency_ms,
        r.zoho_cap,
        r.concurrency
    );
    println!(
        "{:<16} {:>10} {:>10} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}",
        "phase",
        "wall s",
        "ideal s",
        "ratio",
        "dest",
        "dest min",
        "source",
        "src min",
        "cpu ms",
        "rss MB"
    );
    for p in &r.phases {
        println!(
            "{:<16} {:>10.2} {:>10.2} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9.0} {:>8.0}",
            p.name,
            p.wall_ms / 1000.0,
            p.ideal_ms / 1000.0,
            ratio(p.wall_ms, p.ideal_ms),
            p.dest_calls,
            p.min.dest(),
            p.source_calls,
            p.min.source,
            p.cpu_ms,
            p.rss_kb as f64 / 1024.0
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
        "Zoho credits {} (estimate {}), peak in flight {}, 429 for concurrency {}, failed records {}, engine VmHWM {:.0} MB (sandbox process {:.0} MB, started in {:.1} s), engine CPU {:.0} us/ticket",
        r.credits_used,
        estimate_detail(r),
        r.peak_in_flight,
        r.throttled_concurrency,
        r.failed_records,
        r.vm_hwm_kb as f64 / 1024.0,
        r.sandbox_rss_kb as f64 / 1024.0,
        r.sandbox_start_s,
        r.engine_cpu_ms * 1000.0 / r.tickets.max(1) as f64
    );
    if r.call_floor_us > 0.0 {
        println!(
            "Bare HTTP exchange: {:.1} us of CPU; the run's calls at that price: {:.0} us/ticket",
            r.call_floor_us,
            floor_per_ticket(r)
        );
    }
}

/// The pre-flight's estimate of the Zoho Desk credits a run spends, where it made one (results
/// of older runs on the second path hold the JSM call estimate there: not credits, not shown).
fn credit_estimate(r: &RunResult) -> Option<u64> {
    match r.path {
        Some(MigrationPath::IvinexZoho) => Some(r.credits_estimated),
        Some(MigrationPath::ZohoJsm) => r.source_credits_preflight.map(|_| r.credits_estimated),
        None => None,
    }
}

fn estimate_text(r: &RunResult) -> String {
    credit_estimate(r).map_or("none".into(), |n| n.to_string())
}

/// The estimate, and on the second path the pre-flight's own part of it.
fn estimate_detail(r: &RunResult) -> String {
    match (credit_estimate(r), r.source_credits_preflight) {
        (Some(n), Some(p)) => format!("{n}, of which the pre-flight's own read {p}"),
        _ => estimate_text(r),
    }
}

fn credits_off(r: &RunResult) -> String {
    credit_estimate(r).map_or("-".into(), |n| pct(r.credits_used, n))
}

fn path_label(r: &RunResult) -> &'static str {
    r.path.map(MigrationPath::label).unwrap_or("?")
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
        "Run: `cargo run -p deskshift-bench --release` (both paths, 1,000 and 10,000 tickets; `-- --path ivinex-zoho` or \
         `-- --path zoho-jsm` for one path; `-- --tickets N,M` for other sizes; `-- --long` adds 100,000; `-- --serial-max N` \
         runs the concurrency-1 comparison up to N tickets, default 1,000). The harness rewrites everything above the analysis \
         marker; the analysis below it is kept. `-- --serve-sandboxes --path P --tickets N` only starts the sandboxes of a path \
         and prints their addresses (stdin EOF or SIGTERM stops them).\n"
    );
    let _ = writeln!(
        s,
        "Paths: Ivinex -> Zoho Desk (REST) and Zoho Desk -> Jira Service Management. Each run is its own process and starts its \
         sandboxes in another process, so its peak memory (VmHWM) and CPU are the engine's alone. {latency_ms} ms added to every \
         answer of every sandbox; Zoho Desk concurrency cap {cap} (the destination org on the first path, enforced with 429; the \
         source client on the second); engine concurrency = the cap (load, attachments, destination client, JSM client), Ivinex \
         client {SOURCE_CAP}. Durability: the embedded stores' default (`process`: SQLite WAL with synchronous=NORMAL, no fsync \
         per stage file).\n"
    );
    let _ = writeln!(
        s,
        "Machine: {machine}. Written at {date}; each row's run time is in the summary (a run of one path or size keeps \
         the other rows of the previous results, kept in BENCHMARKS.json). The machine is shared with other builds and test \
         runs: wall times and CPU are upper bounds.\n"
    );
    let _ = writeln!(
        s,
        "## Formula\n\n\
         For each phase, the **minimum destination calls** = one create per record the destination gained during the phase \
         (Zoho Desk: accounts, contacts, tickets, comments, threads, tasks, custom fields, attachments, uploads; JSM: customers, \
         organizations, issues, comments, attachments, fields, components, links; counted in the destination sandbox, not from \
         the engine) + one read per distinct GET endpoint the phase needs (for `validate`: one read-back per validated record). \
         The **minimum source calls** = one per page of every collection plus discovery, once over `preflight` and `extract` \
         (counted in the phase that read them: preflight up to its own source calls, extract the rest) (Ivinex: \
         every tab at page size 200; Zoho Desk: tickets at 100, accounts, contacts, tasks and products at 99, per ticket its \
         details, thread list and comment list, per thread its content, three discovery reads); one download per uploaded file for `attachments`.\n\n\
         `ideal(phase) = max(ceil(dest_min / {cap}), ceil(source_min / source_cap)) x {latency_ms} ms` (source_cap: Ivinex \
         {SOURCE_CAP}, Zoho Desk {cap}); ideal = sum over phases. Ratio = wall / ideal. CPU per ticket = the engine process's \
         user + system CPU over the phases at zero latency, divided by the tickets. **Bare exchange** = the engine process's CPU \
         for one small GET to the sandbox through a default reqwest client at the same concurrency (3,000 of them after the \
         zero-latency run); **calls x bare** = the run's source and destination calls per ticket at that price: the part of \
         the CPU per ticket that any engine making those calls spends. **Zoho credits** = the credits the Zoho Desk org \
         spent (the destination on the first path, the source on the second); **estimate** = the pre-flight's estimate of \
         them: on the first path its destination call estimate (per record of each kind, plus files); on the second the \
         credits its own survey spent (it is the source's full read, staged for the extract) plus one download per file, \
         so there only the rest of the run is predicted (the run's summary gives the pre-flight's part).\n"
    );
    let _ = writeln!(
        s,
        "## Summary\n\n| path | tickets | wall s | ideal s | wall / ideal | dest calls | minimum | over | Zoho credits | estimate | off | concurrency-1 wall s | speed-up | engine VmHWM MB | sandbox process MB | engine CPU us/ticket | bare exchange us | calls x bare us/ticket | run at |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
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
            "| {} | {} | {:.1} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {} |",
            set.path.label(),
            r.tickets,
            r.wall_ms / 1000.0,
            r.ideal_ms / 1000.0,
            ratio(r.wall_ms, r.ideal_ms),
            r.dest_calls,
            min_total(r),
            pct(r.dest_calls, min_total(r)),
            r.credits_used,
            estimate_text(r),
            credits_off(r),
            serial_wall,
            speedup,
            r.vm_hwm_kb.max(set.zero.vm_hwm_kb) as f64 / 1024.0,
            r.sandbox_rss_kb as f64 / 1024.0,
            set.zero.engine_cpu_ms * 1000.0 / set.zero.tickets.max(1) as f64,
            set.zero.call_floor_us,
            floor_per_ticket(&set.zero),
            r.run_at.get(..16).unwrap_or("-"),
        );
    }
    for set in sets {
        let runs = [Some(&set.main), set.serial.as_ref(), Some(&set.zero)];
        for r in runs.into_iter().flatten() {
            let _ = writeln!(
                s,
                "\n## {}: {} tickets, latency {} ms, concurrency {}\n",
                set.path.label(),
                r.tickets,
                r.latency_ms,
                r.concurrency
            );
            let _ = writeln!(
                s,
                "| phase | wall s | ideal s | wall / ideal | dest calls | dest min (creates + reads) | source calls | source min | engine CPU ms | engine RSS MB after |\n|---|---|---|---|---|---|---|---|---|---|"
            );
            for p in &r.phases {
                let _ = writeln!(
                    s,
                    "| {} | {:.2} | {:.2} | {} | {} | {} ({} + {}) | {} | {} | {:.0} | {:.0} |",
                    p.name,
                    p.wall_ms / 1000.0,
                    p.ideal_ms / 1000.0,
                    ratio(p.wall_ms, p.ideal_ms),
                    p.dest_calls,
                    p.min.dest(),
                    p.min.dest_writes,
                    p.min.dest_reads,
                    p.source_calls,
                    p.min.source,
                    p.cpu_ms,
                    p.rss_kb as f64 / 1024.0
                );
            }
            let _ = writeln!(
                s,
                "| **total** | {:.2} | {:.2} | {} | {} | {} | {} | | {:.0} | |",
                r.wall_ms / 1000.0,
                r.ideal_ms / 1000.0,
                ratio(r.wall_ms, r.ideal_ms),
                r.dest_calls,
                min_total(r),
                r.source_calls,
                r.engine_cpu_ms
            );
            let _ = writeln!(
                s,
                "\nZoho credits {} (pre-flight estimate {}); peak in flight {}; 429 answers for concurrency {}; failed records {}; \
                 validated {}; engine VmHWM {:.0} MB (RSS {:.0} MB before the run); sandbox process {:.0} MB after start ({:.1} s to \
                 generate and load the tenant); engine CPU {:.0} ms ({:.0} us/ticket).",
                r.credits_used,
                estimate_detail(r),
                r.peak_in_flight,
                r.throttled_concurrency,
                r.failed_records,
                r.validation_checked,
                r.vm_hwm_kb as f64 / 1024.0,
                r.rss_before_kb as f64 / 1024.0,
                r.sandbox_rss_kb as f64 / 1024.0,
                r.sandbox_start_s,
                r.engine_cpu_ms,
                r.engine_cpu_ms * 1000.0 / r.tickets.max(1) as f64,
            );
            if r.latency_ms > 0 && r.concurrency > 1 {
                let created: Vec<String> =
                    r.created.iter().map(|(k, v)| format!("{k} {v}")).collect();
                let _ = writeln!(s, "\nCreated in the destination: {}.\n", created.join(", "));
                let _ = writeln!(s, "| destination endpoint | calls |\n|---|---|");
                for (k, v) in &r.dest_endpoints {
                    let _ = writeln!(s, "| `{k}` | {v} |");
                }
                let _ = writeln!(s, "\n| source endpoint | calls |\n|---|---|");
                for (k, v) in &r.source_endpoints {
                    let _ = writeln!(s, "| `{k}` | {v} |");
                }
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(path: MigrationPath, tickets: usize, wall_ms: f64) -> SizeSet {
        let r = RunResult {
            tickets,
            wall_ms,
            ..Default::default()
        };
        SizeSet {
            path,
            main: r.clone(),
            zero: r,
            serial: None,
        }
    }

    #[test]
    fn a_run_replaces_its_own_rows_and_keeps_the_others() {
        let kept = vec![
            set(MigrationPath::ZohoJsm, 1000, 1.0),
            set(MigrationPath::IvinexZoho, 10000, 2.0),
            set(MigrationPath::IvinexZoho, 1000, 3.0),
        ];
        let new = vec![set(MigrationPath::IvinexZoho, 1000, 4.0)];
        let all = merge(kept, new);
        let rows: Vec<(MigrationPath, usize, f64)> = all
            .iter()
            .map(|s| (s.path, s.main.tickets, s.main.wall_ms))
            .collect();
        assert_eq!(
            rows,
            vec![
                (MigrationPath::IvinexZoho, 1000, 4.0),
                (MigrationPath::IvinexZoho, 10000, 2.0),
                (MigrationPath::ZohoJsm, 1000, 1.0),
            ]
        );
    }
}
