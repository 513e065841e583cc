//! The harness end to end on tiny tenants: one measured run per path (its own process, sandboxes
//! in another), and the stand-alone sandbox process.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

const EXE: &str = env!("CARGO_BIN_EXE_deskshift-bench");

fn measured_run(path: &str, tickets: u64, latency_ms: u64) -> Value {
    let spec = json!({"path": path, "tickets": tickets, "seed": 3, "latency_ms": latency_ms, "zoho_cap": 10, "concurrency": 10});
    let out = Command::new(EXE)
        .arg("--child")
        .arg(spec.to_string())
        .stderr(Stdio::inherit())
        .output()
        .expect("start the harness");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("DESKSHIFT-BENCH-RESULT "))
        .unwrap_or_else(|| panic!("no result from the {path} run ({}): {stdout}", out.status));
    serde_json::from_str(line).expect("result JSON")
}

fn waves(calls: u64, cap: u64, latency: u64) -> f64 {
    (calls.div_ceil(cap) * latency) as f64
}

/// Each phase's minimum is what the destination gained (read from the destination sandbox), its
/// ideal follows the formula, and the engine's memory is its own (far below the sandboxes').
fn check(r: &Value, latency: u64, source_cap: u64) {
    let phases = r["phases"].as_array().unwrap();
    let writes: u64 = phases
        .iter()
        .map(|p| p["min"]["dest_writes"].as_u64().unwrap())
        .sum();
    let created: u64 = r["created"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert!(created > 0, "{r}");
    assert_eq!(writes, created);
    let mut dest_min = 0;
    for p in phases {
        let m = &p["min"];
        let dest = m["dest_writes"].as_u64().unwrap() + m["dest_reads"].as_u64().unwrap();
        dest_min += dest;
        let expect =
            waves(dest, 10, latency).max(waves(m["source"].as_u64().unwrap(), source_cap, latency));
        assert_eq!(p["ideal_ms"].as_f64().unwrap(), expect, "{}", p["name"]);
        assert!(p["cpu_ms"].as_f64().unwrap() >= 0.0);
    }
    assert!(r["dest_calls"].as_u64().unwrap() >= dest_min);
    let ideal: f64 = phases.iter().map(|p| p["ideal_ms"].as_f64().unwrap()).sum();
    assert_eq!(r["ideal_ms"].as_f64().unwrap(), ideal);
    // Source pages are counted once over preflight and extract.
    let read: u64 = phases
        .iter()
        .filter(|p| p["name"] == "preflight" || p["name"] == "extract")
        .map(|p| p["min"]["source"].as_u64().unwrap())
        .sum();
    assert!(read > 0);
    assert!(r["vm_hwm_kb"].as_u64().unwrap() > 0);
    assert!(r["sandbox_rss_kb"].as_u64().unwrap() > 0);
}

#[test]
fn ivinex_to_zoho_run_measures_against_the_destination() {
    let r = measured_run("ivinex-zoho", 12, 2);
    check(&r, 2, 8);
    assert!(r["created"]["tickets"].as_u64().unwrap() > 0);
    assert!(r["credits_used"].as_u64().unwrap() > 0);
}

#[test]
fn zoho_to_jsm_run_measures_against_the_jira_counters() {
    let r = measured_run("zoho-jsm", 12, 2);
    check(&r, 2, 10);
    assert!(r["created"]["issues"].as_u64().unwrap() > 0);
    assert!(
        r["dest_endpoints"]["POST /rest/servicedeskapi/request"]
            .as_u64()
            .unwrap()
            > 0
    );
}

/// `--serve-sandboxes` prints where the servers are, answers snapshots, and stops on stdin EOF.
#[test]
fn the_sandbox_process_serves_until_stdin_closes() {
    let mut child = Command::new(EXE)
        .args([
            "--serve-sandboxes",
            "--path",
            "ivinex-zoho",
            "--tickets",
            "5",
            "--latency-ms",
            "0",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the sandbox process");
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let info: Value = serde_json::from_str(&line).expect("info line");
    let base = info["zoho"]["api_base"].as_str().unwrap().to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    assert!(info["source_pages"].as_u64().unwrap() > 0);
    writeln!(stdin, "snapshot").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    let snap: Value = serde_json::from_str(&line).expect("snapshot line");
    assert_eq!(snap["kinds"]["tickets"], 0, "nothing migrated yet: {snap}");
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    // The servers are gone with the process.
    let addr = base
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    assert!(std::net::TcpStream::connect(addr).is_err());
}
