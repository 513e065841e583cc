//! The job configuration object: `config/job.json` in the job's stage (S3), the AWS counterpart of
//! the CLI's job file. Credentials are never in it: each names a Secrets Manager secret (and,
//! for a JSON secret, the key inside it).
//!
//! ```json
//! {
//!   "source": {"platform": "ivinex", "base_url": "https://acme.ivinex.example", "user": "api",
//!              "password": {"secret": "deskshift/acme", "key": "ivinex_password"},
//!              "timezone": "Europe/Berlin", "attachment_hosts": ["files.ivinex.example"]},
//!   "destination": {"platform": "zohodesk", "dc": "eu", "org_id": "123", "client_id": "1000.X",
//!                   "client_secret": {"secret": "deskshift/acme", "key": "zoho_client_secret"},
//!                   "refresh_token": {"secret": "deskshift/acme", "key": "zoho_refresh_token"}},
//!   "settings": {"load_concurrency": 8}
//! }
//! ```

use std::sync::Arc;

use deskshift_core::job::Settings;
use deskshift_core::ports::{Destination, Source, Stage};
use deskshift_core::util::Secret;
use deskshift_ivinex::{IvinexConfig, IvinexSource};
use deskshift_zohodesk::ZohoDeskConfig;
use serde::{Deserialize, Serialize};

use crate::{Result, config_error};

/// Where the job configuration object lives in the job's stage.
pub const CONFIG_KEY: &str = "config/job.json";

/// A credential in Secrets Manager: the secret's name or ARN, and the key in a JSON secret
/// (None: the whole secret string).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    pub secret: String,
    #[serde(default)]
    pub key: Option<String>,
}

impl SecretRef {
    /// Reads the credential; errors name the setting and the secret, never the value.
    pub async fn read(
        &self,
        setting: &str,
        client: &aws_sdk_secretsmanager::Client,
    ) -> Result<Secret> {
        let answer = client
            .get_secret_value()
            .secret_id(&self.secret)
            .send()
            .await
            .map_err(|e| {
                config_error(format!(
                    "{setting}: cannot read secret {} from Secrets Manager ({}); check it exists and the function's role may read it",
                    self.secret,
                    aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                ))
            })?;
        let text = answer.secret_string().ok_or_else(|| {
            config_error(format!(
                "{setting}: secret {} has no string value; store the credential as text",
                self.secret
            ))
        })?;
        let value = match &self.key {
            None => text.trim().to_string(),
            Some(key) => {
                let json: serde_json::Value = serde_json::from_str(text).map_err(|_| {
                    config_error(format!(
                        "{setting}: secret {} is not a JSON object, so it has no key {key}; drop `key` or store JSON",
                        self.secret
                    ))
                })?;
                json.get(key)
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
                    .ok_or_else(|| {
                        config_error(format!(
                            "{setting}: secret {} has no string key {key}",
                            self.secret
                        ))
                    })?
            }
        };
        if value.is_empty() {
            return Err(config_error(format!(
                "{setting}: secret {} is empty",
                self.secret
            )));
        }
        Ok(Secret::new(value))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "platform", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceConfig {
    Ivinex {
        base_url: String,
        user: String,
        password: SecretRef,
        timezone: String,
        #[serde(default)]
        attachment_hosts: Vec<String>,
        #[serde(default)]
        max_concurrency: Option<usize>,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "platform", rename_all = "snake_case", deny_unknown_fields)]
pub enum DestinationConfig {
    /// REST only on AWS: the import package is a local file set.
    Zohodesk {
        #[serde(default)]
        dc: Option<String>,
        #[serde(default)]
        api_base: Option<String>,
        #[serde(default)]
        accounts_base: Option<String>,
        org_id: String,
        client_id: String,
        client_secret: SecretRef,
        refresh_token: SecretRef,
        #[serde(default)]
        concurrency_cap: Option<usize>,
        #[serde(default)]
        default_department: Option<String>,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    pub source: SourceConfig,
    pub destination: DestinationConfig,
    #[serde(default)]
    pub settings: Settings,
}

impl JobConfig {
    pub async fn read(stage: &dyn Stage, job: &str) -> Result<JobConfig> {
        let bytes = stage.get(CONFIG_KEY).await?.ok_or_else(|| {
            config_error(format!(
                "job {job} has no configuration: upload it to {CONFIG_KEY} in the job's stage (s3://<staging bucket>/jobs/{job}/{CONFIG_KEY})"
            ))
        })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            config_error(format!(
                "job {job}: {CONFIG_KEY} is not a valid job configuration: {e}"
            ))
        })
    }

    pub async fn write(&self, stage: &dyn Stage) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(deskshift_core::Error::from)?;
        stage.put(CONFIG_KEY, bytes.into()).await?;
        Ok(())
    }

    pub async fn source(
        &self,
        secrets: &aws_sdk_secretsmanager::Client,
    ) -> Result<(Arc<dyn Source>, Option<jiff::tz::TimeZone>)> {
        match &self.source {
            SourceConfig::Ivinex {
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
                    password: password.read("source.password", secrets).await?,
                    timezone: timezone.clone(),
                    page_size: self.settings.page_size,
                    attachment_hosts: attachment_hosts.clone(),
                    max_concurrency: max_concurrency.unwrap_or(8),
                })?;
                let zone = src.timezone().clone();
                Ok((Arc::new(src), Some(zone)))
            }
        }
    }

    pub async fn destination(
        &self,
        secrets: &aws_sdk_secretsmanager::Client,
    ) -> Result<Arc<dyn Destination>> {
        match &self.destination {
            DestinationConfig::Zohodesk {
                dc,
                api_base,
                accounts_base,
                org_id,
                client_id,
                client_secret,
                refresh_token,
                concurrency_cap,
                default_department,
            } => {
                let mut cfg = ZohoDeskConfig::for_dc(dc.as_deref().unwrap_or("com"))?;
                if let Some(a) = api_base {
                    cfg.api_base = a.clone();
                }
                if let Some(a) = accounts_base {
                    cfg.accounts_base = a.clone();
                }
                cfg.org_id = org_id.clone();
                cfg.client_id = client_id.clone();
                cfg.client_secret = client_secret
                    .read("destination.client_secret", secrets)
                    .await?;
                cfg.refresh_token = refresh_token
                    .read("destination.refresh_token", secrets)
                    .await?;
                cfg.concurrency_cap = *concurrency_cap;
                cfg.default_department = default_department.clone();
                Ok(Arc::new(crate::lazy::LazyZohoDesk::new(cfg)))
            }
        }
    }
}
