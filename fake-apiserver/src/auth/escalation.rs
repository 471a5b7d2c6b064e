//! RBAC privilege-escalation prevention, as kube-apiserver's RBAC storage does it: a user may
//! only create or update a Role/ClusterRole whose rules they already hold, and only bind a
//! role whose rules they already hold, unless they are allowed to `escalate` (roles) or `bind`
//! (bindings) explicitly, or are in `system:masters`.
//!
//! Reproduced upstream code:
//! - pkg/registry/rbac/escalation_check.go: [`escalation_allowed`] (`EscalationAllowed`),
//!   [`escalate_attributes`] (`RoleEscalationAuthorized`), [`bind_attributes`]
//!   (`BindingAuthorized`);
//! - pkg/registry/rbac/validation/rule.go: [`confirm_no_escalation`] (`ConfirmNoEscalation`),
//!   [`RuleResolver::rules_for`] (`RulesFor`/`VisitRulesFor`),
//!   [`RuleResolver::role_reference_rules`] (`GetRoleReferenceRules` over the registry, whose
//!   misses are the storage's NotFound errors);
//! - k8s.io/component-helpers/auth/rbac/validation/policy_comparator.go: [`covers`],
//!   [`breakdown_rule`], [`rule_covers`];
//! - pkg/registry/rbac/validation/policy_compact.go: [`compact_rules`];
//! - pkg/apis/rbac/v1/evaluation_helpers.go: [`compact_string`];
//! - pkg/registry/rbac/helpers.go: [`is_only_mutating_gc_fields`];
//! - pkg/registry/rbac/{role,clusterrole,rolebinding,clusterrolebinding}/policybased/storage.go:
//!   [`check_role`] and [`check_binding`] (what `Create` and `Update` check once the user is
//!   neither in `system:masters` nor allowed to `escalate`).
//!
//! Pure functions over the JSON objects; the HTTP layer (`crate::http::rbac_escalation`)
//! decides when they run and turns [`EscalationError`] into `Status` errors.

use std::collections::HashMap;
use std::fmt;

use serde_json::Value;

use super::attributes::Attributes;
use super::go_quote;
use super::rbac::{Binding, PolicyRule, RBAC_GROUP, aggregate};
use super::user::{SYSTEM_PRIVILEGED_GROUP, User};

/// Go's `%q` of a `[]string`: `["a" "b"]`.
pub fn go_quote_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", quoted.join(" "))
}

/// Upstream's `CompactString`: `{APIGroups:[""], Resources:["pods"], Verbs:["get"]}`, the
/// empty lists left out, in the order APIGroups, Resources, NonResourceURLs, ResourceNames,
/// Verbs.
pub fn compact_string(rule: &PolicyRule) -> String {
    let parts = [
        ("APIGroups", &rule.api_groups),
        ("Resources", &rule.resources),
        ("NonResourceURLs", &rule.non_resource_urls),
        ("ResourceNames", &rule.resource_names),
        ("Verbs", &rule.verbs),
    ];
    let shown: Vec<String> =
        parts.iter().filter(|(_, list)| !list.is_empty()).map(|(key, list)| format!("{key}:{}", go_quote_list(list))).collect();
    format!("{{{}}}", shown.join(", "))
}

/// Upstream's `BreakdownRule`: one rule per (group, resource, verb[, resourceName]) and per
/// (nonResourceURL, verb).
pub fn breakdown_rule(rule: &PolicyRule) -> Vec<PolicyRule> {
    let one = |s: &String| vec![s.clone()];
    let mut subrules = Vec::new();
    for group in &rule.api_groups {
        for resource in &rule.resources {
            for verb in &rule.verbs {
                let base = PolicyRule { api_groups: one(group), resources: one(resource), verbs: one(verb), ..PolicyRule::default() };
                if rule.resource_names.is_empty() {
                    subrules.push(base);
                } else {
                    subrules.extend(rule.resource_names.iter().map(|n| PolicyRule { resource_names: one(n), ..base.clone() }));
                }
            }
        }
    }
    for url in &rule.non_resource_urls {
        for verb in &rule.verbs {
            subrules.push(PolicyRule { non_resource_urls: one(url), verbs: one(verb), ..PolicyRule::default() });
        }
    }
    subrules
}

fn has(set: &[String], item: &str) -> bool {
    set.iter().any(|s| s == item)
}

fn has_all(set: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|w| has(set, w))
}

/// Upstream's `resourceCoversAll`: `*`, every resource exactly, or `*/<sub>` for a
/// `<resource>/<sub>` subresource.
fn resource_covers_all(owner: &[String], wanted: &[String]) -> bool {
    if has(owner, "*") || has_all(owner, wanted) {
        return true;
    }
    wanted.iter().all(|path| {
        has(owner, path) || path.split_once('/').is_some_and(|(_, sub)| has(owner, &format!("*/{sub}")))
    })
}

/// Upstream's `nonResourceURLCovers`: the exact path, or a prefix rule ending in `*`.
fn non_resource_url_covers(owner: &str, path: &str) -> bool {
    owner == path || (owner.ends_with('*') && path.starts_with(owner.trim_end_matches('*')))
}

/// Upstream's `ruleCovers`: whether `owner` grants everything the broken-down `sub` does.
pub fn rule_covers(owner: &PolicyRule, sub: &PolicyRule) -> bool {
    let verbs = has(&owner.verbs, "*") || has_all(&owner.verbs, &sub.verbs);
    let groups = has(&owner.api_groups, "*") || has_all(&owner.api_groups, &sub.api_groups);
    let resources = resource_covers_all(&owner.resources, &sub.resources);
    let urls = sub.non_resource_urls.iter().all(|p| owner.non_resource_urls.iter().any(|o| non_resource_url_covers(o, p)));
    let names = if sub.resource_names.is_empty() {
        owner.resource_names.is_empty()
    } else {
        owner.resource_names.is_empty() || has_all(&owner.resource_names, &sub.resource_names)
    };
    verbs && groups && resources && urls && names
}

/// Upstream's `Covers`: the broken-down servant rules no owner rule covers (empty: covered).
pub fn covers(owner: &[PolicyRule], servant: &[PolicyRule]) -> Vec<PolicyRule> {
    servant
        .iter()
        .flat_map(breakdown_rule)
        .filter(|sub| !owner.iter().any(|o| rule_covers(o, sub)))
        .collect()
}

/// The (group, resource) of a rule with one group, one resource, no resource names and no
/// URLs (upstream's `isSimpleResourceRule`).
fn simple_key(rule: &PolicyRule) -> Option<(String, String)> {
    if !rule.resource_names.is_empty() || !rule.non_resource_urls.is_empty() {
        return None;
    }
    match (rule.api_groups.as_slice(), rule.resources.as_slice()) {
        ([group], [resource]) => Some((group.clone(), resource.clone())),
        _ => None,
    }
}

/// Upstream's `CompactRules`: simple rules on the same group and resource merged, their verbs
/// appended in order; other rules kept as they are.
pub fn compact_rules(rules: &[PolicyRule]) -> Vec<PolicyRule> {
    let mut compacted = Vec::new();
    let mut simple: Vec<PolicyRule> = Vec::new();
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    for rule in rules {
        let Some(key) = simple_key(rule) else {
            compacted.push(rule.clone());
            continue;
        };
        match index.get(&key) {
            Some(&i) => simple[i].verbs.extend(rule.verbs.iter().cloned()),
            None => {
                index.insert(key, simple.len());
                simple.push(rule.clone());
            }
        }
    }
    compacted.extend(simple);
    compacted
}

/// Why a role reference does not resolve: upstream's registry errors (`GetRoleReferenceRules`
/// reads Roles and ClusterRoles through their storage).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The storage's NotFound (404).
    #[error("clusterroles.rbac.authorization.k8s.io {} not found", go_quote(.0))]
    ClusterRoleNotFound(String),
    /// The storage's NotFound (404).
    #[error("roles.rbac.authorization.k8s.io {} not found", go_quote(.0))]
    RoleNotFound(String),
    /// A Role looked up without a namespace: the storage's BadRequest (400).
    #[error("Namespace parameter required.")]
    NamespaceRequired,
    /// A roleRef kind other than Role or ClusterRole: a plain error (500).
    #[error("unsupported role reference kind: {}", go_quote(.0))]
    UnsupportedKind(String),
}

fn rules_of(obj: &Value) -> Vec<PolicyRule> {
    obj.get("rules").and_then(Value::as_array).map(|rs| rs.iter().map(PolicyRule::from_value).collect()).unwrap_or_default()
}

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// Upstream's `DefaultRuleResolver` over the stored Roles, ClusterRoles, RoleBindings and
/// ClusterRoleBindings.
#[derive(Debug, Clone, Default)]
pub struct RuleResolver {
    cluster_roles: HashMap<String, Vec<PolicyRule>>,
    roles: HashMap<(String, String), Vec<PolicyRule>>,
    cluster_role_bindings: Vec<Binding>,
    role_bindings: Vec<Binding>,
}

impl RuleResolver {
    /// A resolver over `objects` (told apart by `kind`; other kinds are ignored). Bindings are
    /// visited in the order given (the store lists them by name, as etcd does).
    pub fn from_objects<'a>(objects: impl IntoIterator<Item = &'a Value>) -> RuleResolver {
        let mut resolver = RuleResolver::default();
        for obj in objects {
            let (ns, name) = (text(obj, "/metadata/namespace").to_string(), text(obj, "/metadata/name").to_string());
            match text(obj, "/kind") {
                "ClusterRole" => {
                    resolver.cluster_roles.insert(name, rules_of(obj));
                }
                "Role" => {
                    resolver.roles.insert((ns, name), rules_of(obj));
                }
                "ClusterRoleBinding" => resolver.cluster_role_bindings.push(Binding { namespace: String::new(), ..Binding::from_value(obj) }),
                "RoleBinding" => resolver.role_bindings.push(Binding::from_value(obj)),
                _ => {}
            }
        }
        resolver
    }

    /// Upstream's `GetRoleReferenceRules`: the rules of the referenced Role (in
    /// `binding_namespace`) or ClusterRole.
    pub fn role_reference_rules(&self, kind: &str, name: &str, binding_namespace: &str) -> Result<&[PolicyRule], ResolveError> {
        match kind {
            "Role" if binding_namespace.is_empty() => Err(ResolveError::NamespaceRequired),
            "Role" => self
                .roles
                .get(&(binding_namespace.to_string(), name.to_string()))
                .map(Vec::as_slice)
                .ok_or_else(|| ResolveError::RoleNotFound(name.to_string())),
            "ClusterRole" => {
                self.cluster_roles.get(name).map(Vec::as_slice).ok_or_else(|| ResolveError::ClusterRoleNotFound(name.to_string()))
            }
            other => Err(ResolveError::UnsupportedKind(other.to_string())),
        }
    }

    /// Upstream's `RulesFor`: the rules of every ClusterRoleBinding, then every RoleBinding of
    /// `namespace` (none when empty), that applies to `user`; and the errors of the role
    /// references that did not resolve.
    pub fn rules_for(&self, user: &User, namespace: &str) -> (Vec<PolicyRule>, Vec<ResolveError>) {
        let (mut rules, mut errors) = (Vec::new(), Vec::new());
        let namespaced = self.role_bindings.iter().filter(|b| !namespace.is_empty() && b.namespace == namespace);
        for binding in self.cluster_role_bindings.iter().chain(namespaced) {
            if !binding.subjects.iter().any(|s| s.applies_to(user, &binding.namespace)) {
                continue;
            }
            match self.role_reference_rules(&binding.role_kind, &binding.role_name, &binding.namespace) {
                Ok(found) => rules.extend_from_slice(found),
                Err(e) => errors.push(e),
            }
        }
        (rules, errors)
    }
}

/// `ConfirmNoEscalation`'s refusal: the rules the user would grant without holding them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotHeld {
    pub user: String,
    pub groups: Vec<String>,
    /// The compacted missing rules as [`compact_string`]s, sorted, without duplicates.
    pub missing: Vec<String>,
    /// Role references of the user's bindings that did not resolve.
    pub resolution_errors: Vec<ResolveError>,
}

impl fmt::Display for NotHeld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "user {} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
            go_quote(&self.user),
            go_quote_list(&self.groups),
            self.missing.join("\n")
        )?;
        if !self.resolution_errors.is_empty() {
            let messages: Vec<String> = self.resolution_errors.iter().map(ToString::to_string).collect();
            write!(f, "; resolution errors: [{}]", aggregate(&messages))?;
        }
        Ok(())
    }
}

/// Why a write of an RBAC object is refused; the HTTP layer answers 403 Forbidden for the
/// first two, the role reference's own error for the last.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EscalationError {
    #[error("{0}")]
    NotHeld(NotHeld),
    #[error("must have cluster-admin privileges to use the aggregationRule")]
    AggregationRule,
    #[error(transparent)]
    RoleRef(#[from] ResolveError),
}

/// Upstream's `ConfirmNoEscalation`: `rules` must be covered by what `user` holds in
/// `namespace` (the request's namespace; "" for cluster-scoped objects).
pub fn confirm_no_escalation(resolver: &RuleResolver, user: &User, namespace: &str, rules: &[PolicyRule]) -> Result<(), EscalationError> {
    let (owner, resolution_errors) = resolver.rules_for(user, namespace);
    let missing = covers(&owner, rules);
    if missing.is_empty() {
        return Ok(());
    }
    let mut described: Vec<String> = compact_rules(&missing).iter().map(compact_string).collect();
    described.sort();
    described.dedup();
    Err(EscalationError::NotHeld(NotHeld { user: user.name.clone(), groups: user.groups.clone(), missing: described, resolution_errors }))
}

/// Upstream's `EscalationAllowed`: members of `system:masters` skip every check.
pub fn escalation_allowed(user: &User) -> bool {
    user.in_group(SYSTEM_PRIVILEGED_GROUP)
}

/// The RBAC resources whose writes are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RbacResource {
    Roles,
    ClusterRoles,
    RoleBindings,
    ClusterRoleBindings,
}

impl RbacResource {
    /// The resource of a plural name in `rbac.authorization.k8s.io`.
    pub fn from_plural(plural: &str) -> Option<RbacResource> {
        match plural {
            "roles" => Some(RbacResource::Roles),
            "clusterroles" => Some(RbacResource::ClusterRoles),
            "rolebindings" => Some(RbacResource::RoleBindings),
            "clusterrolebindings" => Some(RbacResource::ClusterRoleBindings),
            _ => None,
        }
    }

    /// The plural resource name.
    pub fn plural(self) -> &'static str {
        match self {
            RbacResource::Roles => "roles",
            RbacResource::ClusterRoles => "clusterroles",
            RbacResource::RoleBindings => "rolebindings",
            RbacResource::ClusterRoleBindings => "clusterrolebindings",
        }
    }

    /// Roles and ClusterRoles (as opposed to bindings).
    pub fn is_role(self) -> bool {
        matches!(self, RbacResource::Roles | RbacResource::ClusterRoles)
    }
}

/// Upstream's `RoleEscalationAuthorized` attributes: verb `escalate` on the request's role
/// resource, name (empty for a POST) and namespace.
pub fn escalate_attributes(user: &User, resource: RbacResource, namespace: &str, name: &str) -> Attributes {
    let mut attrs = Attributes::resource(user.clone(), "escalate", RBAC_GROUP, resource.plural(), namespace, name);
    attrs.api_version = "*".into();
    attrs
}

/// Upstream's `BindingAuthorized` attributes: verb `bind` on the referenced `roles` or
/// `clusterroles` by name, in the binding's namespace ("" for a ClusterRoleBinding); `None`
/// for any other roleRef kind (never authorized).
pub fn bind_attributes(user: &User, binding: &Value, binding_namespace: &str) -> Option<Attributes> {
    let resource = match text(binding, "/roleRef/kind") {
        "ClusterRole" => "clusterroles",
        "Role" => "roles",
        _ => return None,
    };
    let (group, name) = (text(binding, "/roleRef/apiGroup"), text(binding, "/roleRef/name"));
    let mut attrs = Attributes::resource(user.clone(), "bind", group, resource, binding_namespace, name);
    attrs.api_version = "*".into();
    Some(attrs)
}

/// JSON with null, empty lists and empty objects left out (upstream's semantic equality
/// treats nil and empty alike).
fn normalized(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), normalized(v)))
                .filter(|(_, v)| !(v.is_null() || v.as_array().is_some_and(Vec::is_empty) || v.as_object().is_some_and(|o| o.is_empty())))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(normalized).collect()),
        other => other.clone(),
    }
}

/// Upstream's `IsOnlyMutatingGCFields`: the update changes nothing but `ownerReferences`,
/// `finalizers` and `selfLink` (the server-maintained `resourceVersion` and `managedFields`
/// are not compared here).
pub fn is_only_mutating_gc_fields(new: &Value, old: &Value) -> bool {
    let with_old_gc_fields = |v: &Value| {
        let mut c = v.clone();
        if let Some(meta) = c.get_mut("metadata").and_then(Value::as_object_mut) {
            for key in ["ownerReferences", "finalizers", "selfLink"] {
                match old.pointer(&format!("/metadata/{key}")) {
                    Some(value) => meta.insert(key.into(), value.clone()),
                    None => meta.remove(key),
                };
            }
            meta.remove("resourceVersion");
            meta.remove("managedFields");
        }
        normalized(&c)
    };
    with_old_gc_fields(new) == with_old_gc_fields(old)
}

/// Upstream's `hasAggregationRule`: an aggregationRule with at least one selector.
pub fn has_aggregation_rule(cluster_role: &Value) -> bool {
    cluster_role.pointer("/aggregationRule/clusterRoleSelectors").and_then(Value::as_array).is_some_and(|s| !s.is_empty())
}

/// Upstream's `fullAuthority`: `*` on `*.*` and on every non-resource URL.
pub fn full_authority() -> Vec<PolicyRule> {
    let all = || vec!["*".to_string()];
    vec![
        PolicyRule { verbs: all(), api_groups: all(), resources: all(), ..PolicyRule::default() },
        PolicyRule { verbs: all(), non_resource_urls: all(), ..PolicyRule::default() },
    ]
}

/// One create or update of an RBAC object by a user outside `system:masters`.
#[derive(Debug, Clone, Copy)]
pub struct RbacWrite<'a> {
    pub user: &'a User,
    pub resource: RbacResource,
    /// The request's namespace ("" for ClusterRoles and ClusterRoleBindings).
    pub namespace: &'a str,
    /// The object about to be stored (a patch already merged).
    pub object: &'a Value,
    /// The stored object, on updates.
    pub old_object: Option<&'a Value>,
}

impl RbacWrite<'_> {
    fn only_gc_fields(&self) -> bool {
        self.old_object.is_some_and(|old| is_only_mutating_gc_fields(self.object, old))
    }
}

/// The role storages' check, the user not being allowed to `escalate`: every rule of the new
/// Role/ClusterRole must be held; a ClusterRole with an aggregationRule (new or old) also
/// needs full authority. Updates touching only GC fields pass.
pub fn check_role(write: &RbacWrite, resolver: &RuleResolver) -> Result<(), EscalationError> {
    if write.only_gc_fields() {
        return Ok(());
    }
    confirm_no_escalation(resolver, write.user, write.namespace, &rules_of(write.object))?;
    let aggregated = has_aggregation_rule(write.object) || write.old_object.is_some_and(has_aggregation_rule);
    if write.resource == RbacResource::ClusterRoles && aggregated {
        confirm_no_escalation(resolver, write.user, write.namespace, &full_authority())
            .map_err(|_| EscalationError::AggregationRule)?;
    }
    Ok(())
}

/// The binding storages' check: allowed when `authorized` grants `bind` on the referenced
/// role, else the referenced role's rules must resolve and be held. Updates touching only GC
/// fields pass.
pub fn check_binding(write: &RbacWrite, resolver: &RuleResolver, authorized: impl Fn(&Attributes) -> bool) -> Result<(), EscalationError> {
    if write.only_gc_fields() {
        return Ok(());
    }
    let binding_namespace = if write.resource == RbacResource::ClusterRoleBindings { "" } else { write.namespace };
    if bind_attributes(write.user, write.object, binding_namespace).is_some_and(|attrs| authorized(&attrs)) {
        return Ok(());
    }
    let (kind, name) = (text(write.object, "/roleRef/kind"), text(write.object, "/roleRef/name"));
    let rules = resolver.role_reference_rules(kind, name, binding_namespace)?;
    confirm_no_escalation(resolver, write.user, write.namespace, rules)
}

#[cfg(test)]
#[path = "escalation_tests.rs"]
mod tests;
