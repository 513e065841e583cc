//! The job configuration object: `config/job.json` in the job's stage (S3), the AWS counterpart of
//! the CLI's job file and of the same type ([`deskshift_jobspec::JobSpec`]), built by the same
//! builder. Credentials are never in it: each names a Secrets Manager secret (and,
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

use deskshift_core::ports::Stage;
use deskshift_core::util::Secret;
use deskshift_jobspec::{Credentials, DestinationSpec, JobSpec, SourceSpec};
use serde::{Deserialize, Serialize};

use crate::{Result, config_error};

/// Where the job configuration object lives in the job's stage.
pub const CONFIG_KEY: &str = "config/job.json";

/// A credential in Secrets Manager: the secret's name or ARN, and the key in a JSON secret
/// (None: the whole secret string).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
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
        if self.secret.is_empty() {
            return Err(config_error(format!(
                "{setting} is not set: name the Secrets Manager secret holding it ({{\"secret\": \"<name or ARN>\", \"key\": \"<key in a JSON secret>\"}})"
            )));
        }
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

/// Reads [`SecretRef`]s from Secrets Manager.
pub struct SecretsManager(pub aws_sdk_secretsmanager::Client);

#[async_trait::async_trait]
impl Credentials<SecretRef> for SecretsManager {
    async fn read(&self, setting: &str, reference: &SecretRef) -> anyhow::Result<Secret> {
        reference
            .read(setting, &self.0)
            .await
            .map_err(|e| anyhow::anyhow!(e.message))
    }
}

/// The job configuration: the same specification as the CLI's job file, credentials in
/// Secrets Manager.
pub type JobConfig = JobSpec<SecretRef>;
pub type SourceConfig = SourceSpec<SecretRef>;
pub type DestinationConfig = DestinationSpec<SecretRef>;

/// Reads the job configuration from the job's stage.
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

/// Writes the job configuration into the job's stage.
pub async fn write(config: &JobConfig, stage: &dyn Stage) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(config).map_err(deskshift_core::Error::from)?;
    stage.put(CONFIG_KEY, bytes.into()).await?;
    Ok(())
}
