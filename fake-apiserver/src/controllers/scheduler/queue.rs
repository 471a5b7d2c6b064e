//! When to try a pending pod again, after upstream's scheduling queue: a new pod is tried at
//! once; a pod that did not fit waits among the unschedulable pods until a cluster change that
//! may help (a node added or changed, a bound pod gone, the pod itself changed) moves it, and is
//! then retried once its backoff is over (1 s doubling per attempt up to 10 s); a pod that stays
//! unschedulable for 5 minutes is retried anyway. A pod whose attempt failed with an error
//! (not a fit failure) is retried after its backoff without waiting for a change.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The queue's timings (upstream `--pod-initial-backoff-seconds`, `--pod-max-backoff-seconds`
/// and `podMaxInUnschedulablePodsDuration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// How long a pod waits among the unschedulable pods without a cluster change.
    pub max_unschedulable: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing { initial_backoff: Duration::from_secs(1), max_backoff: Duration::from_secs(10), max_unschedulable: Duration::from_secs(300) }
    }
}

impl Timing {
    /// `calculateBackoffDuration`: initial × 2^(attempts-1), capped at max.
    pub fn backoff(&self, attempts: u32) -> Duration {
        if attempts == 0 {
            return Duration::ZERO;
        }
        let mut d = self.initial_backoff;
        for _ in 1..attempts {
            if d > self.max_backoff.saturating_sub(d) {
                return self.max_backoff;
            }
            d += d;
        }
        d.min(self.max_backoff)
    }
}

/// `t + d`, or a year after `t` when that is not representable (a huge configured timeout).
fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d).or_else(|| t.checked_add(Duration::from_secs(365 * 24 * 3600))).unwrap_or(t)
}

/// Where a tried pod waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// It did not fit; `moved` once a cluster change may have helped.
    Unschedulable { moved: bool },
    /// The attempt failed with an error: retry after the backoff.
    Backoff,
}

#[derive(Debug, Clone)]
struct Entry {
    attempts: u32,
    last_attempt: Instant,
    wait: Wait,
    /// Fingerprint of the pod's spec at the last attempt.
    spec: u64,
}

/// The pods tried before, by uid.
#[derive(Debug, Default)]
pub struct Queue {
    timing: Timing,
    entries: HashMap<String, Entry>,
}

impl Queue {
    pub fn new(timing: Timing) -> Queue {
        Queue { timing, entries: HashMap::new() }
    }

    /// When the pod (uid, current spec fingerprint) may be tried next: `None` for a pod never
    /// tried (due at once); else the end of its backoff, or, while it waits for a cluster change,
    /// the end of the unschedulable timeout.
    pub fn due_at(&self, uid: &str, spec: u64) -> Option<Instant> {
        let e = self.entries.get(uid)?;
        let after_backoff = later(e.last_attempt, self.timing.backoff(e.attempts));
        match e.wait {
            Wait::Backoff | Wait::Unschedulable { moved: true } => Some(after_backoff),
            Wait::Unschedulable { moved: false } if e.spec != spec => Some(after_backoff),
            Wait::Unschedulable { moved: false } => Some(later(e.last_attempt, self.timing.max_unschedulable)),
        }
    }

    /// Whether the pod is due at `now`.
    pub fn is_due(&self, uid: &str, spec: u64, now: Instant) -> bool {
        self.due_at(uid, spec).is_none_or(|t| t <= now)
    }

    /// Record a failed attempt.
    pub fn failed(&mut self, uid: &str, spec: u64, unschedulable: bool, now: Instant) {
        let attempts = self.entries.get(uid).map_or(0, |e| e.attempts).saturating_add(1);
        let wait = if unschedulable { Wait::Unschedulable { moved: false } } else { Wait::Backoff };
        self.entries.insert(uid.to_string(), Entry { attempts, last_attempt: now, wait, spec });
    }

    /// The pod is bound or gone.
    pub fn forget(&mut self, uid: &str) {
        self.entries.remove(uid);
    }

    /// Keep only the pods still pending.
    pub fn retain(&mut self, pending: impl Fn(&str) -> bool) {
        self.entries.retain(|uid, _| pending(uid));
    }

    /// A cluster change that may help: every unschedulable pod is moved (to be retried after
    /// its backoff).
    pub fn move_all(&mut self) {
        for e in self.entries.values_mut() {
            if let Wait::Unschedulable { moved } = &mut e.wait {
                *moved = true;
            }
        }
    }

    /// Attempts so far for the pod.
    pub fn attempts(&self, uid: &str) -> u32 {
        self.entries.get(uid).map_or(0, |e| e.attempts)
    }

    /// The earliest time any known pod becomes due (given each pod's current spec).
    pub fn next_due(&self, spec_of: impl Fn(&str) -> Option<u64>) -> Option<Instant> {
        self.entries.iter().filter_map(|(uid, e)| self.due_at(uid, spec_of(uid).unwrap_or(e.spec))).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing() -> Timing {
        Timing { initial_backoff: Duration::from_secs(1), max_backoff: Duration::from_secs(10), max_unschedulable: Duration::from_secs(300) }
    }

    #[test]
    fn backoff_doubles_up_to_the_max() {
        let t = timing();
        let secs: Vec<u64> = (0..7).map(|a| t.backoff(a).as_secs()).collect();
        assert_eq!(secs, vec![0, 1, 2, 4, 8, 10, 10]);
        assert_eq!(t.backoff(u32::MAX), Duration::from_secs(10));
        let odd = Timing { initial_backoff: Duration::from_millis(300), max_backoff: Duration::from_millis(1000), ..t };
        assert_eq!(odd.backoff(3), Duration::from_millis(1000), "600 ms doubled is past the max");
        assert_eq!(odd.backoff(2), Duration::from_millis(600));
    }

    #[test]
    fn new_pods_are_due_at_once() {
        let q = Queue::new(timing());
        assert!(q.is_due("u", 1, Instant::now()));
    }

    #[test]
    fn unschedulable_pods_wait_for_a_change_then_the_backoff() {
        let mut q = Queue::new(timing());
        let t0 = Instant::now();
        q.failed("u", 1, true, t0);
        assert!(!q.is_due("u", 1, t0 + Duration::from_secs(30)), "no change: it waits");
        assert_eq!(q.due_at("u", 1), Some(t0 + Duration::from_secs(300)), "until the unschedulable timeout");
        q.move_all();
        assert!(!q.is_due("u", 1, t0 + Duration::from_millis(500)), "backing off");
        assert!(q.is_due("u", 1, t0 + Duration::from_secs(1)));
        q.failed("u", 1, true, t0 + Duration::from_secs(1));
        assert_eq!(q.attempts("u"), 2);
        q.move_all();
        assert_eq!(q.due_at("u", 1), Some(t0 + Duration::from_secs(3)), "the second backoff is 2 s");
    }

    #[test]
    fn own_spec_changes_and_errors() {
        let mut q = Queue::new(timing());
        let t0 = Instant::now();
        q.failed("u", 1, true, t0);
        assert!(q.is_due("u", 2, t0 + Duration::from_secs(1)), "the pod changed: retried after its backoff");
        q.failed("e", 1, false, t0);
        assert!(q.is_due("e", 1, t0 + Duration::from_secs(1)), "an error is retried after the backoff alone");
        assert_eq!(q.next_due(|_| Some(1)), Some(t0 + Duration::from_secs(1)));
        q.retain(|uid| uid == "u");
        q.forget("u");
        assert_eq!(q.next_due(|_| None), None);
        let mut huge = Queue::new(Timing { max_unschedulable: Duration::MAX, ..timing() });
        huge.failed("h", 1, true, t0);
        assert!(huge.due_at("h", 1).is_some_and(|t| t > t0), "no overflow");
    }
}
