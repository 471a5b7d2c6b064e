//! Tests of the bootstrap policy: object shape and what it grants.

use std::collections::HashSet;

use serde_json::json;

use super::*;
use crate::auth::attributes::Attributes;
use crate::auth::user::User;

fn res(user: User, verb: &str, group: &str, resource: &str, ns: &str) -> Attributes {
    let (resource, sub) = resource.split_once('/').unwrap_or((resource, ""));
    Attributes { subresource: sub.into(), ..Attributes::resource(user, verb, group, resource, ns, "") }
}

fn url(user: User, path: &str) -> Attributes {
    Attributes { user, verb: "get".into(), path: path.into(), ..Attributes::default() }
}

fn authenticated(name: &str) -> User {
    User::new(name, &[user::ALL_AUTHENTICATED])
}

#[test]
fn objects_carry_label_and_annotation() {
    let objs = objects();
    let mut names = HashSet::new();
    for o in &objs {
        assert_eq!(o["metadata"]["labels"]["kubernetes.io/bootstrapping"], "rbac-defaults", "{o}");
        assert_eq!(o["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"], "true");
        assert_eq!(o["apiVersion"], "rbac.authorization.k8s.io/v1");
        assert!(names.insert((o["kind"].to_string(), o["metadata"]["name"].to_string())), "duplicate {o}");
    }
    assert_eq!(cluster_roles().len(), 31);
    assert_eq!(cluster_role_bindings().len(), 12);
}

#[test]
fn every_binding_names_an_existing_role() {
    let roles: HashSet<String> =
        cluster_roles().iter().map(|r| r["metadata"]["name"].as_str().unwrap().to_string()).collect();
    for b in cluster_role_bindings() {
        assert!(roles.contains(b["roleRef"]["name"].as_str().unwrap()), "{b}");
    }
    let node = cluster_role_bindings().into_iter().find(|b| b["metadata"]["name"] == "system:node").unwrap();
    assert!(node.get("subjects").is_none());
}

#[test]
fn binding_shapes() {
    let kube_dns = cluster_role_bindings().into_iter().find(|b| b["metadata"]["name"] == "system:kube-dns").unwrap();
    assert_eq!(
        kube_dns["subjects"],
        json!([{"kind": "ServiceAccount", "name": "kube-dns", "namespace": "kube-system"}])
    );
    let admin = cluster_role_bindings().into_iter().find(|b| b["metadata"]["name"] == "cluster-admin").unwrap();
    assert_eq!(
        admin["subjects"],
        json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}])
    );
    assert_eq!(
        admin["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"})
    );
}

#[test]
fn masters_are_cluster_admins() {
    let snap = snapshot();
    let root = User::new("root", &[user::SYSTEM_PRIVILEGED_GROUP]);
    let d = snap.authorize(&res(root.clone(), "deletecollection", "apps", "deployments", "x"));
    assert_eq!(
        d.reason(),
        r#"RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole "cluster-admin" to Group "system:masters""#
    );
    assert!(snap.authorize(&url(root, "/anything")).is_allowed());
    assert!(!snap.authorize(&res(authenticated("bob"), "get", "", "pods", "x")).is_allowed());
}

#[test]
fn discovery_and_public_info() {
    let snap = snapshot();
    for path in ["/version", "/api", "/api/v1", "/apis/apps/v1", "/openapi/v3", "/healthz", "/readyz", "/livez"] {
        assert!(snap.authorize(&url(authenticated("bob"), path)).is_allowed(), "{path}");
    }
    assert!(!snap.authorize(&url(authenticated("bob"), "/metrics")).is_allowed());
    let anon = User::new(user::ANONYMOUS, &[user::ALL_UNAUTHENTICATED]);
    for path in ["/version", "/healthz", "/livez", "/readyz"] {
        assert!(snap.authorize(&url(anon.clone(), path)).is_allowed(), "{path}");
    }
    for path in ["/api", "/apis", "/openapi/v2", "/healthz/etcd"] {
        assert!(!snap.authorize(&url(anon.clone(), path)).is_allowed(), "{path}");
    }
    let ssar = res(authenticated("bob"), "create", "authorization.k8s.io", "selfsubjectaccessreviews", "");
    assert!(snap.authorize(&ssar).is_allowed());
}

#[test]
fn kube_proxy_reads_services_and_slices() {
    let snap = snapshot();
    let proxy = authenticated(user::KUBE_PROXY);
    for (verb, group, resource) in [
        ("list", "", "services"),
        ("watch", "", "endpoints"),
        ("list", "discovery.k8s.io", "endpointslices"),
        ("get", "", "nodes"),
        ("create", "events.k8s.io", "events"),
    ] {
        assert!(snap.authorize(&res(proxy.clone(), verb, group, resource, "")).is_allowed(), "{verb} {resource}");
    }
    for (verb, group, resource) in [("create", "", "pods"), ("get", "", "secrets"), ("update", "", "services")] {
        assert!(!snap.authorize(&res(proxy.clone(), verb, group, resource, "ns")).is_allowed(), "{verb} {resource}");
    }
}

#[test]
fn scheduler_and_controller_manager() {
    let snap = snapshot();
    let sched = authenticated(user::KUBE_SCHEDULER);
    assert!(snap.authorize(&res(sched.clone(), "create", "", "pods/binding", "ns")).is_allowed());
    assert!(snap.authorize(&res(sched.clone(), "patch", "", "persistentvolumes", "")).is_allowed());
    let mut lease = res(sched.clone(), "update", "coordination.k8s.io", "leases", "kube-system");
    lease.name = "kube-scheduler".into();
    assert!(snap.authorize(&lease).is_allowed());
    lease.name = "other".into();
    assert!(!snap.authorize(&lease).is_allowed());
    assert!(!snap.authorize(&res(sched, "delete", "", "nodes", "")).is_allowed());
    let kcm = authenticated(user::KUBE_CONTROLLER_MANAGER);
    assert!(snap.authorize(&res(kcm.clone(), "watch", "anything.io", "widgets", "")).is_allowed());
    assert!(!snap.authorize(&res(kcm, "delete", "", "pods", "ns")).is_allowed());
}

#[test]
fn nodes_get_nothing_from_rbac() {
    let snap = snapshot();
    let node = User::new("system:node:node-a", &[user::NODES_GROUP, user::ALL_AUTHENTICATED]);
    assert!(!snap.authorize(&res(node.clone(), "get", "", "nodes", "")).is_allowed());
    assert!(snap.authorize(&url(node, "/version")).is_allowed());
}

#[test]
fn namespace_roles_through_role_bindings() {
    let mut objs = objects();
    for (name, role) in [("alice-admin", "admin"), ("bob-edit", "edit"), ("carol-view", "view")] {
        let user = name.split('-').next().unwrap();
        objs.push(json!({"kind": "RoleBinding", "metadata": {"name": name, "namespace": "team"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]}));
    }
    let snap = RbacSnapshot::from_objects(&objs);
    let can = |who: &str, verb: &str, group: &str, resource: &str| {
        snap.authorize(&res(authenticated(who), verb, group, resource, "team")).is_allowed()
    };
    assert!(can("alice", "create", "rbac.authorization.k8s.io", "rolebindings"));
    assert!(!can("bob", "create", "rbac.authorization.k8s.io", "rolebindings"));
    assert!(can("bob", "create", "apps", "deployments"));
    assert!(can("bob", "get", "", "secrets"));
    assert!(can("bob", "create", "", "pods/exec"));
    assert!(!can("carol", "get", "", "secrets"));
    assert!(can("carol", "list", "", "pods"));
    assert!(can("carol", "get", "", "pods/log"));
    assert!(!can("carol", "create", "", "pods"));
    assert!(!snap.authorize(&res(authenticated("carol"), "list", "", "pods", "other")).is_allowed());
}

#[test]
fn node_rules_match_the_system_node_role() {
    let role = cluster_roles().into_iter().find(|r| r["metadata"]["name"] == "system:node").unwrap();
    let rules: Vec<PolicyRule> = role["rules"].as_array().unwrap().iter().map(PolicyRule::from_value).collect();
    assert_eq!(rules, node_rules());
}
