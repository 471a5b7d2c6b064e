//! Which cluster changes may make an unschedulable pod schedulable (a coarse form of upstream's
//! queueing hints): a node added, or changed in what scheduling reads (labels, taints,
//! `spec.unschedulable`, allocatable, condition statuses — not heartbeats); or a bound pod gone
//! (deleted or finished), which frees its resources. New or newly bound pods do not help, and
//! the scheduler's own writes (conditions, bindings) do not count as changes.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use serde_json::{Value, json};

use super::snapshot::is_terminal;

/// A fingerprint of a JSON value (stable within one process).
pub fn fingerprint(v: &Value) -> u64 {
    let mut h = DefaultHasher::new();
    v.to_string().hash(&mut h);
    h.finish()
}

/// What of a node scheduling reads.
fn node_fingerprint(node: &Value) -> u64 {
    let conditions: Vec<Value> = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(|cs| cs.iter().map(|c| json!([c.get("type"), c.get("status")])).collect())
        .unwrap_or_default();
    fingerprint(&json!([
        node.pointer("/metadata/labels"),
        node.pointer("/spec/taints"),
        node.pointer("/spec/unschedulable"),
        node.pointer("/status/allocatable"),
        conditions,
    ]))
}

/// A pod's spec as far as scheduling it goes (its own updates move it in the queue).
pub fn pod_spec_fingerprint(pod: &Value) -> u64 {
    fingerprint(&json!([pod.get("spec"), pod.pointer("/metadata/labels")]))
}

/// What the last pass saw.
#[derive(Debug, Default)]
pub struct ClusterWatch {
    nodes: HashMap<String, u64>,
    bound: HashSet<String>,
}

fn str_at<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

impl ClusterWatch {
    /// Compare with the previous pass; true when something changed that may help.
    pub fn observe<'a>(&mut self, nodes: impl IntoIterator<Item = &'a Value>, pods: impl IntoIterator<Item = &'a Value>) -> bool {
        let mut helped = false;
        let mut seen_nodes = HashMap::new();
        for n in nodes {
            let name = str_at(n, "/metadata/name").to_string();
            let fp = node_fingerprint(n);
            helped |= self.nodes.get(&name) != Some(&fp);
            seen_nodes.insert(name, fp);
        }
        let bound: HashSet<String> = pods
            .into_iter()
            .filter(|p| !str_at(p, "/spec/nodeName").is_empty() && !is_terminal(p))
            .map(|p| str_at(p, "/metadata/uid").to_string())
            .collect();
        helped |= self.bound.iter().any(|uid| !bound.contains(uid));
        self.nodes = seen_nodes;
        self.bound = bound;
        helped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, hb: &str, taints: Value) -> Value {
        json!({"metadata": {"name": name, "labels": {"a": "b"}}, "spec": {"taints": taints},
            "status": {"allocatable": {"cpu": "1"}, "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": hb}]}})
    }

    fn pod(uid: &str, node: &str, phase: &str) -> Value {
        json!({"metadata": {"uid": uid}, "spec": {"nodeName": node}, "status": {"phase": phase}})
    }

    #[test]
    fn nodes_added_or_changed_help_heartbeats_do_not() {
        let mut w = ClusterWatch::default();
        assert!(w.observe(&[node("n1", "t1", json!([]))], &[]), "a new node");
        assert!(!w.observe(&[node("n1", "t2", json!([]))], &[]), "a heartbeat");
        assert!(w.observe(&[node("n1", "t2", json!([{"key": "k", "effect": "NoSchedule"}]))], &[]), "a taint change");
        assert!(!w.observe(&[], &[]), "a node removed does not help");
        let mut n = node("n1", "t3", json!([]));
        assert!(w.observe(std::slice::from_ref(&n), &[]));
        n["status"]["conditions"][0]["status"] = json!("False");
        assert!(w.observe(std::slice::from_ref(&n), &[]), "a condition status change");
    }

    #[test]
    fn bound_pods_gone_help_new_ones_do_not() {
        let mut w = ClusterWatch::default();
        assert!(!w.observe(&[], &[pod("a", "n1", "Running"), pod("b", "", "Pending")]));
        assert!(!w.observe(&[], &[pod("a", "n1", "Running"), pod("b", "n1", "Pending")]), "a binding");
        assert!(w.observe(&[], &[pod("a", "n1", "Succeeded"), pod("b", "n1", "Running")]), "a pod finished");
        assert!(w.observe(&[], &[]), "a pod deleted");
    }

    #[test]
    fn pod_spec_fingerprints() {
        let a = json!({"metadata": {"labels": {"x": "1"}, "resourceVersion": "1"}, "spec": {"tolerations": []}, "status": {}});
        let mut b = a.clone();
        b["metadata"]["resourceVersion"] = json!("2");
        b["status"]["conditions"] = json!([{"type": "PodScheduled"}]);
        assert_eq!(pod_spec_fingerprint(&a), pod_spec_fingerprint(&b), "status and metadata churn do not count");
        b["spec"]["tolerations"] = json!([{"operator": "Exists"}]);
        assert_ne!(pod_spec_fingerprint(&a), pod_spec_fingerprint(&b));
    }
}
