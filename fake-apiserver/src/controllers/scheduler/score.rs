//! Scoring the feasible nodes with the default profile's weights: NodeResourcesFit's
//! LeastAllocated (cpu and memory, weight 1), spreading a controller's pods over nodes (weight 2,
//! standing in for PodTopologySpread's default hostname constraint), TaintToleration's
//! PreferNoSchedule count (weight 3) and NodeAffinity's preferred terms (weight 2). Each plugin
//! scores 0..=100; the highest weighted sum wins and ties go to the first node by name (upstream
//! breaks ties at random).

use serde_json::Value;

use super::affinity;
use super::resources::Resource;
use super::snapshot::{NodeInfo, controller_uid};
use super::taints;

/// `framework.MaxNodeScore`.
pub const MAX_NODE_SCORE: i64 = 100;

const WEIGHT_FIT: i64 = 1;
const WEIGHT_SPREAD: i64 = 2;
const WEIGHT_TAINT: i64 = 3;
const WEIGHT_AFFINITY: i64 = 2;

/// `leastRequestedScore`: the free share of `capacity` after `requested`, 0..=100.
pub fn least_requested(requested: i64, capacity: i64) -> i64 {
    if capacity <= 0 || requested > capacity {
        return 0;
    }
    (capacity - requested).saturating_mul(MAX_NODE_SCORE) / capacity
}

/// LeastAllocated over cpu and memory (weight 1 each), counting the node's non-zero requests
/// plus the pod's; resources the node has none of are left out.
pub fn least_allocated(pod_non_zero: &Resource, info: &NodeInfo) -> i64 {
    let pairs = [
        (info.non_zero_requested.milli_cpu.saturating_add(pod_non_zero.milli_cpu), info.allocatable.milli_cpu),
        (info.non_zero_requested.memory.saturating_add(pod_non_zero.memory), info.allocatable.memory),
    ];
    let (mut score, mut weights) = (0, 0);
    for (requested, allocatable) in pairs {
        if allocatable == 0 {
            continue;
        }
        score += least_requested(requested, allocatable);
        weights += 1;
    }
    if weights == 0 { 0 } else { score / weights }
}

/// How many live pods of the same controller (and namespace) already run on the node.
pub fn same_owner_count(pod: &Value, info: &NodeInfo) -> i64 {
    let Some(owner) = controller_uid(pod) else { return 0 };
    let ns = pod.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("");
    let n = info.pods.iter().filter(|p| !p.terminating && p.namespace == ns && p.owner_uid.as_deref() == Some(owner.as_str())).count();
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `helper.DefaultNormalizeScore`: scale to 0..=max by the highest score; `reverse` turns
/// "more is worse" counts into scores (all max when every count is 0).
pub fn normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        let v = MAX_NODE_SCORE.saturating_mul(*s) / max;
        *s = if reverse { MAX_NODE_SCORE - v } else { v };
    }
}

/// The weighted total score of each node, in the order given.
pub fn total_scores(pod: &Value, pod_non_zero: &Resource, nodes: &[&NodeInfo]) -> Vec<i64> {
    let fit: Vec<i64> = nodes.iter().map(|n| least_allocated(pod_non_zero, n)).collect();
    let mut spread: Vec<i64> = nodes.iter().map(|n| same_owner_count(pod, n)).collect();
    normalize(&mut spread, true);
    let tolerations = taints::pod_tolerations(pod);
    let mut taint: Vec<i64> = nodes.iter().map(|n| taints::intolerable_prefer_no_schedule(taints::node_taints(&n.node), tolerations)).collect();
    normalize(&mut taint, true);
    let mut aff: Vec<i64> = nodes.iter().map(|n| affinity::preferred_score(pod, &n.node)).collect();
    normalize(&mut aff, false);
    (0..nodes.len())
        .map(|i| fit[i] * WEIGHT_FIT + spread[i] * WEIGHT_SPREAD + taint[i] * WEIGHT_TAINT + aff[i] * WEIGHT_AFFINITY)
        .collect()
}

/// The node to bind to: the highest total, ties to the lowest name. `None` without nodes.
pub fn select_host<'a>(pod: &Value, pod_non_zero: &Resource, nodes: &[&'a NodeInfo]) -> Option<&'a NodeInfo> {
    if nodes.len() == 1 {
        return nodes.first().copied();
    }
    let scores = total_scores(pod, pod_non_zero, nodes);
    nodes
        .iter()
        .zip(scores)
        .max_by(|(a, sa), (b, sb)| sa.cmp(sb).then_with(|| b.name.cmp(&a.name)))
        .map(|(n, _)| *n)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::controllers::scheduler::resources::pod_non_zero_requests;
    use crate::controllers::scheduler::snapshot::PodInfo;

    fn node(name: &str, cpu: &str, mem: &str) -> NodeInfo {
        NodeInfo::new(json!({"metadata": {"name": name, "labels": {"zone": name}}, "status": {"allocatable": {"cpu": cpu, "memory": mem, "pods": "110"}}}))
    }

    fn pod(name: &str, owner: Option<&str>, cpu: &str) -> Value {
        let mut p = json!({"metadata": {"name": name, "namespace": "d", "uid": format!("u-{name}")},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": "100Mi"}}}]}});
        if let Some(o) = owner {
            p["metadata"]["ownerReferences"] = json!([{"uid": o, "controller": true}]);
        }
        p
    }

    #[test]
    fn least_requested_formula() {
        assert_eq!(least_requested(0, 1000), 100);
        assert_eq!(least_requested(250, 1000), 75);
        assert_eq!(least_requested(1000, 1000), 0);
        assert_eq!(least_requested(2000, 1000), 0);
        assert_eq!(least_requested(10, 0), 0);
        let n = node("a", "4", "4Gi");
        let p = pod_non_zero_requests(&pod("p", None, "1"));
        // cpu (4000-1000)/4000 = 75, memory (4096-100)/4096 → 97; mean 86.
        assert_eq!(least_allocated(&p, &n), 86);
    }

    #[test]
    fn normalization() {
        let mut s = vec![0, 2, 4];
        normalize(&mut s, true);
        assert_eq!(s, vec![100, 50, 0]);
        let mut s = vec![0, 0];
        normalize(&mut s, true);
        assert_eq!(s, vec![100, 100]);
        let mut s = vec![0, 5, 10];
        normalize(&mut s, false);
        assert_eq!(s, vec![0, 50, 100]);
    }

    #[test]
    fn prefers_the_emptier_node() {
        let (mut a, b) = (node("a", "4", "4Gi"), node("b", "4", "4Gi"));
        a.add_pod(PodInfo::from_pod(&pod("x", None, "2")));
        let p = pod("p", None, "1");
        assert_eq!(select_host(&p, &pod_non_zero_requests(&p), &[&a, &b]).unwrap().name, "b");
    }

    #[test]
    fn spreads_a_controllers_pods() {
        let (mut a, mut b) = (node("a", "4", "4Gi"), node("b", "4", "4Gi"));
        a.add_pod(PodInfo::from_pod(&pod("r1", Some("rs"), "100m")));
        b.add_pod(PodInfo::from_pod(&pod("other", None, "300m")));
        let p = pod("r2", Some("rs"), "100m");
        assert_eq!(same_owner_count(&p, &a), 1);
        assert_eq!(same_owner_count(&p, &b), 0);
        assert_eq!(select_host(&p, &pod_non_zero_requests(&p), &[&a, &b]).unwrap().name, "b", "spreading outweighs a little load");
        let lone = pod("lone", None, "100m");
        assert_eq!(select_host(&lone, &pod_non_zero_requests(&lone), &[&a, &b]).unwrap().name, "a");
    }

    #[test]
    fn ties_go_to_the_first_name_and_preferences_count() {
        let (a, b) = (node("a", "4", "4Gi"), node("b", "4", "4Gi"));
        let p = pod("p", None, "1");
        let r = pod_non_zero_requests(&p);
        assert_eq!(select_host(&p, &r, &[&b, &a]).unwrap().name, "a");
        let mut pref = p.clone();
        pref["spec"]["affinity"] = json!({"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 1, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}}]}});
        assert_eq!(select_host(&pref, &r, &[&a, &b]).unwrap().name, "b");
        let mut soft = node("a", "4", "4Gi");
        soft.node["spec"] = json!({"taints": [{"key": "k", "effect": "PreferNoSchedule"}]});
        assert_eq!(select_host(&p, &r, &[&soft, &b]).unwrap().name, "b");
        assert!(select_host(&p, &r, &[]).is_none());
    }
}
