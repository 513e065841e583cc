//! DynamoDB and S3 implementations of the store ports, for the AWS shape of deskshift:
//!
//! - [`DynamoStore`] implements `Crosswalk`, `Checkpoints` and `AuditLog` in one DynamoDB table
//!   shared by many jobs (key design in [`dynamo`] and `KEYS.md`);
//! - [`S3Stage`] implements `Stage` under `jobs/<job>/` in an S3 bucket, with server-side
//!   encryption on every object;
//! - [`emulator`] starts moto server (or uses the endpoint in `AWS_ENDPOINT_URL`) for tests and
//!   local runs.
//!
//! Both pass the same conformance suites as the embedded stores. Clients are built from an
//! [`aws_config::SdkConfig`], so the endpoint comes from `AWS_ENDPOINT_URL` when it is set
//! (LocalStack, moto) and from the region otherwise; see [`load_sdk_config`].

pub mod dynamo;
pub mod emulator;
mod errors;
pub mod s3;

pub use dynamo::{AUDIT_BUCKET_SIZE, DynamoStore, ensure_table};
pub use s3::{S3Stage, Sse, ensure_bucket, s3_client};

use deskshift_core::{Error, Result};

/// Loads the SDK configuration from the environment (region, credentials, `AWS_ENDPOINT_URL`).
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// A DynamoDB client for `config`.
pub fn dynamodb_client(config: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(config)
}

/// Longest job id accepted: it is part of every DynamoDB partition key and S3 object key.
pub const MAX_JOB_ID_LEN: usize = 128;

/// Checks a job id: 1 to 128 characters from `A-Z a-z 0-9 . _ -`, not `.` or `..`.
///
/// The id is embedded in DynamoDB keys (where `#` separates parts) and S3 keys (where `/` does),
/// so a narrow alphabet keeps two jobs from ever sharing a key.
pub fn validate_job_id(job: &str) -> Result<()> {
    let ok_chars = job
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if job.is_empty() || job.len() > MAX_JOB_ID_LEN || !ok_chars || job == "." || job == ".." {
        return Err(Error::Config(format!(
            "job id {job:?} cannot name AWS store keys: use 1 to {MAX_JOB_ID_LEN} characters from \
             A-Z, a-z, 0-9, '.', '_' and '-' (not '.' or '..')"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids() {
        for ok in ["acme-2026", "job_1.retry", "A", &"x".repeat(MAX_JOB_ID_LEN)] {
            assert!(validate_job_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a#b",
            "a/b",
            "a b",
            "é",
            &"x".repeat(MAX_JOB_ID_LEN + 1),
        ] {
            let err = validate_job_id(bad).expect_err(bad).to_string();
            assert!(err.contains("job id"), "{err}");
        }
    }
}
