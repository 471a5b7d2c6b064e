//! Command line and `KubeProxyConfiguration` (kubeproxy.config.k8s.io/v1alpha1) handling:
//! the file is read with serde-saphyr, unknown fields are errors naming the field, and flags
//! given on the command line override the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

use crate::ctx::Cidr;
use crate::error::{Error, Result};

/// Which kernel interface programs the rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Nftables,
    Iptables,
}

impl Mode {
    fn parse(s: &str) -> Result<Mode> {
        match s {
            "" | "nftables" => Ok(Mode::Nftables),
            "iptables" => Ok(Mode::Iptables),
            other => Err(Error::ConfigInvalid(format!("mode {other:?} is not supported (nftables, iptables)"))),
        }
    }
}

/// Command line of `node-proxy`.
#[derive(Debug, Clone, Parser)]
#[command(name = "node-proxy", about = "Reference service proxy (kube-proxy) for nftables and iptables")]
pub struct Args {
    /// Path to a kubeconfig file.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Name of this node (default: the hostname).
    #[arg(long)]
    pub hostname_override: Option<String>,
    /// nftables (default) or iptables.
    #[arg(long)]
    pub proxy_mode: Option<Mode>,
    /// A KubeProxyConfiguration YAML file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Remove every rule this proxy creates (both modes) and exit.
    #[arg(long)]
    pub cleanup: bool,
    /// Address of the /metrics endpoint (default 127.0.0.1:10249; "0" disables).
    #[arg(long)]
    pub metrics_bind_address: Option<String>,
    /// Address of the /healthz endpoint (default 0.0.0.0:10256; "0" disables).
    #[arg(long)]
    pub healthz_bind_address: Option<String>,
    /// Pod range; traffic to ClusterIPs from outside it is masqueraded.
    #[arg(long)]
    pub cluster_cidr: Option<String>,
    /// NodePort addresses: CIDRs or "primary" (comma separated).
    #[arg(long, value_delimiter = ',')]
    pub nodeport_addresses: Option<Vec<String>>,
    /// Masquerade all traffic to ClusterIPs.
    #[arg(long)]
    pub masquerade_all: Option<bool>,
    /// Full resync interval (Go duration, default 30s).
    #[arg(long)]
    pub sync_period: Option<String>,
    /// Minimum interval between syncs (Go duration, default 1s).
    #[arg(long)]
    pub min_sync_period: Option<String>,
}

/// `conntrack:` section.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConntrackConfig {
    pub max_per_core: Option<i64>,
    pub min: Option<i64>,
    pub tcp_established_timeout: Option<String>,
    pub tcp_close_wait_timeout: Option<String>,
    pub tcp_be_liberal: Option<bool>,
    pub udp_timeout: Option<String>,
    pub udp_stream_timeout: Option<String>,
}

/// `detectLocal:` section.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DetectLocalConfig {
    pub bridge_interface: Option<String>,
    pub interface_name_prefix: Option<String>,
}

/// `iptables:` / `nftables:` sections (only the sync knobs apply).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackendConfig {
    pub sync_period: Option<String>,
    pub min_sync_period: Option<String>,
    pub masquerade_all: Option<bool>,
    pub masquerade_bit: Option<i32>,
    pub localhost_nodeports: Option<bool>,
}

/// `clientConnection:` section (only the kubeconfig applies).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClientConnection {
    pub kubeconfig: Option<String>,
}

/// The applicable subset of `KubeProxyConfiguration`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KubeProxyConfiguration {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub mode: Option<String>,
    #[serde(rename = "clusterCIDR")]
    pub cluster_cidr: Option<String>,
    pub node_port_addresses: Option<Vec<String>>,
    pub conntrack: Option<ConntrackConfig>,
    pub sync_period: Option<String>,
    pub min_sync_period: Option<String>,
    pub masquerade_all: Option<bool>,
    pub detect_local_mode: Option<String>,
    pub detect_local: Option<DetectLocalConfig>,
    pub hostname_override: Option<String>,
    pub metrics_bind_address: Option<String>,
    pub healthz_bind_address: Option<String>,
    pub client_connection: Option<ClientConnection>,
    pub iptables: Option<BackendConfig>,
    pub nftables: Option<BackendConfig>,
}

impl KubeProxyConfiguration {
    /// Parses YAML text; unknown fields are errors that name the field.
    pub fn parse(text: &str, path: &Path) -> Result<KubeProxyConfiguration> {
        let cfg: KubeProxyConfiguration = serde_saphyr::from_str(text)
            .map_err(|e| Error::ConfigParse { path: path.to_path_buf(), msg: e.to_string() })?;
        if let Some(k) = &cfg.kind
            && k != "KubeProxyConfiguration"
        {
            return Err(Error::ConfigParse { path: path.to_path_buf(), msg: format!("kind {k:?} is not KubeProxyConfiguration") });
        }
        if let Some(v) = &cfg.api_version
            && v != "kubeproxy.config.k8s.io/v1alpha1"
        {
            return Err(Error::ConfigParse { path: path.to_path_buf(), msg: format!("apiVersion {v:?} is not kubeproxy.config.k8s.io/v1alpha1") });
        }
        Ok(cfg)
    }

    pub fn load(path: &Path) -> Result<KubeProxyConfiguration> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| Error::ConfigRead { path: path.to_path_buf(), source })?;
        Self::parse(&text, path)
    }
}

/// How local (pod) traffic is detected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetectLocalMode {
    ClusterCidr,
    NodeCidr,
    BridgeInterface(String),
    InterfaceNamePrefix(String),
}

/// NodePort address selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodePortAddresses {
    /// Every local address except loopback.
    All,
    /// The node's InternalIP (from the Node object) plus these prefixes.
    Cidrs { primary: bool, cidrs: Vec<Cidr> },
}

/// Conntrack sysctls to set (only the ones configured).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConntrackSettings {
    pub max: Option<i64>,
    pub tcp_established_timeout: Option<Duration>,
    pub tcp_close_wait_timeout: Option<Duration>,
    pub tcp_be_liberal: Option<bool>,
    pub udp_timeout: Option<Duration>,
    pub udp_stream_timeout: Option<Duration>,
}

/// The resolved configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    pub kubeconfig: Option<PathBuf>,
    pub hostname: String,
    pub mode: Mode,
    pub cleanup: bool,
    pub cluster_cidr: Option<Cidr>,
    pub node_port_addresses: NodePortAddresses,
    pub masquerade_all: bool,
    pub detect_local: DetectLocalMode,
    pub sync_period: Duration,
    pub min_sync_period: Duration,
    pub metrics_bind: Option<SocketAddr>,
    pub healthz_bind: Option<SocketAddr>,
    pub conntrack: ConntrackSettings,
}

/// Parses a Go duration such as `30s`, `1m30s`, `500ms`, `2h`.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let bad = || Error::ConfigInvalid(format!("{s:?} is not a duration (e.g. 30s, 1m, 500ms)"));
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let n: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += n * mult;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_secs_f64(total))
}

fn parse_bind(s: &str) -> Result<Option<SocketAddr>> {
    if s.is_empty() || s == "0" {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| Error::ConfigInvalid(format!("bind address {s:?} is not host:port")))
}

fn local_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
        .to_lowercase()
}

impl ProxyConfig {
    /// Merges the file (if any) and the flags; flags win.
    pub fn resolve(args: &Args) -> Result<ProxyConfig> {
        let file = match &args.config {
            Some(p) => KubeProxyConfiguration::load(p)?,
            None => KubeProxyConfiguration::default(),
        };
        Self::merge(args, &file)
    }

    /// Merges an already parsed file with the flags.
    pub fn merge(args: &Args, file: &KubeProxyConfiguration) -> Result<ProxyConfig> {
        let mode = match (args.proxy_mode, &file.mode) {
            (Some(m), _) => m,
            (None, Some(m)) => Mode::parse(m)?,
            (None, None) => Mode::Nftables,
        };
        let backend = match mode {
            Mode::Nftables => file.nftables.clone().unwrap_or_default(),
            Mode::Iptables => file.iptables.clone().unwrap_or_default(),
        };
        if let Some(bit) = backend.masquerade_bit
            && bit != 14
        {
            return Err(Error::ConfigInvalid(format!("masqueradeBit {bit} is not supported (only 14)")));
        }
        if backend.localhost_nodeports == Some(true) {
            return Err(Error::ConfigInvalid("localhostNodePorts is not supported".into()));
        }
        let dur = |flag: &Option<String>, top: &Option<String>, be: &Option<String>, def: u64| -> Result<Duration> {
            match flag.as_ref().or(top.as_ref()).or(be.as_ref()) {
                Some(s) => parse_duration(s),
                None => Ok(Duration::from_secs(def)),
            }
        };
        let sync_period = dur(&args.sync_period, &file.sync_period, &backend.sync_period, 30)?;
        let min_sync_period = dur(&args.min_sync_period, &file.min_sync_period, &backend.min_sync_period, 1)?;
        if sync_period.is_zero() {
            return Err(Error::ConfigInvalid("syncPeriod must be greater than 0".into()));
        }
        let cluster_cidr = match args.cluster_cidr.as_ref().or(file.cluster_cidr.as_ref()) {
            None => None,
            Some(s) if s.trim().is_empty() => None,
            Some(s) => {
                // Dual-stack lists: take the IPv4 one.
                let v4 = s.split(',').find(|p| !p.contains(':')).unwrap_or("");
                Some(v4.parse::<Cidr>().map_err(Error::ConfigInvalid)?)
            }
        };
        let npa = args.nodeport_addresses.clone().or_else(|| file.node_port_addresses.clone()).unwrap_or_default();
        let node_port_addresses = if npa.is_empty() {
            NodePortAddresses::All
        } else {
            let mut primary = false;
            let mut cidrs = Vec::new();
            for a in npa {
                let a = a.trim();
                if a == "primary" {
                    primary = true;
                } else if a.contains(':') {
                    continue;
                } else {
                    cidrs.push(a.parse::<Cidr>().map_err(Error::ConfigInvalid)?);
                }
            }
            NodePortAddresses::Cidrs { primary, cidrs }
        };
        let masquerade_all = args.masquerade_all.or(file.masquerade_all).or(backend.masquerade_all).unwrap_or(false);
        let dl = file.detect_local.clone().unwrap_or_default();
        let detect_local = match file.detect_local_mode.as_deref().unwrap_or("") {
            "" | "ClusterCIDR" => DetectLocalMode::ClusterCidr,
            "NodeCIDR" => DetectLocalMode::NodeCidr,
            "BridgeInterface" => DetectLocalMode::BridgeInterface(dl.bridge_interface.filter(|s| !s.is_empty()).ok_or_else(|| {
                Error::ConfigInvalid("detectLocalMode BridgeInterface needs detectLocal.bridgeInterface".into())
            })?),
            "InterfaceNamePrefix" => DetectLocalMode::InterfaceNamePrefix(
                dl.interface_name_prefix.filter(|s| !s.is_empty()).ok_or_else(|| {
                    Error::ConfigInvalid("detectLocalMode InterfaceNamePrefix needs detectLocal.interfaceNamePrefix".into())
                })?,
            ),
            other => return Err(Error::ConfigInvalid(format!("detectLocalMode {other:?} is not supported"))),
        };
        let ct = file.conntrack.clone().unwrap_or_default();
        let opt_dur = |s: &Option<String>| s.as_deref().map(parse_duration).transpose();
        let conntrack = ConntrackSettings {
            max: match (ct.max_per_core, ct.min) {
                (Some(per_core), min) if per_core > 0 => {
                    let cpus = std::thread::available_parallelism().map(|n| n.get() as i64).unwrap_or(1);
                    Some((per_core * cpus).max(min.unwrap_or(0)))
                }
                _ => None,
            },
            tcp_established_timeout: opt_dur(&ct.tcp_established_timeout)?,
            tcp_close_wait_timeout: opt_dur(&ct.tcp_close_wait_timeout)?,
            tcp_be_liberal: ct.tcp_be_liberal,
            udp_timeout: opt_dur(&ct.udp_timeout)?,
            udp_stream_timeout: opt_dur(&ct.udp_stream_timeout)?,
        };
        let kubeconfig = args
            .kubeconfig
            .clone()
            .or_else(|| file.client_connection.as_ref().and_then(|c| c.kubeconfig.clone()).filter(|s| !s.is_empty()).map(PathBuf::from));
        let hostname = args
            .hostname_override
            .clone()
            .or_else(|| file.hostname_override.clone())
            .filter(|s| !s.is_empty())
            .map(|s| s.to_lowercase())
            .unwrap_or_else(local_hostname);
        let metrics = args.metrics_bind_address.clone().or_else(|| file.metrics_bind_address.clone());
        let healthz = args.healthz_bind_address.clone().or_else(|| file.healthz_bind_address.clone());
        Ok(ProxyConfig {
            kubeconfig,
            hostname,
            mode,
            cleanup: args.cleanup,
            cluster_cidr,
            node_port_addresses,
            masquerade_all,
            detect_local,
            sync_period,
            min_sync_period,
            metrics_bind: parse_bind(metrics.as_deref().unwrap_or("127.0.0.1:10249"))?,
            healthz_bind: parse_bind(healthz.as_deref().unwrap_or("0.0.0.0:10256"))?,
            conntrack,
        })
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
