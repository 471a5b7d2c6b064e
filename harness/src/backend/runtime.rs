//! The container runtime behind a node: fake-cri or containerd started inside the node host,
//! or an external CRI endpoint the user runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{Containerd, ContainerdOptions, Error, ProfileRuntime, Result, RuntimeProfile, scratch_dir, workload_binary};
use crate::process::{Process, ProcessSpec};
use crate::world::World;

/// Which runtime to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeKind {
    /// nodekit's fake-cri binary.
    FakeCri,
    /// Real containerd from the distribution.
    Containerd,
    /// An endpoint (`unix:///…`) started by the user.
    External(String),
    /// A runtime started from a runtime profile.
    Profile(Arc<RuntimeProfile>),
}

enum Inner {
    FakeCri(Box<Process>),
    Containerd(Box<Containerd>),
    Profile(Box<ProfileRuntime>),
    External,
}

/// A running runtime and its CRI endpoint.
pub struct Runtime {
    kind: RuntimeKind,
    socket: PathBuf,
    state_dir: Option<PathBuf>,
    inner: Inner,
}

impl Runtime {
    /// Starts `kind` for node host `node` and waits until its CRI socket accepts connections.
    pub async fn start(world: &World, node: &str, kind: RuntimeKind) -> Result<Runtime> {
        Runtime::start_with_images(world, node, kind, &[]).await
    }

    /// [`Runtime::start`], the world's registry serving `images` (OCI image-layout or
    /// docker-archive tarballs) besides the kit's images. Only runtimes that pull (containerd,
    /// profiles) can use them: fake-cri runs the kit's workload image alone.
    pub async fn start_with_images(world: &World, node: &str, kind: RuntimeKind, images: &[PathBuf]) -> Result<Runtime> {
        if !images.is_empty() && matches!(kind, RuntimeKind::FakeCri | RuntimeKind::External(_)) {
            return Err(Error::Component(
                "extra images need a runtime that pulls from the world's registry (containerd or a runtime profile); fake-cri runs the kit's workload image alone".into(),
            ));
        }
        let host = world.host(node)?;
        match &kind {
            RuntimeKind::FakeCri => {
                let dir = scratch_dir(&format!("fake-cri-{node}"))?;
                let socket = dir.join("cri.sock");
                let bin = crate::bins::locate("fake-cri")?;
                let spec = ProcessSpec::new(bin, &format!("fake-cri-{node}"))
                    .arg("--socket")
                    .arg(&socket)
                    .arg("--state-dir")
                    .arg(dir.join("state"))
                    .arg("--workload-bin")
                    .arg(workload_binary()?)
                    // Container cgroups go below the world's cgroup root, which the stale-cgroup
                    // sweep removes when the world is killed (cgroup v1 is host state).
                    .arg("--cgroup-parent")
                    .arg(crate::backend::node_cgroup_root(node)?)
                    .env("RUST_LOG", "info");
                let process = host.spawn(spec)?;
                wait_for_socket(&socket, Duration::from_secs(20)).await?;
                world.timeline().record(node, "fake-cri ready");
                Ok(Runtime { kind, socket, state_dir: Some(dir.join("state")), inner: Inner::FakeCri(Box::new(process)) })
            }
            RuntimeKind::Containerd => {
                let pod_cidr = host
                    .pod_cidr()
                    .ok_or_else(|| Error::Component(format!("{node} has no pod CIDR; containerd needs one")))?;
                let opts = ContainerdOptions { extra_images: images.to_vec(), ..ContainerdOptions::new(pod_cidr.to_string()) };
                let c = Containerd::start(world, node, opts).await?;
                let socket = c.socket().to_path_buf();
                world.timeline().record(node, "containerd ready");
                Ok(Runtime { kind, socket, state_dir: None, inner: Inner::Containerd(Box::new(c)) })
            }
            RuntimeKind::Profile(profile) => {
                let p = ProfileRuntime::start(world, node, profile.clone(), images).await?;
                let socket = p.socket().to_path_buf();
                Ok(Runtime { kind, socket, state_dir: None, inner: Inner::Profile(Box::new(p)) })
            }
            RuntimeKind::External(endpoint) => {
                let socket = PathBuf::from(endpoint.strip_prefix("unix://").unwrap_or(endpoint));
                wait_for_socket(&socket, Duration::from_secs(5)).await?;
                Ok(Runtime { kind, socket, state_dir: None, inner: Inner::External })
            }
        }
    }

    /// Which runtime this is.
    pub fn kind(&self) -> &RuntimeKind {
        &self.kind
    }

    /// `unix:///…` endpoint for CRI clients.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The CRI socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The runtime profile this runtime was started from, if it was.
    pub fn profile(&self) -> Option<&Arc<RuntimeProfile>> {
        match &self.inner {
            Inner::Profile(p) => Some(p.profile()),
            _ => None,
        }
    }

    /// The world's registry this runtime pulls from: containerd and profile runtimes (fake-cri
    /// builds its images from the workload binary; an external runtime has its own).
    pub fn registry(&self) -> Option<&super::WorldRegistry> {
        match &self.inner {
            Inner::Containerd(c) => c.registry(),
            Inner::Profile(p) => p.registry(),
            Inner::FakeCri(_) | Inner::External => None,
        }
    }

    /// The OCI runtimes the runtime drives and where each keeps container state (a container
    /// it created has a directory named by its id there): containerd's `runc` and `crun`
    /// roots, a profile's `cleanup.ociRuntimes`; empty for fake-cri and external runtimes.
    pub fn oci_roots(&self) -> Result<Vec<(String, PathBuf)>> {
        match &self.inner {
            Inner::Containerd(c) => Ok(vec![
                ("runc".to_string(), c.layout().runc.join("k8s.io")),
                ("crun".to_string(), c.layout().crun.join("k8s.io")),
            ]),
            Inner::Profile(p) => p.oci_roots(),
            Inner::FakeCri(_) | Inner::External => Ok(Vec::new()),
        }
    }

    /// fake-cri's state directory (faults file, CRI call log); `None` for other runtimes.
    pub fn state_dir(&self) -> Option<&Path> {
        self.state_dir.as_deref()
    }

    /// The fake-cri process, for restart faults.
    pub fn fake_cri_process(&mut self) -> Option<&mut Process> {
        match &mut self.inner {
            Inner::FakeCri(p) => Some(p.as_mut()),
            _ => None,
        }
    }

    /// SIGKILLs the runtime process, as a crash would; what it runs keeps running until
    /// [`Runtime::stop`]. An external runtime is not the harness's to kill: an error.
    pub async fn kill(&mut self) -> Result<()> {
        match &mut self.inner {
            Inner::FakeCri(p) => {
                p.kill().await?;
                Ok(())
            }
            Inner::Containerd(c) => c.kill().await,
            Inner::Profile(p) => p.kill().await,
            Inner::External => Err(Error::Component("an external runtime cannot be killed by the harness".into())),
        }
    }

    /// Stops the runtime (graceful, then forceful) and removes what it left.
    pub async fn stop(self) -> Result<()> {
        match self.inner {
            Inner::FakeCri(mut p) => {
                p.stop(Duration::from_secs(10)).await?;
                Ok(())
            }
            Inner::Containerd(c) => c.stop().await,
            Inner::Profile(p) => p.stop().await,
            Inner::External => Ok(()),
        }
    }
}

/// Waits until the CRI socket of `process` accepts a connection; fails at once when the process
/// exits (`who` names it in the message).
pub(crate) async fn wait_until_serving(process: &mut Process, socket: &Path, timeout: Duration, who: &str) -> Result<()> {
    crate::wait::wait_for(&format!("{who}'s socket to accept connections"), timeout, || {
        let running = process.is_running();
        async move {
            if !running {
                return Err(format!("{who} exited"));
            }
            tokio::net::UnixStream::connect(socket).await.map(|_| ()).map_err(|e| e.to_string())
        }
    })
    .await?;
    Ok(())
}

/// Waits until a unix socket accepts a connection.
pub(crate) async fn wait_for_socket(socket: &Path, timeout: Duration) -> Result<()> {
    let what = format!("the CRI socket {} to accept connections", socket.display());
    crate::wait::wait_for(&what, timeout, || async {
        tokio::net::UnixStream::connect(socket).await.is_ok()
    })
    .await?;
    Ok(())
}
