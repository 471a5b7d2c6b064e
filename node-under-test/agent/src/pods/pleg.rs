//! One relist for every pod (upstream's PLEG): each period the whole node's sandboxes and
//! containers are listed once, compared with the previous relist, and the workers of the pods
//! whose sandboxes or containers changed are woken. Workers do not poll the runtime on a timer;
//! they observe their own pod when woken, after their own actions, or when the API changes it.
//!
//! The last relist is also the PLEG's cache, as upstream's pod cache is to a new pod worker: a
//! pod that relist did not see, and that no worker of this agent has touched since it began, has
//! nothing in the runtime, so its first sync starts without listing the runtime again
//! ([`PlegHandle::known_empty`]).
//!
//! The time of the last completed relist is the PLEG's health: upstream's node is NotReady with
//! "PLEG is not healthy: pleg was last seen active … ago; threshold is …" once it is older than
//! the relist threshold (3 m), and its sync loop (so /healthz) stops while that lasts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::format_go_duration;
use crate::cri::{Result, Runtime, keys};

/// What one relist saw of one pod: its sandboxes' and containers' ids with their states.
pub type Fingerprint = Vec<(String, i32)>;

/// One relist: pod uid → fingerprint.
pub type Snapshot = HashMap<String, Fingerprint>;

#[derive(Debug)]
struct Inner {
    wakers: Mutex<HashMap<String, Arc<Notify>>>,
    /// What each worker itself last saw of its pod: a relist that sees the same is no news.
    observed: Mutex<HashMap<String, Fingerprint>>,
    /// When the last relist completed (the start time until the first one).
    last_relist: Mutex<Instant>,
    /// The last completed relist: when it began and the pods it saw.
    cache: Mutex<Option<(Instant, Arc<Snapshot>)>>,
    /// When the workers of pods ended, until a relist began after that.
    ended: Mutex<HashMap<String, Instant>>,
    threshold: Duration,
}

/// The shared PLEG: subscriptions of pod workers and the relist health.
#[derive(Clone, Debug)]
pub struct PlegHandle(Arc<Inner>);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PlegHandle {
    /// A PLEG that is unhealthy once no relist completed for `threshold`.
    pub fn new(threshold: Duration) -> PlegHandle {
        PlegHandle(Arc::new(Inner {
            wakers: Mutex::default(),
            observed: Mutex::default(),
            last_relist: Mutex::new(Instant::now()),
            cache: Mutex::default(),
            ended: Mutex::default(),
            threshold,
        }))
    }

    /// The waker of pod `uid`'s worker (notified when a relist sees the pod change).
    pub fn subscribe(&self, uid: &str) -> Arc<Notify> {
        lock(&self.0.wakers).entry(uid.to_string()).or_default().clone()
    }

    /// Pod `uid`'s worker is gone.
    pub fn unsubscribe(&self, uid: &str) {
        lock(&self.0.wakers).remove(uid);
        lock(&self.0.observed).remove(uid);
        lock(&self.0.ended).insert(uid.to_string(), Instant::now());
    }

    /// True when the runtime has nothing of pod `uid`: a relist has completed, it did not see
    /// the pod, and no worker of the pod ended after that relist began (only a worker of the
    /// pod creates its sandboxes and containers). False when that is not known.
    pub fn known_empty(&self, uid: &str) -> bool {
        let cache = lock(&self.0.cache);
        let Some((began, seen)) = cache.as_ref() else { return false };
        let ended_since = lock(&self.0.ended).get(uid).is_some_and(|ended| ended >= began);
        !seen.contains_key(uid) && !ended_since
    }

    /// Records the relist that began at `began` and saw `next` (shared, not copied).
    fn cache(&self, began: Instant, next: Arc<Snapshot>) {
        *lock(&self.0.cache) = Some((began, next));
        lock(&self.0.ended).retain(|_, ended| *ended >= began);
    }

    /// Pod `uid`'s worker observed the runtime as `fp` (a relist seeing just that wakes nobody).
    pub fn observed(&self, uid: &str, fp: Fingerprint) {
        lock(&self.0.observed).insert(uid.to_string(), fp);
    }

    /// Wakes the workers of `uids` whose pods the relist `next` saw otherwise than they did.
    fn wake_news(&self, uids: &[String], next: &Snapshot) {
        let news: Vec<String> = {
            let observed = lock(&self.0.observed);
            uids.iter()
                .filter(|uid| observed.get(*uid) != Some(next.get(*uid).unwrap_or(&Vec::new())))
                .cloned()
                .collect()
        };
        self.wake(&news);
    }

    fn wake(&self, uids: &[String]) {
        let wakers = lock(&self.0.wakers);
        for uid in uids {
            if let Some(n) = wakers.get(uid) {
                n.notify_one();
            }
        }
    }

    fn relisted(&self, at: Instant) {
        *lock(&self.0.last_relist) = at;
    }

    /// Upstream's PLEG health check: `Err("pleg was last seen active 3m0.1s ago; threshold is 3m0s")`.
    pub fn healthy(&self) -> std::result::Result<(), String> {
        health_at(*lock(&self.0.last_relist), Instant::now(), self.0.threshold)
    }
}

/// The PLEG health check at `now` for a relist last completed at `last` (pure).
pub fn health_at(last: Instant, now: Instant, threshold: Duration) -> std::result::Result<(), String> {
    let elapsed = now.saturating_duration_since(last);
    if elapsed > threshold {
        Err(format!(
            "pleg was last seen active {} ago; threshold is {}",
            format_go_duration(elapsed),
            format_go_duration(threshold)
        ))
    } else {
        Ok(())
    }
}

/// The pods whose fingerprint differs between two relists, including pods that appeared or
/// disappeared (pure).
pub fn changed(prev: &Snapshot, next: &Snapshot) -> Vec<String> {
    let mut out: Vec<String> = next.iter().filter(|(uid, fp)| prev.get(*uid) != Some(fp)).map(|(uid, _)| uid.clone()).collect();
    out.extend(prev.keys().filter(|uid| !next.contains_key(*uid)).cloned());
    out.sort();
    out
}

/// Lists every sandbox and container of the node once.
pub async fn relist<R: Runtime>(rt: &R) -> Result<Snapshot> {
    let mut snap: Snapshot = HashMap::new();
    for s in rt.list_pod_sandboxes(HashMap::new()).await? {
        if let Some(uid) = s.labels.get(keys::POD_UID) {
            snap.entry(uid.clone()).or_default().push((s.id, s.state));
        }
    }
    for c in rt.list_containers(HashMap::new()).await? {
        if let Some(uid) = c.labels.get(keys::POD_UID) {
            snap.entry(uid.clone()).or_default().push((c.id, 100 + c.state));
        }
    }
    for fp in snap.values_mut() {
        fp.sort();
    }
    Ok(snap)
}

/// Relists every `period` until cancelled, waking the workers of changed pods.
pub async fn run_pleg<R: Runtime>(rt: Arc<R>, pleg: PlegHandle, period: Duration, cancel: CancellationToken) {
    let mut prev: Arc<Snapshot> = Arc::default();
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {}
        }
        let began = Instant::now();
        match relist(rt.as_ref()).await {
            Ok(next) => {
                let next = Arc::new(next);
                pleg.relisted(Instant::now());
                pleg.cache(began, next.clone());
                pleg.wake_news(&changed(&prev, &next), &next);
                prev = next;
            }
            Err(e) => tracing::warn!(error = %e, "relist failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(entries: &[(&str, &[(&str, i32)])]) -> Snapshot {
        entries.iter().map(|(uid, fp)| (uid.to_string(), fp.iter().map(|(id, s)| (id.to_string(), *s)).collect())).collect()
    }

    #[test]
    fn changed_pods_only() {
        let a = snap(&[("p1", &[("s1", 0), ("c1", 101)]), ("p2", &[("s2", 0)])]);
        assert!(changed(&a, &a).is_empty());
        let b = snap(&[("p1", &[("s1", 0), ("c1", 102)]), ("p2", &[("s2", 0)]), ("p3", &[("s3", 0)])]);
        assert_eq!(changed(&a, &b), ["p1", "p3"]);
        let c = snap(&[("p1", &[("s1", 0), ("c1", 101)])]);
        assert_eq!(changed(&a, &c), ["p2"]);
    }

    #[test]
    fn health_follows_upstream_text() {
        let t0 = Instant::now();
        let threshold = Duration::from_secs(180);
        assert!(health_at(t0, t0 + Duration::from_secs(179), threshold).is_ok());
        let err = health_at(t0, t0 + Duration::from_millis(180_100), threshold).unwrap_err();
        assert_eq!(err, "pleg was last seen active 3m0.1s ago; threshold is 3m0s");
    }

    /// Only a relist that did not see the pod, and began after its last worker ended, makes a
    /// pod known to have nothing in the runtime.
    #[test]
    fn known_empty_only_after_a_relist_that_did_not_see_the_pod() {
        let pleg = PlegHandle::new(Duration::from_secs(1));
        assert!(!pleg.known_empty("new"), "no relist yet: nothing is known");
        let began = Instant::now();
        pleg.cache(began, Arc::new(snap(&[("p1", &[("s1", 0)])])));
        assert!(pleg.known_empty("new"));
        assert!(!pleg.known_empty("p1"), "seen by the relist");
        pleg.unsubscribe("gone");
        assert!(!pleg.known_empty("gone"), "its worker ended after the relist began: it may have left something");
        pleg.cache(Instant::now(), Arc::new(snap(&[])));
        assert!(pleg.known_empty("gone"), "a later relist did not see it");
        assert!(lock(&pleg.0.ended).is_empty(), "ended workers are forgotten once a relist began after them");
    }

    #[tokio::test]
    async fn subscribers_are_woken_once_per_change() {
        let pleg = PlegHandle::new(Duration::from_secs(1));
        let n = pleg.subscribe("p1");
        pleg.wake(&["p1".to_string(), "p9".to_string()]);
        tokio::time::timeout(Duration::from_secs(1), n.notified()).await.expect("woken");
        pleg.unsubscribe("p1");
        pleg.wake(&["p1".to_string()]);
        assert!(tokio::time::timeout(Duration::from_millis(50), n.notified()).await.is_err(), "no wake after unsubscribe");
    }

    #[tokio::test]
    async fn a_change_the_worker_saw_itself_wakes_nobody() {
        let pleg = PlegHandle::new(Duration::from_secs(1));
        let n = pleg.subscribe("p1");
        let next = snap(&[("p1", &[("c1", 101), ("s1", 0)])]);
        pleg.observed("p1", next["p1"].clone());
        pleg.wake_news(&["p1".to_string()], &next);
        assert!(tokio::time::timeout(Duration::from_millis(50), n.notified()).await.is_err(), "no news, no wake");
        let later = snap(&[("p1", &[("c1", 102), ("s1", 0)])]);
        pleg.wake_news(&["p1".to_string()], &later);
        tokio::time::timeout(Duration::from_secs(1), n.notified()).await.expect("woken for what it has not seen");
    }
}
