//! A bounded map whose entries expire, for the answers of TokenReview and
//! SubjectAccessReview. Time is tokio's clock, so tests move it with `tokio::time::advance`
//! on a paused runtime.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

/// Entries by key, each until its deadline; at most `capacity` of them.
pub struct TtlCache<V> {
    entries: Mutex<HashMap<String, (Instant, V)>>,
    capacity: usize,
}

impl<V: Clone> TtlCache<V> {
    pub fn new(capacity: usize) -> TtlCache<V> {
        TtlCache { entries: Mutex::new(HashMap::new()), capacity: capacity.max(1) }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, (Instant, V)>> {
        // A panic while holding the lock leaves a consistent map: every update is one call.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The live entry of `key`; an expired one is dropped.
    pub fn get(&self, key: &str) -> Option<V> {
        let now = Instant::now();
        let mut entries = self.lock();
        match entries.get(key) {
            Some((deadline, v)) if *deadline > now => Some(v.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `value` for `ttl` (nothing for a zero `ttl`). When full, expired entries go
    /// first, then the one closest to expiring.
    pub fn insert(&self, key: String, value: V, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, (deadline, _)| *deadline > now);
            if entries.len() >= self.capacity
                && let Some(oldest) = entries.iter().min_by_key(|(_, (deadline, _))| *deadline).map(|(k, _)| k.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(key, (now + ttl, value));
    }

    /// How many entries are held (expired ones included until touched).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn entries_expire_after_their_ttl() {
        let c = TtlCache::new(8);
        c.insert("a".into(), 1, Duration::from_secs(10));
        c.insert("b".into(), 2, Duration::from_secs(30));
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(c.get("a"), Some(1));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(c.get("a"), None, "expired at its deadline");
        assert_eq!(c.get("b"), Some(2));
        assert_eq!(c.len(), 1, "the expired entry was dropped");
        tokio::time::advance(Duration::from_secs(20)).await;
        assert_eq!(c.get("b"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn zero_ttl_is_not_kept_and_insert_replaces() {
        let c = TtlCache::new(8);
        c.insert("a".into(), 1, Duration::ZERO);
        assert!(c.is_empty());
        c.insert("a".into(), 1, Duration::from_secs(1));
        c.insert("a".into(), 2, Duration::from_secs(5));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(c.get("a"), Some(2), "the second insert set value and deadline");
    }

    #[tokio::test(start_paused = true)]
    async fn bounded_dropping_expired_then_the_soonest() {
        let c = TtlCache::new(2);
        c.insert("short".into(), 1, Duration::from_secs(1));
        c.insert("long".into(), 2, Duration::from_secs(100));
        c.insert("mid".into(), 3, Duration::from_secs(50));
        assert_eq!(c.len(), 2);
        assert_eq!(c.get("short"), None, "the entry closest to expiring made room");
        assert_eq!(c.get("long"), Some(2));
        tokio::time::advance(Duration::from_secs(60)).await;
        c.insert("new".into(), 4, Duration::from_secs(10));
        assert_eq!((c.get("mid"), c.get("long"), c.get("new")), (None, Some(2), Some(4)));
    }
}
