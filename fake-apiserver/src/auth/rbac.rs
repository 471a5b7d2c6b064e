//! RBAC evaluation: upstream's RBAC authorizer (plugin/pkg/auth/authorizer/rbac/rbac.go), its
//! rule resolver (pkg/registry/rbac/validation/rule.go) and the rule matching helpers
//! (pkg/apis/rbac/v1/evaluation_helpers.go), over Role, ClusterRole, RoleBinding and
//! ClusterRoleBinding objects stored as JSON.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::attributes::Attributes;
use super::user::{User, service_account_matches};
use super::{Decision, go_quote};

/// The API group of the RBAC objects.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// One rule of a Role or ClusterRole (upstream's `rbacv1.PolicyRule`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyRule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    pub non_resource_urls: Vec<String>,
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    let items = v.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    items.iter().filter_map(Value::as_str).map(str::to_string).collect()
}

fn text(v: &Value, pointer: &str) -> String {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("").to_string()
}

impl PolicyRule {
    /// Reads a rule from its JSON form; missing or malformed fields read as empty.
    pub fn from_value(v: &Value) -> PolicyRule {
        PolicyRule {
            verbs: strings(v, "verbs"),
            api_groups: strings(v, "apiGroups"),
            resources: strings(v, "resources"),
            resource_names: strings(v, "resourceNames"),
            non_resource_urls: strings(v, "nonResourceURLs"),
        }
    }

    /// The JSON form of the rule (empty lists omitted, as upstream serializes them).
    pub fn to_value(&self) -> Value {
        let mut m = serde_json::Map::new();
        for (key, list) in [
            ("verbs", &self.verbs),
            ("apiGroups", &self.api_groups),
            ("resources", &self.resources),
            ("resourceNames", &self.resource_names),
            ("nonResourceURLs", &self.non_resource_urls),
        ] {
            if !list.is_empty() || key == "verbs" {
                m.insert(key.to_string(), json!(list));
            }
        }
        Value::Object(m)
    }

    /// Upstream's `RuleAllows`: whether this rule grants the request.
    pub fn allows(&self, attrs: &Attributes) -> bool {
        if attrs.is_resource_request {
            verb_matches(self, &attrs.verb)
                && api_group_matches(self, &attrs.api_group)
                && resource_matches(self, &attrs.combined_resource(), &attrs.subresource)
                && resource_name_matches(self, &attrs.name)
        } else {
            verb_matches(self, &attrs.verb) && non_resource_url_matches(self, &attrs.path)
        }
    }
}

/// Whether any of `rules` grants the request (upstream's `RulesAllow`).
pub fn rules_allow(attrs: &Attributes, rules: &[PolicyRule]) -> bool {
    rules.iter().any(|r| r.allows(attrs))
}

/// `*` or the exact verb.
pub fn verb_matches(rule: &PolicyRule, verb: &str) -> bool {
    rule.verbs.iter().any(|v| v == "*" || v == verb)
}

/// `*` or the exact group (`""` is the core group).
pub fn api_group_matches(rule: &PolicyRule, group: &str) -> bool {
    rule.api_groups.iter().any(|g| g == "*" || g == group)
}

/// `*`, the exact `resource[/subresource]`, or `*/subresource` for a subresource request.
pub fn resource_matches(rule: &PolicyRule, combined: &str, subresource: &str) -> bool {
    rule.resources.iter().any(|r| {
        r == "*"
            || r == combined
            || (!subresource.is_empty()
                && r.len() == subresource.len() + 2
                && r.starts_with("*/")
                && r.ends_with(subresource))
    })
}

/// No resourceNames (any name), or the exact name.
pub fn resource_name_matches(rule: &PolicyRule, name: &str) -> bool {
    rule.resource_names.is_empty() || rule.resource_names.iter().any(|n| n == name)
}

/// `*`, the exact path, or a prefix rule ending in `*` (all trailing stars trimmed).
pub fn non_resource_url_matches(rule: &PolicyRule, path: &str) -> bool {
    rule.non_resource_urls
        .iter()
        .any(|u| u == "*" || u == path || (u.ends_with('*') && path.starts_with(u.trim_end_matches('*'))))
}

/// A binding subject (upstream's `rbacv1.Subject`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    /// `User`, `Group` or `ServiceAccount`.
    pub kind: String,
    pub api_group: String,
    pub name: String,
    /// ServiceAccounts only; empty means the binding's namespace.
    pub namespace: String,
}

impl Subject {
    fn from_value(v: &Value) -> Subject {
        Subject {
            kind: text(v, "/kind"),
            api_group: text(v, "/apiGroup"),
            name: text(v, "/name"),
            namespace: text(v, "/namespace"),
        }
    }

    /// Upstream's `appliesToUser`; `namespace` is the binding's namespace ("" for cluster scope).
    pub fn applies_to(&self, user: &User, namespace: &str) -> bool {
        match self.kind.as_str() {
            "User" => user.name == self.name,
            "Group" => user.in_group(&self.name),
            "ServiceAccount" => {
                let ns = if self.namespace.is_empty() { namespace } else { &self.namespace };
                !ns.is_empty() && service_account_matches(ns, &self.name, &user.name)
            }
            _ => false,
        }
    }

    /// Upstream's `describeSubject`: `User "alice"`, `ServiceAccount "name/namespace"`.
    fn describe(&self, binding_namespace: &str) -> String {
        if self.kind == "ServiceAccount" {
            let ns = if self.namespace.is_empty() { binding_namespace } else { &self.namespace };
            format!("{} {}", self.kind, go_quote(&format!("{}/{}", self.name, ns)))
        } else {
            format!("{} {}", self.kind, go_quote(&self.name))
        }
    }
}

/// A RoleBinding or ClusterRoleBinding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Binding {
    pub name: String,
    /// Empty for a ClusterRoleBinding.
    pub namespace: String,
    /// `Role` or `ClusterRole`.
    pub role_kind: String,
    pub role_name: String,
    pub subjects: Vec<Subject>,
}

impl Binding {
    /// Reads a binding from its JSON form.
    pub fn from_value(v: &Value) -> Binding {
        let subjects = v.get("subjects").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
        Binding {
            name: text(v, "/metadata/name"),
            namespace: text(v, "/metadata/namespace"),
            role_kind: text(v, "/roleRef/kind"),
            role_name: text(v, "/roleRef/name"),
            subjects: subjects.iter().map(Subject::from_value).collect(),
        }
    }

    /// The first subject that applies to `user` (upstream's `appliesTo`).
    fn subject_for(&self, user: &User) -> Option<&Subject> {
        self.subjects.iter().find(|s| s.applies_to(user, &self.namespace))
    }

    /// The allow reason source: upstream's cluster/role binding describers.
    fn describe(&self, subject: &Subject) -> String {
        if self.namespace.is_empty() {
            format!(
                "ClusterRoleBinding {} of {} {} to {}",
                go_quote(&self.name),
                self.role_kind,
                go_quote(&self.role_name),
                subject.describe("")
            )
        } else {
            format!(
                "RoleBinding {} of {} {} to {}",
                go_quote(&format!("{}/{}", self.name, self.namespace)),
                self.role_kind,
                go_quote(&self.role_name),
                subject.describe(&self.namespace)
            )
        }
    }
}

/// Why a binding's role could not be resolved; texts as upstream's listers and resolver.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleRefError {
    #[error("clusterrole.rbac.authorization.k8s.io {} not found", go_quote(.0))]
    ClusterRoleNotFound(String),
    #[error("role.rbac.authorization.k8s.io {} not found", go_quote(.0))]
    RoleNotFound(String),
    #[error("unsupported role reference kind: {}", go_quote(.0))]
    UnsupportedKind(String),
}

/// All RBAC objects at one moment, ready to authorize requests.
#[derive(Debug, Clone, Default)]
pub struct RbacSnapshot {
    cluster_roles: HashMap<String, Vec<PolicyRule>>,
    roles: HashMap<(String, String), Vec<PolicyRule>>,
    cluster_role_bindings: Vec<Binding>,
    role_bindings: Vec<Binding>,
}

fn rules_of(obj: &Value) -> Vec<PolicyRule> {
    obj.get("rules")
        .and_then(Value::as_array)
        .map(|rs| rs.iter().map(PolicyRule::from_value).collect())
        .unwrap_or_default()
}

impl RbacSnapshot {
    /// An empty snapshot (authorizes nothing).
    pub fn new() -> RbacSnapshot {
        RbacSnapshot::default()
    }

    /// A snapshot of `objects` (Roles, ClusterRoles, RoleBindings, ClusterRoleBindings in any
    /// order; other kinds are ignored).
    pub fn from_objects<'a>(objects: impl IntoIterator<Item = &'a Value>) -> RbacSnapshot {
        let mut snap = RbacSnapshot::new();
        for obj in objects {
            snap.insert(obj);
        }
        snap
    }

    /// Adds or replaces one object by its `kind`; returns false for other kinds.
    pub fn insert(&mut self, obj: &Value) -> bool {
        let name = text(obj, "/metadata/name");
        let namespace = text(obj, "/metadata/namespace");
        match obj.get("kind").and_then(Value::as_str).unwrap_or("") {
            "ClusterRole" => {
                self.cluster_roles.insert(name, rules_of(obj));
            }
            "Role" => {
                self.roles.insert((namespace, name), rules_of(obj));
            }
            "ClusterRoleBinding" => {
                let mut b = Binding::from_value(obj);
                b.namespace.clear();
                upsert(&mut self.cluster_role_bindings, b);
            }
            "RoleBinding" => upsert(&mut self.role_bindings, Binding::from_value(obj)),
            _ => return false,
        }
        true
    }

    /// The rules a binding grants, or why they cannot be resolved (upstream's
    /// `GetRoleReferenceRules`; a RoleBinding's Role is looked up in its namespace).
    pub fn role_rules(&self, binding: &Binding) -> Result<&[PolicyRule], RoleRefError> {
        match binding.role_kind.as_str() {
            "ClusterRole" => self
                .cluster_roles
                .get(&binding.role_name)
                .map(Vec::as_slice)
                .ok_or_else(|| RoleRefError::ClusterRoleNotFound(binding.role_name.clone())),
            "Role" => self
                .roles
                .get(&(binding.namespace.clone(), binding.role_name.clone()))
                .map(Vec::as_slice)
                .ok_or_else(|| RoleRefError::RoleNotFound(binding.role_name.clone())),
            other => Err(RoleRefError::UnsupportedKind(other.to_string())),
        }
    }

    /// Upstream's RBAC `Authorize`: ClusterRoleBindings first, then the RoleBindings of the
    /// request's namespace. Allowed: `RBAC: allowed by <binding description>`. Otherwise no
    /// opinion, with `RBAC: <errors>` when roles could not be resolved (else an empty reason).
    pub fn authorize(&self, attrs: &Attributes) -> Decision {
        let mut errors: Vec<String> = Vec::new();
        let namespaced =
            self.role_bindings.iter().filter(|b| !attrs.namespace.is_empty() && b.namespace == attrs.namespace);
        for binding in self.cluster_role_bindings.iter().chain(namespaced) {
            let Some(subject) = binding.subject_for(&attrs.user) else { continue };
            match self.role_rules(binding) {
                Ok(rules) if rules_allow(attrs, rules) => {
                    return Decision::allow(format!("RBAC: allowed by {}", binding.describe(subject)));
                }
                Ok(_) => {}
                Err(e) => errors.push(e.to_string()),
            }
        }
        if errors.is_empty() {
            Decision::no_opinion("")
        } else {
            Decision::no_opinion(format!("RBAC: {}", aggregate(&errors)))
        }
    }
}

fn upsert(list: &mut Vec<Binding>, binding: Binding) {
    match list.iter_mut().find(|b| b.name == binding.name && b.namespace == binding.namespace) {
        Some(slot) => *slot = binding,
        None => list.push(binding),
    }
}

/// Upstream's `utilerrors.NewAggregate(...).Error()`: one message as is, several deduplicated
/// and joined as `[a, b]`.
pub fn aggregate(messages: &[String]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for m in messages {
        if !seen.contains(&m.as_str()) {
            seen.push(m);
        }
    }
    match seen.as_slice() {
        [] => String::new(),
        [one] => one.to_string(),
        many => format!("[{}]", many.join(", ")),
    }
}

#[cfg(test)]
#[path = "rbac_tests.rs"]
mod tests;
