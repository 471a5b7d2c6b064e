//! `/stats/summary` (statsapi `Summary`) built from CRI sandbox stats, as pure functions. The
//! node's numbers come from the same [`Capacity`] the eviction manager observes, so the summary
//! and the eviction signals agree.

mod types;

use std::collections::HashMap;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

pub use types::*;

use crate::cri::{api, keys};
use crate::eviction::signals::{Capacity, PodUsage};

/// Everything a summary is built from.
#[derive(Debug)]
pub struct SummaryInput<'a> {
    pub node_name: &'a str,
    pub now: Timestamp,
    /// When the node's stats started (boot time).
    pub node_start: Timestamp,
    pub stats: &'a [api::PodSandboxStats],
    /// Creation time (ns) of sandboxes and containers by id (their start times, as upstream).
    pub created: &'a HashMap<String, i64>,
    /// Usage per pod uid (containers' writable layers plus volumes and logs).
    pub usage: &'a HashMap<String, (PodUsage, String, String)>,
    pub capacity: Capacity,
    /// The host's CPU; `None` when the node has a configured size (then the pods' sum counts).
    pub node_cpu: Option<CpuStats>,
}

fn time_ns(ns: i64) -> Time {
    Time(Timestamp::from_nanosecond(i128::from(ns)).unwrap_or(Timestamp::UNIX_EPOCH))
}

fn val(v: &Option<api::UInt64Value>) -> Option<u64> {
    v.as_ref().map(|v| v.value)
}

fn cpu(c: &api::CpuUsage) -> CpuStats {
    CpuStats {
        time: time_ns(c.timestamp),
        usage_nano_cores: val(&c.usage_nano_cores),
        usage_core_nano_seconds: val(&c.usage_core_nano_seconds),
    }
}

fn memory(m: &api::MemoryUsage) -> MemoryStats {
    MemoryStats {
        time: time_ns(m.timestamp),
        available_bytes: val(&m.available_bytes),
        usage_bytes: val(&m.usage_bytes),
        working_set_bytes: val(&m.working_set_bytes),
        rss_bytes: val(&m.rss_bytes),
        page_faults: val(&m.page_faults),
        major_page_faults: val(&m.major_page_faults),
    }
}

fn sum(values: impl Iterator<Item = Option<u64>>) -> Option<u64> {
    values.fold(None, |acc, v| match (acc, v) {
        (None, v) => v,
        (a, None) => a,
        (Some(a), Some(b)) => Some(a.saturating_add(b)),
    })
}

fn container(c: &api::ContainerStats, created: &HashMap<String, i64>) -> Option<ContainerStats> {
    let attr = c.attributes.as_ref()?;
    Some(ContainerStats {
        name: attr.metadata.as_ref().map(|m| m.name.clone()).unwrap_or_default(),
        start_time: time_ns(created.get(&attr.id).copied().unwrap_or(0)),
        cpu: c.cpu.as_ref().map(cpu),
        memory: c.memory.as_ref().map(memory),
        rootfs: c.writable_layer.as_ref().map(|w| FsStats {
            time: time_ns(w.timestamp),
            available_bytes: None,
            capacity_bytes: None,
            used_bytes: val(&w.used_bytes),
            inodes_free: None,
            inodes: None,
            inodes_used: val(&w.inodes_used),
        }),
    })
}

/// The newest instance of each container name (by start time).
fn newest_containers(mut cs: Vec<ContainerStats>) -> Vec<ContainerStats> {
    cs.sort_by(|a, b| a.name.cmp(&b.name).then(b.start_time.0.cmp(&a.start_time.0)));
    cs.dedup_by(|later, first| later.name == first.name);
    cs
}

fn pod(s: &api::PodSandboxStats, input: &SummaryInput<'_>) -> Option<PodStats> {
    let attr = s.attributes.as_ref()?;
    let meta = attr.metadata.as_ref()?;
    let uid = attr.labels.get(keys::POD_UID).cloned().unwrap_or_else(|| meta.uid.clone());
    let linux = s.linux.as_ref();
    let containers = newest_containers(linux.map(|l| l.containers.iter().filter_map(|c| container(c, input.created)).collect()).unwrap_or_default());
    let now = Time(input.now);
    let pod_cpu = linux.and_then(|l| l.cpu.as_ref()).map(cpu).or_else(|| {
        (!containers.is_empty()).then(|| CpuStats {
            time: now.clone(),
            usage_nano_cores: sum(containers.iter().map(|c| c.cpu.as_ref().and_then(|c| c.usage_nano_cores))),
            usage_core_nano_seconds: sum(containers.iter().map(|c| c.cpu.as_ref().and_then(|c| c.usage_core_nano_seconds))),
        })
    });
    let pod_memory = linux.and_then(|l| l.memory.as_ref()).map(memory).or_else(|| {
        (!containers.is_empty()).then(|| MemoryStats {
            time: now.clone(),
            available_bytes: None,
            usage_bytes: sum(containers.iter().map(|c| c.memory.as_ref().and_then(|m| m.usage_bytes))),
            working_set_bytes: sum(containers.iter().map(|c| c.memory.as_ref().and_then(|m| m.working_set_bytes))),
            rss_bytes: sum(containers.iter().map(|c| c.memory.as_ref().and_then(|m| m.rss_bytes))),
            page_faults: None,
            major_page_faults: None,
        })
    });
    let network = linux.and_then(|l| l.network.as_ref()).and_then(|n| {
        let i = n.default_interface.as_ref()?;
        Some(NetworkStats {
            time: time_ns(n.timestamp),
            name: i.name.clone(),
            rx_bytes: val(&i.rx_bytes),
            rx_errors: val(&i.rx_errors),
            tx_bytes: val(&i.tx_bytes),
            tx_errors: val(&i.tx_errors),
        })
    });
    let usage = input.usage.get(&uid).map(|(u, _, _)| u);
    let process_count = linux.and_then(|l| l.process.as_ref()).and_then(|p| val(&p.process_count));
    Some(PodStats {
        pod_ref: PodReference { name: meta.name.clone(), namespace: meta.namespace.clone(), uid },
        start_time: time_ns(input.created.get(&attr.id).copied().unwrap_or(0)),
        containers,
        cpu: pod_cpu,
        memory: pod_memory,
        network,
        ephemeral_storage: usage.map(|u| FsStats {
            time: now.clone(),
            available_bytes: None,
            capacity_bytes: None,
            used_bytes: Some(u.disk().max(0) as u64),
            inodes_free: None,
            inodes: None,
            inodes_used: Some(u.inodes().max(0) as u64),
        }),
        process_stats: process_count.map(|c| ProcessStats { process_count: Some(c) }),
    })
}

/// One entry per pod uid: the newest sandbox's.
fn pods(input: &SummaryInput<'_>) -> Vec<PodStats> {
    let mut out: Vec<PodStats> = input.stats.iter().filter_map(|s| pod(s, input)).collect();
    out.sort_by(|a, b| a.pod_ref.uid.cmp(&b.pod_ref.uid).then(b.start_time.0.cmp(&a.start_time.0)));
    out.dedup_by(|later, first| later.pod_ref.uid == first.pod_ref.uid);
    out.sort_by(|a, b| (&a.pod_ref.namespace, &a.pod_ref.name).cmp(&(&b.pod_ref.namespace, &b.pod_ref.name)));
    out
}

fn u(v: i64) -> Option<u64> {
    Some(v.max(0) as u64)
}

/// The node's stats: memory, filesystem and processes are capacity's "other" plus the pods'.
fn node(input: &SummaryInput<'_>, pods: &[PodStats]) -> NodeStats {
    let now = Time(input.now);
    let cap = &input.capacity;
    let all: Vec<&PodUsage> = input.usage.values().map(|(u, _, _)| u).collect();
    let working_set = cap.memory_other + all.iter().map(|p| p.memory()).sum::<i64>();
    let used = cap.nodefs_other + all.iter().map(|p| p.disk()).sum::<i64>();
    let procs = cap.pids_other + all.iter().map(|p| p.processes).sum::<i64>();
    let fs = FsStats {
        time: now.clone(),
        available_bytes: u(cap.nodefs - used),
        capacity_bytes: u(cap.nodefs),
        used_bytes: u(used),
        inodes_free: u(cap.inodes_free),
        inodes: u(cap.inodes),
        inodes_used: u(cap.inodes - cap.inodes_free),
    };
    let node_cpu = input.node_cpu.clone().unwrap_or_else(|| CpuStats {
        time: now.clone(),
        usage_nano_cores: sum(pods.iter().map(|p| p.cpu.as_ref().and_then(|c| c.usage_nano_cores))).or(Some(0)),
        usage_core_nano_seconds: sum(pods.iter().map(|p| p.cpu.as_ref().and_then(|c| c.usage_core_nano_seconds))).or(Some(0)),
    });
    NodeStats {
        node_name: input.node_name.to_string(),
        start_time: Time(input.node_start),
        cpu: Some(node_cpu),
        memory: Some(MemoryStats {
            time: now.clone(),
            available_bytes: u(cap.memory - working_set),
            usage_bytes: u(working_set),
            working_set_bytes: u(working_set),
            rss_bytes: None,
            page_faults: None,
            major_page_faults: None,
        }),
        runtime: Some(RuntimeStats { image_fs: Some(fs.clone()) }),
        fs: Some(fs),
        rlimit: Some(RlimitStats { time: now, maxpid: Some(cap.pids), curproc: Some(procs) }),
    }
}

/// Builds the summary.
pub fn build_summary(input: &SummaryInput<'_>) -> Summary {
    let pods = pods(input);
    Summary { node: node(input, &pods), pods }
}

/// Host CPU time used (ns) from /proc/stat's `cpu` line (user nice system irq softirq steal),
/// with `ticks_per_second` (USER_HZ).
pub fn parse_proc_stat_cpu(text: &str, ticks_per_second: u64) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let busy = [0usize, 1, 2, 5, 6, 7].iter().map(|i| f.get(*i).copied().unwrap_or(0)).sum::<u64>();
    Some(busy.saturating_mul(1_000_000_000 / ticks_per_second.max(1)))
}

/// Boot time from /proc/stat's `btime`.
pub fn parse_boot_time(text: &str) -> Option<Timestamp> {
    let secs: i64 = text.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()?;
    Timestamp::from_second(secs).ok()
}

#[cfg(test)]
mod tests;
