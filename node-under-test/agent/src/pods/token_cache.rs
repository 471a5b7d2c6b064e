//! The node's ServiceAccount tokens for projected volumes, as upstream's token manager
//! (`pkg/kubelet/token/token_manager.go`) keeps them: one per pod, account, audience and
//! lifetime, reused until it needs a refresh — past 80% of its lifetime, or older than 24 hours
//! — so the periodic remount of a running pod's volumes writes a fresh token before the old one
//! expires without asking the API server on every sync. (Upstream adds up to 10 s of random
//! jitter to both bounds; this cache refreshes exactly at them.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Upstream's `maxTTL`: a token older than this is refreshed whatever its lifetime.
pub const MAX_TTL_SECONDS: i64 = 24 * 60 * 60;

/// What a token was requested for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TokenKey {
    pub namespace: String,
    pub service_account: String,
    pub pod_uid: String,
    pub audience: Option<String>,
    pub expiration_seconds: i64,
}

/// A token and its validity, from the TokenRequest answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issued {
    pub token: String,
    /// `status.expirationTimestamp`.
    pub expires: jiff::Timestamp,
    /// `spec.expirationSeconds` of the answer.
    pub expiration_seconds: i64,
}

/// Upstream's `requiresRefresh`: issued at `expires - expirationSeconds`; refresh once
/// `now` is past issued + 24 h or within the last 20% of the lifetime.
pub fn requires_refresh(t: &Issued, now: jiff::Timestamp) -> bool {
    let (exp, now) = (t.expires.as_second(), now.as_second());
    let issued = exp - t.expiration_seconds;
    now > issued + MAX_TTL_SECONDS || now > exp - t.expiration_seconds * 20 / 100
}

/// The tokens of one pod's worker (shared by its clones).
#[derive(Clone, Default)]
pub struct TokenCache {
    tokens: Arc<Mutex<HashMap<TokenKey, Issued>>>,
}

impl TokenCache {
    /// The cached token for `key` unless it needs a refresh at `now`.
    pub fn fresh(&self, key: &TokenKey, now: jiff::Timestamp) -> Option<String> {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.get(key).filter(|t| !requires_refresh(t, now)).map(|t| t.token.clone())
    }

    pub fn store(&self, key: TokenKey, issued: Issued) {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner()).insert(key, issued);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    fn issued(at_s: i64, lifetime: i64) -> Issued {
        Issued { token: format!("t{at_s}"), expires: at(at_s + lifetime), expiration_seconds: lifetime }
    }

    #[test]
    fn refresh_past_eighty_percent_of_the_lifetime() {
        // The default projected token: 3607 s; 20% is 721 s before expiry.
        let t = issued(0, 3607);
        assert!(!requires_refresh(&t, at(0)));
        assert!(!requires_refresh(&t, at(3607 - 721)));
        assert!(requires_refresh(&t, at(3607 - 720)));
        assert!(requires_refresh(&t, at(4000)), "an expired token");
    }

    #[test]
    fn refresh_after_a_day_whatever_the_lifetime() {
        let year = 365 * 24 * 3600;
        let t = issued(0, year);
        assert!(!requires_refresh(&t, at(MAX_TTL_SECONDS)));
        assert!(requires_refresh(&t, at(MAX_TTL_SECONDS + 1)));
    }

    #[test]
    fn the_cache_answers_until_a_refresh_is_due() {
        let cache = TokenCache::default();
        let key = TokenKey { namespace: "ns".into(), service_account: "default".into(), pod_uid: "u".into(), audience: None, expiration_seconds: 600 };
        assert_eq!(cache.fresh(&key, at(0)), None);
        cache.store(key.clone(), issued(0, 600));
        assert_eq!(cache.fresh(&key, at(479)).as_deref(), Some("t0"));
        assert_eq!(cache.fresh(&key, at(481)), None, "past 80% of 600 s");
        let other = TokenKey { audience: Some("vault".into()), ..key };
        assert_eq!(cache.fresh(&other, at(1)), None, "another audience is another token");
    }
}
