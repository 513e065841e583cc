//! Walks [`crate::flow::FLOW`] on one machine, resuming where an earlier run stopped.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::flow::{FLOW, Phase};
use crate::job::Job;
use crate::phases::{self, Reconciliation};

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Approve the proposed map without a person (the demo only): recorded as automatic.
    pub auto_approve: Option<String>,
    /// Propose a map even if one exists (a person's edited map is otherwise kept).
    pub repropose: bool,
    /// Migrate a representative sample of this many tickets (with what they need), validated in full.
    pub sample: Option<usize>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct RunSummary {
    pub phases: Vec<String>,
    pub reconciliation: Vec<Reconciliation>,
    pub attachments: Option<phases::AttachmentsReport>,
    pub validation: Option<phases::ValidationReport>,
    pub agents: Option<phases::AgentsReport>,
}

pub async fn run_flow(job: &Job, opts: &RunOptions) -> Result<RunSummary> {
    let mut summary = RunSummary::default();
    let mut job = job.clone();
    let job = &mut job;
    for step in FLOW {
        if opts.sample.is_some() && step.phase == Phase::Load(crate::model::ObjectKind::Account) {
            choose_sample(job, opts.sample.unwrap_or(0)).await?;
        }
        let name = step.phase.name();
        let done = job
            .checkpoints
            .get("flow", &name)
            .await?
            .is_some_and(|c| c.done);
        // Loads and attachments are resumable by themselves; other finished phases are skipped.
        let rerun = matches!(
            step.phase,
            Phase::Load(_) | Phase::Attachments | Phase::Validate | Phase::Approval
        );
        if done && !rerun {
            continue;
        }
        tracing::info!(phase = %name, "phase starts");
        match step.phase {
            Phase::Preflight => {
                if !phases::preflight_is_recent(job).await? {
                    phases::preflight(job).await?;
                }
            }
            Phase::ProposeMapping => {
                if opts.repropose || phases::field_map(job).await.is_err() {
                    phases::propose_mapping(job).await?;
                }
            }
            Phase::Approval => match &opts.auto_approve {
                Some(by) if phases::approved_map(job).await.is_err() => {
                    phases::approve(job, by, true).await?;
                }
                _ => {
                    phases::approved_map(job).await.map_err(|e| match e {
                        Error::Approval(m) => Error::Approval(format!(
                            "{m}. Nothing moves before a person approves the map"
                        )),
                        other => other,
                    })?;
                }
            },
            Phase::Schema => {
                phases::schema(job).await?;
            }
            Phase::Agents => summary.agents = Some(phases::agents(job).await?),
            Phase::Extract => {
                phases::extract(job).await?;
            }
            Phase::Load(kind) => summary.reconciliation.push(phases::load(job, kind).await?),
            Phase::Attachments => summary.attachments = Some(phases::attachments(job).await?),
            Phase::Validate => summary.validation = Some(phases::validate(job).await?),
        }
        job.checkpoints
            .put(&crate::ports::Checkpoint {
                phase: "flow".into(),
                partition: name.clone(),
                cursor: None,
                done: true,
                updated_at: crate::util::now_iso(),
            })
            .await?;
        summary.phases.push(name);
    }
    job.dest.finish().await?;
    Ok(summary)
}

/// Narrows the job to a sample, chosen once and kept in the stage so a resumed sample run
/// migrates the same tickets.
async fn choose_sample(job: &mut Job, n: usize) -> Result<()> {
    let key = "sample/tickets.json";
    let ids: Vec<String> = match job.stage.get(key).await? {
        Some(b) => serde_json::from_slice(&b)?,
        None => {
            let ids = phases::pick_sample(job, n).await?;
            job.stage
                .put(key, bytes::Bytes::from(serde_json::to_vec_pretty(&ids)?))
                .await?;
            ids
        }
    };
    job.settings.selection.only_tickets = ids;
    job.settings.validation_all = true;
    Ok(())
}
