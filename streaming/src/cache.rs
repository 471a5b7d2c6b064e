//! Single-use tokens for streaming requests, as upstream's `request_cache.go`: a CRI call stores
//! its request and gets a random URL-safe token; the HTTP request on the URL consumes it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// How long a token stays valid (upstream `cacheTTL`).
pub const CACHE_TTL: Duration = Duration::from_secs(60);
/// How many tokens may wait at once (upstream `maxInFlight`).
pub const MAX_IN_FLIGHT: usize = 1000;
/// Length of a token (upstream `tokenLen`): base64 of 6 random bytes.
pub const TOKEN_LEN: usize = 8;

/// Why a token could not be handed out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// gRPC `ResourceExhausted` upstream.
    #[error("maximum number of in-flight requests exceeded")]
    TooManyInFlight,
    #[error("failed to generate unique token")]
    NoUniqueToken,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

struct Entry<T> {
    req: T,
    expires: Instant,
}

struct Inner<T> {
    tokens: HashMap<String, Entry<T>>,
    /// Tokens in insertion (so expiry) order; consumed ones are skipped lazily.
    order: VecDeque<(String, Instant)>,
}

/// Requests waiting for their HTTP request, by token.
pub struct RequestCache<T> {
    inner: Mutex<Inner<T>>,
}

impl<T> Default for RequestCache<T> {
    fn default() -> Self {
        Self { inner: Mutex::new(Inner { tokens: HashMap::new(), order: VecDeque::new() }) }
    }
}

impl<T> RequestCache<T> {
    /// Stores `req` and returns its token.
    pub fn insert(&self, req: T) -> Result<String> {
        self.insert_at(req, Instant::now())
    }

    /// Takes the request for `token` out; `None` if unknown, consumed or expired.
    pub fn consume(&self, token: &str) -> Option<T> {
        self.consume_at(token, Instant::now())
    }

    pub(crate) fn insert_at(&self, req: T, now: Instant) -> Result<String> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.gc(now);
        if inner.tokens.len() >= MAX_IN_FLIGHT {
            return Err(Error::TooManyInFlight);
        }
        let token = (0..10)
            .map(|_| new_token())
            .find(|t| !inner.tokens.contains_key(t))
            .ok_or(Error::NoUniqueToken)?;
        let expires = now + CACHE_TTL;
        inner.tokens.insert(token.clone(), Entry { req, expires });
        inner.order.push_back((token.clone(), expires));
        Ok(token)
    }

    pub(crate) fn consume_at(&self, token: &str, now: Instant) -> Option<T> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let entry = inner.tokens.remove(token)?;
        // Upstream: an entry is valid up to and including its expiry time.
        (now <= entry.expires).then_some(entry.req)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().unwrap().tokens.len()
    }
}

impl<T> Inner<T> {
    /// Drops expired entries (oldest first) and queue slots of consumed ones.
    fn gc(&mut self, now: Instant) {
        while let Some((token, expires)) = self.order.front() {
            let live = self.tokens.get(token).is_some_and(|e| e.expires == *expires);
            if live && now <= *expires {
                return;
            }
            if live {
                self.tokens.remove(token);
            }
            self.order.pop_front();
        }
    }
}

fn new_token() -> String {
    let raw: [u8; TOKEN_LEN * 6 / 8] = rand::random();
    let mut token = URL_SAFE_NO_PAD.encode(raw);
    token.truncate(TOKEN_LEN);
    token
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_url_safe_and_single_use() {
        let cache = RequestCache::default();
        let token = cache.insert(7).unwrap();
        assert_eq!(token.len(), TOKEN_LEN);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{token}");
        assert_eq!(cache.consume(&token), Some(7));
        assert_eq!(cache.consume(&token), None);
        assert_eq!(cache.consume("fooBAR"), None);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn consume_out_of_order() {
        let cache = RequestCache::default();
        let t1 = cache.insert(1).unwrap();
        let t2 = cache.insert(2).unwrap();
        assert_eq!(cache.consume(&t2), Some(2));
        assert_eq!(cache.consume(&t1), Some(1));
    }

    #[test]
    fn expired_tokens_are_gone() {
        let cache = RequestCache::default();
        let start = Instant::now();
        let token = cache.insert_at(1, start).unwrap();
        assert_eq!(cache.consume_at(&token, start + 2 * CACHE_TTL), None);
        let t1 = cache.insert_at(1, start).unwrap();
        let t2 = cache.insert_at(2, start + Duration::from_secs(10)).unwrap();
        let later = start + 2 * CACHE_TTL;
        let t3 = cache.insert_at(3, later).unwrap();
        assert_eq!(cache.len(), 1, "insert collects the expired ones");
        assert_eq!(cache.consume_at(&t1, later), None);
        assert_eq!(cache.consume_at(&t2, later), None);
        assert_eq!(cache.consume_at(&t3, later), Some(3));
    }

    #[test]
    fn full_cache_rejects_until_something_leaves() {
        let cache = RequestCache::default();
        let start = Instant::now();
        let oldest = cache.insert_at(0, start).unwrap();
        for i in 1..MAX_IN_FLIGHT {
            cache.insert_at(i, start).unwrap();
        }
        let err = cache.insert_at(MAX_IN_FLIGHT, start).unwrap_err();
        assert_eq!(err.to_string(), "maximum number of in-flight requests exceeded");
        assert_eq!(cache.consume_at(&oldest, start), Some(0));
        cache.insert_at(1, start).unwrap();
        // Once everything expired, there is room again.
        cache.insert_at(2, start + 2 * CACHE_TTL).unwrap();
        assert_eq!(cache.len(), 1);
    }
}
