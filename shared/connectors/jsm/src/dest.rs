//! [`Jsm`]: loads canonical records into Jira Service Management.
//!
//! Accounts become organizations, contacts customers (one per e-mail), tickets requests (then the
//! platform API sets what the request type does not carry and walks the workflow to the status),
//! activities platform comments (internal or public), tasks sub-tasks. REST cannot back-date, so
//! every description and comment opens with a provenance paragraph carrying the marker
//! `[deskshift:<platform>:<kind>:<source id>]`; tickets and tasks also carry `<platform>:<id>` in
//! the "Legacy Ticket ID" field that [`Destination::find_existing`] searches.
//!
//! Destination ids: organization id, customer account id, issue key for tickets and tasks,
//! `<issueKey>:<commentId>` for activities, `<issueKey>:<attachmentId>` for attachments.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU8, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use deskshift_core::http::Answer;
use deskshift_core::model::{
    Account, Activity, AttachmentRef, CanonicalRecord, Contact, CustomValues, FieldType,
    ObjectKind, Task, Ticket,
};
use deskshift_core::ports::{
    CustomFieldSpec, DestAgent, DestField, Destination, DestinationInfo, LoadContext, NamedId,
    Spend,
};
use deskshift_core::{Error, Result};
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::adf::{self, MediaRef};
use crate::client::{JsmClient, PLATFORM, Payload, api_error, describe_error_body};
use crate::config::{CategoryMode, JsmConfig};
use crate::convert::{
    CF_PREFIX, activity_line, activity_tag, custom_value_for, is_yes_no, jira_date, label,
    legacy_value, marker, option_values, readable_utc, short_type, value_text,
};

/// Longest values Jira accepts, in characters.
const MAX_SUMMARY: usize = 255;
const MAX_ORG_NAME: usize = 200;
/// Organization property holding the source record (where the site supports properties).
const ORG_PROPERTY: &str = "deskshift.source";
/// Statuses of JSM's standard service workflow, used only when a project has neither a statuses
/// endpoint nor an issue to read transitions from.
const DEFAULT_STATUSES: [&str; 5] = [
    "Open",
    "In Progress",
    "Waiting for customer",
    "Resolved",
    "Closed",
];
const MAX_TRANSITION_STEPS: usize = 12;

/// Accounts one `POST /servicedesk/{id}/customer` takes at most (the endpoint's `accountIds`).
const DESK_ADD_BATCH: usize = 50;

/// The desk adds waiting for the add in flight to one desk.
#[derive(Default)]
struct DeskQueue {
    /// An add to this desk is in flight (its caller hands over to the first waiting).
    busy: bool,
    /// Numbers the callers, so each finds its own entry.
    tickets: u64,
    waiting: std::collections::VecDeque<(u64, String, tokio::sync::oneshot::Sender<DeskTurn>)>,
}

/// Hands a desk's adds over when the caller making one is done or dropped.
struct HandOver<'a> {
    jsm: &'a Jsm,
    desk: &'a str,
}

impl Drop for HandOver<'_> {
    fn drop(&mut self) {
        self.jsm.hand_over_desk(self.desk);
    }
}

/// A record's error for an issue deleted in Jira since the engine linked it.
fn issue_gone(kind: ObjectKind, source_id: &str, key: &str) -> Error {
    Error::data(
        kind,
        source_id,
        format!("issue {key} no longer exists in Jira"),
    )
}

/// What a caller waiting for a desk add hears.
enum DeskTurn {
    /// Its account's add is done, with this outcome.
    Done(Result<()>),
    /// It makes the next add, for the accounts waiting then (its own first).
    Lead,
}

/// A service desk and its project.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceDesk {
    pub id: String,
    pub project_id: String,
    pub project_key: String,
    pub project_name: String,
}

/// A customer that two or more source contacts share (same e-mail): one customer, several
/// organizations.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomerReuse {
    pub contact_source_id: String,
    pub email: String,
    pub account_id: String,
}

/// An image referenced by `<img src>` in a description or comment, with its bytes (the engine's
/// type, re-exported for callers of [`Jsm::provide_inline_image`]).
pub use deskshift_core::ports::InlineImage;

#[derive(Clone, Debug)]
struct FieldInfo {
    id: String,
    name: String,
    short: String,
    custom: bool,
}

#[derive(Clone, Debug)]
struct FieldOption {
    id: String,
    value: String,
    parent: Option<String>,
}

#[derive(Clone, Debug)]
struct Edge {
    id: String,
    to_id: String,
    to_name: String,
}

#[derive(Clone, Debug, Default)]
struct Workflow {
    /// status id -> transitions available from it
    edges: HashMap<String, Vec<Edge>>,
    /// status id -> (name, category key)
    statuses: HashMap<String, (String, String)>,
}

#[derive(Clone, Debug)]
struct IssueTypes {
    subtask: String,
    standalone: String,
}

/// Property support of the site's organizations: unknown, yes, no.
const PROPS_UNKNOWN: u8 = 0;
const PROPS_YES: u8 = 1;
const PROPS_NO: u8 = 2;

/// The Jira Service Management destination.
pub struct Jsm {
    client: JsmClient,
    desks: tokio::sync::OnceCell<Vec<ServiceDesk>>,
    request_types: tokio::sync::Mutex<HashMap<String, Vec<(String, String)>>>,
    fields: tokio::sync::Mutex<Option<Vec<FieldInfo>>>,
    /// Serialises custom-field, option and component creation so two loaders never create twice.
    schema_lock: tokio::sync::Mutex<()>,
    options: tokio::sync::Mutex<HashMap<String, (String, Vec<FieldOption>)>>,
    components: tokio::sync::Mutex<HashMap<String, HashMap<String, String>>>,
    issue_types: tokio::sync::Mutex<HashMap<String, IssueTypes>>,
    workflows: std::sync::Mutex<HashMap<String, Workflow>>,
    /// The status (by name) a new issue of (project, issue type) was read in: later issues of that
    /// type start their workflow walk there without a read (a wrong guess is read and corrected).
    start_status: std::sync::Mutex<HashMap<(String, String), String>>,
    desk_members: std::sync::Mutex<HashSet<(String, String)>>,
    /// Desk memberships waiting for the desk's next add (see [`Jsm::add_desk_customer`]).
    desk_queues: std::sync::Mutex<HashMap<String, DeskQueue>>,
    org_props: AtomicU8,
    reuses: std::sync::Mutex<Vec<CustomerReuse>>,
    images: std::sync::Mutex<HashMap<String, InlineImage>>,
    emails: std::sync::Mutex<HashMap<String, Option<String>>>,
}

fn s(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(t) if !t.is_empty() => Some(t.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn platform_of(ctx: &LoadContext) -> &str {
    if ctx.source_platform.is_empty() {
        "source"
    } else {
        &ctx.source_platform
    }
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

fn jql_quote(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `<issueKey>:<childId>` of comments and attachments.
fn split_child(kind: ObjectKind, dest_id: &str) -> Result<(String, String)> {
    match dest_id.rsplit_once(':') {
        Some((k, c)) if !k.is_empty() && !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()) => {
            Ok((k.to_string(), c.to_string()))
        }
        _ => Err(Error::Config(format!(
            "'{dest_id}' is not a Jira {kind} id; expected <issueKey>:<{kind}Id>"
        ))),
    }
}

fn project_of_key(key: &str) -> String {
    key.rsplit_once('-')
        .map(|(p, _)| p.to_string())
        .unwrap_or_else(|| key.to_string())
}

fn is_ambiguous(e: &Error) -> bool {
    matches!(
        e,
        Error::Transport {
            ambiguous: true,
            ..
        }
    )
}

/// A record-level error: 400 names the record and Jira's field errors.
fn record_error(kind: ObjectKind, source_id: &str, endpoint: &str, answer: &Answer) -> Error {
    match answer.status.as_u16() {
        400 | 413 | 422 => Error::data(
            kind,
            source_id,
            format!(
                "Jira refused it on {endpoint}: {}",
                describe_error_body(&answer.body)
            ),
        ),
        _ => api_error(endpoint, answer),
    }
}

fn mime_of(name: &str) -> &'static str {
    let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "txt" | "log" => "text/plain",
        "pdf" => "application/pdf",
        "csv" => "text/csv",
        "json" => "application/json",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

impl Jsm {
    pub fn new(config: JsmConfig) -> Result<Jsm> {
        Ok(Jsm {
            client: JsmClient::new(config)?,
            desks: tokio::sync::OnceCell::new(),
            request_types: tokio::sync::Mutex::new(HashMap::new()),
            fields: tokio::sync::Mutex::new(None),
            schema_lock: tokio::sync::Mutex::new(()),
            options: tokio::sync::Mutex::new(HashMap::new()),
            components: tokio::sync::Mutex::new(HashMap::new()),
            issue_types: tokio::sync::Mutex::new(HashMap::new()),
            workflows: std::sync::Mutex::new(HashMap::new()),
            start_status: std::sync::Mutex::new(HashMap::new()),
            desk_members: std::sync::Mutex::new(HashSet::new()),
            desk_queues: std::sync::Mutex::new(HashMap::new()),
            org_props: AtomicU8::new(PROPS_UNKNOWN),
            reuses: std::sync::Mutex::new(Vec::new()),
            images: std::sync::Mutex::new(HashMap::new()),
            emails: std::sync::Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &JsmConfig {
        self.client.config()
    }

    /// Contacts that became an existing customer because another contact (or a pre-existing
    /// customer) has the same e-mail.
    pub fn customer_reuses(&self) -> Vec<CustomerReuse> {
        self.reuses.lock().unwrap().clone()
    }

    /// Gives the bytes of an image a description or comment references by `src`; the next create or
    /// update that meets that `src` uploads it to the issue and renders it as ADF `media`.
    pub fn provide_inline_image(&self, src: &str, image: InlineImage) {
        self.images.lock().unwrap().insert(src.to_string(), image);
    }

    fn ambiguous_attempts(&self) -> u32 {
        self.config().retry.max_attempts.max(1)
    }

    async fn pause(&self, attempt: u32) {
        let retry = &self.config().retry;
        let ms = retry
            .base_delay_ms
            .saturating_mul(1 << attempt.min(10))
            .min(retry.max_delay_ms);
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }

    // ---------------------------------------------------------------------------------------
    // service desks, request types

    /// Every service desk of the site.
    pub async fn service_desks(&self) -> Result<&Vec<ServiceDesk>> {
        self.desks
            .get_or_try_init(|| async {
                let items = self
                    .client
                    .sd_list("GET /servicedesk", "/rest/servicedeskapi/servicedesk", &[])
                    .await?;
                Ok(items
                    .iter()
                    .filter_map(|d| {
                        Some(ServiceDesk {
                            id: s(d, "id")?,
                            project_id: s(d, "projectId").unwrap_or_default(),
                            project_key: s(d, "projectKey")?,
                            project_name: s(d, "projectName").unwrap_or_default(),
                        })
                    })
                    .collect())
            })
            .await
    }

    fn match_desk<'a>(desks: &'a [ServiceDesk], wanted: &str) -> Option<&'a ServiceDesk> {
        let w = wanted.trim();
        desks
            .iter()
            .find(|d| d.id == w)
            .or_else(|| desks.iter().find(|d| d.project_key.eq_ignore_ascii_case(w)))
            .or_else(|| {
                desks
                    .iter()
                    .find(|d| d.project_name.eq_ignore_ascii_case(w))
            })
    }

    fn desk_names(desks: &[ServiceDesk]) -> String {
        desks
            .iter()
            .map(|d| format!("{} ({})", d.project_name, d.project_key))
            .collect::<Vec<_>>()
            .join(", ")
    }

    async fn default_desk(&self) -> Result<ServiceDesk> {
        let desks = self.service_desks().await?;
        match self.config().service_desk.as_deref() {
            Some(w) => Self::match_desk(desks, w).cloned().ok_or_else(|| {
                Error::Config(format!(
                    "jsm service_desk '{w}' is not a service desk of the site; desks: {}",
                    Self::desk_names(desks)
                ))
            }),
            None => desks.first().cloned().ok_or_else(|| {
                Error::Config(
                    "the Jira site has no service desk: create a service project first".into(),
                )
            }),
        }
    }

    /// The desk for a department: the configured map, the engine's department map, a desk of that
    /// name, else the default desk.
    async fn desk_for(&self, department: Option<&str>, ctx: &LoadContext) -> Result<ServiceDesk> {
        let desks = self.service_desks().await?;
        if let Some(dep) = department.map(str::trim).filter(|d| !d.is_empty()) {
            if let Some(w) = self.config().department_desks.get(dep) {
                return Self::match_desk(desks, w).cloned().ok_or_else(|| {
                    Error::Config(format!(
                        "jsm department_desks maps '{dep}' to '{w}', which is not a service desk; desks: {}",
                        Self::desk_names(desks)
                    ))
                });
            }
            if let Some(d) = ctx
                .departments
                .get(dep)
                .and_then(|id| desks.iter().find(|d| &d.id == id))
                .or_else(|| Self::match_desk(desks, dep))
            {
                return Ok(d.clone());
            }
        }
        self.default_desk().await
    }

    /// Desks the migration writes to by configuration (default and mapped).
    async fn target_desks(&self) -> Result<Vec<ServiceDesk>> {
        let desks = self.service_desks().await?;
        let mut out = vec![self.default_desk().await?];
        for w in self.config().department_desks.values() {
            if let Some(d) = Self::match_desk(desks, w)
                && !out.contains(d)
            {
                out.push(d.clone());
            }
        }
        Ok(out)
    }

    async fn request_type_list(&self, desk: &ServiceDesk) -> Result<Vec<(String, String)>> {
        let mut cache = self.request_types.lock().await;
        if let Some(v) = cache.get(&desk.id) {
            return Ok(v.clone());
        }
        let items = self
            .client
            .sd_list(
                "GET /servicedesk/{id}/requesttype",
                &format!("/rest/servicedeskapi/servicedesk/{}/requesttype", desk.id),
                &[],
            )
            .await?;
        let list: Vec<(String, String)> = items
            .iter()
            .filter_map(|t| Some((s(t, "id")?, s(t, "name").unwrap_or_default())))
            .collect();
        cache.insert(desk.id.clone(), list.clone());
        Ok(list)
    }

    /// The configured request type, else the first "Get IT help"-like one, else the first.
    async fn request_type_for(
        &self,
        desk: &ServiceDesk,
        department: Option<&str>,
    ) -> Result<String> {
        let types = self.request_type_list(desk).await?;
        let wanted = department
            .and_then(|d| self.config().department_request_types.get(d))
            .or(self.config().request_type.as_ref());
        if let Some(w) = wanted {
            return types
                .iter()
                .find(|(id, name)| id == w || name.eq_ignore_ascii_case(w))
                .map(|(id, _)| id.clone())
                .ok_or_else(|| {
                    Error::Config(format!(
                        "request type '{w}' does not exist in service desk {} ({}); its types: {}",
                        desk.project_name,
                        desk.project_key,
                        types
                            .iter()
                            .map(|t| t.1.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                });
        }
        let lower = |n: &str| n.to_ascii_lowercase();
        types
            .iter()
            .find(|(_, n)| lower(n).contains("get it help"))
            .or_else(|| types.iter().find(|(_, n)| lower(n).contains("help")))
            .or_else(|| types.first())
            .map(|(id, _)| id.clone())
            .ok_or_else(|| {
                Error::Config(format!(
                    "service desk {} ({}) has no request types; create one or set jsm request_type",
                    desk.project_name, desk.project_key
                ))
            })
    }

    // ---------------------------------------------------------------------------------------
    // fields and options

    async fn field_list(&self, refresh: bool) -> Result<Vec<FieldInfo>> {
        let mut cache = self.fields.lock().await;
        if !refresh && let Some(f) = cache.as_ref() {
            return Ok(f.clone());
        }
        let v = self
            .client
            .get("GET /field", "/rest/api/3/field", &[])
            .await?;
        let list: Vec<FieldInfo> = v
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| {
                        let custom_key = f
                            .pointer("/schema/custom")
                            .and_then(Value::as_str)
                            .unwrap_or("");
                        Some(FieldInfo {
                            id: s(f, "id")?,
                            name: s(f, "name").unwrap_or_default(),
                            short: short_type(custom_key).to_string(),
                            custom: f.get("custom").and_then(Value::as_bool).unwrap_or(false),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        *cache = Some(list.clone());
        Ok(list)
    }

    async fn custom_field_named(&self, name: &str, refresh: bool) -> Result<Option<FieldInfo>> {
        Ok(self
            .field_list(refresh)
            .await?
            .into_iter()
            .find(|f| f.custom && f.name.eq_ignore_ascii_case(name)))
    }

    /// Creates a custom field (or finds the one created meanwhile); caller holds `schema_lock`.
    async fn create_field(&self, name: &str, short: &str, searcher: &str) -> Result<FieldInfo> {
        if let Some(f) = self.custom_field_named(name, true).await? {
            return Ok(f);
        }
        let body = Payload::Json(json!({
            "name": name,
            "type": format!("{CF_PREFIX}{short}"),
            "searcherKey": format!("{CF_PREFIX}{searcher}"),
            "description": "Created by deskshift for a migration.",
        }));
        for attempt in 1..=self.ambiguous_attempts() {
            if attempt > 1 {
                self.pause(attempt).await;
            }
            match self
                .client
                .call(
                    Method::POST,
                    "POST /field",
                    "/rest/api/3/field",
                    &[],
                    &body,
                    false,
                )
                .await
            {
                Ok(a) if a.status.is_success() => {
                    let v = self.client.json("POST /field", &a)?;
                    self.field_list(true).await?;
                    return Ok(FieldInfo {
                        id: s(&v, "id").ok_or_else(|| Error::Api {
                            platform: PLATFORM.into(),
                            endpoint: "POST /field".into(),
                            status: a.status.as_u16(),
                            message: "the created field came back without an id".into(),
                        })?,
                        name: name.to_string(),
                        short: short.to_string(),
                        custom: true,
                    });
                }
                Ok(a) => {
                    return Err(Error::Config(format!(
                        "Jira refused to create the custom field '{name}' ({short}): {}; the API user must be a Jira administrator",
                        describe_error_body(&a.body)
                    )));
                }
                Err(e) if is_ambiguous(&e) && attempt < self.ambiguous_attempts() => {
                    if let Some(f) = self.custom_field_named(name, true).await? {
                        return Ok(f);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("the last attempt always returns")
    }

    /// The field's first context (created when it has none) and its options, cached.
    async fn load_options(
        &self,
        cache: &mut HashMap<String, (String, Vec<FieldOption>)>,
        field_id: &str,
        refresh: bool,
    ) -> Result<()> {
        if !refresh && cache.contains_key(field_id) {
            return Ok(());
        }
        let contexts = self
            .client
            .platform_list(
                "GET /field/{fieldId}/context",
                &format!("/rest/api/3/field/{field_id}/context"),
                &[],
                "values",
            )
            .await?;
        let ctx_id = match contexts.iter().find_map(|c| s(c, "id")) {
            Some(id) => id,
            None => {
                let a = self
                    .client
                    .call(
                        Method::POST,
                        "POST /field/{fieldId}/context",
                        &format!("/rest/api/3/field/{field_id}/context"),
                        &[],
                        &Payload::Json(
                            json!({"name": "deskshift", "projectIds": [], "issueTypeIds": []}),
                        ),
                        true,
                    )
                    .await?;
                let v = self.client.json("POST /field/{fieldId}/context", &a)?;
                s(&v, "id").ok_or_else(|| {
                    Error::Config(format!(
                        "Jira created no context for field {field_id}; add one in the field's settings"
                    ))
                })?
            }
        };
        let options = self
            .client
            .platform_list(
                "GET /field/{fieldId}/context/{contextId}/option",
                &format!("/rest/api/3/field/{field_id}/context/{ctx_id}/option"),
                &[],
                "values",
            )
            .await?
            .iter()
            .filter_map(|o| {
                Some(FieldOption {
                    id: s(o, "id")?,
                    value: s(o, "value")?,
                    parent: s(o, "optionId"),
                })
            })
            .collect();
        cache.insert(field_id.to_string(), (ctx_id, options));
        Ok(())
    }

    /// Makes sure `values` exist as options of the field (as children of `parent` for a cascading
    /// select); returns the field's top-level option values.
    async fn ensure_options(
        &self,
        field_id: &str,
        parent: Option<&str>,
        values: &[String],
    ) -> Result<Vec<String>> {
        let mut cache = self.options.lock().await;
        self.load_options(&mut cache, field_id, false).await?;
        let parent_id = match parent {
            Some(p) => {
                let top = |c: &HashMap<String, (String, Vec<FieldOption>)>| {
                    c[field_id]
                        .1
                        .iter()
                        .find(|o| o.parent.is_none() && o.value == p)
                        .map(|o| o.id.clone())
                };
                match top(&cache) {
                    Some(id) => Some(id),
                    None => {
                        self.add_options(&mut cache, field_id, None, &[p.to_string()])
                            .await?;
                        top(&cache)
                    }
                }
            }
            None => None,
        };
        let missing: Vec<String> = {
            let (_, opts) = &cache[field_id];
            let mut out: Vec<String> = Vec::new();
            for v in values.iter().map(|v| v.trim()).filter(|v| !v.is_empty()) {
                let known = opts
                    .iter()
                    .any(|o| o.value == v && (parent_id.is_none() || o.parent == parent_id))
                    || out.iter().any(|x| x == v);
                if !known {
                    out.push(v.to_string());
                }
            }
            out
        };
        if !missing.is_empty() {
            self.add_options(&mut cache, field_id, parent_id.as_deref(), &missing)
                .await?;
        }
        Ok(cache[field_id]
            .1
            .iter()
            .filter(|o| o.parent.is_none())
            .map(|o| o.value.clone())
            .collect())
    }

    async fn add_options(
        &self,
        cache: &mut HashMap<String, (String, Vec<FieldOption>)>,
        field_id: &str,
        parent_id: Option<&str>,
        values: &[String],
    ) -> Result<()> {
        let ctx_id = cache[field_id].0.clone();
        let endpoint = "POST /field/{fieldId}/context/{contextId}/option";
        let path = format!("/rest/api/3/field/{field_id}/context/{ctx_id}/option");
        for chunk in values.chunks(1000) {
            let options: Vec<Value> = chunk
                .iter()
                .map(|v| {
                    let mut o = json!({"value": v});
                    if let Some(p) = parent_id {
                        o["optionId"] = json!(p);
                    }
                    o
                })
                .collect();
            let a = self
                .client
                .call(
                    Method::POST,
                    endpoint,
                    &path,
                    &[],
                    &Payload::Json(json!({ "options": options })),
                    true,
                )
                .await?;
            if a.status.is_success() {
                let v = self.client.json(endpoint, &a)?;
                let created = v
                    .get("options")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let list = &mut cache.get_mut(field_id).expect("loaded").1;
                for o in created {
                    if let (Some(id), Some(value)) = (s(&o, "id"), s(&o, "value")) {
                        list.push(FieldOption {
                            id,
                            value,
                            parent: s(&o, "optionId").or(parent_id.map(str::to_string)),
                        });
                    }
                }
            } else if a.status.as_u16() == 400 {
                // Another writer added some of them (or a re-send landed twice): read the truth.
                self.load_options(cache, field_id, true).await?;
                let known = &cache[field_id].1;
                if let Some(v) = chunk.iter().find(|v| !known.iter().any(|o| &o.value == *v)) {
                    return Err(Error::Config(format!(
                        "Jira refused the option '{v}' of field {field_id}: {}",
                        describe_error_body(&a.body)
                    )));
                }
            } else {
                return Err(api_error(endpoint, &a));
            }
        }
        Ok(())
    }

    /// The text field holding `<platform>:<source id>`; created on first need unless `create` is false.
    async fn legacy_field(&self, create: bool) -> Result<Option<FieldInfo>> {
        let name = self.config().legacy_id_field.clone();
        if let Some(f) = self.custom_field_named(&name, false).await? {
            return Ok(Some(f));
        }
        if !create {
            return self.custom_field_named(&name, true).await;
        }
        let _g = self.schema_lock.lock().await;
        self.create_field(&name, "textfield", "exacttextsearcher")
            .await
            .map(Some)
    }

    async fn category_field(&self) -> Result<FieldInfo> {
        let name = self.config().category_field.clone();
        if let Some(f) = self.custom_field_named(&name, false).await? {
            if f.short != "cascadingselect" {
                return Err(Error::Config(format!(
                    "the Jira field {name:?} ({}) is a {} field, not a cascading select: set destination.category_field to another name, or category_mode = \"labels\"",
                    f.id, f.short
                )));
            }
            return Ok(f);
        }
        let _g = self.schema_lock.lock().await;
        self.create_field(&name, "cascadingselect", "cascadingselectsearcher")
            .await
    }

    // ---------------------------------------------------------------------------------------
    // components, issue types, users

    async fn component_id(&self, project: &str, name: &str) -> Result<String> {
        let name = truncate(name.trim(), 255);
        let mut cache = self.components.lock().await;
        let endpoint = "GET /project/{key}/components";
        let path = format!("/rest/api/3/project/{project}/components");
        let load = |v: Value| -> HashMap<String, String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|c| Some((s(c, "name")?.to_lowercase(), s(c, "id")?)))
                        .collect()
                })
                .unwrap_or_default()
        };
        if !cache.contains_key(project) {
            let v = self.client.get(endpoint, &path, &[]).await?;
            cache.insert(project.to_string(), load(v));
        }
        if let Some(id) = cache[project].get(&name.to_lowercase()) {
            return Ok(id.clone());
        }
        let body = Payload::Json(
            json!({"name": name, "project": project, "description": "Product migrated by deskshift."}),
        );
        let res = self
            .client
            .call(
                Method::POST,
                "POST /component",
                "/rest/api/3/component",
                &[],
                &body,
                false,
            )
            .await;
        match res {
            Ok(a) if a.status.is_success() => {
                let v = self.client.json("POST /component", &a)?;
                let id = s(&v, "id").unwrap_or_default();
                cache
                    .get_mut(project)
                    .expect("loaded")
                    .insert(name.to_lowercase(), id.clone());
                Ok(id)
            }
            other => {
                // A duplicate (someone else created it) or a lost answer: read the list again.
                let v = self.client.get(endpoint, &path, &[]).await?;
                cache.insert(project.to_string(), load(v));
                if let Some(id) = cache[project].get(&name.to_lowercase()) {
                    return Ok(id.clone());
                }
                match other {
                    Ok(a) => Err(Error::Config(format!(
                        "Jira refused to create the component '{name}' in project {project}: {}",
                        describe_error_body(&a.body)
                    ))),
                    Err(e) => Err(e),
                }
            }
        }
    }

    async fn issue_types(&self, project: &str) -> Result<IssueTypes> {
        let mut cache = self.issue_types.lock().await;
        if let Some(t) = cache.get(project) {
            return Ok(t.clone());
        }
        let v = self
            .client
            .get(
                "GET /project/{key}",
                &format!("/rest/api/3/project/{project}"),
                &[],
            )
            .await?;
        let types = v
            .get("issueTypes")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let sub = |t: &Value| t.get("subtask").and_then(Value::as_bool).unwrap_or(false);
        let subtask = types.iter().find(|t| sub(t)).and_then(|t| s(t, "id"));
        let standalone = types
            .iter()
            .find(|t| !sub(t) && s(t, "name").is_some_and(|n| n.eq_ignore_ascii_case("Task")))
            .or_else(|| types.iter().find(|t| !sub(t)))
            .and_then(|t| s(t, "id"));
        let (Some(subtask), Some(standalone)) = (subtask, standalone) else {
            return Err(Error::Config(format!(
                "project {project} has no sub-task issue type (or no standard one); add them to its issue type scheme"
            )));
        };
        let t = IssueTypes {
            subtask,
            standalone,
        };
        cache.insert(project.to_string(), t.clone());
        Ok(t)
    }

    /// The account id of an e-mail (exact match among the search results).
    async fn account_by_email(&self, email: &str) -> Result<Option<String>> {
        let v = self
            .client
            .get(
                "GET /user/search",
                "/rest/api/3/user/search",
                &[
                    ("query", email.to_string()),
                    ("maxResults", "50".to_string()),
                ],
            )
            .await?;
        let users = v.as_array().cloned().unwrap_or_default();
        let exact = users
            .iter()
            .find(|u| s(u, "emailAddress").is_some_and(|e| e.eq_ignore_ascii_case(email)));
        // Privacy settings may hide the address: a single hit for the exact query is the one.
        let hit = exact.or_else(|| {
            (users.len() == 1 && users[0].get("emailAddress").is_none()).then(|| &users[0])
        });
        Ok(hit.and_then(|u| s(u, "accountId")))
    }

    async fn email_of(&self, account_id: &str) -> Result<Option<String>> {
        if let Some(e) = self.emails.lock().unwrap().get(account_id) {
            return Ok(e.clone());
        }
        let v = self
            .client
            .get_opt(
                "GET /user",
                "/rest/api/3/user",
                &[("accountId", account_id.to_string())],
            )
            .await?;
        let email = v.as_ref().and_then(|u| s(u, "emailAddress"));
        self.emails
            .lock()
            .unwrap()
            .insert(account_id.to_string(), email.clone());
        Ok(email)
    }

    /// Makes the account a customer of the desk. Adds to one desk are grouped: while one is in
    /// flight, the accounts that arrive wait and go together in the next (the endpoint takes up to
    /// [`DESK_ADD_BATCH`] ids), so concurrent contacts and tickets share calls; each caller still
    /// returns only once its own account was added.
    async fn add_desk_customer(&self, desk: &ServiceDesk, account_id: &str) -> Result<()> {
        let key = (desk.id.clone(), account_id.to_string());
        if self.desk_members.lock().unwrap().contains(&key) {
            return Ok(());
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (ticket, lead) = {
            let mut queues = self.desk_queues.lock().unwrap();
            let q = queues.entry(desk.id.clone()).or_default();
            q.tickets += 1;
            let ticket = q.tickets;
            q.waiting.push_back((ticket, account_id.to_string(), tx));
            (ticket, !std::mem::replace(&mut q.busy, true))
        };
        if !lead {
            match rx.await {
                Ok(DeskTurn::Done(r)) => return r,
                // The caller before handed over (or went away): this one adds the next group.
                Ok(DeskTurn::Lead) | Err(_) => {}
            }
        }
        // Whatever happens to this call from here (also if it is dropped), the next group's
        // caller is woken.
        let _hand_over = HandOver {
            jsm: self,
            desk: &desk.id,
        };
        let others: Vec<(String, tokio::sync::oneshot::Sender<DeskTurn>)> = {
            let mut queues = self.desk_queues.lock().unwrap();
            let q = queues.entry(desk.id.clone()).or_default();
            q.waiting.retain(|(t, _, _)| *t != ticket);
            let n = q.waiting.len().min(DESK_ADD_BATCH - 1);
            q.waiting.drain(..n).map(|(_, a, tx)| (a, tx)).collect()
        };
        let mut ids = vec![account_id.to_string()];
        ids.extend(others.iter().map(|(a, _)| a.clone()));
        let mut results = self.post_desk_customers(desk, &ids).await.into_iter();
        let mine = results.next().unwrap_or(Ok(()));
        if mine.is_ok() {
            self.desk_members.lock().unwrap().insert(key);
        }
        for ((account, tx), result) in others.into_iter().zip(results) {
            if result.is_ok() {
                self.desk_members
                    .lock()
                    .unwrap()
                    .insert((desk.id.clone(), account));
            }
            let _ = tx.send(DeskTurn::Done(result));
        }
        mine
    }

    /// Wakes the first caller waiting to add to `desk` to make the next add, or marks the desk
    /// idle when none waits.
    fn hand_over_desk(&self, desk: &str) {
        let mut queues = self.desk_queues.lock().unwrap();
        let Some(q) = queues.get_mut(desk) else {
            return;
        };
        // The new leader's group starts with its own account; a caller that went away is skipped.
        while let Some((_, _, tx)) = q.waiting.pop_front() {
            if tx.send(DeskTurn::Lead).is_ok() {
                return;
            }
        }
        q.busy = false;
    }

    /// One add of up to [`DESK_ADD_BATCH`] accounts to a desk, and each account's outcome. A
    /// refused group is retried one account at a time, so one bad account fails only itself.
    async fn post_desk_customers(&self, desk: &ServiceDesk, ids: &[String]) -> Vec<Result<()>> {
        let endpoint = "POST /servicedesk/{id}/customer";
        let path = format!("/rest/servicedeskapi/servicedesk/{}/customer", desk.id);
        let add = |ids: Vec<String>| {
            let path = path.clone();
            async move {
                let a = self
                    .client
                    .call(
                        Method::POST,
                        endpoint,
                        &path,
                        &[],
                        &Payload::Json(json!({ "accountIds": ids })),
                        true,
                    )
                    .await?;
                self.client.json(endpoint, &a).map(|_| ())
            }
        };
        match add(ids.to_vec()).await {
            Ok(()) => ids.iter().map(|_| Ok(())).collect(),
            // Throttled, out of budget or unreachable: every account of the group waits alike.
            Err(e) if ids.len() == 1 || e.is_transient() => {
                let mut out: Vec<Result<()>> =
                    ids[1..].iter().map(|_| Err(e.copy_for_another())).collect();
                out.insert(0, Err(e));
                out
            }
            Err(_) => {
                let mut out = Vec::with_capacity(ids.len());
                for id in ids {
                    out.push(add(vec![id.clone()]).await);
                }
                out
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // organizations and customers

    async fn create_organization(&self, a: &Account, ctx: &LoadContext) -> Result<String> {
        let name = a.name.trim();
        if name.is_empty() {
            return Err(Error::data(
                ObjectKind::Account,
                &a.source_id,
                "JSM requires an organization name",
            ));
        }
        if name.chars().count() > MAX_ORG_NAME {
            return Err(Error::data(
                ObjectKind::Account,
                &a.source_id,
                format!(
                    "the name has {} characters; JSM organization names hold at most {MAX_ORG_NAME}",
                    name.chars().count()
                ),
            ));
        }
        let endpoint = "POST /organization";
        let body = Payload::Json(json!({ "name": name }));
        let mut id = None;
        for attempt in 1..=self.ambiguous_attempts() {
            if attempt > 1 {
                self.pause(attempt).await;
            }
            match self
                .client
                .call(
                    Method::POST,
                    endpoint,
                    "/rest/servicedeskapi/organization",
                    &[],
                    &body,
                    false,
                )
                .await
            {
                Ok(ans) if ans.status.is_success() => {
                    let v = self.client.json(endpoint, &ans)?;
                    id = s(&v, "id");
                    break;
                }
                Ok(ans) if ans.status.as_u16() == 400 || ans.status.as_u16() == 409 => {
                    let message = describe_error_body(&ans.body);
                    if message.to_lowercase().contains("already exists")
                        || ans.status.as_u16() == 409
                    {
                        // Possibly another company: never adopt it, let the engine rename and flag.
                        return Err(Error::Duplicate {
                            kind: ObjectKind::Account,
                            source_id: a.source_id.clone(),
                            field: "name".into(),
                            message,
                        });
                    }
                    return Err(record_error(
                        ObjectKind::Account,
                        &a.source_id,
                        endpoint,
                        &ans,
                    ));
                }
                Ok(ans) => {
                    return Err(record_error(
                        ObjectKind::Account,
                        &a.source_id,
                        endpoint,
                        &ans,
                    ));
                }
                Err(e) if is_ambiguous(&e) && attempt < self.ambiguous_attempts() => {
                    if let Some(found) = self.find_organization(a, ctx).await? {
                        id = Some(found);
                        break;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let id = id.ok_or_else(|| Error::Api {
            platform: PLATFORM.into(),
            endpoint: endpoint.into(),
            status: 201,
            message: "the created organization came back without an id".into(),
        })?;
        self.finish_organization(&id, a, ctx).await?;
        Ok(id)
    }

    /// Links the organization to the target desks and stores the source record in its property.
    async fn finish_organization(&self, id: &str, a: &Account, ctx: &LoadContext) -> Result<()> {
        for desk in self.target_desks().await? {
            let endpoint = "POST /servicedesk/{id}/organization";
            let ans = self
                .client
                .call(
                    Method::POST,
                    endpoint,
                    &format!("/rest/servicedeskapi/servicedesk/{}/organization", desk.id),
                    &[],
                    &Payload::Json(json!({"organizationId": id.parse::<u64>().map(|n| json!(n)).unwrap_or(json!(id))})),
                    true,
                )
                .await?;
            self.client.json(endpoint, &ans)?;
        }
        let mut custom = Map::new();
        for (k, v) in &a.custom {
            custom.insert(k.clone(), json!(v.as_text()));
        }
        let value = json!({
            "platform": platform_of(ctx),
            "sourceId": a.source_id,
            "phone": a.phone, "email": a.email, "website": a.website,
            "street": a.street, "city": a.city, "state": a.state, "zip": a.zip, "country": a.country,
            "description": a.description,
            "custom": custom,
        });
        self.put_org_property(id, &value).await
    }

    async fn put_org_property(&self, id: &str, value: &Value) -> Result<()> {
        if self.org_props.load(Ordering::Relaxed) == PROPS_NO {
            return Ok(());
        }
        let endpoint = "PUT /organization/{id}/property/{key}";
        let a = self
            .client
            .call(
                Method::PUT,
                endpoint,
                &format!("/rest/servicedeskapi/organization/{id}/property/{ORG_PROPERTY}"),
                &[],
                &Payload::Json(value.clone()),
                true,
            )
            .await?;
        match a.status.as_u16() {
            200..=299 => {
                self.org_props.store(PROPS_YES, Ordering::Relaxed);
                Ok(())
            }
            404 | 405 => {
                // The site has no organization properties: the account's details stay in the stage.
                if self.org_props.swap(PROPS_NO, Ordering::Relaxed) != PROPS_NO {
                    tracing::warn!(
                        "this JSM site has no organization properties; account details other than the name are not written"
                    );
                }
                Ok(())
            }
            _ => Err(api_error(endpoint, &a)),
        }
    }

    async fn org_property(&self, id: &str) -> Result<Option<Value>> {
        if self.org_props.load(Ordering::Relaxed) == PROPS_NO {
            return Ok(None);
        }
        let v = self
            .client
            .get_opt(
                "GET /organization/{id}/property/{key}",
                &format!("/rest/servicedeskapi/organization/{id}/property/{ORG_PROPERTY}"),
                &[],
            )
            .await?;
        Ok(v.map(|v| v.get("value").cloned().unwrap_or(v)))
    }

    /// An organization with this account's name that this migration created (by property where the
    /// site keeps them; by name alone otherwise).
    async fn find_organization(&self, a: &Account, ctx: &LoadContext) -> Result<Option<String>> {
        let orgs = self
            .client
            .sd_list(
                "GET /organization",
                "/rest/servicedeskapi/organization",
                &[],
            )
            .await?;
        let candidates: Vec<String> = orgs
            .iter()
            .filter(|o| s(o, "name").is_some_and(|n| n.trim().eq_ignore_ascii_case(a.name.trim())))
            .filter_map(|o| s(o, "id"))
            .collect();
        for id in candidates {
            match self.org_property(&id).await? {
                Some(p)
                    if s(&p, "sourceId").as_deref() == Some(a.source_id.as_str())
                        && s(&p, "platform").as_deref() == Some(platform_of(ctx)) =>
                {
                    return Ok(Some(id));
                }
                Some(_) => {}
                None if self.org_props.load(Ordering::Relaxed) != PROPS_YES => return Ok(Some(id)),
                None => {}
            }
        }
        Ok(None)
    }

    /// The customer's account id, and the reuse when the e-mail already had a customer.
    async fn create_customer(
        &self,
        c: &Contact,
        ctx: &LoadContext,
    ) -> Result<(String, Option<CustomerReuse>)> {
        let sid = &c.source_id;
        let mut reused = None;
        let email = c
            .email
            .as_deref()
            .map(str::trim)
            .filter(|e| e.contains('@'))
            .ok_or_else(|| {
                Error::data(
                    ObjectKind::Contact,
                    sid,
                    "JSM customers are identified by e-mail and this contact has none; add one in the source or leave the contact out",
                )
            })?;
        let display = [c.first_name.as_deref().unwrap_or(""), c.last_name.as_str()]
            .iter()
            .map(|p| p.trim())
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let display = if display.is_empty() {
            email.to_string()
        } else {
            display
        };
        let endpoint = "POST /customer";
        // A re-sent create answers 409 and the lookup below finds the customer: safe to retry.
        let a = self
            .client
            .call(
                Method::POST,
                endpoint,
                "/rest/servicedeskapi/customer",
                &[("strictConflictStatusCode", "true".to_string())],
                &Payload::Json(json!({"email": email, "displayName": display})),
                true,
            )
            .await?;
        let account = match a.status.as_u16() {
            200..=299 => {
                let v = self.client.json(endpoint, &a)?;
                s(&v, "accountId").ok_or_else(|| Error::Api {
                    platform: PLATFORM.into(),
                    endpoint: endpoint.into(),
                    status: a.status.as_u16(),
                    message: "the created customer came back without an accountId".into(),
                })?
            }
            409 => {
                let id = self.account_by_email(email).await?.ok_or_else(|| {
                    Error::data(
                        ObjectKind::Contact,
                        sid,
                        format!("JSM says an account with this e-mail exists but user search cannot find it ({}); check the site's user privacy settings", describe_error_body(&a.body)),
                    )
                })?;
                tracing::info!(contact = %sid, "e-mail already has a customer account: reused");
                let reuse = CustomerReuse {
                    contact_source_id: sid.clone(),
                    email: email.to_string(),
                    account_id: id.clone(),
                };
                self.reuses.lock().unwrap().push(reuse.clone());
                reused = Some(reuse);
                id
            }
            _ => return Err(record_error(ObjectKind::Contact, sid, endpoint, &a)),
        };
        self.finish_customer(&account, c, ctx).await?;
        Ok((account, reused))
    }

    /// Adds the customer to the default desk and to its organization.
    async fn finish_customer(&self, account: &str, c: &Contact, ctx: &LoadContext) -> Result<()> {
        self.add_desk_customer(&self.default_desk().await?, account)
            .await?;
        if let Some(acc) = &c.account {
            let org = ctx.resolved.get(ObjectKind::Account, acc).ok_or_else(|| {
                Error::data(
                    ObjectKind::Contact,
                    &c.source_id,
                    format!("its account {acc} has no JSM organization yet; load accounts first"),
                )
            })?;
            let endpoint = "POST /organization/{id}/user";
            let a = self
                .client
                .call(
                    Method::POST,
                    endpoint,
                    &format!("/rest/servicedeskapi/organization/{org}/user"),
                    &[],
                    &Payload::Json(json!({"accountIds": [account]})),
                    true,
                )
                .await?;
            if a.status.as_u16() == 404 {
                return Err(Error::data(
                    ObjectKind::Contact,
                    &c.source_id,
                    format!("its organization {org} no longer exists in JSM"),
                ));
            }
            self.client.json(endpoint, &a)?;
        }
        Ok(())
    }

    // ---------------------------------------------------------------------------------------
    // tickets

    fn ticket_description(
        &self,
        t: &Ticket,
        ctx: &LoadContext,
        media: &HashMap<String, MediaRef>,
    ) -> Value {
        let platform = platform_of(ctx);
        let mut line = format!(
            "Created by {} on {} (migrated from {platform})",
            t.created_by
                .as_ref()
                .map(|p| p.display())
                .unwrap_or_else(|| "unknown".into()),
            t.created_at
                .as_deref()
                .map(readable_utc)
                .unwrap_or_else(|| "unknown time".into()),
        );
        if t.contact.is_none() {
            line.push_str("; no requester in the source: raised by the migration account");
        }
        if t.subject.chars().count() > MAX_SUMMARY {
            line.push_str(&format!("; full subject: {}", t.subject));
        }
        let lead = vec![adf::provenance_paragraph(
            &marker(platform, "ticket", &t.source_id),
            &line,
        )];
        adf::html_to_doc(lead, t.description_html.as_deref().unwrap_or(""), &|src| {
            media.get(src).cloned()
        })
    }

    /// A one-line summary (Jira refuses line breaks there) of at most 255 characters.
    fn summary_of(subject: &str) -> String {
        let one_line: String = subject
            .trim()
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if one_line.trim().is_empty() {
            "(no subject)".to_string()
        } else {
            truncate(&one_line, MAX_SUMMARY)
        }
    }

    async fn create_ticket(&self, t: &Ticket, ctx: &LoadContext) -> Result<String> {
        let sid = &t.source_id;
        let desk = self.desk_for(t.department.as_deref(), ctx).await?;
        let rt = self
            .request_type_for(&desk, t.department.as_deref())
            .await?;
        let mut body = json!({
            "serviceDeskId": desk.id,
            "requestTypeId": rt,
            "isAdfRequest": true,
            "requestFieldValues": {
                "summary": Self::summary_of(&t.subject),
                "description": self.ticket_description(t, ctx, &HashMap::new()),
            },
        });
        if let Some(c) = &t.contact {
            let account = ctx.resolved.get(ObjectKind::Contact, c).ok_or_else(|| {
                Error::data(
                    ObjectKind::Ticket,
                    sid,
                    format!("its contact {c} has no JSM customer yet; load contacts first"),
                )
            })?;
            self.add_desk_customer(&desk, account).await?;
            body["raiseOnBehalfOf"] = json!(account);
        }
        let endpoint = "POST /request";
        let payload = Payload::Json(body);
        let mut key = None;
        // The status the create answer reports: the workflow walk starts there without a read.
        let mut created_at: Option<String> = None;
        for attempt in 1..=self.ambiguous_attempts() {
            if attempt > 1 {
                self.pause(attempt).await;
            }
            match self
                .client
                .call(
                    Method::POST,
                    endpoint,
                    "/rest/servicedeskapi/request",
                    &[],
                    &payload,
                    false,
                )
                .await
            {
                Ok(a) if a.status.is_success() => {
                    let v = self.client.json(endpoint, &a)?;
                    key = s(&v, "issueKey");
                    created_at = v
                        .pointer("/currentStatus/status")
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    break;
                }
                Ok(a) => return Err(record_error(ObjectKind::Ticket, sid, endpoint, &a)),
                Err(e) if is_ambiguous(&e) && attempt < self.ambiguous_attempts() => {
                    if let Some(found) = self
                        .find_issue(&desk.project_key, platform_of(ctx), "ticket", sid)
                        .await?
                    {
                        key = Some(found.key);
                        break;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let key = key.ok_or_else(|| Error::Api {
            platform: PLATFORM.into(),
            endpoint: endpoint.into(),
            status: 201,
            message: "the created request came back without an issueKey".into(),
        })?;
        if let Err(e) = self
            .apply_ticket(&key, t, ctx, false, created_at.as_deref())
            .await
        {
            // A failed record leaves nothing behind when JSM lets the half-written request go;
            // otherwise a later run finds it by its marker and finishes it.
            match self.delete(ObjectKind::Ticket, &key).await {
                Ok(()) => {
                    tracing::info!(ticket = %sid, issue = %key, "request removed after its fields could not be written")
                }
                Err(d) => {
                    tracing::warn!(ticket = %sid, issue = %key, error = %d, "half-written request could not be removed")
                }
            }
            return Err(e);
        }
        Ok(key)
    }

    /// Labels from tags, channel and (in labels mode) category.
    fn ticket_labels(&self, t: &Ticket) -> Vec<String> {
        let mut labels: Vec<String> = t.tags.iter().filter_map(|x| label(x)).collect();
        if let Some(c) = t
            .channel
            .as_deref()
            .and_then(|c| label(&format!("channel:{c}")))
        {
            labels.push(c);
        }
        if self.config().category_mode == CategoryMode::Labels {
            labels.extend(
                t.category
                    .as_deref()
                    .and_then(|c| label(&format!("category:{c}"))),
            );
            labels.extend(
                t.sub_category
                    .as_deref()
                    .and_then(|c| label(&format!("subcategory:{c}"))),
            );
        }
        let mut seen = HashSet::new();
        labels.retain(|l| seen.insert(l.clone()));
        labels
    }

    /// Custom field values by field id, with select options created as values need them.
    async fn custom_body(
        &self,
        kind: ObjectKind,
        source_id: &str,
        custom: &CustomValues,
        ctx: &LoadContext,
        fields: &mut Map<String, Value>,
    ) -> Result<()> {
        for (label_, value) in custom {
            let field = ctx
                .custom_fields
                .get(label_)
                .or_else(|| {
                    ctx.custom_fields
                        .values()
                        .find(|f| f.label.eq_ignore_ascii_case(label_))
                })
                .ok_or_else(|| {
                    Error::data(
                        kind,
                        source_id,
                        format!(
                            "custom field '{label_}' has no Jira field; run the schema phase first"
                        ),
                    )
                })?;
            let mut options = field.options.clone();
            let needed = option_values(&field.field_type, &options, value);
            if !needed.is_empty() {
                options = self.ensure_options(&field.id, None, &needed).await?;
            }
            let v = custom_value_for(&field.field_type, &options, value).map_err(|m| {
                Error::data(
                    kind,
                    source_id,
                    format!("custom field '{label_}' ({}): {m}", field.field_type),
                )
            })?;
            fields.insert(field.api_name.clone(), v.unwrap_or(Value::Null));
        }
        Ok(())
    }

    async fn ticket_fields(
        &self,
        key: &str,
        t: &Ticket,
        ctx: &LoadContext,
        full: bool,
    ) -> Result<Map<String, Value>> {
        let sid = &t.source_id;
        let mut f = Map::new();
        if full {
            f.insert("summary".into(), json!(Self::summary_of(&t.subject)));
        }
        f.insert("labels".into(), json!(self.ticket_labels(t)));
        let project = project_of_key(key);
        let mut comps = Vec::new();
        if let Some(p) = t
            .product
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            comps.push(json!({"id": self.component_id(&project, p).await?}));
        }
        f.insert("components".into(), Value::Array(comps));
        if let Some(p) = t.priority.as_deref().filter(|p| !p.is_empty()) {
            f.insert("priority".into(), json!({ "name": p }));
        }
        f.insert(
            "duedate".into(),
            match t.due_date.as_deref().filter(|d| !d.trim().is_empty()) {
                Some(d) => json!(jira_date(d).ok_or_else(|| Error::data(
                    ObjectKind::Ticket,
                    sid,
                    format!("due date '{d}' is not a date")
                ))?),
                None => Value::Null,
            },
        );
        let assignee = t
            .assignee
            .as_ref()
            .and_then(|p| p.email.as_deref())
            .and_then(|e| ctx.agents.get(&e.to_lowercase()));
        f.insert(
            "assignee".into(),
            assignee
                .map(|a| json!({"accountId": a}))
                .unwrap_or(Value::Null),
        );
        if self.config().category_mode == CategoryMode::Cascading
            && let Some(cat) = t
                .category
                .as_deref()
                .map(str::trim)
                .filter(|c| !c.is_empty())
        {
            let field = self.category_field().await?;
            self.ensure_options(&field.id, None, &[cat.to_string()])
                .await?;
            let mut v = json!({ "value": cat });
            if let Some(sub) = t
                .sub_category
                .as_deref()
                .map(str::trim)
                .filter(|c| !c.is_empty())
            {
                self.ensure_options(&field.id, Some(cat), &[sub.to_string()])
                    .await?;
                v["child"] = json!({ "value": sub });
            }
            f.insert(field.id, v);
        }
        self.custom_body(ObjectKind::Ticket, sid, &t.custom, ctx, &mut f)
            .await?;
        let legacy = self.legacy_field(true).await?.expect("created on demand");
        f.insert(
            legacy.id,
            json!(legacy_value(platform_of(ctx), "ticket", sid)),
        );
        Ok(f)
    }

    async fn put_issue(
        &self,
        kind: ObjectKind,
        source_id: &str,
        key: &str,
        fields: Map<String, Value>,
    ) -> Result<()> {
        let endpoint = "PUT /issue/{key}";
        let a = self
            .client
            .issue_write(
                key,
                Method::PUT,
                endpoint,
                &format!("/rest/api/3/issue/{key}"),
                &[("notifyUsers", "false".to_string())],
                &Payload::Json(json!({ "fields": fields })),
                true,
            )
            .await?;
        match a.status.as_u16() {
            200..=299 => Ok(()),
            404 => Err(issue_gone(kind, source_id, key)),
            _ => Err(record_error(kind, source_id, endpoint, &a)),
        }
    }

    /// Everything after the request exists: fields, inline images, status, links.
    /// `at`: the status the issue is known to be in (by name), when the caller has it.
    async fn apply_ticket(
        &self,
        key: &str,
        t: &Ticket,
        ctx: &LoadContext,
        update: bool,
        at: Option<&str>,
    ) -> Result<()> {
        let sid = &t.source_id;
        let mut fields = self.ticket_fields(key, t, ctx, update).await?;
        let html = t.description_html.as_deref().unwrap_or("");
        // A request this call created (the create answer gave its status) holds no files yet.
        let fresh = !update && at.is_some();
        let media = self.resolve_images(key, html, ctx, fresh).await?;
        if update || !media.is_empty() {
            fields.insert(
                "description".into(),
                self.ticket_description(t, ctx, &media),
            );
        }
        self.put_issue(ObjectKind::Ticket, sid, key, fields).await?;
        if let Some(status) = t.status.as_deref().filter(|s| !s.trim().is_empty()) {
            self.walk_to(ObjectKind::Ticket, sid, key, status, at)
                .await?;
        }
        Ok(())
    }

    /// `key` relates to `other_key` (the configured link type).
    async fn add_link(&self, key: &str, ticket: &str, other_key: &str) -> Result<()> {
        let endpoint = "POST /issueLink";
        let a = self
            .client
            .call(
                Method::POST,
                endpoint,
                "/rest/api/3/issueLink",
                &[],
                &Payload::Json(json!({
                    "type": {"name": self.config().link_type},
                    "inwardIssue": {"key": other_key},
                    "outwardIssue": {"key": key},
                })),
                true,
            )
            .await?;
        if a.status.is_success() {
            return Ok(());
        }
        let detail = describe_error_body(&a.body);
        Err(match a.status.as_u16() {
            404 if detail.to_ascii_lowercase().contains("issue does not exist") => Error::data(
                ObjectKind::Ticket,
                ticket,
                format!(
                    "cannot link {key} -> {other_key}: {detail} (deleted since it was written?)"
                ),
            ),
            404 => Error::Config(format!(
                "Jira refused the issue link {key} -> {other_key}: {detail}; check that issue linking is on and that link_type '{}' exists",
                self.config().link_type
            )),
            _ => record_error(ObjectKind::Ticket, ticket, endpoint, &a),
        })
    }

    // ---------------------------------------------------------------------------------------
    // workflow

    /// The issue's status (id, name); the record's error when the issue is gone.
    async fn status_of(
        &self,
        kind: ObjectKind,
        source_id: &str,
        key: &str,
    ) -> Result<(String, String)> {
        let v = self
            .client
            .get_opt(
                "GET /issue/{key}",
                &format!("/rest/api/3/issue/{key}"),
                &[("fields", "status".to_string())],
            )
            .await?;
        v.and_then(|v| {
            let st = v.pointer("/fields/status")?;
            Some((s(st, "id")?, s(st, "name").unwrap_or_default()))
        })
        .ok_or_else(|| issue_gone(kind, source_id, key))
    }

    /// The one status of `project`'s learnt workflow named `name` (id, name); None when no status
    /// or several have that name.
    fn status_named(&self, project: &str, name: &str) -> Option<(String, String)> {
        let wf = self.workflows.lock().unwrap();
        let mut named = wf
            .get(project)?
            .statuses
            .iter()
            .filter(|(_, (n, _))| n.eq_ignore_ascii_case(name));
        let (id, (n, _)) = named.next()?;
        named.next().is_none().then(|| (id.clone(), n.clone()))
    }

    async fn learn_transitions(
        &self,
        project: &str,
        key: &str,
        status_id: &str,
        status_name: &str,
    ) -> Result<Vec<Edge>> {
        let v = self
            .client
            .get(
                "GET /issue/{key}/transitions",
                &format!("/rest/api/3/issue/{key}/transitions"),
                &[("includeUnavailableTransitions", "true".to_string())],
            )
            .await?;
        let mut edges = Vec::new();
        let mut wf = self.workflows.lock().unwrap();
        let w = wf.entry(project.to_string()).or_default();
        w.statuses
            .entry(status_id.to_string())
            .or_insert((status_name.to_string(), String::new()));
        for t in v
            .get("transitions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let (Some(id), Some(to)) = (s(&t, "id"), t.get("to")) else {
                continue;
            };
            let (Some(to_id), Some(to_name)) = (s(to, "id"), s(to, "name")) else {
                continue;
            };
            let cat = to
                .pointer("/statusCategory/key")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            w.statuses.insert(to_id.clone(), (to_name.clone(), cat));
            if t.get("isAvailable")
                .and_then(Value::as_bool)
                .unwrap_or(true)
            {
                edges.push(Edge { id, to_id, to_name });
            }
        }
        w.edges.insert(status_id.to_string(), edges.clone());
        Ok(edges)
    }

    /// The first transition of a shortest known path from `from` to a status named `target`.
    fn next_step(w: &Workflow, from: &str, target: &str) -> Option<Edge> {
        let mut seen: HashSet<String> = HashSet::from([from.to_string()]);
        let mut queue: VecDeque<(String, Option<Edge>)> =
            VecDeque::from([(from.to_string(), None)]);
        while let Some((at, first)) = queue.pop_front() {
            for e in w.edges.get(&at).into_iter().flatten() {
                let first = first.clone().unwrap_or_else(|| e.clone());
                if e.to_name.eq_ignore_ascii_case(target) || e.to_id == target {
                    return Some(first);
                }
                if seen.insert(e.to_id.clone()) {
                    queue.push_back((e.to_id.clone(), Some(first)));
                }
            }
        }
        None
    }

    /// Walks the workflow from the issue's status to `target` (by name or id): shortest path over
    /// the transitions learnt so far, exploring towards the target's status category otherwise.
    /// `at` is the status (by name) the caller knows the issue is in, e.g. from the create answer:
    /// no read is needed when it is the target or names one status of the learnt workflow.
    async fn walk_to(
        &self,
        kind: ObjectKind,
        source_id: &str,
        key: &str,
        target: &str,
        at: Option<&str>,
    ) -> Result<()> {
        let project = project_of_key(key);
        if at.is_some_and(|a| a.eq_ignore_ascii_case(target)) {
            return Ok(());
        }
        let known = at.and_then(|name| self.status_named(&project, name));
        // Whether the status was read off the issue in this walk (else it is the caller's word).
        let mut read = known.is_none();
        let (mut at_id, mut at_name) = match known {
            Some(k) => k,
            None => self.status_of(kind, source_id, key).await?,
        };
        let mut visited: HashSet<String> = HashSet::new();
        let mut refreshed: HashSet<String> = HashSet::new();
        for _ in 0..MAX_TRANSITION_STEPS {
            if at_name.eq_ignore_ascii_case(target) || at_id == target {
                return Ok(());
            }
            visited.insert(at_id.clone());
            let known = self
                .workflows
                .lock()
                .unwrap()
                .get(&project)
                .and_then(|w| w.edges.get(&at_id).cloned());
            let edges = match known {
                Some(e) => e,
                None => {
                    self.learn_transitions(&project, key, &at_id, &at_name)
                        .await?
                }
            };
            let step = {
                let wf = self.workflows.lock().unwrap();
                let w = wf.get(&project).cloned().unwrap_or_default();
                Self::next_step(&w, &at_id, target).or_else(|| {
                    let target_cat = w
                        .statuses
                        .values()
                        .find(|(n, _)| n.eq_ignore_ascii_case(target))
                        .map(|(_, c)| c.clone());
                    let cat = |e: &Edge| w.statuses.get(&e.to_id).map(|(_, c)| c.clone());
                    let fresh = |e: &&Edge| !visited.contains(&e.to_id);
                    edges
                        .iter()
                        .filter(fresh)
                        .find(|e| target_cat.is_some() && cat(e) == target_cat)
                        .or_else(|| {
                            edges
                                .iter()
                                .filter(fresh)
                                .find(|e| !w.edges.contains_key(&e.to_id))
                        })
                        .or_else(|| edges.iter().find(fresh))
                        .cloned()
                })
            };
            let Some(step) = step else { break };
            let endpoint = "POST /issue/{key}/transitions";
            let res = self
                .client
                .issue_write(
                    key,
                    Method::POST,
                    endpoint,
                    &format!("/rest/api/3/issue/{key}/transitions"),
                    &[],
                    &Payload::Json(json!({"transition": {"id": step.id}})),
                    false,
                )
                .await;
            match res {
                Ok(a) if a.status.is_success() => {
                    at_id = step.to_id.clone();
                    at_name = step.to_name.clone();
                }
                Ok(a) if a.status.as_u16() == 400 && !read => {
                    // The issue may not be where the caller said (an automation moved it): read
                    // it before learning anything from its transitions.
                    read = true;
                    let (id, name) = self.status_of(kind, source_id, key).await?;
                    if id == at_id && refreshed.insert(at_id.clone()) {
                        self.learn_transitions(&project, key, &at_id, &at_name)
                            .await?;
                    }
                    at_id = id;
                    at_name = name;
                }
                Ok(a) if a.status.as_u16() == 400 && refreshed.insert(at_id.clone()) => {
                    // The workflow may differ per issue type or have changed: learn again.
                    self.learn_transitions(&project, key, &at_id, &at_name)
                        .await?;
                }
                Ok(a) => return Err(record_error(kind, source_id, endpoint, &a)),
                Err(e) if is_ambiguous(&e) => {
                    let (id, name) = self.status_of(kind, source_id, key).await?;
                    at_id = id;
                    at_name = name;
                }
                Err(e) => return Err(e),
            }
        }
        let names: Vec<String> = self
            .workflows
            .lock()
            .unwrap()
            .get(&project)
            .map(|w| w.statuses.values().map(|(n, _)| n.clone()).collect())
            .unwrap_or_default();
        Err(Error::data(
            kind,
            source_id,
            format!(
                "status '{target}' cannot be reached from '{at_name}' in project {project}'s workflow (statuses seen: {}); map the status to one of them",
                names.join(", ")
            ),
        ))
    }

    // ---------------------------------------------------------------------------------------
    // lookups

    /// An issue of `project` carrying this source id: by the Legacy Ticket ID field, else by the
    /// provenance marker in the description (a request whose fields were not written yet).
    async fn find_issue(
        &self,
        project: &str,
        platform: &str,
        kind: &str,
        source_id: &str,
    ) -> Result<Option<FoundIssue>> {
        let legacy = self.legacy_field(false).await?;
        let want = legacy_value(platform, kind, source_id);
        if let Some(f) = &legacy {
            let num = f.id.trim_start_matches("customfield_");
            let jql = format!(
                "project = {} AND cf[{num}] ~ {}",
                jql_quote(project),
                jql_quote(&want)
            );
            for issue in self.search(&jql, &[f.id.as_str(), "status"]).await? {
                if issue
                    .pointer(&format!("/fields/{}", f.id))
                    .and_then(Value::as_str)
                    == Some(want.as_str())
                {
                    return Ok(Some(FoundIssue::from(&issue, true)));
                }
            }
        }
        let mark = marker(platform, kind, source_id);
        let jql = format!(
            "project = {} AND description ~ {}",
            jql_quote(project),
            jql_quote(mark.trim_start_matches('[').trim_end_matches(']'))
        );
        for issue in self.search(&jql, &["description", "status"]).await? {
            let text = issue
                .pointer("/fields/description")
                .map(adf::adf_text)
                .unwrap_or_default();
            if text.contains(&mark) {
                return Ok(Some(FoundIssue::from(&issue, false)));
            }
        }
        Ok(None)
    }

    /// Every issue a JQL query matches (token paging).
    async fn search(&self, jql: &str, fields: &[&str]) -> Result<Vec<Value>> {
        let endpoint = "POST /search/jql";
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut body = json!({"jql": jql, "fields": fields, "maxResults": 100});
            if let Some(t) = &token {
                body["nextPageToken"] = json!(t);
            }
            let a = self
                .client
                .call(
                    Method::POST,
                    endpoint,
                    "/rest/api/3/search/jql",
                    &[],
                    &Payload::Json(body),
                    true,
                )
                .await?;
            if a.status.as_u16() == 400 {
                // An unknown project or field in the query: nothing to find there.
                tracing::debug!(error = %describe_error_body(&a.body), "JQL refused");
                return Ok(out);
            }
            let v = self.client.json(endpoint, &a)?;
            out.extend(
                v.get("issues")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            );
            token = s(&v, "nextPageToken");
            if token.is_none() || v.get("isLast").and_then(Value::as_bool) == Some(true) {
                return Ok(out);
            }
        }
    }

    async fn find_comment(&self, key: &str, mark: &str) -> Result<Option<String>> {
        let items = self
            .client
            .platform_list(
                "GET /issue/{key}/comment",
                &format!("/rest/api/3/issue/{key}/comment"),
                &[],
                "comments",
            )
            .await;
        let items = match items {
            Ok(i) => i,
            Err(Error::Api { status: 404, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(items
            .iter()
            .find(|c| {
                c.get("body")
                    .is_some_and(|b| adf::adf_text(b).contains(mark))
            })
            .and_then(|c| s(c, "id"))
            .map(|id| format!("{key}:{id}")))
    }

    async fn issue_attachments(&self, key: &str) -> Result<Option<Vec<Value>>> {
        let v = self
            .client
            .get_opt(
                "GET /issue/{key}",
                &format!("/rest/api/3/issue/{key}"),
                &[("fields", "attachment".to_string())],
            )
            .await?;
        Ok(v.map(|v| {
            v.pointer("/fields/attachment")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        }))
    }

    // ---------------------------------------------------------------------------------------
    // attachments and inline images

    /// The issue's attachment with this file name and size.
    async fn attachment_file(&self, key: &str, name: &str, size: u64) -> Result<Option<Value>> {
        Ok(self
            .issue_attachments(key)
            .await?
            .unwrap_or_default()
            .into_iter()
            .find(|x| {
                s(x, "filename").as_deref() == Some(name)
                    && x.get("size").and_then(Value::as_u64) == Some(size)
            }))
    }

    /// The id of the issue's attachment with this file name and size.
    async fn attachment_named(&self, key: &str, name: &str, size: u64) -> Result<Option<String>> {
        Ok(self
            .attachment_file(key, name, size)
            .await?
            .and_then(|x| s(&x, "id")))
    }

    async fn upload(
        &self,
        kind: ObjectKind,
        source_id: &str,
        key: &str,
        name: &str,
        bytes: Bytes,
    ) -> Result<Value> {
        let endpoint = "POST /issue/{key}/attachments";
        let size = bytes.len() as u64;
        let payload = Payload::File {
            name: name.to_string(),
            mime: mime_of(name).to_string(),
            bytes,
        };
        for attempt in 1..=self.ambiguous_attempts() {
            if attempt > 1 {
                self.pause(attempt).await;
            }
            match self
                .client
                .issue_write(
                    key,
                    Method::POST,
                    endpoint,
                    &format!("/rest/api/3/issue/{key}/attachments"),
                    &[],
                    &payload,
                    false,
                )
                .await
            {
                Ok(a) if a.status.is_success() => {
                    let v = self.client.json(endpoint, &a)?;
                    return v
                        .as_array()
                        .and_then(|l| l.first().cloned())
                        .ok_or_else(|| Error::Api {
                            platform: PLATFORM.into(),
                            endpoint: endpoint.into(),
                            status: a.status.as_u16(),
                            message: "the answer listed no attachment".into(),
                        });
                }
                Ok(a) => {
                    return Err(match a.status.as_u16() {
                        404 => issue_gone(kind, source_id, key),
                        413 | 400 => Error::data(
                            kind,
                            source_id,
                            format!(
                                "Jira refused '{name}' ({size} bytes) on {key}: {}",
                                describe_error_body(&a.body)
                            ),
                        ),
                        _ => api_error(endpoint, &a),
                    });
                }
                Err(e) if is_ambiguous(&e) && attempt < self.ambiguous_attempts() => {
                    if let Some(f) = self.attachment_file(key, name, size).await? {
                        return Ok(f);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("the last attempt always returns")
    }

    /// The Media Services id of an attachment, from the content redirect's `.../file/{uuid}/binary`.
    pub async fn media_id(&self, attachment_id: &str) -> Result<String> {
        let endpoint = "GET /attachment/content/{id}";
        let a = self
            .client
            .call(
                Method::GET,
                endpoint,
                &format!("/rest/api/3/attachment/content/{attachment_id}"),
                &[],
                &Payload::None,
                true,
            )
            .await?;
        if !a.status.is_redirection() {
            return Err(if a.status.is_success() {
                Error::Api {
                    platform: PLATFORM.into(),
                    endpoint: endpoint.into(),
                    status: a.status.as_u16(),
                    message:
                        "the attachment content did not redirect to media; images stay attachments"
                            .into(),
                }
            } else {
                api_error(endpoint, &a)
            });
        }
        let location = a
            .headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let path = location.split(['?', '#']).next().unwrap_or("");
        let mut parts = path.rsplit('/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("binary"), Some(uuid), Some("file")) if !uuid.is_empty() => Ok(uuid.to_string()),
            _ => Err(Error::Api {
                platform: PLATFORM.into(),
                endpoint: endpoint.into(),
                status: a.status.as_u16(),
                message: "the redirect does not end in /file/{id}/binary".into(),
            }),
        }
    }

    /// Uploads one inline image to the issue (once: a file of the same derived name is reused,
    /// looked up unless the issue is `fresh`, i.e. just created by the caller) and returns what ADF
    /// `media` needs.
    pub async fn upload_inline_image(
        &self,
        key: &str,
        src: &str,
        image: &InlineImage,
        fresh: bool,
    ) -> Result<MediaRef> {
        let stored = inline_name(src, &image.file_name);
        let existing = if fresh {
            None
        } else {
            self.attachment_file(key, &stored, image.bytes.len() as u64)
                .await?
        };
        let att = match existing {
            Some(a) => a,
            None => {
                self.upload(
                    ObjectKind::Attachment,
                    src,
                    key,
                    &stored,
                    image.bytes.clone(),
                )
                .await?
            }
        };
        let attachment_id = s(&att, "id").unwrap_or_default();
        let media_id = self.media_id(&attachment_id).await?;
        Ok(MediaRef {
            attachment_id,
            media_id,
            file_name: stored,
        })
    }

    /// Uploads the images `html` references whose bytes the engine downloaded (`ctx.inline_images`)
    /// or a caller provided ([`Jsm::provide_inline_image`]); a failed image stays text (logged).
    /// `fresh`: the issue was created by this call, so it holds no file an earlier attempt left.
    /// Each image stored is noted in `ctx.stored_images`.
    async fn resolve_images(
        &self,
        key: &str,
        html: &str,
        ctx: &LoadContext,
        fresh: bool,
    ) -> Result<HashMap<String, MediaRef>> {
        let mut out = HashMap::new();
        if !html.contains("<img") && !html.contains("<IMG") {
            return Ok(out);
        }
        for src in adf::image_sources(html) {
            if out.contains_key(&src) {
                continue;
            }
            let image = match ctx.inline_images.get(&src) {
                Some(i) => Some(i.clone()),
                None => self.images.lock().unwrap().get(&src).cloned(),
            };
            let Some(image) = image else { continue };
            match self.upload_inline_image(key, &src, &image, fresh).await {
                Ok(m) => {
                    ctx.stored_images
                        .push(&src, format!("{key}:{}", m.attachment_id));
                    out.insert(src, m);
                }
                Err(e) if !e.is_transient() => {
                    tracing::warn!(issue = %key, error = %e, "inline image not uploaded: it stays a text placeholder");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    // ---------------------------------------------------------------------------------------
    // activities and tasks

    async fn comment_body(&self, key: &str, a: &Activity, ctx: &LoadContext) -> Result<Value> {
        let platform = platform_of(ctx);
        let mark = marker(platform, activity_tag(&a.kind), &a.source_id);
        let mut lead = vec![adf::provenance_paragraph(
            &mark,
            &activity_line(platform, &a.kind, &a.author, a.created_at.as_deref()),
        )];
        // Comments have no custom fields: their values ride under the provenance line.
        if !a.custom.is_empty() {
            let extra: Vec<String> = a
                .custom
                .iter()
                .map(|(k, v)| format!("{k}: {}", v.as_text()))
                .collect();
            lead.push(adf::text_paragraph(&extra.join("; ")));
        }
        let media = self.resolve_images(key, &a.body_html, ctx, false).await?;
        let doc = adf::html_to_doc(lead, &a.body_html, &|src| media.get(src).cloned());
        Ok(json!({
            "body": doc,
            "properties": [{"key": "sd.public.comment", "value": {"internal": !a.public}}],
        }))
    }

    async fn create_comment(&self, a: &Activity, ctx: &LoadContext) -> Result<String> {
        let key = ctx
            .resolved
            .get(ObjectKind::Ticket, &a.ticket)
            .ok_or_else(|| {
                Error::data(
                    ObjectKind::Activity,
                    &a.source_id,
                    format!(
                        "its ticket {} has no Jira issue yet; load tickets first",
                        a.ticket
                    ),
                )
            })?;
        let body = Payload::Json(self.comment_body(key, a, ctx).await?);
        let mark = marker(platform_of(ctx), activity_tag(&a.kind), &a.source_id);
        let endpoint = "POST /issue/{key}/comment";
        for attempt in 1..=self.ambiguous_attempts() {
            if attempt > 1 {
                self.pause(attempt).await;
            }
            match self
                .client
                .issue_write(
                    key,
                    Method::POST,
                    endpoint,
                    &format!("/rest/api/3/issue/{key}/comment"),
                    &[],
                    &body,
                    false,
                )
                .await
            {
                Ok(ans) if ans.status.is_success() => {
                    let v = self.client.json(endpoint, &ans)?;
                    let id = s(&v, "id").ok_or_else(|| Error::Api {
                        platform: PLATFORM.into(),
                        endpoint: endpoint.into(),
                        status: ans.status.as_u16(),
                        message: "the created comment came back without an id".into(),
                    })?;
                    return Ok(format!("{key}:{id}"));
                }
                Ok(ans) if ans.status.as_u16() == 404 => {
                    return Err(issue_gone(ObjectKind::Activity, &a.source_id, key));
                }
                Ok(ans) => {
                    return Err(record_error(
                        ObjectKind::Activity,
                        &a.source_id,
                        endpoint,
                        &ans,
                    ));
                }
                Err(e) if is_ambiguous(&e) && attempt < self.ambiguous_attempts() => {
                    if let Some(found) = self.find_comment(key, &mark).await? {
                        return Ok(found);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("the last attempt always returns")
    }

    async fn task_fields(
        &self,
        t: &Task,
        ctx: &LoadContext,
        create: Option<(&str, &IssueTypes, Option<&str>)>,
    ) -> Result<Map<String, Value>> {
        let platform = platform_of(ctx);
        let sid = &t.source_id;
        let mut f = Map::new();
        if let Some((project, types, parent)) = create {
            f.insert("project".into(), json!({ "key": project }));
            match parent {
                Some(p) => {
                    f.insert("issuetype".into(), json!({"id": types.subtask}));
                    f.insert("parent".into(), json!({ "key": p }));
                }
                None => {
                    f.insert("issuetype".into(), json!({"id": types.standalone}));
                }
            }
        }
        f.insert("summary".into(), json!(Self::summary_of(&t.subject)));
        let mut line = format!(
            "Task created on {} (migrated from {platform})",
            t.created_at
                .as_deref()
                .map(readable_utc)
                .unwrap_or_else(|| "unknown time".into())
        );
        if let Some(o) = &t.owner {
            line.push_str(&format!("; owner {}", o.display()));
        }
        let mut blocks = vec![adf::provenance_paragraph(
            &marker(platform, "task", sid),
            &line,
        )];
        blocks.extend(
            t.description
                .as_deref()
                .unwrap_or("")
                .split('\n')
                .map(adf::text_paragraph)
                .filter(|p| p["content"].as_array().is_some_and(|c| !c.is_empty())),
        );
        f.insert("description".into(), adf::doc(blocks));
        if let Some(d) = t.due_date.as_deref().filter(|d| !d.trim().is_empty()) {
            f.insert(
                "duedate".into(),
                json!(jira_date(d).ok_or_else(|| Error::data(
                    ObjectKind::Task,
                    sid,
                    format!("due date '{d}' is not a date")
                ))?),
            );
        }
        if let Some(p) = t.priority.as_deref().filter(|p| !p.is_empty()) {
            f.insert("priority".into(), json!({ "name": p }));
        }
        if let Some(a) = t
            .owner
            .as_ref()
            .and_then(|p| p.email.as_deref())
            .and_then(|e| ctx.agents.get(&e.to_lowercase()))
        {
            f.insert("assignee".into(), json!({ "accountId": a }));
        }
        self.custom_body(ObjectKind::Task, sid, &t.custom, ctx, &mut f)
            .await?;
        let legacy = self.legacy_field(true).await?.expect("created on demand");
        f.insert(legacy.id, json!(legacy_value(platform, "task", sid)));
        Ok(f)
    }

    async fn task_home(&self, t: &Task, ctx: &LoadContext) -> Result<(String, Option<String>)> {
        match &t.ticket {
            Some(p) => {
                let key = ctx.resolved.get(ObjectKind::Ticket, p).ok_or_else(|| {
                    Error::data(
                        ObjectKind::Task,
                        &t.source_id,
                        format!("its ticket {p} has no Jira issue yet; load tickets first"),
                    )
                })?;
                Ok((project_of_key(key), Some(key.to_string())))
            }
            None => Ok((
                self.desk_for(t.department.as_deref(), ctx)
                    .await?
                    .project_key,
                None,
            )),
        }
    }

    async fn create_task(&self, t: &Task, ctx: &LoadContext) -> Result<String> {
        let (project, parent) = self.task_home(t, ctx).await?;
        let types = self.issue_types(&project).await?;
        let fields = self
            .task_fields(t, ctx, Some((&project, &types, parent.as_deref())))
            .await?;
        let endpoint = "POST /issue";
        let body = Payload::Json(json!({ "fields": fields }));
        let mut key = None;
        for attempt in 1..=self.ambiguous_attempts() {
            if attempt > 1 {
                self.pause(attempt).await;
            }
            match self
                .client
                .call(
                    Method::POST,
                    endpoint,
                    "/rest/api/3/issue",
                    &[],
                    &body,
                    false,
                )
                .await
            {
                Ok(a) if a.status.is_success() => {
                    key = s(&self.client.json(endpoint, &a)?, "key");
                    break;
                }
                Ok(a) => return Err(record_error(ObjectKind::Task, &t.source_id, endpoint, &a)),
                Err(e) if is_ambiguous(&e) && attempt < self.ambiguous_attempts() => {
                    if let Some(f) = self
                        .find_issue(&project, platform_of(ctx), "task", &t.source_id)
                        .await?
                    {
                        key = Some(f.key);
                        break;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let key = key.ok_or_else(|| Error::Api {
            platform: PLATFORM.into(),
            endpoint: endpoint.into(),
            status: 201,
            message: "the created issue came back without a key".into(),
        })?;
        if let Some(st) = t.status.as_deref().filter(|s| !s.trim().is_empty()) {
            let start_key = (project.clone(), fields["issuetype"].to_string());
            let known = self.start_status.lock().unwrap().get(&start_key).cloned();
            let at = match known {
                Some(name) => name,
                None => {
                    let (_, name) = self.status_of(ObjectKind::Task, &t.source_id, &key).await?;
                    self.start_status
                        .lock()
                        .unwrap()
                        .insert(start_key, name.clone());
                    name
                }
            };
            self.walk_to(ObjectKind::Task, &t.source_id, &key, st, Some(&at))
                .await?;
        }
        Ok(key)
    }

    // ---------------------------------------------------------------------------------------
    // read back helpers

    async fn custom_read(
        &self,
        fields: &Map<String, Value>,
        out: &mut BTreeMap<String, String>,
    ) -> Result<()> {
        let list = self.field_list(false).await?;
        let legacy = self.config().legacy_id_field.clone();
        let category = self.config().category_field.clone();
        let mut opts = self.options.lock().await;
        for f in list.iter().filter(|f| f.custom) {
            let Some(v) = fields.get(&f.id).filter(|v| !v.is_null()) else {
                continue;
            };
            if f.name.eq_ignore_ascii_case(&legacy) {
                if let Some(t) = v.as_str() {
                    out.insert("legacy_id".into(), t.to_string());
                }
                continue;
            }
            let yes_no = matches!(f.short.as_str(), "select" | "radiobuttons") && {
                self.load_options(&mut opts, &f.id, false).await?;
                let values: Vec<String> = opts[&f.id].1.iter().map(|o| o.value.clone()).collect();
                is_yes_no(&values)
            };
            let Some(text) = value_text(v, yes_no) else {
                continue;
            };
            if f.name.eq_ignore_ascii_case(&category) && f.short == "cascadingselect" {
                out.insert(
                    "category".into(),
                    v.get("value")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                );
                if let Some(c) = v.pointer("/child/value").and_then(Value::as_str) {
                    out.insert("sub_category".into(), c.to_string());
                }
                continue;
            }
            out.insert(format!("custom.{}", f.name), text);
        }
        Ok(())
    }

    async fn read_issue(
        &self,
        kind: ObjectKind,
        key: &str,
    ) -> Result<Option<BTreeMap<String, String>>> {
        let Some(v) = self
            .client
            .get_opt("GET /issue/{key}", &format!("/rest/api/3/issue/{key}"), &[])
            .await?
        else {
            return Ok(None);
        };
        let f = v
            .get("fields")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut out = BTreeMap::new();
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                out.insert(k.to_string(), v);
            }
        };
        put("key", s(&v, "key"));
        put(
            "subject",
            f.get("summary").and_then(Value::as_str).map(str::to_string),
        );
        put("status", f.get("status").and_then(|x| s(x, "name")));
        put("priority", f.get("priority").and_then(|x| s(x, "name")));
        put(
            "due_date",
            f.get("duedate").and_then(Value::as_str).map(str::to_string),
        );
        put("labels", f.get("labels").and_then(|l| value_text(l, false)));
        put(
            "components",
            f.get("components").and_then(|c| {
                let names: Vec<String> =
                    c.as_array()?.iter().filter_map(|x| s(x, "name")).collect();
                (!names.is_empty()).then(|| names.join(";"))
            }),
        );
        put("issue_type", f.get("issuetype").and_then(|x| s(x, "name")));
        put("parent", f.get("parent").and_then(|x| s(x, "key")));
        put("description_text", f.get("description").map(adf::adf_text));
        let project = f.get("project").and_then(|p| s(p, "key"));
        if let Some(p) = &project
            && let Some(d) = self
                .service_desks()
                .await?
                .iter()
                .find(|d| &d.project_key == p)
        {
            out.insert("department".into(), d.project_name.clone());
        }
        if let Some(a) = f.get("assignee").filter(|a| !a.is_null()) {
            let email = match s(a, "emailAddress") {
                Some(e) => Some(e),
                None => match s(a, "accountId") {
                    Some(id) => self.email_of(&id).await?,
                    None => None,
                },
            };
            let key = if kind == ObjectKind::Task {
                "owner_email"
            } else {
                "assignee_email"
            };
            if let Some(e) = email {
                out.insert(key.into(), e);
            }
        }
        if let Some(r) = f.get("reporter").and_then(|r| s(r, "accountId")) {
            out.insert("contact".into(), r);
        }
        self.custom_read(&f, &mut out).await?;
        Ok(Some(out))
    }
}

/// The file name an attachment is stored under: inline images under their derived media name, so
/// the attachments phase finds the copy their record's body already shows.
fn stored_name(attachment: &AttachmentRef) -> String {
    if attachment.inline {
        inline_name(&attachment.url, &attachment.file_name)
    } else {
        attachment.file_name.clone()
    }
}

/// The stored name of an inline image: derived from its `src` so a re-run finds the same file.
fn inline_name(src: &str, file_name: &str) -> String {
    let h = deskshift_core::util::sha256_hex(src.as_bytes());
    let base: String = file_name
        .chars()
        .map(|c| {
            if c.is_control() || "/\\:*?\"<>|".contains(c) {
                '_'
            } else {
                c
            }
        })
        .take(150)
        .collect();
    format!(
        "inline-{}-{}",
        &h[..12],
        if base.trim().is_empty() {
            "image"
        } else {
            base.trim()
        }
    )
}

#[derive(Clone, Debug)]
struct FoundIssue {
    key: String,
    /// The Legacy Ticket ID is written: the fields were applied.
    complete: bool,
    status: String,
}

impl FoundIssue {
    fn from(issue: &Value, complete: bool) -> FoundIssue {
        FoundIssue {
            key: s(issue, "key").unwrap_or_default(),
            complete,
            status: issue
                .pointer("/fields/status/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        }
    }
}

#[async_trait]
impl Destination for Jsm {
    fn platform(&self) -> &'static str {
        PLATFORM
    }

    async fn describe(&self) -> Result<DestinationInfo> {
        let desks = self.service_desks().await?.clone();
        let departments = desks
            .iter()
            .map(|d| NamedId {
                id: d.id.clone(),
                name: d.project_name.clone(),
            })
            .collect();
        let users = self
            .client
            .platform_list(
                "GET /users/search",
                "/rest/api/3/users/search",
                &[],
                "values",
            )
            .await?;
        let agents: Vec<DestAgent> = users
            .iter()
            .filter(|u| s(u, "accountType").as_deref() == Some("atlassian"))
            .filter_map(|u| {
                Some(DestAgent {
                    id: s(u, "accountId")?,
                    email: s(u, "emailAddress")?,
                    name: s(u, "displayName").unwrap_or_default(),
                    active: u.get("active").and_then(Value::as_bool).unwrap_or(true),
                })
            })
            .collect();
        let mut custom_fields = Vec::new();
        for f in self
            .field_list(true)
            .await?
            .into_iter()
            .filter(|f| f.custom)
        {
            for kind in [ObjectKind::Ticket, ObjectKind::Task] {
                custom_fields.push(DestField {
                    id: f.id.clone(),
                    kind,
                    label: f.name.clone(),
                    api_name: f.id.clone(),
                    field_type: f.short.clone(),
                    options: Vec::new(),
                });
            }
        }
        let priorities: Vec<String> = self
            .client
            .get("GET /priority", "/rest/api/3/priority", &[])
            .await?
            .as_array()
            .map(|a| a.iter().filter_map(|p| s(p, "name")).collect())
            .unwrap_or_default();
        let mut statuses: Vec<String> = Vec::new();
        for d in &desks {
            for st in self.project_statuses(&d.project_key).await? {
                if !statuses.iter().any(|x| x.eq_ignore_ascii_case(&st)) {
                    statuses.push(st);
                }
            }
        }
        if statuses.is_empty() {
            statuses = DEFAULT_STATUSES.iter().map(|s| s.to_string()).collect();
        }
        let mut allowed_values = BTreeMap::new();
        allowed_values.insert("ticket.status".to_string(), statuses.clone());
        allowed_values.insert("ticket.priority".to_string(), priorities.clone());
        allowed_values.insert("task.status".to_string(), statuses);
        allowed_values.insert("task.priority".to_string(), priorities);
        allowed_values.insert(
            "ticket.department".to_string(),
            desks.iter().map(|d| d.project_name.clone()).collect(),
        );
        let calls_per_record = BTreeMap::from([
            (
                "account".to_string(),
                2.0 + self.config().department_desks.len() as f64,
            ),
            ("contact".to_string(), 3.0),
            // request, fields, about two transitions, at times the customer's desk membership;
            // the status is read only for a project's first issue; lookups are cached.
            ("ticket".to_string(), 5.0),
            ("activity".to_string(), 1.0),
            // create, status read, one or two transitions
            ("task".to_string(), 4.0),
            // upload and the read-back check
            ("attachment".to_string(), 2.0),
        ]);
        let max_lengths = BTreeMap::from([
            ("account.name".to_string(), MAX_ORG_NAME),
            ("ticket.subject".to_string(), MAX_SUMMARY),
            ("task.subject".to_string(), MAX_SUMMARY),
        ]);
        Ok(DestinationInfo {
            platform: PLATFORM.into(),
            edition: Some(format!(
                "Jira Service Management Cloud (HTML -> ADF: {})",
                adf::CONVERTER
            )),
            daily_credits: None,
            credits_remaining: None,
            concurrency_cap: Some(self.client.concurrency_cap()),
            max_custom_fields: None,
            departments,
            agents,
            custom_fields,
            allowed_values,
            calls_per_record,
            max_lengths,
            // Organizations hold a name and customers an e-mail and a display name; the rest of an
            // account's or contact's values stay in the migration package (the organization property
            // carries account details where the site allows it).
            unsupported_fields: [
                "account.phone",
                "account.email",
                "account.website",
                "account.city",
                "account.custom.*",
                "contact.first_name",
                "contact.last_name",
                "contact.phone",
                "contact.mobile",
                "contact.custom.*",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            inline_media: true,
            relations: true,
            unique_account_names: true,
            records_per_slot: self.client.pacer.records_per_slot(),
        })
    }

    async fn ensure_custom_field(&self, spec: &CustomFieldSpec) -> Result<DestField> {
        if !matches!(spec.kind, ObjectKind::Ticket | ObjectKind::Task) {
            // JSM organizations and customers have no custom fields: account values ride in the
            // organization's property, which this pseudo-field names.
            return Ok(DestField {
                id: format!("property:{}", spec.label),
                kind: spec.kind,
                label: spec.label.clone(),
                api_name: format!("property:{}", spec.label),
                field_type: "property".into(),
                options: spec.options.clone(),
            });
        }
        let mut options: Vec<String> = Vec::new();
        for o in spec
            .options
            .iter()
            .map(|o| o.trim())
            .filter(|o| !o.is_empty())
        {
            if !options.iter().any(|x| x == o) {
                options.push(o.to_string());
            }
        }
        if spec.field_type == FieldType::Checkbox {
            options = vec!["Yes".into(), "No".into()];
        }
        let (short, searcher) =
            crate::convert::jira_field_type(&spec.field_type, !options.is_empty());
        let field = {
            let _g = self.schema_lock.lock().await;
            match self.custom_field_named(&spec.label, true).await? {
                Some(f) => f,
                None => self.create_field(&spec.label, short, searcher).await?,
            }
        };
        let mut all_options = Vec::new();
        if matches!(
            field.short.as_str(),
            "select" | "multiselect" | "radiobuttons" | "multicheckboxes"
        ) {
            all_options = self.ensure_options(&field.id, None, &options).await?;
        }
        if let Some(scope) = spec.scope.as_deref().filter(|s| !s.is_empty()) {
            tracing::debug!(field = %spec.label, scope, "JSM fields are site-wide: scope noted, field context stays global");
        }
        Ok(DestField {
            id: field.id.clone(),
            kind: spec.kind,
            label: field.name,
            api_name: field.id,
            field_type: field.short,
            options: all_options,
        })
    }

    async fn create(
        &self,
        record: &CanonicalRecord,
        ctx: &LoadContext,
    ) -> Result<deskshift_core::ports::Created> {
        let id = match record {
            CanonicalRecord::Account(a) => self.create_organization(a, ctx).await?,
            CanonicalRecord::Contact(c) => {
                // Its own answer, not the shared list: contacts are created concurrently.
                let (id, reused) = self.create_customer(c, ctx).await?;
                // The e-mail already had a customer (from before the migration or from another
                // contact): linked, never deleted by a rollback of this contact, and reported.
                if let Some(r) = reused {
                    return Ok(deskshift_core::ports::Created {
                        id,
                        matched_existing: true,
                        flags: vec![(
                            "customer_deduplicated".into(),
                            format!(
                                "e-mail {} already had a customer account: this contact shares it",
                                r.email
                            ),
                        )],
                    });
                }
                id
            }
            CanonicalRecord::Ticket(t) => self.create_ticket(t, ctx).await?,
            CanonicalRecord::Activity(a) => self.create_comment(a, ctx).await?,
            CanonicalRecord::Task(t) => self.create_task(t, ctx).await?,
        };
        Ok(id.into())
    }

    async fn update(
        &self,
        dest_id: &str,
        record: &CanonicalRecord,
        ctx: &LoadContext,
    ) -> Result<()> {
        match record {
            CanonicalRecord::Account(a) => {
                let Some(org) = self
                    .client
                    .get_opt(
                        "GET /organization/{id}",
                        &format!("/rest/servicedeskapi/organization/{dest_id}"),
                        &[],
                    )
                    .await?
                else {
                    return Err(Error::data(
                        ObjectKind::Account,
                        &a.source_id,
                        format!("organization {dest_id} no longer exists in JSM"),
                    ));
                };
                let current = s(&org, "name").unwrap_or_default();
                if !current.trim().eq_ignore_ascii_case(a.name.trim()) {
                    return Err(Error::data(
                        ObjectKind::Account,
                        &a.source_id,
                        format!(
                            "the name changed to '{}' but JSM's API cannot rename organizations; rename '{current}' by hand",
                            a.name
                        ),
                    ));
                }
                self.finish_organization(dest_id, a, ctx).await
            }
            CanonicalRecord::Contact(c) => self.finish_customer(dest_id, c, ctx).await,
            CanonicalRecord::Ticket(t) => self.apply_ticket(dest_id, t, ctx, true, None).await,
            CanonicalRecord::Activity(a) => {
                let (key, id) = split_child(ObjectKind::Activity, dest_id)?;
                let body = Payload::Json(self.comment_body(&key, a, ctx).await?);
                let endpoint = "PUT /issue/{key}/comment/{id}";
                let ans = self
                    .client
                    .issue_write(
                        &key,
                        Method::PUT,
                        endpoint,
                        &format!("/rest/api/3/issue/{key}/comment/{id}"),
                        &[],
                        &body,
                        true,
                    )
                    .await?;
                match ans.status.as_u16() {
                    200..=299 => Ok(()),
                    404 | 405 => Err(Error::data(
                        ObjectKind::Activity,
                        &a.source_id,
                        format!(
                            "comment {dest_id} cannot be updated in Jira (it no longer exists or the site refuses edits)"
                        ),
                    )),
                    _ => Err(record_error(
                        ObjectKind::Activity,
                        &a.source_id,
                        endpoint,
                        &ans,
                    )),
                }
            }
            CanonicalRecord::Task(t) => {
                let fields = self.task_fields(t, ctx, None).await?;
                self.put_issue(ObjectKind::Task, &t.source_id, dest_id, fields)
                    .await?;
                if let Some(st) = t.status.as_deref().filter(|s| !s.trim().is_empty()) {
                    self.walk_to(ObjectKind::Task, &t.source_id, dest_id, st, None)
                        .await?;
                }
                Ok(())
            }
        }
    }

    async fn find_existing(
        &self,
        record: &CanonicalRecord,
        ctx: &LoadContext,
    ) -> Result<Option<String>> {
        let platform = platform_of(ctx);
        match record {
            CanonicalRecord::Account(a) => self.find_organization(a, ctx).await,
            CanonicalRecord::Contact(c) => {
                let Some(email) = c
                    .email
                    .as_deref()
                    .map(str::trim)
                    .filter(|e| e.contains('@'))
                else {
                    return Ok(None);
                };
                self.account_by_email(email).await
            }
            CanonicalRecord::Ticket(t) => {
                let desk = self.desk_for(t.department.as_deref(), ctx).await?;
                let Some(found) = self
                    .find_issue(&desk.project_key, platform, "ticket", &t.source_id)
                    .await?
                else {
                    return Ok(None);
                };
                // A request whose follow-up writes were cut off is finished before it is adopted.
                if !found.complete {
                    self.apply_ticket(&found.key, t, ctx, false, None).await?;
                } else if let Some(st) = t
                    .status
                    .as_deref()
                    .filter(|s| !s.eq_ignore_ascii_case(&found.status))
                {
                    self.walk_to(ObjectKind::Ticket, &t.source_id, &found.key, st, None)
                        .await?;
                }
                Ok(Some(found.key))
            }
            CanonicalRecord::Task(t) => {
                let (project, _) = self.task_home(t, ctx).await?;
                let Some(found) = self
                    .find_issue(&project, platform, "task", &t.source_id)
                    .await?
                else {
                    return Ok(None);
                };
                if let Some(st) = t
                    .status
                    .as_deref()
                    .filter(|s| !s.eq_ignore_ascii_case(&found.status))
                {
                    self.walk_to(ObjectKind::Task, &t.source_id, &found.key, st, None)
                        .await?;
                }
                Ok(Some(found.key))
            }
            CanonicalRecord::Activity(a) => {
                let Some(key) = ctx.resolved.get(ObjectKind::Ticket, &a.ticket) else {
                    return Ok(None);
                };
                self.find_comment(key, &marker(platform, activity_tag(&a.kind), &a.source_id))
                    .await
            }
        }
    }

    async fn attach(
        &self,
        parent_kind: ObjectKind,
        parent_dest_id: &str,
        attachment: &AttachmentRef,
        bytes: Bytes,
    ) -> Result<String> {
        let key = attachment_issue(parent_kind, parent_dest_id)?;
        let size = bytes.len() as u64;
        let md5 = deskshift_core::util::md5_hex(&bytes);
        let name = stored_name(attachment);
        // An inline image was uploaded with its record's body: that file is the attachment.
        if attachment.inline
            && let Some(id) = self.attachment_named(&key, &name, size).await?
        {
            return Ok(format!("{key}:{id}"));
        }
        let att = self
            .upload(ObjectKind::Attachment, &attachment.id, &key, &name, bytes)
            .await?;
        let id = s(&att, "id").unwrap_or_default();
        let stored = att.get("size").and_then(Value::as_u64);
        let mut problem = (stored != Some(size)).then(|| {
            format!(
                "Jira stored {} bytes of {size}",
                stored.map(|n| n.to_string()).unwrap_or("?".into())
            )
        });
        if problem.is_none() && size <= self.config().verify_download_max_bytes {
            let a = self
                .client
                .call(
                    Method::GET,
                    "GET /attachment/content/{id}",
                    &format!("/rest/api/3/attachment/content/{id}"),
                    &[("redirect", "false".to_string())],
                    &Payload::None,
                    true,
                )
                .await?;
            if a.status.is_success() && deskshift_core::util::md5_hex(&a.body) != md5 {
                problem = Some("the file read back has another MD5".into());
            }
        }
        if let Some(p) = problem {
            let _ = self
                .delete(ObjectKind::Attachment, &format!("{key}:{id}"))
                .await;
            return Err(Error::data(
                ObjectKind::Attachment,
                &attachment.id,
                format!(
                    "'{}' on {key} did not arrive intact ({p}); it was removed, retry the attachments phase",
                    attachment.file_name
                ),
            ));
        }
        Ok(format!("{key}:{id}"))
    }

    async fn find_attachment(
        &self,
        parent_kind: ObjectKind,
        parent_dest_id: &str,
        attachment: &AttachmentRef,
        size: u64,
    ) -> Result<Option<String>> {
        let key = attachment_issue(parent_kind, parent_dest_id)?;
        Ok(self
            .attachment_named(&key, &stored_name(attachment), size)
            .await?
            .map(|id| format!("{key}:{id}")))
    }

    /// `ticket`'s request relates to the other request (the configured link type); Jira keeps
    /// one link per type and direction, so writing it again adds nothing.
    async fn relate(&self, ticket: &str, dest_id: &str, other_dest_id: &str) -> Result<()> {
        self.add_link(dest_id, ticket, other_dest_id).await
    }

    async fn delete(&self, kind: ObjectKind, dest_id: &str) -> Result<()> {
        let (endpoint, method, path, query, body): (
            &str,
            Method,
            String,
            Vec<(&str, String)>,
            Payload,
        ) = match kind {
            ObjectKind::Ticket | ObjectKind::Task => (
                "DELETE /issue/{key}",
                Method::DELETE,
                format!("/rest/api/3/issue/{dest_id}"),
                vec![("deleteSubtasks", "true".to_string())],
                Payload::None,
            ),
            ObjectKind::Activity => {
                let (key, id) = split_child(kind, dest_id)?;
                (
                    "DELETE /issue/{key}/comment/{id}",
                    Method::DELETE,
                    format!("/rest/api/3/issue/{key}/comment/{id}"),
                    vec![],
                    Payload::None,
                )
            }
            ObjectKind::Attachment => {
                let (_, id) = split_child(kind, dest_id)?;
                (
                    "DELETE /attachment/{id}",
                    Method::DELETE,
                    format!("/rest/api/3/attachment/{id}"),
                    vec![],
                    Payload::None,
                )
            }
            ObjectKind::Account => (
                "DELETE /organization/{id}",
                Method::DELETE,
                format!("/rest/servicedeskapi/organization/{dest_id}"),
                vec![],
                Payload::None,
            ),
            ObjectKind::Contact => {
                // Customers cannot be deleted through the API: they leave the desks this run uses.
                let mut desks = self.target_desks().await?;
                let extra: Vec<String> = self
                    .desk_members
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|(_, a)| a == dest_id)
                    .map(|(d, _)| d.clone())
                    .collect();
                for d in self.service_desks().await? {
                    if extra.contains(&d.id) && !desks.contains(d) {
                        desks.push(d.clone());
                    }
                }
                for d in desks {
                    let endpoint = "DELETE /servicedesk/{id}/customer";
                    let a = self
                        .client
                        .call(
                            Method::DELETE,
                            endpoint,
                            &format!("/rest/servicedeskapi/servicedesk/{}/customer", d.id),
                            &[],
                            &Payload::Json(json!({"accountIds": [dest_id]})),
                            true,
                        )
                        .await?;
                    if !(a.status.is_success() || matches!(a.status.as_u16(), 400 | 404)) {
                        return Err(api_error(endpoint, &a));
                    }
                    self.desk_members
                        .lock()
                        .unwrap()
                        .remove(&(d.id.clone(), dest_id.to_string()));
                }
                return Ok(());
            }
            other => {
                return Err(Error::Config(format!(
                    "the JSM destination does not write {other} records, so it cannot delete them"
                )));
            }
        };
        let issue = match kind {
            ObjectKind::Ticket | ObjectKind::Task => Some(dest_id.to_string()),
            ObjectKind::Activity => Some(split_child(kind, dest_id)?.0),
            _ => None,
        };
        let a = match issue {
            Some(i) => {
                self.client
                    .issue_write(&i, method, endpoint, &path, &query, &body, true)
                    .await?
            }
            None => {
                self.client
                    .call(method, endpoint, &path, &query, &body, true)
                    .await?
            }
        };
        if a.status.is_success() || a.status.as_u16() == 404 {
            Ok(())
        } else {
            Err(api_error(endpoint, &a))
        }
    }

    async fn read_back(
        &self,
        kind: ObjectKind,
        dest_id: &str,
    ) -> Result<Option<BTreeMap<String, String>>> {
        match kind {
            ObjectKind::Ticket | ObjectKind::Task => self.read_issue(kind, dest_id).await,
            ObjectKind::Account => {
                let Some(org) = self
                    .client
                    .get_opt(
                        "GET /organization/{id}",
                        &format!("/rest/servicedeskapi/organization/{dest_id}"),
                        &[],
                    )
                    .await?
                else {
                    return Ok(None);
                };
                let mut out = BTreeMap::new();
                if let Some(n) = s(&org, "name") {
                    out.insert("name".to_string(), n);
                }
                if let Some(p) = self.org_property(dest_id).await? {
                    for k in [
                        "phone",
                        "email",
                        "website",
                        "street",
                        "city",
                        "state",
                        "zip",
                        "country",
                        "description",
                    ] {
                        if let Some(v) = s(&p, k) {
                            out.insert(k.to_string(), v);
                        }
                    }
                    if let Some(c) = p.get("custom").and_then(Value::as_object) {
                        for (k, v) in c {
                            if let Some(t) = v.as_str() {
                                out.insert(format!("custom.{k}"), t.to_string());
                            }
                        }
                    }
                }
                Ok(Some(out))
            }
            ObjectKind::Contact => {
                let Some(u) = self
                    .client
                    .get_opt(
                        "GET /user",
                        "/rest/api/3/user",
                        &[("accountId", dest_id.to_string())],
                    )
                    .await?
                else {
                    return Ok(None);
                };
                let mut out = BTreeMap::new();
                if let Some(e) = s(&u, "emailAddress") {
                    out.insert("email".to_string(), e);
                }
                if let Some(n) = s(&u, "displayName") {
                    out.insert("display_name".to_string(), n);
                }
                let orgs = self
                    .client
                    .sd_list(
                        "GET /organization",
                        "/rest/servicedeskapi/organization",
                        &[("accountId", dest_id.to_string())],
                    )
                    .await?;
                let ids: Vec<String> = orgs.iter().filter_map(|o| s(o, "id")).collect();
                if !ids.is_empty() {
                    out.insert("account".to_string(), ids.join(";"));
                }
                Ok(Some(out))
            }
            ObjectKind::Activity => {
                let (key, id) = split_child(kind, dest_id)?;
                let Some(c) = self
                    .client
                    .get_opt(
                        "GET /issue/{key}/comment/{id}",
                        &format!("/rest/api/3/issue/{key}/comment/{id}"),
                        &[],
                    )
                    .await?
                else {
                    return Ok(None);
                };
                let mut out = BTreeMap::new();
                if let Some(p) = c.get("jsdPublic").and_then(Value::as_bool) {
                    out.insert("public".to_string(), p.to_string());
                }
                if let Some(b) = c.get("body") {
                    out.insert("body_text".to_string(), adf::adf_text(b));
                }
                Ok(Some(out))
            }
            ObjectKind::Attachment => {
                let (_, id) = split_child(kind, dest_id)?;
                let Some(a) = self
                    .client
                    .get_opt(
                        "GET /attachment/{id}",
                        &format!("/rest/api/3/attachment/{id}"),
                        &[],
                    )
                    .await?
                else {
                    return Ok(None);
                };
                let mut out = BTreeMap::new();
                if let Some(n) = s(&a, "filename") {
                    out.insert("file_name".to_string(), n);
                }
                if let Some(n) = s(&a, "size") {
                    out.insert("size".to_string(), n);
                }
                Ok(Some(out))
            }
            _ => Ok(None),
        }
    }

    async fn count(&self, kind: ObjectKind) -> Result<Option<u64>> {
        match kind {
            ObjectKind::Account => Ok(Some(
                self.client
                    .sd_list(
                        "GET /organization",
                        "/rest/servicedeskapi/organization",
                        &[],
                    )
                    .await?
                    .len() as u64,
            )),
            ObjectKind::Ticket | ObjectKind::Task => {
                let legacy = self.legacy_field(false).await?;
                let mut fields = vec!["issuetype".to_string()];
                if let Some(f) = &legacy {
                    fields.push(f.id.clone());
                }
                let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
                let mut n = 0u64;
                for d in self.service_desks().await?.clone() {
                    for issue in self
                        .search(&format!("project = {}", jql_quote(&d.project_key)), &refs)
                        .await?
                    {
                        let subtask = issue
                            .pointer("/fields/issuetype/subtask")
                            .and_then(Value::as_bool)
                            .unwrap_or(false);
                        let task_marker = legacy
                            .as_ref()
                            .and_then(|f| issue.pointer(&format!("/fields/{}", f.id)))
                            .and_then(Value::as_str)
                            .is_some_and(|v| v.contains(":task:"));
                        let is_task = subtask || task_marker;
                        if (kind == ObjectKind::Task) == is_task {
                            n += 1;
                        }
                    }
                }
                Ok(Some(n))
            }
            // Contacts merge into customers by e-mail and comments cost a call per issue.
            _ => Ok(None),
        }
    }

    fn spend(&self) -> Spend {
        self.client.spend()
    }
}

impl Jsm {
    /// The names of a project's statuses: the statuses endpoint, else the transitions of one of its
    /// issues; empty when neither tells.
    async fn project_statuses(&self, project: &str) -> Result<Vec<String>> {
        if let Some(v) = self
            .client
            .get_opt(
                "GET /project/{key}/statuses",
                &format!("/rest/api/3/project/{project}/statuses"),
                &[],
            )
            .await?
        {
            let mut out: Vec<String> = Vec::new();
            for t in v.as_array().cloned().unwrap_or_default() {
                for st in t
                    .get("statuses")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
                {
                    if let Some(n) = s(&st, "name")
                        && !out.contains(&n)
                    {
                        out.push(n);
                    }
                }
            }
            return Ok(out);
        }
        let sample = self.search_one(project).await?;
        let Some(issue) = sample else {
            return Ok(Vec::new());
        };
        let key = s(&issue, "key").unwrap_or_default();
        let (id, name) = (
            issue
                .pointer("/fields/status/id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            issue
                .pointer("/fields/status/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        );
        self.learn_transitions(project, &key, &id, &name).await?;
        let wf = self.workflows.lock().unwrap();
        Ok(wf
            .get(project)
            .map(|w| {
                let mut names: Vec<String> = w.statuses.values().map(|(n, _)| n.clone()).collect();
                names.sort();
                names.dedup();
                names
            })
            .unwrap_or_default())
    }

    async fn search_one(&self, project: &str) -> Result<Option<Value>> {
        let a = self
            .client
            .call(
                Method::POST,
                "POST /search/jql",
                "/rest/api/3/search/jql",
                &[],
                &Payload::Json(json!({"jql": format!("project = {}", jql_quote(project)), "fields": ["status"], "maxResults": 1})),
                true,
            )
            .await?;
        if !a.status.is_success() {
            return Ok(None);
        }
        let v = self.client.json("POST /search/jql", &a)?;
        Ok(v.get("issues")
            .and_then(Value::as_array)
            .and_then(|l| l.first().cloned()))
    }
}

fn attachment_issue(parent_kind: ObjectKind, parent_dest_id: &str) -> Result<String> {
    match parent_kind {
        ObjectKind::Ticket | ObjectKind::Task => Ok(parent_dest_id.to_string()),
        ObjectKind::Activity => Ok(split_child(ObjectKind::Activity, parent_dest_id)?.0),
        other => Err(Error::data(
            other,
            parent_dest_id,
            format!(
                "JSM keeps no files on {other} records (only on issues); the file stays in the stage and is listed in the failed-records report"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_ids_split_on_the_last_colon() {
        assert_eq!(
            split_child(ObjectKind::Activity, "SUP-12:10044").unwrap(),
            ("SUP-12".into(), "10044".into())
        );
        assert!(split_child(ObjectKind::Activity, "SUP-12").is_err());
        assert_eq!(project_of_key("IT-HELP-7"), "IT-HELP");
        assert_eq!(Jsm::summary_of("  two\nlines  "), "two lines");
        assert_eq!(Jsm::summary_of(""), "(no subject)");
    }

    #[test]
    fn shortest_known_path_is_taken() {
        let e = |id: &str, to: &str, name: &str| Edge {
            id: id.into(),
            to_id: to.into(),
            to_name: name.into(),
        };
        let mut w = Workflow::default();
        w.edges.insert(
            "1".into(),
            vec![e("11", "3", "In Progress"), e("31", "5", "Resolved")],
        );
        w.edges.insert("3".into(), vec![e("31", "5", "Resolved")]);
        w.edges.insert("5".into(), vec![e("41", "6", "Closed")]);
        assert_eq!(Jsm::next_step(&w, "1", "closed").unwrap().id, "31");
        assert_eq!(Jsm::next_step(&w, "1", "In Progress").unwrap().id, "11");
        assert!(Jsm::next_step(&w, "6", "Open").is_none());
    }

    #[test]
    fn inline_names_are_stable_and_safe() {
        let a = inline_name("https://x.test/a.png", "a/b.png");
        assert_eq!(a, inline_name("https://x.test/a.png", "a/b.png"));
        assert!(a.starts_with("inline-") && a.ends_with("a_b.png"), "{a}");
        assert_ne!(a, inline_name("https://x.test/b.png", "a/b.png"));
    }
}
