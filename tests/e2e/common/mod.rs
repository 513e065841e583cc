//! Shared harness of the end-to-end suites: sandboxes in-process, the `deskshift` binary as a child
//! process with credentials in its environment, and readers of the sandboxes' inspection endpoints.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Output;

use deskshift_sandbox::{SandboxOptions, Sandboxes, ZohoJsmSandboxes, start_all, start_zoho_jsm};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_deskshift");

pub struct Harness {
    pub sb: Sandboxes,
    pub dir: tempfile::TempDir,
    pub job: PathBuf,
    pub http: reqwest::Client,
}

impl Harness {
    pub async fn start(opts: SandboxOptions, settings: &str) -> Harness {
        Harness::start_mode(opts, settings, "mode = \"rest\"").await
    }

    /// `mode` is the destination's mode line(s), e.g. `mode = "import-package"`.
    pub async fn start_mode(opts: SandboxOptions, settings: &str, mode: &str) -> Harness {
        let sb = start_all(&opts).await.expect("sandboxes start");
        let dir = tempfile::tempdir().expect("temp dir");
        let info = sb.info();
        let s = |v: &Value, k: &str| v[k].as_str().unwrap().to_string();
        let toml = format!(
            r#"job_dir = "job"

[source]
platform = "ivinex"
base_url = "{}"
user = "{}"
password = {{ env = "TEST_IVINEX_PASSWORD" }}
timezone = "{}"

[destination]
platform = "zohodesk"
{mode}
api_base = "{}"
accounts_base = "{}"
org_id = "{}"
client_id = "{}"
client_secret = {{ env = "TEST_ZOHO_SECRET" }}
refresh_token = {{ env = "TEST_ZOHO_REFRESH" }}

[settings]
{settings}
"#,
            s(&info.ivinex, "base_url"),
            s(&info.ivinex, "user"),
            s(&info.ivinex, "timezone"),
            s(&info.zoho, "api_base"),
            s(&info.zoho, "accounts_base"),
            s(&info.zoho, "org_id"),
            s(&info.zoho, "client_id"),
        );
        let job = dir.path().join("job.toml");
        std::fs::write(&job, toml).unwrap();
        Harness {
            sb,
            dir,
            job,
            http: reqwest::Client::new(),
        }
    }

    pub fn job_dir(&self) -> PathBuf {
        self.dir.path().join("job")
    }

    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let info = self.sb.info();
        deskshift_command(
            &self.job,
            args,
            &[
                ("TEST_IVINEX_PASSWORD", &info.ivinex["password"]),
                ("TEST_ZOHO_SECRET", &info.zoho["client_secret"]),
                ("TEST_ZOHO_REFRESH", &info.zoho["refresh_token"]),
            ],
        )
    }

    pub async fn zoho(&self) -> Value {
        self.get(format!("{}/__sandbox/dump", self.sb.zoho.base_url()))
            .await
    }

    pub async fn ivinex(&self) -> Value {
        self.get(format!("{}/__sandbox/dump", self.sb.ivinex.base_url()))
            .await
    }

    pub async fn stop(self) {
        self.sb.stop().await;
    }
}

pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(";"),
        other => other.to_string(),
    }
}

/// The source's view, indexed by the sandbox's field roles (never by the engine's map).
/// `deskshift --quiet <args> --job <job>`, with the job file's credentials in its environment.
fn deskshift_command(
    job: &std::path::Path,
    args: &[&str],
    secrets: &[(&str, &Value)],
) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(BIN);
    c.arg("--quiet")
        .args(args)
        .args(["--job", job.to_str().unwrap()]);
    for (name, value) in secrets {
        c.env(name, value.as_str().unwrap());
    }
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    c
}

/// The deskshift binary run against a job directory, and the sandboxes' inspection endpoints.
#[allow(async_fn_in_trait)]
pub trait Cli {
    fn command(&self, args: &[&str]) -> tokio::process::Command;
    fn http(&self) -> &reqwest::Client;

    async fn cli(&self, args: &[&str]) -> Output {
        self.command(args).output().await.expect("deskshift runs")
    }

    /// Runs and asserts success, printing the output on failure.
    async fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args).await;
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "deskshift {args:?} failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    async fn approve(&self) {
        self.cli_ok(&["mapping", "propose"]).await;
        self.cli_ok(&["mapping", "approve", "--by", "e2e reviewer"])
            .await;
    }

    async fn get(&self, url: String) -> Value {
        self.http()
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Cli for Harness {
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        Harness::command(self, args)
    }
    fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

impl Cli for JsmHarness {
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        JsmHarness::command(self, args)
    }
    fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

pub struct Source {
    pub dump: Value,
    pub roles: BTreeMap<(String, String), String>,
}

impl Source {
    pub fn new(dump: Value) -> Source {
        let mut roles = BTreeMap::new();
        for (tab, fields) in dump["fields"].as_object().unwrap() {
            for f in fields.as_array().unwrap() {
                if let Some(role) = f["Role"].as_str() {
                    roles.insert(
                        (tab.clone(), role.to_string()),
                        f["FieldName"].as_str().unwrap().to_string(),
                    );
                }
            }
        }
        Source { dump, roles }
    }

    pub fn records(&self, tab: &str) -> Vec<Value> {
        self.dump["records"][tab]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub fn field(&self, tab: &str, role: &str) -> String {
        self.roles
            .get(&(tab.to_string(), role.to_string()))
            .cloned()
            .unwrap_or_else(|| panic!("{tab} has a {role} field"))
    }

    pub fn value(&self, tab: &str, rec: &Value, role: &str) -> String {
        text(&rec[self.field(tab, role)])
    }

    pub fn id(rec: &Value) -> String {
        text(&rec["collection_id"])
    }

    /// Ticket ids that the default selection moves (spam and [TEST] records excluded).
    pub fn tickets_in_scope(&self) -> BTreeSet<String> {
        self.records("Tickets")
            .iter()
            .filter(|t| self.value("Tickets", t, "spam") != "1")
            .filter(|t| !self.value("Tickets", t, "subject").starts_with("[TEST]"))
            .map(Source::id)
            .collect()
    }

    pub fn users_by_name(&self) -> BTreeMap<String, Value> {
        let f = self.field("Users", "username");
        self.records("Users")
            .into_iter()
            .map(|u| (text(&u[&f]), u))
            .collect()
    }
}

/// Destination records of one kind, indexed by the source id they carry in "Migrated From ID".
pub fn by_source_id(zoho: &Value, kind: &str) -> BTreeMap<String, Vec<Value>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in zoho[kind].as_array().cloned().unwrap_or_default() {
        if r["isTrashed"].as_bool() == Some(true) {
            continue;
        }
        if let Some(v) = r["cf"]["cf_migrated_from_id"].as_str() {
            let id = v.rsplit(':').next().unwrap().to_string();
            out.entry(id).or_default().push(r);
        }
    }
    out
}

/// Comments per destination ticket id, in creation order, with the source activity id their
/// marker names.
pub fn comments_by_ticket(zoho: &Value) -> BTreeMap<String, Vec<(Option<String>, Value)>> {
    let re_marker = |content: &str| {
        let start = content.find("[deskshift:")?;
        let end = content[start..].find(']')? + start;
        content[start + 1..end]
            .rsplit(':')
            .next()
            .map(str::to_string)
    };
    let mut out: BTreeMap<String, Vec<(Option<String>, Value)>> = BTreeMap::new();
    let trashed = trashed_tickets(zoho);
    let mut all: Vec<Value> = zoho["comments"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| !trashed.contains(&text(&c["_ticketId"])))
        .collect();
    all.sort_by_key(|c| {
        (
            text(&c["commentedTime"]),
            c["id"].as_str().unwrap_or("").parse::<u64>().unwrap_or(0),
        )
    });
    for c in all {
        let t = text(&c["_ticketId"]);
        let marker = re_marker(c["content"].as_str().unwrap_or(""));
        out.entry(t).or_default().push((marker, c));
    }
    out
}

/// Tickets in the trash: their comments and attachments are gone with them.
pub fn trashed_tickets(zoho: &Value) -> BTreeSet<String> {
    zoho["tickets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|t| t["isTrashed"].as_bool() == Some(true))
        .map(|t| text(&t["id"]))
        .collect()
}

pub fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(bytes))
}

/// Every in-scope source record is in the destination exactly once; returns the Zoho dump.
pub async fn assert_exactly_once(h: &Harness, src: &Source) -> Value {
    let zoho = h.zoho().await;
    let in_scope = src.tickets_in_scope();
    let tickets = by_source_id(&zoho, "tickets");
    for id in &in_scope {
        let n = tickets.get(id).map_or(0, Vec::len);
        assert_eq!(n, 1, "source ticket {id} is in Zoho Desk {n} times");
    }
    for id in tickets.keys() {
        assert!(
            in_scope.contains(id),
            "Zoho Desk holds ticket {id}, which the selection excludes"
        );
    }
    for (tab, kind) in [("Organizations", "accounts"), ("Contacts", "contacts")] {
        let dest = by_source_id(&zoho, kind);
        for r in src.records(tab) {
            let id = Source::id(&r);
            let n = dest.get(&id).map_or(0, Vec::len);
            assert_eq!(n, 1, "source {tab} record {id} is in Zoho Desk {n} times");
        }
    }
    let tasks = by_source_id(&zoho, "tasks");
    let task_ticket = src.field("Tasks", "ticket");
    for t in src.records("Tasks") {
        let parent = text(&t[&task_ticket]);
        let expected = if parent.is_empty() || parent == "0" {
            1
        } else {
            usize::from(in_scope.contains(&parent))
        };
        let id = Source::id(&t);
        assert_eq!(
            tasks.get(&id).map_or(0, Vec::len),
            expected,
            "task {id} (ticket {parent:?})"
        );
    }
    // Activities: one comment per activity of an in-scope ticket, never two.
    let comments = comments_by_ticket(&zoho);
    let mut seen = BTreeMap::new();
    for list in comments.values() {
        for (marker, _) in list {
            if let Some(m) = marker {
                *seen.entry(m.clone()).or_insert(0) += 1;
            }
        }
    }
    let act_ticket = src.field("Activities", "ticket");
    for a in src.records("Activities") {
        let id = Source::id(&a);
        let expected = usize::from(in_scope.contains(&text(&a[&act_ticket])));
        assert_eq!(
            seen.get(&id).copied().unwrap_or(0),
            expected,
            "activity {id} as comments"
        );
    }
    zoho
}

/// The Zoho Desk -> JSM path: the generated Zoho tenant, the JSM sandbox and a job file for both.
pub struct JsmHarness {
    pub sb: ZohoJsmSandboxes,
    pub dir: tempfile::TempDir,
    pub job: PathBuf,
    pub http: reqwest::Client,
}

impl JsmHarness {
    /// `destination` lines are added to the `[destination]` table, `settings` to `[settings]`.
    pub async fn start(opts: SandboxOptions, destination: &str, settings: &str) -> JsmHarness {
        let sb = start_zoho_jsm(&opts).await.expect("sandboxes start");
        let dir = tempfile::tempdir().expect("temp dir");
        let info = sb.info();
        let s = |v: &Value, k: &str| v[k].as_str().unwrap().to_string();
        let toml = format!(
            r#"job_dir = "job"

[source]
platform = "zohodesk"
api_base = "{}"
accounts_base = "{}"
org_id = "{}"
client_id = "{}"
client_secret = {{ env = "TEST_ZOHO_SECRET" }}
refresh_token = {{ env = "TEST_ZOHO_REFRESH" }}

[destination]
platform = "jsm"
base_url = "{}"
email = "{}"
api_token = {{ env = "TEST_JIRA_TOKEN" }}
{destination}

[settings]
{settings}
"#,
            s(&info.zoho, "api_base"),
            s(&info.zoho, "accounts_base"),
            s(&info.zoho, "org_id"),
            s(&info.zoho, "client_id"),
            s(&info.jira, "base_url"),
            s(&info.jira, "email"),
        );
        let job = dir.path().join("job.toml");
        std::fs::write(&job, toml).unwrap();
        JsmHarness {
            sb,
            dir,
            job,
            http: reqwest::Client::new(),
        }
    }

    pub fn job_dir(&self) -> PathBuf {
        self.dir.path().join("job")
    }

    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let info = self.sb.info();
        deskshift_command(
            &self.job,
            args,
            &[
                ("TEST_ZOHO_SECRET", &info.zoho["client_secret"]),
                ("TEST_ZOHO_REFRESH", &info.zoho["refresh_token"]),
                ("TEST_JIRA_TOKEN", &info.jira["api_token"]),
            ],
        )
    }

    /// The Zoho Desk source as its inspection endpoint shows it.
    pub async fn zoho(&self) -> Value {
        self.get(format!("{}/__sandbox/dump", self.sb.zoho.base_url()))
            .await
    }

    /// The JSM site as its inspection endpoint shows it.
    pub async fn jira(&self) -> Value {
        self.get(format!("{}/__sandbox/dump", self.sb.jira.base_url()))
            .await
    }

    /// Writes (POST/PUT/DELETE, searches excluded) the JSM sandbox has answered so far.
    pub async fn jira_writes(&self) -> u64 {
        self.jira_write_counts().await.values().sum()
    }

    /// Writes the JSM sandbox has answered so far, by endpoint.
    pub async fn jira_write_counts(&self) -> BTreeMap<String, u64> {
        let stats = self
            .get(format!("{}/__sandbox/stats", self.sb.jira.base_url()))
            .await;
        stats["endpoints"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| {
                k.starts_with("POST") || k.starts_with("PUT") || k.starts_with("DELETE")
            })
            .filter(|(k, _)| !k.contains("/search") && !k.contains("/__sandbox/"))
            .map(|(k, v)| (k.clone(), v["count"].as_u64().unwrap_or(0)))
            .collect()
    }

    /// The Zoho Desk source's request counts and counters (credits, concurrency).
    pub async fn zoho_stats(&self) -> Value {
        self.get(format!("{}/__sandbox/stats", self.sb.zoho.base_url()))
            .await
    }

    /// Calls the Zoho Desk source's API has answered, by endpoint.
    pub async fn zoho_requests(&self) -> BTreeMap<String, u64> {
        let stats = self.zoho_stats().await;
        stats["requests"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
            .collect()
    }

    pub fn report(&self, name: &str) -> String {
        std::fs::read_to_string(self.job_dir().join("reports").join(name))
            .unwrap_or_else(|e| panic!("reports/{name}: {e}"))
    }

    pub async fn stop(self) {
        self.sb.stop().await;
    }
}

/// Jira issues by the value of their "Legacy Ticket ID" field (`Zoho Desk:<id>`,
/// `Zoho Desk:task:<id>`), with that field's id.
pub fn issues_by_legacy(jira: &Value) -> (String, BTreeMap<String, Vec<Value>>) {
    let legacy = jira["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "Legacy Ticket ID")
        .map(|f| text(&f["id"]))
        .unwrap_or_default();
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for i in jira["issues"].as_array().cloned().unwrap_or_default() {
        let v = text(&i["fields"][&legacy]);
        if let Some(id) = v.strip_prefix("Zoho Desk:") {
            out.entry(id.to_string()).or_default().push(i);
        }
    }
    (legacy, out)
}

/// The text of an ADF document (text nodes joined, paragraphs on their own lines).
pub fn adf_text(v: &Value) -> String {
    fn walk(v: &Value, out: &mut String) {
        if let Some(t) = v["text"].as_str() {
            out.push_str(t);
        }
        if let Some(c) = v["content"].as_array() {
            for x in c {
                walk(x, out);
            }
            if matches!(v["type"].as_str(), Some("paragraph" | "heading")) {
                out.push('\n');
            }
        }
    }
    let mut out = String::new();
    walk(v, &mut out);
    out
}

/// The ids of every ADF `media` node of a document, in order.
pub fn adf_media(v: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        if v["type"] == "media"
            && let Some(id) = v["attrs"]["id"].as_str()
        {
            out.push(id.to_string());
        }
        if let Some(c) = v["content"].as_array() {
            for x in c {
                walk(x, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(v, &mut out);
    out
}
