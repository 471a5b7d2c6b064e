//! The PostFilter step of the default profile, for the message it contributes: the
//! DynamicResources plugin (a pod without resource claims has "no new claims to deallocate")
//! then DefaultPreemption's dry run. Preemption itself (evicting lower-priority pods and
//! nominating the node) is not carried out here: when a dry run finds a node where evicting
//! lower-priority pods would make room, the message is left without a PostFilter part, as
//! upstream's is when preemption succeeds.

use serde_json::Value;

use super::diagnosis::{Diagnosis, FitError};
use super::filters::{Code, Status, run_filters};
use super::resources::Resource;
use super::snapshot::{NodeInfo, Snapshot, priority};

/// DynamicResources' PostFilter message for a pod without resource claims.
pub const DRA_NO_CLAIMS: &str = "no new claims to deallocate";
/// The status of a node where filtering failed for a reason eviction cannot fix.
pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
/// The status of a node without lower-priority pods.
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";
/// `PodEligibleToPreemptOthers` for `preemptionPolicy: Never`.
pub const NOT_ELIGIBLE_NEVER: &str = "not eligible due to preemptionPolicy=Never.";

/// The dry run on one node a filter rejected with a resolvable status: `None` when evicting
/// the lower-priority pods would make the pod fit (a preemption candidate).
fn dry_run(pod: &Value, req: &Resource, info: &NodeInfo) -> Option<Status> {
    let mine = priority(pod);
    let victims: Vec<String> = info.pods.iter().filter(|p| p.priority < mine).map(|p| p.uid.clone()).collect();
    if victims.is_empty() {
        return Some(Status::unresolvable(NO_VICTIMS));
    }
    let mut without = info.clone();
    for uid in &victims {
        without.remove_pod(uid);
    }
    run_filters(pod, req, &without)
}

/// DefaultPreemption's message, or `None` when some node is a preemption candidate.
fn preemption_message(pod: &Value, req: &Resource, snap: &Snapshot, d: &Diagnosis) -> Option<String> {
    if pod.pointer("/spec/preemptionPolicy").and_then(Value::as_str) == Some("Never") {
        return Some(NOT_ELIGIBLE_NEVER.to_string());
    }
    let mut statuses = Diagnosis::default();
    for (name, info) in &snap.nodes {
        let status = match d.status_of(name) {
            Some(s) if s.code == Code::Unschedulable => dry_run(pod, req, info)?,
            _ => Status::unresolvable(NOT_HELPFUL),
        };
        statuses.node_status.insert(name.clone(), status);
    }
    statuses.absent = Some(Status::unresolvable(NOT_HELPFUL));
    Some(FitError { num_all_nodes: snap.nodes.len(), diagnosis: statuses }.to_string())
}

/// The PostFilter message (`RunPostFilterPlugins`: the rejecting plugins' messages joined with
/// ", "), or `None` when preemption would find a node.
pub fn post_filter_message(pod: &Value, req: &Resource, snap: &Snapshot, d: &Diagnosis) -> Option<String> {
    preemption_message(pod, req, snap, d).map(|m| format!("{DRA_NO_CLAIMS}, preemption: {m}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::controllers::scheduler::filters::ERR_REASON_UNTOLERATED_TAINT;
    use crate::controllers::scheduler::resources::pod_requests;

    fn pod(name: &str, node: &str, prio: i64, cpu: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "d", "uid": format!("u-{name}")},
            "spec": {"nodeName": node, "priority": prio, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}})
    }

    fn snap(pods: &[Value]) -> Snapshot {
        let nodes = [
            json!({"metadata": {"name": "busy"}, "status": {"allocatable": {"cpu": "2", "pods": "10"}}}),
            json!({"metadata": {"name": "tainted"}, "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}, "status": {"allocatable": {"cpu": "2", "pods": "10"}}}),
        ];
        Snapshot::build(&nodes, pods)
    }

    fn diagnosis(incoming: &Value, s: &Snapshot) -> Diagnosis {
        let req = pod_requests(incoming);
        let mut d = Diagnosis::default();
        for (n, info) in &s.nodes {
            if let Some(st) = run_filters(incoming, &req, info) {
                d.node_status.insert(n.clone(), st);
            }
        }
        d
    }

    #[test]
    fn no_victims_and_not_helpful() {
        let s = snap(&[pod("old", "busy", 0, "1500m")]);
        let p = pod("new", "", 0, "1");
        let d = diagnosis(&p, &s);
        assert_eq!(d.node_status["tainted"].reasons, vec![ERR_REASON_UNTOLERATED_TAINT]);
        assert_eq!(
            post_filter_message(&p, &pod_requests(&p), &s, &d).unwrap(),
            "no new claims to deallocate, preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, \
             1 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn larger_than_the_node_is_not_helpful() {
        let s = snap(&[]);
        let p = pod("new", "", 0, "3");
        let d = diagnosis(&p, &s);
        assert_eq!(
            post_filter_message(&p, &pod_requests(&p), &s, &d).unwrap(),
            "no new claims to deallocate, preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn victims_that_would_not_free_enough() {
        let s = snap(&[pod("low", "busy", 0, "500m"), pod("high", "busy", 100, "1500m")]);
        let p = pod("new", "", 10, "1");
        let d = diagnosis(&p, &s);
        assert_eq!(
            post_filter_message(&p, &pod_requests(&p), &s, &d).unwrap(),
            "no new claims to deallocate, preemption: 0/2 nodes are available: 1 Insufficient cpu, 1 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn a_candidate_or_never() {
        let s = snap(&[pod("low", "busy", 0, "1500m")]);
        let p = pod("new", "", 10, "1");
        let d = diagnosis(&p, &s);
        assert_eq!(post_filter_message(&p, &pod_requests(&p), &s, &d), None, "evicting `low` would make room");
        let mut never = p.clone();
        never["spec"]["preemptionPolicy"] = json!("Never");
        assert_eq!(
            post_filter_message(&never, &pod_requests(&never), &s, &d).unwrap(),
            "no new claims to deallocate, preemption: not eligible due to preemptionPolicy=Never."
        );
    }
}
