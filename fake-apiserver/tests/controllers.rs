//! Node lifecycle and EndpointSlice controllers, end to end through the API with compressed timings.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

fn ready_status(n: &Node) -> Option<(String, Option<String>)> {
    n.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "Ready").map(|c| (c.status.clone(), c.reason.clone()))
}

fn unreachable_taints(n: &Node) -> Vec<String> {
    n.spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t.key == "node.kubernetes.io/unreachable")
        .map(|t| t.effect)
        .collect()
}

fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_lifecycle_marks_unknown_and_recovers() -> anyhow::Result<()> {
    let grace = Duration::from_millis(800);
    let h = common::start_with(|c| {
        c.node_monitor_grace_period = grace;
        c.node_monitor_period = Duration::from_millis(50);
    })
    .await;
    let c = common::kube_client(&h);
    let nodes: Api<Node> = Api::all(c.clone());
    let leases: Api<Lease> = Api::namespaced(c.clone(), "kube-node-lease");
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let node: Node = serde_json::from_value(json!({"metadata": {"name": "node-a"},
        "status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": now()},
            {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"}]}}))?;
    nodes.create(&PostParams::default(), &node).await?;
    let lease: Lease = serde_json::from_value(json!({"metadata": {"name": "node-a"},
        "spec": {"holderIdentity": "node-a", "leaseDurationSeconds": 40, "renewTime": now()}}))?;
    leases.create(&PostParams::default(), &lease).await?;
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "x:1"}]}}))?;
    pods.create(&PostParams::default(), &pod).await?;
    pods.patch_status("p", &PatchParams::default(), &Patch::Merge(json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}))).await?;

    // Renew the lease every 100 ms: the node must stay Ready over several grace periods.
    let renewing = Arc::new(AtomicBool::new(true));
    let renewals = Arc::new(AtomicUsize::new(0));
    let renewer = {
        let (leases, renewing, renewals) = (leases.clone(), renewing.clone(), renewals.clone());
        tokio::spawn(async move {
            loop {
                if renewing.load(Ordering::SeqCst) {
                    let _ = leases.patch("node-a", &PatchParams::default(), &Patch::Merge(json!({"spec": {"renewTime": now()}}))).await;
                    renewals.fetch_add(1, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    common::wait_for("renewals covering 3 grace periods", Duration::from_secs(10), || {
        let n = renewals.load(Ordering::SeqCst);
        async move { (n >= 24).then_some(()) }
    })
    .await;
    let n = nodes.get("node-a").await?;
    assert_eq!(ready_status(&n).unwrap().0, "True", "a renewing node stays Ready");
    assert!(unreachable_taints(&n).is_empty());

    // Stop renewing: Ready=Unknown, taints, pods NotReady.
    renewing.store(false, Ordering::SeqCst);
    let n = common::wait_for("node Unknown", Duration::from_secs(10), || {
        let nodes = nodes.clone();
        async move {
            let n = nodes.get("node-a").await.ok()?;
            (ready_status(&n)?.0 == "Unknown").then_some(n)
        }
    })
    .await;
    let conds = n.status.as_ref().unwrap().conditions.as_ref().unwrap();
    for cnd in conds {
        assert_eq!(cnd.status, "Unknown", "{}", cnd.type_);
        if cnd.type_ == "Ready" || cnd.type_ == "MemoryPressure" {
            assert_eq!(cnd.reason.as_deref(), Some("NodeStatusUnknown"));
            assert_eq!(cnd.message.as_deref(), Some("Kubelet stopped posting node status."));
        } else {
            assert_eq!(cnd.reason.as_deref(), Some("NodeStatusNeverUpdated"), "{}", cnd.type_);
        }
    }
    // The only node is down: the zone is fully disrupted, so no NoExecute taint (upstream's
    // "master disruption mode"); the NoSchedule twin mirrors the condition.
    let n = common::wait_for("the NoSchedule unreachable taint", Duration::from_secs(10), || {
        let nodes = nodes.clone();
        async move {
            let n = nodes.get("node-a").await.ok()?;
            (!unreachable_taints(&n).is_empty()).then_some(n)
        }
    })
    .await;
    assert_eq!(unreachable_taints(&n), vec!["NoSchedule"]);
    let p = pods.get("p").await?;
    let ready = p.status.unwrap().conditions.unwrap().into_iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(ready.status, "False");

    // Recover: renew and post Ready again.
    renewing.store(true, Ordering::SeqCst);
    nodes
        .patch_status("node-a", &PatchParams::default(), &Patch::Strategic(json!({"status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": now()}]}})))
        .await?;
    common::wait_for("taints removed", Duration::from_secs(10), || {
        let nodes = nodes.clone();
        async move {
            let n = nodes.get("node-a").await.ok()?;
            (unreachable_taints(&n).is_empty() && ready_status(&n)?.0 == "True").then_some(())
        }
    })
    .await;
    renewer.abort();
    h.shutdown().await;
    Ok(())
}

async fn slices_of(api: &Api<EndpointSlice>, svc: &str) -> Vec<EndpointSlice> {
    api.list(&ListParams::default().labels(&format!("kubernetes.io/service-name={svc}"))).await.map(|l| l.items).unwrap_or_default()
}

fn endpoints(s: &[EndpointSlice]) -> Vec<(String, bool, bool, bool)> {
    let mut v: Vec<_> = s
        .iter()
        .flat_map(|s| s.endpoints.clone())
        .map(|e| {
            let c = e.conditions.unwrap_or_default();
            (e.addresses[0].clone(), c.ready.unwrap_or(false), c.serving.unwrap_or(false), c.terminating.unwrap_or(false))
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpointslices_follow_services_and_pods() -> anyhow::Result<()> {
    let h = common::start().await;
    let c = common::kube_client(&h);
    let svcs: Api<Service> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(c.clone(), "default");
    let svc: Service = serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"},
        "ports": [{"name": "http", "port": 80, "targetPort": "http"}, {"name": "metrics", "port": 9090, "targetPort": 9091}]}}))?;
    svcs.create(&PostParams::default(), &svc).await?;
    // No pods yet: one empty slice.
    let s = common::wait_for("empty slice", Duration::from_secs(5), || {
        let slices = slices.clone();
        async move {
            let s = slices_of(&slices, "web").await;
            (s.len() == 1).then_some(s)
        }
    })
    .await;
    let meta = &s[0].metadata;
    assert!(meta.name.as_ref().unwrap().starts_with("web-"));
    assert_eq!(meta.labels.as_ref().unwrap()["endpointslice.kubernetes.io/managed-by"], "endpointslice-controller.k8s.io");
    assert_eq!(meta.owner_references.as_ref().unwrap()[0].kind, "Service");
    assert_eq!(s[0].address_type, "IPv4");
    assert!(s[0].endpoints.is_empty());

    for (i, ready) in [(1, true), (2, false)] {
        let p: Pod = serde_json::from_value(json!({"metadata": {"name": format!("web-{i}"), "labels": {"app": "web"}},
            "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "x:1", "ports": [{"name": "http", "containerPort": 8080}]}]}}))?;
        pods.create(&PostParams::default(), &p).await?;
        pods.patch_status(&format!("web-{i}"), &PatchParams::default(), &Patch::Merge(json!({"status": {"phase": "Running", "podIP": format!("10.244.1.{i}"),
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}}))).await?;
    }
    // A matching pod without an IP and a non-matching pod are left out.
    let p: Pod = serde_json::from_value(json!({"metadata": {"name": "noip", "labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}}))?;
    pods.create(&PostParams::default(), &p).await?;
    let s = common::wait_for("two endpoints", Duration::from_secs(5), || {
        let slices = slices.clone();
        async move {
            let s = slices_of(&slices, "web").await;
            (endpoints(&s).len() == 2).then_some(s)
        }
    })
    .await;
    assert_eq!(endpoints(&s), vec![("10.244.1.1".into(), true, true, false), ("10.244.1.2".into(), false, false, false)]);
    let mut ports: Vec<(String, i32)> = s[0].ports.clone().unwrap().into_iter().map(|p| (p.name.unwrap(), p.port.unwrap())).collect();
    ports.sort();
    assert_eq!(ports, vec![("http".into(), 8080), ("metrics".into(), 9091)]);
    let ep = &s[0].endpoints[0];
    assert_eq!(ep.node_name.as_deref(), Some("node-a"));
    assert_eq!(ep.target_ref.as_ref().unwrap().name.as_deref(), Some("web-1"));

    // Readiness change, then graceful deletion → terminating.
    pods.patch_status("web-2", &PatchParams::default(), &Patch::Merge(json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}))).await?;
    pods.delete("web-1", &DeleteParams::default()).await?;
    common::wait_for("terminating + ready endpoints", Duration::from_secs(5), || {
        let slices = slices.clone();
        async move {
            let e = endpoints(&slices_of(&slices, "web").await);
            (e == vec![("10.244.1.1".to_string(), false, true, true), ("10.244.1.2".to_string(), true, true, false)]).then_some(())
        }
    })
    .await;
    // The legacy Endpoints object mirrors it (terminating pods left out).
    let eps: Api<k8s_openapi::api::core::v1::Endpoints> = Api::namespaced(c.clone(), "default");
    let e = common::wait_for("endpoints", Duration::from_secs(5), || {
        let eps = eps.clone();
        async move {
            let e = eps.get("web").await.ok()?;
            let s = e.subsets.clone()?;
            (s.len() == 1 && s[0].addresses.as_ref().map(Vec::len) == Some(1) && s[0].not_ready_addresses.is_none()).then_some(e)
        }
    })
    .await;
    assert_eq!(e.subsets.unwrap()[0].addresses.as_ref().unwrap()[0].ip, "10.244.1.2");
    // Deleting the service removes its slices and endpoints.
    svcs.delete("web", &DeleteParams::default()).await?;
    common::wait_for("slices gone", Duration::from_secs(5), || {
        let slices = slices.clone();
        async move { slices_of(&slices, "web").await.is_empty().then_some(()) }
    })
    .await;
    common::wait_for("endpoints gone", Duration::from_secs(5), || {
        let eps = eps.clone();
        async move { eps.get_opt("web").await.ok()?.is_none().then_some(()) }
    })
    .await;
    h.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_lifecycle_survives_malformed_nodes_and_can_be_disabled() -> anyhow::Result<()> {
    let h = common::start_with(|c| {
        c.node_monitor_grace_period = Duration::from_millis(200);
        c.node_monitor_period = Duration::from_millis(20);
    })
    .await;
    let api = h.api();
    api.create(fake_apiserver::resources::NODES, "", json!({"metadata": {"name": "odd"}, "status": "garbage", "spec": {"taints": 7}})).unwrap();
    api.create(fake_apiserver::resources::NODES, "", json!({"metadata": {"name": "fresh"}, "status": {"conditions": [1, {"type": "Ready", "status": "True"}]}})).unwrap();
    for name in ["odd", "fresh"] {
        common::wait_for("node Unknown", Duration::from_secs(5), || {
            let n = h.store().get(fake_apiserver::resources::NODES, "", name);
            let ok = n.is_some_and(|n| {
                n.value["status"]["conditions"].as_array().is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "Unknown"))
            });
            async move { ok.then_some(()) }
        })
        .await;
    }
    let odd = h.store().get(fake_apiserver::resources::NODES, "", "odd").unwrap();
    assert_eq!(odd.value["status"]["conditions"][0]["reason"], "NodeStatusNeverUpdated");
    h.shutdown().await;

    // Switched off: nothing changes the node.
    let h = common::start_with(|c| {
        c.node_lifecycle = false;
        c.endpointslices = false;
        c.node_monitor_grace_period = Duration::from_millis(50);
    })
    .await;
    let c = common::kube_client(&h);
    let nodes: Api<Node> = Api::all(c.clone());
    let node: Node = serde_json::from_value(json!({"metadata": {"name": "n"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}))?;
    nodes.create(&PostParams::default(), &node).await?;
    let svcs: Api<Service> = Api::namespaced(c.clone(), "default");
    svcs.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "s"}, "spec": {"selector": {"a": "b"}, "ports": [{"port": 1}]}}))?).await?;
    // Neither controller acts within 8 grace periods.
    let slices: Api<EndpointSlice> = Api::namespaced(c.clone(), "default");
    let acted = tokio::time::timeout(Duration::from_millis(400), common::wait_for("a controller to act", Duration::from_secs(5), || {
        let (nodes, slices) = (nodes.clone(), slices.clone());
        async move {
            let n = nodes.get("n").await.ok()?;
            (ready_status(&n)?.0 != "True" || !slices_of(&slices, "s").await.is_empty()).then_some(())
        }
    }))
    .await;
    assert!(acted.is_err(), "a disabled controller changed something");
    assert_eq!(ready_status(&nodes.get("n").await?).unwrap().0, "True");
    assert!(slices_of(&slices, "s").await.is_empty());
    h.shutdown().await;
    Ok(())
}

/// Events expire `event_ttl` after their last write (upstream `--event-ttl`): an untouched
/// Event goes, one that keeps being updated (a repeat raising `count`) stays until it stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_expire_after_their_last_write() -> anyhow::Result<()> {
    use k8s_openapi::api::core::v1::Event;
    let ttl = Duration::from_millis(600);
    let h = common::start_with(|c| c.event_ttl = ttl).await;
    let events: Api<Event> = Api::namespaced(common::kube_client(&h), "default");
    let ev = |name: &str| -> Event {
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"}, "reason": "Test", "message": "m", "count": 1}))
        .unwrap()
    };
    events.create(&PostParams::default(), &ev("quiet")).await?;
    events.create(&PostParams::default(), &ev("busy")).await?;
    let start = std::time::Instant::now();
    // Keep "busy" written for twice the TTL; "quiet" must be gone meanwhile.
    let mut count = 1;
    let mut last_write = start;
    while start.elapsed() < ttl * 2 {
        count += 1;
        events.patch("busy", &PatchParams::default(), &Patch::Merge(&json!({"count": count}))).await?;
        last_write = std::time::Instant::now();
        tokio::time::sleep(ttl / 6).await;
    }
    assert!(events.get_opt("quiet").await?.is_none(), "an Event untouched for twice the TTL is still there");
    assert!(events.get_opt("busy").await?.is_some(), "an Event written every TTL/6 expired");
    while events.get_opt("busy").await?.is_some() {
        assert!(last_write.elapsed() < ttl * 3, "the busy Event did not expire after its writes stopped");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let gone = last_write.elapsed();
    assert!(gone + Duration::from_millis(20) >= ttl, "the busy Event expired {gone:?} after its last write (TTL {ttl:?})");
    h.shutdown().await;
    Ok(())
}
