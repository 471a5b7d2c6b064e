//! Request attributes for authorization: upstream's `RequestInfoFactory.NewRequestInfo`
//! (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go) and `authorizer.AttributesRecord`,
//! plus the field selector grammar (k8s.io/apimachinery/pkg/fields) the Node authorizer reads.
//!
//! API prefixes are upstream's kube-apiserver ones: `api` (groupless) and `apis`.

use super::user::User;

/// Verbs given by a path prefix (`/api/v1/watch/...`, `/api/v1/proxy/...`).
const SPECIAL_VERBS: [&str; 2] = ["proxy", "watch"];
/// Subresources of a namespace (`/api/v1/namespaces/{ns}/status`), not namespaced resources.
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];
/// Verbs whose requests carry label and field selectors.
const VERBS_WITH_SELECTORS: [&str; 3] = ["list", "watch", "deletecollection"];

/// Why a request's attributes cannot be determined (upstream answers 500 Internal Error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestInfoError {
    /// `/api/v1/watch` or `/api/v1/proxy` without anything after the verb.
    #[error("unable to determine kind and namespace from url, {url}")]
    NoKind { url: String },
}

/// What an HTTP request asks for, in Kubernetes terms (upstream's `RequestInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// Whether this is a request for an API resource (else a non-resource URL such as `/version`).
    pub is_resource_request: bool,
    /// The URL path.
    pub path: String,
    /// The Kubernetes verb (get, list, watch, create, …); for non-resource requests the lowercase
    /// HTTP method.
    pub verb: String,
    pub api_prefix: String,
    pub api_group: String,
    pub api_version: String,
    pub namespace: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    /// Path parts starting at the resource: `{resource}/{name}/{subresource}/…`.
    pub parts: Vec<String>,
    /// The raw `fieldSelector` of list, watch and deletecollection requests.
    pub field_selector: Option<String>,
    /// The raw `labelSelector` of list, watch and deletecollection requests.
    pub label_selector: Option<String>,
}

/// Everything an authorizer decides on (upstream's `authorizer.AttributesRecord`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    pub user: User,
    pub verb: String,
    pub api_group: String,
    pub api_version: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    pub namespace: String,
    pub is_resource_request: bool,
    pub path: String,
    pub field_selector: Option<String>,
    pub label_selector: Option<String>,
}

impl Attributes {
    /// The attributes of a request by `user` described by `info`.
    pub fn new(user: User, info: &RequestInfo) -> Attributes {
        Attributes {
            user,
            verb: info.verb.clone(),
            api_group: info.api_group.clone(),
            api_version: info.api_version.clone(),
            resource: info.resource.clone(),
            subresource: info.subresource.clone(),
            name: info.name.clone(),
            namespace: info.namespace.clone(),
            is_resource_request: info.is_resource_request,
            path: info.path.clone(),
            field_selector: info.field_selector.clone(),
            label_selector: info.label_selector.clone(),
        }
    }

    /// Resolves `method path?query` and attaches `user`: [`request_info`] then [`Attributes::new`].
    pub fn from_request(
        user: User,
        method: &str,
        path: &str,
        query: Option<&str>,
    ) -> Result<Attributes, RequestInfoError> {
        Ok(Attributes::new(user, &request_info(method, path, query)?))
    }

    /// A resource request attribute set (handy for checks that do not come from a URL).
    pub fn resource(user: User, verb: &str, group: &str, resource: &str, namespace: &str, name: &str) -> Attributes {
        Attributes {
            user,
            verb: verb.into(),
            api_group: group.into(),
            resource: resource.into(),
            namespace: namespace.into(),
            name: name.into(),
            is_resource_request: true,
            ..Attributes::default()
        }
    }

    /// The parsed field selector requirements; empty when there is no selector or it does not
    /// parse (upstream ignores the parse error for authorization: nothing is required).
    pub fn field_requirements(&self) -> Vec<FieldRequirement> {
        self.field_selector.as_deref().and_then(|s| parse_field_selector(s).ok()).unwrap_or_default()
    }

    /// `resource` or `resource/subresource`.
    pub fn combined_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }
}

/// Upstream's `NewRequestInfo`: derives the Kubernetes verb, group, version, namespace,
/// resource, subresource and name from an HTTP method, path and raw query string.
pub fn request_info(method: &str, path: &str, query: Option<&str>) -> Result<RequestInfo, RequestInfoError> {
    let mut info = RequestInfo { path: path.to_string(), verb: method.to_lowercase(), ..RequestInfo::default() };
    let all = split_path(path);
    // Resource paths: /api/{version}/... (at least 3 parts), /apis/{group}/{version}/... (4).
    let (prefix, group, version, mut cur) = match all.as_slice() {
        ["api", version, rest @ ..] if !rest.is_empty() => ("api", "", *version, rest),
        ["apis", group, version, rest @ ..] if !rest.is_empty() => ("apis", *group, *version, rest),
        _ => return Ok(info),
    };
    info.api_prefix = prefix.to_string();
    info.api_group = group.to_string();
    info.api_version = version.to_string();
    info.is_resource_request = true;

    let verb_via_path = cur.first().is_some_and(|v| SPECIAL_VERBS.contains(v));
    if verb_via_path {
        let [verb, rest @ ..] = cur else { return Ok(info) };
        if rest.is_empty() {
            let url = match query {
                Some(q) => format!("{path}?{q}"),
                None => path.to_string(),
            };
            return Err(RequestInfoError::NoKind { url });
        }
        info.verb = verb.to_string();
        cur = rest;
    } else {
        info.verb = method_verb(method).to_string();
    }

    if let ["namespaces", namespace, rest @ ..] = cur {
        info.namespace = namespace.to_string();
        if rest.first().is_some_and(|next| !NAMESPACE_SUBRESOURCES.contains(next)) {
            cur = rest;
        }
    }
    info.parts = cur.iter().map(|s| s.to_string()).collect();
    if let Some(sub) = info.parts.get(2).filter(|_| info.verb != "proxy") {
        info.subresource = sub.clone();
    }
    info.name = info.parts.get(1).cloned().unwrap_or_default();
    info.resource = info.parts.first().cloned().unwrap_or_default();
    let params = QueryParams::parse(query.unwrap_or(""));
    refine_collection_verb(&mut info, &params);
    if !verb_via_path && VERBS_WITH_SELECTORS.contains(&info.verb.as_str()) {
        info.field_selector = params.first("fieldSelector").map(str::to_string);
        info.label_selector = params.first("labelSelector").map(str::to_string);
    }
    Ok(info)
}

/// The verb of a resource request from its HTTP method (before list/watch/deletecollection).
fn method_verb(method: &str) -> &'static str {
    match method {
        "POST" => "create",
        "GET" | "HEAD" => "get",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => "delete",
        _ => "",
    }
}

/// A get without a name is a list or a watch (a `metadata.name` field selector then names the
/// object); a delete without a name is a deletecollection.
fn refine_collection_verb(info: &mut RequestInfo, params: &QueryParams) {
    if info.name.is_empty() && info.verb == "get" {
        let watch = params.first("watch").is_some_and(go_bool);
        info.verb = if watch { "watch" } else { "list" }.to_string();
        if list_options_decode(params) {
            let name = params
                .first("fieldSelector")
                .and_then(|s| parse_field_selector(s).ok())
                .and_then(|reqs| requires_exact_match(&reqs, "metadata.name"));
            if let Some(name) = name.filter(|n| is_valid_path_segment_name(n)) {
                info.name = name;
            }
        }
    }
    if info.name.is_empty() && info.verb == "delete" {
        info.verb = "deletecollection".to_string();
    }
}

/// Upstream's query-to-bool conversion: any first value other than `false`/`0` is true.
fn go_bool(v: &str) -> bool {
    !matches!(v.to_lowercase().as_str(), "false" | "0")
}

/// Whether the query decodes as `ListOptions` (selectors parse, integers are integers).
fn list_options_decode(params: &QueryParams) -> bool {
    let field_ok = params.first("fieldSelector").is_none_or(|s| parse_field_selector(s).is_ok());
    let label_ok = params.first("labelSelector").is_none_or(|s| crate::selectors::LabelSelector::parse(s).is_ok());
    let ints_ok = ["timeoutSeconds", "limit"].iter().all(|k| params.first(k).is_none_or(|v| v.parse::<i64>().is_ok()));
    field_ok && label_ok && ints_ok
}

/// Upstream's `IsValidPathSegmentName`: not `.` or `..`, and no `/` or `%`.
fn is_valid_path_segment_name(name: &str) -> bool {
    name != "." && name != ".." && !name.contains(['/', '%'])
}

/// Upstream's `splitPath`: trim slashes, split on `/`.
fn split_path(path: &str) -> Vec<&str> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() { Vec::new() } else { trimmed.split('/').collect() }
}

/// Decoded query parameters, in order.
struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    fn parse(query: &str) -> QueryParams {
        QueryParams(form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
    }

    fn first(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// A field selector operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldOperator {
    /// `=` or `==`.
    Equals,
    /// `!=`.
    NotEquals,
}

/// One `field<op>value` term of a field selector (value unescaped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub operator: FieldOperator,
    pub value: String,
}

/// Why a field selector does not parse; texts as upstream's `fields.ParseSelector`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldSelectorError {
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    Term { selector: String, term: String },
    #[error("invalid field selector value: invalid escape sequence: {0}")]
    InvalidEscape(String),
    #[error("invalid field selector value: unescaped character: {0}")]
    Unescaped(char),
}

/// Upstream's `fields.ParseSelector`: comma-separated `field=value`, `field==value` and
/// `field!=value` terms (sorted, as upstream), `\` escaping `\`, `,` and `=` in values.
pub fn parse_field_selector(selector: &str) -> Result<Vec<FieldRequirement>, FieldSelectorError> {
    let mut terms = split_terms(selector);
    terms.sort_unstable();
    let mut reqs = Vec::new();
    for term in terms.into_iter().filter(|t| !t.is_empty()) {
        let (field, operator, raw) = split_term(term)
            .ok_or_else(|| FieldSelectorError::Term { selector: selector.to_string(), term: term.to_string() })?;
        reqs.push(FieldRequirement { field: field.to_string(), operator, value: unescape_field_value(raw)? });
    }
    Ok(reqs)
}

/// The value a selector requires `field` to equal, if any (upstream's `RequiresExactMatch`).
pub fn requires_exact_match(reqs: &[FieldRequirement], field: &str) -> Option<String> {
    reqs.iter().find(|r| r.field == field && r.operator == FieldOperator::Equals).map(|r| r.value.clone())
}

fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let (mut start, mut in_slash) = (0, false);
    for (i, c) in selector.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    const OPS: [(&str, FieldOperator); 3] =
        [("!=", FieldOperator::NotEquals), ("==", FieldOperator::Equals), ("=", FieldOperator::Equals)];
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        if let Some((op, kind)) = OPS.iter().find(|(op, _)| rest.starts_with(op)) {
            return Some((&term[..i], *kind, &rest[op.len()..]));
        }
    }
    None
}

fn unescape_field_value(s: &str) -> Result<String, FieldSelectorError> {
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(FieldSelectorError::InvalidEscape(format!("\\{c}")));
            }
            out.push(c);
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' || c == '=' {
            return Err(FieldSelectorError::Unescaped(c));
        } else {
            out.push(c);
        }
    }
    if in_slash {
        return Err(FieldSelectorError::InvalidEscape("\\".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(method: &str, url: &str) -> RequestInfo {
        let (path, query) = match url.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (url, None),
        };
        request_info(method, path, query).unwrap()
    }

    /// Upstream's TestGetAPIRequestInfo table.
    #[test]
    fn upstream_request_info_table() {
        type Case<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str, &'a str, &'a str, &'a str, &'a str);
        #[rustfmt::skip]
        let cases: &[Case] = &[
            // method, url, verb, prefix, group, version, namespace, resource, subresource+name
            ("GET", "/api/v1/namespaces", "list", "api", "", "v1", "", "namespaces", "|"),
            ("GET", "/api/v1/namespaces/other", "get", "api", "", "v1", "other", "namespaces", "|other"),
            ("GET", "/api/v1/namespaces/other/pods", "list", "api", "", "v1", "other", "pods", "|"),
            ("GET", "/api/v1/namespaces/other/pods/foo", "get", "api", "", "v1", "other", "pods", "|foo"),
            ("HEAD", "/api/v1/namespaces/other/pods/foo", "get", "api", "", "v1", "other", "pods", "|foo"),
            ("GET", "/api/v1/pods", "list", "api", "", "v1", "", "pods", "|"),
            ("HEAD", "/api/v1/pods", "list", "api", "", "v1", "", "pods", "|"),
            ("GET", "/api/v1/namespaces/other/pods/foo", "get", "api", "", "v1", "other", "pods", "|foo"),
            ("GET", "/api/v1/namespaces/other/pods", "list", "api", "", "v1", "other", "pods", "|"),
            // special verbs
            ("GET", "/api/v1/proxy/namespaces/other/pods/foo", "proxy", "api", "", "v1", "other", "pods", "|foo"),
            ("GET", "/api/v1/proxy/namespaces/other/pods/foo/subpath/not/a/subresource", "proxy", "api", "", "v1", "other", "pods", "|foo"),
            ("GET", "/api/v1/watch/pods", "watch", "api", "", "v1", "", "pods", "|"),
            ("GET", "/api/v1/pods?watch=true", "watch", "api", "", "v1", "", "pods", "|"),
            ("GET", "/api/v1/pods?watch=false", "list", "api", "", "v1", "", "pods", "|"),
            ("GET", "/api/v1/watch/namespaces/other/pods", "watch", "api", "", "v1", "other", "pods", "|"),
            ("GET", "/api/v1/namespaces/other/pods?watch=1", "watch", "api", "", "v1", "other", "pods", "|"),
            ("GET", "/api/v1/namespaces/other/pods?watch=0", "list", "api", "", "v1", "other", "pods", "|"),
            // subresource identification
            ("GET", "/api/v1/namespaces/other/pods/foo/status", "get", "api", "", "v1", "other", "pods", "status|foo"),
            ("GET", "/api/v1/namespaces/other/pods/foo/proxy/subpath", "get", "api", "", "v1", "other", "pods", "proxy|foo"),
            ("PUT", "/api/v1/namespaces/other/finalize", "update", "api", "", "v1", "other", "namespaces", "finalize|other"),
            ("PUT", "/api/v1/namespaces/other/status", "update", "api", "", "v1", "other", "namespaces", "status|other"),
            // verb identification
            ("PATCH", "/api/v1/namespaces/other/pods/foo", "patch", "api", "", "v1", "other", "pods", "|foo"),
            ("DELETE", "/api/v1/namespaces/other/pods/foo", "delete", "api", "", "v1", "other", "pods", "|foo"),
            ("POST", "/api/v1/namespaces/other/pods", "create", "api", "", "v1", "other", "pods", "|"),
            // deletecollection verb identification
            ("DELETE", "/api/v1/nodes", "deletecollection", "api", "", "v1", "", "nodes", "|"),
            ("DELETE", "/api/v1/namespaces", "deletecollection", "api", "", "v1", "", "namespaces", "|"),
            ("DELETE", "/api/v1/namespaces/other/pods", "deletecollection", "api", "", "v1", "other", "pods", "|"),
            ("DELETE", "/apis/extensions/v1/namespaces/other/pods", "deletecollection", "apis", "extensions", "v1", "other", "pods", "|"),
            // api group identification
            ("POST", "/apis/extensions/v1/namespaces/other/pods", "create", "apis", "extensions", "v1", "other", "pods", "|"),
            // api version identification
            ("POST", "/apis/extensions/v1beta3/namespaces/other/pods", "create", "apis", "extensions", "v1beta3", "other", "pods", "|"),
            // metadata.name field selector names the object
            ("GET", "/api/v1/namespaces/other/pods?fieldSelector=metadata.name%3Dfoo", "list", "api", "", "v1", "other", "pods", "|foo"),
            ("GET", "/api/v1/namespaces/other/pods?watch=true&fieldSelector=metadata.name%3D%3Dfoo", "watch", "api", "", "v1", "other", "pods", "|foo"),
            ("GET", "/api/v1/namespaces/other/pods?fieldSelector=metadata.name%21%3Dfoo", "list", "api", "", "v1", "other", "pods", "|"),
            ("GET", "/api/v1/namespaces/other/pods?fieldSelector=metadata.name%3Dfoo&limit=abc", "list", "api", "", "v1", "other", "pods", "|"),
            ("GET", "/api/v1/namespaces/other/pods?fieldSelector=metadata.name%3D..", "list", "api", "", "v1", "other", "pods", "|"),
        ];
        for (method, url, verb, prefix, group, version, ns, resource, sub_name) in cases {
            let got = info(method, url);
            let (sub, name) = sub_name.split_once('|').unwrap();
            let want = (true, *verb, *prefix, *group, *version, *ns, *resource, sub, name);
            let have = (
                got.is_resource_request,
                got.verb.as_str(),
                got.api_prefix.as_str(),
                got.api_group.as_str(),
                got.api_version.as_str(),
                got.namespace.as_str(),
                got.resource.as_str(),
                got.subresource.as_str(),
                got.name.as_str(),
            );
            assert_eq!(have, want, "{method} {url}");
        }
    }

    #[test]
    fn non_resource_requests() {
        for (method, path, verb) in [
            ("GET", "/", "get"),
            ("GET", "/version", "get"),
            ("GET", "/healthz", "get"),
            ("GET", "/api", "get"),
            ("GET", "/api/v1", "get"),
            ("GET", "/apis", "get"),
            ("GET", "/apis/apps", "get"),
            ("GET", "/apis/apps/v1", "get"),
            ("GET", "/openapi/v3/apis/apps/v1", "get"),
            ("POST", "/foo/bar/baz", "post"),
            ("HEAD", "/livez", "head"),
        ] {
            let got = info(method, path);
            assert!(!got.is_resource_request, "{path}");
            assert_eq!((got.verb.as_str(), got.path.as_str()), (verb, path));
        }
    }

    #[test]
    fn special_verb_without_resource_is_an_error() {
        let err = request_info("GET", "/api/v1/watch", Some("x=1")).unwrap_err();
        assert_eq!(err.to_string(), "unable to determine kind and namespace from url, /api/v1/watch?x=1");
        assert!(request_info("GET", "/api/v1/proxy", None).is_err());
    }

    #[test]
    fn selectors_are_kept_for_collection_verbs_only() {
        let got = info("GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a&labelSelector=app%3Dx");
        assert_eq!(got.field_selector.as_deref(), Some("spec.nodeName=node-a"));
        assert_eq!(got.label_selector.as_deref(), Some("app=x"));
        let named = info("GET", "/api/v1/namespaces/ns/pods/p?fieldSelector=spec.nodeName%3Dnode-a");
        assert_eq!(named.field_selector, None);
        let via_path = info("GET", "/api/v1/watch/pods?fieldSelector=spec.nodeName%3Dnode-a");
        assert_eq!(via_path.field_selector, None);
        let delete = info("DELETE", "/api/v1/namespaces/ns/pods?labelSelector=a%3Db");
        assert_eq!(delete.label_selector.as_deref(), Some("a=b"));
    }

    #[test]
    fn unknown_method_has_empty_verb() {
        assert_eq!(info("OPTIONS", "/api/v1/pods/x").verb, "");
    }

    #[test]
    fn field_selector_grammar() {
        let reqs = parse_field_selector("spec.nodeName=node-a,status.phase!=Failed").unwrap();
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[0].field, "spec.nodeName");
        assert_eq!(reqs[0].operator, FieldOperator::Equals);
        assert_eq!(reqs[1].operator, FieldOperator::NotEquals);
        assert_eq!(requires_exact_match(&reqs, "spec.nodeName").as_deref(), Some("node-a"));
        assert_eq!(requires_exact_match(&reqs, "status.phase"), None);
        let escaped = parse_field_selector(r"a==x\,y\=z\\").unwrap();
        assert_eq!(escaped[0].value, r"x,y=z\");
        assert_eq!(parse_field_selector("").unwrap(), vec![]);
        let err = parse_field_selector("abc").unwrap_err();
        assert_eq!(err.to_string(), "invalid selector: 'abc'; can't understand 'abc'");
        assert!(parse_field_selector(r"a=b\x").is_err());
        assert!(parse_field_selector(r"a=b\").is_err());
        assert!(parse_field_selector("a=b=c").is_err());
    }

    #[test]
    fn attributes_from_request() {
        let user = User::new("alice", &[]);
        let attrs = Attributes::from_request(user, "GET", "/api/v1/namespaces/ns/pods/p/log", None).unwrap();
        assert_eq!(attrs.combined_resource(), "pods/log");
        assert_eq!(attrs.name, "p");
        let list =
            Attributes::from_request(User::default(), "GET", "/api/v1/pods", Some("fieldSelector=x%3D1")).unwrap();
        assert_eq!(list.field_requirements().len(), 1);
    }

    #[test]
    fn odd_paths_never_panic() {
        for p in ["", "/", "//", "///", "/api//", "/apis///", "/api/v1/namespaces", "/api/v1/namespaces/", "/api/%zz/x"]
        {
            for m in ["GET", "DELETE", "POST", "ÄÖ"] {
                let _ = request_info(m, p, Some("watch&fieldSelector=%ZZ&=&a"));
            }
        }
    }
}
