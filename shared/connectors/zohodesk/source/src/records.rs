//! Zoho Desk JSON -> [`RawRecord`]s with the field names the mapping proposal recognises
//! (`subject`, `department` as a name, `assignee` as an agent email, `contact` as a contact id...),
//! and the field definitions `discover` announces for them.

use std::collections::{BTreeMap, BTreeSet};

use deskshift_core::model::{AttachmentRef, FieldDef, FieldType, RawRecord};
use deskshift_core::util::check_fetch_url;
use reqwest::Url;
use serde_json::{Map, Value, json};

pub const DEPARTMENTS: &str = "Departments";
pub const AGENTS: &str = "Agents";
pub const ACCOUNTS: &str = "Accounts";
pub const CONTACTS: &str = "Contacts";
pub const TICKETS: &str = "Tickets";
pub const CONVERSATIONS: &str = "Conversations";
pub const TASKS: &str = "Tasks";
pub const PRODUCTS: &str = "Products";
/// Prefix of custom-module collections: `CustomModule:<apiName>`.
pub const CUSTOM_MODULE_PREFIX: &str = "CustomModule:";

/// A string field, also when Zoho sends a number; None for null or empty.
pub(crate) fn s(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(t) if !t.is_empty() => Some(t.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A count Zoho sends as a string ("4") or a number.
pub(crate) fn count(v: &Value, key: &str) -> u64 {
    s(v, key).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// A Zoho time (ISO-8601, or epoch milliseconds as some answers carry) as UTC ISO with milliseconds.
pub fn iso_time(v: Option<&Value>) -> Option<String> {
    let ts = match v? {
        Value::Number(n) => jiff::Timestamp::from_millisecond(n.as_i64()?).ok()?,
        Value::String(t) if t.bytes().all(|b| b.is_ascii_digit()) && !t.is_empty() => {
            jiff::Timestamp::from_millisecond(t.parse().ok()?).ok()?
        }
        Value::String(t) => parse_ts(t)?,
        _ => return None,
    };
    Some(fmt_ts(ts))
}

pub(crate) fn parse_ts(t: &str) -> Option<jiff::Timestamp> {
    t.trim().parse::<jiff::Timestamp>().ok().or_else(|| {
        // A date alone means its midnight UTC.
        let d: jiff::civil::Date = t.trim().parse().ok()?;
        d.to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp())
    })
}

pub(crate) fn fmt_ts(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

pub(crate) fn millis(v: Option<&Value>) -> Option<i64> {
    iso_time(v)
        .and_then(|t| parse_ts(&t))
        .map(|t| t.as_millisecond())
}

/// Reference data the records point at by id.
#[derive(Clone, Debug, Default)]
pub(crate) struct Meta {
    pub departments: BTreeMap<String, String>,
    /// agent id -> (email, display name)
    pub agents: BTreeMap<String, (Option<String>, String)>,
    pub products: BTreeMap<String, String>,
    pub tags: Vec<String>,
}

impl Meta {
    fn agent_email(&self, id: Option<String>) -> Option<String> {
        self.agents
            .get(&id?)
            .and_then(|(e, _)| e.clone())
            .map(|e| e.to_ascii_lowercase())
    }
}

/// A custom field of a module, as `/fields` describes it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CustomField {
    pub api_name: String,
    pub label: String,
    pub field_type: FieldType,
    pub options: Vec<String>,
    pub linked: Option<String>,
}

/// Zoho field type names -> the engine's field types.
pub(crate) fn zoho_type(t: &str) -> FieldType {
    match t.to_ascii_lowercase().as_str() {
        "formula" | "autonumber" => FieldType::Text,
        "integer" | "number" => FieldType::Number,
        other => FieldType::parse(other),
    }
}

/// The custom fields of one `/fields` answer (system fields are left out).
pub(crate) fn custom_fields(fields: &[Value]) -> Vec<CustomField> {
    fields
        .iter()
        .filter(|f| f.get("isCustomField").and_then(Value::as_bool) == Some(true))
        .filter_map(|f| {
            let api_name = s(f, "apiName")?;
            let ftype = s(f, "type").unwrap_or_else(|| "Text".into());
            // Where Zoho names a lookup's module is not documented; these are the keys seen in answers.
            let linked = ["lookupModule", "relatedModule", "toModule"]
                .iter()
                .find_map(|k| s(f, k))
                .or_else(|| f.get("lookup").and_then(|l| s(l, "module")))
                .map(|m| module_collection(&m));
            Some(CustomField {
                label: s(f, "displayLabel").unwrap_or_else(|| api_name.clone()),
                field_type: zoho_type(&ftype),
                options: allowed_values(f),
                linked,
                api_name,
            })
        })
        .collect()
}

/// A module API name as the collection this source names it by.
pub(crate) fn module_collection(module: &str) -> String {
    match module.to_ascii_lowercase().as_str() {
        "tickets" => TICKETS.into(),
        "contacts" => CONTACTS.into(),
        "accounts" => ACCOUNTS.into(),
        "tasks" => TASKS.into(),
        "products" => PRODUCTS.into(),
        "agents" | "users" => AGENTS.into(),
        "departments" => DEPARTMENTS.into(),
        _ => format!("{CUSTOM_MODULE_PREFIX}{module}"),
    }
}

/// Picklist values of a field (`allowedValues` as objects or strings).
pub(crate) fn allowed_values(f: &Value) -> Vec<String> {
    f.get("allowedValues")
        .and_then(Value::as_array)
        .map(|vals| {
            vals.iter()
                .filter_map(|o| match o {
                    Value::String(t) => Some(t.clone()),
                    other => s(other, "value"),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// System picklist values of a module, by apiName.
pub(crate) fn system_options(fields: &[Value]) -> BTreeMap<String, Vec<String>> {
    fields
        .iter()
        .filter(|f| f.get("isCustomField").and_then(Value::as_bool) != Some(true))
        .filter_map(|f| Some((s(f, "apiName")?, allowed_values(f))))
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

fn def(name: &str, label: &str, t: FieldType) -> FieldDef {
    FieldDef {
        name: name.into(),
        label: label.into(),
        field_type: t,
        required: false,
        options: vec![],
        linked_collection: None,
        custom: false,
    }
}

fn link(name: &str, label: &str, t: FieldType, to: &str) -> FieldDef {
    FieldDef {
        linked_collection: Some(to.into()),
        ..def(name, label, t)
    }
}

fn opts(mut d: FieldDef, options: Vec<String>) -> FieldDef {
    d.options = options;
    d
}

/// Built-in fields of a collection; `options` gives picklist values by our field name.
pub(crate) fn builtin_fields(
    collection: &str,
    options: &BTreeMap<String, Vec<String>>,
) -> Vec<FieldDef> {
    use FieldType::*;
    let o = |k: &str| options.get(k).cloned().unwrap_or_default();
    match collection {
        DEPARTMENTS => vec![
            def("name", "Name", Text),
            def("description", "Description", Textarea),
            def("is_enabled", "Enabled", Checkbox),
            def("is_default", "Default", Checkbox),
        ],
        AGENTS => vec![
            def("username", "Username", Email),
            def("email", "Email", Email),
            def("first_name", "First Name", Text),
            def("last_name", "Last Name", Text),
            def("active", "Active", Checkbox),
            def("role", "Role", Text),
            opts(
                def("departments", "Departments", Multiselect),
                o("departments"),
            ),
        ],
        ACCOUNTS => vec![
            FieldDef {
                required: true,
                ..def("account_name", "Account Name", Text)
            },
            def("phone", "Phone", Phone),
            def("email", "Email", Email),
            def("website", "Website", Url),
            def("street", "Street", Text),
            def("city", "City", Text),
            def("state", "State", Text),
            def("zip", "Zip", Text),
            def("country", "Country", Text),
            def("description", "Description", Textarea),
        ],
        CONTACTS => vec![
            def("first_name", "First Name", Text),
            FieldDef {
                required: true,
                ..def("last_name", "Last Name", Text)
            },
            def("email", "Email", Email),
            def("phone", "Phone", Phone),
            def("mobile", "Mobile", Phone),
            link("account", "Account", LinkedRecord, ACCOUNTS),
        ],
        TICKETS => vec![
            def("ticket_number", "Ticket Number", Text),
            FieldDef {
                required: true,
                ..def("subject", "Subject", Text)
            },
            def("description", "Description", Textarea),
            opts(def("status", "Status", Dropdown), o("status")),
            opts(def("priority", "Priority", Dropdown), o("priority")),
            opts(def("department", "Department", Dropdown), o("department")),
            link("assignee", "Assignee", UserLink, AGENTS),
            link("contact", "Contact", LinkedRecord, CONTACTS),
            link("account", "Account", LinkedRecord, ACCOUNTS),
            opts(def("channel", "Channel", Dropdown), o("channel")),
            def("due_date", "Due Date", Datetime),
            opts(def("category", "Category", Dropdown), o("category")),
            opts(
                def("sub_category", "Sub Category", Dropdown),
                o("sub_category"),
            ),
            opts(def("product", "Product", Dropdown), o("product")),
            opts(def("tags", "Tags", Multiselect), o("tags")),
            link("related_tickets", "Related Tickets", LinkedRecord, TICKETS),
            opts(
                def("classification", "Classification", Dropdown),
                o("classification"),
            ),
            def("resolution", "Resolution", Textarea),
            def("spam", "Spam", Checkbox),
            link("created_by", "Created By", UserLink, AGENTS),
        ],
        CONVERSATIONS => vec![
            FieldDef {
                required: true,
                ..link("ticket", "Ticket", LinkedRecord, TICKETS)
            },
            opts(
                def("type", "Type", Dropdown),
                ["email", "chat", "phone", "web", "comment"]
                    .map(String::from)
                    .to_vec(),
            ),
            def("channel", "Channel", Text),
            opts(
                def("direction", "Direction", Dropdown),
                vec!["in".into(), "out".into()],
            ),
            opts(
                def("visibility", "Visibility", Dropdown),
                vec!["public".into(), "private".into()],
            ),
            def("from", "From", Email),
            def("to", "To", Text),
            def("cc", "CC", Text),
            def("body", "Body", Textarea),
            def("created_by", "Author", Email),
            def("author_name", "Author Name", Text),
            def("author_type", "Author Type", Text),
            // Also in each record, not offered to the map: `author_email` (the author is
            // `created_by`) and `related_tickets` (the links are in the body; the ticket carries
            // its relations).
        ],
        TASKS => vec![
            link("ticket", "Ticket", LinkedRecord, TICKETS),
            FieldDef {
                required: true,
                ..def("subject", "Subject", Text)
            },
            def("description", "Description", Textarea),
            def("due_date", "Due Date", Datetime),
            opts(def("status", "Status", Dropdown), o("status")),
            opts(def("priority", "Priority", Dropdown), o("priority")),
            link("owner", "Owner", UserLink, AGENTS),
            opts(def("department", "Department", Dropdown), o("department")),
            def("category", "Category", Text),
        ],
        PRODUCTS => vec![
            def("product_name", "Product Name", Text),
            def("product_code", "Product Code", Text),
            def("unit_price", "Unit Price", Decimal),
            def("product_category", "Product Category", Text),
            def("manufacturer", "Manufacturer", Text),
            def("description", "Description", Textarea),
            opts(
                def("departments", "Departments", Multiselect),
                o("departments"),
            ),
        ],
        _ => vec![],
    }
}

pub(crate) fn custom_defs(fields: &[CustomField]) -> Vec<FieldDef> {
    fields
        .iter()
        .map(|f| FieldDef {
            name: f.api_name.clone(),
            label: f.label.clone(),
            field_type: f.field_type.clone(),
            required: false,
            options: f.options.clone(),
            linked_collection: f.linked.clone(),
            custom: true,
        })
        .collect()
}

fn put(m: &mut Map<String, Value>, k: &str, v: Option<String>) {
    m.insert(k.into(), v.map(Value::String).unwrap_or(Value::Null));
}

/// `cf` values by apiName; lookups keep the looked-up record's id.
fn put_custom(m: &mut Map<String, Value>, rec: &Value) {
    if let Some(cf) = rec.get("cf").and_then(Value::as_object) {
        for (k, v) in cf {
            let v = match v {
                Value::Object(o) if o.contains_key("id") => {
                    o.get("id").cloned().unwrap_or(Value::Null)
                }
                other => other.clone(),
            };
            m.insert(k.clone(), v);
        }
    }
}

fn raw(collection: &str, rec: &Value, fields: Map<String, Value>) -> RawRecord {
    let modified = iso_time(rec.get("modifiedTime"));
    RawRecord {
        collection: collection.into(),
        id: s(rec, "id").unwrap_or_default(),
        fields,
        attachments: vec![],
        created_at: iso_time(rec.get("createdTime")),
        cursor_value: modified.clone(),
        modified_at: modified,
    }
}

pub(crate) fn department_record(d: &Value) -> RawRecord {
    let mut m = Map::new();
    put(&mut m, "name", s(d, "name"));
    put(&mut m, "description", s(d, "description"));
    m.insert("is_enabled".into(), json!(d.get("isEnabled")));
    m.insert("is_default".into(), json!(d.get("isDefault")));
    raw(DEPARTMENTS, d, m)
}

pub(crate) fn agent_record(a: &Value, meta: &Meta) -> RawRecord {
    let mut m = Map::new();
    let email = s(a, "emailId").map(|e| e.to_ascii_lowercase());
    put(&mut m, "username", email.clone());
    put(&mut m, "email", email);
    put(&mut m, "first_name", s(a, "firstName"));
    put(&mut m, "last_name", s(a, "lastName"));
    m.insert(
        "active".into(),
        json!(s(a, "status").is_none_or(|st| st.eq_ignore_ascii_case("ACTIVE"))),
    );
    put(
        &mut m,
        "role",
        s(a, "rolePermissionType").or_else(|| s(a, "roleId")),
    );
    let deps: Vec<Value> = a
        .get("associatedDepartmentIds")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(|i| i.as_str().and_then(|i| meta.departments.get(i)))
                .map(|n| json!(n))
                .collect()
        })
        .unwrap_or_default();
    m.insert("departments".into(), Value::Array(deps));
    raw(AGENTS, a, m)
}

pub(crate) fn account_record(a: &Value) -> RawRecord {
    let mut m = Map::new();
    put(&mut m, "account_name", s(a, "accountName"));
    for (k, z) in [
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
        put(&mut m, k, s(a, z));
    }
    put_custom(&mut m, a);
    raw(ACCOUNTS, a, m)
}

pub(crate) fn contact_record(c: &Value) -> RawRecord {
    let mut m = Map::new();
    for (k, z) in [
        ("first_name", "firstName"),
        ("last_name", "lastName"),
        ("email", "email"),
        ("phone", "phone"),
        ("mobile", "mobile"),
        ("account", "accountId"),
    ] {
        put(&mut m, k, s(c, z));
    }
    put_custom(&mut m, c);
    raw(CONTACTS, c, m)
}

/// A full ticket (`GET /tickets/{id}` or a search hit) with what was read beside it.
pub(crate) fn ticket_record(
    t: &Value,
    meta: &Meta,
    tags: Vec<String>,
    related: Vec<String>,
    attachments: Vec<AttachmentRef>,
) -> RawRecord {
    let mut m = Map::new();
    put(&mut m, "ticket_number", s(t, "ticketNumber"));
    put(&mut m, "subject", s(t, "subject"));
    put(&mut m, "description", s(t, "description"));
    put(&mut m, "status", s(t, "status"));
    put(&mut m, "priority", s(t, "priority"));
    let dept = s(t, "departmentId");
    put(
        &mut m,
        "department",
        dept.as_ref()
            .and_then(|d| meta.departments.get(d).cloned())
            .or_else(|| t.get("department").and_then(|d| s(d, "name"))),
    );
    let assignee = meta.agent_email(s(t, "assigneeId")).or_else(|| {
        t.get("assignee")
            .and_then(|a| s(a, "email").or_else(|| s(a, "emailId")))
    });
    put(&mut m, "assignee", assignee);
    put(&mut m, "contact", s(t, "contactId"));
    put(&mut m, "account", s(t, "accountId"));
    put(&mut m, "channel", s(t, "channel"));
    put(&mut m, "due_date", iso_time(t.get("dueDate")));
    put(&mut m, "category", s(t, "category"));
    put(&mut m, "sub_category", s(t, "subCategory"));
    put(
        &mut m,
        "product",
        s(t, "productId")
            .and_then(|p| meta.products.get(&p).cloned())
            .or_else(|| t.get("product").and_then(|p| s(p, "productName"))),
    );
    m.insert("tags".into(), json!(tags));
    m.insert("related_tickets".into(), json!(related));
    put(&mut m, "classification", s(t, "classification"));
    put(&mut m, "resolution", s(t, "resolution"));
    m.insert(
        "spam".into(),
        json!(t.get("isSpam").and_then(Value::as_bool).unwrap_or(false)),
    );
    let creator = s(t, "createdBy");
    put(
        &mut m,
        "created_by",
        meta.agent_email(creator.clone()).or(creator),
    );
    put_custom(&mut m, t);
    RawRecord {
        attachments,
        ..raw(TICKETS, t, m)
    }
}

pub(crate) fn task_record(t: &Value, meta: &Meta) -> RawRecord {
    let mut m = Map::new();
    put(&mut m, "ticket", s(t, "ticketId"));
    put(&mut m, "subject", s(t, "subject"));
    put(&mut m, "description", s(t, "description"));
    put(&mut m, "due_date", iso_time(t.get("dueDate")));
    put(&mut m, "status", s(t, "status"));
    put(&mut m, "priority", s(t, "priority"));
    put(&mut m, "owner", meta.agent_email(s(t, "ownerId")));
    put(
        &mut m,
        "department",
        s(t, "departmentId").and_then(|d| meta.departments.get(&d).cloned()),
    );
    put(&mut m, "category", s(t, "category"));
    put_custom(&mut m, t);
    raw(TASKS, t, m)
}

pub(crate) fn product_record(p: &Value, meta: &Meta) -> RawRecord {
    let mut m = Map::new();
    for (k, z) in [
        ("product_name", "productName"),
        ("product_code", "productCode"),
        ("unit_price", "unitPrice"),
        ("product_category", "productCategory"),
        ("manufacturer", "manufacturer"),
        ("description", "description"),
    ] {
        put(&mut m, k, s(p, z));
    }
    let deps: Vec<Value> = p
        .get("departmentIds")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(|i| i.as_str().and_then(|i| meta.departments.get(i)))
                .map(|n| json!(n))
                .collect()
        })
        .unwrap_or_default();
    m.insert("departments".into(), Value::Array(deps));
    put_custom(&mut m, p);
    raw(PRODUCTS, p, m)
}

/// A custom-module record: its own fields as Zoho names them, lookups reduced to ids.
pub(crate) fn custom_module_record(collection: &str, r: &Value) -> RawRecord {
    let mut m = Map::new();
    if let Some(o) = r.as_object() {
        for (k, v) in o {
            if k == "cf" {
                continue;
            }
            let v = match v {
                Value::Object(inner) if inner.contains_key("id") => {
                    inner.get("id").cloned().unwrap_or(Value::Null)
                }
                other => other.clone(),
            };
            m.insert(k.clone(), v);
        }
    }
    put_custom(&mut m, r);
    raw(collection, r, m)
}

/// Zoho's thread channel as the conversation type: email, chat, phone or web.
pub(crate) fn conversation_type(channel: &str) -> &'static str {
    let c = channel.to_ascii_uppercase();
    if c == "EMAIL" {
        "email"
    } else if c.contains("CHAT") {
        "chat"
    } else if c == "PHONE" {
        "phone"
    } else {
        "web"
    }
}

fn author_fields(m: &mut Map<String, Value>, author: Option<&Value>) {
    let email = author
        .and_then(|a| s(a, "email"))
        .map(|e| e.to_ascii_lowercase());
    let name = author.and_then(|a| {
        s(a, "name").filter(|n| !n.trim().is_empty()).or_else(|| {
            let full = format!(
                "{} {}",
                s(a, "firstName").unwrap_or_default(),
                s(a, "lastName").unwrap_or_default()
            );
            Some(full.trim().to_string()).filter(|n| !n.is_empty())
        })
    });
    put(m, "created_by", email.clone().or(name.clone()));
    put(m, "author_email", email);
    put(m, "author_name", name);
    put(m, "author_type", author.and_then(|a| s(a, "type")));
}

/// A thread read by id (with its full content).
pub(crate) fn thread_record(
    ticket: &str,
    th: &Value,
    content: String,
    attachments: Vec<AttachmentRef>,
    related: Vec<String>,
) -> RawRecord {
    let mut m = Map::new();
    put(&mut m, "ticket", Some(ticket.to_string()));
    let channel = s(th, "channel").unwrap_or_else(|| "EMAIL".into());
    put(
        &mut m,
        "type",
        Some(conversation_type(&channel).to_string()),
    );
    put(&mut m, "channel", Some(channel));
    put(
        &mut m,
        "direction",
        Some(s(th, "direction").unwrap_or_else(|| "in".into())),
    );
    put(
        &mut m,
        "visibility",
        Some(s(th, "visibility").unwrap_or_else(|| "public".into())),
    );
    put(&mut m, "from", s(th, "fromEmailAddress"));
    put(&mut m, "to", s(th, "to"));
    put(&mut m, "cc", s(th, "cc"));
    m.insert("body".into(), Value::String(content));
    author_fields(&mut m, th.get("author"));
    m.insert("related_tickets".into(), json!(related));
    RawRecord {
        collection: CONVERSATIONS.into(),
        id: s(th, "id").unwrap_or_default(),
        created_at: iso_time(th.get("createdTime")),
        modified_at: iso_time(th.get("createdTime")),
        cursor_value: iso_time(th.get("createdTime")),
        fields: m,
        attachments,
    }
}

pub(crate) fn comment_record(
    ticket: &str,
    c: &Value,
    attachments: Vec<AttachmentRef>,
    related: Vec<String>,
) -> RawRecord {
    let mut m = Map::new();
    put(&mut m, "ticket", Some(ticket.to_string()));
    put(&mut m, "type", Some("comment".into()));
    put(&mut m, "channel", Some("COMMENT".into()));
    let commenter = c.get("commenter");
    let by_customer = commenter
        .and_then(|a| s(a, "type"))
        .is_some_and(|t| t.eq_ignore_ascii_case("END_USER"));
    put(
        &mut m,
        "direction",
        Some(if by_customer { "in" } else { "out" }.into()),
    );
    let public = c.get("isPublic").and_then(Value::as_bool).unwrap_or(false);
    put(
        &mut m,
        "visibility",
        Some(if public { "public" } else { "private" }.into()),
    );
    put(&mut m, "from", None);
    put(&mut m, "to", None);
    put(&mut m, "cc", None);
    put(&mut m, "body", s(c, "content"));
    author_fields(&mut m, commenter);
    m.insert("related_tickets".into(), json!(related));
    let modified = iso_time(c.get("modifiedTime")).or_else(|| iso_time(c.get("commentedTime")));
    RawRecord {
        collection: CONVERSATIONS.into(),
        id: s(c, "id").unwrap_or_default(),
        created_at: iso_time(c.get("commentedTime")),
        modified_at: modified.clone(),
        cursor_value: modified,
        fields: m,
        attachments,
    }
}

/// `[{id, name, size, href}]` as attachment references (only hrefs on the allowed hosts).
pub(crate) fn attachment_refs(list: Option<&Value>, allowed: &[Url]) -> Vec<AttachmentRef> {
    list.and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|a| {
                    let url = s(a, "href")?;
                    check_fetch_url(&url, allowed).ok()?;
                    Some(AttachmentRef {
                        id: s(a, "id").unwrap_or_else(|| url.clone()),
                        file_name: s(a, "name").unwrap_or_else(|| "attachment".into()),
                        size: s(a, "size").and_then(|z| z.parse().ok()),
                        md5: None,
                        url,
                        inline: false,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What a body's HTML points at: inline images on the allowed hosts, and other tickets.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct BodyLinks {
    pub images: Vec<AttachmentRef>,
    pub tickets: Vec<String>,
}

/// Reads `<img src>` and `<a href>` of a body. Relative image paths resolve against `base`.
pub(crate) fn body_links(html: &str, base: &Url, allowed: &[Url], own_ticket: &str) -> BodyLinks {
    let doc = scraper::Html::parse_fragment(html);
    let img = scraper::Selector::parse("img[src]").expect("static selector");
    let a = scraper::Selector::parse("a[href]").expect("static selector");
    let mut out = BodyLinks::default();
    let mut seen = BTreeSet::new();
    for el in doc.select(&img) {
        let Some(src) = el.value().attr("src") else {
            continue;
        };
        let Ok(url) = base.join(src.trim()) else {
            continue;
        };
        if check_fetch_url(url.as_str(), allowed).is_err() || !seen.insert(url.to_string()) {
            continue;
        }
        let segments: Vec<&str> = url.path_segments().map(|s| s.collect()).unwrap_or_default();
        // `.../attachments/{id}/content` carries the attachment id; other images are named by URL.
        let id = segments
            .iter()
            .position(|s| *s == "attachments")
            .and_then(|i| segments.get(i + 1))
            .filter(|id| id.bytes().all(|b| b.is_ascii_digit()))
            .map(|id| id.to_string())
            .unwrap_or_else(|| format!("inline:{}", url.path()));
        let file_name = el
            .value()
            .attr("alt")
            .filter(|a| !a.trim().is_empty())
            .map(|a| format!("{}.png", a.trim()))
            .or_else(|| {
                segments
                    .last()
                    .filter(|l| l.contains('.'))
                    .map(|l| l.to_string())
            })
            .unwrap_or_else(|| "inline-image".into());
        out.images.push(AttachmentRef {
            id,
            file_name,
            url: url.to_string(),
            size: None,
            md5: None,
            inline: true,
        });
    }
    for el in doc.select(&a) {
        if let Some(id) = el.value().attr("href").and_then(ticket_id_in_link)
            && id != own_ticket
            && !out.tickets.contains(&id)
        {
            out.tickets.push(id);
        }
    }
    out
}

/// The ticket id of a Zoho Desk ticket link (`...#Cases/dv/<id>` or `.../tickets/details/<id>`).
pub(crate) fn ticket_id_in_link(href: &str) -> Option<String> {
    for marker in ["#Cases/dv/", "/tickets/details/"] {
        if let Some(pos) = href.find(marker) {
            let id: String = href[pos + marker.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if !id.is_empty() {
                return Some(id);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Vec<Url> {
        vec![Url::parse("https://desk.zoho.eu").unwrap()]
    }

    #[test]
    fn times_in_either_zoho_form_become_utc_iso() {
        assert_eq!(
            iso_time(Some(&json!("2016-05-25T10:06:09.686Z"))).as_deref(),
            Some("2016-05-25T10:06:09.686Z")
        );
        assert_eq!(
            iso_time(Some(&json!(1_464_170_769_686i64))).as_deref(),
            Some("2016-05-25T10:06:09.686Z")
        );
        assert_eq!(
            iso_time(Some(&json!("2024-03-01"))).as_deref(),
            Some("2024-03-01T00:00:00.000Z")
        );
        assert_eq!(iso_time(Some(&Value::Null)), None);
    }

    #[test]
    fn inline_images_on_zoho_hosts_become_attachments_and_ticket_links_are_found() {
        let base = Url::parse("https://desk.zoho.eu/api/v1/").unwrap();
        let html = r#"<div>see <img src="https://desk.zoho.eu/api/v1/tickets/1/threads/2/attachments/77/content" alt="shot">
            <img src="/api/v1/uploads/9/contents"><img src="cid:image001.png"><img src="https://evil.example/x.png">
            <a href="https://desk.zoho.com/support/acme/ShowHomePage.do#Cases/dv/4000000000000123">#101</a>
            <a href="https://desk.zoho.eu/agent/acme/support/tickets/details/555">again</a>
            <a href="https://desk.zoho.eu/agent/acme/support/tickets/details/1">self</a><p>unclosed"#;
        let links = body_links(html, &base, &hosts(), "1");
        assert_eq!(links.images.len(), 2, "{:?}", links.images);
        assert_eq!(links.images[0].id, "77");
        assert_eq!(links.images[0].file_name, "shot.png");
        assert_eq!(links.images[1].id, "inline:/api/v1/uploads/9/contents");
        assert_eq!(links.tickets, vec!["4000000000000123", "555"]);
    }

    #[test]
    fn a_ticket_carries_names_not_ids_and_its_custom_fields_by_api_name() {
        let mut meta = Meta::default();
        meta.departments.insert("10".into(), "Billing".into());
        meta.agents
            .insert("20".into(), (Some("Ann@Desk.example".into()), "Ann".into()));
        meta.products.insert("30".into(), "Router AX".into());
        let t = json!({"id": "1", "ticketNumber": "101", "subject": "Hi", "departmentId": "10",
            "assigneeId": "20", "productId": "30", "contactId": "40", "accountId": "50",
            "createdTime": "2024-01-01T00:00:00.000Z", "modifiedTime": "2024-01-02T00:00:00.000Z",
            "cf": {"cf_severity": "S1", "cf_asset": {"id": "900", "name": "Laptop"}}});
        let r = ticket_record(&t, &meta, vec!["vip".into()], vec!["2".into()], vec![]);
        assert_eq!(r.fields["department"], "Billing");
        assert_eq!(r.fields["assignee"], "ann@desk.example");
        assert_eq!(r.fields["product"], "Router AX");
        assert_eq!(r.fields["contact"], "40");
        assert_eq!(r.fields["cf_severity"], "S1");
        assert_eq!(r.fields["cf_asset"], "900");
        assert_eq!(r.fields["tags"], json!(["vip"]));
        assert_eq!(r.cursor_value.as_deref(), Some("2024-01-02T00:00:00.000Z"));
    }

    #[test]
    fn field_names_are_the_ones_the_mapping_recognises() {
        use deskshift_core::mapping::propose_kind;
        use deskshift_core::model::ObjectKind;
        for (c, k) in [
            (AGENTS, ObjectKind::Agent),
            (ACCOUNTS, ObjectKind::Account),
            (CONTACTS, ObjectKind::Contact),
            (TICKETS, ObjectKind::Ticket),
            (CONVERSATIONS, ObjectKind::Activity),
            (TASKS, ObjectKind::Task),
        ] {
            assert_eq!(propose_kind(c).map(|p| p.0), Some(k), "{c}");
        }
        for c in [DEPARTMENTS, PRODUCTS, "CustomModule:cm_assets"] {
            assert_eq!(propose_kind(c), None, "{c} is not loaded as records");
        }
    }
}
