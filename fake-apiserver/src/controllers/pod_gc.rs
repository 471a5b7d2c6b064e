//! Pod garbage collector (`pod-garbage-collector`), every `pod_gc_period` (20 s as upstream's
//! `gcCheckPeriod`):
//! - terminated pods beyond `terminated_pod_gc_threshold`, oldest first, are deleted;
//! - pods bound to a node that does not exist (still absent after the quarantine, 40 s) are
//!   marked Failed with `DisruptionTarget` (`DeletionByPodGC`, "PodGC: node no longer exists")
//!   and force-deleted;
//! - terminating pods never scheduled, and terminating pods on a not Ready node with the
//!   `node.kubernetes.io/out-of-service` taint, are marked Failed and force-deleted.
//!
//! What to collect is decided by the pure [`plan`]; [`run`] performs it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::api::{DeleteOpts, now_rfc3339, set_in};
use crate::resources;
use crate::server::State;
use crate::store::{Change, Obj};

/// The taint that lets terminating pods of a dead node go (non-graceful node shutdown).
pub const OUT_OF_SERVICE: &str = "node.kubernetes.io/out-of-service";

/// Why a pod is collected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Terminated, beyond the threshold: deleted as is.
    Terminated,
    /// Bound to a node that does not exist.
    Orphaned,
    /// Terminating and never scheduled.
    UnscheduledTerminating,
    /// Terminating on a not Ready node with the out-of-service taint.
    OutOfService,
}

fn phase(p: &Value) -> &str {
    p.pointer("/status/phase").and_then(Value::as_str).unwrap_or("")
}

fn terminated(p: &Value) -> bool {
    matches!(phase(p), "Succeeded" | "Failed")
}

fn node_of(p: &Value) -> &str {
    p.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("")
}

fn terminating(p: &Value) -> bool {
    p.pointer("/metadata/deletionTimestamp").is_some()
}

/// Whether a node is out of service: not Ready and tainted `out-of-service` NoExecute.
pub fn out_of_service(node: &Value) -> bool {
    let ready = crate::controllers::node_lifecycle::taints::condition(node, "Ready") == Some("True");
    let tainted = node.pointer("/spec/taints").and_then(Value::as_array).is_some_and(|ts| {
        ts.iter().any(|t| t.get("key").and_then(Value::as_str) == Some(OUT_OF_SERVICE) && t.get("effect").and_then(Value::as_str) == Some("NoExecute"))
    });
    !ready && tainted
}

/// What one pass collects. `nodes` maps existing node names to their objects; `absent_since`
/// says since when each missing node has been seen missing; `quarantine` is how long that
/// must be before its pods go.
pub fn plan(pods: &[Arc<Obj>], nodes: &HashMap<String, Value>, absent_since: &HashMap<String, Instant>, quarantine: Duration, threshold: usize, now: Instant) -> Vec<(Arc<Obj>, Reason)> {
    let mut out = Vec::new();
    let mut done: Vec<Arc<Obj>> = pods.iter().filter(|p| terminated(&p.value)).cloned().collect();
    if threshold > 0 && done.len() > threshold {
        done.sort_by_key(|p| crate::controllers::workloads::replicaset::created(&p.value));
        let n = done.len() - threshold;
        out.extend(done.into_iter().take(n).map(|p| (p, Reason::Terminated)));
    }
    for p in pods {
        let node = node_of(&p.value);
        let reason = if node.is_empty() {
            terminating(&p.value).then_some(Reason::UnscheduledTerminating)
        } else if let Some(n) = nodes.get(node) {
            (terminating(&p.value) && out_of_service(n)).then_some(Reason::OutOfService)
        } else {
            absent_since.get(node).is_some_and(|t| now.saturating_duration_since(*t) >= quarantine).then_some(Reason::Orphaned)
        };
        if let Some(r) = reason
            && !out.iter().any(|(q, _)| Arc::ptr_eq(q, p))
        {
            out.push((p.clone(), r));
        }
    }
    out
}

/// `markFailedAndDeletePodWithCondition`: a pod not yet terminal becomes Failed (with the
/// condition's reason and message when there is one), then it is deleted with grace 0.
fn mark_failed_and_delete(state: &State, pod: &Obj, condition: Option<Value>) {
    let _ = state.store.mutate(resources::PODS, pod.namespace(), pod.name(), |cur| {
        let Some(cur) = cur else { return Ok(Change::Keep) };
        let mut p = cur.value.clone();
        if let Some(c) = &condition {
            let mut conds = p.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
            conds.retain(|x| x.get("type") != c.get("type"));
            conds.push(c.clone());
            set_in(&mut p, &["status", "conditions"], Value::Array(conds));
        }
        if !terminated(&p) {
            set_in(&mut p, &["status", "phase"], json!("Failed"));
            if let Some(c) = &condition {
                set_in(&mut p, &["status", "reason"], c["reason"].clone());
                set_in(&mut p, &["status", "message"], c["message"].clone());
            }
        }
        Ok(if p == cur.value { Change::Keep } else { Change::Put(p) })
    });
    force_delete(state, pod);
}

fn force_delete(state: &State, pod: &Obj) {
    let opts = DeleteOpts { grace_period_seconds: Some(0), ..DeleteOpts::default() };
    match state.api.delete(resources::PODS, pod.namespace(), pod.name(), &opts) {
        Ok(_) => tracing::info!(pod = %format!("{}/{}", pod.namespace(), pod.name()), "PodGC is force deleting Pod"),
        Err(e) if e.code == 404 => {}
        Err(err) => tracing::warn!(pod = %pod.name(), %err, "PodGC: delete failed"),
    }
}

/// The controller's memory: since when each missing node has been missing.
#[derive(Debug, Default)]
pub struct Collector {
    absent_since: HashMap<String, Instant>,
}

impl Collector {
    /// One pass (`gc`).
    pub fn pass(&mut self, state: &State, now: Instant) {
        let (nodes, _) = state.store.snapshot(resources::NODES, None);
        let nodes: HashMap<String, Value> = nodes.iter().map(|n| (n.name().to_string(), n.value.clone())).collect();
        let (pods, _) = state.store.snapshot(resources::PODS, None);
        let missing: Vec<String> = pods.iter().map(|p| node_of(&p.value)).filter(|n| !n.is_empty() && !nodes.contains_key(*n)).map(str::to_string).collect();
        self.absent_since.retain(|n, _| missing.contains(n));
        for n in missing {
            self.absent_since.entry(n).or_insert(now);
        }
        let cfg = &state.config;
        for (pod, reason) in plan(&pods, &nodes, &self.absent_since, cfg.pod_gc_orphan_quarantine, cfg.terminated_pod_gc_threshold, now) {
            match reason {
                Reason::Terminated => force_delete(state, &pod),
                Reason::Orphaned => {
                    let cond = json!({"type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
                        "message": "PodGC: node no longer exists", "lastTransitionTime": now_rfc3339()});
                    mark_failed_and_delete(state, &pod, Some(cond));
                }
                Reason::UnscheduledTerminating | Reason::OutOfService => mark_failed_and_delete(state, &pod, None),
            }
        }
    }

    /// When the next pass is due: the period, or sooner when a quarantine ends first.
    fn next_wake(&self, period: Duration, quarantine: Duration, now: Instant) -> Duration {
        let ends = self.absent_since.values().map(|t| (*t + quarantine).saturating_duration_since(now)).min();
        ends.map_or(period, |e| e.min(period)).max(Duration::from_millis(10))
    }
}

/// Run until the server is cancelled: a pass every `pod_gc_period`, on node changes, and when a
/// missing node's quarantine ends.
pub async fn run(state: Arc<State>) {
    let mut gc = Collector::default();
    let mut nodes_rx = state.store.subscribe(resources::NODES);
    loop {
        gc.pass(&state, Instant::now());
        let wait = gc.next_wake(state.config.pod_gc_period, state.config.pod_gc_orphan_quarantine, Instant::now());
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = nodes_rx.changed() => {}
            _ = state.cancel.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, node: &str, phase: &str, terminating: bool, created: &str) -> Arc<Obj> {
        let mut v = json!({"metadata": {"name": name, "namespace": "d", "creationTimestamp": created},
            "spec": {"nodeName": node}, "status": {"phase": phase}});
        if terminating {
            v["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        Obj::new(v, 1)
    }

    fn names(v: &[(Arc<Obj>, Reason)]) -> Vec<(String, Reason)> {
        v.iter().map(|(p, r)| (p.name().to_string(), r.clone())).collect()
    }

    #[test]
    fn orphans_wait_for_the_quarantine() {
        let t0 = Instant::now();
        let q = Duration::from_secs(40);
        let pods = [pod("a", "gone", "Running", false, "2026-01-01T00:00:00Z"), pod("b", "here", "Running", false, "2026-01-01T00:00:00Z")];
        let nodes = HashMap::from([("here".to_string(), json!({}))]);
        let absent = HashMap::from([("gone".to_string(), t0)]);
        assert!(plan(&pods, &nodes, &absent, q, 0, t0 + Duration::from_secs(39)).is_empty());
        assert_eq!(names(&plan(&pods, &nodes, &absent, q, 0, t0 + q)), vec![("a".into(), Reason::Orphaned)]);
    }

    #[test]
    fn terminated_beyond_threshold_oldest_first() {
        let t0 = Instant::now();
        let pods = [
            pod("new", "n", "Succeeded", false, "2026-01-01T00:00:03Z"),
            pod("old", "n", "Failed", false, "2026-01-01T00:00:01Z"),
            pod("mid", "n", "Succeeded", false, "2026-01-01T00:00:02Z"),
            pod("run", "n", "Running", false, "2026-01-01T00:00:00Z"),
        ];
        let nodes = HashMap::from([("n".to_string(), json!({}))]);
        let got = names(&plan(&pods, &nodes, &HashMap::new(), Duration::ZERO, 1, t0));
        assert_eq!(got, vec![("old".into(), Reason::Terminated), ("mid".into(), Reason::Terminated)]);
        assert!(plan(&pods, &nodes, &HashMap::new(), Duration::ZERO, 0, t0).is_empty(), "threshold 0 is off");
    }

    #[test]
    fn terminating_pods_of_out_of_service_nodes_and_unscheduled_ones() {
        let t0 = Instant::now();
        let oos = json!({"spec": {"taints": [{"key": OUT_OF_SERVICE, "effect": "NoExecute"}]},
            "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
        let ready_oos = json!({"spec": {"taints": [{"key": OUT_OF_SERVICE, "effect": "NoExecute"}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let nodes = HashMap::from([("dead".to_string(), oos), ("alive".to_string(), ready_oos)]);
        let pods = [
            pod("t1", "dead", "Running", true, "x"),
            pod("r1", "dead", "Running", false, "x"),
            pod("t2", "alive", "Running", true, "x"),
            pod("u", "", "Pending", true, "x"),
        ];
        let got = names(&plan(&pods, &nodes, &HashMap::new(), Duration::ZERO, 0, t0));
        assert_eq!(got, vec![("t1".into(), Reason::OutOfService), ("u".into(), Reason::UnscheduledTerminating)]);
    }
}
