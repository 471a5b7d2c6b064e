//! Pod admission under node pressure (pure decision plus the status a rejected pod gets):
//! under memory pressure only BestEffort pods are rejected (unless they tolerate the
//! memory-pressure taint); under disk or PID pressure every pod but critical ones is rejected.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Pod, PodStatus};

use super::PressureHandle;
use super::message::admission_message;
use super::rank::is_critical;
use super::signals::Pressure;

fn best_effort(pod: &Pod) -> bool {
    let Some(spec) = pod.spec.as_ref() else { return true };
    spec.containers.iter().chain(spec.init_containers.iter().flatten()).all(|c| {
        c.resources.as_ref().is_none_or(|r| {
            r.requests.as_ref().is_none_or(|m| m.is_empty()) && r.limits.as_ref().is_none_or(|m| m.is_empty())
        })
    })
}

fn tolerates(pod: &Pod, key: &str) -> bool {
    pod.spec.as_ref().and_then(|s| s.tolerations.as_ref()).is_some_and(|ts| {
        ts.iter().any(|t| {
            let effect_ok = t.effect.as_deref().is_none_or(|e| e.is_empty() || e == "NoSchedule");
            let key_ok = match t.operator.as_deref() {
                Some("Exists") => t.key.as_deref().is_none_or(|k| k.is_empty() || k == key),
                _ => t.key.as_deref() == Some(key),
            };
            effect_ok && key_ok
        })
    })
}

/// `None` when the pod may run, else the rejection message.
pub fn check(pressures: &BTreeSet<Pressure>, pod: &Pod) -> Option<String> {
    if pressures.is_empty() || is_critical(pod) {
        return None;
    }
    let only_memory = pressures.len() == 1 && pressures.contains(&Pressure::Memory);
    if only_memory && (!best_effort(pod) || tolerates(pod, Pressure::Memory.taint())) {
        return None;
    }
    let list: Vec<Pressure> = pressures.iter().copied().collect();
    Some(admission_message(&list))
}

/// For a pod the node has not started yet: returns it unchanged when admitted, or with a Failed
/// status (reason Evicted) that makes its worker never start it and report it Failed.
pub fn admit(pressure: &PressureHandle, mut pod: Pod) -> Pod {
    let pending = pod.status.as_ref().and_then(|s| s.phase.as_deref()).is_none_or(|p| p == "Pending");
    if !pending {
        return pod;
    }
    if let Some(message) = check(&pressure.get(), &pod) {
        tracing::info!(pod = ?pod.metadata.name, %message, "pod rejected at admission");
        let status = pod.status.get_or_insert_with(PodStatus::default);
        status.phase = Some("Failed".into());
        status.reason = Some("Evicted".into());
        status.message = Some(message);
    }
    pod
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(resources: serde_json::Value, tolerations: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "uid": "u"},
            "spec": {"containers": [{"name": "c", "image": "i", "resources": resources}], "tolerations": tolerations}
        }))
        .unwrap()
    }

    #[test]
    fn memory_pressure_rejects_only_best_effort() {
        let mem = BTreeSet::from([Pressure::Memory]);
        let be = pod(serde_json::json!({}), serde_json::json!([]));
        let burstable = pod(serde_json::json!({"requests": {"memory": "10Mi"}}), serde_json::json!([]));
        assert_eq!(check(&mem, &be).as_deref(), Some("The node had condition: [MemoryPressure]. "));
        assert_eq!(check(&mem, &burstable), None);
        let tolerant = pod(serde_json::json!({}), serde_json::json!([{"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"}]));
        assert_eq!(check(&mem, &tolerant), None);
        assert_eq!(check(&BTreeSet::new(), &be), None);
    }

    #[test]
    fn disk_and_pid_pressure_reject_all_but_critical() {
        let disk = BTreeSet::from([Pressure::Disk]);
        let burstable = pod(serde_json::json!({"requests": {"memory": "10Mi"}}), serde_json::json!([]));
        assert_eq!(check(&disk, &burstable).as_deref(), Some("The node had condition: [DiskPressure]. "));
        let mut critical = burstable.clone();
        critical.spec.as_mut().unwrap().priority = Some(2_000_001_000);
        assert_eq!(check(&disk, &critical), None);
        let h = PressureHandle::default();
        h.set(BTreeSet::from([Pressure::Pid]));
        let out = admit(&h, burstable);
        let st = out.status.unwrap();
        assert_eq!((st.phase.as_deref(), st.reason.as_deref()), (Some("Failed"), Some("Evicted")));
        assert_eq!(st.message.as_deref(), Some("The node had condition: [PIDPressure]. "));
    }
}
