//! Area `node-failure`: the control plane a node relies on — for now the scheduler: pods
//! without a node wait with upstream's reasons while nothing fits, and are bound and run by the
//! node once it does.

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
    vec![Case {
        id: "node-failure/unschedulable-pods-wait-then-run-when-the-node-fits",
        labels: &[Label::Conformance],
        needs: &[],
        topology: Topology::SingleNode,
        // Scheduling does not involve the runtime.
        runtimes: Runtimes::FakeOnly,
        body: scheduling as fn(CaseCtx) -> BodyFuture,
    }]
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

async fn cordon(env: &NodeEnv, on: bool) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(env.client.clone());
    nodes.patch(NODE, &PatchParams::default(), &Patch::Merge(json!({"spec": {"unschedulable": on}}))).await?;
    Ok(())
}

/// A pod asking for more CPU than the node has stays Pending with PodScheduled=False
/// `Unschedulable` and a FailedScheduling event in upstream's form ("0/1 nodes are available:
/// 1 Insufficient cpu. …"); on a cordoned node a fitting pod waits with "node(s) were
/// unschedulable"; uncordoning binds it (`Scheduled`, "Successfully assigned default/small to
/// node-a") and the node runs it. Catches a scheduler that binds what does not fit, ignores a
/// cordon or never retries, and an agent that does not run pods bound after their creation.
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
        env.stop().await
    })
}
