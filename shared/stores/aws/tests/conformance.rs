//! The embedded stores' conformance suites, unchanged, against DynamoDB and S3 on the emulator.

mod common;

use deskshift_store_aws::{DynamoStore, S3Stage};
use deskshift_store_embedded::conformance;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamo_crosswalk_conforms() {
    let aws = common::aws().await;
    let store = aws.dynamo_store("job-xw").await;
    conformance::crosswalk_suite(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamo_checkpoints_conform() {
    let aws = common::aws().await;
    let store = aws.dynamo_store("job-cp").await;
    conformance::checkpoints_suite(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamo_audit_conforms() {
    let aws = common::aws().await;
    let store = aws.dynamo_store("job-audit").await;
    conformance::audit_suite(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_stage_conforms() {
    let aws = common::aws().await;
    let stage = aws.s3_stage("job-stage").await;
    conformance::stage_suite(&stage).await;
}

/// Jobs share a table and a bucket: two jobs run every suite at the same time on one table and
/// one bucket, and each sees only its own data (every suite starts by asserting it is empty).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_jobs_sharing_a_table_and_a_bucket_conform_side_by_side() {
    let aws = common::aws().await;
    let (table, bucket) = (aws.table().await, aws.bucket().await);
    let job = |id: &str| {
        (
            DynamoStore::new(aws.dynamodb(), &table, id).expect("store"),
            S3Stage::new(aws.s3(), &bucket, id).expect("stage"),
        )
    };
    let (a, b) = (job("job-a"), job("job-b"));
    tokio::join!(every_suite(&a.0, &a.1), every_suite(&b.0, &b.1));
}

async fn every_suite(store: &DynamoStore, stage: &S3Stage) {
    conformance::crosswalk_suite(store).await;
    conformance::checkpoints_suite(store).await;
    conformance::audit_suite(store).await;
    conformance::stage_suite(stage).await;
}
