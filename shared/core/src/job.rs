//! A job: its settings (the connector-independent part of the job file) and the ports it runs on.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::ports::{AuditLog, Checkpoints, Crosswalk, Destination, Source, Stage};

/// What moves: a team can migrate in phases by date range, department or status.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Selection {
    /// Inclusive bounds, UTC ISO-8601 (a date alone means its midnight).
    pub created_from: Option<String>,
    pub created_to: Option<String>,
    pub modified_from: Option<String>,
    pub modified_to: Option<String>,
    /// Destination department names to move (empty = all).
    pub departments: Vec<String>,
    /// Source status values to move (empty = all).
    pub statuses: Vec<String>,
    pub exclude_spam: bool,
    /// Tickets whose subject starts with one of these are test records.
    pub exclude_test: bool,
    pub test_prefixes: Vec<String>,
    /// Only these ticket source ids (the sample migration), with what they need.
    pub only_tickets: Vec<String>,
}

impl Default for Selection {
    fn default() -> Self {
        Selection {
            created_from: None,
            created_to: None,
            modified_from: None,
            modified_to: None,
            departments: vec![],
            statuses: vec![],
            exclude_spam: true,
            exclude_test: true,
            test_prefixes: vec!["[TEST]".into(), "TEST:".into()],
            only_tickets: vec![],
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub selection: Selection,
    /// Records loaded at once; 0 = the destination's concurrency cap (8 when it declares none).
    pub load_concurrency: usize,
    /// Files uploaded at once; 0 = the destination's concurrency cap (4 when it declares none).
    pub attachment_concurrency: usize,
    /// Source pages and files read at once (where the source allows reading ahead).
    pub source_concurrency: usize,
    /// Pages the pre-flight staged are reused by the extract when at most this old (minutes);
    /// 0 = always read again. Changes made since are picked up by the first delta.
    pub preflight_reuse_minutes: u64,
    /// Files above this many bytes are flagged for a dedicated transfer instead of uploaded.
    pub attachment_max_bytes: u64,
    pub validation_sample: usize,
    pub validation_all: bool,
    pub validation_seed: u64,
    /// Records per source page (Ivinex; Zoho Desk takes at most 100 tickets and 99 other records).
    pub page_size: u32,
    /// Stop the flow when a reconciliation gate finds unexplained differences.
    pub strict_gates: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            selection: Selection::default(),
            load_concurrency: 0,
            attachment_concurrency: 0,
            source_concurrency: 8,
            preflight_reuse_minutes: 60,
            attachment_max_bytes: 25 * 1024 * 1024,
            validation_sample: 30,
            validation_all: false,
            validation_seed: 7,
            page_size: 200,
            strict_gates: true,
        }
    }
}

impl Settings {
    /// Records loaded at once against a destination declaring `cap`.
    pub fn load_concurrency_for(&self, cap: Option<usize>) -> usize {
        match self.load_concurrency {
            0 => cap.unwrap_or(8).max(1),
            n => n,
        }
    }

    /// Files uploaded at once against a destination declaring `cap`.
    pub fn attachment_concurrency_for(&self, cap: Option<usize>) -> usize {
        match self.attachment_concurrency {
            0 => cap.unwrap_or(4).max(1),
            n => n,
        }
    }
}

/// Receives progress of long phases (the CLI draws bars; Lambda logs).
pub trait Progress: Send + Sync {
    fn start(&self, phase: &str, total: Option<u64>);
    fn advance(&self, phase: &str, n: u64);
    fn finish(&self, phase: &str, summary: &str);
}

pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: &str, _: Option<u64>) {}
    fn advance(&self, _: &str, _: u64) {}
    fn finish(&self, _: &str, _: &str) {}
}

/// Everything a phase runs over.
#[derive(Clone)]
pub struct Job {
    pub settings: Settings,
    pub source: Arc<dyn Source>,
    pub dest: Arc<dyn Destination>,
    pub crosswalk: Arc<dyn Crosswalk>,
    pub checkpoints: Arc<dyn Checkpoints>,
    pub stage: Arc<dyn Stage>,
    pub audit: Arc<dyn AuditLog>,
    pub progress: Arc<dyn Progress>,
    /// The source's timezone for zone-less stamps (None: the source speaks UTC).
    pub source_zone: Option<jiff::tz::TimeZone>,
    /// The destination's description, read once per run (each read costs API calls).
    pub dest_info: Arc<tokio::sync::Mutex<Option<crate::ports::DestinationInfo>>>,
}

impl Job {
    /// The destination's description, cached for the run.
    pub async fn describe(&self) -> crate::error::Result<crate::ports::DestinationInfo> {
        let mut cached = self.dest_info.lock().await;
        if let Some(info) = cached.as_ref() {
            return Ok(info.clone());
        }
        let info = self.dest.describe().await?;
        *cached = Some(info.clone());
        Ok(info)
    }

    /// Forgets the cached description (after the schema phase created fields).
    pub async fn forget_description(&self) {
        *self.dest_info.lock().await = None;
    }
}
