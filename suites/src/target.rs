//! The targets a case runs against: which container runtime backs the node.

use std::fmt;
use std::str::FromStr;

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
}

impl RuntimeTarget {
    /// Short name used in test names and reports.
    pub fn name(&self) -> &str {
        match self {
            RuntimeTarget::FakeCri => "fake-cri",
            RuntimeTarget::Containerd => "containerd",
            RuntimeTarget::External(_) => "external",
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
            other => f.write_str(other.name()),
        }
    }
}

/// Error for a `--runtime` value that names no backend.
#[derive(Debug, thiserror::Error)]
#[error("unknown runtime {0:?}: use fake-cri, containerd or unix:///path/to/cri.sock")]
pub struct UnknownRuntime(String);

impl FromStr for RuntimeTarget {
    type Err = UnknownRuntime;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fake-cri" | "fake" => Ok(RuntimeTarget::FakeCri),
            "containerd" => Ok(RuntimeTarget::Containerd),
            s if s.starts_with("unix:///") => Ok(RuntimeTarget::External(s.to_string())),
            s if s.starts_with('/') => Ok(RuntimeTarget::External(format!("unix://{s}"))),
            other => Err(UnknownRuntime(other.to_string())),
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
        assert!(err.contains("fake-cri, containerd or unix:///"), "{err}");
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
