//! Zoho Desk -> Jira Service Management, end to end at about 1,000 tickets: the `deskshift` binary
//! against the Zoho Desk sandbox (a generated source tenant) and the JSM sandbox, decided by
//! reading both sandboxes' inspection endpoints.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Cli, JsmHarness, adf_media, adf_text, issues_by_legacy, text};
use deskshift_sandbox::SandboxOptions;
use serde_json::Value;

fn list(v: &Value, k: &str) -> Vec<Value> {
    v[k].as_array().cloned().unwrap_or_default()
}

/// `id` -> record of one Zoho kind.
fn by_id(zoho: &Value, kind: &str) -> BTreeMap<String, Value> {
    list(zoho, kind)
        .into_iter()
        .map(|r| (text(&r["id"]), r))
        .collect()
}

/// A Jira custom-field value as comparable text: options by value (cascades as `parent/child`),
/// lists joined with `;`, numbers without a trailing `.0`.
fn jira_value(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or_default();
            if f.fract() == 0.0 {
                format!("{}", f as i64)
            } else {
                f.to_string()
            }
        }
        Value::Array(a) => a.iter().map(jira_value).collect::<Vec<_>>().join(";"),
        Value::Object(o) => match (o.get("value"), o.get("child")) {
            (Some(p), Some(c)) => format!("{}/{}", jira_value(p), jira_value(&c["value"])),
            (Some(p), None) => jira_value(p),
            _ => v.to_string(),
        },
        Value::Bool(b) => b.to_string(),
    }
}

/// Zoho's `yyyy-MM-ddTHH:mm:ss.SSSZ` as the provenance line shows it.
fn readable(zoho_time: &str) -> String {
    let t: jiff::Timestamp = zoho_time.parse().expect("Zoho time");
    t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Every `<img src>` of an HTML body.
fn img_sources(html: &str) -> Vec<String> {
    html.match_indices("<img src=\"")
        .map(|(i, m)| {
            let rest = &html[i + m.len()..];
            rest[..rest.find('"').unwrap()].to_string()
        })
        .collect()
}

/// The Zoho attachment id of an `.../attachments/{id}/content` address.
fn attachment_id_of(src: &str) -> String {
    let parts: Vec<&str> = src.split('/').collect();
    let i = parts.iter().position(|p| *p == "attachments").unwrap();
    parts[i + 1].to_string()
}

/// Tickets in the generated Zoho tenant.
const TICKETS: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn zoho_desk_to_jsm_arrives() {
    let h = JsmHarness::start(
        SandboxOptions {
            seed: 31,
            tickets: TICKETS,
            ..Default::default()
        },
        "request_type = \"Report a system problem\"",
        "",
    )
    .await;
    h.approve().await;
    // The pre-flight counts the Zoho Desk credits its read spent as the org counts them.
    let credits_used = |stats: &Value| stats["counters"]["creditsUsed"].as_u64().unwrap();
    let before_preflight = credits_used(&h.zoho_stats().await);
    let out = h.cli_ok(&["preflight"]).await;
    assert!(out.contains("Source credits"), "{out}");
    let after_preflight = credits_used(&h.zoho_stats().await) - before_preflight;
    let scoping: Value = serde_json::from_slice(
        &std::fs::read(h.job_dir().join("stage/reports/scoping.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        scoping["source_credits_spent"].as_u64(),
        Some(after_preflight),
        "credits of the pre-flight's read"
    );
    let started = std::time::Instant::now();
    h.cli_ok(&["run"]).await;
    eprintln!("first run of {TICKETS} tickets: {:?}", started.elapsed());
    // Its estimate of the whole run's credits (the read, plus the file downloads) holds within 10 %.
    let spent = credits_used(&h.zoho_stats().await) - before_preflight;
    let estimate = scoping["estimated_source_credits"].as_u64().unwrap();
    assert!(
        spent.abs_diff(estimate) * 10 <= estimate && spent > after_preflight,
        "Zoho Desk credits: {spent} spent, {estimate} estimated ({after_preflight} by the pre-flight)"
    );

    let zoho = h.zoho().await;
    let jira = h.jira().await;

    // Accounts -> organizations (names kept, or shortened to 200 characters).
    let orgs: BTreeMap<String, Value> = list(&jira, "organizations")
        .into_iter()
        .map(|o| (text(&o["name"]), o))
        .collect();
    let mut long_names = 0;
    for a in list(&zoho, "accounts") {
        let name = text(&a["accountName"]);
        if name.chars().count() > 200 {
            long_names += 1;
            let head: String = name.chars().take(150).collect();
            assert!(
                orgs.keys()
                    .any(|o| o.chars().count() <= 200 && o.starts_with(&head)),
                "account {name:?} became an organization of at most 200 characters"
            );
        } else {
            assert!(
                orgs.contains_key(&name),
                "account {name:?} is an organization"
            );
        }
    }
    assert!(long_names > 0, "the tenant has names over 200 characters");

    // Contacts -> customers, one per e-mail, member of every organization of its contacts.
    let customers: BTreeMap<String, Vec<Value>> =
        list(&jira, "customers")
            .into_iter()
            .fold(BTreeMap::new(), |mut m, c| {
                m.entry(text(&c["emailAddress"]).to_lowercase())
                    .or_insert_with(Vec::new)
                    .push(c);
                m
            });
    let accounts = by_id(&zoho, "accounts");
    let mut accounts_of_email: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in list(&zoho, "contacts") {
        let email = text(&c["email"]).to_lowercase();
        if email.is_empty() {
            continue;
        }
        assert_eq!(
            customers.get(&email).map_or(0, Vec::len),
            1,
            "contact {email} is one customer"
        );
        if let Some(a) = accounts.get(&text(&c["accountId"])) {
            accounts_of_email
                .entry(email)
                .or_default()
                .insert(text(&a["accountName"]));
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
    let flags = h.report("flags.csv");
    for (email, names) in &shared {
        let id = text(&customers[*email][0]["accountId"]);
        for a in names.iter() {
            let head: String = a.chars().take(150).collect();
            let org = orgs
                .iter()
                .find(|(n, _)| n.starts_with(&head))
                .map(|(_, o)| o)
                .unwrap();
            assert!(
                org["members"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|m| text(m) == id),
                "{email} is in organization {a}"
            );
        }
        assert!(
            flags
                .lines()
                .any(|l| l.contains("customer_deduplicated") && l.contains(email.as_str())),
            "the shared e-mail {email} is reported in flags.csv: {}",
            flags
                .lines()
                .filter(|l| l.contains("customer_deduplicated"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    // Tickets -> requests, exactly once each, found by the legacy id field.
    let (legacy_id, by_legacy) = issues_by_legacy(&jira);
    let field_id: BTreeMap<String, String> = list(&jira, "fields")
        .iter()
        .map(|f| (text(&f["name"]), text(&f["id"])))
        .collect();
    let zfields: Vec<Value> = list(&zoho, "fields")
        .into_iter()
        .filter(|f| f["_module"] == "tickets" && f["isCustomField"] == true)
        .collect();
    assert!(zfields.len() >= 7, "custom fields of several types");
    let departments = by_id(&zoho, "departments");
    let tags = by_id(&zoho, "tags");
    let products = by_id(&zoho, "products");
    let desks: BTreeMap<String, Value> = list(&jira, "service_desks")
        .into_iter()
        .map(|d| (text(&d["projectKey"]), d))
        .collect();
    let projects: BTreeMap<String, String> = list(&jira, "projects")
        .iter()
        .map(|p| (text(&p["name"]), text(&p["key"])))
        .collect();
    let attachments = list(&zoho, "attachments");
    let tickets = list(&zoho, "tickets");
    let threads = list(&zoho, "threads");
    let comments = list(&zoho, "comments");
    let mut seen_status = BTreeMap::<(String, String), usize>::new();
    let mut checked_values = BTreeMap::<String, usize>::new();
    let mut inline_checked = 0;
    for t in &tickets {
        let id = text(&t["id"]);
        let found = by_legacy.get(&id).map(Vec::as_slice).unwrap_or(&[]);
        assert_eq!(
            found.len(),
            1,
            "ticket {id} is in JSM {} times",
            found.len()
        );
        let issue = &found[0];
        let key = text(&issue["key"]);
        let f = &issue["fields"];

        // The department's service project, and its request type.
        let dept = text(&departments[&text(&t["departmentId"])]["name"]);
        assert_eq!(
            text(&issue["project"]),
            projects[&dept],
            "ticket {id} in {dept}"
        );
        let rt_id = text(&issue["request"]["requestTypeId"]);
        let rt = desks[&projects[&dept]]["requestTypes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| text(&r["id"]) == rt_id)
            .map(|r| text(&r["name"]))
            .unwrap_or_default();
        assert_eq!(rt, "Report a system problem", "ticket {id}'s request type");
        assert_eq!(
            text(&f["summary"]),
            text(&t["subject"]).chars().take(255).collect::<String>()
        );

        // Status reached through the workflow; priority by name.
        let status = text(&t["status"]);
        let jstatus = text(&issue["status"]);
        *seen_status
            .entry((status.clone(), jstatus.clone()))
            .or_default() += 1;
        let done = jstatus == "Closed" || jstatus == "Resolved";
        assert_eq!(
            status == "Closed",
            done,
            "ticket {id}: {status} -> {jstatus}"
        );
        if status == "Open" {
            assert_eq!(jstatus, "Open", "ticket {id}");
        }
        assert_eq!(
            text(&f["priority"]["name"]),
            text(&t["priority"]),
            "ticket {id}'s priority"
        );

        // Labels: the tags and the channel; components: the product.
        let mut want_labels: BTreeSet<String> = t["_tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| text(&tags[&text(x)]["name"]).replace(' ', "_"))
            .collect();
        want_labels.insert(format!("channel:{}", text(&t["channel"])));
        let labels: BTreeSet<String> = f["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(text)
            .filter(|l| !l.starts_with("category:") && !l.starts_with("subcategory:"))
            .collect();
        assert_eq!(labels, want_labels, "ticket {id}'s labels");
        let components: Vec<String> = f["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| text(&c["name"]))
            .collect();
        let want_components: Vec<String> = products
            .get(&text(&t["productId"]))
            .map(|p| vec![text(&p["productName"])])
            .unwrap_or_default();
        assert_eq!(components, want_components, "ticket {id}'s components");

        // Category / sub-category as a cascading select; every custom field by its label.
        assert_eq!(
            jira_value(&f[&field_id["Category / Sub-category"]]),
            format!("{}/{}", text(&t["category"]), text(&t["subCategory"])),
            "ticket {id}'s category"
        );
        for zf in &zfields {
            let api = text(&zf["apiName"]);
            let label = text(&zf["displayLabel"]);
            let want = text(&t["cf"][&api]);
            let jid = field_id
                .get(&label)
                .unwrap_or_else(|| panic!("custom field {label} exists in Jira"));
            let got = jira_value(&f[jid]);
            let want = match text(&zf["type"]).as_str() {
                "Boolean" if !want.is_empty() => {
                    if want == "true" { "Yes" } else { "No" }.to_string()
                }
                _ => want,
            };
            if want.is_empty() {
                assert!(
                    got.is_empty() || got == "No",
                    "ticket {id}: {label} unset, found {got:?}"
                );
            } else {
                assert_eq!(got, want, "ticket {id}: custom field {label}");
                *checked_values.entry(label).or_default() += 1;
            }
        }
        assert_eq!(text(&f[&legacy_id]), format!("Zoho Desk:{id}"));

        // Conversation: threads and comments in original order, visibility and provenance.
        let mut conv: Vec<(String, bool, (String, String), String)> = threads
            .iter()
            .filter(|x| text(&x["_ticketId"]) == id)
            .map(|x| {
                (
                    text(&x["createdTime"]),
                    text(&x["visibility"]) != "private",
                    (text(&x["author"]["name"]), text(&x["author"]["email"])),
                    text(&x["content"]),
                )
            })
            .chain(
                comments
                    .iter()
                    .filter(|x| text(&x["_ticketId"]) == id)
                    .map(|x| {
                        (
                            text(&x["commentedTime"]),
                            x["isPublic"].as_bool().unwrap_or(false),
                            (
                                text(&x["commenter"]["name"]),
                                text(&x["commenter"]["email"]),
                            ),
                            text(&x["content"]),
                        )
                    }),
            )
            .collect();
        conv.sort_by(|a, b| a.0.cmp(&b.0));
        let jc = issue["comments"].as_array().unwrap();
        assert_eq!(
            jc.len(),
            conv.len(),
            "ticket {id}: one comment per thread and comment"
        );
        let internal = |c: &Value| {
            c["properties"].as_array().is_some_and(|p| {
                p.iter()
                    .any(|x| x["key"] == "sd.public.comment" && x["value"]["internal"] == true)
            })
        };
        let jatts = issue["attachments"].as_array().unwrap();
        let media_of = |uuid: &str| jatts.iter().find(|a| a["mediaUuid"] == uuid);
        for (n, ((at, public, author, html), c)) in conv.iter().zip(jc).enumerate() {
            let body = adf_text(&c["body"]);
            let first = body.lines().next().unwrap_or("");
            // Agents and customers alike are named as the source names them.
            let (name, email) = author;
            let who = if name.is_empty() { email } else { name };
            assert!(
                first.contains(&format!("by {who}")) && first.contains(&readable(at)),
                "ticket {id} comment {n}: provenance with author and time, in order: {first:?}"
            );
            assert_eq!(internal(c), !public, "ticket {id} comment {n}: visibility");
            // Inline images: a media node per image, an attachment of this issue with its bytes.
            let srcs = img_sources(html);
            let media = adf_media(&c["body"]);
            assert_eq!(
                media.len(),
                srcs.len(),
                "ticket {id} comment {n}: images as media"
            );
            for (src, m) in srcs.iter().zip(&media) {
                let a = media_of(m).expect("media is an attachment of the issue");
                let z = attachments
                    .iter()
                    .find(|z| text(&z["id"]) == attachment_id_of(src))
                    .unwrap();
                assert_eq!(a["md5"], z["md5"], "ticket {id}: inline image bytes");
                inline_checked += 1;
            }
        }
        let desc = text(&t["description"]);
        let srcs = img_sources(&desc);
        let media = adf_media(&f["description"]);
        assert_eq!(
            media.len(),
            srcs.len(),
            "ticket {id}: description images as media"
        );
        for (src, m) in srcs.iter().zip(&media) {
            let a = media_of(m).expect("description media is an attachment of the issue");
            let z = attachments
                .iter()
                .find(|z| text(&z["id"]) == attachment_id_of(src))
                .unwrap();
            assert_eq!(a["md5"], z["md5"], "ticket {id}: description image bytes");
            inline_checked += 1;
        }
        assert!(
            adf_text(&f["description"]).contains(&readable(&text(&t["createdTime"]))),
            "ticket {id}: provenance line with the original time"
        );

        // Attachments by bytes, each exactly once (inline images included: no second copy).
        let zatt: Vec<&Value> = attachments
            .iter()
            .filter(|a| text(&a["_ticketId"]) == id)
            .collect();
        assert_eq!(
            jatts.len(),
            zatt.len(),
            "ticket {id} ({key}): one Jira attachment per Zoho file: {jatts:?}"
        );
        for z in zatt {
            assert_eq!(
                jatts.iter().filter(|a| a["md5"] == z["md5"]).count(),
                1,
                "ticket {id}: {} arrived once with its bytes",
                text(&z["name"])
            );
        }
    }
    assert!(
        inline_checked > TICKETS / 10,
        "inline images compared: {inline_checked}"
    );
    for label in [
        "Severity",
        "Seats",
        "Under Contract",
        "Affected Modules",
        "Renewal Date",
        "Region",
    ] {
        assert!(
            checked_values.get(label).copied().unwrap_or(0) > TICKETS / 50,
            "{label} values compared: {checked_values:?}"
        );
    }
    assert!(
        seen_status
            .keys()
            .map(|(z, _)| z)
            .collect::<BTreeSet<_>>()
            .len()
            >= 4,
        "{seen_status:?}"
    );
    // Each Zoho file was downloaded once: an inline image stored with its description or comment
    // is not fetched again by the attachments pass.
    let downloads: u64 = h
        .zoho_requests()
        .await
        .iter()
        .filter(|(k, _)| k.ends_with("/content"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(downloads, attachments.len() as u64, "Zoho file downloads");
    // The bytes of every Zoho file, read from the source, are those Jira holds.
    let md5s: BTreeSet<String> = list(&jira, "attachments")
        .iter()
        .map(|a| text(&a["md5"]))
        .collect();
    for a in &attachments {
        assert!(
            md5s.contains(&text(&a["md5"])),
            "{} arrived",
            text(&a["name"])
        );
    }

    // Tasks -> sub-tasks under their ticket's issue.
    let issues = list(&jira, "issues");
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
            assert!(
                p[0]["subtasks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| *s == found[0]["key"]),
                "the ticket lists its sub-task"
            );
        } else {
            assert!(found[0]["parent"].is_null(), "an orphan task stands alone");
        }
    }

    // Tickets that point at a ticket of another department: an issue link across projects.
    let links: BTreeSet<(String, String)> = list(&jira, "links")
        .iter()
        .flat_map(|l| {
            let (a, b) = (text(&l["inwardIssue"]), text(&l["outwardIssue"]));
            [(a.clone(), b.clone()), (b, a)]
        })
        .collect();
    let mut cross = 0;
    for th in threads.iter().filter(|t| t["isDescriptionThread"] == true) {
        let content = text(&th["content"]);
        let Some(pos) = content.find("#Cases/dv/") else {
            continue;
        };
        let other: String = content[pos + 10..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let a = &by_legacy[&text(&th["_ticketId"])][0];
        let b = &by_legacy[&other][0];
        assert_ne!(a["project"], b["project"], "the reference crosses projects");
        assert!(
            links.contains(&(text(&a["key"]), text(&b["key"]))),
            "{} links to {}",
            text(&a["key"]),
            text(&b["key"])
        );
        cross += 1;
    }
    assert!(
        cross > TICKETS / 20,
        "cross-department links checked: {cross}"
    );

    // A second run writes nothing.
    let before = h.jira_writes().await;
    let started = std::time::Instant::now();
    h.cli_ok(&["run"]).await;
    eprintln!("re-run: {:?}", started.elapsed());
    assert_eq!(
        h.jira_writes().await,
        before,
        "a re-run writes nothing to JSM"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn threads_interleave_while_issues_wait_for_their_write_slots() {
    // Two calls at once, two writes per second to one issue: threads written one after another
    // by two workers would keep at most two issues' threads open at any point of the creation
    // order; a load that hands a waiting issue's slot to another keeps many open.
    let h = JsmHarness::start(
        SandboxOptions {
            seed: 17,
            tickets: 40,
            ..Default::default()
        },
        "request_type = \"Report a system problem\"\nconcurrency_cap = 2\nper_issue_writes_per_second = 2",
        "load_concurrency = 2",
    )
    .await;
    h.approve().await;
    h.cli_ok(&["run"]).await;
    let jira = h.jira().await;
    // Comments in creation order (ids grow), as (position, issue).
    let mut created: Vec<(u64, String)> = list(&jira, "issues")
        .iter()
        .flat_map(|i| list(i, "comments"))
        .map(|c| (text(&c["id"]).parse().unwrap(), text(&c["issueKey"])))
        .collect();
    created.sort();
    let mut span: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (pos, (_, issue)) in created.iter().enumerate() {
        span.entry(issue.clone()).or_insert((pos, pos)).1 = pos;
    }
    let open_at = |pos: usize| {
        span.values()
            .filter(|(a, b)| *a <= pos && pos <= *b)
            .count()
    };
    let most_open = (0..created.len()).map(open_at).max().unwrap_or(0);
    eprintln!(
        "{} comments on {} issues: at most {most_open} threads in progress at once",
        created.len(),
        span.len()
    );
    assert!(
        span.len() >= 10,
        "the tenant gives enough threads: {} issues with comments",
        span.len()
    );
    assert!(
        most_open > 2,
        "at most {most_open} issues' threads were in progress at once over {} comments",
        created.len()
    );
    h.stop().await;
}
