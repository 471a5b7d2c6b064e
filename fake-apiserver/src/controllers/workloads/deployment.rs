//! Deployment controller (upstream `pkg/controller/deployment/{sync,rolling,recreate,progress}.go`):
//! one ReplicaSet `<deploy>-<hash>` per pod template (label and selector `pod-template-hash`),
//! RollingUpdate within `maxSurge` / `maxUnavailable` or Recreate, old ReplicaSets scaled down,
//! the `deployment.kubernetes.io/revision` annotation, status counts and the Available /
//! Progressing conditions `kubectl rollout status` waits on. Events: ScalingReplicaSet
//! "Scaled up replica set <rs> from 0 to 3" / "Scaled down replica set <rs> from 3 to 2".
//!
//! Left out: `progressDeadlineSeconds` (ProgressDeadlineExceeded), proportional scaling of
//! several active ReplicaSets, and pruning beyond `revisionHistoryLimit`.

use std::sync::Arc;

use serde_json::{Value, json};

use super::rollout::{self, OldRs};
use super::{WorkloadError, claim, edit, int_at, record, selector_of};
use crate::api::{now_rfc3339, set_in};
use crate::resources::{DEPLOYMENTS, PODS, REPLICASETS};
use crate::server::State;
use crate::store::{Change, Obj};

pub const COMPONENT: &str = "deployment-controller";
pub const HASH_LABEL: &str = "pod-template-hash";
pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";

fn annotation<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.pointer("/metadata/annotations").and_then(|a| a.get(key)).and_then(Value::as_str)
}

pub fn revision(rs: &Value) -> i64 {
    annotation(rs, REVISION).and_then(|r| r.parse().ok()).unwrap_or(0)
}

/// Drop what Go's typed comparison cannot tell from absent: nulls, `false`, empty strings,
/// and the template's zero `generation` / `creationTimestamp` (protobuf clients send zero
/// values, JSON clients omit them).
pub fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, x)| !matches!(x, Value::Null | Value::Bool(false)) && x.as_str() != Some("") && !(k.as_str() == "generation" && x.as_i64() == Some(0)))
                .map(|(k, x)| (k.clone(), normalize(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

/// The template without the `pod-template-hash` label (`EqualIgnoreHash`), normalized.
pub fn template_ignoring_hash(t: &Value) -> Value {
    let mut t = normalize(t);
    if let Some(l) = t.pointer_mut("/metadata/labels").and_then(Value::as_object_mut) {
        l.remove(HASH_LABEL);
        if l.is_empty() && let Some(m) = t.pointer_mut("/metadata").and_then(Value::as_object_mut) {
            m.remove("labels");
        }
    }
    t
}

/// The new ReplicaSet for `d`'s template, from its ReplicaSets oldest first (`FindNewReplicaSet`).
pub fn find_new<'a>(d: &Value, rss: &'a [Arc<Obj>]) -> Option<&'a Arc<Obj>> {
    let want = template_ignoring_hash(d.pointer("/spec/template").unwrap_or(&Value::Null));
    rss.iter().find(|rs| template_ignoring_hash(rs.value.pointer("/spec/template").unwrap_or(&Value::Null)) == want)
}

/// A new ReplicaSet for `d` (`getNewReplicaSet`): name `<deploy>-<hash>`, template labels and
/// selector with `pod-template-hash`, owned by `d`, at `replicas` and `revision`.
pub fn new_rs(d: &Value, hash: &str, replicas: i64, revision: i64, max_surge: i64) -> Value {
    let name = d.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    let mut template = d.pointer("/spec/template").cloned().unwrap_or_default();
    set_in(&mut template, &["metadata", "labels", HASH_LABEL], json!(hash));
    let mut selector = d.pointer("/spec/selector").cloned().unwrap_or_default();
    set_in(&mut selector, &["matchLabels", HASH_LABEL], json!(hash));
    let want = int_at(d, "/spec/replicas");
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": format!("{name}-{hash}"), "labels": template.pointer("/metadata/labels").cloned().unwrap_or_default(),
            "annotations": {REVISION: revision.to_string(), DESIRED_REPLICAS: want.to_string(), MAX_REPLICAS: (want + max_surge).to_string()},
            "ownerReferences": [super::owner_ref(d, "Deployment")]},
        "spec": {"replicas": replicas, "minReadySeconds": int_at(d, "/spec/minReadySeconds"), "selector": selector, "template": template},
    })
}

/// The status of `d` from its ReplicaSets (`calculateStatus`).
pub fn compute_status(d: &Value, new: Option<&Value>, all: &[&Value], max_unavailable: i64) -> Value {
    let sum = |p: &str| all.iter().map(|rs| int_at(rs, p)).sum::<i64>();
    let available = sum("/status/availableReplicas");
    let want = int_at(d, "/spec/replicas");
    let mut status = d.get("status").cloned().filter(Value::is_object).unwrap_or_else(|| json!({}));
    status["observedGeneration"] = json!(int_at(d, "/metadata/generation"));
    status["replicas"] = json!(sum("/status/replicas"));
    status["updatedReplicas"] = json!(new.map_or(0, |n| int_at(n, "/status/replicas")));
    status["readyReplicas"] = json!(sum("/status/readyReplicas"));
    status["availableReplicas"] = json!(available);
    status["unavailableReplicas"] = json!((sum("/spec/replicas") - available).max(0));
    let (ok, reason, msg) = if available >= want - max_unavailable {
        ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
    } else {
        ("False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
    };
    set_condition(&mut status, "Available", ok, reason, msg);
    status
}

/// `DeploymentComplete`: every replica updated and available, nothing old left, generation observed.
pub fn complete(d: &Value, status: &Value) -> bool {
    let want = int_at(d, "/spec/replicas");
    int_at(status, "/updatedReplicas") == want
        && int_at(status, "/replicas") == want
        && int_at(status, "/availableReplicas") == want
        && int_at(status, "/observedGeneration") >= int_at(d, "/metadata/generation")
}

/// `SetDeploymentCondition`: unchanged when status and reason are the same; the transition
/// time kept when only the reason changes.
pub fn set_condition(status: &mut Value, ty: &str, st: &str, reason: &str, msg: &str) {
    let now = now_rfc3339();
    let mut conds: Vec<Value> = status.get("conditions").and_then(Value::as_array).cloned().unwrap_or_default();
    let cur = conds.iter().position(|c| c.get("type").and_then(Value::as_str) == Some(ty));
    let mut transition = now.clone();
    if let Some(i) = cur {
        let c = &conds[i];
        if c.get("status").and_then(Value::as_str) == Some(st) {
            if c.get("reason").and_then(Value::as_str) == Some(reason) {
                return;
            }
            transition = c.get("lastTransitionTime").and_then(Value::as_str).unwrap_or(&now).to_string();
        }
        conds.remove(i);
    }
    conds.push(json!({"type": ty, "status": st, "lastUpdateTime": now, "lastTransitionTime": transition, "reason": reason, "message": msg}));
    status["conditions"] = Value::Array(conds);
}

/// The Progressing condition after a sync (`syncRolloutStatus`, without the deadline).
pub fn set_progressing(d: &Value, status: &mut Value, new_name: Option<&str>, created: bool) {
    let Some(name) = new_name else { return };
    let prev = d.get("status").cloned().unwrap_or_default();
    if complete(d, status) {
        set_condition(status, "Progressing", "True", "NewReplicaSetAvailable", &format!("ReplicaSet {name:?} has successfully progressed."));
    } else if created {
        set_condition(status, "Progressing", "True", "NewReplicaSetCreated", &format!("Created new replica set {name:?}"));
    } else if ["updatedReplicas", "readyReplicas", "availableReplicas"].iter().any(|k| int_at(status, &format!("/{k}")) > int_at(&prev, &format!("/{k}")))
        || int_at(status, "/replicas") < int_at(&prev, "/replicas")
    {
        set_condition(status, "Progressing", "True", "ReplicaSetUpdated", &format!("ReplicaSet {name:?} is progressing."));
    } else if !status.get("conditions").and_then(Value::as_array).is_some_and(|c| c.iter().any(|c| c["type"] == "Progressing")) {
        set_condition(status, "Progressing", "True", "FoundNewReplicaSet", &format!("Found new replica set {name:?}"));
    }
}

/// Set one ReplicaSet's size (`scaleReplicaSet`), with the ScalingReplicaSet event.
fn scale(state: &State, d: &Value, rs: &Obj, to: i64, max_surge: i64) {
    let from = int_at(&rs.value, "/spec/replicas");
    let want = int_at(d, "/spec/replicas");
    let updated = edit(state, REPLICASETS, rs.namespace(), rs.name(), |v| {
        set_in(v, &["spec", "replicas"], json!(to));
        set_in(v, &["metadata", "annotations", DESIRED_REPLICAS], json!(want.to_string()));
        set_in(v, &["metadata", "annotations", MAX_REPLICAS], json!((want + max_surge).to_string()));
    });
    if updated.is_some() && from != to {
        let dir = if to > from { "up" } else { "down" };
        record(state, d, "Deployment", COMPONENT, "ScalingReplicaSet", &format!("Scaled {dir} replica set {} from {from} to {to}", rs.name()));
    }
}

/// What one sync pass works with.
struct Ctx<'a> {
    state: &'a State,
    d: &'a Arc<Obj>,
    rss: Vec<Arc<Obj>>,
    max_surge: i64,
    max_unavailable: i64,
}

impl Ctx<'_> {
    fn old(&self, new: Option<&Arc<Obj>>) -> Vec<Arc<Obj>> {
        let mut old: Vec<Arc<Obj>> = self.rss.iter().filter(|r| new.is_none_or(|n| n.name() != r.name())).cloned().collect();
        old.sort_by_key(|r| super::replicaset::created(&r.value));
        old
    }

    /// Create the new RS at `replicas` (bumping `collisionCount` when the name is taken).
    fn create_new(&self, hash: &str, replicas: i64) -> Option<Arc<Obj>> {
        let rev = self.rss.iter().map(|r| revision(&r.value)).max().unwrap_or(0) + 1;
        let body = new_rs(&self.d.value, hash, replicas, rev, self.max_surge);
        let ns = self.d.namespace();
        match self.state.api.create(REPLICASETS, ns, body) {
            Ok(rs) => {
                if replicas > 0 {
                    record(self.state, &self.d.value, "Deployment", COMPONENT, "ScalingReplicaSet", &format!("Scaled up replica set {} from 0 to {replicas}", rs.name()));
                }
                Some(rs)
            }
            Err(err) => {
                tracing::debug!(%err, "new replica set not created; bumping collisionCount");
                edit(self.state, DEPLOYMENTS, ns, self.d.name(), |v| {
                    let c = int_at(v, "/status/collisionCount") + 1;
                    set_in(v, &["status", "collisionCount"], json!(c));
                });
                None
            }
        }
    }

    /// The new RS gets the next revision when it is not the newest (`getNewReplicaSet`).
    fn sync_revision(&self, new: &Arc<Obj>) -> Arc<Obj> {
        let max_old = self.old(Some(new)).iter().map(|r| revision(&r.value)).max().unwrap_or(0);
        if revision(&new.value) > max_old {
            return new.clone();
        }
        edit(self.state, REPLICASETS, new.namespace(), new.name(), |v| set_in(v, &["metadata", "annotations", REVISION], json!((max_old + 1).to_string()))).unwrap_or_else(|| new.clone())
    }

    /// `rolloutRolling`: grow the new RS within the surge, then shrink the old ones.
    fn rolling(&self, new: &Arc<Obj>) {
        let want = int_at(&self.d.value, "/spec/replicas");
        let total: i64 = self.rss.iter().map(|r| int_at(&r.value, "/spec/replicas")).sum();
        let cur = int_at(&new.value, "/spec/replicas");
        let to = rollout::new_rs_replicas(want, self.max_surge, cur, total);
        if to != cur {
            scale(self.state, &self.d.value, new, to, self.max_surge);
            return;
        }
        let olds = self.old(Some(new));
        let view = |r: &Obj| OldRs { replicas: int_at(&r.value, "/spec/replicas"), available: int_at(&r.value, "/status/availableReplicas") };
        let old_view: Vec<OldRs> = olds.iter().map(|r| view(r)).collect();
        let sizes = rollout::scale_down_old(want, self.max_unavailable, view(new), &old_view);
        for (rs, to) in olds.iter().zip(sizes) {
            if to != int_at(&rs.value, "/spec/replicas") {
                scale(self.state, &self.d.value, rs, to, self.max_surge);
            }
        }
    }

    /// `rolloutRecreate`: old RSs to 0; once none of their pods runs, the new RS to full size.
    fn recreate(&self, new: Option<&Arc<Obj>>, hash: &str) -> (Option<Arc<Obj>>, bool) {
        let olds = self.old(new);
        for rs in olds.iter().filter(|r| int_at(&r.value, "/spec/replicas") > 0) {
            scale(self.state, &self.d.value, rs, 0, 0);
        }
        let old_uids: Vec<&str> = olds.iter().map(|r| super::uid(&r.value)).collect();
        let (pods, _) = self.state.store.snapshot(PODS, Some(self.d.namespace()));
        let running = pods.iter().any(|p| {
            let phase = p.value.pointer("/status/phase").and_then(Value::as_str).unwrap_or("");
            phase != "Succeeded" && phase != "Failed" && old_uids.iter().any(|u| super::controlled_by(&p.value, u))
        });
        if running {
            return (new.cloned(), false);
        }
        let want = int_at(&self.d.value, "/spec/replicas");
        match new {
            None => (self.create_new(hash, want), true),
            Some(n) => {
                if int_at(&n.value, "/spec/replicas") != want {
                    scale(self.state, &self.d.value, n, want, 0);
                }
                (Some(n.clone()), false)
            }
        }
    }

    /// `scale` on a scaling event with one active RS (or a saturated new RS): sizes set directly.
    fn scale_event(&self, new: Option<&Arc<Obj>>) -> bool {
        let want = int_at(&self.d.value, "/spec/replicas");
        let active: Vec<&Arc<Obj>> = self.rss.iter().filter(|r| int_at(&r.value, "/spec/replicas") > 0).collect();
        let event = active.iter().any(|r| annotation(&r.value, DESIRED_REPLICAS).and_then(|a| a.parse::<i64>().ok()) != Some(want));
        match (event, active.as_slice(), new) {
            (true, [only], Some(n)) if only.name() == n.name() => {
                scale(self.state, &self.d.value, only, want, self.max_surge);
                true
            }
            _ => false,
        }
    }
}

/// Reconcile one Deployment.
pub fn sync(state: &State, d: &Arc<Obj>) -> Result<(), WorkloadError> {
    if d.value.pointer("/metadata/deletionTimestamp").is_some() {
        return Ok(());
    }
    let sel = selector_of("Deployment", d)?;
    let want = int_at(&d.value, "/spec/replicas");
    let rolling_cfg = d.value.pointer("/spec/strategy/rollingUpdate");
    let recreate = d.value.pointer("/spec/strategy/type").and_then(Value::as_str) == Some("Recreate");
    let bad = |source| WorkloadError::Strategy { ns: d.namespace().into(), name: d.name().into(), source };
    let (max_surge, max_unavailable) = if recreate { (0, 0) } else { (rollout::fenceposts(rolling_cfg, want).map_err(bad)?.0, rollout::max_unavailable(rolling_cfg, want).map_err(bad)?) };
    let mut rss = claim(state, REPLICASETS, d, "Deployment", &sel);
    rss.sort_by_key(|r| super::replicaset::created(&r.value));
    let ctx = Ctx { state, d, rss, max_surge, max_unavailable };
    let hash = rollout::pod_template_hash(&template_ignoring_hash(d.value.pointer("/spec/template").unwrap_or(&Value::Null)), d.value.pointer("/status/collisionCount").and_then(Value::as_i64));
    let mut new = find_new(&d.value, &ctx.rss).map(|n| ctx.sync_revision(n));
    let mut created = false;
    let paused = d.value.pointer("/spec/paused").and_then(Value::as_bool) == Some(true);
    if !paused && !ctx.scale_event(new.as_ref()) {
        if recreate {
            (new, created) = ctx.recreate(new.as_ref(), &hash);
        } else {
            if new.is_none() {
                let total: i64 = ctx.rss.iter().map(|r| int_at(&r.value, "/spec/replicas")).sum();
                new = ctx.create_new(&hash, rollout::new_rs_replicas(want, max_surge, 0, total));
                created = new.is_some();
            }
            if let (Some(n), false) = (&new, created) {
                ctx.rolling(n);
            }
        }
    }
    write_status(state, d, &ctx, new.as_ref(), created);
    Ok(())
}

fn write_status(state: &State, d: &Arc<Obj>, ctx: &Ctx<'_>, new: Option<&Arc<Obj>>, created: bool) {
    let (ns, name) = (d.namespace().to_string(), d.name().to_string());
    // Re-read the ReplicaSets: this pass may have resized them.
    let fresh: Vec<Arc<Obj>> = ctx.rss.iter().chain(new.filter(|_| created)).filter_map(|r| state.store.get(REPLICASETS, &ns, r.name())).collect();
    let all: Vec<&Value> = fresh.iter().map(|r| &r.value).collect();
    let new_v = new.and_then(|n| fresh.iter().find(|r| r.name() == n.name())).map(|r| &r.value);
    let mut status = compute_status(&d.value, new_v, &all, ctx.max_unavailable);
    set_progressing(&d.value, &mut status, new.map(|n| n.name()), created);
    let rev = new_v.map(revision).filter(|r| *r > 0);
    let _ = state.store.mutate(DEPLOYMENTS, &ns, &name, |cur| {
        let Some(cur) = cur else { return Ok(Change::Keep) };
        let mut v = cur.value.clone();
        if let Some(c) = cur.value.pointer("/status/collisionCount") {
            status["collisionCount"] = c.clone();
        }
        v["status"] = status;
        if let Some(r) = rev {
            set_in(&mut v, &["metadata", "annotations", REVISION], json!(r.to_string()));
        }
        Ok(if v == cur.value { Change::Keep } else { Change::Put(v) })
    });
}

/// Reconcile every Deployment (no availability timer of its own: ReplicaSets carry it).
pub fn sync_all(state: &State) -> Option<i64> {
    let (all, _) = state.store.snapshot(DEPLOYMENTS, None);
    for d in all {
        if let Err(err) = sync(state, &d) {
            tracing::debug!(%err, "deployment sync");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy(replicas: i64, image: &str) -> Value {
        json!({"metadata": {"name": "web", "uid": "d1", "generation": 2}, "spec": {"replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": image}]}}}})
    }

    #[test]
    fn new_rs_carries_hash_revision_and_owner() {
        let d = deploy(3, "a");
        let rs = new_rs(&d, "abc", 1, 2, 1);
        assert_eq!(rs["metadata"]["name"], "web-abc");
        assert_eq!(rs["spec"]["selector"]["matchLabels"], json!({"app": "web", HASH_LABEL: "abc"}));
        assert_eq!(rs["spec"]["template"]["metadata"]["labels"][HASH_LABEL], "abc");
        assert_eq!(rs["metadata"]["annotations"][REVISION], "2");
        assert_eq!(rs["metadata"]["annotations"][MAX_REPLICAS], "4");
        assert_eq!(rs["metadata"]["ownerReferences"][0]["kind"], "Deployment");
        assert_eq!(rs["spec"]["replicas"], 1);
        let found = [Obj::new(rs, 1)];
        assert!(find_new(&d, &found).is_some());
        assert!(find_new(&deploy(3, "b"), &found).is_none());
        // A protobuf client's zero values match a JSON client's omissions.
        let mut zeroes = deploy(3, "a");
        zeroes["spec"]["template"]["metadata"]["generation"] = json!(0);
        zeroes["spec"]["template"]["metadata"]["creationTimestamp"] = Value::Null;
        zeroes["spec"]["template"]["spec"]["hostNetwork"] = json!(false);
        assert!(find_new(&zeroes, &found).is_some());
    }

    #[test]
    fn status_sums_replica_sets_and_sets_conditions() {
        let d = deploy(3, "a");
        let new = json!({"spec": {"replicas": 2}, "status": {"replicas": 2, "readyReplicas": 2, "availableReplicas": 1}});
        let old = json!({"spec": {"replicas": 2}, "status": {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2}});
        let s = compute_status(&d, Some(&new), &[&new, &old], 0);
        assert_eq!((s["replicas"].as_i64(), s["updatedReplicas"].as_i64(), s["availableReplicas"].as_i64(), s["unavailableReplicas"].as_i64()), (Some(4), Some(2), Some(3), Some(1)));
        assert_eq!(s["observedGeneration"], 2);
        assert_eq!(s["conditions"][0]["reason"], "MinimumReplicasAvailable");
        assert!(!complete(&d, &s));
        let mut s2 = s.clone();
        set_progressing(&d, &mut s2, Some("web-abc"), false);
        assert_eq!(s2["conditions"][1]["reason"], "ReplicaSetUpdated");
        assert_eq!(s2["conditions"][1]["message"], "ReplicaSet \"web-abc\" is progressing.");
        let done = json!({"spec": {"replicas": 3}, "status": {"replicas": 3, "readyReplicas": 3, "availableReplicas": 3}});
        let mut s3 = compute_status(&d, Some(&done), &[&done], 0);
        assert!(complete(&d, &s3));
        set_progressing(&d, &mut s3, Some("web-abc"), false);
        assert_eq!(s3["conditions"][1]["reason"], "NewReplicaSetAvailable");
        assert_eq!(s3["conditions"][1]["message"], "ReplicaSet \"web-abc\" has successfully progressed.");
        let short = compute_status(&d, Some(&new), &[&new], 0);
        assert_eq!(short["conditions"][0]["status"], "False");
        assert_eq!(short["conditions"][0]["reason"], "MinimumReplicasUnavailable");
    }

    #[test]
    fn same_condition_is_not_rewritten() {
        let mut s = json!({"conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "lastTransitionTime": "t0", "lastUpdateTime": "t0"}]});
        let before = s.clone();
        set_condition(&mut s, "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.");
        assert_eq!(s, before);
        set_condition(&mut s, "Available", "True", "Other", "m");
        assert_eq!(s["conditions"][0]["lastTransitionTime"], "t0");
    }
}
