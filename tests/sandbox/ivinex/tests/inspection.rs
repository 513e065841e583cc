//! Inspection API, seeding, determinism and fault injection.

mod common;

use std::collections::BTreeSet;

use common::{Api, role_field, start_seeded};
use reqwest::StatusCode;
use sandbox_ivinex::IvinexConfig;
use serde_json::{Value, json};

fn normalised(dump: &Value, base: &str) -> String {
    dump.to_string().replace(base, "BASE")
}

#[tokio::test]
async fn same_seed_and_size_give_identical_dumps() {
    let a = start_seeded(21, 25).await;
    let b = start_seeded(21, 25).await;
    let api_a = Api::new(&a);
    let (da, db) = (
        api_a.sandbox_get("/__sandbox/dump").await,
        Api::new(&b).sandbox_get("/__sandbox/dump").await,
    );
    assert_eq!(normalised(&da, a.base_url()), normalised(&db, b.base_url()));
    assert!(da["records"]["Tickets"].as_array().unwrap().len() == 25);

    // Re-seeding through HTTP reproduces the same tenant too.
    api_a.sandbox_post("/__sandbox/reset", json!({})).await;
    assert_eq!(
        api_a.sandbox_get("/__sandbox/records/Tickets").await,
        json!([])
    );
    let (s, body) = api_a
        .sandbox_post("/__sandbox/seed", json!({"seed": 21, "tickets": 25}))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["counts"]["Tickets"], 25);
    assert_eq!(
        normalised(&api_a.sandbox_get("/__sandbox/dump").await, a.base_url()),
        normalised(&db, b.base_url())
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn different_seeds_name_fields_differently() {
    let names = |seed: u64| -> BTreeSet<(String, String)> {
        let t = sandbox_ivinex::schema(seed);
        t.tabs
            .iter()
            .flat_map(|tab| {
                tab.def
                    .fields
                    .iter()
                    .map(move |f| (tab.def.name.clone(), f.field_name.clone()))
            })
            .collect()
    };
    let (one, two) = (names(1), names(2));
    assert_ne!(one, two);
    let subjects: BTreeSet<String> = (0..20)
        .map(|s| {
            sandbox_ivinex::schema(s)
                .field_name("Tickets", "subject")
                .unwrap()
        })
        .collect();
    assert!(subjects.len() >= 3, "{subjects:?}");
    assert!(
        subjects
            .iter()
            .all(|s| ["subject", "title", "summary", "ticket_subject"].contains(&s.as_str()))
    );
}

#[tokio::test]
async fn unseeded_server_has_schema_and_takes_seed_records() {
    let sb = sandbox_ivinex::start(IvinexConfig::default())
        .await
        .unwrap();
    let api = Api::new(&sb);
    assert!(!api.fields("Tickets").await.is_empty());
    assert_eq!(
        api.ok("GetRecords", json!({"Tab": "Tickets"})).await["Records"],
        json!([])
    );

    let creds = api.sandbox_get("/__sandbox/credentials").await;
    assert_eq!(
        creds,
        json!({"base_url": sb.base_url(), "user": "api@acme.test", "password": "sandbox-secret", "timezone": "America/New_York", "site_id": "acme"})
    );

    let dump = sb.dump();
    let subject = role_field(&dump, "Tickets", "subject");
    let body = json!({
        "fields": {"Tickets": [{"DisplayText": "Legacy Score", "Type": "number"}]},
        "records": {"Tickets": [{
            "collection_id": 777_001,
            subject.clone(): "Seeded by hand",
            "legacy_score": 7,
            "created_date": "2024-03-01 09:00:00",
            "modified_date": "2024-03-10 02:30:00",
            "attachments": [{"file_name": "blob.bin", "size": 5000, "md5": "auto"}]
        }]}
    });
    let (s, created) = api.sandbox_post("/__sandbox/seed", body).await;
    assert_eq!(s, StatusCode::OK, "{created}");
    assert_eq!(created["created"]["Tickets"], json!([777_001]));
    let rec = api.ok("GetRecords", json!({"Tab": "Tickets"})).await["Records"][0].clone();
    assert_eq!(rec["collection_id"], 777_001);
    assert_eq!(rec["legacy_score"], 7);
    // 02:30 does not exist on that day in New York (DST starts): it is read as 03:30.
    assert_eq!(rec["modified_date"], "2024-03-10 03:30:00");
    let att = &rec["attachments"][0];
    assert_eq!(att["size"], 5000);
    let bytes = api
        .http
        .get(att["url"].as_str().unwrap())
        .basic_auth(&api.user, Some(&api.password))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.len(), 5000);
    use md5::Digest;
    assert_eq!(
        att["md5"].as_str().unwrap(),
        hex::encode(md5::Md5::digest(&bytes))
    );

    // All or nothing: a bad record leaves the tenant untouched.
    let before = api.sandbox_get("/__sandbox/dump").await;
    let (s, _) = api
        .sandbox_post(
            "/__sandbox/seed",
            json!({"records": {"Tickets": [{subject.clone(): "fine"}, {"no_such_field": 1}]}}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(api.sandbox_get("/__sandbox/dump").await, before);

    let missing = api
        .http
        .get(format!("{}/__sandbox/records/Leads", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    sb.stop().await;
}

#[tokio::test]
async fn stats_count_calls_per_endpoint() {
    let sb = start_seeded(22, 5).await;
    let api = Api::new(&sb);
    for _ in 0..3 {
        api.ok("GetTabs", json!({})).await;
    }
    api.ok("GetRecords", json!({"Tab": "Tickets"})).await;
    let _ = api
        .call("GetRecords", json!({"Tab": "Tickets", "PageSize": 500}))
        .await;
    let _ = Api::new(&sb)
        .with_password("bad")
        .call("GetTabs", json!({}))
        .await;
    let stats = api.sandbox_get("/__sandbox/stats").await;
    assert_eq!(stats["endpoints"]["POST /API/GetTabs"]["count"], 4);
    assert_eq!(
        stats["endpoints"]["POST /API/GetTabs"]["statuses"]["401"],
        1
    );
    assert_eq!(stats["endpoints"]["POST /API/GetRecords"]["count"], 2);
    assert_eq!(
        stats["endpoints"]["POST /API/GetRecords"]["statuses"]["400"],
        1
    );
    assert_eq!(
        stats["total"], 6,
        "inspection calls are not counted: {stats}"
    );
    sb.stop().await;
}

/// What a client saw for one call under faults.
#[derive(Debug, PartialEq, Clone)]
enum Outcome {
    Status(u16, Option<String>),
    Broken,
}

async fn run_calls(api: &Api, n: usize) -> Vec<Outcome> {
    let mut out = Vec::new();
    for _ in 0..n {
        // A fresh connection per call, so a reset cannot leak into the next call.
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let sent = http
            .post(format!("{}/API/GetTabs", api.base))
            .basic_auth(&api.user, Some(&api.password))
            .json(&json!({}))
            .send()
            .await;
        let outcome = match sent {
            Err(_) => Outcome::Broken,
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry = resp
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_string());
                match resp
                    .bytes()
                    .await
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                {
                    Some(body) => {
                        if status != 200 {
                            assert_eq!(body["Status"], "Error", "{body}");
                        }
                        Outcome::Status(status, retry)
                    }
                    None => Outcome::Broken,
                }
            }
        };
        out.push(outcome);
    }
    out
}

#[tokio::test]
async fn fault_knobs_give_deterministic_429s_and_resets() {
    let sb = start_seeded(23, 5).await;
    let api = Api::new(&sb);
    let config = json!({"seed": 99, "burst_429_rate": 0.15, "burst_len": 2, "retry_after_secs": 3, "reset_rate": 0.1, "error_5xx_rate": 0.05});
    let put = |cfg: Value| {
        let http = api.http.clone();
        let url = format!("{}/__sandbox/faults", api.base);
        async move {
            let r = http.put(url).json(&cfg).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
        }
    };
    put(config.clone()).await;
    let first = run_calls(&api, 60).await;
    put(config.clone()).await;
    let second = run_calls(&api, 60).await;
    assert_eq!(first, second, "same fault seed, same sequence");
    assert!(
        first.contains(&Outcome::Status(429, Some("3".into()))),
        "{first:?}"
    );
    assert!(first.contains(&Outcome::Broken), "{first:?}");
    assert!(
        first
            .iter()
            .any(|o| matches!(o, Outcome::Status(500 | 502 | 503, _))),
        "{first:?}"
    );
    assert!(first.contains(&Outcome::Status(200, None)));
    let counters = api.sandbox_get("/__sandbox/faults").await["counters"].clone();
    assert!(
        counters["throttled_429"].as_u64().unwrap() > 0 && counters["resets"].as_u64().unwrap() > 0
    );

    let mut no_header = config.clone();
    no_header["retry_after_secs"] = json!(0);
    put(no_header).await;
    let third = run_calls(&api, 60).await;
    assert!(third.contains(&Outcome::Status(429, None)), "{third:?}");
    assert!(
        !third
            .iter()
            .any(|o| matches!(o, Outcome::Status(429, Some(_))))
    );

    put(json!({})).await;
    assert!(
        run_calls(&api, 5)
            .await
            .iter()
            .all(|o| *o == Outcome::Status(200, None))
    );
    sb.stop().await;
}
