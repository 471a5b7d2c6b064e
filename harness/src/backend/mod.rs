//! The targets a case runs against, started inside a world: the control plane (fake API server
//! in `cp`), the runtime behind a node (fake-cri, real containerd, or an external CRI socket)
//! and the node itself (the reference agent and proxy, or an external command template).
//!
//! Everything a backend writes at run time lives under the world's scratch directory, a tmpfs
//! private to the world's mount namespace ([`scratch`]): it vanishes with the world, even when
//! the world is killed.

mod containerd;
mod control_plane;
mod engine;
mod error;
mod node;
mod profile;
mod registry;
mod runtime;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use containerd::{
    CGROUP_PREFIX, Containerd, ContainerdOptions, Layout as ContainerdLayout, SweepReport, cgroup_hierarchies, cgroup_parent,
    cgroup_root, node_cgroup_root, stale_cgroup_trees, sweep_stale_cgroups, sweep_stale_cgroups_within, world_trees,
};
pub use control_plane::ControlPlane;
pub use engine::{DockerEngine, FAKE_CRI_IMAGE, build_fake_cri_image};
pub use error::{Error, Result};
pub use node::{AgentOptions, NodeAgent, NodeProxy, ProxyMode};
pub use profile::{CNI_BIN_DIR, ProfileRuntime, find_binary};
pub use registry::{BoundRegistry, WorldRegistry, write_containerd_hosts};
pub use runtime::{Runtime, RuntimeKind};
pub use runtime_profile::RuntimeProfile;

/// Image references every backend provides (imported into containerd, catalogued in fake-cri).
pub const WORKLOAD_IMAGE: &str = "nodekit.local/workload:1.0";
/// The pause (sandbox) image.
pub const PAUSE_IMAGE: &str = "nodekit.local/pause:3.10";

/// The OCI image-layout tarballs of the images every backend provides (the workload, pause
/// and upstream stand-in images, built from the workload binary; cached next to it), for
/// importing into a runtime nodekit does not start (`ctr -n k8s.io images import FILE`). A
/// fresh build goes to `scratch`.
pub fn world_image_tarballs(scratch: &Path) -> Result<Vec<PathBuf>> {
    containerd::images(&workload_binary()?, scratch)
}

/// Every image reference the tarballs of [`world_image_tarballs`] hold.
pub fn world_image_references() -> Vec<String> {
    containerd::imported_references()
}

/// The world's scratch directory: `/run/nodekit` on a tmpfs mounted over `/run` inside the
/// world's private mount namespace (created on first use). Must be called inside a sealed world.
pub fn scratch() -> Result<PathBuf> {
    static SCRATCH: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    SCRATCH
        .get_or_init(|| {
            let run = Path::new("/run");
            crate::sealed::private_tmpfs(run).map_err(|e| e.to_string())?;
            let dir = run.join("nodekit");
            std::fs::create_dir_all(dir.join("netns")).map_err(|e| format!("creating {}: {e}", dir.display()))?;
            // CNI plugins and runc expect /run/netns and friends to exist.
            std::fs::create_dir_all(run.join("netns")).map_err(|e| format!("creating /run/netns: {e}"))?;
            Ok(dir)
        })
        .clone()
        .map_err(Error::Component)
}

/// A fresh directory under [`scratch`].
pub fn scratch_dir(name: &str) -> Result<PathBuf> {
    let dir = scratch()?.join(name);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    Ok(dir)
}

/// The static workload binary: `NODEKIT_WORKLOAD_BIN`, else the `ci/build` output next to the
/// workspace's target directory, else a `workload` binary next to the other binaries.
pub fn workload_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("NODEKIT_WORKLOAD_BIN") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(Error::Component(format!("NODEKIT_WORKLOAD_BIN={} does not exist (run ci/build)", p.display())))
        };
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(4) {
            let cand = dir.join("x86_64-unknown-linux-gnu/release/workload");
            if cand.is_file() {
                return Ok(cand);
            }
        }
    }
    crate::bins::locate("workload").map_err(|e| {
        Error::Component(format!("the workload binary was not found ({e}); run ci/build or set NODEKIT_WORKLOAD_BIN"))
    })
}
