//! Tests of the Node authorizer, after upstream's node_authorizer_test.go.

use serde_json::{Value, json};

use super::*;
use crate::auth::bootstrap::node_rules;
use crate::auth::user::{NODES_GROUP, User};

fn pod(ns: &str, name: &str, node: &str, suffix: &str) -> Value {
    json!({
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "nodeName": node,
            "serviceAccountName": format!("svcacct0-{node}"),
            "containers": [{"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "secret0-shared"}}}]}],
            "volumes": [
                {"name": "s", "secret": {"secretName": format!("secret0-{suffix}")}},
                {"name": "c", "configMap": {"name": format!("configmap0-{suffix}")}},
                {"name": "p", "persistentVolumeClaim": {"claimName": format!("pvc0-{suffix}")}}
            ],
            "resourceClaims": [{"name": "gpu", "resourceClaimName": format!("claim0-{suffix}")}]
        }
    })
}

fn graph() -> NodeGraph {
    let objs = vec![
        pod("ns0", "pod0-node0", "node0", "pod0-node0"),
        pod("ns0", "pod0-node1", "node1", "pod0-node1"),
        json!({"kind": "Pod", "metadata": {"name": "mirror", "namespace": "ns0",
               "annotations": {"kubernetes.io/config.mirror": "x"}},
               "spec": {"nodeName": "node0", "volumes": [{"name": "s", "secret": {"secretName": "mirror-secret"}}]}}),
        json!({"kind": "Pod", "metadata": {"name": "pending", "namespace": "ns0"},
               "spec": {"volumes": [{"name": "s", "secret": {"secretName": "pending-secret"}}]}}),
        json!({"kind": "PersistentVolume", "metadata": {"name": "pv0-pod0-node0"},
               "spec": {"claimRef": {"namespace": "ns0", "name": "pvc0-pod0-node0"},
                        "csi": {"driver": "d", "nodePublishSecretRef": {"name": "pv-secret"}}}}),
        json!({"kind": "VolumeAttachment", "metadata": {"name": "attachment0-node0"}, "spec": {"nodeName": "node0"}}),
        json!({"kind": "VolumeAttachment", "metadata": {"name": "attachment0-node1"}, "spec": {"nodeName": "node1"}}),
        json!({"kind": "ResourceSlice", "metadata": {"name": "slice0-node0"}, "spec": {"nodeName": "node0"}}),
        json!({"kind": "ConfigMap", "metadata": {"name": "ignored"}}),
    ];
    NodeGraph::from_objects(&objs)
}

fn node0() -> User {
    User::new("system:node:node0", &[NODES_GROUP])
}

/// Upstream's AttributesRecord{User, ResourceRequest: true, Verb, APIGroup, Resource, Subresource, Name, Namespace}.
fn attrs(verb: &str, group: &str, resource: &str, sub: &str, ns: &str, name: &str) -> Attributes {
    Attributes { subresource: sub.into(), ..Attributes::resource(node0(), verb, group, resource, ns, name) }
}

fn decide(a: &Attributes) -> Decision {
    graph().authorize(a, &node_rules())
}

#[test]
fn upstream_authorizer_table() {
    #[rustfmt::skip]
    let cases: &[(&str, Attributes, bool)] = &[
        ("allowed configmap", attrs("get", "", "configmaps", "", "ns0", "configmap0-pod0-node0"), true),
        ("allowed secret via pod", attrs("get", "", "secrets", "", "ns0", "secret0-pod0-node0"), true),
        ("list allowed secret via pod", attrs("list", "", "secrets", "", "ns0", "secret0-pod0-node0"), true),
        ("watch allowed secret via pod", attrs("watch", "", "secrets", "", "ns0", "secret0-pod0-node0"), true),
        ("disallowed list many secrets", attrs("list", "", "secrets", "", "ns0", ""), false),
        ("disallowed watch many secrets", attrs("watch", "", "secrets", "", "ns0", ""), false),
        ("disallowed list secrets from all namespaces", attrs("list", "", "secrets", "", "", "secret0-pod0-node0"), false),
        ("allowed shared secret via pod", attrs("get", "", "secrets", "", "ns0", "secret0-shared"), true),
        ("allowed pvc", attrs("get", "", "persistentvolumeclaims", "", "ns0", "pvc0-pod0-node0"), true),
        ("allowed pv", attrs("get", "", "persistentvolumes", "", "", "pv0-pod0-node0"), true),
        ("allowed secret via pv", attrs("get", "", "secrets", "", "ns0", "pv-secret"), true),
        ("allowed resource claim", attrs("get", "resource.k8s.io", "resourceclaims", "", "ns0", "claim0-pod0-node0"), true),
        ("disallowed configmap", attrs("get", "", "configmaps", "", "ns0", "configmap0-pod0-node1"), false),
        ("disallowed secret via pod", attrs("get", "", "secrets", "", "ns0", "secret0-pod0-node1"), false),
        ("disallowed pvc", attrs("get", "", "persistentvolumeclaims", "", "ns0", "pvc0-pod0-node1"), false),
        ("disallowed resource claim", attrs("get", "resource.k8s.io", "resourceclaims", "", "ns0", "claim0-pod0-node1"), false),
        ("disallowed secret of a mirror pod", attrs("get", "", "secrets", "", "ns0", "mirror-secret"), false),
        ("disallowed secret of an unbound pod", attrs("get", "", "secrets", "", "ns0", "pending-secret"), false),
        ("disallowed update secret", attrs("update", "", "secrets", "", "ns0", "secret0-pod0-node0"), false),
        ("disallowed secret subresource", attrs("get", "", "secrets", "x", "ns0", "secret0-pod0-node0"), false),
        ("disallowed list pvc", attrs("list", "", "persistentvolumeclaims", "", "ns0", "pvc0-pod0-node0"), false),
        ("allowed pvc status update", attrs("patch", "", "persistentvolumeclaims", "status", "ns0", "pvc0-pod0-node0"), true),
        ("disallowed pvc status get", attrs("get", "", "persistentvolumeclaims", "status", "ns0", "pvc0-pod0-node0"), false),
        ("disallowed other pvc status update", attrs("update", "", "persistentvolumeclaims", "status", "ns0", "pvc0-pod0-node1"), false),
        ("allowed attachment", attrs("get", "storage.k8s.io", "volumeattachments", "", "", "attachment0-node0"), true),
        ("disallowed attachment - no relationship", attrs("get", "storage.k8s.io", "volumeattachments", "", "", "attachment0-node1"), false),
        ("disallowed attachment - no such attachment", attrs("get", "storage.k8s.io", "volumeattachments", "", "", "nope"), false),
        ("allowed svcacct token create", attrs("create", "", "serviceaccounts", "token", "ns0", "svcacct0-node0"), true),
        ("disallowed svcacct token create - serviceaccount not attached to node", attrs("create", "", "serviceaccounts", "token", "ns0", "svcacct0-node1"), false),
        ("disallowed svcacct token create - no subresource", attrs("create", "", "serviceaccounts", "", "ns0", "svcacct0-node0"), false),
        ("disallowed svcacct token create - non create", attrs("update", "", "serviceaccounts", "token", "ns0", "svcacct0-node0"), false),
        ("disallowed get lease in namespace other than kube-node-lease - node0", attrs("get", "coordination.k8s.io", "leases", "", "foo", "node0"), false),
        ("disallowed create lease in namespace other than kube-node-lease", attrs("create", "coordination.k8s.io", "leases", "", "foo", "node0"), false),
        ("allowed get lease - node0", attrs("get", "coordination.k8s.io", "leases", "", "kube-node-lease", "node0"), true),
        ("allowed create lease", attrs("create", "coordination.k8s.io", "leases", "", "kube-node-lease", ""), true),
        ("allowed update lease - node0", attrs("update", "coordination.k8s.io", "leases", "", "kube-node-lease", "node0"), true),
        ("disallowed get lease - node1", attrs("get", "coordination.k8s.io", "leases", "", "kube-node-lease", "node1"), false),
        ("disallowed list leases", attrs("list", "coordination.k8s.io", "leases", "", "kube-node-lease", ""), false),
        ("disallowed deletecollection leases", attrs("deletecollection", "coordination.k8s.io", "leases", "", "kube-node-lease", ""), false),
        ("allowed get csinode - node0", attrs("get", "storage.k8s.io", "csinodes", "", "", "node0"), true),
        ("allowed create csinode", attrs("create", "storage.k8s.io", "csinodes", "", "", ""), true),
        ("disallowed get csinode - node1", attrs("get", "storage.k8s.io", "csinodes", "", "", "node1"), false),
        ("disallowed csinode subresource", attrs("get", "storage.k8s.io", "csinodes", "status", "", "node0"), false),
        ("disallowed list csinodes", attrs("list", "storage.k8s.io", "csinodes", "", "", ""), false),
        ("allowed get resourceslice", attrs("get", "resource.k8s.io", "resourceslices", "", "", "slice0-node0"), true),
        ("allowed create resourceslice", attrs("create", "resource.k8s.io", "resourceslices", "", "", ""), true),
        ("disallowed list resourceslices", attrs("list", "resource.k8s.io", "resourceslices", "", "", ""), false),
        // static node rules
        ("allowed list services", attrs("list", "", "services", "", "", ""), true),
        ("allowed create events", attrs("create", "", "events", "", "ns0", ""), true),
        ("allowed get runtimeclasses", attrs("get", "node.k8s.io", "runtimeclasses", "", "", "runc"), true),
        ("allowed create csr", attrs("create", "certificates.k8s.io", "certificatesigningrequests", "", "", ""), true),
        ("disallowed create services", attrs("create", "", "services", "", "ns0", ""), false),
        ("disallowed list namespaces", attrs("list", "", "namespaces", "", "", ""), false),
    ];
    for (name, a, allowed) in cases {
        assert_eq!(decide(a).is_allowed(), *allowed, "{name}");
    }
}

#[test]
fn nodes_read_only_themselves() {
    assert!(decide(&attrs("get", "", "nodes", "", "", "node0")).is_allowed());
    assert!(decide(&attrs("watch", "", "nodes", "", "", "node0")).is_allowed());
    assert!(decide(&attrs("create", "", "nodes", "", "", "")).is_allowed());
    assert!(decide(&attrs("patch", "", "nodes", "", "", "node1")).is_allowed(), "NodeRestriction limits this");
    assert!(decide(&attrs("update", "", "nodes", "status", "", "node0")).is_allowed());
    assert_eq!(
        decide(&attrs("list", "", "nodes", "", "", "")).reason(),
        "node 'node0' cannot read all nodes, only its own Node object"
    );
    assert_eq!(
        decide(&attrs("get", "", "nodes", "", "", "node1")).reason(),
        "node 'node0' cannot read 'node1', only its own Node object"
    );
    assert_eq!(decide(&attrs("delete", "", "nodes", "", "", "node0")), Decision::no_opinion(""));
    assert_eq!(decide(&attrs("get", "", "nodes", "status", "", "node0")), Decision::no_opinion(""));
}

#[test]
fn pods_of_the_node() {
    let mut list = attrs("list", "", "pods", "", "", "");
    assert_eq!(decide(&list).reason(), "can only list/watch pods with spec.nodeName field selector");
    list.field_selector = Some("spec.nodeName=node0".into());
    assert!(decide(&list).is_allowed());
    list.field_selector = Some("spec.nodeName==node0,status.phase!=Failed".into());
    assert!(decide(&list).is_allowed());
    list.field_selector = Some("spec.nodeName=node1".into());
    assert!(!decide(&list).is_allowed());
    list.field_selector = Some("spec.nodeName!=node1".into());
    assert!(!decide(&list).is_allowed());
    // a single named pod (metadata.name field selector) is checked against the graph
    let mut one = attrs("watch", "", "pods", "", "ns0", "pod0-node0");
    assert!(decide(&one).is_allowed());
    one.name = "pod0-node1".into();
    assert_eq!(decide(&one).reason(), "no relationship found between node 'node0' and this object");
    assert!(decide(&attrs("get", "", "pods", "", "ns0", "pod0-node0")).is_allowed());
    assert!(decide(&attrs("get", "", "pods", "", "ns0", "mirror")).is_allowed());
    assert!(!decide(&attrs("get", "", "pods", "", "ns0", "pod0-node1")).is_allowed());
    assert!(!decide(&attrs("get", "", "pods", "", "ns0", "pending")).is_allowed());
    assert!(decide(&attrs("create", "", "pods", "", "ns0", "")).is_allowed());
    assert!(decide(&attrs("delete", "", "pods", "", "ns0", "x")).is_allowed());
    assert!(decide(&attrs("patch", "", "pods", "status", "ns0", "x")).is_allowed());
    assert!(decide(&attrs("create", "", "pods", "eviction", "ns0", "x")).is_allowed());
    assert!(!decide(&attrs("update", "", "pods", "", "ns0", "x")).is_allowed());
    assert!(!decide(&attrs("get", "", "pods", "log", "ns0", "pod0-node0")).is_allowed());
    assert!(!decide(&attrs("create", "", "pods", "exec", "ns0", "pod0-node0")).is_allowed());
}

#[test]
fn resource_slices_need_node_selector() {
    let mut list = attrs("list", "resource.k8s.io", "resourceslices", "", "", "");
    assert_eq!(
        decide(&list).reason(),
        "can only list/watch/deletecollection resourceslices with nodeName field selector"
    );
    list.field_selector = Some("spec.nodeName=node0".into());
    assert!(decide(&list).is_allowed());
    assert!(!decide(&attrs("update", "resource.k8s.io", "resourceslices", "status", "", "slice0-node0")).is_allowed());
    assert!(!decide(&attrs("proxy", "resource.k8s.io", "resourceslices", "", "", "slice0-node0")).is_allowed());
}

#[test]
fn reasons_are_upstreams() {
    let cases = [
        (attrs("update", "", "secrets", "", "ns0", "s"), "can only read resources of this type"),
        (attrs("get", "", "secrets", "x", "ns0", "s"), "cannot read subresource"),
        (attrs("get", "", "configmaps", "", "", "c"), "can only read namespaced object of this type"),
        (attrs("list", "", "secrets", "", "ns0", ""), "No Object name found"),
        (
            attrs("get", "", "secrets", "", "ns0", "secret0-pod0-node1"),
            "no relationship found between node 'node0' and this object",
        ),
        (attrs("list", "", "persistentvolumes", "", "", ""), "can only get individual resources of this type"),
        (attrs("get", "", "persistentvolumes", "x", "", "pv"), "cannot get subresource"),
        (attrs("get", "", "persistentvolumeclaims", "status", "ns0", "p"), "can only get/update/patch this type"),
        (
            attrs("create", "", "serviceaccounts", "token", "ns0", ""),
            "can only create tokens for individual service accounts",
        ),
        (
            attrs("create", "", "serviceaccounts", "", "ns0", "sa"),
            "can only create token subresource of serviceaccount",
        ),
        (
            attrs("list", "coordination.k8s.io", "leases", "", "kube-node-lease", ""),
            "can only get, create, update, patch, or delete a node lease",
        ),
        (
            attrs("get", "coordination.k8s.io", "leases", "", "default", "node0"),
            r#"can only access leases in the "kube-node-lease" system namespace"#,
        ),
        (
            attrs("get", "coordination.k8s.io", "leases", "", "kube-node-lease", "x"),
            "can only access node lease with the same name as the requesting node",
        ),
        (
            attrs("list", "storage.k8s.io", "csinodes", "", "", ""),
            "can only get, create, update, patch, or delete a CSINode",
        ),
        (attrs("get", "storage.k8s.io", "csinodes", "x", "", "node0"), "cannot authorize CSINode subresources"),
        (
            attrs("get", "storage.k8s.io", "csinodes", "", "", "x"),
            "can only access CSINode with the same name as the requesting node",
        ),
    ];
    for (a, reason) in cases {
        assert_eq!(decide(&a), Decision::no_opinion(reason), "{a:?}");
    }
}

#[test]
fn non_nodes_and_unknown_nodes() {
    let g = graph();
    let mut a = attrs("get", "", "secrets", "", "ns0", "secret0-pod0-node0");
    a.user = User::new("system:node:node0", &[]);
    assert_eq!(g.authorize(&a, &node_rules()), Decision::no_opinion(""));
    a.user = User::new("system:node:", &[NODES_GROUP]);
    assert_eq!(g.authorize(&a, &node_rules()).reason(), r#"unknown node for user "system:node:""#);
    a.user = User::new("system:node:node9", &[NODES_GROUP]);
    assert_eq!(g.authorize(&a, &node_rules()).reason(), "no relationship found between node 'node9' and this object");
}

#[test]
fn path_errors_are_upstreams() {
    let g = graph();
    let err = |node: &str, kind, ns: &str, name: &str| g.has_path_from(node, kind, ns, name).unwrap_err().to_string();
    assert_eq!(err("node9", VertexKind::Secret, "ns0", "s"), "unknown node 'node9' cannot get secret ns0/s");
    assert_eq!(err("node0", VertexKind::Pod, "default", "x"), "node 'node0' cannot get unknown pod default/x");
    assert_eq!(
        err("node0", VertexKind::ConfigMap, "ns0", "configmap0-pod0-node1"),
        "node 'node0' cannot get configmap ns0/configmap0-pod0-node1, no relationship to this object was found in the node authorizer graph"
    );
    assert_eq!(
        err("node0", VertexKind::ServiceAccount, "ns0", "nope"),
        "node 'node0' cannot get unknown serviceAccount ns0/nope"
    );
    assert!(g.has_path_from("node0", VertexKind::Secret, "ns0", "secret0-shared").is_ok());
    assert!(g.has_path_from("node1", VertexKind::Secret, "ns0", "secret0-shared").is_ok());
}

#[test]
fn graph_updates() {
    let mut g = graph();
    // moving the pod to node1 removes node0's access to its objects
    g.add_pod(&pod("ns0", "pod0-node0", "node1", "pod0-node0"));
    assert!(g.has_path_from("node0", VertexKind::Secret, "ns0", "secret0-pod0-node0").is_err());
    assert!(g.has_path_from("node1", VertexKind::Secret, "ns0", "secret0-pod0-node0").is_ok());
    g.remove_pod("ns0", "pod0-node0");
    let err = g.has_path_from("node1", VertexKind::Secret, "ns0", "secret0-pod0-node0").unwrap_err();
    assert!(matches!(err, PathError::UnknownObject { .. }), "{err}");
    // the shared secret is still used by pod0-node1
    assert!(g.has_path_from("node1", VertexKind::Secret, "ns0", "secret0-shared").is_ok());
    // a PV losing its claim loses its edges
    g.add_pv(&json!({"metadata": {"name": "pv0-pod0-node0"}, "spec": {}}));
    assert!(g.has_path_from("node0", VertexKind::Pv, "", "pv0-pod0-node0").is_err());
    // malformed objects never panic
    for v in
        [json!(null), json!({"kind": "Pod", "spec": 3}), json!({"kind": "PersistentVolume", "spec": {"claimRef": 1}})]
    {
        g.add_pod(&v);
        g.add_pv(&v);
        g.add_volume_attachment(&v);
    }
}
