//! Reads a pod's sandboxes and containers from the runtime (by the io.kubernetes.pod.uid label)
//! into the worker's observation types; this is also how a restarted agent adopts them.

use std::collections::HashMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;

use super::model::{ContainerObs, ContainerView, Deletion, Outcome, PodView, RestartPolicy, RunState, SandboxObs};
use crate::cri::{Result, Runtime, api, keys};

fn ts(ns: i64) -> Option<Timestamp> {
    (ns > 0).then(|| Timestamp::from_nanosecond(i128::from(ns)).ok()).flatten()
}

fn uid_filter(uid: &str) -> HashMap<String, String> {
    HashMap::from([(keys::POD_UID.to_string(), uid.to_string())])
}

/// Maps a CRI container status to the worker's view.
pub fn container_obs(s: &api::ContainerStatus) -> ContainerObs {
    let name = s
        .labels
        .get(keys::CONTAINER_NAME)
        .cloned()
        .or_else(|| s.metadata.as_ref().map(|m| m.name.clone()))
        .unwrap_or_default();
    let restart_count = s
        .annotations
        .get(keys::RESTART_COUNT)
        .and_then(|v| v.parse().ok())
        .or_else(|| s.metadata.as_ref().map(|m| m.attempt))
        .unwrap_or(0);
    let state = match api::ContainerState::try_from(s.state) {
        Ok(api::ContainerState::ContainerCreated) => RunState::Created,
        Ok(api::ContainerState::ContainerRunning) => RunState::Running,
        Ok(api::ContainerState::ContainerExited) => RunState::Exited,
        _ => RunState::Unknown,
    };
    ContainerObs {
        id: s.id.clone(),
        name,
        restart_count,
        state,
        exit_code: s.exit_code,
        reason: s.reason.clone(),
        message: s.message.clone(),
        created_at: ts(s.created_at).unwrap_or(Timestamp::UNIX_EPOCH),
        started_at: ts(s.started_at),
        finished_at: ts(s.finished_at),
        image: s.image.as_ref().map(|i| i.image.clone()).unwrap_or_default(),
        image_ref: s.image_ref.clone(),
    }
}

/// Everything the runtime has for pod `uid`.
#[derive(Clone, Debug, Default)]
pub struct RuntimePod {
    pub sandbox: Option<SandboxObs>,
    pub all_sandboxes: Vec<String>,
    pub containers: Vec<ContainerObs>,
    /// Sandbox and container ids with their CRI states, as the PLEG's relist records them.
    pub fingerprint: super::pleg::Fingerprint,
}

impl RuntimePod {
    /// Adds a container the runtime reported, to the observation and the fingerprint.
    fn push_container(&mut self, s: &api::ContainerStatus) {
        self.fingerprint.push((s.id.clone(), 100 + s.state));
        self.containers.push(container_obs(s));
    }
}

/// Lists the pod's sandboxes (the newest is the current one) and containers; the two lists,
/// and then the statuses, are read concurrently.
pub async fn observe_runtime<R: Runtime>(rt: &R, uid: &str) -> Result<RuntimePod> {
    let (sandboxes, containers) = tokio::try_join!(rt.list_pod_sandboxes(uid_filter(uid)), rt.list_containers(uid_filter(uid)))?;
    let mut sandboxes = sandboxes;
    sandboxes.sort_by_key(|s| s.created_at);
    let mut out = RuntimePod {
        all_sandboxes: sandboxes.iter().map(|s| s.id.clone()).collect(),
        fingerprint: sandboxes.iter().map(|s| (s.id.clone(), s.state)).collect(),
        ..Default::default()
    };
    let sandbox_ip = async {
        let Some(latest) = sandboxes.last() else { return Ok(None) };
        let ready = latest.state == api::PodSandboxState::SandboxReady as i32;
        if !ready {
            return Ok(None);
        }
        match rt.pod_sandbox_status(&latest.id).await {
            Ok(st) => Ok(st.network.map(|n| n.ip).filter(|ip| !ip.is_empty())),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    };
    let statuses = futures::future::join_all(containers.iter().map(|c| rt.container_status(&c.id)));
    let (ip, statuses) = tokio::join!(sandbox_ip, statuses);
    if let Some(latest) = sandboxes.last() {
        out.sandbox = Some(SandboxObs {
            id: latest.id.clone(),
            ready: latest.state == api::PodSandboxState::SandboxReady as i32,
            ip: ip?,
            attempt: latest.metadata.as_ref().map(|m| m.attempt).unwrap_or(0),
        });
    }
    for s in statuses {
        match s {
            Ok(s) => out.push_container(&s),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    out.fingerprint.sort();
    Ok(out)
}

/// The observation after the worker's own start actions, without relisting: `prev` plus the
/// runtime's status of the sandbox and containers those actions created (upstream's SyncPod
/// likewise goes on from the sandbox it just created). `None` when anything else happened (a
/// failure, a removal, a kill): then the worker observes the whole pod again.
pub async fn after_own_starts<R: Runtime>(rt: &R, mut prev: RuntimePod, outcomes: &[Outcome]) -> Result<Option<RuntimePod>> {
    if outcomes.is_empty() {
        return Ok(None);
    }
    for o in outcomes {
        match o {
            Outcome::SandboxCreated { id } => {
                let st = match rt.pod_sandbox_status(id).await {
                    Ok(st) => st,
                    Err(e) if e.is_not_found() => return Ok(None),
                    Err(e) => return Err(e),
                };
                let ready = st.state == api::PodSandboxState::SandboxReady as i32;
                prev.all_sandboxes.push(id.clone());
                prev.fingerprint.push((id.clone(), st.state));
                prev.sandbox = Some(SandboxObs {
                    id: id.clone(),
                    ready,
                    ip: st.network.map(|n| n.ip).filter(|ip| !ip.is_empty() && ready),
                    attempt: st.metadata.map(|m| m.attempt).unwrap_or(0),
                });
            }
            Outcome::Started { id, .. } => match rt.container_status(id).await {
                Ok(s) => prev.push_container(&s),
                Err(e) if e.is_not_found() => return Ok(None),
                Err(e) => return Err(e),
            },
            _ => return Ok(None),
        }
    }
    prev.fingerprint.sort();
    Ok(Some(prev))
}

fn container_view(c: &k8s_openapi::api::core::v1::Container) -> ContainerView {
    let grace = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        p.as_ref()
            .and_then(|p| p.termination_grace_period_seconds)
            .map(|s| std::time::Duration::from_secs(s.max(0) as u64))
    };
    ContainerView {
        name: c.name.clone(),
        image: c.image.clone().unwrap_or_default(),
        liveness_grace: grace(&c.liveness_probe),
        startup_grace: grace(&c.startup_probe),
        sidecar: false,
    }
}

fn init_container_view(c: &k8s_openapi::api::core::v1::Container) -> ContainerView {
    ContainerView { sidecar: c.restart_policy.as_deref() == Some("Always"), ..container_view(c) }
}

/// The worker's view of a pod; `gone` when the pod no longer exists in the API.
pub fn pod_view(pod: &Pod, gone: bool) -> PodView {
    let spec = pod.spec.clone().unwrap_or_default();
    let grace = std::time::Duration::from_secs(spec.termination_grace_period_seconds.unwrap_or(30).max(0) as u64);
    let deletion = if gone {
        Some(Deletion { grace: pod_deletion_grace(pod).unwrap_or(grace), gone: true })
    } else if pod.metadata.deletion_timestamp.is_some() {
        Some(Deletion { grace: pod_deletion_grace(pod).unwrap_or(grace), gone: false })
    } else {
        None
    };
    PodView {
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        namespace: pod.metadata.namespace.clone().unwrap_or_else(|| "default".into()),
        init_containers: spec.init_containers.iter().flatten().map(init_container_view).collect(),
        containers: spec.containers.iter().map(container_view).collect(),
        restart_policy: RestartPolicy::parse(spec.restart_policy.as_deref()),
        termination_grace: grace,
        active_deadline: spec.active_deadline_seconds.map(|s| std::time::Duration::from_secs(s.max(0) as u64)),
        deletion,
        start_time: pod.status.as_ref().and_then(|s| s.start_time.as_ref()).map(|t| t.0),
        api_terminal: pod.status.as_ref().and_then(|s| match s.phase.as_deref() {
            Some("Succeeded") => Some((true, s.reason.clone(), s.message.clone())),
            Some("Failed") => Some((false, s.reason.clone(), s.message.clone())),
            _ => None,
        }),
    }
}

fn pod_deletion_grace(pod: &Pod) -> Option<std::time::Duration> {
    pod.metadata
        .deletion_grace_period_seconds
        .map(|s| std::time::Duration::from_secs(s.max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adopts_restart_count_from_annotation() {
        let s = api::ContainerStatus {
            id: "abc".into(),
            state: api::ContainerState::ContainerRunning as i32,
            started_at: 1_700_000_000_000_000_000,
            labels: HashMap::from([(keys::CONTAINER_NAME.to_string(), "web".to_string())]),
            annotations: HashMap::from([(keys::RESTART_COUNT.to_string(), "4".to_string())]),
            ..Default::default()
        };
        let o = container_obs(&s);
        assert_eq!((o.name.as_str(), o.restart_count, o.state), ("web", 4, RunState::Running));
        assert_eq!(o.started_at, Some(Timestamp::from_second(1_700_000_000).unwrap()));
        assert_eq!(o.finished_at, None);
    }

    #[test]
    fn view_of_deleted_pod() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "n", "uid": "u", "deletionTimestamp": "2026-01-01T00:00:00Z",
                         "deletionGracePeriodSeconds": 5},
            "spec": {"containers": [{"name": "c", "image": "i",
                "livenessProbe": {"exec": {"command": ["true"]}, "terminationGracePeriodSeconds": 3}}],
                "restartPolicy": "OnFailure"}
        }))
        .unwrap();
        let v = pod_view(&pod, false);
        assert_eq!(v.deletion, Some(Deletion { grace: std::time::Duration::from_secs(5), gone: false }));
        assert_eq!(v.restart_policy, RestartPolicy::OnFailure);
        assert_eq!(v.containers[0].liveness_grace, Some(std::time::Duration::from_secs(3)));
        assert_eq!(v.termination_grace, std::time::Duration::from_secs(30));
    }
}
