//! The `scale` subresource of Deployments and ReplicaSets (autoscaling/v1 Scale): kube-rs's
//! `get_scale` / `patch_scale` / `replace_scale`, raw requests for the exact wire form and
//! errors, discovery, and the real kubectl (`kubectl scale`, skipped when kubectl is absent)
//! driving the ReplicaSet and Deployment controllers.

mod common;

use std::time::Duration;

use bytes::Bytes;
use fake_apiserver::{Handle, resources};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::autoscaling::v1::ScaleSpec;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(20);
use common::kubectl::Kubectl;
const DEPLOY_PATH: &str = "/apis/apps/v1/namespaces/default/deployments";

/// A Deployment `web` of `replicas` whose selector has a label and a set expression.
fn deployment(replicas: i32) -> anyhow::Result<Deployment> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}]},
            "template": {"metadata": {"labels": {"app": "web", "tier": "a"}},
                "spec": {"containers": [{"name": "c", "image": "img:1"}]}}},
    }))?)
}

/// One raw request; answers the status code and the JSON body.
async fn send(h: &Handle, method: &str, path: &str, content_type: &str, accept: &str, body: &str) -> (u16, Value) {
    let tcp = TcpStream::connect(h.addr()).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.expect("handshake");
    tokio::spawn(conn);
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("content-type", content_type)
        .header("accept", accept)
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request");
    let resp = sender.send_request(req).await.expect("response");
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (code, serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes))))
}

fn stored(h: &Handle, res: resources::ResourceId, name: &str) -> Value {
    h.store().get(res, "default", name).map(|o| o.value.clone()).unwrap_or_default()
}

fn replicas_of(v: &Value) -> Option<i64> {
    v.pointer("/spec/replicas").and_then(Value::as_i64)
}

fn generation_of(v: &Value) -> i64 {
    v.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or_default()
}

fn kube_error(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.message),
        other => panic!("expected an API error, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_get_patch_replace_through_kube() -> anyhow::Result<()> {
    // No controllers: nothing but the test writes the Deployment.
    let h = common::start_with(|c| {
        c.workloads = false;
        c.scheduler = false;
        c.node_lifecycle = false;
        c.endpointslices = false;
    })
    .await;
    let deploys: Api<Deployment> = Api::namespaced(common::kube_client(&h), "default");
    let created = deploys.create(&PostParams::default(), &deployment(2)?).await?;
    deploys.patch_status("web", &PatchParams::default(), &Patch::Merge(json!({"status": {"replicas": 2}}))).await?;

    // GET: the parent's identity, replicas and selector string.
    let s = deploys.get_scale("web").await?;
    let d = stored(&h, resources::DEPLOYMENTS, "web");
    assert_eq!(s.metadata.name.as_deref(), Some("web"));
    assert_eq!(s.metadata.namespace.as_deref(), Some("default"));
    assert_eq!(s.metadata.uid, created.metadata.uid);
    assert_eq!(s.metadata.resource_version.as_deref(), d.pointer("/metadata/resourceVersion").and_then(Value::as_str));
    assert_eq!(s.metadata.creation_timestamp, created.metadata.creation_timestamp);
    assert_eq!(s.spec.as_ref().and_then(|sp| sp.replicas), Some(2));
    let status = s.status.clone().expect("status");
    assert_eq!((status.replicas, status.selector.as_deref()), (2, Some("app=web,tier in (a,b)")));

    // Merge patch (what kubectl scale sends): spec.replicas moves, generation with it.
    let gen0 = generation_of(&d);
    let s = deploys.patch_scale("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 5}}))).await?;
    assert_eq!(s.spec.as_ref().and_then(|sp| sp.replicas), Some(5));
    let d = stored(&h, resources::DEPLOYMENTS, "web");
    assert_eq!((replicas_of(&d), generation_of(&d)), (Some(5), gen0 + 1));
    assert_eq!(s.metadata.resource_version.as_deref(), d.pointer("/metadata/resourceVersion").and_then(Value::as_str));
    assert_eq!(d.pointer("/status/replicas").and_then(Value::as_i64), Some(2), "status kept");

    // JSON patch and strategic merge patch.
    let jp: json_patch::Patch = serde_json::from_value(json!([{"op": "replace", "path": "/spec/replicas", "value": 1}]))?;
    deploys.patch_scale("web", &PatchParams::default(), &Patch::Json::<()>(jp)).await?;
    assert_eq!(replicas_of(&stored(&h, resources::DEPLOYMENTS, "web")), Some(1));
    deploys.patch_scale("web", &PatchParams::default(), &Patch::Strategic(json!({"spec": {"replicas": 3}}))).await?;
    assert_eq!(replicas_of(&stored(&h, resources::DEPLOYMENTS, "web")), Some(3));

    // An unchanged replica count is no write.
    let rv = stored(&h, resources::DEPLOYMENTS, "web").pointer("/metadata/resourceVersion").cloned();
    deploys.patch_scale("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 3}}))).await?;
    assert_eq!(stored(&h, resources::DEPLOYMENTS, "web").pointer("/metadata/resourceVersion").cloned(), rv);

    // PUT with the current resourceVersion, then with a stale one: 409 as the parent's update.
    let mut s = deploys.get_scale("web").await?;
    let stale = s.clone();
    s.spec = Some(ScaleSpec { replicas: Some(4) });
    let s = deploys.replace_scale("web", &PostParams::default(), &s).await?;
    assert_eq!(s.spec.as_ref().and_then(|sp| sp.replicas), Some(4));
    assert_eq!(replicas_of(&stored(&h, resources::DEPLOYMENTS, "web")), Some(4));
    let (code, msg) = kube_error(deploys.replace_scale("web", &PostParams::default(), &stale).await.expect_err("stale"));
    assert_eq!(code, 409);
    assert_eq!(msg, "Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified; please apply your changes to the latest version and try again");

    // Invalid replicas: 422 in upstream's words, nothing stored.
    let (code, msg) = kube_error(
        deploys.patch_scale("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": -1}}))).await.expect_err("invalid"),
    );
    assert_eq!(code, 422);
    assert_eq!(msg, "Scale.autoscaling \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0");
    assert_eq!(replicas_of(&stored(&h, resources::DEPLOYMENTS, "web")), Some(4));

    // dryRun=All: the answer shows the change, the store does not.
    let s = deploys.patch_scale("web", &PatchParams::default().dry_run(), &Patch::Merge(json!({"spec": {"replicas": 9}}))).await?;
    assert_eq!(s.spec.as_ref().and_then(|sp| sp.replicas), Some(9));
    assert_eq!(replicas_of(&stored(&h, resources::DEPLOYMENTS, "web")), Some(4));

    // A ReplicaSet has the same subresource.
    let rs: ReplicaSet = serde_json::from_value(json!({"metadata": {"name": "cache"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "cache"}},
            "template": {"metadata": {"labels": {"app": "cache"}}, "spec": {"containers": [{"name": "c", "image": "img:1"}]}}}}))?;
    let sets: Api<ReplicaSet> = Api::namespaced(common::kube_client(&h), "default");
    sets.create(&PostParams::default(), &rs).await?;
    let s = sets.patch_scale("cache", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 0}}))).await?;
    assert_eq!(s.spec.as_ref().and_then(|sp| sp.replicas), None, "0 is omitted as upstream's omitempty");
    assert_eq!(s.status.as_ref().and_then(|st| st.selector.as_deref()), Some("app=cache"));
    assert_eq!(replicas_of(&stored(&h, resources::REPLICASETS, "cache")), Some(0));

    // Missing parents.
    let (code, msg) = kube_error(deploys.get_scale("nope").await.expect_err("missing"));
    assert_eq!((code, msg.as_str()), (404, "deployments.apps \"nope\" not found"));
    let (code, msg) = kube_error(
        deploys.patch_scale("nope", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 1}}))).await.expect_err("missing"),
    );
    assert_eq!((code, msg.as_str()), (404, "deployments.apps \"nope\" not found"));
    let (code, msg) = kube_error(sets.get_scale("nope").await.expect_err("missing"));
    assert_eq!((code, msg.as_str()), (404, "replicasets/scale.apps \"nope\" not found"));
    h.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_wire_form_errors_and_discovery() -> anyhow::Result<()> {
    let h = common::start_with(|c| {
        c.workloads = false;
        c.scheduler = false;
        c.node_lifecycle = false;
        c.endpointslices = false;
    })
    .await;
    let deploys: Api<Deployment> = Api::namespaced(common::kube_client(&h), "default");
    deploys.create(&PostParams::default(), &deployment(2)?).await?;
    let path = format!("{DEPLOY_PATH}/web/scale");

    // The exact JSON of a GET.
    let (code, s) = send(&h, "GET", &path, "", "application/json", "").await;
    assert_eq!(code, 200, "{s}");
    let d = stored(&h, resources::DEPLOYMENTS, "web");
    let meta = |k: &str| d.pointer(&format!("/metadata/{k}")).cloned().unwrap_or_default();
    assert_eq!(s, json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": "web", "namespace": "default", "uid": meta("uid"), "resourceVersion": meta("resourceVersion"),
            "creationTimestamp": meta("creationTimestamp")},
        "spec": {"replicas": 2}, "status": {"replicas": 0, "selector": "app=web,tier in (a,b)"}}));

    // A PUT without metadata.name, of another kind, with a wrong uid, or a non-integer count.
    let (code, e) = send(&h, "PUT", &path, "application/json", "application/json", r#"{"spec":{"replicas":1}}"#).await;
    assert_eq!((code, e["message"].as_str()), (400, Some("the name of the object () does not match the name on the URL (web)")));
    let body = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}).to_string();
    let (code, e) = send(&h, "PUT", &path, "application/json", "application/json", &body).await;
    assert_eq!((code, e["message"].as_str()), (400, Some("the API version in the data (apps/v1) does not match the expected API version (autoscaling/v1)")));
    let body = json!({"metadata": {"name": "web", "uid": "other"}, "spec": {"replicas": 1}}).to_string();
    let (code, e) = send(&h, "PUT", &path, "application/json", "application/json", &body).await;
    assert_eq!(code, 409, "{e}");
    let uid = meta("uid");
    let want = format!("Operation cannot be fulfilled on deployments/scale.apps \"web\": Precondition failed: UID in precondition: other, UID in object meta: {}", uid.as_str().unwrap_or_default());
    assert_eq!(e["message"].as_str(), Some(want.as_str()));
    let body = json!({"metadata": {"name": "web"}, "spec": {"replicas": "3"}}).to_string();
    let (code, e) = send(&h, "PUT", &path, "application/json", "application/json", &body).await;
    assert_eq!(code, 400, "{e}");
    assert!(e["message"].as_str().unwrap_or_default().contains("cannot unmarshal string into Go struct field ScaleSpec.spec.replicas of type int32"), "{e}");

    // The 422 Status in full.
    let body = json!({"metadata": {"name": "web"}, "spec": {"replicas": -1}}).to_string();
    let (code, e) = send(&h, "PUT", &path, "application/json", "application/json", &body).await;
    assert_eq!(code, 422);
    assert_eq!(e, json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Scale.autoscaling \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        "reason": "Invalid", "details": {"name": "web", "group": "autoscaling", "kind": "Scale",
            "causes": [{"reason": "FieldValueInvalid", "message": "Invalid value: -1: must be greater than or equal to 0", "field": "spec.replicas"}]},
        "code": 422}));

    // A PUT without resourceVersion is unconditional; the generation moves.
    let gen0 = generation_of(&stored(&h, resources::DEPLOYMENTS, "web"));
    let body = json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web", "namespace": "default"}, "spec": {"replicas": 6}}).to_string();
    let (code, s) = send(&h, "PUT", &path, "application/json", "application/json", &body).await;
    assert_eq!((code, s.pointer("/spec/replicas").and_then(Value::as_i64)), (200, Some(6)), "{s}");
    let d = stored(&h, resources::DEPLOYMENTS, "web");
    assert_eq!((replicas_of(&d), generation_of(&d)), (Some(6), gen0 + 1));

    // Verbs the subresource does not have.
    let (code, _) = send(&h, "DELETE", &path, "", "application/json", "").await;
    assert_eq!(code, 405);
    let (code, _) = send(&h, "POST", &path, "application/json", "application/json", &body).await;
    assert_eq!(code, 405);

    // A Table (`kubectl get --subresource=scale`).
    let (code, t) = send(&h, "GET", &path, "", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json", "").await;
    assert_eq!(code, 200, "{t}");
    let names: Vec<&str> = t["columnDefinitions"].as_array().into_iter().flatten().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, ["Name", "Desired", "Available", "Age"]);
    assert_eq!(t.pointer("/rows/0/cells/0"), Some(&json!("web")));
    assert_eq!(t.pointer("/rows/0/cells/1"), Some(&json!(6)));

    // Discovery, as upstream's.
    let (code, list) = send(&h, "GET", "/apis/apps/v1", "", "application/json", "").await;
    assert_eq!(code, 200);
    for name in ["deployments/scale", "replicasets/scale"] {
        let entry = list["resources"].as_array().into_iter().flatten().find(|r| r["name"] == name).cloned();
        assert_eq!(entry, Some(json!({"name": name, "singularName": "", "namespaced": true, "group": "autoscaling",
            "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]})), "{list}");
    }
    h.shutdown().await;
    Ok(())
}

/// Pods (not being deleted) whose labels include `app=<app>`.
fn live_pods(h: &Handle, app: &str) -> usize {
    let (items, _) = h.store().snapshot(resources::PODS, Some("default"));
    items
        .iter()
        .filter(|p| p.value.pointer("/metadata/labels/app").and_then(Value::as_str) == Some(app))
        .filter(|p| p.value.pointer("/metadata/deletionTimestamp").is_none())
        .count()
}

async fn wait_pods(h: &Handle, app: &str, n: usize) {
    common::wait_for(&format!("{n} pods of {app}"), WAIT, || {
        let count = live_pods(h, app);
        async move { (count == n).then_some(()) }
    })
    .await;
}

const WEB: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: c
        image: nginx:1.25
";

const CACHE: &str = "apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: cache
spec:
  replicas: 2
  selector:
    matchLabels:
      app: cache
  template:
    metadata:
      labels:
        app: cache
    spec:
      containers:
      - name: c
        image: redis:7
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_scale_drives_the_controllers() {
    // Unscheduled pods are deleted at once, so scaling down needs no kubelet.
    let h = common::start_with(|c| {
        c.scheduler = false;
        c.node_lifecycle = false;
        c.endpointslices = false;
    })
    .await;
    let Some(k) = Kubectl::new(&h) else { return };
    k.apply_file("web.yaml", WEB, &[]).await;
    wait_pods(&h, "web", 1).await;

    // Up: the Deployment, its ReplicaSet, then the pods.
    let out = k.ok(&["scale", "deployment/web", "--replicas=3"]).await;
    assert_eq!(out.trim(), "deployment.apps/web scaled");
    assert!(h.audit().iter().any(|e| e.verb == "patch" && e.path == format!("{DEPLOY_PATH}/web/scale")), "kubectl patched the subresource");
    assert_eq!(replicas_of(&stored(&h, resources::DEPLOYMENTS, "web")), Some(3));
    wait_pods(&h, "web", 3).await;
    let (sets, _) = h.store().snapshot(resources::REPLICASETS, Some("default"));
    assert!(sets.iter().any(|rs| replicas_of(&rs.value) == Some(3)), "the Deployment's ReplicaSet follows");

    // Preconditions: GET the Scale, then PUT it.
    let err = k.fails(&["scale", "deployment/web", "--current-replicas=2", "--replicas=5"]).await;
    assert!(err.contains("Expected replicas to be 2, was 3"), "{err}");
    assert_eq!(k.ok(&["scale", "deployment/web", "--current-replicas=3", "--replicas=2"]).await.trim(), "deployment.apps/web scaled");
    assert!(h.audit().iter().any(|e| e.verb == "update" && e.path == format!("{DEPLOY_PATH}/web/scale")), "kubectl put the Scale");
    wait_pods(&h, "web", 2).await;

    // `kubectl get --subresource=scale` prints the Scale's Table.
    let table = k.ok(&["get", "deployment", "web", "--subresource=scale"]).await;
    assert!(table.contains("DESIRED") && table.contains("AVAILABLE"), "{table}");
    let row = table.lines().find(|l| l.starts_with("web")).unwrap_or_default().to_string();
    assert_eq!(row.split_whitespace().nth(1), Some("2"), "{table}");

    // A ReplicaSet down to zero: its pods go.
    k.apply_file("cache.yaml", CACHE, &[]).await;
    wait_pods(&h, "cache", 2).await;
    assert_eq!(k.ok(&["scale", "rs/cache", "--replicas=0"]).await.trim(), "replicaset.apps/cache scaled");
    assert_eq!(replicas_of(&stored(&h, resources::REPLICASETS, "cache")), Some(0));
    wait_pods(&h, "cache", 0).await;
    let json: Value = serde_json::from_str(&k.ok(&["get", "rs", "cache", "--subresource=scale", "-o", "json"]).await).unwrap_or_default();
    assert_eq!((json["kind"].as_str(), json["status"]["selector"].as_str()), (Some("Scale"), Some("app=cache")), "{json}");

    // A missing Deployment.
    let err = k.fails(&["scale", "deployment/nope", "--replicas=1"]).await;
    assert!(err.contains(r#"deployments.apps "nope" not found"#), "{err}");
    h.shutdown().await;
}
