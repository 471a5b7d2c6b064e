//! Pod lanes.

use std::collections::HashMap;

use serde_json::Value;

use crate::record::{EventRow, Lane, Mark, Tone, Track};

use super::Snapshot;
use super::object::{condition, is_deleted, str_at, value_at, with_reason};
use super::segments::{Segments, State, by_time, state, track};

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
                order.push(PodState::new(key));
                order.len() - 1
            }
        };
        let Some(st) = order.get_mut(i) else {
            continue;
        };
        if is_deleted(obj) {
            st.deleted(snap.at_ms);
        } else {
            st.observe(snap.at_ms, obj);
        }
    }

    for ev in events {
        let Some(key) = ev.object.strip_prefix("Pod/") else {
            continue;
        };
        let Some(st) = index.get(key).and_then(|&i| order.get_mut(i)) else {
            continue;
        };
        st.event(ev);
    }

    order.into_iter().map(|st| st.into_lane(end_ms)).collect()
}

/// The track of one container while it is built.
struct ContainerTrack {
    label: String,
    segments: Segments,
    marks: Vec<Mark>,
    restarts: Option<u64>,
}

/// The lane of one pod name while it is built.
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

impl PodState {
    fn new(name: String) -> Self {
        PodState {
            name,
            uid: None,
            phase: Segments::default(),
            phase_marks: vec![],
            ready: Segments::default(),
            ready_marks: vec![],
            was_ready: false,
            containers: vec![],
        }
    }

    /// The pod is gone at `at`: its segments end there.
    fn deleted(&mut self, at: u64) {
        self.phase.observe(at, None);
        self.ready.observe(at, None);
        for c in &mut self.containers {
            c.segments.observe(at, None);
            c.restarts = None;
        }
        self.uid = None;
        self.was_ready = false;
    }

    /// One version of the pod, seen at `at`.
    fn observe(&mut self, at: u64, obj: &Value) {
        // A new pod of the same name (a StatefulSet's replacement): its restart counts and
        // readiness start over.
        let uid = str_at(obj, &["metadata", "uid"]).map(str::to_string);
        if uid.is_some() && uid != self.uid {
            for c in &mut self.containers {
                c.restarts = None;
            }
            self.uid = uid;
            self.was_ready = false;
        }

        self.phase.observe(at, Some(pod_phase(obj)));
        let ready = pod_ready(obj, self.was_ready);
        self.was_ready |= ready.as_ref().is_some_and(|r| r.tone == Tone::Good);
        self.ready.observe(at, ready);
        self.observe_containers(at, obj);
    }

    /// Tracks for every container named by the spec or the status, in first-seen order; a
    /// restart mark whenever a container's restart count rises.
    fn observe_containers(&mut self, at: u64, obj: &Value) {
        let statuses = container_statuses(obj);
        let labels = container_names(obj)
            .into_iter()
            .chain(statuses.iter().map(|(l, _)| l.clone()));
        for label in labels {
            if !self.containers.iter().any(|c| c.label == label) {
                self.containers.push(ContainerTrack {
                    label,
                    segments: Segments::default(),
                    marks: vec![],
                    restarts: None,
                });
            }
        }
        for c in &mut self.containers {
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

    /// A mark for one of the pod's events, when it is of a kind the lane shows.
    fn event(&mut self, ev: &EventRow) {
        let excerpt: String = ev.message.chars().take(60).collect();
        match ev.reason.as_str() {
            "Unhealthy" => self.ready_marks.push(Mark {
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
                self.phase_marks.push(Mark {
                    at_ms: ev.at_ms,
                    text,
                    tone,
                });
            }
            _ => {}
        }
    }

    fn into_lane(self, end_ms: u64) -> Lane {
        let mut tracks = vec![
            track("phase", self.phase.finish(end_ms), self.phase_marks),
            track("Ready", self.ready.finish(end_ms), self.ready_marks),
        ];
        for c in self.containers {
            let segments = c.segments.finish(end_ms);
            tracks.push(Track {
                label: c.label,
                segments,
                marks: c.marks,
            });
        }
        Lane {
            name: self.name,
            tracks,
        }
    }
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
