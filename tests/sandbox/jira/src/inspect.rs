//! The inspection API under `/__sandbox/` (no auth, never faulted) and the seed format.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::Shared;
use crate::adf::{AdfValidator, text_to_adf};
use crate::model::*;

type S = State<Arc<Shared>>;

/// Request counters per `METHOD /route/template`, with a breakdown by status code.
#[derive(Default)]
pub struct Stats {
    total: u64,
    endpoints: BTreeMap<String, (u64, BTreeMap<u16, u64>)>,
}

impl Stats {
    pub fn record(&mut self, endpoint: &str, status: u16) {
        self.total += 1;
        let e = self.endpoints.entry(endpoint.to_string()).or_default();
        e.0 += 1;
        *e.1.entry(status).or_default() += 1;
    }

    pub fn to_json(&self) -> Value {
        let endpoints: Map<String, Value> = self
            .endpoints
            .iter()
            .map(|(k, (n, by))| (k.clone(), json!({"count": n, "by_status": by.iter().map(|(s, c)| (s.to_string(), json!(c))).collect::<Map<_, _>>()})))
            .collect();
        json!({"total": self.total, "endpoints": endpoints})
    }
}

// ---------------------------------------------------------------- seed format

/// Records to add before a test (`POST /__sandbox/seed`, or `JiraConfig::seed`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeedData {
    pub users: Vec<SeedUser>,
    pub customers: Vec<SeedCustomer>,
    pub organizations: Vec<SeedOrganization>,
    pub issues: Vec<SeedIssue>,
    #[serde(alias = "serviceDesks")]
    pub service_desks: Vec<crate::ServiceDeskConfig>,
}

/// An agent (`atlassian`) or app account.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedUser {
    pub account_id: Option<String>,
    pub display_name: String,
    pub email_address: Option<String>,
    /// `atlassian` (default), `app` or `customer`.
    pub account_type: Option<String>,
}

/// A portal customer, optionally already added to service desks (by id or project key).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedCustomer {
    pub account_id: Option<String>,
    pub email: String,
    pub display_name: String,
    pub service_desks: Vec<String>,
}

/// An organization with members (account ids or e-mails) and the service desks it is linked to.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedOrganization {
    pub name: String,
    pub members: Vec<String>,
    pub service_desks: Vec<String>,
}

/// A comment: `body` is ADF, or a string turned into paragraphs.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedComment {
    pub body: Value,
    /// Default true; false = internal.
    pub public: Option<bool>,
    pub author: Option<String>,
}

/// An attachment given as UTF-8 `text` or `base64` bytes.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedAttachment {
    pub filename: String,
    pub mime_type: Option<String>,
    pub text: Option<String>,
    pub base64: Option<String>,
}

/// An issue. `project` is a key; `issueType`/`status`/`priority` are names or ids; `fields` holds
/// custom field values in their stored form (e.g. a string for a textfield).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedIssue {
    pub project: String,
    pub issue_type: Option<String>,
    pub summary: String,
    pub description: Option<Value>,
    pub status: Option<String>,
    pub labels: Vec<String>,
    pub priority: Option<String>,
    pub duedate: Option<String>,
    pub reporter: Option<String>,
    pub assignee: Option<String>,
    pub parent: Option<String>,
    pub request_type_id: Option<String>,
    pub fields: Map<String, Value>,
    pub properties: Map<String, Value>,
    pub comments: Vec<SeedComment>,
    pub attachments: Vec<SeedAttachment>,
}

fn seed_doc(adf: &AdfValidator, v: &Value, what: &str) -> Result<Value, String> {
    match v {
        Value::String(s) => Ok(text_to_adf(s)),
        other => {
            adf.check(other).map_err(|e| format!("{what}: {e}"))?;
            Ok(other.clone())
        }
    }
}

fn seed_desks(store: &Store, refs: &[String], what: &str) -> Result<Vec<u64>, String> {
    refs.iter()
        .map(|r| {
            store
                .desk(r)
                .map(|d| d.id)
                .ok_or_else(|| format!("{what}: service desk '{r}' does not exist"))
        })
        .collect()
}

/// Adds the records and answers what was created. Stops at the first invalid record.
pub fn apply_seed(store: &mut Store, adf: &AdfValidator, seed: &SeedData) -> Result<Value, String> {
    let mut desks = Vec::new();
    for d in &seed.service_desks {
        if d.project_key.is_empty() {
            return Err("service_desks: projectKey is required".into());
        }
        desks.push(
            store
                .add_service_desk(&d.name, &d.project_key, &d.request_types, true)
                .to_string(),
        );
    }
    let mut users = Vec::new();
    for u in &seed.users {
        if let Some(e) = &u.email_address
            && store.user_by_email(e).is_some()
        {
            return Err(format!("users: an account with e-mail {e} already exists"));
        }
        let t = u.account_type.as_deref().unwrap_or("atlassian");
        users.push(store.add_user(
            u.account_id.clone(),
            t,
            &u.display_name,
            u.email_address.clone(),
            true,
        ));
    }
    let mut customers = Vec::new();
    for c in &seed.customers {
        if store.user_by_email(&c.email).is_some() {
            return Err(format!(
                "customers: an account with e-mail {} already exists",
                c.email
            ));
        }
        let desk_ids = seed_desks(store, &c.service_desks, "customers")?;
        let name = if c.display_name.is_empty() {
            c.email.clone()
        } else {
            c.display_name.clone()
        };
        let id = store.add_user(
            c.account_id.clone(),
            "customer",
            &name,
            Some(c.email.clone()),
            true,
        );
        for d in desk_ids {
            store
                .service_desks
                .get_mut(&d)
                .expect("desk exists")
                .customers
                .insert(id.clone());
        }
        customers.push(id);
    }
    let mut orgs = Vec::new();
    for o in &seed.organizations {
        if o.name.is_empty()
            || store
                .organizations
                .values()
                .any(|x| x.name.eq_ignore_ascii_case(&o.name))
        {
            return Err(format!(
                "organizations: the name '{}' is empty or already used",
                o.name
            ));
        }
        let members = o
            .members
            .iter()
            .map(|m| {
                store
                    .resolve_user(m)
                    .map(|u| u.account_id.clone())
                    .ok_or_else(|| format!("organizations: member '{m}' does not exist"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let desk_ids = seed_desks(store, &o.service_desks, "organizations")?;
        let id = store.next_org_id;
        store.next_org_id += 1;
        store.organizations.insert(
            id,
            Organization {
                id,
                name: o.name.clone(),
                members: members.into_iter().collect(),
                created_ms: now_ms(),
                seeded: true,
            },
        );
        for d in desk_ids {
            store
                .service_desks
                .get_mut(&d)
                .expect("desk exists")
                .organizations
                .insert(id);
        }
        orgs.push(id.to_string());
    }
    let mut issues = Vec::new();
    for (n, s) in seed.issues.iter().enumerate() {
        let what = format!("issues[{n}]");
        let pk = store
            .project(&s.project)
            .map(|p| p.key.clone())
            .ok_or_else(|| format!("{what}: project '{}' does not exist", s.project))?;
        let desk = store.desk_for_project(&pk).cloned();
        let default_type = if desk.is_some() {
            "Service Request"
        } else {
            "Task"
        };
        let itype = issue_type(s.issue_type.as_deref().unwrap_or(default_type))
            .ok_or_else(|| format!("{what}: unknown issue type"))?;
        let parent = match &s.parent {
            Some(p) => Some(
                store
                    .issue_id(p)
                    .ok_or_else(|| format!("{what}: parent '{p}' does not exist"))?,
            ),
            None => None,
        };
        if itype.subtask != parent.is_some() {
            return Err(format!(
                "{what}: sub-tasks need a parent and only sub-tasks may have one"
            ));
        }
        let wf = store.projects[&pk].workflow;
        let status = match &s.status {
            Some(st) => wf
                .status_by_name(st)
                .ok_or_else(|| format!("{what}: unknown status '{st}'"))?,
            None => wf.status(wf.initial),
        };
        let user = |store: &Store, who: &Option<String>| -> Result<Option<String>, String> {
            match who {
                Some(w) => store
                    .resolve_user(w)
                    .map(|u| Some(u.account_id.clone()))
                    .ok_or_else(|| format!("{what}: user '{w}' does not exist")),
                None => Ok(None),
            }
        };
        let reporter = user(store, &s.reporter)?;
        let assignee = user(store, &s.assignee)?;
        for (k, _) in &s.fields {
            if store.field(k).is_none() {
                return Err(format!("{what}: custom field '{k}' does not exist"));
            }
        }
        let description = s
            .description
            .as_ref()
            .filter(|d| !d.is_null())
            .map(|d| seed_doc(adf, d, &what))
            .transpose()?;
        let mut comments = Vec::new();
        for c in &s.comments {
            let author = match &c.author {
                Some(a) => store
                    .resolve_user(a)
                    .map(|u| u.account_id.clone())
                    .ok_or_else(|| format!("{what}: comment author '{a}' does not exist"))?,
                None => store.admin.clone(),
            };
            comments.push((
                author,
                seed_doc(adf, &c.body, &what)?,
                c.public.unwrap_or(true),
            ));
        }
        let mut issue = store.new_issue(&pk, itype.id, s.summary.clone(), true);
        issue.description = description;
        issue.labels = s.labels.clone();
        issue.priority_id = s
            .priority
            .as_deref()
            .and_then(|p| {
                PRIORITIES
                    .iter()
                    .find(|x| x.0 == p || x.1.eq_ignore_ascii_case(p))
            })
            .map(|p| p.0.to_string())
            .or(issue.priority_id);
        issue.duedate = s.duedate.clone();
        if reporter.is_some() {
            issue.reporter = reporter;
        }
        issue.assignee = assignee;
        issue.parent = parent;
        issue.status_id = status.id;
        if status.category == "done" {
            issue.resolution = true;
            issue.resolution_ms = Some(issue.created_ms);
        }
        issue.custom = s
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        issue.properties = s
            .properties
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(d) = &desk {
            let rt = match &s.request_type_id {
                Some(r) => {
                    d.request_types
                        .iter()
                        .find(|t| &t.id.to_string() == r)
                        .ok_or_else(|| format!("{what}: request type '{r}' does not exist"))?
                        .id
                }
                None => d.request_types.first().map(|t| t.id).unwrap_or(0),
            };
            issue.request = Some(RequestInfo {
                service_desk_id: d.id,
                request_type_id: rt,
            });
        }
        let id = issue.id;
        issues.push(issue.key.clone());
        store.insert_issue(issue);
        for (author, body, public) in comments {
            store.add_comment(id, &author, body, public, None, Vec::new());
        }
        for a in &s.attachments {
            let data = match (&a.text, &a.base64) {
                (Some(t), _) => bytes::Bytes::from(t.clone().into_bytes()),
                (None, Some(b)) => bytes::Bytes::from(
                    base64::engine::general_purpose::STANDARD
                        .decode(b)
                        .map_err(|e| format!("{what}: attachment base64: {e}"))?,
                ),
                (None, None) => bytes::Bytes::new(),
            };
            let mime = a
                .mime_type
                .clone()
                .unwrap_or_else(|| crate::platform::guess_mime(&a.filename).to_string());
            let admin = store.admin.clone();
            store.add_attachment(id, &a.filename, &mime, data, &admin);
        }
    }
    Ok(
        json!({"service_desks": desks, "users": users, "customers": customers, "organizations": orgs, "issues": issues}),
    )
}

// ---------------------------------------------------------------- dump and records

fn dump_user(u: &User) -> Value {
    json!({"accountId": u.account_id, "accountType": u.account_type, "displayName": u.display_name, "emailAddress": u.email, "active": u.active, "seeded": u.seeded})
}

fn dump_attachment(a: &Attachment, issue_key: &str) -> Value {
    json!({
        "id": a.id.to_string(),
        "issueId": a.issue_id.to_string(),
        "issueKey": issue_key,
        "filename": a.filename,
        "mimeType": a.mime_type,
        "size": a.data.len(),
        "md5": a.md5,
        "mediaUuid": a.media_uuid,
        "author": a.author,
        "created": jira_time(a.created_ms),
    })
}

fn dump_comment(c: &Comment, issue_key: &str) -> Value {
    json!({
        "id": c.id.to_string(),
        "issueKey": issue_key,
        "author": c.author,
        "body": c.body,
        "public": c.public,
        "visibility": c.visibility,
        "properties": c.properties.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
        "created": jira_time(c.created_ms),
    })
}

fn dump_issue(store: &Store, base: &str, i: &Issue) -> Value {
    let wf = store
        .projects
        .get(&i.project_key)
        .map(|p| p.workflow)
        .unwrap_or(&SERVICE_WORKFLOW);
    json!({
        "id": i.id.to_string(),
        "key": i.key,
        "project": i.project_key,
        "issueType": issue_type(&i.issue_type_id).map(|t| t.name).unwrap_or("?"),
        "status": wf.status(i.status_id).name,
        "resolved": i.resolution,
        "parent": i.parent.and_then(|p| store.issues.get(&p)).map(|p| p.key.clone()),
        "subtasks": store.subtasks(i.id).iter().filter_map(|s| store.issues.get(s)).map(|s| s.key.clone()).collect::<Vec<_>>(),
        "request": i.request.as_ref().map(|r| json!({"serviceDeskId": r.service_desk_id.to_string(), "requestTypeId": r.request_type_id.to_string()})),
        "fields": render_fields(store, base, i),
        "comments": i.comments.iter().map(|c| dump_comment(c, &i.key)).collect::<Vec<_>>(),
        "attachments": i.attachments.iter().filter_map(|a| store.attachments.get(a)).map(|a| dump_attachment(a, &i.key)).collect::<Vec<_>>(),
        "properties": i.properties,
        "seeded": i.seeded,
    })
}

fn dump_field(cf: &CustomField) -> Value {
    json!({
        "id": cf.id(),
        "name": cf.name,
        "description": cf.description,
        "type": cf.type_key(),
        "searcherKey": cf.searcher_key,
        "contexts": cf.contexts.iter().map(|c| json!({
            "id": c.id.to_string(),
            "name": c.name,
            "projectIds": c.project_ids,
            "issueTypeIds": c.issue_type_ids,
            "options": c.options.iter().map(|o| json!({"id": o.id.to_string(), "value": o.value, "disabled": o.disabled})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

pub const KINDS: &[&str] = &[
    "users",
    "customers",
    "projects",
    "service_desks",
    "organizations",
    "issues",
    "tickets",
    "comments",
    "attachments",
    "temporary_attachments",
    "fields",
    "components",
    "links",
];

fn kind(store: &Store, base: &str, k: &str) -> Option<Value> {
    let v = match k {
        "users" => store.users.values().filter(|u| u.account_type != "customer").map(dump_user).collect(),
        "customers" => store.users.values().filter(|u| u.account_type == "customer").map(dump_user).collect(),
        "projects" => store
            .projects
            .values()
            .map(|p| json!({"id": p.id.to_string(), "key": p.key, "name": p.name, "workflow": p.workflow.name, "seeded": p.seeded}))
            .collect(),
        "service_desks" => store
            .service_desks
            .values()
            .map(|d| {
                json!({
                    "id": d.id.to_string(),
                    "projectKey": d.project_key,
                    "customers": d.customers,
                    "organizations": d.organizations.iter().map(|o| o.to_string()).collect::<Vec<_>>(),
                    "requestTypes": d.request_types.iter().map(|r| json!({"id": r.id.to_string(), "name": r.name, "issueTypeId": r.issue_type_id, "fields": r.fields})).collect::<Vec<_>>(),
                    "seeded": d.seeded,
                })
            })
            .collect(),
        "organizations" => store
            .organizations
            .values()
            .map(|o| json!({"id": o.id.to_string(), "name": o.name, "members": o.members, "seeded": o.seeded}))
            .collect(),
        "issues" | "tickets" => store.issues.values().map(|i| dump_issue(store, base, i)).collect(),
        "comments" => store.issues.values().flat_map(|i| i.comments.iter().map(|c| dump_comment(c, &i.key))).collect(),
        "attachments" => store
            .attachments
            .values()
            .map(|a| dump_attachment(a, store.issues.get(&a.issue_id).map(|i| i.key.as_str()).unwrap_or("")))
            .collect(),
        "temporary_attachments" => store
            .temp_attachments
            .values()
            .map(|t| json!({"temporaryAttachmentId": t.id, "serviceDeskId": t.service_desk_id.to_string(), "fileName": t.filename, "size": t.data.len(), "md5": md5_hex(&t.data)}))
            .collect(),
        "fields" => store.fields.values().map(dump_field).collect(),
        "components" => store.components.values().map(|c| render_component(store, base, c)).collect(),
        "links" => store
            .links
            .values()
            .map(|l| {
                let lt = LINK_TYPES.iter().find(|t| t.0 == l.type_id).map(|t| t.1).unwrap_or("?");
                let key = |id: u64| store.issues.get(&id).map(|i| i.key.clone());
                json!({"id": l.id.to_string(), "type": lt, "inwardIssue": key(l.inward), "outwardIssue": key(l.outward)})
            })
            .collect(),
        _ => return None,
    };
    Some(Value::Array(v))
}

pub fn records(sh: &Shared, k: &str) -> Option<Value> {
    kind(&sh.lock(), sh.base(), k)
}

pub fn dump(sh: &Shared) -> Value {
    let store = sh.lock();
    let mut out = Map::new();
    for k in KINDS.iter().filter(|k| **k != "tickets") {
        out.insert(
            k.to_string(),
            kind(&store, sh.base(), k).unwrap_or(Value::Null),
        );
    }
    out.insert("admin".into(), json!(store.admin));
    out.insert("frozen".into(), json!(sh.frozen.load(Ordering::SeqCst)));
    Value::Object(out)
}

pub fn reset(sh: &Shared) {
    *sh.lock() = Shared::fresh_store(&sh.config);
    sh.limiter.lock().unwrap_or_else(|e| e.into_inner()).clear();
    *sh.stats.lock().unwrap_or_else(|e| e.into_inner()) = Stats::default();
    sh.frozen.store(false, Ordering::SeqCst);
}

// ---------------------------------------------------------------- routes

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/__sandbox/dump", get(http_dump))
        .route("/__sandbox/records/{kind}", get(http_records))
        .route("/__sandbox/reset", post(http_reset))
        .route(
            "/__sandbox/seed",
            post(http_seed).layer(DefaultBodyLimit::disable()),
        )
        .route("/__sandbox/freeze", post(http_freeze).get(http_frozen))
        .route("/__sandbox/stats", get(http_stats))
}

async fn http_dump(State(sh): S) -> Response {
    Json(dump(&sh)).into_response()
}

async fn http_records(State(sh): S, Path(k): Path<String>) -> Response {
    match records(&sh, &k) {
        Some(v) => Json(v).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("unknown kind '{k}'"), "kinds": KINDS})),
        )
            .into_response(),
    }
}

async fn http_reset(State(sh): S) -> Response {
    reset(&sh);
    Json(json!({"reset": true})).into_response()
}

async fn http_seed(State(sh): S, body: Bytes) -> Response {
    let seed: SeedData = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("invalid seed: {e}")})),
            )
                .into_response();
        }
    };
    let mut store = sh.lock();
    match apply_seed(&mut store, &sh.adf, &seed) {
        Ok(v) => Json(v).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, Json(json!({"error": e}))).into_response(),
    }
}

async fn http_freeze(State(sh): S, body: Bytes) -> Response {
    let frozen = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("frozen").and_then(Value::as_bool));
    match frozen {
        Some(f) => {
            sh.frozen.store(f, Ordering::SeqCst);
            Json(json!({"frozen": f})).into_response()
        }
        None => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "send {\"frozen\": true|false}"})),
        )
            .into_response(),
    }
}

async fn http_frozen(State(sh): S) -> Response {
    Json(json!({"frozen": sh.frozen.load(Ordering::SeqCst)})).into_response()
}

async fn http_stats(State(sh): S) -> Response {
    Json(sh.stats.lock().unwrap_or_else(|e| e.into_inner()).to_json()).into_response()
}
