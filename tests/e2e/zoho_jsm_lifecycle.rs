//! The Zoho Desk -> JSM path after the first run: delta, rollback, retry-failed and reports,
//! each decided by reading the JSM sandbox against the Zoho Desk source sandbox.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{Cli, JsmHarness, adf_text, issues_by_legacy, text};
use deskshift_sandbox::SandboxOptions;
use serde_json::{Value, json};

fn opts(seed: u64, tickets: usize) -> SandboxOptions {
    SandboxOptions {
        seed,
        tickets,
        ..Default::default()
    }
}

fn list(v: &Value, k: &str) -> Vec<Value> {
    v[k].as_array().cloned().unwrap_or_default()
}

/// Changes a ticket through Zoho Desk's public API (the way an agent edits the source).
async fn zoho_patch_ticket(h: &JsmHarness, id: &str, body: Value) {
    let token = h.sb.zoho.issue_access_token();
    let resp = h
        .http
        .patch(format!("{}/api/v1/tickets/{id}", h.sb.zoho.base_url()))
        .header("Authorization", format!("Zoho-oauthtoken {token}"))
        .header("orgId", h.sb.zoho.org_id())
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    assert!(
        status.is_success(),
        "PATCH ticket {id}: {status} {}",
        resp.text().await.unwrap()
    );
}

/// `kind:source_id` of every row of failed-records.csv, in its order.
fn failed_sources(csv_text: &str) -> Vec<String> {
    csv::Reader::from_reader(csv_text.as_bytes())
        .records()
        .map(|r| {
            let r = r.expect("failed-records.csv parses");
            format!("{}:{}", &r[0], &r[1])
        })
        .collect()
}

/// Jira issues by key, without the fields every read changes.
fn issue_snapshot(jira: &Value) -> BTreeMap<String, Value> {
    list(jira, "issues")
        .into_iter()
        .map(|mut i| {
            i["fields"]["updated"] = Value::Null;
            i["fields"]["lastViewed"] = Value::Null;
            // A sub-task shows its parent's current summary and a link the linked issue's: those
            // issues' own entries cover them, and links are compared on their own.
            i["fields"]["parent"] = Value::Null;
            i["fields"]["issuelinks"] = Value::Null;
            (text(&i["key"]), i)
        })
        .collect()
}

/// Ids of the records of each kind in the JSM sandbox.
fn jira_ids(jira: &Value) -> BTreeMap<&'static str, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for (kind, key) in [
        ("issues", "key"),
        ("organizations", "id"),
        ("customers", "accountId"),
        ("comments", "id"),
        ("attachments", "id"),
        ("components", "id"),
        ("links", "id"),
    ] {
        out.insert(
            kind,
            list(jira, kind).iter().map(|r| text(&r[key])).collect(),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delta_moves_exactly_what_changed_in_zoho() {
    let h = JsmHarness::start(opts(41, 150), "", "").await;
    h.approve().await;
    h.cli_ok(&["run"]).await;
    let zoho = h.zoho().await;
    let tickets = list(&zoho, "tickets");
    let contacts = list(&zoho, "contacts");
    let first = h.jira().await;
    let before = issue_snapshot(&first);
    let (_, legacy_before) = issues_by_legacy(&first);
    let links_before: BTreeSet<(String, String)> = list(&first, "links")
        .iter()
        .map(|l| (text(&l["inwardIssue"]), text(&l["outwardIssue"])))
        .collect();

    // Edit 10 tickets, add comments and threads to 5 others, add 3 tickets with conversations.
    let edited: Vec<String> = tickets.iter().take(10).map(|t| text(&t["id"])).collect();
    for (n, id) in edited.iter().enumerate() {
        let priority = if n % 2 == 0 { "Low" } else { "High" };
        zoho_patch_ticket(
            &h,
            id,
            json!({"subject": format!("Edited after the first run {id}"), "priority": priority}),
        )
        .await;
    }
    let talked: Vec<String> = tickets
        .iter()
        .skip(20)
        .take(5)
        .map(|t| text(&t["id"]))
        .collect();
    for id in &talked {
        h.sb.zoho
            .seed(&json!({
                "comments": [{"ticketId": id, "content": format!("<p>A later note on {id}</p>"), "isPublic": false}],
                "threads": [{"ticketId": id, "content": format!("<p>A later reply on {id}</p>"), "direction": "out", "visibility": "public"}],
            }))
            .unwrap();
    }
    let dept = text(&tickets[0]["departmentId"]);
    let mut added = Vec::new();
    for i in 0..3 {
        let c = &contacts[i * 2];
        let seeded =
            h.sb.zoho
                .seed(&json!({"tickets": [{
                    "subject": format!("New ticket during the sync {i}"), "departmentId": dept,
                    "contactId": c["id"], "accountId": c["accountId"], "email": c["email"],
                    "status": "Open", "priority": "Medium", "channel": "Web",
                    "description": format!("<p>Opened after the first run ({i})</p>"),
                }]}))
                .unwrap();
        let id = text(&seeded["tickets"][0]);
        h.sb.zoho
            .seed(&json!({"threads": [{"ticketId": id, "content": "<p>first reply</p>", "direction": "in"}],
                "comments": [{"ticketId": id, "content": "<p>an internal note</p>", "isPublic": false}]}))
            .unwrap();
        added.push(id);
    }

    let writes = h.jira_writes().await;
    let searches =
        |r: &BTreeMap<String, u64>| r.get("GET /api/v1/tickets/search").copied().unwrap_or(0);
    let searched = searches(&h.zoho_requests().await);
    h.cli_ok(&["delta"]).await;
    assert!(h.jira_writes().await > writes, "the delta wrote");
    assert!(
        searches(&h.zoho_requests().await) > searched,
        "the delta reads Zoho through tickets/search: {:?}",
        h.zoho_requests().await
    );
    let jira = h.jira().await;
    let after = issue_snapshot(&jira);
    let (_, legacy) = issues_by_legacy(&jira);
    let key_of = |id: &str| {
        let found = legacy.get(id).map(Vec::as_slice).unwrap_or(&[]);
        assert_eq!(
            found.len(),
            1,
            "ticket {id} is in JSM {} times",
            found.len()
        );
        text(&found[0]["key"])
    };
    for (n, id) in edited.iter().enumerate() {
        let i = &after[&key_of(id)];
        assert_eq!(
            text(&i["fields"]["summary"]),
            format!("Edited after the first run {id}")
        );
        assert_eq!(
            text(&i["fields"]["priority"]["name"]),
            if n % 2 == 0 { "Low" } else { "High" }
        );
        assert_eq!(
            i["comments"],
            before[&key_of(id)]["comments"],
            "ticket {id}: no comment written twice"
        );
    }
    for id in &talked {
        let key = key_of(id);
        let old = before[&key]["comments"].as_array().unwrap();
        let new = after[&key]["comments"].as_array().unwrap();
        assert_eq!(
            new.len(),
            old.len() + 2,
            "ticket {id}: the later note and reply"
        );
        assert_eq!(
            &new[..old.len()],
            &old[..],
            "ticket {id}: older comments untouched"
        );
        let texts: Vec<String> = new[old.len()..]
            .iter()
            .map(|c| adf_text(&c["body"]))
            .collect();
        assert!(
            texts
                .iter()
                .any(|t| t.contains(&format!("A later note on {id}")))
        );
        assert!(
            texts
                .iter()
                .any(|t| t.contains(&format!("A later reply on {id}")))
        );
    }
    for (i, id) in added.iter().enumerate() {
        let issue = &after[&key_of(id)];
        assert_eq!(
            text(&issue["fields"]["summary"]),
            format!("New ticket during the sync {i}")
        );
        assert_eq!(
            issue["comments"].as_array().unwrap().len(),
            2,
            "ticket {id}'s conversation"
        );
    }
    // Nothing else was written: every other issue is as it was.
    let changed: BTreeSet<String> = edited.iter().chain(&talked).map(|id| key_of(id)).collect();
    let new_keys: BTreeSet<String> = added.iter().map(|id| key_of(id)).collect();
    assert_eq!(
        after
            .keys()
            .filter(|k| !before.contains_key(*k))
            .cloned()
            .collect::<BTreeSet<_>>(),
        new_keys,
        "the delta created only the new tickets' requests"
    );
    for (key, issue) in &before {
        if !changed.contains(key) {
            assert_eq!(&after[key], issue, "{key} was not touched by the delta");
        }
    }
    assert_eq!(legacy.len(), legacy_before.len() + 3);
    let links_after: BTreeSet<(String, String)> = list(&jira, "links")
        .iter()
        .map(|l| (text(&l["inwardIssue"]), text(&l["outwardIssue"])))
        .collect();
    assert!(
        links_before.is_subset(&links_after),
        "the delta removes no link"
    );
    for (a, b) in links_after.difference(&links_before) {
        assert!(
            new_keys.contains(a) || new_keys.contains(b),
            "a new link {a} -> {b} involves a new ticket"
        );
    }
    assert_eq!(
        list(&jira, "links").len(),
        links_after.len(),
        "no link twice"
    );

    // Nothing changed since: an idle delta writes nothing.
    let writes = h.jira_writes().await;
    h.cli_ok(&["delta"]).await;
    assert_eq!(
        h.jira_writes().await,
        writes,
        "an idle delta makes no JSM write"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rollback_removes_the_migration_and_spares_what_was_there() {
    let h = JsmHarness::start(opts(43, 120), "", "").await;
    // Records that existed in JSM before the migration.
    let seed = json!({
        "organizations": [{"name": "Existing Customer Inc", "serviceDesks": ["SUP"]}],
        "customers": [{"email": "existing@customer.example", "displayName": "Existing Customer", "serviceDesks": ["SUP"]}],
        "issues": [{"project": "SUP", "summary": "Request from before the migration"}],
    });
    let resp = h
        .http
        .post(format!("{}/__sandbox/seed", h.sb.jira.base_url()))
        .json(&seed)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    let before = jira_ids(&h.jira().await);
    assert_eq!(before["issues"].len(), 1, "{before:?}");

    h.approve().await;
    h.cli_ok(&["run"]).await;
    let first = h.jira().await;
    let migrated = jira_ids(&first);
    assert!(migrated["issues"].len() > 120);

    // An agent edits one migrated request in JSM: rollback lists it and keeps it.
    let (_, legacy) = issues_by_legacy(&first);
    let edited = legacy.values().map(|v| text(&v[0]["key"])).next().unwrap();
    let info = h.sb.info();
    let resp = h
        .http
        .put(format!(
            "{}/rest/api/3/issue/{edited}",
            h.sb.jira.base_url()
        ))
        .basic_auth(
            text(&info.jira["email"]),
            Some(text(&info.jira["api_token"])),
        )
        .json(&json!({"fields": {"summary": "Changed by an agent after go-live"}}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());

    let out = h.cli_ok(&["rollback"]).await;
    assert!(
        out.contains(&edited),
        "the changed request is listed: {out}"
    );
    let after = jira_ids(&h.jira().await);
    assert!(
        after["issues"].contains(&edited),
        "a request changed after the migration is kept"
    );
    for kind in ["issues", "organizations", "customers"] {
        assert!(
            before[kind].is_subset(&after[kind]),
            "pre-existing {kind} are never touched"
        );
    }
    let left: BTreeSet<String> = after["issues"]
        .difference(&before["issues"])
        .cloned()
        .collect();
    let sub_tasks_of_edited: BTreeSet<String> = list(&first, "issues")
        .iter()
        .filter(|i| text(&i["parent"]) == edited)
        .map(|i| text(&i["key"]))
        .collect();
    assert!(
        left.iter()
            .all(|k| *k == edited || sub_tasks_of_edited.contains(k)),
        "only the changed request (and its sub-tasks) remain: {left:?}"
    );
    // Every organization the migration created is removed or listed as kept. (Known engine
    // issue, reported: names shortened to JSM's 200 characters compare as "changed".)
    let kept_accounts = out.lines().filter(|l| l.contains("kept account")).count();
    assert_eq!(
        after["organizations"].len(),
        before["organizations"].len() + kept_accounts,
        "organizations the migration created are removed or listed: {out}"
    );

    // With the flag the kept records go too; JSM is as it was, and a further rollback is a no-op.
    h.cli_ok(&["rollback", "--include-changed"]).await;
    let last = jira_ids(&h.jira().await);
    for kind in [
        "issues",
        "organizations",
        "comments",
        "attachments",
        "links",
    ] {
        assert_eq!(
            last[kind], before[kind],
            "{kind}: JSM is as it was before the migration"
        );
    }
    let writes = h.jira_write_counts().await;
    let again = h.cli_ok(&["rollback"]).await;
    assert_eq!(
        h.jira_write_counts().await,
        writes,
        "a rollback after a complete one writes nothing: {again}"
    );

    // Reversible: the migration runs again into the emptied site, once.
    h.cli_ok(&["run"]).await;
    let again = h.jira().await;
    let (_, legacy_again) = issues_by_legacy(&again);
    assert_eq!(legacy_again.len(), legacy.len());
    assert!(
        legacy_again.values().all(|v| v.len() == 1),
        "every request once"
    );
    assert_eq!(
        list(&again, "comments").len(),
        list(&first, "comments").len(),
        "every comment back once"
    );
    assert!(
        !list(&first, "links").is_empty(),
        "related tickets were linked"
    );
    assert_eq!(
        list(&again, "links").len(),
        list(&first, "links").len(),
        "every issue link back once"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_records_rerun_from_the_stage_and_reports_show_them() {
    // The gate sees the requests JSM half-wrote when it turned read-only; the run goes on to
    // report them instead of stopping there.
    let h = JsmHarness::start(opts(47, 150), "", "strict_gates = false").await;
    h.approve().await;
    // JSM turns read-only in the middle of the load: records fail, with their payloads.
    let mut child = h.command(&["run"]).spawn().unwrap();
    let freeze = |f: bool| {
        let url = format!("{}/__sandbox/freeze", h.sb.jira.base_url());
        let http = h.http.clone();
        async move {
            let r = http
                .post(url)
                .json(&json!({"frozen": f}))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success());
        }
    };
    loop {
        // During the comments: a request JSM refuses half-way cannot be told apart from a new
        // one by retry-failed yet (engine issue, reported), comments and sub-tasks can.
        let n = h
            .get(format!(
                "{}/__sandbox/records/comments",
                h.sb.jira.base_url()
            ))
            .await
            .as_array()
            .map_or(0, Vec::len);
        if n >= 40 {
            freeze(true).await;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            panic!("the run finished before JSM could be frozen");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let run = child.wait_with_output().await.unwrap();
    freeze(false).await;
    eprintln!(
        "frozen run: {}\n{}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let failed_csv = h.report("failed-records.csv");
    let failed_ids = failed_sources(&failed_csv);
    assert!(
        failed_ids.len() > 10,
        "records failed while JSM refused writes:\n{failed_csv}"
    );

    // The report shows them, and the customers that share an e-mail.
    h.cli_ok(&["report"]).await;
    let html = h.report("report.html");
    let some_failed = &failed_ids[0];
    let some_id = some_failed.split(':').nth(1).unwrap();
    assert!(
        html.contains(some_id),
        "report.html lists failed record {some_failed}"
    );
    assert!(
        html.contains("customer_deduplicated"),
        "report.html shows the customer dedup"
    );
    let zoho = h.zoho().await;
    let mut emails: BTreeMap<String, usize> = BTreeMap::new();
    for c in list(&zoho, "contacts") {
        let e = text(&c["email"]).to_lowercase();
        if !e.is_empty() {
            *emails.entry(e).or_default() += 1;
        }
    }
    let flags = h.report("flags.csv");
    for (email, n) in emails.iter().filter(|(_, n)| **n > 1) {
        assert!(
            flags
                .lines()
                .any(|l| l.contains("customer_deduplicated") && l.contains(email.as_str())),
            "{email} ({n} contacts) is reported as one customer"
        );
    }
    for inventory in [
        "summary.md",
        "reconciliation.json",
        "field-map.json",
        "attachments.json",
        "workflows.md",
        "views.md",
        "access-control.md",
    ] {
        assert!(
            !h.report(inventory).trim().is_empty(),
            "{inventory} is written"
        );
    }
    for inventory in ["workflows.json", "views.json", "access-control.json"] {
        serde_json::from_str::<Value>(&h.report(inventory))
            .unwrap_or_else(|e| panic!("{inventory} is JSON: {e}"));
        assert!(html.contains(inventory), "report.html links {inventory}");
    }

    // retry-failed moves them from the stage, without reading Zoho again.
    let before = h.zoho_requests().await;
    // Contacts without an e-mail cannot be JSM customers: they stay failed, nothing else does.
    let no_email: BTreeSet<String> = list(&zoho, "contacts")
        .iter()
        .filter(|c| text(&c["email"]).is_empty())
        .map(|c| format!("contact:{}", text(&c["id"])))
        .collect();
    assert!(!no_email.is_empty());
    let out = h.cli_ok(&["retry-failed"]).await;
    assert!(out.contains(&format!("{} after", no_email.len())), "{out}");
    let after = h.zoho_requests().await;
    // Records come from the stage; only files (attachments, inline images) are fetched again,
    // and the organization check every connection makes.
    let read_again: BTreeMap<&String, u64> = after
        .iter()
        .filter(|(k, _)| k.starts_with("GET /api/v1/"))
        .filter(|(k, _)| !k.ends_with("/content") && k.as_str() != "GET /api/v1/organizations")
        .map(|(k, v)| (k, v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    assert!(
        read_again.is_empty(),
        "retry-failed does not read the source again: {read_again:?}"
    );
    let jira = h.jira().await;
    let (_, legacy) = issues_by_legacy(&jira);
    let threads = list(&zoho, "threads");
    let comments = list(&zoho, "comments");
    for t in list(&zoho, "tickets") {
        let id = text(&t["id"]);
        let found = legacy.get(&id).map(Vec::as_slice).unwrap_or(&[]);
        assert_eq!(
            found.len(),
            1,
            "ticket {id} is in JSM {} times",
            found.len()
        );
        let conv = threads
            .iter()
            .filter(|x| text(&x["_ticketId"]) == id)
            .count()
            + comments
                .iter()
                .filter(|x| text(&x["_ticketId"]) == id)
                .count();
        assert_eq!(
            found[0]["comments"].as_array().unwrap().len(),
            conv,
            "ticket {id}'s conversation, once"
        );
    }
    for task in list(&zoho, "tasks") {
        let v = format!("task:{}", text(&task["id"]));
        assert_eq!(legacy.get(&v).map_or(0, Vec::len), 1, "task {v} once");
    }
    h.cli_ok(&["report"]).await;
    let failed_after = h.report("failed-records.csv");
    assert_eq!(
        failed_sources(&failed_after)
            .into_iter()
            .collect::<BTreeSet<_>>(),
        no_email,
        "only the contacts without e-mail are left failed:\n{failed_after}"
    );
    h.stop().await;
}
