//! One scheduling cycle for one pod (upstream `schedulePod` + the PostFilter on failure):
//! PreFilter, Filter over every node, then Score over the feasible ones. Pure: no IO.

use std::fmt;

use serde_json::Value;

use super::affinity::{self, ERR_REASON_CONFLICT, PreFilter};
use super::diagnosis::{Diagnosis, FitError, NO_NODES_AVAILABLE};
use super::filters::{Status, run_filters};
use super::preemption::post_filter_message;
use super::resources::{pod_non_zero_requests, pod_requests};
use super::score::select_host;
use super::snapshot::{NodeInfo, Snapshot};

/// Why a pod cannot be placed now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The cluster has no nodes (`ErrNoNodesAvailable`).
    NoNodes,
    /// No node fits.
    Unfit(FitError),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::NoNodes => f.write_str(NO_NODES_AVAILABLE),
            Failure::Unfit(e) => e.fmt(f),
        }
    }
}

/// The status of nodes the NodeAffinity PreFilter left out.
fn prefilter_absent() -> Status {
    Status::unresolvable("node(s) didn't satisfy plugin(s) [NodeAffinity]")
}

/// Filter every candidate node, recording the rejections in `d`.
fn feasible<'a>(pod: &Value, candidates: impl Iterator<Item = &'a NodeInfo>, d: &mut Diagnosis) -> Vec<&'a NodeInfo> {
    let req = pod_requests(pod);
    let mut out = Vec::new();
    for info in candidates {
        match run_filters(pod, &req, info) {
            None => out.push(info),
            Some(status) => {
                d.node_status.insert(info.name.clone(), status);
            }
        }
    }
    out
}

/// Pick the node for `pod`, or say why none fits (with the PostFilter message).
pub fn schedule(pod: &Value, snap: &Snapshot) -> Result<String, Failure> {
    if snap.nodes.is_empty() {
        return Err(Failure::NoNodes);
    }
    let mut d = Diagnosis::default();
    let fits = match affinity::prefilter(pod) {
        PreFilter::AllNodes => feasible(pod, snap.nodes.values(), &mut d),
        PreFilter::Names(names) => {
            d.absent = Some(prefilter_absent());
            feasible(pod, names.iter().filter_map(|n| snap.nodes.get(n)), &mut d)
        }
        PreFilter::Conflict => {
            d.absent = Some(Status::unresolvable(ERR_REASON_CONFLICT));
            d.prefilter_msg = Some(ERR_REASON_CONFLICT.to_string());
            Vec::new()
        }
    };
    if let Some(host) = select_host(pod, &pod_non_zero_requests(pod), &fits) {
        return Ok(host.name.clone());
    }
    d.post_filter_msg = post_filter_message(pod, &pod_requests(pod), snap, &d);
    Err(Failure::Unfit(FitError { num_all_nodes: snap.nodes.len(), diagnosis: d }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn node(name: &str, extra: Value) -> Value {
        let mut n = json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"allocatable": {"cpu": "2", "memory": "2Gi", "pods": "110"}}});
        if let Some(spec) = extra.get("spec") {
            n["spec"] = spec.clone();
        }
        n
    }

    fn pod(spec: Value) -> Value {
        let mut spec = spec;
        spec["containers"] = json!([{"name": "c", "resources": {"requests": {"memory": "1Gi"}}}]);
        json!({"metadata": {"name": "p", "namespace": "default", "uid": "u-p"}, "spec": spec})
    }

    fn cluster() -> Snapshot {
        let nodes = [node("a", json!({})), node("b", json!({"spec": {"taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]}}))];
        let busy = json!({"metadata": {"name": "busy", "namespace": "default", "uid": "u-busy"},
            "spec": {"nodeName": "a", "containers": [{"name": "c", "resources": {"requests": {"memory": "1500Mi"}}}]}});
        Snapshot::build(&nodes, &[busy])
    }

    #[test]
    fn no_nodes() {
        let f = schedule(&pod(json!({})), &Snapshot::default()).unwrap_err();
        assert_eq!(f.to_string(), "no nodes available to schedule pods");
    }

    #[test]
    fn the_message_for_a_taint_and_a_full_node() {
        let f = schedule(&pod(json!({})), &cluster()).unwrap_err();
        assert_eq!(
            f.to_string(),
            "0/2 nodes are available: 1 Insufficient memory, 1 node(s) had untolerated taint(s). no new claims to deallocate, \
             preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn tolerations_open_the_tainted_node() {
        let p = pod(json!({"tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoSchedule"}]}));
        assert_eq!(schedule(&p, &cluster()), Ok("b".to_string()));
    }

    #[test]
    fn node_name_affinity_prefilter() {
        let terms = |names: &[&str]| json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms":
            names.iter().map(|n| json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": [n]}]})).collect::<Vec<_>>()}}});
        let p = pod(json!({"affinity": terms(&["a"])}));
        assert_eq!(
            schedule(&p, &cluster()).unwrap_err().to_string(),
            "0/2 nodes are available: 1 Insufficient memory, 1 node(s) didn't satisfy plugin(s) [NodeAffinity]. no new claims to deallocate, \
             preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling."
        );
        let p = pod(json!({"affinity": terms(&["missing"])}));
        assert!(schedule(&p, &cluster()).unwrap_err().to_string().starts_with("0/2 nodes are available: 2 node(s) didn't satisfy plugin(s) [NodeAffinity]."));
        let mut p = pod(json!({"affinity": terms(&["a"])}));
        p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchFields"]
            .as_array_mut()
            .unwrap()
            .push(json!({"key": "metadata.name", "operator": "In", "values": ["b"]}));
        assert_eq!(
            schedule(&p, &cluster()).unwrap_err().to_string(),
            "0/2 nodes are available: pod affinity terms conflict. no new claims to deallocate, \
             preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn selector_mismatch_everywhere() {
        let p = pod(json!({"nodeSelector": {"disk": "ssd"}, "tolerations": [{"operator": "Exists"}]}));
        assert_eq!(
            schedule(&p, &cluster()).unwrap_err().to_string(),
            "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. no new claims to deallocate, \
             preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
        );
    }
}
