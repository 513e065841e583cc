//! The generated Zoho Desk source tenant: deterministic, and holding the awkward cases a
//! Zoho -> JSM migration must handle, read back through the public API.

mod common;

use std::collections::HashMap;
use std::time::Instant;

use common::Ctx;
use reqwest::Method;
use sandbox_zohodesk::{ZohoConfig, generate};
use serde_json::{Value, json};

#[test]
fn generation_is_deterministic_per_seed() {
    let a = generate(7, 80);
    let b = generate(7, 80);
    let c = generate(8, 80);
    assert_eq!(a.summary(), b.summary());
    assert_eq!(a.tickets, b.tickets);
    assert_eq!(a.threads, b.threads);
    assert_eq!(
        a.attachments
            .iter()
            .map(|(_, bytes)| bytes.clone())
            .collect::<Vec<_>>(),
        b.attachments
            .iter()
            .map(|(_, bytes)| bytes.clone())
            .collect::<Vec<_>>()
    );
    assert_ne!(a.tickets, c.tickets, "another seed gives another tenant");
    assert_eq!(a.tickets.len(), 80);
}

async fn all_pages(ctx: &Ctx, path: &str, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut from = 0;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let r = ctx
            .get(&format!("{path}{sep}from={from}&limit={limit}"))
            .await;
        if r.status() == 204 {
            break;
        }
        assert_eq!(r.status(), 200, "{path}");
        let page: Value = r.json().await.unwrap();
        let items = page["data"].as_array().unwrap().clone();
        let n = items.len();
        out.extend(items);
        if n < limit {
            break;
        }
        from += limit;
    }
    out
}

#[tokio::test]
async fn source_tenant_holds_the_cases_a_migration_must_handle() {
    let ctx = Ctx::start(ZohoConfig {
        seed: Some(11),
        tickets: 60,
        ..ZohoConfig::default()
    })
    .await;

    let departments = ctx.ok_json("/departments").await["data"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(departments.len(), 3);
    let dept_name: HashMap<String, String> = departments
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap().to_string(),
                d["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();

    let tickets = all_pages(&ctx, "/tickets", 25).await;
    assert_eq!(
        tickets.len(),
        60,
        "paging with from/limit reaches every ticket exactly once"
    );
    let per_dept: std::collections::HashSet<&str> = tickets
        .iter()
        .map(|t| t["departmentId"].as_str().unwrap())
        .collect();
    assert!(per_dept.len() >= 2, "tickets spread over departments");

    let accounts = all_pages(&ctx, "/accounts", 99).await;
    assert!(
        accounts
            .iter()
            .any(|a| a["accountName"].as_str().unwrap().chars().count() > 200),
        "an account name beyond 200 characters"
    );

    let contacts = all_pages(&ctx, "/contacts", 99).await;
    let mut by_email: HashMap<&str, Vec<&str>> = HashMap::new();
    for c in &contacts {
        if let Some(e) = c["email"].as_str() {
            by_email
                .entry(e)
                .or_default()
                .push(c["accountId"].as_str().unwrap());
        }
    }
    assert!(
        by_email
            .values()
            .any(|accs| accs.len() > 1 && accs[0] != accs[1]),
        "one email shared by contacts of different accounts"
    );
    assert!(
        contacts.iter().any(|c| c["email"].is_null()),
        "a contact without email"
    );

    let fields = ctx.ok_json("/organizationFields?module=tickets").await["data"]
        .as_array()
        .unwrap()
        .clone();
    let region = fields
        .iter()
        .find(|f| f["apiName"] == "cf_region")
        .expect("department-scoped field");
    assert_eq!(region["associatedDepartments"].as_array().unwrap().len(), 1);
    assert!(fields.iter().any(|f| f["apiName"] == "cf_severity"
        && f["allowedValues"].as_array().is_some_and(|v| v.len() == 4)));

    let tags = ctx.ok_json("/tags").await["data"].as_array().unwrap().len();
    assert!(tags >= 5);
    assert!(
        ctx.ok_json("/products").await["data"]
            .as_array()
            .unwrap()
            .len()
            >= 5
    );

    let mut private_threads = 0;
    let mut truncated = 0;
    let mut inline_images = Vec::new();
    let mut cross_department_refs = 0;
    let mut comments = 0;
    let mut attachments = 0;
    for t in &tickets {
        let tid = t["id"].as_str().unwrap();
        let threads = ctx.ok_json(&format!("/tickets/{tid}/threads")).await["data"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(
            threads.len().to_string(),
            t["threadCount"].as_str().unwrap()
        );
        for th in &threads {
            assert!(th.get("content").is_none());
            private_threads += usize::from(th["visibility"] == "private");
            if th["isContentTruncated"] == true {
                truncated += 1;
            }
            if th["isDescriptionThread"] == true {
                let full = ctx
                    .ok_json(&format!(
                        "/tickets/{tid}/threads/{}",
                        th["id"].as_str().unwrap()
                    ))
                    .await;
                let content = full["content"].as_str().unwrap();
                if let Some(start) = content.find("<img src=\"") {
                    let src = &content[start + 10..];
                    inline_images.push(src[..src.find('"').unwrap()].to_string());
                }
                if content.contains("Related to ticket") {
                    let other = dept_name
                        .values()
                        .filter(|n| content.contains(&format!(" in {n}.")))
                        .count();
                    assert_eq!(other, 1);
                    assert!(
                        !content.contains(&format!(
                            " in {}.",
                            dept_name[t["departmentId"].as_str().unwrap()]
                        )),
                        "the reference crosses departments"
                    );
                    cross_department_refs += 1;
                }
            }
        }
        comments += t["commentCount"]
            .as_str()
            .unwrap()
            .parse::<usize>()
            .unwrap();
        // The list view has no attachmentCount; the full ticket does.
        let full = ctx.ok_json(&format!("/tickets/{tid}")).await;
        attachments += full["attachmentCount"]
            .as_str()
            .unwrap()
            .parse::<usize>()
            .unwrap();
    }
    assert!(private_threads > 0, "private threads exist");
    assert!(truncated > 0, "some bodies are long enough to be truncated");
    assert!(
        cross_department_refs > 0,
        "tickets refer to tickets in another department"
    );
    assert!(comments > 0 && attachments > 0);
    assert!(!inline_images.is_empty(), "inline images in HTML bodies");
    for src in &inline_images {
        assert!(
            src.starts_with(ctx.sb.base_url()),
            "inline images are served by this server: {src}"
        );
        let r = ctx
            .http
            .get(src)
            .bearer_auth(&ctx.token)
            .header("orgId", ctx.sb.org_id())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(&r.bytes().await.unwrap()[..4], b"\x89PNG");
    }

    let tasks = all_pages(&ctx, "/tasks", 99).await;
    assert!(
        tasks.iter().any(|t| t["ticketId"].is_null()),
        "an orphan task"
    );
    assert!(tasks.iter().any(|t| t["ticketId"].is_string()));
    // Custom fields of every type the JSM side maps, filled on full tickets.
    for (api, ftype) in [
        ("cf_seats", "Number"),
        ("cf_under_contract", "Boolean"),
        ("cf_affected_modules", "Multiselect"),
        ("cf_renewal_date", "Date"),
    ] {
        assert!(
            fields
                .iter()
                .any(|f| f["apiName"] == api && f["type"] == ftype),
            "{api} is a {ftype} field"
        );
    }
    let mut with_value: HashMap<&str, usize> = HashMap::new();
    let mut description_images = 0;
    for t in &tickets {
        let full = ctx
            .ok_json(&format!("/tickets/{}", t["id"].as_str().unwrap()))
            .await;
        for api in ["cf_seats", "cf_under_contract", "cf_affected_modules"] {
            if full["cf"][api].is_string() {
                *with_value.entry(api).or_default() += 1;
            }
        }
        let d = full["description"].as_str().unwrap_or("");
        if let Some(start) = d.find("<img src=\"") {
            let src = &d[start + 10..];
            let src = &src[..src.find('"').unwrap()];
            assert!(src.starts_with(ctx.sb.base_url()), "{src}");
            let r = ctx
                .http
                .get(src)
                .bearer_auth(&ctx.token)
                .header("orgId", ctx.sb.org_id())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{src}");
            assert_eq!(&r.bytes().await.unwrap()[..4], b"\x89PNG");
            description_images += 1;
        }
    }
    assert_eq!(with_value.len(), 3, "{with_value:?}");
    assert!(description_images > 0, "inline images in descriptions");

    // A thread seeded later modifies its ticket, as Zoho Desk does.
    let tid = tickets[0]["id"].as_str().unwrap();
    let before = ctx.ok_json(&format!("/tickets/{tid}")).await["modifiedTime"].clone();
    ctx.sb
        .seed(&json!({"threads": [{"ticketId": tid, "content": "<p>later</p>"}]}))
        .unwrap();
    let after = ctx.ok_json(&format!("/tickets/{tid}")).await["modifiedTime"].clone();
    assert!(after.as_str() > before.as_str(), "{before} -> {after}");

    let legacy = tickets[3]["id"].as_str().unwrap();
    let full = ctx.ok_json(&format!("/tickets/{legacy}")).await;
    let reference = full["cf"]["cf_legacy_reference"].as_str().unwrap();
    let found = ctx
        .ok_json(&format!(
            "/tickets/search?customField1=cf_legacy_reference:{reference}"
        ))
        .await;
    assert_eq!(found["data"][0]["id"], legacy);
    ctx.stop().await;
}

#[tokio::test]
async fn ten_thousand_ticket_tenant_seeds_over_http() {
    let ctx = Ctx::default().await;
    let started = Instant::now();
    let r = ctx
        .sandbox(
            Method::POST,
            "seed",
            Some(&json!({"seed": 3, "tickets": 10_000})),
        )
        .await;
    let elapsed = started.elapsed();
    eprintln!(
        "seeded a 10,000-ticket Zoho tenant in {elapsed:?}: {}",
        r["seeded"]
    );
    assert_eq!(r["seeded"]["tickets"], 10_000);
    let page = ctx.ok_json("/tickets?from=9975&limit=100").await;
    assert_eq!(
        page["data"].as_array().unwrap().len(),
        25,
        "the default org had no tickets; 10,000 were added"
    );
    let search = ctx
        .ok_json("/tickets/search?sortBy=-modifiedTime&limit=100&from=900")
        .await;
    assert_eq!(search["count"], 10_000);
    ctx.stop().await;
}
