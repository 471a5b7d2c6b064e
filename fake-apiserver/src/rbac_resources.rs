//! The `rbac.authorization.k8s.io/v1` resources as served objects: upstream's defaulting
//! (pkg/apis/rbac/v1/defaults.go), validation (pkg/apis/rbac/validation/validation.go), the
//! `kubectl get` table columns (pkg/printers/internalversion/printers.go) and the bootstrap
//! policy the RBAC post-start hook creates.

use serde_json::{Value, json};

use crate::api::Api;
use crate::auth::bootstrap;
use crate::auth::go_quote;
use crate::auth::rbac::RBAC_GROUP;
use crate::error::{ApiError, Cause};
use crate::resources::{self, ResourceId};

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    list(v, key).iter().map(|s| s.as_str().map_or_else(|| s.to_string(), str::to_string)).collect()
}

/// Upstream's v1 defaults: a binding's `roleRef.apiGroup` and `User`/`Group` subjects'
/// `apiGroup` become `rbac.authorization.k8s.io` when empty.
pub fn apply_defaults(obj: &mut Value) {
    if let Some(role_ref) = obj.get_mut("roleRef").and_then(Value::as_object_mut)
        && role_ref.get("apiGroup").and_then(Value::as_str).unwrap_or("").is_empty()
    {
        role_ref.insert("apiGroup".into(), json!(RBAC_GROUP));
    }
    let Some(subjects) = obj.get_mut("subjects").and_then(Value::as_array_mut) else { return };
    for s in subjects.iter_mut().filter_map(Value::as_object_mut) {
        let kind = s.get("kind").and_then(Value::as_str).unwrap_or("");
        let empty = s.get("apiGroup").and_then(Value::as_str).unwrap_or("").is_empty();
        if empty && matches!(kind, "User" | "Group") {
            s.insert("apiGroup".into(), json!(RBAC_GROUP));
        }
    }
}

/// A `Required value` cause with upstream's detail text.
fn required_with(field: String, detail: &str) -> Cause {
    Cause { reason: "FieldValueRequired", field, message: format!("Required value: {detail}") }
}

/// An `Invalid value` cause whose value is already rendered as Go's `%#v` would.
fn invalid_rendered(field: String, rendered: String, detail: &str) -> Cause {
    Cause { reason: "FieldValueInvalid", field, message: format!("Invalid value: {rendered}: {detail}") }
}

/// Go's `%#v` of a `[]string`.
fn go_string_slice(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// Upstream's `ValidatePolicyRule` for `rules[i]`.
fn check_rule(rule: &Value, namespaced: bool, path: &str, causes: &mut Vec<Cause>) {
    if list(rule, "verbs").is_empty() {
        causes.push(required_with(format!("{path}.verbs"), "verbs must contain at least one value"));
    }
    let urls = strings(rule, "nonResourceURLs");
    if !urls.is_empty() {
        let field = format!("{path}.nonResourceURLs");
        if namespaced {
            causes.push(invalid_rendered(field.clone(), go_string_slice(&urls), "namespaced rules cannot apply to non-resource URLs"));
        }
        if ["apiGroups", "resources", "resourceNames"].iter().any(|k| !list(rule, k).is_empty()) {
            causes.push(invalid_rendered(field, go_string_slice(&urls), "rules cannot apply to both regular resources and non-resource URLs"));
        }
        return;
    }
    if list(rule, "apiGroups").is_empty() {
        causes.push(required_with(format!("{path}.apiGroups"), "resource rules must supply at least one api group"));
    }
    if list(rule, "resources").is_empty() {
        causes.push(required_with(format!("{path}.resources"), "resource rules must supply at least one resource"));
    }
}

/// Upstream's `IsValidPathSegmentName` messages (`ValidateRBACName`).
fn path_segment_errors(name: &str) -> Vec<&'static str> {
    match name {
        "." => return vec!["may not be '.'"],
        ".." => return vec!["may not be '..'"],
        _ => {}
    }
    let mut out = Vec::new();
    if name.contains('/') {
        out.push("may not contain '/'");
    }
    if name.contains('%') {
        out.push("may not contain '%'");
    }
    out
}

fn check_role_ref(obj: &Value, causes: &mut Vec<Cause>) {
    let group = text(obj, "/roleRef/apiGroup");
    if group != RBAC_GROUP {
        causes.push(Cause::not_supported("roleRef.apiGroup", group, &[RBAC_GROUP]));
    }
    let kind = text(obj, "/roleRef/kind");
    if !matches!(kind, "Role" | "ClusterRole") {
        causes.push(Cause::not_supported("roleRef.kind", kind, &["Role", "ClusterRole"]));
    }
    let name = text(obj, "/roleRef/name");
    if name.is_empty() {
        causes.push(Cause::required("roleRef.name"));
    }
    for msg in path_segment_errors(name) {
        causes.push(Cause::invalid("roleRef.name", name, msg));
    }
}

/// Upstream's `ValidateRoleBindingSubject`; `namespaced` is false for ClusterRoleBindings.
fn check_subject(s: &Value, namespaced: bool, path: &str, causes: &mut Vec<Cause>) {
    let (kind, name, group) = (text(s, "/kind"), text(s, "/name"), text(s, "/apiGroup"));
    if name.is_empty() {
        causes.push(Cause::required(format!("{path}.name")));
    }
    match kind {
        "ServiceAccount" => {
            if !name.is_empty()
                && let Some(msg) = crate::validation::check_name(resources::NameRule::Subdomain, name)
            {
                causes.push(Cause::invalid(format!("{path}.name"), name, msg));
            }
            if !group.is_empty() {
                causes.push(Cause::not_supported(format!("{path}.apiGroup"), group, &[""]));
            }
            if !namespaced && text(s, "/namespace").is_empty() {
                causes.push(Cause::required(format!("{path}.namespace")));
            }
        }
        "User" | "Group" if group != RBAC_GROUP => {
            causes.push(Cause::not_supported(format!("{path}.apiGroup"), group, &[RBAC_GROUP]));
        }
        "User" | "Group" => {}
        other => causes.push(Cause::not_supported(format!("{path}.kind"), other, &["ServiceAccount", "User", "Group"])),
    }
}

/// Upstream's `ValidateRole`, `ValidateClusterRole`, `ValidateRoleBinding` and
/// `ValidateClusterRoleBinding` beyond object metadata.
pub fn check(res: ResourceId, obj: &Value, causes: &mut Vec<Cause>) {
    let namespaced = res.desc().namespaced;
    match res {
        resources::ROLES | resources::CLUSTERROLES => {
            for (i, rule) in list(obj, "rules").iter().enumerate() {
                check_rule(rule, namespaced, &format!("rules[{i}]"), causes);
            }
            if res == resources::CLUSTERROLES
                && obj.get("aggregationRule").is_some_and(Value::is_object)
                && list(&obj["aggregationRule"], "clusterRoleSelectors").is_empty()
            {
                causes.push(required_with(
                    "aggregationRule.clusterRoleSelectors".into(),
                    "at least one clusterRoleSelector required if aggregationRule is non-nil",
                ));
            }
        }
        resources::ROLEBINDINGS | resources::CLUSTERROLEBINDINGS => {
            check_role_ref(obj, causes);
            for (i, s) in list(obj, "subjects").iter().enumerate() {
                check_subject(s, namespaced, &format!("subjects[{i}]"), causes);
            }
        }
        _ => {}
    }
}

/// Go's `%#v` of the internal `rbac.RoleRef` of a binding.
fn role_ref_go(obj: &Value) -> String {
    format!(
        "rbac.RoleRef{{APIGroup:{}, Kind:{}, Name:{}}}",
        go_quote(text(obj, "/roleRef/apiGroup")),
        go_quote(text(obj, "/roleRef/kind")),
        go_quote(text(obj, "/roleRef/name"))
    )
}

/// [`check`] plus upstream's update rule: a binding's `roleRef` is immutable.
pub fn check_update(res: ResourceId, old: &Value, new: &Value, causes: &mut Vec<Cause>) {
    check(res, new, causes);
    if !matches!(res, resources::ROLEBINDINGS | resources::CLUSTERROLEBINDINGS) {
        return;
    }
    let role_ref = |v: &Value| ["apiGroup", "kind", "name"].map(|k| text(v, &format!("/roleRef/{k}")).to_string());
    if role_ref(old) != role_ref(new) {
        causes.push(invalid_rendered("roleRef".into(), role_ref_go(new), "cannot change roleRef"));
    }
}

/// Upstream's `NewInvalid` for an RBAC kind: the message names `Kind.group`, the details
/// carry the plain kind and the group.
pub fn invalid(res: ResourceId, name: &str, causes: Vec<Cause>) -> ApiError {
    let d = res.desc();
    let mut e = ApiError::invalid(d.group, &format!("{}.{}", d.kind, d.group), name, causes);
    if let Some(details) = e.details.as_mut() {
        details["kind"] = json!(d.kind);
    }
    e
}

/// Table columns: roles `Name`, `Created At`; bindings `Name`, `Role`, `Age` and (wide)
/// `Users`, `Groups`, `ServiceAccounts`.
pub fn table_columns(res: ResourceId, name: Value, age: Value) -> Vec<Value> {
    let col = |n: &str, ty: &str, priority: i64, d: &str| {
        json!({"name": n, "type": ty, "format": "", "description": d, "priority": priority})
    };
    let created = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
    if matches!(res, resources::ROLES | resources::CLUSTERROLES) {
        return vec![name, col("Created At", "date", 0, created)];
    }
    let of = if res == resources::ROLEBINDINGS { "roleBinding" } else { "clusterRoleBinding" };
    vec![
        name,
        col("Role", "string", 0, "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error. This field is immutable."),
        age,
        col("Users", "string", 1, &format!("Users in the {of}")),
        col("Groups", "string", 1, &format!("Groups in the {of}")),
        col("ServiceAccounts", "string", 1, &format!("ServiceAccounts in the {of}")),
    ]
}

/// Table cells matching [`table_columns`] (`age` is the binding's rendered age).
pub fn table_cells(res: ResourceId, v: &Value, age: String) -> Vec<Value> {
    let name = json!(text(v, "/metadata/name"));
    if matches!(res, resources::ROLES | resources::CLUSTERROLES) {
        return vec![name, json!(text(v, "/metadata/creationTimestamp"))];
    }
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for s in list(v, "subjects") {
        match text(s, "/kind") {
            "ServiceAccount" => sas.push(format!("{}/{}", text(s, "/namespace"), text(s, "/name"))),
            "User" => users.push(text(s, "/name").to_string()),
            "Group" => groups.push(text(s, "/name").to_string()),
            _ => {}
        }
    }
    let role = format!("{}/{}", text(v, "/roleRef/kind"), text(v, "/roleRef/name"));
    vec![name, json!(role), json!(age), json!(users.join(", ")), json!(groups.join(", ")), json!(sas.join(", "))]
}

/// Why a bootstrap object could not be stored.
#[derive(Debug, thiserror::Error)]
#[error("creating bootstrap {kind} {name:?}: {source}")]
pub struct BootstrapError {
    pub kind: String,
    pub name: String,
    #[source]
    pub source: Box<ApiError>,
}

/// Upstream's RBAC post-start hook: stores every bootstrap ClusterRole and ClusterRoleBinding
/// that does not exist yet (existing objects are left as they are).
pub fn create_bootstrap_policy(api: &Api) -> Result<usize, BootstrapError> {
    let mut created = 0;
    for obj in bootstrap::objects() {
        let kind = text(&obj, "/kind").to_string();
        let res = if kind == "ClusterRole" { resources::CLUSTERROLES } else { resources::CLUSTERROLEBINDINGS };
        let name = text(&obj, "/metadata/name").to_string();
        match api.create(res, "", obj) {
            Ok(_) => created += 1,
            Err(e) if e.code == 409 => {}
            Err(source) => return Err(BootstrapError { kind, name, source: Box::new(source) }),
        }
    }
    Ok(created)
}

#[cfg(test)]
#[path = "rbac_resources_tests.rs"]
mod tests;
