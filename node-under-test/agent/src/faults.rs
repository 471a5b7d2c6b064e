//! Deliberate defects, to show that the conformance suites catch a broken node agent.
//!
//! Debug builds read `NODEKIT_AGENT_FAULTS` (comma-separated fault names) once;
//! release builds never read it and every fault is off. Each fault breaks one behaviour an
//! area asserts; `ci/fault-check` runs every area against its fault and expects failures.

/// The variable debug builds read.
pub const ENV: &str = "NODEKIT_AGENT_FAULTS";

/// One deliberate defect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Registration: report the host's size instead of the configured node size.
    HostSize,
    /// Heartbeats: never renew the Lease after creating it.
    NoLeaseRenewal,
    /// Pod lifecycle: never restart an exited container.
    NeverRestart,
    /// Pod lifecycle: containers are Ready as soon as they run (readiness probes ignored).
    ReadyWhenRunning,
    /// Probes: a liveness kill uses the probe's grace period without upstream's 2 s minimum.
    NoMinimumGrace,
    /// Eviction: evicted pods get their own termination grace period.
    EvictionPodGrace,
    /// Static pods: no mirror pods in the API.
    NoMirrorPods,
    /// Kubelet API: callers without credentials are served (anonymous, and never authorized).
    KubeletAnonymous,
    /// Kubelet API: a port-forward reaches the runtime without its ports (neither in the CRI
    /// request nor in the query).
    PortForwardNoPorts,
    /// Pods: after a relist (a reconnect), pods the API no longer has keep running.
    KeepStalePods,
    /// Container logs: never rotated (containerLogMaxSize ignored).
    NoLogRotation,
    /// Kubelet API: a followed log stays on the file it opened when the log is rotated.
    FollowIgnoresRotation,
    /// Volumes: projected ServiceAccount tokens are requested without binding them to the pod.
    UnboundToken,
    /// Volumes: written only when a container starts, never again while the pod runs.
    NoVolumeRefresh,
    /// RuntimeClass: every sandbox runs with the runtime's default handler.
    IgnoreRuntimeClass,
    /// /etc/hosts: no managed file; containers keep the runtime's (hostAliases lost).
    UnmanagedEtcHosts,
    /// Image pulls: the pod's image pull secrets are never used (every pull is anonymous).
    IgnorePullSecrets,
    /// Image pulls: the node's docker config files are never read.
    IgnoreNodeCredentials,
}

impl fault_switch::Fault for Fault {
    const ALL: &'static [Fault] = &[
        Fault::HostSize,
        Fault::NoLeaseRenewal,
        Fault::NeverRestart,
        Fault::ReadyWhenRunning,
        Fault::NoMinimumGrace,
        Fault::EvictionPodGrace,
        Fault::NoMirrorPods,
        Fault::KubeletAnonymous,
        Fault::PortForwardNoPorts,
        Fault::KeepStalePods,
        Fault::NoLogRotation,
        Fault::FollowIgnoresRotation,
        Fault::UnboundToken,
        Fault::NoVolumeRefresh,
        Fault::IgnoreRuntimeClass,
        Fault::UnmanagedEtcHosts,
        Fault::IgnorePullSecrets,
        Fault::IgnoreNodeCredentials,
    ];

    fn name(self) -> &'static str {
        match self {
            Fault::HostSize => "host-size",
            Fault::NoLeaseRenewal => "no-lease-renewal",
            Fault::NeverRestart => "never-restart",
            Fault::ReadyWhenRunning => "ready-when-running",
            Fault::NoMinimumGrace => "no-minimum-grace",
            Fault::EvictionPodGrace => "eviction-pod-grace",
            Fault::NoMirrorPods => "no-mirror-pods",
            Fault::KubeletAnonymous => "kubelet-anonymous",
            Fault::PortForwardNoPorts => "port-forward-no-ports",
            Fault::KeepStalePods => "keep-stale-pods",
            Fault::NoLogRotation => "no-log-rotation",
            Fault::FollowIgnoresRotation => "follow-ignores-rotation",
            Fault::UnboundToken => "unbound-token",
            Fault::NoVolumeRefresh => "no-volume-refresh",
            Fault::IgnoreRuntimeClass => "ignore-runtime-class",
            Fault::UnmanagedEtcHosts => "unmanaged-etc-hosts",
            Fault::IgnorePullSecrets => "ignore-pull-secrets",
            Fault::IgnoreNodeCredentials => "ignore-node-credentials",
        }
    }
}

static SWITCH: fault_switch::Switch<Fault> = fault_switch::Switch::new(ENV, "agent");

/// Is `f` switched on (debug builds only)?
pub fn active(f: Fault) -> bool {
    SWITCH.active(f)
}

/// Logs the switched-on faults (call once at start so the log says so up front).
pub fn announce() {
    let _ = SWITCH.active(Fault::HostSize);
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_fault_is_named() {
        assert!(fault_switch::Switch::<super::Fault>::names_round_trip());
    }
}
