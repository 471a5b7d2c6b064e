//! The DaemonSet controller end to end through the API (kube-rs and the real kubectl): pods on
//! exactly the nodes that should run them, bound by the scheduler; nodes joining, leaving and
//! changing labels; failed pods replaced; RollingUpdate (with and without surge) and OnDelete;
//! status counts and `kubectl rollout status`. No kubelet runs here: a loop in the test plays
//! one, marking bound pods Running and Ready and force-deleting terminating ones. Every wait is
//! on a condition.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use fake_apiserver::Handle;
use fake_apiserver::controllers::scheduler::Timing;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const KUBECTL: &str = "/usr/bin/kubectl";

fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A Ready node with room for pods.
fn node(name: &str, labels: Value, taints: Value, cordoned: bool) -> Node {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"taints": taints, "unschedulable": cordoned},
        "status": {
            "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": now()}],
        },
    }))
    .expect("node")
}

fn worker(name: &str) -> Node {
    node(name, json!({"role": "worker"}), json!([]), false)
}

/// DaemonSet `agent` on `role=worker` nodes with `strategy` (defaulted when null).
fn daemonset(image: &str, strategy: Value) -> DaemonSet {
    let mut ds = json!({
        "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}},
                "spec": {"nodeSelector": {"role": "worker"}, "containers": [{"name": "c", "image": image}]}}},
    });
    if !strategy.is_null() {
        ds["spec"]["updateStrategy"] = strategy;
    }
    serde_json::from_value(ds).expect("daemonset")
}

fn active(p: &Pod) -> bool {
    let phase = p.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
    p.metadata.deletion_timestamp.is_none() && phase != "Succeeded" && phase != "Failed"
}

fn ready(p: &Pod) -> bool {
    p.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn bound_to(p: &Pod) -> String {
    p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default()
}

fn image(p: &Pod) -> String {
    p.spec.as_ref().and_then(|s| s.containers.first()).and_then(|c| c.image.clone()).unwrap_or_default()
}

fn name_of(p: &Pod) -> String {
    p.metadata.name.clone().unwrap_or_default()
}

/// The stand-in kubelet: bound active pods become Running/Ready; terminating pods are removed.
fn spawn_kubelet(pods: Api<Pod>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Ok(list) = pods.list(&ListParams::default()).await {
                for p in &list.items {
                    let name = name_of(p);
                    if p.metadata.deletion_timestamp.is_some() {
                        let _ = pods.delete(&name, &DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::default() }).await;
                    } else if active(p) && !ready(p) && !bound_to(p).is_empty() {
                        let status = json!({"status": {"phase": "Running", "podIP": "10.0.0.1",
                            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now()}]}});
                        let _ = pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(status)).await;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

async fn active_pods(pods: &Api<Pod>) -> Vec<Pod> {
    pods.list(&ListParams::default().labels("app=agent")).await.map(|l| l.items.into_iter().filter(active).collect()).unwrap_or_default()
}

/// The nodes the active daemon pods are bound to, once every one is bound and ready.
async fn ready_nodes(pods: &Api<Pod>) -> Option<BTreeSet<String>> {
    let act = active_pods(pods).await;
    act.iter().all(|p| ready(p) && !bound_to(p).is_empty()).then(|| act.iter().map(bound_to).collect())
}

/// The status numbers (desired, current, ready, up-to-date, available, misscheduled,
/// unavailable) once `observedGeneration` caught up.
async fn counts(sets: &Api<DaemonSet>) -> Option<[i32; 7]> {
    let ds = sets.get("agent").await.ok()?;
    let s = ds.status?;
    (s.observed_generation >= ds.metadata.generation).then_some([
        s.desired_number_scheduled, s.current_number_scheduled, s.number_ready, s.updated_number_scheduled.unwrap_or(0),
        s.number_available.unwrap_or(0), s.number_misscheduled, s.number_unavailable.unwrap_or(0),
    ])
}

/// Wait until the pods are ready on exactly `want` and the status agrees (all updated).
async fn settled(sets: &Api<DaemonSet>, pods: &Api<Pod>, want: &[&str]) {
    let want_set: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
    let n = i32::try_from(want.len()).unwrap_or(0);
    common::wait_for(&format!("daemon pods on {want:?}"), WAIT, || async {
        let on = ready_nodes(pods).await?;
        let c = counts(sets).await?;
        (on == want_set && c == [n, n, n, n, n, 0, 0]).then_some(())
    })
    .await;
}

async fn start() -> Handle {
    common::start_with(|c| {
        c.node_lifecycle = false;
        c.endpointslices = false;
        c.pod_gc_period = Duration::from_millis(100);
        c.pod_gc_orphan_quarantine = Duration::from_millis(200);
        c.scheduler_timing = Timing { initial_backoff: Duration::from_millis(50), max_backoff: Duration::from_millis(200), ..Timing::default() };
    })
    .await
}

async fn events(c: &kube::Client) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(c.clone(), "default");
    api.list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default()
}

fn has_event(evs: &[Event], ty: &str, reason: &str, msg: impl Fn(&str) -> bool) -> bool {
    evs.iter().any(|e| {
        e.type_.as_deref() == Some(ty)
            && e.reason.as_deref() == Some(reason)
            && msg(e.message.as_deref().unwrap_or(""))
            && e.source.as_ref().and_then(|s| s.component.as_deref()) == Some("daemonset-controller")
            && e.involved_object.kind.as_deref() == Some("DaemonSet")
    })
}

/// Every pod carries upstream's daemon pod fields: owner, labels, tolerations, node affinity.
fn check_daemon_pod(p: &Pod, ds: &DaemonSet) {
    let name = name_of(p);
    assert!(name.starts_with("agent-") && name.len() == "agent-".len() + 5, "{name}");
    let oref = &p.metadata.owner_references.as_ref().expect("owned")[0];
    assert_eq!((oref.kind.as_str(), oref.controller, &oref.uid), ("DaemonSet", Some(true), ds.metadata.uid.as_ref().expect("uid")));
    let labels = p.metadata.labels.clone().unwrap_or_default();
    assert!(labels.get("controller-revision-hash").is_some_and(|h| !h.is_empty()), "{labels:?}");
    assert!(labels.contains_key("pod-template-generation"), "{labels:?}");
    let v = serde_json::to_value(p).expect("pod json");
    let terms = &v["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
    assert_eq!(terms, &json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [bound_to(p)]}]}]));
    let tols: Vec<(String, String, Option<i64>)> = p.spec.as_ref().and_then(|s| s.tolerations.clone()).unwrap_or_default().into_iter()
        .map(|t| (t.key.unwrap_or_default(), t.effect.unwrap_or_default(), t.toleration_seconds)).collect();
    for (key, effect) in [("not-ready", "NoExecute"), ("unreachable", "NoExecute"), ("disk-pressure", "NoSchedule"),
        ("memory-pressure", "NoSchedule"), ("pid-pressure", "NoSchedule"), ("unschedulable", "NoSchedule")] {
        let want = (format!("node.kubernetes.io/{key}"), effect.to_string(), None);
        assert!(tols.contains(&want), "missing {want:?} in {tols:?}");
    }
    assert!(!tols.iter().any(|t| t.0 == "node.kubernetes.io/network-unavailable"), "{tols:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_follow_the_nodes_that_should_run_them() -> anyhow::Result<()> {
    let h = start().await;
    let c = common::kube_client(&h);
    let (nodes, sets, pods): (Api<Node>, Api<DaemonSet>, Api<Pod>) = (Api::all(c.clone()), Api::namespaced(c.clone(), "default"), Api::namespaced(c.clone(), "default"));
    let kubelet = spawn_kubelet(pods.clone());
    // a: cordoned (still runs the pod); b: tainted NoSchedule; c: not a worker; d: plain.
    nodes.create(&PostParams::default(), &node("a", json!({"role": "worker"}), json!([]), true)).await?;
    let taint = json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]);
    nodes.create(&PostParams::default(), &node("b", json!({"role": "worker"}), taint, false)).await?;
    nodes.create(&PostParams::default(), &node("c", json!({"role": "edge"}), json!([]), false)).await?;
    nodes.create(&PostParams::default(), &worker("d")).await?;

    let created = sets.create(&PostParams::default(), &daemonset("agent:1", Value::Null)).await?;
    let spec = serde_json::to_value(&created.spec)?;
    assert_eq!(spec["updateStrategy"], json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}));
    assert_eq!(spec["revisionHistoryLimit"], 10);
    settled(&sets, &pods, &["a", "d"]).await;
    let ds = sets.get("agent").await?;
    for p in active_pods(&pods).await {
        check_daemon_pod(&p, &ds);
    }

    // A node joins, a node goes (PodGC removes its pod), a node stops matching the selector.
    nodes.create(&PostParams::default(), &worker("e")).await?;
    settled(&sets, &pods, &["a", "d", "e"]).await;
    let on_d = active_pods(&pods).await.into_iter().find(|p| bound_to(p) == "d").map(|p| name_of(&p)).unwrap_or_default();
    nodes.delete("d", &DeleteParams::default()).await?;
    settled(&sets, &pods, &["a", "e"]).await;
    common::wait_for("the pod of the deleted node to go", WAIT, || async { pods.get_opt(&on_d).await.ok()?.is_none().then_some(()) }).await;
    nodes.patch("a", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"role": "edge"}}}))).await?;
    settled(&sets, &pods, &["e"]).await;

    // A failed pod is deleted and replaced.
    let failed = active_pods(&pods).await.first().map(name_of).unwrap_or_default();
    pods.patch_status(&failed, &PatchParams::default(), &Patch::Merge(json!({"status": {"phase": "Failed"}}))).await?;
    common::wait_for("a replacement for the failed pod", WAIT, || async {
        let act = active_pods(&pods).await;
        let gone = pods.get_opt(&failed).await.ok()?.is_none();
        (gone && act.len() == 1 && name_of(&act[0]) != failed && ready(&act[0])).then_some(())
    })
    .await;

    let evs = events(&c).await;
    let created_pods: Vec<String> = evs.iter().filter(|e| e.reason.as_deref() == Some("SuccessfulCreate")).filter_map(|e| e.message.clone()).collect();
    assert_eq!(created_pods.len(), 4, "a, d, e and the replacement: {created_pods:?}");
    assert!(has_event(&evs, "Normal", "SuccessfulCreate", |m| m.starts_with("Created pod: agent-")));
    assert!(has_event(&evs, "Normal", "SuccessfulDelete", |m| m.starts_with("Deleted pod: agent-")));
    let failed_msg = format!("Found failed daemon pod default/{failed} on node e, will try to kill it");
    assert!(has_event(&evs, "Warning", "FailedDaemonPod", |m| m == failed_msg), "{evs:?}");
    kubelet.abort();
    Ok(())
}

/// The real kubectl with a kubeconfig for `h`, or None (with a reason) when it is absent.
fn kubectl(h: &Handle, dir: &Path, args: &[&str]) -> Option<tokio::process::Command> {
    if !Path::new(KUBECTL).exists() {
        eprintln!("skipping kubectl: {KUBECTL} is absent");
        return None;
    }
    let kubeconfig = dir.join("kubeconfig");
    h.write_kubeconfig(&kubeconfig).ok()?;
    let mut cmd = tokio::process::Command::new(KUBECTL);
    cmd.args(args).env("HOME", dir).env("KUBECONFIG", &kubeconfig).kill_on_drop(true);
    Some(cmd)
}

/// Wait for a rolled-out template `img` on `want` nodes, checking at every look that no more
/// than `max_down` nodes lack a ready active pod and no node runs more than `max_per_node`.
async fn roll(pods: &Api<Pod>, want: usize, img: &str, max_down: usize, max_per_node: usize) {
    common::wait_for(&format!("{img} on every node"), WAIT, || async {
        let act = active_pods(pods).await;
        let up: BTreeSet<String> = act.iter().filter(|p| ready(p)).map(bound_to).collect();
        assert!(want - up.len().min(want) <= max_down, "{} of {want} nodes without a ready pod", want - up.len().min(want));
        for n in &up {
            let here = act.iter().filter(|p| bound_to(p) == *n).count();
            assert!(here <= max_per_node, "{here} pods on {n}");
        }
        (act.len() == want && act.iter().all(|p| image(p) == img && ready(p))).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_one_node_at_a_time_with_kubectl_rollout_status() -> anyhow::Result<()> {
    let h = start().await;
    let c = common::kube_client(&h);
    let (nodes, sets, pods): (Api<Node>, Api<DaemonSet>, Api<Pod>) = (Api::all(c.clone()), Api::namespaced(c.clone(), "default"), Api::namespaced(c.clone(), "default"));
    let kubelet = spawn_kubelet(pods.clone());
    for n in ["n1", "n2", "n3"] {
        nodes.create(&PostParams::default(), &worker(n)).await?;
    }
    sets.create(&PostParams::default(), &daemonset("agent:1", Value::Null)).await?;
    settled(&sets, &pods, &["n1", "n2", "n3"]).await;
    let old: BTreeSet<String> = active_pods(&pods).await.iter().map(name_of).collect();

    let dir = tempfile::tempdir()?;
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "agent:2"}]}}}});
    sets.patch("agent", &PatchParams::default(), &Patch::Strategic(patch)).await?;
    let status = kubectl(&h, dir.path(), &["rollout", "status", "daemonset/agent", "--timeout=60s"]).map(|mut cmd| tokio::spawn(async move { cmd.output().await }));
    roll(&pods, 3, "agent:2", 1, 1).await;
    settled(&sets, &pods, &["n1", "n2", "n3"]).await;
    let new = active_pods(&pods).await;
    assert!(new.iter().all(|p| !old.contains(&name_of(p))));
    let ds = sets.get("agent").await?;
    for p in &new {
        check_daemon_pod(p, &ds);
        let generation = p.metadata.labels.as_ref().and_then(|l| l.get("pod-template-generation")).cloned();
        assert_eq!(generation.as_deref(), Some("2"));
    }
    // One node at a time: each old pod is deleted, then its replacement created.
    let mut evs: Vec<Event> = events(&c).await.into_iter().filter(|e| matches!(e.reason.as_deref(), Some("SuccessfulCreate" | "SuccessfulDelete"))).collect();
    evs.sort_by_key(|e| e.metadata.name.clone());
    let order: Vec<&str> = evs.iter().filter_map(|e| e.reason.as_deref()).map(|r| if r == "SuccessfulCreate" { "C" } else { "D" }).collect();
    assert_eq!(order, ["C", "C", "C", "D", "C", "D", "C", "D", "C"]);
    if let Some(task) = status {
        let out = task.await??;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "rollout status failed: {stdout} {}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("daemon set \"agent\" successfully rolled out"), "{stdout}");
    }
    if let Some(mut cmd) = kubectl(&h, dir.path(), &["get", "ds", "agent", "-o", "wide"]) {
        let out = cmd.output().await?;
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(lines.first().map(|l| l[..8].to_vec()), Some(vec!["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE", "SELECTOR"]), "{text}");
        let row = lines.get(1).cloned().unwrap_or_default();
        assert_eq!(row[..7].to_vec(), ["agent", "3", "3", "3", "3", "3", "role=worker"], "{text}");
        assert_eq!(row[8..].to_vec(), ["c", "agent:2", "app=agent"], "{text}");
    }

    // With maxSurge 1 / maxUnavailable 0 the new pod comes first: never a node without a
    // ready pod, at most two pods on a node.
    let surge = json!({"spec": {"updateStrategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "template": {"spec": {"containers": [{"name": "c", "image": "agent:3"}]}}}});
    sets.patch("agent", &PatchParams::default(), &Patch::Strategic(surge)).await?;
    roll(&pods, 3, "agent:3", 0, 2).await;
    settled(&sets, &pods, &["n1", "n2", "n3"]).await;
    kubelet.abort();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_delete_keeps_old_pods_until_deleted() -> anyhow::Result<()> {
    let h = start().await;
    let c = common::kube_client(&h);
    let (nodes, sets, pods): (Api<Node>, Api<DaemonSet>, Api<Pod>) = (Api::all(c.clone()), Api::namespaced(c.clone(), "default"), Api::namespaced(c.clone(), "default"));
    let kubelet = spawn_kubelet(pods.clone());
    for n in ["n1", "n2"] {
        nodes.create(&PostParams::default(), &worker(n)).await?;
    }
    sets.create(&PostParams::default(), &daemonset("agent:1", json!({"type": "OnDelete"}))).await?;
    settled(&sets, &pods, &["n1", "n2"]).await;
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "agent:2"}]}}}});
    sets.patch("agent", &PatchParams::default(), &Patch::Strategic(patch)).await?;
    common::wait_for("the new generation observed, nothing updated", WAIT, || async { (counts(&sets).await? == [2, 2, 2, 0, 2, 0, 0]).then_some(()) }).await;
    assert!(active_pods(&pods).await.iter().all(|p| image(p) == "agent:1"));
    let victim = active_pods(&pods).await.iter().find(|p| bound_to(p) == "n1").map(name_of).unwrap_or_default();
    pods.delete(&victim, &DeleteParams::default()).await?;
    common::wait_for("one updated pod", WAIT, || async { (counts(&sets).await? == [2, 2, 2, 1, 2, 0, 0]).then_some(()) }).await;
    let act = active_pods(&pods).await;
    assert_eq!(act.iter().find(|p| bound_to(p) == "n1").map(image).as_deref(), Some("agent:2"));
    assert_eq!(act.iter().find(|p| bound_to(p) == "n2").map(image).as_deref(), Some("agent:1"));
    kubelet.abort();
    Ok(())
}

#[test]
fn typed_clients_may_send_daemonsets_as_protobuf() {
    let entry = [common::pb::bytes(1, b"app"), common::pb::bytes(2, b"agent")].concat();
    let selector = common::pb::bytes(1, &entry);
    let max_unavailable = [common::pb::varint(1, 0), common::pb::varint(2, 2)].concat();
    let strategy = [common::pb::bytes(1, b"RollingUpdate"), common::pb::bytes(2, &common::pb::bytes(1, &max_unavailable))].concat();
    let spec = [common::pb::bytes(1, &selector), common::pb::bytes(3, &strategy), common::pb::varint(4, 5), common::pb::varint(6, 3)].concat();
    let raw = [common::pb::bytes(1, &common::pb::bytes(1, b"agent")), common::pb::bytes(2, &spec)].concat();
    let type_meta = [common::pb::bytes(1, b"apps/v1"), common::pb::bytes(2, b"DaemonSet")].concat();
    let body = [b"k8s\0".to_vec(), common::pb::bytes(1, &type_meta), common::pb::bytes(2, &raw)].concat();
    let v = fake_apiserver::protobuf::decode(&body).expect("decodes");
    assert_eq!(v, json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "minReadySeconds": 5, "revisionHistoryLimit": 3,
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}}}}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_daemonsets_are_refused() -> anyhow::Result<()> {
    let h = start().await;
    let c = common::kube_client(&h);
    let sets: Api<DaemonSet> = Api::namespaced(c, "default");
    let refused = |r: Result<DaemonSet, kube::Error>| match r {
        Err(kube::Error::Api(e)) => Some((e.code, e.message)),
        _ => None,
    };
    let mut mismatch = serde_json::to_value(daemonset("agent:1", Value::Null))?;
    mismatch["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"});
    let r = refused(sets.create(&PostParams::default(), &serde_json::from_value(mismatch)?).await).expect("refused");
    assert!(r.0 == 422 && r.1.contains("`selector` does not match template `labels`"), "{r:?}");
    let mut never = serde_json::to_value(daemonset("agent:1", Value::Null))?;
    never["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    let r = refused(sets.create(&PostParams::default(), &serde_json::from_value(never)?).await).expect("refused");
    assert!(r.0 == 422 && r.1.contains("spec.template.spec.restartPolicy"), "{r:?}");
    let bad_strategy = daemonset("agent:1", json!({"type": "Sometimes"}));
    let r = refused(sets.create(&PostParams::default(), &bad_strategy).await).expect("refused");
    assert!(r.0 == 422 && r.1.contains("spec.updateStrategy.type"), "{r:?}");
    sets.create(&PostParams::default(), &daemonset("agent:1", Value::Null)).await?;
    let change = json!({"spec": {"selector": {"matchLabels": {"app": "agent", "tier": "x"}},
        "template": {"metadata": {"labels": {"app": "agent", "tier": "x"}}}}});
    let r = refused(sets.patch("agent", &PatchParams::default(), &Patch::Merge(change)).await).expect("refused");
    assert!(r.0 == 422 && r.1.contains("field is immutable"), "{r:?}");
    Ok(())
}
