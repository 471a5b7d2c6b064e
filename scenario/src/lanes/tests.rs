use serde_json::{Value, json};

use super::*;
use crate::record::{EventRow, Lane, Mark, Segment, Tone, Track};

fn node(name: &str, ready: &str, reason: &str, taints: Value, memory_pressure: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "uid": format!("uid-{name}"),
            "resourceVersion": "1234",
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64"
            }
        },
        "spec": { "podCIDR": "10.244.1.0/24", "taints": taints },
        "status": {
            "conditions": [
                { "type": "MemoryPressure", "status": memory_pressure, "reason": "KubeletHasSufficientMemory",
                  "message": "kubelet has sufficient memory available",
                  "lastHeartbeatTime": "2025-06-01T10:00:00Z", "lastTransitionTime": "2025-06-01T10:00:00Z" },
                { "type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure",
                  "message": "kubelet has no disk pressure",
                  "lastHeartbeatTime": "2025-06-01T10:00:00Z", "lastTransitionTime": "2025-06-01T10:00:00Z" },
                { "type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID",
                  "message": "kubelet has sufficient PID available",
                  "lastHeartbeatTime": "2025-06-01T10:00:00Z", "lastTransitionTime": "2025-06-01T10:00:00Z" },
                { "type": "Ready", "status": ready, "reason": reason,
                  "message": "kubelet is posting ready status",
                  "lastHeartbeatTime": "2025-06-01T10:00:00Z", "lastTransitionTime": "2025-06-01T10:00:00Z" }
            ],
            "addresses": [ { "type": "InternalIP", "address": "10.77.0.11" }, { "type": "Hostname", "address": name } ],
            "nodeInfo": { "kubeletVersion": "v1.34.2-nodekit", "containerRuntimeVersion": "fake-cri://0.1.0" }
        }
    })
}

fn lease(name: &str, renew: &str) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": { "name": name, "namespace": "kube-node-lease" },
        "spec": { "holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": renew }
    })
}

fn snap(at_ms: u64, object: Value) -> Snapshot {
    Snapshot { at_ms, object }
}

fn seg(start_ms: u64, end_ms: u64, text: &str, tone: Tone) -> Segment {
    Segment {
        start_ms,
        end_ms,
        text: text.into(),
        tone,
    }
}

fn get<'a>(lane: &'a Lane, label: &str) -> &'a Track {
    lane.tracks.iter().find(|t| t.label == label).unwrap()
}

const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

#[test]
fn node_ready_taints_pressure_and_lease() {
    let unreachable = json!([
        { "key": UNREACHABLE, "effect": "NoSchedule", "timeAdded": "2025-06-01T10:00:50Z" },
        { "key": UNREACHABLE, "effect": "NoExecute", "timeAdded": "2025-06-01T10:00:50Z" }
    ]);
    let nodes = vec![
        // node-b first in the input: lanes come out sorted by name anyway
        snap(
            500,
            node("node-b", "True", "KubeletReady", json!(null), "False"),
        ),
        snap(
            1000,
            node(
                "node-a",
                "False",
                "KubeletNotReady",
                json!([
                    { "key": "node.kubernetes.io/not-ready", "effect": "NoSchedule" }
                ]),
                "False",
            ),
        ),
        snap(
            2000,
            node("node-a", "True", "KubeletReady", json!(null), "False"),
        ),
        // a heartbeat: same state, no new segment
        snap(
            12000,
            node("node-a", "True", "KubeletReady", json!(null), "False"),
        ),
        snap(
            50000,
            node(
                "node-a",
                "Unknown",
                "NodeStatusUnknown",
                unreachable,
                "Unknown",
            ),
        ),
        snap(
            60000,
            node("node-a", "True", "KubeletReady", json!([]), "True"),
        ),
    ];
    let leases = vec![
        snap(1500, lease("node-a", "2025-06-01T10:00:01.500000Z")),
        snap(1600, lease("node-a", "2025-06-01T10:00:01.500000Z")),
        snap(11500, lease("node-a", "2025-06-01T10:00:11.500000Z")),
        snap(61000, lease("node-a", "2025-06-01T10:01:01.000000Z")),
        snap(
            61000,
            json!({"metadata": {"name": "node-a", "namespace": "default"}, "spec": {"renewTime": "x"}}),
        ),
    ];
    let lanes = node_lanes(&nodes, &leases, 70000);
    assert_eq!(
        lanes.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
        ["node-a", "node-b"]
    );
    let a = &lanes[0];
    assert_eq!(
        a.tracks
            .iter()
            .map(|t| t.label.as_str())
            .collect::<Vec<_>>(),
        ["Ready", "pressure", "taints", "lease"]
    );
    assert_eq!(
        get(a, "Ready").segments,
        [
            seg(1000, 2000, "False (KubeletNotReady)", Tone::Bad),
            seg(2000, 50000, "True", Tone::Good),
            seg(50000, 60000, "Unknown (NodeStatusUnknown)", Tone::Unknown),
            seg(60000, 70000, "True", Tone::Good),
        ]
    );
    assert_eq!(
        get(a, "taints").segments,
        [
            seg(
                1000,
                2000,
                "node.kubernetes.io/not-ready:NoSchedule",
                Tone::Warn
            ),
            seg(
                50000,
                60000,
                "node.kubernetes.io/unreachable:NoSchedule, node.kubernetes.io/unreachable:NoExecute",
                Tone::Bad
            ),
        ]
    );
    assert_eq!(
        get(a, "pressure").segments,
        [seg(60000, 70000, "MemoryPressure", Tone::Warn)]
    );
    let renewals: Vec<u64> = get(a, "lease").marks.iter().map(|m| m.at_ms).collect();
    assert_eq!(renewals, [1500, 11500, 61000]);
    assert!(
        get(a, "lease")
            .marks
            .iter()
            .all(|m| m.text == "renew" && m.tone == Tone::Neutral)
    );

    let b = &lanes[1];
    assert_eq!(
        get(b, "Ready").segments,
        [seg(500, 70000, "True", Tone::Good)]
    );
    assert!(get(b, "taints").segments.is_empty());
    assert!(get(b, "lease").marks.is_empty());
}

#[test]
fn a_deleted_node_ends_its_segments() {
    let mut gone = node("node-a", "True", "KubeletReady", json!(null), "False");
    gone["__deleted"] = json!(true);
    let nodes = vec![
        snap(
            0,
            node("node-a", "True", "KubeletReady", json!(null), "False"),
        ),
        snap(30000, gone),
    ];
    let lanes = node_lanes(&nodes, &[], 40000);
    assert_eq!(
        get(&lanes[0], "Ready").segments,
        [seg(0, 30000, "True", Tone::Good)]
    );
}

#[test]
fn taint_with_value_and_no_schedule_only_is_warn() {
    let n = node(
        "node-a",
        "True",
        "KubeletReady",
        json!([{ "key": "dedicated", "value": "infra", "effect": "NoSchedule" },
               { "key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule" }]),
        "False",
    );
    let lanes = node_lanes(&[snap(0, n)], &[], 10);
    assert_eq!(
        get(&lanes[0], "taints").segments,
        [seg(
            0,
            10,
            "dedicated=infra:NoSchedule, node.kubernetes.io/unschedulable:NoSchedule",
            Tone::Warn
        )]
    );
}

fn pod(name: &str, uid: &str, phase: &str, ready: &str, state: Value, restarts: u64) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": uid,
            "labels": { "app": "web" },
            "ownerReferences": [{ "apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "ss-1", "controller": true }]
        },
        "spec": {
            "nodeName": "node-a",
            "containers": [{
                "name": "web",
                "image": "registry.k8s.io/e2e-test-images/agnhost:2.53",
                "args": ["netexec", "--http-port=8080"],
                "readinessProbe": { "httpGet": { "path": "/readyz", "port": 8080 }, "periodSeconds": 1 }
            }],
            "tolerations": [
                { "key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10 }
            ]
        },
        "status": {
            "phase": phase,
            "conditions": [
                { "type": "PodScheduled", "status": "True", "lastTransitionTime": "2025-06-01T10:00:01Z" },
                { "type": "Initialized", "status": "True", "lastTransitionTime": "2025-06-01T10:00:01Z" },
                { "type": "ContainersReady", "status": ready, "lastTransitionTime": "2025-06-01T10:00:02Z" },
                { "type": "Ready", "status": ready,
                  "reason": if ready == "True" { Value::Null } else { json!("ContainersNotReady") },
                  "message": if ready == "True" { Value::Null } else { json!("containers with unready status: [web]") },
                  "lastTransitionTime": "2025-06-01T10:00:02Z" }
            ],
            "hostIP": "10.77.0.11",
            "podIP": "10.244.1.5",
            "containerStatuses": [{
                "name": "web",
                "image": "registry.k8s.io/e2e-test-images/agnhost:2.53",
                "imageID": "",
                "containerID": "containerd://4f2a",
                "ready": ready == "True",
                "started": true,
                "restartCount": restarts,
                "state": state
            }]
        }
    })
}

fn running() -> Value {
    json!({ "running": { "startedAt": "2025-06-01T10:00:02Z" } })
}

fn event(at_ms: u64, kind: &str, reason: &str, object: &str, message: &str) -> EventRow {
    EventRow {
        at_ms,
        kind: kind.into(),
        reason: reason.into(),
        object: object.into(),
        message: message.into(),
        count: 1,
        source: "kubelet node-a".into(),
    }
}

#[test]
fn pod_phase_ready_container_restarts_and_event_marks() {
    let mut terminating = pod("web-0", "u1", "Running", "False", running(), 0);
    terminating["metadata"]["deletionTimestamp"] = json!("2025-06-01T10:00:40Z");
    let mut deleted = terminating.clone();
    deleted["__deleted"] = json!(true);
    let mut pending = pod(
        "web-0",
        "u2",
        "Pending",
        "False",
        json!({ "waiting": { "reason": "ContainerCreating" } }),
        0,
    );
    pending["status"]["podIP"] = Value::Null;
    let pods = vec![
        snap(
            1000,
            pod(
                "web-0",
                "u1",
                "Pending",
                "False",
                json!({ "waiting": { "reason": "ContainerCreating" } }),
                0,
            ),
        ),
        snap(1200, pod("web-1", "u9", "Running", "True", running(), 0)),
        snap(2000, pod("web-0", "u1", "Running", "True", running(), 0)),
        snap(3000, pod("web-0", "u1", "Running", "True", running(), 0)),
        snap(
            20000,
            pod(
                "web-0",
                "u1",
                "Running",
                "False",
                json!({ "terminated": { "reason": "Error", "exitCode": 137 } }),
                0,
            ),
        ),
        snap(21000, pod("web-0", "u1", "Running", "True", running(), 1)),
        snap(40000, terminating),
        snap(45000, deleted),
        // the StatefulSet's replacement: restart counting starts over
        snap(46000, pending),
        snap(48000, pod("web-0", "u2", "Running", "True", running(), 0)),
    ];
    let events = vec![
        event(
            15000,
            "Warning",
            "Unhealthy",
            "Pod/default/web-0",
            "Readiness probe failed: Get \"http://10.244.1.5:8080/readyz\": dial tcp 10.244.1.5:8080: connect: connection refused",
        ),
        event(
            19500,
            "Normal",
            "Killing",
            "Pod/default/web-0",
            "Container web failed liveness probe, will be restarted",
        ),
        event(
            40000,
            "Normal",
            "TaintManagerEviction",
            "Pod/default/web-0",
            "Marking for deletion Pod default/web-0",
        ),
        event(
            40000,
            "Normal",
            "Killing",
            "Pod/default/other",
            "not a lane",
        ),
        event(
            41000,
            "Normal",
            "Scheduled",
            "Pod/default/web-0",
            "not a mark",
        ),
    ];
    let lanes = pod_lanes(&pods, &events, 50000);
    assert_eq!(
        lanes.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
        ["default/web-0", "default/web-1"]
    );
    let w = &lanes[0];
    assert_eq!(
        w.tracks
            .iter()
            .map(|t| t.label.as_str())
            .collect::<Vec<_>>(),
        ["phase", "Ready", "container web"]
    );
    assert_eq!(
        get(w, "phase").segments,
        [
            seg(1000, 2000, "Pending", Tone::Neutral),
            seg(2000, 40000, "Running", Tone::Good),
            seg(40000, 45000, "Terminating", Tone::Warn),
            seg(46000, 48000, "Pending", Tone::Neutral),
            seg(48000, 50000, "Running", Tone::Good),
        ]
    );
    assert_eq!(
        get(w, "Ready").segments,
        [
            seg(1000, 2000, "False (ContainersNotReady)", Tone::Warn),
            seg(2000, 20000, "True", Tone::Good),
            seg(20000, 21000, "False (ContainersNotReady)", Tone::Bad),
            seg(21000, 40000, "True", Tone::Good),
            seg(40000, 45000, "False (ContainersNotReady)", Tone::Warn),
            seg(46000, 48000, "False (ContainersNotReady)", Tone::Warn),
            seg(48000, 50000, "True", Tone::Good),
        ]
    );
    assert_eq!(
        get(w, "container web").segments,
        [
            seg(1000, 2000, "waiting: ContainerCreating", Tone::Warn),
            seg(2000, 20000, "running", Tone::Good),
            seg(20000, 21000, "terminated: Error (exit 137)", Tone::Bad),
            seg(21000, 45000, "running", Tone::Good),
            seg(46000, 48000, "waiting: ContainerCreating", Tone::Warn),
            seg(48000, 50000, "running", Tone::Good),
        ]
    );
    // 0 → 1 in the first pod; the replacement starts again at 0
    assert_eq!(
        get(w, "container web").marks,
        [Mark {
            at_ms: 21000,
            text: "restart 1".into(),
            tone: Tone::Bad
        }]
    );
    let ready_marks = &get(w, "Ready").marks;
    assert_eq!(ready_marks.len(), 1);
    assert_eq!(ready_marks[0].tone, Tone::Bad);
    assert_eq!(ready_marks[0].text.chars().count(), 60);
    assert!(
        ready_marks[0]
            .text
            .starts_with("Readiness probe failed: Get")
    );
    let phase_marks: Vec<(u64, &str)> = get(w, "phase")
        .marks
        .iter()
        .map(|m| (m.at_ms, m.text.as_str()))
        .collect();
    assert_eq!(
        phase_marks,
        [
            (
                19500,
                "Killing: Container web failed liveness probe, will be restarted"
            ),
            (
                40000,
                "TaintManagerEviction: Marking for deletion Pod default/web-0"
            ),
        ]
    );
    assert_eq!(
        get(&lanes[1], "phase").segments,
        [seg(1200, 50000, "Running", Tone::Good)]
    );
}

#[test]
fn not_ready_is_bad_only_once_readiness_was_lost() {
    let pods = vec![
        snap(0, pod("web-0", "u1", "Running", "False", running(), 0)),
        snap(1000, pod("web-0", "u1", "Running", "True", running(), 0)),
        snap(2000, pod("web-0", "u1", "Running", "False", running(), 0)),
        // a replacement has to become Ready first
        snap(3000, pod("web-0", "u2", "Running", "False", running(), 0)),
    ];
    let lanes = pod_lanes(&pods, &[], 4000);
    let tones: Vec<Tone> = get(&lanes[0], "Ready")
        .segments
        .iter()
        .map(|s| s.tone)
        .collect();
    assert_eq!(tones, [Tone::Warn, Tone::Good, Tone::Bad, Tone::Warn]);
}

#[test]
fn pending_for_a_reason_and_failed_pods() {
    let mut unschedulable = pod("p", "u", "Pending", "False", json!({}), 0);
    unschedulable["status"]["conditions"] = json!([{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": "0/2 nodes are available: 2 node(s) had untolerated taint {node.kubernetes.io/unreachable: }."
    }]);
    unschedulable["status"]["containerStatuses"] = json!(null);
    let pull = pod(
        "p",
        "u",
        "Pending",
        "False",
        json!({ "waiting": { "reason": "ImagePullBackOff", "message": "Back-off pulling image" } }),
        0,
    );
    let mut evicted = pod(
        "p",
        "u",
        "Failed",
        "False",
        json!({ "terminated": { "reason": "Completed", "exitCode": 0 } }),
        0,
    );
    evicted["status"]["reason"] = json!("Evicted");
    let lanes = pod_lanes(
        &[snap(0, unschedulable), snap(10, pull), snap(20, evicted)],
        &[],
        30,
    );
    let l = &lanes[0];
    assert_eq!(
        get(l, "phase").segments,
        [
            seg(0, 10, "Pending (Unschedulable)", Tone::Warn),
            seg(10, 20, "Pending (ImagePullBackOff)", Tone::Warn),
            seg(20, 30, "Failed (Evicted)", Tone::Bad),
        ]
    );
    assert_eq!(
        get(l, "container web").segments,
        [
            seg(10, 20, "waiting: ImagePullBackOff", Tone::Warn),
            seg(20, 30, "terminated: Completed (exit 0)", Tone::Neutral),
        ]
    );
    // no Ready condition at first
    assert_eq!(get(l, "Ready").segments[0].start_ms, 10);
}

#[test]
fn garbage_does_not_panic() {
    let junk = vec![
        snap(0, json!(null)),
        snap(1, json!("x")),
        snap(2, json!({"metadata": {"name": 5}})),
        snap(
            3,
            json!({"metadata": {"name": "n"}, "status": {"conditions": "x"}, "spec": {"taints": [1, {}]}}),
        ),
        snap(
            4,
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{}, {"name": "c"}]}, "status": {"containerStatuses": [{"name": "c", "state": {"terminated": {}}, "restartCount": -1}]}}),
        ),
    ];
    let events = vec![
        event(0, "", "Unhealthy", "Pod/", ""),
        event(0, "", "Killing", "Pod/default/p", ""),
    ];
    let nodes = node_lanes(&junk, &junk, 0);
    assert_eq!(nodes.len(), 2);
    let pods = pod_lanes(&junk, &events, 0);
    assert_eq!(pods.len(), 2);
    assert_eq!(pods[1].name, "default/p");
    assert_eq!(pods[1].tracks[0].marks[0].text, "Killing");
}
