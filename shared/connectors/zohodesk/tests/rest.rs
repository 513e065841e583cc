//! The REST destination against the Zoho Desk sandbox: what lands is read back through the
//! sandbox's inspection API (`/__sandbox/...`), never from the connector's own return values.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::*;
use deskshift_core::Error;
use deskshift_core::model::*;
use deskshift_core::ports::{CustomFieldSpec, Destination};
use deskshift_zohodesk::{Edition, Secret, ZohoDesk};
use serde_json::json;

fn spec(kind: ObjectKind, label: &str, t: FieldType, options: &[&str]) -> CustomFieldSpec {
    CustomFieldSpec {
        kind,
        label: label.into(),
        field_type: t,
        options: options.iter().map(|s| s.to_string()).collect(),
        scope: None,
    }
}

#[tokio::test]
async fn token_is_refreshed_once_cached_and_renewed_after_invalid_oauth() {
    let sb = start(sandbox_config()).await;
    let dest = ZohoDesk::connect(dest_config(&sb)).await.unwrap();
    let info = dest.describe().await.unwrap();
    dest.count(ObjectKind::Ticket).await.unwrap();
    dest.count(ObjectKind::Contact).await.unwrap();
    assert_eq!(
        stat(&sb, "POST /oauth/v2/token").await,
        1,
        "one token for many calls"
    );
    assert_eq!(info.edition.as_deref(), Some("Professional"));

    let expired = post_json(&sb, "/__sandbox/expireTokens", json!({})).await;
    assert!(expired["expired"].as_u64().unwrap() >= 1);
    let n = dest.count(ObjectKind::Account).await.unwrap();
    assert_eq!(n, Some(0));
    assert_eq!(
        stat(&sb, "POST /oauth/v2/token").await,
        2,
        "INVALID_OAUTH refreshes exactly once"
    );
    assert_eq!(dest.token_refreshes(), 2);
    sb.stop().await;
}

#[tokio::test]
async fn counts_read_long_lists_in_waves_and_short_ones_in_one_call() {
    let sb = start(sandbox_config()).await;
    let dest = ZohoDesk::connect(dest_config(&sb)).await.unwrap();
    let before = stat(&sb, "GET /api/v1/accounts").await;
    assert_eq!(dest.count(ObjectKind::Account).await.unwrap(), Some(0));
    assert_eq!(
        stat(&sb, "GET /api/v1/accounts").await - before,
        1,
        "a short list is one call"
    );
    post_json(&sb, "/__sandbox/seed", json!({"seed": 3, "tickets": 1234})).await;
    // Answers take a while, as over a network: pages asked for together overlap.
    set_faults(&sb, json!({"latency_ms": 20})).await;
    let peak =
        || async { get_json(&sb, "/__sandbox/stats").await["counters"]["peakInFlight"].as_u64() };
    assert_eq!(peak().await, Some(1), "one call at a time so far");
    for (kind, name, limit) in [
        (ObjectKind::Ticket, "tickets", 100),
        (ObjectKind::Contact, "contacts", 99),
        (ObjectKind::Account, "accounts", 99),
    ] {
        let live = live(&sb, name).await.len() as u64;
        let endpoint = format!("GET /api/v1/{name}");
        let before = stat(&sb, &endpoint).await;
        let n = dest.count(kind).await.unwrap();
        let calls = stat(&sb, &endpoint).await - before;
        assert_eq!(n, Some(live), "{name} counted through the API");
        let pages = live / limit + 1;
        assert!(
            calls >= pages && calls < pages + 10,
            "{name}: {calls} calls for {pages} pages"
        );
    }
    assert!(
        peak().await.unwrap_or(0) > 1,
        "the pages of a long list are read several at once"
    );
    sb.stop().await;
}

#[tokio::test]
async fn concurrent_callers_share_one_refresh() {
    let sb = start(sandbox_config()).await;
    let dest = Arc::new(ZohoDesk::new(dest_config(&sb)).unwrap());
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let d = dest.clone();
        tasks.push(tokio::spawn(
            async move { d.count(ObjectKind::Ticket).await },
        ));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), Some(0));
    }
    assert_eq!(stat(&sb, "POST /oauth/v2/token").await, 1);
    sb.stop().await;
}

#[tokio::test]
async fn org_id_is_sent_and_checked() {
    let sb = start(sandbox_config()).await;
    let mut cfg = dest_config(&sb);
    cfg.org_id = "999".into();
    let dest = ZohoDesk::new(cfg).unwrap();
    let err = dest.count(ObjectKind::Ticket).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Config(_)), "{text}");
    assert!(text.contains("OAUTH_ORG_MISMATCH"), "{text}");

    let ok = ZohoDesk::new(dest_config(&sb)).unwrap();
    assert_eq!(ok.count(ObjectKind::Ticket).await.unwrap(), Some(0));
    sb.stop().await;
}

#[tokio::test]
async fn describe_reports_edition_limits_departments_agents_and_values() {
    let sb = start(ZohoConfig {
        edition: "Express".into(),
        ..sandbox_config()
    })
    .await;
    let dest = ZohoDesk::connect(dest_config(&sb)).await.unwrap();
    assert_eq!(dest.edition(), Some(Edition::Express));
    assert_eq!(dest.concurrency_cap(), 10);
    let info = dest.describe().await.unwrap();
    assert_eq!(info.concurrency_cap, Some(10));
    assert_eq!(
        info.daily_credits,
        Some(25_000 + 100 * info.agents.iter().filter(|a| a.active).count() as u64)
    );
    let names: Vec<&str> = info.departments.iter().map(|d| d.name.as_str()).collect();
    assert!(
        names.contains(&"Support") && names.contains(&"Billing"),
        "{names:?}"
    );
    assert!(info.agents.iter().any(|a| a.email == "admin@example.com"));
    for key in [
        "ticket.status",
        "ticket.priority",
        "ticket.channel",
        "task.status",
        "task.priority",
    ] {
        assert!(!info.allowed_values[key].is_empty(), "{key}");
    }
    assert!(info.allowed_values["task.status"].contains(&"Not Started".to_string()));
    assert!(
        info.credits_remaining.is_some(),
        "X-API-CREDITS-REMAINING is read"
    );
    sb.stop().await;
}

#[tokio::test]
async fn custom_fields_are_created_with_options_and_reused() {
    let sb = start(sandbox_config()).await;
    let dest = ZohoDesk::new(dest_config(&sb)).unwrap();
    let tier = spec(
        ObjectKind::Ticket,
        "Tier",
        FieldType::Dropdown,
        &["Gold", "Silver", "Gold"],
    );
    let first = dest.ensure_custom_field(&tier).await.unwrap();
    let again = dest.ensure_custom_field(&tier).await.unwrap();
    assert_eq!(first.id, again.id);
    assert_eq!(first.field_type, "Picklist");
    assert_eq!(
        stat(&sb, "POST /api/v1/fields").await,
        1,
        "second call reuses the field"
    );

    let fields = records(&sb, "fields").await;
    let stored = fields
        .iter()
        .find(|f| f["displayLabel"] == "Tier")
        .expect("field stored");
    assert_eq!(stored["type"], "Picklist");
    let values: Vec<&str> = stored["allowedValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["Gold", "Silver"]);

    let flags = dest
        .ensure_custom_field(&spec(
            ObjectKind::Contact,
            "Areas",
            FieldType::Multiselect,
            &["a", "b"],
        ))
        .await
        .unwrap();
    assert_eq!(flags.field_type, "Multiselect");
    let vip = dest
        .ensure_custom_field(&spec(ObjectKind::Account, "VIP", FieldType::Checkbox, &[]))
        .await
        .unwrap();
    assert_eq!(vip.field_type, "Boolean");
    let owner = dest
        .ensure_custom_field(&spec(
            ObjectKind::Task,
            "Reviewer",
            FieldType::UserLink,
            &[],
        ))
        .await
        .unwrap();
    assert_eq!(owner.field_type, "Text");
    let err = dest
        .ensure_custom_field(&spec(ObjectKind::Activity, "X", FieldType::Text, &[]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)));

    // Scoped to a department by name.
    let mut scoped = spec(ObjectKind::Ticket, "Invoice No", FieldType::Text, &[]);
    scoped.scope = Some("Billing".into());
    dest.ensure_custom_field(&scoped).await.unwrap();
    let departments = records(&sb, "departments").await;
    let billing = departments.iter().find(|d| d["name"] == "Billing").unwrap()["id"].clone();
    let fields = records(&sb, "fields").await;
    let stored = fields
        .iter()
        .find(|f| f["displayLabel"] == "Invoice No")
        .expect("scoped field stored");
    assert_eq!(
        stored["associatedDepartments"],
        json!([billing]),
        "{stored}"
    );
    scoped.label = "Elsewhere".into();
    scoped.scope = Some("Nowhere".into());
    assert!(matches!(
        dest.ensure_custom_field(&scoped).await,
        Err(Error::Config(_))
    ));
    sb.stop().await;
}

#[tokio::test]
async fn every_kind_lands_and_reads_back() {
    let sb = start(sandbox_config()).await;
    let dest = ZohoDesk::connect(dest_config(&sb)).await.unwrap();
    let info = dest.describe().await.unwrap();
    let admin = info
        .agents
        .iter()
        .find(|a| a.email == "admin@example.com")
        .unwrap()
        .id
        .clone();
    let tier = dest
        .ensure_custom_field(&spec(
            ObjectKind::Ticket,
            "Tier",
            FieldType::Dropdown,
            &["Gold", "Silver"],
        ))
        .await
        .unwrap();
    let vip = dest
        .ensure_custom_field(&spec(ObjectKind::Ticket, "VIP", FieldType::Checkbox, &[]))
        .await
        .unwrap();
    let areas = dest
        .ensure_custom_field(&spec(
            ObjectKind::Ticket,
            "Areas",
            FieldType::Multiselect,
            &["print", "fire", "net"],
        ))
        .await
        .unwrap();
    let since = dest
        .ensure_custom_field(&spec(ObjectKind::Ticket, "Since", FieldType::Date, &[]))
        .await
        .unwrap();

    let mut c = ctx(&[]);
    std::sync::Arc::make_mut(&mut c.agents).insert("admin@example.com".into(), admin.clone());
    for d in &info.departments {
        std::sync::Arc::make_mut(&mut c.departments).insert(d.name.clone(), d.id.clone());
    }

    let acc = CanonicalRecord::Account(account("A1"));
    let acc_id = dest.create(&acc, &c).await.unwrap().id;
    c.resolved.insert(ObjectKind::Account, "A1", acc_id.clone());
    let con = CanonicalRecord::Contact(contact("C1", Some("A1")));
    let con_id = dest.create(&con, &c).await.unwrap().id;
    c.resolved.insert(ObjectKind::Contact, "C1", con_id.clone());

    let mut t = ticket("T1", Some("C1"));
    t.custom
        .insert("Tier".into(), CustomValue::Text("Gold".into()));
    t.custom.insert("VIP".into(), CustomValue::Bool(true));
    t.custom.insert(
        "Areas".into(),
        CustomValue::List(vec!["print".into(), "fire".into()]),
    );
    t.custom
        .insert("Since".into(), CustomValue::Text("2023-05-06".into()));
    let mut tc = c.clone();
    tc.custom_fields = [&tier, &vip, &areas, &since]
        .into_iter()
        .map(|f| (f.label.clone(), f.clone()))
        .collect::<std::collections::BTreeMap<_, _>>()
        .into();
    let tic = CanonicalRecord::Ticket(t);
    let tic_id = dest.create(&tic, &tc).await.unwrap().id;
    c.resolved.insert(ObjectKind::Ticket, "T1", tic_id.clone());
    tc.resolved = c.resolved.clone();

    let orphan = CanonicalRecord::Ticket(ticket("T2", None));
    let orphan_id = dest.create(&orphan, &c).await.unwrap().id;

    let mail = CanonicalRecord::Activity(email("E1", "T1", true));
    let mail_id = dest.create(&mail, &c).await.unwrap().id;
    let ring = CanonicalRecord::Activity(call("K1", "T1"));
    let ring_id = dest.create(&ring, &c).await.unwrap().id;
    let tsk = CanonicalRecord::Task(task("K9", Some("T1")));
    let tsk_id = dest.create(&tsk, &c).await.unwrap().id;
    let lone = CanonicalRecord::Task(task("K10", None));
    let lone_id = dest.create(&lone, &c).await.unwrap().id;

    // What the sandbox holds.
    let fields = records(&sb, "fields").await;
    let migrated = |module: &str| {
        fields
            .iter()
            .find(|f| f["displayLabel"] == "Migrated From ID" && f["_module"] == module)
            .unwrap_or_else(|| panic!("Migrated From ID field in {module}"))["apiName"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let accounts = live(&sb, "accounts").await;
    let a = accounts
        .iter()
        .find(|r| r["id"] == acc_id.as_str())
        .expect("account stored");
    assert_eq!(a["accountName"], "Acme A1");
    assert_eq!(a["code"], "12345");
    assert_eq!(cf(a, &migrated("accounts")).as_deref(), Some("ivinex:A1"));

    let contacts = live(&sb, "contacts").await;
    let ct = contacts
        .iter()
        .find(|r| r["id"] == con_id.as_str())
        .expect("contact stored");
    assert_eq!(ct["accountId"], acc_id.as_str());
    assert_eq!(ct["lastName"], "Lee C1");

    let tickets = live(&sb, "tickets").await;
    let tk = tickets
        .iter()
        .find(|r| r["id"] == tic_id.as_str())
        .expect("ticket stored");
    let billing = info
        .departments
        .iter()
        .find(|d| d.name == "Billing")
        .unwrap();
    assert_eq!(tk["departmentId"], billing.id.as_str());
    assert_eq!(tk["contactId"], con_id.as_str());
    assert_eq!(tk["assigneeId"], admin.as_str());
    let desc = tk["description"].as_str().unwrap();
    assert!(
        desc.contains("[deskshift:ivinex:ticket:T1]") && desc.contains("Zed &lt;ops&gt;"),
        "{desc}"
    );
    assert!(
        desc.contains("2024-11-02 09:15:00 UTC") && desc.ends_with("<p>It <b>burns</b></p>"),
        "{desc}"
    );
    assert_eq!(cf(tk, &tier.api_name).as_deref(), Some("Gold"));
    assert_eq!(cf(tk, &vip.api_name).as_deref(), Some("true"));
    assert_eq!(cf(tk, &areas.api_name).as_deref(), Some("print;fire"));
    assert_eq!(cf(tk, &since.api_name).as_deref(), Some("2023-05-06"));
    assert_eq!(cf(tk, &migrated("tickets")).as_deref(), Some("ivinex:T1"));

    let ot = tickets
        .iter()
        .find(|r| r["id"] == orphan_id.as_str())
        .expect("orphan ticket stored");
    let placeholder = contacts
        .iter()
        .chain(live(&sb, "contacts").await.iter())
        .find(|r| r["id"] == ot["contactId"])
        .cloned()
        .expect("placeholder contact");
    assert_eq!(placeholder["lastName"], "Unknown requester");
    assert!(
        ot["description"]
            .as_str()
            .unwrap()
            .contains("Unknown requester")
    );
    let support = info
        .departments
        .iter()
        .find(|d| d.name == "Support")
        .unwrap();
    assert_eq!(
        ot["departmentId"],
        billing.id.as_str(),
        "mapped department name wins"
    );
    assert_ne!(support.id, billing.id);

    let comments = live(&sb, "comments").await;
    let (_, mail_cid) = mail_id.split_once(':').unwrap();
    let m = comments
        .iter()
        .find(|r| r["id"] == mail_cid)
        .expect("email comment stored");
    let content = m["content"].as_str().unwrap();
    assert!(
        content.contains("[deskshift:ivinex:email_in:E1]"),
        "{content}"
    );
    assert!(
        content.contains("Inbound email from ann@acme.test to help@desk.test, cc boss@acme.test"),
        "{content}"
    );
    assert!(
        content.contains("2024-11-02 10:00:00 UTC") && content.ends_with("<p>Still burning</p>")
    );
    assert_eq!(m["isPublic"], true);
    let (_, ring_cid) = ring_id.split_once(':').unwrap();
    let r = comments
        .iter()
        .find(|r| r["id"] == ring_cid)
        .expect("call comment stored");
    assert_eq!(r["isPublic"], false);
    assert!(
        r["content"]
            .as_str()
            .unwrap()
            .contains("Call, disposition Left voicemail, duration 2m05s")
    );

    let tasks = live(&sb, "tasks").await;
    let tt = tasks
        .iter()
        .find(|r| r["id"] == tsk_id.as_str())
        .expect("task stored");
    assert_eq!(tt["ticketId"], tic_id.as_str());
    assert_eq!(tt["ownerId"], admin.as_str());
    assert_eq!(tt["status"], "In Progress");
    let lt = tasks
        .iter()
        .find(|r| r["id"] == lone_id.as_str())
        .expect("orphan task stored");
    assert!(lt["ticketId"].is_null() || lt.get("ticketId").is_none());

    // read_back gives what the engine's validation expects.
    for (kind, rec, id, cx) in [
        (ObjectKind::Account, &acc, &acc_id, &c),
        (ObjectKind::Contact, &con, &con_id, &c),
        (ObjectKind::Ticket, &tic, &tic_id, &tc),
        (ObjectKind::Activity, &mail, &mail_id, &c),
        (ObjectKind::Activity, &ring, &ring_id, &c),
        (ObjectKind::Task, &tsk, &tsk_id, &c),
    ] {
        let found = dest
            .read_back(kind, id)
            .await
            .unwrap()
            .expect("record reads back");
        for (field, want) in deskshift_core::phases::expected_fields(rec, cx) {
            let got = found.get(&field).cloned().unwrap_or_default();
            // Emails compare case-insensitively (Zoho stores them lower-cased).
            let same = got == want
                || (want.len() == 10 && got.starts_with(&want))
                || (field.ends_with("email") && got.eq_ignore_ascii_case(&want));
            assert!(
                same,
                "{kind} {field}: expected {want:?}, found {got:?} in {found:?}"
            );
        }
    }
    let back = dest
        .read_back(ObjectKind::Activity, &mail_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back["body_html"], "<p>Still burning</p>");
    let back = dest
        .read_back(ObjectKind::Ticket, &tic_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back["custom.Areas"], "print;fire");
    assert_eq!(back["department"], "Billing");

    // Attachments: bytes stored as sent.
    let bytes = Bytes::from((0..70_000u32).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let att = AttachmentRef {
        id: "F1".into(),
        file_name: "log.bin".into(),
        url: "https://x.test/f1".into(),
        size: None,
        md5: None,
        inline: false,
    };
    let att_id = dest
        .attach(ObjectKind::Ticket, &tic_id, &att, bytes.clone())
        .await
        .unwrap();
    let stored = records(&sb, "attachments").await;
    let s = stored
        .iter()
        .find(|a| a["name"] == "log.bin")
        .expect("attachment stored");
    assert_eq!(s["size"].as_u64(), Some(70_000));
    assert_eq!(s["md5"], deskshift_core::util::md5_hex(&bytes));
    assert!(att_id.starts_with(&format!("{tic_id}:")));
    let via_comment = dest
        .attach(
            ObjectKind::Activity,
            &mail_id,
            &att,
            Bytes::from_static(b"hi"),
        )
        .await
        .unwrap();
    assert!(via_comment.starts_with(&format!("{tic_id}:")));
    let refused = dest
        .attach(
            ObjectKind::Contact,
            &con_id,
            &att,
            Bytes::from_static(b"hi"),
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::Data { .. }), "{refused}");

    // Updates reach the sandbox.
    let mut t2 = ticket("T1", Some("C1"));
    t2.subject = "Printer fixed".into();
    t2.status = Some("Closed".into());
    dest.update(&tic_id, &CanonicalRecord::Ticket(t2), &c)
        .await
        .unwrap();
    let mut e2 = email("E1", "T1", true);
    e2.body_html = "<p>All good now</p>".into();
    dest.update(&mail_id, &CanonicalRecord::Activity(e2), &c)
        .await
        .unwrap();
    let tk = live(&sb, "tickets")
        .await
        .into_iter()
        .find(|r| r["id"] == tic_id.as_str())
        .unwrap();
    assert_eq!(tk["subject"], "Printer fixed");
    assert_eq!(tk["status"], "Closed");
    let m = live(&sb, "comments")
        .await
        .into_iter()
        .find(|r| r["id"] == mail_cid)
        .unwrap();
    assert!(
        m["content"]
            .as_str()
            .unwrap()
            .ends_with("<p>All good now</p>")
    );

    // Counts.
    assert_eq!(dest.count(ObjectKind::Ticket).await.unwrap(), Some(2));
    assert_eq!(dest.count(ObjectKind::Task).await.unwrap(), Some(2));
    assert_eq!(dest.count(ObjectKind::Activity).await.unwrap(), None);

    // Rollback: everything goes to the recycle bin or away.
    dest.delete(ObjectKind::Attachment, &att_id).await.unwrap();
    dest.delete(ObjectKind::Activity, &ring_id).await.unwrap();
    dest.delete(ObjectKind::Task, &tsk_id).await.unwrap();
    dest.delete(ObjectKind::Ticket, &orphan_id).await.unwrap();
    dest.delete(ObjectKind::Contact, &con_id).await.unwrap();
    dest.delete(ObjectKind::Account, &acc_id).await.unwrap();
    dest.delete(ObjectKind::Task, &tsk_id).await.unwrap();
    assert!(
        !live(&sb, "comments")
            .await
            .iter()
            .any(|r| r["id"] == ring_cid)
    );
    assert!(
        !live(&sb, "tasks")
            .await
            .iter()
            .any(|r| r["id"] == tsk_id.as_str())
    );
    assert!(
        !live(&sb, "tickets")
            .await
            .iter()
            .any(|r| r["id"] == orphan_id.as_str())
    );
    assert!(
        !live(&sb, "accounts")
            .await
            .iter()
            .any(|r| r["id"] == acc_id.as_str())
    );
    assert!(
        dest.read_back(ObjectKind::Ticket, &orphan_id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        dest.read_back(ObjectKind::Activity, &ring_id)
            .await
            .unwrap()
            .is_none()
    );
    sb.stop().await;
}

#[tokio::test]
async fn find_existing_finds_records_by_source_id() {
    let sb = start(sandbox_config()).await;
    let dest = ZohoDesk::new(dest_config(&sb)).unwrap();
    let mut c = ctx(&[]);
    let acc = CanonicalRecord::Account(account("A7"));
    assert_eq!(
        dest.find_existing(&acc, &c).await.unwrap(),
        None,
        "nothing before the first create"
    );
    let acc_id = dest.create(&acc, &c).await.unwrap().id;
    c.resolved.insert(ObjectKind::Account, "A7", acc_id.clone());
    let con = CanonicalRecord::Contact(contact("C7", Some("A7")));
    let con_id = dest.create(&con, &c).await.unwrap().id;
    c.resolved.insert(ObjectKind::Contact, "C7", con_id.clone());
    let tic = CanonicalRecord::Ticket(ticket("T7", Some("C7")));
    let tic_id = dest.create(&tic, &c).await.unwrap().id;
    c.resolved.insert(ObjectKind::Ticket, "T7", tic_id.clone());
    let note = CanonicalRecord::Activity(call("N7", "T7"));
    let note_id = dest.create(&note, &c).await.unwrap().id;
    let tsk = CanonicalRecord::Task(task("K7", Some("T7")));
    let tsk_id = dest.create(&tsk, &c).await.unwrap().id;
    let lone = CanonicalRecord::Task(task("K8", None));
    let lone_id = dest.create(&lone, &c).await.unwrap().id;

    // A fresh client (as after a crash) finds them all.
    let fresh = ZohoDesk::new(dest_config(&sb)).unwrap();
    assert_eq!(fresh.find_existing(&acc, &c).await.unwrap(), Some(acc_id));
    assert_eq!(fresh.find_existing(&con, &c).await.unwrap(), Some(con_id));
    assert_eq!(fresh.find_existing(&tic, &c).await.unwrap(), Some(tic_id));
    assert_eq!(fresh.find_existing(&note, &c).await.unwrap(), Some(note_id));
    assert_eq!(fresh.find_existing(&tsk, &c).await.unwrap(), Some(tsk_id));
    assert_eq!(fresh.find_existing(&lone, &c).await.unwrap(), Some(lone_id));
    let other = CanonicalRecord::Ticket(ticket("T8", Some("C7")));
    assert_eq!(fresh.find_existing(&other, &c).await.unwrap(), None);
    let other_note = CanonicalRecord::Activity(call("N8", "T7"));
    assert_eq!(fresh.find_existing(&other_note, &c).await.unwrap(), None);
    let mut other_platform = c.clone();
    other_platform.source_platform = "zendesk".into();
    assert_eq!(
        fresh.find_existing(&tic, &other_platform).await.unwrap(),
        None
    );
    sb.stop().await;
}

#[tokio::test]
async fn faults_are_retried_without_duplicates() {
    let sb = start(sandbox_config()).await;
    let dest = Arc::new(ZohoDesk::connect(dest_config(&sb)).await.unwrap());
    let c = ctx(&[]);
    // Create the marker fields before the storm so every create needs one POST.
    dest.create(&CanonicalRecord::Ticket(ticket("warm", None)), &c)
        .await
        .unwrap();
    set_faults(
        &sb,
        json!({"seed": 7, "error_5xx_rate": 0.15, "burst_429_rate": 0.08, "burst_len": 3, "truncate_rate": 0.08, "reset_rate": 0.05}),
    )
    .await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let d = dest.clone();
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            d.create(&CanonicalRecord::Ticket(ticket(&format!("F{i}"), None)), &c)
                .await
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap().expect("create survives the faults").id);
    }
    set_faults(&sb, json!({})).await;
    let faults = get_json(&sb, "/__sandbox/faults").await;
    let counters = &faults["counters"];
    assert!(counters["errors_5xx"].as_u64().unwrap() > 0, "{counters}");
    assert!(
        counters["throttled_429"].as_u64().unwrap() > 0,
        "{counters}"
    );
    assert!(counters["truncated"].as_u64().unwrap() > 0, "{counters}");

    let tickets = live(&sb, "tickets").await;
    assert_eq!(tickets.len(), 41, "each ticket exactly once");
    let fields = records(&sb, "fields").await;
    let api = fields
        .iter()
        .find(|f| {
            f["displayLabel"] == "Migrated From ID"
                && tickets[0]["cf"]
                    .get(f["apiName"].as_str().unwrap())
                    .is_some()
        })
        .unwrap()["apiName"]
        .as_str()
        .unwrap()
        .to_string();
    let mut values: Vec<String> = tickets.iter().filter_map(|t| cf(t, &api)).collect();
    values.sort();
    values.dedup();
    assert_eq!(values.len(), 41);
    for (i, id) in ids.iter().enumerate() {
        let t = tickets
            .iter()
            .find(|t| t["id"] == id.as_str())
            .expect("returned id exists");
        assert_eq!(cf(t, &api), Some(format!("ivinex:F{i}")));
    }
    let spend = dest.spend();
    assert!(spend.retries > 0 && spend.throttled > 0, "{spend:?}");
    sb.stop().await;
}

#[tokio::test]
async fn concurrency_never_exceeds_the_edition_cap() {
    let mut cfg = sandbox_config();
    cfg.edition = "Free".into();
    cfg.faults.latency_ms = 20;
    cfg.faults.jitter_ms = 20;
    let sb = start(cfg).await;
    let dest = Arc::new(ZohoDesk::connect(dest_config(&sb)).await.unwrap());
    assert_eq!(dest.concurrency_cap(), 5);
    let c = ctx(&[]);
    dest.create(&CanonicalRecord::Account(account("warm")), &c)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..60 {
        let d = dest.clone();
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            d.create(&CanonicalRecord::Account(account(&format!("P{i}"))), &c)
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let counters = get_json(&sb, "/__sandbox/stats").await["counters"].clone();
    assert_eq!(counters["throttledConcurrency"], 0, "{counters}");
    assert!(
        counters["peakInFlight"].as_u64().unwrap() <= 5,
        "{counters}"
    );
    assert!(
        counters["peakInFlight"].as_u64().unwrap() >= 2,
        "calls do run in parallel: {counters}"
    );
    assert_eq!(dest.spend().throttled, 0);
    assert_eq!(live(&sb, "accounts").await.len(), 61);
    sb.stop().await;
}

#[tokio::test]
async fn spent_daily_credits_surface_as_budget_exhausted() {
    let sb = start(ZohoConfig {
        daily_credits: Some(6),
        ..sandbox_config()
    })
    .await;
    let dest = ZohoDesk::new(dest_config(&sb)).unwrap();
    let c = ctx(&[]);
    let mut outcome = None;
    for i in 0..10 {
        if let Err(e) = dest
            .create(&CanonicalRecord::Account(account(&format!("B{i}"))), &c)
            .await
        {
            outcome = Some(e);
            break;
        }
    }
    let err = outcome.expect("the budget runs out");
    assert!(matches!(err, Error::BudgetExhausted { .. }), "{err}");
    assert!(err.is_transient());
    assert!(dest.spend().credits <= 6, "{:?}", dest.spend());
    sb.stop().await;
}

#[tokio::test]
async fn refused_data_names_the_record_and_fields() {
    let sb = start(sandbox_config()).await;
    let dest = ZohoDesk::new(dest_config(&sb)).unwrap();
    let tier = dest
        .ensure_custom_field(&spec(
            ObjectKind::Ticket,
            "Tier",
            FieldType::Dropdown,
            &["Gold"],
        ))
        .await
        .unwrap();
    let c = ctx(std::slice::from_ref(&tier));
    let mut t = ticket("T5", None);
    t.custom
        .insert("Tier".into(), CustomValue::Text("Platinum".into()));
    let err = dest
        .create(&CanonicalRecord::Ticket(t), &c)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            Error::Data {
                kind: ObjectKind::Ticket,
                ..
            }
        ),
        "{text}"
    );
    assert!(
        text.contains("T5") && text.contains(&tier.api_name) && text.contains("INVALID_DATA"),
        "{text}"
    );

    let mut unknown = ticket("T6", None);
    unknown
        .custom
        .insert("Nope".into(), CustomValue::Text("x".into()));
    let err = dest
        .create(&CanonicalRecord::Ticket(unknown), &c)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Data { .. }) && err.to_string().contains("Nope"),
        "{err}"
    );

    let missing_parent = CanonicalRecord::Task(task("K1", Some("never-loaded")));
    let err = dest.create(&missing_parent, &c).await.unwrap_err();
    assert!(err.to_string().contains("never-loaded"), "{err}");
    sb.stop().await;
}

#[tokio::test]
async fn secrets_never_show_in_debug_or_errors() {
    let sb = start(sandbox_config()).await;
    let cfg = dest_config(&sb);
    let dbg = format!("{cfg:?}");
    assert!(!dbg.contains(SECRET) && !dbg.contains(REFRESH), "{dbg}");

    let mut wrong = cfg.clone();
    wrong.client_secret = Secret::new("wrong-secret-Pq7");
    let dest = ZohoDesk::new(wrong).unwrap();
    let err = dest.count(ObjectKind::Ticket).await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(matches!(err, Error::Config(_)), "{text}");
    for leak in ["wrong-secret-Pq7", REFRESH, "http://", "Zoho-oauthtoken"] {
        assert!(!text.contains(leak), "{leak} leaked: {text}");
    }

    let dest = ZohoDesk::new(cfg).unwrap();
    sb.set_frozen(true);
    let err = dest
        .create(&CanonicalRecord::Account(account("Z1")), &ctx(&[]))
        .await
        .unwrap_err();
    sb.set_frozen(false);
    let text = format!("{err} {err:?}");
    for leak in [SECRET, REFRESH, "http://", "1000.", "Zoho-oauthtoken"] {
        assert!(!text.contains(leak), "{leak} leaked: {text}");
    }
    sb.stop().await;
}

#[tokio::test]
async fn bulk_load_timing() {
    let sb = start(ZohoConfig {
        edition: "Enterprise".into(),
        ..sandbox_config()
    })
    .await;
    let dest = Arc::new(ZohoDesk::connect(dest_config(&sb)).await.unwrap());
    let c = ctx(&[]);
    dest.create(&CanonicalRecord::Ticket(ticket("warm", None)), &c)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let n = 500;
    let mut tasks = Vec::new();
    for i in 0..n {
        let d = dest.clone();
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            d.create(&CanonicalRecord::Ticket(ticket(&format!("L{i}"), None)), &c)
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    eprintln!(
        "REST: {n} tickets created in {:?} (cap {})",
        started.elapsed(),
        dest.concurrency_cap()
    );
    assert_eq!(live(&sb, "tickets").await.len(), n + 1);
    sb.stop().await;
}
