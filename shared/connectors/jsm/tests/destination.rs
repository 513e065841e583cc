//! The JSM destination against the JSM sandbox; every check reads `/__sandbox/dump`.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use common::*;
use deskshift_core::Error;
use deskshift_core::model::{
    Account, AttachmentRef, CanonicalRecord, Contact, CustomValue, FieldType, ObjectKind, Person,
    Task, Ticket,
};
use deskshift_core::ports::{CustomFieldSpec, Destination};
use deskshift_jsm::{InlineImage, Jsm};
use sandbox_jira::{
    JiraConfig, SeedAttachment, SeedComment, SeedCustomer, SeedData, SeedIssue, SeedOrganization,
};
use serde_json::{Value, json};

fn spec(label: &str, t: FieldType, options: &[&str]) -> CustomFieldSpec {
    CustomFieldSpec {
        kind: ObjectKind::Ticket,
        label: label.into(),
        field_type: t,
        options: options.iter().map(|s| s.to_string()).collect(),
        scope: None,
    }
}

fn account(id: &str, name: &str) -> CanonicalRecord {
    CanonicalRecord::Account(Account {
        source_id: id.into(),
        name: name.into(),
        phone: Some("+1 555 0100".into()),
        ..Account::default()
    })
}

fn contact(id: &str, email: Option<&str>, account: Option<&str>) -> CanonicalRecord {
    CanonicalRecord::Contact(Contact {
        source_id: id.into(),
        first_name: Some("Carla".into()),
        last_name: format!("Customer {id}"),
        email: email.map(str::to_string),
        account: account.map(str::to_string),
        ..Contact::default()
    })
}

fn ticket(id: &str, contact: Option<&str>) -> Ticket {
    Ticket {
        source_id: id.into(),
        subject: format!("Printer on fire #{id}"),
        description_html: Some("<p>It <b>smokes</b>.<br>Help!</p><p>See <a href=\"https://docs.acme.test/p\">the manual</a></p>".into()),
        contact: contact.map(str::to_string),
        created_by: Some(Person { name: Some("Carla".into()), email: Some("carla@x.test".into()), username: None }),
        created_at: Some("2023-05-06T07:08:09Z".into()),
        ..Ticket::default()
    }
}

async fn create(jsm: &Jsm, r: &CanonicalRecord, c: &deskshift_core::ports::LoadContext) -> String {
    jsm.create(r, c)
        .await
        .unwrap_or_else(|e| panic!("create {} {}: {e}", r.kind(), r.source_id()))
        .id
}

#[tokio::test]
async fn every_kind_lands_with_the_right_shape() {
    let env = start().await;
    let jsm = &env.jsm;
    let info = jsm.describe().await.unwrap();
    assert_eq!(info.departments.len(), 1);
    assert_eq!(info.departments[0].name, "Support");
    assert!(
        info.allowed_values["ticket.status"]
            .iter()
            .any(|s| s == "Resolved")
    );
    assert!(
        info.allowed_values["ticket.priority"]
            .iter()
            .any(|s| s == "High")
    );
    assert_eq!(info.max_lengths["account.name"], 200);
    let agent = info
        .agents
        .iter()
        .find(|a| a.email == AGENT_EMAIL)
        .expect("agent listed")
        .clone();

    let mut fields = Vec::new();
    for s in [
        spec("Plan", FieldType::Dropdown, &["Gold", "Silver"]),
        spec("Regions", FieldType::Multiselect, &["EU", "US"]),
        spec("Urgent", FieldType::Checkbox, &[]),
        spec("Seats", FieldType::Number, &[]),
        spec("Renewal", FieldType::Date, &[]),
        spec("Notes", FieldType::Textarea, &[]),
        spec("Account manager", FieldType::UserLink, &[]),
        spec("Homepage", FieldType::Url, &[]),
    ] {
        fields.push(jsm.ensure_custom_field(&s).await.unwrap());
    }
    // Reused by name, not created twice.
    let again = jsm
        .ensure_custom_field(&spec("Plan", FieldType::Dropdown, &["Gold", "Bronze"]))
        .await
        .unwrap();
    assert_eq!(again.id, fields[0].id);
    assert!(again.options.contains(&"Bronze".to_string()));

    let mut c = with_agents(
        ctx(&fields),
        BTreeMap::from([(AGENT_EMAIL.to_string(), agent.id.clone())]),
    );
    let org_a = create(jsm, &account("A1", "Acme Ltd"), &c).await;
    let org_b = create(jsm, &account("A2", "Beta GmbH"), &c).await;
    c.resolved.insert(ObjectKind::Account, "A1", org_a.clone());
    c.resolved.insert(ObjectKind::Account, "A2", org_b.clone());
    let cust1 = create(jsm, &contact("C1", Some("shared@x.test"), Some("A1")), &c).await;
    let cust2 = create(jsm, &contact("C2", Some("Shared@X.test"), Some("A2")), &c).await;
    assert_eq!(cust1, cust2, "one e-mail, one customer");
    assert_eq!(jsm.customer_reuses().len(), 1);
    c.resolved.insert(ObjectKind::Contact, "C1", cust1.clone());

    let mut t = ticket("T1", Some("C1"));
    t.status = Some("Resolved".into());
    t.priority = Some("High".into());
    t.tags = vec!["vip customer".into()];
    t.channel = Some("Email".into());
    t.category = Some("Hardware".into());
    t.sub_category = Some("Printers".into());
    t.product = Some("Widget Pro".into());
    t.due_date = Some("2024-07-01T10:00:00Z".into());
    t.assignee = Some(Person {
        email: Some(AGENT_EMAIL.into()),
        ..Person::default()
    });
    t.custom = BTreeMap::from([
        ("Plan".to_string(), CustomValue::Text("Silver".into())),
        (
            "Regions".to_string(),
            CustomValue::List(vec!["EU".into(), "APAC".into()]),
        ),
        ("Urgent".to_string(), CustomValue::Bool(true)),
        ("Seats".to_string(), CustomValue::Number(12.0)),
        (
            "Renewal".to_string(),
            CustomValue::Text("2025-02-03".into()),
        ),
        (
            "Notes".to_string(),
            CustomValue::Text("line one\nline two".into()),
        ),
        (
            "Account manager".to_string(),
            CustomValue::Text("boss@acme.test".into()),
        ),
        (
            "Homepage".to_string(),
            CustomValue::Text("https://acme.test".into()),
        ),
    ]);
    let key1 = create(jsm, &CanonicalRecord::Ticket(t.clone()), &c).await;
    c.resolved.insert(ObjectKind::Ticket, "T1", key1.clone());
    let mut t2 = ticket("T2", None);
    t2.related_tickets = vec!["T1".into(), "T-not-yet".into()];
    let key2 = create(jsm, &CanonicalRecord::Ticket(t2), &c).await;
    // The load relates a pair once both are written (a create alone links nothing).
    assert!(env.dump().await["links"].as_array().unwrap().is_empty());
    jsm.relate("T2", &key2, &key1).await.unwrap();

    let note = activity("N1", "T1", false, "<p>internal <i>only</i></p>");
    let reply = activity("R1", "T1", true, "<p>Dear customer</p>");
    let cid1 = create(jsm, &CanonicalRecord::Activity(note), &c).await;
    let cid2 = create(jsm, &CanonicalRecord::Activity(reply), &c).await;
    assert!(cid1.starts_with(&format!("{key1}:")));
    let sub = create(
        jsm,
        &CanonicalRecord::Task(Task {
            source_id: "K1".into(),
            ticket: Some("T1".into()),
            subject: "Call the customer back".into(),
            description: Some("before noon".into()),
            due_date: Some("2024-07-02".into()),
            status: Some("In Progress".into()),
            owner: Some(Person {
                email: Some(AGENT_EMAIL.into()),
                ..Person::default()
            }),
            ..Task::default()
        }),
        &c,
    )
    .await;
    let orphan = create(
        jsm,
        &CanonicalRecord::Task(Task {
            source_id: "K2".into(),
            subject: "Orphan".into(),
            ..Task::default()
        }),
        &c,
    )
    .await;

    let dump = env.dump().await;
    // organizations and the shared customer
    let orgs = dump["organizations"].as_array().unwrap();
    assert_eq!(orgs.len(), 2);
    let customers: Vec<&Value> = dump["customers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| {
            u["emailAddress"]
                .as_str()
                .is_some_and(|e| e.eq_ignore_ascii_case("shared@x.test"))
        })
        .collect();
    assert_eq!(customers.len(), 1);
    for o in orgs {
        assert!(
            o["members"].as_array().unwrap().contains(&json!(cust1)),
            "{o}"
        );
    }
    let desk = &dump["service_desks"][0];
    assert!(
        desk["customers"]
            .as_array()
            .unwrap()
            .contains(&json!(cust1))
    );
    assert!(
        desk["organizations"]
            .as_array()
            .unwrap()
            .contains(&json!(org_a))
    );

    // the request
    let i = issue_in(&dump, &key1);
    let get_it_help = desk["requestTypes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Get IT help")
        .unwrap()["id"]
        .clone();
    assert_eq!(i["request"]["requestTypeId"], get_it_help);
    assert_eq!(i["status"], "Resolved");
    let f = &i["fields"];
    assert_eq!(f["summary"], "Printer on fire #T1");
    assert_eq!(f["priority"]["name"], "High");
    assert_eq!(f["duedate"], "2024-07-01");
    assert_eq!(f["reporter"]["accountId"], json!(cust1));
    assert_eq!(f["assignee"]["accountId"], json!(agent.id));
    let labels: Vec<&str> = f["labels"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        labels.contains(&"vip_customer") && labels.contains(&"channel:Email"),
        "{labels:?}"
    );
    assert_eq!(f["components"][0]["name"], "Widget Pro");
    let desc = text(&f["description"]);
    assert!(desc.starts_with("[deskshift:zohodesk:ticket:T1] Created by Carla <carla@x.test> on 2023-05-06 07:08:09 UTC"), "{desc}");
    assert!(desc.contains("It smokes.\nHelp!"), "{desc}");
    let by_name = |n: &str| -> Value {
        let id = dump["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == n)
            .unwrap_or_else(|| panic!("field {n}"))["id"]
            .as_str()
            .unwrap()
            .to_string();
        f[&id].clone()
    };
    assert_eq!(by_name("Legacy Ticket ID"), "zohodesk:T1");
    assert_eq!(by_name("Plan")["value"], "Silver");
    assert_eq!(by_name("Regions").as_array().unwrap().len(), 2);
    assert_eq!(by_name("Urgent")["value"], "Yes");
    assert_eq!(by_name("Seats"), 12.0);
    assert_eq!(by_name("Renewal"), "2025-02-03");
    assert_eq!(text(&by_name("Notes")), "line one\nline two");
    assert_eq!(by_name("Account manager"), "boss@acme.test");
    assert_eq!(
        by_name("Category / Sub-category"),
        json!({"value": "Hardware", "child": {"value": "Printers"}})
    );

    // comments: order, visibility, provenance
    let comments = i["comments"].as_array().unwrap();
    assert_eq!(comments.len(), 2);
    assert_eq!(comments[0]["id"], cid1.split(':').nth(1).unwrap());
    assert_eq!(comments[0]["public"], false);
    assert_eq!(comments[1]["id"], cid2.split(':').nth(1).unwrap());
    assert_eq!(comments[1]["public"], true);
    let first = text(&comments[0]["body"]);
    assert!(first.starts_with("[deskshift:zohodesk:note:N1] Note; by Zoe Writer <zoe@acme.test> on 2024-03-01 08:00:00 UTC"), "{first}");

    // sub-task, orphan task, link
    let s = issue_in(&dump, &sub);
    assert_eq!(s["issueType"], "Sub-task");
    assert_eq!(s["parent"], json!(key1));
    assert_eq!(s["status"], "In Progress");
    assert_eq!(s["fields"]["assignee"]["accountId"], json!(agent.id));
    assert_eq!(issue_in(&dump, &orphan)["issueType"], "Task");
    let links = dump["links"].as_array().unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0]["inwardIssue"], json!(key1));
    assert_eq!(links[0]["outwardIssue"], json!(key2));
    assert_eq!(
        issue_in(&dump, &key2)["fields"]["reporter"]["accountId"],
        dump["admin"]
    );

    // read back in canonical names
    let rb = jsm
        .read_back(ObjectKind::Ticket, &key1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rb["subject"], "Printer on fire #T1");
    assert_eq!(rb["status"], "Resolved");
    assert_eq!(rb["assignee_email"], AGENT_EMAIL);
    assert_eq!(rb["department"], "Support");
    assert_eq!(rb["custom.Urgent"], "true");
    assert_eq!(rb["custom.Regions"], "EU;APAC");
    assert_eq!(rb["custom.Seats"], "12");
    assert_eq!(rb["category"], "Hardware");
    let rc = jsm
        .read_back(ObjectKind::Activity, &cid1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rc["public"], "false");
    let rcust = jsm
        .read_back(ObjectKind::Contact, &cust1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rcust["email"], "shared@x.test");
    assert_eq!(jsm.count(ObjectKind::Ticket).await.unwrap(), Some(2));
    assert_eq!(jsm.count(ObjectKind::Task).await.unwrap(), Some(2));
    assert_eq!(jsm.count(ObjectKind::Account).await.unwrap(), Some(2));
    env.stop().await;
}

#[tokio::test]
async fn organization_names_are_checked_and_duplicates_reported() {
    let env = start().await;
    let c = ctx(&[]);
    create(&env.jsm, &account("A1", "Same Name"), &c).await;
    match env.jsm.create(&account("A2", "same name"), &c).await {
        Err(Error::Duplicate {
            field, source_id, ..
        }) => {
            assert_eq!(field, "name");
            assert_eq!(source_id, "A2");
        }
        other => panic!("expected a duplicate, got {other:?}"),
    }
    let long = "x".repeat(201);
    let e = env.jsm.create(&account("A3", &long), &c).await.unwrap_err();
    assert!(e.to_string().contains("at most 200"), "{e}");
    let e = env
        .jsm
        .create(&contact("C9", None, None), &c)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Data { source_id, .. } if source_id == "C9"),
        "{e}"
    );
    assert_eq!(
        env.dump().await["organizations"].as_array().unwrap().len(),
        1
    );
    env.stop().await;
}

#[tokio::test]
async fn status_is_reached_by_walking_transitions() {
    let env = start().await;
    let c = ctx(&[]);
    let mut keys = Vec::new();
    for (id, st) in [
        ("T1", "Closed"),
        ("T2", "Waiting for customer"),
        ("T3", "Closed"),
        ("T4", "Open"),
    ] {
        let mut t = ticket(id, None);
        t.status = Some(st.into());
        keys.push((create(&env.jsm, &CanonicalRecord::Ticket(t), &c).await, st));
    }
    let dump = env.dump().await;
    for (k, st) in &keys {
        assert_eq!(issue_in(&dump, k)["status"], *st, "{k}");
    }
    // Open -> Resolved -> Closed: two transitions for each closed ticket, one for the waiting one.
    let posts = env.stats().await["endpoints"]["POST /rest/api/3/issue/{issueIdOrKey}/transitions"]
        ["count"]
        .as_u64()
        .unwrap();
    assert_eq!(posts, 5);
    // The walk starts from the status the create answered with: only the first ticket, whose
    // project's workflow is not learnt yet, reads its status.
    let reads = env.stats().await["endpoints"]["GET /rest/api/3/issue/{issueIdOrKey}"]["count"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(reads, 1, "status reads for 4 new tickets");
    let mut bad = ticket("T5", None);
    bad.status = Some("On the moon".into());
    let e = env
        .jsm
        .create(&CanonicalRecord::Ticket(bad), &c)
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("On the moon") && msg.contains("Resolved"),
        "{msg}"
    );
    env.stop().await;
}

fn pseudo_random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[tokio::test]
async fn attachments_arrive_with_the_same_md5() {
    let env = start_with(JiraConfig::default(), |c| {
        c.verify_download_max_bytes = 100_000
    })
    .await;
    let c = ctx(&[]);
    let key = create(&env.jsm, &CanonicalRecord::Ticket(ticket("T1", None)), &c).await;
    let files = [
        ("photo.png", pseudo_random_bytes(300_000, 7)),
        ("notes.txt", "héllo wörld\n".repeat(50).into_bytes()),
        ("empty.bin", Vec::new()),
    ];
    let mut ids = Vec::new();
    for (n, (name, data)) in files.iter().enumerate() {
        let a = AttachmentRef {
            id: format!("att{n}"),
            file_name: name.to_string(),
            url: String::new(),
            size: Some(data.len() as u64),
            md5: None,
            inline: false,
        };
        ids.push(
            env.jsm
                .attach(ObjectKind::Ticket, &key, &a, Bytes::from(data.clone()))
                .await
                .unwrap(),
        );
    }
    let dump = env.dump().await;
    let atts = issue_in(&dump, &key)["attachments"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(atts.len(), 3);
    for (name, data) in &files {
        let a = atts.iter().find(|a| a["filename"] == *name).unwrap();
        assert_eq!(a["md5"], deskshift_core::util::md5_hex(data), "{name}");
        assert_eq!(a["size"], data.len());
    }
    let a0 = AttachmentRef {
        id: "att0".into(),
        file_name: "photo.png".into(),
        url: String::new(),
        size: None,
        md5: None,
        inline: false,
    };
    assert_eq!(
        env.jsm
            .find_attachment(ObjectKind::Ticket, &key, &a0, 300_000)
            .await
            .unwrap(),
        Some(ids[0].clone())
    );
    assert_eq!(
        env.jsm
            .find_attachment(ObjectKind::Ticket, &key, &a0, 1)
            .await
            .unwrap(),
        None
    );
    let rb = env
        .jsm
        .read_back(ObjectKind::Attachment, &ids[1])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rb["file_name"], "notes.txt");
    let e = env
        .jsm
        .attach(ObjectKind::Account, "1", &a0, Bytes::new())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no files on account"), "{e}");
    env.stop().await;
}

#[tokio::test]
async fn inline_images_become_media_of_uploaded_files() {
    let env = start().await;
    let c0 = ctx(&[]);
    let png = pseudo_random_bytes(5_000, 3);
    let src = "https://acme.zohodesk.com/api/v1/inline/abc.png";
    env.jsm.provide_inline_image(
        src,
        InlineImage {
            file_name: "abc.png".into(),
            bytes: Bytes::from(png.clone()),
        },
    );
    let mut t = ticket("T1", None);
    t.description_html = Some(format!(
        "<p>Before</p><img src=\"{src}\" alt=\"screen\"><p>After <img src=\"https://elsewhere.test/x.gif\"></p>"
    ));
    let key = create(&env.jsm, &CanonicalRecord::Ticket(t), &c0).await;
    let mut c = c0.clone();
    c.resolved.insert(ObjectKind::Ticket, "T1", key.clone());
    let body = format!("<p>again:</p><img src=\"{src}\">");
    create(
        &env.jsm,
        &CanonicalRecord::Activity(activity("R1", "T1", true, &body)),
        &c,
    )
    .await;
    let i = env.issue(&key).await;
    let atts = i["attachments"].as_array().unwrap();
    assert_eq!(atts.len(), 1, "the image is uploaded once: {atts:?}");
    assert_eq!(atts[0]["md5"], deskshift_core::util::md5_hex(&png));
    let uuid = atts[0]["mediaUuid"].clone();
    assert_eq!(
        deskshift_jsm::adf::media_ids(&i["fields"]["description"]),
        vec![uuid.as_str().unwrap().to_string()]
    );
    assert!(
        text(&i["fields"]["description"]).contains("x.gif"),
        "an image not uploaded stays visible"
    );
    assert_eq!(
        deskshift_jsm::adf::media_ids(&i["comments"][0]["body"]),
        vec![uuid.as_str().unwrap().to_string()]
    );
    let direct = env
        .jsm
        .media_id(atts[0]["id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(json!(direct), uuid);
    env.stop().await;
}

#[tokio::test]
async fn inline_images_from_the_load_context_are_media_and_never_a_second_attachment() {
    let env = start().await;
    let png = pseudo_random_bytes(4_000, 11);
    let gif = pseudo_random_bytes(2_500, 12);
    let src = "https://acme.zohodesk.com/api/v1/tickets/1/attachments/77/content";
    let src2 = "https://acme.zohodesk.com/api/v1/tickets/1/threads/9/attachments/78/content";
    let mut c0 = ctx(&[]);
    c0.inline_images.insert(
        src.into(),
        InlineImage {
            file_name: "screen.png".into(),
            bytes: Bytes::from(png.clone()),
        },
    );
    let mut t = ticket("T1", None);
    t.description_html = Some(format!("<p>Look:</p><img src=\"{src}\" alt=\"screen\">"));
    let key = create(&env.jsm, &CanonicalRecord::Ticket(t), &c0).await;
    // A comment's image arrives with the comment's own context.
    let mut c = ctx(&[]);
    c.resolved.insert(ObjectKind::Ticket, "T1", key.clone());
    c.inline_images.insert(
        src2.into(),
        InlineImage {
            file_name: "reply.gif".into(),
            bytes: Bytes::from(gif.clone()),
        },
    );
    let comment = create(
        &env.jsm,
        &CanonicalRecord::Activity(activity("R1", "T1", true, &format!("<img src=\"{src2}\">"))),
        &c,
    )
    .await;
    let i = env.issue(&key).await;
    let atts = i["attachments"].as_array().unwrap().clone();
    assert_eq!(atts.len(), 2, "one file per image: {atts:?}");
    let media_of = |bytes: &[u8]| {
        let a = atts
            .iter()
            .find(|a| a["md5"] == deskshift_core::util::md5_hex(bytes))
            .expect("image uploaded with its bytes");
        (
            a["id"].as_str().unwrap().to_string(),
            a["mediaUuid"].as_str().unwrap().to_string(),
        )
    };
    let (png_id, png_media) = media_of(&png);
    let (gif_id, gif_media) = media_of(&gif);
    assert_eq!(
        deskshift_jsm::adf::media_ids(&i["fields"]["description"]),
        vec![png_media]
    );
    assert_eq!(
        deskshift_jsm::adf::media_ids(&i["comments"][0]["body"]),
        vec![gif_media]
    );

    // The attachments phase hands the same images over as inline refs: no second upload.
    let as_ref = |id: &str, name: &str, url: &str| AttachmentRef {
        id: id.into(),
        file_name: name.into(),
        url: url.into(),
        size: None,
        md5: None,
        inline: true,
    };
    let r1 = as_ref("77", "screen.png", src);
    let r2 = as_ref("78", "reply.gif", src2);
    assert_eq!(
        env.jsm
            .find_attachment(ObjectKind::Ticket, &key, &r1, png.len() as u64)
            .await
            .unwrap(),
        Some(format!("{key}:{png_id}"))
    );
    assert_eq!(
        env.jsm
            .attach(ObjectKind::Ticket, &key, &r1, Bytes::from(png.clone()))
            .await
            .unwrap(),
        format!("{key}:{png_id}")
    );
    assert_eq!(
        env.jsm
            .attach(
                ObjectKind::Activity,
                &comment,
                &r2,
                Bytes::from(gif.clone())
            )
            .await
            .unwrap(),
        format!("{key}:{gif_id}")
    );
    assert_eq!(
        env.issue(&key).await["attachments"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // An inline image the load could not fetch is uploaded once under its media name, then found.
    let other = pseudo_random_bytes(1_000, 13);
    let r3 = as_ref(
        "79",
        "late.png",
        "https://acme.zohodesk.com/api/v1/late.png",
    );
    let first = env
        .jsm
        .attach(ObjectKind::Ticket, &key, &r3, Bytes::from(other.clone()))
        .await
        .unwrap();
    assert_eq!(
        env.jsm
            .find_attachment(ObjectKind::Ticket, &key, &r3, other.len() as u64)
            .await
            .unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        env.jsm
            .attach(ObjectKind::Ticket, &key, &r3, Bytes::from(other))
            .await
            .unwrap(),
        first
    );
    let atts = env.issue(&key).await["attachments"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(atts.len(), 3, "{atts:?}");
    assert!(
        atts.iter()
            .all(|a| a["filename"].as_str().unwrap().starts_with("inline-")),
        "{atts:?}"
    );
    env.stop().await;
}

#[tokio::test]
async fn related_tickets_are_linked_once_and_a_deleted_one_is_named() {
    let env = start().await;
    let c = ctx(&[]);
    assert!(env.jsm.describe().await.unwrap().relations);
    let key1 = create(&env.jsm, &CanonicalRecord::Ticket(ticket("T1", None)), &c).await;
    let key2 = create(&env.jsm, &CanonicalRecord::Ticket(ticket("T2", None)), &c).await;
    env.jsm.relate("T2", &key2, &key1).await.unwrap();
    // Again (a retried invocation): still one link.
    env.jsm.relate("T2", &key2, &key1).await.unwrap();
    let links = env.dump().await["links"].as_array().unwrap().clone();
    assert_eq!(links.len(), 1, "{links:?}");
    assert_eq!(links[0]["inwardIssue"], json!(key1));
    assert_eq!(links[0]["outwardIssue"], json!(key2));
    // The other request was deleted in Jira since: a data error naming the ticket, not a
    // configuration error that would stop the run.
    env.jsm.delete(ObjectKind::Ticket, &key1).await.unwrap();
    let err = env.jsm.relate("T2", &key2, &key1).await.unwrap_err();
    assert!(matches!(err, Error::Data { .. }), "{err:?}");
    assert!(err.to_string().contains("T2"), "{err}");
    env.stop().await;
}

#[tokio::test]
async fn rate_limits_still_land_everything_exactly_once() {
    let config = JiraConfig {
        burst_per_second: Some(4),
        per_issue_writes_per_second: Some(2),
        ..JiraConfig::default()
    };
    // Our own spacing off for half the run would hide the sandbox's per-issue limit: keep it on,
    // faster than the sandbox allows, so both limits answer 429 and the client has to cope.
    let env = start_with(config, |c| c.per_issue_writes_per_second = 4.0).await;
    let jsm = &env.jsm;
    let c = ctx(&[]);
    let tickets = futures_join(jsm, &c, 8).await;
    let dump = env.dump().await;
    assert_eq!(dump["issues"].as_array().unwrap().len(), 8);
    for (n, key) in tickets.iter().enumerate() {
        let i = issue_in(&dump, key);
        assert_eq!(i["status"], "Resolved");
        let comments = i["comments"].as_array().unwrap();
        assert_eq!(comments.len(), 3, "{key}");
        for (m, cm) in comments.iter().enumerate() {
            assert!(
                text(&cm["body"]).starts_with(&format!("[deskshift:zohodesk:note:A{n}-{m}]")),
                "order on {key}"
            );
        }
    }
    let stats = env.stats().await;
    let throttled: u64 = stats["endpoints"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|e| e["by_status"]["429"].as_u64())
        .sum();
    assert!(throttled > 0, "the limits were exercised: {stats}");
    eprintln!("429 answers: {throttled}; client spend: {:?}", jsm.spend());
    assert!(jsm.spend().throttled >= throttled.min(1));
    env.stop().await;
}

#[tokio::test]
async fn concurrent_customers_share_their_desk_adds() {
    let env = start().await;
    let jsm = &env.jsm;
    let c = ctx(&[]);
    let n = 24;
    let customers: Vec<String> = futures::future::join_all((0..n).map(|k| {
        let c = &c;
        async move {
            let email = format!("crowd{k}@example.test");
            create(jsm, &contact(&format!("K{k}"), Some(&email), None), c).await
        }
    }))
    .await;
    // Every customer is a customer of the desk the contacts go to, each added once, in fewer
    // calls than customers (the adds that arrived while one was in flight went together).
    let dump = env.dump().await;
    let desk = dump["service_desks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["customers"].as_array().is_some_and(|m| !m.is_empty()))
        .expect("a desk with customers");
    let members: BTreeSet<String> = desk["customers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m.as_str().map(str::to_string))
        .collect();
    for id in &customers {
        assert!(
            members.contains(id),
            "customer {id} is on the desk: {members:?}"
        );
    }
    let stats = env.stats().await;
    let adds = stats["endpoints"]["POST /rest/servicedeskapi/servicedesk/{serviceDeskId}/customer"]
        ["count"]
        .as_u64()
        .unwrap_or(0);
    eprintln!("{adds} desk adds for {n} customers");
    assert!(
        adds >= 1 && adds < n as u64,
        "{adds} desk adds for {n} customers created at once"
    );
    env.stop().await;
}

async fn futures_join(jsm: &Jsm, c: &deskshift_core::ports::LoadContext, n: usize) -> Vec<String> {
    futures::future::join_all((0..n).map(|k| async move {
        let mut t = ticket(&format!("T{k}"), None);
        t.status = Some("Resolved".into());
        let key = jsm
            .create(&CanonicalRecord::Ticket(t), c)
            .await
            .expect("ticket lands")
            .id;
        let mut c2 = c.clone();
        c2.resolved
            .insert(ObjectKind::Ticket, &format!("T{k}"), key.clone());
        // One ticket's comments go one after another, as the engine sends them.
        for m in 0..3 {
            let a = activity(&format!("A{k}-{m}"), &format!("T{k}"), false, "<p>x</p>");
            jsm.create(&CanonicalRecord::Activity(a), &c2)
                .await
                .expect("comment lands");
        }
        key
    }))
    .await
}

#[tokio::test]
async fn adf_is_always_valid_so_the_sandbox_never_refuses_it() {
    let env = start().await;
    let c0 = ctx(&[]);
    let key = create(&env.jsm, &CanonicalRecord::Ticket(ticket("T1", None)), &c0).await;
    let mut c = c0.clone();
    c.resolved.insert(ObjectKind::Ticket, "T1", key.clone());
    let validator = sandbox_jira::AdfValidator::shared();
    let pool = [
        "<p>",
        "</p>",
        "<b>",
        "</b>",
        "<a>",
        "<a href='javascript:x'>",
        "<a href='https://e.test'>",
        "</a>",
        "<img>",
        "<img src=''>",
        "<img src='https://i.test/a.png'>",
        "<ul><li>",
        "</li></ul>",
        "<ol start=5>",
        "<table><tr><td>",
        "</td><td>",
        "</table>",
        "<pre>",
        "</pre>",
        "<br>",
        "<br/>",
        "<hr>",
        "<blockquote>",
        "<h1>",
        "</h3>",
        "<script>x</script>",
        "<!-- c -->",
        "&nbsp;",
        "&amp;&lt;",
        "text",
        " ",
        "\n",
        "שלום",
        "😀",
        "\u{0}",
        "<div dir=rtl>",
        "</div>",
        "<span style='color:red'>",
        "<![CDATA[x]]>",
        "<td>stray</td>",
        "<li>stray</li>",
    ];
    let mut x: u64 = 0x9E3779B97F4A7C15;
    let mut next = |m: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % m as u64) as usize
    };
    let mut bodies: Vec<String> = vec![String::new(), "   ".into(), "<p></p>".into()];
    for _ in 0..200 {
        let n = 1 + next(30);
        bodies.push((0..n).map(|_| pool[next(pool.len())]).collect());
    }
    use deskshift_jsm::adf::{Converter, body_blocks, doc};
    for html in &bodies {
        for c in [Converter::AdfCrate, Converter::Fallback] {
            let d = doc(body_blocks(c, html, &|_| None));
            validator
                .check(&d)
                .unwrap_or_else(|e| panic!("{c:?}: invalid ADF for {html:?}: {e}\n{d}"));
        }
    }
    // And through the API: the sandbox validates every comment body against the ADF schema.
    for (n, html) in bodies.iter().take(40).enumerate() {
        create(
            &env.jsm,
            &CanonicalRecord::Activity(activity(&format!("F{n}"), "T1", n % 2 == 0, html)),
            &c,
        )
        .await;
    }
    assert_eq!(
        env.issue(&key).await["comments"].as_array().unwrap().len(),
        40
    );
    let bad = env.stats().await["endpoints"]["POST /rest/api/3/issue/{issueIdOrKey}/comment"]["by_status"]["400"].clone();
    assert!(bad.is_null(), "no comment was refused: {bad}");
    env.stop().await;
}

#[tokio::test]
async fn find_existing_recovers_lost_and_half_written_creates() {
    let env = start().await;
    let c0 = ctx(&[]);
    // A request that landed but whose follow-up writes were cut off (as after a crash): only the
    // description carries the marker.
    let desk = env.jsm.service_desks().await.unwrap()[0].clone();
    let http = reqwest::Client::new();
    let mut t = ticket("T1", None);
    t.status = Some("Resolved".into());
    t.tags = vec!["late".into()];
    let lead = vec![deskshift_jsm::adf::provenance_paragraph(
        "[deskshift:zohodesk:ticket:T1]",
        "Created by someone",
    )];
    let doc = deskshift_jsm::adf::html_to_doc(lead, "<p>half</p>", &|_| None);
    let r = http
        .post(format!("{}/rest/servicedeskapi/request", env.sandbox.base_url()))
        .header("Authorization", env.sandbox.auth_header())
        .json(&json!({"serviceDeskId": desk.id, "requestTypeId": "1", "isAdfRequest": true, "requestFieldValues": {"summary": "half", "description": doc}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    // A fresh destination (a new process) finds it and finishes it.
    let fresh = Jsm::new(config_for(&env.sandbox)).unwrap();
    let record = CanonicalRecord::Ticket(t);
    let key = fresh
        .find_existing(&record, &c0)
        .await
        .unwrap()
        .expect("found by its marker");
    let i = env.issue(&key).await;
    assert_eq!(i["status"], "Resolved");
    assert!(
        i["fields"]["labels"]
            .as_array()
            .unwrap()
            .contains(&json!("late"))
    );
    assert_eq!(
        fresh
            .find_existing(&CanonicalRecord::Ticket(ticket("T-other", None)), &c0)
            .await
            .unwrap(),
        None
    );

    // Lost answers: the sandbox runs every handler, then cuts a quarter of the answers.
    let mut c = c0.clone();
    c.resolved.insert(ObjectKind::Ticket, "T1", key.clone());
    let org = create(&fresh, &account("A1", "Acme"), &c).await;
    c.resolved.insert(ObjectKind::Account, "A1", org.clone());
    env.sandbox.faults().set(sandbox_jira::JiraFaultConfig {
        seed: 11,
        truncate_rate: 0.25,
        ..Default::default()
    });
    let mut made = Vec::new();
    for n in 0..6 {
        let a = activity(&format!("L{n}"), "T1", n % 2 == 0, "<p>lost?</p>");
        made.push(create(&fresh, &CanonicalRecord::Activity(a), &c).await);
        let mut t = ticket(&format!("U{n}"), None);
        t.status = Some("Closed".into());
        made.push(create(&fresh, &CanonicalRecord::Ticket(t), &c).await);
        made.push(
            create(
                &fresh,
                &contact(&format!("C{n}"), Some(&format!("c{n}@x.test")), Some("A1")),
                &c,
            )
            .await,
        );
    }
    let truncated = env.sandbox.faults().counters().truncated;
    env.sandbox.faults().set(Default::default());
    assert!(truncated > 0, "answers were lost");
    let dump = env.dump().await;
    assert_eq!(
        issue_in(&dump, &key)["comments"].as_array().unwrap().len(),
        6,
        "each comment once"
    );
    assert_eq!(
        dump["issues"].as_array().unwrap().len(),
        7,
        "each ticket once"
    );
    for n in 0..6 {
        assert_eq!(
            count_where(&dump, "customers", |u| u["emailAddress"]
                == format!("c{n}@x.test")),
            1
        );
        let i = dump["issues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["fields"]["summary"] == format!("Printer on fire #U{n}"))
            .unwrap();
        assert_eq!(i["status"], "Closed");
    }
    // The ids handed back are the ones the sandbox holds.
    for (n, id) in made.iter().enumerate().filter(|(n, _)| n % 3 == 1) {
        assert!(
            dump["issues"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["key"] == json!(id)),
            "{n} {id}"
        );
    }
    // Each kind is found again by a fresh destination.
    let again = Jsm::new(config_for(&env.sandbox)).unwrap();
    assert_eq!(
        again
            .find_existing(&account("A1", "Acme"), &c)
            .await
            .unwrap(),
        Some(org)
    );
    assert_eq!(
        again
            .find_existing(&contact("C0", Some("c0@x.test"), Some("A1")), &c)
            .await
            .unwrap(),
        Some(made[2].clone())
    );
    assert_eq!(
        again
            .find_existing(
                &CanonicalRecord::Activity(activity("L0", "T1", true, "")),
                &c
            )
            .await
            .unwrap(),
        Some(made[0].clone())
    );
    env.stop().await;
}

#[tokio::test]
async fn delete_spares_records_that_existed_before() {
    let seed = SeedData {
        customers: vec![SeedCustomer {
            email: "old@x.test".into(),
            display_name: "Old".into(),
            service_desks: vec!["SUP".into()],
            ..Default::default()
        }],
        organizations: vec![SeedOrganization {
            name: "Old Org".into(),
            members: vec!["old@x.test".into()],
            service_desks: vec!["SUP".into()],
        }],
        issues: vec![SeedIssue {
            project: "SUP".into(),
            summary: "Pre-existing".into(),
            comments: vec![SeedComment {
                body: json!("old comment"),
                ..Default::default()
            }],
            attachments: vec![SeedAttachment {
                filename: "old.txt".into(),
                text: Some("old".into()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let env = start_with(seed_only(seed), |_| {}).await;
    let jsm = &env.jsm;
    let mut c = ctx(&[]);
    let before = env.dump().await;
    let org = create(jsm, &account("A1", "New Org"), &c).await;
    c.resolved.insert(ObjectKind::Account, "A1", org.clone());
    let cust = create(jsm, &contact("C1", Some("new@x.test"), Some("A1")), &c).await;
    c.resolved.insert(ObjectKind::Contact, "C1", cust.clone());
    let key = create(jsm, &CanonicalRecord::Ticket(ticket("T1", Some("C1"))), &c).await;
    c.resolved.insert(ObjectKind::Ticket, "T1", key.clone());
    let comment = create(
        jsm,
        &CanonicalRecord::Activity(activity("N1", "T1", false, "x")),
        &c,
    )
    .await;
    let sub = create(
        jsm,
        &CanonicalRecord::Task(Task {
            source_id: "K1".into(),
            ticket: Some("T1".into()),
            subject: "s".into(),
            ..Task::default()
        }),
        &c,
    )
    .await;
    let att = jsm
        .attach(
            ObjectKind::Ticket,
            &key,
            &AttachmentRef {
                id: "f".into(),
                file_name: "f.txt".into(),
                url: String::new(),
                size: None,
                md5: None,
                inline: false,
            },
            Bytes::from_static(b"data"),
        )
        .await
        .unwrap();

    // Rollback order: attachments, comments, tasks, tickets, contacts, accounts.
    jsm.delete(ObjectKind::Attachment, &att).await.unwrap();
    jsm.delete(ObjectKind::Activity, &comment).await.unwrap();
    jsm.delete(ObjectKind::Ticket, &key).await.unwrap();
    jsm.delete(ObjectKind::Task, &sub).await.unwrap(); // already gone with its parent: fine
    jsm.delete(ObjectKind::Contact, &cust).await.unwrap();
    jsm.delete(ObjectKind::Account, &org).await.unwrap();
    assert!(
        jsm.read_back(ObjectKind::Ticket, &key)
            .await
            .unwrap()
            .is_none()
    );

    let after = env.dump().await;
    let (old, now) = (issue_in(&before, "SUP-1"), issue_in(&after, "SUP-1"));
    assert_eq!(
        after["issues"].as_array().unwrap().len(),
        1,
        "only the seeded issue is left"
    );
    for k in ["comments", "attachments", "status", "subtasks"] {
        assert_eq!(now[k], old[k], "the seeded issue's {k} are untouched");
    }
    assert_eq!(now["fields"]["summary"], old["fields"]["summary"]);
    assert_eq!(after["organizations"], before["organizations"]);
    assert_eq!(
        after["service_desks"][0]["customers"],
        before["service_desks"][0]["customers"]
    );
    assert_eq!(
        after["service_desks"][0]["organizations"],
        before["service_desks"][0]["organizations"]
    );
    env.stop().await;
}

#[tokio::test]
async fn secrets_never_appear_in_errors() {
    let env = start().await;
    let mut cfg = config_for(&env.sandbox);
    cfg.api_token = deskshift_jsm::Secret::new("wrong-token-s3cr3t");
    let jsm = Jsm::new(cfg.clone()).unwrap();
    let e = jsm.describe().await.unwrap_err();
    let msg = format!("{e} {e:?}");
    assert!(matches!(e, Error::Config(_)), "{msg}");
    assert!(msg.contains("api_token"), "{msg}");
    assert!(!msg.contains("s3cr3t"), "{msg}");
    let basic = base64_of(&format!("{}:wrong-token-s3cr3t", cfg.email));
    assert!(!msg.contains(&basic), "{msg}");
    assert!(!format!("{cfg:?}").contains("s3cr3t"));
    env.stop().await;
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// API calls per record once the caches are warm stay within what `describe()` tells the
/// estimate.
#[tokio::test]
async fn calls_per_record_stay_within_the_published_estimate() {
    let env = start().await;
    let jsm = &env.jsm;
    let info = jsm.describe().await.unwrap();
    let mut c = ctx(&[]);
    let org = create(jsm, &account("A0", "Warm"), &c).await;
    c.resolved.insert(ObjectKind::Account, "A0", org);
    let warm = |id: &str| {
        let mut t = ticket(id, Some("C0"));
        t.status = Some("Resolved".into());
        t.priority = Some("Low".into());
        t.tags = vec!["x".into()];
        t
    };
    let cust = create(jsm, &contact("C0", Some("c0@x.test"), Some("A0")), &c).await;
    c.resolved.insert(ObjectKind::Contact, "C0", cust);
    let k0 = create(jsm, &CanonicalRecord::Ticket(warm("W0")), &c).await;
    c.resolved.insert(ObjectKind::Ticket, "W0", k0);
    let n = 5u64;
    let mut per_kind = BTreeMap::new();
    let calls = |jsm: &Jsm| jsm.spend().calls;
    let before = calls(jsm);
    for i in 0..n {
        create(
            jsm,
            &account(&format!("A{}", i + 1), &format!("Org {i}")),
            &c,
        )
        .await;
    }
    per_kind.insert("account", (calls(jsm) - before) as f64 / n as f64);
    let before = calls(jsm);
    for i in 0..n {
        create(
            jsm,
            &contact(
                &format!("C{}", i + 1),
                Some(&format!("c{}@x.test", i + 1)),
                Some("A0"),
            ),
            &c,
        )
        .await;
    }
    per_kind.insert("contact", (calls(jsm) - before) as f64 / n as f64);
    let before = calls(jsm);
    for i in 0..n {
        create(
            jsm,
            &CanonicalRecord::Ticket(warm(&format!("W{}", i + 1))),
            &c,
        )
        .await;
    }
    per_kind.insert("ticket", (calls(jsm) - before) as f64 / n as f64);
    let before = calls(jsm);
    for i in 0..n {
        create(
            jsm,
            &CanonicalRecord::Activity(activity(&format!("N{i}"), "W0", false, "<p>x</p>")),
            &c,
        )
        .await;
    }
    per_kind.insert("activity", (calls(jsm) - before) as f64 / n as f64);
    let before = calls(jsm);
    for i in 0..n {
        let t = Task {
            source_id: format!("K{i}"),
            ticket: Some("W0".into()),
            subject: "s".into(),
            status: Some("Resolved".into()),
            ..Task::default()
        };
        create(jsm, &CanonicalRecord::Task(t), &c).await;
    }
    per_kind.insert("task", (calls(jsm) - before) as f64 / n as f64);
    eprintln!("calls per record (warm caches): {per_kind:?}");
    for (kind, measured) in per_kind {
        let estimate = info.calls_per_record[kind];
        assert!(
            measured <= estimate,
            "{kind}: {measured} calls per record, estimate {estimate}"
        );
    }
    assert_eq!(jsm.spend().throttled, 0);
    env.stop().await;
}
