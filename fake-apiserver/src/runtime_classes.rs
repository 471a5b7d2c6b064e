//! `node.k8s.io/v1` RuntimeClass: validation (`pkg/apis/node/validation`), kubectl's table
//! (NAME, HANDLER, AGE) and the RuntimeClass admission plugin on pod creation
//! (`plugin/pkg/admission/runtimeclass`): a pod naming a class that does not exist is refused,
//! the class's overhead becomes the pod's, and its scheduling constraints (nodeSelector,
//! tolerations) are merged into the pod's.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult, Cause};
use crate::validation::is_dns1123_label;

/// Upstream's DNS-1123 label message.
const DNS1123_LABEL: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

/// `ValidateRuntimeClass`: `handler` is required and a DNS-1123 label.
pub fn check(obj: &Value, causes: &mut Vec<Cause>) {
    match obj.get("handler").and_then(Value::as_str) {
        None | Some("") => causes.push(Cause::required("handler")),
        Some(h) if !is_dns1123_label(h) => causes.push(Cause::invalid("handler", h, DNS1123_LABEL)),
        Some(_) => {}
    }
}

/// `ValidateRuntimeClassUpdate`: the handler is immutable.
pub fn check_update(old: &Value, new: &Value, causes: &mut Vec<Cause>) {
    check(new, causes);
    if old.get("handler") != new.get("handler") {
        let shown = new.get("handler").and_then(Value::as_str).unwrap_or("");
        causes.push(Cause::invalid("handler", shown, "field is immutable"));
    }
}

/// kubectl's columns: NAME, HANDLER, AGE.
pub fn table_columns(name: Value, age: Value) -> Vec<Value> {
    let handler = json!({"name": "Handler", "type": "string", "format": "", "priority": 0,
        "description": "handler specifies the underlying runtime and configuration that the CRI implementation will use to handle pods of this class."});
    vec![name, handler, age]
}

pub fn table_cells(v: &Value, age: String) -> Vec<Value> {
    let name = v.pointer("/metadata/name").cloned().unwrap_or(Value::Null);
    vec![name, json!(v.get("handler").and_then(Value::as_str).unwrap_or("")), json!(age)]
}

fn forbidden(pod_name: &str, why: String) -> ApiError {
    ApiError::forbidden(format!("pods {pod_name:?} is forbidden: {why}")).with_details(pod_name, "", "pods")
}

/// The admission plugin on a new pod whose `runtimeClassName` is `class`, which `found` is
/// (`None`: no such RuntimeClass).
pub fn admit_pod(pod: &mut Value, class: &str, found: Option<&Value>) -> ApiResult<()> {
    let pod_name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
    let Some(rc) = found else {
        return Err(forbidden(&pod_name, format!("pod rejected: RuntimeClass {class:?} not found")));
    };
    set_overhead(pod, rc).map_err(|why| forbidden(&pod_name, why))?;
    set_scheduling(pod, rc).map_err(|why| forbidden(&pod_name, why))
}

fn spec_mut(pod: &mut Value) -> Option<&mut Map<String, Value>> {
    pod.get_mut("spec").and_then(Value::as_object_mut)
}

/// `setOverhead`: the class's `overhead.podFixed` becomes the pod's; a pod that already sets
/// a different one is refused.
fn set_overhead(pod: &mut Value, rc: &Value) -> Result<(), String> {
    let Some(fixed) = rc.pointer("/overhead/podFixed").filter(|v| !v.is_null()) else { return Ok(()) };
    let Some(spec) = spec_mut(pod) else { return Ok(()) };
    match spec.get("overhead").filter(|v| !v.is_null()) {
        Some(own) if own != fixed => Err("pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead".into()),
        _ => {
            spec.insert("overhead".into(), fixed.clone());
            Ok(())
        }
    }
}

/// `setScheduling`: the class's nodeSelector is merged into the pod's (a different value for a
/// key is a conflict) and its tolerations are added (those the pod has already are kept once).
fn set_scheduling(pod: &mut Value, rc: &Value) -> Result<(), String> {
    let Some(sched) = rc.get("scheduling").and_then(Value::as_object) else { return Ok(()) };
    let Some(spec) = spec_mut(pod) else { return Ok(()) };
    if let Some(selector) = sched.get("nodeSelector").and_then(Value::as_object) {
        let own = spec.entry("nodeSelector").or_insert_with(|| json!({}));
        if !own.is_object() {
            *own = json!({});
        }
        let own = own.as_object_mut().ok_or("pod.spec.nodeSelector is not a map")?;
        for (k, v) in selector {
            match own.get(k) {
                Some(mine) if mine != v => {
                    let show = |v: &Value| v.as_str().unwrap_or_default().to_string();
                    return Err(format!(
                        "conflict: runtimeClass.scheduling.nodeSelector[{k}] = {}; pod.spec.nodeSelector[{k}] = {}",
                        show(v),
                        show(mine)
                    ));
                }
                _ => {
                    own.insert(k.clone(), v.clone());
                }
            }
        }
    }
    if let Some(tolerations) = sched.get("tolerations").and_then(Value::as_array) {
        let own = spec.entry("tolerations").or_insert_with(|| json!([]));
        if let Some(list) = own.as_array_mut() {
            for t in tolerations {
                if !list.contains(t) {
                    list.push(t.clone());
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_is_required_a_label_and_immutable() {
        let mut c = Vec::new();
        check(&json!({}), &mut c);
        check(&json!({"handler": "Not_OK"}), &mut c);
        check(&json!({"handler": "crun"}), &mut c);
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c[0].field, "handler");
        let mut c = Vec::new();
        check_update(&json!({"handler": "runc"}), &json!({"handler": "crun"}), &mut c);
        assert_eq!(c.len(), 1);
        assert!(c[0].message.contains("field is immutable"), "{c:?}");
    }

    #[test]
    fn admission_refuses_missing_classes_and_applies_the_class() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"nodeSelector": {"zone": "a"}, "tolerations": [{"key": "t", "operator": "Exists"}]}});
        let e = admit_pod(&mut pod, "ghost", None).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (403, r#"pods "p" is forbidden: pod rejected: RuntimeClass "ghost" not found"#));
        let rc = json!({"handler": "crun", "overhead": {"podFixed": {"memory": "64Mi"}},
            "scheduling": {"nodeSelector": {"crun": "yes"}, "tolerations": [{"key": "t", "operator": "Exists"}, {"key": "u", "operator": "Exists"}]}});
        admit_pod(&mut pod, "crun", Some(&rc)).unwrap();
        assert_eq!(pod["spec"]["overhead"], json!({"memory": "64Mi"}));
        assert_eq!(pod["spec"]["nodeSelector"], json!({"zone": "a", "crun": "yes"}));
        assert_eq!(pod["spec"]["tolerations"].as_array().unwrap().len(), 2);
        let mut other = json!({"metadata": {"name": "q"}, "spec": {"overhead": {"memory": "1Mi"}}});
        let e = admit_pod(&mut other, "crun", Some(&rc)).unwrap_err();
        assert!(e.message.ends_with("pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead"), "{}", e.message);
        let mut conflict = json!({"metadata": {"name": "r"}, "spec": {"nodeSelector": {"crun": "no"}}});
        let e = admit_pod(&mut conflict, "crun", Some(&rc)).unwrap_err();
        assert!(e.message.ends_with("conflict: runtimeClass.scheduling.nodeSelector[crun] = yes; pod.spec.nodeSelector[crun] = no"), "{}", e.message);
    }
}
