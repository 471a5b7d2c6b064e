use serde_json::{Value, json};

use super::*;

fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> PolicyRule {
    let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect();
    PolicyRule { verbs: v(verbs), api_groups: v(groups), resources: v(resources), ..PolicyRule::default() }
}

fn named(mut r: PolicyRule, names: &[&str]) -> PolicyRule {
    r.resource_names = names.iter().map(|s| s.to_string()).collect();
    r
}

fn urls(verbs: &[&str], paths: &[&str]) -> PolicyRule {
    let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect();
    PolicyRule { verbs: v(verbs), non_resource_urls: v(paths), ..PolicyRule::default() }
}

fn covered(owner: &[PolicyRule], servant: &[PolicyRule]) -> bool {
    covers(owner, servant).is_empty()
}

#[test]
fn breakdown_is_one_rule_per_tuple() {
    let r = named(rule(&["get", "list"], &["", "apps"], &["pods"]), &["a", "b"]);
    let subs = breakdown_rule(&r);
    assert_eq!(subs.len(), 8);
    assert_eq!(subs[0], named(rule(&["get"], &[""], &["pods"]), &["a"]));
    assert_eq!(subs[1], named(rule(&["get"], &[""], &["pods"]), &["b"]));
    assert_eq!(subs[2], named(rule(&["list"], &[""], &["pods"]), &["a"]));
    assert_eq!(breakdown_rule(&urls(&["get", "post"], &["/healthz"])), [urls(&["get"], &["/healthz"]), urls(&["post"], &["/healthz"])]);
    assert!(breakdown_rule(&rule(&["get"], &[], &["pods"])).is_empty(), "no group: nothing granted");
}

#[test]
fn wildcards_cover_everything_of_their_kind() {
    let admin = rule(&["*"], &["*"], &["*"]);
    let wanted = [rule(&["get", "escalate"], &["", "rbac.authorization.k8s.io"], &["secrets", "roles", "pods/exec"])];
    assert!(covered(std::slice::from_ref(&admin), &wanted));
    assert!(covered(std::slice::from_ref(&admin), &[named(rule(&["get"], &[""], &["secrets"]), &["s"])]));
    assert!(!covered(std::slice::from_ref(&admin), &[urls(&["get"], &["/healthz"])]), "resource rules grant no URLs");
    // A wildcard asked for is only covered by a wildcard.
    assert!(!covered(&[rule(&["get", "list"], &[""], &["pods"])], &[rule(&["*"], &[""], &["pods"])]));
    assert!(!covered(&[rule(&["get"], &[""], &["pods"])], &[rule(&["get"], &["*"], &["pods"])]));
    assert!(covered(&[rule(&["get"], &["*"], &["pods"])], &[rule(&["get"], &["apps", ""], &["pods"])]));
}

#[test]
fn verbs_groups_and_resources_must_all_match() {
    let owner = [rule(&["get", "list"], &[""], &["pods", "services"]), rule(&["watch"], &["apps"], &["deployments"])];
    assert!(covered(&owner, &[rule(&["list"], &[""], &["services", "pods"]), rule(&["watch"], &["apps"], &["deployments"])]));
    let missing = covers(&owner, &[rule(&["get", "delete"], &["", "apps"], &["pods"])]);
    assert_eq!(missing, [rule(&["delete"], &[""], &["pods"]), rule(&["get"], &["apps"], &["pods"]), rule(&["delete"], &["apps"], &["pods"])]);
}

#[test]
fn resource_names_narrow_a_rule() {
    let only_a = [named(rule(&["get"], &[""], &["secrets"]), &["a"])];
    assert!(covered(&only_a, &[named(rule(&["get"], &[""], &["secrets"]), &["a"])]));
    assert!(!covered(&only_a, &[named(rule(&["get"], &[""], &["secrets"]), &["a", "b"])]));
    assert!(!covered(&only_a, &[rule(&["get"], &[""], &["secrets"])]), "names do not cover every name");
    let all = [rule(&["get"], &[""], &["secrets"])];
    assert!(covered(&all, &[named(rule(&["get"], &[""], &["secrets"]), &["a", "b"])]), "no names covers any name");
}

#[test]
fn non_resource_urls_match_exactly_or_by_star_prefix() {
    let owner = [urls(&["get"], &["/api/*", "/healthz"])];
    assert!(covered(&owner, &[urls(&["get"], &["/api/v1", "/api/", "/healthz"])]));
    assert!(!covered(&owner, &[urls(&["get"], &["/apis"])]));
    assert!(!covered(&owner, &[urls(&["get"], &["/healthz/etcd"])]));
    assert!(!covered(&owner, &[urls(&["post"], &["/healthz"])]));
    assert!(covered(&[urls(&["*"], &["*"])], &[urls(&["get", "put"], &["/anything/at/all"])]));
    assert!(!covered(&[urls(&["get"], &["/api/*"])], &[rule(&["get"], &[""], &["pods"])]), "URL rules grant no resources");
}

#[test]
fn subresources_are_covered_by_exact_names_or_star_slash() {
    let owner = [rule(&["get"], &[""], &["pods", "*/log"])];
    assert!(covered(&owner, &[rule(&["get"], &[""], &["pods/log", "nodes/log", "pods"])]));
    assert!(!covered(&owner, &[rule(&["get"], &[""], &["pods/exec"])]), "pods does not cover its subresources");
    assert!(covered(&[rule(&["get"], &[""], &["pods/exec"])], &[rule(&["get"], &[""], &["pods/exec"])]));
    assert!(!covered(&[rule(&["get"], &[""], &["pods/*"])], &[rule(&["get"], &[""], &["pods/log"])]), "pods/* is not a wildcard");
}

#[test]
fn compact_string_is_upstreams_format() {
    assert_eq!(compact_string(&rule(&["get", "list"], &[""], &["secrets"])), r#"{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list"]}"#);
    assert_eq!(
        compact_string(&named(rule(&["get"], &["apps"], &["deployments"]), &["web"])),
        r#"{APIGroups:["apps"], Resources:["deployments"], ResourceNames:["web"], Verbs:["get"]}"#
    );
    assert_eq!(compact_string(&urls(&["get"], &["/metrics"])), r#"{NonResourceURLs:["/metrics"], Verbs:["get"]}"#);
    assert_eq!(compact_string(&rule(&["get"], &[], &["we\"ird"])), r#"{Resources:["we\"ird"], Verbs:["get"]}"#);
    assert_eq!(compact_string(&PolicyRule::default()), "{}");
}

#[test]
fn compaction_merges_verbs_of_simple_rules_only() {
    let missing = [
        rule(&["get"], &[""], &["secrets"]),
        named(rule(&["get"], &[""], &["configmaps"]), &["a"]),
        rule(&["list"], &[""], &["secrets"]),
        urls(&["get"], &["/metrics"]),
        rule(&["watch"], &[""], &["secrets"]),
    ];
    let compacted = compact_rules(&missing);
    assert_eq!(compacted.len(), 3);
    assert!(compacted.contains(&rule(&["get", "list", "watch"], &[""], &["secrets"])));
    assert!(compacted.contains(&named(rule(&["get"], &[""], &["configmaps"]), &["a"])));
    assert!(compacted.contains(&urls(&["get"], &["/metrics"])));
}

fn policy() -> Vec<Value> {
    vec![
        json!({"kind": "ClusterRole", "metadata": {"name": "pod-reader"},
               "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]}),
        json!({"kind": "Role", "metadata": {"name": "cm-writer", "namespace": "team"},
               "rules": [{"verbs": ["create", "update"], "apiGroups": [""], "resources": ["configmaps"]}]}),
        json!({"kind": "ClusterRoleBinding", "metadata": {"name": "readers"},
               "roleRef": {"kind": "ClusterRole", "name": "pod-reader"}, "subjects": [{"kind": "Group", "name": "dev"}]}),
        json!({"kind": "RoleBinding", "metadata": {"name": "writers", "namespace": "team"},
               "roleRef": {"kind": "Role", "name": "cm-writer"}, "subjects": [{"kind": "User", "name": "alice"}]}),
        json!({"kind": "RoleBinding", "metadata": {"name": "sa", "namespace": "other"},
               "roleRef": {"kind": "Role", "name": "cm-writer"}, "subjects": [{"kind": "ServiceAccount", "name": "bot"}]}),
    ]
}

fn resolver(extra: &[Value]) -> RuleResolver {
    let objects = policy();
    RuleResolver::from_objects(objects.iter().chain(extra))
}

fn alice() -> User {
    User::new("alice", &["dev", "system:authenticated"])
}

#[test]
fn rules_for_reads_cluster_bindings_and_the_namespaces_bindings() {
    let r = resolver(&[]);
    let (rules, errors) = r.rules_for(&alice(), "team");
    assert_eq!(rules, [rule(&["get", "list"], &[""], &["pods"]), rule(&["create", "update"], &[""], &["configmaps"])]);
    assert!(errors.is_empty());
    assert_eq!(r.rules_for(&alice(), "").0.len(), 1, "no namespace: cluster bindings only");
    assert_eq!(r.rules_for(&alice(), "elsewhere").0.len(), 1);
    let bot = User::new("system:serviceaccount:other:bot", &[]);
    let (rules, errors) = r.rules_for(&bot, "other");
    assert!(rules.is_empty());
    assert_eq!(errors, [ResolveError::RoleNotFound("cm-writer".into())], "the Role is not in that namespace");
}

#[test]
fn role_references_resolve_as_the_registry_does() {
    let r = resolver(&[]);
    assert_eq!(r.role_reference_rules("ClusterRole", "pod-reader", "").map(<[PolicyRule]>::len), Ok(1));
    assert_eq!(r.role_reference_rules("Role", "cm-writer", "team").map(<[PolicyRule]>::len), Ok(1));
    let err = |kind, name, ns| r.role_reference_rules(kind, name, ns).unwrap_err().to_string();
    assert_eq!(err("ClusterRole", "x", "team"), "clusterroles.rbac.authorization.k8s.io \"x\" not found");
    assert_eq!(err("Role", "cm-writer", "other"), "roles.rbac.authorization.k8s.io \"cm-writer\" not found");
    assert_eq!(err("Role", "cm-writer", ""), "Namespace parameter required.");
    assert_eq!(err("Group", "x", "team"), "unsupported role reference kind: \"Group\"");
}

#[test]
fn refusal_message_is_upstreams() {
    let wanted = [rule(&["get", "list", "watch"], &[""], &["pods", "secrets"]), urls(&["get"], &["/metrics"])];
    let e = confirm_no_escalation(&resolver(&[]), &alice(), "team", &wanted).unwrap_err();
    assert_eq!(
        e.to_string(),
        "user \"alice\" (groups=[\"dev\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n\
         {APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"watch\"]}\n\
         {APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\" \"list\" \"watch\"]}\n\
         {NonResourceURLs:[\"/metrics\"], Verbs:[\"get\"]}"
    );
    assert!(confirm_no_escalation(&resolver(&[]), &alice(), "team", &[rule(&["create"], &[""], &["configmaps"])]).is_ok());
    let nobody = User::new("bob", &[]);
    let e = confirm_no_escalation(&resolver(&[]), &nobody, "", &[rule(&["get"], &[""], &["pods"])]).unwrap_err();
    assert!(e.to_string().starts_with("user \"bob\" (groups=[]) is attempting"), "{e}");
}

#[test]
fn resolution_errors_are_appended() {
    let broken = [
        json!({"kind": "ClusterRoleBinding", "metadata": {"name": "gone"},
               "roleRef": {"kind": "ClusterRole", "name": "gone"}, "subjects": [{"kind": "User", "name": "alice"}]}),
        json!({"kind": "ClusterRoleBinding", "metadata": {"name": "gone2"},
               "roleRef": {"kind": "ClusterRole", "name": "gone2"}, "subjects": [{"kind": "User", "name": "alice"}]}),
    ];
    let r = resolver(&broken[..1]);
    let e = confirm_no_escalation(&r, &alice(), "", &[rule(&["get"], &[""], &["secrets"])]).unwrap_err();
    assert!(
        e.to_string().ends_with("Verbs:[\"get\"]}; resolution errors: [clusterroles.rbac.authorization.k8s.io \"gone\" not found]"),
        "{e}"
    );
    let r = resolver(&broken);
    let e = confirm_no_escalation(&r, &alice(), "", &[rule(&["get"], &[""], &["secrets"])]).unwrap_err();
    assert!(e.to_string().ends_with("resolution errors: [[clusterroles.rbac.authorization.k8s.io \"gone\" not found, clusterroles.rbac.authorization.k8s.io \"gone2\" not found]]"), "{e}");
    assert!(confirm_no_escalation(&r, &alice(), "", &[rule(&["get"], &[""], &["pods"])]).is_ok(), "errors alone do not refuse");
}

fn write<'a>(user: &'a User, resource: RbacResource, ns: &'a str, object: &'a Value, old: Option<&'a Value>) -> RbacWrite<'a> {
    RbacWrite { user, resource, namespace: ns, object, old_object: old }
}

fn role(rules: Value) -> Value {
    json!({"kind": "Role", "metadata": {"name": "r", "namespace": "team", "resourceVersion": "5"}, "rules": rules})
}

#[test]
fn roles_need_their_rules_held() {
    let (r, user) = (resolver(&[]), alice());
    let fine = role(json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]));
    let secrets = role(json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}]));
    assert!(check_role(&write(&user, RbacResource::Roles, "team", &fine, None), &r).is_ok());
    let e = check_role(&write(&user, RbacResource::Roles, "team", &secrets, None), &r).unwrap_err();
    assert!(matches!(&e, EscalationError::NotHeld(n) if n.missing == [r#"{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}"#]));
    // An update that only changes GC fields passes; any other change is checked.
    let mut owned = secrets.clone();
    owned["metadata"]["ownerReferences"] = json!([{"name": "x"}]);
    owned["metadata"]["resourceVersion"] = json!("6");
    assert!(check_role(&write(&user, RbacResource::Roles, "team", &owned, Some(&secrets)), &r).is_ok());
    owned["metadata"]["labels"] = json!({"a": "b"});
    assert!(check_role(&write(&user, RbacResource::Roles, "team", &owned, Some(&secrets)), &r).is_err());
}

#[test]
fn aggregation_rules_need_full_authority() {
    let (r, user) = (resolver(&[]), alice());
    let agg = json!({"kind": "ClusterRole", "metadata": {"name": "agg"},
                     "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]}, "rules": []});
    let plain = json!({"kind": "ClusterRole", "metadata": {"name": "agg"}, "rules": []});
    let e = check_role(&write(&user, RbacResource::ClusterRoles, "", &agg, None), &r).unwrap_err();
    assert_eq!(e, EscalationError::AggregationRule);
    assert_eq!(check_role(&write(&user, RbacResource::ClusterRoles, "", &plain, Some(&agg)), &r), Err(EscalationError::AggregationRule), "removing it too");
    assert!(check_role(&write(&user, RbacResource::ClusterRoles, "", &plain, None), &r).is_ok());
    let admins = [json!({"kind": "ClusterRoleBinding", "metadata": {"name": "admins"},
                         "roleRef": {"kind": "ClusterRole", "name": "all"}, "subjects": [{"kind": "User", "name": "alice"}]}),
                  json!({"kind": "ClusterRole", "metadata": {"name": "all"},
                         "rules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}, {"verbs": ["*"], "nonResourceURLs": ["*"]}]})];
    assert!(check_role(&write(&user, RbacResource::ClusterRoles, "", &agg, None), &resolver(&admins)).is_ok());
}

fn binding(kind: &str, name: &str) -> Value {
    json!({"kind": "RoleBinding", "metadata": {"name": "b", "namespace": "team"},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name}, "subjects": [{"kind": "User", "name": "eve"}]})
}

#[test]
fn bindings_need_bind_or_the_roles_rules() {
    let (r, user) = (resolver(&[]), alice());
    let never = |_: &Attributes| false;
    let held = binding("ClusterRole", "pod-reader");
    assert!(check_binding(&write(&user, RbacResource::RoleBindings, "team", &held, None), &r, never).is_ok());
    let admin_rules = [json!({"kind": "ClusterRole", "metadata": {"name": "cluster-admin"},
                              "rules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]})];
    let r = resolver(&admin_rules);
    let admin = binding("ClusterRole", "cluster-admin");
    let e = check_binding(&write(&user, RbacResource::RoleBindings, "team", &admin, None), &r, never).unwrap_err();
    assert!(e.to_string().ends_with("\n{APIGroups:[\"*\"], Resources:[\"*\"], Verbs:[\"*\"]}"), "{e}");
    let bind_admin = |a: &Attributes| {
        (a.verb.as_str(), a.api_group.as_str(), a.resource.as_str(), a.name.as_str(), a.namespace.as_str())
            == ("bind", "rbac.authorization.k8s.io", "clusterroles", "cluster-admin", "team")
    };
    assert!(check_binding(&write(&user, RbacResource::RoleBindings, "team", &admin, None), &r, bind_admin).is_ok());
    let missing = binding("ClusterRole", "x");
    let e = check_binding(&write(&user, RbacResource::RoleBindings, "team", &missing, None), &r, never).unwrap_err();
    assert_eq!(e, EscalationError::RoleRef(ResolveError::ClusterRoleNotFound("x".into())));
}

#[test]
fn cluster_role_bindings_ask_bind_at_the_cluster_scope() {
    let user = alice();
    let crb = json!({"kind": "ClusterRoleBinding", "metadata": {"name": "b"},
                     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}});
    let attrs = bind_attributes(&user, &crb, "").unwrap();
    assert_eq!((attrs.verb.as_str(), attrs.namespace.as_str(), attrs.api_version.as_str()), ("bind", "", "*"));
    let seen = std::cell::RefCell::new(Vec::new());
    let record = |a: &Attributes| {
        seen.borrow_mut().push(a.namespace.clone());
        true
    };
    assert!(check_binding(&write(&user, RbacResource::ClusterRoleBindings, "", &crb, None), &RuleResolver::default(), record).is_ok());
    assert_eq!(*seen.borrow(), [""]);
    assert!(bind_attributes(&user, &binding("Group", "x"), "team").is_none());
    let esc = escalate_attributes(&user, RbacResource::Roles, "team", "");
    assert_eq!((esc.verb.as_str(), esc.resource.as_str(), esc.api_group.as_str()), ("escalate", "roles", "rbac.authorization.k8s.io"));
}

#[test]
fn gc_field_updates_are_recognized() {
    let old = json!({"metadata": {"name": "r", "resourceVersion": "1", "finalizers": ["f"]}, "rules": []});
    let mut new = json!({"metadata": {"name": "r", "resourceVersion": "2", "ownerReferences": [{"uid": "u"}]}});
    assert!(is_only_mutating_gc_fields(&new, &old), "GC fields and empty rules alike");
    new["rules"] = json!([{"verbs": ["get"]}]);
    assert!(!is_only_mutating_gc_fields(&new, &old));
    assert!(escalation_allowed(&User::new("x", &["system:masters"])));
    assert!(!escalation_allowed(&User::new("system:masters", &[])));
}
