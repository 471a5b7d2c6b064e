//! The runtime core: shared state, faults, events, pod sandboxes and networking.
use crate::calllog::CallLog;
use crate::config::{Config, Faults, ImageEntry};
use crate::error::{Error, Result};
use crate::net::{Cidr, HostPort, Net};
use crate::store::{SandboxRecord, State, new_id, now_ns};
use k8s_cri::v1 as cri;
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Live (not persisted) data of a running container.
pub struct Live {
    /// Becomes true when the container has exited and its record is final.
    pub exited: watch::Receiver<bool>,
    /// The log file.
    pub log: Option<Arc<crate::logs::LogSink>>,
    /// Set when the RSS watcher killed it for exceeding its limit.
    pub oom: Arc<AtomicBool>,
    /// Last CPU sample (cpu ns, wall ns) for usage_nano_cores.
    pub cpu_sample: Mutex<Option<(u64, i64)>>,
    /// The container's stdin, for a container created with `stdin` (fed by attaches); `None`
    /// without one, after `stdin_once` closed it, or for a container adopted after a restart.
    pub stdin: tokio::sync::Mutex<Option<Box<dyn tokio::io::AsyncWrite + Send + Unpin>>>,
    /// The master side of the container's terminal, for a container created with `tty`
    /// (attaches' resizes set its size).
    pub terminal: Option<Arc<std::os::fd::OwnedFd>>,
    /// `stdin_once`: the first attach that ends its input closes the container's stdin.
    pub stdin_once: bool,
}

struct FaultState {
    faults: Faults,
    file_mtime: Option<SystemTime>,
}

/// The runtime shared by the gRPC services and the handle.
pub struct Runtime {
    /// Configuration.
    pub cfg: Config,
    pub(crate) state: Mutex<State>,
    pub(crate) live: Mutex<HashMap<String, Arc<Live>>>,
    pub(crate) netns: Mutex<HashMap<String, Arc<OwnedFd>>>,
    pub(crate) net: Net,
    pub(crate) created_bridge: AtomicBool,
    pub(crate) hostports_programmed: AtomicBool,
    pub(crate) events: broadcast::Sender<cri::ContainerEventResponse>,
    /// Container events a slow GetContainerEvents subscriber missed (reported, never silent).
    pub(crate) events_dropped: Arc<std::sync::atomic::AtomicU64>,
    faults: Mutex<FaultState>,
    pub(crate) cgroup_parent: Option<PathBuf>,
    /// Serialises cgroup creation and removal (one container's removal may prune a parent
    /// directory another container is being created in).
    pub(crate) cgroup_lock: Mutex<()>,
    pub(crate) tasks: TaskTracker,
    pub(crate) cancel: CancellationToken,
    pub(crate) calllog: CallLog,
}

/// Locks a mutex, recovering from poisoning (a panicked holder leaves consistent data here).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Runtime {
    /// Builds the runtime: loads persisted state, opens netlink, makes directories.
    pub fn new(cfg: Config) -> Result<Arc<Self>> {
        cfg.catalog.validate().map_err(|e| Error::InvalidArgument(format!("catalog: {e}")))?;
        let sd = &cfg.state_dir;
        for d in [sd.clone(), sd.join("netns"), sd.join("sandboxes"), State::records_dir(sd)] {
            std::fs::create_dir_all(&d).map_err(Error::io(format!("mkdir {}", d.display())))?;
        }
        let mut state = State::load(sd)?;
        if state.pod_cidr.is_none() {
            state.pod_cidr = cfg.pod_cidr.clone();
        }
        for e in &cfg.catalog.images {
            if e.preloaded && !state.images_removed.contains(&e.reference) {
                state.images_present.insert(e.reference.clone());
            }
        }
        let net = Net::new(&cfg.bridge)?;
        let calllog = CallLog::open(&sd.join("cri-calls.jsonl"))?;
        let (events, _) = broadcast::channel(cfg.event_buffer.max(1));
        if let Some(p) = &cfg.cgroup_parent {
            crate::cgroup::in_hierarchy(p)?;
        }
        let cgroup_parent = crate::cgroup::instance_parent(sd, cfg.cgroup_parent.as_deref());
        let faults = cfg.faults.clone();
        let rt = Arc::new(Runtime {
            cfg,
            state: Mutex::new(state),
            live: Mutex::new(HashMap::new()),
            netns: Mutex::new(HashMap::new()),
            net,
            created_bridge: AtomicBool::new(false),
            hostports_programmed: AtomicBool::new(false),
            events,
            events_dropped: Arc::default(),
            faults: Mutex::new(FaultState { faults, file_mtime: None }),
            cgroup_parent,
            cgroup_lock: Mutex::new(()),
            tasks: TaskTracker::new(),
            cancel: CancellationToken::new(),
            calllog,
        });
        Ok(rt)
    }

    /// Saves the state file.
    pub(crate) fn save(&self, st: &State) {
        if let Err(e) = st.save(&self.cfg.state_dir) {
            tracing::warn!("saving state: {e}");
        }
    }

    /// Saves `state.json` only (pod CIDR, IPs, images).
    pub(crate) fn save_meta(&self, st: &State) {
        if let Err(e) = st.save_meta(&self.cfg.state_dir) {
            tracing::warn!("saving state: {e}");
        }
    }

    /// Saves one sandbox's record (removing its file when it is gone).
    pub(crate) fn save_sandbox(&self, st: &State, id: &str) {
        if let Err(e) = st.save_sandbox(&self.cfg.state_dir, id) {
            tracing::warn!("saving sandbox {id}: {e}");
        }
    }

    /// Saves one container's record (removing its file when it is gone).
    pub(crate) fn save_container(&self, st: &State, id: &str) {
        if let Err(e) = st.save_container(&self.cfg.state_dir, id) {
            tracing::warn!("saving container {id}: {e}");
        }
    }

    /// Current faults (re-reading `<state-dir>/faults.json` when it changed).
    pub fn faults(&self) -> Faults {
        let path = self.cfg.state_dir.join("faults.json");
        let mtime = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        let mut g = lock(&self.faults);
        if mtime.is_some() && mtime != g.file_mtime {
            match std::fs::read(&path).map(|b| serde_json::from_slice::<Faults>(&b)) {
                Ok(Ok(f)) => g.faults = f,
                Ok(Err(e)) => tracing::warn!("faults.json: {e}"),
                Err(e) => tracing::warn!("faults.json: {e}"),
            }
            g.file_mtime = mtime;
        }
        g.faults.clone()
    }

    /// Replaces the faults.
    pub fn set_faults(&self, f: Faults) {
        lock(&self.faults).faults = f;
    }

    /// The catalog entry of a present image.
    pub(crate) fn present_image(&self, query: &str) -> Option<ImageEntry> {
        let st = lock(&self.state);
        self.cfg
            .catalog
            .images
            .iter()
            .find(|e| st.images_present.contains(&e.reference) && crate::images::matches(e, query))
            .cloned()
    }

    /// The CRI image `query` names, with every present name of it (one image may have several),
    /// if it is present.
    pub(crate) fn present_cri_image(&self, query: &str) -> Option<cri::Image> {
        let st = lock(&self.state);
        crate::images::present_image(&self.cfg.catalog, &st.images_present, query).map(|names| crate::images::to_cri(&names))
    }

    pub(crate) fn emit(&self, id: &str, kind: cri::ContainerEventType, sandbox: Option<cri::PodSandboxStatus>, status: Option<cri::ContainerStatus>) {
        let _ = self.events.send(cri::ContainerEventResponse {
            container_id: id.to_string(),
            container_event_type: kind as i32,
            created_at: now_ns(),
            pod_sandbox_status: sandbox,
            containers_statuses: status.into_iter().collect(),
        });
    }

    /// Sets the pod CIDR (UpdateRuntimeConfig) and makes the bridge.
    pub async fn set_pod_cidr(&self, cidr: &str) -> Result<()> {
        if cidr.is_empty() {
            return Ok(());
        }
        let c = Cidr::parse(cidr)?;
        self.ensure_bridge(&c).await?;
        let mut st = lock(&self.state);
        st.pod_cidr = Some(cidr.to_string());
        self.save_meta(&st);
        Ok(())
    }

    async fn ensure_bridge(&self, c: &Cidr) -> Result<()> {
        let before = self.net.bridge_exists().await?;
        self.net.ensure_bridge(c).await?;
        if !before {
            self.created_bridge.store(true, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Whether the runtime can run containers: its state directory takes writes and every
    /// catalog image's binary is an executable file (or a `runtime_not_ready` fault says no).
    /// `Err` carries the message of RuntimeReady=false.
    pub fn runtime_ready(&self) -> std::result::Result<(), String> {
        if let Some(msg) = self.faults().runtime_not_ready {
            return Err(msg);
        }
        let probe = self.cfg.state_dir.join(".ready-probe");
        if let Err(e) = std::fs::write(&probe, b"") {
            return Err(format!("state directory {} is not writable: {e}", self.cfg.state_dir.display()));
        }
        let _ = std::fs::remove_file(&probe);
        for img in &self.cfg.catalog.images {
            let ok = std::fs::metadata(&img.binary).is_ok_and(|m| {
                use std::os::unix::fs::PermissionsExt;
                m.is_file() && m.permissions().mode() & 0o111 != 0
            });
            if !ok {
                return Err(format!("image {}: binary {} is not an executable file", img.reference, img.binary.display()));
            }
        }
        Ok(())
    }

    /// Whether the network is ready (a pod CIDR is known).
    pub fn network_ready(&self) -> bool {
        lock(&self.state).pod_cidr.is_some()
    }

    // ---- sandboxes ----

    /// RunPodSandbox.
    pub async fn run_pod_sandbox(&self, config: Option<cri::PodSandboxConfig>, runtime_handler: &str) -> Result<String> {
        let config = config.ok_or_else(|| Error::InvalidArgument("sandbox config is required".into()))?;
        if !runtime_handler.is_empty() && !self.cfg.runtime_handlers.iter().any(|h| h == runtime_handler) {
            // containerd's text for a handler its configuration does not name.
            return Err(Error::Unknown(format!("failed to get sandbox runtime: no runtime for {runtime_handler:?} is configured")));
        }
        let md = config
            .metadata
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument("sandbox config must include metadata".into()))?;
        if md.name.is_empty() {
            return Err(Error::InvalidArgument("sandbox config must include metadata name".into()));
        }
        crate::net::validate_port_mappings(&config.port_mappings)?;
        if let Some(msg) = self.faults().sandbox_error.get(&md.name) {
            return Err(Error::Unknown(format!("failed to setup network for sandbox {:?}: {msg}", md.name)));
        }
        {
            let st = lock(&self.state);
            if st.sandboxes.values().any(|s| {
                s.config.metadata.as_ref().is_some_and(|m| m.name == md.name && m.namespace == md.namespace && m.uid == md.uid && m.attempt == md.attempt)
            }) {
                return Err(Error::AlreadyExists(format!(
                    "failed to reserve sandbox name \"{}_{}_{}_{}\": name is reserved",
                    md.name, md.namespace, md.uid, md.attempt
                )));
            }
        }
        let host_network = config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.as_ref())
            .is_some_and(|n| n.network == cri::NamespaceMode::Node as i32);
        let id = new_id();
        let sb_dir = self.cfg.state_dir.join("sandboxes").join(&id);
        std::fs::create_dir_all(&sb_dir).map_err(Error::io(format!("mkdir {}", sb_dir.display())))?;
        if !config.log_directory.is_empty() {
            std::fs::create_dir_all(&config.log_directory).map_err(Error::io(format!("mkdir {}", config.log_directory)))?;
        }
        let resolv_conf = match &config.dns_config {
            Some(d) if !(d.servers.is_empty() && d.searches.is_empty() && d.options.is_empty()) => {
                let mut text = String::new();
                if !d.searches.is_empty() {
                    text.push_str(&format!("search {}\n", d.searches.join(" ")));
                }
                for s in &d.servers {
                    text.push_str(&format!("nameserver {s}\n"));
                }
                if !d.options.is_empty() {
                    text.push_str(&format!("options {}\n", d.options.join(" ")));
                }
                let p = sb_dir.join("resolv.conf");
                std::fs::write(&p, text).map_err(Error::io(format!("write {}", p.display())))?;
                Some(p)
            }
            _ => None,
        };
        // Like containerd: `<hostname>\n` (the node's name when the config has none).
        let hostname_file = {
            let name = if config.hostname.is_empty() {
                nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default()
            } else {
                config.hostname.clone()
            };
            let p = sb_dir.join("hostname");
            std::fs::write(&p, format!("{name}\n")).map_err(Error::io(format!("write {}", p.display())))?;
            Some(p)
        };
        let mut rec = SandboxRecord {
            id: id.clone(),
            config,
            ready: true,
            created_at: now_ns(),
            ip: String::new(),
            netns_path: None,
            veth: None,
            resolv_conf,
            hostname_file,
            host_network,
            runtime_handler: runtime_handler.to_string(),
        };
        if !host_network {
            let cidr = lock(&self.state).pod_cidr.clone();
            let Some(cidr) = cidr else {
                let _ = std::fs::remove_dir_all(&sb_dir);
                return Err(Error::Unknown(format!(
                    "failed to setup network for sandbox \"{id}\": cni plugin not initialized"
                )));
            };
            let cidr = Cidr::parse(&cidr)?;
            let ip = {
                let mut st = lock(&self.state);
                let ip = cidr.allocate(&st.allocated_ips).ok_or_else(|| Error::Unknown(format!("no free IP in {}/{}", cidr.net, cidr.prefix)))?;
                st.allocated_ips.insert(ip.to_string());
                ip
            };
            self.ensure_bridge(&cidr).await?;
            let path = self.cfg.state_dir.join("netns").join(&id);
            let t = std::time::Instant::now();
            let r = self.net.setup_pod(&id, &path, &cidr, ip).await;
            tracing::debug!(took = ?t.elapsed(), "pod network set up");
            match r {
                Ok(pn) => {
                    rec.ip = ip.to_string();
                    rec.netns_path = Some(pn.netns_path);
                    rec.veth = Some(pn.veth);
                    lock(&self.netns).insert(id.clone(), Arc::new(pn.fd));
                }
                Err(e) => {
                    let mut st = lock(&self.state);
                    st.allocated_ips.remove(&ip.to_string());
                    drop(st);
                    let _ = std::fs::remove_dir_all(&sb_dir);
                    return Err(Error::Unknown(format!("failed to setup network for sandbox \"{id}\": {e}")));
                }
            }
        }
        let has_ports = rec.config.port_mappings.iter().any(|p| p.host_port > 0);
        {
            let mut st = lock(&self.state);
            st.sandboxes.insert(id.clone(), rec);
            self.save_sandbox(&st, &id);
            self.save_meta(&st);
        }
        if has_ports
            && let Err(e) = self.sync_hostports().await {
                let _ = self.stop_pod_sandbox(&id).await;
                let _ = self.remove_pod_sandbox(&id).await;
                return Err(e);
            }
        Ok(id)
    }

    /// Rewrites the hostPort DNAT table from the ready sandboxes.
    pub(crate) async fn sync_hostports(&self) -> Result<()> {
        let ports: Vec<HostPort> = {
            let st = lock(&self.state);
            st.sandboxes
                .values()
                .filter(|s| s.ready && !s.ip.is_empty())
                .flat_map(|s| crate::net::pod_hostports(&s.ip, &s.config.port_mappings))
                .collect()
        };
        if ports.is_empty() && !self.hostports_programmed.load(Ordering::SeqCst) {
            return Ok(());
        }
        crate::net::apply_hostports(&ports).await?;
        self.hostports_programmed.store(!ports.is_empty(), Ordering::SeqCst);
        Ok(())
    }

    /// StopPodSandbox: kills its containers, tears its network down. Idempotent.
    pub async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        let (id, containers) = {
            let st = lock(&self.state);
            let id = st.sandbox_id(id)?;
            let cs: Vec<String> = st.containers.values().filter(|c| c.sandbox_id == id).map(|c| c.id.clone()).collect();
            (id, cs)
        };
        for c in containers {
            self.stop_container(&c, 0).await?;
        }
        let (veth, netns, ip, had_ports) = {
            let mut st = lock(&self.state);
            let Some(s) = st.sandboxes.get_mut(&id) else { return Ok(()) };
            if !s.ready {
                return Ok(());
            }
            s.ready = false;
            let out = (s.veth.take(), s.netns_path.take(), std::mem::take(&mut s.ip), s.config.port_mappings.iter().any(|p| p.host_port > 0));
            if !out.2.is_empty() {
                st.allocated_ips.remove(&out.2);
            }
            self.save_sandbox(&st, &id);
            self.save_meta(&st);
            out
        };
        let _ = ip;
        if let Some(v) = veth {
            self.net.delete_link(&v).await?;
        }
        lock(&self.netns).remove(&id);
        if let Some(p) = netns {
            crate::net::remove_netns(&p);
        }
        if had_ports {
            self.sync_hostports().await?;
        }
        Ok(())
    }

    /// RemovePodSandbox: stops it if needed and removes it with its containers. Missing ids are fine.
    pub async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        let id = match lock(&self.state).sandbox_id(id) {
            Ok(id) => id,
            Err(_) => return Ok(()),
        };
        self.stop_pod_sandbox(&id).await?;
        let containers: Vec<String> = lock(&self.state).containers.values().filter(|c| c.sandbox_id == id).map(|c| c.id.clone()).collect();
        for c in containers {
            self.remove_container(&c).await?;
        }
        let mut st = lock(&self.state);
        st.sandboxes.remove(&id);
        self.save_sandbox(&st, &id);
        drop(st);
        let _ = std::fs::remove_dir_all(self.cfg.state_dir.join("sandboxes").join(&id));
        Ok(())
    }

    pub(crate) fn sandbox_status_of(&self, s: &SandboxRecord) -> cri::PodSandboxStatus {
        let ns = s
            .config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|c| c.namespace_options.clone());
        cri::PodSandboxStatus {
            id: s.id.clone(),
            metadata: s.config.metadata.clone(),
            state: if s.ready { cri::PodSandboxState::SandboxReady } else { cri::PodSandboxState::SandboxNotready } as i32,
            created_at: s.created_at,
            network: Some(cri::PodSandboxNetworkStatus { ip: s.ip.clone(), additional_ips: vec![] }),
            linux: Some(cri::LinuxPodSandboxStatus { namespaces: Some(cri::Namespace { options: ns }) }),
            labels: s.config.labels.clone(),
            annotations: s.config.annotations.clone(),
            runtime_handler: s.runtime_handler.clone(),
        }
    }

    /// PodSandboxStatus.
    pub fn pod_sandbox_status(&self, id: &str, verbose: bool) -> Result<cri::PodSandboxStatusResponse> {
        let st = lock(&self.state);
        let id = st.sandbox_id(id)?;
        let s = &st.sandboxes[&id];
        let status = self.sandbox_status_of(s);
        let mut info = HashMap::new();
        if verbose {
            let v = serde_json::json!({
                "netns": s.netns_path, "veth": s.veth, "hostNetwork": s.host_network,
                "resolvConf": s.resolv_conf, "config": s.config,
            });
            info.insert("info".to_string(), v.to_string());
        }
        let containers_statuses = st.containers.values().filter(|c| c.sandbox_id == id).map(|c| self.container_status_of(c)).collect();
        Ok(cri::PodSandboxStatusResponse { status: Some(status), info, containers_statuses, timestamp: now_ns() })
    }

    /// ListPodSandbox.
    pub fn list_pod_sandbox(&self, filter: Option<cri::PodSandboxFilter>) -> Vec<cri::PodSandbox> {
        let st = lock(&self.state);
        st.sandboxes
            .values()
            .filter(|s| match &filter {
                None => true,
                Some(f) => {
                    (f.id.is_empty() || s.id.starts_with(&f.id))
                        && f.state.as_ref().is_none_or(|v| {
                            v.state == if s.ready { cri::PodSandboxState::SandboxReady } else { cri::PodSandboxState::SandboxNotready } as i32
                        })
                        && f.label_selector.iter().all(|(k, v)| s.config.labels.get(k) == Some(v))
                }
            })
            .map(|s| cri::PodSandbox {
                id: s.id.clone(),
                metadata: s.config.metadata.clone(),
                state: if s.ready { cri::PodSandboxState::SandboxReady } else { cri::PodSandboxState::SandboxNotready } as i32,
                created_at: s.created_at,
                labels: s.config.labels.clone(),
                annotations: s.config.annotations.clone(),
                runtime_handler: s.runtime_handler.clone(),
            })
            .collect()
    }

    /// The netns fd of a ready sandbox (None for host network).
    pub(crate) fn sandbox_netns(&self, id: &str) -> Result<Option<Arc<OwnedFd>>> {
        if let Some(fd) = lock(&self.netns).get(id) {
            return Ok(Some(fd.clone()));
        }
        let path = lock(&self.state).sandboxes.get(id).and_then(|s| s.netns_path.clone());
        match path {
            None => Ok(None),
            Some(p) => {
                let fd = Arc::new(crate::net::open_netns(&p)?);
                lock(&self.netns).insert(id.to_string(), fd.clone());
                Ok(Some(fd))
            }
        }
    }
}
