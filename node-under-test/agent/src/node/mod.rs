//! The Node: registration, status heartbeats and the Lease.

pub mod host;
pub mod lease;
pub mod register;
pub mod status;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, NodeStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use tokio_util::sync::CancellationToken;

use crate::cri::{Runtime, RuntimeVersion};
use crate::error::{Result, api};
use crate::metrics::Metrics;

/// What the status loop needs to compute a NodeStatus.
#[derive(Clone, Debug)]
pub struct StatusInputs {
    pub facts: host::HostFacts,
    pub cfg: crate::config::KubeletConfiguration,
    pub node_ip: Option<std::net::IpAddr>,
    pub node_name: String,
    pub runtime_version: RuntimeVersion,
    /// Pressure conditions from the eviction manager.
    pub pressure: crate::eviction::PressureHandle,
    /// The relist's health (an unhealthy PLEG makes the node NotReady).
    pub pleg: crate::pods::pleg::PlegHandle,
    /// The kubelet API's port (status.daemonEndpoints.kubeletEndpoint.Port).
    pub kubelet_port: i32,
}

/// `status.daemonEndpoints` with the kubelet API's port.
pub fn daemon_endpoints(kubelet_port: i32) -> k8s_openapi::api::core::v1::NodeDaemonEndpoints {
    k8s_openapi::api::core::v1::NodeDaemonEndpoints {
        kubelet_endpoint: Some(k8s_openapi::api::core::v1::DaemonEndpoint { port: kubelet_port }),
    }
}

/// Computes the full status now (runtime health read from CRI Status).
pub async fn current_status<R: Runtime>(runtime: &R, inputs: &StatusInputs, prev: &[k8s_openapi::api::core::v1::NodeCondition]) -> NodeStatus {
    let health = runtime.status().await.map_err(|e| e.to_string());
    let readiness = status::readiness_from_runtime(health.as_deref().map_err(Clone::clone));
    let readiness = status::with_pleg(readiness, inputs.pleg.healthy());
    let now = Time(jiff::Timestamp::now());
    let (capacity, allocatable) = status::capacity_and_allocatable(&inputs.facts, &inputs.cfg);
    NodeStatus {
        capacity: Some(capacity),
        allocatable: Some(allocatable),
        conditions: Some(crate::eviction::with_pressure(status::node_conditions(prev, &readiness, &now), &inputs.pressure, prev, &now)),
        addresses: Some(status::node_addresses(inputs.node_ip, &inputs.node_name)),
        node_info: Some(status::node_info(&inputs.facts, &inputs.runtime_version, &inputs.cfg.nodekit.kubelet_version)),
        daemon_endpoints: Some(daemon_endpoints(inputs.kubelet_port)),
        ..Default::default()
    }
}

/// Patches nodes/status with a merge patch carrying the whole status.
pub async fn patch_status(nodes: &Api<Node>, name: &str, status: &NodeStatus, timeout: Duration) -> Result<Node> {
    let patch = serde_json::json!({ "status": status });
    api("patch node status", timeout, nodes.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))).await
}

/// Every nodeStatusUpdateFrequency: read the Node, compute the status, and patch it when it
/// differs from what the API has (a change is written at once, also one made by another
/// component such as the node lifecycle controller), or when nodeStatusReportFrequency has
/// passed since the last report. Failures retry at the next tick.
pub async fn run_status_loop<R: Runtime>(
    client: kube::Client,
    runtime: std::sync::Arc<R>,
    inputs: StatusInputs,
    metrics: Metrics,
    cancel: CancellationToken,
) {
    let nodes: Api<Node> = Api::all(client);
    let update = inputs.cfg.node_status_update_frequency.0;
    let report = inputs.cfg.node_status_report_frequency.0;
    let timeout = inputs.cfg.nodekit.api_request_timeout.0;
    let mut last_report = Instant::now();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(update) => {}
        }
        let in_api = match api("get node", timeout, nodes.get(&inputs.node_name)).await {
            Ok(n) => n.status.unwrap_or_default(),
            Err(e) => {
                metrics.node_status_errors.inc();
                tracing::warn!(error = %e, "reading the node failed");
                continue;
            }
        };
        let prev = in_api.conditions.clone().unwrap_or_default();
        let candidate = current_status(runtime.as_ref(), &inputs, &prev).await;
        if !status::should_report(Some(&in_api), &candidate, last_report.elapsed(), report) {
            continue;
        }
        match patch_status(&nodes, &inputs.node_name, &candidate, timeout).await {
            Ok(_) => {
                metrics.node_status_patches.inc();
                last_report = Instant::now();
            }
            Err(e) => {
                metrics.node_status_errors.inc();
                tracing::warn!(error = %e, "node status update failed");
            }
        }
    }
}
