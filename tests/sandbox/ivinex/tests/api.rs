//! Pins the sandbox server to the Ivinex call API contract (shared/docs/ivinex-api.md).

mod common;

use std::collections::BTreeSet;

use common::{Api, is_site_datetime, role_field, start_seeded, to_instant};
use reqwest::StatusCode;
use sandbox_ivinex::IvinexConfig;
use serde_json::{Value, json};

#[tokio::test]
async fn bad_or_missing_credentials_are_401() {
    let sb = start_seeded(1, 10).await;
    let api = Api::new(&sb);
    let wrong = Api::new(&sb).with_password("nope");
    let a = wrong.call("GetTabs", json!({})).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.body["Status"], "Error");
    assert!(a.body["Message"].as_str().unwrap().len() > 5);

    let anon = api
        .http
        .post(format!("{}/API/GetTabs", api.base))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);

    let tabs = api.ok("GetTabs", json!({})).await;
    let names: Vec<&str> = tabs["Tabs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["Name"].as_str().unwrap())
        .collect();
    for t in sandbox_ivinex::TABS {
        assert!(names.contains(&t), "{t} missing from {names:?}");
    }
    assert!(tabs["Tabs"][0]["TabID"].is_u64());
    sb.stop().await;
}

#[tokio::test]
async fn user_without_api_permission_gets_403() {
    let sb = sandbox_ivinex::start(IvinexConfig {
        seed: Some(1),
        tickets: 5,
        api_permission: false,
        ..Default::default()
    })
    .await
    .unwrap();
    let a = Api::new(&sb).call("GetTabs", json!({})).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(a.body["Status"], "Error");
    sb.stop().await;
}

#[tokio::test]
async fn forbidden_tab_has_empty_field_list_and_no_records() {
    let sb = sandbox_ivinex::start(IvinexConfig {
        seed: Some(2),
        tickets: 20,
        forbidden_tabs: vec!["ChangeHistory".into(), "Tasks".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let api = Api::new(&sb);
    assert!(api.fields("ChangeHistory").await.is_empty());
    assert!(api.fields("Tasks").await.is_empty());
    assert!(!api.fields("Tickets").await.is_empty());
    let r = api
        .ok(
            "GetRecords",
            json!({"Tab": "Tasks", "Page": 1, "PageSize": 50}),
        )
        .await;
    assert_eq!(r["Records"], json!([]));
    assert_eq!(r["HasMore"], false);
    // The records exist: the gap is the user's permission, not the data.
    assert!(!sb.records("Tasks").unwrap().is_empty());
    let tabs = api.ok("GetTabs", json!({})).await;
    assert!(
        tabs["Tabs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["Name"] == "Tasks")
    );
    sb.stop().await;
}

#[tokio::test]
async fn field_list_describes_types_options_and_links() {
    let sb = start_seeded(3, 10).await;
    let api = Api::new(&sb);
    let fields = api.fields("Tickets").await;
    for f in &fields {
        for key in ["FieldID", "FieldName", "DisplayText", "Type", "Required"] {
            assert!(f.get(key).is_some(), "{key} missing in {f}");
        }
        let ty = f["Type"].as_str().unwrap();
        if ty == "dropdown" || ty == "multiselect" {
            assert!(!f["Options"].as_array().unwrap().is_empty(), "{f}");
        }
        if ty == "linked_record" || ty == "user_link" {
            assert!(f["LinkedTab"].is_string(), "{f}");
        }
        let name = f["FieldName"].as_str().unwrap();
        assert!(
            name.starts_with(&sandbox_ivinex::field_name_from(
                f["DisplayText"].as_str().unwrap()
            )),
            "{f}"
        );
        assert!(
            name.chars()
                .all(|c| !c.is_uppercase() && !c.is_whitespace()),
            "{name}"
        );
    }
    sb.stop().await;
}

#[tokio::test]
async fn paging_has_more_and_page_size_limit() {
    let sb = start_seeded(4, 40).await;
    let api = Api::new(&sb);
    let expected: Vec<u64> = sb
        .records("Tickets")
        .unwrap()
        .iter()
        .map(|r| r["collection_id"].as_u64().unwrap())
        .collect();
    assert_eq!(expected.len(), 40);
    let mut got = Vec::new();
    let mut page = 1;
    loop {
        let b = api
            .ok(
                "GetRecords",
                json!({"Tab": "Tickets", "Page": page, "PageSize": 7}),
            )
            .await;
        assert_eq!(b["Page"], page);
        let recs = b["Records"].as_array().unwrap();
        assert!(recs.len() <= 7);
        got.extend(recs.iter().map(|r| r["collection_id"].as_u64().unwrap()));
        if !b["HasMore"].as_bool().unwrap() {
            break;
        }
        assert_eq!(recs.len(), 7, "only the last page may be short");
        page += 1;
    }
    assert_eq!(page, 6);
    assert_eq!(got, expected);
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "ordered by collection_id"
    );

    let past_end = api
        .ok(
            "GetRecords",
            json!({"Tab": "Tickets", "Page": 99, "PageSize": 7}),
        )
        .await;
    assert_eq!(past_end["Records"], json!([]));
    assert_eq!(past_end["HasMore"], false);

    let exact = api
        .ok(
            "GetRecords",
            json!({"Tab": "Tickets", "Page": 1, "PageSize": 40}),
        )
        .await;
    assert_eq!(exact["HasMore"], false);
    assert_eq!(exact["Records"].as_array().unwrap().len(), 40);

    let max = api
        .call(
            "GetRecords",
            json!({"Tab": "Tickets", "Page": 1, "PageSize": 200}),
        )
        .await;
    assert_eq!(max.status, StatusCode::OK);
    for bad in [
        json!({"Tab": "Tickets", "PageSize": 201}),
        json!({"Tab": "Tickets", "Page": 0}),
        json!({"Tab": "Tickets", "PageSize": 0}),
        json!({"Page": 1}),
    ] {
        let a = api.call("GetRecords", bad.clone()).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(a.body["Status"], "Error");
    }
    sb.stop().await;
}

#[tokio::test]
async fn records_carry_default_fields_and_a_field_subset_on_request() {
    let sb = start_seeded(5, 15).await;
    let api = Api::new(&sb);
    let dump = sb.dump();
    let subject = role_field(&dump, "Tickets", "subject");
    let status = role_field(&dump, "Tickets", "status");
    let all = api
        .ok("GetRecords", json!({"Tab": "Tickets", "PageSize": 200}))
        .await;
    let fields = api.fields("Tickets").await;
    for r in all["Records"].as_array().unwrap() {
        assert!(r["collection_id"].is_u64());
        for k in ["created_by", "modified_by"] {
            assert!(r[k].is_string(), "{k} in {r}");
        }
        for f in &fields {
            assert!(
                r.get(f["FieldName"].as_str().unwrap()).is_some(),
                "{} missing",
                f["FieldName"]
            );
        }
    }
    let some = api
        .ok(
            "GetRecords",
            json!({"Tab": "Tickets", "Fields": [subject, status]}),
        )
        .await;
    for r in some["Records"].as_array().unwrap() {
        let mut keys: Vec<&str> = r
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "attachments")
            .collect();
        keys.sort();
        let mut want = vec![
            "collection_id",
            "created_by",
            "created_date",
            "modified_by",
            "modified_date",
            &subject,
            &status,
        ];
        want.sort();
        assert_eq!(keys, want);
    }
    let bad = api
        .call(
            "GetRecords",
            json!({"Tab": "Tickets", "Fields": ["no_such_field"]}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    sb.stop().await;
}

#[tokio::test]
async fn typed_values_follow_the_contract() {
    let sb = start_seeded(6, 30).await;
    let api = Api::new(&sb);
    let users: BTreeSet<String> = sb.users().into_iter().map(|u| u.username).collect();
    for tab in sandbox_ivinex::HELPDESK_TABS {
        let fields = api.fields(tab).await;
        let records = api.all_records(tab).await;
        assert!(!records.is_empty(), "{tab}");
        for f in &fields {
            let name = f["FieldName"].as_str().unwrap();
            for r in &records {
                let v = &r[name];
                match f["Type"].as_str().unwrap() {
                    "multiselect" => assert!(v.is_array(), "{tab}.{name} = {v}"),
                    "checkbox" => assert!(v == "1" || v == "0", "{tab}.{name} = {v}"),
                    "datetime" => assert!(
                        v == "" || is_site_datetime(v.as_str().unwrap()),
                        "{tab}.{name} = {v}"
                    ),
                    "linked_record" => assert!(v == "" || v.is_u64(), "{tab}.{name} = {v}"),
                    "user_link" => assert!(
                        v == "" || users.contains(v.as_str().unwrap()),
                        "{tab}.{name} = {v}"
                    ),
                    "dropdown" => {
                        assert!(
                            v == "" || f["Options"].as_array().unwrap().contains(v),
                            "{tab}.{name} = {v}"
                        )
                    }
                    _ => {}
                }
            }
        }
    }
    sb.stop().await;
}

#[tokio::test]
async fn dates_have_the_site_format_and_follow_the_configured_zone() {
    let ny = start_seeded(7, 20).await;
    let kathmandu = sandbox_ivinex::start(IvinexConfig {
        seed: Some(7),
        tickets: 20,
        timezone: "Asia/Kathmandu".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let (a, b) = (
        Api::new(&ny).all_records("Tickets").await,
        Api::new(&kathmandu).all_records("Tickets").await,
    );
    assert_eq!(a.len(), b.len());
    let mut differs = false;
    for (ra, rb) in a.iter().zip(&b) {
        for k in ["created_date", "modified_date"] {
            let (sa, sb) = (ra[k].as_str().unwrap(), rb[k].as_str().unwrap());
            assert!(is_site_datetime(sa) && is_site_datetime(sb), "{sa} / {sb}");
            // Same instant, written in each site's own zone.
            assert_eq!(
                to_instant(sa, "America/New_York"),
                to_instant(sb, "Asia/Kathmandu"),
                "{k}: {sa} vs {sb}"
            );
            differs |= sa != sb;
        }
        let zone = "America/New_York";
        assert!(
            to_instant(ra["modified_date"].as_str().unwrap(), zone)
                >= to_instant(ra["created_date"].as_str().unwrap(), zone)
        );
    }
    assert!(differs);

    // A record written now is stamped with the site's wall clock.
    let api = Api::new(&kathmandu);
    let dump = kathmandu.dump();
    let before = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).unwrap();
    let id = api.ok("AddRecord", json!({"Tab": "Organizations", "Record": {role_field(&dump, "Organizations", "name"): "Zone Test Ltd"}})).await["collection_id"]
        .as_u64()
        .unwrap();
    let after = jiff::Timestamp::now();
    let rec = sandbox_records_by_id(&kathmandu, "Organizations", id);
    let created = to_instant(rec["created_date"].as_str().unwrap(), "Asia/Kathmandu");
    assert!(
        before <= created && created <= after,
        "{before} <= {created} <= {after}"
    );
    assert_eq!(rec["created_by"], "api@acme.test");
    ny.stop().await;
    kathmandu.stop().await;
}

fn sandbox_records_by_id(sb: &sandbox_ivinex::IvinexSandbox, tab: &str, id: u64) -> Value {
    sb.records(tab)
        .unwrap()
        .into_iter()
        .find(|r| r["collection_id"] == id)
        .expect("record present")
}

#[tokio::test]
async fn modified_since_is_inclusive_and_filters() {
    let sb = start_seeded(8, 60).await;
    let api = Api::new(&sb);
    let zone = "America/New_York";
    let all = sb.records("Tickets").unwrap();
    let mut stamps: Vec<&str> = all
        .iter()
        .map(|r| r["modified_date"].as_str().unwrap())
        .collect();
    stamps.sort_by_key(|s| to_instant(s, zone));
    let since = stamps[stamps.len() / 2];
    let since_at = to_instant(since, zone);
    let expected: Vec<u64> = all
        .iter()
        .filter(|r| to_instant(r["modified_date"].as_str().unwrap(), zone) >= since_at)
        .map(|r| r["collection_id"].as_u64().unwrap())
        .collect();
    let got: Vec<u64> = {
        let mut out = Vec::new();
        let mut page = 1;
        loop {
            let b = api
                .ok(
                    "GetRecords",
                    json!({"Tab": "Tickets", "Page": page, "PageSize": 10, "ModifiedSince": since}),
                )
                .await;
            out.extend(
                b["Records"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["collection_id"].as_u64().unwrap()),
            );
            if b["HasMore"] == false {
                break out;
            }
            page += 1;
        }
    };
    assert_eq!(got, expected);
    assert!(got.len() < all.len() && !got.is_empty());
    // The boundary record itself is included (>=).
    assert!(all.iter().any(
        |r| r["modified_date"] == since && got.contains(&r["collection_id"].as_u64().unwrap())
    ));
    for bad in [
        "2024-01-01T00:00:00",
        "2024-01-01",
        "yesterday",
        "2024-13-01 00:00:00",
    ] {
        let a = api
            .call(
                "GetRecords",
                json!({"Tab": "Tickets", "ModifiedSince": bad}),
            )
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    sb.stop().await;
}

#[tokio::test]
async fn unknown_tab_record_or_call_is_404() {
    let sb = start_seeded(9, 5).await;
    let api = Api::new(&sb);
    for (call, body) in [
        ("GetFields", json!({"Tab": "Leads"})),
        ("GetRecords", json!({"Tab": "Leads"})),
        (
            "GetRelatedItems",
            json!({"Tab": "Tickets", "RecordID": 1, "RelatedTab": "Activities"}),
        ),
        ("GetAllRelatedItems", json!({"Tab": "Leads", "RecordID": 1})),
        (
            "UpdateRecord",
            json!({"Tab": "Tickets", "RecordID": 1, "Record": {}}),
        ),
        ("DeleteRecord", json!({"Tab": "Tickets", "RecordID": 1})),
        ("GetEverything", json!({})),
    ] {
        let a = api.call(call, body.clone()).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{call} {body}");
        assert_eq!(a.body["Status"], "Error");
        assert!(a.body["Message"].is_string());
    }
    let a = api.call("GetRecords", json!("not an object")).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    sb.stop().await;
}

#[tokio::test]
async fn related_items_of_every_link_type() {
    let sb = start_seeded(10, 40).await;
    let api = Api::new(&sb);
    let dump = sb.dump();
    let ticket_field = role_field(&dump, "Activities", "ticket");
    let contact_field = role_field(&dump, "Tickets", "contact");

    // embedded, both ways: a ticket's activities point at it; it points at its contact.
    let ticket = dump["records"]["Tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| {
            dump["records"]["Activities"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a[&ticket_field] == t["collection_id"])
        })
        .expect("a ticket with activities")
        .clone();
    let tid = ticket["collection_id"].as_u64().unwrap();
    let expected: BTreeSet<u64> = dump["records"]["Activities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a[&ticket_field] == tid)
        .map(|a| a["collection_id"].as_u64().unwrap())
        .collect();
    let rel = api
        .ok(
            "GetRelatedItems",
            json!({"Tab": "Tickets", "RecordID": tid, "RelatedTab": "Activities"}),
        )
        .await;
    let items = rel["RelatedItems"].as_array().unwrap();
    let got: BTreeSet<u64> = items
        .iter()
        .filter(|i| i["LinkType"] == "embedded")
        .map(|i| i["Record"]["collection_id"].as_u64().unwrap())
        .collect();
    assert_eq!(got, expected);
    assert!(
        items
            .iter()
            .all(|i| i["Tab"] == "Activities" && i["Record"]["created_date"].is_string())
    );

    let all = api
        .ok(
            "GetAllRelatedItems",
            json!({"Tab": "Tickets", "RecordID": tid}),
        )
        .await;
    let all = all["RelatedItems"].as_array().unwrap();
    assert!(all.iter().any(|i| i["Tab"] == "Contacts"
        && i["LinkType"] == "embedded"
        && i["Record"]["collection_id"] == ticket[&contact_field]));
    assert!(all.len() > items.len());

    // related, converted, copied_from: visible from both ends.
    for lt in ["related", "converted", "copied_from"] {
        let link = dump["links"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["link_type"] == lt)
            .unwrap_or_else(|| panic!("a {lt} link"));
        let (tab, id, ltab, lid) = (
            link["tab"].as_str().unwrap(),
            link["record_id"].as_u64().unwrap(),
            link["link_tab"].as_str().unwrap(),
            link["link_record_id"].as_u64().unwrap(),
        );
        let from = api
            .ok(
                "GetRelatedItems",
                json!({"Tab": tab, "RecordID": id, "RelatedTab": ltab}),
            )
            .await;
        assert!(
            from["RelatedItems"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["LinkType"] == lt && i["Record"]["collection_id"] == lid),
            "{lt} from {tab}"
        );
        let back = api
            .ok("GetAllRelatedItems", json!({"Tab": ltab, "RecordID": lid}))
            .await;
        assert!(
            back["RelatedItems"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["LinkType"] == lt
                    && i["Tab"] == tab
                    && i["Record"]["collection_id"] == id),
            "{lt} back to {tab}"
        );
    }
    let missing = api
        .call(
            "GetAllRelatedItems",
            json!({"Tab": "Tickets", "RecordID": 1}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    sb.stop().await;
}

#[tokio::test]
async fn attachment_bytes_match_declared_size_and_md5() {
    let sb = start_seeded(11, 30).await;
    let api = Api::new(&sb);
    let dump = sb.dump();
    let mut checked_right = 0;
    let mut checked_wrong = 0;
    let mut listed = 0;
    for tab in ["Tickets", "Activities", "Contacts", "Organizations"] {
        for rec in api.all_records(tab).await {
            let Some(list) = rec.get("attachments") else {
                continue;
            };
            for a in list.as_array().unwrap() {
                listed += 1;
                let size = a["size"].as_u64().unwrap();
                let url = a["url"].as_str().unwrap();
                assert!(url.starts_with(&format!("{}/files/", api.base)), "{url}");
                if size > sandbox_ivinex::LARGE_FILE_BYTES {
                    continue;
                }
                let resp = api
                    .http
                    .get(url)
                    .basic_auth(&api.user, Some(&api.password))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), StatusCode::OK, "{url}");
                assert_eq!(resp.content_length(), Some(size), "{url}");
                let bytes = resp.bytes().await.unwrap();
                assert_eq!(bytes.len() as u64, size, "{url}");
                let actual = format!("{:x}", md5_of(&bytes));
                let dumped = dump["attachments"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|d| d["url"] == url)
                    .expect("in dump");
                if let Some(m) = dumped["md5_actual"].as_str() {
                    assert_eq!(m, actual);
                }
                if let Some(declared) = a.get("md5").and_then(Value::as_str) {
                    if declared.eq_ignore_ascii_case(&actual) {
                        checked_right += 1;
                    } else {
                        checked_wrong += 1;
                    }
                }
            }
        }
    }
    assert!(listed > 10, "{listed}");
    assert!(
        checked_right > checked_wrong,
        "{checked_right} right, {checked_wrong} wrong"
    );
    let unauth = api
        .http
        .get(dump["attachments"][0]["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(unauth.status(), StatusCode::UNAUTHORIZED);
    sb.stop().await;
}

fn md5_of(bytes: &[u8]) -> HexDigest {
    use md5::Digest;
    HexDigest(md5::Md5::digest(bytes).to_vec())
}

struct HexDigest(Vec<u8>);
impl std::fmt::LowerHex for HexDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

#[tokio::test]
async fn large_attachment_streams_its_full_declared_size() {
    let sb = start_seeded(12, 10).await;
    let api = Api::new(&sb);
    let dump = sb.dump();
    let big: Vec<&Value> = dump["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["size"].as_u64().unwrap() > sandbox_ivinex::LARGE_FILE_BYTES)
        .collect();
    assert!((2..=3).contains(&big.len()), "{}", big.len());
    let a = big[0];
    assert!(a["md5_actual"].is_null(), "large files are hashed lazily");
    let mut resp = api
        .http
        .get(a["url"].as_str().unwrap())
        .basic_auth(&api.user, Some(&api.password))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.content_length(), a["size"].as_u64());
    let mut total = 0u64;
    let mut hasher = <md5::Md5 as md5::Digest>::new();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        total += chunk.len() as u64;
        md5::Digest::update(&mut hasher, &chunk);
    }
    assert_eq!(total, a["size"].as_u64().unwrap());
    let digest = HexDigest(md5::Digest::finalize(hasher).to_vec());
    let after = sb.dump();
    let again = after["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == a["id"])
        .unwrap();
    assert_eq!(again["md5_actual"].as_str().unwrap(), format!("{digest:x}"));
    sb.stop().await;
}

#[tokio::test]
async fn writes_bump_modified_and_append_change_history() {
    let sb = start_seeded(13, 10).await;
    let api = Api::new(&sb);
    let dump = sb.dump();
    let status = role_field(&dump, "Tickets", "status");
    let subject = role_field(&dump, "Tickets", "subject");
    let options: Vec<String> = api
        .fields("Tickets")
        .await
        .iter()
        .find(|f| f["FieldName"] == status.as_str())
        .unwrap()["Options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap().to_string())
        .collect();
    let ticket = api
        .ok("GetRecords", json!({"Tab": "Tickets", "PageSize": 1}))
        .await["Records"][0]
        .clone();
    let id = ticket["collection_id"].as_u64().unwrap();
    let new_status = options
        .iter()
        .find(|o| **o != ticket[&status])
        .unwrap()
        .clone();
    let history_before = sb.records("ChangeHistory").unwrap().len();

    let a = api.call("UpdateRecord", json!({"Tab": "Tickets", "RecordID": id, "Record": {status.clone(): "Not a real status"}})).await;
    assert_eq!(
        a.status,
        StatusCode::BAD_REQUEST,
        "dropdown values are checked"
    );
    api.ok("UpdateRecord", json!({"Tab": "Tickets", "RecordID": id, "Record": {status.clone(): new_status, subject.clone(): "Changed subject ✓"}})).await;

    let after = sandbox_records_by_id(&sb, "Tickets", id);
    assert_eq!(after[&status], new_status.as_str());
    assert_eq!(after[&subject], "Changed subject ✓");
    assert_eq!(after["modified_by"], "api@acme.test");
    assert!(
        to_instant(after["modified_date"].as_str().unwrap(), "America/New_York")
            > to_instant(
                ticket["modified_date"].as_str().unwrap(),
                "America/New_York"
            )
    );
    assert_eq!(after["created_date"], ticket["created_date"]);

    let history = sb.records("ChangeHistory").unwrap();
    assert_eq!(history.len(), history_before + 2);
    let f = |role: &str| role_field(&dump, "ChangeHistory", role);
    let entry = history
        .iter()
        .find(|h| {
            h[f("record_id")] == id
                && h[f("field")] == status.as_str()
                && h[f("new_value")] == new_status.as_str()
        })
        .expect("status change logged");
    assert_eq!(entry[f("old_value")], ticket[&status]);
    assert_eq!(entry[f("record_tab")], "Tickets");
    assert_eq!(entry[f("changed_by")], "api@acme.test");
    assert_eq!(entry[f("changed_at")], after["modified_date"]);

    // The delta is visible through ModifiedSince.
    let since = after["modified_date"].as_str().unwrap();
    let delta = api
        .ok(
            "GetRecords",
            json!({"Tab": "Tickets", "ModifiedSince": since}),
        )
        .await;
    assert!(
        delta["Records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["collection_id"] == id)
    );
    sb.stop().await;
}

#[tokio::test]
async fn add_link_attach_and_delete() {
    let sb = start_seeded(14, 10).await;
    let api = Api::new(&sb);
    let dump = sb.dump();
    let last = role_field(&dump, "Contacts", "last_name");
    let email = role_field(&dump, "Contacts", "email");
    let org_field = role_field(&dump, "Contacts", "organization");
    let org = dump["records"]["Organizations"][0]["collection_id"]
        .as_u64()
        .unwrap();

    let missing = api
        .call(
            "AddRecord",
            json!({"Tab": "Contacts", "Record": {email.clone(): "x@example.com"}}),
        )
        .await;
    assert_eq!(
        missing.status,
        StatusCode::BAD_REQUEST,
        "required last name"
    );
    let unknown = api
        .call(
            "AddRecord",
            json!({"Tab": "Contacts", "Record": {last.clone(): "X", "shoe_size": 44}}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    let dangling = api
        .call(
            "AddRecord",
            json!({"Tab": "Contacts", "Record": {last.clone(): "X", org_field.clone(): 1}}),
        )
        .await;
    assert_eq!(dangling.status, StatusCode::BAD_REQUEST);

    let added = api
        .ok("AddRecord", json!({"Tab": "Contacts", "Record": {last.clone(): "Nuñez", email.clone(): "n@example.com", "created_by": "someone.else", "created_date": "2020-02-29 23:59:59"}}))
        .await;
    assert_eq!(added["Status"], "Success");
    let cid = added["collection_id"].as_u64().unwrap();
    let rec = sandbox_records_by_id(&sb, "Contacts", cid);
    assert_eq!(rec["created_by"], "someone.else");
    assert_eq!(rec["created_date"], "2020-02-29 23:59:59");
    assert_eq!(rec[&last], "Nuñez");

    api.ok("LinkRecords", json!({"Tab": "Contacts", "RecordID": cid, "LinkTab": "Organizations", "LinkRecordID": org, "LinkType": "embedded"})).await;
    assert_eq!(sandbox_records_by_id(&sb, "Contacts", cid)[&org_field], org);
    api.ok("LinkRecords", json!({"Tab": "Contacts", "RecordID": cid, "LinkTab": "Organizations", "LinkRecordID": org, "LinkType": "related"})).await;
    let rel = api
        .ok(
            "GetRelatedItems",
            json!({"Tab": "Organizations", "RecordID": org, "RelatedTab": "Contacts"}),
        )
        .await;
    let kinds: BTreeSet<&str> = rel["RelatedItems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["Record"]["collection_id"] == cid)
        .map(|i| i["LinkType"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, BTreeSet::from(["embedded", "related"]));
    let bad_type = api.call("LinkRecords", json!({"Tab": "Contacts", "RecordID": cid, "LinkTab": "Organizations", "LinkRecordID": org, "LinkType": "friends"})).await;
    assert_eq!(bad_type.status, StatusCode::BAD_REQUEST);

    use base64::Engine;
    let content = "hello, ünïcode attachment\n".repeat(100);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&content);
    let up = api.ok("AddAttachment", json!({"Tab": "Contacts", "RecordID": cid, "FileName": "notes ü#1.txt", "ContentBase64": b64, "MD5": "0123"})).await;
    let url = up["url"].as_str().unwrap().to_string();
    let listed = sandbox_records_by_id(&sb, "Contacts", cid)["attachments"][0].clone();
    assert_eq!(listed["url"], url.as_str());
    assert_eq!(listed["file_name"], "notes ü#1.txt");
    assert_eq!(listed["size"], content.len());
    assert_eq!(
        listed["md5"], "0123",
        "the declared checksum is kept as given"
    );
    let got = api
        .http
        .get(&url)
        .basic_auth(&api.user, Some(&api.password))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), content.as_bytes());

    api.ok("DeleteRecord", json!({"Tab": "Contacts", "RecordID": cid}))
        .await;
    assert!(
        sb.records("Contacts")
            .unwrap()
            .iter()
            .all(|r| r["collection_id"] != cid)
    );
    let gone = api
        .call(
            "UpdateRecord",
            json!({"Tab": "Contacts", "RecordID": cid, "Record": {last: "Y"}}),
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let file_gone = api
        .http
        .get(&url)
        .basic_auth(&api.user, Some(&api.password))
        .send()
        .await
        .unwrap();
    assert_eq!(file_gone.status(), StatusCode::NOT_FOUND);
    sb.stop().await;
}

#[tokio::test]
async fn frozen_tenant_refuses_every_write() {
    let sb = start_seeded(15, 10).await;
    let api = Api::new(&sb);
    let dump = sb.dump();
    let name = role_field(&dump, "Organizations", "name");
    let org = dump["records"]["Organizations"][0]["collection_id"]
        .as_u64()
        .unwrap();
    let (s, b) = api
        .sandbox_post("/__sandbox/freeze", json!({"frozen": true}))
        .await;
    assert_eq!((s, b), (StatusCode::OK, json!({"frozen": true})));
    let writes = [
        (
            "AddRecord",
            json!({"Tab": "Organizations", "Record": {name.clone(): "Frozen Inc"}}),
        ),
        (
            "UpdateRecord",
            json!({"Tab": "Organizations", "RecordID": org, "Record": {name.clone(): "Renamed"}}),
        ),
        (
            "LinkRecords",
            json!({"Tab": "Organizations", "RecordID": org, "LinkTab": "Organizations", "LinkRecordID": org, "LinkType": "related"}),
        ),
        (
            "AddAttachment",
            json!({"Tab": "Organizations", "RecordID": org, "FileName": "a.txt", "ContentBase64": "YQ=="}),
        ),
        (
            "DeleteRecord",
            json!({"Tab": "Organizations", "RecordID": org}),
        ),
    ];
    for (call, body) in &writes {
        let a = api.call(call, body.clone()).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{call}");
        assert_eq!(a.body["Status"], "Error");
        assert!(
            a.body["Message"].as_str().unwrap().contains("read-only"),
            "{}",
            a.body
        );
    }
    assert_eq!(sb.dump()["records"], dump["records"], "nothing changed");
    assert_eq!(
        api.ok("GetRecords", json!({"Tab": "Organizations"})).await["Page"],
        1,
        "reads still work"
    );
    api.sandbox_post("/__sandbox/freeze", json!({"frozen": false}))
        .await;
    api.ok(
        "UpdateRecord",
        json!({"Tab": "Organizations", "RecordID": org, "Record": {name: "Renamed"}}),
    )
    .await;
    sb.stop().await;
}

#[tokio::test]
async fn max_concurrent_answers_429_with_retry_after() {
    let sb = sandbox_ivinex::start(IvinexConfig {
        seed: Some(16),
        tickets: 5,
        max_concurrent: Some(1),
        faults: sandbox_kit::FaultConfig {
            latency_ms: 300,
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let api = Api::new(&sb);
    let answers = futures::future::join_all((0..4).map(|_| api.call("GetTabs", json!({})))).await;
    let throttled: Vec<_> = answers
        .iter()
        .filter(|a| a.status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert!(!throttled.is_empty());
    assert!(answers.iter().any(|a| a.status == StatusCode::OK));
    for a in throttled {
        assert_eq!(a.headers.get("retry-after").unwrap(), "1");
        assert_eq!(a.body["Status"], "Error");
    }
    sb.stop().await;
}
