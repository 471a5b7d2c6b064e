//! Node registration: build the Node object and create it, or adopt an existing one.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, NodeSpec, NodeStatus};
use kube::api::{Api, Patch, PatchParams, PostParams};

use crate::error::{Result, api};

/// Labels every node carries (upstream well-known labels) plus configured ones.
pub fn node_labels(node_name: &str, arch: &str, extra: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = [
        ("kubernetes.io/hostname", node_name),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", arch),
        ("beta.kubernetes.io/os", "linux"),
        ("beta.kubernetes.io/arch", arch),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    labels.extend(extra.clone());
    labels
}

/// What registration needs besides the status.
#[derive(Clone, Debug)]
pub struct NodeTemplate {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub pod_cidr: Option<String>,
    pub taints: Vec<k8s_openapi::api::core::v1::Taint>,
}

/// The Node object to create.
pub fn build_node(t: &NodeTemplate, status: NodeStatus) -> Node {
    let mut node = Node::default();
    node.metadata.name = Some(t.name.clone());
    node.metadata.labels = Some(t.labels.clone());
    node.metadata.annotations = Some(
        [("volumes.kubernetes.io/controller-managed-attach-detach".to_string(), "true".to_string())].into(),
    );
    node.spec = Some(NodeSpec {
        pod_cidr: t.pod_cidr.clone(),
        pod_cidrs: t.pod_cidr.clone().map(|c| vec![c]),
        taints: (!t.taints.is_empty()).then(|| t.taints.clone()),
        ..Default::default()
    });
    node.status = Some(status);
    node
}

/// Creates the Node, or adopts an existing one (reconciling labels and an unset podCIDR).
/// Returns the node as stored (with its uid).
pub async fn register(nodes: &Api<Node>, t: &NodeTemplate, status: NodeStatus, timeout: Duration) -> Result<Node> {
    let node = build_node(t, status);
    match api("create node", timeout, nodes.create(&PostParams::default(), &node)).await {
        Ok(created) => return Ok(created),
        Err(e) if e.api_code() == Some(409) => {}
        Err(e) => return Err(e),
    }
    let existing = api("get node", timeout, nodes.get(&t.name)).await?;
    let mut patch = serde_json::json!({ "metadata": { "labels": t.labels } });
    let spec_cidr = existing.spec.as_ref().and_then(|s| s.pod_cidr.clone());
    if spec_cidr.is_none()
        && let Some(cidr) = &t.pod_cidr
    {
        patch["spec"] = serde_json::json!({ "podCIDR": cidr, "podCIDRs": [cidr] });
    }
    api("adopt node", timeout, nodes.patch(&t.name, &PatchParams::default(), &Patch::Merge(&patch))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_object_has_labels_cidr_and_endpoint() {
        let t = NodeTemplate {
            name: "node-a".into(),
            labels: node_labels("node-a", "amd64", &BTreeMap::from([("role".to_string(), "w".to_string())])),
            pod_cidr: Some("10.244.1.0/24".into()),
            taints: vec![],
        };
        let status = NodeStatus { daemon_endpoints: Some(crate::node::daemon_endpoints(41234)), ..Default::default() };
        let n = build_node(&t, status);
        let port = n.status.as_ref().and_then(|s| s.daemon_endpoints.as_ref()?.kubelet_endpoint.as_ref()).map(|e| e.port);
        assert_eq!(port, Some(41234), "the bound kubelet API port is reported");
        let labels = n.metadata.labels.unwrap();
        assert_eq!(labels["kubernetes.io/hostname"], "node-a");
        assert_eq!(labels["kubernetes.io/os"], "linux");
        assert_eq!(labels["beta.kubernetes.io/arch"], "amd64");
        assert_eq!(labels["role"], "w");
        let spec = n.spec.unwrap();
        assert_eq!(spec.pod_cidr.as_deref(), Some("10.244.1.0/24"));
        assert_eq!(spec.pod_cidrs.unwrap(), vec!["10.244.1.0/24".to_string()]);
        assert!(spec.taints.is_none());
    }
}
