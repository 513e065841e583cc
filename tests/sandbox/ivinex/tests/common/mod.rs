#![allow(dead_code)]

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use sandbox_ivinex::{IvinexConfig, IvinexSandbox};
use serde_json::{Value, json};

pub async fn start_seeded(seed: u64, tickets: usize) -> IvinexSandbox {
    sandbox_ivinex::start(IvinexConfig {
        seed: Some(seed),
        tickets,
        ..Default::default()
    })
    .await
    .expect("sandbox starts")
}

/// A bare HTTP client speaking the contract (no connector code).
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub user: String,
    pub password: String,
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Api {
    pub fn new(sb: &IvinexSandbox) -> Api {
        let c = sb.credentials();
        Api {
            http: reqwest::Client::new(),
            base: c.base_url,
            user: c.user,
            password: c.password,
        }
    }

    pub fn with_password(mut self, password: &str) -> Api {
        self.password = password.to_string();
        self
    }

    pub async fn call(&self, call: &str, body: Value) -> Answer {
        let resp = self
            .http
            .post(format!("{}/API/{call}", self.base))
            .basic_auth(&self.user, Some(&self.password))
            .json(&body)
            .send()
            .await
            .expect("request sent");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body read");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("JSON body expected from {call} ({status}): {e}: {text}"));
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Calls and asserts 200.
    pub async fn ok(&self, call: &str, body: Value) -> Value {
        let a = self.call(call, body.clone()).await;
        assert_eq!(
            a.status,
            StatusCode::OK,
            "{call} {body} answered {}",
            a.body
        );
        a.body
    }

    pub async fn all_records(&self, tab: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut page = 1;
        loop {
            let b = self
                .ok(
                    "GetRecords",
                    json!({"Tab": tab, "Page": page, "PageSize": 200}),
                )
                .await;
            out.extend(b["Records"].as_array().unwrap().iter().cloned());
            if !b["HasMore"].as_bool().unwrap() {
                return out;
            }
            page += 1;
        }
    }

    pub async fn fields(&self, tab: &str) -> Vec<Value> {
        self.ok("GetFields", json!({"Tab": tab})).await["Fields"]
            .as_array()
            .unwrap()
            .clone()
    }

    pub async fn sandbox_get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request sent");
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.expect("json")
    }

    pub async fn sandbox_post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("request sent");
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }
}

/// `^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$`
pub fn is_site_datetime(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}

pub fn to_instant(s: &str, zone: &str) -> jiff::Timestamp {
    let dt = jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", s).expect("site datetime");
    jiff::tz::TimeZone::get(zone)
        .unwrap()
        .to_ambiguous_timestamp(dt)
        .compatible()
        .unwrap()
}

/// The field name with `role` on `tab`, read from the dump (roles are sandbox-only metadata).
pub fn role_field(dump: &Value, tab: &str, role: &str) -> String {
    dump["fields"][tab]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["Role"] == role)
        .unwrap_or_else(|| panic!("{tab} has a {role} field"))["FieldName"]
        .as_str()
        .unwrap()
        .to_string()
}
