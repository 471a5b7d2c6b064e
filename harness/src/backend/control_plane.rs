//! The control plane of a world: the fake API server served from the `cp` host, plus a
//! kubeconfig for components and a client for the case.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Error, Result};
use crate::pki::{Credential, Pki};
use crate::world::World;

/// A kube-rs configuration from a kubeconfig document (30 s reads, 5 s connects).
async fn client_config(yaml: &str) -> Result<kube::Config> {
    let kc = kube::config::Kubeconfig::from_yaml(yaml).map_err(|e| Error::Component(format!("admin kubeconfig: {e}")))?;
    let mut config = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(|e| Error::Component(format!("admin kubeconfig: {e}")))?;
    config.read_timeout = Some(Duration::from_secs(30));
    config.connect_timeout = Some(Duration::from_secs(5));
    Ok(config)
}

/// API server port on `cp`.
pub const API_PORT: u16 = 6443;

/// The fake API server running in-process, listening inside the `cp` host.
pub struct ControlPlane {
    handle: fake_apiserver::Handle,
    kubeconfig: PathBuf,
    url: String,
    secure: Option<Secure>,
}

/// What an HTTPS control plane keeps: the world PKI and the admin's client configuration.
struct Secure {
    pki: Pki,
    admin: Credential,
    client_config: kube::Config,
}

/// Serves `config` on `cp:6443` (its `listen` is set to that), with the audit log in the
/// artifacts unless the config names one; returns the handle and the address.
async fn serve_on_cp(world: &World, config: &mut fake_apiserver::Config) -> Result<(fake_apiserver::Handle, SocketAddr)> {
    let cp = world.host("cp")?;
    let addr = SocketAddr::from((cp.ip(), API_PORT));
    let listener = cp.tcp_listener(addr)?;
    config.listen = addr.to_string();
    if config.audit_file.is_none() {
        config.audit_file = Some(world.artifacts().path("api-audit.jsonl"));
    }
    Ok((fake_apiserver::Server::serve(listener, config.clone()).await?, addr))
}

impl ControlPlane {
    /// Starts the API server on `cp:6443` with `config` (its `listen` is ignored), writes the
    /// kubeconfig to the artifacts directory and points the audit log there.
    pub async fn start(world: &World, mut config: fake_apiserver::Config) -> Result<ControlPlane> {
        let (handle, addr) = serve_on_cp(world, &mut config).await?;
        let url = format!("http://{addr}");
        let kubeconfig = world.artifacts().path("kubeconfig");
        std::fs::write(&kubeconfig, fake_apiserver::kubeconfig_yaml(&url))
            .map_err(|e| Error::io(format!("writing {}", kubeconfig.display()), e))?;
        world.timeline().record("cp", format!("fake-apiserver serving on {url}"));
        Ok(ControlPlane { handle, kubeconfig, url, secure: None })
    }

    /// Like [`ControlPlane::start`], over HTTPS: makes the world PKI in the world's scratch
    /// directory (`pki/`), serves with a certificate for `cp`'s address, 127.0.0.1 and the
    /// upstream `kubernetes.default.svc` names, verifies client certificates against the
    /// world CA, reaches kubelets with `kube-apiserver-kubelet-client` (verifying their serving
    /// certificates against the world CA) and serves `metrics.k8s.io` from their resource metrics. [`ControlPlane::kubeconfig`] is then the admin's (`system:masters`).
    pub async fn start_secure(world: &World, mut config: fake_apiserver::Config) -> Result<ControlPlane> {
        let cp = world.host("cp")?;
        let pki = Pki::create(&super::scratch_dir("pki")?)?;
        let serving = pki.api_server(cp.ip().into(), &[])?;
        config.tls = Some(fake_apiserver::TlsConfig {
            cert_file: serving.cert.clone(),
            key_file: serving.key.clone(),
            client_ca_file: Some(pki.ca_cert().to_path_buf()),
        });
        // With client certificates towards kubelets, metrics.k8s.io can scrape them (upstream
        // clusters run metrics-server for `kubectl top`).
        config.metrics_server = true;
        let kubelet_client = pki.apiserver_kubelet_client()?;
        config.kubelet_client = Some(fake_apiserver::KubeletClientConfig {
            cert_file: kubelet_client.cert.clone(),
            key_file: kubelet_client.key.clone(),
            ca_file: Some(pki.ca_cert().to_path_buf()),
        });
        let (handle, addr) = serve_on_cp(world, &mut config).await?;
        let url = format!("https://{addr}");
        let admin = pki.admin()?;
        let kubeconfig = pki.dir().join("admin.kubeconfig");
        pki.write_kubeconfig(&kubeconfig, &url, &admin)?;
        let client_config = client_config(&pki.kubeconfig(&url, &admin)).await?;
        world.timeline().record("cp", format!("fake-apiserver serving on {url} (client CA: the world CA)"));
        Ok(ControlPlane { handle, kubeconfig, url, secure: Some(Secure { pki, admin, client_config }) })
    }

    /// The world PKI, when serving HTTPS.
    pub fn pki(&self) -> Option<&Pki> {
        self.secure.as_ref().map(|s| &s.pki)
    }

    /// A kubeconfig YAML for the admin with another server address (e.g. a forwarder's
    /// `https://127.0.0.1:PORT`); `None` on plain HTTP.
    pub fn admin_kubeconfig(&self, server: &str) -> Option<String> {
        self.secure.as_ref().map(|s| s.pki.kubeconfig(server, &s.admin))
    }

    /// The kubeconfig node `node`'s agent uses: its own client certificate
    /// (`system:node:<node>`) over HTTPS, the shared one on plain HTTP.
    pub fn node_kubeconfig(&self, node: &str) -> Result<PathBuf> {
        self.component_kubeconfig(&format!("node-{node}"), |pki| pki.node_client(node))
    }

    /// The kubeconfig proxies use: `system:kube-proxy` over HTTPS, the shared one on plain HTTP.
    pub fn proxy_kubeconfig(&self) -> Result<PathBuf> {
        self.component_kubeconfig("kube-proxy", Pki::proxy)
    }

    fn component_kubeconfig(&self, name: &str, issue: impl FnOnce(&Pki) -> crate::Result<Credential>) -> Result<PathBuf> {
        let Some(s) = &self.secure else { return Ok(self.kubeconfig.clone()) };
        let path = s.pki.dir().join(format!("{name}.kubeconfig"));
        if !path.is_file() {
            let cred = issue(&s.pki)?;
            s.pki.write_kubeconfig(&path, &self.url, &cred)?;
        }
        Ok(path)
    }

    /// Default configuration with the node-failure timings compressed for cases: the node
    /// monitor grace period is `node_grace` (upstream 50 s) and every timing that upstream ties
    /// to it shrinks by the same factor — the default tolerationSeconds (300 s), PodGC's period
    /// (20 s) and orphan quarantine (40 s), and the NoExecute tainting rate (0.1 nodes/s) —
    /// with the monitor period at 200 ms and a 1 s metrics resolution where metrics are served.
    pub fn compressed_config(node_grace: Duration) -> fake_apiserver::Config {
        let d = fake_apiserver::Config::default();
        let factor = node_grace.as_secs_f64() / d.node_monitor_grace_period.as_secs_f64();
        let scale = |t: Duration| t.mul_f64(factor).max(Duration::from_millis(100));
        let secs = |s: i64| ((s as f64 * factor).round() as i64).max(1);
        fake_apiserver::Config {
            node_monitor_grace_period: node_grace,
            node_monitor_period: Duration::from_millis(200),
            node_eviction_rate: d.node_eviction_rate / factor.max(0.001),
            default_not_ready_toleration_seconds: secs(d.default_not_ready_toleration_seconds),
            default_unreachable_toleration_seconds: secs(d.default_unreachable_toleration_seconds),
            pod_gc_period: scale(d.pod_gc_period),
            pod_gc_orphan_quarantine: scale(d.pod_gc_orphan_quarantine),
            metric_resolution: Duration::from_secs(1),
            ..d
        }
    }

    /// The server's handle (audit log, faults, partition, direct store access).
    pub fn handle(&self) -> &fake_apiserver::Handle {
        &self.handle
    }

    /// `http://10.77.0.2:6443` (`https://` from [`ControlPlane::start_secure`]).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The kubeconfig file of the case: on plain HTTP also the one components use; over HTTPS
    /// the admin's (components get theirs from [`ControlPlane::node_kubeconfig`] and
    /// [`ControlPlane::proxy_kubeconfig`]).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// A kube-rs client for the case (the world root reaches `cp` over lan0).
    pub fn client(&self) -> Result<kube::Client> {
        if let Some(s) = &self.secure {
            return Ok(kube::Client::try_from(s.client_config.clone())?);
        }
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
