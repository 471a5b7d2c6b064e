//! `/metrics/resource` from a summary (names, help texts and stability as upstream's
//! pkg/kubelet/metrics/collectors/resource_metrics.go).

use jiff::Timestamp;

use super::prom::{Family, render};
use super::summary::{CpuStats, MemoryStats, Summary};

fn ms(t: Timestamp) -> Option<i64> {
    Some(t.as_millisecond())
}

fn cpu_seconds(c: &Option<CpuStats>) -> Option<(f64, Option<i64>)> {
    let c = c.as_ref()?;
    Some((c.usage_core_nano_seconds? as f64 / 1e9, ms(c.time.0)))
}

fn working_set(m: &Option<MemoryStats>) -> Option<(f64, Option<i64>)> {
    let m = m.as_ref()?;
    Some((m.working_set_bytes? as f64, ms(m.time.0)))
}

fn scrape_errors(errors: f64) -> Vec<Family> {
    let mut a = Family::new("scrape_error", "gauge", "[ALPHA] 1 if there was an error while getting container metrics, 0 otherwise");
    a.push(vec![], errors, None);
    let mut b = Family::new("resource_scrape_error", "gauge", "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise");
    b.push(vec![], errors, None);
    vec![a, b]
}

/// The exposition for `summary`; `None` (the stats could not be read) gives only the scrape
/// errors set to 1.
pub fn render_resource_metrics(summary: Option<&Summary>) -> String {
    let Some(s) = summary else { return render(scrape_errors(1.0)) };
    let mut node_cpu = Family::new("node_cpu_usage_seconds_total", "counter", "[STABLE] Cumulative cpu time consumed by the node in core-seconds");
    let mut node_mem = Family::new("node_memory_working_set_bytes", "gauge", "[STABLE] Current working set of the node in bytes");
    let mut c_cpu = Family::new("container_cpu_usage_seconds_total", "counter", "[STABLE] Cumulative cpu time consumed by the container in core-seconds");
    let mut c_mem = Family::new("container_memory_working_set_bytes", "gauge", "[STABLE] Current working set of the container in bytes");
    let mut c_start = Family::new("container_start_time_seconds", "gauge", "[STABLE] Start time of the container since unix epoch in seconds");
    let mut p_cpu = Family::new("pod_cpu_usage_seconds_total", "counter", "[STABLE] Cumulative cpu time consumed by the pod in core-seconds");
    let mut p_mem = Family::new("pod_memory_working_set_bytes", "gauge", "[STABLE] Current working set of the pod in bytes");
    if let Some((v, t)) = cpu_seconds(&s.node.cpu) {
        node_cpu.push(vec![], v, t);
    }
    if let Some((v, t)) = working_set(&s.node.memory) {
        node_mem.push(vec![], v, t);
    }
    for p in &s.pods {
        let (pod, ns) = (p.pod_ref.name.clone(), p.pod_ref.namespace.clone());
        for c in &p.containers {
            let labels = vec![("container", c.name.clone()), ("namespace", ns.clone()), ("pod", pod.clone())];
            if c.start_time.0.as_second() > 0 {
                c_start.push(labels.clone(), c.start_time.0.as_nanosecond() as f64 / 1e9, None);
            }
            if let Some((v, t)) = cpu_seconds(&c.cpu) {
                c_cpu.push(labels.clone(), v, t);
            }
            if let Some((v, t)) = working_set(&c.memory) {
                c_mem.push(labels, v, t);
            }
        }
        let labels = vec![("namespace", ns), ("pod", pod)];
        if let Some((v, t)) = cpu_seconds(&p.cpu) {
            p_cpu.push(labels.clone(), v, t);
        }
        if let Some((v, t)) = working_set(&p.memory) {
            p_mem.push(labels, v, t);
        }
    }
    let mut families = vec![node_cpu, node_mem, c_cpu, c_mem, c_start, p_cpu, p_mem];
    families.extend(scrape_errors(0.0));
    render(families)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubelet_api::summary::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn t(ns: i128) -> Time {
        Time(Timestamp::from_nanosecond(ns).unwrap())
    }

    fn summary() -> Summary {
        let at = t(1624396278302091597);
        let cpu = Some(CpuStats { time: at.clone(), usage_nano_cores: None, usage_core_nano_seconds: Some(10_000_000_000) });
        let mem = Some(MemoryStats {
            time: at.clone(),
            available_bytes: None,
            usage_bytes: Some(2000),
            working_set_bytes: Some(1000),
            rss_bytes: None,
            page_faults: None,
            major_page_faults: None,
        });
        let container = |name: &str, start: i128| ContainerStats { name: name.into(), start_time: t(start), cpu: cpu.clone(), memory: mem.clone(), rootfs: None };
        Summary {
            node: NodeStats { node_name: "n".into(), start_time: at.clone(), cpu: cpu.clone(), memory: mem.clone(), fs: None, runtime: None, rlimit: None },
            pods: vec![PodStats {
                pod_ref: PodReference { name: "pod_a".into(), namespace: "namespace_a".into(), uid: "u".into() },
                start_time: at.clone(),
                containers: vec![container("container_b", 1624396158302091597), container("container_a", 1624396248302091597)],
                cpu: cpu.clone(),
                memory: mem.clone(),
                network: None,
                ephemeral_storage: None,
                process_stats: None,
            }],
        }
    }

    #[test]
    fn upstream_names_values_and_timestamps() {
        let text = render_resource_metrics(Some(&summary()));
        for line in [
            "# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds",
            "# TYPE node_cpu_usage_seconds_total counter",
            "node_cpu_usage_seconds_total 10 1624396278302",
            "node_memory_working_set_bytes 1000 1624396278302",
            "container_cpu_usage_seconds_total{container=\"container_a\",namespace=\"namespace_a\",pod=\"pod_a\"} 10 1624396278302",
            "container_memory_working_set_bytes{container=\"container_b\",namespace=\"namespace_a\",pod=\"pod_a\"} 1000 1624396278302",
            "container_start_time_seconds{container=\"container_a\",namespace=\"namespace_a\",pod=\"pod_a\"} 1.6243962483020916e+09",
            "container_start_time_seconds{container=\"container_b\",namespace=\"namespace_a\",pod=\"pod_a\"} 1.6243961583020916e+09",
            "pod_cpu_usage_seconds_total{namespace=\"namespace_a\",pod=\"pod_a\"} 10 1624396278302",
            "pod_memory_working_set_bytes{namespace=\"namespace_a\",pod=\"pod_a\"} 1000 1624396278302",
            "# TYPE scrape_error gauge",
            "scrape_error 0",
            "resource_scrape_error 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        let a = text.find("container_cpu_usage_seconds_total{container=\"container_a\"").unwrap();
        let b = text.find("container_cpu_usage_seconds_total{container=\"container_b\"").unwrap();
        assert!(a < b, "samples are sorted by labels");
    }

    #[test]
    fn missing_values_and_errors() {
        let mut s = summary();
        s.node.cpu = None;
        s.pods[0].containers[0].start_time = t(0);
        let text = render_resource_metrics(Some(&s));
        assert!(!text.contains("node_cpu_usage_seconds_total"), "{text}");
        assert_eq!(text.matches("container_start_time_seconds{").count(), 1, "{text}");
        assert_eq!(
            render_resource_metrics(None),
            "# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise\n\
             # TYPE resource_scrape_error gauge\nresource_scrape_error 1\n\
             # HELP scrape_error [ALPHA] 1 if there was an error while getting container metrics, 0 otherwise\n\
             # TYPE scrape_error gauge\nscrape_error 1\n"
        );
    }
}
