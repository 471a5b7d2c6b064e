//! Containers: create, start (a real process inside the pod), stop, remove, status, list,
//! resource updates, log reopen; exit supervision with reasons (Completed, Error, OOMKilled).
use crate::config::IMAGE_BINARY_PATHS;
use crate::error::{Error, Result};
use crate::logs::LogSink;
use crate::stdio::ContainerIo;
use crate::runtime::{Live, Runtime, lock};
use crate::spawn::{BindMount, Enter, Fresh, User, cpath, open_cgroup_procs, prepare};
use crate::store::{ContainerPhase, ContainerRecord, new_id, now_ns};
use k8s_cri::v1 as cri;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Exit code reported when the exit status could not be observed (after a runtime restart).
pub const UNKNOWN_EXIT: i32 = 255;

/// Resolves the program: image binary paths map to the catalog binary.
#[doc(hidden)]
pub fn resolve_program(argv0: &str, binary: &Path) -> PathBuf {
    if IMAGE_BINARY_PATHS.contains(&argv0) || argv0 == "workload" || argv0 == "pause" {
        binary.to_path_buf()
    } else {
        PathBuf::from(argv0)
    }
}

/// The log file of a container: `log_path` joined lexically under the sandbox's `log_dir` (as
/// containerd's `filepath.Join`: a leading `/` does not leave the directory), "" (no log) when
/// either is empty. A `log_path` whose cleaned form leaves `log_dir` through `..`, names the
/// directory itself or holds a NUL is an InvalidArgument.
pub fn container_log_path(log_dir: &str, log_path: &str) -> Result<String> {
    if log_dir.is_empty() || log_path.is_empty() {
        return Ok(String::new());
    }
    let bad = |why: &str| Error::InvalidArgument(format!("invalid log_path {log_path:?} (log_directory {log_dir:?}): {why}"));
    if log_path.contains('\0') {
        return Err(bad("contains a NUL byte"));
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in log_path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(bad("escapes the sandbox log directory through \"..\""));
                }
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err(bad("names the log directory itself, not a file in it"));
    }
    Ok(Path::new(log_dir).join(parts.join("/")).to_string_lossy().into_owned())
}

/// The environment of a container: the image's `KEY=value` entries, then the request's (a
/// later value of a key replaces an earlier one in place).
#[doc(hidden)]
pub fn merge_env(image: &[String], req: &[cri::KeyValue]) -> Vec<String> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: &str| match out.iter_mut().find(|(kk, _)| kk == k) {
        Some(e) => e.1 = v.to_string(),
        None => out.push((k.to_string(), v.to_string())),
    };
    for e in image {
        let (k, v) = e.split_once('=').unwrap_or((e, ""));
        set(k, v);
    }
    for kv in req {
        set(&kv.key, &kv.value);
    }
    out.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

impl Runtime {
    /// CreateContainer.
    pub async fn create_container(&self, sandbox_id: &str, config: Option<cri::ContainerConfig>) -> Result<String> {
        let config = config.ok_or_else(|| Error::InvalidArgument("container config is required".into()))?;
        let md = config.metadata.clone().ok_or_else(|| Error::InvalidArgument("container config must include metadata".into()))?;
        if md.name.is_empty() {
            return Err(Error::InvalidArgument("container config must include metadata name".into()));
        }
        let image_name = config.image.as_ref().map(|i| i.image.clone()).unwrap_or_default();
        if image_name.is_empty() {
            return Err(Error::InvalidArgument("container config must include image".into()));
        }
        let (sandbox_id, log_dir) = {
            let st = lock(&self.state);
            let sid = st.sandbox_id(sandbox_id)?;
            let sb = &st.sandboxes[&sid];
            if !sb.ready {
                return Err(Error::FailedPrecondition(format!("sandbox container \"{sid}\" is not running")));
            }
            let clash = st.containers.values().any(|c| {
                c.sandbox_id == sid && c.config.metadata.as_ref().is_some_and(|m| m.name == md.name && m.attempt == md.attempt)
            });
            if clash {
                return Err(Error::AlreadyExists(format!("failed to reserve container name {:?}: name is reserved", md.name)));
            }
            (sid, sb.config.log_directory.clone())
        };
        let faults = self.faults();
        if let Some(msg) = faults.create_error.get(&md.name).or_else(|| faults.create_error.get(&image_name)) {
            return Err(Error::Unknown(format!("failed to create containerd container: {msg}")));
        }
        let entry = self
            .present_image(&image_name)
            .ok_or_else(|| Error::NotFound { kind: "image", id: image_name.clone() })?;
        let (command, args) = if !config.command.is_empty() {
            (config.command.clone(), config.args.clone())
        } else if !config.args.is_empty() {
            (entry.entrypoint.clone(), config.args.clone())
        } else {
            (entry.entrypoint.clone(), entry.cmd.clone())
        };
        let argv: Vec<String> = command.into_iter().chain(args).collect();
        let Some(argv0) = argv.first() else {
            return Err(Error::InvalidArgument("no command specified".into()));
        };
        let exec_path = resolve_program(argv0, &entry.binary);
        let env = merge_env(&entry.env, &config.envs);
        let working_dir = if !config.working_dir.is_empty() {
            config.working_dir.clone()
        } else if !entry.working_dir.is_empty() {
            entry.working_dir.clone()
        } else {
            "/".into()
        };
        let log_path = container_log_path(&log_dir, &config.log_path)?;
        let resources = config.linux.as_ref().and_then(|l| l.resources.clone());
        let id = new_id();
        let rec = ContainerRecord {
            image_ref: crate::images::repo_digest(&entry),
            image_id: crate::images::image_id(&entry),
            argv,
            exec_path,
            env,
            working_dir,
            log_path,
            memory_limit: resources.as_ref().map(|r| r.memory_limit_in_bytes).unwrap_or(0),
            resources,
            ..ContainerRecord::new(id.clone(), sandbox_id, config, now_ns())
        };
        let status = self.container_status_of(&rec);
        {
            let mut st = lock(&self.state);
            st.containers.insert(id.clone(), rec);
            self.save_container(&st, &id);
        }
        self.emit(&id, cri::ContainerEventType::ContainerCreatedEvent, None, Some(status));
        Ok(id)
    }

    /// StartContainer.
    pub async fn start_container(self: &Arc<Self>, id: &str) -> Result<()> {
        let rec = {
            let st = lock(&self.state);
            let id = st.container_id(id)?;
            st.containers[&id].clone()
        };
        if rec.phase != ContainerPhase::Created {
            return Err(Error::FailedPrecondition(format!(
                "container {:?} is in {} state",
                rec.id,
                rec.phase.cri().as_str_name()
            )));
        }
        let sb = lock(&self.state)
            .sandboxes
            .get(&rec.sandbox_id)
            .cloned()
            .ok_or_else(|| Error::NotFound { kind: "sandbox", id: rec.sandbox_id.clone() })?;
        if !sb.ready {
            return Err(Error::FailedPrecondition(format!("sandbox container \"{}\" is not running", sb.id)));
        }
        let result = self.spawn_container(&rec, &sb).await;
        if let Err(e) = &result {
            let mut st = lock(&self.state);
            if let Some(c) = st.containers.get_mut(&rec.id) {
                c.phase = ContainerPhase::Exited;
                c.finished_at = now_ns();
                c.exit_code = 128;
                c.reason = "StartError".into();
                c.message = e.to_string();
            }
            self.save_container(&st, &rec.id);
        }
        result
    }

    async fn spawn_container(self: &Arc<Self>, rec: &ContainerRecord, sb: &crate::store::SandboxRecord) -> Result<()> {
        let t0 = std::time::Instant::now();
        let netns = self.sandbox_netns(&sb.id)?;
        // Joining a v1 cgroup waits for an RCU grace period (milliseconds), so only containers
        // with a memory limit get one; the others are tracked through their process tree.
        let (cgroup, cgroup_created) = match self.container_cgroup_dir(sb, &rec.id)? {
            Some(dir) if rec.memory_limit > 0 => {
                let _g = lock(&self.cgroup_lock);
                let created = crate::cgroup::create(&dir, rec.memory_limit)?;
                (Some(dir), created)
            }
            _ => (None, vec![]),
        };
        let mounts = rec
            .config
            .mounts
            .iter()
            .filter(|m| !m.host_path.is_empty() && !m.container_path.is_empty())
            .map(|m| {
                Ok(BindMount { src: cpath(Path::new(&m.host_path))?, dst: cpath(Path::new(&m.container_path))?, readonly: m.readonly })
            })
            .collect::<Result<Vec<_>>>()?;
        tracing::debug!(took = ?t0.elapsed(), "container cgroup ready");
        let hostname = if sb.host_network { String::new() } else { sb.config.hostname.clone() };
        let io = ContainerIo::new(rec)?;
        let enter = Enter {
            netns: match &netns {
                Some(fd) => Some(fd.try_clone().map_err(Error::io("dup netns"))?),
                None => None,
            },
            mntns: None,
            utsns: None,
            fresh: Some(Fresh {
                hostname,
                resolv_conf: sb.resolv_conf.as_deref().map(cpath).transpose()?,
                hostname_file: sb.hostname_file.as_deref().map(cpath).transpose()?,
                mounts,
                top_mounts: crate::rootfs::top_mounts(),
                readonly_rootfs: rec
                    .config
                    .linux
                    .as_ref()
                    .and_then(|l| l.security_context.as_ref())
                    .is_some_and(|s| s.readonly_rootfs),
            }),
            cgroup_procs: cgroup.as_deref().map(open_cgroup_procs).transpose()?,
            workdir: Some(cpath(Path::new(&rec.working_dir))?),
            dup_fds: io.kept_fds()?,
            user: container_user(rec),
            controlling_tty: io.is_terminal(),
        };
        let (_program_fd, program) = crate::spawn::pinned_program(&rec.exec_path)
            .map_err(|e| Error::Unknown(format!("failed to start container {:?}: {e}", rec.id)))?;
        let mut cmd = tokio::process::Command::new(&program);
        if let Some(a0) = rec.argv.first() {
            cmd.arg0(a0);
        }
        cmd.args(rec.argv.iter().skip(1))
            .env_clear()
            .envs(rec.env.iter().map(|e| e.split_once('=').unwrap_or((e.as_str(), ""))))
            .kill_on_drop(false);
        let io = io.attach(&mut cmd, rec.config.stdin)?;
        prepare(cmd.as_std_mut(), &enter);
        let t = std::time::Instant::now();
        let mut child = cmd.spawn().map_err(|e| Error::Unknown(format!("failed to start container {:?}: {e}", rec.id)))?;
        let stdin = tokio::sync::Mutex::new(io.stdin(&mut child, rec.config.stdin)?);
        drop(cmd);
        drop(enter);
        tracing::debug!(took = ?t.elapsed(), "container process spawned");
        let pid = child.id().map(|p| p as i32).ok_or_else(|| Error::Unknown("container exited at once".into()))?;
        let pid_start = crate::procfs::start_time(pid);
        let log = if rec.log_path.is_empty() { None } else { Some(LogSink::open(Path::new(&rec.log_path))?) };
        let (tx, rx) = watch::channel(false);
        let live = Arc::new(Live {
            exited: rx,
            log: log.clone(),
            oom: Arc::new(AtomicBool::new(false)),
            cpu_sample: Mutex::new(None),
            stdin,
            terminal: io.terminal(),
            stdin_once: rec.config.stdin_once,
        });
        lock(&self.live).insert(rec.id.clone(), live.clone());
        let status = {
            let mut st = lock(&self.state);
            let c = st.containers.get_mut(&rec.id).ok_or_else(|| Error::NotFound { kind: "container", id: rec.id.clone() })?;
            c.phase = ContainerPhase::Running;
            c.started_at = now_ns();
            c.pid = Some(pid);
            c.pid_start = pid_start;
            c.cgroup = cgroup.clone();
            c.cgroup_created = cgroup_created;
            let s = self.container_status_of(c);
            self.save_container(&st, &rec.id);
            s
        };
        self.emit(&rec.id, cri::ContainerEventType::ContainerStartedEvent, None, Some(status));
        let copies = io.copy_output(&self.tasks, log)?;
        self.watch_faults_and_memory(rec, pid, &live);
        let rt = self.clone();
        let id = rec.id.clone();
        self.tasks.spawn(async move {
            let mut child = child;
            let status = tokio::select! {
                s = child.wait() => s.ok(),
                _ = rt.cancel.cancelled() => return,
            };
            let code = status.map(|s| {
                use std::os::unix::process::ExitStatusExt;
                s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(9))
            });
            rt.finish_container(&id, pid, code, copies, tx).await;
        });
        Ok(())
    }

    fn watch_faults_and_memory(self: &Arc<Self>, rec: &ContainerRecord, pid: i32, live: &Arc<Live>) {
        let name = rec.config.metadata.as_ref().map(|m| m.name.clone()).unwrap_or_default();
        let image = rec.config.image.as_ref().map(|i| i.image.clone()).unwrap_or_default();
        let faults = self.faults();
        if let Some(ms) = faults.crash_after_ms.get(&name).or_else(|| faults.crash_after_ms.get(&image)).copied() {
            let mut exited = live.exited.clone();
            let rt = self.clone();
            let id = rec.id.clone();
            self.tasks.spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(ms)) => {
                        if let Some(c) = lock(&rt.state).containers.get_mut(&id) {
                            c.message = "crash injected by fault".into();
                        }
                        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                    }
                    _ = exited.wait_for(|e| *e) => {}
                }
            });
        }
        if rec.memory_limit > 0 && self.cgroup_parent.is_none() {
            let limit = rec.memory_limit as u64;
            let mut exited = live.exited.clone();
            let oom = live.oom.clone();
            self.tasks.spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                        _ = exited.wait_for(|e| *e) => return,
                    }
                    if crate::procfs::rss_bytes(&crate::procfs::tree(pid)) > limit {
                        oom.store(true, Ordering::SeqCst);
                        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                        return;
                    }
                }
            });
        }
    }

    /// Records the exit of a container: waits for its log streams, kills what is left of its
    /// process group, sets code and reason.
    pub(crate) async fn finish_container(
        &self,
        id: &str,
        pid: i32,
        code: Option<i32>,
        copies: Vec<tokio::task::JoinHandle<()>>,
        tx: watch::Sender<bool>,
    ) {
        // Like the end of a pid namespace: the rest of the group goes with the main process.
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        for c in copies {
            let _ = tokio::time::timeout(Duration::from_secs(2), c).await;
        }
        let oom_flag = lock(&self.live).get(id).is_some_and(|l| l.oom.load(Ordering::SeqCst));
        let status = {
            let mut st = lock(&self.state);
            let Some(c) = st.containers.get_mut(id) else {
                let _ = tx.send(true);
                return;
            };
            let code = code.unwrap_or(UNKNOWN_EXIT);
            let oom = oom_flag || (code == 137 && c.cgroup.as_deref().is_some_and(|d| crate::cgroup::oom_kills(d) > 0));
            c.phase = ContainerPhase::Exited;
            c.finished_at = now_ns();
            c.exit_code = code;
            c.pid = None;
            c.reason = if oom {
                "OOMKilled".into()
            } else if code == 0 {
                "Completed".into()
            } else {
                "Error".into()
            };
            let s = self.container_status_of(c);
            self.save_container(&st, id);
            s
        };
        let _ = tx.send(true);
        self.emit(id, cri::ContainerEventType::ContainerStoppedEvent, None, Some(status));
    }

    /// StopContainer: SIGTERM, then SIGKILL after `timeout` seconds. Idempotent for stopped ones.
    pub async fn stop_container(&self, id: &str, timeout: i64) -> Result<()> {
        let (id, pid, cgroup) = {
            let st = lock(&self.state);
            let id = st.container_id(id)?;
            let c = &st.containers[&id];
            if c.phase != ContainerPhase::Running {
                return Ok(());
            }
            (id, c.pid, c.cgroup.clone())
        };
        let live = lock(&self.live).get(&id).cloned();
        let Some(pid) = pid else { return Ok(()) };
        let Some(live) = live else {
            // Not supervised (should not happen): kill and mark exited.
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            return Ok(());
        };
        let mut exited = live.exited.clone();
        if timeout > 0 {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            if tokio::time::timeout(Duration::from_secs(timeout as u64), exited.wait_for(|e| *e)).await.is_ok() {
                return Ok(());
            }
        }
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        if let Some(cg) = &cgroup {
            for p in crate::cgroup::procs(cg) {
                let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
            }
        }
        tokio::time::timeout(Duration::from_secs(10), exited.wait_for(|e| *e))
            .await
            .map_err(|_| Error::DeadlineExceeded(format!("container {id:?} did not exit after SIGKILL")))?
            .map_err(|_| Error::Unknown("container supervisor ended".into()))?;
        Ok(())
    }

    /// RemoveContainer: force-stops and removes. Missing ids are fine.
    pub async fn remove_container(&self, id: &str) -> Result<()> {
        let id = match lock(&self.state).container_id(id) {
            Ok(id) => id,
            Err(_) => return Ok(()),
        };
        self.stop_container(&id, 0).await?;
        let rec = {
            let mut st = lock(&self.state);
            let r = st.containers.remove(&id);
            self.save_container(&st, &id);
            r
        };
        lock(&self.live).remove(&id);
        if let Some(r) = &rec {
            self.remove_container_cgroup(r);
        }
        if let Some(r) = rec {
            let mut s = self.container_status_of(&r);
            s.state = cri::ContainerState::ContainerExited as i32;
            self.emit(&id, cri::ContainerEventType::ContainerDeletedEvent, None, Some(s));
        }
        Ok(())
    }

    pub(crate) fn container_status_of(&self, c: &ContainerRecord) -> cri::ContainerStatus {
        let image = c.config.image.clone().unwrap_or_default();
        let image_name = self
            .cfg
            .catalog
            .images
            .iter()
            .find(|e| crate::images::matches(e, &image.image))
            .map(|e| e.reference.clone())
            .unwrap_or(image.image.clone());
        cri::ContainerStatus {
            id: c.id.clone(),
            metadata: c.config.metadata.clone(),
            state: c.phase.cri() as i32,
            created_at: c.created_at,
            started_at: c.started_at,
            finished_at: c.finished_at,
            exit_code: c.exit_code,
            image: Some(cri::ImageSpec { image: image_name, ..image }),
            image_ref: c.image_ref.clone(),
            reason: c.reason.clone(),
            message: c.message.clone(),
            labels: c.config.labels.clone(),
            annotations: c.config.annotations.clone(),
            mounts: c.config.mounts.clone(),
            log_path: c.log_path.clone(),
            resources: c.resources.clone().map(|r| cri::ContainerResources { linux: Some(r), windows: None }),
            image_id: c.image_id.clone(),
            user: None,
        }
    }

    /// ContainerStatus.
    pub fn container_status(&self, id: &str, verbose: bool) -> Result<cri::ContainerStatusResponse> {
        let st = lock(&self.state);
        let id = st.container_id(id)?;
        let c = &st.containers[&id];
        let mut info = HashMap::new();
        if verbose {
            let v = serde_json::json!({ "pid": c.pid, "argv": c.argv, "execPath": c.exec_path, "env": c.env, "cgroup": c.cgroup, "sandboxID": c.sandbox_id });
            info.insert("info".to_string(), v.to_string());
        }
        Ok(cri::ContainerStatusResponse { status: Some(self.container_status_of(c)), info })
    }

    /// ListContainers.
    pub fn list_containers(&self, filter: Option<cri::ContainerFilter>) -> Vec<cri::Container> {
        let st = lock(&self.state);
        st.containers
            .values()
            .filter(|c| match &filter {
                None => true,
                Some(f) => {
                    (f.id.is_empty() || c.id.starts_with(&f.id))
                        && (f.pod_sandbox_id.is_empty() || c.sandbox_id.starts_with(&f.pod_sandbox_id))
                        && f.state.as_ref().is_none_or(|s| s.state == c.phase.cri() as i32)
                        && f.label_selector.iter().all(|(k, v)| c.config.labels.get(k) == Some(v))
                }
            })
            .map(|c| {
                let s = self.container_status_of(c);
                cri::Container {
                    id: c.id.clone(),
                    pod_sandbox_id: c.sandbox_id.clone(),
                    metadata: s.metadata,
                    image: s.image,
                    image_ref: s.image_ref,
                    state: s.state,
                    created_at: s.created_at,
                    labels: s.labels,
                    annotations: s.annotations,
                    image_id: s.image_id,
                }
            })
            .collect()
    }

    /// UpdateContainerResources (memory limit is enforced; the rest is recorded).
    pub fn update_container_resources(&self, id: &str, res: Option<cri::LinuxContainerResources>) -> Result<()> {
        let mut st = lock(&self.state);
        let id = st.container_id(id)?;
        let Some(r) = res else { return Ok(()) };
        let dir = {
            let c = st.containers.get(&id).ok_or_else(|| Error::NotFound { kind: "container", id: id.clone() })?;
            match st.sandboxes.get(&c.sandbox_id) {
                Some(sb) if c.cgroup.is_none() && r.memory_limit_in_bytes > 0 => self.container_cgroup_dir(sb, &c.id)?,
                _ => None,
            }
        };
        let c = st.containers.get_mut(&id).ok_or_else(|| Error::NotFound { kind: "container", id: id.clone() })?;
        if r.memory_limit_in_bytes > 0 {
            match (&c.cgroup, dir, c.pid) {
                (Some(cg), _, _) => crate::cgroup::set_limit(cg, r.memory_limit_in_bytes)?,
                (None, Some(cg), Some(pid)) if c.phase == ContainerPhase::Running => {
                    let created = {
                        let _g = lock(&self.cgroup_lock);
                        crate::cgroup::create(&cg, r.memory_limit_in_bytes)?
                    };
                    for p in crate::procfs::tree(pid) {
                        let _ = std::fs::write(cg.join("cgroup.procs"), p.to_string());
                    }
                    c.cgroup = Some(cg);
                    c.cgroup_created = created;
                }
                _ => {}
            }
            c.memory_limit = r.memory_limit_in_bytes;
        }
        c.resources = Some(r);
        self.save_container(&st, &id);
        Ok(())
    }

    /// ReopenContainerLog.
    pub fn reopen_container_log(&self, id: &str) -> Result<()> {
        let id = lock(&self.state).container_id(id)?;
        let running = lock(&self.state).containers.get(&id).is_some_and(|c| c.phase == ContainerPhase::Running);
        if !running {
            return Err(Error::FailedPrecondition("container is not running".into()));
        }
        if let Some(log) = lock(&self.live).get(&id).and_then(|l| l.log.clone()) {
            log.reopen()?;
        }
        Ok(())
    }

    /// The live netns/mnt/uts namespaces and cgroup of a running container (for exec).
    pub(crate) fn exec_target(&self, id: &str) -> Result<(ContainerRecord, i32)> {
        let st = lock(&self.state);
        let id = st.container_id(id)?;
        let c = st.containers[&id].clone();
        match (c.phase, c.pid) {
            (ContainerPhase::Running, Some(pid)) => Ok((c, pid)),
            _ => Err(Error::FailedPrecondition(format!("container is in {} state", c.phase.cri().as_str_name()))),
        }
    }

    /// Opens the namespaces of a running container's process.
    pub(crate) fn enter_container(&self, c: &ContainerRecord, pid: i32) -> Result<Enter> {
        let ns = |k: &str| crate::spawn::open_ns(pid, k);
        Ok(Enter {
            netns: Some(ns("net")?),
            mntns: Some(ns("mnt")?),
            utsns: Some(ns("uts")?),
            fresh: None,
            cgroup_procs: c.cgroup.as_deref().map(open_cgroup_procs).transpose()?,
            workdir: Some(cpath(Path::new(&c.working_dir))?),
            dup_fds: Vec::<(OwnedFd, i32)>::new(),
            user: container_user(c),
            controlling_tty: false,
        })
    }

    /// Where the memory cgroup of container `id` goes: below the sandbox's `cgroup_parent`
    /// when its config names one (like containerd), else below the instance parent. None when
    /// the memory controller is not available.
    pub(crate) fn container_cgroup_dir(&self, sb: &crate::store::SandboxRecord, id: &str) -> Result<Option<PathBuf>> {
        let Some(instance) = &self.cgroup_parent else { return Ok(None) };
        let parent = sb.config.linux.as_ref().map(|l| l.cgroup_parent.as_str()).unwrap_or("");
        if parent.trim_matches('/').is_empty() {
            return Ok(Some(instance.join(id)));
        }
        Ok(Some(crate::cgroup::in_hierarchy(parent)?.join(id)))
    }

    /// Removes a container's cgroup and the parents made for it that are empty now.
    pub(crate) fn remove_container_cgroup(&self, c: &ContainerRecord) {
        if let Some(cg) = &c.cgroup {
            let _g = lock(&self.cgroup_lock);
            crate::cgroup::remove(cg);
            crate::cgroup::remove_created(&c.cgroup_created);
        }
    }
}

/// The identity the container (and processes exec'd in it) runs as.
fn container_user(c: &ContainerRecord) -> Option<User> {
    User::from_security_context(c.config.linux.as_ref().and_then(|l| l.security_context.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_path_stays_under_the_sandbox_log_directory() {
        let dir = "/var/log/pods/ns_pod_uid";
        let ok = |p: &str| container_log_path(dir, p).unwrap();
        assert_eq!(ok("app/0.log"), "/var/log/pods/ns_pod_uid/app/0.log");
        // Absolute: joined like Go's filepath.Join, not replacing the directory.
        assert_eq!(ok("/etc/passwd"), "/var/log/pods/ns_pod_uid/etc/passwd");
        assert_eq!(ok("//app//./0.log"), "/var/log/pods/ns_pod_uid/app/0.log");
        assert_eq!(ok("app/../other/0.log"), "/var/log/pods/ns_pod_uid/other/0.log");
        assert_eq!(container_log_path("/var/log/pods/x/", "0.log").unwrap(), "/var/log/pods/x/0.log");
        // No log: either empty.
        assert_eq!(ok(""), "");
        assert_eq!(container_log_path("", "/etc/passwd").unwrap(), "");
        for (p, why) in [
            ("../other_pod/0.log", "escapes"),
            ("app/../../x.log", "escapes"),
            ("/../../../../etc/shadow", "escapes"),
            ("..", "escapes"),
            ("/", "log directory itself"),
            ("app/..", "log directory itself"),
            ("0.log\0x", "NUL"),
        ] {
            let e = container_log_path(dir, p).unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument, "{p:?}: {e}");
            let msg = e.to_string();
            assert!(msg.contains(&format!("log_path {p:?}")) && msg.contains(why) && msg.contains(dir), "{msg}");
        }
    }
}
