//! The Step Functions definitions (Amazon States Language) of deskshift's AWS shape, built from
//! the one flow in [`deskshift_core::flow::FLOW`] so the local runner and the state machine cannot
//! drift: `cargo run -p deskshift-statemachine` writes `statemachine/*.asl.json`, and a test fails
//! when the committed files differ from what this crate builds.
//!
//! Every Lambda task receives only references (the job id, a phase, a kind, an S3 partition key)
//! and answers a small [`TaskOutput`]-shaped object: `{"more": bool, "passed": bool, "summary": {..}}`
//! (plus `partitions` / `manifest_key` from the partition planner). Records, credentials and
//! reports stay in S3 and DynamoDB.
//!
//! Execution input of the migration, delta and cutover machines:
//! `{"job": "<job id>", "concurrency": <destination API concurrency>, "budget_wait_seconds": <n>}`;
//! the rollback machine also takes `"include_changed": bool`.

use std::collections::BTreeMap;
use std::path::Path;

use deskshift_core::Error;
use deskshift_core::flow::{FLOW, Phase, Step};
use deskshift_core::model::ObjectKind;
use serde_json::{Map, Value, json};

/// One Lambda function of the AWS shape. Each is its own binary in `functions/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Function {
    Preflight,
    ProposeMapping,
    /// Records the `.waitForTaskToken` token of the approval task (or resumes at once when the
    /// map is already approved).
    AwaitApproval,
    /// A person's approval: pins the map and sends `SendTaskSuccess` with the stored token.
    Approve,
    Extract,
    Schema,
    Agents,
    /// Lists the staged partitions a fanned-out phase runs over (and writes them as a manifest).
    Partitions,
    LoadPartition,
    /// The reconciliation gate of one load.
    Reconcile,
    Attachments,
    Validate,
    FailureReport,
    Delta,
    Cutover,
    Rollback,
}

impl Function {
    pub const ALL: [Function; 16] = [
        Function::Preflight,
        Function::ProposeMapping,
        Function::AwaitApproval,
        Function::Approve,
        Function::Extract,
        Function::Schema,
        Function::Agents,
        Function::Partitions,
        Function::LoadPartition,
        Function::Reconcile,
        Function::Attachments,
        Function::Validate,
        Function::FailureReport,
        Function::Delta,
        Function::Cutover,
        Function::Rollback,
    ];

    /// The function's short name: binary `deskshift-<name>`, SAM resource `<Pascal>Function`.
    pub fn name(self) -> &'static str {
        match self {
            Function::Preflight => "preflight",
            Function::ProposeMapping => "propose-mapping",
            Function::AwaitApproval => "await-approval",
            Function::Approve => "approve",
            Function::Extract => "extract",
            Function::Schema => "schema",
            Function::Agents => "agents",
            Function::Partitions => "partitions",
            Function::LoadPartition => "load-partition",
            Function::Reconcile => "reconcile",
            Function::Attachments => "attachments",
            Function::Validate => "validate",
            Function::FailureReport => "failure-report",
            Function::Delta => "delta",
            Function::Cutover => "cutover",
            Function::Rollback => "rollback",
        }
    }

    /// The binary built for this function in the `deskshift-functions` package.
    pub fn binary(self) -> String {
        format!("deskshift-{}", self.name())
    }

    /// `PreflightFunction`, `LoadPartitionFunction`, ...: the SAM logical id.
    pub fn logical_id(self) -> String {
        let pascal: String = self
            .name()
            .split('-')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect();
        format!("{pascal}Function")
    }

    /// The `DefinitionSubstitutions` key holding the function's ARN.
    pub fn substitution(self) -> String {
        format!("{}Arn", self.logical_id())
    }

    pub fn from_name(name: &str) -> Option<Function> {
        Function::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The function that runs a phase of the flow (fanned-out phases run per partition).
    pub fn for_phase(phase: Phase) -> Function {
        match phase {
            Phase::Preflight => Function::Preflight,
            Phase::ProposeMapping => Function::ProposeMapping,
            Phase::Approval => Function::AwaitApproval,
            Phase::Schema => Function::Schema,
            Phase::Agents => Function::Agents,
            Phase::Extract => Function::Extract,
            Phase::Load(_) => Function::LoadPartition,
            Phase::Attachments => Function::Attachments,
            Phase::Validate => Function::Validate,
        }
    }
}

/// Substitution key of the S3 bucket holding the stage (and partition manifests).
pub const STAGING_BUCKET: &str = "StagingBucket";
/// Substitution key of the EventBridge Scheduler schedule that starts delta syncs.
pub const DELTA_SCHEDULE: &str = "DeltaScheduleName";

/// Where the partition planner writes the manifest of a fanned-out phase, inside the job's stage.
pub fn manifest_key(phase: &str) -> String {
    format!("plans/{phase}.json")
}

/// How the fanned-out phases run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Production: Distributed Map reading the partition manifest from S3.
    Distributed,
    /// Inline Map over the partition list in the state (emulators without Distributed Map).
    Inline,
}

/// Error names (from [`deskshift_core::Error::name`]) retried with backoff by the state machine.
pub fn retried_errors() -> Vec<&'static str> {
    let platform = || "destination".to_string();
    let endpoint = || "endpoint".to_string();
    vec![
        Error::Throttled {
            platform: platform(),
            endpoint: endpoint(),
            attempts: 0,
            message: String::new(),
            retry_after: None,
        }
        .name(),
        Error::Api {
            platform: platform(),
            endpoint: endpoint(),
            status: 503,
            message: String::new(),
        }
        .name(),
        Error::Transport {
            platform: platform(),
            endpoint: endpoint(),
            message: String::new(),
            ambiguous: false,
        }
        .name(),
    ]
}

/// The error name that pauses the flow until the daily API budget renews.
pub fn budget_error() -> &'static str {
    Error::BudgetExhausted {
        platform: String::new(),
        message: String::new(),
    }
    .name()
}

/// Lambda service errors worth retrying (AWS's recommended set for `lambda:invoke`).
const LAMBDA_SERVICE_ERRORS: [&str; 4] = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
];

const FAILURE_REPORT: &str = "failure report";
const FAILED: &str = "failed";
/// The longest a migration waits for a person to approve the map.
const APPROVAL_TIMEOUT_SECONDS: u64 = 30 * 24 * 3600;

/// A sequence of states under construction.
struct Builder {
    states: Map<String, Value>,
    variant: Variant,
}

/// What a phase task passes to its Lambda besides the job id.
struct Call<'a> {
    function: Function,
    phase: &'a str,
    extra: Vec<(&'a str, Value)>,
}

impl Builder {
    fn new(variant: Variant) -> Self {
        Builder {
            states: Map::new(),
            variant,
        }
    }

    fn add(&mut self, name: &str, state: Value) {
        assert!(
            self.states.insert(name.to_string(), state).is_none(),
            "state {name} defined twice"
        );
    }

    /// A Lambda task re-invoked while it answers `more: true`, retried on transient errors,
    /// waiting on an exhausted budget, and routed to `on_error` on anything else.
    fn resumable_task(&mut self, name: &str, call: &Call, on_error: Option<&str>, next: &str) {
        let again = format!("{name}: more?");
        let wait = format!("{name}: budget wait");
        self.add(name, task(call, on_error, &again, &wait));
        self.add(
            &again,
            json!({
                "Type": "Choice",
                "Choices": [{"Variable": "$.result.more", "BooleanEquals": true, "Next": name}],
                "Default": next,
            }),
        );
        self.add(
            &wait,
            json!({
                "Type": "Wait",
                "Comment": "The daily API budget is spent: wait for it to renew, then resume.",
                "SecondsPath": "$.budget_wait_seconds",
                "Next": name,
            }),
        );
    }

    /// A phase that runs once per staged partition: plan the partitions, fan out, then (for
    /// loads) the reconciliation gate.
    fn fanned_out(&mut self, step: &Step, next: &str) {
        let phase = step.phase.name();
        let kind = match step.phase {
            Phase::Load(k) => Some(k),
            _ => None,
        };
        let plan = format!("{phase}: partitions");
        let map = format!("{phase}: fan out");
        let gate = format!("{phase}: gate");
        let after_map = if step.gate { gate.clone() } else { next.into() };
        let mut extra = vec![];
        if let Some(k) = kind {
            extra.push(("kind", json!(k.as_str())));
        }
        let mut plan_task = task(
            &Call {
                function: Function::Partitions,
                phase: &phase,
                extra: extra.clone(),
            },
            Some(FAILURE_REPORT),
            &map,
            "",
        );
        plan_task["ResultSelector"] = match self.variant {
            Variant::Inline => json!({"partitions.$": "$.Payload.partitions"}),
            Variant::Distributed => json!({"manifest_key.$": "$.Payload.manifest_key"}),
        };
        plan_task["ResultPath"] = json!("$.plan");
        self.add(&plan, plan_task);

        let mut inner = Builder::new(self.variant);
        let item = format!("{phase}: partition");
        let done = format!("{phase}: partition done");
        let mut item_extra = extra.clone();
        item_extra.push(("partition.$", json!("$.partition")));
        inner.resumable_task(
            &item,
            &Call {
                function: Function::for_phase(step.phase),
                phase: &phase,
                extra: item_extra,
            },
            None,
            &done,
        );
        inner.add(&done, json!({"Type": "Pass", "End": true}));
        let mut processor = json!({
            "ProcessorConfig": {"Mode": "INLINE"},
            "StartAt": item,
            "States": Value::Object(inner.states),
        });
        let mut state = json!({
            "Type": "Map",
            "Comment": format!("{phase}: one iteration per staged partition, at most the destination's API concurrency at once"),
            "ItemSelector": {
                "job.$": "$.job",
                "partition.$": "$$.Map.Item.Value",
                "budget_wait_seconds.$": "$.budget_wait_seconds",
            },
            "MaxConcurrencyPath": "$.concurrency",
        });
        match self.variant {
            Variant::Inline => {
                state["ItemsPath"] = json!("$.plan.partitions");
            }
            Variant::Distributed => {
                processor["ProcessorConfig"] =
                    json!({"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"});
                state["ItemReader"] = json!({
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "JSON"},
                    "Parameters": {
                        "Bucket": format!("${{{STAGING_BUCKET}}}"),
                        "Key.$": "$.plan.manifest_key",
                    },
                });
                // No ToleratedFailurePercentage: its default, 0, is what we want, and moto's ASL
                // parser refuses the field.
                state["Label"] = json!(label(&phase));
            }
        }
        state["ItemProcessor"] = processor;
        state["ResultPath"] = Value::Null;
        state["Catch"] = json!([{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": FAILURE_REPORT}]);
        state["Next"] = json!(after_map);
        self.add(&map, state);

        if step.gate {
            let check = format!("{phase}: gate passed?");
            let failed = format!("{phase}: gate failed");
            self.resumable_task(
                &gate,
                &Call {
                    function: Function::Reconcile,
                    phase: &phase,
                    extra,
                },
                Some(FAILURE_REPORT),
                &check,
            );
            self.add(
                &check,
                json!({
                    "Type": "Choice",
                    "Choices": [{"Variable": "$.result.passed", "BooleanEquals": false, "Next": failed}],
                    "Default": next,
                }),
            );
            let kind = kind.map(ObjectKind::as_str).unwrap_or("records");
            self.add(
                &failed,
                json!({
                    "Type": "Pass",
                    "Result": {
                        "Error": gate_error(),
                        "Cause": format!("the reconciliation gate for {kind} did not pass: read reports/reconciliation-{kind}.json in the job's stage, fix the cause and start the migration again (it resumes)"),
                    },
                    "ResultPath": "$.error",
                    "Next": FAILURE_REPORT,
                }),
            );
        }
    }

    /// The failure report and the final Fail state every Catch leads to.
    fn failure_states(&mut self) {
        let report = Call {
            function: Function::FailureReport,
            phase: "failure",
            extra: vec![("error.$", json!("$.error"))],
        };
        let mut state = task(&report, None, FAILED, "");
        state["ResultPath"] = json!("$.report");
        state["Catch"] = json!([{"ErrorEquals": ["States.ALL"], "ResultPath": "$.report_error", "Next": FAILED}]);
        state["Retry"] = json!([lambda_retry()]);
        self.add(FAILURE_REPORT, state);
        self.add(
            FAILED,
            json!({"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"}),
        );
    }

    fn machine(self, comment: &str, start: &str) -> Value {
        json!({
            "Comment": comment,
            "StartAt": start,
            "States": Value::Object(self.states),
        })
    }
}

fn gate_error() -> &'static str {
    Error::Gate {
        kind: ObjectKind::Ticket,
        message: String::new(),
    }
    .name()
}

/// A Distributed Map label: letters and digits only, at most 40 characters.
fn label(phase: &str) -> String {
    phase
        .split(['-', '_'])
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<String>()
        .chars()
        .take(40)
        .collect()
}

fn lambda_retry() -> Value {
    json!({
        "ErrorEquals": LAMBDA_SERVICE_ERRORS,
        "IntervalSeconds": 2,
        "BackoffRate": 2.0,
        "MaxAttempts": 6,
    })
}

fn function_arn(f: Function) -> String {
    format!("${{{}}}", f.substitution())
}

/// A `lambda:invoke` task: the payload is the job id, the phase and `extra`; the answer lands in
/// `$.result` as `{more, passed, summary}`.
fn task(call: &Call, on_error: Option<&str>, next: &str, budget_wait: &str) -> Value {
    let mut payload = Map::new();
    payload.insert("job.$".into(), json!("$.job"));
    payload.insert("phase".into(), json!(call.phase));
    for (k, v) in &call.extra {
        payload.insert((*k).into(), v.clone());
    }
    let mut catch = vec![];
    if !budget_wait.is_empty() {
        catch.push(
            json!({"ErrorEquals": [budget_error()], "ResultPath": "$.error", "Next": budget_wait}),
        );
    }
    if let Some(target) = on_error {
        catch.push(json!({"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": target}));
    }
    let mut state = json!({
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {
            "FunctionName": function_arn(call.function),
            "Payload": Value::Object(payload),
        },
        "ResultSelector": {
            "more.$": "$.Payload.more",
            "passed.$": "$.Payload.passed",
            "summary.$": "$.Payload.summary",
        },
        "ResultPath": "$.result",
        "Retry": [
            {
                "ErrorEquals": retried_errors(),
                "IntervalSeconds": 5,
                "BackoffRate": 2.0,
                "MaxAttempts": 6,
                "JitterStrategy": "FULL",
            },
            lambda_retry(),
        ],
        "Next": next,
    });
    if !catch.is_empty() {
        state["Catch"] = Value::Array(catch);
    }
    state
}

/// The first state of a step.
fn entry(step: &Step) -> String {
    if step.fan_out && step.phase != Phase::Approval {
        format!("{}: partitions", step.phase.name())
    } else {
        step.phase.name()
    }
}

/// The migration: every step of [`FLOW`] in order.
pub fn migration(variant: Variant) -> Value {
    let mut b = Builder::new(variant);
    let entries: Vec<String> = FLOW.iter().map(entry).collect();
    for (i, step) in FLOW.iter().enumerate() {
        let name = &step.phase.name();
        let next = entries.get(i + 1).cloned().unwrap_or_else(|| "done".into());
        if step.phase == Phase::Approval {
            b.add(name, approval_task(&next));
        } else if step.fan_out {
            b.fanned_out(step, &next);
        } else {
            let call = Call {
                function: Function::for_phase(step.phase),
                phase: name,
                extra: vec![],
            };
            if step.gate {
                // No non-fanned gated phase exists in FLOW; refuse to build a definition that drops one.
                panic!(
                    "phase {name} has a gate but no fan-out: teach deskshift-statemachine about it"
                );
            }
            b.resumable_task(name, &call, Some(FAILURE_REPORT), &next);
        }
    }
    b.add("done", json!({"Type": "Succeed"}));
    b.failure_states();
    let start = match variant {
        Variant::Distributed => "deskshift migration (Distributed Map over S3 partition manifests)",
        Variant::Inline => {
            "deskshift migration (inline Map, for emulators without Distributed Map)"
        }
    };
    b.machine(
        &format!("{start}; generated from deskshift_core::flow::FLOW by deskshift-statemachine: do not edit"),
        &entries[0],
    )
}

fn approval_task(next: &str) -> Value {
    json!({
        "Type": "Task",
        "Comment": "Waits for a person: the approve function (or SendTaskSuccess with the token stored under mapping/approval-task-token.json) resumes it.",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {
            "FunctionName": function_arn(Function::AwaitApproval),
            "Payload": {
                "job.$": "$.job",
                "phase": Phase::Approval.name(),
                "token.$": "$$.Task.Token",
            },
        },
        "TimeoutSeconds": APPROVAL_TIMEOUT_SECONDS,
        "ResultPath": "$.approval",
        "Retry": [lambda_retry()],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": FAILURE_REPORT}],
        "Next": next,
    })
}

/// One lifecycle operation (delta, cutover, rollback) as a resumable task, then `then`.
fn lifecycle(
    comment: &str,
    function: Function,
    extra: Vec<(&str, Value)>,
    then: Option<Value>,
) -> Value {
    let mut b = Builder::new(Variant::Inline);
    let name = function.name();
    let next = if then.is_some() { "after" } else { "done" };
    b.resumable_task(
        name,
        &Call {
            function,
            phase: name,
            extra,
        },
        Some(FAILURE_REPORT),
        next,
    );
    if let Some(state) = then {
        b.add("after", state);
    }
    b.add("done", json!({"Type": "Succeed"}));
    b.failure_states();
    b.machine(
        &format!("{comment}; generated by deskshift-statemachine: do not edit"),
        name,
    )
}

/// A delta sync: started by the EventBridge Scheduler schedule until cutover (after cutover the
/// delta function answers that it skipped).
pub fn delta() -> Value {
    lifecycle("deskshift delta sync", Function::Delta, vec![], None)
}

/// Cutover: the final delta, a confirming one, then the delta schedule is removed.
pub fn cutover() -> Value {
    let remove_schedule = json!({
        "Type": "Task",
        "Comment": "Deltas stop after cutover; the delta function also refuses to run for a cut-over job.",
        "Resource": "arn:aws:states:::aws-sdk:scheduler:deleteSchedule",
        "Parameters": {"Name": format!("${{{DELTA_SCHEDULE}}}")},
        "ResultPath": null,
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.schedule_error", "Next": "done"}],
        "Next": "done",
    });
    lifecycle(
        "deskshift cutover",
        Function::Cutover,
        vec![],
        Some(remove_schedule),
    )
}

/// Rollback: removes what the migration created (records changed since are kept unless
/// `include_changed`).
pub fn rollback() -> Value {
    lifecycle(
        "deskshift rollback",
        Function::Rollback,
        vec![("include_changed.$", json!("$.include_changed"))],
        None,
    )
}

/// Every definition, by file name under `statemachine/`.
pub fn definitions() -> Vec<(&'static str, Value)> {
    vec![
        ("migration.asl.json", migration(Variant::Distributed)),
        ("migration.inline.asl.json", migration(Variant::Inline)),
        ("delta.asl.json", delta()),
        ("cutover.asl.json", cutover()),
        ("rollback.asl.json", rollback()),
    ]
}

/// The committed text of a definition: pretty JSON with a final newline.
pub fn render(definition: &Value) -> String {
    let mut s = serde_json::to_string_pretty(definition).expect("a JSON value always serializes");
    s.push('\n');
    s
}

/// Writes every definition into `dir`; returns the files written.
pub fn write_all(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut written = vec![];
    for (file, def) in definitions() {
        std::fs::write(dir.join(file), render(&def))?;
        written.push(file.to_string());
    }
    Ok(written)
}

/// The files in `dir` that differ from what this crate builds (missing files included).
pub fn stale(dir: &Path) -> Vec<String> {
    definitions()
        .into_iter()
        .filter(|(file, def)| std::fs::read_to_string(dir.join(file)).ok() != Some(render(def)))
        .map(|(file, _)| file.to_string())
        .collect()
}

/// Replaces `${Key}` placeholders (CloudFormation `DefinitionSubstitutions` syntax).
pub fn substitute(definition: &str, values: &BTreeMap<String, String>) -> String {
    let mut out = definition.to_string();
    for (k, v) in values {
        out = out.replace(&format!("${{{k}}}"), v);
    }
    out
}

/// The placeholders a definition uses (what a deployment must substitute).
pub fn placeholders(definition: &str) -> Vec<String> {
    let mut out = vec![];
    let mut rest = definition;
    while let Some(i) = rest.find("${") {
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else { break };
        let key = after[..end].to_string();
        if !out.contains(&key) {
            out.push(key);
        }
        rest = &after[end..];
    }
    out.sort();
    out
}

/// Substitutions for functions named `<prefix><name>` in one account and region (the emulator
/// test; SAM substitutes the real ARNs).
pub fn substitutions_for(
    region: &str,
    account: &str,
    prefix: &str,
    bucket: &str,
    schedule: &str,
) -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> = Function::ALL
        .into_iter()
        .map(|f| {
            (
                f.substitution(),
                format!(
                    "arn:aws:lambda:{region}:{account}:function:{prefix}{}",
                    f.name()
                ),
            )
        })
        .collect();
    m.insert(STAGING_BUCKET.into(), bucket.into());
    m.insert(DELTA_SCHEDULE.into(), schedule.into());
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states(def: &Value) -> &Map<String, Value> {
        def["States"].as_object().unwrap()
    }

    /// Every `Next`, `Default` and `StartAt` names a state of the same scope.
    fn check_targets(scope: &Value) {
        let states = states(scope);
        assert!(states.contains_key(scope["StartAt"].as_str().unwrap()));
        for (name, s) in states {
            let mut targets: Vec<&str> = vec![];
            if let Some(n) = s["Next"].as_str() {
                targets.push(n);
            }
            if let Some(n) = s["Default"].as_str() {
                targets.push(n);
            }
            for c in s["Choices"].as_array().into_iter().flatten() {
                targets.push(c["Next"].as_str().unwrap());
            }
            for c in s["Catch"].as_array().into_iter().flatten() {
                targets.push(c["Next"].as_str().unwrap());
            }
            for t in targets {
                assert!(states.contains_key(t), "{name} -> {t}: no such state");
            }
            let terminal = s["End"] == json!(true)
                || matches!(s["Type"].as_str(), Some("Succeed" | "Fail" | "Choice"));
            assert!(
                terminal || s["Next"].is_string(),
                "{name} neither ends nor continues"
            );
            if let Some(p) = s.get("ItemProcessor") {
                check_targets(p);
            }
        }
    }

    #[test]
    fn definitions_are_well_formed() {
        for (file, def) in definitions() {
            check_targets(&def);
            assert!(render(&def).len() < 64 * 1024, "{file} is large");
        }
    }

    #[test]
    fn migration_follows_the_flow_in_order() {
        for variant in [Variant::Distributed, Variant::Inline] {
            let def = migration(variant);
            let s = states(&def);
            // Walk the happy path: Next / Default only.
            let mut at = def["StartAt"].as_str().unwrap().to_string();
            let mut seen = vec![];
            while let Some(state) = s.get(&at) {
                seen.push(at.clone());
                let next = state["Next"].as_str().or(state["Default"].as_str());
                match next {
                    Some(n) => at = n.to_string(),
                    None => break,
                }
            }
            let phases: Vec<String> = FLOW.iter().map(|s| s.phase.name()).collect();
            let order: Vec<&String> = phases
                .iter()
                .map(|p| {
                    seen.iter()
                        .find(|s| *s == p || s.starts_with(&format!("{p}: ")))
                        .unwrap_or_else(|| panic!("{p} not on the happy path: {seen:?}"))
                })
                .collect();
            let positions: Vec<usize> = order
                .iter()
                .map(|o| seen.iter().position(|s| s == *o).unwrap())
                .collect();
            assert!(positions.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
            assert_eq!(seen.last().unwrap(), "done");
        }
    }

    #[test]
    fn gates_fan_out_and_approval() {
        let def = migration(Variant::Inline);
        let s = states(&def);
        for step in FLOW {
            let name = step.phase.name();
            assert_eq!(
                s.contains_key(&format!("{name}: gate passed?")),
                step.gate,
                "{name}"
            );
            assert_eq!(
                s.contains_key(&format!("{name}: fan out")),
                step.fan_out,
                "{name}"
            );
        }
        let map = &s["load-ticket: fan out"];
        assert_eq!(map["MaxConcurrencyPath"], "$.concurrency");
        assert_eq!(map["ItemsPath"], "$.plan.partitions");
        let approval = &s["approval"];
        assert_eq!(
            approval["Resource"],
            "arn:aws:states:::lambda:invoke.waitForTaskToken"
        );
        assert_eq!(
            approval["Parameters"]["Payload"]["token.$"],
            "$$.Task.Token"
        );

        let dist = migration(Variant::Distributed);
        let map = &states(&dist)["load-ticket: fan out"];
        assert_eq!(
            map["ItemProcessor"]["ProcessorConfig"]["Mode"],
            "DISTRIBUTED"
        );
        assert_eq!(
            map["ItemReader"]["Parameters"]["Key.$"],
            "$.plan.manifest_key"
        );
        assert_eq!(map["Label"], "LoadTicket");
    }

    #[test]
    fn retries_match_engine_error_names() {
        assert_eq!(
            retried_errors(),
            vec!["Throttled", "PlatformUnavailable", "Transport"]
        );
        assert_eq!(budget_error(), "BudgetExhausted");
        let def = migration(Variant::Inline);
        let t = &states(&def)["extract"];
        assert_eq!(t["Retry"][0]["ErrorEquals"], json!(retried_errors()));
        assert_eq!(t["Catch"][0]["ErrorEquals"], json!(["BudgetExhausted"]));
        assert_eq!(t["Catch"][0]["Next"], "extract: budget wait");
        assert_eq!(t["Catch"][1]["Next"], FAILURE_REPORT);
    }

    #[test]
    fn payloads_carry_references_only() {
        for (file, def) in definitions() {
            let text = render(&def);
            for p in placeholders(&text) {
                let known = p == STAGING_BUCKET
                    || p == DELTA_SCHEDULE
                    || Function::ALL.iter().any(|f| f.substitution() == p);
                assert!(known, "{file}: unknown placeholder {p}");
            }
            // A task payload names paths into the state; the state holds ids and keys only.
            for word in ["password", "secret", "token\": \"", "records"] {
                assert!(!text.contains(word), "{file} mentions {word}");
            }
        }
    }

    #[test]
    fn substitution_fills_every_placeholder() {
        let subs = substitutions_for("us-east-1", "123456789012", "deskshift-", "bucket", "sched");
        for (_, def) in definitions() {
            let text = substitute(&render(&def), &subs);
            assert!(placeholders(&text).is_empty());
            let back: Value = serde_json::from_str(&text).unwrap();
            assert!(back["States"].is_object());
        }
        assert_eq!(
            subs["LoadPartitionFunctionArn"],
            "arn:aws:lambda:us-east-1:123456789012:function:deskshift-load-partition"
        );
    }

    #[test]
    fn function_names_round_trip() {
        for f in Function::ALL {
            assert_eq!(Function::from_name(f.name()), Some(f));
        }
        assert_eq!(
            Function::ProposeMapping.logical_id(),
            "ProposeMappingFunction"
        );
    }
}
