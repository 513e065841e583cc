//! The import package: column rules, ExtId uniqueness, references, time format and batch limits,
//! checked by reading the CSV files and manifest from disk.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use bytes::Bytes;
use common::{account, call, contact, email, task, ticket};
use deskshift_core::Error;
use deskshift_core::model::*;
use deskshift_core::ports::{CustomFieldSpec, Destination, LoadContext};
use deskshift_zohodesk::package::custom_column;
use deskshift_zohodesk::{Manifest, Module, PackageLimits, ZohoImportPackage};

struct Csv {
    name: String,
    header: Vec<String>,
    rows: Vec<BTreeMap<String, String>>,
    bytes: u64,
}

fn read_module(dir: &Path, module: Module) -> Vec<Csv> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(&format!("{}_", module.file_stem())) && n.ends_with(".csv"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let path = dir.join(&name);
            let mut r = csv::Reader::from_path(&path).unwrap();
            let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
            let rows = r
                .records()
                .map(|rec| {
                    header
                        .iter()
                        .cloned()
                        .zip(rec.unwrap().iter().map(str::to_string))
                        .collect()
                })
                .collect();
            Csv {
                bytes: std::fs::metadata(&path).unwrap().len(),
                name,
                header,
                rows,
            }
        })
        .collect()
}

fn all_rows(dir: &Path, module: Module) -> Vec<BTreeMap<String, String>> {
    read_module(dir, module)
        .into_iter()
        .flat_map(|c| c.rows)
        .collect()
}

fn ext_ids(dir: &Path, module: Module) -> HashSet<String> {
    let rows = all_rows(dir, module);
    let ids: HashSet<String> = rows
        .iter()
        .map(|r| r[module.key_column()].clone())
        .collect();
    assert_eq!(
        ids.len(),
        rows.len(),
        "{} ExtIds are unique",
        module.file_stem()
    );
    ids
}

/// `YYYY-MM-DDTHH:MM:SS.000Z`
fn is_package_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            20..=22 => *c == b'0',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

fn ctx() -> LoadContext {
    LoadContext {
        source_platform: "ivinex".into(),
        ..LoadContext::default()
    }
}

fn spec(kind: ObjectKind, label: &str) -> CustomFieldSpec {
    CustomFieldSpec {
        kind,
        label: label.into(),
        field_type: FieldType::Dropdown,
        options: vec!["Gold".into()],
        scope: None,
    }
}

fn att(id: &str, name: &str) -> AttachmentRef {
    AttachmentRef {
        id: id.into(),
        file_name: name.into(),
        url: format!("https://src.test/{id}"),
        size: None,
        md5: None,
        inline: false,
    }
}

#[tokio::test]
async fn package_follows_the_column_reference_time_and_batch_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let limits = PackageLimits {
        max_rows: 3,
        max_bytes: 1024 * 1024,
        max_attachment_bytes: 100,
    };
    let pkg = ZohoImportPackage::with_limits(tmp.path(), limits.clone()).unwrap();
    let c = ctx();
    let tier = pkg
        .ensure_custom_field(&spec(ObjectKind::Ticket, "Tier"))
        .await
        .unwrap();
    assert_eq!(tier.api_name, "Tier");
    pkg.ensure_custom_field(&spec(ObjectKind::Contact, "Region"))
        .await
        .unwrap();
    pkg.ensure_custom_field(&spec(ObjectKind::Ticket, "Status"))
        .await
        .unwrap();
    pkg.add_agent(&Agent {
        source_id: "U1".into(),
        email: Some("Admin@Example.com".into()),
        first_name: Some("Ada".into()),
        last_name: Some("Min".into()),
        active: true,
        ..Agent::default()
    });

    for a in ["A1", "A2"] {
        pkg.create(&CanonicalRecord::Account(account(a)), &c)
            .await
            .unwrap();
    }
    for (i, cid) in ["C1", "C2", "C3", "C4"].iter().enumerate() {
        let mut ct = contact(cid, Some(if i % 2 == 0 { "A1" } else { "A2" }));
        ct.custom
            .insert("Region".into(), CustomValue::Text("EU".into()));
        pkg.create(&CanonicalRecord::Contact(ct), &c).await.unwrap();
    }
    for i in 1..=7 {
        let mut t = ticket(&format!("T{i}"), if i % 3 == 0 { None } else { Some("C1") });
        t.account = Some("A1".into());
        t.custom
            .insert("Tier".into(), CustomValue::Text("Gold".into()));
        t.custom
            .insert("Status".into(), CustomValue::Text("custom status".into()));
        t.modified_at = Some("2024-11-05T01:02:03.456+01:00".into());
        if i == 1 {
            t.attachments = vec![
                att("F1", "a.txt"),
                att("F2", "a.txt"),
                att("F3", "../evil.txt"),
                att("F4", "never.bin"),
            ];
        }
        pkg.create(&CanonicalRecord::Ticket(t), &c).await.unwrap();
    }
    let mut outbound = email("E2", "T2", false);
    outbound.author = Some(Person {
        email: Some("agent2@desk.test".into()),
        name: Some("Bo Agent".into()),
        ..Person::default()
    });
    for a in [email("E1", "T1", true), outbound, call("K1", "T1")] {
        pkg.create(&CanonicalRecord::Activity(a), &c).await.unwrap();
    }
    let mut note = call("N1", "T3");
    note.kind = ActivityKind::Note;
    note.custom
        .insert("Disposition".into(), CustomValue::Text("x".into()));
    pkg.create(&CanonicalRecord::Activity(note), &c)
        .await
        .unwrap();
    pkg.create(&CanonicalRecord::Task(task("K9", Some("T1"))), &c)
        .await
        .unwrap();
    pkg.create(&CanonicalRecord::Task(task("K10", None)), &c)
        .await
        .unwrap();

    // Attachments: 60 bytes each with a 100-byte batch folder limit -> one folder per file.
    let blob = Bytes::from(vec![7u8; 60]);
    let p1 = pkg
        .attach(ObjectKind::Ticket, "T1", &att("F1", "a.txt"), blob.clone())
        .await
        .unwrap();
    let p2 = pkg
        .attach(ObjectKind::Ticket, "T1", &att("F2", "a.txt"), blob.clone())
        .await
        .unwrap();
    let p3 = pkg
        .attach(
            ObjectKind::Ticket,
            "T1",
            &att("F3", "../evil.txt"),
            blob.clone(),
        )
        .await
        .unwrap();
    let again = pkg
        .attach(ObjectKind::Ticket, "T1", &att("F1", "a.txt"), blob.clone())
        .await
        .unwrap();
    assert_eq!(again, p1, "re-attaching the same file is idempotent");
    assert_eq!(p1, "attachments/Tickets/T1/a.txt");
    assert_eq!(p2, "attachments_002/Tickets/T1/a (2).txt");
    assert_eq!(p3, "attachments_003/Tickets/T1/_evil.txt");
    for p in [&p1, &p2, &p3] {
        assert_eq!(std::fs::read(tmp.path().join(p)).unwrap(), blob.to_vec());
    }
    let orphan_att = pkg
        .attach(ObjectKind::Ticket, "T99", &att("F9", "x"), blob.clone())
        .await
        .unwrap_err();
    assert!(matches!(orphan_att, Error::Data { .. }));

    let manifest = pkg.finish().unwrap();
    let dir = tmp.path();

    // Files and batch limits.
    let tickets = read_module(dir, Module::Tickets);
    let names: Vec<&str> = tickets.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["Tickets_001.csv", "Tickets_002.csv", "Tickets_003.csv"]
    );
    for m in Module::ALL {
        for f in read_module(dir, m) {
            assert!(
                !f.rows.is_empty() && f.rows.len() <= limits.max_rows,
                "{} has {} rows",
                f.name,
                f.rows.len()
            );
            assert!(f.bytes <= limits.max_bytes);
            // Header rule: the standard columns in order, then custom labels, then Attachments.
            let std_cols: Vec<String> =
                m.standard_columns().iter().map(|s| s.to_string()).collect();
            assert_eq!(f.header[..std_cols.len()], std_cols[..], "{}", f.name);
            assert_eq!(f.header[0], m.key_column());
            let unique: HashSet<&String> = f.header.iter().collect();
            assert_eq!(
                unique.len(),
                f.header.len(),
                "{} has duplicate columns",
                f.name
            );
        }
    }
    let th = &tickets[0].header;
    assert!(
        th.contains(&"Tier".to_string()) && th.last().unwrap() == "Attachments",
        "{th:?}"
    );
    assert!(
        th.contains(&custom_column(Module::Tickets, "Status")),
        "a custom label equal to a standard column is renamed"
    );
    assert!(th.contains(&"Status (custom)".to_string()));
    assert!(
        read_module(dir, Module::Contacts)[0]
            .header
            .contains(&"Region".to_string())
    );
    // A custom column first seen mid-file starts a new file, so every file's header covers its rows.
    let comment_files = read_module(dir, Module::TicketComments);
    assert_eq!(comment_files.len(), 2);
    assert!(!comment_files[0].header.contains(&"Disposition".to_string()));
    assert!(comment_files[1].header.contains(&"Disposition".to_string()));

    // ExtIds unique, references resolve.
    let accounts = ext_ids(dir, Module::Accounts);
    let contacts = ext_ids(dir, Module::Contacts);
    let ticket_ids = ext_ids(dir, Module::Tickets);
    let agents = ext_ids(dir, Module::Agents);
    ext_ids(dir, Module::Threads);
    ext_ids(dir, Module::TicketComments);
    ext_ids(dir, Module::Tasks);
    assert_eq!(ticket_ids.len(), 7);
    let refs = |module: Module, col: &str, targets: &HashSet<String>| {
        for r in all_rows(dir, module) {
            let v = &r[col];
            assert!(
                v.is_empty() || targets.contains(v),
                "{}.{col} = {v} does not resolve",
                module.file_stem()
            );
        }
    };
    refs(Module::Contacts, "AccountExtId", &accounts);
    refs(Module::Tickets, "ContactExtId", &contacts);
    refs(Module::Tickets, "AccountExtId", &accounts);
    refs(Module::Tickets, "AssigneeExtId", &agents);
    refs(Module::Threads, "TicketExtId", &ticket_ids);
    refs(Module::Threads, "AgentExtId", &agents);
    refs(Module::TicketComments, "TicketExtId", &ticket_ids);
    refs(Module::TicketComments, "AgentExtId", &agents);
    refs(Module::Tasks, "TicketExtId", &ticket_ids);
    refs(Module::Tasks, "OwnerExtId", &agents);
    assert!(
        agents.contains("admin@example.com") && agents.contains("agent2@desk.test"),
        "{agents:?}"
    );
    let admin = all_rows(dir, Module::Agents)
        .into_iter()
        .find(|r| r["agentExtId"] == "admin@example.com")
        .unwrap();
    assert_eq!(admin["Source ID"], "U1");
    assert_eq!(admin["First Name"], "Ada");

    // Times.
    for (m, cols) in [
        (
            Module::Tickets,
            &["Created Time", "Modified Time", "Due Date"][..],
        ),
        (Module::Threads, &["Created Time"][..]),
        (Module::TicketComments, &["Commented Time"][..]),
        (Module::Tasks, &["Due Date"][..]),
    ] {
        for r in all_rows(dir, m) {
            for col in cols {
                assert!(
                    is_package_time(&r[*col]),
                    "{}.{col} = {:?}",
                    m.file_stem(),
                    r[*col]
                );
            }
        }
    }
    let t1 = all_rows(dir, Module::Tickets)
        .into_iter()
        .find(|r| r["TicketExtId"] == "T1")
        .unwrap();
    assert_eq!(t1["Modified Time"], "2024-11-05T00:02:03.000Z");
    assert_eq!(t1["Attachments"], "a.txt;a (2).txt;_evil.txt;never.bin");

    // Activities split by kind and direction.
    let threads = all_rows(dir, Module::Threads);
    let dirs: BTreeMap<String, String> = threads
        .iter()
        .map(|r| (r["ThreadExtId"].clone(), r["Direction"].clone()))
        .collect();
    assert_eq!(dirs["E1"], "in");
    assert_eq!(dirs["E2"], "out");
    let comments = all_rows(dir, Module::TicketComments);
    let k1 = comments.iter().find(|r| r["CommentExtId"] == "K1").unwrap();
    assert_eq!(k1["Comment Type"], "call");
    assert_eq!(k1["Call Disposition"], "Left voicemail");
    assert_eq!(k1["Call Duration"], "125");
    assert_eq!(
        comments.iter().find(|r| r["CommentExtId"] == "N1").unwrap()["Comment Type"],
        "note"
    );

    // Manifest on disk agrees with the files.
    let on_disk: Manifest =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(on_disk, manifest);
    for f in &manifest.files {
        let csv = read_module(dir, f.module)
            .into_iter()
            .find(|c| c.name == f.path)
            .expect("manifest file exists");
        assert_eq!(csv.rows.len(), f.rows);
        assert_eq!(csv.bytes, f.bytes);
    }
    assert_eq!(manifest.rows_by_module["Tickets"], 7);
    assert_eq!(manifest.attachment_batches.len(), 3);
    assert!(
        manifest
            .attachment_batches
            .iter()
            .all(|b| b.bytes <= limits.max_attachment_bytes)
    );
    assert_eq!(manifest.attachments.len(), 3);
    assert_eq!(
        manifest.attachments[0].md5,
        deskshift_core::util::md5_hex(&blob)
    );
    assert_eq!(manifest.missing_attachments, ["Tickets/T1/never.bin"]);

    // Destination behaviour.
    let back = pkg
        .read_back(ObjectKind::Ticket, "T1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back["subject"], "Printer on fire T1");
    assert_eq!(back["custom.Tier"], "Gold");
    assert_eq!(back["custom.Status"], "custom status");
    assert!(back["assignee_email"].eq_ignore_ascii_case("admin@example.com"));
    assert_eq!(back["contact"], "C1");
    let note_back = pkg
        .read_back(ObjectKind::Activity, "N1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(note_back["public"], "false");
    assert!(
        pkg.read_back(ObjectKind::Ticket, "nope")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(pkg.count(ObjectKind::Ticket).await.unwrap(), Some(7));
    assert_eq!(pkg.count(ObjectKind::Activity).await.unwrap(), Some(4));
    let t1rec = CanonicalRecord::Ticket(ticket("T1", Some("C1")));
    assert_eq!(
        pkg.find_existing(&t1rec, &c).await.unwrap(),
        Some("T1".into())
    );
    assert!(
        matches!(pkg.create(&t1rec, &c).await, Err(Error::Data { .. })),
        "no duplicate ExtId"
    );
    let dangling = CanonicalRecord::Contact(contact("C9", Some("A404")));
    let err = pkg.create(&dangling, &c).await.unwrap_err();
    assert!(err.to_string().contains("A404"), "{err}");
    assert!(matches!(
        pkg.delete(ObjectKind::Ticket, "T1").await,
        Err(Error::Config(_))
    ));
    assert!(matches!(
        pkg.update("T1", &t1rec, &c).await,
        Err(Error::Config(_))
    ));
}

#[tokio::test]
async fn files_rotate_on_the_byte_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let limits = PackageLimits {
        max_rows: 1000,
        max_bytes: 2000,
        max_attachment_bytes: 1 << 30,
    };
    let pkg = ZohoImportPackage::with_limits(tmp.path(), limits).unwrap();
    let c = ctx();
    for i in 0..12 {
        let mut t = ticket(&format!("B{i}"), None);
        t.description_html = Some(format!("<p>{}</p>", "x".repeat(400)));
        pkg.create(&CanonicalRecord::Ticket(t), &c).await.unwrap();
    }
    pkg.finish().unwrap();
    let files = read_module(tmp.path(), Module::Tickets);
    assert!(files.len() >= 3, "{} files", files.len());
    for f in &files {
        assert!(f.bytes <= 2000, "{} is {} bytes", f.name, f.bytes);
    }
    assert_eq!(files.iter().map(|f| f.rows.len()).sum::<usize>(), 12);
    let mut huge = ticket("HUGE", None);
    huge.description_html = Some("y".repeat(5000));
    let err = pkg
        .create(&CanonicalRecord::Ticket(huge), &c)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Data {
                kind: ObjectKind::Ticket,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_reopened_package_resumes_without_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let c = ctx();
    {
        let pkg = ZohoImportPackage::open(tmp.path()).unwrap();
        pkg.create(&CanonicalRecord::Account(account("A1")), &c)
            .await
            .unwrap();
        pkg.create(&CanonicalRecord::Ticket(ticket("T1", None)), &c)
            .await
            .unwrap();
        pkg.finish().unwrap();
    }
    let pkg = ZohoImportPackage::open(tmp.path()).unwrap();
    let t1 = CanonicalRecord::Ticket(ticket("T1", None));
    assert_eq!(pkg.find_existing(&t1, &c).await.unwrap(), Some("T1".into()));
    assert_eq!(pkg.count(ObjectKind::Ticket).await.unwrap(), Some(1));
    let mut t2 = ticket("T2", None);
    t2.account = Some("A1".into());
    pkg.create(&CanonicalRecord::Ticket(t2), &c).await.unwrap();
    let manifest = pkg.finish().unwrap();
    let names: Vec<String> = read_module(tmp.path(), Module::Tickets)
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(names, ["Tickets_001.csv", "Tickets_002.csv"]);
    assert_eq!(manifest.rows_by_module["Tickets"], 2);
    assert_eq!(ext_ids(tmp.path(), Module::Tickets).len(), 2);
}

#[tokio::test]
async fn ten_thousand_tickets_fill_exactly_one_file() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = ZohoImportPackage::open(tmp.path()).unwrap();
    let c = ctx();
    let started = std::time::Instant::now();
    for i in 0..10_001 {
        pkg.create(&CanonicalRecord::Ticket(ticket(&format!("T{i}"), None)), &c)
            .await
            .unwrap();
        pkg.create(
            &CanonicalRecord::Activity(email(&format!("E{i}"), &format!("T{i}"), i % 2 == 0)),
            &c,
        )
        .await
        .unwrap();
    }
    let manifest = pkg.finish().unwrap();
    eprintln!(
        "package: 10,001 tickets + 10,001 threads written in {:?}",
        started.elapsed()
    );
    let tickets: Vec<_> = manifest
        .files
        .iter()
        .filter(|f| f.module == Module::Tickets)
        .collect();
    assert_eq!(tickets.len(), 2);
    assert_eq!((tickets[0].rows, tickets[1].rows), (10_000, 1));
    assert!(
        tickets
            .iter()
            .all(|f| f.bytes <= PackageLimits::default().max_bytes)
    );
    assert_eq!(manifest.rows_by_module["Threads"], 10_001);
}
