//! The HTTP client every connector uses: bounded, adaptive concurrency (AIMD: +1 after a window of
//! successes, halved on a 429), retries with exponential backoff and jitter that honour
//! `Retry-After`, call counting per endpoint, and errors that never carry URLs or credentials.
//!
//! The AIMD limiter is our own: governor's quotas cannot change at runtime (crates.md), and the
//! adaptive crates are young.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::BackoffBuilder;
use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ports::Spend;

/// A connector's retry and timeout settings, as job files write them (the defaults suit production; tests shorten the delays).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetryConfig {
    pub max_attempts: u32,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
    pub timeout_secs: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 8,
            base_delay_ms: 200,
            max_delay_ms: 30_000,
            timeout_secs: 60,
        }
    }
}

/// Retry and concurrency settings of one API client.
#[derive(Clone, Debug)]
pub struct HttpPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Never more requests in flight than this (the platform's concurrency cap).
    pub max_concurrency: usize,
    /// Starting concurrency; grows towards the maximum while the platform keeps up.
    pub initial_concurrency: usize,
    pub timeout: Duration,
}

impl Default for HttpPolicy {
    fn default() -> Self {
        HttpPolicy {
            max_attempts: 8,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
            max_concurrency: 8,
            initial_concurrency: 4,
            timeout: Duration::from_secs(60),
        }
    }
}

struct LimiterState {
    limit: usize,
    debt: usize,
    successes: usize,
}

/// AIMD concurrency limiter over a semaphore.
pub struct AdaptiveLimiter {
    sem: Arc<Semaphore>,
    state: Mutex<LimiterState>,
    max: usize,
}

/// A slot in the limiter; returned on drop (or forgotten when the limit shrank meanwhile).
pub struct Slot<'a> {
    permit: Option<OwnedSemaphorePermit>,
    limiter: &'a AdaptiveLimiter,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.permit.take() {
            let mut st = self.limiter.state.lock().unwrap();
            if st.debt > 0 {
                st.debt -= 1;
                p.forget();
            }
        }
    }
}

impl AdaptiveLimiter {
    pub fn new(initial: usize, max: usize) -> Self {
        let max = max.max(1);
        let initial = initial.clamp(1, max);
        AdaptiveLimiter {
            sem: Arc::new(Semaphore::new(initial)),
            state: Mutex::new(LimiterState {
                limit: initial,
                debt: 0,
                successes: 0,
            }),
            max,
        }
    }

    pub async fn acquire(&self) -> Slot<'_> {
        let permit = self
            .sem
            .clone()
            .acquire_owned()
            .await
            .expect("limiter semaphore is never closed");
        Slot {
            permit: Some(permit),
            limiter: self,
        }
    }

    pub fn limit(&self) -> usize {
        self.state.lock().unwrap().limit
    }

    pub fn on_success(&self) {
        let mut st = self.state.lock().unwrap();
        st.successes += 1;
        if st.successes >= st.limit && st.limit < self.max {
            st.successes = 0;
            if st.debt > 0 {
                st.debt -= 1;
            } else {
                self.sem.add_permits(1);
            }
            st.limit += 1;
        }
    }

    pub fn on_throttle(&self) {
        let mut st = self.state.lock().unwrap();
        let cut = st.limit / 2;
        if cut > 0 {
            st.limit -= cut;
            // Take idle slots away now; slots in use are forgotten as they come back.
            let idle = self.sem.available_permits().min(cut);
            let taken = match self.sem.try_acquire_many(idle as u32) {
                Ok(p) if idle > 0 => {
                    p.forget();
                    idle
                }
                _ => 0,
            };
            st.debt += cut - taken;
        }
        st.successes = 0;
    }
}

/// An answer the caller interprets (any status that is not retried).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json<T: serde::de::DeserializeOwned>(
        &self,
        platform: &str,
        endpoint: &str,
    ) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| Error::Api {
            platform: platform.to_string(),
            endpoint: endpoint.to_string(),
            status: self.status.as_u16(),
            message: format!("unexpected answer ({e}): {}", snippet(&self.body)),
        })
    }
}

/// Decides, from a 429 answer, whether it is a daily-budget exhaustion rather than a burst.
pub type BudgetDetector = Arc<dyn Fn(&HeaderMap, &[u8]) -> bool + Send + Sync>;

pub struct ApiClient {
    pub platform: String,
    pub http: reqwest::Client,
    pub limiter: AdaptiveLimiter,
    pub policy: HttpPolicy,
    spend: Mutex<Spend>,
    budget_detector: Option<BudgetDetector>,
}

impl ApiClient {
    pub fn new(platform: &str, policy: HttpPolicy) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(policy.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Config(format!("HTTP client for {platform}: {e}")))?;
        Ok(ApiClient {
            platform: platform.to_string(),
            http,
            limiter: AdaptiveLimiter::new(policy.initial_concurrency, policy.max_concurrency),
            policy,
            spend: Mutex::new(Spend::default()),
            budget_detector: None,
        })
    }

    pub fn with_budget_detector(mut self, detector: BudgetDetector) -> Self {
        self.budget_detector = Some(detector);
        self
    }

    pub fn spend(&self) -> Spend {
        self.spend.lock().unwrap().clone()
    }

    pub fn add_credits(&self, credits: u64) {
        self.spend.lock().unwrap().credits += credits;
    }

    /// Sends a request built by `build`, retrying throttling, 5xx and network errors.
    ///
    /// `endpoint` names the call in counters and errors (e.g. `POST /tickets`). A request that is not
    /// `idempotent` is never re-sent after it may have reached the server (a 5xx or a broken
    /// connection): that comes back as `Error::Transport { ambiguous: true }` so the caller can look
    /// in the destination before creating again.
    pub async fn send(
        &self,
        endpoint: &str,
        idempotent: bool,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Answer> {
        let mut delays = backon::ExponentialBuilder::default()
            .with_min_delay(self.policy.base_delay)
            .with_max_delay(self.policy.max_delay)
            .with_jitter()
            .with_max_times(self.policy.max_attempts as usize)
            .build();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let outcome = {
                let _slot = self.limiter.acquire().await;
                self.count(endpoint, attempt > 1);
                match build(&self.http).send().await {
                    Ok(resp) => {
                        let status = resp.status();
                        let headers = resp.headers().clone();
                        match resp.bytes().await {
                            Ok(body) => Ok(Answer {
                                status,
                                headers,
                                body,
                            }),
                            Err(e) => Err((describe_reqwest(&e), true)),
                        }
                    }
                    // A connect failure never reached the server; anything later may have.
                    Err(e) => Err((describe_reqwest(&e), !e.is_connect())),
                }
            };
            let next_delay = delays.next();
            match outcome {
                Ok(answer) if answer.status == StatusCode::TOO_MANY_REQUESTS => {
                    self.limiter.on_throttle();
                    self.spend.lock().unwrap().throttled += 1;
                    if let Some(detect) = &self.budget_detector
                        && detect(&answer.headers, &answer.body)
                    {
                        return Err(Error::BudgetExhausted {
                            platform: self.platform.clone(),
                            message: snippet(&answer.body),
                        });
                    }
                    let retry_after = retry_after(&answer.headers);
                    match next_delay {
                        Some(d) => {
                            tokio::time::sleep(retry_after.map_or(d, |ra| ra.max(d / 4))).await
                        }
                        None => {
                            return Err(Error::Throttled {
                                platform: self.platform.clone(),
                                endpoint: endpoint.to_string(),
                                attempts: attempt,
                                message: snippet(&answer.body),
                                retry_after,
                            });
                        }
                    }
                }
                Ok(answer) if answer.status.is_server_error() => {
                    if !idempotent {
                        return Err(Error::Transport {
                            platform: self.platform.clone(),
                            endpoint: endpoint.to_string(),
                            message: format!(
                                "HTTP {}: {}",
                                answer.status.as_u16(),
                                snippet(&answer.body)
                            ),
                            ambiguous: true,
                        });
                    }
                    match next_delay {
                        Some(d) => {
                            let wait = retry_after(&answer.headers).unwrap_or(d);
                            tokio::time::sleep(wait).await
                        }
                        None => {
                            return Err(Error::Api {
                                platform: self.platform.clone(),
                                endpoint: endpoint.to_string(),
                                status: answer.status.as_u16(),
                                message: snippet(&answer.body),
                            });
                        }
                    }
                }
                Ok(answer) => {
                    self.limiter.on_success();
                    return Ok(answer);
                }
                Err((message, may_have_arrived)) => {
                    if may_have_arrived && !idempotent {
                        return Err(Error::Transport {
                            platform: self.platform.clone(),
                            endpoint: endpoint.to_string(),
                            message,
                            ambiguous: true,
                        });
                    }
                    match next_delay {
                        Some(d) => tokio::time::sleep(d).await,
                        None => {
                            return Err(Error::Transport {
                                platform: self.platform.clone(),
                                endpoint: endpoint.to_string(),
                                message,
                                ambiguous: may_have_arrived,
                            });
                        }
                    }
                }
            }
        }
    }

    fn count(&self, endpoint: &str, retry: bool) {
        let mut s = self.spend.lock().unwrap();
        s.calls += 1;
        if retry {
            s.retries += 1;
        }
        *s.calls_by_endpoint.entry(endpoint.to_string()).or_insert(0) += 1;
    }
}

/// `Retry-After` as seconds (the form these platforms use).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// The first 300 characters of a body, for error messages.
pub fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut s: String = text.chars().take(300).collect();
    if text.chars().count() > 300 {
        s.push('…');
    }
    s
}

/// A reqwest error without its URL (which may carry tokens in the query).
fn describe_reqwest(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "answer cut off"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}

/// Endpoint-call counters merged from several clients.
pub fn merge_spend(items: &[Spend]) -> Spend {
    let mut out = Spend::default();
    for s in items {
        out.calls += s.calls;
        out.credits += s.credits;
        out.throttled += s.throttled;
        out.retries += s.retries;
        for (k, v) in &s.calls_by_endpoint {
            *out.calls_by_endpoint.entry(k.clone()).or_insert(0) += v;
        }
    }
    out
}

#[doc(hidden)]
pub type Counters = BTreeMap<String, u64>;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn limiter_halves_on_throttle_and_grows_back() {
        let l = AdaptiveLimiter::new(8, 10);
        l.on_throttle();
        assert_eq!(l.limit(), 4);
        for _ in 0..4 {
            l.on_success();
        }
        assert_eq!(l.limit(), 5);
        // With debt outstanding, at most `limit` slots can be held at once.
        let mut held = Vec::new();
        for _ in 0..5 {
            held.push(l.acquire().await);
        }
        assert_eq!(
            l.sem.available_permits(),
            0,
            "no slot beyond the limit is free"
        );
        drop(held);
        assert_eq!(l.sem.available_permits(), 5);
    }

    #[test]
    fn retry_after_reads_seconds() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
    }
}
