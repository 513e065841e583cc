//! The request gate in front of every `/api/v1` route: OAuth token, orgId, query-parameter
//! whitelist per operation, read-only freeze, concurrency cap, daily credits, request statistics.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::errors::ZErr;

/// How a query parameter's value is checked.
#[derive(Clone, Copy, Debug)]
pub enum K {
    Any,
    Int(i64, i64),
    Enum(&'static [&'static str]),
    /// One of the names, optionally prefixed with `-` for descending order.
    Sort(&'static [&'static str]),
    Bool,
    Digits,
    /// Comma-separated ids.
    Ids,
    /// `<iso>,<iso>`
    Range,
    /// `apiName:value`
    CustomField,
}

pub struct Op {
    pub method: &'static str,
    pub path: &'static str,
    /// Query parameters besides `orgId` (accepted everywhere, as Common.json declares it).
    pub params: &'static [(&'static str, K)],
    /// True when the operation is in the vendor's OpenAPI files (the conformance tests cover those).
    pub in_spec: bool,
}

const MAX: i64 = i64::MAX;
const FROM: (&str, K) = ("from", K::Int(0, MAX));
const TICKET_SEARCH_SORT: &[&str] = &[
    "relevance",
    "modifiedTime",
    "createdTime",
    "customerResponseTime",
];
const CF_PARAMS: [(&str, K); 10] = [
    ("customField1", K::CustomField),
    ("customField2", K::CustomField),
    ("customField3", K::CustomField),
    ("customField4", K::CustomField),
    ("customField5", K::CustomField),
    ("customField6", K::CustomField),
    ("customField7", K::CustomField),
    ("customField8", K::CustomField),
    ("customField9", K::CustomField),
    ("customField10", K::CustomField),
];
const FIELD_MODULES: &[&str] = &[
    "tickets",
    "contacts",
    "accounts",
    "tasks",
    "calls",
    "events",
    "contracts",
    "products",
];

macro_rules! op {
    ($m:literal, $p:literal, [$($param:expr),* $(,)?]) => {
        Op { method: $m, path: $p, params: &[$($param),*], in_spec: true }
    };
    ($m:literal, $p:literal, [$($param:expr),* $(,)?], extra) => {
        Op { method: $m, path: $p, params: &[$($param),*], in_spec: false }
    };
}

pub static OPS: &[Op] = &[
    op!("GET", "/api/v1/organizations", []),
    op!("GET", "/api/v1/organizations/{organizationId}", []),
    op!(
        "GET",
        "/api/v1/departments",
        [
            (
                "chatStatus",
                K::Enum(&["AVAILABLE", "DISABLED", "NOT_CREATED", "${UNAVAILABLE}"])
            ),
            ("searchStr", K::Any),
            ("isEnabled", K::Bool),
            ("limit", K::Int(0, 200)),
            FROM,
        ]
    ),
    op!("GET", "/api/v1/departments/{departmentId}", []),
    op!(
        "GET",
        "/api/v1/agents",
        [
            ("include", K::Any),
            ("roleIds", K::Ids),
            ("searchStr", K::Any),
            ("limit", K::Int(10, 200)),
            (
                "rolePermissionType",
                K::Enum(&[
                    "AgentPublic",
                    "AgentPersonal",
                    "AgentTeamPersonal",
                    "Admin",
                    "Custom",
                    "Light"
                ])
            ),
            ("profileIds", K::Ids),
            FROM,
            ("isConfirmed", K::Bool),
            ("departmentIds", K::Ids),
            ("status", K::Enum(&["ACTIVE", "DISABLED"])),
        ]
    ),
    op!("POST", "/api/v1/agents", []),
    op!("GET", "/api/v1/agents/{agentId}", [("include", K::Any)]),
    op!(
        "GET",
        "/api/v1/accounts",
        [
            ("limit", K::Int(1, 99)),
            FROM,
            (
                "sortBy",
                K::Sort(&[
                    "website",
                    "email",
                    "phone",
                    "accountName",
                    "createdTime",
                    "modifiedTime"
                ])
            ),
        ]
    ),
    op!("POST", "/api/v1/accounts", []),
    op!("GET", "/api/v1/accounts/{accountId}", [("include", K::Any)]),
    op!("PATCH", "/api/v1/accounts/{accountId}", []),
    op!("POST", "/api/v1/accounts/moveToTrash", []),
    op!(
        "GET",
        "/api/v1/contacts",
        [
            ("include", K::Any),
            ("viewId", K::Digits),
            ("limit", K::Int(1, 99)),
            FROM,
            (
                "sortBy",
                K::Sort(&[
                    "firstName",
                    "lastName",
                    "phone",
                    "email",
                    "account",
                    "createdTime",
                    "modifiedTime"
                ])
            ),
        ]
    ),
    op!("POST", "/api/v1/contacts", []),
    op!("GET", "/api/v1/contacts/{contactId}", [("include", K::Any)]),
    op!("PATCH", "/api/v1/contacts/{contactId}", []),
    op!("POST", "/api/v1/contacts/moveToTrash", []),
    op!(
        "GET",
        "/api/v1/tickets",
        [
            ("include", K::Any),
            ("departmentId", K::Digits),
            (
                "dueDate",
                K::Enum(&[
                    "overdue",
                    "tomorrow",
                    "currentWeek",
                    "currentMonth",
                    "today"
                ])
            ),
            ("limit", K::Int(1, 100)),
            ("channel", K::Any),
            FROM,
            (
                "sortBy",
                K::Sort(&["dueDate", "createdTime", "recentThread"])
            ),
            ("assignee", K::Any),
            ("teamIds", K::Ids),
            ("receivedInDays", K::Enum(&["15", "30", "90"])),
            (
                "closedTime",
                K::Enum(&[
                    "today",
                    "yesterday",
                    "currentWeek",
                    "currentMonth",
                    "last3days",
                    "last7days",
                    "last15days",
                    "last30days"
                ])
            ),
            ("status", K::Any),
        ]
    ),
    op!("POST", "/api/v1/tickets", []),
    op!("GET", "/api/v1/tickets/{ticketId}", [("include", K::Any)]),
    op!("PATCH", "/api/v1/tickets/{ticketId}", []),
    op!("POST", "/api/v1/tickets/moveToTrash", []),
    op!(
        "GET",
        "/api/v1/tickets/{ticketId}/threads",
        [
            ("limit", K::Int(1, 200)),
            FROM,
            ("sortBy", K::Sort(&["sendDateTime"])),
        ]
    ),
    op!(
        "GET",
        "/api/v1/tickets/{ticketId}/threads/{threadId}",
        [("include", K::Any)],
        extra
    ),
    op!(
        "GET",
        "/api/v1/tickets/{ticketId}/threads/{threadId}/fullContent",
        [("include", K::Any)],
        extra
    ),
    op!(
        "GET",
        "/api/v1/tickets/{ticketId}/threads/{threadId}/attachments/{attachmentId}/content",
        [],
        extra
    ),
    op!(
        "GET",
        "/api/v1/tickets/{ticketId}/comments",
        [
            ("include", K::Any),
            ("limit", K::Int(1, 100)),
            FROM,
            ("sortBy", K::Sort(&["commentedTime"])),
        ]
    ),
    op!(
        "POST",
        "/api/v1/tickets/{ticketId}/comments",
        [("parentConversationId", K::Digits)]
    ),
    op!(
        "GET",
        "/api/v1/tickets/{ticketId}/comments/{commentId}",
        [("include", K::Any)]
    ),
    op!(
        "PATCH",
        "/api/v1/tickets/{ticketId}/comments/{commentId}",
        []
    ),
    op!(
        "DELETE",
        "/api/v1/tickets/{ticketId}/comments/{commentId}",
        []
    ),
    op!(
        "GET",
        "/api/v1/tickets/{ticketId}/comments/{commentId}/attachments/{attachmentId}/content",
        [],
        extra
    ),
    op!(
        "GET",
        "/api/v1/tasks",
        [
            ("include", K::Any),
            ("departmentId", K::Digits),
            ("limit", K::Int(1, 99)),
            FROM,
            (
                "sortBy",
                K::Sort(&[
                    "category",
                    "subject",
                    "dueDate",
                    "status",
                    "createdTime",
                    "modifiedTime",
                    "priority"
                ])
            ),
        ]
    ),
    op!("POST", "/api/v1/tasks", []),
    op!("GET", "/api/v1/tasks/{taskId}", [("include", K::Any)]),
    op!("PATCH", "/api/v1/tasks/{taskId}", []),
    op!("POST", "/api/v1/tasks/moveToTrash", []),
    op!(
        "GET",
        "/api/v1/tickets/{ticketId}/tasks",
        [
            ("include", K::Any),
            ("limit", K::Int(1, 99)),
            FROM,
            ("sortBy", K::Sort(&["dueDate", "createdTime"])),
            ("isSpam", K::Bool),
            ("isCompleted", K::Bool),
        ]
    ),
    op!(
        "GET",
        "/api/v1/products",
        [
            ("include", K::Any),
            ("viewId", K::Digits),
            ("departmentId", K::Digits),
            ("limit", K::Int(1, 100)),
            FROM,
            (
                "sortBy",
                K::Sort(&[
                    "productName",
                    "productCode",
                    "unitPrice",
                    "createdTime",
                    "modifiedTime"
                ])
            ),
            ("ownerId", K::Digits),
        ]
    ),
    op!("POST", "/api/v1/products", []),
    op!("GET", "/api/v1/products/{productId}", [("include", K::Any)]),
    op!("PATCH", "/api/v1/products/{productId}", []),
    op!("POST", "/api/v1/products/moveToTrash", []),
    op!(
        "GET",
        "/api/v1/organizationFields",
        [
            ("module", K::Enum(FIELD_MODULES)),
            ("departmentId", K::Digits)
        ]
    ),
    op!(
        "POST",
        "/api/v1/organizationFields",
        [("module", K::Enum(FIELD_MODULES))]
    ),
    op!("GET", "/api/v1/organizationFields/{fieldId}", []),
    op!(
        "GET",
        "/api/v1/fields",
        [
            ("module", K::Enum(FIELD_MODULES)),
            ("departmentId", K::Digits),
            ("apiNames", K::Any),
            ("filter", K::Any),
            ("associatedDepartments", K::Ids),
        ],
        extra
    ),
    op!(
        "POST",
        "/api/v1/fields",
        [("module", K::Enum(FIELD_MODULES))],
        extra
    ),
    op!("GET", "/api/v1/fields/{fieldId}", [], extra),
    op!("POST", "/api/v1/uploads", []),
    op!(
        "GET",
        "/api/v1/tickets/{ticketId}/attachments",
        [
            ("include", K::Any),
            ("limit", K::Int(1, 100)),
            ("isPublic", K::Bool),
            FROM,
            ("sortBy", K::Sort(&["createdTime"])),
        ]
    ),
    op!(
        "POST",
        "/api/v1/tickets/{ticketId}/attachments",
        [("isPublic", K::Bool)]
    ),
    op!(
        "PATCH",
        "/api/v1/tickets/{ticketId}/attachments/{attachmentId}",
        []
    ),
    op!(
        "DELETE",
        "/api/v1/tickets/{ticketId}/attachments/{attachmentId}",
        []
    ),
    op!(
        "GET",
        "/api/v1/tickets/{ticketId}/attachments/{attachmentId}/content",
        [],
        extra
    ),
    op!("GET", "/api/v1/tickets/{ticketId}/tags", [], extra),
    op!("POST", "/api/v1/tickets/{ticketId}/associateTag", [], extra),
    op!(
        "GET",
        "/api/v1/tags",
        [
            ("departmentId", K::Digits),
            ("searchStr", K::Any),
            ("limit", K::Int(1, 100)),
            FROM
        ],
        extra
    ),
    op!(
        "GET",
        "/api/v1/tickets/search",
        [
            ("ticketNumber", K::Any),
            ("accountName", K::Any),
            ("subject", K::Any),
            ("departmentId", K::Digits),
            ("channel", K::Any),
            ("customerResponseTimeRange", K::Range),
            ("description", K::Any),
            ("productName", K::Any),
            ("_all", K::Any),
            ("limit", K::Int(1, 100)),
            ("from", K::Int(0, 999)),
            ("dueDateRange", K::Range),
            ("sortBy", K::Sort(TICKET_SEARCH_SORT)),
            ("id", K::Digits),
            ("tag", K::Any),
            ("productId", K::Digits),
            ("contactId", K::Digits),
            ("contactName", K::Any),
            ("createdTimeRange", K::Range),
            ("priority", K::Any),
            ("assigneeId", K::Any),
            ("accountId", K::Digits),
            ("modifiedTimeRange", K::Range),
            ("category", K::Any),
            ("status", K::Any),
            ("email", K::Any),
            CF_PARAMS[0],
            CF_PARAMS[1],
            CF_PARAMS[2],
            CF_PARAMS[3],
            CF_PARAMS[4],
            CF_PARAMS[5],
            CF_PARAMS[6],
            CF_PARAMS[7],
            CF_PARAMS[8],
            CF_PARAMS[9],
        ]
    ),
    op!(
        "GET",
        "/api/v1/contacts/search",
        [
            ("lastName", K::Any),
            ("firstName", K::Any),
            ("accountName", K::Any),
            ("createdTimeRange", K::Range),
            ("limit", K::Int(1, 100)),
            ("fullName", K::Any),
            ("from", K::Int(0, 999)),
            (
                "sortBy",
                K::Sort(&[
                    "relevance",
                    "modifiedTime",
                    "createdTime",
                    "lastName",
                    "firstName"
                ])
            ),
            ("modifiedTimeRange", K::Range),
            ("id", K::Digits),
            ("_all", K::Any),
            ("email", K::Any),
            CF_PARAMS[0],
            CF_PARAMS[1],
            CF_PARAMS[2],
            CF_PARAMS[3],
            CF_PARAMS[4],
            CF_PARAMS[5],
            CF_PARAMS[6],
            CF_PARAMS[7],
            CF_PARAMS[8],
            CF_PARAMS[9],
        ]
    ),
    op!(
        "GET",
        "/api/v1/accounts/search",
        [
            ("accountName", K::Any),
            ("createdTimeRange", K::Range),
            ("limit", K::Int(1, 100)),
            FROM_999,
            ("modifiedTimeRange", K::Range),
            (
                "sortBy",
                K::Sort(&["relevance", "modifiedTime", "createdTime", "accountName"])
            ),
            ("id", K::Digits),
            ("_all", K::Any),
            CF_PARAMS[0],
            CF_PARAMS[1],
            CF_PARAMS[2],
            CF_PARAMS[3],
            CF_PARAMS[4],
            CF_PARAMS[5],
            CF_PARAMS[6],
            CF_PARAMS[7],
            CF_PARAMS[8],
            CF_PARAMS[9],
        ]
    ),
];

const FROM_999: (&str, K) = ("from", K::Int(0, 999));

/// Query parameters the sandbox accepts beyond the vendor's OpenAPI file, and why.
pub const EXTENSIONS: &[(&str, &str, &str)] = &[
    (
        "/api/v1/tickets/search",
        "email",
        "documented search field (platform-apis.md 1.5) absent from Search.json",
    ),
    (
        "/api/v1/contacts/search",
        "email",
        "lets a client match a contact by email",
    ),
    (
        "/api/v1/tickets/search",
        "customField1..10",
        "apiName:value search by an external id stored in a custom field",
    ),
    (
        "/api/v1/contacts/search",
        "customField1..10",
        "apiName:value search by an external id stored in a custom field",
    ),
    (
        "/api/v1/accounts/search",
        "customField1..10",
        "apiName:value search by an external id stored in a custom field",
    ),
];

pub fn find_op(method: &Method, path: &str) -> Option<&'static Op> {
    OPS.iter()
        .find(|o| o.method == method.as_str() && o.path == path)
}

pub fn check_value(name: &str, kind: K, value: &str) -> Result<(), ZErr> {
    let ok = match kind {
        K::Any => true,
        K::Int(min, max) => value.parse::<i64>().is_ok_and(|n| n >= min && n <= max),
        K::Enum(allowed) => allowed.contains(&value),
        K::Sort(allowed) => allowed.contains(&value.strip_prefix('-').unwrap_or(value)),
        K::Bool => matches!(value, "true" | "false"),
        K::Digits => !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()),
        K::Ids => value
            .split(',')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())),
        K::Range => parse_range(value).is_some(),
        K::CustomField => value.split_once(':').is_some_and(|(k, _)| !k.is_empty()),
    };
    if ok {
        Ok(())
    } else {
        Err(ZErr::bad_param(name))
    }
}

/// `from,to` as normalized ISO strings, comparable as text with stored times.
pub fn parse_range(value: &str) -> Option<(String, String)> {
    let (a, b) = value.split_once(',')?;
    let a = crate::model::parse_time(&serde_json::Value::String(a.trim().to_string()))?;
    let b = crate::model::parse_time(&serde_json::Value::String(b.trim().to_string()))?;
    Some((a, b))
}

fn validate_query(op: &Op, query: Option<&str>) -> Result<(), ZErr> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|_| ZErr::bad_request("Malformed query string."))?;
    for (name, value) in &pairs {
        if name == "orgId" {
            continue;
        }
        match op.params.iter().find(|(n, _)| n == name) {
            None => return Err(ZErr::extra_param(name)),
            Some((_, kind)) => check_value(name, *kind, value)?,
        }
    }
    Ok(())
}

fn bearer(req: &Request) -> Option<String> {
    let v = req
        .headers()
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let v = v.trim();
    for prefix in ["Zoho-oauthtoken ", "Bearer ", "bearer "] {
        if let Some(t) = v.strip_prefix(prefix) {
            return Some(t.trim().to_string());
        }
    }
    None
}

fn org_id(req: &Request) -> Option<String> {
    if let Some(v) = req.headers().get("orgId").and_then(|v| v.to_str().ok()) {
        return Some(v.trim().to_string());
    }
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(req.uri().query().unwrap_or("")).unwrap_or_default();
    pairs
        .into_iter()
        .find(|(k, _)| k == "orgId")
        .map(|(_, v)| v)
}

/// A call in flight, overall and on its endpoint, until dropped.
struct InFlight<'a>(&'a App, String);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        let mut c = self.0.credits.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((now, _)) = c.endpoint_in_flight.get_mut(&self.1) {
            *now = now.saturating_sub(1);
        }
    }
}

pub async fn gate(
    State(app): State<Arc<App>>,
    matched: Option<MatchedPath>,
    req: Request,
    next: Next,
) -> Response {
    let template = matched
        .as_ref()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let key = format!("{} {}", req.method(), template);
    app.count(key.clone());
    if !template.starts_with("/api/v1") {
        return next.run(req).await;
    }

    let Some(token) = bearer(&req) else {
        return ZErr::new(
            http::StatusCode::UNAUTHORIZED,
            "INVALID_OAUTH",
            "The OAuth Token is missing in the Authorization header.",
        )
        .into_response();
    };
    if !app.token_valid(&token) {
        return ZErr::invalid_oauth().into_response();
    }
    // Listing organizations is how a client discovers its orgId, so that call goes without one.
    let org_optional = template == "/api/v1/organizations";
    match org_id(&req) {
        Some(o) if o == app.cfg.org_id => {}
        Some(_) => {
            return ZErr::new(
                http::StatusCode::UNAUTHORIZED,
                "OAUTH_ORG_MISMATCH",
                "The OAuth Token does not belong to the organization given in orgId.",
            )
            .into_response();
        }
        None if org_optional => {}
        None => {
            return ZErr::new(
                http::StatusCode::BAD_REQUEST,
                "UNAUTHORIZED",
                "The orgId header or query parameter is missing.",
            )
            .into_response();
        }
    }

    let in_flight = app.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let guard = InFlight(&app, key.clone());
    {
        let mut c = app.credits.lock().unwrap_or_else(|e| e.into_inner());
        c.peak_in_flight = c.peak_in_flight.max(in_flight);
        let (now, peak) = c.endpoint_in_flight.entry(key.clone()).or_insert((0, 0));
        *now += 1;
        *peak = (*peak).max(*now);
        if in_flight > app.cfg.effective_concurrency_cap() {
            c.throttled_concurrency += 1;
            drop(c);
            drop(guard);
            let mut r = ZErr::new(
                http::StatusCode::TOO_MANY_REQUESTS,
                "TOO_MANY_REQUESTS",
                "You have exceeded the number of concurrent API calls allowed for your portal. Please try again later.",
            )
            .into_response();
            add_credit_header(&mut r, app.credits_remaining());
            return r;
        }
    }
    let Some(remaining) = app.charge(app.cfg.credit_cost(&key)) else {
        drop(guard);
        let mut r = ZErr::new(
            http::StatusCode::TOO_MANY_REQUESTS,
            "THRESHOLD_EXCEEDED",
            "The API credits allotted to your portal for the day have been exhausted.",
        )
        .into_response();
        add_credit_header(&mut r, 0);
        return r;
    };

    let mut resp = match find_op(req.method(), &template) {
        Some(op) => match validate_query(op, req.uri().query()) {
            Err(e) => e.into_response(),
            Ok(()) if req.method() != Method::GET && app.frozen.load(Ordering::SeqCst) => {
                ZErr::frozen().into_response()
            }
            Ok(()) => next.run(req).await,
        },
        None => next.run(req).await,
    };
    drop(guard);
    add_credit_header(&mut resp, remaining);
    resp
}

fn add_credit_header(resp: &mut Response, remaining: u64) {
    if let Ok(v) = HeaderValue::from_str(&remaining.to_string()) {
        resp.headers_mut().insert("X-API-CREDITS-REMAINING", v);
    }
}
