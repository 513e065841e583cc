//! A full read of a generated Zoho Desk tenant, checked against the sandbox's own dump: every
//! record once, full thread bodies, visibility, attachments by MD5, custom fields and picklists,
//! and the cost: token grants, concurrency, credits, and the pre-flight estimate.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use common::*;
use deskshift_core::model::{FieldType, RawRecord};
use deskshift_core::ports::Source;
use deskshift_zohodesk_source::records::*;
use deskshift_zohodesk_source::{ReadCounts, ZohoDeskSource, estimate_calls_with};
use md5::Digest;
use serde_json::Value;

fn by_id(records: &[RawRecord]) -> HashMap<String, &RawRecord> {
    let map: HashMap<String, &RawRecord> = records.iter().map(|r| (r.id.clone(), r)).collect();
    assert_eq!(map.len(), records.len(), "no record is read twice");
    map
}

fn live(dump: &Value, kind: &str) -> Vec<Value> {
    dump[kind]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r.get("isTrashed") != Some(&Value::Bool(true)))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_read_returns_every_record_once_as_the_sandbox_holds_it() {
    let cap = 4;
    let sb = sandbox(21, 150, |c| c.concurrency_cap = Some(cap)).await;
    let mut cfg = config(&sb);
    cfg.connection.concurrency_cap = Some(cap as usize);
    let src = ZohoDeskSource::connect(cfg.clone()).await.unwrap();
    assert_eq!(src.concurrency_cap(), cap as usize);
    let dump = inspect(&sb, "dump").await;

    // ---- discovery: collections, custom fields with their labels, picklists
    let schema = src.discover().await.unwrap();
    let names: Vec<&str> = schema.collections.iter().map(|c| c.name.as_str()).collect();
    for c in [
        DEPARTMENTS,
        AGENTS,
        ACCOUNTS,
        CONTACTS,
        PRODUCTS,
        TICKETS,
        CONVERSATIONS,
        TASKS,
    ] {
        let col = schema
            .collection(c)
            .unwrap_or_else(|| panic!("{c} in {names:?}"));
        assert!(col.readable(), "{c} readable");
    }
    let tickets_col = schema.collection(TICKETS).unwrap();
    let severity = tickets_col.field("cf_severity").expect("custom field");
    assert!(severity.custom);
    assert_eq!(severity.label, "Severity");
    assert_eq!(severity.field_type, FieldType::Dropdown);
    assert_eq!(severity.options, vec!["S1", "S2", "S3", "S4"]);
    assert_eq!(
        tickets_col.field("cf_renewal_date").unwrap().field_type,
        FieldType::Date
    );
    assert_eq!(
        tickets_col.field("cf_region").unwrap().options,
        vec!["EMEA", "APAC", "AMER"]
    );
    let dept = tickets_col.field("department").unwrap();
    assert_eq!(
        dept.options.iter().collect::<BTreeSet<_>>(),
        ["Billing", "Engineering", "Support"]
            .iter()
            .map(|s| s.to_string())
            .collect::<BTreeSet<_>>()
            .iter()
            .collect()
    );
    assert!(
        tickets_col
            .field("status")
            .unwrap()
            .options
            .contains(&"On Hold".to_string())
    );
    assert_eq!(
        tickets_col
            .field("contact")
            .unwrap()
            .linked_collection
            .as_deref(),
        Some(CONTACTS)
    );
    assert_eq!(
        schema
            .collection(CONTACTS)
            .unwrap()
            .field("cf_customer_tier")
            .unwrap()
            .options,
        vec!["Gold", "Silver", "Bronze"]
    );
    assert_eq!(
        schema
            .collection(ACCOUNTS)
            .unwrap()
            .field("cf_account_code")
            .unwrap()
            .label,
        "Account Code"
    );

    // ---- records
    let mut read: BTreeMap<&str, Vec<RawRecord>> = BTreeMap::new();
    for c in [
        DEPARTMENTS,
        AGENTS,
        ACCOUNTS,
        CONTACTS,
        PRODUCTS,
        TICKETS,
        CONVERSATIONS,
        TASKS,
    ] {
        read.insert(c, read_all(&src, c, None).await);
    }
    assert_eq!(read[DEPARTMENTS].len(), live(&dump, "departments").len());
    assert_eq!(read[AGENTS].len(), live(&dump, "agents").len());
    assert_eq!(read[PRODUCTS].len(), live(&dump, "products").len());
    assert_eq!(read[TASKS].len(), live(&dump, "tasks").len());
    assert!(
        read[TASKS].iter().any(|t| t.fields["ticket"].is_null()),
        "the orphan task"
    );

    // Accounts: every one, names over 200 characters intact.
    let accounts = by_id(&read[ACCOUNTS]);
    let dump_accounts = live(&dump, "accounts");
    assert_eq!(accounts.len(), dump_accounts.len());
    let mut long_names = 0;
    for a in &dump_accounts {
        let r = accounts[str_of(a, "id")];
        assert_eq!(r.fields["account_name"], a["accountName"]);
        assert_eq!(r.fields["cf_account_code"], a["cf"]["cf_account_code"]);
        if str_of(a, "accountName").chars().count() > 200 {
            long_names += 1;
        }
    }
    assert!(long_names > 0, "the tenant has names over 200 characters");

    // Contacts: every one, including two that share an email under different accounts.
    let contacts = by_id(&read[CONTACTS]);
    let dump_contacts = live(&dump, "contacts");
    assert_eq!(contacts.len(), dump_contacts.len());
    let mut by_email: HashMap<String, BTreeSet<String>> = HashMap::new();
    for c in &dump_contacts {
        let r = contacts[str_of(c, "id")];
        assert_eq!(r.fields["email"], c["email"]);
        assert_eq!(r.fields["account"], c["accountId"]);
        assert_eq!(r.fields["cf_customer_tier"], c["cf"]["cf_customer_tier"]);
        if let Some(e) = c["email"].as_str() {
            by_email
                .entry(e.into())
                .or_default()
                .insert(str_of(c, "accountId").into());
        }
    }
    assert!(
        by_email.values().any(|accs| accs.len() > 1),
        "a shared email across accounts"
    );

    // Tickets: every one with names for department, assignee, product; custom fields; tags.
    let dump_agents = live(&dump, "agents");
    let agents: HashMap<&str, &str> = dump_agents
        .iter()
        .map(|a| (a["id"].as_str().unwrap(), a["emailId"].as_str().unwrap()))
        .collect();
    let departments: HashMap<String, String> = live(&dump, "departments")
        .iter()
        .map(|d| (str_of(d, "id").to_string(), str_of(d, "name").to_string()))
        .collect();
    let tags: HashMap<String, String> = live(&dump, "tags")
        .iter()
        .map(|t| (str_of(t, "id").to_string(), str_of(t, "name").to_string()))
        .collect();
    let tickets = by_id(&read[TICKETS]);
    let dump_tickets = live(&dump, "tickets");
    assert_eq!(tickets.len(), dump_tickets.len());
    for t in &dump_tickets {
        let r = tickets[str_of(t, "id")];
        assert_eq!(r.fields["subject"], t["subject"]);
        assert_eq!(r.fields["description"], t["description"]);
        assert_eq!(
            r.fields["department"].as_str(),
            Some(departments[str_of(t, "departmentId")].as_str())
        );
        match t["assigneeId"].as_str() {
            Some(a) => assert_eq!(
                r.fields["assignee"].as_str(),
                Some(agents[a].to_lowercase().as_str())
            ),
            None => assert!(r.fields["assignee"].is_null()),
        }
        assert_eq!(r.fields["contact"], t["contactId"]);
        assert_eq!(r.fields["status"], t["status"]);
        assert_eq!(
            r.fields["cf_legacy_reference"],
            t["cf"]["cf_legacy_reference"]
        );
        assert_eq!(r.fields["cf_severity"], t["cf"]["cf_severity"]);
        let want_tags: BTreeSet<String> = t["_tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| tags[id.as_str().unwrap()].clone())
            .collect();
        let got_tags: BTreeSet<String> = serde_json::from_value(r.fields["tags"].clone()).unwrap();
        assert_eq!(got_tags, want_tags, "tags of ticket {}", r.id);
        assert_eq!(r.modified_at.as_deref(), t["modifiedTime"].as_str());
    }

    // Related tickets: the generator links some tickets to a ticket of another department.
    let threads = live(&dump, "threads");
    let mut linked = 0;
    for th in &threads {
        let content = str_of(th, "content");
        if let Some(pos) = content.find("#Cases/dv/") {
            let target: String = content[pos + 10..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            let r = tickets[str_of(th, "_ticketId")];
            let rel: Vec<String> =
                serde_json::from_value(r.fields["related_tickets"].clone()).unwrap();
            assert!(rel.contains(&target), "ticket {} links {target}", r.id);
            let other = tickets[target.as_str()];
            assert_ne!(other.fields["department"], r.fields["department"]);
            linked += 1;
        }
    }
    assert!(linked > 0);

    // Conversations: every thread and comment once, full bodies, visibility, order, author.
    let convs = by_id(&read[CONVERSATIONS]);
    let comments = live(&dump, "comments");
    assert_eq!(convs.len(), threads.len() + comments.len());
    let mut truncated = 0;
    for th in &threads {
        let r = convs[str_of(th, "id")];
        assert_eq!(r.fields["ticket"].as_str(), Some(str_of(th, "_ticketId")));
        assert_eq!(
            r.fields["body"].as_str(),
            Some(str_of(th, "content")),
            "full body of thread {}",
            r.id
        );
        assert_eq!(r.fields["visibility"], th["visibility"]);
        assert_eq!(r.fields["direction"], th["direction"]);
        assert_eq!(r.fields["type"], "email");
        assert_eq!(
            r.fields["author_email"].as_str(),
            th["author"]["email"]
                .as_str()
                .map(str::to_lowercase)
                .as_deref()
        );
        if str_of(th, "content").chars().count() > 5000 {
            truncated += 1;
        }
    }
    assert!(truncated > 0, "some bodies exceed the truncation limit");
    let mut private = 0;
    for c in &comments {
        let r = convs[str_of(c, "id")];
        assert_eq!(r.fields["type"], "comment");
        assert_eq!(r.fields["body"], c["content"]);
        let public = c["isPublic"].as_bool().unwrap();
        assert_eq!(
            r.fields["visibility"],
            if public { "public" } else { "private" }
        );
        private += usize::from(!public);
    }
    assert!(private > 0);
    assert!(threads.iter().any(|t| t["visibility"] == "private"));
    // Within a ticket, conversations come oldest first.
    let mut last: HashMap<&str, &str> = HashMap::new();
    for r in &read[CONVERSATIONS] {
        let t = r.fields["ticket"].as_str().unwrap();
        let at = r.created_at.as_deref().unwrap();
        if let Some(prev) = last.insert(t, at) {
            assert!(prev <= at, "chronological within ticket {t}");
        }
    }

    // ---- attachments: every file listed once and downloadable with the sandbox's MD5.
    let files = live(&dump, "attachments");
    let mut listed = HashMap::new();
    for r in read[TICKETS].iter().chain(read[CONVERSATIONS].iter()) {
        for a in &r.attachments {
            assert!(
                listed
                    .insert(a.id.clone(), (a.clone(), r.id.clone()))
                    .is_none(),
                "{} once",
                a.id
            );
        }
    }
    assert_eq!(
        listed.len(),
        files.len(),
        "every ticket and thread attachment, inline images included"
    );
    for f in &files {
        let (a, owner) = &listed[str_of(f, "id")];
        let expected_owner = match f["_threadId"].as_str() {
            Some(th) => th,
            None => str_of(f, "_ticketId"),
        };
        assert_eq!(owner, expected_owner);
        let bytes = src.download(a).await.unwrap();
        assert_eq!(
            hex::encode(md5::Md5::digest(&bytes)),
            str_of(f, "md5"),
            "{}",
            a.file_name
        );
    }
    assert!(
        files.iter().any(|f| f["_threadId"].is_string()),
        "inline images present"
    );

    // ---- cost: one token, the cap never exceeded, credits as the sandbox counted them.
    assert_eq!(
        token_grants(&sb).await,
        1,
        "one access token for the whole read"
    );
    assert_eq!(src.token_refreshes(), 1);
    let stats = inspect(&sb, "stats").await;
    let counters = &stats["counters"];
    assert_eq!(counters["throttledConcurrency"], 0, "never above the cap");
    assert!(counters["peakInFlight"].as_u64().unwrap() <= u64::from(cap));
    let spend = src.spend();
    // The sandbox has no /organizationModules route; its 404 fallback sits outside the credit gate.
    let outside_gate = spend.calls_by_endpoint["GET /organizationModules"];
    assert_eq!(
        spend.credits,
        counters["creditsUsed"].as_u64().unwrap() + outside_gate,
        "credits counted = charged"
    );
    assert_eq!(
        src.credits_remaining(),
        counters["creditsRemaining"].as_u64()
    );

    // ---- the pre-flight estimate equals what the read cost.
    let with = |key: &str| {
        dump_tickets
            .iter()
            .filter(|t| str_of(t, key).parse::<u64>().unwrap_or(0) > 0)
            .count() as u64
    };
    let counts = ReadCounts {
        departments: live(&dump, "departments").len() as u64,
        agents: live(&dump, "agents").len() as u64,
        products: live(&dump, "products").len() as u64,
        tags: live(&dump, "tags").len() as u64,
        accounts: dump_accounts.len() as u64,
        contacts: dump_contacts.len() as u64,
        tickets: dump_tickets.len() as u64,
        tickets_with_threads: with("threadCount"),
        tickets_with_comments: with("commentCount"),
        tickets_with_tags: with("tagCount"),
        tickets_with_attachments: with("attachmentCount"),
        threads: threads.len() as u64,
        truncated_threads: truncated,
        // The generator's long bodies are all first threads.
        truncated_description_threads: truncated,
        comments: comments.len() as u64,
        tasks: live(&dump, "tasks").len() as u64,
        custom_module_records: vec![],
        attachments: files.len() as u64,
    };
    let api_calls = spend.calls - spend.calls_by_endpoint["POST /oauth/v2/token"];
    // connect() read the edition: one call the estimate does not include.
    assert_eq!(
        estimate_calls_with(&counts, &cfg) + 1,
        api_calls,
        "{:#?}",
        spend.calls_by_endpoint
    );
    let rs = src.read_stats();
    let with_threads = counts.tickets_with_threads;
    assert_eq!(
        rs.thread_bodies,
        threads.len() as u64 + with_threads,
        "conversations + description scans"
    );
    assert_eq!(rs.full_contents, 2 * truncated);
    eprintln!(
        "measured: {} tickets, {} threads ({} truncated), {} comments, {} files -> {} API calls, {} credits; by endpoint {:#?}",
        dump_tickets.len(),
        threads.len(),
        truncated,
        comments.len(),
        files.len(),
        api_calls,
        spend.credits,
        spend.calls_by_endpoint
    );
    sb.stop().await;
}
