//! Shared setup of the REST tests: a Zoho Desk sandbox and a destination pointed at it.

#![allow(dead_code)]

use std::collections::BTreeMap;

use deskshift_core::model::*;
use deskshift_core::ports::{DestField, LoadContext};
use deskshift_zohodesk::{RetryConfig, Secret, ZohoDeskConfig};
pub use sandbox_zohodesk::{ZohoConfig, ZohoSandbox};
use serde_json::Value;

pub const SECRET: &str = "sandbox-secret-Xq9";
pub const REFRESH: &str = "1000.refresh-token-Zk4";

pub fn sandbox_config() -> ZohoConfig {
    ZohoConfig {
        client_secret: SECRET.into(),
        refresh_token: REFRESH.into(),
        ..ZohoConfig::default()
    }
}

pub async fn start(cfg: ZohoConfig) -> ZohoSandbox {
    sandbox_zohodesk::start(cfg).await.expect("sandbox starts")
}

pub fn dest_config(sb: &ZohoSandbox) -> ZohoDeskConfig {
    ZohoDeskConfig {
        api_base: sb.base_url().to_string(),
        accounts_base: sb.base_url().to_string(),
        org_id: sb.org_id().to_string(),
        client_id: sb.config().client_id.clone(),
        client_secret: Secret::new(SECRET),
        refresh_token: Secret::new(REFRESH),
        concurrency_cap: None,
        default_department: None,
        placeholder_contact_email: "unknown-requester@deskshift.invalid".into(),
        retry: RetryConfig {
            max_attempts: 10,
            base_delay_ms: 5,
            max_delay_ms: 100,
            timeout_secs: 10,
        },
        token_cache: Default::default(),
    }
}

pub async fn get_json(sb: &ZohoSandbox, path: &str) -> Value {
    reqwest::get(format!("{}{path}", sb.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub async fn post_json(sb: &ZohoSandbox, path: &str, body: Value) -> Value {
    reqwest::Client::new()
        .post(format!("{}{path}", sb.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub async fn set_faults(sb: &ZohoSandbox, faults: Value) {
    let r = reqwest::Client::new()
        .put(format!("{}/__sandbox/faults", sb.base_url()))
        .json(&faults)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "fault config accepted");
}

pub async fn records(sb: &ZohoSandbox, kind: &str) -> Vec<Value> {
    match get_json(sb, &format!("/__sandbox/records/{kind}")).await {
        Value::Array(a) => a,
        other => panic!("records/{kind}: {other}"),
    }
}

/// Live (not trashed) records of a kind.
pub async fn live(sb: &ZohoSandbox, kind: &str) -> Vec<Value> {
    records(sb, kind)
        .await
        .into_iter()
        .filter(|r| r.get("isTrashed") != Some(&Value::Bool(true)))
        .collect()
}

pub async fn stat(sb: &ZohoSandbox, key: &str) -> u64 {
    get_json(sb, "/__sandbox/stats").await["requests"][key]
        .as_u64()
        .unwrap_or(0)
}

pub fn ctx(fields: &[DestField]) -> LoadContext {
    LoadContext {
        source_platform: "ivinex".into(),
        custom_fields: fields
            .iter()
            .map(|f| (f.label.clone(), f.clone()))
            .collect::<BTreeMap<_, _>>()
            .into(),
        ..LoadContext::default()
    }
}

pub fn account(id: &str) -> Account {
    Account {
        source_id: id.into(),
        name: format!("Acme {id}"),
        phone: Some("+1 555 0100".into()),
        email: Some(format!("info-{id}@acme.test")),
        website: Some("https://acme.test".into()),
        city: Some("Springfield".into()),
        zip: Some("12345".into()),
        ..Account::default()
    }
}

pub fn contact(id: &str, account: Option<&str>) -> Contact {
    Contact {
        source_id: id.into(),
        first_name: Some("Ann".into()),
        last_name: format!("Lee {id}"),
        email: Some(format!("ann-{id}@acme.test")),
        phone: Some("+1 555 0101".into()),
        account: account.map(str::to_string),
        ..Contact::default()
    }
}

pub fn ticket(id: &str, contact: Option<&str>) -> Ticket {
    Ticket {
        source_id: id.into(),
        subject: format!("Printer on fire {id}"),
        description_html: Some("<p>It <b>burns</b></p>".into()),
        status: Some("Open".into()),
        priority: Some("High".into()),
        department: Some("Billing".into()),
        assignee: Some(Person {
            email: Some("Admin@Example.com".into()),
            ..Person::default()
        }),
        contact: contact.map(str::to_string),
        due_date: Some("2025-03-01".into()),
        created_at: Some("2024-11-02T09:15:00Z".into()),
        created_by: Some(Person {
            name: Some("Zed <ops>".into()),
            email: Some("zed@acme.test".into()),
            ..Person::default()
        }),
        ..Ticket::default()
    }
}

pub fn email(id: &str, ticket: &str, inbound: bool) -> Activity {
    Activity {
        source_id: id.into(),
        ticket: ticket.into(),
        kind: ActivityKind::Email {
            inbound,
            from: Some("ann@acme.test".into()),
            to: vec!["help@desk.test".into()],
            cc: vec!["boss@acme.test".into()],
            subject: Some("Re: fire".into()),
        },
        body_html: "<p>Still burning</p>".into(),
        author: Some(Person {
            email: Some("ann@acme.test".into()),
            name: Some("Ann Lee".into()),
            ..Person::default()
        }),
        created_at: Some("2024-11-02T10:00:00Z".into()),
        public: true,
        custom: BTreeMap::new(),
        attachments: vec![],
    }
}

pub fn call(id: &str, ticket: &str) -> Activity {
    Activity {
        source_id: id.into(),
        ticket: ticket.into(),
        kind: ActivityKind::Call {
            disposition: Some("Left voicemail".into()),
            duration_secs: Some(125),
        },
        body_html: "<p>Called back</p>".into(),
        author: Some(Person {
            email: Some("admin@example.com".into()),
            ..Person::default()
        }),
        created_at: Some("2024-11-03T11:00:00Z".into()),
        public: false,
        custom: BTreeMap::new(),
        attachments: vec![],
    }
}

pub fn task(id: &str, ticket: Option<&str>) -> Task {
    Task {
        source_id: id.into(),
        ticket: ticket.map(str::to_string),
        subject: format!("Buy extinguisher {id}"),
        description: Some("red one".into()),
        due_date: Some("2025-04-01".into()),
        status: Some("In Progress".into()),
        priority: Some("High".into()),
        owner: Some(Person {
            email: Some("admin@example.com".into()),
            ..Person::default()
        }),
        ..Task::default()
    }
}

/// The value a sandbox record holds in the custom field `api`.
pub fn cf(rec: &Value, api: &str) -> Option<String> {
    rec.get("cf")
        .and_then(|c| c.get(api))
        .and_then(Value::as_str)
        .map(str::to_string)
}
