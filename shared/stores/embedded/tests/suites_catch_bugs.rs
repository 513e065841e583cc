//! The conformance suites must fail for implementations with the classic bugs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use deskshift_core::Result;
use deskshift_core::model::ObjectKind;
use deskshift_core::ports::{
    AuditEntry, AuditLog, Checkpoint, Checkpoints, Crosswalk, Link, LinkStatus, Stage,
};
use deskshift_store_embedded::{FileStage, SqliteStore, conformance};

/// A crosswalk whose conditional write checks nothing.
struct UnconditionalPutIf(Arc<SqliteStore>);

#[async_trait]
impl Crosswalk for UnconditionalPutIf {
    async fn get(&self, kind: ObjectKind, source_id: &str) -> Result<Option<Link>> {
        Crosswalk::get(self.0.as_ref(), kind, source_id).await
    }
    async fn get_many(
        &self,
        kind: ObjectKind,
        source_ids: &[String],
    ) -> Result<BTreeMap<String, Link>> {
        self.0.get_many(kind, source_ids).await
    }
    async fn put_batch(&self, links: &[Link]) -> Result<()> {
        self.0.put_batch(links).await
    }
    async fn put_if(&self, link: &Link, _expect: &[Option<LinkStatus>]) -> Result<bool> {
        self.0
            .put_batch(std::slice::from_ref(link))
            .await
            .map(|()| true)
    }
    async fn list(&self, kind: ObjectKind, after: Option<&str>, limit: usize) -> Result<Vec<Link>> {
        Crosswalk::list(self.0.as_ref(), kind, after, limit).await
    }
    async fn counts(&self, kind: ObjectKind) -> Result<BTreeMap<String, u64>> {
        self.0.counts(kind).await
    }
}

#[tokio::test]
#[should_panic(expected = "put_if [None] on a present key must refuse")]
async fn crosswalk_suite_catches_an_unconditional_put_if() {
    let dir = tempfile::tempdir().unwrap();
    conformance::crosswalk_suite(&UnconditionalPutIf(
        SqliteStore::open_in_job(dir.path()).unwrap(),
    ))
    .await;
}

/// Checkpoints listed by a prefix match on the phase (the DynamoDB `begins_with` slip).
#[derive(Default)]
struct PrefixListedCheckpoints(Mutex<BTreeMap<(String, String), Checkpoint>>);

#[async_trait]
impl Checkpoints for PrefixListedCheckpoints {
    async fn get(&self, phase: &str, partition: &str) -> Result<Option<Checkpoint>> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .get(&(phase.to_string(), partition.to_string()))
            .cloned())
    }
    async fn put(&self, c: &Checkpoint) -> Result<()> {
        self.0
            .lock()
            .unwrap()
            .insert((c.phase.clone(), c.partition.clone()), c.clone());
        Ok(())
    }
    async fn list(&self, phase: &str) -> Result<Vec<Checkpoint>> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .values()
            .filter(|c| c.phase.starts_with(phase))
            .cloned()
            .collect())
    }
    async fn clear(&self, phase: &str) -> Result<()> {
        self.0.lock().unwrap().retain(|(p, _), _| p != phase);
        Ok(())
    }
}

#[tokio::test]
#[should_panic(expected = "list returns the phase's checkpoints only")]
async fn checkpoints_suite_catches_prefix_listing() {
    conformance::checkpoints_suite(&PrefixListedCheckpoints::default()).await;
}

/// An audit log that numbers entries from 0.
struct ZeroBasedAudit(Arc<SqliteStore>);

#[async_trait]
impl AuditLog for ZeroBasedAudit {
    async fn append(&self, entries: &[AuditEntry]) -> Result<()> {
        self.0.append(entries).await
    }
    async fn entries(&self, after_seq: u64, limit: usize) -> Result<Vec<(u64, AuditEntry)>> {
        let got = self.0.entries(after_seq + 1, limit).await?;
        Ok(got.into_iter().map(|(s, e)| (s - 1, e)).collect())
    }
}

#[tokio::test]
#[should_panic(expected = "entries round-trip in append order")]
async fn audit_suite_catches_zero_based_sequences() {
    let dir = tempfile::tempdir().unwrap();
    conformance::audit_suite(&ZeroBasedAudit(
        SqliteStore::open_in_job(dir.path()).unwrap(),
    ))
    .await;
}

/// A stage that silently accepts keys with `..` instead of refusing them.
struct CarelessStage(Arc<FileStage>);

#[async_trait]
impl Stage for CarelessStage {
    async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        if key.contains("..") {
            return Ok(());
        }
        self.0.put(key, bytes).await
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.0.get(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.0.list(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.0.delete(key).await
    }
}

#[tokio::test]
#[should_panic(expected = "of bad key \"../escape.txt\" must fail with Error::Store")]
async fn stage_suite_catches_unchecked_keys() {
    let dir = tempfile::tempdir().unwrap();
    conformance::stage_suite(&CarelessStage(FileStage::open(dir.path()).unwrap())).await;
}
