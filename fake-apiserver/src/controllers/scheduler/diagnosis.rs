//! Why a pod fits no node, worded as upstream's `framework.FitError.Error()`:
//! `0/N nodes are available: <PreFilterMsg>. <histogram of filter reasons>. <PostFilterMsg>`
//! where the histogram is "count reason" strings sorted as strings (Go's `sort.Strings`) and
//! joined with ", ".

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use super::filters::Status;

/// `ErrNoNodesAvailable`: the message when the cluster has no nodes at all.
pub const NO_NODES_AVAILABLE: &str = "no nodes available to schedule pods";

/// The statuses of the nodes filtering rejected (upstream's `Diagnosis`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnosis {
    /// Status of every node that was evaluated and rejected.
    pub node_status: BTreeMap<String, Status>,
    /// Status of the nodes that were not evaluated (PreFilter narrowed the node list or
    /// rejected the pod outright).
    pub absent: Option<Status>,
    /// A PreFilter rejection: then no per-node reasons are listed.
    pub prefilter_msg: Option<String>,
    /// What the PostFilter plugins (DRA, preemption) said.
    pub post_filter_msg: Option<String>,
}

impl Diagnosis {
    /// The status of `node`: its own, else the absent nodes' status.
    pub fn status_of(&self, node: &str) -> Option<&Status> {
        self.node_status.get(node).or(self.absent.as_ref())
    }
}

/// A pod that fits no node: the number of nodes and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitError {
    pub num_all_nodes: usize,
    pub diagnosis: Diagnosis,
}

/// `sortReasonsHistogram`: each reason counted over the nodes, "count reason", sorted as strings.
fn histogram(d: &Diagnosis, num_all_nodes: usize) -> Vec<String> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for s in d.node_status.values() {
        for r in &s.reasons {
            *counts.entry(r.as_str()).or_default() += 1;
        }
    }
    let evaluated = d.node_status.len();
    if evaluated < num_all_nodes
        && let Some(absent) = &d.absent
    {
        for r in &absent.reasons {
            *counts.entry(r.as_str()).or_default() += num_all_nodes - evaluated;
        }
    }
    let mut out: Vec<String> = counts.into_iter().map(|(r, n)| format!("{n} {r}")).collect();
    out.sort();
    out
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0/{} nodes are available:", self.num_all_nodes)?;
        match &self.diagnosis.prefilter_msg {
            Some(msg) => write!(f, " {msg}.")?,
            None => {
                let reasons = histogram(&self.diagnosis, self.num_all_nodes);
                if !reasons.is_empty() {
                    write!(f, " {}.", reasons.join(", "))?;
                }
            }
        }
        if let Some(post) = &self.diagnosis.post_filter_msg {
            write!(f, " {post}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::scheduler::filters::{Code, ERR_REASON_NODE_AFFINITY, ERR_REASON_UNTOLERATED_TAINT};

    fn diag(nodes: &[(&str, &[&str])]) -> Diagnosis {
        let node_status = nodes
            .iter()
            .map(|(n, r)| (n.to_string(), Status { code: Code::Unschedulable, reasons: r.iter().map(|s| s.to_string()).collect() }))
            .collect();
        Diagnosis { node_status, ..Diagnosis::default() }
    }

    #[test]
    fn reasons_are_counted_and_sorted_as_strings() {
        let d = diag(&[("a", &[ERR_REASON_UNTOLERATED_TAINT]), ("b", &["Insufficient memory"])]);
        let e = FitError { num_all_nodes: 2, diagnosis: d };
        // "1 I" sorts before "1 n": upper case first, as Go's sort.Strings.
        assert_eq!(e.to_string(), "0/2 nodes are available: 1 Insufficient memory, 1 node(s) had untolerated taint(s).");
    }

    #[test]
    fn several_reasons_per_node_and_multi_digit_counts() {
        let mut nodes: Vec<(String, Vec<&str>)> = (0..10).map(|i| (format!("n{i}"), vec![ERR_REASON_NODE_AFFINITY])).collect();
        nodes.push(("x".into(), vec!["Insufficient cpu", "Insufficient memory"]));
        nodes.push(("y".into(), vec!["Insufficient cpu"]));
        let node_status = nodes.into_iter().map(|(n, r)| (n, Status { code: Code::Unschedulable, reasons: r.into_iter().map(String::from).collect() })).collect();
        let e = FitError { num_all_nodes: 12, diagnosis: Diagnosis { node_status, ..Diagnosis::default() } };
        assert_eq!(
            e.to_string(),
            "0/12 nodes are available: 1 Insufficient memory, 10 node(s) didn't match Pod's node affinity/selector, 2 Insufficient cpu."
        );
    }

    #[test]
    fn absent_nodes_prefilter_and_post_filter() {
        let mut d = diag(&[("a", &[ERR_REASON_NODE_AFFINITY])]);
        d.absent = Some(Status::unresolvable("node(s) didn't satisfy plugin(s) [NodeAffinity]"));
        d.post_filter_msg = Some("preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.".into());
        let e = FitError { num_all_nodes: 3, diagnosis: d };
        assert_eq!(
            e.to_string(),
            "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 node(s) didn't satisfy plugin(s) [NodeAffinity]. \
             preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        );
        let d = Diagnosis { prefilter_msg: Some("pod affinity terms conflict".into()), absent: Some(Status::unresolvable("pod affinity terms conflict")), ..Diagnosis::default() };
        let e = FitError { num_all_nodes: 2, diagnosis: d.clone() };
        assert_eq!(e.to_string(), "0/2 nodes are available: pod affinity terms conflict.");
        assert_eq!(d.status_of("any").map(|s| s.code), Some(Code::UnschedulableAndUnresolvable));
        let e = FitError { num_all_nodes: 0, diagnosis: Diagnosis::default() };
        assert_eq!(e.to_string(), "0/0 nodes are available:");
    }
}
