//! The crate's error type.

use std::path::PathBuf;

/// Errors of the proxy library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading config file {path}: {source}")]
    ConfigRead { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {msg}")]
    ConfigParse { path: PathBuf, msg: String },
    #[error("invalid configuration: {0}")]
    ConfigInvalid(String),
    #[error("starting {cmd}: {source}")]
    Spawn { cmd: String, source: std::io::Error },
    #[error("{cmd} failed ({status}): {stderr}")]
    Command { cmd: String, status: String, stderr: String },
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("binding {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("network namespace: {0}")]
    Netns(String),
}

/// Result with the crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
