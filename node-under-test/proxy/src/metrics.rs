//! Prometheus metrics (text exposition) and the health state behind /healthz
//! (upstream: unhealthy when a queued change has not been synced within 2 × syncPeriod).

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::Mode;
use crate::engine::SyncReport;

/// Upstream buckets: exponential from 1 ms, factor 2, 15 buckets.
fn buckets() -> Vec<f64> {
    (0..15).map(|i| 0.001 * f64::from(1u32 << i)).collect()
}

#[derive(Debug, Clone)]
struct Histogram {
    bounds: Vec<f64>,
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new() -> Histogram {
        let bounds = buckets();
        Histogram { counts: vec![0; bounds.len()], bounds, sum: 0.0, count: 0 }
    }
    fn observe(&mut self, v: f64) {
        for (b, c) in self.bounds.iter().zip(self.counts.iter_mut()) {
            if v <= *b {
                *c += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }
    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (b, c) in self.bounds.iter().zip(self.counts.iter()) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {c}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}", self.sum);
        let _ = writeln!(out, "{name}_count {}", self.count);
    }
}

#[derive(Debug)]
struct Inner {
    all: Histogram,
    full: Histogram,
    partial: Histogram,
    last_success: f64,
    last_queued: f64,
    failures: u64,
    last_error: Option<String>,
    conntrack_failures: u64,
    sizes: crate::engine::RuleSizes,
    services: usize,
    oldest_pending: Option<Instant>,
    last_success_at: Option<Instant>,
}

/// Metrics and health of the proxy, shared between the sync loop and the HTTP server.
#[derive(Debug)]
pub struct Metrics {
    mode: Mode,
    health_timeout: Duration,
    inner: Mutex<Inner>,
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Health as reported by /healthz.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    pub healthy: bool,
    pub last_updated: f64,
    pub current_time: f64,
}

impl Metrics {
    /// `health_timeout` is 2 × syncPeriod upstream.
    pub fn new(mode: Mode, health_timeout: Duration) -> Metrics {
        Metrics {
            mode,
            health_timeout,
            inner: Mutex::new(Inner {
                all: Histogram::new(),
                full: Histogram::new(),
                partial: Histogram::new(),
                last_success: 0.0,
                last_queued: 0.0,
                failures: 0,
                last_error: None,
                conntrack_failures: 0,
                sizes: Default::default(),
                services: 0,
                oldest_pending: None,
                last_success_at: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A change is waiting to be synced.
    pub fn queued(&self) {
        let mut i = self.lock();
        i.last_queued = unix_now();
        if i.oldest_pending.is_none() {
            i.oldest_pending = Some(Instant::now());
        }
    }

    /// A sync succeeded.
    pub fn synced(&self, r: &SyncReport, services: usize) {
        let mut i = self.lock();
        let secs = r.total_time.as_secs_f64();
        i.all.observe(secs);
        if r.full { i.full.observe(secs) } else { i.partial.observe(secs) }
        i.last_success = unix_now();
        i.last_success_at = Some(Instant::now());
        i.oldest_pending = None;
        i.sizes = r.sizes;
        i.services = services;
        i.conntrack_failures += r.conntrack_errors.len() as u64;
        i.last_error = None;
    }

    /// A sync failed; the change stays pending.
    pub fn failed(&self, err: &str) {
        let mut i = self.lock();
        i.failures += 1;
        i.last_error = Some(err.to_string());
        if i.oldest_pending.is_none() {
            i.oldest_pending = Some(Instant::now());
        }
    }

    pub fn health(&self) -> Health {
        let i = self.lock();
        let now = Instant::now();
        let healthy = i.oldest_pending.is_none_or(|t| now.duration_since(t) < self.health_timeout);
        Health { healthy, last_updated: i.last_success, current_time: unix_now() }
    }

    /// Number of failed syncs so far.
    pub fn failures(&self) -> u64 {
        self.lock().failures
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let i = self.lock();
        let mut out = String::new();
        i.all.render(&mut out, "kubeproxy_sync_proxy_rules_duration_seconds", "SyncProxyRules latency in seconds");
        i.full.render(&mut out, "kubeproxy_sync_full_proxy_rules_duration_seconds", "Full SyncProxyRules latency in seconds");
        i.partial.render(&mut out, "kubeproxy_sync_partial_proxy_rules_duration_seconds", "Partial SyncProxyRules latency in seconds");
        let g = |out: &mut String, name: &str, help: &str, kind: &str, v: String| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        g(&mut out, "kubeproxy_sync_proxy_rules_last_timestamp_seconds", "The last time proxy rules were successfully synced", "gauge", format!("{}", i.last_success));
        g(&mut out, "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds", "The last time a sync of proxy rules was queued", "gauge", format!("{}", i.last_queued));
        let fail_name = match self.mode {
            Mode::Nftables => "kubeproxy_sync_proxy_rules_nftables_sync_failures_total",
            Mode::Iptables => "kubeproxy_sync_proxy_rules_iptables_restore_failures_total",
        };
        g(&mut out, fail_name, "Cumulative proxy rules sync failures", "counter", i.failures.to_string());
        g(&mut out, "kubeproxy_sync_proxy_rules_conntrack_cleanup_failures_total", "Failed conntrack cleanups", "counter", i.conntrack_failures.to_string());
        let err = i.last_error.as_deref().unwrap_or("").replace('\\', "\\\\").replace('"', "\\\"").replace('\n', " ");
        let _ = writeln!(
            out,
            "# HELP kubeproxy_sync_proxy_rules_last_error_info The error of the last sync (empty after a success)\n# TYPE kubeproxy_sync_proxy_rules_last_error_info gauge\nkubeproxy_sync_proxy_rules_last_error_info{{error=\"{err}\"}} {}",
            u8::from(i.last_error.is_some())
        );
        g(&mut out, "kubeproxy_sync_proxy_rules_service_ports", "Service ports programmed", "gauge", i.services.to_string());
        match self.mode {
            Mode::Nftables => {
                let n = "kubeproxy_sync_proxy_rules_nftables_objects";
                let _ = writeln!(out, "# HELP {n} Objects in table ip kube-proxy\n# TYPE {n} gauge");
                let s = i.sizes;
                for (k, v) in [("chains", s.chains), ("rules", s.rules), ("elements", s.elements), ("sets", s.sets)] {
                    let _ = writeln!(out, "{n}{{kind=\"{k}\"}} {v}");
                }
            }
            Mode::Iptables => {
                let n = "kubeproxy_sync_proxy_rules_iptables_total";
                let _ = writeln!(out, "# HELP {n} Number of proxy iptables rules programmed\n# TYPE {n} gauge");
                let _ = writeln!(out, "{n}{{table=\"nat\"}} {}\n{n}{{table=\"filter\"}} {}", i.sizes.rules, i.sizes.filter_rules);
                let c = "kubeproxy_sync_proxy_rules_iptables_chains";
                let _ = writeln!(out, "# HELP {c} Number of proxy nat chains\n# TYPE {c} gauge\n{c} {}", i.sizes.chains);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(full: bool, ms: u64) -> SyncReport {
        SyncReport {
            full,
            changed_services: 1,
            script_bytes: 10,
            plan_time: Duration::ZERO,
            apply_time: Duration::ZERO,
            total_time: Duration::from_millis(ms),
            sizes: Default::default(),
            conntrack_errors: vec![],
        }
    }

    #[test]
    fn histogram_and_failures_render() {
        let m = Metrics::new(Mode::Nftables, Duration::from_secs(60));
        m.synced(&report(true, 3), 5);
        m.failed("nft: boom \"x\"");
        let text = m.render();
        assert!(text.contains("kubeproxy_sync_proxy_rules_duration_seconds_bucket{le=\"0.004\"} 1"), "{text}");
        assert!(text.contains("kubeproxy_sync_proxy_rules_duration_seconds_bucket{le=\"0.002\"} 0"));
        assert!(text.contains("kubeproxy_sync_proxy_rules_duration_seconds_count 1"));
        assert!(text.contains("kubeproxy_sync_proxy_rules_nftables_sync_failures_total 1"));
        assert!(text.contains("error=\"nft: boom \\\"x\\\"\"} 1"));
        assert!(text.contains("kubeproxy_sync_proxy_rules_service_ports 5"));
    }

    #[test]
    fn health_turns_bad_when_a_pending_change_is_older_than_the_timeout() {
        let m = Metrics::new(Mode::Iptables, Duration::from_millis(50));
        assert!(m.health().healthy, "healthy before anything is queued");
        m.queued();
        assert!(m.health().healthy, "a fresh pending change is fine");
        let deadline = Instant::now() + Duration::from_secs(5);
        while m.health().healthy {
            assert!(Instant::now() < deadline, "never became unhealthy");
            std::thread::sleep(Duration::from_millis(5));
        }
        m.synced(&report(false, 1), 1);
        assert!(m.health().healthy, "a successful sync clears it");
    }
}
