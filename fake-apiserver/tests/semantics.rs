//! API semantics through HTTP: paging, watches (bookmarks, timeouts, selector transitions),
//! generation, finalizers, preconditions, deletecollection, binding, eviction, namespaces, tables.

mod common;

use std::time::Duration;

use bytes::Bytes;
use fake_apiserver::resources;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

type C = Client<HttpConnector, Full<Bytes>>;

fn client() -> C {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn call_h(c: &C, method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = c.request(req.body(Full::new(Bytes::from(body.to_string()))).unwrap()).await.unwrap();
    let code = resp.status().as_u16();
    let b = resp.into_body().collect().await.unwrap().to_bytes();
    (code, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

async fn call(c: &C, method: &str, url: &str, body: &str) -> (u16, Value) {
    call_h(c, method, url, &[("content-type", "application/json")], body).await
}

/// Read a whole (finite) watch stream as events.
async fn watch_all(c: &C, url: &str) -> Vec<Value> {
    let resp = c.request(http::Request::get(url).body(Full::new(Bytes::new())).unwrap()).await.unwrap();
    assert_eq!(resp.status(), 200);
    let b = tokio::time::timeout(Duration::from_secs(10), resp.into_body().collect()).await.expect("watch ends").unwrap().to_bytes();
    b.split(|x| *x == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect()
}

fn cm(name: &str, labels: Value) -> String {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}).to_string()
}

#[tokio::test]
async fn list_paging_with_continue() {
    let h = common::start().await;
    let c = client();
    let base = format!("{}/api/v1/namespaces/default/configmaps", h.url());
    for i in 0..7 {
        assert_eq!(call(&c, "POST", &base, &cm(&format!("c{i}"), json!({}))).await.0, 201);
    }
    let mut names = Vec::new();
    let mut url = format!("{base}?limit=3");
    let mut pages = 0;
    loop {
        let (code, v) = call(&c, "GET", &url, "").await;
        assert_eq!(code, 200);
        assert_eq!(v["kind"], "ConfigMapList");
        pages += 1;
        for i in v["items"].as_array().unwrap() {
            names.push(i["metadata"]["name"].as_str().unwrap().to_string());
        }
        match v["metadata"]["continue"].as_str() {
            Some(tok) => {
                if pages == 1 {
                    assert_eq!(v["metadata"]["remainingItemCount"], 4);
                }
                url = format!("{base}?limit=3&continue={}", tok.replace('=', "%3D").replace('+', "%2B").replace('/', "%2F"));
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names, (0..7).map(|i| format!("c{i}")).collect::<Vec<_>>());
    h.shutdown().await;
}

#[tokio::test]
async fn watch_semantics() {
    let h = common::start_with(|c| c.bookmark_interval = Duration::from_millis(100)).await;
    let c = client();
    let base = format!("{}/api/v1/namespaces/default/configmaps", h.url());
    call(&c, "POST", &base, &cm("pre", json!({"app": "a"}))).await;
    let (_, list) = call(&c, "GET", &base, "").await;
    let rv = list["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    // Changes after rv, including a label transition out of and into the selector.
    call(&c, "POST", &base, &cm("x", json!({"app": "a"}))).await;
    let _ = call_h(&c, "PATCH", &format!("{base}/x"), &[("content-type", "application/merge-patch+json")], r#"{"metadata":{"labels":{"app":"b"}}}"#).await;
    call_h(&c, "PATCH", &format!("{base}/pre"), &[("content-type", "application/merge-patch+json")], r#"{"metadata":{"labels":{"app":"b"}}}"#).await;
    call_h(&c, "PATCH", &format!("{base}/x"), &[("content-type", "application/merge-patch+json")], r#"{"metadata":{"labels":{"app":"a"}}}"#).await;
    call(&c, "DELETE", &format!("{base}/x"), "").await;

    // Exact resourceVersion from history, filtered by label; the timeout ends it with a bookmark.
    let ev = watch_all(&c, &format!("{base}?watch=1&resourceVersion={rv}&labelSelector=app%3Da&timeoutSeconds=1&allowWatchBookmarks=true")).await;
    let seq: Vec<String> = ev.iter().filter(|e| e["type"] != "BOOKMARK").map(|e| format!("{}:{}", e["type"].as_str().unwrap(), e["object"]["metadata"]["name"].as_str().unwrap())).collect();
    assert_eq!(seq, vec!["ADDED:x", "DELETED:x", "DELETED:pre", "ADDED:x", "DELETED:x"]);
    let bookmarks: Vec<&Value> = ev.iter().filter(|e| e["type"] == "BOOKMARK").collect();
    assert!(bookmarks.len() >= 2, "periodic and final bookmarks: {ev:?}");
    let last = ev.last().unwrap();
    assert_eq!(last["type"], "BOOKMARK");
    assert_eq!(last["object"]["kind"], "ConfigMap");
    let brv: u64 = last["object"]["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap();
    assert!(brv >= h.store().current_rv() - 1);
    // No bookmarks unless allowed.
    let ev = watch_all(&c, &format!("{base}?watch=1&resourceVersion={rv}&timeoutSeconds=1")).await;
    assert!(ev.iter().all(|e| e["type"] != "BOOKMARK"));

    // Unset resourceVersion: synthetic ADDED of the current state.
    let ev = watch_all(&c, &format!("{base}?watch=true&timeoutSeconds=1")).await;
    assert_eq!(ev.len(), 1);
    assert_eq!((ev[0]["type"].as_str(), ev[0]["object"]["metadata"]["name"].as_str()), (Some("ADDED"), Some("pre")));
    // sendInitialEvents: initial state then the initial-events-end bookmark.
    let ev = watch_all(&c, &format!("{base}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1")).await;
    assert_eq!(ev[0]["type"], "ADDED");
    assert_eq!(ev[1]["type"], "BOOKMARK");
    assert_eq!(ev[1]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"], "true");
    let (code, _) = call(&c, "GET", &format!("{base}?watch=true&sendInitialEvents=true"), "").await;
    assert_eq!(code, 422);
    // Legacy /watch/ path and single-object watch.
    let ev = watch_all(&c, &format!("{}/api/v1/watch/namespaces/default/configmaps/pre?timeoutSeconds=1", h.url())).await;
    assert_eq!(ev.len(), 1);
    h.shutdown().await;
}

#[tokio::test]
async fn generation_finalizers_preconditions_deletecollection() {
    let h = common::start().await;
    let c = client();
    let pods = format!("{}/api/v1/namespaces/default/pods", h.url());
    let pod = json!({"metadata": {"name": "p", "labels": {"a": "1"}, "finalizers": ["example.com/hold"]}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}});
    let (code, p) = call(&c, "POST", &pods, &pod.to_string()).await;
    assert_eq!(code, 201);
    assert_eq!(p["metadata"]["generation"], 1);
    let merge = [("content-type", "application/merge-patch+json")];
    let (_, p) = call_h(&c, "PATCH", &format!("{pods}/p"), &merge, r#"{"spec":{"containers":[{"name":"c","image":"x:2"}]}}"#).await;
    assert_eq!(p["metadata"]["generation"], 2);
    let (_, p) = call_h(&c, "PATCH", &format!("{pods}/p/status"), &merge, r#"{"status":{"phase":"Running"}}"#).await;
    assert_eq!(p["metadata"]["generation"], 2);
    assert_eq!(p["status"]["phase"], "Running");
    let (_, p) = call_h(&c, "PATCH", &format!("{pods}/p"), &merge, r#"{"status":{"phase":"Failed"}}"#).await;
    assert_eq!(p["status"]["phase"], "Running", "main resource ignores status");
    // No-op patch keeps the resourceVersion.
    let rv = p["metadata"]["resourceVersion"].clone();
    let (_, p) = call_h(&c, "PATCH", &format!("{pods}/p"), &merge, r#"{"metadata":{"labels":{"a":"1"}}}"#).await;
    assert_eq!(p["metadata"]["resourceVersion"], rv);
    // Preconditions.
    let (code, s) = call(&c, "DELETE", &format!("{pods}/p"), r#"{"preconditions":{"uid":"wrong"}}"#).await;
    assert_eq!((code, s["reason"].as_str()), (409, Some("Conflict")));
    let (code, _) = call(&c, "DELETE", &format!("{pods}/p"), r#"{"preconditions":{"resourceVersion":"1"}}"#).await;
    assert_eq!(code, 409);
    // Finalizers hold deletion until removed.
    let (code, p) = call(&c, "DELETE", &format!("{pods}/p"), "").await;
    assert_eq!(code, 200);
    assert!(p["metadata"]["deletionTimestamp"].is_string());
    assert!(h.store().get(resources::PODS, "default", "p").is_some());
    call_h(&c, "PATCH", &format!("{pods}/p"), &[("content-type", "application/json-patch+json")], r#"[{"op":"remove","path":"/metadata/finalizers"}]"#).await;
    assert!(h.store().get(resources::PODS, "default", "p").is_none(), "removing the last finalizer deletes");
    // deletecollection with a selector.
    let cms = format!("{}/api/v1/namespaces/default/configmaps", h.url());
    for (n, l) in [("a", "x"), ("b", "x"), ("c", "y")] {
        call(&c, "POST", &cms, &cm(n, json!({"g": l}))).await;
    }
    let (code, s) = call(&c, "DELETE", &format!("{cms}?labelSelector=g%3Dx"), "").await;
    assert_eq!((code, s["status"].as_str()), (200, Some("Success")));
    let (_, l) = call(&c, "GET", &cms, "").await;
    assert_eq!(l["items"].as_array().unwrap().len(), 1);
    h.shutdown().await;
}

#[tokio::test]
async fn binding_eviction_generate_name_and_namespaces() {
    let h = common::start().await;
    let c = client();
    let pods = format!("{}/api/v1/namespaces/default/pods", h.url());
    let (code, p) = call(&c, "POST", &pods, r#"{"metadata":{"generateName":"gen-"},"spec":{"containers":[{"name":"c","image":"x"}]}}"#).await;
    assert_eq!(code, 201);
    let name = p["metadata"]["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
    // The Binding must carry the pod's name (upstream: "name in URL does not match name in Binding object").
    let (code, _) = call(&c, "POST", &format!("{pods}/{name}/binding"), r#"{"apiVersion":"v1","kind":"Binding","metadata":{"name":"x"},"target":{"kind":"Node","name":"node-a"}}"#).await;
    assert_eq!(code, 400);
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name}, "target": {"kind": "Node", "name": "node-a"}}).to_string();
    let (code, s) = call(&c, "POST", &format!("{pods}/{name}/binding"), &binding).await;
    assert_eq!((code, s["status"].as_str()), (201, Some("Success")));
    let p = h.store().get(resources::PODS, "default", &name).unwrap();
    assert_eq!(p.value["spec"]["nodeName"], "node-a");
    assert_eq!(p.value["status"]["conditions"][0]["type"], "PodScheduled");
    let again = json!({"metadata": {"name": name}, "target": {"name": "node-b"}}).to_string();
    let (code, _) = call(&c, "POST", &format!("{pods}/{name}/binding"), &again).await;
    assert_eq!(code, 409);
    // Eviction of a bound pod is graceful with the eviction's grace period.
    let eviction = json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}, "deleteOptions": {"gracePeriodSeconds": 5}}).to_string();
    let (code, _) = call(&c, "POST", &format!("{pods}/{name}/eviction"), &eviction).await;
    assert_eq!(code, 201);
    let p = h.store().get(resources::PODS, "default", &name).unwrap();
    assert_eq!(p.value["metadata"]["deletionGracePeriodSeconds"], 5);
    // An unbound pod goes at once.
    call(&c, "POST", &pods, r#"{"metadata":{"name":"loose"},"spec":{"containers":[{"name":"c","image":"x"}]}}"#).await;
    let (code, _) = call(&c, "DELETE", &format!("{pods}/loose"), "").await;
    assert_eq!(code, 200);
    assert!(h.store().get(resources::PODS, "default", "loose").is_none());
    // Namespaces: defaults, default service account, cascade on delete.
    let nss = format!("{}/api/v1/namespaces", h.url());
    let (code, ns) = call(&c, "POST", &nss, r#"{"metadata":{"name":"team"}}"#).await;
    assert_eq!(code, 201);
    assert_eq!(ns["status"]["phase"], "Active");
    assert_eq!(ns["metadata"]["labels"]["kubernetes.io/metadata.name"], "team");
    assert!(h.store().get(resources::SERVICEACCOUNTS, "team", "default").is_some());
    call(&c, "POST", &format!("{nss}/team/configmaps"), &cm("inside", json!({}))).await;
    let (code, _) = call(&c, "DELETE", &format!("{nss}/team"), "").await;
    assert_eq!(code, 200);
    assert!(h.store().get(resources::CONFIGMAPS, "team", "inside").is_none());
    assert!(h.store().get(resources::NAMESPACES, "", "team").is_none());
    let (code, _) = call(&c, "POST", &format!("{nss}/team/configmaps"), &cm("late", json!({}))).await;
    assert_eq!(code, 404);
    h.shutdown().await;
}

#[tokio::test]
async fn table_responses() {
    let h = common::start().await;
    let c = client();
    let accept = [("accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json")];
    let base = h.url();
    call(&c, "POST", &format!("{base}/apis/coordination.k8s.io/v1/namespaces/default/leases"), r#"{"metadata":{"name":"l"},"spec":{"holderIdentity":"me"}}"#).await;
    let (code, t) = call_h(&c, "GET", &format!("{base}/apis/coordination.k8s.io/v1/namespaces/default/leases"), &accept, "").await;
    assert_eq!(code, 200);
    assert_eq!(t["kind"], "Table");
    let cols: Vec<&str> = t["columnDefinitions"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(cols, vec!["Name", "Holder", "Age"]);
    assert_eq!(t["rows"][0]["cells"][1], "me");
    assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    let (_, t) = call_h(&c, "GET", &format!("{base}/api/v1/namespaces/default/serviceaccounts"), &accept, "").await;
    let cols: Vec<&str> = t["columnDefinitions"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(cols, vec!["Name", "Age"]);
    let (_, t) = call_h(&c, "GET", &format!("{base}/api/v1/namespaces/default/services/kubernetes"), &accept, "").await;
    assert_eq!(t["rows"][0]["cells"][2], "10.96.0.1");
    assert_eq!(t["rows"][0]["cells"][4], "443/TCP");
    // Discovery documents.
    let (_, v) = call(&c, "GET", &format!("{base}/api/v1"), "").await;
    let pods = v["resources"].as_array().unwrap().iter().find(|r| r["name"] == "pods").unwrap();
    assert_eq!(pods["shortNames"], json!(["po"]));
    assert!(v["resources"].as_array().unwrap().iter().any(|r| r["name"] == "pods/eviction" && r["group"] == "policy"));
    let (_, v) = call(&c, "GET", &format!("{base}/apis"), "").await;
    assert_eq!(v["kind"], "APIGroupList");
    let groups: Vec<&str> = v["groups"].as_array().unwrap().iter().filter_map(|g| g["name"].as_str()).collect();
    assert_eq!(
        groups,
        [
            "coordination.k8s.io", "discovery.k8s.io", "events.k8s.io", "apps", "policy", "rbac.authorization.k8s.io",
            "node.k8s.io", "authentication.k8s.io", "authorization.k8s.io",
        ]
    );
    assert!(v["groups"].as_array().unwrap().iter().any(|g| g["name"] == "policy" && g["preferredVersion"]["version"] == "v1"));
    assert!(v["groups"].as_array().unwrap().iter().any(|g| g["name"] == "apps" && g["preferredVersion"]["version"] == "v1"));
    h.shutdown().await;
}

#[tokio::test]
async fn events_v1_is_a_view_of_core_events() {
    let h = common::start().await;
    let c = client();
    let v1 = format!("{}/apis/events.k8s.io/v1/namespaces/default/events", h.url());
    let core = format!("{}/api/v1/namespaces/default/events", h.url());
    let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e1"}, "eventTime": "2026-01-01T00:00:00.000000Z",
        "reason": "Started", "note": "Started container", "type": "Normal", "action": "Start", "reportingController": "agent", "reportingInstance": "node-a",
        "regarding": {"kind": "Pod", "namespace": "default", "name": "p"}});
    let (code, created) = call(&c, "POST", &v1, &ev.to_string()).await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["note"], "Started container");
    let (_, l) = call(&c, "GET", &format!("{core}?fieldSelector=involvedObject.name%3Dp,involvedObject.kind%3DPod"), "").await;
    let items = l["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["message"], "Started container");
    assert_eq!(items[0]["reportingComponent"], "agent");
    assert_eq!(items[0]["apiVersion"], "v1");
    let (_, l) = call(&c, "GET", &format!("{v1}?fieldSelector=regarding.name%3Dp"), "").await;
    assert_eq!(l["items"][0]["regarding"]["name"], "p");
    // series update through a merge patch on the v1 view
    let (code, p) = call_h(&c, "PATCH", &format!("{v1}/e1"), &[("content-type", "application/merge-patch+json")],
        r#"{"series":{"count":2,"lastObservedTime":"2026-01-01T00:00:01.000000Z"}}"#).await;
    assert_eq!(code, 200, "{p}");
    assert_eq!(p["series"]["count"], 2);
    let (_, g) = call(&c, "GET", &format!("{core}/e1"), "").await;
    assert_eq!(g["series"]["count"], 2);
    // watch on the v1 view converts
    let ev = watch_all(&c, &format!("{v1}?watch=true&timeoutSeconds=1")).await;
    assert_eq!(ev[0]["object"]["apiVersion"], "events.k8s.io/v1");
    assert_eq!(ev[0]["object"]["note"], "Started container");
    h.shutdown().await;
}

#[tokio::test]
async fn deleting_a_node_collects_its_lease_and_owned_pods() {
    let h = common::start().await;
    let api = h.api();
    let node = api.create(resources::NODES, "", json!({"metadata": {"name": "n1"}})).unwrap();
    let uid = node.value["metadata"]["uid"].as_str().unwrap().to_string();
    let owner = json!([{"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": uid, "controller": true}]);
    api.create(resources::LEASES, "kube-node-lease", json!({"metadata": {"name": "n1", "ownerReferences": owner}, "spec": {}})).unwrap();
    api.create(resources::PODS, "default", json!({"metadata": {"name": "mirror-n1", "ownerReferences": owner},
        "spec": {"containers": [{"name": "c", "image": "x"}]}})).unwrap();
    api.create(resources::CONFIGMAPS, "default", json!({"metadata": {"name": "unrelated"}})).unwrap();
    api.delete(resources::NODES, "", "n1", &fake_apiserver::api::DeleteOpts::default()).unwrap();
    assert!(h.store().get(resources::LEASES, "kube-node-lease", "n1").is_none());
    assert!(h.store().get(resources::PODS, "default", "mirror-n1").is_none());
    assert!(h.store().get(resources::CONFIGMAPS, "default", "unrelated").is_some());
    h.shutdown().await;
}

#[tokio::test]
async fn dry_run_computes_without_storing() {
    let h = common::start().await;
    let c = client();
    let svcs = format!("{}/api/v1/namespaces/default/services", h.url());
    let rv = h.store().current_rv();
    let (code, s) = call(&c, "POST", &format!("{svcs}?dryRun=All"), r#"{"metadata":{"name":"d"},"spec":{"type":"NodePort","ports":[{"port":80,"nodePort":30100}]}}"#).await;
    assert_eq!(code, 201);
    assert_eq!(s["spec"]["ports"][0]["nodePort"], 30100);
    assert!(h.store().get(resources::SERVICES, "default", "d").is_none());
    assert_eq!(h.store().current_rv(), rv);
    // The dry run did not hold the node port.
    let (code, _) = call(&c, "POST", &svcs, r#"{"metadata":{"name":"real"},"spec":{"type":"NodePort","ports":[{"port":80,"nodePort":30100}]}}"#).await;
    assert_eq!(code, 201);
    let merge = [("content-type", "application/merge-patch+json")];
    let (code, p) = call_h(&c, "PATCH", &format!("{svcs}/real?dryRun=All"), &merge, r#"{"metadata":{"labels":{"x":"y"}}}"#).await;
    assert_eq!((code, p["metadata"]["labels"]["x"].as_str()), (200, Some("y")));
    assert!(h.store().get(resources::SERVICES, "default", "real").unwrap().value["metadata"].get("labels").is_none());
    let (code, _) = call(&c, "DELETE", &format!("{svcs}/real?dryRun=All"), "").await;
    assert_eq!(code, 200);
    assert!(h.store().get(resources::SERVICES, "default", "real").is_some());
    let (code, _) = call(&c, "POST", &format!("{svcs}?dryRun=Some"), "{}").await;
    assert_eq!(code, 400);
    h.shutdown().await;
}

/// A Secret's write-only `stringData` is folded into `data` on updates and patches too, as
/// upstream's conversion does on every write (its keys win over `data`'s).
#[tokio::test]
async fn secret_string_data_is_folded_on_every_write() {
    let h = common::start().await;
    let c = client();
    let url = format!("{}/api/v1/namespaces/default/secrets", h.url());
    let (code, _) = call(&c, "POST", &url, r#"{"metadata": {"name": "s"}, "stringData": {"key": "first"}}"#).await;
    assert_eq!(code, 201);
    let patch = r#"{"stringData": {"key": "second", "more": "x"}}"#;
    let (code, s) = call_h(&c, "PATCH", &format!("{url}/s"), &[("content-type", "application/merge-patch+json")], patch).await;
    assert_eq!(code, 200, "{s}");
    assert_eq!(s["data"], json!({"key": "c2Vjb25k", "more": "eA=="}), "{s}");
    assert!(s.get("stringData").is_none(), "{s}");
    let stored = h.store().get(resources::SECRETS, "default", "s").unwrap().value.clone();
    assert_eq!(stored["data"]["key"], "c2Vjb25k");
    h.shutdown().await;
}

/// Docker config secrets must hold their key with a JSON object in it (upstream's
/// `ValidateSecret`), also when written as `stringData`; a secret's type cannot change.
#[tokio::test]
async fn docker_config_secrets_are_validated() {
    let h = common::start().await;
    let c = client();
    let url = format!("{}/api/v1/namespaces/default/secrets", h.url());
    let (code, s) = call(&c, "POST", &url, r#"{"metadata": {"name": "a"}, "type": "kubernetes.io/dockerconfigjson", "data": {"other": "e30="}}"#).await;
    assert_eq!((code, s["message"].as_str()), (422, Some("Secret \"a\" is invalid: data[.dockerconfigjson]: Required value")), "{s}");
    let (code, s) = call(&c, "POST", &url, r#"{"metadata": {"name": "b"}, "type": "kubernetes.io/dockercfg", "data": {".dockercfg": "bm90IGpzb24="}}"#).await;
    assert_eq!(code, 422, "{s}");
    let message = s["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("Secret \"b\" is invalid: data[.dockercfg]: Invalid value: \"<secret contents redacted>\": "), "{s}");
    let ok = r#"{"metadata": {"name": "c"}, "type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": "{\"auths\": {}}"}}"#;
    let (code, s) = call(&c, "POST", &url, ok).await;
    assert_eq!(code, 201, "{s}");
    // JSON null is a well-formed map to upstream's check (json.Unmarshal into a map); an array is not.
    let null = r#"{"metadata": {"name": "d"}, "type": "kubernetes.io/dockercfg", "stringData": {".dockercfg": "null"}}"#;
    assert_eq!(call(&c, "POST", &url, null).await.0, 201);
    let array = r#"{"metadata": {"name": "e"}, "type": "kubernetes.io/dockercfg", "stringData": {".dockercfg": "[]"}}"#;
    assert_eq!(call(&c, "POST", &url, array).await.0, 422);
    let patch = r#"{"type": "Opaque"}"#;
    let (code, s) = call_h(&c, "PATCH", &format!("{url}/c"), &[("content-type", "application/merge-patch+json")], patch).await;
    assert_eq!(code, 422, "{s}");
    assert!(s["message"].as_str().unwrap_or_default().contains("type: Invalid value: \"Opaque\": field is immutable"), "{s}");
    h.shutdown().await;
}
