//! The workflow inventory: every source workflow with its trigger, conditions and actions, and the
//! destination feature to rebuild it with (workflows are not migrated: they are documented).

use deskshift_core::mapping::{FieldMap, Target};
use deskshift_core::model::{ObjectKind, RawRecord};
use serde::{Deserialize, Serialize};

use crate::criteria::{self, Clause};
use crate::docs::{Collections, md_cell};
use crate::fields::{Resolved, Role, role, truthy};
use crate::vocab::{Equivalent, equivalent_applies_to, equivalent_name, module_name};

const ROLES: &[Role] = &[
    role(
        "name",
        &["workflowname", "rulename", "name", "title", "workflow"],
    ),
    role(
        "tab",
        &[
            "tab",
            "module",
            "appliesto",
            "object",
            "recordtype",
            "collection",
            "entity",
        ],
    ),
    role(
        "trigger",
        &["trigger", "when", "event", "triggeredby", "runwhen", "on"],
    ),
    role(
        "conditions",
        &[
            "conditions",
            "criteria",
            "if",
            "condition",
            "filter",
            "filters",
        ],
    ),
    role("actions", &["actions", "then", "steps", "action", "do"]),
    role("active", &["active", "enabled", "isactive", "status", "on"]),
];

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Recommendation {
    pub equivalent: Equivalent,
    /// The destination's name for it (e.g. Zoho Desk "Blueprint").
    pub name: String,
    /// Where an admin builds it.
    pub location: String,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkflowEntry {
    pub source_id: String,
    pub name: String,
    pub tab: String,
    /// The destination module the tab's records went to.
    pub module: String,
    pub trigger: String,
    pub conditions: String,
    /// The conditions in the destination's field names and values (empty when unreadable).
    pub conditions_in_words: String,
    pub actions: Vec<String>,
    pub active: bool,
    pub recommended: Recommendation,
    /// Fields the workflow uses that do not exist in the destination.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmapped_fields: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WorkflowInventory {
    pub source_collection: Option<String>,
    pub destination_platform: String,
    /// Which source field each column was read from.
    pub read_from: Vec<(String, String)>,
    pub workflows: Vec<WorkflowEntry>,
    pub by_equivalent: std::collections::BTreeMap<String, u64>,
}

/// The inventory of the staged workflow collection (empty when the source has none mapped).
pub fn workflow_inventory(map: &FieldMap, records: &[RawRecord]) -> WorkflowInventory {
    let platform = map.destination_platform.clone();
    let mut inv = WorkflowInventory {
        destination_platform: crate::vocab::platform_display(&platform),
        ..Default::default()
    };
    let Some(cm) = map.for_kind(ObjectKind::Workflow) else {
        return inv;
    };
    inv.source_collection = Some(cm.collection.clone());
    let fields = Resolved::new(cm, ROLES);
    inv.read_from = fields.sources();
    let cols = Collections::new(map);
    for raw in records {
        let tab = fields.text(raw, "tab");
        let target = cols.by_name(&tab);
        let kind = target.map(|c| c.kind);
        let module = match kind {
            Some(k) => {
                let (m, note) = module_name(&platform, k);
                match note {
                    Some(n) => format!("{m} ({n})"),
                    None => m.to_string(),
                }
            }
            None => format!("(tab {tab:?} is not migrated)"),
        };
        let conditions = fields.text(raw, "conditions");
        let clauses = criteria::parse(&conditions);
        let (words, mut unmapped) = match &clauses {
            Some(c) => criteria::in_words(&platform, target, c),
            None => (String::new(), vec![]),
        };
        let actions = split_actions(&fields.text(raw, "actions"));
        let name = fields.text(raw, "name");
        let trigger = fields.text(raw, "trigger");
        let active = fields
            .value(raw, "active")
            .is_none_or(|_| truthy(&fields.text(raw, "active")));
        let sets = set_targets(&actions);
        for s in &sets {
            if let Some(cm) = target
                && criteria::mapping_of(cm, s).is_none_or(|f| f.target == Target::Ignore)
                && !unmapped.contains(s)
            {
                unmapped.push(s.clone());
            }
        }
        let signals = Signals {
            name: &name,
            trigger: &trigger,
            conditions: &conditions,
            clauses: clauses.as_deref().unwrap_or(&[]),
            actions: &actions,
            sets: &sets,
            target,
        };
        let (eq, mut reason) = classify(&signals);
        let kind_ok = kind.is_some_and(|k| equivalent_applies_to(eq, k));
        let eq = if kind_ok || eq == Equivalent::AutomationRule {
            eq
        } else {
            let (n, _) = equivalent_name(&platform, eq);
            let article = if n.starts_with(['A', 'E', 'I', 'O', 'U', 'S']) {
                "an"
            } else {
                "a"
            };
            reason = format!(
                "{reason}; {article} {n} acts on tickets only, so on {} it becomes a rule on create/edit",
                if tab.is_empty() { "this tab" } else { &tab }
            );
            Equivalent::AutomationRule
        };
        if !active {
            reason.push_str("; inactive in the source: rebuild only if it is still wanted");
        }
        let (n, loc) = equivalent_name(&platform, eq);
        *inv.by_equivalent.entry(n.to_string()).or_insert(0) += 1;
        inv.workflows.push(WorkflowEntry {
            source_id: raw.id.clone(),
            name,
            tab,
            module,
            trigger,
            conditions,
            conditions_in_words: words,
            actions,
            active,
            recommended: Recommendation {
                equivalent: eq,
                name: n.to_string(),
                location: loc.to_string(),
                reason,
            },
            unmapped_fields: unmapped,
        });
    }
    inv
}

fn split_actions(text: &str) -> Vec<String> {
    text.split(['\n', ';'])
        .map(|s| s.trim().trim_end_matches('.').trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Fields the actions set (`Set <field> = <value>` / `Set <field> to <value>` / `Update <field> ...`).
fn set_targets(actions: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for a in actions {
        let lower = a.to_ascii_lowercase();
        let rest = ["set ", "update ", "change "]
            .iter()
            .find_map(|p| lower.strip_prefix(p).map(|r| &a[a.len() - r.len()..]));
        if let Some(rest) = rest {
            let lower_rest = rest.to_ascii_lowercase();
            let end = rest
                .find('=')
                .or_else(|| lower_rest.find(" to "))
                .unwrap_or(rest.len());
            let f = rest[..end].trim().to_string();
            if !f.is_empty() {
                out.push(f);
            }
        }
    }
    out
}

struct Signals<'a> {
    name: &'a str,
    trigger: &'a str,
    conditions: &'a str,
    clauses: &'a [Clause],
    actions: &'a [String],
    sets: &'a [String],
    target: Option<&'a deskshift_core::mapping::CollectionMap>,
}

impl Signals<'_> {
    /// The canonical standard field a source field of the target tab is mapped to.
    fn standard(&self, field: &str) -> Option<String> {
        let cm = self.target?;
        match &criteria::mapping_of(cm, field)?.target {
            Target::Standard { field } => Some(field.clone()),
            _ => None,
        }
    }
}

fn has_any(text: &str, words: &[&str]) -> Option<String> {
    let t = text.to_lowercase();
    words.iter().find(|w| t.contains(*w)).map(|w| w.to_string())
}

/// "after 1h", "7 days", "+2d": a time span in the text.
fn mentions_duration(text: &str) -> bool {
    let t = text.to_lowercase();
    let words: Vec<&str> = t
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    words.windows(2).any(|w| {
        w[0].chars().all(|c| c.is_ascii_digit())
            && matches!(
                w[1],
                "h" | "hr"
                    | "hrs"
                    | "hour"
                    | "hours"
                    | "d"
                    | "day"
                    | "days"
                    | "min"
                    | "mins"
                    | "minutes"
                    | "week"
                    | "weeks"
            )
    }) || words.iter().any(|w| {
        let digits = w.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        let unit = &w[digits.len()..];
        !digits.is_empty()
            && digits.chars().all(|c| c.is_ascii_digit())
            && matches!(unit, "h" | "d" | "m" | "w")
    })
}

/// Decides the equivalent. Order: manual actions, time-based ones, status processes, routing,
/// then rules on create/edit (the default).
fn classify(s: &Signals<'_>) -> (Equivalent, String) {
    let name_trigger = format!("{} {}", s.name, s.trigger);
    if let Some(w) = has_any(
        &name_trigger,
        &[
            "manual",
            "macro",
            "button",
            "on demand",
            "one-click",
            "one click",
        ],
    ) {
        return (
            Equivalent::Macro,
            format!("run by hand ({w:?} in its name or trigger): agents apply it as a macro"),
        );
    }
    let scheduled = has_any(
        s.trigger,
        &[
            "schedul",
            "time",
            "elapsed",
            "hourly",
            "daily",
            "weekly",
            "recurring",
            "cron",
        ],
    );
    let escalation = has_any(
        &format!("{} {}", s.name, s.conditions),
        &[
            "escalat",
            "sla",
            "overdue",
            "breach",
            "response time",
            "first response",
            "unanswered",
            "no response",
            "not responded",
        ],
    );
    let timed_name = mentions_duration(s.name) || mentions_duration(s.conditions);
    if let Some(w) = &escalation
        && (scheduled.is_some() || timed_name || w != "sla")
    {
        return (
            Equivalent::Sla,
            format!(
                "a time-based escalation ({w:?}): SLA targets with escalation levels replace it"
            ),
        );
    }
    if let Some(w) = &scheduled {
        return (
            Equivalent::TimeBasedRule,
            format!(
                "runs on time (trigger {:?}, {w:?}), not on a record change",
                s.trigger
            ),
        );
    }
    if timed_name {
        return (
            Equivalent::TimeBasedRule,
            "acts after a span of time named in its name or conditions".to_string(),
        );
    }
    let cond_fields: Vec<String> = s
        .clauses
        .iter()
        .filter_map(|c| s.standard(&c.field))
        .collect();
    let set_fields: Vec<String> = s.sets.iter().filter_map(|f| s.standard(f)).collect();
    if set_fields.iter().any(|f| f == "status") {
        let steps = s.actions.len();
        let why = if cond_fields.iter().any(|f| f == "status") {
            "moves the status from one value to another"
        } else {
            "sets the status"
        };
        if cond_fields.iter().any(|f| f == "status") || steps >= 3 {
            return (
                Equivalent::StatusProcess,
                format!(
                    "{why} with {steps} step(s): a guided status process (states and transitions with their actions)"
                ),
            );
        }
    }
    if let Some(f) = set_fields
        .iter()
        .find(|f| matches!(f.as_str(), "assignee" | "owner" | "department"))
    {
        return (
            Equivalent::AssignmentRule,
            format!(
                "routes records by setting the {f}: an assignment rule (direct or round-robin)"
            ),
        );
    }
    // Routing words count in the name, and in actions only as the verb ("Send email to assignee" is an alert).
    const ROUTING: [&str; 7] = [
        "assign",
        "reassign",
        "route",
        "routing",
        "round robin",
        "round-robin",
        "distribute",
    ];
    let routing_step = s.actions.iter().find_map(|a| {
        let a = a.trim().to_lowercase();
        ROUTING
            .iter()
            .find(|w| a.starts_with(*w))
            .map(|w| w.to_string())
    });
    if let Some(w) = has_any(s.name, &ROUTING).or(routing_step) {
        return (
            Equivalent::AssignmentRule,
            format!("routing or assignment ({w:?}): an assignment rule (direct or round-robin)"),
        );
    }
    let mut what = Vec::new();
    if !s.sets.is_empty() {
        what.push("field updates");
    }
    if s.actions
        .iter()
        .any(|a| a.to_lowercase().contains("email") || a.to_lowercase().contains("notify"))
    {
        what.push("email alerts");
    }
    if s.actions.iter().any(|a| a.to_lowercase().contains("task")) {
        what.push("tasks");
    }
    if what.is_empty() {
        what.push("its actions");
    }
    (
        Equivalent::AutomationRule,
        format!(
            "{} when a record is created or edited (trigger {:?})",
            what.join(", "),
            s.trigger
        ),
    )
}

pub fn workflows_markdown(inv: &WorkflowInventory) -> String {
    let mut s = format!(
        "# Workflow inventory\n\nSource collection: {}. Workflows are not migrated: each is listed with the {} feature to rebuild it with.\n\n",
        inv.source_collection.as_deref().unwrap_or("(none mapped)"),
        inv.destination_platform
    );
    if !inv.by_equivalent.is_empty() {
        for (k, n) in &inv.by_equivalent {
            s.push_str(&format!("- {k}: {n}\n"));
        }
        s.push('\n');
    }
    s.push_str("| # | workflow | tab → module | trigger | conditions (destination fields) | actions | active | rebuild as | why |\n|---:|---|---|---|---|---|---|---|---|\n");
    for (i, w) in inv.workflows.iter().enumerate() {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} ({}) | {} |\n",
            i + 1,
            md_cell(&w.name),
            md_cell(&format!("{} → {}", w.tab, w.module)),
            md_cell(&w.trigger),
            md_cell(if w.conditions_in_words.is_empty() {
                &w.conditions
            } else {
                &w.conditions_in_words
            }),
            md_cell(&w.actions.join("; ")),
            if w.active { "yes" } else { "no" },
            md_cell(&w.recommended.name),
            md_cell(&w.recommended.location),
            md_cell(&w.recommended.reason),
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docs::tests::{collection, field, raw};
    use deskshift_core::mapping::FieldMap;

    fn map() -> FieldMap {
        FieldMap {
            source_platform: "Ivinex".into(),
            destination_platform: "Zoho Desk".into(),
            collections: vec![
                collection(
                    "Rules",
                    ObjectKind::Workflow,
                    vec![
                        field("rule_name", "Rule Name", None),
                        field("applies_to", "Applies To", None),
                        field("when", "When", None),
                        field("if", "If", None),
                        field("then", "Then", None),
                        field("enabled", "Enabled", None),
                    ],
                ),
                collection(
                    "Cases",
                    ObjectKind::Ticket,
                    vec![
                        field("case_state", "Case State", Some("status")),
                        field("queue", "Queue", Some("department")),
                        field("urgency", "Urgency", Some("priority")),
                    ],
                ),
            ],
        }
    }

    fn wf(name: &str, trigger: &str, cond: &str, actions: &str) -> RawRecord {
        raw(
            "Rules",
            name,
            &[
                ("rule_name", name),
                ("applies_to", "Cases"),
                ("when", trigger),
                ("if", cond),
                ("then", actions),
                ("enabled", "1"),
            ],
        )
    }

    #[test]
    fn each_kind_of_rule_gets_its_equivalent() {
        let recs = vec![
            wf(
                "Move to pending",
                "Record Updated",
                "case_state = 'Open' AND urgency = 'High'",
                "Set case_state = 'Pending'",
            ),
            wf(
                "Billing",
                "Record Created",
                "urgency IN ('Low')",
                "Set queue = 'Billing'",
            ),
            wf(
                "Nag",
                "Scheduled",
                "case_state = 'Open'",
                "Send email to assignee",
            ),
            wf(
                "Escalate urgent tickets after 1h",
                "Field Changed",
                "urgency = 'Urgent'",
                "Send email to lead",
            ),
            wf(
                "Notify",
                "Record Created",
                "urgency = 'High'",
                "Send email to assignee; Create Task 'x' due +2d",
            ),
            wf(
                "Apply refund reply (manual)",
                "Manual",
                "",
                "Set urgency = 'Low'",
            ),
        ];
        let inv = workflow_inventory(&map(), &recs);
        let eq: Vec<Equivalent> = inv
            .workflows
            .iter()
            .map(|w| w.recommended.equivalent)
            .collect();
        assert_eq!(
            eq,
            vec![
                Equivalent::StatusProcess,
                Equivalent::AssignmentRule,
                Equivalent::TimeBasedRule,
                Equivalent::Sla,
                Equivalent::AutomationRule,
                Equivalent::Macro,
            ]
        );
        let first = &inv.workflows[0];
        assert_eq!(first.recommended.name, "Blueprint");
        assert_eq!(first.module, "Tickets");
        assert_eq!(
            first.conditions_in_words,
            "Status is \u{201c}Open\u{201d} AND Priority is \u{201c}High\u{201d}"
        );
        assert!(inv.workflows[4].recommended.reason.contains("email alerts"));
        let md = workflows_markdown(&inv);
        assert!(md.contains("| 1 | Move to pending |"));
    }
}
