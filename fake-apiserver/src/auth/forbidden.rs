//! Upstream's authorization and authentication failure bodies: the 403 of
//! `responsewriters.Forbidden` (k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go)
//! built with `apierrors.NewForbidden`, the 401 of the authentication filter
//! (`apierrors.NewUnauthorized("Unauthorized")`) and `apierrors.NewNotFound`.

use serde_json::{Map, Value, json};

use super::attributes::Attributes;
use super::go_quote;

/// Upstream's `forbiddenMessage`: `User "x" cannot <verb> resource "<res>[/<sub>]" in API group
/// "<group>" [in the namespace "<ns>"|at the cluster scope]`, or `User "x" cannot <verb> path
/// "/p"` for non-resource requests.
pub fn forbidden_message(attrs: &Attributes) -> String {
    let user = go_quote(&attrs.user.name);
    if !attrs.is_resource_request {
        return format!("User {user} cannot {} path {}", attrs.verb, go_quote(&attrs.path));
    }
    let resource = go_quote(&attrs.combined_resource());
    let group = go_quote(&attrs.api_group);
    if attrs.namespace.is_empty() {
        format!("User {user} cannot {} resource {resource} in API group {group} at the cluster scope", attrs.verb)
    } else {
        let ns = go_quote(&attrs.namespace);
        format!("User {user} cannot {} resource {resource} in API group {group} in the namespace {ns}", attrs.verb)
    }
}

/// Upstream's HTML-escaping of the forbidden message (`&`, `<`, `>`).
fn sanitize(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The full 403 `Status` for a request no authorizer allowed: the sanitized forbidden message,
/// `: <reason>` when the reason is not empty, wrapped as upstream's `NewForbidden` of the
/// request's group/resource and name.
pub fn forbidden_status(attrs: &Attributes, reason: &str) -> Value {
    let msg = sanitize(&forbidden_message(attrs));
    let err = if reason.is_empty() { msg } else { format!("{msg}: {reason}") };
    new_forbidden(&attrs.api_group, &attrs.resource, &attrs.name, &err)
}

/// Upstream's `GroupResource.String()`: `resource` or `resource.group`.
fn group_resource(group: &str, resource: &str) -> String {
    if group.is_empty() { resource.to_string() } else { format!("{resource}.{group}") }
}

fn details(group: &str, kind: &str, name: &str) -> Value {
    let mut d = Map::new();
    for (key, value) in [("name", name), ("group", group), ("kind", kind)] {
        if !value.is_empty() {
            d.insert(key.into(), value.into());
        }
    }
    Value::Object(d)
}

fn status(message: String, reason: &str, details: Option<Value>, code: u16) -> Value {
    let mut s = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    });
    if let Some(d) = details {
        s["details"] = d;
    }
    s["code"] = code.into();
    s
}

/// Upstream's `apierrors.NewForbidden(groupResource, name, err)` as a `Status` (403): message
/// `forbidden: <err>` without a resource, `<gr> is forbidden: <err>` without a name, else
/// `<gr> "<name>" is forbidden: <err>`; details carry name, group and kind (= the resource).
pub fn new_forbidden(group: &str, resource: &str, name: &str, err: &str) -> Value {
    let message = if group.is_empty() && resource.is_empty() {
        format!("forbidden: {err}")
    } else if name.is_empty() {
        format!("{} is forbidden: {err}", group_resource(group, resource))
    } else {
        format!("{} {} is forbidden: {err}", group_resource(group, resource), go_quote(name))
    };
    status(message, "Forbidden", Some(details(group, resource, name)), 403)
}

/// Upstream's `apierrors.NewNotFound(groupResource, name)` as a `Status` (404):
/// `<gr> "<name>" not found`.
pub fn not_found_status(group: &str, resource: &str, name: &str) -> Value {
    let message = format!("{} {} not found", group_resource(group, resource), go_quote(name));
    status(message, "NotFound", Some(details(group, resource, name)), 404)
}

/// The 401 body for a request whose credentials do not authenticate.
pub fn unauthorized_status() -> Value {
    status("Unauthorized".into(), "Unauthorized", None, 401)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::user::User;

    fn attrs(verb: &str, group: &str, resource: &str, sub: &str, ns: &str, name: &str) -> Attributes {
        Attributes {
            subresource: sub.into(),
            ..Attributes::resource(User::new("bob", &[]), verb, group, resource, ns, name)
        }
    }

    #[test]
    fn namespaced_resource() {
        let s = forbidden_status(&attrs("list", "", "pods", "", "default", ""), "");
        assert_eq!(
            s,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": "pods is forbidden: User \"bob\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\"",
                   "reason": "Forbidden", "details": {"kind": "pods"}, "code": 403})
        );
    }

    #[test]
    fn named_grouped_subresource_with_reason() {
        let s = forbidden_status(&attrs("get", "apps", "deployments", "scale", "ns", "web"), "RBAC: something");
        assert_eq!(
            s["message"],
            "deployments.apps \"web\" is forbidden: User \"bob\" cannot get resource \"deployments/scale\" in API group \"apps\" in the namespace \"ns\": RBAC: something"
        );
        assert_eq!(s["details"], json!({"name": "web", "group": "apps", "kind": "deployments"}));
    }

    #[test]
    fn cluster_scope() {
        let s = forbidden_status(
            &attrs("get", "", "nodes", "", "", "node-b"),
            "node 'node-a' cannot read 'node-b', only its own Node object",
        );
        assert_eq!(
            s["message"],
            "nodes \"node-b\" is forbidden: User \"bob\" cannot get resource \"nodes\" in API group \"\" at the cluster scope: node 'node-a' cannot read 'node-b', only its own Node object"
        );
    }

    #[test]
    fn non_resource_path() {
        let a = Attributes {
            user: User::new("system:anonymous", &[]),
            verb: "get".into(),
            path: "/foo".into(),
            ..Attributes::default()
        };
        let s = forbidden_status(&a, "");
        assert_eq!(s["message"], "forbidden: User \"system:anonymous\" cannot get path \"/foo\"");
        assert_eq!(s["details"], json!({}));
        assert_eq!(s["code"], 403);
    }

    #[test]
    fn message_is_sanitized_but_reason_is_not() {
        let a =
            Attributes { user: User::new("<b>&", &[]), verb: "get".into(), path: "/x".into(), ..Attributes::default() };
        assert_eq!(
            forbidden_status(&a, "a<b")["message"],
            "forbidden: User \"&lt;b&gt;&amp;\" cannot get path \"/x\": a<b"
        );
    }

    #[test]
    fn unauthorized_and_not_found() {
        assert_eq!(
            unauthorized_status(),
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
        );
        let nf = not_found_status("", "pod", "x");
        assert_eq!(nf["message"], "pod \"x\" not found");
        assert_eq!(nf["reason"], "NotFound");
        assert_eq!(nf["code"], 404);
    }
}
