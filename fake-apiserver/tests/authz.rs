//! The secure world: the RBAC resources and the bootstrap policy, the review APIs
//! (`kubectl auth whoami`, `kubectl auth can-i`), and with `Config::authorization` the
//! enforcement of RBAC, the Node authorizer and NodeRestriction with upstream's messages.

mod common;

use common::kubectl::with_kubeconfig as kubectl;
use common::pki::{Tls, call};
use serde_json::{Value, json};

const ADMIN: (&str, &[&str]) = ("nodekit-admin", &["system:masters"]);
const NODE_A: (&str, &[&str]) = ("system:node:node-a", &["system:nodes"]);

fn names(list: &Value) -> Vec<&str> {
    list["items"].as_array().unwrap().iter().filter_map(|i| i["metadata"]["name"].as_str()).collect()
}

fn ssar(verb: &str, resource: &str, ns: &str) -> Value {
    json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
           "spec": {"resourceAttributes": {"verb": verb, "resource": resource, "namespace": ns}}})
}

fn view_binding(name: &str, user: &str) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
           "subjects": [{"kind": "User", "name": user}]})
}

const SSR_PATH: &str = "/apis/authentication.k8s.io/v1/selfsubjectreviews";
const SSAR_PATH: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_policy_and_rbac_discovery_are_served() {
    let h = common::start().await;
    let c = common::kube_client(&h);
    let (code, roles) = call(&c, "GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles", &[], None).await;
    assert_eq!(code, 200);
    for want in ["cluster-admin", "admin", "edit", "view", "system:node", "system:basic-user"] {
        assert!(names(&roles).contains(&want), "{want} missing from {:?}", names(&roles));
    }
    let (_, crbs) = call(&c, "GET", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/cluster-admin", &[], None).await;
    assert_eq!(crbs["subjects"], json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}]));

    let (_, apis) = call(&c, "GET", "/apis", &[], None).await;
    let groups: Vec<&str> = apis["groups"].as_array().unwrap().iter().filter_map(|g| g["name"].as_str()).collect();
    for g in ["rbac.authorization.k8s.io", "authentication.k8s.io", "authorization.k8s.io"] {
        assert!(groups.contains(&g), "{g} not in {groups:?}");
    }
    let (_, rbac) = call(&c, "GET", "/apis/rbac.authorization.k8s.io/v1", &[], None).await;
    let listed: Vec<(&str, bool)> =
        rbac["resources"].as_array().unwrap().iter().map(|r| (r["name"].as_str().unwrap(), r["namespaced"] == true)).collect();
    assert_eq!(listed, [("roles", true), ("rolebindings", true), ("clusterroles", false), ("clusterrolebindings", false)]);
    let (_, authz) = call(&c, "GET", "/apis/authorization.k8s.io/v1", &[], None).await;
    assert!(authz["resources"].as_array().unwrap().iter().all(|r| r["verbs"] == json!(["create"])), "{authz}");

    // Plain HTTP acts as upstream's insecure-port superuser.
    let (code, ssr) = call(&c, "POST", SSR_PATH, &[], Some(json!({"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1"}))).await;
    assert_eq!(code, 201, "{ssr}");
    assert_eq!(ssr["status"]["userInfo"], json!({"username": "system:unsecured", "groups": ["system:masters", "system:authenticated"]}));

    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    h.write_kubeconfig(&kc).unwrap();
    if let Some((ok, out, err)) = kubectl(&kc, &["get", "clusterroles"]).await {
        assert!(ok, "{err}");
        assert!(out.starts_with("NAME") && out.contains("CREATED AT") && out.contains("cluster-admin"), "{out}");
        let (ok, out, err) = kubectl(&kc, &["get", "clusterrolebindings", "-o", "wide"]).await.unwrap();
        assert!(ok, "{err}");
        assert!(out.contains("ROLE") && out.contains("SERVICEACCOUNTS"), "{out}");
        let line = out.lines().find(|l| l.starts_with("cluster-admin ")).unwrap_or_default();
        assert!(line.contains("ClusterRole/cluster-admin") && line.contains("system:masters"), "{out}");
    }
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_binding_role_ref_is_immutable() {
    let h = common::start().await;
    let c = common::kube_client(&h);
    let path = "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings";
    let (code, rb) = call(&c, "POST", path, &[], Some(view_binding("rb", "alice"))).await;
    assert_eq!(code, 201, "{rb}");
    let mut changed = rb.clone();
    changed["roleRef"]["name"] = json!("edit");
    let (code, st) = call(&c, "PUT", &format!("{path}/rb"), &[], Some(changed)).await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(
        st["message"],
        "RoleBinding.rbac.authorization.k8s.io \"rb\" is invalid: roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"edit\"}: cannot change roleRef"
    );
    assert_eq!(st["details"]["causes"][0]["field"], "roleRef");
    let mut subjects_only = rb;
    subjects_only["subjects"] = json!([{"kind": "Group", "name": "devs"}]);
    assert_eq!(call(&c, "PUT", &format!("{path}/rb"), &[], Some(subjects_only)).await.0, 200);

    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    h.write_kubeconfig(&kc).unwrap();
    let Some((ok, _, err)) = kubectl(&kc, &["create", "rolebinding", "rb2", "--clusterrole=view", "--user=alice"]).await else {
        return;
    };
    assert!(ok, "{err}");
    let (_, wide, _) = kubectl(&kc, &["get", "rolebinding", "rb2", "-o", "wide"]).await.unwrap();
    assert!(wide.contains("ClusterRole/view") && wide.contains("alice"), "{wide}");
    let manifest = dir.path().join("rb2.yaml");
    let yaml = "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: rb2\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: edit\nsubjects:\n- kind: User\n  name: alice\n";
    std::fs::write(&manifest, yaml).unwrap();
    let (ok, _, err) = kubectl(&kc, &["apply", "-f", manifest.to_str().unwrap()]).await.unwrap();
    assert!(!ok);
    assert!(err.contains("The RoleBinding \"rb2\" is invalid: roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"edit\"}: cannot change roleRef"), "{err}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_answer_for_the_certificate_user() {
    let t = Tls::start(|c| c.authorization = true).await;
    let alice = t.client("alice", &["dev", "qa"]).await;
    let (code, ssr) = call(&alice, "POST", SSR_PATH, &[], Some(json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}))).await;
    assert_eq!(code, 201, "{ssr}");
    assert_eq!(ssr["status"]["userInfo"], json!({"username": "alice", "groups": ["dev", "qa", "system:authenticated"]}));

    let admin = t.client(ADMIN.0, ADMIN.1).await;
    let rbs = "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings";
    assert_eq!(call(&admin, "POST", rbs, &[], Some(view_binding("readers", "alice"))).await.0, 201);
    let (code, allowed) = call(&alice, "POST", SSAR_PATH, &[], Some(ssar("list", "pods", "default"))).await;
    assert_eq!(code, 201, "{allowed}");
    assert_eq!(
        allowed["status"],
        json!({"allowed": true, "reason": "RBAC: allowed by RoleBinding \"readers/default\" of ClusterRole \"view\" to User \"alice\""})
    );
    let bob = t.client("bob", &[]).await;
    let (_, denied) = call(&bob, "POST", SSAR_PATH, &[], Some(ssar("list", "pods", "default"))).await;
    assert_eq!(denied["status"], json!({"allowed": false}));
    assert_eq!(denied["spec"], ssar("list", "pods", "default")["spec"], "the request is echoed");
    let healthz = json!({"spec": {"nonResourceAttributes": {"path": "/healthz", "verb": "get"}}});
    let (_, public) = call(&bob, "POST", SSAR_PATH, &[], Some(healthz)).await;
    assert_eq!(public["status"]["allowed"], true, "{public}");

    let sar = |user: &str| json!({"spec": {"user": user, "resourceAttributes": {"verb": "get", "resource": "pods", "namespace": "default"}}});
    let (_, a) = call(&admin, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", &[], Some(sar("alice"))).await;
    let (_, b) = call(&admin, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", &[], Some(sar("bob"))).await;
    assert_eq!((a["status"]["allowed"].as_bool(), b["status"]["allowed"].as_bool()), (Some(true), Some(false)));
    let lsar = "/apis/authorization.k8s.io/v1/namespaces/default/localsubjectaccessreviews";
    let (code, l) = call(&admin, "POST", lsar, &[], Some(sar("alice"))).await;
    assert_eq!((code, l["status"]["allowed"].as_bool(), l["metadata"]["namespace"].as_str()), (201, Some(true), Some("default")));
    let (code, st) = call(&alice, "POST", SSAR_PATH, &[], Some(json!({"spec": {}}))).await;
    assert_eq!(code, 422, "{st}");

    let alice_kc = t.kubeconfig_file("alice", Some(("alice", &["dev", "qa"])));
    let bob_kc = t.kubeconfig_file("bob", Some(("bob", &[])));
    let Some((ok, out, err)) = kubectl(&alice_kc, &["auth", "whoami"]).await else { return };
    assert!(ok, "{err}");
    assert!(out.contains("alice") && out.contains("[dev qa system:authenticated]"), "{out}");
    let (ok, out, err) = kubectl(&alice_kc, &["auth", "can-i", "list", "pods"]).await.unwrap();
    assert!(ok && out.trim() == "yes", "{out} {err}");
    let (ok, out, _) = kubectl(&bob_kc, &["auth", "can-i", "list", "pods"]).await.unwrap();
    assert!(!ok && out.trim() == "no", "{out}");
    t.h.shutdown().await;
}

fn audit_of<'a>(entries: &'a [fake_apiserver::AuditEntry], method: &str, path: &str) -> &'a fake_apiserver::AuditEntry {
    entries.iter().rev().find(|e| e.method == method && e.path == path).expect("audited")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_on_enforces_rbac_with_upstream_messages() {
    let t = Tls::start(|c| c.authorization = true).await;
    let admin = t.client(ADMIN.0, ADMIN.1).await;
    let cm = json!({"metadata": {"name": "cm"}, "data": {"k": "v"}});
    assert_eq!(call(&admin, "POST", "/api/v1/namespaces", &[], Some(json!({"metadata": {"name": "team"}}))).await.0, 201);
    assert_eq!(call(&admin, "POST", "/api/v1/namespaces/team/configmaps", &[], Some(cm)).await.0, 201);
    assert_eq!(call(&admin, "DELETE", "/api/v1/namespaces/team/configmaps/cm", &[], None).await.0, 200);

    let alice = t.client("alice", &[]).await;
    let (code, st) = call(&alice, "GET", "/api/v1/namespaces/default/pods", &[], None).await;
    assert_eq!(code, 403);
    assert_eq!(
        st,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\"",
               "reason": "Forbidden", "details": {"kind": "pods"}, "code": 403})
    );
    let audit = t.h.audit();
    let e = audit_of(&audit, "GET", "/api/v1/namespaces/default/pods");
    assert_eq!(e.code, 403);
    assert_eq!(e.annotations.get("authorization.k8s.io/decision").map(String::as_str), Some("forbid"));
    assert_eq!(e.annotations.get("authorization.k8s.io/reason").map(String::as_str), Some(""));
    assert_eq!(call(&alice, "POST", SSAR_PATH, &[], Some(ssar("list", "pods", "default"))).await.0, 201, "system:basic-user");

    // A new binding takes effect on the next request.
    let rbs = "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings";
    assert_eq!(call(&admin, "POST", rbs, &[], Some(view_binding("readers", "alice"))).await.0, 201);
    assert_eq!(call(&alice, "GET", "/api/v1/namespaces/default/pods", &[], None).await.0, 200);
    let audit = t.h.audit();
    let e = audit_of(&audit, "GET", "/api/v1/namespaces/default/pods");
    assert_eq!(e.annotations["authorization.k8s.io/decision"], "allow");
    assert_eq!(e.annotations["authorization.k8s.io/reason"], "RBAC: allowed by RoleBinding \"readers/default\" of ClusterRole \"view\" to User \"alice\"");

    // Impersonation needs the `impersonate` verb; system:masters has it.
    let (code, st) = call(&alice, "GET", "/api/v1/namespaces/default/pods", &[("Impersonate-User", "bob")], None).await;
    assert_eq!(code, 403);
    assert_eq!(st["message"], "users \"bob\" is forbidden: User \"alice\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope");
    let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"});
    let (code, ssr) = call(&admin, "POST", SSR_PATH, &[("Impersonate-User", "alice"), ("Impersonate-Group", "dev")], Some(body)).await;
    assert_eq!(code, 201, "{ssr}");
    assert_eq!(ssr["status"]["userInfo"], json!({"username": "alice", "groups": ["dev", "system:authenticated"]}));
    let audit = t.h.audit();
    let e = audit_of(&audit, "POST", SSR_PATH);
    assert_eq!(e.impersonated_user.as_ref().map(|u| u.username.as_str()), Some("alice"));
    assert_eq!(e.user.as_ref().map(|u| u.username.as_str()), Some(ADMIN.0));

    let kc = t.kubeconfig_file("alice", Some(("alice", &[])));
    if let Some((ok, _, err)) = kubectl(&kc, &["get", "pods", "-n", "kube-system"]).await {
        assert!(!ok);
        assert!(err.contains("Error from server (Forbidden): pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"kube-system\""), "{err}");
    }
    t.h.shutdown().await;
}

/// Creates Nodes `node-a` and `node-b` as the admin.
async fn two_nodes(t: &Tls) {
    let admin = t.client(ADMIN.0, ADMIN.1).await;
    for n in ["node-a", "node-b"] {
        let (code, body) = call(&admin, "POST", "/api/v1/nodes", &[], Some(json!({"metadata": {"name": n}}))).await;
        assert_eq!(code, 201, "{body}");
    }
}

fn ready_patch() -> Value {
    json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ready"}]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_write_only_their_own_node() {
    let t = Tls::start(|c| c.authorization = true).await;
    two_nodes(&t).await;
    let node = t.client(NODE_A.0, NODE_A.1).await;
    let (code, body) = call(&node, "PATCH", "/api/v1/nodes/node-a/status", &[], Some(ready_patch())).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"]["conditions"][0]["reason"], "KubeletReady");
    let (code, st) = call(&node, "PATCH", "/api/v1/nodes/node-b/status", &[], Some(ready_patch())).await;
    assert_eq!(code, 403, "{st}");
    assert_eq!(st["message"], "nodes \"node-b\" is forbidden: node \"node-a\" is not allowed to modify node \"node-b\"");
    assert_eq!(st["reason"], "Forbidden");
    let stored = t.h.store().get(fake_apiserver::resources::NODES, "", "node-b").unwrap();
    assert!(stored.value.pointer("/status/conditions").is_none(), "the refused patch was not stored");
    let (code, st) = call(&node, "GET", "/api/v1/nodes/node-b", &[], None).await;
    assert_eq!(code, 403);
    assert_eq!(
        st["message"],
        "nodes \"node-b\" is forbidden: User \"system:node:node-a\" cannot get resource \"nodes\" in API group \"\" at the cluster scope: node 'node-a' cannot read 'node-b', only its own Node object"
    );
    assert_eq!(call(&node, "GET", "/api/v1/nodes/node-a", &[], None).await.0, 200);
    t.h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_off_serves_everyone_as_before() {
    let t = Tls::start(|_| {}).await;
    two_nodes(&t).await;
    let alice = t.client("alice", &[]).await;
    assert_eq!(call(&alice, "GET", "/api/v1/namespaces/default/pods", &[], None).await.0, 200);
    let headers = [("Impersonate-User", "bob")];
    assert_eq!(call(&alice, "GET", "/api/v1/namespaces/default/configmaps", &headers, None).await.0, 200);
    let node = t.client(NODE_A.0, NODE_A.1).await;
    assert_eq!(call(&node, "PATCH", "/api/v1/nodes/node-b/status", &[], Some(ready_patch())).await.0, 200);
    // Reviews answer as kube-apiserver's AlwaysAllow does.
    let (code, review) = call(&alice, "POST", SSAR_PATH, &[], Some(ssar("delete", "secrets", "kube-system"))).await;
    assert_eq!((code, &review["status"]), (201, &json!({"allowed": true})), "{review}");
    let audit = t.h.audit();
    assert!(audit.iter().all(|e| e.annotations.is_empty() && e.impersonated_user.is_none()));
    let line = serde_json::to_string(audit_of(&audit, "GET", "/api/v1/namespaces/default/pods")).unwrap();
    assert!(!line.contains("annotations") && !line.contains("impersonatedUser"), "{line}");
    t.h.shutdown().await;
}

#[tokio::test]
async fn authorization_on_over_plain_http_is_the_superuser() {
    let h = common::start_with(|c| c.authorization = true).await;
    let c = common::kube_client(&h);
    let cm = json!({"metadata": {"name": "cm"}});
    assert_eq!(call(&c, "POST", "/api/v1/namespaces/default/configmaps", &[], Some(cm)).await.0, 201);
    let audit = h.audit();
    let e = audit_of(&audit, "POST", "/api/v1/namespaces/default/configmaps");
    assert_eq!(e.annotations["authorization.k8s.io/decision"], "allow");
    let (code, text) = call(&c, "GET", "/api/v1/watch", &[], None).await;
    assert_eq!(code, 500);
    assert_eq!(text, "Internal Server Error: \"/api/v1/watch\": failed to create RequestInfo: unable to determine kind and namespace from url, /api/v1/watch\n");
    h.shutdown().await;
}
