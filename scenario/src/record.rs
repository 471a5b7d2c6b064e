//! The record of a run: what each scenario did, step by step and operation by operation, and
//! what the world looked like meanwhile (node and pod lanes, fault spans, events, traffic).
//! The runner writes it; [`crate::junit`] and [`crate::report`] read it. It serializes as JSON
//! with camelCase field names so that it can be kept next to the report and read back.
//!
//! Times are milliseconds since the scenario's start unless a field says otherwise.

use serde::{Deserialize, Serialize};

/// One run: every scenario it ran, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    /// When the run started, RFC 3339.
    pub started: String,
    pub scenarios: Vec<ScenarioRecord>,
}

/// How a scenario, a step or an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    Passed,
    Failed,
    /// Not a finding about the node: the world could not be built, a file could not be read, …
    Error,
    Skipped,
}

impl Outcome {
    /// Lower-case name, as in the JSON: `passed`, `failed`, `error`, `skipped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Error => "error",
            Outcome::Skipped => "skipped",
        }
    }

    /// Failed or Error.
    pub fn is_bad(self) -> bool {
        matches!(self, Outcome::Failed | Outcome::Error)
    }
}

/// One scenario of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioRecord {
    pub name: String,
    /// The scenario file, as given to the runner.
    pub file: String,
    pub description: Option<String>,
    /// Upstream issue URLs or behaviour names the scenario is about.
    pub cites: Vec<String>,
    /// The container runtime of the world's nodes, e.g. `fake-cri` or `containerd 2.1`.
    pub runtime: String,
    /// The node proxy's mode, e.g. `nftables`.
    pub proxy_mode: String,
    pub duration_ms: u64,
    pub outcome: Outcome,
    /// Why it failed, one paragraph.
    pub message: Option<String>,
    pub steps: Vec<StepRecord>,
    pub nodes: Vec<Lane>,
    pub pods: Vec<Lane>,
    pub faults: Vec<FaultSpan>,
    pub events: Vec<EventRow>,
    pub traffic: Vec<TrafficSummary>,
    pub artifacts: Vec<Artifact>,
}

impl ScenarioRecord {
    /// The steps that failed or ended in an error, in order.
    pub fn failed_steps(&self) -> impl Iterator<Item = &StepRecord> {
        self.steps.iter().filter(|s| s.outcome.is_bad())
    }
}

impl RunRecord {
    /// True when no scenario failed or ended in an error (skipped scenarios do not fail a run).
    pub fn passed(&self) -> bool {
        self.scenarios.iter().all(|s| !s.outcome.is_bad())
    }
}

/// One step of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    pub name: String,
    pub start_ms: u64,
    pub end_ms: u64,
    pub outcome: Outcome,
    pub operations: Vec<OpRecord>,
}

impl StepRecord {
    /// The operation that made the step fail: the first failed or errored operation of the
    /// `try` phase, else the first failed or errored operation of any phase.
    pub fn failing_op(&self) -> Option<&OpRecord> {
        self.operations
            .iter()
            .find(|o| o.phase == Phase::Try && o.outcome.is_bad())
            .or_else(|| self.operations.iter().find(|o| o.outcome.is_bad()))
    }
}

/// The block of a step an operation ran in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    Try,
    Catch,
    Finally,
    Cleanup,
}

impl Phase {
    /// Lower-case name, as in the scenario file: `try`, `catch`, `finally`, `cleanup`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Try => "try",
            Phase::Catch => "catch",
            Phase::Finally => "finally",
            Phase::Cleanup => "cleanup",
        }
    }
}

/// One operation of a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpRecord {
    pub phase: Phase,
    /// `apply`, `assert`, `error`, `delete`, `fault`, `script`, `sleep`, `traffic`, …
    pub kind: String,
    /// One line: what it did, e.g. `assert Pod default/web-0`.
    pub summary: String,
    pub start_ms: u64,
    pub end_ms: u64,
    pub outcome: Outcome,
    pub failure: Option<Failure>,
    /// What catch collectors gathered, a script's output, …
    pub output: Option<String>,
}

/// Why an operation failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub message: String,
    pub expected: Option<serde_json::Value>,
    pub actual: Option<serde_json::Value>,
    /// A unified-style diff, precomputed by the runner.
    pub diff: Option<String>,
}

/// One row group of the timeline: a node (by name) or a pod (`namespace/name`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lane {
    pub name: String,
    pub tracks: Vec<Track>,
}

/// One row of a lane: a state over time (`Ready`, `taints`, `phase`, `container web`, `lease`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Track {
    pub label: String,
    pub segments: Vec<Segment>,
    pub marks: Vec<Mark>,
}

/// A span of time during which a track showed one state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Segment {
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
    pub tone: Tone,
}

/// How a state reads: the report colours it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Tone {
    Good,
    Warn,
    Bad,
    Unknown,
    Neutral,
}

impl Tone {
    /// Lower-case name, as in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Tone::Good => "good",
            Tone::Warn => "warn",
            Tone::Bad => "bad",
            Tone::Unknown => "unknown",
            Tone::Neutral => "neutral",
        }
    }
}

/// A moment on a track: a lease renewal, a restart, a probe failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mark {
    pub at_ms: u64,
    pub text: String,
    pub tone: Tone,
}

/// A fault the scenario injected, while it was in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultSpan {
    /// e.g. `partition node-a from the API server`.
    pub text: String,
    pub target: String,
    pub start_ms: u64,
    pub end_ms: u64,
}

/// One Kubernetes event as seen during the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRow {
    pub at_ms: u64,
    /// `Normal` or `Warning`.
    pub kind: String,
    pub reason: String,
    /// `Kind/namespace/name`, or `Kind/name` for cluster-scoped objects, e.g. `Pod/default/web-0`.
    pub object: String,
    pub message: String,
    pub count: u32,
    /// The reporting component, e.g. `kubelet node-a`.
    pub source: String,
}

/// What a traffic operation saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficSummary {
    pub step: String,
    pub target: String,
    pub attempts: u32,
    pub succeeded: u32,
    /// Successful answers per endpoint (pod name or address).
    pub per_endpoint: Vec<(String, u32)>,
    /// What the scenario expected, in words.
    pub expected: String,
}

/// A file kept with the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// e.g. `agent log node-a`, `audit log`, `pcap step 2`.
    pub label: String,
    /// Relative to the report file.
    pub path: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, outcome: Outcome) -> StepRecord {
        StepRecord {
            name: name.into(),
            start_ms: 0,
            end_ms: 10,
            outcome,
            operations: vec![],
        }
    }

    fn scenario(outcome: Outcome, steps: Vec<StepRecord>) -> ScenarioRecord {
        ScenarioRecord {
            name: "s".into(),
            file: "s.yaml".into(),
            description: None,
            cites: vec![],
            runtime: "fake-cri".into(),
            proxy_mode: "nftables".into(),
            duration_ms: 10,
            outcome,
            message: None,
            steps,
            nodes: vec![],
            pods: vec![],
            faults: vec![],
            events: vec![],
            traffic: vec![],
            artifacts: vec![],
        }
    }

    #[test]
    fn failed_steps_are_failed_and_errored_ones_in_order() {
        let s = scenario(
            Outcome::Failed,
            vec![
                step("a", Outcome::Passed),
                step("b", Outcome::Failed),
                step("c", Outcome::Skipped),
                step("d", Outcome::Error),
            ],
        );
        let names: Vec<&str> = s.failed_steps().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["b", "d"]);
    }

    #[test]
    fn a_run_passes_unless_something_failed_or_errored() {
        let mut run = RunRecord {
            started: "2025-01-01T00:00:00Z".into(),
            scenarios: vec![],
        };
        assert!(run.passed());
        run.scenarios.push(scenario(Outcome::Passed, vec![]));
        run.scenarios.push(scenario(Outcome::Skipped, vec![]));
        assert!(run.passed());
        run.scenarios.push(scenario(Outcome::Error, vec![]));
        assert!(!run.passed());
    }

    #[test]
    fn json_is_camel_case_and_round_trips() {
        let mut s = scenario(Outcome::Failed, vec![step("a", Outcome::Failed)]);
        s.steps[0].operations.push(OpRecord {
            phase: Phase::Catch,
            kind: "assert".into(),
            summary: "assert Pod default/web-0".into(),
            start_ms: 1,
            end_ms: 2,
            outcome: Outcome::Failed,
            failure: Some(Failure {
                message: "m".into(),
                expected: Some(serde_json::json!({"a": 1})),
                actual: None,
                diff: None,
            }),
            output: None,
        });
        s.traffic.push(TrafficSummary {
            step: "a".into(),
            target: "svc".into(),
            attempts: 3,
            succeeded: 2,
            per_endpoint: vec![("web-0".into(), 2)],
            expected: "all".into(),
        });
        let run = RunRecord {
            started: "2025-01-01T00:00:00Z".into(),
            scenarios: vec![s],
        };
        let json = serde_json::to_value(&run).unwrap();
        let sc = &json["scenarios"][0];
        assert_eq!(sc["proxyMode"], "nftables");
        assert_eq!(sc["durationMs"], 10);
        assert_eq!(sc["outcome"], "failed");
        assert_eq!(sc["steps"][0]["startMs"], 0);
        assert_eq!(sc["steps"][0]["operations"][0]["phase"], "catch");
        assert_eq!(sc["traffic"][0]["perEndpoint"][0][0], "web-0");
        let back: RunRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, run);
    }
}
