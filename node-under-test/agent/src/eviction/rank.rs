//! Which pod to evict first (pure), as upstream ranks them: for memory, pods whose usage exceeds
//! their requests, then lower priority, then larger usage above the request; for disk the same
//! with ephemeral storage; for PIDs, lower priority then more processes. Critical pods (static
//! and mirror pods, priority >= 2000000000) are never candidates.

use std::cmp::Ordering;
use std::collections::HashMap;

use k8s_openapi::api::core::v1::Pod;

use super::signals::{PodUsage, Signal};

/// Priority at and above which a pod is critical (system-cluster-critical is 2000000000).
pub const CRITICAL_PRIORITY: i32 = 2_000_000_000;

/// What ranking needs to know about a pod.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub uid: String,
    pub priority: i32,
    /// Per container: (name, memory request, ephemeral-storage request), bytes.
    pub requests: Vec<(String, i64, i64)>,
}

impl Candidate {
    pub fn memory_request(&self) -> i64 {
        self.requests.iter().map(|r| r.1).sum()
    }
    pub fn disk_request(&self) -> i64 {
        self.requests.iter().map(|r| r.2).sum()
    }
}

fn request(c: &k8s_openapi::api::core::v1::Container, name: &str) -> i64 {
    c.resources
        .as_ref()
        .and_then(|r| r.requests.as_ref().and_then(|m| m.get(name)).or_else(|| r.limits.as_ref().and_then(|m| m.get(name))))
        .and_then(|q| crate::quantity::bytes(&q.0))
        .unwrap_or(0)
}

/// True for pods the eviction manager never evicts.
pub fn is_critical(pod: &Pod) -> bool {
    let static_or_mirror = pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.get("kubernetes.io/config.source").is_some_and(|s| s != "api") || a.contains_key("kubernetes.io/config.mirror"));
    static_or_mirror || pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0) >= CRITICAL_PRIORITY
}

impl Candidate {
    pub fn of(pod: &Pod) -> Candidate {
        let spec = pod.spec.clone().unwrap_or_default();
        Candidate {
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            priority: spec.priority.unwrap_or(0),
            requests: spec.containers.iter().map(|c| (c.name.clone(), request(c, "memory"), request(c, "ephemeral-storage"))).collect(),
        }
    }
}

/// Sorts candidates: the first is evicted first.
pub fn rank(signal: Signal, pods: &mut [Candidate], usage: &HashMap<String, PodUsage>) {
    let used = |c: &Candidate| -> (i64, i64, i64) {
        let u = usage.get(&c.uid);
        (
            u.map(PodUsage::memory).unwrap_or(0),
            u.map(PodUsage::disk).unwrap_or(0),
            u.map(|u| u.processes).unwrap_or(0),
        )
    };
    pods.sort_by(|a, b| {
        let (am, ad, ap) = used(a);
        let (bm, bd, bp) = used(b);
        let by = |au: i64, areq: i64, bu: i64, breq: i64| -> Ordering {
            // Exceeding requests first (true before false), then lower priority, then more above request.
            (bu > breq).cmp(&(au > areq)).then(a.priority.cmp(&b.priority)).then((bu - breq).cmp(&(au - areq)))
        };
        match signal {
            Signal::MemoryAvailable => by(am, a.memory_request(), bm, b.memory_request()),
            Signal::PidAvailable => a.priority.cmp(&b.priority).then(bp.cmp(&ap)),
            _ => by(ad, a.disk_request(), bd, b.disk_request()),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use super::super::signals::ContainerUsage;

    fn cand(uid: &str, priority: i32, mem_req: i64) -> Candidate {
        Candidate { uid: uid.into(), priority, requests: vec![("c".into(), mem_req, mem_req)] }
    }

    fn usage(uid: &str, mem: i64, procs: i64) -> (String, PodUsage) {
        (
            uid.to_string(),
            PodUsage {
                uid: uid.into(),
                containers: vec![ContainerUsage { name: "c".into(), memory: mem, disk: mem, inodes: 0 }],
                processes: procs,
                ..Default::default()
            },
        )
    }

    #[test]
    fn memory_ranking_exceeds_requests_then_priority_then_usage_above_request() {
        let u: HashMap<_, _> = [
            usage("besteffort", 300, 1),
            usage("burstable-over", 250, 1),
            usage("guaranteed", 400, 1),
            usage("high-prio-over", 100, 1),
        ]
        .into();
        let mut pods = vec![cand("guaranteed", 0, 400), cand("burstable-over", 0, 100), cand("high-prio-over", 10, 0), cand("besteffort", 0, 0)];
        rank(Signal::MemoryAvailable, &mut pods, &u);
        let order: Vec<&str> = pods.iter().map(|p| p.uid.as_str()).collect();
        assert_eq!(order, ["besteffort", "burstable-over", "high-prio-over", "guaranteed"]);
        let mut disk = pods.clone();
        rank(Signal::NodeFsAvailable, &mut disk, &u);
        assert_eq!(disk.last().unwrap().uid, "guaranteed");
    }

    #[test]
    fn pid_ranking_priority_then_process_count() {
        let u: HashMap<_, _> = [usage("a", 0, 5), usage("b", 0, 50), usage("c", 0, 500)].into();
        let mut pods = vec![cand("a", 0, 0), cand("b", 0, 0), cand("c", 100, 0)];
        rank(Signal::PidAvailable, &mut pods, &u);
        let order: Vec<&str> = pods.iter().map(|p| p.uid.as_str()).collect();
        assert_eq!(order, ["b", "a", "c"]);
    }

    #[test]
    fn critical_pods() {
        let mut p = Pod::default();
        assert!(!is_critical(&p));
        p.metadata.annotations = Some([("kubernetes.io/config.source".to_string(), "file".to_string())].into());
        assert!(is_critical(&p));
        let q = Pod {
            spec: Some(k8s_openapi::api::core::v1::PodSpec { priority: Some(CRITICAL_PRIORITY), ..Default::default() }),
            ..Default::default()
        };
        assert!(is_critical(&q));
    }
}
