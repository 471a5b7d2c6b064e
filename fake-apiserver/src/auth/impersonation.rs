//! User impersonation (k8s.io/apiserver/pkg/endpoints/filters/impersonation.go): the
//! `impersonate` checks an `Impersonate-*` request needs and the user it then acts as.
//!
//! Each check must be allowed by the authorizer chain; a denied check is answered with
//! [`super::forbidden::forbidden_status`] of that check's attributes and reason.

use super::attributes::Attributes;
use super::user::{self, User, service_account_groups, service_account_username, split_service_account_username};

/// `Impersonate-User`.
pub const IMPERSONATE_USER_HEADER: &str = "Impersonate-User";
/// `Impersonate-Uid`.
pub const IMPERSONATE_UID_HEADER: &str = "Impersonate-Uid";
/// `Impersonate-Group` (repeatable).
pub const IMPERSONATE_GROUP_HEADER: &str = "Impersonate-Group";
/// `Impersonate-Extra-<key>` (repeatable).
pub const IMPERSONATE_EXTRA_HEADER_PREFIX: &str = "Impersonate-Extra-";

/// Why impersonation headers are unusable (upstream answers 500 Internal Error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImpersonationError {
    /// Groups, extras or a uid without `Impersonate-User`; `{0}` is Go's `%v` of the requests.
    #[error("requested {0} without impersonating a user")]
    WithoutUser(String),
}

/// What an impersonating request needs and becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Impersonation {
    /// The `impersonate` checks, in upstream's order; all must be allowed.
    pub checks: Vec<Attributes>,
    /// The user the request acts as once every check is allowed.
    pub user: User,
}

/// One impersonation request (upstream's `v1.ObjectReference` use).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Request {
    kind: &'static str,
    namespace: String,
    name: String,
    api_version: &'static str,
    field_path: String,
}

impl Request {
    fn new(kind: &'static str, name: &str) -> Request {
        Request { kind, namespace: String::new(), name: name.into(), api_version: "", field_path: String::new() }
    }

    /// Go's `%v` of an ObjectReference: its seven fields separated by spaces in braces.
    fn go_format(&self) -> String {
        let fields = [self.kind, &self.namespace, &self.name, "", self.api_version, "", &self.field_path];
        format!("{{{}}}", fields.join(" "))
    }
}

fn header_values<'a>(headers: &'a [(&str, &str)], name: &'a str) -> impl Iterator<Item = &'a str> {
    headers.iter().filter(move |(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
}

/// Upstream's `unescapeExtraKey`: the lowercased key, percent-decoded when that is valid UTF-8.
fn extra_key(raw: &str) -> String {
    let lower = raw.to_ascii_lowercase();
    let bytes: Vec<u8> = percent_decode(&lower).unwrap_or_else(|| lower.clone().into_bytes());
    String::from_utf8(bytes).unwrap_or(lower)
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Upstream's `buildImpersonationRequests`.
fn build_requests(headers: &[(&str, &str)]) -> Result<Vec<Request>, ImpersonationError> {
    let mut reqs = Vec::new();
    let requested_user = header_values(headers, IMPERSONATE_USER_HEADER).next().unwrap_or("");
    if !requested_user.is_empty() {
        reqs.push(match split_service_account_username(requested_user) {
            Some((ns, name)) => Request { namespace: ns.into(), ..Request::new("ServiceAccount", name) },
            None => Request::new("User", requested_user),
        });
    }
    let groups: Vec<&str> = header_values(headers, IMPERSONATE_GROUP_HEADER).collect();
    reqs.extend(groups.iter().map(|g| Request::new("Group", g)));
    let mut extra_keys: Vec<&str> = Vec::new();
    for (k, _) in headers {
        let is_extra = k.len() >= IMPERSONATE_EXTRA_HEADER_PREFIX.len()
            && k.is_char_boundary(IMPERSONATE_EXTRA_HEADER_PREFIX.len())
            && k[..IMPERSONATE_EXTRA_HEADER_PREFIX.len()].eq_ignore_ascii_case(IMPERSONATE_EXTRA_HEADER_PREFIX);
        if is_extra && !extra_keys.iter().any(|e| e.eq_ignore_ascii_case(k)) {
            extra_keys.push(k);
        }
    }
    for header in &extra_keys {
        let key = extra_key(&header[IMPERSONATE_EXTRA_HEADER_PREFIX.len()..]);
        for value in header_values(headers, header) {
            reqs.push(Request {
                api_version: "authentication.k8s.io/v1",
                field_path: key.clone(),
                ..Request::new("UserExtra", value)
            });
        }
    }
    let uid = header_values(headers, IMPERSONATE_UID_HEADER).next().unwrap_or("");
    if !uid.is_empty() {
        reqs.push(Request { api_version: "authentication.k8s.io/v1", ..Request::new("UID", uid) });
    }
    if requested_user.is_empty() && (!groups.is_empty() || !extra_keys.is_empty() || !uid.is_empty()) {
        let list: Vec<String> = reqs.iter().map(Request::go_format).collect();
        return Err(ImpersonationError::WithoutUser(format!("[{}]", list.join(" "))));
    }
    Ok(reqs)
}

/// The checks and resulting user of a request by `requestor` with `headers` (name, value),
/// or `None` when it does not impersonate. Checks are upstream's: verb `impersonate` on
/// `users`, `groups`, `serviceaccounts` (core group), `userextras/<key>` and `uids`
/// (`authentication.k8s.io`). The resulting user is in `system:authenticated` unless it is
/// `system:anonymous` (then `system:unauthenticated`) or either group was asked for.
pub fn impersonation(requestor: &User, headers: &[(&str, &str)]) -> Result<Option<Impersonation>, ImpersonationError> {
    let reqs = build_requests(headers)?;
    if reqs.is_empty() {
        return Ok(None);
    }
    let groups_specified = header_values(headers, IMPERSONATE_GROUP_HEADER).next().is_some();
    let mut result = User::default();
    let mut checks = Vec::with_capacity(reqs.len());
    for req in &reqs {
        let (group, version) = req.api_version.split_once('/').unwrap_or(("", ""));
        let mut check = Attributes::resource(requestor.clone(), "impersonate", group, "", &req.namespace, &req.name);
        check.api_version = version.to_string();
        check.resource = match req.kind {
            "ServiceAccount" => {
                result.name = service_account_username(&req.namespace, &req.name);
                if !groups_specified {
                    result.groups = service_account_groups(&req.namespace);
                }
                "serviceaccounts"
            }
            "User" => {
                result.name = req.name.clone();
                "users"
            }
            "Group" => {
                result.groups.push(req.name.clone());
                "groups"
            }
            "UserExtra" => {
                check.subresource = req.field_path.clone();
                result.extra.entry(req.field_path.clone()).or_default().push(req.name.clone());
                "userextras"
            }
            _ => {
                result.uid = req.name.clone();
                "uids"
            }
        }
        .to_string();
        checks.push(check);
    }
    add_implicit_group(&mut result);
    Ok(Some(Impersonation { checks, user: result }))
}

fn add_implicit_group(u: &mut User) {
    if u.name != user::ANONYMOUS {
        if !u.in_group(user::ALL_AUTHENTICATED) && !u.in_group(user::ALL_UNAUTHENTICATED) {
            u.groups.push(user::ALL_AUTHENTICATED.into());
        }
    } else if !u.in_group(user::ALL_UNAUTHENTICATED) {
        u.groups.push(user::ALL_UNAUTHENTICATED.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin() -> User {
        User::new("admin", &["system:authenticated"])
    }

    #[test]
    fn no_headers_no_impersonation() {
        assert_eq!(impersonation(&admin(), &[("Accept", "x")]).unwrap(), None);
    }

    #[test]
    fn user_with_groups_and_extras() {
        let headers = [
            ("impersonate-user", "bob"),
            ("Impersonate-Group", "devs"),
            ("Impersonate-Group", "ops"),
            ("Impersonate-Extra-Scopes", "view"),
            ("Impersonate-Extra-Acme.com%2Fproject", "p1"),
            ("Impersonate-Extra-scopes", "edit"),
            ("Impersonate-Uid", "1234"),
        ];
        let imp = impersonation(&admin(), &headers).unwrap().unwrap();
        let summary: Vec<(&str, &str, &str, &str)> = imp
            .checks
            .iter()
            .map(|c| (c.api_group.as_str(), c.resource.as_str(), c.subresource.as_str(), c.name.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                ("", "users", "", "bob"),
                ("", "groups", "", "devs"),
                ("", "groups", "", "ops"),
                ("authentication.k8s.io", "userextras", "scopes", "view"),
                ("authentication.k8s.io", "userextras", "scopes", "edit"),
                ("authentication.k8s.io", "userextras", "acme.com/project", "p1"),
                ("authentication.k8s.io", "uids", "", "1234"),
            ]
        );
        assert!(imp.checks.iter().all(|c| c.verb == "impersonate" && c.is_resource_request && c.user == admin()));
        assert_eq!(imp.checks[3].api_version, "v1");
        assert_eq!(imp.user.name, "bob");
        assert_eq!(imp.user.uid, "1234");
        assert_eq!(imp.user.groups, ["devs", "ops", "system:authenticated"]);
        assert_eq!(imp.user.extra["scopes"], ["view", "edit"]);
    }

    #[test]
    fn service_account_gets_its_groups() {
        let imp = impersonation(&admin(), &[("Impersonate-User", "system:serviceaccount:ns:sa")]).unwrap().unwrap();
        let c = &imp.checks[0];
        assert_eq!((c.resource.as_str(), c.namespace.as_str(), c.name.as_str()), ("serviceaccounts", "ns", "sa"));
        assert_eq!(imp.user.name, "system:serviceaccount:ns:sa");
        assert_eq!(imp.user.groups, ["system:serviceaccounts", "system:serviceaccounts:ns", "system:authenticated"]);
        let with_group =
            impersonation(&admin(), &[("Impersonate-User", "system:serviceaccount:ns:sa"), ("Impersonate-Group", "g")])
                .unwrap()
                .unwrap();
        assert_eq!(with_group.user.groups, ["g", "system:authenticated"]);
    }

    #[test]
    fn anonymous_and_unauthenticated() {
        let anon = impersonation(&admin(), &[("Impersonate-User", "system:anonymous")]).unwrap().unwrap();
        assert_eq!(anon.user.groups, ["system:unauthenticated"]);
        let unauth =
            impersonation(&admin(), &[("Impersonate-User", "x"), ("Impersonate-Group", "system:unauthenticated")])
                .unwrap()
                .unwrap();
        assert_eq!(unauth.user.groups, ["system:unauthenticated"]);
    }

    #[test]
    fn groups_without_user_is_an_error() {
        let err = impersonation(&admin(), &[("Impersonate-Group", "system:masters")]).unwrap_err();
        assert_eq!(err.to_string(), "requested [{Group  system:masters    }] without impersonating a user");
        let err = impersonation(&admin(), &[("Impersonate-Uid", "u")]).unwrap_err();
        assert_eq!(err.to_string(), "requested [{UID  u  authentication.k8s.io/v1  }] without impersonating a user");
    }

    #[test]
    fn denied_check_renders_upstream_forbidden() {
        let imp = impersonation(&User::new("alice", &[]), &[("Impersonate-User", "bob")]).unwrap().unwrap();
        let s = crate::auth::forbidden::forbidden_status(&imp.checks[0], "");
        assert_eq!(
            s["message"],
            "users \"bob\" is forbidden: User \"alice\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
        );
    }

    #[test]
    fn odd_headers_never_panic() {
        for h in [
            ("Impersonate-Extra-", "x"),
            ("Impersonate-Extra-%zz", "x"),
            ("Impersonate-Extra-ä", "x"),
            ("Impersonate-Ex", "x"),
        ] {
            let _ = impersonation(&admin(), &[("Impersonate-User", "u"), h]);
        }
    }
}
