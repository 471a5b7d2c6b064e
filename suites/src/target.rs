//! The targets a case runs against: which container runtime backs the node.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use harness::backend::RuntimeProfile;

use crate::catalog::on_path;

/// The container runtime behind node-a.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeTarget {
    /// nodekit's own CRI runtime, started by the harness inside the node host.
    FakeCri,
    /// Real containerd from the distribution, started by the harness inside the node host.
    Containerd,
    /// A CRI endpoint the user started themselves (`unix:///path/to.sock`).
    External(String),
    /// A runtime started inside the world from a runtime profile: `spec` is what was given
    /// (a shipped profile's name, or the file's absolute path); `text` is the profile as it was
    /// read, which case processes load again (an edit of the file during a run changes nothing).
    Profile { spec: String, text: Arc<str>, profile: Arc<RuntimeProfile> },
}

impl RuntimeTarget {
    /// Short name used in test names and reports.
    pub fn name(&self) -> &str {
        match self {
            RuntimeTarget::FakeCri => "fake-cri",
            RuntimeTarget::Containerd => "containerd",
            RuntimeTarget::External(_) => "external",
            RuntimeTarget::Profile { profile, .. } => &profile.name,
        }
    }

    /// The `runtime_name` the runtime's CRI `Version` reports, when the target knows it.
    pub fn runtime_name(&self) -> Option<&str> {
        match self {
            RuntimeTarget::FakeCri => Some("fake-cri"),
            RuntimeTarget::Containerd => Some("containerd"),
            RuntimeTarget::External(_) => None,
            RuntimeTarget::Profile { profile, .. } => Some(&profile.runtime_name),
        }
    }

    /// The RuntimeClass handlers the runtime offers (the first is the default), when known.
    pub fn handlers(&self) -> Vec<String> {
        match self {
            RuntimeTarget::FakeCri => vec!["runc".into()],
            RuntimeTarget::Containerd => vec!["runc".into(), "crun".into()],
            RuntimeTarget::External(_) => Vec::new(),
            RuntimeTarget::Profile { profile, .. } => profile.handlers.clone(),
        }
    }

    /// Why this target cannot be used on this machine, if it cannot.
    pub fn unavailable(&self) -> Option<String> {
        match self {
            RuntimeTarget::FakeCri => None,
            RuntimeTarget::Containerd => {
                let missing: Vec<&str> = ["containerd", "runc", "ctr"]
                    .into_iter()
                    .filter(|b| !on_path(b))
                    .collect();
                if !missing.is_empty() {
                    Some(format!("containerd backend needs {} (run ci/bootstrap)", missing.join(", ")))
                } else if !std::path::Path::new("/usr/lib/cni/bridge").exists() {
                    Some("containerd backend needs the CNI plugins in /usr/lib/cni (run ci/bootstrap)".into())
                } else {
                    None
                }
            }
            // A profile's binaries were checked when it was loaded.
            RuntimeTarget::Profile { .. } => None,
            RuntimeTarget::External(endpoint) => {
                let path = endpoint.strip_prefix("unix://").unwrap_or(endpoint);
                if std::path::Path::new(path).exists() {
                    None
                } else {
                    Some(format!("CRI socket {path} does not exist"))
                }
            }
        }
    }
}

/// How long an external socket has to answer CRI `Version` before it is refused.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Checks that the external CRI endpoint exists and answers CRI `Version`; the reason when it
/// does not.
pub fn probe_external(endpoint: &str) -> Result<String, String> {
    probe_within(endpoint, PROBE_TIMEOUT)
}

fn probe_within(endpoint: &str, within: std::time::Duration) -> Result<String, String> {
    let path = std::path::PathBuf::from(endpoint.strip_prefix("unix://").unwrap_or(endpoint));
    if !path.exists() {
        return Err(format!("CRI socket {} does not exist", path.display()));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting a runtime to probe the socket: {e}"))?;
    rt.block_on(async {
        let ask = async {
            let channel = fake_cri::client::channel(&path).await.map_err(|e| format!("cannot connect: {e}"))?;
            let mut client = k8s_cri::v1::runtime_service_client::RuntimeServiceClient::new(channel);
            let v = client
                .version(k8s_cri::v1::VersionRequest { version: "v1".into() })
                .await
                .map_err(|s| format!("CRI Version failed: {}: {}", s.code(), s.message()))?
                .into_inner();
            Ok(format!("{} {} (CRI {})", v.runtime_name, v.runtime_version, v.runtime_api_version))
        };
        match tokio::time::timeout(within, ask).await {
            Ok(r) => r.map_err(|e: String| format!("{} does not answer CRI: {e}", path.display())),
            Err(_) => Err(format!("{} does not answer CRI Version within {within:?}", path.display())),
        }
    })
}

impl fmt::Display for RuntimeTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuntimeTarget::External(e) => f.write_str(e),
            RuntimeTarget::Profile { spec, .. } => f.write_str(spec),
            other => f.write_str(other.name()),
        }
    }
}

/// Error for a `--runtime` value that names no usable backend.
#[derive(Debug, thiserror::Error)]
pub enum UnknownRuntime {
    /// Neither a built-in name, a socket nor a profile file.
    #[error(
        "unknown runtime {0:?}: use fake-cri, containerd, containerd-crun, unix:///path/to/cri.sock or a runtime profile file (*.yaml, see suites/examples/runtimes/)"
    )]
    Name(String),
    /// A profile that does not load, or names a binary that is not there.
    #[error("{0}")]
    Profile(#[from] runtime_profile::LoadError),
}

/// Whether `s` names a runtime profile file rather than a built-in runtime or a socket.
fn is_profile_file(s: &str) -> bool {
    s.ends_with(".yaml") || s.ends_with(".yml")
}

/// Loads a profile (a shipped one by name, or a file) and checks that its binaries exist.
fn load_profile(s: &str) -> Result<Option<RuntimeTarget>, UnknownRuntime> {
    if is_profile_file(s) {
        let path = std::fs::canonicalize(s).unwrap_or_else(|_| Path::new(s).to_path_buf());
        let text = std::fs::read_to_string(&path).map_err(|e| runtime_profile::LoadError {
            file: path.clone(),
            field: String::new(),
            message: format!("cannot read the runtime profile: {e}"),
        })?;
        return RuntimeTarget::from_profile_text(&path.to_string_lossy(), &text).map(Some);
    }
    match runtime_profile::builtin::SHIPPED.iter().find(|(name, _, _)| *name == s) {
        Some((name, _, text)) => RuntimeTarget::from_profile_text(name, text).map(Some),
        None => Ok(None),
    }
}

impl RuntimeTarget {
    /// The profile target given as `spec` (a shipped profile's name or a file's path) whose
    /// text is `text`; its binaries must exist.
    pub fn from_profile_text(spec: &str, text: &str) -> Result<RuntimeTarget, UnknownRuntime> {
        let origin = runtime_profile::builtin::SHIPPED
            .iter()
            .find(|(name, _, _)| *name == spec)
            .map_or(spec, |(_, origin, _)| *origin);
        let profile = runtime_profile::load_str(text, Path::new(origin))?;
        runtime_profile::load::check_binaries(&profile, harness::backend::find_binary)?;
        runtime_profile::load::check_paths(&profile)?;
        Ok(RuntimeTarget::Profile { spec: spec.to_string(), text: text.into(), profile: Arc::new(profile) })
    }

    /// The profile's text, for a profile target.
    pub fn profile_text(&self) -> Option<&str> {
        match self {
            RuntimeTarget::Profile { text, .. } => Some(text),
            _ => None,
        }
    }
}

impl FromStr for RuntimeTarget {
    type Err = UnknownRuntime;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fake-cri" | "fake" => Ok(RuntimeTarget::FakeCri),
            "containerd" => Ok(RuntimeTarget::Containerd),
            s if s.starts_with("unix:///") => Ok(RuntimeTarget::External(s.to_string())),
            s if s.starts_with('/') && !is_profile_file(s) => Ok(RuntimeTarget::External(format!("unix://{s}"))),
            other => load_profile(other)?.ok_or_else(|| UnknownRuntime::Name(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_runtimes() {
        assert_eq!("fake-cri".parse::<RuntimeTarget>().unwrap(), RuntimeTarget::FakeCri);
        assert_eq!("containerd".parse::<RuntimeTarget>().unwrap(), RuntimeTarget::Containerd);
        assert_eq!(
            "/run/x.sock".parse::<RuntimeTarget>().unwrap(),
            RuntimeTarget::External("unix:///run/x.sock".into())
        );
        let err = "docker".parse::<RuntimeTarget>().unwrap_err().to_string();
        assert!(err.contains("fake-cri, containerd, containerd-crun, unix:///"), "{err}");
        let crun = "containerd-crun".parse::<RuntimeTarget>();
        if harness::backend::find_binary("containerd").is_some() && harness::backend::find_binary("crun").is_some() {
            let crun = crun.unwrap();
            assert_eq!(crun.name(), "containerd-crun");
            assert_eq!(crun.to_string().parse::<RuntimeTarget>().unwrap(), crun, "a profile target parses back from its text");
            assert_eq!(crun.handlers(), vec!["crun".to_string(), "runc".to_string()]);
        }
        let err = "./missing-profile.yaml".parse::<RuntimeTarget>().unwrap_err().to_string();
        assert!(err.contains("missing-profile.yaml: cannot read the runtime profile"), "{err}");
    }

    #[test]
    fn missing_or_mute_sockets_are_refused() {
        let err = probe_external("unix:///nonexistent/cri.sock").unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
        // A socket that accepts connections but speaks no HTTP/2.
        let dir = std::env::temp_dir().join(format!("nodekit-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("mute.sock");
        let _ = std::fs::remove_file(&sock);
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let keep = std::thread::spawn(move || {
            let held = listener.accept();
            let _ = done_rx.recv();
            drop(held);
        });
        let err = probe_within(&format!("unix://{}", sock.display()), std::time::Duration::from_millis(300)).unwrap_err();
        assert!(err.contains("does not answer CRI"), "{err}");
        // The holder ends once it accepted; it is not joined in case the probe never connected.
        let _ = done_tx.send(());
        drop(keep);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_socket_is_unavailable() {
        let t = RuntimeTarget::External("unix:///nonexistent/cri.sock".into());
        assert!(t.unavailable().unwrap().contains("does not exist"));
    }
}
