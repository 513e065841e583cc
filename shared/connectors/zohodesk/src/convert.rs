//! Conversions between canonical values and Zoho's formats, and the provenance line with its marker.

use deskshift_core::model::{Activity, ActivityKind, CustomValue, Person};
use serde_json::Value;

/// Label of the text custom field that carries `<source platform>:<source id>` in every module.
pub const MIGRATED_FROM_LABEL: &str = "Migrated From ID";

pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

pub use deskshift_core::util::parse_instant;

/// `2025-01-15T14:30:00.000Z` (Zoho's API format, milliseconds kept).
pub fn zoho_datetime(s: &str) -> Option<String> {
    parse_instant(s).map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

/// `YYYY-MM-DDTHH:MM:SS.000Z`, the import package's time format (whole seconds).
pub fn package_time(s: &str) -> Option<String> {
    parse_instant(s).map(|t| t.strftime("%Y-%m-%dT%H:%M:%S.000Z").to_string())
}

/// `YYYY-MM-DD` for Zoho Date fields; a date-time keeps its UTC date.
pub fn zoho_date(s: &str) -> Option<String> {
    let s = s.trim();
    if let Ok(d) = s.get(..10).unwrap_or(s).parse::<jiff::civil::Date>()
        && s.len() <= 10
    {
        return Some(d.to_string());
    }
    parse_instant(s).map(|t| t.strftime("%Y-%m-%d").to_string())
}

/// `2025-01-15 14:30:00 UTC`, for provenance lines people read.
pub fn readable_utc(s: &str) -> String {
    parse_instant(s)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| s.to_string())
}

/// A canonical custom value in the format a Zoho field of `zoho_type` takes (always a string, as
/// the OpenAPI `cf` schema declares).
pub fn custom_value_for(zoho_type: &str, value: &CustomValue) -> Result<Value, String> {
    let text = value.as_text();
    let out = match zoho_type {
        "Boolean" | "Checkbox" => match value {
            CustomValue::Bool(b) => b.to_string(),
            _ => match text.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" | "on" => "true".to_string(),
                "false" | "no" | "0" | "off" | "" => "false".to_string(),
                other => return Err(format!("'{other}' is not a yes/no value")),
            },
        },
        "Multiselect" => match value {
            CustomValue::List(items) => items.join(";"),
            _ => text,
        },
        "Date" => {
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            zoho_date(&text).ok_or_else(|| format!("'{text}' is not a date"))?
        }
        "DateTime" => {
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            zoho_datetime(&text).ok_or_else(|| format!("'{text}' is not a date-time"))?
        }
        "Number" => match value {
            CustomValue::Number(n) if n.fract() != 0.0 => {
                return Err(format!("{n} is not a whole number"));
            }
            _ => text,
        },
        _ => text,
    };
    Ok(Value::String(out))
}

/// A Zoho field value as the text [`CustomValue::as_text`] would give (booleans `true`/`false`,
/// lists joined with `;`); None for empty values.
pub fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().filter_map(value_text).collect();
            (!parts.is_empty()).then(|| parts.join(";"))
        }
        Value::Object(_) => Some(v.to_string()),
    }
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

/// `[deskshift:<platform>:<kind>:<source id>]`
pub fn marker(platform: &str, kind: &str, source_id: &str) -> String {
    format!("[deskshift:{platform}:{kind}:{source_id}]")
}

/// Whether `content` carries a marker for this platform and source id (any kind, escaped or not).
pub fn has_marker(content: &str, platform: &str, source_id: &str) -> bool {
    let prefix = format!("[deskshift:{platform}:");
    let escaped_id = html_escape(source_id);
    let mut rest = content;
    while let Some(pos) = rest.find(&prefix) {
        let after = &rest[pos + prefix.len()..];
        if let Some(end) = after.find(']') {
            let inner = &after[..end];
            if let Some((_, id)) = inner.split_once(':')
                && (id == source_id || id == escaped_id)
            {
                return true;
            }
        }
        rest = after;
    }
    false
}

const PROVENANCE_OPEN: &str = "<div class=\"deskshift-provenance\">";
const PROVENANCE_CLOSE: &str = "</div>";

fn person(p: &Option<Person>) -> String {
    p.as_ref()
        .map(Person::display)
        .unwrap_or_else(|| "unknown".to_string())
}

/// The visible first line of a migrated activity: kind, author, original time, addresses, and the marker.
pub fn activity_provenance(platform: &str, activity: &Activity) -> String {
    let mark = marker(platform, activity_tag(&activity.kind), &activity.source_id);
    let what = activity.kind.describe();
    let when = activity
        .created_at
        .as_deref()
        .map(readable_utc)
        .unwrap_or_else(|| "unknown time".to_string());
    let line = format!(
        "{what}; by {} on {when} (migrated from {platform})",
        person(&activity.author)
    );
    format!(
        "{PROVENANCE_OPEN}<!-- {m} --><small>{m} {}</small>{PROVENANCE_CLOSE}",
        html_escape(&line),
        m = html_escape(&mark)
    )
}

/// The content without the provenance block (the original body as it was sent).
pub fn strip_provenance(content: &str) -> String {
    if let Some(start) = content.find(PROVENANCE_OPEN) {
        let after = &content[start..];
        if let Some(end) = after.find(PROVENANCE_CLOSE) {
            let mut out = String::with_capacity(content.len());
            out.push_str(&content[..start]);
            out.push_str(&after[end + PROVENANCE_CLOSE.len()..]);
            return out;
        }
    }
    // A platform that rewrote the block's markup: drop up to the end of the element holding the marker.
    if let Some(pos) = content.find("[deskshift:")
        && let Some(end) = content[pos..].find(PROVENANCE_CLOSE)
    {
        return content[pos + end + PROVENANCE_CLOSE.len()..].to_string();
    }
    content.to_string()
}

/// A file name safe to use as one path component.
pub fn safe_file_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    let mut out: String = trimmed.chars().take(200).collect();
    if out.is_empty() {
        out = "attachment".to_string();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_convert_to_zoho_and_package_formats() {
        assert_eq!(
            zoho_datetime("2025-01-15T14:30:00+02:00").unwrap(),
            "2025-01-15T12:30:00.000Z"
        );
        assert_eq!(
            package_time("2025-01-15T14:30:00.789Z").unwrap(),
            "2025-01-15T14:30:00.000Z"
        );
        assert_eq!(
            package_time("2025-01-15").unwrap(),
            "2025-01-15T00:00:00.000Z"
        );
        assert_eq!(zoho_date("2025-01-15T23:30:00Z").unwrap(), "2025-01-15");
        assert_eq!(zoho_date("2025-01-15").unwrap(), "2025-01-15");
        assert_eq!(
            zoho_datetime("1464170769686").unwrap(),
            "2016-05-25T10:06:09.686Z"
        );
        assert!(zoho_datetime("yesterday").is_none());
    }

    #[test]
    fn custom_values_take_zoho_formats() {
        assert_eq!(
            custom_value_for("Boolean", &CustomValue::Bool(true)).unwrap(),
            "true"
        );
        assert_eq!(
            custom_value_for("Boolean", &CustomValue::Text("No".into())).unwrap(),
            "false"
        );
        let list = CustomValue::List(vec!["a".into(), "b".into()]);
        assert_eq!(custom_value_for("Multiselect", &list).unwrap(), "a;b");
        assert_eq!(
            custom_value_for("Date", &CustomValue::Text("2025-02-03T10:00:00Z".into())).unwrap(),
            "2025-02-03"
        );
        assert_eq!(
            custom_value_for("Number", &CustomValue::Number(7.0)).unwrap(),
            "7"
        );
        assert!(custom_value_for("Number", &CustomValue::Number(7.5)).is_err());
        assert!(custom_value_for("Date", &CustomValue::Text("soon".into())).is_err());
        assert_eq!(value_text(&serde_json::json!(["a", "b"])).unwrap(), "a;b");
        assert_eq!(value_text(&serde_json::json!(true)).unwrap(), "true");
    }

    #[test]
    fn provenance_marks_and_strips() {
        let a = Activity {
            source_id: "a<1>".into(),
            ticket: "t1".into(),
            kind: ActivityKind::Email {
                inbound: true,
                from: Some("Ann <ann@x.test>".into()),
                to: vec!["help@y.test".into()],
                cc: vec!["boss@x.test".into()],
                subject: None,
            },
            body_html: "<p>Hello</p>".into(),
            author: None,
            created_at: Some("2024-03-01T08:00:00Z".into()),
            public: true,
            custom: Default::default(),
            attachments: vec![],
        };
        let line = activity_provenance("ivinex", &a);
        assert!(line.contains("&lt;ann@x.test&gt;"), "{line}");
        assert!(line.contains("2024-03-01 08:00:00 UTC"));
        assert!(line.contains("cc boss@x.test"));
        let content = format!("{line}{}", a.body_html);
        assert!(has_marker(&content, "ivinex", "a<1>"));
        assert!(!has_marker(&content, "ivinex", "a<2>"));
        assert!(!has_marker(&content, "other", "a<1>"));
        assert_eq!(strip_provenance(&content), "<p>Hello</p>");
    }

    #[test]
    fn file_names_cannot_escape_their_folder() {
        assert_eq!(safe_file_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_file_name(""), "attachment");
        assert_eq!(safe_file_name("report 1.pdf"), "report 1.pdf");
    }
}
