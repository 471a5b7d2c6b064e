//! The control plane of a world: the fake API server served from the `cp` host, plus a
//! kubeconfig for components and a client for the case.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Error, Result};
use crate::world::World;

/// API server port on `cp`.
pub const API_PORT: u16 = 6443;

/// The fake API server running in-process, listening inside the `cp` host.
pub struct ControlPlane {
    handle: fake_apiserver::Handle,
    kubeconfig: PathBuf,
    url: String,
}

impl ControlPlane {
    /// Starts the API server on `cp:6443` with `config` (its `listen` is ignored), writes the
    /// kubeconfig to the artifacts directory and points the audit log there.
    pub async fn start(world: &World, mut config: fake_apiserver::Config) -> Result<ControlPlane> {
        let cp = world.host("cp")?;
        let addr = SocketAddr::from((cp.ip(), API_PORT));
        let listener = cp.tcp_listener(addr)?;
        config.listen = addr.to_string();
        if config.audit_file.is_none() {
            config.audit_file = Some(world.artifacts().path("api-audit.jsonl"));
        }
        let handle = fake_apiserver::Server::serve(listener, config).await?;
        let url = format!("http://{addr}");
        let kubeconfig = world.artifacts().path("kubeconfig");
        std::fs::write(&kubeconfig, fake_apiserver::kubeconfig_yaml(&url))
            .map_err(|e| Error::io(format!("writing {}", kubeconfig.display()), e))?;
        world.timeline().record("cp", format!("fake-apiserver serving on {url}"));
        Ok(ControlPlane { handle, kubeconfig, url })
    }

    /// Default configuration with compressed node-lifecycle timings for cases.
    pub fn compressed_config(node_grace: Duration) -> fake_apiserver::Config {
        fake_apiserver::Config {
            node_monitor_grace_period: node_grace,
            node_monitor_period: Duration::from_millis(200),
            ..fake_apiserver::Config::default()
        }
    }

    /// The server's handle (audit log, faults, partition, direct store access).
    pub fn handle(&self) -> &fake_apiserver::Handle {
        &self.handle
    }

    /// `http://10.77.0.2:6443`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The kubeconfig file components use.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// A kube-rs client for the case (the world root reaches `cp` over lan0).
    pub fn client(&self) -> Result<kube::Client> {
        let uri: http::Uri = self
            .url
            .parse()
            .map_err(|e| Error::Component(format!("bad API server url {}: {e}", self.url)))?;
        let mut config = kube::Config::new(uri);
        config.read_timeout = Some(Duration::from_secs(30));
        config.connect_timeout = Some(Duration::from_secs(5));
        Ok(kube::Client::try_from(config)?)
    }

    /// Stops the server gracefully.
    pub async fn shutdown(self) {
        self.handle.shutdown().await;
    }
}
