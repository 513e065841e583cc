//! A 10,000-issue tenant must seed quickly; the time is printed, never asserted.

mod common;

use std::time::Instant;

use common::start_default;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn ten_thousand_issues_seed_and_stay_searchable() {
    let env = start_default().await;
    let issues: Vec<_> = (0..10_000)
        .map(|n| {
            json!({
                "project": "SUP",
                "summary": format!("Legacy ticket {n}"),
                "description": {"version": 1, "type": "doc", "content": [{"type": "paragraph", "content": [{"type": "text", "text": format!("Body of ticket {n}")}]}]},
                "labels": ["migrated"],
                "comments": [{"body": format!("first reply {n}")}, {"body": "internal note", "public": false}],
                "properties": {"zoho.ticketId": {"id": n.to_string()}}
            })
        })
        .collect();
    let started = Instant::now();
    let r = env
        .raw(
            Method::POST,
            "/__sandbox/seed",
            Some(json!({"issues": issues})),
        )
        .await;
    let elapsed = started.elapsed();
    eprintln!("seeded 10,000 issues (20,000 comments) over HTTP in {elapsed:?}");
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["issues"].as_array().unwrap().len(), 10_000);
    assert_eq!(r.json["issues"][9_999], "SUP-10000");

    let found = env.post("/rest/api/3/search/jql", json!({"jql": "project = SUP AND summary ~ \"Legacy ticket 9876\"", "fields": ["summary"]})).await;
    assert_eq!(found.status, 200);
    assert_eq!(found.json["issues"][0]["key"], "SUP-9877");
    let issue = env
        .get("/rest/api/3/issue/SUP-5000?properties=zoho.ticketId")
        .await;
    assert_eq!(issue.json["properties"]["zoho.ticketId"]["id"], "4999");
    assert_eq!(issue.json["fields"]["comment"]["total"], 2);
    env.stop().await;
}
