//! RBAC privilege-escalation prevention with `Config::authorization`: a user may create or
//! update Roles and bind roles only within the permissions they hold, unless granted
//! `escalate`/`bind` or in `system:masters` — kube-apiserver's policy-based RBAC storage, with
//! its messages.

mod common;

use common::pki::{Tls, call};
use serde_json::{Value, json};

const ADMIN: (&str, &[&str]) = ("nodekit-admin", &["system:masters"]);
const RBAC: &str = "/apis/rbac.authorization.k8s.io/v1";
const ALICE_GROUPS: &str = r#"(groups=["dev" "system:authenticated"])"#;

fn rule(verbs: &[&str], group: &str, resources: &[&str]) -> Value {
    json!({"verbs": verbs, "apiGroups": [group], "resources": resources})
}

fn role(name: &str, rules: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name}, "rules": rules})
}

fn binding(name: &str, kind: &str, role: &str, user: &str) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
           "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]})
}

fn path(resource: &str) -> String {
    format!("{RBAC}/namespaces/team/{resource}")
}

/// Admin creates namespace `team` and gives alice `rules` there through Role `name`.
async fn grant(admin: &kube::Client, name: &str, rules: Value) {
    let (code, body) = call(admin, "POST", &path("roles"), &[], Some(role(name, rules))).await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = call(admin, "POST", &path("rolebindings"), &[], Some(binding(name, "Role", name, "alice"))).await;
    assert_eq!(code, 201, "{body}");
}

async fn setup() -> (Tls, kube::Client, kube::Client) {
    let t = Tls::start(|c| c.authorization = true).await;
    let admin = t.client(ADMIN.0, ADMIN.1).await;
    assert_eq!(call(&admin, "POST", "/api/v1/namespaces", &[], Some(json!({"metadata": {"name": "team"}}))).await.0, 201);
    let delegator = json!([rule(&["create"], "rbac.authorization.k8s.io", &["roles", "rolebindings"]), rule(&["get"], "", &["pods"])]);
    grant(&admin, "delegator", delegator).await;
    let alice = t.client("alice", &["dev"]).await;
    (t, admin, alice)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_grant_only_held_permissions() {
    let (t, admin, alice) = setup().await;
    let secrets = role("secret-reader", json!([rule(&["get"], "", &["secrets"])]));
    let (code, st) = call(&alice, "POST", &path("roles"), &[], Some(secrets.clone())).await;
    assert_eq!(code, 403, "{st}");
    let message = format!(
        "roles.rbac.authorization.k8s.io \"secret-reader\" is forbidden: user \"alice\" {ALICE_GROUPS} is attempting to grant RBAC permissions not currently held:\n{}",
        r#"{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}"#
    );
    assert_eq!(
        st,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": "Forbidden",
               "details": {"name": "secret-reader", "group": "rbac.authorization.k8s.io", "kind": "roles"}, "code": 403})
    );
    let (code, st) = call(&alice, "POST", &format!("{}?dryRun=All", path("roles")), &[], Some(secrets.clone())).await;
    assert_eq!(code, 403, "dry runs are checked too: {st}");

    let pods = role("pod-getter", json!([rule(&["get"], "", &["pods"])]));
    let (code, body) = call(&alice, "POST", &path("roles"), &[], Some(pods)).await;
    assert_eq!(code, 201, "{body}");
    let wider = role("pod-lister", json!([rule(&["get", "list", "watch"], "", &["pods"])]));
    let (code, st) = call(&alice, "POST", &path("roles"), &[], Some(wider)).await;
    assert_eq!(code, 403);
    assert!(st["message"].as_str().unwrap().ends_with("\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"list\" \"watch\"]}"), "{st}");

    // `escalate` on roles lifts the check; system:masters never has it.
    assert_eq!(call(&admin, "POST", &path("roles"), &[], Some(role("admin-made", json!([rule(&["*"], "*", &["*"])])))).await.0, 201);
    grant(&admin, "escalator", json!([rule(&["escalate"], "rbac.authorization.k8s.io", &["roles"])])).await;
    let (code, body) = call(&alice, "POST", &path("roles"), &[], Some(secrets)).await;
    assert_eq!(code, 201, "{body}");
    t.h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patches_and_apply_are_checked_on_the_merged_role() {
    let (t, admin, alice) = setup().await;
    grant(&admin, "patcher", json!([rule(&["patch", "update", "get"], "rbac.authorization.k8s.io", &["roles"])])).await;
    let pods = role("mine", json!([rule(&["get"], "", &["pods"])]));
    assert_eq!(call(&alice, "POST", &path("roles"), &[], Some(pods)).await.0, 201);
    let url = format!("{}/mine", path("roles"));

    let add_secrets = json!({"rules": [rule(&["get"], "", &["pods"]), rule(&["get"], "", &["secrets"])]});
    let (code, st) = call(&alice, "PATCH", &url, &[], Some(add_secrets)).await;
    assert_eq!(code, 403, "{st}");
    assert!(st["message"].as_str().unwrap().starts_with("roles.rbac.authorization.k8s.io \"mine\" is forbidden: user \"alice\""), "{st}");
    let apply = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "mine"},
                       "rules": [rule(&["delete"], "", &["pods"])]});
    let apply_ct = [("content-type", "application/apply-patch+yaml")];
    let (code, st) = call(&alice, "PATCH", &format!("{url}?fieldManager=alice&force=true"), &apply_ct, Some(apply)).await;
    assert_eq!(code, 403, "{st}");
    assert!(st["message"].as_str().unwrap().ends_with("\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\"]}"), "{st}");

    let labels = json!({"metadata": {"labels": {"team": "a"}}});
    assert_eq!(call(&alice, "PATCH", &url, &[], Some(labels)).await.0, 200, "the merged rules are held");
    let (_, stored) = call(&alice, "GET", &url, &[], None).await;
    assert_eq!(stored["rules"], json!([rule(&["get"], "", &["pods"])]), "refused patches left the role alone");
    let mut put = stored.clone();
    put["rules"] = json!([rule(&["*"], "", &["pods"])]);
    assert_eq!(call(&alice, "PUT", &url, &[], Some(put)).await.0, 403);
    t.h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bindings_need_bind_or_the_roles_permissions() {
    let (t, admin, alice) = setup().await;
    let (code, st) = call(&alice, "POST", &path("rolebindings"), &[], Some(binding("admins", "ClusterRole", "cluster-admin", "bob"))).await;
    assert_eq!(code, 403, "{st}");
    let message = format!(
        "rolebindings.rbac.authorization.k8s.io \"admins\" is forbidden: user \"alice\" {ALICE_GROUPS} is attempting to grant RBAC permissions not currently held:\n{}\n{}",
        r#"{APIGroups:["*"], Resources:["*"], Verbs:["*"]}"#, r#"{NonResourceURLs:["*"], Verbs:["*"]}"#
    );
    assert_eq!(st["message"], message);
    assert_eq!(st["details"], json!({"name": "admins", "group": "rbac.authorization.k8s.io", "kind": "rolebindings"}));

    // A role whose rules alice holds may be bound.
    assert_eq!(call(&alice, "POST", &path("roles"), &[], Some(role("pod-getter", json!([rule(&["get"], "", &["pods"])])))).await.0, 201);
    let (code, body) = call(&alice, "POST", &path("rolebindings"), &[], Some(binding("getters", "Role", "pod-getter", "bob"))).await;
    assert_eq!(code, 201, "{body}");

    // A missing role: the registry's NotFound.
    let (code, st) = call(&alice, "POST", &path("rolebindings"), &[], Some(binding("x", "ClusterRole", "nope", "bob"))).await;
    assert_eq!(code, 404, "{st}");
    assert_eq!(st["message"], "clusterroles.rbac.authorization.k8s.io \"nope\" not found");
    let (code, st) = call(&alice, "POST", &path("rolebindings"), &[], Some(binding("y", "Role", "nope", "bob"))).await;
    assert_eq!((code, st["message"].as_str()), (404, Some("roles.rbac.authorization.k8s.io \"nope\" not found")));

    // `bind` on clusterroles/cluster-admin in the namespace.
    let bind = json!([{"verbs": ["bind"], "apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "resourceNames": ["cluster-admin"]}]);
    grant(&admin, "binder", bind).await;
    let (code, body) = call(&alice, "POST", &path("rolebindings"), &[], Some(binding("admins", "ClusterRole", "cluster-admin", "bob"))).await;
    assert_eq!(code, 201, "{body}");
    let (code, _) = call(&alice, "POST", &path("rolebindings"), &[], Some(binding("editors", "ClusterRole", "edit", "bob"))).await;
    assert_eq!(code, 403, "bind covers the named role only");

    // system:masters binds anything, even roles that do not exist (yet).
    for (name, role) in [("m1", "edit"), ("m2", "nope")] {
        let (code, body) = call(&admin, "POST", &path("rolebindings"), &[], Some(binding(name, "ClusterRole", role, "bob"))).await;
        assert_eq!(code, 201, "{body}");
    }
    t.h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_roles_and_cluster_role_bindings() {
    let t = Tls::start(|c| c.authorization = true).await;
    let admin = t.client(ADMIN.0, ADMIN.1).await;
    let writer = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "rbac-writer"},
                        "rules": [rule(&["create"], "rbac.authorization.k8s.io", &["clusterroles", "clusterrolebindings"]), rule(&["get"], "", &["nodes"])]});
    assert_eq!(call(&admin, "POST", &format!("{RBAC}/clusterroles"), &[], Some(writer)).await.0, 201);
    let crb = |name: &str, role: &str| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "carol"}]})
    };
    assert_eq!(call(&admin, "POST", &format!("{RBAC}/clusterrolebindings"), &[], Some(crb("carol-writer", "rbac-writer"))).await.0, 201);
    let carol = t.client("carol", &[]).await;

    let aggregated = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "agg"},
                            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]}});
    let (code, st) = call(&carol, "POST", &format!("{RBAC}/clusterroles"), &[], Some(aggregated)).await;
    assert_eq!(code, 403, "{st}");
    assert_eq!(st["message"], "clusterroles.rbac.authorization.k8s.io \"agg\" is forbidden: must have cluster-admin privileges to use the aggregationRule");
    let nodes = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "node-getter"},
                       "rules": [rule(&["get"], "", &["nodes"])]});
    assert_eq!(call(&carol, "POST", &format!("{RBAC}/clusterroles"), &[], Some(nodes)).await.0, 201);
    let (code, st) = call(&carol, "POST", &format!("{RBAC}/clusterrolebindings"), &[], Some(crb("carol-view", "view"))).await;
    assert_eq!(code, 403, "{st}");
    assert!(st["message"].as_str().unwrap().starts_with("clusterrolebindings.rbac.authorization.k8s.io \"carol-view\" is forbidden: user \"carol\" (groups=[\"system:authenticated\"])"), "{st}");
    assert_eq!(call(&carol, "POST", &format!("{RBAC}/clusterrolebindings"), &[], Some(crb("carol-nodes", "node-getter"))).await.0, 201);
    t.h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_authorization_nothing_is_checked() {
    let t = Tls::start(|_| {}).await;
    let alice = t.client("alice", &[]).await;
    assert_eq!(call(&alice, "POST", "/api/v1/namespaces", &[], Some(json!({"metadata": {"name": "team"}}))).await.0, 201);
    let secrets = role("secret-reader", json!([rule(&["get"], "", &["secrets"])]));
    assert_eq!(call(&alice, "POST", &path("roles"), &[], Some(secrets)).await.0, 201);
    let (code, body) = call(&alice, "POST", &path("rolebindings"), &[], Some(binding("x", "ClusterRole", "nope", "bob"))).await;
    assert_eq!(code, 201, "{body}");
    t.h.shutdown().await;
}
