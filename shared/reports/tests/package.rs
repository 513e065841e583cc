//! The migration package of a real run (Ivinex sandbox -> Zoho Desk sandbox), checked against the
//! SOURCE (the Ivinex sandbox's inspection dump) and the destination (the Zoho Desk sandbox), and
//! the HTML report rendered in headless Chromium.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use deskshift_core::job::{Job, NoProgress, Settings};
use deskshift_core::ports::{Destination, Source as SourcePort};
use deskshift_core::runner::{RunOptions, run_flow};
use deskshift_core::util::Secret;
use deskshift_ivinex::{IvinexConfig, IvinexSource};
use deskshift_reports::{DateRange, Level, PackageOptions, write_package};
use deskshift_sandbox::{SandboxOptions, Sandboxes, start_all};
use deskshift_store_embedded::{FileStage, SqliteStore};
use deskshift_zohodesk::{ZohoDesk, ZohoDeskConfig};
use serde_json::Value;

/// A job built the way the CLI's job file builds it, on the sandboxes, in `job_dir`.
async fn job(sb: &Sandboxes, job_dir: &Path) -> Job {
    let info = sb.info();
    let s = |v: &Value, k: &str| v[k].as_str().unwrap().to_string();
    std::fs::create_dir_all(job_dir).unwrap();
    let store = SqliteStore::open_in_job(job_dir).unwrap();
    let stage = FileStage::open_in_job(job_dir).unwrap();
    let src = IvinexSource::new(IvinexConfig {
        base_url: s(&info.ivinex, "base_url"),
        user: s(&info.ivinex, "user"),
        password: Secret::new(s(&info.ivinex, "password")),
        timezone: s(&info.ivinex, "timezone"),
        page_size: 200,
        attachment_hosts: vec![],
        max_concurrency: 8,
    })
    .unwrap();
    let zone = src.timezone().clone();
    let mut cfg = ZohoDeskConfig::for_dc("com").unwrap();
    cfg.api_base = s(&info.zoho, "api_base");
    cfg.accounts_base = s(&info.zoho, "accounts_base");
    cfg.org_id = s(&info.zoho, "org_id");
    cfg.client_id = s(&info.zoho, "client_id");
    cfg.client_secret = s(&info.zoho, "client_secret").into();
    cfg.refresh_token = s(&info.zoho, "refresh_token").into();
    let dest = ZohoDesk::connect(cfg).await.unwrap();
    Job {
        settings: Settings {
            validation_sample: 20,
            ..Default::default()
        },
        source: Arc::new(src) as Arc<dyn SourcePort>,
        dest: Arc::new(dest) as Arc<dyn Destination>,
        crosswalk: store.clone(),
        checkpoints: store.clone(),
        audit: store,
        stage,
        progress: Arc::new(NoProgress),
        source_zone: Some(zone),
        dest_info: Default::default(),
    }
}

async fn get(url: String) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// The source as the Ivinex sandbox dumps it, its fields found by the sandbox's own roles.
struct Src {
    dump: Value,
}

impl Src {
    fn records(&self, tab: &str) -> Vec<Value> {
        self.dump["records"][tab]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
    fn field(&self, tab: &str, role: &str) -> String {
        self.dump["fields"][tab]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["Role"] == role)
            .and_then(|f| f["FieldName"].as_str())
            .unwrap_or_else(|| panic!("{tab} has a {role} field"))
            .to_string()
    }
    fn value(&self, tab: &str, rec: &Value, role: &str) -> String {
        text(&rec[self.field(tab, role)])
    }
    fn id(rec: &Value) -> String {
        text(&rec["collection_id"])
    }
}

fn read_json(path: PathBuf) -> Value {
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

/// `chromium` on PATH, or a failure that says how to install it.
fn chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("chromium"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "headless Chromium is needed to render the HTML report: install it with `apt-get install -y chromium` (Debian package; CI installs it)"
            )
        })
}

/// Runs headless Chromium under `timeout`, which kills its whole process group if it hangs.
fn run_chromium(args: &[String]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("timeout")
        .args(["-k", "10", "120"])
        .arg(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn package_of_a_finished_job_matches_the_source_and_renders() {
    let sb = start_all(&SandboxOptions {
        tickets: 120,
        ..Default::default()
    })
    .await
    .expect("sandboxes start");
    let tz = jiff::tz::TimeZone::get(sb.info().ivinex["timezone"].as_str().unwrap()).unwrap();
    // Records that cannot move (an organization without a name) and record text that must stay
    // text on the page (two organizations named like markup: the second is flagged with its name).
    let before = Src {
        dump: get(format!("{}/__sandbox/dump", sb.ivinex.base_url())).await,
    };
    let org_name = before.field("Organizations", "name");
    let evil = "<script>alert('deskshift')</script><img src=x onerror=alert(1)> Ltd";
    sb.ivinex
        .seed_records(&serde_json::json!({"records": {"Organizations": [
            {org_name.as_str(): "   "},
            {org_name.as_str(): evil},
            {org_name.as_str(): evil},
        ]}}))
        .expect("the source takes the extra organizations");
    let dir = tempfile::tempdir().unwrap();
    let job_dir = dir.path().join("job");
    let job = job(&sb, &job_dir).await;
    run_flow(
        &job,
        &RunOptions {
            auto_approve: Some("reports test (automatic)".into()),
            ..Default::default()
        },
    )
    .await
    .expect("the migration runs");

    let src = Src {
        dump: get(format!("{}/__sandbox/dump", sb.ivinex.base_url())).await,
    };
    let zoho = get(format!("{}/__sandbox/dump", sb.zoho.base_url())).await;

    // The change-history range: the middle half of the source's entries, bounds included.
    let history = src.records("ChangeHistory");
    let at_field = src.field("ChangeHistory", "changed_at");
    let utc = |rec: &Value| -> jiff::Timestamp {
        deskshift_core::util::local_to_utc(&text(&rec[&at_field]), &tz)
            .unwrap()
            .parse()
            .unwrap()
    };
    let mut times: Vec<jiff::Timestamp> = history.iter().map(utc).collect();
    times.sort();
    assert!(times.len() > 20, "the tenant has a change history");
    let range = DateRange {
        from: Some(times[times.len() / 4]),
        to: Some(times[times.len() * 3 / 4]),
    };
    let reports = job_dir.join("reports");
    let started = std::time::Instant::now();
    let index = write_package(
        &job,
        &reports,
        &PackageOptions {
            change_history: Some(range.clone()),
            ..Default::default()
        },
    )
    .await
    .expect("the package is written");
    eprintln!("package written in {:?}", started.elapsed());
    for f in [
        "report.html",
        "workflows.json",
        "workflows.md",
        "views.json",
        "views.md",
        "access-control.json",
        "access-control.md",
        "change-history.jsonl",
        "failed-records.csv",
        "flags.csv",
        "reconciliation.json",
        "index.json",
        "scoping.json",
        "field-map.json",
    ] {
        assert!(reports.join(f).is_file(), "{f} is in the package");
    }
    assert_ne!(index.verdict.level, Level::Bad, "{:?}", index.verdict);

    // Workflows: every source workflow, with its own trigger, tab and state.
    let wf = read_json(reports.join("workflows.json"));
    let listed = wf["workflows"].as_array().unwrap();
    let source_wf = src.records("Workflows");
    assert_eq!(
        listed.len(),
        source_wf.len(),
        "one entry per source workflow"
    );
    for r in &source_wf {
        let id = Src::id(r);
        let e = listed
            .iter()
            .find(|e| e["source_id"] == id.as_str())
            .unwrap_or_else(|| panic!("workflow {id} is in the inventory"));
        assert_eq!(text(&e["name"]), src.value("Workflows", r, "name"));
        assert_eq!(text(&e["tab"]), src.value("Workflows", r, "tab"));
        assert_eq!(text(&e["trigger"]), src.value("Workflows", r, "trigger"));
        assert_eq!(
            text(&e["conditions"]),
            src.value("Workflows", r, "conditions")
        );
        assert_eq!(
            e["active"].as_bool().unwrap(),
            src.value("Workflows", r, "active") == "1"
        );
        assert!(!text(&e["recommended"]["name"]).is_empty());
        assert!(!text(&e["recommended"]["reason"]).is_empty());
    }
    let md = std::fs::read_to_string(reports.join("workflows.md")).unwrap();
    for r in &source_wf {
        assert!(md.contains(&src.value("Workflows", r, "name")));
    }

    // Views: every source view, with its filters and sharing.
    let vi = read_json(reports.join("views.json"));
    let listed = vi["views"].as_array().unwrap();
    let source_views = src.records("Views");
    assert_eq!(listed.len(), source_views.len());
    for r in &source_views {
        let id = Src::id(r);
        let e = listed
            .iter()
            .find(|e| e["source_id"] == id.as_str())
            .unwrap_or_else(|| panic!("view {id} is in the inventory"));
        assert_eq!(text(&e["name"]), src.value("Views", r, "name"));
        assert_eq!(text(&e["filters"]), src.value("Views", r, "filters"));
        assert_eq!(
            e["shared"].as_bool().unwrap(),
            src.value("Views", r, "shared") == "1"
        );
        assert_eq!(text(&e["owner"]), src.value("Views", r, "owner"));
        assert!(!text(&e["recommended"]["criteria"]).is_empty());
    }

    // Access control: every group, with exactly the users whose group link names it.
    let am = read_json(reports.join("access-control.json"));
    let teams = am["teams"].as_array().unwrap();
    let groups = src.records("Groups");
    assert_eq!(teams.len(), groups.len());
    let group_link = src.field("Users", "group");
    let username = src.field("Users", "username");
    let mut members: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for u in src.records("Users") {
        let g = text(&u[&group_link]);
        if !g.is_empty() && g != "0" {
            members.entry(g).or_default().insert(text(&u[&username]));
        }
    }
    for g in &groups {
        let id = Src::id(g);
        let t = teams
            .iter()
            .find(|t| t["group_id"] == id.as_str())
            .unwrap_or_else(|| panic!("group {id} is in the access mapping"));
        assert_eq!(text(&t["group_name"]), src.value("Groups", g, "name"));
        let listed: BTreeSet<String> = t["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| text(&m["username"]))
            .collect();
        assert_eq!(
            listed,
            members.get(&id).cloned().unwrap_or_default(),
            "members of group {id}"
        );
        assert!(
            ["Support Administrator", "Agent", "Light Agent"]
                .contains(&t["suggested_role"].as_str().unwrap())
        );
    }

    // Change history: exactly the source entries inside the range, values as the source has them.
    let exported: Vec<Value> = std::fs::read_to_string(reports.join("change-history.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let expected: BTreeMap<String, &Value> = history
        .iter()
        .filter(|r| range.contains(utc(r)))
        .map(|r| (Src::id(r), r))
        .collect();
    let got: BTreeSet<String> = exported.iter().map(|e| text(&e["entry_id"])).collect();
    assert_eq!(
        got,
        expected.keys().cloned().collect(),
        "exactly the entries in the range"
    );
    assert_eq!(exported.len(), expected.len(), "no entry twice");
    for e in &exported {
        let r = expected[&text(&e["entry_id"])];
        assert_eq!(
            text(&e["record_id"]),
            src.value("ChangeHistory", r, "record_id")
        );
        assert_eq!(text(&e["tab"]), src.value("ChangeHistory", r, "record_tab"));
        assert_eq!(text(&e["field"]), src.value("ChangeHistory", r, "field"));
        assert_eq!(text(&e["old"]), src.value("ChangeHistory", r, "old_value"));
        assert_eq!(text(&e["new"]), src.value("ChangeHistory", r, "new_value"));
        assert_eq!(text(&e["who"]), src.value("ChangeHistory", r, "changed_by"));
        let when: jiff::Timestamp = text(&e["when"]).parse().unwrap();
        assert_eq!(when, utc(r));
        assert!(text(&e["when"]).ends_with('Z'));
    }

    // The HTML report, rendered by Chromium: the key ticket figures, read from source and destination.
    let tickets = src.records("Tickets");
    let spam = src.field("Tickets", "spam");
    let subject = src.field("Tickets", "subject");
    let in_scope = tickets
        .iter()
        .filter(|t| text(&t[&spam]) != "1" && !text(&t[&subject]).starts_with("[TEST]"))
        .count();
    let created = zoho["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["isTrashed"].as_bool() != Some(true))
        .filter(|t| t["cf"]["cf_migrated_from_id"].is_string())
        .count();
    assert!(created > 0);
    let dest_accounts: BTreeSet<String> = zoho["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["isTrashed"].as_bool() != Some(true))
        .filter_map(|a| a["cf"]["cf_migrated_from_id"].as_str())
        .map(|v| v.rsplit(':').next().unwrap().to_string())
        .collect();
    let orgs = src.records("Organizations");
    let orgs_missing = orgs
        .iter()
        .filter(|o| !dest_accounts.contains(&Src::id(o)))
        .count();
    assert!(orgs_missing >= 1, "the nameless organization cannot move");
    let html_path = reports.join("report.html");
    let out = run_chromium(&[
        "--dump-dom".into(),
        format!("file://{}", html_path.display()),
    ]);
    let dom = scraper::Html::parse_document(&String::from_utf8_lossy(&out.stdout));
    let figure = |id: &str| -> String {
        let sel = scraper::Selector::parse(&format!("#{id}")).unwrap();
        dom.select(&sel)
            .next()
            .unwrap_or_else(|| panic!("#{id} is on the rendered page"))
            .text()
            .collect::<String>()
            .trim()
            .to_string()
    };
    assert_eq!(
        figure("rec-ticket-source"),
        tickets.len().to_string(),
        "ticket count"
    );
    assert_eq!(
        figure("rec-ticket-created"),
        created.to_string(),
        "tickets created"
    );
    assert_eq!(
        figure("rec-ticket-migrated"),
        created.to_string(),
        "tickets in the destination"
    );
    assert_eq!(
        figure("rec-ticket-failed"),
        (in_scope - created).to_string(),
        "ticket failures: in scope but not in the destination"
    );
    assert_eq!(figure("rec-account-source"), orgs.len().to_string());
    assert_eq!(
        figure("rec-account-failed"),
        orgs_missing.to_string(),
        "account failures: in the source but not in the destination"
    );
    let failed_rows = csv::Reader::from_path(reports.join("failed-records.csv"))
        .unwrap()
        .records()
        .count();
    assert_eq!(figure("failed-total"), failed_rows.to_string());
    assert!(!figure("verdict").is_empty());
    let script = scraper::Selector::parse("script").unwrap();
    assert_eq!(dom.select(&script).count(), 0, "no script on the page");
    let img = scraper::Selector::parse("img").unwrap();
    assert_eq!(
        dom.select(&img).count(),
        0,
        "record text never becomes an element"
    );
    let body_text: String = dom.root_element().text().collect();
    assert!(
        body_text.contains("<script>alert('deskshift')</script>"),
        "the flagged organization's name is shown as text"
    );
    assert!(
        body_text.contains("organization has no name"),
        "the failure reason is listed"
    );
    for heading in [
        "Records per object",
        "Failures by reason",
        "Flags by code",
        "Timeline of phases",
        "Agents",
        "Attachments",
        "Validation",
    ] {
        assert!(
            body_text.contains(heading),
            "{heading} section is on the page"
        );
    }

    let png = dir.path().join("report.png");
    run_chromium(&[
        format!("--screenshot={}", png.display()),
        "--window-size=1280,5200".into(),
        "--hide-scrollbars".into(),
        format!("file://{}", html_path.display()),
    ]);
    let bytes = std::fs::read(&png).expect("the screenshot is written");
    assert!(
        bytes.len() > 10_000,
        "the screenshot is not empty ({} bytes)",
        bytes.len()
    );
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    // For a person to look at: DESKSHIFT_REPORTS_KEEP=<dir> keeps the package and the screenshot.
    if let Some(keep) = std::env::var_os("DESKSHIFT_REPORTS_KEEP") {
        let keep = PathBuf::from(keep);
        std::fs::create_dir_all(&keep).unwrap();
        for e in std::fs::read_dir(&reports).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), keep.join(e.file_name())).unwrap();
        }
        std::fs::copy(&png, keep.join("report.png")).unwrap();
    }

    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn package_of_a_partial_job_says_what_is_missing() {
    let sb = start_all(&SandboxOptions {
        tickets: 30,
        seed: 11,
        ..Default::default()
    })
    .await
    .expect("sandboxes start");
    let dir = tempfile::tempdir().unwrap();
    let job_dir = dir.path().join("job");
    let job = job(&sb, &job_dir).await;
    use deskshift_core::phases;
    phases::preflight(&job).await.unwrap();
    phases::propose_mapping(&job).await.unwrap();
    phases::approve(&job, "reports test", true).await.unwrap();
    phases::extract(&job).await.unwrap();

    let reports = job_dir.join("reports");
    let index = write_package(&job, &reports, &PackageOptions::default())
        .await
        .expect("a partial job still gets its package");
    assert!(
        index.verdict.headline.starts_with("Incomplete"),
        "{:?}",
        index.verdict
    );
    assert!(index.notes.iter().any(|n| n.starts_with("validation.json")));
    assert!(
        !reports.join("change-history.jsonl").exists(),
        "the export is opt-in"
    );
    let src = Src {
        dump: get(format!("{}/__sandbox/dump", sb.ivinex.base_url())).await,
    };
    // The inventories need only the staged source, so they are complete already.
    let wf = read_json(reports.join("workflows.json"));
    assert_eq!(
        wf["workflows"].as_array().unwrap().len(),
        src.records("Workflows").len()
    );
    let html = std::fs::read_to_string(reports.join("report.html")).unwrap();
    assert!(html.contains("No load has run yet"));
    assert!(html.contains("not finished"));
    sb.stop().await;
}
