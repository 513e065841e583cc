//! Ivinex -> Zoho Desk, end to end: the `deskshift` binary against the sandboxes, decided by
//! reading the Zoho Desk sandbox and comparing with the Ivinex sandbox.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;
use deskshift_sandbox::SandboxOptions;
use sandbox_kit::FaultConfig;
use serde_json::Value;

fn opts(seed: u64, tickets: usize) -> SandboxOptions {
    SandboxOptions {
        seed,
        tickets,
        ..Default::default()
    }
}

/// Every in-scope source record is in the destination exactly once; returns the Zoho dump.
async fn assert_exactly_once(h: &Harness, src: &Source) -> Value {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_migration_arrives_field_by_field() {
    let h = Harness::start(opts(7, 1000), "validation_sample = 40").await;

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
        let bytes = h
            .http
            .get(text(&a["url"]))
            .basic_auth("api@acme.test", Some("sandbox-secret"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
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
    let validation: Value = serde_json::from_str(
        &std::fs::read_to_string(h.job_dir().join("reports/validation.json")).unwrap(),
    )
    .unwrap();
    assert!(validation["checked"].as_u64().unwrap() >= 40);

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
