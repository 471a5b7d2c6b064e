//! The sealed side of one scenario: build the world, watch it, run the steps, heal every fault
//! whatever happened, and write the record (steps, lanes, faults, events, artifacts) for the
//! host side.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use scenario::record::{Artifact, Outcome, ScenarioRecord};

use super::recorder::Recorder;
use super::steps::Runner;
use super::world::ScenarioWorld;
use super::{Prepared, RECORD_FILE, SCENARIO_ENV, error_record, relative};

/// If this process is a scenario's sealed child, run it and return the exit code. Call it
/// first thing in `main`.
pub fn child_entry() -> Option<ExitCode> {
    let json = std::env::var(SCENARIO_ENV).ok()?;
    let result = serde_json::from_str::<Prepared>(&json)
        .context("reading the prepared scenario")
        .and_then(|p| harness::sealed::block_on_sealed(run(p)));
    Some(match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("nodekit run: {err:#}");
            ExitCode::FAILURE
        }
    })
}

async fn run(p: Prepared) -> anyhow::Result<bool> {
    let started = Instant::now();
    std::fs::create_dir_all(&p.out)?;
    let record = match ScenarioWorld::build(&p, "scenario", &p.out).await {
        Ok(world) => run_in(&p, std::sync::Arc::new(world), started).await,
        Err(e) => error_record(&p, format!("the world could not be built: {e:#}"), started.elapsed().as_millis() as u64),
    };
    let passed = record.outcome == Outcome::Passed;
    std::fs::write(p.out.join(RECORD_FILE), serde_json::to_vec_pretty(&record)?)?;
    Ok(passed)
}

async fn run_in(p: &Prepared, world: std::sync::Arc<ScenarioWorld>, started: Instant) -> ScenarioRecord {
    let mut record = match world.cp.client() {
        Ok(client) => execute(p, world.clone(), client, started, true).await,
        Err(e) => {
            let mut r = error_record(p, format!("no client for the API server: {e}"), 0);
            r.outcome = Outcome::Error;
            r
        }
    };
    write_audit(&world, &p.out);
    shutdown(world).await;
    record.duration_ms = started.elapsed().as_millis() as u64;
    record.artifacts = artifacts(&p.out);
    record
}

/// Runs the steps of `p` against a built world while watching it, and returns the record
/// (steps, lanes, faults, traffic, events). Every fault the steps started is healed before it
/// returns; the steps' `cleanup` operations run only with `cleanup` (a world handed over to a
/// person keeps what the steps made).
pub async fn execute(p: &Prepared, world: std::sync::Arc<ScenarioWorld>, client: kube::Client, started: Instant, cleanup: bool) -> ScenarioRecord {
    let mut record = error_record(p, String::new(), 0);
    record.message = None;
    let recorder = Recorder::start(client.clone(), started);
    let ready = super::objects::nodes_ready(&client, &world.node_names, std::time::Duration::from_secs(120)).await;
    let mut runner = Runner::new(p, world, client, started);
    if let Err(e) = ready {
        record.message = Some(format!("the nodes did not become Ready: {e:#}"));
    } else {
        runner.run_steps().await;
    }
    let (steps, faults, traffic, message) = runner.finish(cleanup).await;
    let end_ms = started.elapsed().as_millis() as u64;
    let seen = recorder.stop().await;
    record.events = seen.events.clone();
    record.nodes = scenario::lanes::node_lanes(&seen.nodes, &seen.leases, end_ms);
    record.pods = scenario::lanes::pod_lanes(&seen.pods, &seen.events, end_ms);
    record.faults = faults;
    record.traffic = traffic;
    record.outcome = match (&record.message, steps.iter().all(|s| s.outcome == Outcome::Passed)) {
        (Some(_), _) => Outcome::Error,
        (None, true) => Outcome::Passed,
        (None, false) => Outcome::Failed,
    };
    record.message = record.message.or(message);
    record.steps = steps;
    record.duration_ms = end_ms;
    record
}

/// Stops the world once nothing else holds it.
async fn shutdown(world: std::sync::Arc<ScenarioWorld>) {
    match std::sync::Arc::try_unwrap(world) {
        Ok(w) => w.shutdown().await,
        Err(_) => eprintln!("nodekit run: the world is still in use at the end; it goes with the process"),
    }
}

/// The API server's audit log as JSON lines.
fn write_audit(world: &ScenarioWorld, out: &Path) {
    let lines: Vec<String> = world.cp.handle().audit().iter().filter_map(|e| serde_json::to_string(e).ok()).collect();
    let _ = std::fs::write(out.join("audit.jsonl"), lines.join("\n"));
}

/// Every log and file the world left in the scenario's directory, as report-relative links.
fn artifacts(out: &Path) -> Vec<Artifact> {
    let mut files: Vec<_> = std::fs::read_dir(out)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .filter(|f| f.file_name().is_some_and(|n| n != RECORD_FILE))
        .map(|f| Artifact { label: f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), path: relative(out, &f) })
        .collect()
}
