//! Finds a documentation collection's fields by meaning: tenants name them differently, so each
//! role (a workflow's trigger, a change's old value, ...) is looked up by label and name synonyms
//! in the approved field map, never by a fixed field name.

use deskshift_core::mapping::{CollectionMap, FieldMapping, Target};
use deskshift_core::model::{FieldType, RawRecord};
use deskshift_core::transform::value_text;
use serde_json::Value;

/// One role and the lower-case alphanumeric names that mean it, best first.
pub(crate) struct Role {
    pub name: &'static str,
    pub synonyms: &'static [&'static str],
    /// Names tried only when nothing else matched (e.g. the record's own creator stamp).
    pub fallback: &'static [&'static str],
}

pub(crate) const fn role(name: &'static str, synonyms: &'static [&'static str]) -> Role {
    Role {
        name,
        synonyms,
        fallback: &[],
    }
}

pub(crate) fn norm(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The source field found for each role of one collection.
#[derive(Clone, Debug, Default)]
pub(crate) struct Resolved {
    found: Vec<(&'static str, FieldMapping)>,
}

impl Resolved {
    /// Resolves every role at once: exact names first (for all roles), then names containing a
    /// synonym, then fallbacks, so that a vague synonym never takes a field another role names exactly.
    pub fn new(cm: &CollectionMap, roles: &[Role]) -> Resolved {
        let mut found: Vec<(&'static str, FieldMapping)> = Vec::new();
        let taken = |found: &[(&str, FieldMapping)], f: &FieldMapping| {
            found.iter().any(|(_, g)| g.source == f.source)
        };
        let names = |f: &FieldMapping| [norm(&f.source), norm(&f.label)];
        // Exact matches, in synonym order (the first synonym is the most specific).
        for r in roles {
            let hit = r.synonyms.iter().find_map(|syn| {
                cm.fields
                    .iter()
                    .filter(|f| !taken(&found, f))
                    .find(|f| names(f).iter().any(|n| n == syn))
            });
            if let Some(f) = hit {
                found.push((r.name, f.clone()));
            }
        }
        // Containment, skipping fields the map ignores (system stamps such as a creation date).
        for r in roles {
            if found.iter().any(|(n, _)| *n == r.name) {
                continue;
            }
            let hit = r.synonyms.iter().filter(|s| s.len() >= 4).find_map(|syn| {
                cm.fields
                    .iter()
                    .filter(|f| !taken(&found, f) && f.target != Target::Ignore)
                    .find(|f| names(f).iter().any(|n| n.contains(syn)))
            });
            if let Some(f) = hit {
                found.push((r.name, f.clone()));
            }
        }
        for r in roles {
            if found.iter().any(|(n, _)| *n == r.name) {
                continue;
            }
            let hit = r.fallback.iter().find_map(|syn| {
                cm.fields
                    .iter()
                    .filter(|f| !taken(&found, f))
                    .find(|f| names(f).iter().any(|n| n == syn))
            });
            if let Some(f) = hit {
                found.push((r.name, f.clone()));
            }
        }
        Resolved { found }
    }

    pub fn field(&self, role: &str) -> Option<&FieldMapping> {
        self.found.iter().find(|(n, _)| *n == role).map(|(_, f)| f)
    }

    /// The value of a role in a record as text (lists joined with ", "); empty when absent.
    pub fn text(&self, raw: &RawRecord, role: &str) -> String {
        self.value(raw, role).map(display_text).unwrap_or_default()
    }

    pub fn value<'a>(&self, raw: &'a RawRecord, role: &str) -> Option<&'a Value> {
        self.field(role).and_then(|f| raw.fields.get(&f.source))
    }

    pub fn field_type(&self, role: &str) -> Option<&FieldType> {
        self.field(role).map(|f| &f.source_type)
    }

    /// Roles and the source field each was found in, for the documents' "read from" notes.
    pub fn sources(&self) -> Vec<(String, String)> {
        self.found
            .iter()
            .map(|(r, f)| (r.to_string(), f.source.clone()))
            .collect()
    }
}

/// A value as a person reads it: lists joined with ", ", null as empty.
pub(crate) fn display_text(v: &Value) -> String {
    match v {
        Value::Array(items) => items
            .iter()
            .map(value_text)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(", "),
        other => value_text(other),
    }
}

pub(crate) fn list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .map(value_text)
            .filter(|s| !s.is_empty())
            .collect(),
        Some(Value::Null) | None => vec![],
        Some(other) => {
            let s = value_text(other);
            // Some tenants store multi-values as one delimited string.
            s.split([';', ','])
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        }
    }
}

pub(crate) fn truthy(s: &str) -> bool {
    matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "y" | "on" | "active" | "enabled"
    )
}

/// Text without HTML tags and with the common entities decoded, for Markdown and one-line cells.
pub(crate) fn plain(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let out = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use deskshift_core::model::ObjectKind;

    fn fm(source: &str, label: &str, target: Target) -> FieldMapping {
        FieldMapping {
            source: source.into(),
            label: label.into(),
            source_type: FieldType::Text,
            target,
            confidence: 1.0,
            reason: String::new(),
            samples: vec![],
            options: vec![],
            value_map: Default::default(),
            linked_collection: None,
        }
    }

    fn custom(label: &str) -> Target {
        Target::Custom {
            label: label.into(),
            field_type: FieldType::Text,
            options: vec![],
        }
    }

    #[test]
    fn exact_names_win_over_containment_and_system_stamps_are_skipped() {
        let cm = CollectionMap {
            collection: "ChangeHistory".into(),
            kind: ObjectKind::ChangeHistory,
            confidence: 1.0,
            reason: String::new(),
            fields: vec![
                fm("modified_by", "modified by", Target::Ignore),
                fm("created_date", "created date", Target::Ignore),
                fm(
                    "modified_by_user",
                    "Modified By User",
                    custom("Modified By User"),
                ),
                fm("change_date", "Change Date", custom("Change Date")),
                fm("record", "Record", custom("Record")),
                fm("module", "Module", custom("Module")),
            ],
        };
        const ROLES: &[Role] = &[
            role("record_tab", &["recordtab", "module", "tab"]),
            role("record_id", &["recordid", "record", "itemid"]),
            role("who", &["changedby", "modifiedbyuser", "user"]),
            role("when", &["changedat", "changedate", "timestamp", "date"]),
        ];
        let r = Resolved::new(&cm, ROLES);
        assert_eq!(r.field("record_tab").unwrap().source, "module");
        assert_eq!(r.field("record_id").unwrap().source, "record");
        assert_eq!(r.field("who").unwrap().source, "modified_by_user");
        assert_eq!(r.field("when").unwrap().source, "change_date");
    }

    #[test]
    fn plain_text_drops_tags_and_decodes_entities() {
        assert_eq!(
            plain("<p>Members of <b>A&amp;B</b>.</p>"),
            "Members of A&B ."
        );
        assert_eq!(
            list(Some(&serde_json::json!("a; b,c"))),
            vec!["a", "b", "c"]
        );
    }
}
