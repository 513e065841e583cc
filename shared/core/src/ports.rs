//! The ports the phases run over. Each has an embedded implementation (SQLite, local files) and
//! is shaped so that a DynamoDB / S3 implementation fits: single-key conditional writes, batches,
//! prefix listing, no cross-key transactions.

use std::collections::BTreeMap;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{
    AttachmentRef, CanonicalRecord, FieldType, ObjectKind, RawRecord, Resolved, SourceSchema,
};

// ---------------------------------------------------------------------------------------------
// Source

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PageRequest {
    /// Opaque position returned by the previous page; None for the first page.
    pub cursor: Option<String>,
    /// Only records modified at or after this source-format stamp (delta runs).
    pub modified_since: Option<String>,
    pub page_size: u32,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RawPage {
    pub records: Vec<RawRecord>,
    /// Cursor of the next page; None when this was the last one.
    pub next: Option<String>,
}

/// The collections a source offers, mapped to the engine's kinds by the mapping proposal.
#[async_trait]
pub trait Source: Send + Sync {
    fn platform(&self) -> &'static str;
    /// Live schema of every collection (a collection the user cannot read has no fields).
    async fn discover(&self) -> Result<SourceSchema>;
    async fn read_page(&self, collection: &str, request: &PageRequest) -> Result<RawPage>;
    /// Downloads an attachment binary; refuses URLs off the source's configured hosts.
    async fn download(&self, attachment: &AttachmentRef) -> Result<Bytes>;
    /// Whether `url` may be fetched (on the source's configured hosts); the reason if not.
    fn may_fetch(&self, url: &str) -> std::result::Result<(), String>;
    /// The source's now, in its cursor format (the delta signpost).
    async fn cursor_now(&self) -> Result<String>;
    /// The cursor `pages` pages after `cursor` (None = the first page), when the source's cursors
    /// can be computed ahead (page numbers or offsets): the engine then reads pages concurrently.
    fn cursor_after(&self, _cursor: Option<&str>, _pages: u64) -> Option<String> {
        None
    }
    /// Credits this client has spent so far, where the source's platform bills API calls against
    /// a daily allowance (Zoho Desk); None where calls cost no credits.
    fn credits_spent(&self) -> Option<u64> {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Destination

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NamedId {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DestAgent {
    pub id: String,
    pub email: String,
    pub name: String,
    pub active: bool,
}

/// A custom field that exists in the destination.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DestField {
    pub id: String,
    pub kind: ObjectKind,
    pub label: String,
    /// The key records carry the value under (Zoho `cf_...`, Jira `customfield_...`).
    pub api_name: String,
    pub field_type: String,
    #[serde(default)]
    pub options: Vec<String>,
}

/// A custom field the schema phase needs to exist.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CustomFieldSpec {
    pub kind: ObjectKind,
    pub label: String,
    pub field_type: FieldType,
    #[serde(default)]
    pub options: Vec<String>,
    /// Department (Zoho) or project (Jira) the field is scoped to; None = everywhere.
    #[serde(default)]
    pub scope: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DestinationInfo {
    pub platform: String,
    pub edition: Option<String>,
    pub daily_credits: Option<u64>,
    pub credits_remaining: Option<u64>,
    pub concurrency_cap: Option<usize>,
    pub max_custom_fields: Option<usize>,
    pub departments: Vec<NamedId>,
    pub agents: Vec<DestAgent>,
    pub custom_fields: Vec<DestField>,
    /// Allowed values of standard enumerations, keyed `kind.field` (e.g. `ticket.status`).
    pub allowed_values: BTreeMap<String, Vec<String>>,
    /// API calls (and credits) one record of each kind costs to create, for the estimate.
    pub calls_per_record: BTreeMap<String, f64>,
    /// Longest accepted value, in characters, keyed `kind.field` (e.g. `account.name`).
    #[serde(default)]
    pub max_lengths: BTreeMap<String, usize>,
    /// Canonical fields the destination has no place for, as `kind.field` or `kind.custom.*`:
    /// they stay in the staged payloads and the migration package, and validation skips them.
    #[serde(default)]
    pub unsupported_fields: Vec<String>,
    /// The destination stores inline images as media of the record they appear in: the load phase
    /// hands it their bytes (`LoadContext::inline_images`) when it writes that record.
    #[serde(default)]
    pub inline_media: bool,
    /// The destination links related tickets ([`Destination::relate`]): the ticket load relates
    /// them once both are written, in whichever invocation writes the second.
    #[serde(default)]
    pub relations: bool,
    /// No two accounts may share a name: the load names an account apart (its source id in the
    /// name, flagged) when an earlier staged account has its name, rather than be refused first.
    #[serde(default)]
    pub unique_account_names: bool,
    /// Records the load keeps in progress per call slot (0 and 1: one). Above one where the
    /// destination spaces writes to one record (Jira's per-issue write limit): while one record
    /// waits for its next write slot, its call slot serves another record.
    #[serde(default)]
    pub records_per_slot: usize,
}

impl DestinationInfo {
    pub fn supports(&self, kind: ObjectKind, field: &str) -> bool {
        let key = format!("{kind}.{field}");
        !self
            .unsupported_fields
            .iter()
            .any(|u| match u.strip_suffix('*') {
                Some(prefix) => key.starts_with(prefix),
                None => *u == key,
            })
    }
}

/// Everything a destination needs to write one record, resolved by the phase. Each record gets
/// a copy of the phase's context: the maps every record shares are behind `Arc`s, so the copy
/// does not grow with the destination's agents or fields.
#[derive(Clone, Debug, Default)]
pub struct LoadContext {
    pub resolved: Resolved,
    /// Agent email (lower case) -> destination agent id.
    pub agents: std::sync::Arc<BTreeMap<String, String>>,
    /// Custom field label -> destination field, for the record's kind.
    pub custom_fields: std::sync::Arc<BTreeMap<String, DestField>>,
    /// Department name -> destination department id.
    pub departments: std::sync::Arc<BTreeMap<String, String>>,
    /// Name of the source platform, for provenance lines.
    pub source_platform: String,
    /// `<img src>` of the record's body -> the image's bytes, filled only for destinations that
    /// declare `inline_media`.
    pub inline_images: BTreeMap<String, InlineImage>,
    /// Filled by the destination while it writes the record: (`<img src>`, the file's id as
    /// [`Destination::attach`] names it) for each inline image it stored as a file of the record,
    /// so the attachments pass does not download and look up that file again.
    pub stored_images: StoredImages,
}

/// The inline images a destination stored while writing one record (see
/// [`LoadContext::stored_images`]); each record's context gets a fresh one.
#[derive(Clone, Debug, Default)]
pub struct StoredImages(std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>);

impl StoredImages {
    pub fn push(&self, src: &str, file_id: String) {
        self.0.lock().unwrap().push((src.to_string(), file_id));
    }
    pub fn take(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// An image a description or comment shows inline, with its bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct InlineImage {
    pub file_name: String,
    pub bytes: Bytes,
}

/// What a create did.
#[derive(Clone, Debug, PartialEq)]
pub struct Created {
    pub id: String,
    /// The destination already had this record (matched by its natural key): it is linked, and a
    /// rollback never deletes it.
    pub matched_existing: bool,
    /// (code, message) pairs a person should see.
    pub flags: Vec<(String, String)>,
}

impl From<String> for Created {
    fn from(id: String) -> Self {
        Created {
            id,
            matched_existing: false,
            flags: vec![],
        }
    }
}

/// Counts per kind as the destination reports them (None when it cannot count cheaply).
#[async_trait]
pub trait Destination: Send + Sync {
    fn platform(&self) -> &'static str;
    async fn describe(&self) -> Result<DestinationInfo>;
    /// Creates the field, or returns the existing one with the same label and kind.
    async fn ensure_custom_field(&self, spec: &CustomFieldSpec) -> Result<DestField>;
    /// Creates the record (or, where the destination identifies records by a natural key such as a
    /// customer's e-mail, matches the one that exists); returns what it did.
    async fn create(&self, record: &CanonicalRecord, ctx: &LoadContext) -> Result<Created>;
    async fn update(
        &self,
        dest_id: &str,
        record: &CanonicalRecord,
        ctx: &LoadContext,
    ) -> Result<()>;
    /// Looks in the destination for a record this migration created for `record` (by the source id
    /// it carries), for the crash window between a create and the crosswalk write.
    async fn find_existing(
        &self,
        record: &CanonicalRecord,
        ctx: &LoadContext,
    ) -> Result<Option<String>>;
    /// Uploads a binary and links it to the parent record; returns the attachment's destination id.
    async fn attach(
        &self,
        parent_kind: ObjectKind,
        parent_dest_id: &str,
        attachment: &AttachmentRef,
        bytes: Bytes,
    ) -> Result<String>;
    /// Looks on the parent for an attachment this migration may have uploaded before a crash
    /// (same file name and size); returns its destination id.
    async fn find_attachment(
        &self,
        parent_kind: ObjectKind,
        parent_dest_id: &str,
        attachment: &AttachmentRef,
        size: u64,
    ) -> Result<Option<String>>;
    /// Removes a record this migration created (rollback).
    async fn delete(&self, kind: ObjectKind, dest_id: &str) -> Result<()>;
    /// Reads a record back in canonical field names (`subject`, `status`, `custom.<label>`, ...), for
    /// validation and for rollback's changed-since-created check. None if it no longer exists.
    async fn read_back(
        &self,
        kind: ObjectKind,
        dest_id: &str,
    ) -> Result<Option<BTreeMap<String, String>>>;
    /// Number of records of `kind` in the destination, if the API can tell.
    async fn count(&self, kind: ObjectKind) -> Result<Option<u64>>;
    /// Credits/calls spent so far by this client.
    fn spend(&self) -> Spend;
    /// The source's agents, for destinations that carry them themselves (an import package).
    async fn prepare_agents(&self, _agents: &[crate::model::Agent]) -> Result<()> {
        Ok(())
    }
    /// Links two written tickets: `ticket` (source id, for errors) lists the other among its
    /// related tickets. Called once per pair, after both exist; writing the same link twice
    /// must not create a second one. Only called when `describe()` sets `relations`.
    async fn relate(&self, ticket: &str, dest_id: &str, other_dest_id: &str) -> Result<()> {
        let _ = (dest_id, other_dest_id);
        Err(crate::error::Error::Config(format!(
            "ticket {ticket}: {} does not link related tickets",
            self.platform()
        )))
    }
    /// Called when a run has written everything (an import package closes its files).
    async fn finish(&self) -> Result<()> {
        Ok(())
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Spend {
    pub calls: u64,
    pub credits: u64,
    pub throttled: u64,
    pub retries: u64,
    pub calls_by_endpoint: BTreeMap<String, u64>,
}

// ---------------------------------------------------------------------------------------------
// Stores

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkStatus {
    /// A create is about to be sent: on resume, check the destination before re-sending.
    Pending,
    Created,
    /// Matched to a record that existed before the migration: never deleted by rollback.
    Existing,
    Failed,
    Skipped,
    /// Removed by rollback.
    RolledBack,
}

impl LinkStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkStatus::Pending => "pending",
            LinkStatus::Created => "created",
            LinkStatus::Existing => "existing",
            LinkStatus::Failed => "failed",
            LinkStatus::Skipped => "skipped",
            LinkStatus::RolledBack => "rolled_back",
        }
    }
    pub fn parse(s: &str) -> Option<LinkStatus> {
        [
            LinkStatus::Pending,
            LinkStatus::Created,
            LinkStatus::Existing,
            LinkStatus::Failed,
            LinkStatus::Skipped,
            LinkStatus::RolledBack,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One crosswalk entry: a source record and what it became in the destination.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub kind: ObjectKind,
    pub source_id: String,
    pub dest_id: Option<String>,
    pub status: LinkStatus,
    /// Hash of the canonical record last written (skips unchanged records in deltas).
    pub payload_hash: String,
    /// Hash of the destination read-back right after the write (rollback's changed-since check).
    #[serde(default)]
    pub dest_hash: Option<String>,
    /// Why the record failed or was skipped.
    #[serde(default)]
    pub reason: Option<String>,
    pub updated_at: String,
}

#[async_trait]
pub trait Crosswalk: Send + Sync {
    async fn get(&self, kind: ObjectKind, source_id: &str) -> Result<Option<Link>>;
    async fn get_many(
        &self,
        kind: ObjectKind,
        source_ids: &[String],
    ) -> Result<BTreeMap<String, Link>>;
    /// Writes a batch of entries (last write wins per key).
    async fn put_batch(&self, links: &[Link]) -> Result<()>;
    /// Conditional write: stores `link` only if the key's current status is one of `expect`
    /// (None in `expect` = the key is absent). Returns whether it was written.
    async fn put_if(&self, link: &Link, expect: &[Option<LinkStatus>]) -> Result<bool>;
    /// Entries of a kind in source-id order, after `after`, at most `limit`.
    async fn list(&self, kind: ObjectKind, after: Option<&str>, limit: usize) -> Result<Vec<Link>>;
    async fn counts(&self, kind: ObjectKind) -> Result<BTreeMap<String, u64>>;
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub phase: String,
    pub partition: String,
    pub cursor: Option<String>,
    pub done: bool,
    pub updated_at: String,
}

#[async_trait]
pub trait Checkpoints: Send + Sync {
    async fn get(&self, phase: &str, partition: &str) -> Result<Option<Checkpoint>>;
    async fn put(&self, checkpoint: &Checkpoint) -> Result<()>;
    async fn list(&self, phase: &str) -> Result<Vec<Checkpoint>>;
    async fn clear(&self, phase: &str) -> Result<()>;
}

/// Staged payloads, attachment binaries and reports, as keyed objects (S3 semantics).
#[async_trait]
pub trait Stage: Send + Sync {
    async fn put(&self, key: &str, bytes: Bytes) -> Result<()>;
    async fn get(&self, key: &str) -> Result<Option<Bytes>>;
    async fn list(&self, prefix: &str) -> Result<Vec<String>>;
    async fn delete(&self, key: &str) -> Result<()>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditOp {
    Create,
    Update,
    Delete,
    Attach,
    Schema,
}

/// One write to the destination.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: String,
    pub op: AuditOp,
    pub kind: ObjectKind,
    pub source_id: String,
    pub dest_id: Option<String>,
    pub outcome: String,
    pub payload_hash: String,
}

#[async_trait]
pub trait AuditLog: Send + Sync {
    async fn append(&self, entries: &[AuditEntry]) -> Result<()>;
    async fn entries(&self, after_seq: u64, limit: usize) -> Result<Vec<(u64, AuditEntry)>>;
}

/// The key rules every [`Stage`] applies, so that a job staged on one store is valid on another:
/// relative paths separated by `/`, without `..`, `.`, empty segments, backslashes or NUL, and
/// never a name reserved for writes in progress.
pub mod stage_key {
    use crate::error::{Error, Result};

    /// Prefix of temporary names used while a write is in progress.
    pub const TEMP_MARKER: &str = ".deskshift-tmp-";

    /// The error a store gives for a key it refuses, naming the key and the rules.
    pub fn key_error(key: &str, why: &str) -> Error {
        Error::Store(format!(
            "stage key '{key}' is not allowed: {why}; keys are relative paths separated by '/', without \
             '..', '.', empty segments or backslashes"
        ))
    }

    /// Checks the segments shared by keys and prefixes; `last_may_be_partial` allows a prefix to
    /// end in an empty or partial segment.
    fn validate_segments(key: &str, last_may_be_partial: bool) -> Result<()> {
        if key.contains('\\') {
            return Err(key_error(key, "it contains a backslash"));
        }
        if key.contains('\0') {
            return Err(key_error(key, "it contains a NUL character"));
        }
        if key.starts_with('/') {
            return Err(key_error(key, "it is an absolute path"));
        }
        let segments: Vec<&str> = key.split('/').collect();
        let last = segments.len() - 1;
        for (i, segment) in segments.iter().enumerate() {
            if *segment == ".." {
                return Err(key_error(key, "it contains '..'"));
            }
            if i == last && last_may_be_partial {
                continue;
            }
            if segment.is_empty() {
                return Err(key_error(key, "it has an empty segment"));
            }
            if *segment == "." {
                return Err(key_error(key, "it contains a '.' segment"));
            }
            if segment.starts_with(TEMP_MARKER) {
                return Err(key_error(
                    key,
                    "names starting with .deskshift-tmp- are reserved for writes in progress",
                ));
            }
        }
        Ok(())
    }

    pub fn validate_key(key: &str) -> Result<()> {
        if key.is_empty() {
            return Err(key_error(key, "it is empty"));
        }
        validate_segments(key, false)
    }

    pub fn validate_prefix(prefix: &str) -> Result<()> {
        if prefix.is_empty() {
            return Ok(());
        }
        validate_segments(prefix, true)
    }
}
