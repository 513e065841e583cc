//! Jira Cloud platform REST v3 (`/rest/api/3`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use crate::Shared;
use crate::adf::AdfValidator;
use crate::error::{self, Answer};
use crate::model::{self, *};
use crate::query::Q;

type S = State<Arc<Shared>>;

pub fn routes() -> Router<Arc<Shared>> {
    let p = |s: &str| format!("/rest/api/3{s}");
    Router::new()
        .route(&p("/issue"), post(create_issue))
        .route(
            &p("/issue/{issueIdOrKey}"),
            get(get_issue).put(edit_issue).delete(delete_issue),
        )
        .route(
            &p("/issue/{issueIdOrKey}/transitions"),
            get(get_transitions).post(do_transition),
        )
        .route(
            &p("/issue/{issueIdOrKey}/comment"),
            get(get_comments).post(add_comment),
        )
        .route(
            &p("/issue/{issueIdOrKey}/comment/{id}"),
            get(get_comment).delete(delete_comment),
        )
        .route(
            &p("/issue/{issueIdOrKey}/attachments"),
            post(add_attachments).layer(DefaultBodyLimit::disable()),
        )
        .route(&p("/issue/{issueIdOrKey}/properties"), get(list_properties))
        .route(
            &p("/issue/{issueIdOrKey}/properties/{propertyKey}"),
            get(get_property).put(set_property).delete(delete_property),
        )
        .route(&p("/attachment/meta"), get(attachment_meta))
        .route(
            &p("/attachment/{id}"),
            get(get_attachment).delete(delete_attachment),
        )
        .route(&p("/attachment/content/{id}"), get(attachment_content))
        .route("/file/{mediaUuid}/binary", get(media_binary))
        .route(&p("/field"), get(get_fields).post(create_field))
        .route(
            &p("/field/{fieldId}/context"),
            get(get_contexts).post(create_context),
        )
        .route(
            &p("/field/{fieldId}/context/{contextId}/option"),
            get(get_options).post(create_options),
        )
        .route(&p("/component"), post(create_component))
        .route(
            &p("/component/{id}"),
            get(get_component).delete(delete_component),
        )
        .route(&p("/project/{projectIdOrKey}"), get(get_project))
        .route(
            &p("/project/{projectIdOrKey}/components"),
            get(project_components),
        )
        .route(&p("/issueLink"), post(link_issues))
        .route(&p("/issueLink/{linkId}"), get(get_link).delete(delete_link))
        .route(&p("/issueLinkType"), get(link_types))
        .route(&p("/user"), get(get_user))
        .route(&p("/user/search"), get(user_search))
        .route(&p("/users/search"), get(all_users))
        .route(&p("/myself"), get(myself))
        .route(&p("/priority"), get(priorities))
        .route(&p("/search/jql"), post(search_jql))
}

fn json201(v: Value) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn bad(msg: &str) -> Response {
    error::platform(StatusCode::BAD_REQUEST, &[msg])
}

fn not_found(msg: &str) -> Response {
    error::platform(StatusCode::NOT_FOUND, &[msg])
}

fn issue_of(store: &Store, key: &str) -> Result<u64, Response> {
    store.issue_id(key).ok_or_else(error::issue_not_found)
}

/// Finds an entity reference given as `{id}`, `{key}`, `{name}` or `{accountId}`.
fn ref_str(v: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match v.get(*k) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

// ---------------------------------------------------------------- issue fields

enum Change {
    Summary(String),
    Description(Option<Value>),
    Environment(Option<Value>),
    Labels(Vec<String>),
    Priority(Option<String>),
    DueDate(Option<String>),
    Components(Vec<u64>),
    Assignee(Option<String>),
    Reporter(Option<String>),
    Custom(String, Option<Value>),
}

fn apply(issue: &mut Issue, changes: Vec<Change>) {
    for c in changes {
        match c {
            Change::Summary(s) => issue.summary = s,
            Change::Description(d) => issue.description = d,
            Change::Environment(d) => issue.environment = d,
            Change::Labels(l) => issue.labels = l,
            Change::Priority(p) => issue.priority_id = p,
            Change::DueDate(d) => issue.duedate = d,
            Change::Components(c) => issue.components = c,
            Change::Assignee(a) => issue.assignee = a,
            Change::Reporter(r) => issue.reporter = r,
            Change::Custom(id, Some(v)) => {
                issue.custom.insert(id, v);
            }
            Change::Custom(id, None) => {
                issue.custom.remove(&id);
            }
        }
    }
    issue.updated_ms = now_ms();
}

const NOT_SETTABLE: &str = "cannot be set. It is not on the appropriate screen, or unknown.";

fn valid_date(s: &str) -> bool {
    s.len() == 10 && s.parse::<jiff::civil::Date>().is_ok()
}

fn labels_of(v: &Value) -> Result<Vec<String>, String> {
    let arr = v.as_array().ok_or("Labels must be an array of strings.")?;
    let mut out = Vec::new();
    for l in arr {
        let s = l.as_str().ok_or("Labels must be an array of strings.")?;
        if s.contains(char::is_whitespace) {
            return Err(format!("The label '{s}' contains spaces which is invalid."));
        }
        if s.is_empty() || s.len() > 255 {
            return Err("A label must be between 1 and 255 characters.".into());
        }
        out.push(s.to_string());
    }
    Ok(out)
}

fn user_value(store: &Store, base: &str, v: &Value) -> Result<Value, String> {
    let id = ref_str(v, &["accountId", "id"]).ok_or("Specify the user by accountId.")?;
    match store.users.get(&id) {
        Some(_) => Ok(render_user_ref(store, base, &id)),
        None => Err(format!("User with accountId '{id}' does not exist.")),
    }
}

fn option_value(cf: &CustomField, base: &str, v: &Value) -> Result<Value, String> {
    let wanted_id = ref_str(v, &["id"]);
    let wanted_value = v.get("value").and_then(Value::as_str);
    let found = cf.contexts.iter().flat_map(|c| c.options.iter()).find(|o| {
        wanted_id.as_deref() == Some(o.id.to_string().as_str())
            || wanted_value == Some(o.value.as_str())
    });
    match found {
        Some(o) if !o.disabled => Ok(
            json!({"self": format!("{base}/rest/api/3/customFieldOption/{}", o.id), "value": o.value, "id": o.id.to_string()}),
        ),
        _ => Err(format!(
            "Option value '{}' is not valid for field '{}'.",
            wanted_value
                .map(str::to_string)
                .or(wanted_id)
                .unwrap_or_default(),
            cf.id()
        )),
    }
}

fn custom_value(
    store: &Store,
    adf: &AdfValidator,
    base: &str,
    cf: &CustomField,
    v: &Value,
) -> Result<Option<Value>, String> {
    if v.is_null() {
        return Ok(None);
    }
    let kind = cf.kind.as_str();
    let value = match kind {
        "textfield" | "url" | "readonlyfield" | "importid" => {
            let s = v
                .as_str()
                .ok_or_else(|| format!("Field '{}' expects a string.", cf.id()))?;
            if kind == "textfield" && s.chars().count() > 255 {
                return Err("Text fields can hold at most 255 characters.".into());
            }
            json!(s)
        }
        "textarea" => {
            adf.check(v)?;
            v.clone()
        }
        "select" | "radiobuttons" => option_value(cf, base, v)?,
        "multiselect" | "multicheckboxes" => {
            let arr = v
                .as_array()
                .ok_or_else(|| format!("Field '{}' expects an array of options.", cf.id()))?;
            Value::Array(
                arr.iter()
                    .map(|o| option_value(cf, base, o))
                    .collect::<Result<_, _>>()?,
            )
        }
        "datepicker" => {
            let s = v
                .as_str()
                .filter(|s| valid_date(s))
                .ok_or_else(|| format!("Error parsing date string: {v}"))?;
            json!(s)
        }
        "datetime" => {
            let s = v
                .as_str()
                .filter(|s| s.len() >= 10 && valid_date(&s[..10]))
                .ok_or_else(|| format!("Error parsing date-time string: {v}"))?;
            json!(s)
        }
        "float" => json!(
            v.as_f64()
                .ok_or_else(|| format!("Field '{}' expects a number.", cf.id()))?
        ),
        "labels" => json!(labels_of(v)?),
        "userpicker" => user_value(store, base, v)?,
        "multiuserpicker" => {
            let arr = v
                .as_array()
                .ok_or_else(|| format!("Field '{}' expects an array of users.", cf.id()))?;
            Value::Array(
                arr.iter()
                    .map(|u| user_value(store, base, u))
                    .collect::<Result<_, _>>()?,
            )
        }
        _ => v.clone(),
    };
    Ok(Some(value))
}

/// Validates `fields` for a create (or an edit) and turns them into changes; errors per field id.
fn parse_fields(
    store: &Store,
    adf: &AdfValidator,
    base: &str,
    project_key: &str,
    fields: &Map<String, Value>,
    creating: bool,
) -> Result<Vec<Change>, BTreeMap<String, String>> {
    let mut out = Vec::new();
    let mut errors = BTreeMap::new();
    for (k, v) in fields {
        let r: Result<Option<Change>, String> = (|| {
            Ok(Some(match k.as_str() {
                "project" | "issuetype" | "parent" if creating => return Ok(None),
                "summary" => match v.as_str().map(str::trim) {
                    Some(s) if !s.is_empty() && s.chars().count() <= 255 => {
                        Change::Summary(s.to_string())
                    }
                    Some(s) if !s.is_empty() => {
                        return Err("Summary must be less than 255 characters.".into());
                    }
                    _ => return Err("You must specify a summary of the issue.".into()),
                },
                "description" | "environment" => {
                    let doc = if v.is_null() {
                        None
                    } else {
                        adf.check(v)?;
                        Some(v.clone())
                    };
                    if k == "description" {
                        Change::Description(doc)
                    } else {
                        Change::Environment(doc)
                    }
                }
                "labels" => Change::Labels(if v.is_null() {
                    Vec::new()
                } else {
                    labels_of(v)?
                }),
                "priority" => {
                    if v.is_null() {
                        Change::Priority(None)
                    } else {
                        let want = ref_str(v, &["id", "name"]).unwrap_or_default();
                        let p = PRIORITIES
                            .iter()
                            .find(|p| p.0 == want || p.1.eq_ignore_ascii_case(&want))
                            .ok_or_else(|| {
                                format!(
                                    "Specify a valid 'id' or 'name' for Priority (got '{want}')."
                                )
                            })?;
                        Change::Priority(Some(p.0.to_string()))
                    }
                }
                "duedate" => match v {
                    Value::Null => Change::DueDate(None),
                    Value::String(s) if valid_date(s) => Change::DueDate(Some(s.clone())),
                    _ => return Err(format!("Error parsing date string: {v}")),
                },
                "components" => {
                    let arr = v.as_array().ok_or("Components must be an array.")?;
                    let mut ids = Vec::new();
                    for c in arr {
                        let found = store
                            .components
                            .values()
                            .filter(|x| x.project_key == project_key)
                            .find(|x| {
                                ref_str(c, &["id"]).is_some_and(|id| id == x.id.to_string())
                                    || c.get("name")
                                        .and_then(Value::as_str)
                                        .is_some_and(|n| n == x.name)
                            });
                        match found {
                            Some(x) => ids.push(x.id),
                            None => {
                                return Err(format!(
                                    "Component '{}' is not valid.",
                                    ref_str(c, &["id", "name"]).unwrap_or_default()
                                ));
                            }
                        }
                    }
                    Change::Components(ids)
                }
                "assignee" | "reporter" => {
                    let who = if v.is_null() {
                        None
                    } else {
                        let id = ref_str(v, &["accountId", "id"])
                            .ok_or_else(|| format!("Specify a valid value for {k}."))?;
                        if !store.users.contains_key(&id) {
                            return Err(format!("User '{id}' does not exist."));
                        }
                        Some(id)
                    };
                    if k == "assignee" {
                        Change::Assignee(who)
                    } else {
                        Change::Reporter(who)
                    }
                }
                id if id.starts_with("customfield_") => {
                    let cf = store
                        .field(id)
                        .ok_or_else(|| format!("Field '{id}' {NOT_SETTABLE}"))?;
                    Change::Custom(id.to_string(), custom_value(store, adf, base, cf, v)?)
                }
                other => return Err(format!("Field '{other}' {NOT_SETTABLE}")),
            }))
        })();
        match r {
            Ok(Some(c)) => out.push(c),
            Ok(None) => {}
            Err(e) => {
                errors.insert(k.clone(), e);
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Folds the `update` verbs (set/add/remove) into plain field values.
fn merge_update(
    current: &Issue,
    fields: &mut Map<String, Value>,
    update: Option<&Value>,
) -> Result<(), Response> {
    let Some(update) = update.and_then(Value::as_object) else {
        return Ok(());
    };
    for (k, ops) in update {
        let Some(ops) = ops.as_array() else {
            return Err(error::field(
                StatusCode::BAD_REQUEST,
                k,
                "Update operations must be an array.",
            ));
        };
        for op in ops {
            if let Some(v) = op.get("set") {
                fields.insert(k.clone(), v.clone());
            } else if k == "labels" {
                let mut labels: Vec<Value> = fields
                    .get("labels")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_else(|| current.labels.iter().map(|l| json!(l)).collect());
                if let Some(a) = op.get("add")
                    && !labels.contains(a)
                {
                    labels.push(a.clone());
                }
                if let Some(r) = op.get("remove") {
                    labels.retain(|l| l != r);
                }
                fields.insert("labels".into(), Value::Array(labels));
            } else {
                return Err(error::field(
                    StatusCode::BAD_REQUEST,
                    k,
                    "Only the 'set' operation is supported for this field.",
                ));
            }
        }
    }
    Ok(())
}

fn properties_of(body: &Value) -> Result<Vec<(String, Value)>, Response> {
    let Some(props) = body.get("properties") else {
        return Ok(Vec::new());
    };
    let arr = props
        .as_array()
        .ok_or_else(|| bad("properties must be an array of {key, value}."))?;
    arr.iter()
        .map(|p| {
            let key = p
                .get("key")
                .and_then(Value::as_str)
                .filter(|k| !k.is_empty())
                .ok_or_else(|| bad("Every property needs a key."))?;
            Ok((
                key.to_string(),
                p.get("value").cloned().unwrap_or(Value::Null),
            ))
        })
        .collect()
}

// ---------------------------------------------------------------- issues

async fn create_issue(State(sh): S, uri: Uri, body: Bytes) -> Answer {
    Q::parse(&uri, false).bool("updateHistory")?;
    let body = error::platform_json(&body)?;
    let empty = Map::new();
    let fields = body
        .get("fields")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut fields = fields.clone();
    let properties = properties_of(&body)?;
    let base = sh.base().to_string();
    let mut store = sh.lock();
    let mut errors = BTreeMap::new();
    let project_key = match fields
        .get("project")
        .and_then(|p| ref_str(p, &["key", "id"]))
    {
        Some(p) => match store.project(&p) {
            Some(p) => Some(p.key.clone()),
            None => {
                errors.insert(
                    "project".to_string(),
                    format!("valid project is required (project '{p}' does not exist)"),
                );
                None
            }
        },
        None => {
            errors.insert(
                "project".to_string(),
                "Specify a valid project ID or key".to_string(),
            );
            None
        }
    };
    let itype = match fields
        .get("issuetype")
        .and_then(|t| ref_str(t, &["id", "name"]))
    {
        Some(t) => match issue_type(&t) {
            Some(t) => Some(t),
            None => {
                errors.insert("issuetype".to_string(), "Specify an issue type".to_string());
                None
            }
        },
        None => {
            errors.insert("issuetype".to_string(), "Specify an issue type".to_string());
            None
        }
    };
    if !fields.contains_key("summary") {
        errors.insert(
            "summary".to_string(),
            "You must specify a summary of the issue.".to_string(),
        );
    }
    let mut parent = None;
    if let (Some(t), Some(pk)) = (itype, project_key.as_deref()) {
        let given = fields
            .get("parent")
            .and_then(|p| ref_str(p, &["key", "id"]));
        match (t.subtask, given) {
            (true, None) => {
                errors.insert(
                    "parent".to_string(),
                    "Sub-task issues must have a parent.".to_string(),
                );
            }
            (true, Some(pref)) => {
                match store.issue_id(&pref).and_then(|id| store.issues.get(&id)) {
                    Some(p) if issue_type(&p.issue_type_id).is_some_and(|t| t.subtask) => {
                        errors.insert(
                            "parent".to_string(),
                            "A sub-task cannot be the parent of another sub-task.".to_string(),
                        );
                    }
                    Some(p) if p.project_key != pk => {
                        errors.insert(
                            "parent".to_string(),
                            "The parent issue must be in the same project.".to_string(),
                        );
                    }
                    Some(p) => parent = Some(p.id),
                    None => {
                        errors.insert(
                            "parent".to_string(),
                            format!("Could not find issue by id or key '{pref}'."),
                        );
                    }
                }
            }
            (false, Some(_)) => {
                errors.insert(
                    "parent".to_string(),
                    "Given parent work item does not belong to appropriate hierarchy.".to_string(),
                );
            }
            (false, None) => {}
        }
    }
    let draft_for_update = store.new_issue_preview();
    merge_update(&draft_for_update, &mut fields, body.get("update"))?;
    let changes = match parse_fields(
        &store,
        &sh.adf,
        &base,
        project_key.as_deref().unwrap_or(""),
        &fields,
        true,
    ) {
        Ok(c) => Some(c),
        Err(e) => {
            errors.extend(e);
            None
        }
    };
    let (Some(pk), Some(t), Some(changes), true) = (project_key, itype, changes, errors.is_empty())
    else {
        return Err(error::platform_fields(StatusCode::BAD_REQUEST, errors));
    };
    let transition = body.get("transition").and_then(|t| ref_str(t, &["id"]));
    let wf = store.projects[&pk].workflow;
    if let Some(tid) = &transition
        && !wf.available(wf.initial).any(|t| t.id == tid)
    {
        return Err(bad(&format!(
            "Transition id '{tid}' is not valid for this issue."
        )));
    }
    let mut issue = store.new_issue(&pk, t.id, String::new(), false);
    issue.parent = parent;
    apply(&mut issue, changes);
    issue.properties.extend(properties);
    if let Some(tid) = &transition {
        move_to(&mut issue, wf, tid);
    }
    let (id, key) = (issue.id, issue.key.clone());
    store.insert_issue(issue);
    let mut out =
        json!({"id": id.to_string(), "key": key, "self": format!("{base}/rest/api/3/issue/{id}")});
    if transition.is_some() {
        out["transition"] =
            json!({"status": 204, "errorCollection": {"errorMessages": [], "errors": {}}});
    }
    Ok(json201(out))
}

impl Store {
    /// An empty issue used as the "current" value when `update` verbs run during a create.
    fn new_issue_preview(&self) -> Issue {
        Issue {
            id: 0,
            key: String::new(),
            project_key: String::new(),
            issue_type_id: String::new(),
            summary: String::new(),
            description: None,
            environment: None,
            labels: Vec::new(),
            priority_id: None,
            duedate: None,
            components: Vec::new(),
            assignee: None,
            reporter: None,
            creator: String::new(),
            parent: None,
            status_id: "1",
            resolution: false,
            resolution_ms: None,
            created_ms: 0,
            updated_ms: 0,
            status_changed_ms: 0,
            custom: BTreeMap::new(),
            comments: Vec::new(),
            attachments: Vec::new(),
            properties: BTreeMap::new(),
            request: None,
            seeded: false,
        }
    }
}

fn move_to(issue: &mut Issue, wf: &Workflow, transition_id: &str) {
    if let Some(t) = wf.transitions.iter().find(|t| t.id == transition_id) {
        let now = now_ms();
        let from_cat = wf.status(issue.status_id).category;
        let to = wf.status(t.to);
        issue.status_id = to.id;
        if from_cat != to.category {
            issue.status_changed_ms = now;
        }
        if to.category == "done" {
            if !issue.resolution {
                issue.resolution = true;
                issue.resolution_ms = Some(now);
            }
        } else {
            issue.resolution = false;
            issue.resolution_ms = None;
        }
        issue.updated_ms = now;
    }
}

/// Applies the `fields` query parameter: `*all` (default), `*navigable`, names, and `-name` exclusions.
pub fn select_fields(
    all: Map<String, Value>,
    wanted: &[String],
    default_all: bool,
) -> Map<String, Value> {
    let includes: Vec<&String> = wanted.iter().filter(|w| !w.starts_with('-')).collect();
    let excludes: Vec<&str> = wanted.iter().filter_map(|w| w.strip_prefix('-')).collect();
    let everything = (includes.is_empty() && default_all)
        || includes.iter().any(|w| *w == "*all" || *w == "*navigable");
    all.into_iter()
        .filter(|(k, _)| (everything || includes.contains(&k)) && !excludes.contains(&k.as_str()))
        .collect()
}

pub fn render_issue(
    store: &Store,
    base: &str,
    issue: &Issue,
    fields: &[String],
    expand: &[String],
    props: &[String],
) -> Value {
    let all = render_fields(store, base, issue);
    let selected = select_fields(all, fields, true);
    let mut v = json!({
        "expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
        "id": issue.id.to_string(),
        "self": format!("{base}/rest/api/3/issue/{}", issue.id),
        "key": issue.key,
        "fields": selected,
    });
    let expand_has = |x: &str| expand.iter().any(|e| e == x);
    if expand_has("names") {
        let names = field_names(store);
        let keys: Vec<String> = v["fields"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        v["names"] = Value::Object(
            keys.into_iter()
                .filter_map(|k| names.get(&k).map(|n| (k, n.clone())))
                .collect(),
        );
    }
    if expand_has("renderedFields") {
        let mut r = Map::new();
        if let Some(d) = &issue.description {
            r.insert("description".into(), json!(crate::adf::adf_to_html(d)));
        }
        v["renderedFields"] = Value::Object(r);
    }
    if expand_has("transitions") {
        let wf = store
            .projects
            .get(&issue.project_key)
            .map(|p| p.workflow)
            .unwrap_or(&SERVICE_WORKFLOW);
        v["transitions"] = Value::Array(
            wf.available(issue.status_id)
                .map(|t| render_transition(base, wf, t, true))
                .collect(),
        );
    }
    if !props.is_empty() {
        let all = props.iter().any(|p| p == "*all");
        let m: Map<String, Value> = issue
            .properties
            .iter()
            .filter(|(k, _)| all || props.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        v["properties"] = Value::Object(m);
    }
    v
}

async fn get_issue(State(sh): S, Path(key): Path<String>, uri: Uri) -> Answer {
    let q = Q::parse(&uri, false);
    for b in ["fieldsByKeys", "updateHistory", "failFast"] {
        q.bool(b)?;
    }
    let store = sh.lock();
    let id = issue_of(&store, &key)?;
    let issue = &store.issues[&id];
    Ok(Json(render_issue(
        &store,
        sh.base(),
        issue,
        &q.list("fields"),
        &q.list("expand"),
        &q.list("properties"),
    ))
    .into_response())
}

async fn edit_issue(State(sh): S, Path(key): Path<String>, uri: Uri, body: Bytes) -> Answer {
    let q = Q::parse(&uri, false);
    for b in [
        "notifyUsers",
        "overrideScreenSecurity",
        "overrideEditableFlag",
    ] {
        q.bool(b)?;
    }
    let return_issue = q.bool("returnIssue")?.unwrap_or(false);
    let body = error::platform_json(&body)?;
    let base = sh.base().to_string();
    let mut store = sh.lock();
    let id = issue_of(&store, &key)?;
    let mut fields = body
        .get("fields")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    merge_update(&store.issues[&id], &mut fields, body.get("update"))?;
    let project_key = store.issues[&id].project_key.clone();
    let changes = parse_fields(&store, &sh.adf, &base, &project_key, &fields, false)
        .map_err(|e| error::platform_fields(StatusCode::BAD_REQUEST, e))?;
    let properties = properties_of(&body)?;
    let issue = store.issues.get_mut(&id).expect("issue exists");
    apply(issue, changes);
    issue.properties.extend(properties);
    if return_issue {
        let issue = &store.issues[&id];
        return Ok(Json(render_issue(
            &store,
            &base,
            issue,
            &[],
            &q.list("expand"),
            &[],
        ))
        .into_response());
    }
    Ok(no_content())
}

async fn delete_issue(State(sh): S, Path(key): Path<String>, uri: Uri) -> Answer {
    let q = Q::parse(&uri, false);
    let with_subtasks = q.bool("deleteSubtasks")?.unwrap_or(false);
    let mut store = sh.lock();
    let id = issue_of(&store, &key)?;
    let subtasks = store.subtasks(id);
    if !subtasks.is_empty() && !with_subtasks {
        return Err(bad(&format!(
            "The issue '{}' has subtasks. Set deleteSubtasks=true to delete the issue together with its subtasks.",
            store.issues[&id].key
        )));
    }
    for s in subtasks {
        store.remove_issue(s);
    }
    store.remove_issue(id);
    Ok(no_content())
}

// ---------------------------------------------------------------- transitions

fn render_transition(base: &str, wf: &Workflow, t: &Transition, available: bool) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "to": render_status(base, wf, t.to),
        "hasScreen": false,
        "isGlobal": false,
        "isInitial": false,
        "isAvailable": available,
        "isConditional": false,
        "looped": false,
    })
}

async fn get_transitions(State(sh): S, Path(key): Path<String>, uri: Uri) -> Answer {
    let q = Q::parse(&uri, false);
    for b in ["skipRemoteOnlyCondition", "sortByOpsBarAndStatus"] {
        q.bool(b)?;
    }
    let include_unavailable = q.bool("includeUnavailableTransitions")?.unwrap_or(false);
    let only = q.get("transitionId").map(str::to_string);
    let with_fields = q.has("expand", "transitions.fields");
    let store = sh.lock();
    let id = issue_of(&store, &key)?;
    let issue = &store.issues[&id];
    let wf = store.projects[&issue.project_key].workflow;
    let base = sh.base();
    let list: Vec<Value> = wf
        .transitions
        .iter()
        .filter(|t| only.as_deref().is_none_or(|o| o == t.id))
        .filter_map(|t| {
            let available = t.from.contains(&issue.status_id);
            if !available && !include_unavailable {
                return None;
            }
            let mut v = render_transition(base, wf, t, available);
            if with_fields {
                v["fields"] = json!({});
            }
            Some(v)
        })
        .collect();
    Ok(Json(json!({"expand": "transitions", "transitions": list})).into_response())
}

async fn do_transition(State(sh): S, Path(key): Path<String>, body: Bytes) -> Answer {
    let body = error::platform_json(&body)?;
    let tid = body
        .get("transition")
        .and_then(|t| ref_str(t, &["id"]))
        .ok_or_else(|| bad("Missing 'transition' identifier"))?;
    let base = sh.base().to_string();
    let mut store = sh.lock();
    let id = issue_of(&store, &key)?;
    let (wf, status, project_key) = {
        let i = &store.issues[&id];
        (
            store.projects[&i.project_key].workflow,
            i.status_id,
            i.project_key.clone(),
        )
    };
    if !wf.available(status).any(|t| t.id == tid) {
        return Err(bad(&format!(
            "Transition id '{tid}' is not valid for this issue."
        )));
    }
    let mut fields = body
        .get("fields")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    fields.remove("resolution");
    merge_update(&store.issues[&id], &mut fields, body.get("update"))?;
    let changes = parse_fields(&store, &sh.adf, &base, &project_key, &fields, false)
        .map_err(|e| error::platform_fields(StatusCode::BAD_REQUEST, e))?;
    let issue = store.issues.get_mut(&id).expect("issue exists");
    apply(issue, changes);
    move_to(issue, wf, &tid);
    Ok(no_content())
}

// ---------------------------------------------------------------- comments

/// The `sd.public.comment` property with `{"internal": true}` makes a comment internal.
fn is_internal(props: &[(String, Value)]) -> bool {
    props.iter().any(|(k, v)| {
        k == "sd.public.comment" && v.get("internal").and_then(Value::as_bool) == Some(true)
    })
}

async fn add_comment(State(sh): S, Path(key): Path<String>, uri: Uri, body: Bytes) -> Answer {
    let q = Q::parse(&uri, false);
    let body = error::platform_json(&body)?;
    let doc = body.get("body").cloned().unwrap_or(Value::Null);
    if doc.is_null() {
        return Err(error::field(
            StatusCode::BAD_REQUEST,
            "comment",
            "Comment body can not be empty!",
        ));
    }
    sh.adf
        .check(&doc)
        .map_err(|e| error::field(StatusCode::BAD_REQUEST, "comment", &e))?;
    let properties = properties_of(&body)?;
    let visibility = body.get("visibility").filter(|v| !v.is_null()).cloned();
    let base = sh.base().to_string();
    let mut store = sh.lock();
    let id = issue_of(&store, &key)?;
    let public = !is_internal(&properties);
    let admin = store.admin.clone();
    let c = store
        .add_comment(id, &admin, doc, public, visibility, properties)
        .ok_or_else(error::issue_not_found)?;
    let expand = q.list("expand");
    Ok(json201(render_comment(
        &store,
        &base,
        id,
        &c,
        expand.iter().any(|e| e == "properties"),
        expand.iter().any(|e| e == "renderedBody"),
    )))
}

async fn get_comments(State(sh): S, Path(key): Path<String>, uri: Uri) -> Answer {
    let q = Q::parse(&uri, false);
    let (start, max) = q.page("startAt", "maxResults", 100, 5000)?;
    let order = q.get("orderBy").unwrap_or("created");
    if !matches!(order, "created" | "+created" | "-created") {
        return Err(bad(&format!(
            "The orderBy value '{order}' is not supported; use created, +created or -created."
        )));
    }
    let expand = q.list("expand");
    let store = sh.lock();
    let id = issue_of(&store, &key)?;
    let issue = &store.issues[&id];
    let mut list: Vec<&Comment> = issue.comments.iter().collect();
    if order == "-created" {
        list.reverse();
    }
    let total = list.len();
    let page: Vec<Value> = list
        .into_iter()
        .skip(start)
        .take(max)
        .map(|c| {
            render_comment(
                &store,
                sh.base(),
                id,
                c,
                expand.iter().any(|e| e == "properties"),
                expand.iter().any(|e| e == "renderedBody"),
            )
        })
        .collect();
    Ok(
        Json(json!({"startAt": start, "maxResults": max, "total": total, "comments": page}))
            .into_response(),
    )
}

async fn get_comment(State(sh): S, Path((key, cid)): Path<(String, String)>, uri: Uri) -> Answer {
    let expand = Q::parse(&uri, false).list("expand");
    let store = sh.lock();
    let id = issue_of(&store, &key)?;
    let c = store.issues[&id]
        .comments
        .iter()
        .find(|c| c.id.to_string() == cid)
        .ok_or_else(|| not_found("Can not find a comment for the id."))?;
    Ok(Json(render_comment(
        &store,
        sh.base(),
        id,
        c,
        expand.iter().any(|e| e == "properties"),
        expand.iter().any(|e| e == "renderedBody"),
    ))
    .into_response())
}

async fn delete_comment(State(sh): S, Path((key, cid)): Path<(String, String)>) -> Answer {
    let mut store = sh.lock();
    let id = issue_of(&store, &key)?;
    let issue = store.issues.get_mut(&id).expect("issue exists");
    let before = issue.comments.len();
    issue.comments.retain(|c| c.id.to_string() != cid);
    if issue.comments.len() == before {
        return Err(not_found("Can not find a comment for the id."));
    }
    issue.updated_ms = now_ms();
    Ok(no_content())
}

// ---------------------------------------------------------------- attachments

pub struct Upload {
    pub filename: String,
    pub mime_type: String,
    pub data: Bytes,
}

pub fn guess_mime(filename: &str) -> &'static str {
    let ext = filename
        .rsplit('.')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "txt" | "log" => "text/plain",
        "pdf" => "application/pdf",
        "json" => "application/json",
        "html" | "htm" => "text/html",
        "csv" => "text/csv",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

pub fn has_no_check(headers: &HeaderMap) -> bool {
    headers
        .get("X-Atlassian-Token")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("no-check"))
}

/// Reads every multipart `file` part. Errors are (status, message).
pub async fn read_uploads(
    req: Request,
    max_bytes: usize,
) -> Result<Vec<Upload>, (StatusCode, String)> {
    let mut mp = Multipart::from_request(req, &()).await.map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            format!("The request is not multipart/form-data: {e}"),
        )
    })?;
    let mut out = Vec::new();
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                return Err((
                    StatusCode::BAD_REQUEST,
                    format!("Malformed multipart body: {e}"),
                ));
            }
        };
        if field.name() != Some("file") {
            continue;
        }
        let filename = field.file_name().unwrap_or("attachment").to_string();
        let mime_type = field
            .content_type()
            .map(str::to_string)
            .unwrap_or_else(|| guess_mime(&filename).to_string());
        let mut field = field;
        let mut data = Vec::new();
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    data.extend_from_slice(&chunk);
                    if data.len() > max_bytes {
                        return Err((
                            StatusCode::PAYLOAD_TOO_LARGE,
                            format!(
                                "The file '{filename}' is larger than the attachment size limit ({max_bytes} bytes)."
                            ),
                        ));
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    return Err((
                        StatusCode::BAD_REQUEST,
                        format!("Malformed multipart body: {e}"),
                    ));
                }
            }
        }
        out.push(Upload {
            filename,
            mime_type,
            data: Bytes::from(data),
        });
        if out.len() > 60 {
            return Err((
                StatusCode::PAYLOAD_TOO_LARGE,
                "At most 60 files can be attached in one request.".into(),
            ));
        }
    }
    if out.is_empty() {
        return Err((StatusCode::BAD_REQUEST, "No 'file' part was sent.".into()));
    }
    Ok(out)
}

async fn add_attachments(
    State(sh): S,
    Path(key): Path<String>,
    headers: HeaderMap,
    req: Request,
) -> Answer {
    if !has_no_check(&headers) {
        return Err(error::platform(
            StatusCode::FORBIDDEN,
            &["XSRF check failed"],
        ));
    }
    if sh.lock().issue_id(&key).is_none() {
        return Err(error::issue_not_found());
    }
    let uploads = read_uploads(req, sh.config.attachment_max_bytes)
        .await
        .map_err(|(s, m)| error::platform(s, &[&m]))?;
    let base = sh.base().to_string();
    let mut store = sh.lock();
    let id = issue_of(&store, &key)?;
    let admin = store.admin.clone();
    let mut out = Vec::new();
    for u in uploads {
        let aid = store.add_attachment(id, &u.filename, &u.mime_type, u.data, &admin);
        out.push(render_attachment(&store, &base, &store.attachments[&aid]));
    }
    Ok(Json(Value::Array(out)).into_response())
}

async fn attachment_meta(State(sh): S) -> Answer {
    Ok(
        Json(json!({"enabled": true, "uploadLimit": sh.config.attachment_max_bytes}))
            .into_response(),
    )
}

fn attachment_id(store: &Store, id: &str) -> Result<u64, Response> {
    id.parse::<u64>()
        .ok()
        .filter(|i| store.attachments.contains_key(i))
        .ok_or_else(|| not_found(&format!("The attachment with id '{id}' does not exist.")))
}

async fn get_attachment(State(sh): S, Path(id): Path<String>) -> Answer {
    let store = sh.lock();
    let a = &store.attachments[&attachment_id(&store, &id)?];
    let base = sh.base();
    let author = store
        .users
        .get(&a.author)
        .map(|u| render_user(base, u))
        .unwrap_or(Value::Null);
    Ok(Json(json!({
        "self": format!("{base}/rest/api/3/attachment/{}", a.id),
        "id": a.id,
        "filename": a.filename,
        "author": author,
        "created": jira_time(a.created_ms),
        "size": a.data.len(),
        "mimeType": a.mime_type,
        "properties": {},
        "content": format!("{base}/rest/api/3/attachment/content/{}", a.id),
    }))
    .into_response())
}

async fn delete_attachment(State(sh): S, Path(id): Path<String>) -> Answer {
    let mut store = sh.lock();
    let aid = attachment_id(&store, &id)?;
    if let Some(a) = store.attachments.remove(&aid) {
        store.media.remove(&a.media_uuid);
        if let Some(i) = store.issues.get_mut(&a.issue_id) {
            i.attachments.retain(|x| *x != aid);
        }
    }
    Ok(no_content())
}

fn binary(a: &Attachment) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, a.mime_type.as_str())
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}\"", a.filename.replace('"', "")),
        )
        .body(Body::from(a.data.clone()))
        .expect("valid response")
}

async fn attachment_content(State(sh): S, Path(id): Path<String>, uri: Uri) -> Answer {
    let redirect = Q::parse(&uri, false).bool("redirect")?.unwrap_or(true);
    let store = sh.lock();
    let a = &store.attachments[&attachment_id(&store, &id)?];
    if !redirect {
        return Ok(binary(a));
    }
    let location = format!("{}/file/{}/binary", sh.base(), a.media_uuid);
    Ok(Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, location)
        .body(Body::empty())
        .expect("valid response"))
}

async fn media_binary(State(sh): S, Path(uuid): Path<String>) -> Answer {
    let store = sh.lock();
    let a = store
        .media
        .get(&uuid)
        .and_then(|id| store.attachments.get(id))
        .ok_or_else(|| not_found("No such media file."))?;
    Ok(binary(a))
}

// ---------------------------------------------------------------- properties

async fn list_properties(State(sh): S, Path(key): Path<String>) -> Answer {
    let store = sh.lock();
    let id = issue_of(&store, &key)?;
    let base = sh.base();
    let keys: Vec<Value> = store.issues[&id]
        .properties
        .keys()
        .map(|k| json!({"key": k, "self": format!("{base}/rest/api/3/issue/{id}/properties/{k}")}))
        .collect();
    Ok(Json(json!({"keys": keys})).into_response())
}

async fn get_property(State(sh): S, Path((key, prop)): Path<(String, String)>) -> Answer {
    let store = sh.lock();
    let id = issue_of(&store, &key)?;
    let v = store.issues[&id]
        .properties
        .get(&prop)
        .ok_or_else(|| not_found(&format!("The property with key '{prop}' does not exist.")))?;
    Ok(Json(json!({"key": prop, "value": v})).into_response())
}

async fn set_property(
    State(sh): S,
    Path((key, prop)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    if body.len() > 32768 {
        return Err(error::platform(
            StatusCode::PAYLOAD_TOO_LARGE,
            &["The property value is larger than 32768 bytes."],
        ));
    }
    let v = error::platform_json(&body)?;
    if prop.len() > 255 {
        return Err(bad("The property key can be at most 255 characters."));
    }
    let mut store = sh.lock();
    let id = issue_of(&store, &key)?;
    let created = store
        .issues
        .get_mut(&id)
        .expect("issue exists")
        .properties
        .insert(prop, v)
        .is_none();
    Ok(if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
    .into_response())
}

async fn delete_property(State(sh): S, Path((key, prop)): Path<(String, String)>) -> Answer {
    let mut store = sh.lock();
    let id = issue_of(&store, &key)?;
    match store
        .issues
        .get_mut(&id)
        .expect("issue exists")
        .properties
        .remove(&prop)
    {
        Some(_) => Ok(no_content()),
        None => Err(not_found(&format!(
            "The property with key '{prop}' does not exist."
        ))),
    }
}

// ---------------------------------------------------------------- fields, contexts, options

async fn get_fields(State(sh): S) -> Answer {
    let store = sh.lock();
    let mut out: Vec<Value> = SYSTEM_FIELDS
        .iter()
        .map(|(id, name, ty)| render_system_field(id, name, ty))
        .collect();
    out.extend(store.fields.values().map(render_field));
    Ok(Json(Value::Array(out)).into_response())
}

async fn create_field(State(sh): S, body: Bytes) -> Answer {
    let body = error::platform_json(&body)?;
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or("");
    let mut errors = BTreeMap::new();
    if name.is_empty() {
        errors.insert(
            "name".to_string(),
            "The custom field name must be provided.".to_string(),
        );
    }
    let ty = body.get("type").and_then(Value::as_str).unwrap_or("");
    let kind = ty.strip_prefix(CF_PREFIX).filter(|k| CF_KINDS.contains(k));
    if kind.is_none() {
        errors.insert("type".to_string(), format!("The custom field type '{ty}' is not valid. Use a full key such as {CF_PREFIX}textfield."));
    }
    let searcher = body
        .get("searcherKey")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(s) = &searcher
        && !s.starts_with("com.atlassian.jira.plugin.system.customfieldtypes:")
    {
        errors.insert(
            "searcherKey".to_string(),
            format!("The searcher key '{s}' is not valid."),
        );
    }
    let Some(kind) = kind.filter(|_| errors.is_empty()) else {
        return Err(error::platform_fields(StatusCode::BAD_REQUEST, errors));
    };
    let mut store = sh.lock();
    let num = store.id();
    let ctx_id = store.id();
    let cf = CustomField {
        num,
        name: name.to_string(),
        description: body
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        kind: kind.to_string(),
        searcher_key: searcher,
        contexts: vec![FieldContext {
            id: ctx_id,
            name: format!("Default Configuration Scheme for {name}"),
            description: "Default configuration scheme generated by Jira".into(),
            project_ids: Vec::new(),
            issue_type_ids: Vec::new(),
            options: Vec::new(),
        }],
    };
    let out = render_field(&cf);
    store.fields.insert(num, cf);
    Ok(json201(out))
}

fn field_num(store: &Store, id: &str) -> Result<u64, Response> {
    store
        .field(id)
        .map(|f| f.num)
        .ok_or_else(|| not_found(&format!("The custom field '{id}' was not found.")))
}

fn render_context(c: &FieldContext) -> Value {
    json!({
        "id": c.id.to_string(),
        "name": c.name,
        "description": c.description,
        "isGlobalContext": c.project_ids.is_empty(),
        "isAnyIssueType": c.issue_type_ids.is_empty(),
    })
}

fn page_bean(values: Vec<Value>, start: usize, max: usize, total: usize) -> Value {
    json!({"startAt": start, "maxResults": max, "total": total, "isLast": start + values.len() >= total, "values": values})
}

async fn get_contexts(State(sh): S, Path(fid): Path<String>, uri: Uri) -> Answer {
    let q = Q::parse(&uri, false);
    let any_type = q.bool("isAnyIssueType")?;
    let global = q.bool("isGlobalContext")?;
    let ids = q.list("contextId");
    let (start, max) = q.page("startAt", "maxResults", 50, 1000)?;
    let store = sh.lock();
    let num = field_num(&store, &fid)?;
    let all: Vec<Value> = store.fields[&num]
        .contexts
        .iter()
        .filter(|c| any_type.is_none_or(|a| a == c.issue_type_ids.is_empty()))
        .filter(|c| global.is_none_or(|g| g == c.project_ids.is_empty()))
        .filter(|c| ids.is_empty() || ids.contains(&c.id.to_string()))
        .map(render_context)
        .collect();
    let total = all.len();
    Ok(Json(page_bean(
        all.into_iter().skip(start).take(max).collect(),
        start,
        max,
        total,
    ))
    .into_response())
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| ref_str(&json!({"x": x}), &["x"]))
                .collect()
        })
        .unwrap_or_default()
}

async fn create_context(State(sh): S, Path(fid): Path<String>, body: Bytes) -> Answer {
    let body = error::platform_json(&body)?;
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or("")
        .to_string();
    if name.is_empty() {
        return Err(error::field(
            StatusCode::BAD_REQUEST,
            "name",
            "The context name must be provided.",
        ));
    }
    let project_ids = string_list(body.get("projectIds"));
    let issue_type_ids = string_list(body.get("issueTypeIds"));
    let mut store = sh.lock();
    let num = field_num(&store, &fid)?;
    if let Some(p) = project_ids.iter().find(|p| store.project(p).is_none()) {
        return Err(not_found(&format!("The project '{p}' was not found.")));
    }
    if let Some(t) = issue_type_ids.iter().find(|t| issue_type(t).is_none()) {
        return Err(not_found(&format!("The issue type '{t}' was not found.")));
    }
    let id = store.id();
    let ctx = FieldContext {
        id,
        name: name.clone(),
        description: body
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        project_ids: project_ids.clone(),
        issue_type_ids: issue_type_ids.clone(),
        options: Vec::new(),
    };
    let out = json!({"id": id.to_string(), "name": name, "description": ctx.description, "projectIds": project_ids, "issueTypeIds": issue_type_ids});
    store
        .fields
        .get_mut(&num)
        .expect("field exists")
        .contexts
        .push(ctx);
    Ok(json201(out))
}

fn render_option(o: &FieldOption) -> Value {
    json!({"id": o.id.to_string(), "value": o.value, "disabled": o.disabled})
}

async fn get_options(State(sh): S, Path((fid, ctx)): Path<(String, String)>, uri: Uri) -> Answer {
    let q = Q::parse(&uri, false);
    let only = q.int("optionId")?;
    q.bool("onlyOptions")?;
    let (start, max) = q.page("startAt", "maxResults", 100, 1000)?;
    let store = sh.lock();
    let num = field_num(&store, &fid)?;
    let c = store.fields[&num]
        .contexts
        .iter()
        .find(|c| c.id.to_string() == ctx)
        .ok_or_else(|| not_found("The context was not found."))?;
    let all: Vec<Value> = c
        .options
        .iter()
        .filter(|o| only.is_none_or(|id| id as u64 == o.id))
        .map(render_option)
        .collect();
    let total = all.len();
    Ok(Json(page_bean(
        all.into_iter().skip(start).take(max).collect(),
        start,
        max,
        total,
    ))
    .into_response())
}

async fn create_options(
    State(sh): S,
    Path((fid, ctx)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let body = error::platform_json(&body)?;
    let opts = body
        .get("options")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if opts.is_empty() || opts.len() > 1000 {
        return Err(bad("Between 1 and 1000 options must be provided."));
    }
    let mut store = sh.lock();
    let num = field_num(&store, &fid)?;
    let kind = store.fields[&num].kind.clone();
    if !matches!(
        kind.as_str(),
        "select" | "multiselect" | "radiobuttons" | "multicheckboxes" | "cascadingselect"
    ) {
        return Err(bad(&format!(
            "The custom field '{fid}' does not support options."
        )));
    }
    let ci = store.fields[&num]
        .contexts
        .iter()
        .position(|c| c.id.to_string() == ctx)
        .ok_or_else(|| not_found("The context was not found."))?;
    let mut fresh = Vec::new();
    for o in &opts {
        let value = o
            .get("value")
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or("");
        if value.is_empty() {
            return Err(bad("Every option needs a value."));
        }
        let exists = store.fields[&num].contexts[ci]
            .options
            .iter()
            .any(|x| x.value == value)
            || fresh.iter().any(|(v, _): &(String, bool)| v == value);
        if exists {
            return Err(bad(&format!(
                "The option value '{value}' already exists in this context."
            )));
        }
        fresh.push((
            value.to_string(),
            o.get("disabled").and_then(Value::as_bool).unwrap_or(false),
        ));
    }
    let mut created = Vec::new();
    for (value, disabled) in fresh {
        let id = store.id();
        let o = FieldOption {
            id,
            value,
            disabled,
        };
        created.push(render_option(&o));
        store.fields.get_mut(&num).expect("field exists").contexts[ci]
            .options
            .push(o);
    }
    Ok(Json(json!({"options": created})).into_response())
}

// ---------------------------------------------------------------- components, projects

async fn create_component(State(sh): S, body: Bytes) -> Answer {
    let body = error::platform_json(&body)?;
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or("")
        .to_string();
    if name.is_empty() || name.chars().count() > 255 {
        return Err(error::field(
            StatusCode::BAD_REQUEST,
            "name",
            "The component name must be between 1 and 255 characters.",
        ));
    }
    let project = body.get("project").and_then(Value::as_str).unwrap_or("");
    let mut store = sh.lock();
    let pk = store
        .project(project)
        .map(|p| p.key.clone())
        .ok_or_else(|| {
            error::field(
                StatusCode::BAD_REQUEST,
                "project",
                &format!("The project '{project}' does not exist."),
            )
        })?;
    if store
        .components
        .values()
        .any(|c| c.project_key == pk && c.name.eq_ignore_ascii_case(&name))
    {
        return Err(error::field(
            StatusCode::BAD_REQUEST,
            "name",
            &format!("A component with the name {name} already exists in this project."),
        ));
    }
    let lead = body
        .get("leadAccountId")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(l) = &lead
        && !store.users.contains_key(l)
    {
        return Err(error::field(
            StatusCode::BAD_REQUEST,
            "leadAccountId",
            &format!("The user '{l}' does not exist."),
        ));
    }
    let id = store.id();
    let c = Component {
        id,
        project_key: pk,
        name,
        description: body
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        lead,
        assignee_type: body
            .get("assigneeType")
            .and_then(Value::as_str)
            .unwrap_or("PROJECT_DEFAULT")
            .to_string(),
    };
    let out = render_component(&store, sh.base(), &c);
    store.components.insert(id, c);
    Ok(json201(out))
}

fn component_id(store: &Store, id: &str) -> Result<u64, Response> {
    id.parse::<u64>()
        .ok()
        .filter(|i| store.components.contains_key(i))
        .ok_or_else(|| not_found(&format!("The component with id {id} does not exist.")))
}

async fn get_component(State(sh): S, Path(id): Path<String>) -> Answer {
    let store = sh.lock();
    let cid = component_id(&store, &id)?;
    Ok(Json(render_component(&store, sh.base(), &store.components[&cid])).into_response())
}

async fn delete_component(State(sh): S, Path(id): Path<String>, uri: Uri) -> Answer {
    let q = Q::parse(&uri, false);
    let mut store = sh.lock();
    let cid = component_id(&store, &id)?;
    let move_to = match q.get("moveIssuesTo") {
        Some(m) => Some(component_id(&store, m)?),
        None => None,
    };
    store.components.remove(&cid);
    for i in store.issues.values_mut() {
        if let Some(pos) = i.components.iter().position(|c| *c == cid) {
            i.components.remove(pos);
            if let Some(m) = move_to
                && !i.components.contains(&m)
            {
                i.components.push(m);
            }
        }
    }
    Ok(no_content())
}

async fn project_components(State(sh): S, Path(key): Path<String>, uri: Uri) -> Answer {
    let q = Q::parse(&uri, false);
    if let Some(src) = q.get("componentSource")
        && !matches!(src, "jira" | "compass" | "auto")
    {
        return Err(bad(&format!(
            "componentSource '{src}' is not one of jira, compass, auto."
        )));
    }
    let store = sh.lock();
    let p = store
        .project(&key)
        .ok_or_else(|| not_found(&format!("No project could be found with key '{key}'.")))?;
    let out: Vec<Value> = store
        .components
        .values()
        .filter(|c| c.project_key == p.key)
        .map(|c| render_component(&store, sh.base(), c))
        .collect();
    Ok(Json(Value::Array(out)).into_response())
}

async fn get_project(State(sh): S, Path(key): Path<String>, uri: Uri) -> Answer {
    let q = Q::parse(&uri, false);
    let store = sh.lock();
    let base = sh.base();
    let p = store
        .project(&key)
        .ok_or_else(|| not_found(&format!("No project could be found with key '{key}'.")))?;
    let components: Vec<Value> = store
        .components
        .values()
        .filter(|c| c.project_key == p.key)
        .map(|c| render_component(&store, base, c))
        .collect();
    let lead = store
        .users
        .get(&p.lead)
        .map(|u| render_user(base, u))
        .unwrap_or(Value::Null);
    let mut v = render_project_ref(base, p);
    let extra = json!({
        "description": "",
        "lead": lead,
        "components": components,
        "issueTypes": ISSUE_TYPES.iter().map(|t| render_issue_type(base, t)).collect::<Vec<_>>(),
        "assigneeType": "UNASSIGNED",
        "versions": [],
        "roles": {},
        "style": "classic",
        "isPrivate": false,
        "properties": {},
        "expand": "description,lead,issueTypes,url,projectKeys,permissions,insight",
    });
    if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        m.extend(e.clone());
    }
    let wanted = q.list("properties");
    if !wanted.is_empty() {
        v["properties"] = json!({});
    }
    Ok(Json(v).into_response())
}

// ---------------------------------------------------------------- links

fn link_type(
    v: &Value,
) -> Option<&'static (&'static str, &'static str, &'static str, &'static str)> {
    let want = ref_str(v, &["id", "name"])?;
    LINK_TYPES
        .iter()
        .find(|t| t.0 == want || t.1.eq_ignore_ascii_case(&want))
}

async fn link_issues(State(sh): S, body: Bytes) -> Answer {
    let body = error::platform_json(&body)?;
    let lt = body.get("type").and_then(link_type).ok_or_else(|| {
        not_found(&format!(
            "No issue link type with name '{}' found.",
            body.get("type")
                .and_then(|t| ref_str(t, &["name", "id"]))
                .unwrap_or_default()
        ))
    })?;
    let mut store = sh.lock();
    let side = |store: &Store, k: &str| {
        body.get(k)
            .and_then(|v| ref_str(v, &["key", "id"]))
            .and_then(|r| store.issue_id(&r))
    };
    let (Some(inward), Some(outward)) = (side(&store, "inwardIssue"), side(&store, "outwardIssue"))
    else {
        return Err(error::issue_not_found());
    };
    let dup = store
        .links
        .values()
        .any(|l| l.type_id == lt.0 && l.inward == inward && l.outward == outward);
    if !dup {
        let id = store.id();
        store.links.insert(
            id,
            Link {
                id,
                type_id: lt.0,
                inward,
                outward,
            },
        );
    }
    if let Some(doc) = body.pointer("/comment/body") {
        sh.adf
            .check(doc)
            .map_err(|e| error::field(StatusCode::BAD_REQUEST, "comment", &e))?;
        let admin = store.admin.clone();
        store.add_comment(inward, &admin, doc.clone(), true, None, Vec::new());
    }
    Ok(StatusCode::CREATED.into_response())
}

async fn get_link(State(sh): S, Path(id): Path<String>) -> Answer {
    let store = sh.lock();
    let base = sh.base();
    let l = id
        .parse::<u64>()
        .ok()
        .and_then(|i| store.links.get(&i))
        .ok_or_else(|| not_found("No issue link with this id exists."))?;
    let lt = LINK_TYPES
        .iter()
        .find(|t| t.0 == l.type_id)
        .unwrap_or(&LINK_TYPES[3]);
    let stub = |id: u64| {
        let i = &store.issues[&id];
        let all = render_fields(&store, base, i);
        let f = select_fields(
            all,
            &[
                "summary".into(),
                "status".into(),
                "priority".into(),
                "issuetype".into(),
            ],
            false,
        );
        json!({"id": i.id.to_string(), "key": i.key, "self": format!("{base}/rest/api/3/issue/{}", i.id), "fields": f})
    };
    Ok(Json(json!({
        "id": l.id.to_string(),
        "self": format!("{base}/rest/api/3/issueLink/{}", l.id),
        "type": render_link_type(base, lt),
        "inwardIssue": stub(l.inward),
        "outwardIssue": stub(l.outward),
    }))
    .into_response())
}

async fn delete_link(State(sh): S, Path(id): Path<String>) -> Answer {
    let mut store = sh.lock();
    match id.parse::<u64>().ok().and_then(|i| store.links.remove(&i)) {
        Some(_) => Ok(no_content()),
        None => Err(not_found("No issue link with this id exists.")),
    }
}

async fn link_types(State(sh): S) -> Answer {
    let base = sh.base();
    Ok(Json(json!({"issueLinkTypes": LINK_TYPES.iter().map(|t| render_link_type(base, t)).collect::<Vec<_>>()})).into_response())
}

// ---------------------------------------------------------------- users, priorities

async fn get_user(State(sh): S, uri: Uri) -> Answer {
    let q = Q::parse(&uri, false);
    let id = q
        .get("accountId")
        .ok_or_else(|| bad("The accountId query parameter needs to be provided."))?;
    let store = sh.lock();
    let u = store.users.get(id).ok_or_else(|| {
        not_found(&format!(
            "Specified user does not exist or you do not have required permissions: {id}"
        ))
    })?;
    Ok(Json(render_user(sh.base(), u)).into_response())
}

async fn user_search(State(sh): S, uri: Uri) -> Answer {
    let q = Q::parse(&uri, false);
    let (start, max) = q.page("startAt", "maxResults", 50, 1000)?;
    let query = q.get("query").map(str::to_lowercase);
    let account = q.get("accountId");
    let property = q.get("property");
    if query.is_none() && account.is_none() && property.is_none() && q.get("username").is_none() {
        return Err(bad(
            "One of 'query' or 'accountId' query parameters must be provided.",
        ));
    }
    let store = sh.lock();
    let out: Vec<Value> = store
        .users
        .values()
        .filter(|u| account.is_none_or(|a| a == u.account_id))
        .filter(|u| {
            query.as_deref().is_none_or(|q| {
                u.display_name.to_lowercase().contains(q)
                    || u.email
                        .as_deref()
                        .is_some_and(|e| e.to_lowercase().contains(q))
            })
        })
        .take(1000)
        .skip(start)
        .take(max)
        .map(|u| render_user(sh.base(), u))
        .collect();
    Ok(Json(Value::Array(out)).into_response())
}

async fn all_users(State(sh): S, uri: Uri) -> Answer {
    let q = Q::parse(&uri, false);
    let (start, max) = q.page("startAt", "maxResults", 50, 1000)?;
    let store = sh.lock();
    let out: Vec<Value> = store
        .users
        .values()
        .skip(start)
        .take(max)
        .map(|u| render_user(sh.base(), u))
        .collect();
    Ok(Json(Value::Array(out)).into_response())
}

async fn myself(State(sh): S, uri: Uri) -> Answer {
    let q = Q::parse(&uri, false);
    let store = sh.lock();
    let me = &store.users[&store.admin];
    let mut v = render_user(sh.base(), me);
    if q.has("expand", "groups") {
        v["groups"] = json!({"size": 1, "items": [{"name": "jira-admins", "self": format!("{}/rest/api/3/group?groupname=jira-admins", sh.base())}]});
    }
    if q.has("expand", "applicationRoles") {
        v["applicationRoles"] = json!({"size": 1, "items": [{"key": "jira-servicedesk", "name": "Jira Service Management"}]});
    }
    Ok(Json(v).into_response())
}

async fn priorities(State(sh): S) -> Answer {
    let base = sh.base();
    Ok(Json(Value::Array(
        PRIORITIES
            .iter()
            .map(|p| model::render_priority(base, p.0))
            .collect(),
    ))
    .into_response())
}

// ---------------------------------------------------------------- search

async fn search_jql(State(sh): S, body: Bytes) -> Answer {
    let body = error::platform_json(&body)?;
    let jql = body
        .get("jql")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim()
        .to_string();
    let max = body
        .get("maxResults")
        .and_then(Value::as_u64)
        .unwrap_or(50)
        .clamp(1, 5000) as usize;
    let start = match body.get("nextPageToken").and_then(Value::as_str) {
        Some(t) => {
            crate::jql::decode_token(t).ok_or_else(|| bad("The nextPageToken is invalid."))?
        }
        None => 0,
    };
    let fields: Vec<String> = string_list(body.get("fields"));
    let fields = if fields.is_empty() {
        vec!["id".to_string()]
    } else {
        fields
    };
    let expand: Vec<String> = match body.get("expand") {
        Some(Value::String(s)) => s.split(',').map(|x| x.trim().to_string()).collect(),
        Some(v) => string_list(Some(v)),
        None => Vec::new(),
    };
    let props = string_list(body.get("properties"));
    let store = sh.lock();
    let query = crate::jql::parse(&jql, &store).map_err(|e| bad(&e))?;
    let hits = query.run(&store);
    let base = sh.base();
    let page: Vec<Value> = hits
        .iter()
        .skip(start)
        .take(max)
        .map(|id| {
            let i = &store.issues[id];
            let mut v = render_issue(&store, base, i, &fields, &[], &props);
            let only_id = fields.iter().all(|f| f == "id");
            if only_id && let Some(m) = v.as_object_mut() {
                m.insert("fields".into(), json!({}));
            }
            v
        })
        .collect();
    let is_last = start + page.len() >= hits.len();
    let mut out = json!({"issues": page, "isLast": is_last});
    if !is_last {
        out["nextPageToken"] = json!(crate::jql::encode_token(start + max));
    }
    if expand.iter().any(|e| e == "names") {
        out["names"] = Value::Object(field_names(&store));
    }
    Ok(Json(out).into_response())
}
