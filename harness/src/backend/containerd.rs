//! Real containerd started inside a node host with its own root, state, sockets, CNI config
//! and imported images (the design's recipe).

use std::path::{Path, PathBuf};

use super::{Error, Result};
use crate::world::World;

/// How to start containerd.
#[derive(Debug, Clone)]
pub struct ContainerdOptions {
    /// The node's pod CIDR (host-local IPAM range of the CNI bridge).
    pub pod_cidr: String,
}

impl ContainerdOptions {
    pub fn new(pod_cidr: String) -> ContainerdOptions {
        ContainerdOptions { pod_cidr }
    }
}

/// A running containerd.
pub struct Containerd {
    socket: PathBuf,
}

impl Containerd {
    /// Starts containerd in node host `node`.
    pub async fn start(_world: &World, node: &str, _opts: ContainerdOptions) -> Result<Containerd> {
        Err(Error::Component(format!("the containerd backend is not available yet (node {node})")))
    }

    /// The CRI socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Stops containerd and removes everything it left.
    pub async fn stop(self) -> Result<()> {
        Ok(())
    }
}
