//! The TOML job file: where the source and destination are, what moves, where the job directory
//! is. Credentials are never in it: each is read from an environment variable or a file it names.
//! The source and destination sections are `deskshift_jobspec`'s, shared with the Lambda functions.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use deskshift_core::job::{Job, Progress, Settings};
use deskshift_core::util::Secret;
use deskshift_jobspec::{BuildOptions, Credentials};
use deskshift_store_embedded::{FileStage, SqliteStore};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobFile {
    /// Job directory (state.db, stage/, reports), relative to the job file.
    pub job_dir: PathBuf,
    pub source: SourceSection,
    pub destination: DestinationSection,
    #[serde(default)]
    pub settings: Settings,
}

/// A credential's location: an environment variable, or a file holding it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialRef {
    pub env: Option<String>,
    pub file: Option<PathBuf>,
    /// Held in memory only (the demo's sandbox credentials); never written out.
    #[serde(skip)]
    pub inline: Option<Secret>,
}

impl CredentialRef {
    fn read(&self, setting: &str, base: &Path) -> anyhow::Result<Secret> {
        if let Some(v) = &self.inline {
            return Ok(v.clone());
        }
        if let Some(var) = &self.env
            && let Ok(v) = std::env::var(var)
            && !v.is_empty()
        {
            return Ok(Secret::new(v));
        }
        if let Some(file) = &self.file {
            let path = base.join(file);
            let v = std::fs::read_to_string(&path).with_context(|| {
                format!("{setting}: cannot read credential file {}", path.display())
            })?;
            return Ok(Secret::new(v.trim().to_string()));
        }
        bail!(
            "{setting} is not set: export the environment variable {} or set {setting}.file to a file holding it",
            self.env.as_deref().unwrap_or("(none named)")
        )
    }
}

/// Reads credential references against the job file's directory.
struct FileCredentials<'a> {
    base: &'a Path,
}

#[async_trait::async_trait]
impl Credentials<CredentialRef> for FileCredentials<'_> {
    async fn read(&self, setting: &str, reference: &CredentialRef) -> anyhow::Result<Secret> {
        reference.read(setting, self.base)
    }
}

pub type SourceSection = deskshift_jobspec::SourceSpec<CredentialRef>;
pub type DestinationSection = deskshift_jobspec::DestinationSpec<CredentialRef>;
pub type ZohoConnection = deskshift_jobspec::ZohoConnection<CredentialRef>;

pub struct Loaded {
    pub file: JobFile,
    pub base: PathBuf,
    pub job_dir: PathBuf,
}

pub fn from_file(file: JobFile, base: PathBuf) -> Loaded {
    let job_dir = base.join(&file.job_dir);
    Loaded {
        file,
        base,
        job_dir,
    }
}

pub fn load(path: &Path) -> anyhow::Result<Loaded> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read job file {}: check the --job path",
            path.display()
        )
    })?;
    let file: JobFile = toml::from_str(&text)
        .with_context(|| format!("job file {} is not valid", path.display()))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let job_dir = base.join(&file.job_dir);
    Ok(Loaded {
        file,
        base,
        job_dir,
    })
}

impl Loaded {
    pub async fn job(&self, progress: Arc<dyn Progress>) -> anyhow::Result<Job> {
        std::fs::create_dir_all(&self.job_dir)
            .with_context(|| format!("cannot create job directory {}", self.job_dir.display()))?;
        let store = SqliteStore::open_in_job(&self.job_dir)?;
        let stage = FileStage::open_in_job(&self.job_dir)?;
        let creds = FileCredentials { base: &self.base };
        let opts = BuildOptions {
            base_dir: Some(self.base.clone()),
            job_dir: Some(self.job_dir.clone()),
            ..Default::default()
        };
        let (source, zone) = self
            .file
            .source
            .build(&self.file.settings, &creds, &opts)
            .await?;
        let dest = self.file.destination.build(&creds, &opts).await?;
        Ok(Job {
            settings: self.file.settings.clone(),
            source,
            dest,
            crosswalk: store.clone(),
            checkpoints: store.clone(),
            audit: store,
            stage,
            progress,
            source_zone: zone,
            dest_info: Default::default(),
        })
    }
}
