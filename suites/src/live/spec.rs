//! What `nodekit up` builds, checked before anything starts: node count, runtime, proxy mode,
//! and the agent and proxy configurations (the world's defaults with the user's files merged
//! over them, validated by the agent's and the proxy's own parsers).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::fixtures::deep_merge;

/// Upstream-like agent timings, a little quicker: lease 10 s (renewed every 2.5 s), status
/// checked every 2 s and reported at least every minute, container back-off 2 s doubling to
/// 1 min. The node's size is the world's (4 CPUs, 8 GiB, 64 GiB, 100,000 pids).
pub const AGENT_DEFAULTS: &str = "\
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
nodeLeaseDurationSeconds: 10
nodeStatusUpdateFrequency: 2s
nodeStatusReportFrequency: 1m
syncFrequency: 10s
nodekit:
  containerBackOffBase: 2s
  containerBackOffMax: 1m
  nodeSize:
    cpu: \"4\"
    memory: 8Gi
    ephemeralStorage: 64Gi
    pids: 100000
";

/// The node-monitor grace period of a live world (twice the lease).
pub const NODE_GRACE: std::time::Duration = std::time::Duration::from_secs(20);

/// The pod range of every live world (each node's pod CIDR is inside).
pub const CLUSTER_CIDR: &str = "10.244.0.0/16";

/// The runtime every node of the world runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LiveRuntime {
    FakeCri,
    Containerd,
}

impl std::fmt::Display for LiveRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LiveRuntime::FakeCri => "fake-cri",
            LiveRuntime::Containerd => "containerd",
        })
    }
}

/// The proxy's rule backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LiveProxyMode {
    Nftables,
    Iptables,
}

impl LiveProxyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LiveProxyMode::Nftables => "nftables",
            LiveProxyMode::Iptables => "iptables",
        }
    }
}

/// Everything the world side needs (passed to it as JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiveSpec {
    /// The host loopback port the user's kubeconfig points at.
    pub port: u16,
    /// The world: nodes, runtime, proxy mode, the agent's and proxy's whole configurations;
    /// and, with `nodekit up --scenario`, the steps to run before the world is handed over.
    pub prepared: crate::scenarios::Prepared,
    /// Run `prepared`'s steps before the handover.
    pub run_steps: bool,
}

/// A problem with the command line, reported with exit code 2 before anything starts.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Reads `path` as a YAML mapping; the error names `flag`, the file and what is wrong.
fn read_mapping(flag: &str, path: &Path) -> Result<Value, UsageError> {
    let bad = |why: String| UsageError(format!("{flag} {}: {why}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read the file: {e}")))?;
    let v: Value = serde_saphyr::from_str(&text).map_err(|e| bad(format!("not a YAML document: {e}")))?;
    match v {
        Value::Object(_) => Ok(v),
        Value::Null => Err(bad("the file is empty; give a KubeletConfiguration/KubeProxyConfiguration mapping".into())),
        _ => Err(bad("the document is not a mapping of configuration fields".into())),
    }
}

/// The agent configuration: [`AGENT_DEFAULTS`] with `file` merged over it, validated by the
/// agent's own parser.
pub fn agent_config(file: Option<&PathBuf>) -> Result<String, UsageError> {
    let mut base: Value = serde_saphyr::from_str(AGENT_DEFAULTS).map_err(|e| UsageError(e.to_string()))?;
    if let Some(path) = file {
        deep_merge(&mut base, read_mapping("--kubelet-config", path)?);
    }
    let text = serde_json::to_string_pretty(&base).map_err(|e| UsageError(e.to_string()))?;
    let origin = file.cloned().unwrap_or_else(|| PathBuf::from("(defaults)"));
    node_agent::config::parse_config(&text, &origin)
        .map_err(|e| UsageError(format!("--kubelet-config {}: {e}", origin.display())))?;
    Ok(text)
}

/// The proxy's defaults in every world: the cluster CIDR and upstream's sync periods.
fn proxy_defaults() -> Value {
    json!({
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clusterCIDR": CLUSTER_CIDR,
        "syncPeriod": "30s",
        "minSyncPeriod": "1s",
    })
}

/// The proxy configuration: the world's defaults (`mode`, cluster CIDR, upstream sync periods)
/// with `file` merged over it, validated by the proxy's own parser. `mode` given on the command
/// line wins over the file's; without either it is nftables.
pub fn proxy_config(file: Option<&PathBuf>, mode: Option<LiveProxyMode>) -> Result<(String, LiveProxyMode), UsageError> {
    let mut base = proxy_defaults();
    if let Some(path) = file {
        deep_merge(&mut base, read_mapping("--proxy-config", path)?);
    }
    let mode = match (mode, base.get("mode").and_then(Value::as_str)) {
        (Some(m), _) => m,
        (None, None | Some("")) => LiveProxyMode::Nftables,
        (None, Some("nftables")) => LiveProxyMode::Nftables,
        (None, Some("iptables")) => LiveProxyMode::Iptables,
        (None, Some(other)) => {
            return Err(UsageError(format!(
                "--proxy-config {}: mode {other:?} is not supported; use nftables or iptables",
                file.map(|p| p.display().to_string()).unwrap_or_default()
            )));
        }
    };
    base["mode"] = json!(mode.as_str());
    let text = serde_json::to_string_pretty(&base).map_err(|e| UsageError(e.to_string()))?;
    let origin = file.cloned().unwrap_or_else(|| PathBuf::from("(defaults)"));
    node_proxy::config::KubeProxyConfiguration::parse(&text, &origin)
        .map_err(|e| UsageError(format!("--proxy-config {}: {e}", origin.display())))?;
    Ok((text, mode))
}

/// The agent configuration of a scenario's node: [`AGENT_DEFAULTS`] with each layer merged over
/// it in order (the scenario's world, then the node's own), validated by the agent's parser;
/// errors name `origin` (the scenario file and field).
pub fn agent_config_layers(layers: &[&Value], origin: &str) -> Result<String, UsageError> {
    let mut base: Value = serde_saphyr::from_str(AGENT_DEFAULTS).map_err(|e| UsageError(e.to_string()))?;
    for layer in layers {
        if !layer.is_null() {
            deep_merge(&mut base, (*layer).clone());
        }
    }
    let text = serde_json::to_string_pretty(&base).map_err(|e| UsageError(e.to_string()))?;
    node_agent::config::parse_config(&text, Path::new(origin)).map_err(|e| UsageError(format!("{origin}: {e}")))?;
    Ok(text)
}

/// The proxy configuration of a scenario: the world's defaults with `over` merged and `mode`
/// set, validated by the proxy's parser.
pub fn proxy_config_layers(over: &Value, mode: LiveProxyMode, origin: &str) -> Result<String, UsageError> {
    let mut base = proxy_defaults();
    if !over.is_null() {
        deep_merge(&mut base, over.clone());
    }
    base["mode"] = json!(mode.as_str());
    let text = serde_json::to_string_pretty(&base).map_err(|e| UsageError(e.to_string()))?;
    node_proxy::config::KubeProxyConfiguration::parse(&text, Path::new(origin)).map_err(|e| UsageError(format!("{origin}: {e}")))?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.yaml");
        std::fs::write(&p, text).unwrap();
        (d, p)
    }

    #[test]
    fn defaults_parse_and_files_merge() {
        let a = agent_config(None).unwrap();
        assert!(a.contains("nodeLeaseDurationSeconds"));
        let (_d, p) = file("nodeStatusUpdateFrequency: 5s\nnodekit:\n  nodeSize:\n    cpu: \"8\"\n");
        let a: Value = serde_json::from_str(&agent_config(Some(&p)).unwrap()).unwrap();
        assert_eq!(a["nodeStatusUpdateFrequency"], "5s");
        assert_eq!(a["nodekit"]["nodeSize"]["cpu"], "8");
        assert_eq!(a["nodekit"]["nodeSize"]["memory"], "8Gi");
        let (t, m) = proxy_config(None, None).unwrap();
        assert_eq!(m, LiveProxyMode::Nftables);
        assert!(t.contains("10.244.0.0/16"));
        let (_d, p) = file("mode: iptables\nsyncPeriod: 10s\n");
        assert_eq!(proxy_config(Some(&p), None).unwrap().1, LiveProxyMode::Iptables);
        assert_eq!(proxy_config(Some(&p), Some(LiveProxyMode::Nftables)).unwrap().1, LiveProxyMode::Nftables);
    }

    #[test]
    fn bad_files_name_the_flag_and_the_file() {
        let missing = PathBuf::from("/nonexistent/kubelet.yaml");
        let e = agent_config(Some(&missing)).unwrap_err().0;
        assert!(e.starts_with("--kubelet-config /nonexistent/kubelet.yaml: cannot read the file"), "{e}");
        let (_d, p) = file("a: [1,\n");
        let e = proxy_config(Some(&p), None).unwrap_err().0;
        assert!(e.starts_with("--proxy-config ") && e.contains("not a YAML document"), "{e}");
        let (_d, p) = file("- 1\n");
        assert!(agent_config(Some(&p)).unwrap_err().0.contains("not a mapping"));
        let (_d, p) = file("nodeLeaseDurationSecs: 3\n");
        let e = agent_config(Some(&p)).unwrap_err().0;
        assert!(e.contains("nodeLeaseDurationSecs"), "{e}");
        let (_d, p) = file("mode: ipvs\n");
        assert!(proxy_config(Some(&p), None).unwrap_err().0.contains("\"ipvs\""));
    }
}
