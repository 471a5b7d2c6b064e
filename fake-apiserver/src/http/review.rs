//! The review APIs (create only, nothing stored): `authentication.k8s.io/v1`
//! SelfSubjectReview (`kubectl auth whoami`) and TokenReview, and `authorization.k8s.io/v1`
//! SelfSubjectAccessReview (`kubectl auth can-i`), SubjectAccessReview and namespaced
//! LocalSubjectAccessReview, answered as upstream's REST storage does: the acting user's
//! UserInfo, or the decision of [`crate::auth::authorize`] over the current policy. They
//! answer with or without [`crate::Config::authorization`].

use std::sync::Arc;

use http::{Method, Request, Response};
use hyper::body::Incoming;
use serde_json::{Map, Value, json};

use super::{Body, read_body, value_response};
use crate::auth::User;
use crate::error::{ApiError, ApiResult};
use crate::server::State;

/// `authentication.k8s.io`.
pub const AUTHENTICATION_GROUP: &str = "authentication.k8s.io";
/// `authorization.k8s.io`.
pub const AUTHORIZATION_GROUP: &str = "authorization.k8s.io";
/// The served review groups, each at `v1`.
pub const GROUPS: [(&str, &str); 2] = [(AUTHENTICATION_GROUP, "v1"), (AUTHORIZATION_GROUP, "v1")];

/// A review kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewKind {
    SelfSubjectReview,
    TokenReview,
    SelfSubjectAccessReview,
    SubjectAccessReview,
    LocalSubjectAccessReview,
}

/// (group, kind, plural, namespaced) of every review kind.
const KINDS: [(ReviewKind, &str, &str, &str, bool); 5] = [
    (ReviewKind::SelfSubjectReview, AUTHENTICATION_GROUP, "SelfSubjectReview", "selfsubjectreviews", false),
    (ReviewKind::TokenReview, AUTHENTICATION_GROUP, "TokenReview", "tokenreviews", false),
    (ReviewKind::LocalSubjectAccessReview, AUTHORIZATION_GROUP, "LocalSubjectAccessReview", "localsubjectaccessreviews", true),
    (ReviewKind::SelfSubjectAccessReview, AUTHORIZATION_GROUP, "SelfSubjectAccessReview", "selfsubjectaccessreviews", false),
    (ReviewKind::SubjectAccessReview, AUTHORIZATION_GROUP, "SubjectAccessReview", "subjectaccessreviews", false),
];

impl ReviewKind {
    fn entry(self) -> (ReviewKind, &'static str, &'static str, &'static str, bool) {
        KINDS.into_iter().find(|k| k.0 == self).unwrap_or(KINDS[0])
    }
    /// The kind's name, e.g. `SelfSubjectAccessReview`.
    pub fn kind(self) -> &'static str {
        self.entry().2
    }
    /// The resource, e.g. `selfsubjectaccessreviews`.
    pub fn plural(self) -> &'static str {
        self.entry().3
    }
    fn api_version(self) -> String {
        format!("{}/v1", self.entry().1)
    }
}

/// A review path: the kind and, for LocalSubjectAccessReviews, the namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewRoute {
    pub kind: ReviewKind,
    pub namespace: Option<String>,
}

/// Recognises the path segments after `/apis/<group>/v1/`.
pub fn route(group: &str, rest: &[&str]) -> Option<ReviewRoute> {
    let (namespace, plural) = match rest {
        [plural] => (None, *plural),
        ["namespaces", ns, plural] if !ns.is_empty() => (Some(ns.to_string()), *plural),
        _ => return None,
    };
    let (kind, ..) = KINDS.into_iter().find(|(_, g, _, p, namespaced)| *g == group && *p == plural && *namespaced == namespace.is_some())?;
    Some(ReviewRoute { kind, namespace })
}

/// The APIResourceList of a review group/version (`create` only, as upstream), if served.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    if version != "v1" || !GROUPS.iter().any(|(g, _)| *g == group) {
        return None;
    }
    let resources: Vec<Value> = KINDS
        .iter()
        .filter(|(_, g, ..)| *g == group)
        .map(|(_, _, kind, plural, namespaced)| {
            let singular = plural.trim_end_matches('s');
            json!({"name": plural, "singularName": singular, "namespaced": namespaced, "kind": kind, "verbs": ["create"]})
        })
        .collect();
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": format!("{group}/{version}"), "resources": resources}))
}

/// Serves one review request.
pub async fn handle(state: &Arc<State>, req: Request<Incoming>, route: &ReviewRoute) -> ApiResult<Response<Body>> {
    if req.method() != Method::POST {
        return Err(ApiError::method_not_allowed(&req.method().as_str().to_lowercase()));
    }
    let user = match super::authz::acting_user(&req) {
        Ok(u) => u,
        Err(resp) => return Ok(*resp),
    };
    let ct = req.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let body = read_body(req.into_body(), state.config.max_body_bytes).await?;
    if body.is_empty() {
        return Err(ApiError::bad_request("the body of the request was empty"));
    }
    let mut obj = crate::patch::decode_body(&ct, &body)?;
    check_type(route.kind, &mut obj)?;
    let out = match route.kind {
        ReviewKind::SelfSubjectReview => self_subject_review(&user),
        ReviewKind::TokenReview => token_review(state, obj)?,
        _ => access_review(state, route, &user, obj)?,
    };
    Ok(value_response(201, &out))
}

/// Checks (and fills in) apiVersion and kind, as the decoder does.
fn check_type(kind: ReviewKind, obj: &mut Value) -> ApiResult<()> {
    fill_type(obj, &kind.api_version(), kind.kind())
}

/// Checks that a request body is an object whose apiVersion and kind, where given, are
/// `api_version` and `kind`, and fills in the missing ones (the decoder's check).
pub(crate) fn fill_type(obj: &mut Value, api_version: &str, kind: &str) -> ApiResult<()> {
    let Some(m) = obj.as_object_mut() else {
        return Err(ApiError::bad_request("the body of the request must be a JSON or YAML object"));
    };
    for (key, want) in [("apiVersion", api_version), ("kind", kind)] {
        match m.get(key) {
            None | Some(Value::Null) => {
                m.insert(key.into(), json!(want));
            }
            Some(Value::String(s)) if s == want => {}
            Some(other) => {
                let got = other.as_str().map_or_else(|| other.to_string(), str::to_string);
                return Err(ApiError::bad_request(format!("{key} {got:?} does not match the expected {want:?}")));
            }
        }
    }
    Ok(())
}

/// Upstream's `authentication.k8s.io/v1` UserInfo of `user`: name, and uid, groups and extra
/// when set.
fn user_info(user: &User) -> Map<String, Value> {
    let mut info = Map::new();
    info.insert("username".into(), json!(user.name));
    if !user.uid.is_empty() {
        info.insert("uid".into(), json!(user.uid));
    }
    if !user.groups.is_empty() {
        info.insert("groups".into(), json!(user.groups));
    }
    if !user.extra.is_empty() {
        info.insert("extra".into(), json!(user.extra));
    }
    info
}

/// Upstream's SelfSubjectReview: the acting user's name, uid, groups and extra.
fn self_subject_review(user: &User) -> Value {
    json!({
        "kind": "SelfSubjectReview",
        "apiVersion": format!("{AUTHENTICATION_GROUP}/v1"),
        "metadata": {"creationTimestamp": crate::api::now_rfc3339()},
        "status": {"userInfo": user_info(user)},
    })
}

/// Upstream's TokenReview (`pkg/registry/authentication/tokenreview/storage.go`): the spec's
/// token authenticated by the server's token authenticators ([`super::authn::authenticate_token`]:
/// the static token file, then ServiceAccount tokens) for the requested audiences (the API's
/// own, `--api-audiences`, when none are asked for); `status.audiences` are those the token
/// was accepted for, `status.error` upstream's reason when it was not.
fn token_review(state: &State, mut obj: Value) -> ApiResult<Value> {
    let token = obj.pointer("/spec/token").and_then(Value::as_str).unwrap_or_default().to_string();
    if token.is_empty() {
        return Err(ApiError::bad_request("token is required for TokenReview in authentication"));
    }
    let requested: Vec<String> = match obj.pointer("/spec/audiences") {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    };
    let status = match super::authn::authenticate_token(state, &token, Some(&requested)) {
        Ok(accepted) => json!({"authenticated": true, "user": user_info(&accepted.user), "audiences": accepted.audiences}),
        Err(reason) => json!({"user": {}, "error": reason}),
    };
    if let Some(m) = obj.as_object_mut() {
        m.insert("metadata".into(), json!({"creationTimestamp": crate::api::now_rfc3339()}));
        m.insert("status".into(), status);
    }
    Ok(obj)
}

#[path = "review_access.rs"]
mod access;

use access::access_review;

#[cfg(test)]
#[path = "review_tests.rs"]
mod tests;
