use serde_json::json;

use super::*;
use crate::store::Store;
use std::sync::Arc;

fn api() -> Api {
    Api::new(Arc::new(Store::new(100)), "10.96.0.0/16").unwrap()
}

fn binding(kind: &str, role: &str) -> Value {
    json!({"metadata": {"name": "b"}, "roleRef": {"kind": kind, "name": role},
           "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}]})
}

#[test]
fn bootstrap_policy_is_stored_once() {
    let api = api();
    let n = create_bootstrap_policy(&api).unwrap();
    assert_eq!(n, bootstrap::objects().len());
    assert!(api.store.get(resources::CLUSTERROLES, "", "cluster-admin").is_some());
    assert!(api.store.get(resources::CLUSTERROLEBINDINGS, "", "system:basic-user").is_some());
    assert_eq!(create_bootstrap_policy(&api).unwrap(), 0, "existing objects are kept");
}

#[test]
fn bindings_are_defaulted_and_validated() {
    let api = api();
    let rb = api.create(resources::ROLEBINDINGS, "default", binding("ClusterRole", "view")).unwrap_err();
    assert_eq!(rb.code, 404, "namespace missing: {rb}");
    let crb = api.create(resources::CLUSTERROLEBINDINGS, "", binding("ClusterRole", "view")).unwrap();
    assert_eq!(crb.value["roleRef"]["apiGroup"], RBAC_GROUP);
    assert_eq!(crb.value["subjects"][0]["apiGroup"], RBAC_GROUP);
    assert_eq!(crb.value["subjects"][1].get("apiGroup"), None);

    let bad = json!({"metadata": {"name": "x"}, "roleRef": {"kind": "Thing", "name": "a/b"},
                     "subjects": [{"kind": "Robot", "name": "r"}, {"kind": "ServiceAccount", "name": "sa"}]});
    let e = api.create(resources::CLUSTERROLEBINDINGS, "", bad).unwrap_err();
    assert_eq!(e.code, 422);
    assert_eq!(
        e.message,
        "ClusterRoleBinding.rbac.authorization.k8s.io \"x\" is invalid: [roleRef.kind: Unsupported value: \"Thing\": supported values: \"Role\", \"ClusterRole\", roleRef.name: Invalid value: \"a/b\": may not contain '/', subjects[0].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\", subjects[1].namespace: Required value]"
    );
    let d = e.details.unwrap();
    assert_eq!((d["kind"].as_str(), d["group"].as_str()), (Some("ClusterRoleBinding"), Some(RBAC_GROUP)));
}

#[test]
fn role_ref_is_immutable() {
    let api = api();
    api.create(resources::CLUSTERROLEBINDINGS, "", binding("ClusterRole", "view")).unwrap();
    let mut changed = binding("ClusterRole", "edit");
    changed["subjects"] = json!([]);
    let e = api.update(resources::CLUSTERROLEBINDINGS, "", "b", changed, None).unwrap_err();
    assert_eq!(
        e.message,
        "ClusterRoleBinding.rbac.authorization.k8s.io \"b\" is invalid: roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"edit\"}: cannot change roleRef"
    );
    // Subjects may change; an omitted apiGroup is defaulted, not a change.
    let same = json!({"metadata": {"name": "b"}, "roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": []});
    assert!(api.update(resources::CLUSTERROLEBINDINGS, "", "b", same, None).is_ok());
}

#[test]
fn policy_rules_are_validated() {
    let api = api();
    let role = json!({"metadata": {"name": "r"}, "rules": [
        {"verbs": [], "apiGroups": [""], "resources": ["pods"]},
        {"verbs": ["get"], "nonResourceURLs": ["/healthz"]},
        {"verbs": ["get"]},
    ]});
    let e = api.create(resources::CLUSTERROLES, "", role).unwrap_err();
    assert_eq!(
        e.message,
        "ClusterRole.rbac.authorization.k8s.io \"r\" is invalid: [rules[0].verbs: Required value: verbs must contain at least one value, rules[2].apiGroups: Required value: resource rules must supply at least one api group, rules[2].resources: Required value: resource rules must supply at least one resource]"
    );
    let mut causes = Vec::new();
    check(resources::ROLES, &json!({"rules": [{"verbs": ["get"], "nonResourceURLs": ["/a"], "resources": ["x"]}]}), &mut causes);
    let msgs: Vec<&str> = causes.iter().map(|c| c.message.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "Invalid value: []string{\"/a\"}: namespaced rules cannot apply to non-resource URLs",
            "Invalid value: []string{\"/a\"}: rules cannot apply to both regular resources and non-resource URLs",
        ]
    );
}

#[test]
fn table_rows() {
    let v = json!({"metadata": {"name": "b", "creationTimestamp": "2025-01-01T00:00:00Z"},
                   "roleRef": {"kind": "ClusterRole", "name": "view"},
                   "subjects": [{"kind": "User", "name": "a"}, {"kind": "User", "name": "b"}, {"kind": "Group", "name": "g"},
                                {"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}]});
    let cells = table_cells(resources::ROLEBINDINGS, &v, "5m".into());
    assert_eq!(cells, vec![json!("b"), json!("ClusterRole/view"), json!("5m"), json!("a, b"), json!("g"), json!("ns/sa")]);
    let cols = table_columns(resources::CLUSTERROLEBINDINGS, json!("n"), json!("a"));
    let names: Vec<&str> = cols.iter().skip(1).filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, ["Role", "Users", "Groups", "ServiceAccounts"]);
    assert_eq!(table_cells(resources::ROLES, &v, String::new()), vec![json!("b"), json!("2025-01-01T00:00:00Z")]);
}

#[test]
fn odd_bodies_never_panic() {
    for body in [json!(null), json!([]), json!({"roleRef": 3, "subjects": "x", "rules": {}}), json!({"rules": [1, null, "x"], "subjects": [1, {"kind": 2}]})] {
        for res in resources::RBAC {
            let mut b = body.clone();
            apply_defaults(&mut b);
            let mut causes = Vec::new();
            check(res, &b, &mut causes);
            check_update(res, &body, &b, &mut causes);
        }
    }
}
