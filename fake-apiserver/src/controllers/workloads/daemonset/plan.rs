//! What one DaemonSet sync decides, as pure functions over the nodes and the daemon pods
//! grouped by the node they are meant for: `manage` / `podsShouldBeOnNode` (which nodes get a
//! pod, which pods go) and `updateDaemonSetStatus` (the status counts).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::pods::{self, Eligibility};
use crate::controllers::workloads::{int_at, is_pod_ready, pod_available};

/// Daemon pods by target node (`getNodesToDaemonPods`), node names sorted.
pub type ByNode<'a> = BTreeMap<String, Vec<&'a Value>>;

/// What the plans compare pods against.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// The current template's [`pods::HASH_LABEL`] value.
    pub hash: &'a str,
    /// The current [`pods::template_generation`].
    pub generation: i64,
    /// `spec.minReadySeconds`.
    pub min_ready: i64,
    /// Now, in seconds.
    pub now: i64,
    /// `AllowsSurge`: RollingUpdate with a `maxSurge` above 0.
    pub surge: bool,
}

impl Ctx<'_> {
    /// `podutil.IsPodAvailable` at `now`.
    pub fn available(&self, pod: &Value) -> bool {
        pod_available(pod, self.min_ready, self.now).is_ok()
    }

    /// `util.IsPodUpdated` against the current hash and generation.
    pub fn updated(&self, pod: &Value) -> bool {
        pods::is_updated(pod, self.hash, self.generation)
    }
}

/// The name of a pod.
pub fn name(pod: &Value) -> String {
    pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string()
}

/// Group claimed pods by target node, leaving out pods that are both terminal and being
/// deleted (nothing is left to do with them) and pods without a target node.
pub fn by_node<'a>(claimed: impl IntoIterator<Item = &'a Value>) -> ByNode<'a> {
    let mut out = ByNode::new();
    for p in claimed {
        let terminal = matches!(pods::phase(p), "Succeeded" | "Failed");
        if terminal && pods::deleting(p) {
            continue;
        }
        if let Some(node) = pods::target_node(p) {
            out.entry(node).or_default().push(p);
        }
    }
    out
}

/// The pod changes `manage` makes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ManagePlan {
    /// Nodes that need a daemon pod.
    pub create_on: Vec<String>,
    /// Pods to delete: extra pods on a node, pods on nodes that should not run them, and
    /// unscheduled pods meant for nodes that are gone.
    pub delete: Vec<String>,
    /// Failed pods to delete (and so recreate), subject to the backoff: (pod, node).
    pub failed: Vec<(String, String)>,
    /// Succeeded pods to delete: (pod, node).
    pub succeeded: Vec<(String, String)>,
}

/// `manage`: every node's plan, then unscheduled pods whose node no longer exists
/// (`getUnscheduledPodsWithoutNode`). Pods bound to a vanished node are PodGC's to remove.
pub fn plan_manage(nodes: &[(String, Eligibility)], by_node: &ByNode<'_>, ctx: &Ctx<'_>) -> ManagePlan {
    let mut out = ManagePlan::default();
    for (node, elig) in nodes {
        let pods = by_node.get(node).map(Vec::as_slice).unwrap_or(&[]);
        plan_node(node, *elig, pods, ctx, &mut out);
    }
    for (node, pods) in by_node {
        if nodes.iter().any(|(n, _)| n == node) {
            continue;
        }
        let unbound = pods.iter().filter(|p| p.pointer("/spec/nodeName").and_then(Value::as_str).is_none_or(str::is_empty));
        out.delete.extend(unbound.map(|p| name(p)));
    }
    out
}

/// `podsShouldBeOnNode` for one node.
fn plan_node(node: &str, elig: Eligibility, pods: &[&Value], ctx: &Ctx<'_>, out: &mut ManagePlan) {
    if elig.should_run && pods.is_empty() {
        out.create_on.push(node.to_string());
        return;
    }
    if !elig.should_continue {
        out.delete.extend(pods.iter().filter(|p| !pods::deleting(p)).map(|p| name(p)));
        return;
    }
    let mut running: Vec<&Value> = Vec::new();
    for p in pods.iter().copied().filter(|p| !pods::deleting(p)) {
        match pods::phase(p) {
            "Failed" => out.failed.push((name(p), node.to_string())),
            "Succeeded" => out.succeeded.push((name(p), node.to_string())),
            _ => running.push(p),
        }
    }
    running.sort_by(|a, b| pods::oldest_first(a, b));
    if !ctx.surge {
        out.delete.extend(running.iter().skip(1).map(|p| name(p)));
    } else if running.is_empty() {
        if elig.should_run {
            out.create_on.push(node.to_string());
        }
    } else if running.len() > 1 {
        surge_pair(&running, ctx, out);
    }
}

/// With surge, a node keeps the oldest current-hash pod and the oldest other pod; the other
/// one goes once it is not ready or the new one is available. Everything else goes.
fn surge_pair(running: &[&Value], ctx: &Ctx<'_>, out: &mut ManagePlan) {
    let (mut new, mut old): (Option<&Value>, Option<&Value>) = (None, None);
    for p in running {
        let slot = if pods::pod_hash(p) == Some(ctx.hash) { &mut new } else { &mut old };
        if slot.is_none() {
            *slot = Some(p);
        } else {
            out.delete.push(name(p));
        }
    }
    if let (Some(n), Some(o)) = (new, old)
        && (!is_pod_ready(o) || ctx.available(n))
    {
        out.delete.push(name(o));
    }
}

/// The status counts (`updateDaemonSetStatus`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub desired: i64,
    pub current: i64,
    pub misscheduled: i64,
    pub ready: i64,
    pub available: i64,
    pub updated: i64,
}

/// Count per node: nodes that should run the pod are desired; those with a pod are current,
/// and their oldest pod decides ready / available / updated; pods on nodes that should not
/// run them are misscheduled.
pub fn count(nodes: &[(String, Eligibility)], by_node: &ByNode<'_>, ctx: &Ctx<'_>) -> Counts {
    let mut c = Counts::default();
    for (node, elig) in nodes {
        let mut pods: Vec<&Value> = by_node.get(node).cloned().unwrap_or_default();
        if !elig.should_run {
            c.misscheduled += i64::from(!pods.is_empty());
            continue;
        }
        c.desired += 1;
        pods.sort_by(|a, b| pods::oldest_first(a, b));
        let Some(oldest) = pods.first() else { continue };
        c.current += 1;
        if is_pod_ready(oldest) {
            c.ready += 1;
            c.available += i64::from(ctx.available(oldest));
        }
        c.updated += i64::from(ctx.updated(oldest));
    }
    c
}

/// Seconds until the soonest ready pod becomes available (`minReadySeconds`), if any.
pub fn availability_wake(by_node: &ByNode<'_>, ctx: &Ctx<'_>) -> Option<i64> {
    by_node.values().flatten().filter_map(|p| pod_available(p, ctx.min_ready, ctx.now).err().flatten()).min()
}

/// The DaemonSet's new status: the counts and `observedGeneration` over what it had (other
/// fields such as `collisionCount` and `conditions` are kept). `updatedNumberScheduled`,
/// `numberAvailable` and `numberUnavailable` are left out at zero (`omitempty`).
pub fn status_json(ds: &Value, c: &Counts) -> Value {
    let mut status = ds.get("status").cloned().filter(Value::is_object).unwrap_or_else(|| json!({}));
    let unavailable = (c.desired - c.available).max(0);
    for (k, v) in [("currentNumberScheduled", c.current), ("numberMisscheduled", c.misscheduled), ("desiredNumberScheduled", c.desired), ("numberReady", c.ready)] {
        status[k] = json!(v);
    }
    for (k, v) in [("updatedNumberScheduled", c.updated), ("numberAvailable", c.available), ("numberUnavailable", unavailable)] {
        match (v, status.as_object_mut()) {
            (0, Some(m)) => {
                m.remove(k);
            }
            _ => status[k] = json!(v),
        }
    }
    status["observedGeneration"] = json!(int_at(ds, "/metadata/generation"));
    status
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::controllers::workloads::daemonset::pods::{GENERATION_LABEL, HASH_LABEL};

    pub const T0: &str = "2026-01-01T00:00:00Z";
    pub const T1: &str = "2026-01-01T00:00:10Z";

    /// A daemon pod: `hash` label, bound to `node` when `bound`, ready since T0 when `ready`.
    pub fn pod(name: &str, node: &str, hash: &str, ready: bool, created: &str) -> Value {
        let mut v = json!({"metadata": {"name": name, "creationTimestamp": created, "labels": {HASH_LABEL: hash, GENERATION_LABEL: "0"}},
            "spec": {"nodeName": node}, "status": {"phase": "Running"}});
        if ready {
            v["status"]["conditions"] = json!([{"type": "Ready", "status": "True", "lastTransitionTime": T0}]);
        }
        v
    }

    pub fn ctx(surge: bool) -> Ctx<'static> {
        let now = T0.parse::<jiff::Timestamp>().map(|t| t.as_second()).unwrap_or(0) + 100;
        Ctx { hash: "new", generation: 2, min_ready: 0, now, surge }
    }

    pub const RUN: Eligibility = Eligibility { should_run: true, should_continue: true };
    pub const STAY: Eligibility = Eligibility { should_run: false, should_continue: true };
    pub const NO: Eligibility = Eligibility { should_run: false, should_continue: false };

    pub fn nodes(list: &[(&str, Eligibility)]) -> Vec<(String, Eligibility)> {
        list.iter().map(|(n, e)| (n.to_string(), *e)).collect()
    }

    #[test]
    fn creates_where_missing_and_deletes_where_unwanted() {
        let (a, c1, c2) = (pod("a1", "a", "new", true, T0), pod("c1", "c", "new", true, T0), pod("c2", "c", "new", true, T1));
        let mut gone = pod("x1", "", "new", false, T0);
        gone["spec"]["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["x"]}]}]}}});
        let bound_gone = pod("y1", "y", "new", true, T0);
        let all = [&a, &c1, &c2, &gone, &bound_gone];
        let grouped = by_node(all.iter().copied());
        let n = nodes(&[("a", NO), ("b", RUN), ("c", RUN), ("d", STAY)]);
        let plan = plan_manage(&n, &grouped, &ctx(false));
        assert_eq!(plan.create_on, ["b"]);
        assert_eq!(plan.delete, ["a1", "c2", "x1"], "unwanted, extra (newest), unscheduled on a vanished node");
        assert!(plan.failed.is_empty() && plan.succeeded.is_empty());
    }

    #[test]
    fn terminating_pods_block_creation_and_terminal_pods_are_replaced() {
        let mut terminating = pod("a1", "a", "new", true, T0);
        terminating["metadata"]["deletionTimestamp"] = json!(T1);
        let mut failed = pod("b1", "b", "new", false, T0);
        failed["status"]["phase"] = json!("Failed");
        let mut done = pod("c1", "c", "new", false, T0);
        done["status"]["phase"] = json!("Succeeded");
        let mut failed_deleted = failed.clone();
        failed_deleted["metadata"]["deletionTimestamp"] = json!(T1);
        failed_deleted["spec"]["nodeName"] = json!("d");
        let all = [&terminating, &failed, &done, &failed_deleted];
        let grouped = by_node(all.iter().copied());
        assert!(!grouped.contains_key("d"), "terminal and deleted pods are ignored");
        let plan = plan_manage(&nodes(&[("a", RUN), ("b", RUN), ("c", RUN), ("d", RUN)]), &grouped, &ctx(false));
        assert_eq!(plan.create_on, ["d"]);
        assert!(plan.delete.is_empty());
        assert_eq!(plan.failed, [("b1".to_string(), "b".to_string())]);
        assert_eq!(plan.succeeded, [("c1".to_string(), "c".to_string())]);
    }

    #[test]
    fn surge_keeps_one_old_and_one_new_pod() {
        let (old, new) = (pod("old", "a", "h0", true, T0), pod("new", "a", "new", false, T1));
        let extra = pod("new2", "a", "new", false, T1);
        let all = [&old, &new, &extra];
        let n = nodes(&[("a", RUN)]);
        let plan = plan_manage(&n, &by_node(all.iter().copied()), &ctx(true));
        assert_eq!(plan.delete, ["new2"], "the old pod stays while the new one is not available");
        let ready_new = pod("new", "a", "new", true, T1);
        let pair = [&old, &ready_new];
        assert_eq!(plan_manage(&n, &by_node(pair.iter().copied()), &ctx(true)).delete, ["old"]);
        let unready_old = pod("old", "a", "h0", false, T0);
        let pair = [&unready_old, &new];
        assert_eq!(plan_manage(&n, &by_node(pair.iter().copied()), &ctx(true)).delete, ["old"]);
    }

    #[test]
    fn counts_follow_the_oldest_pod_per_node() {
        let a = pod("a1", "a", "new", true, T0);
        let b = pod("b1", "b", "old", false, T0);
        let stray = pod("c1", "c", "new", true, T0);
        let all = [&a, &b, &stray];
        let grouped = by_node(all.iter().copied());
        let n = nodes(&[("a", RUN), ("b", RUN), ("c", STAY), ("d", RUN)]);
        let c = count(&n, &grouped, &ctx(false));
        assert_eq!(c, Counts { desired: 3, current: 2, misscheduled: 1, ready: 1, available: 1, updated: 1 });
        let ds = json!({"metadata": {"generation": 4}, "status": {"collisionCount": 1}});
        let s = status_json(&ds, &c);
        assert_eq!(s, json!({"collisionCount": 1, "currentNumberScheduled": 2, "numberMisscheduled": 1, "desiredNumberScheduled": 3,
            "numberReady": 1, "updatedNumberScheduled": 1, "numberAvailable": 1, "numberUnavailable": 2, "observedGeneration": 4}));
        let empty = status_json(&json!({"metadata": {"generation": 1}, "status": s}), &Counts::default());
        assert!(empty.get("numberAvailable").is_none() && empty.get("updatedNumberScheduled").is_none());
        assert_eq!(empty["desiredNumberScheduled"], 0);
    }

    #[test]
    fn min_ready_seconds_delays_availability() {
        let a = pod("a1", "a", "new", true, T0);
        let all = [&a];
        let grouped = by_node(all.iter().copied());
        let mut cx = ctx(false);
        cx.min_ready = 130;
        let c = count(&nodes(&[("a", RUN)]), &grouped, &cx);
        assert_eq!((c.ready, c.available), (1, 0));
        assert_eq!(availability_wake(&grouped, &cx), Some(30));
    }
}
