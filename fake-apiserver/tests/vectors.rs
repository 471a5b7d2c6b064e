//! Table-driven tests: selectors, strategic merge patch vectors, validation and status codes.

mod common;

use bytes::Bytes;
use fake_apiserver::patch::strategic;
use fake_apiserver::resources::{self, TABLE};
use fake_apiserver::selectors::{FieldSelector, LabelSelector};
use fake_apiserver::validation;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rstest::rstest;
use serde_json::{Value, json};

#[rstest]
#[case("", true)]
#[case("app=web", true)]
#[case("app==web", true)]
#[case("app!=web", false)]
#[case("app!=db", true)]
#[case("app in (web,db)", true)]
#[case("app in (db)", false)]
#[case("app notin (db)", true)]
#[case("app notin (web)", false)]
#[case("tier", true)]
#[case("!tier", false)]
#[case("!missing", true)]
#[case("missing", false)]
#[case("app=web,tier=front", true)]
#[case("app=web,tier=back", false)]
#[case("example.com/team=a", true)]
#[case("missing notin (x)", true)]
#[case("n>3", true)]
#[case("n<3", false)]
fn label_selector_matches(#[case] sel: &str, #[case] expected: bool) {
    let obj = json!({"metadata": {"labels": {"app": "web", "tier": "front", "example.com/team": "a", "n": "5"}}});
    let s = LabelSelector::parse(sel).unwrap();
    assert_eq!(s.matches(&obj), expected, "{sel}");
}

#[rstest]
#[case("app=")]
#[case("app in web")]
#[case("-bad=x")]
#[case("a=b c")]
#[case(",")]
#[case("app=in valid")]
#[case("app=((")]
fn label_selector_rejects(#[case] sel: &str) {
    let e = LabelSelector::parse(sel).err();
    if sel == "app=" {
        assert!(e.is_none(), "empty value is valid");
    } else {
        assert_eq!(e.expect(sel).code, 400);
    }
}

#[rstest]
#[case(resources::PODS, "spec.nodeName=node-a", true)]
#[case(resources::PODS, "spec.nodeName!=node-a", false)]
#[case(resources::PODS, "spec.nodeName==node-a,status.phase=Running", true)]
#[case(resources::PODS, "status.phase!=Failed,status.phase!=Succeeded", true)]
#[case(resources::PODS, "metadata.name=p", true)]
#[case(resources::PODS, "metadata.namespace=other", false)]
#[case(resources::PODS, "spec.hostNetwork=false", true)]
#[case(resources::EVENTS, "involvedObject.name=p,involvedObject.kind=Pod", true)]
#[case(resources::SECRETS, "type=Opaque", true)]
fn field_selector_matches(#[case] res: resources::ResourceId, #[case] sel: &str, #[case] expected: bool) {
    let obj = json!({"metadata": {"name": "p", "namespace": "default"}, "spec": {"nodeName": "node-a"}, "status": {"phase": "Running"},
        "involvedObject": {"name": "p", "kind": "Pod"}, "type": "Opaque"});
    let s = FieldSelector::parse(sel, res.desc()).unwrap();
    assert_eq!(s.matches(&obj), expected, "{sel}");
}

#[rstest]
#[case(resources::PODS, "spec.bogus=x")]
#[case(resources::CONFIGMAPS, "spec.nodeName=x")]
#[case(resources::PODS, "justtext")]
fn field_selector_rejects(#[case] res: resources::ResourceId, #[case] sel: &str) {
    assert_eq!(FieldSelector::parse(sel, res.desc()).unwrap_err().code, 400);
}

fn pod_with(containers: Value) -> Value {
    json!({"metadata": {"name": "p", "finalizers": ["a"]}, "spec": {"containers": containers}})
}

#[rstest]
// merge containers by name
#[case("Pod", pod_with(json!([{"name": "a", "image": "x"}, {"name": "b", "image": "y"}])),
       json!({"spec": {"containers": [{"name": "b", "image": "z"}]}}),
       pod_with(json!([{"name": "a", "image": "x"}, {"name": "b", "image": "z"}])))]
// new container appended
#[case("Pod", pod_with(json!([{"name": "a", "image": "x"}])),
       json!({"spec": {"containers": [{"name": "c", "image": "q"}]}}),
       pod_with(json!([{"name": "a", "image": "x"}, {"name": "c", "image": "q"}])))]
// $patch: delete of a list element
#[case("Pod", pod_with(json!([{"name": "a", "image": "x"}, {"name": "b", "image": "y"}])),
       json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}),
       pod_with(json!([{"name": "b", "image": "y"}])))]
// $patch: replace of a list
#[case("Pod", pod_with(json!([{"name": "a", "image": "x"}, {"name": "b", "image": "y"}])),
       json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "c", "image": "z"}]}}),
       pod_with(json!([{"name": "c", "image": "z"}])))]
// what kubectl apply sends: $setElementOrder + changed fields only
#[case("Pod", pod_with(json!([{"name": "a", "image": "x", "env": [{"name": "E", "value": "1"}]}, {"name": "b", "image": "y"}])),
       json!({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}], "containers": [{"name": "a", "image": "x2"}]}}),
       pod_with(json!([{"name": "b", "image": "y"}, {"name": "a", "image": "x2", "env": [{"name": "E", "value": "1"}]}])))]
// env merged by name, null removes a key
#[case("Pod", pod_with(json!([{"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}])),
       json!({"spec": {"containers": [{"name": "a", "env": [{"name": "B", "value": "3"}], "image": null}]}}),
       pod_with(json!([{"name": "a", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]}])))]
// container ports merged by containerPort
#[case("Pod", pod_with(json!([{"name": "a", "ports": [{"containerPort": 80, "name": "http"}]}])),
       json!({"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}]}]}}),
       pod_with(json!([{"name": "a", "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"}, {"containerPort": 443}]}])))]
// primitive list merge (finalizers) and $deleteFromPrimitiveList
#[case("Pod", pod_with(json!([])),
       json!({"metadata": {"finalizers": ["b"], "$deleteFromPrimitiveList/finalizers": ["a"]}}),
       json!({"metadata": {"name": "p", "finalizers": ["b"]}, "spec": {"containers": []}}))]
// map $patch: replace
#[case("Pod", json!({"metadata": {"name": "p", "labels": {"a": "1", "b": "2"}}}),
       json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}}),
       json!({"metadata": {"name": "p", "labels": {"c": "3"}}}))]
// map $patch: delete
#[case("Pod", json!({"metadata": {"name": "p", "labels": {"a": "1"}}}),
       json!({"metadata": {"labels": {"$patch": "delete"}}}),
       json!({"metadata": {"name": "p"}}))]
// $retainKeys
#[case("Pod", json!({"spec": {"strategy": {"type": "A", "rollingUpdate": {"x": 1}}}}),
       json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "B"}}}),
       json!({"spec": {"strategy": {"type": "B"}}}))]
// tolerations are replaced atomically
#[case("Pod", json!({"spec": {"tolerations": [{"key": "a"}, {"key": "b"}]}}),
       json!({"spec": {"tolerations": [{"key": "c"}]}}),
       json!({"spec": {"tolerations": [{"key": "c"}]}}))]
// pod status conditions merged by type
#[case("Pod", json!({"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}]}}),
       json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
       json!({"status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}]}}))]
// node addresses merged by type
#[case("Node", json!({"status": {"addresses": [{"type": "InternalIP", "address": "1.1.1.1"}, {"type": "Hostname", "address": "n"}]}}),
       json!({"status": {"addresses": [{"type": "InternalIP", "address": "2.2.2.2"}]}}),
       json!({"status": {"addresses": [{"type": "InternalIP", "address": "2.2.2.2"}, {"type": "Hostname", "address": "n"}]}}))]
// service ports merged by port
#[case("Service", json!({"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}}),
       json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}]}}),
       json!({"spec": {"ports": [{"port": 80, "name": "http", "targetPort": 8080}, {"port": 443, "name": "https"}]}}))]
// ownerReferences merged by uid
#[case("Pod", json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]}}),
       json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}]}}),
       json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}, {"uid": "2", "name": "b"}]}}))]
// volumes by name, volumeMounts by mountPath
#[case("Pod", json!({"spec": {"volumes": [{"name": "v", "emptyDir": {}}], "containers": [{"name": "a", "volumeMounts": [{"mountPath": "/a", "name": "v"}]}]}}),
       json!({"spec": {"volumes": [{"name": "w", "emptyDir": {}}], "containers": [{"name": "a", "volumeMounts": [{"mountPath": "/a", "readOnly": true}]}]}}),
       json!({"spec": {"volumes": [{"name": "v", "emptyDir": {}}, {"name": "w", "emptyDir": {}}], "containers": [{"name": "a", "volumeMounts": [{"mountPath": "/a", "name": "v", "readOnly": true}]}]}}))]
// lists without a merge key (args) are replaced
#[case("Pod", pod_with(json!([{"name": "a", "args": ["1", "2"]}])),
       json!({"spec": {"containers": [{"name": "a", "args": ["3"]}]}}),
       pod_with(json!([{"name": "a", "args": ["3"]}])))]
fn strategic_merge_vectors(#[case] kind: &str, #[case] orig: Value, #[case] patch: Value, #[case] expected: Value) {
    assert_eq!(strategic::apply(&orig, &patch, kind).unwrap(), expected);
}

#[rstest]
#[case(json!({"spec": {"$patch": "explode"}}))]
#[case(json!({"spec": {"containers": [{"image": "no-name"}]}}))]
#[case(json!({"$unknownDirective": 1}))]
#[case(json!([1, 2]))]
fn strategic_merge_errors(#[case] patch: Value) {
    let orig = pod_with(json!([{"name": "a"}]));
    assert!(strategic::apply(&orig, &patch, "Pod").is_err(), "{patch}");
}

#[rstest]
#[case("a", true, true)]
#[case("a.b-c", true, false)]
#[case("A", false, false)]
#[case("-a", false, false)]
#[case("a_", false, false)]
#[case("", false, false)]
fn dns_names(#[case] name: &str, #[case] subdomain: bool, #[case] label: bool) {
    assert_eq!(validation::is_dns1123_subdomain(name), subdomain);
    assert_eq!(validation::is_dns1123_label(name), label);
}

#[rstest]
#[case(resources::PODS, json!({"metadata": {"name": "p"}, "spec": {}}), "spec.containers")]
#[case(resources::PODS, json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}}), "spec.containers[0].image")]
#[case(resources::PODS, json!({"metadata": {"name": "p"}, "spec": {"containers": [{"image": "x"}]}}), "spec.containers[0].name")]
#[case(resources::PODS, json!({"metadata": {"name": "P_Q"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}), "metadata.name")]
#[case(resources::PODS, json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}, {"name": "c", "image": "y"}]}}), "spec.containers[1].name")]
#[case(resources::SERVICES, json!({"metadata": {"name": "1svc"}, "spec": {"ports": [{"port": 80}]}}), "metadata.name")]
#[case(resources::SERVICES, json!({"metadata": {"name": "s"}, "spec": {}}), "spec.ports")]
#[case(resources::SERVICES, json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 70000}]}}), "spec.ports[0].port")]
#[case(resources::NAMESPACES, json!({"metadata": {"name": "a.b"}}), "metadata.name")]
#[case(resources::CONFIGMAPS, json!({"metadata": {}}), "metadata.name")]
fn validation_causes(#[case] res: resources::ResourceId, #[case] obj: Value, #[case] field: &str) {
    let e = validation::validate_create(res, &obj).unwrap_err();
    assert_eq!(e.code, 422);
    assert_eq!(e.reason, "Invalid");
    let causes = e.details.as_ref().unwrap()["causes"].as_array().unwrap().clone();
    assert!(causes.iter().any(|c| c["field"] == field), "{field} not in {causes:?}");
}

#[test]
fn descriptor_table_is_consistent() {
    for d in TABLE {
        assert!(!d.kind.is_empty() && !d.plural.is_empty());
        assert_eq!(resources::lookup(d.group, d.version, d.plural).map(|r| r.desc().kind), Some(d.kind));
    }
}

const BIG: usize = 3 * 1024 * 1024 + 10;

#[rstest]
#[case("POST", "/api/v1/namespaces/default/pods", "application/json", "{not json", 400, "BadRequest")]
#[case("POST", "/api/v1/namespaces/default/pods", "application/yaml", "a: [unclosed", 400, "BadRequest")]
#[case("POST", "/api/v1/namespaces/default/configmaps", "application/json", r#"{"apiVersion":"apps/v1","kind":"ConfigMap","metadata":{"name":"a"}}"#, 400, "BadRequest")]
#[case("POST", "/api/v1/namespaces/default/configmaps", "application/json", r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"a"}}"#, 400, "BadRequest")]
#[case("POST", "/api/v1/namespaces/default/configmaps", "application/json", r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}"#, 422, "Invalid")]
#[case("POST", "/api/v1/namespaces/default/configmaps", "application/json", r#"[1,2]"#, 400, "BadRequest")]
#[case("POST", "/api/v1/namespaces/nope/configmaps", "application/json", r#"{"metadata":{"name":"a"}}"#, 404, "NotFound")]
#[case("POST", "/api/v1/namespaces/default/configmaps", "text/plain", "x", 415, "UnsupportedMediaType")]
#[case("POST", "/api/v1/namespaces/default/configmaps", "application/json", "BIG", 413, "RequestEntityTooLarge")]
#[case("GET", "/api/v1/namespaces/default/widgets", "", "", 404, "NotFound")]
#[case("GET", "/apis/nothere.io/v1", "", "", 404, "NotFound")]
#[case("GET", "/api/v1/namespaces/default/pods?labelSelector=a%20in%20b", "", "", 400, "BadRequest")]
#[case("GET", "/api/v1/namespaces/default/pods?fieldSelector=spec.bogus%3Dx", "", "", 400, "BadRequest")]
#[case("GET", "/api/v1/namespaces/default/pods?continue=garbage", "", "", 400, "BadRequest")]
#[case("GET", "/api/v1/namespaces/default/pods?watch=true&resourceVersion=abc", "", "", 400, "BadRequest")]
#[case("PUT", "/api/v1/namespaces/default/configmaps", "application/json", "{}", 405, "MethodNotAllowed")]
#[case("OPTIONS", "/api/v1/namespaces/default/configmaps/a", "", "", 405, "MethodNotAllowed")]
#[case("PATCH", "/api/v1/namespaces/default/configmaps/kube-root", "application/merge-patch+json", "{}", 404, "NotFound")]
#[case("PATCH", "/api/v1/namespaces/default/services/kubernetes", "application/xml", "{}", 415, "UnsupportedMediaType")]
#[case("PATCH", "/api/v1/namespaces/default/services/kubernetes", "application/json-patch+json", "{\"op\":1}", 400, "BadRequest")]
#[case("PATCH", "/api/v1/namespaces/default/services/kubernetes", "application/json-patch+json", r#"[{"op":"remove","path":"/nope"}]"#, 422, "Invalid")]
#[case("PATCH", "/api/v1/namespaces/default/services/kubernetes", "application/strategic-merge-patch+json", r#"{"spec":{"$patch":"bogus"}}"#, 422, "Invalid")]
#[case("PATCH", "/api/v1/namespaces/default/services/kubernetes", "application/apply-patch+yaml", "spec: {}", 400, "BadRequest")]
#[case("PATCH", "/api/v1/namespaces/default/services/kubernetes", "application/merge-patch+json", r#"{"spec":{"clusterIP":"10.96.9.9"}}"#, 422, "Invalid")]
#[case("DELETE", "/api/v1/namespaces/default", "", "", 403, "Forbidden")]
#[case("DELETE", "/api/v1/namespaces/default/services/kubernetes?propagationPolicy=Sometimes", "", "", 422, "Invalid")]
#[case("POST", "/api/v1/namespaces/default/services", "application/json", r#"{"metadata":{"name":"np"},"spec":{"type":"NodePort","ports":[{"port":80,"nodePort":29999}]}}"#, 422, "Invalid")]
#[tokio::test]
async fn status_codes(
    #[case] method: &str,
    #[case] path: &str,
    #[case] ct: &str,
    #[case] body: &str,
    #[case] code: u16,
    #[case] reason: &str,
) {
    let h = common::start().await;
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let body = if body == "BIG" { Bytes::from(vec![b' '; BIG]) } else { Bytes::from(body.to_string()) };
    let mut req = http::Request::builder().method(method).uri(format!("{}{}", h.url(), path));
    if !ct.is_empty() {
        req = req.header("content-type", ct);
    }
    let resp = client.request(req.body(Full::new(body)).unwrap()).await.unwrap();
    assert_eq!(resp.status().as_u16(), code, "{method} {path}");
    let b = resp.into_body().collect().await.unwrap().to_bytes();
    let s: Value = serde_json::from_slice(&b).unwrap_or_else(|_| panic!("Status body: {}", String::from_utf8_lossy(&b)));
    assert_eq!(s["kind"], "Status");
    assert_eq!(s["apiVersion"], "v1");
    assert_eq!(s["status"], "Failure");
    assert_eq!(s["code"], code);
    assert_eq!(s["reason"], reason, "{s}");
    assert!(s["message"].as_str().is_some_and(|m| !m.is_empty()));
    h.shutdown().await;
}

#[tokio::test]
async fn duplicate_node_port_and_cluster_ip_are_rejected() {
    let h = common::start().await;
    let api = h.api();
    let svc = |name: &str, np: u16| json!({"metadata": {"name": name}, "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": np}]}});
    let s = api.create(resources::SERVICES, "default", svc("a", 30080)).unwrap();
    assert_eq!(s.value["spec"]["ports"][0]["nodePort"], 30080);
    let e = api.create(resources::SERVICES, "default", svc("b", 30080)).unwrap_err();
    assert_eq!((e.code, e.reason), (422, "Invalid"));
    let ip = s.value["spec"]["clusterIP"].as_str().unwrap().to_string();
    let e = api
        .create(resources::SERVICES, "default", json!({"metadata": {"name": "c"}, "spec": {"clusterIP": ip, "ports": [{"port": 1}]}}))
        .unwrap_err();
    assert_eq!(e.code, 422);
    // LoadBalancer gets a node port allocated automatically; the kubernetes service holds .1.
    let lb = api.create(resources::SERVICES, "default", json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}})).unwrap();
    let np = lb.value["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
    assert!((30000..=32767).contains(&np));
    let k = h.store().get(resources::SERVICES, "default", "kubernetes").unwrap();
    assert_eq!(k.value["spec"]["clusterIP"], "10.96.0.1");
    h.shutdown().await;
}
