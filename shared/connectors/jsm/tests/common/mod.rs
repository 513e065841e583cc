//! A JSM sandbox per test, the destination pointed at it, and readers of `/__sandbox/dump`.
#![allow(dead_code)]

use std::collections::BTreeMap;

use deskshift_core::model::{Activity, ActivityKind, Person};
use deskshift_core::ports::{DestField, LoadContext};
use deskshift_jsm::{Jsm, JsmConfig, RetryConfig, Secret};
use sandbox_jira::{JiraConfig, JiraSandbox, SeedData, SeedUser};
use serde_json::Value;

pub const PLATFORM: &str = "zohodesk";
pub const AGENT_EMAIL: &str = "agent.ann@acme.test";

pub struct Env {
    pub sandbox: JiraSandbox,
    pub jsm: Jsm,
    http: reqwest::Client,
}

pub fn config_for(sb: &JiraSandbox) -> JsmConfig {
    JsmConfig {
        base_url: sb.base_url().to_string(),
        email: sb.config().admin_email.clone(),
        api_token: Secret::new(sb.config().admin_api_token.clone()),
        retry: RetryConfig {
            max_attempts: 12,
            base_delay_ms: 20,
            max_delay_ms: 400,
            timeout_secs: 20,
        },
        ..JsmConfig::default()
    }
}

/// A sandbox with one agent seeded (plus `seed`), and the destination.
pub async fn start_with(mut config: JiraConfig, tweak: impl FnOnce(&mut JsmConfig)) -> Env {
    let mut seed = config.seed.take().unwrap_or_default();
    seed.users.push(SeedUser {
        display_name: "Ann Agent".into(),
        email_address: Some(AGENT_EMAIL.into()),
        ..SeedUser::default()
    });
    config.seed = Some(seed);
    let sandbox = sandbox_jira::start(config).await.expect("sandbox starts");
    let mut cfg = config_for(&sandbox);
    tweak(&mut cfg);
    let jsm = Jsm::new(cfg).expect("valid config");
    Env {
        sandbox,
        jsm,
        http: reqwest::Client::new(),
    }
}

pub async fn start() -> Env {
    start_with(JiraConfig::default(), |_| {}).await
}

pub fn seed_only(seed: SeedData) -> JiraConfig {
    JiraConfig {
        seed: Some(seed),
        ..JiraConfig::default()
    }
}

impl Env {
    /// `GET /__sandbox/dump`, over HTTP like any client.
    pub async fn dump(&self) -> Value {
        self.http
            .get(format!("{}/__sandbox/dump", self.sandbox.base_url()))
            .send()
            .await
            .expect("dump answers")
            .json()
            .await
            .expect("dump is JSON")
    }

    pub async fn stats(&self) -> Value {
        self.http
            .get(format!("{}/__sandbox/stats", self.sandbox.base_url()))
            .send()
            .await
            .expect("stats answer")
            .json()
            .await
            .expect("stats are JSON")
    }

    pub async fn issue(&self, key: &str) -> Value {
        issue_in(&self.dump().await, key)
    }

    pub async fn stop(self) {
        self.sandbox.stop().await
    }
}

pub fn issue_in(dump: &Value, key: &str) -> Value {
    dump["issues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["key"] == key)
        .cloned()
        .unwrap_or_else(|| panic!("issue {key} is not in the sandbox"))
}

pub fn count_where(dump: &Value, what: &str, f: impl Fn(&Value) -> bool) -> usize {
    dump[what]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| f(x))
        .count()
}

/// The plain text of an ADF document (the sandbox stores bodies as sent).
pub fn text(v: &Value) -> String {
    deskshift_jsm::adf::adf_text(v)
}

pub fn ctx(fields: &[DestField]) -> LoadContext {
    LoadContext {
        source_platform: PLATFORM.into(),
        custom_fields: fields
            .iter()
            .map(|f| (f.label.clone(), f.clone()))
            .collect::<BTreeMap<_, _>>()
            .into(),
        ..LoadContext::default()
    }
}

pub fn with_agents(mut c: LoadContext, agents: BTreeMap<String, String>) -> LoadContext {
    c.agents = agents.into();
    c
}

pub fn activity(id: &str, ticket: &str, public: bool, body: &str) -> Activity {
    Activity {
        source_id: id.into(),
        ticket: ticket.into(),
        kind: if public {
            ActivityKind::Email {
                inbound: true,
                from: Some("cust@example.test".into()),
                to: vec!["help@acme.test".into()],
                cc: vec![],
                subject: None,
            }
        } else {
            ActivityKind::Note
        },
        body_html: body.into(),
        author: Some(Person {
            name: Some("Zoe Writer".into()),
            email: Some("zoe@acme.test".into()),
            username: None,
        }),
        created_at: Some("2024-03-01T08:00:00Z".into()),
        public,
        custom: Default::default(),
        attachments: vec![],
    }
}
