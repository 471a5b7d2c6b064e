//! The NodeRestriction admission plugin (plugin/pkg/admission/noderestriction/admission.go) as
//! pure functions: what a node (`system:node:<name>` in `system:nodes`) may write.
//!
//! Denials are upstream's `admission.NewForbidden`: `<resource> "<object name>" is forbidden:
//! <detail>` where the name comes from the request's object (`Unknown` without one, e.g. on
//! delete). Objects that must exist are looked up through [`ObjectLookup`]; a missing one is
//! the lister's NotFound (`pod "x" not found`).

use serde_json::Value;

use super::forbidden::{new_forbidden, not_found_status};
use super::pod_refs::{self, MIRROR_POD_ANNOTATION};
use super::user::{User, node_identity};
use super::{go_quote, node::NAMESPACE_NODE_LEASE};

/// An admission operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

impl Operation {
    /// Upstream's spelling: `CREATE`, `UPDATE`, `DELETE`, `CONNECT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }
}

/// One write to admit (upstream's `admission.Attributes`).
#[derive(Debug, Clone, Copy)]
pub struct AdmissionRequest<'a> {
    pub user: &'a User,
    pub operation: Operation,
    pub api_group: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub namespace: &'a str,
    /// The name from the URL; for a create without one, the object's `metadata.name` is used
    /// (as upstream's create handler does).
    pub name: &'a str,
    /// The new object (create/update), or the request body of a subresource (Eviction,
    /// TokenRequest); `None` on delete.
    pub object: Option<&'a Value>,
    /// The stored object (update/delete).
    pub old_object: Option<&'a Value>,
}

/// The objects NodeRestriction reads from the store (upstream's pod and node listers).
pub trait ObjectLookup {
    /// The pod `namespace/name`, if it exists.
    fn pod(&self, namespace: &str, name: &str) -> Option<Value>;
    /// The node `name`, if it exists.
    fn node(&self, name: &str) -> Option<Value>;
}

/// Feature switches that change NodeRestriction (upstream feature gates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// `AllowInsecureKubeletCertificateSigningRequests`: skip the kubelet CSR CN check.
    pub allow_insecure_kubelet_csrs: bool,
    /// `RecoverVolumeExpansionFailure` (GA): PVC status may change allocatedResources(Statuses).
    pub expansion_recovery: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options { allow_insecure_kubelet_csrs: false, expansion_recovery: true }
    }
}

/// A write NodeRestriction refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    /// 403: `detail` is upstream's inner error text.
    #[error("{}", forbidden_text(.group, .resource, .name, .detail))]
    Forbidden { group: String, resource: String, name: String, detail: String },
    /// 404 from a lister: `resource` is singular (`pod`, `node`).
    #[error("{resource} {} not found", go_quote(.name))]
    NotFound { resource: &'static str, name: String },
}

fn forbidden_text(group: &str, resource: &str, name: &str, detail: &str) -> String {
    new_forbidden(group, resource, name, detail)["message"].as_str().unwrap_or(detail).to_string()
}

impl AdmissionError {
    /// The `Status` object to answer with.
    pub fn status(&self) -> Value {
        match self {
            AdmissionError::Forbidden { group, resource, name, detail } => new_forbidden(group, resource, name, detail),
            AdmissionError::NotFound { resource, name } => not_found_status("", resource, name),
        }
    }

    /// The HTTP status code (403 or 404).
    pub fn code(&self) -> u16 {
        match self {
            AdmissionError::Forbidden { .. } => 403,
            AdmissionError::NotFound { .. } => 404,
        }
    }
}

type Admit = Result<(), AdmissionError>;

/// A request with its node, ready for the per-resource rules.
struct Ctx<'a> {
    req: &'a AdmissionRequest<'a>,
    node: &'a str,
    name: &'a str,
}

impl Ctx<'_> {
    /// Upstream's `admission.NewForbidden(a, err)`, as an `Err`.
    fn forbid(&self, detail: impl Into<String>) -> Admit {
        Err(self.forbidden(detail))
    }

    /// Upstream's `admission.NewForbidden(a, err)`.
    fn forbidden(&self, detail: impl Into<String>) -> AdmissionError {
        let obj_name = self.req.object.map(|o| {
            let name = pod_refs::name_of(o);
            if name.is_empty() {
                o.pointer("/metadata/generateName").and_then(Value::as_str).unwrap_or("")
            } else {
                name
            }
        });
        let name = obj_name.filter(|n| !n.is_empty()).unwrap_or("Unknown");
        AdmissionError::Forbidden {
            group: self.req.api_group.into(),
            resource: self.req.resource.into(),
            name: name.into(),
            detail: detail.into(),
        }
    }

    fn q_node(&self) -> String {
        go_quote(self.node)
    }

    /// The new object, or upstream's `unexpected type %T` of a nil object.
    fn object(&self) -> Result<&Value, AdmissionError> {
        self.req.object.ok_or_else(|| self.forbidden("unexpected type <nil>"))
    }

    fn old_object(&self) -> Result<&Value, AdmissionError> {
        self.req.old_object.ok_or_else(|| self.forbidden("unexpected type <nil>"))
    }
}

/// Upstream's `Plugin.Admit` with default options.
pub fn admit(req: &AdmissionRequest, lookup: &dyn ObjectLookup) -> Admit {
    admit_with(req, lookup, Options::default())
}

/// Upstream's `Plugin.Admit`: `Ok` for non-node users and for resources it does not restrict.
pub fn admit_with(req: &AdmissionRequest, lookup: &dyn ObjectLookup, opts: Options) -> Admit {
    let Some(node) = node_identity(req.user) else { return Ok(()) };
    let name = match (req.operation, req.name, req.object) {
        (Operation::Create, "", Some(obj)) => pod_refs::name_of(obj),
        _ => req.name,
    };
    let ctx = Ctx { req, node, name };
    if node.is_empty() {
        return ctx.forbid(format!("could not determine node from user {}", go_quote(&req.user.name)));
    }
    match (req.api_group, req.resource) {
        ("", "pods") => match req.subresource {
            "" => pods::admit_pod(&ctx, lookup),
            "status" => pods::admit_pod_status(&ctx),
            "eviction" => pods::admit_eviction(&ctx, lookup),
            other => ctx.forbid(format!(
                "unexpected pod subresource {}, only 'status' and 'eviction' are allowed",
                go_quote(other)
            )),
        },
        ("", "nodes") => nodes::admit_node(&ctx),
        ("", "persistentvolumeclaims") if req.subresource == "status" => others::admit_pvc_status(&ctx, opts),
        ("", "persistentvolumeclaims") => ctx.forbid("may only update PVC status"),
        ("", "serviceaccounts") => others::admit_service_account(&ctx, lookup),
        ("coordination.k8s.io", "leases") => others::admit_lease(&ctx),
        ("storage.k8s.io", "csinodes") => others::admit_csi_node(&ctx),
        ("resource.k8s.io", "resourceslices") => others::admit_resource_slice(&ctx),
        ("certificates.k8s.io", "certificatesigningrequests") if !opts.allow_insecure_kubelet_csrs => {
            others::admit_csr(&ctx)
        }
        _ => Ok(()),
    }
}

/// Recursively drops nulls, empty arrays and empty objects: Go's semantic equality treats
/// nil and empty slices and maps alike.
fn normalized(v: Option<&Value>) -> Value {
    fn norm(v: &Value) -> Option<Value> {
        match v {
            Value::Null => None,
            Value::Array(a) => {
                let items: Vec<Value> = a.iter().map(|x| norm(x).unwrap_or(Value::Null)).collect();
                (!items.is_empty()).then_some(Value::Array(items))
            }
            Value::Object(m) => {
                let map: serde_json::Map<String, Value> =
                    m.iter().filter_map(|(k, x)| norm(x).map(|x| (k.clone(), x))).collect();
                (!map.is_empty()).then_some(Value::Object(map))
            }
            other => Some(other.clone()),
        }
    }
    v.and_then(norm).unwrap_or(Value::Null)
}

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

mod pods {
    use super::*;

    /// Upstream's `admitPod`: create mirror pods, delete own pods.
    pub(super) fn admit_pod(ctx: &Ctx, lookup: &dyn ObjectLookup) -> Admit {
        match ctx.req.operation {
            Operation::Create => admit_pod_create(ctx, lookup),
            Operation::Delete => {
                let Some(existing) = lookup.pod(ctx.req.namespace, ctx.name) else {
                    return Err(AdmissionError::NotFound { resource: "pod", name: ctx.name.into() });
                };
                if pod_refs::pod_node_name(&existing) != ctx.node {
                    return ctx.forbid(format!(
                        "node {} can only delete pods with spec.nodeName set to itself",
                        ctx.q_node()
                    ));
                }
                Ok(())
            }
            op => ctx.forbid(format!(
                "unexpected operation {}, node {} can only create and delete mirror pods",
                go_quote(op.as_str()),
                ctx.q_node()
            )),
        }
    }

    fn admit_pod_create(ctx: &Ctx, lookup: &dyn ObjectLookup) -> Admit {
        let pod = ctx.object()?;
        let node = ctx.q_node();
        if !pod_refs::is_mirror_pod(pod) {
            return ctx.forbid(format!(
                "pod does not have {} annotation, node {node} can only create mirror pods",
                go_quote(MIRROR_POD_ANNOTATION)
            ));
        }
        if pod_refs::pod_node_name(pod) != ctx.node {
            return ctx.forbid(format!("node {node} can only create pods with spec.nodeName set to itself"));
        }
        check_owner(ctx, pod, lookup)?;
        if !pod_refs::pod_service_account(pod).is_empty() {
            return ctx.forbid(format!("node {node} can not create pods that reference a service account"));
        }
        if !pod_refs::pod_secret_names(pod).is_empty() {
            return ctx.forbid(format!("node {node} can not create pods that reference secrets"));
        }
        if !pod_refs::pod_configmap_names(pod).is_empty() {
            return ctx.forbid(format!("node {node} can not create pods that reference configmaps"));
        }
        if pod_refs::pod_has_cluster_trust_bundle(pod) {
            return ctx.forbid(format!("node {node} can not create pods that reference clustertrustbundles"));
        }
        if pod_refs::pod_has_pvc_volume(pod) {
            return ctx.forbid(format!("node {node} can not create pods that reference persistentvolumeclaims"));
        }
        Ok(())
    }

    /// A mirror pod must have exactly one owner: its Node, as controller, without
    /// blockOwnerDeletion, with the Node's current uid.
    fn check_owner(ctx: &Ctx, pod: &Value, lookup: &dyn ObjectLookup) -> Admit {
        let node = ctx.q_node();
        let owners =
            pod.pointer("/metadata/ownerReferences").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
        let owner = match owners {
            [] => return ctx.forbid(format!("node {node} can only create pods with an owner reference set to itself")),
            [one] => one,
            _ => {
                return ctx
                    .forbid(format!("node {node} can only create pods with a single owner reference set to itself"));
            }
        };
        if text(owner, "/apiVersion") != "v1" || text(owner, "/kind") != "Node" || text(owner, "/name") != ctx.node {
            return ctx.forbid(format!("node {node} can only create pods with an owner reference set to itself"));
        }
        if owner.get("controller").and_then(Value::as_bool) != Some(true) {
            return ctx
                .forbid(format!("node {node} can only create pods with a controller owner reference set to itself"));
        }
        if owner.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true) {
            return ctx.forbid(format!("node {node} must not set blockOwnerDeletion on an owner reference"));
        }
        let Some(node_obj) = lookup.node(ctx.node) else {
            return Err(AdmissionError::NotFound { resource: "node", name: ctx.node.into() });
        };
        let (owner_uid, node_uid) = (text(owner, "/uid"), text(&node_obj, "/metadata/uid"));
        if owner_uid != node_uid {
            return ctx.forbid(format!("node {} UID mismatch: expected {owner_uid} got {node_uid}", ctx.node));
        }
        Ok(())
    }

    /// Upstream's `admitPodStatus`: only the status of own pods, labels and resource claim
    /// statuses unchanged.
    pub(super) fn admit_pod_status(ctx: &Ctx) -> Admit {
        if ctx.req.operation != Operation::Update {
            return ctx.forbid(format!("unexpected operation {}", go_quote(ctx.req.operation.as_str())));
        }
        let old = ctx.old_object()?;
        if pod_refs::pod_node_name(old) != ctx.node {
            return ctx.forbid(format!(
                "node {} can only update pod status for pods with spec.nodeName set to itself",
                ctx.q_node()
            ));
        }
        let new = ctx.object()?;
        if normalized(old.pointer("/metadata/labels")) != normalized(new.pointer("/metadata/labels")) {
            return ctx.forbid(format!("node {} cannot update labels through pod status", ctx.q_node()));
        }
        if claim_statuses(old) != claim_statuses(new) {
            return ctx.forbid(format!("node {} cannot update resource claim statues", ctx.q_node()));
        }
        Ok(())
    }

    fn claim_statuses(pod: &Value) -> Vec<(String, Option<String>)> {
        let list =
            pod.pointer("/status/resourceClaimStatuses").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
        list.iter()
            .map(|s| {
                (text(s, "/name").to_string(), s.get("resourceClaimName").and_then(Value::as_str).map(str::to_string))
            })
            .collect()
    }

    /// Upstream's `admitPodEviction`: only pods bound to this node.
    pub(super) fn admit_eviction(ctx: &Ctx, lookup: &dyn ObjectLookup) -> Admit {
        if ctx.req.operation != Operation::Create {
            return ctx.forbid(format!("unexpected operation {}", ctx.req.operation.as_str()));
        }
        let eviction = ctx.object()?;
        let pod_name = if ctx.name.is_empty() { pod_refs::name_of(eviction) } else { ctx.name };
        if pod_name.is_empty() {
            return ctx.forbid("could not determine pod from request data");
        }
        let Some(existing) = lookup.pod(ctx.req.namespace, pod_name) else {
            return Err(AdmissionError::NotFound { resource: "pod", name: pod_name.into() });
        };
        if pod_refs::pod_node_name(&existing) != ctx.node {
            return ctx.forbid(format!("node {} can only evict pods with spec.nodeName set to itself", ctx.node));
        }
        Ok(())
    }
}

#[path = "restriction_nodes.rs"]
mod nodes;

#[path = "restriction_others.rs"]
mod others;

#[cfg(test)]
#[path = "restriction_tests.rs"]
mod tests;
