//! Counts of what the registry served, to show that a client really pulled.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

/// Counts of manifests and blobs served: every `GET` answered 200 or 206 counts once, by its
/// request path (`/v2/<name>/manifests/<reference>`, `/v2/<name>/blobs/<digest>`) and by the
/// digest it served. `HEAD` requests and errors do not count.
#[derive(Debug, Default)]
pub struct Stats {
    inner: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    paths: BTreeMap<String, u64>,
    digests: BTreeMap<String, u64>,
}

impl Stats {
    fn with<T>(&self, f: impl FnOnce(&mut Counts) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Records one response serving `digest` for `path`.
    pub(crate) fn record(&self, path: &str, digest: &str) {
        self.with(|c| {
            *c.paths.entry(path.to_string()).or_default() += 1;
            *c.digests.entry(digest.to_string()).or_default() += 1;
        });
    }

    /// How often `path` (`/v2/…`, without query) was served.
    pub fn path(&self, path: &str) -> u64 {
        self.with(|c| c.paths.get(path).copied().unwrap_or(0))
    }

    /// How often content with `digest` was served, through any path.
    pub fn digest(&self, digest: &str) -> u64 {
        self.with(|c| c.digests.get(digest).copied().unwrap_or(0))
    }

    /// Every path served, with its count.
    pub fn paths(&self) -> BTreeMap<String, u64> {
        self.with(|c| c.paths.clone())
    }
}
