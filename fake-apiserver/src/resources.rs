//! The typed resource descriptor table that drives routing, discovery, validation and tables.

/// Which name format a resource requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// DNS-1123 subdomain (lowercase, dots allowed, <= 253).
    Subdomain,
    /// DNS-1123 label (no dots, <= 63).
    Label,
    /// DNS-1035 label (starts with a letter, <= 63).
    Label1035,
    /// Any name that is a valid path segment.
    PathSegment,
}

/// One served resource.
#[derive(Debug)]
pub struct ResourceDesc {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    /// Subresources served, e.g. "status", "binding", "eviction".
    pub subresources: &'static [&'static str],
    /// Field selector keys beyond metadata.name / metadata.namespace.
    pub field_selectors: &'static [&'static str],
    pub name_rule: NameRule,
    /// Whether metadata.generation is maintained (bumped on spec changes).
    pub generation: bool,
}

impl ResourceDesc {
    /// "v1" or "group/version".
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_string() } else { format!("{}/{}", self.group, self.version) }
    }
    pub fn has_status(&self) -> bool {
        self.subresources.contains(&"status")
    }
    pub fn id(&'static self) -> ResourceId {
        ResourceId(TABLE.iter().position(|d| std::ptr::eq(d, self)).unwrap_or(0))
    }
}

/// Index into [`TABLE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceId(pub usize);

impl ResourceId {
    pub fn desc(self) -> &'static ResourceDesc {
        &TABLE[self.0]
    }
}

pub const VERBS: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

const EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

pub static TABLE: &[ResourceDesc] = &[
    ResourceDesc {
        group: "", version: "v1", kind: "Namespace", plural: "namespaces", singular: "namespace",
        namespaced: false, short_names: &["ns"], categories: &[], subresources: &["status", "finalize"],
        field_selectors: &["status.phase"], name_rule: NameRule::Label, generation: false,
    },
    ResourceDesc {
        group: "", version: "v1", kind: "Node", plural: "nodes", singular: "node",
        namespaced: false, short_names: &["no"], categories: &[], subresources: &["status"],
        field_selectors: &["spec.unschedulable"], name_rule: NameRule::Subdomain, generation: false,
    },
    ResourceDesc {
        group: "", version: "v1", kind: "Pod", plural: "pods", singular: "pod",
        namespaced: true, short_names: &["po"], categories: &["all"],
        subresources: &["status", "binding", "eviction"],
        field_selectors: &[
            "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
            "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName",
        ],
        name_rule: NameRule::Subdomain, generation: true,
    },
    ResourceDesc {
        group: "", version: "v1", kind: "Service", plural: "services", singular: "service",
        namespaced: true, short_names: &["svc"], categories: &["all"], subresources: &["status"],
        field_selectors: &["spec.clusterIP", "spec.type"], name_rule: NameRule::Label1035, generation: false,
    },
    ResourceDesc {
        group: "", version: "v1", kind: "Endpoints", plural: "endpoints", singular: "endpoints",
        namespaced: true, short_names: &["ep"], categories: &[], subresources: &[],
        field_selectors: &[], name_rule: NameRule::Subdomain, generation: false,
    },
    ResourceDesc {
        group: "", version: "v1", kind: "ConfigMap", plural: "configmaps", singular: "configmap",
        namespaced: true, short_names: &["cm"], categories: &[], subresources: &[],
        field_selectors: &[], name_rule: NameRule::Subdomain, generation: false,
    },
    ResourceDesc {
        group: "", version: "v1", kind: "Secret", plural: "secrets", singular: "secret",
        namespaced: true, short_names: &[], categories: &[], subresources: &[],
        field_selectors: &["type"], name_rule: NameRule::Subdomain, generation: false,
    },
    ResourceDesc {
        group: "", version: "v1", kind: "ServiceAccount", plural: "serviceaccounts", singular: "serviceaccount",
        namespaced: true, short_names: &["sa"], categories: &[], subresources: &["token"],
        field_selectors: &[], name_rule: NameRule::Subdomain, generation: false,
    },
    ResourceDesc {
        group: "", version: "v1", kind: "Event", plural: "events", singular: "event",
        namespaced: true, short_names: &["ev"], categories: &[], subresources: &[],
        field_selectors: EVENT_FIELDS, name_rule: NameRule::Subdomain, generation: false,
    },
    ResourceDesc {
        group: "coordination.k8s.io", version: "v1", kind: "Lease", plural: "leases", singular: "lease",
        namespaced: true, short_names: &[], categories: &[], subresources: &[],
        field_selectors: &[], name_rule: NameRule::Subdomain, generation: false,
    },
    ResourceDesc {
        group: "discovery.k8s.io", version: "v1", kind: "EndpointSlice", plural: "endpointslices",
        singular: "endpointslice", namespaced: true, short_names: &[], categories: &[], subresources: &[],
        field_selectors: &["addressType"], name_rule: NameRule::Subdomain, generation: true,
    },
    ResourceDesc {
        group: "events.k8s.io", version: "v1", kind: "Event", plural: "events", singular: "event",
        namespaced: true, short_names: &["ev"], categories: &[], subresources: &[],
        field_selectors: &["regarding.kind", "regarding.namespace", "regarding.name", "regarding.uid", "reason", "type", "reportingController"],
        name_rule: NameRule::Subdomain, generation: false,
    },
    ResourceDesc {
        group: "apps", version: "v1", kind: "ReplicaSet", plural: "replicasets", singular: "replicaset",
        namespaced: true, short_names: &["rs"], categories: &["all"], subresources: &["status", "scale"],
        field_selectors: &["status.replicas"], name_rule: NameRule::Subdomain, generation: true,
    },
    ResourceDesc {
        group: "apps", version: "v1", kind: "Deployment", plural: "deployments", singular: "deployment",
        namespaced: true, short_names: &["deploy"], categories: &["all"], subresources: &["status", "scale"],
        field_selectors: &[], name_rule: NameRule::Subdomain, generation: true,
    },
    ResourceDesc {
        group: "apps", version: "v1", kind: "DaemonSet", plural: "daemonsets", singular: "daemonset",
        namespaced: true, short_names: &["ds"], categories: &["all"], subresources: &["status"],
        field_selectors: &[], name_rule: NameRule::Subdomain, generation: true,
    },
    ResourceDesc {
        group: "policy", version: "v1", kind: "PodDisruptionBudget", plural: "poddisruptionbudgets",
        singular: "poddisruptionbudget", namespaced: true, short_names: &["pdb"], categories: &[],
        subresources: &["status"], field_selectors: &[], name_rule: NameRule::Subdomain, generation: true,
    },
    // RBAC: names are path segments (upstream's `ValidateRBACName`), no generation.
    ResourceDesc {
        group: "rbac.authorization.k8s.io", version: "v1", kind: "Role", plural: "roles", singular: "role",
        namespaced: true, short_names: &[], categories: &[], subresources: &[],
        field_selectors: &[], name_rule: NameRule::PathSegment, generation: false,
    },
    ResourceDesc {
        group: "rbac.authorization.k8s.io", version: "v1", kind: "RoleBinding", plural: "rolebindings",
        singular: "rolebinding", namespaced: true, short_names: &[], categories: &[], subresources: &[],
        field_selectors: &[], name_rule: NameRule::PathSegment, generation: false,
    },
    ResourceDesc {
        group: "rbac.authorization.k8s.io", version: "v1", kind: "ClusterRole", plural: "clusterroles",
        singular: "clusterrole", namespaced: false, short_names: &[], categories: &[], subresources: &[],
        field_selectors: &[], name_rule: NameRule::PathSegment, generation: false,
    },
    ResourceDesc {
        group: "rbac.authorization.k8s.io", version: "v1", kind: "ClusterRoleBinding", plural: "clusterrolebindings",
        singular: "clusterrolebinding", namespaced: false, short_names: &[], categories: &[], subresources: &[],
        field_selectors: &[], name_rule: NameRule::PathSegment, generation: false,
    },
    ResourceDesc {
        group: "node.k8s.io", version: "v1", kind: "RuntimeClass", plural: "runtimeclasses",
        singular: "runtimeclass", namespaced: false, short_names: &[], categories: &[], subresources: &[],
        field_selectors: &[], name_rule: NameRule::Subdomain, generation: false,
    },
];

pub const NAMESPACES: ResourceId = ResourceId(0);
pub const NODES: ResourceId = ResourceId(1);
pub const PODS: ResourceId = ResourceId(2);
pub const SERVICES: ResourceId = ResourceId(3);
pub const ENDPOINTS: ResourceId = ResourceId(4);
pub const CONFIGMAPS: ResourceId = ResourceId(5);
pub const SECRETS: ResourceId = ResourceId(6);
pub const SERVICEACCOUNTS: ResourceId = ResourceId(7);
pub const EVENTS: ResourceId = ResourceId(8);
pub const LEASES: ResourceId = ResourceId(9);
pub const ENDPOINTSLICES: ResourceId = ResourceId(10);
pub const EVENTS_V1: ResourceId = ResourceId(11);
pub const REPLICASETS: ResourceId = ResourceId(12);
pub const DEPLOYMENTS: ResourceId = ResourceId(13);
pub const DAEMONSETS: ResourceId = ResourceId(14);
pub const PODDISRUPTIONBUDGETS: ResourceId = ResourceId(15);
pub const ROLES: ResourceId = ResourceId(16);
pub const ROLEBINDINGS: ResourceId = ResourceId(17);
pub const CLUSTERROLES: ResourceId = ResourceId(18);
pub const CLUSTERROLEBINDINGS: ResourceId = ResourceId(19);
pub const RUNTIMECLASSES: ResourceId = ResourceId(20);

/// The RBAC resources (what the authorizer's snapshot is built from).
pub const RBAC: [ResourceId; 4] = [ROLES, ROLEBINDINGS, CLUSTERROLES, CLUSTERROLEBINDINGS];

/// All served groups (excluding core) with their single version.
pub fn groups() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for d in TABLE {
        if !d.group.is_empty() && !out.iter().any(|(g, _)| *g == d.group) {
            out.push((d.group, d.version));
        }
    }
    out
}

/// Find a resource by group, version and plural.
pub fn lookup(group: &str, version: &str, plural: &str) -> Option<ResourceId> {
    TABLE
        .iter()
        .position(|d| d.group == group && d.version == version && d.plural == plural)
        .map(ResourceId)
}

/// All resource ids.
pub fn all() -> impl Iterator<Item = ResourceId> {
    (0..TABLE.len()).map(ResourceId)
}
