//! Node status: conditions from the runtime's health, capacity/allocatable, nodeInfo, and the
//! decision when a status patch is due (pure functions, tested without IO).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{NodeAddress, NodeCondition, NodeStatus, NodeSystemInfo};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::host::HostFacts;
use crate::config::KubeletConfiguration;
use crate::cri::{RuntimeCondition, RuntimeVersion};
use crate::quantity;

/// Readiness of the node as derived from the runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    NotReady { message: String },
}

/// Derives Ready from CRI Status, with upstream's message forms.
pub fn readiness_from_runtime(status: Result<&[RuntimeCondition], String>) -> Readiness {
    let conds = match status {
        Ok(c) => c,
        Err(e) => {
            return Readiness::NotReady { message: format!("container runtime is down: {e}") };
        }
    };
    let find = |kind: &str| conds.iter().find(|c| c.kind == kind);
    let mut problems = Vec::new();
    match find("RuntimeReady") {
        Some(c) if c.status => {}
        Some(c) => problems.push(format!(
            "container runtime not ready: RuntimeReady=false reason:{} message:{}",
            c.reason, c.message
        )),
        None => problems.push("container runtime not ready: RuntimeReady condition missing".to_string()),
    }
    match find("NetworkReady") {
        Some(c) if c.status => {}
        Some(c) => problems.push(format!(
            "container runtime network not ready: NetworkReady=false reason:{} message:{}",
            c.reason, c.message
        )),
        None => problems.push("container runtime network not ready: NetworkReady condition missing".to_string()),
    }
    if problems.is_empty() { Readiness::Ready } else { Readiness::NotReady { message: problems.join(", ") } }
}

/// Adds an unhealthy PLEG to the runtime's readiness, as upstream's runtime errors list it.
pub fn with_pleg(ready: Readiness, pleg: Result<(), String>) -> Readiness {
    let Err(e) = pleg else { return ready };
    let pleg = format!("PLEG is not healthy: {e}");
    match ready {
        Readiness::Ready => Readiness::NotReady { message: pleg },
        Readiness::NotReady { message } => Readiness::NotReady { message: format!("{message}, {pleg}") },
    }
}

fn condition(kind: &str, status: bool, reason: &str, message: &str, prev: &[NodeCondition], now: &Time) -> NodeCondition {
    let status = if status { "True" } else { "False" }.to_string();
    let transition = prev
        .iter()
        .find(|c| c.type_ == kind && c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    NodeCondition {
        type_: kind.to_string(),
        status,
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_heartbeat_time: Some(now.clone()),
        last_transition_time: Some(transition),
    }
}

/// The node conditions in upstream order: MemoryPressure, DiskPressure, PIDPressure, Ready.
/// lastTransitionTime is kept from `prev` while a condition's status is unchanged.
pub fn node_conditions(prev: &[NodeCondition], ready: &Readiness, now: &Time) -> Vec<NodeCondition> {
    let mut out = vec![
        condition("MemoryPressure", false, "KubeletHasSufficientMemory", "kubelet has sufficient memory available", prev, now),
        condition("DiskPressure", false, "KubeletHasNoDiskPressure", "kubelet has no disk pressure", prev, now),
        condition("PIDPressure", false, "KubeletHasSufficientPID", "kubelet has sufficient PID available", prev, now),
    ];
    out.push(match ready {
        Readiness::Ready => condition("Ready", true, "KubeletReady", "kubelet is posting ready status", prev, now),
        Readiness::NotReady { message } => condition("Ready", false, "KubeletNotReady", message, prev, now),
    });
    out
}

fn kib(bytes: i64) -> Quantity {
    if bytes % 1024 == 0 { Quantity(format!("{}Ki", bytes / 1024)) } else { Quantity(bytes.to_string()) }
}

/// Capacity and allocatable (cpu, memory, pods, ephemeral-storage) from the host or the
/// configured node size, minus reservations and the hard eviction thresholds (as upstream).
pub fn capacity_and_allocatable(
    facts: &HostFacts,
    cfg: &KubeletConfiguration,
) -> (BTreeMap<String, Quantity>, BTreeMap<String, Quantity>) {
    let host = crate::config::NodeSize::default();
    let size = if crate::faults::active(crate::faults::Fault::HostSize) { &host } else { &cfg.nodekit.node_size };
    let cpu_m = size.cpu.as_deref().and_then(quantity::cpu_millis).unwrap_or(facts.cpus as i64 * 1000);
    let mem = size.memory.as_deref().and_then(quantity::bytes).unwrap_or(facts.memory_bytes as i64);
    let storage = size
        .ephemeral_storage
        .as_deref()
        .and_then(quantity::bytes)
        .unwrap_or(facts.ephemeral_storage_bytes as i64);
    let reserved = |name: &str, parse: fn(&str) -> Option<i64>| -> i64 {
        [&cfg.system_reserved, &cfg.kube_reserved]
            .iter()
            .filter_map(|m| m.get(name).and_then(|v| parse(v)))
            .sum()
    };
    let threshold = |signal: &str, total: i64| -> i64 {
        match cfg.eviction_hard.get(signal) {
            Some(v) if v.ends_with('%') => {
                let pct: f64 = v.trim_end_matches('%').parse().unwrap_or(0.0);
                (total as f64 * pct / 100.0) as i64
            }
            Some(v) => quantity::bytes(v).unwrap_or(0),
            None => 0,
        }
    };
    let cpu_q = |m: i64| if m % 1000 == 0 { Quantity((m / 1000).to_string()) } else { Quantity(format!("{m}m")) };
    let mut cap = BTreeMap::new();
    cap.insert("cpu".to_string(), cpu_q(cpu_m));
    cap.insert("memory".to_string(), kib(mem));
    cap.insert("pods".to_string(), Quantity(cfg.max_pods.to_string()));
    cap.insert("ephemeral-storage".to_string(), kib(storage));
    let mut alloc = BTreeMap::new();
    alloc.insert("cpu".to_string(), cpu_q((cpu_m - reserved("cpu", quantity::cpu_millis)).max(0)));
    let mem_alloc = mem - reserved("memory", quantity::bytes) - threshold("memory.available", mem);
    alloc.insert("memory".to_string(), kib(mem_alloc.max(0)));
    alloc.insert("pods".to_string(), Quantity(cfg.max_pods.to_string()));
    let st_alloc = storage - reserved("ephemeral-storage", quantity::bytes) - threshold("nodefs.available", storage);
    alloc.insert("ephemeral-storage".to_string(), kib(st_alloc.max(0)));
    (cap, alloc)
}

/// nodeInfo as upstream fills it.
pub fn node_info(facts: &HostFacts, version: &RuntimeVersion, kubelet_version: &str) -> NodeSystemInfo {
    NodeSystemInfo {
        architecture: facts.architecture.clone(),
        boot_id: facts.boot_id.clone(),
        container_runtime_version: format!("{}://{}", version.runtime_name, version.runtime_version),
        kernel_version: facts.kernel_version.clone(),
        kube_proxy_version: kubelet_version.to_string(),
        kubelet_version: kubelet_version.to_string(),
        machine_id: facts.machine_id.clone(),
        operating_system: "linux".to_string(),
        os_image: facts.os_image.clone(),
        system_uuid: facts.machine_id.clone(),
        swap: None,
    }
}

/// Addresses: InternalIP then Hostname.
pub fn node_addresses(ip: Option<std::net::IpAddr>, hostname: &str) -> Vec<NodeAddress> {
    let mut out = Vec::new();
    if let Some(ip) = ip {
        out.push(NodeAddress { type_: "InternalIP".into(), address: ip.to_string() });
    }
    out.push(NodeAddress { type_: "Hostname".into(), address: hostname.to_string() });
    out
}

fn same_quantities(a: &Option<BTreeMap<String, Quantity>>, b: &Option<BTreeMap<String, Quantity>>) -> bool {
    let empty = BTreeMap::new();
    let (a, b) = (a.as_ref().unwrap_or(&empty), b.as_ref().unwrap_or(&empty));
    a.len() == b.len()
        && a.iter().all(|(k, v)| {
            b.get(k).is_some_and(|w| match (quantity::parse_quantity(&v.0), quantity::parse_quantity(&w.0)) {
                (Some(x), Some(y)) => (x - y).abs() <= f64::EPSILON * x.abs().max(1.0),
                _ => v.0 == w.0,
            })
        })
}

/// Whether the fields the agent owns differ (heartbeat times ignored; quantities compared by
/// value, since an API server may canonicalize "2097152Ki" to "2Gi").
pub fn status_changed(current: &NodeStatus, candidate: &NodeStatus) -> bool {
    let conds = |s: &NodeStatus| -> Vec<(String, String, Option<String>, Option<String>)> {
        let mut v: Vec<_> = s
            .conditions
            .iter()
            .flatten()
            .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone(), c.message.clone()))
            .collect();
        v.sort();
        v
    };
    conds(current) != conds(candidate)
        || !same_quantities(&current.capacity, &candidate.capacity)
        || !same_quantities(&current.allocatable, &candidate.allocatable)
        || current.addresses != candidate.addresses
        || current.node_info != candidate.node_info
}

/// Whether a status patch is due: at once when the status in the API differs from what the
/// agent would write (also when someone else, e.g. the node lifecycle controller, changed it),
/// else once `report_frequency` has passed since the last report.
pub fn should_report(
    in_api: Option<&NodeStatus>,
    candidate: &NodeStatus,
    since_last_report: Duration,
    report_frequency: Duration,
) -> bool {
    match in_api {
        None => true,
        Some(current) => status_changed(current, candidate) || since_last_report >= report_frequency,
    }
}

#[cfg(test)]
mod tests;
