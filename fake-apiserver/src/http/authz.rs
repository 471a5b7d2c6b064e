//! Authorization of API requests, as kube-apiserver's filter chain with
//! `--authorization-mode=Node,RBAC`: the authenticated user (a verified client certificate,
//! anonymous without one, upstream's insecure-port superuser on plain HTTP), then
//! impersonation (every `impersonate` check authorized first), then the request's attributes
//! authorized by [`crate::auth::authorize`]; a refusal is upstream's 403 `Status`. The
//! decision is recorded as upstream's audit annotations. Writes by nodes then go through
//! NodeRestriction ([`super::node_admission`]).
//!
//! Only with [`crate::Config::authorization`]; without it every request is served as before.

use std::collections::BTreeMap;
use std::fmt::Display;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use super::{Body, full, value_response};
use crate::audit::UserInfo;
use crate::auth::forbidden::forbidden_status;
use crate::auth::impersonation::{self, Impersonation};
use crate::auth::user::{ALL_AUTHENTICATED, SYSTEM_PRIVILEGED_GROUP, node_identity};
use crate::auth::{Attributes, Decision, User, authorize_privileged};
use crate::server::State;

/// The user of plain-HTTP requests: upstream's superuser of its (deprecated) insecure port.
pub const UNSECURED_USER: &str = "system:unsecured";
/// Upstream's audit annotation with the decision: `allow` or `forbid`.
pub const DECISION_ANNOTATION: &str = "authorization.k8s.io/decision";
/// Upstream's audit annotation with the authorizer's reason.
pub const REASON_ANNOTATION: &str = "authorization.k8s.io/reason";

/// The user a request acts as (authenticated, impersonation applied), set by
/// [`authorize_request`] on allowed requests.
#[derive(Debug, Clone)]
pub struct RequestUser(pub User);

/// What the authorization step decided about one request.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Audit annotations (decision and reason).
    pub annotations: BTreeMap<String, String>,
    /// The impersonated user, when the request impersonates.
    pub impersonated: Option<UserInfo>,
    /// The answer of a refused request (403, or 500 for unusable requests).
    pub refused: Option<Response<Body>>,
}

/// The authenticated user: the client certificate's (or anonymous) over HTTPS,
/// [`UNSECURED_USER`] in `system:masters` over plain HTTP.
pub fn authenticated(req: &Request<Incoming>) -> User {
    match req.extensions().get::<UserInfo>() {
        Some(u) => User::from(u),
        None => User::new(UNSECURED_USER, &[SYSTEM_PRIVILEGED_GROUP, ALL_AUTHENTICATED]),
    }
}

/// Upstream's `responsewriters.InternalError`: a plain-text 500 naming the request URI.
pub fn internal_error(uri: &str, err: &dyn Display) -> Response<Body> {
    let text = format!("Internal Server Error: {}: {err}", crate::auth::go_quote(uri));
    let sanitized = text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let mut r = Response::new(full(format!("{sanitized}\n")));
    *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    let headers = r.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert("x-content-type-options", http::HeaderValue::from_static("nosniff"));
    r
}

fn request_uri(req: &Request<Incoming>) -> String {
    req.uri().path_and_query().map_or_else(|| req.uri().path().to_string(), |pq| pq.as_str().to_string())
}

/// The request's impersonation (`None` without `Impersonate-*` headers); an unusable set of
/// headers is upstream's 500.
fn impersonation_of(req: &Request<Incoming>, requester: &User) -> Result<Option<Impersonation>, Box<Response<Body>>> {
    let owned: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("impersonate-"))
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    if owned.is_empty() {
        return Ok(None);
    }
    let headers: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    impersonation::impersonation(requester, &headers).map_err(|e| Box::new(internal_error(&request_uri(req), &e)))
}

/// The user a request acts as when requests are not authorized: the authenticated user, or
/// the impersonated one (everything is allowed, as with upstream's `AlwaysAllow`).
pub fn acting_user(req: &Request<Incoming>) -> Result<User, Box<Response<Body>>> {
    if let Some(RequestUser(u)) = req.extensions().get::<RequestUser>() {
        return Ok(u.clone());
    }
    let requester = authenticated(req);
    Ok(impersonation_of(req, &requester)?.map_or(requester, |imp| imp.user))
}

/// Authorizes `attrs`, recording upstream's audit annotations; the 403 when not allowed.
/// `system:masters` is allowed first, as in the chain, without bringing the snapshot up to date.
fn decide(state: &State, attrs: &Attributes, verdict: &mut Verdict) -> bool {
    let decision = match authorize_privileged(attrs) {
        allow @ Decision::Allow { .. } => allow,
        Decision::NoOpinion { .. } => state.authz.authorize(attrs),
    };
    let allowed = decision.is_allowed();
    verdict.annotations.insert(DECISION_ANNOTATION.into(), if allowed { "allow" } else { "forbid" }.into());
    verdict.annotations.insert(REASON_ANNOTATION.into(), decision.reason().to_string());
    if !allowed {
        verdict.refused = Some(value_response(403, &forbidden_status(attrs, decision.reason())));
    }
    allowed
}

/// The authorization step of one request: on success the acting user ([`RequestUser`]) and,
/// for nodes, NodeRestriction's context are attached to the request.
pub fn authorize_request(state: &State, req: &mut Request<Incoming>) -> Verdict {
    let mut verdict = Verdict::default();
    let requester = authenticated(req);
    let user = match impersonation_of(req, &requester) {
        Err(resp) => return Verdict { refused: Some(*resp), ..verdict },
        Ok(None) => requester,
        Ok(Some(imp)) => {
            if !imp.checks.iter().all(|check| decide(state, check, &mut verdict)) {
                return verdict;
            }
            verdict.impersonated = Some(imp.user.to_user_info());
            imp.user
        }
    };
    let (method, path, query) = (req.method().as_str(), req.uri().path(), req.uri().query());
    let attrs = match Attributes::from_request(user.clone(), method, path, query) {
        Ok(a) => a,
        Err(e) => {
            let err = format!("failed to create RequestInfo: {e}");
            return Verdict { refused: Some(internal_error(&request_uri(req), &err)), ..verdict };
        }
    };
    if !decide(state, &attrs, &mut verdict) {
        return verdict;
    }
    if node_identity(&user).is_some() && attrs.is_resource_request {
        req.extensions_mut().insert(super::node_admission::NodeWrites::new(user.clone(), &attrs));
    }
    req.extensions_mut().insert(RequestUser(user));
    verdict
}
