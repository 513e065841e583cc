//! HTTP layer: the Ivinex call API (`POST /API/<Call>`), attachment downloads and `/__sandbox/`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use md5::{Digest, Md5};
use sandbox_kit::{FaultResponder, Faults};
use serde_json::{Map, Value, json};

use crate::IvinexConfig;
use crate::files::{BlobGen, CHUNK, content_type, md5_hex};
use crate::model::{
    Attachment, Content, DEFAULT_FIELDS, FieldDef, FieldType, Link, LinkType, Record, Render,
    Tenant, parse_site_datetime, parse_value, value_text,
};

/// Generated binaries up to this size are answered from memory; bigger ones are streamed.
const IN_MEMORY_LIMIT: u64 = 1_048_576;

/// Incoming linked_record references: target id -> (tab index, source id).
pub(crate) type EmbeddedIndex = HashMap<u64, Vec<(usize, u64)>>;

pub(crate) struct State_ {
    pub tenant: Tenant,
    pub frozen: bool,
    /// Incoming linked_record references, rebuilt after writes.
    pub embedded: Option<Arc<EmbeddedIndex>>,
}

#[derive(Default)]
struct EndpointStat {
    count: u64,
    statuses: BTreeMap<u16, u64>,
}

pub(crate) struct Shared {
    pub config: IvinexConfig,
    pub tz: TimeZone,
    pub base_url: OnceLock<String>,
    pub state: RwLock<State_>,
    pub faults: Faults,
    stats: Mutex<BTreeMap<String, EndpointStat>>,
    in_flight: AtomicUsize,
}

impl Shared {
    pub fn new(config: IvinexConfig, tz: TimeZone, tenant: Tenant, faults: Faults) -> Shared {
        Shared {
            config,
            tz,
            base_url: OnceLock::new(),
            state: RwLock::new(State_ {
                tenant,
                frozen: false,
                embedded: None,
            }),
            faults,
            stats: Mutex::new(BTreeMap::new()),
            in_flight: AtomicUsize::new(0),
        }
    }

    pub fn base(&self) -> &str {
        self.base_url.get().map(String::as_str).unwrap_or("")
    }

    pub fn render(&self) -> Render<'_> {
        Render {
            base_url: self.base(),
            tz: &self.tz,
        }
    }

    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, State_> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn write(&self) -> std::sync::RwLockWriteGuard<'_, State_> {
        let mut st = self.state.write().unwrap_or_else(|e| e.into_inner());
        st.embedded = None;
        st
    }

    pub fn dump(&self) -> Value {
        let st = self.read();
        let mut d = st.tenant.dump(&self.render());
        d["frozen"] = json!(st.frozen);
        d["site_id"] = json!(self.config.site_id);
        d["timezone"] = json!(self.config.timezone);
        d
    }

    pub fn records(&self, tab: &str) -> Option<Vec<Value>> {
        let st = self.read();
        let t = st.tenant.tab(tab)?;
        let r = self.render();
        Some(
            t.records
                .values()
                .map(|rec| st.tenant.render_record(t, rec, &r, None))
                .collect(),
        )
    }

    pub fn stats(&self) -> Value {
        let stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        let mut endpoints = Map::new();
        let mut total = 0;
        for (k, s) in stats.iter() {
            total += s.count;
            let statuses: Map<String, Value> = s
                .statuses
                .iter()
                .map(|(c, n)| (c.to_string(), json!(n)))
                .collect();
            endpoints.insert(k.clone(), json!({"count": s.count, "statuses": statuses}));
        }
        json!({"total": total, "endpoints": endpoints})
    }

    pub fn clear_stats(&self) {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Replaces the tenant with a generated one (plus the API user).
    pub fn seed_generated(&self, seed: u64, tickets: usize) -> BTreeMap<String, usize> {
        let mut tenant = crate::generate::generate(seed, tickets);
        ensure_api_user(&mut tenant, &self.config);
        let counts = tenant
            .tabs
            .iter()
            .map(|t| (t.def.name.clone(), t.records.len()))
            .collect();
        self.write().tenant = tenant;
        counts
    }

    /// Empties every tab, keeping the schema.
    pub fn reset(&self) {
        let mut st = self.write();
        for t in &mut st.tenant.tabs {
            t.records.clear();
        }
        st.tenant.links.clear();
        st.tenant.attachments.clear();
        let fresh = Tenant::empty(st.tenant.seed);
        st.tenant.next_record_id = fresh.next_record_id;
        st.tenant.next_attachment_id = fresh.next_attachment_id;
    }
}

/// The configured API user exists in Users (as on a real tenant, where the API acts as a user).
pub(crate) fn ensure_api_user(tenant: &mut Tenant, config: &IvinexConfig) {
    if tenant.users().iter().any(|u| u.username == config.api_user) {
        return;
    }
    let Some(users) = tenant.tab("Users") else {
        return;
    };
    let def = users.def.clone();
    let group_target = def
        .field_by_role("group")
        .and_then(|f| f.linked_tab.clone());
    let first_group = group_target.and_then(|g| {
        tenant
            .tab(&g)
            .and_then(|t| t.records.keys().next().copied())
    });
    let id = tenant.alloc_record_id();
    let at = Timestamp::from_second(1_609_459_200).expect("2021-01-01 is valid");
    let mut rec = Record {
        id,
        created_by: config.api_user.clone(),
        created_at: at,
        modified_by: config.api_user.clone(),
        modified_at: at,
        values: vec![Value::Null; def.fields.len()],
        attachments: Vec::new(),
    };
    let mut set = |role: &str, v: Value| {
        if let Some(i) = def.role_index(role) {
            rec.set(i, v);
        }
    };
    set("username", json!(config.api_user));
    set("first_name", json!("API"));
    set("last_name", json!("Integration"));
    if config.api_user.contains('@') {
        set("email", json!(config.api_user));
    }
    if let Some(role) = def.field_by_role("role").and_then(|f| f.options.first()) {
        set("role", json!(role));
    }
    set("active", json!("1"));
    if let Some(g) = first_group {
        set("group", json!(g));
    }
    tenant
        .tab_mut("Users")
        .expect("Users exists")
        .records
        .insert(id, rec);
}

/// The platform's wording of errors.
pub(crate) fn err(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({"Status": "Error", "Message": message.into()})),
    )
        .into_response()
}

/// A refused call: status and the platform's message.
pub(crate) struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        err(self.0, self.1)
    }
}

type ApiResult = Result<Value, ApiError>;

fn fail(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError(status, message.into())
}

fn bad(message: impl Into<String>) -> ApiError {
    fail(StatusCode::BAD_REQUEST, message)
}

pub(crate) struct IvinexFaults;

impl FaultResponder for IvinexFaults {
    fn too_many_requests(&self, retry_after_secs: Option<u64>) -> Response {
        let mut resp = err(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests: API rate limit exceeded, slow down",
        );
        if let Some(s) = retry_after_secs {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
    fn server_error(&self, status: StatusCode) -> Response {
        err(
            status,
            "The service is temporarily unavailable, please try again later",
        )
    }
}

pub(crate) fn router(sh: Arc<Shared>) -> Router {
    let public = Router::new()
        .route("/API/{call}", post(api))
        .route("/files/{id}/{*name}", get(file))
        .layer(axum::extract::DefaultBodyLimit::max(200 * 1024 * 1024))
        .with_state(sh.clone());
    let sandbox = Router::new()
        .route("/__sandbox/dump", get(sb_dump))
        .route("/__sandbox/records/{tab}", get(sb_records))
        .route("/__sandbox/reset", post(sb_reset))
        .route("/__sandbox/seed", post(sb_seed))
        .route("/__sandbox/freeze", post(sb_freeze).get(sb_frozen))
        .route("/__sandbox/stats", get(sb_stats).delete(sb_clear_stats))
        .route("/__sandbox/credentials", get(sb_credentials))
        .layer(axum::extract::DefaultBodyLimit::max(200 * 1024 * 1024))
        .with_state(sh.clone())
        .merge(sandbox_kit::faults_router(sh.faults.clone()));
    sh.faults
        .layer(public.merge(sandbox))
        .layer(axum::middleware::from_fn_with_state(sh, outer))
}

/// Counts every public request per endpoint and refuses those above `max_concurrent`.
async fn outer(State(sh): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if path.starts_with("/__sandbox") {
        return next.run(req).await;
    }
    let key = if let Some(call) = path.strip_prefix("/API/") {
        format!("{} /API/{call}", req.method())
    } else if path.starts_with("/files/") {
        format!("{} /files/{{id}}/{{file_name}}", req.method())
    } else {
        format!("{} {path}", req.method())
    };
    let now = sh.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let resp = match sh.config.max_concurrent {
        Some(max) if now > max => {
            let mut r = err(
                StatusCode::TOO_MANY_REQUESTS,
                format!("Too many concurrent requests (limit {max})"),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(1u64));
            r
        }
        _ => next.run(req).await,
    };
    sh.in_flight.fetch_sub(1, Ordering::SeqCst);
    let mut stats = sh.stats.lock().unwrap_or_else(|e| e.into_inner());
    let s = stats.entry(key).or_default();
    s.count += 1;
    *s.statuses.entry(resp.status().as_u16()).or_default() += 1;
    resp
}

/// None when the Basic credentials are the API user's; otherwise the 401 answer.
fn unauthorized(sh: &Shared, headers: &HeaderMap) -> Option<Response> {
    match sandbox_kit::basic_auth(headers) {
        Some((u, p)) if u == sh.config.api_user && p == sh.config.api_password => None,
        _ => {
            let mut r = err(StatusCode::UNAUTHORIZED, "Invalid username or password");
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Ivinex API\""),
            );
            Some(r)
        }
    }
}

async fn api(
    State(sh): State<Arc<Shared>>,
    Path(call): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = unauthorized(&sh, &headers) {
        return r;
    }
    if !sh.config.api_permission {
        return err(
            StatusCode::FORBIDDEN,
            format!("User {} does not have API permissions", sh.config.api_user),
        );
    }
    let args: Map<String, Value> = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return bad("The request body must be a JSON object").into_response(),
            Err(e) => return bad(format!("Invalid JSON body: {e}")).into_response(),
        }
    };
    let result = match call.as_str() {
        "GetTabs" => get_tabs(&sh),
        "GetFields" => get_fields(&sh, &args),
        "GetRecords" => get_records(&sh, &args),
        "GetRelatedItems" => get_related(&sh, &args, true),
        "GetAllRelatedItems" => get_related(&sh, &args, false),
        "AddRecord" | "UpdateRecord" | "LinkRecords" | "AddAttachment" | "DeleteRecord" => {
            if sh.read().frozen {
                return err(
                    StatusCode::FORBIDDEN,
                    "This tenant is read-only (frozen for cutover): write calls are refused",
                );
            }
            match call.as_str() {
                "AddRecord" => add_record(&sh, &args),
                "UpdateRecord" => update_record(&sh, &args),
                "LinkRecords" => link_records(&sh, &args),
                "AddAttachment" => add_attachment(&sh, &args),
                _ => delete_record(&sh, &args),
            }
        }
        other => return err(StatusCode::NOT_FOUND, format!("Unknown API call: {other}")),
    };
    match result {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

fn str_arg<'a>(args: &'a Map<String, Value>, key: &str) -> Result<&'a str, ApiError> {
    match args.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(_) => Err(bad(format!("{key} must be a non-empty string"))),
        None => Err(bad(format!("Missing argument {key}"))),
    }
}

fn int_arg(args: &Map<String, Value>, key: &str) -> Result<Option<i64>, ApiError> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| bad(format!("{key} must be a whole number"))),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| bad(format!("{key} must be a whole number"))),
        Some(_) => Err(bad(format!("{key} must be a whole number"))),
    }
}

fn id_arg(args: &Map<String, Value>, key: &str) -> Result<u64, ApiError> {
    match int_arg(args, key)? {
        Some(n) if n > 0 => Ok(n as u64),
        Some(_) => Err(bad(format!("{key} must be a positive collection_id"))),
        None => Err(bad(format!("Missing argument {key}"))),
    }
}

fn forbidden(sh: &Shared, tab: &str) -> bool {
    sh.config.forbidden_tabs.iter().any(|t| t == tab)
}

fn unknown_tab(tab: &str) -> ApiError {
    fail(StatusCode::NOT_FOUND, format!("Unknown tab: {tab}"))
}

fn get_tabs(sh: &Shared) -> ApiResult {
    let st = sh.read();
    let tabs: Vec<Value> = st
        .tenant
        .tabs
        .iter()
        .map(|t| json!({"TabID": t.def.tab_id, "Name": t.def.name}))
        .collect();
    Ok(json!({"Tabs": tabs}))
}

fn get_fields(sh: &Shared, args: &Map<String, Value>) -> ApiResult {
    let tab = str_arg(args, "Tab")?;
    let st = sh.read();
    let t = st.tenant.tab(tab).ok_or_else(|| unknown_tab(tab))?;
    if forbidden(sh, tab) {
        return Ok(json!({"Fields": []}));
    }
    Ok(json!({"Fields": t.def.fields.iter().map(FieldDef::api_json).collect::<Vec<_>>()}))
}

fn get_records(sh: &Shared, args: &Map<String, Value>) -> ApiResult {
    let tab = str_arg(args, "Tab")?;
    let page = int_arg(args, "Page")?.unwrap_or(1);
    if page < 1 {
        return Err(bad("Page must be 1 or more"));
    }
    let size = int_arg(args, "PageSize")?.unwrap_or(100);
    if !(1..=200).contains(&size) {
        return Err(bad("PageSize must be between 1 and 200"));
    }
    let since = match args.get("ModifiedSince") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(parse_site_datetime(s, &sh.tz).ok_or_else(|| {
            bad(format!(
                "ModifiedSince must be YYYY-MM-DD HH:MM:SS, got '{s}'"
            ))
        })?),
        Some(_) => return Err(bad("ModifiedSince must be a string YYYY-MM-DD HH:MM:SS")),
    };
    let st = sh.read();
    let t = st.tenant.tab(tab).ok_or_else(|| unknown_tab(tab))?;
    let only: Option<Vec<usize>> = match args.get("Fields") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let names: Vec<String> = match v {
                Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| bad("Fields must be a list of field names"))?,
                Value::String(s) => s
                    .split(',')
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty())
                    .collect(),
                _ => return Err(bad("Fields must be a list of field names")),
            };
            let mut idx = Vec::new();
            for n in &names {
                if DEFAULT_FIELDS.contains(&n.as_str()) || n == "attachments" {
                    continue;
                }
                match t.def.field_index(n) {
                    Some(i) => idx.push(i),
                    None => return Err(bad(format!("Unknown field {n} on tab {tab}"))),
                }
            }
            Some(idx)
        }
    };
    if forbidden(sh, tab) {
        return Ok(json!({"Records": [], "Page": page, "HasMore": false}));
    }
    let skip = ((page - 1) * size) as usize;
    let size = size as usize;
    let mut matching = t
        .records
        .values()
        .filter(|r| since.is_none_or(|s| r.modified_at >= s))
        .skip(skip);
    let render = sh.render();
    let records: Vec<Value> = matching
        .by_ref()
        .take(size)
        .map(|r| st.tenant.render_record(t, r, &render, only.as_deref()))
        .collect();
    let has_more = matching.next().is_some();
    Ok(json!({"Records": records, "Page": page, "HasMore": has_more}))
}

fn get_related(sh: &Shared, args: &Map<String, Value>, filtered: bool) -> ApiResult {
    let tab = str_arg(args, "Tab")?;
    let id = id_arg(args, "RecordID")?;
    let related_tab = if filtered {
        Some(str_arg(args, "RelatedTab")?)
    } else {
        None
    };
    let cached = sh.read().embedded.clone();
    let index = match cached {
        Some(i) => i,
        None => {
            let mut st = sh.state.write().unwrap_or_else(|e| e.into_inner());
            let built = match &st.embedded {
                Some(i) => i.clone(),
                None => Arc::new(st.tenant.embedded_index()),
            };
            st.embedded = Some(built.clone());
            built
        }
    };
    let st = sh.read();
    let tenant = &st.tenant;
    let t = tenant.tab(tab).ok_or_else(|| unknown_tab(tab))?;
    if let Some(rt) = related_tab {
        tenant.tab(rt).ok_or_else(|| unknown_tab(rt))?;
    }
    if forbidden(sh, tab) {
        return Err(fail(StatusCode::NOT_FOUND, format!("No {tab} record {id}")));
    }
    let rec = t
        .records
        .get(&id)
        .ok_or_else(|| fail(StatusCode::NOT_FOUND, format!("No {tab} record {id}")))?;
    let mut found: Vec<(String, u64, LinkType)> = Vec::new();
    for (i, f) in t.def.fields.iter().enumerate() {
        if f.field_type == FieldType::LinkedRecord
            && let (Some(target), Some(lt)) = (rec.value(i).as_u64(), f.linked_tab.as_ref())
        {
            found.push((lt.clone(), target, LinkType::Embedded));
        }
    }
    for (ti, rid) in index.get(&id).map(Vec::as_slice).unwrap_or(&[]) {
        let src = &tenant.tabs[*ti];
        // Ids are unique across tabs, but only count fields that really point at this tab.
        let points_here = src.def.fields.iter().enumerate().any(|(i, f)| {
            f.field_type == FieldType::LinkedRecord
                && f.linked_tab.as_deref() == Some(tab)
                && src
                    .records
                    .get(rid)
                    .is_some_and(|r| r.value(i).as_u64() == Some(id))
        });
        if points_here {
            found.push((src.def.name.clone(), *rid, LinkType::Embedded));
        }
    }
    for l in &tenant.links {
        if l.tab == tab && l.record_id == id {
            found.push((l.link_tab.clone(), l.link_record_id, l.link_type));
        } else if l.link_tab == tab && l.link_record_id == id {
            found.push((l.tab.clone(), l.record_id, l.link_type));
        }
    }
    let render = sh.render();
    let mut seen = HashSet::new();
    let mut items = Vec::new();
    for (rt, rid, lt) in found {
        if related_tab.is_some_and(|f| f != rt)
            || forbidden(sh, &rt)
            || !seen.insert((rt.clone(), rid, lt))
        {
            continue;
        }
        let Some(other) = tenant.tab(&rt) else {
            continue;
        };
        let Some(r) = other.records.get(&rid) else {
            continue;
        };
        items.push(json!({"Tab": rt, "LinkType": lt.as_str(), "Record": tenant.render_record(other, r, &render, None)}));
    }
    Ok(json!({"RelatedItems": items}))
}

fn now_ts() -> Timestamp {
    Timestamp::from_second(Timestamp::now().as_second()).expect("now is in range")
}

fn writable_tab<'a>(
    sh: &Shared,
    args: &'a Map<String, Value>,
    tenant: &Tenant,
) -> Result<&'a str, ApiError> {
    let tab = str_arg(args, "Tab")?;
    tenant.tab(tab).ok_or_else(|| unknown_tab(tab))?;
    if forbidden(sh, tab) {
        return Err(fail(
            StatusCode::FORBIDDEN,
            format!("User {} has no permission on tab {tab}", sh.config.api_user),
        ));
    }
    Ok(tab)
}

/// Parsed record body: tab field values by index plus default-field overrides.
struct Parsed {
    values: Vec<(usize, Value)>,
    created_by: Option<String>,
    created_at: Option<Timestamp>,
    modified_by: Option<String>,
    modified_at: Option<Timestamp>,
    collection_id: Option<u64>,
}

fn parse_record(
    sh: &Shared,
    tenant: &Tenant,
    tab: &str,
    body: &Map<String, Value>,
    allow_id: bool,
) -> Result<Parsed, ApiError> {
    let def = &tenant.tab(tab).ok_or_else(|| unknown_tab(tab))?.def;
    let mut p = Parsed {
        values: Vec::new(),
        created_by: None,
        created_at: None,
        modified_by: None,
        modified_at: None,
        collection_id: None,
    };
    let date = |k: &str, v: &Value| -> Result<Timestamp, ApiError> {
        v.as_str()
            .and_then(|s| parse_site_datetime(s, &sh.tz))
            .ok_or_else(|| bad(format!("{k} must be YYYY-MM-DD HH:MM:SS")))
    };
    let user = |k: &str, v: &Value| -> Result<String, ApiError> {
        v.as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| bad(format!("{k} must be a username")))
    };
    for (k, v) in body {
        match k.as_str() {
            "created_by" => p.created_by = Some(user(k, v)?),
            "modified_by" => p.modified_by = Some(user(k, v)?),
            "created_date" => p.created_at = Some(date(k, v)?),
            "modified_date" => p.modified_at = Some(date(k, v)?),
            "collection_id" if allow_id => {
                p.collection_id = Some(
                    v.as_u64()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| bad("collection_id must be a positive integer"))?,
                )
            }
            "collection_id" => return Err(bad("collection_id is assigned by the server")),
            "attachments" => return Err(bad("attachments are added with AddAttachment")),
            name => {
                let i = def
                    .field_index(name)
                    .ok_or_else(|| bad(format!("Unknown field {name} on tab {tab}")))?;
                let parsed = parse_value(tenant, &def.fields[i], v, &sh.tz).map_err(bad)?;
                p.values.push((i, parsed));
            }
        }
    }
    Ok(p)
}

fn add_record(sh: &Shared, args: &Map<String, Value>) -> ApiResult {
    let mut st = sh.write();
    let tab = writable_tab(sh, args, &st.tenant)?.to_string();
    let body = args
        .get("Record")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("Record must be an object of field values"))?;
    let p = parse_record(sh, &st.tenant, &tab, body, false)?;
    let id = insert_parsed(sh, &mut st.tenant, &tab, p, true)?;
    Ok(json!({"Status": "Success", "collection_id": id}))
}

fn insert_parsed(
    sh: &Shared,
    tenant: &mut Tenant,
    tab: &str,
    p: Parsed,
    check_required: bool,
) -> Result<u64, ApiError> {
    let def = &tenant.tab(tab).expect("checked").def;
    if check_required
        && let Some(f) = def
            .fields
            .iter()
            .enumerate()
            .find(|(i, f)| f.required && !p.values.iter().any(|(j, v)| j == i && !v.is_null()))
            .map(|(_, f)| f)
    {
        return Err(bad(format!("Field {} is required", f.field_name)));
    }
    let nfields = def.fields.len();
    let id = match p.collection_id {
        Some(id) => {
            if tenant.tabs.iter().any(|t| t.records.contains_key(&id)) {
                return Err(bad(format!("collection_id {id} is already used")));
            }
            tenant.next_record_id = tenant.next_record_id.max(id + 1);
            id
        }
        None => tenant.alloc_record_id(),
    };
    let now = now_ts();
    let created_by = p.created_by.unwrap_or_else(|| sh.config.api_user.clone());
    let created_at = p.created_at.unwrap_or(now);
    let mut rec = Record {
        id,
        modified_by: p.modified_by.unwrap_or_else(|| created_by.clone()),
        modified_at: p.modified_at.unwrap_or(created_at).max(created_at),
        created_by,
        created_at,
        values: vec![Value::Null; nfields],
        attachments: Vec::new(),
    };
    for (i, v) in p.values {
        rec.set(i, v);
    }
    tenant
        .tab_mut(tab)
        .expect("checked")
        .records
        .insert(id, rec);
    Ok(id)
}

/// Applies changes to a record, bumps its modification stamp and appends ChangeHistory entries.
fn apply_update(
    sh: &Shared,
    tenant: &mut Tenant,
    tab: &str,
    id: u64,
    changes: Vec<(usize, Value)>,
    by: Option<String>,
    at: Option<Timestamp>,
) -> Result<(), ApiError> {
    let by = by.unwrap_or_else(|| sh.config.api_user.clone());
    let at = at.unwrap_or_else(now_ts);
    let t = tenant.tab_mut(tab).ok_or_else(|| unknown_tab(tab))?;
    let fields = t.def.fields.clone();
    let rec = t
        .records
        .get_mut(&id)
        .ok_or_else(|| fail(StatusCode::NOT_FOUND, format!("No {tab} record {id}")))?;
    let mut history = Vec::new();
    for (i, v) in changes {
        let old = rec.value(i).clone();
        if old != v {
            history.push((
                fields[i].field_name.clone(),
                value_text(fields[i].field_type, &old, &sh.tz),
                value_text(fields[i].field_type, &v, &sh.tz),
            ));
            rec.set(i, v);
        }
    }
    rec.modified_by = by.clone();
    rec.modified_at = at.max(rec.created_at);
    if tab == "ChangeHistory" {
        return Ok(());
    }
    let Some(h) = tenant.tab("ChangeHistory").map(|t| t.def.clone()) else {
        return Ok(());
    };
    for (field, old, new) in history {
        let hid = tenant.alloc_record_id();
        let mut hrec = Record {
            id: hid,
            created_by: by.clone(),
            created_at: at,
            modified_by: by.clone(),
            modified_at: at,
            values: vec![Value::Null; h.fields.len()],
            attachments: Vec::new(),
        };
        let text = |s: String| if s.is_empty() { Value::Null } else { json!(s) };
        for (role, v) in [
            ("record_tab", json!(tab)),
            ("record_id", json!(id)),
            ("field", json!(field)),
            ("old_value", text(old)),
            ("new_value", text(new)),
            ("changed_by", json!(by)),
            ("changed_at", json!(at.as_second())),
        ] {
            if let Some(i) = h.role_index(role) {
                hrec.set(i, v);
            }
        }
        tenant
            .tab_mut("ChangeHistory")
            .expect("exists")
            .records
            .insert(hid, hrec);
    }
    Ok(())
}

fn update_record(sh: &Shared, args: &Map<String, Value>) -> ApiResult {
    let mut st = sh.write();
    let tab = writable_tab(sh, args, &st.tenant)?.to_string();
    let id = id_arg(args, "RecordID")?;
    if st.tenant.find_record(&tab, id).is_none() {
        return Err(fail(StatusCode::NOT_FOUND, format!("No {tab} record {id}")));
    }
    let body = args
        .get("Record")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("Record must be an object of field values"))?;
    let p = parse_record(sh, &st.tenant, &tab, body, false)?;
    if p.created_by.is_some() || p.created_at.is_some() {
        return Err(bad("created_by and created_date cannot be changed"));
    }
    let def = &st.tenant.tab(&tab).expect("checked").def;
    if let Some((i, _)) = p
        .values
        .iter()
        .find(|(i, v)| def.fields[*i].required && v.is_null())
    {
        return Err(bad(format!(
            "Field {} is required",
            def.fields[*i].field_name
        )));
    }
    apply_update(
        sh,
        &mut st.tenant,
        &tab,
        id,
        p.values,
        p.modified_by,
        p.modified_at,
    )?;
    Ok(json!({"Status": "Success"}))
}

fn link_records(sh: &Shared, args: &Map<String, Value>) -> ApiResult {
    let mut st = sh.write();
    let tab = writable_tab(sh, args, &st.tenant)?.to_string();
    let id = id_arg(args, "RecordID")?;
    let link_tab = str_arg(args, "LinkTab")?.to_string();
    let link_id = id_arg(args, "LinkRecordID")?;
    let lt = str_arg(args, "LinkType")?;
    let lt = LinkType::parse(lt).ok_or_else(|| {
        bad(format!(
            "LinkType must be embedded, related, converted or copied_from, got '{lt}'"
        ))
    })?;
    st.tenant
        .tab(&link_tab)
        .ok_or_else(|| unknown_tab(&link_tab))?;
    if st.tenant.find_record(&tab, id).is_none() {
        return Err(fail(StatusCode::NOT_FOUND, format!("No {tab} record {id}")));
    }
    if st.tenant.find_record(&link_tab, link_id).is_none() {
        return Err(fail(
            StatusCode::NOT_FOUND,
            format!("No {link_tab} record {link_id}"),
        ));
    }
    if lt == LinkType::Embedded {
        let def = &st.tenant.tab(&tab).expect("checked").def;
        let i = def
            .fields
            .iter()
            .position(|f| {
                f.field_type == FieldType::LinkedRecord
                    && f.linked_tab.as_deref() == Some(link_tab.as_str())
            })
            .ok_or_else(|| {
                bad(format!(
                    "Tab {tab} has no linked record field to {link_tab}"
                ))
            })?;
        apply_update(
            sh,
            &mut st.tenant,
            &tab,
            id,
            vec![(i, json!(link_id))],
            None,
            None,
        )?;
    } else {
        let link = Link {
            tab: tab.clone(),
            record_id: id,
            link_tab,
            link_record_id: link_id,
            link_type: lt,
        };
        if !st.tenant.links.contains(&link) {
            st.tenant.links.push(link);
        }
        apply_update(sh, &mut st.tenant, &tab, id, Vec::new(), None, None)?;
    }
    Ok(json!({"Status": "Success"}))
}

fn add_attachment(sh: &Shared, args: &Map<String, Value>) -> ApiResult {
    let mut st = sh.write();
    let tab = writable_tab(sh, args, &st.tenant)?.to_string();
    let id = id_arg(args, "RecordID")?;
    let file_name = str_arg(args, "FileName")?.to_string();
    if file_name.contains('/') || file_name.contains('\\') {
        return Err(bad("FileName must not contain a path"));
    }
    let content = match args.get("ContentBase64") {
        Some(Value::String(s)) => base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map_err(|e| bad(format!("ContentBase64 is not valid base64: {e}")))?,
        _ => return Err(bad("Missing argument ContentBase64")),
    };
    let declared = match args.get("MD5") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(bad("MD5 must be a string")),
    };
    if st.tenant.find_record(&tab, id).is_none() {
        return Err(fail(StatusCode::NOT_FOUND, format!("No {tab} record {id}")));
    }
    let url = store_attachment(&mut st.tenant, &tab, id, &file_name, content, declared)
        .replace(crate::model::BASE_URL_TOKEN, sh.base());
    apply_update(sh, &mut st.tenant, &tab, id, Vec::new(), None, None)?;
    Ok(json!({"Status": "Success", "url": url}))
}

/// Stores uploaded bytes as an attachment of a record; returns the URL template.
fn store_attachment(
    tenant: &mut Tenant,
    tab: &str,
    id: u64,
    file_name: &str,
    content: Vec<u8>,
    declared: Option<String>,
) -> String {
    let aid = tenant.alloc_attachment_id();
    let a = Attachment {
        id: aid,
        tab: tab.to_string(),
        record_id: id,
        file_name: file_name.to_string(),
        size: content.len() as u64,
        md5_declared: declared,
        md5_actual: Some(md5_hex(&content)),
        content: Content::Stored(Bytes::from(content)),
    };
    let url = a.url_template();
    tenant.attachments.insert(aid, a);
    if let Some(r) = tenant.tab_mut(tab).and_then(|t| t.records.get_mut(&id)) {
        r.attachments.push(aid);
    }
    url
}

fn delete_record(sh: &Shared, args: &Map<String, Value>) -> ApiResult {
    let mut st = sh.write();
    let tab = writable_tab(sh, args, &st.tenant)?.to_string();
    let id = id_arg(args, "RecordID")?;
    let rec = st
        .tenant
        .tab_mut(&tab)
        .and_then(|t| t.records.remove(&id))
        .ok_or_else(|| fail(StatusCode::NOT_FOUND, format!("No {tab} record {id}")))?;
    for aid in rec.attachments {
        st.tenant.attachments.remove(&aid);
    }
    st.tenant.links.retain(|l| {
        !((l.tab == tab && l.record_id == id) || (l.link_tab == tab && l.link_record_id == id))
    });
    Ok(json!({"Status": "Success"}))
}

async fn file(
    State(sh): State<Arc<Shared>>,
    Path((id, _name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = unauthorized(&sh, &headers) {
        return r;
    }
    let not_found = || err(StatusCode::NOT_FOUND, format!("No attachment {id}"));
    let Ok(aid) = id.parse::<u64>() else {
        return not_found();
    };
    let (att, seed) = {
        let st = sh.read();
        match st.tenant.attachments.get(&aid) {
            Some(a) if !forbidden(&sh, &a.tab) => (a.clone(), st.tenant.seed),
            _ => return not_found(),
        }
    };
    let disposition = format!(
        "attachment; filename*=UTF-8''{}",
        crate::model::encode_path_segment(&att.file_name)
    );
    let builder = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type(&att.file_name))
        .header(header::CONTENT_LENGTH, att.size)
        .header(header::CONTENT_DISPOSITION, disposition);
    let body = match att.content {
        Content::Stored(bytes) => Body::from(bytes),
        Content::Generated if att.size <= IN_MEMORY_LIMIT => {
            Body::from(BlobGen::new(seed, aid, &att.file_name, att.size).all())
        }
        Content::Generated => {
            let blob = BlobGen::new(seed, aid, &att.file_name, att.size);
            let sh = sh.clone();
            let stream =
                futures::stream::unfold((blob, Some(Md5::new())), move |(mut blob, hasher)| {
                    let sh = sh.clone();
                    async move {
                        let mut hasher = hasher?;
                        let chunk = blob.next_chunk(CHUNK * 4);
                        hasher.update(&chunk);
                        let hasher = if blob.remaining() == 0 {
                            // Hash now: a client may stop polling once Content-Length bytes arrived.
                            let md5 = hex::encode(hasher.finalize());
                            if let Some(a) = sh
                                .state
                                .write()
                                .unwrap_or_else(|e| e.into_inner())
                                .tenant
                                .attachments
                                .get_mut(&aid)
                            {
                                a.md5_actual.get_or_insert(md5);
                            }
                            None
                        } else {
                            Some(hasher)
                        };
                        Some((
                            Ok::<Bytes, std::io::Error>(Bytes::from(chunk)),
                            (blob, hasher),
                        ))
                    }
                });
            Body::from_stream(stream)
        }
    };
    builder
        .body(body)
        .unwrap_or_else(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

async fn sb_dump(State(sh): State<Arc<Shared>>) -> Response {
    axum::Json(sh.dump()).into_response()
}

async fn sb_records(State(sh): State<Arc<Shared>>, Path(tab): Path<String>) -> Response {
    match sh.records(&tab) {
        Some(r) => axum::Json(Value::Array(r)).into_response(),
        None => unknown_tab(&tab).into_response(),
    }
}

async fn sb_reset(State(sh): State<Arc<Shared>>) -> Response {
    sh.reset();
    axum::Json(json!({"Status": "Success"})).into_response()
}

async fn sb_freeze(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("frozen").and_then(Value::as_bool))
    {
        Some(f) => {
            sh.state.write().unwrap_or_else(|e| e.into_inner()).frozen = f;
            axum::Json(json!({"frozen": f})).into_response()
        }
        None => bad("Body must be {\"frozen\": true|false}").into_response(),
    }
}

async fn sb_frozen(State(sh): State<Arc<Shared>>) -> Response {
    axum::Json(json!({"frozen": sh.read().frozen})).into_response()
}

async fn sb_stats(State(sh): State<Arc<Shared>>) -> Response {
    axum::Json(sh.stats()).into_response()
}

async fn sb_clear_stats(State(sh): State<Arc<Shared>>) -> Response {
    sh.clear_stats();
    axum::Json(sh.stats()).into_response()
}

async fn sb_credentials(State(sh): State<Arc<Shared>>) -> Response {
    axum::Json(json!({
        "base_url": sh.base(),
        "user": sh.config.api_user,
        "password": sh.config.api_password,
        "timezone": sh.config.timezone,
        "site_id": sh.config.site_id,
    }))
    .into_response()
}

async fn sb_seed(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad(format!("Invalid JSON body: {e}")).into_response(),
    };
    if let Some(seed) = v.get("seed") {
        let Some(seed) = seed.as_u64() else {
            return bad("seed must be an unsigned integer").into_response();
        };
        let tickets = v
            .get("tickets")
            .and_then(Value::as_u64)
            .unwrap_or(sh.config.tickets as u64) as usize;
        let sh2 = sh.clone();
        let counts = tokio::task::spawn_blocking(move || sh2.seed_generated(seed, tickets)).await;
        return match counts {
            Ok(c) => axum::Json(
                json!({"Status": "Success", "seed": seed, "tickets": tickets, "counts": c}),
            )
            .into_response(),
            Err(e) => err(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("generation failed: {e}"),
            ),
        };
    }
    match seed_records(&sh, &v) {
        Ok(created) => axum::Json(json!({"Status": "Success", "created": created})).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `{"fields": {Tab: [field]}, "records": {Tab: [record]}}`: adds fields (and tabs), then records,
/// all or nothing.
pub(crate) fn seed_records(sh: &Shared, v: &Value) -> Result<Value, ApiError> {
    let mut st = sh.write();
    let mut tenant = st.tenant.clone();
    if let Some(fields) = v.get("fields") {
        let fields = fields
            .as_object()
            .ok_or_else(|| bad("fields must be an object {Tab: [field, ...]}"))?;
        for (tab, list) in fields {
            for f in list
                .as_array()
                .ok_or_else(|| bad(format!("fields.{tab} must be a list")))?
            {
                let def = seed_field(f).map_err(bad)?;
                if tenant
                    .tab(tab)
                    .is_some_and(|t| t.def.field_index(&def.field_name).is_some())
                {
                    return Err(bad(format!(
                        "Field {} already exists on {tab}",
                        def.field_name
                    )));
                }
                tenant.add_field(tab, def);
            }
        }
    }
    let mut created = Map::new();
    if let Some(records) = v.get("records") {
        let records = records
            .as_object()
            .ok_or_else(|| bad("records must be an object {Tab: [record, ...]}"))?;
        for (tab, list) in records {
            if tenant.tab(tab).is_none() {
                return Err(unknown_tab(tab));
            }
            let mut ids = Vec::new();
            for r in list
                .as_array()
                .ok_or_else(|| bad(format!("records.{tab} must be a list")))?
            {
                let mut obj = r
                    .as_object()
                    .cloned()
                    .ok_or_else(|| bad("each record must be an object"))?;
                let attachments = obj.remove("attachments");
                let p = parse_record(sh, &tenant, tab, &obj, true)?;
                let id = insert_parsed(sh, &mut tenant, tab, p, false)?;
                if let Some(list) = attachments {
                    for a in list
                        .as_array()
                        .ok_or_else(|| bad("attachments must be a list"))?
                    {
                        seed_attachment(&mut tenant, tab, id, a)?;
                    }
                }
                ids.push(json!(id));
            }
            created.insert(tab.clone(), Value::Array(ids));
        }
    }
    st.tenant = tenant;
    Ok(Value::Object(created))
}

/// A seeded field: `{"DisplayText", "Type", "FieldName"?, "Options"?, "LinkedTab"?, "Required"?, "Role"?}`.
fn seed_field(f: &Value) -> Result<FieldDef, String> {
    let display = f
        .get("DisplayText")
        .and_then(Value::as_str)
        .ok_or("a field needs DisplayText")?;
    let ty: FieldType = serde_json::from_value(f.get("Type").cloned().unwrap_or(Value::Null))
        .map_err(|e| format!("bad Type: {e}"))?;
    let name = f
        .get("FieldName")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| crate::model::field_name_from(display));
    if DEFAULT_FIELDS.contains(&name.as_str()) || name == "attachments" {
        return Err(format!("{name} is a default field"));
    }
    let options: Vec<String> = f
        .get("Options")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|o| o.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let linked_tab = f
        .get("LinkedTab")
        .and_then(Value::as_str)
        .map(str::to_string);
    let linked_tab = if ty == FieldType::UserLink {
        Some(linked_tab.unwrap_or_else(|| "Users".into()))
    } else {
        linked_tab
    };
    if ty == FieldType::LinkedRecord && linked_tab.is_none() {
        return Err(format!("linked_record field {name} needs LinkedTab"));
    }
    Ok(FieldDef {
        field_id: 0,
        field_name: name,
        display_text: display.to_string(),
        field_type: ty,
        required: f.get("Required").and_then(Value::as_bool).unwrap_or(false),
        options,
        linked_tab,
        role: f.get("Role").and_then(Value::as_str).map(str::to_string),
    })
}

/// A seeded attachment: `{"file_name", "content_base64"?, "size"?, "md5"?}`; without content the
/// bytes are generated; `"md5": "auto"` declares the right checksum.
fn seed_attachment(tenant: &mut Tenant, tab: &str, id: u64, a: &Value) -> Result<(), ApiError> {
    let name = a
        .get("file_name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("attachment needs file_name"))?;
    let md5 = a.get("md5").and_then(Value::as_str);
    if let Some(b64) = a.get("content_base64").and_then(Value::as_str) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| bad(format!("content_base64: {e}")))?;
        let declared = match md5 {
            Some("auto") => Some(md5_hex(&bytes)),
            other => other.map(str::to_string),
        };
        store_attachment(tenant, tab, id, name, bytes, declared);
        return Ok(());
    }
    let size = a.get("size").and_then(Value::as_u64).unwrap_or(0);
    let aid = tenant.alloc_attachment_id();
    let actual = (size < 1_000_000 || md5 == Some("auto"))
        .then(|| BlobGen::new(tenant.seed, aid, name, size).md5());
    let declared = match md5 {
        Some("auto") => actual.clone(),
        other => other.map(str::to_string),
    };
    tenant.attachments.insert(
        aid,
        Attachment {
            id: aid,
            tab: tab.to_string(),
            record_id: id,
            file_name: name.to_string(),
            size,
            md5_declared: declared,
            md5_actual: actual,
            content: Content::Generated,
        },
    );
    if let Some(r) = tenant.tab_mut(tab).and_then(|t| t.records.get_mut(&id)) {
        r.attachments.push(aid);
    }
    Ok(())
}
