//! The agent's own health, as upstream's kubelet reports it: `/healthz` fails once the sync
//! loop has not run for max(2 × syncFrequency, 5 m), and the sync loop does not run while the
//! PLEG is unhealthy (no relist within its threshold), exactly as upstream's syncLoop skips its
//! iterations while the runtime has errors.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::pods::pleg::PlegHandle;

#[derive(Debug)]
struct Inner {
    pleg: PlegHandle,
    sync_loop: Mutex<Instant>,
    threshold: Duration,
}

/// Shared health state; cheap to clone.
#[derive(Clone, Debug)]
pub struct Health(Arc<Inner>);

impl Health {
    /// `sync_frequency` and `minimum` give the sync-loop threshold max(2 × sync_frequency, minimum).
    pub fn new(pleg: PlegHandle, sync_frequency: Duration, minimum: Duration) -> Health {
        Health(Arc::new(Inner { pleg, sync_loop: Mutex::new(Instant::now()), threshold: (sync_frequency * 2).max(minimum) }))
    }

    pub fn pleg(&self) -> &PlegHandle {
        &self.0.pleg
    }

    /// One iteration of the sync loop; skipped (not recorded) while the PLEG is unhealthy.
    pub fn sync_loop_tick(&self) {
        if self.0.pleg.healthy().is_ok() {
            *self.0.sync_loop.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        }
    }

    /// Upstream's `syncloop` health check.
    pub fn sync_loop(&self) -> Result<(), String> {
        let last = *self.0.sync_loop.lock().unwrap_or_else(|p| p.into_inner());
        sync_loop_at(last, Instant::now(), self.0.threshold)
    }
}

/// The sync-loop check at `now` for a last iteration at `last` (pure).
pub fn sync_loop_at(last: Instant, now: Instant, threshold: Duration) -> Result<(), String> {
    if now.saturating_duration_since(last) > threshold { Err("sync Loop took longer than expected".into()) } else { Ok(()) }
}

/// The body and success of `/healthz` as upstream's healthz handler writes them: `ok`, or the
/// verbose list with the failed check's reason withheld.
pub fn healthz_body(sync_loop: &Result<(), String>) -> (bool, String) {
    match sync_loop {
        Ok(()) => (true, "ok".into()),
        Err(_) => (false, "[+]ping ok\n[+]log ok\n[-]syncloop failed: reason withheld\nhealthz check failed\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_loop_threshold_and_body() {
        let t0 = Instant::now();
        assert!(sync_loop_at(t0, t0 + Duration::from_secs(299), Duration::from_secs(300)).is_ok());
        let e = sync_loop_at(t0, t0 + Duration::from_secs(301), Duration::from_secs(300));
        assert_eq!(e, Err("sync Loop took longer than expected".to_string()));
        assert_eq!(healthz_body(&Ok(())), (true, "ok".to_string()));
        let (ok, body) = healthz_body(&e);
        assert!(!ok && body.contains("[-]syncloop failed: reason withheld") && body.ends_with("healthz check failed\n"));
    }

    #[test]
    fn threshold_is_twice_the_sync_frequency_with_a_floor() {
        let h = Health::new(PlegHandle::new(Duration::from_secs(1)), Duration::from_secs(200), Duration::from_secs(300));
        assert_eq!(h.0.threshold, Duration::from_secs(400));
        let h = Health::new(PlegHandle::new(Duration::from_secs(1)), Duration::from_secs(2), Duration::from_secs(300));
        assert_eq!(h.0.threshold, Duration::from_secs(300));
    }

    #[test]
    fn no_tick_while_the_pleg_is_unhealthy() {
        let h = Health::new(PlegHandle::new(Duration::ZERO), Duration::from_secs(1), Duration::from_secs(1));
        let before = *h.0.sync_loop.lock().unwrap();
        while Instant::now() <= before {}
        h.sync_loop_tick();
        assert_eq!(*h.0.sync_loop.lock().unwrap(), before, "the tick was recorded with the PLEG unhealthy");
    }
}
