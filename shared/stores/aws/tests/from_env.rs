//! The production path: clients configured from the environment (`AWS_ENDPOINT_URL` and friends),
//! as a Lambda function or the CLI builds them. Its own test binary, because it sets this
//! process's environment.

mod common;

use bytes::Bytes;
use deskshift_core::model::ObjectKind;
use deskshift_core::ports::{Crosswalk, LinkStatus, Stage};
use deskshift_store_aws::emulator::Emulator;
use deskshift_store_aws::{DynamoStore, S3Stage, dynamodb_client, ensure_bucket, ensure_table};
use deskshift_store_embedded::conformance::sample_link;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_built_from_the_environment_reach_the_endpoint() {
    let emulator = Emulator::start().unwrap_or_else(|e| panic!("no local AWS endpoint: {e}"));
    for (name, value) in emulator.env() {
        // SAFETY: the only test in this binary, and no other thread reads the environment yet.
        unsafe { std::env::set_var(name, value) };
    }
    let config = deskshift_store_aws::load_sdk_config().await;
    assert_eq!(config.endpoint_url(), Some(emulator.endpoint()));
    let (table, bucket) = (common::unique("env-state"), common::unique("env-stage"));
    ensure_table(&dynamodb_client(&config), &table)
        .await
        .expect("table");
    ensure_bucket(&deskshift_store_aws::s3_client(&config), &bucket)
        .await
        .expect("bucket");

    let store = DynamoStore::from_env(&table, "job-env")
        .await
        .expect("store");
    let link = sample_link(ObjectKind::Ticket, "T-env", LinkStatus::Created);
    assert!(store.put_if(&link, &[None]).await.expect("put_if"));
    assert_eq!(
        Crosswalk::get(&store, ObjectKind::Ticket, "T-env")
            .await
            .expect("get"),
        Some(link)
    );

    // Path-style addressing is what makes this work against a single-host emulator.
    let stage = S3Stage::from_env(&bucket, "job-env").await.expect("stage");
    stage
        .put("reports/summary.md", Bytes::from_static(b"ok"))
        .await
        .expect("put");
    let object = emulator_object(&emulator, &bucket, "jobs/job-env/reports/summary.md").await;
    assert_eq!(object, b"ok");
}

/// Reads an object with a client configured apart from the environment.
async fn emulator_object(emulator: &Emulator, bucket: &str, key: &str) -> Vec<u8> {
    let client = deskshift_store_aws::s3_client(&emulator.sdk_config().await);
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("GetObject");
    out.body
        .collect()
        .await
        .expect("body")
        .into_bytes()
        .to_vec()
}
