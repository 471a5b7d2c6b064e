//! Node lifecycle controller (`node-lifecycle-controller`): a node whose Lease
//! (kube-node-lease/<node>) and Ready heartbeat have not changed within the grace period gets
//! Ready, MemoryPressure, DiskPressure and PIDPressure `Unknown`, a `NodeNotReady` event, and its
//! pods Ready=False. Taints follow the conditions ([`taints`]): the NoSchedule twins of
//! not-ready / unreachable / pressure / unschedulable, and the NoExecute `not-ready` /
//! `unreachable` taints of taint-based eviction, added at `node_eviction_rate` per zone and
//! never while every zone is fully disrupted ([`zones`]).

pub mod taints;
pub mod zones;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::api::{now_rfc3339, set_in};
use crate::controllers::recorder::{self, Note};
use crate::resources;
use crate::server::State;
use crate::store::{Change, Obj};
use taints::NoExecute;
use zones::{Bucket, ZoneState};

/// The controller's name on its events.
pub const COMPONENT: &str = "node-controller";

/// Kept for callers that name the unreachable taint.
pub const UNREACHABLE_TAINT: &str = taints::UNREACHABLE;

/// The conditions set to Unknown when a node stops posting status.
const HEALTH_CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// What the controller remembers between passes.
#[derive(Debug, Default)]
pub struct Controller {
    /// Per node: the last heartbeat signature and when it changed.
    probes: HashMap<String, (String, Instant)>,
    /// Per zone: the NoExecute tainting bucket.
    buckets: HashMap<String, Bucket>,
    /// Every zone was fully disrupted in the last pass.
    all_full: bool,
}

/// The heartbeat signature of a node: lease renewTime and the Ready condition's heartbeat.
fn probe_key(state: &State, name: &str, node: &Value) -> String {
    let lease = state
        .store
        .get(resources::LEASES, "kube-node-lease", name)
        .and_then(|l| l.value.pointer("/spec/renewTime").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default();
    let hb = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c.get("type").and_then(Value::as_str) == Some("Ready")))
        .and_then(|c| c.get("lastHeartbeatTime").and_then(Value::as_str))
        .unwrap_or("")
        .to_string();
    format!("{lease}|{hb}")
}

/// The node with its health conditions Unknown (those it never posted added with
/// `NodeStatusNeverUpdated`); `None` when they already are.
pub fn mark_unknown(node: &Value, now: &str) -> Option<Value> {
    let mut n = node.clone();
    let created = node.pointer("/metadata/creationTimestamp").cloned().unwrap_or_else(|| json!(now));
    let mut conds = n.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
    for ty in HEALTH_CONDITIONS {
        match conds.iter_mut().find(|c| c.get("type").and_then(Value::as_str) == Some(ty)) {
            None => conds.push(json!({"type": ty, "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                "message": "Kubelet never posted node status.", "lastHeartbeatTime": created, "lastTransitionTime": now})),
            Some(c) if c.get("status").and_then(Value::as_str) != Some("Unknown") => {
                set_in(c, &["status"], json!("Unknown"));
                set_in(c, &["reason"], json!("NodeStatusUnknown"));
                set_in(c, &["message"], json!("Kubelet stopped posting node status."));
                set_in(c, &["lastTransitionTime"], json!(now));
            }
            Some(_) => {}
        }
    }
    set_in(&mut n, &["status", "conditions"], Value::Array(conds));
    (n != *node).then_some(n)
}

/// `MarkPodsNotReady`: every pod on `node` with Ready=True gets Ready=False and a Warning
/// `NodeNotReady` "Node is not ready" event.
fn mark_pods_not_ready(state: &State, node: &str) {
    let page = state.store.list(resources::PODS, None, None, None, &|v| {
        v.pointer("/spec/nodeName").and_then(Value::as_str) == Some(node)
    });
    for pod in page.items {
        let (ns, name) = (pod.namespace().to_string(), pod.name().to_string());
        let out = state.store.mutate(resources::PODS, &ns, &name, |cur| {
            let Some(cur) = cur else { return Ok(Change::Keep) };
            let mut p = cur.value.clone();
            let mut changed = false;
            for c in p.pointer_mut("/status/conditions").and_then(Value::as_array_mut).into_iter().flatten() {
                if c.get("type").and_then(Value::as_str) == Some("Ready") && c.get("status").and_then(Value::as_str) == Some("True") {
                    set_in(c, &["status"], json!("False"));
                    set_in(c, &["lastTransitionTime"], json!(now_rfc3339()));
                    changed = true;
                }
            }
            Ok(if changed { Change::Put(p) } else { Change::Keep })
        });
        if let Ok(o) = out
            && o.ty.is_some()
        {
            let note = Note { component: COMPONENT, ty: "Warning", reason: "NodeNotReady", message: "Node is not ready" };
            recorder::record(state, &o.obj.value, recorder::POD, &note);
        }
    }
}

/// Write the node's taints as `f` decides from the current object (nothing when it says so).
fn write_taints(state: &State, name: &str, f: impl FnOnce(&Value) -> Option<Vec<Value>>) {
    let _ = state.store.mutate(resources::NODES, "", name, |cur| {
        let Some(cur) = cur else { return Ok(Change::Keep) };
        let Some(taints) = f(&cur.value) else { return Ok(Change::Keep) };
        let mut n = cur.value.clone();
        if taints.is_empty() {
            if let Some(spec) = n.get_mut("spec").and_then(Value::as_object_mut) {
                spec.remove("taints");
            }
        } else {
            set_in(&mut n, &["spec", "taints"], Value::Array(taints));
        }
        Ok(Change::Put(n))
    });
}

fn node_taints(node: &Value) -> &[Value] {
    node.pointer("/spec/taints").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

impl Controller {
    /// One pass over all nodes.
    pub fn tick(&mut self, state: &State, grace: Duration) {
        let now = Instant::now();
        let (nodes, _) = state.store.snapshot(resources::NODES, None);
        self.probes.retain(|k, _| nodes.iter().any(|n| n.name() == k));
        let nodes: Vec<Arc<Obj>> = nodes.into_iter().map(|n| self.check_health(state, n, now, grace)).collect();
        let zones = zone_states(&nodes);
        let all_full = !zones.is_empty() && zones.values().all(|(s, _)| *s == ZoneState::FullDisruption);
        if all_full && !self.all_full {
            tracing::info!("Controller detected that all Nodes are not-Ready. Entering master disruption mode");
        } else if !all_full && self.all_full {
            tracing::info!("Controller detected that some Nodes are Ready. Exiting master disruption mode");
        }
        self.all_full = all_full;
        let rate = state.config.node_eviction_rate;
        let secondary = state.config.secondary_node_eviction_rate;
        for node in &nodes {
            let zone = zones::zone_key(&node.value);
            let (zstate, size) = zones.get(&zone).copied().unwrap_or((ZoneState::Normal, 0));
            let qps = zones::zone_rate(zstate, size, rate, secondary);
            let bucket = self.buckets.entry(zone).or_insert_with(|| Bucket::new(now));
            let noexec = noexecute_decision(&node.value, all_full, || bucket.take(qps, now));
            write_taints(state, node.name(), |cur| {
                taints::reconcile(node_taints(cur), &taints::wanted_noschedule(cur), noexec, &now_rfc3339())
            });
        }
    }

    /// Update the node's probe time; mark it Unknown when stale. Returns the node as it now is.
    fn check_health(&mut self, state: &State, node: Arc<Obj>, now: Instant, grace: Duration) -> Arc<Obj> {
        let name = node.name().to_string();
        let key = probe_key(state, &name, &node.value);
        let entry = self.probes.entry(name.clone()).or_insert_with(|| (key.clone(), now));
        if entry.0 != key {
            *entry = (key, now);
        }
        if now.duration_since(entry.1) <= grace {
            return node;
        }
        let was_ready = taints::ready(&node.value) == "True";
        let out = state.store.mutate(resources::NODES, "", &name, |cur| {
            Ok(match cur.and_then(|c| mark_unknown(&c.value, &now_rfc3339())) {
                Some(n) => Change::Put(n),
                None => Change::Keep,
            })
        });
        let Ok(out) = out else { return node };
        if was_ready && out.ty.is_some() {
            let message = format!("Node {name} status is now: NodeNotReady");
            let note = Note { component: COMPONENT, ty: "Normal", reason: "NodeNotReady", message: &message };
            recorder::record(state, &out.obj.value, recorder::NODE, &note);
            mark_pods_not_ready(state, &name);
        }
        out.obj
    }
}

/// Per zone: its state and how many nodes count for it.
fn zone_states(nodes: &[Arc<Obj>]) -> BTreeMap<String, (ZoneState, usize)> {
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for n in nodes.iter().filter(|n| zones::counted(&n.value)) {
        let e = counts.entry(zones::zone_key(&n.value)).or_default();
        if taints::ready(&n.value) == "True" {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    counts.into_iter().map(|(k, (r, nr))| (k, (zones::zone_state(r, nr), r + nr))).collect()
}

/// What taint-based eviction does with a node's NoExecute taints this pass
/// (`processTaintBaseEviction`): a Ready node loses them; a not Ready one swaps between
/// not-ready and unreachable at once, or gets its first when the zone's bucket allows; in
/// master disruption mode every node loses them and none is added. A node that has not posted
/// a Ready condition yet is left alone.
pub fn noexecute_decision(node: &Value, all_full: bool, take: impl FnOnce() -> bool) -> NoExecute {
    if all_full {
        return NoExecute::Clear;
    }
    let Some(ready) = taints::condition(node, "Ready") else { return NoExecute::Keep };
    let Some(want) = taints::wanted_noexecute(ready) else { return NoExecute::Clear };
    match taints::noexecute_of(node_taints(node)) {
        Some(have) if have == want => NoExecute::Keep,
        Some(_) => NoExecute::Set(want),
        None if take() => NoExecute::Set(want),
        None => NoExecute::Keep,
    }
}

/// Run until the server is cancelled.
pub async fn run(state: Arc<State>) {
    let grace = state.config.node_monitor_grace_period;
    let period = state.config.node_monitor_period.min(grace / 4).max(Duration::from_millis(10));
    let mut ctl = Controller::default();
    let mut nodes_rx = state.store.subscribe(resources::NODES);
    loop {
        ctl.tick(&state, grace);
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = nodes_rx.changed() => {}
            _ = state.cancel.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(ready: Option<&str>, taints: Value) -> Value {
        let conds: Vec<Value> = ready.map(|r| json!({"type": "Ready", "status": r})).into_iter().collect();
        json!({"metadata": {"name": "n", "creationTimestamp": "T0"}, "spec": {"taints": taints}, "status": {"conditions": conds}})
    }

    #[test]
    fn taint_based_eviction_decisions() {
        let none = json!([]);
        // Ready: taints go.
        assert_eq!(noexecute_decision(&node(Some("True"), none.clone()), false, || true), NoExecute::Clear);
        // Unknown: the first taint only when the bucket allows.
        assert_eq!(noexecute_decision(&node(Some("Unknown"), none.clone()), false, || true), NoExecute::Set(taints::UNREACHABLE));
        assert_eq!(noexecute_decision(&node(Some("Unknown"), none.clone()), false, || false), NoExecute::Keep);
        // A swap does not wait for the bucket.
        let nr = json!([{"key": taints::NOT_READY, "effect": "NoExecute"}]);
        assert_eq!(noexecute_decision(&node(Some("Unknown"), nr.clone()), false, || false), NoExecute::Set(taints::UNREACHABLE));
        assert_eq!(noexecute_decision(&node(Some("False"), nr), false, || panic!("no token needed")), NoExecute::Keep);
        // Master disruption mode clears, never adds.
        assert_eq!(noexecute_decision(&node(Some("Unknown"), none.clone()), true, || true), NoExecute::Clear);
        // No Ready condition yet: nothing.
        assert_eq!(noexecute_decision(&node(None, none), false, || true), NoExecute::Keep);
    }

    #[test]
    fn unknown_marks_every_health_condition_once() {
        let n = node(Some("True"), json!([]));
        let u = mark_unknown(&n, "T1").unwrap();
        let conds = u.pointer("/status/conditions").and_then(Value::as_array).unwrap();
        assert_eq!(conds.len(), 4);
        assert_eq!(conds[0]["reason"], "NodeStatusUnknown");
        assert_eq!(conds[0]["message"], "Kubelet stopped posting node status.");
        assert_eq!(conds[1]["reason"], "NodeStatusNeverUpdated");
        assert_eq!(conds[1]["lastHeartbeatTime"], "T0");
        assert!(conds.iter().all(|c| c["status"] == "Unknown"));
        assert_eq!(mark_unknown(&u, "T2"), None);
    }

    #[test]
    fn a_zone_with_no_ready_node_is_fully_disrupted() {
        let obj = |r: &str| crate::store::Obj::new(node(Some(r), json!([])), 1);
        let z = zone_states(&[obj("Unknown"), obj("False")]);
        assert_eq!(z.get(""), Some(&(ZoneState::FullDisruption, 2)));
        let z = zone_states(&[obj("Unknown"), obj("True")]);
        assert_eq!(z.get(""), Some(&(ZoneState::Normal, 2)));
    }
}
