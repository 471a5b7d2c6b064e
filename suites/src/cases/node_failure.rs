//! Area `node-failure`, the cases without packets: the scheduler (pods without a node wait with
//! upstream's reasons while nothing fits, and are bound and run by the node once it does) and
//! NoExecute taints against tolerations, with the real agent terminating what the taint manager
//! deletes. The packet cases (a killed node, a partitioned node) are in `packet_paths_heal.rs`.

use std::time::Duration;

use anyhow::{Context, ensure};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::catalog::{BodyFuture, Case, Label, Runtimes, Topology};
use crate::context::CaseCtx;
use crate::fixtures::{NODE, NodeEnv};
use crate::kube_wait;
use crate::pods::{self, container};

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "node-failure/unschedulable-pods-wait-then-run-when-the-node-fits",
            labels: &[Label::Conformance],
            needs: &[],
            topology: Topology::SingleNode,
            // Scheduling does not involve the runtime.
            runtimes: Runtimes::FakeOnly,
            body: scheduling as fn(CaseCtx) -> BodyFuture,
        },
        Case {
            id: "node-failure/pending-pod-runs-when-its-node-joins",
            labels: &[Label::Conformance],
            needs: &[],
            topology: Topology::TwoNodes,
            runtimes: Runtimes::FakeOnly,
            body: node_joins as fn(CaseCtx) -> BodyFuture,
        },
        Case {
            id: "node-failure/noexecute-taint-evicts-by-toleration-and-removal-cancels",
            labels: &[Label::Conformance],
            needs: &[],
            topology: Topology::SingleNode,
            // The decisions are the control plane's; the runtime only stops containers.
            runtimes: Runtimes::FakeOnly,
            body: tolerations as fn(CaseCtx) -> BodyFuture,
        },
    ]
}

const WAIT: Duration = Duration::from_secs(20);

/// A pod in `default` without `spec.nodeName`, its container requesting `cpu`.
fn unbound(name: &str, cpu: &str) -> anyhow::Result<Pod> {
    let mut c = container(name, &["pause"]);
    c["resources"] = json!({"requests": {"cpu": cpu}});
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [c], "terminationGracePeriodSeconds": 2}});
    Ok(serde_json::from_value(pod)?)
}

/// The PodScheduled=False message of pod `name` once it has one.
async fn unschedulable(env: &NodeEnv, name: &str) -> anyhow::Result<String> {
    kube_wait::pod(&env.client, "default", name, "PodScheduled=False Unschedulable", WAIT, |p| {
        let c = p.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "PodScheduled")?.clone();
        (c.status == "False" && c.reason.as_deref() == Some("Unschedulable")).then(|| c.message.clone().unwrap_or_default())
    })
    .await
}

async fn set_taints(env: &NodeEnv, taints: serde_json::Value) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(env.client.clone());
    nodes.patch(NODE, &PatchParams::default(), &Patch::Merge(json!({"spec": {"taints": taints}}))).await?;
    Ok(())
}

async fn cordon(env: &NodeEnv, on: bool) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(env.client.clone());
    nodes.patch(NODE, &PatchParams::default(), &Patch::Merge(json!({"spec": {"unschedulable": on}}))).await?;
    Ok(())
}

/// A pod asking for more CPU than the node has stays Pending with PodScheduled=False
/// `Unschedulable` and a FailedScheduling event in upstream's form ("0/1 nodes are available:
/// 1 Insufficient cpu. …"); on a cordoned node a fitting pod waits with "node(s) were
/// unschedulable"; uncordoning binds it (`Scheduled`, "Successfully assigned default/small to
/// node-a") and the node runs it; on a node with a NoSchedule taint the pod waits with "node(s)
/// had untolerated taint(s)" until the taint goes. Catches a scheduler that binds what does not
/// fit, ignores a cordon or a taint or never retries, and an agent that does not run pods bound
/// after their creation.
fn scheduling(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = NodeEnv::start(&ctx, "").await?;
        env.wait_ready(WAIT).await?;
        pods::create(&env.client, &unbound("big", "100")?).await?;
        let msg = unschedulable(&env, "big").await?;
        ensure!(msg.starts_with("0/1 nodes are available: 1 Insufficient cpu.") && msg.contains("preemption: 0/1 nodes are available"), "big: {msg:?}");
        let evs = pods::events_for(&env.client, "big").await?;
        let failed = evs.iter().find(|e| e.reason.as_deref() == Some("FailedScheduling")).context("no FailedScheduling event for big")?;
        ensure!(failed.type_.as_deref() == Some("Warning") && failed.message.as_deref() == Some(msg.as_str()), "FailedScheduling {failed:?}");

        cordon(&env, true).await?;
        pods::create(&env.client, &unbound("small", "10m")?).await?;
        let msg = unschedulable(&env, "small").await?;
        ensure!(msg.starts_with("0/1 nodes are available: 1 node(s) were unschedulable."), "small on a cordoned node: {msg:?}");
        cordon(&env, false).await?;
        let p = kube_wait::pod(&env.client, "default", "small", "bound and running", WAIT, |p| (kube_wait::phase(p) == "Running").then(|| p.clone())).await?;
        ensure!(p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(NODE), "small runs on {:?}", p.spec.as_ref().and_then(|s| s.node_name.clone()));
        let evs = pods::events_for(&env.client, "small").await?;
        let want = format!("Successfully assigned default/small to {NODE}");
        ensure!(evs.iter().any(|e| e.reason.as_deref() == Some("Scheduled") && e.message.as_deref() == Some(want.as_str())), "no Scheduled event {want:?}: {evs:?}");
        let big: Api<Pod> = Api::namespaced(env.client.clone(), "default");
        let big = big.get("big").await?;
        ensure!(big.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none(), "the pod that does not fit was bound");

        set_taints(&env, json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])).await?;
        pods::create(&env.client, &unbound("picky", "10m")?).await?;
        let msg = unschedulable(&env, "picky").await?;
        ensure!(msg.starts_with("0/1 nodes are available: 1 node(s) had untolerated taint(s)."), "picky on a tainted node: {msg:?}");
        set_taints(&env, json!(null)).await?;
        kube_wait::pod(&env.client, "default", "picky", "bound and running once the taint is gone", WAIT, |p| (kube_wait::phase(p) == "Running").then_some(())).await?;
        env.stop().await
    })
}

/// The taint upstream's NoExecuteTaintManager conformance tests put on a node.
const EVICT_TAINT: &str = "kubernetes.io/e2e-evict-taint-key";

/// A pause pod on node-a tolerating [`EVICT_TAINT`] for `seconds` (forever with `Some(None)`,
/// not at all with `None`).
fn tolerating(name: &str, seconds: Option<Option<i64>>) -> anyhow::Result<Pod> {
    let mut spec = json!({"terminationGracePeriodSeconds": 1});
    if let Some(secs) = seconds {
        let mut t = json!({"key": EVICT_TAINT, "operator": "Equal", "value": "evictTaintVal", "effect": "NoExecute"});
        if let Some(s) = secs {
            t["tolerationSeconds"] = json!(s);
        }
        spec["tolerations"] = json!([t]);
    }
    pods::pod(name, NODE, vec![container("c", &["pause"])], spec)
}

async fn set_evict_taint(env: &NodeEnv, on: bool) -> anyhow::Result<()> {
    set_taints(env, if on { json!([{"key": EVICT_TAINT, "value": "evictTaintVal", "effect": "NoExecute"}]) } else { json!(null) }).await
}

async fn has_event(env: &NodeEnv, pod: &str, message: &str) -> anyhow::Result<bool> {
    Ok(pods::events_for(&env.client, pod).await?.iter().any(|e| e.reason.as_deref() == Some("TaintManagerEviction") && e.message.as_deref() == Some(message)))
}

/// Upstream's NoExecuteTaintManager conformance tests, compressed: with a NoExecute taint on
/// the node, a pod that does not tolerate it is deleted at once and terminated by the node; one
/// tolerating it for 3 s is deleted after 3 s, not before; removing the taint before an 8 s
/// toleration runs out cancels that deletion ("Cancelling deletion of Pod default/cancel");
/// a pod tolerating it forever stays. Catches a control plane that ignores tolerationSeconds,
/// evicts tolerating pods or does not cancel, and a node that does not terminate deleted pods.
fn tolerations(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = NodeEnv::start(&ctx, "").await?;
        env.wait_ready(WAIT).await?;
        let cases = [("intolerant", None), ("short", Some(Some(3))), ("cancel", Some(Some(8))), ("forever", Some(None))];
        for (name, secs) in cases {
            pods::create(&env.client, &tolerating(name, secs)?).await?;
        }
        for (name, _) in cases {
            kube_wait::pod(&env.client, "default", name, "Running", WAIT, |p| (kube_wait::phase(p) == "Running").then_some(())).await?;
        }
        let t0 = std::time::Instant::now();
        set_evict_taint(&env, true).await?;
        kube_wait::pod_gone(&env.client, "default", "intolerant", WAIT).await.context("the pod without a toleration")?;
        ensure!(has_event(&env, "intolerant", "Marking for deletion Pod default/intolerant").await?, "no TaintManagerEviction event for intolerant");
        kube_wait::pod_gone(&env.client, "default", "short", WAIT).await.context("the pod tolerating 3 s")?;
        let waited = t0.elapsed();
        ensure!(waited >= Duration::from_secs(3), "the pod tolerating the taint for 3 s was gone after {waited:?}");
        set_evict_taint(&env, false).await?;
        ensure!(t0.elapsed() < Duration::from_secs(8), "the taint was removed only after {:?}; the case needs it before 8 s", t0.elapsed());
        harness::wait::wait_for("the cancel event", WAIT, || async { has_event(&env, "cancel", "Cancelling deletion of Pod default/cancel").await.unwrap_or(false) }).await?;
        // Hold past the point where the cancelled deletion would have run.
        let api: Api<Pod> = Api::namespaced(env.client.clone(), "default");
        while t0.elapsed() < Duration::from_secs(10) {
            for name in ["cancel", "forever"] {
                let p = api.get(name).await?;
                ensure!(p.metadata.deletion_timestamp.is_none(), "{name} was deleted after {:?}", t0.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        env.stop().await
    })
}

/// A pod whose nodeSelector only node-b matches waits while node-b is not registered ("0/1
/// nodes are available: 1 node(s) didn't match Pod's node affinity/selector."); once node-b's
/// agent starts and registers, the pod is bound to it and node-b runs it. Catches a scheduler
/// that does not retry when a node joins, and an agent that misses pods bound before its
/// first list.
fn node_joins(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let config = harness::backend::ControlPlane::compressed_config(crate::fixtures::NODE_GRACE);
        let cp = crate::fixtures::control_plane(&ctx, config).await?;
        let opts = crate::fixtures::agent_options("")?;
        let client = cp.client()?;
        let rt_a = crate::fixtures::start_runtime(&ctx, NODE).await?;
        let agent_a = harness::backend::NodeAgent::start(&ctx.world, &cp, NODE, &rt_a, &opts).await?;
        kube_wait::node_condition(&client, NODE, "Ready", "True", WAIT).await?;
        let mut pod = unbound("for-b", "10m")?;
        pod.spec.as_mut().context("spec")?.node_selector = Some([("kubernetes.io/hostname".to_string(), "node-b".to_string())].into());
        pods::create(&client, &pod).await?;
        let msg = kube_wait::pod(&client, "default", "for-b", "PodScheduled=False Unschedulable", WAIT, |p| {
            let c = p.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "PodScheduled")?.clone();
            (c.reason.as_deref() == Some("Unschedulable")).then(|| c.message.clone().unwrap_or_default())
        })
        .await?;
        ensure!(msg.starts_with("0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."), "before node-b joins: {msg:?}");
        let rt_b = crate::fixtures::start_runtime(&ctx, "node-b").await?;
        let agent_b = harness::backend::NodeAgent::start(&ctx.world, &cp, "node-b", &rt_b, &opts).await?;
        let p = kube_wait::pod(&client, "default", "for-b", "Running on node-b", WAIT, |p| (kube_wait::phase(p) == "Running").then(|| p.clone())).await?;
        ensure!(p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some("node-b"), "for-b runs on {:?}", p.spec.as_ref().and_then(|s| s.node_name.clone()));
        for (agent, rt) in [(agent_b, rt_b), (agent_a, rt_a)] {
            agent.stop().await?;
            rt.stop().await?;
        }
        cp.shutdown().await;
        Ok(())
    })
}
