//! DaemonSet controller (upstream `pkg/controller/daemon`, kube-controller-manager's
//! `daemonset-controller`): one pod per node that should run it, as [`pods::node_should_run`]
//! decides (template `nodeName`, `nodeSelector`, required node affinity, NoSchedule /
//! NoExecute taints against the template's tolerations plus the daemon tolerations; a
//! cordoned node still gets its pod). Pods are created unbound with generateName `<ds>-`,
//! the `controller-revision-hash` and `pod-template-generation` labels, a controller
//! ownerReference, upstream's added tolerations and the required node affinity
//! `metadata.name In [<node>]` the scheduler binds by.
//!
//! Each pass ([`Controller::sync`]): adopt / release pods (`ClaimPods`), then `manage`
//! ([`plan::plan_manage`]) — create missing pods, delete pods on nodes that should not run
//! them, extra pods, and unscheduled pods meant for a vanished node; failed pods are deleted
//! (and so replaced) behind a per-node backoff of 1 s doubling to 15 min, succeeded ones at
//! once. When `manage` had nothing to do, a RollingUpdate step ([`update::plan`],
//! `maxUnavailable` / `maxSurge`); OnDelete leaves old pods alone. Then the status:
//! `desiredNumberScheduled`, `currentNumberScheduled`, `numberMisscheduled`, `numberReady`,
//! `numberAvailable` (`minReadySeconds`), `numberUnavailable`, `updatedNumberScheduled` and
//! `observedGeneration`, which `kubectl rollout status daemonset/<name>` reads.
//!
//! Events as upstream words them: SuccessfulCreate "Created pod: <name>", SuccessfulDelete
//! "Deleted pod: <name>", Warning FailedCreate / FailedDelete "Error creating: …" /
//! "Error deleting: …", Warning FailedDaemonPod "Found failed daemon pod <ns>/<pod> on node
//! <node>, will try to kill it", SucceededDaemonPod "Found succeeded daemon pod … will try to
//! delete it".
//!
//! Differences: no ControllerRevisions (so no `kubectl rollout history/undo` for DaemonSets);
//! the hash is over the template's normalized JSON; `pod-template-generation` is
//! `metadata.generation` (see [`pods::template_generation`]). As upstream, a pod bound to a
//! deleted Node is left to the pod garbage collector.

pub mod plan;
pub mod pods;
pub mod update;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::rollout::RolloutError;
use super::{WorkloadError, claim, controlled_by, int_at, record, record_type, selector_of, uid};
use crate::api::DeleteOpts;
use crate::error::ApiError;
use crate::resources::{DAEMONSETS, NODES, PODS};
use crate::server::State;
use crate::store::{Change, Obj};
use plan::{ByNode, Ctx};
use pods::Eligibility;

pub const COMPONENT: &str = "daemonset-controller";
const KIND: &str = "DaemonSet";

/// Why a DaemonSet could not be reconciled.
#[derive(Debug, thiserror::Error)]
pub enum DaemonSetError {
    #[error(transparent)]
    Workload(#[from] WorkloadError),
    #[error("DaemonSet {ns}/{name}: invalid rolling update parameters: {source}")]
    Strategy { ns: String, name: String, source: RolloutError },
}

/// Upstream's `failedPodsBackoff` (`flowcontrol.Backoff`, 1 s initial, 15 min max): how long
/// to wait before deleting the next failed pod on a node.
#[derive(Debug, Default)]
pub struct Backoff {
    entries: HashMap<String, (Duration, Instant)>,
}

impl Backoff {
    pub const INITIAL: Duration = Duration::from_secs(1);
    pub const MAX: Duration = Duration::from_secs(15 * 60);

    /// `IsInBackOffSinceUpdate`: the time left when `key` is still backing off at `now`.
    pub fn remaining(&self, key: &str, now: Instant) -> Option<Duration> {
        let (delay, last) = self.entries.get(key)?;
        delay.checked_sub(now.saturating_duration_since(*last)).filter(|d| !d.is_zero())
    }

    /// `Next`: start at [`Self::INITIAL`] (also after an idle `2 × MAX`), else double up to
    /// [`Self::MAX`].
    pub fn next(&mut self, key: &str, now: Instant) {
        let delay = match self.entries.get(key) {
            Some((d, last)) if now.saturating_duration_since(*last) <= 2 * Self::MAX => (*d * 2).min(Self::MAX),
            _ => Self::INITIAL,
        };
        self.entries.insert(key.to_string(), (delay, now));
    }

    /// `GC`: forget entries idle for more than `2 × MAX`.
    pub fn gc(&mut self, now: Instant) {
        self.entries.retain(|_, (_, last)| now.saturating_duration_since(*last) <= 2 * Self::MAX);
    }
}

/// The controller; only the failed-pod backoff outlives a pass.
#[derive(Debug, Default)]
pub struct Controller {
    backoff: Backoff,
}

/// Earlier of two optional wake-ups (seconds).
fn sooner(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    a.into_iter().chain(b).min()
}

/// One DaemonSet's pass: the object, its namespace and name.
struct Pass<'a> {
    state: &'a State,
    ds: &'a Obj,
}

impl Pass<'_> {
    fn ns(&self) -> &str {
        self.ds.namespace()
    }

    fn api_err(&self, source: ApiError) -> DaemonSetError {
        WorkloadError::Api { kind: KIND, ns: self.ns().into(), name: self.ds.name().into(), source: Box::new(source) }.into()
    }

    /// Create the daemon pod for `node` (SuccessfulCreate / Warning FailedCreate).
    fn create(&self, node: &str, hash: &str, generation: i64) -> Result<(), DaemonSetError> {
        let body = pods::pod_for_node(&self.ds.value, node, hash, generation);
        match self.state.api.create(PODS, self.ns(), body) {
            Ok(p) => {
                record(self.state, &self.ds.value, KIND, COMPONENT, "SuccessfulCreate", &format!("Created pod: {}", p.name()));
                Ok(())
            }
            Err(err) => {
                record_type(self.state, &self.ds.value, KIND, COMPONENT, "Warning", "FailedCreate", &format!("Error creating: {}", err.message));
                Err(self.api_err(err))
            }
        }
    }

    /// Delete one pod (SuccessfulDelete / Warning FailedDelete; already gone is fine).
    fn delete(&self, pod: &str) -> Result<(), DaemonSetError> {
        match self.state.api.delete(PODS, self.ns(), pod, &DeleteOpts::default()) {
            Ok(_) => {
                record(self.state, &self.ds.value, KIND, COMPONENT, "SuccessfulDelete", &format!("Deleted pod: {pod}"));
                Ok(())
            }
            Err(err) if err.code == 404 => Ok(()),
            Err(err) => {
                record_type(self.state, &self.ds.value, KIND, COMPONENT, "Warning", "FailedDelete", &format!("Error deleting: {}", err.message));
                Err(self.api_err(err))
            }
        }
    }

    /// Write the status when it changed.
    fn write_status(&self, status: Value) {
        let _ = self.state.store.mutate(DAEMONSETS, self.ns(), self.ds.name(), |cur| {
            let Some(cur) = cur else { return Ok(Change::Keep) };
            if cur.value.get("status") == Some(&status) || uid(&cur.value) != uid(&self.ds.value) {
                return Ok(Change::Keep);
            }
            let mut v = cur.value.clone();
            v["status"] = status;
            Ok(Change::Put(v))
        });
    }
}

impl Controller {
    /// Reconcile every DaemonSet against the current Nodes; the soonest wake-up in seconds
    /// (a pod becoming available, a failed pod's backoff ending).
    pub fn sync_all(&mut self, state: &State) -> Option<i64> {
        self.backoff.gc(Instant::now());
        let (nodes, _) = state.store.snapshot(NODES, None);
        let (all, _) = state.store.snapshot(DAEMONSETS, None);
        let mut wake = None;
        for ds in all {
            match self.sync(state, &ds, &nodes) {
                Ok(w) => wake = sooner(wake, w),
                Err(err) => tracing::debug!(%err, "daemonset sync"),
            }
        }
        wake
    }

    /// Reconcile one DaemonSet; returns when to look again.
    pub fn sync(&mut self, state: &State, ds: &Arc<Obj>, nodes: &[Arc<Obj>]) -> Result<Option<i64>, DaemonSetError> {
        if ds.value.pointer("/metadata/deletionTimestamp").is_some() {
            return Ok(None);
        }
        let sel = selector_of(KIND, ds)?;
        let claimed = claim(state, PODS, ds, KIND, &sel);
        let pred = pods::predicate_pod(&ds.value);
        let elig: Vec<(String, Eligibility)> = nodes.iter().map(|n| (n.name().to_string(), pods::node_should_run(&pred, &n.value))).collect();
        let hash = pods::template_hash(&ds.value);
        let ctx = Ctx {
            hash: &hash,
            generation: pods::template_generation(&ds.value),
            min_ready: int_at(&ds.value, "/spec/minReadySeconds"),
            now: jiff::Timestamp::now().as_second(),
            surge: update::allows_surge(&ds.value),
        };
        let pass = Pass { state, ds };
        let grouped = plan::by_node(claimed.iter().map(|p| &p.value));
        let acted = self.act(&pass, &elig, grouped, &ctx);
        // Status from the pods as they are now.
        let (fresh, _) = state.store.snapshot(PODS, Some(ds.namespace()));
        let ours: Vec<&Arc<Obj>> = fresh.iter().filter(|p| controlled_by(&p.value, uid(&ds.value))).collect();
        let grouped = plan::by_node(ours.iter().map(|p| &p.value));
        pass.write_status(plan::status_json(&ds.value, &plan::count(&elig, &grouped, &ctx)));
        Ok(sooner(acted?, plan::availability_wake(&grouped, &ctx)))
    }

    /// `manage`, then (when it changed nothing) a rolling-update step.
    fn act(&mut self, pass: &Pass<'_>, elig: &[(String, Eligibility)], mut grouped: ByNode<'_>, ctx: &Ctx<'_>) -> Result<Option<i64>, DaemonSetError> {
        let manage = plan::plan_manage(elig, &grouped, ctx);
        let (changed, wake) = self.apply_manage(pass, &manage, ctx)?;
        if changed || update::strategy(&pass.ds.value) != "RollingUpdate" {
            return Ok(wake);
        }
        let desired = i64::try_from(elig.iter().filter(|(_, e)| e.should_run).count()).unwrap_or(i64::MAX);
        let bad = |source| DaemonSetError::Strategy { ns: pass.ns().into(), name: pass.ds.name().into(), source };
        let (max_surge, max_unavailable) = update::fenceposts(&pass.ds.value, desired).map_err(bad)?;
        for (node, _) in elig.iter().filter(|(_, e)| e.should_run) {
            grouped.entry(node.clone()).or_default();
        }
        let step = update::plan(elig, &grouped, ctx, max_surge, max_unavailable);
        for node in &step.create_on {
            pass.create(node, ctx.hash, ctx.generation)?;
        }
        for pod in &step.delete {
            pass.delete(pod)?;
        }
        Ok(wake)
    }

    /// Carry out a manage plan: creations, deletions, succeeded pods, and failed pods whose
    /// node is not backing off. Returns whether anything was written and when a backoff ends.
    fn apply_manage(&mut self, pass: &Pass<'_>, plan: &plan::ManagePlan, ctx: &Ctx<'_>) -> Result<(bool, Option<i64>), DaemonSetError> {
        let mut changed = !plan.create_on.is_empty() || !plan.delete.is_empty();
        for node in &plan.create_on {
            pass.create(node, ctx.hash, ctx.generation)?;
        }
        for pod in &plan.delete {
            pass.delete(pod)?;
        }
        for (pod, node) in &plan.succeeded {
            let msg = format!("Found succeeded daemon pod {}/{pod} on node {node}, will try to delete it", pass.ns());
            record(pass.state, &pass.ds.value, KIND, COMPONENT, "SucceededDaemonPod", &msg);
            pass.delete(pod)?;
            changed = true;
        }
        let mut wake = None;
        let observed = int_at(&pass.ds.value, "/status/observedGeneration");
        for (pod, node) in &plan.failed {
            let key = format!("{}/{observed}/{node}", uid(&pass.ds.value));
            let now = Instant::now();
            if let Some(left) = self.backoff.remaining(&key, now) {
                let secs = i64::try_from(left.as_millis().div_ceil(1000)).unwrap_or(i64::MAX);
                wake = sooner(wake, Some(secs));
                continue;
            }
            self.backoff.next(&key, now);
            let msg = format!("Found failed daemon pod {}/{pod} on node {node}, will try to kill it", pass.ns());
            record_type(pass.state, &pass.ds.value, KIND, COMPONENT, "Warning", "FailedDaemonPod", &msg);
            pass.delete(pod)?;
            changed = true;
        }
        Ok((changed, wake))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_resets() {
        let mut b = Backoff::default();
        let t0 = Instant::now();
        assert_eq!(b.remaining("k", t0), None, "the first failure is handled at once");
        b.next("k", t0);
        assert_eq!(b.remaining("k", t0), Some(Backoff::INITIAL));
        assert_eq!(b.remaining("k", t0 + Duration::from_millis(400)), Some(Duration::from_millis(600)));
        assert_eq!(b.remaining("k", t0 + Backoff::INITIAL), None);
        let t1 = t0 + Backoff::INITIAL;
        b.next("k", t1);
        assert_eq!(b.remaining("k", t1), Some(Duration::from_secs(2)));
        assert_eq!(b.remaining("other", t1), None, "per node");
        let mut t = t1;
        for _ in 0..20 {
            b.next("k", t);
            t += Duration::from_secs(1);
        }
        assert_eq!(b.remaining("k", t - Duration::from_secs(1)), Some(Backoff::MAX));
        let later = t + 3 * Backoff::MAX;
        b.next("k", later);
        assert_eq!(b.remaining("k", later), Some(Backoff::INITIAL), "reset after a long quiet time");
        b.gc(later + 3 * Backoff::MAX);
        assert!(b.entries.is_empty());
    }

    #[test]
    fn sooner_picks_the_earliest() {
        assert_eq!(sooner(None, None), None);
        assert_eq!(sooner(Some(3), None), Some(3));
        assert_eq!(sooner(Some(3), Some(1)), Some(1));
    }
}
