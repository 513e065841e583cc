//! The access-control mapping: source groups -> destination teams, a suggested role per group and
//! per user, and who is in each group (groups are not migrated: the admin builds teams from this).

use std::collections::{BTreeMap, BTreeSet};

use deskshift_core::mapping::FieldMap;
use deskshift_core::model::{ObjectKind, RawRecord};
use deskshift_core::phases::suggest_role;
use deskshift_core::transform::Transformer;
use serde::{Deserialize, Serialize};

use crate::docs::md_cell;
use crate::fields::{Resolved, Role, list, plain, role};

const GROUP_ROLES: &[Role] = &[
    role("name", &["groupname", "teamname", "name", "title", "group"]),
    role(
        "description",
        &["description", "notes", "purpose", "about", "summary"],
    ),
    role(
        "permissions",
        &[
            "permissions",
            "accessrights",
            "privileges",
            "rights",
            "access",
            "permission",
        ],
    ),
];

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Member {
    pub source_id: String,
    pub username: Option<String>,
    pub name: String,
    pub email: Option<String>,
    pub active: bool,
    /// The user's role in the source, if the tenant has one.
    pub source_role: Option<String>,
    /// Support Administrator / Agent / Light Agent, from all the user's groups and role.
    pub suggested_role: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TeamEntry {
    pub group_id: String,
    pub group_name: String,
    pub description: String,
    pub permissions: Vec<String>,
    /// The destination team to create (same name).
    pub team: String,
    /// The role the group's permissions and name suggest for its members.
    pub suggested_role: String,
    pub role_reason: String,
    pub members: Vec<Member>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AccessMapping {
    pub destination_platform: String,
    pub group_collection: Option<String>,
    pub user_collection: Option<String>,
    pub teams: Vec<TeamEntry>,
    /// Users in no group: they need a role decided by hand.
    pub users_without_group: Vec<Member>,
    /// Users naming a group id the Groups tab does not hold.
    pub unknown_group_links: Vec<(String, String)>,
    /// Users per suggested role.
    pub roles: BTreeMap<String, u64>,
}

/// Builds the mapping from the staged Groups and Users records through the approved map.
pub fn access_mapping(map: &FieldMap, groups: &[RawRecord], users: &[RawRecord]) -> AccessMapping {
    let mut out = AccessMapping {
        destination_platform: crate::vocab::platform_display(&map.destination_platform),
        group_collection: map
            .for_kind(ObjectKind::Group)
            .map(|c| c.collection.clone()),
        user_collection: map
            .for_kind(ObjectKind::Agent)
            .map(|c| c.collection.clone()),
        ..Default::default()
    };
    let mut teams: Vec<TeamEntry> = Vec::new();
    if let Some(cm) = map.for_kind(ObjectKind::Group) {
        let f = Resolved::new(cm, GROUP_ROLES);
        // The map's own group-name field wins over synonyms.
        let name_of = |r: &RawRecord| match cm.standard("name") {
            Some(n) => r
                .fields
                .get(&n.source)
                .map(crate::fields::display_text)
                .unwrap_or_default(),
            None => f.text(r, "name"),
        };
        for g in groups {
            let name = name_of(g);
            let permissions = list(f.value(g, "permissions"));
            let text: Vec<String> = std::iter::once(name.clone())
                .chain(permissions.iter().cloned())
                .collect();
            let suggested = suggest_role(&text, None);
            let role_reason = format!(
                "from the group name and permissions ({})",
                if permissions.is_empty() {
                    "none listed".to_string()
                } else {
                    permissions.join(", ")
                }
            );
            teams.push(TeamEntry {
                group_id: g.id.clone(),
                team: if name.is_empty() {
                    format!("Group {}", g.id)
                } else {
                    name.clone()
                },
                group_name: name,
                description: plain(&f.text(g, "description")),
                permissions,
                suggested_role: suggested,
                role_reason,
                members: vec![],
            });
        }
    }
    let group_names: BTreeMap<String, String> = teams
        .iter()
        .map(|t| (t.group_id.clone(), t.group_name.clone()))
        .collect();
    if map.for_kind(ObjectKind::Agent).is_some() {
        let t = Transformer::new(map, BTreeMap::new(), None);
        for raw in users {
            let Some(a) = t.agent(raw) else { continue };
            let names: Vec<String> = a
                .groups
                .iter()
                .map(|g| group_names.get(g).cloned().unwrap_or_else(|| g.clone()))
                .collect();
            let member = Member {
                source_id: raw.id.clone(),
                username: a.username.clone(),
                name: [a.first_name.clone(), a.last_name.clone()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" "),
                email: a.email.clone(),
                active: a.active,
                source_role: a.role.clone(),
                suggested_role: suggest_role(&names, a.role.as_deref()),
            };
            *out.roles.entry(member.suggested_role.clone()).or_insert(0) += 1;
            // A zero link is how linked-record fields say "none".
            let ids: BTreeSet<&String> = a
                .groups
                .iter()
                .filter(|g| !g.is_empty() && g.as_str() != "0")
                .collect();
            if ids.is_empty() {
                out.users_without_group.push(member);
                continue;
            }
            for gid in ids {
                match teams.iter_mut().find(|t| &t.group_id == gid) {
                    Some(team) => team.members.push(member.clone()),
                    None => out.unknown_group_links.push((raw.id.clone(), gid.clone())),
                }
            }
        }
    }
    out.teams = teams;
    out
}

pub fn access_markdown(a: &AccessMapping) -> String {
    let mut s = format!(
        "# Access-control mapping\n\nGroups ({}) become {} teams; users ({}) get a suggested role. Groups are not migrated: create the teams and set each agent's role from this list.\n\n",
        a.group_collection.as_deref().unwrap_or("none mapped"),
        a.destination_platform,
        a.user_collection.as_deref().unwrap_or("none mapped"),
    );
    s.push_str(
        "| group | team | suggested role | permissions | members |\n|---|---|---|---|---:|\n",
    );
    for t in &a.teams {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            md_cell(&t.group_name),
            md_cell(&t.team),
            md_cell(&t.suggested_role),
            md_cell(&t.permissions.join(", ")),
            t.members.len()
        ));
    }
    for t in &a.teams {
        s.push_str(&format!("\n## {}\n\n", md_cell(&t.team)));
        if !t.description.is_empty() {
            s.push_str(&format!("{}\n\n", md_cell(&t.description)));
        }
        s.push_str(&format!(
            "Role for the team: {} ({}).\n\n",
            t.suggested_role,
            md_cell(&t.role_reason)
        ));
        if t.members.is_empty() {
            s.push_str("No members.\n");
            continue;
        }
        s.push_str("| user | name | email | active | source role | suggested role |\n|---|---|---|---|---|---|\n");
        for m in &t.members {
            s.push_str(&member_row(m));
        }
    }
    if !a.users_without_group.is_empty() {
        s.push_str("\n## Users in no group\n\n| user | name | email | active | source role | suggested role |\n|---|---|---|---|---|---|\n");
        for m in &a.users_without_group {
            s.push_str(&member_row(m));
        }
    }
    if !a.unknown_group_links.is_empty() {
        s.push_str("\n## Links to unknown groups\n\n");
        for (u, g) in &a.unknown_group_links {
            s.push_str(&format!(
                "- user {} names group {}, which the groups tab does not hold\n",
                md_cell(u),
                md_cell(g)
            ));
        }
    }
    s
}

fn member_row(m: &Member) -> String {
    format!(
        "| {} | {} | {} | {} | {} | {} |\n",
        md_cell(m.username.as_deref().unwrap_or("")),
        md_cell(&m.name),
        md_cell(m.email.as_deref().unwrap_or("")),
        if m.active { "yes" } else { "no (inactive)" },
        md_cell(m.source_role.as_deref().unwrap_or("")),
        m.suggested_role
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docs::tests::{collection, field, raw};
    use deskshift_core::mapping::Target;

    #[test]
    fn groups_become_teams_with_their_members() {
        let mut link = field("team", "Team", Some("group"));
        link.source_type = deskshift_core::model::FieldType::LinkedRecord;
        let map = FieldMap {
            source_platform: "Ivinex".into(),
            destination_platform: "Zoho Desk".into(),
            collections: vec![
                collection(
                    "Teams",
                    ObjectKind::Group,
                    vec![
                        field("team_name", "Team Name", Some("name")),
                        field("privileges", "Privileges", None),
                        field("purpose", "Purpose", None),
                    ],
                ),
                collection(
                    "Staff",
                    ObjectKind::Agent,
                    vec![
                        field("login", "Login", Some("username")),
                        field("mail", "Mail", Some("email")),
                        field("access_level", "Access Level", Some("role")),
                        link,
                        {
                            let mut f = field("is_active", "Is Active", Some("active"));
                            f.target = Target::Standard {
                                field: "active".into(),
                            };
                            f
                        },
                    ],
                ),
            ],
        };
        let mut admins = raw(
            "Teams",
            "1",
            &[
                ("team_name", "Administrators"),
                ("purpose", "<p>All &amp; everything</p>"),
            ],
        );
        admins.fields.insert(
            "privileges".into(),
            serde_json::json!(["Admin", "Edit Records"]),
        );
        let viewers = raw("Teams", "2", &[("team_name", "Contractors")]);
        let users = vec![
            raw(
                "Staff",
                "10",
                &[("login", "ann"), ("team", "1"), ("is_active", "1")],
            ),
            raw(
                "Staff",
                "11",
                &[
                    ("login", "bob"),
                    ("team", "2"),
                    ("access_level", "Viewer"),
                    ("is_active", "0"),
                ],
            ),
            raw("Staff", "12", &[("login", "cy"), ("is_active", "1")]),
            raw(
                "Staff",
                "13",
                &[("login", "dee"), ("team", "9"), ("is_active", "1")],
            ),
        ];
        let a = access_mapping(&map, &[admins, viewers], &users);
        assert_eq!(a.teams.len(), 2);
        assert_eq!(a.teams[0].team, "Administrators");
        assert_eq!(a.teams[0].suggested_role, "Support Administrator");
        assert_eq!(a.teams[0].description, "All & everything");
        assert_eq!(a.teams[0].members.len(), 1);
        assert_eq!(a.teams[0].members[0].username.as_deref(), Some("ann"));
        assert_eq!(a.teams[1].members[0].suggested_role, "Light Agent");
        assert!(!a.teams[1].members[0].active);
        assert_eq!(a.users_without_group.len(), 1);
        assert_eq!(
            a.unknown_group_links,
            vec![("13".to_string(), "9".to_string())]
        );
        assert!(access_markdown(&a).contains("## Administrators"));
    }
}
