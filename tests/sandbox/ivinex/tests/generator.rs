//! The tenant generator: variety, awkward cases and internal consistency.

use std::collections::{BTreeSet, HashMap};

use sandbox_ivinex::{FieldType, HELPDESK_TABS, LARGE_FILE_BYTES, TabData, Tenant, generate};
use serde_json::Value;

fn tab<'a>(t: &'a Tenant, name: &str) -> &'a TabData {
    t.tab(name).unwrap_or_else(|| panic!("{name} tab"))
}

fn idx(t: &Tenant, tabname: &str, role: &str) -> usize {
    tab(t, tabname)
        .def
        .role_index(role)
        .unwrap_or_else(|| panic!("{tabname}.{role}"))
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

#[test]
fn generation_is_a_pure_function_of_seed_and_size() {
    assert_eq!(generate(5, 40), generate(5, 40));
    assert_ne!(generate(5, 40), generate(6, 40));
    assert_ne!(generate(5, 40), generate(5, 41));
}

#[test]
fn every_helpdesk_tab_has_custom_fields_of_every_type() {
    for seed in [1, 2, 3] {
        let t = sandbox_ivinex::schema(seed);
        for name in HELPDESK_TABS {
            let def = &tab(&t, name).def;
            let types: BTreeSet<&str> = def.fields.iter().map(|f| f.field_type.as_str()).collect();
            for ty in FieldType::ALL {
                assert!(
                    types.contains(ty.as_str()),
                    "seed {seed}: {name} lacks {}",
                    ty.as_str()
                );
                let custom = def
                    .field_by_role(&format!("custom_{}", ty.as_str()))
                    .expect("custom field of the type");
                assert_eq!(custom.field_type, ty);
            }
            let names: BTreeSet<&str> = def.fields.iter().map(|f| f.field_name.as_str()).collect();
            assert_eq!(
                names.len(),
                def.fields.len(),
                "unique field names on {name}"
            );
            for f in &def.fields {
                match f.field_type {
                    FieldType::Dropdown | FieldType::Multiselect => {
                        assert!(!f.options.is_empty(), "{}", f.field_name)
                    }
                    FieldType::LinkedRecord | FieldType::UserLink => {
                        assert!(f.linked_tab.is_some(), "{}", f.field_name)
                    }
                    _ => {}
                }
            }
        }
        let departments = &tab(&t, "Tickets")
            .def
            .field_by_role("department")
            .unwrap()
            .options;
        assert!((2..=4).contains(&departments.len()), "{departments:?}");
    }
}

#[test]
fn sizes_follow_the_ticket_count() {
    let t = generate(7, 400);
    assert_eq!(t.record_count("Tickets"), 400);
    assert_eq!(t.record_count("Users"), 10, "one user per 40 tickets");
    assert_eq!(t.record_count("Organizations"), 40);
    assert_eq!(t.record_count("Contacts"), 133);
    assert_eq!(t.record_count("Tasks"), 100);
    let activities = t.record_count("Activities") as f64 / 400.0;
    assert!(
        (3.0..5.5).contains(&activities),
        "{activities} activities per ticket"
    );
    let history = t.record_count("ChangeHistory") as f64 / 400.0;
    assert!(
        (1.5..2.5).contains(&history),
        "{history} changes per ticket"
    );
    for name in ["Workflows", "Views"] {
        assert!((5..=15).contains(&t.record_count(name)), "{name}");
    }
    assert!(generate(7, 3).record_count("Users") >= 8);
}

#[test]
fn people_and_organizations_are_awkward() {
    let t = generate(8, 300);
    let users = t.users();
    assert!(users.iter().any(|u| !u.active));
    assert!(users.iter().filter(|u| !u.active).count() * 2 < users.len());
    assert!(
        users.iter().any(|u| u.email.is_empty()),
        "a user without email"
    );
    assert!(users.iter().filter(|u| !u.email.is_empty()).count() > users.len() / 2);

    let contacts = tab(&t, "Contacts");
    let (email, org) = (
        idx(&t, "Contacts", "email"),
        idx(&t, "Contacts", "organization"),
    );
    assert!(
        contacts.records.values().any(|r| r.value(email).is_null()),
        "contact without email"
    );
    let mut by_email: HashMap<String, BTreeSet<Option<u64>>> = HashMap::new();
    for r in contacts.records.values() {
        if let Some(e) = r.value(email).as_str() {
            by_email
                .entry(e.trim().to_lowercase())
                .or_default()
                .insert(r.value(org).as_u64());
        }
    }
    assert!(
        by_email.values().any(|orgs| orgs.len() > 1),
        "one email under two organizations"
    );
    assert!(
        contacts.records.values().any(|r| r.value(org).is_null()),
        "contact without organization"
    );

    let name = idx(&t, "Organizations", "name");
    let names: Vec<&str> = tab(&t, "Organizations")
        .records
        .values()
        .map(|r| text(r.value(name)))
        .collect();
    assert!(names.iter().any(|n| n.chars().count() > 200));
    assert!(
        names
            .iter()
            .any(|n| n.chars().any(|c| ('\u{0590}'..='\u{06FF}').contains(&c))),
        "RTL name"
    );
    assert!(
        names.iter().any(|n| n.chars().any(|c| c as u32 >= 0x1F300)),
        "emoji name"
    );
}

#[test]
fn tickets_tasks_and_activities_are_consistent_and_nasty() {
    let t = generate(9, 300);
    let tickets = tab(&t, "Tickets");
    let subject = idx(&t, "Tickets", "subject");
    let spam = idx(&t, "Tickets", "spam");
    let assignee = idx(&t, "Tickets", "assignee");
    assert!(
        tickets
            .records
            .values()
            .any(|r| text(r.value(subject)).starts_with("[TEST]"))
    );
    assert!(tickets.records.values().any(|r| r.value(spam) == "1"));
    let inactive: BTreeSet<String> = t
        .users()
        .into_iter()
        .filter(|u| !u.active)
        .map(|u| u.username)
        .collect();
    assert!(
        tickets
            .records
            .values()
            .any(|r| inactive.contains(text(r.value(assignee))))
    );
    let statuses: BTreeSet<&str> = tickets
        .records
        .values()
        .map(|r| text(r.value(idx(&t, "Tickets", "status"))))
        .collect();
    assert!(statuses.len() >= 4, "{statuses:?}");

    let task_ticket = idx(&t, "Tasks", "ticket");
    let tasks = tab(&t, "Tasks");
    let orphans = tasks
        .records
        .values()
        .filter(|r| r.value(task_ticket).is_null())
        .count();
    assert!(
        orphans >= 1 && orphans * 4 < tasks.records.len(),
        "{orphans} orphans"
    );

    let acts = tab(&t, "Activities");
    let (a_ticket, a_type, a_cc, a_body) = (
        idx(&t, "Activities", "ticket"),
        idx(&t, "Activities", "type"),
        idx(&t, "Activities", "cc"),
        idx(&t, "Activities", "body"),
    );
    let mut per_ticket: HashMap<u64, usize> = HashMap::new();
    for a in acts.records.values() {
        let tid = a
            .value(a_ticket)
            .as_u64()
            .expect("activity linked to a ticket");
        let parent = &tickets.records[&tid];
        assert!(
            a.created_at > parent.created_at,
            "activity after its ticket"
        );
        assert!(
            parent.modified_at >= a.created_at,
            "ticket modified after its last activity"
        );
        *per_ticket.entry(tid).or_default() += 1;
    }
    assert!(per_ticket.values().all(|n| *n <= 15));
    assert!(
        per_ticket.len() < tickets.records.len(),
        "some tickets have no activity"
    );
    let types: BTreeSet<&str> = acts
        .records
        .values()
        .map(|r| text(r.value(a_type)))
        .collect();
    assert_eq!(types.len(), 3);
    assert!(
        acts.records.values().any(|r| !r.value(a_cc).is_null())
            && acts.records.values().any(|r| r.value(a_cc).is_null())
    );
    let bodies: Vec<&str> = acts
        .records
        .values()
        .map(|r| text(r.value(a_body)))
        .collect();
    for needle in [
        "169.254.169.254",
        "src=\"cid:",
        "tracker.example.net",
        "{{ivinex_base_url}}/files/",
        "<blockquote>",
        "<table",
        "</td><div>",
    ] {
        assert!(
            bodies.iter().any(|b| b.contains(needle)),
            "an activity body with {needle}"
        );
    }
    for tabdata in &t.tabs {
        for r in tabdata.records.values() {
            assert!(
                r.modified_at >= r.created_at,
                "{} {}",
                tabdata.def.name,
                r.id
            );
        }
    }
}

#[test]
fn linked_values_point_at_existing_records() {
    let t = generate(10, 200);
    let usernames: BTreeSet<String> = t.users().into_iter().map(|u| u.username).collect();
    for tabdata in &t.tabs {
        for (i, f) in tabdata.def.fields.iter().enumerate() {
            for r in tabdata.records.values() {
                let v = r.value(i);
                if v.is_null() {
                    continue;
                }
                match f.field_type {
                    FieldType::LinkedRecord => {
                        let target = f.linked_tab.as_deref().unwrap();
                        assert!(
                            t.find_record(target, v.as_u64().unwrap()).is_some(),
                            "{}.{} -> {target} {v}",
                            tabdata.def.name,
                            f.field_name
                        );
                    }
                    FieldType::UserLink => assert!(
                        usernames.contains(text(v)),
                        "{}.{} = {v}",
                        tabdata.def.name,
                        f.field_name
                    ),
                    FieldType::Dropdown => assert!(
                        f.options.iter().any(|o| o == text(v)),
                        "{}.{} = {v}",
                        tabdata.def.name,
                        f.field_name
                    ),
                    _ => {}
                }
            }
        }
    }
    for l in &t.links {
        assert!(
            t.find_record(&l.tab, l.record_id).is_some()
                && t.find_record(&l.link_tab, l.link_record_id).is_some()
        );
    }
}

#[test]
fn attachments_mix_sizes_and_checksum_quality() {
    let t = generate(11, 300);
    let all: Vec<_> = t.attachments.values().collect();
    let right = all.iter().filter(|a| matches!((&a.md5_declared, &a.md5_actual), (Some(d), Some(x)) if d.eq_ignore_ascii_case(x))).count();
    let absent = all.iter().filter(|a| a.md5_declared.is_none()).count();
    let wrong = all.iter().filter(|a| matches!((&a.md5_declared, &a.md5_actual), (Some(d), Some(x)) if !d.eq_ignore_ascii_case(x))).count();
    let n = all.len() as f64;
    assert!(
        (0.45..0.75).contains(&(right as f64 / n)),
        "{right}/{n} right"
    );
    assert!(
        (0.2..0.4).contains(&(absent as f64 / n)),
        "{absent}/{n} absent"
    );
    assert!(wrong > 0 && (wrong as f64 / n) < 0.2, "{wrong}/{n} wrong");
    assert!(all.iter().any(|a| a.size == 0));
    let big = all.iter().filter(|a| a.size > LARGE_FILE_BYTES).count();
    assert!((2..=3).contains(&big));
    assert!(
        all.iter()
            .all(|a| a.size > LARGE_FILE_BYTES || a.size >= 1_000_000 || a.md5_actual.is_some()),
        "small files hashed at generation"
    );
    for tabname in ["Tickets", "Activities", "Contacts", "Organizations"] {
        assert!(
            all.iter().any(|a| a.tab == tabname),
            "attachments on {tabname}"
        );
    }
    let with = tab(&t, "Tickets")
        .records
        .values()
        .filter(|r| !r.attachments.is_empty())
        .count();
    assert!(
        (60..=120).contains(&with),
        "{with} of 300 tickets with attachments"
    );
}

#[test]
#[ignore = "timing run: cargo test -p sandbox-ivinex --test generator -- --ignored --nocapture"]
fn seeding_ten_thousand_tickets() {
    let started = std::time::Instant::now();
    let t = generate(42, 10_000);
    eprintln!(
        "generated 10,000 tickets, {} activities, {} attachments in {:.2?}",
        t.record_count("Activities"),
        t.attachments.len(),
        started.elapsed()
    );
    assert_eq!(t.record_count("Tickets"), 10_000);
}
