//! Chainsaw `Test` files (`apiVersion: chainsaw.kyverno.io/v1alpha1`, `kind: Test`), loaded by
//! [`crate::load`] into the same [`Scenario`] as nodekit's own files, with
//! [`Origin::ChainsawTest`] and a default world: one node (`node-a`), the runtime the command
//! line chooses, nftables, no configuration overrides, a 20 s node grace period.
//!
//! What maps 1:1: `spec.description`, `spec.timeouts` (over Chainsaw's defaults), the steps
//! (`name`, `description`, `timeouts`, `try`, `catch`, `finally`, `cleanup`) and the operations
//! apply, assert, command, create, delete, describe, error, events, get, patch, podLogs,
//! script, sleep, update and wait with their fields. `spec.catch` is put in front of every
//! step's catch (Chainsaw runs the test's catch before the step's). Fields that only change how
//! Chainsaw prints (`format`, `showEvents`, `skipLogOutput`, `skipCommandOutput`) and test
//! scheduling hints (`concurrent`, `failFast`) are checked and ignored; `template`, `dryRun`,
//! `skip`, `skipDelete` and `fastNamespaceDeletion` are accepted when `false`.
//!
//! What is refused by name, before anything runs: the `proxy` operation, bindings, outputs,
//! templating (`template: true`, `(…)` keys and `($…)` values in applied objects), clusters,
//! step templates (`use`, `kind: StepTemplate`), compilers, expectations (`expect`), dry runs,
//! scenarios, namespace templates, `workDir`, patch `subresource`, deletion propagation
//! policies, forced termination grace periods, delays before cleanup; and in a Test, nodekit's
//! own additions (`world`, `reproduces`, `fault`, `heal`, `traffic`, `capture`, `holdFor`, event
//! expectations).
//! `chainsaw.kyverno.io/v1alpha2` defines no Test kind: such a file is refused with a message
//! saying so.
//!
//! The namespace. Chainsaw runs each test in an ephemeral namespace unless `spec.namespace`
//! names one. [`Scenario`] has no namespace field, so the loader makes it explicit:
//! - the namespace is `spec.namespace`, or `chainsaw-<test name>` (deterministic: the runner
//!   can find it; cut to 63 characters);
//! - every object of a namespaced kind without `metadata.namespace` (in apply, create, patch,
//!   update, delete, assert and error) gets it, as do `delete.ref`, `wait`, `get` and
//!   `describe` of a namespaced kind, and `events` and `podLogs`, when they name no namespace;
//!   the value `($namespace)` anywhere in those objects and fields is replaced by it (the one
//!   Chainsaw binding nodekit knows); `script` and `command` get `NAMESPACE` in their
//!   environment unless they set it (as Chainsaw does);
//! - a first step named `namespace` applies the Namespace object, so the runner creates it and,
//!   as with everything a step creates, deletes it when the scenario ends. Unlike Chainsaw,
//!   which deletes only a namespace it created, nodekit deletes a `spec.namespace` that already
//!   existed, except `default`, `kube-system`, `kube-public` and `kube-node-lease`, which get
//!   no step at all.
//!
//! Kinds are cluster-scoped when they are one of Kubernetes' built-in cluster-scoped kinds
//! (Namespace, Node, PersistentVolume, ClusterRole, CustomResourceDefinition, …); any other
//! kind, custom resources included, is taken as namespaced.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::load::{Node, Yaml};
use crate::model::{Action, AuthorizationMode, Delete, NodeSpec, ObjectQuery, Operation, ProxyMode, Resources, Scenario, Step, WorldSpec};

/// The world a Chainsaw Test runs in (and a Scenario without `spec.world`).
pub fn default_world() -> WorldSpec {
    WorldSpec {
        nodes: vec![NodeSpec { name: node_name(0), kubelet_config: Value::Object(Map::new()) }],
        runtime: None,
        proxy_mode: ProxyMode::Nftables,
        kubelet_config: Value::Object(Map::new()),
        proxy_config: Value::Object(Map::new()),
        node_monitor_grace_period: Duration::from_secs(20),
        authorization_mode: AuthorizationMode::NodeRbac,
    }
}

/// `node-a`, `node-b`, … for a world given as a count.
pub(crate) fn node_name(i: usize) -> String {
    let letter = char::from(b'a' + (i % 26) as u8);
    format!("node-{letter}")
}

/// The namespace Chainsaw would run a test in when `spec.namespace` is not set, made
/// deterministic: `chainsaw-<test name>`, at most 63 characters.
pub fn namespace_for(test_name: &str) -> String {
    let mut ns: String = format!("chainsaw-{test_name}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .take(63)
        .collect();
    while ns.ends_with('-') {
        ns.pop();
    }
    ns
}

// ---------------------------------------------------------------------------------------------
// Chainsaw fields nodekit does not do, per place.

/// Test (and Scenario) spec.
pub(crate) const TEST_SPEC_FOREIGN: &[&str] = &[
    "bindings",
    "scenarios",
    "cluster",
    "clusters",
    "template",
    "compiler",
    "namespaceTemplate",
    "namespaceTemplateCompiler",
    "fastNamespaceDeletion",
    "forceTerminationGracePeriod",
    "delayBeforeCleanup",
    "deletionPropagationPolicy",
    // Only reached in a Scenario (a Test allows them).
    "namespace",
    "catch",
    "skip",
    "skipDelete",
];
/// A step.
pub(crate) const STEP_FOREIGN: &[&str] =
    &["use", "bindings", "cluster", "clusters", "template", "compiler", "skipDelete", "deletionPropagationPolicy"];
/// apply, create, update.
pub(crate) const RESOURCE_FOREIGN: &[&str] =
    &["bindings", "cluster", "clusters", "dryRun", "expect", "outputs", "template"];
/// patch.
pub(crate) const PATCH_FOREIGN: &[&str] =
    &["bindings", "cluster", "clusters", "dryRun", "expect", "outputs", "template", "subresource"];
/// assert, error.
pub(crate) const CHECK_FOREIGN: &[&str] = &["bindings", "cluster", "clusters", "template"];
/// delete.
pub(crate) const DELETE_FOREIGN: &[&str] =
    &["bindings", "cluster", "clusters", "expect", "template", "deletionPropagationPolicy"];
/// wait, get, describe, events, podLogs.
pub(crate) const COLLECTOR_FOREIGN: &[&str] = &["cluster", "clusters"];
/// script, command.
pub(crate) const EXEC_FOREIGN: &[&str] = &["bindings", "outputs", "cluster", "clusters", "workDir"];

/// The message refusing a Chainsaw field, or `None` when it is harmless as written (a `false`
/// that asks for what nodekit does anyway).
pub(crate) fn foreign_field(key: &str, value: &Node) -> Option<String> {
    let off = matches!(value.v, Yaml::Bool(false) | Yaml::Null);
    let what = match key {
        "bindings" => "Chainsaw bindings",
        "outputs" => "Chainsaw outputs",
        "template" if off => return None,
        "template" => "Chainsaw templating; nodekit sends objects as written",
        "cluster" | "clusters" => "Chainsaw multi-cluster tests",
        "use" => "Chainsaw step templates",
        "compiler" => "Chainsaw expression compilers",
        "expect" => "Chainsaw expectations on operation results",
        "dryRun" if off => return None,
        "dryRun" => "Chainsaw dry runs",
        "scenarios" => "Chainsaw scenarios",
        "namespaceTemplate" | "namespaceTemplateCompiler" => "Chainsaw namespace templates",
        "fastNamespaceDeletion" if off => return None,
        "fastNamespaceDeletion" => "Chainsaw fastNamespaceDeletion",
        "forceTerminationGracePeriod" => "Chainsaw forceTerminationGracePeriod",
        "delayBeforeCleanup" => "Chainsaw delayBeforeCleanup",
        "deletionPropagationPolicy" => "Chainsaw deletion propagation policies",
        "workDir" => "Chainsaw working directories; scripts run in the scenario's directory",
        "subresource" => "Chainsaw patches of subresources",
        "skip" | "skipDelete" if off => return None,
        "skip" | "skipDelete" => return Some(refused_true(key)),
        "namespace" => {
            return Some(
                "not supported in a Scenario (Chainsaw's test namespace); set metadata.namespace on the objects"
                    .to_string(),
            );
        }
        "catch" => {
            return Some(
                "not supported in a Scenario (Chainsaw's test-level catch); give each step its catch".to_string(),
            );
        }
        other => return Some(format!("not supported by nodekit (Chainsaw {other}); remove it")),
    };
    Some(format!("not supported by nodekit ({what}); remove it"))
}

/// `skip: true` / `skipDelete: true`.
pub(crate) fn refused_true(key: &str) -> String {
    match key {
        "skip" => "not supported by nodekit (Chainsaw skip: true); leave the file out of the run".to_string(),
        "skipDelete" => {
            "not supported by nodekit (Chainsaw skipDelete: true); nodekit deletes what a scenario created".to_string()
        }
        other => format!("not supported by nodekit (Chainsaw {other}: true); remove it"),
    }
}

/// A nodekit addition found in a Chainsaw Test.
pub(crate) fn nodekit_addition(what: &str) -> String {
    format!(
        "{what} is a nodekit addition, not part of a Chainsaw Test; write the file as apiVersion: nodekit.dev/v1alpha1, kind: Scenario"
    )
}

/// An expression where nodekit evaluates none (objects to apply, create, patch, update, delete).
pub(crate) fn templating(test: bool) -> String {
    if test {
        "not supported by nodekit (Chainsaw templating): objects are sent as written, only the value ($namespace) is replaced".to_string()
    } else {
        "not supported by nodekit (Chainsaw templating): objects are sent as written; write the value".to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// The namespace.

/// Kubernetes' built-in cluster-scoped kinds.
const CLUSTER_SCOPED: &[&str] = &[
    "APIService",
    "CSIDriver",
    "CSINode",
    "CertificateSigningRequest",
    "ClusterRole",
    "ClusterRoleBinding",
    "ClusterTrustBundle",
    "ComponentStatus",
    "CustomResourceDefinition",
    "DeviceClass",
    "FlowSchema",
    "IPAddress",
    "IngressClass",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "MutatingWebhookConfiguration",
    "Namespace",
    "Node",
    "PersistentVolume",
    "PriorityClass",
    "PriorityLevelConfiguration",
    "ResourceSlice",
    "RuntimeClass",
    "SelfSubjectAccessReview",
    "SelfSubjectReview",
    "SelfSubjectRulesReview",
    "ServiceCIDR",
    "StorageClass",
    "StorageVersion",
    "StorageVersionMigration",
    "SubjectAccessReview",
    "TokenReview",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration",
    "VolumeAttachment",
    "VolumeAttributesClass",
];

/// Namespaces that exist in every cluster: used, never created or deleted.
const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

pub fn is_namespaced(kind: &str) -> bool {
    !CLUSTER_SCOPED.contains(&kind)
}

const BINDING: &str = "($namespace)";

/// Puts the test's namespace into everything that needs one and prepends the step that
/// creates it (see the module documentation). `namespace`: `spec.namespace` and its line;
/// `name_line`: the line of `metadata.name` (for the generated namespace).
pub(crate) fn set_namespace(scenario: &mut Scenario, namespace: Option<(String, usize)>, name_line: usize) {
    let (ns, line) = namespace.unwrap_or_else(|| (namespace_for(&scenario.name), name_line));
    for step in &mut scenario.steps {
        for op in step.try_.iter_mut().chain(&mut step.catch).chain(&mut step.finally).chain(&mut step.cleanup) {
            namespace_operation(op, &ns);
        }
    }
    if SYSTEM_NAMESPACES.contains(&ns.as_str()) {
        return;
    }
    let mut metadata = Map::new();
    metadata.insert("name".to_string(), Value::String(ns.clone()));
    let mut object = Map::new();
    object.insert("apiVersion".to_string(), Value::String("v1".to_string()));
    object.insert("kind".to_string(), Value::String("Namespace".to_string()));
    object.insert("metadata".to_string(), Value::Object(metadata));
    let step = Step {
        name: "namespace".to_string(),
        description: Some(format!("The test's namespace {ns} (Chainsaw runs every test in a namespace)")),
        timeouts: scenario.timeouts,
        try_: vec![Operation {
            description: None,
            continue_on_error: false,
            timeout: None,
            line,
            action: Action::Apply(Resources { objects: vec![Value::Object(object)], source: "inline".to_string() }),
        }],
        catch: Vec::new(),
        finally: Vec::new(),
        cleanup: Vec::new(),
    };
    scenario.steps.insert(0, step);
}

fn namespace_operation(op: &mut Operation, ns: &str) {
    match &mut op.action {
        Action::Apply(r) | Action::Create(r) | Action::Patch(r) | Action::Update(r) => {
            namespace_objects(&mut r.objects, ns)
        }
        Action::Delete(Delete::Objects(r)) => namespace_objects(&mut r.objects, ns),
        Action::Delete(Delete::Ref(r)) => {
            fill(&mut r.namespace, ns, is_namespaced(&r.kind));
        }
        Action::Assert(c) | Action::Error(c) => namespace_objects(&mut c.expected, ns),
        Action::Wait(w) => namespace_query(&mut w.target, ns),
        Action::Get(q) | Action::Describe(q) => namespace_query(q, ns),
        Action::Events(e) => {
            fill(&mut e.namespace, ns, true);
            if let Some(x) = &mut e.expect
                && x.involved_namespace.as_deref() == Some(BINDING)
            {
                x.involved_namespace = Some(ns.to_string());
            }
        }
        Action::PodLogs(p) => fill(&mut p.namespace, ns, true),
        Action::Script(s) => add_env(&mut s.env, ns),
        Action::Command(c) => add_env(&mut c.env, ns),
        // nodekit additions (a Test cannot hold them) and operations without objects.
        Action::Sleep(_) | Action::Fault(_) | Action::Heal(_) | Action::Traffic(_) | Action::Capture(_) => {}
    }
}

/// `None` → the namespace (when `namespaced`); `($namespace)` → the namespace.
fn fill(slot: &mut Option<String>, ns: &str, namespaced: bool) {
    match slot {
        None if namespaced => *slot = Some(ns.to_string()),
        Some(s) if s == BINDING => *slot = Some(ns.to_string()),
        _ => {}
    }
}

fn namespace_query(q: &mut ObjectQuery, ns: &str) {
    let namespaced = is_namespaced(&q.kind);
    fill(&mut q.namespace, ns, namespaced);
}

fn add_env(env: &mut Vec<(String, String)>, ns: &str) {
    if !env.iter().any(|(k, _)| k == "NAMESPACE") {
        env.push(("NAMESPACE".to_string(), ns.to_string()));
    }
}

fn namespace_objects(objects: &mut [Value], ns: &str) {
    for object in objects {
        replace_binding(object, ns, 0);
        let Value::Object(map) = object else { continue };
        let namespaced = match map.get("kind") {
            Some(Value::String(kind)) => is_namespaced(kind),
            _ => false,
        };
        if !namespaced {
            continue;
        }
        let metadata = map.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(meta) = metadata
            && !meta.contains_key("namespace")
        {
            meta.insert("namespace".to_string(), Value::String(ns.to_string()));
        }
    }
}

pub(crate) fn replace_binding(value: &mut Value, ns: &str, depth: usize) {
    if depth > 256 {
        return;
    }
    match value {
        Value::String(s) if s == BINDING => *s = ns.to_string(),
        Value::Array(items) => items.iter_mut().for_each(|v| replace_binding(v, ns, depth + 1)),
        Value::Object(map) => map.values_mut().for_each(|v| replace_binding(v, ns, depth + 1)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names_are_labels() {
        assert_eq!(namespace_for("deploy"), "chainsaw-deploy");
        assert_eq!(namespace_for("a.b_c"), "chainsaw-a-b-c");
        let long = namespace_for(&"x".repeat(100));
        assert_eq!(long.len(), 63);
        let trailing = namespace_for(&format!("{}-y", "x".repeat(53)));
        assert!(!trailing.ends_with('-'), "{trailing}");
        assert!(crate::load::dns_label_problem(&trailing).is_none());
    }

    #[test]
    fn node_names() {
        assert_eq!(node_name(0), "node-a");
        assert_eq!(node_name(7), "node-h");
    }

    #[test]
    fn scoping() {
        assert!(is_namespaced("Pod"));
        assert!(is_namespaced("Deployment"));
        assert!(!is_namespaced("Namespace"));
        assert!(!is_namespaced("ClusterRole"));
    }

    #[test]
    fn objects_get_the_namespace() {
        let mut objects = vec![
            serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}}),
            serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x", "namespace": "other"}}),
            serde_json::json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"}}),
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "($namespace)"}, "data": {"ns": "($namespace)"}}),
        ];
        namespace_objects(&mut objects, "chainsaw-t");
        assert_eq!(objects[0]["metadata"]["namespace"], "chainsaw-t");
        assert_eq!(objects[1]["metadata"]["namespace"], "other");
        assert!(objects[2]["metadata"].get("namespace").is_none());
        assert_eq!(objects[3]["metadata"]["namespace"], "chainsaw-t");
        assert_eq!(objects[3]["data"]["ns"], "chainsaw-t");
    }
}
