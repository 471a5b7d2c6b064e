//! `/metrics/probes` and the runtime gauges of `/metrics` (upstream names and help texts:
//! pkg/kubelet/prober/prober_manager.go, pkg/kubelet/metrics/metrics.go).

use jiff::Timestamp;

use super::prom::{Family, render};
use crate::cri::api;
use crate::metrics::ProbeLabels;

/// `prober_probe_total` and `process_start_time_seconds`.
pub fn render_probe_metrics(counts: &[(ProbeLabels, u64)], process_start: Timestamp) -> String {
    let mut probes = Family::new(
        "prober_probe_total",
        "counter",
        "[BETA] Cumulative number of a liveness, readiness or startup probe for a container by result.",
    );
    for (l, v) in counts {
        let labels = vec![
            ("container", l.container.clone()),
            ("namespace", l.namespace.clone()),
            ("pod", l.pod.clone()),
            ("pod_uid", l.pod_uid.clone()),
            ("probe_type", l.probe_type.to_string()),
            ("result", l.result.to_string()),
        ];
        probes.push(labels, *v as f64, None);
    }
    let mut start = Family::new("process_start_time_seconds", "gauge", "[ALPHA] Start time of the process since unix epoch in seconds.");
    start.push(vec![], process_start.as_nanosecond() as f64 / 1e9, None);
    render(vec![probes, start])
}

/// The container states upstream's PLEG counts (`kubelet_running_containers{container_state}`).
fn state_name(state: i32) -> &'static str {
    match api::ContainerState::try_from(state) {
        Ok(api::ContainerState::ContainerCreated) => "created",
        Ok(api::ContainerState::ContainerRunning) => "running",
        Ok(api::ContainerState::ContainerExited) => "exited",
        _ => "unknown",
    }
}

/// `kubelet_running_pods` (ready sandboxes) and `kubelet_running_containers` by state.
pub fn render_runtime_gauges(sandboxes: &[api::PodSandbox], containers: &[api::Container]) -> String {
    let mut pods = Family::new("kubelet_running_pods", "gauge", "[ALPHA] Number of pods that have a running pod sandbox");
    let ready = sandboxes.iter().filter(|s| s.state == api::PodSandboxState::SandboxReady as i32).count();
    pods.push(vec![], ready as f64, None);
    let mut by_state = Family::new("kubelet_running_containers", "gauge", "[ALPHA] Number of containers currently running");
    for name in ["created", "exited", "running", "unknown"] {
        let n = containers.iter().filter(|c| state_name(c.state) == name).count();
        by_state.push(vec![("container_state", name.to_string())], n as f64, None);
    }
    render(vec![pods, by_state])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_counters_with_upstream_labels() {
        let l = ProbeLabels {
            probe_type: "Readiness",
            result: "successful",
            container: "c".into(),
            pod: "p".into(),
            namespace: "ns".into(),
            pod_uid: "u".into(),
        };
        let text = render_probe_metrics(&[(l, 3)], Timestamp::from_second(1_700_000_000).unwrap());
        assert!(text.contains("# TYPE prober_probe_total counter\n"), "{text}");
        assert!(
            text.contains("prober_probe_total{container=\"c\",namespace=\"ns\",pod=\"p\",pod_uid=\"u\",probe_type=\"Readiness\",result=\"successful\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("process_start_time_seconds 1.7e+09\n"), "{text}");
    }

    #[test]
    fn running_pods_and_containers_by_state() {
        let sb = |state: api::PodSandboxState| api::PodSandbox { state: state as i32, ..Default::default() };
        let c = |state: api::ContainerState| api::Container { state: state as i32, ..Default::default() };
        let text = render_runtime_gauges(
            &[sb(api::PodSandboxState::SandboxReady), sb(api::PodSandboxState::SandboxNotready)],
            &[c(api::ContainerState::ContainerRunning), c(api::ContainerState::ContainerRunning), c(api::ContainerState::ContainerExited)],
        );
        assert!(text.contains("kubelet_running_pods 1\n"), "{text}");
        assert!(text.contains("kubelet_running_containers{container_state=\"running\"} 2\n"), "{text}");
        assert!(text.contains("kubelet_running_containers{container_state=\"exited\"} 1\n"), "{text}");
        assert!(text.contains("kubelet_running_containers{container_state=\"created\"} 0\n"), "{text}");
    }
}
