//! Ivinex sandbox: an in-process HTTP server implementing the Ivinex call API exactly as
//! `shared/docs/ivinex-api.md` models it, plus a deterministic generator of realistic, awkward
//! helpdesk tenants ([`generate`]).
//!
//! Served on 127.0.0.1 (HTTP Basic auth on the public part):
//! - `POST /API/{GetTabs|GetFields|GetRecords|GetRelatedItems|GetAllRelatedItems|AddRecord|
//!   UpdateRecord|LinkRecords|AddAttachment|DeleteRecord}`; errors `{"Status":"Error","Message"}`.
//!   `ModifiedSince` is inclusive (`modified_date >= value`), read in the site timezone.
//! - `GET /files/{attachment_id}/{file_name}`: attachment bytes, generated from (seed, id) and
//!   streamed above 1 MiB.
//! - `/__sandbox/`: `GET dump`, `GET records/{tab}`, `POST reset`, `POST seed`, `POST|GET freeze`,
//!   `GET|DELETE stats`, `GET credentials`, `GET|PUT faults`. Never faulted, no auth.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let config = sandbox_ivinex::IvinexConfig { seed: Some(7), tickets: 50, ..Default::default() };
//! let sandbox = sandbox_ivinex::start(config).await?;
//! println!("{}", sandbox.base_url());
//! sandbox.stop().await;
//! # Ok(()) }
//! ```

mod files;
pub mod generate;
pub mod model;
mod server;

use std::collections::BTreeMap;
use std::sync::Arc;

use sandbox_kit::{FaultConfig, Faults, RunningServer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use generate::{HELPDESK_TABS, LARGE_FILE_BYTES, TABS, generate, schema};
pub use model::{
    Attachment, Content, FieldDef, FieldType, Link, LinkType, Record, TabData, TabDef, Tenant,
    UserSummary, field_name_from,
};

/// Server configuration; every field has a default (see [`IvinexConfig::default`]).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct IvinexConfig {
    /// 0 = an ephemeral port on 127.0.0.1.
    pub port: u16,
    pub site_id: String,
    /// IANA zone in which every date is written and read.
    pub timezone: String,
    pub api_user: String,
    pub api_password: String,
    /// Tabs the API user cannot read: GetFields answers no field, GetRecords no record.
    pub forbidden_tabs: Vec<String>,
    pub faults: FaultConfig,
    /// Generate a tenant of `tickets` tickets at start; None = an empty tenant with the seed-0 schema.
    pub seed: Option<u64>,
    pub tickets: usize,
    /// Requests in flight above this number are answered 429 with `Retry-After: 1`.
    pub max_concurrent: Option<usize>,
    /// false = the API user lacks "API permissions": every call answers 403.
    pub api_permission: bool,
}

impl Default for IvinexConfig {
    fn default() -> Self {
        IvinexConfig {
            port: 0,
            site_id: "acme".into(),
            timezone: "America/New_York".into(),
            api_user: "api@acme.test".into(),
            api_password: "sandbox-secret".into(),
            forbidden_tabs: Vec::new(),
            faults: FaultConfig::default(),
            seed: None,
            tickets: 100,
            max_concurrent: None,
            api_permission: true,
        }
    }
}

/// What a client needs to connect (also at `GET /__sandbox/credentials`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Credentials {
    pub base_url: String,
    pub user: String,
    pub password: String,
    pub timezone: String,
    pub site_id: String,
}

/// A running Ivinex sandbox. Stops when dropped or with [`IvinexSandbox::stop`].
pub struct IvinexSandbox {
    pub server: RunningServer,
    shared: Arc<server::Shared>,
}

/// Starts a sandbox server on 127.0.0.1.
pub async fn start(config: IvinexConfig) -> anyhow::Result<IvinexSandbox> {
    let tz = jiff::tz::TimeZone::get(&config.timezone)
        .map_err(|e| anyhow::anyhow!("unknown timezone {:?}: {e}", config.timezone))?;
    let faults = Faults::new(config.faults.clone(), server::IvinexFaults);
    let tenant = match config.seed {
        Some(seed) => {
            let tickets = config.tickets;
            let mut t = tokio::task::spawn_blocking(move || generate(seed, tickets)).await?;
            server::ensure_api_user(&mut t, &config);
            t
        }
        None => schema(0),
    };
    let port = config.port;
    let shared = Arc::new(server::Shared::new(config, tz, tenant, faults));
    let running = sandbox_kit::serve(server::router(shared.clone()), port).await?;
    let _ = shared.base_url.set(running.base_url.clone());
    Ok(IvinexSandbox {
        server: running,
        shared,
    })
}

impl IvinexSandbox {
    /// `http://127.0.0.1:<port>`; the call API is under `/API/`.
    pub fn base_url(&self) -> &str {
        &self.server.base_url
    }

    pub fn config(&self) -> &IvinexConfig {
        &self.shared.config
    }

    pub fn credentials(&self) -> Credentials {
        let c = &self.shared.config;
        Credentials {
            base_url: self.base_url().to_string(),
            user: c.api_user.clone(),
            password: c.api_password.clone(),
            timezone: c.timezone.clone(),
            site_id: c.site_id.clone(),
        }
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }

    /// A snapshot of the whole tenant.
    pub fn tenant(&self) -> Tenant {
        self.shared.read().tenant.clone()
    }

    /// Same JSON as `GET /__sandbox/dump`.
    pub fn dump(&self) -> Value {
        self.shared.dump()
    }

    /// Same JSON as `GET /__sandbox/records/{tab}`; None for an unknown tab.
    pub fn records(&self, tab: &str) -> Option<Vec<Value>> {
        self.shared.records(tab)
    }

    pub fn users(&self) -> Vec<UserSummary> {
        self.shared.read().tenant.users()
    }

    /// The field name playing `role` on `tab` in the current schema (e.g. ("Tickets", "subject")).
    pub fn field_name(&self, tab: &str, role: &str) -> Option<String> {
        self.shared.read().tenant.field_name(tab, role)
    }

    pub fn set_frozen(&self, frozen: bool) {
        self.shared
            .state
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .frozen = frozen;
    }

    pub fn is_frozen(&self) -> bool {
        self.shared.read().frozen
    }

    /// Empties every tab (schema kept).
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Replaces the tenant with `generate(seed, tickets)`; returns the record count per tab.
    pub fn seed(&self, seed: u64, tickets: usize) -> BTreeMap<String, usize> {
        self.shared.seed_generated(seed, tickets)
    }

    /// Same as `POST /__sandbox/seed` with `{"fields"?, "records"?}`; returns the created ids per tab.
    pub fn seed_records(&self, body: &Value) -> anyhow::Result<Value> {
        server::seed_records(&self.shared, body)
            .map_err(|e| anyhow::anyhow!("seed refused ({}): {}", e.0, e.1))
    }

    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Same JSON as `GET /__sandbox/stats`.
    pub fn stats(&self) -> Value {
        self.shared.stats()
    }
}
