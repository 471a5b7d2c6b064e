//! The apps/v1 workload controllers: [`replicaset`] (kube-controller-manager's
//! `replicaset-controller`), [`deployment`] (`deployment-controller`), with the pure rolling
//! update arithmetic in [`rollout`], and [`daemonset`] (`daemonset-controller`). They run in
//! one task, [`run`], that reacts to changes of Pods, ReplicaSets, Deployments, DaemonSets and
//! Nodes and ends on `state.cancel`.
//!
//! Shared here: pod activity / readiness / availability (`controller_utils.go`,
//! `podutil.IsPodAvailable`), controller ownerReferences, and the core/v1 events they write.

pub mod daemonset;
pub mod deployment;
pub mod replicaset;
pub mod rollout;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::api::now_rfc3339;
use crate::resources::{self, ResourceId};
use crate::selectors::LabelSelector;
use crate::server::State;
use crate::store::{Change, Obj};

/// Why a workload object could not be reconciled.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("{kind} {ns}/{name} has an invalid selector")]
    Selector { kind: &'static str, ns: String, name: String },
    #[error("{kind} {ns}/{name}: {source}")]
    Api { kind: &'static str, ns: String, name: String, source: Box<crate::error::ApiError> },
    #[error("Deployment {ns}/{name}: {source}")]
    Strategy { ns: String, name: String, source: rollout::RolloutError },
}

/// `controller.IsPodActive`: not Succeeded/Failed and no deletionTimestamp.
pub fn is_pod_active(pod: &Value) -> bool {
    let phase = pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("");
    phase != "Succeeded" && phase != "Failed" && pod.pointer("/metadata/deletionTimestamp").is_none()
}

/// The pod's `Ready` condition when True: its lastTransitionTime (may be empty).
pub fn ready_since(pod: &Value) -> Option<String> {
    let c = pod.pointer("/status/conditions")?.as_array()?.iter().find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))?;
    (c.get("status").and_then(Value::as_str) == Some("True"))
        .then(|| c.get("lastTransitionTime").and_then(Value::as_str).unwrap_or("").to_string())
}

pub fn is_pod_ready(pod: &Value) -> bool {
    ready_since(pod).is_some()
}

/// `podutil.IsPodAvailable`: ready for at least `min_ready` seconds at `now` (seconds); a Ready
/// condition without a transition time counts as ready long enough. `Err(wait)` = not yet,
/// becomes available after `wait` seconds.
pub fn pod_available(pod: &Value, min_ready: i64, now: i64) -> Result<(), Option<i64>> {
    let since = ready_since(pod).ok_or(None)?;
    if min_ready <= 0 {
        return Ok(());
    }
    let Ok(t) = since.parse::<jiff::Timestamp>() else { return Ok(()) };
    let left = t.as_second() + min_ready - now;
    if left <= 0 { Ok(()) } else { Err(Some(left)) }
}

/// The ownerReference with `controller: true`, if any.
pub fn controller_ref(obj: &Value) -> Option<&Value> {
    obj.pointer("/metadata/ownerReferences")?.as_array()?.iter().find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
}

/// Whether `obj` is controlled by the object with `uid`.
pub fn controlled_by(obj: &Value, uid: &str) -> bool {
    controller_ref(obj).and_then(|r| r.get("uid")).and_then(Value::as_str) == Some(uid)
}

/// The controller ownerReference (`controller` and `blockOwnerDeletion` true) naming `owner`.
pub fn owner_ref(owner: &Value, kind: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": kind, "name": owner.pointer("/metadata/name").cloned().unwrap_or(Value::Null),
        "uid": owner.pointer("/metadata/uid").cloned().unwrap_or(Value::Null), "controller": true, "blockOwnerDeletion": true})
}

pub fn uid(obj: &Value) -> &str {
    obj.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("")
}

pub fn int_at(obj: &Value, ptr: &str) -> i64 {
    obj.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

/// The object's `spec.selector` as a [`LabelSelector`].
pub fn selector_of(kind: &'static str, obj: &Obj) -> Result<LabelSelector, WorkloadError> {
    let bad = || WorkloadError::Selector { kind, ns: obj.namespace().into(), name: obj.name().into() };
    let sel = obj.value.pointer("/spec/selector").and_then(LabelSelector::from_label_selector).ok_or_else(bad)?;
    if sel.is_empty() { Err(bad()) } else { Ok(sel) }
}

/// Objects of `res` in `ns` that `owner` controls, plus matching orphans adopted on the way
/// (`ControllerRefManager`: an orphan whose labels match gets our controller reference;
/// an owned object whose labels no longer match is released).
pub fn claim(state: &State, res: ResourceId, owner: &Obj, kind: &'static str, sel: &LabelSelector) -> Vec<Arc<Obj>> {
    let (ns, owner_uid) = (owner.namespace().to_string(), uid(&owner.value).to_string());
    let (items, _) = state.store.snapshot(res, Some(&ns));
    let mut out = Vec::new();
    for o in items {
        let matches = sel.matches(&o.value);
        let ours = controlled_by(&o.value, &owner_uid);
        if ours && matches {
            out.push(o);
        } else if ours || (matches && controller_ref(&o.value).is_none() && o.value.pointer("/metadata/deletionTimestamp").is_none()) {
            let release = ours;
            let oref = owner_ref(&owner.value, kind);
            let updated = edit(state, res, &ns, o.name(), |v| set_owner(v, &owner_uid, (!release).then_some(oref)));
            if let (Some(u), false) = (updated, release) {
                out.push(u);
            }
        }
    }
    out
}

fn set_owner(v: &mut Value, owner_uid: &str, add: Option<Value>) {
    let mut refs: Vec<Value> = v.pointer("/metadata/ownerReferences").and_then(Value::as_array).cloned().unwrap_or_default();
    refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid));
    refs.extend(add);
    crate::api::set_in(v, &["metadata", "ownerReferences"], Value::Array(refs));
}

/// Read-modify-write one object, bumping `metadata.generation` when its spec changed (as the
/// registry does for these resources). `None` when the object is gone.
pub fn edit(state: &State, res: ResourceId, ns: &str, name: &str, f: impl FnOnce(&mut Value)) -> Option<Arc<Obj>> {
    let out = state.store.mutate(res, ns, name, |cur| {
        let Some(cur) = cur else { return Ok(Change::Keep) };
        let mut v = cur.value.clone();
        f(&mut v);
        if v == cur.value {
            return Ok(Change::Keep);
        }
        if res.desc().generation && v.get("spec") != cur.value.get("spec") {
            let g = int_at(&cur.value, "/metadata/generation").max(1) + 1;
            crate::api::set_in(&mut v, &["metadata", "generation"], json!(g));
        }
        Ok(Change::Put(v))
    });
    out.ok().map(|o| o.obj)
}

/// Write a Normal core/v1 Event about `obj` from `component`.
pub fn record(state: &State, obj: &Value, kind: &str, component: &str, reason: &str, message: &str) {
    record_type(state, obj, kind, component, "Normal", reason, message);
}

/// Write a core/v1 Event of type `ty` ("Normal" or "Warning") about `obj` from `component`.
pub fn record_type(state: &State, obj: &Value, kind: &str, component: &str, ty: &str, reason: &str, message: &str) {
    let (ns, name) = (obj.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or(""), obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or(""));
    let now = now_rfc3339();
    let ev = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("{name}.{:x}", jiff::Timestamp::now().as_nanosecond()), "namespace": ns},
        "involvedObject": {"apiVersion": "apps/v1", "kind": kind, "namespace": ns, "name": name, "uid": uid(obj),
            "resourceVersion": obj.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null)},
        "reason": reason, "message": message, "type": ty, "count": 1,
        "firstTimestamp": now, "lastTimestamp": now, "source": {"component": component},
        "reportingComponent": component, "reportingInstance": "",
    });
    if let Err(err) = state.api.create(resources::EVENTS, ns, ev) {
        tracing::debug!(%err, reason, "workload event not written");
    }
}

/// Run the controllers until the server is cancelled: a pass over all Deployments and all
/// ReplicaSets (when `config.workloads`) and all DaemonSets (when `config.daemonsets`) after
/// every burst of changes, and again when a pod becomes available (`minReadySeconds`) or a
/// failed daemon pod's backoff ends.
pub async fn run(state: Arc<State>) {
    let watched = [resources::PODS, resources::REPLICASETS, resources::DEPLOYMENTS, resources::DAEMONSETS, resources::NODES];
    let mut rxs = watched.map(|r| state.store.subscribe(r));
    let mut daemons = daemonset::Controller::default();
    loop {
        let mut wake: Option<i64> = None;
        if state.config.workloads {
            wake = deployment::sync_all(&state).into_iter().chain(replicaset::sync_all(&state)).min();
        }
        if state.config.daemonsets {
            wake = wake.into_iter().chain(daemons.sync_all(&state)).min();
        }
        if !super::next_pass(&state, &mut rxs, Duration::from_secs(wake.unwrap_or(3600).max(1) as u64)).await {
            return;
        }
    }
}
