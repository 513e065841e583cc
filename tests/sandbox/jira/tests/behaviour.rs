//! The Jira / JSM behaviours a migration depends on, checked over HTTP.

mod common;

use common::{doc, md5_hex, start, start_default};
use reqwest::Method;
use sandbox_jira::JiraConfig;
use serde_json::{Value, json};

fn transition_ids(v: &Value) -> Vec<String> {
    v["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn invalid_transition_is_refused_and_a_valid_walk_reaches_resolved() {
    let env = start_default().await;
    let key = env.issue("Printer on fire").await;
    let t = env
        .get(&format!("/rest/api/3/issue/{key}/transitions"))
        .await;
    assert_eq!(t.status, 200);
    assert_eq!(transition_ids(&t.json), vec!["11", "21", "31"], "from Open");

    let bad = env
        .post(
            &format!("/rest/api/3/issue/{key}/transitions"),
            json!({"transition": {"id": "41"}}),
        )
        .await;
    assert_eq!(bad.status, 400, "Close straight from Open must fail");
    assert!(
        bad.json["errorMessages"][0]
            .as_str()
            .unwrap()
            .contains("41")
    );
    let unknown = env
        .post(
            &format!("/rest/api/3/issue/{key}/transitions"),
            json!({"transition": {"id": "999"}}),
        )
        .await;
    assert_eq!(unknown.status, 400);

    for (id, status) in [
        ("11", "In Progress"),
        ("21", "Waiting for customer"),
        ("11", "In Progress"),
        ("31", "Resolved"),
    ] {
        let r = env
            .post(
                &format!("/rest/api/3/issue/{key}/transitions"),
                json!({"transition": {"id": id}}),
            )
            .await;
        assert_eq!(r.status, 204, "transition {id}: {}", r.json);
        let issue = env
            .get(&format!("/rest/api/3/issue/{key}?fields=status,resolution"))
            .await;
        assert_eq!(issue.json["fields"]["status"]["name"], status);
    }
    let issue = env.get(&format!("/rest/api/3/issue/{key}")).await;
    assert_eq!(
        issue.json["fields"]["status"]["statusCategory"]["key"],
        "done"
    );
    assert_eq!(issue.json["fields"]["resolution"]["name"], "Done");
    assert!(issue.json["fields"]["resolutiondate"].is_string());
    let t = env
        .get(&format!("/rest/api/3/issue/{key}/transitions"))
        .await;
    assert_eq!(transition_ids(&t.json), vec!["41", "51"], "from Resolved");
    let reopen = env
        .post(
            &format!("/rest/api/3/issue/{key}/transitions"),
            json!({"transition": {"id": "51"}}),
        )
        .await;
    assert_eq!(reopen.status, 204);
    let issue = env.get(&format!("/rest/api/3/issue/{key}")).await;
    assert_eq!(issue.json["fields"]["status"]["name"], "Open");
    assert!(issue.json["fields"]["resolution"].is_null());
    env.stop().await;
}

#[tokio::test]
async fn attachments_need_the_xsrf_header_and_content_redirects_to_matching_media() {
    let env = start_default().await;
    let key = env.issue("With files").await;
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();

    let refused = env
        .upload(
            &format!("/rest/api/3/issue/{key}/attachments"),
            &[("a.bin", &data)],
            false,
        )
        .await;
    assert_eq!(refused.status, 403);
    let refused_jsm = env
        .upload(
            "/rest/servicedeskapi/servicedesk/1/attachTemporaryFile",
            &[("a.bin", &data)],
            false,
        )
        .await;
    assert_eq!(refused_jsm.status, 403);
    assert!(refused_jsm.json["errorMessage"].is_string());
    assert_eq!(env.dump().await["attachments"].as_array().unwrap().len(), 0);

    let ok = env
        .upload(
            &format!("/rest/api/3/issue/{key}/attachments"),
            &[("a.bin", &data), ("b.txt", b"hello")],
            true,
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.json);
    let list = ok.json.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["filename"], "a.bin");
    assert_eq!(list[0]["size"], 5000);
    let id = list[0]["id"].as_str().unwrap().to_string();

    let redirect = env
        .get(&format!("/rest/api/3/attachment/content/{id}"))
        .await;
    assert_eq!(redirect.status, 303);
    let location = redirect.header("location").unwrap();
    let uuid = location
        .strip_suffix("/binary")
        .and_then(|l| l.rsplit('/').next())
        .unwrap()
        .to_string();
    assert!(location.ends_with(&format!("/file/{uuid}/binary")));
    assert_eq!(uuid.len(), 36, "a UUID, not the attachment id: {uuid}");
    assert_ne!(uuid, id);

    let bytes = env
        .http
        .get(&location)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.as_ref(), data.as_slice());

    let dump = env.dump().await;
    let stored = dump["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(stored["mediaUuid"], uuid.as_str());
    assert_eq!(stored["md5"], md5_hex(&data).as_str());
    assert_eq!(stored["size"], 5000);

    let meta = env.get(&format!("/rest/api/3/attachment/{id}")).await;
    assert_eq!(meta.json["filename"], "a.bin");
    assert_eq!(
        env.delete(&format!("/rest/api/3/attachment/{id}"))
            .await
            .status,
        204
    );
    assert_eq!(
        env.get(&format!("/rest/api/3/attachment/{id}"))
            .await
            .status,
        404
    );
    assert_eq!(
        env.http
            .get(&location)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    env.stop().await;
}

#[tokio::test]
async fn jsm_temporary_attachments_become_issue_attachments_with_a_comment() {
    let env = start_default().await;
    let req = env
        .post("/rest/servicedeskapi/request", json!({"serviceDeskId": "1", "requestTypeId": "1", "requestFieldValues": {"summary": "Need help"}}))
        .await;
    assert_eq!(req.status, 201, "{}", req.json);
    let key = req.json["issueKey"].as_str().unwrap().to_string();
    let tmp = env
        .upload(
            "/rest/servicedeskapi/servicedesk/1/attachTemporaryFile",
            &[("log.txt", b"line one")],
            true,
        )
        .await;
    assert_eq!(tmp.status, 201, "{}", tmp.json);
    let tid = tmp.json["temporaryAttachments"][0]["temporaryAttachmentId"]
        .as_str()
        .unwrap()
        .to_string();
    let att = env
        .post(
            &format!("/rest/servicedeskapi/request/{key}/attachment"),
            json!({"temporaryAttachmentIds": [tid], "public": false}),
        )
        .await;
    assert_eq!(att.status, 201, "{}", att.json);
    assert_eq!(att.json["attachments"]["values"][0]["size"], 8);
    let issue = env
        .get(&format!(
            "/rest/api/3/issue/{key}?fields=attachment,comment"
        ))
        .await;
    assert_eq!(issue.json["fields"]["attachment"][0]["filename"], "log.txt");
    assert_eq!(
        issue.json["fields"]["comment"]["comments"][0]["jsdPublic"],
        false
    );
    let again = env
        .post(
            &format!("/rest/servicedeskapi/request/{key}/attachment"),
            json!({"temporaryAttachmentIds": [tid], "public": true}),
        )
        .await;
    assert_eq!(again.status, 400, "a temporary file is used once");
    env.stop().await;
}

#[tokio::test]
async fn duplicate_customer_email_is_400_or_409_when_strict() {
    let env = start_default().await;
    let first = env
        .post(
            "/rest/servicedeskapi/customer",
            json!({"email": "ann@example.com", "displayName": "Ann"}),
        )
        .await;
    assert_eq!(first.status, 201);
    assert!(first.json["accountId"].as_str().unwrap().starts_with("qm:"));
    assert_eq!(first.json["emailAddress"], "ann@example.com");
    let dup = env
        .post(
            "/rest/servicedeskapi/customer",
            json!({"email": "ANN@example.com", "displayName": "Ann again"}),
        )
        .await;
    assert_eq!(dup.status, 400);
    assert!(
        dup.json["errorMessage"]
            .as_str()
            .unwrap()
            .contains("already exists")
    );
    assert!(dup.json["i18nErrorMessage"]["i18nKey"].is_string());
    let strict = env
        .post(
            "/rest/servicedeskapi/customer?strictConflictStatusCode=true",
            json!({"email": "ann@example.com", "displayName": "Ann"}),
        )
        .await;
    assert_eq!(strict.status, 409);
    let found = env
        .get("/rest/api/3/user/search?query=ann@example.com")
        .await;
    assert_eq!(found.json.as_array().unwrap().len(), 1);
    assert_eq!(found.json[0]["accountId"], first.json["accountId"]);
    assert_eq!(found.json[0]["accountType"], "customer");
    env.stop().await;
}

#[tokio::test]
async fn burst_limit_answers_429_with_retry_after_and_reason() {
    let env = start(JiraConfig {
        burst_per_second: Some(3),
        ..JiraConfig::default()
    })
    .await;
    let mut statuses = Vec::new();
    let mut throttled = None;
    for _ in 0..30 {
        let r = env.get("/rest/api/3/myself").await;
        statuses.push(r.status);
        if r.status == 429 && throttled.is_none() {
            throttled = Some(r);
        }
    }
    assert_eq!(
        &statuses[..3],
        &[200, 200, 200],
        "the first requests of a window pass"
    );
    let r = throttled.expect("30 requests above a limit of 3/s meet a 429");
    assert_eq!(
        r.header("ratelimit-reason").as_deref(),
        Some("jira-burst-based")
    );
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(retry >= 1);
    assert_eq!(r.header("x-ratelimit-limit").as_deref(), Some("3"));
    assert_eq!(r.header("x-ratelimit-remaining").as_deref(), Some("0"));
    assert!(r.header("x-ratelimit-reset").is_some());
    assert!(r.json["errorMessages"].is_array());
    let other = env.get("/rest/api/3/priority").await;
    assert_eq!(other.status, 200, "another endpoint has its own budget");
    env.stop().await;
}

#[tokio::test]
async fn per_issue_write_limit_answers_jira_per_issue_on_write() {
    let env = start(JiraConfig {
        per_issue_writes_per_second: Some(2),
        ..JiraConfig::default()
    })
    .await;
    let hot = env.issue("hot").await;
    let cold = env.issue("cold").await;
    let mut hit = None;
    for n in 0..20 {
        let r = env
            .put(
                &format!("/rest/api/3/issue/{hot}"),
                json!({"fields": {"summary": format!("edit {n}")}}),
            )
            .await;
        if r.status == 429 {
            hit = Some(r);
            break;
        }
        assert_eq!(r.status, 204);
    }
    let r = hit.expect("20 writes to one issue above 2/s meet a 429");
    assert_eq!(
        r.header("ratelimit-reason").as_deref(),
        Some("jira-per-issue-on-write")
    );
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    let reads = env.get(&format!("/rest/api/3/issue/{hot}")).await;
    assert_eq!(reads.status, 200, "reads are not limited per issue");
    let other = env
        .put(
            &format!("/rest/api/3/issue/{cold}"),
            json!({"fields": {"summary": "fine"}}),
        )
        .await;
    assert_eq!(other.status, 204, "another issue has its own budget");
    env.stop().await;
}

#[tokio::test]
async fn invalid_adf_is_refused_and_valid_adf_is_kept() {
    let env = start_default().await;
    let base = json!({"project": {"key": "SUP"}, "issuetype": {"name": "Task"}, "summary": "adf"});
    let with = |d: Value| {
        let mut f = base.clone();
        f["description"] = d;
        json!({"fields": f})
    };
    let plain = env
        .post("/rest/api/3/issue", with(json!("just text")))
        .await;
    assert_eq!(plain.status, 400);
    assert_eq!(plain.json["errorMessages"], json!([]));
    assert!(
        plain.json["errors"]["description"]
            .as_str()
            .unwrap()
            .contains("Atlassian Document")
    );
    let broken = json!({"version": 1, "type": "doc", "content": [{"type": "paragraph", "content": [{"type": "text"}]}]});
    assert_eq!(
        env.post("/rest/api/3/issue", with(broken.clone()))
            .await
            .status,
        400,
        "text node without text"
    );
    let bad_mark = json!({"version": 1, "type": "doc", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "x", "marks": [{"type": "link"}]}]}]});
    assert_eq!(
        env.post("/rest/api/3/issue", with(bad_mark)).await.status,
        400,
        "link mark without href"
    );
    assert_eq!(
        env.dump().await["issues"].as_array().unwrap().len(),
        0,
        "nothing stored from refused creates"
    );

    let rich = json!({"version": 1, "type": "doc", "content": [
        {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "Title"}]},
        {"type": "paragraph", "content": [{"type": "text", "text": "bold", "marks": [{"type": "strong"}]}, {"type": "hardBreak"}, {"type": "text", "text": "link", "marks": [{"type": "link", "attrs": {"href": "https://example.com"}}]}]},
        {"type": "bulletList", "content": [{"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "item"}]}]}]},
        {"type": "codeBlock", "attrs": {"language": "rust"}, "content": [{"type": "text", "text": "fn main() {}"}]}
    ]});
    let ok = env.post("/rest/api/3/issue", with(rich.clone())).await;
    assert_eq!(ok.status, 201, "{}", ok.json);
    let key = ok.json["key"].as_str().unwrap();
    let got = env
        .get(&format!("/rest/api/3/issue/{key}?fields=description"))
        .await;
    assert_eq!(got.json["fields"]["description"], rich);

    let c = env
        .post(
            &format!("/rest/api/3/issue/{key}/comment"),
            json!({"body": broken}),
        )
        .await;
    assert_eq!(c.status, 400);
    assert!(c.json["errors"]["comment"].is_string());
    let c = env
        .post(
            &format!("/rest/api/3/issue/{key}/comment"),
            json!({"body": "text"}),
        )
        .await;
    assert_eq!(c.status, 400);
    assert_eq!(
        env.post(
            &format!("/rest/api/3/issue/{key}/comment"),
            json!({"body": doc("fine")})
        )
        .await
        .status,
        201
    );

    let field = env
        .post("/rest/api/3/field", json!({"name": "Notes", "type": "com.atlassian.jira.plugin.system.customfieldtypes:textarea"}))
        .await;
    assert_eq!(field.status, 201);
    let fid = field.json["id"].as_str().unwrap().to_string();
    let r = env
        .put(
            &format!("/rest/api/3/issue/{key}"),
            json!({"fields": {fid.clone(): "plain"}}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.json["errors"][&fid].is_string());
    assert_eq!(
        env.put(
            &format!("/rest/api/3/issue/{key}"),
            json!({"fields": {fid.clone(): doc("notes")}})
        )
        .await
        .status,
        204
    );

    let jsm_bad = env
        .post(
            "/rest/servicedeskapi/request",
            json!({"serviceDeskId": "1", "requestTypeId": "1", "isAdfRequest": true, "requestFieldValues": {"summary": "s", "description": {"type": "doc", "content": [{"type": "nope"}]}}}),
        )
        .await;
    assert_eq!(jsm_bad.status, 400);
    assert!(jsm_bad.json["errorMessage"].is_string());
    let jsm_ok = env
        .post(
            "/rest/servicedeskapi/request",
            json!({"serviceDeskId": "1", "requestTypeId": "1", "isAdfRequest": true, "requestFieldValues": {"summary": "s", "description": doc("adf body")}}),
        )
        .await;
    assert_eq!(jsm_ok.status, 201, "{}", jsm_ok.json);
    let k = jsm_ok.json["issueKey"].as_str().unwrap();
    assert_eq!(
        env.get(&format!("/rest/api/3/issue/{k}")).await.json["fields"]["description"],
        doc("adf body")
    );
    env.stop().await;
}

#[tokio::test]
async fn internal_comment_via_property_and_servicedesk_filters() {
    let env = start_default().await;
    let key = env.issue("comments").await;
    let internal = env
        .post(
            &format!("/rest/api/3/issue/{key}/comment"),
            json!({"body": doc("agents only"), "properties": [{"key": "sd.public.comment", "value": {"internal": true}}]}),
        )
        .await;
    assert_eq!(internal.status, 201);
    assert_eq!(internal.json["jsdPublic"], false);
    let public = env
        .post(
            &format!("/rest/api/3/issue/{key}/comment"),
            json!({"body": doc("hello customer")}),
        )
        .await;
    assert_eq!(public.json["jsdPublic"], true);
    let via_jsm = env
        .post(
            &format!("/rest/servicedeskapi/request/{key}/comment"),
            json!({"body": "also internal", "public": false}),
        )
        .await;
    assert_eq!(via_jsm.status, 201);
    assert_eq!(via_jsm.json["public"], false);

    let all = env.get(&format!("/rest/api/3/issue/{key}/comment")).await;
    assert_eq!(all.json["total"], 3);
    let flags: Vec<bool> = all.json["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["jsdPublic"].as_bool().unwrap())
        .collect();
    assert_eq!(flags, vec![false, true, false]);
    let newest_first = env
        .get(&format!(
            "/rest/api/3/issue/{key}/comment?orderBy=-created&maxResults=1"
        ))
        .await;
    assert_eq!(newest_first.json["comments"].as_array().unwrap().len(), 1);
    assert_eq!(newest_first.json["comments"][0]["id"], via_jsm.json["id"]);

    let only_public = env
        .get(&format!(
            "/rest/servicedeskapi/request/{key}/comment?internal=false"
        ))
        .await;
    assert_eq!(only_public.json["size"], 1);
    assert_eq!(only_public.json["values"][0]["body"], "hello customer");
    let only_internal = env
        .get(&format!(
            "/rest/servicedeskapi/request/{key}/comment?public=false"
        ))
        .await;
    assert_eq!(only_internal.json["size"], 2);

    let cid = public.json["id"].as_str().unwrap();
    assert_eq!(
        env.delete(&format!("/rest/api/3/issue/{key}/comment/{cid}"))
            .await
            .status,
        204
    );
    assert_eq!(
        env.get(&format!("/rest/api/3/issue/{key}/comment"))
            .await
            .json["total"],
        2
    );
    let dump = env.dump().await;
    let stored = &dump["issues"][0]["comments"];
    assert_eq!(stored[0]["public"], false);
    assert_eq!(stored[0]["body"], doc("agents only"));
    env.stop().await;
}

#[tokio::test]
async fn deleting_an_issue_with_subtasks_needs_delete_subtasks_true() {
    let env = start_default().await;
    let parent = env.issue("parent").await;
    let orphan = env
        .post("/rest/api/3/issue", json!({"fields": {"project": {"key": "SUP"}, "issuetype": {"name": "Sub-task"}, "summary": "no parent"}}))
        .await;
    assert_eq!(orphan.status, 400);
    assert!(orphan.json["errors"]["parent"].is_string());
    let sub = env
        .post(
            "/rest/api/3/issue",
            json!({"fields": {"project": {"key": "SUP"}, "issuetype": {"name": "Sub-task"}, "summary": "child", "parent": {"key": parent}}}),
        )
        .await;
    assert_eq!(sub.status, 201, "{}", sub.json);
    let sub_key = sub.json["key"].as_str().unwrap().to_string();
    let p = env.get(&format!("/rest/api/3/issue/{parent}")).await;
    assert_eq!(p.json["fields"]["subtasks"][0]["key"], sub_key.as_str());
    let s = env.get(&format!("/rest/api/3/issue/{sub_key}")).await;
    assert_eq!(s.json["fields"]["parent"]["key"], parent.as_str());

    let refused = env.delete(&format!("/rest/api/3/issue/{parent}")).await;
    assert_eq!(refused.status, 400);
    let refused = env
        .delete(&format!("/rest/api/3/issue/{parent}?deleteSubtasks=false"))
        .await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        env.get(&format!("/rest/api/3/issue/{parent}")).await.status,
        200
    );
    let ok = env
        .delete(&format!("/rest/api/3/issue/{parent}?deleteSubtasks=true"))
        .await;
    assert_eq!(ok.status, 204);
    assert_eq!(
        env.get(&format!("/rest/api/3/issue/{parent}")).await.status,
        404
    );
    assert_eq!(
        env.get(&format!("/rest/api/3/issue/{sub_key}"))
            .await
            .status,
        404
    );
    assert_eq!(env.dump().await["issues"].as_array().unwrap().len(), 0);
    env.stop().await;
}

#[tokio::test]
async fn raise_on_behalf_of_needs_desk_membership_directly_or_through_an_organization() {
    let env = start_default().await;
    let cust = env
        .post(
            "/rest/servicedeskapi/customer",
            json!({"email": "bob@example.com", "displayName": "Bob"}),
        )
        .await;
    let bob = cust.json["accountId"].as_str().unwrap().to_string();
    let request = |who: &str| json!({"serviceDeskId": "1", "requestTypeId": "1", "raiseOnBehalfOf": who, "requestFieldValues": {"summary": "VPN down", "description": "It broke.\nTwice."}});

    let refused = env
        .post("/rest/servicedeskapi/request", request(&bob))
        .await;
    assert_eq!(refused.status, 400);
    assert!(
        refused.json["errorMessage"]
            .as_str()
            .unwrap()
            .contains("not a customer")
    );

    let org = env
        .post("/rest/servicedeskapi/organization", json!({"name": "Acme"}))
        .await;
    assert_eq!(org.status, 201);
    let org_id = org.json["id"].as_str().unwrap().to_string();
    assert_eq!(
        env.post("/rest/servicedeskapi/organization", json!({"name": "Acme"}))
            .await
            .status,
        400,
        "duplicate org name"
    );
    assert_eq!(
        env.post(
            &format!("/rest/servicedeskapi/organization/{org_id}/user"),
            json!({"accountIds": [bob]})
        )
        .await
        .status,
        204
    );
    assert_eq!(
        env.post("/rest/servicedeskapi/request", request(&bob))
            .await
            .status,
        400,
        "org not linked to the desk yet"
    );
    assert_eq!(
        env.post(
            "/rest/servicedeskapi/servicedesk/1/organization",
            json!({"organizationId": org_id.parse::<u64>().unwrap()})
        )
        .await
        .status,
        204
    );
    let ok = env
        .post("/rest/servicedeskapi/request", request(&bob))
        .await;
    assert_eq!(ok.status, 201, "{}", ok.json);
    assert_eq!(ok.json["reporter"]["accountId"], bob.as_str());
    assert_eq!(ok.json["currentStatus"]["status"], "Open");
    let key = ok.json["issueKey"].as_str().unwrap();
    let issue = env.get(&format!("/rest/api/3/issue/{key}")).await;
    assert_eq!(issue.json["fields"]["issuetype"]["name"], "Service Request");
    assert_eq!(
        issue.json["fields"]["description"]["content"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "wiki text as two paragraphs"
    );

    assert_eq!(
        env.delete(&format!("/rest/servicedeskapi/organization/{org_id}"))
            .await
            .status,
        204
    );
    assert_eq!(
        env.post("/rest/servicedeskapi/request", request(&bob))
            .await
            .status,
        400,
        "org deleted"
    );
    assert_eq!(
        env.post(
            "/rest/servicedeskapi/servicedesk/1/customer",
            json!({"accountIds": [bob]})
        )
        .await
        .status,
        204
    );
    assert_eq!(
        env.post("/rest/servicedeskapi/request", request(&bob))
            .await
            .status,
        201,
        "direct customer"
    );
    let listed = env.get("/rest/servicedeskapi/servicedesk/1/customer").await;
    assert_eq!(listed.json["values"][0]["accountId"], bob.as_str());
    assert_eq!(
        env.delete_with(
            "/rest/servicedeskapi/servicedesk/1/customer",
            json!({"accountIds": [bob]})
        )
        .await
        .status,
        204
    );
    assert_eq!(
        env.post("/rest/servicedeskapi/request", request(&bob))
            .await
            .status,
        400,
        "removed from the desk"
    );
    let not_on_type = env
        .post("/rest/servicedeskapi/request", json!({"serviceDeskId": "1", "requestTypeId": "1", "requestFieldValues": {"summary": "s", "environment": "x"}}))
        .await;
    assert_eq!(
        not_on_type.status, 400,
        "fields outside the request type are refused"
    );
    env.stop().await;
}

#[tokio::test]
async fn freeze_refuses_every_write_but_not_reads() {
    let env = start_default().await;
    let key = env.issue("before freeze").await;
    let f = env
        .raw(
            Method::POST,
            "/__sandbox/freeze",
            Some(json!({"frozen": true})),
        )
        .await;
    assert_eq!(f.status, 200);
    let create = env.post("/rest/api/3/issue", json!({"fields": {"project": {"key": "SUP"}, "issuetype": {"name": "Task"}, "summary": "x"}})).await;
    assert_eq!(create.status, 403);
    assert!(create.json["errorMessages"][0].is_string());
    assert_eq!(
        env.put(
            &format!("/rest/api/3/issue/{key}"),
            json!({"fields": {"summary": "y"}})
        )
        .await
        .status,
        403
    );
    assert_eq!(
        env.delete(&format!("/rest/api/3/issue/{key}")).await.status,
        403
    );
    let cust = env
        .post(
            "/rest/servicedeskapi/customer",
            json!({"email": "c@example.com"}),
        )
        .await;
    assert_eq!(cust.status, 403);
    assert!(cust.json["errorMessage"].is_string());
    assert_eq!(
        env.get(&format!("/rest/api/3/issue/{key}")).await.status,
        200
    );
    let search = env
        .post("/rest/api/3/search/jql", json!({"jql": "project = SUP"}))
        .await;
    assert_eq!(
        search.status, 200,
        "search is a read even though it is a POST"
    );
    let dump = env.dump().await;
    assert_eq!(dump["frozen"], true);
    assert_eq!(dump["issues"].as_array().unwrap().len(), 1);
    assert_eq!(dump["issues"][0]["fields"]["summary"], "before freeze");
    assert_eq!(dump["customers"].as_array().unwrap().len(), 0);
    env.raw(
        Method::POST,
        "/__sandbox/freeze",
        Some(json!({"frozen": false})),
    )
    .await;
    assert_eq!(
        env.put(
            &format!("/rest/api/3/issue/{key}"),
            json!({"fields": {"summary": "y"}})
        )
        .await
        .status,
        204
    );
    env.stop().await;
}

#[tokio::test]
async fn bad_credentials_get_401_and_inspection_needs_none() {
    let env = start_default().await;
    let anonymous = env.raw(Method::GET, "/rest/api/3/myself", None).await;
    assert_eq!(anonymous.status, 401);
    let wrong = env
        .http
        .get(env.url("/rest/api/3/myself"))
        .basic_auth("admin@sandbox.example", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let jsm = env
        .raw(Method::GET, "/rest/servicedeskapi/servicedesk", None)
        .await;
    assert_eq!(jsm.status, 401);
    assert!(jsm.json["errorMessage"].is_string());
    let me = env.get("/rest/api/3/myself").await;
    assert_eq!(me.status, 200);
    assert_eq!(me.json["emailAddress"], "admin@sandbox.example");
    assert_eq!(
        me.json["accountId"],
        env.sandbox.admin_account_id().as_str()
    );
    assert_eq!(
        env.raw(Method::GET, "/__sandbox/dump", None).await.status,
        200
    );
    env.stop().await;
}

#[tokio::test]
async fn jql_finds_an_issue_by_a_legacy_id_field_and_pages_with_tokens() {
    let env = start_default().await;
    let f = env
        .post(
            "/rest/api/3/field",
            json!({"name": "Legacy ID", "type": "com.atlassian.jira.plugin.system.customfieldtypes:textfield", "searcherKey": "com.atlassian.jira.plugin.system.customfieldtypes:textsearcher"}),
        )
        .await;
    assert_eq!(f.status, 201);
    let fid = f.json["id"].as_str().unwrap().to_string();
    let num = fid.strip_prefix("customfield_").unwrap().to_string();
    let mut keys = Vec::new();
    for n in 0..3 {
        let r = env
            .post("/rest/api/3/issue", json!({"fields": {"project": {"key": "SUP"}, "issuetype": {"name": "Task"}, "summary": format!("t{n}"), fid.clone(): format!("ZD-{n}00")}}))
            .await;
        assert_eq!(r.status, 201, "{}", r.json);
        keys.push(r.json["key"].as_str().unwrap().to_string());
    }
    let by_name = env.post("/rest/api/3/search/jql", json!({"jql": "project = SUP AND \"Legacy ID\" ~ \"ZD-100\"", "fields": ["summary", fid.clone()]})).await;
    assert_eq!(by_name.status, 200, "{}", by_name.json);
    assert_eq!(by_name.json["issues"].as_array().unwrap().len(), 1);
    assert_eq!(by_name.json["issues"][0]["key"], keys[1].as_str());
    assert_eq!(by_name.json["issues"][0]["fields"][&fid], "ZD-100");
    assert_eq!(by_name.json["isLast"], true);
    let by_cf = env
        .post(
            "/rest/api/3/search/jql",
            json!({"jql": format!("cf[{num}] = \"ZD-200\"")}),
        )
        .await;
    assert_eq!(by_cf.json["issues"][0]["key"], keys[2].as_str());
    let none = env
        .post(
            "/rest/api/3/search/jql",
            json!({"jql": format!("cf[{num}] = \"ZD-999\"")}),
        )
        .await;
    assert_eq!(none.json["issues"].as_array().unwrap().len(), 0);

    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"jql": "project = SUP ORDER BY key ASC", "maxResults": 2});
        if let Some(t) = &token {
            body["nextPageToken"] = json!(t);
        }
        let page = env.post("/rest/api/3/search/jql", body).await;
        for i in page.json["issues"].as_array().unwrap() {
            seen.push(i["key"].as_str().unwrap().to_string());
        }
        if page.json["isLast"] == true {
            assert!(page.json.get("nextPageToken").is_none_or(Value::is_null));
            break;
        }
        token = Some(page.json["nextPageToken"].as_str().unwrap().to_string());
    }
    assert_eq!(seen, keys);
    assert_eq!(
        env.post("/rest/api/3/search/jql", json!({"jql": ""}))
            .await
            .status,
        400,
        "unbounded JQL"
    );
    assert_eq!(
        env.post(
            "/rest/api/3/search/jql",
            json!({"jql": "\"No such field\" ~ \"x\""})
        )
        .await
        .status,
        400
    );
    env.stop().await;
}

#[tokio::test]
async fn fields_options_components_links_and_properties() {
    let env = start_default().await;
    let f = env.post("/rest/api/3/field", json!({"name": "Tier", "type": "com.atlassian.jira.plugin.system.customfieldtypes:select"})).await;
    assert_eq!(f.status, 201);
    assert_eq!(f.json["schema"]["type"], "option");
    let fid = f.json["id"].as_str().unwrap().to_string();
    assert_eq!(
        env.post(
            "/rest/api/3/field",
            json!({"name": "Bad", "type": "textfield"})
        )
        .await
        .status,
        400,
        "short type key"
    );
    let ctx = env
        .post(
            &format!("/rest/api/3/field/{fid}/context"),
            json!({"name": "SUP only", "projectIds": [], "issueTypeIds": []}),
        )
        .await;
    assert_eq!(ctx.status, 201);
    let cid = ctx.json["id"].as_str().unwrap().to_string();
    let opts = env
        .post(
            &format!("/rest/api/3/field/{fid}/context/{cid}/option"),
            json!({"options": [{"value": "Gold"}, {"value": "Silver"}]}),
        )
        .await;
    assert_eq!(opts.status, 200);
    assert_eq!(opts.json["options"].as_array().unwrap().len(), 2);
    assert_eq!(
        env.post(
            &format!("/rest/api/3/field/{fid}/context/{cid}/option"),
            json!({"options": [{"value": "Gold"}]})
        )
        .await
        .status,
        400
    );
    let listed = env
        .get(&format!("/rest/api/3/field/{fid}/context/{cid}/option"))
        .await;
    assert_eq!(listed.json["total"], 2);

    let comp = env
        .post(
            "/rest/api/3/component",
            json!({"name": "Billing", "project": "SUP"}),
        )
        .await;
    assert_eq!(comp.status, 201);
    assert_eq!(
        env.post(
            "/rest/api/3/component",
            json!({"name": "Billing", "project": "SUP"})
        )
        .await
        .status,
        400
    );
    let comp_id = comp.json["id"].as_str().unwrap().to_string();

    let a = env
        .post(
            "/rest/api/3/issue",
            json!({"fields": {"project": {"key": "SUP"}, "issuetype": {"id": "10001"}, "summary": "a", fid.clone(): {"value": "Gold"}, "components": [{"name": "Billing"}], "labels": ["vip"], "priority": {"name": "High"}, "duedate": "2030-01-31"}}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.json);
    let a_key = a.json["key"].as_str().unwrap().to_string();
    let bad_option = env
        .post("/rest/api/3/issue", json!({"fields": {"project": {"key": "SUP"}, "issuetype": {"name": "Task"}, "summary": "b", fid.clone(): {"value": "Platinum"}}}))
        .await;
    assert_eq!(bad_option.status, 400);
    assert!(bad_option.json["errors"][&fid].is_string());
    let unknown = env
        .post("/rest/api/3/issue", json!({"fields": {"project": {"key": "SUP"}, "issuetype": {"name": "Task"}, "summary": "b", "customfield_99999": "x"}}))
        .await;
    assert_eq!(unknown.status, 400);
    assert!(
        unknown.json["errors"]["customfield_99999"]
            .as_str()
            .unwrap()
            .contains("cannot be set")
    );
    let spaced = env
        .put(
            &format!("/rest/api/3/issue/{a_key}"),
            json!({"fields": {"labels": ["two words"]}}),
        )
        .await;
    assert_eq!(spaced.status, 400);
    let got = env
        .get(&format!("/rest/api/3/issue/{a_key}?expand=names"))
        .await;
    assert_eq!(got.json["fields"][&fid]["value"], "Gold");
    assert_eq!(got.json["fields"]["components"][0]["name"], "Billing");
    assert_eq!(got.json["fields"]["priority"]["name"], "High");
    assert_eq!(got.json["fields"]["duedate"], "2030-01-31");
    assert_eq!(got.json["names"][&fid], "Tier");
    let upd = env
        .put(
            &format!("/rest/api/3/issue/{a_key}"),
            json!({"update": {"labels": [{"add": "urgent"}, {"remove": "vip"}]}}),
        )
        .await;
    assert_eq!(upd.status, 204);
    assert_eq!(
        env.get(&format!("/rest/api/3/issue/{a_key}")).await.json["fields"]["labels"],
        json!(["urgent"])
    );

    let b_key = env.issue("b").await;
    let link = env.post("/rest/api/3/issueLink", json!({"type": {"name": "Relates"}, "inwardIssue": {"key": a_key}, "outwardIssue": {"key": b_key}})).await;
    assert_eq!(link.status, 201);
    assert!(link.bytes.is_empty(), "issueLink answers an empty body");
    let again = env.post("/rest/api/3/issueLink", json!({"type": {"name": "Relates"}, "inwardIssue": {"key": a_key}, "outwardIssue": {"key": b_key}})).await;
    assert_eq!(again.status, 201);
    assert_eq!(
        env.dump().await["links"].as_array().unwrap().len(),
        1,
        "a duplicate link is not stored twice"
    );
    let got = env.get(&format!("/rest/api/3/issue/{b_key}")).await;
    assert_eq!(
        got.json["fields"]["issuelinks"][0]["inwardIssue"]["key"],
        a_key.as_str()
    );
    assert_eq!(env.post("/rest/api/3/issueLink", json!({"type": {"name": "Nope"}, "inwardIssue": {"key": a_key}, "outwardIssue": {"key": b_key}})).await.status, 404);

    assert_eq!(
        env.put(
            &format!("/rest/api/3/issue/{a_key}/properties/zoho.ticketId"),
            json!({"id": "123"})
        )
        .await
        .status,
        201
    );
    assert_eq!(
        env.put(
            &format!("/rest/api/3/issue/{a_key}/properties/zoho.ticketId"),
            json!({"id": "124"})
        )
        .await
        .status,
        200
    );
    let p = env
        .get(&format!(
            "/rest/api/3/issue/{a_key}/properties/zoho.ticketId"
        ))
        .await;
    assert_eq!(
        p.json,
        json!({"key": "zoho.ticketId", "value": {"id": "124"}})
    );

    assert_eq!(
        env.delete(&format!("/rest/api/3/component/{comp_id}"))
            .await
            .status,
        204
    );
    assert_eq!(
        env.get(&format!("/rest/api/3/issue/{a_key}")).await.json["fields"]["components"],
        json!([])
    );
    assert_eq!(
        env.get("/rest/api/3/project/SUP/components").await.json,
        json!([])
    );
    env.stop().await;
}

#[tokio::test]
async fn seed_reset_records_stats_and_injected_faults() {
    let env = start_default().await;
    let seed = json!({
        "users": [{"displayName": "Agent Smith", "emailAddress": "smith@example.com"}],
        "customers": [{"email": "old@example.com", "displayName": "Old Customer", "serviceDesks": ["SUP"]}],
        "organizations": [{"name": "Legacy Org", "members": ["old@example.com"], "serviceDesks": ["1"]}],
        "service_desks": [{"name": "IT", "projectKey": "IT"}],
        "issues": [
            {"project": "SUP", "summary": "pre-existing", "status": "Resolved", "reporter": "old@example.com",
             "comments": [{"body": "first"}, {"body": "hidden", "public": false}],
             "attachments": [{"filename": "a.txt", "text": "abc"}]},
            {"project": "IT", "summary": "other desk"}
        ]
    });
    let r = env.raw(Method::POST, "/__sandbox/seed", Some(seed)).await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["issues"], json!(["SUP-1", "IT-1"]));
    let dump = env.dump().await;
    assert_eq!(dump["issues"][0]["seeded"], true);
    assert_eq!(dump["issues"][0]["status"], "Resolved");
    assert_eq!(dump["issues"][0]["comments"][1]["public"], false);
    assert_eq!(
        dump["issues"][0]["attachments"][0]["md5"],
        md5_hex(b"abc").as_str()
    );
    assert_eq!(
        dump["organizations"][0]["members"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(dump["service_desks"].as_array().unwrap().len(), 2);
    let next = env.issue("after seed").await;
    assert_eq!(next, "SUP-2", "keys continue after seeded issues");
    let bad = env
        .raw(
            Method::POST,
            "/__sandbox/seed",
            Some(json!({"issues": [{"project": "NOPE", "summary": "x"}]})),
        )
        .await;
    assert_eq!(bad.status, 400);

    let customers = env
        .raw(Method::GET, "/__sandbox/records/customers", None)
        .await;
    assert_eq!(customers.json[0]["emailAddress"], "old@example.com");
    assert_eq!(
        env.raw(Method::GET, "/__sandbox/records/tickets", None)
            .await
            .json
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        env.raw(Method::GET, "/__sandbox/records/nothing", None)
            .await
            .status,
        404
    );

    env.get("/rest/api/3/myself").await;
    env.get("/rest/api/3/myself").await;
    env.get("/rest/api/3/issue/SUP-1").await;
    let stats = env.raw(Method::GET, "/__sandbox/stats", None).await.json;
    assert_eq!(stats["endpoints"]["GET /rest/api/3/myself"]["count"], 2);
    assert_eq!(
        stats["endpoints"]["GET /rest/api/3/issue/{issueIdOrKey}"]["by_status"]["200"],
        1
    );

    let faults = env
        .raw(
            Method::PUT,
            "/__sandbox/faults",
            Some(json!({"seed": 1, "burst_429_rate": 1.0, "burst_len": 1, "retry_after_secs": 2})),
        )
        .await;
    assert_eq!(faults.status, 200);
    let throttled = env.get("/rest/api/3/myself").await;
    assert_eq!(throttled.status, 429);
    assert_eq!(
        throttled.header("ratelimit-reason").as_deref(),
        Some("jira-burst-based")
    );
    assert_eq!(throttled.header("retry-after").as_deref(), Some("2"));
    assert_eq!(
        env.raw(Method::GET, "/__sandbox/dump", None).await.status,
        200,
        "inspection is never faulted"
    );
    env.raw(Method::PUT, "/__sandbox/faults", Some(json!({})))
        .await;

    let reset = env.raw(Method::POST, "/__sandbox/reset", None).await;
    assert_eq!(reset.status, 200);
    let dump = env.dump().await;
    assert_eq!(dump["issues"].as_array().unwrap().len(), 0);
    assert_eq!(dump["customers"].as_array().unwrap().len(), 0);
    assert_eq!(
        dump["service_desks"].as_array().unwrap().len(),
        1,
        "configured desk recreated"
    );
    assert_eq!(env.issue("fresh").await, "SUP-1");
    env.stop().await;
}

#[tokio::test]
async fn config_from_json_creates_desks_and_pre_existing_records() {
    let config: JiraConfig = serde_json::from_value(json!({
        "admin_email": "lead@example.org",
        "admin_api_token": "t0ken",
        "service_desks": [{"name": "Helpdesk", "projectKey": "HD"}],
        "seed": {"customers": [{"email": "kept@example.org", "displayName": "Kept", "serviceDesks": ["HD"]}],
                 "issues": [{"project": "HD", "summary": "older ticket"}]}
    }))
    .expect("config JSON with defaults for the rest");
    assert_eq!(config.port, 0);
    let env = start(config).await;
    assert_eq!(
        env.get("/rest/api/3/myself").await.json["emailAddress"],
        "lead@example.org"
    );
    let desks = env.get("/rest/servicedeskapi/servicedesk").await;
    assert_eq!(desks.json["size"], 1);
    assert_eq!(desks.json["values"][0]["projectKey"], "HD");
    let types = env
        .get("/rest/servicedeskapi/servicedesk/1/requesttype")
        .await;
    assert!(types.json["size"].as_u64().unwrap() >= 1);
    let kept = env.sandbox.records("customers").unwrap();
    assert_eq!(kept[0]["seeded"], true);
    let issue = env.get("/rest/servicedeskapi/request/HD-1").await;
    assert_eq!(issue.status, 200);
    assert_eq!(issue.json["requestFieldValues"][0]["value"], "older ticket");
    let cust = env.sandbox.records("customers").unwrap()[0]["accountId"]
        .as_str()
        .unwrap()
        .to_string();
    let raised = env
        .post("/rest/servicedeskapi/request", json!({"serviceDeskId": "1", "requestTypeId": "1", "raiseOnBehalfOf": cust, "requestFieldValues": {"summary": "new"}}))
        .await;
    assert_eq!(
        raised.status, 201,
        "a seeded desk customer may raise requests: {}",
        raised.json
    );
    env.stop().await;
}
