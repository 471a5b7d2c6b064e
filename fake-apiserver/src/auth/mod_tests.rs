//! Tests of the authorizer chain (`system:masters`, Node, RBAC) end to end.

use serde_json::json;

use super::*;
use crate::auth::forbidden::forbidden_status;
use crate::auth::user::{ALL_AUTHENTICATED, NODES_GROUP};

fn snapshot() -> Snapshot {
    let mut objs = bootstrap::objects();
    objs.push(json!({"kind": "ClusterRoleBinding", "metadata": {"name": "nodes-broken"},
        "roleRef": {"kind": "ClusterRole", "name": "missing"},
        "subjects": [{"kind": "Group", "name": "system:nodes"}]}));
    let pods = [json!({"kind": "Pod", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"nodeName": "node-a", "volumes": [{"name": "s", "secret": {"secretName": "web-tls"}}]}})];
    Snapshot::new(RbacSnapshot::from_objects(&objs), NodeGraph::from_objects(&pods))
}

fn node_a() -> User {
    User::new("system:node:node-a", &[NODES_GROUP, ALL_AUTHENTICATED])
}

fn request(user: User, method: &str, path: &str, query: Option<&str>) -> Attributes {
    Attributes::from_request(user, method, path, query).unwrap()
}

const BROKEN: &str = r#"RBAC: clusterrole.rbac.authorization.k8s.io "missing" not found"#;

#[test]
fn masters_short_circuit() {
    let root = User::new("root", &["system:masters"]);
    let d = authorize(&request(root, "DELETE", "/api/v1/nodes/x", None), &snapshot());
    assert_eq!(d, Decision::allow(""));
}

#[test]
fn node_authorizer_runs_before_rbac() {
    let snap = snapshot();
    let own = request(node_a(), "GET", "/api/v1/namespaces/default/secrets/web-tls", None);
    assert_eq!(authorize(&own, &snap), Decision::allow(""));
    let pods = request(node_a(), "GET", "/api/v1/pods", Some("fieldSelector=spec.nodeName%3Dnode-a"));
    assert!(authorize(&pods, &snap).is_allowed());
    let lease = request(node_a(), "PUT", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-a", None);
    assert!(authorize(&lease, &snap).is_allowed());
    let services = request(node_a(), "GET", "/api/v1/services", Some("watch=true"));
    assert!(authorize(&services, &snap).is_allowed(), "static node rules");
}

#[test]
fn reasons_are_joined_by_newlines() {
    let snap = snapshot();
    let other = request(node_a(), "GET", "/api/v1/namespaces/default/secrets/other", None);
    let d = authorize(&other, &snap);
    assert_eq!(
        d,
        Decision::no_opinion(format!("no relationship found between node 'node-a' and this object\n{BROKEN}"))
    );
    let status = forbidden_status(&other, d.reason());
    assert_eq!(
        status["message"],
        format!(
            "secrets \"other\" is forbidden: User \"system:node:node-a\" cannot get resource \"secrets\" in API group \"\" in the namespace \"default\": no relationship found between node 'node-a' and this object\n{BROKEN}"
        )
    );
    let all_pods = request(node_a(), "GET", "/api/v1/pods", None);
    assert_eq!(
        authorize(&all_pods, &snap).reason(),
        format!("can only list/watch pods with spec.nodeName field selector\n{BROKEN}")
    );
    let ns = request(node_a(), "GET", "/api/v1/namespaces", None);
    assert_eq!(authorize(&ns, &snap).reason(), BROKEN, "node rules give no reason");
}

#[test]
fn rbac_decides_for_other_users() {
    let snap = snapshot();
    let proxy = User::new("system:kube-proxy", &[ALL_AUTHENTICATED]);
    let d =
        authorize(&request(proxy.clone(), "GET", "/apis/discovery.k8s.io/v1/endpointslices", Some("watch=1")), &snap);
    assert_eq!(
        d.reason(),
        r#"RBAC: allowed by ClusterRoleBinding "system:node-proxier" of ClusterRole "system:node-proxier" to User "system:kube-proxy""#
    );
    let denied = request(proxy, "POST", "/api/v1/namespaces/default/pods", None);
    assert_eq!(authorize(&denied, &snap), Decision::no_opinion(""));
    assert_eq!(
        forbidden_status(&denied, "")["message"],
        "pods is forbidden: User \"system:kube-proxy\" cannot create resource \"pods\" in API group \"\" in the namespace \"default\""
    );
    let anon = User::new("system:anonymous", &["system:unauthenticated"]);
    assert!(authorize(&request(anon.clone(), "GET", "/healthz", None), &snap).is_allowed());
    assert!(!authorize(&request(anon, "GET", "/api/v1/namespaces", None), &snap).is_allowed());
}

#[test]
fn default_snapshot_allows_only_masters() {
    let snap = Snapshot::default();
    assert!(!authorize(&request(User::new("bob", &[ALL_AUTHENTICATED]), "GET", "/version", None), &snap).is_allowed());
    assert!(authorize(&request(node_a(), "GET", "/api/v1/nodes/node-a", None), &snap).is_allowed());
}

#[test]
fn go_quoting() {
    assert_eq!(go_quote("plain"), r#""plain""#);
    assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
    assert_eq!(go_quote("\n\t\u{7}\u{0}\u{1b}"), r#""\n\t\a\x00\x1b""#);
    assert_eq!(go_quote("é☃"), "\"é☃\"");
    assert_eq!(go_quote("\u{85}"), r#""\u0085""#);
}

#[test]
fn decision_accessors() {
    assert!(Decision::allow("x").is_allowed());
    assert_eq!(Decision::no_opinion("y").reason(), "y");
}
