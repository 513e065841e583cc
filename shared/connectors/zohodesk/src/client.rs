//! The authenticated Zoho Desk HTTP client: OAuth refresh-token grant with a cached access token,
//! `orgId` on every call, one refresh-and-retry on `INVALID_OAUTH`, credit tracking, and error
//! mapping that never carries tokens or URLs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use deskshift_core::http::{Answer, ApiClient, BudgetDetector, HttpPolicy, snippet};
use deskshift_core::ports::Spend;
use deskshift_core::{Error, Result};
use reqwest::Method;
use serde_json::Value;

use crate::config::{Secret, ZohoDeskConfig};

pub(crate) const PLATFORM: &str = "zohodesk";
const NO_VALUE: u64 = u64::MAX;

/// What a request carries.
#[derive(Clone, Debug)]
pub(crate) enum Payload {
    None,
    Json(Value),
    /// A multipart upload in the field `file`.
    File {
        name: String,
        mime: String,
        bytes: Bytes,
    },
}

struct CachedToken {
    token: Secret,
    refresh_at: Instant,
}

pub(crate) struct ZohoClient {
    cfg: ZohoDeskConfig,
    api: ApiClient,
    oauth: ApiClient,
    token: tokio::sync::Mutex<Option<CachedToken>>,
    credits_remaining: AtomicU64,
    refreshes: AtomicU64,
}

/// A 429 whose `errorCode` is `THRESHOLD_EXCEEDED` means the daily credits are spent, not a burst.
fn budget_detector() -> BudgetDetector {
    Arc::new(|_headers, body| error_code(body).as_deref() == Some("THRESHOLD_EXCEEDED"))
}

pub(crate) fn error_code(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Value>(body)
        .ok()?
        .get("errorCode")?
        .as_str()
        .map(str::to_string)
}

/// `errorCode: message` plus Zoho's per-field errors (`/contactId invalid`), for error messages.
pub(crate) fn describe_error_body(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return snippet(body);
    };
    let code = v.get("errorCode").and_then(Value::as_str).unwrap_or("");
    let message = v.get("message").and_then(Value::as_str).unwrap_or("");
    let mut out = match (code.is_empty(), message.is_empty()) {
        (false, false) => format!("{code}: {message}"),
        (false, true) => code.to_string(),
        (true, false) => message.to_string(),
        (true, true) => snippet(body),
    };
    if let Some(errors) = v.get("errors").and_then(Value::as_array) {
        let fields: Vec<String> = errors
            .iter()
            .map(|e| {
                let field = e.get("fieldName").and_then(Value::as_str).unwrap_or("?");
                let kind = e
                    .get("errorType")
                    .and_then(Value::as_str)
                    .unwrap_or("invalid");
                match e.get("errorMessage").and_then(Value::as_str) {
                    Some(m) if !m.is_empty() => format!("{field} {kind} ({m})"),
                    _ => format!("{field} {kind}"),
                }
            })
            .collect();
        if !fields.is_empty() {
            out.push_str(&format!("; fields: {}", fields.join(", ")));
        }
    }
    out
}

impl ZohoClient {
    pub(crate) fn new(cfg: ZohoDeskConfig, concurrency_cap: usize) -> Result<ZohoClient> {
        cfg.validate()?;
        let cap = concurrency_cap.max(1);
        let policy = HttpPolicy {
            max_attempts: cfg.retry.max_attempts.max(1),
            base_delay: Duration::from_millis(cfg.retry.base_delay_ms),
            max_delay: Duration::from_millis(cfg.retry.max_delay_ms.max(cfg.retry.base_delay_ms)),
            max_concurrency: cap,
            initial_concurrency: cap.div_ceil(2),
            timeout: Duration::from_secs(cfg.retry.timeout_secs.max(1)),
        };
        let oauth_policy = HttpPolicy {
            max_concurrency: 1,
            initial_concurrency: 1,
            ..policy.clone()
        };
        Ok(ZohoClient {
            api: ApiClient::new(PLATFORM, policy)?.with_budget_detector(budget_detector()),
            oauth: ApiClient::new(PLATFORM, oauth_policy)?,
            cfg,
            token: tokio::sync::Mutex::new(None),
            credits_remaining: AtomicU64::new(NO_VALUE),
            refreshes: AtomicU64::new(0),
        })
    }

    /// The same client with another concurrency cap, keeping the access token already obtained.
    pub(crate) fn rebuild(self, concurrency_cap: usize) -> Result<ZohoClient> {
        let next = ZohoClient::new(self.cfg.clone(), concurrency_cap)?;
        *next
            .token
            .try_lock()
            .expect("a new client's token slot is free") = self.token.into_inner();
        next.refreshes
            .store(self.refreshes.load(Ordering::Relaxed), Ordering::Relaxed);
        next.credits_remaining.store(
            self.credits_remaining.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        Ok(next)
    }

    pub(crate) fn config(&self) -> &ZohoDeskConfig {
        &self.cfg
    }

    pub(crate) fn concurrency_cap(&self) -> usize {
        self.api.policy.max_concurrency
    }

    /// Credits as the last answer's `X-API-CREDITS-REMAINING` told, if the portal sends it.
    pub(crate) fn credits_remaining(&self) -> Option<u64> {
        match self.credits_remaining.load(Ordering::Relaxed) {
            NO_VALUE => None,
            v => Some(v),
        }
    }

    /// Access tokens obtained so far (each one counts against Zoho's 10 per 10 minutes).
    pub(crate) fn token_refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    /// Calls and credits: one credit per API call that was not throttled (Zoho charges per call).
    pub(crate) fn spend(&self) -> Spend {
        let api = self.api.spend();
        let oauth = self.oauth.spend();
        let mut out = deskshift_core::http::merge_spend(&[api.clone(), oauth]);
        out.credits = api.calls.saturating_sub(api.throttled) + api.credits;
        out
    }

    /// A valid access token: the cached one, or a fresh one (one refresh at a time).
    async fn access_token(&self) -> Result<Secret> {
        let mut slot = self.token.lock().await;
        if let Some(t) = slot.as_ref()
            && Instant::now() < t.refresh_at
        {
            return Ok(t.token.clone());
        }
        let (token, lifetime) = self.refresh().await?;
        // Refresh ~5 minutes early; short-lived tokens keep at least half their life.
        let margin = Duration::from_secs(300).min(lifetime / 2);
        *slot = Some(CachedToken {
            token: token.clone(),
            refresh_at: Instant::now() + lifetime - margin,
        });
        Ok(token)
    }

    /// Drops the cached token if it is still `stale` (a concurrent caller may have refreshed already).
    async fn invalidate(&self, stale: &Secret) {
        let mut slot = self.token.lock().await;
        if slot.as_ref().is_some_and(|t| &t.token == stale) {
            *slot = None;
        }
    }

    async fn refresh(&self) -> Result<(Secret, Duration)> {
        let url = format!(
            "{}/oauth/v2/token",
            self.cfg.accounts_base.trim_end_matches('/')
        );
        // Form body rather than query string, so no credential ever sits in a URL.
        let form = [
            ("grant_type", "refresh_token".to_string()),
            ("client_id", self.cfg.client_id.clone()),
            ("client_secret", self.cfg.client_secret.expose().to_string()),
            ("refresh_token", self.cfg.refresh_token.expose().to_string()),
        ];
        let answer = self
            .oauth
            .send("POST /oauth/v2/token", true, |http| {
                http.post(&url).form(&form)
            })
            .await?;
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        if let Some(token) = body
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            let secs = match body.get("expires_in") {
                Some(Value::Number(n)) => n.as_u64(),
                Some(Value::String(s)) => s.parse().ok(),
                _ => None,
            }
            .unwrap_or(3600);
            tracing::debug!(expires_in = secs, "zoho access token refreshed");
            return Ok((Secret::new(token), Duration::from_secs(secs.max(1))));
        }
        let reason = body
            .get("error")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("HTTP {}", answer.status.as_u16()));
        if reason.eq_ignore_ascii_case("Access Denied") {
            return Err(Error::Throttled {
                platform: PLATFORM.into(),
                endpoint: "POST /oauth/v2/token".into(),
                attempts: 1,
                message: "Zoho allows 10 access tokens per refresh token in 10 minutes; wait for the window to pass"
                    .into(),
                retry_after: Some(Duration::from_secs(600)),
            });
        }
        Err(Error::Config(format!(
            "Zoho OAuth refused the refresh-token grant ({reason}); check client_id, client_secret and \
             refresh_token, and that accounts_base is the data centre of the Zoho account"
        )))
    }

    /// Sends one API call (`path` under `/api/v1`), refreshing the token once on `INVALID_OAUTH`.
    /// Returns every answer the retry layer did not swallow, whatever its status.
    pub(crate) async fn call(
        &self,
        method: Method,
        endpoint: &str,
        path: &str,
        query: &[(&str, String)],
        payload: &Payload,
        idempotent: bool,
    ) -> Result<Answer> {
        let url = format!("{}/api/v1{}", self.cfg.api_base.trim_end_matches('/'), path);
        let mut refreshed = false;
        loop {
            let token = self.access_token().await?;
            let auth = format!("Zoho-oauthtoken {}", token.expose());
            let answer = self
                .api
                .send(endpoint, idempotent, |http| {
                    let mut rb = http
                        .request(method.clone(), &url)
                        .header(reqwest::header::AUTHORIZATION, &auth)
                        .header("orgId", &self.cfg.org_id);
                    if !query.is_empty() {
                        rb = rb.query(query);
                    }
                    match payload {
                        Payload::None => rb,
                        Payload::Json(v) => rb.json(v),
                        Payload::File { name, mime, bytes } => {
                            let part = reqwest::multipart::Part::stream_with_length(
                                bytes.clone(),
                                bytes.len() as u64,
                            )
                            .file_name(name.clone());
                            let part = part.mime_str(mime).unwrap_or_else(|_| {
                                reqwest::multipart::Part::stream_with_length(
                                    bytes.clone(),
                                    bytes.len() as u64,
                                )
                                .file_name(name.clone())
                            });
                            rb.multipart(reqwest::multipart::Form::new().part("file", part))
                        }
                    }
                })
                .await?;
            if let Some(remaining) = answer
                .headers
                .get("x-api-credits-remaining")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
            {
                self.credits_remaining.store(remaining, Ordering::Relaxed);
            }
            if answer.status == reqwest::StatusCode::UNAUTHORIZED
                && !refreshed
                && matches!(
                    error_code(&answer.body).as_deref(),
                    Some("INVALID_OAUTH") | None
                )
            {
                refreshed = true;
                tracing::debug!(
                    endpoint,
                    "zoho answered INVALID_OAUTH; refreshing the access token once"
                );
                self.invalidate(&token).await;
                continue;
            }
            return Ok(answer);
        }
    }

    /// The answer's JSON if it is a success (`Null` for 204 No Content), else the mapped error.
    pub(crate) fn json(&self, endpoint: &str, answer: &Answer) -> Result<Value> {
        if answer.status.is_success() {
            if answer.status == reqwest::StatusCode::NO_CONTENT
                || answer.body.iter().all(u8::is_ascii_whitespace)
            {
                return Ok(Value::Null);
            }
            return answer.json::<Value>(PLATFORM, endpoint);
        }
        Err(api_error(endpoint, answer))
    }

    pub(crate) async fn get(
        &self,
        endpoint: &str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Value> {
        let answer = self
            .call(Method::GET, endpoint, path, query, &Payload::None, true)
            .await?;
        self.json(endpoint, &answer)
    }

    /// Items of a list answer: `data` (or another key), empty on 204.
    pub(crate) async fn list(
        &self,
        endpoint: &str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<Value>> {
        let v = self.get(endpoint, path, query).await?;
        Ok(list_items(v))
    }

    /// Pages through a list with `from`/`limit` until a short page; `from` starts at `first`.
    pub(crate) async fn list_all(
        &self,
        endpoint: &str,
        path: &str,
        query: &[(&str, String)],
        limit: usize,
        mut visit: impl FnMut(Vec<Value>) -> bool,
    ) -> Result<()> {
        let mut from = 0usize;
        loop {
            let mut q: Vec<(&str, String)> = query.to_vec();
            q.push(("from", from.to_string()));
            q.push(("limit", limit.to_string()));
            let items = self.list(endpoint, path, &q).await?;
            let n = items.len();
            if n == 0 || !visit(items) || n < limit {
                return Ok(());
            }
            from += n;
        }
    }
}

pub(crate) fn list_items(v: Value) -> Vec<Value> {
    match v {
        Value::Null => Vec::new(),
        Value::Array(a) => a,
        Value::Object(mut o) => {
            for key in ["data", "teams", "members"] {
                if let Some(Value::Array(a)) = o.remove(key) {
                    return a;
                }
            }
            Vec::new()
        }
        _ => Vec::new(),
    }
}

/// An error for a non-success answer, naming the endpoint template only.
pub(crate) fn api_error(endpoint: &str, answer: &Answer) -> Error {
    let status = answer.status.as_u16();
    let message = describe_error_body(&answer.body);
    if status == 401 {
        return Error::Config(format!(
            "Zoho Desk refused the credentials on {endpoint} ({message}); check org_id, the OAuth scopes \
             (Desk.tickets.ALL Desk.contacts.ALL Desk.basic.ALL Desk.settings.ALL Desk.search.READ Desk.tasks.ALL) \
             and that api_base is the account's data centre"
        ));
    }
    Error::Api {
        platform: PLATFORM.into(),
        endpoint: endpoint.to_string(),
        status,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_errors_are_named() {
        let body = br#"{"errorCode":"INVALID_DATA","message":"bad","errors":[{"fieldName":"/contactId","errorType":"invalid"}]}"#;
        assert_eq!(
            describe_error_body(body),
            "INVALID_DATA: bad; fields: /contactId invalid"
        );
        assert_eq!(
            error_code(br#"{"errorCode":"THRESHOLD_EXCEEDED"}"#).as_deref(),
            Some("THRESHOLD_EXCEEDED")
        );
    }

    #[test]
    fn list_items_reads_data_and_empty_answers() {
        assert!(list_items(Value::Null).is_empty());
        assert_eq!(list_items(serde_json::json!({"data":[1,2]})).len(), 2);
        assert_eq!(list_items(serde_json::json!({"teams":[1]})).len(), 1);
    }
}
