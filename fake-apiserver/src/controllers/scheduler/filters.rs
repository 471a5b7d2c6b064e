//! The Filter plugins of the default profile that apply to a fake cluster, in upstream's order
//! (NodeUnschedulable, NodeName, TaintToleration, NodeAffinity, NodeResourcesFit); the first
//! plugin that rejects a node decides its status, as the framework stops at the first failure.

use serde_json::Value;

use super::affinity;
use super::resources::Resource;
use super::snapshot::NodeInfo;
use super::taints::{self, Taint, UNSCHEDULABLE_TAINT};

/// NodeUnschedulable's reason.
pub const ERR_REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";
/// NodeName's reason.
pub const ERR_REASON_NODE_NAME: &str = "node(s) didn't match the requested node name";
/// TaintToleration's reason (taint keys and values are no longer shown, kubernetes#134740).
pub const ERR_REASON_UNTOLERATED_TAINT: &str = "node(s) had untolerated taint(s)";
/// NodeAffinity's reason.
pub const ERR_REASON_NODE_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
/// NodeResourcesFit's reason when the node has no room for one more pod.
pub const ERR_REASON_TOO_MANY_PODS: &str = "Too many pods";

/// How a plugin rejected a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Preemption might help (e.g. resources other pods hold).
    Unschedulable,
    /// Preemption cannot help (e.g. a taint, or a request larger than the node).
    UnschedulableAndUnresolvable,
}

/// A rejection: its code and reasons (each reason counts once per node in the message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    pub reasons: Vec<String>,
}

impl Status {
    /// An UnschedulableAndUnresolvable status with one reason.
    pub fn unresolvable(reason: impl Into<String>) -> Status {
        Status { code: Code::UnschedulableAndUnresolvable, reasons: vec![reason.into()] }
    }
}

/// NodeUnschedulable: a cordoned node (`spec.unschedulable`) unless the pod tolerates the
/// `node.kubernetes.io/unschedulable:NoSchedule` taint.
pub fn node_unschedulable(pod: &Value, node: &Value) -> Option<Status> {
    let cordoned = node.pointer("/spec/unschedulable").and_then(Value::as_bool).unwrap_or(false);
    let taint = Taint { key: UNSCHEDULABLE_TAINT, value: "", effect: "NoSchedule" };
    (cordoned && !taints::tolerated(taints::pod_tolerations(pod), &taint)).then(|| Status::unresolvable(ERR_REASON_UNSCHEDULABLE))
}

/// NodeName: a pod naming a node fits only that node.
pub fn node_name(pod: &Value, node_name: &str) -> Option<Status> {
    let want = pod.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("");
    (!want.is_empty() && want != node_name).then(|| Status::unresolvable(ERR_REASON_NODE_NAME))
}

/// TaintToleration: every NoSchedule and NoExecute taint must be tolerated.
pub fn taint_toleration(pod: &Value, node: &Value) -> Option<Status> {
    taints::first_untolerated(taints::node_taints(node), taints::pod_tolerations(pod)).map(|_| Status::unresolvable(ERR_REASON_UNTOLERATED_TAINT))
}

/// NodeAffinity: `spec.nodeSelector` and required node affinity.
pub fn node_affinity(pod: &Value, node: &Value) -> Option<Status> {
    (!affinity::matches_required(pod, node)).then(|| Status::unresolvable(ERR_REASON_NODE_AFFINITY))
}

/// One shortfall found by [`node_resources_fit`].
struct Insufficient {
    reason: String,
    /// The request exceeds the whole node, so evicting pods cannot help.
    unresolvable: bool,
}

fn check(out: &mut Vec<Insufficient>, name: &str, want: i64, allocatable: i64, requested: i64) {
    if want > 0 && want > allocatable.saturating_sub(requested) {
        out.push(Insufficient { reason: format!("Insufficient {name}"), unresolvable: want > allocatable });
    }
}

/// NodeResourcesFit: one more pod must fit `pods`, and each resource the pod requests must fit
/// in allocatable minus what the bound pods request. All shortfalls are reported.
pub fn node_resources_fit(req: &Resource, info: &NodeInfo) -> Option<Status> {
    let mut out = Vec::new();
    let pods = i64::try_from(info.pods.len()).unwrap_or(i64::MAX);
    if pods.saturating_add(1) > info.allocatable.allowed_pods {
        out.push(Insufficient { reason: ERR_REASON_TOO_MANY_PODS.into(), unresolvable: false });
    }
    if !req.is_empty_request() {
        let (a, r) = (&info.allocatable, &info.requested);
        check(&mut out, "cpu", req.milli_cpu, a.milli_cpu, r.milli_cpu);
        check(&mut out, "memory", req.memory, a.memory, r.memory);
        check(&mut out, "ephemeral-storage", req.ephemeral_storage, a.ephemeral_storage, r.ephemeral_storage);
        for (name, want) in &req.scalars {
            let have = a.scalars.get(name).copied().unwrap_or(0);
            check(&mut out, name, *want, have, r.scalars.get(name).copied().unwrap_or(0));
        }
    }
    if out.is_empty() {
        return None;
    }
    let code = if out.iter().any(|i| i.unresolvable) { Code::UnschedulableAndUnresolvable } else { Code::Unschedulable };
    Some(Status { code, reasons: out.into_iter().map(|i| i.reason).collect() })
}

/// Run the filters in upstream's order; `None` when the node fits.
pub fn run_filters(pod: &Value, req: &Resource, info: &NodeInfo) -> Option<Status> {
    node_unschedulable(pod, &info.node)
        .or_else(|| node_name(pod, &info.name))
        .or_else(|| taint_toleration(pod, &info.node))
        .or_else(|| node_affinity(pod, &info.node))
        .or_else(|| node_resources_fit(req, info))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::controllers::scheduler::resources::pod_requests;
    use crate::controllers::scheduler::snapshot::PodInfo;

    fn node(spec: Value, alloc: Value) -> NodeInfo {
        NodeInfo::new(json!({"metadata": {"name": "n1", "labels": {"zone": "a"}}, "spec": spec, "status": {"allocatable": alloc}}))
    }

    fn pod(spec: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "d", "uid": "u-p"}, "spec": spec})
    }

    #[test]
    fn cordoned_nodes() {
        let n = node(json!({"unschedulable": true}), json!({}));
        assert_eq!(node_unschedulable(&pod(json!({})), &n.node), Some(Status::unresolvable(ERR_REASON_UNSCHEDULABLE)));
        let tol = pod(json!({"tolerations": [{"key": UNSCHEDULABLE_TAINT, "operator": "Exists", "effect": "NoSchedule"}]}));
        assert_eq!(node_unschedulable(&tol, &n.node), None);
        let all = pod(json!({"tolerations": [{"operator": "Exists"}]}));
        assert_eq!(node_unschedulable(&all, &n.node), None);
        assert_eq!(node_unschedulable(&pod(json!({})), &node(json!({}), json!({})).node), None);
    }

    #[test]
    fn requested_node_name() {
        assert_eq!(node_name(&pod(json!({})), "n1"), None);
        assert_eq!(node_name(&pod(json!({"nodeName": "n1"})), "n1"), None);
        assert_eq!(node_name(&pod(json!({"nodeName": "n2"})), "n1"), Some(Status::unresolvable(ERR_REASON_NODE_NAME)));
    }

    #[test]
    fn taints() {
        let n = node(json!({"taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}, {"key": "soft", "effect": "PreferNoSchedule"}]}), json!({}));
        assert_eq!(taint_toleration(&pod(json!({})), &n.node), Some(Status::unresolvable(ERR_REASON_UNTOLERATED_TAINT)));
        let tol = pod(json!({"tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}]}));
        assert_eq!(taint_toleration(&tol, &n.node), None, "PreferNoSchedule is ignored");
        let exec = node(json!({"taints": [{"key": "k", "value": "v", "effect": "NoExecute"}]}), json!({}));
        let wrong_effect = pod(json!({"tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}]}));
        assert!(taint_toleration(&wrong_effect, &exec.node).is_some());
    }

    #[test]
    fn affinity_and_selector() {
        let n = node(json!({}), json!({}));
        assert_eq!(node_affinity(&pod(json!({"nodeSelector": {"zone": "a"}})), &n.node), None);
        assert_eq!(node_affinity(&pod(json!({"nodeSelector": {"zone": "b"}})), &n.node), Some(Status::unresolvable(ERR_REASON_NODE_AFFINITY)));
    }

    fn requests(cpu: &str, mem: &str) -> Value {
        json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": mem}}}]})
    }

    #[test]
    fn resources_fit() {
        let mut n = node(json!({}), json!({"cpu": "2", "memory": "2Gi", "pods": "2"}));
        let fits = pod_requests(&pod(requests("1", "1Gi")));
        assert_eq!(node_resources_fit(&fits, &n), None);
        n.add_pod(PodInfo::from_pod(&pod(requests("1500m", "1Gi"))));
        let s = node_resources_fit(&fits, &n).unwrap();
        assert_eq!(s, Status { code: Code::Unschedulable, reasons: vec!["Insufficient cpu".into()] });
        let huge = pod_requests(&pod(requests("4", "8Gi")));
        let s = node_resources_fit(&huge, &n).unwrap();
        assert_eq!(s.code, Code::UnschedulableAndUnresolvable, "larger than the node");
        assert_eq!(s.reasons, vec!["Insufficient cpu", "Insufficient memory"]);
        n.add_pod(PodInfo::from_pod(&pod(json!({"containers": [{"name": "c"}]}))));
        let none = pod_requests(&pod(json!({"containers": [{"name": "c"}]})));
        assert_eq!(node_resources_fit(&none, &n), Some(Status { code: Code::Unschedulable, reasons: vec![ERR_REASON_TOO_MANY_PODS.into()] }));
    }

    #[test]
    fn scalar_and_storage_fit() {
        let n = node(json!({}), json!({"pods": "10", "example.com/gpu": "1", "ephemeral-storage": "1Gi"}));
        let gpu = pod_requests(&pod(json!({"containers": [{"name": "c", "resources": {"requests": {"example.com/gpu": "2", "ephemeral-storage": "2Gi"}}}]})));
        let s = node_resources_fit(&gpu, &n).unwrap();
        assert_eq!(s.reasons, vec!["Insufficient ephemeral-storage", "Insufficient example.com/gpu"]);
        let nothing = node(json!({}), json!({}));
        assert_eq!(node_resources_fit(&pod_requests(&pod(json!({}))), &nothing).unwrap().reasons, vec![ERR_REASON_TOO_MANY_PODS]);
    }

    #[test]
    fn first_failing_filter_wins() {
        let n = node(json!({"unschedulable": true, "taints": [{"key": "x", "effect": "NoSchedule"}]}), json!({}));
        let p = pod(json!({"nodeSelector": {"zone": "b"}}));
        let req = pod_requests(&p);
        assert_eq!(run_filters(&p, &req, &n).unwrap().reasons, vec![ERR_REASON_UNSCHEDULABLE]);
        let n = node(json!({"taints": [{"key": "x", "effect": "NoSchedule"}]}), json!({}));
        assert_eq!(run_filters(&p, &req, &n).unwrap().reasons, vec![ERR_REASON_UNTOLERATED_TAINT]);
        let n = node(json!({}), json!({"pods": "1"}));
        assert_eq!(run_filters(&p, &req, &n).unwrap().reasons, vec![ERR_REASON_NODE_AFFINITY]);
        let ok = pod(json!({"nodeSelector": {"zone": "a"}}));
        assert_eq!(run_filters(&ok, &pod_requests(&ok), &n), None);
    }
}
