//! The engine's error type. Variant names are what Step Functions matches in `ErrorEquals`
//! (see [`Error::name`]); messages name the record or setting and what to do, and never carry
//! credentials (HTTP errors name the endpoint template, never the URL with its query).

use std::time::Duration;

use crate::model::ObjectKind;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is missing or wrong.
    #[error("configuration: {0}")]
    Config(String),
    /// The platform asked us to slow down and retries ran out.
    #[error(
        "{platform} throttled {endpoint} and kept throttling after {attempts} attempts: {message}"
    )]
    Throttled {
        platform: String,
        endpoint: String,
        attempts: u32,
        message: String,
        retry_after: Option<Duration>,
    },
    /// The daily API budget is spent: pause until it renews.
    #[error("{platform} daily API budget exhausted ({message}); resume after the budget renews")]
    BudgetExhausted { platform: String, message: String },
    /// The platform refused the request (4xx other than throttling), or kept failing (5xx).
    #[error("{platform} answered HTTP {status} to {endpoint}: {message}")]
    Api {
        platform: String,
        endpoint: String,
        status: u16,
        message: String,
    },
    /// The connection failed; `ambiguous` means the request may have taken effect.
    #[error("{platform}: network error on {endpoint}: {message}")]
    Transport {
        platform: String,
        endpoint: String,
        message: String,
        ambiguous: bool,
    },
    /// A record cannot be moved as it is; it is kept with its payload in the failed-records report.
    #[error("{kind} {source_id}: {message}")]
    Data {
        kind: ObjectKind,
        source_id: String,
        message: String,
    },
    /// The destination already holds another record with this unique value (e.g. an account name).
    #[error(
        "{kind} {source_id}: the destination already has a record with this {field} ({message})"
    )]
    Duplicate {
        kind: ObjectKind,
        source_id: String,
        field: String,
        message: String,
    },
    /// A URL outside the source's configured hosts (SSRF guard).
    #[error("refused to fetch {url}: {reason}")]
    Refused { url: String, reason: String },
    /// Nothing may move before the field map is approved, or the approval does not match the map.
    #[error("approval: {0}")]
    Approval(String),
    /// A reconciliation gate did not pass.
    #[error("reconciliation gate for {kind} failed: {message}")]
    Gate { kind: ObjectKind, message: String },
    #[error("store: {0}")]
    Store(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl Error {
    /// Stable error name, for Step Functions `ErrorEquals` and for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Error::Config(_) => "ConfigError",
            Error::Throttled { .. } => "Throttled",
            Error::BudgetExhausted { .. } => "BudgetExhausted",
            Error::Api { status, .. } if *status >= 500 => "PlatformUnavailable",
            Error::Api { .. } => "ApiRejected",
            Error::Transport { .. } => "Transport",
            Error::Data { .. } => "DataError",
            Error::Duplicate { .. } => "Duplicate",
            Error::Refused { .. } => "RefusedUrl",
            Error::Approval(_) => "ApprovalRequired",
            Error::Gate { .. } => "GateFailed",
            Error::Store(_) => "StoreError",
            Error::Other(_) => "Fatal",
        }
    }

    /// The same error for another caller that a shared call failed for (an `Other` keeps its
    /// text).
    pub fn copy_for_another(&self) -> Error {
        match self {
            Error::Config(m) => Error::Config(m.clone()),
            Error::Throttled {
                platform,
                endpoint,
                attempts,
                message,
                retry_after,
            } => Error::Throttled {
                platform: platform.clone(),
                endpoint: endpoint.clone(),
                attempts: *attempts,
                message: message.clone(),
                retry_after: *retry_after,
            },
            Error::BudgetExhausted { platform, message } => Error::BudgetExhausted {
                platform: platform.clone(),
                message: message.clone(),
            },
            Error::Api {
                platform,
                endpoint,
                status,
                message,
            } => Error::Api {
                platform: platform.clone(),
                endpoint: endpoint.clone(),
                status: *status,
                message: message.clone(),
            },
            Error::Transport {
                platform,
                endpoint,
                message,
                ambiguous,
            } => Error::Transport {
                platform: platform.clone(),
                endpoint: endpoint.clone(),
                message: message.clone(),
                ambiguous: *ambiguous,
            },
            Error::Data {
                kind,
                source_id,
                message,
            } => Error::Data {
                kind: *kind,
                source_id: source_id.clone(),
                message: message.clone(),
            },
            Error::Duplicate {
                kind,
                source_id,
                field,
                message,
            } => Error::Duplicate {
                kind: *kind,
                source_id: source_id.clone(),
                field: field.clone(),
                message: message.clone(),
            },
            Error::Refused { url, reason } => Error::Refused {
                url: url.clone(),
                reason: reason.clone(),
            },
            Error::Approval(m) => Error::Approval(m.clone()),
            Error::Gate { kind, message } => Error::Gate {
                kind: *kind,
                message: message.clone(),
            },
            Error::Store(m) => Error::Store(m.clone()),
            Error::Other(e) => Error::Other(anyhow::anyhow!("{e:#}")),
        }
    }

    /// Whether retrying later may succeed without a change of data or configuration.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Throttled { .. } | Error::BudgetExhausted { .. } | Error::Transport { .. }
        ) || matches!(self, Error::Api { status, .. } if *status >= 500)
    }

    pub fn data(
        kind: ObjectKind,
        source_id: impl Into<String>,
        message: impl Into<String>,
    ) -> Error {
        Error::Data {
            kind,
            source_id: source_id.into(),
            message: message.into(),
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Store(format!("sqlite: {e}"))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Store(format!("file: {e}"))
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Store(format!("json: {e}"))
    }
}
