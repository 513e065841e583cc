//! The migration package written into the job directory, and what the CLI prints.

use std::path::Path;

use deskshift_core::job::Job;
use deskshift_core::mapping::{FieldMap, Target};
use deskshift_core::model::ObjectKind;
use deskshift_core::phases::{self, Reconciliation, Scoping, ValidationReport, keys};
use deskshift_core::runner::RunSummary;

/// Writes the migration package into `<job_dir>/reports/`: the summary first (the HTML report links
/// it), then every document of `deskshift-reports`.
pub async fn write_all(job: &Job, job_dir: &Path) -> anyhow::Result<()> {
    write_package(job, job_dir, &deskshift_reports::PackageOptions::default())
        .await
        .map(|_| ())
}

pub async fn write_package(
    job: &Job,
    job_dir: &Path,
    options: &deskshift_reports::PackageOptions,
) -> anyhow::Result<deskshift_reports::PackageIndex> {
    let dir = job_dir.join("reports");
    std::fs::create_dir_all(&dir)?;
    let mut recs = Vec::new();
    for kind in ObjectKind::LOADED {
        if let Some(b) = job.stage.get(&keys::reconciliation(kind)).await? {
            recs.push(serde_json::from_slice::<Reconciliation>(&b)?);
        }
    }
    let failed = phases::failed_records(job).await?;
    let flags = phases::flags(job).await?;
    let mut md = String::from("# deskshift migration summary\n\n## Reconciliation\n\n");
    md.push_str(&reconciliation_table(&recs));
    md.push_str(&format!(
        "\n\nFailed records: {} (failed-records.csv). Flags: {} (flags.csv). The full report: report.html.\n",
        failed.len(),
        flags.len()
    ));
    let mut by_code: std::collections::BTreeMap<&str, usize> = Default::default();
    for f in &flags {
        *by_code.entry(f.code.as_str()).or_insert(0) += 1;
    }
    for (code, n) in by_code {
        md.push_str(&format!("- {code}: {n}\n"));
    }
    std::fs::write(dir.join("summary.md"), md)?;
    deskshift_reports::write_package(job, &dir, options).await
}

pub fn reconciliation_table(recs: &[Reconciliation]) -> String {
    let mut s = String::from(
        "| kind | in source | excluded | in scope | created | updated | unchanged | failed | dest before | dest now | gate |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for r in recs {
        let opt = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.kind.map(|k| k.as_str()).unwrap_or("?"),
            r.source_total,
            r.excluded,
            r.in_scope,
            r.created,
            r.updated,
            r.unchanged,
            r.failed,
            opt(r.destination_before),
            opt(r.destination_now),
            if r.passed {
                "passed".to_string()
            } else {
                format!("FAILED: {}", r.unexplained.join("; "))
            }
        ));
        for (reason, n) in &r.failures_by_reason {
            s.push_str(&format!("|  failed: {reason} | | | | | | | {n} | | | |\n"));
        }
    }
    s
}

pub fn print_summary(s: &RunSummary) {
    println!("\nReconciliation (source vs destination, every difference explained):\n");
    println!("{}", reconciliation_table(&s.reconciliation));
    if let Some(a) = &s.agents {
        println!(
            "Agents: {} matched, {} in the provisioning queue, {} inactive (flagged)",
            a.matched, a.provisioning_queue, a.inactive
        );
    }
    if let Some(a) = &s.attachments {
        println!(
            "Attachments: {} of {} uploaded ({} already there), {} over the size limit (flagged), {} failed, {} with a wrong declared MD5",
            a.uploaded, a.total, a.already, a.over_limit, a.failed, a.md5_mismatch_declared
        );
    }
    if let Some(v) = &s.validation {
        print_validation(v);
    }
}

pub fn print_validation(v: &ValidationReport) {
    println!(
        "Validation: {} records read back, {} matched field by field, {} field mismatches, {} missing",
        v.checked,
        v.matched,
        v.mismatches.len(),
        v.missing.len()
    );
    for m in v.mismatches.iter().take(10) {
        println!(
            "  {} {} field {}: expected {:?}, found {:?}",
            m.kind, m.source_id, m.field, m.expected, m.found
        );
    }
}

pub fn print_scoping(s: &Scoping) {
    println!(
        "Destination: {} edition {:?}, concurrency cap {:?}, daily credits {:?}",
        s.destination.platform,
        s.destination.edition,
        s.destination.concurrency_cap,
        s.destination.daily_credits
    );
    println!(
        "| collection | kind | readable | records | custom fields | attachments | MB | over limit |\n|---|---|---|---:|---:|---:|---:|---:|"
    );
    for c in &s.collections {
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.1} | {} |",
            c.collection,
            c.proposed_kind.map(|k| k.as_str()).unwrap_or("-"),
            c.readable,
            c.records,
            c.custom_fields.len(),
            c.attachments,
            c.attachment_bytes as f64 / 1e6,
            c.attachments_over_limit
        );
    }
    if !s.permission_gaps.is_empty() {
        println!(
            "PERMISSION GAPS (empty field list: grant the API user access): {}",
            s.permission_gaps.join(", ")
        );
    }
    println!(
        "Estimate: {} destination calls (~{} credits, fits in one day: {}), ~{:.1} minutes",
        s.estimated_destination_calls,
        s.estimated_credits,
        s.credits_fit_in_one_day,
        s.estimated_minutes
    );
    if let (Some(spent), Some(total)) = (s.source_credits_spent, s.estimated_source_credits) {
        println!(
            "Source credits: {spent} spent by this pre-flight, ~{total} for the whole run (file downloads \
             included); the source's daily allowance also serves its live integrations"
        );
    }
}

pub fn print_map(map: &FieldMap) {
    for c in &map.collections {
        println!(
            "\n{} -> {} (confidence {:.2}: {})",
            c.collection, c.kind, c.confidence, c.reason
        );
        for f in &c.fields {
            let target = match &f.target {
                Target::Standard { field } => field.clone(),
                Target::Custom {
                    label, field_type, ..
                } => format!("custom {label:?} ({field_type:?})"),
                Target::Ignore => "(not migrated)".into(),
            };
            println!(
                "  {:<28} -> {:<36} {:.2}  {}",
                f.source, target, f.confidence, f.reason
            );
            if !f.value_map.is_empty() {
                let vm: Vec<String> = f
                    .value_map
                    .iter()
                    .map(|(a, b)| format!("{a}->{b}"))
                    .collect();
                println!("  {:<28}    values: {}", "", vm.join(", "));
            }
        }
    }
}

pub async fn print_status(job: &Job) -> anyhow::Result<()> {
    for cp in job.checkpoints.list("flow").await? {
        println!("phase {:<16} done at {}", cp.partition, cp.updated_at);
    }
    for kind in ObjectKind::ALL {
        let counts = job.crosswalk.counts(kind).await?;
        if !counts.is_empty() {
            println!("{kind:<16} {counts:?}");
        }
    }
    Ok(())
}

pub fn print_delta(d: &deskshift_core::lifecycle::DeltaReport) {
    println!(
        "Delta {}: changed in the source since the last sync: {:?}",
        d.run, d.changed
    );
    if !d.loads.is_empty() {
        println!("{}", reconciliation_table(&d.loads));
    }
    if let Some(a) = &d.attachments {
        println!("Attachments: {} uploaded, {} failed", a.uploaded, a.failed);
    }
    println!(
        "Destination writes: {}; next sync starts at {:?}",
        d.writes(),
        d.cursors
    );
}
