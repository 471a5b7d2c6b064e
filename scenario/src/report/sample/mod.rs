//! The sample run behind [`super::sample()`]: a failed two-node partition story, a passed
//! lease scenario and one whose world could not be built.

use crate::record::{EventRow, OpRecord, Outcome, Phase, RunRecord, StepRecord};

mod objects;
mod scenarios;
mod story;

use scenarios::{broken_world, lease_renews, partition};

const IMAGE: &str = "registry.k8s.io/e2e-test-images/agnhost:2.53";
const T0: &str = "2025-06-01T10:00:00Z";

fn ts(ms: u64) -> String {
    // 10:00:00 + ms, good enough for a sample under an hour
    let s = ms / 1000;
    format!(
        "2025-06-01T10:{:02}:{:02}.{:03}Z",
        (s / 60) % 60,
        s % 60,
        ms % 1000
    )
}

fn ev(
    at_ms: u64,
    kind: &str,
    reason: &str,
    object: &str,
    message: &str,
    count: u32,
    source: &str,
) -> EventRow {
    EventRow {
        at_ms,
        kind: kind.into(),
        reason: reason.into(),
        object: object.into(),
        message: message.into(),
        count,
        source: source.into(),
    }
}

fn op(
    phase: Phase,
    kind: &str,
    summary: &str,
    start_ms: u64,
    end_ms: u64,
    outcome: Outcome,
) -> OpRecord {
    OpRecord {
        phase,
        kind: kind.into(),
        summary: summary.into(),
        start_ms,
        end_ms,
        outcome,
        failure: None,
        output: None,
    }
}

fn step(
    name: &str,
    start_ms: u64,
    end_ms: u64,
    outcome: Outcome,
    operations: Vec<OpRecord>,
) -> StepRecord {
    StepRecord {
        name: name.into(),
        start_ms,
        end_ms,
        outcome,
        operations,
    }
}

pub(super) fn run() -> RunRecord {
    RunRecord {
        started: T0.into(),
        scenarios: vec![partition(), lease_renews(), broken_world()],
    }
}
