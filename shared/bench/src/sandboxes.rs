//! The sandboxes of one benchmark run, in their own process so the engine's process measures the
//! engine alone.
//!
//! Server side (`deskshift-bench --serve-sandboxes`): starts the sandboxes of a path, prints one
//! JSON line ([`Info`]: addresses, sandbox credentials, source minimum), then answers each
//! `snapshot` line on stdin with one JSON line ([`Snapshot`]: calls per endpoint, records per
//! kind, counters). Stdin at EOF (or SIGTERM) stops them.
//!
//! Client side ([`SandboxProcess`]): starts that process, reads its info, asks for snapshots and
//! closes its stdin at the end.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::{Context, bail};
use sandbox_kit::FaultConfig;
use sandbox_zohodesk::{ZohoConfig, ZohoSandbox};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::measure;

/// Which migration the run measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum MigrationPath {
    /// Ivinex -> Zoho Desk (REST).
    IvinexZoho,
    /// Zoho Desk -> Jira Service Management.
    ZohoJsm,
}

impl MigrationPath {
    pub fn label(self) -> &'static str {
        match self {
            MigrationPath::IvinexZoho => "Ivinex -> Zoho Desk",
            MigrationPath::ZohoJsm => "Zoho Desk -> Jira Service Management",
        }
    }

    pub fn flag(self) -> &'static str {
        match self {
            MigrationPath::IvinexZoho => "ivinex-zoho",
            MigrationPath::ZohoJsm => "zoho-jsm",
        }
    }
}

/// What the sandboxes are started with.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServeSpec {
    pub path: MigrationPath,
    pub tickets: usize,
    pub seed: u64,
    pub latency_ms: u64,
    /// The Zoho Desk org's simultaneous-call cap (destination on the first path, source on the second).
    pub zoho_cap: u32,
}

/// Where the sandboxes are (sandbox credentials only) and the source minimum of the run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Info {
    pub ivinex: Value,
    pub zoho: Value,
    pub jira: Value,
    /// Minimum source calls to read the tenant once (pages of every collection plus discovery).
    pub source_pages: u64,
    /// Resident memory of the sandbox process right after the start, KiB.
    pub rss_kb: u64,
    /// Seconds the sandboxes took to generate and load the tenant.
    pub start_s: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// Destination records per kind (read from the destination sandbox).
    pub kinds: BTreeMap<String, u64>,
    /// Destination API calls per endpoint.
    pub dest: BTreeMap<String, u64>,
    pub dest_total: u64,
    /// Source API calls per endpoint.
    pub source: BTreeMap<String, u64>,
    pub source_total: u64,
    /// Zoho Desk counters (credits, 429s, peak in flight) of the Zoho org in the run.
    pub zoho_counters: Value,
    /// Resident memory of the sandbox process, KiB.
    pub rss_kb: u64,
}

/// Destination kinds whose growth during a phase counts as that phase's required creates.
const ZOHO_KINDS: &[&str] = &[
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
const JIRA_KINDS: &[&str] = &[
    "customers",
    "organizations",
    "issues",
    "comments",
    "attachments",
    "fields",
    "components",
    "links",
];

enum Running {
    IvinexZoho(Box<(sandbox_ivinex::IvinexSandbox, ZohoSandbox)>),
    ZohoJsm(deskshift_sandbox::ZohoJsmSandboxes),
}

/// `deskshift-bench --serve-sandboxes`: runs until stdin closes.
pub fn serve(spec: &ServeSpec) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("sandbox")
        .enable_all()
        .build()?;
    let started = std::time::Instant::now();
    let faults = FaultConfig {
        latency_ms: spec.latency_ms,
        ..Default::default()
    };
    let running = rt.block_on(start(spec, &faults))?;
    let mut info = match &running {
        Running::IvinexZoho(sb) => {
            let (ivinex, zoho) = sb.as_ref();
            let iv = ivinex.credentials();
            let zc = zoho.config();
            Info {
                source_pages: ivinex_pages(
                    ivinex,
                    deskshift_core::job::Settings::default().page_size,
                ),
                ivinex: json!({"base_url": iv.base_url, "user": iv.user, "password": iv.password, "timezone": iv.timezone}),
                zoho: json!({
                    "api_base": zoho.base_url(),
                    "accounts_base": zoho.base_url(),
                    "org_id": zoho.org_id(),
                    "client_id": zc.client_id,
                    "client_secret": zc.client_secret,
                    "refresh_token": zc.refresh_token,
                }),
                jira: Value::Null,
                ..Default::default()
            }
        }
        Running::ZohoJsm(sb) => {
            let i = sb.info();
            Info {
                source_pages: zoho_source_pages(&sb.zoho),
                ivinex: Value::Null,
                zoho: i.zoho,
                jira: i.jira,
                ..Default::default()
            }
        }
    };
    info.start_s = started.elapsed().as_secs_f64();
    info.rss_kb = measure::vm_rss_kb();
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string(&info)?)?;
    out.flush()?;
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line?;
        match line.trim() {
            "snapshot" => {
                let snap = rt.block_on(snapshot(&running));
                writeln!(out, "{}", serde_json::to_string(&snap)?)?;
                out.flush()?;
            }
            "" => {}
            other => bail!("unknown command {other:?} on stdin; send `snapshot` or close stdin"),
        }
    }
    rt.block_on(async {
        match running {
            Running::IvinexZoho(sb) => {
                let (ivinex, zoho) = *sb;
                ivinex.stop().await;
                zoho.stop().await;
            }
            Running::ZohoJsm(sb) => sb.stop().await,
        }
    });
    Ok(())
}

async fn start(spec: &ServeSpec, faults: &FaultConfig) -> anyhow::Result<Running> {
    let opts = deskshift_sandbox::SandboxOptions {
        seed: spec.seed,
        tickets: spec.tickets,
        faults: faults.clone(),
        ..Default::default()
    };
    match spec.path {
        MigrationPath::IvinexZoho => {
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
                // Credits are compared, not enforced: a day's budget must not stop a long run.
                daily_credits: Some(u64::MAX / 4),
                faults: faults.clone(),
                ..Default::default()
            })
            .await?;
            deskshift_sandbox::prepare_zoho_org(&ivinex, &zoho, opts.missing_agent_every)?;
            Ok(Running::IvinexZoho(Box::new((ivinex, zoho))))
        }
        MigrationPath::ZohoJsm => {
            let sb = deskshift_sandbox::start_zoho_jsm(&opts).await?;
            // The launcher starts Jira without faults; the benchmark adds the same latency to both sides.
            sb.jira.faults().set(faults.clone());
            Ok(Running::ZohoJsm(sb))
        }
    }
}

/// Source pages of every Ivinex tab at `page_size`, plus the discovery call.
fn ivinex_pages(ivinex: &sandbox_ivinex::IvinexSandbox, page_size: u32) -> u64 {
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

fn count(v: Option<Value>) -> u64 {
    v.and_then(|v| v.as_array().map(|a| a.len() as u64))
        .unwrap_or(0)
}

/// Minimum calls to read a Zoho Desk tenant once with the source's default page sizes: list pages
/// of tickets (100), accounts, contacts, tasks and products (99); per ticket its details, its
/// thread list and its comment list (the API has no cross-ticket listing of them); per thread its
/// content (the list holds summaries only); plus discovery (departments, agents, fields).
fn zoho_source_pages(zoho: &ZohoSandbox) -> u64 {
    let pages = |kind: &str, size: u64| count(zoho.records(kind)).div_ceil(size).max(1);
    let tickets = count(zoho.records("tickets"));
    let threads = count(zoho.records("threads"));
    3 + pages("tickets", 100)
        + pages("accounts", 99)
        + pages("contacts", 99)
        + pages("tasks", 99)
        + pages("products", 99)
        + 3 * tickets
        + threads
}

async fn get_json(url: String) -> Value {
    async { anyhow::Ok(reqwest::get(&url).await?.json::<Value>().await?) }
        .await
        .unwrap_or_default()
}

/// Calls per endpoint the Zoho sandbox counted (its `/__sandbox/stats`), API calls only.
async fn zoho_stats(zoho: &ZohoSandbox) -> (BTreeMap<String, u64>, Value) {
    let v = get_json(format!("{}/__sandbox/stats", zoho.base_url())).await;
    let calls = v["requests"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !k.contains("/__sandbox/"))
                .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    (calls, zoho.counters())
}

/// `{"endpoints": {k: {"count": n}}}` (the Ivinex and Jira sandboxes' stats) as calls per endpoint.
fn endpoint_counts(stats: &Value) -> BTreeMap<String, u64> {
    stats["endpoints"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !k.contains("/__sandbox/"))
                .map(|(k, v)| (k.clone(), v["count"].as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

async fn snapshot(running: &Running) -> Snapshot {
    let mut snap = match running {
        Running::IvinexZoho(sb) => {
            let (ivinex, zoho) = sb.as_ref();
            let (dest, counters) = zoho_stats(zoho).await;
            let source = endpoint_counts(&ivinex.stats());
            Snapshot {
                kinds: ZOHO_KINDS
                    .iter()
                    .map(|k| (k.to_string(), count(zoho.records(k))))
                    .collect(),
                dest_total: dest.values().sum(),
                dest,
                source_total: source.values().sum(),
                source,
                zoho_counters: counters,
                rss_kb: 0,
            }
        }
        Running::ZohoJsm(sb) => {
            let (source, counters) = zoho_stats(&sb.zoho).await;
            let dest = endpoint_counts(&sb.jira.stats());
            Snapshot {
                kinds: JIRA_KINDS
                    .iter()
                    .map(|k| (k.to_string(), count(sb.jira.records(k))))
                    .collect(),
                dest_total: dest.values().sum(),
                dest,
                source_total: source.values().sum(),
                source,
                zoho_counters: counters,
                rss_kb: 0,
            }
        }
    };
    snap.rss_kb = measure::vm_rss_kb();
    snap
}

/// The sandbox process of one run, seen from the engine's process.
pub struct SandboxProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    pub info: Info,
}

impl SandboxProcess {
    /// Starts `exe --serve-sandboxes ...` and waits for its info line.
    pub fn start(exe: &Path, spec: &ServeSpec) -> anyhow::Result<SandboxProcess> {
        let mut child = Command::new(exe)
            .arg("--serve-sandboxes")
            .arg("--path")
            .arg(spec.path.flag())
            .arg("--tickets")
            .arg(spec.tickets.to_string())
            .arg("--seed")
            .arg(spec.seed.to_string())
            .arg("--latency-ms")
            .arg(spec.latency_ms.to_string())
            .arg("--cap")
            .arg(spec.zoho_cap.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start the sandbox process")?;
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().context("sandbox process stdout")?);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let info: Info = match serde_json::from_str(&line) {
            Ok(info) => info,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the sandbox process did not start ({e}); its output is above");
            }
        };
        Ok(SandboxProcess {
            child,
            stdin,
            stdout,
            info,
        })
    }

    pub fn snapshot(&mut self) -> anyhow::Result<Snapshot> {
        let stdin = self
            .stdin
            .as_mut()
            .context("the sandbox process is stopped")?;
        writeln!(stdin, "snapshot")?;
        stdin.flush()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        serde_json::from_str(&line).context("the sandbox process answered no snapshot")
    }

    /// Closes its stdin and waits for it to stop the sandboxes.
    pub fn stop(mut self) -> anyhow::Result<()> {
        drop(self.stdin.take());
        let status = self.child.wait()?;
        if !status.success() {
            bail!("the sandbox process ended with {status}");
        }
        Ok(())
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        if self.stdin.take().is_some() {
            // Not stopped cleanly (an error in the run): end the process so no server outlives it.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The information document's Zoho section as the Zoho Desk connector's configuration.
pub fn zoho_config(zoho: &Value, cap: usize) -> anyhow::Result<deskshift_zohodesk::ZohoDeskConfig> {
    let s = |k: &str| zoho[k].as_str().unwrap_or_default().to_string();
    let mut cfg = deskshift_zohodesk::ZohoDeskConfig::for_dc("com")?;
    cfg.api_base = s("api_base");
    cfg.accounts_base = s("accounts_base");
    cfg.org_id = s("org_id");
    cfg.client_id = s("client_id");
    cfg.client_secret = s("client_secret").as_str().into();
    cfg.refresh_token = s("refresh_token").as_str().into();
    cfg.concurrency_cap = Some(cap);
    Ok(cfg)
}
