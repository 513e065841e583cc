//! The authenticated Zoho Desk HTTP client, shared by the destination and the source connector:
//! OAuth refresh-token grant with the access token kept in a [`TokenCache`] (per client by
//! default; shared across processes when the configuration carries one), `orgId` on every call,
//! one refresh-and-retry on `INVALID_OAUTH`, credit tracking, and error mapping that never carries
//! tokens or URLs.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use deskshift_core::http::{Answer, ApiClient, BudgetDetector, HttpPolicy, snippet};
use deskshift_core::ports::Spend;
use deskshift_core::{Error, Result};
use reqwest::{Method, Url};
use serde_json::Value;

use crate::config::{Secret, ZohoDeskConfig};

pub const PLATFORM: &str = "zohodesk";
const TOKEN_ENDPOINT: &str = "POST /oauth/v2/token";
const NO_VALUE: u64 = u64::MAX;
/// How long one process may hold the refresh lease before another may take it over.
pub const REFRESH_LEASE: Duration = Duration::from_secs(30);
/// How often a process waiting on another's refresh reads the cache again.
const LEASE_POLL: Duration = Duration::from_millis(200);

/// What a request carries.
#[derive(Clone, Debug)]
pub enum Payload {
    None,
    Json(Value),
    /// A multipart upload in the field `file`.
    File {
        name: String,
        mime: String,
        bytes: Bytes,
    },
}

/// An access token with the time to stop using it (`refresh_at`, a few minutes before Zoho's
/// expiry) and Zoho's expiry itself.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredToken {
    pub token: Secret,
    pub refresh_at: SystemTime,
    pub expires_at: SystemTime,
}

impl StoredToken {
    /// A token Zoho granted for `lifetime`: used until ~5 minutes before expiry; short-lived
    /// tokens keep at least half their life.
    pub fn granted(token: Secret, lifetime: Duration) -> StoredToken {
        let now = SystemTime::now();
        let margin = Duration::from_secs(300).min(lifetime / 2);
        StoredToken {
            token,
            refresh_at: now + lifetime - margin,
            expires_at: now + lifetime,
        }
    }

    pub fn usable(&self) -> bool {
        SystemTime::now() < self.refresh_at
    }
}

/// Where access tokens live between calls, keyed by [`token_key`] (one key per refresh token).
/// Zoho grants 10 access tokens per refresh token in 10 minutes, so processes that share a refresh
/// token (Lambda cold starts) share one token through an implementation of this trait; the lease
/// lets exactly one of them refresh while the others wait and read again.
#[async_trait]
pub trait TokenCache: Send + Sync {
    /// The stored token, if any (usable or not).
    async fn get(&self, key: &str) -> Result<Option<StoredToken>>;
    /// Takes the refresh lease for `ttl` unless another holder's lease is still running.
    async fn lease(&self, key: &str, holder: &str, ttl: Duration) -> Result<bool>;
    /// Stores a new token and ends `holder`'s lease.
    async fn put(&self, key: &str, holder: &str, token: &StoredToken) -> Result<()>;
    /// Ends `holder`'s lease without a token (the refresh failed).
    async fn release(&self, key: &str, holder: &str) -> Result<()>;
    /// Drops the stored token if it is still `stale` (Zoho refused it; a newer one stays).
    async fn invalidate(&self, key: &str, stale: &Secret) -> Result<()>;
}

/// The cache key of a connection: a digest of the accounts host, client id and refresh token
/// (never the token itself).
pub fn token_key(cfg: &ZohoDeskConfig) -> String {
    let material = format!(
        "{}\n{}\n{}",
        cfg.accounts_base.trim_end_matches('/'),
        cfg.client_id,
        cfg.refresh_token.expose()
    );
    format!(
        "zoho-token#{}",
        &deskshift_core::util::sha256_hex(material.as_bytes())[..32]
    )
}

#[derive(Default)]
struct MemoryEntry {
    token: Option<StoredToken>,
    lease: Option<(String, SystemTime)>,
}

/// A [`TokenCache`] in this process's memory (the default: one per client).
#[derive(Default)]
pub struct MemoryTokenCache {
    entries: Mutex<HashMap<String, MemoryEntry>>,
}

#[async_trait]
impl TokenCache for MemoryTokenCache {
    async fn get(&self, key: &str) -> Result<Option<StoredToken>> {
        Ok(self
            .entries
            .lock()
            .unwrap()
            .get(key)
            .and_then(|e| e.token.clone()))
    }
    async fn lease(&self, key: &str, holder: &str, ttl: Duration) -> Result<bool> {
        let mut entries = self.entries.lock().unwrap();
        let e = entries.entry(key.to_string()).or_default();
        let now = SystemTime::now();
        match &e.lease {
            Some((h, until)) if h != holder && *until > now => Ok(false),
            _ => {
                e.lease = Some((holder.to_string(), now + ttl));
                Ok(true)
            }
        }
    }
    async fn put(&self, key: &str, holder: &str, token: &StoredToken) -> Result<()> {
        let mut entries = self.entries.lock().unwrap();
        let e = entries.entry(key.to_string()).or_default();
        e.token = Some(token.clone());
        if e.lease.as_ref().is_some_and(|(h, _)| h == holder) {
            e.lease = None;
        }
        Ok(())
    }
    async fn release(&self, key: &str, holder: &str) -> Result<()> {
        if let Some(e) = self.entries.lock().unwrap().get_mut(key)
            && e.lease.as_ref().is_some_and(|(h, _)| h == holder)
        {
            e.lease = None;
        }
        Ok(())
    }
    async fn invalidate(&self, key: &str, stale: &Secret) -> Result<()> {
        if let Some(e) = self.entries.lock().unwrap().get_mut(key)
            && e.token.as_ref().is_some_and(|t| &t.token == stale)
        {
            e.token = None;
        }
        Ok(())
    }
}

/// A token cache carried by [`ZohoDeskConfig`] (runtime wiring, never serialized; configurations
/// compare equal whatever cache they carry).
#[derive(Clone, Default)]
pub struct SharedTokenCache(pub Option<Arc<dyn TokenCache>>);

impl SharedTokenCache {
    pub fn new(cache: Arc<dyn TokenCache>) -> Self {
        SharedTokenCache(Some(cache))
    }
}

impl std::fmt::Debug for SharedTokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "SharedTokenCache(shared)"
        } else {
            "SharedTokenCache(per client)"
        })
    }
}

impl PartialEq for SharedTokenCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

fn holder_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!(
        "{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

pub struct ZohoClient {
    cfg: ZohoDeskConfig,
    api: ApiClient,
    oauth: ApiClient,
    cache: Arc<dyn TokenCache>,
    key: String,
    holder: String,
    /// This process's copy of the cached token, so most calls never read the shared cache.
    token: tokio::sync::Mutex<Option<StoredToken>>,
    credits_remaining: AtomicU64,
    refreshes: AtomicU64,
    /// 401 answers per endpoint (Zoho does not charge them).
    unauthorized: Mutex<BTreeMap<String, u64>>,
}

/// A 429 whose `errorCode` is `THRESHOLD_EXCEEDED` means the daily credits are spent, not a burst.
fn budget_detector() -> BudgetDetector {
    Arc::new(|_headers, body| error_code(body).as_deref() == Some("THRESHOLD_EXCEEDED"))
}

pub fn error_code(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Value>(body)
        .ok()?
        .get("errorCode")?
        .as_str()
        .map(str::to_string)
}

/// `errorCode: message` plus Zoho's per-field errors (`/contactId invalid`), for error messages.
pub fn describe_error_body(body: &[u8]) -> String {
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
    pub fn new(cfg: ZohoDeskConfig, concurrency_cap: usize) -> Result<ZohoClient> {
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
        // Zoho allows 10 token grants per 10 minutes: never more than one in flight.
        let oauth_policy = HttpPolicy {
            max_concurrency: 1,
            initial_concurrency: 1,
            ..policy.clone()
        };
        let cache = cfg
            .token_cache
            .0
            .clone()
            .unwrap_or_else(|| Arc::new(MemoryTokenCache::default()));
        Ok(ZohoClient {
            api: ApiClient::new(PLATFORM, policy)?.with_budget_detector(budget_detector()),
            oauth: ApiClient::new(PLATFORM, oauth_policy)?,
            key: token_key(&cfg),
            cache,
            holder: holder_id(),
            cfg,
            token: tokio::sync::Mutex::new(None),
            credits_remaining: AtomicU64::new(NO_VALUE),
            refreshes: AtomicU64::new(0),
            unauthorized: Mutex::new(BTreeMap::new()),
        })
    }

    /// The same client with another concurrency cap, keeping its token cache and the token
    /// already obtained.
    pub fn rebuild(self, concurrency_cap: usize) -> Result<ZohoClient> {
        let mut cfg = self.cfg.clone();
        cfg.token_cache = crate::client::SharedTokenCache::new(self.cache.clone());
        let mut next = ZohoClient::new(cfg, concurrency_cap)?;
        next.cfg.token_cache = self.cfg.token_cache.clone();
        next.token = tokio::sync::Mutex::new(self.token.into_inner());
        next.refreshes = AtomicU64::new(self.refreshes.load(Ordering::Relaxed));
        next.credits_remaining = AtomicU64::new(self.credits_remaining.load(Ordering::Relaxed));
        Ok(next)
    }

    pub fn config(&self) -> &ZohoDeskConfig {
        &self.cfg
    }

    pub fn concurrency_cap(&self) -> usize {
        self.api.policy.max_concurrency
    }

    /// Credits as the last answer's `X-API-CREDITS-REMAINING` told, if the portal sends it.
    pub fn credits_remaining(&self) -> Option<u64> {
        match self.credits_remaining.load(Ordering::Relaxed) {
            NO_VALUE => None,
            v => Some(v),
        }
    }

    /// Access tokens this client obtained from Zoho (each one counts against Zoho's 10 per 10
    /// minutes; tokens read from a shared cache do not).
    pub fn token_refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    /// Calls and credits: one credit per API call that was not throttled (Zoho charges per call).
    pub fn spend(&self) -> Spend {
        let api = self.api.spend();
        let oauth = self.oauth.spend();
        let mut out = deskshift_core::http::merge_spend(&[api.clone(), oauth]);
        out.credits = api.calls.saturating_sub(api.throttled) + api.credits;
        out
    }

    /// The API calls' spend as counted by the HTTP layer (for callers with their own prices).
    pub fn api_spend(&self) -> Spend {
        self.api.spend()
    }

    /// The token grants' spend.
    pub fn oauth_spend(&self) -> Spend {
        self.oauth.spend()
    }

    /// 401 answers per endpoint template.
    pub fn unauthorized_by_endpoint(&self) -> BTreeMap<String, u64> {
        self.unauthorized.lock().unwrap().clone()
    }

    /// A usable access token: this process's copy, the shared cache's, or a fresh one from Zoho
    /// obtained under the cache's refresh lease (one refresh at a time across processes).
    async fn access_token(&self) -> Result<Secret> {
        let mut slot = self.token.lock().await;
        if let Some(t) = slot.as_ref()
            && t.usable()
        {
            return Ok(t.token.clone());
        }
        let started = std::time::Instant::now();
        loop {
            if let Some(t) = self.cache.get(&self.key).await?
                && t.usable()
            {
                let token = t.token.clone();
                *slot = Some(t);
                return Ok(token);
            }
            if self
                .cache
                .lease(&self.key, &self.holder, REFRESH_LEASE)
                .await?
            {
                // Another process may have stored a token between the read and the lease.
                if let Some(t) = self.cache.get(&self.key).await?
                    && t.usable()
                {
                    self.cache.release(&self.key, &self.holder).await?;
                    let token = t.token.clone();
                    *slot = Some(t);
                    return Ok(token);
                }
                let fresh = match self.refresh().await {
                    Ok((token, lifetime)) => StoredToken::granted(token, lifetime),
                    Err(e) => {
                        let _ = self.cache.release(&self.key, &self.holder).await;
                        return Err(e);
                    }
                };
                self.cache.put(&self.key, &self.holder, &fresh).await?;
                let token = fresh.token.clone();
                *slot = Some(fresh);
                return Ok(token);
            }
            if started.elapsed() > REFRESH_LEASE * 3 {
                return Err(Error::Throttled {
                    platform: PLATFORM.into(),
                    endpoint: TOKEN_ENDPOINT.into(),
                    attempts: 1,
                    message: "another process holds the Zoho token refresh lease and has stored no token; \
                              retry shortly (check the token cache table if this persists)"
                        .into(),
                    retry_after: Some(REFRESH_LEASE),
                });
            }
            tokio::time::sleep(LEASE_POLL).await;
        }
    }

    /// Drops the token if it is still `stale`, here and in the shared cache (a concurrent caller
    /// may have stored a newer one already).
    async fn invalidate(&self, stale: &Secret) -> Result<()> {
        let mut slot = self.token.lock().await;
        if slot.as_ref().is_some_and(|t| &t.token == stale) {
            *slot = None;
        }
        self.cache.invalidate(&self.key, stale).await
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
            .send(TOKEN_ENDPOINT, true, |http| http.post(&url).form(&form))
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
                endpoint: TOKEN_ENDPOINT.into(),
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

    /// The URL of an API path (under `/api/v1`).
    pub fn api_url(&self, path: &str) -> Result<Url> {
        let base = self.cfg.api_base.trim_end_matches('/');
        Url::parse(&format!("{base}/api/v1{path}")).map_err(|e| {
            Error::Config(format!(
                "zohodesk api_base {base:?} does not form a URL with {path} ({e})"
            ))
        })
    }

    /// Sends one API call (`path` under `/api/v1`), refreshing the token once on `INVALID_OAUTH`.
    /// Returns every answer the retry layer did not swallow, whatever its status.
    pub async fn call(
        &self,
        method: Method,
        endpoint: &str,
        path: &str,
        query: &[(&str, String)],
        payload: &Payload,
        idempotent: bool,
    ) -> Result<Answer> {
        let url = self.api_url(path)?;
        self.call_url(method, endpoint, &url, query, payload, idempotent)
            .await
    }

    /// [`ZohoClient::call`] for an absolute URL (attachment and image links Zoho hands out).
    pub async fn call_url(
        &self,
        method: Method,
        endpoint: &str,
        url: &Url,
        query: &[(&str, String)],
        payload: &Payload,
        idempotent: bool,
    ) -> Result<Answer> {
        let mut refreshed = false;
        loop {
            let token = self.access_token().await?;
            let auth = format!("Zoho-oauthtoken {}", token.expose());
            let answer = self
                .api
                .send(endpoint, idempotent, |http| {
                    let mut rb = http
                        .request(method.clone(), url.clone())
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
            if answer.status == reqwest::StatusCode::UNAUTHORIZED {
                *self
                    .unauthorized
                    .lock()
                    .unwrap()
                    .entry(endpoint.to_string())
                    .or_insert(0) += 1;
                if !refreshed
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
                    self.invalidate(&token).await?;
                    continue;
                }
            }
            return Ok(answer);
        }
    }

    /// The answer's JSON if it is a success (`Null` for 204 No Content), else the mapped error.
    pub fn json(&self, endpoint: &str, answer: &Answer) -> Result<Value> {
        json_of(endpoint, answer)
    }

    pub async fn get(&self, endpoint: &str, path: &str, query: &[(&str, String)]) -> Result<Value> {
        let answer = self
            .call(Method::GET, endpoint, path, query, &Payload::None, true)
            .await?;
        self.json(endpoint, &answer)
    }

    /// Items of a list answer: `data` (or another key), empty on 204.
    pub async fn list(
        &self,
        endpoint: &str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<Value>> {
        let v = self.get(endpoint, path, query).await?;
        Ok(list_items(v))
    }

    /// Pages through a list with `from`/`limit` until a short page.
    pub async fn list_all(
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

    /// Counts a list's records by paging it, pages read in waves that double up to the
    /// concurrency cap (1, 2, 4, ...): a short list costs one call, a long one reaches the cap's
    /// pace, and no more than a wave's worth of pages is read past the end.
    pub async fn count_all(&self, endpoint: &str, path: &str, limit: usize) -> Result<u64> {
        let (mut total, mut from, mut wave) = (0u64, 0usize, 1usize);
        loop {
            let pages = (0..wave).map(|i| {
                let q = [
                    ("from", (from + i * limit).to_string()),
                    ("limit", limit.to_string()),
                ];
                async move { self.list(endpoint, path, &q).await.map(|items| items.len()) }
            });
            for n in futures::future::try_join_all(pages).await? {
                total += n as u64;
                if n < limit {
                    return Ok(total);
                }
            }
            from += wave * limit;
            wave = (wave * 2).min(self.concurrency_cap().max(1));
        }
    }
}

/// The answer's JSON if it is a success (`Null` for 204 No Content), else the mapped error.
pub fn json_of(endpoint: &str, answer: &Answer) -> Result<Value> {
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

pub fn list_items(v: Value) -> Vec<Value> {
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
pub fn api_error(endpoint: &str, answer: &Answer) -> Error {
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
