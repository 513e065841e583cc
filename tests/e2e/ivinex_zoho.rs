//! Ivinex -> Zoho Desk, end to end: the `deskshift` binary against the sandboxes, decided by
//! reading the Zoho Desk sandbox and comparing with the Ivinex sandbox.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;
use deskshift_sandbox::SandboxOptions;
use sandbox_kit::FaultConfig;
use serde_json::Value;

/// A file's bytes as the Ivinex sandbox serves them to its API user.
async fn source_file(h: &Harness, url: &str) -> Vec<u8> {
    h.http
        .get(url)
        .basic_auth("api@acme.test", Some("sandbox-secret"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

fn opts(seed: u64, tickets: usize) -> SandboxOptions {
    SandboxOptions {
        seed,
        tickets,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_migration_arrives_field_by_field() {
    // Pages of 100: activities load in several batches of whole threads (10 pages' worth each).
    let h = Harness::start(opts(7, 1000), "validation_sample = 40\npage_size = 100").await;

    // Nothing moves before a person approves the map.
    let out = h.cli(&["run"]).await;
    assert!(!out.status.success(), "run without approval must fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not approved"), "the refusal says why: {err}");
    assert_eq!(
        h.zoho().await["tickets"].as_array().unwrap().len(),
        0,
        "no ticket before approval"
    );

    h.approve().await;
    // A changed map needs a new approval.
    let map_path = h.job_dir().join("stage/mapping/field-map.json");
    let original = std::fs::read_to_string(&map_path).unwrap();
    std::fs::write(
        &map_path,
        original.replacen("\"confidence\": 0.9", "\"confidence\": 0.91", 1),
    )
    .unwrap();
    let out = h.cli(&["run"]).await;
    assert!(
        !out.status.success(),
        "an edited map must not run on the old approval"
    );
    std::fs::write(&map_path, &original).unwrap();

    let stdout = h.cli_ok(&["run"]).await;
    assert!(
        stdout.contains("| ticket |"),
        "the reconciliation table is printed:\n{stdout}"
    );

    let src = Source::new(h.ivinex().await);
    let zoho = assert_exactly_once(&h, &src).await;
    let users = src.users_by_name();
    let agents: BTreeMap<String, String> = zoho["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (text(&a["emailId"]).to_lowercase(), text(&a["id"])))
        .collect();
    let tickets = by_source_id(&zoho, "tickets");
    let contacts = by_source_id(&zoho, "contacts");
    let accounts = by_source_id(&zoho, "accounts");
    let dest_contact_source: BTreeMap<String, String> = contacts
        .iter()
        .map(|(sid, v)| (text(&v[0]["id"]), sid.clone()))
        .collect();
    let dest_account_source: BTreeMap<String, String> = accounts
        .iter()
        .map(|(sid, v)| (text(&v[0]["id"]), sid.clone()))
        .collect();
    let fields: Vec<Value> = zoho["fields"].as_array().unwrap().clone();
    let api_name = |module: &str, label: &str| {
        fields
            .iter()
            .find(|f| f["_module"] == module && f["displayLabel"] == label)
            .map(|f| text(&f["apiName"]))
    };

    // Accounts and contacts: fields and links.
    let mut name_count: BTreeMap<String, usize> = BTreeMap::new();
    for r in src.records("Organizations") {
        *name_count
            .entry(src.value("Organizations", &r, "name"))
            .or_insert(0) += 1;
    }
    let flags = std::fs::read_to_string(h.job_dir().join("reports/flags.csv")).unwrap();
    for r in src.records("Organizations") {
        let id = Source::id(&r);
        let d = &accounts[&id][0];
        let name = src.value("Organizations", &r, "name");
        let dn = text(&d["accountName"]);
        if name_count[&name] > 1 && dn != name {
            // A second organization of the same name keeps its own account, named apart and flagged.
            assert!(
                dn.contains(&id)
                    && dn.starts_with(name.chars().take(20).collect::<String>().as_str()),
                "{dn}"
            );
            assert!(
                flags
                    .lines()
                    .any(|l| l.contains(&id) && l.contains("name_duplicate")),
                "duplicate name of {id} flagged"
            );
        } else if name.chars().count() <= 200 {
            assert_eq!(dn, name, "account name");
        } else {
            assert!(
                name.starts_with(dn.trim_end_matches('…')),
                "long account name is shortened, not changed"
            );
            assert!(
                text(&d["description"]).contains(&name),
                "the full name is kept in the description"
            );
        }
        assert_eq!(text(&d["phone"]), src.value("Organizations", &r, "phone"));
        assert_eq!(text(&d["city"]), src.value("Organizations", &r, "city"));
    }
    // Organizations sharing a name are told apart before the create: no create is refused.
    assert!(
        name_count.values().any(|&n| n > 1),
        "the tenant has organizations sharing a name"
    );
    let stats = h
        .get(format!("{}/__sandbox/stats", h.sb.zoho.base_url()))
        .await;
    assert_eq!(
        stats["requests"]["POST /api/v1/accounts"].as_u64(),
        Some(accounts.len() as u64),
        "one account create per organization"
    );
    let org_link = src.field("Contacts", "organization");
    for r in src.records("Contacts") {
        let d = &contacts[&Source::id(&r)][0];
        assert_eq!(
            text(&d["email"]),
            src.value("Contacts", &r, "email"),
            "contact email"
        );
        assert_eq!(
            text(&d["lastName"]),
            src.value("Contacts", &r, "last_name").trim(),
            "contact last name"
        );
        let org = text(&r[&org_link]);
        if !org.is_empty() && org != "0" {
            assert_eq!(
                dest_account_source.get(&text(&d["accountId"])),
                Some(&org),
                "contact's account"
            );
        }
    }

    // Tickets: subject, body, status, assignee, requester, custom fields.
    let in_scope = src.tickets_in_scope();
    let custom_ticket_fields: Vec<(String, String, String)> =
        zoho_fields_for_custom(&src, "Tickets");
    let mut checked_custom = 0;
    for t in src.records("Tickets") {
        let id = Source::id(&t);
        if !in_scope.contains(&id) {
            continue;
        }
        let d = &tickets[&id][0];
        assert_eq!(
            text(&d["subject"]),
            src.value("Tickets", &t, "subject"),
            "ticket {id} subject"
        );
        let desc = src.value("Tickets", &t, "description");
        let ddesc = text(&d["description"]);
        assert!(
            ddesc.contains(desc.trim()),
            "ticket {id}: the description arrives whole"
        );
        assert!(
            ddesc.contains("migrated from Ivinex"),
            "ticket {id}: provenance line"
        );
        let creator = text(&t["created_by"]);
        if let Some(u) = users.get(&creator) {
            let email = src.value("Users", u, "email");
            assert!(
                ddesc.to_lowercase().contains(&email.to_lowercase()),
                "ticket {id}: provenance names the creator {email}"
            );
        }
        let status = src.value("Tickets", &t, "status").to_lowercase();
        let dstatus = text(&d["status"]);
        if status.contains("closed") || status.contains("resolved") {
            assert_eq!(dstatus, "Closed", "ticket {id} status {status}");
        } else if status == "open" || status == "new" {
            assert_eq!(dstatus, "Open", "ticket {id} status {status}");
        }
        let assignee = src.value("Tickets", &t, "assignee");
        if let Some(u) = users.get(&assignee) {
            let email = src.value("Users", u, "email").to_lowercase();
            let active = src.value("Users", u, "active") == "1";
            match agents.get(&email) {
                Some(agent) if active => {
                    assert_eq!(&text(&d["assigneeId"]), agent, "ticket {id} assignee")
                }
                _ => assert!(
                    d["assigneeId"].is_null(),
                    "ticket {id}: no agent for {email}, left unassigned"
                ),
            }
        }
        let contact = src.value("Tickets", &t, "contact");
        if !contact.is_empty() && contact != "0" {
            assert_eq!(
                dest_contact_source.get(&text(&d["contactId"])),
                Some(&contact),
                "ticket {id} requester"
            );
        }
        for (field, label, ftype) in &custom_ticket_fields {
            let v = text(&t[field]);
            if v.is_empty()
                || !matches!(
                    ftype.as_str(),
                    "text" | "dropdown" | "email" | "url" | "phone"
                )
            {
                continue;
            }
            let api =
                api_name("tickets", label).unwrap_or_else(|| panic!("custom field {label} exists"));
            assert_eq!(text(&d["cf"][&api]), v, "ticket {id} custom field {label}");
            checked_custom += 1;
        }
    }
    assert!(
        checked_custom > 100,
        "custom field values were compared ({checked_custom})"
    );

    // Custom fields: created with the right type and picklist values.
    for (field, label, ftype) in &custom_ticket_fields {
        let f = fields
            .iter()
            .find(|f| f["_module"] == "tickets" && f["displayLabel"] == label.as_str())
            .unwrap_or_else(|| panic!("ticket custom field {label} ({field}) was created"));
        let expected = match ftype.as_str() {
            "dropdown" => "Picklist",
            "multiselect" => "Multiselect",
            "checkbox" => "Boolean",
            "date" => "Date",
            "datetime" => "DateTime",
            "number" => "Number",
            "decimal" => "Decimal",
            "textarea" => "Textarea",
            "email" => "Email",
            "phone" => "Phone",
            "url" => "URL",
            _ => "Text",
        };
        assert_eq!(text(&f["type"]), expected, "type of {label}");
        if ftype == "dropdown" {
            let options: BTreeSet<String> = src.dump["fields"]["Tickets"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["FieldName"] == field.as_str())
                .unwrap()["Options"]
                .as_array()
                .unwrap()
                .iter()
                .map(text)
                .collect();
            let allowed: BTreeSet<String> = f["allowedValues"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| text(&v["value"]))
                .collect();
            assert!(
                options.is_subset(&allowed),
                "picklist {label} carries every option"
            );
        }
    }

    // Threads: one comment per activity, in the original order, author and body kept.
    let comments = comments_by_ticket(&zoho);
    let act_ticket = src.field("Activities", "ticket");
    let mut activities: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for a in src.records("Activities") {
        activities.entry(text(&a[&act_ticket])).or_default().push(a);
    }
    let body_field = src.field("Activities", "body");
    let mut compared = 0;
    for (ticket, mut acts) in activities {
        if !in_scope.contains(&ticket) {
            continue;
        }
        acts.sort_by_key(|a| (text(&a["created_date"]), a["collection_id"].as_u64()));
        let dest_id = text(&tickets[&ticket][0]["id"]);
        let list = comments.get(&dest_id).cloned().unwrap_or_default();
        let order: Vec<String> = list.iter().filter_map(|(m, _)| m.clone()).collect();
        let expected: Vec<String> = acts.iter().map(Source::id).collect();
        assert_eq!(
            order, expected,
            "ticket {ticket}: comments in the original order"
        );
        for (a, (_, c)) in acts.iter().zip(&list) {
            let content = text(&c["content"]);
            let body = text(&a[&body_field]);
            let head: String = body.chars().take(200).collect();
            assert!(
                content.contains(head.trim()),
                "activity {} body kept",
                Source::id(a)
            );
            if let Some(u) = users.get(&text(&a["created_by"])) {
                let email = src.value("Users", u, "email").to_lowercase();
                assert!(
                    content.to_lowercase().contains(&email),
                    "activity {} author {email}",
                    Source::id(a)
                );
            }
            compared += 1;
        }
    }
    assert!(compared > 1000, "activities compared: {compared}");

    // Attachments: bytes and MD5 of what the destination stores equal the source's files.
    let dest_att: Vec<Value> = zoho["attachments"].as_array().unwrap().clone();
    let ticket_dest_ids: BTreeMap<String, String> = tickets
        .iter()
        .map(|(sid, v)| (sid.clone(), text(&v[0]["id"])))
        .collect();
    let mut att_checked = 0;
    for a in src.dump["attachments"].as_array().unwrap() {
        let tab = text(&a["record_tab"]);
        let rid = text(&a["record_id"]);
        let ticket = match tab.as_str() {
            "Tickets" => rid.clone(),
            "Activities" => src
                .records("Activities")
                .iter()
                .find(|x| Source::id(x) == rid)
                .map(|x| text(&x[&act_ticket]))
                .unwrap_or_default(),
            _ => continue,
        };
        if !in_scope.contains(&ticket) || a["size"].as_u64().unwrap() > 25 * 1024 * 1024 {
            continue;
        }
        let bytes = source_file(&h, &text(&a["url"])).await;
        let md5 = md5_hex(&bytes);
        let dest_ticket = &ticket_dest_ids[&ticket];
        let found = dest_att.iter().any(|d| {
            text(&d["_ticketId"]) == *dest_ticket
                && text(&d["name"]) == text(&a["file_name"])
                && d["size"].as_u64() == Some(bytes.len() as u64)
                && text(&d["md5"]) == md5
        });
        assert!(
            found,
            "attachment {} of {tab} {rid} arrived with the same bytes",
            text(&a["file_name"])
        );
        att_checked += 1;
    }
    assert!(att_checked > 50, "attachments compared: {att_checked}");

    // Flags of the object map are reported.
    let contacts_without_email = src
        .records("Contacts")
        .iter()
        .filter(|c| src.value("Contacts", c, "email").is_empty())
        .count();
    assert_eq!(
        flags.matches("contact_without_email").count(),
        contacts_without_email,
        "contacts without email"
    );
    let orphans = src
        .records("Tasks")
        .iter()
        .filter(|t| matches!(src.value("Tasks", t, "ticket").as_str(), "" | "0"))
        .count();
    assert_eq!(
        flags.matches("orphan_task").count(),
        orphans,
        "orphan tasks"
    );
    assert!(flags.contains("email_cc"), "CC lists are flagged");
    let agents_report: Value = serde_json::from_str(
        &std::fs::read_to_string(h.job_dir().join("reports/agents.json")).unwrap(),
    )
    .unwrap();
    let inactive = src
        .records("Users")
        .iter()
        .filter(|u| src.value("Users", u, "active") != "1")
        .count();
    assert_eq!(
        agents_report["inactive"].as_u64().unwrap() as usize,
        inactive,
        "inactive users flagged"
    );
    assert!(
        agents_report["provisioning_queue"].as_u64().unwrap() > 0,
        "missing agents queued"
    );
    let attachments: Value = serde_json::from_str(
        &std::fs::read_to_string(h.job_dir().join("reports/attachments.json")).unwrap(),
    )
    .unwrap();
    assert!(
        attachments["over_limit"].as_u64().unwrap() > 0,
        "files over 25 MB are flagged"
    );
    // A file that could not be moved (Zoho Desk takes no files on accounts or contacts) keeps its
    // bytes in the stage, named in the report; a moved file leaves no staged copy.
    let blobs = h.job_dir().join("stage/blobs");
    let mut kept = std::collections::BTreeSet::new();
    for p in attachments["problems"].as_array().unwrap() {
        if !matches!(text(&p["record_kind"]).as_str(), "account" | "contact") {
            continue;
        }
        let key = text(&p["kept"]);
        let staged = std::fs::read(h.job_dir().join("stage").join(&key))
            .unwrap_or_else(|e| panic!("{} kept as {key:?}: {e}", text(&p["file_name"])));
        let source = source_file(&h, &text(&p["url"])).await;
        assert_eq!(
            md5_hex(&staged),
            md5_hex(&source),
            "kept bytes of {}",
            text(&p["file_name"])
        );
        kept.insert(key);
    }
    assert!(!kept.is_empty(), "account and contact files are reported");
    let staged_blobs = std::fs::read_dir(&blobs).map(|d| d.count()).unwrap_or(0);
    assert_eq!(staged_blobs, kept.len(), "only files not moved are staged");
    let validation: Value = serde_json::from_str(
        &std::fs::read_to_string(h.job_dir().join("reports/validation.json")).unwrap(),
    )
    .unwrap();
    assert!(validation["checked"].as_u64().unwrap() >= 40);

    // Credentials never reach the job directory (state, stage, reports).
    let info = h.sb.info();
    let secrets = [
        info.ivinex["password"].as_str().unwrap().to_string(),
        info.zoho["client_secret"].as_str().unwrap().to_string(),
        info.zoho["refresh_token"].as_str().unwrap().to_string(),
    ];
    let mut stack = vec![h.job_dir()];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                // Staged binaries are the source's own files, byte for byte.
                if !p.ends_with("blobs") {
                    stack.push(p);
                }
                continue;
            }
            files += 1;
            let bytes = std::fs::read(&p).unwrap();
            for secret in &secrets {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "a credential is written in {}",
                    p.display()
                );
            }
        }
    }
    assert!(files > 20, "the job directory was searched ({files} files)");

    // A second run moves nothing again.
    let before = h
        .get(format!("{}/__sandbox/stats", h.sb.zoho.base_url()))
        .await;
    h.cli_ok(&["run"]).await;
    let after = h
        .get(format!("{}/__sandbox/stats", h.sb.zoho.base_url()))
        .await;
    let writes = |s: &Value| {
        s["requests"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| {
                (k.starts_with("POST") || k.starts_with("PATCH")) && k.contains("/api/v1/")
            })
            .map(|(_, v)| v.as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(writes(&after), writes(&before), "a re-run writes nothing");
    h.stop().await;
}

/// (field name, label, type) of the tenant's custom fields on a tab (roles `custom_*`).
fn zoho_fields_for_custom(src: &Source, tab: &str) -> Vec<(String, String, String)> {
    src.dump["fields"][tab]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["Role"].as_str().is_some_and(|r| r.starts_with("custom_")))
        .filter(|f| !matches!(f["Type"].as_str(), Some("linked_record")))
        .map(|f| {
            (
                text(&f["FieldName"]),
                text(&f["DisplayText"]),
                text(&f["Type"]),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn loads_keep_every_slot_busy_across_pages() {
    // Pages of 3 records and 6 writes at once: a load that waited for a page's last create before
    // starting the next page would never have more than 3 creates of one kind in flight.
    let mut o = opts(13, 60);
    o.faults.latency_ms = 20;
    let h = Harness::start(o, "page_size = 3\nload_concurrency = 6").await;
    h.approve().await;
    h.cli_ok(&["run"]).await;
    let src = Source::new(h.ivinex().await);
    assert_exactly_once(&h, &src).await;
    let stats = h
        .get(format!("{}/__sandbox/stats", h.sb.zoho.base_url()))
        .await;
    let peaks = &stats["counters"]["peakInFlightByEndpoint"];
    for endpoint in [
        "POST /api/v1/contacts",
        "POST /api/v1/tickets",
        "POST /api/v1/tickets/{ticketId}/comments",
    ] {
        let peak = peaks[endpoint].as_u64().unwrap_or(0);
        assert!(
            peak > 3 && peak <= 6,
            "{endpoint}: at most {peak} creates at once (pages of 3, 6 slots): {peaks}"
        );
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_at_any_point_resumes_without_duplicates() {
    let h = Harness::start(opts(11, 300), "load_concurrency = 6").await;
    h.approve().await;
    // Kill points by what has arrived in the destination.
    let points: [(&str, usize); 4] = [
        ("accounts", 5),
        ("tickets", 60),
        ("comments", 400),
        ("attachments", 40),
    ];
    for (kind, threshold) in points {
        let mut child = h.command(&["run"]).spawn().unwrap();
        let mut killed = false;
        for _ in 0..2400 {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "run ended early with {status}");
                break;
            }
            let n = h
                .get(format!("{}/__sandbox/records/{kind}", h.sb.zoho.base_url()))
                .await
                .as_array()
                .map_or(0, Vec::len);
            if n >= threshold {
                child.start_kill().unwrap(); // SIGKILL
                child.wait().await.unwrap();
                killed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        eprintln!("kill point {kind} >= {threshold}: killed = {killed}");
    }
    h.cli_ok(&["run"]).await;
    let src = Source::new(h.ivinex().await);
    let zoho = assert_exactly_once(&h, &src).await;
    // Attachments: none twice on a ticket.
    let mut seen = BTreeSet::new();
    for a in zoho["attachments"].as_array().unwrap() {
        let key = (text(&a["_ticketId"]), text(&a["name"]), text(&a["md5"]));
        assert!(
            seen.insert(key.clone()),
            "attachment {key:?} uploaded twice"
        );
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_lose_and_duplicate_nothing() {
    let faults = FaultConfig {
        seed: 5,
        error_5xx_rate: 0.05,
        burst_429_rate: 0.02,
        burst_len: 3,
        retry_after_secs: 0,
        reset_rate: 0.01,
        ..Default::default()
    };
    let h = Harness::start(
        SandboxOptions {
            faults,
            ..opts(13, 200)
        },
        "",
    )
    .await;
    h.approve().await;
    h.cli_ok(&["run"]).await;
    let src = Source::new(h.ivinex().await);
    assert_exactly_once(&h, &src).await;
    let z = h
        .get(format!("{}/__sandbox/faults", h.sb.zoho.base_url()))
        .await;
    let c = &z["counters"];
    assert!(
        c["errors_5xx"].as_u64().unwrap() > 0 && c["throttled_429"].as_u64().unwrap() > 0,
        "faults were injected: {c}"
    );
    let i = h
        .get(format!("{}/__sandbox/faults", h.sb.ivinex.base_url()))
        .await;
    assert!(
        i["counters"]["resets"].as_u64().unwrap() > 0 || c["resets"].as_u64().unwrap() > 0,
        "resets were injected"
    );
    h.stop().await;
}

/// Reads every CSV file of a module of the package: (header, rows).
fn package_rows(dir: &std::path::Path, stem: &str) -> (Vec<String>, Vec<BTreeMap<String, String>>) {
    let mut header = Vec::new();
    let mut rows = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.starts_with(&format!("{stem}_")) && n.ends_with(".csv")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the package has {stem} files");
    for f in files {
        let bytes = std::fs::metadata(&f).unwrap().len();
        assert!(
            bytes <= 30_000_000,
            "{} is {bytes} bytes: over the 30 MB batch limit",
            f.display()
        );
        let mut r = csv::Reader::from_path(&f).unwrap();
        let h: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
        let mut n = 0;
        for rec in r.records() {
            let rec = rec.unwrap();
            rows.push(
                h.iter()
                    .cloned()
                    .zip(rec.iter().map(str::to_string))
                    .collect(),
            );
            n += 1;
        }
        assert!(
            n <= 10_000,
            "{} holds {n} rows: over the 10,000-row batch limit",
            f.display()
        );
        header = h;
    }
    (header, rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn import_package_follows_the_column_rules() {
    let h = Harness::start_mode(
        opts(7, 300),
        "",
        "mode = \"import-package\"\npackage_dir = \"package\"",
    )
    .await;
    h.approve().await;
    h.cli_ok(&["run"]).await;
    let dir = h.dir.path().join("package");
    let src = Source::new(h.ivinex().await);
    let time_re = |s: &str| {
        s.len() == 24
            && s.as_bytes()[4] == b'-'
            && s.as_bytes()[10] == b'T'
            && s.ends_with(".000Z")
            && s[..19].chars().filter(|c| c.is_ascii_digit()).count() == 14
    };
    let (_, accounts) = package_rows(&dir, "Accounts");
    let (_, contacts) = package_rows(&dir, "Contacts");
    let (th, tickets) = package_rows(&dir, "Tickets");
    let (_, threads) = package_rows(&dir, "Threads");
    let (_, comments) = package_rows(&dir, "Ticket_Comments");
    let (_, agents) = package_rows(&dir, "Agents");
    assert_eq!(th[0], "TicketExtId", "the key column comes first");
    let ids = |rows: &[BTreeMap<String, String>], col: &str| -> BTreeSet<String> {
        let v: Vec<String> = rows.iter().map(|r| r[col].clone()).collect();
        let set: BTreeSet<String> = v.iter().cloned().collect();
        assert_eq!(set.len(), v.len(), "{col} values are unique");
        set
    };
    let account_ids = ids(&accounts, "AccountExtId");
    let contact_ids = ids(&contacts, "ContactExtId");
    let ticket_ids = ids(&tickets, "TicketExtId");
    let agent_ids = ids(&agents, "agentExtId");
    assert_eq!(
        ticket_ids,
        src.tickets_in_scope(),
        "every ticket in scope has one row, keyed by its Ivinex id"
    );
    assert_eq!(account_ids.len(), src.records("Organizations").len());
    assert_eq!(contact_ids.len(), src.records("Contacts").len());
    for c in &contacts {
        let a = &c["AccountExtId"];
        assert!(
            a.is_empty() || account_ids.contains(a),
            "contact {} refers to a known account",
            c["ContactExtId"]
        );
    }
    let created = src.field("Tickets", "subject");
    let by_id: BTreeMap<String, Value> = src
        .records("Tickets")
        .into_iter()
        .map(|t| (Source::id(&t), t))
        .collect();
    let tz = jiff::tz::TimeZone::get("America/New_York").unwrap();
    for t in &tickets {
        let c = &t["ContactExtId"];
        assert!(
            c.is_empty() || contact_ids.contains(c),
            "ticket {} refers to a known contact",
            t["TicketExtId"]
        );
        let a = &t["AssigneeExtId"];
        assert!(
            a.is_empty() || agent_ids.contains(a),
            "ticket {} refers to a known agent {a}",
            t["TicketExtId"]
        );
        assert!(
            time_re(&t["Created Time"]),
            "original creation time in the package format: {}",
            t["Created Time"]
        );
        let s = &by_id[&t["TicketExtId"]];
        assert_eq!(t["Subject"], text(&s[&created]));
        // The original time, exactly (site time -> UTC).
        let local: jiff::civil::DateTime =
            text(&s["created_date"]).replace(' ', "T").parse().unwrap();
        let utc = tz
            .to_ambiguous_timestamp(local)
            .compatible()
            .unwrap()
            .strftime("%Y-%m-%dT%H:%M:%S.000Z")
            .to_string();
        assert_eq!(
            t["Created Time"], utc,
            "ticket {} keeps its creation time",
            t["TicketExtId"]
        );
    }
    // Activities: threads (emails) and comments (notes, calls), each once, on a ticket of the package.
    let act_ticket = src.field("Activities", "ticket");
    let expected: BTreeSet<String> = src
        .records("Activities")
        .iter()
        .filter(|a| ticket_ids.contains(&text(&a[&act_ticket])))
        .map(Source::id)
        .collect();
    let mut got = ids(&threads, "ThreadExtId");
    got.extend(ids(&comments, "CommentExtId"));
    assert_eq!(
        got, expected,
        "every activity of a migrated ticket is a thread or a comment"
    );
    for r in threads.iter() {
        assert!(ticket_ids.contains(&r["TicketExtId"]) && time_re(&r["Created Time"]));
        assert!(
            matches!(r["Direction"].as_str(), "in" | "out"),
            "thread direction {}",
            r["Direction"]
        );
    }
    for r in comments.iter() {
        assert!(ticket_ids.contains(&r["TicketExtId"]) && time_re(&r["Commented Time"]));
    }
    // Attachments copied with their bytes.
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let files = manifest["attachments"].as_array().unwrap();
    assert!(files.len() > 20, "attachments are in the package");
    for f in files {
        let bytes = std::fs::read(dir.join(text(&f["path"]))).unwrap();
        assert_eq!(
            md5_hex(&bytes),
            text(&f["md5"]),
            "{} copied intact",
            text(&f["path"])
        );
    }
    h.stop().await;
}
