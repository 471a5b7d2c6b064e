//! The access reviews: upstream's validation (pkg/apis/authorization/validation), the request
//! attributes of a review spec (`ResourceAttributesFrom`, `NonResourceAttributesFrom`) and the
//! decision written into `status`.

use serde_json::{Value, json};

use super::{AUTHORIZATION_GROUP, ReviewKind, ReviewRoute};
use crate::auth::{Attributes, Decision, User, go_quote};
use crate::error::{ApiError, ApiResult, Cause};
use crate::server::State;

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect()
}

fn invalid(field: &str, rendered: String, detail: &str) -> Cause {
    Cause { reason: "FieldValueInvalid", field: field.into(), message: format!("Invalid value: {rendered}: {detail}") }
}

/// Go's `%#v` of the internal `authorization.NonResourceAttributes`.
fn non_resource_go(spec: &Value) -> String {
    format!(
        "authorization.NonResourceAttributes{{Path:{}, Verb:{}}}",
        go_quote(text(spec, "/nonResourceAttributes/path")),
        go_quote(text(spec, "/nonResourceAttributes/verb"))
    )
}

fn present(spec: &Value, key: &str) -> bool {
    spec.get(key).is_some_and(Value::is_object)
}

/// Upstream's `Validate{Self,Local,}SubjectAccessReview` (object metadata is not checked).
fn validate(kind: ReviewKind, obj: &Value, spec: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let (resource, non_resource) = (present(spec, "resourceAttributes"), present(spec, "nonResourceAttributes"));
    if resource && non_resource {
        causes.push(invalid("spec.nonResourceAttributes", non_resource_go(spec), "cannot be specified in combination with resourceAttributes"));
    }
    if !resource && !non_resource {
        causes.push(invalid("spec.resourceAttributes", "\"null\"".into(), "exactly one of nonResourceAttributes or resourceAttributes must be specified"));
    }
    if kind == ReviewKind::SelfSubjectAccessReview {
        return causes;
    }
    if text(spec, "/user").is_empty() && strings(spec.get("groups")).is_empty() {
        causes.push(invalid("spec.user", go_quote(text(spec, "/user")), "at least one of user or group must be specified"));
    }
    if kind == ReviewKind::LocalSubjectAccessReview {
        let (want, got) = (text(obj, "/metadata/namespace"), text(spec, "/resourceAttributes/namespace"));
        if resource && want != got {
            causes.push(invalid("spec.resourceAttributes.namespace", go_quote(got), "must match metadata.namespace"));
        }
        if non_resource {
            causes.push(invalid("spec.nonResourceAttributes", non_resource_go(spec), "disallowed on this kind of request"));
        }
    }
    causes
}

/// Upstream's `NewInvalid` of a review: the decoded internal object has no kind, so the
/// message names `.authorization.k8s.io ""`.
fn invalid_review(causes: Vec<Cause>) -> ApiError {
    let mut e = ApiError::invalid(AUTHORIZATION_GROUP, &format!(".{AUTHORIZATION_GROUP}"), "", causes);
    if let Some(d) = e.details.as_mut().and_then(Value::as_object_mut) {
        d.remove("kind");
    }
    e
}

/// The user a (Local)SubjectAccessReview asks about.
fn spec_user(spec: &Value) -> User {
    let extra = spec
        .get("extra")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), strings(Some(v)))).collect())
        .unwrap_or_default();
    User { name: text(spec, "/user").into(), uid: text(spec, "/uid").into(), groups: strings(spec.get("groups")), extra }
}

/// Upstream's `fields.EscapeValue`.
fn escape_field_value(v: &str) -> String {
    v.replace('\\', "\\\\").replace(',', "\\,").replace('=', "\\=")
}

/// The field selector of resource attributes: the raw selector, else the requirements when
/// each is an `In`/`NotIn` of one value (otherwise, as upstream, none).
fn field_selector(attrs: &Value) -> Option<String> {
    let raw = text(attrs, "/fieldSelector/rawSelector");
    if !raw.is_empty() {
        return Some(raw.to_string());
    }
    let reqs = attrs.pointer("/fieldSelector/requirements").and_then(Value::as_array)?;
    let terms: Option<Vec<String>> = reqs
        .iter()
        .map(|r| {
            let values = strings(r.get("values"));
            let op = match (text(r, "/operator"), values.as_slice()) {
                ("In", [_]) => "=",
                ("NotIn", [_]) => "!=",
                _ => return None,
            };
            Some(format!("{}{op}{}", text(r, "/key"), escape_field_value(&values[0])))
        })
        .collect();
    terms.filter(|t| !t.is_empty()).map(|t| t.join(","))
}

/// Upstream's `ResourceAttributesFrom` / `NonResourceAttributesFrom`.
fn attributes(user: User, spec: &Value) -> Attributes {
    let Some(ra) = spec.get("resourceAttributes").filter(|v| v.is_object()) else {
        let path = text(spec, "/nonResourceAttributes/path").to_string();
        let verb = text(spec, "/nonResourceAttributes/verb").to_string();
        return Attributes { user, verb, path, is_resource_request: false, ..Attributes::default() };
    };
    let version = text(ra, "/version");
    let label = text(ra, "/labelSelector/rawSelector");
    Attributes {
        api_version: if version.is_empty() { "*".into() } else { version.into() },
        subresource: text(ra, "/subresource").into(),
        field_selector: field_selector(ra),
        label_selector: (!label.is_empty()).then(|| label.to_string()),
        ..Attributes::resource(
            user,
            text(ra, "/verb"),
            text(ra, "/group"),
            text(ra, "/resource"),
            text(ra, "/namespace"),
            text(ra, "/name"),
        )
    }
}

/// Upstream's SubjectAccessReview REST storages: validate, authorize the spec's attributes
/// for the requester (SelfSubjectAccessReview) or the spec's user, answer with `status`.
pub(super) fn access_review(state: &State, route: &ReviewRoute, requester: &User, mut obj: Value) -> ApiResult<Value> {
    if let Some(ns) = &route.namespace {
        match text(&obj, "/metadata/namespace") {
            "" => crate::api::set_in(&mut obj, &["metadata", "namespace"], json!(ns)),
            given if given == ns => {}
            _ => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
    }
    let spec = obj.get("spec").cloned().unwrap_or_else(|| json!({}));
    let causes = validate(route.kind, &obj, &spec);
    if !causes.is_empty() {
        return Err(invalid_review(causes));
    }
    let user = if route.kind == ReviewKind::SelfSubjectAccessReview { requester.clone() } else { spec_user(&spec) };
    let attrs = attributes(user, &spec);
    // Without authorization the server is kube-apiserver's `AlwaysAllow`: every review allows.
    let decision = if state.config.authorization { state.authz.authorize(&attrs) } else { Decision::allow("") };
    let mut status = json!({"allowed": decision.is_allowed()});
    if !decision.reason().is_empty() {
        status["reason"] = json!(decision.reason());
    }
    obj["status"] = status;
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_messages() {
        let e = invalid_review(validate(ReviewKind::SubjectAccessReview, &json!({}), &json!({})));
        assert_eq!(
            e.message,
            ".authorization.k8s.io \"\" is invalid: [spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified, spec.user: Invalid value: \"\": at least one of user or group must be specified]"
        );
        assert_eq!(e.details.as_ref().unwrap().get("kind"), None);
        let both = json!({"resourceAttributes": {}, "nonResourceAttributes": {"path": "/x", "verb": "get"}});
        let causes = validate(ReviewKind::SelfSubjectAccessReview, &json!({}), &both);
        assert_eq!(
            causes[0].message,
            "Invalid value: authorization.NonResourceAttributes{Path:\"/x\", Verb:\"get\"}: cannot be specified in combination with resourceAttributes"
        );
        let local = json!({"metadata": {"namespace": "a"}});
        let spec = json!({"user": "u", "resourceAttributes": {"namespace": "b"}});
        let causes = validate(ReviewKind::LocalSubjectAccessReview, &local, &spec);
        assert_eq!(causes[0].field, "spec.resourceAttributes.namespace");
        assert_eq!(causes[0].message, "Invalid value: \"b\": must match metadata.namespace");
    }

    #[test]
    fn attributes_of_a_spec() {
        let spec = json!({"user": "u", "groups": ["g"], "extra": {"k": ["v"]},
            "resourceAttributes": {"verb": "list", "resource": "pods", "namespace": "ns",
                "fieldSelector": {"requirements": [{"key": "spec.nodeName", "operator": "In", "values": ["a,b"]}]}}});
        let a = attributes(spec_user(&spec), &spec);
        assert!(a.is_resource_request);
        assert_eq!((a.verb.as_str(), a.resource.as_str(), a.namespace.as_str(), a.api_version.as_str()), ("list", "pods", "ns", "*"));
        assert_eq!(a.field_selector.as_deref(), Some("spec.nodeName=a\\,b"));
        assert_eq!((a.user.name.as_str(), a.user.groups.as_slice(), a.user.extra["k"].as_slice()), ("u", &["g".to_string()][..], &["v".to_string()][..]));
        let exists = json!({"resourceAttributes": {"fieldSelector": {"requirements": [{"key": "k", "operator": "Exists"}]}}});
        assert_eq!(attributes(User::default(), &exists).field_selector, None);
        let nr = attributes(User::default(), &json!({"nonResourceAttributes": {"path": "/healthz", "verb": "get"}}));
        assert!(!nr.is_resource_request);
        assert_eq!((nr.path.as_str(), nr.verb.as_str()), ("/healthz", "get"));
    }
}
