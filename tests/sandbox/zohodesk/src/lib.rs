//! A local Zoho Desk v1 simulator for deskshift's tests: one server answers the accounts host
//! (`POST /oauth/v2/token`) and the API (`/api/v1/...`), with Zoho's quirks (204 on empty lists,
//! 422 on unknown query parameters, string ids, credits and a concurrency cap), seeded fault
//! injection from `sandbox-kit`, and the `/__sandbox/` inspection API.
//!
//! Written from the vendor's OpenAPI files and docs/platform-apis.md; it shares no types with the
//! Zoho connector, so a connector's misunderstanding of the API shows up as a failure here.

// Large json! literals (full ticket shapes) need a deeper macro expansion.
#![recursion_limit = "256"]

mod api_core;
mod api_tickets;
mod app;
mod common;
mod config;
mod custom_module;
mod errors;
mod gate;
mod generate;
mod inspect;
mod model;
mod oauth;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sandbox_kit::{FaultResponder, Faults, RunningServer};
use serde_json::Value;

pub use config::{ZohoConfig, edition_limits};
pub use custom_module::custom_module_org;
pub use gate::{EXTENSIONS, K as ParamKind, OPS, Op};
pub use generate::{ZohoTenant, generate};
pub use inspect::default_departments;
pub use model::{KINDS, cf_api_name};
pub use sandbox_kit::FaultConfig;

/// Zoho's wording for injected faults.
struct ZohoFaults;

impl FaultResponder for ZohoFaults {
    fn too_many_requests(&self, retry_after_secs: Option<u64>) -> Response {
        let mut r = errors::ZErr::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TOO_MANY_REQUESTS",
            "You have exceeded the number of concurrent API calls allowed for your portal. Please try again later.",
        )
        .into_response();
        if let Some(secs) = retry_after_secs
            && let Ok(v) = http::HeaderValue::from_str(&secs.to_string())
        {
            r.headers_mut().insert(http::header::RETRY_AFTER, v);
        }
        r
    }

    fn server_error(&self, status: StatusCode) -> Response {
        let mut r = errors::ZErr::new(
            status,
            "INTERNAL_SERVER_ERROR",
            "An internal server error occurred while performing this operation.",
        )
        .into_response();
        *r.status_mut() = status;
        r
    }
}

/// A running Zoho Desk sandbox. Stops on [`ZohoSandbox::stop`] or when dropped.
pub struct ZohoSandbox {
    server: RunningServer,
    app: Arc<app::App>,
}

impl ZohoSandbox {
    /// `http://127.0.0.1:<port>`: the accounts host and the desk host at once.
    pub fn base_url(&self) -> &str {
        &self.server.base_url
    }

    /// `<base_url>/api/v1`
    pub fn api_url(&self) -> String {
        format!("{}/api/v1", self.server.base_url)
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr
    }

    pub fn config(&self) -> &ZohoConfig {
        &self.app.cfg
    }

    pub fn org_id(&self) -> &str {
        &self.app.cfg.org_id
    }

    pub fn faults(&self) -> &Faults {
        &self.app.faults
    }

    /// A valid access token, minted without a refresh grant (in-process convenience for tests).
    pub fn issue_access_token(&self) -> String {
        self.app.mint_token()
    }

    /// Expires every access token issued so far.
    pub fn expire_tokens(&self) {
        self.app.expire_tokens();
    }

    /// The same document as `GET /__sandbox/dump`, without the fault section.
    pub fn state(&self) -> Value {
        let mut v = self.app.db().dump();
        v["counters"] = self.app.counters();
        v
    }

    /// The same as `GET /__sandbox/records/{kind}`; `None` for an unknown kind.
    pub fn records(&self, kind: &str) -> Option<Value> {
        self.app.db().records(kind)
    }

    pub fn counters(&self) -> Value {
        self.app.counters()
    }

    pub fn credits_remaining(&self) -> u64 {
        self.app.credits_remaining()
    }

    pub fn set_frozen(&self, frozen: bool) {
        self.app
            .frozen
            .store(frozen, std::sync::atomic::Ordering::SeqCst);
    }

    /// Adds records given in the API's shapes (the `/__sandbox/seed` document); returns the ids assigned.
    pub fn seed(&self, doc: &Value) -> anyhow::Result<Value> {
        let mut db = self.app.db();
        inspect::seed_records(&mut db, doc, self.app.base()).map_err(|e| anyhow::anyhow!(e))
    }

    /// Loads a generated source tenant.
    pub fn load(&self, tenant: ZohoTenant) {
        inspect::load_tenant(&mut self.app.db(), tenant, self.app.base());
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }
}

fn api_routes() -> Router<Arc<app::App>> {
    use api_core as c;
    use api_tickets as t;
    Router::new()
        .route("/api/v1/organizations", get(c::organizations))
        .route(
            "/api/v1/organizations/{organizationId}",
            get(c::organization),
        )
        .route("/api/v1/departments", get(c::departments))
        .route("/api/v1/departments/{departmentId}", get(c::department_get))
        .route("/api/v1/agents", get(c::agents).post(c::agent_create))
        .route("/api/v1/agents/{agentId}", get(c::agent_get))
        .route("/api/v1/accounts", get(c::accounts).post(c::account_create))
        .route("/api/v1/accounts/search", get(t::search_accounts))
        .route("/api/v1/accounts/moveToTrash", post(c::accounts_trash))
        .route(
            "/api/v1/accounts/{accountId}",
            get(c::account_get).patch(c::account_patch),
        )
        .route("/api/v1/contacts", get(c::contacts).post(c::contact_create))
        .route("/api/v1/contacts/search", get(t::search_contacts))
        .route("/api/v1/contacts/moveToTrash", post(c::contacts_trash))
        .route(
            "/api/v1/contacts/{contactId}",
            get(c::contact_get).patch(c::contact_patch),
        )
        .route("/api/v1/products", get(c::products).post(c::product_create))
        .route("/api/v1/products/moveToTrash", post(c::products_trash))
        .route(
            "/api/v1/products/{productId}",
            get(c::product_get).patch(c::product_patch),
        )
        .route(
            "/api/v1/organizationFields",
            get(c::fields).post(c::field_create),
        )
        .route("/api/v1/organizationFields/{fieldId}", get(c::field_get))
        .route("/api/v1/fields", get(c::fields).post(c::field_create))
        .route("/api/v1/fields/{fieldId}", get(c::field_get))
        .route("/api/v1/uploads", post(c::upload))
        .route("/api/v1/tickets", get(t::tickets).post(t::ticket_create))
        .route("/api/v1/tickets/search", get(t::search_tickets))
        .route("/api/v1/tickets/moveToTrash", post(t::tickets_trash))
        .route(
            "/api/v1/tickets/{ticketId}",
            get(t::ticket_get).patch(t::ticket_patch),
        )
        .route("/api/v1/tickets/{ticketId}/threads", get(t::threads))
        .route(
            "/api/v1/tickets/{ticketId}/threads/{threadId}",
            get(t::thread_get),
        )
        .route(
            "/api/v1/tickets/{ticketId}/threads/{threadId}/fullContent",
            get(t::thread_full),
        )
        .route(
            "/api/v1/tickets/{ticketId}/threads/{threadId}/attachments/{attachmentId}/content",
            get(t::thread_attachment_content),
        )
        .route(
            "/api/v1/tickets/{ticketId}/comments",
            get(t::comments).post(t::comment_create),
        )
        .route(
            "/api/v1/tickets/{ticketId}/comments/{commentId}",
            get(t::comment_get)
                .patch(t::comment_patch)
                .delete(t::comment_delete),
        )
        .route(
            "/api/v1/tickets/{ticketId}/comments/{commentId}/attachments/{attachmentId}/content",
            get(t::comment_attachment_content),
        )
        .route(
            "/api/v1/tickets/{ticketId}/attachments",
            get(t::attachments).post(t::attachment_create),
        )
        .route(
            "/api/v1/tickets/{ticketId}/attachments/{attachmentId}",
            axum::routing::patch(t::attachment_patch).delete(t::attachment_delete),
        )
        .route(
            "/api/v1/tickets/{ticketId}/attachments/{attachmentId}/content",
            get(t::attachment_content),
        )
        .route("/api/v1/tickets/{ticketId}/tasks", get(t::ticket_tasks))
        .route("/api/v1/tickets/{ticketId}/tags", get(t::tags_of_ticket))
        .route(
            "/api/v1/tickets/{ticketId}/associateTag",
            post(t::associate_tags),
        )
        .route("/api/v1/tags", get(t::tags))
        .route("/api/v1/tasks", get(t::tasks).post(t::task_create))
        .route("/api/v1/tasks/moveToTrash", post(t::tasks_trash))
        .route(
            "/api/v1/tasks/{taskId}",
            get(t::task_get).patch(t::task_patch),
        )
        .route("/oauth/v2/token", post(oauth::token))
}

fn sandbox_routes() -> Router<Arc<app::App>> {
    Router::new()
        .route("/__sandbox/dump", get(inspect::dump))
        .route("/__sandbox/records/{kind}", get(inspect::records))
        .route("/__sandbox/reset", post(inspect::reset))
        .route("/__sandbox/seed", post(inspect::seed))
        .route("/__sandbox/freeze", post(inspect::freeze))
        .route("/__sandbox/stats", get(inspect::stats))
        .route("/__sandbox/expireTokens", post(inspect::expire_tokens))
        .route("/__sandbox/config", get(inspect::config))
}

async fn not_found() -> Response {
    errors::ZErr::not_found().into_response()
}

async fn method_not_allowed() -> Response {
    errors::ZErr::method_not_allowed().into_response()
}

/// Starts the sandbox on 127.0.0.1:`config.port`.
pub async fn start(config: ZohoConfig) -> anyhow::Result<ZohoSandbox> {
    let faults = Faults::new(config.faults.clone(), ZohoFaults);
    let body_limit = config.max_upload_bytes;
    let app = Arc::new(app::App::new(config, faults.clone()));
    if app.cfg.default_org && app.cfg.seed.is_none() {
        inspect::install_default_org(&mut app.db());
    }

    // Fault injection sits inside the gate, so injected latency occupies a concurrency slot.
    let api = faults.layer(api_routes().with_state(app.clone()));
    let api = api.route_layer(axum::middleware::from_fn_with_state(
        app.clone(),
        gate::gate,
    ));
    let router = api
        .merge(sandbox_routes().with_state(app.clone()))
        .merge(sandbox_kit::faults_router(faults))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit));

    let server = sandbox_kit::serve(router, app.cfg.port).await?;
    let _ = app.base_url.set(server.base_url.clone());
    if let Some(seed) = app.cfg.seed {
        let tenant = generate(seed, app.cfg.tickets);
        inspect::load_tenant(&mut app.db(), tenant, app.base());
    }
    Ok(ZohoSandbox { server, app })
}
