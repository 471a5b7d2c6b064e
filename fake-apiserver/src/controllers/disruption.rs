//! kube-controller-manager's disruption controller (`pkg/controller/disruption/disruption.go`):
//! keeps every PodDisruptionBudget's status current.
//!
//! For each budget: the pods of its namespace its selector matches (a null selector matches
//! none, an empty one all), then
//! - `expectedPods` / `desiredHealthy` ([`expected_and_desired`]): an integer `minAvailable`
//!   wants that many of the matching pods; a percentage `minAvailable`, or any
//!   `maxUnavailable`, is taken of the summed scale of the pods' controllers (a ReplicaSet's
//!   Deployment's `spec.replicas`, else the ReplicaSet's; any other served kind through its
//!   scale subresource — a DaemonSet has none, so such a budget fails to sync as upstream's
//!   does: "daemonsets.apps does not implement the scale subresource");
//! - `disruptedPods` ([`build_disrupted_map`]): the eviction subresource's records, kept while
//!   the pod exists without a deletionTimestamp and for at most [`DELETION_TIMEOUT_SECS`];
//! - `currentHealthy` ([`count_healthy`]): Ready pods neither being deleted nor recently
//!   disrupted; `disruptionsAllowed` ([`disruptions_allowed`]) = `currentHealthy -
//!   desiredHealthy`, at least 0, and 0 while `expectedPods` is 0;
//! - `observedGeneration` and the `DisruptionAllowed` condition (`SufficientPods` /
//!   `InsufficientPods`); a failed sync sets `disruptionsAllowed` 0 and the condition False with
//!   reason `SyncFailed` and the error as message ([`fail_safe_status`]).
//!
//! Status is written only when it changed, and only over the budget version it was computed
//! from (so an eviction's decrement is never overwritten by a stale computation). Pods whose
//! `DisruptionTarget` condition outlived [`STALE_POD_DISRUPTION_TIMEOUT_SECS`] without a
//! deletion get it reset to False. The task reacts to changes of pods, budgets, ReplicaSets and
//! Deployments (bursts coalesced), wakes for expiring records, and ends on `state.cancel`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::api::now_rfc3339;
use crate::controllers::follow::Follow;
use crate::controllers::workloads::{controller_ref, is_pod_ready, uid};
use crate::error::ApiError;
use crate::pdb;
use crate::resources::{self, ResourceId};
use crate::selectors::LabelSelector;
use crate::server::State;
use crate::store::{Change, Obj};

/// `DeletionTimeout`: how long an eviction's `disruptedPods` entry keeps the pod out of
/// `currentHealthy` while the pod is not being deleted.
pub const DELETION_TIMEOUT_SECS: i64 = 120;
/// `stalePodDisruptionTimeout`: a `DisruptionTarget=True` condition without a deletion is
/// reset to False after this long.
pub const STALE_POD_DISRUPTION_TIMEOUT_SECS: i64 = 120;

/// Why a budget's status could not be computed (the texts become the `SyncFailed` message).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SyncError {
    #[error("invalid value for IntOrString: {0}")]
    IntOrString(String),
    #[error("found no controllers for pod {0:?}")]
    NoController(String),
    #[error("{0} does not implement the scale subresource")]
    NoScale(String),
    #[error("no matches for kind {kind:?} in version {version:?}")]
    NoKind { kind: String, version: String },
    #[error("invalid label selector: {0}")]
    Selector(String),
}

/// The three computed counts of a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub current: i64,
    pub desired: i64,
    pub expected: i64,
}

/// `intstr.GetScaledValueFromIntOrPercent(v, total, roundUp=true)`.
pub fn scaled_value(v: &Value, total: i64) -> Result<i64, SyncError> {
    let neither = || SyncError::IntOrString("invalid type: neither int nor percentage".into());
    match v {
        Value::Number(n) => n.as_i64().ok_or_else(neither),
        Value::String(s) => {
            let digits = s.strip_suffix('%').ok_or_else(|| SyncError::IntOrString("invalid type: string is not a percentage".into()))?;
            let syntax = || SyncError::IntOrString(format!("invalid value {s:?}: strconv.Atoi: parsing {digits:?}: invalid syntax"));
            let pct: i64 = digits.parse().map_err(|_| syntax())?;
            let x = pct.checked_mul(total).ok_or_else(syntax)?;
            Ok(x.saturating_add(99).div_euclid(100))
        }
        _ => Err(neither()),
    }
}

/// `getExpectedPodCount`: `(expectedCount, desiredHealthy)` from the budget's spec, the number
/// of matching pods, and `scale` (the pods' controllers' summed scale, computed only when needed).
pub fn expected_and_desired(spec: &Value, pods: i64, scale: impl FnOnce() -> Result<i64, SyncError>) -> Result<(i64, i64), SyncError> {
    let get = |k: &str| spec.get(k).filter(|v| !v.is_null());
    if let Some(max) = get("maxUnavailable") {
        let expected = scale()?;
        let max = scaled_value(max, expected)?;
        return Ok((expected, expected.saturating_sub(max).max(0)));
    }
    match get("minAvailable") {
        None => Ok((0, 0)),
        Some(min @ Value::Number(_)) => Ok((pods, scaled_value(min, pods)?)),
        Some(min) => {
            let expected = scale()?;
            Ok((expected, scaled_value(min, expected)?))
        }
    }
}

/// `updatePdbStatus`'s arithmetic: 0 unless pods are expected and more are healthy than desired.
pub fn disruptions_allowed(c: Counts) -> i64 {
    let allowed = c.current.saturating_sub(c.desired);
    if c.expected <= 0 || allowed <= 0 { 0 } else { allowed }
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn being_deleted(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null())
}

/// Seconds since the epoch of an RFC 3339 time (0 when unreadable).
fn epoch(t: Option<&Value>) -> i64 {
    t.and_then(Value::as_str).and_then(|s| s.parse::<jiff::Timestamp>().ok()).map_or(0, |t| t.as_second())
}

/// `buildDisruptedPodMap`: the entries of `old` for pods that still exist, are not being
/// deleted, and were disrupted less than [`DELETION_TIMEOUT_SECS`] before `now`; plus the
/// earliest time one of them expires.
pub fn build_disrupted_map(pods: &[&Value], old: Option<&Map<String, Value>>, now: i64) -> (Map<String, Value>, Option<i64>) {
    let mut out = Map::new();
    let mut recheck: Option<i64> = None;
    let Some(old) = old else { return (out, recheck) };
    for pod in pods.iter().filter(|p| !being_deleted(p)) {
        let name = str_at(pod, "/metadata/name");
        let Some(at) = old.get(name) else { continue };
        let expires = epoch(Some(at)) + DELETION_TIMEOUT_SECS;
        if expires >= now {
            recheck = Some(recheck.map_or(expires, |r| r.min(expires)));
            out.insert(name.to_string(), at.clone());
        }
    }
    (out, recheck)
}

/// `countHealthyPods`: Ready pods without a deletionTimestamp and not disrupted within
/// [`DELETION_TIMEOUT_SECS`].
pub fn count_healthy(pods: &[&Value], disrupted: &Map<String, Value>, now: i64) -> i64 {
    let recently_disrupted = |p: &Value| disrupted.get(str_at(p, "/metadata/name")).is_some_and(|t| epoch(Some(t)) + DELETION_TIMEOUT_SECS > now);
    pods.iter().filter(|p| !being_deleted(p) && !recently_disrupted(p) && is_pod_ready(p)).count() as i64
}

fn i64_at(v: &Value, ptr: &str) -> i64 {
    v.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

/// `updatePdbStatus` (pure): the budget's new status at `now`, or `None` when the stored one
/// already says the same and its condition is up to date.
pub fn next_status(budget: &Value, c: Counts, disrupted: Map<String, Value>, now: &str) -> Option<Value> {
    let allowed = disruptions_allowed(c);
    let generation = i64_at(budget, "/metadata/generation");
    let old = budget.get("status").cloned().unwrap_or(Value::Null);
    let old_disrupted = old.get("disruptedPods").and_then(Value::as_object).cloned().unwrap_or_default();
    let same = i64_at(&old, "/currentHealthy") == c.current
        && i64_at(&old, "/desiredHealthy") == c.desired
        && i64_at(&old, "/expectedPods") == c.expected
        && i64_at(&old, "/disruptionsAllowed") == allowed
        && old_disrupted == disrupted
        && i64_at(&old, "/observedGeneration") == generation
        && pdb::conditions_up_to_date(budget);
    if same {
        return None;
    }
    let mut status = json!({"disruptionsAllowed": allowed, "currentHealthy": c.current, "desiredHealthy": c.desired,
        "expectedPods": c.expected, "conditions": pdb::conditions(&old)});
    if generation != 0 {
        status["observedGeneration"] = json!(generation);
    }
    if !disrupted.is_empty() {
        status["disruptedPods"] = Value::Object(disrupted);
    }
    pdb::update_disruption_allowed_condition(&mut status, now);
    Some(status)
}

/// `failSafe` (pure): no disruptions allowed and `DisruptionAllowed` False / `SyncFailed`
/// with `err`; `None` when the status already says so.
pub fn fail_safe_status(budget: &Value, err: &str, now: &str) -> Option<Value> {
    let old = budget.get("status").cloned().filter(Value::is_object);
    let mut status = old.clone().unwrap_or_else(|| json!({}));
    for key in ["currentHealthy", "desiredHealthy", "expectedPods"] {
        if status.get(key).is_none() {
            status[key] = json!(0);
        }
    }
    status["disruptionsAllowed"] = json!(0);
    let mut conds = pdb::conditions(&status);
    let observed = i64_at(&status, "/observedGeneration");
    pdb::set_condition(&mut conds, pdb::DISRUPTION_ALLOWED, "False", pdb::SYNC_FAILED, err, observed, now);
    status["conditions"] = Value::Array(conds);
    (old.as_ref() != Some(&status)).then_some(status)
}

/// `nonTerminatingPodHasStaleDisruptionCondition`: for a pod not being deleted, not terminal,
/// with a `DisruptionTarget=True` condition not set by the kubelet, the seconds left before
/// the condition is stale (0 = stale now).
pub fn stale_disruption_wait(pod: &Value, now: i64) -> Option<i64> {
    disruption_target_since(pod).map(|since| (since + STALE_POD_DISRUPTION_TIMEOUT_SECS - now).max(0))
}

/// When (epoch seconds) a pod that [`stale_disruption_wait`] watches got its
/// `DisruptionTarget=True` condition; `None` for every other pod.
fn disruption_target_since(pod: &Value) -> Option<i64> {
    if being_deleted(pod) || matches!(str_at(pod, "/status/phase"), "Succeeded" | "Failed") {
        return None;
    }
    let conds = pod.pointer("/status/conditions").and_then(Value::as_array)?;
    let c = conds.iter().find(|c| str_at(c, "/type") == "DisruptionTarget")?;
    if str_at(c, "/status") != "True" || str_at(c, "/reason") == "TerminationByKubelet" {
        return None;
    }
    Some(epoch(c.get("lastTransitionTime")))
}

/// `getPodsForPdb`: the pods of the budget's namespace its selector matches (a null selector
/// matches none, an empty one all).
fn pods_for(state: &State, budget: &Obj) -> Result<Vec<Arc<Obj>>, SyncError> {
    let Some(sel) = budget.value.pointer("/spec/selector").filter(|s| !s.is_null()) else { return Ok(Vec::new()) };
    let sel = LabelSelector::from_label_selector(sel).ok_or_else(|| SyncError::Selector(sel.to_string()))?;
    let (pods, _) = state.store.snapshot(resources::PODS, Some(budget.namespace()));
    Ok(pods.into_iter().filter(|p| sel.matches(&p.value)).collect())
}

/// The object of `res` named `name` whose uid is `want`.
fn get_owned(state: &State, res: ResourceId, ns: &str, name: &str, want: &str) -> Option<Arc<Obj>> {
    state.store.get(res, ns, name).filter(|o| uid(&o.value) == want)
}

/// A workload's `spec.replicas` (defaulted to 1).
fn replicas(obj: &Value) -> i64 {
    obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)
}

/// The group of an `apiVersion` ("" for the core group).
fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// `getPodDeployment` then `getPodReplicaSet`: the Deployment controlling the ReplicaSet
/// (uid, replicas), else the ReplicaSet's own when no Deployment controls it.
fn replica_set_scale(state: &State, ns: &str, name: &str, want: &str) -> Option<(String, i64)> {
    let rs = get_owned(state, resources::REPLICASETS, ns, name, want)?;
    match controller_ref(&rs.value) {
        Some(d) if str_at(d, "/kind") == "Deployment" => {
            let ok_group = matches!(group_of(str_at(d, "/apiVersion")), "apps" | "extensions");
            let dep = get_owned(state, resources::DEPLOYMENTS, ns, str_at(d, "/name"), str_at(d, "/uid")).filter(|_| ok_group)?;
            Some((uid(&dep.value).to_string(), replicas(&dep.value)))
        }
        _ => Some((want.to_string(), replicas(&rs.value))),
    }
}

/// `getScaleController`: a served kind with a scale subresource gives its object's replicas;
/// a kind without one, or one not served, is an error.
fn scale_of(state: &State, ns: &str, oref: &Value) -> Result<Option<(String, i64)>, SyncError> {
    let (kind, api_version) = (str_at(oref, "/kind"), str_at(oref, "/apiVersion"));
    let version = api_version.rsplit_once('/').map_or(api_version, |(_, v)| v);
    let res = resources::all()
        .find(|r| r.desc().kind == kind && r.desc().group == group_of(api_version) && r.desc().version == version)
        .ok_or_else(|| SyncError::NoKind { kind: kind.into(), version: api_version.into() })?;
    let d = res.desc();
    if !d.subresources.contains(&"scale") {
        return Err(SyncError::NoScale(if d.group.is_empty() { d.plural.to_string() } else { format!("{}.{}", d.plural, d.group) }));
    }
    let want = str_at(oref, "/uid");
    Ok(get_owned(state, res, ns, str_at(oref, "/name"), want).map(|o| (want.to_string(), replicas(&o.value))))
}

/// `getExpectedScale`: the summed scale of the pods' controllers; pods without a controller
/// are left out (upstream's "unmanaged pods"), a controller that cannot be found is an error.
fn expected_scale(state: &State, ns: &str, pods: &[Arc<Obj>]) -> Result<i64, SyncError> {
    let mut scales: BTreeMap<String, i64> = BTreeMap::new();
    for pod in pods {
        let Some(oref) = controller_ref(&pod.value) else { continue };
        if scales.contains_key(str_at(oref, "/uid")) {
            continue;
        }
        let kind = str_at(oref, "/kind");
        let rs = (kind == "ReplicaSet" && matches!(group_of(str_at(oref, "/apiVersion")), "apps" | "extensions"))
            .then(|| replica_set_scale(state, ns, str_at(oref, "/name"), str_at(oref, "/uid")))
            .flatten();
        let found = match rs {
            Some(f) => Some(f),
            None => scale_of(state, ns, oref)?,
        };
        let (owner, n) = found.ok_or_else(|| SyncError::NoController(pod.name().to_string()))?;
        scales.insert(owner, n);
    }
    Ok(scales.values().sum())
}

/// `trySync`: the budget's new status (None = unchanged) and when to look again.
fn try_sync(state: &State, budget: &Obj, now: i64, now_str: &str) -> Result<(Option<Value>, Option<i64>), SyncError> {
    let pods = pods_for(state, budget)?;
    let spec = budget.value.get("spec").cloned().unwrap_or(Value::Null);
    let (expected, desired) = expected_and_desired(&spec, pods.len() as i64, || expected_scale(state, budget.namespace(), &pods))?;
    let values: Vec<&Value> = pods.iter().map(|p| &p.value).collect();
    let (disrupted, recheck) = build_disrupted_map(&values, budget.value.pointer("/status/disruptedPods").and_then(Value::as_object), now);
    let current = count_healthy(&values, &disrupted, now);
    Ok((next_status(&budget.value, Counts { current, desired, expected }, disrupted, now_str), recheck))
}

/// Store `status` on the budget, unless it changed since `budget` was read (a conflict: the
/// change that caused it wakes the controller again).
fn write_status(state: &State, budget: &Obj, status: Value) {
    let (ns, name) = (budget.namespace(), budget.name());
    let out = state.store.mutate(resources::PODDISRUPTIONBUDGETS, ns, name, |cur| match cur {
        Some(c) if c.rv == budget.rv => {
            let mut v = c.value.clone();
            v["status"] = status;
            Ok(Change::Put(v))
        }
        _ => Err(ApiError::conflict("policy", "poddisruptionbudgets", name, "the object has been modified; please apply your changes to the latest version and try again")),
    });
    if let Err(err) = out {
        tracing::debug!(%err, ns, name, "PodDisruptionBudget status not written");
    }
}

/// `sync` of one budget (with `failSafe` on error); returns when to look again.
fn sync(state: &State, budget: &Obj, now: i64, now_str: &str) -> Option<i64> {
    let (status, recheck) = match try_sync(state, budget, now, now_str) {
        Ok(r) => r,
        Err(err) => {
            tracing::debug!(%err, ns = budget.namespace(), name = budget.name(), "failed to sync PodDisruptionBudget");
            (fail_safe_status(&budget.value, &err.to_string(), now_str), None)
        }
    };
    if let Some(s) = status {
        write_status(state, budget, s);
    }
    recheck
}

/// `syncStalePodDisruption` for every pod with a `DisruptionTarget` condition (followed
/// incrementally in `targets`): reset stale ones to False; returns when the next one becomes
/// stale.
fn clear_stale_disruption_targets(state: &State, targets: &mut Follow<i64>, now: i64, now_str: &str) -> Option<i64> {
    let mut wake: Option<i64> = None;
    let mut stale = Vec::new();
    for ((ns, name), since) in targets.refresh(&state.store) {
        match (since + STALE_POD_DISRUPTION_TIMEOUT_SECS - now).max(0) {
            0 => stale.push((ns.clone(), name.clone())),
            w => wake = Some(wake.map_or(now + w, |x| x.min(now + w))),
        }
    }
    for (ns, name) in stale {
        if let Some(pod) = state.store.get(resources::PODS, &ns, &name) {
            reset_disruption_target(state, &pod, now, now_str);
        }
    }
    wake
}

/// Set `DisruptionTarget` to False (no reason or message) on a pod still stale.
fn reset_disruption_target(state: &State, pod: &Obj, now: i64, now_str: &str) {
    let _ = state.store.mutate(resources::PODS, pod.namespace(), pod.name(), |cur| {
        let Some(cur) = cur.filter(|c| stale_disruption_wait(&c.value, now) == Some(0)) else {
            return Err(ApiError::conflict("", "pods", pod.name(), "the DisruptionTarget condition is no longer stale"));
        };
        let mut v = cur.value.clone();
        let mut conds = v.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
        for c in conds.iter_mut().filter(|c| str_at(c, "/type") == "DisruptionTarget") {
            *c = json!({"type": "DisruptionTarget", "status": "False", "lastProbeTime": null, "lastTransitionTime": now_str});
        }
        crate::api::set_in(&mut v, &["status", "conditions"], Value::Array(conds));
        Ok(Change::Put(v))
    });
}

/// The controller's memory across passes: the pods with a `DisruptionTarget` condition.
pub struct Disruption {
    targets: Follow<i64>,
}

impl Default for Disruption {
    fn default() -> Disruption {
        Disruption { targets: Follow::new(resources::PODS, disruption_target_since) }
    }
}

impl Disruption {
    /// One pass over every budget and every pod with a `DisruptionTarget` condition; returns
    /// the earliest time (epoch seconds) a pass is due without any change.
    pub fn sync_all(&mut self, state: &State) -> Option<i64> {
        let now = jiff::Timestamp::now().as_second();
        let now_str = now_rfc3339();
        let (budgets, _) = state.store.snapshot(resources::PODDISRUPTIONBUDGETS, None);
        let rechecks: Vec<i64> = budgets.iter().filter_map(|b| sync(state, b, now, &now_str)).collect();
        rechecks.into_iter().chain(clear_stale_disruption_targets(state, &mut self.targets, now, &now_str)).min()
    }
}

/// Run until the server is cancelled.
pub async fn run(state: Arc<State>) {
    let watched = [resources::PODS, resources::PODDISRUPTIONBUDGETS, resources::REPLICASETS, resources::DEPLOYMENTS];
    let mut rxs = watched.map(|r| state.store.subscribe(r));
    let mut controller = Disruption::default();
    loop {
        let wake = controller.sync_all(&state);
        let secs = wake.map_or(3600, |w| (w - jiff::Timestamp::now().as_second()).max(1));
        if !super::next_pass(&state, &mut rxs, Duration::from_secs(secs.unsigned_abs())).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ready: bool, deleting: bool) -> Value {
        let mut p = json!({"metadata": {"name": name}, "status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}});
        if deleting {
            p["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        }
        p
    }

    fn no_scale() -> Result<i64, SyncError> {
        Err(SyncError::NoController("x".into()))
    }

    #[test]
    fn percentages_round_up() {
        assert_eq!(scaled_value(&json!("50%"), 3), Ok(2));
        assert_eq!(scaled_value(&json!("10%"), 10), Ok(1));
        assert_eq!(scaled_value(&json!("1%"), 0), Ok(0));
        assert_eq!(scaled_value(&json!(4), 100), Ok(4));
        assert_eq!(scaled_value(&json!("5"), 10).unwrap_err().to_string(), "invalid value for IntOrString: invalid type: string is not a percentage");
    }

    #[test]
    fn integer_min_available_counts_matching_pods() {
        assert_eq!(expected_and_desired(&json!({"minAvailable": 2}), 5, no_scale), Ok((5, 2)));
        assert_eq!(expected_and_desired(&json!({}), 5, no_scale), Ok((0, 0)));
    }

    #[test]
    fn percentages_and_max_unavailable_use_the_controllers_scale() {
        assert_eq!(expected_and_desired(&json!({"minAvailable": "50%"}), 2, || Ok(5)), Ok((5, 3)));
        assert_eq!(expected_and_desired(&json!({"maxUnavailable": 1}), 2, || Ok(4)), Ok((4, 3)));
        assert_eq!(expected_and_desired(&json!({"maxUnavailable": "30%"}), 2, || Ok(4)), Ok((4, 2)));
        assert_eq!(expected_and_desired(&json!({"maxUnavailable": 9}), 2, || Ok(4)), Ok((4, 0)));
        assert!(expected_and_desired(&json!({"maxUnavailable": 1}), 2, no_scale).is_err());
    }

    #[test]
    fn allowed_is_never_negative_and_zero_without_expected_pods() {
        assert_eq!(disruptions_allowed(Counts { current: 5, desired: 3, expected: 5 }), 2);
        assert_eq!(disruptions_allowed(Counts { current: 2, desired: 3, expected: 5 }), 0);
        assert_eq!(disruptions_allowed(Counts { current: 2, desired: 0, expected: 0 }), 0);
    }

    #[test]
    fn disrupted_pods_expire_and_do_not_count_as_healthy() {
        let now = 1_000_000;
        let at = |t: i64| json!(jiff::Timestamp::from_second(t).map(|t| t.to_string()).unwrap_or_default());
        let (a, b, c, d) = (pod("a", true, false), pod("b", true, false), pod("c", true, true), pod("d", true, false));
        let pods = [&a, &b, &c, &d];
        let old: Map<String, Value> = [("a", at(now - 10)), ("b", at(now - 500)), ("c", at(now)), ("gone", at(now))]
            .into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let (map, recheck) = build_disrupted_map(&pods, Some(&old), now);
        assert_eq!(map.keys().collect::<Vec<_>>(), vec!["a"]);
        assert_eq!(recheck, Some(now - 10 + DELETION_TIMEOUT_SECS));
        assert_eq!(count_healthy(&pods, &map, now), 2);
        let unready = pod("e", false, false);
        assert_eq!(count_healthy(&[&unready], &Map::new(), now), 0);
    }

    #[test]
    fn status_is_written_only_when_it_changes() {
        let budget = json!({"metadata": {"name": "p", "generation": 1}, "spec": {"minAvailable": 1}});
        let c = Counts { current: 3, desired: 1, expected: 3 };
        let status = next_status(&budget, c, Map::new(), "t").expect("first status");
        assert_eq!(status["disruptionsAllowed"], 2);
        assert_eq!(status["observedGeneration"], 1);
        assert_eq!(status["conditions"][0]["reason"], "SufficientPods");
        let mut stored = budget.clone();
        stored["status"] = status;
        assert_eq!(next_status(&stored, c, Map::new(), "t2"), None);
        stored["metadata"]["generation"] = json!(2);
        assert!(next_status(&stored, c, Map::new(), "t2").is_some());
    }

    #[test]
    fn fail_safe_blocks_disruptions_once() {
        let budget = json!({"metadata": {"generation": 2}, "status": {"disruptionsAllowed": 3, "observedGeneration": 1}});
        let s = fail_safe_status(&budget, "found no controllers for pod \"x\"", "t").expect("changed");
        assert_eq!(s["disruptionsAllowed"], 0);
        assert_eq!(s["conditions"][0], json!({"type": "DisruptionAllowed", "status": "False", "reason": "SyncFailed",
            "message": "found no controllers for pod \"x\"", "lastTransitionTime": "t", "observedGeneration": 1}));
        let again = json!({"metadata": {"generation": 2}, "status": s});
        assert_eq!(fail_safe_status(&again, "found no controllers for pod \"x\"", "t2"), None);
    }

    #[test]
    fn stale_disruption_targets_wait_two_minutes() {
        let mut p = pod("a", true, false);
        p["status"]["conditions"] = json!([{"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
            "lastTransitionTime": "1970-01-01T00:00:10Z"}]);
        assert_eq!(stale_disruption_wait(&p, 30), Some(100));
        assert_eq!(stale_disruption_wait(&p, 500), Some(0));
        p["metadata"]["deletionTimestamp"] = json!("t");
        assert_eq!(stale_disruption_wait(&p, 500), None);
    }
}
