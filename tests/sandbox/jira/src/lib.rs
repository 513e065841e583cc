//! A local Jira Cloud platform (`/rest/api/3`) + Jira Service Management (`/rest/servicedeskapi`)
//! server for tests: Basic auth, ADF validation, a service-management workflow, burst and per-issue
//! rate limits, seeded fault injection and an inspection API under `/__sandbox/`.
//!
//! It is written from the published contracts (the platform OpenAPI file, the ADF schema and the
//! team's API notes), never from the connector code, so a connector's misunderstanding shows up.

// Handlers answer `Result<Response, Response>`: the error side is a finished HTTP answer, not a hot path.
#![allow(clippy::result_large_err)]

mod adf;
mod error;
mod inspect;
mod jql;
mod jsm;
mod limits;
mod model;
mod platform;
mod query;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use base64::Engine;
use sandbox_kit::{FaultConfig, FaultResponder, Faults, RunningServer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use adf::{ADF_SCHEMA, AdfValidator, adf_to_text, text_to_adf};
pub use inspect::{
    SeedAttachment, SeedComment, SeedCustomer, SeedData, SeedIssue, SeedOrganization, SeedUser,
};
pub use sandbox_kit::FaultConfig as JiraFaultConfig;

/// How the sandbox starts. Every field has a default, so `JiraConfig::default()` is a working tenant.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct JiraConfig {
    /// 0 = an ephemeral port on 127.0.0.1.
    pub port: u16,
    /// Basic auth is `admin_email:admin_api_token`; anything else gets 401.
    pub admin_email: String,
    pub admin_api_token: String,
    pub admin_display_name: String,
    pub faults: FaultConfig,
    /// Requests per second allowed per endpoint + method before `429 jira-burst-based` (None or 0 = off).
    pub burst_per_second: Option<u32>,
    /// Writes per second allowed to one issue before `429 jira-per-issue-on-write` (None or 0 = off).
    pub per_issue_writes_per_second: Option<u32>,
    /// Service desks created at start (and again after `POST /__sandbox/reset`).
    pub service_desks: Vec<ServiceDeskConfig>,
    /// Records present before the test starts (applied once, at start).
    pub seed: Option<SeedData>,
    /// Largest attachment accepted (413 above it).
    pub attachment_max_bytes: usize,
    /// Salt for generated account ids and media UUIDs, so two runs produce the same ids.
    pub id_salt: String,
}

impl Default for JiraConfig {
    fn default() -> Self {
        JiraConfig {
            port: 0,
            admin_email: "admin@sandbox.example".into(),
            admin_api_token: "sandbox-api-token".into(),
            admin_display_name: "Sandbox Admin".into(),
            faults: FaultConfig::default(),
            burst_per_second: None,
            per_issue_writes_per_second: None,
            service_desks: vec![ServiceDeskConfig::default()],
            seed: None,
            attachment_max_bytes: 20 * 1024 * 1024,
            id_salt: "deskshift-jira-sandbox".into(),
        }
    }
}

/// A service desk and its project.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct ServiceDeskConfig {
    #[serde(alias = "project_name")]
    pub name: String,
    #[serde(alias = "project_key")]
    pub project_key: String,
    /// Empty = the default request types ([`RequestTypeConfig::defaults`]).
    #[serde(alias = "request_types")]
    pub request_types: Vec<RequestTypeConfig>,
}

impl Default for ServiceDeskConfig {
    fn default() -> Self {
        ServiceDeskConfig {
            name: "Support".into(),
            project_key: "SUP".into(),
            request_types: Vec::new(),
        }
    }
}

/// A request type: its issue type (name or id) and the field ids a request may set through it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct RequestTypeConfig {
    pub name: String,
    pub description: String,
    #[serde(alias = "issue_type")]
    pub issue_type: String,
    pub fields: Vec<String>,
}

impl Default for RequestTypeConfig {
    fn default() -> Self {
        RequestTypeConfig::defaults().remove(0)
    }
}

impl RequestTypeConfig {
    pub fn defaults() -> Vec<RequestTypeConfig> {
        let common = [
            "summary",
            "description",
            "duedate",
            "priority",
            "labels",
            "components",
            "attachment",
        ];
        vec![
            RequestTypeConfig {
                name: "Get IT help".into(),
                description: "Get assistance for general IT problems and questions.".into(),
                issue_type: "Service Request".into(),
                fields: common.iter().map(|s| s.to_string()).collect(),
            },
            RequestTypeConfig {
                name: "Report a system problem".into(),
                description: "Let us know if something isn't working properly.".into(),
                issue_type: "Incident".into(),
                fields: common.iter().map(|s| s.to_string()).collect(),
            },
        ]
    }
}

pub(crate) struct Shared {
    pub config: JiraConfig,
    pub store: Mutex<model::Store>,
    pub adf: AdfValidator,
    pub base_url: OnceLock<String>,
    pub frozen: AtomicBool,
    pub limiter: Mutex<limits::Limiter>,
    pub stats: Mutex<inspect::Stats>,
    pub faults: Faults,
}

impl Shared {
    pub fn base(&self) -> &str {
        self.base_url
            .get()
            .map(String::as_str)
            .unwrap_or("http://127.0.0.1")
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, model::Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh store holding the admin account and the configured service desks.
    pub fn fresh_store(config: &JiraConfig) -> model::Store {
        let mut store = model::Store::new(&config.id_salt);
        let admin = store.add_user(
            None,
            "atlassian",
            &config.admin_display_name,
            Some(config.admin_email.clone()),
            false,
        );
        store.admin = admin;
        for desk in &config.service_desks {
            store.add_service_desk(&desk.name, &desk.project_key, &desk.request_types, false);
        }
        store
    }
}

/// A running sandbox. Stops when dropped, or with [`JiraSandbox::stop`].
pub struct JiraSandbox {
    server: RunningServer,
    shared: Arc<Shared>,
}

/// Starts the sandbox on 127.0.0.1.
pub async fn start(config: JiraConfig) -> anyhow::Result<JiraSandbox> {
    let mut store = Shared::fresh_store(&config);
    if let Some(seed) = &config.seed {
        inspect::apply_seed(&mut store, &AdfValidator::shared(), seed)
            .map_err(|e| anyhow::anyhow!("JiraConfig.seed is invalid: {e}"))?;
    }
    let faults = Faults::new(config.faults.clone(), JiraFaultResponder);
    let shared = Arc::new(Shared {
        store: Mutex::new(store),
        adf: AdfValidator::shared(),
        base_url: OnceLock::new(),
        frozen: AtomicBool::new(false),
        limiter: Mutex::new(limits::Limiter::default()),
        stats: Mutex::new(inspect::Stats::default()),
        faults: faults.clone(),
        config,
    });
    let router = build_router(shared.clone());
    let server = sandbox_kit::serve(router, shared.config.port).await?;
    let _ = shared.base_url.set(server.base_url.clone());
    Ok(JiraSandbox { server, shared })
}

fn build_router(shared: Arc<Shared>) -> Router {
    let api = platform::routes()
        .merge(jsm::routes())
        .route_layer(middleware::from_fn_with_state(shared.clone(), gate))
        .fallback(not_found)
        .with_state(shared.clone());
    let sandbox = inspect::routes()
        .with_state(shared.clone())
        .merge(sandbox_kit::faults_router(shared.faults.clone()));
    shared.faults.layer(api.merge(sandbox))
}

async fn not_found(req: Request) -> Response {
    if req.uri().path().starts_with("/rest/servicedeskapi") {
        error::jsm(
            StatusCode::NOT_FOUND,
            "The requested resource does not exist.",
        )
    } else {
        error::platform(
            StatusCode::NOT_FOUND,
            &["The requested resource does not exist."],
        )
    }
}

/// Auth, request counting, rate limits and the freeze switch, in the order Jira applies them.
async fn gate(State(sh): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let template = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let method = req.method().clone();
    let endpoint = format!("{method} {template}");
    let jsm = template.starts_with("/rest/servicedeskapi");
    let resp = gate_inner(&sh, req, next, &template, jsm).await;
    sh.stats
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .record(&endpoint, resp.status().as_u16());
    resp
}

async fn gate_inner(
    sh: &Arc<Shared>,
    req: Request,
    next: Next,
    template: &str,
    jsm: bool,
) -> Response {
    let media = template.starts_with("/file/");
    if !media {
        let ok = sandbox_kit::basic_auth(req.headers()).is_some_and(|(u, p)| {
            u.eq_ignore_ascii_case(&sh.config.admin_email) && p == sh.config.admin_api_token
        });
        if !ok {
            let mut resp = if jsm {
                error::jsm(
                    StatusCode::UNAUTHORIZED,
                    "You are not authenticated. Authentication required to perform this operation.",
                )
            } else {
                error::platform(
                    StatusCode::UNAUTHORIZED,
                    &[
                        "You are not authenticated. Authentication required to perform this operation.",
                    ],
                )
            };
            resp.headers_mut().insert(
                "WWW-Authenticate",
                HeaderValue::from_static("Basic realm=\"protected-area\""),
            );
            return resp;
        }
    }
    let method = req.method().clone();
    let write = matches!(method.as_str(), "POST" | "PUT" | "DELETE" | "PATCH")
        && template != "/rest/api/3/search/jql";
    if let Some(limit) = sh.config.burst_per_second.filter(|l| *l > 0) {
        let key = format!("{method} {template}");
        let verdict = sh
            .limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .hit_burst(&key, limit);
        if let Err(wait) = verdict {
            return limits::too_many(limits::BURST_REASON, limit, wait, jsm);
        }
    }
    if write
        && let Some(limit) = sh.config.per_issue_writes_per_second.filter(|l| *l > 0)
        && let Some(issue_id) = issue_in_path(sh, template, req.uri().path())
    {
        let verdict = sh
            .limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .hit_issue(issue_id, limit);
        if let Err(wait) = verdict {
            return limits::too_many(limits::PER_ISSUE_REASON, limit, wait, jsm);
        }
    }
    if write && sh.frozen.load(Ordering::SeqCst) {
        return if jsm {
            error::jsm(
                StatusCode::FORBIDDEN,
                "This Jira site is read-only at the moment: no changes can be made.",
            )
        } else {
            error::platform(
                StatusCode::FORBIDDEN,
                &["This Jira site is read-only at the moment: no changes can be made."],
            )
        };
    }
    next.run(req).await
}

/// The issue a request writes to, when its route has an `{issueIdOrKey}` segment.
fn issue_in_path(sh: &Shared, template: &str, path: &str) -> Option<u64> {
    let pos = template.split('/').position(|s| s == "{issueIdOrKey}")?;
    let raw = path.split('/').nth(pos)?;
    sh.lock().issue_id(raw)
}

/// Jira's wording for the kit's injected faults.
pub struct JiraFaultResponder;

impl FaultResponder for JiraFaultResponder {
    fn too_many_requests(&self, retry_after_secs: Option<u64>) -> Response {
        let mut resp = error::platform(StatusCode::TOO_MANY_REQUESTS, &["Rate limit exceeded."]);
        let h = resp.headers_mut();
        h.insert(
            "RateLimit-Reason",
            HeaderValue::from_static(limits::BURST_REASON),
        );
        if let Some(s) = retry_after_secs {
            h.insert("Retry-After", HeaderValue::from(s));
        }
        resp
    }

    fn server_error(&self, status: StatusCode) -> Response {
        let mut resp = error::platform(status, &["Internal server error."]);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert("Retry-After", HeaderValue::from_static("1"));
        }
        resp
    }
}

impl JiraSandbox {
    pub fn base_url(&self) -> &str {
        &self.server.base_url
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    pub fn config(&self) -> &JiraConfig {
        &self.shared.config
    }

    /// The `Authorization` header value for the admin account.
    pub fn auth_header(&self) -> String {
        let raw = format!(
            "{}:{}",
            self.shared.config.admin_email, self.shared.config.admin_api_token
        );
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    /// The account id of the API caller (the admin).
    pub fn admin_account_id(&self) -> String {
        self.shared.lock().admin.clone()
    }

    /// Stops accepting connections and waits for the server task to end.
    pub async fn stop(self) {
        self.server.stop().await
    }

    /// Everything, as `GET /__sandbox/dump` answers.
    pub fn dump(&self) -> Value {
        inspect::dump(&self.shared)
    }

    /// One kind of record, as `GET /__sandbox/records/{kind}` answers (None for an unknown kind).
    pub fn records(&self, kind: &str) -> Option<Value> {
        inspect::records(&self.shared, kind)
    }

    /// Request counters per endpoint, as `GET /__sandbox/stats` answers.
    pub fn stats(&self) -> Value {
        self.shared
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .to_json()
    }

    /// Adds pre-existing records; answers the ids/keys created.
    pub fn seed(&self, seed: &SeedData) -> Result<Value, String> {
        let mut store = self.shared.lock();
        inspect::apply_seed(&mut store, &self.shared.adf, seed)
    }

    /// Empties the tenant (the configured service desks are recreated, config and faults are kept).
    pub fn reset(&self) {
        inspect::reset(&self.shared)
    }

    /// While frozen every write through the public API answers 403.
    pub fn set_frozen(&self, frozen: bool) {
        self.shared.frozen.store(frozen, Ordering::SeqCst)
    }

    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }
}
