//! Organization, departments, agents, accounts, contacts, products, custom fields, uploads.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};

use crate::app::App;
use crate::common::*;
use crate::errors::{ZErr, ZResult, list_response, ok};
use crate::model::*;

// ---------- custom field values ----------

/// Checks a `cf` object against the module's custom fields and returns the values to store.
pub fn validate_cf(
    db: &Db,
    module: &str,
    department: Option<&str>,
    cf: Option<&Value>,
) -> Result<Rec, ZErr> {
    let Some(cf) = cf else { return Ok(Rec::new()) };
    if cf.is_null() {
        return Ok(Rec::new());
    }
    let obj = cf
        .as_object()
        .ok_or_else(|| ZErr::invalid_one("/cf", "invalid"))?;
    let mut out = Rec::new();
    for (key, value) in obj {
        let pointer = format!("/cf/{key}");
        let field = db
            .fields
            .values()
            .find(|f| {
                f.get("_module").and_then(Value::as_str) == Some(module)
                    && f.get("apiName").and_then(Value::as_str) == Some(key.as_str())
            })
            .filter(|f| f.get("isCustomField") == Some(&Value::Bool(true)))
            .ok_or_else(|| ZErr::invalid_one(&pointer, "invalid"))?;
        if let (Some(dep), Some(scoped)) = (
            department,
            field.get("associatedDepartments").and_then(Value::as_array),
        ) && !scoped.is_empty()
            && !scoped.iter().any(|d| d.as_str() == Some(dep))
        {
            return Err(ZErr::invalid_one(&pointer, "invalid"));
        }
        let text = match value {
            Value::Null => {
                out.insert(key.clone(), Value::Null);
                continue;
            }
            Value::String(t) => t.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return Err(ZErr::invalid_one(&pointer, "invalid")),
        };
        let ftype = field.get("type").and_then(Value::as_str).unwrap_or("Text");
        let allowed: Vec<&str> = field
            .get("allowedValues")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.get("value").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default();
        let max_len = field
            .get("maxLength")
            .and_then(Value::as_str)
            .and_then(|m| m.parse::<usize>().ok());
        let valid = match ftype {
            _ if text.is_empty() => true,
            "Picklist" => allowed.contains(&text.as_str()),
            "Multiselect" => text.split(';').all(|p| allowed.contains(&p.trim())),
            "Number" => text.parse::<i64>().is_ok(),
            "Decimal" | "Currency" | "Percent" => text.parse::<f64>().is_ok(),
            "Boolean" => matches!(text.as_str(), "true" | "false"),
            "Date" => jiff::civil::Date::strptime("%Y-%m-%d", &text).is_ok(),
            "DateTime" => parse_time(&Value::String(text.clone())).is_some(),
            "Email" => text.contains('@'),
            _ => max_len.is_none_or(|m| text.chars().count() <= m),
        };
        if !valid {
            return Err(ZErr::invalid_one(&pointer, "invalid"));
        }
        out.insert(key.clone(), Value::String(text));
    }
    Ok(out)
}

/// `cf` with every custom field of the module (null when unset) and `customFields` keyed by label.
pub fn render_cf(db: &Db, module: &str, stored: Option<&Value>) -> (Value, Value) {
    let mut cf = Map::new();
    let mut by_label = Map::new();
    for f in db.fields.values() {
        if f.get("_module").and_then(Value::as_str) != Some(module)
            || f.get("isCustomField") != Some(&Value::Bool(true))
            || is_trashed(f)
        {
            continue;
        }
        let api = f.get("apiName").and_then(Value::as_str).unwrap_or_default();
        let label = f.get("displayLabel").and_then(Value::as_str).unwrap_or(api);
        let v = stored
            .and_then(|s| s.get(api))
            .cloned()
            .unwrap_or(Value::Null);
        cf.insert(api.to_string(), v.clone());
        by_label.insert(label.to_string(), v);
    }
    (Value::Object(cf), Value::Object(by_label))
}

fn project(r: &Rec, keys: &[&str]) -> Value {
    let mut m = Map::new();
    for k in keys {
        m.insert((*k).to_string(), r.get(*k).cloned().unwrap_or(Value::Null));
    }
    Value::Object(m)
}

pub fn web_url(module: &str, id: u64) -> String {
    format!("https://desk.zoho.com/support/sandboxdesk/ShowHomePage.do#{module}/dv/{id}")
}

pub fn owner_of(db: &Db, owner_id: Option<&str>) -> Value {
    match owner_id.and_then(|id| db.live("agents", id)) {
        Some(a) => {
            json!({"firstName": a.get("firstName"), "lastName": a.get("lastName"), "id": a.get("id"),
            "photoURL": null, "emailId": a.get("emailId"), "zuid": a.get("zuid")})
        }
        None => Value::Null,
    }
}

// ---------- organizations ----------

pub async fn organizations(State(app): State<Arc<App>>) -> ZResult {
    let db = app.db();
    ok(json!({"data": [db.org]}))
}

pub async fn organization(State(app): State<Arc<App>>, Path(id): Path<String>) -> ZResult {
    let db = app.db();
    if s(&db.org, "id").as_deref() != Some(id.as_str()) {
        return Err(ZErr::not_found());
    }
    ok(Value::Object(db.org.clone()))
}

// ---------- departments ----------

fn render_department(d: &Rec) -> Value {
    Value::Object(public(d))
}

pub async fn departments(State(app): State<Arc<App>>, Query(q): Query<Q>) -> ZResult {
    let db = app.db();
    let (from, limit) = paging(&q, 10);
    let items: Vec<Value> = db
        .departments
        .values()
        .filter(|d| !is_trashed(d))
        .filter(|d| {
            q.get("isEnabled")
                .is_none_or(|e| d.get("isEnabled").map(|v| v.to_string()) == Some(e.clone()))
        })
        .filter(|d| {
            q.get("searchStr")
                .is_none_or(|p| contains_text(p, d.get("name")))
        })
        .filter(|d| {
            q.get("chatStatus")
                .is_none_or(|c| d.get("chatStatus").and_then(Value::as_str) == Some(c.as_str()))
        })
        .map(render_department)
        .collect();
    Ok(list_response(page(items, from, limit)))
}

pub async fn department_get(State(app): State<Arc<App>>, Path(id): Path<String>) -> ZResult {
    let db = app.db();
    let d = db.live("departments", &id).ok_or_else(ZErr::not_found)?;
    ok(render_department(d))
}

// ---------- agents ----------

fn render_agent(db: &Db, a: &Rec) -> Value {
    let mut out = public(a);
    let deps: Vec<Value> = a
        .get("associatedDepartmentIds")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(|id| id.as_str().and_then(|i| db.live("departments", i)))
                .map(|d| json!({"name": d.get("name"), "id": d.get("id")}))
                .collect()
        })
        .unwrap_or_default();
    out.insert("associatedDepartments".into(), Value::Array(deps));
    Value::Object(out)
}

pub async fn agents(State(app): State<Arc<App>>, Query(q): Query<Q>) -> ZResult {
    let db = app.db();
    let (from, limit) = paging(&q, 10);
    let dept_filter: Option<Vec<&str>> = q.get("departmentIds").map(|v| v.split(',').collect());
    let items: Vec<Value> = db
        .agents
        .values()
        .filter(|a| {
            q.get("status")
                .is_none_or(|st| a.get("status").and_then(Value::as_str) == Some(st.as_str()))
        })
        .filter(|a| {
            q.get("isConfirmed")
                .is_none_or(|c| a.get("isConfirmed").map(|v| v.to_string()) == Some(c.clone()))
        })
        .filter(|a| {
            q.get("rolePermissionType").is_none_or(|r| {
                a.get("rolePermissionType").and_then(Value::as_str) == Some(r.as_str())
            })
        })
        .filter(|a| {
            q.get("searchStr").is_none_or(|p| {
                contains_text(p, a.get("name")) || contains_text(p, a.get("emailId"))
            })
        })
        .filter(|a| {
            dept_filter.as_ref().is_none_or(|want| {
                a.get("associatedDepartmentIds")
                    .and_then(Value::as_array)
                    .is_some_and(|have| {
                        have.iter()
                            .any(|h| h.as_str().is_some_and(|h| want.contains(&h)))
                    })
            })
        })
        .map(|a| render_agent(&db, a))
        .collect();
    Ok(list_response(page(items, from, limit)))
}

pub async fn agent_get(State(app): State<Arc<App>>, Path(id): Path<String>) -> ZResult {
    let db = app.db();
    let a = db.live("agents", &id).ok_or_else(ZErr::not_found)?;
    ok(render_agent(&db, a))
}

const AGENT_KEYS: &[&str] = &[
    "aboutInfo",
    "associatedChatDepartmentIds",
    "associatedDepartmentIds",
    "countryCode",
    "emailId",
    "extn",
    "firstName",
    "langCode",
    "lastName",
    "mobile",
    "phone",
    "profileId",
    "roleId",
    "rolePermissionType",
    "status",
];

pub async fn agent_create(State(app): State<Arc<App>>, body: Bytes) -> ZResult {
    let body = body_obj(&body)?;
    check_keys(&body, AGENT_KEYS)?;
    let mut db = app.db();
    let email =
        nonempty(&body, "emailId").ok_or_else(|| ZErr::invalid_one("/emailId", "missing"))?;
    if !email.contains('@') {
        return Err(ZErr::invalid_one("/emailId", "invalid"));
    }
    let last =
        nonempty(&body, "lastName").ok_or_else(|| ZErr::invalid_one("/lastName", "missing"))?;
    check_len(&body, "lastName", 50)?;
    check_len(&body, "firstName", 50)?;
    if db.agents.values().any(|a| {
        a.get("emailId")
            .and_then(Value::as_str)
            .is_some_and(|e| e.eq_ignore_ascii_case(&email))
    }) {
        return Err(ZErr::invalid_one("/emailId", "duplicate"));
    }
    let deps: Vec<String> = match body.get("associatedDepartmentIds") {
        Some(_) => id_list(&body, "associatedDepartmentIds")?,
        None => db
            .default_department()
            .map(|d| vec![d.to_string()])
            .unwrap_or_default(),
    };
    if deps.iter().any(|d| db.live("departments", d).is_none()) {
        return Err(ZErr::invalid_one("/associatedDepartmentIds", "invalid"));
    }
    let role = nonempty(&body, "rolePermissionType").unwrap_or_else(|| "AgentPublic".into());
    let id = db.id();
    let first = nonempty(&body, "firstName").unwrap_or_default();
    let mut rec = agent(id, &first, &last, &email, &role, &deps);
    for k in [
        "extn",
        "mobile",
        "phone",
        "langCode",
        "countryCode",
        "aboutInfo",
        "roleId",
        "profileId",
    ] {
        if let Some(v) = str_field(&body, k) {
            rec.insert(k.into(), Value::String(v));
        }
    }
    // A freshly added agent has been invited but has not accepted yet.
    rec.insert("isConfirmed".into(), Value::Bool(false));
    rec.insert("zuid".into(), Value::String(String::new()));
    for d in &deps {
        if let Some(dep) = d
            .parse::<u64>()
            .ok()
            .and_then(|d| db.departments.get_mut(&d))
            && let Some(list) = dep
                .get_mut("associatedAgentIds")
                .and_then(Value::as_array_mut)
        {
            list.push(Value::String(id.to_string()));
        }
    }
    db.agents.insert(id, rec.clone());
    ok(render_agent(&db, &rec))
}

// ---------- accounts ----------

const ACCOUNT_KEYS: &[&str] = &[
    "accountName",
    "annualrevenue",
    "cf",
    "city",
    "code",
    "country",
    "customFields",
    "description",
    "email",
    "fax",
    "industry",
    "ownerId",
    "phone",
    "state",
    "street",
    "website",
];
const ACCOUNT_LIST_KEYS: &[&str] = &[
    "id",
    "accountName",
    "website",
    "phone",
    "email",
    "webUrl",
    "createdTime",
    "zohoCRMAccount",
    "customerHappiness",
];

pub fn render_account(db: &Db, r: &Rec, full: bool) -> Value {
    let mut out = public_of("accounts", r);
    let (cf, by_label) = render_cf(db, "accounts", r.get("cf"));
    out.insert("cf".into(), cf);
    out.insert("customFields".into(), by_label);
    out.insert(
        "owner".into(),
        owner_of(db, r.get("ownerId").and_then(Value::as_str)),
    );
    if full {
        Value::Object(out)
    } else {
        project(&out, ACCOUNT_LIST_KEYS)
    }
}

fn apply_fields(rec: &mut Rec, body: &Rec, keys: &[&str]) {
    for k in keys {
        if matches!(*k, "cf" | "customFields") {
            continue;
        }
        if let Some(v) = body.get(*k) {
            rec.insert((*k).to_string(), v.clone());
        }
    }
}

fn merge_cf(rec: &mut Rec, cf: Rec) {
    let mut current = rec
        .get("cf")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    current.extend(cf);
    rec.insert("cf".into(), Value::Object(current));
}

fn check_email(body: &Rec, key: &str) -> Result<(), ZErr> {
    match str_field(body, key) {
        Some(e) if !e.is_empty() && !e.contains('@') => {
            Err(ZErr::invalid_one(&format!("/{key}"), "invalid"))
        }
        _ => Ok(()),
    }
}

fn check_owner(db: &Db, body: &Rec) -> Result<(), ZErr> {
    if let Some(o) = nonempty(body, "ownerId")
        && db.live("agents", &o).is_none()
    {
        return Err(ZErr::invalid_one("/ownerId", "invalid"));
    }
    Ok(())
}

pub async fn accounts(State(app): State<Arc<App>>, Query(q): Query<Q>) -> ZResult {
    let db = app.db();
    let (from, limit) = paging(&q, 10);
    let mut items: Vec<&Rec> = db.accounts.values().filter(|r| !is_trashed(r)).collect();
    sort_by_key(
        &mut items,
        q.get("sortBy").map(String::as_str),
        "createdTime",
    );
    let items = page(items, from, limit)
        .iter()
        .map(|r| render_account(&db, r, false))
        .collect();
    Ok(list_response(items))
}

pub async fn account_get(State(app): State<Arc<App>>, Path(id): Path<String>) -> ZResult {
    let db = app.db();
    let r = db.live("accounts", &id).ok_or_else(ZErr::not_found)?;
    ok(render_account(&db, r, true))
}

/// Zoho Desk keeps account names unique among live accounts (`except`: the account being renamed).
fn check_account_name_free(db: &Db, name: &str, except: Option<u64>) -> Result<(), ZErr> {
    let taken = db.accounts.iter().any(|(k, a)| {
        Some(*k) != except
            && !is_trashed(a)
            && a.get("accountName").and_then(Value::as_str) == Some(name)
    });
    if taken {
        return Err(ZErr::invalid_one("/accountName", "duplicate"));
    }
    Ok(())
}

pub async fn account_create(State(app): State<Arc<App>>, body: Bytes) -> ZResult {
    let body = body_obj(&body)?;
    check_keys(&body, ACCOUNT_KEYS)?;
    let mut db = app.db();
    let name = nonempty(&body, "accountName")
        .ok_or_else(|| ZErr::invalid_one("/accountName", "missing"))?;
    check_len(&body, "accountName", 200)?;
    check_account_name_free(&db, &name, None)?;
    check_email(&body, "email")?;
    check_owner(&db, &body)?;
    let cf = validate_cf(&db, "accounts", None, body.get("cf"))?;
    let id = db.id();
    let now = now_iso();
    let owner = nonempty(&body, "ownerId").or_else(|| db.admin_agent().and_then(|a| s(a, "id")));
    let mut rec = new_account(id, &name, &now, owner);
    apply_fields(&mut rec, &body, ACCOUNT_KEYS);
    merge_cf(&mut rec, cf);
    compact("accounts", &mut rec);
    db.accounts.insert(id, rec.clone());
    ok(render_account(&db, &rec, true))
}

pub fn new_account(id: u64, name: &str, now: &str, owner: Option<String>) -> Rec {
    json!({
        "id": id.to_string(), "accountName": name, "website": null, "phone": null, "email": null, "fax": null,
        "industry": null, "description": null, "street": null, "city": null, "state": null, "code": null,
        "country": null, "annualrevenue": null, "ownerId": owner, "createdTime": now, "modifiedTime": now,
        "isDeleted": false, "isTrashed": false, "isFollowing": "false", "associatedSLAIds": [],
        "zohoCRMAccount": null, "webUrl": web_url("Accounts", id), "cf": {},
        "customerHappiness": {"badPercentage": "0", "okPercentage": "0", "goodPercentage": "0"},
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

pub async fn account_patch(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ZResult {
    let body = body_obj(&body)?;
    check_keys(&body, ACCOUNT_KEYS)?;
    let mut db = app.db();
    db.live("accounts", &id).ok_or_else(ZErr::not_found)?;
    if body.contains_key("accountName") && nonempty(&body, "accountName").is_none() {
        return Err(ZErr::invalid_one("/accountName", "invalid"));
    }
    check_len(&body, "accountName", 200)?;
    let key: u64 = id.parse().map_err(|_| ZErr::not_found())?;
    if let Some(name) = nonempty(&body, "accountName") {
        check_account_name_free(&db, &name, Some(key))?;
    }
    check_email(&body, "email")?;
    check_owner(&db, &body)?;
    let cf = validate_cf(&db, "accounts", None, body.get("cf"))?;
    let rec = db.accounts.get_mut(&key).ok_or_else(ZErr::not_found)?;
    apply_fields(rec, &body, ACCOUNT_KEYS);
    merge_cf(rec, cf);
    rec.insert("modifiedTime".into(), Value::String(now_iso()));
    let rec = rec.clone();
    ok(render_account(&db, &rec, true))
}

/// Shared body of the `moveToTrash` operations: every id must name a live record.
pub fn trash(db: &mut Db, kind: &str, ids: &[String], pointer: &str) -> Result<(), ZErr> {
    if ids.iter().any(|id| db.live(kind, id).is_none()) {
        return Err(ZErr::invalid_one(pointer, "invalid"));
    }
    let now = now_iso();
    let map = db.map_mut(kind).ok_or_else(ZErr::not_found)?;
    for id in ids {
        if let Some(r) = id.parse::<u64>().ok().and_then(|k| map.get_mut(&k)) {
            r.insert("isTrashed".into(), Value::Bool(true));
            r.insert("modifiedTime".into(), Value::String(now.clone()));
        }
    }
    Ok(())
}

pub async fn accounts_trash(State(app): State<Arc<App>>, body: Bytes) -> ZResult {
    let body = body_obj(&body)?;
    check_keys(&body, &["accountIds"])?;
    let ids = id_list(&body, "accountIds")?;
    trash(&mut app.db(), "accounts", &ids, "/accountIds")?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---------- contacts ----------

const CONTACT_KEYS: &[&str] = &[
    "accountId",
    "cf",
    "city",
    "country",
    "customFields",
    "description",
    "email",
    "facebook",
    "firstName",
    "lastName",
    "mobile",
    "ownerId",
    "phone",
    "secondaryEmail",
    "state",
    "street",
    "title",
    "twitter",
    "type",
    "zip",
];
const CONTACT_LIST_KEYS: &[&str] = &[
    "id",
    "firstName",
    "lastName",
    "email",
    "secondaryEmail",
    "phone",
    "mobile",
    "ownerId",
    "type",
    "accountId",
    "photoURL",
    "isAnonymous",
    "isEndUser",
    "isSpam",
    "webUrl",
    "createdTime",
    "zohoCRMContact",
    "customerHappiness",
];

pub fn account_brief(db: &Db, account_id: Option<&str>) -> Value {
    match account_id.and_then(|a| db.accounts.get(&a.parse().ok()?)) {
        Some(a) => {
            json!({"website": a.get("website"), "accountName": a.get("accountName"), "id": a.get("id")})
        }
        None => Value::Null,
    }
}

pub fn render_contact(db: &Db, r: &Rec, full: bool, with_account: bool) -> Value {
    let mut out = public_of("contacts", r);
    let (cf, by_label) = render_cf(db, "contacts", r.get("cf"));
    out.insert("cf".into(), cf);
    out.insert("customFields".into(), by_label);
    out.insert(
        "owner".into(),
        owner_of(db, r.get("ownerId").and_then(Value::as_str)),
    );
    let mut v = if full {
        Value::Object(out.clone())
    } else {
        project(&out, CONTACT_LIST_KEYS)
    };
    if with_account {
        v["account"] = account_brief(db, r.get("accountId").and_then(Value::as_str));
    }
    v
}

pub fn new_contact(id: u64, last: &str, now: &str, owner: Option<String>) -> Rec {
    json!({
        "id": id.to_string(), "firstName": null, "lastName": last, "email": null, "secondaryEmail": null,
        "phone": null, "mobile": null, "accountId": null, "type": null, "title": null, "description": null,
        "street": null, "city": null, "state": null, "zip": null, "country": null, "facebook": null, "twitter": null,
        "ownerId": owner, "photoURL": null, "isAnonymous": false, "isEndUser": false, "isSpam": false,
        "isDeleted": false, "isTrashed": false, "isFollowing": "false", "zohoCRMContact": null,
        "customerHappiness": {"badPercentage": "0", "okPercentage": "0", "goodPercentage": "0"},
        "createdTime": now, "modifiedTime": now, "webUrl": web_url("Contacts", id), "cf": {},
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

fn check_contact_body(db: &Db, body: &Rec) -> Result<(), ZErr> {
    check_len(body, "lastName", 200)?;
    check_len(body, "firstName", 40)?;
    check_email(body, "email")?;
    check_email(body, "secondaryEmail")?;
    check_owner(db, body)?;
    if let Some(a) = nonempty(body, "accountId")
        && db.live("accounts", &a).is_none()
    {
        return Err(ZErr::invalid_one("/accountId", "invalid"));
    }
    Ok(())
}

pub async fn contacts(State(app): State<Arc<App>>, Query(q): Query<Q>) -> ZResult {
    let db = app.db();
    let (from, limit) = paging(&q, 10);
    let with_account = includes(&q).contains("accounts");
    let mut items: Vec<&Rec> = db.contacts.values().filter(|r| !is_trashed(r)).collect();
    sort_by_key(
        &mut items,
        q.get("sortBy").map(String::as_str),
        "createdTime",
    );
    let items = page(items, from, limit)
        .iter()
        .map(|r| render_contact(&db, r, false, with_account))
        .collect();
    Ok(list_response(items))
}

pub async fn contact_get(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<Q>,
) -> ZResult {
    let db = app.db();
    let r = db.live("contacts", &id).ok_or_else(ZErr::not_found)?;
    ok(render_contact(
        &db,
        r,
        true,
        includes(&q).contains("accounts"),
    ))
}

pub fn insert_contact(db: &mut Db, body: &Rec) -> Result<Rec, ZErr> {
    let last =
        nonempty(body, "lastName").ok_or_else(|| ZErr::invalid_one("/lastName", "missing"))?;
    check_contact_body(db, body)?;
    let cf = validate_cf(db, "contacts", None, body.get("cf"))?;
    let id = db.id();
    let owner = nonempty(body, "ownerId").or_else(|| db.admin_agent().and_then(|a| s(a, "id")));
    let mut rec = new_contact(id, &last, &now_iso(), owner);
    apply_fields(&mut rec, body, CONTACT_KEYS);
    merge_cf(&mut rec, cf);
    compact("contacts", &mut rec);
    db.contacts.insert(id, rec.clone());
    Ok(rec)
}

pub async fn contact_create(State(app): State<Arc<App>>, body: Bytes) -> ZResult {
    let body = body_obj(&body)?;
    check_keys(&body, CONTACT_KEYS)?;
    let mut db = app.db();
    let rec = insert_contact(&mut db, &body)?;
    ok(render_contact(&db, &rec, true, false))
}

pub async fn contact_patch(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ZResult {
    let body = body_obj(&body)?;
    check_keys(&body, CONTACT_KEYS)?;
    let mut db = app.db();
    db.live("contacts", &id).ok_or_else(ZErr::not_found)?;
    if body.contains_key("lastName") && nonempty(&body, "lastName").is_none() {
        return Err(ZErr::invalid_one("/lastName", "invalid"));
    }
    check_contact_body(&db, &body)?;
    let cf = validate_cf(&db, "contacts", None, body.get("cf"))?;
    let key: u64 = id.parse().map_err(|_| ZErr::not_found())?;
    let rec = db.contacts.get_mut(&key).ok_or_else(ZErr::not_found)?;
    apply_fields(rec, &body, CONTACT_KEYS);
    merge_cf(rec, cf);
    rec.insert("modifiedTime".into(), Value::String(now_iso()));
    let rec = rec.clone();
    ok(render_contact(&db, &rec, true, false))
}

pub async fn contacts_trash(State(app): State<Arc<App>>, body: Bytes) -> ZResult {
    let body = body_obj(&body)?;
    check_keys(&body, &["contactIds"])?;
    let ids = id_list(&body, "contactIds")?;
    trash(&mut app.db(), "contacts", &ids, "/contactIds")?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---------- products ----------

const PRODUCT_KEYS: &[&str] = &[
    "cf",
    "customFields",
    "departmentIds",
    "description",
    "manufacturer",
    "ownerId",
    "productCategory",
    "productCode",
    "productName",
    "unitPrice",
];
const PRODUCT_LIST_KEYS: &[&str] = &[
    "id",
    "productName",
    "productCode",
    "unitPrice",
    "departmentIds",
];

pub fn render_product(db: &Db, r: &Rec, full: bool) -> Value {
    let mut out = public(r);
    let (cf, by_label) = render_cf(db, "products", r.get("cf"));
    out.insert("cf".into(), cf);
    out.insert("customFields".into(), by_label);
    if full {
        Value::Object(out)
    } else {
        project(&out, PRODUCT_LIST_KEYS)
    }
}

pub fn new_product(
    id: u64,
    name: &str,
    departments: &[String],
    now: &str,
    owner: Option<String>,
) -> Rec {
    json!({
        "id": id.to_string(), "productName": name, "productCode": null, "unitPrice": null, "description": null,
        "productCategory": null, "manufacturer": null, "departmentIds": departments, "ownerId": owner.clone(),
        "layoutId": "1892000000074011", "isDeleted": false, "isTrashed": false, "createdBy": owner.clone(),
        "modifiedBy": owner, "createdTime": now, "modifiedTime": now, "cf": {},
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

pub async fn products(State(app): State<Arc<App>>, Query(q): Query<Q>) -> ZResult {
    let db = app.db();
    let (from, limit) = paging(&q, 10);
    let mut items: Vec<&Rec> = db
        .products
        .values()
        .filter(|r| !is_trashed(r))
        .filter(|r| {
            q.get("departmentId").is_none_or(|d| {
                r.get("departmentIds")
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(d.as_str())))
            })
        })
        .filter(|r| {
            q.get("ownerId")
                .is_none_or(|o| r.get("ownerId").and_then(Value::as_str) == Some(o.as_str()))
        })
        .collect();
    sort_by_key(
        &mut items,
        q.get("sortBy").map(String::as_str),
        "createdTime",
    );
    let items = page(items, from, limit)
        .iter()
        .map(|r| render_product(&db, r, false))
        .collect();
    Ok(list_response(items))
}

pub async fn product_get(State(app): State<Arc<App>>, Path(id): Path<String>) -> ZResult {
    let db = app.db();
    let r = db.live("products", &id).ok_or_else(ZErr::not_found)?;
    ok(render_product(&db, r, true))
}

fn check_product_body(db: &Db, body: &Rec) -> Result<(), ZErr> {
    check_len(body, "productName", 200)?;
    check_owner(db, body)?;
    if body.contains_key("departmentIds") {
        let deps = id_list(body, "departmentIds")?;
        if deps.iter().any(|d| db.live("departments", d).is_none()) {
            return Err(ZErr::invalid_one("/departmentIds", "invalid"));
        }
    }
    if let Some(p) = str_field(body, "unitPrice")
        && !p.is_empty()
        && p.parse::<f64>().is_err()
    {
        return Err(ZErr::invalid_one("/unitPrice", "invalid"));
    }
    Ok(())
}

pub async fn product_create(State(app): State<Arc<App>>, body: Bytes) -> ZResult {
    let body = body_obj(&body)?;
    check_keys(&body, PRODUCT_KEYS)?;
    let mut db = app.db();
    let name = nonempty(&body, "productName")
        .ok_or_else(|| ZErr::invalid_one("/productName", "missing"))?;
    if !body.contains_key("departmentIds") {
        return Err(ZErr::invalid_one("/departmentIds", "missing"));
    }
    check_product_body(&db, &body)?;
    let cf = validate_cf(&db, "products", None, body.get("cf"))?;
    let deps = id_list(&body, "departmentIds")?;
    let id = db.id();
    let owner = nonempty(&body, "ownerId").or_else(|| db.admin_agent().and_then(|a| s(a, "id")));
    let mut rec = new_product(id, &name, &deps, &now_iso(), owner);
    apply_fields(&mut rec, &body, PRODUCT_KEYS);
    if let Some(p) = str_field(&body, "unitPrice").and_then(|p| p.parse::<f64>().ok()) {
        rec.insert("unitPrice".into(), Value::String(format!("{p:.1}")));
    }
    merge_cf(&mut rec, cf);
    db.products.insert(id, rec.clone());
    ok(render_product(&db, &rec, true))
}

pub async fn product_patch(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ZResult {
    let body = body_obj(&body)?;
    check_keys(&body, PRODUCT_KEYS)?;
    let mut db = app.db();
    db.live("products", &id).ok_or_else(ZErr::not_found)?;
    check_product_body(&db, &body)?;
    let cf = validate_cf(&db, "products", None, body.get("cf"))?;
    let key: u64 = id.parse().map_err(|_| ZErr::not_found())?;
    let rec = db.products.get_mut(&key).ok_or_else(ZErr::not_found)?;
    apply_fields(rec, &body, PRODUCT_KEYS);
    merge_cf(rec, cf);
    rec.insert("modifiedTime".into(), Value::String(now_iso()));
    let rec = rec.clone();
    ok(render_product(&db, &rec, true))
}

pub async fn products_trash(State(app): State<Arc<App>>, body: Bytes) -> ZResult {
    let body = body_obj(&body)?;
    check_keys(&body, &["productIds", "departmentId"])?;
    let ids = id_list(&body, "productIds")?;
    trash(&mut app.db(), "products", &ids, "/productIds")?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---------- fields ----------

pub fn render_field(f: &Rec) -> Value {
    Value::Object(public(f))
}

pub async fn fields(State(app): State<Arc<App>>, Query(q): Query<Q>) -> ZResult {
    let module = q
        .get("module")
        .ok_or_else(|| ZErr::missing_param("module"))?;
    let db = app.db();
    let dept = q
        .get("departmentId")
        .or_else(|| q.get("associatedDepartments"));
    let api_names: Option<Vec<&str>> = q.get("apiNames").map(|v| v.split(',').collect());
    let only_custom = q
        .get("filter")
        .is_some_and(|f| f.replace(' ', "").contains("isCustomField='true'"));
    let mut items: Vec<Value> = Vec::new();
    for (n, (api, label, ftype, allowed)) in system_fields(module).into_iter().enumerate() {
        if only_custom {
            break;
        }
        let allowed: Vec<String> = allowed.iter().map(|a| a.to_string()).collect();
        let f = field_record(
            ID_BASE - 1000 + n as u64,
            module,
            api,
            label,
            ftype,
            &allowed,
            false,
            None,
            &[],
        );
        items.push(render_field(&f));
    }
    for f in db.fields.values() {
        if f.get("_module").and_then(Value::as_str) != Some(module.as_str()) || is_trashed(f) {
            continue;
        }
        if let (Some(d), Some(scoped)) = (
            dept,
            f.get("associatedDepartments").and_then(Value::as_array),
        ) && !scoped.is_empty()
            && !scoped.iter().any(|x| x.as_str() == Some(d.as_str()))
        {
            continue;
        }
        items.push(render_field(f));
    }
    if let Some(names) = api_names {
        items.retain(|f| {
            f.get("apiName")
                .and_then(Value::as_str)
                .is_some_and(|a| names.contains(&a))
        });
    }
    Ok(list_response(items))
}

pub async fn field_get(State(app): State<Arc<App>>, Path(id): Path<String>) -> ZResult {
    let db = app.db();
    let f = db.live("fields", &id).ok_or_else(ZErr::not_found)?;
    ok(render_field(f))
}

const FIELD_TYPES: &[&str] = &[
    "Text",
    "Number",
    "Percent",
    "Decimal",
    "Currency",
    "Date",
    "DateTime",
    "Email",
    "Phone",
    "Picklist",
    "URL",
    "Textarea",
    "Boolean",
    "Multiselect",
    "LargeText",
];

pub async fn field_create(State(app): State<Arc<App>>, Query(q): Query<Q>, body: Bytes) -> ZResult {
    let module = q
        .get("module")
        .ok_or_else(|| ZErr::missing_param("module"))?
        .clone();
    let body = body_obj(&body)?;
    check_keys(
        &body,
        &[
            "displayLabel",
            "type",
            "maxLength",
            "isTrackLastActivityTime",
            "allowedValues",
            "associatedDepartments",
            "departmentId",
            "isMandatory",
            "defaultValue",
            "decimalPlaces",
            "showToHelpCenter",
        ],
    )?;
    let label = nonempty(&body, "displayLabel")
        .ok_or_else(|| ZErr::invalid_one("/displayLabel", "missing"))?;
    check_len(&body, "displayLabel", 200)?;
    let ftype = nonempty(&body, "type").ok_or_else(|| ZErr::invalid_one("/type", "missing"))?;
    if !FIELD_TYPES.contains(&ftype.as_str()) {
        return Err(ZErr::invalid_one("/type", "invalid"));
    }
    let max_length = match str_field(&body, "maxLength") {
        Some(m) => Some(
            m.parse::<u64>()
                .ok()
                .filter(|m| (1..=255).contains(m))
                .ok_or_else(|| ZErr::invalid_one("/maxLength", "invalid"))?,
        ),
        None if ftype == "Text" => return Err(ZErr::invalid_one("/maxLength", "missing")),
        None => None,
    };
    let mut allowed: Vec<String> = Vec::new();
    if matches!(ftype.as_str(), "Picklist" | "Multiselect") {
        let list = body
            .get("allowedValues")
            .and_then(Value::as_array)
            .ok_or_else(|| ZErr::invalid_one("/allowedValues", "missing"))?;
        for v in list {
            let text = match v {
                Value::String(t) => t.clone(),
                Value::Object(o) => o
                    .get("value")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_default(),
                _ => String::new(),
            };
            if text.is_empty() || text.chars().count() > 120 {
                return Err(ZErr::invalid_one("/allowedValues", "invalid"));
            }
            if allowed.contains(&text) {
                return Err(ZErr::invalid_one("/allowedValues", "duplicate"));
            }
            allowed.push(text);
        }
        if allowed.is_empty() {
            return Err(ZErr::invalid_one("/allowedValues", "missing"));
        }
    }
    let mut departments: Vec<String> = match body.get("associatedDepartments") {
        Some(_) => id_list(&body, "associatedDepartments")?,
        None => Vec::new(),
    };
    if let Some(d) = nonempty(&body, "departmentId") {
        departments.push(d);
    }
    let mut db = app.db();
    if departments
        .iter()
        .any(|d| db.live("departments", d).is_none())
    {
        return Err(ZErr::invalid_one("/associatedDepartments", "invalid"));
    }
    let api = cf_api_name(&label);
    let clash = db.fields.values().any(|f| {
        !is_trashed(f)
            && f.get("_module").and_then(Value::as_str) == Some(module.as_str())
            && (f.get("apiName").and_then(Value::as_str) == Some(api.as_str())
                || f.get("displayLabel")
                    .and_then(Value::as_str)
                    .is_some_and(|l| l.eq_ignore_ascii_case(&label)))
    });
    if clash
        || system_fields(&module)
            .iter()
            .any(|(_, l, _, _)| l.eq_ignore_ascii_case(&label))
    {
        return Err(ZErr::invalid_one("/displayLabel", "duplicate"));
    }
    let id = db.id();
    let mut rec = field_record(
        id,
        &module,
        &api,
        &label,
        &ftype,
        &allowed,
        true,
        max_length,
        &departments,
    );
    rec.insert("createdTime".into(), Value::String(now_iso()));
    db.fields.insert(id, rec.clone());
    Ok((StatusCode::CREATED, axum::Json(render_field(&rec))).into_response())
}

// ---------- uploads ----------

/// Reads the multipart field `file`: (file name, content type, bytes).
pub async fn read_file(mut mp: Multipart, limit: usize) -> Result<(String, String, Bytes), ZErr> {
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => return Err(ZErr::invalid_one("/file", "missing")),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ZErr::too_large(limit));
            }
            Err(_) => return Err(ZErr::bad_request("The multipart body could not be read.")),
        };
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().unwrap_or("file").to_string();
        let ctype = field
            .content_type()
            .unwrap_or("application/octet-stream")
            .to_string();
        let bytes = field.bytes().await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ZErr::too_large(limit)
            } else {
                ZErr::bad_request("The multipart body could not be read.")
            }
        })?;
        return Ok((name, ctype, bytes));
    }
}

pub async fn upload(State(app): State<Arc<App>>, mp: Multipart) -> ZResult {
    let (name, ctype, bytes) = read_file(mp, app.cfg.max_upload_bytes).await?;
    let mut db = app.db();
    let id = db.id();
    let creator = db.admin_agent().and_then(|a| s(a, "id"));
    let meta = json!({
        "id": id.to_string(), "name": name, "size": bytes.len().to_string(), "creatorId": creator,
        "createdTime": now_iso(), "isPublic": false, "href": format!("{}/uploads/{id}/contents", app.api()),
        "previewurl": null, "_contentType": ctype,
    });
    let meta = meta.as_object().cloned().unwrap_or_default();
    db.uploads.insert(
        id,
        Blob {
            meta: meta.clone(),
            bytes,
        },
    );
    ok(Value::Object(public(&meta)))
}
