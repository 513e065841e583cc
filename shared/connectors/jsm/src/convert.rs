//! Conversions between canonical values and Jira's formats, and the provenance marker.

use deskshift_core::model::{ActivityKind, CustomValue, FieldType, Person};
use serde_json::{Value, json};

/// Jira's full custom field type key.
pub const CF_PREFIX: &str = "com.atlassian.jira.plugin.system.customfieldtypes:";

/// `[deskshift:<platform>:<kind>:<source id>]`, the marker in every provenance paragraph.
pub fn marker(platform: &str, kind: &str, source_id: &str) -> String {
    format!("[deskshift:{platform}:{kind}:{source_id}]")
}

/// Whether a text carries the marker for this platform, kind and source id.
pub fn has_marker(text: &str, platform: &str, kind: &str, source_id: &str) -> bool {
    text.contains(&marker(platform, kind, source_id))
}

/// The Legacy Ticket ID value of a ticket or a task (tasks say so, tickets are the plain id).
pub fn legacy_value(platform: &str, kind: &str, source_id: &str) -> String {
    if kind == "task" {
        format!("{platform}:task:{source_id}")
    } else {
        format!("{platform}:{source_id}")
    }
}

/// Reads the time formats of `deskshift_core::util::parse_instant`, and Jira's own `+0000` offsets.
pub fn parse_instant(s: &str) -> Option<jiff::Timestamp> {
    jiff::fmt::strtime::parse("%Y-%m-%dT%H:%M:%S%.f%z", s.trim())
        .and_then(|t| t.to_timestamp())
        .ok()
        .or_else(|| deskshift_core::util::parse_instant(s))
}

/// `YYYY-MM-DD` (duedate, datepicker); a date-time keeps its UTC date.
pub fn jira_date(s: &str) -> Option<String> {
    let s = s.trim();
    if s.len() == 10
        && let Ok(d) = s.parse::<jiff::civil::Date>()
    {
        return Some(d.to_string());
    }
    parse_instant(s).map(|t| t.strftime("%Y-%m-%d").to_string())
}

/// `2025-01-15T14:30:00.000+0000` (datetime custom fields).
pub fn jira_datetime(s: &str) -> Option<String> {
    parse_instant(s).map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string())
}

/// `2025-01-15 14:30:00 UTC`, for provenance lines people read.
pub fn readable_utc(s: &str) -> String {
    parse_instant(s)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| s.to_string())
}

/// A Jira label: no whitespace (Jira refuses it), at most 255 characters; None when empty.
pub fn label(s: &str) -> Option<String> {
    let cleaned: String = s
        .trim()
        .chars()
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .take(255)
        .collect();
    (!cleaned.is_empty()).then_some(cleaned)
}

/// The Jira field type (short key) and searcher for a source field type.
pub fn jira_field_type(t: &FieldType, has_options: bool) -> (&'static str, &'static str) {
    match t {
        FieldType::Textarea => ("textarea", "textsearcher"),
        FieldType::Number | FieldType::Decimal => ("float", "exactnumber"),
        FieldType::Date => ("datepicker", "daterange"),
        FieldType::Datetime => ("datetime", "datetimerange"),
        FieldType::Dropdown if has_options => ("select", "multiselectsearcher"),
        FieldType::Multiselect if has_options => ("multiselect", "multiselectsearcher"),
        // Yes/No keeps "unset" apart from "No", which a labels field could not.
        FieldType::Checkbox => ("select", "multiselectsearcher"),
        FieldType::Url => ("url", "exacttextsearcher"),
        // A user link holds the person's e-mail: the people behind it are not all Jira users.
        FieldType::Text
        | FieldType::Email
        | FieldType::Phone
        | FieldType::UserLink
        | FieldType::LinkedRecord
        | FieldType::Dropdown
        | FieldType::Multiselect
        | FieldType::Other(_) => ("textfield", "textsearcher"),
    }
}

/// The short type of a Jira field from its schema (`custom` key), e.g. `textfield`.
pub fn short_type(custom: &str) -> &str {
    custom.strip_prefix(CF_PREFIX).unwrap_or(custom)
}

/// Whether select options are the Yes/No pair a checkbox became.
pub fn is_yes_no(options: &[String]) -> bool {
    options.len() == 2 && options.iter().any(|o| o == "Yes") && options.iter().any(|o| o == "No")
}

fn truthy(value: &CustomValue) -> Result<bool, String> {
    match value {
        CustomValue::Bool(b) => Ok(*b),
        CustomValue::Number(n) => Ok(*n != 0.0),
        other => match other.as_text().trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" | "on" | "y" => Ok(true),
            "false" | "no" | "0" | "off" | "n" | "" => Ok(false),
            t => Err(format!("'{t}' is not a yes/no value")),
        },
    }
}

/// A canonical custom value in the shape a Jira field of `short` type takes; None = leave unset.
pub fn custom_value_for(
    short: &str,
    options: &[String],
    value: &CustomValue,
) -> Result<Option<Value>, String> {
    let text = value.as_text();
    let v = match short {
        "textfield" | "url" => {
            if text.is_empty() {
                return Ok(None);
            }
            if text.chars().count() > 255 {
                return Err(format!(
                    "{} characters do not fit a Jira text field (255); map it to a textarea field",
                    text.chars().count()
                ));
            }
            json!(text)
        }
        "textarea" => {
            if text.is_empty() {
                return Ok(None);
            }
            crate::adf::doc(
                text.split('\n')
                    .map(crate::adf::text_paragraph)
                    .filter(|p| p["content"].as_array().is_some_and(|c| !c.is_empty()))
                    .collect(),
            )
        }
        "float" => match value {
            CustomValue::Number(n) => json!(n),
            _ if text.trim().is_empty() => return Ok(None),
            _ => json!(
                text.trim()
                    .parse::<f64>()
                    .map_err(|_| format!("'{text}' is not a number"))?
            ),
        },
        "datepicker" => {
            if text.trim().is_empty() {
                return Ok(None);
            }
            json!(jira_date(&text).ok_or_else(|| format!("'{text}' is not a date"))?)
        }
        "datetime" => {
            if text.trim().is_empty() {
                return Ok(None);
            }
            json!(jira_datetime(&text).ok_or_else(|| format!("'{text}' is not a date-time"))?)
        }
        "select" | "radiobuttons" if is_yes_no(options) => {
            json!({"value": if truthy(value)? { "Yes" } else { "No" }})
        }
        "select" | "radiobuttons" => {
            if text.is_empty() {
                return Ok(None);
            }
            json!({ "value": text })
        }
        "multiselect" | "multicheckboxes" => {
            let items: Vec<String> = match value {
                CustomValue::List(v) => v.clone(),
                _ => text.split(';').map(|s| s.trim().to_string()).collect(),
            };
            let items: Vec<Value> = items
                .into_iter()
                .filter(|s| !s.is_empty())
                .map(|s| json!({ "value": s }))
                .collect();
            if items.is_empty() {
                return Ok(None);
            }
            Value::Array(items)
        }
        "labels" => {
            let items: Vec<String> = match value {
                CustomValue::List(v) => v.iter().filter_map(|s| label(s)).collect(),
                _ => text.split(';').filter_map(label).collect(),
            };
            json!(items)
        }
        other => {
            return Err(format!(
                "Jira fields of type {other} are not written by deskshift"
            ));
        }
    };
    Ok(Some(v))
}

/// The option values a custom value needs to exist on a select field.
pub fn option_values(short: &str, options: &[String], value: &CustomValue) -> Vec<String> {
    match short {
        "select" | "radiobuttons" if is_yes_no(options) => Vec::new(),
        "select" | "radiobuttons" => {
            let t = value.as_text();
            if t.is_empty() { Vec::new() } else { vec![t] }
        }
        "multiselect" | "multicheckboxes" => match value {
            CustomValue::List(v) => v.iter().filter(|s| !s.is_empty()).cloned().collect(),
            other => other
                .as_text()
                .split(';')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        },
        _ => Vec::new(),
    }
}

/// A Jira field value as the text [`CustomValue::as_text`] would give (lists joined with `;`,
/// Yes/No selects as `true`/`false`); None for empty values.
pub fn value_text(v: &Value, yes_no: bool) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
                .map(|f| format!("{}", f as i64))
                .unwrap_or_else(|| n.to_string()),
        ),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().filter_map(|i| value_text(i, false)).collect();
            (!parts.is_empty()).then(|| parts.join(";"))
        }
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("doc") => {
            Some(crate::adf::adf_text(v)).filter(|t| !t.is_empty())
        }
        Value::Object(o) => {
            if let Some(val) = o.get("value").and_then(Value::as_str) {
                if yes_no && (val == "Yes" || val == "No") {
                    return Some((val == "Yes").to_string());
                }
                return Some(
                    match o
                        .get("child")
                        .and_then(|c| c.get("value"))
                        .and_then(Value::as_str)
                    {
                        Some(child) => format!("{val} / {child}"),
                        None => val.to_string(),
                    },
                );
            }
            o.get("emailAddress")
                .or_else(|| o.get("displayName"))
                .or_else(|| o.get("name"))
                .and_then(Value::as_str)
                .map(str::to_string)
        }
    }
}

fn person(p: &Option<Person>) -> String {
    p.as_ref()
        .map(Person::display)
        .unwrap_or_else(|| "unknown".to_string())
}

/// The activity kind as the marker names it.
pub fn activity_tag(kind: &ActivityKind) -> &'static str {
    match kind {
        ActivityKind::Email { inbound: true, .. } => "email_in",
        ActivityKind::Email { inbound: false, .. } => "email_out",
        ActivityKind::Call { .. } => "call",
        ActivityKind::Note => "note",
    }
}

/// The readable provenance line of a migrated activity: kind, author, original time, addresses.
pub fn activity_line(
    platform: &str,
    kind: &ActivityKind,
    author: &Option<Person>,
    at: Option<&str>,
) -> String {
    let what = kind.describe();
    let when = at
        .map(readable_utc)
        .unwrap_or_else(|| "unknown time".to_string());
    format!(
        "{what}; by {} on {when} (migrated from {platform})",
        person(author)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_take_jira_formats() {
        assert_eq!(jira_date("2025-01-15T23:30:00Z").unwrap(), "2025-01-15");
        assert_eq!(jira_date("2025-01-15").unwrap(), "2025-01-15");
        assert_eq!(
            jira_datetime("2025-01-15T14:30:00+02:00").unwrap(),
            "2025-01-15T12:30:00.000+0000"
        );
        assert_eq!(
            parse_instant("2025-01-15T12:30:00.000+0000").unwrap(),
            parse_instant("2025-01-15T12:30:00Z").unwrap()
        );
        assert!(jira_date("soon").is_none());
    }

    #[test]
    fn labels_have_no_spaces() {
        assert_eq!(label(" VIP customer ").unwrap(), "VIP_customer");
        assert!(label("  ").is_none());
    }

    #[test]
    fn custom_values_take_jira_shapes() {
        let yn = vec!["Yes".to_string(), "No".to_string()];
        assert_eq!(
            custom_value_for("select", &yn, &CustomValue::Bool(true))
                .unwrap()
                .unwrap(),
            json!({"value": "Yes"})
        );
        assert_eq!(value_text(&json!({"value": "No"}), true).unwrap(), "false");
        let list = CustomValue::List(vec!["a".into(), "b".into()]);
        assert_eq!(
            custom_value_for("multiselect", &[], &list)
                .unwrap()
                .unwrap(),
            json!([{"value": "a"}, {"value": "b"}])
        );
        assert_eq!(
            value_text(&json!([{"value": "a"}, {"value": "b"}]), false).unwrap(),
            "a;b"
        );
        assert_eq!(
            custom_value_for("float", &[], &CustomValue::Text("7.5".into()))
                .unwrap()
                .unwrap(),
            json!(7.5)
        );
        assert_eq!(value_text(&json!(7.0), false).unwrap(), "7");
        assert!(custom_value_for("textfield", &[], &CustomValue::Text("x".repeat(256))).is_err());
        assert!(custom_value_for("datepicker", &[], &CustomValue::Text("soon".into())).is_err());
        let doc = custom_value_for("textarea", &[], &CustomValue::Text("a\nb".into()))
            .unwrap()
            .unwrap();
        assert_eq!(value_text(&doc, false).unwrap(), "a\nb");
    }

    #[test]
    fn legacy_values_tell_tasks_apart() {
        assert_eq!(legacy_value("zohodesk", "ticket", "12"), "zohodesk:12");
        assert_eq!(legacy_value("zohodesk", "task", "12"), "zohodesk:task:12");
        assert!(has_marker("x [deskshift:z:note:5] y", "z", "note", "5"));
        assert!(!has_marker("x [deskshift:z:note:51] y", "z", "note", "5"));
    }
}
