//! Placeholders and their rendering. In every template a `{word}` made of lowercase letters and
//! underscores is a placeholder; every other brace is literal text, so JSON and TOML
//! templates need no escaping (`{"cniVersion": …}` and `{ a = 1 }` are left alone).

use std::collections::BTreeMap;

/// Every placeholder a template may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Placeholder {
    /// The CRI socket the runtime must listen on (a path, not a `unix://` URL).
    Socket,
    /// The instance's directory for configuration files nodekit writes.
    ConfigDir,
    /// The runtime's state directory (sockets, bundles; gone with the world).
    StateDir,
    /// The runtime's persistent root (images, snapshots, metadata).
    RootDir,
    /// Where the CNI plugins live (`/usr/lib/cni`).
    CniBinDir,
    /// The CNI configuration directory the runtime must read.
    CniConfDir,
    /// A directory for CNI IPAM state.
    CniDataDir,
    /// The node's pod CIDR (`10.244.1.0/24`).
    PodCidr,
    /// The pod gateway: the first address of the pod CIDR, held by the node's pod bridge.
    PodGateway,
    /// The node's pod bridge (`cbr0`), already up and holding the gateway address.
    PodBridge,
    /// The node's cgroup parent; pods must go below it (cgroup v1 is host state).
    CgroupRoot,
    /// The node's name (`node-a`).
    NodeName,
    /// The sandbox (pause) image reference the world provides.
    PauseImage,
    /// The kit's static workload binary (for runtimes that run it directly).
    WorkloadBin,
    /// The world's image registry on the node's loopback (`127.0.0.1:<port>`, plain HTTP).
    Registry,
    /// A directory of containerd-style registry host files (`<host>/hosts.toml`) that send
    /// every registry host the world's images name to [`Placeholder::Registry`].
    RegistryHostsDir,
    /// One image archive to import (only in `spec.images.import.command`).
    Archive,
    /// Node agent profiles: the agent's kubeconfig (API server, credentials).
    Kubeconfig,
    /// Node agent profiles: the `KubeletConfiguration` file nodekit wrote for the case.
    KubeletConfig,
    /// Node agent profiles: the CRI endpoint of the node's runtime (`unix:///…`).
    CriSocket,
    /// Node agent profiles: the node host's address.
    NodeIp,
    /// Node agent profiles: the world CA's certificate (secure worlds).
    Ca,
    /// Node agent profiles: the node's kubelet serving certificate (secure worlds).
    Cert,
    /// Node agent profiles: its key.
    Key,
    /// nodekit's FROM-scratch image around fake-cri as a `docker load` archive, built when a
    /// profile uses it (only in `spec.image.archive`).
    FakeCriImage,
}

impl Placeholder {
    /// Every placeholder.
    pub const ALL: [Placeholder; 25] = [
        Placeholder::Socket,
        Placeholder::ConfigDir,
        Placeholder::StateDir,
        Placeholder::RootDir,
        Placeholder::CniBinDir,
        Placeholder::CniConfDir,
        Placeholder::CniDataDir,
        Placeholder::PodCidr,
        Placeholder::PodGateway,
        Placeholder::PodBridge,
        Placeholder::CgroupRoot,
        Placeholder::NodeName,
        Placeholder::PauseImage,
        Placeholder::WorkloadBin,
        Placeholder::Registry,
        Placeholder::RegistryHostsDir,
        Placeholder::Archive,
        Placeholder::Kubeconfig,
        Placeholder::KubeletConfig,
        Placeholder::CriSocket,
        Placeholder::NodeIp,
        Placeholder::Ca,
        Placeholder::Cert,
        Placeholder::Key,
        Placeholder::FakeCriImage,
    ];

    /// The placeholders of a node agent profile's templates.
    pub const AGENT: [Placeholder; 11] = [
        Placeholder::Kubeconfig,
        Placeholder::KubeletConfig,
        Placeholder::CriSocket,
        Placeholder::RootDir,
        Placeholder::NodeName,
        Placeholder::NodeIp,
        Placeholder::PodCidr,
        Placeholder::CgroupRoot,
        Placeholder::Ca,
        Placeholder::Cert,
        Placeholder::Key,
    ];

    /// The word between the braces.
    pub fn word(self) -> &'static str {
        match self {
            Placeholder::Socket => "socket",
            Placeholder::ConfigDir => "config_dir",
            Placeholder::StateDir => "state_dir",
            Placeholder::RootDir => "root_dir",
            Placeholder::CniBinDir => "cni_bin_dir",
            Placeholder::CniConfDir => "cni_conf_dir",
            Placeholder::CniDataDir => "cni_data_dir",
            Placeholder::PodCidr => "pod_cidr",
            Placeholder::PodGateway => "pod_gateway",
            Placeholder::PodBridge => "pod_bridge",
            Placeholder::CgroupRoot => "cgroup_root",
            Placeholder::NodeName => "node_name",
            Placeholder::PauseImage => "pause_image",
            Placeholder::WorkloadBin => "workload_bin",
            Placeholder::Registry => "registry",
            Placeholder::RegistryHostsDir => "registry_hosts_dir",
            Placeholder::Archive => "archive",
            Placeholder::Kubeconfig => "kubeconfig",
            Placeholder::KubeletConfig => "kubelet_config",
            Placeholder::CriSocket => "cri_socket",
            Placeholder::NodeIp => "node_ip",
            Placeholder::Ca => "ca",
            Placeholder::Cert => "cert",
            Placeholder::Key => "key",
            Placeholder::FakeCriImage => "fake_cri_image",
        }
    }

    /// The placeholder written `{word}`.
    pub fn from_word(word: &str) -> Option<Placeholder> {
        Placeholder::ALL.into_iter().find(|p| p.word() == word)
    }

    /// The placeholders every runtime profile template may use (all but [`Placeholder::Archive`],
    /// [`Placeholder::FakeCriImage`] and those only node agent profiles have).
    pub fn general() -> Vec<Placeholder> {
        let agent_only = |p: &Placeholder| Placeholder::AGENT.contains(p) && !matches!(p, Placeholder::RootDir | Placeholder::NodeName | Placeholder::PodCidr | Placeholder::CgroupRoot);
        Placeholder::ALL
            .into_iter()
            .filter(|p| !matches!(p, Placeholder::Archive | Placeholder::FakeCriImage) && !agent_only(p))
            .collect()
    }
}

/// A placeholder the context does not offer, or a value missing at render time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// `{word}` looks like a placeholder but is not one this template may use.
    #[error("unknown placeholder {{{word}}}: use one of {allowed}")]
    Unknown { word: String, allowed: String },
    /// The caller has no value for a placeholder the template uses.
    #[error("no value for placeholder {{{0}}}")]
    NoValue(&'static str),
}

/// The words of `{word}` candidates in `text`, in order (a candidate is `{` followed by one or
/// more of `[a-z_]` and `}`).
pub fn candidates(text: &str) -> Vec<(usize, usize, &str)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'{' {
            let start = i + 1;
            let mut j = start;
            while j < bytes.len() && (bytes[j].is_ascii_lowercase() || bytes[j] == b'_') {
                j += 1;
            }
            if j > start && j < bytes.len() && bytes[j] == b'}' {
                out.push((i, j + 1, &text[start..j]));
                i = j + 1;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// The placeholders `text` uses, each checked against `allowed`.
pub fn placeholders(text: &str, allowed: &[Placeholder]) -> Result<Vec<Placeholder>, RenderError> {
    candidates(text)
        .into_iter()
        .map(|(_, _, word)| {
            Placeholder::from_word(word).filter(|p| allowed.contains(p)).ok_or_else(|| RenderError::Unknown {
                word: word.to_string(),
                allowed: allowed.iter().map(|p| format!("{{{}}}", p.word())).collect::<Vec<_>>().join(", "),
            })
        })
        .collect()
}

/// The values placeholders render to.
#[derive(Debug, Clone, Default)]
pub struct Values(BTreeMap<Placeholder, String>);

impl Values {
    /// No values.
    pub fn new() -> Values {
        Values::default()
    }

    /// Sets `p` to `value`.
    pub fn set(&mut self, p: Placeholder, value: impl Into<String>) -> &mut Values {
        self.0.insert(p, value.into());
        self
    }

    /// A copy with `p` set to `value`.
    pub fn with(&self, p: Placeholder, value: impl Into<String>) -> Values {
        let mut v = self.clone();
        v.set(p, value);
        v
    }

    /// The value of `p`, if set.
    pub fn get(&self, p: Placeholder) -> Option<&str> {
        self.0.get(&p).map(String::as_str)
    }

    /// `text` with every placeholder replaced by its value. A `{word}` that is not a
    /// placeholder at all is an error, as is a placeholder without a value.
    pub fn render(&self, text: &str) -> Result<String, RenderError> {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for (start, end, word) in candidates(text) {
            let p = Placeholder::from_word(word).ok_or_else(|| RenderError::Unknown {
                word: word.to_string(),
                allowed: Placeholder::ALL.iter().map(|p| format!("{{{}}}", p.word())).collect::<Vec<_>>().join(", "),
            })?;
            let value = self.get(p).ok_or(RenderError::NoValue(p.word()))?;
            out.push_str(&text[last..start]);
            out.push_str(value);
            last = end;
        }
        out.push_str(&text[last..]);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_that_are_not_placeholders_stay() {
        let mut v = Values::new();
        v.set(Placeholder::PodCidr, "10.244.1.0/24").set(Placeholder::Socket, "/w/cri.sock");
        let json = r#"{"subnet": "{pod_cidr}", "x": {}, "y": { "z": 1 }}"#;
        assert_eq!(v.render(json).unwrap(), r#"{"subnet": "10.244.1.0/24", "x": {}, "y": { "z": 1 }}"#);
        assert_eq!(v.render("address = \"{socket}\" # {Not_one} {a-b}").unwrap(), "address = \"/w/cri.sock\" # {Not_one} {a-b}");
    }

    #[test]
    fn unknown_and_unset_placeholders_are_errors() {
        let v = Values::new().with(Placeholder::Socket, "/s");
        assert!(matches!(v.render("{sockett}"), Err(RenderError::Unknown { word, .. }) if word == "sockett"));
        assert_eq!(v.render("{state_dir}"), Err(RenderError::NoValue("state_dir")));
    }

    #[test]
    fn placeholders_are_checked_against_the_context() {
        assert_eq!(placeholders("{socket} {archive}", &Placeholder::ALL).unwrap(), vec![Placeholder::Socket, Placeholder::Archive]);
        let err = placeholders("{archive}", &Placeholder::general()).unwrap_err();
        assert!(err.to_string().starts_with("unknown placeholder {archive}: use one of {socket}, {config_dir}"), "{err}");
    }

    #[test]
    fn every_word_round_trips() {
        for p in Placeholder::ALL {
            assert_eq!(Placeholder::from_word(p.word()), Some(p));
        }
    }
}
