//! Jira Service Management REST (`/rest/servicedeskapi`).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::Shared;
use crate::adf::{adf_to_html, adf_to_text, text_to_adf};
use crate::error::{self, Answer};
use crate::model::*;
use crate::platform::{has_no_check, read_uploads};
use crate::query::Q;

type S = State<Arc<Shared>>;

pub fn routes() -> Router<Arc<Shared>> {
    let p = |s: &str| format!("/rest/servicedeskapi{s}");
    Router::new()
        .route(&p("/servicedesk"), get(list_desks))
        .route(&p("/servicedesk/{serviceDeskId}"), get(get_desk))
        .route(
            &p("/servicedesk/{serviceDeskId}/requesttype"),
            get(list_request_types),
        )
        .route(
            &p("/servicedesk/{serviceDeskId}/requesttype/{requestTypeId}"),
            get(get_request_type),
        )
        .route(
            &p("/servicedesk/{serviceDeskId}/requesttype/{requestTypeId}/field"),
            get(request_type_fields),
        )
        .route(
            &p("/servicedesk/{serviceDeskId}/customer"),
            get(desk_customers)
                .post(add_desk_customers)
                .delete(remove_desk_customers),
        )
        .route(
            &p("/servicedesk/{serviceDeskId}/organization"),
            get(desk_orgs).post(add_desk_org).delete(remove_desk_org),
        )
        .route(
            &p("/servicedesk/{serviceDeskId}/attachTemporaryFile"),
            post(attach_temporary).layer(DefaultBodyLimit::disable()),
        )
        .route(&p("/customer"), post(create_customer))
        .route(&p("/organization"), get(list_orgs).post(create_org))
        .route(
            &p("/organization/{organizationId}"),
            get(get_org).delete(delete_org),
        )
        .route(
            &p("/organization/{organizationId}/user"),
            get(org_users).post(add_org_users).delete(remove_org_users),
        )
        .route(&p("/request"), post(create_request))
        .route(&p("/request/{issueIdOrKey}"), get(get_request))
        .route(
            &p("/request/{issueIdOrKey}/comment"),
            get(request_comments).post(add_request_comment),
        )
        .route(
            &p("/request/{issueIdOrKey}/attachment"),
            post(attach_to_request),
        )
}

fn bad(msg: &str) -> Response {
    error::jsm(StatusCode::BAD_REQUEST, msg)
}

fn not_found(msg: &str) -> Response {
    error::jsm(StatusCode::NOT_FOUND, msg)
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// The servicedeskapi paged envelope.
fn paged(base: &str, path: &str, all: Vec<Value>, q: &Q) -> Result<Value, Response> {
    let (start, limit) = q.page("start", "limit", 50, 100)?;
    let total = all.len();
    let values: Vec<Value> = all.into_iter().skip(start).take(limit).collect();
    let last = start + values.len() >= total;
    let mut links = json!({"self": format!("{base}/rest/servicedeskapi{path}"), "base": format!("{base}/rest/servicedeskapi"), "context": ""});
    if !last {
        links["next"] = json!(format!(
            "{base}/rest/servicedeskapi{path}?start={}&limit={limit}",
            start + limit
        ));
    }
    if start > 0 {
        links["prev"] = json!(format!(
            "{base}/rest/servicedeskapi{path}?start={}&limit={limit}",
            start.saturating_sub(limit)
        ));
    }
    Ok(
        json!({"size": values.len(), "start": start, "limit": limit, "isLastPage": last, "values": values, "_expands": [], "_links": links}),
    )
}

fn desk_of(store: &Store, id: &str) -> Result<u64, Response> {
    store
        .desk(id)
        .map(|d| d.id)
        .ok_or_else(|| not_found(&format!("The service desk '{id}' does not exist.")))
}

fn render_desk(store: &Store, base: &str, d: &ServiceDesk) -> Value {
    let p = &store.projects[&d.project_key];
    json!({
        "id": d.id.to_string(),
        "projectId": p.id.to_string(),
        "projectName": p.name,
        "projectKey": p.key,
        "_links": {"self": format!("{base}/rest/servicedeskapi/servicedesk/{}", d.id)},
    })
}

pub fn render_jsm_user(base: &str, u: &User) -> Value {
    let mut v = json!({
        "accountId": u.account_id,
        "displayName": u.display_name,
        "active": u.active,
        "timeZone": ADMIN_TIME_ZONE,
        "_links": {
            "jiraRest": format!("{base}/rest/api/3/user?accountId={}", u.account_id),
            "avatarUrls": avatar_urls(&u.account_id),
            "self": format!("{base}/rest/api/3/user?accountId={}", u.account_id),
        },
    });
    if let Some(e) = &u.email {
        v["emailAddress"] = json!(e);
    }
    v
}

fn jsm_user_ref(store: &Store, base: &str, id: &str) -> Value {
    store
        .users
        .get(id)
        .map(|u| render_jsm_user(base, u))
        .unwrap_or_else(|| json!({"accountId": id, "displayName": "Unknown user", "active": false}))
}

fn render_org(base: &str, o: &Organization) -> Value {
    json!({
        "id": o.id.to_string(),
        "name": o.name,
        "created": date_object(o.created_ms),
        "_links": {"self": format!("{base}/rest/servicedeskapi/organization/{}", o.id)},
    })
}

fn account_ids(body: &Value) -> Result<Vec<String>, Response> {
    let ids: Vec<String> = body
        .get("accountIds")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if ids.is_empty() {
        return Err(bad("accountIds must list at least one account."));
    }
    Ok(ids)
}

fn check_accounts(store: &Store, ids: &[String]) -> Result<(), Response> {
    match ids.iter().find(|id| !store.users.contains_key(*id)) {
        Some(id) => Err(bad(&format!("The account '{id}' does not exist."))),
        None => Ok(()),
    }
}

// ---------------------------------------------------------------- service desks, request types

async fn list_desks(State(sh): S, uri: Uri) -> Answer {
    let q = Q::parse(&uri, true);
    let store = sh.lock();
    let all = store
        .service_desks
        .values()
        .map(|d| render_desk(&store, sh.base(), d))
        .collect();
    Ok(Json(paged(sh.base(), "/servicedesk", all, &q)?).into_response())
}

async fn get_desk(State(sh): S, Path(id): Path<String>) -> Answer {
    let store = sh.lock();
    let did = desk_of(&store, &id)?;
    Ok(Json(render_desk(&store, sh.base(), &store.service_desks[&did])).into_response())
}

fn render_request_type(base: &str, desk: &ServiceDesk, rt: &RequestType) -> Value {
    json!({
        "id": rt.id.to_string(),
        "name": rt.name,
        "description": rt.description,
        "helpText": "",
        "issueTypeId": rt.issue_type_id,
        "serviceDeskId": desk.id.to_string(),
        "portalId": desk.id.to_string(),
        "groupIds": ["1"],
        "_links": {"self": format!("{base}/rest/servicedeskapi/servicedesk/{}/requesttype/{}", desk.id, rt.id)},
    })
}

async fn list_request_types(State(sh): S, Path(id): Path<String>, uri: Uri) -> Answer {
    let q = Q::parse(&uri, true);
    let search = q.get("searchQuery").map(str::to_lowercase);
    let store = sh.lock();
    let did = desk_of(&store, &id)?;
    let d = &store.service_desks[&did];
    let all = d
        .request_types
        .iter()
        .filter(|rt| {
            search
                .as_deref()
                .is_none_or(|s| rt.name.to_lowercase().contains(s))
        })
        .map(|rt| render_request_type(sh.base(), d, rt))
        .collect();
    Ok(Json(paged(
        sh.base(),
        &format!("/servicedesk/{did}/requesttype"),
        all,
        &q,
    )?)
    .into_response())
}

fn request_type_of<'a>(d: &'a ServiceDesk, id: &str) -> Result<&'a RequestType, Response> {
    d.request_types
        .iter()
        .find(|rt| rt.id.to_string() == id)
        .ok_or_else(|| {
            not_found(&format!(
                "The request type '{id}' does not exist in service desk {}.",
                d.id
            ))
        })
}

async fn get_request_type(State(sh): S, Path((id, rt)): Path<(String, String)>) -> Answer {
    let store = sh.lock();
    let did = desk_of(&store, &id)?;
    let d = &store.service_desks[&did];
    Ok(Json(render_request_type(sh.base(), d, request_type_of(d, &rt)?)).into_response())
}

fn field_label(store: &Store, id: &str) -> String {
    SYSTEM_FIELDS
        .iter()
        .find(|f| f.0 == id)
        .map(|f| f.1.to_string())
        .or_else(|| store.field(id).map(|f| f.name.clone()))
        .unwrap_or_else(|| {
            if id == "attachment" {
                "Attachment".into()
            } else {
                id.to_string()
            }
        })
}

async fn request_type_fields(State(sh): S, Path((id, rt)): Path<(String, String)>) -> Answer {
    let store = sh.lock();
    let did = desk_of(&store, &id)?;
    let d = &store.service_desks[&did];
    let rt = request_type_of(d, &rt)?;
    let fields: Vec<Value> = rt
        .fields
        .iter()
        .map(|f| {
            let schema = match f.as_str() {
                "summary" | "description" => json!({"type": "string", "system": f}),
                "duedate" => json!({"type": "date", "system": f}),
                "priority" => json!({"type": "priority", "system": f}),
                "labels" => json!({"type": "array", "items": "string", "system": f}),
                "components" => json!({"type": "array", "items": "component", "system": f}),
                "attachment" => json!({"type": "array", "items": "attachment", "system": f}),
                other => store.field(other).map(custom_schema).unwrap_or(json!({"type": "any"})),
            };
            let valid: Vec<Value> = match f.as_str() {
                "priority" => PRIORITIES.iter().map(|p| json!({"value": p.0, "label": p.1, "children": []})).collect(),
                other => store
                    .field(other)
                    .map(|cf| cf.contexts.iter().flat_map(|c| c.options.iter()).map(|o| json!({"value": o.id.to_string(), "label": o.value, "children": []})).collect())
                    .unwrap_or_default(),
            };
            json!({
                "fieldId": f,
                "name": field_label(&store, f),
                "description": "",
                "required": f == "summary",
                "defaultValues": [],
                "validValues": valid,
                "presetValues": [],
                "jiraSchema": schema,
                "visible": true,
            })
        })
        .collect();
    Ok(Json(json!({"requestTypeFields": fields, "canRaiseOnBehalfOf": true, "canAddRequestParticipants": true})).into_response())
}

// ---------------------------------------------------------------- customers

async fn create_customer(State(sh): S, uri: Uri, body: Bytes) -> Answer {
    let strict = Q::parse(&uri, true)
        .bool("strictConflictStatusCode")?
        .unwrap_or(false);
    let body = error::jsm_json(&body)?;
    let email = body
        .get("email")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or("")
        .to_string();
    if email.is_empty() || !email.contains('@') {
        return Err(bad("A valid email address must be provided."));
    }
    let display = body
        .get("displayName")
        .or_else(|| body.get("fullName"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(&email)
        .to_string();
    let mut store = sh.lock();
    if store.user_by_email(&email).is_some() {
        let status = if strict {
            StatusCode::CONFLICT
        } else {
            StatusCode::BAD_REQUEST
        };
        return Err(error::jsm(
            status,
            &format!("An account already exists for this email: {email}"),
        ));
    }
    let id = store.add_user(None, "customer", &display, Some(email), false);
    let out = render_jsm_user(sh.base(), &store.users[&id]);
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

async fn desk_customers(State(sh): S, Path(id): Path<String>, uri: Uri) -> Answer {
    let q = Q::parse(&uri, true);
    let query = q.get("query").map(str::to_lowercase);
    let store = sh.lock();
    let did = desk_of(&store, &id)?;
    let all = store.service_desks[&did]
        .customers
        .iter()
        .filter_map(|a| store.users.get(a))
        .filter(|u| {
            query.as_deref().is_none_or(|s| {
                u.display_name.to_lowercase().contains(s)
                    || u.email
                        .as_deref()
                        .is_some_and(|e| e.to_lowercase().contains(s))
            })
        })
        .map(|u| render_jsm_user(sh.base(), u))
        .collect();
    Ok(Json(paged(
        sh.base(),
        &format!("/servicedesk/{did}/customer"),
        all,
        &q,
    )?)
    .into_response())
}

async fn add_desk_customers(State(sh): S, Path(id): Path<String>, body: Bytes) -> Answer {
    let ids = account_ids(&error::jsm_json(&body)?)?;
    let mut store = sh.lock();
    let did = desk_of(&store, &id)?;
    check_accounts(&store, &ids)?;
    store
        .service_desks
        .get_mut(&did)
        .expect("desk exists")
        .customers
        .extend(ids);
    Ok(no_content())
}

async fn remove_desk_customers(State(sh): S, Path(id): Path<String>, body: Bytes) -> Answer {
    let ids = account_ids(&error::jsm_json(&body)?)?;
    let mut store = sh.lock();
    let did = desk_of(&store, &id)?;
    check_accounts(&store, &ids)?;
    let d = store.service_desks.get_mut(&did).expect("desk exists");
    for a in ids {
        d.customers.remove(&a);
    }
    Ok(no_content())
}

// ---------------------------------------------------------------- organizations

fn org_of(store: &Store, id: &str) -> Result<u64, Response> {
    id.parse::<u64>()
        .ok()
        .filter(|i| store.organizations.contains_key(i))
        .ok_or_else(|| not_found(&format!("The organization '{id}' does not exist.")))
}

async fn create_org(State(sh): S, body: Bytes) -> Answer {
    let body = error::jsm_json(&body)?;
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or("")
        .to_string();
    if name.is_empty() {
        return Err(bad("An organization name must be provided."));
    }
    let mut store = sh.lock();
    if store
        .organizations
        .values()
        .any(|o| o.name.eq_ignore_ascii_case(&name))
    {
        return Err(bad(&format!(
            "An organization with the name '{name}' already exists."
        )));
    }
    let id = store.next_org_id;
    store.next_org_id += 1;
    let o = Organization {
        id,
        name,
        members: Default::default(),
        created_ms: now_ms(),
        seeded: false,
    };
    let out = render_org(sh.base(), &o);
    store.organizations.insert(id, o);
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

async fn list_orgs(State(sh): S, uri: Uri) -> Answer {
    let q = Q::parse(&uri, true);
    let account = q.get("accountId").map(str::to_string);
    let store = sh.lock();
    let all = store
        .organizations
        .values()
        .filter(|o| account.as_deref().is_none_or(|a| o.members.contains(a)))
        .map(|o| render_org(sh.base(), o))
        .collect();
    Ok(Json(paged(sh.base(), "/organization", all, &q)?).into_response())
}

async fn get_org(State(sh): S, Path(id): Path<String>) -> Answer {
    let store = sh.lock();
    let oid = org_of(&store, &id)?;
    Ok(Json(render_org(sh.base(), &store.organizations[&oid])).into_response())
}

async fn delete_org(State(sh): S, Path(id): Path<String>) -> Answer {
    let mut store = sh.lock();
    let oid = org_of(&store, &id)?;
    store.organizations.remove(&oid);
    for d in store.service_desks.values_mut() {
        d.organizations.remove(&oid);
    }
    Ok(no_content())
}

async fn org_users(State(sh): S, Path(id): Path<String>, uri: Uri) -> Answer {
    let q = Q::parse(&uri, true);
    let store = sh.lock();
    let oid = org_of(&store, &id)?;
    let all = store.organizations[&oid]
        .members
        .iter()
        .filter_map(|a| store.users.get(a))
        .map(|u| render_jsm_user(sh.base(), u))
        .collect();
    Ok(Json(paged(
        sh.base(),
        &format!("/organization/{oid}/user"),
        all,
        &q,
    )?)
    .into_response())
}

async fn add_org_users(State(sh): S, Path(id): Path<String>, body: Bytes) -> Answer {
    let ids = account_ids(&error::jsm_json(&body)?)?;
    let mut store = sh.lock();
    let oid = org_of(&store, &id)?;
    check_accounts(&store, &ids)?;
    store
        .organizations
        .get_mut(&oid)
        .expect("org exists")
        .members
        .extend(ids);
    Ok(no_content())
}

async fn remove_org_users(State(sh): S, Path(id): Path<String>, body: Bytes) -> Answer {
    let ids = account_ids(&error::jsm_json(&body)?)?;
    let mut store = sh.lock();
    let oid = org_of(&store, &id)?;
    let o = store.organizations.get_mut(&oid).expect("org exists");
    for a in ids {
        o.members.remove(&a);
    }
    Ok(no_content())
}

fn organization_id(body: &Value) -> Result<String, Response> {
    match body.get("organizationId") {
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(bad("organizationId must be provided.")),
    }
}

async fn desk_orgs(State(sh): S, Path(id): Path<String>, uri: Uri) -> Answer {
    let q = Q::parse(&uri, true);
    let store = sh.lock();
    let did = desk_of(&store, &id)?;
    let all = store.service_desks[&did]
        .organizations
        .iter()
        .filter_map(|o| store.organizations.get(o))
        .map(|o| render_org(sh.base(), o))
        .collect();
    Ok(Json(paged(
        sh.base(),
        &format!("/servicedesk/{did}/organization"),
        all,
        &q,
    )?)
    .into_response())
}

async fn add_desk_org(State(sh): S, Path(id): Path<String>, body: Bytes) -> Answer {
    let oid = organization_id(&error::jsm_json(&body)?)?;
    let mut store = sh.lock();
    let did = desk_of(&store, &id)?;
    let oid = org_of(&store, &oid)?;
    store
        .service_desks
        .get_mut(&did)
        .expect("desk exists")
        .organizations
        .insert(oid);
    Ok(no_content())
}

async fn remove_desk_org(State(sh): S, Path(id): Path<String>, body: Bytes) -> Answer {
    let oid = organization_id(&error::jsm_json(&body)?)?;
    let mut store = sh.lock();
    let did = desk_of(&store, &id)?;
    let oid = org_of(&store, &oid)?;
    store
        .service_desks
        .get_mut(&did)
        .expect("desk exists")
        .organizations
        .remove(&oid);
    Ok(no_content())
}

// ---------------------------------------------------------------- requests

fn status_category_upper(cat: &str) -> &'static str {
    match cat {
        "new" => "NEW",
        "done" => "DONE",
        _ => "INDETERMINATE",
    }
}

fn render_request(store: &Store, base: &str, i: &Issue) -> Value {
    let wf = store
        .projects
        .get(&i.project_key)
        .map(|p| p.workflow)
        .unwrap_or(&SERVICE_WORKFLOW);
    let status = wf.status(i.status_id);
    let desk = i
        .request
        .as_ref()
        .map(|r| r.service_desk_id)
        .or_else(|| store.desk_for_project(&i.project_key).map(|d| d.id));
    let rt = i
        .request
        .as_ref()
        .map(|r| r.request_type_id.to_string())
        .unwrap_or_default();
    let mut values = vec![json!({"fieldId": "summary", "label": "Summary", "value": i.summary})];
    if let Some(d) = &i.description {
        values.push(json!({"fieldId": "description", "label": "Description", "value": adf_to_text(d), "renderedValue": {"html": adf_to_html(d)}}));
    }
    if let Some(d) = &i.duedate {
        values.push(json!({"fieldId": "duedate", "label": "Due date", "value": d}));
    }
    if !i.labels.is_empty() {
        values.push(json!({"fieldId": "labels", "label": "Labels", "value": i.labels}));
    }
    for (k, v) in &i.custom {
        values.push(json!({"fieldId": k, "label": field_label(store, k), "value": v}));
    }
    json!({
        "_expands": ["participant", "status", "sla", "requestType", "serviceDesk", "attachment", "action", "comment"],
        "issueId": i.id.to_string(),
        "issueKey": i.key,
        "requestTypeId": rt,
        "serviceDeskId": desk.map(|d| d.to_string()).unwrap_or_default(),
        "createdDate": date_object(i.created_ms),
        "reporter": i.reporter.as_deref().map(|r| jsm_user_ref(store, base, r)).unwrap_or(Value::Null),
        "requestFieldValues": values,
        "currentStatus": {
            "status": status.name,
            "statusCategory": status_category_upper(status.category),
            "statusDate": date_object(i.status_changed_ms),
        },
        "_links": {
            "jiraRest": format!("{base}/rest/api/2/issue/{}", i.id),
            "web": format!("{base}/servicedesk/customer/portal/{}/{}", desk.unwrap_or(0), i.key),
            "agent": format!("{base}/browse/{}", i.key),
            "self": format!("{base}/rest/servicedeskapi/request/{}", i.id),
        },
    })
}

async fn create_request(State(sh): S, body: Bytes) -> Answer {
    let body = error::jsm_json(&body)?;
    let sd = body
        .get("serviceDeskId")
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())
        })
        .ok_or_else(|| bad("serviceDeskId must be provided."))?;
    let rt = body
        .get("requestTypeId")
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())
        })
        .ok_or_else(|| bad("requestTypeId must be provided."))?;
    let adf_request = body
        .get("isAdfRequest")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let values = body
        .get("requestFieldValues")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut store = sh.lock();
    let did = desk_of(&store, &sd)?;
    let desk = store.service_desks[&did].clone();
    let rtype = request_type_of(&desk, &rt)
        .map_err(|_| {
            bad(&format!(
                "The request type '{rt}' does not exist in service desk {did}."
            ))
        })?
        .clone();
    let reporter = match body.get("raiseOnBehalfOf").and_then(Value::as_str) {
        Some(who) => {
            let u = store
                .resolve_user(who)
                .ok_or_else(|| bad(&format!("The user '{who}' does not exist.")))?;
            if !store.may_raise(&desk, &u.account_id) {
                return Err(bad(&format!(
                    "The user '{who}' is not a customer of service desk {did}: add them to the service desk or to one of its organizations first."
                )));
            }
            u.account_id.clone()
        }
        None => store.admin.clone(),
    };
    let summary = values
        .get("summary")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or("");
    if summary.is_empty() {
        return Err(bad(
            "Your request could not be created. Please check the fields have been correctly filled in. Summary is required.",
        ));
    }
    if let Some(f) = values.keys().find(|k| !rtype.fields.contains(k)) {
        return Err(bad(&format!(
            "The field '{f}' is not on request type '{}'; set it afterwards with PUT /rest/api/3/issue.",
            rtype.name
        )));
    }
    let mut issue = store.new_issue(
        &desk.project_key,
        &rtype.issue_type_id,
        summary.to_string(),
        false,
    );
    issue.reporter = Some(reporter);
    issue.request = Some(RequestInfo {
        service_desk_id: did,
        request_type_id: rtype.id,
    });
    for (k, v) in &values {
        match k.as_str() {
            "summary" => {}
            "description" => {
                issue.description = if adf_request {
                    sh.adf
                        .check(v)
                        .map_err(|e| bad(&format!("description: {e}")))?;
                    Some(v.clone())
                } else {
                    Some(text_to_adf(v.as_str().ok_or_else(|| {
                        bad("description must be text unless isAdfRequest is true.")
                    })?))
                };
            }
            "duedate" => {
                let d = v
                    .as_str()
                    .filter(|s| s.len() == 10 && s.parse::<jiff::civil::Date>().is_ok())
                    .ok_or_else(|| bad(&format!("duedate '{v}' is not a YYYY-MM-DD date.")))?;
                issue.duedate = Some(d.to_string());
            }
            "priority" => {
                let want = v
                    .get("id")
                    .or_else(|| v.get("name"))
                    .and_then(Value::as_str)
                    .or_else(|| v.as_str())
                    .unwrap_or("");
                let p = PRIORITIES
                    .iter()
                    .find(|p| p.0 == want || p.1.eq_ignore_ascii_case(want))
                    .ok_or_else(|| bad(&format!("The priority '{want}' does not exist.")))?;
                issue.priority_id = Some(p.0.to_string());
            }
            "labels" => {
                let labels: Vec<String> = v
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                if labels.iter().any(|l| l.contains(char::is_whitespace)) {
                    return Err(bad("Labels cannot contain spaces."));
                }
                issue.labels = labels;
            }
            "components" => {
                let mut ids = Vec::new();
                for c in v.as_array().cloned().unwrap_or_default() {
                    let found = store
                        .components
                        .values()
                        .filter(|x| x.project_key == desk.project_key)
                        .find(|x| {
                            c.get("id").and_then(Value::as_str) == Some(x.id.to_string().as_str())
                                || c.get("name").and_then(Value::as_str) == Some(x.name.as_str())
                        });
                    ids.push(
                        found
                            .ok_or_else(|| bad(&format!("The component {c} does not exist.")))?
                            .id,
                    );
                }
                issue.components = ids;
            }
            other => {
                let cf = store
                    .field(other)
                    .ok_or_else(|| bad(&format!("The field '{other}' does not exist.")))?;
                if cf.kind == "textarea" {
                    let doc = if adf_request {
                        v.clone()
                    } else {
                        text_to_adf(v.as_str().unwrap_or(""))
                    };
                    sh.adf
                        .check(&doc)
                        .map_err(|e| bad(&format!("{other}: {e}")))?;
                    issue.custom.insert(other.to_string(), doc);
                } else {
                    issue.custom.insert(other.to_string(), v.clone());
                }
            }
        }
    }
    let id = issue.id;
    store.insert_issue(issue);
    let out = render_request(&store, sh.base(), &store.issues[&id]);
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

fn request_of(store: &Store, key: &str) -> Result<u64, Response> {
    store
        .issue_id(key)
        .filter(|id| {
            store
                .desk_for_project(&store.issues[id].project_key)
                .is_some()
        })
        .ok_or_else(|| {
            not_found(&format!(
                "The request '{key}' does not exist or is not in a service desk."
            ))
        })
}

async fn get_request(State(sh): S, Path(key): Path<String>) -> Answer {
    let store = sh.lock();
    let id = request_of(&store, &key)?;
    Ok(Json(render_request(&store, sh.base(), &store.issues[&id])).into_response())
}

fn render_jsm_comment(store: &Store, base: &str, issue_id: u64, c: &Comment) -> Value {
    json!({
        "id": c.id.to_string(),
        "body": adf_to_text(&c.body),
        "renderedBody": {"html": adf_to_html(&c.body)},
        "public": c.public,
        "author": jsm_user_ref(store, base, &c.author),
        "created": date_object(c.created_ms),
        "_links": {"self": format!("{base}/rest/servicedeskapi/request/{issue_id}/comment/{}", c.id)},
    })
}

async fn add_request_comment(State(sh): S, Path(key): Path<String>, body: Bytes) -> Answer {
    let body = error::jsm_json(&body)?;
    let text = body
        .get("body")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or("");
    if text.is_empty() {
        return Err(bad("The comment body must not be empty."));
    }
    let public = body.get("public").and_then(Value::as_bool).unwrap_or(true);
    let mut store = sh.lock();
    let id = request_of(&store, &key)?;
    let admin = store.admin.clone();
    let c = store
        .add_comment(id, &admin, text_to_adf(text), public, None, Vec::new())
        .ok_or_else(|| not_found("The request does not exist."))?;
    Ok((
        StatusCode::CREATED,
        Json(render_jsm_comment(&store, sh.base(), id, &c)),
    )
        .into_response())
}

async fn request_comments(State(sh): S, Path(key): Path<String>, uri: Uri) -> Answer {
    let q = Q::parse(&uri, true);
    let public = q.bool("public")?.unwrap_or(true);
    let internal = q.bool("internal")?.unwrap_or(true);
    let store = sh.lock();
    let id = request_of(&store, &key)?;
    let all = store.issues[&id]
        .comments
        .iter()
        .filter(|c| if c.public { public } else { internal })
        .map(|c| render_jsm_comment(&store, sh.base(), id, c))
        .collect();
    Ok(Json(paged(
        sh.base(),
        &format!("/request/{id}/comment"),
        all,
        &q,
    )?)
    .into_response())
}

// ---------------------------------------------------------------- attachments

async fn attach_temporary(
    State(sh): S,
    Path(id): Path<String>,
    headers: HeaderMap,
    req: Request,
) -> Answer {
    if !has_no_check(&headers) {
        return Err(error::jsm(
            StatusCode::FORBIDDEN,
            "XSRF check failed: send the header X-Atlassian-Token: no-check.",
        ));
    }
    let did = desk_of(&sh.lock(), &id)?;
    let uploads = read_uploads(req, sh.config.attachment_max_bytes)
        .await
        .map_err(|(s, m)| error::jsm(s, &m))?;
    let mut store = sh.lock();
    let mut out = Vec::new();
    for u in uploads {
        let tid = store.new_uuid();
        out.push(json!({"temporaryAttachmentId": tid, "fileName": u.filename}));
        store.temp_attachments.insert(
            tid.clone(),
            TempAttachment {
                id: tid,
                service_desk_id: did,
                filename: u.filename,
                mime_type: u.mime_type,
                data: u.data,
            },
        );
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({"temporaryAttachments": out})),
    )
        .into_response())
}

async fn attach_to_request(State(sh): S, Path(key): Path<String>, body: Bytes) -> Answer {
    let body = error::jsm_json(&body)?;
    let ids: Vec<String> = body
        .get("temporaryAttachmentIds")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if ids.is_empty() {
        return Err(bad(
            "temporaryAttachmentIds must list at least one temporary attachment.",
        ));
    }
    let public = body.get("public").and_then(Value::as_bool).unwrap_or(true);
    let base = sh.base().to_string();
    let mut store = sh.lock();
    let id = request_of(&store, &key)?;
    let desk = store
        .desk_for_project(&store.issues[&id].project_key)
        .map(|d| d.id);
    if let Some(missing) = ids.iter().find(|t| {
        store
            .temp_attachments
            .get(*t)
            .is_none_or(|x| Some(x.service_desk_id) != desk)
    }) {
        return Err(bad(&format!(
            "The temporary attachment '{missing}' does not exist for this service desk (it may have expired)."
        )));
    }
    let admin = store.admin.clone();
    let mut atts = Vec::new();
    let mut media = Vec::new();
    for t in ids {
        let tmp = store.temp_attachments.remove(&t).expect("checked above");
        let aid = store.add_attachment(id, &tmp.filename, &tmp.mime_type, tmp.data, &admin);
        let a = &store.attachments[&aid];
        media.push(json!({"type": "media", "attrs": {"type": "file", "id": a.media_uuid, "collection": ""}}));
        atts.push(json!({
            "filename": a.filename,
            "author": jsm_user_ref(&store, &base, &a.author),
            "created": date_object(a.created_ms),
            "size": a.data.len(),
            "mimeType": a.mime_type,
            "_links": {"jiraRest": format!("{base}/rest/api/2/attachment/{aid}"), "content": format!("{base}/rest/api/3/attachment/content/{aid}")},
        }));
    }
    let mut content = Vec::new();
    if let Some(text) = body
        .pointer("/additionalComment/body")
        .and_then(Value::as_str)
        .filter(|t| !t.trim().is_empty())
    {
        content.extend(
            text_to_adf(text)["content"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
    }
    content.push(json!({"type": "mediaGroup", "content": media}));
    let doc = json!({"version": 1, "type": "doc", "content": content});
    let c = store
        .add_comment(id, &admin, doc, public, None, Vec::new())
        .ok_or_else(|| not_found("The request does not exist."))?;
    let n = atts.len();
    let out = json!({
        "comment": render_jsm_comment(&store, &base, id, &c),
        "attachments": {"size": n, "start": 0, "limit": n, "isLastPage": true, "values": atts, "_links": {}},
    });
    Ok((StatusCode::CREATED, Json(out)).into_response())
}
