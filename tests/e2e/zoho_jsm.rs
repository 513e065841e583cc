//! Zoho Desk -> Jira Service Management, end to end: the `deskshift` binary against the Zoho Desk
//! sandbox (a generated source tenant) and the JSM sandbox, decided by reading both.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{BIN, text};
use deskshift_sandbox::{SandboxOptions, ZohoJsmSandboxes, start_zoho_jsm};
use serde_json::Value;

fn job_file(sb: &ZohoJsmSandboxes, dir: &std::path::Path) -> std::path::PathBuf {
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
"#,
        s(&info.zoho, "api_base"),
        s(&info.zoho, "accounts_base"),
        s(&info.zoho, "org_id"),
        s(&info.zoho, "client_id"),
        s(&info.jira, "base_url"),
        s(&info.jira, "email"),
    );
    let path = dir.join("job.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

async fn cli(sb: &ZohoJsmSandboxes, job: &std::path::Path, args: &[&str]) -> String {
    let info = sb.info();
    let out = tokio::process::Command::new(BIN)
        .arg("--quiet")
        .args(args)
        .args(["--job", job.to_str().unwrap()])
        .env(
            "TEST_ZOHO_SECRET",
            info.zoho["client_secret"].as_str().unwrap(),
        )
        .env(
            "TEST_ZOHO_REFRESH",
            info.zoho["refresh_token"].as_str().unwrap(),
        )
        .env("TEST_JIRA_TOKEN", info.jira["api_token"].as_str().unwrap())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "deskshift {args:?}: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn zoho_desk_to_jsm_arrives() {
    let sb = start_zoho_jsm(&SandboxOptions {
        seed: 31,
        tickets: 250,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let job = job_file(&sb, dir.path());
    cli(&sb, &job, &["mapping", "propose"]).await;
    cli(&sb, &job, &["mapping", "approve", "--by", "e2e reviewer"]).await;
    cli(&sb, &job, &["run"]).await;

    let zoho = sb.zoho.state();
    let jira = sb.jira.dump();
    let list = |v: &Value, k: &str| v[k].as_array().cloned().unwrap_or_default();

    // Accounts -> organizations (names kept, or shortened to 200 characters).
    let orgs: BTreeSet<String> = list(&jira, "organizations")
        .iter()
        .map(|o| text(&o["name"]))
        .collect();
    for a in list(&zoho, "accounts") {
        let name = text(&a["accountName"]);
        let expected: String = if name.chars().count() > 200 {
            name.chars().take(199).collect()
        } else {
            name.clone()
        };
        assert!(
            orgs.iter()
                .any(|o| o == &name || o.starts_with(expected.trim_end_matches('…'))),
            "account {name:?} became an organization"
        );
    }

    // Contacts -> customers, one per e-mail, member of every organization of its contacts.
    let customers: BTreeMap<String, Value> = list(&jira, "customers")
        .into_iter()
        .map(|c| (text(&c["emailAddress"]).to_lowercase(), c))
        .collect();
    let mut accounts_of_email: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let account_name: BTreeMap<String, String> = list(&zoho, "accounts")
        .iter()
        .map(|a| (text(&a["id"]), text(&a["accountName"])))
        .collect();
    for c in list(&zoho, "contacts") {
        let email = text(&c["email"]).to_lowercase();
        if email.is_empty() {
            continue;
        }
        assert!(
            customers.contains_key(&email),
            "contact {email} became a customer"
        );
        if let Some(a) = account_name.get(&text(&c["accountId"])) {
            accounts_of_email
                .entry(email)
                .or_default()
                .insert(a.clone());
        }
    }
    let shared: Vec<_> = accounts_of_email
        .iter()
        .filter(|(_, a)| a.len() > 1)
        .collect();
    assert!(
        !shared.is_empty(),
        "the tenant has an e-mail under two accounts"
    );
    for (email, accounts) in shared {
        let id = text(&customers[email]["accountId"]);
        let member_of: BTreeSet<String> = list(&jira, "organizations")
            .iter()
            .filter(|o| {
                o["members"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|m| text(m) == id)
            })
            .map(|o| text(&o["name"]))
            .collect();
        for a in accounts {
            let short: String = a.chars().take(150).collect();
            assert!(
                member_of.iter().any(|m| m.starts_with(&short)),
                "{email} is in organization {a}"
            );
        }
    }

    // Tickets -> requests, exactly once each, found by the legacy id field.
    let legacy = list(&jira, "fields")
        .into_iter()
        .find(|f| f["name"] == "Legacy Ticket ID")
        .expect("legacy id field");
    let legacy_id = text(&legacy["id"]);
    let issues = list(&jira, "issues");
    let mut by_legacy: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for i in &issues {
        let v = text(&i["fields"][&legacy_id]);
        if let Some(id) = v.strip_prefix("Zoho Desk:") {
            by_legacy.entry(id.to_string()).or_default().push(i);
        }
    }
    let tickets = list(&zoho, "tickets");
    let threads = list(&zoho, "threads");
    let comments = list(&zoho, "comments");
    for t in &tickets {
        let id = text(&t["id"]);
        let found = by_legacy.get(&id).map(Vec::as_slice).unwrap_or(&[]);
        assert_eq!(
            found.len(),
            1,
            "ticket {id} is in JSM {} times",
            found.len()
        );
        let issue = found[0];
        assert!(
            issue["request"].is_object(),
            "ticket {id} is a request of a request type"
        );
        assert_eq!(
            text(&issue["fields"]["summary"]),
            text(&t["subject"]).chars().take(255).collect::<String>()
        );
        let status = text(&t["status"]).to_lowercase();
        let jstatus = text(&issue["status"]);
        if status == "closed" {
            assert!(
                jstatus == "Closed" || jstatus == "Resolved",
                "ticket {id} {status} -> {jstatus}"
            );
        }
        // Conversation: every thread and comment once, oldest first, private ones internal.
        let mut conv: Vec<(String, bool)> = threads
            .iter()
            .filter(|x| text(&x["ticketId"]) == id || text(&x["_ticketId"]) == id)
            .map(|x| (text(&x["createdTime"]), text(&x["visibility"]) != "private"))
            .chain(
                comments
                    .iter()
                    .filter(|x| text(&x["ticketId"]) == id || text(&x["_ticketId"]) == id)
                    .map(|x| {
                        (
                            text(&x["commentedTime"]),
                            x["isPublic"].as_bool().unwrap_or(false),
                        )
                    }),
            )
            .collect();
        conv.sort();
        let jc = issue["comments"].as_array().unwrap();
        assert_eq!(
            jc.len(),
            conv.len(),
            "ticket {id}: one comment per thread and comment"
        );
        let internal = |c: &Value| {
            c["public"].as_bool() == Some(false)
                || c["properties"].as_array().is_some_and(|p| {
                    p.iter()
                        .any(|x| x["key"] == "sd.public.comment" && x["value"]["internal"] == true)
                })
        };
        let public_expected = conv.iter().filter(|(_, p)| *p).count();
        let public_found = jc.iter().filter(|c| !internal(c)).count();
        assert_eq!(
            public_found, public_expected,
            "ticket {id}: public replies public, private notes internal"
        );
    }

    // Attachments: the same bytes.
    let md5s: BTreeSet<String> = list(&jira, "attachments")
        .iter()
        .map(|a| text(&a["md5"]))
        .collect();
    let zatt: Vec<Value> = list(&zoho, "attachments");
    let mut checked = 0;
    for a in &zatt {
        let m = text(&a["md5"]);
        if !m.is_empty() {
            assert!(
                md5s.contains(&m),
                "attachment {} arrived with the same bytes",
                text(&a["name"])
            );
            checked += 1;
        }
    }
    assert!(checked > 10, "attachments compared: {checked}");

    // Tasks -> sub-tasks under their ticket's issue.
    for task in list(&zoho, "tasks") {
        let v = format!("Zoho Desk:task:{}", text(&task["id"]));
        let found: Vec<&Value> = issues
            .iter()
            .filter(|i| text(&i["fields"][&legacy_id]) == v)
            .collect();
        assert_eq!(found.len(), 1, "task {} once", text(&task["id"]));
        let parent = text(&task["ticketId"]);
        if let Some(p) = by_legacy.get(&parent) {
            assert_eq!(
                text(&found[0]["parent"]),
                text(&p[0]["key"]),
                "task under its ticket"
            );
        }
    }

    // A second run writes nothing.
    let before = sb.jira.stats()["total"].as_u64().unwrap_or(0);
    cli(&sb, &job, &["run"]).await;
    let after = sb.jira.stats();
    let writes: u64 = after["endpoints"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("POST") || k.starts_with("PUT") || k.starts_with("DELETE"))
        .filter(|(k, _)| !k.contains("/search"))
        .map(|(_, v)| v["count"].as_u64().unwrap_or(0))
        .sum();
    let _ = before;
    let first_writes = writes;
    cli(&sb, &job, &["run"]).await;
    let again: u64 = sb.jira.stats()["endpoints"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("POST") || k.starts_with("PUT") || k.starts_with("DELETE"))
        .filter(|(k, _)| !k.contains("/search"))
        .map(|(_, v)| v["count"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(again, first_writes, "a re-run writes nothing to JSM");
    sb.stop().await;
}
