//! Tickets, threads, comments, ticket attachments, tasks, tags and search.

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::api_core::{
    account_brief, insert_contact, render_account, render_cf, render_contact, trash, validate_cf,
    web_url,
};
use crate::app::App;
use crate::common::*;
use crate::errors::{ZErr, ZResult, list_response, ok};
use crate::gate::parse_range;
use crate::model::*;

// ---------- tickets ----------

const TICKET_CREATE_KEYS: &[&str] = &[
    "accountId",
    "assigneeId",
    "category",
    "cf",
    "channel",
    "classification",
    "contact",
    "contactId",
    "customFields",
    "departmentId",
    "description",
    "dueDate",
    "email",
    "entitySkills",
    "language",
    "layoutId",
    "phone",
    "priority",
    "productId",
    "resolution",
    "secondaryContacts",
    "status",
    "subCategory",
    "subject",
    "teamId",
    "uploads",
];
const TICKET_PATCH_KEYS: &[&str] = &[
    "accountId",
    "assigneeId",
    "category",
    "cf",
    "channel",
    "classification",
    "contactId",
    "customFields",
    "departmentId",
    "description",
    "dueDate",
    "email",
    "entitySkills",
    "language",
    "layoutId",
    "phone",
    "priority",
    "productId",
    "resolution",
    "secondaryContacts",
    "sharedDepartments",
    "status",
    "subCategory",
    "subject",
    "teamId",
    "uploads",
];
const TICKET_LIST_KEYS: &[&str] = &[
    "id",
    "ticketNumber",
    "subject",
    "status",
    "statusType",
    "priority",
    "channel",
    "channelCode",
    "email",
    "phone",
    "language",
    "category",
    "subCategory",
    "contactId",
    "accountId",
    "departmentId",
    "assigneeId",
    "teamId",
    "productId",
    "layoutId",
    "dueDate",
    "responseDueDate",
    "customerResponseTime",
    "onholdTime",
    "closedTime",
    "createdTime",
    "threadCount",
    "commentCount",
    "isArchived",
    "isSpam",
    "sentiment",
    "relationshipType",
    "webUrl",
    "source",
    "lastThread",
];

pub fn new_ticket(id: u64, number: u64, now: &str, creator: Option<String>) -> Rec {
    json!({
        "id": id.to_string(), "ticketNumber": number.to_string(), "subject": null, "description": null,
        "status": "Open", "statusType": "Open", "priority": null, "channel": "Email", "channelCode": null,
        "language": "English", "category": null, "subCategory": null, "classification": null,
        "email": null, "phone": null, "contactId": null, "accountId": null, "departmentId": null,
        "assigneeId": null, "teamId": null, "productId": null, "dueDate": null, "responseDueDate": null,
        "customerResponseTime": now, "onholdTime": null, "closedTime": null, "createdTime": now,
        "modifiedTime": now, "createdBy": creator.clone(), "modifiedBy": creator,
        "threadCount": "0", "commentCount": "0", "attachmentCount": "0", "taskCount": "0", "tagCount": "0",
        "approvalCount": "0", "timeEntryCount": "0", "followerCount": "0", "sharedCount": "0",
        "isOverDue": false, "isResponseOverdue": false, "isEscalated": false, "isSpam": false,
        "isArchived": false, "isDeleted": "false", "isTrashed": false, "isRead": false, "isFollowing": "false",
        "sentiment": null, "relationshipType": "NONE", "layoutId": "1892000000074011",
        "layoutDetails": {"id": "1892000000074011", "layoutName": "Default Ticket Layout"},
        "webUrl": web_url("Cases", id),
        "source": {"appName": null, "extId": null, "type": "SYSTEM", "permalink": null, "appPhotoURL": null},
        "resolution": null, "sharedDepartments": [], "secondaryContacts": [], "entitySkills": [],
        "channelRelatedInfo": null, "contractId": null, "slaId": null, "lastThread": null, "cf": {},
        "_tags": [],
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

fn agent_brief(db: &Db, id: Option<&str>) -> Value {
    match id.and_then(|i| db.agents.get(&i.parse().ok()?)) {
        Some(a) => {
            json!({"firstName": a.get("firstName"), "lastName": a.get("lastName"), "photoURL": a.get("photoURL"),
            "id": a.get("id"), "email": a.get("emailId"), "emailId": a.get("emailId"), "zuid": a.get("zuid")})
        }
        None => Value::Null,
    }
}

fn contact_brief(db: &Db, id: Option<&str>) -> Value {
    match id.and_then(|i| db.contacts.get(&i.parse().ok()?)) {
        Some(c) => {
            json!({"lastName": c.get("lastName"), "firstName": c.get("firstName"), "phone": c.get("phone"),
            "mobile": c.get("mobile"), "id": c.get("id"), "isSpam": c.get("isSpam"), "type": c.get("type"),
            "email": c.get("email"), "account": account_brief(db, c.get("accountId").and_then(Value::as_str))})
        }
        None => Value::Null,
    }
}

fn department_brief(db: &Db, id: Option<&str>) -> Value {
    match id.and_then(|i| db.departments.get(&i.parse().ok()?)) {
        Some(d) => json!({"name": d.get("name"), "id": d.get("id")}),
        None => Value::Null,
    }
}

fn product_brief(db: &Db, id: Option<&str>) -> Value {
    match id.and_then(|i| db.products.get(&i.parse().ok()?)) {
        Some(p) => json!({"id": p.get("id"), "productName": p.get("productName")}),
        None => Value::Null,
    }
}

pub fn render_ticket(db: &Db, r: &Rec, full: bool, inc: &HashSet<String>) -> Value {
    let mut out = public_of("tickets", r);
    if full {
        let (cf, by_label) = render_cf(db, "tickets", r.get("cf"));
        out.insert("cf".into(), cf);
        out.insert("customFields".into(), by_label);
    }
    let mut v = if full {
        Value::Object(out)
    } else {
        let mut m = serde_json::Map::new();
        for k in TICKET_LIST_KEYS {
            m.insert(
                (*k).to_string(),
                out.get(*k).cloned().unwrap_or(Value::Null),
            );
        }
        Value::Object(m)
    };
    let get = |k: &str| r.get(k).and_then(Value::as_str);
    if inc.contains("contacts") {
        v["contact"] = contact_brief(db, get("contactId"));
    }
    if inc.contains("assignee") {
        v["assignee"] = agent_brief(db, get("assigneeId"));
    }
    if inc.contains("departments") {
        v["department"] = department_brief(db, get("departmentId"));
    }
    if inc.contains("products") {
        v["product"] = product_brief(db, get("productId"));
    }
    if inc.contains("team") {
        v["team"] = Value::Null;
    }
    if inc.contains("isRead") {
        v["isRead"] = r.get("isRead").cloned().unwrap_or(Value::Bool(false));
    }
    v
}

pub fn ticket_key(db: &Db, id: &str) -> Result<u64, ZErr> {
    db.live("tickets", id).ok_or_else(ZErr::not_found)?;
    id.parse().map_err(|_| ZErr::not_found())
}

fn bump(db: &mut Db, ticket: u64, key: &str, delta: i64) {
    if let Some(t) = db.tickets.get_mut(&ticket) {
        let n = t
            .get(key)
            .and_then(Value::as_str)
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0);
        t.insert(key.into(), Value::String((n + delta).max(0).to_string()));
    }
}

fn touch(db: &mut Db, ticket: u64) {
    let who = db.admin_agent().and_then(|a| s(a, "id"));
    if let Some(t) = db.tickets.get_mut(&ticket) {
        t.insert("modifiedTime".into(), Value::String(now_iso()));
        t.insert("modifiedBy".into(), json!(who));
    }
}

pub async fn tickets(State(app): State<Arc<App>>, Query(q): Query<Q>) -> ZResult {
    let db = app.db();
    let (from, limit) = paging(&q, 25);
    let inc = includes(&q);
    let statuses: Option<Vec<String>> = q
        .get("status")
        .map(|v| v.split(',').map(|s| s.trim().to_lowercase()).collect());
    let channels: Option<Vec<String>> = q
        .get("channel")
        .map(|v| v.split(',').map(|s| s.trim().to_lowercase()).collect());
    let assignees: Option<Vec<&str>> = q.get("assignee").map(|v| v.split(',').collect());
    let received_after = q
        .get("receivedInDays")
        .and_then(|d| d.parse::<i64>().ok())
        .map(|d| iso(jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * d)));
    let mut items: Vec<&Rec> = db
        .tickets
        .values()
        .filter(|t| !is_trashed(t))
        .filter(|t| {
            q.get("departmentId")
                .is_none_or(|d| t.get("departmentId").and_then(Value::as_str) == Some(d.as_str()))
        })
        .filter(|t| {
            statuses.as_ref().is_none_or(|st| {
                let status = t
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_lowercase();
                let stype = t
                    .get("statusType")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_lowercase();
                st.contains(&status) || st.contains(&stype)
            })
        })
        .filter(|t| {
            channels.as_ref().is_none_or(|ch| {
                ch.contains(
                    &t.get("channel")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_lowercase(),
                )
            })
        })
        .filter(|t| {
            assignees.as_ref().is_none_or(|a| {
                let have = t.get("assigneeId").and_then(Value::as_str);
                a.iter()
                    .any(|w| (*w == "Unassigned" && have.is_none()) || have == Some(*w))
            })
        })
        .filter(|t| {
            received_after.as_ref().is_none_or(|after| {
                t.get("createdTime")
                    .and_then(Value::as_str)
                    .is_some_and(|c| c >= after.as_str())
            })
        })
        .collect();
    let sort = q
        .get("sortBy")
        .map(|s| s.replace("recentThread", "_lastThreadTime"));
    sort_by_key(&mut items, sort.as_deref(), "createdTime");
    let items = page(items, from, limit)
        .iter()
        .map(|t| render_ticket(&db, t, false, &inc))
        .collect();
    Ok(list_response(items))
}

pub async fn ticket_get(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<Q>,
) -> ZResult {
    let db = app.db();
    let t = db.live("tickets", &id).ok_or_else(ZErr::not_found)?;
    ok(render_ticket(&db, t, true, &includes(&q)))
}

/// Validates the ticket fields shared by create and update; `dept` is the department the ticket will be in.
fn check_ticket_body(db: &Db, body: &Rec, dept: Option<&str>) -> Result<Rec, ZErr> {
    check_len(body, "subject", 1000)?;
    check_len(body, "description", 65535)?;
    check_len(body, "resolution", 65535)?;
    if let Some(e) = str_field(body, "email")
        && !e.is_empty()
        && !e.contains('@')
    {
        return Err(ZErr::invalid_one("/email", "invalid"));
    }
    for (key, kind) in [
        ("assigneeId", "agents"),
        ("productId", "products"),
        ("accountId", "accounts"),
        ("contactId", "contacts"),
    ] {
        if let Some(v) = nonempty(body, key)
            && db.live(kind, &v).is_none()
        {
            return Err(ZErr::invalid_one(&format!("/{key}"), "invalid"));
        }
    }
    if let Some(a) = nonempty(body, "assigneeId")
        && db
            .live("agents", &a)
            .and_then(|a| a.get("status"))
            .and_then(Value::as_str)
            != Some("ACTIVE")
    {
        return Err(ZErr::invalid_one("/assigneeId", "invalid"));
    }
    if let Some(d) = body.get("dueDate")
        && !d.is_null()
        && d.as_str() != Some("")
        && parse_time(d).is_none()
    {
        return Err(ZErr::invalid_one("/dueDate", "invalid"));
    }
    if body.contains_key("secondaryContacts")
        && !body.get("secondaryContacts").is_some_and(Value::is_null)
    {
        let list = body
            .get("secondaryContacts")
            .and_then(Value::as_array)
            .ok_or_else(|| ZErr::invalid_one("/secondaryContacts", "invalid"))?;
        if list.len() > 20
            || list
                .iter()
                .any(|c| c.as_str().is_none_or(|c| db.live("contacts", c).is_none()))
        {
            return Err(ZErr::invalid_one("/secondaryContacts", "invalid"));
        }
    }
    if let Some(ups) = body.get("uploads").filter(|u| !u.is_null()) {
        let list = ups
            .as_array()
            .ok_or_else(|| ZErr::invalid_one("/uploads", "invalid"))?;
        if list.len() > 20
            || list.iter().any(|u| {
                str_id(u)
                    .and_then(|u| u.parse::<u64>().ok())
                    .is_none_or(|u| !db.uploads.contains_key(&u))
            })
        {
            return Err(ZErr::invalid_one("/uploads", "invalid"));
        }
    }
    validate_cf(db, "tickets", dept, body.get("cf"))
}

fn str_id(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Copies writable keys from the body onto the ticket and keeps derived fields in step.
fn apply_ticket(rec: &mut Rec, body: &Rec, keys: &[&str], cf: Rec) {
    for k in keys {
        if matches!(*k, "cf" | "customFields" | "contact" | "uploads") {
            continue;
        }
        if let Some(v) = body.get(*k) {
            let v = match *k {
                "dueDate" => parse_time(v).map(Value::String).unwrap_or(Value::Null),
                "productId" | "assigneeId" | "accountId" | "teamId" => str_id(v)
                    .filter(|s| !s.is_empty())
                    .map(Value::String)
                    .unwrap_or(Value::Null),
                "contactId" | "departmentId" => str_id(v).map(Value::String).unwrap_or(Value::Null),
                _ => v.clone(),
            };
            rec.insert((*k).to_string(), v);
        }
    }
    let mut current = rec
        .get("cf")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    current.extend(cf);
    rec.insert("cf".into(), Value::Object(current));
    let status = rec
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("Open")
        .to_string();
    let stype = status_type(&status);
    rec.insert("statusType".into(), json!(stype));
    let closed = rec.get("closedTime").cloned().unwrap_or(Value::Null);
    match (stype, closed.is_null()) {
        ("Closed", true) => {
            rec.insert("closedTime".into(), Value::String(now_iso()));
        }
        ("Closed", false) => {}
        _ => {
            rec.insert("closedTime".into(), Value::Null);
        }
    }
}

fn attach_uploads(db: &mut Db, app: &App, ticket: u64, body: &Rec) {
    let ids: Vec<u64> = body
        .get("uploads")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|u| str_id(u).and_then(|s| s.parse().ok()))
                .collect()
        })
        .unwrap_or_default();
    for up in ids {
        if let Some(blob) = db.uploads.get(&up).cloned() {
            let name = s(&blob.meta, "name").unwrap_or_default();
            let ctype = s(&blob.meta, "_contentType").unwrap_or_default();
            insert_ticket_attachment(db, app, ticket, &name, &ctype, blob.bytes, true);
        }
    }
}

pub async fn ticket_create(State(app): State<Arc<App>>, body: Bytes) -> ZResult {
    let body = body_obj(&body)?;
    check_keys(&body, TICKET_CREATE_KEYS)?;
    let mut db = app.db();
    let mut missing: Vec<(&str, &str)> = Vec::new();
    let dept = nonempty(&body, "departmentId");
    if dept.is_none() {
        missing.push(("/departmentId", "missing"));
    }
    let contact_obj = body.get("contact").and_then(Value::as_object).cloned();
    if nonempty(&body, "contactId").is_none() && contact_obj.is_none() {
        missing.push(("/contactId", "missing"));
    }
    if nonempty(&body, "subject").is_none() {
        missing.push(("/subject", "missing"));
    }
    if !missing.is_empty() {
        return Err(ZErr::invalid(&missing));
    }
    let dept = dept.unwrap_or_default();
    if db.live("departments", &dept).is_none() {
        return Err(ZErr::invalid_one("/departmentId", "invalid"));
    }
    let cf = check_ticket_body(&db, &body, Some(&dept))?;
    let contact_id = match (nonempty(&body, "contactId"), contact_obj) {
        (Some(c), _) => c,
        (None, Some(c)) => {
            for k in c.keys() {
                if ![
                    "firstName",
                    "lastName",
                    "email",
                    "phone",
                    "mobile",
                    "accountId",
                ]
                .contains(&k.as_str())
                {
                    return Err(ZErr::invalid_one(&format!("/contact/{k}"), "invalid"));
                }
            }
            let email = nonempty(&c, "email");
            let existing = email.as_ref().and_then(|e| {
                db.contacts
                    .values()
                    .find(|x| {
                        !is_trashed(x)
                            && x.get("email")
                                .and_then(Value::as_str)
                                .is_some_and(|xe| xe.eq_ignore_ascii_case(e))
                    })
                    .and_then(|x| s(x, "id"))
            });
            match existing {
                Some(id) => id,
                None => {
                    if nonempty(&c, "lastName").is_none() {
                        return Err(ZErr::invalid_one("/contact/lastName", "missing"));
                    }
                    let rec = insert_contact(&mut db, &c)
                        .map_err(|_| ZErr::invalid_one("/contact", "invalid"))?;
                    s(&rec, "id").unwrap_or_default()
                }
            }
        }
        (None, None) => unreachable!("checked above"),
    };
    let id = db.id();
    let number = db.next_ticket_number;
    db.next_ticket_number += 1;
    let creator = db.admin_agent().and_then(|a| s(a, "id"));
    let mut rec = new_ticket(id, number, &now_iso(), creator);
    apply_ticket(&mut rec, &body, TICKET_CREATE_KEYS, cf);
    rec.insert("contactId".into(), Value::String(contact_id.clone()));
    if rec.get("accountId").is_none_or(Value::is_null) {
        let account = db
            .contacts
            .get(&contact_id.parse().unwrap_or(0))
            .and_then(|c| c.get("accountId").cloned())
            .unwrap_or(Value::Null);
        rec.insert("accountId".into(), account);
    }
    if rec.get("email").is_none_or(Value::is_null) {
        let email = db
            .contacts
            .get(&contact_id.parse().unwrap_or(0))
            .and_then(|c| c.get("email").cloned())
            .unwrap_or(Value::Null);
        rec.insert("email".into(), email);
    }
    compact("tickets", &mut rec);
    db.tickets.insert(id, rec);
    attach_uploads(&mut db, &app, id, &body);
    let rec = db.tickets.get(&id).cloned().unwrap_or_default();
    ok(render_ticket(&db, &rec, true, &HashSet::new()))
}

pub async fn ticket_patch(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ZResult {
    let body = body_obj(&body)?;
    check_keys(&body, TICKET_PATCH_KEYS)?;
    let mut db = app.db();
    let key = ticket_key(&db, &id)?;
    for k in ["subject", "departmentId", "contactId"] {
        if body.contains_key(k) && nonempty(&body, k).is_none() {
            return Err(ZErr::invalid_one(&format!("/{k}"), "invalid"));
        }
    }
    let dept = nonempty(&body, "departmentId")
        .or_else(|| db.tickets.get(&key).and_then(|t| s(t, "departmentId")));
    if let Some(d) = &dept
        && db.live("departments", d).is_none()
    {
        return Err(ZErr::invalid_one("/departmentId", "invalid"));
    }
    let cf = check_ticket_body(&db, &body, dept.as_deref())?;
    if let Some(rec) = db.tickets.get_mut(&key) {
        apply_ticket(rec, &body, TICKET_PATCH_KEYS, cf);
    }
    touch(&mut db, key);
    attach_uploads(&mut db, &app, key, &body);
    let rec = db.tickets.get(&key).cloned().unwrap_or_default();
    ok(render_ticket(&db, &rec, true, &HashSet::new()))
}

pub async fn tickets_trash(State(app): State<Arc<App>>, body: Bytes) -> ZResult {
    let body = body_obj(&body)?;
    check_keys(&body, &["ticketIds"])?;
    let ids = id_list(&body, "ticketIds")?;
    trash(&mut app.db(), "tickets", &ids, "/ticketIds")?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---------- threads ----------

fn thread_of(db: &Db, ticket: &str, thread: &str) -> Result<Rec, ZErr> {
    ticket_key(db, ticket)?;
    let t = db.live("threads", thread).ok_or_else(ZErr::not_found)?;
    if t.get("_ticketId").and_then(Value::as_str) != Some(ticket) {
        return Err(ZErr::not_found());
    }
    Ok(t.clone())
}

fn thread_attachments(app: &App, db: &Db, ticket: &str, thread: &str) -> Vec<Value> {
    db.attachments
        .values()
        .filter(|b| b.meta.get("_threadId").and_then(Value::as_str) == Some(thread))
        .map(|b| {
            let id = s(&b.meta, "id").unwrap_or_default();
            json!({"id": id, "name": b.meta.get("name"), "size": b.bytes.len().to_string(),
                "href": format!("{}/tickets/{ticket}/threads/{thread}/attachments/{id}/content", app.api()), "previewurl": null})
        })
        .collect()
}

fn render_thread(app: &App, db: &Db, t: &Rec, mode: ThreadView, inc: &HashSet<String>) -> Value {
    let mut out = public_of("threads", t);
    let ticket = s(t, "_ticketId").unwrap_or_default();
    let id = s(t, "id").unwrap_or_default();
    let content = out
        .remove("content")
        .and_then(|c| c.as_str().map(str::to_string))
        .unwrap_or_default();
    let (cut, truncated) = truncate_chars(&content, app.cfg.thread_truncate_chars);
    out.insert(
        "isContentTruncated".into(),
        Value::Bool(truncated && mode != ThreadView::FullContent),
    );
    let full_url = format!("{}/tickets/{ticket}/threads/{id}/fullContent", app.api());
    out.insert(
        "fullContentURL".into(),
        if truncated {
            Value::String(full_url)
        } else {
            Value::Null
        },
    );
    match mode {
        ThreadView::Summary => {}
        ThreadView::Get | ThreadView::FullContent => {
            let body = if mode == ThreadView::Get {
                cut
            } else {
                content.clone()
            };
            if inc.contains("plainText") {
                out.insert("plainText".into(), Value::String(strip_tags(&body)));
            }
            out.insert("content".into(), Value::String(body));
            out.insert(
                "attachments".into(),
                Value::Array(thread_attachments(app, db, &ticket, &id)),
            );
        }
    }
    Value::Object(out)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ThreadView {
    Summary,
    Get,
    FullContent,
}

pub async fn threads(
    State(app): State<Arc<App>>,
    Path(ticket): Path<String>,
    Query(q): Query<Q>,
) -> ZResult {
    let mut db = app.db();
    ticket_key(&db, &ticket)?;
    let (from, limit) = paging(&q, 10);
    let ids = db.children("threads", &ticket);
    let mut items: Vec<&Rec> = ids
        .iter()
        .filter_map(|id| db.threads.get(id))
        .filter(|t| {
            !is_trashed(t) && t.get("_ticketId").and_then(Value::as_str) == Some(ticket.as_str())
        })
        .collect();
    sort_by_key(
        &mut items,
        q.get("sortBy").map(String::as_str),
        "-sendDateTime",
    );
    let none = HashSet::new();
    let items = page(items, from, limit)
        .iter()
        .map(|t| render_thread(&app, &db, t, ThreadView::Summary, &none))
        .collect();
    Ok(list_response(items))
}

pub async fn thread_get(
    State(app): State<Arc<App>>,
    Path((ticket, thread)): Path<(String, String)>,
    Query(q): Query<Q>,
) -> ZResult {
    let db = app.db();
    let t = thread_of(&db, &ticket, &thread)?;
    ok(render_thread(&app, &db, &t, ThreadView::Get, &includes(&q)))
}

pub async fn thread_full(
    State(app): State<Arc<App>>,
    Path((ticket, thread)): Path<(String, String)>,
    Query(q): Query<Q>,
) -> ZResult {
    let db = app.db();
    let t = thread_of(&db, &ticket, &thread)?;
    ok(render_thread(
        &app,
        &db,
        &t,
        ThreadView::FullContent,
        &includes(&q),
    ))
}

fn file_response(blob: &Blob) -> Response {
    let ctype = s(&blob.meta, "_contentType")
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "application/octet-stream".into());
    let name = s(&blob.meta, "name")
        .unwrap_or_else(|| "file".into())
        .replace('"', "");
    let mut r = Response::new(Body::from(blob.bytes.clone()));
    if let Ok(v) = HeaderValue::from_str(&ctype) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        r.headers_mut().insert(http::header::CONTENT_DISPOSITION, v);
    }
    r
}

pub async fn thread_attachment_content(
    State(app): State<Arc<App>>,
    Path((ticket, thread, att)): Path<(String, String, String)>,
) -> ZResult {
    let db = app.db();
    thread_of(&db, &ticket, &thread)?;
    let blob = att
        .parse::<u64>()
        .ok()
        .and_then(|a| db.attachments.get(&a))
        .filter(|b| b.meta.get("_threadId").and_then(Value::as_str) == Some(thread.as_str()))
        .ok_or_else(ZErr::not_found)?;
    Ok(file_response(blob))
}

// ---------- comments ----------

fn render_comment(c: &Rec, inc: &HashSet<String>) -> Value {
    let mut out = public(c);
    if inc.contains("plainText") {
        let text = strip_tags(c.get("content").and_then(Value::as_str).unwrap_or_default());
        out.insert("plainText".into(), Value::String(text));
    }
    if inc.contains("mentions") {
        out.insert("mention".into(), json!([]));
    }
    Value::Object(out)
}

fn comment_of(db: &Db, ticket: &str, comment: &str) -> Result<u64, ZErr> {
    ticket_key(db, ticket)?;
    let c = db.live("comments", comment).ok_or_else(ZErr::not_found)?;
    if c.get("_ticketId").and_then(Value::as_str) != Some(ticket) {
        return Err(ZErr::not_found());
    }
    comment.parse().map_err(|_| ZErr::not_found())
}

pub async fn comments(
    State(app): State<Arc<App>>,
    Path(ticket): Path<String>,
    Query(q): Query<Q>,
) -> ZResult {
    let mut db = app.db();
    ticket_key(&db, &ticket)?;
    let (from, limit) = paging(&q, 50);
    let inc = includes(&q);
    let ids = db.children("comments", &ticket);
    let mut items: Vec<&Rec> = ids
        .iter()
        .filter_map(|id| db.comments.get(id))
        .filter(|c| {
            !is_trashed(c) && c.get("_ticketId").and_then(Value::as_str) == Some(ticket.as_str())
        })
        .collect();
    sort_by_key(
        &mut items,
        q.get("sortBy").map(String::as_str),
        "commentedTime",
    );
    let items = page(items, from, limit)
        .iter()
        .map(|c| render_comment(c, &inc))
        .collect();
    Ok(list_response(items))
}

pub async fn comment_get(
    State(app): State<Arc<App>>,
    Path((ticket, comment)): Path<(String, String)>,
    Query(q): Query<Q>,
) -> ZResult {
    let db = app.db();
    let key = comment_of(&db, &ticket, &comment)?;
    ok(render_comment(&db.comments[&key], &includes(&q)))
}

fn bool_like(v: Option<&Value>) -> Result<Option<bool>, ()> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s == "true" => Ok(Some(true)),
        Some(Value::String(s)) if s == "false" => Ok(Some(false)),
        _ => Err(()),
    }
}

pub fn commenter(db: &Db) -> (Value, Value) {
    match db.admin_agent() {
        Some(a) => (
            a.get("id").cloned().unwrap_or(Value::Null),
            json!({"id": a.get("id"), "firstName": a.get("firstName"), "lastName": a.get("lastName"), "name": a.get("name"),
                "email": a.get("emailId"), "photoURL": a.get("photoURL"), "roleName": "Administrator", "type": "AGENT"}),
        ),
        None => (Value::Null, Value::Null),
    }
}

pub async fn comment_create(
    State(app): State<Arc<App>>,
    Path(ticket): Path<String>,
    body: Bytes,
) -> ZResult {
    let body = body_obj(&body)?;
    check_keys(
        &body,
        &["content", "isPublic", "contentType", "attachmentIds"],
    )?;
    let mut db = app.db();
    let tkey = ticket_key(&db, &ticket)?;
    let content =
        nonempty(&body, "content").ok_or_else(|| ZErr::invalid_one("/content", "missing"))?;
    check_len(&body, "content", 32000)?;
    let is_public = bool_like(body.get("isPublic"))
        .map_err(|_| ZErr::invalid_one("/isPublic", "invalid"))?
        .unwrap_or(true);
    let ctype = str_field(&body, "contentType").unwrap_or_else(|| "html".into());
    if !matches!(ctype.as_str(), "html" | "plainText") {
        return Err(ZErr::invalid_one("/contentType", "invalid"));
    }
    let uploads: Vec<u64> = match body.get("attachmentIds") {
        None | Some(Value::Null) => Vec::new(),
        Some(_) => id_list(&body, "attachmentIds")?
            .iter()
            .filter_map(|i| i.parse().ok())
            .collect(),
    };
    if uploads.iter().any(|u| !db.uploads.contains_key(u)) {
        return Err(ZErr::invalid_one("/attachmentIds", "invalid"));
    }
    let id = db.id();
    let mut attachments = Vec::new();
    for up in uploads {
        let blob = db.uploads[&up].clone();
        let aid = db.id();
        let href = format!(
            "{}/tickets/{ticket}/comments/{id}/attachments/{aid}/content",
            app.api()
        );
        let mut meta = blob.meta.clone();
        meta.insert("id".into(), Value::String(aid.to_string()));
        meta.insert("href".into(), Value::String(href.clone()));
        meta.insert("_parent".into(), json!("comment"));
        meta.insert("_commentId".into(), Value::String(id.to_string()));
        meta.insert("_ticketId".into(), Value::String(ticket.clone()));
        attachments.push(json!({"id": aid.to_string(), "name": meta.get("name"), "size": blob.bytes.len().to_string(), "href": href}));
        db.attachments.insert(
            aid,
            Blob {
                meta,
                bytes: blob.bytes,
            },
        );
    }
    let (commenter_id, commenter) = commenter(&db);
    let rec = json!({
        "id": id.to_string(), "content": content, "contentType": ctype, "isPublic": is_public,
        "commentedTime": now_iso(), "modifiedTime": null, "commenterId": commenter_id, "commenter": commenter,
        "impersonatedUser": null, "attachments": attachments, "_ticketId": ticket,
    });
    let rec = rec.as_object().cloned().unwrap_or_default();
    db.comments.insert(id, rec.clone());
    bump(&mut db, tkey, "commentCount", 1);
    touch(&mut db, tkey);
    ok(render_comment(&rec, &HashSet::new()))
}

pub async fn comment_patch(
    State(app): State<Arc<App>>,
    Path((ticket, comment)): Path<(String, String)>,
    body: Bytes,
) -> ZResult {
    let body = body_obj(&body)?;
    check_keys(&body, &["content", "contentType", "isPublic"])?;
    let mut db = app.db();
    let key = comment_of(&db, &ticket, &comment)?;
    let content =
        nonempty(&body, "content").ok_or_else(|| ZErr::invalid_one("/content", "missing"))?;
    check_len(&body, "content", 32000)?;
    let is_public =
        bool_like(body.get("isPublic")).map_err(|_| ZErr::invalid_one("/isPublic", "invalid"))?;
    let c = db.comments.get_mut(&key).ok_or_else(ZErr::not_found)?;
    c.insert("content".into(), Value::String(content));
    if let Some(p) = is_public {
        c.insert("isPublic".into(), Value::Bool(p));
    }
    if let Some(ct) = str_field(&body, "contentType") {
        c.insert("contentType".into(), Value::String(ct));
    }
    c.insert("modifiedTime".into(), Value::String(now_iso()));
    let c = c.clone();
    if let Ok(t) = ticket.parse() {
        touch(&mut db, t);
    }
    ok(render_comment(&c, &HashSet::new()))
}

pub async fn comment_delete(
    State(app): State<Arc<App>>,
    Path((ticket, comment)): Path<(String, String)>,
) -> ZResult {
    let mut db = app.db();
    let key = comment_of(&db, &ticket, &comment)?;
    db.comments.remove(&key);
    db.attachments
        .retain(|_, b| b.meta.get("_commentId").and_then(Value::as_str) != Some(comment.as_str()));
    if let Ok(t) = ticket.parse() {
        bump(&mut db, t, "commentCount", -1);
        touch(&mut db, t);
    }
    Ok(StatusCode::OK.into_response())
}

pub async fn comment_attachment_content(
    State(app): State<Arc<App>>,
    Path((ticket, comment, att)): Path<(String, String, String)>,
) -> ZResult {
    let db = app.db();
    comment_of(&db, &ticket, &comment)?;
    let blob = att
        .parse::<u64>()
        .ok()
        .and_then(|a| db.attachments.get(&a))
        .filter(|b| b.meta.get("_commentId").and_then(Value::as_str) == Some(comment.as_str()))
        .ok_or_else(ZErr::not_found)?;
    Ok(file_response(blob))
}

// ---------- ticket attachments ----------

pub fn insert_ticket_attachment(
    db: &mut Db,
    app: &App,
    ticket: u64,
    name: &str,
    ctype: &str,
    bytes: Bytes,
    is_public: bool,
) -> Rec {
    let id = db.id();
    let creator = db.admin_agent().and_then(|a| s(a, "id"));
    let meta = json!({
        "id": id.to_string(), "name": name, "size": bytes.len().to_string(), "creatorId": creator,
        "createdTime": now_iso(), "isPublic": is_public,
        "href": format!("{}/tickets/{ticket}/attachments/{id}/content", app.api()), "previewurl": null,
        "_parent": "ticket", "_ticketId": ticket.to_string(), "_contentType": ctype,
    });
    let meta = meta.as_object().cloned().unwrap_or_default();
    db.attachments.insert(
        id,
        Blob {
            meta: meta.clone(),
            bytes,
        },
    );
    bump(db, ticket, "attachmentCount", 1);
    meta
}

fn render_attachment(db: &Db, meta: &Rec, inc: &HashSet<String>) -> Value {
    let mut out = public(meta);
    if inc.contains("creator") {
        let c = meta
            .get("creatorId")
            .and_then(Value::as_str)
            .and_then(|c| db.agents.get(&c.parse().ok()?));
        out.insert(
            "creator".into(),
            c.map(|a| json!({"id": a.get("id"), "firstName": a.get("firstName"), "lastName": a.get("lastName"), "email": a.get("emailId"), "photoURL": null}))
                .unwrap_or(Value::Null),
        );
    }
    Value::Object(out)
}

fn ticket_attachment(db: &Db, ticket: &str, att: &str) -> Result<u64, ZErr> {
    ticket_key(db, ticket)?;
    let key: u64 = att.parse().map_err(|_| ZErr::not_found())?;
    let b = db.attachments.get(&key).ok_or_else(ZErr::not_found)?;
    if b.meta.get("_parent").and_then(Value::as_str) != Some("ticket")
        || b.meta.get("_ticketId").and_then(Value::as_str) != Some(ticket)
    {
        return Err(ZErr::not_found());
    }
    Ok(key)
}

pub async fn attachments(
    State(app): State<Arc<App>>,
    Path(ticket): Path<String>,
    Query(q): Query<Q>,
) -> ZResult {
    let db = app.db();
    ticket_key(&db, &ticket)?;
    let (from, limit) = paging(&q, 25);
    let inc = includes(&q);
    let mut items: Vec<&Rec> = db
        .attachments
        .values()
        .filter(|b| b.meta.get("_parent").and_then(Value::as_str) == Some("ticket"))
        .filter(|b| b.meta.get("_ticketId").and_then(Value::as_str) == Some(ticket.as_str()))
        .filter(|b| {
            q.get("isPublic").is_none_or(|p| {
                b.meta.get("isPublic").map(|v| v.to_string()).as_deref() == Some(p.as_str())
            })
        })
        .map(|b| &b.meta)
        .collect();
    sort_by_key(
        &mut items,
        q.get("sortBy").map(String::as_str),
        "createdTime",
    );
    let items = page(items, from, limit)
        .iter()
        .map(|m| render_attachment(&db, m, &inc))
        .collect();
    Ok(list_response(items))
}

pub async fn attachment_create(
    State(app): State<Arc<App>>,
    Path(ticket): Path<String>,
    Query(q): Query<Q>,
    mp: Multipart,
) -> ZResult {
    {
        let db = app.db();
        ticket_key(&db, &ticket)?;
    }
    let (name, ctype, bytes) = crate::api_core::read_file(mp, app.cfg.max_upload_bytes).await?;
    let mut db = app.db();
    let tkey = ticket_key(&db, &ticket)?;
    let is_public = q.get("isPublic").is_some_and(|p| p == "true");
    let meta = insert_ticket_attachment(&mut db, &app, tkey, &name, &ctype, bytes, is_public);
    touch(&mut db, tkey);
    ok(render_attachment(&db, &meta, &HashSet::new()))
}

pub async fn attachment_patch(
    State(app): State<Arc<App>>,
    Path((ticket, att)): Path<(String, String)>,
    body: Bytes,
) -> ZResult {
    let body = body_obj(&body)?;
    check_keys(&body, &["isPublic"])?;
    let is_public =
        bool_like(body.get("isPublic")).map_err(|_| ZErr::invalid_one("/isPublic", "invalid"))?;
    let mut db = app.db();
    let key = ticket_attachment(&db, &ticket, &att)?;
    let blob = db.attachments.get_mut(&key).ok_or_else(ZErr::not_found)?;
    if let Some(p) = is_public {
        blob.meta.insert("isPublic".into(), Value::Bool(p));
    }
    let meta = blob.meta.clone();
    ok(render_attachment(&db, &meta, &HashSet::new()))
}

pub async fn attachment_delete(
    State(app): State<Arc<App>>,
    Path((ticket, att)): Path<(String, String)>,
) -> ZResult {
    let mut db = app.db();
    let key = ticket_attachment(&db, &ticket, &att)?;
    db.attachments.remove(&key);
    if let Ok(t) = ticket.parse() {
        bump(&mut db, t, "attachmentCount", -1);
        touch(&mut db, t);
    }
    Ok(StatusCode::OK.into_response())
}

pub async fn attachment_content(
    State(app): State<Arc<App>>,
    Path((ticket, att)): Path<(String, String)>,
) -> ZResult {
    let db = app.db();
    let key = ticket_attachment(&db, &ticket, &att)?;
    Ok(file_response(&db.attachments[&key]))
}

// ---------- tasks ----------

const TASK_KEYS: &[&str] = &[
    "alertType",
    "category",
    "cf",
    "contactId",
    "customFields",
    "departmentId",
    "description",
    "dueDate",
    "ownerId",
    "priority",
    "status",
    "subject",
    "ticketId",
];

pub fn new_task(id: u64, subject: &str, dept: &str, now: &str, creator: Option<String>) -> Rec {
    json!({
        "id": id.to_string(), "subject": subject, "description": null, "departmentId": dept, "ticketId": null,
        "contactId": null, "ownerId": null, "creatorId": creator, "dueDate": null, "priority": null,
        "status": "Not Started", "category": null, "completedTime": null, "startTime": null,
        "isCommented": false, "isSpam": false, "isTrashed": false, "activityType": "Tasks", "direction": "inbound",
        "teamId": null, "layoutId": "1892000000074031", "webUrl": web_url("Tasks", id), "createdTime": now,
        "modifiedTime": now, "cf": {},
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

fn render_task(db: &Db, t: &Rec) -> Value {
    let mut out = public(t);
    let (cf, by_label) = render_cf(db, "tasks", t.get("cf"));
    out.insert("cf".into(), cf);
    out.insert("customFields".into(), by_label);
    let ticket = t.get("ticketId").and_then(Value::as_str).and_then(|i| db.tickets.get(&i.parse().ok()?)).map(|tk| {
        json!({"ticketNumber": tk.get("ticketNumber"), "phone": tk.get("phone"), "subject": tk.get("subject"),
            "dueDate": tk.get("dueDate"), "teamId": tk.get("teamId"), "id": tk.get("id"),
            "assignee": agent_brief(db, tk.get("assigneeId").and_then(Value::as_str)), "isSpam": tk.get("isSpam"),
            "status": tk.get("status"), "secId": sec_id(tk)})
    });
    out.insert("ticket".into(), ticket.unwrap_or(Value::Null));
    let owner = agent_brief(db, t.get("ownerId").and_then(Value::as_str));
    let owner = match owner {
        Value::Object(o) => {
            json!({"firstName": o.get("firstName"), "lastName": o.get("lastName"), "photoURL": null, "id": o.get("id")})
        }
        other => other,
    };
    out.insert("assignee".into(), owner);
    let modifier = db.admin_agent().map(|a| json!({"firstName": a.get("firstName"), "lastName": a.get("lastName"), "photoURL": null, "id": a.get("id")}));
    out.insert("modifiedBy".into(), modifier.unwrap_or(Value::Null));
    let contact = t
        .get("contactId")
        .and_then(Value::as_str)
        .map(|c| contact_brief(db, Some(c)))
        .unwrap_or(Value::Null);
    out.insert("contact".into(), contact);
    out.insert("team".into(), Value::Null);
    out.insert("secId".into(), Value::String(sec_id(t)));
    Value::Object(out)
}

/// The opaque per-record hash Zoho puts in web links and task answers.
fn sec_id(r: &Rec) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(format!(
        "secId:{}",
        s(r, "id").unwrap_or_default()
    )))
}

fn check_task_body(db: &Db, body: &Rec) -> Result<Rec, ZErr> {
    check_len(body, "subject", 300)?;
    for (key, kind) in [
        ("ticketId", "tickets"),
        ("ownerId", "agents"),
        ("contactId", "contacts"),
        ("departmentId", "departments"),
    ] {
        if let Some(v) = nonempty(body, key)
            && db.live(kind, &v).is_none()
        {
            return Err(ZErr::invalid_one(&format!("/{key}"), "invalid"));
        }
    }
    if let Some(d) = body.get("dueDate")
        && !d.is_null()
        && parse_time(d).is_none()
    {
        return Err(ZErr::invalid_one("/dueDate", "invalid"));
    }
    validate_cf(
        db,
        "tasks",
        nonempty(body, "departmentId").as_deref(),
        body.get("cf"),
    )
}

fn apply_task(rec: &mut Rec, body: &Rec, cf: Rec) {
    for k in TASK_KEYS {
        if matches!(*k, "cf" | "customFields") {
            continue;
        }
        if let Some(v) = body.get(*k) {
            let v = if *k == "dueDate" {
                parse_time(v).map(Value::String).unwrap_or(Value::Null)
            } else {
                v.clone()
            };
            rec.insert((*k).to_string(), v);
        }
    }
    let mut current = rec
        .get("cf")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    current.extend(cf);
    rec.insert("cf".into(), Value::Object(current));
    let done = rec.get("status").and_then(Value::as_str) == Some("Completed");
    if done && rec.get("completedTime").is_none_or(Value::is_null) {
        rec.insert("completedTime".into(), Value::String(now_iso()));
    } else if !done {
        rec.insert("completedTime".into(), Value::Null);
    }
}

fn task_ticket(t: &Rec) -> Option<u64> {
    t.get("ticketId")
        .and_then(Value::as_str)
        .and_then(|v| v.parse().ok())
}

pub async fn tasks(State(app): State<Arc<App>>, Query(q): Query<Q>) -> ZResult {
    let db = app.db();
    let (from, limit) = paging(&q, 10);
    let mut items: Vec<&Rec> = db
        .tasks
        .values()
        .filter(|t| !is_trashed(t))
        .filter(|t| {
            q.get("departmentId")
                .is_none_or(|d| t.get("departmentId").and_then(Value::as_str) == Some(d.as_str()))
        })
        .collect();
    sort_by_key(
        &mut items,
        q.get("sortBy").map(String::as_str),
        "createdTime",
    );
    let items = page(items, from, limit)
        .iter()
        .map(|t| render_task(&db, t))
        .collect();
    Ok(list_response(items))
}

pub async fn ticket_tasks(
    State(app): State<Arc<App>>,
    Path(ticket): Path<String>,
    Query(q): Query<Q>,
) -> ZResult {
    let db = app.db();
    ticket_key(&db, &ticket)?;
    let (from, limit) = paging(&q, 10);
    let mut items: Vec<&Rec> = db
        .tasks
        .values()
        .filter(|t| {
            !is_trashed(t) && t.get("ticketId").and_then(Value::as_str) == Some(ticket.as_str())
        })
        .filter(|t| {
            q.get("isCompleted").is_none_or(|c| {
                (t.get("status").and_then(Value::as_str) == Some("Completed")).to_string() == *c
            })
        })
        .filter(|t| {
            q.get("isSpam").is_none_or(|c| {
                t.get("isSpam").map(|v| v.to_string()).as_deref() == Some(c.as_str())
            })
        })
        .collect();
    sort_by_key(
        &mut items,
        q.get("sortBy").map(String::as_str),
        "createdTime",
    );
    let items = page(items, from, limit)
        .iter()
        .map(|t| render_task(&db, t))
        .collect();
    Ok(list_response(items))
}

pub async fn task_get(State(app): State<Arc<App>>, Path(id): Path<String>) -> ZResult {
    let db = app.db();
    let t = db.live("tasks", &id).ok_or_else(ZErr::not_found)?;
    ok(render_task(&db, t))
}

pub async fn task_create(State(app): State<Arc<App>>, body: Bytes) -> ZResult {
    let body = body_obj(&body)?;
    check_keys(&body, TASK_KEYS)?;
    let mut db = app.db();
    let mut missing = Vec::new();
    let subject = nonempty(&body, "subject");
    let dept = nonempty(&body, "departmentId");
    if dept.is_none() {
        missing.push(("/departmentId", "missing"));
    }
    if subject.is_none() {
        missing.push(("/subject", "missing"));
    }
    if !missing.is_empty() {
        return Err(ZErr::invalid(&missing));
    }
    let cf = check_task_body(&db, &body)?;
    let id = db.id();
    let creator = db.admin_agent().and_then(|a| s(a, "id"));
    let mut rec = new_task(
        id,
        &subject.unwrap_or_default(),
        &dept.unwrap_or_default(),
        &now_iso(),
        creator,
    );
    apply_task(&mut rec, &body, cf);
    if let Some(t) = task_ticket(&rec) {
        bump(&mut db, t, "taskCount", 1);
    }
    db.tasks.insert(id, rec.clone());
    ok(render_task(&db, &rec))
}

pub async fn task_patch(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ZResult {
    let body = body_obj(&body)?;
    check_keys(&body, TASK_KEYS)?;
    let mut db = app.db();
    db.live("tasks", &id).ok_or_else(ZErr::not_found)?;
    if body.contains_key("subject") && nonempty(&body, "subject").is_none() {
        return Err(ZErr::invalid_one("/subject", "invalid"));
    }
    let cf = check_task_body(&db, &body)?;
    let key: u64 = id.parse().map_err(|_| ZErr::not_found())?;
    let before = db.tasks.get(&key).and_then(task_ticket);
    let rec = db.tasks.get_mut(&key).ok_or_else(ZErr::not_found)?;
    apply_task(rec, &body, cf);
    rec.insert("modifiedTime".into(), Value::String(now_iso()));
    let rec = rec.clone();
    let after = task_ticket(&rec);
    if before != after {
        if let Some(b) = before {
            bump(&mut db, b, "taskCount", -1);
        }
        if let Some(a) = after {
            bump(&mut db, a, "taskCount", 1);
        }
    }
    ok(render_task(&db, &rec))
}

pub async fn tasks_trash(State(app): State<Arc<App>>, body: Bytes) -> ZResult {
    let body = body_obj(&body)?;
    check_keys(&body, &["entityIds"])?;
    let ids = id_list(&body, "entityIds")?;
    let mut db = app.db();
    trash(&mut db, "tasks", &ids, "/entityIds")?;
    for id in &ids {
        if let Some(t) = id
            .parse::<u64>()
            .ok()
            .and_then(|k| db.tasks.get(&k))
            .and_then(task_ticket)
        {
            bump(&mut db, t, "taskCount", -1);
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---------- tags ----------

fn ticket_tags(db: &Db, ticket: u64) -> Vec<Value> {
    db.tickets
        .get(&ticket)
        .and_then(|t| t.get("_tags"))
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(|id| id.as_str().and_then(|i| db.tags.get(&i.parse().ok()?)))
                .map(|t| json!({"name": t.get("name"), "id": t.get("id")}))
                .collect()
        })
        .unwrap_or_default()
}

pub async fn tags_of_ticket(State(app): State<Arc<App>>, Path(ticket): Path<String>) -> ZResult {
    let db = app.db();
    let key = ticket_key(&db, &ticket)?;
    Ok(list_response(ticket_tags(&db, key)))
}

/// Finds a tag by name (case-insensitive) or creates it; returns its id.
pub fn tag_id(db: &mut Db, name: &str) -> String {
    if let Some(t) = db.tags.values().find(|t| {
        t.get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
    }) {
        return s(t, "id").unwrap_or_default();
    }
    let id = db.id();
    let rec = json!({"id": id.to_string(), "name": name, "createdTime": now_iso()});
    db.tags
        .insert(id, rec.as_object().cloned().unwrap_or_default());
    id.to_string()
}

pub async fn associate_tags(
    State(app): State<Arc<App>>,
    Path(ticket): Path<String>,
    body: Bytes,
) -> ZResult {
    let body = body_obj(&body)?;
    check_keys(&body, &["tags"])?;
    let names: Vec<String> = body
        .get("tags")
        .and_then(Value::as_array)
        .ok_or_else(|| ZErr::invalid_one("/tags", "missing"))?
        .iter()
        .map(|v| {
            v.as_str()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty() && s.chars().count() <= 50)
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| ZErr::invalid_one("/tags", "invalid"))?;
    if names.is_empty() {
        return Err(ZErr::invalid_one("/tags", "missing"));
    }
    let mut db = app.db();
    let key = ticket_key(&db, &ticket)?;
    for n in names {
        let id = tag_id(&mut db, &n);
        if let Some(t) = db.tickets.get_mut(&key) {
            let list = t.entry("_tags").or_insert_with(|| json!([]));
            if let Some(arr) = list.as_array_mut()
                && !arr.iter().any(|x| x.as_str() == Some(id.as_str()))
            {
                arr.push(Value::String(id));
            }
            let count = t
                .get("_tags")
                .and_then(Value::as_array)
                .map(Vec::len)
                .unwrap_or(0);
            t.insert("tagCount".into(), Value::String(count.to_string()));
        }
    }
    touch(&mut db, key);
    ok(json!({"data": ticket_tags(&db, key)}))
}

pub async fn tags(State(app): State<Arc<App>>, Query(q): Query<Q>) -> ZResult {
    let db = app.db();
    let (from, limit) = paging(&q, 25);
    let items: Vec<Value> = db
        .tags
        .values()
        .filter(|t| {
            q.get("searchStr")
                .is_none_or(|p| contains_text(p, t.get("name")))
        })
        .map(|t| json!({"name": t.get("name"), "id": t.get("id")}))
        .collect();
    Ok(list_response(page(items, from, limit)))
}

// ---------- search ----------

fn search_answer(items: Vec<Value>, total: usize) -> Response {
    if items.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    axum::Json(json!({"data": items, "count": total})).into_response()
}

fn ranges_ok(q: &Q, r: &Rec, keys: &[(&str, &str)]) -> bool {
    keys.iter().all(|(param, field)| {
        q.get(*param)
            .and_then(|v| parse_range(v))
            .is_none_or(|range| in_range(r.get(*field), &range))
    })
}

fn search_sort(items: &mut [&Rec], q: &Q) {
    let sort = q.get("sortBy").map(String::as_str).unwrap_or("relevance");
    let sort = match sort {
        "relevance" | "-relevance" => "-createdTime",
        other => other,
    };
    sort_by_key(items, Some(sort), "-createdTime");
}

pub async fn search_tickets(State(app): State<Arc<App>>, Query(q): Query<Q>) -> ZResult {
    let db = app.db();
    let (from, limit) = paging(&q, 10);
    let cfs = custom_field_filters(&q);
    let tag_ids: Option<Vec<String>> = q.get("tag").map(|name| {
        db.tags
            .values()
            .filter(|t| matches(name, t.get("name")))
            .filter_map(|t| s(t, "id"))
            .collect()
    });
    let lists = |key: &str| {
        q.get(key).map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .collect::<Vec<_>>()
        })
    };
    let (statuses, priorities, channels) = (lists("status"), lists("priority"), lists("channel"));
    let mut items: Vec<&Rec> = db
        .tickets
        .values()
        .filter(|t| !is_trashed(t))
        .filter(|t| {
            let eq =
                |param: &str, field: &str| q.get(param).is_none_or(|v| matches(v, t.get(field)));
            eq("id", "id")
                && eq("ticketNumber", "ticketNumber")
                && eq("departmentId", "departmentId")
                && eq("contactId", "contactId")
                && eq("accountId", "accountId")
                && eq("productId", "productId")
                && eq("assigneeId", "assigneeId")
                && eq("category", "category")
                && eq("email", "email")
        })
        .filter(|t| {
            q.get("subject")
                .is_none_or(|p| contains_text(p, t.get("subject")))
        })
        .filter(|t| {
            q.get("description")
                .is_none_or(|p| contains_text(p, t.get("description")))
        })
        .filter(|t| {
            q.get("_all").is_none_or(|p| {
                contains_text(p, t.get("subject"))
                    || contains_text(p, t.get("description"))
                    || contains_text(p, t.get("email"))
            })
        })
        .filter(|t| {
            statuses
                .as_ref()
                .is_none_or(|l| l.iter().any(|v| matches(v, t.get("status"))))
        })
        .filter(|t| {
            priorities
                .as_ref()
                .is_none_or(|l| l.iter().any(|v| matches(v, t.get("priority"))))
        })
        .filter(|t| {
            channels
                .as_ref()
                .is_none_or(|l| l.iter().any(|v| matches(v, t.get("channel"))))
        })
        .filter(|t| {
            q.get("contactName").is_none_or(|p| {
                t.get("contactId")
                    .and_then(Value::as_str)
                    .and_then(|c| db.contacts.get(&c.parse().ok()?))
                    .is_some_and(|c| {
                        let full = format!(
                            "{} {}",
                            c.get("firstName").and_then(Value::as_str).unwrap_or(""),
                            c.get("lastName").and_then(Value::as_str).unwrap_or("")
                        );
                        contains_text(p, Some(&Value::String(full)))
                    })
            })
        })
        .filter(|t| {
            q.get("accountName").is_none_or(|p| {
                t.get("accountId")
                    .and_then(Value::as_str)
                    .and_then(|a| db.accounts.get(&a.parse().ok()?))
                    .is_some_and(|a| matches(p, a.get("accountName")))
            })
        })
        .filter(|t| {
            q.get("productName").is_none_or(|p| {
                t.get("productId")
                    .and_then(Value::as_str)
                    .and_then(|a| db.products.get(&a.parse().ok()?))
                    .is_some_and(|a| matches(p, a.get("productName")))
            })
        })
        .filter(|t| {
            tag_ids.as_ref().is_none_or(|ids| {
                t.get("_tags")
                    .and_then(Value::as_array)
                    .is_some_and(|have| {
                        have.iter()
                            .any(|h| h.as_str().is_some_and(|h| ids.iter().any(|i| i == h)))
                    })
            })
        })
        .filter(|t| {
            ranges_ok(
                &q,
                t,
                &[
                    ("createdTimeRange", "createdTime"),
                    ("modifiedTimeRange", "modifiedTime"),
                    ("dueDateRange", "dueDate"),
                    ("customerResponseTimeRange", "customerResponseTime"),
                ],
            )
        })
        .filter(|t| cf_matches(t, &cfs))
        .collect();
    let total = items.len();
    search_sort(&mut items, &q);
    let inc: HashSet<String> = ["contacts", "assignee", "departments", "products", "team"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let items = page(items, from, limit)
        .iter()
        .map(|t| render_ticket(&db, t, true, &inc))
        .collect();
    Ok(search_answer(items, total))
}

pub async fn search_contacts(State(app): State<Arc<App>>, Query(q): Query<Q>) -> ZResult {
    let db = app.db();
    let (from, limit) = paging(&q, 10);
    let cfs = custom_field_filters(&q);
    let mut items: Vec<&Rec> = db
        .contacts
        .values()
        .filter(|c| !is_trashed(c))
        .filter(|c| {
            let eq =
                |param: &str, field: &str| q.get(param).is_none_or(|v| matches(v, c.get(field)));
            eq("id", "id")
                && eq("lastName", "lastName")
                && eq("firstName", "firstName")
                && eq("email", "email")
        })
        .filter(|c| {
            q.get("fullName").is_none_or(|p| {
                let full = format!(
                    "{} {}",
                    c.get("firstName").and_then(Value::as_str).unwrap_or(""),
                    c.get("lastName").and_then(Value::as_str).unwrap_or("")
                );
                contains_text(p, Some(&Value::String(full.trim().to_string())))
            })
        })
        .filter(|c| {
            q.get("accountName").is_none_or(|p| {
                c.get("accountId")
                    .and_then(Value::as_str)
                    .and_then(|a| db.accounts.get(&a.parse().ok()?))
                    .is_some_and(|a| matches(p, a.get("accountName")))
            })
        })
        .filter(|c| {
            q.get("_all").is_none_or(|p| {
                ["firstName", "lastName", "email", "phone", "mobile"]
                    .iter()
                    .any(|k| contains_text(p, c.get(*k)))
            })
        })
        .filter(|c| {
            ranges_ok(
                &q,
                c,
                &[
                    ("createdTimeRange", "createdTime"),
                    ("modifiedTimeRange", "modifiedTime"),
                ],
            )
        })
        .filter(|c| cf_matches(c, &cfs))
        .collect();
    let total = items.len();
    search_sort(&mut items, &q);
    let items = page(items, from, limit)
        .iter()
        .map(|c| {
            let mut v = render_contact(&db, c, true, true);
            // The search answer types isEndUser as a string, unlike the contact list.
            v["isEndUser"] = Value::String(
                c.get("isEndUser")
                    .map(|b| b.to_string())
                    .unwrap_or_else(|| "false".into()),
            );
            v
        })
        .collect();
    Ok(search_answer(items, total))
}

pub async fn search_accounts(State(app): State<Arc<App>>, Query(q): Query<Q>) -> ZResult {
    let db = app.db();
    let (from, limit) = paging(&q, 10);
    let cfs = custom_field_filters(&q);
    let mut items: Vec<&Rec> = db
        .accounts
        .values()
        .filter(|a| !is_trashed(a))
        .filter(|a| q.get("id").is_none_or(|v| matches(v, a.get("id"))))
        .filter(|a| {
            q.get("accountName")
                .is_none_or(|v| matches(v, a.get("accountName")))
        })
        .filter(|a| {
            q.get("_all").is_none_or(|p| {
                ["accountName", "email", "website", "phone"]
                    .iter()
                    .any(|k| contains_text(p, a.get(*k)))
            })
        })
        .filter(|a| {
            ranges_ok(
                &q,
                a,
                &[
                    ("createdTimeRange", "createdTime"),
                    ("modifiedTimeRange", "modifiedTime"),
                ],
            )
        })
        .filter(|a| cf_matches(a, &cfs))
        .collect();
    let total = items.len();
    search_sort(&mut items, &q);
    let items = page(items, from, limit)
        .iter()
        .map(|a| render_account(&db, a, true))
        .collect();
    Ok(search_answer(items, total))
}
