//! Area `probes`: the upstream container-probe behaviours (exec / httpGet / tcpSocket / grpc;
//! liveness, readiness, startup; delays, thresholds, timeouts, redirects, probe-level grace
//! period, probes while terminating) with compressed timings (periodSeconds 1).
//!
//! This file holds the catalog entries and the helpers the bodies share; the bodies live in
//! `probes_readiness.rs`, `probes_liveness.rs` and `probes_startup.rs`.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::{ContainerStatus, Event, Pod};
use kube::Api;
use serde_json::{Value, json};

use crate::catalog::{BodyFuture, Case, Label, Runtimes, Topology};
use crate::context::CaseCtx;
use crate::fixtures::{NODE, NodeEnv};
use crate::flags::Flags;
use crate::{kube_wait, pods};

#[path = "probes_liveness.rs"]
mod liveness;
#[path = "probes_readiness.rs"]
mod readiness;
#[path = "probes_startup.rs"]
mod startup;

pub fn cases() -> Vec<Case> {
    const FAST: &[Label] = &[Label::Conformance];
    const SLOW: &[Label] = &[Label::Conformance, Label::Slow];
    // Three restarts in 25 s: the compressed crash-loop back-off.
    const BACK_OFF: &[Label] = &[Label::Conformance, Label::NodekitExtensions];
    let case = |id, labels, body: fn(CaseCtx) -> BodyFuture| Case {
        id,
        labels,
        needs: &[],
        topology: Topology::SingleNode,
        runtimes: Runtimes::All,
        body,
    };
    vec![
        case("probes/readiness-initial-delay", FAST, readiness::initial_delay),
        case("probes/readiness-failing-never-ready", FAST, readiness::never_ready),
        case("probes/readiness-exec-timeout-never-ready", FAST, readiness::exec_timeout),
        case("probes/readiness-similar-failures-combined", FAST, readiness::similar_failures_combined),
        case("probes/liveness-exec-failing-restarts", FAST, liveness::exec_failing),
        case("probes/liveness-exec-passing-no-restart", FAST, liveness::exec_passing),
        case("probes/liveness-exec-timeout-restarts", FAST, liveness::exec_timeout),
        case("probes/liveness-http-restart-count-monotonic", BACK_OFF, liveness::http_monotonic),
        case("probes/liveness-http-passing-no-restart", FAST, liveness::http_passing),
        case("probes/liveness-http-local-redirect-followed", FAST, liveness::http_local_redirect),
        case("probes/liveness-http-non-local-redirect-warning", FAST, liveness::http_non_local_redirect),
        case("probes/liveness-tcp-open-no-restart", FAST, liveness::tcp_open),
        case("probes/liveness-tcp-closed-restarts", FAST, liveness::tcp_closed),
        case("probes/liveness-grpc-serving-no-restart", FAST, liveness::grpc_serving),
        case("probes/liveness-grpc-wrong-port-restarts", FAST, liveness::grpc_wrong_port),
        case("probes/liveness-probe-termination-grace-period", FAST, liveness::probe_grace),
        case("probes/startup-failing-restarts", FAST, startup::failing),
        case("probes/startup-delays-liveness", FAST, startup::delays_liveness),
        case("probes/liveness-after-startup-succeeds", FAST, startup::liveness_after_startup),
        case("probes/ready-soon-after-startup-succeeds", FAST, startup::ready_after_startup),
        case("probes/terminating-not-ready-liveness-off", SLOW, readiness::terminating),
    ]
}

/// How long a case waits for the node to become Ready.
const NODE_READY: Duration = Duration::from_secs(20);
/// How long a case waits for a container to be running for the first time.
const START: Duration = Duration::from_secs(15);
/// Poll interval of the "consistently" observations.
const POLL: Duration = Duration::from_millis(100);

/// Starts cp, runtime and agent and waits for the node to be Ready.
async fn node(ctx: &CaseCtx) -> anyhow::Result<NodeEnv> {
    let env = NodeEnv::start(ctx, "").await?;
    env.wait_ready(NODE_READY).await?;
    Ok(env)
}

// ---- pod specs ------------------------------------------------------------------------------

/// An exec probe handler running `/workload args…` in the container.
fn exec(args: &[&str]) -> Value {
    let mut cmd = vec!["/workload"];
    cmd.extend_from_slice(args);
    json!({"exec": {"command": cmd}})
}

/// An exec handler that succeeds in every backend's container.
fn exec_ok() -> Value {
    exec(&["check-file", "/proc/self/status"])
}

/// An exec handler that fails in every backend's container.
fn exec_fail() -> Value {
    exec(&["check-file", "/tmp/absent"])
}

fn http_get(path: &str, port: u16) -> Value {
    json!({"httpGet": {"path": path, "port": port}})
}

fn tcp(port: u16) -> Value {
    json!({"tcpSocket": {"port": port}})
}

fn grpc(port: u16) -> Value {
    json!({"grpc": {"port": port}})
}

/// A probe: `handler` with compressed timing (delay 1 s, period 1 s, failureThreshold 1,
/// timeout 2 s), then `overrides` merged in. The 1 s delay lets servers bind their port
/// first (a probe before that fails, as upstream).
fn probe(handler: Value, overrides: Value) -> Value {
    let mut p = json!({
        "initialDelaySeconds": 1,
        "periodSeconds": 1,
        "timeoutSeconds": 2,
        "failureThreshold": 1,
    });
    pods::merge(&mut p, handler);
    pods::merge(&mut p, overrides);
    p
}

/// A workload container with extra fields (probes, mounts) merged in.
fn container(name: &str, args: &[&str], extra: Value) -> Value {
    let mut c = pods::container(name, args);
    pods::merge(&mut c, extra);
    c
}

/// Creates a pod bound to node-a.
async fn create(env: &NodeEnv, name: &str, containers: Vec<Value>, spec: Value) -> anyhow::Result<Pod> {
    let pod = pods::pod(name, NODE, containers, spec)?;
    pods::create(&env.client, &pod).await
}

// ---- observations ---------------------------------------------------------------------------

fn status<'a>(p: &'a Pod, c: &str) -> Option<&'a ContainerStatus> {
    pods::container_status(p, c)
}

fn is_running(p: &Pod, c: &str) -> bool {
    status(p, c).and_then(|s| s.state.as_ref()).is_some_and(|s| s.running.is_some())
}

fn pod_ready(p: &Pod) -> bool {
    kube_wait::pod_condition_status(p, "Ready").as_deref() == Some("True")
}

fn started_at(p: &Pod, c: &str) -> Option<jiff::Timestamp> {
    status(p, c)?.state.as_ref()?.running.as_ref()?.started_at.as_ref().map(|t| t.0)
}

fn condition_transition(p: &Pod, type_: &str) -> Option<jiff::Timestamp> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)?
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
}

fn status_json(p: &Pod) -> String {
    serde_json::to_string(&p.status).unwrap_or_default()
}

/// Waits until container `c` of pod `name` runs.
async fn wait_running(env: &NodeEnv, name: &str, c: &str) -> anyhow::Result<Pod> {
    kube_wait::pod(&env.client, "default", name, &format!("container {c} running"), START, |p| {
        is_running(p, c).then(|| p.clone())
    })
    .await
}

/// Waits until container `c` has restarted at least `n` times.
async fn wait_restarts(env: &NodeEnv, name: &str, c: &str, n: i32, timeout: Duration) -> anyhow::Result<Pod> {
    kube_wait::pod(&env.client, "default", name, &format!("container {c} restartCount ≥ {n}"), timeout, |p| {
        (pods::restarts(p, c) >= n).then(|| p.clone())
    })
    .await
}

/// Watches pod `name` for at least `min` and until `done` holds (at most `max`), failing as
/// soon as `invariant` is violated. Returns the last pod seen.
async fn observe(
    env: &NodeEnv,
    name: &str,
    what: &str,
    (min, max): (Duration, Duration),
    mut invariant: impl FnMut(&Pod) -> Result<(), String>,
    mut done: impl FnMut(&Pod) -> bool,
) -> anyhow::Result<Pod> {
    let api: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    let start = Instant::now();
    loop {
        let p = api.get(name).await.with_context(|| format!("getting pod {name}"))?;
        if let Err(e) = invariant(&p) {
            bail!("{what}: violated after {:.1?}: {e}; pod status {}", start.elapsed(), status_json(&p));
        }
        let elapsed = start.elapsed();
        if elapsed >= min && done(&p) {
            return Ok(p);
        }
        if elapsed >= max {
            bail!("{what}: the end condition did not hold within {max:?}; pod status {}", status_json(&p));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Watches pod `name` for `window`, failing as soon as `invariant` is violated.
async fn hold(
    env: &NodeEnv,
    name: &str,
    what: &str,
    window: Duration,
    invariant: impl FnMut(&Pod) -> Result<(), String>,
) -> anyhow::Result<Pod> {
    observe(env, name, what, (window, window), invariant, |_| true).await
}

/// Invariant: container `c` is running and has never restarted.
fn never_restarted(c: &str) -> impl Fn(&Pod) -> Result<(), String> + '_ {
    move |p| {
        let n = pods::restarts(p, c);
        if n != 0 {
            return Err(format!("container {c} restarted ({n})"));
        }
        if !is_running(p, c) {
            return Err(format!("container {c} is not running"));
        }
        Ok(())
    }
}

// ---- events ---------------------------------------------------------------------------------

/// `(reason, message, type)` of every event about pod `name`.
async fn events(env: &NodeEnv, name: &str) -> anyhow::Result<Vec<(String, String, String)>> {
    let evs: Vec<Event> = pods::events_for(&env.client, name).await?;
    Ok(evs
        .into_iter()
        .map(|e| {
            (
                e.reason.unwrap_or_default(),
                e.message.unwrap_or_default(),
                e.type_.unwrap_or_default(),
            )
        })
        .collect())
}

/// Waits for an event about pod `name` with `reason` whose message satisfies `matches`.
async fn wait_event(
    env: &NodeEnv,
    name: &str,
    reason: &str,
    what: &str,
    timeout: Duration,
    matches: impl Fn(&str) -> bool,
) -> anyhow::Result<(String, String, String)> {
    let last = std::sync::Mutex::new(Vec::new());
    let found = harness::wait::wait_every(
        &format!("pod {name}: a {reason} event {what}"),
        timeout,
        POLL,
        || async {
            let evs = events(env, name).await.unwrap_or_default();
            let hit = evs.iter().find(|(r, m, _)| r == reason && matches(m)).cloned();
            *last.lock().unwrap_or_else(|p| p.into_inner()) = evs;
            hit
        },
    )
    .await;
    found.map_err(|e| {
        let seen = last.lock().unwrap_or_else(|p| p.into_inner()).clone();
        anyhow::anyhow!("{e}; events seen: {seen:?}")
    })
}

/// Fails if any event about pod `name` has `reason` and a message satisfying `matches`.
async fn expect_no_event(
    env: &NodeEnv,
    name: &str,
    reason: &str,
    what: &str,
    matches: impl Fn(&str) -> bool,
) -> anyhow::Result<()> {
    let evs = events(env, name).await?;
    if let Some(e) = evs.iter().find(|(r, m, _)| r == reason && matches(m)) {
        bail!("pod {name}: unexpected {reason} event {what}: {e:?}");
    }
    Ok(())
}

/// Checks the events upstream records when liveness kills container `c`: a Warning
/// `Unhealthy` "Liveness probe failed: …" and a `Killing` "Container c failed liveness probe,
/// will be restarted".
async fn expect_liveness_kill_events(env: &NodeEnv, name: &str, c: &str, timeout: Duration) -> anyhow::Result<()> {
    let (_, _, type_) = wait_event(env, name, "Unhealthy", "for the liveness failure", timeout, |m| {
        m.starts_with("Liveness probe failed: ")
    })
    .await?;
    anyhow::ensure!(type_ == "Warning", "Unhealthy event of type {type_:?}, expected Warning");
    let want = format!("Container {c} failed liveness probe, will be restarted");
    wait_event(env, name, "Killing", &format!("{want:?}"), timeout, |m| m == want).await?;
    Ok(())
}
