//! Taints and tolerations: k8s.io/api `Toleration.ToleratesTaint` and component-helpers
//! `FindMatchingUntoleratedTaint` / `TolerationsTolerateTaint`, over JSON.

use serde_json::Value;

/// The taint `kubectl cordon` stands for; `spec.unschedulable` is tolerated as this taint is.
pub const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

/// One node taint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taint<'a> {
    pub key: &'a str,
    pub value: &'a str,
    pub effect: &'a str,
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

impl<'a> Taint<'a> {
    /// Read a taint object (missing fields read as empty).
    pub fn from_json(v: &'a Value) -> Taint<'a> {
        Taint { key: s(v, "key"), value: s(v, "value"), effect: s(v, "effect") }
    }
}

/// `Toleration.ToleratesTaint`: an empty effect matches all effects, an empty key (with
/// `Exists`) all keys; operator `Equal` (or empty) compares values, `Exists` ignores them.
pub fn tolerates(toleration: &Value, taint: &Taint<'_>) -> bool {
    let effect = s(toleration, "effect");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = s(toleration, "key");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match s(toleration, "operator") {
        "" | "Equal" => s(toleration, "value") == taint.value,
        "Exists" => true,
        _ => false,
    }
}

/// `TolerationsTolerateTaint`: any toleration tolerates the taint.
pub fn tolerated(tolerations: &[Value], taint: &Taint<'_>) -> bool {
    tolerations.iter().any(|t| tolerates(t, taint))
}

/// A pod's tolerations.
pub fn pod_tolerations(pod: &Value) -> &[Value] {
    pod.pointer("/spec/tolerations").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// A node's taints.
pub fn node_taints(node: &Value) -> &[Value] {
    node.pointer("/spec/taints").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// `FindMatchingUntoleratedTaint` with the scheduler's `DoNotScheduleTaintsFilterFunc`: the first
/// NoSchedule or NoExecute taint (PreferNoSchedule never filters) no toleration tolerates.
pub fn first_untolerated<'a>(taints: &'a [Value], tolerations: &[Value]) -> Option<Taint<'a>> {
    taints
        .iter()
        .map(Taint::from_json)
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .find(|t| !tolerated(tolerations, t))
}

/// The TaintToleration score input: how many PreferNoSchedule taints the pod's tolerations with
/// effect PreferNoSchedule (or no effect) leave untolerated.
pub fn intolerable_prefer_no_schedule(taints: &[Value], tolerations: &[Value]) -> i64 {
    let prefer: Vec<Value> = tolerations
        .iter()
        .filter(|t| matches!(s(t, "effect"), "" | "PreferNoSchedule"))
        .cloned()
        .collect();
    let n = taints
        .iter()
        .map(Taint::from_json)
        .filter(|t| t.effect == "PreferNoSchedule" && !tolerated(&prefer, t))
        .count();
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn taint(k: &str, v: &str, e: &str) -> Value {
        json!({"key": k, "value": v, "effect": e})
    }

    #[test]
    fn toleration_matching() {
        let t = taint("dedicated", "gpu", "NoSchedule");
        let t = Taint::from_json(&t);
        assert!(tolerates(&json!({"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}), &t));
        assert!(tolerates(&json!({"key": "dedicated", "operator": "Equal", "value": "gpu"}), &t), "empty effect matches all");
        assert!(tolerates(&json!({"key": "dedicated", "operator": "Exists"}), &t));
        assert!(tolerates(&json!({"operator": "Exists"}), &t), "empty key with Exists matches everything");
        assert!(!tolerates(&json!({"operator": "Exists", "effect": "NoExecute"}), &t));
        assert!(!tolerates(&json!({"key": "dedicated", "value": "cpu"}), &t));
        assert!(!tolerates(&json!({"key": "other", "operator": "Exists"}), &t));
        assert!(!tolerates(&json!({"key": "dedicated", "operator": "Gt", "value": "1"}), &t));
        let empty = json!({"key": "k", "effect": "NoSchedule"});
        assert!(tolerates(&json!({"key": "k"}), &Taint::from_json(&empty)), "Equal with empty values");
    }

    #[test]
    fn prefer_no_schedule_never_filters() {
        let taints = vec![taint("a", "", "PreferNoSchedule"), taint("b", "x", "NoExecute"), taint("c", "", "NoSchedule")];
        let found = first_untolerated(&taints, &[]).unwrap();
        assert_eq!((found.key, found.value, found.effect), ("b", "x", "NoExecute"));
        let tol = vec![json!({"key": "b", "operator": "Exists"})];
        assert_eq!(first_untolerated(&taints, &tol).unwrap().key, "c");
        let tol = vec![json!({"operator": "Exists"})];
        assert!(first_untolerated(&taints, &tol).is_none());
        assert!(first_untolerated(&[taint("a", "", "PreferNoSchedule")], &[]).is_none());
    }

    #[test]
    fn counts_prefer_no_schedule() {
        let taints = vec![taint("a", "", "PreferNoSchedule"), taint("b", "", "PreferNoSchedule"), taint("c", "", "NoSchedule")];
        assert_eq!(intolerable_prefer_no_schedule(&taints, &[]), 2);
        let tol = vec![json!({"key": "a", "operator": "Exists", "effect": "PreferNoSchedule"}), json!({"key": "b", "operator": "Exists", "effect": "NoSchedule"})];
        assert_eq!(intolerable_prefer_no_schedule(&taints, &tol), 1, "a NoSchedule toleration does not count");
    }
}
