//! HTTP front: connection serving, request pipeline (partition, faults, body limits, audit) and routing.

pub mod admin;
pub mod authn;
pub mod authz;
pub mod connect;
pub mod translate;
pub mod events_v1;
pub mod handlers;
pub mod metrics;
pub mod node_admission;
pub mod rbac_escalation;
pub mod review;
pub mod scale;
pub mod token_request;
pub mod watch;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited, combinators::BoxBody};
use hyper::body::Incoming;

use crate::audit::{AuditEntry, UserInfo};
use crate::error::ApiError;
use crate::faults::RequestInfo;
use crate::resources::{self, ResourceId};
use crate::server::State;

pub type Body = BoxBody<Bytes, Infallible>;

pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

pub fn json_response(code: u16, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    r
}

pub fn value_response(code: u16, v: &serde_json::Value) -> Response<Body> {
    json_response(code, serde_json::to_vec(v).unwrap_or_default())
}

pub fn error_response(e: &ApiError) -> Response<Body> {
    value_response(e.code, &e.to_status())
}

/// A parsed API path.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    Version,
    Api,
    ApiV1,
    Apis,
    ApiGroup(String),
    ApiGroupVersion(String, String),
    Health,
    OpenApi,
    Resource(ResourceRoute),
    /// A subresource served by a kubelet.
    Connect(connect::Connect),
    /// A `metrics.k8s.io/v1beta1` resource.
    Metrics(metrics::MetricsRoute),
    /// An `authentication.k8s.io/v1` or `authorization.k8s.io/v1` review.
    Review(review::ReviewRoute),
    NotFound,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceRoute {
    pub res: ResourceId,
    /// Namespace from the path (None for cluster-scoped or all-namespaces).
    pub ns: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
    pub legacy_watch: bool,
}

fn resource_route(group: &str, version: &str, rest: &[&str]) -> Route {
    let (rest, legacy_watch) = match rest.first() {
        Some(&"watch") => (&rest[1..], true),
        _ => (rest, false),
    };
    if rest.is_empty() || rest.iter().any(|s| s.is_empty()) {
        return Route::NotFound;
    }
    let namespaced = rest[0] == "namespaces"
        && rest.len() >= 3
        && resources::lookup(group, version, rest[2]).is_some_and(|r| r.desc().namespaced);
    let (res, ns, tail) = if namespaced {
        match resources::lookup(group, version, rest[2]) {
            Some(r) => (r, Some(rest[1].to_string()), &rest[3..]),
            None => return Route::NotFound,
        }
    } else {
        match resources::lookup(group, version, rest[0]) {
            Some(r) => (r, None, &rest[1..]),
            None => return Route::NotFound,
        }
    };
    if tail.len() > 2 {
        return Route::NotFound;
    }
    let name = tail.first().map(|s| s.to_string());
    let sub = tail.get(1).map(|s| s.to_string());
    let desc = res.desc();
    if let Some(s) = &sub
        && !desc.subresources.contains(&s.as_str())
    {
        return Route::NotFound;
    }
    if desc.namespaced && ns.is_none() && name.is_some() {
        return Route::NotFound;
    }
    Route::Resource(ResourceRoute { res, ns, name, sub, legacy_watch })
}

/// Parse a request path.
pub fn route(path: &str) -> Route {
    let segs: Vec<&str> = path.trim_end_matches('/').trim_start_matches('/').split('/').collect();
    match segs.as_slice() {
        ["version"] => Route::Version,
        ["healthz"] | ["livez"] | ["readyz"] => Route::Health,
        ["openapi", ..] => Route::OpenApi,
        ["api"] => Route::Api,
        ["api", "v1"] => Route::ApiV1,
        ["api", "v1", rest @ ..] => match connect::route(rest, path) {
            Some(c) => Route::Connect(c),
            None => resource_route("", "v1", rest),
        },
        ["apis"] => Route::Apis,
        ["apis", g] => Route::ApiGroup(g.to_string()),
        ["apis", g, v] => Route::ApiGroupVersion(g.to_string(), v.to_string()),
        ["apis", metrics::api::GROUP, metrics::api::VERSION, rest @ ..] => metrics::api::route(rest).map_or(Route::NotFound, Route::Metrics),
        ["apis", g @ (review::AUTHENTICATION_GROUP | review::AUTHORIZATION_GROUP), "v1", rest @ ..] => {
            review::route(g, rest).map_or(Route::NotFound, Route::Review)
        }
        ["apis", g, v, rest @ ..] => resource_route(g, v, rest),
        _ => Route::NotFound,
    }
}

pub fn parse_query(q: &str) -> HashMap<String, String> {
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

pub fn is_true(q: &HashMap<String, String>, k: &str) -> bool {
    q.get(k).is_some_and(|v| v == "true" || v == "1")
}

/// The Kubernetes verb of a request.
pub fn verb_of(method: &Method, route: &Route, q: &HashMap<String, String>) -> &'static str {
    if let Route::Connect(_) = route {
        // Upstream's connect verbs: `create` for POST, `get` otherwise.
        return if *method == Method::POST { "create" } else { "get" };
    }
    if let Route::Metrics(m) = route {
        return metrics::verb(method, m, is_true(q, "watch"));
    }
    if let Route::Review(_) = route {
        return resource_verb(method, false, is_true(q, "watch"));
    }
    let Route::Resource(r) = route else {
        return match *method {
            Method::GET => "get",
            Method::POST => "post",
            Method::PUT => "put",
            Method::DELETE => "delete",
            Method::PATCH => "patch",
            _ => "other",
        };
    };
    match (method, r.name.is_some()) {
        (&Method::GET, true) if r.legacy_watch => "watch",
        (m, named) => resource_verb(m, named, r.legacy_watch || is_true(q, "watch")),
    }
}

/// The verb of a request on a resource path: collection or `named` object, `watch` asked.
pub fn resource_verb(method: &Method, named: bool, watch: bool) -> &'static str {
    match (method, named) {
        (&Method::GET, false) if watch => "watch",
        (&Method::GET, false) => "list",
        (&Method::GET, true) => "get",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => "unknown",
    }
}

/// Read a request body with the configured limit.
pub async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, ApiError> {
    match Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::too_large()),
        Err(e) => Err(ApiError::bad_request(format!("reading request body: {e}"))),
    }
}

/// Audit annotations a handler adds to its request's entry (e.g. TokenRequest's
/// `authentication.kubernetes.io/issued-credential-id`), carried as a response extension.
#[derive(Debug, Clone, Default)]
pub struct AuditAnnotations(pub std::collections::BTreeMap<String, String>);

/// What the audit entry of a request needs from its start.
struct RequestMeta {
    start: Instant,
    user: Option<UserInfo>,
    method: Method,
    path: String,
    query: String,
    content_type: String,
    user_agent: String,
}

impl RequestMeta {
    fn of(req: &Request<Incoming>) -> RequestMeta {
        let header = |n: http::header::HeaderName| req.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        RequestMeta {
            start: Instant::now(),
            user: req.extensions().get::<UserInfo>().cloned(),
            method: req.method().clone(),
            path: req.uri().path().to_string(),
            query: req.uri().query().unwrap_or("").to_string(),
            content_type: header(http::header::CONTENT_TYPE),
            user_agent: header(http::header::USER_AGENT),
        }
    }

    fn audit(self, verb: &str, code: u16, verdict: authz::Verdict) -> AuditEntry {
        AuditEntry {
            time: crate::api::now_micro(),
            verb: verb.to_string(),
            method: self.method.to_string(),
            path: self.path,
            query: self.query,
            content_type: self.content_type,
            user_agent: self.user_agent,
            code,
            latency_ms: self.start.elapsed().as_secs_f64() * 1000.0,
            user: self.user,
            impersonated_user: verdict.impersonated,
            annotations: verdict.annotations,
        }
    }
}

/// Handle one request end to end.
pub async fn handle(state: Arc<State>, mut req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    if req.uri().path().starts_with("/nodekit/") || req.uri().path() == "/nodekit" {
        return Ok(admin::handle(&state, req).await);
    }
    let mut meta = RequestMeta::of(&req);
    if state.faults.partitioned() {
        let mut rx = state.faults.partition_rx();
        tokio::select! {
            _ = rx.wait_for(|p| !*p) => {}
            _ = state.cancel.cancelled() => {}
        }
    }
    let q = parse_query(&meta.query);
    let route = route(&meta.path);
    let verb = verb_of(&meta.method, &route, &q);
    if let Err(refused) = authn::authenticate(&state, &mut req) {
        state.audit.record(meta.audit(verb, refused.status().as_u16(), authz::Verdict::default()));
        return Ok(*refused);
    }
    meta.user = req.extensions().get::<UserInfo>().cloned();
    let mut verdict = if state.config.authorization { authz::authorize_request(&state, &mut req) } else { authz::Verdict::default() };
    let mut resp = match verdict.refused.take() {
        Some(refused) => refused,
        None => serve(&state, req, &route, verb, &q).await,
    };
    if let Some(AuditAnnotations(extra)) = resp.extensions_mut().remove::<AuditAnnotations>() {
        verdict.annotations.extend(extra);
    }
    state.audit.record(meta.audit(verb, resp.status().as_u16(), verdict));
    Ok(resp)
}

/// Serves an authorized request: injected faults first, then the handler.
async fn serve(state: &Arc<State>, req: Request<Incoming>, route: &Route, verb: &str, q: &HashMap<String, String>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let (resource, subresource) = match route {
        Route::Resource(r) => (r.res.desc().plural, r.sub.clone().unwrap_or_default()),
        Route::Connect(c) => (c.resource().0, c.resource().1.to_string()),
        Route::Metrics(m) => (m.resource(), String::new()),
        Route::Review(r) => (r.kind.plural(), String::new()),
        _ => ("", String::new()),
    };
    let effect = state.faults.evaluate(&RequestInfo { verb, path: &path, resource, subresource: &subresource });
    if effect.latency_ms > 0 {
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_millis(effect.latency_ms)) => {}
            _ = state.cancel.cancelled() => {}
        }
    }
    let Some((code, msg)) = effect.error else {
        return handlers::dispatch(state, req, route, verb, q, effect.close_watch_after).await;
    };
    let reason = match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        410 => "Expired",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    };
    error_response(&ApiError::new(code, reason, msg))
}
