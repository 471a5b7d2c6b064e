//! Exponential back-off keyed by container (upstream flowcontrol.Backoff without jitter):
//! the first restart is immediate, then base, 2×base, … capped at max; an entry whose last
//! update is older than `reset_after` when the container finishes is forgotten.

use std::collections::HashMap;
use std::time::Duration;

use jiff::Timestamp;

/// Back-off parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackOffParams {
    pub base: Duration,
    pub max: Duration,
    pub reset_after: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    delay: Duration,
    last_update: Timestamp,
}

/// Per-key back-off state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackOff {
    params: BackOffParams,
    entries: HashMap<String, Entry>,
}

fn since(later: Timestamp, earlier: Timestamp) -> Duration {
    let d = later.as_nanosecond() - earlier.as_nanosecond();
    if d <= 0 { Duration::ZERO } else { Duration::from_nanos(d as u64) }
}

/// `t + d`, saturating.
pub fn add(t: Timestamp, d: Duration) -> Timestamp {
    let ns = t.as_nanosecond().saturating_add(d.as_nanos() as i128);
    Timestamp::from_nanosecond(ns).unwrap_or(Timestamp::MAX)
}

impl BackOff {
    pub fn new(params: BackOffParams) -> Self {
        BackOff { params, entries: HashMap::new() }
    }

    fn live(&self, key: &str, event_time: Timestamp) -> Option<&Entry> {
        self.entries.get(key).filter(|e| since(event_time, e.last_update) <= self.params.reset_after)
    }

    /// If `key` is in back-off for an event at `event_time`: the current delay and when it ends.
    pub fn in_backoff(&self, key: &str, event_time: Timestamp, now: Timestamp) -> Option<(Duration, Timestamp)> {
        let e = self.live(key, event_time)?;
        let until = add(event_time, e.delay);
        (now < until).then_some((e.delay, until))
    }

    /// Records an attempt at `now` for an event at `event_time`: the delay starts at base or doubles.
    pub fn next(&mut self, key: &str, event_time: Timestamp, now: Timestamp) {
        let delay = match self.live(key, event_time) {
            Some(e) => (e.delay * 2).min(self.params.max),
            None => self.params.base,
        };
        self.entries.insert(key.to_string(), Entry { delay, last_update: now });
    }

    /// The current delay of `key`, if any.
    pub fn delay(&self, key: &str) -> Option<Duration> {
        self.entries.get(key).map(|e| e.delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    fn params() -> BackOffParams {
        BackOffParams { base: Duration::from_secs(10), max: Duration::from_secs(300), reset_after: Duration::from_secs(600) }
    }

    #[test]
    fn doubles_to_cap() {
        let mut b = BackOff::new(params());
        assert!(b.in_backoff("c", ts(0), ts(0)).is_none(), "first restart is immediate");
        let mut delays = vec![];
        for t in 0..8 {
            b.next("c", ts(t), ts(t));
            delays.push(b.delay("c").unwrap().as_secs());
        }
        assert_eq!(delays, [10, 20, 40, 80, 160, 300, 300, 300]);
    }

    #[test]
    fn in_backoff_until_delay_after_finish() {
        let mut b = BackOff::new(params());
        b.next("c", ts(0), ts(0));
        // The container ran 2s and exited at t=2: back-off until 12.
        assert_eq!(b.in_backoff("c", ts(2), ts(5)), Some((Duration::from_secs(10), ts(12))));
        assert!(b.in_backoff("c", ts(2), ts(12)).is_none());
        assert!(b.in_backoff("other", ts(2), ts(5)).is_none());
    }

    #[test]
    fn resets_after_long_run() {
        let mut b = BackOff::new(params());
        for t in 0..5 {
            b.next("c", ts(t), ts(t));
        }
        assert_eq!(b.delay("c"), Some(Duration::from_secs(160)));
        // Finished more than reset_after after the last restart: forgotten.
        assert!(b.in_backoff("c", ts(700), ts(701)).is_none());
        b.next("c", ts(700), ts(701));
        assert_eq!(b.delay("c"), Some(Duration::from_secs(10)));
    }
}
