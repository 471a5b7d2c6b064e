//! Start-up re-attachment to what a previous fake-cri left running, and shutdown cleanup.
use crate::logs::{LogSink, copy_stream};
use crate::runtime::{Live, Runtime, lock};
use crate::store::{ContainerPhase, now_ns};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

impl Runtime {
    /// Re-attaches to running containers (same pid and start time) and ready sandboxes.
    pub(crate) fn reattach(self: &Arc<Self>) {
        let (containers, sandboxes) = {
            let st = lock(&self.state);
            (st.containers.values().cloned().collect::<Vec<_>>(), st.sandboxes.values().cloned().collect::<Vec<_>>())
        };
        if sandboxes.iter().any(|s| s.ready && s.config.port_mappings.iter().any(|p| p.host_port > 0)) {
            self.hostports_programmed.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        for s in sandboxes.iter().filter(|s| s.ready) {
            if let Some(p) = &s.netns_path {
                match crate::net::open_netns(p) {
                    Ok(fd) => {
                        lock(&self.netns).insert(s.id.clone(), Arc::new(fd));
                    }
                    Err(_) => {
                        let mut st = lock(&self.state);
                        if let Some(r) = st.sandboxes.get_mut(&s.id) {
                            r.ready = false;
                        }
                    }
                }
            }
        }
        for c in containers.into_iter().filter(|c| c.phase == ContainerPhase::Running) {
            let alive = matches!((c.pid, c.pid_start), (Some(p), Some(s)) if crate::procfs::alive(p, s));
            let Some(pid) = c.pid.filter(|_| alive) else {
                let mut st = lock(&self.state);
                if let Some(r) = st.containers.get_mut(&c.id) {
                    let oom = r.cgroup.as_deref().is_some_and(|d| crate::cgroup::oom_kills(d) > 0);
                    r.phase = ContainerPhase::Exited;
                    r.finished_at = now_ns();
                    r.pid = None;
                    r.exit_code = if oom { 137 } else { crate::container::UNKNOWN_EXIT };
                    r.reason = if oom { "OOMKilled".into() } else { "Error".into() };
                    r.message = "container exited while the runtime was not running".into();
                }
                continue;
            };
            let log = if c.log_path.is_empty() { None } else { LogSink::open(Path::new(&c.log_path)).ok() };
            let mut copies = Vec::new();
            let mut terminal = None;
            if c.config.tty {
                // The container keeps its terminal's master side at fd 3. Opening
                // /proc/<pid>/fd/3 would open /dev/ptmx, a new terminal: take a duplicate of
                // the container's fd instead.
                if let Some(master) = crate::stdio::take_fd(pid, 3) {
                    if let Ok(reader) = master.try_clone() {
                        let r = tokio::fs::File::from_std(std::fs::File::from(reader));
                        copies.push(self.tasks.spawn(copy_stream(r, "stdout", log.clone())));
                    }
                    terminal = Some(Arc::new(master));
                }
            } else {
                for (fd, stream) in [(3, "stdout"), (4, "stderr")] {
                    let p = format!("/proc/{pid}/fd/{fd}");
                    if let Ok(r) = tokio::net::unix::pipe::OpenOptions::new().open_receiver(&p) {
                        copies.push(self.tasks.spawn(copy_stream(r, stream, log.clone())));
                    }
                }
            }
            let (tx, rx) = watch::channel(false);
            let live = Arc::new(Live { exited: rx, log, oom: Arc::new(AtomicBool::new(false)), cpu_sample: Mutex::new(None), stdin: Default::default(), terminal, stdin_once: false });
            lock(&self.live).insert(c.id.clone(), live);
            let rt = self.clone();
            let start = c.pid_start.unwrap_or(0);
            self.tasks.spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                        _ = rt.cancel.cancelled() => return,
                    }
                    if !crate::procfs::alive(pid, start) {
                        break;
                    }
                }
                // Not our child: the exit status cannot be observed.
                if let Some(r) = lock(&rt.state).containers.get_mut(&c.id) {
                    r.message = "exit status unknown: the container was started by a previous runtime instance".into();
                }
                rt.finish_container(&c.id, pid, None, copies, tx).await;
            });
        }
        // Cgroups of containers that are gone (a crash leaves them behind) are removed.
        if let Some(parent) = &self.cgroup_parent {
            let keep: std::collections::BTreeSet<std::path::PathBuf> = lock(&self.state)
                .containers
                .values()
                .filter(|c| c.phase == ContainerPhase::Running)
                .filter_map(|c| c.cgroup.clone())
                .collect();
            if let Ok(rd) = std::fs::read_dir(parent) {
                for e in rd.flatten() {
                    let p = e.path();
                    if p.is_dir() && !keep.contains(&p) {
                        crate::cgroup::remove(&p);
                    }
                }
            }
        }
        let st = lock(&self.state);
        self.save(&st);
    }

    /// Kills every container and removes veths, network namespaces, hostPort rules, cgroups
    /// and the bridge fake-cri created.
    pub(crate) async fn cleanup_all(&self) {
        let running: Vec<(String, i32, Option<std::path::PathBuf>)> = lock(&self.state)
            .containers
            .values()
            .filter_map(|c| c.pid.map(|p| (c.id.clone(), p, c.cgroup.clone())))
            .collect();
        for (_, pid, cg) in &running {
            let _ = killpg(Pid::from_raw(*pid), Signal::SIGKILL);
            if let Some(cg) = cg {
                for p in crate::cgroup::procs(cg) {
                    let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
                }
            }
        }
        for (id, _, _) in &running {
            let live = lock(&self.live).get(id).cloned();
            if let Some(l) = live {
                let mut rx = l.exited.clone();
                let _ = tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|e| *e)).await;
            }
        }
        let sandboxes: Vec<String> = lock(&self.state).sandboxes.keys().cloned().collect();
        for id in sandboxes {
            let _ = self.stop_pod_sandbox(&id).await;
        }
        let containers: Vec<crate::store::ContainerRecord> = lock(&self.state).containers.values().filter(|c| c.cgroup.is_some()).cloned().collect();
        for c in &containers {
            self.remove_container_cgroup(c);
        }
        if let Some(p) = &self.cgroup_parent {
            crate::cgroup::remove_parent(p);
        }
        // Parents one container made may have held another's cgroup until now.
        for c in &containers {
            crate::cgroup::remove_created(&c.cgroup_created);
        }
        if self.hostports_programmed.load(std::sync::atomic::Ordering::SeqCst) {
            let _ = crate::net::apply_hostports(&[]).await;
        }
        if self.created_bridge.load(std::sync::atomic::Ordering::SeqCst) {
            let _ = self.net.delete_bridge().await;
        }
        let st = lock(&self.state);
        self.save(&st);
    }
}
