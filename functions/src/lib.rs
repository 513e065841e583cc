//! The library behind deskshift's Lambda functions. Each binary in `src/bin/` decodes its event,
//! calls one handler here (which calls the same library phase as the CLI) and encodes the result.
//!
//! - [`Clients`]: built once per cold start: the SDK configuration, the DynamoDB store, Secrets
//!   Manager and Step Functions clients; a [`Job`] per job id (connectors from the job
//!   configuration object in S3, credentials from Secrets Manager), kept while the process is warm.
//! - [`Event`] / [`Output`]: what the state machines pass (references only) and what they read
//!   (`more`, `passed`, a small `summary`).
//! - [`FunctionError`]: its `errorType` is [`deskshift_core::Error::name`], which the state machines
//!   match in Retry and Catch.
//!
//! Environment: `DESKSHIFT_TABLE` (DynamoDB table), `DESKSHIFT_BUCKET` (staging bucket),
//! `DESKSHIFT_TOKEN_TABLE` (the Zoho access-token cache shared by all function processes; without
//! it each cold start takes its own token), optional `DESKSHIFT_KMS_KEY_ID` (SSE-KMS key for
//! staged objects), plus the usual AWS variables (`AWS_ENDPOINT_URL` selects an emulator).

pub mod config;
pub mod handlers;
pub mod token_cache;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use deskshift_core::job::{Job, NoProgress};
use deskshift_store_aws::{DynamoStore, S3Stage};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Mutex;

pub use config::{JobConfig, SecretRef};
pub use deskshift_statemachine::Function;
pub use lambda_runtime::Error as LambdaError;
pub use token_cache::DynamoTokenCache;

/// The event every function receives: references only, never records or credentials.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Event {
    pub job: String,
    pub phase: String,
    pub kind: Option<deskshift_core::model::ObjectKind>,
    /// A staged page key (or `all`) for fanned-out phases.
    pub partition: Option<String>,
    /// The `.waitForTaskToken` token (approval only).
    pub token: Option<String>,
    /// Who approves the map (the approve function).
    pub by: Option<String>,
    pub include_changed: Option<bool>,
    /// The `{Error, Cause}` a Catch recorded (failure report only).
    pub error: Option<Value>,
}

/// What every function answers. `more`: run me again (a checkpoint was written); `passed`: a
/// reconciliation gate's verdict (true elsewhere).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Output {
    pub more: bool,
    pub passed: bool,
    pub summary: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_key: Option<String>,
}

impl Output {
    pub fn done(summary: Value) -> Output {
        Output {
            more: false,
            passed: true,
            summary,
            partitions: None,
            manifest_key: None,
        }
    }
}

/// A function's error: `name` becomes the Lambda `errorType` that Step Functions matches.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionError {
    pub name: String,
    pub message: String,
}

impl std::fmt::Display for FunctionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name, self.message)
    }
}

impl std::error::Error for FunctionError {}

impl From<deskshift_core::Error> for FunctionError {
    fn from(e: deskshift_core::Error) -> Self {
        FunctionError {
            name: e.name().to_string(),
            message: e.to_string(),
        }
    }
}

impl From<anyhow::Error> for FunctionError {
    fn from(e: anyhow::Error) -> Self {
        match e.downcast::<deskshift_core::Error>() {
            Ok(core) => core.into(),
            Err(other) => FunctionError {
                name: "ConfigError".into(),
                message: format!("{other:#}"),
            },
        }
    }
}

impl From<FunctionError> for lambda_runtime::Diagnostic {
    fn from(e: FunctionError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.name,
            error_message: e.message,
        }
    }
}

pub type Result<T, E = FunctionError> = std::result::Result<T, E>;

fn config_error(message: impl Into<String>) -> FunctionError {
    FunctionError {
        name: "ConfigError".into(),
        message: message.into(),
    }
}

/// Clients built once per cold start.
pub struct Clients {
    pub sdk: aws_config::SdkConfig,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub sfn: aws_sdk_sfn::Client,
    pub table: String,
    pub bucket: String,
    pub kms_key_id: Option<String>,
    /// Where Zoho access tokens are shared between processes (per client when unset).
    pub token_cache: deskshift_zohodesk::SharedTokenCache,
    jobs: Mutex<HashMap<String, Job>>,
}

impl Clients {
    /// Reads the environment and builds the clients (no network call).
    pub async fn from_env() -> Result<Clients> {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    config_error(format!(
                        "{name} is not set: the function needs it (the SAM template sets it)"
                    ))
                })
        };
        let table = var("DESKSHIFT_TABLE")?;
        let bucket = var("DESKSHIFT_BUCKET")?;
        let sdk = deskshift_store_aws::load_sdk_config().await;
        let mut clients = Clients::new(
            sdk,
            table,
            bucket,
            std::env::var("DESKSHIFT_KMS_KEY_ID")
                .ok()
                .filter(|v| !v.is_empty()),
        );
        match std::env::var(token_cache::TOKEN_TABLE_ENV) {
            Ok(t) if !t.is_empty() => clients = clients.with_token_table(&t),
            _ => tracing::warn!(
                "{} is not set: this process takes its own Zoho access token (Zoho allows 10 per 10 minutes)",
                token_cache::TOKEN_TABLE_ENV
            ),
        }
        Ok(clients)
    }

    /// Shares Zoho access tokens through the DynamoDB table `table`.
    pub fn with_token_table(mut self, table: &str) -> Clients {
        self.token_cache = deskshift_zohodesk::SharedTokenCache::new(std::sync::Arc::new(
            DynamoTokenCache::new(self.dynamodb.clone(), table),
        ));
        self
    }

    pub fn new(
        sdk: aws_config::SdkConfig,
        table: String,
        bucket: String,
        kms_key_id: Option<String>,
    ) -> Clients {
        Clients {
            dynamodb: deskshift_store_aws::dynamodb_client(&sdk),
            s3: deskshift_store_aws::s3_client(&sdk),
            secrets: aws_sdk_secretsmanager::Client::new(&sdk),
            sfn: aws_sdk_sfn::Client::new(&sdk),
            sdk,
            table,
            bucket,
            kms_key_id,
            token_cache: Default::default(),
            jobs: Mutex::new(HashMap::new()),
        }
    }

    /// The stage of `job` (S3, encrypted).
    pub fn stage(&self, job: &str) -> Result<S3Stage> {
        let stage = S3Stage::new(self.s3.clone(), &self.bucket, job)?;
        Ok(match &self.kms_key_id {
            Some(k) => stage.with_kms(Some(k.clone())),
            None => stage,
        })
    }

    /// The job's ports: built on first use in this process, then reused.
    pub async fn job(&self, job_id: &str) -> Result<Job> {
        if job_id.is_empty() {
            return Err(config_error(
                "the event has no `job`: start the state machine with {\"job\": \"<job id>\", ...}",
            ));
        }
        let mut jobs = self.jobs.lock().await;
        if let Some(job) = jobs.get(job_id) {
            return Ok(job.clone());
        }
        let stage = Arc::new(self.stage(job_id)?);
        let config = config::read(stage.as_ref(), job_id).await?;
        let store = Arc::new(DynamoStore::new(
            self.dynamodb.clone(),
            &self.table,
            job_id,
        )?);
        let opts = deskshift_jobspec::BuildOptions {
            token_cache: self.token_cache.clone(),
            lazy: true,
            ..Default::default()
        };
        let creds = config::SecretsManager(self.secrets.clone());
        let (source, zone, dest) = config.connectors(&creds, &opts).await?;
        let job = Job {
            settings: config.settings.clone(),
            source,
            dest,
            crosswalk: store.clone(),
            checkpoints: store.clone(),
            audit: store,
            stage,
            progress: Arc::new(NoProgress),
            source_zone: zone,
            dest_info: Default::default(),
        };
        jobs.insert(job_id.to_string(), job.clone());
        Ok(job)
    }
}

/// Time left for work in this invocation: the deadline less a margin for checkpointing and
/// answering (10 % of the remainder, at least 5 s).
pub fn budget(deadline: SystemTime) -> Duration {
    let left = deadline
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    let margin = (left / 10).max(Duration::from_secs(5));
    left.saturating_sub(margin)
}

/// Runs a Lambda function: logs to stderr as JSON-less text (CloudWatch takes it as is), builds
/// the clients once, then serves `handler` until the runtime stops.
pub async fn serve<F, Fut>(function: Function, handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(Arc<Clients>, Event, SystemTime) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Output>> + Send,
{
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .init();
    let clients = Arc::new(Clients::from_env().await.map_err(|e| e.to_string())?);
    let handler = Arc::new(handler);
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<Event>| {
            let clients = clients.clone();
            let handler = handler.clone();
            async move {
                let deadline = event.context.deadline();
                let job = event.payload.job.clone();
                let result = handler(clients, event.payload, deadline).await;
                if let Err(e) = &result {
                    tracing::warn!(
                        function = function.name(),
                        job,
                        error = e.name,
                        "{}",
                        e.message
                    );
                }
                result
            }
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_type_is_the_engine_error_name() {
        let e: FunctionError = deskshift_core::Error::BudgetExhausted {
            platform: "zohodesk".into(),
            message: "credits".into(),
        }
        .into();
        let d: lambda_runtime::Diagnostic = e.into();
        assert_eq!(d.error_type, deskshift_statemachine::budget_error());
        let wrapped: FunctionError = anyhow::Error::from(deskshift_core::Error::Transport {
            platform: "ivinex".into(),
            endpoint: "GET /tabs".into(),
            message: "reset".into(),
            ambiguous: false,
        })
        .into();
        assert_eq!(wrapped.name, "Transport");
        assert!(deskshift_statemachine::retried_errors().contains(&wrapped.name.as_str()));
        let other: FunctionError = anyhow::anyhow!("bad setting").into();
        assert_eq!(other.name, "ConfigError");
    }

    #[test]
    fn output_has_what_the_state_machine_selects() {
        let v = serde_json::to_value(Output::done(json!({"n": 1}))).unwrap();
        for field in ["more", "passed", "summary"] {
            assert!(v.get(field).is_some(), "{field} missing: {v}");
        }
        assert!(v.get("partitions").is_none());
        let e: Event = serde_json::from_value(json!({"job": "acme", "phase": "load-ticket", "kind": "ticket", "partition": "raw/Tickets/000001.json"})).unwrap();
        assert_eq!(e.kind, Some(deskshift_core::model::ObjectKind::Ticket));
    }

    #[test]
    fn budget_leaves_a_margin() {
        let deadline = SystemTime::now() + Duration::from_secs(900);
        let b = budget(deadline);
        assert!(
            b <= Duration::from_secs(810) && b > Duration::from_secs(800),
            "{b:?}"
        );
        assert_eq!(budget(SystemTime::now()), Duration::ZERO);
    }
}
