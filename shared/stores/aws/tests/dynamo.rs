//! DynamoStore behaviour beyond the conformance suites, checked by reading the table directly.

mod common;

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use deskshift_core::model::ObjectKind;
use deskshift_core::ports::{
    AuditEntry, AuditLog, AuditOp, Checkpoint, Checkpoints, Crosswalk, Link, LinkStatus,
};
use deskshift_store_aws::DynamoStore;
use deskshift_store_embedded::conformance::sample_link;

type Item = HashMap<String, AttributeValue>;

async fn raw_get(store: &DynamoStore, pk: &str, sk: &str) -> Option<Item> {
    store
        .client()
        .get_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", AttributeValue::S(sk.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("raw GetItem")
        .item
}

/// Every item of a partition, read with the SDK (not through the store).
async fn raw_partition(store: &DynamoStore, pk: &str) -> Vec<Item> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page = store
            .client()
            .query()
            .table_name(store.table())
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk.into()))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("raw Query");
        out.extend(page.items.unwrap_or_default());
        start = page.last_evaluated_key;
        if start.is_none() {
            return out;
        }
    }
}

fn s(item: &Item, name: &str) -> String {
    match item.get(name) {
        Some(AttributeValue::S(v)) => v.clone(),
        other => panic!("attribute {name} is {other:?} in {item:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_put_if_from_many_tasks_has_exactly_one_winner() {
    let aws = common::aws().await;
    let store = aws.dynamo_store("job-race").await;
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let link = Link {
                    dest_id: Some(format!("dest-from-task-{i}")),
                    ..sample_link(ObjectKind::Ticket, "T-race", LinkStatus::Pending)
                };
                store.put_if(&link, &[None]).await.expect("put_if")
            })
        })
        .collect();
    let mut winners = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        if task.await.expect("task") {
            winners.push(i);
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one task must win, got {winners:?}"
    );
    let item = raw_get(&store, "JOB#job-race#XW#ticket", "T-race")
        .await
        .expect("the winner's item is in the table");
    assert_eq!(
        s(&item, "dest_id"),
        format!("dest-from-task-{}", winners[0])
    );
    assert_eq!(s(&item, "status"), "pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_60_is_written_and_listed_back() {
    let aws = common::aws().await;
    let store = aws.dynamo_store("job-batch").await;
    let links: Vec<Link> = (0..60)
        .map(|i| {
            sample_link(
                ObjectKind::Contact,
                &format!("C-{i:03}"),
                LinkStatus::Created,
            )
        })
        .collect();
    store.put_batch(&links).await.expect("put_batch of 60");

    let items = raw_partition(&store, "JOB#job-batch#XW#contact").await;
    let stored: BTreeSet<String> = items.iter().map(|i| s(i, "sk")).collect();
    let wanted: BTreeSet<String> = links.iter().map(|l| l.source_id.clone()).collect();
    assert_eq!(
        stored, wanted,
        "all 60 items are in the table, under the kind's partition"
    );

    let listed = Crosswalk::list(&store, ObjectKind::Contact, None, 100)
        .await
        .expect("list");
    assert_eq!(
        listed, links,
        "list gives back the 60 entries in source-id order"
    );
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = Crosswalk::list(&store, ObjectKind::Contact, after.as_deref(), 25)
            .await
            .expect("list page");
        let Some(last) = page.last() else { break };
        after = Some(last.source_id.clone());
        paged.extend(page);
    }
    assert_eq!(paged, links, "pages of 25 cover the batch once");
    let counts = store.counts(ObjectKind::Contact).await.expect("counts");
    assert_eq!(counts.get("created"), Some(&60));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_sequence_strictly_increases_under_concurrency() {
    let aws = common::aws().await;
    let store = aws.dynamo_store("job-audit-race").await;
    let entry = |task: usize, i: usize| AuditEntry {
        at: "2026-03-01T10:00:00Z".into(),
        op: AuditOp::Create,
        kind: ObjectKind::Ticket,
        source_id: format!("t{task:02}-{i:02}"),
        dest_id: Some(format!("d{task}-{i}")),
        outcome: "ok".into(),
        payload_hash: format!("ph-{task}-{i}"),
    };
    // moto creates a missing counter item non-atomically (concurrent first ADDs overwrite each
    // other); DynamoDB does not, so the counter is made to exist before the race.
    store.append(&[entry(99, 0)]).await.expect("first append");
    let tasks: Vec<_> = (0..12)
        .map(|task| {
            let store = store.clone();
            tokio::spawn(async move {
                // Each task appends three small batches, so appends interleave.
                for chunk in 0..3 {
                    let batch: Vec<AuditEntry> =
                        (chunk * 4..chunk * 4 + 4).map(|i| entry(task, i)).collect();
                    store.append(&batch).await.expect("append");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }

    let all = store.entries(0, 10_000).await.expect("entries");
    let (first, all) = all.split_first().expect("entries");
    assert_eq!(first.0, 1, "the first append got sequence number 1");
    assert_eq!(all.len(), 12 * 12, "every appended entry is there once");
    assert!(
        all.windows(2).all(|w| w[0].0 < w[1].0),
        "sequence numbers strictly increase: {:?}",
        all.iter().map(|e| e.0).collect::<Vec<_>>()
    );
    for task in 0..12 {
        let mine: Vec<String> = all
            .iter()
            .filter(|(_, e)| e.source_id.starts_with(&format!("t{task:02}-")))
            .map(|(_, e)| e.source_id.clone())
            .collect();
        let wanted: Vec<String> = (0..12).map(|i| format!("t{task:02}-{i:02}")).collect();
        assert_eq!(mine, wanted, "a task's entries keep their order");
    }

    // The table itself holds exactly those items, keyed by the documented sequence sort key,
    // and the counter item holds the last number handed out.
    let items = raw_partition(&store, "JOB#job-audit-race#AUDIT#0").await;
    let seqs: Vec<u64> = items
        .iter()
        .map(|i| s(i, "sk").parse().expect("numeric sk"))
        .collect();
    assert_eq!(
        seqs,
        (1..=145).collect::<Vec<u64>>(),
        "one item per sequence number, none overwritten"
    );
    assert!(
        items.iter().all(|i| s(i, "sk").len() == 20),
        "sk is zero-padded to 20 digits"
    );
    let counter = raw_get(&store, "JOB#job-audit-race#AUDIT", "COUNTER")
        .await
        .expect("counter item");
    assert_eq!(
        counter.get("last_seq"),
        Some(&AttributeValue::N("145".into())),
        "one atomic counter hands out every number"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absent_optional_fields_are_left_out_of_the_item() {
    let aws = common::aws().await;
    let store = aws.dynamo_store("job-items").await;
    let failed = sample_link(ObjectKind::Ticket, "T-1", LinkStatus::Failed);
    assert!(failed.dest_id.is_none());
    store.put_if(&failed, &[None]).await.expect("put_if");
    let item = raw_get(&store, "JOB#job-items#XW#ticket", "T-1")
        .await
        .expect("item");
    assert!(
        item.values().all(|v| !matches!(v, AttributeValue::Null(_))),
        "no NULL attributes: {item:?}"
    );
    assert!(!item.contains_key("dest_id") && !item.contains_key("dest_hash"));
    assert_eq!(s(&item, "reason"), failed.reason.clone().expect("reason"));

    store
        .put(&Checkpoint {
            phase: "extract".into(),
            partition: "tickets".into(),
            cursor: None,
            done: true,
            updated_at: "2026-03-01T10:00:00Z".into(),
        })
        .await
        .expect("checkpoint");
    let item = raw_get(&store, "JOB#job-items#CP#extract", "tickets")
        .await
        .expect("item");
    assert!(!item.contains_key("cursor"), "{item:?}");
    assert_eq!(item.get("done"), Some(&AttributeValue::Bool(true)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_and_job_ids_are_refused_with_their_names() {
    let aws = common::aws().await;
    let store = aws.dynamo_store("job-keys").await;
    let err = Crosswalk::get(&store, ObjectKind::Ticket, "")
        .await
        .expect_err("an empty source id cannot be a key")
        .to_string();
    assert!(err.contains("source id") && err.contains("ticket"), "{err}");
    let err = Checkpoints::get(&store, "load", "")
        .await
        .expect_err("an empty partition cannot be a key")
        .to_string();
    assert!(err.contains("partition") && err.contains("load"), "{err}");
    let long = "x".repeat(1025);
    let err = store
        .put_if(
            &sample_link(ObjectKind::Ticket, &long, LinkStatus::Pending),
            &[None],
        )
        .await
        .expect_err("a source id over 1024 bytes cannot be a sort key")
        .to_string();
    assert!(err.contains("1025 bytes"), "{err}");

    let err = DynamoStore::new(aws.dynamodb(), store.table(), "a#XW#b")
        .expect_err("a job id with # would collide with the key layout")
        .to_string();
    assert!(err.contains("job id"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_is_named_in_the_error() {
    let aws = common::aws().await;
    let store = DynamoStore::new(aws.dynamodb(), "no-such-table", "job-1").expect("store");
    let err = Crosswalk::get(&store, ObjectKind::Ticket, "T-1")
        .await
        .expect_err("no table")
        .to_string();
    assert!(
        err.contains("no-such-table") && err.contains("ensure_table"),
        "{err}"
    );
}
