//! The scheduler end to end through the API (kube-rs): bindings, `Scheduled` / `FailedScheduling`
//! events, the `PodScheduled=False/Unschedulable` condition with upstream's message, and retries
//! when a node joins or a bound pod goes away. Backoffs are compressed; every wait is on a
//! condition.

mod common;

use std::time::Duration;

use fake_apiserver::controllers::scheduler::Timing;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn node(name: &str, labels: Value, taints: Value, cpu: &str, memory: &str) -> Node {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"taints": taints},
        "status": {
            "capacity": {"cpu": cpu, "memory": memory, "pods": "110"},
            "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": now()}],
        },
    }))
    .expect("node")
}

fn pod(name: &str, memory: &str, extra: Value) -> Pod {
    let mut spec = json!({"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
        "resources": {"requests": {"cpu": "100m", "memory": memory}}}]});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).expect("pod")
}

fn scheduled_condition(p: &Pod) -> Option<(String, Option<String>, Option<String>)> {
    let c = p.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "PodScheduled")?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

async fn wait_bound(pods: &Api<Pod>, name: &str) -> String {
    common::wait_for(&format!("{name} bound"), WAIT, || async move {
        let p = pods.get(name).await.ok()?;
        p.spec.as_ref()?.node_name.clone()
    })
    .await
}

async fn wait_unschedulable(pods: &Api<Pod>, name: &str, want: &str) {
    let got = common::wait_for(&format!("{name} unschedulable"), WAIT, || async move {
        let p = pods.get(name).await.ok()?;
        scheduled_condition(&p).filter(|(s, _, m)| s == "False" && m.as_deref() == Some(want))
    })
    .await;
    assert_eq!(got.1.as_deref(), Some("Unschedulable"));
}

async fn events_for(events: &Api<Event>, pod: &str, reason: &str) -> Vec<Event> {
    let all = events.list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default();
    all.into_iter().filter(|e| e.involved_object.name.as_deref() == Some(pod) && e.reason.as_deref() == Some(reason)).collect()
}

async fn wait_event(events: &Api<Event>, pod: &str, reason: &str, message: &str) -> Event {
    common::wait_for(&format!("{reason} event for {pod}"), WAIT, || async move {
        events_for(events, pod, reason).await.into_iter().find(|e| e.message.as_deref() == Some(message))
    })
    .await
}

/// Two Ready nodes: `small` (2 cpu, 2Gi, disk=ssd) and `gpu` (4 cpu, 4Gi, gpu=true, tainted
/// `dedicated=gpu:NoSchedule`).
async fn two_nodes(nodes: &Api<Node>) -> anyhow::Result<()> {
    nodes.create(&PostParams::default(), &node("small", json!({"disk": "ssd"}), json!([]), "2", "2Gi")).await?;
    let taint = json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]);
    nodes.create(&PostParams::default(), &node("gpu", json!({"gpu": "true"}), taint, "4", "4Gi")).await?;
    Ok(())
}

fn gpu_toleration() -> Value {
    json!({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}], "nodeSelector": {"gpu": "true"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binds_reports_and_retries() -> anyhow::Result<()> {
    let h = common::start_with(|c| {
        c.scheduler_timing = Timing { initial_backoff: Duration::from_millis(50), max_backoff: Duration::from_millis(200), ..Timing::default() };
    })
    .await;
    let client = common::kube_client(&h);
    let (nodes, pods): (Api<Node>, Api<Pod>) = (Api::all(client.clone()), Api::namespaced(client.clone(), "default"));
    let events: Api<Event> = Api::namespaced(client, "default");
    two_nodes(&nodes).await?;

    // Placement: the untainted node, or the tainted one with a toleration and a selector.
    pods.create(&PostParams::default(), &pod("web", "100Mi", json!({}))).await?;
    pods.create(&PostParams::default(), &pod("trainer", "1Gi", gpu_toleration())).await?;
    assert_eq!(wait_bound(&pods, "web").await, "small");
    assert_eq!(wait_bound(&pods, "trainer").await, "gpu");
    let web = pods.get("web").await?;
    assert_eq!(scheduled_condition(&web).map(|c| c.0), Some("True".into()));
    let ev = wait_event(&events, "web", "Scheduled", "Successfully assigned default/web to small").await;
    assert_eq!(ev.type_.as_deref(), Some("Normal"));
    assert_eq!(ev.reporting_component.as_deref(), Some("default-scheduler"));
    assert_eq!(ev.source.and_then(|s| s.component).as_deref(), Some("default-scheduler"));

    // Too big for `small`, not tolerating `gpu`; and a selector no node matches.
    pods.create(&PostParams::default(), &pod("big", "3Gi", json!({}))).await?;
    let big_msg = "0/2 nodes are available: 1 Insufficient memory, 1 node(s) had untolerated taint(s). no new claims to deallocate, \
                   preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.";
    wait_unschedulable(&pods, "big", big_msg).await;
    let ev = wait_event(&events, "big", "FailedScheduling", big_msg).await;
    assert_eq!((ev.type_.as_deref(), ev.reporting_component.as_deref()), (Some("Warning"), Some("default-scheduler")));
    pods.create(&PostParams::default(), &pod("nvme", "100Mi", json!({"nodeSelector": {"disk": "nvme"}}))).await?;
    wait_unschedulable(&pods, "nvme", "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint(s). \
        no new claims to deallocate, preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.").await;

    // A heartbeat changes nothing that matters: `big` is not retried (one event, no series).
    let hb = json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": now()}]}});
    nodes.patch_status("small", &PatchParams::default(), &Patch::Merge(hb)).await?;
    pods.create(&PostParams::default(), &pod("probe", "10Mi", json!({}))).await?;
    wait_bound(&pods, "probe").await;
    let failed = events_for(&events, "big", "FailedScheduling").await;
    assert_eq!(failed.len(), 1, "one FailedScheduling event");
    assert!(failed[0].series.is_none(), "not retried without a helpful change: {:?}", failed[0].series);

    // A node that fits joins: `big` is bound there.
    nodes.create(&PostParams::default(), &node("large", json!({}), json!([]), "8", "8Gi")).await?;
    assert_eq!(wait_bound(&pods, "big").await, "large");
    wait_event(&events, "big", "Scheduled", "Successfully assigned default/big to large").await;
    let big = pods.get("big").await?;
    assert_eq!(scheduled_condition(&big), Some(("True".into(), None, None)));
    h.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_pod_makes_room() -> anyhow::Result<()> {
    let h = common::start_with(|c| {
        c.scheduler_timing = Timing { initial_backoff: Duration::from_millis(50), max_backoff: Duration::from_millis(200), ..Timing::default() };
    })
    .await;
    let client = common::kube_client(&h);
    let (nodes, pods): (Api<Node>, Api<Pod>) = (Api::all(client.clone()), Api::namespaced(client.clone(), "default"));
    let events: Api<Event> = Api::namespaced(client, "default");
    two_nodes(&nodes).await?;
    pods.create(&PostParams::default(), &pod("filler", "1500Mi", json!({}))).await?;
    assert_eq!(wait_bound(&pods, "filler").await, "small");
    pods.create(&PostParams::default(), &pod("second", "1Gi", json!({}))).await?;
    let msg = "0/2 nodes are available: 1 Insufficient memory, 1 node(s) had untolerated taint(s). no new claims to deallocate, \
               preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling.";
    wait_unschedulable(&pods, "second", msg).await;
    wait_event(&events, "second", "FailedScheduling", msg).await;

    // Deleting the filler frees the room.
    pods.delete("filler", &DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::default() }).await?;
    assert_eq!(wait_bound(&pods, "second").await, "small");

    // A cordoned node takes no new pods; uncordoned, it does.
    nodes.patch("small", &PatchParams::default(), &Patch::Merge(json!({"spec": {"unschedulable": true}}))).await?;
    pods.create(&PostParams::default(), &pod("late", "10Mi", json!({}))).await?;
    wait_unschedulable(&pods, "late", "0/2 nodes are available: 1 node(s) had untolerated taint(s), 1 node(s) were unschedulable. \
        no new claims to deallocate, preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.").await;
    nodes.patch("small", &PatchParams::default(), &Patch::Merge(json!({"spec": {"unschedulable": false}}))).await?;
    assert_eq!(wait_bound(&pods, "late").await, "small");
    h.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_nodes_and_other_schedulers() -> anyhow::Result<()> {
    let h = common::start_with(|c| {
        c.scheduler_timing = Timing { initial_backoff: Duration::from_millis(50), max_backoff: Duration::from_millis(200), ..Timing::default() };
    })
    .await;
    let client = common::kube_client(&h);
    let (nodes, pods): (Api<Node>, Api<Pod>) = (Api::all(client.clone()), Api::namespaced(client, "default"));
    pods.create(&PostParams::default(), &pod("early", "10Mi", json!({}))).await?;
    wait_unschedulable(&pods, "early", "no nodes available to schedule pods").await;
    pods.create(&PostParams::default(), &pod("custom", "10Mi", json!({"schedulerName": "my-scheduler"}))).await?;
    nodes.create(&PostParams::default(), &node("only", json!({}), json!([]), "1", "1Gi")).await?;
    assert_eq!(wait_bound(&pods, "early").await, "only");
    // `early` was bound after `custom` was created, so `custom` has been seen and left alone.
    let custom = pods.get("custom").await?;
    assert!(custom.spec.as_ref().and_then(|s| s.node_name.clone()).is_none());
    assert!(scheduled_condition(&custom).is_none());
    h.shutdown().await;
    Ok(())
}
