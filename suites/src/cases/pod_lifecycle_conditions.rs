//! The pod condition order cases. Upstream writes a pod's conditions as the pod advances, so the
//! set of True conditions in any object a watcher sees is a prefix of the order
//! (without init containers: PodScheduled → Initialized → PodReadyToStartContainers →
//! ContainersReady → Ready; with them: PodScheduled → PodReadyToStartContainers → Initialized →
//! ContainersReady → Ready). Every observed object is checked against that prefix rule, and each
//! case holds the pod at a step where upstream makes the next condition observably later (an init
//! container still running; a readiness probe that fails until the case sets a flag), so the
//! intermediate state must be seen on its own.
//!
//! What a watcher cannot see: two conditions that upstream itself writes in one status update
//! (PodScheduled and Initialized in the first status of a pod without init containers;
//! ContainersReady and Ready) — for those only the prefix rule and the lastTransitionTime order
//! (second granularity) are checked.

use std::time::Instant;

use anyhow::{Context, bail, ensure};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, PodCondition};
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

use super::{START, env};
use crate::catalog::BodyFuture;
use crate::context::CaseCtx;
use crate::fixtures::{NODE, NodeEnv};
use crate::flags::Flags;
use crate::pods::{self, container, init_status};

const PLAIN: [&str; 5] = ["PodScheduled", "Initialized", "PodReadyToStartContainers", "ContainersReady", "Ready"];
const WITH_INIT: [&str; 5] = ["PodScheduled", "PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready"];

fn conditions(p: &Pod) -> &[PodCondition] {
    p.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or(&[])
}

/// How many conditions of `order`, from the first, are True in `p` — or why the True set is not
/// a prefix of `order` (a later condition True while an earlier one is not).
pub(crate) fn true_prefix(p: &Pod, order: &[&str]) -> Result<usize, String> {
    let is_true = |t: &str| conditions(p).iter().any(|c| c.type_ == t && c.status == "True");
    let n = order.iter().take_while(|t| is_true(t)).count();
    if let Some(late) = order[n..].iter().find(|t| is_true(t)) {
        return Err(format!("{late} is True while {} is not (expected order {order:?})", order[n]));
    }
    Ok(n)
}

/// Watches pod `name` until `done`, checking the prefix rule on every object; returns the
/// prefix lengths in the order they were first seen, and the object `done` accepted. `each`
/// sees every object with its prefix length (to release the pod to its next step).
async fn watch_prefixes(
    client: &kube::Client,
    name: &str,
    order: &[&str],
    mut each: impl FnMut(usize, &Pod) -> anyhow::Result<()>,
    done: impl Fn(&Pod) -> bool,
) -> anyhow::Result<(Vec<usize>, Pod)> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let cfg = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = watcher(api, cfg).applied_objects().boxed();
    let deadline = Instant::now() + START;
    let mut seen: Vec<usize> = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let next = tokio::time::timeout(left, stream.next()).await.with_context(|| format!("timed out watching; prefixes seen {seen:?}"))?;
        let pod = next.context("watch ended")??;
        let n = true_prefix(&pod, order).map_err(|e| anyhow::anyhow!("{e}; conditions {:?}", conditions(&pod)))?;
        if !seen.contains(&n) {
            seen.push(n);
        }
        each(n, &pod)?;
        if done(&pod) {
            return Ok((seen, pod));
        }
    }
}

/// The False condition `type_` of `p` carries upstream's reason and message.
fn expect_false(p: &Pod, type_: &str, reason: &str, message: &str) -> anyhow::Result<()> {
    let c = conditions(p).iter().find(|c| c.type_ == type_).with_context(|| format!("no {type_} condition: {:?}", conditions(p)))?;
    ensure!(
        c.status == "False" && c.reason.as_deref() == Some(reason) && c.message.as_deref() == Some(message),
        "{type_}: expected False/{reason}/{message:?}, got {c:?}"
    );
    Ok(())
}

/// lastTransitionTime never goes backwards along `order` (second granularity).
fn expect_times_in_order(p: &Pod, order: &[&str]) -> anyhow::Result<()> {
    let time = |t: &str| conditions(p).iter().find(|c| c.type_ == t).and_then(|c| c.last_transition_time.as_ref()).map(|x| x.0);
    for w in order.windows(2) {
        let (a, b) = (time(w[0]).with_context(|| format!("{} has no lastTransitionTime", w[0]))?, time(w[1]).with_context(|| format!("{} has no lastTransitionTime", w[1]))?);
        ensure!(a <= b, "lastTransitionTime of {} ({a}) is after {}'s ({b})", w[0], w[1]);
    }
    Ok(())
}

/// The app container `c`, Ready only once the case sets flag `ready`.
fn gated_app() -> serde_json::Value {
    let mut c = container("c", &["pause"]);
    pods::merge(
        &mut c,
        json!({
            "readinessProbe": {"exec": Flags::exec_check("ready")["exec"], "periodSeconds": 1, "failureThreshold": 1},
            "volumeMounts": Flags::mounts(),
        }),
    );
    c
}

/// Runs the gated pod `name` (with `init` containers) through its conditions: `hold` is the
/// prefix at which the pod must be seen waiting for its readiness flag (then the flag is set).
async fn run_gated(env: &NodeEnv, name: &str, order: &[&str], init: serde_json::Value, hold: usize) -> anyhow::Result<(Vec<usize>, Pod)> {
    let flags = Flags::new(name)?;
    let p = pods::pod(name, NODE, vec![gated_app()], json!({"initContainers": init, "volumes": flags.volumes()}))?;
    pods::create(&env.client, &p).await?;
    // Held: `hold` conditions True and the app container running, its readiness probe failing.
    let mut released = false;
    let (seen, pod) = watch_prefixes(
        &env.client,
        name,
        order,
        |n, pod| {
            let running = pods::container_status(pod, "c").and_then(|s| s.state.as_ref()).is_some_and(|s| s.running.is_some());
            if !released && n > hold {
                bail!("{} became True while the readiness probe still failed: {:?}", order[hold], conditions(pod));
            }
            if !released && n == hold && running {
                expect_false(pod, "ContainersReady", "ContainersNotReady", "containers with unready status: [c]")?;
                expect_false(pod, "Ready", "ContainersNotReady", "containers with unready status: [c]")?;
                flags.set("ready")?;
                released = true;
            }
            Ok(())
        },
        |p| true_prefix(p, order) == Ok(order.len()),
    )
    .await?;
    ensure!(released, "the pod was never seen running with exactly {:?} True (prefixes seen {seen:?})", &order[..hold]);
    expect_times_in_order(&pod, order)?;
    Ok((seen, pod))
}

/// Condition order without init containers. Catches an agent that writes ContainersReady or
/// Ready before the readiness probe passes, a later condition True before an earlier one, or
/// upstream's False reasons/messages missing.
pub fn condition_order(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = env(&ctx).await?;
        run_gated(&env, "plain", &PLAIN, json!([]), 3).await?;
        env.stop().await
    })
}

/// Condition order with an init container that runs for 2 s: the sandbox is ready
/// (PodReadyToStartContainers) while Initialized is still False with upstream's reason, then
/// Initialized while ContainersReady waits for the readiness flag. Catches an agent that marks
/// the pod Initialized before its init containers complete, or starts the app container early.
pub fn condition_order_init(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = env(&ctx).await?;
        let init = json!([container("init", &["sleep", "2s"])]);
        let name = "with-init";
        let (seen, pod) = run_gated(&env, name, &WITH_INIT, init, 3).await?;
        ensure!(seen.contains(&2), "the pod was never seen with the sandbox ready and Initialized False (prefixes seen {seen:?})");
        let i = init_status(&pod, "init").context("no init container status")?;
        let t = i.state.as_ref().and_then(|s| s.terminated.as_ref()).context("init container not terminated")?;
        ensure!(t.exit_code == 0 && t.reason.as_deref() == Some("Completed"), "init terminated {t:?}");
        env.stop().await
    })
}

/// Sets condition `type_` of pod `name` to `status` through pods/status (as the controller that
/// owns a readiness gate would).
/// How soon Ready must follow a readiness gate change (the agent's resync is a minute).
const GATE_REACTION: std::time::Duration = std::time::Duration::from_secs(3);

async fn set_gate(client: &kube::Client, name: &str, type_: &str, status: &str) -> anyhow::Result<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let patch = json!({"status": {"conditions": [{"type": type_, "status": status, "lastTransitionTime": jiff::Timestamp::now().to_string()}]}});
    api.patch_status(name, &kube::api::PatchParams::default(), &kube::api::Patch::Strategic(&patch)).await?;
    Ok(())
}

async fn wait_ready_condition(env: &NodeEnv, name: &str, want: (&str, Option<&str>, Option<&str>)) -> anyhow::Result<()> {
    wait_ready_condition_within(env, name, want, START).await
}

async fn wait_ready_condition_within(env: &NodeEnv, name: &str, want: (&str, Option<&str>, Option<&str>), within: std::time::Duration) -> anyhow::Result<()> {
    let what = format!("Ready condition {want:?}");
    crate::kube_wait::pod(&env.client, "default", name, &what, within, |p| {
        let c = conditions(p).iter().find(|c| c.type_ == "Ready")?;
        (c.status == want.0 && c.reason.as_deref() == want.1 && c.message.as_deref() == want.2).then_some(())
    })
    .await
}

/// Upstream "should support pod readiness gates": with its containers ready, the pod stays
/// Ready=False (ReadinessGatesNotReady, upstream's messages) while its gate's condition is
/// missing or False, and becomes Ready once another controller sets it True. Like upstream's
/// HandlePodReconcile, the agent follows a gate change when the pod update arrives: the agent
/// here resyncs only every minute, and Ready must follow each gate change within
/// [`GATE_REACTION`]. Catches an agent that ignores readinessGates, overwrites the conditions
/// other controllers own, or notices a gate only at its periodic resync.
pub fn readiness_gates(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = NodeEnv::start(&ctx, "syncFrequency: 1m").await?;
        let gate = "example.com/feature-1";
        let p = pods::pod("gated", NODE, vec![container("c", &["pause"])], json!({"readinessGates": [{"conditionType": gate}]}))?;
        pods::create(&env.client, &p).await?;
        let missing = format!("corresponding condition of pod readiness gate \"{gate}\" does not exist.");
        wait_ready_condition(&env, "gated", ("False", Some("ReadinessGatesNotReady"), Some(&missing))).await?;
        let now = crate::kube_wait::pod(&env.client, "default", "gated", "status", START, |p| Some(p.clone())).await?;
        let cr = conditions(&now).iter().find(|c| c.type_ == "ContainersReady").map(|c| c.status.clone());
        ensure!(cr.as_deref() == Some("True"), "ContainersReady is {cr:?} while only the gate holds Ready");
        set_gate(&env.client, "gated", gate, "False").await?;
        let not_true = format!("the status of pod readiness gate \"{gate}\" is not \"True\", but False");
        wait_ready_condition_within(&env, "gated", ("False", Some("ReadinessGatesNotReady"), Some(&not_true)), GATE_REACTION).await?;
        set_gate(&env.client, "gated", gate, "True").await?;
        wait_ready_condition_within(&env, "gated", ("True", None, None), GATE_REACTION).await?;
        // The gate's condition, owned by another controller, is still there.
        let p = crate::kube_wait::pod(&env.client, "default", "gated", "status", START, |p| Some(p.clone())).await?;
        ensure!(conditions(&p).iter().any(|c| c.type_ == gate && c.status == "True"), "the agent dropped condition {gate}: {:?}", conditions(&p));
        env.stop().await
    })
}

/// Upstream's native sidecar (KEP-753, "Containers Lifecycle … restartable init containers"):
/// init container `log` with `restartPolicy: Always` serves HTTP and its startup probe passes
/// once it listens; regular init container `wait` succeeds only if it can reach it (so the
/// sidecar must be started before it); the main container runs 3 s and exits 0 under
/// restartPolicy Never. While the main container runs, the sidecar is running, started and
/// ready and the pod Ready; then the pod Succeeded and the sidecar was stopped after the main
/// container. Catches an agent that waits for a sidecar to exit, starts it after the init
/// sequence, leaves it running, or counts it into the pod's phase.
pub fn native_sidecar(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = env(&ctx).await?;
        let mut log = container("log", &["netexec", "--http-port", "8080"]);
        pods::merge(
            &mut log,
            json!({"restartPolicy": "Always", "startupProbe": pods::listening_probe(8080), "readinessProbe": pods::listening_probe(8080)}),
        );
        let wait = container("wait", &["check-port", "8080"]);
        let main = container("main", &["exit", "--code", "0", "--after", "3s"]);
        let p = pods::pod("sidecar", NODE, vec![main], json!({"restartPolicy": "Never", "initContainers": [log, wait]}))?;
        pods::create(&env.client, &p).await?;
        let init_status = |p: &Pod, c: &str| pods::init_status(p, c).cloned();
        crate::kube_wait::pod(&env.client, "default", "sidecar", "Ready with the sidecar running, started and ready", START, |p| {
            let s = init_status(p, "log")?;
            let running = s.state.as_ref()?.running.is_some();
            (running && s.started == Some(true) && s.ready && crate::kube_wait::pod_condition_status(p, "Ready").as_deref() == Some("True")).then_some(())
        })
        .await?;
        let done = crate::kube_wait::pod(&env.client, "default", "sidecar", "Succeeded with the sidecar stopped", START, |p| {
            let stopped = init_status(p, "log")?.state.as_ref()?.terminated.is_some();
            (crate::kube_wait::phase(p) == "Succeeded" && stopped).then(|| p.clone())
        })
        .await?;
        let term = |s: Option<k8s_openapi::api::core::v1::ContainerStatus>| s.and_then(|s| s.state?.terminated);
        let w = term(init_status(&done, "wait")).context("wait not terminated")?;
        ensure!(w.exit_code == 0, "init container `wait` could not reach the sidecar: exit {}", w.exit_code);
        let m = term(pods::container_status(&done, "main").cloned()).context("main not terminated")?;
        ensure!(m.exit_code == 0 && m.reason.as_deref() == Some("Completed"), "main terminated {m:?}");
        let l = term(init_status(&done, "log")).context("sidecar not terminated")?;
        ensure!(l.finished_at >= m.finished_at, "the sidecar stopped ({:?}) before the main container ({:?})", l.finished_at, m.finished_at);
        env.stop().await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_with(true_types: &[&str]) -> Pod {
        let conds: Vec<serde_json::Value> = PLAIN
            .iter()
            .map(|t| json!({"type": t, "status": if true_types.contains(t) { "True" } else { "False" }}))
            .collect();
        serde_json::from_value(json!({"metadata": {"name": "p"}, "status": {"conditions": conds}})).unwrap()
    }

    #[test]
    fn prefix_rule() {
        assert_eq!(true_prefix(&pod_with(&[]), &PLAIN), Ok(0));
        assert_eq!(true_prefix(&pod_with(&["PodScheduled", "Initialized"]), &PLAIN), Ok(2));
        assert_eq!(true_prefix(&pod_with(&PLAIN), &PLAIN), Ok(5));
        let all_at_once_but_one = pod_with(&["PodScheduled", "Initialized", "ContainersReady", "Ready"]);
        assert!(true_prefix(&all_at_once_but_one, &PLAIN).unwrap_err().contains("ContainersReady is True while PodReadyToStartContainers"));
        // The same set is fine in the init order only if it is a prefix there.
        assert!(true_prefix(&pod_with(&["PodScheduled", "Initialized"]), &WITH_INIT).is_err());
    }
}
