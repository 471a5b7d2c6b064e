//! Tests of node conditions, capacity and the report decision.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::config::parse_config;

fn t(secs: i64) -> Time {
    Time(Timestamp::from_second(1_700_000_000 + secs).unwrap())
}

fn rc(kind: &str, status: bool, reason: &str, message: &str) -> RuntimeCondition {
    RuntimeCondition { kind: kind.into(), status, reason: reason.into(), message: message.into() }
}

#[test]
fn readiness_messages_follow_upstream() {
    let ok = [rc("RuntimeReady", true, "", ""), rc("NetworkReady", true, "", "")];
    assert_eq!(readiness_from_runtime(Ok(&ok)), Readiness::Ready);
    let net = [rc("RuntimeReady", true, "", ""), rc("NetworkReady", false, "NetworkPluginNotReady", "cni not initialized")];
    assert_eq!(
        readiness_from_runtime(Ok(&net)),
        Readiness::NotReady {
            message: "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:cni not initialized".into()
        }
    );
}

#[test]
fn conditions_order_and_transition_times() {
    let first = node_conditions(&[], &Readiness::Ready, &t(0));
    let kinds: Vec<_> = first.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(kinds, ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]);
    assert_eq!(first[3].reason.as_deref(), Some("KubeletReady"));
    assert_eq!(first[3].message.as_deref(), Some("kubelet is posting ready status"));
    assert_eq!(first[0].reason.as_deref(), Some("KubeletHasSufficientMemory"));
    // Unchanged: transition kept, heartbeat advances.
    let second = node_conditions(&first, &Readiness::Ready, &t(10));
    assert_eq!(second[3].last_transition_time, Some(t(0)));
    assert_eq!(second[3].last_heartbeat_time, Some(t(10)));
    // Changed: transition moves.
    let third = node_conditions(&second, &Readiness::NotReady { message: "x".into() }, &t(20));
    assert_eq!(third[3].status, "False");
    assert_eq!(third[3].reason.as_deref(), Some("KubeletNotReady"));
    assert_eq!(third[3].last_transition_time, Some(t(20)));
    assert_eq!(third[0].last_transition_time, Some(t(0)));
}

#[test]
fn report_only_on_change_or_after_report_frequency() {
    let mk = |prev: &NodeStatus, ready: &Readiness, now| NodeStatus {
        conditions: Some(node_conditions(prev.conditions.as_deref().unwrap_or_default(), ready, &t(now))),
        ..Default::default()
    };
    let a = mk(&NodeStatus::default(), &Readiness::Ready, 0);
    let b = mk(&a, &Readiness::Ready, 10);
    let freq = Duration::from_secs(300);
    assert!(should_report(None, &a, Duration::ZERO, freq));
    assert!(!should_report(Some(&a), &b, Duration::from_secs(10), freq), "heartbeat-only change is not a change");
    assert!(should_report(Some(&a), &b, Duration::from_secs(300), freq));
    let c = mk(&a, &Readiness::NotReady { message: "m".into() }, 10);
    assert!(should_report(Some(&a), &c, Duration::from_secs(1), freq));
}

#[test]
fn configured_node_size_and_allocatable() {
    let cfg = parse_config(
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: 7\n\
         systemReserved:\n  cpu: 500m\nnodekit:\n  nodeSize:\n    cpu: \"2\"\n    memory: 1Gi\n    ephemeralStorage: 10Gi\n",
        std::path::Path::new("t"),
    )
    .unwrap();
    let facts = HostFacts { cpus: 64, memory_bytes: 1 << 40, ..Default::default() };
    let (cap, alloc) = capacity_and_allocatable(&facts, &cfg);
    assert_eq!(cap["cpu"].0, "2");
    assert_eq!(cap["memory"].0, "1048576Ki");
    assert_eq!(cap["pods"].0, "7");
    assert_eq!(alloc["cpu"].0, "1500m");
    assert_eq!(alloc["memory"].0, format!("{}Ki", 1048576 - 100 * 1024));
    assert_eq!(alloc["ephemeral-storage"].0, "9437184Ki");
}

#[test]
fn runtime_version_string() {
    let v = RuntimeVersion { runtime_name: "containerd".into(), runtime_version: "1.6.20".into(), ..Default::default() };
    let info = node_info(&HostFacts::default(), &v, "v1.34.2-nodekit");
    assert_eq!(info.container_runtime_version, "containerd://1.6.20");
    assert_eq!(info.kubelet_version, "v1.34.2-nodekit");
    assert_eq!(info.operating_system, "linux");
}

#[test]
fn change_detection_compares_owned_fields_by_value() {
    let cfg = parse_config(
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nnodekit:\n  nodeSize:\n    memory: 2Gi\n",
        std::path::Path::new("t"),
    )
    .unwrap();
    let (capacity, allocatable) = capacity_and_allocatable(&HostFacts { cpus: 2, ..Default::default() }, &cfg);
    let ours = NodeStatus {
        capacity: Some(capacity),
        allocatable: Some(allocatable),
        conditions: Some(node_conditions(&[], &Readiness::Ready, &t(0))),
        ..Default::default()
    };
    // The server canonicalized a quantity and added fields the agent does not own.
    let mut in_api = ours.clone();
    in_api.capacity.as_mut().unwrap().insert("memory".into(), Quantity("2Gi".into()));
    in_api.images = Some(vec![]);
    assert!(!status_changed(&in_api, &ours));
    // The node lifecycle controller set Ready=Unknown: a change to undo at once.
    let mut unknown = in_api.clone();
    let ready = unknown.conditions.as_mut().unwrap().iter_mut().find(|c| c.type_ == "Ready").unwrap();
    ready.status = "Unknown".into();
    ready.reason = Some("NodeStatusUnknown".into());
    assert!(should_report(Some(&unknown), &ours, Duration::from_secs(1), Duration::from_secs(300)));
}
