//! policy/v1 PodDisruptionBudget: validation (`pkg/apis/policy/validation`), create
//! preparation (`pkg/registry/policy/poddisruptionbudget/strategy.go`), the kubectl table
//! (`printers.go`), and the helpers the disruption controller and the eviction subresource share
//! (`component-helpers/apps/poddisruptionbudget`: the `DisruptionAllowed` condition,
//! `apimeta.SetStatusCondition`).

use serde_json::{Value, json};

use crate::error::Cause;
use crate::selectors::LabelSelector;

/// The PDB condition type (`policy.DisruptionAllowedCondition`).
pub const DISRUPTION_ALLOWED: &str = "DisruptionAllowed";
/// Reason when `disruptionsAllowed > 0`.
pub const SUFFICIENT_PODS: &str = "SufficientPods";
/// Reason when `disruptionsAllowed == 0`.
pub const INSUFFICIENT_PODS: &str = "InsufficientPods";
/// Reason when the controller could not compute the status (`policy.SyncFailedReason`).
pub const SYNC_FAILED: &str = "SyncFailed";
/// `spec.unhealthyPodEvictionPolicy` values, sorted as upstream lists them.
pub const UNHEALTHY_POD_EVICTION_POLICIES: &[&str] = &["AlwaysAllow", "IfHealthyBudget"];

/// `IsNegativeErrorMsg`.
const NEGATIVE: &str = "must be greater than or equal to 0";
/// `validation.IsValidPercent`'s message (a `RegexError`).
const PERCENT: &str = "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')";

fn i64_at(v: &Value, ptr: &str) -> i64 {
    v.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

/// `intstr.IntOrString` rendered as Go's `%#v` does in a field error for a string value.
fn go_intstr(s: &str) -> String {
    format!("intstr.IntOrString{{Type:1, IntVal:0, StrVal:{s:?}}}")
}

fn invalid_raw(field: &str, value: String, detail: &str) -> Cause {
    Cause { reason: "FieldValueInvalid", field: field.into(), message: format!("Invalid value: {value}: {detail}") }
}

/// `ValidatePositiveIntOrPercent` + `IsNotMoreThan100Percent` of one optional field.
fn check_int_or_percent(spec: &Value, key: &str, causes: &mut Vec<Cause>) {
    let field = format!("spec.{key}");
    match spec.get(key) {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) if i < 0 => causes.push(invalid_raw(&field, i.to_string(), NEGATIVE)),
            Some(_) => {}
            None => causes.push(invalid_raw(&field, n.to_string(), "must be an integer or percentage (e.g '5%')")),
        },
        Some(Value::String(s)) => {
            let digits = s.strip_suffix('%').filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
            match digits {
                None => causes.push(invalid_raw(&field, go_intstr(s), PERCENT)),
                Some(d) if d.parse::<u64>().map_or(true, |p| p > 100) => {
                    causes.push(invalid_raw(&field, go_intstr(s), "must not be greater than 100%"));
                }
                Some(_) => {}
            }
        }
        Some(other) => causes.push(invalid_raw(&field, other.to_string(), "must be an integer or percentage (e.g '5%')")),
    }
}

/// `ValidateLabelSelector` of `spec.selector` (operators and their values).
fn check_selector(spec: &Value, causes: &mut Vec<Cause>) {
    let Some(sel) = spec.get("selector").filter(|s| !s.is_null()) else { return };
    let exprs = sel.get("matchExpressions").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    for (i, e) in exprs.iter().enumerate() {
        let base = format!("spec.selector.matchExpressions[{i}]");
        let values = e.get("values").and_then(Value::as_array).map_or(0, Vec::len);
        match e.get("operator").and_then(Value::as_str).unwrap_or("") {
            "In" | "NotIn" if values == 0 => causes.push(Cause {
                reason: "FieldValueRequired",
                field: format!("{base}.values"),
                message: "Required value: must be specified when `operator` is 'In' or 'NotIn'".into(),
            }),
            "Exists" | "DoesNotExist" if values > 0 => causes.push(Cause::forbidden(
                format!("{base}.values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            op => causes.push(Cause::not_supported(format!("{base}.operator"), op, &["In", "NotIn", "Exists", "DoesNotExist"])),
        }
    }
}

/// `ValidatePodDisruptionBudgetSpec`: minAvailable and maxUnavailable exclusive, each a
/// non-negative integer or a percentage up to 100%, a valid selector, a known
/// unhealthyPodEvictionPolicy.
pub fn validate_spec(obj: &Value, causes: &mut Vec<Cause>) {
    let spec = obj.get("spec").cloned().unwrap_or_else(|| json!({}));
    let set = |k: &str| spec.get(k).is_some_and(|v| !v.is_null());
    if set("minAvailable") && set("maxUnavailable") {
        causes.push(invalid_raw("spec", spec.to_string(), "minAvailable and maxUnavailable cannot be both set"));
    }
    check_int_or_percent(&spec, "minAvailable", causes);
    check_int_or_percent(&spec, "maxUnavailable", causes);
    check_selector(&spec, causes);
    if let Some(p) = spec.get("unhealthyPodEvictionPolicy").and_then(Value::as_str)
        && !UNHEALTHY_POD_EVICTION_POLICIES.contains(&p)
    {
        causes.push(Cause::not_supported("spec.unhealthyPodEvictionPolicy", p, UNHEALTHY_POD_EVICTION_POLICIES));
    }
}

/// `ValidatePodDisruptionBudgetStatusUpdate` (policy/v1): the counters are non-negative.
pub fn validate_status(obj: &Value, causes: &mut Vec<Cause>) {
    for key in ["disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods"] {
        let n = i64_at(obj, &format!("/status/{key}"));
        if n < 0 {
            causes.push(invalid_raw(&format!("status.{key}"), n.to_string(), NEGATIVE));
        }
    }
}

/// Validation of an update (spec is mutable since 1.15; status counters checked).
pub fn validate_update(_old: &Value, new: &Value, causes: &mut Vec<Cause>) {
    validate_spec(new, causes);
    validate_status(new, causes);
}

/// `PrepareForCreate`: a new budget starts without status (the controller fills it in), so a
/// client cannot create one that already allows disruptions.
pub fn prepare_for_create(obj: &mut Value) {
    if let Some(o) = obj.as_object_mut() {
        o.remove("status");
    }
}

/// `IntOrString.String()`, or "N/A" when unset (printers.go).
fn int_or_string_cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "N/A".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The `kubectl get pdb` columns after Name and before Age.
pub fn table_columns(name: Value, age: Value) -> Vec<Value> {
    let col = |n: &str, ty: &str, d: &str| json!({"name": n, "type": ty, "format": "", "description": d, "priority": 0});
    vec![
        name,
        col("Min Available", "string", "The minimum number of pods that must be available."),
        col("Max Unavailable", "string", "The maximum number of pods that may be unavailable."),
        col("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."),
        age,
    ]
}

/// `printPodDisruptionBudget`: name, min available, max unavailable, allowed disruptions, age.
pub fn table_cells(v: &Value, age: String) -> Vec<Value> {
    vec![
        json!(v.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")),
        json!(int_or_string_cell(v.pointer("/spec/minAvailable"))),
        json!(int_or_string_cell(v.pointer("/spec/maxUnavailable"))),
        json!(i64_at(v, "/status/disruptionsAllowed")),
        json!(age),
    ]
}

/// `apimeta.SetStatusCondition` on a `metav1.Condition` list; `now` becomes the
/// lastTransitionTime of a new condition or a status change. Returns whether anything changed.
pub fn set_condition(conds: &mut Vec<Value>, ty: &str, status: &str, reason: &str, message: &str, observed_generation: i64, now: &str) -> bool {
    let Some(c) = conds.iter_mut().find(|c| c.get("type").and_then(Value::as_str) == Some(ty)) else {
        let mut c = json!({"type": ty, "status": status, "lastTransitionTime": now, "reason": reason, "message": message});
        if observed_generation != 0 {
            c["observedGeneration"] = json!(observed_generation);
        }
        conds.push(c);
        return true;
    };
    let before = c.clone();
    if c.get("status").and_then(Value::as_str) != Some(status) {
        c["status"] = json!(status);
        c["lastTransitionTime"] = json!(now);
    }
    c["reason"] = json!(reason);
    c["message"] = json!(message);
    match c.as_object_mut() {
        Some(m) if observed_generation == 0 => {
            m.remove("observedGeneration");
        }
        _ => c["observedGeneration"] = json!(observed_generation),
    }
    *c != before
}

/// The status' conditions as a list (empty when absent).
pub fn conditions(status: &Value) -> Vec<Value> {
    status.get("conditions").and_then(Value::as_array).cloned().unwrap_or_default()
}

/// `UpdateDisruptionAllowedCondition` on a status object: True/SufficientPods when
/// `disruptionsAllowed > 0`, else False/InsufficientPods.
pub fn update_disruption_allowed_condition(status: &mut Value, now: &str) {
    let mut conds = conditions(status);
    let generation = i64_at(status, "/observedGeneration");
    let (st, reason) = if i64_at(status, "/disruptionsAllowed") > 0 { ("True", SUFFICIENT_PODS) } else { ("False", INSUFFICIENT_PODS) };
    set_condition(&mut conds, DISRUPTION_ALLOWED, st, reason, "", generation, now);
    if let Some(m) = status.as_object_mut() {
        m.insert("conditions".into(), Value::Array(conds));
    }
}

/// `ConditionsAreUpToDate`: the `DisruptionAllowed` condition agrees with the counters and
/// the status has observed the current generation.
pub fn conditions_up_to_date(pdb: &Value) -> bool {
    let status = pdb.get("status").cloned().unwrap_or(Value::Null);
    let Some(cond) = conditions(&status).into_iter().find(|c| c.get("type").and_then(Value::as_str) == Some(DISRUPTION_ALLOWED)) else {
        return false;
    };
    if i64_at(&status, "/observedGeneration") != i64_at(pdb, "/metadata/generation") {
        return false;
    }
    let (st, reason) = (cond.get("status").and_then(Value::as_str), cond.get("reason").and_then(Value::as_str));
    if i64_at(&status, "/disruptionsAllowed") > 0 {
        st == Some("True") && reason == Some(SUFFICIENT_PODS)
    } else {
        st == Some("False") && reason == Some(INSUFFICIENT_PODS)
    }
}

/// The eviction subresource's view of a budget's selector (`getPodDisruptionBudgets`): a
/// missing, null, empty or invalid selector matches no pod.
pub fn eviction_selector(pdb: &Value) -> Option<LabelSelector> {
    let sel = pdb.pointer("/spec/selector").filter(|s| s.is_object())?;
    LabelSelector::from_label_selector(sel).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn causes_of(spec: Value) -> Vec<Cause> {
        let mut c = Vec::new();
        validate_spec(&json!({"metadata": {"name": "p"}, "spec": spec}), &mut c);
        c
    }

    #[test]
    fn min_and_max_are_exclusive() {
        let c = causes_of(json!({"minAvailable": 1, "maxUnavailable": 1, "selector": {}}));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].field, "spec");
        assert!(c[0].message.ends_with(": minAvailable and maxUnavailable cannot be both set"), "{}", c[0].message);
    }

    #[test]
    fn values_are_non_negative_ints_or_percentages() {
        assert!(causes_of(json!({"minAvailable": "50%"})).is_empty());
        assert!(causes_of(json!({"maxUnavailable": 0})).is_empty());
        let c = causes_of(json!({"minAvailable": -1}));
        assert_eq!((c[0].field.as_str(), c[0].message.as_str()), ("spec.minAvailable", "Invalid value: -1: must be greater than or equal to 0"));
        let c = causes_of(json!({"maxUnavailable": "abc"}));
        assert_eq!(c[0].message, format!("Invalid value: intstr.IntOrString{{Type:1, IntVal:0, StrVal:\"abc\"}}: {PERCENT}"));
        let c = causes_of(json!({"maxUnavailable": "150%"}));
        assert!(c[0].message.ends_with("must not be greater than 100%"));
    }

    #[test]
    fn selector_and_policy_are_checked() {
        let c = causes_of(json!({"selector": {"matchExpressions": [{"key": "a", "operator": "In"}]}, "unhealthyPodEvictionPolicy": "Never"}));
        assert_eq!(c[0].field, "spec.selector.matchExpressions[0].values");
        assert_eq!(c[1].message, "Unsupported value: \"Never\": supported values: \"AlwaysAllow\", \"IfHealthyBudget\"");
    }

    #[test]
    fn table_prints_na_for_unset_values() {
        let v = json!({"metadata": {"name": "p"}, "spec": {"minAvailable": "30%"}, "status": {"disruptionsAllowed": 2}});
        assert_eq!(table_cells(&v, "5s".into()), vec![json!("p"), json!("30%"), json!("N/A"), json!(2), json!("5s")]);
        let v = json!({"metadata": {"name": "q"}, "spec": {"maxUnavailable": 1}});
        assert_eq!(table_cells(&v, "1m".into())[1..4], [json!("N/A"), json!("1"), json!(0)]);
    }

    #[test]
    fn condition_follows_the_counter_and_keeps_transition_time() {
        let mut status = json!({"disruptionsAllowed": 1, "observedGeneration": 2});
        update_disruption_allowed_condition(&mut status, "t1");
        assert_eq!(status["conditions"][0], json!({"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods",
            "message": "", "lastTransitionTime": "t1", "observedGeneration": 2}));
        update_disruption_allowed_condition(&mut status, "t2");
        assert_eq!(status["conditions"][0]["lastTransitionTime"], "t1");
        status["disruptionsAllowed"] = json!(0);
        update_disruption_allowed_condition(&mut status, "t3");
        assert_eq!((&status["conditions"][0]["status"], &status["conditions"][0]["reason"]), (&json!("False"), &json!("InsufficientPods")));
        assert_eq!(status["conditions"][0]["lastTransitionTime"], "t3");
        let pdb = json!({"metadata": {"generation": 2}, "status": status});
        assert!(conditions_up_to_date(&pdb));
    }

    #[test]
    fn eviction_ignores_empty_and_null_selectors() {
        assert!(eviction_selector(&json!({"spec": {"selector": {}}})).is_none());
        assert!(eviction_selector(&json!({"spec": {"selector": null}})).is_none());
        assert!(eviction_selector(&json!({"spec": {"selector": {"matchLabels": {"a": "b"}}}})).is_some());
    }
}
