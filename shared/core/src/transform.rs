//! Raw source records -> canonical records, driven by the approved field map.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::mapping::{CollectionMap, FieldMap, Target};
use crate::model::*;
use crate::util::local_to_utc;

/// What a transform produced, with the flags a person should see.
#[derive(Clone, Debug)]
pub struct Transformed {
    pub record: CanonicalRecord,
    pub flags: Vec<Flag>,
}

pub struct Transformer<'a> {
    map: &'a FieldMap,
    /// Source username -> person (from the users collection).
    users: BTreeMap<String, Person>,
    /// The source's timezone for zone-less date-times (None: values are already UTC).
    zone: Option<jiff::tz::TimeZone>,
    /// Looked-up collection -> record id -> how a value names it (see [`Lookups`]).
    lookups: Lookups,
}

/// Records of collections that fields look up without loading them: collection -> id -> name.
pub type Lookups = BTreeMap<String, BTreeMap<String, String>>;

/// How a looked-up record is named in a field: its name (or title, subject) and id.
pub fn lookup_name(raw: &RawRecord) -> String {
    let name = ["name", "Name", "title", "subject"]
        .iter()
        .filter_map(|k| raw.fields.get(*k))
        .map(value_text)
        .find(|t| !t.trim().is_empty());
    match name {
        Some(n) => format!("{} ({})", n.trim(), raw.id),
        None => raw.id.clone(),
    }
}

impl<'a> Transformer<'a> {
    pub fn new(
        map: &'a FieldMap,
        users: BTreeMap<String, Person>,
        zone: Option<jiff::tz::TimeZone>,
    ) -> Self {
        Transformer {
            map,
            users,
            zone,
            lookups: Lookups::new(),
        }
    }

    /// Names looked-up records in the fields that link them (see [`FieldMapping::linked_collection`]).
    pub fn with_lookups(mut self, lookups: Lookups) -> Self {
        self.lookups = lookups;
        self
    }

    pub fn map(&self) -> &FieldMap {
        self.map
    }

    fn person(&self, username: &str) -> Person {
        self.users.get(username).cloned().unwrap_or_else(|| Person {
            username: Some(username.to_string()),
            email: username.contains('@').then(|| username.to_string()),
            name: None,
        })
    }

    /// Turns a record of a users collection into an agent.
    pub fn agent(&self, raw: &RawRecord) -> Option<Agent> {
        let cm = self.map.for_kind(ObjectKind::Agent)?;
        let v = Values { cm, raw };
        Some(Agent {
            source_id: raw.id.clone(),
            username: v.text("username"),
            email: v.text("email").map(|e| e.to_ascii_lowercase()),
            first_name: v.text("first_name"),
            last_name: v.text("last_name"),
            active: v.text("active").map(|a| truthy(&a)).unwrap_or(true),
            groups: v.list("group"),
            role: v.text("role"),
        })
    }

    pub fn transform(&self, kind: ObjectKind, raw: &RawRecord) -> Result<Transformed> {
        let cm = self.map.for_kind(kind).ok_or_else(|| {
            Error::data(
                kind,
                &raw.id,
                "no collection of this kind is in the approved field map",
            )
        })?;
        let v = Values { cm, raw };
        let mut flags = Vec::new();
        let mut flag = |code: &str, message: String| {
            flags.push(Flag {
                kind,
                source_id: raw.id.clone(),
                code: code.to_string(),
                message,
            })
        };
        let custom = self.custom_values(cm, raw);
        let record = match kind {
            ObjectKind::Account => {
                let name = v.text("name").unwrap_or_default();
                if name.trim().is_empty() {
                    return Err(Error::data(
                        kind,
                        &raw.id,
                        "organization has no name; set one in the source or map another field to account name",
                    ));
                }
                CanonicalRecord::Account(Account {
                    source_id: raw.id.clone(),
                    name,
                    phone: v.text("phone"),
                    email: v.text("email"),
                    website: v.text("website"),
                    street: v.text("street"),
                    city: v.text("city"),
                    state: v.text("state"),
                    zip: v.text("zip"),
                    country: v.text("country"),
                    description: v.text("description"),
                    custom,
                    attachments: raw.attachments.clone(),
                })
            }
            ObjectKind::Contact => {
                let email = v.text("email");
                if email.is_none() {
                    flag(
                        "contact_without_email",
                        "contact has no email: review it before go-live".into(),
                    );
                }
                let last = v
                    .text("last_name")
                    .or_else(|| v.text("first_name"))
                    .or_else(|| {
                        email
                            .as_ref()
                            .map(|e| e.split('@').next().unwrap_or(e).to_string())
                    });
                let last_name = match last {
                    Some(l) => l,
                    None => {
                        flag(
                            "contact_without_name",
                            "contact has no name; migrated as \"(no name)\"".into(),
                        );
                        "(no name)".to_string()
                    }
                };
                CanonicalRecord::Contact(Contact {
                    source_id: raw.id.clone(),
                    first_name: v
                        .text("first_name")
                        .filter(|_| v.text("last_name").is_some()),
                    last_name,
                    email,
                    phone: v.text("phone"),
                    mobile: v.text("mobile"),
                    account: v.text("account"),
                    custom,
                    attachments: raw.attachments.clone(),
                })
            }
            ObjectKind::Ticket => {
                let assignee = v.text("assignee").map(|u| self.person(&u));
                if let Some(a) = &assignee
                    && a.email.is_none()
                {
                    flag(
                        "assignee_unknown",
                        format!("assignee {} has no known email", a.display()),
                    );
                }
                let subject = v
                    .text("subject")
                    .filter(|s| !s.trim().is_empty())
                    .unwrap_or_else(|| {
                        flag(
                            "ticket_without_subject",
                            "ticket has no subject; migrated as \"(no subject)\"".into(),
                        );
                        "(no subject)".to_string()
                    });
                CanonicalRecord::Ticket(Ticket {
                    source_id: raw.id.clone(),
                    subject,
                    description_html: v.text("description"),
                    status: v.mapped("status"),
                    priority: v.mapped("priority"),
                    department: v.mapped("department"),
                    assignee,
                    contact: v.text("contact"),
                    account: v.text("account"),
                    channel: v.mapped("channel"),
                    due_date: v.text("due_date").map(|d| d.chars().take(10).collect()),
                    category: v.text("category"),
                    sub_category: v.text("sub_category"),
                    product: v.text("product"),
                    tags: v.list("tags"),
                    related_tickets: v.list("related_tickets"),
                    created_at: raw.created_at.clone(),
                    modified_at: raw.modified_at.clone(),
                    created_by: raw
                        .fields
                        .get("created_by")
                        .and_then(Value::as_str)
                        .map(|u| self.person(u)),
                    custom,
                    attachments: raw.attachments.clone(),
                })
            }
            ObjectKind::Activity => {
                let ticket = v.text("ticket").ok_or_else(|| {
                    Error::data(
                        kind,
                        &raw.id,
                        "activity is linked to no ticket; it cannot become a ticket thread",
                    )
                })?;
                let kind_value = v.mapped("type").unwrap_or_else(|| "note".into());
                let activity_kind = match kind_value.as_str() {
                    "email" => {
                        let cc = split_addresses(v.text("cc"));
                        if !cc.is_empty() {
                            flag(
                                "email_cc",
                                format!(
                                    "email had CC recipients ({}); kept in the provenance line",
                                    cc.join(", ")
                                ),
                            );
                        }
                        ActivityKind::Email {
                            inbound: v.mapped("direction").as_deref() != Some("outbound"),
                            from: v.text("from"),
                            to: split_addresses(v.text("to")),
                            cc,
                            subject: v.text("email_subject"),
                        }
                    }
                    "call" => ActivityKind::Call {
                        disposition: v.text("disposition"),
                        duration_secs: v
                            .text("duration")
                            .and_then(|d| d.parse::<f64>().ok())
                            .map(|d| d as u64),
                    },
                    _ => ActivityKind::Note,
                };
                // A source that says who may see an activity is followed; otherwise emails are public.
                let public = match v.text("public") {
                    Some(p) => truthy(&p) || p.eq_ignore_ascii_case("public"),
                    None => matches!(activity_kind, ActivityKind::Email { .. }),
                };
                CanonicalRecord::Activity(Activity {
                    source_id: raw.id.clone(),
                    ticket,
                    kind: activity_kind,
                    body_html: v.text("body").unwrap_or_default(),
                    // Someone not among the agents (a customer) keeps the name the source gives.
                    author: raw
                        .fields
                        .get("created_by")
                        .and_then(Value::as_str)
                        .map(|u| {
                            let mut p = self.person(u);
                            if p.name.is_none() {
                                p.name = v.text("author_name");
                            }
                            p
                        }),
                    created_at: raw.created_at.clone(),
                    public,
                    custom,
                    attachments: raw.attachments.clone(),
                })
            }
            ObjectKind::Task => {
                let ticket = v.text("ticket");
                if ticket.is_none() {
                    flag(
                        "orphan_task",
                        "task has no ticket: migrated standalone".into(),
                    );
                }
                CanonicalRecord::Task(Task {
                    source_id: raw.id.clone(),
                    ticket,
                    subject: v.text("subject").unwrap_or_else(|| "(no subject)".into()),
                    description: v.text("description"),
                    due_date: v.text("due_date").map(|d| d.chars().take(10).collect()),
                    status: v.mapped("status"),
                    priority: v.mapped("priority"),
                    owner: v.text("owner").map(|u| self.person(&u)),
                    department: None,
                    created_at: raw.created_at.clone(),
                    custom,
                })
            }
            other => {
                return Err(Error::data(
                    other,
                    &raw.id,
                    "this kind is documented, not loaded",
                ));
            }
        };
        Ok(Transformed { record, flags })
    }

    fn custom_values(&self, cm: &CollectionMap, raw: &RawRecord) -> CustomValues {
        let mut out = CustomValues::new();
        for f in &cm.fields {
            let Target::Custom {
                label, field_type, ..
            } = &f.target
            else {
                continue;
            };
            let Some(value) = raw.fields.get(&f.source) else {
                continue;
            };
            if let Some(records) = f
                .linked_collection
                .as_ref()
                .and_then(|c| self.lookups.get(c))
            {
                let name = |id: &Value| {
                    let id = value_text(id);
                    records.get(&id).cloned().unwrap_or(id)
                };
                let names: Vec<String> = match value {
                    Value::Array(items) => items.iter().map(name).collect(),
                    Value::Null => continue,
                    v => vec![name(v)],
                };
                let names: Vec<String> = names.into_iter().filter(|n| !n.is_empty()).collect();
                if !names.is_empty() {
                    out.insert(label.clone(), CustomValue::Text(names.join(", ")));
                }
                continue;
            }
            let text = value_text(value);
            let cv = match (&f.source_type, value) {
                (_, Value::Null) => continue,
                (_, Value::Array(items)) => CustomValue::List(
                    items
                        .iter()
                        .map(value_text)
                        .filter(|s| !s.is_empty())
                        .collect(),
                ),
                (FieldType::Checkbox, _) => CustomValue::Bool(truthy(&text)),
                (FieldType::Number | FieldType::Decimal, _) => match text.parse::<f64>() {
                    Ok(n) => CustomValue::Number(n),
                    Err(_) if text.is_empty() => continue,
                    Err(_) => CustomValue::Text(text),
                },
                (FieldType::UserLink, _) if !text.is_empty() => {
                    CustomValue::Text(self.person(&text).email.unwrap_or(text))
                }
                (FieldType::Datetime, _) if !text.is_empty() => match &self.zone {
                    Some(z) => CustomValue::Text(local_to_utc(&text, z).unwrap_or(text)),
                    None => CustomValue::Text(text),
                },
                _ if text.is_empty() => continue,
                _ => CustomValue::Text(text),
            };
            let _ = field_type;
            out.insert(label.clone(), cv);
        }
        out
    }
}

struct Values<'a> {
    cm: &'a CollectionMap,
    raw: &'a RawRecord,
}

impl Values<'_> {
    fn get(&self, field: &str) -> Option<&Value> {
        let m = self.cm.standard(field)?;
        self.raw.fields.get(&m.source)
    }
    fn text(&self, field: &str) -> Option<String> {
        self.get(field)
            .map(value_text)
            .filter(|s| !s.trim().is_empty())
    }
    fn list(&self, field: &str) -> Vec<String> {
        match self.get(field) {
            Some(Value::Array(items)) => items
                .iter()
                .map(value_text)
                .filter(|s| !s.is_empty())
                .collect(),
            Some(v) => split_addresses(Some(value_text(v))),
            None => vec![],
        }
    }
    /// The value through the field's value map (unmapped values pass unchanged).
    fn mapped(&self, field: &str) -> Option<String> {
        let m = self.cm.standard(field)?;
        let v = self.text(field)?;
        Some(m.value_map.get(&v).cloned().unwrap_or(v))
    }
}

pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        Value::Array(a) => a.iter().map(value_text).collect::<Vec<_>>().join(";"),
        Value::Object(_) => v.to_string(),
    }
}

fn truthy(s: &str) -> bool {
    matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "y" | "on" | "active"
    )
}

fn split_addresses(s: Option<String>) -> Vec<String> {
    s.map(|s| {
        s.split([',', ';'])
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect()
    })
    .unwrap_or_default()
}
