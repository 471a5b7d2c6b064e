//! The authorization attributes of a kubelet API request and the texts of the auth filter's
//! refusals, as upstream's kubelet builds them (kubernetes pkg/kubelet/server/auth.go
//! `GetRequestAttributes`, server.go `InstallAuthFilter`). Pure.
//!
//! Every request is a check of `<verb>` on `nodes/<subresource>` named after the node (group
//! "", version v1, no namespace). The verb comes from the HTTP method alone, so a WebSocket
//! upgrade (a GET) of /exec, /attach or /portForward is `get` and an SPDY one (a POST) is
//! `create`, as upstream. With `KubeletFineGrainedAuthz` (beta and on by default since 1.33)
//! /pods, /runningpods, /healthz, /configz and /statusz are first checked against their own
//! subresource and, when that is not allowed, against `proxy`.

use http::Method;

/// The resource every request is authorized against.
pub const RESOURCE: &str = "nodes";
/// The API version of the checks.
pub const API_VERSION: &str = "v1";
/// The body of a 401.
pub const UNAUTHORIZED: &str = "Unauthorized";

/// One check: `verb` on `nodes/<subresource>` named `name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceAttributes {
    pub verb: &'static str,
    pub subresource: &'static str,
    pub name: String,
    /// The decoded request path (upstream's `Path`; not part of a resource check).
    pub path: String,
}

/// Upstream's verb of an HTTP method: POST create, GET get, PUT update, PATCH patch, DELETE
/// delete, and "" for any other (HEAD, OPTIONS…), which no RBAC rule but `*` matches.
pub fn verb(method: &Method) -> &'static str {
    match *method {
        Method::POST => "create",
        Method::GET => "get",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "",
    }
}

/// Upstream's `isSubpath`: `path` is `prefix` (less a trailing slash) or below it.
fn is_subpath(path: &str, prefix: &str) -> bool {
    let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
    path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

/// The subresources checked for `path`, in order: the fine-grained one, if any, then the
/// coarse one (stats, metrics, log, checkpoint, else proxy).
pub fn subresources(path: &str) -> Vec<&'static str> {
    let mut out = Vec::with_capacity(2);
    let fine = [("/pods", "pods"), ("/healthz", "healthz"), ("/configz", "configz"), ("/statusz", "statusz"), ("/runningpods/", "pods")];
    if let Some((_, sub)) = fine.iter().find(|(prefix, _)| is_subpath(path, prefix)) {
        out.push(*sub);
    }
    let coarse = [("/stats/", "stats"), ("/metrics", "metrics"), ("/logs/", "log"), ("/checkpoint/", "checkpoint")];
    out.push(coarse.iter().find(|(prefix, _)| is_subpath(path, prefix)).map_or("proxy", |(_, sub)| *sub));
    out
}

/// Percent-decodes a request path as Go's `URL.Path` holds it (an invalid escape stays as
/// it is; bytes that are not UTF-8 become U+FFFD).
pub fn decode_path(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, ..) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The checks of a request for `method` `raw_path` on node `node`, tried in order until one
/// is allowed.
pub fn request_attributes(method: &Method, raw_path: &str, node: &str) -> Vec<ResourceAttributes> {
    let path = decode_path(raw_path);
    let verb = verb(method);
    subresources(&path)
        .into_iter()
        .map(|subresource| ResourceAttributes { verb, subresource, name: node.to_string(), path: path.clone() })
        .collect()
}

/// The body of a 403: every subresource tried, as Go prints a `[]string`.
pub fn forbidden(user: &str, verb: &str, subresources: &[&str]) -> String {
    format!("Forbidden (user={user}, verb={verb}, resource={RESOURCE}, subresource(s)=[{}])\n", subresources.join(" "))
}

/// The body of a 500 when the authorizer failed on one check.
pub fn authorization_error(user: &str, attrs: &ResourceAttributes) -> String {
    format!("Authorization error (user={user}, verb={}, resource={RESOURCE}, subresource={})", attrs.verb, attrs.subresource)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs(method: Method, path: &str) -> Vec<(&'static str, &'static str)> {
        request_attributes(&method, path, "node-a").into_iter().map(|a| (a.verb, a.subresource)).collect()
    }

    #[test]
    fn verbs_from_methods() {
        for (m, v) in [
            (Method::GET, "get"),
            (Method::POST, "create"),
            (Method::PUT, "update"),
            (Method::PATCH, "patch"),
            (Method::DELETE, "delete"),
            (Method::HEAD, ""),
            (Method::OPTIONS, ""),
            (Method::CONNECT, ""),
            (Method::TRACE, ""),
        ] {
            assert_eq!(verb(&m), v, "{m}");
        }
    }

    #[test]
    fn every_served_path_class() {
        let get = |p| subs(Method::GET, p);
        assert_eq!(get("/pods"), [("get", "pods"), ("get", "proxy")]);
        assert_eq!(get("/pods/"), [("get", "pods"), ("get", "proxy")]);
        assert_eq!(get("/runningpods/"), [("get", "pods"), ("get", "proxy")]);
        assert_eq!(get("/healthz"), [("get", "healthz"), ("get", "proxy")]);
        assert_eq!(get("/healthz/syncloop"), [("get", "healthz"), ("get", "proxy")]);
        assert_eq!(get("/configz"), [("get", "configz"), ("get", "proxy")]);
        assert_eq!(get("/statusz"), [("get", "statusz"), ("get", "proxy")]);
        assert_eq!(get("/stats/summary"), [("get", "stats")]);
        assert_eq!(get("/stats"), [("get", "stats")]);
        assert_eq!(get("/metrics"), [("get", "metrics")]);
        assert_eq!(get("/metrics/resource"), [("get", "metrics")]);
        assert_eq!(get("/metrics/probes"), [("get", "metrics")]);
        assert_eq!(get("/logs/syslog"), [("get", "log")]);
        assert_eq!(get("/checkpoint/ns/p/c"), [("get", "checkpoint")]);
        assert_eq!(get("/containerLogs/ns/p/c"), [("get", "proxy")]);
        assert_eq!(get("/exec/ns/p/c"), [("get", "proxy")]);
        assert_eq!(get("/attach/ns/p/c"), [("get", "proxy")]);
        assert_eq!(get("/portForward/ns/p"), [("get", "proxy")]);
        assert_eq!(get("/"), [("get", "proxy")]);
        assert_eq!(get("/nope"), [("get", "proxy")]);
    }

    #[test]
    fn prefixes_match_whole_segments() {
        assert_eq!(subs(Method::GET, "/podsx"), [("get", "proxy")]);
        assert_eq!(subs(Method::GET, "/healthzz"), [("get", "proxy")]);
        assert_eq!(subs(Method::GET, "/statsx/summary"), [("get", "proxy")]);
        assert_eq!(subs(Method::GET, "/metricsx"), [("get", "proxy")]);
        assert_eq!(subs(Method::GET, "/logs"), [("get", "log")]);
        assert_eq!(subs(Method::GET, "/runningpods"), [("get", "pods"), ("get", "proxy")]);
    }

    #[test]
    fn methods_keep_the_subresources() {
        assert_eq!(subs(Method::POST, "/run/ns/p/c"), [("create", "proxy")]);
        assert_eq!(subs(Method::POST, "/exec/ns/p/c"), [("create", "proxy")]);
        assert_eq!(subs(Method::POST, "/portForward/ns/p"), [("create", "proxy")]);
        assert_eq!(subs(Method::POST, "/stats/summary"), [("create", "stats")]);
        assert_eq!(subs(Method::PUT, "/pods"), [("update", "pods"), ("update", "proxy")]);
        assert_eq!(subs(Method::PATCH, "/configz"), [("patch", "configz"), ("patch", "proxy")]);
        assert_eq!(subs(Method::DELETE, "/metrics"), [("delete", "metrics")]);
        assert_eq!(subs(Method::HEAD, "/healthz"), [("", "healthz"), ("", "proxy")]);
    }

    #[test]
    fn paths_are_decoded_before_matching() {
        assert_eq!(decode_path("/%73tats/summary"), "/stats/summary");
        assert_eq!(subs(Method::GET, "/%73tats/summary"), [("get", "stats")]);
        assert_eq!(subs(Method::GET, "/pods%2F"), [("get", "pods"), ("get", "proxy")]);
        assert_eq!(decode_path("/a%zz/%4"), "/a%zz/%4");
        assert_eq!(decode_path("/%ff"), "/\u{fffd}");
    }

    #[test]
    fn attributes_name_the_node_and_keep_the_path() {
        let a = request_attributes(&Method::GET, "/stats/summary", "node-a");
        assert_eq!(a, [ResourceAttributes { verb: "get", subresource: "stats", name: "node-a".into(), path: "/stats/summary".into() }]);
    }

    #[test]
    fn upstream_texts() {
        assert_eq!(forbidden("bob", "get", &["pods", "proxy"]), "Forbidden (user=bob, verb=get, resource=nodes, subresource(s)=[pods proxy])\n");
        assert_eq!(forbidden("system:anonymous", "create", &["proxy"]), "Forbidden (user=system:anonymous, verb=create, resource=nodes, subresource(s)=[proxy])\n");
        let a = &request_attributes(&Method::GET, "/metrics", "n")[0];
        assert_eq!(authorization_error("bob", a), "Authorization error (user=bob, verb=get, resource=nodes, subresource=metrics)");
    }
}
