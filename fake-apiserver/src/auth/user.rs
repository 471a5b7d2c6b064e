//! The authenticated user as authorization sees it (upstream's `user.Info`), the well-known
//! user and group names, and the ServiceAccount and node naming conventions.

use std::collections::BTreeMap;

use crate::audit::UserInfo;

/// Members of this group are allowed everything (upstream's `user.SystemPrivilegedGroup`).
pub const SYSTEM_PRIVILEGED_GROUP: &str = "system:masters";
/// The group of every node (kubelet) identity.
pub const NODES_GROUP: &str = "system:nodes";
/// The group of every monitoring identity.
pub const MONITORING_GROUP: &str = "system:monitoring";
/// The group every authenticated user is in.
pub const ALL_AUTHENTICATED: &str = crate::tls::AUTHENTICATED;
/// The group every unauthenticated request is in.
pub const ALL_UNAUTHENTICATED: &str = crate::tls::UNAUTHENTICATED;
/// The user of a request without credentials.
pub const ANONYMOUS: &str = crate::tls::ANONYMOUS;
/// kube-proxy's user.
pub const KUBE_PROXY: &str = "system:kube-proxy";
/// kube-controller-manager's user.
pub const KUBE_CONTROLLER_MANAGER: &str = "system:kube-controller-manager";
/// kube-scheduler's user.
pub const KUBE_SCHEDULER: &str = "system:kube-scheduler";

/// Prefix of every ServiceAccount user name: `system:serviceaccount:<namespace>:<name>`.
pub const SERVICE_ACCOUNT_USERNAME_PREFIX: &str = "system:serviceaccount:";
/// The group of all ServiceAccounts; `system:serviceaccounts:<namespace>` for one namespace.
pub const ALL_SERVICE_ACCOUNTS_GROUP: &str = "system:serviceaccounts";
/// Prefix of every node user name: `system:node:<nodeName>`.
pub const NODE_USERNAME_PREFIX: &str = "system:node:";

/// Who made a request: upstream's `user.DefaultInfo` (name, uid, groups, extra).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl User {
    /// A user with a name and groups, no uid or extra.
    pub fn new(name: impl Into<String>, groups: &[&str]) -> User {
        User { name: name.into(), groups: groups.iter().map(|g| g.to_string()).collect(), ..User::default() }
    }

    /// Whether the user is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// The audit form of this user.
    pub fn to_user_info(&self) -> UserInfo {
        UserInfo { username: self.name.clone(), uid: self.uid.clone(), groups: self.groups.clone(), extra: self.extra.clone() }
    }
}

impl From<&UserInfo> for User {
    fn from(u: &UserInfo) -> User {
        User { name: u.username.clone(), uid: u.uid.clone(), groups: u.groups.clone(), extra: u.extra.clone() }
    }
}

impl From<UserInfo> for User {
    fn from(u: UserInfo) -> User {
        User { name: u.username, uid: u.uid, groups: u.groups, extra: u.extra }
    }
}

/// Upstream's default node identifier: `Some(nodeName)` for a user named `system:node:<nodeName>`
/// in group `system:nodes` (the name may be empty: an unidentifiable node), `None` for others.
pub fn node_identity(user: &User) -> Option<&str> {
    let name = user.name.strip_prefix(NODE_USERNAME_PREFIX)?;
    user.in_group(NODES_GROUP).then_some(name)
}

/// `system:serviceaccount:<namespace>:<name>`.
pub fn service_account_username(namespace: &str, name: &str) -> String {
    format!("{SERVICE_ACCOUNT_USERNAME_PREFIX}{namespace}:{name}")
}

/// Whether `username` is the ServiceAccount `namespace/name` (upstream's `MatchesUsername`).
pub fn service_account_matches(namespace: &str, name: &str, username: &str) -> bool {
    username
        .strip_prefix(SERVICE_ACCOUNT_USERNAME_PREFIX)
        .and_then(|rest| rest.strip_prefix(namespace))
        .and_then(|rest| rest.strip_prefix(':'))
        .is_some_and(|rest| rest == name)
}

/// The groups of every ServiceAccount in `namespace`: `system:serviceaccounts` and
/// `system:serviceaccounts:<namespace>`.
pub fn service_account_groups(namespace: &str) -> Vec<String> {
    vec![ALL_SERVICE_ACCOUNTS_GROUP.to_string(), format!("{ALL_SERVICE_ACCOUNTS_GROUP}:{namespace}")]
}

/// Splits a ServiceAccount user name into `(namespace, name)` when both parts are valid
/// (namespace a DNS label, name a DNS subdomain), as upstream's `SplitUsername`.
pub fn split_service_account_username(username: &str) -> Option<(&str, &str)> {
    let rest = username.strip_prefix(SERVICE_ACCOUNT_USERNAME_PREFIX)?;
    let mut parts = rest.split(':');
    let (namespace, name) = (parts.next()?, parts.next()?);
    if parts.next().is_some() || !is_dns1123_label(namespace) || !is_dns1123_subdomain(name) {
        return None;
    }
    Some((namespace, name))
}

/// RFC 1123 label: at most 63 lowercase alphanumerics or `-`, starting and ending alphanumeric.
pub fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= 63
        && b.first().is_some_and(edge)
        && b.last().is_some_and(edge)
        && b.iter().all(|c| edge(c) || *c == b'-')
}

/// RFC 1123 subdomain: at most 253 characters of dot-separated RFC 1123 labels.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_identity_requires_prefix_and_group() {
        let node = User::new("system:node:node-a", &[NODES_GROUP, ALL_AUTHENTICATED]);
        assert_eq!(node_identity(&node), Some("node-a"));
        let no_group = User::new("system:node:node-a", &[ALL_AUTHENTICATED]);
        assert_eq!(node_identity(&no_group), None);
        let other = User::new("alice", &[NODES_GROUP]);
        assert_eq!(node_identity(&other), None);
        let unnamed = User::new("system:node:", &[NODES_GROUP]);
        assert_eq!(node_identity(&unnamed), Some(""));
    }

    #[test]
    fn service_account_names() {
        assert_eq!(service_account_username("ns", "sa"), "system:serviceaccount:ns:sa");
        assert!(service_account_matches("ns", "sa", "system:serviceaccount:ns:sa"));
        assert!(!service_account_matches("ns", "sa", "system:serviceaccount:ns:sa2"));
        assert!(!service_account_matches("n", "s:sa", "system:serviceaccount:ns:sa"));
        assert_eq!(service_account_groups("ns"), ["system:serviceaccounts", "system:serviceaccounts:ns"]);
        assert_eq!(split_service_account_username("system:serviceaccount:ns:sa"), Some(("ns", "sa")));
        assert_eq!(split_service_account_username("system:serviceaccount:ns:sa:x"), None);
        assert_eq!(split_service_account_username("system:serviceaccount:NS:sa"), None);
        assert_eq!(split_service_account_username("system:serviceaccount:ns"), None);
        assert_eq!(split_service_account_username("bob"), None);
    }

    #[test]
    fn user_info_round_trip() {
        let info = UserInfo { username: "bob".into(), groups: vec!["g".into()], ..UserInfo::default() };
        let user = User::from(&info);
        assert_eq!(user.name, "bob");
        assert_eq!(user.to_user_info(), info);
    }
}
