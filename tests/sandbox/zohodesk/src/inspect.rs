//! `/__sandbox/*`: dump, records, reset, seed, freeze, stats, token expiry. No auth, never faulted.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use crate::api_core::{new_account, new_contact, new_product};
use crate::api_tickets::{new_task, new_ticket, tag_id};
use crate::app::App;
use crate::model::*;

fn bad(msg: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": msg.into()})),
    )
        .into_response()
}

pub async fn dump(State(app): State<Arc<App>>) -> Response {
    let mut v = app.db().dump();
    v["counters"] = app.counters();
    v["faults"] = json!({"config": app.faults.config(), "counters": app.faults.counters()});
    axum::Json(v).into_response()
}

pub async fn records(State(app): State<Arc<App>>, Path(kind): Path<String>) -> Response {
    match app.db().records(&kind) {
        Some(v) => axum::Json(v).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": format!("unknown kind '{kind}'"), "kinds": KINDS})),
        )
            .into_response(),
    }
}

pub async fn reset(State(app): State<Arc<App>>) -> Response {
    {
        let mut db = app.db();
        *db = Db::new(&app.cfg.org_id, &app.cfg.edition);
        if app.cfg.default_org {
            install_default_org(&mut db);
        }
    }
    {
        let mut c = app.credits.lock().unwrap_or_else(|e| e.into_inner());
        c.used = 0;
        c.throttled_threshold = 0;
        c.throttled_concurrency = 0;
        c.peak_in_flight = 0;
        c.endpoint_in_flight.clear();
    }
    app.stats.lock().unwrap_or_else(|e| e.into_inner()).clear();
    app.frozen.store(false, Ordering::SeqCst);
    axum::Json(json!({"reset": true})).into_response()
}

pub async fn freeze(State(app): State<Arc<App>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("frozen").and_then(Value::as_bool))
    {
        Some(f) => {
            app.frozen.store(f, Ordering::SeqCst);
            axum::Json(json!({"frozen": f})).into_response()
        }
        None => bad("expected {\"frozen\": true|false}"),
    }
}

pub async fn stats(State(app): State<Arc<App>>) -> Response {
    let requests = app.stats.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let total: u64 = requests.values().sum();
    axum::Json(json!({"requests": requests, "total": total, "counters": app.counters()}))
        .into_response()
}

pub async fn expire_tokens(State(app): State<Arc<App>>) -> Response {
    axum::Json(json!({"expired": app.expire_tokens()})).into_response()
}

pub async fn config(State(app): State<Arc<App>>) -> Response {
    axum::Json(json!(app.cfg)).into_response()
}

pub async fn seed(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad(format!("seed body is not JSON: {e}")),
    };
    if let Some(seed) = v.get("seed").and_then(Value::as_u64) {
        let tickets = v.get("tickets").and_then(Value::as_u64).unwrap_or(100) as usize;
        let tenant = crate::generate::generate(seed, tickets);
        let summary = tenant.summary();
        load_tenant(&mut app.db(), tenant, app.base());
        return axum::Json(json!({"seeded": summary})).into_response();
    }
    let mut db = app.db();
    match seed_records(&mut db, &v, app.base()) {
        Ok(ids) => axum::Json(json!({"seeded": ids})).into_response(),
        Err(e) => bad(e),
    }
}

/// The departments, admin agent and nothing else: a fresh destination org.
pub fn install_default_org(db: &mut Db) {
    let now = now_iso();
    let support = db.id();
    let billing = db.id();
    let admin = db.id();
    let deps = vec![support.to_string(), billing.to_string()];
    db.agents.insert(
        admin,
        agent(
            admin,
            "Sandbox",
            "Admin",
            "admin@example.com",
            "Admin",
            &deps,
        ),
    );
    db.departments.insert(
        support,
        department(support, "Support", true, &[admin.to_string()], &now),
    );
    db.departments.insert(
        billing,
        department(billing, "Billing", false, &[admin.to_string()], &now),
    );
}

/// Default destination departments as the API shows them (ids are assigned when installed).
pub fn default_departments() -> Vec<&'static str> {
    vec!["Support", "Billing"]
}

fn take_id(db: &mut Db, rec: &mut Rec) -> Result<u64, String> {
    let id = match rec.get("id") {
        Some(Value::String(s)) => s
            .parse::<u64>()
            .map_err(|_| format!("id '{s}' is not a number"))?,
        Some(Value::Number(n)) => n.as_u64().ok_or("id is not a positive number")?,
        _ => db.id(),
    };
    db.bump(id);
    rec.insert("id".into(), Value::String(id.to_string()));
    Ok(id)
}

fn merged(base: Rec, input: &Rec) -> Rec {
    let mut out = base;
    for (k, v) in input {
        out.insert(k.clone(), v.clone());
    }
    out
}

fn str_of(r: &Rec, k: &str) -> String {
    s(r, k).unwrap_or_default()
}

/// Inserts records given in the API's shapes; returns the ids assigned per kind.
pub fn seed_records(db: &mut Db, v: &Value, base: &str) -> Result<Value, String> {
    let now = now_iso();
    let mut out = serde_json::Map::new();
    let order = [
        "departments",
        "agents",
        "fields",
        "products",
        "accounts",
        "contacts",
        "tickets",
        "threads",
        "comments",
        "tasks",
        "attachments",
    ];
    for kind in order {
        let Some(list) = v.get(kind) else { continue };
        let list = list
            .as_array()
            .ok_or(format!("'{kind}' must be an array"))?;
        let mut ids = Vec::new();
        for item in list {
            let input = item
                .as_object()
                .ok_or(format!("every item of '{kind}' must be an object"))?;
            let mut rec = input.clone();
            let id = take_id(db, &mut rec)?;
            ids.push(Value::String(id.to_string()));
            let admin = db.admin_agent().and_then(|a| s(a, "id"));
            match kind {
                "departments" => {
                    let base_rec = department(id, &str_of(&rec, "name"), false, &[], &now);
                    db.departments.insert(id, merged(base_rec, &rec));
                }
                "agents" => {
                    let deps: Vec<String> =
                        match rec.get("associatedDepartmentIds").and_then(Value::as_array) {
                            Some(a) => a
                                .iter()
                                .filter_map(|x| x.as_str().map(str::to_string))
                                .collect(),
                            None => db
                                .default_department()
                                .map(|d| vec![d.to_string()])
                                .unwrap_or_default(),
                        };
                    let role =
                        s(&rec, "rolePermissionType").unwrap_or_else(|| "AgentPublic".into());
                    let base_rec = agent(
                        id,
                        &str_of(&rec, "firstName"),
                        &str_of(&rec, "lastName"),
                        &str_of(&rec, "emailId"),
                        &role,
                        &deps,
                    );
                    let mut r = merged(base_rec, &rec);
                    r.insert("associatedDepartmentIds".into(), json!(deps));
                    db.agents.insert(id, r);
                }
                "fields" => {
                    let module = s(&rec, "module").unwrap_or_else(|| "tickets".into());
                    let label = str_of(&rec, "displayLabel");
                    let api = s(&rec, "apiName").unwrap_or_else(|| cf_api_name(&label));
                    let ftype = s(&rec, "type").unwrap_or_else(|| "Text".into());
                    let allowed: Vec<String> = rec
                        .get("allowedValues")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| {
                                    x.as_str()
                                        .or_else(|| x.get("value").and_then(Value::as_str))
                                        .map(str::to_string)
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    let deps: Vec<String> = rec
                        .get("associatedDepartments")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    let max = s(&rec, "maxLength").and_then(|m| m.parse().ok());
                    let mut f = field_record(
                        id, &module, &api, &label, &ftype, &allowed, true, max, &deps,
                    );
                    f.insert("createdTime".into(), Value::String(now.clone()));
                    db.fields.insert(id, f);
                }
                "products" => {
                    let deps: Vec<String> = rec
                        .get("departmentIds")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    let base_rec =
                        new_product(id, &str_of(&rec, "productName"), &deps, &now, admin);
                    db.products.insert(id, merged(base_rec, &rec));
                }
                "accounts" => {
                    let base_rec = new_account(id, &str_of(&rec, "accountName"), &now, admin);
                    db.accounts.insert(id, merged(base_rec, &rec));
                }
                "contacts" => {
                    let base_rec = new_contact(id, &str_of(&rec, "lastName"), &now, admin);
                    db.contacts.insert(id, merged(base_rec, &rec));
                }
                "tickets" => {
                    let number = db.next_ticket_number;
                    db.next_ticket_number += 1;
                    let tags: Vec<String> = rec
                        .remove("tags")
                        .and_then(|t| t.as_array().cloned())
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    let mut t = merged(new_ticket(id, number, &now, admin), &rec);
                    if t.get("departmentId").is_none_or(Value::is_null) {
                        t.insert(
                            "departmentId".into(),
                            json!(db.default_department().map(|d| d.to_string())),
                        );
                    }
                    let status = t
                        .get("status")
                        .and_then(Value::as_str)
                        .unwrap_or("Open")
                        .to_string();
                    t.insert("statusType".into(), json!(status_type(&status)));
                    let tag_ids: Vec<Value> =
                        tags.iter().map(|n| Value::String(tag_id(db, n))).collect();
                    t.insert("_tags".into(), Value::Array(tag_ids));
                    db.tickets.insert(id, t);
                }
                "threads" => {
                    let ticket = s(&rec, "ticketId").ok_or("every thread needs a ticketId")?;
                    rec.remove("ticketId");
                    let mut t = thread_defaults(id, &ticket, &now);
                    for (k, v) in rec {
                        t.insert(k, v);
                    }
                    finish_thread(&mut t, base);
                    db.threads.insert(id, t);
                    touch_ticket(db, &ticket, &now);
                }
                "comments" => {
                    let ticket = s(&rec, "ticketId").ok_or("every comment needs a ticketId")?;
                    rec.remove("ticketId");
                    let (cid, commenter) = crate::api_tickets::commenter(db);
                    let mut c = json!({"id": id.to_string(), "content": "", "contentType": "html", "isPublic": true,
                        "commentedTime": now, "modifiedTime": null, "commenterId": cid, "commenter": commenter,
                        "impersonatedUser": null, "attachments": [], "_ticketId": ticket})
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                    for (k, v) in rec {
                        c.insert(k, v);
                    }
                    db.comments.insert(id, c);
                    touch_ticket(db, &ticket, &now);
                }
                "tasks" => {
                    let base_rec = new_task(
                        id,
                        &str_of(&rec, "subject"),
                        &str_of(&rec, "departmentId"),
                        &now,
                        admin,
                    );
                    db.tasks.insert(id, merged(base_rec, &rec));
                }
                "attachments" => {
                    let bytes = match (rec.remove("contentBase64"), rec.remove("content")) {
                        (Some(Value::String(b64)), _) => base64::engine::general_purpose::STANDARD
                            .decode(b64)
                            .map_err(|e| format!("contentBase64: {e}"))?,
                        (_, Some(Value::String(text))) => text.into_bytes(),
                        _ => Vec::new(),
                    };
                    let ticket = s(&rec, "ticketId").ok_or("every attachment needs a ticketId")?;
                    let thread = s(&rec, "threadId");
                    rec.remove("ticketId");
                    rec.remove("threadId");
                    let meta = attachment_meta(
                        id,
                        &ticket,
                        thread.as_deref(),
                        &str_of(&rec, "name"),
                        bytes.len(),
                        &now,
                        base,
                        &rec,
                    );
                    db.attachments.insert(
                        id,
                        Blob {
                            meta,
                            bytes: bytes.into(),
                        },
                    );
                }
                _ => {}
            }
        }
        out.insert(kind.into(), Value::Array(ids));
    }
    recount(db);
    for kind in ["tickets", "threads", "contacts", "accounts"] {
        if let Some(map) = db.map_mut(kind) {
            map.values_mut().for_each(|r| compact(kind, r));
        }
    }
    Ok(Value::Object(out))
}

/// A thread or comment added to a ticket modifies it, as in Zoho Desk (delta reads find it).
fn touch_ticket(db: &mut Db, ticket: &str, now: &str) {
    if let Some(t) = ticket
        .parse::<u64>()
        .ok()
        .and_then(|id| db.tickets.get_mut(&id))
    {
        t.insert("modifiedTime".into(), Value::String(now.to_string()));
    }
}

#[allow(clippy::too_many_arguments)]
pub fn attachment_meta(
    id: u64,
    ticket: &str,
    thread: Option<&str>,
    name: &str,
    size: usize,
    now: &str,
    base: &str,
    extra: &Rec,
) -> Rec {
    let (parent, href) = match thread {
        Some(th) => (
            "thread",
            format!("{base}/api/v1/tickets/{ticket}/threads/{th}/attachments/{id}/content"),
        ),
        None => (
            "ticket",
            format!("{base}/api/v1/tickets/{ticket}/attachments/{id}/content"),
        ),
    };
    let mut meta = json!({
        "id": id.to_string(), "name": name, "size": size.to_string(), "creatorId": null, "createdTime": now,
        "isPublic": true, "href": href, "previewurl": null, "_parent": parent, "_ticketId": ticket,
        "_threadId": thread, "_contentType": "application/octet-stream",
    })
    .as_object()
    .cloned()
    .unwrap_or_default();
    for (k, v) in extra {
        if k != "id" && k != "size" {
            meta.insert(k.clone(), v.clone());
        }
    }
    meta
}

pub fn thread_defaults(id: u64, ticket: &str, now: &str) -> Rec {
    json!({
        "id": id.to_string(), "channel": "EMAIL", "direction": "in", "visibility": "public", "status": "SUCCESS",
        "isDescriptionThread": false, "canReply": true, "contentType": "text/html", "createdTime": now,
        "author": {"id": null, "name": "", "firstName": "", "lastName": "", "email": null, "photoURL": null, "type": "END_USER"},
        "hasAttach": false, "attachmentCount": "0", "respondedIn": null, "responderId": null,
        "source": {"appName": null, "extId": null, "type": "SYSTEM", "permalink": null, "appPhotoURL": null},
        "channelRelatedInfo": null, "actions": [], "lastRatingIconURL": null, "fromEmailAddress": null,
        "to": null, "cc": "", "bcc": "", "replyTo": null, "isForward": false, "summary": "", "content": "",
        "_ticketId": ticket,
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

/// Resolves `{base}` placeholders in thread bodies and derives the summary.
pub fn finish_thread(t: &mut Rec, base: &str) {
    let content = t
        .get("content")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .replace("{base}", base);
    t.insert("summary".into(), Value::String(summary_of(&content, 100)));
    t.insert("content".into(), Value::String(content));
}

/// Recomputes the per-ticket counters and last-thread data from the stored children.
pub fn recount(db: &mut Db) {
    use std::collections::HashMap;
    let mut threads: HashMap<String, (u64, String, Value)> = HashMap::new();
    for t in db.threads.values() {
        let tid = str_of(t, "_ticketId");
        let created = str_of(t, "createdTime");
        let e = threads
            .entry(tid)
            .or_insert((0, String::new(), Value::Null));
        e.0 += 1;
        if created >= e.1 {
            e.1 = created;
            e.2 = json!({"channel": t.get("channel"), "isDraft": false, "isForward": t.get("isForward"), "direction": t.get("direction")});
        }
    }
    let mut comments: HashMap<String, u64> = HashMap::new();
    for c in db.comments.values() {
        *comments.entry(str_of(c, "_ticketId")).or_default() += 1;
    }
    let mut attachments: HashMap<String, u64> = HashMap::new();
    let mut per_thread: HashMap<String, u64> = HashMap::new();
    for b in db.attachments.values() {
        match b.meta.get("_parent").and_then(Value::as_str) {
            Some("ticket") => *attachments.entry(str_of(&b.meta, "_ticketId")).or_default() += 1,
            Some("thread") => *per_thread.entry(str_of(&b.meta, "_threadId")).or_default() += 1,
            _ => {}
        }
    }
    let mut tasks: HashMap<String, u64> = HashMap::new();
    for t in db.tasks.values().filter(|t| !is_trashed(t)) {
        if let Some(tid) = s(t, "ticketId") {
            *tasks.entry(tid).or_default() += 1;
        }
    }
    for (id, t) in db.tickets.iter_mut() {
        let key = id.to_string();
        let (n, last, last_thread) =
            threads
                .get(&key)
                .cloned()
                .unwrap_or((0, String::new(), Value::Null));
        t.insert("threadCount".into(), Value::String(n.to_string()));
        t.insert("lastThread".into(), last_thread);
        t.insert(
            "_lastThreadTime".into(),
            if last.is_empty() {
                Value::Null
            } else {
                Value::String(last)
            },
        );
        t.insert(
            "commentCount".into(),
            Value::String(comments.get(&key).copied().unwrap_or(0).to_string()),
        );
        t.insert(
            "attachmentCount".into(),
            Value::String(attachments.get(&key).copied().unwrap_or(0).to_string()),
        );
        t.insert(
            "taskCount".into(),
            Value::String(tasks.get(&key).copied().unwrap_or(0).to_string()),
        );
        let tags = t
            .get("_tags")
            .and_then(Value::as_array)
            .map(Vec::len)
            .unwrap_or(0);
        t.insert("tagCount".into(), Value::String(tags.to_string()));
    }
    for (id, t) in db.threads.iter_mut() {
        let n = per_thread.get(&id.to_string()).copied().unwrap_or(0);
        t.insert("attachmentCount".into(), Value::String(n.to_string()));
        t.insert("hasAttach".into(), Value::Bool(n > 0));
    }
}

/// Loads a generated source tenant into the store.
pub fn load_tenant(db: &mut Db, tenant: crate::generate::ZohoTenant, base: &str) {
    let into = |list: Vec<Rec>, map: &mut std::collections::BTreeMap<u64, Rec>| -> u64 {
        let mut max = 0;
        for r in list {
            let id = id_of(&r);
            max = max.max(id);
            map.insert(id, r);
        }
        max
    };
    let mut max = 0;
    max = max.max(into(tenant.departments, &mut db.departments));
    max = max.max(into(tenant.agents, &mut db.agents));
    max = max.max(into(tenant.fields, &mut db.fields));
    max = max.max(into(tenant.tags, &mut db.tags));
    max = max.max(into(tenant.products, &mut db.products));
    max = max.max(into(tenant.accounts, &mut db.accounts));
    max = max.max(into(tenant.contacts, &mut db.contacts));
    let tickets = tenant
        .tickets
        .into_iter()
        .map(|mut t| {
            if let Some(Value::String(d)) = t.get("description") {
                let d = d.replace("{base}", base);
                t.insert("description".into(), Value::String(d));
            }
            t
        })
        .collect();
    max = max.max(into(tickets, &mut db.tickets));
    max = max.max(into(tenant.comments, &mut db.comments));
    max = max.max(into(tenant.tasks, &mut db.tasks));
    for mut t in tenant.threads {
        finish_thread(&mut t, base);
        let id = id_of(&t);
        max = max.max(id);
        db.threads.insert(id, t);
    }
    for (mut meta, bytes) in tenant.attachments {
        if let Some(Value::String(h)) = meta.get("href") {
            let h = h.replace("{base}", base);
            meta.insert("href".into(), Value::String(h));
        }
        let id = id_of(&meta);
        max = max.max(id);
        db.attachments.insert(
            id,
            Blob {
                meta,
                bytes: bytes.into(),
            },
        );
    }
    db.bump(max);
    db.next_ticket_number = db.next_ticket_number.max(tenant.next_ticket_number);
    recount(db);
    for kind in ["tickets", "threads"] {
        if let Some(map) = db.map_mut(kind) {
            map.values_mut().for_each(|r| compact(kind, r));
        }
    }
}
