//! `DynamoStore`: the crosswalk, checkpoints and audit log of one job in a DynamoDB table that
//! many jobs share.
//!
//! # Key design (also in `KEYS.md`)
//! One table, string partition key `pk` and string sort key `sk`, on-demand capacity. `<job>` is
//! the job id (checked by [`crate::validate_job_id`], so it never contains `#`).
//!
//! | item | `pk` | `sk` | other attributes |
//! |---|---|---|---|
//! | crosswalk entry | `JOB#<job>#XW#<kind>` | `<source_id>` | `kind`, `source_id`, `status`, `payload_hash`, `updated_at`, and when set `dest_id`, `dest_hash`, `reason` |
//! | checkpoint | `JOB#<job>#CP#<phase>` | `<partition>` | `phase`, `partition`, `done`, `updated_at`, and when set `cursor` |
//! | audit counter | `JOB#<job>#AUDIT` | `COUNTER` | `last_seq` (N): the last sequence number handed out |
//! | audit entry | `JOB#<job>#AUDIT#<seq / 10000>` | `<seq>` as 20 zero-padded digits | `seq` (N), `at`, `op`, `kind`, `source_id`, `outcome`, `payload_hash`, and when set `dest_id` |
//!
//! - A key is (kind, source id): `get`/`put_if` are single-item operations; `list` is a Query
//!   on the kind's partition in sort-key order, which DynamoDB keeps as UTF-8 byte order, the
//!   same order the embedded store uses; `counts` is the same Query projecting `status` only.
//! - `put_if` is one conditional PutItem: `attribute_not_exists(pk)` for an expected absent key,
//!   `#status IN (...)` for expected statuses, joined with `OR`.
//! - `put_batch` and checkpoint `clear` use BatchWriteItem in chunks of 25, retrying
//!   `UnprocessedItems` with backoff; `get_many` uses BatchGetItem in chunks of 100.
//! - An audit append reserves its sequence numbers with one atomic `UpdateItem ADD` on the
//!   counter, then writes the entries; the entry partitions hold 10,000 entries each so no single
//!   partition grows without bound. A reader that runs while an append is in flight may see a
//!   later append's entries before an earlier one's; a crash between the reservation and the
//!   write leaves unused numbers. Sequence numbers are therefore unique and increasing, not
//!   contiguous.
//! - Absent optional fields are left out of the item (never stored as NULL).
//! - Every read is strongly consistent, so a write is visible to the next call.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, DeleteRequest, KeySchemaElement, KeyType,
    KeysAndAttributes, PutRequest, ReturnValue, ScalarAttributeType, TableStatus, WriteRequest,
};
use deskshift_core::model::ObjectKind;
use deskshift_core::ports::{
    AuditEntry, AuditLog, AuditOp, Checkpoint, Checkpoints, Crosswalk, Link, LinkStatus,
};
use deskshift_core::{Error, Result};
use futures::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};

use crate::errors::{build_error, sdk_error};

/// Name of the partition key attribute (type S).
pub const PARTITION_KEY: &str = "pk";
/// Name of the sort key attribute (type S).
pub const SORT_KEY: &str = "sk";
/// Audit entries per audit partition.
pub const AUDIT_BUCKET_SIZE: u64 = 10_000;

const BATCH_WRITE_MAX: usize = 25;
const BATCH_GET_MAX: usize = 100;
/// Batch requests in flight at once for one call.
const BATCH_CONCURRENCY: usize = 4;
/// Rounds of resending unprocessed items before the call fails as throttled.
const BATCH_ATTEMPTS: u32 = 10;
/// DynamoDB's limits on key attribute sizes, in UTF-8 bytes.
const MAX_SORT_KEY_BYTES: usize = 1024;
const MAX_PARTITION_KEY_BYTES: usize = 2048;
const SERVICE: &str = "DynamoDB";

type Item = HashMap<String, AttributeValue>;

/// Crosswalk, checkpoints and audit log of one job in a shared DynamoDB table (see the module
/// documentation for the key design). Cloning is cheap; clones share the client.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: Arc<str>,
    job: Arc<str>,
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore")
            .field("table", &self.table)
            .field("job", &self.job)
            .finish_non_exhaustive()
    }
}

impl DynamoStore {
    /// A store for `job` in `table`; fails if the job id cannot be part of a key.
    pub fn new(client: Client, table: impl Into<String>, job: impl Into<String>) -> Result<Self> {
        let (table, job) = (table.into(), job.into());
        crate::validate_job_id(&job)?;
        if table.is_empty() {
            return Err(Error::Config(
                "the DynamoDB table name is empty: set it to the state table the stack created"
                    .into(),
            ));
        }
        Ok(DynamoStore {
            client,
            table: table.into(),
            job: job.into(),
        })
    }

    /// A store whose client is configured from the environment (see [`crate::load_sdk_config`]).
    pub async fn from_env(table: impl Into<String>, job: impl Into<String>) -> Result<Self> {
        let config = crate::load_sdk_config().await;
        DynamoStore::new(Client::new(&config), table, job)
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn job(&self) -> &str {
        &self.job
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn crosswalk_pk(&self, kind: ObjectKind) -> String {
        format!("JOB#{}#XW#{}", self.job, kind.as_str())
    }

    fn checkpoint_pk(&self, phase: &str) -> String {
        format!("JOB#{}#CP#{phase}", self.job)
    }

    fn audit_counter_key(&self) -> Item {
        key(format!("JOB#{}#AUDIT", self.job), "COUNTER".to_string())
    }

    fn audit_pk(&self, seq: u64) -> String {
        format!("JOB#{}#AUDIT#{}", self.job, seq / AUDIT_BUCKET_SIZE)
    }

    fn err<E, R>(&self, op: &str, context: &str, e: SdkError<E, R>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        let what = format!("{op} on table {} ({context}, job {})", self.table, self.job);
        sdk_error(SERVICE, &what, e)
    }

    async fn get_item(&self, key: Item, context: &str) -> Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&*self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.err("GetItem", context, e))?;
        Ok(out.item)
    }

    /// Every item of one partition (optionally after a sort key), in sort-key order, at most
    /// `limit`, projecting `projection` when given.
    async fn query(
        &self,
        pk: &str,
        after: Option<&str>,
        limit: Option<usize>,
        projection: Option<&str>,
        context: &str,
    ) -> Result<Vec<Item>> {
        let mut out: Vec<Item> = Vec::new();
        let mut start: Option<Item> = None;
        // An empty `after` sorts before every stored key (keys are never empty).
        let after = after.filter(|a| !a.is_empty());
        loop {
            let remaining = limit.map(|l| l - out.len());
            let mut q = self
                .client
                .query()
                .table_name(&*self.table)
                .consistent_read(true)
                .expression_attribute_names("#pk", PARTITION_KEY)
                .expression_attribute_values(":pk", AttributeValue::S(pk.to_string()))
                .set_exclusive_start_key(start.take());
            q = match after {
                Some(after) => q
                    .key_condition_expression("#pk = :pk AND #sk > :after")
                    .expression_attribute_names("#sk", SORT_KEY)
                    .expression_attribute_values(":after", AttributeValue::S(after.to_string())),
                None => q.key_condition_expression("#pk = :pk"),
            };
            if let Some(remaining) = remaining {
                q = q.limit(i32::try_from(remaining).unwrap_or(i32::MAX));
            }
            if let Some(projection) = projection {
                q = q.projection_expression(projection);
                if projection.contains("#status") {
                    q = q.expression_attribute_names("#status", "status");
                }
            }
            let page = q.send().await.map_err(|e| self.err("Query", context, e))?;
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(last) if limit.is_none_or(|l| out.len() < l) => start = Some(last),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Sends write requests in chunks of 25 (a few chunks at once), resending unprocessed items
    /// with backoff. Requests must have distinct keys.
    async fn batch_write(&self, requests: Vec<WriteRequest>, context: &str) -> Result<()> {
        let chunks: Vec<Vec<WriteRequest>> = requests
            .chunks(BATCH_WRITE_MAX)
            .map(<[WriteRequest]>::to_vec)
            .collect();
        stream::iter(chunks)
            .map(|chunk| self.write_chunk(chunk, context))
            .buffer_unordered(BATCH_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    async fn write_chunk(&self, mut chunk: Vec<WriteRequest>, context: &str) -> Result<()> {
        for attempt in 1..=BATCH_ATTEMPTS {
            let out = self
                .client
                .batch_write_item()
                .request_items(&*self.table, chunk)
                .send()
                .await
                .map_err(|e| self.err("BatchWriteItem", context, e))?;
            chunk = out
                .unprocessed_items
                .and_then(|mut u| u.remove(&*self.table))
                .unwrap_or_default();
            if chunk.is_empty() {
                return Ok(());
            }
            tracing::debug!(
                table = %self.table,
                unprocessed = chunk.len(),
                attempt,
                "resending unprocessed items ({context})"
            );
            tokio::time::sleep(backoff(attempt)).await;
        }
        Err(Error::Throttled {
            platform: SERVICE.into(),
            endpoint: format!("BatchWriteItem on table {} ({context})", self.table),
            attempts: BATCH_ATTEMPTS,
            message: format!(
                "{} items were still unprocessed; raise the table's write capacity or lower the \
                 load concurrency, then resume the job",
                chunk.len()
            ),
            retry_after: None,
        })
    }

    /// Reads keys in chunks of 100 with BatchGetItem, resending unprocessed keys with backoff.
    async fn batch_get(&self, keys: Vec<Item>, context: &str) -> Result<Vec<Item>> {
        let chunks: Vec<Vec<Item>> = keys.chunks(BATCH_GET_MAX).map(<[Item]>::to_vec).collect();
        let pages: Vec<Vec<Item>> = stream::iter(chunks)
            .map(|chunk| self.get_chunk(chunk, context))
            .buffer_unordered(BATCH_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(pages.into_iter().flatten().collect())
    }

    async fn get_chunk(&self, mut chunk: Vec<Item>, context: &str) -> Result<Vec<Item>> {
        let mut found = Vec::new();
        for attempt in 1..=BATCH_ATTEMPTS {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(chunk))
                .consistent_read(true)
                .build()
                .map_err(|e| build_error(context, e))?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&*self.table, request)
                .send()
                .await
                .map_err(|e| self.err("BatchGetItem", context, e))?;
            if let Some(items) = out.responses.and_then(|mut r| r.remove(&*self.table)) {
                found.extend(items);
            }
            chunk = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&*self.table))
                .map(|k| k.keys)
                .unwrap_or_default();
            if chunk.is_empty() {
                return Ok(found);
            }
            tracing::debug!(
                table = %self.table,
                unprocessed = chunk.len(),
                attempt,
                "reading unprocessed keys again ({context})"
            );
            tokio::time::sleep(backoff(attempt)).await;
        }
        Err(Error::Throttled {
            platform: SERVICE.into(),
            endpoint: format!("BatchGetItem on table {} ({context})", self.table),
            attempts: BATCH_ATTEMPTS,
            message: format!(
                "{} keys were still unprocessed; raise the table's read capacity, then resume \
                 the job",
                chunk.len()
            ),
            retry_after: None,
        })
    }
}

/// Exponential backoff from 50 ms, capped at 5 s, with full jitter.
fn backoff(attempt: u32) -> Duration {
    let cap = (50u64 << attempt.min(7)).min(5_000);
    let random = RandomState::new().hash_one(attempt);
    Duration::from_millis(cap / 2 + random % (cap / 2 + 1))
}

fn key(pk: String, sk: String) -> Item {
    HashMap::from([
        (PARTITION_KEY.to_string(), AttributeValue::S(pk)),
        (SORT_KEY.to_string(), AttributeValue::S(sk)),
    ])
}

fn check_key_part(what: &str, value: &str, max: usize) -> Result<()> {
    if value.is_empty() {
        return Err(Error::Store(format!(
            "{what} is empty; DynamoDB keys cannot be empty, so give it a value"
        )));
    }
    if value.len() > max {
        return Err(Error::Store(format!(
            "{what} is {} bytes long; DynamoDB accepts at most {max} bytes in this key part, so \
             shorten it",
            value.len()
        )));
    }
    Ok(())
}

fn to_item<T: Serialize>(value: &T, context: &str) -> Result<Item> {
    serde_dynamo::to_item(value).map_err(|e| {
        Error::Store(format!(
            "cannot encode {context} as a DynamoDB item: {e}; this is a deskshift bug, please \
             report it"
        ))
    })
}

fn from_item<T: for<'de> Deserialize<'de>>(item: Item, table: &str, context: &str) -> Result<T> {
    serde_dynamo::from_item(item).map_err(|e| {
        Error::Store(format!(
            "table {table}: {context} cannot be read: {e}; the item was probably written by \
             another deskshift version or edited by hand: upgrade deskshift or fix the item"
        ))
    })
}

fn put_request(item: Item, context: &str) -> Result<WriteRequest> {
    let put = PutRequest::builder()
        .set_item(Some(item))
        .build()
        .map_err(|e| build_error(context, e))?;
    Ok(WriteRequest::builder().put_request(put).build())
}

fn delete_request(key: Item, context: &str) -> Result<WriteRequest> {
    let delete = DeleteRequest::builder()
        .set_key(Some(key))
        .build()
        .map_err(|e| build_error(context, e))?;
    Ok(WriteRequest::builder().delete_request(delete).build())
}

// ---------------------------------------------------------------------------------------------
// Crosswalk

#[derive(Serialize, Deserialize)]
struct LinkItem {
    pk: String,
    sk: String,
    kind: ObjectKind,
    source_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dest_id: Option<String>,
    status: LinkStatus,
    payload_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dest_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    updated_at: String,
}

impl From<LinkItem> for Link {
    fn from(i: LinkItem) -> Link {
        Link {
            kind: i.kind,
            source_id: i.source_id,
            dest_id: i.dest_id,
            status: i.status,
            payload_hash: i.payload_hash,
            dest_hash: i.dest_hash,
            reason: i.reason,
            updated_at: i.updated_at,
        }
    }
}

impl DynamoStore {
    fn link_key(&self, kind: ObjectKind, source_id: &str) -> Result<Item> {
        check_key_part(
            &format!("the source id of crosswalk entry {kind} {source_id:?}"),
            source_id,
            MAX_SORT_KEY_BYTES,
        )?;
        Ok(key(self.crosswalk_pk(kind), source_id.to_string()))
    }

    fn link_item(&self, link: &Link) -> Result<Item> {
        self.link_key(link.kind, &link.source_id)?;
        let item = LinkItem {
            pk: self.crosswalk_pk(link.kind),
            sk: link.source_id.clone(),
            kind: link.kind,
            source_id: link.source_id.clone(),
            dest_id: link.dest_id.clone(),
            status: link.status,
            payload_hash: link.payload_hash.clone(),
            dest_hash: link.dest_hash.clone(),
            reason: link.reason.clone(),
            updated_at: link.updated_at.clone(),
        };
        to_item(
            &item,
            &format!("crosswalk entry {} {}", link.kind, link.source_id),
        )
    }

    fn decode_link(&self, item: Item) -> Result<Link> {
        let name = describe_item(&item);
        Ok(from_item::<LinkItem>(item, &self.table, &format!("crosswalk entry {name}"))?.into())
    }
}

fn describe_item(item: &Item) -> String {
    let part = |k: &str| match item.get(k) {
        Some(AttributeValue::S(s)) => s.clone(),
        _ => "?".to_string(),
    };
    format!("{}/{}", part(PARTITION_KEY), part(SORT_KEY))
}

#[async_trait]
impl Crosswalk for DynamoStore {
    async fn get(&self, kind: ObjectKind, source_id: &str) -> Result<Option<Link>> {
        let key = self.link_key(kind, source_id)?;
        let context = format!("crosswalk entry {kind} {source_id}");
        match self.get_item(key, &context).await? {
            Some(item) => Ok(Some(self.decode_link(item)?)),
            None => Ok(None),
        }
    }

    async fn get_many(
        &self,
        kind: ObjectKind,
        source_ids: &[String],
    ) -> Result<BTreeMap<String, Link>> {
        // BatchGetItem refuses a request that names one key twice.
        let distinct: BTreeSet<&String> = source_ids.iter().collect();
        let keys = distinct
            .iter()
            .map(|id| self.link_key(kind, id))
            .collect::<Result<Vec<_>>>()?;
        let context = format!("{} crosswalk entries of kind {kind}", keys.len());
        let items = self.batch_get(keys, &context).await?;
        let mut out = BTreeMap::new();
        for item in items {
            let link = self.decode_link(item)?;
            out.insert(link.source_id.clone(), link);
        }
        Ok(out)
    }

    async fn put_batch(&self, links: &[Link]) -> Result<()> {
        // BatchWriteItem refuses a request that names one key twice: keep each key's last entry.
        let mut last: BTreeMap<(ObjectKind, &str), &Link> = BTreeMap::new();
        for link in links {
            last.insert((link.kind, link.source_id.as_str()), link);
        }
        let requests = last
            .values()
            .map(|link| {
                let context = format!("crosswalk entry {} {}", link.kind, link.source_id);
                put_request(self.link_item(link)?, &context)
            })
            .collect::<Result<Vec<_>>>()?;
        let context = format!("{} crosswalk entries", requests.len());
        self.batch_write(requests, &context).await
    }

    async fn put_if(&self, link: &Link, expect: &[Option<LinkStatus>]) -> Result<bool> {
        if expect.is_empty() {
            return Ok(false);
        }
        let item = self.link_item(link)?;
        let mut conditions = Vec::new();
        if expect.contains(&None) {
            conditions.push(format!("attribute_not_exists({PARTITION_KEY})"));
        }
        let statuses: BTreeSet<&'static str> =
            expect.iter().flatten().map(|s| s.as_str()).collect();
        let mut request = self
            .client
            .put_item()
            .table_name(&*self.table)
            .set_item(Some(item));
        if !statuses.is_empty() {
            let placeholders: Vec<String> = (0..statuses.len()).map(|i| format!(":s{i}")).collect();
            conditions.push(format!("#status IN ({})", placeholders.join(", ")));
            request = request.expression_attribute_names("#status", "status");
            for (placeholder, status) in placeholders.iter().zip(&statuses) {
                request = request.expression_attribute_values(
                    placeholder,
                    AttributeValue::S(status.to_string()),
                );
            }
        }
        let result = request
            .condition_expression(conditions.join(" OR "))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(self.err(
                "PutItem",
                &format!("crosswalk entry {} {}", link.kind, link.source_id),
                e,
            )),
        }
    }

    async fn list(&self, kind: ObjectKind, after: Option<&str>, limit: usize) -> Result<Vec<Link>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let context = format!("listing crosswalk entries of kind {kind}");
        let items = self
            .query(&self.crosswalk_pk(kind), after, Some(limit), None, &context)
            .await?;
        items.into_iter().map(|i| self.decode_link(i)).collect()
    }

    async fn counts(&self, kind: ObjectKind) -> Result<BTreeMap<String, u64>> {
        let context = format!("counting crosswalk entries of kind {kind}");
        let items = self
            .query(
                &self.crosswalk_pk(kind),
                None,
                None,
                Some("#status"),
                &context,
            )
            .await?;
        let mut out = BTreeMap::new();
        for item in items {
            let status = match item.get("status") {
                Some(AttributeValue::S(s)) if LinkStatus::parse(s).is_some() => s.clone(),
                other => {
                    return Err(Error::Store(format!(
                        "table {}: a crosswalk entry of kind {kind} has the status {other:?}, \
                         which this deskshift does not know; upgrade deskshift or fix the item",
                        self.table
                    )));
                }
            };
            *out.entry(status).or_insert(0) += 1;
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

#[derive(Serialize, Deserialize)]
struct CheckpointItem {
    pk: String,
    sk: String,
    phase: String,
    partition: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
    done: bool,
    updated_at: String,
}

impl DynamoStore {
    fn checkpoint_key(&self, phase: &str, partition: &str) -> Result<Item> {
        let pk = self.checkpoint_pk(phase);
        check_key_part(
            &format!("the phase name of checkpoint {phase:?}/{partition:?}"),
            phase,
            MAX_PARTITION_KEY_BYTES - (pk.len() - phase.len()),
        )?;
        check_key_part(
            &format!("the partition name of checkpoint {phase:?}/{partition:?}"),
            partition,
            MAX_SORT_KEY_BYTES,
        )?;
        Ok(key(pk, partition.to_string()))
    }

    fn decode_checkpoint(&self, item: Item) -> Result<Checkpoint> {
        let name = describe_item(&item);
        let i: CheckpointItem = from_item(item, &self.table, &format!("checkpoint {name}"))?;
        Ok(Checkpoint {
            phase: i.phase,
            partition: i.partition,
            cursor: i.cursor,
            done: i.done,
            updated_at: i.updated_at,
        })
    }
}

#[async_trait]
impl Checkpoints for DynamoStore {
    async fn get(&self, phase: &str, partition: &str) -> Result<Option<Checkpoint>> {
        let key = self.checkpoint_key(phase, partition)?;
        let context = format!("checkpoint {phase}/{partition}");
        match self.get_item(key, &context).await? {
            Some(item) => Ok(Some(self.decode_checkpoint(item)?)),
            None => Ok(None),
        }
    }

    async fn put(&self, c: &Checkpoint) -> Result<()> {
        self.checkpoint_key(&c.phase, &c.partition)?;
        let context = format!("checkpoint {}/{}", c.phase, c.partition);
        let item = to_item(
            &CheckpointItem {
                pk: self.checkpoint_pk(&c.phase),
                sk: c.partition.clone(),
                phase: c.phase.clone(),
                partition: c.partition.clone(),
                cursor: c.cursor.clone(),
                done: c.done,
                updated_at: c.updated_at.clone(),
            },
            &context,
        )?;
        self.client
            .put_item()
            .table_name(&*self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| self.err("PutItem", &context, e))?;
        Ok(())
    }

    async fn list(&self, phase: &str) -> Result<Vec<Checkpoint>> {
        let context = format!("listing the checkpoints of phase {phase}");
        let items = self
            .query(&self.checkpoint_pk(phase), None, None, None, &context)
            .await?;
        items
            .into_iter()
            .map(|i| self.decode_checkpoint(i))
            .collect()
    }

    async fn clear(&self, phase: &str) -> Result<()> {
        let context = format!("clearing the checkpoints of phase {phase}");
        let projection = format!("{PARTITION_KEY}, {SORT_KEY}");
        let keys = self
            .query(
                &self.checkpoint_pk(phase),
                None,
                None,
                Some(&projection),
                &context,
            )
            .await?;
        let requests = keys
            .into_iter()
            .map(|k| delete_request(k, &context))
            .collect::<Result<Vec<_>>>()?;
        self.batch_write(requests, &context).await
    }
}

// ---------------------------------------------------------------------------------------------
// Audit log

#[derive(Serialize, Deserialize)]
struct AuditItem {
    pk: String,
    sk: String,
    seq: u64,
    at: String,
    op: AuditOp,
    kind: ObjectKind,
    source_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dest_id: Option<String>,
    outcome: String,
    payload_hash: String,
}

fn seq_sort_key(seq: u64) -> String {
    format!("{seq:020}")
}

impl DynamoStore {
    /// The last sequence number handed out (0 before the first append).
    async fn audit_last_seq(&self) -> Result<u64> {
        let item = self
            .get_item(self.audit_counter_key(), "audit counter")
            .await?;
        match item.as_ref().and_then(|i| i.get("last_seq")) {
            None => Ok(0),
            Some(AttributeValue::N(n)) => n.parse().map_err(|_| self.bad_counter(n)),
            Some(other) => Err(self.bad_counter(&format!("{other:?}"))),
        }
    }

    fn bad_counter(&self, value: &str) -> Error {
        Error::Store(format!(
            "table {}: the audit counter of job {} holds {value:?}, not a sequence number; fix \
             the item JOB#{}#AUDIT/COUNTER by hand",
            self.table, self.job, self.job
        ))
    }

    /// Reserves `count` sequence numbers atomically; returns the first.
    async fn reserve_seqs(&self, count: u64) -> Result<u64> {
        let out = self
            .client
            .update_item()
            .table_name(&*self.table)
            .set_key(Some(self.audit_counter_key()))
            .update_expression("ADD #last :count")
            .expression_attribute_names("#last", "last_seq")
            .expression_attribute_values(":count", AttributeValue::N(count.to_string()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| self.err("UpdateItem", "reserving audit sequence numbers", e))?;
        let last = match out.attributes.as_ref().and_then(|a| a.get("last_seq")) {
            Some(AttributeValue::N(n)) => n.parse::<u64>().map_err(|_| self.bad_counter(n))?,
            other => return Err(self.bad_counter(&format!("{other:?}"))),
        };
        Ok(last + 1 - count)
    }
}

#[async_trait]
impl AuditLog for DynamoStore {
    async fn append(&self, entries: &[AuditEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let first = self.reserve_seqs(entries.len() as u64).await?;
        let requests = entries
            .iter()
            .zip(first..)
            .map(|(e, seq)| {
                let context = format!(
                    "audit entry {seq} ({} {} {})",
                    e.kind, e.source_id, e.outcome
                );
                let item = to_item(
                    &AuditItem {
                        pk: self.audit_pk(seq),
                        sk: seq_sort_key(seq),
                        seq,
                        at: e.at.clone(),
                        op: e.op,
                        kind: e.kind,
                        source_id: e.source_id.clone(),
                        dest_id: e.dest_id.clone(),
                        outcome: e.outcome.clone(),
                        payload_hash: e.payload_hash.clone(),
                    },
                    &context,
                )?;
                put_request(item, &context)
            })
            .collect::<Result<Vec<_>>>()?;
        let context = format!(
            "appending audit entries {first}..={}",
            first + entries.len() as u64 - 1
        );
        self.batch_write(requests, &context).await
    }

    async fn entries(&self, after_seq: u64, limit: usize) -> Result<Vec<(u64, AuditEntry)>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let last = self.audit_last_seq().await?;
        if after_seq >= last {
            return Ok(Vec::new());
        }
        let after_key = seq_sort_key(after_seq);
        let mut out = Vec::new();
        let mut bucket_start = after_seq + 1;
        while out.len() < limit && bucket_start <= last {
            let context = format!("reading the audit log after {after_seq}");
            let items = self
                .query(
                    &self.audit_pk(bucket_start),
                    Some(&after_key),
                    Some(limit - out.len()),
                    None,
                    &context,
                )
                .await?;
            for item in items {
                let name = describe_item(&item);
                let i: AuditItem = from_item(item, &self.table, &format!("audit entry {name}"))?;
                out.push((
                    i.seq,
                    AuditEntry {
                        at: i.at,
                        op: i.op,
                        kind: i.kind,
                        source_id: i.source_id,
                        dest_id: i.dest_id,
                        outcome: i.outcome,
                        payload_hash: i.payload_hash,
                    },
                ));
            }
            bucket_start = (bucket_start / AUDIT_BUCKET_SIZE + 1) * AUDIT_BUCKET_SIZE;
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// Table

/// Creates `table` (key schema `pk` S / `sk` S, on-demand capacity) if it does not exist, and
/// waits until it is active. For tests and local runs: in production the SAM template creates it.
///
/// Fails with `Error::Config` if a table of that name exists with another key schema.
pub async fn ensure_table(client: &Client, table: &str) -> Result<()> {
    let what = format!("CreateTable {table}");
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| build_error(&what, e))
    };
    let key_element = |name: &str, key_type: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .map_err(|e| build_error(&what, e))
    };
    let created = client
        .create_table()
        .table_name(table)
        .attribute_definitions(attribute(PARTITION_KEY)?)
        .attribute_definitions(attribute(SORT_KEY)?)
        .key_schema(key_element(PARTITION_KEY, KeyType::Hash)?)
        .key_schema(key_element(SORT_KEY, KeyType::Range)?)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) => {}
        Err(e) => return Err(sdk_error(SERVICE, &what, e)),
    }
    // Creation takes seconds on AWS and is immediate on emulators; give up after a minute.
    for _ in 0..120 {
        let described = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &format!("DescribeTable {table}"), e))?;
        let Some(t) = described.table else {
            return Err(Error::Store(format!(
                "DynamoDB DescribeTable {table} answered without a table description; retry"
            )));
        };
        let schema: Vec<(String, String)> = t
            .key_schema()
            .iter()
            .map(|k| {
                (
                    k.attribute_name().to_string(),
                    k.key_type().as_str().to_string(),
                )
            })
            .collect();
        let wanted = vec![
            (PARTITION_KEY.to_string(), "HASH".to_string()),
            (SORT_KEY.to_string(), "RANGE".to_string()),
        ];
        if schema != wanted {
            return Err(Error::Config(format!(
                "DynamoDB table {table} exists with the key schema {schema:?}, not pk (HASH) / sk \
                 (RANGE) as deskshift needs: choose another table name or recreate the table"
            )));
        }
        if t.table_status() == Some(&TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(Error::Store(format!(
        "DynamoDB table {table} did not become ACTIVE within a minute; check it in the console, \
         then retry"
    )))
}
