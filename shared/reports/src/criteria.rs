//! Reads the condition text of source workflows and views (`status = 'Open' AND priority IN ('High',
//! 'Urgent')`) and says it again in the destination's field names and values.

use deskshift_core::mapping::{CollectionMap, FieldMapping, Target};
use serde::{Deserialize, Serialize};

use crate::fields::norm;
use crate::vocab::standard_field_label;

/// One comparison of a condition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Clause {
    pub field: String,
    /// Normalised operator: `=`, `!=`, `>`, `<`, `>=`, `<=`, `in`, `not in`, `contains`.
    pub op: String,
    pub values: Vec<String>,
    /// `and` / `or` joining this clause to the previous one (empty for the first).
    pub join: String,
}

/// Splits `text` at top-level AND / OR into clauses; None when a part has no operator.
pub fn parse(text: &str) -> Option<Vec<Clause>> {
    let text = text.trim();
    if text.is_empty() {
        return Some(vec![]);
    }
    let mut parts: Vec<(String, String)> = Vec::new();
    let mut current = String::new();
    let mut join = String::new();
    let mut quote: Option<char> = None;
    let mut depth = 0usize;
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '(' => depth += 1,
            None if c == ')' => depth = depth.saturating_sub(1),
            None if depth == 0 && c.is_whitespace() => {
                let rest: String = chars[i + 1..].iter().take(4).collect();
                let lower = rest.to_ascii_lowercase();
                for word in ["and", "or"] {
                    let n = word.len();
                    if lower.starts_with(word)
                        && chars.get(i + 1 + n).is_some_and(|c| c.is_whitespace())
                    {
                        parts.push((std::mem::take(&mut join), current.trim().to_string()));
                        current.clear();
                        join = word.to_string();
                        i += n + 1;
                        break;
                    }
                }
            }
            None => {}
        }
        if i < chars.len() {
            current.push(chars[i]);
        }
        i += 1;
    }
    parts.push((join, current.trim().to_string()));
    parts
        .into_iter()
        .map(|(join, part)| {
            clause(&part).map(|mut c| {
                c.join = join;
                c
            })
        })
        .collect()
}

fn clause(part: &str) -> Option<Clause> {
    let lower = part.to_ascii_lowercase();
    // The leftmost operator outside quotes wins; at one position, the longest.
    const OPS: [(&str, &str); 14] = [
        (" not in ", "not in"),
        (" in ", "in"),
        (" not like ", "!="),
        (" like ", "contains"),
        (" contains ", "contains"),
        (" is not ", "!="),
        (" is ", "="),
        (">=", ">="),
        ("<=", "<="),
        ("!=", "!="),
        ("<>", "!="),
        ("=", "="),
        (">", ">"),
        ("<", "<"),
    ];
    let (at, len, op) = OPS
        .iter()
        .filter_map(|(w, op)| outside_quotes(&lower, w).map(|at| (at, w.len(), *op)))
        .min_by_key(|(at, len, _)| (*at, usize::MAX - len))?;
    Some(make(&part[..at], op, &part[at + len..]))
}

fn outside_quotes(s: &str, needle: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if s[i..].starts_with(needle) => return Some(i),
            None => {}
        }
    }
    None
}

fn make(field: &str, op: &str, value: &str) -> Clause {
    let value = value.trim();
    let values = if value.starts_with('(') && value.ends_with(')') {
        split_list(&value[1..value.len() - 1])
    } else {
        vec![unquote(value)]
    };
    Clause {
        field: field.trim().to_string(),
        op: op.to_string(),
        values,
        join: String::new(),
    }
}

fn split_list(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match quote {
            Some(q) if c == q => {
                quote = None;
                cur.push(c);
            }
            Some(_) => cur.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                cur.push(c);
            }
            None if c == ',' => out.push(unquote(&std::mem::take(&mut cur))),
            None => cur.push(c),
        }
    }
    if !cur.trim().is_empty() {
        out.push(unquote(&cur));
    }
    out
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    for q in ['\'', '"'] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return s[1..s.len() - 1].to_string();
        }
    }
    s.to_string()
}

/// The field mapping a condition names, by source field name or label.
pub fn mapping_of<'a>(cm: &'a CollectionMap, field: &str) -> Option<&'a FieldMapping> {
    let n = norm(field);
    cm.fields.iter().find(|f| f.source == field).or_else(|| {
        cm.fields
            .iter()
            .find(|f| norm(&f.source) == n || norm(&f.label) == n)
    })
}

/// The destination's name of a source field, and whether it exists there at all.
pub fn destination_field(platform: &str, cm: &CollectionMap, field: &str) -> (String, bool) {
    match mapping_of(cm, field) {
        Some(f) => match &f.target {
            Target::Standard { field: s } => (standard_field_label(platform, cm.kind, s), true),
            Target::Custom { label, .. } => (label.clone(), true),
            Target::Ignore => (format!("{} (not migrated)", f.label), false),
        },
        None => (format!("{field} (unknown field)"), false),
    }
}

/// The criteria in words, in the destination's names; the second item lists fields that do not
/// exist in the destination (a view or rule on them must be rethought).
pub fn in_words(
    platform: &str,
    cm: Option<&CollectionMap>,
    clauses: &[Clause],
) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut missing = Vec::new();
    for c in clauses {
        if !c.join.is_empty() {
            out.push_str(&format!(" {} ", c.join.to_ascii_uppercase()));
        }
        let (name, exists, values) = match cm {
            Some(cm) => {
                let (name, exists) = destination_field(platform, cm, &c.field);
                let vm = mapping_of(cm, &c.field).map(|f| &f.value_map);
                let values: Vec<String> = c
                    .values
                    .iter()
                    .map(|v| {
                        vm.and_then(|m| m.get(v))
                            .cloned()
                            .unwrap_or_else(|| v.clone())
                    })
                    .collect();
                (name, exists, values)
            }
            None => (c.field.clone(), true, c.values.clone()),
        };
        if !exists {
            missing.push(c.field.clone());
        }
        let verb = match c.op.as_str() {
            "=" => "is",
            "!=" => "is not",
            ">" => "is greater than",
            "<" => "is less than",
            ">=" => "is at least",
            "<=" => "is at most",
            "in" => "is one of",
            "not in" => "is none of",
            "contains" => "contains",
            other => other,
        };
        let vals = values
            .iter()
            .map(|v| format!("\u{201c}{v}\u{201d}"))
            .collect::<Vec<_>>()
            .join(", ");
        out.push_str(&format!("{name} {verb} {vals}"));
    }
    (out, missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_or_in_and_quotes() {
        let c = parse(
            "ticket_status = 'Open' AND priority IN ('High', 'Urgent, now') or team != \"A and B\"",
        )
        .unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].field, "ticket_status");
        assert_eq!(c[0].op, "=");
        assert_eq!(c[0].values, vec!["Open"]);
        assert_eq!(c[1].op, "in");
        assert_eq!(c[1].values, vec!["High", "Urgent, now"]);
        assert_eq!(c[1].join, "and");
        assert_eq!(c[2].join, "or");
        assert_eq!(c[2].values, vec!["A and B"]);
        assert!(parse("just words").is_none());
        assert_eq!(parse("").unwrap(), vec![]);
    }
}
