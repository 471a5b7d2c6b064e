//! Test world for fake-cri: a namespace holder (`unshare --net --mount --pid --fork --kill-child
//! --mount-proc sleep`) and fake-cri started inside it with `nsenter`, so nothing touches the
//! host network; a CRI client over the socket; helpers to act inside the node namespace.
#![allow(dead_code)]

use fake_cri::client::{Client, connect};
use k8s_cri::v1 as cri;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const CIDR: &str = "10.244.1.0/24";
pub const IMAGE: &str = fake_cri::WORKLOAD_IMAGE;

/// The workload binary: $NODEKIT_WORKLOAD_BIN, or a debug build of the `workload` package,
/// made once per nextest run (a lock file plus a stamp named after `NEXTEST_RUN_ID`).
pub fn workload_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("NODEKIT_WORKLOAD_BIN") {
            return PathBuf::from(p);
        }
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| manifest.join("../target"));
        let tmp = target.join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let lock = std::fs::File::create(tmp.join("fake-cri-tests-workload.lock")).unwrap();
        lock.lock().unwrap();
        let run = std::env::var("NEXTEST_RUN_ID").unwrap_or_else(|_| format!("pid-{}", std::process::id()));
        let stamp = tmp.join("fake-cri-tests-workload.stamp");
        if std::fs::read_to_string(&stamp).ok().as_deref() != Some(run.as_str()) {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let st = Command::new(cargo).args(["build", "-q", "-p", "workload"]).current_dir(&manifest).status().expect("cargo build workload");
            assert!(st.success(), "building workload failed");
            std::fs::write(&stamp, &run).unwrap();
        }
        target.join("debug/workload")
    })
    .clone()
}

/// Polls `f` every 10 ms until Some or the timeout.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

pub struct World {
    pub dir: tempfile::TempDir,
    pub holder: Child,
    pub holder_pid: u32,
    pub cri: Option<Child>,
    pub cri_pid: u32,
    pub client: Client,
    pub workload: PathBuf,
}

impl World {
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("cri.sock")
    }
    pub fn logs(&self) -> PathBuf {
        self.dir.path().join("logs")
    }

    /// Starts the namespace holder and fake-cri in it.
    pub async fn start(extra: &[&str]) -> World {
        Self::start_with(extra, workload_bin()).await
    }

    /// Like [`World::start`] with another workload binary.
    pub async fn start_with(extra: &[&str], workload: PathBuf) -> World {
        let dir = tempfile::Builder::new().prefix("fcri").tempdir().unwrap();
        let holder = Command::new("unshare")
            .args(["--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc", "sleep", "infinity"])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare");
        let hp = holder.id();
        let sleeper = wait_for("namespace holder", Duration::from_secs(10), || async move {
            children(hp).first().copied().filter(|c| {
                std::fs::read_link(format!("/proc/{c}/ns/net")).ok() != std::fs::read_link("/proc/self/ns/net").ok()
            })
        })
        .await;
        let mut w = World { dir, holder, holder_pid: sleeper, cri: None, cri_pid: 0, client: placeholder_client().await, workload };
        w.start_cri(extra).await;
        w
    }

    /// (Re)starts fake-cri inside the holder's namespaces.
    pub async fn start_cri(&mut self, extra: &[&str]) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join("fake-cri.log")).unwrap();
        let _ = std::fs::remove_file(self.socket());
        let child = Command::new("nsenter")
            .arg("-t")
            .arg(self.holder_pid.to_string())
            .args(["-n", "-m", "-p", "--"])
            .arg(env!("CARGO_BIN_EXE_fake-cri"))
            .arg("--socket")
            .arg(self.socket())
            .arg("--state-dir")
            .arg(self.state_dir())
            .arg("--workload-bin")
            .arg(&self.workload)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("nsenter fake-cri");
        let np = child.id();
        self.cri_pid = wait_for("fake-cri process", Duration::from_secs(10), || async move { children(np).first().copied() }).await;
        self.cri = Some(child);
        let sock = self.socket();
        self.client = wait_for("fake-cri socket", Duration::from_secs(20), || {
            let sock = sock.clone();
            async move {
                if !sock.exists() {
                    return None;
                }
                let mut c = connect(&sock).await.ok()?;
                c.runtime.version(cri::VersionRequest::default()).await.ok()?;
                Some(c)
            }
        })
        .await;
    }

    /// SIGKILLs fake-cri (a runtime crash); containers keep running in the holder's pid ns.
    pub async fn crash_cri(&mut self) {
        let pid = self.cri_pid;
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        if let Some(mut c) = self.cri.take() {
            let _ = c.wait();
        }
    }

    /// SIGTERMs fake-cri and waits for its clean shutdown.
    pub async fn stop_cri(&mut self) {
        let pid = self.cri_pid;
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        if let Some(mut c) = self.cri.take() {
            let end = Instant::now() + Duration::from_secs(20);
            while c.try_wait().unwrap().is_none() && Instant::now() < end {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Runs a command inside the node namespaces (net + mount).
    pub fn node_cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("nsenter")
            .arg("-t")
            .arg(self.holder_pid.to_string())
            .args(["-n", "-m", "--"])
            .args(args)
            .output()
            .unwrap()
    }

    /// The node network namespace file.
    pub fn node_netns(&self) -> String {
        format!("/proc/{}/ns/net", self.holder_pid)
    }

    /// Runs `f` on a thread inside the node network namespace.
    pub fn in_node_net<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        in_netns(&self.node_netns(), f)
    }

    pub async fn set_cidr(&mut self) {
        self.client
            .runtime
            .update_runtime_config(cri::UpdateRuntimeConfigRequest {
                runtime_config: Some(cri::RuntimeConfig { network_config: Some(cri::NetworkConfig { pod_cidr: CIDR.into() }) }),
            })
            .await
            .unwrap();
    }

    pub async fn run_pod(&mut self, cfg: cri::PodSandboxConfig) -> String {
        self.client
            .runtime
            .run_pod_sandbox(cri::RunPodSandboxRequest { config: Some(cfg), runtime_handler: String::new() })
            .await
            .unwrap()
            .into_inner()
            .pod_sandbox_id
    }

    pub async fn create(&mut self, sid: &str, cfg: cri::ContainerConfig) -> Result<String, tonic::Status> {
        self.client
            .runtime
            .create_container(cri::CreateContainerRequest { pod_sandbox_id: sid.into(), config: Some(cfg), sandbox_config: None })
            .await
            .map(|r| r.into_inner().container_id)
    }

    pub async fn start_c(&mut self, id: &str) -> Result<(), tonic::Status> {
        self.client.runtime.start_container(cri::StartContainerRequest { container_id: id.into() }).await.map(|_| ())
    }

    /// Creates and starts a container; returns its id.
    pub async fn run_container(&mut self, sid: &str, cfg: cri::ContainerConfig) -> String {
        let id = self.create(sid, cfg).await.unwrap();
        self.start_c(&id).await.unwrap();
        id
    }

    pub async fn status(&mut self, id: &str) -> cri::ContainerStatus {
        self.client
            .runtime
            .container_status(cri::ContainerStatusRequest { container_id: id.into(), verbose: false })
            .await
            .unwrap()
            .into_inner()
            .status
            .unwrap()
    }

    /// Waits until the container has exited and returns its status.
    pub async fn wait_exited(&mut self, id: &str) -> cri::ContainerStatus {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.status(id).await;
            if s.state == cri::ContainerState::ContainerExited as i32 {
                return s;
            }
            assert!(Instant::now() < end, "container {id} did not exit");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn exec(&mut self, id: &str, cmd: &[&str], timeout: i64) -> Result<cri::ExecSyncResponse, tonic::Status> {
        self.client
            .runtime
            .exec_sync(cri::ExecSyncRequest { container_id: id.into(), cmd: cmd.iter().map(|s| s.to_string()).collect(), timeout })
            .await
            .map(|r| r.into_inner())
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let pid = self.cri_pid;
        if let Some(mut c) = self.cri.take() {
            let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
            let end = Instant::now() + Duration::from_secs(20);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < end {
                std::thread::park_timeout(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        if let Some(p) = fake_cri::cgroup::instance_parent(&self.state_dir(), None) {
            fake_cri::cgroup::remove_parent(&p);
        }
    }
}

async fn placeholder_client() -> Client {
    // A lazily connecting client that is replaced as soon as fake-cri answers.
    let ch = tonic::transport::Endpoint::from_static("http://[::1]:1").connect_lazy();
    Client {
        runtime: k8s_cri::v1::runtime_service_client::RuntimeServiceClient::new(ch.clone()),
        images: k8s_cri::v1::image_service_client::ImageServiceClient::new(ch),
    }
}

/// Runs `f` on a thread that entered the network namespace at `ns`.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = std::fs::File::open(ns).unwrap();
    std::thread::spawn(move || {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
    .join()
    .unwrap()
}

pub fn pod_config(name: &str) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata { name: name.into(), uid: format!("uid-{name}"), namespace: "default".into(), attempt: 0 }),
        hostname: name.into(),
        ..Default::default()
    }
}

pub fn container(name: &str, args: &[&str]) -> cri::ContainerConfig {
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata { name: name.into(), attempt: 0 }),
        image: Some(cri::ImageSpec { image: IMAGE.into(), ..Default::default() }),
        args: args.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// Reads a CRI log file into (stream, tag, message) triples, checking the timestamp format.
pub fn read_log(path: &Path) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            let mut it = l.splitn(4, ' ');
            let ts = it.next().unwrap();
            assert!(ts.parse::<jiff::Timestamp>().is_ok(), "bad timestamp {ts:?}");
            assert!(ts.ends_with('Z') && ts.contains('T'));
            (it.next().unwrap().to_string(), it.next().unwrap().to_string(), it.next().unwrap_or("").to_string())
        })
        .collect()
}
