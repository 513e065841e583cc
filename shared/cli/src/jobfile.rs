//! The TOML job file: where the source and destination are, what moves, where the job directory
//! is. Credentials are never in it: each is read from an environment variable or a file it names.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use deskshift_core::job::{Job, Progress, Settings};
use deskshift_core::ports::Destination;
use deskshift_core::util::Secret;
use deskshift_ivinex::{IvinexConfig, IvinexSource};
use deskshift_store_embedded::{FileStage, SqliteStore};
use deskshift_zohodesk::{ZohoDesk, ZohoDeskConfig, ZohoImportPackage};
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

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "platform", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceSection {
    Ivinex {
        base_url: String,
        user: String,
        password: CredentialRef,
        timezone: String,
        #[serde(default)]
        attachment_hosts: Vec<String>,
        #[serde(default)]
        max_concurrency: Option<usize>,
    },
    Zohodesk {
        #[serde(flatten)]
        zoho: ZohoConnection,
    },
}

/// Where a Zoho Desk org is and how to log in (its secrets by reference).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ZohoConnection {
    /// Data centre (com, eu, in, com.au, jp, ...) or explicit hosts below.
    #[serde(default)]
    pub dc: Option<String>,
    #[serde(default)]
    pub api_base: Option<String>,
    #[serde(default)]
    pub accounts_base: Option<String>,
    #[serde(default)]
    pub org_id: String,
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub client_secret: CredentialRef,
    #[serde(default)]
    pub refresh_token: CredentialRef,
    #[serde(default)]
    pub concurrency_cap: Option<usize>,
}

impl ZohoConnection {
    fn config(&self, side: &str, base: &Path) -> anyhow::Result<ZohoDeskConfig> {
        let mut cfg = ZohoDeskConfig::for_dc(self.dc.as_deref().unwrap_or("com"))?;
        if let Some(a) = &self.api_base {
            cfg.api_base = a.clone();
        }
        if let Some(a) = &self.accounts_base {
            cfg.accounts_base = a.clone();
        }
        cfg.org_id = self.org_id.clone();
        cfg.client_id = self.client_id.clone();
        cfg.client_secret = self
            .client_secret
            .read(&format!("{side}.client_secret"), base)?;
        cfg.refresh_token = self
            .refresh_token
            .read(&format!("{side}.refresh_token"), base)?;
        cfg.concurrency_cap = self.concurrency_cap;
        Ok(cfg)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "platform", rename_all = "snake_case", deny_unknown_fields)]
pub enum DestinationSection {
    Zohodesk {
        /// `rest` (the API) or `import-package` (Zoho's migration CSV package in `package_dir`).
        #[serde(default = "rest")]
        mode: String,
        /// Data centre (com, eu, in, com.au, jp, ...) or explicit hosts below.
        #[serde(default)]
        dc: Option<String>,
        #[serde(default)]
        api_base: Option<String>,
        #[serde(default)]
        accounts_base: Option<String>,
        #[serde(default)]
        org_id: String,
        #[serde(default)]
        client_id: String,
        #[serde(default)]
        client_secret: CredentialRef,
        #[serde(default)]
        refresh_token: CredentialRef,
        #[serde(default)]
        concurrency_cap: Option<usize>,
        #[serde(default)]
        default_department: Option<String>,
        #[serde(default)]
        package_dir: Option<PathBuf>,
    },
    /// Jira Service Management (Cloud): Basic auth with an API token.
    Jsm {
        base_url: String,
        email: String,
        api_token: CredentialRef,
        /// Service desk (project key or name) for departments not mapped below.
        #[serde(default)]
        service_desk: Option<String>,
        /// Department name -> service desk (project key or name); by default a desk of the same name.
        #[serde(default)]
        department_desks: std::collections::BTreeMap<String, String>,
        #[serde(default)]
        request_type: Option<String>,
        /// `cascading` (one cascading select) or `labels`.
        #[serde(default)]
        category_mode: Option<deskshift_jsm::CategoryMode>,
        #[serde(default)]
        concurrency_cap: Option<usize>,
    },
}

fn rest() -> String {
    "rest".into()
}

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
        let (source, zone) = match &self.file.source {
            SourceSection::Ivinex {
                base_url,
                user,
                password,
                timezone,
                attachment_hosts,
                max_concurrency,
            } => {
                let src = IvinexSource::new(IvinexConfig {
                    base_url: base_url.clone(),
                    user: user.clone(),
                    password: password.read("source.password", &self.base)?,
                    timezone: timezone.clone(),
                    page_size: self.file.settings.page_size,
                    attachment_hosts: attachment_hosts.clone(),
                    max_concurrency: max_concurrency.unwrap_or(8),
                })?;
                let zone = src.timezone().clone();
                (
                    Arc::new(src) as Arc<dyn deskshift_core::ports::Source>,
                    Some(zone),
                )
            }
            SourceSection::Zohodesk { zoho } => {
                let cfg = deskshift_zohodesk_source::ZohoSourceConfig::new(
                    zoho.config("source", &self.base)?,
                );
                let src = deskshift_zohodesk_source::ZohoDeskSource::connect(cfg).await?;
                (
                    Arc::new(src) as Arc<dyn deskshift_core::ports::Source>,
                    None,
                )
            }
        };

        let dest: Arc<dyn Destination> = match &self.file.destination {
            DestinationSection::Zohodesk {
                mode,
                dc,
                api_base,
                accounts_base,
                org_id,
                client_id,
                client_secret,
                refresh_token,
                concurrency_cap,
                default_department,
                package_dir,
            } => match mode.as_str() {
                "rest" => {
                    let mut cfg = match dc {
                        Some(dc) => ZohoDeskConfig::for_dc(dc)?,
                        None => ZohoDeskConfig::for_dc("com")?,
                    };
                    if let Some(a) = api_base {
                        cfg.api_base = a.clone();
                    }
                    if let Some(a) = accounts_base {
                        cfg.accounts_base = a.clone();
                    }
                    cfg.org_id = org_id.clone();
                    cfg.client_id = client_id.clone();
                    cfg.client_secret = client_secret
                        .read("destination.client_secret", &self.base)?
                        .expose()
                        .into();
                    cfg.refresh_token = refresh_token
                        .read("destination.refresh_token", &self.base)?
                        .expose()
                        .into();
                    cfg.concurrency_cap = *concurrency_cap;
                    cfg.default_department = default_department.clone();
                    Arc::new(ZohoDesk::connect(cfg).await?)
                }
                "import-package" => {
                    let dir = package_dir
                        .clone()
                        .map(|d| self.base.join(d))
                        .unwrap_or_else(|| self.job_dir.join("zoho-import-package"));
                    Arc::new(ZohoImportPackage::open(dir)?)
                }
                other => bail!("destination.mode = {other:?}: use \"rest\" or \"import-package\""),
            },
            DestinationSection::Jsm {
                base_url,
                email,
                api_token,
                service_desk,
                department_desks,
                request_type,
                category_mode,
                concurrency_cap,
            } => {
                let mut cfg = deskshift_jsm::JsmConfig {
                    base_url: base_url.clone(),
                    email: email.clone(),
                    api_token: api_token.read("destination.api_token", &self.base)?,
                    service_desk: service_desk.clone(),
                    department_desks: department_desks.clone(),
                    request_type: request_type.clone(),
                    ..Default::default()
                };
                if let Some(m) = category_mode {
                    cfg.category_mode = m.clone();
                }
                if let Some(c) = concurrency_cap {
                    cfg.concurrency_cap = *c;
                }
                Arc::new(deskshift_jsm::Jsm::new(cfg)?)
            }
        };
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
