//! Atlassian Document Format: validation against the published schema, and the small conversions
//! the servicedeskapi needs (plain text in, plain text out).

use std::sync::Arc;

use serde_json::{Value, json};

/// The ADF JSON schema from @atlaskit/adf-schema 57.7.22 (see adf/NOTICE).
pub const ADF_SCHEMA: &str = include_str!("../adf/full.json");

/// What Jira answers when a field that takes ADF receives something else.
pub const NOT_ADF_MESSAGE: &str = "Operation value must be an Atlassian Document. See the Atlassian Document Format \
     (https://developer.atlassian.com/cloud/jira/platform/apis/document/structure/) documentation.";

/// A compiled ADF validator; cheap to clone, compiled once per process.
#[derive(Clone)]
pub struct AdfValidator {
    inner: Arc<jsonschema::Validator>,
}

impl AdfValidator {
    pub fn shared() -> AdfValidator {
        static CELL: std::sync::OnceLock<AdfValidator> = std::sync::OnceLock::new();
        CELL.get_or_init(|| {
            let schema: Value =
                serde_json::from_str(ADF_SCHEMA).expect("bundled ADF schema is JSON");
            let validator =
                jsonschema::validator_for(&schema).expect("bundled ADF schema compiles");
            AdfValidator {
                inner: Arc::new(validator),
            }
        })
        .clone()
    }

    /// Ok when `doc` is a valid ADF document; otherwise the message Jira-style callers report.
    pub fn check(&self, doc: &Value) -> Result<(), String> {
        if !doc.is_object() || doc.get("type").and_then(Value::as_str) != Some("doc") {
            return Err(NOT_ADF_MESSAGE.to_string());
        }
        match self.inner.iter_errors(doc).next() {
            None => Ok(()),
            Some(err) => {
                let at = err.instance_path().to_string();
                let at = if at.is_empty() { "/".to_string() } else { at };
                Err(format!("{NOT_ADF_MESSAGE} Invalid node at {at}."))
            }
        }
    }

    pub fn is_valid(&self, doc: &Value) -> bool {
        self.check(doc).is_ok()
    }
}

/// Plain or wiki text as ADF: one paragraph per non-empty line.
pub fn text_to_adf(text: &str) -> Value {
    let paragraphs: Vec<Value> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| json!({"type": "paragraph", "content": [{"type": "text", "text": l}]}))
        .collect();
    json!({"version": 1, "type": "doc", "content": paragraphs})
}

/// The visible text of an ADF tree; block nodes are separated by newlines.
pub fn adf_to_text(doc: &Value) -> String {
    fn walk(node: &Value, out: &mut String) {
        match node.get("type").and_then(Value::as_str) {
            Some("text") => out.push_str(node.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("hardBreak") => out.push('\n'),
            Some("mention") => out.push_str(
                node.pointer("/attrs/text")
                    .and_then(Value::as_str)
                    .unwrap_or(""),
            ),
            _ => {
                if let Some(children) = node.get("content").and_then(Value::as_array) {
                    for child in children {
                        let block = child.get("content").is_some()
                            && child.get("type").and_then(Value::as_str) != Some("text");
                        if block && !out.is_empty() && !out.ends_with('\n') {
                            out.push('\n');
                        }
                        walk(child, out);
                    }
                }
            }
        }
    }
    let mut out = String::new();
    walk(doc, &mut out);
    out
}

/// A minimal HTML rendering used for `renderedBody` / `renderedValue`.
pub fn adf_to_html(doc: &Value) -> String {
    let text = adf_to_text(doc);
    text.lines()
        .map(|l| format!("<p>{}</p>", html_escape(l)))
        .collect::<Vec<_>>()
        .join("")
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
