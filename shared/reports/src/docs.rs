//! Helpers shared by the documents: finding a collection by the name a record gives it, and
//! Markdown cells.

use deskshift_core::mapping::{CollectionMap, FieldMap};

use crate::fields::norm;

/// The approved map's collections, found by the tab name a workflow or view record names.
pub(crate) struct Collections<'a> {
    map: &'a FieldMap,
}

impl<'a> Collections<'a> {
    pub fn new(map: &'a FieldMap) -> Self {
        Collections { map }
    }

    /// By exact name, then normalised name, then singular/plural.
    pub fn by_name(&self, name: &str) -> Option<&'a CollectionMap> {
        let n = norm(name);
        if n.is_empty() {
            return None;
        }
        self.map
            .collections
            .iter()
            .find(|c| c.collection == name)
            .or_else(|| {
                self.map
                    .collections
                    .iter()
                    .find(|c| norm(&c.collection) == n)
            })
            .or_else(|| {
                self.map.collections.iter().find(|c| {
                    let m = norm(&c.collection);
                    m.trim_end_matches('s') == n.trim_end_matches('s')
                })
            })
    }
}

/// A value fit for one Markdown table cell: one line, pipes escaped.
pub(crate) fn md_cell(s: &str) -> String {
    crate::fields::plain(s)
        .replace('|', "\\|")
        .replace('\n', " ")
}

#[cfg(test)]
pub(crate) mod tests {
    use deskshift_core::mapping::{CollectionMap, FieldMapping, Target};
    use deskshift_core::model::{FieldType, ObjectKind, RawRecord};

    pub fn field(source: &str, label: &str, standard: Option<&str>) -> FieldMapping {
        FieldMapping {
            source: source.into(),
            label: label.into(),
            source_type: FieldType::Text,
            target: match standard {
                Some(s) => Target::Standard { field: s.into() },
                None => Target::Custom {
                    label: label.into(),
                    field_type: FieldType::Text,
                    options: vec![],
                },
            },
            confidence: 1.0,
            reason: String::new(),
            samples: vec![],
            options: vec![],
            value_map: Default::default(),
            linked_collection: None,
        }
    }

    pub fn collection(name: &str, kind: ObjectKind, fields: Vec<FieldMapping>) -> CollectionMap {
        CollectionMap {
            collection: name.into(),
            kind,
            confidence: 1.0,
            reason: String::new(),
            fields,
        }
    }

    pub fn raw(collection: &str, id: &str, fields: &[(&str, &str)]) -> RawRecord {
        RawRecord {
            collection: collection.into(),
            id: id.into(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
                .collect(),
            attachments: vec![],
            created_at: None,
            modified_at: None,
            cursor_value: None,
        }
    }
}
