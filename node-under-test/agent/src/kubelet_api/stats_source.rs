//! Reads what a summary is built from: CRI sandbox stats (the eviction manager's client),
//! sandbox and container creation times, the pods' local usage, node capacity, host CPU.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::summary::{CpuStats, Summary, SummaryInput, build_summary, parse_boot_time, parse_proc_stat_cpu};
use crate::config::KubeletConfiguration;
use crate::cri::{CriError, Runtime};
use crate::eviction::signals::PodUsage;
use crate::eviction::stats::{StatsClient, add_local_usage, capacity, from_sandbox_stats};

/// /proc/stat counts in USER_HZ, which Linux fixes at 100 for user space on every architecture.
const USER_HZ: u64 = 100;

/// Why the stats could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error("{0}")]
    Cri(#[from] CriError),
    #[error("reading local usage: {0}")]
    Local(String),
}

/// The summary's sources.
pub struct StatsSource<R> {
    pub runtime: Arc<R>,
    pub client: StatsClient,
    pub cfg: KubeletConfiguration,
    pub root_dir: PathBuf,
    pub node_name: String,
    /// The previous host CPU sample (ns used, when), for usageNanoCores.
    host_cpu: Mutex<Option<(u64, Timestamp)>>,
}

impl<R: Runtime> StatsSource<R> {
    pub fn new(runtime: Arc<R>, client: StatsClient, cfg: KubeletConfiguration, root_dir: PathBuf, node_name: String) -> Self {
        StatsSource { runtime, client, cfg, root_dir, node_name, host_cpu: Mutex::new(None) }
    }

    /// The host's CPU (None for a node with a configured CPU size: then the pods' sum counts).
    fn host_cpu(&self, now: Timestamp) -> Option<CpuStats> {
        if self.cfg.nodekit.node_size.cpu.is_some() {
            return None;
        }
        let used = parse_proc_stat_cpu(&std::fs::read_to_string("/proc/stat").ok()?, USER_HZ)?;
        let mut prev = self.host_cpu.lock().unwrap_or_else(|p| p.into_inner());
        let nano_cores = prev.and_then(|(u, t)| {
            let dt = now.as_nanosecond() - t.as_nanosecond();
            (dt > 0).then(|| (u128::from(used.saturating_sub(u)) * 1_000_000_000 / dt as u128) as u64)
        });
        *prev = Some((used, now));
        Some(CpuStats { time: Time(now), usage_nano_cores: nano_cores, usage_core_nano_seconds: Some(used) })
    }

    /// Reads everything and builds the summary.
    pub async fn summary(&self) -> Result<Summary, StatsError> {
        let stats = self.client.sandbox_stats().await?;
        let mut created: HashMap<String, i64> = HashMap::new();
        for sb in self.runtime.list_pod_sandboxes(HashMap::new()).await? {
            created.insert(sb.id, sb.created_at);
        }
        for c in self.runtime.list_containers(HashMap::new()).await? {
            created.insert(c.id, c.created_at);
        }
        let usage = from_sandbox_stats(&stats);
        let (root, cfg) = (self.root_dir.clone(), self.cfg.clone());
        // Walking the pods' directories and /proc blocks.
        let local = tokio::task::spawn_blocking(move || {
            let mut usage = usage;
            add_local_usage(&root, &mut usage);
            let pods: Vec<&PodUsage> = usage.values().map(|(u, _, _)| u).collect();
            let sum = |f: fn(&PodUsage) -> i64| pods.iter().map(|p| f(p)).sum::<i64>();
            let cap = capacity(&cfg, &root, sum(PodUsage::memory), sum(PodUsage::disk), sum(|p| p.processes));
            let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|t| parse_boot_time(&t));
            (usage, cap, boot)
        })
        .await;
        let (usage, cap, boot) = local.map_err(|e| StatsError::Local(e.to_string()))?;
        let now = Timestamp::now();
        let input = SummaryInput {
            node_name: &self.node_name,
            now,
            node_start: boot.unwrap_or(Timestamp::UNIX_EPOCH),
            stats: &stats,
            created: &created,
            usage: &usage,
            capacity: cap,
            node_cpu: self.host_cpu(now),
        };
        Ok(build_summary(&input))
    }
}
