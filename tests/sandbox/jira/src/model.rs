//! The tenant's records and how the platform API renders them.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use md5::{Digest, Md5};
use serde_json::{Map, Value, json};

pub const ADMIN_TIME_ZONE: &str = "Etc/UTC";

pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn ts(ms: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// Jira's timestamp style: `2021-01-17T12:34:00.000+0000`.
pub fn jira_time(ms: i64) -> String {
    format!(
        "{}.{:03}+0000",
        ts(ms).strftime("%Y-%m-%dT%H:%M:%S"),
        ms.rem_euclid(1000)
    )
}

/// The servicedeskapi date object.
pub fn date_object(ms: i64) -> Value {
    json!({
        "iso8601": format!("{}+0000", ts(ms).strftime("%Y-%m-%dT%H:%M:%S")),
        "jira": jira_time(ms),
        "friendly": ts(ms).strftime("%d/%b/%y %I:%M %p").to_string(),
        "epochMillis": ms,
    })
}

pub fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

/// A stable UUID-shaped id derived from (salt, n), so runs with the same inputs give the same ids.
pub fn derived_uuid(salt: &str, n: u64) -> String {
    let h = md5_hex(format!("{salt}:{n}").as_bytes());
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

#[derive(Clone, Debug)]
pub struct User {
    pub account_id: String,
    pub account_type: String,
    pub display_name: String,
    pub email: Option<String>,
    pub active: bool,
    pub seeded: bool,
}

#[derive(Clone, Debug)]
pub struct Project {
    pub id: u64,
    pub key: String,
    pub name: String,
    pub lead: String,
    pub issue_counter: u64,
    pub workflow: &'static Workflow,
    pub seeded: bool,
}

#[derive(Clone, Debug)]
pub struct RequestType {
    pub id: u64,
    pub name: String,
    pub description: String,
    pub issue_type_id: String,
    pub fields: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct ServiceDesk {
    pub id: u64,
    pub project_key: String,
    pub customers: BTreeSet<String>,
    pub organizations: BTreeSet<u64>,
    pub request_types: Vec<RequestType>,
    pub seeded: bool,
}

#[derive(Clone, Debug)]
pub struct Organization {
    pub id: u64,
    pub name: String,
    pub members: BTreeSet<String>,
    pub created_ms: i64,
    pub seeded: bool,
}

#[derive(Clone, Debug)]
pub struct Comment {
    pub id: u64,
    pub author: String,
    pub body: Value,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub public: bool,
    pub visibility: Option<Value>,
    pub properties: Vec<(String, Value)>,
}

#[derive(Clone, Debug)]
pub struct Attachment {
    pub id: u64,
    pub issue_id: u64,
    pub filename: String,
    pub mime_type: String,
    pub media_uuid: String,
    pub md5: String,
    pub author: String,
    pub created_ms: i64,
    pub data: Bytes,
}

#[derive(Clone, Debug)]
pub struct TempAttachment {
    pub id: String,
    pub service_desk_id: u64,
    pub filename: String,
    pub mime_type: String,
    pub data: Bytes,
}

#[derive(Clone, Debug)]
pub struct RequestInfo {
    pub service_desk_id: u64,
    pub request_type_id: u64,
}

#[derive(Clone, Debug)]
pub struct Issue {
    pub id: u64,
    pub key: String,
    pub project_key: String,
    pub issue_type_id: String,
    pub summary: String,
    pub description: Option<Value>,
    pub environment: Option<Value>,
    pub labels: Vec<String>,
    pub priority_id: Option<String>,
    pub duedate: Option<String>,
    pub components: Vec<u64>,
    pub assignee: Option<String>,
    pub reporter: Option<String>,
    pub creator: String,
    pub parent: Option<u64>,
    pub status_id: &'static str,
    pub resolution: bool,
    pub resolution_ms: Option<i64>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub status_changed_ms: i64,
    pub custom: BTreeMap<String, Value>,
    pub comments: Vec<Comment>,
    pub attachments: Vec<u64>,
    pub properties: BTreeMap<String, Value>,
    pub request: Option<RequestInfo>,
    pub seeded: bool,
}

#[derive(Clone, Debug)]
pub struct FieldOption {
    pub id: u64,
    pub value: String,
    pub disabled: bool,
}

#[derive(Clone, Debug)]
pub struct FieldContext {
    pub id: u64,
    pub name: String,
    pub description: String,
    pub project_ids: Vec<String>,
    pub issue_type_ids: Vec<String>,
    pub options: Vec<FieldOption>,
}

#[derive(Clone, Debug)]
pub struct CustomField {
    pub num: u64,
    pub name: String,
    pub description: String,
    /// Short type, e.g. `textfield` (the part after `customfieldtypes:`).
    pub kind: String,
    pub searcher_key: Option<String>,
    pub contexts: Vec<FieldContext>,
}

impl CustomField {
    pub fn id(&self) -> String {
        format!("customfield_{}", self.num)
    }
    pub fn type_key(&self) -> String {
        format!("{CF_PREFIX}{}", self.kind)
    }
}

pub const CF_PREFIX: &str = "com.atlassian.jira.plugin.system.customfieldtypes:";
pub const CF_KINDS: &[&str] = &[
    "textfield",
    "textarea",
    "select",
    "multiselect",
    "radiobuttons",
    "multicheckboxes",
    "cascadingselect",
    "datepicker",
    "datetime",
    "float",
    "labels",
    "url",
    "userpicker",
    "multiuserpicker",
    "grouppicker",
    "multigrouppicker",
    "project",
    "version",
    "multiversion",
    "readonlyfield",
    "importid",
];

#[derive(Clone, Debug)]
pub struct Component {
    pub id: u64,
    pub project_key: String,
    pub name: String,
    pub description: String,
    pub lead: Option<String>,
    pub assignee_type: String,
}

#[derive(Clone, Debug)]
pub struct Link {
    pub id: u64,
    pub type_id: &'static str,
    pub inward: u64,
    pub outward: u64,
}

// ---------------------------------------------------------------- static catalogue

#[derive(Debug)]
pub struct Status {
    pub id: &'static str,
    pub name: &'static str,
    pub category: &'static str,
}

#[derive(Debug)]
pub struct Transition {
    pub id: &'static str,
    pub name: &'static str,
    pub from: &'static [&'static str],
    pub to: &'static str,
}

#[derive(Debug)]
pub struct Workflow {
    pub name: &'static str,
    pub initial: &'static str,
    pub statuses: &'static [Status],
    pub transitions: &'static [Transition],
}

impl Workflow {
    pub fn status(&self, id: &str) -> &'static Status {
        self.statuses
            .iter()
            .find(|s| s.id == id)
            .unwrap_or(&self.statuses[0])
    }
    pub fn status_by_name(&self, name: &str) -> Option<&'static Status> {
        self.statuses
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name) || s.id == name)
    }
    pub fn available(&self, from: &str) -> impl Iterator<Item = &'static Transition> {
        let from = from.to_string();
        self.transitions
            .iter()
            .filter(move |t| t.from.contains(&from.as_str()))
    }
}

pub static SERVICE_WORKFLOW: Workflow = Workflow {
    name: "Service management workflow",
    initial: "1",
    statuses: &[
        Status {
            id: "1",
            name: "Open",
            category: "new",
        },
        Status {
            id: "3",
            name: "In Progress",
            category: "indeterminate",
        },
        Status {
            id: "10001",
            name: "Waiting for customer",
            category: "indeterminate",
        },
        Status {
            id: "5",
            name: "Resolved",
            category: "done",
        },
        Status {
            id: "6",
            name: "Closed",
            category: "done",
        },
    ],
    transitions: &[
        Transition {
            id: "11",
            name: "Start progress",
            from: &["1", "10001"],
            to: "3",
        },
        Transition {
            id: "21",
            name: "Wait for customer",
            from: &["1", "3"],
            to: "10001",
        },
        Transition {
            id: "31",
            name: "Resolve",
            from: &["1", "3", "10001"],
            to: "5",
        },
        Transition {
            id: "41",
            name: "Close",
            from: &["5"],
            to: "6",
        },
        Transition {
            id: "51",
            name: "Reopen",
            from: &["5", "6"],
            to: "1",
        },
    ],
};

pub fn status_category(key: &str) -> (u64, &'static str, &'static str, &'static str) {
    match key {
        "new" => (2, "new", "blue-gray", "To Do"),
        "done" => (3, "done", "green", "Done"),
        _ => (4, "indeterminate", "yellow", "In Progress"),
    }
}

pub struct IssueType {
    pub id: &'static str,
    pub name: &'static str,
    pub subtask: bool,
    pub description: &'static str,
}

pub static ISSUE_TYPES: &[IssueType] = &[
    IssueType {
        id: "10001",
        name: "Task",
        subtask: false,
        description: "A small, distinct piece of work.",
    },
    IssueType {
        id: "10002",
        name: "Sub-task",
        subtask: true,
        description: "A small piece of work that's part of a larger task.",
    },
    IssueType {
        id: "10003",
        name: "Service Request",
        subtask: false,
        description: "Requests for help or information.",
    },
    IssueType {
        id: "10004",
        name: "Incident",
        subtask: false,
        description: "For system outages or incidents.",
    },
];

pub fn issue_type(id_or_name: &str) -> Option<&'static IssueType> {
    ISSUE_TYPES
        .iter()
        .find(|t| t.id == id_or_name || t.name.eq_ignore_ascii_case(id_or_name))
}

pub static PRIORITIES: &[(&str, &str, &str)] = &[
    ("1", "Highest", "#d04437"),
    ("2", "High", "#f15C75"),
    ("3", "Medium", "#f79232"),
    ("4", "Low", "#707070"),
    ("5", "Lowest", "#999999"),
];

pub static LINK_TYPES: &[(&str, &str, &str, &str)] = &[
    ("10000", "Blocks", "is blocked by", "blocks"),
    ("10001", "Cloners", "is cloned by", "clones"),
    ("10002", "Duplicate", "is duplicated by", "duplicates"),
    ("10003", "Relates", "relates to", "relates to"),
];

// ---------------------------------------------------------------- the store

#[derive(Default)]
pub struct Store {
    pub next_id: u64,
    pub next_org_id: u64,
    pub next_desk_id: u64,
    pub next_request_type_id: u64,
    pub next_account: u64,
    pub users: BTreeMap<String, User>,
    pub projects: BTreeMap<String, Project>,
    pub service_desks: BTreeMap<u64, ServiceDesk>,
    pub organizations: BTreeMap<u64, Organization>,
    pub issues: BTreeMap<u64, Issue>,
    pub issue_keys: HashMap<String, u64>,
    pub attachments: BTreeMap<u64, Attachment>,
    pub media: HashMap<String, u64>,
    pub temp_attachments: BTreeMap<String, TempAttachment>,
    pub fields: BTreeMap<u64, CustomField>,
    pub components: BTreeMap<u64, Component>,
    pub links: BTreeMap<u64, Link>,
    pub admin: String,
    pub salt: String,
}

impl Store {
    pub fn new(salt: &str) -> Store {
        Store {
            next_id: 10000,
            next_org_id: 1,
            next_desk_id: 1,
            next_request_type_id: 1,
            salt: salt.to_string(),
            ..Store::default()
        }
    }

    pub fn id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub fn new_uuid(&mut self) -> String {
        let n = self.id();
        derived_uuid(&self.salt, n)
    }

    /// An agent-style (`atlassian`) or portal (`customer`, `qm:` prefixed) account id.
    pub fn new_account_id(&mut self, account_type: &str) -> String {
        self.next_account += 1;
        let h = md5_hex(format!("{}:account:{}", self.salt, self.next_account).as_bytes());
        if account_type == "customer" {
            format!("qm:{}", derived_uuid(&self.salt, self.next_account))
        } else {
            format!("5b10{}", &h[..20])
        }
    }

    pub fn add_user(
        &mut self,
        account_id: Option<String>,
        account_type: &str,
        display_name: &str,
        email: Option<String>,
        seeded: bool,
    ) -> String {
        let account_id = account_id.unwrap_or_else(|| self.new_account_id(account_type));
        self.users.insert(
            account_id.clone(),
            User {
                account_id: account_id.clone(),
                account_type: account_type.to_string(),
                display_name: display_name.to_string(),
                email,
                active: true,
                seeded,
            },
        );
        account_id
    }

    pub fn user_by_email(&self, email: &str) -> Option<&User> {
        self.users.values().find(|u| {
            u.email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
        })
    }

    /// Finds an account by account id or e-mail address.
    pub fn resolve_user(&self, who: &str) -> Option<&User> {
        self.users.get(who).or_else(|| self.user_by_email(who))
    }

    pub fn issue_id(&self, id_or_key: &str) -> Option<u64> {
        if let Some(id) = self.issue_keys.get(&id_or_key.to_ascii_uppercase()) {
            return Some(*id);
        }
        id_or_key
            .parse::<u64>()
            .ok()
            .filter(|id| self.issues.contains_key(id))
    }

    pub fn project(&self, id_or_key: &str) -> Option<&Project> {
        self.projects
            .get(&id_or_key.to_ascii_uppercase())
            .or_else(|| {
                self.projects
                    .values()
                    .find(|p| p.id.to_string() == id_or_key)
            })
    }

    pub fn add_project(&mut self, key: &str, name: &str, seeded: bool) -> String {
        let key = key.to_ascii_uppercase();
        if !self.projects.contains_key(&key) {
            let id = self.id();
            let lead = self.admin.clone();
            self.projects.insert(
                key.clone(),
                Project {
                    id,
                    key: key.clone(),
                    name: name.to_string(),
                    lead,
                    issue_counter: 0,
                    workflow: &SERVICE_WORKFLOW,
                    seeded,
                },
            );
        }
        key
    }

    pub fn desk_for_project(&self, key: &str) -> Option<&ServiceDesk> {
        self.service_desks.values().find(|d| d.project_key == key)
    }

    pub fn desk(&self, id_or_key: &str) -> Option<&ServiceDesk> {
        match id_or_key.parse::<u64>() {
            Ok(id) => self.service_desks.get(&id),
            Err(_) => self.desk_for_project(&id_or_key.to_ascii_uppercase()),
        }
    }

    pub fn add_service_desk(
        &mut self,
        name: &str,
        project_key: &str,
        request_types: &[crate::RequestTypeConfig],
        seeded: bool,
    ) -> u64 {
        let key = self.add_project(project_key, name, seeded);
        if let Some(existing) = self.desk_for_project(&key) {
            return existing.id;
        }
        let id = self.next_desk_id;
        self.next_desk_id += 1;
        let defaults = crate::RequestTypeConfig::defaults();
        let configs = if request_types.is_empty() {
            &defaults[..]
        } else {
            request_types
        };
        let mut types = Vec::new();
        for rt in configs {
            let rt_id = self.next_request_type_id;
            self.next_request_type_id += 1;
            let issue_type_id = issue_type(&rt.issue_type)
                .map(|t| t.id)
                .unwrap_or("10003")
                .to_string();
            types.push(RequestType {
                id: rt_id,
                name: rt.name.clone(),
                description: rt.description.clone(),
                issue_type_id,
                fields: rt.fields.clone(),
            });
        }
        self.service_desks.insert(
            id,
            ServiceDesk {
                id,
                project_key: key,
                customers: BTreeSet::new(),
                organizations: BTreeSet::new(),
                request_types: types,
                seeded,
            },
        );
        id
    }

    /// True when the account may raise requests in the desk: a direct customer, a member of a
    /// linked organization, or an agent.
    pub fn may_raise(&self, desk: &ServiceDesk, account_id: &str) -> bool {
        if self
            .users
            .get(account_id)
            .is_some_and(|u| u.account_type == "atlassian")
        {
            return true;
        }
        desk.customers.contains(account_id)
            || desk
                .organizations
                .iter()
                .filter_map(|o| self.organizations.get(o))
                .any(|o| o.members.contains(account_id))
    }

    pub fn field(&self, id: &str) -> Option<&CustomField> {
        let num = id
            .strip_prefix("customfield_")
            .or_else(|| id.strip_prefix("cf[").and_then(|s| s.strip_suffix(']')))?;
        self.fields.get(&num.parse().ok()?)
    }

    pub fn field_by_name(&self, name: &str) -> Vec<&CustomField> {
        self.fields
            .values()
            .filter(|f| f.name.eq_ignore_ascii_case(name))
            .collect()
    }

    pub fn new_issue(
        &mut self,
        project_key: &str,
        issue_type_id: &str,
        summary: String,
        seeded: bool,
    ) -> Issue {
        let project = self.projects.get_mut(project_key).expect("project exists");
        project.issue_counter += 1;
        let key = format!("{}-{}", project.key, project.issue_counter);
        let initial = project.workflow.initial;
        let id = self.id();
        let now = now_ms();
        Issue {
            id,
            key,
            project_key: project_key.to_string(),
            issue_type_id: issue_type_id.to_string(),
            summary,
            description: None,
            environment: None,
            labels: Vec::new(),
            priority_id: Some("3".to_string()),
            duedate: None,
            components: Vec::new(),
            assignee: None,
            reporter: Some(self.admin.clone()),
            creator: self.admin.clone(),
            parent: None,
            status_id: initial,
            resolution: false,
            resolution_ms: None,
            created_ms: now,
            updated_ms: now,
            status_changed_ms: now,
            custom: BTreeMap::new(),
            comments: Vec::new(),
            attachments: Vec::new(),
            properties: BTreeMap::new(),
            request: None,
            seeded,
        }
    }

    pub fn insert_issue(&mut self, issue: Issue) {
        self.issue_keys.insert(issue.key.clone(), issue.id);
        self.issues.insert(issue.id, issue);
    }

    pub fn subtasks(&self, id: u64) -> Vec<u64> {
        self.issues
            .values()
            .filter(|i| i.parent == Some(id))
            .map(|i| i.id)
            .collect()
    }

    /// Removes an issue with its comments, attachments and links.
    pub fn remove_issue(&mut self, id: u64) {
        if let Some(issue) = self.issues.remove(&id) {
            self.issue_keys.remove(&issue.key);
            for att in issue.attachments {
                if let Some(a) = self.attachments.remove(&att) {
                    self.media.remove(&a.media_uuid);
                }
            }
            self.links.retain(|_, l| l.inward != id && l.outward != id);
        }
    }

    pub fn add_attachment(
        &mut self,
        issue_id: u64,
        filename: &str,
        mime_type: &str,
        data: Bytes,
        author: &str,
    ) -> u64 {
        let id = self.id();
        let media_uuid = self.new_uuid();
        let md5 = md5_hex(&data);
        self.attachments.insert(
            id,
            Attachment {
                id,
                issue_id,
                filename: filename.to_string(),
                mime_type: mime_type.to_string(),
                media_uuid: media_uuid.clone(),
                md5,
                author: author.to_string(),
                created_ms: now_ms(),
                data,
            },
        );
        self.media.insert(media_uuid, id);
        if let Some(issue) = self.issues.get_mut(&issue_id) {
            issue.attachments.push(id);
        }
        id
    }

    pub fn add_comment(
        &mut self,
        issue_id: u64,
        author: &str,
        body: Value,
        public: bool,
        visibility: Option<Value>,
        properties: Vec<(String, Value)>,
    ) -> Option<Comment> {
        let id = self.id();
        let now = now_ms();
        let comment = Comment {
            id,
            author: author.to_string(),
            body,
            created_ms: now,
            updated_ms: now,
            public,
            visibility,
            properties,
        };
        let issue = self.issues.get_mut(&issue_id)?;
        issue.comments.push(comment.clone());
        issue.updated_ms = now;
        Some(comment)
    }
}

// ---------------------------------------------------------------- platform rendering

pub fn avatar_urls(seed: &str) -> Value {
    let base = format!("https://avatar-management.sandbox.invalid/initials/{seed}.png");
    json!({"16x16": format!("{base}?size=16"), "24x24": format!("{base}?size=24"), "32x32": format!("{base}?size=32"), "48x48": format!("{base}?size=48")})
}

pub fn render_user(base: &str, u: &User) -> Value {
    let mut v = json!({
        "self": format!("{base}/rest/api/3/user?accountId={}", u.account_id),
        "accountId": u.account_id,
        "accountType": u.account_type,
        "avatarUrls": avatar_urls(&u.account_id),
        "displayName": u.display_name,
        "active": u.active,
        "timeZone": ADMIN_TIME_ZONE,
        "locale": "en_US",
    });
    if let Some(e) = &u.email {
        v["emailAddress"] = json!(e);
    }
    v
}

/// A user as a nested `UserDetails` (no locale, which only the full User bean has).
pub fn render_user_ref(store: &Store, base: &str, account_id: &str) -> Value {
    match store.users.get(account_id) {
        Some(u) => {
            let mut v = render_user(base, u);
            if let Some(m) = v.as_object_mut() {
                m.remove("locale");
            }
            v
        }
        None => {
            json!({"accountId": account_id, "active": false, "displayName": "Unknown user", "self": format!("{base}/rest/api/3/user?accountId={account_id}")})
        }
    }
}

pub fn render_status(base: &str, wf: &Workflow, id: &str) -> Value {
    let s = wf.status(id);
    let (cid, ckey, color, cname) = status_category(s.category);
    json!({
        "self": format!("{base}/rest/api/3/status/{}", s.id),
        "description": "",
        "iconUrl": format!("{base}/images/icons/statuses/generic.png"),
        "name": s.name,
        "id": s.id,
        "statusCategory": {"self": format!("{base}/rest/api/3/statuscategory/{cid}"), "id": cid, "key": ckey, "colorName": color, "name": cname},
    })
}

pub fn render_issue_type(base: &str, t: &IssueType) -> Value {
    json!({
        "self": format!("{base}/rest/api/3/issuetype/{}", t.id),
        "id": t.id,
        "description": t.description,
        "iconUrl": format!("{base}/images/icons/issuetypes/{}.svg", t.id),
        "name": t.name,
        "subtask": t.subtask,
        "avatarId": 10300,
        "hierarchyLevel": if t.subtask { -1 } else { 0 },
    })
}

pub fn render_priority(base: &str, id: &str) -> Value {
    let (id, name, color) = PRIORITIES
        .iter()
        .find(|p| p.0 == id)
        .copied()
        .unwrap_or(PRIORITIES[2]);
    json!({
        "self": format!("{base}/rest/api/3/priority/{id}"),
        "statusColor": color,
        "description": format!("{name} priority"),
        "iconUrl": format!("{base}/images/icons/priorities/{}.svg", name.to_ascii_lowercase()),
        "name": name,
        "id": id,
        "isDefault": id == "3",
    })
}

pub fn render_project_ref(base: &str, p: &Project) -> Value {
    json!({
        "self": format!("{base}/rest/api/3/project/{}", p.id),
        "id": p.id.to_string(),
        "key": p.key,
        "name": p.name,
        "projectTypeKey": "service_desk",
        "simplified": false,
        "avatarUrls": avatar_urls(&p.key),
    })
}

pub fn render_component(store: &Store, base: &str, c: &Component) -> Value {
    let project_id = store
        .projects
        .get(&c.project_key)
        .map(|p| p.id)
        .unwrap_or_default();
    let mut v = json!({
        "self": format!("{base}/rest/api/3/component/{}", c.id),
        "id": c.id.to_string(),
        "name": c.name,
        "description": c.description,
        "assigneeType": c.assignee_type,
        "realAssigneeType": c.assignee_type,
        "isAssigneeTypeValid": true,
        "project": c.project_key,
        "projectId": project_id,
    });
    if let Some(lead) = &c.lead {
        v["lead"] = render_user_ref(store, base, lead);
        v["leadAccountId"] = json!(lead);
    }
    v
}

pub fn render_attachment(store: &Store, base: &str, a: &Attachment) -> Value {
    json!({
        "self": format!("{base}/rest/api/3/attachment/{}", a.id),
        "id": a.id.to_string(),
        "filename": a.filename,
        "author": render_user_ref(store, base, &a.author),
        "created": jira_time(a.created_ms),
        "size": a.data.len(),
        "mimeType": a.mime_type,
        "content": format!("{base}/rest/api/3/attachment/content/{}", a.id),
    })
}

pub fn render_comment(
    store: &Store,
    base: &str,
    issue_id: u64,
    c: &Comment,
    with_properties: bool,
    rendered: bool,
) -> Value {
    let mut v = json!({
        "self": format!("{base}/rest/api/3/issue/{issue_id}/comment/{}", c.id),
        "id": c.id.to_string(),
        "author": render_user_ref(store, base, &c.author),
        "body": c.body,
        "updateAuthor": render_user_ref(store, base, &c.author),
        "created": jira_time(c.created_ms),
        "updated": jira_time(c.updated_ms),
        "jsdPublic": c.public,
        "jsdAuthorCanSeeRequest": false,
    });
    if let Some(vis) = &c.visibility {
        v["visibility"] = vis.clone();
    }
    if with_properties {
        v["properties"] = Value::Array(
            c.properties
                .iter()
                .map(|(k, val)| json!({"key": k, "value": val}))
                .collect(),
        );
    }
    if rendered {
        v["renderedBody"] = json!(crate::adf::adf_to_html(&c.body));
    }
    v
}

fn issue_stub(store: &Store, base: &str, id: u64) -> Value {
    let Some(i) = store.issues.get(&id) else {
        return Value::Null;
    };
    let wf = store
        .projects
        .get(&i.project_key)
        .map(|p| p.workflow)
        .unwrap_or(&SERVICE_WORKFLOW);
    json!({
        "id": i.id.to_string(),
        "key": i.key,
        "self": format!("{base}/rest/api/3/issue/{}", i.id),
        "fields": {
            "summary": i.summary,
            "status": render_status(base, wf, i.status_id),
            "priority": i.priority_id.as_deref().map(|p| render_priority(base, p)).unwrap_or(Value::Null),
            "issuetype": issue_type(&i.issue_type_id).map(|t| render_issue_type(base, t)).unwrap_or(Value::Null),
        }
    })
}

pub fn render_link_type(base: &str, t: &(&str, &str, &str, &str)) -> Value {
    json!({"id": t.0, "name": t.1, "inward": t.2, "outward": t.3, "self": format!("{base}/rest/api/3/issueLinkType/{}", t.0)})
}

/// Every field of an issue, as `GET /issue/{key}` renders them (custom fields without a value are null).
pub fn render_fields(store: &Store, base: &str, i: &Issue) -> Map<String, Value> {
    let project = store.projects.get(&i.project_key);
    let wf = project.map(|p| p.workflow).unwrap_or(&SERVICE_WORKFLOW);
    let user = |a: &Option<String>| {
        a.as_deref()
            .map(|a| render_user_ref(store, base, a))
            .unwrap_or(Value::Null)
    };
    let mut f = Map::new();
    f.insert("summary".into(), json!(i.summary));
    f.insert(
        "description".into(),
        i.description.clone().unwrap_or(Value::Null),
    );
    f.insert(
        "environment".into(),
        i.environment.clone().unwrap_or(Value::Null),
    );
    f.insert("labels".into(), json!(i.labels));
    f.insert(
        "priority".into(),
        i.priority_id
            .as_deref()
            .map(|p| render_priority(base, p))
            .unwrap_or(Value::Null),
    );
    f.insert(
        "duedate".into(),
        i.duedate.clone().map(Value::String).unwrap_or(Value::Null),
    );
    let comps: Vec<Value> = i
        .components
        .iter()
        .filter_map(|c| store.components.get(c))
        .map(|c| json!({"self": format!("{base}/rest/api/3/component/{}", c.id), "id": c.id.to_string(), "name": c.name}))
        .collect();
    f.insert("components".into(), Value::Array(comps));
    f.insert("assignee".into(), user(&i.assignee));
    f.insert("reporter".into(), user(&i.reporter));
    f.insert("creator".into(), render_user_ref(store, base, &i.creator));
    f.insert(
        "issuetype".into(),
        issue_type(&i.issue_type_id)
            .map(|t| render_issue_type(base, t))
            .unwrap_or(Value::Null),
    );
    f.insert(
        "project".into(),
        project
            .map(|p| render_project_ref(base, p))
            .unwrap_or(Value::Null),
    );
    f.insert("status".into(), render_status(base, wf, i.status_id));
    f.insert(
        "resolution".into(),
        if i.resolution {
            json!({"self": format!("{base}/rest/api/3/resolution/10000"), "id": "10000", "name": "Done", "description": "Work has been completed on this issue."})
        } else {
            Value::Null
        },
    );
    f.insert(
        "resolutiondate".into(),
        i.resolution_ms
            .map(|m| json!(jira_time(m)))
            .unwrap_or(Value::Null),
    );
    f.insert("created".into(), json!(jira_time(i.created_ms)));
    f.insert("updated".into(), json!(jira_time(i.updated_ms)));
    f.insert(
        "statuscategorychangedate".into(),
        json!(jira_time(i.status_changed_ms)),
    );
    if let Some(p) = i.parent {
        f.insert("parent".into(), issue_stub(store, base, p));
    }
    let subtasks: Vec<Value> = store
        .subtasks(i.id)
        .into_iter()
        .map(|s| issue_stub(store, base, s))
        .collect();
    f.insert("subtasks".into(), Value::Array(subtasks));
    let links: Vec<Value> = store
        .links
        .values()
        .filter(|l| l.inward == i.id || l.outward == i.id)
        .map(|l| {
            let lt = LINK_TYPES.iter().find(|t| t.0 == l.type_id).unwrap_or(&LINK_TYPES[3]);
            let mut v = json!({"id": l.id.to_string(), "self": format!("{base}/rest/api/3/issueLink/{}", l.id), "type": render_link_type(base, lt)});
            if l.inward == i.id {
                v["outwardIssue"] = issue_stub(store, base, l.outward);
            } else {
                v["inwardIssue"] = issue_stub(store, base, l.inward);
            }
            v
        })
        .collect();
    f.insert("issuelinks".into(), Value::Array(links));
    let atts: Vec<Value> = i
        .attachments
        .iter()
        .filter_map(|a| store.attachments.get(a))
        .map(|a| render_attachment(store, base, a))
        .collect();
    f.insert("attachment".into(), Value::Array(atts));
    let comments: Vec<Value> = i
        .comments
        .iter()
        .map(|c| render_comment(store, base, i.id, c, false, false))
        .collect();
    let total = comments.len();
    f.insert("comment".into(), json!({"comments": comments, "self": format!("{base}/rest/api/3/issue/{}/comment", i.id), "maxResults": total, "total": total, "startAt": 0}));
    for cf in store.fields.values() {
        let id = cf.id();
        f.insert(
            id.clone(),
            i.custom.get(&id).cloned().unwrap_or(Value::Null),
        );
    }
    f
}

/// Display names of the fields, as `expand=names` adds them.
pub fn field_names(store: &Store) -> Map<String, Value> {
    let mut m = Map::new();
    for (id, name, _) in SYSTEM_FIELDS {
        m.insert(id.to_string(), json!(name));
    }
    for cf in store.fields.values() {
        m.insert(cf.id(), json!(cf.name));
    }
    m
}

/// (id, name, schema type) of the system fields the sandbox keeps.
pub static SYSTEM_FIELDS: &[(&str, &str, &str)] = &[
    ("summary", "Summary", "string"),
    ("description", "Description", "string"),
    ("environment", "Environment", "string"),
    ("labels", "Labels", "array"),
    ("priority", "Priority", "priority"),
    ("duedate", "Due date", "date"),
    ("components", "Components", "array"),
    ("assignee", "Assignee", "user"),
    ("reporter", "Reporter", "user"),
    ("creator", "Creator", "user"),
    ("issuetype", "Issue Type", "issuetype"),
    ("project", "Project", "project"),
    ("status", "Status", "status"),
    ("resolution", "Resolution", "resolution"),
    ("resolutiondate", "Resolved", "datetime"),
    ("created", "Created", "datetime"),
    ("updated", "Updated", "datetime"),
    (
        "statuscategorychangedate",
        "Status Category Changed",
        "datetime",
    ),
    ("parent", "Parent", "issuelink"),
    ("subtasks", "Sub-tasks", "array"),
    ("issuelinks", "Linked Issues", "array"),
    ("attachment", "Attachment", "array"),
    ("comment", "Comment", "comments-page"),
];

pub fn custom_schema(cf: &CustomField) -> Value {
    let (ty, items) = match cf.kind.as_str() {
        "textfield" | "textarea" | "url" | "readonlyfield" | "importid" => ("string", None),
        "select" | "radiobuttons" => ("option", None),
        "multiselect" | "multicheckboxes" => ("array", Some("option")),
        "cascadingselect" => ("option-with-child", None),
        "datepicker" => ("date", None),
        "datetime" => ("datetime", None),
        "float" => ("number", None),
        "labels" => ("array", Some("string")),
        "userpicker" => ("user", None),
        "multiuserpicker" => ("array", Some("user")),
        "grouppicker" => ("group", None),
        "multigrouppicker" => ("array", Some("group")),
        "project" => ("project", None),
        "version" => ("version", None),
        "multiversion" => ("array", Some("version")),
        _ => ("any", None),
    };
    let mut s = json!({"type": ty, "custom": cf.type_key(), "customId": cf.num});
    if let Some(items) = items {
        s["items"] = json!(items);
    }
    s
}

pub fn render_field(cf: &CustomField) -> Value {
    json!({
        "id": cf.id(),
        "key": cf.id(),
        "name": cf.name,
        "custom": true,
        "orderable": true,
        "navigable": true,
        "searchable": cf.searcher_key.is_some() || cf.kind != "readonlyfield",
        "clauseNames": [format!("cf[{}]", cf.num), cf.name.clone()],
        "schema": custom_schema(cf),
    })
}

pub fn render_system_field(id: &str, name: &str, ty: &str) -> Value {
    let mut schema = json!({"type": ty, "system": id});
    match id {
        "labels" => schema["items"] = json!("string"),
        "components" => schema["items"] = json!("component"),
        "subtasks" => schema["items"] = json!("issuelinks"),
        "issuelinks" => schema["items"] = json!("issuelinks"),
        "attachment" => schema["items"] = json!("attachment"),
        _ => {}
    }
    json!({
        "id": id,
        "key": id,
        "name": name,
        "custom": false,
        "orderable": !matches!(id, "status" | "created" | "updated" | "creator" | "resolutiondate" | "subtasks" | "statuscategorychangedate"),
        "navigable": true,
        "searchable": true,
        "clauseNames": [id],
        "schema": schema,
    })
}
