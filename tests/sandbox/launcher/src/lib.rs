//! Starts the three sandbox servers together, the way `deskshift sandbox` and `deskshift demo`
//! use them: a seeded Ivinex tenant, a Zoho Desk org prepared the way an admin would before a
//! migration (departments named as the tenant's, most of the tenant's active users already agents),
//! and a Jira Service Management site.

use sandbox_ivinex::{IvinexConfig, IvinexSandbox};
use sandbox_jira::{JiraConfig, JiraSandbox};
use sandbox_kit::FaultConfig;
use sandbox_zohodesk::{ZohoConfig, ZohoSandbox};
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Clone, Debug)]
pub struct SandboxOptions {
    pub seed: u64,
    pub tickets: usize,
    /// 0 = ephemeral ports.
    pub ivinex_port: u16,
    pub zoho_port: u16,
    pub jira_port: u16,
    /// Applied to the Ivinex and Zoho Desk servers.
    pub faults: FaultConfig,
    /// Zoho Desk edition of the destination org.
    pub zoho_edition: String,
    /// Every n-th active Ivinex user has no Zoho Desk agent (the provisioning queue); 0 = all match.
    pub missing_agent_every: usize,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            seed: 42,
            tickets: 300,
            ivinex_port: 0,
            zoho_port: 0,
            jira_port: 0,
            faults: FaultConfig::default(),
            zoho_edition: "Professional".into(),
            missing_agent_every: 7,
        }
    }
}

pub struct Sandboxes {
    pub ivinex: IvinexSandbox,
    pub zoho: ZohoSandbox,
    pub jira: JiraSandbox,
}

/// Where the servers are and how to log in (sandbox credentials only).
#[derive(Clone, Debug, Serialize)]
pub struct SandboxInfo {
    pub ivinex: Value,
    pub zoho: Value,
    pub jira: Value,
}

pub async fn start_all(opts: &SandboxOptions) -> anyhow::Result<Sandboxes> {
    let ivinex = sandbox_ivinex::start(IvinexConfig {
        port: opts.ivinex_port,
        seed: Some(opts.seed),
        tickets: opts.tickets,
        faults: opts.faults.clone(),
        ..Default::default()
    })
    .await?;
    let zoho = sandbox_zohodesk::start(ZohoConfig {
        port: opts.zoho_port,
        edition: opts.zoho_edition.clone(),
        faults: opts.faults.clone(),
        ..Default::default()
    })
    .await?;
    prepare_zoho_org(&ivinex, &zoho, opts.missing_agent_every)?;
    let jira = sandbox_jira::start(JiraConfig {
        port: opts.jira_port,
        ..Default::default()
    })
    .await?;
    Ok(Sandboxes { ivinex, zoho, jira })
}

/// Seeds the Zoho Desk org with the tenant's departments and agents for most active users.
pub fn prepare_zoho_org(
    ivinex: &IvinexSandbox,
    zoho: &ZohoSandbox,
    missing_every: usize,
) -> anyhow::Result<()> {
    let tenant = ivinex.tenant();
    let existing: Vec<String> = zoho
        .records("departments")
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|d| d.get("name").and_then(Value::as_str).map(str::to_string))
        .collect();
    let departments: Vec<Value> = tenant
        .tabs
        .iter()
        .find(|t| t.def.name == "Tickets")
        .and_then(|t| {
            t.def
                .role_index("department")
                .map(|i| t.def.fields[i].options.clone())
        })
        .unwrap_or_default()
        .into_iter()
        .filter(|d| !existing.iter().any(|e| e.eq_ignore_ascii_case(d)))
        .map(|d| json!({"name": d, "isEnabled": true}))
        .collect();
    let agents: Vec<Value> = ivinex
        .users()
        .iter()
        .filter(|u| u.active && !u.email.is_empty())
        .enumerate()
        .filter(|(i, _)| missing_every == 0 || (i + 1) % missing_every != 0)
        .map(|(_, u)| {
            json!({"firstName": u.first_name, "lastName": u.last_name, "emailId": u.email, "status": "ACTIVE", "isConfirmed": true})
        })
        .collect();
    zoho.seed(&json!({"departments": departments, "agents": agents}))?;
    Ok(())
}

impl Sandboxes {
    pub fn info(&self) -> SandboxInfo {
        let iv = self.ivinex.credentials();
        SandboxInfo {
            ivinex: json!({"base_url": iv.base_url, "user": iv.user, "password": iv.password, "timezone": iv.timezone}),
            zoho: zoho_info(&self.zoho),
            jira: jira_info(&self.jira),
        }
    }

    pub async fn stop(self) {
        self.ivinex.stop().await;
        self.zoho.stop().await;
        self.jira.stop().await;
    }
}

/// The second path's sandboxes: a generated Zoho Desk tenant as the source, and a Jira Service
/// Management site prepared the way an admin would before the migration (one service project per
/// Zoho department, the Zoho agents as Jira users).
pub struct ZohoJsmSandboxes {
    pub zoho: ZohoSandbox,
    pub jira: JiraSandbox,
}

pub async fn start_zoho_jsm(opts: &SandboxOptions) -> anyhow::Result<ZohoJsmSandboxes> {
    let zoho = sandbox_zohodesk::start(ZohoConfig {
        port: opts.zoho_port,
        edition: "Enterprise".into(),
        default_org: false,
        seed: Some(opts.seed),
        tickets: opts.tickets,
        faults: opts.faults.clone(),
        ..Default::default()
    })
    .await?;
    let records = |kind: &str| {
        zoho.records(kind)
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    };
    let mut desks = Vec::new();
    let mut keys_used = std::collections::BTreeSet::new();
    for d in records("departments") {
        let name = d
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("Support")
            .to_string();
        let mut key: String = name
            .split_whitespace()
            .filter_map(|w| w.chars().next())
            .collect::<String>()
            .to_uppercase();
        key.retain(|c| c.is_ascii_alphabetic());
        if key.len() < 2 {
            key = name
                .chars()
                .filter(|c| c.is_ascii_alphabetic())
                .take(3)
                .collect::<String>()
                .to_uppercase();
        }
        while !keys_used.insert(key.clone()) {
            key.push('X');
        }
        desks.push(sandbox_jira::ServiceDeskConfig {
            name,
            project_key: key,
            request_types: vec![],
        });
    }
    let users = records("agents")
        .iter()
        .filter_map(|a| {
            let email = a.get("emailId").and_then(Value::as_str)?.to_string();
            let name = a
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or(&email)
                .to_string();
            Some(sandbox_jira::SeedUser {
                account_id: None,
                display_name: name,
                email_address: Some(email),
                account_type: None,
            })
        })
        .collect();
    let jira = sandbox_jira::start(JiraConfig {
        port: opts.jira_port,
        service_desks: if desks.is_empty() {
            JiraConfig::default().service_desks
        } else {
            desks
        },
        seed: Some(sandbox_jira::SeedData {
            users,
            ..Default::default()
        }),
        ..Default::default()
    })
    .await?;
    Ok(ZohoJsmSandboxes { zoho, jira })
}

impl ZohoJsmSandboxes {
    pub fn info(&self) -> SandboxInfo {
        SandboxInfo {
            ivinex: Value::Null,
            zoho: zoho_info(&self.zoho),
            jira: jira_info(&self.jira),
        }
    }

    pub async fn stop(self) {
        self.zoho.stop().await;
        self.jira.stop().await;
    }
}

fn zoho_info(zoho: &ZohoSandbox) -> Value {
    let c = zoho.config();
    json!({
        "api_base": zoho.base_url(),
        "accounts_base": zoho.base_url(),
        "org_id": zoho.org_id(),
        "client_id": c.client_id,
        "client_secret": c.client_secret,
        "refresh_token": c.refresh_token,
        "edition": c.edition,
    })
}

fn jira_info(jira: &JiraSandbox) -> Value {
    let c = jira.config();
    json!({"base_url": jira.base_url(), "email": c.admin_email, "api_token": c.admin_api_token})
}
