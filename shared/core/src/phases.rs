//! The phases, as plain async functions over a [`Job`]'s ports. The CLI calls them in the order of
//! [`crate::flow::FLOW`]; the Lambda functions call the same functions.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::job::{Job, Selection};
use crate::mapping::{Approval, FieldMap, propose};
use crate::model::*;
use crate::ports::*;
use crate::transform::{Transformed, Transformer, value_text};
use crate::util::{md5_hex, now_iso};

pub mod keys {
    pub const SCOPING: &str = "reports/scoping.json";
    pub const FIELD_MAP: &str = "mapping/field-map.json";
    pub const APPROVAL: &str = "mapping/approval.json";
    pub const SCHEMA: &str = "schema/fields.json";
    pub const AGENTS: &str = "reports/agents.json";
    pub const VALIDATION: &str = "reports/validation.json";
    pub fn raw_page(collection: &str, page: u64) -> String {
        format!("raw/{}/{page:06}.json", super::safe(collection))
    }
    pub fn raw_prefix(collection: &str) -> String {
        format!("raw/{}/", super::safe(collection))
    }
    pub fn failed(kind: crate::model::ObjectKind, id: &str) -> String {
        format!("failed/{kind}/{}.json", super::safe(id))
    }
    pub fn flags(phase: &str, part: &str) -> String {
        format!("flags/{phase}/{}.json", super::safe(part))
    }
    pub fn reconciliation(kind: crate::model::ObjectKind) -> String {
        format!("reports/reconciliation-{kind}.json")
    }
    pub fn blob(md5: &str) -> String {
        format!("blobs/{md5}")
    }
}

fn safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub(crate) async fn put_json<T: Serialize>(job: &Job, key: &str, value: &T) -> Result<()> {
    job.stage
        .put(key, Bytes::from(serde_json::to_vec_pretty(value)?))
        .await
}

/// Stages a page of source records: compact JSON (read back by the engine, not by people).
pub(crate) async fn put_page(job: &Job, key: &str, records: &[RawRecord]) -> Result<()> {
    job.stage
        .put(key, Bytes::from(serde_json::to_vec(records)?))
        .await
}

pub(crate) async fn get_json<T: for<'de> Deserialize<'de>>(
    job: &Job,
    key: &str,
) -> Result<Option<T>> {
    match job.stage.get(key).await? {
        Some(b) => Ok(Some(serde_json::from_slice(&b)?)),
        None => Ok(None),
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Pre-flight scoping

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CollectionScope {
    pub collection: String,
    pub proposed_kind: Option<ObjectKind>,
    pub readable: bool,
    pub records: u64,
    pub fields: usize,
    pub custom_fields: Vec<FieldDef>,
    pub attachments: u64,
    pub attachment_bytes: u64,
    pub attachments_over_limit: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Scoping {
    pub at: String,
    pub source_platform: String,
    pub destination: DestinationInfo,
    pub collections: Vec<CollectionScope>,
    pub permission_gaps: Vec<String>,
    pub empty_collections: Vec<String>,
    /// Source department values and the destination department each will go to.
    pub department_mapping: BTreeMap<String, String>,
    pub source_calls: u64,
    pub estimated_destination_calls: u64,
    /// The destination's credits (where it bills calls against a daily allowance).
    pub estimated_credits: u64,
    /// Credits the source's account spent on this pre-flight (a source that bills calls).
    #[serde(default)]
    pub source_credits_spent: Option<u64>,
    /// The source's credits the whole run spends: this pre-flight's, one download per file under
    /// the size limit, and a second full read when the extract cannot reuse the pre-flight's pages.
    #[serde(default)]
    pub estimated_source_credits: Option<u64>,
    pub credits_fit_in_one_day: bool,
    pub estimated_minutes: f64,
    pub measured_source_latency_ms: f64,
    /// Destination records that exist before the migration, per kind (reconciliation baseline).
    pub destination_baseline: BTreeMap<String, u64>,
}

pub async fn preflight(job: &Job) -> Result<Scoping> {
    let started = std::time::Instant::now();
    let credits_before = job.source.credits_spent();
    let schema = job.source.discover().await?;
    let dest = job.describe().await?;
    let mut scoping = Scoping {
        at: now_iso(),
        source_platform: job.source.platform().into(),
        destination: dest.clone(),
        ..Default::default()
    };
    let mut source_calls = 1 + schema.collections.len() as u64;
    job.progress
        .start("preflight", Some(schema.collections.len() as u64));
    // Before any extract, the pages read here are staged for it to reuse (its signpost is
    // taken now, so changes made meanwhile are picked up by the first delta).
    let signpost = if job.settings.preflight_reuse_minutes > 0
        && job
            .checkpoints
            .get("extract-signpost", "all")
            .await?
            .is_none()
    {
        Some(job.source.cursor_now().await?)
    } else {
        None
    };
    let surveys = futures::stream::iter(schema.collections.iter().cloned().map(|col| {
        let signpost = signpost.clone();
        async move {
            let mut scope = CollectionScope {
                collection: col.name.clone(),
                proposed_kind: crate::mapping::propose_kind(&col.name).map(|k| k.0),
                readable: col.readable(),
                fields: col.fields.len(),
                custom_fields: col.fields.iter().filter(|f| f.custom).cloned().collect(),
                ..Default::default()
            };
            let calls = if col.readable() {
                survey(job, &mut scope, signpost.as_deref()).await?
            } else {
                0
            };
            job.progress.advance("preflight", 1);
            Ok::<_, Error>((scope, calls))
        }
    }))
    .buffered(4)
    .collect::<Vec<_>>()
    .await;
    for survey in surveys {
        let (scope, calls) = survey?;
        source_calls += calls;
        if !scope.readable {
            scoping.permission_gaps.push(scope.collection.clone());
        } else if scope.records == 0 {
            scoping.empty_collections.push(scope.collection.clone());
        }
        scoping.collections.push(scope);
    }
    // Department values (from a ticket department dropdown) against destination departments.
    if let Some(tickets) = schema
        .collections
        .iter()
        .find(|c| crate::mapping::propose_kind(&c.name).map(|k| k.0) == Some(ObjectKind::Ticket))
    {
        let field = tickets.fields.iter().find(|f| {
            let n: String = f
                .name
                .chars()
                .filter(|c| c.is_alphanumeric())
                .collect::<String>()
                .to_lowercase();
            ["department", "queue", "dept"].contains(&n.as_str())
        });
        if let Some(f) = field {
            scoping.department_mapping =
                crate::mapping::propose_values(ObjectKind::Ticket, "department", &f.options, &dest);
        }
    }
    // Cost estimate: destination calls per record of each kind, plus attachments.
    let mut calls = 0f64;
    for c in &scoping.collections {
        if let Some(kind) = c.proposed_kind {
            let per = dest
                .calls_per_record
                .get(kind.as_str())
                .copied()
                .unwrap_or(0.0);
            calls += per * c.records as f64;
            calls += dest
                .calls_per_record
                .get("attachment")
                .copied()
                .unwrap_or(1.0)
                * (c.attachments - c.attachments_over_limit) as f64;
        }
    }
    scoping.source_calls = source_calls;
    if let (Some(before), Some(after)) = (credits_before, job.source.credits_spent()) {
        let spent = after.saturating_sub(before);
        let files: u64 = scoping
            .collections
            .iter()
            .map(|c| c.attachments - c.attachments_over_limit)
            .sum();
        let reread = if job.settings.preflight_reuse_minutes > 0 {
            0
        } else {
            spent
        };
        scoping.source_credits_spent = Some(spent);
        scoping.estimated_source_credits = Some(spent + files + reread);
    }
    scoping.estimated_destination_calls = calls.ceil() as u64;
    scoping.estimated_credits = scoping.estimated_destination_calls;
    scoping.credits_fit_in_one_day = dest
        .credits_remaining
        .or(dest.daily_credits)
        .is_none_or(|c| c >= scoping.estimated_credits);
    let elapsed = started.elapsed().as_secs_f64();
    scoping.measured_source_latency_ms = elapsed * 1000.0 / source_calls.max(1) as f64;
    let conc = job.settings.load_concurrency_for(dest.concurrency_cap) as f64;
    scoping.estimated_minutes =
        (calls / conc) * (scoping.measured_source_latency_ms.max(20.0) / 1000.0) / 60.0;
    // The kinds counted at once (the destination's client keeps within its cap).
    let baseline =
        futures::future::try_join_all(ObjectKind::LOADED.iter().map(|k| job.dest.count(*k)))
            .await?;
    for (kind, n) in ObjectKind::LOADED.iter().zip(baseline) {
        if let Some(n) = n {
            scoping.destination_baseline.insert(kind.to_string(), n);
        }
    }
    put_json(job, keys::SCOPING, &scoping).await?;
    job.progress.finish(
        "preflight",
        &format!(
            "{} collections, {} permission gaps",
            scoping.collections.len(),
            scoping.permission_gaps.len()
        ),
    );
    Ok(scoping)
}

/// Whether a pre-flight ran within `preflight_reuse_minutes` (a run then takes its results and
/// staged pages instead of reading the source again).
pub async fn preflight_is_recent(job: &Job) -> Result<bool> {
    let Some(scoping) = get_json::<Scoping>(job, keys::SCOPING).await? else {
        return Ok(false);
    };
    Ok(minutes_since(&scoping.at)
        .is_some_and(|m| m >= 0.0 && m <= job.settings.preflight_reuse_minutes as f64))
}

/// Minutes elapsed since an ISO-8601 UTC stamp.
fn minutes_since(at: &str) -> Option<f64> {
    at.parse::<jiff::Timestamp>()
        .ok()
        .map(|t| jiff::Timestamp::now().duration_since(t).as_secs_f64() / 60.0)
}

/// What the pre-flight staged of one collection, for the extract to adopt.
#[derive(Serialize, Deserialize)]
struct PreflightStaged {
    pages: u64,
    records: u64,
    seen: Option<String>,
    signpost: String,
}

/// Counts one collection's records and files, staging its pages when `signpost` is given.
async fn survey(job: &Job, scope: &mut CollectionScope, signpost: Option<&str>) -> Result<u64> {
    let col = scope.collection.clone();
    if signpost.is_some() {
        clear_staged(job, &col).await?;
    }
    let mut pager = Pager::new(job, &col, None, None);
    let mut page_no = 0u64;
    let mut seen: Option<String> = None;
    let mut pages = pager.next_batch().await?;
    while !pages.is_empty() {
        let first = page_no;
        for page in &pages {
            scope.records += page.records.len() as u64;
            for r in &page.records {
                for a in &r.attachments {
                    scope.attachments += 1;
                    let size = a.size.unwrap_or(0);
                    scope.attachment_bytes += size;
                    if size > job.settings.attachment_max_bytes {
                        scope.attachments_over_limit += 1;
                    }
                }
                if let Some(c) = &r.cursor_value
                    && seen.as_ref().is_none_or(|s| c > s)
                {
                    seen = Some(c.clone());
                }
            }
            page_no += 1;
        }
        // The next pages are read while these are staged.
        let stage = async {
            if signpost.is_some() {
                for (no, page) in (first..).zip(&pages) {
                    put_page(job, &keys::raw_page(&col, no), &page.records).await?;
                }
            }
            Ok::<_, Error>(())
        };
        let (next, staged) = futures::join!(pager.next_batch(), stage);
        staged?;
        pages = next?;
    }
    if let Some(signpost) = signpost {
        let staged = PreflightStaged {
            pages: page_no,
            records: scope.records,
            seen,
            signpost: signpost.to_string(),
        };
        job.checkpoints
            .put(&Checkpoint {
                phase: "preflight-stage".into(),
                partition: col.clone(),
                cursor: Some(serde_json::to_string(&staged)?),
                done: true,
                updated_at: now_iso(),
            })
            .await?;
    }
    Ok(pager.calls)
}

/// Takes over the pages the pre-flight staged of `col` when they are recent enough; their
/// record count, or None when the collection must be read again.
async fn adopt_preflight(job: &Job, col: &str) -> Result<Option<u64>> {
    let Some(cp) = job.checkpoints.get("preflight-stage", col).await? else {
        return Ok(None);
    };
    let Some(staged) = cp
        .cursor
        .as_deref()
        .and_then(|c| serde_json::from_str::<PreflightStaged>(c).ok())
    else {
        return Ok(None);
    };
    if !minutes_since(&cp.updated_at)
        .is_some_and(|m| m >= 0.0 && m <= job.settings.preflight_reuse_minutes as f64)
    {
        return Ok(None);
    }
    job.checkpoints
        .put(&Checkpoint {
            phase: "extract".into(),
            partition: col.to_string(),
            cursor: Some(serde_json::to_string(&(staged.pages, None::<String>))?),
            done: true,
            updated_at: now_iso(),
        })
        .await?;
    set_delta_cursor(job, col, staged.seen, &staged.signpost).await?;
    Ok(Some(staged.records))
}

/// Removes a collection's staged pages (left by a pre-flight too old to reuse).
async fn clear_staged(job: &Job, col: &str) -> Result<()> {
    for key in staged_pages(job, col).await? {
        job.stage.delete(&key).await?;
    }
    Ok(())
}

/// Reads a collection's pages in order. Where the source can name later pages ahead
/// (`Source::cursor_after`), it reads a window of pages at once, growing from one page up to
/// `source_concurrency` while pages keep coming, so a short collection costs no extra call.
pub struct Pager<'a> {
    job: &'a Job,
    col: &'a str,
    cursor: Option<String>,
    modified_since: Option<String>,
    window: usize,
    done: bool,
    /// Source calls made, speculative reads past the end included.
    pub calls: u64,
}

impl<'a> Pager<'a> {
    pub fn new(
        job: &'a Job,
        col: &'a str,
        cursor: Option<String>,
        modified_since: Option<String>,
    ) -> Self {
        Pager {
            job,
            col,
            cursor,
            modified_since,
            window: 1,
            done: false,
            calls: 0,
        }
    }

    /// The cursor the next batch starts from (None before the first page and after the last).
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// The next pages, in order; empty once the collection is read.
    pub async fn next_batch(&mut self) -> Result<Vec<RawPage>> {
        if self.done {
            return Ok(Vec::new());
        }
        let max = self.job.settings.source_concurrency.max(1);
        let mut cursors = vec![self.cursor.clone()];
        for i in 1..self.window.min(max) {
            match self
                .job
                .source
                .cursor_after(self.cursor.as_deref(), i as u64)
            {
                Some(c) => cursors.push(Some(c)),
                None => break,
            }
        }
        let (job, col) = (self.job, self.col);
        let reads = futures::future::join_all(cursors.iter().map(|c| {
            let request = PageRequest {
                cursor: c.clone(),
                modified_since: self.modified_since.clone(),
                page_size: job.settings.page_size,
            };
            async move { job.source.read_page(col, &request).await }
        }))
        .await;
        self.calls += reads.len() as u64;
        let asked = cursors.len();
        let mut out = Vec::new();
        for (i, read) in reads.into_iter().enumerate() {
            // A page read ahead that failed is read again as the head of the next batch.
            let page = match read {
                Ok(p) => p,
                Err(e) if i == 0 => return Err(e),
                Err(_) => break,
            };
            let next = page.next.clone();
            out.push(page);
            match next {
                None => {
                    self.done = true;
                    self.cursor = None;
                    break;
                }
                Some(n) => {
                    let ahead = cursors.get(i + 1).and_then(|c| c.as_deref()) == Some(n.as_str());
                    self.cursor = Some(n);
                    if !ahead {
                        break;
                    }
                }
            }
        }
        if !self.done && out.len() == asked {
            self.window = (self.window * 2).min(max);
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Mapping proposal, 3. approval

pub async fn propose_mapping(job: &Job) -> Result<FieldMap> {
    let schema = job.source.discover().await?;
    let dest = job.describe().await?;
    let mut samples = BTreeMap::new();
    for col in schema.collections.iter().filter(|c| c.readable()) {
        // The first staged page serves as the sample when the pre-flight or extract staged it.
        let staged = job
            .checkpoints
            .get("preflight-stage", &col.name)
            .await?
            .is_some()
            || job.checkpoints.get("extract", &col.name).await?.is_some();
        let first: Option<Vec<RawRecord>> = if staged {
            get_json(job, &keys::raw_page(&col.name, 0)).await?
        } else {
            None
        };
        let records = match first {
            Some(mut records) => {
                records.truncate(50);
                records
            }
            None => {
                job.source
                    .read_page(
                        &col.name,
                        &PageRequest {
                            cursor: None,
                            modified_since: None,
                            page_size: 50,
                        },
                    )
                    .await?
                    .records
            }
        };
        samples.insert(col.name.clone(), records);
    }
    let map = propose(job.source.platform(), &schema, &samples, &dest);
    put_json(job, keys::FIELD_MAP, &map).await?;
    Ok(map)
}

pub async fn field_map(job: &Job) -> Result<FieldMap> {
    get_json(job, keys::FIELD_MAP).await?.ok_or_else(|| {
        Error::Approval("no field map yet: run `deskshift mapping propose` first".into())
    })
}

/// Validates the current map and pins it with an approval.
pub async fn approve(job: &Job, by: &str, automatic: bool) -> Result<Approval> {
    let map = field_map(job).await?;
    let dest = job.describe().await?;
    map.validate(&dest)?;
    let approval = Approval {
        map_digest: map.digest(),
        approved_by: by.to_string(),
        approved_at: now_iso(),
        automatic,
    };
    put_json(job, keys::APPROVAL, &approval).await?;
    Ok(approval)
}

/// The approved map; fails if there is no approval or the map changed since.
pub async fn approved_map(job: &Job) -> Result<FieldMap> {
    let map = field_map(job).await?;
    let approval: Approval = get_json(job, keys::APPROVAL).await?.ok_or_else(|| {
        Error::Approval("the field map is not approved: review it (`deskshift mapping show`) and run `deskshift mapping approve`".into())
    })?;
    approval.check(&map)?;
    Ok(map)
}

// ---------------------------------------------------------------------------------------------
// 4. Schema

pub async fn schema(job: &Job) -> Result<Vec<DestField>> {
    let map = approved_map(job).await?;
    let specs: Vec<CustomFieldSpec> = map
        .custom_fields()
        .into_iter()
        .filter(|(kind, ..)| ObjectKind::LOADED.contains(kind) && *kind != ObjectKind::Activity)
        .map(|(kind, label, field_type, options)| CustomFieldSpec {
            kind,
            label,
            field_type,
            options,
            scope: None,
        })
        .collect();
    let concurrency = job
        .settings
        .load_concurrency_for(job.describe().await?.concurrency_cap);
    let out: Vec<DestField> = futures::stream::iter(specs.into_iter().map(|spec| async move {
        let field = job.dest.ensure_custom_field(&spec).await?;
        job.audit
            .append(&[AuditEntry {
                at: now_iso(),
                op: AuditOp::Schema,
                kind: spec.kind,
                source_id: spec.label.clone(),
                dest_id: Some(field.id.clone()),
                outcome: "ok".into(),
                payload_hash: crate::util::sha256_hex(&serde_json::to_vec(&spec)?),
            }])
            .await?;
        Ok::<_, Error>(field)
    }))
    .buffered(concurrency)
    .collect::<Vec<_>>()
    .await
    .into_iter()
    .collect::<Result<_>>()?;
    put_json(job, keys::SCHEMA, &out).await?;
    job.forget_description().await;
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// 5. Extract and stage

/// Reads every mapped collection (and the documented ones) into the stage, page by page,
/// resumable from the last staged page.
pub async fn extract(job: &Job) -> Result<BTreeMap<String, u64>> {
    let map = approved_map(job).await?;
    let schema = job.source.discover().await?;
    let mut counts = BTreeMap::new();
    let looked_up = map.lookup_collections();
    let collections: Vec<String> = schema
        .collections
        .iter()
        .filter(|c| c.readable())
        .filter(|c| {
            map.collections.iter().any(|m| m.collection == c.name)
                || crate::mapping::propose_kind(&c.name).is_some()
                || looked_up.contains(&c.name)
        })
        .map(|c| c.name.clone())
        .collect();
    job.progress
        .start("extract", Some(collections.len() as u64));
    // The delta signpost: later syncs start from what was seen, never past the source's now
    // when this extract began (writes that land meanwhile are picked up by the next delta).
    let signpost = match job.checkpoints.get("extract-signpost", "all").await? {
        Some(c) => c.cursor.unwrap_or_default(),
        None => {
            let now = job.source.cursor_now().await?;
            job.checkpoints
                .put(&Checkpoint {
                    phase: "extract-signpost".into(),
                    partition: "all".into(),
                    cursor: Some(now.clone()),
                    done: true,
                    updated_at: now_iso(),
                })
                .await?;
            now
        }
    };
    for col in collections {
        let cp = job.checkpoints.get("extract", &col).await?;
        if cp.as_ref().is_some_and(|c| c.done) {
            counts.insert(col.clone(), count_staged(job, &col).await?);
            job.progress.advance("extract", 1);
            continue;
        }
        if cp.is_none() {
            if let Some(n) = adopt_preflight(job, &col).await? {
                counts.insert(col.clone(), n);
                job.progress.advance("extract", 1);
                continue;
            }
            clear_staged(job, &col).await?;
        }
        // The checkpoint holds the next page number with the source cursor, so a page written
        // just before a crash is overwritten, not staged twice.
        let (mut page_no, cursor): (u64, Option<String>) = cp
            .and_then(|c| c.cursor)
            .and_then(|c| serde_json::from_str(&c).ok())
            .unwrap_or((0, None));
        let resumed = page_no > 0;
        let mut pager = Pager::new(job, &col, cursor, None);
        let mut seen: Option<String> = None;
        let mut records = 0u64;
        loop {
            let pages = pager.next_batch().await?;
            if pages.is_empty() {
                break;
            }
            for page in &pages {
                for c in page.records.iter().filter_map(|r| r.cursor_value.as_ref()) {
                    if seen.as_ref().is_none_or(|s| c > s) {
                        seen = Some(c.clone());
                    }
                }
                records += page.records.len() as u64;
                put_page(job, &keys::raw_page(&col, page_no), &page.records).await?;
                page_no += 1;
            }
            let cursor = pager.cursor().map(str::to_string);
            job.checkpoints
                .put(&Checkpoint {
                    phase: "extract".into(),
                    partition: col.clone(),
                    cursor: Some(serde_json::to_string(&(page_no, &cursor))?),
                    done: cursor.is_none(),
                    updated_at: now_iso(),
                })
                .await?;
        }
        if resumed {
            // Pages staged before the interruption count too.
            seen = staged_records(job, &col)
                .await?
                .into_iter()
                .filter_map(|r| r.cursor_value)
                .max();
            records = count_staged(job, &col).await?;
        }
        set_delta_cursor(job, &col, seen, &signpost).await?;
        counts.insert(col.clone(), records);
        job.progress.advance("extract", 1);
    }
    job.progress
        .finish("extract", &format!("{} collections staged", counts.len()));
    Ok(counts)
}

/// Stores where the next delta of `collection` starts: the highest stamp seen, capped at the
/// signpost taken when the read began.
pub async fn set_delta_cursor(
    job: &Job,
    collection: &str,
    seen: Option<String>,
    signpost: &str,
) -> Result<()> {
    let previous = job
        .checkpoints
        .get("delta-cursor", collection)
        .await?
        .and_then(|c| c.cursor);
    let candidate = seen.map(|s| {
        if s.as_str() > signpost {
            signpost.to_string()
        } else {
            s
        }
    });
    let cursor = match (previous, candidate) {
        (Some(p), Some(c)) => Some(if c > p { c } else { p }),
        (p, c) => c.or(p),
    };
    job.checkpoints
        .put(&Checkpoint {
            phase: "delta-cursor".into(),
            partition: collection.to_string(),
            cursor,
            done: true,
            updated_at: now_iso(),
        })
        .await
}

async fn count_staged(job: &Job, collection: &str) -> Result<u64> {
    let mut n = 0;
    for key in job.stage.list(&keys::raw_prefix(collection)).await? {
        let recs: Vec<RawRecord> = get_json(job, &key).await?.unwrap_or_default();
        n += recs.len() as u64;
    }
    Ok(n)
}

/// The staged pages of a collection, as (page key, records).
pub async fn staged_pages(job: &Job, collection: &str) -> Result<Vec<String>> {
    job.stage.list(&keys::raw_prefix(collection)).await
}

/// The staged records of a collection, one page in memory at a time.
pub struct StagedRecords<'a> {
    job: &'a Job,
    pages: std::vec::IntoIter<String>,
    current: std::vec::IntoIter<RawRecord>,
}

impl<'a> StagedRecords<'a> {
    pub async fn new(job: &'a Job, collection: &str) -> Result<StagedRecords<'a>> {
        Ok(StagedRecords {
            job,
            pages: staged_pages(job, collection).await?.into_iter(),
            current: Vec::new().into_iter(),
        })
    }

    pub async fn next(&mut self) -> Result<Option<RawRecord>> {
        loop {
            if let Some(r) = self.current.next() {
                return Ok(Some(r));
            }
            let Some(page) = self.pages.next() else {
                return Ok(None);
            };
            let recs: Vec<RawRecord> = get_json(self.job, &page).await?.unwrap_or_default();
            self.current = recs.into_iter();
        }
    }
}

/// What a scan over every staged record needs of each: its id, its files and the text of one
/// field. Parsed without building the record's other fields (they are skipped as raw JSON), which
/// makes a scan several times cheaper than reading the records.
pub(crate) struct RecordHead {
    pub id: String,
    pub attachments: Vec<AttachmentRef>,
    /// The text of the field asked for, if the record has it.
    pub field: Option<String>,
}

#[derive(Deserialize)]
struct BorrowedHead<'a> {
    id: String,
    #[serde(borrow)]
    fields: BTreeMap<&'a str, &'a serde_json::value::RawValue>,
    #[serde(default)]
    attachments: Vec<AttachmentRef>,
}

/// The heads of a staged page's records (see [`RecordHead`]), with `field`'s text.
pub(crate) async fn staged_heads(
    job: &Job,
    page: &str,
    field: Option<&str>,
) -> Result<Vec<RecordHead>> {
    let Some(bytes) = job.stage.get(page).await? else {
        return Ok(Vec::new());
    };
    let text_of = |raw: &serde_json::value::RawValue| {
        serde_json::from_str::<serde_json::Value>(raw.get())
            .map(|v| value_text(&v))
            .ok()
    };
    match serde_json::from_slice::<Vec<BorrowedHead>>(&bytes) {
        Ok(heads) => Ok(heads
            .into_iter()
            .map(|h| RecordHead {
                field: field
                    .and_then(|f| h.fields.get(f).copied())
                    .and_then(text_of),
                id: h.id,
                attachments: h.attachments,
            })
            .collect()),
        // A field name with an escape in it cannot be borrowed: read the records whole.
        Err(_) => Ok(serde_json::from_slice::<Vec<RawRecord>>(&bytes)?
            .into_iter()
            .map(|r| RecordHead {
                field: field.and_then(|f| r.fields.get(f)).map(value_text),
                id: r.id,
                attachments: r.attachments,
            })
            .collect()),
    }
}

/// The records that mapped fields look up without loading them (custom modules), by name.
pub async fn lookups(job: &Job, map: &FieldMap) -> Result<crate::transform::Lookups> {
    let mut out = crate::transform::Lookups::new();
    for collection in map.lookup_collections() {
        let names = out.entry(collection.clone()).or_default();
        let mut records = StagedRecords::new(job, &collection).await?;
        while let Some(raw) = records.next().await? {
            names.insert(raw.id.clone(), crate::transform::lookup_name(&raw));
        }
    }
    Ok(out)
}

/// Every staged record of a collection at once (small collections; see [`StagedRecords`]).
pub async fn staged_records(job: &Job, collection: &str) -> Result<Vec<RawRecord>> {
    let mut out = Vec::new();
    for key in staged_pages(job, collection).await? {
        let recs: Vec<RawRecord> = get_json(job, &key).await?.unwrap_or_default();
        out.extend(recs);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// 6. Agents

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AgentRow {
    pub source_id: String,
    pub username: Option<String>,
    pub email: Option<String>,
    pub name: String,
    pub active: bool,
    pub groups: Vec<String>,
    pub suggested_role: String,
    /// Matched destination agent id, if any.
    pub dest_id: Option<String>,
    pub status: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AgentsReport {
    pub matched: usize,
    pub provisioning_queue: usize,
    pub inactive: usize,
    pub agents: Vec<AgentRow>,
}

/// Source users by username, for author and assignee resolution.
pub async fn users(job: &Job, map: &FieldMap) -> Result<BTreeMap<String, Person>> {
    let mut out = BTreeMap::new();
    let Some(cm) = map.for_kind(ObjectKind::Agent) else {
        return Ok(out);
    };
    let t = Transformer::new(map, BTreeMap::new(), job.source_zone.clone());
    for raw in staged_records(job, &cm.collection).await? {
        if let Some(a) = t.agent(&raw)
            && let Some(u) = a.username.clone()
        {
            let name = [a.first_name.clone(), a.last_name.clone()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            out.insert(
                u.clone(),
                Person {
                    username: Some(u),
                    email: a.email.clone(),
                    name: (!name.is_empty()).then_some(name),
                },
            );
        }
    }
    Ok(out)
}

pub async fn agents(job: &Job) -> Result<AgentsReport> {
    let map = approved_map(job).await?;
    let dest = job.describe().await?;
    let by_email: BTreeMap<String, &DestAgent> = dest
        .agents
        .iter()
        .map(|a| (a.email.to_ascii_lowercase(), a))
        .collect();
    let mut report = AgentsReport::default();
    let Some(cm) = map.for_kind(ObjectKind::Agent) else {
        put_json(job, keys::AGENTS, &report).await?;
        return Ok(report);
    };
    let group_names: BTreeMap<String, String> = match map.for_kind(ObjectKind::Group) {
        Some(g) => staged_records(job, &g.collection)
            .await?
            .into_iter()
            .map(|r| {
                let name = g
                    .standard("name")
                    .and_then(|f| r.fields.get(&f.source))
                    .map(value_text)
                    .unwrap_or_default();
                (r.id, name)
            })
            .collect(),
        None => BTreeMap::new(),
    };
    let t = Transformer::new(&map, BTreeMap::new(), job.source_zone.clone());
    let mut links = Vec::new();
    let mut all_agents = Vec::new();
    for raw in staged_records(job, &cm.collection).await? {
        let Some(a) = t.agent(&raw) else { continue };
        all_agents.push(a.clone());
        let groups: Vec<String> = a
            .groups
            .iter()
            .map(|g| group_names.get(g).cloned().unwrap_or(g.clone()))
            .collect();
        let matched = a.email.as_deref().and_then(|e| by_email.get(e)).copied();
        let status = match (&matched, a.active) {
            (_, false) => "inactive: assignments cannot move to an inactive agent",
            (Some(_), true) => "matched",
            (None, true) => "provisioning queue: create and activate this agent in the destination",
        };
        if !a.active {
            report.inactive += 1;
        } else if matched.is_some() {
            report.matched += 1;
        } else {
            report.provisioning_queue += 1;
        }
        links.push(Link {
            kind: ObjectKind::Agent,
            source_id: raw.id.clone(),
            dest_id: matched.map(|m| m.id.clone()),
            status: if matched.is_some() {
                LinkStatus::Existing
            } else {
                LinkStatus::Skipped
            },
            payload_hash: String::new(),
            dest_hash: None,
            reason: (matched.is_none()).then(|| status.to_string()),
            updated_at: now_iso(),
        });
        report.agents.push(AgentRow {
            source_id: raw.id.clone(),
            name: [a.first_name.clone(), a.last_name.clone()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" "),
            username: a.username,
            email: a.email,
            active: a.active,
            suggested_role: suggest_role(&groups, a.role.as_deref()),
            groups,
            dest_id: matched.map(|m| m.id.clone()),
            status: status.to_string(),
        });
    }
    job.crosswalk.put_batch(&links).await?;
    job.dest.prepare_agents(&all_agents).await?;
    put_json(job, keys::AGENTS, &report).await?;
    Ok(report)
}

/// Support Administrator / Agent / Light Agent, from group names and the source role.
pub fn suggest_role(groups: &[String], role: Option<&str>) -> String {
    let text = groups
        .iter()
        .map(|g| g.to_lowercase())
        .chain(role.map(str::to_lowercase))
        .collect::<Vec<_>>()
        .join(" ");
    if ["admin", "manager", "supervisor", "owner"]
        .iter()
        .any(|k| text.contains(k))
    {
        "Support Administrator".into()
    } else if [
        "light",
        "read",
        "viewer",
        "guest",
        "collaborator",
        "billing",
        "sales",
    ]
    .iter()
    .any(|k| text.contains(k))
    {
        "Light Agent".into()
    } else {
        "Agent".into()
    }
}

// ---------------------------------------------------------------------------------------------
// Selection

/// What the job's selection moves: the tickets, and for a sample (only some tickets) just the
/// contacts and accounts those tickets need (None = all).
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub tickets: BTreeSet<String>,
    pub contacts: Option<BTreeSet<String>>,
    pub accounts: Option<BTreeSet<String>>,
    pub orphan_tasks: bool,
}

impl Scope {
    pub fn contains(&self, record: &CanonicalRecord, selected: &BTreeSet<String>) -> bool {
        match record {
            CanonicalRecord::Ticket(t) => selected.contains(&t.source_id),
            CanonicalRecord::Activity(a) => selected.contains(&a.ticket),
            CanonicalRecord::Task(t) => match &t.ticket {
                Some(p) => selected.contains(p),
                None => self.orphan_tasks,
            },
            CanonicalRecord::Contact(c) => self
                .contacts
                .as_ref()
                .is_none_or(|s| s.contains(&c.source_id)),
            CanonicalRecord::Account(a) => self
                .accounts
                .as_ref()
                .is_none_or(|s| s.contains(&a.source_id)),
        }
    }
}

/// Decides the scope from the staged records and the job's selection (deterministic, so a
/// resumed run decides the same).
pub async fn selection_scope(job: &Job, map: &FieldMap, t: &Transformer<'_>) -> Result<Scope> {
    let Some(cm) = map.for_kind(ObjectKind::Ticket) else {
        return Ok(Scope::default());
    };
    let sel = &job.settings.selection;
    let sample = !sel.only_tickets.is_empty();
    let mut scope = Scope {
        orphan_tasks: !sample,
        ..Default::default()
    };
    let mut contacts = BTreeSet::new();
    let mut accounts = BTreeSet::new();
    let mut tickets = StagedRecords::new(job, &cm.collection).await?;
    while let Some(raw) = tickets.next().await? {
        let Ok(Transformed {
            record: CanonicalRecord::Ticket(tk),
            ..
        }) = t.transform(ObjectKind::Ticket, &raw)
        else {
            // Untransformable tickets stay selected so that the load reports them as failed.
            scope.tickets.insert(raw.id.clone());
            continue;
        };
        if ticket_selected(sel, map, &raw, &tk) {
            contacts.extend(tk.contact.clone());
            accounts.extend(tk.account.clone());
            scope.tickets.insert(raw.id.clone());
        }
    }
    if sample {
        if let Some(cc) = map.for_kind(ObjectKind::Contact) {
            for raw in staged_records(job, &cc.collection).await? {
                if contacts.contains(&raw.id)
                    && let Ok(Transformed {
                        record: CanonicalRecord::Contact(c),
                        ..
                    }) = t.transform(ObjectKind::Contact, &raw)
                {
                    accounts.extend(c.account);
                }
            }
        }
        scope.contacts = Some(contacts);
        scope.accounts = Some(accounts);
    }
    Ok(scope)
}

fn ticket_selected(sel: &Selection, map: &FieldMap, raw: &RawRecord, tk: &Ticket) -> bool {
    let cm = map
        .for_kind(ObjectKind::Ticket)
        .expect("ticket map checked by caller");
    let in_range = |v: &Option<String>, from: &Option<String>, to: &Option<String>| {
        let Some(v) = v else {
            return from.is_none() && to.is_none();
        };
        from.as_ref().is_none_or(|f| v.as_str() >= f.as_str())
            && to
                .as_ref()
                .is_none_or(|t| v.as_str() <= t.as_str() || v.starts_with(t.as_str()))
    };
    if !sel.only_tickets.is_empty() && !sel.only_tickets.contains(&raw.id) {
        return false;
    }
    if !in_range(&tk.created_at, &sel.created_from, &sel.created_to)
        || !in_range(&tk.modified_at, &sel.modified_from, &sel.modified_to)
    {
        return false;
    }
    if !sel.departments.is_empty()
        && !tk
            .department
            .as_ref()
            .is_some_and(|d| sel.departments.contains(d))
    {
        return false;
    }
    if !sel.statuses.is_empty() {
        let raw_status = cm
            .standard("status")
            .and_then(|f| raw.fields.get(&f.source))
            .map(value_text);
        if !raw_status.is_some_and(|s| sel.statuses.contains(&s)) {
            return false;
        }
    }
    if sel.exclude_spam
        && let Some(f) = cm.standard("spam")
        && raw
            .fields
            .get(&f.source)
            .map(value_text)
            .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "yes"))
    {
        return false;
    }
    if sel.exclude_test
        && sel
            .test_prefixes
            .iter()
            .any(|p| tk.subject.trim_start().starts_with(p.as_str()))
    {
        return false;
    }
    true
}

// ---------------------------------------------------------------------------------------------
// 7. Load, with its reconciliation gate

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Reconciliation {
    pub kind: Option<ObjectKind>,
    pub at: String,
    /// Records of this kind in the source (staged).
    pub source_total: u64,
    /// Excluded by the job's selection (spam, test, out of range, children of excluded tickets).
    pub excluded: u64,
    /// What the job had to move.
    pub in_scope: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub existing: u64,
    pub failed: u64,
    pub failures_by_reason: BTreeMap<String, u64>,
    pub destination_before: Option<u64>,
    pub destination_now: Option<u64>,
    /// Differences not explained by the numbers above.
    pub unexplained: Vec<String>,
    pub passed: bool,
    /// Links between related tickets (ticket loads into destinations that link them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relations: Option<Relations>,
}

/// What the ticket load did with related tickets: a pair is linked once both are written.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Relations {
    /// Pairs of related tickets in the records this load read.
    pub pairs: u64,
    pub linked: u64,
    /// Linked by an earlier run or invocation.
    pub already: u64,
    /// `ticket -> other`: the other ticket is not written (outside the selection, failed, or in a
    /// partition still to come); the load that writes it links them.
    pub unresolved: Vec<String>,
    /// `ticket -> other: reason`: the destination refused the link; the next run tries again.
    pub failed: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FailedRecord {
    pub kind: ObjectKind,
    pub source_id: String,
    pub phase: String,
    pub reason: String,
    pub error: String,
    pub at: String,
    pub payload: serde_json::Value,
}

/// Shared, read-only context of one load phase.
struct LoadEnv<'a> {
    job: &'a Job,
    kind: ObjectKind,
    base: LoadContext,
    /// Destination length limits, `kind.field` -> characters.
    max_lengths: BTreeMap<String, usize>,
    /// The destination takes inline images' bytes with the record (`DestinationInfo::inline_media`).
    inline_media: bool,
    /// Accounts whose name an earlier staged account already has: created with their source id
    /// in the name rather than refused first (see [`later_namesakes`]).
    namesakes: HashSet<String>,
    flags: std::sync::Mutex<Vec<Flag>>,
    /// Created records' crosswalk and audit entries not yet written (see `record_written`).
    written: std::sync::Mutex<(Vec<Link>, Vec<AuditEntry>)>,
}

/// Created records whose crosswalk and audit entries are written together in one store call each.
const WRITE_GROUP: usize = 50;

fn strip_reference(record: &mut CanonicalRecord, kind: ObjectKind) {
    match (record, kind) {
        (CanonicalRecord::Contact(c), ObjectKind::Account) => c.account = None,
        (CanonicalRecord::Ticket(t), ObjectKind::Contact) => t.contact = None,
        (CanonicalRecord::Ticket(t), ObjectKind::Account) => t.account = None,
        (CanonicalRecord::Task(t), ObjectKind::Ticket) => t.ticket = None,
        _ => {}
    }
}

fn truncate_chars(s: &mut String, max: usize) -> Option<String> {
    if max == 0 || s.chars().count() <= max {
        return None;
    }
    let full = s.clone();
    *s = s.chars().take(max.saturating_sub(1)).collect::<String>() + "…";
    Some(full)
}

#[derive(Default)]
struct Tally {
    created: u64,
    updated: u64,
    unchanged: u64,
    existing: u64,
    failed: u64,
    reasons: BTreeMap<String, u64>,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.created += other.created;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.existing += other.existing;
        self.failed += other.failed;
        for (reason, n) in other.reasons {
            *self.reasons.entry(reason).or_insert(0) += n;
        }
    }
}

enum Outcome {
    Created,
    Updated,
    Unchanged,
    Failed(String),
    /// Throttled or out of budget past the client's own retries: the record is not failed; the
    /// batch stays open and the phase stops with this error, so the caller (a person, or the
    /// state machine's Retry and Wait) resumes it later.
    Deferred(Error),
}

pub async fn load(job: &Job, kind: ObjectKind) -> Result<Reconciliation> {
    let map = approved_map(job).await?;
    let Some(cm) = map.for_kind(kind) else {
        return Ok(Reconciliation {
            kind: Some(kind),
            at: now_iso(),
            passed: true,
            ..Default::default()
        });
    };
    // Page checkpoints hold for one selection: a changed selection (a sample, then the full run)
    // or a rollback in between starts the pages again (unchanged records are skipped by hash).
    let selection = crate::util::sha256_hex(&serde_json::to_vec(&job.settings.selection)?);
    let phase = format!("load-{kind}");
    let recorded = job
        .checkpoints
        .get("load-selection", kind.as_str())
        .await?
        .and_then(|c| c.cursor);
    if recorded.as_deref() != Some(selection.as_str()) {
        job.checkpoints.clear(&phase).await?;
        job.checkpoints
            .put(&Checkpoint {
                phase: "load-selection".into(),
                partition: kind.to_string(),
                cursor: Some(selection),
                done: true,
                updated_at: now_iso(),
            })
            .await?;
    }
    // A ticket's activities become its thread: they are written one after another in their
    // original order, so all pages are taken as one batch grouped by ticket.
    let batches = if kind == ObjectKind::Activity {
        Batches::Whole(keys::raw_prefix(&cm.collection))
    } else {
        Batches::Pages(staged_pages(job, &cm.collection).await?)
    };
    load_batches(job, kind, batches, &phase, true).await
}

/// Which staged records a load reads: pages one by one (checkpointed), or every page under a
/// prefix as whole ticket threads (activities: a thread is written in order by one task).
pub enum Batches {
    Pages(Vec<String>),
    Whole(String),
    /// Given thread batches (an AWS partition: see [`thread_batches`]).
    Threads(Vec<ThreadBatch>),
}

/// Whole ticket threads to load together: the tickets, and the staged pages their records are on.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ThreadBatch {
    /// The checkpoint name of the batch.
    pub key: String,
    pub pages: Vec<String>,
    pub tickets: BTreeSet<String>,
}

/// Staged pages' worth of activities per thread batch: a batch is read, written and
/// checkpointed as one, so memory holds one batch, not the tenant's activities.
const THREAD_BATCH_PAGES: usize = 10;

/// One checkpointed unit of a load: a staged page, or the pages holding a set of whole threads.
struct Unit {
    key: String,
    pages: Vec<String>,
    /// Only these tickets' records (thread batches); None = every record of the pages.
    tickets: Option<HashSet<String>>,
}

fn thread_units(batches: Vec<ThreadBatch>) -> Vec<Unit> {
    batches
        .into_iter()
        .map(|b| Unit {
            key: b.key,
            pages: b.pages,
            tickets: Some(b.tickets.into_iter().collect()),
        })
        .collect()
}

/// The source field holding an activity's ticket, by the approved map.
pub fn activity_ticket_field(map: &FieldMap) -> Option<String> {
    map.for_kind(ObjectKind::Activity)
        .and_then(|cm| cm.standard("ticket"))
        .map(|f| f.source.clone())
}

/// The ticket a staged activity belongs to, by the approved map's `ticket` field.
fn raw_ticket(raw: &RawRecord, field: Option<&str>) -> String {
    field
        .and_then(|f| raw.fields.get(f))
        .map(value_text)
        .unwrap_or_default()
}

/// Splits the activity pages under `prefix` into batches of whole ticket threads (the ticket in
/// `ticket_field`, see [`activity_ticket_field`]), tickets in staged order, each at least `target`
/// records unless it is the last. One read of every page builds a ticket index (ids and page
/// numbers only); each batch then reads just the pages its threads are on.
pub async fn thread_batches(
    job: &Job,
    prefix: &str,
    ticket_field: Option<&str>,
    target: usize,
) -> Result<Vec<ThreadBatch>> {
    let pages = job.stage.list(prefix).await?;
    let mut order: Vec<String> = Vec::new();
    let mut index: HashMap<String, (usize, Vec<usize>)> = HashMap::new();
    for (i, page) in pages.iter().enumerate() {
        for head in staged_heads(job, page, ticket_field).await? {
            let ticket = head.field.unwrap_or_default();
            let entry = index.entry(ticket).or_insert_with_key(|t| {
                order.push(t.clone());
                (0, Vec::new())
            });
            entry.0 += 1;
            if entry.1.last() != Some(&i) {
                entry.1.push(i);
            }
        }
    }
    let mut units = Vec::new();
    let (mut tickets, mut on_pages, mut records) = (BTreeSet::new(), BTreeSet::new(), 0usize);
    let mut close = |tickets: &mut BTreeSet<String>, on_pages: &mut BTreeSet<usize>| {
        units.push(ThreadBatch {
            key: format!("threads-{:06}", units.len() + 1),
            pages: on_pages.iter().map(|i| pages[*i].clone()).collect(),
            tickets: std::mem::take(tickets),
        });
        on_pages.clear();
    };
    for ticket in order {
        let (n, in_pages) = index.remove(&ticket).unwrap_or_default();
        tickets.insert(ticket);
        on_pages.extend(in_pages);
        records += n;
        if records >= target {
            close(&mut tickets, &mut on_pages);
            records = 0;
        }
    }
    if !tickets.is_empty() {
        close(&mut tickets, &mut on_pages);
    }
    Ok(units)
}

/// Staged accounts whose transformed name an account earlier in the staged order already has,
/// compared as the destination compares them (exactly). Destinations that keep account names
/// unique would refuse each of them once; naming them apart up front saves those calls.
async fn later_namesakes(
    job: &Job,
    map: &FieldMap,
    t: &Transformer<'_>,
) -> Result<HashSet<String>> {
    let mut out = HashSet::new();
    let Some(cm) = map.for_kind(ObjectKind::Account) else {
        return Ok(out);
    };
    let mut seen: HashSet<String> = HashSet::new();
    let mut records = StagedRecords::new(job, &cm.collection).await?;
    while let Some(raw) = records.next().await? {
        if let Ok(tr) = t.transform(ObjectKind::Account, &raw)
            && let CanonicalRecord::Account(a) = &tr.record
            && !seen.insert(a.name.clone())
        {
            out.insert(a.source_id.clone());
        }
    }
    Ok(out)
}

/// Loads one kind from staged batches. `phase` names the checkpoints and reports; `gate` decides
/// whether the reconciliation gate compares the destination's totals (full runs) or only
/// accounts for every record read (deltas, retries).
pub async fn load_batches(
    job: &Job,
    kind: ObjectKind,
    batches: Batches,
    phase: &str,
    full: bool,
) -> Result<Reconciliation> {
    let map = approved_map(job).await?;
    let users = users(job, &map).await?;
    let t = Transformer::new(&map, users, job.source_zone.clone())
        .with_lookups(lookups(job, &map).await?);
    let scope = selection_scope(job, &map, &t).await?;
    let selected = scope.tickets.clone();
    let base = load_context(job, kind).await?;
    let info = job.describe().await?;
    let env = LoadEnv {
        job,
        kind,
        base,
        max_lengths: info.max_lengths,
        inline_media: info.inline_media,
        namesakes: if kind == ObjectKind::Account && info.unique_account_names {
            later_namesakes(job, &map, &t).await?
        } else {
            HashSet::new()
        },
        flags: std::sync::Mutex::new(Vec::new()),
        written: std::sync::Mutex::new((Vec::new(), Vec::new())),
    };
    let mut tally = Tally::default();
    let mut source_total = 0u64;
    let mut excluded = 0u64;
    // (ticket, its related tickets), for the relation pass after the batches.
    let relating = kind == ObjectKind::Ticket && info.relations;
    let mut related: Vec<(String, Vec<String>)> = Vec::new();
    let ticket_field = activity_ticket_field(&map);
    let units: Vec<Unit> = match &batches {
        Batches::Pages(p) => p
            .iter()
            .map(|k| Unit {
                key: k.clone(),
                pages: vec![k.clone()],
                tickets: None,
            })
            .collect(),
        Batches::Whole(prefix) => {
            let target = job.settings.page_size.max(1) as usize * THREAD_BATCH_PAGES;
            thread_units(thread_batches(job, prefix, ticket_field.as_deref(), target).await?)
        }
        Batches::Threads(b) => thread_units(b.clone()),
    };
    // Written when every thread batch is done (and by the AWS gate once every partition is).
    let all_done = matches!(batches, Batches::Whole(_))
        && job
            .checkpoints
            .get(phase, "all")
            .await?
            .is_some_and(|c| c.done);
    job.progress.start(phase, Some(units.len() as u64));
    let concurrency = job.settings.load_concurrency_for(info.concurrency_cap);
    // Groups (records, or threads) in progress: the client keeps the calls within the cap.
    let groups = concurrency * info.records_per_slot.max(1);
    let prep = UnitPrep {
        job,
        kind,
        phase,
        t: &t,
        scope: &scope,
        selected: &selected,
        relating,
        ticket_field: ticket_field.as_deref(),
        all_done,
    };
    // Units overlap: the next unit is read and its first groups start while the last groups of
    // the one before are still in flight, so the destination's slots stay full across unit
    // boundaries. Each unit's checkpoint is written when all its groups are done.
    let mut open: BTreeMap<usize, OpenUnit> = BTreeMap::new();
    let mut in_flight = futures::stream::FuturesUnordered::new();
    let mut reading: Option<
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<Prepared>> + Send + '_>>,
    > = None;
    let mut next = 0usize;
    // The last page read: consecutive thread batches share their boundary page.
    let mut last_page: Option<(String, Vec<RawRecord>)> = None;
    // The first deferral: no unit is opened and no group started after it.
    let mut deferred: Option<Error> = None;
    loop {
        if deferred.is_none() {
            while in_flight.len() < groups {
                let Some((seq, u)) = open.iter_mut().find(|(_, u)| !u.queue.is_empty()) else {
                    break;
                };
                let group = u.queue.pop_front().expect("a queued group");
                u.running += 1;
                in_flight.push(run_group(&env, *seq, group));
            }
            if reading.is_none()
                && next < units.len()
                && open.len() < OPEN_UNITS
                && open.values().all(|u| u.queue.is_empty())
            {
                reading = Some(Box::pin(prep.read(&units[next], last_page.take())));
                next += 1;
            }
        }
        if in_flight.is_empty() && reading.is_none() {
            break;
        }
        tokio::select! {
            Some((seq, outcomes)) = in_flight.next(), if !in_flight.is_empty() => {
                let u = open.get_mut(&seq).expect("an open unit");
                u.running -= 1;
                for o in outcomes {
                    match o {
                        Outcome::Created => tally.created += 1,
                        Outcome::Updated => tally.updated += 1,
                        Outcome::Unchanged => tally.unchanged += 1,
                        Outcome::Failed(reason) => {
                            tally.failed += 1;
                            *tally.reasons.entry(reason).or_insert(0) += 1;
                        }
                        Outcome::Deferred(e) => {
                            u.deferred = true;
                            deferred = deferred.or(Some(e));
                        }
                    }
                }
                if u.running == 0 && u.queue.is_empty() {
                    let u = open.remove(&seq).expect("an open unit");
                    close_unit(&env, phase, u).await?;
                }
            }
            read = async { reading.as_mut().expect("a unit being read").await }, if reading.is_some() => {
                reading = None;
                let p = read?;
                last_page = p.last_page;
                source_total += p.source;
                excluded += p.excluded;
                related.extend(p.related);
                match p.done {
                    Some(counted) => {
                        tally.add(counted);
                        job.progress.advance(phase, 1);
                    }
                    None => {
                        let u = OpenUnit {
                            key: p.key,
                            ids: p.ids,
                            flags: p.flags,
                            queue: group_work(kind, p.work).into(),
                            running: 0,
                            deferred: false,
                        };
                        if u.queue.is_empty() {
                            close_unit(&env, phase, u).await?;
                        } else {
                            open.insert(next - 1, u);
                        }
                    }
                }
            }
        }
    }
    if let Some(e) = deferred {
        // Units left open keep their checkpoints open: a resumed phase writes only what is
        // missing. Their flags so far are kept.
        env.flush_written().await?;
        for u in open.into_values() {
            write_unit_flags(&env, phase, &u.key, &u.ids, u.flags).await?;
        }
        return Err(e);
    }
    let relations = if relating {
        Some(relate_tickets(job, &related, concurrency).await?)
    } else {
        None
    };
    let scoping: Option<Scoping> = get_json(job, keys::SCOPING).await?;
    let before = scoping.and_then(|s| s.destination_baseline.get(kind.as_str()).copied());
    let now = if full {
        job.dest.count(kind).await?
    } else {
        None
    };
    let counts = job.crosswalk.counts(kind).await?;
    let mut rec = Reconciliation {
        kind: Some(kind),
        at: now_iso(),
        source_total,
        excluded,
        in_scope: source_total - excluded,
        created: tally.created,
        updated: tally.updated,
        unchanged: tally.unchanged,
        existing: tally.existing,
        failed: tally.failed,
        failures_by_reason: tally.reasons,
        destination_before: before,
        destination_now: now,
        unexplained: vec![],
        passed: false,
        relations,
    };
    let accounted = rec.created + rec.updated + rec.unchanged + rec.existing + rec.failed;
    if accounted != rec.in_scope {
        rec.unexplained.push(format!(
            "{} records in scope but {} accounted for",
            rec.in_scope, accounted
        ));
    }
    if let (Some(b), Some(n)) = (before, now) {
        // Records removed by a rollback are gone from the destination too.
        let migrated = counts.get("created").copied().unwrap_or(0);
        if n != b + migrated {
            rec.unexplained.push(format!(
                "destination holds {n}, expected {b} before the migration + {migrated} created by it"
            ));
        }
    }
    rec.passed = rec.unexplained.is_empty();
    let report_key = if full {
        keys::reconciliation(kind)
    } else {
        format!("reports/{phase}.json")
    };
    put_json(job, &report_key, &rec).await?;
    job.progress.finish(
        phase,
        &format!("{} created, {} failed", rec.created, rec.failed),
    );
    if !rec.passed && job.settings.strict_gates {
        return Err(Error::Gate {
            kind,
            message: rec.unexplained.join("; "),
        });
    }
    Ok(rec)
}

/// Units whose records may be in flight at once: the one being started and those finishing.
const OPEN_UNITS: usize = 3;

/// A unit whose groups are queued or in flight.
struct OpenUnit {
    key: String,
    /// Its records' source ids: the flags raised while writing them belong to this unit.
    ids: HashSet<String>,
    /// Flags from the transform.
    flags: Vec<Flag>,
    queue: std::collections::VecDeque<Vec<Work>>,
    running: usize,
    /// A group of it was deferred: its checkpoint stays open.
    deferred: bool,
}

/// A unit read and transformed, ready to write (or counted, when its checkpoint is done).
struct Prepared {
    key: String,
    /// Some(counts) when the unit's checkpoint is done: counted from the crosswalk.
    done: Option<Tally>,
    work: Vec<Work>,
    ids: HashSet<String>,
    flags: Vec<Flag>,
    related: Vec<(String, Vec<String>)>,
    source: u64,
    excluded: u64,
    last_page: Option<(String, Vec<RawRecord>)>,
}

/// What reading a unit needs: the load's transform, selection and checkpoints.
struct UnitPrep<'a> {
    job: &'a Job,
    kind: ObjectKind,
    phase: &'a str,
    t: &'a Transformer<'a>,
    scope: &'a Scope,
    selected: &'a BTreeSet<String>,
    relating: bool,
    ticket_field: Option<&'a str>,
    all_done: bool,
}

impl UnitPrep<'_> {
    /// Reads a unit's pages (reusing `last_page` when the unit starts on it) and transforms its
    /// records; a unit whose checkpoint is done is counted from the crosswalk instead.
    async fn read(
        &self,
        unit: &Unit,
        mut last_page: Option<(String, Vec<RawRecord>)>,
    ) -> Result<Prepared> {
        let job = self.job;
        let mut raws: Vec<RawRecord> = Vec::new();
        for page in &unit.pages {
            let records = match last_page.take() {
                Some((k, r)) if k == *page => r,
                _ => get_json(job, page).await?.unwrap_or_default(),
            };
            match &unit.tickets {
                Some(tickets) => {
                    raws.extend(
                        records
                            .iter()
                            .filter(|r| tickets.contains(&raw_ticket(r, self.ticket_field)))
                            .cloned(),
                    );
                    last_page = Some((page.clone(), records));
                }
                None => raws.extend(records),
            }
        }
        let done = self.all_done
            || job
                .checkpoints
                .get(self.phase, &unit.key)
                .await?
                .is_some_and(|c| c.done);
        let mut out = Prepared {
            key: unit.key.clone(),
            done: None,
            work: Vec::with_capacity(raws.len()),
            ids: HashSet::with_capacity(raws.len()),
            flags: Vec::new(),
            related: Vec::new(),
            source: raws.len() as u64,
            excluded: 0,
            last_page,
        };
        for raw in raws {
            match self.t.transform(self.kind, &raw) {
                Ok(tr) => {
                    if !self.scope.contains(&tr.record, self.selected) {
                        out.excluded += 1;
                        continue;
                    }
                    out.flags.extend(tr.flags);
                    if let CanonicalRecord::Ticket(t) = &tr.record
                        && self.relating
                        && !t.related_tickets.is_empty()
                    {
                        out.related
                            .push((t.source_id.clone(), t.related_tickets.clone()));
                    }
                    out.ids.insert(tr.record.source_id().to_string());
                    out.work.push(Ok(tr.record));
                }
                Err(e) => {
                    out.ids.insert(raw.id.clone());
                    out.work.push(Err((raw, e)));
                }
            }
        }
        if done {
            // Counted from the crosswalk; nothing to write again.
            let mut tally = Tally::default();
            for w in std::mem::take(&mut out.work) {
                let id = match w {
                    Ok(r) => r.source_id().to_string(),
                    Err((raw, _)) => raw.id,
                };
                match job.crosswalk.get(self.kind, &id).await? {
                    Some(l) if l.status == LinkStatus::Created => tally.unchanged += 1,
                    Some(l) if l.status == LinkStatus::Existing => tally.existing += 1,
                    Some(l) => {
                        tally.failed += 1;
                        *tally
                            .reasons
                            .entry(l.reason.unwrap_or_else(|| l.status.as_str().into()))
                            .or_insert(0) += 1;
                    }
                    None => tally.unchanged += 1,
                }
            }
            out.done = Some(tally);
        }
        Ok(out)
    }
}

/// Writes one group in order, stopping at a deferral (a group is one ticket's thread).
async fn run_group(env: &LoadEnv<'_>, seq: usize, group: Vec<Work>) -> (usize, Vec<Outcome>) {
    let mut out = Vec::with_capacity(group.len());
    for w in group {
        let o = match w {
            Ok(record) => env.load_one(record).await,
            Err((raw, e)) => env.fail_raw(&raw, &e).await,
        };
        let deferred = matches!(o, Outcome::Deferred(_));
        out.push(o);
        if deferred {
            break;
        }
    }
    (seq, out)
}

/// A unit whose groups are all done: its written records' entries are stored, its flags
/// written, and, unless a group was deferred, its checkpoint closed.
async fn close_unit(env: &LoadEnv<'_>, phase: &str, u: OpenUnit) -> Result<()> {
    env.flush_written().await?;
    write_unit_flags(env, phase, &u.key, &u.ids, u.flags).await?;
    if !u.deferred {
        env.job
            .checkpoints
            .put(&Checkpoint {
                phase: phase.to_string(),
                partition: u.key,
                cursor: None,
                done: true,
                updated_at: now_iso(),
            })
            .await?;
        env.job.progress.advance(phase, 1);
    }
    Ok(())
}

/// Writes a unit's flags: the transform's and those raised while writing its records, added to
/// any the unit's file already holds (a resumed unit keeps the flags of its first run).
async fn write_unit_flags(
    env: &LoadEnv<'_>,
    phase: &str,
    key: &str,
    ids: &HashSet<String>,
    mut flags: Vec<Flag>,
) -> Result<()> {
    {
        let mut all = env.flags.lock().unwrap();
        let (mine, rest): (Vec<Flag>, Vec<Flag>) = std::mem::take(&mut *all)
            .into_iter()
            .partition(|f| ids.contains(&f.source_id));
        *all = rest;
        flags.extend(mine);
    }
    if flags.is_empty() {
        return Ok(());
    }
    let file = keys::flags(phase, key);
    let mut kept: Vec<Flag> = get_json(env.job, &file).await?.unwrap_or_default();
    for f in flags {
        if !kept.contains(&f) {
            kept.push(f);
        }
    }
    put_json(env.job, &file, &kept).await
}

/// Links related tickets whose both ends are written. A pair is one link whichever side lists
/// it (the first listing read gives its direction), checkpointed under both destination ids, so
/// a re-run, a later partition or the gate after a fan-out writes each link once, and a pair
/// recreated after a rollback is linked again.
async fn relate_tickets(
    job: &Job,
    related: &[(String, Vec<String>)],
    concurrency: usize,
) -> Result<Relations> {
    let mut pairs: BTreeMap<(String, String), (String, String)> = BTreeMap::new();
    for (ticket, others) in related {
        for other in others.iter().filter(|o| *o != ticket) {
            let key = if ticket < other {
                (ticket.clone(), other.clone())
            } else {
                (other.clone(), ticket.clone())
            };
            pairs
                .entry(key)
                .or_insert_with(|| (ticket.clone(), other.clone()));
        }
    }
    let ids: BTreeSet<String> = pairs
        .keys()
        .flat_map(|(a, b)| [a.clone(), b.clone()])
        .collect();
    let written: BTreeMap<String, String> = futures::stream::iter(ids)
        .map(|id| async move {
            let link = job.crosswalk.get(ObjectKind::Ticket, &id).await?;
            Ok::<_, Error>(link.and_then(|l| {
                matches!(l.status, LinkStatus::Created | LinkStatus::Existing)
                    .then_some(l.dest_id)
                    .flatten()
                    .map(|d| (id, d))
            }))
        })
        .buffer_unordered(concurrency.max(1))
        .try_filter_map(|found| async move { Ok(found) })
        .try_collect()
        .await?;
    let mut out = Relations {
        pairs: pairs.len() as u64,
        ..Default::default()
    };
    // Per pair: None = an end is not written yet, Some(Ok(true)) linked now, Some(Ok(false))
    // linked before, Some(Err(reason)) refused.
    type PairOutcome = (String, Option<std::result::Result<bool, String>>);
    let results: Vec<Result<PairOutcome>> =
        futures::stream::iter(pairs.into_iter().map(|((a, b), (ticket, other))| {
            let written = &written;
            async move {
                let label = format!("{ticket} -> {other}");
                let (Some(from), Some(to)) = (written.get(&ticket), written.get(&other)) else {
                    return Ok((label, None));
                };
                let partition = format!("{a}|{b}");
                let cursor = format!("{from}|{to}");
                let reverse = format!("{to}|{from}");
                if let Some(c) = job.checkpoints.get("relations", &partition).await?
                    && c.done
                    && (c.cursor.as_deref() == Some(cursor.as_str())
                        || c.cursor.as_deref() == Some(reverse.as_str()))
                {
                    return Ok((label, Some(Ok(false))));
                }
                match job.dest.relate(&ticket, from, to).await {
                    Ok(()) => {}
                    Err(
                        e @ (Error::Throttled { .. }
                        | Error::BudgetExhausted { .. }
                        | Error::Config(_)
                        | Error::Store(_)),
                    ) => return Err(e),
                    Err(e) => return Ok((label, Some(Err(e.to_string())))),
                }
                job.checkpoints
                    .put(&Checkpoint {
                        phase: "relations".into(),
                        partition,
                        cursor: Some(cursor),
                        done: true,
                        updated_at: now_iso(),
                    })
                    .await?;
                Ok((label, Some(Ok(true))))
            }
        }))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    for r in results {
        match r? {
            (_, Some(Ok(true))) => out.linked += 1,
            (_, Some(Ok(false))) => out.already += 1,
            (label, Some(Err(reason))) => out.failed.push(format!("{label}: {reason}")),
            (label, None) => out.unresolved.push(label),
        }
    }
    out.unresolved.sort();
    out.failed.sort();
    Ok(out)
}

type Work = std::result::Result<CanonicalRecord, (RawRecord, Error)>;

/// Units written concurrently; within a unit, in order. Activities: one unit per ticket, by
/// original time. Everything else: one record per unit.
fn group_work(kind: ObjectKind, work: Vec<Work>) -> Vec<Vec<Work>> {
    if kind != ObjectKind::Activity {
        return work.into_iter().map(|w| vec![w]).collect();
    }
    let mut by_ticket: BTreeMap<String, Vec<Work>> = BTreeMap::new();
    let mut failed = Vec::new();
    for w in work {
        match &w {
            Ok(CanonicalRecord::Activity(a)) => {
                by_ticket.entry(a.ticket.clone()).or_default().push(w)
            }
            _ => failed.push(vec![w]),
        }
    }
    let order = |w: &Work| match w {
        Ok(CanonicalRecord::Activity(a)) => (
            a.created_at.clone().unwrap_or_default(),
            a.source_id.parse::<u64>().unwrap_or(u64::MAX),
            a.source_id.clone(),
        ),
        _ => (String::new(), 0, String::new()),
    };
    let mut out: Vec<Vec<Work>> = by_ticket
        .into_values()
        .map(|mut g| {
            g.sort_by_key(|w| order(w));
            g
        })
        .collect();
    out.extend(failed);
    out
}

/// The destination context a record of `kind` is written with (agents, custom fields, departments).
pub async fn load_context_for(job: &Job, kind: ObjectKind) -> Result<LoadContext> {
    load_context(job, kind).await
}

async fn load_context(job: &Job, kind: ObjectKind) -> Result<LoadContext> {
    let info = job.describe().await?;
    let fields: Vec<DestField> = get_json(job, keys::SCHEMA).await?.unwrap_or_default();
    Ok(LoadContext {
        resolved: Resolved::default(),
        agents: info
            .agents
            .iter()
            .filter(|a| a.active)
            .map(|a| (a.email.to_ascii_lowercase(), a.id.clone()))
            .collect::<BTreeMap<_, _>>()
            .into(),
        custom_fields: fields
            .into_iter()
            .filter(|f| f.kind == kind)
            .map(|f| (f.label.clone(), f))
            .collect::<BTreeMap<_, _>>()
            .into(),
        departments: info
            .departments
            .iter()
            .map(|d| (d.name.clone(), d.id.clone()))
            .collect::<BTreeMap<_, _>>()
            .into(),
        source_platform: job.source.platform().to_string(),
        inline_images: BTreeMap::new(),
        stored_images: Default::default(),
    })
}

impl LoadEnv<'_> {
    async fn fail_raw(&self, raw: &RawRecord, e: &Error) -> Outcome {
        let reason = reason_of(e);
        let _ = self
            .record_failure(
                &raw.id,
                "transform",
                &reason,
                e,
                serde_json::to_value(raw).unwrap_or_default(),
            )
            .await;
        Outcome::Failed(reason)
    }

    async fn record_failure(
        &self,
        source_id: &str,
        phase: &str,
        reason: &str,
        e: &Error,
        payload: serde_json::Value,
    ) -> Result<()> {
        let failed = FailedRecord {
            kind: self.kind,
            source_id: source_id.to_string(),
            phase: phase.to_string(),
            reason: reason.to_string(),
            error: e.to_string(),
            at: now_iso(),
            payload,
        };
        put_json(self.job, &keys::failed(self.kind, source_id), &failed).await?;
        self.job
            .crosswalk
            .put_batch(&[Link {
                kind: self.kind,
                source_id: source_id.to_string(),
                dest_id: None,
                status: LinkStatus::Failed,
                payload_hash: String::new(),
                dest_hash: None,
                reason: Some(reason.to_string()),
                updated_at: now_iso(),
            }])
            .await
    }

    async fn load_one(&self, record: CanonicalRecord) -> Outcome {
        match self.try_load(&record).await {
            Ok(o) => o,
            Err(e @ (Error::Throttled { .. } | Error::BudgetExhausted { .. })) => {
                Outcome::Deferred(e)
            }
            Err(e) => {
                let reason = reason_of(&e);
                let payload = serde_json::to_value(&record).unwrap_or_default();
                if let Err(store) = self
                    .record_failure(record.source_id(), "load", &reason, &e, payload)
                    .await
                {
                    return Outcome::Failed(format!(
                        "{reason} (and the failure could not be stored: {store})"
                    ));
                }
                Outcome::Failed(reason)
            }
        }
    }

    async fn try_load(&self, record: &CanonicalRecord) -> Result<Outcome> {
        let job = self.job;
        let kind = self.kind;
        let id = record.source_id().to_string();
        let mut ctx = self.base.clone();
        ctx.stored_images = Default::default();
        let mut record = record.clone();
        for (rk, sid) in record.references() {
            match job.crosswalk.get(rk, &sid).await? {
                Some(l)
                    if matches!(l.status, LinkStatus::Created | LinkStatus::Existing)
                        && l.dest_id.is_some() =>
                {
                    ctx.resolved.insert(rk, &sid, l.dest_id.unwrap_or_default());
                }
                other => {
                    let why = other
                        .map(|l| l.status.as_str().to_string())
                        .unwrap_or_else(|| "not migrated".into());
                    if kind == ObjectKind::Activity && rk == ObjectKind::Ticket {
                        return Err(Error::data(
                            kind,
                            &id,
                            format!(
                                "its ticket {sid} is {why}; fix the ticket and run `deskshift retry-failed`"
                            ),
                        ));
                    }
                    // Moved without the link, flagged; the link is added when the record it points
                    // at arrives (the hash below covers resolved links, so a re-run updates it).
                    strip_reference(&mut record, rk);
                    self.flag(
                        &id,
                        "link_missing",
                        format!("its {rk} {sid} is {why}: moved without that link"),
                    );
                }
            }
        }
        self.fit_lengths(&mut record);
        self.check_inline_images(&record);
        let record = &record;
        let hash = crate::util::sha256_hex(
            format!(
                "{}{}",
                record.content_hash(),
                serde_json::to_string(&ctx.resolved.ids)?
            )
            .as_bytes(),
        );
        let existing = job.crosswalk.get(kind, &id).await?;
        if let Some(l) = &existing {
            match l.status {
                LinkStatus::Created | LinkStatus::Existing if l.payload_hash == hash => {
                    return Ok(Outcome::Unchanged);
                }
                LinkStatus::Created => {
                    let dest_id = l.dest_id.clone().unwrap_or_default();
                    self.fetch_inline_images(record, &mut ctx).await;
                    match job.dest.update(&dest_id, record, &ctx).await {
                        // Created apart from a namesake: the update keeps it apart.
                        Err(Error::Duplicate { field, .. }) if field == "name" => {
                            let mut apart = record.clone();
                            if !self.rename(&id, &mut apart, "another organization") {
                                return Err(Error::data(
                                    kind,
                                    &id,
                                    "the destination refuses a duplicate name",
                                ));
                            }
                            job.dest.update(&dest_id, &apart, &ctx).await?;
                        }
                        other => other?,
                    }
                    self.audit(AuditOp::Update, &id, Some(&dest_id), &hash)
                        .await?;
                    self.keep_stored_images(record, &ctx);
                    job.crosswalk
                        .put_batch(&[self.link(&id, Some(dest_id), LinkStatus::Created, &hash)])
                        .await?;
                    return Ok(Outcome::Updated);
                }
                LinkStatus::Pending | LinkStatus::Failed => {
                    // A create may have landed before a crash, or before the error that failed
                    // the record: look before creating again.
                    if let Some(dest_id) = job.dest.find_existing(record, &ctx).await? {
                        job.crosswalk
                            .put_batch(&[self.link(
                                &id,
                                Some(dest_id.clone()),
                                LinkStatus::Created,
                                &hash,
                            )])
                            .await?;
                        self.audit(AuditOp::Create, &id, Some(&dest_id), &hash)
                            .await?;
                        return Ok(Outcome::Created);
                    }
                }
                _ => {}
            }
        }
        job.crosswalk
            .put_batch(&[self.link(&id, None, LinkStatus::Pending, &hash)])
            .await?;
        self.fetch_inline_images(record, &mut ctx).await;
        let mut attempts = 0;
        let mut renamed = record.clone();
        let mut record = record;
        if self.namesakes.contains(&id) && self.rename(&id, &mut renamed, "an earlier account") {
            record = &renamed;
        }
        let mut status = LinkStatus::Created;
        let dest_id = loop {
            attempts += 1;
            match job.dest.create(record, &ctx).await {
                Ok(c) => {
                    if c.matched_existing {
                        status = LinkStatus::Existing;
                    }
                    for (code, message) in c.flags {
                        self.flag(&id, &code, message);
                    }
                    break c.id;
                }
                Err(Error::Transport {
                    ambiguous: true, ..
                })
                | Err(Error::Api {
                    status: 500..=599, ..
                }) if attempts < 4 => {
                    if let Some(d) = job.dest.find_existing(record, &ctx).await? {
                        break d;
                    }
                }
                Err(Error::Duplicate { field, .. }) if field == "name" && attempts < 4 => {
                    // Two records share a name the destination keeps unique: keep both, the
                    // later one with its source id in the name, and flag it.
                    if self.rename(&id, &mut renamed, "another organization") {
                        record = &renamed;
                    } else {
                        return Err(Error::data(
                            kind,
                            &id,
                            format!("the destination refuses a duplicate {field}"),
                        ));
                    }
                }
                Err(e) => return Err(e),
            }
        };
        let entry = (status == LinkStatus::Created)
            .then(|| self.audit_entry(AuditOp::Create, &id, Some(&dest_id), &hash));
        self.keep_stored_images(record, &ctx);
        self.record_written(self.link(&id, Some(dest_id), status, &hash), entry)
            .await?;
        Ok(Outcome::Created)
    }

    /// The record's listed files that the destination stored as its inline images: linked now
    /// (written with the record's own entry), so the attachments pass neither downloads nor
    /// looks them up again.
    fn keep_stored_images(&self, record: &CanonicalRecord, ctx: &LoadContext) {
        let stored = ctx.stored_images.take();
        if stored.is_empty() {
            return;
        }
        let (parent_kind, parent_id) = match record {
            CanonicalRecord::Activity(a) => (ObjectKind::Ticket, a.ticket.as_str()),
            other => (self.kind, other.source_id()),
        };
        let mut w = self.written.lock().unwrap();
        for (src, file_id) in stored {
            let Some(image) = ctx.inline_images.get(&src) else {
                continue;
            };
            let md5 = md5_hex(&image.bytes);
            for a in record.attachments().iter().filter(|a| a.url == src) {
                let key = attachment_key(parent_kind, parent_id, a);
                let (link, entry) = attached(key, file_id.clone(), md5.clone());
                w.0.push(link);
                w.1.push(entry);
            }
        }
    }

    /// Keeps a written record's crosswalk entry and audit entry for the next group write (at
    /// [`WRITE_GROUP`] entries or the end of the batch). Until then its `pending` entry stands: a
    /// crash in between costs a look-up of the record on resume, never a second create.
    async fn record_written(&self, link: Link, entry: Option<AuditEntry>) -> Result<()> {
        let full = {
            let mut w = self.written.lock().unwrap();
            w.0.push(link);
            w.1.extend(entry);
            w.0.len() >= WRITE_GROUP
        };
        if full {
            self.flush_written().await?;
        }
        Ok(())
    }

    /// Writes the kept crosswalk and audit entries, one store call each.
    async fn flush_written(&self) -> Result<()> {
        let (links, entries) = std::mem::take(&mut *self.written.lock().unwrap());
        if links.is_empty() {
            return Ok(());
        }
        self.job.crosswalk.put_batch(&links).await?;
        self.job.audit.append(&entries).await
    }

    /// Puts the source id into an account's name (within the destination's length limit) and
    /// flags it; false when the record is no account or already carries the id.
    fn rename(&self, id: &str, record: &mut CanonicalRecord, holder: &str) -> bool {
        let CanonicalRecord::Account(a) = record else {
            return false;
        };
        let platform = self.job.source.platform();
        if a.name.ends_with(&apart_suffix(platform, &a.source_id)) {
            return false;
        }
        let apart = name_apart(&a.name, platform, &a.source_id, &self.max_lengths);
        let original = std::mem::replace(&mut a.name, apart);
        self.flag(
            id,
            "name_duplicate",
            format!(
                "{holder} is already named {original:?}: created as {:?}",
                a.name
            ),
        );
        true
    }

    fn flag(&self, id: &str, code: &str, message: String) {
        self.flags.lock().unwrap().push(Flag {
            kind: self.kind,
            source_id: id.to_string(),
            code: code.to_string(),
            message,
        });
    }

    /// Downloads the images the record's body shows, for a destination that stores them as media.
    /// One that cannot be fetched is flagged and stays a text placeholder in the body.
    async fn fetch_inline_images(&self, record: &CanonicalRecord, ctx: &mut LoadContext) {
        if !self.inline_media {
            return;
        }
        let Some(html) = body_with_images(record) else {
            return;
        };
        for src in inline_image_sources(html) {
            if src.starts_with("cid:")
                || src.starts_with("data:")
                || ctx.inline_images.contains_key(&src)
                || self.job.source.may_fetch(&src).is_err()
            {
                continue;
            }
            let listed = record.attachments().iter().find(|a| a.url == src).cloned();
            let file = listed.unwrap_or_else(|| AttachmentRef {
                id: src.clone(),
                file_name: file_name_of(&src),
                url: src.clone(),
                size: None,
                md5: None,
                inline: true,
            });
            match self.job.source.download(&file).await {
                Ok(bytes) => {
                    ctx.inline_images.insert(
                        src,
                        InlineImage {
                            file_name: file.file_name,
                            bytes,
                        },
                    );
                }
                Err(e) => {
                    let shown: String = src.chars().take(200).collect();
                    self.flag(
                        record.source_id(),
                        "inline_image_failed",
                        format!("inline image {shown} could not be downloaded ({e}): it stays a text placeholder"),
                    );
                }
            }
        }
    }

    /// Inline images are never fetched off the source's hosts: each one elsewhere is reported.
    fn check_inline_images(&self, record: &CanonicalRecord) {
        let Some(html) = body_with_images(record) else {
            return;
        };
        for src in inline_image_sources(html) {
            let verdict = if src.starts_with("cid:") {
                Err("a cid: reference to a part of the original e-mail, which the source does not serve".to_string())
            } else if src.starts_with("data:") {
                Ok(())
            } else {
                self.job.source.may_fetch(&src)
            };
            if let Err(reason) = verdict {
                let shown: String = src.chars().take(200).collect();
                self.flag(
                    record.source_id(),
                    "inline_image_refused",
                    format!("inline image {shown} not fetched: {reason}"),
                );
            }
        }
    }

    /// Shortens values over the destination's limits (see [`fit_lengths`]) and flags each.
    fn fit_lengths(&self, record: &mut CanonicalRecord) {
        let id = record.source_id().to_string();
        for (code, message) in fit_lengths(record, &self.max_lengths) {
            self.flag(&id, &code, message);
        }
    }

    fn link(&self, id: &str, dest_id: Option<String>, status: LinkStatus, hash: &str) -> Link {
        Link {
            kind: self.kind,
            source_id: id.to_string(),
            dest_id,
            status,
            payload_hash: hash.to_string(),
            dest_hash: None,
            reason: None,
            updated_at: now_iso(),
        }
    }

    async fn audit(&self, op: AuditOp, id: &str, dest_id: Option<&str>, hash: &str) -> Result<()> {
        self.job
            .audit
            .append(&[self.audit_entry(op, id, dest_id, hash)])
            .await
    }

    fn audit_entry(&self, op: AuditOp, id: &str, dest_id: Option<&str>, hash: &str) -> AuditEntry {
        AuditEntry {
            at: now_iso(),
            op,
            kind: self.kind,
            source_id: id.into(),
            dest_id: dest_id.map(str::to_string),
            outcome: "ok".into(),
            payload_hash: hash.into(),
        }
    }
}

/// The HTML body of a ticket or activity, when it holds an image.
fn body_with_images(record: &CanonicalRecord) -> Option<&str> {
    let html = match record {
        CanonicalRecord::Ticket(t) => t.description_html.as_deref(),
        CanonicalRecord::Activity(a) => Some(a.body_html.as_str()),
        _ => None,
    };
    html.filter(|h| h.contains("<img") || h.contains("<IMG"))
}

/// The last path segment of a URL, as a file name (`image` when there is none).
fn file_name_of(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    path.rsplit('/')
        .find(|s| !s.is_empty() && !s.contains(':'))
        .unwrap_or("image")
        .to_string()
}

/// The `src` of every `<img>` in an HTML fragment (parsed, so malformed markup is handled).
pub fn inline_image_sources(html: &str) -> Vec<String> {
    let doc = scraper::Html::parse_fragment(html);
    let sel = scraper::Selector::parse("img[src]").expect("static selector");
    doc.select(&sel)
        .filter_map(|e| e.value().attr("src"))
        .map(|s| s.trim().to_string())
        .collect()
}

pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A short, groupable reason for a failure (the full error stays in the failed record).
fn reason_of(e: &Error) -> String {
    match e {
        Error::Data { message, .. } => message.split(';').next().unwrap_or(message).to_string(),
        Error::Api {
            status, endpoint, ..
        } => format!("{endpoint} answered HTTP {status}"),
        other => other.name().to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// 8. Attachments

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AttachmentsReport {
    pub total: u64,
    pub uploaded: u64,
    pub already: u64,
    pub over_limit: u64,
    pub failed: u64,
    pub md5_mismatch_declared: u64,
    pub problems: Vec<AttachmentProblem>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AttachmentProblem {
    pub record_kind: ObjectKind,
    pub record_id: String,
    pub file_name: String,
    pub url: String,
    pub size: Option<u64>,
    pub reason: String,
    /// Stage key of the downloaded bytes, kept when the upload failed (`blobs/<md5>`), so a retry
    /// or a manual transfer has the file without another download.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept: Option<String>,
}

/// The kinds whose records carry files, in the order the attachments phase takes them.
pub const FILE_KINDS: [ObjectKind; 4] = [
    ObjectKind::Account,
    ObjectKind::Contact,
    ObjectKind::Ticket,
    ObjectKind::Activity,
];

pub async fn attachments(job: &Job) -> Result<AttachmentsReport> {
    let map = approved_map(job).await?;
    let report = Arc::new(std::sync::Mutex::new(AttachmentsReport::default()));
    // The files the pre-flight counted in the mapped collections: the bar's length (the scan
    // below finds the exact number as it goes).
    let scoping: Option<Scoping> = get_json(job, keys::SCOPING).await?;
    let declared = scoping.map(|s| {
        FILE_KINDS
            .iter()
            .filter_map(|k| map.for_kind(*k))
            .filter_map(|cm| s.collections.iter().find(|c| c.collection == cm.collection))
            .map(|c| c.attachments)
            .sum::<u64>()
    });
    job.progress.start("attachments", declared);
    let info = job.describe().await?;
    let uploads = job
        .settings
        .attachment_concurrency_for(info.concurrency_cap);
    let downloads = job.settings.source_concurrency.max(1);
    // Three stages at once: the scan of the staged records finds the files, downloads run
    // ahead of uploads (each bounded by its channel), so neither the destination's slots nor
    // the source's wait on the stage before them.
    let (mut found_tx, found_rx) = futures::channel::mpsc::channel(downloads * 4);
    let map = &map;
    // Owns the sender: the stages after it end when the scan does, also on an error.
    let scan = async move {
        let mut total = 0u64;
        for kind in FILE_KINDS {
            let Some(cm) = map.for_kind(kind) else {
                continue;
            };
            let ticket_field = cm.standard("ticket").map(|f| f.source.clone());
            for page in staged_pages(job, &cm.collection).await? {
                for raw in staged_heads(job, &page, ticket_field.as_deref()).await? {
                    if raw.attachments.is_empty() {
                        continue;
                    }
                    let Some(link) = job.crosswalk.get(kind, &raw.id).await? else {
                        continue;
                    };
                    if !matches!(link.status, LinkStatus::Created) {
                        continue;
                    }
                    // An activity's files go on its ticket: comments take no files of their own.
                    let (parent_kind, parent_id) = if kind == ObjectKind::Activity {
                        let Some(tid) = raw.field else {
                            continue;
                        };
                        (ObjectKind::Ticket, tid)
                    } else {
                        (kind, raw.id.clone())
                    };
                    for a in raw.attachments {
                        total += 1;
                        let item = (kind, raw.id.clone(), parent_kind, parent_id.clone(), a);
                        if futures::SinkExt::send(&mut found_tx, item).await.is_err() {
                            return Ok(total);
                        }
                    }
                }
            }
        }
        Ok::<_, Error>(total)
    };
    let (mut tx, rx) = futures::channel::mpsc::channel(uploads);
    let produce = async move {
        let mut fetched = found_rx
            .map(
                |w: (ObjectKind, String, ObjectKind, String, AttachmentRef)| async move {
                    let fetched = fetch_attachment(job, w.2, &w.3, &w.4).await;
                    (w, fetched)
                },
            )
            .buffer_unordered(downloads);
        while let Some(item) = fetched.next().await {
            if futures::SinkExt::send(&mut tx, item).await.is_err() {
                break;
            }
        }
    };
    let consume = rx
        .map(|((kind, rid, pkind, _pid, a), fetched)| {
            let report = report.clone();
            async move {
                let mut kept = None;
                let mut stage_note = String::new();
                let res = match fetched {
                    Ok(Fetched::Done(outcome)) => Ok(outcome),
                    Ok(Fetched::Ready(ready)) => {
                        let (bytes, md5) = (ready.bytes.clone(), ready.md5.clone());
                        let res = upload_attachment(job, pkind, &a, ready).await;
                        if res.is_err() {
                            // The file could not be moved: its bytes stay staged with the report.
                            let key = keys::blob(&md5);
                            match job.stage.put(&key, bytes).await {
                                Ok(()) => kept = Some(key),
                                Err(e) => {
                                    stage_note = format!(" (its bytes could not be staged: {e}; the source still has them)");
                                }
                            }
                        }
                        res
                    }
                    Err(e) => Err(e),
                };
                let mut r = report.lock().unwrap();
                let problem = |reason: String| AttachmentProblem {
                    record_kind: kind,
                    record_id: rid.clone(),
                    file_name: a.file_name.clone(),
                    url: a.url.clone(),
                    size: a.size,
                    reason,
                    kept: kept.clone(),
                };
                match res {
                    Ok(AttachOutcome::Uploaded { declared_md5_wrong }) => {
                        r.uploaded += 1;
                        if declared_md5_wrong {
                            r.md5_mismatch_declared += 1;
                            r.problems.push(problem("the source's declared MD5 does not match the file (downloaded twice, identical): uploaded, source metadata is wrong".into()));
                        }
                    }
                    Ok(AttachOutcome::Already) => r.already += 1,
                    Ok(AttachOutcome::OverLimit) => {
                        r.over_limit += 1;
                        r.problems.push(problem(format!("over {} bytes: flagged for a dedicated transfer", job.settings.attachment_max_bytes)));
                    }
                    Err(e) => {
                        r.failed += 1;
                        r.problems.push(problem(format!("{e}{stage_note}")));
                    }
                }
                job.progress.advance("attachments", 1);
            }
        })
        .buffer_unordered(uploads)
        .collect::<Vec<()>>();
    let (total, (), _) = futures::join!(scan, produce, consume);
    let mut report = report.lock().unwrap().clone();
    report.total = total?;
    put_json(job, "reports/attachments.json", &report).await?;
    job.progress.finish(
        "attachments",
        &format!(
            "{} uploaded, {} failed, {} over the limit",
            report.uploaded, report.failed, report.over_limit
        ),
    );
    Ok(report)
}

enum AttachOutcome {
    Uploaded { declared_md5_wrong: bool },
    Already,
    OverLimit,
}

fn attachment_key(parent_kind: ObjectKind, parent_id: &str, a: &AttachmentRef) -> String {
    format!("{parent_kind}:{parent_id}:{}", a.id)
}

/// An attachment after its download: settled already, or bytes ready to upload.
enum Fetched {
    Done(AttachOutcome),
    Ready(ReadyFile),
}

struct ReadyFile {
    key: String,
    parent: String,
    bytes: Bytes,
    md5: String,
    declared_md5_wrong: bool,
}

/// Everything before the upload: the crosswalk check, the size limit, the download and its checks.
/// The bytes go straight to the upload; they are staged only if that fails (a copy of every
/// moved file would double the files' storage and cost a file write each).
async fn fetch_attachment(
    job: &Job,
    parent_kind: ObjectKind,
    parent_id: &str,
    a: &AttachmentRef,
) -> Result<Fetched> {
    let key = attachment_key(parent_kind, parent_id, a);
    if let Some(l) = job.crosswalk.get(ObjectKind::Attachment, &key).await?
        && l.status == LinkStatus::Created
    {
        return Ok(Fetched::Done(AttachOutcome::Already));
    }
    if a.size.unwrap_or(0) > job.settings.attachment_max_bytes {
        job.crosswalk
            .put_batch(&[Link {
                kind: ObjectKind::Attachment,
                source_id: key,
                dest_id: None,
                status: LinkStatus::Skipped,
                payload_hash: String::new(),
                dest_hash: None,
                reason: Some("over the size limit: dedicated transfer".into()),
                updated_at: now_iso(),
            }])
            .await?;
        return Ok(Fetched::Done(AttachOutcome::OverLimit));
    }
    let parent = job
        .crosswalk
        .get(parent_kind, parent_id)
        .await?
        .and_then(|l| l.dest_id)
        .ok_or_else(|| {
            Error::data(
                ObjectKind::Attachment,
                &key,
                format!("parent {parent_kind} {parent_id} was not migrated"),
            )
        })?;
    let bytes = job.source.download(a).await?;
    if let Some(size) = a.size
        && size != bytes.len() as u64
    {
        return Err(Error::data(
            ObjectKind::Attachment,
            &key,
            format!(
                "declared {size} bytes, downloaded {}: the download is incomplete; retry later",
                bytes.len()
            ),
        ));
    }
    let md5 = md5_hex(&bytes);
    let mut declared_md5_wrong = false;
    if let Some(declared) = &a.md5
        && declared != &md5
    {
        let again = job.source.download(a).await?;
        if md5_hex(&again) != md5 {
            return Err(Error::data(
                ObjectKind::Attachment,
                &key,
                "two downloads differ: the source serves unstable content; retry later",
            ));
        }
        declared_md5_wrong = true;
    }
    Ok(Fetched::Ready(ReadyFile {
        key,
        parent,
        bytes,
        md5,
        declared_md5_wrong,
    }))
}

/// The upload of a fetched file, resumable: a pending link is looked up before uploading again.
async fn upload_attachment(
    job: &Job,
    parent_kind: ObjectKind,
    a: &AttachmentRef,
    ready: ReadyFile,
) -> Result<AttachOutcome> {
    let ReadyFile {
        key,
        parent,
        bytes,
        md5,
        declared_md5_wrong,
    } = ready;
    let pending = job
        .crosswalk
        .get(ObjectKind::Attachment, &key)
        .await?
        .is_some_and(|l| l.status == LinkStatus::Pending);
    let found = if pending {
        job.dest
            .find_attachment(parent_kind, &parent, a, bytes.len() as u64)
            .await?
    } else {
        None
    };
    let dest_id = match found {
        Some(d) => d,
        None => {
            job.crosswalk
                .put_batch(&[Link {
                    kind: ObjectKind::Attachment,
                    source_id: key.clone(),
                    dest_id: None,
                    status: LinkStatus::Pending,
                    payload_hash: md5.clone(),
                    dest_hash: None,
                    reason: None,
                    updated_at: now_iso(),
                }])
                .await?;
            job.dest.attach(parent_kind, &parent, a, bytes).await?
        }
    };
    let (link, entry) = attached(key, dest_id, md5);
    job.crosswalk.put_batch(&[link]).await?;
    job.audit.append(&[entry]).await?;
    Ok(AttachOutcome::Uploaded { declared_md5_wrong })
}

/// The crosswalk and audit entries of a file that arrived as `dest_id` (its MD5 the payload hash).
fn attached(key: String, dest_id: String, md5: String) -> (Link, AuditEntry) {
    let link = Link {
        kind: ObjectKind::Attachment,
        source_id: key.clone(),
        dest_id: Some(dest_id.clone()),
        status: LinkStatus::Created,
        payload_hash: md5.clone(),
        dest_hash: None,
        reason: None,
        updated_at: now_iso(),
    };
    let entry = AuditEntry {
        at: now_iso(),
        op: AuditOp::Attach,
        kind: ObjectKind::Attachment,
        source_id: key,
        dest_id: Some(dest_id),
        outcome: "ok".into(),
        payload_hash: md5,
    };
    (link, entry)
}

// ---------------------------------------------------------------------------------------------
// 9. Validation

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ValidationReport {
    pub checked: u64,
    pub matched: u64,
    pub mismatches: Vec<FieldMismatch>,
    pub missing: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FieldMismatch {
    pub kind: ObjectKind,
    pub source_id: String,
    pub dest_id: String,
    pub field: String,
    pub expected: String,
    pub found: String,
}

/// What the destination should show for a record, in the canonical names `read_back` uses.
pub fn expected_fields(record: &CanonicalRecord, ctx: &LoadContext) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            m.insert(k.to_string(), v);
        }
    };
    let custom = |m: &mut BTreeMap<String, String>, c: &CustomValues| {
        for (k, v) in c {
            m.insert(format!("custom.{k}"), v.as_text());
        }
    };
    match record {
        CanonicalRecord::Account(a) => {
            put("name", Some(a.name.clone()));
            put("phone", a.phone.clone());
            put("email", a.email.clone());
            put("website", a.website.clone());
            put("city", a.city.clone());
            custom(&mut m, &a.custom);
        }
        CanonicalRecord::Contact(c) => {
            put("last_name", Some(c.last_name.clone()));
            put("first_name", c.first_name.clone());
            put("email", c.email.clone());
            put("phone", c.phone.clone());
            put("mobile", c.mobile.clone());
            put(
                "account",
                c.account
                    .as_ref()
                    .and_then(|a| ctx.resolved.get(ObjectKind::Account, a))
                    .map(str::to_string),
            );
            custom(&mut m, &c.custom);
        }
        CanonicalRecord::Ticket(t) => {
            put("subject", Some(t.subject.clone()));
            put("status", t.status.clone());
            put("priority", t.priority.clone());
            put("department", t.department.clone());
            put(
                "assignee_email",
                t.assignee
                    .as_ref()
                    .and_then(|a| a.email.clone())
                    .filter(|e| ctx.agents.contains_key(&e.to_ascii_lowercase())),
            );
            put(
                "contact",
                t.contact
                    .as_ref()
                    .and_then(|c| ctx.resolved.get(ObjectKind::Contact, c))
                    .map(str::to_string),
            );
            put("due_date", t.due_date.clone());
            custom(&mut m, &t.custom);
        }
        CanonicalRecord::Activity(a) => {
            put("public", Some(a.public.to_string()));
        }
        CanonicalRecord::Task(t) => {
            put("subject", Some(t.subject.clone()));
            put("status", t.status.clone());
            put("due_date", t.due_date.clone());
            put(
                "owner_email",
                t.owner
                    .as_ref()
                    .and_then(|o| o.email.clone())
                    .filter(|e| ctx.agents.contains_key(&e.to_ascii_lowercase())),
            );
            custom(&mut m, &t.custom);
        }
    }
    m
}

/// Records validated together: read from their pages, read back concurrently, compared.
const VALIDATION_CHUNK: usize = 500;

pub async fn validate(job: &Job) -> Result<ValidationReport> {
    let map = approved_map(job).await?;
    let users = users(job, &map).await?;
    let t = Transformer::new(&map, users, job.source_zone.clone())
        .with_lookups(lookups(job, &map).await?);
    let info = job.describe().await?;
    let concurrency = job.settings.load_concurrency_for(info.concurrency_cap);
    let mut report = ValidationReport::default();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(job.settings.validation_seed);
    for kind in ObjectKind::LOADED {
        let Some(cm) = map.for_kind(kind) else {
            continue;
        };
        // The sample is drawn over (page, id) pairs: memory holds ids, not the records.
        let pages = staged_pages(job, &cm.collection).await?;
        let mut index: Vec<(usize, String)> = Vec::new();
        for (p, page) in pages.iter().enumerate() {
            let ids: Vec<StagedId> = get_json(job, page).await?.unwrap_or_default();
            index.extend(ids.into_iter().map(|r| (p, r.id)));
        }
        index.shuffle(&mut rng);
        let want = if job.settings.validation_all {
            usize::MAX
        } else {
            job.settings.validation_sample
        };
        let mut chosen: Vec<(usize, String, String)> = Vec::new();
        for (p, id) in index {
            if chosen.len() >= want {
                break;
            }
            let Some(link) = job.crosswalk.get(kind, &id).await? else {
                continue;
            };
            if link.status != LinkStatus::Created {
                continue;
            }
            chosen.push((p, id, link.dest_id.unwrap_or_default()));
        }
        let ctx0 = load_context(job, kind).await?;
        for chunk in chosen.chunks(VALIDATION_CHUNK) {
            let mut wanted: BTreeMap<usize, HashSet<&str>> = BTreeMap::new();
            for (p, id, _) in chunk {
                wanted.entry(*p).or_default().insert(id.as_str());
            }
            let mut records: HashMap<String, RawRecord> = HashMap::new();
            for (p, ids) in &wanted {
                // Only the sampled records of the page are read whole.
                let Some(bytes) = job.stage.get(&pages[*p]).await? else {
                    continue;
                };
                let raws: Vec<&serde_json::value::RawValue> = serde_json::from_slice(&bytes)?;
                for raw in raws {
                    let staged: StagedId = serde_json::from_str(raw.get())?;
                    if ids.contains(staged.id.as_str()) {
                        records.insert(staged.id, serde_json::from_str(raw.get())?);
                    }
                }
            }
            let mut picked = Vec::with_capacity(chunk.len());
            for (_, id, dest_id) in chunk {
                let Some(raw) = records.remove(id) else {
                    continue;
                };
                let Ok(tr) = t.transform(kind, &raw) else {
                    continue;
                };
                let mut ctx = ctx0.clone();
                for (rk, sid) in tr.record.references() {
                    if let Some(l) = job.crosswalk.get(rk, &sid).await?
                        && let Some(d) = l.dest_id
                    {
                        ctx.resolved.insert(rk, &sid, d);
                    }
                }
                let mut record = tr.record;
                fit_lengths(&mut record, &info.max_lengths);
                picked.push((raw.id, dest_id.clone(), record, ctx));
            }
            compare_read_backs(job, kind, &info, concurrency, picked, &mut report).await?;
        }
    }
    put_json(job, keys::VALIDATION, &report).await?;
    Ok(report)
}

/// A staged record's id alone: the rest of the record is skipped, not built.
#[derive(Deserialize)]
struct StagedId {
    id: String,
}

/// Reads the picked records back (concurrently) and compares them in the sampled order.
async fn compare_read_backs(
    job: &Job,
    kind: ObjectKind,
    info: &DestinationInfo,
    concurrency: usize,
    picked: Vec<(String, String, CanonicalRecord, LoadContext)>,
    report: &mut ValidationReport,
) -> Result<()> {
    let dest_ids: Vec<String> = picked.iter().map(|p| p.1.clone()).collect();
    let found = futures::stream::iter(
        dest_ids
            .into_iter()
            .map(|dest_id| async move { job.dest.read_back(kind, &dest_id).await }),
    )
    .buffered(concurrency)
    .collect::<Vec<_>>()
    .await;
    for ((source_id, dest_id, record, ctx), found) in picked.into_iter().zip(found) {
        report.checked += 1;
        let Some(found) = found? else {
            report
                .missing
                .push(format!("{kind} {source_id} (destination {dest_id})"));
            continue;
        };
        let expected: BTreeMap<String, String> = expected_fields(&record, &ctx)
            .into_iter()
            .filter(|(f, _)| info.supports(kind, f))
            .collect();
        let mut ok = true;
        for (field, exp) in expected {
            let got = found.get(&field).cloned().unwrap_or_default();
            if !written_value_matches(
                &record,
                &field,
                &exp,
                &got,
                job.source.platform(),
                &info.max_lengths,
            ) {
                ok = false;
                report.mismatches.push(FieldMismatch {
                    kind,
                    source_id: source_id.clone(),
                    dest_id: dest_id.clone(),
                    field,
                    expected: exp,
                    found: got,
                });
            }
        }
        if ok {
            report.matched += 1;
        }
    }
    Ok(())
}

/// Shortens values over the destination's limits (`kind.field` -> characters), keeping the full
/// text where it fits; returns a (code, message) flag per shortened value. The load, validation
/// and rollback's change detection all apply it, so a shortened value is not a difference.
pub fn fit_lengths(
    record: &mut CanonicalRecord,
    max_lengths: &BTreeMap<String, usize>,
) -> Vec<(String, String)> {
    let kind = record.kind();
    let limit = |f: &str| {
        max_lengths
            .get(&format!("{kind}.{f}"))
            .copied()
            .unwrap_or(0)
    };
    let mut flags = Vec::new();
    match record {
        CanonicalRecord::Account(a) => {
            if let Some(full) = truncate_chars(&mut a.name, limit("name")) {
                let note = format!("Full name: {full}");
                a.description = Some(match a.description.take() {
                    Some(d) => format!("{note}\n\n{d}"),
                    None => note,
                });
                flags.push((
                    "name_truncated".to_string(),
                    format!(
                        "name over {} characters: shortened, full name kept in the description",
                        limit("name")
                    ),
                ));
            }
        }
        CanonicalRecord::Ticket(t) => {
            if let Some(full) = truncate_chars(&mut t.subject, limit("subject")) {
                let html = format!("<p>Full subject: {}</p>", html_escape(&full));
                t.description_html = Some(html + t.description_html.as_deref().unwrap_or(""));
                flags.push(("subject_truncated".to_string(), format!("subject over {} characters: shortened, full subject kept in the description", limit("subject"))));
            }
        }
        CanonicalRecord::Task(t) => {
            let shortened = truncate_chars(&mut t.subject, limit("subject")).is_some();
            if shortened {
                flags.push((
                    "subject_truncated".to_string(),
                    "task subject shortened to the destination's limit".to_string(),
                ));
            }
        }
        _ => {}
    }
    flags
}

/// An account's name with its source platform and id appended, shortened to leave room within
/// the destination's limit: how the load tells apart accounts that share a name.
pub fn name_apart(
    name: &str,
    platform: &str,
    source_id: &str,
    max_lengths: &BTreeMap<String, usize>,
) -> String {
    let suffix = apart_suffix(platform, source_id);
    let limit = max_lengths
        .get("account.name")
        .copied()
        .unwrap_or(usize::MAX);
    let keep = limit.saturating_sub(suffix.chars().count());
    name.chars().take(keep).collect::<String>() + &suffix
}

/// What [`name_apart`] appends to a name: the source platform and the record's id.
fn apart_suffix(platform: &str, source_id: &str) -> String {
    format!(" ({platform} {source_id})")
}

/// Equal as the load writes `field` of `record`: [`same_field_value`], or an account's name
/// that the load named apart from another ([`name_apart`]).
pub fn written_value_matches(
    record: &CanonicalRecord,
    field: &str,
    expected: &str,
    found: &str,
    platform: &str,
    max_lengths: &BTreeMap<String, usize>,
) -> bool {
    same_field_value(field, expected, found)
        || matches!(record, CanonicalRecord::Account(a)
            if field == "name" && found == name_apart(expected, platform, &a.source_id, max_lengths))
}

/// Equal as `field` is compared: a contact the destination keeps in several organizations (one
/// customer shared by e-mail) matches when its list holds the expected one.
pub fn same_field_value(field: &str, expected: &str, found: &str) -> bool {
    same_value(expected, found)
        || (field == "account"
            && found.contains(';')
            && found.split(';').any(|f| same_value(expected, f)))
}

/// Equal after the normalisation destinations apply (trimmed, numbers by value, dates by day).
pub fn same_value(expected: &str, found: &str) -> bool {
    let (e, f) = (expected.trim(), found.trim());
    // Addresses and enumerations compare without case (e-mail is case-insensitive).
    if e == f || (e.contains('@') && e.eq_ignore_ascii_case(f)) {
        return true;
    }
    if let (Ok(a), Ok(b)) = (e.parse::<f64>(), f.parse::<f64>()) {
        return (a - b).abs() < 1e-9;
    }
    // A date against a date-time of the same day (`get`: a longer text may not split at byte 10).
    if e.len() == 10 && f.get(..10) == Some(e) {
        return true;
    }
    let split = |s: &str| {
        let mut v: Vec<String> = s.split(';').map(|x| x.trim().to_string()).collect();
        v.sort();
        v
    };
    e.contains(';') && split(e) == split(f)
}

// ---------------------------------------------------------------------------------------------
// Failed records

pub async fn failed_records(job: &Job) -> Result<Vec<FailedRecord>> {
    let mut out = Vec::new();
    for key in job.stage.list("failed/").await? {
        if let Some(f) = get_json::<FailedRecord>(job, &key).await? {
            out.push(f);
        }
    }
    Ok(out)
}

pub async fn flags(job: &Job) -> Result<Vec<Flag>> {
    let mut out = Vec::new();
    for key in job.stage.list("flags/").await? {
        out.extend(get_json::<Vec<Flag>>(job, &key).await?.unwrap_or_default());
    }
    Ok(out)
}

/// Every phase's future is `Send`: the Lambda runtime and multi-threaded runners require it.
#[allow(dead_code)]
fn phases_are_send(job: &Job) {
    fn send<T: Send>(_: T) {}
    send(preflight(job));
    send(propose_mapping(job));
    send(schema(job));
    send(extract(job));
    send(agents(job));
    send(load(job, ObjectKind::Ticket));
    send(attachments(job));
    send(validate(job));
}

/// A representative sample of `n` tickets: spread over status, department and age, with tickets
/// that carry attachments, inline images and custom field values taken first. Deterministic.
pub async fn pick_sample(job: &Job, n: usize) -> Result<Vec<String>> {
    let map = approved_map(job).await?;
    let Some(cm) = map.for_kind(ObjectKind::Ticket) else {
        return Ok(vec![]);
    };
    let t = Transformer::new(&map, BTreeMap::new(), job.source_zone.clone());
    let all_selected = Selection {
        only_tickets: vec![],
        ..job.settings.selection.clone()
    };
    let mut with_images: BTreeSet<String> = BTreeSet::new();
    if let Some(acm) = map.for_kind(ObjectKind::Activity) {
        let tf = acm.standard("ticket").map(|f| f.source.clone());
        let bf = acm.standard("body").map(|f| f.source.clone());
        for raw in staged_records(job, &acm.collection).await? {
            let body = bf
                .as_ref()
                .and_then(|f| raw.fields.get(f))
                .map(value_text)
                .unwrap_or_default();
            if body.contains("<img")
                && let Some(tid) = tf.as_ref().and_then(|f| raw.fields.get(f)).map(value_text)
            {
                with_images.insert(tid);
            }
        }
    }
    let mut groups: BTreeMap<(String, String, String), Vec<(u8, String)>> = BTreeMap::new();
    for raw in staged_records(job, &cm.collection).await? {
        let Ok(Transformed {
            record: CanonicalRecord::Ticket(tk),
            ..
        }) = t.transform(ObjectKind::Ticket, &raw)
        else {
            continue;
        };
        if !ticket_selected(&all_selected, &map, &raw, &tk) {
            continue;
        }
        let year = tk
            .created_at
            .clone()
            .unwrap_or_default()
            .chars()
            .take(4)
            .collect::<String>();
        let key = (
            tk.status.clone().unwrap_or_default(),
            tk.department.clone().unwrap_or_default(),
            year,
        );
        // Lower rank first: tickets showing more of what must survive a migration.
        let mut rank = 3u8;
        if !raw.attachments.is_empty() {
            rank -= 1;
        }
        if with_images.contains(&raw.id)
            || tk
                .description_html
                .as_deref()
                .is_some_and(|d| d.contains("<img"))
        {
            rank -= 1;
        }
        if !tk.custom.is_empty() {
            rank -= 1;
        }
        groups.entry(key).or_default().push((rank, raw.id.clone()));
    }
    for g in groups.values_mut() {
        g.sort();
    }
    let mut out = Vec::new();
    let mut round = 0;
    while out.len() < n {
        let mut took = false;
        for g in groups.values() {
            if let Some((_, id)) = g.get(round) {
                out.push(id.clone());
                took = true;
                if out.len() == n {
                    break;
                }
            }
        }
        if !took {
            break;
        }
        round += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::{CollectionMap, FieldMapping, Target};

    fn ticket_map() -> FieldMap {
        let f = |source: &str, target: &str| FieldMapping {
            source: source.into(),
            label: source.into(),
            source_type: FieldType::Text,
            target: Target::Standard {
                field: target.into(),
            },
            confidence: 1.0,
            reason: String::new(),
            samples: vec![],
            options: vec![],
            value_map: Default::default(),
            linked_collection: None,
        };
        FieldMap {
            source_platform: "test".into(),
            destination_platform: "test".into(),
            collections: vec![CollectionMap {
                collection: "Tickets".into(),
                kind: ObjectKind::Ticket,
                confidence: 1.0,
                reason: String::new(),
                fields: vec![
                    f("subject", "subject"),
                    f("state", "status"),
                    f("junk", "spam"),
                ],
            }],
        }
    }

    fn raw(id: &str, state: &str, spam: &str) -> RawRecord {
        let mut fields = serde_json::Map::new();
        fields.insert("state".into(), state.into());
        fields.insert("junk".into(), spam.into());
        RawRecord {
            collection: "Tickets".into(),
            id: id.into(),
            fields,
            attachments: vec![],
            created_at: None,
            modified_at: None,
            cursor_value: None,
        }
    }

    fn ticket(subject: &str, created: &str, department: &str) -> Ticket {
        Ticket {
            subject: subject.into(),
            created_at: Some(created.into()),
            department: Some(department.into()),
            ..Default::default()
        }
    }

    #[test]
    fn selection_filters_by_date_department_status_spam_and_test_records() {
        let map = ticket_map();
        let all = Selection::default();
        assert!(ticket_selected(
            &all,
            &map,
            &raw("1", "Open", "0"),
            &ticket("Printer down", "2024-05-01T10:00:00.000Z", "Support")
        ));
        assert!(
            !ticket_selected(
                &all,
                &map,
                &raw("2", "Open", "1"),
                &ticket("Win a prize", "2024-05-01T10:00:00.000Z", "Support")
            ),
            "spam excluded"
        );
        assert!(
            !ticket_selected(
                &all,
                &map,
                &raw("3", "Open", "0"),
                &ticket("[TEST] ignore", "2024-05-01T10:00:00.000Z", "Support")
            ),
            "test records excluded"
        );
        let keep_spam = Selection {
            exclude_spam: false,
            ..Selection::default()
        };
        assert!(ticket_selected(
            &keep_spam,
            &map,
            &raw("2", "Open", "1"),
            &ticket("Win a prize", "2024-05-01T10:00:00.000Z", "Support")
        ));
        let range = Selection {
            created_from: Some("2024-01-01".into()),
            created_to: Some("2024-03-31".into()),
            ..Selection::default()
        };
        assert!(
            ticket_selected(
                &range,
                &map,
                &raw("4", "Open", "0"),
                &ticket("a", "2024-03-31T23:00:00.000Z", "Support")
            ),
            "the end date is inclusive"
        );
        assert!(!ticket_selected(
            &range,
            &map,
            &raw("5", "Open", "0"),
            &ticket("a", "2024-04-01T00:00:00.000Z", "Support")
        ));
        assert!(!ticket_selected(
            &range,
            &map,
            &raw("6", "Open", "0"),
            &ticket("a", "2023-12-31T23:59:59.000Z", "Support")
        ));
        let dept = Selection {
            departments: vec!["Billing".into()],
            ..Selection::default()
        };
        assert!(!ticket_selected(
            &dept,
            &map,
            &raw("7", "Open", "0"),
            &ticket("a", "2024-05-01T10:00:00.000Z", "Support")
        ));
        assert!(ticket_selected(
            &dept,
            &map,
            &raw("8", "Open", "0"),
            &ticket("a", "2024-05-01T10:00:00.000Z", "Billing")
        ));
        let status = Selection {
            statuses: vec!["Closed".into()],
            ..Selection::default()
        };
        assert!(!ticket_selected(
            &status,
            &map,
            &raw("9", "Open", "0"),
            &ticket("a", "2024-05-01T10:00:00.000Z", "Support")
        ));
        assert!(ticket_selected(
            &status,
            &map,
            &raw("10", "Closed", "0"),
            &ticket("a", "2024-05-01T10:00:00.000Z", "Support")
        ));
    }

    #[test]
    fn inline_images_are_found_in_malformed_html() {
        let html = r#"<p>see <img src="https://a.example/x.png"><b>bold <img alt=x src='cid:part1'></td><IMG SRC="http://169.254.169.254/"></p>"#;
        assert_eq!(
            inline_image_sources(html),
            vec![
                "https://a.example/x.png",
                "cid:part1",
                "http://169.254.169.254/"
            ]
        );
    }

    #[test]
    fn values_compare_as_destinations_store_them() {
        assert!(same_value("Jane@Example.com", "jane@example.com"));
        assert!(same_value("12", "12.0"));
        assert!(same_value("2024-05-01", "2024-05-01T00:00:00.000Z"));
        assert!(same_value("a;b", "b;a"));
        assert!(!same_value("Open", "Closed"));
        assert!(!same_value("Subject", "subject"), "text keeps its case");
        assert!(same_field_value("account", "7", "7;9"));
        assert!(!same_field_value("account", "8", "7;9"));
        assert!(!same_field_value("status", "7", "7;9"));
        // A text longer than ten bytes whose tenth byte falls inside a character.
        assert!(!same_value("2024-05-01", "شركة الأفق للتقنية"));
        assert!(!same_value("شركة الأفق", "شركة الأفق للتقنية"));
    }

    #[test]
    fn an_account_named_apart_matches_its_source_name() {
        let limits = BTreeMap::from([("account.name".to_string(), 20)]);
        let apart = name_apart("Acme Corporation", "Ivinex", "42", &limits);
        assert_eq!(apart, "Acme Cor (Ivinex 42)");
        assert_eq!(apart.chars().count(), 20);
        let account = CanonicalRecord::Account(Account {
            source_id: "42".into(),
            name: "Acme Corporation".into(),
            ..Default::default()
        });
        let m = |found: &str| {
            written_value_matches(
                &account,
                "name",
                "Acme Corporation",
                found,
                "Ivinex",
                &limits,
            )
        };
        assert!(m("Acme Corporation"));
        assert!(m(&apart));
        assert!(
            !m("Acme Cor (Ivinex 43)"),
            "another record's id is a difference"
        );
        assert!(!m("Other"));
        let contact = CanonicalRecord::Contact(Contact {
            source_id: "42".into(),
            last_name: "Acme Corporation".into(),
            ..Default::default()
        });
        assert!(!written_value_matches(
            &contact,
            "name",
            "Acme Corporation",
            &apart,
            "Ivinex",
            &limits
        ));
    }
}
