//! `pods/binding` semantics, as upstream's `BindingREST.Create` / `setPodNodeAndMetadata`
//! (pkg/registry/core/pod/storage/storage.go): the Binding's name must be the pod's, its target a
//! Node by name; its uid and resourceVersion are preconditions; a pod being deleted, already
//! assigned or still gated is refused (409 on `pods/binding`); on success the pod gets
//! `spec.nodeName`, the Binding's annotations and `PodScheduled=True`. Used by the API's binding
//! handler, which is also the scheduler's path.

use serde_json::{Value, json};

use crate::api::now_rfc3339;
use crate::error::{ApiError, ApiResult, Cause};

fn str_at<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

/// `podutil.UpdatePodCondition` for PodScheduled: add the condition, or replace it keeping its
/// transition time when the status is unchanged; false when nothing changed.
pub fn set_scheduled_condition(pod: &mut Value, status: &str, reason: &str, message: &str) -> bool {
    let mut cond = json!({"type": "PodScheduled", "status": status, "lastProbeTime": null, "lastTransitionTime": now_rfc3339()});
    if !reason.is_empty() {
        cond["reason"] = json!(reason);
    }
    if !message.is_empty() {
        cond["message"] = json!(message);
    }
    if let Some(g) = pod.pointer("/metadata/generation").cloned() {
        cond["observedGeneration"] = g;
    }
    let Some(obj) = pod.as_object_mut() else { return false };
    let status_obj = obj.entry("status").or_insert_with(|| json!({}));
    if !status_obj.is_object() {
        *status_obj = json!({});
    }
    let list = status_obj.as_object_mut().map(|s| s.entry("conditions").or_insert_with(|| json!([])));
    let Some(list) = list.and_then(Value::as_array_mut) else { return false };
    match list.iter_mut().find(|c| c.get("type").and_then(Value::as_str) == Some("PodScheduled")) {
        None => {
            list.push(cond);
            true
        }
        Some(old) => {
            if old.get("status") == cond.get("status") {
                cond["lastTransitionTime"] = old.get("lastTransitionTime").cloned().unwrap_or(Value::Null);
            }
            let changed = *old != cond;
            *old = cond;
            changed
        }
    }
}

/// Validate a Binding posted for pod `name` in `ns`; returns the target node name.
pub fn validate(ns: &str, name: &str, binding: &Value) -> ApiResult<String> {
    if !binding.is_object() {
        return Err(ApiError::bad_request("Binding must be an object"));
    }
    match binding.get("kind").and_then(Value::as_str) {
        None | Some("Binding") => {}
        Some(k) => return Err(ApiError::bad_request(format!("expected kind Binding, got {k}"))),
    }
    let bns = str_at(binding, "/metadata/namespace");
    if !bns.is_empty() && bns != ns {
        return Err(ApiError::bad_request("the namespace of the provided object does not match the namespace sent on the request"));
    }
    if str_at(binding, "/metadata/name") != name {
        return Err(ApiError::bad_request("name in URL does not match name in Binding object"));
    }
    let mut causes = Vec::new();
    let kind = str_at(binding, "/target/kind");
    if !kind.is_empty() && kind != "Node" {
        causes.push(Cause::not_supported("target.kind", kind, &["Node", "<empty>"]));
    }
    let node = str_at(binding, "/target/name");
    if node.is_empty() {
        causes.push(Cause::required("target.name"));
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid("", "Binding", name, causes));
    }
    Ok(node.to_string())
}

fn precondition(name: &str, what: &str, want: &str, have: &str) -> ApiResult<()> {
    if want.is_empty() || want == have {
        return Ok(());
    }
    Err(ApiError::conflict("", "pods", name, &format!("Precondition failed: {what} in precondition: {want}, {what} in object meta: {have}")))
}

/// The pod after binding it to `node`, or why not.
pub fn assign(pod: &Value, binding: &Value, node: &str) -> ApiResult<Value> {
    let name = str_at(pod, "/metadata/name");
    precondition(name, "UID", str_at(binding, "/metadata/uid"), str_at(pod, "/metadata/uid"))?;
    precondition(name, "ResourceVersion", str_at(binding, "/metadata/resourceVersion"), str_at(pod, "/metadata/resourceVersion"))?;
    let refuse = |msg: String| ApiError::conflict("", "pods/binding", name, &msg);
    if pod.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null()) {
        return Err(refuse(format!("pod {name} is being deleted, cannot be assigned to a host")));
    }
    let existing = str_at(pod, "/spec/nodeName");
    if !existing.is_empty() {
        return Err(refuse(format!("pod {name} is already assigned to node {existing:?}")));
    }
    if pod.pointer("/spec/schedulingGates").and_then(Value::as_array).is_some_and(|g| !g.is_empty()) {
        return Err(refuse(format!("pod {name} has non-empty .spec.schedulingGates")));
    }
    let mut new = pod.clone();
    crate::api::set_in(&mut new, &["spec", "nodeName"], json!(node));
    if let Some(ann) = binding.pointer("/metadata/annotations").and_then(Value::as_object).filter(|a| !a.is_empty()) {
        let meta = new.as_object_mut().map(|o| o.entry("metadata").or_insert_with(|| json!({})));
        if let Some(target) = meta.and_then(Value::as_object_mut).map(|m| m.entry("annotations").or_insert_with(|| json!({}))) {
            if !target.is_object() {
                *target = json!({});
            }
            if let Some(t) = target.as_object_mut() {
                t.extend(ann.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
    }
    set_scheduled_condition(&mut new, "True", "", "");
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Value {
        json!({"metadata": {"name": "p", "namespace": "d", "uid": "u1", "resourceVersion": "5", "generation": 1},
            "spec": {"containers": []}, "status": {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "m"}]}})
    }

    fn binding(extra: Value) -> Value {
        let mut b = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "n1"}});
        if let (Some(b), Some(e)) = (b["metadata"].as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        b
    }

    #[test]
    fn validation() {
        assert_eq!(validate("d", "p", &binding(json!({}))), Ok("n1".into()));
        assert_eq!(validate("d", "p", &binding(json!({"name": "x"}))).unwrap_err().code, 400);
        assert_eq!(validate("d", "p", &binding(json!({"namespace": "other"}))).unwrap_err().code, 400);
        let mut b = binding(json!({}));
        b["target"] = json!({"kind": "Pod", "name": ""});
        let e = validate("d", "p", &b).unwrap_err();
        assert_eq!(e.code, 422);
        assert!(e.message.contains("target.kind") && e.message.contains("target.name"), "{}", e.message);
        assert_eq!(validate("d", "p", &json!([])).unwrap_err().code, 400);
        assert_eq!(validate("d", "p", &json!({"kind": "Pod"})).unwrap_err().code, 400);
    }

    #[test]
    fn assignment() {
        let b = binding(json!({"uid": "u1", "annotations": {"a": "b"}}));
        let out = assign(&pod(), &b, "n1").unwrap();
        assert_eq!(out["spec"]["nodeName"], "n1");
        assert_eq!(out["metadata"]["annotations"]["a"], "b");
        let c = &out["status"]["conditions"][0];
        assert_eq!((c["type"].as_str(), c["status"].as_str()), (Some("PodScheduled"), Some("True")));
        assert!(c.get("reason").is_none() && c.get("message").is_none());
        assert_eq!(c["observedGeneration"], 1);
    }

    #[test]
    fn refusals() {
        let e = assign(&pod(), &binding(json!({"uid": "other"})), "n1").unwrap_err();
        assert_eq!(e.code, 409);
        assert!(e.message.contains("Precondition failed: UID in precondition: other, UID in object meta: u1"), "{}", e.message);
        assert_eq!(assign(&pod(), &binding(json!({"resourceVersion": "4"})), "n1").unwrap_err().code, 409);
        let mut bound = pod();
        bound["spec"]["nodeName"] = json!("n0");
        let e = assign(&bound, &binding(json!({})), "n1").unwrap_err();
        assert_eq!(e.message, "Operation cannot be fulfilled on pods/binding \"p\": pod p is already assigned to node \"n0\"");
        let mut deleting = pod();
        deleting["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert!(assign(&deleting, &binding(json!({})), "n1").unwrap_err().message.contains("is being deleted"));
        let mut gated = pod();
        gated["spec"]["schedulingGates"] = json!([{"name": "g"}]);
        assert!(assign(&gated, &binding(json!({})), "n1").unwrap_err().message.contains("non-empty .spec.schedulingGates"));
    }

    #[test]
    fn condition_helper() {
        let mut p = json!({"metadata": {"generation": 3}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}});
        assert!(set_scheduled_condition(&mut p, "False", "Unschedulable", "m1"));
        let t0 = p["status"]["conditions"][1]["lastTransitionTime"].clone();
        assert_eq!(p["status"]["conditions"][1]["observedGeneration"], 3);
        assert!(!set_scheduled_condition(&mut p, "False", "Unschedulable", "m1"), "no change, no write");
        assert!(set_scheduled_condition(&mut p, "False", "Unschedulable", "m2"));
        assert_eq!(p["status"]["conditions"][1]["lastTransitionTime"], t0, "same status keeps the transition time");
        let mut bare = json!({});
        assert!(set_scheduled_condition(&mut bare, "True", "", ""));
        assert_eq!(bare["status"]["conditions"][0]["status"], "True");
    }
}
