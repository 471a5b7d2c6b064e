//! `node.k8s.io/v1` RuntimeClass through HTTP and the real kubectl: the resource (cluster
//! scoped, discovery, table NAME/HANDLER/AGE), upstream's validation texts (handler a DNS-1123
//! label and immutable, overhead and scheduling checked), the RuntimeClass admission plugin on
//! pod creation (a missing class refused, the class's overhead, node selector and tolerations
//! set on the pod, conflicts refused) and nodes reading classes under Node,RBAC.

mod common;

use common::kubectl::Kubectl;
use common::pki::{Tls, call};
use serde_json::{Value, json};

const RCS: &str = "/apis/node.k8s.io/v1/runtimeclasses";
const PODS: &str = "/api/v1/namespaces/default/pods";
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

fn class(name: &str, handler: Option<&str>, extra: Value) -> Value {
    let mut rc = json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": name}});
    if let Some(h) = handler {
        rc["handler"] = json!(h);
    }
    if let (Some(o), Value::Object(e)) = (rc.as_object_mut(), extra) {
        o.extend(e);
    }
    rc
}

/// The class the admission tests use: overhead, a node selector and a toleration.
fn crun() -> Value {
    class(
        "crun",
        Some("crun"),
        json!({"overhead": {"podFixed": {"cpu": "250m", "memory": "64Mi"}},
               "scheduling": {"nodeSelector": {"runtime": "crun"},
                              "tolerations": [{"key": "runtime", "operator": "Equal", "value": "crun", "effect": "NoSchedule"}]}}),
    )
}

fn pod(name: &str, spec: Value) -> Value {
    let mut s = json!({"containers": [{"name": "c", "image": "i"}]});
    if let (Some(o), Value::Object(e)) = (s.as_object_mut(), spec) {
        o.extend(e);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": s})
}

fn column_names(t: &Value) -> Vec<&str> {
    t["columnDefinitions"].as_array().map(|c| c.iter().filter_map(|c| c["name"].as_str()).collect()).unwrap_or_default()
}

#[tokio::test]
async fn runtime_classes_are_served_cluster_scoped() {
    let h = common::start().await;
    let c = common::kube_client(&h);
    let (code, created) = call(&c, "POST", RCS, &[], Some(crun())).await;
    assert_eq!(code, 201, "{created}");
    assert_eq!((created["kind"].as_str(), created["apiVersion"].as_str()), (Some("RuntimeClass"), Some("node.k8s.io/v1")));
    assert!(created["metadata"].get("namespace").is_none(), "{created}");
    assert!(created["metadata"]["uid"].is_string() && created["metadata"]["resourceVersion"].is_string(), "{created}");
    let (code, got) = call(&c, "GET", &format!("{RCS}/crun"), &[], None).await;
    assert_eq!((code, &got["handler"]), (200, &json!("crun")));
    assert_eq!(got["overhead"]["podFixed"]["memory"], "64Mi");
    let (code, list) = call(&c, "GET", RCS, &[], None).await;
    assert_eq!((code, list["kind"].as_str()), (200, Some("RuntimeClassList")));
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    let (code, _) = call(&c, "GET", "/apis/node.k8s.io/v1/namespaces/default/runtimeclasses", &[], None).await;
    assert_eq!(code, 404, "cluster-scoped: no namespaced path");
    // kubectl's table: NAME, HANDLER, AGE.
    let (code, t) = call(&c, "GET", RCS, &[("accept", TABLE)], None).await;
    assert_eq!((code, t["kind"].as_str()), (200, Some("Table")), "{t}");
    assert_eq!(column_names(&t), ["Name", "Handler", "Age"]);
    assert_eq!(t["rows"][0]["cells"][0], "crun");
    assert_eq!(t["rows"][0]["cells"][1], "crun");
    // Discovery.
    let (_, d) = call(&c, "GET", "/apis/node.k8s.io/v1", &[], None).await;
    let r = &d["resources"][0];
    assert_eq!((r["name"].as_str(), r["singularName"].as_str(), r["kind"].as_str()), (Some("runtimeclasses"), Some("runtimeclass"), Some("RuntimeClass")));
    assert_eq!(r["namespaced"], false);
    assert!(r.get("shortNames").is_none(), "{r}");
    assert_eq!(r["verbs"], json!(["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]));
    let (_, g) = call(&c, "GET", "/apis/node.k8s.io", &[], None).await;
    assert_eq!(g["preferredVersion"]["groupVersion"], "node.k8s.io/v1");
    // Other fields may change, and the class goes away.
    let mut upd = got.clone();
    upd["scheduling"]["nodeSelector"] = json!({"runtime": "crun", "zone": "a"});
    let (code, updated) = call(&c, "PUT", &format!("{RCS}/crun"), &[], Some(upd)).await;
    assert_eq!(code, 200, "{updated}");
    assert_eq!(updated["scheduling"]["nodeSelector"]["zone"], "a");
    assert_eq!(call(&c, "DELETE", &format!("{RCS}/crun"), &[], None).await.0, 200);
    assert_eq!(call(&c, "GET", &format!("{RCS}/crun"), &[], None).await.0, 404);
    h.shutdown().await;
}

/// A 422 for `obj`: (the message, the causes' fields).
async fn invalid(c: &kube::Client, method: &str, path: &str, obj: Value) -> (String, Vec<String>) {
    let (code, status) = call(c, method, path, &[], Some(obj)).await;
    assert_eq!(code, 422, "{status}");
    assert_eq!((status["reason"].as_str(), status["details"]["kind"].as_str()), (Some("Invalid"), Some("RuntimeClass")), "{status}");
    assert_eq!(status["details"]["group"], "node.k8s.io");
    let fields = status["details"]["causes"].as_array().map(|c| c.iter().filter_map(|c| c["field"].as_str().map(str::to_string)).collect()).unwrap_or_default();
    (status["message"].as_str().unwrap_or_default().to_string(), fields)
}

#[tokio::test]
async fn validation_refuses_with_upstreams_texts() {
    let h = common::start().await;
    let c = common::kube_client(&h);
    let (msg, fields) = invalid(&c, "POST", RCS, class("nohandler", None, json!({}))).await;
    assert_eq!(msg, format!("RuntimeClass.node.k8s.io \"nohandler\" is invalid: handler: Invalid value: \"\": {LABEL_MSG}"));
    assert_eq!(fields, ["handler"]);
    let (msg, _) = invalid(&c, "POST", RCS, class("bad", Some("Run_C"), json!({}))).await;
    assert_eq!(msg, format!("RuntimeClass.node.k8s.io \"bad\" is invalid: handler: Invalid value: \"Run_C\": {LABEL_MSG}"));
    let (msg, _) = invalid(&c, "POST", RCS, class("dots", Some("a.b"), json!({}))).await;
    assert_eq!(msg, "RuntimeClass.node.k8s.io \"dots\" is invalid: handler: Invalid value: \"a.b\": must not contain dots");
    let negative = json!({"overhead": {"podFixed": {"memory": "-64Mi"}}});
    let (msg, _) = invalid(&c, "POST", RCS, class("neg", Some("crun"), negative)).await;
    assert_eq!(msg, "RuntimeClass.node.k8s.io \"neg\" is invalid: overhead.limits[memory]: Invalid value: \"-64Mi\": must be greater than or equal to 0");
    let exists_with_value = json!({"scheduling": {"tolerations": [{"key": "k", "operator": "Exists", "value": "v"}]}});
    let (msg, fields) = invalid(&c, "POST", RCS, class("tol", Some("crun"), exists_with_value)).await;
    assert_eq!(fields, ["scheduling.tolerations[0].operator"]);
    assert!(msg.ends_with("value must be empty when `operator` is 'Exists'"), "{msg}");
    let (_, fields) = invalid(&c, "POST", RCS, class("sel", Some("crun"), json!({"scheduling": {"nodeSelector": {"bad key": "v"}}}))).await;
    assert_eq!(fields, ["scheduling.nodeSelector"]);
    let (_, fields) = invalid(&c, "POST", RCS, class("Upper", Some("crun"), json!({}))).await;
    assert_eq!(fields, ["metadata.name"]);
    // The handler is immutable.
    let (code, mut runc) = call(&c, "POST", RCS, &[], Some(class("runc", Some("runc"), json!({})))).await;
    assert_eq!(code, 201, "{runc}");
    runc["handler"] = json!("crun");
    let (msg, fields) = invalid(&c, "PUT", &format!("{RCS}/runc"), runc).await;
    assert_eq!(msg, "RuntimeClass.node.k8s.io \"runc\" is invalid: handler: Invalid value: \"crun\": field is immutable");
    assert_eq!(fields, ["handler"]);
    let patch = call(&c, "PATCH", &format!("{RCS}/runc"), &[], Some(json!({"handler": "crun"}))).await;
    assert_eq!(patch.0, 422, "{}", patch.1);
    h.shutdown().await;
}

#[tokio::test]
async fn replaces_need_a_resource_version_and_may_create() {
    let h = common::start().await;
    let c = common::kube_client(&h);
    // AllowCreateOnUpdate: a replace of a missing class creates it.
    let (code, made) = call(&c, "PUT", &format!("{RCS}/kata"), &[], Some(class("kata", Some("kata"), json!({})))).await;
    assert!(code == 200 || code == 201, "{code} {made}");
    assert_eq!(call(&c, "GET", &format!("{RCS}/kata"), &[], None).await.0, 200);
    // AllowUnconditionalUpdate is false: an existing class is replaced only at a version.
    let (code, status) = call(&c, "PUT", &format!("{RCS}/kata"), &[], Some(class("kata", Some("kata"), json!({"scheduling": {}})))).await;
    assert_eq!(code, 422, "{status}");
    assert_eq!(status["message"], "runtimeclasses.node.k8s.io \"kata\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update");
    assert_eq!((status["details"]["kind"].as_str(), status["details"]["group"].as_str()), (Some("runtimeclasses"), Some("node.k8s.io")));
    let mut versioned = class("kata", Some("kata"), json!({"scheduling": {}}));
    versioned["metadata"]["resourceVersion"] = made["metadata"]["resourceVersion"].clone();
    assert_eq!(call(&c, "PUT", &format!("{RCS}/kata"), &[], Some(versioned)).await.0, 200);
    h.shutdown().await;
}

/// A refused pod: its 403 message.
async fn refused(c: &kube::Client, p: Value) -> String {
    let (code, status) = call(c, "POST", PODS, &[], Some(p)).await;
    assert_eq!((code, status["reason"].as_str()), (403, Some("Forbidden")), "{status}");
    status["message"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn admission_applies_the_class_to_new_pods() {
    let h = common::start().await;
    let c = common::kube_client(&h);
    assert_eq!(call(&c, "POST", RCS, &[], Some(crun())).await.0, 201);
    let msg = refused(&c, pod("ghost", json!({"runtimeClassName": "ghost"}))).await;
    assert_eq!(msg, "pods \"ghost\" is forbidden: pod rejected: RuntimeClass \"ghost\" not found");
    let spec = json!({"runtimeClassName": "crun", "nodeSelector": {"zone": "a"}, "tolerations": [{"key": "t", "operator": "Exists"}]});
    let (code, p) = call(&c, "POST", PODS, &[], Some(pod("p", spec))).await;
    assert_eq!(code, 201, "{p}");
    assert_eq!(p["spec"]["overhead"], json!({"cpu": "250m", "memory": "64Mi"}));
    assert_eq!(p["spec"]["nodeSelector"], json!({"zone": "a", "runtime": "crun"}));
    let tolerations = p["spec"]["tolerations"].as_array().cloned().unwrap_or_default();
    assert!(tolerations.contains(&json!({"key": "t", "operator": "Exists"})), "{tolerations:?}");
    assert!(tolerations.contains(&json!({"key": "runtime", "operator": "Equal", "value": "crun", "effect": "NoSchedule"})), "{tolerations:?}");
    // The same overhead written otherwise is the same overhead.
    let same = json!({"runtimeClassName": "crun", "overhead": {"cpu": "0.25", "memory": "67108864"}});
    assert_eq!(call(&c, "POST", PODS, &[], Some(pod("same", same))).await.0, 201);
    let other = json!({"runtimeClassName": "crun", "overhead": {"memory": "1Gi"}});
    let msg = refused(&c, pod("other", other)).await;
    assert_eq!(msg, "pods \"other\" is forbidden: pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead");
    let msg = refused(&c, pod("classless", json!({"overhead": {"memory": "1Gi"}}))).await;
    assert_eq!(msg, "pods \"classless\" is forbidden: pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead");
    let conflict = json!({"runtimeClassName": "crun", "nodeSelector": {"runtime": "runc"}});
    let msg = refused(&c, pod("conflict", conflict)).await;
    assert_eq!(msg, "pods \"conflict\" is forbidden: conflict: runtimeClass.scheduling.nodeSelector[runtime] = crun; pod.spec.nodeSelector[runtime] = runc");
    // Refused pods are not stored; an empty class name is invalid.
    assert_eq!(call(&c, "GET", &format!("{PODS}/conflict"), &[], None).await.0, 404);
    let (code, status) = call(&c, "POST", PODS, &[], Some(pod("empty", json!({"runtimeClassName": ""})))).await;
    assert_eq!(code, 422, "{status}");
    assert_eq!(status["details"]["causes"][0]["field"], "spec.runtimeClassName");
    h.shutdown().await;
}

#[tokio::test]
async fn nodes_read_runtime_classes_under_node_rbac() {
    let t = Tls::start(|c| c.authorization = true).await;
    let admin = t.client("admin", &["system:masters"]).await;
    assert_eq!(call(&admin, "POST", RCS, &[], Some(crun())).await.0, 201);
    let node = t.client("system:node:node-a", &["system:nodes"]).await;
    let (code, got) = call(&node, "GET", &format!("{RCS}/crun"), &[], None).await;
    assert_eq!((code, &got["handler"]), (200, &json!("crun")), "{got}");
    assert_eq!(call(&node, "GET", RCS, &[], None).await.0, 200);
    assert_eq!(call(&node, "GET", &format!("{RCS}?watch=true&timeoutSeconds=1"), &[], None).await.0, 200);
    let (code, status) = call(&node, "POST", RCS, &[], Some(class("mine", Some("runc"), json!({})))).await;
    assert_eq!(code, 403, "{status}");
    let (code, _) = call(&node, "DELETE", &format!("{RCS}/crun"), &[], None).await;
    assert_eq!(code, 403);
    t.h.shutdown().await;
}

const MANIFEST: &str = "apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata:
  name: crun
handler: crun
overhead:
  podFixed:
    memory: 64Mi
scheduling:
  nodeSelector:
    runtime: crun
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_gets_and_describes_runtime_classes() {
    let h = common::start().await;
    let Some(k) = Kubectl::new(&h) else { return };
    let out = k.apply_file("rc.yaml", MANIFEST, &[]).await;
    assert!(out.contains("runtimeclass.node.k8s.io/crun created"), "{out}");
    let table = k.ok(&["get", "runtimeclass"]).await;
    let lines: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines.first().map(Vec::as_slice), Some(&["NAME", "HANDLER", "AGE"][..]), "{table}");
    assert_eq!(lines.get(1).and_then(|l| l.get(..2)), Some(&["crun", "crun"][..]), "{table}");
    assert_eq!(k.ok(&["get", "runtimeclasses", "-o", "name"]).await.trim(), "runtimeclass.node.k8s.io/crun");
    let described = k.ok(&["describe", "runtimeclass", "crun"]).await;
    for want in ["Name:", "crun", "Handler:", "Overhead:", "64Mi", "Scheduling:"] {
        assert!(described.contains(want), "{want:?} missing: {described}");
    }
    let bad = "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata:\n  name: bad\nhandler: Not_OK\n";
    std::fs::write(k.home.join("bad.yaml"), bad).expect("write manifest");
    let err = k.fails(&["create", "-f", &k.home.join("bad.yaml").to_string_lossy()]).await;
    assert!(err.contains("The RuntimeClass \"bad\" is invalid: handler: Invalid value: \"Not_OK\": a lowercase RFC 1123 label"), "{err}");
    let typo = "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata:\n  name: typo\nhandler: runc\nhandlr: x\n";
    std::fs::write(k.home.join("typo.yaml"), typo).expect("write manifest");
    let err = k.fails(&["create", "-f", &k.home.join("typo.yaml").to_string_lossy()]).await;
    assert!(err.contains("unknown field \"handlr\""), "{err}");
    let err = k.fails(&["patch", "runtimeclass", "crun", "-p", r#"{"handler":"runc"}"#]).await;
    assert!(err.contains("field is immutable"), "{err}");
    let out = k.ok(&["delete", "runtimeclass", "crun"]).await;
    assert!(out.contains("runtimeclass.node.k8s.io \"crun\" deleted"), "{out}");
    h.shutdown().await;
}
