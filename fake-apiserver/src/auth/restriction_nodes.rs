//! NodeRestriction for Node objects: a node may only write itself, may not set a config
//! source, change its taints, or set labels outside the kubelet's allowed set
//! (k8s.io/kubelet/pkg/apis/well_known_labels.go).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::{Admit, Ctx, Operation, go_quote, normalized};

/// Label namespace kubelets may never set.
pub const LABEL_NAMESPACE_NODE_RESTRICTION: &str = "node-restriction.kubernetes.io";

/// Labels under `kubernetes.io`/`k8s.io` a kubelet may set on its Node (upstream's
/// `kubeletLabels`).
pub const KUBELET_LABELS: [&str; 11] = [
    "kubernetes.io/hostname",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
];

/// Label namespaces (and their subdomains) a kubelet may set (upstream's
/// `kubeletLabelNamespaces`).
pub const KUBELET_LABEL_NAMESPACES: [&str; 2] = ["kubelet.kubernetes.io", "node.kubernetes.io"];

fn label_namespace(key: &str) -> &str {
    key.split_once('/').map(|(ns, _)| ns).unwrap_or("")
}

fn in_namespace(ns: &str, domain: &str) -> bool {
    ns == domain || ns.strip_suffix(domain).is_some_and(|rest| rest.ends_with('.'))
}

/// Upstream's `IsKubeletLabel`.
pub fn is_kubelet_label(key: &str) -> bool {
    KUBELET_LABELS.contains(&key)
        || KUBELET_LABEL_NAMESPACES.iter().any(|allowed| in_namespace(label_namespace(key), allowed))
}

fn is_kubernetes_label(key: &str) -> bool {
    let ns = label_namespace(key);
    in_namespace(ns, "kubernetes.io") || in_namespace(ns, "k8s.io")
}

/// The labels a node may not add, remove or change, sorted (upstream's `getForbiddenLabels`).
pub fn forbidden_labels(modified: &BTreeSet<String>) -> Vec<String> {
    modified
        .iter()
        .filter(|l| {
            in_namespace(label_namespace(l), LABEL_NAMESPACE_NODE_RESTRICTION)
                || (is_kubernetes_label(l) && !is_kubelet_label(l))
        })
        .cloned()
        .collect()
}

fn labels(node: Option<&Value>) -> Map<String, Value> {
    node.and_then(|n| n.pointer("/metadata/labels")).and_then(Value::as_object).cloned().unwrap_or_default()
}

/// Keys whose values differ between two label maps (upstream's `getModifiedLabels`).
fn modified_labels(a: &Map<String, Value>, b: &Map<String, Value>) -> BTreeSet<String> {
    let differs = |x: &Map<String, Value>, y: &Map<String, Value>, k: &String| y.get(k) != x.get(k);
    a.keys().filter(|k| differs(a, b, k)).chain(b.keys().filter(|k| differs(b, a, k))).cloned().collect()
}

fn config_source(node: &Value) -> Option<&Value> {
    node.pointer("/spec/configSource").filter(|v| !v.is_null())
}

/// Upstream's `admitNode`.
pub(super) fn admit_node(ctx: &Ctx) -> Admit {
    let node = go_quote(ctx.node);
    if ctx.name != ctx.node {
        return ctx.forbid(format!("node {node} is not allowed to modify node {}", go_quote(ctx.name)));
    }
    match ctx.req.operation {
        Operation::Create => {
            let obj = ctx.object()?;
            if config_source(obj).is_some() {
                return ctx.forbid(format!("node {node} is not allowed to create pods with a non-nil configSource"));
            }
            let forbidden = forbidden_labels(&modified_labels(&labels(Some(obj)), &Map::new()));
            if !forbidden.is_empty() {
                return ctx.forbid(format!(
                    "node {node} is not allowed to set the following labels: {}",
                    forbidden.join(", ")
                ));
            }
            Ok(())
        }
        Operation::Update => {
            let obj = ctx.object()?;
            let old = ctx.old_object()?;
            if let Some(source) = config_source(obj)
                && normalized(Some(source)) != normalized(config_source(old))
            {
                return ctx.forbid(format!(
                    "node {node} is not allowed to update configSource to a new non-nil configSource"
                ));
            }
            if normalized(obj.pointer("/spec/taints")) != normalized(old.pointer("/spec/taints")) {
                return ctx.forbid(format!("node {node} is not allowed to modify taints"));
            }
            let forbidden = forbidden_labels(&modified_labels(&labels(Some(obj)), &labels(Some(old))));
            if !forbidden.is_empty() {
                return ctx.forbid(format!("is not allowed to modify labels: {}", forbidden.join(", ")));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
