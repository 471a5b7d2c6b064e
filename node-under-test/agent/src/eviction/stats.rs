//! Reading what pods use: CRI ListPodSandboxStats (working set, writable layer, process count per
//! sandbox and container) over its own connection to the runtime, the pods' directories under the
//! agent's root dir (emptyDir volumes, logs), and the node's capacities (configured size or host).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

use super::signals::{Capacity, ContainerUsage, PodUsage};
use crate::config::KubeletConfiguration;
use crate::cri::api::{self, runtime_service_client::RuntimeServiceClient};
use crate::cri::{CriError, keys};

/// A CRI client for stats calls, shared by the eviction manager and the kubelet API.
///
/// Its stats calls run alone: not beside each other, nor beside the agent's calls that read the
/// runtime's sandbox store ([`crate::cri::store_lock`]: containerd 1.6 before 1.6.22 dies
/// otherwise).
#[derive(Clone)]
pub struct StatsClient {
    rt: RuntimeServiceClient<Channel>,
    timeout: Duration,
    store: crate::cri::store_lock::SandboxStoreLock,
}

impl StatsClient {
    /// A lazily connecting client for `endpoint` (`unix:///path` or a plain absolute path).
    pub fn new(endpoint: &str, timeout: Duration) -> Result<StatsClient, CriError> {
        let path = endpoint.strip_prefix("unix://").unwrap_or(endpoint).to_string();
        if !path.starts_with('/') {
            return Err(CriError::Connect { endpoint: endpoint.into(), message: "only unix:///absolute/path endpoints are supported".into() });
        }
        let channel = Endpoint::from_static("http://[::]:50051")
            .connect_timeout(Duration::from_secs(5))
            .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move { Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?)) }
            }));
        Ok(StatsClient { rt: RuntimeServiceClient::new(channel).max_decoding_message_size(64 << 20), timeout, store: Default::default() })
    }

    /// Shares `lock` with the runtime client, so that its stats calls wait for that client's
    /// sandbox-store readers.
    pub fn sharing(mut self, lock: crate::cri::store_lock::SandboxStoreLock) -> StatsClient {
        self.store = lock;
        self
    }

    /// Usage per pod UID from the runtime.
    pub async fn pod_usage(&self) -> Result<HashMap<String, (PodUsage, String, String)>, CriError> {
        Ok(from_sandbox_stats(&self.sandbox_stats().await?))
    }

    /// Every sandbox's stats from the runtime.
    ///
    /// containerd fails the whole ListPodSandboxStats when one sandbox's metrics cannot be
    /// read (e.g. a sandbox being torn down). Then every ready sandbox is asked on its own and
    /// the ones that fail are left out of this pass.
    pub async fn sandbox_stats(&self) -> Result<Vec<api::PodSandboxStats>, CriError> {
        let _alone = self.store.write().await;
        let mut c = self.rt.clone();
        let req = api::ListPodSandboxStatsRequest { filter: None };
        match tokio::time::timeout(self.timeout, c.list_pod_sandbox_stats(req)).await {
            Ok(Ok(r)) => Ok(r.into_inner().stats),
            Ok(Err(s)) => {
                tracing::debug!(error = %s.message(), "ListPodSandboxStats failed; asking sandbox by sandbox");
                self.sandbox_stats_one_by_one().await
            }
            Err(_) => Err(CriError::Timeout { op: "ListPodSandboxStats", after: self.timeout }),
        }
    }

    async fn sandbox_stats_one_by_one(&self) -> Result<Vec<api::PodSandboxStats>, CriError> {
        let mut c = self.rt.clone();
        let filter = api::PodSandboxFilter {
            state: Some(api::PodSandboxStateValue { state: api::PodSandboxState::SandboxReady as i32 }),
            ..Default::default()
        };
        let req = api::ListPodSandboxRequest { filter: Some(filter) };
        let sandboxes = match tokio::time::timeout(self.timeout, c.list_pod_sandbox(req)).await {
            Ok(Ok(r)) => r.into_inner().items,
            Ok(Err(s)) => return Err(CriError::Rpc { op: "ListPodSandbox", code: s.code(), message: s.message().into() }),
            Err(_) => return Err(CriError::Timeout { op: "ListPodSandbox", after: self.timeout }),
        };
        let mut stats = Vec::new();
        for sb in sandboxes {
            let req = api::PodSandboxStatsRequest { pod_sandbox_id: sb.id.clone() };
            if let Ok(Ok(r)) = tokio::time::timeout(self.timeout, c.pod_sandbox_stats(req)).await
                && let Some(s) = r.into_inner().stats
            {
                stats.push(s);
            }
        }
        Ok(stats)
    }
}

fn val(v: &Option<api::UInt64Value>) -> i64 {
    v.as_ref().map(|v| v.value.min(i64::MAX as u64) as i64).unwrap_or(0)
}

/// Folds sandbox stats into usage per pod UID (with the pod's namespace and name).
pub fn from_sandbox_stats(stats: &[api::PodSandboxStats]) -> HashMap<String, (PodUsage, String, String)> {
    let mut out: HashMap<String, (PodUsage, String, String)> = HashMap::new();
    for s in stats {
        let Some(attr) = s.attributes.as_ref() else { continue };
        let Some(uid) = attr.labels.get(keys::POD_UID).cloned() else { continue };
        let (ns, name) = attr.metadata.as_ref().map(|m| (m.namespace.clone(), m.name.clone())).unwrap_or_default();
        let entry = out.entry(uid.clone()).or_insert_with(|| (PodUsage { uid: uid.clone(), ..Default::default() }, ns, name));
        let Some(linux) = s.linux.as_ref() else { continue };
        entry.0.processes += linux.process.as_ref().map(|p| val(&p.process_count)).unwrap_or(0);
        for c in &linux.containers {
            let name = c.attributes.as_ref().and_then(|a| a.metadata.as_ref()).map(|m| m.name.clone()).unwrap_or_default();
            entry.0.containers.push(ContainerUsage {
                name,
                memory: c.memory.as_ref().map(|m| val(&m.working_set_bytes)).unwrap_or(0),
                disk: c.writable_layer.as_ref().map(|f| val(&f.used_bytes)).unwrap_or(0),
                inodes: c.writable_layer.as_ref().map(|f| val(&f.inodes_used)).unwrap_or(0),
            });
        }
    }
    out
}

/// Bytes and inodes used under `dir` (symlinks not followed; missing is zero).
pub fn dir_usage(dir: &Path) -> (i64, i64) {
    let mut bytes = 0i64;
    let mut inodes = 0i64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let Ok(md) = e.path().symlink_metadata() else { continue };
            inodes += 1;
            if md.is_dir() {
                stack.push(e.path());
            } else if md.is_file() {
                bytes += md.len() as i64;
            }
        }
    }
    (bytes, inodes)
}

/// Adds each pod's directories under `root` (volumes, logs) to its usage.
pub fn add_local_usage(root: &Path, usage: &mut HashMap<String, (PodUsage, String, String)>) {
    for (uid, (u, ns, name)) in usage.iter_mut() {
        let (vb, vi) = dir_usage(&crate::pods::spec::pod_dir(root, uid));
        let (lb, li) = dir_usage(&root.join("pods").join(format!("{ns}_{name}_{uid}")));
        u.local_disk = vb + lb;
        u.local_inodes = vi + li;
    }
}

fn meminfo_available() -> Option<i64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    line.split_whitespace().nth(1)?.parse::<i64>().ok().map(|kb| kb * 1024)
}

fn process_count() -> i64 {
    std::fs::read_dir("/proc")
        .map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit())).count() as i64)
        .unwrap_or(0)
}

/// The node's capacities: the configured `nodekit.nodeSize` (then nothing outside pods counts),
/// else the host's (then what the host uses besides pods counts too).
pub fn capacity(cfg: &KubeletConfiguration, root: &Path, pods_memory: i64, pods_disk: i64, pods_procs: i64) -> Capacity {
    let size = &cfg.nodekit.node_size;
    let fs_path = if root.exists() { root } else { Path::new("/") };
    let vfs = nix::sys::statvfs::statvfs(fs_path).ok();
    let (fs_total, fs_avail, inodes, inodes_free) = vfs
        .map(|v| {
            let f = v.fragment_size() as i64;
            (v.blocks() as i64 * f, v.blocks_available() as i64 * f, v.files() as i64, v.files_available() as i64)
        })
        .unwrap_or((0, 0, 0, 0));
    let (memory, memory_other) = match size.memory.as_deref().and_then(crate::quantity::bytes) {
        Some(m) => (m, 0),
        None => {
            let total = std::fs::read_to_string("/proc/meminfo")
                .ok()
                .and_then(|t| crate::node::host::parse_meminfo_total(&t))
                .unwrap_or(0) as i64;
            (total, (total - meminfo_available().unwrap_or(total) - pods_memory).max(0))
        }
    };
    let (nodefs, nodefs_other) = match size.ephemeral_storage.as_deref().and_then(crate::quantity::bytes) {
        Some(s) => (s, 0),
        None => (fs_total, (fs_total - fs_avail - pods_disk).max(0)),
    };
    let (pids, pids_other) = match size.pids {
        Some(p) => (p as i64, 0),
        None => {
            let max = std::fs::read_to_string("/proc/sys/kernel/pid_max").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(32768);
            (max, (process_count() - pods_procs).max(0))
        }
    };
    Capacity { memory, memory_other, nodefs, nodefs_other, inodes, inodes_free, pids, pids_other }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_stats_fold_by_pod_uid() {
        let cs = |name: &str, mem: u64, disk: u64| api::ContainerStats {
            attributes: Some(api::ContainerAttributes {
                metadata: Some(api::ContainerMetadata { name: name.into(), attempt: 0 }),
                ..Default::default()
            }),
            memory: Some(api::MemoryUsage { working_set_bytes: Some(api::UInt64Value { value: mem }), ..Default::default() }),
            writable_layer: Some(api::FilesystemUsage { used_bytes: Some(api::UInt64Value { value: disk }), ..Default::default() }),
            ..Default::default()
        };
        let sb = api::PodSandboxStats {
            attributes: Some(api::PodSandboxAttributes {
                id: "s".into(),
                metadata: Some(api::PodSandboxMetadata { name: "p".into(), namespace: "ns".into(), uid: "u".into(), attempt: 0 }),
                labels: [(keys::POD_UID.to_string(), "u".to_string())].into(),
                annotations: Default::default(),
            }),
            linux: Some(api::LinuxPodSandboxStats {
                process: Some(api::ProcessUsage { timestamp: 0, process_count: Some(api::UInt64Value { value: 3 }) }),
                containers: vec![cs("a", 100, 10), cs("b", 50, 5)],
                ..Default::default()
            }),
            windows: None,
        };
        let m = from_sandbox_stats(&[sb]);
        let (u, ns, name) = &m["u"];
        assert_eq!((u.memory(), u.disk(), u.processes, ns.as_str(), name.as_str()), (150, 15, 3, "ns", "p"));
    }

    #[test]
    fn dir_usage_counts_files_and_inodes() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/f"), vec![0u8; 1000]).unwrap();
        std::fs::write(d.path().join("g"), vec![0u8; 24]).unwrap();
        assert_eq!(dir_usage(d.path()), (1024, 3));
        assert_eq!(dir_usage(&d.path().join("missing")), (0, 0));
    }
}
