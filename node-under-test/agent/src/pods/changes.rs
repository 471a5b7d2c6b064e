//! Which API updates of a pod its worker must sync for (upstream's config source: a change of
//! spec, labels, annotations or deletion is an update; a status-only change is a reconcile,
//! which syncs only when the pod's readiness gates changed or it became terminal). The echo of
//! the worker's own status write therefore does not wake it for another round.

use k8s_openapi::api::core::v1::{Pod, PodCondition};

/// True when `new` differs from `old` in anything the worker acts on.
pub fn sync_needed(old: &Pod, new: &Pod) -> bool {
    let (om, nm) = (&old.metadata, &new.metadata);
    if om.uid != nm.uid
        || om.labels != nm.labels
        || om.annotations != nm.annotations
        || om.deletion_timestamp != nm.deletion_timestamp
        || om.deletion_grace_period_seconds != nm.deletion_grace_period_seconds
        || om.owner_references != nm.owner_references
        || old.spec != new.spec
    {
        return true;
    }
    // A terminal phase set by someone else (the worker's own Pending → Running is not news).
    let phase = |p: &Pod| p.status.as_ref().and_then(|s| s.phase.clone());
    let terminal = matches!(phase(new).as_deref(), Some("Succeeded" | "Failed"));
    if terminal && phase(old) != phase(new) {
        return true;
    }
    gate_conditions(new, old) != gate_conditions(new, new)
}

/// The conditions of `of` whose types are readiness gates of `gates_from` (status and reason).
fn gate_conditions<'a>(gates_from: &Pod, of: &'a Pod) -> Vec<&'a PodCondition> {
    let gates: Vec<&str> = gates_from
        .spec
        .as_ref()
        .and_then(|s| s.readiness_gates.as_ref())
        .map(|g| g.iter().map(|g| g.condition_type.as_str()).collect())
        .unwrap_or_default();
    if gates.is_empty() {
        return Vec::new();
    }
    of.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(|cs| cs.iter().filter(|c| gates.contains(&c.type_.as_str())).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    fn base() -> serde_json::Value {
        json!({
            "metadata": {"name": "p", "namespace": "d", "uid": "u", "resourceVersion": "1", "labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "i"}], "readinessGates": [{"conditionType": "example.com/gate"}]},
            "status": {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}]}
        })
    }

    #[test]
    fn own_status_echo_needs_no_sync() {
        let old = pod(base());
        let mut v = base();
        v["metadata"]["resourceVersion"] = json!("2");
        v["status"]["podIP"] = json!("10.0.0.5");
        v["status"]["phase"] = json!("Running");
        v["status"]["startTime"] = json!("2026-01-01T00:00:00Z");
        v["status"]["conditions"] = json!([{"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "True"}]);
        v["status"]["containerStatuses"] = json!([{"name": "c", "image": "i", "imageID": "", "ready": true, "restartCount": 0}]);
        assert!(!sync_needed(&old, &pod(v)));
    }

    #[test]
    fn spec_metadata_deletion_phase_and_gates_need_sync() {
        let old = pod(base());
        let changes: [fn(&mut serde_json::Value); 6] = [
            |v| v["spec"]["activeDeadlineSeconds"] = json!(5),
            |v| v["metadata"]["labels"]["a"] = json!("c"),
            |v| v["metadata"]["annotations"] = json!({"x": "y"}),
            |v| v["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z"),
            |v| v["status"]["phase"] = json!("Failed"),
            |v| v["status"]["conditions"] = json!([{"type": "Ready", "status": "False"}, {"type": "example.com/gate", "status": "True"}]),
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut v = base();
            change(&mut v);
            assert!(sync_needed(&old, &pod(v)), "change {i} must wake the worker");
        }
    }
}
