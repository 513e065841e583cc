//! The authenticated reader: OAuth refresh-token grant with the access token cached until shortly
//! before expiry (one refresh at a time), `orgId` on every call, one refresh-and-retry on
//! `INVALID_OAUTH`, credits counted per call and capped by the configured budget, errors that
//! never carry tokens or URLs.
//!
//! `deskshift_zohodesk`'s client is crate-private, so this is a reader-sized copy of its logic.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deskshift_core::http::{Answer, ApiClient, BudgetDetector, HttpPolicy, snippet};
use deskshift_core::ports::Spend;
use deskshift_core::util::Secret;
use deskshift_core::{Error, Result};
use reqwest::{StatusCode, Url};
use serde_json::Value;

use crate::config::ZohoSourceConfig;

pub(crate) const PLATFORM: &str = "zohodesk";
const TOKEN_ENDPOINT: &str = "POST /oauth/v2/token";
const NO_VALUE: u64 = u64::MAX;

struct CachedToken {
    token: Secret,
    refresh_at: Instant,
}

pub(crate) struct ZohoReader {
    cfg: ZohoSourceConfig,
    api: ApiClient,
    oauth: ApiClient,
    token: tokio::sync::Mutex<Option<CachedToken>>,
    refreshes: AtomicU64,
    credits_remaining: AtomicU64,
    /// Credits of answers Zoho does not charge although they reached it (401), per endpoint.
    uncharged: Mutex<BTreeMap<String, u64>>,
    /// Spend of clients this one replaced (the probe that read the edition).
    carried: Spend,
    /// Credits of calls in flight, held against `daily_credit_budget`.
    reserved: Mutex<u64>,
}

/// Credits held for a call in flight; released when the call's spend is counted.
struct Reservation<'a> {
    reader: &'a ZohoReader,
    cost: u64,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.cost > 0 {
            *self.reader.reserved.lock().unwrap() -= self.cost;
        }
    }
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

fn describe(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return snippet(body);
    };
    let code = v.get("errorCode").and_then(Value::as_str).unwrap_or("");
    let message = v.get("message").and_then(Value::as_str).unwrap_or("");
    match (code.is_empty(), message.is_empty()) {
        (false, false) => format!("{code}: {message}"),
        (false, true) => code.to_string(),
        (true, false) => message.to_string(),
        (true, true) => snippet(body),
    }
}

impl ZohoReader {
    pub(crate) fn new(cfg: ZohoSourceConfig, concurrency_cap: usize) -> Result<ZohoReader> {
        cfg.validate()?;
        let retry = &cfg.connection.retry;
        let cap = concurrency_cap.max(1);
        let policy = HttpPolicy {
            max_attempts: retry.max_attempts.max(1),
            base_delay: Duration::from_millis(retry.base_delay_ms),
            max_delay: Duration::from_millis(retry.max_delay_ms.max(retry.base_delay_ms)),
            max_concurrency: cap,
            initial_concurrency: cap.div_ceil(2),
            timeout: Duration::from_secs(retry.timeout_secs.max(1)),
        };
        // Zoho allows 10 token grants per 10 minutes: never more than one in flight.
        let oauth_policy = HttpPolicy {
            max_concurrency: 1,
            initial_concurrency: 1,
            ..policy.clone()
        };
        Ok(ZohoReader {
            api: ApiClient::new(PLATFORM, policy)?.with_budget_detector(budget_detector()),
            oauth: ApiClient::new(PLATFORM, oauth_policy)?,
            cfg,
            token: tokio::sync::Mutex::new(None),
            refreshes: AtomicU64::new(0),
            credits_remaining: AtomicU64::new(NO_VALUE),
            uncharged: Mutex::new(BTreeMap::new()),
            carried: Spend::default(),
            reserved: Mutex::new(0),
        })
    }

    /// The same reader with another concurrency cap, keeping its token and its spend so far.
    pub(crate) fn rebuild(self, concurrency_cap: usize) -> Result<ZohoReader> {
        let mut next = ZohoReader::new(self.cfg.clone(), concurrency_cap)?;
        next.carried = self.spend();
        next.refreshes = AtomicU64::new(self.refreshes.load(Ordering::Relaxed));
        next.credits_remaining = AtomicU64::new(self.credits_remaining.load(Ordering::Relaxed));
        next.token = tokio::sync::Mutex::new(self.token.into_inner());
        Ok(next)
    }

    pub(crate) fn config(&self) -> &ZohoSourceConfig {
        &self.cfg
    }

    pub(crate) fn concurrency_cap(&self) -> usize {
        self.api.policy.max_concurrency
    }

    pub(crate) fn token_refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    pub(crate) fn credits_remaining(&self) -> Option<u64> {
        match self.credits_remaining.load(Ordering::Relaxed) {
            NO_VALUE => None,
            v => Some(v),
        }
    }

    /// Calls (API and token grants) and credits. Zoho charges every API answer except throttling
    /// (429) and authentication failures (401); token grants cost no credits.
    pub(crate) fn spend(&self) -> Spend {
        let api = self.api.spend();
        let oauth = self.oauth.spend();
        let mut out =
            deskshift_core::http::merge_spend(&[api.clone(), oauth, self.carried.clone()]);
        let charged: u64 = api
            .calls_by_endpoint
            .iter()
            .map(|(ep, n)| self.cfg.credit_cost(ep) * n)
            .sum();
        let uncharged: u64 = self.uncharged.lock().unwrap().values().sum();
        // ApiClient does not say which endpoint a 429 answered; they are priced at the default.
        let throttled = api.throttled * self.cfg.default_credit_cost;
        out.credits = charged.saturating_sub(throttled + uncharged) + self.carried.credits;
        out
    }

    /// Reserves the credits of one call within the configured budget; calls in flight count,
    /// so concurrent callers cannot overshoot it together.
    fn reserve(&self, endpoint: &str) -> Result<Reservation<'_>> {
        let cost = self.cfg.credit_cost(endpoint);
        let Some(budget) = self.cfg.daily_credit_budget else {
            return Ok(Reservation {
                reader: self,
                cost: 0,
            });
        };
        let mut reserved = self.reserved.lock().unwrap();
        let spent = self.spend().credits;
        if spent + *reserved + cost > budget {
            return Err(Error::BudgetExhausted {
                platform: PLATFORM.into(),
                message: format!(
                    "this source's daily_credit_budget of {budget} credits is spent ({spent} used); \
                     raise source.daily_credit_budget or resume when the budget renews"
                ),
            });
        }
        *reserved += cost;
        Ok(Reservation { reader: self, cost })
    }

    async fn access_token(&self) -> Result<Secret> {
        let mut slot = self.token.lock().await;
        if let Some(t) = slot.as_ref()
            && Instant::now() < t.refresh_at
        {
            return Ok(t.token.clone());
        }
        let (token, lifetime) = self.refresh().await?;
        // Refresh ~5 minutes before expiry; short-lived tokens keep at least half their life.
        let margin = Duration::from_secs(300).min(lifetime / 2);
        *slot = Some(CachedToken {
            token: token.clone(),
            refresh_at: Instant::now() + lifetime - margin,
        });
        Ok(token)
    }

    /// Drops the cached token if it is still `stale` (another caller may have refreshed already).
    async fn invalidate(&self, stale: &Secret) {
        let mut slot = self.token.lock().await;
        if slot.as_ref().is_some_and(|t| &t.token == stale) {
            *slot = None;
        }
    }

    async fn refresh(&self) -> Result<(Secret, Duration)> {
        let c = &self.cfg.connection;
        let url = format!("{}/oauth/v2/token", c.accounts_base.trim_end_matches('/'));
        // A form body, so no credential ever sits in a URL.
        let form = [
            ("grant_type", "refresh_token".to_string()),
            ("client_id", c.client_id.clone()),
            ("client_secret", c.client_secret.expose().to_string()),
            ("refresh_token", c.refresh_token.expose().to_string()),
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
                message: "Zoho allows 10 access tokens per refresh token in 10 minutes; wait for the window to pass".into(),
                retry_after: Some(Duration::from_secs(600)),
            });
        }
        Err(Error::Config(format!(
            "Zoho OAuth refused the refresh-token grant ({reason}); check source client_id, client_secret and \
             refresh_token, and that accounts_base is the data centre of the Zoho account"
        )))
    }

    /// GET `url` with the token and orgId, refreshing the token once on `INVALID_OAUTH`.
    /// Every answer the retry layer did not absorb comes back, whatever its status.
    pub(crate) async fn get_url(
        &self,
        endpoint: &str,
        url: &Url,
        query: &[(&str, String)],
    ) -> Result<Answer> {
        let mut refreshed = false;
        loop {
            let token = self.access_token().await?;
            let reservation = self.reserve(endpoint)?;
            let auth = format!("Zoho-oauthtoken {}", token.expose());
            let org = &self.cfg.connection.org_id;
            let answer = self
                .api
                .send(endpoint, true, |http| {
                    let rb = http
                        .get(url.clone())
                        .header(reqwest::header::AUTHORIZATION, &auth)
                        .header("orgId", org);
                    if query.is_empty() {
                        rb
                    } else {
                        rb.query(query)
                    }
                })
                .await;
            drop(reservation);
            let answer = answer?;
            if let Some(remaining) = answer
                .headers
                .get("x-api-credits-remaining")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
            {
                self.credits_remaining.store(remaining, Ordering::Relaxed);
            }
            if answer.status == StatusCode::UNAUTHORIZED {
                *self
                    .uncharged
                    .lock()
                    .unwrap()
                    .entry(endpoint.to_string())
                    .or_insert(0) += self.cfg.credit_cost(endpoint);
                if !refreshed
                    && matches!(
                        error_code(&answer.body).as_deref(),
                        Some("INVALID_OAUTH") | None
                    )
                {
                    refreshed = true;
                    tracing::debug!(
                        endpoint,
                        "zoho answered INVALID_OAUTH; refreshing the token once"
                    );
                    self.invalidate(&token).await;
                    continue;
                }
            }
            return Ok(answer);
        }
    }

    /// GET an API path (under `/api/v1`); the JSON of a success, `Null` for 204, else the error.
    pub(crate) async fn get(
        &self,
        endpoint: &str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Value> {
        let url = self.api_url(path)?;
        let answer = self.get_url(endpoint, &url, query).await?;
        json_of(endpoint, &answer)
    }

    pub(crate) fn api_url(&self, path: &str) -> Result<Url> {
        let base = self.cfg.connection.api_base.trim_end_matches('/');
        Url::parse(&format!("{base}/api/v1{path}")).map_err(|e| {
            Error::Config(format!(
                "zohodesk api_base {base:?} does not form a URL with {path} ({e})"
            ))
        })
    }
}

/// The answer's JSON if it is a success (`Null` for 204 No Content), else the mapped error.
pub(crate) fn json_of(endpoint: &str, answer: &Answer) -> Result<Value> {
    if answer.status.is_success() {
        if answer.status == StatusCode::NO_CONTENT
            || answer.body.iter().all(u8::is_ascii_whitespace)
        {
            return Ok(Value::Null);
        }
        return answer.json::<Value>(PLATFORM, endpoint);
    }
    Err(api_error(endpoint, answer))
}

/// An error for a non-success answer, naming the endpoint template only.
pub(crate) fn api_error(endpoint: &str, answer: &Answer) -> Error {
    let status = answer.status.as_u16();
    let message = describe(&answer.body);
    if status == 401 {
        return Error::Config(format!(
            "Zoho Desk refused the source credentials on {endpoint} ({message}); check org_id, the OAuth scopes \
             (Desk.tickets.READ Desk.contacts.READ Desk.basic.READ Desk.settings.READ Desk.search.READ \
             Desk.tasks.READ Desk.products.READ Desk.custommodule.READ) and that api_base is the account's data centre"
        ));
    }
    Error::Api {
        platform: PLATFORM.into(),
        endpoint: endpoint.to_string(),
        status,
        message,
    }
}

/// Items of a list answer (`data`), empty for 204.
pub(crate) fn items(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        Value::Object(o) => o
            .get("data")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}
