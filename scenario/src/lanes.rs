//! Lanes from what was watched: the runner keeps every version of the world's Nodes, their
//! Leases and its Pods as the API server returned them ([`Snapshot`]s), and the events; these
//! pure functions turn them into the timeline's [`Lane`]s.
//!
//! Consecutive snapshots with the same derived state extend one segment; the last segment of a
//! track ends at the scenario's end. A deleted object is passed as a snapshot whose object has
//! an extra top-level `"__deleted": true`: its segments end there (an object of the same name
//! created later starts new ones on the same lane).

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::record::{EventRow, Lane, Mark, Segment, Tone, Track};

/// One observed state of an object: the time and the whole object as the API server returned it (JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub at_ms: u64,
    pub object: Value,
}

/// Node lanes: one per node name (sorted). Tracks, always in this order:
/// - `Ready`: the Ready condition (True = Good, False = Bad, Unknown = Unknown), with the reason
///   when not True; nothing before the node exists;
/// - `pressure`: while MemoryPressure, DiskPressure or PIDPressure is True, text = the condition
///   types (Warn);
/// - `taints`: the taint set as `key:Effect, …` (`key=value:Effect` when a value is set) while
///   non-empty; Bad if any taint is NoExecute, else Warn;
/// - `lease`: a mark `renew` (Neutral) at each change of the node's Lease `spec.renewTime` in
///   `kube-node-lease` (the lease snapshots come separately).
pub fn node_lanes(nodes: &[Snapshot], leases: &[Snapshot], end_ms: u64) -> Vec<Lane> {
    #[derive(Default)]
    struct NodeState {
        ready: Segments,
        pressure: Segments,
        taints: Segments,
        lease: Vec<Mark>,
        last_renew: Option<String>,
    }
    let mut lanes: BTreeMap<String, NodeState> = BTreeMap::new();

    for snap in by_time(nodes) {
        let Some(name) = str_at(&snap.object, &["metadata", "name"]) else {
            continue;
        };
        let st = lanes.entry(name.to_string()).or_default();
        let at = snap.at_ms;
        if is_deleted(&snap.object) {
            st.ready.observe(at, None);
            st.pressure.observe(at, None);
            st.taints.observe(at, None);
            continue;
        }
        st.ready.observe(at, Some(node_ready(&snap.object)));
        st.pressure.observe(at, node_pressure(&snap.object));
        st.taints.observe(at, node_taints(&snap.object));
    }

    for snap in by_time(leases) {
        let Some(name) = str_at(&snap.object, &["metadata", "name"]) else {
            continue;
        };
        if let Some(ns) = str_at(&snap.object, &["metadata", "namespace"])
            && ns != "kube-node-lease"
        {
            continue;
        }
        let st = lanes.entry(name.to_string()).or_default();
        if is_deleted(&snap.object) {
            st.last_renew = None;
            continue;
        }
        let renew = str_at(&snap.object, &["spec", "renewTime"]).map(str::to_string);
        if renew.is_some() && renew != st.last_renew {
            st.lease.push(Mark {
                at_ms: snap.at_ms,
                text: "renew".into(),
                tone: Tone::Neutral,
            });
        }
        if renew.is_some() {
            st.last_renew = renew;
        }
    }

    lanes
        .into_iter()
        .map(|(name, st)| Lane {
            name,
            tracks: vec![
                track("Ready", st.ready.finish(end_ms), vec![]),
                track("pressure", st.pressure.finish(end_ms), vec![]),
                track("taints", st.taints.finish(end_ms), vec![]),
                track("lease", vec![], st.lease),
            ],
        })
        .collect()
}

/// Pod lanes: one per `namespace/name`, in order of first appearance. Tracks:
/// - `phase`: Pending (Neutral; Warn when unschedulable or a container waits for a reason other
///   than ContainerCreating/PodInitializing), Running and Succeeded (Good), Failed (Bad), Unknown
///   (Unknown); `Terminating` (Warn) once `metadata.deletionTimestamp` is set. Marks from the
///   pod's `Killing`, `BackOff`, `Evicted`, `Preempting` and `TaintManagerEviction` events;
/// - `Ready`: the Ready condition (True = Good; False = Bad once the pod has been Ready and lost
///   it, Warn while it starts or terminates; Unknown = Unknown). Marks (Bad) from `Unhealthy` events (probe failures), text = the first 60
///   characters of the message;
/// - one track per container, `container <name>` (init containers: `init container <name>`):
///   `waiting: <reason>` Warn, `running` Good, `terminated: <reason> (exit N)` Bad, Neutral when
///   the exit code is 0; a mark `restart N` (Bad) whenever restartCount rises.
pub fn pod_lanes(pods: &[Snapshot], events: &[EventRow], end_ms: u64) -> Vec<Lane> {
    struct ContainerTrack {
        label: String,
        segments: Segments,
        marks: Vec<Mark>,
        restarts: Option<u64>,
    }
    struct PodState {
        name: String,
        uid: Option<String>,
        phase: Segments,
        phase_marks: Vec<Mark>,
        ready: Segments,
        ready_marks: Vec<Mark>,
        /// This pod (uid) has been Ready.
        was_ready: bool,
        containers: Vec<ContainerTrack>,
    }
    let mut order: Vec<PodState> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();

    for snap in by_time(pods) {
        let obj = &snap.object;
        let Some(key) = pod_key(obj) else {
            continue;
        };
        let i = match index.get(&key) {
            Some(&i) => i,
            None => {
                index.insert(key.clone(), order.len());
                order.push(PodState {
                    name: key,
                    uid: None,
                    phase: Segments::default(),
                    phase_marks: vec![],
                    ready: Segments::default(),
                    ready_marks: vec![],
                    was_ready: false,
                    containers: vec![],
                });
                order.len() - 1
            }
        };
        let Some(st) = order.get_mut(i) else {
            continue;
        };
        let at = snap.at_ms;

        if is_deleted(obj) {
            st.phase.observe(at, None);
            st.ready.observe(at, None);
            for c in &mut st.containers {
                c.segments.observe(at, None);
                c.restarts = None;
            }
            st.uid = None;
            st.was_ready = false;
            continue;
        }

        // A new pod of the same name (a StatefulSet's replacement): its restart counts and
        // readiness start over.
        let uid = str_at(obj, &["metadata", "uid"]).map(str::to_string);
        if uid.is_some() && uid != st.uid {
            for c in &mut st.containers {
                c.restarts = None;
            }
            st.uid = uid;
            st.was_ready = false;
        }

        st.phase.observe(at, Some(pod_phase(obj)));
        let ready = pod_ready(obj, st.was_ready);
        st.was_ready |= ready.as_ref().is_some_and(|r| r.tone == Tone::Good);
        st.ready.observe(at, ready);

        // Tracks for every container named by the spec or the status, in first-seen order.
        let statuses = container_statuses(obj);
        let labels = container_names(obj)
            .into_iter()
            .chain(statuses.iter().map(|(l, _)| l.clone()));
        for label in labels {
            if !st.containers.iter().any(|c| c.label == label) {
                st.containers.push(ContainerTrack {
                    label,
                    segments: Segments::default(),
                    marks: vec![],
                    restarts: None,
                });
            }
        }
        for c in &mut st.containers {
            let status = statuses
                .iter()
                .find(|(l, _)| *l == c.label)
                .map(|(_, s)| *s);
            c.segments.observe(at, status.and_then(container_state));
            if let Some(count) = status
                .and_then(|s| s.get("restartCount"))
                .and_then(Value::as_u64)
            {
                if let Some(prev) = c.restarts
                    && count > prev
                {
                    c.marks.push(Mark {
                        at_ms: at,
                        text: format!("restart {count}"),
                        tone: Tone::Bad,
                    });
                }
                c.restarts = Some(count);
            }
        }
    }

    for ev in events {
        let Some(key) = ev.object.strip_prefix("Pod/") else {
            continue;
        };
        let Some(st) = index.get(key).and_then(|&i| order.get_mut(i)) else {
            continue;
        };
        let excerpt: String = ev.message.chars().take(60).collect();
        match ev.reason.as_str() {
            "Unhealthy" => st.ready_marks.push(Mark {
                at_ms: ev.at_ms,
                text: excerpt,
                tone: Tone::Bad,
            }),
            "Killing" | "BackOff" | "Evicted" | "Preempting" | "TaintManagerEviction" => {
                let tone = match ev.reason.as_str() {
                    "Killing" | "Preempting" => Tone::Warn,
                    "TaintManagerEviction" if ev.message.starts_with("Cancelling") => Tone::Neutral,
                    _ => Tone::Bad,
                };
                let text = if excerpt.is_empty() {
                    ev.reason.clone()
                } else {
                    format!("{}: {excerpt}", ev.reason)
                };
                st.phase_marks.push(Mark {
                    at_ms: ev.at_ms,
                    text,
                    tone,
                });
            }
            _ => {}
        }
    }

    order
        .into_iter()
        .map(|st| {
            let mut tracks = vec![
                track("phase", st.phase.finish(end_ms), st.phase_marks),
                track("Ready", st.ready.finish(end_ms), st.ready_marks),
            ];
            for c in st.containers {
                let segments = c.segments.finish(end_ms);
                tracks.push(Track {
                    label: c.label,
                    segments,
                    marks: c.marks,
                });
            }
            Lane {
                name: st.name,
                tracks,
            }
        })
        .collect()
}

/// A state a track shows.
#[derive(Debug, Clone, PartialEq)]
struct State {
    text: String,
    tone: Tone,
}

fn state(text: impl Into<String>, tone: Tone) -> State {
    State {
        text: text.into(),
        tone,
    }
}

/// Segments of one track, built from observations in time order.
#[derive(Default)]
struct Segments {
    done: Vec<Segment>,
    open: Option<(u64, State)>,
}

impl Segments {
    /// At `at` the track shows `state` (None: nothing).
    fn observe(&mut self, at: u64, state: Option<State>) {
        if let (Some((_, cur)), Some(new)) = (&self.open, &state)
            && cur == new
        {
            return;
        }
        self.close(at);
        self.open = state.map(|s| (at, s));
    }

    fn close(&mut self, at: u64) {
        if let Some((start, s)) = self.open.take() {
            let end = at.max(start);
            if end > start {
                self.done.push(Segment {
                    start_ms: start,
                    end_ms: end,
                    text: s.text,
                    tone: s.tone,
                });
            }
        }
    }

    fn finish(mut self, end_ms: u64) -> Vec<Segment> {
        self.close(end_ms);
        self.done
    }
}

fn track(label: &str, segments: Vec<Segment>, mut marks: Vec<Mark>) -> Track {
    marks.sort_by_key(|m| m.at_ms);
    Track {
        label: label.to_string(),
        segments,
        marks,
    }
}

/// The snapshots sorted by time, keeping the given order among equal times.
fn by_time(snaps: &[Snapshot]) -> Vec<&Snapshot> {
    let mut v: Vec<&Snapshot> = snaps.iter().collect();
    v.sort_by_key(|s| s.at_ms);
    v
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    value_at(v, path).and_then(Value::as_str)
}

fn value_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn is_deleted(obj: &Value) -> bool {
    obj.get("__deleted")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The entry of `status.conditions` of this type.
fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    value_at(obj, &["status", "conditions"])
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

fn with_reason(status: &str, cond: &Value) -> String {
    match cond.get("reason").and_then(Value::as_str) {
        Some(r) if !r.is_empty() => format!("{status} ({r})"),
        _ => status.to_string(),
    }
}

fn node_ready(obj: &Value) -> State {
    let Some(cond) = condition(obj, "Ready") else {
        return state("not reported", Tone::Unknown);
    };
    match cond.get("status").and_then(Value::as_str) {
        Some("True") => state("True", Tone::Good),
        Some("False") => state(with_reason("False", cond), Tone::Bad),
        Some(other) => state(with_reason(other, cond), Tone::Unknown),
        None => state("not reported", Tone::Unknown),
    }
}

fn node_pressure(obj: &Value) -> Option<State> {
    let on: Vec<&str> = ["MemoryPressure", "DiskPressure", "PIDPressure"]
        .into_iter()
        .filter(|t| {
            condition(obj, t)
                .and_then(|c| c.get("status"))
                .and_then(Value::as_str)
                == Some("True")
        })
        .collect();
    (!on.is_empty()).then(|| state(on.join(", "), Tone::Warn))
}

fn node_taints(obj: &Value) -> Option<State> {
    let taints = value_at(obj, &["spec", "taints"]).and_then(Value::as_array)?;
    let mut no_execute = false;
    let texts: Vec<String> = taints
        .iter()
        .map(|t| {
            let key = t.get("key").and_then(Value::as_str).unwrap_or("");
            let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
            no_execute |= effect == "NoExecute";
            match t.get("value").and_then(Value::as_str) {
                Some(v) if !v.is_empty() => format!("{key}={v}:{effect}"),
                _ => format!("{key}:{effect}"),
            }
        })
        .collect();
    if texts.is_empty() {
        return None;
    }
    Some(state(
        texts.join(", "),
        if no_execute { Tone::Bad } else { Tone::Warn },
    ))
}

fn pod_key(obj: &Value) -> Option<String> {
    let name = str_at(obj, &["metadata", "name"])?;
    let ns = str_at(obj, &["metadata", "namespace"]).unwrap_or("default");
    Some(format!("{ns}/{name}"))
}

fn pod_phase(obj: &Value) -> State {
    if value_at(obj, &["metadata", "deletionTimestamp"]).is_some_and(|v| !v.is_null()) {
        return state("Terminating", Tone::Warn);
    }
    let phase = str_at(obj, &["status", "phase"]).unwrap_or("Pending");
    match phase {
        "Pending" => {
            if let Some(c) = condition(obj, "PodScheduled")
                && c.get("status").and_then(Value::as_str) == Some("False")
            {
                return state(with_reason("Pending", c), Tone::Warn);
            }
            let stuck = container_statuses(obj).into_iter().find_map(|(_, s)| {
                let reason = value_at(s, &["state", "waiting", "reason"])?.as_str()?;
                (!matches!(reason, "ContainerCreating" | "PodInitializing" | "")).then_some(reason)
            });
            match stuck {
                Some(reason) => state(format!("Pending ({reason})"), Tone::Warn),
                None => state("Pending", Tone::Neutral),
            }
        }
        "Running" | "Succeeded" => state(phase, Tone::Good),
        "Failed" => match str_at(obj, &["status", "reason"]) {
            Some(r) if !r.is_empty() => state(format!("Failed ({r})"), Tone::Bad),
            _ => state("Failed", Tone::Bad),
        },
        other => state(other, Tone::Unknown),
    }
}

fn pod_ready(obj: &Value, was_ready: bool) -> Option<State> {
    let cond = condition(obj, "Ready")?;
    Some(match cond.get("status").and_then(Value::as_str) {
        Some("True") => state("True", Tone::Good),
        Some("False") => {
            let terminating =
                value_at(obj, &["metadata", "deletionTimestamp"]).is_some_and(|v| !v.is_null());
            let tone = if was_ready && !terminating {
                Tone::Bad
            } else {
                Tone::Warn
            };
            state(with_reason("False", cond), tone)
        }
        Some(other) => state(with_reason(other, cond), Tone::Unknown),
        None => return None,
    })
}

/// Track labels of the containers the spec names, init containers first.
fn container_names(obj: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (field, prefix) in [
        ("initContainers", "init container "),
        ("containers", "container "),
    ] {
        if let Some(list) = value_at(obj, &["spec", field]).and_then(Value::as_array) {
            for c in list {
                if let Some(name) = c.get("name").and_then(Value::as_str) {
                    out.push(format!("{prefix}{name}"));
                }
            }
        }
    }
    out
}

/// (track label, status) of every container status, init containers first.
fn container_statuses(obj: &Value) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    for (field, prefix) in [
        ("initContainerStatuses", "init container "),
        ("containerStatuses", "container "),
    ] {
        if let Some(list) = value_at(obj, &["status", field]).and_then(Value::as_array) {
            for s in list {
                if let Some(name) = s.get("name").and_then(Value::as_str) {
                    out.push((format!("{prefix}{name}"), s));
                }
            }
        }
    }
    out
}

fn container_state(status: &Value) -> Option<State> {
    let st = status.get("state")?;
    if let Some(w) = st.get("waiting") {
        return Some(match w.get("reason").and_then(Value::as_str) {
            Some(r) if !r.is_empty() => state(format!("waiting: {r}"), Tone::Warn),
            _ => state("waiting", Tone::Warn),
        });
    }
    if st.get("running").is_some() {
        return Some(state("running", Tone::Good));
    }
    if let Some(t) = st.get("terminated") {
        let code = t.get("exitCode").and_then(Value::as_i64);
        let reason = t
            .get("reason")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty());
        let text = match (reason, code) {
            (Some(r), Some(c)) => format!("terminated: {r} (exit {c})"),
            (Some(r), None) => format!("terminated: {r}"),
            (None, Some(c)) => format!("terminated (exit {c})"),
            (None, None) => "terminated".to_string(),
        };
        return Some(state(
            text,
            if code == Some(0) {
                Tone::Neutral
            } else {
                Tone::Bad
            },
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}
