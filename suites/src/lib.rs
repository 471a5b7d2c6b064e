//! nodekit's conformance catalog and its two runners (nextest entry and the `nodekit` CLI).
//!
//! - [`catalog`]: every case with its id (`area/behaviour`), labels, needs and body.
//! - [`plan`]: a selection expands into runs (case × runtime target), each maybe skipped with a reason.
//! - [`runner`]: one run = one child process that seals itself, builds its world and runs the body.
//! - [`report`]: progress lines, the summary table and JUnit XML.
//! - [`live`]: `nodekit up`, a live world driven with real kubectl.
//! - [`scenarios`]: `nodekit run`, scenario files each in its own world, JUnit and an HTML report.
//! - [`entry`]: the libtest-compatible entry point used by `cargo nextest run`.
//!
//! Case bodies are test code and return `anyhow::Result`.

pub mod bench_pods;
pub mod benches;
pub mod catalog;
pub mod cli;
pub mod cases;
pub mod context;
pub mod cri;
pub mod cri_stream;
pub mod entry;
pub mod fixtures;
pub mod flags;
pub mod kube_wait;
pub mod live;
pub mod plan;
pub mod pods;
pub mod quantity;
pub mod registry_cmd;
pub mod report;
pub mod runner;
pub mod scenarios;
pub mod target;

use catalog::Topology;
use harness::world::Plan;

/// The world plan for a topology.
pub fn topology_plan(t: Topology) -> Plan {
    match t {
        Topology::SingleNode => Plan::single_node(),
        Topology::TwoNodes => Plan::two_nodes(),
    }
}
