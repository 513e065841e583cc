//! After the first full run: failed-record re-runs, delta syncs until cutover, cutover, rollback.
//! Everything here works on the ports and the staged payloads, so every path (Ivinex -> Zoho Desk,
//! Zoho Desk -> JSM) gets it without connector code.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::job::Job;
use crate::model::{CanonicalRecord, ObjectKind, RawRecord};
use crate::phases::{
    self, AttachmentsReport, Batches, Reconciliation, approved_map, expected_fields, get_json,
    keys, load_batches, put_json, put_page, staged_pages, staged_records, users,
};
use crate::ports::{AuditEntry, AuditOp, Checkpoint, Link, LinkStatus, PageRequest};
use crate::transform::Transformer;
use crate::util::now_iso;

// ---------------------------------------------------------------------------------------------
// Failed records

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RetryReport {
    pub failed_before: usize,
    pub failed_after: usize,
    pub loads: Vec<Reconciliation>,
    pub attachments: Option<AttachmentsReport>,
}

/// Re-runs the records that could not move, from the staged payloads (after a mapping fix: the
/// raw records are transformed again with the approved map), without reading the source. Links
/// that were missing because of those records are filled in on the way.
pub async fn retry_failed(job: &Job) -> Result<RetryReport> {
    let map = approved_map(job).await?;
    let failed_before = phases::failed_records(job).await?.len();
    let run = next_seq(job, "retry").await?;
    let mut report = RetryReport {
        failed_before,
        ..Default::default()
    };
    for kind in ObjectKind::LOADED {
        let Some(cm) = map.for_kind(kind) else {
            continue;
        };
        let batches = if kind == ObjectKind::Activity {
            Batches::Whole(keys::raw_prefix(&cm.collection))
        } else {
            Batches::Pages(staged_pages(job, &cm.collection).await?)
        };
        report
            .loads
            .push(load_batches(job, kind, batches, &format!("retry-{run}-{kind}"), false).await?);
    }
    report.attachments = Some(phases::attachments(job).await?);
    // A record that now arrived is no longer a failure.
    for key in job.stage.list("failed/").await? {
        if let Some(f) = get_json::<phases::FailedRecord>(job, &key).await?
            && job
                .crosswalk
                .get(f.kind, &f.source_id)
                .await?
                .is_some_and(|l| l.status == LinkStatus::Created)
        {
            job.stage.delete(&key).await?;
        }
    }
    report.failed_after = phases::failed_records(job).await?.len();
    finish_seq(job, "retry", run).await?;
    put_json(job, &format!("reports/retry-{run}.json"), &report).await?;
    Ok(report)
}

/// The current run number of a repeatable operation: an unfinished one is resumed.
async fn next_seq(job: &Job, what: &str) -> Result<u64> {
    let done = job.checkpoints.list(what).await?;
    if let Some(open) = done.iter().find(|c| !c.done) {
        return Ok(open.partition.parse().unwrap_or(1));
    }
    let n = done
        .iter()
        .filter_map(|c| c.partition.parse::<u64>().ok())
        .max()
        .unwrap_or(0)
        + 1;
    job.checkpoints
        .put(&Checkpoint {
            phase: what.into(),
            partition: format!("{n:05}"),
            cursor: None,
            done: false,
            updated_at: now_iso(),
        })
        .await?;
    Ok(n)
}

async fn finish_seq(job: &Job, what: &str, n: u64) -> Result<()> {
    job.checkpoints
        .put(&Checkpoint {
            phase: what.into(),
            partition: format!("{n:05}"),
            cursor: None,
            done: true,
            updated_at: now_iso(),
        })
        .await
}

// ---------------------------------------------------------------------------------------------
// Delta sync and cutover

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DeltaReport {
    pub run: u64,
    pub at: String,
    /// Records read as created or modified since the last cursor, per collection.
    pub changed: BTreeMap<String, u64>,
    pub loads: Vec<Reconciliation>,
    pub attachments: Option<AttachmentsReport>,
    pub cursors: BTreeMap<String, String>,
}

impl DeltaReport {
    /// Destination writes this delta made (creates and updates).
    pub fn writes(&self) -> u64 {
        self.loads
            .iter()
            .map(|r| r.created + r.updated)
            .sum::<u64>()
            + self.attachments.as_ref().map_or(0, |a| a.uploaded)
    }
}

pub async fn cutover_done(job: &Job) -> Result<Option<String>> {
    Ok(job
        .checkpoints
        .get("cutover", "done")
        .await?
        .filter(|c| c.done)
        .map(|c| c.updated_at))
}

/// Migrates what was created or modified in the source since the last completed cursor. The
/// cursor moves only after everything read was written, and never past the source's now at the
/// start of the read, so writes landing meanwhile are picked up by the next delta.
pub async fn delta(job: &Job) -> Result<DeltaReport> {
    if let Some(at) = cutover_done(job).await? {
        return Err(Error::Config(format!(
            "this job was cut over at {at}: delta syncs no longer run (start a new job to migrate again)"
        )));
    }
    let map = approved_map(job).await?;
    let run = next_seq(job, "delta").await?;
    let prefix = format!("deltas/{run:05}/");
    let mut report = DeltaReport {
        run,
        at: now_iso(),
        ..Default::default()
    };
    let read_done = job
        .checkpoints
        .get("delta-read", &format!("{run:05}"))
        .await?
        .is_some_and(|c| c.done);
    let signpost = match job
        .checkpoints
        .get("delta-signpost", &format!("{run:05}"))
        .await?
    {
        Some(c) => c.cursor.unwrap_or_default(),
        None => {
            let now = job.source.cursor_now().await?;
            job.checkpoints
                .put(&Checkpoint {
                    phase: "delta-signpost".into(),
                    partition: format!("{run:05}"),
                    cursor: Some(now.clone()),
                    done: true,
                    updated_at: now_iso(),
                })
                .await?;
            now
        }
    };
    let mut seen: BTreeMap<String, Option<String>> = BTreeMap::new();
    for cm in &map.collections {
        let col = &cm.collection;
        if job.stage.list(&keys::raw_prefix(col)).await?.is_empty() {
            continue;
        }
        let col_prefix = format!("{prefix}{}", keys::raw_prefix(col));
        if !read_done {
            // A delta interrupted while reading starts its read again from the same cursor.
            for k in job.stage.list(&col_prefix).await? {
                job.stage.delete(&k).await?;
            }
            let since = job
                .checkpoints
                .get("delta-cursor", col)
                .await?
                .and_then(|c| c.cursor);
            let mut cursor = None;
            let mut page_no = 0u64;
            loop {
                let page = job
                    .source
                    .read_page(
                        col,
                        &PageRequest {
                            cursor: cursor.clone(),
                            modified_since: since.clone(),
                            page_size: job.settings.page_size,
                        },
                    )
                    .await?;
                if !page.records.is_empty() {
                    put_json(
                        job,
                        &format!("{col_prefix}{page_no:06}.json"),
                        &page.records,
                    )
                    .await?;
                    page_no += 1;
                }
                cursor = page.next;
                if cursor.is_none() {
                    break;
                }
            }
        }
        let mut changed: Vec<RawRecord> = Vec::new();
        for k in job.stage.list(&col_prefix).await? {
            changed.extend(
                get_json::<Vec<RawRecord>>(job, &k)
                    .await?
                    .unwrap_or_default(),
            );
        }
        if !read_done {
            fold_into_stage(job, col, &changed).await?;
        }
        seen.insert(
            col.clone(),
            changed.iter().filter_map(|r| r.cursor_value.clone()).max(),
        );
        report.changed.insert(col.clone(), changed.len() as u64);
    }
    job.checkpoints
        .put(&Checkpoint {
            phase: "delta-read".into(),
            partition: format!("{run:05}"),
            cursor: None,
            done: true,
            updated_at: now_iso(),
        })
        .await?;
    for kind in ObjectKind::LOADED {
        let Some(cm) = map.for_kind(kind) else {
            continue;
        };
        let col_prefix = format!("{prefix}{}", keys::raw_prefix(&cm.collection));
        let pages = job.stage.list(&col_prefix).await?;
        if pages.is_empty() {
            continue;
        }
        let batches = if kind == ObjectKind::Activity {
            Batches::Whole(col_prefix)
        } else {
            Batches::Pages(pages)
        };
        report.loads.push(
            load_batches(job, kind, batches, &format!("delta-{run:05}-{kind}"), false).await?,
        );
    }
    report.attachments = Some(phases::attachments(job).await?);
    // The cursor is committed with the data it covers.
    for (col, max) in seen {
        phases::set_delta_cursor(job, &col, max, &signpost).await?;
        if let Some(c) = job
            .checkpoints
            .get("delta-cursor", &col)
            .await?
            .and_then(|c| c.cursor)
        {
            report.cursors.insert(col, c);
        }
    }
    finish_seq(job, "delta", run).await?;
    put_json(job, &format!("reports/delta-{run:05}.json"), &report).await?;
    Ok(report)
}

/// Writes changed records into the staged pages (replacing older versions, appending new
/// records), so the stage stays the source's latest known state for re-runs and validation.
async fn fold_into_stage(job: &Job, collection: &str, changed: &[RawRecord]) -> Result<()> {
    if changed.is_empty() {
        return Ok(());
    }
    let pages = staged_pages(job, collection).await?;
    let mut by_id: BTreeMap<&str, &RawRecord> =
        changed.iter().map(|r| (r.id.as_str(), r)).collect();
    for key in &pages {
        let mut recs: Vec<RawRecord> = get_json(job, key).await?.unwrap_or_default();
        let mut touched = false;
        for r in recs.iter_mut() {
            if let Some(new) = by_id.remove(r.id.as_str()) {
                *r = new.clone();
                touched = true;
            }
        }
        if touched {
            put_page(job, key, &recs).await?;
        }
    }
    let new: Vec<RawRecord> = changed
        .iter()
        .filter(|r| by_id.contains_key(r.id.as_str()))
        .cloned()
        .collect();
    let chunks = new.chunks(job.settings.page_size.max(1) as usize);
    for (next, chunk) in (pages.len() as u64..).zip(chunks) {
        put_page(job, &keys::raw_page(collection, next), chunk).await?;
    }
    Ok(())
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CutoverReport {
    pub final_delta: DeltaReport,
    pub confirming_delta_changes: u64,
    pub completed_at: String,
}

/// The final step: with the source frozen, a last delta runs, a second one confirms nothing
/// changes any more, and the job is marked complete; later deltas refuse to run.
pub async fn cutover(job: &Job) -> Result<CutoverReport> {
    if let Some(at) = cutover_done(job).await? {
        return Err(Error::Config(format!(
            "this job was already cut over at {at}"
        )));
    }
    let final_delta = delta(job).await?;
    let confirm = delta(job).await?;
    if confirm.writes() > 0 {
        return Err(Error::Config(format!(
            "the source is still changing ({} records written by the confirming delta): freeze the source (read-only for all users and integrations) and run `deskshift cutover` again",
            confirm.writes()
        )));
    }
    let completed_at = now_iso();
    job.checkpoints
        .put(&Checkpoint {
            phase: "cutover".into(),
            partition: "done".into(),
            cursor: None,
            done: true,
            updated_at: completed_at.clone(),
        })
        .await?;
    let report = CutoverReport {
        final_delta,
        confirming_delta_changes: confirm.changed.values().sum(),
        completed_at,
    };
    put_json(job, "reports/cutover.json", &report).await?;
    Ok(report)
}

// ---------------------------------------------------------------------------------------------
// Rollback

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RollbackReport {
    pub deleted: BTreeMap<String, u64>,
    /// Removed together with their ticket.
    pub removed_with_parent: BTreeMap<String, u64>,
    pub kept_changed: Vec<KeptRecord>,
    pub already_rolled_back: u64,
    pub failed: Vec<KeptRecord>,
    /// What rollback does not remove, for a person to decide.
    pub not_removed: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeptRecord {
    pub kind: ObjectKind,
    pub source_id: String,
    pub dest_id: String,
    pub reason: String,
}

/// Removes what the migration created, in reverse dependency order, using the crosswalk. Records
/// that existed before are never touched; records changed in the destination since the migration
/// wrote them are listed, not deleted, unless `include_changed`. Resumable: each removal is
/// recorded as it happens.
pub async fn rollback(job: &Job, include_changed: bool) -> Result<RollbackReport> {
    let map = approved_map(job).await?;
    let people = users(job, &map).await?;
    let t = Transformer::new(&map, people, job.source_zone.clone())
        .with_lookups(crate::phases::lookups(job, &map).await?);
    let mut report = RollbackReport::default();
    // Activities written per ticket (their count is what an untouched ticket shows).
    let mut activities_of: BTreeMap<String, Vec<Link>> = BTreeMap::new();
    if let Some(cm) = map.for_kind(ObjectKind::Activity) {
        let ticket_field = cm.standard("ticket").map(|f| f.source.clone());
        for raw in staged_records(job, &cm.collection).await? {
            let Some(tid) = ticket_field
                .as_ref()
                .and_then(|f| raw.fields.get(f))
                .map(crate::transform::value_text)
            else {
                continue;
            };
            if let Some(l) = job.crosswalk.get(ObjectKind::Activity, &raw.id).await? {
                activities_of.entry(tid).or_default().push(l);
            }
        }
    }
    let mut kept_tickets = BTreeSet::new();
    for kind in [
        ObjectKind::Task,
        ObjectKind::Ticket,
        ObjectKind::Activity,
        ObjectKind::Contact,
        ObjectKind::Account,
    ] {
        let Some(cm) = map.for_kind(kind) else {
            continue;
        };
        let raws: BTreeMap<String, RawRecord> = staged_records(job, &cm.collection)
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        let ctx0 = phases::load_context_for(job, kind).await?;
        let mut after: Option<String> = None;
        loop {
            let links = job.crosswalk.list(kind, after.as_deref(), 500).await?;
            let Some(last) = links.last() else { break };
            after = Some(last.source_id.clone());
            for link in links {
                match link.status {
                    LinkStatus::RolledBack => {
                        report.already_rolled_back += 1;
                        continue;
                    }
                    LinkStatus::Created => {}
                    _ => continue,
                }
                let dest_id = link.dest_id.clone().unwrap_or_default();
                if kind == ObjectKind::Activity {
                    // Comments go with their ticket; on a kept ticket they stay.
                    continue;
                }
                let changed = if include_changed {
                    None
                } else {
                    changed_since_written(
                        job,
                        &t,
                        kind,
                        &link,
                        raws.get(&link.source_id),
                        &ctx0,
                        &activities_of,
                    )
                    .await?
                };
                if let Some(reason) = changed {
                    if kind == ObjectKind::Ticket {
                        kept_tickets.insert(link.source_id.clone());
                    }
                    report.kept_changed.push(KeptRecord {
                        kind,
                        source_id: link.source_id.clone(),
                        dest_id,
                        reason,
                    });
                    continue;
                }
                match job.dest.delete(kind, &dest_id).await {
                    Ok(()) => {}
                    Err(e) => {
                        report.failed.push(KeptRecord {
                            kind,
                            source_id: link.source_id.clone(),
                            dest_id,
                            reason: e.to_string(),
                        });
                        continue;
                    }
                }
                let mut done = vec![Link {
                    status: LinkStatus::RolledBack,
                    updated_at: now_iso(),
                    ..link.clone()
                }];
                if kind == ObjectKind::Ticket {
                    for a in activities_of.get(&link.source_id).into_iter().flatten() {
                        if a.status == LinkStatus::Created {
                            done.push(Link {
                                status: LinkStatus::RolledBack,
                                updated_at: now_iso(),
                                ..a.clone()
                            });
                            *report
                                .removed_with_parent
                                .entry("activity".into())
                                .or_insert(0) += 1;
                        }
                    }
                    let prefix = format!("ticket:{}:", link.source_id);
                    for a in attachment_links(job, &prefix).await? {
                        done.push(Link {
                            status: LinkStatus::RolledBack,
                            updated_at: now_iso(),
                            ..a
                        });
                        *report
                            .removed_with_parent
                            .entry("attachment".into())
                            .or_insert(0) += 1;
                    }
                }
                job.crosswalk.put_batch(&done).await?;
                job.audit
                    .append(&[AuditEntry {
                        at: now_iso(),
                        op: AuditOp::Delete,
                        kind,
                        source_id: link.source_id.clone(),
                        dest_id: Some(dest_id),
                        outcome: "ok".into(),
                        payload_hash: link.payload_hash.clone(),
                    }])
                    .await?;
                *report.deleted.entry(kind.to_string()).or_insert(0) += 1;
            }
        }
    }
    if !kept_tickets.is_empty() {
        report.not_removed.push(format!(
            "{} tickets changed in the destination were kept with their comments and attachments (kept_changed); run `deskshift rollback --include-changed` to remove them too",
            kept_tickets.len()
        ));
    }
    // The next run writes again what was removed: page checkpoints start over.
    for kind in ObjectKind::LOADED {
        job.checkpoints.clear(&format!("load-{kind}")).await?;
    }
    let fields: Vec<crate::ports::DestField> =
        get_json(job, keys::SCHEMA).await?.unwrap_or_default();
    if !fields.is_empty() {
        report.not_removed.push(format!(
            "{} custom field definitions created by the schema phase ({}) stay: remove them in the destination's settings once no record uses them",
            fields.len(),
            fields.iter().map(|f| f.label.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    put_json(job, "reports/rollback.json", &report).await?;
    Ok(report)
}

async fn attachment_links(job: &Job, prefix: &str) -> Result<Vec<Link>> {
    let mut out = Vec::new();
    let mut after = Some(prefix.to_string());
    loop {
        let links = job
            .crosswalk
            .list(ObjectKind::Attachment, after.as_deref(), 500)
            .await?;
        let Some(last) = links.last() else { break };
        after = Some(last.source_id.clone());
        let mut past = false;
        for l in links {
            if !l.source_id.starts_with(prefix) {
                past = l.source_id.as_str() > prefix;
                if past {
                    break;
                }
                continue;
            }
            if l.status == LinkStatus::Created {
                out.push(l);
            }
        }
        if past {
            break;
        }
    }
    Ok(out)
}

/// Why a record must be kept: its destination copy differs from what the migration wrote.
async fn changed_since_written(
    job: &Job,
    t: &Transformer<'_>,
    kind: ObjectKind,
    link: &Link,
    raw: Option<&RawRecord>,
    ctx0: &crate::ports::LoadContext,
    activities_of: &BTreeMap<String, Vec<Link>>,
) -> Result<Option<String>> {
    let dest_id = link.dest_id.clone().unwrap_or_default();
    let Some(found) = job.dest.read_back(kind, &dest_id).await? else {
        return Ok(None);
    };
    let Some(raw) = raw else { return Ok(None) };
    let Ok(tr) = t.transform(kind, raw) else {
        return Ok(None);
    };
    let info = job.describe().await?;
    let mut record = tr.record;
    phases::fit_lengths(&mut record, &info.max_lengths);
    let mut ctx = ctx0.clone();
    for (rk, sid) in record.references() {
        if let Some(l) = job.crosswalk.get(rk, &sid).await?
            && let Some(d) = l.dest_id
        {
            ctx.resolved.insert(rk, &sid, d);
        }
    }
    for (field, expected) in expected_fields(&record, &ctx)
        .into_iter()
        .filter(|(f, _)| info.supports(kind, f))
    {
        let got = found.get(&field).cloned().unwrap_or_default();
        if !phases::written_value_matches(
            &record,
            &field,
            &expected,
            &got,
            job.source.platform(),
            &info.max_lengths,
        ) {
            return Ok(Some(format!(
                "{field} is now {got:?}, the migration wrote {expected:?}"
            )));
        }
    }
    if let CanonicalRecord::Ticket(_) = &record {
        let written = activities_of.get(&link.source_id).map_or(0, |v| {
            v.iter().filter(|l| l.status == LinkStatus::Created).count()
        });
        if let Some(n) = found
            .get("comment_count")
            .and_then(|c| c.parse::<usize>().ok())
            && n != written
        {
            return Ok(Some(format!(
                "it has {n} comments, the migration wrote {written}"
            )));
        }
        if let Some(n) = found
            .get("thread_count")
            .and_then(|c| c.parse::<usize>().ok())
            && n > 0
        {
            return Ok(Some(format!(
                "{n} conversation threads were added after the migration"
            )));
        }
    }
    Ok(None)
}
