//! Server configuration and the edition table of platform-apis.md 1.3.

use std::collections::BTreeMap;

use sandbox_kit::FaultConfig;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ZohoConfig {
    /// 0 = any free port on 127.0.0.1.
    pub port: u16,
    pub org_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    /// An access token valid from the start, so tests may skip the refresh call.
    pub access_token: Option<String>,
    pub access_token_ttl_secs: u64,
    /// Free | Express | Standard | Professional | Enterprise.
    pub edition: String,
    /// Overrides the edition's base + per-agent daily credits.
    pub daily_credits: Option<u64>,
    /// Overrides the edition's simultaneous-call cap.
    pub concurrency_cap: Option<u32>,
    /// Non-light agents counted for the variable part of the daily credits.
    pub agent_count: u32,
    /// Credits per call keyed by `"METHOD /api/v1/route/{template}"`; unlisted calls cost `default_credit_cost`.
    pub credit_costs: BTreeMap<String, u64>,
    pub default_credit_cost: u64,
    /// Thread bodies longer than this (in characters) come truncated from `GET .../threads/{id}`.
    pub thread_truncate_chars: usize,
    /// Body limit of multipart uploads.
    pub max_upload_bytes: usize,
    /// Starts the org with departments "Support" (default) and "Billing" and one admin agent.
    pub default_org: bool,
    pub faults: FaultConfig,
    /// When set, the org is filled with [`crate::generate`]`(seed, tickets)` at start.
    pub seed: Option<u64>,
    pub tickets: usize,
}

impl Default for ZohoConfig {
    fn default() -> Self {
        ZohoConfig {
            port: 0,
            org_id: "60001234567".into(),
            client_id: "1000.SANDBOXCLIENT".into(),
            client_secret: "sandbox-secret".into(),
            refresh_token: "1000.sandbox-refresh-token".into(),
            access_token: None,
            access_token_ttl_secs: 3600,
            edition: "Professional".into(),
            daily_credits: None,
            concurrency_cap: None,
            agent_count: 1,
            credit_costs: BTreeMap::new(),
            default_credit_cost: 1,
            thread_truncate_chars: 5000,
            max_upload_bytes: 60 * 1024 * 1024,
            default_org: true,
            faults: FaultConfig::default(),
            seed: None,
            tickets: 0,
        }
    }
}

/// (base daily credits, credits per agent, concurrency cap) per edition.
pub fn edition_limits(edition: &str) -> (u64, u64, u32) {
    match edition.to_ascii_lowercase().as_str() {
        "free" | "trial" => (5_000, 0, 5),
        "express" => (25_000, 100, 10),
        // Standard's credit figures were not captured in the research notes; these sit between Express and Professional.
        "standard" => (50_000, 250, 10),
        "enterprise" | "zoho one" | "crm plus" | "ultimate" => (100_000, 1_000, 25),
        _ => (75_000, 500, 15),
    }
}

impl ZohoConfig {
    pub fn effective_daily_credits(&self) -> u64 {
        self.daily_credits.unwrap_or_else(|| {
            let (base, per_agent, _) = edition_limits(&self.edition);
            base + per_agent * u64::from(self.agent_count)
        })
    }

    pub fn effective_concurrency_cap(&self) -> u32 {
        self.concurrency_cap
            .unwrap_or_else(|| edition_limits(&self.edition).2)
    }

    pub fn credit_cost(&self, key: &str) -> u64 {
        self.credit_costs
            .get(key)
            .copied()
            .unwrap_or(self.default_credit_cost)
    }
}
