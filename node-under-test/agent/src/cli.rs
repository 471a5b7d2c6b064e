//! Command-line flags (kubelet-compatible names) and their merge over the config file.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::Parser;

use crate::config::{AgentSettings, ConfigError, load_config};

/// The reference node agent (kubelet).
#[derive(Clone, Debug, Parser)]
#[command(name = "node-agent", version, about = "The nodekit reference node agent (kubelet)")]
pub struct Flags {
    /// KubeletConfiguration file (kubelet.config.k8s.io/v1beta1).
    #[arg(long)]
    pub config: PathBuf,
    /// kubeconfig used to reach the API server.
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// Name of the Node object (default: the host name).
    #[arg(long = "node-name", alias = "hostname-override")]
    pub node_name: Option<String>,
    /// CRI endpoint, unix:///path (overrides containerRuntimeEndpoint).
    #[arg(long = "container-runtime-endpoint")]
    pub container_runtime_endpoint: Option<String>,
    /// Agent state directory (pods, volumes, logs).
    #[arg(long = "root-dir", default_value = "/var/lib/kubelet")]
    pub root_dir: PathBuf,
    /// Node InternalIP (default: first non-loopback IPv4 address).
    #[arg(long = "node-ip")]
    pub node_ip: Option<IpAddr>,
    /// Pod CIDR (overrides podCIDR in the config).
    #[arg(long = "pod-cidr")]
    pub pod_cidr: Option<String>,
    /// Root of the pods' cgroups (overrides cgroupRoot in the config).
    #[arg(long = "cgroup-root")]
    pub cgroup_root: Option<String>,
    /// Address of /healthz and /metrics, host:port (default healthzBindAddress:healthzPort; port 0 picks one).
    #[arg(long = "healthz-bind-address")]
    pub healthz_bind_address: Option<SocketAddr>,
}

impl Flags {
    /// Loads the config file and merges the flags over it.
    pub fn settings(&self) -> Result<(AgentSettings, SocketAddr), ConfigError> {
        let kubelet = load_config(&self.config)?;
        let node_name = match &self.node_name {
            Some(n) => n.clone(),
            None => nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .ok_or_else(|| ConfigError::Invalid("--node-name is required (host name unknown)".into()))?,
        }
        .to_lowercase();
        if node_name.is_empty() {
            return Err(ConfigError::Invalid("--node-name must not be empty".into()));
        }
        let runtime_endpoint = self
            .container_runtime_endpoint
            .clone()
            .or_else(|| kubelet.container_runtime_endpoint.clone())
            .ok_or_else(|| ConfigError::Invalid("--container-runtime-endpoint is required".into()))?;
        if !runtime_endpoint.starts_with("unix:///") {
            return Err(ConfigError::Invalid(format!("container runtime endpoint {runtime_endpoint:?} must be unix:///path")));
        }
        let healthz = match self.healthz_bind_address {
            Some(a) => a,
            None => {
                let ip: IpAddr = kubelet.healthz_bind_address.parse().map_err(|_| {
                    ConfigError::Invalid(format!("healthzBindAddress {:?} is not an IP", kubelet.healthz_bind_address))
                })?;
                SocketAddr::new(ip, kubelet.healthz_port)
            }
        };
        let pod_cidr = self.pod_cidr.clone().or_else(|| kubelet.pod_cidr.clone());
        let mut kubelet = kubelet;
        if let Some(root) = &self.cgroup_root {
            kubelet.cgroup_root = Some(root.clone());
        }
        Ok((
            AgentSettings {
                node_name,
                node_ip: self.node_ip,
                pod_cidr,
                root_dir: self.root_dir.clone(),
                runtime_endpoint,
                kubelet,
            },
            healthz,
        ))
    }
}
