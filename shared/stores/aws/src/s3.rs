//! `S3Stage`: staged payloads, attachment binaries and reports of one job as S3 objects under
//! `jobs/<job>/`, each written with server-side encryption.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, ServerSideEncryption,
};
use bytes::Bytes;
use deskshift_core::ports::Stage;
use deskshift_core::{Error, Result};

use crate::errors::sdk_error;

/// Same reserved prefix as the file stage, so a key valid on one stage is valid on the other.
use deskshift_core::ports::stage_key::{key_error, validate_key, validate_prefix};
/// S3's limit on object key length, in UTF-8 bytes.
const MAX_KEY_BYTES: usize = 1024;
const SERVICE: &str = "S3";

/// Server-side encryption applied to every object the stage writes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Sse {
    /// SSE-S3 (`AES256`), keys managed by S3.
    #[default]
    Aes256,
    /// SSE-KMS (`aws:kms`) with this key id or ARN, or the account's `aws/s3` key when None.
    Kms { key_id: Option<String> },
}

/// An S3 client for `config`, with path-style addressing when an endpoint override is set
/// (emulators serve every bucket on one host).
pub fn s3_client(config: &aws_config::SdkConfig) -> Client {
    let overridden = config.endpoint_url().is_some()
        || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some_and(|v| !v.is_empty());
    let s3_config = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(overridden)
        .build();
    Client::from_conf(s3_config)
}

/// A [`Stage`] over S3: object `jobs/<job>/<key>` in `bucket`. Keys follow the file stage's
/// rules (relative, `/`-separated, no `..`, `.` or empty segments, no backslash), so the phases
/// behave the same on both. Cloning is cheap; clones share the client.
#[derive(Clone)]
pub struct S3Stage {
    client: Client,
    bucket: Arc<str>,
    job: Arc<str>,
    /// `jobs/<job>/`
    root: Arc<str>,
    sse: Sse,
}

impl std::fmt::Debug for S3Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Stage")
            .field("bucket", &self.bucket)
            .field("root", &self.root)
            .field("sse", &self.sse)
            .finish_non_exhaustive()
    }
}

impl S3Stage {
    /// A stage for `job` in `bucket`, encrypting with AES256; fails if the job id cannot be
    /// part of a key. Build the client with [`s3_client`] so emulators get path-style URLs.
    pub fn new(client: Client, bucket: impl Into<String>, job: impl Into<String>) -> Result<Self> {
        let (bucket, job) = (bucket.into(), job.into());
        crate::validate_job_id(&job)?;
        if bucket.is_empty() {
            return Err(Error::Config(
                "the S3 bucket name is empty: set it to the staging bucket the stack created"
                    .into(),
            ));
        }
        Ok(S3Stage {
            client,
            root: format!("jobs/{job}/").into(),
            bucket: bucket.into(),
            job: job.into(),
            sse: Sse::Aes256,
        })
    }

    /// A stage whose client is configured from the environment (see [`crate::load_sdk_config`]).
    pub async fn from_env(bucket: impl Into<String>, job: impl Into<String>) -> Result<Self> {
        let config = crate::load_sdk_config().await;
        S3Stage::new(s3_client(&config), bucket, job)
    }

    /// Encrypts with SSE-KMS instead (None: the account's default `aws/s3` key).
    pub fn with_kms(mut self, key_id: Option<String>) -> Self {
        self.sse = Sse::Kms { key_id };
        self
    }

    pub fn with_sse(mut self, sse: Sse) -> Self {
        self.sse = sse;
        self
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn job(&self) -> &str {
        &self.job
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The S3 object key a stage key is stored under; fails for keys the stage refuses.
    pub fn object_key(&self, key: &str) -> Result<String> {
        validate_key(key)?;
        let full = format!("{}{key}", self.root);
        if full.len() > MAX_KEY_BYTES {
            return Err(key_error(
                key,
                &format!(
                    "with the prefix {} it is over S3's {MAX_KEY_BYTES}-byte limit",
                    self.root
                ),
            ));
        }
        Ok(full)
    }

    fn err<E, R>(&self, op: &str, key: &str, e: SdkError<E, R>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        let what = format!("{op} of s3://{}/{}{key}", self.bucket, self.root);
        sdk_error(SERVICE, &what, e)
    }
}

#[async_trait]
impl Stage for S3Stage {
    async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        let object_key = self.object_key(key)?;
        let mut request = self
            .client
            .put_object()
            .bucket(&*self.bucket)
            .key(object_key)
            .body(ByteStream::from(bytes));
        request = match &self.sse {
            Sse::Aes256 => request.server_side_encryption(ServerSideEncryption::Aes256),
            Sse::Kms { key_id } => request
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .set_ssekms_key_id(key_id.clone()),
        };
        request
            .send()
            .await
            .map_err(|e| self.err("PutObject", key, e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let object_key = self.object_key(key)?;
        let result = self
            .client
            .get_object()
            .bucket(&*self.bucket)
            .key(object_key)
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => {
                let error = self.err("GetObject", key, e);
                return Err(match error {
                    // Without s3:ListBucket, S3 answers a missing key with 403 instead of 404.
                    Error::Store(m) if m.contains("AccessDenied") => Error::Store(format!(
                        "{m} (S3 also answers AccessDenied for a missing key when the role \
                         lacks s3:ListBucket on the bucket: grant it)"
                    )),
                    other => other,
                });
            }
        };
        let body = out.body.collect().await.map_err(|e| Error::Transport {
            platform: SERVICE.into(),
            endpoint: format!("GetObject of s3://{}/{}{key}", self.bucket, self.root),
            message: format!("the object body was cut off: {e}; resume the job to retry"),
            ambiguous: false,
        })?;
        Ok(Some(body.into_bytes()))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        validate_prefix(prefix)?;
        let full_prefix = format!("{}{prefix}", self.root);
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&*self.bucket)
                .prefix(&full_prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| self.err("ListObjectsV2", prefix, e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key()?.strip_prefix(&*self.root))
                    .map(str::to_string),
            );
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_string()),
                _ => break,
            }
        }
        // S3 lists in UTF-8 byte order already; sorting keeps emulators that differ honest.
        keys.sort_unstable();
        keys.dedup();
        Ok(keys)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let object_key = self.object_key(key)?;
        self.client
            .delete_object()
            .bucket(&*self.bucket)
            .key(object_key)
            .send()
            .await
            .map_err(|e| self.err("DeleteObject", key, e))?;
        Ok(())
    }
}

/// Creates `bucket` in the client's region if it does not exist yet. For tests and local runs:
/// in production the SAM template creates it (with default encryption, public access blocked
/// and a lifecycle rule).
///
/// Fails with `Error::Config` if the name belongs to another account.
pub async fn ensure_bucket(client: &Client, bucket: &str) -> Result<()> {
    let region = client.config().region().map(|r| r.as_ref().to_string());
    let mut request = client.create_bucket().bucket(bucket);
    // us-east-1 is the one region that refuses an explicit location constraint.
    if let Some(region) = region.filter(|r| r != "us-east-1") {
        request = request.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region.as_str()))
                .build(),
        );
    }
    match request.send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_bucket_already_owned_by_you()) =>
        {
            Ok(())
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_bucket_already_exists()) =>
        {
            Err(Error::Config(format!(
                "the S3 bucket name {bucket} is taken by another account: choose another name"
            )))
        }
        Err(e) => Err(sdk_error(SERVICE, &format!("CreateBucket {bucket}"), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_rules_match_the_file_stage() {
        for ok in ["a", "a/b", "attachments/T-1/a 1 ü.bin", "a..b", ".hidden"] {
            validate_key(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "",
            "../x",
            "a/../b",
            "/etc/passwd",
            "a\\b",
            "a//b",
            "a/./b",
            "a/",
            ".deskshift-tmp-1",
        ] {
            let err = validate_key(bad).expect_err(bad).to_string();
            assert!(err.contains(&format!("'{bad}'")), "{err}");
        }
        for ok in ["", "a/", "tickets", "reports/2"] {
            validate_prefix(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in ["../", "/a", "a/../"] {
            assert!(validate_prefix(bad).is_err(), "{bad}");
        }
    }
}
