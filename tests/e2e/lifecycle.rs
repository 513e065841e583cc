//! After the first run: delta syncs and cutover, rollback, the sample migration and failed-record
//! re-runs, each decided by reading the Zoho Desk sandbox against the Ivinex sandbox.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use base64::Engine;
use common::*;
use deskshift_sandbox::SandboxOptions;
use serde_json::{Value, json};

fn opts(seed: u64, tickets: usize) -> SandboxOptions {
    SandboxOptions {
        seed,
        tickets,
        ..Default::default()
    }
}

/// One Ivinex call through its public API (the way an Ivinex user changes the source).
async fn ivinex_call(h: &Harness, call: &str, body: Value) -> Value {
    let resp = h
        .http
        .post(format!("{}/API/{call}", h.sb.ivinex.base_url()))
        .basic_auth("api@acme.test", Some("sandbox-secret"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let v: Value = resp.json().await.unwrap();
    assert!(status.is_success(), "{call} failed: {v}");
    v
}

/// POST/PATCH calls the Zoho Desk sandbox has answered on its API.
async fn zoho_writes(h: &Harness) -> u64 {
    let s = h
        .get(format!("{}/__sandbox/stats", h.sb.zoho.base_url()))
        .await;
    s["requests"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| {
            (k.starts_with("POST") || k.starts_with("PATCH")) && k.contains("/api/v1/")
        })
        .map(|(_, v)| v.as_u64().unwrap())
        .sum()
}

/// Ids of the live (not trashed) records of each kind in the Zoho Desk sandbox.
async fn zoho_live(h: &Harness) -> BTreeMap<String, BTreeSet<String>> {
    let z = h.zoho().await;
    let trashed = trashed_tickets(&z);
    let mut out = BTreeMap::new();
    for kind in [
        "accounts",
        "contacts",
        "tickets",
        "tasks",
        "comments",
        "attachments",
    ] {
        let ids = z[kind]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter(|r| r["isTrashed"].as_bool() != Some(true))
            .filter(|r| !trashed.contains(&text(&r["_ticketId"])))
            .map(|r| text(&r["id"]))
            .collect();
        out.insert(kind.to_string(), ids);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delta_syncs_changes_until_cutover() {
    let h = Harness::start(opts(21, 250), "").await;
    // Two organizations share a name: the later one is created with its source id in the name.
    let src = Source::new(h.ivinex().await);
    let org_name = src.field("Organizations", "name");
    let (first, twin) = (
        &src.records("Organizations")[5],
        &src.records("Organizations")[6],
    );
    let shared = src.value("Organizations", first, "name");
    ivinex_call(&h, "UpdateRecord", json!({"Tab": "Organizations", "RecordID": twin["collection_id"], "Record": {org_name.clone(): shared}})).await;
    h.approve().await;
    h.cli_ok(&["run"]).await;
    let src = Source::new(h.ivinex().await);
    let twin_id = Source::id(twin);
    let apart = text(&by_source_id(&h.zoho().await, "accounts")[&twin_id][0]["accountName"]);
    assert!(
        apart.starts_with(&shared) && apart.contains(&twin_id),
        "{apart}"
    );
    let in_scope: Vec<String> = src.tickets_in_scope().into_iter().collect();
    let subject = src.field("Tickets", "subject");
    let status = src.field("Tickets", "status");
    let contact_field = src.field("Tickets", "contact");
    let act_ticket = src.field("Activities", "ticket");
    let act_type = src.field("Activities", "type");
    let act_body = src.field("Activities", "body");
    let note_type = src.dump["fields"]["Activities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["FieldName"] == act_type.as_str())
        .unwrap()["Options"][0]
        .clone();
    let open_status = src.records("Tickets")[0][&status].clone();
    let a_contact = src.records("Contacts")[0]["collection_id"].clone();

    // Edit 50 tickets, add 20 tickets with activities and attachments, edit contacts and an
    // organization, add activities to old tickets.
    for id in in_scope.iter().take(50) {
        let body = json!({"Tab": "Tickets", "RecordID": id.parse::<u64>().unwrap(), "Record": {subject.clone(): format!("Edited after the first run {id}")}});
        ivinex_call(&h, "UpdateRecord", body).await;
    }
    let mut new_tickets = Vec::new();
    for i in 0..20 {
        let rec = json!({subject.clone(): format!("New ticket during the sync {i}"), status.clone(): open_status, contact_field.clone(): a_contact});
        let v = ivinex_call(&h, "AddRecord", json!({"Tab": "Tickets", "Record": rec})).await;
        let id = v["collection_id"].as_u64().unwrap();
        new_tickets.push(id);
        for j in 0..2 {
            let act = json!({act_ticket.clone(): id, act_type.clone(): note_type, act_body.clone(): format!("<p>note {j} on new ticket {i}</p>")});
            ivinex_call(&h, "AddRecord", json!({"Tab": "Activities", "Record": act})).await;
        }
        let content =
            base64::engine::general_purpose::STANDARD.encode(format!("file body {i}").repeat(50));
        ivinex_call(&h, "AddAttachment", json!({"Tab": "Tickets", "RecordID": id, "FileName": format!("new-{i}.txt"), "ContentBase64": content})).await;
    }
    let email = src.field("Contacts", "email");
    for c in src.records("Contacts").iter().take(5) {
        let body = json!({"Tab": "Contacts", "RecordID": c["collection_id"], "Record": {email.clone(): format!("changed.{}@example.org", Source::id(c))}});
        ivinex_call(&h, "UpdateRecord", body).await;
    }
    let org = &src.records("Organizations")[3];
    // The twin changes elsewhere: its update keeps it apart from the first.
    let city = src.field("Organizations", "city");
    ivinex_call(&h, "UpdateRecord", json!({"Tab": "Organizations", "RecordID": twin["collection_id"], "Record": {city.clone(): "Changed City"}})).await;
    ivinex_call(&h, "UpdateRecord", json!({"Tab": "Organizations", "RecordID": org["collection_id"], "Record": {org_name.clone(): "Renamed Organization Ltd"}})).await;
    for id in in_scope.iter().skip(60).take(10) {
        let act = json!({act_ticket.clone(): id.parse::<u64>().unwrap(), act_type.clone(): note_type, act_body.clone(): "<p>a later note</p>"});
        ivinex_call(&h, "AddRecord", json!({"Tab": "Activities", "Record": act})).await;
    }

    h.cli_ok(&["delta"]).await;
    let src = Source::new(h.ivinex().await);
    let zoho = assert_exactly_once(&h, &src).await;
    let tickets = by_source_id(&zoho, "tickets");
    for id in in_scope.iter().take(50) {
        assert_eq!(
            text(&tickets[id][0]["subject"]),
            format!("Edited after the first run {id}"),
            "edited ticket {id}"
        );
    }
    for id in &new_tickets {
        let t = &tickets[&id.to_string()][0];
        let on_ticket: Vec<&Value> = zoho["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["_ticketId"] == t["id"])
            .collect();
        assert_eq!(
            on_ticket.len(),
            1,
            "new ticket {id} has its attachment once"
        );
    }
    let contacts = by_source_id(&zoho, "contacts");
    for c in src.records("Contacts").iter().take(5) {
        assert_eq!(
            text(&contacts[&Source::id(c)][0]["email"]),
            format!("changed.{}@example.org", Source::id(c))
        );
    }
    let accounts = by_source_id(&zoho, "accounts");
    assert_eq!(
        text(&accounts[&Source::id(org)][0]["accountName"]),
        "Renamed Organization Ltd"
    );
    assert_eq!(text(&accounts[&twin_id][0]["city"]), "Changed City");
    assert_eq!(
        text(&accounts[&twin_id][0]["accountName"]),
        apart,
        "the update keeps the name apart"
    );
    let mut seen = BTreeSet::new();
    for a in zoho["attachments"].as_array().unwrap() {
        assert!(
            seen.insert((text(&a["_ticketId"]), text(&a["name"]), text(&a["md5"]))),
            "no attachment twice: {a}"
        );
    }

    // Nothing changed: a delta writes nothing.
    let before = zoho_writes(&h).await;
    h.cli_ok(&["delta"]).await;
    assert_eq!(
        zoho_writes(&h).await,
        before,
        "an idle delta makes no destination write"
    );

    // Cutover with the source frozen; later deltas refuse.
    h.sb.ivinex.set_frozen(true);
    let out = h.cli_ok(&["cutover"]).await;
    assert!(out.contains("Cut over"), "{out}");
    let refused = h.cli(&["delta"]).await;
    assert!(
        !refused.status.success(),
        "a delta after cutover must refuse"
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("cut over"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rollback_restores_the_destination_and_spares_what_was_there() {
    let h = Harness::start(opts(23, 150), "").await;
    // Pre-existing records in the destination.
    let support =
        h.sb.zoho
            .records("departments")
            .unwrap()
            .as_array()
            .unwrap()[0]["id"]
            .clone();
    let seeded = h.sb.zoho.seed(&json!({"accounts": [{"accountName": "Existing Customer Inc"}], "contacts": [{"lastName": "Existing", "email": "existing@customer.example"}]})).unwrap();
    let contact_id = seeded["contacts"][0].clone();
    h.sb.zoho
        .seed(&json!({"tickets": [{"subject": "Ticket from before the migration", "departmentId": support, "contactId": contact_id}]}))
        .unwrap();
    let before = zoho_live(&h).await;
    assert!(
        before["tickets"].len() == 1 && before["accounts"].len() == 1,
        "seeded: {before:?}"
    );

    h.approve().await;
    h.cli_ok(&["run"]).await;
    let after_run = zoho_live(&h).await;
    assert!(after_run["tickets"].len() > 100);

    // An agent edits one migrated ticket in Zoho Desk: rollback lists it and keeps it.
    let zoho = h.zoho().await;
    let edited = by_source_id(&zoho, "tickets").values().next().unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let token = h.sb.zoho.issue_access_token();
    let resp = h
        .http
        .patch(format!("{}/api/v1/tickets/{edited}", h.sb.zoho.base_url()))
        .header("Authorization", format!("Zoho-oauthtoken {token}"))
        .header("orgId", h.sb.zoho.org_id())
        .json(&json!({"subject": "Changed by an agent after go-live"}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());

    let out = h.cli_ok(&["rollback"]).await;
    assert!(out.contains(&edited), "the changed ticket is listed: {out}");
    let after = zoho_live(&h).await;
    assert!(
        after["tickets"].contains(&edited),
        "a ticket changed after the migration is kept"
    );
    for kind in ["accounts", "contacts", "tickets", "tasks"] {
        assert!(
            before[kind].is_subset(&after[kind]),
            "pre-existing {kind} are never touched"
        );
    }
    assert_eq!(
        after["tickets"].len(),
        2,
        "only the pre-existing and the changed ticket remain"
    );

    // Resumable: a second rollback finds nothing more to do; with the flag the kept one goes too.
    h.cli_ok(&["rollback"]).await;
    h.cli_ok(&["rollback", "--include-changed"]).await;
    let last = zoho_live(&h).await;
    for kind in [
        "accounts",
        "contacts",
        "tickets",
        "tasks",
        "comments",
        "attachments",
    ] {
        assert_eq!(
            last[kind], before[kind],
            "{kind}: the destination is as it was before the migration"
        );
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sample_then_full_run_neither_duplicates_nor_loses() {
    for roll_back in [true, false] {
        let h = Harness::start(opts(25, 200), "").await;
        h.approve().await;
        h.cli_ok(&["sample", "--tickets", "30"]).await;
        let src = Source::new(h.ivinex().await);
        let zoho = h.zoho().await;
        let sampled = by_source_id(&zoho, "tickets");
        assert_eq!(sampled.len(), 30, "the sample holds 30 tickets");
        let in_scope = src.tickets_in_scope();
        assert!(
            sampled.keys().all(|id| in_scope.contains(id)),
            "spam and test tickets are never sampled"
        );
        let statuses: BTreeSet<String> = sampled.values().map(|v| text(&v[0]["status"])).collect();
        assert!(
            statuses.len() >= 2,
            "the sample spreads over statuses: {statuses:?}"
        );
        assert!(
            zoho["attachments"].as_array().unwrap().iter().any(|_| true),
            "the sample includes tickets with attachments"
        );
        // Only the contacts those tickets need.
        let contacts = by_source_id(&zoho, "contacts");
        assert!(
            contacts.len() < src.records("Contacts").len(),
            "a sample does not move every contact"
        );
        let validation: Value = serde_json::from_str(
            &std::fs::read_to_string(h.job_dir().join("reports/validation.json")).unwrap(),
        )
        .unwrap();
        assert!(
            validation["checked"].as_u64().unwrap() >= 30,
            "every sampled record is validated"
        );
        if roll_back {
            h.cli_ok(&["rollback"]).await;
            assert!(
                by_source_id(&h.zoho().await, "tickets").is_empty(),
                "the sample is rolled back"
            );
        }
        h.cli_ok(&["run"]).await;
        assert_exactly_once(&h, &src).await;
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_records_rerun_from_the_stage() {
    let h = Harness::start(opts(27, 200), "").await;
    h.approve().await;
    // The destination turns read-only in the middle of the load: records fail, with payloads.
    let mut child = h.command(&["run"]).spawn().unwrap();
    loop {
        let n = h
            .get(format!(
                "{}/__sandbox/records/tickets",
                h.sb.zoho.base_url()
            ))
            .await
            .as_array()
            .map_or(0, Vec::len);
        if n >= 40 {
            h.sb.zoho.set_frozen(true);
            break;
        }
        if child.try_wait().unwrap().is_some() {
            panic!("the run finished before the destination could be frozen");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = child.wait().await.unwrap();
    let failed =
        std::fs::read_to_string(h.job_dir().join("reports/failed-records.csv")).unwrap_or_default();
    assert!(
        failed.lines().count() > 10,
        "records failed while the destination refused writes"
    );
    h.sb.zoho.set_frozen(false);

    let reads = |s: &Value| {
        s["endpoints"]["POST /API/GetRecords"]["count"]
            .as_u64()
            .unwrap_or(0)
    };
    let before = reads(
        &h.get(format!("{}/__sandbox/stats", h.sb.ivinex.base_url()))
            .await,
    );
    let out = h.cli_ok(&["retry-failed"]).await;
    assert!(
        out.contains("after 0") || out.contains(", 0 after"),
        "{out}"
    );
    let after = reads(
        &h.get(format!("{}/__sandbox/stats", h.sb.ivinex.base_url()))
            .await,
    );
    assert_eq!(after, before, "retry-failed does not read the source again");
    let src = Source::new(h.ivinex().await);
    assert_exactly_once(&h, &src).await;
    h.stop().await;
}

/// `GetRecords` calls the Ivinex sandbox has answered.
async fn ivinex_page_reads(h: &Harness) -> u64 {
    let s = h
        .get(format!("{}/__sandbox/stats", h.sb.ivinex.base_url()))
        .await;
    s["endpoints"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.contains("GetRecords"))
        .map(|(_, v)| v["count"].as_u64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_run_reuses_the_preflight_pages_and_a_delta_brings_what_changed_between() {
    let h = Harness::start(opts(23, 300), "").await;
    h.cli_ok(&["preflight"]).await;
    let after_preflight = ivinex_page_reads(&h).await;
    let src = Source::new(h.ivinex().await);
    let pages: u64 = src.dump["records"]
        .as_object()
        .unwrap()
        .values()
        .map(|r| (r.as_array().unwrap().len() as u64).div_ceil(200).max(1))
        .sum();
    // Pages read ahead past a tab's end are the only extra reads: at most 7 per multi-page tab.
    let multi_page_tabs = src.dump["records"]
        .as_object()
        .unwrap()
        .values()
        .filter(|r| r.as_array().unwrap().len() > 200)
        .count() as u64;
    assert!(
        (pages..=pages + 7 * multi_page_tabs).contains(&after_preflight),
        "the pre-flight read {after_preflight} pages for {pages} ({multi_page_tabs} tabs of several pages)"
    );

    // The source changes between the pre-flight and the run.
    let subject = src.field("Tickets", "subject");
    let edited = src.tickets_in_scope().into_iter().next().unwrap();
    ivinex_call(&h, "UpdateRecord", json!({"Tab": "Tickets", "RecordID": edited.parse::<u64>().unwrap(), "Record": {subject.clone(): "Edited between the pre-flight and the run"}})).await;

    h.approve().await;
    h.cli_ok(&["run"]).await;
    assert_eq!(
        ivinex_page_reads(&h).await,
        after_preflight,
        "the mapping proposal and the extract read no page the pre-flight had read"
    );
    let tickets = by_source_id(&h.zoho().await, "tickets");
    assert_ne!(
        text(&tickets[&edited][0]["subject"]),
        "Edited between the pre-flight and the run",
        "the run moved the pre-flight's pages"
    );

    h.cli_ok(&["delta"]).await;
    let src = Source::new(h.ivinex().await);
    let zoho = assert_exactly_once(&h, &src).await;
    assert_eq!(
        text(&by_source_id(&zoho, "tickets")[&edited][0]["subject"]),
        "Edited between the pre-flight and the run",
        "the first delta brings the edit made after the pre-flight's signpost"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stale_preflight_is_read_again() {
    let h = Harness::start(opts(24, 120), "preflight_reuse_minutes = 0").await;
    h.cli_ok(&["preflight"]).await;
    let after_preflight = ivinex_page_reads(&h).await;
    let src = Source::new(h.ivinex().await);
    let subject = src.field("Tickets", "subject");
    let edited = src.tickets_in_scope().into_iter().next().unwrap();
    ivinex_call(&h, "UpdateRecord", json!({"Tab": "Tickets", "RecordID": edited.parse::<u64>().unwrap(), "Record": {subject.clone(): "Edited before the run"}})).await;
    h.approve().await;
    h.cli_ok(&["run"]).await;
    assert!(
        ivinex_page_reads(&h).await > after_preflight,
        "with reuse off the extract reads the source again"
    );
    let src = Source::new(h.ivinex().await);
    let zoho = assert_exactly_once(&h, &src).await;
    assert_eq!(
        text(&by_source_id(&zoho, "tickets")[&edited][0]["subject"]),
        "Edited before the run"
    );
    h.stop().await;
}
