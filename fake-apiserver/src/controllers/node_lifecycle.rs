//! Node lifecycle controller: a node whose Lease (kube-node-lease/<node>) and Ready heartbeat have not
//! changed within the grace period becomes Ready=Unknown with the `node.kubernetes.io/unreachable`
//! NoSchedule + NoExecute taints and its pods NotReady; the taints go when the node posts Ready again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::api::{now_rfc3339, set_in};
use crate::resources;
use crate::server::State;
use crate::store::Change;

pub const UNREACHABLE_TAINT: &str = "node.kubernetes.io/unreachable";

fn condition_status<'a>(node: &'a Value, ty: &str) -> Option<&'a str> {
    node.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(ty))?
        .get("status")?
        .as_str()
}

fn has_unreachable_taint(node: &Value) -> bool {
    node.pointer("/spec/taints")
        .and_then(Value::as_array)
        .is_some_and(|t| t.iter().any(|x| x.get("key").and_then(Value::as_str) == Some(UNREACHABLE_TAINT)))
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

fn mark_unknown(node: &Value) -> Value {
    let now = now_rfc3339();
    let mut n = node.clone();
    let mut conds = n.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
    if !conds.iter().any(|c| c.get("type").and_then(Value::as_str) == Some("Ready")) {
        conds.push(json!({"type": "Ready", "status": "Unknown", "reason": "NodeStatusNeverUpdated",
            "message": "Kubelet never posted node status.", "lastHeartbeatTime": now, "lastTransitionTime": now}));
    }
    for c in conds.iter_mut() {
        if c.get("status").and_then(Value::as_str) != Some("Unknown") {
            set_in(c, &["status"], json!("Unknown"));
            set_in(c, &["reason"], json!("NodeStatusUnknown"));
            set_in(c, &["message"], json!("Kubelet stopped posting node status."));
            set_in(c, &["lastTransitionTime"], json!(now));
        }
    }
    set_in(&mut n, &["status", "conditions"], Value::Array(conds));
    let mut taints = n.pointer("/spec/taints").and_then(Value::as_array).cloned().unwrap_or_default();
    taints.retain(|t| t.get("key").and_then(Value::as_str) != Some(UNREACHABLE_TAINT));
    taints.push(json!({"key": UNREACHABLE_TAINT, "effect": "NoSchedule"}));
    taints.push(json!({"key": UNREACHABLE_TAINT, "effect": "NoExecute", "timeAdded": now}));
    set_in(&mut n, &["spec", "taints"], Value::Array(taints));
    n
}

fn remove_taints(node: &Value) -> Value {
    let mut n = node.clone();
    if let Some(t) = n.pointer_mut("/spec/taints").and_then(Value::as_array_mut) {
        t.retain(|t| t.get("key").and_then(Value::as_str) != Some(UNREACHABLE_TAINT));
        if t.is_empty()
            && let Some(spec) = n.get_mut("spec").and_then(Value::as_object_mut)
        {
            spec.remove("taints");
        }
    }
    n
}

fn mark_pods_not_ready(state: &State, node: &str) {
    let page = state.store.list(resources::PODS, None, None, None, &|v| {
        v.pointer("/spec/nodeName").and_then(Value::as_str) == Some(node)
    });
    for pod in page.items {
        let (ns, name) = (pod.namespace().to_string(), pod.name().to_string());
        let _ = state.store.mutate(resources::PODS, &ns, &name, |cur| {
            let Some(cur) = cur else { return Ok(Change::Keep) };
            let mut p = cur.value.clone();
            let mut changed = false;
            if let Some(conds) = p.pointer_mut("/status/conditions").and_then(Value::as_array_mut) {
                for c in conds.iter_mut() {
                    if c.get("type").and_then(Value::as_str) == Some("Ready") && c.get("status").and_then(Value::as_str) == Some("True") {
                        set_in(c, &["status"], json!("False"));
                        set_in(c, &["lastTransitionTime"], json!(now_rfc3339()));
                        changed = true;
                    }
                }
            }
            Ok(if changed { Change::Put(p) } else { Change::Keep })
        });
    }
}

/// One pass over all nodes.
pub fn tick(state: &State, seen: &mut HashMap<String, (String, Instant)>, grace: Duration) {
    let (nodes, _) = state.store.snapshot(resources::NODES, None);
    let now = Instant::now();
    seen.retain(|k, _| nodes.iter().any(|n| n.name() == k));
    for node in nodes {
        let name = node.name().to_string();
        let key = probe_key(state, &name, &node.value);
        let entry = seen.entry(name.clone()).or_insert_with(|| (key.clone(), now));
        if entry.0 != key {
            *entry = (key, now);
        }
        let stale = now.duration_since(entry.1) > grace;
        let ready = condition_status(&node.value, "Ready");
        if stale && ready != Some("Unknown") {
            let _ = state.store.mutate(resources::NODES, "", &name, |cur| {
                Ok(match cur {
                    Some(c) => Change::Put(mark_unknown(&c.value)),
                    None => Change::Keep,
                })
            });
            mark_pods_not_ready(state, &name);
        } else if !stale && ready == Some("True") && has_unreachable_taint(&node.value) {
            let _ = state.store.mutate(resources::NODES, "", &name, |cur| {
                Ok(match cur {
                    Some(c) => Change::Put(remove_taints(&c.value)),
                    None => Change::Keep,
                })
            });
        }
    }
}

/// Run until the server is cancelled.
pub async fn run(state: Arc<State>) {
    let grace = state.config.node_monitor_grace_period;
    let period = state.config.node_monitor_period.min(grace / 4).max(Duration::from_millis(10));
    let mut seen = HashMap::new();
    let mut nodes_rx = state.store.subscribe(resources::NODES);
    loop {
        tick(&state, &mut seen, grace);
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = nodes_rx.changed() => {}
            _ = state.cancel.cancelled() => return,
        }
    }
}
