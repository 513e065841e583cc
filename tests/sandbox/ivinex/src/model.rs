//! The tenant model: tabs, typed fields, records, links and attachment metadata, with the JSON
//! rendering of the contract (site-timezone dates, absolute attachment URLs).

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Placeholder for the server's base URL inside stored HTML and attachment URLs; replaced when rendered.
pub const BASE_URL_TOKEN: &str = "{{ivinex_base_url}}";

/// Field names the platform adds to every record; tenant fields never use them.
pub const DEFAULT_FIELDS: [&str; 5] = [
    "collection_id",
    "created_by",
    "created_date",
    "modified_by",
    "modified_date",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
}

impl FieldType {
    pub const ALL: [FieldType; 14] = [
        FieldType::Text,
        FieldType::Textarea,
        FieldType::Number,
        FieldType::Decimal,
        FieldType::Date,
        FieldType::Datetime,
        FieldType::Dropdown,
        FieldType::Multiselect,
        FieldType::Checkbox,
        FieldType::Email,
        FieldType::Phone,
        FieldType::Url,
        FieldType::UserLink,
        FieldType::LinkedRecord,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::Textarea => "textarea",
            FieldType::Number => "number",
            FieldType::Decimal => "decimal",
            FieldType::Date => "date",
            FieldType::Datetime => "datetime",
            FieldType::Dropdown => "dropdown",
            FieldType::Multiselect => "multiselect",
            FieldType::Checkbox => "checkbox",
            FieldType::Email => "email",
            FieldType::Phone => "phone",
            FieldType::Url => "url",
            FieldType::UserLink => "user_link",
            FieldType::LinkedRecord => "linked_record",
        }
    }
}

/// One field of a tab. `role` is the sandbox's own semantic tag (e.g. "subject"), never served by
/// the public API: it lets tests and the launcher find a field whose name varies per seed.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldDef {
    pub field_id: u64,
    pub field_name: String,
    pub display_text: String,
    pub field_type: FieldType,
    pub required: bool,
    pub options: Vec<String>,
    pub linked_tab: Option<String>,
    pub role: Option<String>,
}

impl FieldDef {
    /// The `GetFields` entry.
    pub fn api_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("FieldID".into(), json!(self.field_id));
        m.insert("FieldName".into(), json!(self.field_name));
        m.insert("DisplayText".into(), json!(self.display_text));
        m.insert("Type".into(), json!(self.field_type.as_str()));
        m.insert("Required".into(), json!(self.required));
        if matches!(
            self.field_type,
            FieldType::Dropdown | FieldType::Multiselect
        ) {
            m.insert("Options".into(), json!(self.options));
        }
        if let Some(t) = &self.linked_tab {
            m.insert("LinkedTab".into(), json!(t));
        }
        Value::Object(m)
    }

    /// The dump entry: the API entry plus the sandbox role.
    pub fn dump_json(&self) -> Value {
        let mut v = self.api_json();
        if let Some(r) = &self.role {
            v["Role"] = json!(r);
        }
        v
    }
}

/// Lowercase, non-alphanumerics collapsed to one underscore: "Is VIP?" -> "is_vip".
pub fn field_name_from(display: &str) -> String {
    let mut out = String::new();
    let mut pending_sep = false;
    for c in display.chars() {
        if c.is_alphanumeric() {
            if pending_sep && !out.is_empty() {
                out.push('_');
            }
            pending_sep = false;
            out.extend(c.to_lowercase());
        } else {
            pending_sep = true;
        }
    }
    if out.is_empty() {
        "field".to_string()
    } else {
        out
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct TabDef {
    pub tab_id: u64,
    pub name: String,
    pub fields: Vec<FieldDef>,
}

impl TabDef {
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.field_name == name)
    }
    pub fn role_index(&self, role: &str) -> Option<usize> {
        self.fields
            .iter()
            .position(|f| f.role.as_deref() == Some(role))
    }
    pub fn field_by_role(&self, role: &str) -> Option<&FieldDef> {
        self.role_index(role).map(|i| &self.fields[i])
    }
}

/// A stored record. `values[i]` belongs to the tab's `fields[i]` (missing or Null = empty).
/// Datetime values are stored as epoch seconds and rendered in the site timezone.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub id: u64,
    pub created_by: String,
    pub created_at: Timestamp,
    pub modified_by: String,
    pub modified_at: Timestamp,
    pub values: Vec<Value>,
    pub attachments: Vec<u64>,
}

impl Record {
    pub fn value(&self, idx: usize) -> &Value {
        self.values.get(idx).unwrap_or(&Value::Null)
    }
    pub fn set(&mut self, idx: usize, v: Value) {
        if self.values.len() <= idx {
            self.values.resize(idx + 1, Value::Null);
        }
        self.values[idx] = v;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkType {
    Embedded,
    Related,
    Converted,
    CopiedFrom,
}

impl LinkType {
    pub fn parse(s: &str) -> Option<LinkType> {
        match s {
            "embedded" => Some(LinkType::Embedded),
            "related" => Some(LinkType::Related),
            "converted" => Some(LinkType::Converted),
            "copied_from" => Some(LinkType::CopiedFrom),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            LinkType::Embedded => "embedded",
            LinkType::Related => "related",
            LinkType::Converted => "converted",
            LinkType::CopiedFrom => "copied_from",
        }
    }
}

/// A non-embedded link (embedded links live in linked_record fields). Directed: `tab/record_id`
/// was converted or copied from `link_tab/link_record_id`; both ends see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub tab: String,
    pub record_id: u64,
    pub link_tab: String,
    pub link_record_id: u64,
    pub link_type: LinkType,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Content {
    /// Bytes derived from (tenant seed, attachment id) on request.
    Generated,
    /// Bytes uploaded through AddAttachment.
    Stored(bytes::Bytes),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Attachment {
    pub id: u64,
    pub tab: String,
    pub record_id: u64,
    pub file_name: String,
    pub size: u64,
    pub md5_declared: Option<String>,
    pub md5_actual: Option<String>,
    pub content: Content,
}

impl Attachment {
    /// URL relative to the base-URL token; rendered by replacing the token.
    pub fn url_template(&self) -> String {
        format!(
            "{BASE_URL_TOKEN}/files/{}/{}",
            self.id,
            encode_path_segment(&self.file_name)
        )
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn encode_path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A user as the launcher needs it to create matching destination agents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSummary {
    pub collection_id: u64,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub active: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TabData {
    pub def: TabDef,
    pub records: BTreeMap<u64, Record>,
}

/// A whole tenant: schema, records, links and attachment metadata (never the generated bytes).
#[derive(Clone, Debug, PartialEq)]
pub struct Tenant {
    /// Seed of the generated attachment binaries (and of the generation itself).
    pub seed: u64,
    pub tabs: Vec<TabData>,
    pub links: Vec<Link>,
    pub attachments: BTreeMap<u64, Attachment>,
    pub next_record_id: u64,
    pub next_field_id: u64,
    pub next_attachment_id: u64,
}

/// How records are turned into JSON: where the server lives and which timezone dates are in.
pub struct Render<'a> {
    pub base_url: &'a str,
    pub tz: &'a TimeZone,
}

pub fn format_ts(ts: Timestamp, tz: &TimeZone) -> String {
    let dt = tz.to_datetime(ts);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// Parses `YYYY-MM-DD HH:MM:SS` as a wall-clock time of `tz` (ambiguous times take the earlier
/// instant, skipped times move forward, as most platforms do).
pub fn parse_site_datetime(s: &str, tz: &TimeZone) -> Option<Timestamp> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        });
    if !shape_ok {
        return None;
    }
    let dt = DateTime::strptime("%Y-%m-%d %H:%M:%S", s).ok()?;
    tz.to_ambiguous_timestamp(dt).compatible().ok()
}

pub fn valid_date(s: &str) -> bool {
    s.len() == 10 && jiff::civil::Date::strptime("%Y-%m-%d", s).is_ok()
}

impl Tenant {
    pub fn empty(seed: u64) -> Tenant {
        Tenant {
            seed,
            tabs: Vec::new(),
            links: Vec::new(),
            attachments: BTreeMap::new(),
            next_record_id: 100_001,
            next_field_id: 5_001,
            next_attachment_id: 900_001,
        }
    }

    pub fn tab(&self, name: &str) -> Option<&TabData> {
        self.tabs.iter().find(|t| t.def.name == name)
    }
    pub fn tab_mut(&mut self, name: &str) -> Option<&mut TabData> {
        self.tabs.iter_mut().find(|t| t.def.name == name)
    }
    pub fn tab_names(&self) -> Vec<String> {
        self.tabs.iter().map(|t| t.def.name.clone()).collect()
    }

    /// The field name playing `role` on `tab` (e.g. ("Tickets", "subject") -> "summary").
    pub fn field_name(&self, tab: &str, role: &str) -> Option<String> {
        self.tab(tab)?
            .def
            .field_by_role(role)
            .map(|f| f.field_name.clone())
    }

    pub fn record_count(&self, tab: &str) -> usize {
        self.tab(tab).map(|t| t.records.len()).unwrap_or(0)
    }

    /// Every user of the Users tab, read through the field roles.
    pub fn users(&self) -> Vec<UserSummary> {
        let Some(users) = self.tab("Users") else {
            return Vec::new();
        };
        let idx = |role: &str| users.def.role_index(role);
        let (u, e, f, l, a) = (
            idx("username"),
            idx("email"),
            idx("first_name"),
            idx("last_name"),
            idx("active"),
        );
        let text = |r: &Record, i: Option<usize>| {
            i.and_then(|i| r.value(i).as_str())
                .unwrap_or("")
                .to_string()
        };
        users
            .records
            .values()
            .map(|r| UserSummary {
                collection_id: r.id,
                username: text(r, u),
                email: text(r, e),
                first_name: text(r, f),
                last_name: text(r, l),
                active: text(r, a) == "1",
            })
            .collect()
    }

    pub fn find_record(&self, tab: &str, id: u64) -> Option<&Record> {
        self.tab(tab)?.records.get(&id)
    }

    /// Adds a field to a tab (creating the tab if needed) and returns its index.
    pub fn add_field(&mut self, tab: &str, mut field: FieldDef) -> usize {
        if self.tab(tab).is_none() {
            let tab_id = 1001 + self.tabs.len() as u64;
            self.tabs.push(TabData {
                def: TabDef {
                    tab_id,
                    name: tab.to_string(),
                    fields: Vec::new(),
                },
                records: BTreeMap::new(),
            });
        }
        field.field_id = self.next_field_id;
        self.next_field_id += 1;
        let t = self.tab_mut(tab).expect("tab just ensured");
        t.def.fields.push(field);
        t.def.fields.len() - 1
    }

    pub fn alloc_record_id(&mut self) -> u64 {
        let id = self.next_record_id;
        self.next_record_id += 1;
        id
    }

    pub fn alloc_attachment_id(&mut self) -> u64 {
        let id = self.next_attachment_id;
        self.next_attachment_id += 1;
        id
    }

    /// Renders one record as GetRecords answers it. `only` restricts the tab fields.
    pub fn render_record(
        &self,
        tab: &TabData,
        rec: &Record,
        r: &Render<'_>,
        only: Option<&[usize]>,
    ) -> Value {
        let mut m = Map::new();
        m.insert("collection_id".into(), json!(rec.id));
        m.insert("created_by".into(), json!(rec.created_by));
        m.insert(
            "created_date".into(),
            json!(format_ts(rec.created_at, r.tz)),
        );
        m.insert("modified_by".into(), json!(rec.modified_by));
        m.insert(
            "modified_date".into(),
            json!(format_ts(rec.modified_at, r.tz)),
        );
        let mut put = |i: usize| {
            let f = &tab.def.fields[i];
            m.insert(
                f.field_name.clone(),
                render_value(f.field_type, rec.value(i), r),
            );
        };
        match only {
            Some(list) => list.iter().copied().for_each(&mut put),
            None => (0..tab.def.fields.len()).for_each(&mut put),
        }
        if !rec.attachments.is_empty() {
            let list: Vec<Value> = rec
                .attachments
                .iter()
                .filter_map(|id| self.attachments.get(id))
                .map(|a| {
                    let mut e = Map::new();
                    e.insert("file_name".into(), json!(a.file_name));
                    e.insert(
                        "url".into(),
                        json!(a.url_template().replace(BASE_URL_TOKEN, r.base_url)),
                    );
                    e.insert("size".into(), json!(a.size));
                    if let Some(md5) = &a.md5_declared {
                        e.insert("md5".into(), json!(md5));
                    }
                    Value::Object(e)
                })
                .collect();
            m.insert("attachments".into(), Value::Array(list));
        }
        Value::Object(m)
    }

    /// The inspection dump: schema, every record, non-embedded links and attachment metadata.
    pub fn dump(&self, r: &Render<'_>) -> Value {
        let tabs: Vec<Value> = self
            .tabs
            .iter()
            .map(|t| json!({"TabID": t.def.tab_id, "Name": t.def.name}))
            .collect();
        let mut fields = Map::new();
        let mut records = Map::new();
        for t in &self.tabs {
            fields.insert(
                t.def.name.clone(),
                Value::Array(t.def.fields.iter().map(FieldDef::dump_json).collect()),
            );
            records.insert(
                t.def.name.clone(),
                Value::Array(
                    t.records
                        .values()
                        .map(|rec| self.render_record(t, rec, r, None))
                        .collect(),
                ),
            );
        }
        let attachments: Vec<Value> = self
            .attachments
            .values()
            .map(|a| attachment_dump(a, r.base_url))
            .collect();
        json!({
            "tabs": tabs,
            "fields": fields,
            "records": records,
            "links": self.links,
            "attachments": attachments,
        })
    }

    /// Records pointing at `target` through a linked_record field, keyed by target id.
    pub fn embedded_index(&self) -> HashMap<u64, Vec<(usize, u64)>> {
        let mut idx: HashMap<u64, Vec<(usize, u64)>> = HashMap::new();
        for (ti, t) in self.tabs.iter().enumerate() {
            let linked: Vec<usize> = t
                .def
                .fields
                .iter()
                .enumerate()
                .filter(|(_, f)| f.field_type == FieldType::LinkedRecord)
                .map(|(i, _)| i)
                .collect();
            if linked.is_empty() {
                continue;
            }
            for rec in t.records.values() {
                for &fi in &linked {
                    if let Some(target) = rec.value(fi).as_u64() {
                        idx.entry(target).or_default().push((ti, rec.id));
                    }
                }
            }
        }
        idx
    }
}

pub fn attachment_dump(a: &Attachment, base_url: &str) -> Value {
    json!({
        "id": a.id,
        "record_tab": a.tab,
        "record_id": a.record_id,
        "file_name": a.file_name,
        "url": a.url_template().replace(BASE_URL_TOKEN, base_url),
        "size": a.size,
        "md5_declared": a.md5_declared,
        "md5_actual": a.md5_actual,
        "stored": matches!(a.content, Content::Stored(_)),
    })
}

/// Stored value -> contract JSON: empty is "" ([] for multiselect, "0" for checkbox), datetimes in
/// the site zone.
pub fn render_value(ty: FieldType, v: &Value, r: &Render<'_>) -> Value {
    match (ty, v) {
        (FieldType::Multiselect, Value::Null) => json!([]),
        (FieldType::Checkbox, Value::Null) => json!("0"),
        (_, Value::Null) => json!(""),
        (FieldType::Datetime, Value::Number(n)) => {
            match n.as_i64().and_then(|s| Timestamp::from_second(s).ok()) {
                Some(ts) => json!(format_ts(ts, r.tz)),
                None => json!(""),
            }
        }
        (FieldType::Textarea | FieldType::Url, Value::String(s)) if s.contains(BASE_URL_TOKEN) => {
            json!(s.replace(BASE_URL_TOKEN, r.base_url))
        }
        _ => v.clone(),
    }
}

/// A value as ChangeHistory prints it.
pub fn value_text(ty: FieldType, v: &Value, tz: &TimeZone) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| i.to_string())
            })
            .collect::<Vec<_>>()
            .join(", "),
        Value::Number(n) if ty == FieldType::Datetime => n
            .as_i64()
            .and_then(|s| Timestamp::from_second(s).ok())
            .map(|ts| format_ts(ts, tz))
            .unwrap_or_default(),
        other => other.to_string(),
    }
}

/// Why a written value was refused.
pub type ValueError = String;

/// Checks and normalises one written value for `field` (the store form: see [`Record`]).
pub fn parse_value(
    tenant: &Tenant,
    field: &FieldDef,
    v: &Value,
    tz: &TimeZone,
) -> Result<Value, ValueError> {
    let name = &field.field_name;
    if v.is_null()
        || v.as_str() == Some("")
        || (field.field_type == FieldType::Multiselect
            && v.as_array().is_some_and(|a| a.is_empty()))
    {
        if field.required {
            return Err(format!("Field {name} is required"));
        }
        return Ok(Value::Null);
    }
    let as_text = || -> Result<String, ValueError> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(format!("Field {name} expects a string")),
        }
    };
    match field.field_type {
        FieldType::Text | FieldType::Textarea | FieldType::Phone | FieldType::Url => {
            Ok(Value::String(as_text()?))
        }
        FieldType::Email => {
            let s = as_text()?;
            if !s.contains('@') {
                return Err(format!("Field {name}: '{s}' is not an email address"));
            }
            Ok(Value::String(s))
        }
        FieldType::Number => {
            let n = match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            };
            n.map(|n| json!(n))
                .ok_or_else(|| format!("Field {name} expects a whole number"))
        }
        FieldType::Decimal => {
            let n = match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            };
            n.filter(|n| n.is_finite())
                .map(|n| json!(n))
                .ok_or_else(|| format!("Field {name} expects a decimal number"))
        }
        FieldType::Date => {
            let s = as_text()?;
            if !valid_date(&s) {
                return Err(format!("Field {name} expects a date YYYY-MM-DD"));
            }
            Ok(Value::String(s))
        }
        FieldType::Datetime => {
            let s = as_text()?;
            parse_site_datetime(&s, tz)
                .map(|ts| json!(ts.as_second()))
                .ok_or_else(|| format!("Field {name} expects a date and time YYYY-MM-DD HH:MM:SS"))
        }
        FieldType::Dropdown => {
            let s = as_text()?;
            if !field.options.contains(&s) {
                return Err(format!("Field {name}: '{s}' is not one of its options"));
            }
            Ok(Value::String(s))
        }
        FieldType::Multiselect => {
            let items: Vec<String> = match v {
                Value::Array(a) => a
                    .iter()
                    .map(|i| i.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>(),
                Value::String(s) => Some(
                    s.split(';')
                        .map(|p| p.trim().to_string())
                        .filter(|p| !p.is_empty())
                        .collect(),
                ),
                _ => None,
            }
            .ok_or_else(|| format!("Field {name} expects a list of options"))?;
            if let Some(bad) = items.iter().find(|i| !field.options.contains(i)) {
                return Err(format!("Field {name}: '{bad}' is not one of its options"));
            }
            Ok(json!(items))
        }
        FieldType::Checkbox => match v {
            Value::String(s) if s == "1" || s == "0" => Ok(json!(s)),
            Value::Bool(b) => Ok(json!(if *b { "1" } else { "0" })),
            Value::Number(n) if n.as_u64() == Some(1) || n.as_u64() == Some(0) => {
                Ok(json!(n.to_string()))
            }
            _ => Err(format!("Field {name} expects \"1\" or \"0\"")),
        },
        FieldType::UserLink => {
            let s = as_text()?;
            let known = tenant.users().iter().any(|u| u.username == s);
            if !known {
                return Err(format!("Field {name}: no user with username '{s}'"));
            }
            Ok(Value::String(s))
        }
        FieldType::LinkedRecord => {
            let id = match v {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.trim().parse::<u64>().ok(),
                _ => None,
            }
            .ok_or_else(|| format!("Field {name} expects a collection_id"))?;
            let tab = field.linked_tab.as_deref().unwrap_or("");
            if tenant.find_record(tab, id).is_none() {
                return Err(format!("Field {name}: no {tab} record {id}"));
            }
            Ok(json!(id))
        }
    }
}
