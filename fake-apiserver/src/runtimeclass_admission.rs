//! The RuntimeClass admission plugin (upstream's `plugin/pkg/admission/runtimeclass`), on every
//! pod being created:
//!
//! - a pod whose `runtimeClassName` names no RuntimeClass is refused (`prepareObjects`);
//! - `setOverhead`: the class's `overhead.podFixed` becomes the pod's `spec.overhead`, unless the
//!   pod already sets a (semantically) different one;
//! - `setScheduling`: the class's `scheduling.nodeSelector` is merged into the pod's (the same
//!   key with another value is a conflict) and its tolerations are merged with the pod's
//!   (`tolerations.MergeTolerations`: a toleration another one covers is dropped);
//! - `validateOverhead` (the validating half): a pod with an overhead needs a class that
//!   defines the same one.
//!
//! Every refusal is 403 `pods "<name>" is forbidden: <reason>` (`admission.NewForbidden`).
//! Pure functions over JSON; the registry looks the class up and calls [`admit_pod`].

use serde_json::{Map, Value, json};

use crate::auth::go_quote;
use crate::controllers::scheduler::quantity::Quantity;
use crate::error::{ApiError, ApiResult};

/// Why the plugin refuses a pod, with upstream's texts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The pod names a RuntimeClass that does not exist.
    #[error("pod rejected: RuntimeClass {} not found", go_quote(.0))]
    NotFound(String),
    /// The pod sets an overhead other than its class's.
    #[error("pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead")]
    OverheadMismatch,
    /// The pod sets an overhead but its class (if any) defines none.
    #[error("pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead")]
    OverheadWithoutClass,
    /// The class's node selector and the pod's disagree on `key`.
    #[error("conflict: runtimeClass.scheduling.nodeSelector[{key}] = {class}; pod.spec.nodeSelector[{key}] = {pod}")]
    SelectorConflict { key: String, class: String, pod: String },
}

impl Refusal {
    /// `admission.NewForbidden` for pod `pod_name`.
    pub fn into_api_error(self, pod_name: &str) -> ApiError {
        ApiError::forbidden(format!("pods {} is forbidden: {self}", go_quote(pod_name))).with_details(pod_name, "", "pods")
    }
}

/// The class a pod names (`spec.runtimeClassName`), when it names one. An empty name is left
/// to pod validation, which refuses it.
pub fn class_name(pod: &Value) -> Option<String> {
    pod.pointer("/spec/runtimeClassName").and_then(Value::as_str).filter(|c| !c.is_empty()).map(str::to_string)
}

/// Admits a new pod that names `class` ([`class_name`]), which is `found` (`None`: no such
/// RuntimeClass): the mutating half (`Admit`), then the validating half (`Validate`).
pub fn admit_pod(pod: &mut Value, class: Option<&str>, found: Option<&Value>) -> ApiResult<()> {
    let pod_name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
    admit(pod, class, found).map_err(|r| r.into_api_error(&pod_name))
}

fn admit(pod: &mut Value, class: Option<&str>, found: Option<&Value>) -> Result<(), Refusal> {
    if let (Some(name), None) = (class, found) {
        return Err(Refusal::NotFound(name.to_string()));
    }
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else { return Ok(()) };
    if let Some(rc) = found {
        set_overhead(spec, rc)?;
        set_scheduling(spec, rc)?;
    }
    validate_overhead(spec, found)
}

/// The class's `overhead.podFixed` when it defines an overhead (an overhead without `podFixed`
/// is an empty list, as upstream's nil map).
fn class_overhead(rc: &Value) -> Option<Map<String, Value>> {
    let overhead = rc.get("overhead").filter(|o| !o.is_null())?;
    Some(overhead.get("podFixed").and_then(Value::as_object).cloned().unwrap_or_default())
}

/// The pod's `spec.overhead` (absent or null: empty).
fn pod_overhead(spec: &Map<String, Value>) -> Map<String, Value> {
    spec.get("overhead").and_then(Value::as_object).cloned().unwrap_or_default()
}

/// `resource.Quantity` equality (`Cmp == 0`); values that are no quantities compare as JSON.
fn same_quantity(a: &Value, b: &Value) -> bool {
    match (Quantity::from_json(a), Quantity::from_json(b)) {
        (Ok(x), Ok(y)) => (x.scaled(-9), x.scaled(0), x.scaled(9)) == (y.scaled(-9), y.scaled(0), y.scaled(9)),
        _ => a == b,
    }
}

/// `apiequality.Semantic.DeepEqual` of two resource lists (a nil list equals an empty one).
fn same_resources(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| same_quantity(v, w)))
}

/// `setOverhead`: the class's overhead becomes the pod's; a pod that sets a different one is refused.
fn set_overhead(spec: &mut Map<String, Value>, rc: &Value) -> Result<(), Refusal> {
    let Some(fixed) = class_overhead(rc) else { return Ok(()) };
    let own = pod_overhead(spec);
    if !own.is_empty() && !same_resources(&fixed, &own) {
        return Err(Refusal::OverheadMismatch);
    }
    if fixed.is_empty() {
        spec.remove("overhead");
    } else {
        spec.insert("overhead".into(), Value::Object(fixed));
    }
    Ok(())
}

/// `validateOverhead`: a pod's overhead must be its class's; without a class overhead there
/// must be none.
fn validate_overhead(spec: &Map<String, Value>, rc: Option<&Value>) -> Result<(), Refusal> {
    let own = pod_overhead(spec);
    if own.is_empty() {
        return Ok(());
    }
    match rc.and_then(class_overhead) {
        Some(fixed) if same_resources(&fixed, &own) => Ok(()),
        Some(_) => Err(Refusal::OverheadMismatch),
        None => Err(Refusal::OverheadWithoutClass),
    }
}

/// A string the way Go's `%s` prints it.
fn shown(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

/// `setScheduling`: the class's node selector merged into the pod's, the tolerations merged.
fn set_scheduling(spec: &mut Map<String, Value>, rc: &Value) -> Result<(), Refusal> {
    let Some(scheduling) = rc.get("scheduling").and_then(Value::as_object) else { return Ok(()) };
    let class_selector = scheduling.get("nodeSelector").and_then(Value::as_object).filter(|s| !s.is_empty());
    if let Some(class_selector) = class_selector {
        match spec.get_mut("nodeSelector").and_then(Value::as_object_mut) {
            None => {
                spec.insert("nodeSelector".into(), Value::Object(class_selector.clone()));
            }
            Some(own) => {
                for (key, value) in class_selector {
                    if let Some(mine) = own.get(key).filter(|mine| *mine != value) {
                        return Err(Refusal::SelectorConflict { key: key.clone(), class: shown(value), pod: shown(mine) });
                    }
                    own.insert(key.clone(), value.clone());
                }
            }
        }
    }
    let list = |v: Option<&Value>| v.and_then(Value::as_array).cloned().unwrap_or_default();
    let merged = merge_tolerations(&list(spec.get("tolerations")), &list(scheduling.get("tolerations")));
    if merged.is_empty() {
        spec.remove("tolerations");
    } else {
        spec.insert("tolerations".into(), json!(merged));
    }
    Ok(())
}

/// A toleration's fields as `core.Toleration` holds them (absent strings are "").
#[derive(Debug, Clone, PartialEq, Eq)]
struct Toleration<'a> {
    key: &'a str,
    operator: &'a str,
    value: &'a str,
    effect: &'a str,
    seconds: Option<i64>,
}

impl<'a> Toleration<'a> {
    fn of(v: &'a Value) -> Self {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
        Toleration {
            key: s("key"),
            operator: s("operator"),
            value: s("value"),
            effect: s("effect"),
            seconds: v.get("tolerationSeconds").and_then(Value::as_i64),
        }
    }

    /// `IsSuperset`: whether `self` tolerates everything `t` does.
    fn is_superset(&self, t: &Toleration) -> bool {
        if self == t {
            return true;
        }
        if t.key != self.key && (!self.key.is_empty() || self.operator != "Exists") {
            return false;
        }
        if t.effect != self.effect && !self.effect.is_empty() {
            return false;
        }
        if self.effect == "NoExecute"
            && let Some(mine) = self.seconds
            && t.seconds.is_none_or(|theirs| theirs > mine)
        {
            return false;
        }
        match self.operator {
            "Equal" | "" => t.operator == "Equal" && t.value == self.value,
            "Exists" => true,
            _ => false,
        }
    }
}

/// `DoTolerationsMerge(first, second)`: all of both in order, less each toleration another
/// kept one covers (of two equal ones, the first stays).
fn merge_tolerations(first: &[Value], second: &[Value]) -> Vec<Value> {
    let all: Vec<(Toleration, &Value)> = first.iter().chain(second).map(|v| (Toleration::of(v), v)).collect();
    let mut merged: Vec<(Toleration, &Value)> = Vec::new();
    for (i, (t, raw)) in all.iter().enumerate() {
        let covered = merged.iter().any(|(m, _)| m.is_superset(t));
        let wider_later = all.iter().skip(i + 1).any(|(later, _)| later != t && later.is_superset(t));
        if !covered && !wider_later {
            merged.push((t.clone(), raw));
        }
    }
    merged.into_iter().map(|(_, raw)| raw.clone()).collect()
}

#[cfg(test)]
#[path = "runtimeclass_admission_tests.rs"]
mod tests;
