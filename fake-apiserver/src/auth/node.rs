//! The Node authorizer (plugin/pkg/auth/authorizer/node/node_authorizer.go) as a pure decision
//! over a graph snapshot (graph.go): edges point from an object towards the nodes that may
//! read it — `pod -> node`, `secret/configmap/pvc/serviceaccount/resourceclaim -> pod`,
//! `pv -> pvc`, `secret -> pv`, `volumeattachment -> node`, `resourceslice -> node`.
//!
//! Behaviour is upstream's with `AuthorizeNodeWithSelectors` enabled (the default since 1.32):
//! nodes read only their own Node and the pods bound to them (list/watch with the
//! `spec.nodeName=<node>` field selector). Resources the authorizer does not subdivide are
//! granted by the static node rules (the `system:node` role's rules).

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::attributes::{Attributes, FieldOperator};
use super::pod_refs;
use super::rbac::{PolicyRule, rules_allow};
use super::user::node_identity;
use super::{Decision, go_quote};

/// The namespace of node heartbeat leases.
pub const NAMESPACE_NODE_LEASE: &str = "kube-node-lease";

/// The kinds of graph vertices (upstream's `vertexType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VertexKind {
    ConfigMap,
    Node,
    Pod,
    Pvc,
    Pv,
    ResourceClaim,
    ResourceSlice,
    Secret,
    ServiceAccount,
    VolumeAttachment,
}

impl VertexKind {
    /// Upstream's name of the vertex type, as used in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            VertexKind::ConfigMap => "configmap",
            VertexKind::Node => "node",
            VertexKind::Pod => "pod",
            VertexKind::Pvc => "pvc",
            VertexKind::Pv => "pv",
            VertexKind::ResourceClaim => "resourceclaim",
            VertexKind::ResourceSlice => "resourceslice",
            VertexKind::Secret => "secret",
            VertexKind::ServiceAccount => "serviceAccount",
            VertexKind::VolumeAttachment => "volumeattachment",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Vertex {
    kind: VertexKind,
    namespace: String,
    name: String,
}

impl Vertex {
    fn new(kind: VertexKind, namespace: &str, name: &str) -> Vertex {
        Vertex { kind, namespace: namespace.to_string(), name: name.to_string() }
    }
}

/// Why there is no path from an object to a node; texts as upstream's `hasPathFrom` errors
/// (upstream logs these; the decision reason is [`no_relationship`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("unknown node '{node}' cannot get {kind} {namespace}/{name}")]
    UnknownNode { node: String, kind: &'static str, namespace: String, name: String },
    #[error("node '{node}' cannot get unknown {kind} {namespace}/{name}")]
    UnknownObject { node: String, kind: &'static str, namespace: String, name: String },
    #[error(
        "node '{node}' cannot get {kind} {namespace}/{name}, no relationship to this object was found in the node authorizer graph"
    )]
    NoRelationship { node: String, kind: &'static str, namespace: String, name: String },
}

/// The reason of every graph-based denial.
pub fn no_relationship(node: &str) -> String {
    format!("no relationship found between node '{node}' and this object")
}

/// Pods bound to nodes and what they reference, plus PVs, VolumeAttachments and ResourceSlices.
#[derive(Debug, Clone, Default)]
pub struct NodeGraph {
    out: HashMap<Vertex, HashSet<Vertex>>,
    incoming: HashMap<Vertex, HashSet<Vertex>>,
}

impl NodeGraph {
    /// An empty graph.
    pub fn new() -> NodeGraph {
        NodeGraph::default()
    }

    /// A graph of `objects` by kind: Pod, PersistentVolume, VolumeAttachment, ResourceSlice
    /// (other kinds are ignored).
    pub fn from_objects<'a>(objects: impl IntoIterator<Item = &'a Value>) -> NodeGraph {
        let mut graph = NodeGraph::new();
        for obj in objects {
            match obj.get("kind").and_then(Value::as_str).unwrap_or("") {
                "Pod" => graph.add_pod(obj),
                "PersistentVolume" => graph.add_pv(obj),
                "VolumeAttachment" => graph.add_volume_attachment(obj),
                "ResourceSlice" => graph.add_resource_slice(obj),
                _ => {}
            }
        }
        graph
    }

    fn add_edge(&mut self, from: Vertex, to: Vertex) {
        self.incoming.entry(to.clone()).or_default().insert(from.clone());
        self.out.entry(from).or_default().insert(to);
    }

    /// Removes a vertex's edges, then every neighbor left without edges (upstream's
    /// `deleteVertexLocked`, which keeps `exists` meaning "has an edge").
    fn remove_vertex(&mut self, v: &Vertex) {
        let outs = self.out.remove(v).unwrap_or_default();
        let ins = self.incoming.remove(v).unwrap_or_default();
        for to in &outs {
            if let Some(set) = self.incoming.get_mut(to) {
                set.remove(v);
                if set.is_empty() {
                    self.incoming.remove(to);
                }
            }
        }
        for from in &ins {
            if let Some(set) = self.out.get_mut(from) {
                set.remove(v);
                if set.is_empty() {
                    self.out.remove(from);
                }
            }
        }
    }

    fn exists(&self, v: &Vertex) -> bool {
        self.out.contains_key(v) || self.incoming.contains_key(v)
    }

    /// Adds (or replaces) a pod bound to a node (upstream's `AddPod`): `pod -> node`, and unless
    /// it is a mirror pod, `serviceaccount/secret/configmap/pvc/resourceclaim -> pod`.
    /// Unbound pods are ignored.
    pub fn add_pod(&mut self, pod: &Value) {
        let (ns, name, node) = (pod_refs::namespace_of(pod), pod_refs::name_of(pod), pod_refs::pod_node_name(pod));
        let pod_v = Vertex::new(VertexKind::Pod, ns, name);
        self.remove_vertex(&pod_v);
        if node.is_empty() {
            return;
        }
        self.add_edge(pod_v.clone(), Vertex::new(VertexKind::Node, "", node));
        if pod_refs::is_mirror_pod(pod) {
            return;
        }
        let sa = pod_refs::pod_service_account(pod);
        let mut sources: Vec<Vertex> = Vec::new();
        if !sa.is_empty() {
            sources.push(Vertex::new(VertexKind::ServiceAccount, ns, sa));
        }
        let refs = [
            (VertexKind::Secret, pod_refs::pod_secret_names(pod)),
            (VertexKind::ConfigMap, pod_refs::pod_configmap_names(pod)),
            (VertexKind::Pvc, pod_refs::pod_pvc_names(pod)),
            (VertexKind::ResourceClaim, pod_refs::pod_resource_claim_names(pod)),
        ];
        for (kind, names) in refs {
            sources.extend(names.iter().map(|n| Vertex::new(kind, ns, n)));
        }
        for source in sources {
            self.add_edge(source, pod_v.clone());
        }
    }

    /// Removes a pod (upstream's `DeletePod`).
    pub fn remove_pod(&mut self, namespace: &str, name: &str) {
        self.remove_vertex(&Vertex::new(VertexKind::Pod, namespace, name));
    }

    /// Adds (or replaces) a PersistentVolume (upstream's `AddPV`): with a `claimRef`,
    /// `pv -> pvc` and `secret -> pv` for the secrets the kubelet uses.
    pub fn add_pv(&mut self, pv: &Value) {
        let pv_v = Vertex::new(VertexKind::Pv, "", pod_refs::name_of(pv));
        self.remove_vertex(&pv_v);
        let Some(claim) = pv.pointer("/spec/claimRef") else { return };
        let text = |k: &str| claim.get(k).and_then(Value::as_str).unwrap_or("");
        self.add_edge(pv_v.clone(), Vertex::new(VertexKind::Pvc, text("namespace"), text("name")));
        for (ns, secret) in pod_refs::pv_kubelet_secret_refs(pv) {
            self.add_edge(Vertex::new(VertexKind::Secret, &ns, &secret), pv_v.clone());
        }
    }

    /// Adds (or replaces) a VolumeAttachment: `volumeattachment -> node` (`spec.nodeName`).
    pub fn add_volume_attachment(&mut self, va: &Value) {
        self.add_node_owned(VertexKind::VolumeAttachment, va);
    }

    /// Adds (or replaces) a ResourceSlice: `resourceslice -> node` (`spec.nodeName`).
    pub fn add_resource_slice(&mut self, slice: &Value) {
        self.add_node_owned(VertexKind::ResourceSlice, slice);
    }

    fn add_node_owned(&mut self, kind: VertexKind, obj: &Value) {
        let v = Vertex::new(kind, "", pod_refs::name_of(obj));
        self.remove_vertex(&v);
        let node = obj.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("");
        if !node.is_empty() {
            self.add_edge(v, Vertex::new(VertexKind::Node, "", node));
        }
    }

    /// Whether there is a directed path from the object to the node (upstream's `hasPathFrom`).
    pub fn has_path_from(&self, node: &str, kind: VertexKind, namespace: &str, name: &str) -> Result<(), PathError> {
        let (node_s, kind_s, ns_s, name_s) = (node.to_string(), kind.as_str(), namespace.to_string(), name.to_string());
        let node_v = Vertex::new(VertexKind::Node, "", node);
        if !self.exists(&node_v) {
            return Err(PathError::UnknownNode { node: node_s, kind: kind_s, namespace: ns_s, name: name_s });
        }
        let start = Vertex::new(kind, namespace, name);
        if !self.exists(&start) {
            return Err(PathError::UnknownObject { node: node_s, kind: kind_s, namespace: ns_s, name: name_s });
        }
        let mut seen: HashSet<&Vertex> = HashSet::from([&start]);
        let mut stack = vec![&start];
        while let Some(v) = stack.pop() {
            if *v == node_v {
                return Ok(());
            }
            for next in self.out.get(v).into_iter().flatten() {
                if seen.insert(next) {
                    stack.push(next);
                }
            }
        }
        Err(PathError::NoRelationship { node: node_s, kind: kind_s, namespace: ns_s, name: name_s })
    }

    /// Upstream's `NodeAuthorizer.Authorize`: no opinion for non-node users; for nodes, the
    /// subdivided resources are decided here and everything else by `node_rules`.
    pub fn authorize(&self, attrs: &Attributes, node_rules: &[PolicyRule]) -> Decision {
        let Some(node) = node_identity(&attrs.user) else { return Decision::no_opinion("") };
        if node.is_empty() {
            return Decision::no_opinion(format!("unknown node for user {}", go_quote(&attrs.user.name)));
        }
        if attrs.is_resource_request && crate::debug_faults::active(crate::debug_faults::Fault::NodeAuthorizerOpen) {
            return Decision::allow("");
        }
        if attrs.is_resource_request
            && let Some(decision) = self.authorize_subdivided(node, attrs)
        {
            return decision;
        }
        if rules_allow(attrs, node_rules) { Decision::allow("") } else { Decision::no_opinion("") }
    }

    fn authorize_subdivided(&self, node: &str, attrs: &Attributes) -> Option<Decision> {
        let d = match (attrs.api_group.as_str(), attrs.resource.as_str()) {
            ("", "secrets") => self.read_namespaced(node, VertexKind::Secret, attrs),
            ("", "configmaps") => self.read_namespaced(node, VertexKind::ConfigMap, attrs),
            ("", "persistentvolumeclaims") if attrs.subresource == "status" => {
                self.status_update(node, VertexKind::Pvc, attrs)
            }
            ("", "persistentvolumeclaims") => self.get(node, VertexKind::Pvc, attrs),
            ("", "persistentvolumes") => self.get(node, VertexKind::Pv, attrs),
            ("resource.k8s.io", "resourceclaims") => self.get(node, VertexKind::ResourceClaim, attrs),
            ("storage.k8s.io", "volumeattachments") => self.get(node, VertexKind::VolumeAttachment, attrs),
            ("", "serviceaccounts") => self.create_token(node, attrs),
            ("coordination.k8s.io", "leases") => lease(node, attrs),
            ("storage.k8s.io", "csinodes") => csi_node(node, attrs),
            ("resource.k8s.io", "resourceslices") => self.resource_slice(node, attrs),
            ("", "nodes") => node_object(node, attrs),
            ("", "pods") => self.pod(node, attrs),
            _ => return None,
        };
        Some(d)
    }

    /// The graph check shared by all object reads (upstream's `authorize`).
    fn related(&self, node: &str, kind: VertexKind, attrs: &Attributes) -> Decision {
        if attrs.name.is_empty() {
            return Decision::no_opinion("No Object name found");
        }
        match self.has_path_from(node, kind, &attrs.namespace, &attrs.name) {
            Ok(()) => Decision::allow(""),
            Err(_) => Decision::no_opinion(no_relationship(node)),
        }
    }

    fn read_namespaced(&self, node: &str, kind: VertexKind, attrs: &Attributes) -> Decision {
        if !matches!(attrs.verb.as_str(), "get" | "list" | "watch") {
            return Decision::no_opinion("can only read resources of this type");
        }
        if !attrs.subresource.is_empty() {
            return Decision::no_opinion("cannot read subresource");
        }
        if attrs.namespace.is_empty() {
            return Decision::no_opinion("can only read namespaced object of this type");
        }
        self.related(node, kind, attrs)
    }

    fn status_update(&self, node: &str, kind: VertexKind, attrs: &Attributes) -> Decision {
        if !matches!(attrs.verb.as_str(), "update" | "patch") {
            return Decision::no_opinion("can only get/update/patch this type");
        }
        if attrs.subresource != "status" {
            return Decision::no_opinion("can only update status subresource");
        }
        self.related(node, kind, attrs)
    }

    fn get(&self, node: &str, kind: VertexKind, attrs: &Attributes) -> Decision {
        if attrs.verb != "get" {
            return Decision::no_opinion("can only get individual resources of this type");
        }
        if !attrs.subresource.is_empty() {
            return Decision::no_opinion("cannot get subresource");
        }
        self.related(node, kind, attrs)
    }

    fn create_token(&self, node: &str, attrs: &Attributes) -> Decision {
        if attrs.verb != "create" || attrs.name.is_empty() {
            return Decision::no_opinion("can only create tokens for individual service accounts");
        }
        if attrs.subresource != "token" {
            return Decision::no_opinion("can only create token subresource of serviceaccount");
        }
        self.related(node, VertexKind::ServiceAccount, attrs)
    }

    fn resource_slice(&self, node: &str, attrs: &Attributes) -> Decision {
        if !attrs.subresource.is_empty() {
            return Decision::no_opinion("cannot authorize ResourceSlice subresources");
        }
        match attrs.verb.as_str() {
            "create" => Decision::allow(""),
            "get" | "update" | "patch" | "delete" => self.related(node, VertexKind::ResourceSlice, attrs),
            "watch" | "list" | "deletecollection" if field_equals(attrs, "spec.nodeName", node) => Decision::allow(""),
            "watch" | "list" | "deletecollection" => {
                Decision::no_opinion("can only list/watch/deletecollection resourceslices with nodeName field selector")
            }
            _ => Decision::no_opinion(
                "only the following verbs are allowed for a ResourceSlice: get, watch, list, create, update, patch, delete, deletecollection",
            ),
        }
    }

    fn pod(&self, node: &str, attrs: &Attributes) -> Decision {
        match (attrs.subresource.as_str(), attrs.verb.as_str()) {
            ("", "get") => self.get(node, VertexKind::Pod, attrs),
            ("", "list" | "watch") if field_equals(attrs, "spec.nodeName", node) => Decision::allow(""),
            ("", "list" | "watch") if !attrs.name.is_empty() => self.related(node, VertexKind::Pod, attrs),
            ("", "list" | "watch") => {
                Decision::no_opinion("can only list/watch pods with spec.nodeName field selector")
            }
            ("", "create" | "delete") | ("status", "update" | "patch") | ("eviction", "create") => Decision::allow(""),
            _ => Decision::no_opinion(""),
        }
    }
}

/// Whether the request's field selector requires `field=value`.
fn field_equals(attrs: &Attributes, field: &str, value: &str) -> bool {
    attrs
        .field_requirements()
        .iter()
        .any(|r| r.field == field && r.operator == FieldOperator::Equals && r.value == value)
}

fn lease(node: &str, attrs: &Attributes) -> Decision {
    let verb = attrs.verb.as_str();
    if !matches!(verb, "get" | "create" | "update" | "patch" | "delete") {
        return Decision::no_opinion("can only get, create, update, patch, or delete a node lease");
    }
    if attrs.namespace != NAMESPACE_NODE_LEASE {
        return Decision::no_opinion(format!(
            "can only access leases in the {} system namespace",
            go_quote(NAMESPACE_NODE_LEASE)
        ));
    }
    if verb != "create" && attrs.name != node {
        return Decision::no_opinion("can only access node lease with the same name as the requesting node");
    }
    Decision::allow("")
}

fn csi_node(node: &str, attrs: &Attributes) -> Decision {
    let verb = attrs.verb.as_str();
    if !matches!(verb, "get" | "create" | "update" | "patch" | "delete") {
        return Decision::no_opinion("can only get, create, update, patch, or delete a CSINode");
    }
    if !attrs.subresource.is_empty() {
        return Decision::no_opinion("cannot authorize CSINode subresources");
    }
    if verb != "create" && attrs.name != node {
        return Decision::no_opinion("can only access CSINode with the same name as the requesting node");
    }
    Decision::allow("")
}

/// Upstream's `authorizeNode`: a node may create/update/patch Node objects (NodeRestriction
/// limits it to its own), update/patch Node status, and read only its own Node.
fn node_object(node: &str, attrs: &Attributes) -> Decision {
    match (attrs.subresource.as_str(), attrs.verb.as_str()) {
        ("", "create" | "update" | "patch") | ("status", "update" | "patch") => Decision::allow(""),
        ("", "get" | "list" | "watch") if attrs.name == node => Decision::allow(""),
        ("", "get" | "list" | "watch") if attrs.name.is_empty() => {
            Decision::no_opinion(format!("node '{node}' cannot read all nodes, only its own Node object"))
        }
        ("", "get" | "list" | "watch") => {
            Decision::no_opinion(format!("node '{node}' cannot read '{}', only its own Node object", attrs.name))
        }
        _ => Decision::no_opinion(""),
    }
}

#[cfg(test)]
#[path = "node_tests.rs"]
mod tests;
