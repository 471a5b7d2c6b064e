//! Upstream's bootstrap RBAC policy (plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go)
//! as JSON objects ready to be stored: the default ClusterRoles and ClusterRoleBindings with
//! the `kubernetes.io/bootstrapping: rbac-defaults` label and the
//! `rbac.authorization.kubernetes.io/autoupdate: "true"` annotation.
//!
//! Rules follow upstream's rendered golden file (testdata/cluster-roles.yaml) with default
//! feature gates. `admin`, `edit` and `view` are aggregated upstream; here they carry the
//! aggregated rules directly (no `aggregationRule`), in the order the aggregation controller
//! produces them.

use serde_json::{Map, Value, json};

use super::rbac::{PolicyRule, RBAC_GROUP, RbacSnapshot};
use super::user;

/// The label every bootstrap object carries.
pub const BOOTSTRAP_LABEL: (&str, &str) = ("kubernetes.io/bootstrapping", "rbac-defaults");
/// The annotation that lets the API server reconcile bootstrap objects.
pub const AUTOUPDATE_ANNOTATION: (&str, &str) = ("rbac.authorization.kubernetes.io/autoupdate", "true");

const READ: &[&str] = &["get", "list", "watch"];
const READ_WRITE: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];
const EVENT_WRITE: &[&str] = &["create", "patch", "update"];
const CORE: &[&str] = &[""];
const EVENT_GROUPS: &[&str] = &["", "events.k8s.io"];

fn owned(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// A resource rule.
fn r(verbs: &[&str], groups: &[&str], resources: &[&str]) -> PolicyRule {
    PolicyRule { verbs: owned(verbs), api_groups: owned(groups), resources: owned(resources), ..PolicyRule::default() }
}

/// A resource rule limited to resource names.
fn rn(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> PolicyRule {
    PolicyRule { resource_names: owned(names), ..r(verbs, groups, resources) }
}

/// A non-resource URL rule.
fn urls(verbs: &[&str], paths: &[&str]) -> PolicyRule {
    PolicyRule { verbs: owned(verbs), non_resource_urls: owned(paths), ..PolicyRule::default() }
}

fn metadata(name: &str, extra_label: Option<&str>) -> Value {
    let mut labels = Map::new();
    labels.insert(BOOTSTRAP_LABEL.0.into(), BOOTSTRAP_LABEL.1.into());
    if let Some(label) = extra_label {
        labels.insert(label.into(), "true".into());
    }
    json!({
        "name": name,
        "labels": labels,
        "annotations": {AUTOUPDATE_ANNOTATION.0: AUTOUPDATE_ANNOTATION.1},
    })
}

/// A bootstrap ClusterRole object.
fn cluster_role(name: &str, extra_label: Option<&str>, rules: Vec<PolicyRule>) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": metadata(name, extra_label),
        "rules": rules.iter().map(PolicyRule::to_value).collect::<Vec<_>>(),
    })
}

/// A bootstrap ClusterRoleBinding of ClusterRole `name` (same name) to `subjects`
/// (`(kind, name)`; ServiceAccount names are `namespace/name`).
fn binding(name: &str, subjects: &[(&str, &str)]) -> Value {
    let subjects: Vec<Value> = subjects
        .iter()
        .map(|(kind, subject)| match (*kind, subject.split_once('/')) {
            ("ServiceAccount", Some((ns, sa))) => json!({"kind": kind, "name": sa, "namespace": ns}),
            _ => json!({"apiGroup": RBAC_GROUP, "kind": kind, "name": subject}),
        })
        .collect();
    let mut obj = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": metadata(name, None),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name},
    });
    if !subjects.is_empty() {
        obj["subjects"] = Value::Array(subjects);
    }
    obj
}

/// Upstream's `NodeRules()`: what the Node authorizer grants every node for resources it does
/// not subdivide (the rules of the `system:node` ClusterRole).
pub fn node_rules() -> Vec<PolicyRule> {
    vec![
        r(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
        r(&["create"], &["authorization.k8s.io"], &["localsubjectaccessreviews", "subjectaccessreviews"]),
        r(READ, CORE, &["services"]),
        r(&["create", "get", "list", "watch"], CORE, &["nodes"]),
        r(&["patch", "update"], CORE, &["nodes/status"]),
        r(&["patch", "update"], CORE, &["nodes"]),
        r(EVENT_WRITE, CORE, &["events"]),
        r(READ, CORE, &["pods"]),
        r(&["create", "delete"], CORE, &["pods"]),
        r(&["patch", "update"], CORE, &["pods/status"]),
        r(&["create"], CORE, &["pods/eviction"]),
        r(READ, CORE, &["configmaps", "secrets"]),
        r(&["get"], CORE, &["persistentvolumeclaims", "persistentvolumes"]),
        r(&["get"], CORE, &["endpoints"]),
        r(&["create", "get", "list", "watch"], &["certificates.k8s.io"], &["certificatesigningrequests"]),
        r(&["create", "delete", "get", "patch", "update"], &["coordination.k8s.io"], &["leases"]),
        r(&["get"], &["storage.k8s.io"], &["volumeattachments"]),
        r(&["create"], CORE, &["serviceaccounts/token"]),
        r(&["get", "patch", "update"], CORE, &["persistentvolumeclaims/status"]),
        r(READ, &["storage.k8s.io"], &["csidrivers"]),
        r(&["create", "delete", "get", "patch", "update"], &["storage.k8s.io"], &["csinodes"]),
        r(READ, &["node.k8s.io"], &["runtimeclasses"]),
        r(&["get"], &["resource.k8s.io"], &["resourceclaims"]),
        r(&["deletecollection"], &["resource.k8s.io"], &["resourceslices"]),
    ]
}

/// `system:aggregate-to-admin`.
fn aggregate_to_admin() -> Vec<PolicyRule> {
    vec![
        r(&["create"], &["authorization.k8s.io"], &["localsubjectaccessreviews"]),
        r(READ_WRITE, &["rbac.authorization.k8s.io"], &["rolebindings", "roles"]),
    ]
}

/// `system:aggregate-to-edit`.
fn aggregate_to_edit() -> Vec<PolicyRule> {
    let pod_access = ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"];
    let core_write = [
        "configmaps",
        "events",
        "persistentvolumeclaims",
        "replicationcontrollers",
        "replicationcontrollers/scale",
        "secrets",
        "serviceaccounts",
        "services",
        "services/proxy",
    ];
    let apps = [
        "daemonsets",
        "deployments",
        "deployments/rollback",
        "deployments/scale",
        "replicasets",
        "replicasets/scale",
        "statefulsets",
        "statefulsets/scale",
    ];
    let extensions = [
        "daemonsets",
        "deployments",
        "deployments/rollback",
        "deployments/scale",
        "ingresses",
        "networkpolicies",
        "replicasets",
        "replicasets/scale",
        "replicationcontrollers/scale",
    ];
    vec![
        r(READ, CORE, &["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy"]),
        r(&["impersonate"], CORE, &["serviceaccounts"]),
        r(WRITE, CORE, &pod_access),
        r(&["create"], CORE, &["pods/eviction"]),
        r(WRITE, CORE, &core_write),
        r(&["create"], CORE, &["serviceaccounts/token"]),
        r(WRITE, &["apps"], &apps),
        r(WRITE, &["autoscaling"], &["horizontalpodautoscalers"]),
        r(WRITE, &["batch"], &["cronjobs", "jobs"]),
        r(WRITE, &["extensions"], &extensions),
        r(WRITE, &["policy"], &["poddisruptionbudgets"]),
        r(WRITE, &["networking.k8s.io"], &["ingresses", "networkpolicies"]),
        r(READ_WRITE, &["coordination.k8s.io"], &["leases"]),
    ]
}

/// `system:aggregate-to-view`.
fn aggregate_to_view() -> Vec<PolicyRule> {
    let core_read = [
        "configmaps",
        "endpoints",
        "persistentvolumeclaims",
        "persistentvolumeclaims/status",
        "pods",
        "replicationcontrollers",
        "replicationcontrollers/scale",
        "serviceaccounts",
        "services",
        "services/status",
    ];
    let core_status = [
        "bindings",
        "events",
        "limitranges",
        "namespaces/status",
        "pods/log",
        "pods/status",
        "replicationcontrollers/status",
        "resourcequotas",
        "resourcequotas/status",
    ];
    let apps = [
        "controllerrevisions",
        "daemonsets",
        "daemonsets/status",
        "deployments",
        "deployments/scale",
        "deployments/status",
        "replicasets",
        "replicasets/scale",
        "replicasets/status",
        "statefulsets",
        "statefulsets/scale",
        "statefulsets/status",
    ];
    let extensions = [
        "daemonsets",
        "daemonsets/status",
        "deployments",
        "deployments/scale",
        "deployments/status",
        "ingresses",
        "ingresses/status",
        "networkpolicies",
        "replicasets",
        "replicasets/scale",
        "replicasets/status",
        "replicationcontrollers/scale",
    ];
    vec![
        r(READ, CORE, &core_read),
        r(READ, CORE, &core_status),
        r(READ, CORE, &["namespaces"]),
        r(READ, &["discovery.k8s.io"], &["endpointslices"]),
        r(READ, &["apps"], &apps),
        r(READ, &["autoscaling"], &["horizontalpodautoscalers", "horizontalpodautoscalers/status"]),
        r(READ, &["batch"], &["cronjobs", "cronjobs/status", "jobs", "jobs/status"]),
        r(READ, &["extensions"], &extensions),
        r(READ, &["policy"], &["poddisruptionbudgets", "poddisruptionbudgets/status"]),
        r(READ, &["networking.k8s.io"], &["ingresses", "ingresses/status", "networkpolicies"]),
    ]
}

/// `system:kube-controller-manager`.
fn kube_controller_manager() -> Vec<PolicyRule> {
    vec![
        r(EVENT_WRITE, EVENT_GROUPS, &["events"]),
        r(&["create"], &["coordination.k8s.io"], &["leases"]),
        rn(&["get", "update"], &["coordination.k8s.io"], &["leases"], &["kube-controller-manager"]),
        r(&["create"], CORE, &["secrets", "serviceaccounts"]),
        r(&["delete"], CORE, &["secrets"]),
        r(&["get"], CORE, &["configmaps", "namespaces", "secrets", "serviceaccounts"]),
        r(&["update"], CORE, &["secrets", "serviceaccounts"]),
        r(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
        r(&["create"], &["authorization.k8s.io"], &["subjectaccessreviews"]),
        r(&["list", "watch"], &["*"], &["*"]),
        r(&["create"], CORE, &["serviceaccounts/token"]),
    ]
}

/// `system:kube-scheduler`.
fn kube_scheduler() -> Vec<PolicyRule> {
    let dra_write = &["get", "list", "patch", "update", "watch"];
    vec![
        r(EVENT_WRITE, EVENT_GROUPS, &["events"]),
        r(&["create"], &["coordination.k8s.io"], &["leases"]),
        rn(&["get", "list", "update", "watch"], &["coordination.k8s.io"], &["leases"], &["kube-scheduler"]),
        r(READ_WRITE, &["coordination.k8s.io"], &["leasecandidates"]),
        r(READ, CORE, &["nodes"]),
        r(&["delete", "get", "list", "watch"], CORE, &["pods"]),
        r(&["create"], CORE, &["bindings", "pods/binding"]),
        r(&["patch", "update"], CORE, &["pods/status"]),
        r(READ, CORE, &["replicationcontrollers", "services"]),
        r(READ, &["apps", "extensions"], &["replicasets"]),
        r(READ, &["apps"], &["statefulsets"]),
        r(READ, &["policy"], &["poddisruptionbudgets"]),
        r(READ, CORE, &["persistentvolumeclaims", "persistentvolumes"]),
        r(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
        r(&["create"], &["authorization.k8s.io"], &["subjectaccessreviews"]),
        r(READ, &["storage.k8s.io"], &["csinodes"]),
        r(READ, &["storage.k8s.io"], &["volumeattachments"]),
        r(READ, CORE, &["namespaces"]),
        r(READ, &["storage.k8s.io"], &["csidrivers"]),
        r(READ, &["storage.k8s.io"], &["csistoragecapacities"]),
        r(READ, &["resource.k8s.io"], &["deviceclasses"]),
        r(dra_write, &["resource.k8s.io"], &["resourceclaims"]),
        r(dra_write, &["resource.k8s.io"], &["resourceclaims/status"]),
        r(dra_write, CORE, &["pods/finalizers"]),
        r(READ, &["resource.k8s.io"], &["resourceslices"]),
    ]
}

/// The CSR roles: `system:certificates.k8s.io:*`.
fn certificate_roles() -> Vec<Value> {
    let group = &["certificates.k8s.io"];
    let mut roles = vec![
        cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            None,
            vec![r(&["create"], group, &["certificatesigningrequests/nodeclient"])],
        ),
        cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            None,
            vec![r(&["create"], group, &["certificatesigningrequests/selfnodeclient"])],
        ),
    ];
    for (role, signer) in [
        ("kube-apiserver-client-approver", "kubernetes.io/kube-apiserver-client"),
        ("kube-apiserver-client-kubelet-approver", "kubernetes.io/kube-apiserver-client-kubelet"),
        ("kubelet-serving-approver", "kubernetes.io/kubelet-serving"),
        ("legacy-unknown-approver", "kubernetes.io/legacy-unknown"),
    ] {
        let rule = rn(&["approve"], group, &["signers"], &[signer]);
        roles.push(cluster_role(&format!("system:certificates.k8s.io:{role}"), None, vec![rule]));
    }
    roles
}

/// The user-facing roles: cluster-admin, admin, edit, view and their aggregation sources.
fn user_facing_roles() -> Vec<Value> {
    let view = aggregate_to_view();
    let edit: Vec<PolicyRule> = aggregate_to_edit().into_iter().chain(view.clone()).collect();
    let admin: Vec<PolicyRule> = edit.iter().cloned().chain(aggregate_to_admin()).collect();
    vec![
        cluster_role("admin", None, admin),
        cluster_role("cluster-admin", None, vec![r(&["*"], &["*"], &["*"]), urls(&["*"], &["*"])]),
        cluster_role("edit", Some("rbac.authorization.k8s.io/aggregate-to-admin"), edit),
        cluster_role(
            "system:aggregate-to-admin",
            Some("rbac.authorization.k8s.io/aggregate-to-admin"),
            aggregate_to_admin(),
        ),
        cluster_role(
            "system:aggregate-to-edit",
            Some("rbac.authorization.k8s.io/aggregate-to-edit"),
            aggregate_to_edit(),
        ),
        cluster_role(
            "system:aggregate-to-view",
            Some("rbac.authorization.k8s.io/aggregate-to-view"),
            aggregate_to_view(),
        ),
        cluster_role("view", Some("rbac.authorization.k8s.io/aggregate-to-edit"), view),
    ]
}

/// Discovery, health and identity roles.
fn discovery_roles() -> Vec<Value> {
    let discovery = [
        "/api",
        "/api/*",
        "/apis",
        "/apis/*",
        "/healthz",
        "/livez",
        "/openapi",
        "/openapi/*",
        "/readyz",
        "/version",
        "/version/",
    ];
    let monitoring =
        ["/healthz", "/healthz/*", "/livez", "/livez/*", "/metrics", "/metrics/slis", "/readyz", "/readyz/*"];
    let issuer = [
        "/.well-known/openid-configuration",
        "/.well-known/openid-configuration/",
        "/openid/v1/jwks",
        "/openid/v1/jwks/",
    ];
    let basic_user = vec![
        r(&["create"], &["authorization.k8s.io"], &["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
        r(&["create"], &["authentication.k8s.io"], &["selfsubjectreviews"]),
    ];
    vec![
        cluster_role("system:basic-user", None, basic_user),
        cluster_role("system:discovery", None, vec![urls(&["get"], &discovery)]),
        cluster_role("system:monitoring", None, vec![urls(&["get"], &monitoring)]),
        cluster_role(
            "system:public-info-viewer",
            None,
            vec![urls(&["get"], &["/healthz", "/livez", "/readyz", "/version", "/version/"])],
        ),
        cluster_role("system:service-account-issuer-discovery", None, vec![urls(&["get"], &issuer)]),
    ]
}

/// Roles of node components: the kubelet, kube-proxy, node bootstrap and node add-ons.
fn node_roles() -> Vec<Value> {
    let csr = &["certificates.k8s.io"];
    vec![
        cluster_role("system:node", None, node_rules()),
        cluster_role(
            "system:node-bootstrapper",
            None,
            vec![r(&["create", "get", "list", "watch"], csr, &["certificatesigningrequests"])],
        ),
        cluster_role(
            "system:node-problem-detector",
            None,
            vec![
                r(&["get"], CORE, &["nodes"]),
                r(&["patch"], CORE, &["nodes/status"]),
                r(EVENT_WRITE, EVENT_GROUPS, &["events"]),
            ],
        ),
        cluster_role(
            "system:node-proxier",
            None,
            vec![
                r(&["list", "watch"], CORE, &["endpoints", "services"]),
                r(READ, CORE, &["nodes"]),
                r(EVENT_WRITE, EVENT_GROUPS, &["events"]),
                r(&["list", "watch"], &["discovery.k8s.io"], &["endpointslices"]),
            ],
        ),
        cluster_role(
            "system:kubelet-api-admin",
            None,
            vec![
                r(READ, CORE, &["nodes"]),
                r(&["proxy"], CORE, &["nodes"]),
                r(&["*"], CORE, &["nodes/log", "nodes/metrics", "nodes/proxy", "nodes/stats"]),
            ],
        ),
    ]
}

/// Roles of control-plane components and helpers.
fn control_plane_roles() -> Vec<Value> {
    let auth_delegator = vec![
        r(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
        r(&["create"], &["authorization.k8s.io"], &["subjectaccessreviews"]),
    ];
    let heapster =
        vec![r(READ, CORE, &["events", "namespaces", "nodes", "pods"]), r(READ, &["extensions"], &["deployments"])];
    let pv_provisioner = vec![
        r(&["create", "delete", "get", "list", "watch"], CORE, &["persistentvolumes"]),
        r(&["get", "list", "update", "watch"], CORE, &["persistentvolumeclaims"]),
        r(READ, &["storage.k8s.io"], &["storageclasses"]),
        r(&["watch"], CORE, &["events"]),
        r(EVENT_WRITE, EVENT_GROUPS, &["events"]),
    ];
    let volume_scheduler = vec![
        r(&["get", "list", "patch", "update", "watch"], CORE, &["persistentvolumes"]),
        r(READ, &["storage.k8s.io"], &["storageclasses"]),
        r(&["get", "list", "patch", "update", "watch"], CORE, &["persistentvolumeclaims"]),
    ];
    vec![
        cluster_role("system:auth-delegator", None, auth_delegator),
        cluster_role("system:heapster", None, heapster),
        cluster_role("system:kube-aggregator", None, vec![r(READ, CORE, &["endpoints", "services"])]),
        cluster_role("system:kube-controller-manager", None, kube_controller_manager()),
        cluster_role("system:kube-dns", None, vec![r(&["list", "watch"], CORE, &["endpoints", "services"])]),
        cluster_role("system:kube-scheduler", None, kube_scheduler()),
        cluster_role("system:persistent-volume-provisioner", None, pv_provisioner),
        cluster_role("system:volume-scheduler", None, volume_scheduler),
    ]
}

/// Upstream's bootstrap ClusterRoles.
pub fn cluster_roles() -> Vec<Value> {
    let mut roles = user_facing_roles();
    roles.extend(certificate_roles());
    roles.extend(discovery_roles());
    roles.extend(node_roles());
    roles.extend(control_plane_roles());
    roles
}

/// Upstream's bootstrap ClusterRoleBindings (`system:node` is bound to nobody, as upstream:
/// nodes are authorized by the Node authorizer).
pub fn cluster_role_bindings() -> Vec<Value> {
    vec![
        binding("cluster-admin", &[("Group", user::SYSTEM_PRIVILEGED_GROUP)]),
        binding("system:basic-user", &[("Group", user::ALL_AUTHENTICATED)]),
        binding("system:discovery", &[("Group", user::ALL_AUTHENTICATED)]),
        binding("system:kube-controller-manager", &[("User", user::KUBE_CONTROLLER_MANAGER)]),
        binding("system:kube-dns", &[("ServiceAccount", "kube-system/kube-dns")]),
        binding("system:kube-scheduler", &[("User", user::KUBE_SCHEDULER)]),
        binding("system:monitoring", &[("Group", user::MONITORING_GROUP)]),
        binding("system:node", &[]),
        binding("system:node-proxier", &[("User", user::KUBE_PROXY)]),
        binding(
            "system:public-info-viewer",
            &[("Group", user::ALL_AUTHENTICATED), ("Group", user::ALL_UNAUTHENTICATED)],
        ),
        binding("system:service-account-issuer-discovery", &[("Group", user::ALL_SERVICE_ACCOUNTS_GROUP)]),
        binding("system:volume-scheduler", &[("User", user::KUBE_SCHEDULER)]),
    ]
}

/// All bootstrap objects: ClusterRoles, then ClusterRoleBindings.
pub fn objects() -> Vec<Value> {
    let mut all = cluster_roles();
    all.extend(cluster_role_bindings());
    all
}

/// An RBAC snapshot of the bootstrap policy alone.
pub fn snapshot() -> RbacSnapshot {
    RbacSnapshot::from_objects(&objects())
}

#[cfg(test)]
#[path = "bootstrap_tests.rs"]
mod tests;
