//! The field map: which source collection is which kind, and where every source field goes
//! (a standard canonical field, a destination custom field, or nowhere), with a confidence and a
//! reason per decision, sample values and value maps for enumerations. The engine proposes it; a
//! person reviews, edits and approves it; the approval pins its exact hash.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{FieldDef, FieldType, ObjectKind, RawRecord, SourceSchema};
use crate::ports::DestinationInfo;
use crate::util::sha256_hex;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum Target {
    /// A canonical field of the kind (see [`standard_fields`]).
    Standard { field: String },
    /// A destination custom field, created by the schema phase.
    Custom {
        label: String,
        field_type: FieldType,
        #[serde(default)]
        options: Vec<String>,
    },
    /// Not migrated.
    Ignore,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldMapping {
    pub source: String,
    pub label: String,
    pub source_type: FieldType,
    pub target: Target,
    pub confidence: f32,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// Source value -> destination value, for enumerations (status, priority, department, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub value_map: BTreeMap<String, String>,
    /// The collection this field looks records up in, when it has no destination counterpart
    /// (a custom module): its records are staged and go to the migration package, and the value
    /// names the linked record (`<name> (<id>)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked_collection: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CollectionMap {
    pub collection: String,
    pub kind: ObjectKind,
    pub confidence: f32,
    pub reason: String,
    pub fields: Vec<FieldMapping>,
}

impl FieldMap {
    /// Collections that mapped fields look records up in without loading them (custom modules).
    pub fn lookup_collections(&self) -> BTreeSet<String> {
        self.collections
            .iter()
            .flat_map(|c| &c.fields)
            .filter(|f| !matches!(f.target, Target::Ignore))
            .filter_map(|f| f.linked_collection.clone())
            .collect()
    }
}

impl CollectionMap {
    /// The source field mapped to a standard field, if any.
    pub fn standard(&self, field: &str) -> Option<&FieldMapping> {
        self.fields
            .iter()
            .find(|f| matches!(&f.target, Target::Standard { field: t } if t == field))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldMap {
    pub source_platform: String,
    pub destination_platform: String,
    pub collections: Vec<CollectionMap>,
}

impl FieldMap {
    /// The hash an approval pins: any edit to the map changes it.
    pub fn digest(&self) -> String {
        sha256_hex(&serde_json::to_vec(self).expect("field map serialises"))
    }

    pub fn for_kind(&self, kind: ObjectKind) -> Option<&CollectionMap> {
        self.collections.iter().find(|c| c.kind == kind)
    }

    /// Custom fields the destination must have, per kind.
    pub fn custom_fields(&self) -> Vec<(ObjectKind, String, FieldType, Vec<String>)> {
        let mut out = Vec::new();
        for c in &self.collections {
            for f in &c.fields {
                if let Target::Custom {
                    label,
                    field_type,
                    options,
                } = &f.target
                {
                    out.push((c.kind, label.clone(), field_type.clone(), options.clone()));
                }
            }
        }
        out
    }

    /// Checks the map is usable: every kind the load needs is mapped once, required standard
    /// fields have a source, value maps only name allowed destination values.
    pub fn validate(&self, info: &DestinationInfo) -> Result<()> {
        let mut seen = BTreeSet::new();
        for c in &self.collections {
            if !seen.insert(c.kind) {
                return Err(Error::Config(format!(
                    "field map: two collections are mapped to {}; map one of them to another kind or remove it",
                    c.kind
                )));
            }
            for f in &c.fields {
                if let Target::Standard { field } = &f.target
                    && !standard_fields(c.kind).iter().any(|s| s.name == field)
                {
                    return Err(Error::Config(format!(
                        "field map: {}.{} targets unknown standard field {field:?} of {}; valid: {}",
                        c.collection,
                        f.source,
                        c.kind,
                        standard_fields(c.kind)
                            .iter()
                            .map(|s| s.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                if let Target::Standard { field } = &f.target
                    && let Some(allowed) = info.allowed_values.get(&format!("{}.{}", c.kind, field))
                {
                    for (from, to) in &f.value_map {
                        if !allowed.iter().any(|a| a == to) {
                            return Err(Error::Config(format!(
                                "field map: {}.{} maps {from:?} to {to:?}, which the destination does not allow for {}.{field}; allowed: {}",
                                c.collection,
                                f.source,
                                c.kind,
                                allowed.join(", ")
                            )));
                        }
                    }
                }
            }
        }
        let kind = ObjectKind::Ticket;
        let c = self.for_kind(kind).ok_or_else(|| {
            Error::Config(format!(
                "field map: no source collection is mapped to {kind}; nothing to migrate"
            ))
        })?;
        if c.standard("subject").is_none() {
            return Err(Error::Config(format!(
                "field map: {} has no field mapped to ticket subject; map one (edit the map and approve again)",
                c.collection
            )));
        }
        Ok(())
    }
}

/// One canonical field a kind offers as a mapping target.
#[derive(Clone, Copy, Debug)]
pub struct StandardField {
    pub name: &'static str,
    /// Lower-case alphanumeric names that mean this field.
    pub synonyms: &'static [&'static str],
    /// Enumerations get a value map.
    pub enumerated: bool,
    /// For references: the kind referenced.
    pub references: Option<ObjectKind>,
}

const fn sf(name: &'static str, synonyms: &'static [&'static str]) -> StandardField {
    StandardField {
        name,
        synonyms,
        enumerated: false,
        references: None,
    }
}
const fn en(name: &'static str, synonyms: &'static [&'static str]) -> StandardField {
    StandardField {
        name,
        synonyms,
        enumerated: true,
        references: None,
    }
}
const fn rf(
    name: &'static str,
    synonyms: &'static [&'static str],
    kind: ObjectKind,
) -> StandardField {
    StandardField {
        name,
        synonyms,
        enumerated: false,
        references: Some(kind),
    }
}

const AGENT_FIELDS: &[StandardField] = &[
    sf("username", &["username", "login", "user"]),
    sf(
        "email",
        &[
            "email",
            "emailaddress",
            "mail",
            "generalemail",
            "companyemail",
        ],
    ),
    sf("first_name", &["firstname", "givenname", "first"]),
    sf("last_name", &["lastname", "surname", "familyname", "last"]),
    sf("active", &["active", "isactive", "enabled", "status"]),
    rf(
        "group",
        &["group", "groups", "team", "membership", "usergroup"],
        ObjectKind::Group,
    ),
    sf(
        "role",
        &["role", "profile", "usertype", "userrole", "accesslevel"],
    ),
];
const GROUP_FIELDS: &[StandardField] = &[sf("name", &["name", "groupname", "title"])];
const ACCOUNT_FIELDS: &[StandardField] = &[
    sf(
        "name",
        &[
            "organizationname",
            "accountname",
            "company",
            "companyname",
            "name",
            "organization",
        ],
    ),
    sf(
        "phone",
        &[
            "phone",
            "phonenumber",
            "telephone",
            "mainphone",
            "businessphone",
        ],
    ),
    sf(
        "email",
        &["email", "emailaddress", "generalemail", "companyemail"],
    ),
    sf("website", &["website", "web", "url", "homepage", "site"]),
    sf(
        "street",
        &[
            "street",
            "address",
            "streetaddress",
            "address1",
            "addressline1",
        ],
    ),
    sf("city", &["city", "town"]),
    sf("state", &["state", "province", "region", "stateprovince"]),
    sf("zip", &["zip", "zipcode", "postalcode", "postcode"]),
    sf("country", &["country", "countryregion"]),
    sf("description", &["description", "notes", "about"]),
];
const CONTACT_FIELDS: &[StandardField] = &[
    sf("first_name", &["firstname", "givenname", "first"]),
    sf("last_name", &["lastname", "surname", "familyname", "last"]),
    sf(
        "email",
        &[
            "email",
            "emailaddress",
            "mail",
            "generalemail",
            "companyemail",
        ],
    ),
    sf(
        "phone",
        &[
            "phone",
            "phonenumber",
            "telephone",
            "workphone",
            "businessphone",
        ],
    ),
    sf("mobile", &["mobile", "mobilephone", "cell", "cellphone"]),
    rf(
        "account",
        &["organization", "account", "company"],
        ObjectKind::Account,
    ),
];
const TICKET_FIELDS: &[StandardField] = &[
    sf(
        "subject",
        &["subject", "title", "summary", "ticketsubject", "taskname"],
    ),
    sf(
        "description",
        &["description", "details", "problemdescription", "body"],
    ),
    en("status", &["status", "ticketstatus", "state", "progress"]),
    en(
        "priority",
        &["priority", "urgency", "severity", "importance"],
    ),
    en("department", &["department", "queue", "dept", "team"]),
    sf("assignee", &["assignee", "assignedto", "owner", "agent"]),
    rf(
        "contact",
        &["contact", "requester", "customer", "requestedby"],
        ObjectKind::Contact,
    ),
    rf(
        "account",
        &["organization", "account", "company"],
        ObjectKind::Account,
    ),
    en("channel", &["channel", "source", "origin", "medium"]),
    sf("due_date", &["duedate", "due", "deadline", "resolutiondue"]),
    sf("category", &["category", "type", "tickettype"]),
    sf("sub_category", &["subcategory", "subtype"]),
    sf("product", &["product", "productname"]),
    sf(
        "related_tickets",
        &["relatedtickets", "parentticket", "linkedtickets"],
    ),
    sf("tags", &["tags", "labels", "tag", "keywords"]),
    sf("spam", &["spam", "isspam", "markedspam", "markedasspam"]),
    sf("created_by", &["createdby"]),
];
const ACTIVITY_FIELDS: &[StandardField] = &[
    rf(
        "ticket",
        &["ticket", "relatedticket", "case"],
        ObjectKind::Ticket,
    ),
    en("type", &["type", "activitytype", "kind"]),
    en("direction", &["direction", "inout", "emaildirection"]),
    sf("from", &["from", "sender", "fromaddress"]),
    sf("to", &["to", "recipients", "toaddress"]),
    sf("cc", &["cc", "copy", "carboncopy", "cclist", "copyto"]),
    sf("email_subject", &["subject", "emailsubject", "title"]),
    sf("author_name", &["authorname", "fromname", "sendername"]),
    sf("body", &["body", "content", "message", "text", "notes"]),
    sf(
        "public",
        &["public", "ispublic", "visibility", "visibletocustomer"],
    ),
    sf(
        "disposition",
        &[
            "disposition",
            "calldisposition",
            "outcome",
            "result",
            "callresult",
        ],
    ),
    sf(
        "duration",
        &[
            "duration",
            "callduration",
            "durationseconds",
            "length",
            "calldurationsec",
            "talktime",
        ],
    ),
    sf("created_by", &["createdby"]),
];
const TASK_FIELDS: &[StandardField] = &[
    rf(
        "ticket",
        &["ticket", "relatedticket", "case"],
        ObjectKind::Ticket,
    ),
    sf("subject", &["subject", "title", "task", "name", "taskname"]),
    sf("description", &["description", "details", "notes"]),
    sf("due_date", &["duedate", "due", "deadline", "resolutiondue"]),
    en("status", &["status", "taskstatus", "state", "progress"]),
    en("priority", &["priority", "importance"]),
    sf("owner", &["owner", "assignee", "assignedto", "responsible"]),
];

/// The canonical fields per kind, which the destination connectors know how to write.
pub fn standard_fields(kind: ObjectKind) -> &'static [StandardField] {
    use ObjectKind::*;
    match kind {
        Agent => AGENT_FIELDS,
        Group => GROUP_FIELDS,
        Account => ACCOUNT_FIELDS,
        Contact => CONTACT_FIELDS,
        Ticket => TICKET_FIELDS,
        Activity => ACTIVITY_FIELDS,
        Task => TASK_FIELDS,
        Attachment | Workflow | View | ChangeHistory => &[],
    }
}

/// Which kind a source collection holds, by its name.
pub fn propose_kind(collection: &str) -> Option<(ObjectKind, f32, &'static str)> {
    let n = norm(collection);
    let table: [(ObjectKind, &[&str]); 10] = [
        (ObjectKind::Agent, &["users", "agents", "staff"]),
        (ObjectKind::Group, &["groups", "teams"]),
        (
            ObjectKind::Account,
            &["organizations", "organisations", "accounts", "companies"],
        ),
        (ObjectKind::Contact, &["contacts", "people", "customers"]),
        (ObjectKind::Ticket, &["tickets", "cases", "requests"]),
        (
            ObjectKind::Activity,
            &["activities", "interactions", "threads", "conversations"],
        ),
        (ObjectKind::Task, &["tasks", "todos"]),
        (
            ObjectKind::Workflow,
            &["workflows", "automations", "processes"],
        ),
        (ObjectKind::View, &["views", "savedviews", "customviews"]),
        (
            ObjectKind::ChangeHistory,
            &["changehistory", "audittrail", "history"],
        ),
    ];
    for (kind, names) in table {
        if names.contains(&n.as_str()) {
            return Some((kind, 0.95, "collection name is a usual name of this kind"));
        }
    }
    for (kind, names) in table {
        if names.iter().any(|x| n.contains(x.trim_end_matches('s'))) {
            return Some((
                kind,
                0.6,
                "collection name contains a usual name of this kind",
            ));
        }
    }
    None
}

fn norm(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Proposes the whole map from the discovered schema, sample records and the destination.
pub fn propose(
    source_platform: &str,
    schema: &SourceSchema,
    samples: &BTreeMap<String, Vec<RawRecord>>,
    dest: &DestinationInfo,
) -> FieldMap {
    let mut collections = Vec::new();
    let mut taken_kinds = BTreeSet::new();
    for col in &schema.collections {
        let Some((kind, kconf, kreason)) = propose_kind(&col.name) else {
            continue;
        };
        if !col.readable() || !taken_kinds.insert(kind) {
            continue;
        }
        let kind_of_collection = |name: &str| {
            schema
                .collections
                .iter()
                .find(|c| c.name == name)
                .and_then(|c| propose_kind(&c.name))
                .map(|k| k.0)
        };
        let recs = samples.get(&col.name).map(Vec::as_slice).unwrap_or(&[]);
        let mut used = BTreeSet::new();
        let mut fields = Vec::new();
        for f in &col.fields {
            let sample_values = sample_values(recs, &f.name);
            let mut m = propose_field(kind, f, &sample_values, &kind_of_collection, &mut used);
            m.samples = sample_values.iter().take(5).cloned().collect();
            m.options = f.options.clone();
            if let Target::Standard { field } = &m.target
                && standard_fields(kind)
                    .iter()
                    .any(|s| s.name == field && s.enumerated)
            {
                let mut values: Vec<String> = f.options.clone();
                for v in &sample_values {
                    if !values.contains(v) {
                        values.push(v.clone());
                    }
                }
                m.value_map = propose_values(kind, field, &values, dest);
            }
            fields.push(m);
        }
        collections.push(CollectionMap {
            collection: col.name.clone(),
            kind,
            confidence: kconf,
            reason: kreason.to_string(),
            fields,
        });
    }
    FieldMap {
        source_platform: source_platform.to_string(),
        destination_platform: dest.platform.clone(),
        collections,
    }
}

fn sample_values(recs: &[RawRecord], field: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in recs {
        let vals: Vec<String> = match r.fields.get(field) {
            Some(serde_json::Value::String(s)) if !s.is_empty() => vec![s.clone()],
            Some(serde_json::Value::Number(n)) => vec![n.to_string()],
            Some(serde_json::Value::Bool(b)) => vec![b.to_string()],
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => vec![],
        };
        for v in vals {
            if !out.contains(&v) && out.len() < 50 {
                out.push(v);
            }
        }
    }
    out
}

fn propose_field(
    kind: ObjectKind,
    f: &FieldDef,
    samples: &[String],
    kind_of_collection: &dyn Fn(&str) -> Option<ObjectKind>,
    used: &mut BTreeSet<&'static str>,
) -> FieldMapping {
    let n = norm(&f.name);
    let nl = norm(&f.label);
    let base = |target: Target, confidence: f32, reason: String| FieldMapping {
        source: f.name.clone(),
        label: f.label.clone(),
        source_type: f.field_type.clone(),
        target,
        confidence,
        reason,
        samples: vec![],
        options: vec![],
        value_map: BTreeMap::new(),
        linked_collection: None,
    };
    match f.name.as_str() {
        "collection_id" => {
            return base(
                Target::Ignore,
                1.0,
                "record id: kept in the crosswalk, not as a field".into(),
            );
        }
        "created_date" | "modified_date" | "modified_by" => {
            return base(
                Target::Ignore,
                1.0,
                "system stamp: carried as provenance and delta cursor".into(),
            );
        }
        "created_by" if !standard_fields(kind).iter().any(|s| s.name == "created_by") => {
            return base(
                Target::Ignore,
                1.0,
                "system stamp: this kind has no creator field in the destination".into(),
            );
        }
        _ => {}
    }
    // References are recognised by what they link to, before names.
    if f.field_type == FieldType::LinkedRecord
        && let Some(linked) = f.linked_collection.as_deref().and_then(kind_of_collection)
        && let Some(sfield) = standard_fields(kind)
            .iter()
            .find(|s| s.references == Some(linked))
        && !used.contains(sfield.name)
    {
        used.insert(sfield.name);
        return base(
            Target::Standard {
                field: sfield.name.to_string(),
            },
            0.95,
            format!("links to the {linked} collection"),
        );
    }
    let mut best: Option<(&'static StandardField, f32, String)> = None;
    for s in standard_fields(kind) {
        if used.contains(s.name)
            || s.references.is_some() && f.field_type != FieldType::LinkedRecord
        {
            continue;
        }
        let (score, why) = if s.synonyms.contains(&n.as_str()) || s.synonyms.contains(&nl.as_str())
        {
            (
                0.9,
                format!("name {:?} is a usual name of {}", f.label, s.name),
            )
        } else if s
            .synonyms
            .iter()
            .any(|syn| syn.len() >= 4 && (n.contains(syn) || nl.contains(syn)))
        {
            (
                0.6,
                format!("name {:?} contains a usual name of {}", f.label, s.name),
            )
        } else {
            continue;
        };
        let score = score * type_fit(s.name, &f.field_type, samples);
        if score > best.as_ref().map_or(0.0, |b| b.1) {
            best = Some((s, score, why));
        }
    }
    if let Some((s, score, why)) = best
        && score >= 0.5
    {
        used.insert(s.name);
        return base(
            Target::Standard {
                field: s.name.to_string(),
            },
            score,
            why,
        );
    }
    if f.field_type == FieldType::LinkedRecord {
        return FieldMapping {
            linked_collection: f.linked_collection.clone(),
            ..base(
                Target::Custom { label: f.label.clone(), field_type: FieldType::Text, options: vec![] },
                0.6,
                "links a collection with no destination counterpart: a text field names the linked record (name and id); that collection's records go to the migration package"
                    .into(),
            )
        };
    }
    base(
        Target::Custom {
            label: f.label.clone(),
            field_type: f.field_type.clone(),
            options: f.options.clone(),
        },
        0.8,
        format!("no standard {kind} field matches; created as a custom field of the nearest type"),
    )
}

/// How well a field's type and samples fit a standard field (1.0 = fine).
fn type_fit(target: &str, t: &FieldType, samples: &[String]) -> f32 {
    let is_email = |s: &String| s.contains('@') && !s.contains(' ');
    match target {
        "from" => {
            if samples.is_empty() || samples.iter().any(|s| s.contains('@')) {
                1.0
            } else {
                0.5
            }
        }
        "email" => {
            if *t == FieldType::Email || samples.is_empty() || samples.iter().all(is_email) {
                1.0
            } else {
                0.5
            }
        }
        "description" | "body" => {
            if matches!(t, FieldType::Textarea | FieldType::Text) {
                1.0
            } else {
                0.4
            }
        }
        "due_date" => {
            if matches!(t, FieldType::Date | FieldType::Datetime) {
                1.0
            } else {
                0.4
            }
        }
        "assignee" | "owner" | "created_by" => {
            if *t == FieldType::UserLink {
                1.0
            } else {
                0.6
            }
        }
        "spam" | "active" => {
            if *t == FieldType::Checkbox {
                1.0
            } else {
                0.5
            }
        }
        "duration" => {
            if matches!(t, FieldType::Number | FieldType::Decimal) {
                1.0
            } else {
                0.5
            }
        }
        _ => 1.0,
    }
}

/// Proposes destination values for a source enumeration.
pub fn propose_values(
    kind: ObjectKind,
    field: &str,
    values: &[String],
    dest: &DestinationInfo,
) -> BTreeMap<String, String> {
    let allowed: Vec<String> = match (kind, field) {
        (ObjectKind::Ticket, "department") => {
            dest.departments.iter().map(|d| d.name.clone()).collect()
        }
        (ObjectKind::Activity, "type") => vec!["email".into(), "call".into(), "note".into()],
        (ObjectKind::Activity, "direction") => vec!["inbound".into(), "outbound".into()],
        _ => dest
            .allowed_values
            .get(&format!("{kind}.{field}"))
            .cloned()
            .unwrap_or_default(),
    };
    let mut out = BTreeMap::new();
    if allowed.is_empty() {
        return out;
    }
    for v in values {
        let nv = norm(v);
        let exact = allowed.iter().find(|a| norm(a) == nv);
        let guess = exact
            .cloned()
            .or_else(|| heuristic(kind, field, &nv, &allowed));
        let chosen = guess.unwrap_or_else(|| allowed[0].clone());
        out.insert(v.clone(), chosen);
    }
    out
}

fn heuristic(kind: ObjectKind, field: &str, nv: &str, allowed: &[String]) -> Option<String> {
    let pick = |cands: &[&str]| {
        cands
            .iter()
            .find_map(|c| allowed.iter().find(|a| norm(a) == *c).cloned())
    };
    let has = |keys: &[&str]| keys.iter().any(|k| nv.contains(k));
    match (kind, field) {
        (ObjectKind::Ticket, "status") => {
            if has(&["clos", "resolv", "done", "complet", "solved", "fixed"]) {
                pick(&["closed", "resolved"])
            } else if has(&["wait", "pend", "hold", "custom", "paus", "await", "snooz"]) {
                pick(&["onhold", "pending", "waitingforcustomer"])
            } else if has(&["escal"]) {
                pick(&["escalated", "open"])
            } else {
                pick(&["open", "new"])
            }
        }
        (ObjectKind::Task, "status") => {
            if has(&["complet", "done", "clos"]) {
                pick(&["completed"])
            } else if has(&["progress", "start", "working"]) && !has(&["not"]) {
                pick(&["inprogress"])
            } else if has(&["defer", "postpon", "later"]) {
                pick(&["deferred"])
            } else if has(&["wait"]) {
                pick(&["waitingonsomeoneelse", "deferred"])
            } else {
                pick(&["notstarted"])
            }
        }
        (_, "priority") => {
            if has(&["urgent", "critical", "blocker", "highest"]) {
                pick(&["urgent", "highest", "high"])
            } else if has(&["high", "major"]) {
                pick(&["high"])
            } else if has(&["low", "minor", "trivial"]) {
                pick(&["low", "lowest"])
            } else {
                pick(&["medium", "normal"])
            }
        }
        (ObjectKind::Ticket, "channel") => {
            if has(&["mail"]) {
                pick(&["email"])
            } else if has(&["chat"]) {
                pick(&["chat", "web"])
            } else if has(&["portal", "web", "form"]) {
                pick(&["web", "customerportal"])
            } else if has(&["twitter", "social"]) {
                pick(&["twitter", "facebook", "web"])
            } else if has(&["facebook"]) {
                pick(&["facebook", "web"])
            } else if has(&["forum", "community"]) {
                pick(&["forums", "web"])
            } else if has(&["phone", "call", "voice"]) {
                pick(&["phone"])
            } else {
                pick(&["web", "email"])
            }
        }
        (ObjectKind::Activity, "type") => {
            if has(&["mail"]) {
                pick(&["email"])
            } else if has(&["call", "phone"]) {
                pick(&["call"])
            } else {
                pick(&["note"])
            }
        }
        (ObjectKind::Activity, "direction") => {
            if has(&["out", "sent"]) {
                pick(&["outbound"])
            } else {
                pick(&["inbound"])
            }
        }
        _ => None,
    }
}

/// A person's approval of one exact map.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub map_digest: String,
    pub approved_by: String,
    pub approved_at: String,
    /// Set by `deskshift demo`: nobody reviewed the map.
    pub automatic: bool,
}

impl Approval {
    /// Fails unless this approval pins exactly `map`.
    pub fn check(&self, map: &FieldMap) -> Result<()> {
        let digest = map.digest();
        if digest != self.map_digest {
            return Err(Error::Approval(format!(
                "the field map changed after it was approved (approved {}, now {}); review it and run `deskshift mapping approve` again",
                &self.map_digest[..12],
                &digest[..12]
            )));
        }
        Ok(())
    }
}
