//! The canonical helpdesk model: what every source is mapped into and every destination loads from.
//!
//! Sources hand over [`RawRecord`]s in their own field names; the approved field map
//! ([`crate::mapping::FieldMap`]) turns them into [`CanonicalRecord`]s; destinations load those.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The kinds of helpdesk object the engine knows, in load (dependency) order where it matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Agent,
    Group,
    Account,
    Contact,
    Ticket,
    Activity,
    Task,
    Attachment,
    Workflow,
    View,
    ChangeHistory,
}

impl ObjectKind {
    pub const ALL: [ObjectKind; 11] = [
        ObjectKind::Agent,
        ObjectKind::Group,
        ObjectKind::Account,
        ObjectKind::Contact,
        ObjectKind::Ticket,
        ObjectKind::Activity,
        ObjectKind::Task,
        ObjectKind::Attachment,
        ObjectKind::Workflow,
        ObjectKind::View,
        ObjectKind::ChangeHistory,
    ];

    /// Kinds written to the destination by the load phase, in dependency order.
    pub const LOADED: [ObjectKind; 5] = [
        ObjectKind::Account,
        ObjectKind::Contact,
        ObjectKind::Ticket,
        ObjectKind::Activity,
        ObjectKind::Task,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Agent => "agent",
            ObjectKind::Group => "group",
            ObjectKind::Account => "account",
            ObjectKind::Contact => "contact",
            ObjectKind::Ticket => "ticket",
            ObjectKind::Activity => "activity",
            ObjectKind::Task => "task",
            ObjectKind::Attachment => "attachment",
            ObjectKind::Workflow => "workflow",
            ObjectKind::View => "view",
            ObjectKind::ChangeHistory => "change_history",
        }
    }

    pub fn parse(s: &str) -> Option<ObjectKind> {
        ObjectKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Field types as sources describe them (the Ivinex vocabulary, which Zoho's maps onto).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    Textarea,
    Number,
    Decimal,
    Date,
    Datetime,
    Dropdown,
    Multiselect,
    Checkbox,
    Email,
    Phone,
    Url,
    UserLink,
    LinkedRecord,
    Other(String),
}

impl FieldType {
    pub fn parse(s: &str) -> FieldType {
        match s.to_ascii_lowercase().as_str() {
            "text" | "string" => FieldType::Text,
            "textarea" => FieldType::Textarea,
            "number" | "integer" => FieldType::Number,
            "decimal" | "currency" | "percent" => FieldType::Decimal,
            "date" => FieldType::Date,
            "datetime" => FieldType::Datetime,
            "dropdown" | "picklist" => FieldType::Dropdown,
            "multiselect" => FieldType::Multiselect,
            "checkbox" | "boolean" => FieldType::Checkbox,
            "email" => FieldType::Email,
            "phone" => FieldType::Phone,
            "url" => FieldType::Url,
            "user_link" => FieldType::UserLink,
            "linked_record" | "lookup" => FieldType::LinkedRecord,
            other => FieldType::Other(other.to_string()),
        }
    }
}

/// One field of a source collection, as discovered (Ivinex GetFields, Zoho /fields).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldDef {
    pub name: String,
    pub label: String,
    pub field_type: FieldType,
    #[serde(default)]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// For linked_record / user_link fields: the collection linked to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked_collection: Option<String>,
    /// Custom (tenant-defined) as opposed to built-in.
    #[serde(default)]
    pub custom: bool,
}

/// A source collection (an Ivinex tab, a Zoho module) with its schema.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceCollection {
    pub name: String,
    /// The source's own id for it (Ivinex TabID), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_key: Option<String>,
    pub fields: Vec<FieldDef>,
}

impl SourceCollection {
    /// An empty field list is how a source says the API user may not read the collection.
    pub fn readable(&self) -> bool {
        !self.fields.is_empty()
    }

    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.name == name)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceSchema {
    pub collections: Vec<SourceCollection>,
}

impl SourceSchema {
    pub fn collection(&self, name: &str) -> Option<&SourceCollection> {
        self.collections.iter().find(|c| c.name == name)
    }
}

/// An attachment as listed on a source record; the binary is fetched separately.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AttachmentRef {
    /// Stable id within the source (derived from the URL where the source has none).
    pub id: String,
    pub file_name: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    /// Referenced by an `<img>` in the record's body rather than listed as a file by the source.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inline: bool,
}

/// A record exactly as the source gave it, keyed by the source's field names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RawRecord {
    pub collection: String,
    pub id: String,
    pub fields: serde_json::Map<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentRef>,
    /// Creation and modification time, UTC ISO-8601 (already converted from the source's zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_at: Option<String>,
    /// The source's own modification stamp (for delta cursors), in the source's format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor_value: Option<String>,
}

/// Custom field values keyed by the destination custom field's label (from the approved map).
pub type CustomValues = BTreeMap<String, CustomValue>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CustomValue {
    Bool(bool),
    Number(f64),
    Text(String),
    List(Vec<String>),
}

impl CustomValue {
    pub fn as_text(&self) -> String {
        match self {
            CustomValue::Bool(b) => b.to_string(),
            CustomValue::Number(n) => {
                if n.fract() == 0.0 && n.abs() < 1e15 {
                    format!("{}", *n as i64)
                } else {
                    n.to_string()
                }
            }
            CustomValue::Text(s) => s.clone(),
            CustomValue::List(v) => v.join(";"),
        }
    }
}

/// Who did something in the source, as far as the source tells.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Person {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Person {
    pub fn display(&self) -> String {
        match (&self.name, &self.email, &self.username) {
            (Some(n), Some(e), _) => format!("{n} <{e}>"),
            (Some(n), None, _) => n.clone(),
            (None, Some(e), _) => e.clone(),
            (None, None, Some(u)) => u.clone(),
            _ => "unknown".to_string(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    pub source_id: String,
    pub username: Option<String>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub active: bool,
    pub groups: Vec<String>,
    pub role: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub source_id: String,
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub website: Option<String>,
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
    pub country: Option<String>,
    pub description: Option<String>,
    pub custom: CustomValues,
    pub attachments: Vec<AttachmentRef>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    pub source_id: String,
    pub first_name: Option<String>,
    pub last_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub mobile: Option<String>,
    /// Source id of the account.
    pub account: Option<String>,
    pub custom: CustomValues,
    pub attachments: Vec<AttachmentRef>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    pub source_id: String,
    pub subject: String,
    pub description_html: Option<String>,
    /// Destination status value (already mapped).
    pub status: Option<String>,
    pub priority: Option<String>,
    /// Destination department name (already mapped).
    pub department: Option<String>,
    pub assignee: Option<Person>,
    /// Source ids.
    pub contact: Option<String>,
    pub account: Option<String>,
    pub channel: Option<String>,
    pub due_date: Option<String>,
    pub category: Option<String>,
    pub sub_category: Option<String>,
    /// Product name (Zoho Desk products; JSM components).
    pub product: Option<String>,
    pub tags: Vec<String>,
    /// Source ids of tickets this one refers to (merged, related, parent in another department).
    #[serde(default)]
    pub related_tickets: Vec<String>,
    pub created_at: Option<String>,
    pub modified_at: Option<String>,
    pub created_by: Option<Person>,
    pub custom: CustomValues,
    pub attachments: Vec<AttachmentRef>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ActivityKind {
    Email {
        inbound: bool,
        from: Option<String>,
        to: Vec<String>,
        cc: Vec<String>,
        subject: Option<String>,
    },
    Call {
        disposition: Option<String>,
        duration_secs: Option<u64>,
    },
    Note,
}

impl ActivityKind {
    /// What the activity was, in words, for provenance lines (e.g. `Call, disposition Voicemail,
    /// duration 3m07s`).
    pub fn describe(&self) -> String {
        match self {
            ActivityKind::Email {
                inbound,
                from,
                to,
                cc,
                subject,
            } => {
                let mut s = if *inbound {
                    "Inbound email".to_string()
                } else {
                    "Outbound email".to_string()
                };
                if let Some(f) = from {
                    s.push_str(&format!(" from {f}"));
                }
                if !to.is_empty() {
                    s.push_str(&format!(" to {}", to.join(", ")));
                }
                if !cc.is_empty() {
                    s.push_str(&format!(", cc {}", cc.join(", ")));
                }
                if let Some(subj) = subject.as_deref().filter(|s| !s.is_empty()) {
                    s.push_str(&format!(", subject \"{subj}\""));
                }
                s
            }
            ActivityKind::Call {
                disposition,
                duration_secs,
            } => {
                let mut s = "Call".to_string();
                if let Some(d) = disposition {
                    s.push_str(&format!(", disposition {d}"));
                }
                if let Some(secs) = duration_secs {
                    s.push_str(&format!(", duration {}m{:02}s", secs / 60, secs % 60));
                }
                s
            }
            ActivityKind::Note => "Note".to_string(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    pub source_id: String,
    /// Source id of the ticket it belongs to.
    pub ticket: String,
    pub kind: ActivityKind,
    pub body_html: String,
    pub author: Option<Person>,
    pub created_at: Option<String>,
    pub public: bool,
    pub custom: CustomValues,
    pub attachments: Vec<AttachmentRef>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub source_id: String,
    /// Source id of the parent ticket; None for an orphan task.
    pub ticket: Option<String>,
    pub subject: String,
    pub description: Option<String>,
    pub due_date: Option<String>,
    pub status: Option<String>,
    pub priority: Option<String>,
    pub owner: Option<Person>,
    pub department: Option<String>,
    pub created_at: Option<String>,
    pub custom: CustomValues,
}

/// What the load phase hands a destination.
// Records are handled one at a time, so the variants' size difference costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CanonicalRecord {
    Account(Account),
    Contact(Contact),
    Ticket(Ticket),
    Activity(Activity),
    Task(Task),
}

impl CanonicalRecord {
    pub fn kind(&self) -> ObjectKind {
        match self {
            CanonicalRecord::Account(_) => ObjectKind::Account,
            CanonicalRecord::Contact(_) => ObjectKind::Contact,
            CanonicalRecord::Ticket(_) => ObjectKind::Ticket,
            CanonicalRecord::Activity(_) => ObjectKind::Activity,
            CanonicalRecord::Task(_) => ObjectKind::Task,
        }
    }

    pub fn source_id(&self) -> &str {
        match self {
            CanonicalRecord::Account(r) => &r.source_id,
            CanonicalRecord::Contact(r) => &r.source_id,
            CanonicalRecord::Ticket(r) => &r.source_id,
            CanonicalRecord::Activity(r) => &r.source_id,
            CanonicalRecord::Task(r) => &r.source_id,
        }
    }

    pub fn attachments(&self) -> &[AttachmentRef] {
        match self {
            CanonicalRecord::Account(r) => &r.attachments,
            CanonicalRecord::Contact(r) => &r.attachments,
            CanonicalRecord::Ticket(r) => &r.attachments,
            CanonicalRecord::Activity(r) => &r.attachments,
            CanonicalRecord::Task(_) => &[],
        }
    }

    /// The records this one points at, which must be loaded first: (kind, source id).
    pub fn references(&self) -> Vec<(ObjectKind, String)> {
        let mut out = Vec::new();
        match self {
            CanonicalRecord::Account(_) => {}
            CanonicalRecord::Contact(c) => {
                if let Some(a) = &c.account {
                    out.push((ObjectKind::Account, a.clone()));
                }
            }
            CanonicalRecord::Ticket(t) => {
                if let Some(c) = &t.contact {
                    out.push((ObjectKind::Contact, c.clone()));
                }
                if let Some(a) = &t.account {
                    out.push((ObjectKind::Account, a.clone()));
                }
            }
            CanonicalRecord::Activity(a) => out.push((ObjectKind::Ticket, a.ticket.clone())),
            CanonicalRecord::Task(t) => {
                if let Some(p) = &t.ticket {
                    out.push((ObjectKind::Ticket, p.clone()));
                }
            }
        }
        out
    }

    /// A stable hash of the record's content, used to skip unchanged records in deltas.
    pub fn content_hash(&self) -> String {
        crate::util::sha256_hex(&serde_json::to_vec(self).unwrap_or_default())
    }
}

/// Destination ids of the records a canonical record references, resolved through the crosswalk.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Resolved {
    pub ids: BTreeMap<String, String>,
}

impl Resolved {
    pub fn key(kind: ObjectKind, source_id: &str) -> String {
        format!("{kind}:{source_id}")
    }
    pub fn get(&self, kind: ObjectKind, source_id: &str) -> Option<&str> {
        self.ids
            .get(&Self::key(kind, source_id))
            .map(String::as_str)
    }
    pub fn insert(&mut self, kind: ObjectKind, source_id: &str, dest_id: String) {
        self.ids.insert(Self::key(kind, source_id), dest_id);
    }
}

/// A written flag: something a person must look at (a record kept but changed, or a limit met).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    pub kind: ObjectKind,
    pub source_id: String,
    pub code: String,
    pub message: String,
}
