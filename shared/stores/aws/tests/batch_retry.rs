//! Retry paths that emulators never take: unprocessed batch items and keys, and throttling
//! errors, driven by mocked DynamoDB responses (no network).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ErrorMetadata;
use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput;
use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemOutput;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::error::ProvisionedThroughputExceededException;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, WriteRequest};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use deskshift_core::Error;
use deskshift_core::model::ObjectKind;
use deskshift_core::ports::{Crosswalk, Link, LinkStatus};
use deskshift_store_aws::DynamoStore;
use deskshift_store_embedded::conformance::sample_link;

const TABLE: &str = "state";

fn sort_key(item: &HashMap<String, AttributeValue>) -> String {
    match item.get("sk") {
        Some(AttributeValue::S(s)) => s.clone(),
        other => panic!("sk is {other:?}"),
    }
}

fn put_keys(requests: &[WriteRequest]) -> Vec<String> {
    requests
        .iter()
        .map(|r| sort_key(&r.put_request.as_ref().expect("a put").item))
        .collect()
}

fn links(n: usize) -> Vec<Link> {
    (0..n)
        .map(|i| {
            sample_link(
                ObjectKind::Ticket,
                &format!("T-{i:03}"),
                LinkStatus::Created,
            )
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn unprocessed_items_are_resent_until_written() {
    let sent: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let log = Arc::clone(&sent);
    let rule = mock!(Client::batch_write_item).then_compute_output(move |input| {
        let requests = input.request_items().expect("items")[TABLE].clone();
        let mut log = log.lock().unwrap();
        log.push(put_keys(&requests));
        // The first full chunk comes back with its first three items unprocessed.
        let unprocessed = if log.len() == 1 && requests.len() == 25 {
            HashMap::from([(TABLE.to_string(), requests[..3].to_vec())])
        } else {
            HashMap::new()
        };
        BatchWriteItemOutput::builder()
            .set_unprocessed_items(Some(unprocessed))
            .build()
    });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, &[&rule]);
    let store = DynamoStore::new(client, TABLE, "job-1").expect("store");

    let batch = links(30);
    store.put_batch(&batch).await.expect("put_batch");

    let sent = sent.lock().unwrap().clone();
    let sizes: Vec<usize> = sent.iter().map(Vec::len).collect();
    assert!(
        sizes.iter().all(|n| *n <= 25),
        "chunks of at most 25: {sizes:?}"
    );
    assert_eq!(
        sizes.iter().sum::<usize>(),
        33,
        "30 items plus 3 resent: {sizes:?}"
    );
    let resent = sent.iter().find(|r| r.len() == 3).expect("a resend of 3");
    assert_eq!(
        resent,
        &sent[0][..3],
        "exactly the unprocessed items are resent"
    );
    let mut written: Vec<String> = sent.concat();
    written.sort();
    written.dedup();
    assert_eq!(
        written,
        batch
            .iter()
            .map(|l| l.source_id.clone())
            .collect::<Vec<_>>()
    );
}

#[tokio::test(start_paused = true)]
async fn items_that_stay_unprocessed_fail_as_throttled() {
    let rule = mock!(Client::batch_write_item).then_compute_output(|input| {
        BatchWriteItemOutput::builder()
            .set_unprocessed_items(input.request_items().cloned())
            .build()
    });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, &[&rule]);
    let store = DynamoStore::new(client, TABLE, "job-1").expect("store");
    let err = store.put_batch(&links(5)).await.expect_err("never written");
    assert!(
        matches!(err, Error::Throttled { attempts: 10, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.name(),
        "Throttled",
        "Step Functions can retry it by name"
    );
    let text = err.to_string();
    assert!(
        text.contains("table state") && text.contains("5 items"),
        "{text}"
    );
    assert_eq!(rule.num_calls(), 10);
}

#[tokio::test(start_paused = true)]
async fn unprocessed_keys_are_read_again() {
    let rule = mock!(Client::batch_get_item).then_compute_output(|input| {
        let keys = input.request_items().expect("keys")[TABLE].keys().to_vec();
        // Answer the first key of each request; leave the rest unprocessed.
        let (first, rest) = keys.split_first().expect("a key");
        let mut item = first.clone();
        let id = sort_key(first);
        for (name, value) in [
            ("kind", "ticket".to_string()),
            ("source_id", id.clone()),
            ("status", "created".to_string()),
            ("payload_hash", format!("ph-{id}")),
            ("updated_at", "2026-03-01T10:00:00Z".to_string()),
        ] {
            item.insert(name.to_string(), AttributeValue::S(value));
        }
        let mut out = BatchGetItemOutput::builder().responses(TABLE, vec![item]);
        if !rest.is_empty() {
            out = out.unprocessed_keys(
                TABLE,
                KeysAndAttributes::builder()
                    .set_keys(Some(rest.to_vec()))
                    .build()
                    .expect("keys"),
            );
        }
        out.build()
    });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, &[&rule]);
    let store = DynamoStore::new(client, TABLE, "job-1").expect("store");
    let ids: Vec<String> = (0..4).map(|i| format!("T-{i}")).collect();
    let got = store
        .get_many(ObjectKind::Ticket, &ids)
        .await
        .expect("get_many");
    assert_eq!(got.keys().cloned().collect::<Vec<_>>(), ids);
    assert_eq!(rule.num_calls(), 4, "one round per unprocessed remainder");
}

#[tokio::test(start_paused = true)]
async fn throttling_surfaces_as_throttled_with_the_record_named() {
    let rule = mock!(Client::put_item).then_error(|| {
        PutItemError::ProvisionedThroughputExceededException(
            ProvisionedThroughputExceededException::builder()
                .message("Rate of requests exceeds the allowed throughput")
                // Parsed from the response's error type on the wire.
                .meta(
                    ErrorMetadata::builder()
                        .code("ProvisionedThroughputExceededException")
                        .message("Rate of requests exceeds the allowed throughput")
                        .build(),
                )
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, &[&rule]);
    let store = DynamoStore::new(client, TABLE, "job-1").expect("store");
    let link = sample_link(ObjectKind::Contact, "C-7", LinkStatus::Pending);
    let err = store.put_if(&link, &[None]).await.expect_err("throttled");
    assert_eq!(err.name(), "Throttled", "{err:?}");
    assert!(err.is_transient());
    let text = err.to_string();
    assert!(
        text.contains("contact C-7") && text.contains("table state"),
        "{text}"
    );
}
