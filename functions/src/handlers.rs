//! One handler per function. Each calls the library phase the CLI runner calls, with the runner's
//! resume rule: a finished phase (checkpoint `flow/<phase>`) is skipped, except loads,
//! attachments, validation and approval, which are resumable by themselves.

use std::collections::BTreeMap;
use std::time::SystemTime;

use deskshift_core::flow::Phase;
use deskshift_core::job::Job;
use deskshift_core::model::ObjectKind;
use deskshift_core::phases::{self, Batches, keys};
use deskshift_core::ports::Checkpoint;
use deskshift_core::util::{now_iso, sha256_hex};
use deskshift_core::{Error, lifecycle};
use serde_json::{Value, json};

use crate::{Clients, Event, Output, Result, budget, config_error};

/// Where the approval task's token waits for a person (in the job's stage, encrypted).
pub const APPROVAL_TOKEN_KEY: &str = "mapping/approval-task-token.json";
/// The failure report written when a state machine gives up.
pub const FAILURE_KEY: &str = "reports/failure.json";

async fn flow_done(job: &Job, phase: Phase) -> Result<bool> {
    Ok(job
        .checkpoints
        .get("flow", &phase.name())
        .await?
        .is_some_and(|c| c.done))
}

async fn mark_done(job: &Job, phase: Phase) -> Result<()> {
    job.checkpoints
        .put(&Checkpoint {
            phase: "flow".into(),
            partition: phase.name(),
            cursor: None,
            done: true,
            updated_at: now_iso(),
        })
        .await?;
    Ok(())
}

fn skipped(phase: Phase) -> Output {
    Output::done(json!({"skipped": format!("{} finished in an earlier run", phase.name())}))
}

fn kind_of(event: &Event) -> Result<ObjectKind> {
    event.kind.ok_or_else(|| {
        config_error(format!(
            "phase {}: the event has no `kind`; the state machine passes it for loads",
            event.phase
        ))
    })
}

pub async fn preflight(job: &Job) -> Result<Output> {
    if flow_done(job, Phase::Preflight).await? {
        return Ok(skipped(Phase::Preflight));
    }
    let s = phases::preflight(job).await?;
    mark_done(job, Phase::Preflight).await?;
    Ok(Output::done(json!({
        "collections": s.collections.len(),
        "permission_gaps": s.permission_gaps.len(),
        "estimated_destination_calls": s.estimated_destination_calls,
        "report": keys::SCOPING,
    })))
}

pub async fn propose_mapping(job: &Job) -> Result<Output> {
    if flow_done(job, Phase::ProposeMapping).await? {
        return Ok(skipped(Phase::ProposeMapping));
    }
    // A person's edited map is kept, as in the CLI.
    let proposed = if phases::field_map(job).await.is_err() {
        phases::propose_mapping(job).await?;
        true
    } else {
        false
    };
    mark_done(job, Phase::ProposeMapping).await?;
    Ok(Output::done(
        json!({"proposed": proposed, "map": keys::FIELD_MAP}),
    ))
}

/// The `.waitForTaskToken` task: resumes at once when the map is approved already, otherwise
/// keeps the token for the approve function (or a person's `SendTaskSuccess`).
pub async fn await_approval(clients: &Clients, job: &Job, event: &Event) -> Result<Output> {
    let token = event.token.as_deref().ok_or_else(|| {
        config_error("approval: the event has no task token; invoke it with `lambda:invoke.waitForTaskToken`")
    })?;
    if phases::approved_map(job).await.is_ok() {
        send_approval(
            clients,
            token,
            "approved before the migration reached the approval step",
        )
        .await?;
        mark_done(job, Phase::Approval).await?;
        return Ok(Output::done(json!({"approved": true, "resumed": true})));
    }
    let record = json!({"token": token, "at": now_iso()});
    job.stage
        .put(
            APPROVAL_TOKEN_KEY,
            serde_json::to_vec(&record).map_err(Error::from)?.into(),
        )
        .await?;
    tracing::info!(
        job = event.job,
        "waiting for the field map approval: invoke the approve function with {{\"job\": \"{}\", \"by\": \"<name>\"}}",
        event.job
    );
    Ok(Output::done(json!({"approved": false, "waiting": true})))
}

async fn send_approval(clients: &Clients, token: &str, note: &str) -> Result<()> {
    clients
        .sfn
        .send_task_success()
        .task_token(token)
        .output(json!({"approved": true, "note": note}).to_string())
        .send()
        .await
        .map_err(|e| {
            config_error(format!(
                "approval: Step Functions refused SendTaskSuccess ({}); the execution may have timed out or been stopped: start the migration again",
                aws_sdk_sfn::error::DisplayErrorContext(&e)
            ))
        })?;
    Ok(())
}

/// A person's approval (`deskshift mapping approve` on AWS): pins the map and resumes the
/// waiting execution, if any.
pub async fn approve(clients: &Clients, job: &Job, event: &Event) -> Result<Output> {
    let by = event
        .by
        .as_deref()
        .filter(|b| !b.trim().is_empty())
        .ok_or_else(|| {
            config_error("approve: name the person approving in `by` (e.g. {\"job\": \"acme\", \"by\": \"Dana Reviewer\"})")
        })?;
    let approval = phases::approve(job, by, false).await?;
    let resumed = match job.stage.get(APPROVAL_TOKEN_KEY).await? {
        Some(bytes) => {
            let record: Value = serde_json::from_slice(&bytes).map_err(Error::from)?;
            let token = record["token"].as_str().unwrap_or_default();
            send_approval(clients, token, &format!("approved by {by}")).await?;
            job.stage.delete(APPROVAL_TOKEN_KEY).await?;
            true
        }
        None => false,
    };
    Ok(Output::done(json!({
        "approved_by": approval.approved_by,
        "map_digest": approval.map_digest,
        "resumed_execution": resumed,
    })))
}

/// Extract stops at the time budget and answers `more: true`: its checkpoint is written after
/// each staged page, so a stopped read resumes at the next page.
pub async fn extract(job: &Job, deadline: SystemTime) -> Result<Output> {
    if flow_done(job, Phase::Extract).await? {
        return Ok(skipped(Phase::Extract));
    }
    match tokio::time::timeout(budget(deadline), phases::extract(job)).await {
        Ok(counts) => {
            let counts = counts?;
            mark_done(job, Phase::Extract).await?;
            Ok(Output::done(json!({
                "collections": counts.len(),
                "records": counts.values().sum::<u64>(),
            })))
        }
        Err(_) => Ok(Output {
            more: true,
            ..Output::done(json!({"stopped": "time budget reached; resumes at the next page"}))
        }),
    }
}

pub async fn schema(job: &Job) -> Result<Output> {
    if flow_done(job, Phase::Schema).await? {
        return Ok(skipped(Phase::Schema));
    }
    let fields = phases::schema(job).await?;
    mark_done(job, Phase::Schema).await?;
    Ok(Output::done(json!({"fields": fields.len()})))
}

pub async fn agents(job: &Job) -> Result<Output> {
    if flow_done(job, Phase::Agents).await? {
        return Ok(skipped(Phase::Agents));
    }
    let r = phases::agents(job).await?;
    mark_done(job, Phase::Agents).await?;
    Ok(Output::done(json!({
        "matched": r.matched,
        "provisioning_queue": r.provisioning_queue,
        "inactive": r.inactive,
        "report": keys::AGENTS,
    })))
}

/// The checkpoints `phases::load` keeps for the selection a load ran with: recorded before the
/// fan-out so the gate's `phases::load` does not start the pages again.
async fn pin_load_selection(job: &Job, kind: ObjectKind) -> Result<()> {
    let selection = sha256_hex(&serde_json::to_vec(&job.settings.selection).map_err(Error::from)?);
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
    Ok(())
}

/// Where the activity partitions are staged: each names whole ticket threads (the tickets and
/// the staged pages their records are on), about [`ACTIVITY_PARTITION_PAGES`] pages' worth.
pub const ACTIVITY_PARTITIONS: &str = "partitions/load-activity/";
/// Staged pages' worth of activities per partition (a partition is one Lambda invocation).
pub const ACTIVITY_PARTITION_PAGES: usize = 4;

/// Splits the staged activities into partitions of whole tickets (a thread is written in order
/// by one invocation), tickets in staged order: a partition's load reads only the pages its
/// threads are on, and this planning holds a ticket index, not the records.
async fn activity_partitions(
    job: &Job,
    cm: &deskshift_core::mapping::CollectionMap,
) -> Result<Vec<String>> {
    let target = (job.settings.page_size.max(1) as usize) * ACTIVITY_PARTITION_PAGES;
    let ticket_field = cm.standard("ticket").map(|f| f.source.as_str());
    let batches =
        phases::thread_batches(job, &keys::raw_prefix(&cm.collection), ticket_field, target)
            .await?;
    let mut keys = Vec::with_capacity(batches.len());
    for (i, batch) in batches.iter().enumerate() {
        let key = format!("{ACTIVITY_PARTITIONS}{:06}.json", i + 1);
        job.stage
            .put(&key, serde_json::to_vec(batch).map_err(Error::from)?.into())
            .await?;
        keys.push(key);
    }
    Ok(keys)
}

/// The partitions of a fanned-out phase: staged page keys for a load, activity partitions of
/// whole tickets for activities, attachment partitions of records with files. Written as a
/// manifest for the Distributed Map and returned for the inline one.
pub async fn partitions(clients: &Clients, job: &Job, event: &Event) -> Result<Output> {
    let list: Vec<String> = if event.phase.starts_with("load-") {
        let kind = kind_of(event)?;
        let map = phases::approved_map(job).await?;
        pin_load_selection(job, kind).await?;
        match map.for_kind(kind) {
            None => vec![],
            Some(cm) if kind == ObjectKind::Activity => activity_partitions(job, cm).await?,
            Some(cm) => phases::staged_pages(job, &cm.collection).await?,
        }
    } else if event.phase == Phase::Attachments.name() {
        attachment_partitions(job).await?
    } else {
        return Err(config_error(format!(
            "partitions: phase {} does not fan out",
            event.phase
        )));
    };
    let key = deskshift_statemachine::manifest_key(&event.phase);
    job.stage
        .put(&key, serde_json::to_vec(&list).map_err(Error::from)?.into())
        .await?;
    let object_key = clients.stage(&event.job)?.object_key(&key)?;
    Ok(Output {
        partitions: Some(list.clone()),
        manifest_key: Some(object_key),
        ..Output::done(json!({"partitions": list.len()}))
    })
}

/// One partition of a load: its records written, its page checkpointed.
pub async fn load_partition(job: &Job, event: &Event) -> Result<Output> {
    let kind = kind_of(event)?;
    let partition = event.partition.clone().ok_or_else(|| {
        config_error(format!(
            "load-{kind}: the event has no `partition` (a staged page key)"
        ))
    })?;
    let map = phases::approved_map(job).await?;
    let Some(cm) = map.for_kind(kind) else {
        return Ok(Output::done(
            json!({"skipped": format!("no collection maps to {kind}")}),
        ));
    };
    let batches = if partition == "all" {
        Batches::Whole(keys::raw_prefix(&cm.collection))
    } else if kind == ObjectKind::Activity && partition.starts_with(ACTIVITY_PARTITIONS) {
        let batch: phases::ThreadBatch = match job.stage.get(&partition).await? {
            Some(b) => serde_json::from_slice(&b).map_err(Error::from)?,
            None => {
                return Err(config_error(format!(
                    "load-activity: partition {partition} is not in the stage; plan the partitions again"
                )));
            }
        };
        // Checkpointed under the partition's name (the gate counts the planned partitions).
        Batches::Threads(vec![phases::ThreadBatch {
            key: partition,
            ..batch
        }])
    } else {
        if !partition.starts_with(&keys::raw_prefix(&cm.collection)) {
            return Err(config_error(format!(
                "load-{kind}: partition {partition} is not a staged page of {}",
                cm.collection
            )));
        }
        Batches::Pages(vec![partition])
    };
    let rec = phases::load_batches(job, kind, batches, &format!("load-{kind}"), false).await?;
    Ok(Output::done(json!({
        "created": rec.created,
        "updated": rec.updated,
        "unchanged": rec.unchanged,
        "failed": rec.failed,
    })))
}

/// The reconciliation gate of a load, after its fan-out: `phases::load` with every page done
/// counts from the crosswalk and compares the destination's totals.
pub async fn reconcile(job: &Job, event: &Event) -> Result<Output> {
    let kind = kind_of(event)?;
    let phase = Phase::Load(kind);
    if kind == ObjectKind::Activity {
        mark_activities_loaded(job, &event.phase).await?;
    }
    match phases::load(job, kind).await {
        Ok(rec) => {
            if rec.passed {
                mark_done(job, phase).await?;
            }
            Ok(Output {
                passed: rec.passed,
                ..Output::done(json!({
                    "in_scope": rec.in_scope,
                    "created": rec.created,
                    "existing": rec.existing,
                    "failed": rec.failed,
                    "unexplained": rec.unexplained,
                    "report": keys::reconciliation(kind),
                }))
            })
        }
        Err(Error::Gate { message, .. }) => Ok(Output {
            passed: false,
            ..Output::done(json!({"unexplained": message, "report": keys::reconciliation(kind)}))
        }),
        Err(e) => Err(e.into()),
    }
}

/// The partitions the state machine's manifest planned for `phase` (None before planning).
async fn planned_partitions(job: &Job, phase: &str) -> Result<Option<Vec<String>>> {
    match job
        .stage
        .get(&deskshift_statemachine::manifest_key(phase))
        .await?
    {
        Some(bytes) => Ok(Some(serde_json::from_slice(&bytes).map_err(Error::from)?)),
        None => Ok(None),
    }
}

/// `phases::load` reads activities as one batch (checkpoint `all`): once every planned activity
/// partition is done, that checkpoint is written so the gate counts instead of loading again.
async fn mark_activities_loaded(job: &Job, phase: &str) -> Result<()> {
    let Some(planned) = planned_partitions(job, phase).await? else {
        return Ok(());
    };
    if !planned.iter().all(|p| p.starts_with(ACTIVITY_PARTITIONS)) {
        return Ok(());
    }
    for p in &planned {
        if !job.checkpoints.get(phase, p).await?.is_some_and(|c| c.done) {
            return Ok(());
        }
    }
    job.checkpoints
        .put(&Checkpoint {
            phase: phase.to_string(),
            partition: "all".into(),
            cursor: None,
            done: true,
            updated_at: now_iso(),
        })
        .await?;
    Ok(())
}

/// Where the attachment partitions are staged: `<dir>/raw/<collection>/page.json` holds the
/// partition's records with files, about one staged page's worth of files per partition.
pub const ATTACHMENT_PARTITIONS: &str = "partitions/attachments/";
const ATTACHMENTS_REPORT: &str = "reports/attachments.json";
const ATTACHMENT_REPORTS: &str = "reports/attachments/";

/// Splits the staged records that carry files (accounts, contacts, tickets, activities) into
/// partitions of about `page_size` files, whole records, in staged order.
async fn attachment_partitions(job: &Job) -> Result<Vec<String>> {
    let map = phases::approved_map(job).await?;
    let target = job.settings.page_size.max(1) as usize;
    type Part = BTreeMap<String, Vec<deskshift_core::model::RawRecord>>;
    let mut parts: Vec<Part> = vec![];
    let (mut current, mut files) = (Part::new(), 0usize);
    for kind in phases::FILE_KINDS {
        let Some(cm) = map.for_kind(kind) else {
            continue;
        };
        let mut records = phases::StagedRecords::new(job, &cm.collection).await?;
        while let Some(raw) = records.next().await? {
            if raw.attachments.is_empty() {
                continue;
            }
            if files >= target {
                parts.push(std::mem::take(&mut current));
                files = 0;
            }
            files += raw.attachments.len();
            current.entry(cm.collection.clone()).or_default().push(raw);
        }
    }
    if !current.is_empty() {
        parts.push(current);
    }
    let mut dirs = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let dir = format!("{ATTACHMENT_PARTITIONS}{:06}/", i + 1);
        for (collection, records) in part {
            let key = format!("{dir}{}page.json", keys::raw_prefix(collection));
            job.stage
                .put(
                    &key,
                    serde_json::to_vec(records).map_err(Error::from)?.into(),
                )
                .await?;
        }
        dirs.push(dir);
    }
    Ok(dirs)
}

/// The job's stage as one attachment partition sees it: staged records (`raw/`) are the
/// partition's own, and the attachments report is the partition's; everything else is the stage.
struct PartitionStage {
    inner: std::sync::Arc<dyn deskshift_core::ports::Stage>,
    dir: String,
    report: String,
}

#[async_trait::async_trait]
impl deskshift_core::ports::Stage for PartitionStage {
    async fn put(&self, key: &str, bytes: bytes::Bytes) -> deskshift_core::Result<()> {
        let key = if key == ATTACHMENTS_REPORT {
            self.report.as_str()
        } else {
            key
        };
        self.inner.put(key, bytes).await
    }
    async fn get(&self, key: &str) -> deskshift_core::Result<Option<bytes::Bytes>> {
        self.inner.get(key).await
    }
    async fn list(&self, prefix: &str) -> deskshift_core::Result<Vec<String>> {
        if prefix.starts_with("raw/") {
            return self.inner.list(&format!("{}{prefix}", self.dir)).await;
        }
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &str) -> deskshift_core::Result<()> {
        self.inner.delete(key).await
    }
}

/// Attachments of one partition (`partition` = a partition directory), or of every staged
/// record (None or `all`). The last partition to finish writes the whole report.
pub async fn attachments(job: &Job, partition: Option<&str>) -> Result<Output> {
    let Some(dir) = partition.filter(|p| *p != "all") else {
        let r = phases::attachments(job).await?;
        mark_done(job, Phase::Attachments).await?;
        return Ok(attachments_output(&r));
    };
    if !dir.starts_with(ATTACHMENT_PARTITIONS) || !dir.ends_with('/') {
        return Err(config_error(format!(
            "attachments: partition {dir} is not an attachment partition ({ATTACHMENT_PARTITIONS}<n>/)"
        )));
    }
    let report_key = format!(
        "{ATTACHMENT_REPORTS}{}.json",
        dir.trim_start_matches(ATTACHMENT_PARTITIONS)
            .trim_end_matches('/')
    );
    let view = Job {
        stage: std::sync::Arc::new(PartitionStage {
            inner: job.stage.clone(),
            dir: dir.to_string(),
            report: report_key,
        }),
        ..job.clone()
    };
    let r = phases::attachments(&view).await?;
    let phase = Phase::Attachments.name();
    job.checkpoints
        .put(&Checkpoint {
            phase: phase.clone(),
            partition: dir.to_string(),
            cursor: None,
            done: true,
            updated_at: now_iso(),
        })
        .await?;
    merge_attachment_reports(job, &phase).await?;
    Ok(attachments_output(&r))
}

/// Once every planned partition is done: their reports become `reports/attachments.json` and
/// the phase is done. Idempotent, so two partitions finishing together both may write it.
async fn merge_attachment_reports(job: &Job, phase: &str) -> Result<()> {
    let Some(planned) = planned_partitions(job, phase).await? else {
        return Ok(());
    };
    let mut merged = phases::AttachmentsReport::default();
    for dir in &planned {
        if !job
            .checkpoints
            .get(phase, dir)
            .await?
            .is_some_and(|c| c.done)
        {
            return Ok(());
        }
        let key = format!(
            "{ATTACHMENT_REPORTS}{}.json",
            dir.trim_start_matches(ATTACHMENT_PARTITIONS)
                .trim_end_matches('/')
        );
        let Some(bytes) = job.stage.get(&key).await? else {
            return Ok(());
        };
        let r: phases::AttachmentsReport = serde_json::from_slice(&bytes).map_err(Error::from)?;
        merged.total += r.total;
        merged.uploaded += r.uploaded;
        merged.already += r.already;
        merged.over_limit += r.over_limit;
        merged.failed += r.failed;
        merged.md5_mismatch_declared += r.md5_mismatch_declared;
        merged.problems.extend(r.problems);
    }
    job.stage
        .put(
            ATTACHMENTS_REPORT,
            serde_json::to_vec_pretty(&merged)
                .map_err(Error::from)?
                .into(),
        )
        .await?;
    mark_done(job, Phase::Attachments).await
}

fn attachments_output(r: &phases::AttachmentsReport) -> Output {
    Output::done(json!({
        "total": r.total,
        "uploaded": r.uploaded,
        "already": r.already,
        "over_limit": r.over_limit,
        "failed": r.failed,
    }))
}

pub async fn validate(job: &Job) -> Result<Output> {
    let r = phases::validate(job).await?;
    mark_done(job, Phase::Validate).await?;
    job.dest.finish().await?;
    Ok(Output::done(json!({
        "checked": r.checked,
        "matched": r.matched,
        "mismatches": r.mismatches.len(),
        "missing": r.missing.len(),
        "report": keys::VALIDATION,
    })))
}

/// Writes what stopped the execution into the job's reports.
pub async fn failure_report(job: &Job, event: &Event) -> Result<Output> {
    let error = event.error.clone().unwrap_or(Value::Null);
    // Lambda errors arrive as a JSON string {errorType, errorMessage} in Cause.
    let cause = error["Cause"].as_str().unwrap_or_default();
    let message = serde_json::from_str::<Value>(cause)
        .ok()
        .and_then(|c| c["errorMessage"].as_str().map(str::to_string))
        .unwrap_or_else(|| cause.to_string());
    let report = json!({
        "at": now_iso(),
        "error": error["Error"],
        "message": message,
        "what_to_do": "fix the cause named above, then start the migration again: every phase resumes from its checkpoints",
    });
    job.stage
        .put(
            FAILURE_KEY,
            serde_json::to_vec_pretty(&report)
                .map_err(Error::from)?
                .into(),
        )
        .await?;
    Ok(Output::done(
        json!({"report": FAILURE_KEY, "error": report["error"]}),
    ))
}

pub async fn delta(job: &Job) -> Result<Output> {
    if let Some(at) = lifecycle::cutover_done(job).await? {
        return Ok(Output::done(
            json!({"skipped": format!("cut over at {at}: deltas no longer run; delete the delta schedule")}),
        ));
    }
    let r = lifecycle::delta(job).await?;
    Ok(Output::done(json!({
        "run": r.run,
        "changed": r.changed.values().sum::<u64>(),
        "writes": r.writes(),
    })))
}

pub async fn cutover(job: &Job) -> Result<Output> {
    let r = lifecycle::cutover(job).await?;
    Ok(Output::done(json!({
        "completed_at": r.completed_at,
        "final_delta_writes": r.final_delta.writes(),
    })))
}

pub async fn rollback(job: &Job, event: &Event) -> Result<Output> {
    let r = lifecycle::rollback(job, event.include_changed.unwrap_or(false)).await?;
    Ok(Output::done(json!({
        "deleted": r.deleted.values().sum::<u64>(),
        "kept_changed": r.kept_changed.len(),
        "failed": r.failed.len(),
    })))
}

/// Runs `function` for `event` (the binaries call this; so do in-process tests).
pub async fn handle(
    function: crate::Function,
    clients: &Clients,
    event: Event,
    deadline: SystemTime,
) -> Result<Output> {
    use crate::Function as F;
    let job = clients.job(&event.job).await?;
    match function {
        F::Preflight => preflight(&job).await,
        F::ProposeMapping => propose_mapping(&job).await,
        F::AwaitApproval => await_approval(clients, &job, &event).await,
        F::Approve => approve(clients, &job, &event).await,
        F::Extract => extract(&job, deadline).await,
        F::Schema => schema(&job).await,
        F::Agents => agents(&job).await,
        F::Partitions => partitions(clients, &job, &event).await,
        F::LoadPartition => load_partition(&job, &event).await,
        F::Reconcile => reconcile(&job, &event).await,
        F::Attachments => attachments(&job, event.partition.as_deref()).await,
        F::Validate => validate(&job).await,
        F::FailureReport => failure_report(&job, &event).await,
        F::Delta => delta(&job).await,
        F::Cutover => cutover(&job).await,
        F::Rollback => rollback(&job, &event).await,
    }
}
