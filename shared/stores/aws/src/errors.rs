//! Turns AWS SDK failures into the engine's errors: throttling stays `Throttled` and network
//! failures stay `Transport` (so Step Functions can retry them), everything else is a
//! `Store` error that names the table or bucket and says what to do.

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use deskshift_core::Error;

/// Codes AWS answers when a request rate is too high (DynamoDB and S3).
const THROTTLING_CODES: [&str; 6] = [
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "Throttling",
    "SlowDown",
    "TooManyRequestsException",
];

/// Attempts the SDK's standard retry strategy makes before an error reaches us.
pub(crate) const SDK_ATTEMPTS: u32 = 3;

/// `service` is "DynamoDB" or "S3"; `what` says which operation on which resource, e.g.
/// "PutItem on table deskshift (crosswalk ticket T-1)".
pub(crate) fn sdk_error<E, R>(service: &str, what: &str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let detail = DisplayErrorContext(&err).to_string();
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Error::Transport {
                platform: service.to_string(),
                endpoint: what.to_string(),
                message: format!(
                    "{detail}; check the network path to {service} (or AWS_ENDPOINT_URL), then \
                     resume the job"
                ),
                // The request may have reached the service before the answer was lost.
                ambiguous: !matches!(err, SdkError::DispatchFailure(ref d) if d.is_user()),
            }
        }
        SdkError::ServiceError(_) => {
            let code = err.code().unwrap_or("UnknownError");
            let message = err.message().unwrap_or("no message").to_string();
            if THROTTLING_CODES.contains(&code) {
                return Error::Throttled {
                    platform: service.to_string(),
                    endpoint: what.to_string(),
                    attempts: SDK_ATTEMPTS,
                    message: format!("{code}: {message}"),
                    retry_after: None,
                };
            }
            if code.starts_with("InternalServerError")
                || code == "InternalError"
                || code == "ServiceUnavailable"
            {
                return Error::Transport {
                    platform: service.to_string(),
                    endpoint: what.to_string(),
                    message: format!("{code}: {message}; resume the job to retry"),
                    ambiguous: true,
                };
            }
            Error::Store(format!(
                "{service} {what} failed: {code}: {message}; {}",
                advice(service, code)
            ))
        }
        _ => Error::Store(format!(
            "{service} {what} could not be sent: {detail}; check the AWS region and endpoint \
             settings"
        )),
    }
}

fn advice(service: &str, code: &str) -> &'static str {
    match code {
        "ResourceNotFoundException" => {
            "the table does not exist in this region (or endpoint): deploy the stack, or call \
             ensure_table for a local run, and check AWS_REGION and the table name"
        }
        "NoSuchBucket" => {
            "the bucket does not exist: deploy the stack, or call ensure_bucket for a local run, \
             and check the bucket name"
        }
        "AccessDenied" | "AccessDeniedException" => {
            "the credentials in use lack this permission: grant it to the function's role (see \
             the SAM template) or use other credentials"
        }
        "UnrecognizedClientException"
        | "InvalidAccessKeyId"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "ExpiredTokenException" => {
            "AWS refused the credentials: check AWS_PROFILE / AWS_ACCESS_KEY_ID or the role, and \
             refresh expired session credentials"
        }
        "ValidationException" => {
            "the request did not fit the table: check that the table has the key schema \
             pk (S) / sk (S) that KEYS.md describes"
        }
        "KMS.NotFoundException" | "KMSNotFoundException" | "KMS.DisabledException" => {
            "the KMS key for server-side encryption is missing or disabled: check the key id"
        }
        _ if service == "S3" => "check the bucket name, its region and the role's S3 permissions",
        _ => "check the table name, its region and the role's DynamoDB permissions",
    }
}

/// A request the SDK refused to build (a required field missing): a bug here, not a setting.
pub(crate) fn build_error(what: &str, err: aws_sdk_dynamodb::error::BuildError) -> Error {
    Error::Store(format!(
        "could not build the DynamoDB request for {what}: {err}; this is a deskshift bug, please \
         report it"
    ))
}
