//! One benchmark run: the sandboxes in their own process (so this process's memory and CPU are the
//! engine's), the phases called in FLOW order with a snapshot of the sandboxes after each.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use deskshift_core::flow::{FLOW, Phase};
use deskshift_core::job::{Job, NoProgress, Settings};
use deskshift_core::phases;
use deskshift_core::ports::{Destination, Source};
use deskshift_ivinex::{IvinexConfig, IvinexSource};
use deskshift_store_embedded::{FileStage, SqliteStore};
use deskshift_zohodesk::ZohoDesk;
use deskshift_zohodesk_source::{ZohoDeskSource, ZohoSourceConfig};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::measure::{self, PhaseMinimum};
use crate::sandboxes::{self, Info, MigrationPath, SandboxProcess, ServeSpec};

/// The Ivinex client's default simultaneous calls (Ivinex publishes no limit).
pub const SOURCE_CAP: u64 = 8;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunSpec {
    pub path: MigrationPath,
    pub tickets: usize,
    pub seed: u64,
    pub latency_ms: u64,
    /// The Zoho Desk org's simultaneous-call cap (the sandbox enforces it).
    pub zoho_cap: u32,
    /// Concurrency the engine is given: load, attachments, destination and source clients.
    pub concurrency: usize,
}

impl RunSpec {
    /// Simultaneous source calls the ideal assumes: the Ivinex client's default, or the Zoho org's cap.
    pub fn source_cap(&self) -> u64 {
        match self.path {
            MigrationPath::IvinexZoho => SOURCE_CAP,
            MigrationPath::ZohoJsm => u64::from(self.zoho_cap),
        }
    }

    /// Simultaneous destination calls the ideal assumes: the Zoho org's cap, or the JSM client's.
    pub fn dest_cap(&self) -> u64 {
        u64::from(self.zoho_cap)
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PhaseResult {
    pub name: String,
    pub wall_ms: f64,
    pub ideal_ms: f64,
    pub dest_calls: u64,
    pub source_calls: u64,
    pub min: PhaseMinimum,
    /// CPU (user + system) of the engine's process during the phase.
    pub cpu_ms: f64,
    /// Resident memory of the engine's process after the phase, and its peak so far.
    pub rss_kb: u64,
    pub hwm_kb: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunResult {
    pub path: Option<MigrationPath>,
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
    /// Credits the pre-flight itself spent, where Zoho Desk is the source (its survey is the read).
    #[serde(default)]
    pub source_credits_preflight: Option<u64>,
    pub throttled_concurrency: u64,
    pub peak_in_flight: u64,
    /// CPU of the engine's process over the phases (the sandboxes run in another process).
    pub engine_cpu_ms: f64,
    /// Peak resident memory of the engine's process (VmHWM), and its RSS before the run.
    pub vm_hwm_kb: u64,
    pub rss_before_kb: u64,
    /// Resident memory of the sandbox process after it started, and its start time.
    pub sandbox_rss_kb: u64,
    pub sandbox_start_s: f64,
    /// Destination records created by the run, per kind (read from the sandbox).
    pub created: BTreeMap<String, u64>,
    pub failed_records: u64,
    pub validation_checked: u64,
    /// CPU of one bare HTTP exchange with the sandbox (see [`call_floor_us`]); zero-latency runs.
    #[serde(default)]
    pub call_floor_us: f64,
    /// When the run finished (UTC).
    #[serde(default)]
    pub run_at: String,
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

/// Runs one migration and measures it: the sandboxes in their own process, the engine in this one.
/// Blocks; builds its own runtime.
pub fn run(spec: &RunSpec) -> anyhow::Result<RunResult> {
    let exe = std::env::current_exe().context("cannot find this program to start the sandboxes")?;
    let mut sb = SandboxProcess::start(
        &exe,
        &ServeSpec {
            path: spec.path,
            tickets: spec.tickets,
            seed: spec.seed,
            latency_ms: spec.latency_ms,
            zoho_cap: spec.zoho_cap,
        },
    )?;
    let engine_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("engine")
        .enable_all()
        .build()?;
    let rss_before_kb = measure::vm_rss_kb();
    // block_on, not spawn: the phase futures need not be Send.
    let result = engine_rt.block_on(run_engine(&mut sb, spec));
    drop(engine_rt);
    let (sandbox_rss_kb, sandbox_start_s) = (sb.info.rss_kb, sb.info.start_s);
    sb.stop()?;
    let mut result = result?;
    result.rss_before_kb = rss_before_kb;
    result.sandbox_rss_kb = sandbox_rss_kb;
    result.sandbox_start_s = sandbox_start_s;
    result.vm_hwm_kb = measure::vm_hwm_kb();
    Ok(result)
}

type Ends = (
    Arc<dyn Source>,
    Arc<dyn Destination>,
    Option<jiff::tz::TimeZone>,
);

async fn connect(info: &Info, spec: &RunSpec, settings: &Settings) -> anyhow::Result<Ends> {
    Ok(match spec.path {
        MigrationPath::IvinexZoho => {
            let s = |k: &str| info.ivinex[k].as_str().unwrap_or_default().to_string();
            let source = IvinexSource::new(IvinexConfig {
                base_url: s("base_url"),
                user: s("user"),
                password: s("password").as_str().into(),
                timezone: s("timezone"),
                page_size: settings.page_size,
                attachment_hosts: vec![],
                max_concurrency: spec.concurrency.min(SOURCE_CAP as usize),
            })?;
            let zone = source.timezone().clone();
            let cap = spec.concurrency.min(spec.zoho_cap as usize);
            let dest = ZohoDesk::connect(sandboxes::zoho_config(&info.zoho, cap)?).await?;
            (Arc::new(source), Arc::new(dest), Some(zone))
        }
        MigrationPath::ZohoJsm => {
            let cap = spec.concurrency.min(spec.zoho_cap as usize);
            let source = ZohoDeskSource::connect(ZohoSourceConfig::new(sandboxes::zoho_config(
                &info.zoho, cap,
            )?))
            .await?;
            let s = |k: &str| info.jira[k].as_str().unwrap_or_default().to_string();
            let dest = deskshift_jsm::Jsm::new(deskshift_jsm::JsmConfig {
                base_url: s("base_url"),
                email: s("email"),
                api_token: deskshift_core::util::Secret::new(s("api_token")),
                concurrency_cap: spec.concurrency,
                ..Default::default()
            })?;
            (Arc::new(source), Arc::new(dest), None)
        }
    })
}

async fn run_engine(sb: &mut SandboxProcess, spec: &RunSpec) -> anyhow::Result<RunResult> {
    let dir = tempfile::tempdir()?;
    let settings = Settings {
        load_concurrency: spec.concurrency,
        attachment_concurrency: spec.concurrency,
        source_concurrency: spec.concurrency.min(spec.source_cap() as usize),
        ..Default::default()
    };
    let (source, dest, source_zone) = connect(&sb.info, spec, &settings).await?;
    let store = SqliteStore::open_in_job(dir.path())?;
    let stage = FileStage::open_in_job(dir.path())?;
    let job = Job {
        settings: settings.clone(),
        source,
        dest,
        crosswalk: store.clone(),
        checkpoints: store.clone(),
        audit: store,
        stage,
        progress: Arc::new(NoProgress),
        source_zone,
        dest_info: Default::default(),
    };
    let pages = sb.info.source_pages;
    let mut pages_left = pages;

    let start_snap = sb.snapshot()?;
    let started = Instant::now();
    let mut prev = start_snap.clone();
    let mut out = RunResult {
        path: Some(spec.path),
        tickets: spec.tickets,
        latency_ms: spec.latency_ms,
        zoho_cap: spec.zoho_cap,
        concurrency: spec.concurrency,
        ..Default::default()
    };
    let auto = "deskshift-bench (automatic approval, no person reviewed the map)";
    for step in FLOW {
        let cpu0 = measure::process_cpu_ms();
        let t0 = Instant::now();
        let mut validated = None;
        let name = step.phase.name();
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
                    .with_context(|| format!("phase {name}"))?;
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
        let cpu_ms = measure::process_cpu_ms() - cpu0;
        let snap = sb.snapshot()?;
        let calls = diff(&snap.dest, &prev.dest);
        let created = diff(&snap.kinds, &prev.kinds);
        let read_endpoints = calls.keys().filter(|k| k.starts_with("GET ")).count() as u64;
        let source_calls = snap.source_total - prev.source_total;
        let min = PhaseMinimum {
            dest_writes: created.values().sum(),
            dest_reads: validated.unwrap_or(read_endpoints),
            // The tenant is read once over preflight and extract, counted where the reading happened.
            source: match step.phase {
                Phase::Preflight => {
                    pages_left = pages.saturating_sub(source_calls);
                    pages - pages_left
                }
                Phase::Extract => std::mem::take(&mut pages_left),
                Phase::Attachments => created.values().sum(),
                _ => 0,
            },
        };
        out.phases.push(PhaseResult {
            ideal_ms: measure::phase_ideal_ms(
                &min,
                spec.dest_cap(),
                spec.source_cap(),
                spec.latency_ms,
            ),
            name,
            wall_ms,
            dest_calls: snap.dest_total - prev.dest_total,
            source_calls,
            min,
            cpu_ms,
            rss_kb: measure::vm_rss_kb(),
            hwm_kb: measure::vm_hwm_kb(),
        });
        prev = snap;
    }
    job.dest.finish().await?;
    out.wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    out.engine_cpu_ms = out.phases.iter().map(|p| p.cpu_ms).sum();
    out.ideal_ms = out.phases.iter().map(|p| p.ideal_ms).sum();
    out.dest_endpoints = diff(&prev.dest, &start_snap.dest);
    out.dest_calls = prev.dest_total - start_snap.dest_total;
    out.source_calls = prev.source_total - start_snap.source_total;
    out.source_endpoints = diff(&prev.source, &start_snap.source);
    out.created = diff(&prev.kinds, &start_snap.kinds);
    let counters = &prev.zoho_counters;
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
    // The Zoho Desk org's credits: the destination's on the first path, the source's on the second.
    out.credits_estimated = match spec.path {
        MigrationPath::IvinexZoho => scoping["estimated_credits"].as_u64(),
        MigrationPath::ZohoJsm => scoping["estimated_source_credits"].as_u64(),
    }
    .unwrap_or(0);
    out.source_credits_preflight = scoping["source_credits_spent"].as_u64();
    if spec.latency_ms == 0 {
        let base = sb.info.zoho["api_base"].as_str().unwrap_or_default();
        out.call_floor_us = call_floor_us(base, spec.concurrency).await?;
    }
    out.run_at = deskshift_core::util::now_iso();
    Ok(out)
}

/// CPU this process spends on one bare HTTP exchange with a sandbox: a small GET of its
/// inspection endpoint through a default reqwest client, as many at once as the engine runs. What
/// the engine spends per call beyond this is its own (building the body, reading the answer, the
/// stores); this much no engine making the same calls can avoid.
async fn call_floor_us(base: &str, concurrency: usize) -> anyhow::Result<f64> {
    use futures::StreamExt;
    const CALLS: usize = 3_000;
    let client = reqwest::Client::new();
    let url = format!("{base}/__sandbox/config");
    client
        .get(&url)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    let cpu0 = measure::process_cpu_ms();
    let answers: Vec<reqwest::Result<bytes::Bytes>> = futures::stream::iter(0..CALLS)
        .map(|_| {
            let (client, url) = (&client, &url);
            async move {
                client
                    .get(url)
                    .send()
                    .await?
                    .error_for_status()?
                    .bytes()
                    .await
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let cpu_ms = measure::process_cpu_ms() - cpu0;
    for a in answers {
        a.context("a bare call to the sandbox failed")?;
    }
    Ok(cpu_ms * 1000.0 / CALLS as f64)
}
