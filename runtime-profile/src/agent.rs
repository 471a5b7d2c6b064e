//! Node agent profiles: a YAML file (`apiVersion: nodekit.dev/v1alpha1`, `kind:
//! NodeAgentProfile`) that tells the harness how to start a kubelet-compatible binary as the
//! node under test, in place of the reference agent: its command line (templates with
//! `{kubeconfig}`, `{kubelet_config}`, `{cri_socket}`, `{root_dir}`, `{node_name}`,
//! `{node_ip}`, `{pod_cidr}`, `{cgroup_root}`, `{ca}`, `{cert}`, `{key}`), its environment,
//! whether it reads nodekit's KubeletConfiguration extensions, and its stop grace.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::load::{LoadError, Reader};
use crate::template::{Placeholder, placeholders};

/// The `kind` a node agent profile carries.
pub const AGENT_KIND: &str = "NodeAgentProfile";

/// How to start one node agent inside a node host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAgentProfile {
    /// `metadata.name`.
    pub name: String,
    /// The file the profile came from.
    pub source: PathBuf,
    /// `spec.command`: the agent's command line (templates); the first word is the binary.
    pub command: Vec<String>,
    /// `spec.env`: its environment (values are templates).
    pub env: BTreeMap<String, String>,
    /// `spec.config.nodekitExtensions`: the agent reads the `nodekit:` block of the
    /// KubeletConfiguration (compressed back-off and relist, the world's node size). Off: the
    /// block is removed from the file the agent gets, as a kubelet would refuse it.
    pub nodekit_extensions: bool,
    /// `spec.stop.grace`: time between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
}

const SPEC_FIELDS: &[&str] = &["command", "env", "config", "stop"];

/// Loads the node agent profile in `path`.
pub fn load_agent_file(path: &Path) -> Result<NodeAgentProfile, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| LoadError {
        file: path.to_path_buf(),
        field: String::new(),
        message: format!("cannot read the node agent profile: {e}"),
    })?;
    load_agent_str(&text, path)
}

/// Loads the node agent profile in `text` as if it were the file `origin`.
pub fn load_agent_str(text: &str, origin: &Path) -> Result<NodeAgentProfile, LoadError> {
    let r = Reader { file: origin };
    let doc: Value = serde_saphyr::from_str(text).map_err(|e| r.err("", format!("not a YAML document: {e}")))?;
    let (name, spec) = r.header(&doc, "node agent profile", AGENT_KIND)?;
    r.keys(spec, "spec", SPEC_FIELDS)?;
    let command = r.command(r.required(spec, "spec", "command")?, "spec.command")?;
    let env = r.string_map(spec, "spec", "env")?;
    let nodekit_extensions = match spec.get("config").filter(|v| !v.is_null()) {
        Some(v) => {
            let config = r.map(v, "spec.config")?;
            r.keys(config, "spec.config", &["nodekitExtensions"])?;
            r.bool_or(config, "spec.config", "nodekitExtensions", false)?
        }
        None => false,
    };
    let stop_grace = match spec.get("stop").filter(|v| !v.is_null()) {
        Some(v) => {
            let stop = r.map(v, "spec.stop")?;
            r.keys(stop, "spec.stop", &["grace"])?;
            r.duration_or(stop, "spec.stop", "grace", Duration::from_secs(10))?
        }
        None => Duration::from_secs(10),
    };
    let profile = NodeAgentProfile { name, source: origin.to_path_buf(), command, env, nodekit_extensions, stop_grace };
    check_agent_placeholders(&r, &profile)?;
    Ok(profile)
}

/// Every template uses agent placeholders only, and the agent is told where the API server and
/// the runtime are.
fn check_agent_placeholders(r: &Reader<'_>, p: &NodeAgentProfile) -> Result<(), LoadError> {
    let mut used = Vec::new();
    for (i, a) in p.command.iter().enumerate() {
        used.extend(placeholders(a, &Placeholder::AGENT).map_err(|e| r.err(format!("spec.command[{i}]"), e.to_string()))?);
    }
    for (k, v) in &p.env {
        used.extend(placeholders(v, &Placeholder::AGENT).map_err(|e| r.err(format!("spec.env.{k}"), e.to_string()))?);
    }
    for needed in [Placeholder::Kubeconfig, Placeholder::CriSocket] {
        if !used.contains(&needed) {
            return Err(r.err(
                "spec.command",
                format!("the agent is never given {{{}}}: use it in spec.command or spec.env", needed.word()),
            ));
        }
    }
    Ok(())
}

/// The binary the profile runs, as `find` resolves `command[0]`; the error names the field.
pub fn agent_binary(p: &NodeAgentProfile, find: impl Fn(&str) -> Option<PathBuf>) -> Result<PathBuf, LoadError> {
    let word = &p.command[0];
    find(word).ok_or_else(|| LoadError {
        file: p.source.clone(),
        field: "spec.command[0]".into(),
        message: format!("binary {word:?} not found on PATH (nor next to nodekit); install it or give an absolute path"),
    })
}
