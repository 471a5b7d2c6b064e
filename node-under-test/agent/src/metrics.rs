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

/// A histogram with fixed second buckets.
#[derive(Debug, Default)]
pub struct Histogram {
    inner: Mutex<(Vec<u64>, f64, u64)>,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let v = d.as_secs_f64();
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.0.is_empty() {
            g.0 = vec![0; BUCKETS.len()];
        }
        for (i, b) in BUCKETS.iter().enumerate() {
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
        for (i, b) in BUCKETS.iter().enumerate() {
            let c = g.0.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {c}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}\n{name}_sum {}\n{name}_count {}", g.2, g.1, g.2);
    }
}

/// All metrics; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Metrics(Arc<MetricsInner>);

#[derive(Debug, Default)]
pub struct MetricsInner {
    pub pod_workers: Gauge,
    pub pod_sync_duration: Histogram,
    pub lease_renewals: Counter,
    pub lease_renew_errors: Counter,
    pub node_status_patches: Counter,
    pub node_status_errors: Counter,
    pub static_pod_manifest_errors: Counter,
    probe_results: Mutex<BTreeMap<(String, String), u64>>,
}

impl std::ops::Deref for Metrics {
    type Target = MetricsInner;
    fn deref(&self) -> &MetricsInner {
        &self.0
    }
}

impl Metrics {
    /// Counts one probe result (`probe_type` liveness/readiness/startup; `result` successful/failed/unknown).
    pub fn probe_result(&self, probe_type: &str, result: &str) {
        let mut m = self.0.probe_results.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry((probe_type.to_string(), result.to_string())).or_default() += 1;
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
        let probes = self.0.probe_results.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(out, "# HELP node_agent_probe_results_total Probe results by type.\n# TYPE node_agent_probe_results_total counter");
        for ((t, r), v) in probes.iter() {
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
        m.probe_result("liveness", "failed");
        let text = m.render();
        assert!(text.contains("node_agent_pod_workers 2\n"));
        assert!(text.contains("node_agent_lease_renew_errors_total 1\n"));
        assert!(text.contains("node_agent_pod_sync_duration_seconds_bucket{le=\"0.025\"} 1\n"));
        assert!(text.contains("node_agent_pod_sync_duration_seconds_bucket{le=\"0.01\"} 0\n"));
        assert!(text.contains("node_agent_pod_sync_duration_seconds_count 1\n"));
        assert!(text.contains("node_agent_probe_results_total{probe_type=\"liveness\",result=\"failed\"} 1\n"));
    }
}
