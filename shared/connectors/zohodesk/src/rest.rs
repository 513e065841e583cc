//! REST mode: loads canonical records into a live Zoho Desk portal through API v1.
//!
//! Zoho's REST API cannot back-date anything, so original authors and times travel in a visible
//! provenance line (with a `[deskshift:<platform>:<kind>:<source id>]` marker), and every account,
//! contact, ticket and task carries `<platform>:<source id>` in a "Migrated From ID" custom field
//! that [`Destination::find_existing`] searches.
//!
//! Destination ids: accounts, contacts, tickets and tasks use Zoho's id; an activity (a ticket
//! comment) is `<ticketId>:<commentId>`; an attachment is `<ticketId>:<attachmentId>`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use deskshift_core::model::{
    Account, Activity, ActivityKind, AttachmentRef, CanonicalRecord, Contact, CustomValues,
    FieldType, ObjectKind, Task, Ticket,
};
use deskshift_core::ports::{
    CustomFieldSpec, DestAgent, DestField, Destination, DestinationInfo, LoadContext, NamedId,
    Spend,
};
use deskshift_core::{Error, Result};
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::client::{PLATFORM, Payload, ZohoClient, api_error, describe_error_body};
use crate::config::{Edition, ZohoDeskConfig};
use crate::convert::{
    MIGRATED_FROM_LABEL, activity_provenance, custom_value_for, has_marker, html_escape, marker,
    readable_utc, strip_provenance, value_text, zoho_datetime,
};

/// Zoho limits on content sizes (TicketComment.json, Ticket.json).
const MAX_COMMENT_CHARS: usize = 32_000;
const MAX_DESCRIPTION_CHARS: usize = 65_535;

pub const DEFAULT_TICKET_STATUSES: [&str; 4] = ["Open", "On Hold", "Escalated", "Closed"];
pub const DEFAULT_TICKET_PRIORITIES: [&str; 3] = ["High", "Medium", "Low"];
pub const DEFAULT_TICKET_CHANNELS: [&str; 8] = [
    "Email",
    "Phone",
    "Web",
    "Chat",
    "Forums",
    "Twitter",
    "Facebook",
    "Feedback Widget",
];
pub const DEFAULT_TASK_STATUSES: [&str; 5] = [
    "Not Started",
    "In Progress",
    "Completed",
    "Deferred",
    "Waiting on someone else",
];
pub const DEFAULT_TASK_PRIORITIES: [&str; 5] = ["Highest", "High", "Normal", "Low", "Lowest"];

#[derive(Clone, Debug)]
struct Department {
    id: String,
    name: String,
    is_default: bool,
    enabled: bool,
}

/// A lock per custom field being ensured, keyed by kind and lower-case label.
type FieldLocks = HashMap<(ObjectKind, String), Arc<tokio::sync::Mutex<()>>>;

/// The Zoho Desk destination in REST mode.
pub struct ZohoDesk {
    client: ZohoClient,
    edition: Option<Edition>,
    /// One lock per field (kind, label): two loaders never create the same field twice, while
    /// different fields are created concurrently.
    field_locks: std::sync::Mutex<FieldLocks>,
    /// Custom fields listed once per kind (and those created since), so each ensure costs no read.
    listed: tokio::sync::Mutex<HashMap<ObjectKind, Vec<DestField>>>,
    migrated_fields: std::sync::Mutex<HashMap<ObjectKind, DestField>>,
    departments: tokio::sync::OnceCell<Vec<Department>>,
    agent_emails: std::sync::Mutex<HashMap<String, String>>,
}

/// The Zoho module holding records of `kind`.
pub fn module_of(kind: ObjectKind) -> Option<&'static str> {
    match kind {
        ObjectKind::Account => Some("accounts"),
        ObjectKind::Contact => Some("contacts"),
        ObjectKind::Ticket => Some("tickets"),
        ObjectKind::Task => Some("tasks"),
        _ => None,
    }
}

/// Zoho's field type for a source field type (user links hold the agent's email as text).
pub fn zoho_field_type(t: &FieldType) -> &'static str {
    match t {
        FieldType::Text => "Text",
        FieldType::Textarea => "Textarea",
        FieldType::Number => "Number",
        FieldType::Decimal => "Decimal",
        FieldType::Date => "Date",
        FieldType::Datetime => "DateTime",
        FieldType::Dropdown => "Picklist",
        FieldType::Multiselect => "Multiselect",
        FieldType::Checkbox => "Boolean",
        FieldType::Email => "Email",
        FieldType::Phone => "Phone",
        FieldType::Url => "URL",
        FieldType::UserLink | FieldType::LinkedRecord | FieldType::Other(_) => "Text",
    }
}

fn s(v: &Value, key: &str) -> Option<String> {
    text_of(v.get(key)?)
}

/// A non-empty string, or a number as text.
fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(t) if !t.is_empty() => Some(t.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn id_of(v: &Value) -> Option<String> {
    s(v, "id")
}

/// The `id` of a create answer (a string, or a number on some endpoints).
#[derive(serde::Deserialize)]
struct CreatedId {
    #[serde(default)]
    id: Option<Value>,
}

impl CreatedId {
    fn text(&self) -> Option<String> {
        text_of(self.id.as_ref()?)
    }
}

fn digits(kind: ObjectKind, id: &str) -> Result<()> {
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "'{id}' is not a Zoho Desk {kind} id (Zoho ids are digits)"
        )))
    }
}

/// `<ticketId>:<childId>` of comments and attachments.
fn split_child(kind: ObjectKind, dest_id: &str) -> Result<(String, String)> {
    let (t, c) = dest_id.split_once(':').ok_or_else(|| {
        Error::Config(format!(
            "'{dest_id}' is not a Zoho Desk {kind} id; expected <ticketId>:<{kind}Id>"
        ))
    })?;
    digits(ObjectKind::Ticket, t)?;
    digits(kind, c)?;
    Ok((t.to_string(), c.to_string()))
}

fn put_opt(body: &mut Map<String, Value>, key: &str, value: &Option<String>) {
    if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
        body.insert(key.to_string(), Value::String(v.to_string()));
    }
}

fn platform_of(ctx: &LoadContext) -> &str {
    if ctx.source_platform.is_empty() {
        "source"
    } else {
        &ctx.source_platform
    }
}

fn field_from(kind: ObjectKind, v: &Value) -> Option<DestField> {
    let options = v
        .get("allowedValues")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|o| match o {
                    Value::String(t) => Some(t.clone()),
                    other => other
                        .get("value")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                })
                .collect()
        })
        .unwrap_or_default();
    Some(DestField {
        id: id_of(v)?,
        kind,
        label: s(v, "displayLabel").or_else(|| s(v, "i18NLabel"))?,
        api_name: s(v, "apiName")?,
        field_type: s(v, "type").unwrap_or_else(|| "Text".into()),
        options,
    })
}

impl ZohoDesk {
    /// A destination with the configured concurrency cap, or Zoho's smallest (Free, 5) when none is
    /// configured. Prefer [`ZohoDesk::connect`], which reads the edition.
    pub fn new(config: ZohoDeskConfig) -> Result<ZohoDesk> {
        let cap = config
            .concurrency_cap
            .unwrap_or(Edition::Free.concurrency_cap());
        Ok(Self::from_client(ZohoClient::new(config, cap)?, None))
    }

    /// Reads the portal's edition (`GET /organizations`) and sizes the concurrency cap from it
    /// unless the configuration overrides it. The access token obtained is kept.
    pub async fn connect(config: ZohoDeskConfig) -> Result<ZohoDesk> {
        let configured = config.concurrency_cap;
        let probe = ZohoClient::new(config, 1)?;
        let edition = fetch_edition(&probe).await?;
        let cap = configured
            .or(edition.map(Edition::concurrency_cap))
            .unwrap_or(Edition::Free.concurrency_cap());
        Ok(Self::from_client(probe.rebuild(cap)?, edition))
    }

    fn from_client(client: ZohoClient, edition: Option<Edition>) -> ZohoDesk {
        ZohoDesk {
            client,
            edition,
            field_locks: std::sync::Mutex::new(HashMap::new()),
            listed: tokio::sync::Mutex::new(HashMap::new()),
            migrated_fields: std::sync::Mutex::new(HashMap::new()),
            departments: tokio::sync::OnceCell::new(),
            agent_emails: std::sync::Mutex::new(HashMap::new()),
        }
    }

    pub fn edition(&self) -> Option<Edition> {
        self.edition
    }

    pub fn concurrency_cap(&self) -> usize {
        self.client.concurrency_cap()
    }

    /// Access tokens obtained from the accounts server so far.
    pub fn token_refreshes(&self) -> u64 {
        self.client.token_refreshes()
    }

    pub fn config(&self) -> &ZohoDeskConfig {
        self.client.config()
    }

    /// How often a create whose answer was lost is looked up and re-sent before giving up.
    fn ambiguous_attempts(&self) -> u32 {
        self.client.config().retry.max_attempts.max(1)
    }

    /// Backoff before re-sending a create that was looked for and not found.
    async fn pause(&self, attempt: u32) {
        let retry = &self.client.config().retry;
        let ms = retry
            .base_delay_ms
            .saturating_mul(1 << attempt.min(10))
            .min(retry.max_delay_ms);
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }

    // ---------------------------------------------------------------------------------------
    // metadata

    async fn departments(&self) -> Result<&Vec<Department>> {
        self.departments
            .get_or_try_init(|| async {
                let mut out = Vec::new();
                self.client
                    .list_all("GET /departments", "/departments", &[], 200, |items| {
                        out.extend(items.iter().filter_map(|d| {
                            Some(Department {
                                id: id_of(d)?,
                                name: s(d, "name").unwrap_or_default(),
                                is_default: d
                                    .get("isDefault")
                                    .and_then(Value::as_bool)
                                    .unwrap_or(false),
                                enabled: d
                                    .get("isEnabled")
                                    .and_then(Value::as_bool)
                                    .unwrap_or(true),
                            })
                        }));
                        true
                    })
                    .await?;
                Ok(out)
            })
            .await
    }

    /// The department id for a mapped name, else the configured default, else the portal's default.
    async fn department_id(&self, name: Option<&str>, ctx: &LoadContext) -> Result<String> {
        if let Some(n) = name.filter(|n| !n.is_empty()) {
            if let Some(id) = ctx.departments.get(n) {
                return Ok(id.clone());
            }
            if let Some(d) = self
                .departments()
                .await?
                .iter()
                .find(|d| d.name.eq_ignore_ascii_case(n) || d.id == n)
            {
                return Ok(d.id.clone());
            }
        }
        self.default_department(ctx).await
    }

    async fn default_department(&self, ctx: &LoadContext) -> Result<String> {
        let deps = self.departments().await?;
        if let Some(wanted) = self.client.config().default_department.as_deref() {
            if let Some(id) = ctx.departments.get(wanted) {
                return Ok(id.clone());
            }
            return deps
                .iter()
                .find(|d| d.id == wanted || d.name.eq_ignore_ascii_case(wanted))
                .map(|d| d.id.clone())
                .ok_or_else(|| {
                    Error::Config(format!(
                        "default_department '{wanted}' is not a department of the Zoho Desk portal; departments: {}",
                        deps.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ")
                    ))
                });
        }
        deps.iter()
            .find(|d| d.is_default && d.enabled)
            .or_else(|| deps.iter().find(|d| d.enabled))
            .or_else(|| deps.first())
            .map(|d| d.id.clone())
            .ok_or_else(|| {
                Error::Config("the Zoho Desk portal has no department; create one first".into())
            })
    }

    async fn department_name(&self, id: &str) -> Result<Option<String>> {
        Ok(self
            .departments()
            .await?
            .iter()
            .find(|d| d.id == id)
            .map(|d| d.name.clone()))
    }

    /// Every field of a module (`GET /fields?module=`).
    async fn module_fields(&self, module: &str) -> Result<Vec<Value>> {
        self.client
            .list("GET /fields", "/fields", &[("module", module.to_string())])
            .await
    }

    async fn custom_fields(&self, kind: ObjectKind) -> Result<Vec<DestField>> {
        let Some(module) = module_of(kind) else {
            return Ok(Vec::new());
        };
        Ok(self
            .module_fields(module)
            .await?
            .iter()
            .filter(|f| {
                f.get("isCustomField")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            })
            .filter_map(|f| field_from(kind, f))
            .collect())
    }

    /// The "Migrated From ID" field of a module, created on first need.
    async fn migrated_field(&self, kind: ObjectKind) -> Result<DestField> {
        if let Some(f) = self.migrated_fields.lock().unwrap().get(&kind) {
            return Ok(f.clone());
        }
        let spec = CustomFieldSpec {
            kind,
            label: MIGRATED_FROM_LABEL.into(),
            field_type: FieldType::Text,
            options: Vec::new(),
            scope: None,
        };
        let field = self.ensure_custom_field(&spec).await?;
        self.migrated_fields
            .lock()
            .unwrap()
            .insert(kind, field.clone());
        Ok(field)
    }

    /// The "Migrated From ID" field if it exists already (lookups never create it).
    async fn existing_migrated_field(&self, kind: ObjectKind) -> Result<Option<DestField>> {
        if let Some(f) = self.migrated_fields.lock().unwrap().get(&kind) {
            return Ok(Some(f.clone()));
        }
        let found = self
            .custom_fields(kind)
            .await?
            .into_iter()
            .find(|f| f.label.eq_ignore_ascii_case(MIGRATED_FROM_LABEL));
        if let Some(f) = &found {
            self.migrated_fields.lock().unwrap().insert(kind, f.clone());
        }
        Ok(found)
    }

    async fn agent_email(&self, agent_id: &str) -> Result<Option<String>> {
        if let Some(e) = self.agent_emails.lock().unwrap().get(agent_id) {
            return Ok(Some(e.clone()));
        }
        digits(ObjectKind::Agent, agent_id)?;
        let answer = self
            .client
            .call(
                Method::GET,
                "GET /agents/{agentId}",
                &format!("/agents/{agent_id}"),
                &[],
                &Payload::None,
                true,
            )
            .await?;
        if answer.status.as_u16() == 404 {
            return Ok(None);
        }
        let v = self.client.json("GET /agents/{agentId}", &answer)?;
        let email = s(&v, "emailId").or_else(|| s(&v, "email"));
        if let Some(e) = &email {
            self.agent_emails
                .lock()
                .unwrap()
                .insert(agent_id.to_string(), e.clone());
        }
        Ok(email)
    }

    // ---------------------------------------------------------------------------------------
    // record bodies

    /// `cf` values by api name, plus the migration marker field.
    async fn cf_body(
        &self,
        kind: ObjectKind,
        source_id: &str,
        custom: &CustomValues,
        ctx: &LoadContext,
    ) -> Result<Map<String, Value>> {
        let mut cf = Map::new();
        for (label, value) in custom {
            let field = ctx
                .custom_fields
                .get(label)
                .or_else(|| ctx.custom_fields.values().find(|f| f.label.eq_ignore_ascii_case(label)))
                .ok_or_else(|| {
                    Error::data(
                        kind,
                        source_id,
                        format!(
                            "custom field '{label}' has no Zoho Desk field in {}; run the schema phase first",
                            module_of(kind).unwrap_or("this module")
                        ),
                    )
                })?;
            let v = custom_value_for(&field.field_type, value).map_err(|m| {
                Error::data(
                    kind,
                    source_id,
                    format!("custom field '{label}' ({}): {m}", field.field_type),
                )
            })?;
            cf.insert(field.api_name.clone(), v);
        }
        let migrated = self.migrated_field(kind).await?;
        cf.insert(
            migrated.api_name,
            Value::String(format!("{}:{source_id}", platform_of(ctx))),
        );
        Ok(cf)
    }

    fn resolved(
        &self,
        ctx: &LoadContext,
        kind: ObjectKind,
        of: ObjectKind,
        source_id: &str,
        reference: &str,
    ) -> Result<String> {
        ctx.resolved.get(of, reference).map(str::to_string).ok_or_else(|| {
            Error::data(
                kind,
                source_id,
                format!("its {of} {reference} has no Zoho Desk id yet (not migrated or failed); load the {of} first"),
            )
        })
    }

    async fn account_body(&self, a: &Account, ctx: &LoadContext) -> Result<Value> {
        let mut b = Map::new();
        b.insert("accountName".into(), json!(a.name));
        put_opt(&mut b, "phone", &a.phone);
        put_opt(&mut b, "email", &a.email);
        put_opt(&mut b, "website", &a.website);
        put_opt(&mut b, "street", &a.street);
        put_opt(&mut b, "city", &a.city);
        put_opt(&mut b, "state", &a.state);
        put_opt(&mut b, "code", &a.zip);
        put_opt(&mut b, "country", &a.country);
        put_opt(&mut b, "description", &a.description);
        if a.name.trim().is_empty() {
            return Err(Error::data(
                ObjectKind::Account,
                &a.source_id,
                "Zoho Desk requires an account name",
            ));
        }
        b.insert(
            "cf".into(),
            Value::Object(
                self.cf_body(ObjectKind::Account, &a.source_id, &a.custom, ctx)
                    .await?,
            ),
        );
        Ok(Value::Object(b))
    }

    async fn contact_body(&self, c: &Contact, ctx: &LoadContext) -> Result<Value> {
        let mut b = Map::new();
        // Zoho requires lastName: fall back to the first name, then the email.
        let (first, last) = match (
            c.first_name.clone().filter(|f| !f.is_empty()),
            c.last_name.trim(),
        ) {
            (f, l) if !l.is_empty() => (f, l.to_string()),
            (Some(f), _) => (None, f),
            (None, _) => (
                None,
                c.email
                    .clone()
                    .filter(|e| !e.is_empty())
                    .unwrap_or_else(|| "Unknown".into()),
            ),
        };
        put_opt(&mut b, "firstName", &first);
        b.insert("lastName".into(), json!(last));
        put_opt(&mut b, "email", &c.email);
        put_opt(&mut b, "phone", &c.phone);
        put_opt(&mut b, "mobile", &c.mobile);
        if let Some(acc) = &c.account {
            let id = self.resolved(
                ctx,
                ObjectKind::Contact,
                ObjectKind::Account,
                &c.source_id,
                acc,
            )?;
            b.insert("accountId".into(), json!(id));
        }
        b.insert(
            "cf".into(),
            Value::Object(
                self.cf_body(ObjectKind::Contact, &c.source_id, &c.custom, ctx)
                    .await?,
            ),
        );
        Ok(Value::Object(b))
    }

    /// The ticket body; `for_create` adds the placeholder contact Zoho needs when there is no requester.
    async fn ticket_body(&self, t: &Ticket, ctx: &LoadContext, for_create: bool) -> Result<Value> {
        let platform = platform_of(ctx);
        let mut b = Map::new();
        let subject = if t.subject.trim().is_empty() {
            "(no subject)".to_string()
        } else {
            t.subject.clone()
        };
        b.insert("subject".into(), json!(subject));
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
        if !t.tags.is_empty() {
            line.push_str(&format!("; tags: {}", t.tags.join(", ")));
        }
        match &t.contact {
            Some(c) => {
                let id = self.resolved(
                    ctx,
                    ObjectKind::Ticket,
                    ObjectKind::Contact,
                    &t.source_id,
                    c,
                )?;
                b.insert("contactId".into(), json!(id));
            }
            None if for_create => {
                line.push_str("; no requester in the source: filed under the placeholder contact \"Unknown requester\"");
                b.insert(
                    "contact".into(),
                    json!({"lastName": "Unknown requester", "email": self.client.config().placeholder_contact_email}),
                );
            }
            None => {}
        }
        let mark = marker(platform, "ticket", &t.source_id);
        let description = format!(
            "<div class=\"deskshift-provenance\"><!-- {m} --><small>{m} {}</small></div>{}",
            html_escape(&line),
            t.description_html.as_deref().unwrap_or(""),
            m = html_escape(&mark)
        );
        if description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(Error::data(
                ObjectKind::Ticket,
                &t.source_id,
                format!(
                    "the description exceeds Zoho's {MAX_DESCRIPTION_CHARS} characters; the import package keeps it whole"
                ),
            ));
        }
        b.insert("description".into(), json!(description));
        b.insert(
            "departmentId".into(),
            json!(self.department_id(t.department.as_deref(), ctx).await?),
        );
        put_opt(&mut b, "status", &t.status);
        put_opt(&mut b, "priority", &t.priority);
        put_opt(&mut b, "channel", &t.channel);
        put_opt(&mut b, "category", &t.category);
        if let Some(email) = t.assignee.as_ref().and_then(|p| p.email.as_deref())
            && let Some(agent) = ctx.agents.get(&email.to_lowercase())
        {
            b.insert("assigneeId".into(), json!(agent));
        }
        if let Some(due) = t.due_date.as_deref().filter(|d| !d.is_empty()) {
            let v = zoho_datetime(due).ok_or_else(|| {
                Error::data(
                    ObjectKind::Ticket,
                    &t.source_id,
                    format!("due date '{due}' is not a date"),
                )
            })?;
            b.insert("dueDate".into(), json!(v));
        }
        b.insert(
            "cf".into(),
            Value::Object(
                self.cf_body(ObjectKind::Ticket, &t.source_id, &t.custom, ctx)
                    .await?,
            ),
        );
        Ok(Value::Object(b))
    }

    fn comment_body(&self, a: &Activity, ctx: &LoadContext) -> Result<Value> {
        let mut provenance = activity_provenance(platform_of(ctx), a);
        // Comments have no custom fields: their values ride in the provenance block.
        if !a.custom.is_empty() {
            let extra: Vec<String> = a
                .custom
                .iter()
                .map(|(k, v)| format!("{}: {}", html_escape(k), html_escape(&v.as_text())))
                .collect();
            provenance =
                provenance.replacen("</small>", &format!("; {}</small>", extra.join("; ")), 1);
        }
        let content = format!("{provenance}{}", a.body_html);
        if content.chars().count() > MAX_COMMENT_CHARS {
            return Err(Error::data(
                ObjectKind::Activity,
                &a.source_id,
                format!(
                    "the body exceeds Zoho's {MAX_COMMENT_CHARS} characters per comment; the import package keeps it whole"
                ),
            ));
        }
        let public = matches!(a.kind, ActivityKind::Email { .. });
        Ok(json!({"content": content, "contentType": "html", "isPublic": public}))
    }

    async fn task_body(&self, t: &Task, ctx: &LoadContext) -> Result<Value> {
        let mut b = Map::new();
        let subject = if t.subject.trim().is_empty() {
            "(no subject)".to_string()
        } else {
            t.subject.clone()
        };
        b.insert("subject".into(), json!(subject));
        put_opt(&mut b, "description", &t.description);
        b.insert(
            "departmentId".into(),
            json!(self.department_id(t.department.as_deref(), ctx).await?),
        );
        if let Some(parent) = &t.ticket {
            b.insert(
                "ticketId".into(),
                json!(self.resolved(
                    ctx,
                    ObjectKind::Task,
                    ObjectKind::Ticket,
                    &t.source_id,
                    parent
                )?),
            );
        }
        if let Some(due) = t.due_date.as_deref().filter(|d| !d.is_empty()) {
            let v = zoho_datetime(due).ok_or_else(|| {
                Error::data(
                    ObjectKind::Task,
                    &t.source_id,
                    format!("due date '{due}' is not a date"),
                )
            })?;
            b.insert("dueDate".into(), json!(v));
        }
        if let Some(email) = t.owner.as_ref().and_then(|p| p.email.as_deref())
            && let Some(agent) = ctx.agents.get(&email.to_lowercase())
        {
            b.insert("ownerId".into(), json!(agent));
        }
        put_opt(&mut b, "status", &t.status);
        put_opt(&mut b, "priority", &t.priority);
        b.insert(
            "cf".into(),
            Value::Object(
                self.cf_body(ObjectKind::Task, &t.source_id, &t.custom, ctx)
                    .await?,
            ),
        );
        Ok(Value::Object(b))
    }

    // ---------------------------------------------------------------------------------------
    // writes

    /// A record-level error: 422 names the record and Zoho's field errors.
    fn record_error(
        kind: ObjectKind,
        source_id: &str,
        endpoint: &str,
        answer: &deskshift_core::http::Answer,
    ) -> Error {
        if answer.status.as_u16() == 422 {
            if let Some(field) = duplicate_field(&answer.body) {
                return Error::Duplicate {
                    kind,
                    source_id: source_id.to_string(),
                    field,
                    message: describe_error_body(&answer.body),
                };
            }
            return Error::data(
                kind,
                source_id,
                format!(
                    "Zoho Desk refused it: {}",
                    describe_error_body(&answer.body)
                ),
            );
        }
        api_error(endpoint, answer)
    }

    /// POSTs a create; when the answer is lost (5xx, cut connection) looks for the record before re-sending.
    async fn post_create(
        &self,
        record: &CanonicalRecord,
        ctx: &LoadContext,
        endpoint: &str,
        path: &str,
        body: Value,
        compose: impl Fn(String) -> String,
    ) -> Result<String> {
        let payload = Payload::Json(body);
        let mut attempt = 0;
        loop {
            attempt += 1;
            if attempt > 1 {
                self.pause(attempt).await;
            }
            match self
                .client
                .call(Method::POST, endpoint, path, &[], &payload, false)
                .await
            {
                Ok(answer) if answer.status.is_success() => {
                    // Only the id is used: the rest of the echoed record is skipped unparsed.
                    let created: CreatedId = answer.json(PLATFORM, endpoint)?;
                    return created.text().map(&compose).ok_or_else(|| Error::Api {
                        platform: PLATFORM.into(),
                        endpoint: endpoint.into(),
                        status: answer.status.as_u16(),
                        message: "the answer carried no id".into(),
                    });
                }
                Ok(answer) => {
                    return Err(Self::record_error(
                        record.kind(),
                        record.source_id(),
                        endpoint,
                        &answer,
                    ));
                }
                Err(Error::Transport {
                    ambiguous: true, ..
                }) if attempt < self.ambiguous_attempts() => {
                    if let Some(id) = self.find_existing(record, ctx).await? {
                        return Ok(id);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn patch(
        &self,
        kind: ObjectKind,
        source_id: &str,
        endpoint: &str,
        path: &str,
        body: Value,
    ) -> Result<()> {
        let answer = self
            .client
            .call(
                Method::PATCH,
                endpoint,
                path,
                &[],
                &Payload::Json(body),
                true,
            )
            .await?;
        match answer.status.as_u16() {
            200..=299 => Ok(()),
            404 => Err(Error::data(
                kind,
                source_id,
                "the record no longer exists in Zoho Desk (deleted or trashed)",
            )),
            _ => Err(Self::record_error(kind, source_id, endpoint, &answer)),
        }
    }

    /// Searches a module for the record whose "Migrated From ID" holds `value`.
    async fn search_migrated(&self, kind: ObjectKind, value: &str) -> Result<Option<String>> {
        let Some(field) = self.existing_migrated_field(kind).await? else {
            return Ok(None);
        };
        let module = module_of(kind).unwrap_or_default();
        let endpoint = format!("GET /{module}/search");
        let query = [
            ("customField1", format!("{}:{value}", field.api_name)),
            ("limit", "10".to_string()),
        ];
        let items = self
            .client
            .list(&endpoint, &format!("/{module}/search"), &query)
            .await?;
        Ok(items
            .iter()
            .find(|item| cf_matches(item, &field, value) != Some(false))
            .and_then(id_of))
    }

    async fn find_task(&self, t: &Task, ctx: &LoadContext) -> Result<Option<String>> {
        let Some(field) = self.existing_migrated_field(ObjectKind::Task).await? else {
            return Ok(None);
        };
        let value = format!("{}:{}", platform_of(ctx), t.source_id);
        let (endpoint, path) = match t
            .ticket
            .as_deref()
            .and_then(|p| ctx.resolved.get(ObjectKind::Ticket, p))
        {
            Some(ticket) => {
                digits(ObjectKind::Ticket, ticket)?;
                (
                    "GET /tickets/{ticketId}/tasks",
                    format!("/tickets/{ticket}/tasks"),
                )
            }
            None => ("GET /tasks", "/tasks".to_string()),
        };
        let mut candidates = Vec::new();
        let mut found = None;
        self.client
            .list_all(endpoint, &path, &[], 99, |items| {
                for item in items {
                    match cf_matches(&item, &field, &value) {
                        Some(true) => {
                            found = id_of(&item);
                            return false;
                        }
                        Some(false) => {}
                        None => candidates.extend(id_of(&item)),
                    }
                }
                true
            })
            .await?;
        if found.is_some() {
            return Ok(found);
        }
        // List items without `cf`: read each candidate whose subject matches.
        for id in candidates {
            let answer = self
                .client
                .call(
                    Method::GET,
                    "GET /tasks/{taskId}",
                    &format!("/tasks/{id}"),
                    &[],
                    &Payload::None,
                    true,
                )
                .await?;
            if answer.status.is_success() {
                let v = self.client.json("GET /tasks/{taskId}", &answer)?;
                if cf_matches(&v, &field, &value) == Some(true) {
                    return Ok(Some(id));
                }
            }
        }
        Ok(None)
    }

    async fn find_comment(&self, a: &Activity, ctx: &LoadContext) -> Result<Option<String>> {
        let Some(ticket) = ctx.resolved.get(ObjectKind::Ticket, &a.ticket) else {
            return Ok(None);
        };
        digits(ObjectKind::Ticket, ticket)?;
        let platform = platform_of(ctx);
        let mut found = None;
        self.client
            .list_all(
                "GET /tickets/{ticketId}/comments",
                &format!("/tickets/{ticket}/comments"),
                &[],
                100,
                |items| {
                    for item in items {
                        let content = item.get("content").and_then(Value::as_str).unwrap_or("");
                        if has_marker(content, platform, &a.source_id) {
                            found = id_of(&item).map(|c| format!("{ticket}:{c}"));
                            return false;
                        }
                    }
                    true
                },
            )
            .await?;
        Ok(found)
    }

    /// Moves records to the recycle bin; a record already gone counts as deleted.
    async fn trash(
        &self,
        kind: ObjectKind,
        dest_id: &str,
        module: &str,
        ids_key: &str,
    ) -> Result<()> {
        digits(kind, dest_id)?;
        let endpoint = format!("POST /{module}/moveToTrash");
        let body = Payload::Json(json!({ ids_key: [dest_id] }));
        let answer = self
            .client
            .call(
                Method::POST,
                &endpoint,
                &format!("/{module}/moveToTrash"),
                &[],
                &body,
                true,
            )
            .await?;
        if answer.status.is_success() || answer.status.as_u16() == 404 {
            return Ok(());
        }
        if answer.status.as_u16() == 422 {
            let get = format!("GET /{module}/{{id}}");
            let check = self
                .client
                .call(
                    Method::GET,
                    &get,
                    &format!("/{module}/{dest_id}"),
                    &[],
                    &Payload::None,
                    true,
                )
                .await?;
            if check.status.as_u16() == 404 {
                return Ok(());
            }
        }
        Err(api_error(&endpoint, &answer))
    }

    async fn delete_child(&self, kind: ObjectKind, dest_id: &str, collection: &str) -> Result<()> {
        let (ticket, child) = split_child(kind, dest_id)?;
        let endpoint = format!("DELETE /tickets/{{ticketId}}/{collection}/{{id}}");
        let answer = self
            .client
            .call(
                Method::DELETE,
                &endpoint,
                &format!("/tickets/{ticket}/{collection}/{child}"),
                &[],
                &Payload::None,
                true,
            )
            .await?;
        if answer.status.is_success() || answer.status.as_u16() == 404 {
            Ok(())
        } else {
            Err(api_error(&endpoint, &answer))
        }
    }

    /// GETs one record; None on 404.
    async fn get_record(
        &self,
        endpoint: &str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Option<Value>> {
        let answer = self
            .client
            .call(Method::GET, endpoint, path, query, &Payload::None, true)
            .await?;
        if answer.status.as_u16() == 404 {
            return Ok(None);
        }
        let v = self.client.json(endpoint, &answer)?;
        if v.get("isTrashed").and_then(Value::as_bool) == Some(true) {
            return Ok(None);
        }
        Ok(Some(v))
    }

    /// `custom.<label>` entries from `customFields` (by label) or `cf` (by api name).
    async fn read_custom(
        &self,
        kind: ObjectKind,
        v: &Value,
        out: &mut BTreeMap<String, String>,
    ) -> Result<()> {
        if let Some(Value::Object(by_label)) = v.get("customFields") {
            for (label, value) in by_label {
                if label.eq_ignore_ascii_case(MIGRATED_FROM_LABEL) {
                    continue;
                }
                if let Some(t) = value_text(value) {
                    out.insert(format!("custom.{label}"), t);
                }
            }
            return Ok(());
        }
        if let Some(Value::Object(cf)) = v.get("cf")
            && cf.values().any(|x| !x.is_null())
        {
            let fields = self.custom_fields(kind).await?;
            for (api, value) in cf {
                let Some(field) = fields.iter().find(|f| &f.api_name == api) else {
                    continue;
                };
                if field.label.eq_ignore_ascii_case(MIGRATED_FROM_LABEL) {
                    continue;
                }
                if let Some(t) = value_text(value) {
                    out.insert(format!("custom.{}", field.label), t);
                }
            }
        }
        Ok(())
    }

    async fn ticket_of_attachment_parent(
        &self,
        parent_kind: ObjectKind,
        parent_dest_id: &str,
    ) -> Result<String> {
        let ticket = match parent_kind {
            ObjectKind::Ticket => parent_dest_id.to_string(),
            ObjectKind::Activity => split_child(ObjectKind::Activity, parent_dest_id)?.0,
            other => {
                return Err(Error::data(
                    other,
                    parent_dest_id,
                    format!(
                        "Zoho Desk's API has no attachment endpoint for {other} records (only tickets and their \
                         comments); the file stays in the stage and is listed in the failed-records report"
                    ),
                ));
            }
        };
        digits(ObjectKind::Ticket, &ticket)?;
        Ok(ticket)
    }
}

/// Whether a record's `cf` holds `value` in the migrated field: None when the answer has no `cf`.
fn cf_matches(item: &Value, field: &DestField, value: &str) -> Option<bool> {
    if let Some(cf) = item.get("cf").and_then(Value::as_object) {
        return Some(cf.get(&field.api_name).and_then(Value::as_str) == Some(value));
    }
    if let Some(by_label) = item.get("customFields").and_then(Value::as_object) {
        return Some(by_label.get(&field.label).and_then(Value::as_str) == Some(value));
    }
    None
}

async fn fetch_edition(client: &ZohoClient) -> Result<Option<Edition>> {
    let orgs = client
        .list("GET /organizations", "/organizations", &[])
        .await?;
    let org_id = client.config().org_id.clone();
    let org = orgs
        .iter()
        .find(|o| s(o, "id").as_deref() == Some(org_id.as_str()))
        .or_else(|| orgs.first());
    Ok(org
        .and_then(|o| s(o, "edition"))
        .and_then(|e| Edition::parse(&e)))
}

fn allowed_from(fields: &[Value], api_name: &str) -> Option<Vec<String>> {
    let f = fields
        .iter()
        .find(|f| s(f, "apiName").as_deref() == Some(api_name))?;
    let values: Vec<String> = f
        .get("allowedValues")?
        .as_array()?
        .iter()
        .filter_map(|o| match o {
            Value::String(t) => Some(t.clone()),
            other => other
                .get("value")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
        .collect();
    (!values.is_empty()).then_some(values)
}

/// Longest values Zoho accepts, in characters (maxLength in the OpenAPI files).
impl ZohoDesk {
    /// An attachment of `name` and `size` on a ticket, as `<ticketId>:<attachmentId>`.
    async fn attachment_on_ticket(
        &self,
        ticket: &str,
        name: &str,
        size: u64,
    ) -> Result<Option<String>> {
        let path = format!("/tickets/{ticket}/attachments");
        let mut found = None;
        self.client
            .list_all(
                "GET /tickets/{ticketId}/attachments",
                &path,
                &[],
                100,
                |items| {
                    found = items.iter().find_map(|a| {
                        let same_name = s(a, "name").as_deref() == Some(name);
                        let same_size =
                            s(a, "size").and_then(|x| x.parse::<u64>().ok()) == Some(size);
                        (same_name && same_size).then(|| id_of(a)).flatten()
                    });
                    found.is_none()
                },
            )
            .await?;
        Ok(found.map(|id| format!("{ticket}:{id}")))
    }
}

/// The field of a 422 INVALID_DATA answer whose error type is `duplicate`, as a canonical name.
fn duplicate_field(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let e = v
        .get("errors")?
        .as_array()?
        .iter()
        .find(|e| e.get("errorType").and_then(Value::as_str) == Some("duplicate"))?;
    let field = e.get("fieldName")?.as_str()?.trim_start_matches('/');
    Some(match field {
        "accountName" => "name".to_string(),
        "email" => "email".to_string(),
        other => other.to_string(),
    })
}

pub fn max_lengths() -> BTreeMap<String, usize> {
    [
        ("account.name", 200),
        ("contact.first_name", 40),
        ("contact.last_name", 50),
        ("ticket.subject", 1000),
        ("ticket.description_html", MAX_DESCRIPTION_CHARS),
        ("activity.body_html", MAX_COMMENT_CHARS),
        ("task.subject", 300),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[async_trait]
impl Destination for ZohoDesk {
    fn platform(&self) -> &'static str {
        PLATFORM
    }

    async fn describe(&self) -> Result<DestinationInfo> {
        let edition = match self.edition {
            Some(e) => Some(e),
            None => fetch_edition(&self.client).await?,
        };
        let mut agents = Vec::new();
        self.client
            .list_all("GET /agents", "/agents", &[], 200, |items| {
                agents.extend(items.iter().filter_map(|a| {
                    let name = s(a, "name").unwrap_or_else(|| {
                        format!(
                            "{} {}",
                            s(a, "firstName").unwrap_or_default(),
                            s(a, "lastName").unwrap_or_default()
                        )
                        .trim()
                        .to_string()
                    });
                    Some(DestAgent {
                        id: id_of(a)?,
                        email: s(a, "emailId")
                            .or_else(|| s(a, "email"))
                            .unwrap_or_default(),
                        name,
                        active: s(a, "status").is_none_or(|st| st.eq_ignore_ascii_case("ACTIVE")),
                    })
                }));
                true
            })
            .await?;
        let departments = self
            .departments()
            .await?
            .iter()
            .map(|d| NamedId {
                id: d.id.clone(),
                name: d.name.clone(),
            })
            .collect();
        let mut custom_fields = Vec::new();
        let mut allowed_values = BTreeMap::new();
        for kind in [
            ObjectKind::Ticket,
            ObjectKind::Contact,
            ObjectKind::Account,
            ObjectKind::Task,
        ] {
            let module = module_of(kind).unwrap_or_default();
            let fields = self.module_fields(module).await?;
            custom_fields.extend(
                fields
                    .iter()
                    .filter(|f| {
                        f.get("isCustomField")
                            .and_then(Value::as_bool)
                            .unwrap_or(false)
                    })
                    .filter_map(|f| field_from(kind, f)),
            );
            match kind {
                ObjectKind::Ticket => {
                    allowed_values.insert(
                        "ticket.status".to_string(),
                        allowed_from(&fields, "status")
                            .unwrap_or_else(|| strings(&DEFAULT_TICKET_STATUSES)),
                    );
                    allowed_values.insert(
                        "ticket.priority".to_string(),
                        allowed_from(&fields, "priority")
                            .unwrap_or_else(|| strings(&DEFAULT_TICKET_PRIORITIES)),
                    );
                    allowed_values.insert(
                        "ticket.channel".to_string(),
                        allowed_from(&fields, "channel")
                            .unwrap_or_else(|| strings(&DEFAULT_TICKET_CHANNELS)),
                    );
                }
                ObjectKind::Task => {
                    allowed_values.insert(
                        "task.status".to_string(),
                        allowed_from(&fields, "status")
                            .unwrap_or_else(|| strings(&DEFAULT_TASK_STATUSES)),
                    );
                    allowed_values.insert(
                        "task.priority".to_string(),
                        allowed_from(&fields, "priority")
                            .unwrap_or_else(|| strings(&DEFAULT_TASK_PRIORITIES)),
                    );
                }
                _ => {}
            }
        }
        let active_agents = agents.iter().filter(|a| a.active).count() as u64;
        let calls_per_record = BTreeMap::from([
            ("account".to_string(), 1.0),
            ("contact".to_string(), 1.0),
            // One POST; the field and department lookups are cached per run.
            ("ticket".to_string(), 1.0),
            ("activity".to_string(), 1.0),
            ("task".to_string(), 1.0),
            ("attachment".to_string(), 1.0),
        ]);
        Ok(DestinationInfo {
            platform: PLATFORM.into(),
            edition: edition.map(|e| e.as_str().to_string()),
            daily_credits: edition.and_then(|e| e.daily_credits(active_agents)),
            credits_remaining: self.client.credits_remaining(),
            concurrency_cap: Some(self.client.concurrency_cap()),
            max_custom_fields: None,
            departments,
            agents,
            custom_fields,
            allowed_values,
            calls_per_record,
            max_lengths: max_lengths(),
            unsupported_fields: vec![],
            inline_media: false,
            relations: false,
            unique_account_names: true,
            // The cap is on calls at once; no per-record spacing.
            records_per_slot: 1,
        })
    }

    async fn ensure_custom_field(&self, spec: &CustomFieldSpec) -> Result<DestField> {
        let module = module_of(spec.kind).ok_or_else(|| {
            Error::Config(format!(
                "Zoho Desk has no custom fields on {} records (ticket comments carry their values in the provenance line)",
                spec.kind
            ))
        })?;
        let lock = self
            .field_locks
            .lock()
            .unwrap()
            .entry((spec.kind, spec.label.to_lowercase()))
            .or_default()
            .clone();
        let _guard = lock.lock().await;
        let find = |fields: Vec<DestField>| {
            fields
                .into_iter()
                .find(|f| f.label.eq_ignore_ascii_case(&spec.label))
        };
        let known = {
            let mut listed = self.listed.lock().await;
            match listed.get(&spec.kind) {
                Some(fields) => fields.clone(),
                None => {
                    let fields = self.custom_fields(spec.kind).await?;
                    listed.insert(spec.kind, fields.clone());
                    fields
                }
            }
        };
        if let Some(f) = find(known) {
            return Ok(f);
        }
        let mut options: Vec<String> = Vec::new();
        for o in &spec.options {
            if !o.is_empty() && !options.contains(o) {
                options.push(o.clone());
            }
        }
        let mut ftype = zoho_field_type(&spec.field_type);
        // A picklist needs values; without any the field stays free text so nothing is lost.
        if matches!(ftype, "Picklist" | "Multiselect") && options.is_empty() {
            ftype = "Text";
        }
        let mut body = Map::new();
        body.insert("displayLabel".into(), json!(spec.label));
        body.insert("type".into(), json!(ftype));
        match ftype {
            "Text" => {
                body.insert("maxLength".into(), json!("255"));
            }
            "Number" => {
                body.insert("maxLength".into(), json!("9"));
            }
            "Decimal" => {
                body.insert("maxLength".into(), json!("16"));
                body.insert("decimalPlaces".into(), json!("2"));
            }
            "Phone" => {
                body.insert("maxLength".into(), json!("50"));
            }
            "Picklist" | "Multiselect" => {
                body.insert("allowedValues".into(), json!(options));
            }
            _ => {}
        }
        if let Some(scope) = spec.scope.as_deref().filter(|s| !s.is_empty()) {
            let deps = self.departments().await?;
            let dep = deps.iter().find(|d| d.name.eq_ignore_ascii_case(scope) || d.id == scope).ok_or_else(|| {
                Error::Config(format!("custom field '{}' is scoped to department '{scope}', which the portal does not have", spec.label))
            })?;
            body.insert("associatedDepartments".into(), json!([dep.id]));
        }
        let payload = Payload::Json(Value::Object(body));
        let query = [("module", module.to_string())];
        for attempt in 1..=self.ambiguous_attempts() {
            if attempt > 1 {
                self.pause(attempt).await;
            }
            match self
                .client
                .call(
                    Method::POST,
                    "POST /fields",
                    "/fields",
                    &query,
                    &payload,
                    false,
                )
                .await
            {
                Ok(answer) if answer.status.is_success() => {
                    let v = self.client.json("POST /fields", &answer)?;
                    let field = field_from(spec.kind, &v).ok_or_else(|| Error::Api {
                        platform: PLATFORM.into(),
                        endpoint: "POST /fields".into(),
                        status: answer.status.as_u16(),
                        message: "the created field came back without id, apiName or displayLabel"
                            .into(),
                    })?;
                    self.listed
                        .lock()
                        .await
                        .entry(spec.kind)
                        .or_default()
                        .push(field.clone());
                    return Ok(field);
                }
                Ok(answer) => {
                    // Someone else created it meanwhile (422 duplicate): use theirs.
                    if answer.status.as_u16() == 422
                        && let Some(f) = find(self.custom_fields(spec.kind).await?)
                    {
                        return Ok(f);
                    }
                    return Err(Error::Config(format!(
                        "Zoho Desk refused to create the {module} field '{}' ({ftype}): {}",
                        spec.label,
                        describe_error_body(&answer.body)
                    )));
                }
                Err(Error::Transport {
                    ambiguous: true, ..
                }) if attempt < self.ambiguous_attempts() => {
                    if let Some(f) = find(self.custom_fields(spec.kind).await?) {
                        return Ok(f);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("the last attempt always returns")
    }

    async fn create(
        &self,
        record: &CanonicalRecord,
        ctx: &LoadContext,
    ) -> Result<deskshift_core::ports::Created> {
        let id: Result<String> = async {
            match record {
                CanonicalRecord::Account(a) => {
                    let body = self.account_body(a, ctx).await?;
                    self.post_create(record, ctx, "POST /accounts", "/accounts", body, |id| id)
                        .await
                }
                CanonicalRecord::Contact(c) => {
                    let body = self.contact_body(c, ctx).await?;
                    self.post_create(record, ctx, "POST /contacts", "/contacts", body, |id| id)
                        .await
                }
                CanonicalRecord::Ticket(t) => {
                    let body = self.ticket_body(t, ctx, true).await?;
                    self.post_create(record, ctx, "POST /tickets", "/tickets", body, |id| id)
                        .await
                }
                CanonicalRecord::Activity(a) => {
                    let ticket = self.resolved(
                        ctx,
                        ObjectKind::Activity,
                        ObjectKind::Ticket,
                        &a.source_id,
                        &a.ticket,
                    )?;
                    digits(ObjectKind::Ticket, &ticket)?;
                    let body = self.comment_body(a, ctx)?;
                    let path = format!("/tickets/{ticket}/comments");
                    self.post_create(
                        record,
                        ctx,
                        "POST /tickets/{ticketId}/comments",
                        &path,
                        body,
                        |c| format!("{ticket}:{c}"),
                    )
                    .await
                }
                CanonicalRecord::Task(t) => {
                    let body = self.task_body(t, ctx).await?;
                    self.post_create(record, ctx, "POST /tasks", "/tasks", body, |id| id)
                        .await
                }
            }
        }
        .await;
        id.map(Into::into)
    }

    async fn update(
        &self,
        dest_id: &str,
        record: &CanonicalRecord,
        ctx: &LoadContext,
    ) -> Result<()> {
        let sid = record.source_id();
        match record {
            CanonicalRecord::Account(a) => {
                digits(ObjectKind::Account, dest_id)?;
                let body = self.account_body(a, ctx).await?;
                self.patch(
                    ObjectKind::Account,
                    sid,
                    "PATCH /accounts/{accountId}",
                    &format!("/accounts/{dest_id}"),
                    body,
                )
                .await
            }
            CanonicalRecord::Contact(c) => {
                digits(ObjectKind::Contact, dest_id)?;
                let body = self.contact_body(c, ctx).await?;
                self.patch(
                    ObjectKind::Contact,
                    sid,
                    "PATCH /contacts/{contactId}",
                    &format!("/contacts/{dest_id}"),
                    body,
                )
                .await
            }
            CanonicalRecord::Ticket(t) => {
                digits(ObjectKind::Ticket, dest_id)?;
                let body = self.ticket_body(t, ctx, false).await?;
                self.patch(
                    ObjectKind::Ticket,
                    sid,
                    "PATCH /tickets/{ticketId}",
                    &format!("/tickets/{dest_id}"),
                    body,
                )
                .await
            }
            CanonicalRecord::Activity(a) => {
                let (ticket, comment) = split_child(ObjectKind::Activity, dest_id)?;
                let body = self.comment_body(a, ctx)?;
                self.patch(
                    ObjectKind::Activity,
                    sid,
                    "PATCH /tickets/{ticketId}/comments/{commentId}",
                    &format!("/tickets/{ticket}/comments/{comment}"),
                    body,
                )
                .await
            }
            CanonicalRecord::Task(t) => {
                digits(ObjectKind::Task, dest_id)?;
                let body = self.task_body(t, ctx).await?;
                self.patch(
                    ObjectKind::Task,
                    sid,
                    "PATCH /tasks/{taskId}",
                    &format!("/tasks/{dest_id}"),
                    body,
                )
                .await
            }
        }
    }

    async fn find_existing(
        &self,
        record: &CanonicalRecord,
        ctx: &LoadContext,
    ) -> Result<Option<String>> {
        let value = format!("{}:{}", platform_of(ctx), record.source_id());
        match record {
            CanonicalRecord::Account(_) => self.search_migrated(ObjectKind::Account, &value).await,
            CanonicalRecord::Contact(_) => self.search_migrated(ObjectKind::Contact, &value).await,
            CanonicalRecord::Ticket(_) => self.search_migrated(ObjectKind::Ticket, &value).await,
            CanonicalRecord::Task(t) => self.find_task(t, ctx).await,
            CanonicalRecord::Activity(a) => self.find_comment(a, ctx).await,
        }
    }

    async fn attach(
        &self,
        parent_kind: ObjectKind,
        parent_dest_id: &str,
        attachment: &AttachmentRef,
        bytes: Bytes,
    ) -> Result<String> {
        let ticket = self
            .ticket_of_attachment_parent(parent_kind, parent_dest_id)
            .await?;
        let endpoint = "POST /tickets/{ticketId}/attachments";
        let path = format!("/tickets/{ticket}/attachments");
        let size = bytes.len() as u64;
        let payload = Payload::File {
            name: attachment.file_name.clone(),
            mime: "application/octet-stream".into(),
            bytes,
        };
        let query = [("isPublic", "false".to_string())];
        for attempt in 1..=self.ambiguous_attempts() {
            if attempt > 1 {
                self.pause(attempt).await;
            }
            match self
                .client
                .call(Method::POST, endpoint, &path, &query, &payload, false)
                .await
            {
                Ok(answer) if answer.status.is_success() => {
                    let v = self.client.json(endpoint, &answer)?;
                    let id = id_of(&v).ok_or_else(|| Error::Api {
                        platform: PLATFORM.into(),
                        endpoint: endpoint.into(),
                        status: answer.status.as_u16(),
                        message: "the answer carried no attachment id".into(),
                    })?;
                    return Ok(format!("{ticket}:{id}"));
                }
                Ok(answer) => {
                    let message = describe_error_body(&answer.body);
                    return Err(match answer.status.as_u16() {
                        413 | 422 => Error::data(
                            ObjectKind::Attachment,
                            &attachment.id,
                            format!(
                                "Zoho Desk refused '{}' ({size} bytes) for ticket {ticket}: {message}",
                                attachment.file_name
                            ),
                        ),
                        _ => api_error(endpoint, &answer),
                    });
                }
                Err(Error::Transport {
                    ambiguous: true, ..
                }) if attempt < self.ambiguous_attempts() => {
                    // The upload may have landed: look for a file of the same name and size.
                    let found = self
                        .attachment_on_ticket(&ticket, &attachment.file_name, size)
                        .await?;
                    if let Some(id) = found {
                        return Ok(id);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("the last attempt always returns")
    }

    async fn find_attachment(
        &self,
        parent_kind: ObjectKind,
        parent_dest_id: &str,
        attachment: &AttachmentRef,
        size: u64,
    ) -> Result<Option<String>> {
        let ticket = self
            .ticket_of_attachment_parent(parent_kind, parent_dest_id)
            .await?;
        self.attachment_on_ticket(&ticket, &attachment.file_name, size)
            .await
    }

    async fn delete(&self, kind: ObjectKind, dest_id: &str) -> Result<()> {
        match kind {
            ObjectKind::Account => self.trash(kind, dest_id, "accounts", "accountIds").await,
            ObjectKind::Contact => self.trash(kind, dest_id, "contacts", "contactIds").await,
            ObjectKind::Ticket => self.trash(kind, dest_id, "tickets", "ticketIds").await,
            ObjectKind::Task => self.trash(kind, dest_id, "tasks", "entityIds").await,
            ObjectKind::Activity => self.delete_child(kind, dest_id, "comments").await,
            ObjectKind::Attachment => self.delete_child(kind, dest_id, "attachments").await,
            other => Err(Error::Config(format!(
                "the Zoho Desk destination does not write {other} records, so it cannot delete them"
            ))),
        }
    }

    async fn read_back(
        &self,
        kind: ObjectKind,
        dest_id: &str,
    ) -> Result<Option<BTreeMap<String, String>>> {
        let mut out = BTreeMap::new();
        fn put(out: &mut BTreeMap<String, String>, name: &str, v: Option<String>) {
            if let Some(v) = v {
                out.insert(name.to_string(), v);
            }
        }
        match kind {
            ObjectKind::Account => {
                digits(kind, dest_id)?;
                let Some(v) = self
                    .get_record(
                        "GET /accounts/{accountId}",
                        &format!("/accounts/{dest_id}"),
                        &[],
                    )
                    .await?
                else {
                    return Ok(None);
                };
                for (name, key) in [
                    ("name", "accountName"),
                    ("phone", "phone"),
                    ("email", "email"),
                    ("website", "website"),
                    ("street", "street"),
                    ("city", "city"),
                    ("state", "state"),
                    ("zip", "code"),
                    ("country", "country"),
                    ("description", "description"),
                ] {
                    put(&mut out, name, s(&v, key));
                }
                self.read_custom(kind, &v, &mut out).await?;
            }
            ObjectKind::Contact => {
                digits(kind, dest_id)?;
                let Some(v) = self
                    .get_record(
                        "GET /contacts/{contactId}",
                        &format!("/contacts/{dest_id}"),
                        &[],
                    )
                    .await?
                else {
                    return Ok(None);
                };
                for (name, key) in [
                    ("first_name", "firstName"),
                    ("last_name", "lastName"),
                    ("email", "email"),
                    ("phone", "phone"),
                    ("mobile", "mobile"),
                    ("account", "accountId"),
                ] {
                    put(&mut out, name, s(&v, key));
                }
                self.read_custom(kind, &v, &mut out).await?;
            }
            ObjectKind::Ticket => {
                digits(kind, dest_id)?;
                let query = [("include", "assignee".to_string())];
                let Some(v) = self
                    .get_record(
                        "GET /tickets/{ticketId}",
                        &format!("/tickets/{dest_id}"),
                        &query,
                    )
                    .await?
                else {
                    return Ok(None);
                };
                for (name, key) in [
                    ("subject", "subject"),
                    ("status", "status"),
                    ("priority", "priority"),
                    ("contact", "contactId"),
                    ("due_date", "dueDate"),
                    ("channel", "channel"),
                    ("category", "category"),
                    // Conversation size: rollback compares it with what the migration wrote.
                    ("comment_count", "commentCount"),
                    ("thread_count", "threadCount"),
                ] {
                    put(&mut out, name, s(&v, key));
                }
                if let Some(dep) = s(&v, "departmentId") {
                    put(&mut out, "department", self.department_name(&dep).await?);
                }
                let mut assignee = v
                    .get("assignee")
                    .and_then(|a| s(a, "email").or_else(|| s(a, "emailId")));
                if assignee.is_none()
                    && let Some(id) = s(&v, "assigneeId")
                {
                    assignee = self.agent_email(&id).await?;
                }
                put(&mut out, "assignee_email", assignee);
                self.read_custom(kind, &v, &mut out).await?;
            }
            ObjectKind::Activity => {
                let (ticket, comment) = split_child(kind, dest_id)?;
                let Some(v) = self
                    .get_record(
                        "GET /tickets/{ticketId}/comments/{commentId}",
                        &format!("/tickets/{ticket}/comments/{comment}"),
                        &[],
                    )
                    .await?
                else {
                    return Ok(None);
                };
                let content = v.get("content").and_then(Value::as_str).unwrap_or("");
                out.insert("body_html".into(), strip_provenance(content));
                put(
                    &mut out,
                    "public",
                    v.get("isPublic")
                        .and_then(Value::as_bool)
                        .map(|b| b.to_string()),
                );
            }
            ObjectKind::Task => {
                digits(kind, dest_id)?;
                let Some(v) = self
                    .get_record("GET /tasks/{taskId}", &format!("/tasks/{dest_id}"), &[])
                    .await?
                else {
                    return Ok(None);
                };
                for (name, key) in [
                    ("subject", "subject"),
                    ("status", "status"),
                    ("due_date", "dueDate"),
                    ("priority", "priority"),
                ] {
                    put(&mut out, name, s(&v, key));
                }
                if let Some(owner) = s(&v, "ownerId") {
                    put(&mut out, "owner_email", self.agent_email(&owner).await?);
                }
                self.read_custom(kind, &v, &mut out).await?;
            }
            ObjectKind::Attachment => {
                let (ticket, att) = split_child(kind, dest_id)?;
                let mut found = None;
                self.client
                    .list_all(
                        "GET /tickets/{ticketId}/attachments",
                        &format!("/tickets/{ticket}/attachments"),
                        &[],
                        100,
                        |items| {
                            found = items
                                .into_iter()
                                .find(|a| id_of(a).as_deref() == Some(att.as_str()));
                            found.is_none()
                        },
                    )
                    .await?;
                let Some(a) = found else { return Ok(None) };
                put(&mut out, "file_name", s(&a, "name"));
                put(&mut out, "size", s(&a, "size"));
            }
            _ => return Ok(None),
        }
        Ok(Some(out))
    }

    async fn count(&self, kind: ObjectKind) -> Result<Option<u64>> {
        let (endpoint, path, limit) = match kind {
            ObjectKind::Account => ("GET /accounts", "/accounts", 99),
            ObjectKind::Contact => ("GET /contacts", "/contacts", 99),
            ObjectKind::Ticket => ("GET /tickets", "/tickets", 100),
            ObjectKind::Task => ("GET /tasks", "/tasks", 99),
            // Comments would cost one call per ticket or more.
            _ => return Ok(None),
        };
        Ok(Some(self.client.count_all(endpoint, path, limit).await?))
    }

    fn spend(&self) -> Spend {
        self.client.spend()
    }
}
