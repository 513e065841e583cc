//! The authenticated Jira HTTP client: Basic auth with the API token, the XSRF header on uploads,
//! per-issue write spacing, and error mapping that never carries tokens or URLs. Retries,
//! `Retry-After` and adaptive concurrency come from [`deskshift_core::http::ApiClient`].

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use base64::Engine;
use bytes::Bytes;
use deskshift_core::http::{Answer, ApiClient, HttpPolicy, snippet};
use deskshift_core::ports::Spend;
use deskshift_core::{Error, Result};
use reqwest::Method;
use serde_json::Value;

use crate::config::{JsmConfig, Secret};

pub(crate) const PLATFORM: &str = "jsm";

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

/// Spaces writes to one issue (Jira's `jira-per-issue-on-write` limit).
pub(crate) struct IssuePacer {
    interval: Duration,
    next: std::sync::Mutex<HashMap<String, Instant>>,
}

impl IssuePacer {
    pub(crate) fn new(per_second: f64) -> IssuePacer {
        let interval = if per_second > 0.0 {
            Duration::from_secs_f64(1.0 / per_second)
        } else {
            Duration::ZERO
        };
        IssuePacer {
            interval,
            next: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Issues to keep in progress per call slot so the slots stay busy while issues wait for
    /// their next write: the write interval over a typical answer time (50 ms), 1 to 8.
    pub(crate) fn records_per_slot(&self) -> usize {
        let per = self.interval.as_secs_f64() / 0.05;
        (per.ceil() as usize).clamp(1, 8)
    }

    /// Waits for this issue's next write slot and books it.
    pub(crate) async fn wait(&self, issue: &str) {
        if self.interval.is_zero() {
            return;
        }
        let wait = {
            let mut next = self.next.lock().unwrap();
            let now = Instant::now();
            if next.len() > 4096 {
                next.retain(|_, t| *t > now);
            }
            let slot = next
                .get(&issue.to_ascii_uppercase())
                .copied()
                .filter(|t| *t > now)
                .unwrap_or(now);
            next.insert(issue.to_ascii_uppercase(), slot + self.interval);
            slot - now
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

pub(crate) struct JsmClient {
    cfg: JsmConfig,
    api: ApiClient,
    auth: Secret,
    pub(crate) pacer: IssuePacer,
}

/// Jira's two error shapes: `{errorMessages, errors}` and `{errorMessage}`.
pub(crate) fn describe_error_body(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return snippet(body);
    };
    let mut parts: Vec<String> = Vec::new();
    if let Some(m) = v.get("errorMessage").and_then(Value::as_str) {
        parts.push(m.to_string());
    }
    if let Some(list) = v.get("errorMessages").and_then(Value::as_array) {
        parts.extend(list.iter().filter_map(Value::as_str).map(str::to_string));
    }
    if let Some(errors) = v.get("errors").and_then(Value::as_object) {
        parts.extend(errors.iter().map(|(k, m)| {
            format!(
                "{k}: {}",
                m.as_str().map(str::to_string).unwrap_or(m.to_string())
            )
        }));
    }
    if parts.is_empty() {
        snippet(body)
    } else {
        parts.join("; ")
    }
}

impl JsmClient {
    pub(crate) fn new(cfg: JsmConfig) -> Result<JsmClient> {
        cfg.validate()?;
        let cap = cfg.concurrency_cap.max(1);
        let policy = HttpPolicy {
            max_attempts: cfg.retry.max_attempts.max(1),
            base_delay: Duration::from_millis(cfg.retry.base_delay_ms),
            max_delay: Duration::from_millis(cfg.retry.max_delay_ms.max(cfg.retry.base_delay_ms)),
            max_concurrency: cap,
            initial_concurrency: cap.div_ceil(2),
            timeout: Duration::from_secs(cfg.retry.timeout_secs.max(1)),
        };
        let raw = format!("{}:{}", cfg.email.trim(), cfg.api_token.expose());
        let auth = Secret::new(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        ));
        Ok(JsmClient {
            api: ApiClient::new(PLATFORM, policy)?,
            pacer: IssuePacer::new(cfg.per_issue_writes_per_second),
            auth,
            cfg,
        })
    }

    pub(crate) fn config(&self) -> &JsmConfig {
        &self.cfg
    }

    pub(crate) fn concurrency_cap(&self) -> usize {
        self.api.policy.max_concurrency
    }

    pub(crate) fn spend(&self) -> Spend {
        self.api.spend()
    }

    /// Sends one call (`path` from `/rest/...`); every answer the retry layer did not swallow comes
    /// back whatever its status.
    pub(crate) async fn call(
        &self,
        method: Method,
        endpoint: &str,
        path: &str,
        query: &[(&str, String)],
        payload: &Payload,
        idempotent: bool,
    ) -> Result<Answer> {
        let url = format!("{}{}", self.cfg.base_url.trim_end_matches('/'), path);
        let experimental = path.starts_with("/rest/servicedeskapi/customer");
        self.api
            .send(endpoint, idempotent, |http| {
                let mut rb = http
                    .request(method.clone(), &url)
                    .header(reqwest::header::AUTHORIZATION, self.auth.expose())
                    .header(reqwest::header::ACCEPT, "application/json");
                if experimental {
                    rb = rb.header("X-ExperimentalApi", "opt-in");
                }
                if !query.is_empty() {
                    rb = rb.query(query);
                }
                match payload {
                    Payload::None => rb,
                    Payload::Json(v) => rb.json(v),
                    Payload::File { name, mime, bytes } => {
                        let part = || {
                            reqwest::multipart::Part::stream_with_length(
                                bytes.clone(),
                                bytes.len() as u64,
                            )
                            .file_name(name.clone())
                        };
                        let part = part().mime_str(mime).unwrap_or_else(|_| part());
                        rb.header("X-Atlassian-Token", "no-check")
                            .multipart(reqwest::multipart::Form::new().part("file", part))
                    }
                }
            })
            .await
    }

    /// A write to one issue: waits for the issue's write slot first.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn issue_write(
        &self,
        issue: &str,
        method: Method,
        endpoint: &str,
        path: &str,
        query: &[(&str, String)],
        payload: &Payload,
        idempotent: bool,
    ) -> Result<Answer> {
        self.pacer.wait(issue).await;
        self.call(method, endpoint, path, query, payload, idempotent)
            .await
    }

    /// The answer's JSON if it is a success (`Null` when empty), else the mapped error.
    pub(crate) fn json(&self, endpoint: &str, answer: &Answer) -> Result<Value> {
        if answer.status.is_success() {
            if answer.body.iter().all(u8::is_ascii_whitespace) {
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

    /// GET that answers None on 404.
    pub(crate) async fn get_opt(
        &self,
        endpoint: &str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Option<Value>> {
        let answer = self
            .call(Method::GET, endpoint, path, query, &Payload::None, true)
            .await?;
        if answer.status.as_u16() == 404 {
            return Ok(None);
        }
        self.json(endpoint, &answer).map(Some)
    }

    /// Every item of a servicedeskapi paged list (`start`/`limit`, `isLastPage`, `values`).
    pub(crate) async fn sd_list(
        &self,
        endpoint: &str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut start = 0usize;
        loop {
            let mut q = query.to_vec();
            q.push(("start", start.to_string()));
            q.push(("limit", "100".to_string()));
            let v = self.get(endpoint, path, &q).await?;
            let values = v
                .get("values")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let n = values.len();
            out.extend(values);
            let last = v.get("isLastPage").and_then(Value::as_bool).unwrap_or(true);
            if last || n == 0 {
                return Ok(out);
            }
            start += n;
        }
    }

    /// Every item of a platform paged bean (`startAt`/`maxResults`, `values` or a named array).
    pub(crate) async fn platform_list(
        &self,
        endpoint: &str,
        path: &str,
        query: &[(&str, String)],
        items_key: &str,
    ) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut start = 0usize;
        loop {
            let mut q = query.to_vec();
            q.push(("startAt", start.to_string()));
            q.push(("maxResults", "100".to_string()));
            let v = self.get(endpoint, path, &q).await?;
            let items = match &v {
                Value::Array(a) => a.clone(),
                other => other
                    .get(items_key)
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            };
            let n = items.len();
            out.extend(items);
            let total = v.get("total").and_then(Value::as_u64);
            let last = v
                .get("isLast")
                .and_then(Value::as_bool)
                .or(total.map(|t| (start + n) as u64 >= t))
                .unwrap_or(n < 100);
            if last || n == 0 {
                return Ok(out);
            }
            start += n;
        }
    }
}

/// An error for a non-success answer, naming the endpoint template only.
pub(crate) fn api_error(endpoint: &str, answer: &Answer) -> Error {
    let status = answer.status.as_u16();
    let message = describe_error_body(&answer.body);
    match status {
        401 => Error::Config(format!(
            "Jira refused the credentials on {endpoint} ({message}); check jsm email and api_token \
             (the token's owner must be that e-mail) and base_url"
        )),
        403 if message.to_ascii_lowercase().contains("read-only") => Error::Config(format!(
            "Jira refused {endpoint} ({message}): the site accepts no changes for now \
             (maintenance, an import, or an administrator's lock); once it does, `deskshift \
             retry-failed` writes what was refused"
        )),
        403 => Error::Config(format!(
            "Jira denied {endpoint} ({message}); the API user needs the Jira administrator and \
             service desk agent/admin permissions"
        )),
        _ => Error::Api {
            platform: PLATFORM.into(),
            endpoint: endpoint.to_string(),
            status,
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_only_site_is_not_reported_as_missing_permissions() {
        let answer = |body: &str| Answer {
            status: reqwest::StatusCode::FORBIDDEN,
            headers: Default::default(),
            body: bytes::Bytes::from(body.to_string()),
        };
        let read_only = api_error(
            "POST /issue",
            &answer(r#"{"errorMessages":["This Jira site is read-only at the moment: no changes can be made."]}"#),
        )
        .to_string();
        assert!(read_only.contains("retry-failed"), "{read_only}");
        assert!(!read_only.contains("administrator and"), "{read_only}");
        let denied = api_error(
            "POST /issue",
            &answer(r#"{"errorMessages":["You do not have permission to create issues in this project."]}"#),
        )
        .to_string();
        assert!(denied.contains("permissions"), "{denied}");
    }

    #[test]
    fn both_error_shapes_are_read() {
        assert_eq!(
            describe_error_body(br#"{"errorMessages":["Bad"],"errors":{"labels":"no spaces"}}"#),
            "Bad; labels: no spaces"
        );
        assert_eq!(
            describe_error_body(br#"{"errorMessage":"exists","i18nErrorMessage":{}}"#),
            "exists"
        );
    }

    // Paused time: the clock only moves when every task sleeps, so the spacing is exact.
    #[tokio::test(start_paused = true)]
    async fn pacer_spaces_writes_to_one_issue_only() {
        let p = IssuePacer::new(20.0);
        let t0 = Instant::now();
        p.wait("SUP-1").await;
        p.wait("SUP-2").await;
        assert_eq!(t0.elapsed(), Duration::ZERO);
        p.wait("sup-1").await;
        assert_eq!(t0.elapsed(), Duration::from_millis(50));
    }
}
