//! Jira's burst limit (per endpoint + method, per second) and per-issue write limit.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;

pub const BURST_REASON: &str = "jira-burst-based";
pub const PER_ISSUE_REASON: &str = "jira-per-issue-on-write";

struct Window {
    start: Instant,
    count: u32,
}

/// Fixed one-second windows, opened by the first request that falls outside the previous one.
#[derive(Default)]
pub struct Limiter {
    burst: HashMap<String, Window>,
    per_issue: HashMap<u64, Window>,
}

fn hit(w: &mut Window, limit: u32) -> Result<(), Duration> {
    let now = Instant::now();
    if now.duration_since(w.start) >= Duration::from_secs(1) {
        w.start = now;
        w.count = 0;
    }
    if w.count >= limit {
        return Err((w.start + Duration::from_secs(1)).saturating_duration_since(now));
    }
    w.count += 1;
    Ok(())
}

impl Limiter {
    pub fn hit_burst(&mut self, key: &str, limit: u32) -> Result<(), Duration> {
        let w = self.burst.entry(key.to_string()).or_insert_with(|| Window {
            start: Instant::now(),
            count: 0,
        });
        hit(w, limit)
    }

    pub fn hit_issue(&mut self, issue_id: u64, limit: u32) -> Result<(), Duration> {
        let w = self.per_issue.entry(issue_id).or_insert_with(|| Window {
            start: Instant::now(),
            count: 0,
        });
        hit(w, limit)
    }

    pub fn clear(&mut self) {
        self.burst.clear();
        self.per_issue.clear();
    }
}

/// A 429 with the headers Jira sends: Retry-After, RateLimit-Reason and X-RateLimit-*.
pub fn too_many(reason: &'static str, limit: u32, wait: Duration, jsm: bool) -> Response {
    let secs = wait.as_millis().div_ceil(1000).max(1) as u64;
    let message = "Rate limit exceeded.";
    let mut resp = if jsm {
        crate::error::jsm(StatusCode::TOO_MANY_REQUESTS, message)
    } else {
        crate::error::platform(StatusCode::TOO_MANY_REQUESTS, &[message])
    };
    let reset = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(secs as i64))
        .unwrap_or(jiff::Timestamp::now())
        .strftime("%Y-%m-%dT%H:%MZ")
        .to_string();
    let h = resp.headers_mut();
    h.insert("Retry-After", HeaderValue::from(secs));
    h.insert("RateLimit-Reason", HeaderValue::from_static(reason));
    h.insert("X-RateLimit-Limit", HeaderValue::from(limit));
    h.insert("X-RateLimit-Remaining", HeaderValue::from_static("0"));
    if let Ok(v) = HeaderValue::from_str(&reset) {
        h.insert("X-RateLimit-Reset", v);
    }
    resp
}
