//! Authorization core, pure and IO-free, following upstream Kubernetes:
//!
//! - [`attributes`]: request attributes from method, path and query (upstream's RequestInfo).
//! - [`impersonation`]: the `impersonate` checks and resulting user of `Impersonate-*` headers.
//! - [`rbac`]: RBAC evaluation over stored Role/ClusterRole/RoleBinding/ClusterRoleBinding JSON.
//! - [`bootstrap`]: upstream's bootstrap ClusterRoles and ClusterRoleBindings as JSON objects.
//! - [`node`]: the Node authorizer over a graph of pods and what they reference.
//! - [`restriction`]: the NodeRestriction admission plugin.
//! - [`forbidden`]: 403/401 `Status` bodies with upstream's messages.
//! - [`token_file`]: the static token file (`--token-auth-file`) and the bearer header.
//! - [`service_account`]: ServiceAccount tokens (JWTs) issued and checked as upstream's, with
//!   their keys in [`service_account_keys`].
//!
//! [`authorize`] is kube-apiserver's chain for `--authorization-mode=Node,RBAC`: the
//! `system:masters` group authorizer, then Node, then RBAC; the first allow wins.

pub mod attributes;
pub mod bootstrap;
pub mod escalation;
pub mod forbidden;
pub mod impersonation;
pub mod node;
pub mod pod_refs;
pub mod rbac;
pub mod restriction;
pub mod service_account;
pub mod service_account_keys;
pub mod token_file;
pub mod user;

pub use attributes::{Attributes, RequestInfo, request_info};
pub use node::NodeGraph;
pub use rbac::{PolicyRule, RbacSnapshot};
pub use user::User;

/// An authorizer's answer (upstream's `authorizer.Decision` plus its reason string). No
/// authorizer here denies outright: a request is forbidden when nobody allows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The request is allowed; `reason` says by what (may be empty).
    Allow { reason: String },
    /// This authorizer does not allow the request; `reason` may explain why (may be empty).
    NoOpinion { reason: String },
}

impl Decision {
    /// An allow with a reason.
    pub fn allow(reason: impl Into<String>) -> Decision {
        Decision::Allow { reason: reason.into() }
    }

    /// No opinion, with a reason.
    pub fn no_opinion(reason: impl Into<String>) -> Decision {
        Decision::NoOpinion { reason: reason.into() }
    }

    /// Whether the request is allowed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }

    /// The reason text (possibly empty).
    pub fn reason(&self) -> &str {
        match self {
            Decision::Allow { reason } | Decision::NoOpinion { reason } => reason,
        }
    }
}

/// Everything the authorizer chain reads: RBAC objects, the node graph and the static rules
/// the Node authorizer grants every node (upstream's `NodeRules()`, the `system:node` role).
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub rbac: RbacSnapshot,
    pub nodes: NodeGraph,
    pub node_rules: Vec<PolicyRule>,
}

impl Snapshot {
    /// A snapshot with upstream's node rules.
    pub fn new(rbac: RbacSnapshot, nodes: NodeGraph) -> Snapshot {
        Snapshot { rbac, nodes, node_rules: bootstrap::node_rules() }
    }
}

impl Default for Snapshot {
    fn default() -> Snapshot {
        Snapshot::new(RbacSnapshot::new(), NodeGraph::new())
    }
}

/// Upstream's privileged group authorizer: members of `system:masters` may do anything
/// (allow with an empty reason); everyone else gets no opinion.
pub fn authorize_privileged(attrs: &Attributes) -> Decision {
    if attrs.user.in_group(user::SYSTEM_PRIVILEGED_GROUP) { Decision::allow("") } else { Decision::no_opinion("") }
}

/// kube-apiserver's union authorizer for `--authorization-mode=Node,RBAC`: `system:masters`,
/// then the Node authorizer, then RBAC. The first allow is returned as is; otherwise no
/// opinion with the non-empty reasons joined by newlines (upstream's `unionAuthzHandler`).
pub fn authorize(attrs: &Attributes, snapshot: &Snapshot) -> Decision {
    let chain: [fn(&Attributes, &Snapshot) -> Decision; 3] =
        [|a, _| authorize_privileged(a), |a, s| s.nodes.authorize(a, &s.node_rules), |a, s| s.rbac.authorize(a)];
    let mut reasons: Vec<String> = Vec::new();
    for step in chain {
        match step(attrs, snapshot) {
            allow @ Decision::Allow { .. } => return allow,
            Decision::NoOpinion { reason } if !reason.is_empty() => reasons.push(reason),
            Decision::NoOpinion { .. } => {}
        }
    }
    Decision::no_opinion(reasons.join("\n"))
}

/// Go's `%q` for a string (`strconv.Quote`): double quotes, backslash escapes for `"` and `\`,
/// `\a \b \f \n \r \t \v`, `\xNN` for other ASCII controls, `\uNNNN` for the C1 controls;
/// everything else as it is.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
