//! The taints the node lifecycle controller owns, as pure functions: the NoSchedule taints
//! that mirror node conditions (`TaintNodesByCondition`) and the NoExecute `not-ready` /
//! `unreachable` taints of taint-based eviction.

use serde_json::{Value, json};

pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// (condition type, status, taint key) of `nodeConditionToTaintKeyStatusMap`, after Ready.
const CONDITION_TAINTS: &[(&str, &str, &str)] = &[
    ("MemoryPressure", "True", "node.kubernetes.io/memory-pressure"),
    ("DiskPressure", "True", "node.kubernetes.io/disk-pressure"),
    ("NetworkUnavailable", "True", "node.kubernetes.io/network-unavailable"),
    ("PIDPressure", "True", "node.kubernetes.io/pid-pressure"),
];

/// Every NoSchedule key the controller manages (others' taints are never touched).
fn managed_noschedule(key: &str) -> bool {
    key == NOT_READY || key == UNREACHABLE || key == UNSCHEDULABLE || CONDITION_TAINTS.iter().any(|(_, _, k)| *k == key)
}

/// The status of condition `ty`, if the node has it.
pub fn condition<'a>(node: &'a Value, ty: &str) -> Option<&'a str> {
    node.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(ty))?
        .get("status")?
        .as_str()
}

/// The Ready status as the controller sees it: a node without one is `Unknown`.
pub fn ready(node: &Value) -> &str {
    condition(node, "Ready").unwrap_or("Unknown")
}

/// The NoSchedule taint keys the node's conditions and `spec.unschedulable` call for.
pub fn wanted_noschedule(node: &Value) -> Vec<&'static str> {
    let mut out = Vec::new();
    match condition(node, "Ready") {
        Some("False") => out.push(NOT_READY),
        Some("Unknown") => out.push(UNREACHABLE),
        _ => {}
    }
    for (ty, status, key) in CONDITION_TAINTS {
        if condition(node, ty) == Some(*status) {
            out.push(*key);
        }
    }
    if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        out.push(UNSCHEDULABLE);
    }
    out
}

/// The NoExecute taint key taint-based eviction wants for a Ready status: `not-ready` for
/// False, `unreachable` for Unknown, none for True.
pub fn wanted_noexecute(ready: &str) -> Option<&'static str> {
    match ready {
        "False" => Some(NOT_READY),
        "True" => None,
        _ => Some(UNREACHABLE),
    }
}

fn key(t: &Value) -> &str {
    t.get("key").and_then(Value::as_str).unwrap_or("")
}

fn effect(t: &Value) -> &str {
    t.get("effect").and_then(Value::as_str).unwrap_or("")
}

/// The NoExecute key (`not-ready` or `unreachable`) the node carries, if any.
pub fn noexecute_of(taints: &[Value]) -> Option<&'static str> {
    taints.iter().filter(|t| effect(t) == "NoExecute").find_map(|t| match key(t) {
        NOT_READY => Some(NOT_READY),
        UNREACHABLE => Some(UNREACHABLE),
        _ => None,
    })
}

/// What to do with the NoExecute taints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoExecute {
    /// Leave them as they are.
    Keep,
    /// Exactly this one of `not-ready` / `unreachable`.
    Set(&'static str),
    /// Neither.
    Clear,
}

/// The node's taints with the managed NoSchedule set to `noschedule` and the NoExecute ones
/// as `noexec` says; taints kept keep their `timeAdded`, new ones get `now`. `None` when
/// nothing changes.
pub fn reconcile(taints: &[Value], noschedule: &[&str], noexec: NoExecute, now: &str) -> Option<Vec<Value>> {
    let mut out: Vec<Value> = taints
        .iter()
        .filter(|t| match effect(t) {
            "NoSchedule" if managed_noschedule(key(t)) => noschedule.contains(&key(t)),
            "NoExecute" if key(t) == NOT_READY || key(t) == UNREACHABLE => match noexec {
                NoExecute::Keep => true,
                NoExecute::Set(k) => key(t) == k,
                NoExecute::Clear => false,
            },
            _ => true,
        })
        .cloned()
        .collect();
    let has = |out: &[Value], k: &str, e: &str| out.iter().any(|t| key(t) == k && effect(t) == e);
    for k in noschedule {
        if !has(&out, k, "NoSchedule") {
            out.push(json!({"key": k, "effect": "NoSchedule", "timeAdded": now}));
        }
    }
    if let NoExecute::Set(k) = noexec
        && !has(&out, k, "NoExecute")
    {
        out.push(json!({"key": k, "effect": "NoExecute", "timeAdded": now}));
    }
    (out != taints).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(ready: Option<&str>, spec: Value) -> Value {
        let conds: Vec<Value> = ready.map(|r| json!({"type": "Ready", "status": r})).into_iter().collect();
        json!({"metadata": {"name": "n"}, "spec": spec, "status": {"conditions": conds}})
    }

    #[test]
    fn conditions_map_to_noschedule_taints() {
        assert_eq!(wanted_noschedule(&node(Some("True"), json!({}))), Vec::<&str>::new());
        assert_eq!(wanted_noschedule(&node(Some("False"), json!({}))), vec![NOT_READY]);
        assert_eq!(wanted_noschedule(&node(Some("Unknown"), json!({"unschedulable": true}))), vec![UNREACHABLE, UNSCHEDULABLE]);
        let pressured = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "DiskPressure", "status": "True"}]}});
        assert_eq!(wanted_noschedule(&pressured), vec!["node.kubernetes.io/disk-pressure"]);
        // A node that never posted status gets no NoSchedule taint from Ready (it has none).
        assert_eq!(wanted_noschedule(&node(None, json!({}))), Vec::<&str>::new());
    }

    #[test]
    fn noexecute_follows_ready() {
        assert_eq!(wanted_noexecute("False"), Some(NOT_READY));
        assert_eq!(wanted_noexecute("Unknown"), Some(UNREACHABLE));
        assert_eq!(wanted_noexecute("True"), None);
    }

    #[test]
    fn reconcile_adds_swaps_and_clears_only_managed_taints() {
        let foreign = json!({"key": "dedicated", "value": "gpu", "effect": "NoSchedule"});
        let t = reconcile(std::slice::from_ref(&foreign), &[UNREACHABLE], NoExecute::Set(UNREACHABLE), "T1").unwrap();
        assert_eq!(t, vec![
            foreign.clone(),
            json!({"key": UNREACHABLE, "effect": "NoSchedule", "timeAdded": "T1"}),
            json!({"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": "T1"}),
        ]);
        // Nothing to do: unchanged.
        assert_eq!(reconcile(&t, &[UNREACHABLE], NoExecute::Set(UNREACHABLE), "T2"), None);
        assert_eq!(reconcile(&t, &[UNREACHABLE], NoExecute::Keep, "T2"), None);
        // Unknown → False: swap both, the kept foreign taint stays first.
        let s = reconcile(&t, &[NOT_READY], NoExecute::Set(NOT_READY), "T3").unwrap();
        assert_eq!(s, vec![
            foreign.clone(),
            json!({"key": NOT_READY, "effect": "NoSchedule", "timeAdded": "T3"}),
            json!({"key": NOT_READY, "effect": "NoExecute", "timeAdded": "T3"}),
        ]);
        // Recovery: only the foreign taint is left.
        assert_eq!(reconcile(&s, &[], NoExecute::Clear, "T4").unwrap(), vec![foreign]);
        // A user's NoExecute taint with another key is not ours.
        let user = json!({"key": "example.com/x", "effect": "NoExecute"});
        assert_eq!(reconcile(std::slice::from_ref(&user), &[], NoExecute::Clear, "T5"), None);
    }

    #[test]
    fn noexecute_of_finds_the_controller_taint() {
        assert_eq!(noexecute_of(&[json!({"key": UNREACHABLE, "effect": "NoSchedule"})]), None);
        assert_eq!(noexecute_of(&[json!({"key": NOT_READY, "effect": "NoExecute"})]), Some(NOT_READY));
    }
}
