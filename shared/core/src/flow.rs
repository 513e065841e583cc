//! The flow, defined once: which phase follows which, where a gate stands and what fans out over
//! partitions. The CLI runner walks it; the Step Functions definition is built from it.

use serde::Serialize;

use crate::model::ObjectKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Preflight,
    ProposeMapping,
    /// Waits for a person (a task token on AWS; `deskshift mapping approve` here).
    Approval,
    Schema,
    Agents,
    Extract,
    Load(ObjectKind),
    Attachments,
    Validate,
}

impl Phase {
    pub fn name(self) -> String {
        match self {
            Phase::Load(k) => format!("load-{k}"),
            other => serde_json::to_value(other)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        }
    }
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct Step {
    pub phase: Phase,
    /// A reconciliation gate after the phase: the flow stops unless it passes.
    pub gate: bool,
    /// The phase runs once per staged partition (pages), in parallel on AWS.
    pub fan_out: bool,
}

const fn step(phase: Phase, gate: bool, fan_out: bool) -> Step {
    Step {
        phase,
        gate,
        fan_out,
    }
}

/// The migration, in order.
pub const FLOW: &[Step] = &[
    step(Phase::Preflight, false, false),
    step(Phase::ProposeMapping, false, false),
    step(Phase::Approval, false, false),
    step(Phase::Extract, false, false),
    step(Phase::Schema, false, false),
    step(Phase::Agents, false, false),
    step(Phase::Load(ObjectKind::Account), true, true),
    step(Phase::Load(ObjectKind::Contact), true, true),
    step(Phase::Load(ObjectKind::Ticket), true, true),
    step(Phase::Load(ObjectKind::Activity), true, true),
    step(Phase::Load(ObjectKind::Task), true, true),
    step(Phase::Attachments, false, true),
    step(Phase::Validate, false, false),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_follow_dependency_order() {
        let loads: Vec<ObjectKind> = FLOW
            .iter()
            .filter_map(|s| {
                if let Phase::Load(k) = s.phase {
                    Some(k)
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(loads, ObjectKind::LOADED.to_vec());
        let pos = |p: Phase| FLOW.iter().position(|s| s.phase == p).unwrap();
        assert!(pos(Phase::Approval) < pos(Phase::Schema));
        assert!(pos(Phase::Approval) < pos(Phase::Load(ObjectKind::Account)));
        assert!(pos(Phase::Load(ObjectKind::Task)) < pos(Phase::Attachments));
    }
}
