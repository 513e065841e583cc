//! Shared set-up: an emulator per test (moto, or `AWS_ENDPOINT_URL`) and fresh resource names.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_config::SdkConfig;
use deskshift_store_aws::emulator::Emulator;
use deskshift_store_aws::{
    DynamoStore, S3Stage, dynamodb_client, ensure_bucket, ensure_table, s3_client,
};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name no other test (in this run or an earlier one on a shared endpoint) uses.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub struct Aws {
    pub emulator: Emulator,
    pub config: SdkConfig,
}

/// Starts the emulator; panics with how to install moto when it cannot.
pub async fn aws() -> Aws {
    let emulator = Emulator::start().unwrap_or_else(|e| panic!("no local AWS endpoint: {e}"));
    let config = emulator.sdk_config().await;
    Aws { emulator, config }
}

impl Aws {
    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        dynamodb_client(&self.config)
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        s3_client(&self.config)
    }

    /// A fresh table; returns its name.
    pub async fn table(&self) -> String {
        let table = unique("deskshift-state");
        ensure_table(&self.dynamodb(), &table)
            .await
            .unwrap_or_else(|e| panic!("creating table {table}: {e}"));
        table
    }

    /// A store for `job` in a fresh table.
    pub async fn dynamo_store(&self, job: &str) -> DynamoStore {
        let table = self.table().await;
        DynamoStore::new(self.dynamodb(), table, job).expect("store")
    }

    /// A fresh bucket; returns its name (lower case, as S3 requires).
    pub async fn bucket(&self) -> String {
        let bucket = unique("deskshift-stage");
        ensure_bucket(&self.s3(), &bucket)
            .await
            .unwrap_or_else(|e| panic!("creating bucket {bucket}: {e}"));
        bucket
    }

    /// A stage for `job` in a fresh bucket.
    pub async fn s3_stage(&self, job: &str) -> S3Stage {
        let bucket = self.bucket().await;
        S3Stage::new(self.s3(), bucket, job).expect("stage")
    }
}
