//! One benchmark run: sandboxes on their own runtime, the engine on another (so the engine's CPU
//! time is its threads' alone), the phases called in FLOW order with a snapshot after each.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use deskshift_core::flow::{FLOW, Phase};
use deskshift_core::job::{Job, NoProgress, Settings};
use deskshift_core::phases;
use deskshift_ivinex::{IvinexConfig, IvinexSource};
use deskshift_store_embedded::{FileStage, SqliteStore};
use deskshift_zohodesk::{ZohoDesk, ZohoDeskConfig};
use sandbox_ivinex::IvinexSandbox;
use sandbox_kit::FaultConfig;
use sandbox_zohodesk::{ZohoConfig, ZohoSandbox};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::measure::{self, PhaseMinimum};

/// The Ivinex client's default simultaneous calls (Ivinex publishes no limit).
pub const SOURCE_CAP: u64 = 8;

/// Destination kinds whose growth during a phase counts as that phase's required creates.
const CREATED_KINDS: &[&str] = &[
    "accounts",
    "contacts",
    "tickets",
    "threads",
    "comments",
    "tasks",
    "fields",
    "agents",
    "attachments",
    "uploads",
    "products",
];

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunSpec {
    pub tickets: usize,
    pub seed: u64,
    pub latency_ms: u64,
    /// The Zoho Desk org's simultaneous-call cap (the sandbox enforces it).
    pub zoho_cap: u32,
    /// Concurrency the engine is given: load, attachments, Zoho client and Ivinex client.
    pub concurrency: usize,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PhaseResult {
    pub name: String,
    pub wall_ms: f64,
    pub ideal_ms: f64,
    pub dest_calls: u64,
    pub source_calls: u64,
    pub min: PhaseMinimum,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunResult {
    pub tickets: usize,
    pub latency_ms: u64,
    pub zoho_cap: u32,
    pub concurrency: usize,
    pub wall_ms: f64,
    pub ideal_ms: f64,
    pub phases: Vec<PhaseResult>,
    pub dest_endpoints: BTreeMap<String, u64>,
    pub source_endpoints: BTreeMap<String, u64>,
    pub dest_calls: u64,
    pub source_calls: u64,
    pub credits_used: u64,
    pub credits_estimated: u64,
    pub throttled_concurrency: u64,
    pub peak_in_flight: u64,
    pub engine_cpu_ms: f64,
    pub process_cpu_ms: f64,
    pub vm_hwm_kb: u64,
    pub rss_after_sandboxes_kb: u64,
    /// Destination records created by the run, per kind (read from the sandbox).
    pub created: BTreeMap<String, u64>,
    pub failed_records: u64,
    pub validation_checked: u64,
}

struct Sandboxes {
    ivinex: IvinexSandbox,
    zoho: ZohoSandbox,
}

fn count_kinds(zoho: &ZohoSandbox) -> BTreeMap<String, u64> {
    CREATED_KINDS
        .iter()
        .map(|k| {
            let n = zoho
                .records(k)
                .and_then(|v| v.as_array().map(|a| a.len() as u64))
                .unwrap_or(0);
            (k.to_string(), n)
        })
        .collect()
}

#[derive(Clone, Default)]
struct Snapshot {
    kinds: BTreeMap<String, u64>,
    dest: BTreeMap<String, u64>,
    dest_total: u64,
    source_total: u64,
}

fn snapshot(sb: &Sandboxes) -> Snapshot {
    let stats = zoho_stats(&sb.zoho);
    Snapshot {
        kinds: count_kinds(&sb.zoho),
        dest_total: stats.values().sum(),
        dest: stats,
        source_total: sb.ivinex.stats()["total"].as_u64().unwrap_or(0),
    }
}

/// Calls per endpoint the Zoho sandbox counted (its `/__sandbox/stats`), API calls only.
fn zoho_stats(zoho: &ZohoSandbox) -> BTreeMap<String, u64> {
    let url = format!("{}/__sandbox/stats", zoho.base_url());
    let v: Value = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async { Ok::<Value, anyhow::Error>(reqwest::get(&url).await?.json().await?) })
    })
    .join()
    .ok()
    .and_then(|r| r.ok())
    .unwrap_or_default();
    v["requests"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !k.contains("/__sandbox/"))
                .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

fn diff(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.saturating_sub(before.get(k).copied().unwrap_or(0)),
            )
        })
        .filter(|(_, v)| *v > 0)
        .collect()
}

/// Source pages of every tab at `page_size`, plus the discovery call.
fn source_pages(ivinex: &IvinexSandbox, page_size: u32) -> u64 {
    let tenant = ivinex.tenant();
    1 + tenant
        .tabs
        .iter()
        .map(|t| {
            let n = ivinex
                .records(&t.def.name)
                .map(|r| r.len() as u64)
                .unwrap_or(0);
            n.div_ceil(u64::from(page_size)).max(1)
        })
        .sum::<u64>()
}

/// Runs one migration and measures it. Blocks; builds its own runtimes.
pub fn run(spec: &RunSpec) -> anyhow::Result<RunResult> {
    let sandbox_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("sandbox")
        .enable_all()
        .build()?;
    // Blocking threads live through the run so their CPU time is still readable at the end.
    let engine_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("engine")
        .thread_keep_alive(std::time::Duration::from_secs(3600))
        .enable_all()
        .build()?;
    let faults = FaultConfig {
        latency_ms: spec.latency_ms,
        ..Default::default()
    };
    let sb = sandbox_rt.block_on(async {
        let ivinex = sandbox_ivinex::start(sandbox_ivinex::IvinexConfig {
            seed: Some(spec.seed),
            tickets: spec.tickets,
            faults: faults.clone(),
            ..Default::default()
        })
        .await?;
        let zoho = sandbox_zohodesk::start(ZohoConfig {
            edition: "Professional".into(),
            concurrency_cap: Some(spec.zoho_cap),
            // Credits are compared, not enforced: a day's budget must not stop a 10,000-ticket run.
            daily_credits: Some(100_000_000),
            faults: faults.clone(),
            ..Default::default()
        })
        .await?;
        deskshift_sandbox::prepare_zoho_org(&ivinex, &zoho, 7)?;
        anyhow::Ok(Sandboxes { ivinex, zoho })
    })?;
    let sb = Arc::new(sb);
    let rss_after_sandboxes_kb = measure::vm_rss_kb();
    let result = engine_rt.block_on(async {
        let sb2 = sb.clone();
        let spec2 = spec.clone();
        engine_rt
            .spawn(async move { run_engine(&sb2, &spec2).await })
            .await
            .context("the engine task panicked")?
    });
    let sb = Arc::try_unwrap(sb).map_err(|_| anyhow::anyhow!("sandboxes still in use"))?;
    sandbox_rt.block_on(async {
        sb.ivinex.stop().await;
        sb.zoho.stop().await;
    });
    let mut result = result?;
    result.rss_after_sandboxes_kb = rss_after_sandboxes_kb;
    result.vm_hwm_kb = measure::vm_hwm_kb();
    Ok(result)
}

async fn run_engine(sb: &Sandboxes, spec: &RunSpec) -> anyhow::Result<RunResult> {
    let dir = tempfile::tempdir()?;
    let settings = Settings {
        load_concurrency: spec.concurrency,
        attachment_concurrency: spec.concurrency,
        ..Default::default()
    };
    let creds = sb.ivinex.credentials();
    let source = IvinexSource::new(IvinexConfig {
        base_url: creds.base_url.clone(),
        user: creds.user.clone(),
        password: creds.password.as_str().into(),
        timezone: creds.timezone.clone(),
        page_size: settings.page_size,
        attachment_hosts: vec![],
        max_concurrency: spec.concurrency.min(SOURCE_CAP as usize),
    })?;
    let zone = source.timezone().clone();
    let zc = sb.zoho.config();
    let mut cfg = ZohoDeskConfig::for_dc("com")?;
    cfg.api_base = sb.zoho.base_url().to_string();
    cfg.accounts_base = sb.zoho.base_url().to_string();
    cfg.org_id = sb.zoho.org_id().to_string();
    cfg.client_id = zc.client_id.clone();
    cfg.client_secret = zc.client_secret.as_str().into();
    cfg.refresh_token = zc.refresh_token.as_str().into();
    cfg.concurrency_cap = Some(spec.concurrency.min(spec.zoho_cap as usize));
    let dest = Arc::new(ZohoDesk::connect(cfg).await?);
    let store = SqliteStore::open_in_job(dir.path())?;
    let stage = FileStage::open_in_job(dir.path())?;
    let job = Job {
        settings: settings.clone(),
        source: Arc::new(source),
        dest,
        crosswalk: store.clone(),
        checkpoints: store.clone(),
        audit: store,
        stage,
        progress: Arc::new(NoProgress),
        source_zone: Some(zone),
        dest_info: Default::default(),
    };
    let pages = source_pages(&sb.ivinex, settings.page_size);
    let ideal_cap = u64::from(spec.zoho_cap);

    let start_snap = snapshot(sb);
    let cpu0 = measure::threads_cpu_ms("engine");
    let pcpu0 = measure::process_cpu_ms();
    let started = Instant::now();
    let mut prev = start_snap.clone();
    let mut out = RunResult {
        tickets: spec.tickets,
        latency_ms: spec.latency_ms,
        zoho_cap: spec.zoho_cap,
        concurrency: spec.concurrency,
        ..Default::default()
    };
    let auto = "deskshift-bench (automatic approval, no person reviewed the map)";
    for step in FLOW {
        let t0 = Instant::now();
        let mut validated = None;
        match step.phase {
            Phase::Preflight => {
                phases::preflight(&job).await?;
            }
            Phase::ProposeMapping => {
                phases::propose_mapping(&job).await?;
            }
            Phase::Approval => {
                phases::approve(&job, auto, true).await?;
            }
            Phase::Extract => {
                phases::extract(&job).await?;
            }
            Phase::Schema => {
                phases::schema(&job).await?;
            }
            Phase::Agents => {
                phases::agents(&job).await?;
            }
            Phase::Load(kind) => {
                let rec = phases::load(&job, kind)
                    .await
                    .with_context(|| format!("phase load-{kind}"))?;
                out.failed_records += rec.failed;
            }
            Phase::Attachments => {
                phases::attachments(&job).await?;
            }
            Phase::Validate => {
                let v = phases::validate(&job).await?;
                validated = Some(v.checked as u64);
                out.validation_checked = v.checked as u64;
            }
        }
        let wall_ms = t0.elapsed().as_secs_f64() * 1000.0;
        let snap = snapshot(sb);
        let calls = diff(&snap.dest, &prev.dest);
        let created = diff(&snap.kinds, &prev.kinds);
        let read_endpoints = calls.keys().filter(|k| k.starts_with("GET ")).count() as u64;
        let name = step.phase.name();
        let min = PhaseMinimum {
            dest_writes: created.values().sum(),
            dest_reads: validated.unwrap_or(read_endpoints),
            source: match step.phase {
                Phase::Preflight | Phase::Extract => pages,
                Phase::Attachments => created.values().sum(),
                _ => 0,
            },
        };
        out.phases.push(PhaseResult {
            ideal_ms: measure::phase_ideal_ms(&min, ideal_cap, SOURCE_CAP, spec.latency_ms),
            name,
            wall_ms,
            dest_calls: snap.dest_total - prev.dest_total,
            source_calls: snap.source_total - prev.source_total,
            min,
        });
        prev = snap;
    }
    job.dest.finish().await?;
    out.wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    out.engine_cpu_ms = measure::threads_cpu_ms("engine") - cpu0;
    out.process_cpu_ms = measure::process_cpu_ms() - pcpu0;
    out.ideal_ms = out.phases.iter().map(|p| p.ideal_ms).sum();
    out.dest_endpoints = diff(&prev.dest, &start_snap.dest);
    out.dest_calls = prev.dest_total - start_snap.dest_total;
    out.source_calls = prev.source_total - start_snap.source_total;
    out.source_endpoints = sb.ivinex.stats()["endpoints"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v["count"].as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    out.created = diff(&prev.kinds, &start_snap.kinds);
    let counters = sb.zoho.counters();
    out.credits_used = counters["creditsUsed"].as_u64().unwrap_or(0);
    out.throttled_concurrency = counters["throttledConcurrency"].as_u64().unwrap_or(0);
    out.peak_in_flight = counters["peakInFlight"].as_u64().unwrap_or(0);
    let scoping: Value = job
        .stage
        .get(phases::keys::SCOPING)
        .await?
        .map(|b| serde_json::from_slice(&b))
        .transpose()?
        .unwrap_or_default();
    out.credits_estimated = scoping["estimated_credits"].as_u64().unwrap_or(0);
    Ok(out)
}
