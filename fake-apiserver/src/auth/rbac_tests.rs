//! Tests of the RBAC authorizer, after upstream's rbac_test.go tables.

use serde_json::{Value, json};

use super::*;

fn list(csv: &str) -> Vec<String> {
    if csv.is_empty() { Vec::new() } else { csv.split(',').map(str::to_string).collect() }
}

/// Upstream's `strings.Split(csv, ",")`: `""` is `[""]` (the core group).
fn split(csv: &str) -> Vec<String> {
    csv.split(',').map(str::to_string).collect()
}

/// Upstream's `newRule(verbs, apiGroups, resources, nonResourceURLs)`.
fn new_rule(verbs: &str, groups: &str, resources: &str, urls: &str) -> Value {
    PolicyRule {
        verbs: split(verbs),
        api_groups: split(groups),
        resources: split(resources),
        non_resource_urls: split(urls),
        ..PolicyRule::default()
    }
    .to_value()
}

fn cluster_role(name: &str, rules: &[Value]) -> Value {
    json!({"kind": "ClusterRole", "metadata": {"name": name}, "rules": rules})
}

fn role(ns: &str, name: &str, rules: &[Value]) -> Value {
    json!({"kind": "Role", "metadata": {"name": name, "namespace": ns}, "rules": rules})
}

/// Subjects as upstream's `"User:alice"`, `"Group:g"`, `"ServiceAccount:ns:name"`.
fn subjects(specs: &[&str]) -> Vec<Value> {
    specs
        .iter()
        .map(|s| {
            let (kind, rest) = s.split_once(':').unwrap();
            match (kind, rest.split_once(':')) {
                ("ServiceAccount", Some((ns, name))) => json!({"kind": kind, "namespace": ns, "name": name}),
                _ => json!({"kind": kind, "apiGroup": RBAC_GROUP, "name": rest}),
            }
        })
        .collect()
}

fn cluster_binding(name: &str, role: &str, subs: &[&str]) -> Value {
    json!({"kind": "ClusterRoleBinding", "metadata": {"name": name},
           "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role}, "subjects": subjects(subs)})
}

fn binding(ns: &str, name: &str, kind: &str, subs: &[&str]) -> Value {
    json!({"kind": "RoleBinding", "metadata": {"name": name, "namespace": ns},
           "roleRef": {"apiGroup": RBAC_GROUP, "kind": kind, "name": name}, "subjects": subjects(subs)})
}

fn user(name: &str, groups: &str) -> User {
    User { name: name.into(), groups: list(groups), ..User::default() }
}

/// Upstream's `defaultAttributes{user, groups, verb, resource, subresource, namespace, apiGroup}`.
fn res(name: &str, groups: &str, verb: &str, resource: &str, sub: &str, ns: &str) -> Attributes {
    Attributes {
        user: user(name, groups),
        verb: verb.into(),
        resource: resource.into(),
        subresource: sub.into(),
        namespace: ns.into(),
        is_resource_request: true,
        ..Attributes::default()
    }
}

fn url(name: &str, groups: &str, verb: &str, path: &str) -> Attributes {
    Attributes { user: user(name, groups), verb: verb.into(), path: path.into(), ..Attributes::default() }
}

fn check(snap: &RbacSnapshot, pass: &[Attributes], fail: &[Attributes]) {
    for a in pass {
        assert!(snap.authorize(a).is_allowed(), "should pass: {a:?}");
    }
    for a in fail {
        assert!(!snap.authorize(a).is_allowed(), "should fail: {a:?}");
    }
}

#[test]
fn upstream_role_binding_to_cluster_role() {
    let objs = [
        cluster_role("admin", &[new_rule("*", "*", "*", "*")]),
        binding("ns1", "admin", "ClusterRole", &["User:admin", "Group:admins"]),
    ];
    let snap = RbacSnapshot::from_objects(&objs);
    check(
        &snap,
        &[
            res("admin", "", "get", "Pods", "", "ns1"),
            res("admin", "", "watch", "Pods", "", "ns1"),
            res("admin", "group1", "watch", "Foobar", "", "ns1"),
            res("joe", "admins", "watch", "Foobar", "", "ns1"),
            res("joe", "group1,admins", "watch", "Foobar", "", "ns1"),
        ],
        &[
            res("admin", "", "GET", "Pods", "", "ns2"),
            res("admin", "", "GET", "Nodes", "", ""),
            res("admin", "admins", "GET", "Pods", "", "ns2"),
            res("admin", "admins", "GET", "Nodes", "", ""),
        ],
    );
}

#[test]
fn upstream_non_resource_urls() {
    let objs = [
        cluster_role("non-resource-url-getter", &[new_rule("get", "", "", "/apis")]),
        cluster_role("non-resource-url", &[new_rule("*", "", "", "/apis")]),
        cluster_role("non-resource-url-prefix", &[new_rule("get", "", "", "/apis/*")]),
        cluster_binding("non-resource-url-getter", "non-resource-url-getter", &["User:foo", "Group:bar"]),
        cluster_binding("non-resource-url", "non-resource-url", &["User:admin", "Group:admin"]),
        cluster_binding("non-resource-url-prefix", "non-resource-url-prefix", &["User:prefixed", "Group:prefixed"]),
    ];
    let snap = RbacSnapshot::from_objects(&objs);
    check(
        &snap,
        &[
            url("foo", "", "get", "/apis"),
            url("", "bar", "get", "/apis"),
            url("admin", "", "get", "/apis"),
            url("", "admin", "get", "/apis"),
            url("admin", "", "watch", "/apis"),
            url("", "admin", "watch", "/apis"),
            url("prefixed", "", "get", "/apis/v1"),
            url("", "prefixed", "get", "/apis/v1"),
            url("prefixed", "", "get", "/apis/v1/foobar"),
            url("", "prefixed", "get", "/apis/v1/foorbar"),
        ],
        &[
            url("foo", "", "watch", "/apis"),
            url("", "bar", "watch", "/apis"),
            url("foo", "", "get", "/api/v1"),
            url("", "bar", "get", "/api/v1"),
            url("admin", "", "get", "/api/v1"),
            url("", "admin", "get", "/api/v1"),
            url("prefixed", "", "get", "/api/v1"),
            url("", "prefixed", "get", "/api/v1"),
        ],
    );
}

#[test]
fn upstream_subresources() {
    let objs = [
        cluster_role("admin", &[new_rule("*", "*", "pods", "*")]),
        binding("ns1", "admin", "ClusterRole", &["User:admin", "Group:admins"]),
    ];
    let snap = RbacSnapshot::from_objects(&objs);
    check(&snap, &[res("admin", "", "get", "pods", "", "ns1")], &[res("admin", "", "get", "pods", "status", "ns1")]);

    let objs = [
        cluster_role("admin", &[new_rule("*", "*", "pods/status", "*"), new_rule("*", "*", "*/scale", "*")]),
        binding("ns1", "admin", "ClusterRole", &["User:admin", "Group:admins"]),
    ];
    let snap = RbacSnapshot::from_objects(&objs);
    check(
        &snap,
        &[
            res("admin", "", "get", "pods", "status", "ns1"),
            res("admin", "", "get", "pods", "scale", "ns1"),
            res("admin", "", "get", "deployments", "scale", "ns1"),
            res("admin", "", "get", "anything", "scale", "ns1"),
        ],
        &[res("admin", "", "get", "pods", "", "ns1"), res("admin", "", "get", "pods", "xscale", "ns1")],
    );
}

#[test]
fn rule_matching_helpers() {
    let rule = PolicyRule {
        verbs: list("get"),
        api_groups: list("apps"),
        resources: list("deployments"),
        resource_names: list("web"),
        ..PolicyRule::default()
    };
    let mut a = res("u", "", "get", "deployments", "", "ns");
    a.api_group = "apps".into();
    a.name = "web".into();
    assert!(rule.allows(&a));
    a.name = "other".into();
    assert!(!rule.allows(&a));
    a.name = "web".into();
    a.api_group = "".into();
    assert!(!rule.allows(&a));
    assert!(non_resource_url_matches(
        &PolicyRule { non_resource_urls: list("/healthz/**"), ..PolicyRule::default() },
        "/healthz/x"
    ));
    assert!(!non_resource_url_matches(
        &PolicyRule { non_resource_urls: list("/healthz"), ..PolicyRule::default() },
        "/healthz/x"
    ));
    // a resource rule never matches a non-resource request and vice versa
    assert!(!new_rule_typed("*", "*", "*", "").allows(&url("u", "", "get", "/api")));
    assert!(!new_rule_typed("*", "", "", "*").allows(&res("u", "", "get", "pods", "", "")));
}

fn new_rule_typed(verbs: &str, groups: &str, resources: &str, urls: &str) -> PolicyRule {
    PolicyRule::from_value(&new_rule(verbs, groups, resources, urls))
}

#[test]
fn subjects_match_users_groups_and_service_accounts() {
    let sa = user("system:serviceaccount:ns1:builder", "system:serviceaccounts,system:serviceaccounts:ns1");
    let objs = [
        role("ns1", "reader", &[new_rule("get", "", "pods", "")]),
        binding("ns1", "reader", "Role", &["ServiceAccount::builder"]),
        cluster_role("lister", &[new_rule("list", "", "pods", "")]),
        cluster_binding("sa-group", "lister", &["Group:system:serviceaccounts:ns1"]),
    ];
    // "ServiceAccount::builder" has an empty namespace: the binding's namespace applies.
    let snap = RbacSnapshot::from_objects(&objs);
    let get = res("", "", "get", "pods", "", "ns1");
    let allowed = snap.authorize(&Attributes { user: sa.clone(), ..get.clone() });
    assert_eq!(
        allowed.reason(),
        r#"RBAC: allowed by RoleBinding "reader/ns1" of Role "reader" to ServiceAccount "builder/ns1""#
    );
    assert!(!snap.authorize(&Attributes { user: sa.clone(), namespace: "ns2".into(), ..get.clone() }).is_allowed());
    let other_sa = user("system:serviceaccount:ns2:builder", "");
    assert!(!snap.authorize(&Attributes { user: other_sa, ..get.clone() }).is_allowed());
    let list_pods = Attributes { user: sa, verb: "list".into(), namespace: "".into(), ..get };
    let d = snap.authorize(&list_pods);
    assert_eq!(
        d.reason(),
        r#"RBAC: allowed by ClusterRoleBinding "sa-group" of ClusterRole "lister" to Group "system:serviceaccounts:ns1""#
    );
}

#[test]
fn cluster_service_account_subject_needs_namespace() {
    let objs = [
        cluster_role("all", &[new_rule("*", "*", "*", "")]),
        cluster_binding("no-ns", "all", &["ServiceAccount::builder"]),
        cluster_binding("with-ns", "all", &["ServiceAccount:kube-system:builder"]),
    ];
    let snap = RbacSnapshot::from_objects(&objs);
    let a = res("system:serviceaccount:kube-system:builder", "", "get", "pods", "", "kube-system");
    assert_eq!(
        snap.authorize(&a).reason(),
        r#"RBAC: allowed by ClusterRoleBinding "with-ns" of ClusterRole "all" to ServiceAccount "builder/kube-system""#
    );
}

#[test]
fn allow_reason_for_user_binding() {
    let objs = [cluster_role("y", &[new_rule("get", "", "nodes", "")]), cluster_binding("x", "y", &["User:z"])];
    let snap = RbacSnapshot::from_objects(&objs);
    let d = snap.authorize(&res("z", "", "get", "nodes", "", ""));
    assert_eq!(d, Decision::allow(r#"RBAC: allowed by ClusterRoleBinding "x" of ClusterRole "y" to User "z""#));
    assert_eq!(snap.authorize(&res("z", "", "list", "nodes", "", "")), Decision::no_opinion(""));
}

#[test]
fn missing_roles_become_the_deny_reason() {
    let objs = [
        cluster_binding("a", "gone", &["User:u"]),
        binding("ns", "missing", "Role", &["User:u"]),
        json!({"kind": "RoleBinding", "metadata": {"name": "odd", "namespace": "ns"},
               "roleRef": {"kind": "Thing", "name": "t"}, "subjects": subjects(&["User:u"])}),
    ];
    let snap = RbacSnapshot::from_objects(&objs);
    let d = snap.authorize(&res("u", "", "get", "pods", "", "ns"));
    assert_eq!(
        d.reason(),
        r#"RBAC: [clusterrole.rbac.authorization.k8s.io "gone" not found, role.rbac.authorization.k8s.io "missing" not found, unsupported role reference kind: "Thing"]"#
    );
    let one = snap.authorize(&res("u", "", "get", "pods", "", ""));
    assert_eq!(one.reason(), r#"RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found"#);
    // bindings that do not apply to the user are not resolved at all
    assert_eq!(snap.authorize(&res("v", "", "get", "pods", "", "ns")).reason(), "");
}

#[test]
fn insert_replaces_and_ignores_other_kinds() {
    let mut snap = RbacSnapshot::new();
    assert!(!snap.insert(&json!({"kind": "Pod"})));
    assert!(snap.insert(&cluster_role("r", &[new_rule("get", "", "pods", "")])));
    assert!(snap.insert(&cluster_binding("b", "r", &["User:u"])));
    assert!(snap.insert(&cluster_binding("b", "r", &["User:v"])));
    assert!(!snap.authorize(&res("u", "", "get", "pods", "", "")).is_allowed());
    assert!(snap.authorize(&res("v", "", "get", "pods", "", "")).is_allowed());
    // malformed objects never panic
    for v in
        [json!(null), json!({"kind": "ClusterRole", "rules": "x"}), json!({"kind": "RoleBinding", "subjects": [1]})]
    {
        snap.insert(&v);
    }
    assert!(snap.authorize(&res("v", "", "get", "pods", "", "")).is_allowed());
}

#[test]
fn aggregate_messages() {
    assert_eq!(aggregate(&[]), "");
    assert_eq!(aggregate(&["a".into()]), "a");
    assert_eq!(aggregate(&["a".into(), "a".into()]), "a");
    assert_eq!(aggregate(&["a".into(), "b".into(), "a".into()]), "[a, b]");
}
