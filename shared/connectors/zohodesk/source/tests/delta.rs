//! Delta reads: records changed through the sandbox API after the signpost, and nothing else;
//! a window of more than 1000 changed tickets (beyond `from`'s reach) is split.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use deskshift_core::ports::{PageRequest, Source};
use deskshift_zohodesk_source::ZohoDeskSource;
use deskshift_zohodesk_source::records::*;
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

fn ids(records: &[deskshift_core::model::RawRecord]) -> BTreeSet<String> {
    records.iter().map(|r| r.id.clone()).collect()
}

fn live_ids(dump: &Value, kind: &str) -> Vec<String> {
    dump[kind]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| str_of(r, "id").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delta_reads_exactly_the_records_changed_since_the_signpost() {
    let sb = sandbox(3, 80, |_| {}).await;
    let src = ZohoDeskSource::connect(config(&sb)).await.unwrap();
    let dump = inspect(&sb, "dump").await;
    let tickets = live_ids(&dump, "tickets");
    let contacts = live_ids(&dump, "contacts");
    let accounts = live_ids(&dump, "accounts");
    let tasks = live_ids(&dump, "tasks");

    let since = src.cursor_now().await.unwrap();
    let mut changed = BTreeSet::new();
    for t in tickets.iter().step_by(11).take(7) {
        write(
            &sb,
            Method::PATCH,
            &format!("/tickets/{t}"),
            json!({"subject": format!("changed {t}")}),
        )
        .await;
        changed.insert(t.clone());
    }
    let mut new_comments = BTreeSet::new();
    for t in [&tickets[1], &tickets[2]] {
        let c = write(
            &sb,
            Method::POST,
            &format!("/tickets/{t}/comments"),
            json!({"content": "<p>late note</p>", "isPublic": false}),
        )
        .await;
        new_comments.insert(str_of(&c, "id").to_string());
        changed.insert(t.clone());
    }
    for c in &contacts[..2] {
        write(
            &sb,
            Method::PATCH,
            &format!("/contacts/{c}"),
            json!({"phone": "+1 555 9999"}),
        )
        .await;
    }
    write(
        &sb,
        Method::PATCH,
        &format!("/accounts/{}", accounts[0]),
        json!({"phone": "+1 555 0000"}),
    )
    .await;
    write(
        &sb,
        Method::PATCH,
        &format!("/tasks/{}", tasks[0]),
        json!({"status": "In Progress"}),
    )
    .await;

    let read = read_all(&src, TICKETS, Some(&since)).await;
    assert_eq!(ids(&read), changed, "exactly the changed tickets");
    assert_eq!(read.len(), changed.len(), "each once");
    let first = read.iter().find(|r| r.id == tickets[0]).unwrap();
    assert_eq!(first.fields["subject"], format!("changed {}", tickets[0]));

    let convs = read_all(&src, CONVERSATIONS, Some(&since)).await;
    assert_eq!(
        ids(&convs),
        new_comments,
        "only conversations created since, of changed tickets"
    );
    assert!(convs.iter().all(|c| c.fields["visibility"] == "private"));

    assert_eq!(
        ids(&read_all(&src, CONTACTS, Some(&since)).await),
        contacts[..2].iter().cloned().collect()
    );
    assert_eq!(
        ids(&read_all(&src, ACCOUNTS, Some(&since)).await),
        BTreeSet::from([accounts[0].clone()])
    );
    assert_eq!(
        ids(&read_all(&src, TASKS, Some(&since)).await),
        BTreeSet::from([tasks[0].clone()])
    );
    assert_eq!(
        src.read_stats().windows_split,
        0,
        "small windows are not split"
    );
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn records_changing_during_a_delta_are_not_lost() {
    let sb = sandbox(4, 40, |_| {}).await;
    let src = ZohoDeskSource::connect(config(&sb)).await.unwrap();
    let tickets = live_ids(&inspect(&sb, "dump").await, "tickets");
    let since = src.cursor_now().await.unwrap();
    for t in &tickets[..12] {
        write(
            &sb,
            Method::PATCH,
            &format!("/tickets/{t}"),
            json!({"priority": "High"}),
        )
        .await;
    }
    let request = |cursor: Option<String>| PageRequest {
        cursor,
        modified_since: Some(since.clone()),
        page_size: 4,
    };
    let page = src.read_page(TICKETS, &request(None)).await.unwrap();
    let mut seen: Vec<String> = page.records.iter().map(|r| r.id.clone()).collect();
    assert_eq!(seen.len(), 4);
    // Mid-read, two tickets already read and two never changed before are changed again.
    for t in [&tickets[0], &tickets[1], &tickets[20], &tickets[21]] {
        write(
            &sb,
            Method::PATCH,
            &format!("/tickets/{t}"),
            json!({"priority": "Low"}),
        )
        .await;
    }
    let mut cursor = page.next;
    while let Some(c) = cursor {
        let page = src.read_page(TICKETS, &request(Some(c))).await.unwrap();
        seen.extend(page.records.iter().map(|r| r.id.clone()));
        cursor = page.next;
    }
    let got: BTreeSet<String> = seen.iter().cloned().collect();
    let mut want: BTreeSet<String> = tickets[..12].iter().cloned().collect();
    want.insert(tickets[20].clone());
    want.insert(tickets[21].clone());
    assert_eq!(got, want, "every change is read, whatever moved meanwhile");
    assert!(
        seen.len() <= want.len() + 2,
        "only re-changed tickets come twice"
    );
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_window_of_more_than_1000_changed_tickets_is_split() {
    let sb = sandbox(5, 1100, |c| c.concurrency_cap = Some(25)).await;
    let mut cfg = config(&sb);
    cfg.scan_description_thread = false;
    let src = ZohoDeskSource::connect(cfg).await.unwrap();
    let tickets = live_ids(&inspect(&sb, "dump").await, "tickets");
    let since = src.cursor_now().await.unwrap();
    let changed: BTreeSet<String> = tickets.iter().take(1050).cloned().collect();
    let token = sb.issue_access_token();
    let http = reqwest::Client::new();
    futures::stream::iter(changed.iter())
        .map(|t| {
            let http = http.clone();
            let url = format!("{}/tickets/{t}", sb.api_url());
            let token = token.clone();
            let org = sb.org_id().to_string();
            async move {
                let r = http
                    .patch(url)
                    .header("Authorization", format!("Zoho-oauthtoken {token}"))
                    .header("orgId", org)
                    .json(&json!({"status": "On Hold"}))
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success());
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;

    let read = read_all(&src, TICKETS, Some(&since)).await;
    let mut per_id: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &read {
        *per_id.entry(r.id.as_str()).or_default() += 1;
    }
    assert!(per_id.values().all(|n| *n == 1), "each changed ticket once");
    assert_eq!(ids(&read), changed, "exactly the 1050 changed tickets");
    assert!(read.iter().all(|r| r.fields["status"] == "On Hold"));
    let stats = src.read_stats();
    assert!(stats.windows_split >= 1, "the window was split: {stats:?}");
    eprintln!(
        "measured: 1050 changed tickets read with {} searches, {} window splits",
        stats.searches, stats.windows_split
    );
    sb.stop().await;
}
