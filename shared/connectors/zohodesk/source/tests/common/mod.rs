//! Shared helpers: a Zoho Desk sandbox holding a generated source tenant, a source pointed at it,
//! whole-collection reads, and the sandbox's own view (`/__sandbox/dump`, `/__sandbox/stats`).

#![allow(dead_code)]

use std::collections::BTreeMap;

use deskshift_core::model::RawRecord;
use deskshift_core::ports::{PageRequest, Source};
use deskshift_zohodesk::RetryConfig;
use deskshift_zohodesk_source::{ZohoDeskSource, ZohoSourceConfig};
use sandbox_zohodesk::{ZohoConfig, ZohoSandbox};
use serde_json::Value;

pub async fn sandbox(
    seed: u64,
    tickets: usize,
    tweak: impl FnOnce(&mut ZohoConfig),
) -> ZohoSandbox {
    let mut cfg = ZohoConfig {
        seed: Some(seed),
        tickets,
        default_org: false,
        ..ZohoConfig::default()
    };
    tweak(&mut cfg);
    sandbox_zohodesk::start(cfg).await.expect("sandbox starts")
}

/// A source configuration for the sandbox (short retry delays; secrets from its config).
pub fn config(sb: &ZohoSandbox) -> ZohoSourceConfig {
    let mut c = ZohoSourceConfig::for_dc("com").unwrap();
    c.connection.api_base = sb.base_url().to_string();
    c.connection.accounts_base = sb.base_url().to_string();
    c.connection.org_id = sb.org_id().to_string();
    c.connection.client_id = sb.config().client_id.clone();
    c.connection.client_secret = sb.config().client_secret.as_str().into();
    c.connection.refresh_token = sb.config().refresh_token.as_str().into();
    c.connection.retry = RetryConfig {
        max_attempts: 8,
        base_delay_ms: 20,
        max_delay_ms: 500,
        timeout_secs: 30,
    };
    c
}

/// Every record of a collection, page by page as the engine reads it.
pub async fn read_all(
    src: &ZohoDeskSource,
    collection: &str,
    since: Option<&str>,
) -> Vec<RawRecord> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = src
            .read_page(
                collection,
                &PageRequest {
                    cursor: cursor.clone(),
                    modified_since: since.map(str::to_string),
                    page_size: 200,
                },
            )
            .await
            .unwrap_or_else(|e| panic!("reading {collection}: {e}"));
        out.extend(page.records);
        match page.next {
            Some(n) => cursor = Some(n),
            None => return out,
        }
    }
}

pub async fn inspect(sb: &ZohoSandbox, what: &str) -> Value {
    reqwest::get(format!("{}/__sandbox/{what}", sb.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Requests the sandbox received, by `METHOD /route/template`.
pub async fn requests(sb: &ZohoSandbox) -> BTreeMap<String, u64> {
    let stats = inspect(sb, "stats").await;
    serde_json::from_value(stats["requests"].clone()).unwrap()
}

pub async fn token_grants(sb: &ZohoSandbox) -> u64 {
    requests(sb)
        .await
        .get("POST /oauth/v2/token")
        .copied()
        .unwrap_or(0)
}

pub fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// A PATCH/POST through the sandbox API with a token minted for the test (not the source's).
pub async fn write(sb: &ZohoSandbox, method: reqwest::Method, path: &str, body: Value) -> Value {
    let token = sb.issue_access_token();
    let r = reqwest::Client::new()
        .request(method, format!("{}{path}", sb.api_url()))
        .header("Authorization", format!("Zoho-oauthtoken {token}"))
        .header("orgId", sb.org_id())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap_or(Value::Null)
}
