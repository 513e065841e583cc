//! Pins the sandbox to Zoho Desk's documented behaviour (platform-apis.md section 1 and the OpenAPI files).

mod common;

use common::{Ctx, error_of, refresh};
use md5::{Digest, Md5};
use reqwest::Method;
use sandbox_zohodesk::{FaultConfig, ZohoConfig};
use serde_json::{Value, json};

async fn seed_thread(ctx: &Ctx, ticket: &str, content: &str, visibility: &str) -> String {
    let r = ctx.sandbox(Method::POST, "seed", Some(&json!({"threads": [{"ticketId": ticket, "content": content, "visibility": visibility}]}))).await;
    r["seeded"]["threads"][0].as_str().unwrap().to_string()
}

#[tokio::test]
async fn thread_list_has_summaries_without_content_and_get_has_content() {
    let ctx = Ctx::default().await;
    let t = ctx.new_ticket("thread shapes").await;
    let tid = t["id"].as_str().unwrap();
    let th = seed_thread(
        &ctx,
        tid,
        "<div>Hello <b>world</b>, the printer is on fire.</div>",
        "public",
    )
    .await;

    let list = ctx.ok_json(&format!("/tickets/{tid}/threads")).await;
    let item = &list["data"][0];
    assert_eq!(item["id"], th.as_str());
    assert!(
        item.get("content").is_none(),
        "list items carry no content: {item}"
    );
    assert_eq!(item["summary"], "Hello world , the printer is on fire.");
    assert_eq!(item["visibility"], "public");

    let full = ctx.ok_json(&format!("/tickets/{tid}/threads/{th}")).await;
    assert_eq!(
        full["content"],
        "<div>Hello <b>world</b>, the printer is on fire.</div>"
    );
    assert_eq!(full["isContentTruncated"], false);
    assert!(full["attachments"].is_array());
    ctx.stop().await;
}

#[tokio::test]
async fn long_thread_body_is_truncated_and_full_content_has_all_of_it() {
    let ctx = Ctx::start(ZohoConfig {
        thread_truncate_chars: 100,
        ..ZohoConfig::default()
    })
    .await;
    let t = ctx.new_ticket("long body").await;
    let tid = t["id"].as_str().unwrap();
    let body = format!("<p>{}</p>", "é".repeat(250));
    let th = seed_thread(&ctx, tid, &body, "private").await;

    let cut = ctx.ok_json(&format!("/tickets/{tid}/threads/{th}")).await;
    assert_eq!(cut["isContentTruncated"], true);
    assert_eq!(cut["content"].as_str().unwrap().chars().count(), 100);
    let full_url = cut["fullContentURL"].as_str().unwrap();
    assert!(
        full_url.ends_with(&format!("/tickets/{tid}/threads/{th}/fullContent")),
        "{full_url}"
    );

    let r = ctx
        .http
        .get(full_url)
        .header("Authorization", format!("Bearer {}", ctx.token))
        .header("orgId", ctx.sb.org_id())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let full: Value = r.json().await.unwrap();
    assert_eq!(full["content"], body.as_str());
    assert_eq!(full["isContentTruncated"], false);

    let list = ctx.ok_json(&format!("/tickets/{tid}/threads")).await;
    assert_eq!(
        list["data"][0]["isContentTruncated"], true,
        "the list flags the truncation too"
    );
    ctx.stop().await;
}

#[tokio::test]
async fn empty_list_is_204_with_no_body() {
    let ctx = Ctx::default().await;
    let t = ctx.new_ticket("no comments").await;
    for path in [
        format!("/tickets/{}/comments", t["id"].as_str().unwrap()),
        "/accounts".to_string(),
        "/tasks".to_string(),
    ] {
        let r = ctx.get(&path).await;
        assert_eq!(r.status(), 204, "{path}");
        assert!(
            r.bytes().await.unwrap().is_empty(),
            "{path} answers without a body"
        );
    }
    let r = ctx
        .get("/tickets/search?subject=nothing-matches-this")
        .await;
    assert_eq!(r.status(), 204);
    assert!(r.bytes().await.unwrap().is_empty());
    ctx.stop().await;
}

#[tokio::test]
async fn search_from_is_capped_at_999() {
    let ctx = Ctx::default().await;
    ctx.new_ticket("searchable").await;
    let (status, body) = error_of(ctx.get("/tickets/search?from=1000&limit=10").await).await;
    assert_eq!(status, 422);
    assert_eq!(body["errorCode"], "UNPROCESSABLE_ENTITY");
    assert_eq!(
        body["message"],
        "The value passed for the 'from' query parameter is invalid."
    );
    assert_eq!(
        ctx.get("/tickets/search?from=999&limit=10").await.status(),
        204
    );
    assert_eq!(ctx.get("/tickets/search?limit=101").await.status(), 422);
    assert_eq!(
        ctx.get("/tickets/search?from=0&limit=100").await.status(),
        200
    );
    ctx.stop().await;
}

#[tokio::test]
async fn unknown_query_parameter_is_rejected_with_zoho_message() {
    let ctx = Ctx::default().await;
    let (status, body) = error_of(ctx.get("/tickets?sortOrder=asc").await).await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"errorCode": "UNPROCESSABLE_ENTITY", "message": "Extra query parameter 'sortOrder' is present in the input."})
    );
    // orgId is accepted in the query string as Common.json declares it.
    let r = ctx
        .http
        .get(ctx.url(&format!("/departments?orgId={}", ctx.sb.org_id())))
        .bearer_auth(&ctx.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    ctx.stop().await;
}

#[tokio::test]
async fn modified_time_sort_is_refused_on_tickets_but_allowed_on_search() {
    let ctx = Ctx::default().await;
    let dept = ctx.default_department().await;
    // Seeded times in the past make the order independent of the clock's resolution.
    let seeded = ctx
        .sandbox(
            Method::POST,
            "seed",
            Some(&json!({"tickets": [
                {"subject": "first", "departmentId": dept, "modifiedTime": "2020-01-01T00:00:00.000Z"},
                {"subject": "second", "departmentId": dept, "modifiedTime": "2020-01-02T00:00:00.000Z"},
            ]})),
        )
        .await;
    let a = seeded["seeded"]["tickets"][0].as_str().unwrap().to_string();
    let b = seeded["seeded"]["tickets"][1].as_str().unwrap().to_string();
    let (status, body) = error_of(ctx.get("/tickets?sortBy=modifiedTime").await).await;
    assert_eq!(status, 422);
    assert_eq!(body["errorCode"], "UNPROCESSABLE_ENTITY");
    assert_eq!(ctx.get("/tickets?sortBy=-createdTime").await.status(), 200);

    let asc = ctx
        .ok_json("/tickets/search?sortBy=modifiedTime&limit=100")
        .await;
    let ids: Vec<&str> = asc["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![a.as_str(), b.as_str()]);
    // Touching the first ticket makes it the most recently modified.
    assert_eq!(
        ctx.patch(&format!("/tickets/{a}"), &json!({"priority": "High"}))
            .await
            .status(),
        200
    );
    let desc = ctx.ok_json("/tickets/search?sortBy=-modifiedTime").await;
    assert_eq!(desc["data"][0]["id"], a.as_str());
    assert_eq!(desc["count"], 2);
    ctx.stop().await;
}

#[tokio::test]
async fn modified_time_range_window_selects_recent_changes() {
    let ctx = Ctx::default().await;
    let t = ctx.new_ticket("windowed").await;
    let modified = t["modifiedTime"].as_str().unwrap().to_string();
    let r = ctx
        .ok_json(&format!(
            "/tickets/search?modifiedTimeRange={modified},2100-01-01T00:00:00.000Z"
        ))
        .await;
    assert_eq!(r["data"][0]["id"], t["id"]);
    assert_eq!(
        ctx.get(
            "/tickets/search?modifiedTimeRange=2000-01-01T00:00:00.000Z,2000-01-02T00:00:00.000Z"
        )
        .await
        .status(),
        204
    );
    assert_eq!(
        ctx.get("/tickets/search?modifiedTimeRange=yesterday")
            .await
            .status(),
        422
    );
    ctx.stop().await;
}

#[tokio::test]
async fn concurrency_cap_answers_too_many_requests() {
    let cfg = ZohoConfig {
        concurrency_cap: Some(2),
        faults: FaultConfig {
            latency_ms: 1500,
            ..FaultConfig::default()
        },
        ..ZohoConfig::default()
    };
    let ctx = Ctx::start(cfg).await;
    let calls: Vec<_> = (0..6).map(|_| ctx.get("/departments")).collect();
    let answers = futures::future::join_all(calls).await;
    let mut throttled = 0;
    let mut passed = 0;
    for r in answers {
        let (status, body) = error_of(r).await;
        match status {
            429 => {
                assert_eq!(body["errorCode"], "TOO_MANY_REQUESTS");
                throttled += 1;
            }
            200 => passed += 1,
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(throttled >= 1, "some calls beyond the cap are refused");
    assert!(passed >= 1, "calls within the cap pass");
    let stats = ctx.sandbox(Method::GET, "stats", None).await;
    assert!(stats["counters"]["throttledConcurrency"].as_u64().unwrap() >= 1);
    assert!(stats["counters"]["peakInFlight"].as_u64().unwrap() >= 2);
    ctx.stop().await;
}

#[tokio::test]
async fn credits_header_decreases_and_exhaustion_answers_threshold_exceeded() {
    let mut costs = std::collections::BTreeMap::new();
    costs.insert("GET /api/v1/tickets".to_string(), 3);
    let cfg = ZohoConfig {
        daily_credits: Some(6),
        credit_costs: costs,
        ..ZohoConfig::default()
    };
    let ctx = Ctx::start(cfg).await;
    let remaining = |r: &reqwest::Response| {
        r.headers()["X-API-CREDITS-REMAINING"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let r1 = ctx.get("/departments").await;
    assert_eq!(remaining(&r1), 5);
    let r2 = ctx.get("/departments").await;
    assert_eq!(remaining(&r2), 4);
    let r3 = ctx.get("/tickets").await;
    assert_eq!(remaining(&r3), 1, "the configured cost table applies");
    let r4 = ctx.get("/tickets").await;
    let (status, body) = error_of(r4).await;
    assert_eq!(status, 429);
    assert_eq!(body["errorCode"], "THRESHOLD_EXCEEDED");
    assert_eq!(
        ctx.get("/departments").await.status(),
        200,
        "a cheaper call still fits"
    );
    let (status, body) = error_of(ctx.get("/departments").await).await;
    assert_eq!(
        (status, body["errorCode"].as_str()),
        (429, Some("THRESHOLD_EXCEEDED"))
    );
    ctx.stop().await;
}

#[tokio::test]
async fn edition_sets_daily_credits_and_concurrency() {
    let cfg = ZohoConfig {
        edition: "Enterprise".into(),
        agent_count: 3,
        ..ZohoConfig::default()
    };
    let ctx = Ctx::start(cfg).await;
    let c = ctx.sandbox(Method::GET, "stats", None).await["counters"].clone();
    assert_eq!(c["dailyCredits"], 103_000);
    assert_eq!(c["concurrencyCap"], 25);
    ctx.stop().await;
}

#[tokio::test]
async fn expired_token_is_invalid_oauth_until_refreshed() {
    let ctx = Ctx::default().await;
    assert_eq!(ctx.get("/departments").await.status(), 200);
    ctx.sandbox(Method::POST, "expireTokens", None).await;
    let (status, body) = error_of(ctx.get("/departments").await).await;
    assert_eq!(status, 401);
    assert_eq!(body["errorCode"], "INVALID_OAUTH");

    // Form body works as well as the query string.
    let c = ctx.sb.config();
    let r = ctx
        .http
        .post(format!("{}/oauth/v2/token", ctx.sb.base_url()))
        .form(&[
            ("refresh_token", c.refresh_token.as_str()),
            ("client_id", &c.client_id),
            ("client_secret", &c.client_secret),
            ("grant_type", "refresh_token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let tok: Value = r.json().await.unwrap();
    assert_eq!(tok["token_type"], "Bearer");
    assert_eq!(tok["expires_in"], 3600);
    assert_eq!(tok["api_domain"], ctx.sb.base_url());
    let fresh = tok["access_token"].as_str().unwrap();
    let r = ctx
        .http
        .get(ctx.url("/departments"))
        .bearer_auth(fresh)
        .header("orgId", ctx.sb.org_id())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, body) = error_of(
        ctx.http
            .get(ctx.url("/departments"))
            .bearer_auth("1000.unknown")
            .header("orgId", ctx.sb.org_id())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["errorCode"].as_str()),
        (401, Some("INVALID_OAUTH"))
    );
    ctx.stop().await;
}

#[tokio::test]
async fn refresh_limit_blocks_the_eleventh_grant() {
    let sb = sandbox_zohodesk::start(ZohoConfig::default())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    for n in 0..10 {
        assert_eq!(refresh(&http, &sb).await.status(), 200, "grant {n}");
    }
    let (status, body) = error_of(refresh(&http, &sb).await).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "Access Denied", "error_description": "You have made too many requests continuously. Please try again after some time."})
    );
    let bad = http.post(format!("{}/oauth/v2/token?refresh_token=x&client_id=y&client_secret=z&grant_type=refresh_token", sb.base_url())).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    sb.stop().await;
}

#[tokio::test]
async fn org_id_is_required_and_must_match() {
    let ctx = Ctx::default().await;
    let (status, body) = error_of(
        ctx.http
            .get(ctx.url("/departments"))
            .bearer_auth(&ctx.token)
            .header("orgId", "999")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["errorCode"], "OAUTH_ORG_MISMATCH");
    let (status, body) = error_of(
        ctx.http
            .get(ctx.url("/departments"))
            .bearer_auth(&ctx.token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["errorCode"], "UNAUTHORIZED");
    // Listing organizations is how a client learns its orgId.
    let r = ctx
        .http
        .get(ctx.url("/organizations"))
        .bearer_auth(&ctx.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let orgs: Value = r.json().await.unwrap();
    assert_eq!(orgs["data"][0]["id"], ctx.sb.org_id());
    ctx.stop().await;
}

fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

#[tokio::test]
async fn multipart_attachment_and_upload_round_trip_bytes_and_md5() {
    let ctx = Ctx::default().await;
    let t = ctx.new_ticket("with files").await;
    let tid = t["id"].as_str().unwrap();
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes.clone()).file_name("big.bin"),
    );
    let r = ctx
        .req(
            Method::POST,
            &format!("/tickets/{tid}/attachments?isPublic=true"),
        )
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let att: Value = r.json().await.unwrap();
    assert_eq!(att["name"], "big.bin");
    assert_eq!(att["size"], "3000000");
    assert_eq!(att["isPublic"], true);
    let aid = att["id"].as_str().unwrap();

    let r = ctx
        .get(&format!("/tickets/{tid}/attachments/{aid}/content"))
        .await;
    assert_eq!(r.status(), 200);
    let got = r.bytes().await.unwrap();
    assert_eq!(md5_hex(&got), md5_hex(&bytes));

    let stored = ctx.sandbox(Method::GET, "records/attachments", None).await;
    let rec = stored
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == aid)
        .unwrap()
        .clone();
    assert_eq!(rec["size"], 3_000_000);
    assert_eq!(rec["md5"], md5_hex(&bytes));

    let listed = ctx
        .ok_json(&format!("/tickets/{tid}/attachments?include=creator"))
        .await;
    assert_eq!(listed["data"][0]["id"], aid);
    assert!(listed["data"][0]["creator"].is_object());
    assert_eq!(
        ctx.ok_json(&format!("/tickets/{tid}")).await["attachmentCount"],
        "1"
    );

    // Upload, then reference it from a comment.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"hello upload".to_vec()).file_name("note.txt"),
    );
    let up: Value = ctx
        .req(Method::POST, "/uploads")
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(up["size"], "12");
    let comment = ctx
        .create(
            &format!("/tickets/{tid}/comments"),
            &json!({"content": "see file", "isPublic": false, "attachmentIds": [up["id"]]}),
        )
        .await;
    let href = comment["attachments"][0]["href"].as_str().unwrap();
    let r = ctx
        .http
        .get(href)
        .bearer_auth(&ctx.token)
        .header("orgId", ctx.sb.org_id())
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"hello upload");

    assert_eq!(
        ctx.delete(&format!("/tickets/{tid}/attachments/{aid}"))
            .await
            .status(),
        200
    );
    assert_eq!(
        ctx.get(&format!("/tickets/{tid}/attachments/{aid}/content"))
            .await
            .status(),
        404
    );

    let missing = reqwest::multipart::Form::new().text("other", "x");
    let (status, body) = error_of(
        ctx.req(Method::POST, "/uploads")
            .multipart(missing)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["errors"][0]["fieldName"].as_str()),
        (422, Some("/file"))
    );
    ctx.stop().await;
}

#[tokio::test]
async fn custom_fields_are_created_and_validate_ticket_values() {
    let ctx = Ctx::default().await;
    let r = ctx
        .req(Method::POST, "/organizationFields?module=tickets")
        .json(
            &json!({"displayLabel": "Customer Reference Code", "type": "Text", "maxLength": "255"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let field: Value = r.json().await.unwrap();
    assert_eq!(field["apiName"], "cf_customer_reference_code");
    assert_eq!(field["isCustomField"], true);
    let r = ctx
        .req(Method::POST, "/fields?module=tickets")
        .json(&json!({"displayLabel": "Severity", "type": "Picklist", "allowedValues": [{"value": "S1"}, {"value": "S2"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let pick: Value = r.json().await.unwrap();
    assert_eq!(
        pick["allowedValues"],
        json!([{"value": "S1"}, {"value": "S2"}])
    );
    let dup = ctx
        .req(Method::POST, "/organizationFields?module=tickets")
        .json(&json!({"displayLabel": "Severity", "type": "Text", "maxLength": "10"}))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(dup).await;
    assert_eq!(
        (status, body["errors"][0]["errorType"].as_str()),
        (422, Some("duplicate"))
    );

    let listed = ctx.ok_json("/organizationFields?module=tickets").await;
    assert!(
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["apiName"] == "cf_severity")
    );
    assert_eq!(
        ctx.get("/organizationFields").await.status(),
        422,
        "module is required"
    );

    let dept = ctx.default_department().await;
    let contact = ctx.new_contact("Roe", "roe@example.org").await;
    let t = ctx
        .create("/tickets", &json!({"subject": "cf", "departmentId": dept, "contactId": contact, "cf": {"cf_customer_reference_code": "EXT-42", "cf_severity": "S2"}}))
        .await;
    assert_eq!(t["cf"]["cf_customer_reference_code"], "EXT-42");
    assert_eq!(t["customFields"]["Severity"], "S2");

    let (status, body) = error_of(ctx.post("/tickets", &json!({"subject": "x", "departmentId": dept, "contactId": contact, "cf": {"cf_nope": "1"}})).await).await;
    assert_eq!(
        (
            status,
            body["errorCode"].as_str(),
            body["errors"][0]["fieldName"].as_str()
        ),
        (422, Some("INVALID_DATA"), Some("/cf/cf_nope"))
    );
    let (status, body) = error_of(ctx.post("/tickets", &json!({"subject": "x", "departmentId": dept, "contactId": contact, "cf": {"cf_severity": "S9"}})).await).await;
    assert_eq!(
        (status, body["errors"][0]["fieldName"].as_str()),
        (422, Some("/cf/cf_severity"))
    );

    // A client finds the record again by the external id it stored in a custom field.
    let found = ctx
        .ok_json("/tickets/search?customField1=cf_customer_reference_code:EXT-42")
        .await;
    assert_eq!(found["count"], 1);
    assert_eq!(found["data"][0]["id"], t["id"]);
    assert_eq!(
        ctx.get("/tickets/search?customField1=cf_customer_reference_code:EXT-43")
            .await
            .status(),
        204
    );
    ctx.stop().await;
}

#[tokio::test]
async fn department_scoped_custom_field_only_fits_its_department() {
    let ctx = Ctx::default().await;
    let deps = ctx.ok_json("/departments").await;
    let billing = deps["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "Billing")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let support = ctx.default_department().await;
    let r = ctx
        .req(Method::POST, "/organizationFields?module=tickets")
        .json(&json!({"displayLabel": "Invoice No", "type": "Text", "maxLength": "20", "associatedDepartments": [billing]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let contact = ctx.new_contact("Poe", "poe@example.org").await;
    let ok = ctx.post("/tickets", &json!({"subject": "b", "departmentId": billing, "contactId": contact, "cf": {"cf_invoice_no": "INV-1"}})).await;
    assert_eq!(ok.status(), 200);
    let bad = ctx.post("/tickets", &json!({"subject": "s", "departmentId": support, "contactId": contact, "cf": {"cf_invoice_no": "INV-1"}})).await;
    assert_eq!(bad.status(), 422);
    let scoped = ctx
        .ok_json(&format!(
            "/organizationFields?module=tickets&departmentId={support}"
        ))
        .await;
    assert!(
        !scoped["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["apiName"] == "cf_invoice_no")
    );
    ctx.stop().await;
}

#[tokio::test]
async fn trash_hides_records_from_lists_gets_and_search() {
    let ctx = Ctx::default().await;
    let t = ctx.new_ticket("doomed").await;
    let tid = t["id"].as_str().unwrap().to_string();
    let contact = t["contactId"].as_str().unwrap().to_string();
    let account = ctx
        .create("/accounts", &json!({"accountName": "Doomed Inc"}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();

    assert_eq!(
        ctx.post("/tickets/moveToTrash", &json!({"ticketIds": [tid]}))
            .await
            .status(),
        204
    );
    assert_eq!(
        ctx.post("/contacts/moveToTrash", &json!({"contactIds": [contact]}))
            .await
            .status(),
        204
    );
    assert_eq!(
        ctx.post("/accounts/moveToTrash", &json!({"accountIds": [account]}))
            .await
            .status(),
        204
    );

    let (status, body) = error_of(ctx.get(&format!("/tickets/{tid}")).await).await;
    assert_eq!(
        (status, body["errorCode"].as_str()),
        (404, Some("URL_NOT_FOUND"))
    );
    assert_eq!(ctx.get(&format!("/contacts/{contact}")).await.status(), 404);
    assert_eq!(ctx.get(&format!("/accounts/{account}")).await.status(), 404);
    assert_eq!(
        ctx.get(&format!("/tickets/{tid}/threads")).await.status(),
        404
    );
    assert_eq!(ctx.get("/tickets").await.status(), 204);
    assert_eq!(ctx.get("/accounts").await.status(), 204);
    assert_eq!(
        ctx.get("/tickets/search?subject=doomed").await.status(),
        204
    );
    assert_eq!(
        ctx.post("/tickets/moveToTrash", &json!({"ticketIds": [tid]}))
            .await
            .status(),
        422,
        "already trashed"
    );

    let dump = ctx.sandbox(Method::GET, "dump", None).await;
    let rec = dump["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == tid.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        rec["isTrashed"], true,
        "the dump still shows the trashed ticket"
    );
    ctx.stop().await;
}

#[tokio::test]
async fn ticket_delete_is_not_offered() {
    let ctx = Ctx::default().await;
    let t = ctx.new_ticket("stays").await;
    let (status, body) = error_of(
        ctx.delete(&format!("/tickets/{}", t["id"].as_str().unwrap()))
            .await,
    )
    .await;
    assert_eq!(
        (status, body["errorCode"].as_str()),
        (405, Some("METHOD_NOT_ALLOWED"))
    );
    let (status, body) = error_of(ctx.get("/nowhere").await).await;
    assert_eq!(
        (status, body["errorCode"].as_str()),
        (404, Some("URL_NOT_FOUND"))
    );
    ctx.stop().await;
}

#[tokio::test]
async fn invalid_bodies_answer_invalid_data_with_json_pointers() {
    let ctx = Ctx::default().await;
    let (status, body) = error_of(ctx.post("/contacts", &json!({"firstName": "No"})).await).await;
    assert_eq!(status, 422);
    assert_eq!(body["errorCode"], "INVALID_DATA");
    assert_eq!(
        body["errors"],
        json!([{"fieldName": "/lastName", "errorType": "missing"}])
    );
    let (_, body) = error_of(ctx.post("/accounts", &json!({"website": "x"})).await).await;
    assert_eq!(body["errors"][0]["fieldName"], "/accountName");
    let (_, body) = error_of(
        ctx.post("/accounts", &json!({"accountName": "a".repeat(201)}))
            .await,
    )
    .await;
    assert_eq!(
        body["errors"][0],
        json!({"fieldName": "/accountName", "errorType": "invalid"})
    );
    let (_, body) = error_of(
        ctx.post("/tickets", &json!({"description": "nothing else"}))
            .await,
    )
    .await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["fieldName"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["/departmentId", "/contactId", "/subject"]);
    let dept = ctx.default_department().await;
    let (_, body) = error_of(
        ctx.post(
            "/tickets",
            &json!({"subject": "s", "departmentId": dept, "contactId": "123"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        body["errors"][0],
        json!({"fieldName": "/contactId", "errorType": "invalid"})
    );
    let (_, body) = error_of(ctx.post("/tickets", &json!({"subject": "s", "departmentId": dept, "contact": {"email": "x@y.org"}, "createdTime": "2020-01-01T00:00:00.000Z"})).await).await;
    assert_eq!(
        body["errors"][0]["fieldName"], "/createdTime",
        "history cannot be back-dated through REST"
    );
    let (status, body) = error_of(ctx.req(Method::POST, "/tickets").send().await.unwrap()).await;
    assert_eq!(
        (status, body["errorCode"].as_str()),
        (422, Some("EMPTY_PAYLOAD"))
    );
    ctx.stop().await;
}

#[tokio::test]
async fn ticket_with_contact_object_matches_or_creates_the_contact() {
    let ctx = Ctx::default().await;
    let dept = ctx.default_department().await;
    let existing = ctx.new_contact("Known", "known@example.org").await;
    let t1 = ctx.create("/tickets", &json!({"subject": "a", "departmentId": dept, "contact": {"lastName": "Known", "email": "KNOWN@example.org"}})).await;
    assert_eq!(t1["contactId"], existing.as_str());
    let t2 = ctx.create("/tickets", &json!({"subject": "b", "departmentId": dept, "contact": {"lastName": "New", "email": "new@example.org"}})).await;
    assert_ne!(t2["contactId"], existing.as_str());
    let c = ctx
        .ok_json(&format!("/contacts/{}", t2["contactId"].as_str().unwrap()))
        .await;
    assert_eq!(c["email"], "new@example.org");
    assert_eq!(t2["ticketNumber"], "102");
    assert!(t2["id"].is_string(), "ids travel as strings");
    let created = t2["createdTime"].as_str().unwrap();
    assert!(
        created.len() == 24 && created.ends_with('Z') && created.as_bytes()[19] == b'.',
        "ISO time with milliseconds: {created}"
    );
    ctx.stop().await;
}

/// The ids a ticket's comment list shows, in its order.
async fn comment_ids(ctx: &Ctx, tid: &str) -> Vec<String> {
    let v = ctx.ok_json(&format!("/tickets/{tid}/comments")).await;
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn comments_tasks_tags_and_patch_flow() {
    let ctx = Ctx::default().await;
    let t = ctx.new_ticket("flow").await;
    let tid = t["id"].as_str().unwrap();
    let c = ctx
        .create(
            &format!("/tickets/{tid}/comments"),
            &json!({"content": "<b>private</b> note", "isPublic": false, "contentType": "html"}),
        )
        .await;
    let cid = c["id"].as_str().unwrap();
    assert_eq!(c["isPublic"], false);
    assert_eq!(c["modifiedTime"], Value::Null);
    // The ticket's list follows creates and deletes (it is served from an index by ticket).
    assert_eq!(comment_ids(&ctx, tid).await, [cid]);
    let second = ctx
        .create(
            &format!("/tickets/{tid}/comments"),
            &json!({"content": "second", "isPublic": true, "contentType": "plainText"}),
        )
        .await;
    let second = second["id"].as_str().unwrap();
    assert_eq!(comment_ids(&ctx, tid).await, [cid, second]);
    assert_eq!(
        ctx.delete(&format!("/tickets/{tid}/comments/{second}"))
            .await
            .status(),
        200
    );
    assert_eq!(comment_ids(&ctx, tid).await, [cid]);
    let edited = ctx
        .patch(
            &format!("/tickets/{tid}/comments/{cid}"),
            &json!({"content": "edited"}),
        )
        .await;
    assert_eq!(edited.status(), 200);
    let got = ctx
        .ok_json(&format!("/tickets/{tid}/comments/{cid}?include=plainText"))
        .await;
    assert_eq!(got["content"], "edited");
    assert!(got["modifiedTime"].is_string());
    assert_eq!(
        ctx.ok_json(&format!("/tickets/{tid}")).await["commentCount"],
        "1"
    );
    assert_eq!(
        ctx.delete(&format!("/tickets/{tid}/comments/{cid}"))
            .await
            .status(),
        200
    );
    assert_eq!(
        ctx.get(&format!("/tickets/{tid}/comments")).await.status(),
        204
    );

    let dept = ctx.default_department().await;
    let task = ctx.create("/tasks", &json!({"subject": "call back", "departmentId": dept, "ticketId": tid, "dueDate": 1_700_000_000_000u64, "status": "In Progress"})).await;
    assert_eq!(
        task["dueDate"], "2023-11-14T22:13:20.000Z",
        "epoch-ms input is answered as ISO"
    );
    let listed = ctx.ok_json(&format!("/tickets/{tid}/tasks")).await;
    assert_eq!(listed["data"][0]["id"], task["id"]);
    let done = ctx
        .patch(
            &format!("/tasks/{}", task["id"].as_str().unwrap()),
            &json!({"status": "Completed"}),
        )
        .await;
    let done: Value = done.json().await.unwrap();
    assert!(done["completedTime"].is_string());
    assert_eq!(
        ctx.post("/tasks/moveToTrash", &json!({"entityIds": [task["id"]]}))
            .await
            .status(),
        204
    );
    assert_eq!(
        ctx.get(&format!("/tickets/{tid}/tasks")).await.status(),
        204
    );

    let tags = ctx
        .create(
            &format!("/tickets/{tid}/associateTag"),
            &json!({"tags": ["vip", "renewal"]}),
        )
        .await;
    assert_eq!(tags["data"].as_array().unwrap().len(), 2);
    let listed = ctx.ok_json(&format!("/tickets/{tid}/tags")).await;
    assert_eq!(listed["data"][0]["name"], "vip");
    assert_eq!(
        ctx.ok_json(&format!("/tickets/{tid}")).await["tagCount"],
        "2"
    );
    assert_eq!(
        ctx.ok_json("/tickets/search?tag=vip").await["data"][0]["id"],
        tid
    );

    let closed = ctx
        .patch(&format!("/tickets/{tid}"), &json!({"status": "Closed"}))
        .await;
    let closed: Value = closed.json().await.unwrap();
    assert_eq!(closed["statusType"], "Closed");
    assert!(closed["closedTime"].is_string());
    ctx.stop().await;
}

#[tokio::test]
async fn freeze_refuses_writes_and_allows_reads() {
    let ctx = Ctx::default().await;
    ctx.sandbox(Method::POST, "freeze", Some(&json!({"frozen": true})))
        .await;
    let (status, body) = error_of(
        ctx.post("/accounts", &json!({"accountName": "Frozen"}))
            .await,
    )
    .await;
    assert_eq!(
        (status, body["errorCode"].as_str()),
        (403, Some("FORBIDDEN"))
    );
    assert_eq!(ctx.get("/departments").await.status(), 200);
    ctx.sandbox(Method::POST, "freeze", Some(&json!({"frozen": false})))
        .await;
    assert_eq!(
        ctx.post("/accounts", &json!({"accountName": "Thawed"}))
            .await
            .status(),
        200
    );
    ctx.stop().await;
}

#[tokio::test]
async fn seed_reset_stats_and_default_org() {
    let ctx = Ctx::default().await;
    let deps = ctx.ok_json("/departments").await;
    let names: Vec<&str> = deps["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Support", "Billing"]);
    let agents = ctx.ok_json("/agents").await;
    assert_eq!(agents["data"].as_array().unwrap().len(), 1);
    assert_eq!(agents["data"][0]["rolePermissionType"], "Admin");

    let seeded = ctx
        .sandbox(
            Method::POST,
            "seed",
            Some(&json!({
                "accounts": [{"accountName": "Existing Co", "id": "5000000000001"}],
                "contacts": [{"lastName": "Pre", "email": "pre@example.org", "accountId": "5000000000001"}],
                "agents": [{"firstName": "Old", "lastName": "Hand", "emailId": "old@example.com"}],
                "tickets": [{"subject": "pre-existing", "contactId": null, "tags": ["legacy"]}],
                "products": [{"productName": "Widget"}],
                "fields": [{"module": "contacts", "displayLabel": "External Id", "type": "Text"}],
            })),
        )
        .await;
    assert_eq!(seeded["seeded"]["accounts"], json!(["5000000000001"]));
    let acc = ctx.ok_json("/accounts/5000000000001").await;
    assert_eq!(acc["accountName"], "Existing Co");
    let c = ctx
        .ok_json(&format!(
            "/contacts/{}?include=accounts",
            seeded["seeded"]["contacts"][0].as_str().unwrap()
        ))
        .await;
    assert_eq!(c["account"]["accountName"], "Existing Co");
    assert!(c["cf"].as_object().unwrap().contains_key("cf_external_id"));
    let fresh = ctx
        .create("/accounts", &json!({"accountName": "After seed"}))
        .await;
    assert!(fresh["id"].as_str().unwrap().parse::<u64>().unwrap() > 5_000_000_000_001);

    let stats = ctx.sandbox(Method::GET, "stats", None).await;
    assert!(
        stats["requests"]["GET /api/v1/accounts/{accountId}"]
            .as_u64()
            .unwrap()
            >= 1
    );
    assert_eq!(stats["requests"]["POST /api/v1/accounts"], 1);

    ctx.sandbox(Method::POST, "reset", None).await;
    assert_eq!(ctx.get("/accounts").await.status(), 204);
    assert_eq!(
        ctx.ok_json("/departments").await["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let records = ctx.sandbox(Method::GET, "records/tickets", None).await;
    assert_eq!(records, json!([]));
    ctx.stop().await;
}

#[tokio::test]
async fn injected_faults_use_zoho_error_bodies() {
    let ctx = Ctx::default().await;
    ctx.sandbox(
        Method::PUT,
        "faults",
        Some(&json!({"seed": 1, "error_5xx_rate": 1.0})),
    )
    .await;
    let (status, body) = error_of(ctx.get("/departments").await).await;
    assert!(status >= 500, "{status}");
    assert_eq!(body["errorCode"], "INTERNAL_SERVER_ERROR");
    ctx.sandbox(
        Method::PUT,
        "faults",
        Some(&json!({"seed": 1, "burst_429_rate": 1.0, "burst_len": 2, "retry_after_secs": 3})),
    )
    .await;
    let r = ctx.get("/departments").await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "3");
    ctx.sandbox(Method::PUT, "faults", Some(&json!({}))).await;
    assert_eq!(ctx.get("/departments").await.status(), 200);
    ctx.stop().await;
}
