//! Taint-based eviction, DefaultTolerationSeconds and PodGC through the API, with two nodes
//! whose heartbeats the test writes (compressed timings).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(15);

fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()
}

/// Creates Ready nodes and renews their leases every 100 ms while their flag is set.
struct Nodes {
    alive: Vec<(String, Arc<AtomicBool>)>,
    task: tokio::task::JoinHandle<()>,
}

impl Nodes {
    async fn start(c: &kube::Client, names: &[&str]) -> anyhow::Result<Nodes> {
        let nodes: Api<Node> = Api::all(c.clone());
        let mut alive = Vec::new();
        for n in names {
            let node: Node = serde_json::from_value(json!({"metadata": {"name": n}, "status": {"conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": now()}]}}))?;
            nodes.create(&PostParams::default(), &node).await?;
            alive.push((n.to_string(), Arc::new(AtomicBool::new(true))));
        }
        let (c2, flags) = (c.clone(), alive.clone());
        let task = tokio::spawn(async move {
            let nodes: Api<Node> = Api::all(c2);
            loop {
                for (n, on) in &flags {
                    if on.load(Ordering::SeqCst) {
                        let hb = json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": now()}]}});
                        let _ = nodes.patch_status(n, &PatchParams::default(), &Patch::Strategic(hb)).await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Ok(Nodes { alive, task })
    }

    fn set(&self, name: &str, on: bool) {
        if let Some((_, f)) = self.alive.iter().find(|(n, _)| n == name) {
            f.store(on, Ordering::SeqCst);
        }
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn pod(name: &str, node: &str, tolerations: Value) -> anyhow::Result<Pod> {
    Ok(serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"nodeName": node,
        "containers": [{"name": "c", "image": "x:1"}], "tolerations": tolerations}}))?)
}

fn has_noexecute(n: &Node, key: &str) -> bool {
    n.spec.as_ref().and_then(|s| s.taints.as_ref()).is_some_and(|ts| ts.iter().any(|t| t.key == key && t.effect == "NoExecute"))
}

async fn events_of(c: &kube::Client, pod: &str) -> Vec<(String, String)> {
    let ev: Api<Event> = Api::namespaced(c.clone(), "default");
    let lp = ListParams::default().fields(&format!("involvedObject.name={pod}"));
    ev.list(&lp).await.map(|l| l.items).unwrap_or_default().into_iter().map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default())).collect()
}

async fn terminating(pods: &Api<Pod>, name: &str) -> bool {
    pods.get(name).await.map(|p| p.metadata.deletion_timestamp.is_some()).unwrap_or(true)
}

/// A node that stops posting status, while another stays Ready, gets the NoExecute
/// `unreachable` taint; pods that do not tolerate it forever are deleted after their
/// tolerationSeconds (the admission default for pods without one), with DisruptionTarget
/// `DeletionByTaintManager` and the taint manager's events; a pod tolerating it forever stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_node_pods_are_evicted_after_their_toleration() -> anyhow::Result<()> {
    let h = common::start_with(|c| {
        c.node_monitor_grace_period = Duration::from_millis(600);
        c.node_monitor_period = Duration::from_millis(50);
        c.default_unreachable_toleration_seconds = 2;
        c.scheduler = false;
    })
    .await;
    let c = common::kube_client(&h);
    let nodes = Nodes::start(&c, &["node-a", "node-b"]).await?;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    pods.create(&PostParams::default(), &pod("plain", "node-a", json!([]))?).await?;
    let forever = json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}]);
    pods.create(&PostParams::default(), &pod("forever", "node-a", forever)?).await?;
    pods.create(&PostParams::default(), &pod("elsewhere", "node-b", json!([]))?).await?;
    let p = pods.get("plain").await?;
    let tol = p.spec.unwrap().tolerations.unwrap();
    assert!(tol.iter().any(|t| t.key.as_deref() == Some("node.kubernetes.io/unreachable") && t.toleration_seconds == Some(2)), "{tol:?}");
    assert!(tol.iter().any(|t| t.key.as_deref() == Some("node.kubernetes.io/not-ready") && t.toleration_seconds == Some(300)), "{tol:?}");

    nodes.set("node-a", false);
    let nodes_api: Api<Node> = Api::all(c.clone());
    common::wait_for("node-a tainted NoExecute", WAIT, || {
        let n = nodes_api.clone();
        async move { n.get("node-a").await.ok().filter(|n| has_noexecute(n, "node.kubernetes.io/unreachable")) }
    })
    .await;
    let tainted = Instant::now();
    assert!(!has_noexecute(&nodes_api.get("node-b").await?, "node.kubernetes.io/unreachable"));
    common::wait_for("plain deleted", WAIT, || {
        let pods = pods.clone();
        async move { terminating(&pods, "plain").await.then_some(()) }
    })
    .await;
    let waited = tainted.elapsed();
    assert!(waited >= Duration::from_millis(1500), "deleted {waited:?} after the taint; tolerationSeconds is 2");
    let p = pods.get("plain").await?;
    let dt = p.status.unwrap().conditions.unwrap().into_iter().find(|c| c.type_ == "DisruptionTarget").expect("DisruptionTarget");
    assert_eq!((dt.status.as_str(), dt.reason.as_deref()), ("True", Some("DeletionByTaintManager")));
    assert_eq!(dt.message.as_deref(), Some("Taint manager: deleting due to NoExecute taint"));
    let ev = events_of(&c, "plain").await;
    assert!(ev.contains(&("TaintManagerEviction".into(), "Marking for deletion Pod default/plain".into())), "{ev:?}");
    assert!(!terminating(&pods, "forever").await, "a pod tolerating unreachable forever was deleted");
    assert!(!terminating(&pods, "elsewhere").await, "a pod on the healthy node was deleted");
    Ok(())
}

/// A pod that does not tolerate a node's NoExecute taint is deleted at once; the taint going
/// away before tolerationSeconds cancels a pending deletion ("Cancelling deletion of Pod …").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_cancels_pending_evictions() -> anyhow::Result<()> {
    let h = common::start_with(|c| {
        c.node_monitor_grace_period = Duration::from_millis(600);
        c.node_monitor_period = Duration::from_millis(50);
        c.scheduler = false;
    })
    .await;
    let c = common::kube_client(&h);
    let nodes = Nodes::start(&c, &["node-a", "node-b"]).await?;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let slow = json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60},
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}]);
    pods.create(&PostParams::default(), &pod("slow", "node-a", slow)?).await?;
    pods.create(&PostParams::default(), &pod("bare", "node-b", json!([]))?).await?;
    // A NoExecute taint nothing tolerates: node-b's pod goes at once.
    let nodes_api: Api<Node> = Api::all(c.clone());
    let taint = json!({"spec": {"taints": [{"key": "example.com/evict", "effect": "NoExecute"}]}});
    nodes_api.patch("node-b", &PatchParams::default(), &Patch::Merge(taint)).await?;
    common::wait_for("bare deleted at once", WAIT, || {
        let pods = pods.clone();
        async move { terminating(&pods, "bare").await.then_some(()) }
    })
    .await;
    nodes.set("node-a", false);
    common::wait_for("slow marked for deletion", WAIT, || {
        let c = c.clone();
        async move { events_of(&c, "slow").await.iter().any(|(_, m)| m == "Marking for deletion Pod default/slow").then_some(()) }
    })
    .await;
    nodes.set("node-a", true);
    common::wait_for("slow's deletion cancelled", WAIT, || {
        let c = c.clone();
        async move { events_of(&c, "slow").await.iter().any(|(_, m)| m == "Cancelling deletion of Pod default/slow").then_some(()) }
    })
    .await;
    assert!(!terminating(&pods, "slow").await);
    Ok(())
}

/// A pod bound to a node that does not exist is marked Failed with DisruptionTarget
/// `DeletionByPodGC` and force-deleted once the quarantine has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_of_missing_nodes_are_collected() -> anyhow::Result<()> {
    let h = common::start_with(|c| {
        c.pod_gc_orphan_quarantine = Duration::from_millis(500);
        c.pod_gc_period = Duration::from_millis(200);
        c.scheduler = false;
    })
    .await;
    let c = common::kube_client(&h);
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let t0 = Instant::now();
    let mut watch = pods.watch(&WatchParams::default(), "0").await?.boxed();
    pods.create(&PostParams::default(), &pod("orphan", "ghost", json!([]))?).await?;
    let mut failed = None;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let ev = tokio::time::timeout_at(deadline, watch.try_next()).await.expect("orphan not collected in time")?;
        match ev {
            Some(WatchEvent::Modified(p)) if p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed") => failed = Some(serde_json::to_value(&p)?),
            Some(WatchEvent::Deleted(_)) | None => break,
            Some(_) => {}
        }
    }
    assert!(t0.elapsed() >= Duration::from_millis(500), "collected before the quarantine");
    let failed = failed.expect("the pod was marked Failed before it was deleted");
    let cond = failed.pointer("/status/conditions").and_then(Value::as_array).and_then(|c| c.iter().find(|c| c["type"] == "DisruptionTarget")).cloned();
    assert_eq!(cond.as_ref().map(|c| (c["reason"].clone(), c["message"].clone())), Some((json!("DeletionByPodGC"), json!("PodGC: node no longer exists"))));
    Ok(())
}
