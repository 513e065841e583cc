//! S3Stage behaviour beyond the conformance suite, checked with the S3 API directly.

mod common;

use aws_sdk_s3::types::ServerSideEncryption;
use bytes::Bytes;
use deskshift_core::ports::Stage;
use futures::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_carry_server_side_encryption() {
    let aws = common::aws().await;
    let stage = aws.s3_stage("job-sse").await;
    stage
        .put("reports/summary.md", Bytes::from_static(b"# Summary"))
        .await
        .expect("put");
    let head = aws
        .s3()
        .head_object()
        .bucket(stage.bucket())
        .key("jobs/job-sse/reports/summary.md")
        .send()
        .await
        .expect("HeadObject of the staged object under jobs/<job>/");
    assert_eq!(
        head.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256),
        "AES256 by default"
    );

    let kms = stage.clone().with_kms(Some("alias/deskshift-stage".into()));
    kms.put("tickets/1.json", Bytes::from_static(b"{}"))
        .await
        .expect("put with KMS");
    let head = aws
        .s3()
        .head_object()
        .bucket(stage.bucket())
        .key("jobs/job-sse/tickets/1.json")
        .send()
        .await
        .expect("HeadObject");
    assert_eq!(
        head.server_side_encryption(),
        Some(&ServerSideEncryption::AwsKms)
    );
    assert!(
        head.ssekms_key_id()
            .is_some_and(|k| k.contains("alias/deskshift-stage")),
        "the KMS key id is recorded: {:?}",
        head.ssekms_key_id()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_live_under_the_job_prefix_and_listing_pages() {
    let aws = common::aws().await;
    let stage = aws.s3_stage("job-list").await;
    // More than one ListObjectsV2 page (1,000 keys).
    let keys: Vec<String> = (0..1_010)
        .map(|i| format!("raw/tickets/{i:05}.json"))
        .collect();
    // 16 at a time, as a phase writes: a thousand connections at once would time out on a
    // loaded 2-core machine (moto's connect backlog), which is not what this test is about.
    futures::stream::iter(&keys)
        .for_each_concurrent(16, |k| async {
            stage
                .put(k, Bytes::from(k.clone().into_bytes()))
                .await
                .expect("put")
        })
        .await;
    let other =
        deskshift_store_aws::S3Stage::new(aws.s3(), stage.bucket(), "job-other").expect("stage");
    other
        .put("raw/tickets/99999.json", Bytes::from_static(b"not mine"))
        .await
        .expect("put");

    assert_eq!(
        stage.list("raw/").await.expect("list"),
        keys,
        "every page is read"
    );
    assert_eq!(
        other.list("").await.expect("list"),
        vec!["raw/tickets/99999.json"]
    );

    let mut raw = Vec::new();
    let mut token = None;
    loop {
        let page = aws
            .s3()
            .list_objects_v2()
            .bucket(stage.bucket())
            .set_continuation_token(token)
            .send()
            .await
            .expect("raw ListObjectsV2");
        raw.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key())
                .map(str::to_string),
        );
        token = page.next_continuation_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(raw.len(), 1_011);
    assert!(
        raw.iter()
            .all(|k| k.starts_with("jobs/job-list/raw/") || k.starts_with("jobs/job-other/"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_is_named_in_the_error() {
    let aws = common::aws().await;
    let stage = deskshift_store_aws::S3Stage::new(aws.s3(), "no-such-bucket-deskshift", "job-1")
        .expect("stage");
    let err = stage
        .put("a.txt", Bytes::from_static(b"x"))
        .await
        .expect_err("no bucket")
        .to_string();
    assert!(
        err.contains("no-such-bucket-deskshift") && err.contains("ensure_bucket"),
        "{err}"
    );
}
