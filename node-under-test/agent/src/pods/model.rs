//! The pure inputs of the pod worker: a view of the pod spec, what the runtime reports, probe
//! results and the outcomes of the previous actions.

use std::collections::HashMap;
use std::time::Duration;

use jiff::Timestamp;

/// spec.restartPolicy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    pub fn parse(s: Option<&str>) -> RestartPolicy {
        match s {
            Some("OnFailure") => RestartPolicy::OnFailure,
            Some("Never") => RestartPolicy::Never,
            _ => RestartPolicy::Always,
        }
    }

    /// Whether a container that exited with `exit_code` is restarted.
    pub fn restarts(self, exit_code: i32) -> bool {
        match self {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => exit_code != 0,
            RestartPolicy::Never => false,
        }
    }
}

/// The part of a container spec the state machine needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerView {
    pub name: String,
    pub image: String,
    /// Probe-level terminationGracePeriodSeconds of the liveness / startup probes.
    pub liveness_grace: Option<Duration>,
    pub startup_grace: Option<Duration>,
    /// A native sidecar: an init container with `restartPolicy: Always`, started in order with
    /// the init containers, kept running (restarted whatever the pod's policy) and stopped
    /// after the regular containers.
    pub sidecar: bool,
}

/// Deletion requested in the API (deletionTimestamp set), or the pod is gone from the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deletion {
    pub grace: Duration,
    /// The pod no longer exists in the API (nothing to delete there).
    pub gone: bool,
}

/// The pod as the worker sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodView {
    pub uid: String,
    pub name: String,
    pub namespace: String,
    pub init_containers: Vec<ContainerView>,
    pub containers: Vec<ContainerView>,
    pub restart_policy: RestartPolicy,
    pub termination_grace: Duration,
    pub active_deadline: Option<Duration>,
    pub deletion: Option<Deletion>,
    /// status.startTime already in the API, if any.
    pub start_time: Option<Timestamp>,
    /// A terminal phase already in the API (Succeeded/Failed with reason and message): such a
    /// pod is never started again, whatever the runtime still has.
    pub api_terminal: Option<(bool, Option<String>, Option<String>)>,
}

#[cfg(test)]
impl PodView {
    /// Pod `ns/p` (uid `u1`) with the named init containers and containers (image `workload`),
    /// a 30 s grace period and nothing in the API yet: the unit tests' starting point.
    pub fn example(init: &[&str], containers: &[&str], restart_policy: RestartPolicy) -> PodView {
        let cv = |name: &&str| ContainerView { name: name.to_string(), image: "workload".into(), liveness_grace: None, startup_grace: None, sidecar: false };
        PodView {
            uid: "u1".into(),
            name: "p".into(),
            namespace: "ns".into(),
            init_containers: init.iter().map(cv).collect(),
            containers: containers.iter().map(cv).collect(),
            restart_policy,
            termination_grace: Duration::from_secs(30),
            active_deadline: None,
            deletion: None,
            start_time: None,
            api_terminal: None,
        }
    }
}

/// Runtime state of one container instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    Created,
    Running,
    Exited,
    Unknown,
}

/// One container instance as reported by the runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerObs {
    pub id: String,
    pub name: String,
    pub restart_count: u32,
    pub state: RunState,
    pub exit_code: i32,
    pub reason: String,
    pub message: String,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub image: String,
    pub image_ref: String,
}

/// The latest sandbox of the pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxObs {
    pub id: String,
    pub ready: bool,
    pub ip: Option<String>,
    pub attempt: u32,
}

/// Probe results for one running container instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeView {
    pub ready: bool,
    pub started: bool,
    pub liveness_failed: bool,
    pub startup_failed: bool,
}

/// What the executor reports back about actions of the previous step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    SandboxFailed { message: String },
    /// The new sandbox's id.
    SandboxCreated { id: String },
    ImagePullFailed { container: String, message: String },
    CreateFailed { container: String, reason: String, message: String },
    /// `id`: the started instance.
    Started { container: String, id: String },
    /// A kill of this container instance finished (the container may still run if it failed).
    Killed { id: String },
}

/// One observation fed to [`super::worker::step`].
#[derive(Clone, Debug)]
pub struct Observation {
    pub now: Timestamp,
    pub pod: PodView,
    pub sandbox: Option<SandboxObs>,
    /// Every container instance of the pod (any order).
    pub containers: Vec<ContainerObs>,
    /// Probe results by container id.
    pub probes: HashMap<String, ProbeView>,
    pub outcomes: Vec<Outcome>,
}

impl Observation {
    /// Instances of container `name`, oldest first.
    pub fn instances(&self, name: &str) -> Vec<&ContainerObs> {
        let mut v: Vec<_> = self.containers.iter().filter(|c| c.name == name).collect();
        v.sort_by_key(|c| (c.restart_count, c.created_at));
        v
    }

    /// The newest instance of container `name`.
    pub fn latest(&self, name: &str) -> Option<&ContainerObs> {
        self.instances(name).into_iter().last()
    }

    /// Probe results for an instance; containers without probes are ready and started.
    pub fn probe(&self, id: &str) -> ProbeView {
        self.probes.get(id).copied().unwrap_or(ProbeView {
            ready: true,
            started: true,
            liveness_failed: false,
            startup_failed: false,
        })
    }
}
