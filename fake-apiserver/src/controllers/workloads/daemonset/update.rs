//! The RollingUpdate strategy (upstream `daemon/update.go` `rollingUpdate`,
//! `updatedDesiredNodeCounts`, `findUpdatedPodsOnNode`): without surge, old pods are deleted
//! while at most `maxUnavailable` nodes lack an available pod (the manage pass then creates
//! the replacements); with surge, new pods are created next to old available ones, at most
//! `maxSurge` at a time, and the old ones go once the new ones are available.

use serde_json::Value;

use super::plan::{ByNode, Ctx, name};
use super::pods::Eligibility;
use crate::controllers::workloads::rollout::{self, RolloutError};

/// The update strategy's type ("RollingUpdate" when unset, as defaulted).
pub fn strategy(ds: &Value) -> &str {
    ds.pointer("/spec/updateStrategy/type").and_then(Value::as_str).filter(|t| !t.is_empty()).unwrap_or("RollingUpdate")
}

fn rolling_cfg(ds: &Value) -> Option<&Value> {
    (strategy(ds) == "RollingUpdate").then(|| ds.pointer("/spec/updateStrategy/rollingUpdate")).flatten()
}

/// `SurgeCount`: `maxSurge` of `desired` rounded up; 0 unless RollingUpdate.
pub fn surge_count(ds: &Value, desired: i64) -> Result<i64, RolloutError> {
    rollout::scaled(rolling_cfg(ds).and_then(|r| r.get("maxSurge")), desired, true)
}

/// `AllowsSurge`: more than one pod per node may run during an update.
pub fn allows_surge(ds: &Value) -> bool {
    surge_count(ds, 1).is_ok_and(|n| n > 0)
}

/// `updatedDesiredNodeCounts`: (maxSurge, maxUnavailable) for `desired` nodes; both zero
/// becomes maxUnavailable 1.
pub fn fenceposts(ds: &Value, desired: i64) -> Result<(i64, i64), RolloutError> {
    let unavailable = rollout::scaled(rolling_cfg(ds).and_then(|r| r.get("maxUnavailable")), desired, true)?;
    let surge = surge_count(ds, desired)?;
    Ok(if desired > 0 && unavailable == 0 && surge == 0 { (0, 1) } else { (surge, unavailable) })
}

/// `findUpdatedPodsOnNode`: the node's (new, old) pod among those not being deleted; `None`
/// when there is more than one of either (the manage pass prunes those first).
fn find_updated<'a>(pods: &[&'a Value], ctx: &Ctx<'_>) -> Option<(Option<&'a Value>, Option<&'a Value>)> {
    let (mut new, mut old) = (None, None);
    for p in pods.iter().copied().filter(|p| !super::pods::deleting(p)) {
        let slot = if ctx.updated(p) { &mut new } else { &mut old };
        if slot.replace(p).is_some() {
            return None;
        }
    }
    Some((new, old))
}

/// The pods to delete and nodes to create on in one rolling-update step.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Step {
    pub delete: Vec<String>,
    pub create_on: Vec<String>,
}

/// One rolling-update step. `by_node` must hold every node that should run the pod (with no
/// pods when it has none), as `updatedDesiredNodeCounts` arranges; `nodes` gives eligibility
/// (a node not listed is gone, so should not run).
pub fn plan(nodes: &[(String, Eligibility)], by_node: &ByNode<'_>, ctx: &Ctx<'_>, max_surge: i64, max_unavailable: i64) -> Step {
    if max_surge == 0 {
        return Step { delete: without_surge(by_node, ctx, max_unavailable), create_on: Vec::new() };
    }
    let should_run = |node: &str| nodes.iter().any(|(n, e)| n == node && e.should_run);
    let desired = i64::try_from(nodes.iter().filter(|(_, e)| e.should_run).count()).unwrap_or(i64::MAX);
    with_surge(by_node, ctx, max_surge, desired, should_run)
}

/// Without surge: unavailable old pods are replaced at once; available old pods are deleted
/// while fewer than `max_unavailable` nodes are unavailable (a node with no pod, a new pod not
/// yet available, or both an old and a new pod counts as unavailable).
fn without_surge(by_node: &ByNode<'_>, ctx: &Ctx<'_>, max_unavailable: i64) -> Vec<String> {
    let mut unavailable = 0;
    let (mut replace, mut candidates) = (Vec::new(), Vec::new());
    for pods in by_node.values() {
        let Some(found) = find_updated(pods, ctx) else {
            unavailable += 1;
            continue;
        };
        match found {
            (None, None) | (Some(_), Some(_)) => unavailable += 1,
            (Some(new), None) => unavailable += i64::from(!ctx.available(new)),
            (None, Some(old)) if !ctx.available(old) => {
                replace.push(name(old));
                unavailable += 1;
            }
            (None, Some(old)) => {
                if unavailable < max_unavailable {
                    candidates.push(name(old));
                }
            }
        }
    }
    let room = usize::try_from((max_unavailable - unavailable).max(0)).unwrap_or(0).min(candidates.len());
    replace.extend(candidates.into_iter().take(room));
    replace
}

/// With surge: a node with an old pod and no new one gets a new pod right away when the old
/// one is unavailable, else as one of at most `max_surge` surging nodes; an old pod goes once
/// its node's new pod is available. Old pods on nodes that should no longer run them go only
/// while more pods are available than desired.
fn with_surge(by_node: &ByNode<'_>, ctx: &Ctx<'_>, max_surge: i64, desired: i64, should_run: impl Fn(&str) -> bool) -> Step {
    let mut step = Step::default();
    let (mut surging, mut available) = (0, 0);
    let (mut allowed, mut candidates, mut sunset) = (Vec::new(), Vec::new(), Vec::new());
    for (node, pods) in by_node {
        let Some((new, old)) = find_updated(pods, ctx) else {
            surging += 1;
            continue;
        };
        if let Some(p) = old.or(new) {
            available += i64::from(ctx.available(p));
        }
        match (new, old) {
            (_, None) => {}
            (None, Some(o)) if !ctx.available(o) => {
                if should_run(node) { allowed.push(node.clone()) } else { step.delete.push(name(o)) }
            }
            (None, Some(o)) => {
                if !should_run(node) {
                    sunset.push(name(o));
                } else if surging < max_surge {
                    candidates.push(node.clone());
                }
            }
            (Some(n), Some(_)) if !ctx.available(n) => surging += 1,
            (Some(_), Some(o)) => step.delete.push(name(o)),
        }
    }
    let deletable = usize::try_from((available - desired).max(0)).unwrap_or(0);
    step.delete.extend(sunset.into_iter().take(deletable));
    let room = usize::try_from((max_surge - surging).max(0)).unwrap_or(0).min(candidates.len());
    allowed.extend(candidates.into_iter().take(room));
    step.create_on = allowed;
    step
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::controllers::workloads::daemonset::plan::tests::{RUN, T0, T1, ctx, nodes, pod};
    use crate::controllers::workloads::daemonset::plan::{ByNode, by_node};

    fn ds(strategy: Value) -> Value {
        json!({"spec": {"updateStrategy": strategy}})
    }

    fn with_empty<'a>(mut g: ByNode<'a>, names: &[&str]) -> ByNode<'a> {
        for n in names {
            g.entry(n.to_string()).or_default();
        }
        g
    }

    #[test]
    fn fenceposts_round_up_and_default_to_one_unavailable() {
        let ru = |v: Value| ds(json!({"type": "RollingUpdate", "rollingUpdate": v}));
        assert_eq!(fenceposts(&ru(json!({"maxUnavailable": 1, "maxSurge": 0})), 3), Ok((0, 1)));
        assert_eq!(fenceposts(&ru(json!({"maxUnavailable": "50%", "maxSurge": 0})), 3), Ok((0, 2)));
        assert_eq!(fenceposts(&ru(json!({"maxUnavailable": 0, "maxSurge": "10%"})), 3), Ok((1, 0)));
        assert_eq!(fenceposts(&ru(json!({"maxUnavailable": 0, "maxSurge": 0})), 3), Ok((0, 1)));
        assert!(fenceposts(&ru(json!({"maxUnavailable": "x"})), 3).is_err());
        assert!(allows_surge(&ru(json!({"maxSurge": 1}))));
        assert!(!allows_surge(&ds(json!({"type": "OnDelete", "rollingUpdate": {"maxSurge": 1}}))));
        assert_eq!(strategy(&json!({})), "RollingUpdate");
    }

    #[test]
    fn without_surge_replaces_one_node_at_a_time() {
        let (a, b, c) = (pod("a0", "a", "old", true, T0), pod("b0", "b", "old", true, T0), pod("c0", "c", "old", true, T0));
        let all = [&a, &b, &c];
        let n = nodes(&[("a", RUN), ("b", RUN), ("c", RUN)]);
        let step = plan(&n, &by_node(all.iter().copied()), &ctx(false), 0, 1);
        assert_eq!(step, Step { delete: vec!["a0".into()], create_on: vec![] });
        // a0 is terminating: its node counts as unavailable, nothing else goes.
        let mut gone = a.clone();
        gone["metadata"]["deletionTimestamp"] = json!(T1);
        let all = [&gone, &b, &c];
        assert!(plan(&n, &by_node(all.iter().copied()), &ctx(false), 0, 1).delete.is_empty());
        // A new pod that is not ready yet holds the budget too; once ready, the next goes.
        let new_a = pod("a1", "a", "new", false, T1);
        let all = [&new_a, &b, &c];
        assert!(plan(&n, &by_node(all.iter().copied()), &ctx(false), 0, 1).delete.is_empty());
        let new_a = pod("a1", "a", "new", true, T1);
        let all = [&new_a, &b, &c];
        assert_eq!(plan(&n, &by_node(all.iter().copied()), &ctx(false), 0, 1).delete, ["b0"]);
        assert_eq!(plan(&n, &by_node(all.iter().copied()), &ctx(false), 0, 2).delete, ["b0", "c0"]);
    }

    #[test]
    fn without_surge_unavailable_old_pods_and_missing_pods() {
        let (a, b) = (pod("a0", "a", "old", false, T0), pod("b0", "b", "old", true, T0));
        let all = [&a, &b];
        let n = nodes(&[("a", RUN), ("b", RUN), ("c", RUN)]);
        let step = plan(&n, &by_node(all.iter().copied()), &ctx(false), 0, 1);
        assert_eq!(step.delete, ["a0"], "an unavailable old pod is always replaced");
        let g = with_empty(by_node([&b]), &["a", "c"]);
        assert!(plan(&n, &g, &ctx(false), 0, 2).delete.is_empty(), "two nodes without pods use the budget");
    }

    #[test]
    fn with_surge_creates_first_then_deletes() {
        let (a, b) = (pod("a0", "a", "old", true, T0), pod("b0", "b", "old", true, T0));
        let all = [&a, &b];
        let n = nodes(&[("a", RUN), ("b", RUN)]);
        let step = plan(&n, &by_node(all.iter().copied()), &ctx(true), 1, 0);
        assert_eq!(step, Step { delete: vec![], create_on: vec!["a".into()] });
        let new_a = pod("a1", "a", "new", false, T1);
        let all = [&a, &new_a, &b];
        assert_eq!(plan(&n, &by_node(all.iter().copied()), &ctx(true), 1, 0), Step::default(), "waiting for a1");
        let new_a = pod("a1", "a", "new", true, T1);
        let all = [&a, &new_a, &b];
        let step = plan(&n, &by_node(all.iter().copied()), &ctx(true), 1, 0);
        assert_eq!(step, Step { delete: vec!["a0".into()], create_on: vec!["b".into()] });
        let unready = pod("b0", "b", "old", false, T0);
        let all = [&a, &unready];
        let step = plan(&n, &by_node(all.iter().copied()), &ctx(true), 1, 0);
        assert_eq!(step.create_on, ["b", "a"], "an unavailable old pod is replaced without counting against the surge");
    }

    #[test]
    fn with_surge_sunset_nodes_wait_for_availability_elsewhere() {
        let (a, b) = (pod("a0", "a", "old", true, T0), pod("b1", "b", "new", true, T0));
        let all = [&a, &b];
        let only_b = nodes(&[("b", RUN)]);
        assert_eq!(plan(&only_b, &by_node(all.iter().copied()), &ctx(true), 1, 0).delete, ["a0"], "2 available > 1 desired");
        let b_unready = pod("b1", "b", "new", false, T0);
        let all = [&a, &b_unready];
        assert!(plan(&only_b, &by_node(all.iter().copied()), &ctx(true), 1, 0).delete.is_empty());
    }
}
