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
    /// Extra command-line flags (of the reference agent).
    pub extra_args: Vec<String>,
    /// Start this node agent profile's binary instead of the reference agent.
    pub profile: Option<std::sync::Arc<runtime_profile::NodeAgentProfile>>,
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
            profile: None,
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

/// Disk thresholds for an agent that does not read nodekit's extensions, with upstream's
/// memory threshold: such an agent measures the machine's disk, not the world's node size, and
/// upstream's defaults (nodefs 10%, imagefs 15%) put a node on a fuller disk under DiskPressure,
/// where it admits no ordinary pod. All four signals are named, because upstream sets an
/// unnamed one to 0 once `evictionHard` is given.
pub const HOST_DISK_EVICTION_HARD: [(&str, &str); 4] =
    [("memory.available", "100Mi"), ("nodefs.available", "1%"), ("imagefs.available", "1%"), ("nodefs.inodesFree", "1%")];

/// `config_yaml` without its `nodekit:` block, for an agent that does not read nodekit's
/// extensions (a kubelet refuses unknown fields), and with [`HOST_DISK_EVICTION_HARD`] when it
/// sets no `evictionHard` of its own.
fn without_extensions(config_yaml: &str, agent: &str) -> Result<String> {
    let mut doc: Value = serde_saphyr::from_str(config_yaml)
        .map_err(|e| Error::Component(format!("the KubeletConfiguration for {agent} is not YAML: {e}")))?;
    if let Value::Object(map) = &mut doc {
        map.remove("nodekit");
        map.entry("evictionHard").or_insert_with(|| HOST_DISK_EVICTION_HARD.iter().map(|(k, v)| (k.to_string(), json!(v))).collect());
    }
    serde_json::to_string_pretty(&doc).map_err(|e| Error::Component(format!("serializing the KubeletConfiguration: {e}")))
}

/// The values of a node agent profile's placeholders on `node`.
fn agent_values(
    cp: &ControlPlane,
    node: &str,
    ip: std::net::Ipv4Addr,
    pod_cidr: Option<crate::world::Cidr>,
    runtime: &Runtime,
    root_dir: &Path,
    config_path: &Path,
) -> Result<runtime_profile::Values> {
    use runtime_profile::Placeholder as P;
    let text = |p: &Path| p.to_string_lossy().into_owned();
    let mut v = runtime_profile::Values::new();
    v.set(P::Kubeconfig, text(&cp.node_kubeconfig(node)?))
        .set(P::KubeletConfig, text(config_path))
        .set(P::CriSocket, runtime.endpoint())
        .set(P::RootDir, text(root_dir))
        .set(P::NodeName, node)
        .set(P::NodeIp, ip.to_string())
        .set(P::CgroupRoot, super::node_cgroup_root(node)?);
    if let Some(cidr) = pod_cidr {
        v.set(P::PodCidr, cidr.to_string());
    }
    if let Some(pki) = cp.pki() {
        let serving = pki.kubelet_serving(node, ip)?;
        v.set(P::Ca, text(pki.ca_cert())).set(P::Cert, text(&serving.cert)).set(P::Key, text(&serving.key));
    }
    Ok(v)
}

/// The process of a node agent profile, its templates rendered with `values`.
fn profile_spec(profile: &runtime_profile::NodeAgentProfile, values: &runtime_profile::Values, node: &str) -> Result<ProcessSpec> {
    let render = |field: String, t: &str| {
        values.render(t).map_err(|e| Error::Component(format!("{}: {field}: {e}", profile.source.display())))
    };
    let binary = runtime_profile::agent_binary(profile, super::find_binary)
        .map_err(|e| Error::Component(e.to_string()))?;
    let mut spec = ProcessSpec::new(binary, &format!("{}-{node}", profile.name));
    for (i, a) in profile.command.iter().enumerate().skip(1) {
        spec = spec.arg(render(format!("spec.command[{i}]"), a)?);
    }
    for (k, v) in &profile.env {
        spec = spec.env(k, render(format!("spec.env.{k}"), v)?);
    }
    Ok(spec)
}

/// A running node agent: the reference agent, or a profile's.
pub struct NodeAgent {
    node: String,
    root_dir: PathBuf,
    config_path: PathBuf,
    process: Process,
    /// SIGTERM to SIGKILL in [`NodeAgent::stop`] (10 s, or the profile's `spec.stop.grace`).
    stop_grace: Duration,
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
        let mut config_yaml = match cp.pki() {
            Some(pki) => with_serving_cert(&opts.config_yaml, pki, node, host.ip())?,
            None => opts.config_yaml.clone(),
        };
        if let Some(p) = opts.profile.as_ref().filter(|p| !p.nodekit_extensions) {
            config_yaml = without_extensions(&config_yaml, &p.name)?;
        }
        std::fs::write(&config_path, &config_yaml)
            .map_err(|e| Error::io(format!("writing {}", config_path.display()), e))?;
        if let Some(profile) = &opts.profile {
            let values = agent_values(cp, node, host.ip(), host.pod_cidr(), runtime, &root_dir, &config_path)?;
            let spec = profile_spec(profile, &values, node)?;
            let process = host.spawn(spec)?;
            world.timeline().record(node, format!("node agent {} started", profile.name));
            return Ok(NodeAgent { node: node.to_string(), root_dir, config_path, process, stop_grace: profile.stop_grace });
        }
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
            .env("RUST_LOG", "info")
            // The agent reads docker config files in its working directory and `$HOME` too
            // (as upstream's kubelet): the world's, never the host user's.
            .env("HOME", &dir)
            .cwd(&dir);
        if let Some(cidr) = host.pod_cidr() {
            spec = spec.args(["--pod-cidr", &cidr.to_string()]);
        }
        // Pods' cgroups go under the world's cgroup root, so a killed world's are swept.
        spec = spec.arg("--cgroup-root").arg(super::node_cgroup_root(node)?);
        spec = spec.args(opts.extra_args.iter().cloned());
        let process = host.spawn(spec)?;
        world.timeline().record(node, "node-agent started");
        Ok(NodeAgent { node: node.to_string(), root_dir, config_path, process, stop_grace: Duration::from_secs(10) })
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

    /// Stops the agent gracefully (SIGTERM, then SIGKILL after 10 s or the profile's grace).
    /// Pods keep running, as with kubelet.
    pub async fn stop(mut self) -> Result<()> {
        self.process.stop(self.stop_grace).await?;
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
