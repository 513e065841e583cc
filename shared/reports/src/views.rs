//! The saved-view inventory: every source view with its filters and columns, and the destination
//! custom view to rebuild it as (views are not migrated: they are documented).

use deskshift_core::mapping::FieldMap;
use deskshift_core::model::{ObjectKind, RawRecord};
use serde::{Deserialize, Serialize};

use crate::criteria;
use crate::docs::{Collections, md_cell};
use crate::fields::{Resolved, Role, list, role, truthy};
use crate::vocab::module_name;

const ROLES: &[Role] = &[
    role("name", &["viewname", "name", "title", "view"]),
    role(
        "tab",
        &[
            "tab",
            "module",
            "appliesto",
            "object",
            "recordtype",
            "collection",
        ],
    ),
    role(
        "filters",
        &[
            "filters",
            "filterconditions",
            "criteria",
            "conditions",
            "filter",
            "condition",
        ],
    ),
    role(
        "columns",
        &[
            "columns",
            "visiblecolumns",
            "fieldsshown",
            "displayedfields",
            "fields",
        ],
    ),
    role(
        "shared",
        &[
            "shared",
            "public",
            "visibletoall",
            "isshared",
            "ispublic",
            "sharedwithall",
        ],
    ),
    Role {
        name: "owner",
        synonyms: &["owner", "createdfor", "owneduser", "ownedby", "viewowner"],
        fallback: &["createdby"],
    },
];

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CustomViewRecommendation {
    /// The destination module the view is built in.
    pub module: String,
    /// The criteria in the destination's field names and values.
    pub criteria: String,
    /// Columns in the destination's field names.
    pub columns: Vec<String>,
    /// Who sees it: all agents, or its owner only.
    pub share_with: String,
    /// What to watch for when building it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ViewEntry {
    pub source_id: String,
    pub name: String,
    pub tab: String,
    pub filters: String,
    pub columns: Vec<String>,
    pub shared: bool,
    pub owner: String,
    pub recommended: CustomViewRecommendation,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ViewInventory {
    pub source_collection: Option<String>,
    pub destination_platform: String,
    pub read_from: Vec<(String, String)>,
    pub views: Vec<ViewEntry>,
}

pub fn view_inventory(map: &FieldMap, records: &[RawRecord]) -> ViewInventory {
    let platform = map.destination_platform.clone();
    let mut inv = ViewInventory {
        destination_platform: crate::vocab::platform_display(&platform),
        ..Default::default()
    };
    let Some(cm) = map.for_kind(ObjectKind::View) else {
        return inv;
    };
    inv.source_collection = Some(cm.collection.clone());
    let fields = Resolved::new(cm, ROLES);
    inv.read_from = fields.sources();
    let cols = Collections::new(map);
    for raw in records {
        let tab = fields.text(raw, "tab");
        let target = cols.by_name(&tab);
        let mut notes = Vec::new();
        let module = match target {
            Some(t) => {
                let (m, note) = module_name(&platform, t.kind);
                if let Some(n) = note {
                    notes.push(format!("{n}: filter on the ticket fields instead"));
                }
                m.to_string()
            }
            None => {
                notes.push(format!(
                    "tab {tab:?} is not migrated: there is nothing to build this view on"
                ));
                "(none)".to_string()
            }
        };
        let filters = fields.text(raw, "filters");
        let criteria = match criteria::parse(&filters) {
            Some(clauses) => {
                let (words, missing) = criteria::in_words(&platform, target, &clauses);
                for m in missing {
                    notes.push(format!(
                        "filters on {m:?}, which does not exist in the destination"
                    ));
                }
                if words.is_empty() {
                    "all records".to_string()
                } else {
                    words
                }
            }
            None => {
                notes.push(
                    "the filter text could not be read as conditions: rebuild it by hand".into(),
                );
                format!("as written in the source: {filters}")
            }
        };
        let columns = list(fields.value(raw, "columns"));
        let dest_columns: Vec<String> = columns
            .iter()
            .filter_map(|c| match target {
                Some(t) => {
                    let (name, exists) = criteria::destination_field(&platform, t, c);
                    // The record id column is the destination's own id column.
                    let is_id = criteria::mapping_of(t, c).is_some_and(|f| {
                        f.target == deskshift_core::mapping::Target::Ignore
                            && f.reason.starts_with("record id")
                    });
                    if is_id {
                        None
                    } else if exists {
                        Some(name)
                    } else {
                        notes.push(format!("column {c:?} does not exist in the destination"));
                        None
                    }
                }
                None => Some(c.clone()),
            })
            .collect();
        let shared = truthy(&fields.text(raw, "shared"));
        let owner = fields.text(raw, "owner");
        let share_with = if shared {
            "all agents".to_string()
        } else if owner.is_empty() {
            "only its owner".to_string()
        } else {
            format!("only {owner}")
        };
        inv.views.push(ViewEntry {
            source_id: raw.id.clone(),
            name: fields.text(raw, "name"),
            tab,
            filters,
            columns,
            shared,
            owner,
            recommended: CustomViewRecommendation {
                module,
                criteria,
                columns: dest_columns,
                share_with,
                notes,
            },
        });
    }
    inv
}

pub fn views_markdown(inv: &ViewInventory) -> String {
    let mut s = format!(
        "# Saved-view inventory\n\nSource collection: {}. Views are not migrated: each is listed with the {} custom view to build.\n\n",
        inv.source_collection.as_deref().unwrap_or("(none mapped)"),
        inv.destination_platform
    );
    s.push_str("| # | view | tab | filters | columns | shared / owner | custom view: module | criteria | columns | visible to | notes |\n|---:|---|---|---|---|---|---|---|---|---|---|\n");
    for (i, v) in inv.views.iter().enumerate() {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            i + 1,
            md_cell(&v.name),
            md_cell(&v.tab),
            md_cell(&v.filters),
            md_cell(&v.columns.join(", ")),
            md_cell(&format!(
                "{} / {}",
                if v.shared { "shared" } else { "private" },
                v.owner
            )),
            md_cell(&v.recommended.module),
            md_cell(&v.recommended.criteria),
            md_cell(&v.recommended.columns.join(", ")),
            md_cell(&v.recommended.share_with),
            md_cell(&v.recommended.notes.join("; ")),
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docs::tests::{collection, field, raw};
    use deskshift_core::mapping::Target;

    #[test]
    fn a_view_becomes_a_custom_view_in_destination_names() {
        let mut id = field("collection_id", "collection id", None);
        id.target = Target::Ignore;
        id.reason = "record id: kept in the crosswalk, not as a field".into();
        let mut status = field("ticket_status", "Ticket Status", Some("status"));
        status.value_map.insert("Waiting".into(), "On Hold".into());
        let map = FieldMap {
            source_platform: "Ivinex".into(),
            destination_platform: "Zoho Desk".into(),
            collections: vec![
                collection(
                    "Saved Views",
                    ObjectKind::View,
                    vec![
                        field("title", "Title", None),
                        field("module", "Module", None),
                        field("filter_conditions", "Filter Conditions", None),
                        field("fields_shown", "Fields Shown", None),
                        field("visible_to_all", "Visible to All", None),
                        field("created_for", "Created For", None),
                    ],
                ),
                collection(
                    "Tickets",
                    ObjectKind::Ticket,
                    vec![id, status, field("vip", "VIP", None)],
                ),
            ],
        };
        let recs = vec![raw(
            "Saved Views",
            "3",
            &[
                ("title", "Waiting VIPs"),
                ("module", "Tickets"),
                (
                    "filter_conditions",
                    "ticket_status = 'Waiting' AND vip = '1' AND region = 'EU'",
                ),
                ("fields_shown", "collection_id, ticket_status, vip"),
                ("visible_to_all", "0"),
                ("created_for", "jdoe"),
            ],
        )];
        let inv = view_inventory(&map, &recs);
        let v = &inv.views[0];
        assert_eq!(v.name, "Waiting VIPs");
        assert_eq!(v.recommended.module, "Tickets");
        assert!(
            v.recommended
                .criteria
                .starts_with("Status is \u{201c}On Hold\u{201d} AND VIP is"),
            "{}",
            v.recommended.criteria
        );
        assert_eq!(v.recommended.columns, vec!["Status", "VIP"]);
        assert_eq!(v.recommended.share_with, "only jdoe");
        assert!(v.recommended.notes.iter().any(|n| n.contains("region")));
        assert!(views_markdown(&inv).contains("Waiting VIPs"));
    }
}
