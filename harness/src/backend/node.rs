//! The node under test: the reference agent (kubelet) and proxy (kube-proxy) started as real
//! processes inside a node host, each with its own log in the artifacts directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use super::{ControlPlane, Error, Result, Runtime, scratch_dir};
use crate::pki::Pki;
use crate::process::{Process, ProcessSpec};
use crate::world::World;

/// How to start the reference agent.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// The whole `KubeletConfiguration` (kubelet.config.k8s.io/v1beta1) as YAML.
    pub config_yaml: String,
    /// Extra command-line flags.
    pub extra_args: Vec<String>,
}

impl AgentOptions {
    /// A configuration with `fields` (YAML lines, already indented at top level) added to the
    /// kind/apiVersion header.
    pub fn with_config(fields: &str) -> AgentOptions {
        AgentOptions {
            config_yaml: format!(
                "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n{fields}"
            ),
            extra_args: Vec::new(),
        }
    }
}

/// `config_yaml` (a KubeletConfiguration) with node `node`'s kubelet serving certificate from
/// `pki` as `tlsCertFile` / `tlsPrivateKeyFile` and the world CA as
/// `authentication.x509.clientCAFile`, where the document does not set them already.
/// Returned as JSON (which is YAML too).
fn with_serving_cert(config_yaml: &str, pki: &Pki, node: &str, ip: std::net::Ipv4Addr) -> Result<String> {
    let mut doc: Value = serde_saphyr::from_str(config_yaml)
        .map_err(|e| Error::Component(format!("the KubeletConfiguration of {node} is not YAML: {e}")))?;
    let Value::Object(map) = &mut doc else {
        return Err(Error::Component(format!("the KubeletConfiguration of {node} is not a mapping")));
    };
    let serving = pki.kubelet_serving(node, ip)?;
    let path = |p: &Path| Value::String(p.to_string_lossy().into_owned());
    map.entry("tlsCertFile").or_insert_with(|| path(&serving.cert));
    map.entry("tlsPrivateKeyFile").or_insert_with(|| path(&serving.key));
    let authn = map.entry("authentication").or_insert_with(|| json!({}));
    if let Value::Object(authn) = authn {
        let x509 = authn.entry("x509").or_insert_with(|| json!({}));
        if let Value::Object(x509) = x509 {
            x509.entry("clientCAFile").or_insert_with(|| path(pki.ca_cert()));
        }
    }
    serde_json::to_string_pretty(&doc).map_err(|e| Error::Component(format!("serializing the KubeletConfiguration: {e}")))
}

/// A running reference agent.
pub struct NodeAgent {
    node: String,
    root_dir: PathBuf,
    config_path: PathBuf,
    process: Process,
}

impl NodeAgent {
    /// Starts `node-agent` in host `node`, registered as `node`, against `cp` and `runtime`.
    pub async fn start(
        world: &World,
        cp: &ControlPlane,
        node: &str,
        runtime: &Runtime,
        opts: &AgentOptions,
    ) -> Result<NodeAgent> {
        let host = world.host(node)?;
        let dir = scratch_dir(&format!("agent-{node}"))?;
        let root_dir = dir.join("root");
        let config_path = world.artifacts().path(&format!("kubelet-config-{node}.yaml"));
        let config_yaml = match cp.pki() {
            Some(pki) => with_serving_cert(&opts.config_yaml, pki, node, host.ip())?,
            None => opts.config_yaml.clone(),
        };
        std::fs::write(&config_path, &config_yaml)
            .map_err(|e| Error::io(format!("writing {}", config_path.display()), e))?;
        let mut spec = ProcessSpec::new(crate::bins::locate("node-agent")?, &format!("node-agent-{node}"))
            .arg("--config")
            .arg(&config_path)
            .arg("--kubeconfig")
            .arg(cp.node_kubeconfig(node)?)
            .args(["--node-name", node])
            .arg("--container-runtime-endpoint")
            .arg(runtime.endpoint())
            .arg("--root-dir")
            .arg(&root_dir)
            .args(["--node-ip", &host.ip().to_string()])
            .env("RUST_LOG", "info");
        if let Some(cidr) = host.pod_cidr() {
            spec = spec.args(["--pod-cidr", &cidr.to_string()]);
        }
        // Pods' cgroups go under the world's cgroup root, so a killed world's are swept.
        spec = spec.arg("--cgroup-root").arg(super::node_cgroup_root(node)?);
        spec = spec.args(opts.extra_args.iter().cloned());
        let process = host.spawn(spec)?;
        world.timeline().record(node, "node-agent started");
        Ok(NodeAgent { node: node.to_string(), root_dir, config_path, process })
    }

    /// The node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The agent's root directory (pod dirs, logs, static pod path if configured there).
    pub fn root_dir(&self) -> &Path {
        &self.root_dir
    }

    /// The config file it was started with.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The agent process (stop, kill, restart).
    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }

    /// Stops the agent gracefully (SIGTERM, then SIGKILL after 10 s). Pods keep running, as
    /// with kubelet.
    pub async fn stop(mut self) -> Result<()> {
        self.process.stop(Duration::from_secs(10)).await?;
        Ok(())
    }
}

/// The proxy's rule backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    Nftables,
    Iptables,
}

impl ProxyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyMode::Nftables => "nftables",
            ProxyMode::Iptables => "iptables",
        }
    }
}

/// A running reference proxy.
pub struct NodeProxy {
    process: Process,
}

impl NodeProxy {
    /// Starts `node-proxy` in host `node` in `mode`, with `extra_args` (e.g. `--config`).
    pub async fn start(
        world: &World,
        cp: &ControlPlane,
        node: &str,
        mode: ProxyMode,
        extra_args: &[String],
    ) -> Result<NodeProxy> {
        let host = world.host(node)?;
        let spec = ProcessSpec::new(crate::bins::locate("node-proxy")?, &format!("node-proxy-{node}"))
            .arg("--kubeconfig")
            .arg(cp.proxy_kubeconfig()?)
            .args(["--hostname-override", node, "--proxy-mode", mode.as_str()])
            .args(extra_args.iter().cloned())
            .env("RUST_LOG", std::env::var("NODEKIT_PROXY_LOG").unwrap_or_else(|_| "info".into()));
        let process = host.spawn(spec)?;
        world.timeline().record(node, format!("node-proxy started ({})", mode.as_str()));
        Ok(NodeProxy { process })
    }

    /// The proxy process.
    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }

    /// Stops the proxy gracefully.
    pub async fn stop(mut self) -> Result<()> {
        self.process.stop(Duration::from_secs(10)).await?;
        Ok(())
    }
}
