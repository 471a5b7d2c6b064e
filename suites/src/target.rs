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
    fn missing_socket_is_unavailable() {
        let t = RuntimeTarget::External("unix:///nonexistent/cri.sock".into());
        assert!(t.unavailable().unwrap().contains("does not exist"));
    }
}
