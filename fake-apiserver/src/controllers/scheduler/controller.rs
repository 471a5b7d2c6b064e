//! The scheduler task: watches pods and nodes, tries the pending pods that are due in priority
//! order against one snapshot per pass, binds through the `pods/binding` code path, and records
//! the outcome (events, the `PodScheduled` condition).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::algorithm;
use super::binding::set_scheduled_condition;
use super::changes::{ClusterWatch, pod_spec_fingerprint};
use super::queue::{Queue, Timing};
use super::recorder::{EventSpec, Recorder};
use super::snapshot::{Snapshot, is_terminal, priority};
use crate::error::ApiError;
use crate::resources::{NODES, PODS};
use crate::server::State;
use crate::store::{Change, Obj};

/// The scheduler name this scheduler serves (an empty `spec.schedulerName` means it too).
pub const SCHEDULER_NAME: &str = "default-scheduler";
/// `v1.PodReasonUnschedulable`.
pub const REASON_UNSCHEDULABLE: &str = "Unschedulable";

/// What can go wrong in one attempt.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The binding was refused.
    #[error("binding {namespace}/{pod} to {node}: {source}")]
    Bind { namespace: String, pod: String, node: String, source: Box<ApiError> },
}

fn str_at<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

/// Whether this scheduler should place the pod: ours by scheduler name, not bound, not being
/// deleted, not finished, and not held back by scheduling gates.
pub fn responsible(pod: &Value) -> bool {
    matches!(str_at(pod, "/spec/schedulerName"), "" | SCHEDULER_NAME)
        && str_at(pod, "/spec/nodeName").is_empty()
        && pod.pointer("/metadata/deletionTimestamp").is_none_or(Value::is_null)
        && !is_terminal(pod)
        && pod.pointer("/spec/schedulingGates").and_then(Value::as_array).is_none_or(Vec::is_empty)
}

/// The order pods are tried in (`PrioritySort`): higher priority first, then older.
fn queue_order(a: &Value, b: &Value) -> std::cmp::Ordering {
    priority(b)
        .cmp(&priority(a))
        .then_with(|| str_at(a, "/metadata/creationTimestamp").cmp(str_at(b, "/metadata/creationTimestamp")))
        .then_with(|| str_at(a, "/metadata/namespace").cmp(str_at(b, "/metadata/namespace")))
        .then_with(|| str_at(a, "/metadata/name").cmp(str_at(b, "/metadata/name")))
}

/// The scheduler's state across passes.
#[derive(Debug)]
pub struct Scheduler {
    queue: Queue,
    watch: ClusterWatch,
    recorder: Recorder,
}

impl Scheduler {
    pub fn new(timing: Timing) -> Scheduler {
        Scheduler { queue: Queue::new(timing), watch: ClusterWatch::default(), recorder: Recorder::default() }
    }

    /// One pass over the pending pods; returns when the next pod becomes due, if any.
    pub fn pass(&mut self, state: &State) -> Option<Instant> {
        let (pods, _) = state.store.snapshot(PODS, None);
        let mut pending: Vec<&Arc<Obj>> = pods.iter().filter(|p| responsible(&p.value)).collect();
        if pending.is_empty() {
            // Nothing to schedule: no cluster view is built. What changed meanwhile cannot help
            // a pod that is not there; the next pending pod is tried at once and compares the
            // cluster from then on.
            self.queue.retain(|_| false);
            self.watch = ClusterWatch::default();
            return None;
        }
        let (nodes, _) = state.store.snapshot(NODES, None);
        if self.watch.observe(nodes.iter().map(|o| &o.value), pods.iter().map(|o| &o.value)) {
            self.queue.move_all();
        }
        pending.sort_by(|a, b| queue_order(&a.value, &b.value));
        let specs: HashMap<String, u64> = pending.iter().map(|p| (str_at(&p.value, "/metadata/uid").to_string(), pod_spec_fingerprint(&p.value))).collect();
        self.queue.retain(|uid| specs.contains_key(uid));
        let mut snap = Snapshot::build(nodes.iter().map(|o| &o.value), pods.iter().map(|o| &o.value));
        let now = Instant::now();
        for pod in pending {
            let uid = str_at(&pod.value, "/metadata/uid");
            let spec = specs.get(uid).copied().unwrap_or_default();
            if self.queue.is_due(uid, spec, now) {
                self.attempt(state, &mut snap, &pod.value, spec, now);
            }
        }
        self.queue.next_due(|uid| specs.get(uid).copied())
    }

    /// Try one pod and record the outcome.
    fn attempt(&mut self, state: &State, snap: &mut Snapshot, pod: &Value, spec: u64, now: Instant) {
        let uid = str_at(pod, "/metadata/uid").to_string();
        let (ns, name) = (str_at(pod, "/metadata/namespace"), str_at(pod, "/metadata/name"));
        match algorithm::schedule(pod, snap) {
            Ok(node) => match bind(state, pod, &node) {
                Ok(()) => {
                    snap.assume(pod, &node);
                    self.queue.forget(&uid);
                    let note = format!("Successfully assigned {ns}/{name} to {node}");
                    self.recorder.record(state, pod, &EventSpec { ty: "Normal", reason: "Scheduled", action: "Binding", note: &note });
                }
                Err(err) => {
                    tracing::debug!(%err, "binding failed; retrying after backoff");
                    self.queue.failed(&uid, spec, false, now);
                }
            },
            Err(failure) => {
                self.queue.failed(&uid, spec, true, now);
                let msg = failure.to_string();
                mark_unschedulable(state, pod, &msg);
                self.recorder.record(state, pod, &EventSpec { ty: "Warning", reason: "FailedScheduling", action: "Scheduling", note: &msg });
            }
        }
    }
}

/// Bind as upstream's DefaultBinder does: a Binding with the pod's uid as precondition.
fn bind(state: &State, pod: &Value, node: &str) -> Result<(), SchedulerError> {
    let (ns, name) = (str_at(pod, "/metadata/namespace"), str_at(pod, "/metadata/name"));
    let binding = json!({"apiVersion": "v1", "kind": "Binding",
        "metadata": {"name": name, "namespace": ns, "uid": str_at(pod, "/metadata/uid")},
        "target": {"kind": "Node", "name": node}});
    state
        .api
        .bind(ns, name, binding)
        .map(|_| ())
        .map_err(|source| SchedulerError::Bind { namespace: ns.into(), pod: name.into(), node: node.into(), source: Box::new(source) })
}

/// Set PodScheduled=False/Unschedulable with `msg` and clear `status.nominatedNodeName` (only
/// written when something changed, and only while the pod is still the same pending pod).
fn mark_unschedulable(state: &State, pod: &Value, msg: &str) {
    let (ns, name, uid) = (str_at(pod, "/metadata/namespace"), str_at(pod, "/metadata/name"), str_at(pod, "/metadata/uid"));
    let r = state.store.mutate(PODS, ns, name, |cur| {
        let Some(cur) = cur.filter(|c| str_at(&c.value, "/metadata/uid") == uid && responsible(&c.value)) else { return Ok(Change::Keep) };
        let mut v = cur.value.clone();
        let mut changed = set_scheduled_condition(&mut v, "False", REASON_UNSCHEDULABLE, msg);
        if let Some(st) = v.get_mut("status").and_then(Value::as_object_mut) {
            changed |= st.remove("nominatedNodeName").is_some();
        }
        Ok(if changed { Change::Put(v) } else { Change::Keep })
    });
    if let Err(err) = r {
        tracing::debug!(%err, "pod condition not written");
    }
}

/// Run until the server is cancelled.
pub async fn run(state: Arc<State>, timing: Timing) {
    let mut pods_rx = state.store.subscribe(PODS);
    let mut nodes_rx = state.store.subscribe(NODES);
    let mut scheduler = Scheduler::new(timing);
    loop {
        pods_rx.mark_unchanged();
        nodes_rx.mark_unchanged();
        let next = scheduler.pass(&state);
        let wake = async {
            match next {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = pods_rx.changed() => {}
            _ = nodes_rx.changed() => {}
            _ = wake => {}
            _ = state.cancel.cancelled() => return,
        }
        // Coalesce a burst of changes into one pass.
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(10)) => {}
            _ = state.cancel.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_pods_are_ours() {
        let base = json!({"metadata": {"name": "p"}, "spec": {"schedulerName": "default-scheduler"}, "status": {"phase": "Pending"}});
        assert!(responsible(&base));
        let with = |ptr: &str, v: Value| {
            let mut p = base.clone();
            let (parent, key) = ptr.rsplit_once('/').unwrap();
            p.pointer_mut(parent).unwrap()[key] = v;
            p
        };
        assert!(responsible(&with("/spec/schedulerName", json!(""))));
        assert!(!responsible(&with("/spec/schedulerName", json!("other"))));
        assert!(!responsible(&with("/spec/nodeName", json!("n1"))));
        assert!(!responsible(&with("/metadata/deletionTimestamp", json!("2026-01-01T00:00:00Z"))));
        assert!(!responsible(&with("/status/phase", json!("Failed"))));
        assert!(!responsible(&with("/spec/schedulingGates", json!([{"name": "g"}]))));
        assert!(responsible(&with("/spec/schedulingGates", json!([]))));
    }

    #[test]
    fn priority_then_age_order() {
        let p = |name: &str, prio: i64, ts: &str| json!({"metadata": {"name": name, "namespace": "d", "creationTimestamp": ts}, "spec": {"priority": prio}});
        let mut pods = [p("c", 0, "2026-01-01T00:00:02Z"), p("a", 0, "2026-01-01T00:00:01Z"), p("b", 10, "2026-01-01T00:00:03Z")];
        pods.sort_by(queue_order);
        let names: Vec<&str> = pods.iter().map(|p| str_at(p, "/metadata/name")).collect();
        assert_eq!(names, ["b", "a", "c"]);
    }
}
