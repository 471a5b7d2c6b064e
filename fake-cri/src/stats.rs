//! Container and sandbox stats from the memory cgroup and /proc: CPU, memory working set and
//! RSS, writable layer (the container's private /tmp), process counts.
use crate::error::Result;
use crate::runtime::{Runtime, lock};
use crate::store::{ContainerPhase, ContainerRecord, now_ns};
use k8s_cri::v1 as cri;

fn u(v: u64) -> Option<cri::UInt64Value> {
    Some(cri::UInt64Value { value: v })
}

/// Raw numbers of one container.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sample {
    /// CPU ns.
    pub cpu_ns: u64,
    /// Usage bytes.
    pub usage: u64,
    /// Working set bytes.
    pub working_set: u64,
    /// RSS bytes.
    pub rss: u64,
    /// Writable layer bytes.
    pub fs_used: u64,
    /// Inodes used.
    pub inodes: u64,
    /// Processes.
    pub processes: u64,
}

impl Runtime {
    fn sample(&self, c: &ContainerRecord) -> Sample {
        let Some(pid) = c.pid.filter(|_| c.phase == ContainerPhase::Running) else {
            return Sample::default();
        };
        let pids = match &c.cgroup {
            Some(cg) => {
                let p = crate::cgroup::procs(cg);
                if p.is_empty() { crate::procfs::tree(pid) } else { p }
            }
            None => crate::procfs::tree(pid),
        };
        let rss_proc = crate::procfs::rss_bytes(&pids);
        let (usage, working_set, rss) = c
            .cgroup
            .as_deref()
            .and_then(crate::cgroup::memory)
            .unwrap_or((rss_proc, rss_proc, rss_proc));
        let (fs_used, inodes) = crate::procfs::fs_used(std::path::Path::new(&format!("/proc/{pid}/root/tmp"))).unwrap_or((0, 0));
        Sample { cpu_ns: crate::procfs::cpu_ns(&pids), usage, working_set, rss, fs_used, inodes, processes: pids.len() as u64 }
    }

    fn to_stats(&self, c: &ContainerRecord, s: &Sample) -> cri::ContainerStats {
        let ts = now_ns();
        let nano_cores = lock(&self.live).get(&c.id).and_then(|l| {
            let mut g = lock(&l.cpu_sample);
            let prev = g.replace((s.cpu_ns, ts));
            prev.and_then(|(cpu, t)| {
                let dt = (ts - t) as u64;
                (dt > 0).then(|| s.cpu_ns.saturating_sub(cpu) * 1_000_000_000 / dt)
            })
        });
        // Like containerd, whose task metrics exist only while the container runs.
        let running = c.phase == ContainerPhase::Running;
        cri::ContainerStats {
            attributes: Some(cri::ContainerAttributes {
                id: c.id.clone(),
                metadata: c.config.metadata.clone(),
                labels: c.config.labels.clone(),
                annotations: c.config.annotations.clone(),
            }),
            cpu: running.then(|| cri::CpuUsage { timestamp: ts, usage_core_nano_seconds: u(s.cpu_ns), usage_nano_cores: nano_cores.and_then(u) }),
            memory: running.then(|| cri::MemoryUsage {
                timestamp: ts,
                working_set_bytes: u(s.working_set),
                available_bytes: (c.memory_limit > 0).then(|| (c.memory_limit as u64).saturating_sub(s.working_set)).and_then(u),
                usage_bytes: u(s.usage),
                rss_bytes: u(s.rss),
                page_faults: u(0),
                major_page_faults: u(0),
            }),
            writable_layer: Some(cri::FilesystemUsage {
                timestamp: ts,
                fs_id: Some(cri::FilesystemIdentifier { mountpoint: format!("{}/containers/{}", self.cfg.state_dir.display(), c.id) }),
                used_bytes: u(s.fs_used),
                inodes_used: u(s.inodes),
            }),
            swap: None,
        }
    }

    /// ContainerStats.
    pub fn container_stats(&self, id: &str) -> Result<cri::ContainerStats> {
        let c = {
            let st = lock(&self.state);
            let id = st.container_id(id)?;
            st.containers[&id].clone()
        };
        let s = self.sample(&c);
        Ok(self.to_stats(&c, &s))
    }

    /// ListContainerStats: every container the filter matches (a nil filter matches all), as
    /// containerd lists every container it has; only running ones carry CPU and memory.
    pub fn list_container_stats(&self, f: Option<cri::ContainerStatsFilter>) -> Vec<cri::ContainerStats> {
        let cs: Vec<ContainerRecord> = lock(&self.state)
            .containers
            .values()
            .filter(|c| match &f {
                None => true,
                Some(f) => {
                    (f.id.is_empty() || c.id.starts_with(&f.id))
                        && (f.pod_sandbox_id.is_empty() || c.sandbox_id.starts_with(&f.pod_sandbox_id))
                        && f.label_selector.iter().all(|(k, v)| c.config.labels.get(k) == Some(v))
                }
            })
            .cloned()
            .collect();
        cs.iter().map(|c| self.to_stats(c, &self.sample(c))).collect()
    }

    /// PodSandboxStats.
    pub fn pod_sandbox_stats(&self, id: &str) -> Result<cri::PodSandboxStats> {
        let (sb, cs) = {
            let st = lock(&self.state);
            let id = st.sandbox_id(id)?;
            let cs: Vec<ContainerRecord> = st.containers.values().filter(|c| c.sandbox_id == id && c.phase == ContainerPhase::Running).cloned().collect();
            (st.sandboxes[&id].clone(), cs)
        };
        let ts = now_ns();
        let mut total = Sample::default();
        let mut containers = Vec::new();
        for c in &cs {
            let s = self.sample(c);
            total.cpu_ns += s.cpu_ns;
            total.usage += s.usage;
            total.working_set += s.working_set;
            total.rss += s.rss;
            total.processes += s.processes;
            containers.push(self.to_stats(c, &s));
        }
        let network = cs.iter().find_map(|c| c.pid).and_then(|pid| {
            let dev = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).ok()?;
            let line = dev.lines().find(|l| l.trim_start().starts_with("eth0:"))?;
            let f: Vec<u64> = line.split(':').nth(1)?.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            let iface = cri::NetworkInterfaceUsage {
                name: "eth0".into(),
                rx_bytes: u(*f.first()?),
                rx_errors: u(*f.get(2)?),
                tx_bytes: u(*f.get(8)?),
                tx_errors: u(*f.get(10)?),
            };
            Some(cri::NetworkUsage { timestamp: ts, default_interface: Some(iface.clone()), interfaces: vec![iface] })
        });
        Ok(cri::PodSandboxStats {
            attributes: Some(cri::PodSandboxAttributes {
                id: sb.id.clone(),
                metadata: sb.config.metadata.clone(),
                labels: sb.config.labels.clone(),
                annotations: sb.config.annotations.clone(),
            }),
            linux: Some(cri::LinuxPodSandboxStats {
                cpu: Some(cri::CpuUsage { timestamp: ts, usage_core_nano_seconds: u(total.cpu_ns), usage_nano_cores: None }),
                memory: Some(cri::MemoryUsage {
                    timestamp: ts,
                    working_set_bytes: u(total.working_set),
                    available_bytes: None,
                    usage_bytes: u(total.usage),
                    rss_bytes: u(total.rss),
                    page_faults: u(0),
                    major_page_faults: u(0),
                }),
                network,
                process: Some(cri::ProcessUsage { timestamp: ts, process_count: u(total.processes) }),
                containers,
            }),
            windows: None,
        })
    }

    /// ListPodSandboxStats.
    pub fn list_pod_sandbox_stats(&self, f: Option<cri::PodSandboxStatsFilter>) -> Vec<cri::PodSandboxStats> {
        let ids: Vec<String> = lock(&self.state)
            .sandboxes
            .values()
            .filter(|s| s.ready)
            .filter(|s| match &f {
                None => true,
                Some(f) => (f.id.is_empty() || s.id.starts_with(&f.id)) && f.label_selector.iter().all(|(k, v)| s.config.labels.get(k) == Some(v)),
            })
            .map(|s| s.id.clone())
            .collect();
        ids.iter().filter_map(|id| self.pod_sandbox_stats(id).ok()).collect()
    }

    /// ImageFsInfo: usage of the filesystem holding the state dir.
    pub fn image_fs_info(&self) -> cri::ImageFsInfoResponse {
        let ts = now_ns();
        let (used, inodes) = crate::procfs::fs_used(&self.cfg.state_dir).unwrap_or((0, 0));
        let fs = cri::FilesystemUsage {
            timestamp: ts,
            fs_id: Some(cri::FilesystemIdentifier { mountpoint: self.cfg.state_dir.display().to_string() }),
            used_bytes: u(used),
            inodes_used: u(inodes),
        };
        cri::ImageFsInfoResponse { image_filesystems: vec![fs.clone()], container_filesystems: vec![fs] }
    }
}
