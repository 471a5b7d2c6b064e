//! Taint eviction controller (`taint-eviction-controller`): a pod bound to a node with NoExecute
//! taints it does not tolerate is deleted at once; one that tolerates them all is deleted after
//! the smallest `tolerationSeconds` of the tolerations used (never when none has one); the
//! taints going away first cancels the deletion. Deletion adds the `DisruptionTarget` condition
//! (reason `DeletionByTaintManager`) then deletes gracefully, as upstream.
//!
//! The decision is the pure [`verdict`]; the schedule is the state machine [`Schedule::step`];
//! the effects (events, status, delete) are in [`run`]'s pass.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::api::{DeleteOpts, now_rfc3339};
use crate::controllers::recorder::{self, Note};
use crate::controllers::scheduler::taints::{Taint, node_taints, pod_tolerations, tolerates};
use crate::resources;
use crate::server::State;
use crate::store::Obj;

/// The controller's name on its events.
pub const COMPONENT: &str = "taint-eviction-controller";

/// What a pod's tolerations make of its node's NoExecute taints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The node has no NoExecute taint.
    NoTaints,
    /// Some taint is not tolerated: delete now.
    Now,
    /// All tolerated: delete after this long.
    After(Duration),
    /// All tolerated forever.
    Never,
}

/// `GetMatchingTolerations` + `getMinTolerationTime`: for each NoExecute taint the first
/// toleration that tolerates it; the smallest `tolerationSeconds` among those (≤ 0 is now).
pub fn verdict(taints: &[Value], tolerations: &[Value]) -> Verdict {
    let taints: Vec<Taint<'_>> = taints.iter().map(Taint::from_json).filter(|t| t.effect == "NoExecute").collect();
    if taints.is_empty() {
        return Verdict::NoTaints;
    }
    let mut min: Option<i64> = None;
    for taint in &taints {
        let Some(used) = tolerations.iter().find(|t| tolerates(t, taint)) else { return Verdict::Now };
        if let Some(secs) = used.get("tolerationSeconds").and_then(Value::as_i64) {
            min = Some(min.map_or(secs, |m| m.min(secs)));
        }
    }
    match min {
        None => Verdict::Never,
        Some(s) if s <= 0 => Verdict::Now,
        Some(s) => Verdict::After(Duration::from_secs(s as u64)),
    }
}

/// A pod's scheduled deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheduled {
    pub created: Instant,
    pub fire: Instant,
    /// The deletion ran; the entry stays until cancelled so it does not run twice.
    pub done: bool,
}

/// What a pass does about one pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// Schedule (a "Marking for deletion" event); `cancelled` when it replaces a pending one.
    Mark { cancelled: bool },
    /// Drop the pending deletion ("Cancelling deletion").
    Cancel,
}

/// The per-pod state machine: the current entry and a new verdict give the next entry and the
/// action (`processPodOnNode`).
pub fn step(cur: Option<Scheduled>, v: Verdict, now: Instant) -> (Option<Scheduled>, Action) {
    let pending = cur.is_some_and(|s| !s.done);
    let cancel = |cur: Option<Scheduled>| (None, if cur.is_some_and(|s| !s.done) { Action::Cancel } else { Action::Nothing });
    match v {
        Verdict::NoTaints | Verdict::Never => cancel(cur),
        Verdict::Now => match cur {
            Some(s) if s.done || s.fire <= now => (cur, Action::Nothing),
            _ => (Some(Scheduled { created: now, fire: now, done: false }), Action::Mark { cancelled: pending }),
        },
        Verdict::After(d) => match cur {
            // An existing schedule counts from when it was made (upstream keeps it).
            Some(_) => (cur, Action::Nothing),
            None => (Some(Scheduled { created: now, fire: now + d, done: false }), Action::Mark { cancelled: false }),
        },
    }
}

/// The controller's memory: scheduled deletions by `namespace/name`.
#[derive(Debug, Default)]
pub struct Schedule {
    pods: HashMap<String, Scheduled>,
}

/// Whether `taints` hold one with the NoExecute effect (the only ones this controller acts on).
fn has_no_execute(taints: &[Value]) -> bool {
    taints.iter().any(|t| Taint::from_json(t).effect == "NoExecute")
}

impl Schedule {
    /// One pass: apply [`step`] to every bound pod, forget pods that are gone, run the due
    /// deletions. Returns the next time something is due.
    pub fn pass(&mut self, state: &State, now: Instant) -> Option<Instant> {
        let (nodes, _) = state.store.snapshot(resources::NODES, None);
        let tainted: HashMap<&str, &[Value]> =
            nodes.iter().map(|n| (n.name(), node_taints(&n.value))).filter(|(_, taints)| has_no_execute(taints)).collect();
        if tainted.is_empty() && self.pods.is_empty() {
            // No node has a NoExecute taint and nothing is scheduled: no pod can change state,
            // so a pass over every pod (each pod write wakes this task) would find nothing.
            return None;
        }
        let (pods, _) = state.store.snapshot(resources::PODS, None);
        let mut seen = std::collections::HashSet::new();
        for pod in &pods {
            let Some(node) = pod.value.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty()) else { continue };
            let key = format!("{}/{}", pod.namespace(), pod.name());
            let v = verdict(tainted.get(node).copied().unwrap_or(&[]), pod_tolerations(&pod.value));
            let (next, action) = step(self.pods.get(&key).copied(), v, now);
            match next {
                Some(s) => self.pods.insert(key.clone(), s),
                None => self.pods.remove(&key),
            };
            announce(state, pod, &key, action);
            seen.insert(key);
        }
        self.pods.retain(|k, _| seen.contains(k));
        for pod in &pods {
            let key = format!("{}/{}", pod.namespace(), pod.name());
            if let Some(s) = self.pods.get_mut(&key)
                && !s.done
                && s.fire <= now
            {
                evict(state, pod);
                s.done = true;
            }
        }
        self.pods.values().filter(|s| !s.done).map(|s| s.fire).min()
    }
}

fn announce(state: &State, pod: &Obj, key: &str, action: Action) {
    let (cancelled, marked) = match action {
        Action::Nothing => return,
        Action::Cancel => (true, false),
        Action::Mark { cancelled } => (cancelled, true),
    };
    if cancelled {
        let message = format!("Cancelling deletion of Pod {key}");
        let note = Note { component: COMPONENT, ty: "Normal", reason: "TaintManagerEviction", message: &message };
        recorder::record(state, &pod.value, recorder::POD, &note);
    }
    if marked {
        let message = format!("Marking for deletion Pod {key}");
        let note = Note { component: COMPONENT, ty: "Normal", reason: "TaintManagerEviction", message: &message };
        recorder::record(state, &pod.value, recorder::POD, &note);
    }
}

/// `addConditionAndDeletePod`: DisruptionTarget=True (DeletionByTaintManager), then a delete
/// with default options (the pod's own grace period).
fn evict(state: &State, pod: &Obj) {
    let cond = json!({"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
        "message": "Taint manager: deleting due to NoExecute taint", "lastTransitionTime": now_rfc3339()});
    super::set_pod_condition(state, pod.namespace(), pod.name(), cond);
    if let Err(err) = state.api.delete(resources::PODS, pod.namespace(), pod.name(), &DeleteOpts::default()) {
        tracing::warn!(pod = %pod.name(), %err, "taint eviction: delete failed");
    }
}

/// Run until the server is cancelled: a pass on every change of pods or nodes and when the
/// next deletion is due.
pub async fn run(state: Arc<State>) {
    let mut sched = Schedule::default();
    let mut pods_rx = state.store.subscribe(resources::PODS);
    let mut nodes_rx = state.store.subscribe(resources::NODES);
    loop {
        let next = sched.pass(&state, Instant::now());
        let wait = next.map(|t| t.saturating_duration_since(Instant::now())).unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = pods_rx.changed() => {}
            _ = nodes_rx.changed() => {}
            _ = state.cancel.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(key: &str, effect: &str) -> Value {
        json!({"key": key, "effect": effect})
    }

    fn tol(key: &str, secs: Option<i64>) -> Value {
        let mut v = json!({"key": key, "operator": "Exists", "effect": "NoExecute"});
        if let Some(s) = secs {
            v["tolerationSeconds"] = json!(s);
        }
        v
    }

    const U: &str = "node.kubernetes.io/unreachable";

    #[test]
    fn verdicts_as_upstream() {
        assert_eq!(verdict(&[t(U, "NoSchedule")], &[]), Verdict::NoTaints);
        assert_eq!(verdict(&[t(U, "NoExecute")], &[]), Verdict::Now);
        assert_eq!(verdict(&[t(U, "NoExecute")], &[tol(U, Some(300))]), Verdict::After(Duration::from_secs(300)));
        assert_eq!(verdict(&[t(U, "NoExecute")], &[tol(U, None)]), Verdict::Never);
        assert_eq!(verdict(&[t(U, "NoExecute")], &[tol(U, Some(0))]), Verdict::Now);
        assert_eq!(verdict(&[t(U, "NoExecute")], &[tol(U, Some(-5))]), Verdict::Now);
        // Two taints: the smallest time of the tolerations used; one untolerated → now.
        let both = [t(U, "NoExecute"), t("x", "NoExecute")];
        assert_eq!(verdict(&both, &[tol(U, Some(30)), tol("x", Some(10))]), Verdict::After(Duration::from_secs(10)));
        assert_eq!(verdict(&both, &[tol(U, Some(30))]), Verdict::Now);
        // Only the first toleration matching a taint is used.
        assert_eq!(verdict(&[t(U, "NoExecute")], &[tol(U, None), tol(U, Some(5))]), Verdict::Never);
    }

    #[test]
    fn schedule_steps() {
        let t0 = Instant::now();
        let d = Duration::from_secs(10);
        let (s, a) = step(None, Verdict::After(d), t0);
        assert_eq!((s.map(|s| s.fire), a), (Some(t0 + d), Action::Mark { cancelled: false }));
        // A later pass keeps the first schedule.
        let (s2, a) = step(s, Verdict::After(Duration::from_secs(1)), t0 + Duration::from_secs(5));
        assert_eq!((s2, a), (s, Action::Nothing));
        // The taint goes: cancelled with an event.
        assert_eq!(step(s, Verdict::NoTaints, t0), (None, Action::Cancel));
        // Tolerations no longer cover the taint: rescheduled now, the old one cancelled.
        let t1 = t0 + Duration::from_secs(1);
        let (s3, a) = step(s, Verdict::Now, t1);
        assert_eq!((s3.map(|s| s.fire), a), (Some(t1), Action::Mark { cancelled: true }));
        // Done stays done; removal after done cancels silently.
        let done = Some(Scheduled { created: t0, fire: t0, done: true });
        assert_eq!(step(done, Verdict::Now, t1), (done, Action::Nothing));
        assert_eq!(step(done, Verdict::NoTaints, t1), (None, Action::Nothing));
        assert_eq!(step(None, Verdict::Never, t1), (None, Action::Nothing));
    }
}
