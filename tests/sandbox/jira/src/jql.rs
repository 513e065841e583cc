//! The JQL subset a migration needs: `project = X`, `key = X-1`, `summary ~ "t"`,
//! `"<field name>" ~ "t"`, `cf[10010] = "x"` / `customfield_10010 ~ "x"`, joined by AND, with an
//! optional `ORDER BY key|created [ASC|DESC]`.

use base64::Engine;

use crate::adf::adf_to_text;
use crate::model::{Issue, Store};

enum Target {
    Project(String),
    Key(String),
    Summary,
    Description,
    Custom(Vec<String>),
}

struct Clause {
    target: Target,
    exact: bool,
    value: String,
}

pub struct Query {
    clauses: Vec<Clause>,
    order_desc: bool,
    order_created: bool,
}

fn tokenize(jql: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = jql.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '\'' {
            let mut s = String::from("\u{1}");
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                }
                s.push(chars[i]);
                i += 1;
            }
            if i >= chars.len() {
                return Err("Error in the JQL Query: the quoted string is not terminated.".into());
            }
            i += 1;
            out.push(s);
        } else if c == '=' || c == '~' {
            out.push(c.to_string());
            i += 1;
        } else if c == '!' && chars.get(i + 1) == Some(&'=') {
            return Err(
                "Error in the JQL Query: the operator '!=' is not supported by this sandbox."
                    .into(),
            );
        } else {
            let mut s = String::new();
            while i < chars.len()
                && !chars[i].is_whitespace()
                && !matches!(chars[i], '=' | '~' | '"' | '\'')
            {
                s.push(chars[i]);
                i += 1;
            }
            out.push(s);
        }
    }
    Ok(out)
}

fn unquote(t: &str) -> (String, bool) {
    match t.strip_prefix('\u{1}') {
        Some(s) => (s.to_string(), true),
        None => (t.to_string(), false),
    }
}

pub fn parse(jql: &str, store: &Store) -> Result<Query, String> {
    if jql.is_empty() {
        return Err("Unbounded JQL queries are not allowed here. Please add a search restriction to your query.".into());
    }
    let tokens = tokenize(jql)?;
    let mut q = Query {
        clauses: Vec::new(),
        order_desc: false,
        order_created: false,
    };
    let mut i = 0;
    while i < tokens.len() {
        let (word, quoted) = unquote(&tokens[i]);
        if !quoted && word.eq_ignore_ascii_case("order") {
            let by = tokens
                .get(i + 1)
                .map(|t| t.eq_ignore_ascii_case("by"))
                .unwrap_or(false);
            let field = tokens
                .get(i + 2)
                .map(|t| t.to_ascii_lowercase())
                .unwrap_or_default();
            if !by || !matches!(field.as_str(), "key" | "created" | "id" | "issuekey") {
                return Err(
                    "Error in the JQL Query: only ORDER BY key or created is supported.".into(),
                );
            }
            q.order_created = field == "created";
            q.order_desc = tokens
                .get(i + 3)
                .is_some_and(|d| d.eq_ignore_ascii_case("desc"));
            break;
        }
        if !quoted && word.eq_ignore_ascii_case("and") {
            i += 1;
            continue;
        }
        if !quoted && word.eq_ignore_ascii_case("or") {
            return Err("Error in the JQL Query: OR is not supported by this sandbox.".into());
        }
        let op = tokens.get(i + 1).ok_or_else(|| {
            format!("Error in the JQL Query: Expecting an operator after '{word}'.")
        })?;
        let exact = match op.as_str() {
            "=" => true,
            "~" => false,
            other => {
                return Err(format!(
                    "Error in the JQL Query: the operator '{other}' is not supported by this sandbox."
                ));
            }
        };
        let value = tokens.get(i + 2).map(|t| unquote(t).0).ok_or_else(|| {
            format!("Error in the JQL Query: Expecting a value after '{word} {op}'.")
        })?;
        let lower = word.to_ascii_lowercase();
        let target = match lower.as_str() {
            "project" if !quoted => Target::Project(value.to_ascii_uppercase()),
            "key" | "issuekey" | "issue" if !quoted => Target::Key(value.to_ascii_uppercase()),
            "summary" | "text" => Target::Summary,
            "description" => Target::Description,
            _ => {
                let by_id: Vec<String> =
                    store.field(&word).map(|f| vec![f.id()]).unwrap_or_default();
                let ids = if by_id.is_empty() {
                    store.field_by_name(&word).iter().map(|f| f.id()).collect()
                } else {
                    by_id
                };
                if ids.is_empty() {
                    return Err(format!(
                        "Field '{word}' does not exist or you do not have permission to view it."
                    ));
                }
                Target::Custom(ids)
            }
        };
        if let Target::Project(p) = &target
            && store.project(p).is_none()
        {
            return Err(format!(
                "The value '{value}' does not exist for the field 'project'."
            ));
        }
        q.clauses.push(Clause {
            target,
            exact,
            value,
        });
        i += 3;
    }
    if q.clauses.is_empty() {
        return Err("Unbounded JQL queries are not allowed here. Please add a search restriction to your query.".into());
    }
    Ok(q)
}

fn text_of(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(_) if v.get("type").is_some() => adf_to_text(v),
        serde_json::Value::Object(_) => v
            .get("value")
            .and_then(|x| x.as_str())
            .unwrap_or("")
            .to_string(),
        other => other.to_string(),
    }
}

fn matches(text: &str, value: &str, exact: bool) -> bool {
    if exact {
        text == value
    } else {
        text.to_lowercase().contains(&value.to_lowercase())
    }
}

impl Clause {
    fn test(&self, i: &Issue) -> bool {
        match &self.target {
            Target::Project(p) => &i.project_key == p,
            Target::Key(k) => &i.key == k || i.id.to_string() == *k,
            Target::Summary => matches(&i.summary, &self.value, self.exact),
            Target::Description => i
                .description
                .as_ref()
                .is_some_and(|d| matches(&adf_to_text(d), &self.value, self.exact)),
            Target::Custom(ids) => ids.iter().any(|id| {
                i.custom
                    .get(id)
                    .is_some_and(|v| matches(&text_of(v), &self.value, self.exact))
            }),
        }
    }
}

impl Query {
    /// Matching issue ids in the requested order.
    pub fn run(&self, store: &Store) -> Vec<u64> {
        let mut hits: Vec<&Issue> = store
            .issues
            .values()
            .filter(|i| self.clauses.iter().all(|c| c.test(i)))
            .collect();
        if self.order_created {
            hits.sort_by_key(|i| (i.created_ms, i.id));
        } else {
            hits.sort_by(|a, b| {
                a.project_key
                    .cmp(&b.project_key)
                    .then(key_num(a).cmp(&key_num(b)))
            });
        }
        if self.order_desc {
            hits.reverse();
        }
        hits.into_iter().map(|i| i.id).collect()
    }
}

fn key_num(i: &Issue) -> u64 {
    i.key
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

pub fn encode_token(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("offset:{offset}"))
}

pub fn decode_token(token: &str) -> Option<usize> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    String::from_utf8(raw)
        .ok()?
        .strip_prefix("offset:")?
        .parse()
        .ok()
}
