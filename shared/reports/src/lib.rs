//! The migration package: inventories, access-control mapping, change-history export and the HTML report.
//!
//! Pure builders turn staged data into documents ([`workflow_inventory`], [`view_inventory`],
//! [`access_mapping`], [`change_history`], [`html::render`]); thin async loaders read a [`Job`]'s
//! stage and stores ([`load_documentation`], [`load_report_data`]); [`write_package`] writes the
//! whole package into a directory (`<job_dir>/reports/`).

pub mod access;
pub mod criteria;
mod docs;
mod fields;
pub mod history;
pub mod html;
pub mod tables;
pub mod views;
pub mod vocab;
pub mod workflows;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use deskshift_core::flow::FLOW;
use deskshift_core::job::Job;
use deskshift_core::mapping::{Approval, FieldMap};
use deskshift_core::model::{ObjectKind, RawRecord};
use deskshift_core::phases::{
    self, AgentsReport, AttachmentsReport, Reconciliation, Scoping, ValidationReport, keys,
};
use deskshift_core::ports::AuditOp;
use serde::{Deserialize, Serialize};

pub use access::{AccessMapping, Member, TeamEntry, access_mapping, access_markdown};
pub use history::{ChangeEntry, ChangeHistoryExport, DateRange, change_history};
pub use html::{DocumentLink, Level, PhaseSpan, ReportData, Verdict};
pub use views::{ViewEntry, ViewInventory, view_inventory, views_markdown};
pub use workflows::{WorkflowEntry, WorkflowInventory, workflow_inventory, workflows_markdown};

/// What the package includes beyond the fixed documents.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PackageOptions {
    /// Export the source's change history inside this range (None: no export; it is opt-in).
    pub change_history: Option<DateRange>,
    /// Rows per table in the HTML report before it points at the full document.
    pub max_rows: usize,
}

impl Default for PackageOptions {
    fn default() -> Self {
        PackageOptions {
            change_history: None,
            max_rows: 200,
        }
    }
}

/// What [`write_package`] wrote.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PackageIndex {
    pub dir: PathBuf,
    pub generated_at: String,
    pub verdict: Verdict,
    /// The HTML report's path.
    pub html: PathBuf,
    pub documents: Vec<DocumentLink>,
    /// Things the package could not include, and why.
    pub notes: Vec<String>,
}

/// The staged documentation tabs, read once.
#[derive(Clone, Debug, Default)]
pub struct Documentation {
    /// The field map (approved or only proposed); None before `mapping propose`.
    pub map: Option<FieldMap>,
    pub workflows: Vec<RawRecord>,
    pub views: Vec<RawRecord>,
    pub groups: Vec<RawRecord>,
    pub users: Vec<RawRecord>,
    pub change_history: Vec<RawRecord>,
}

/// Reads the staged records of every documentation collection the field map names.
pub async fn load_documentation(job: &Job) -> anyhow::Result<Documentation> {
    let Ok(map) = phases::field_map(job).await else {
        return Ok(Documentation::default());
    };
    let staged = |kind: ObjectKind| {
        let map = &map;
        async move {
            match map.for_kind(kind) {
                Some(cm) => phases::staged_records(job, &cm.collection)
                    .await
                    .with_context(|| format!("reading the staged {} records", cm.collection)),
                None => Ok(vec![]),
            }
        }
    };
    Ok(Documentation {
        workflows: staged(ObjectKind::Workflow).await?,
        views: staged(ObjectKind::View).await?,
        groups: staged(ObjectKind::Group).await?,
        users: staged(ObjectKind::Agent).await?,
        change_history: staged(ObjectKind::ChangeHistory).await?,
        map: Some(map),
    })
}

async fn staged_json<T: for<'de> Deserialize<'de>>(
    job: &Job,
    key: &str,
) -> anyhow::Result<Option<T>> {
    match job.stage.get(key).await? {
        Some(b) => Ok(Some(serde_json::from_slice(&b).with_context(|| {
            format!(
                "stage object {key} is not valid JSON of its kind: rerun the phase that writes it"
            )
        })?)),
        None => Ok(None),
    }
}

/// The phase an audit entry belongs to.
fn audit_phase(op: AuditOp, kind: ObjectKind) -> String {
    match op {
        AuditOp::Schema => "schema".into(),
        AuditOp::Attach => "attachments".into(),
        AuditOp::Delete => "rollback".into(),
        AuditOp::Create | AuditOp::Update => format!("load-{kind}"),
    }
}

/// Reads everything the HTML report shows from the job's stage and stores.
pub async fn load_report_data(job: &Job, max_rows: usize) -> anyhow::Result<ReportData> {
    let scoping: Option<Scoping> = staged_json(job, keys::SCOPING).await?;
    let approval: Option<Approval> = staged_json(job, keys::APPROVAL).await?;
    let map: Option<FieldMap> = staged_json(job, keys::FIELD_MAP).await?;
    let mut reconciliation = Vec::new();
    let mut crosswalk = BTreeMap::new();
    for kind in ObjectKind::LOADED {
        if let Some(r) = staged_json::<Reconciliation>(job, &keys::reconciliation(kind)).await? {
            reconciliation.push(r);
        }
        let counts = job.crosswalk.counts(kind).await?;
        if !counts.is_empty() {
            crosswalk.insert(kind.to_string(), counts);
        }
    }
    let failed = phases::failed_records(job).await?;
    let mut by_reason: BTreeMap<(String, String), u64> = BTreeMap::new();
    for f in &failed {
        *by_reason
            .entry((f.kind.to_string(), f.reason.clone()))
            .or_insert(0) += 1;
    }
    let mut failures_by_reason: Vec<(String, String, u64)> =
        by_reason.into_iter().map(|((k, r), n)| (k, r, n)).collect();
    failures_by_reason.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| (&a.0, &a.1).cmp(&(&b.0, &b.1))));
    let flags = phases::flags(job).await?;
    let mut by_code: BTreeMap<(String, String), (u64, String)> = BTreeMap::new();
    for f in &flags {
        let e = by_code
            .entry((f.code.clone(), f.kind.to_string()))
            .or_insert((0, f.message.clone()));
        e.0 += 1;
    }
    let mut flags_by_code: Vec<(String, String, u64, String)> = by_code
        .into_iter()
        .map(|((c, k), (n, m))| (c, k, n, m))
        .collect();
    flags_by_code.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| (&a.0, &a.1).cmp(&(&b.0, &b.1))));

    // Destination writes per phase, with their first and last time, from the audit log.
    let mut writes: BTreeMap<String, (u64, String, String)> = BTreeMap::new();
    let mut after = 0u64;
    loop {
        let page = job.audit.entries(after, 1000).await?;
        let Some((last, _)) = page.last() else { break };
        after = *last;
        for (_, e) in &page {
            let w =
                writes
                    .entry(audit_phase(e.op, e.kind))
                    .or_insert((0, e.at.clone(), e.at.clone()));
            w.0 += 1;
            if e.at < w.1 {
                w.1 = e.at.clone();
            }
            if e.at > w.2 {
                w.2 = e.at.clone();
            }
        }
    }
    let done: BTreeMap<String, String> = job
        .checkpoints
        .list("flow")
        .await?
        .into_iter()
        .filter(|c| c.done)
        .map(|c| (c.partition, c.updated_at))
        .collect();
    let mut timeline = Vec::new();
    let mut previous_end = scoping.as_ref().map(|s| s.at.clone());
    for step in FLOW {
        let name = step.phase.name();
        let finished = done.get(&name).cloned();
        let w = writes.remove(&name);
        let mut started = previous_end.clone();
        if let Some((_, first, _)) = &w
            && started.as_ref().is_none_or(|s| first < s)
        {
            started = Some(first.clone());
        }
        if finished.is_some() {
            previous_end = finished.clone();
        }
        timeline.push(PhaseSpan {
            phase: name,
            started: if finished.is_some() || w.is_some() {
                started
            } else {
                None
            },
            done: finished.is_some(),
            finished,
            writes: w.map(|x| x.0).unwrap_or(0),
        });
    }
    // Writes outside the flow (a rollback) appear with their own times.
    for (phase, (n, first, last)) in writes {
        timeline.push(PhaseSpan {
            phase,
            started: Some(first),
            finished: Some(last),
            done: true,
            writes: n,
        });
    }
    Ok(ReportData {
        generated_at: deskshift_core::util::now_iso(),
        source_platform: map
            .as_ref()
            .map(|m| vocab::platform_display(&m.source_platform))
            .unwrap_or_else(|| vocab::platform_display(job.source.platform())),
        destination_platform: map
            .as_ref()
            .map(|m| vocab::platform_display(&m.destination_platform))
            .unwrap_or_else(|| vocab::platform_display(job.dest.platform())),
        scoping,
        approval,
        reconciliation,
        crosswalk,
        agents: staged_json::<AgentsReport>(job, keys::AGENTS).await?,
        attachments: staged_json::<AttachmentsReport>(job, "reports/attachments.json").await?,
        validation: staged_json::<ValidationReport>(job, keys::VALIDATION).await?,
        failed_total: failed.len() as u64,
        failed: failed
            .iter()
            .take(max_rows)
            .map(|f| html::FailedRow {
                kind: f.kind.to_string(),
                source_id: f.source_id.clone(),
                phase: f.phase.clone(),
                reason: f.reason.clone(),
                error: f.error.clone(),
            })
            .collect(),
        failures_by_reason,
        flags_total: flags.len() as u64,
        flags_by_code,
        timeline,
        documents: vec![],
        inventories: Default::default(),
        max_rows,
    })
}

struct Writer<'a> {
    dir: &'a Path,
    documents: Vec<DocumentLink>,
}

impl Writer<'_> {
    fn write(
        &mut self,
        file: &str,
        title: &str,
        description: &str,
        bytes: &[u8],
    ) -> anyhow::Result<()> {
        let path = self.dir.join(file);
        std::fs::write(&path, bytes).with_context(|| {
            format!(
                "cannot write {}: check the reports directory is writable",
                path.display()
            )
        })?;
        self.documents.push(DocumentLink {
            file: file.to_string(),
            title: title.to_string(),
            description: description.to_string(),
        });
        Ok(())
    }

    fn json<T: Serialize>(
        &mut self,
        file: &str,
        title: &str,
        description: &str,
        v: &T,
    ) -> anyhow::Result<()> {
        self.write(file, title, description, &serde_json::to_vec_pretty(v)?)
    }
}

/// Writes the whole migration package into `reports_dir` (created if missing) and returns its index.
/// Works on a partial job too: documents whose inputs do not exist yet are left out and named in
/// the index's notes.
pub async fn write_package(
    job: &Job,
    reports_dir: &Path,
    options: &PackageOptions,
) -> anyhow::Result<PackageIndex> {
    std::fs::create_dir_all(reports_dir).with_context(|| {
        format!(
            "cannot create the reports directory {}",
            reports_dir.display()
        )
    })?;
    let mut w = Writer {
        dir: reports_dir,
        documents: Vec::new(),
    };
    let mut notes = Vec::new();

    // The phases' own reports, as staged.
    for (key, file, title, description) in [
        (
            keys::SCOPING,
            "scoping.json",
            "Scoping",
            "counts per tab, field inventory, permission check, department mapping, attachment volume, API cost and duration estimate",
        ),
        (
            keys::FIELD_MAP,
            "field-map.json",
            "Field map",
            "every source field, where it goes, with confidence and reason",
        ),
        (
            keys::APPROVAL,
            "approval.json",
            "Approval",
            "who approved which exact field map (its hash), and when",
        ),
        (
            keys::AGENTS,
            "agents.json",
            "Agents",
            "users matched to agents, the provisioning queue, inactive users, suggested roles",
        ),
        (
            "reports/attachments.json",
            "attachments.json",
            "Attachments",
            "uploaded, over the size limit, failed",
        ),
        (
            keys::VALIDATION,
            "validation.json",
            "Validation",
            "records read back from the destination and compared field by field",
        ),
    ] {
        match job.stage.get(key).await? {
            Some(b) => w.write(file, title, description, &b)?,
            None => notes.push(format!("{file}: not written yet (its phase has not run)")),
        }
    }
    let data = load_report_data(job, options.max_rows).await?;
    w.json(
        "reconciliation.json",
        "Reconciliation",
        "per object: source, excluded, created, updated, failed, destination counts, and the gate",
        &data.reconciliation,
    )?;
    // Records that fields look up but the destination has no place for (Zoho Desk custom
    // modules): all of them, as staged; the fields that name them say which.
    if let Ok(map) = phases::approved_map(job).await {
        for collection in map.lookup_collections() {
            let records = phases::staged_records(job, &collection)
                .await
                .with_context(|| format!("reading the staged {collection} records"))?;
            if records.is_empty() {
                notes.push(format!(
                    "{collection}: no records staged (the extract has not run, or the collection is empty)"
                ));
                continue;
            }
            let fields: Vec<String> = map
                .collections
                .iter()
                .flat_map(|c| c.fields.iter().map(move |f| (c, f)))
                .filter(|(_, f)| f.linked_collection.as_deref() == Some(collection.as_str()))
                .map(|(c, f)| format!("{} \"{}\"", c.kind, f.label))
                .collect();
            let slug: String = collection
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '-'
                    }
                })
                .collect();
            w.json(
                &format!("records-{slug}.json"),
                &format!("{collection} records"),
                &format!(
                    "{} records with no destination counterpart, named in {}",
                    records.len(),
                    fields.join(", ")
                ),
                &records,
            )?;
        }
    }
    let failed = phases::failed_records(job).await?;
    let mut buf = Vec::new();
    tables::write_failed_csv(&failed, &mut buf)?;
    w.write(
        "failed-records.csv",
        "Failed records",
        "every record that could not move, with phase, reason and payload",
        &buf,
    )?;
    let flags = phases::flags(job).await?;
    let mut buf = Vec::new();
    tables::write_flags_csv(&flags, &mut buf)?;
    w.write(
        "flags.csv",
        "Flags",
        "records that moved but need a person's look",
        &buf,
    )?;

    // Documentation of what does not migrate.
    let docs = load_documentation(job).await?;
    let mut inventories = html::InventoryCounts::default();
    match &docs.map {
        Some(map) => {
            let wf = workflow_inventory(map, &docs.workflows);
            inventories.workflows = wf.workflows.len() as u64;
            inventories.by_equivalent = wf.by_equivalent.clone();
            w.json("workflows.json", "Workflow inventory (JSON)", "trigger, conditions, actions and the recommended destination equivalent per workflow", &wf)?;
            w.write(
                "workflows.md",
                "Workflow inventory",
                "the same, as a table to read",
                workflows_markdown(&wf).as_bytes(),
            )?;
            let vi = view_inventory(map, &docs.views);
            inventories.views = vi.views.len() as u64;
            w.json(
                "views.json",
                "Saved-view inventory (JSON)",
                "filters, columns, sharing and the custom view to build per view",
                &vi,
            )?;
            w.write(
                "views.md",
                "Saved-view inventory",
                "the same, as a table to read",
                views_markdown(&vi).as_bytes(),
            )?;
            let am = access_mapping(map, &docs.groups, &docs.users);
            inventories.teams = am.teams.len() as u64;
            w.json(
                "access-control.json",
                "Access-control mapping (JSON)",
                "groups to teams, suggested roles, members per group",
                &am,
            )?;
            w.write(
                "access-control.md",
                "Access-control mapping",
                "the same, to read",
                access_markdown(&am).as_bytes(),
            )?;
            if let Some(range) = &options.change_history {
                let mut export =
                    change_history(map, &docs.change_history, job.source_zone.as_ref(), range);
                add_destination_ids(job, map, &mut export).await?;
                inventories.change_entries = Some(export.entries.len() as u64);
                let mut buf = Vec::new();
                history::write_jsonl(&export.entries, &mut buf)?;
                w.write(
                    "change-history.jsonl",
                    "Change history",
                    "one JSON line per source field change inside the requested range (UTC)",
                    &buf,
                )?;
                let summary = serde_json::json!({
                    "source_collection": export.source_collection,
                    "range": export.range,
                    "read_from": export.read_from,
                    "exported": export.entries.len(),
                    "total_in_source": export.total_in_source,
                    "undated": export.undated,
                });
                w.json(
                    "change-history.json",
                    "Change history (summary)",
                    "the range, the fields read and the counts of the export",
                    &summary,
                )?;
                if !export.undated.is_empty() {
                    notes.push(format!(
                        "change history: {} entries have no readable time and are not in the ranged export (ids in change-history.json)",
                        export.undated.len()
                    ));
                }
            }
        }
        None => notes.push(
            "inventories: no field map yet; run `deskshift mapping propose` and extract first"
                .into(),
        ),
    }

    let mut data = data;
    data.inventories = inventories;
    let html_file = "report.html";
    let mut links = w.documents.clone();
    // The CLI's printed summary, when it sits beside the package.
    if reports_dir.join("summary.md").is_file() {
        links.push(DocumentLink {
            file: "summary.md".into(),
            title: "Summary".into(),
            description: "the reconciliation table as the command line printed it".into(),
        });
    }
    links.push(DocumentLink {
        file: "index.json".into(),
        title: "Index".into(),
        description: "this list, the verdict and notes, for tools".into(),
    });
    data.documents = links;
    let page = html::render(&data);
    w.write(html_file, "Report", "this page", page.as_bytes())?;
    let index = PackageIndex {
        dir: reports_dir.to_path_buf(),
        generated_at: data.generated_at.clone(),
        verdict: data.verdict(),
        html: reports_dir.join(html_file),
        documents: w.documents.clone(),
        notes,
    };
    w.json(
        "index.json",
        "Index",
        "the documents, the verdict and notes",
        &index,
    )?;
    Ok(index)
}

/// Fills in each changed record's destination id from the crosswalk.
async fn add_destination_ids(
    job: &Job,
    map: &FieldMap,
    export: &mut ChangeHistoryExport,
) -> anyhow::Result<()> {
    let cols = docs::Collections::new(map);
    let mut wanted: BTreeMap<ObjectKind, Vec<String>> = BTreeMap::new();
    for e in &export.entries {
        if let Some(cm) = cols.by_name(&e.tab) {
            wanted.entry(cm.kind).or_default().push(e.record_id.clone());
        }
    }
    let mut found: BTreeMap<(ObjectKind, String), String> = BTreeMap::new();
    for (kind, mut ids) in wanted {
        ids.sort();
        ids.dedup();
        for chunk in ids.chunks(500) {
            for (id, link) in job.crosswalk.get_many(kind, chunk).await? {
                if let Some(d) = link.dest_id {
                    found.insert((kind, id), d);
                }
            }
        }
    }
    for e in &mut export.entries {
        if let Some(cm) = cols.by_name(&e.tab) {
            e.destination_id = found.get(&(cm.kind, e.record_id.clone())).cloned();
        }
    }
    Ok(())
}
