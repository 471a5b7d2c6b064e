//! Turns the desired static pods into pod-worker updates for the pod manager. A pod whose
//! `namespace/name` still has a terminating incarnation (an older manifest version, or the same
//! manifest removed and re-added) waits until that incarnation's worker has finished, as
//! upstream does, so two versions of one static pod never run together.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use k8s_openapi::api::core::v1::Pod;
use tokio::sync::watch;

use super::mirror::MirrorRegistry;
use super::{StaticSet, full_name};

/// One update for the pod manager: `(uid, Some(pod))` runs or updates, `(uid, None)` removes.
pub type Update = (String, Option<Pod>);

/// The static pods as seen by the pod manager.
pub struct StaticFeed {
    rx: Option<watch::Receiver<StaticSet>>,
    applied: BTreeMap<String, Pod>,
    pending: BTreeMap<String, Pod>,
    terminating: BTreeMap<String, String>,
    registry: MirrorRegistry,
}

impl StaticFeed {
    /// A feed without static pods (no `staticPodPath`).
    pub fn disabled() -> StaticFeed {
        StaticFeed::new(None, MirrorRegistry::default())
    }

    pub fn new(rx: Option<watch::Receiver<StaticSet>>, registry: MirrorRegistry) -> StaticFeed {
        StaticFeed { rx, applied: BTreeMap::new(), pending: BTreeMap::new(), terminating: BTreeMap::new(), registry }
    }

    /// Resolves when the desired set changed (never, when disabled or the source has stopped).
    pub async fn changed(&mut self) {
        let ok = match self.rx.as_mut() {
            Some(rx) => rx.changed().await.is_ok(),
            None => false,
        };
        if !ok {
            self.rx = None;
            std::future::pending::<()>().await;
        }
    }

    /// True when `uid` is a static pod the feed knows (running, waiting or terminating).
    pub fn contains(&self, uid: &str) -> bool {
        self.applied.contains_key(uid) || self.pending.contains_key(uid) || self.terminating.contains_key(uid)
    }

    /// UIDs of all static pods the feed knows.
    pub fn uids(&self) -> HashSet<String> {
        self.applied.keys().chain(self.pending.keys()).chain(self.terminating.keys()).cloned().collect()
    }

    /// The updates that bring the workers to the current desired set. `has_worker(uid)` tells
    /// whether a worker for `uid` is still alive.
    pub fn updates(&mut self, has_worker: impl Fn(&str) -> bool) -> Vec<Update> {
        let desired = match self.rx.as_mut() {
            Some(rx) => rx.borrow_and_update().clone(),
            None => StaticSet::new(),
        };
        let out = self.apply(&desired, has_worker);
        self.publish();
        out
    }

    fn apply(&mut self, desired: &StaticSet, has_worker: impl Fn(&str) -> bool) -> Vec<Update> {
        let mut out = Vec::new();
        let removed: Vec<String> = self.applied.keys().filter(|u| !desired.contains_key(*u)).cloned().collect();
        for uid in removed {
            if let Some(pod) = self.applied.remove(&uid) {
                if has_worker(&uid) {
                    self.terminating.insert(uid.clone(), full_name(&pod));
                }
                out.push((uid, None));
            }
        }
        self.pending.retain(|uid, _| desired.contains_key(uid));
        for (uid, pod) in desired {
            if let Some(cur) = self.applied.get(uid) {
                if cur != pod {
                    self.applied.insert(uid.clone(), pod.clone());
                    out.push((uid.clone(), Some(pod.clone())));
                }
                continue;
            }
            let full = full_name(pod);
            if self.terminating.values().any(|f| *f == full) || has_worker(uid) {
                self.pending.insert(uid.clone(), pod.clone());
            } else {
                self.pending.remove(uid);
                self.applied.insert(uid.clone(), pod.clone());
                out.push((uid.clone(), Some(pod.clone())));
            }
        }
        out
    }

    /// The worker of `uid` has finished: pods that waited for it may start.
    pub fn worker_finished(&mut self, uid: &str) -> Vec<Update> {
        self.terminating.remove(uid);
        let busy: BTreeSet<String> = self.terminating.values().cloned().collect();
        let ready: Vec<String> = self.pending.iter().filter(|(_, p)| !busy.contains(&full_name(p))).map(|(u, _)| u.clone()).collect();
        let mut out = Vec::new();
        for u in ready {
            if let Some(pod) = self.pending.remove(&u) {
                self.applied.insert(u.clone(), pod.clone());
                out.push((u, Some(pod)));
            }
        }
        self.publish();
        out
    }

    fn publish(&self) {
        let running: BTreeMap<String, Pod> = self.applied.values().map(|p| (full_name(p), p.clone())).collect();
        let holding: BTreeSet<String> =
            self.pending.values().map(full_name).chain(self.terminating.values().cloned()).collect();
        self.registry.set_static_view(running, holding);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, uid: &str) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.metadata.namespace = Some("default".into());
        p.metadata.uid = Some(uid.into());
        p
    }

    fn set(pods: &[Pod]) -> StaticSet {
        pods.iter().map(|p| (p.metadata.uid.clone().unwrap(), p.clone())).collect()
    }

    fn uids(u: &[Update]) -> Vec<(String, bool)> {
        u.iter().map(|(uid, p)| (uid.clone(), p.is_some())).collect()
    }

    #[test]
    fn new_version_waits_for_the_old_one() {
        let mut f = StaticFeed::disabled();
        let v1 = pod("web-n", "u1");
        let v2 = pod("web-n", "u2");
        assert_eq!(uids(&f.apply(&set(std::slice::from_ref(&v1)), |_| false)), [("u1".to_string(), true)]);
        // The manifest changes: u1 is told to stop, u2 waits while u1's worker lives.
        let out = f.apply(&set(std::slice::from_ref(&v2)), |u| u == "u1");
        assert_eq!(uids(&out), [("u1".to_string(), false)]);
        assert!(f.contains("u2") && f.contains("u1"));
        assert!(f.worker_finished("other").is_empty());
        assert_eq!(uids(&f.worker_finished("u1")), [("u2".to_string(), true)]);
        assert!(!f.contains("u1"));
    }

    #[test]
    fn removed_and_readded_same_uid_waits_for_the_worker() {
        let mut f = StaticFeed::disabled();
        let p = pod("web-n", "u1");
        f.apply(&set(std::slice::from_ref(&p)), |_| false);
        assert_eq!(uids(&f.apply(&set(&[]), |_| true)), [("u1".to_string(), false)]);
        assert!(f.apply(&set(std::slice::from_ref(&p)), |_| true).is_empty());
        assert_eq!(uids(&f.worker_finished("u1")), [("u1".to_string(), true)]);
    }

    #[test]
    fn removal_without_worker_and_unrelated_pods_start_at_once() {
        let mut f = StaticFeed::disabled();
        f.apply(&set(&[pod("a-n", "ua")]), |_| false);
        assert_eq!(uids(&f.apply(&set(&[pod("b-n", "ub")]), |_| false)), [("ua".to_string(), false), ("ub".to_string(), true)]);
        assert!(!f.contains("ua"));
        // A pending pod that disappears again is dropped.
        f.apply(&set(&[]), |_| true);
        f.apply(&set(&[pod("b-n", "ub2")]), |_| false);
        assert!(f.contains("ub2"));
        f.apply(&set(&[]), |_| true);
        assert!(!f.contains("ub2"));
        assert!(f.worker_finished("ub").is_empty());
    }
}
