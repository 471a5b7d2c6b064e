//! The API PodStatus computed from the worker's observation and state, and its rendering as a
//! strategic merge patch for pods/status.

use std::collections::HashMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus,
    HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::model::{ContainerObs, ContainerView, Observation, RunState};
use crate::faults::{self, Fault};
use super::worker::{Phase, PodState, pod_phase, sidecar_done};

/// Inputs besides the observation and state.
#[derive(Clone, Debug, Default)]
pub struct StatusContext<'a> {
    pub runtime_name: &'a str,
    pub host_ip: Option<&'a str>,
    /// Termination messages read from the containers' message files, by container id.
    pub messages: HashMap<String, String>,
}

fn time(t: Timestamp) -> Time {
    Time(t)
}

fn terminated(c: &ContainerObs, cx: &StatusContext<'_>) -> ContainerStateTerminated {
    let reason = if !c.reason.is_empty() {
        c.reason.clone()
    } else if c.exit_code == 0 {
        "Completed".into()
    } else {
        "Error".into()
    };
    let message = cx
        .messages
        .get(&c.id)
        .filter(|m| !m.is_empty())
        .cloned()
        .or_else(|| (!c.message.is_empty()).then(|| c.message.clone()));
    ContainerStateTerminated {
        exit_code: c.exit_code,
        reason: Some(reason),
        message,
        started_at: c.started_at.map(time),
        finished_at: c.finished_at.map(time),
        container_id: Some(format!("{}://{}", cx.runtime_name, c.id)),
        signal: None,
    }
}

fn waiting(reason: &str, message: Option<&str>) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting { reason: Some(reason.into()), message: message.map(str::to_string) }),
        ..Default::default()
    }
}

fn container_status(
    view: &ContainerView,
    obs: &Observation,
    st: &PodState,
    cx: &StatusContext<'_>,
    init: bool,
    default_waiting: &str,
) -> ContainerStatus {
    let instances = obs.instances(&view.name);
    let latest = instances.last().copied();
    let previous = instances.len().checked_sub(2).and_then(|i| instances.get(i)).copied();
    let wait = st.waiting.get(&view.name);
    let mut status = ContainerStatus {
        name: view.name.clone(),
        image: view.image.clone(),
        image_id: latest.map(|l| l.image_ref.clone()).unwrap_or_default(),
        container_id: latest.map(|l| format!("{}://{}", cx.runtime_name, l.id)),
        restart_count: latest.map(|l| l.restart_count as i32).unwrap_or(0),
        ready: false,
        started: Some(false),
        ..Default::default()
    };
    let last_terminated = |c: Option<&ContainerObs>| {
        c.filter(|c| c.state == RunState::Exited).map(|c| ContainerState {
            terminated: Some(terminated(c, cx)),
            ..Default::default()
        })
    };
    match (latest, wait) {
        (Some(l), Some(w)) if l.state == RunState::Exited => {
            status.state = Some(waiting(&w.reason, Some(&w.message)));
            status.last_state = last_terminated(Some(l));
        }
        (None, Some(w)) => status.state = Some(waiting(&w.reason, Some(&w.message))),
        (None, None) => status.state = Some(waiting(default_waiting, None)),
        (Some(l), _) => {
            status.last_state = last_terminated(previous);
            match l.state {
                RunState::Running => {
                    let probe = obs.probe(&l.id);
                    status.state = Some(ContainerState {
                        running: Some(ContainerStateRunning { started_at: l.started_at.map(time) }),
                        ..Default::default()
                    });
                    status.started = Some(probe.started);
                    let ready = probe.ready || faults::active(Fault::ReadyWhenRunning);
                    // Readiness keeps following the readiness probe while the pod terminates
                    // (upstream; the endpointslice controller marks such an endpoint
                    // serving and terminating).
                    status.ready = probe.started && ready && (!init || view.sidecar);
                }
                RunState::Exited => {
                    status.state = Some(ContainerState { terminated: Some(terminated(l, cx)), ..Default::default() });
                    status.ready = init && !view.sidecar && l.exit_code == 0;
                }
                RunState::Created | RunState::Unknown => status.state = Some(waiting("ContainerCreating", None)),
            }
        }
    }
    if status.last_state.is_none() {
        status.last_state = Some(ContainerState::default());
    }
    status
}

fn condition(kind: &str, ok: bool, reason: Option<String>, message: Option<String>, prev: Option<&PodStatus>, now: Timestamp) -> PodCondition {
    let status = if ok { "True" } else { "False" }.to_string();
    let transition = prev
        .and_then(|p| p.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == kind && c.status == status))
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    PodCondition {
        type_: kind.into(),
        status,
        reason,
        message,
        last_transition_time: Some(transition),
        last_probe_time: None,
        observed_generation: None,
    }
}

/// Why the pod's readiness gates keep it from Ready (upstream's messages), judged against the
/// conditions the API holds for the pod (other controllers set them); `None` when all are True.
pub fn unready_gates(pod: &Pod) -> Option<String> {
    let gates = pod.spec.as_ref()?.readiness_gates.as_ref()?;
    let current = pod.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or(&[]);
    let unready: Vec<String> = gates
        .iter()
        .filter_map(|g| match current.iter().find(|c| c.type_ == g.condition_type) {
            None => Some(format!("corresponding condition of pod readiness gate {:?} does not exist.", g.condition_type)),
            Some(c) if c.status != "True" => {
                Some(format!("the status of pod readiness gate {:?} is not \"True\", but {}", g.condition_type, c.status))
            }
            Some(_) => None,
        })
        .collect();
    (!unready.is_empty()).then(|| unready.join(", "))
}

/// The QoS class from the spec (upstream rules, simplified to cpu and memory).
pub fn qos_class(pod: &Pod) -> &'static str {
    let containers: Vec<_> = pod
        .spec
        .iter()
        .flat_map(|s| s.init_containers.iter().flatten().chain(s.containers.iter()))
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in containers {
        let r = c.resources.as_ref();
        let limits = r.and_then(|r| r.limits.clone()).unwrap_or_default();
        let requests = r.and_then(|r| r.requests.clone()).unwrap_or_default();
        for key in ["cpu", "memory"] {
            let (l, q) = (limits.get(key), requests.get(key));
            any |= l.is_some() || q.is_some();
            match (l, q) {
                (Some(l), Some(q)) if l.0 == q.0 => {}
                (Some(_), None) => {}
                _ => guaranteed = false,
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// Computes the pod status. Conditions come in upstream's order:
/// PodReadyToStartContainers, Initialized, Ready, ContainersReady, PodScheduled.
pub fn compute_status(pod: &Pod, obs: &Observation, st: &PodState, cx: &StatusContext<'_>, prev: Option<&PodStatus>) -> PodStatus {
    let now = obs.now;
    let terminating = obs.pod.deletion.is_some();
    let live = obs.containers.iter().any(|c| matches!(c.state, RunState::Running | RunState::Created | RunState::Unknown));
    let mut phase = pod_phase(obs, st);
    if terminating && !live && !phase.is_terminal() {
        let all_ok = obs.pod.containers.iter().all(|c| obs.latest(&c.name).is_some_and(|l| l.exit_code == 0));
        phase = if all_ok && !obs.pod.containers.is_empty() { Phase::Succeeded } else { Phase::Failed };
    }
    let init_complete = |c: &ContainerView| {
        if c.sidecar {
            sidecar_done(obs, c)
        } else {
            obs.latest(&c.name).is_some_and(|l| l.state == RunState::Exited && l.exit_code == 0)
        }
    };
    let init_done = obs.pod.init_containers.iter().all(init_complete) || obs.pod.containers.iter().any(|c| obs.latest(&c.name).is_some());
    let regular_default = if init_done { "ContainerCreating" } else { "PodInitializing" };
    let init_statuses: Vec<ContainerStatus> = obs
        .pod
        .init_containers
        .iter()
        .map(|c| container_status(c, obs, st, cx, true, "PodInitializing"))
        .collect();
    let mut statuses: Vec<ContainerStatus> = obs
        .pod
        .containers
        .iter()
        .map(|c| container_status(c, obs, st, cx, false, regular_default))
        .collect();
    statuses.sort_by(|a, b| a.name.cmp(&b.name));

    let sandbox_ready = obs.sandbox.as_ref().is_some_and(|s| s.ready);
    let incomplete: Vec<&str> = obs.pod.init_containers.iter().filter(|c| !init_complete(c)).map(|c| c.name.as_str()).collect();
    // Sidecars count for readiness like regular containers (upstream).
    let sidecars = obs.pod.init_containers.iter().filter(|c| c.sidecar);
    let unready: Vec<&str> = sidecars
        .chain(obs.pod.containers.iter())
        .filter(|c| !statuses.iter().chain(init_statuses.iter()).any(|s| s.name == c.name && s.ready))
        .map(|c| c.name.as_str())
        .collect();
    let list = |v: &[&str]| format!("[{}]", v.join(" "));
    let initialized = if init_done {
        condition("Initialized", true, None, None, prev, now)
    } else {
        condition(
            "Initialized",
            false,
            Some("ContainersNotInitialized".into()),
            Some(format!("containers with incomplete status: {}", list(&incomplete))),
            prev,
            now,
        )
    };
    let ready_cond = |kind: &str| {
        if phase == Phase::Succeeded {
            condition(kind, false, Some("PodCompleted".into()), None, prev, now)
        } else if unready.is_empty() {
            condition(kind, true, None, None, prev, now)
        } else {
            condition(
                kind,
                false,
                Some("ContainersNotReady".into()),
                Some(format!("containers with unready status: {}", list(&unready))),
                prev,
                now,
            )
        }
    };
    let containers_ready = ready_cond("ContainersReady");
    let mut ready = ready_cond("Ready");
    if containers_ready.status == "True"
        && let Some(message) = unready_gates(pod)
    {
        ready = condition("Ready", false, Some("ReadinessGatesNotReady".into()), Some(message), prev, now);
    }
    let conditions = vec![
        condition("PodReadyToStartContainers", sandbox_ready, None, None, prev, now),
        initialized,
        ready,
        containers_ready,
        condition("PodScheduled", true, None, None, prev, now),
    ];

    let pod_ip = obs
        .sandbox
        .as_ref()
        .filter(|s| s.ready)
        .and_then(|s| s.ip.clone())
        .or_else(|| prev.and_then(|p| p.pod_ip.clone()))
        .or_else(|| {
            let host_network = pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false);
            host_network.then(|| cx.host_ip.map(str::to_string)).flatten()
        });
    let terminal = st.terminal.as_ref();
    PodStatus {
        phase: Some(phase.as_str().into()),
        conditions: Some(conditions),
        host_ip: cx.host_ip.map(str::to_string),
        host_ips: cx.host_ip.map(|ip| vec![HostIP { ip: ip.to_string() }]),
        pod_ip: pod_ip.clone(),
        pod_ips: pod_ip.map(|ip| vec![PodIP { ip }]),
        start_time: st.start_time.map(time),
        container_statuses: Some(statuses),
        init_container_statuses: (!init_statuses.is_empty()).then_some(init_statuses),
        qos_class: Some(qos_class(pod).into()),
        reason: terminal.and_then(|t| t.reason.clone()),
        message: terminal.and_then(|t| t.message.clone()),
        ..Default::default()
    }
}

/// Top-level status fields the agent owns: when absent they are cleared (null) in the patch,
/// so the server drops what an earlier status set (a strategic merge keeps absent fields).
const OWNED_FIELDS: &[&str] = &[
    "phase",
    "reason",
    "message",
    "hostIP",
    "hostIPs",
    "podIP",
    "podIPs",
    "startTime",
    "qosClass",
    "initContainerStatuses",
    "containerStatuses",
];

/// Fields of a condition the agent owns (a True condition carries no reason/message).
const OWNED_CONDITION_FIELDS: &[&str] = &["reason", "message"];

/// Lists the server merges by key (`ip`) that the agent writes whole.
const REPLACED_LISTS: &[&str] = &["podIPs", "hostIPs"];

/// The strategic merge patch for pods/status: uid precondition, `$setElementOrder/conditions`
/// and the full status. Absent owned fields are written as null (upstream's two-way patch
/// deletes them too); containerStatuses are replaced whole by the server; podIPs/hostIPs carry
/// a `$patch: replace` element so a changed address replaces the old one instead of joining it.
pub fn status_patch(uid: &str, status: &PodStatus) -> serde_json::Value {
    use serde_json::Value;
    let mut s = serde_json::to_value(status).unwrap_or_default();
    let order: Vec<Value> = status
        .conditions
        .iter()
        .flatten()
        .map(|c| serde_json::json!({ "type": c.type_ }))
        .collect();
    if let Some(obj) = s.as_object_mut() {
        for field in OWNED_FIELDS {
            obj.entry(*field).or_insert(Value::Null);
        }
        if let Some(Value::Array(conds)) = obj.get_mut("conditions") {
            for c in conds.iter_mut().filter_map(Value::as_object_mut) {
                for field in OWNED_CONDITION_FIELDS {
                    c.entry(*field).or_insert(Value::Null);
                }
            }
        }
        for list in REPLACED_LISTS {
            if let Some(Value::Array(items)) = obj.get_mut(*list) {
                items.push(serde_json::json!({ "$patch": "replace" }));
            }
        }
        obj.insert("$setElementOrder/conditions".into(), Value::Array(order));
    }
    serde_json::json!({ "metadata": { "uid": uid }, "status": s })
}

#[cfg(test)]
mod tests;
