//! Event TTL: an Event is removed `event_ttl` after it was last written, as upstream's API
//! server stores events with a lease of `--event-ttl` (1h by default) that every write renews.
//! Events are what grows without bound on a busy node; this keeps a long-lived world's memory
//! bounded.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::resources::EVENTS;
use crate::server::State;
use crate::store::Change;

/// When each event (`namespace/name`) was last seen written: (resourceVersion, first seen).
pub type Seen = HashMap<String, (u64, Instant)>;

/// One pass: records new writes and removes the events whose last write is older than `ttl`.
/// Returns how many were removed.
pub fn tick(state: &State, seen: &mut Seen, ttl: Duration, now: Instant) -> usize {
    let (events, _) = state.store.snapshot(EVENTS, None);
    let mut live = HashMap::with_capacity(events.len());
    let mut expired = Vec::new();
    for e in &events {
        let key = format!("{}/{}", e.namespace(), e.name());
        let (rv, at) = match seen.get(&key) {
            Some((rv, at)) if *rv == e.rv => (*rv, *at),
            _ => (e.rv, now),
        };
        if now.duration_since(at) >= ttl {
            expired.push((e.namespace().to_string(), e.name().to_string(), rv));
        }
        live.insert(key, (rv, at));
    }
    *seen = live;
    let mut removed = 0;
    for (ns, name, rv) in expired {
        // Only the version that expired: a write that raced this pass renews the event.
        let r = state.store.mutate(EVENTS, &ns, &name, |cur| Ok(if cur.is_some_and(|c| c.rv == rv) { Change::Delete } else { Change::Keep }));
        if r.is_ok_and(|o| o.ty.is_some()) {
            seen.remove(&format!("{ns}/{name}"));
            removed += 1;
        }
    }
    removed
}

/// Runs until the server is cancelled, checking ten times per TTL (at most every 10 s).
pub async fn run(state: Arc<State>) {
    let ttl = state.config.event_ttl;
    let period = (ttl / 10).clamp(Duration::from_millis(10), Duration::from_secs(10));
    let mut seen = Seen::new();
    loop {
        let removed = tick(&state, &mut seen, ttl, Instant::now());
        if removed > 0 {
            tracing::debug!(removed, "expired events removed");
        }
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = state.cancel.cancelled() => return,
        }
    }
}
