//! Persistent records of sandboxes, containers, images and IP allocations.
//!
//! `<state-dir>/state.json` holds the pod CIDR, IP allocations and images; every sandbox and
//! container has its own file under `<state-dir>/records/` (as containerd keeps one metadata
//! entry per object), so that a change costs one record's encoding, not the whole state's.
use crate::error::{Error, Result};
use k8s_cri::v1 as cri;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A pod sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxRecord {
    /// 64-hex id.
    pub id: String,
    /// The request's config.
    pub config: cri::PodSandboxConfig,
    /// Ready or NotReady.
    pub ready: bool,
    /// Creation time, ns since the epoch.
    pub created_at: i64,
    /// Pod IP ("" for host-network pods or after stop).
    pub ip: String,
    /// Bind-mounted netns file (None: host network).
    pub netns_path: Option<PathBuf>,
    /// Node-side veth name.
    pub veth: Option<String>,
    /// resolv.conf written for this sandbox.
    pub resolv_conf: Option<PathBuf>,
    /// `hostname` file written for this sandbox (bound over /etc/hostname in its containers).
    #[serde(default)]
    pub hostname_file: Option<PathBuf>,
    /// Host network (namespace_options.network == NODE).
    pub host_network: bool,
    /// The runtime handler it was created with ("" for the default).
    #[serde(default)]
    pub runtime_handler: String,
}

/// Container states.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum ContainerPhase {
    /// Created, not started.
    Created,
    /// Running.
    Running,
    /// Exited.
    Exited,
}

impl ContainerPhase {
    /// The CRI enum value.
    pub fn cri(self) -> cri::ContainerState {
        match self {
            ContainerPhase::Created => cri::ContainerState::ContainerCreated,
            ContainerPhase::Running => cri::ContainerState::ContainerRunning,
            ContainerPhase::Exited => cri::ContainerState::ContainerExited,
        }
    }
}

/// A container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// 64-hex id.
    pub id: String,
    /// Its sandbox.
    pub sandbox_id: String,
    /// The request's config.
    pub config: cri::ContainerConfig,
    /// Resolved image reference.
    pub image_ref: String,
    /// Image id (`sha256:…`).
    pub image_id: String,
    /// argv resolved from the image and the request (`argv[0]` as the image names it).
    pub argv: Vec<String>,
    /// Host binary executed for `argv[0]`.
    pub exec_path: PathBuf,
    /// Environment `KEY=value` (image env, then request env).
    pub env: Vec<String>,
    /// Working directory.
    pub working_dir: String,
    /// Full log path ("" when the request gave none).
    pub log_path: String,
    /// State.
    pub phase: ContainerPhase,
    /// Times, ns since the epoch (0: not yet).
    pub created_at: i64,
    /// Start time.
    pub started_at: i64,
    /// Finish time.
    pub finished_at: i64,
    /// Exit code.
    pub exit_code: i32,
    /// Reason (Completed, Error, OOMKilled).
    pub reason: String,
    /// Message.
    pub message: String,
    /// Host pid while running.
    pub pid: Option<i32>,
    /// Start time of the pid (field 22 of /proc/pid/stat) to recognise it after a restart.
    pub pid_start: Option<u64>,
    /// Memory limit in bytes (0: none).
    pub memory_limit: i64,
    /// Memory cgroup directory, if one was made.
    pub cgroup: Option<PathBuf>,
    /// Parent directories made for that cgroup (deepest first), removed with it when empty.
    #[serde(default)]
    pub cgroup_created: Vec<PathBuf>,
    /// Resources as last set.
    pub resources: Option<cri::LinuxContainerResources>,
}

impl ContainerRecord {
    /// A container in phase Created at `created_at` with nothing resolved yet: no image, argv,
    /// environment, log, process, cgroup or resources.
    pub fn new(id: String, sandbox_id: String, config: cri::ContainerConfig, created_at: i64) -> Self {
        ContainerRecord {
            id,
            sandbox_id,
            config,
            image_ref: String::new(),
            image_id: String::new(),
            argv: vec![],
            exec_path: PathBuf::new(),
            env: vec![],
            working_dir: String::new(),
            log_path: String::new(),
            phase: ContainerPhase::Created,
            created_at,
            started_at: 0,
            finished_at: 0,
            exit_code: 0,
            reason: String::new(),
            message: String::new(),
            pid: None,
            pid_start: None,
            memory_limit: 0,
            cgroup: None,
            cgroup_created: vec![],
            resources: None,
        }
    }
}

/// Everything persisted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// Sandboxes by id (one file each under `records/`).
    #[serde(default, skip_serializing)]
    pub sandboxes: BTreeMap<String, SandboxRecord>,
    /// Containers by id (one file each under `records/`).
    #[serde(default, skip_serializing)]
    pub containers: BTreeMap<String, ContainerRecord>,
    /// Pod CIDR from UpdateRuntimeConfig.
    pub pod_cidr: Option<String>,
    /// Allocated pod IPs.
    pub allocated_ips: BTreeSet<String>,
    /// Images present (pulled or preloaded), by reference.
    pub images_present: BTreeSet<String>,
    /// Images removed by RemoveImage (so preloaded ones stay removed across restarts).
    pub images_removed: BTreeSet<String>,
}

impl State {
    /// The state file.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("state.json")
    }

    /// The directory of the record files.
    pub fn records_dir(state_dir: &Path) -> PathBuf {
        state_dir.join("records")
    }

    /// Loads the state, or an empty one when nothing was saved yet.
    pub fn load(state_dir: &Path) -> Result<Self> {
        let p = Self::path(state_dir);
        let mut st: State = match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map_err(|source| Error::Json { context: format!("state {}", p.display()), source })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(Error::io(format!("read {}", p.display()))(e)),
        };
        let dir = Self::records_dir(state_dir);
        let entries = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(st),
            Err(e) => return Err(Error::io(format!("read {}", dir.display()))(e)),
        };
        for e in entries {
            let e = e.map_err(Error::io(format!("read {}", dir.display())))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".json") {
                continue;
            }
            let bytes = std::fs::read(e.path()).map_err(Error::io(format!("read {}", e.path().display())))?;
            st.insert_record(&name, &bytes).map_err(|err| match err {
                Error::Json { source, .. } => Error::Json { context: format!("record {}", e.path().display()), source },
                other => other,
            })?;
        }
        Ok(st)
    }

    /// The record file name of a sandbox.
    pub fn sandbox_file(id: &str) -> String {
        format!("sandbox-{id}.json")
    }

    /// The record file name of a container.
    pub fn container_file(id: &str) -> String {
        format!("container-{id}.json")
    }

    /// Decodes one record file (by its name) into the state.
    pub fn insert_record(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        let json = |source| Error::Json { context: format!("record {name}"), source };
        if name.starts_with("sandbox-") {
            let r: SandboxRecord = serde_json::from_slice(bytes).map_err(json)?;
            self.sandboxes.insert(r.id.clone(), r);
        } else if name.starts_with("container-") {
            let r: ContainerRecord = serde_json::from_slice(bytes).map_err(json)?;
            self.containers.insert(r.id.clone(), r);
        }
        Ok(())
    }

    /// Every record encoded: (file name, bytes).
    pub fn record_files(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let enc = |name: String, r: serde_json::Result<Vec<u8>>| r.map(|b| (name, b)).map_err(|source| Error::Json { context: "encode record".into(), source });
        let sandboxes = self.sandboxes.values().map(|r| enc(Self::sandbox_file(&r.id), serde_json::to_vec(r)));
        let containers = self.containers.values().map(|r| enc(Self::container_file(&r.id), serde_json::to_vec(r)));
        sandboxes.chain(containers).collect()
    }

    /// Writes `state.json` (pod CIDR, IPs, images) atomically.
    pub fn save_meta(&self, state_dir: &Path) -> Result<()> {
        let bytes = serde_json::to_vec(self).map_err(|source| Error::Json { context: "encode state".into(), source })?;
        write_atomic(state_dir, "state.json", &bytes)
    }

    /// Writes sandbox `id`'s record, or removes its file when the state no longer has it.
    pub fn save_sandbox(&self, state_dir: &Path, id: &str) -> Result<()> {
        save_record(state_dir, &Self::sandbox_file(id), self.sandboxes.get(id))
    }

    /// Writes container `id`'s record, or removes its file when the state no longer has it.
    pub fn save_container(&self, state_dir: &Path, id: &str) -> Result<()> {
        save_record(state_dir, &Self::container_file(id), self.containers.get(id))
    }

    /// Writes everything, and removes record files of objects the state no longer has.
    pub fn save(&self, state_dir: &Path) -> Result<()> {
        self.save_meta(state_dir)?;
        let dir = Self::records_dir(state_dir);
        let files = self.record_files()?;
        let keep: BTreeSet<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".json") && !keep.contains(name.as_str()) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        files.iter().try_for_each(|(name, bytes)| write_atomic(&dir, name, bytes))
    }

    /// Finds a sandbox by id or unique id prefix.
    pub fn sandbox_id(&self, id: &str) -> Result<String> {
        find_id(self.sandboxes.keys(), id).ok_or_else(|| Error::NotFound { kind: "sandbox", id: id.to_string() })
    }

    /// Finds a container by id or unique id prefix.
    pub fn container_id(&self, id: &str) -> Result<String> {
        find_id(self.containers.keys(), id).ok_or_else(|| Error::NotFound { kind: "container", id: id.to_string() })
    }
}

fn find_id<'a>(keys: impl Iterator<Item = &'a String>, id: &str) -> Option<String> {
    if id.is_empty() {
        return None;
    }
    let mut found = None;
    for k in keys {
        if k == id {
            return Some(k.clone());
        }
        if k.starts_with(id) {
            if found.is_some() {
                return None;
            }
            found = Some(k.clone());
        }
    }
    found
}

/// Writes `dir/name` through a temporary file and a rename.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let (p, tmp) = (dir.join(name), dir.join(format!("{name}.tmp")));
    std::fs::write(&tmp, bytes).map_err(Error::io(format!("write {}", tmp.display())))?;
    std::fs::rename(&tmp, &p).map_err(Error::io(format!("rename {}", p.display())))
}

fn save_record<T: Serialize>(state_dir: &Path, name: &str, rec: Option<&T>) -> Result<()> {
    let dir = State::records_dir(state_dir);
    match rec {
        Some(r) => {
            let bytes = serde_json::to_vec(r).map_err(|source| Error::Json { context: format!("encode {name}"), source })?;
            write_atomic(&dir, name, &bytes)
        }
        None => match std::fs::remove_file(dir.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(format!("remove {}", dir.join(name).display()))(e)),
            _ => Ok(()),
        },
    }
}

/// A fresh 64-hex id.
pub fn new_id() -> String {
    use sha2::{Digest, Sha256};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = Sha256::new();
    h.update(now_ns().to_le_bytes());
    h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    if let Ok(b) = std::fs::read("/proc/sys/kernel/random/uuid") {
        h.update(b);
    }
    hex::encode(h.finalize())
}

/// Now in ns since the epoch.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_prefix_lookup() {
        let mut s = State::default();
        for id in ["abc1", "abc2", "def"] {
            let rec = ContainerRecord { exec_path: PathBuf::from("/x"), ..ContainerRecord::new(id.into(), "s".into(), Default::default(), 0) };
            s.containers.insert(id.into(), rec);
        }
        assert_eq!(s.container_id("def").unwrap(), "def");
        assert_eq!(s.container_id("d").unwrap(), "def");
        assert!(matches!(s.container_id("abc"), Err(Error::NotFound { .. })));
        assert!(s.container_id("").is_err());
        assert_ne!(new_id(), new_id());
        assert_eq!(new_id().len(), 64);
    }

    fn sandbox(id: &str) -> SandboxRecord {
        SandboxRecord {
            id: id.into(),
            config: Default::default(),
            ready: true,
            created_at: 1,
            ip: "10.244.0.2".into(),
            netns_path: None,
            veth: None,
            resolv_conf: None,
            hostname_file: None,
            host_network: false,
            runtime_handler: String::new(),
        }
    }

    /// Each object is its own file: saving one writes only it, a removed object's file goes, and
    /// a load sees exactly what was saved.
    #[test]
    fn records_are_saved_and_removed_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(State::records_dir(dir.path())).unwrap();
        let mut st = State { pod_cidr: Some("10.244.0.0/24".into()), ..Default::default() };
        st.sandboxes.insert("s1".into(), sandbox("s1"));
        st.containers.insert("c1".into(), ContainerRecord::new("c1".into(), "s1".into(), Default::default(), 5));
        st.save_meta(dir.path()).unwrap();
        st.save_sandbox(dir.path(), "s1").unwrap();
        let back = State::load(dir.path()).unwrap();
        assert_eq!(back.pod_cidr.as_deref(), Some("10.244.0.0/24"));
        assert_eq!(back.sandboxes.keys().collect::<Vec<_>>(), ["s1"]);
        assert!(back.containers.is_empty(), "a container nobody saved was loaded");
        st.save_container(dir.path(), "c1").unwrap();
        assert_eq!(State::load(dir.path()).unwrap().containers["c1"].created_at, 5);
        st.containers.remove("c1");
        st.save_container(dir.path(), "c1").unwrap();
        assert!(State::load(dir.path()).unwrap().containers.is_empty(), "a removed container came back");
        let meta = std::fs::read_to_string(State::path(dir.path())).unwrap();
        assert!(!meta.contains("s1"), "state.json repeats the records: {meta}");
        // A full save drops files of objects the state no longer has.
        st.save_container(dir.path(), "c1").unwrap();
        std::fs::write(State::records_dir(dir.path()).join(State::container_file("gone")), b"{}").unwrap();
        st.save(dir.path()).unwrap();
        let back = State::load(dir.path()).unwrap();
        assert_eq!((back.sandboxes.len(), back.containers.len()), (1, 0));
    }
}