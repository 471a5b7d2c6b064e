//! A recording [`ReviewClient`] for unit tests: tokens and permissions are set up front,
//! failures queued, and every review it receives is kept.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use futures::future::BoxFuture;

use super::auth::UserInfo;
use super::webhook::{AccessReviewSpec, AccessReviewStatus, ReviewClient, ReviewError, TokenReviewStatus};

/// A review the fake received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Token(String),
    Access(Box<AccessReviewSpec>),
}

#[derive(Default)]
struct State {
    tokens: HashMap<String, TokenReviewStatus>,
    /// (user, verb, subresource) answered allowed / denied.
    allowed: HashSet<(String, String, String)>,
    denied: HashSet<(String, String, String)>,
    /// Failures to answer with first: transient or not.
    token_failures: Vec<bool>,
    access_failures: Vec<bool>,
    calls: Vec<Call>,
}

#[derive(Default)]
pub struct FakeReviews {
    state: Mutex<State>,
}

impl FakeReviews {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// `token` authenticates as `name` in `groups`.
    pub fn token(&self, token: &str, name: &str, groups: &[&str]) {
        let user = UserInfo { name: name.into(), uid: format!("uid-{name}"), groups: groups.iter().map(|g| g.to_string()).collect(), ..UserInfo::default() };
        self.with(|s| s.tokens.insert(token.into(), TokenReviewStatus { authenticated: true, user, error: String::new() }));
    }

    /// `token` is refused with `reason` (an unknown token is refused without one).
    pub fn refuse(&self, token: &str, reason: &str) {
        self.with(|s| s.tokens.insert(token.into(), TokenReviewStatus { error: reason.into(), ..TokenReviewStatus::default() }));
    }

    pub fn allow(&self, user: &str, verb: &str, subresource: &str) {
        self.with(|s| s.allowed.insert((user.into(), verb.into(), subresource.into())));
    }

    pub fn deny(&self, user: &str, verb: &str, subresource: &str) {
        self.with(|s| s.denied.insert((user.into(), verb.into(), subresource.into())));
    }

    /// The next token reviews fail, each transiently or not.
    pub fn fail_tokens(&self, transient: &[bool]) {
        self.with(|s| s.token_failures.extend_from_slice(transient));
    }

    /// The next access reviews fail, each transiently or not.
    pub fn fail_access(&self, transient: &[bool]) {
        self.with(|s| s.access_failures.extend_from_slice(transient));
    }

    pub fn calls(&self) -> Vec<Call> {
        self.with(|s| s.calls.clone())
    }

    pub fn token_calls(&self) -> usize {
        self.calls().iter().filter(|c| matches!(c, Call::Token(_))).count()
    }

    pub fn access_calls(&self) -> Vec<AccessReviewSpec> {
        self.calls().into_iter().filter_map(|c| if let Call::Access(s) = c { Some(*s) } else { None }).collect()
    }
}

fn failure(op: &'static str, failures: &mut Vec<bool>) -> Option<ReviewError> {
    (!failures.is_empty()).then(|| {
        let transient = failures.remove(0);
        ReviewError::Failed { op, message: "the fake failed".into(), transient }
    })
}

impl ReviewClient for FakeReviews {
    fn token_review<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<TokenReviewStatus, ReviewError>> {
        let answer = self.with(|s| {
            s.calls.push(Call::Token(token.into()));
            match failure("create tokenreview", &mut s.token_failures) {
                Some(e) => Err(e),
                None => Ok(s.tokens.get(token).cloned().unwrap_or_default()),
            }
        });
        Box::pin(async move { answer })
    }

    fn access_review<'a>(&'a self, spec: &'a AccessReviewSpec) -> BoxFuture<'a, Result<AccessReviewStatus, ReviewError>> {
        let answer = self.with(|s| {
            s.calls.push(Call::Access(Box::new(spec.clone())));
            if let Some(e) = failure("create subjectaccessreview", &mut s.access_failures) {
                return Err(e);
            }
            let key = (spec.user.clone(), spec.verb.clone(), spec.subresource.clone());
            Ok(AccessReviewStatus { allowed: s.allowed.contains(&key), denied: s.denied.contains(&key), reason: String::new() })
        });
        Box::pin(async move { answer })
    }
}
