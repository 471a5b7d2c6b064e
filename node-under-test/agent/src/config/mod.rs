//! The agent's configuration: a `KubeletConfiguration` (kubelet.config.k8s.io/v1beta1) with
//! upstream defaults, plus the non-upstream `nodekit:` extension block (see [`Extensions`]).
//!
//! Unknown fields are an error naming the field. Upstream fields that this agent does not
//! implement are accepted and ignored only when listed in [`IGNORED_FIELDS`].

mod duration;
mod kubelet;
mod server;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use duration::{GoDuration, ParseDurationError, format_go_duration, parse_go_duration};
pub use kubelet::{ChangeDetectionStrategy, Extensions, IGNORED_FIELDS, KubeletConfiguration, NodeSize};
pub use server::{
    AUTHORIZATION_MODES, KubeletAnonymousAuthentication, KubeletAuthentication, KubeletAuthorization,
    KubeletWebhookAuthentication, KubeletWebhookAuthorization, KubeletX509Authentication,
};

/// Errors while loading or validating the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("parsing config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// Parses a `KubeletConfiguration` document, applies defaults and validates it.
pub fn parse_config(text: &str, origin: &Path) -> Result<KubeletConfiguration> {
    let cfg: KubeletConfiguration = serde_saphyr::from_str(text)
        .map_err(|e| ConfigError::Parse { path: origin.to_path_buf(), message: shorten(&e.to_string()) })?;
    cfg.validate()?;
    Ok(cfg)
}

/// Drops serde's (very long) "expected one of …" field lists from parse errors.
fn shorten(message: &str) -> String {
    let mut out = String::new();
    let mut rest = message;
    while let Some(i) = rest.find(", expected one of ") {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        rest = &rest[rest.find('\n').unwrap_or(rest.len())..];
    }
    out.push_str(rest);
    out
}

/// The fields of a configuration text that upstream defines and this agent accepts without
/// applying ([`IGNORED_FIELDS`]), sorted, so the agent can name them at start.
pub fn ignored_fields_in(text: &str) -> Vec<String> {
    let Ok(serde_json::Value::Object(map)) = serde_saphyr::from_str::<serde_json::Value>(text) else { return Vec::new() };
    map.keys().filter(|k| IGNORED_FIELDS.contains(&k.as_str())).cloned().collect()
}

/// Reads, parses and validates the configuration file at `path`.
pub fn load_config(path: &Path) -> Result<KubeletConfiguration> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    parse_config(&text, path)
}

/// Eviction thresholds the agent reports and whose defaults match upstream.
pub fn default_eviction_hard() -> BTreeMap<String, String> {
    [
        ("memory.available", "100Mi"),
        ("nodefs.available", "10%"),
        ("imagefs.available", "15%"),
        ("nodefs.inodesFree", "5%"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Everything the loops need, with flags already merged over the file.
#[derive(Clone, Debug)]
pub struct AgentSettings {
    pub node_name: String,
    pub node_ip: Option<std::net::IpAddr>,
    pub pod_cidr: Option<String>,
    pub root_dir: PathBuf,
    pub runtime_endpoint: String,
    pub kubelet: KubeletConfiguration,
}

impl AgentSettings {
    /// The lease renew interval before jitter: duration × fraction.
    pub fn lease_renew_interval(&self) -> Duration {
        let secs = f64::from(self.kubelet.node_lease_duration_seconds)
            * self.kubelet.nodekit.node_lease_renew_interval_fraction;
        Duration::from_secs_f64(secs.max(0.001))
    }
}

#[cfg(test)]
mod tests;
