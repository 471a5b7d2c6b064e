//! ReplicaSet controller (upstream `pkg/controller/replicaset/replica_set.go`): keeps
//! `spec.replicas` active pods (`IsPodActive`: not Succeeded/Failed, no deletionTimestamp, so a
//! Terminating pod is replaced at once) matching the selector, creating pods `<rs>-<5 random>`
//! from the template with a controller ownerReference and deleting the surplus in upstream's
//! ranking; adopts matching orphans; reports `replicas`, `fullyLabeledReplicas`,
//! `readyReplicas`, `availableReplicas` (`minReadySeconds`) and `observedGeneration`. Events:
//! SuccessfulCreate "Created pod: <name>", SuccessfulDelete "Deleted pod: <name>".

use std::cmp::Ordering;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::{WorkloadError, claim, int_at, is_pod_active, is_pod_ready, owner_ref, pod_available, record, selector_of};
use crate::api::DeleteOpts;
use crate::resources::{PODS, REPLICASETS};
use crate::server::State;
use crate::store::{Change, Obj};

pub const COMPONENT: &str = "replicaset-controller";

/// Pods to create (> 0) or delete (< 0) to reach `want` from `active` (`manageReplicas`).
pub fn replica_diff(want: i64, active: usize) -> i64 {
    want.max(0) - i64::try_from(active).unwrap_or(i64::MAX)
}

fn phase_rank(pod: &Value) -> u8 {
    match pod.pointer("/status/phase").and_then(Value::as_str) {
        Some("Pending") | None => 0,
        Some("Running") => 2,
        _ => 1,
    }
}

fn restarts(pod: &Value) -> i64 {
    pod.pointer("/status/containerStatuses").and_then(Value::as_array).into_iter().flatten().map(|c| int_at(c, "/restartCount")).max().unwrap_or(0)
}

fn ts(pod: &Value, ptr: &str) -> i64 {
    pod.pointer(ptr).and_then(Value::as_str).and_then(|t| t.parse::<jiff::Timestamp>().ok()).map_or(i64::MAX, |t| t.as_second())
}

/// Creation time in seconds (missing sorts last), for oldest-first orderings.
pub fn created(v: &Value) -> i64 {
    ts(v, "/metadata/creationTimestamp")
}

/// Upstream's `ActivePods` ordering for deletion, most deletable first: unassigned before
/// assigned, Pending before Unknown before Running, not ready before ready, ready for a shorter
/// time first, more restarts first, newer first.
pub fn deletion_order(a: &Value, b: &Value) -> Ordering {
    let assigned = |p: &Value| p.pointer("/spec/nodeName").and_then(Value::as_str).is_some_and(|n| !n.is_empty());
    let ready_at = |p: &Value| super::ready_since(p).map(|t| t.parse::<jiff::Timestamp>().map_or(0, |t| t.as_second()));
    assigned(a)
        .cmp(&assigned(b))
        .then(phase_rank(a).cmp(&phase_rank(b)))
        .then(is_pod_ready(a).cmp(&is_pod_ready(b)))
        .then_with(|| match (ready_at(a), ready_at(b)) {
            (Some(x), Some(y)) => y.cmp(&x),
            _ => Ordering::Equal,
        })
        .then(restarts(b).cmp(&restarts(a)))
        .then(ts(b, "/metadata/creationTimestamp").cmp(&ts(a, "/metadata/creationTimestamp")))
}

/// The pods to delete: the first `n` in [`deletion_order`].
pub fn pick_for_deletion(mut pods: Vec<Arc<Obj>>, n: usize) -> Vec<Arc<Obj>> {
    pods.sort_by(|a, b| deletion_order(&a.value, &b.value));
    pods.truncate(n);
    pods
}

/// A pod for `rs` from its template (`GetPodFromTemplate`): template labels, annotations and
/// spec, `generateName: <rs>-`, and the controller ownerReference.
pub fn pod_from_template(rs: &Value) -> Value {
    let name = rs.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    let t = rs.pointer("/spec/template").cloned().unwrap_or_default();
    let mut meta = Map::new();
    meta.insert("generateName".into(), json!(format!("{name}-")));
    for k in ["labels", "annotations", "finalizers"] {
        if let Some(v) = t.pointer(&format!("/metadata/{k}")) {
            meta.insert(k.into(), v.clone());
        }
    }
    meta.insert("ownerReferences".into(), json!([owner_ref(rs, "ReplicaSet")]));
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": t.get("spec").cloned().unwrap_or_default()})
}

/// The status for `rs` given its active pods at `now` (seconds), and the seconds until a
/// ready pod becomes available, if any (`calculateStatus`).
pub fn compute_status(rs: &Value, active: &[Arc<Obj>], now: i64) -> (Value, Option<i64>) {
    let template_labels = rs.pointer("/spec/template/metadata/labels").and_then(Value::as_object).cloned().unwrap_or_default();
    let min_ready = int_at(rs, "/spec/minReadySeconds");
    let fully = active.iter().filter(|p| {
        let l = p.value.pointer("/metadata/labels").and_then(Value::as_object);
        template_labels.iter().all(|(k, v)| l.and_then(|l| l.get(k)) == Some(v))
    }).count();
    let ready = active.iter().filter(|p| is_pod_ready(&p.value)).count();
    let mut available = 0;
    let mut wake: Option<i64> = None;
    for p in active {
        match pod_available(&p.value, min_ready, now) {
            Ok(()) => available += 1,
            Err(Some(w)) => wake = Some(wake.map_or(w, |x| x.min(w))),
            Err(None) => {}
        }
    }
    let mut status = rs.get("status").cloned().filter(Value::is_object).unwrap_or_else(|| json!({}));
    for (k, v) in [("replicas", active.len()), ("fullyLabeledReplicas", fully), ("readyReplicas", ready), ("availableReplicas", available)] {
        status[k] = json!(v);
    }
    status["observedGeneration"] = json!(int_at(rs, "/metadata/generation"));
    (status, wake)
}

/// Reconcile one ReplicaSet; returns when to look again for availability.
pub fn sync(state: &State, rs: &Arc<Obj>) -> Result<Option<i64>, WorkloadError> {
    if rs.value.pointer("/metadata/deletionTimestamp").is_some() {
        return Ok(None);
    }
    let sel = selector_of("ReplicaSet", rs)?;
    let ns = rs.namespace().to_string();
    let pods: Vec<Arc<Obj>> = claim(state, PODS, rs, "ReplicaSet", &sel).into_iter().filter(|p| is_pod_active(&p.value)).collect();
    let diff = replica_diff(int_at(&rs.value, "/spec/replicas"), pods.len());
    let mut active = pods.clone();
    if diff > 0 {
        for _ in 0..diff {
            match state.api.create(PODS, &ns, pod_from_template(&rs.value)) {
                Ok(p) => {
                    record(state, &rs.value, "ReplicaSet", COMPONENT, "SuccessfulCreate", &format!("Created pod: {}", p.name()));
                    active.push(p);
                }
                Err(source) => return Err(WorkloadError::Api { kind: "ReplicaSet", ns, name: rs.name().into(), source: Box::new(source) }),
            }
        }
    } else if diff < 0 {
        for p in pick_for_deletion(pods, usize::try_from(-diff).unwrap_or(0)) {
            if state.api.delete(PODS, &ns, p.name(), &DeleteOpts::default()).is_ok() {
                record(state, &rs.value, "ReplicaSet", COMPONENT, "SuccessfulDelete", &format!("Deleted pod: {}", p.name()));
                active.retain(|a| a.name() != p.name());
            }
        }
    }
    let (status, wake) = compute_status(&rs.value, &active, jiff::Timestamp::now().as_second());
    write_status(state, &ns, rs.name(), status);
    Ok(wake)
}

fn write_status(state: &State, ns: &str, name: &str, status: Value) {
    let _ = state.store.mutate(REPLICASETS, ns, name, |cur| {
        let Some(cur) = cur else { return Ok(Change::Keep) };
        if cur.value.get("status") == Some(&status) {
            return Ok(Change::Keep);
        }
        let mut v = cur.value.clone();
        v["status"] = status;
        Ok(Change::Put(v))
    });
}

/// Reconcile every ReplicaSet; the soonest availability wake-up in seconds.
pub fn sync_all(state: &State) -> Option<i64> {
    let (all, _) = state.store.snapshot(REPLICASETS, None);
    let mut wake = None;
    for rs in all {
        match sync(state, &rs) {
            Ok(Some(w)) => wake = Some(wake.map_or(w, |x: i64| x.min(w))),
            Ok(None) => {}
            Err(err) => tracing::debug!(%err, "replicaset sync"),
        }
    }
    wake
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, node: &str, phase: &str, ready: Option<&str>, created: &str) -> Arc<Obj> {
        let mut v = json!({"metadata": {"name": name, "creationTimestamp": created}, "spec": {"nodeName": node}, "status": {"phase": phase}});
        if let Some(t) = ready {
            v["status"]["conditions"] = json!([{"type": "Ready", "status": "True", "lastTransitionTime": t}]);
        }
        Obj::new(v, 1)
    }

    #[test]
    fn diff_counts_only_what_is_missing_or_extra() {
        assert_eq!(replica_diff(3, 1), 2);
        assert_eq!(replica_diff(1, 3), -2);
        assert_eq!(replica_diff(-1, 0), 0);
    }

    #[test]
    fn deletion_prefers_unassigned_pending_unready_newer() {
        let t0 = "2026-01-01T00:00:00Z";
        let t1 = "2026-01-01T00:01:00Z";
        let pods = vec![
            pod("ready-old", "n", "Running", Some(t0), t0),
            pod("ready-new", "n", "Running", Some(t1), t0),
            pod("running-unready", "n", "Running", None, t0),
            pod("pending", "n", "Pending", None, t0),
            pod("unassigned", "", "Pending", None, t0),
        ];
        let names: Vec<String> = pick_for_deletion(pods, 5).iter().map(|p| p.name().to_string()).collect();
        assert_eq!(names, ["unassigned", "pending", "running-unready", "ready-new", "ready-old"]);
        let newer = vec![pod("old", "n", "Running", None, t0), pod("new", "n", "Running", None, t1)];
        assert_eq!(pick_for_deletion(newer, 1)[0].name(), "new");
    }

    #[test]
    fn template_pod_is_owned_and_named_after_the_rs() {
        let rs = json!({"metadata": {"name": "web-abc", "uid": "u1"}, "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        let p = pod_from_template(&rs);
        assert_eq!(p["metadata"]["generateName"], "web-abc-");
        assert_eq!(p["metadata"]["labels"]["app"], "web");
        assert_eq!(p["metadata"]["ownerReferences"][0], json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc", "uid": "u1", "controller": true, "blockOwnerDeletion": true}));
        assert_eq!(p["spec"]["containers"][0]["image"], "i");
    }

    #[test]
    fn status_counts_ready_and_available_after_min_ready_seconds() {
        let rs = json!({"metadata": {"generation": 4}, "spec": {"minReadySeconds": 10, "template": {"metadata": {"labels": {"app": "web"}}}}});
        let t = "2026-01-01T00:00:00Z";
        let now = t.parse::<jiff::Timestamp>().map(|t| t.as_second()).unwrap_or(0) + 4;
        let mut v = pod("a", "n", "Running", Some(t), t).value.clone();
        v["metadata"]["labels"] = json!({"app": "web"});
        let a = Obj::new(v, 1);
        let pods = vec![a, pod("b", "n", "Running", None, t)];
        let (s, wake) = compute_status(&rs, &pods, now);
        assert_eq!((s["replicas"].as_i64(), s["fullyLabeledReplicas"].as_i64(), s["readyReplicas"].as_i64(), s["availableReplicas"].as_i64()), (Some(2), Some(1), Some(1), Some(0)));
        assert_eq!(wake, Some(6));
        assert_eq!(s["observedGeneration"], 4);
        let (s, _) = compute_status(&rs, &pods, now + 6);
        assert_eq!(s["availableReplicas"], 1);
    }
}
