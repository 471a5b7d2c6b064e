//! The cluster as one scheduling cycle sees it (upstream's cache snapshot of `NodeInfo`s): each
//! node with the pods bound to it and what they request. Pods in a terminal phase (Succeeded,
//! Failed) are not counted, as the scheduler's pod informer leaves them out; terminating pods
//! still are until they are gone.

use std::collections::BTreeMap;

use serde_json::Value;

use super::resources::{Resource, node_allocatable, pod_non_zero_requests, pod_requests};

/// What the scheduler keeps of a bound pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodInfo {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    /// `spec.priority` (0 when unset).
    pub priority: i64,
    /// The uid of the controlling owner (`ownerReferences[controller=true]`).
    pub owner_uid: Option<String>,
    pub terminating: bool,
    pub requests: Resource,
    pub non_zero: Resource,
}

fn str_at<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

/// The uid of a pod's controller owner reference.
pub fn controller_uid(pod: &Value) -> Option<String> {
    pod.pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .and_then(|r| r.get("uid").and_then(Value::as_str))
        .map(str::to_string)
}

/// A pod's priority (`spec.priority`, 0 when unset as `corev1helpers.PodPriority`).
pub fn priority(pod: &Value) -> i64 {
    pod.pointer("/spec/priority").and_then(Value::as_i64).unwrap_or(0)
}

/// Whether the pod has run to completion (Succeeded or Failed).
pub fn is_terminal(pod: &Value) -> bool {
    matches!(str_at(pod, "/status/phase"), "Succeeded" | "Failed")
}

impl PodInfo {
    /// Read what scheduling needs from a pod object.
    pub fn from_pod(pod: &Value) -> PodInfo {
        PodInfo {
            uid: str_at(pod, "/metadata/uid").to_string(),
            namespace: str_at(pod, "/metadata/namespace").to_string(),
            name: str_at(pod, "/metadata/name").to_string(),
            priority: priority(pod),
            owner_uid: controller_uid(pod),
            terminating: pod.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null()),
            requests: pod_requests(pod),
            non_zero: pod_non_zero_requests(pod),
        }
    }
}

/// One node and the pods bound to it.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub name: String,
    pub node: Value,
    pub allocatable: Resource,
    /// Sum of the bound pods' requests.
    pub requested: Resource,
    /// Sum of the bound pods' requests with the scoring defaults for cpu/memory.
    pub non_zero_requested: Resource,
    pub pods: Vec<PodInfo>,
}

impl NodeInfo {
    /// A node without pods.
    pub fn new(node: Value) -> NodeInfo {
        NodeInfo {
            name: str_at(&node, "/metadata/name").to_string(),
            allocatable: node_allocatable(&node),
            node,
            requested: Resource::default(),
            non_zero_requested: Resource::default(),
            pods: Vec::new(),
        }
    }

    /// Account a pod to this node.
    pub fn add_pod(&mut self, p: PodInfo) {
        self.requested.add(&p.requests);
        self.non_zero_requested.add(&p.non_zero);
        self.pods.push(p);
    }

    /// Take a pod off this node (for the preemption dry run).
    pub fn remove_pod(&mut self, uid: &str) -> Option<PodInfo> {
        let i = self.pods.iter().position(|p| p.uid == uid)?;
        let p = self.pods.remove(i);
        self.requested.sub(&p.requests);
        self.non_zero_requested.sub(&p.non_zero);
        Some(p)
    }
}

/// All nodes, by name.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub nodes: BTreeMap<String, NodeInfo>,
}

impl Snapshot {
    /// Build from node objects and all pods (unbound and terminal pods are skipped; pods bound
    /// to a node that does not exist are not counted anywhere).
    pub fn build<'a>(nodes: impl IntoIterator<Item = &'a Value>, pods: impl IntoIterator<Item = &'a Value>) -> Snapshot {
        let mut snap = Snapshot::default();
        for n in nodes {
            let info = NodeInfo::new(n.clone());
            snap.nodes.insert(info.name.clone(), info);
        }
        for p in pods {
            let node = str_at(p, "/spec/nodeName");
            if node.is_empty() || is_terminal(p) {
                continue;
            }
            if let Some(info) = snap.nodes.get_mut(node) {
                info.add_pod(PodInfo::from_pod(p));
            }
        }
        snap
    }

    /// Record that `pod` was bound to `node` (upstream's "assume").
    pub fn assume(&mut self, pod: &Value, node: &str) {
        if let Some(info) = self.nodes.get_mut(node) {
            info.add_pod(PodInfo::from_pod(pod));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(name: &str, node: &str, cpu: &str, phase: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "d", "uid": format!("u-{name}"),
            "ownerReferences": [{"uid": "rs-1", "controller": true}, {"uid": "other"}]},
            "spec": {"nodeName": node, "priority": 5, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]},
            "status": {"phase": phase}})
    }

    #[test]
    fn bound_non_terminal_pods_count() {
        let nodes = [json!({"metadata": {"name": "n1"}, "status": {"allocatable": {"cpu": "4", "pods": "10"}}}), json!({"metadata": {"name": "n2"}})];
        let pods = [pod("a", "n1", "1", "Running"), pod("b", "n1", "2", "Succeeded"), pod("c", "", "1", "Pending"), pod("d", "gone", "1", "Running")];
        let snap = Snapshot::build(&nodes, &pods);
        let n1 = &snap.nodes["n1"];
        assert_eq!(n1.pods.len(), 1);
        assert_eq!(n1.requested.milli_cpu, 1000);
        assert_eq!(n1.non_zero_requested.memory, crate::controllers::scheduler::resources::DEFAULT_MEMORY_REQUEST);
        assert_eq!(n1.allocatable.allowed_pods, 10);
        assert_eq!(n1.pods[0].owner_uid.as_deref(), Some("rs-1"));
        assert_eq!(n1.pods[0].priority, 5);
        assert!(snap.nodes["n2"].pods.is_empty());
    }

    #[test]
    fn assume_and_remove() {
        let mut snap = Snapshot::build(&[json!({"metadata": {"name": "n1"}})], &[]);
        snap.assume(&pod("a", "", "500m", "Pending"), "n1");
        assert_eq!(snap.nodes["n1"].requested.milli_cpu, 500);
        let n1 = snap.nodes.get_mut("n1").unwrap();
        assert!(n1.remove_pod("u-a").is_some());
        assert_eq!(n1.requested.milli_cpu, 0);
        assert!(n1.remove_pod("u-a").is_none());
        snap.assume(&pod("b", "", "1", "Pending"), "missing");
    }
}
