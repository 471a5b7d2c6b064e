//! The world's image registry: a read-only OCI registry (distribution v2 pull API,
//! [`oci_registry`]) per node host, on the node's own loopback (`127.0.0.1:<port>` inside its
//! network namespace), holding the world's images (workload, pause and the upstream
//! stand-ins) and any archive the caller adds. Runtimes pull from it for real: nodekit writes
//! containerd-style registry host configuration (`<dir>/<registry host>/hosts.toml`) that sends
//! every registry host the images name (`nodekit.local`, `registry.k8s.io`, …) to it.
//!
//! The listener is bound first, so the address can go into the runtime's configuration before
//! the archives are loaded; connections made before [`WorldRegistry::serve`] wait in the
//! listen backlog.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use oci_registry::{Image, Stats, Store};
use tokio_util::sync::CancellationToken;

use super::{Error, Result};
use crate::world::World;

/// A registry bound in a node host, not serving yet.
pub struct BoundRegistry {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
}

impl BoundRegistry {
    /// Binds a port on the loopback of node host `node`.
    pub fn bind(world: &World, node: &str) -> Result<BoundRegistry> {
        let listener = world.host(node)?.tcp_listener(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = listener.local_addr().map_err(|e| Error::io("reading the registry's address".to_string(), e))?;
        Ok(BoundRegistry { listener, addr })
    }

    /// `127.0.0.1:<port>` (inside the node host).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Loads `archives` and serves them until the registry is dropped or stopped; with
    /// `hosts_dir`, writes containerd host files there for every registry host they name. The
    /// repository of [`fake_cri::config::PRIVATE_IMAGE`] answers only its credentials.
    pub fn serve(self, archives: &[PathBuf], hosts_dir: Option<&Path>) -> Result<WorldRegistry> {
        let mut store = Store::new();
        for a in archives {
            store.load_archive(a).map_err(|e| Error::Component(format!("the world's registry: {e}")))?;
        }
        if let Some(dir) = hosts_dir {
            write_containerd_hosts(dir, &store.registry_hosts(), self.addr)?;
        }
        let (username, password) = fake_cri::config::PRIVATE_IMAGE_CREDENTIALS;
        store.require_credentials(fake_cri::config::PRIVATE_IMAGE_PATH, oci_registry::Credentials { username: username.into(), password: password.into() });
        let store = Arc::new(store);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(oci_registry::serve(self.listener, store.clone(), None, cancel.clone()));
        Ok(WorldRegistry { addr: self.addr, store, cancel, task: Some(task) })
    }
}

/// A serving registry.
pub struct WorldRegistry {
    addr: SocketAddr,
    store: Arc<Store>,
    cancel: CancellationToken,
    task: Option<tokio::task::JoinHandle<oci_registry::Result<()>>>,
}

impl std::fmt::Debug for WorldRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorldRegistry").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl WorldRegistry {
    /// `127.0.0.1:<port>` (inside the node host).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every image it serves.
    pub fn images(&self) -> Vec<Image> {
        self.store.images()
    }

    /// The image served under the full reference `reference`.
    pub fn image(&self, reference: &str) -> Option<Image> {
        self.store.images().into_iter().find(|i| i.reference == reference)
    }

    /// What it served so far (manifests and blobs by path and digest).
    pub fn stats(&self) -> &Stats {
        self.store.stats()
    }

    /// Stops serving (open connections get a few seconds to finish).
    pub async fn stop(mut self) -> Result<()> {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            task.await
                .map_err(|e| Error::Component(format!("the world's registry task: {e}")))?
                .map_err(|e| Error::Component(format!("the world's registry: {e}")))?;
        }
        Ok(())
    }
}

impl Drop for WorldRegistry {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Writes containerd's registry host configuration into `dir` (its `config_path`): for every
/// registry host in `hosts`, `<dir>/<host>/hosts.toml` whose host and server are both the
/// registry at `addr` (plain HTTP on the node's loopback) with the host as the first part of
/// every repository path (`/v2/<host>/<path>/…`, `override_path`). containerd 1.6 refuses a
/// hosts file without a `[host]` table, and falls back to the server when a host has no image:
/// with both the registry, a missing image is the registry's `not found`, never a lookup of a
/// public name.
pub fn write_containerd_hosts(dir: &Path, hosts: &[String], addr: SocketAddr) -> Result<()> {
    for host in hosts {
        let d = dir.join(host);
        std::fs::create_dir_all(&d).map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
        let url = format!("http://{addr}/v2/{host}");
        let toml = format!(
            "# Generated by nodekit: {host} is served by the world's registry.\nserver = \"{url}\"\noverride_path = true\ncapabilities = [\"pull\", \"resolve\"]\n\n[host.\"{url}\"]\n  override_path = true\n  capabilities = [\"pull\", \"resolve\"]\n"
        );
        let file = d.join("hosts.toml");
        std::fs::write(&file, toml).map_err(|e| Error::io(format!("writing {}", file.display()), e))?;
    }
    Ok(())
}
