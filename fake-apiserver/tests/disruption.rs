//! PodDisruptionBudgets end to end: the disruption controller's status arithmetic, the eviction
//! subresource honouring budgets (texts and codes as upstream), and `kubectl drain` retrying
//! against a blocking budget. No kubelet runs: the tests set pod phases and Ready conditions
//! themselves, and force-delete pods left Terminating by graceful evictions.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fake_apiserver::api::DeleteOpts;
use fake_apiserver::patch::PatchType;
use fake_apiserver::{Handle, resources};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

const WAIT: Duration = Duration::from_secs(20);
const KUBECTL: &str = "/usr/bin/kubectl";
const VIOLATES: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

type C = Client<HttpConnector, Full<Bytes>>;

fn client() -> C {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn call(c: &C, method: &str, url: &str, body: &str) -> anyhow::Result<(u16, Value)> {
    call_h(c, method, url, &[("content-type", "application/json")], body).await
}

async fn call_h(c: &C, method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> anyhow::Result<(u16, Value)> {
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = c.request(req.body(Full::new(Bytes::from(body.to_string())))?).await?;
    let code = resp.status().as_u16();
    let b = resp.into_body().collect().await?.to_bytes();
    Ok((code, serde_json::from_slice(&b).unwrap_or(Value::Null)))
}

/// A server running only the disruption controller (when `disruption`).
async fn start(disruption: bool) -> Handle {
    common::start_with(|c| {
        c.scheduler = false;
        c.node_lifecycle = false;
        c.endpointslices = false;
        c.workloads = false;
        c.daemonsets = false;
        c.taint_eviction = false;
        c.pod_gc = false;
        c.disruption = disruption;
    })
    .await
}

fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Create pod `name` in `default` with `meta` (labels, ownerReferences), bound to `node`.
fn pod(h: &Handle, name: &str, meta: Value, node: Option<&str>) -> anyhow::Result<()> {
    let mut p = json!({"metadata": meta, "spec": {"containers": [{"name": "c", "image": "img"}]}});
    p["metadata"]["name"] = json!(name);
    if let Some(n) = node {
        p["spec"]["nodeName"] = json!(n);
    }
    h.api().create(resources::PODS, "default", p)?;
    Ok(())
}

/// Play the kubelet: set the pod's phase and Ready condition.
fn set_status(h: &Handle, name: &str, phase: &str, ready: bool) -> anyhow::Result<()> {
    let ready = if ready { "True" } else { "False" };
    let body = json!({"status": {"phase": phase, "conditions": [{"type": "Ready", "status": ready, "lastTransitionTime": now()}]}});
    h.api().patch(resources::PODS, "default", name, PatchType::Merge, body.to_string().as_bytes(), Some("status"), None)?;
    Ok(())
}

/// A Running, Ready pod labelled `app`.
fn ready_pod(h: &Handle, name: &str, app: &str, node: Option<&str>) -> anyhow::Result<()> {
    pod(h, name, json!({"labels": {"app": app}}), node)?;
    set_status(h, name, "Running", true)
}

fn budget(name: &str, app: &str, rule: Value) -> Value {
    let mut b = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": app}}}});
    if let (Some(spec), Some(r)) = (b["spec"].as_object_mut(), rule.as_object()) {
        spec.extend(r.clone());
    }
    b
}

fn create_budget(h: &Handle, name: &str, app: &str, rule: Value) -> anyhow::Result<()> {
    h.api().create(resources::PODDISRUPTIONBUDGETS, "default", budget(name, app, rule))?;
    Ok(())
}

/// Wait until the budget's status has observed its generation and `ok` holds.
async fn settled(h: &Handle, name: &str, ok: impl Fn(&Value) -> bool) -> Value {
    common::wait_for(&format!("status of budget {name}"), WAIT, || {
        let found = h.store().get(resources::PODDISRUPTIONBUDGETS, "default", name).map(|o| o.value.clone()).filter(|v| {
            v.pointer("/status/observedGeneration") == v.pointer("/metadata/generation") && ok(&v["status"])
        });
        async move { found.map(|v| v["status"].clone()) }
    })
    .await
}

fn counts(s: &Value) -> [i64; 4] {
    ["currentHealthy", "desiredHealthy", "expectedPods", "disruptionsAllowed"].map(|k| s[k].as_i64().unwrap_or(-1))
}

fn condition(s: &Value) -> (String, String, String) {
    let c = s["conditions"].as_array().and_then(|c| c.iter().find(|c| c["type"] == "DisruptionAllowed")).cloned().unwrap_or_default();
    let f = |k: &str| c[k].as_str().unwrap_or("").to_string();
    (f("status"), f("reason"), f("message"))
}

fn eviction(name: &str, delete_options: Value) -> String {
    json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": "default"}, "deleteOptions": delete_options}).to_string()
}

fn eviction_url(h: &Handle, pod: &str) -> String {
    format!("{}/api/v1/namespaces/default/pods/{pod}/eviction", h.url())
}

fn stored_pod(h: &Handle, name: &str) -> Option<Value> {
    h.store().get(resources::PODS, "default", name).map(|o| o.value.clone())
}

fn pod_condition(p: &Value, ty: &str) -> Option<Value> {
    p.pointer("/status/conditions")?.as_array()?.iter().find(|c| c["type"] == ty).cloned()
}

/// An apps/v1 object of `kind` with `replicas`, selecting and templating `app`.
fn workload(h: &Handle, res: resources::ResourceId, name: &str, app: &str, replicas: i64, owner: Option<Value>) -> anyhow::Result<String> {
    let mut w = json!({"metadata": {"name": name}, "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
        "template": {"metadata": {"labels": {"app": app}}, "spec": {"containers": [{"name": "c", "image": "img"}]}}}});
    if let Some(o) = owner {
        w["metadata"]["ownerReferences"] = json!([o]);
    }
    let obj = h.api().create(res, "default", w)?;
    Ok(obj.value["metadata"]["uid"].as_str().unwrap_or("").to_string())
}

fn controller_ref(kind: &str, name: &str, uid: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": uid, "controller": true})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_follows_ready_pods_and_controller_scale() -> anyhow::Result<()> {
    let h = start(true).await;
    // Integer minAvailable: expected = matching pods, healthy = Ready ones.
    for n in ["web-1", "web-2", "web-3"] {
        ready_pod(&h, n, "web", Some("node-a"))?;
    }
    pod(&h, "web-4", json!({"labels": {"app": "web"}}), Some("node-a"))?;
    set_status(&h, "web-4", "Running", false)?;
    create_budget(&h, "web", "web", json!({"minAvailable": 2}))?;
    let s = settled(&h, "web", |s| counts(s) == [3, 2, 4, 1]).await;
    assert_eq!(condition(&s), ("True".into(), "SufficientPods".into(), String::new()));
    // A pod turning unready, then one being deleted.
    set_status(&h, "web-1", "Running", false)?;
    let s = settled(&h, "web", |s| counts(s) == [2, 2, 4, 0]).await;
    assert_eq!(condition(&s), ("False".into(), "InsufficientPods".into(), String::new()));
    h.api().delete(resources::PODS, "default", "web-2", &DeleteOpts::default())?;
    settled(&h, "web", |s| counts(s) == [1, 2, 4, 0]).await;
    // A spec change bumps the generation; the status follows it.
    h.api().patch(resources::PODDISRUPTIONBUDGETS, "default", "web", PatchType::Merge, br#"{"spec":{"minAvailable":0}}"#, None, None)?;
    let s = settled(&h, "web", |s| counts(s) == [1, 0, 4, 1]).await;
    assert_eq!(s["observedGeneration"], 2);

    // Percentage maxUnavailable: the scale of the pods' ReplicaSet's Deployment (4), not the 2 pods.
    let dep = workload(&h, resources::DEPLOYMENTS, "db", "db", 4, None)?;
    let rs = workload(&h, resources::REPLICASETS, "db-1", "db", 2, Some(controller_ref("Deployment", "db", &dep)))?;
    for n in ["db-a", "db-b"] {
        pod(&h, n, json!({"labels": {"app": "db"}, "ownerReferences": [controller_ref("ReplicaSet", "db-1", &rs)]}), Some("node-a"))?;
        set_status(&h, n, "Running", true)?;
    }
    create_budget(&h, "db", "db", json!({"maxUnavailable": "50%"}))?;
    settled(&h, "db", |s| counts(s) == [2, 2, 4, 0]).await;
    // minAvailable as a percentage of the same scale: ceil(25% of 4) = 1.
    h.api().patch(resources::PODDISRUPTIONBUDGETS, "default", "db", PatchType::Merge, br#"{"spec":{"maxUnavailable":null,"minAvailable":"25%"}}"#, None, None)?;
    settled(&h, "db", |s| counts(s) == [2, 1, 4, 1]).await;

    // DaemonSet pods have no scale subresource: the sync fails and no disruption is allowed.
    pod(&h, "agent-a", json!({"labels": {"app": "agent"}, "ownerReferences": [controller_ref("DaemonSet", "agent", "ds-uid")]}), Some("node-a"))?;
    set_status(&h, "agent-a", "Running", true)?;
    create_budget(&h, "agent", "agent", json!({"maxUnavailable": 1}))?;
    let s = common::wait_for("SyncFailed", WAIT, || {
        let s = h.store().get(resources::PODDISRUPTIONBUDGETS, "default", "agent").map(|o| o.value["status"].clone());
        async move { s.filter(|s| condition(s).1 == "SyncFailed") }
    })
    .await;
    assert_eq!(condition(&s), ("False".into(), "SyncFailed".into(), "daemonsets.apps does not implement the scale subresource".into()));
    assert_eq!(s["disruptionsAllowed"], 0);
    h.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_and_table() -> anyhow::Result<()> {
    let h = start(true).await;
    let c = client();
    let url = format!("{}/apis/policy/v1/namespaces/default/poddisruptionbudgets", h.url());
    let both = budget("both", "web", json!({"minAvailable": 1, "maxUnavailable": 1})).to_string();
    let (code, s) = call(&c, "POST", &url, &both).await?;
    assert_eq!((code, s["reason"].as_str()), (422, Some("Invalid")));
    assert!(s["message"].as_str().unwrap_or("").ends_with("minAvailable and maxUnavailable cannot be both set"), "{s}");
    let (code, s) = call(&c, "POST", &url, &budget("neg", "web", json!({"minAvailable": -1})).to_string()).await?;
    assert_eq!(code, 422);
    assert_eq!(s["details"]["causes"][0], json!({"reason": "FieldValueInvalid", "field": "spec.minAvailable",
        "message": "Invalid value: -1: must be greater than or equal to 0"}));
    // Status sent on create is dropped: the budget allows nothing until the controller says so.
    let mut forged = budget("forged", "web", json!({"minAvailable": 1}));
    forged["status"] = json!({"disruptionsAllowed": 5, "observedGeneration": 1});
    let (code, b) = call(&c, "POST", &url, &forged.to_string()).await?;
    assert_eq!((code, b.get("status").and_then(|s| s.get("disruptionsAllowed"))), (201, None));
    let (code, _) = call(&c, "POST", &url, &budget("pct", "db", json!({"maxUnavailable": "30%"})).to_string()).await?;
    assert_eq!(code, 201);
    settled(&h, "forged", |s| counts(s) == [0, 1, 0, 0]).await;
    let accept = [("accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json")];
    let (code, t) = call_h(&c, "GET", &url, &accept, "").await?;
    assert_eq!(code, 200);
    let cols: Vec<&str> = t["columnDefinitions"].as_array().into_iter().flatten().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(cols, ["Name", "Min Available", "Max Unavailable", "Allowed Disruptions", "Age"]);
    let rows: Vec<Value> = t["rows"].as_array().into_iter().flatten().map(|r| json!(r["cells"].as_array().map(|c| c[..4].to_vec()))).collect();
    assert_eq!(rows, vec![json!(["forged", "1", "N/A", 0]), json!(["pct", "N/A", "30%", 0])]);
    h.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_allowed_then_refused_with_budget_cause() -> anyhow::Result<()> {
    let h = start(true).await;
    let c = client();
    for n in ["web-1", "web-2", "web-3"] {
        ready_pod(&h, n, "web", Some("node-a"))?;
    }
    create_budget(&h, "web-pdb", "web", json!({"minAvailable": 2}))?;
    settled(&h, "web-pdb", |s| counts(s) == [3, 2, 3, 1]).await;

    // The Eviction must name the pod; a missing pod is 404.
    let (code, s) = call(&c, "POST", &eviction_url(&h, "web-1"), &eviction("web-2", json!({}))).await?;
    assert_eq!((code, s["message"].as_str()), (400, Some("name in URL does not match name in Eviction object")));
    let (code, s) = call(&c, "POST", &eviction_url(&h, "nope"), &eviction("nope", json!({}))).await?;
    assert_eq!((code, s["message"].as_str()), (404, Some("pods \"nope\" not found")));
    // A dry run spends nothing.
    let (code, _) = call(&c, "POST", &eviction_url(&h, "web-1"), &eviction("web-1", json!({"dryRun": ["All"]}))).await?;
    assert_eq!(code, 201);
    let p = stored_pod(&h, "web-1").unwrap_or_default();
    assert!(p.pointer("/metadata/deletionTimestamp").is_none() && pod_condition(&p, "DisruptionTarget").is_none());
    settled(&h, "web-pdb", |s| counts(s) == [3, 2, 3, 1]).await;

    // The one allowed disruption: Success, the pod marked and gracefully deleted (it is bound).
    let (code, s) = call(&c, "POST", &eviction_url(&h, "web-1"), &eviction("web-1", json!({}))).await?;
    assert_eq!(s, json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}));
    assert_eq!(code, 201);
    let p = stored_pod(&h, "web-1").unwrap_or_default();
    assert!(p.pointer("/metadata/deletionTimestamp").is_some());
    let cond = pod_condition(&p, "DisruptionTarget").unwrap_or_default();
    assert_eq!((&cond["status"], &cond["reason"], &cond["message"]), (&json!("True"), &json!("EvictionByEvictionAPI"), &json!("Eviction API: evicting")));
    settled(&h, "web-pdb", |s| counts(s) == [2, 2, 3, 0] && s.get("disruptedPods").is_none()).await;

    // No disruption left: 429 with the budget's numbers.
    let (code, s) = call(&c, "POST", &eviction_url(&h, "web-2"), &eviction("web-2", json!({}))).await?;
    assert_eq!(code, 429);
    assert_eq!(s, json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": VIOLATES,
        "reason": "TooManyRequests", "code": 429, "details": {"causes": [{"reason": "DisruptionBudget",
        "message": "The disruption budget web-pdb needs 2 healthy pods and has 2 currently"}]}}));
    let p = stored_pod(&h, "web-2").unwrap_or_default();
    assert!(p.pointer("/metadata/deletionTimestamp").is_none() && pod_condition(&p, "DisruptionTarget").is_none());
    h.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_evictions_never_exceed_the_budget() -> anyhow::Result<()> {
    let h = start(true).await;
    let names: Vec<String> = (1..=6).map(|i| format!("web-{i}")).collect();
    for n in &names {
        ready_pod(&h, n, "web", None)?;
    }
    create_budget(&h, "web", "web", json!({"minAvailable": 4}))?;
    settled(&h, "web", |s| counts(s) == [6, 4, 6, 2]).await;
    let c = client();
    let calls = names.iter().map(|n| {
        let (c, url, body) = (c.clone(), eviction_url(&h, n), eviction(n, json!({})));
        tokio::spawn(async move { call(&c, "POST", &url, &body).await.map(|(code, _)| code).unwrap_or(0) })
    });
    let codes: Vec<u16> = futures::future::join_all(calls).await.into_iter().map(|r| r.unwrap_or(0)).collect();
    assert_eq!(codes.iter().filter(|c| **c == 201).count(), 2, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 429).count(), 4, "{codes:?}");
    let left = names.iter().filter(|n| stored_pod(&h, n).is_some()).count();
    assert_eq!(left, 4);
    settled(&h, "web", |s| counts(s) == [4, 4, 4, 0]).await;
    h.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_under_two_budgets_cannot_be_evicted() -> anyhow::Result<()> {
    let h = start(true).await;
    let c = client();
    ready_pod(&h, "web-1", "web", None)?;
    create_budget(&h, "a", "web", json!({"maxUnavailable": 5}))?;
    let mut b = budget("b", "web", json!({"minAvailable": 0}));
    b["spec"]["selector"] = json!({"matchExpressions": [{"key": "app", "operator": "Exists"}]});
    h.api().create(resources::PODDISRUPTIONBUDGETS, "default", b)?;
    let (code, s) = call(&c, "POST", &eviction_url(&h, "web-1"), &eviction("web-1", json!({}))).await?;
    assert_eq!(code, 500);
    assert_eq!(s, json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.", "code": 500}));
    assert!(stored_pod(&h, "web-1").is_some());
    // An empty selector counts every pod for the controller, but guards none for evictions.
    h.api().delete(resources::PODDISRUPTIONBUDGETS, "default", "b", &DeleteOpts::default())?;
    let mut all = budget("all", "web", json!({"minAvailable": 5}));
    all["spec"]["selector"] = json!({});
    h.api().create(resources::PODDISRUPTIONBUDGETS, "default", all)?;
    settled(&h, "all", |s| counts(s) == [1, 5, 1, 0]).await;
    h.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_terminal_and_unready_pods() -> anyhow::Result<()> {
    let h = start(true).await;
    let c = client();
    for n in ["web-1", "web-2"] {
        ready_pod(&h, n, "web", Some("node-a"))?;
    }
    pod(&h, "web-pending", json!({"labels": {"app": "web"}}), Some("node-a"))?;
    pod(&h, "web-done", json!({"labels": {"app": "web"}}), None)?;
    set_status(&h, "web-done", "Succeeded", false)?;
    pod(&h, "web-unready", json!({"labels": {"app": "web"}}), None)?;
    set_status(&h, "web-unready", "Running", false)?;
    // A budget that blocks every healthy pod: 2 healthy, 2 wanted.
    create_budget(&h, "web", "web", json!({"minAvailable": 2}))?;
    settled(&h, "web", |s| counts(s) == [2, 2, 5, 0]).await;

    // Pending and terminal pods go regardless of the budget, marked DisruptionTarget first.
    let (code, _) = call(&c, "POST", &eviction_url(&h, "web-pending"), &eviction("web-pending", json!({}))).await?;
    assert_eq!(code, 201);
    let p = stored_pod(&h, "web-pending").unwrap_or_default();
    assert!(p.pointer("/metadata/deletionTimestamp").is_some());
    assert_eq!(pod_condition(&p, "DisruptionTarget").map(|c| c["reason"].clone()), Some(json!("EvictionByEvictionAPI")));
    let (code, _) = call(&c, "POST", &eviction_url(&h, "web-done"), &eviction("web-done", json!({}))).await?;
    assert_eq!(code, 201);
    assert!(stored_pod(&h, "web-done").is_none());
    // An unready pod goes while the budget is healthy enough, without spending a disruption.
    let (code, _) = call(&c, "POST", &eviction_url(&h, "web-unready"), &eviction("web-unready", json!({}))).await?;
    assert_eq!(code, 201);
    assert!(stored_pod(&h, "web-unready").is_none());
    let s = settled(&h, "web", |s| counts(s) == [2, 2, 3, 0]).await;
    assert!(s.get("disruptedPods").is_none());
    // Once the budget is short, an unready pod is guarded (IfHealthyBudget) ...
    set_status(&h, "web-1", "Running", false)?;
    settled(&h, "web", |s| counts(s) == [1, 2, 3, 0]).await;
    let (code, s) = call(&c, "POST", &eviction_url(&h, "web-1"), &eviction("web-1", json!({}))).await?;
    assert_eq!((code, s["details"]["causes"][0]["message"].as_str()), (429, Some("The disruption budget web needs 2 healthy pods and has 1 currently")));
    // ... unless the policy is AlwaysAllow.
    h.api().patch(resources::PODDISRUPTIONBUDGETS, "default", "web", PatchType::Merge, br#"{"spec":{"unhealthyPodEvictionPolicy":"AlwaysAllow"}}"#, None, None)?;
    settled(&h, "web", |s| counts(s) == [1, 2, 3, 0]).await;
    let (code, _) = call(&c, "POST", &eviction_url(&h, "web-1"), &eviction("web-1", json!({}))).await?;
    assert_eq!(code, 201);
    assert!(stored_pod(&h, "web-1").and_then(|p| p.pointer("/metadata/deletionTimestamp").cloned()).is_some());
    h.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_are_honoured_without_the_controller() -> anyhow::Result<()> {
    let h = start(false).await;
    let c = client();
    ready_pod(&h, "web-1", "web", None)?;
    create_budget(&h, "web", "web", json!({"minAvailable": 0}))?;
    // The budget's status has not observed generation 1 yet.
    let (code, s) = call(&c, "POST", &eviction_url(&h, "web-1"), &eviction("web-1", json!({}))).await?;
    assert_eq!((code, s["message"].as_str()), (429, Some(VIOLATES)));
    assert_eq!(s["details"], json!({"causes": [{"reason": "DisruptionBudget", "message": "The disruption budget web is still being processed by the server."}],
        "retryAfterSeconds": 10}));
    // Written by hand, the status lets one eviction through and records it.
    let status = json!({"status": {"observedGeneration": 1, "disruptionsAllowed": 1, "currentHealthy": 1, "desiredHealthy": 0, "expectedPods": 1}});
    h.api().patch(resources::PODDISRUPTIONBUDGETS, "default", "web", PatchType::Merge, status.to_string().as_bytes(), Some("status"), None)?;
    let (code, _) = call(&c, "POST", &eviction_url(&h, "web-1"), &eviction("web-1", json!({}))).await?;
    assert_eq!(code, 201);
    let b = h.store().get(resources::PODDISRUPTIONBUDGETS, "default", "web").map(|o| o.value["status"].clone()).unwrap_or_default();
    assert_eq!(b["disruptionsAllowed"], 0);
    assert!(b["disruptedPods"]["web-1"].is_string(), "{b}");
    assert_eq!(condition(&b).1, "InsufficientPods");
    h.shutdown().await;
    Ok(())
}

/// Collect a child's stderr lines as they come.
fn collect_lines(stream: tokio::process::ChildStderr) -> Arc<parking_lot::Mutex<Vec<String>>> {
    let lines = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let sink = lines.clone();
    tokio::spawn(async move {
        let mut r = BufReader::new(stream).lines();
        while let Ok(Some(l)) = r.next_line().await {
            sink.lock().push(l);
        }
    });
    lines
}

/// Force-delete (grace 0) every listed pod left Terminating; `true` once all are gone.
fn finish_terminating(h: &Handle, names: &[&str]) -> bool {
    let force = DeleteOpts { grace_period_seconds: Some(0), ..DeleteOpts::default() };
    for n in names {
        if stored_pod(h, n).is_some_and(|p| p.pointer("/metadata/deletionTimestamp").is_some()) {
            let _ = h.api().delete(resources::PODS, "default", n, &force);
        }
    }
    names.iter().all(|n| stored_pod(h, n).is_none())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_drain_retries_until_the_budget_allows() -> anyhow::Result<()> {
    if !Path::new(KUBECTL).exists() {
        eprintln!("skipping: {KUBECTL} is absent");
        return Ok(());
    }
    let h = start(true).await;
    let node = json!({"metadata": {"name": "node-a"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    h.api().create(resources::NODES, "", node)?;
    let rs = workload(&h, resources::REPLICASETS, "web", "web", 2, None)?;
    for n in ["web-1", "web-2"] {
        pod(&h, n, json!({"labels": {"app": "web"}, "ownerReferences": [controller_ref("ReplicaSet", "web", &rs)]}), Some("node-a"))?;
        set_status(&h, n, "Running", true)?;
    }
    create_budget(&h, "web", "web", json!({"minAvailable": 2}))?;
    settled(&h, "web", |s| counts(s) == [2, 2, 2, 0]).await;

    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    h.write_kubeconfig(&kubeconfig)?;
    let mut child = tokio::process::Command::new(KUBECTL)
        .args(["drain", "node-a", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=120s"])
        .env("HOME", dir.path())
        .env("KUBECONFIG", &kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stderr = collect_lines(child.stderr.take().ok_or_else(|| anyhow::anyhow!("no stderr"))?);
    // The budget blocks: kubectl reports the 429 and retries.
    let retry = format!("-n \"default\" (will retry after 5s): {VIOLATES}");
    let line = common::wait_for("kubectl to report the blocked eviction", Duration::from_secs(60), || {
        let l = stderr.lock().iter().find(|l| l.contains(&retry)).cloned();
        async move { l }
    })
    .await;
    assert!(line.starts_with("error when evicting pods/\"web-"), "{line}");
    let cordoned = h.store().get(resources::NODES, "", "node-a").and_then(|n| n.value.pointer("/spec/unschedulable").cloned());
    assert_eq!(cordoned, Some(json!(true)));
    // Relax the budget; the retried evictions go through and the test plays the node agent.
    h.api().patch(resources::PODDISRUPTIONBUDGETS, "default", "web", PatchType::Merge, br#"{"spec":{"minAvailable":0}}"#, None, None)?;
    common::wait_for("evicted pods to be gone", Duration::from_secs(90), || {
        let done = finish_terminating(&h, &["web-1", "web-2"]);
        async move { done.then_some(()) }
    })
    .await;
    let out = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output()).await??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {:?}", stderr.lock());
    assert!(stdout.contains("node/node-a drained") && stdout.contains("pod/web-1 evicted"), "{stdout}");
    h.shutdown().await;
    Ok(())
}

/// `syncStalePodDisruption`: a `DisruptionTarget=True` condition that outlived two minutes
/// without a deletion goes back to False, also for pods that got it after the controller
/// started (it follows pod changes, not only the first list); a fresh one and the kubelet's
/// (`TerminationByKubelet`) stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_disruption_targets_are_reset() -> anyhow::Result<()> {
    let h = start(true).await;
    let ago = (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(600)).strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let target = |reason: &str, at: &str| {
        json!({"status": {"phase": "Running", "conditions": [
            {"type": "DisruptionTarget", "status": "True", "reason": reason, "lastTransitionTime": at}]}})
    };
    // Let the controller make its first pass before the pods exist.
    create_budget(&h, "pdb", "none", json!({"minAvailable": 1}))?;
    settled(&h, "pdb", |_| true).await;
    for (name, body) in [
        ("stale", target("EvictionByEvictionAPI", &ago)),
        ("fresh", target("EvictionByEvictionAPI", &now())),
        ("kubelet", target("TerminationByKubelet", &ago)),
    ] {
        pod(&h, name, json!({}), Some("n1"))?;
        h.api().patch(resources::PODS, "default", name, PatchType::Merge, body.to_string().as_bytes(), Some("status"), None)?;
    }
    let status_of = |name: &str| stored_pod(&h, name).and_then(|p| pod_condition(&p, "DisruptionTarget")).map(|c| c["status"].clone());
    common::wait_for("the stale DisruptionTarget reset", WAIT, || {
        let reset = status_of("stale").filter(|s| s == "False");
        async move { reset }
    })
    .await;
    assert_eq!(status_of("fresh"), Some(json!("True")));
    assert_eq!(status_of("kubelet"), Some(json!("True")));
    h.shutdown().await;
    Ok(())
}
