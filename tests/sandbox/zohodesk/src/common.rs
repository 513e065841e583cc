//! Helpers shared by the API handlers: bodies, paging, includes, search matching.

use std::collections::{HashMap, HashSet};

use axum::body::Bytes;
use serde_json::Value;

use crate::errors::ZErr;
use crate::model::Rec;

pub type Q = HashMap<String, String>;

pub fn body_obj(b: &Bytes) -> Result<Rec, ZErr> {
    if b.iter().all(|c| c.is_ascii_whitespace()) {
        return Err(ZErr::empty_payload());
    }
    match serde_json::from_slice::<Value>(b) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ZErr::invalid_one("/", "invalid")),
        Err(_) => Err(ZErr::bad_request("The request body is not valid JSON.")),
    }
}

/// Zoho's request schemas set `additionalProperties: false`: an unknown key is refused.
pub fn check_keys(body: &Rec, allowed: &[&str]) -> Result<(), ZErr> {
    for k in body.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(ZErr::invalid_one(&format!("/{k}"), "invalid"));
        }
    }
    Ok(())
}

/// A string body value; numbers are accepted where ids travel (the schemas allow string|integer).
pub fn str_field(body: &Rec, key: &str) -> Option<String> {
    match body.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub fn nonempty(body: &Rec, key: &str) -> Option<String> {
    str_field(body, key).filter(|s| !s.trim().is_empty())
}

pub fn check_len(body: &Rec, key: &str, max: usize) -> Result<(), ZErr> {
    if let Some(v) = str_field(body, key)
        && v.chars().count() > max
    {
        return Err(ZErr::invalid_one(&format!("/{key}"), "invalid"));
    }
    Ok(())
}

pub fn id_list(body: &Rec, key: &str) -> Result<Vec<String>, ZErr> {
    let arr = body
        .get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| ZErr::invalid_one(&format!("/{key}"), "missing"))?;
    let mut out = Vec::new();
    for v in arr {
        match v {
            Value::String(s) if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() => {
                out.push(s.clone())
            }
            Value::Number(n) if n.is_u64() => out.push(n.to_string()),
            _ => return Err(ZErr::invalid_one(&format!("/{key}"), "invalid")),
        }
    }
    if out.is_empty() {
        return Err(ZErr::invalid_one(&format!("/{key}"), "missing"));
    }
    Ok(out)
}

pub fn paging(q: &Q, default_limit: usize) -> (usize, usize) {
    let from = q.get("from").and_then(|v| v.parse().ok()).unwrap_or(0);
    let limit = q
        .get("limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_limit);
    (from, limit)
}

pub fn page<T>(items: Vec<T>, from: usize, limit: usize) -> Vec<T> {
    items.into_iter().skip(from).take(limit).collect()
}

pub fn includes(q: &Q) -> HashSet<String> {
    q.get("include")
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
        .unwrap_or_default()
}

/// Sorts by a record key given as `name` or `-name`; ties keep id order. Each key is computed once.
pub fn sort_by_key<R: std::borrow::Borrow<Rec>>(
    items: &mut [R],
    sort: Option<&str>,
    default: &str,
) {
    let spec = sort.unwrap_or(default);
    let (desc, key) = match spec.strip_prefix('-') {
        Some(k) => (true, k),
        None => (false, spec),
    };
    let key = match key {
        "sendDateTime" => "createdTime",
        "account" => "accountId",
        other => other,
    };
    items.sort_by_cached_key(|r| {
        let r = r.borrow();
        (sort_text(r.get(key)), crate::model::id_of(r))
    });
    if desc {
        // (key, id) orders every record strictly, so the reverse is the descending order.
        items.reverse();
    }
}

fn sort_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.to_ascii_lowercase(),
        Some(Value::Number(n)) => format!("{:020}", n.as_f64().unwrap_or(0.0) as i64),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

/// Zoho search value matching: `${empty}`, `${notempty}`, `*` wildcards, else case-insensitive equality.
pub fn matches(pattern: &str, value: Option<&Value>) -> bool {
    let text = match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    };
    match pattern {
        "${empty}" => return text.is_empty(),
        "${notempty}" => return !text.is_empty(),
        _ => {}
    }
    let p = pattern.to_lowercase();
    let t = text.to_lowercase();
    match (p.strip_prefix('*'), p.strip_suffix('*')) {
        (Some(rest), _) if rest.ends_with('*') => t.contains(rest.trim_end_matches('*')),
        (Some(rest), _) => t.ends_with(rest),
        (None, Some(rest)) => t.starts_with(rest),
        (None, None) => t == p,
    }
}

/// Free-text fields (subject, description, `_all`) match on a contained phrase.
pub fn contains_text(pattern: &str, value: Option<&Value>) -> bool {
    let p = pattern.trim_matches('*').to_lowercase();
    match value {
        Some(Value::String(s)) => s.to_lowercase().contains(&p),
        _ => false,
    }
}

pub fn in_range(value: Option<&Value>, range: &(String, String)) -> bool {
    match value {
        Some(Value::String(t)) => t.as_str() >= range.0.as_str() && t.as_str() <= range.1.as_str(),
        _ => false,
    }
}

/// `customFieldN=apiName:value` filters as (apiName, value) pairs.
pub fn custom_field_filters(q: &Q) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = (1..=10)
        .filter_map(|n| q.get(&format!("customField{n}")))
        .filter_map(|v| {
            v.split_once(':')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        })
        .collect();
    out.sort();
    out
}

pub fn cf_matches(rec: &Rec, filters: &[(String, String)]) -> bool {
    filters
        .iter()
        .all(|(api, want)| matches(want, rec.get("cf").and_then(|cf| cf.get(api))))
}
