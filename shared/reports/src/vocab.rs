//! What the destination calls things: modules, automation features and field names, per
//! destination platform. Recommendations are decided platform-neutrally and named here, so the
//! Zoho Desk -> Jira Service Management path reuses the same inventories.

use deskshift_core::model::ObjectKind;
use serde::{Deserialize, Serialize};

/// A platform-neutral kind of automation a source workflow becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Equivalent {
    /// A guided, multi-step status process.
    StatusProcess,
    /// Field updates, alerts and tasks when a record is created or edited.
    AutomationRule,
    /// Routing and assignment of new or changed records.
    AssignmentRule,
    /// Time-based targets and escalations.
    Sla,
    /// Time-based checks that are not service targets (auto-close, reminders).
    TimeBasedRule,
    /// Actions an agent applies by hand.
    Macro,
}

/// A platform's name as people write it ("zohodesk" -> "Zoho Desk").
pub fn platform_display(platform: &str) -> String {
    match platform.to_ascii_lowercase().as_str() {
        "zohodesk" => "Zoho Desk".into(),
        "zohodesk-import" => "Zoho Desk (import package)".into(),
        "jsm" => "Jira Service Management".into(),
        "ivinex" => "Ivinex".into(),
        _ => platform.to_string(),
    }
}

fn is_jira(platform: &str) -> bool {
    let p = platform.to_ascii_lowercase();
    p.contains("jira") || p.contains("jsm")
}

/// The destination's name for the equivalent and where an admin builds it.
pub fn equivalent_name(platform: &str, eq: Equivalent) -> (&'static str, &'static str) {
    if is_jira(platform) {
        return match eq {
            Equivalent::StatusProcess => (
                "Workflow (statuses and transitions)",
                "Project settings > Workflows",
            ),
            Equivalent::AutomationRule => ("Automation rule", "Project settings > Automation"),
            Equivalent::AssignmentRule => (
                "Automation rule (assign / round-robin)",
                "Project settings > Automation",
            ),
            Equivalent::Sla => ("SLA goal", "Project settings > SLAs"),
            Equivalent::TimeBasedRule => {
                ("Scheduled automation rule", "Project settings > Automation")
            }
            Equivalent::Macro => (
                "Canned response / manual automation trigger",
                "Project settings > Automation",
            ),
        };
    }
    match eq {
        Equivalent::StatusProcess => ("Blueprint", "Setup > Automation > Blueprints"),
        Equivalent::AutomationRule => ("Workflow rule", "Setup > Automation > Workflows"),
        Equivalent::AssignmentRule => ("Assignment rule", "Setup > Automation > Assignment Rules"),
        Equivalent::Sla => ("SLA", "Setup > Automation > Service Level Agreements"),
        Equivalent::TimeBasedRule => ("Supervise rule", "Setup > Automation > Supervise"),
        Equivalent::Macro => ("Macro", "Setup > Automation > Macros"),
    }
}

/// Kinds whose records the equivalent can act on in the destination (tickets only, except rules).
pub fn equivalent_applies_to(eq: Equivalent, kind: ObjectKind) -> bool {
    match eq {
        Equivalent::AutomationRule => true,
        _ => kind == ObjectKind::Ticket,
    }
}

/// The destination module records of `kind` are in, and a note when the kind changes shape.
pub fn module_name(platform: &str, kind: ObjectKind) -> (&'static str, Option<&'static str>) {
    if is_jira(platform) {
        return match kind {
            ObjectKind::Account => ("Organizations", None),
            ObjectKind::Contact => ("Customers", None),
            ObjectKind::Ticket => ("Requests", None),
            ObjectKind::Activity => (
                "Requests",
                Some("activities moved as comments on their request"),
            ),
            ObjectKind::Task => ("Requests", Some("tasks moved as sub-tasks")),
            ObjectKind::Agent => ("Users", None),
            ObjectKind::Group => ("Groups", None),
            _ => ("(no module)", None),
        };
    }
    match kind {
        ObjectKind::Account => ("Accounts", None),
        ObjectKind::Contact => ("Contacts", None),
        ObjectKind::Ticket => ("Tickets", None),
        ObjectKind::Activity => (
            "Tickets",
            Some("activities moved as comments on their ticket"),
        ),
        ObjectKind::Task => ("Activities > Tasks", None),
        ObjectKind::Agent => ("Agents", None),
        ObjectKind::Group => ("Teams", None),
        _ => ("(no module)", None),
    }
}

/// The destination's label of a canonical standard field.
pub fn standard_field_label(platform: &str, kind: ObjectKind, field: &str) -> String {
    let jira = is_jira(platform);
    let fixed = match (field, kind) {
        ("assignee", _) if jira => "Assignee",
        ("assignee", _) => "Ticket Owner",
        ("owner", _) => "Owner",
        ("contact", _) if jira => "Reporter",
        ("contact", _) => "Contact Name",
        ("account", _) => "Account Name",
        ("name", ObjectKind::Account) => "Account Name",
        ("subject", _) if jira => "Summary",
        ("due_date", _) => "Due Date",
        ("sub_category", _) => "Sub Category",
        ("created_by", _) => "Created By",
        ("first_name", _) => "First Name",
        ("last_name", _) => "Last Name",
        _ => "",
    };
    if !fixed.is_empty() {
        return fixed.to_string();
    }
    let mut out = String::new();
    for (i, w) in field.split('_').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let mut c = w.chars();
        if let Some(f) = c.next() {
            out.extend(f.to_uppercase());
            out.push_str(c.as_str());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_destination() {
        assert_eq!(
            equivalent_name("Zoho Desk", Equivalent::StatusProcess).0,
            "Blueprint"
        );
        assert_eq!(
            equivalent_name("Jira Service Management", Equivalent::Sla).0,
            "SLA goal"
        );
        assert_eq!(
            standard_field_label("Zoho Desk", ObjectKind::Ticket, "assignee"),
            "Ticket Owner"
        );
        assert_eq!(
            standard_field_label("Zoho Desk", ObjectKind::Ticket, "status"),
            "Status"
        );
        assert!(!equivalent_applies_to(Equivalent::Sla, ObjectKind::Contact));
        assert_eq!(platform_display("zohodesk"), "Zoho Desk");
        assert_eq!(
            equivalent_name("jsm", Equivalent::StatusProcess).0,
            "Workflow (statuses and transitions)"
        );
    }
}
