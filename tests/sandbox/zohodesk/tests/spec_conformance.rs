//! Data-driven conformance with the vendor's OpenAPI files (shared/specs/zoho-desk/v1.0): for every
//! operation the sandbox serves that the files describe, the query parameters match the spec (each
//! accepted, an undefined one refused) and the answers carry the fields, with their JSON types,
//! of the spec's own response examples.
//!
//! Deliberate deviation: the examples write many times as epoch milliseconds while the schemas
//! (and the live API) use ISO-8601 strings; platform-apis.md 1.1 asks the sandbox for ISO strings,
//! so an epoch-ms example on a `*Time` / `*Date` key expects an ISO string.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use common::Ctx;
use reqwest::Method;
use sandbox_zohodesk::{EXTENSIONS, OPS, Op};
use serde_json::{Map, Value, json};

fn spec_dir() -> PathBuf {
    match std::env::var("ZOHO_DESK_OAS_DIR") {
        Ok(d) => PathBuf::from(d),
        Err(_) => PathBuf::from(
            std::env::var_os("CARGO_MANIFEST_DIR")
                .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
        )
        .join("../../../../shared/specs/zoho-desk/v1.0"),
    }
}

struct Spec {
    files: HashMap<String, Value>,
}

impl Spec {
    fn load() -> Spec {
        let dir = spec_dir();
        let mut files = HashMap::new();
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
            panic!(
                "the Zoho Desk OpenAPI files are needed at {}: {e} (set ZOHO_DESK_OAS_DIR)",
                dir.display()
            )
        });
        for entry in entries {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) == Some("json") {
                let text = std::fs::read_to_string(&path).unwrap();
                files.insert(
                    path.file_name().unwrap().to_string_lossy().to_string(),
                    serde_json::from_str(&text).unwrap(),
                );
            }
        }
        assert!(
            files.len() > 10,
            "expected the Zoho Desk OpenAPI files in {}",
            dir.display()
        );
        Spec { files }
    }

    /// Follows `$ref`s (within a file or `./Other.json#/...`) to the node they name.
    fn resolve<'a>(&'a self, file: &str, node: &'a Value) -> (String, &'a Value) {
        let mut file = file.to_string();
        let mut node = node;
        while let Some(r) = node.get("$ref").and_then(Value::as_str) {
            let (f, pointer) = r.split_once('#').unwrap_or((r, ""));
            if !f.is_empty() {
                file = f.trim_start_matches("./").to_string();
            }
            node = self.files[&file]
                .pointer(pointer)
                .unwrap_or_else(|| panic!("dangling $ref {r} in {file}"));
        }
        (file, node)
    }

    fn operation(&self, method: &str, path: &str) -> Option<(String, &Value)> {
        self.files.iter().find_map(|(name, doc)| {
            doc.pointer(&format!(
                "/paths/{}/{}",
                path.replace('~', "~0").replace('/', "~1"),
                method.to_lowercase()
            ))
            .map(|op| (name.clone(), op))
        })
    }

    /// (name, schema, required) of the operation's query parameters, `orgId` excluded.
    fn query_params(&self, file: &str, op: &Value) -> Vec<(String, Value, bool)> {
        op.get("parameters")
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .map(|p| self.resolve(file, p).1)
                    .filter(|p| p["in"] == "query" && p["name"] != "orgId")
                    .map(|p| {
                        (
                            p["name"].as_str().unwrap().to_string(),
                            p.get("schema").cloned().unwrap_or(Value::Null),
                            p["required"] == true,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first non-empty JSON example of a 200/201 answer.
    fn example(&self, file: &str, op: &Value) -> Option<Value> {
        for code in ["200", "201"] {
            let Some(resp) = op.pointer(&format!("/responses/{code}")) else {
                continue;
            };
            let (f, resp) = self.resolve(file, resp);
            let Some(examples) = resp
                .pointer("/content/application~1json/examples")
                .and_then(Value::as_object)
            else {
                continue;
            };
            for ex in examples.values() {
                let v = &self.resolve(&f, ex).1["value"];
                let empty = v.is_null() || v.as_object().is_some_and(Map::is_empty);
                if !empty {
                    return Some(v.clone());
                }
            }
        }
        None
    }
}

fn extension_params(path: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (p, name, _) in EXTENSIONS {
        if *p == path {
            if *name == "customField1..10" {
                out.extend((1..=10).map(|n| format!("customField{n}")));
            } else {
                out.insert(name.to_string());
            }
        }
    }
    out
}

fn spec_ops() -> impl Iterator<Item = &'static Op> {
    OPS.iter().filter(|o| o.in_spec)
}

#[test]
fn served_operations_and_their_query_parameters_match_the_spec() {
    let spec = Spec::load();
    let mut problems = Vec::new();
    for op in spec_ops() {
        let Some((file, sop)) = spec.operation(op.method, op.path) else {
            problems.push(format!(
                "{} {}: not in the OpenAPI files but marked in_spec",
                op.method, op.path
            ));
            continue;
        };
        let theirs: BTreeSet<String> = spec
            .query_params(&file, sop)
            .into_iter()
            .map(|(n, _, _)| n)
            .collect();
        let ours: BTreeSet<String> = op.params.iter().map(|(n, _)| n.to_string()).collect();
        let extra = extension_params(op.path);
        for missing in theirs.difference(&ours) {
            problems.push(format!(
                "{} {}: spec parameter '{missing}' not accepted",
                op.method, op.path
            ));
        }
        for added in ours.difference(&theirs).filter(|n| !extra.contains(*n)) {
            problems.push(format!(
                "{} {}: parameter '{added}' is not in the spec",
                op.method, op.path
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        spec_ops().count() >= 50,
        "the table covers the served operations"
    );
}

struct Fixture {
    ids: HashMap<&'static str, String>,
    upload: String,
}

async fn fixture(ctx: &Ctx) -> Fixture {
    let mut ids = HashMap::new();
    let dept = ctx.default_department().await;
    let agents = ctx.ok_json("/agents").await;
    let agent = agents["data"][0]["id"].as_str().unwrap().to_string();
    let field = ctx
        .req(Method::POST, "/organizationFields?module=tickets")
        .json(&json!({"displayLabel": "External Id", "type": "Text", "maxLength": "100"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let account = ctx.create("/accounts", &json!({"accountName": "Zylker", "phone": "98348229382", "website": "https://www.zylker.com"})).await;
    let account_id = account["id"].as_str().unwrap().to_string();
    let contact = ctx.create("/contacts", &json!({"lastName": "Lawrence", "firstName": "Jennifer", "email": "lawrence@zylker.com", "accountId": account_id})).await;
    let product = ctx
        .create(
            "/products",
            &json!({"productName": "Dell", "departmentIds": [dept], "unitPrice": "100"}),
        )
        .await;
    let ticket = ctx
        .create(
            "/tickets",
            &json!({"subject": "Real Time analysis Requirement", "departmentId": dept, "contactId": contact["id"], "productId": product["id"],
                "assigneeId": agent, "priority": "High", "cf": {"cf_external_id": "EXT-1"}}),
        )
        .await;
    let tid = ticket["id"].as_str().unwrap().to_string();
    let seeded = ctx
        .sandbox(Method::POST, "seed", Some(&json!({"threads": [{"ticketId": tid, "content": "<div>Please fix this problem</div>", "fromEmailAddress": "lawrence@zylker.com"}]})))
        .await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"%PDF-1.4 fixture".to_vec()).file_name("fixture.pdf"),
    );
    let upload: Value = ctx
        .req(Method::POST, "/uploads")
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let comment = ctx.create(&format!("/tickets/{tid}/comments"), &json!({"content": "Please fix this ASAP", "isPublic": true, "attachmentIds": [upload["id"]]})).await;
    let task = ctx.create("/tasks", &json!({"subject": "Bug Fix #120", "departmentId": dept, "ticketId": tid, "ownerId": agent, "priority": "High"})).await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(vec![1, 2, 3]).file_name("a.bin"),
    );
    let att: Value = ctx
        .req(Method::POST, &format!("/tickets/{tid}/attachments"))
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    ids.insert("organizationId", ctx.sb.org_id().to_string());
    ids.insert("departmentId", dept);
    ids.insert("agentId", agent);
    ids.insert("accountId", account_id);
    ids.insert("contactId", contact["id"].as_str().unwrap().to_string());
    ids.insert("productId", product["id"].as_str().unwrap().to_string());
    ids.insert("ticketId", tid);
    ids.insert(
        "threadId",
        seeded["seeded"]["threads"][0].as_str().unwrap().to_string(),
    );
    ids.insert("commentId", comment["id"].as_str().unwrap().to_string());
    ids.insert("taskId", task["id"].as_str().unwrap().to_string());
    ids.insert("fieldId", field["id"].as_str().unwrap().to_string());
    ids.insert("attachmentId", att["id"].as_str().unwrap().to_string());
    Fixture {
        ids,
        upload: upload["id"].as_str().unwrap().to_string(),
    }
}

fn concrete(path: &str, f: &Fixture) -> String {
    let mut out = path.trim_start_matches("/api/v1").to_string();
    for (name, id) in &f.ids {
        out = out.replace(&format!("{{{name}}}"), id);
    }
    assert!(
        !out.contains('{'),
        "no fixture for a path parameter of {path}"
    );
    out
}

/// A value the spec's schema allows, so only the parameter's name is on trial.
fn sample_value(name: &str, schema: &Value, f: &Fixture) -> String {
    let first_enum = |s: &Value| {
        s.get("enum")
            .and_then(Value::as_array)
            .and_then(|e| e.iter().find_map(|v| v.as_str().map(str::to_string)))
    };
    if let Some(v) = first_enum(schema).or_else(|| schema.get("items").and_then(first_enum)) {
        return v;
    }
    if name.ends_with("Range") {
        return "2020-01-01T00:00:00.000Z,2100-01-01T00:00:00.000Z".into();
    }
    if let Some(min) = schema.get("minimum").and_then(Value::as_i64) {
        return min.to_string();
    }
    let types = schema
        .get("type")
        .map(|t| t.to_string())
        .unwrap_or_default();
    if types.contains("boolean") {
        return "true".into();
    }
    if name == "departmentId" {
        return f.ids["departmentId"].clone();
    }
    let numeric = types.contains("integer")
        || schema.get("pattern").and_then(Value::as_str) == Some("([0-9]+)");
    if numeric || name.ends_with("Id") || name.ends_with("Ids") {
        "1".into()
    } else {
        "x".into()
    }
}

async fn send(ctx: &Ctx, method: &str, url_path: &str) -> reqwest::Response {
    let m = Method::from_bytes(method.as_bytes()).unwrap();
    let mut rb = ctx.req(m.clone(), url_path);
    if m == Method::POST || m == Method::PATCH {
        rb = rb.json(&json!({}));
    }
    rb.send().await.unwrap()
}

#[tokio::test]
async fn spec_query_parameters_are_accepted_and_undefined_ones_refused() {
    let spec = Spec::load();
    let ctx = Ctx::default().await;
    let f = fixture(&ctx).await;
    let mut problems = Vec::new();
    let mut checked = 0;
    for op in spec_ops() {
        let (file, sop) = spec.operation(op.method, op.path).expect("in the spec");
        let path = concrete(op.path, &f);
        let params = spec.query_params(&file, sop);
        // Parameters the spec marks required travel with every probe, so only the probed name is on trial.
        let required: Vec<(String, String)> = params
            .iter()
            .filter(|(_, _, r)| *r)
            .map(|(n, s, _)| (n.clone(), sample_value(n, s, &f)))
            .collect();
        let with = |extra: Option<(&str, &str)>| {
            let mut pairs: Vec<(&str, &str)> = required
                .iter()
                .filter(|(n, _)| extra.is_none_or(|(e, _)| e != n))
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            pairs.extend(extra);
            format!("{path}?{}", serde_urlencoded::to_string(&pairs).unwrap())
        };
        for (name, schema, _) in &params {
            let value = sample_value(name, schema, &f);
            let url = with(Some((name.as_str(), value.as_str())));
            let r = send(&ctx, op.method, &url).await;
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            checked += 1;
            if status == 422 && body["errorCode"] == "UNPROCESSABLE_ENTITY" {
                problems.push(format!("{} {url}: refused: {body}", op.method));
            } else if op.method == "GET" && !(status == 200 || status == 204) {
                problems.push(format!("GET {url}: {status} {body}"));
            }
        }
        let bogus = with(Some(("bogusParam", "1")));
        let r = send(&ctx, op.method, &bogus).await;
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let expected = json!({"errorCode": "UNPROCESSABLE_ENTITY", "message": "Extra query parameter 'bogusParam' is present in the input."});
        if status != 422 || body != expected {
            problems.push(format!("{} {bogus}: {status} {body}", op.method));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked > 100, "{checked} parameters checked");
    ctx.stop().await;
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_time_key(key: &str) -> bool {
    key.ends_with("Time") || key.ends_with("Date") || key == "dueDate"
}

fn is_iso_millis(s: &str) -> bool {
    s.len() == 24 && s.ends_with('Z') && s.as_bytes()[10] == b'T' && s.as_bytes()[19] == b'.'
}

/// The keys every example item shares, each with the first non-null example value.
fn common_shape(items: &[Value]) -> Option<Value> {
    let objects: Vec<&Map<String, Value>> = items.iter().filter_map(Value::as_object).collect();
    if objects.len() != items.len() || objects.is_empty() {
        return items.iter().find(|v| !v.is_null()).cloned();
    }
    let mut out = Map::new();
    for key in objects[0].keys() {
        if objects.iter().all(|o| o.contains_key(key)) {
            let v = objects
                .iter()
                .map(|o| &o[key])
                .find(|v| !v.is_null())
                .cloned()
                .unwrap_or(Value::Null);
            out.insert(key.clone(), v);
        }
    }
    Some(Value::Object(out))
}

/// Every key of `example` is in `ours` with the same JSON type (null on either side means "unknown").
fn compare(path: &str, key: &str, example: &Value, ours: &Value, problems: &mut Vec<String>) {
    if example.is_null() || ours.is_null() {
        return;
    }
    if let (Value::Number(n), true) = (example, is_time_key(key))
        && n.as_i64().is_some_and(|ms| ms > 100_000_000_000 || ms == 0)
    {
        if !ours.as_str().is_some_and(is_iso_millis) {
            problems.push(format!(
                "{path}: expected an ISO-8601 time with milliseconds, got {ours}"
            ));
        }
        return;
    }
    if type_name(example) != type_name(ours) {
        problems.push(format!(
            "{path}: example is {} ({example}), answer is {} ({ours})",
            type_name(example),
            type_name(ours)
        ));
        return;
    }
    // `cf` / `customFields` hold the example tenant's own custom fields, not part of the contract.
    if key == "cf" || key == "customFields" {
        return;
    }
    match (example, ours) {
        (Value::Object(e), Value::Object(o)) => {
            for (k, ev) in e {
                match o.get(k) {
                    None => problems.push(format!("{path}.{k}: missing")),
                    Some(ov) => compare(&format!("{path}.{k}"), k, ev, ov, problems),
                }
            }
        }
        (Value::Array(e), Value::Array(o)) => {
            if let Some(shape) = common_shape(e) {
                for (i, item) in o.iter().enumerate() {
                    compare(&format!("{path}[{i}]"), key, &shape, item, problems);
                }
            }
        }
        _ => {}
    }
}

const INCLUDE_ALL: &str =
    "contacts,products,assignee,departments,team,isRead,mentions,plainText,accounts,creator";

/// Request bodies for the write operations whose answers the spec shows.
fn body_for(operation_id: &str, f: &Fixture, n: usize) -> Option<Value> {
    let id = |k: &str| f.ids[k].clone();
    Some(match operation_id {
        "createTicket" => {
            json!({"subject": "Example", "departmentId": id("departmentId"), "contactId": id("contactId"), "productId": id("productId"), "assigneeId": id("agentId")})
        }
        "updateTicket" => json!({"priority": "Medium"}),
        "createAccount" => json!({"accountName": format!("Example Account {n}"), "phone": "123"}),
        "updateAccount" => json!({"phone": "456"}),
        "createContact" => json!({"lastName": "Example", "accountId": id("accountId")}),
        "updateContact" => json!({"phone": "789"}),
        "addAgent" => {
            json!({"lastName": "Walsh", "firstName": "Marisol", "emailId": format!("marisol{n}@zylker.com"), "associatedDepartmentIds": [id("departmentId")], "rolePermissionType": "Admin"})
        }
        "createTask" => {
            json!({"subject": "Example task", "departmentId": id("departmentId"), "ticketId": id("ticketId")})
        }
        "updateTask" => json!({"priority": "Low"}),
        "createProduct" => {
            json!({"productName": format!("Example {n}"), "departmentIds": [id("departmentId")]})
        }
        "updateProduct" => json!({"unitPrice": "100"}),
        "createTicketComment" => {
            json!({"content": "Example", "isPublic": true, "attachmentIds": [f.upload]})
        }
        "updateTicketComment" => json!({"content": "Edited"}),
        _ => return None,
    })
}

#[tokio::test]
async fn answers_carry_the_fields_and_types_of_the_spec_examples() {
    let spec = Spec::load();
    let ctx = Ctx::default().await;
    let f = fixture(&ctx).await;
    let mut problems = Vec::new();
    let mut compared = BTreeMap::new();
    for (n, op) in spec_ops().enumerate() {
        let (file, sop) = spec.operation(op.method, op.path).expect("in the spec");
        let Some(example) = spec.example(&file, sop) else {
            continue;
        };
        let operation_id = sop["operationId"].as_str().unwrap_or("?").to_string();
        let path = concrete(op.path, &f);
        let mut query: Vec<(String, String)> = spec
            .query_params(&file, sop)
            .iter()
            .filter(|(_, _, r)| *r)
            .map(|(n, s, _)| (n.clone(), sample_value(n, s, &f)))
            .collect();
        if op.params.iter().any(|(p, _)| *p == "include") {
            query.push(("include".into(), INCLUDE_ALL.into()));
        }
        let url = if query.is_empty() {
            path.clone()
        } else {
            format!("{path}?{}", serde_urlencoded::to_string(&query).unwrap())
        };
        let resp = match op.method {
            "GET" => ctx.get(&url).await,
            "POST" if operation_id == "uploadFile" => {
                let form = reqwest::multipart::Form::new().part(
                    "file",
                    reqwest::multipart::Part::bytes(b"zoho".to_vec()).file_name("zoho.jpeg"),
                );
                ctx.req(Method::POST, &url)
                    .multipart(form)
                    .send()
                    .await
                    .unwrap()
            }
            m => {
                let Some(body) = body_for(&operation_id, &f, n) else {
                    problems.push(format!("{operation_id}: the spec shows an answer but the test has no request body for it"));
                    continue;
                };
                ctx.req(Method::from_bytes(m.as_bytes()).unwrap(), &url)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
            }
        };
        let status = resp.status().as_u16();
        let ours: Value = resp.json().await.unwrap_or(Value::Null);
        if !(status == 200 || status == 201) {
            problems.push(format!(
                "{operation_id} {} {url}: {status} {ours}",
                op.method
            ));
            continue;
        }
        if let Some(list) = example.get("data").and_then(Value::as_array)
            && !list.is_empty()
        {
            let n_ours = ours["data"].as_array().map(Vec::len).unwrap_or(0);
            if n_ours == 0 {
                problems.push(format!(
                    "{operation_id}: the fixture gave an empty list, nothing to compare"
                ));
            }
        }
        let before = problems.len();
        compare(&operation_id, "", &example, &ours, &mut problems);
        compared.insert(operation_id, problems.len() - before);
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(compared.len() >= 25, "operations compared: {compared:?}");
    ctx.stop().await;
}
