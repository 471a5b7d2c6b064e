//! Prometheus metrics of the agent and their text exposition.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A gauge.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn add(&self, d: i64) {
        self.0.fetch_add(d, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

const BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Upstream's podStartupDurationBuckets (pkg/kubelet/metrics/metrics.go).
pub const POD_START_BUCKETS: [f64; 25] =
    [0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 20.0, 30.0, 45.0, 60.0, 120.0, 180.0, 240.0, 300.0, 360.0, 480.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0, 3600.0];

/// A histogram with fixed second buckets.
#[derive(Debug)]
pub struct Histogram {
    buckets: &'static [f64],
    inner: Mutex<(Vec<u64>, f64, u64)>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::with_buckets(&BUCKETS)
    }
}

impl Histogram {
    /// A histogram with these upper bounds (seconds, ascending).
    pub fn with_buckets(buckets: &'static [f64]) -> Histogram {
        Histogram { buckets, inner: Mutex::new((Vec::new(), 0.0, 0)) }
    }

    pub fn observe(&self, d: Duration) {
        let v = d.as_secs_f64();
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.0.is_empty() {
            g.0 = vec![0; self.buckets.len()];
        }
        for (i, b) in self.buckets.iter().enumerate() {
            if v <= *b {
                g.0[i] += 1;
            }
        }
        g.1 += v;
        g.2 += 1;
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (i, b) in self.buckets.iter().enumerate() {
            let c = g.0.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {c}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}\n{name}_sum {}\n{name}_count {}", g.2, g.1, g.2);
    }
}

/// All metrics; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Metrics(Arc<MetricsInner>);

/// The labels of one upstream `prober_probe_total` counter.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProbeLabels {
    /// `Liveness`, `Readiness` or `Startup`.
    pub probe_type: &'static str,
    /// `successful`, `failed` or `unknown`.
    pub result: &'static str,
    pub container: String,
    pub pod: String,
    pub namespace: String,
    pub pod_uid: String,
}

#[derive(Debug)]
pub struct MetricsInner {
    pub pod_workers: Gauge,
    pub pod_sync_duration: Histogram,
    /// From a pod worker's start to the pod first running (kubelet_pod_start_duration_seconds).
    pub pod_start_duration: Histogram,
    pub lease_renewals: Counter,
    pub lease_renew_errors: Counter,
    pub node_status_patches: Counter,
    pub node_status_errors: Counter,
    pub static_pod_manifest_errors: Counter,
    probe_results: Mutex<BTreeMap<ProbeLabels, u64>>,
}

impl Default for MetricsInner {
    fn default() -> Self {
        MetricsInner {
            pod_workers: Gauge::default(),
            pod_sync_duration: Histogram::default(),
            pod_start_duration: Histogram::with_buckets(&POD_START_BUCKETS),
            lease_renewals: Counter::default(),
            lease_renew_errors: Counter::default(),
            node_status_patches: Counter::default(),
            node_status_errors: Counter::default(),
            static_pod_manifest_errors: Counter::default(),
            probe_results: Mutex::default(),
        }
    }
}

impl std::ops::Deref for Metrics {
    type Target = MetricsInner;
    fn deref(&self) -> &MetricsInner {
        &self.0
    }
}

impl Metrics {
    /// Counts one probe result.
    pub fn probe_result(&self, labels: ProbeLabels) {
        let mut m = self.0.probe_results.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry(labels).or_default() += 1;
    }

    /// Every probe counter.
    pub fn probe_counts(&self) -> Vec<(ProbeLabels, u64)> {
        let m = self.0.probe_results.lock().unwrap_or_else(|p| p.into_inner());
        m.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let simple = |out: &mut String, name: &str, kind: &str, help: &str, v: String| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        simple(&mut out, "node_agent_pod_workers", "gauge", "Number of running pod workers.", self.pod_workers.get().to_string());
        simple(&mut out, "node_agent_lease_renewals_total", "counter", "Successful node lease renewals.", self.lease_renewals.get().to_string());
        simple(&mut out, "node_agent_lease_renew_errors_total", "counter", "Failed node lease renewals.", self.lease_renew_errors.get().to_string());
        simple(&mut out, "node_agent_node_status_patches_total", "counter", "Node status patches sent.", self.node_status_patches.get().to_string());
        simple(&mut out, "node_agent_node_status_errors_total", "counter", "Failed node status updates.", self.node_status_errors.get().to_string());
        simple(&mut out, "node_agent_static_pod_manifest_errors_total", "counter", "Static pod manifests that could not be used.", self.static_pod_manifest_errors.get().to_string());
        self.pod_sync_duration.render("node_agent_pod_sync_duration_seconds", "Duration of one pod worker sync.", &mut out);
        self.pod_start_duration.render(
            "kubelet_pod_start_duration_seconds",
            "[ALPHA] Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run",
            &mut out,
        );
        let mut by_type: BTreeMap<(String, &str), u64> = BTreeMap::new();
        for (l, v) in self.probe_counts() {
            *by_type.entry((l.probe_type.to_lowercase(), l.result)).or_default() += v;
        }
        let _ = writeln!(out, "# HELP node_agent_probe_results_total Probe results by type.\n# TYPE node_agent_probe_results_total counter");
        for ((t, r), v) in by_type {
            let _ = writeln!(out, "node_agent_probe_results_total{{probe_type=\"{t}\",result=\"{r}\"}} {v}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.pod_workers.add(2);
        m.lease_renew_errors.inc();
        m.pod_sync_duration.observe(Duration::from_millis(20));
        let probe = |container: &str| ProbeLabels {
            probe_type: "Liveness",
            result: "failed",
            container: container.into(),
            pod: "p".into(),
            namespace: "ns".into(),
            pod_uid: "u".into(),
        };
        m.probe_result(probe("a"));
        m.probe_result(probe("b"));
        m.probe_result(probe("b"));
        m.pod_start_duration.observe(Duration::from_millis(1500));
        let text = m.render();
        assert!(text.contains("node_agent_pod_workers 2\n"));
        assert!(text.contains("node_agent_lease_renew_errors_total 1\n"));
        assert!(text.contains("node_agent_pod_sync_duration_seconds_bucket{le=\"0.025\"} 1\n"));
        assert!(text.contains("node_agent_pod_sync_duration_seconds_bucket{le=\"0.01\"} 0\n"));
        assert!(text.contains("node_agent_pod_sync_duration_seconds_count 1\n"));
        assert!(text.contains("node_agent_probe_results_total{probe_type=\"liveness\",result=\"failed\"} 3\n"), "{text}");
        assert_eq!(m.probe_counts().iter().map(|(l, v)| (l.container.as_str(), *v)).collect::<Vec<_>>(), [("a", 1), ("b", 2)]);
        assert!(text.contains("kubelet_pod_start_duration_seconds_bucket{le=\"1\"} 0\n"), "{text}");
        assert!(text.contains("kubelet_pod_start_duration_seconds_bucket{le=\"2\"} 1\n"), "{text}");
        assert!(text.contains("kubelet_pod_start_duration_seconds_bucket{le=\"3600\"} 1\n"), "{text}");
        assert!(text.contains("# TYPE kubelet_pod_start_duration_seconds histogram\n"), "{text}");
    }
}
