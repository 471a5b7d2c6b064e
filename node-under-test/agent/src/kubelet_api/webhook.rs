//! Delegated authentication and authorization, as upstream's kubelet builds them
//! (cmd/kubelet/app/auth.go over k8s.io/apiserver's `authenticatorfactory` and
//! `authorizerfactory`): bearer tokens reviewed by the API server (TokenReview) and every
//! request's attributes decided by it (SubjectAccessReview), each answer cached.
//!
//! - Tokens (`authentication.webhook`, `cacheTTL` default 2m): an authenticated answer and an
//!   unauthenticated one without a reason are kept for `cacheTTL`; an unauthenticated answer
//!   with a reason (`status.error`) and a failed review are not kept (upstream's token cache
//!   with `cacheErrs=false`). No audiences are asked for, so the API server checks its own.
//! - Decisions (`authorization.webhook`, `cacheAuthorizedTTL` 5m, `cacheUnauthorizedTTL` 30s):
//!   keyed by the review's spec, allowed ones kept for the first, others for the second; a
//!   failed review is not kept.
//! - Reviews that fail with a transient error (connection, 429, 500, 503, 504) are retried with
//!   upstream's `DefaultAuthWebhookRetryBackoff`: 500 ms × 1.5 per step, 5 attempts.
//!
//! The API calls go through [`ReviewClient`]; [`super::review_client`] has the real one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::attributes::{API_VERSION, RESOURCE, ResourceAttributes};
use super::auth::UserInfo;
use super::ttl_cache::TtlCache;

/// Entries the token cache holds (upstream: 32 stripes of 128).
pub const TOKEN_CACHE_SIZE: usize = 4096;
/// Entries the decision cache holds (upstream's LRU of 8192).
pub const DECISION_CACHE_SIZE: usize = 8192;
/// Upstream's `maxControlledAttrCacheSize`: decisions about longer attributes are not cached.
const MAX_CACHED_ATTRIBUTES: usize = 10_000;

/// What a TokenReview answered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenReviewStatus {
    pub authenticated: bool,
    pub user: UserInfo,
    /// Why the token was not authenticated, if the server said.
    pub error: String,
}

/// The spec of a SubjectAccessReview about a resource (also the key of its cached answer).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AccessReviewSpec {
    pub user: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
    pub namespace: String,
    pub verb: String,
    pub group: String,
    pub version: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
}

impl AccessReviewSpec {
    /// The review of `attrs` for `user`.
    pub fn new(user: &UserInfo, attrs: &ResourceAttributes) -> AccessReviewSpec {
        AccessReviewSpec {
            user: user.name.clone(),
            uid: user.uid.clone(),
            groups: user.groups.clone(),
            extra: user.extra.clone(),
            namespace: String::new(),
            verb: attrs.verb.to_string(),
            group: String::new(),
            version: API_VERSION.to_string(),
            resource: RESOURCE.to_string(),
            subresource: attrs.subresource.to_string(),
            name: attrs.name.clone(),
        }
    }
}

/// What a SubjectAccessReview answered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessReviewStatus {
    pub allowed: bool,
    pub denied: bool,
    pub reason: String,
}

/// Why a review did not answer.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("{op}: {message}")]
    Failed { op: &'static str, message: String, transient: bool },
}

impl ReviewError {
    fn transient(&self) -> bool {
        match self {
            ReviewError::Failed { transient, .. } => *transient,
        }
    }
}

/// The two reviews, made on the API server.
pub trait ReviewClient: Send + Sync {
    fn token_review<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<TokenReviewStatus, ReviewError>>;
    fn access_review<'a>(&'a self, spec: &'a AccessReviewSpec) -> BoxFuture<'a, Result<AccessReviewStatus, ReviewError>>;
}

/// How failed reviews are retried: `steps` attempts, `initial` apart and growing by `factor`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub factor: f64,
    pub steps: u32,
}

impl Default for Backoff {
    /// Upstream's `DefaultAuthWebhookRetryBackoff` (without its 0.2 jitter).
    fn default() -> Self {
        Backoff { initial: Duration::from_millis(500), factor: 1.5, steps: 5 }
    }
}

/// Runs `review` until it answers, fails for good, or the attempts run out.
async fn with_retries<T, F, Fut>(backoff: Backoff, mut review: F) -> Result<T, ReviewError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ReviewError>>,
{
    let mut delay = backoff.initial;
    let mut attempt = 1;
    loop {
        match review().await {
            Err(e) if e.transient() && attempt < backoff.steps => {
                tracing::debug!(error = %e, attempt, "review failed; retrying");
                tokio::time::sleep(delay).await;
                delay = delay.mul_f64(backoff.factor);
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Why a bearer token did not authenticate (each is a 401).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token review: {0}")]
    Review(#[from] ReviewError),
    #[error("{0}")]
    Refused(String),
}

/// Bearer tokens checked by TokenReview, answers cached by the token's SHA-256.
pub struct TokenAuthenticator {
    client: Arc<dyn ReviewClient>,
    ttl: Duration,
    backoff: Backoff,
    cache: TtlCache<Option<UserInfo>>,
}

impl TokenAuthenticator {
    pub fn new(client: Arc<dyn ReviewClient>, ttl: Duration, backoff: Backoff) -> TokenAuthenticator {
        TokenAuthenticator { client, ttl, backoff, cache: TtlCache::new(TOKEN_CACHE_SIZE) }
    }

    /// The token's user; `None` when the review did not authenticate it and gave no reason.
    pub async fn authenticate(&self, token: &str) -> Result<Option<UserInfo>, TokenError> {
        let key = hex::encode(Sha256::digest(token.as_bytes()));
        if let Some(hit) = self.cache.get(&key) {
            return Ok(hit);
        }
        let status = with_retries(self.backoff, || self.client.token_review(token)).await?;
        if !status.authenticated && !status.error.is_empty() {
            return Err(TokenError::Refused(status.error));
        }
        let user = status.authenticated.then_some(status.user);
        self.cache.insert(key, user.clone(), self.ttl);
        Ok(user)
    }
}

/// An authorizer's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
    NoOpinion,
}

/// Why a decision could not be made (a 500).
#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    #[error("subject access review: {0}")]
    Review(#[from] ReviewError),
    #[error("webhook subject access review returned both allow and deny response")]
    AllowedAndDenied,
}

/// Decisions made by SubjectAccessReview, cached by the review's spec.
pub struct WebhookAuthorizer {
    client: Arc<dyn ReviewClient>,
    allowed_ttl: Duration,
    denied_ttl: Duration,
    backoff: Backoff,
    cache: TtlCache<AccessReviewStatus>,
}

impl WebhookAuthorizer {
    pub fn new(client: Arc<dyn ReviewClient>, allowed_ttl: Duration, denied_ttl: Duration, backoff: Backoff) -> WebhookAuthorizer {
        WebhookAuthorizer { client, allowed_ttl, denied_ttl, backoff, cache: TtlCache::new(DECISION_CACHE_SIZE) }
    }

    pub async fn authorize(&self, user: &UserInfo, attrs: &ResourceAttributes) -> Result<Decision, AuthorizeError> {
        let spec = AccessReviewSpec::new(user, attrs);
        // Attributes a requester made too long are not cached (upstream's `shouldCache`).
        let key = serde_json::to_string(&spec).ok().filter(|_| controlled_size(&spec, attrs) < MAX_CACHED_ATTRIBUTES);
        let status = match key.as_deref().and_then(|k| self.cache.get(k)) {
            Some(hit) => hit,
            None => {
                let status = with_retries(self.backoff, || self.client.access_review(&spec)).await?;
                if let Some(key) = key {
                    let ttl = if status.allowed { self.allowed_ttl } else { self.denied_ttl };
                    self.cache.insert(key, status.clone(), ttl);
                }
                status
            }
        };
        match (status.allowed, status.denied) {
            (true, true) => Err(AuthorizeError::AllowedAndDenied),
            (_, true) => Ok(Decision::Deny),
            (true, _) => Ok(Decision::Allow),
            _ => Ok(Decision::NoOpinion),
        }
    }
}

/// Upstream's `shouldCache` measure: the lengths of the requester-controlled attributes.
fn controlled_size(spec: &AccessReviewSpec, attrs: &ResourceAttributes) -> usize {
    [&spec.namespace, &spec.verb, &spec.group, &spec.version, &spec.resource, &spec.subresource, &spec.name, &attrs.path]
        .iter()
        .map(|s| s.len())
        .sum()
}

/// `authorization.mode`.
pub enum Authorizer {
    AlwaysAllow,
    Webhook(WebhookAuthorizer),
}

impl Authorizer {
    pub async fn authorize(&self, user: &UserInfo, attrs: &ResourceAttributes) -> Result<Decision, AuthorizeError> {
        match self {
            Authorizer::AlwaysAllow => Ok(Decision::Allow),
            Authorizer::Webhook(w) => w.authorize(user, attrs).await,
        }
    }
}

#[cfg(test)]
#[path = "webhook_tests.rs"]
mod tests;
