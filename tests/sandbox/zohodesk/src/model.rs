//! In-memory tenant state: records are JSON objects in the API's own shapes, keyed by numeric id.
//! Keys starting with `_` are sandbox bookkeeping and are never sent through the public API.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use bytes::Bytes;
use md5::{Digest, Md5};
use serde_json::{Map, Value, json};

pub type Rec = Map<String, Value>;

/// Stored bytes of an attachment or upload, next to its API metadata.
#[derive(Clone, Debug)]
pub struct Blob {
    pub meta: Rec,
    pub bytes: Bytes,
}

impl Blob {
    pub fn md5(&self) -> String {
        hex::encode(Md5::digest(&self.bytes))
    }
}

/// Every record kind the sandbox stores; the names are those of `/__sandbox/records/{kind}`.
pub const KINDS: &[&str] = &[
    "organizations",
    "departments",
    "agents",
    "accounts",
    "contacts",
    "tickets",
    "threads",
    "comments",
    "tasks",
    "products",
    "fields",
    "tags",
    "attachments",
    "uploads",
];

#[derive(Default)]
pub struct Db {
    pub next_id: u64,
    pub next_ticket_number: u64,
    pub org: Rec,
    pub departments: BTreeMap<u64, Rec>,
    pub agents: BTreeMap<u64, Rec>,
    pub accounts: BTreeMap<u64, Rec>,
    pub contacts: BTreeMap<u64, Rec>,
    pub tickets: BTreeMap<u64, Rec>,
    pub threads: BTreeMap<u64, Rec>,
    pub comments: BTreeMap<u64, Rec>,
    pub tasks: BTreeMap<u64, Rec>,
    pub products: BTreeMap<u64, Rec>,
    pub fields: BTreeMap<u64, Rec>,
    /// Tag records: {id, name, _departmentId}.
    pub tags: BTreeMap<u64, Rec>,
    /// Ticket, thread and comment attachments; `_parent` says which.
    pub attachments: BTreeMap<u64, Blob>,
    pub uploads: BTreeMap<u64, Blob>,
    /// Threads and comments by ticket, for the per-ticket lists (see [`Db::children`]).
    pub thread_index: ChildIndex,
    pub comment_index: ChildIndex,
}

/// Record ids by `_ticketId`, rebuilt when its table has changed since (a record's ticket never
/// changes after its insert, so only inserts and removals make the index stale).
#[derive(Default)]
pub struct ChildIndex {
    /// (records, highest id, next id) of the table when the index was built.
    built_at: Option<(usize, Option<u64>, u64)>,
    by_ticket: HashMap<String, Vec<u64>>,
}

pub const ID_BASE: u64 = 1_892_000_000_100_000;

impl Db {
    pub fn new(org_id: &str, edition: &str) -> Db {
        let mut db = Db {
            next_id: ID_BASE,
            next_ticket_number: 101,
            ..Default::default()
        };
        db.org = organization(org_id, edition);
        db
    }

    /// Ids of the threads or comments (`kind`) of `ticket`, ascending; each still to be checked
    /// against the table (a record removed and another inserted between two calls can leave the
    /// count and the highest id as they were).
    pub fn children(&mut self, kind: &str, ticket: &str) -> Vec<u64> {
        let (table, index) = match kind {
            "threads" => (&self.threads, &mut self.thread_index),
            _ => (&self.comments, &mut self.comment_index),
        };
        let at = (table.len(), table.keys().next_back().copied(), self.next_id);
        if index.built_at != Some(at) {
            index.by_ticket.clear();
            for (id, r) in table {
                if let Some(t) = r.get("_ticketId").and_then(Value::as_str) {
                    index.by_ticket.entry(t.to_string()).or_default().push(*id);
                }
            }
            index.built_at = Some(at);
        }
        index.by_ticket.get(ticket).cloned().unwrap_or_default()
    }

    pub fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Keeps generated ids above any id that arrived from outside.
    pub fn bump(&mut self, id: u64) {
        if id >= self.next_id {
            self.next_id = id + 1;
        }
    }

    pub fn map(&self, kind: &str) -> Option<&BTreeMap<u64, Rec>> {
        Some(match kind {
            "departments" => &self.departments,
            "agents" => &self.agents,
            "accounts" => &self.accounts,
            "contacts" => &self.contacts,
            "tickets" => &self.tickets,
            "threads" => &self.threads,
            "comments" => &self.comments,
            "tasks" => &self.tasks,
            "products" => &self.products,
            "fields" => &self.fields,
            "tags" => &self.tags,
            _ => return None,
        })
    }

    pub fn map_mut(&mut self, kind: &str) -> Option<&mut BTreeMap<u64, Rec>> {
        Some(match kind {
            "departments" => &mut self.departments,
            "agents" => &mut self.agents,
            "accounts" => &mut self.accounts,
            "contacts" => &mut self.contacts,
            "tickets" => &mut self.tickets,
            "threads" => &mut self.threads,
            "comments" => &mut self.comments,
            "tasks" => &mut self.tasks,
            "products" => &mut self.products,
            "fields" => &mut self.fields,
            "tags" => &mut self.tags,
            _ => return None,
        })
    }

    /// A live (not trashed) record.
    pub fn live<'a>(&'a self, kind: &str, id: &str) -> Option<&'a Rec> {
        let id: u64 = id.parse().ok()?;
        self.map(kind)?.get(&id).filter(|r| !is_trashed(r))
    }

    pub fn default_department(&self) -> Option<u64> {
        self.departments
            .iter()
            .find(|(_, d)| d.get("isDefault") == Some(&Value::Bool(true)))
            .or_else(|| self.departments.iter().next())
            .map(|(id, _)| *id)
    }

    pub fn admin_agent(&self) -> Option<&Rec> {
        self.agents
            .values()
            .find(|a| a.get("rolePermissionType").and_then(Value::as_str) == Some("Admin"))
            .or_else(|| self.agents.values().next())
    }

    /// The whole state, including trashed records, full thread bodies and blob checksums.
    pub fn dump(&self) -> Value {
        let mut out = Map::new();
        out.insert("organizations".into(), json!([self.org]));
        for kind in KINDS {
            if let Some(m) = self.map(kind) {
                out.insert(
                    (*kind).into(),
                    Value::Array(m.values().cloned().map(Value::Object).collect()),
                );
            }
        }
        out.insert(
            "attachments".into(),
            Value::Array(self.attachments.values().map(blob_dump).collect()),
        );
        out.insert(
            "uploads".into(),
            Value::Array(self.uploads.values().map(blob_dump).collect()),
        );
        Value::Object(out)
    }

    pub fn records(&self, kind: &str) -> Option<Value> {
        match kind {
            "organizations" => Some(json!([self.org])),
            "attachments" => Some(Value::Array(
                self.attachments.values().map(blob_dump).collect(),
            )),
            "uploads" => Some(Value::Array(self.uploads.values().map(blob_dump).collect())),
            _ => self
                .map(kind)
                .map(|m| Value::Array(m.values().cloned().map(Value::Object).collect())),
        }
    }
}

fn blob_dump(b: &Blob) -> Value {
    let mut m = b.meta.clone();
    m.insert("size".into(), json!(b.bytes.len()));
    m.insert("md5".into(), json!(b.md5()));
    Value::Object(m)
}

pub fn is_trashed(r: &Rec) -> bool {
    r.get("isTrashed") == Some(&Value::Bool(true))
}

/// Keys that are display constants for most records; stored only when they differ from the default,
/// which keeps a 10,000-ticket tenant's memory in check.
const PRESENTATIONAL: &[(&str, &[&str])] = &[
    (
        "tickets",
        &[
            "approvalCount",
            "timeEntryCount",
            "followerCount",
            "sharedCount",
            "isOverDue",
            "isResponseOverdue",
            "isEscalated",
            "isArchived",
            "isDeleted",
            "isFollowing",
            "isRead",
            "isTrashed",
            "sentiment",
            "relationshipType",
            "layoutId",
            "layoutDetails",
            "source",
            "sharedDepartments",
            "secondaryContacts",
            "entitySkills",
            "channelRelatedInfo",
            "contractId",
            "slaId",
            "channelCode",
            "classification",
            "responseDueDate",
            "onholdTime",
            "language",
            "resolution",
        ],
    ),
    (
        "threads",
        &[
            "canReply",
            "status",
            "source",
            "channelRelatedInfo",
            "actions",
            "lastRatingIconURL",
            "respondedIn",
            "replyTo",
            "bcc",
            "cc",
            "contentType",
            "responderId",
        ],
    ),
    (
        "contacts",
        &[
            "secondaryEmail",
            "type",
            "title",
            "description",
            "street",
            "city",
            "state",
            "zip",
            "country",
            "facebook",
            "twitter",
            "photoURL",
            "isAnonymous",
            "isEndUser",
            "isDeleted",
            "isTrashed",
            "isFollowing",
            "zohoCRMContact",
            "customerHappiness",
            "mobile",
        ],
    ),
    (
        "accounts",
        &[
            "fax",
            "industry",
            "description",
            "street",
            "city",
            "state",
            "code",
            "country",
            "annualrevenue",
            "isDeleted",
            "isTrashed",
            "isFollowing",
            "associatedSLAIds",
            "zohoCRMAccount",
            "customerHappiness",
        ],
    ),
];

static DEFAULTS: LazyLock<HashMap<&'static str, Rec>> = LazyLock::new(|| {
    let full: [(&str, Rec); 4] = [
        ("tickets", crate::api_tickets::new_ticket(0, 0, "", None)),
        ("threads", crate::inspect::thread_defaults(0, "", "")),
        ("contacts", crate::api_core::new_contact(0, "", "", None)),
        ("accounts", crate::api_core::new_account(0, "", "", None)),
    ];
    full.into_iter()
        .map(|(kind, rec)| {
            let keys = PRESENTATIONAL
                .iter()
                .find(|(k, _)| *k == kind)
                .map(|(_, keys)| *keys)
                .unwrap_or_default();
            (
                kind,
                rec.into_iter()
                    .filter(|(k, _)| keys.contains(&k.as_str()))
                    .collect(),
            )
        })
        .collect()
});

/// Drops presentational keys that hold their default value and rebuilds the map at its exact size
/// (maps filled key by key keep up to twice the capacity they need).
pub fn compact(kind: &str, r: &mut Rec) {
    let defaults = DEFAULTS.get(kind);
    let rec = std::mem::take(r);
    *r = rec
        .into_iter()
        .filter(|(k, v)| defaults.is_none_or(|d| d.get(k) != Some(v)))
        .collect();
}

/// The stored record with the presentational defaults filled back in.
pub fn expand(kind: &str, r: &Rec) -> Rec {
    match DEFAULTS.get(kind) {
        Some(d) => {
            let mut out = d.clone();
            for (k, v) in r {
                out.insert(k.clone(), v.clone());
            }
            out
        }
        None => r.clone(),
    }
}

/// The record as the public API shows it: bookkeeping keys removed, defaults filled in.
pub fn public_of(kind: &str, r: &Rec) -> Rec {
    match DEFAULTS.get(kind) {
        Some(_) => public(&expand(kind, r)),
        None => public(r),
    }
}

/// The record as the public API shows it: bookkeeping keys removed.
pub fn public(r: &Rec) -> Rec {
    r.iter()
        .filter(|(k, _)| !k.starts_with('_'))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

pub fn s(r: &Rec, key: &str) -> Option<String> {
    match r.get(key)? {
        Value::String(v) => Some(v.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub fn id_of(r: &Rec) -> u64 {
    s(r, "id").and_then(|v| v.parse().ok()).unwrap_or(0)
}

// ---------- time ----------

/// ISO-8601 UTC with milliseconds, the format Zoho Desk answers with (`2016-05-25T10:06:09.686Z`).
pub fn iso(ts: jiff::Timestamp) -> String {
    let dt = ts.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.subsec_nanosecond() / 1_000_000
    )
}

pub fn now_iso() -> String {
    iso(jiff::Timestamp::now())
}

/// Accepts an ISO string or epoch milliseconds (both appear in the vendor's examples); answers ISO.
pub fn parse_time(v: &Value) -> Option<String> {
    match v {
        Value::String(t) if t.is_empty() => None,
        Value::String(t) => {
            if let Ok(ms) = t.parse::<i64>() {
                return jiff::Timestamp::from_millisecond(ms).ok().map(iso);
            }
            t.parse::<jiff::Timestamp>().ok().map(iso)
        }
        Value::Number(n) => jiff::Timestamp::from_millisecond(n.as_i64()?).ok().map(iso),
        _ => None,
    }
}

// ---------- defaults ----------

pub fn organization(org_id: &str, edition: &str) -> Rec {
    let v = json!({
        "id": org_id,
        "companyName": "Sandbox Desk Inc.",
        "alias": "Sandbox Desk",
        "portalName": "sandboxdesk",
        "portalURL": "https://desk.zoho.com/support/sandboxdesk/ShowHomePage.do",
        "customDomain": null,
        "edition": edition.to_ascii_uppercase(),
        "employeeCount": "10",
        "isAdminInOrg": true,
        "isDefault": "true",
        "isSandboxPortal": "false",
        "isPayloadEncryptionEnabled": "false",
        "description": "Local Zoho Desk sandbox.",
        "country": "United States",
        "state": "CA",
        "city": "Pleasanton",
        "street": "4141 Hacienda Drive",
        "zip": "94588",
        "fax": "",
        "mobile": "",
        "phoneNumber": "",
        "website": "www.example.com",
        "primaryContact": "admin@example.com",
        "currencyLocale": "US",
        "currencySymbol": "$",
        "currencyCode": "USD",
        "faviconURL": null,
        "logoURL": null,
    });
    v.as_object().cloned().unwrap_or_default()
}

pub fn department(
    id: u64,
    name: &str,
    is_default: bool,
    agent_ids: &[String],
    created: &str,
) -> Rec {
    let v = json!({
        "id": id.to_string(),
        "name": name,
        "nameInCustomerPortal": name,
        "description": null,
        "isDefault": is_default,
        "isEnabled": true,
        "isAssignToTeamEnabled": false,
        "isVisibleInCustomerPortal": true,
        "hasLogo": false,
        "chatStatus": "NOT_CREATED",
        "creatorId": agent_ids.first().cloned(),
        "createdTime": created,
        "associatedAgentIds": agent_ids,
    });
    v.as_object().cloned().unwrap_or_default()
}

pub fn agent(
    id: u64,
    first: &str,
    last: &str,
    email: &str,
    role: &str,
    dept_ids: &[String],
) -> Rec {
    let v = json!({
        "id": id.to_string(),
        "firstName": first,
        "lastName": last,
        "name": format!("{first} {last}").trim().to_string(),
        "emailId": email,
        "status": "ACTIVE",
        "isConfirmed": true,
        "rolePermissionType": role,
        "roleId": "1892000000056099",
        "profileId": "1892000000056091",
        "role": {"name": if role == "Admin" { "CEO" } else { "Agent" }, "id": "1892000000056099"},
        "profile": {"name": if role == "Admin" { "Administrator" } else { "Agent" }, "id": "1892000000056091"},
        "associatedDepartmentIds": dept_ids,
        "associatedDepartments": [],
        "associatedChatDepartmentIds": [],
        "associatedChatDepartments": [],
        "zuid": (id % 100_000_000).to_string(),
        "photoURL": null,
        "phone": "",
        "mobile": "",
        "extn": "",
        "langCode": "en_US",
        "countryCode": "en_US",
        "timeZone": "UTC",
        "channelExpert": [],
        "aboutInfo": "",
        "isZiaAgent": false,
    });
    v.as_object().cloned().unwrap_or_default()
}

/// System fields listed by `/organizationFields` next to the custom ones.
pub fn system_fields(
    module: &str,
) -> Vec<(&'static str, &'static str, &'static str, Vec<&'static str>)> {
    match module {
        "tickets" => vec![
            ("subject", "Subject", "Text", vec![]),
            ("departmentId", "Department", "LookUp", vec![]),
            ("contactId", "Contact Name", "LookUp", vec![]),
            ("email", "Email", "Email", vec![]),
            ("phone", "Phone", "Phone", vec![]),
            ("description", "Description", "Textarea", vec![]),
            (
                "status",
                "Status",
                "Picklist",
                vec!["Open", "On Hold", "Escalated", "Closed"],
            ),
            (
                "priority",
                "Priority",
                "Picklist",
                vec!["High", "Medium", "Low"],
            ),
            (
                "channel",
                "Channel",
                "Picklist",
                vec!["Phone", "Email", "Web", "Chat", "Forums"],
            ),
            ("category", "Category", "Picklist", vec![]),
            ("subCategory", "Sub Category", "Picklist", vec![]),
            ("dueDate", "Due Date", "DateTime", vec![]),
            ("assigneeId", "Ticket Owner", "LookUp", vec![]),
            (
                "classification",
                "Classifications",
                "Picklist",
                vec!["Question", "Problem", "Feature", "Others"],
            ),
        ],
        "contacts" => vec![
            ("firstName", "First Name", "Text", vec![]),
            ("lastName", "Last Name", "Text", vec![]),
            ("email", "Email", "Email", vec![]),
            ("phone", "Phone", "Phone", vec![]),
            ("mobile", "Mobile", "Phone", vec![]),
            ("accountId", "Account Name", "LookUp", vec![]),
        ],
        "accounts" => vec![
            ("accountName", "Account Name", "Text", vec![]),
            ("website", "Website", "URL", vec![]),
            ("phone", "Phone", "Phone", vec![]),
            ("email", "Email", "Email", vec![]),
        ],
        "tasks" => vec![
            ("subject", "Subject", "Text", vec![]),
            ("dueDate", "Due Date", "DateTime", vec![]),
            (
                "status",
                "Status",
                "Picklist",
                vec![
                    "Not Started",
                    "In Progress",
                    "Completed",
                    "Deferred",
                    "Waiting on someone else",
                ],
            ),
            (
                "priority",
                "Priority",
                "Picklist",
                vec!["High", "Highest", "Low", "Lowest", "Normal"],
            ),
        ],
        "products" => vec![
            ("productName", "Product Name", "Text", vec![]),
            ("productCode", "Product Code", "Text", vec![]),
        ],
        _ => vec![],
    }
}

// Each argument is an independent attribute of the field object; a struct would only rename them.
#[allow(clippy::too_many_arguments)]
pub fn field_record(
    id: u64,
    module: &str,
    api_name: &str,
    label: &str,
    ftype: &str,
    allowed: &[String],
    custom: bool,
    max_length: Option<u64>,
    departments: &[String],
) -> Rec {
    let mut v = json!({
        "id": id.to_string(),
        "apiName": api_name,
        "name": api_name,
        "displayLabel": label,
        "i18NLabel": label,
        "type": ftype,
        "maxLength": max_length.map(|m| m.to_string()),
        "isCustomField": custom,
        "isMandatory": false,
        "isEncryptedField": false,
        "isTrackLastActivityTime": false,
        "isSystemMandatory": false,
        "showToHelpCenter": true,
        "sourceType": if custom { "USERDEFINED" } else { "SYSTEM" },
        "associatedDepartments": departments,
        "_module": module,
    });
    if matches!(ftype, "Picklist" | "Multiselect") {
        v["allowedValues"] = Value::Array(allowed.iter().map(|a| json!({"value": a})).collect());
    }
    v.as_object().cloned().unwrap_or_default()
}

/// `cf_<snake_case_label>`, the apiName Zoho Desk gives a custom field.
pub fn cf_api_name(label: &str) -> String {
    let mut out = String::from("cf_");
    let mut last_us = true;
    for ch in label.chars() {
        if ch.is_ascii_alphanumeric() {
            out.push(ch.to_ascii_lowercase());
            last_us = false;
        } else if !last_us {
            out.push('_');
            last_us = true;
        }
    }
    while out.ends_with('_') && out.len() > 3 {
        out.pop();
    }
    out
}

pub fn status_type(status: &str) -> &'static str {
    match status.to_ascii_lowercase().as_str() {
        "closed" => "Closed",
        "on hold" => "On Hold",
        _ => "Open",
    }
}

/// A short plain-text snippet of an HTML body, as thread summaries carry.
pub fn summary_of(html: &str, max: usize) -> String {
    let text = strip_tags(html);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    text.chars().take(max).collect()
}

pub fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for ch in html.chars() {
        match ch {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(ch),
            _ => {}
        }
    }
    out.replace("&nbsp;", " ")
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

/// Cuts at a character boundary.
pub fn truncate_chars(text: &str, max: usize) -> (String, bool) {
    match text.char_indices().nth(max) {
        Some((byte, _)) => (text[..byte].to_string(), true),
        None => (text.to_string(), false),
    }
}
