//! kube-rs against the fake API server: CRUD, patches, conflicts, watchers and reflectors.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::json;

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "busybox", "env": [{"name": "A", "value": "1"}]}]},
    }))
    .unwrap()
}

fn cm(name: &str, v: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": v}})).unwrap()
}

#[tokio::test]
async fn typed_crud_of_core_resources() -> anyhow::Result<()> {
    let h = common::start().await;
    let c = common::kube_client(&h);

    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let p = pods.create(&PostParams::default(), &pod("p1")).await?;
    assert!(p.metadata.uid.is_some());
    assert!(p.metadata.creation_timestamp.is_some());
    let spec = p.spec.as_ref().unwrap();
    assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
    assert_eq!(spec.dns_policy.as_deref(), Some("ClusterFirst"));
    assert_eq!(spec.termination_grace_period_seconds, Some(30));
    assert_eq!(spec.containers[0].image_pull_policy.as_deref(), Some("Always"));
    assert_eq!(p.status.as_ref().unwrap().phase.as_deref(), Some("Pending"));
    assert_eq!(p.status.as_ref().unwrap().qos_class.as_deref(), Some("BestEffort"));
    let got = pods.get("p1").await?;
    assert_eq!(got.metadata.uid, p.metadata.uid);
    assert_eq!(pods.list(&ListParams::default()).await?.items.len(), 1);
    let all: Api<Pod> = Api::all(c.clone());
    assert_eq!(all.list(&ListParams::default()).await?.items.len(), 1);
    pods.delete("p1", &DeleteParams::default()).await?;
    assert!(pods.get_opt("p1").await?.is_none());

    let nodes: Api<Node> = Api::all(c.clone());
    let n: Node = serde_json::from_value(json!({"metadata": {"name": "node-a"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}))?;
    nodes.create(&PostParams::default(), &n).await?;
    let mut n = nodes.get("node-a").await?;
    n.metadata.labels = Some(BTreeMap::from([("role".to_string(), "worker".to_string())]));
    let n2 = nodes.replace("node-a", &PostParams::default(), &n).await?;
    assert_eq!(n2.metadata.labels.unwrap()["role"], "worker");
    // status updates go through /status
    let mut st = nodes.get_status("node-a").await?;
    st.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].status = "False".into();
    let after = nodes.replace_status("node-a", &PostParams::default(), &st).await?;
    assert_eq!(after.status.unwrap().conditions.unwrap()[0].status, "False");

    let svcs: Api<Service> = Api::namespaced(c.clone(), "default");
    let s: Service = serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}))?;
    let s = svcs.create(&PostParams::default(), &s).await?;
    let ip = s.spec.as_ref().unwrap().cluster_ip.clone().unwrap();
    assert!(ip.starts_with("10.96.") && ip != "10.96.0.0" && ip != "10.96.0.1", "{ip}");
    assert_eq!(s.spec.unwrap().ports.unwrap()[0].target_port, Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(80)));

    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    cms.create(&PostParams::default(), &cm("c1", "a")).await?;
    let mut got = cms.get("c1").await?;
    got.data = Some(BTreeMap::from([("k".to_string(), "b".to_string())]));
    assert_eq!(cms.replace("c1", &PostParams::default(), &got).await?.data.unwrap()["k"], "b");

    let leases: Api<Lease> = Api::namespaced(c.clone(), "kube-node-lease");
    let l: Lease = serde_json::from_value(json!({"metadata": {"name": "node-a"}, "spec": {"holderIdentity": "node-a", "leaseDurationSeconds": 40}}))?;
    leases.create(&PostParams::default(), &l).await?;
    let got = leases.get("node-a").await?;
    assert_eq!(got.spec.unwrap().lease_duration_seconds, Some(40));
    h.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn all_patch_types_and_conflicts() -> anyhow::Result<()> {
    let h = common::start().await;
    let c = common::kube_client(&h);
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    pods.create(&PostParams::default(), &pod("p")).await?;

    let p = pods.patch("p", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"m": "1"}}}))).await?;
    assert_eq!(p.metadata.labels.as_ref().unwrap()["m"], "1");
    let jp: json_patch::Patch = serde_json::from_value(json!([{"op": "add", "path": "/metadata/labels/j", "value": "2"}]))?;
    let p = pods.patch("p", &PatchParams::default(), &Patch::<()>::Json(jp)).await?;
    assert_eq!(p.metadata.labels.as_ref().unwrap()["j"], "2");
    // strategic: merge env by name, keep other containers' fields
    let p = pods
        .patch("p", &PatchParams::default(), &Patch::Strategic(json!({"spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}})))
        .await?;
    let c0 = &p.spec.as_ref().unwrap().containers[0];
    assert_eq!(c0.image.as_deref(), Some("busybox:1.36"));
    assert_eq!(c0.env.as_ref().unwrap()[0].name, "A", "strategic merge kept env");
    // apply
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let ap = PatchParams::apply("test-manager");
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ac", "labels": {"a": "1", "b": "2"}}, "data": {"x": "1", "y": "2"}});
    let created = cms.patch("ac", &ap, &Patch::Apply(applied)).await?;
    assert_eq!(created.data.as_ref().unwrap()["y"], "2");
    assert_eq!(created.metadata.managed_fields.as_ref().unwrap()[0].manager.as_deref(), Some("test-manager"));
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ac", "labels": {"a": "1"}}, "data": {"x": "3"}});
    let updated = cms.patch("ac", &ap, &Patch::Apply(applied)).await?;
    assert_eq!(updated.data.as_ref().unwrap().get("x").map(String::as_str), Some("3"));
    assert!(!updated.data.as_ref().unwrap().contains_key("y"), "field no longer applied is removed");
    assert!(!updated.metadata.labels.as_ref().unwrap().contains_key("b"));

    // 409 on a stale resourceVersion
    let stale = cms.get("ac").await?;
    cms.patch("ac", &PatchParams::default(), &Patch::Merge(json!({"data": {"z": "1"}}))).await?;
    let err = cms.replace("ac", &PostParams::default(), &stale).await.unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert_eq!(s.reason, "Conflict");
        }
        other => panic!("expected 409, got {other:?}"),
    }
    // 409 AlreadyExists
    let err = cms.create(&PostParams::default(), &cm("ac", "x")).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.reason == "AlreadyExists"), "{err:?}");
    // 404
    let err = cms.get("nope").await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 404 && s.reason == "NotFound"), "{err:?}");
    h.shutdown().await;
    Ok(())
}

async fn watcher_sees_changes(cfg: watcher::Config, streaming: bool) -> anyhow::Result<()> {
    let h = common::start().await;
    let c = common::kube_client(&h);
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    cms.create(&PostParams::default(), &cm("pre", "0")).await?;
    let mut stream = watcher(cms.clone(), cfg).boxed();
    let mut init_seen = false;
    // Initial state arrives first.
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(5), stream.try_next()).await?? {
        match ev {
            watcher::Event::InitApply(o) => init_seen |= o.metadata.name.as_deref() == Some("pre"),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert!(init_seen);
    cms.create(&PostParams::default(), &cm("live", "1")).await?;
    cms.patch("live", &PatchParams::default(), &Patch::Merge(json!({"data": {"k": "2"}}))).await?;
    cms.delete("live", &DeleteParams::default()).await?;
    let mut got = Vec::new();
    while got.len() < 3 {
        match tokio::time::timeout(Duration::from_secs(5), stream.try_next()).await?? {
            Some(watcher::Event::Apply(o)) => got.push(format!("apply:{}", o.data.unwrap()["k"])),
            Some(watcher::Event::Delete(o)) => got.push(format!("delete:{}", o.metadata.name.unwrap())),
            Some(_) => {}
            None => break,
        }
    }
    assert_eq!(got, vec!["apply:1", "apply:2", "delete:live"]);
    let streamed = h.audit().iter().any(|e| e.verb == "watch" && e.query.contains("sendInitialEvents=true"));
    assert_eq!(streamed, streaming);
    h.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn watcher_list_then_watch() -> anyhow::Result<()> {
    watcher_sees_changes(watcher::Config::default(), false).await
}

#[tokio::test]
async fn watcher_streaming_lists() -> anyhow::Result<()> {
    watcher_sees_changes(watcher::Config::default().streaming_lists(), true).await
}

#[tokio::test]
async fn reflector_stays_in_sync_through_1000_changes() -> anyhow::Result<()> {
    let h = common::start().await;
    let c = common::kube_client(&h);
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let (reader, writer) = reflector::store();
    let rf = reflector(writer, watcher(cms.clone(), watcher::Config::default())).default_backoff().applied_objects();
    let task = tokio::spawn(rf.for_each(|_| async {}));
    reader.wait_until_ready().await?;
    // 1000 changes: 400 creates, 400 updates, 200 deletes.
    for i in 0..400 {
        cms.create(&PostParams::default(), &cm(&format!("c{i}"), "0")).await?;
    }
    for i in 0..400 {
        cms.patch(&format!("c{i}"), &PatchParams::default(), &Patch::Merge(json!({"data": {"k": format!("v{i}")}}))).await?;
    }
    for i in 0..200 {
        cms.delete(&format!("c{}", i * 2), &DeleteParams::default()).await?;
    }
    let expected: BTreeMap<String, String> = cms
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .map(|c| (c.metadata.name.unwrap(), c.data.unwrap()["k"].clone()))
        .collect();
    assert_eq!(expected.len(), 200);
    common::wait_for("reflector to converge", Duration::from_secs(10), || {
        let state: BTreeMap<String, String> = reader
            .state()
            .iter()
            .map(|c| (c.metadata.name.clone().unwrap(), c.data.as_ref().unwrap()["k"].clone()))
            .collect();
        let ok = state == expected;
        async move { ok.then_some(()) }
    })
    .await;
    task.abort();
    h.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn expired_history_gives_410_then_relist_works() -> anyhow::Result<()> {
    let h = common::start_with(|c| c.watch_history = 5).await;
    let c = common::kube_client(&h);
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let list = cms.list(&ListParams::default()).await?;
    let old_rv = list.metadata.resource_version.unwrap();
    for i in 0..20 {
        cms.create(&PostParams::default(), &cm(&format!("c{i}"), "0")).await?;
    }
    let mut s = cms.watch(&WatchParams::default(), &old_rv).await?.boxed();
    match tokio::time::timeout(Duration::from_secs(5), s.try_next()).await?? {
        Some(WatchEvent::Error(e)) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
        }
        other => panic!("expected 410 error event, got {other:?}"),
    }
    // Clean relist and watch from the new version.
    let list = cms.list(&ListParams::default()).await?;
    assert_eq!(list.items.len(), 20);
    let rv = list.metadata.resource_version.unwrap();
    let mut s = cms.watch(&WatchParams::default(), &rv).await?.boxed();
    cms.create(&PostParams::default(), &cm("after", "1")).await?;
    match tokio::time::timeout(Duration::from_secs(5), s.try_next()).await?? {
        Some(WatchEvent::Added(o)) => assert_eq!(o.metadata.name.as_deref(), Some("after")),
        other => panic!("expected ADDED, got {other:?}"),
    }
    // A watcher forced to resume from an expired version (watch closed after each event by a
    // fault) relists and its reflector still converges.
    h.add_fault(fake_apiserver::FaultRule { verb: Some("watch".into()), close_watch_after: Some(1), ..Default::default() });
    h.add_fault(fake_apiserver::FaultRule { verb: Some("watch".into()), latency_ms: Some(300), ..Default::default() });
    let (reader, writer) = reflector::store();
    let rf = reflector(writer, watcher(cms.clone(), watcher::Config::default())).default_backoff().applied_objects();
    let task = tokio::spawn(rf.for_each(|_| async {}));
    reader.wait_until_ready().await?;
    for i in 0..30 {
        cms.create(&PostParams::default(), &cm(&format!("d{i}"), "0")).await?;
    }
    common::wait_for("reflector after 410", Duration::from_secs(20), || {
        let n = reader.state().len();
        async move { (n == 51).then_some(()) }
    })
    .await;
    let lists = h.audit().iter().filter(|e| e.verb == "list" && e.path.ends_with("/configmaps")).count();
    let gone = h.audit().iter().filter(|e| e.verb == "watch").count();
    assert!(lists >= 4, "watcher relisted after 410 ({lists} lists, {gone} watches)");
    task.abort();
    h.shutdown().await;
    Ok(())
}
